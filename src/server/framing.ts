// Direct-TCP framing (MS-SMB2 2.1): each SMB2 message (or compound chain, or transform) is preceded
// by a 4-byte header: one zero byte and a 24-bit big-endian StreamProtocolLength.
//
// One accumulating list of chunks and a cursor (pg-protocol's parser is the model): a frame that lies
// inside one received chunk is returned as a view of that chunk (no copy); a frame that spans chunks
// is gathered once into a buffer of exactly its size.

import { MalformedError } from '../base/errors.js';

export const FRAME_HEADER_SIZE = 4;

/** Frames at least this large that span chunks are gathered into pooled buffers (GC pressure). */
const POOL_FRAME_BYTES_MIN = 256 * 1024;
const POOL_BUFFERS_MAX = 4;

export class FrameDecoder {
  private chunks: Buffer[] = [];
  /** Idle gather buffers, reused for the next large frame (bounded). */
  private readonly pool: Buffer[] = [];
  /** Gather buffers lent out as frames, by their backing ArrayBuffer. */
  private readonly lent = new Map<ArrayBufferLike, Buffer>();
  private head = 0; // read offset in chunks[0]
  private bufferedBytes = 0;
  private readonly frameBytesMax: number;

  constructor(frameBytesMax: number) {
    this.frameBytesMax = frameBytesMax;
  }

  /** Bytes received and not yet returned as frames. */
  get buffered(): number {
    return this.bufferedBytes;
  }

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.bufferedBytes += chunk.length;
  }

  /**
   * Returns the next complete frame (without its 4-byte header) or undefined if more bytes are needed.
   * Throws MalformedError when the header is invalid or announces a frame above the limit; the
   * connection must then be closed (its byte stream can no longer be trusted).
   */
  next(): Buffer | undefined {
    if (this.bufferedBytes < FRAME_HEADER_SIZE) return undefined;
    const header = this.peek(FRAME_HEADER_SIZE);
    if (header[0] !== 0) throw new MalformedError(`direct-TCP header byte 0x${header[0]!.toString(16)} is not zero`);
    const length = (header[1]! << 16) | (header[2]! << 8) | header[3]!;
    if (length > this.frameBytesMax) throw new MalformedError(`frame of ${length} bytes exceeds ${this.frameBytesMax}`);
    if (length === 0) throw new MalformedError('empty frame');
    if (this.bufferedBytes < FRAME_HEADER_SIZE + length) return undefined;
    this.consume(FRAME_HEADER_SIZE);
    return this.take(length);
  }

  private peek(n: number): Buffer {
    const first = this.chunks[0]!;
    if (first.length - this.head >= n) return first.subarray(this.head, this.head + n);
    const out = Buffer.allocUnsafe(n);
    this.copyOut(out, n, false);
    return out;
  }

  private consume(n: number): void {
    this.copyOut(undefined, n, true);
  }

  private take(n: number): Buffer {
    const first = this.chunks[0]!;
    if (first.length - this.head >= n) {
      const view = first.subarray(this.head, this.head + n);
      this.advance(n);
      return view;
    }
    const out = this.gatherBuffer(n);
    this.copyOut(out, n, true);
    return out;
  }

  private gatherBuffer(n: number): Buffer {
    if (n < POOL_FRAME_BYTES_MIN) return Buffer.allocUnsafe(n);
    const i = this.pool.findIndex((b) => b.length >= n);
    const whole = i >= 0 ? this.pool.splice(i, 1)[0]! : Buffer.allocUnsafeSlow(n);
    this.lent.set(whole.buffer, whole);
    return whole.subarray(0, n);
  }

  /**
   * Hands a frame returned by next() back once nothing refers to it any more (its request and
   * every view of it are done), so its memory can carry the next large frame. Frames that were
   * views of received chunks are ignored.
   */
  release(frame: Buffer): void {
    const whole = this.lent.get(frame.buffer);
    if (!whole) return;
    this.lent.delete(frame.buffer);
    if (this.pool.length < POOL_BUFFERS_MAX) this.pool.push(whole);
  }

  private advance(n: number): void {
    this.head += n;
    this.bufferedBytes -= n;
    if (this.head === this.chunks[0]!.length) {
      this.chunks.shift();
      this.head = 0;
    }
  }

  private copyOut(out: Buffer | undefined, n: number, consume: boolean): void {
    let written = 0;
    let index = 0;
    let head = this.head;
    while (written < n) {
      const chunk = this.chunks[index]!;
      const take = Math.min(chunk.length - head, n - written);
      if (out) chunk.copy(out, written, head, head + take);
      written += take;
      head += take;
      if (head === chunk.length) {
        index++;
        head = 0;
      }
    }
    if (consume) {
      this.chunks.splice(0, index);
      this.head = head;
      this.bufferedBytes -= n;
    }
  }
}

/** Writes the 4-byte direct-TCP header for a frame of `length` bytes into buf at `at`. */
export function writeFrameHeader(buf: Buffer, at: number, length: number): void {
  buf[at] = 0;
  buf[at + 1] = (length >>> 16) & 0xff;
  buf[at + 2] = (length >>> 8) & 0xff;
  buf[at + 3] = length & 0xff;
}
