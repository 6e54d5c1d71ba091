import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MalformedError } from '../../src/base/errors.js';
import { NdrReader, NdrWriter, uuidFromBytes, uuidToBytes } from '../../src/protocol/ndr.js';

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');

describe('NdrWriter', () => {
  it('aligns primitives to their size with zero padding', () => {
    const w = new NdrWriter(4);
    w.u8(0xaa);
    w.u16(0x1234);
    w.u8(0xbb);
    w.u32(0xdeadbeef);
    w.u8(0xcc);
    w.u64(0x0102030405060708n);
    expect(w.finish().toString('hex')).toBe('aa003412bb000000efbeadde' + 'cc000000' + '0807060504030201');
  });

  it('writes [string] wchar_t as MaximumCount, Offset, ActualCount and NUL-terminated UTF-16', () => {
    const w = new NdrWriter();
    w.wstring('ab');
    expect(w.finish()).toEqual(hex('03000000 00000000 03000000 6100 6200 0000'));
  });

  it('defers embedded pointees after the containing construct, depth first, with MIDL referent ids', () => {
    // struct { LPWSTR a; DWORD n; LPWSTR b; } followed by a DWORD parameter
    const w = new NdrWriter();
    w.construct(() => {
      w.uniqueWstring('x');
      w.u32(7);
      w.uniqueWstring(null);
      w.unique({ inner: 'y' }, (v) => {
        w.u32(9);
        w.uniqueWstring(v.inner); // a pointee's own pointee follows that pointee
      });
    });
    w.construct(() => w.u32(0x55));
    expect(w.finish()).toEqual(
      hex(
        '00000200 07000000 00000000 04000200' + // scalars: ref x, 7, NULL, ref struct
          '02000000 00000000 02000000 7800 0000' + // "x"
          '09000000 08000200' + // struct pointee (aligned after the string), its ref to "y"
          '02000000 00000000 02000000 7900 0000' + // "y"
          '55000000',
      ),
    );
  });

  it('writes conformant arrays as MaximumCount then elements', () => {
    const w = new NdrWriter();
    w.conformantArray([1, 2], (v) => w.u16(v));
    expect(w.finish()).toEqual(hex('02000000 0100 0200'));
  });

  it('grows its buffer', () => {
    const w = new NdrWriter(16);
    for (let i = 0; i < 1000; i++) w.u32(i);
    const out = w.finish();
    expect(out.length).toBe(4000);
    expect(out.readUInt32LE(3996)).toBe(999);
  });
});

describe('NdrReader', () => {
  it('reads what the writer wrote, including deferred pointees', () => {
    const w = new NdrWriter();
    w.construct(() => {
      w.uniqueWstring('héllo ☃');
      w.u32(42);
      w.uniqueWstring(null);
      w.unique([3, 4, 5], (list) => w.conformantArray(list, (v) => w.u32(v)));
    });
    w.construct(() => w.u64(123n));
    const r = new NdrReader(w.finish());
    const parsed = r.construct(() => {
      const a = r.unique(() => r.wstring());
      const n = r.u32();
      const b = r.unique(() => r.wstring());
      const list = r.unique(() => r.conformantArray(() => r.u32(), 4));
      return { a, n, b, list };
    });
    expect(parsed.a.value).toBe('héllo ☃');
    expect(parsed.n).toBe(42);
    expect(parsed.b.value).toBeNull();
    expect(parsed.list.value).toEqual([3, 4, 5]);
    expect(r.construct(() => r.u64())).toBe(123n);
    expect(r.remaining).toBe(0);
  });

  it('reads full pointers once per referent id', () => {
    const buf = hex('00000200 00000200 00000000 2a000000');
    const r = new NdrReader(buf);
    let reads = 0;
    const [a, b, c] = r.construct(() => [
      r.full(() => (reads++, r.u32())),
      r.full(() => (reads++, r.u32())),
      r.full(() => (reads++, r.u32())),
    ]);
    expect(reads).toBe(1);
    expect(a).toBe(b);
    expect(a!.value).toBe(42);
    expect(c!.value).toBeNull();
  });

  it('rejects a null embedded [ref] pointer', () => {
    expect(() => new NdrReader(hex('00000000')).construct(() => new NdrReader(hex('00000000')).ref(() => 1))).toThrow(
      MalformedError,
    );
  });

  const bad: Array<[string, string]> = [
    ['truncated u32', '0100'],
    ['string ActualCount above MaximumCount', '01000000 00000000 02000000 4100 0000'],
    ['string with non-zero offset', '02000000 01000000 01000000 0000'],
    ['string without terminator', '02000000 00000000 02000000 4100 4200'],
    ['empty string encoding', '00000000 00000000 00000000'],
    ['string longer than the stub', '00100000 00000000 00100000 4100'],
    ['string over the cap', '00000100 00000000 00000100'],
  ];
  for (const [what, bytes] of bad) {
    it(`rejects ${what}`, () => {
      expect(() => new NdrReader(hex(bytes)).wstring()).toThrow(MalformedError);
    });
  }

  it('caps conformant array counts by the stub and by the cap', () => {
    expect(() => new NdrReader(hex('10000000 00000000')).conformantArray(() => 0, 4)).toThrow(MalformedError);
    expect(() => new NdrReader(hex('ffffffff')).conformantBytes()).toThrow(MalformedError);
    const big = Buffer.alloc(8 + 70_000);
    big.writeUInt32LE(70_000, 0);
    expect(() => new NdrReader(big).conformantBytes()).toThrow(/exceeds 65536/);
    expect(new NdrReader(hex('02000000 abcd')).conformantBytes()).toEqual(hex('abcd'));
  });

  it('bounds the pointees followed', () => {
    const ids = Buffer.alloc(4 * 100);
    for (let i = 0; i < 100; i++) ids.writeUInt32LE(0x20000 + 4 * i, 4 * i);
    const r = new NdrReader(ids, { pointeesMax: 10 });
    expect(() => r.construct(() => { for (let i = 0; i < 100; i++) r.unique(() => 0); })).toThrow(MalformedError);
  });

  it('throws only MalformedError on random input', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        const r = new NdrReader(Buffer.from(bytes), { arrayCountMax: 1000 });
        try {
          r.construct(() => {
            r.unique(() => r.wstring());
            r.u16();
            r.full(() => r.conformantArray(() => r.unique(() => r.wstring()), 4));
            r.u64();
            r.ref(() => r.conformantBytes());
          });
        } catch (e) {
          if (!(e instanceof MalformedError)) throw e;
        }
      }),
      { numRuns: 3000 },
    );
  });
});

describe('uuid', () => {
  it('encodes the first three fields little-endian (C706 appendix A)', () => {
    const b = uuidToBytes('8a885d04-1ceb-11c9-9fe8-08002b104860');
    expect(b.toString('hex')).toBe('045d888aeb1cc9119fe808002b104860');
    expect(uuidFromBytes(b)).toBe('8a885d04-1ceb-11c9-9fe8-08002b104860');
  });
});
