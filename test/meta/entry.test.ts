import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { decodeEntry, encodeEntry, MalformedEntryError, MetaVersionError, type Entry } from '../../src/meta/entry.js';
import { pack, RECORD_VERSION } from '../../src/meta/codec.js';
import { limits } from '../../src/base/limits.js';

const good: Entry = { v: RECORD_VERSION, n: 'node-a', i: 3, s: 17, w: 12, c: { t: 'ns.create', parent: 1, name: 'x.vhdx' } };

describe('log entry envelope', () => {
  it('round-trips and encodes deterministically (field order does not matter)', () => {
    const b = encodeEntry(good);
    expect(decodeEntry(b)).toEqual(good);
    const shuffled = { c: good.c, w: good.w, s: good.s, i: good.i, n: good.n, v: good.v };
    expect(encodeEntry(shuffled).equals(b)).toBe(true);
  });

  it('keeps large integers and nested values of the command', () => {
    const e: Entry = { ...good, s: Number.MAX_SAFE_INTEGER, c: { t: 'x', big: 2n ** 60n, list: [1, 'a', { b: true }] } };
    const d = decodeEntry(encodeEntry(e));
    expect(d.s).toBe(Number.MAX_SAFE_INTEGER);
    expect(BigInt(d.c.big as bigint)).toBe(2n ** 60n);
    expect(d.c.list).toEqual([1, 'a', { b: true }]);
  });

  it('throws MetaVersionError for an envelope of another record version', () => {
    const other = encodeEntry({ ...good, v: RECORD_VERSION + 1 });
    expect(() => decodeEntry(other)).toThrow(MetaVersionError);
    // Even when the rest of the shape is unknown to this version.
    expect(() => decodeEntry(pack({ v: RECORD_VERSION + 1, whatever: true }))).toThrow(MetaVersionError);
  });

  const junk: [string, unknown][] = [
    ['a number', 5],
    ['an array', [1, 2]],
    ['null', null],
    ['no version', { n: 'a', i: 1, s: 1, w: 1, c: { t: 'x' } }],
    ['string version', { ...good, v: '1' }],
    ['empty node', { ...good, n: '' }],
    ['node with NUL', { ...good, n: 'a\0b' }],
    ['long node', { ...good, n: 'x'.repeat(limits.metaNodeIdLengthMax + 1) }],
    ['negative incarnation', { ...good, i: -1 }],
    ['fractional seq', { ...good, s: 1.5 }],
    ['unsafe watermark', { ...good, w: 2 ** 60 }],
    ['command not an object', { ...good, c: 'ns.create' }],
    ['command array', { ...good, c: ['t'] }],
    ['command without name', { ...good, c: { x: 1 } }],
    ['command with empty name', { ...good, c: { t: '' } }],
    ['command name too long', { ...good, c: { t: 'x'.repeat(limits.metaCommandNameLengthMax + 1) } }],
  ];
  for (const [what, value] of junk) {
    it(`rejects ${what}`, () => {
      expect(() => decodeEntry(pack(value))).toThrow(MalformedEntryError);
    });
  }

  it('rejects truncated, padded and empty bytes', () => {
    const b = encodeEntry(good);
    expect(() => decodeEntry(b.subarray(0, b.length - 1))).toThrow(MalformedEntryError);
    expect(() => decodeEntry(Buffer.concat([b, Buffer.from([0])]))).toThrow(MalformedEntryError);
    expect(() => decodeEntry(Buffer.alloc(0))).toThrow(MalformedEntryError);
  });

  it('refuses to encode a malformed envelope', () => {
    expect(() => encodeEntry({ ...good, n: '' })).toThrow(MalformedEntryError);
    expect(() => encodeEntry({ ...good, c: { t: 5 } as never })).toThrow(MalformedEntryError);
  });

  it('random bytes only ever give MalformedEntryError or MetaVersionError', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        try {
          decodeEntry(bytes);
        } catch (err) {
          return err instanceof MalformedEntryError || err instanceof MetaVersionError;
        }
        return true;
      }),
      { numRuns: 2000 },
    );
  });

  it('mutations of a valid entry decode to a valid entry or throw the typed errors', () => {
    const b = encodeEntry(good);
    fc.assert(
      fc.property(fc.nat(b.length - 1), fc.integer({ min: 0, max: 255 }), (at, byte) => {
        const m = Buffer.from(b);
        m[at] = byte;
        try {
          const d = decodeEntry(m);
          expect(typeof d.n).toBe('string');
          expect(typeof d.c.t).toBe('string');
        } catch (err) {
          return err instanceof MalformedEntryError || err instanceof MetaVersionError;
        }
        return true;
      }),
      { numRuns: 2000 },
    );
  });
});
