// Test helpers for the file-command codecs: message framing and decoder fuzzing.

import fc from 'fast-check';
import { expect } from 'vitest';
import { MalformedError } from '../../src/base/errors.js';
import type { BodyEncoder } from '../../src/protocol/encoder.js';

/** A message: 64 zero bytes standing in for the SMB2 header, then the body. */
export function msgOf(body: Buffer | number[]): Buffer {
  return Buffer.concat([Buffer.alloc(64), Buffer.from(body)]);
}

/** Encodes a response body with a dummy header in front; returns header + body (+ payload). */
export function encodeBody(enc: BodyEncoder): { msg: Buffer; body: Buffer } {
  const len = enc.byteLength();
  const buf = Buffer.alloc(64 + len, 0xee);
  buf.fill(0, 0, 64);
  enc.encodeInto(buf, 64);
  const msg = enc.payload ? Buffer.concat([buf, enc.payload]) : buf;
  return { msg, body: msg.subarray(64) };
}

/** Little builder for golden request bodies. */
export class Bytes {
  private parts: number[] = [];
  u8(v: number): this {
    this.parts.push(v & 0xff);
    return this;
  }
  u16(v: number): this {
    const b = Buffer.alloc(2);
    b.writeUInt16LE(v);
    return this.raw(b);
  }
  u32(v: number): this {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(v >>> 0);
    return this.raw(b);
  }
  u64(v: bigint): this {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(v);
    return this.raw(b);
  }
  raw(b: Buffer | number[]): this {
    for (const x of b) this.parts.push(x);
    return this;
  }
  zeros(n: number): this {
    for (let i = 0; i < n; i++) this.parts.push(0);
    return this;
  }
  utf16(s: string): this {
    return this.raw(Buffer.from(s, 'utf16le'));
  }
  get length(): number {
    return this.parts.length;
  }
  build(): Buffer {
    return Buffer.from(this.parts);
  }
}

function onlyMalformed(decode: (b: Buffer) => unknown, input: Buffer): void {
  try {
    decode(input);
  } catch (e) {
    if (!(e instanceof MalformedError)) {
      throw new Error(`decoder threw ${(e as Error)?.name}: ${(e as Error)?.message} on ${input.toString('hex')}`);
    }
  }
}

/**
 * Fuzzes a decoder: random bytes, random bytes behind a valid header-sized prefix, truncations of a
 * valid message, and a valid message with random bytes overwritten. Only MalformedError may escape.
 */
export function fuzzDecoder(decode: (b: Buffer) => unknown, valid: Buffer, runs = 400): void {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 512 }), (bytes) => {
      onlyMalformed(decode, Buffer.from(bytes));
      onlyMalformed(decode, Buffer.concat([Buffer.alloc(64), Buffer.from(bytes)]));
    }),
    { numRuns: runs },
  );
  fc.assert(
    fc.property(fc.nat(valid.length), (cut) => {
      onlyMalformed(decode, valid.subarray(0, cut));
    }),
    { numRuns: Math.min(runs, valid.length + 1) },
  );
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.nat(Math.max(valid.length - 1, 0)), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 }),
      (edits) => {
        const m = Buffer.from(valid);
        for (const [at, v] of edits) if (at < m.length) m[at] = v;
        onlyMalformed(decode, m);
      },
    ),
    { numRuns: runs },
  );
  // The valid message itself must decode.
  expect(() => decode(valid)).not.toThrow();
}
