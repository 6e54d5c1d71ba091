import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { FrameDecoder, writeFrameHeader } from '../../src/server/framing.js';
import { MalformedError } from '../../src/base/errors.js';
import { CreditWindow } from '../../src/server/credits.js';

function frame(payload: Buffer): Buffer {
  const out = Buffer.alloc(4 + payload.length);
  writeFrameHeader(out, 0, payload.length);
  payload.copy(out, 4);
  return out;
}

describe('FrameDecoder (direct-TCP framing, MS-SMB2 2.1)', () => {
  it('returns the same frames whatever the split points of the byte stream', () => {
    const payloads = [Buffer.from('a'), Buffer.alloc(300, 7), Buffer.from('hello world'), Buffer.alloc(70000, 3)];
    const stream = Buffer.concat(payloads.map(frame));
    for (let split = 1; split < stream.length; split += split < 400 ? 1 : 997) {
      const d = new FrameDecoder(1 << 20);
      const got: Buffer[] = [];
      for (const part of [stream.subarray(0, split), stream.subarray(split)]) {
        d.push(part);
        for (let f = d.next(); f; f = d.next()) got.push(Buffer.from(f));
      }
      expect(got.map((g) => g.length)).toEqual(payloads.map((p) => p.length));
      expect(got.every((g, i) => g.equals(payloads[i]!))).toBe(true);
      expect(d.buffered).toBe(0);
    }
  });

  it('copies frames out of the chunk (the socket reuses its read buffer) and reuses released buffers', () => {
    const chunk = frame(Buffer.alloc(20000, 9));
    const d = new FrameDecoder(1 << 20);
    d.push(chunk);
    chunk.fill(0); // the socket's buffer is overwritten by the next read
    const f = d.next()!;
    expect(f.length).toBe(20000);
    expect(f.every((b) => b === 9)).toBe(true);
    d.release(f);
    d.push(frame(Buffer.alloc(20001, 5)));
    const g = d.next()!;
    expect(g.buffer).toBe(f.buffer); // same pooled memory
    expect(g.every((b) => b === 5)).toBe(true);
  });

  it('4-8 KiB frames kept by their requests never share bytes, even when released and followed by more', () => {
    const d = new FrameDecoder(1 << 20);
    const payloads = Array.from({ length: 40 }, (_, i) => Buffer.alloc(4096 + 100 + i * 97, i + 1));
    const kept: Buffer[] = [];
    for (const p of payloads) {
      d.push(frame(p));
      const f = d.next()!;
      kept.push(f);
      d.release(f); // a request done with its frame: the bytes must still not be handed out again
    }
    for (let i = 0; i < payloads.length; i++) expect(kept[i]!.equals(payloads[i]!)).toBe(true);
    // Slices of shared slabs: fewer backing buffers than frames.
    expect(new Set(kept.map((k) => k.buffer)).size).toBeLessThan(payloads.length / 4);
  });

  it('rejects a non-zero first header byte, an empty frame and an oversized frame', () => {
    expect(() => new FrameDecoder(1024).push(Buffer.from([1, 0, 0, 1, 0]))).toThrow(MalformedError);
    expect(() => new FrameDecoder(1024).push(Buffer.from([0, 0, 0, 0]))).toThrow(MalformedError);
    expect(() => new FrameDecoder(1024).push(Buffer.from([0, 0, 4, 1]))).toThrow(MalformedError);
  });

  it('never throws anything but MalformedError on random input', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 64 }), { maxLength: 16 }), (chunks) => {
        const d = new FrameDecoder(4096);
        try {
          for (const c of chunks) {
            d.push(Buffer.from(c));
            while (d.next());
          }
        } catch (err) {
          if (!(err instanceof MalformedError)) throw err;
        }
      }),
    );
  });
});

describe('CreditWindow (MS-SMB2 3.3.1.1)', () => {
  it('accepts ids out of order inside the window and refuses reuse', () => {
    const w = new CreditWindow(8192, 0n, 1);
    expect(w.consume(0n, 1)).toBe(true);
    expect(w.grant(10, 8192)).toBe(10);
    expect(w.consume(5n, 1)).toBe(true);
    expect(w.consume(5n, 1)).toBe(false);
    expect(w.consume(1n, 4)).toBe(true);
    expect(w.consume(11n, 1)).toBe(false); // outside [6, 11)
    expect(w.outstanding).toBe(5);
  });

  it('never lets the client hold more than the maximum', () => {
    const w = new CreditWindow(16, 0n, 1);
    expect(w.grant(100, 100)).toBe(15);
    expect(w.grant(100, 100)).toBe(0);
    expect(w.outstanding).toBe(16);
  });

  it('never starves a client that has used every credit', () => {
    const w = new CreditWindow(4, 0n, 1);
    expect(w.consume(0n, 1)).toBe(true);
    expect(w.grant(0, 8)).toBe(1);
  });
});

describe('FrameDecoder direct reads', () => {
  it('lets the socket read a large frame body straight into the frame buffer', () => {
    const scratch = Buffer.alloc(64);
    const d = new FrameDecoder(1 << 20);
    const body = Buffer.alloc(40000);
    for (let i = 0; i < body.length; i++) body[i] = i & 0xff;
    const wire = frame(body);
    // The header and the first bytes arrive through the scratch buffer...
    expect(d.readTarget(scratch)).toBe(scratch);
    d.push(wire.subarray(0, 10));
    // ...then the rest is read directly into the frame, in two reads.
    let target = d.readTarget(scratch);
    expect(target).not.toBe(scratch);
    expect(target.length).toBe(40000 - 6);
    wire.copy(target, 0, 10, 20010);
    d.commitDirect(20000);
    expect(d.next()).toBeUndefined();
    target = d.readTarget(scratch);
    expect(target.length).toBe(40000 - 6 - 20000);
    wire.copy(target, 0, 20010);
    d.commitDirect(wire.length - 20010);
    const f = d.next()!;
    expect(f.equals(body)).toBe(true);
    expect(d.readTarget(scratch)).toBe(scratch);
  });
});
