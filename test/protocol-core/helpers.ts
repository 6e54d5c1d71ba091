// Test helpers: build SMB2 messages byte by byte, independently of the encoders under test.

import fc from 'fast-check';
import { expect } from 'vitest';
import { MalformedError } from '../../src/base/errors.js';

/** Hex (whitespace and '|' ignored) to Buffer. */
export function hex(s: string): Buffer {
  return Buffer.from(s.replace(/[\s|]/g, ''), 'hex');
}

/** A sync request header written field by field from the MS-SMB2 2.2.1.2 table. */
export function rawHeader(command: number, o: { messageId?: bigint; flags?: number; nextCommand?: number; treeId?: number; sessionId?: bigint } = {}): Buffer {
  const h = Buffer.alloc(64);
  h.write('fe534d42', 0, 'hex');
  h.writeUInt16LE(64, 4);
  h.writeUInt16LE(command, 12);
  h.writeUInt32LE(o.flags ?? 0, 16);
  h.writeUInt32LE(o.nextCommand ?? 0, 20);
  h.writeBigUInt64LE(o.messageId ?? 0n, 24);
  h.writeUInt32LE(o.treeId ?? 0, 36);
  h.writeBigUInt64LE(o.sessionId ?? 0n, 40);
  return h;
}

/** Header + body. */
export function message(command: number, body: Buffer): Buffer {
  return Buffer.concat([rawHeader(command), body]);
}

/** Runs decode and accepts only success or MalformedError. */
export function onlyMalformed(decode: (b: Buffer) => unknown, b: Buffer): void {
  try {
    decode(b);
  } catch (e) {
    if (!(e instanceof MalformedError)) throw e;
  }
}

/** Mutations of a valid message: random byte overwrites, truncation and extension. */
export function mutated(valid: Buffer): fc.Arbitrary<Buffer> {
  return fc
    .record({
      edits: fc.array(fc.record({ at: fc.nat({ max: valid.length - 1 }), v: fc.integer({ min: 0, max: 255 }) }), { maxLength: 8 }),
      cut: fc.nat({ max: valid.length }),
      extra: fc.uint8Array({ maxLength: 32 }),
      mode: fc.constantFrom('edit', 'cut', 'extend', 'all'),
    })
    .map(({ edits, cut, extra, mode }) => {
      let b = Buffer.from(valid);
      if (mode === 'edit' || mode === 'all') for (const e of edits) b[e.at] = e.v;
      if (mode === 'cut' || mode === 'all') b = b.subarray(0, cut);
      if (mode === 'extend') b = Buffer.concat([b, Buffer.from(extra)]);
      return b;
    });
}

/** Fuzzes decode with random bytes, random bytes behind a valid header, and mutations of valid. */
export function fuzzDecoder(decode: (b: Buffer) => unknown, valid: Buffer, runs = 2000): void {
  fc.assert(fc.property(fc.uint8Array({ maxLength: 256 }), (a) => onlyMalformed(decode, Buffer.from(a))), { numRuns: runs });
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 256 }), (a) => onlyMalformed(decode, Buffer.concat([valid.subarray(0, 64), Buffer.from(a)]))),
    { numRuns: runs },
  );
  fc.assert(fc.property(mutated(valid), (b) => onlyMalformed(decode, b)), { numRuns: runs * 2 });
}

export function expectMalformed(fn: () => unknown): void {
  expect(fn).toThrow(MalformedError);
}

/** Encodes a BodyEncoder-like body behind a zero header at offset 64 of a fresh buffer; returns the body bytes. */
export function encodeBody(enc: { byteLength(): number; encodeInto(buf: Buffer, at: number): void }): Buffer {
  const buf = Buffer.alloc(64 + enc.byteLength(), 0xee);
  enc.encodeInto(buf, 64);
  return buf.subarray(64);
}
