import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { limits } from '../../src/base/limits.js';
import { splitCompound } from '../../src/protocol/compound.js';
import { expectMalformed, onlyMalformed, rawHeader } from './helpers.js';

/** A chain of messages of the given total lengths; NextCommand set on all but the last. */
function chain(lengths: number[]): Buffer {
  const parts = lengths.map((len, i) => {
    const m = Buffer.alloc(len, i + 1);
    rawHeader(i, { nextCommand: i < lengths.length - 1 ? len : 0, messageId: BigInt(i) }).copy(m);
    return m;
  });
  return Buffer.concat(parts);
}

describe('splitCompound (MS-SMB2 3.3.5.2.7)', () => {
  it('returns a single message unchanged', () => {
    const f = chain([70]);
    const out = splitCompound(f);
    expect(out).toHaveLength(1);
    expect(out[0]!.equals(f)).toBe(true);
  });

  it('splits a chain into views; the last message runs to the end unpadded', () => {
    const f = chain([72, 136, 67]);
    const out = splitCompound(f);
    expect(out.map((m) => m.length)).toEqual([72, 136, 67]);
    expect(out.map((m) => m.readUInt16LE(12))).toEqual([0, 1, 2]);
    expect(out[1]!.buffer).toBe(f.buffer);
    expect(out[1]!.byteOffset).toBe(f.byteOffset + 72);
  });

  it('rejects unaligned, too small and out-of-frame NextCommand values', () => {
    const unaligned = chain([72, 64]);
    unaligned.writeUInt32LE(68, 20);
    expectMalformed(() => splitCompound(unaligned));
    const small = chain([72, 64]);
    small.writeUInt32LE(56, 20);
    expectMalformed(() => splitCompound(small));
    const beyond = chain([72, 64]);
    beyond.writeUInt32LE(80, 20);
    expectMalformed(() => splitCompound(beyond));
    expectMalformed(() => splitCompound(chain([72, 64]).subarray(0, 72 + 63))); // next header truncated
    expectMalformed(() => splitCompound(Buffer.alloc(40)));
    const notSmb2 = chain([72, 64]);
    notSmb2[72] = 0xfd;
    expectMalformed(() => splitCompound(notSmb2));
  });

  it(`allows ${limits.compoundCommandsMax} commands and no more`, () => {
    expect(splitCompound(chain(new Array(limits.compoundCommandsMax).fill(64)))).toHaveLength(limits.compoundCommandsMax);
    expectMalformed(() => splitCompound(chain(new Array(limits.compoundCommandsMax + 1).fill(64))));
  });

  it('fuzz: random frames and random chains throw only MalformedError; valid chains round-trip', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 400 }), (a) => onlyMalformed(splitCompound, Buffer.from(a))), { numRuns: 3000 });
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 8, max: 40 }), { minLength: 1, maxLength: 10 }), fc.integer({ min: 64, max: 200 }), (units, last) => {
        const lengths = [...units.slice(0, -1).map((u) => u * 8), last];
        const f = chain(lengths);
        expect(splitCompound(f).map((m) => m.length)).toEqual(lengths);
      }),
    );
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 8, max: 20 }), { minLength: 2, maxLength: 6 }), fc.nat(), fc.nat({ max: 0xffffffff }), (units, which, v) => {
        const f = chain(units.map((u) => u * 8));
        let at = 0;
        for (let i = 0; i < which % units.length; i++) at += units[i]! * 8;
        f.writeUInt32LE(v, at + 20);
        onlyMalformed(splitCompound, f);
      }),
      { numRuns: 2000 },
    );
  });
});
