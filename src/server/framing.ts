// Direct-TCP framing (MS-SMB2 2.1): each SMB2 message (or compound chain, or transform) is preceded
// by a 4-byte header: one zero byte and a 24-bit big-endian StreamProtocolLength.
//
// The socket reads into one fixed buffer per connection (no allocation per read); the decoder copies
// each frame's bytes, once, into a buffer of exactly the frame's size taken from a small pool of
// reusable buffers (so a 1 GiB upload does not allocate 16k socket chunks and 128 frame buffers for
// the garbage collector to free). A frame buffer goes back to the pool when its request is done.

import { MalformedError } from '../base/errors.js';

export const FRAME_HEADER_SIZE = 4;

/** Frames below this size are not pooled: Node's slab holds those under Buffer.poolSize / 2, our own
 *  slab (below) the others; from this size on, the pool of reusable buffers. */
const POOL_FRAME_BYTES_MIN = 8 * 1024;
/**
 * Frames of 4 to 8 KiB (a 4 KiB WRITE is 4.2 KiB) are carved in turn out of one slab of this size,
 * never reused: one allocation per 15 such frames instead of one each (an allocation each cost about
 * 10 us and GC work per 4 KiB write). A slice kept after its request pins its slab, like Node's own
 * small-buffer pool, only bigger.
 */
const SLAB_BYTES = 64 * 1024;
/** A frame body at least this large still to come is read by the socket straight into its buffer. */
const DIRECT_READ_BYTES_MIN = 16 * 1024;
/** Buffers kept per size class. */
const POOL_BUFFERS_PER_CLASS_MAX = 4;

/** Reusable buffers (received frames, READ data) in power-of-two size classes, bounded. */
export class FramePool {
  private readonly idle = new Map<number, Buffer[]>();
  /** Buffers lent out, by their backing ArrayBuffer (weak: a buffer never given back is just collected). */
  private readonly lent = new WeakMap<ArrayBufferLike, Buffer>();

  private slab: Buffer | undefined;
  private slabUsed = 0;

  acquire(n: number): Buffer {
    if (n < POOL_FRAME_BYTES_MIN) {
      if (n < Buffer.poolSize >>> 1) return Buffer.allocUnsafe(n);
      if (this.slab === undefined || this.slabUsed + n > this.slab.length) {
        this.slab = Buffer.allocUnsafeSlow(SLAB_BYTES);
        this.slabUsed = 0;
      }
      const at = this.slabUsed;
      // 8-byte aligned slices, as Node's pool gives.
      this.slabUsed += (n + 7) & ~7;
      return this.slab.subarray(at, at + n);
    }
    const size = sizeClass(n);
    const whole = this.idle.get(size)?.pop() ?? Buffer.allocUnsafeSlow(size);
    this.lent.set(whole.buffer, whole);
    return whole.subarray(0, n);
  }

  /** Takes back a buffer returned by acquire once nothing refers to it; others are ignored. */
  release(frame: Buffer): void {
    const whole = this.lent.get(frame.buffer);
    if (!whole) return;
    this.lent.delete(frame.buffer);
    const list = this.idle.get(whole.length) ?? [];
    if (list.length < POOL_BUFFERS_PER_CLASS_MAX) {
      list.push(whole);
      this.idle.set(whole.length, list);
    }
  }
}

function sizeClass(n: number): number {
  let size = POOL_FRAME_BYTES_MIN;
  while (size < n) size *= 2;
  return size;
}

export class FrameDecoder {
  private readonly frameBytesMax: number;
  private readonly pool: FramePool;
  private readonly header = Buffer.alloc(FRAME_HEADER_SIZE);
  private headerFill = 0;
  private frame: Buffer | undefined;
  private frameFill = 0;
  private readonly ready: Buffer[] = [];
  private readyBytes = 0;

  constructor(frameBytesMax: number, pool = new FramePool()) {
    this.frameBytesMax = frameBytesMax;
    this.pool = pool;
  }

  /** Bytes received and not yet handed out by next() (complete frames waiting plus a partial one). */
  get buffered(): number {
    return this.readyBytes + this.frameFill + this.headerFill;
  }

  /**
   * Copies `chunk` (which the caller may reuse as soon as this returns) into frames. Throws
   * MalformedError when a header is invalid or announces a frame above the limit; the connection
   * must then be closed (its byte stream can no longer be trusted).
   */
  push(chunk: Buffer): void {
    let at = 0;
    while (at < chunk.length) {
      if (!this.frame) {
        const take = Math.min(FRAME_HEADER_SIZE - this.headerFill, chunk.length - at);
        chunk.copy(this.header, this.headerFill, at, at + take);
        this.headerFill += take;
        at += take;
        if (this.headerFill < FRAME_HEADER_SIZE) return;
        this.headerFill = 0;
        const h = this.header;
        if (h[0] !== 0) throw new MalformedError(`direct-TCP header byte 0x${h[0]!.toString(16)} is not zero`);
        const length = (h[1]! << 16) | (h[2]! << 8) | h[3]!;
        if (length > this.frameBytesMax) throw new MalformedError(`frame of ${length} bytes exceeds ${this.frameBytesMax}`);
        if (length === 0) throw new MalformedError('empty frame');
        this.frame = this.pool.acquire(length);
        this.frameFill = 0;
      }
      const frame = this.frame;
      const take = Math.min(frame.length - this.frameFill, chunk.length - at);
      chunk.copy(frame, this.frameFill, at, at + take);
      this.frameFill += take;
      at += take;
      if (this.frameFill === frame.length) {
        this.ready.push(frame);
        this.readyBytes += frame.length;
        this.frame = undefined;
        this.frameFill = 0;
      }
    }
  }

  /**
   * Where the socket should read next: when a large frame's body is being received, straight into
   * the frame buffer (the kernel copies there, no copy in user space); otherwise into `scratch`,
   * whose bytes are then given to push().
   */
  readTarget(scratch: Buffer): Buffer {
    const frame = this.frame;
    if (frame && frame.length - this.frameFill >= DIRECT_READ_BYTES_MIN) return frame.subarray(this.frameFill);
    return scratch;
  }

  /** `n` bytes were read into the buffer readTarget() returned for the current frame. */
  commitDirect(n: number): void {
    const frame = this.frame!;
    this.frameFill += n;
    if (this.frameFill === frame.length) {
      this.ready.push(frame);
      this.readyBytes += frame.length;
      this.frame = undefined;
      this.frameFill = 0;
    }
  }

  /** The next complete frame (without its 4-byte header), or undefined. */
  next(): Buffer | undefined {
    const f = this.ready.shift();
    if (f) this.readyBytes -= f.length;
    return f;
  }

  /** Hands a frame returned by next() back once its request and every view of it are done. */
  release(frame: Buffer): void {
    this.pool.release(frame);
  }
}

/** Writes the 4-byte direct-TCP header for a frame of `length` bytes into buf at `at`. */
export function writeFrameHeader(buf: Buffer, at: number, length: number): void {
  buf[at] = 0;
  buf[at + 1] = (length >>> 16) & 0xff;
  buf[at + 2] = (length >>> 8) & 0xff;
  buf[at + 3] = length & 0xff;
}
