import { createCipheriv } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { AesCmac, aesCmac, cmacSubkeys } from '../../src/crypto/cmac.js';
import { RFC4493 } from './vectors.js';

const hx = (b: Buffer): string => b.toString('hex');

/** Splits `buf` at the given offsets into views. */
function split(buf: Buffer, cuts: number[]): Buffer[] {
  const points = [0, ...[...new Set(cuts)].sort((a, b) => a - b), buf.length];
  return points.slice(1).map((end, i) => buf.subarray(points[i], end));
}

/** RFC 4493 2.4 transcribed literally over a contiguous message, one AES-ECB call per block. */
function naiveCmac(key: Buffer, m: Buffer): Buffer {
  const aes = (block: Buffer): Buffer => {
    const c = createCipheriv('aes-128-ecb', key, null);
    c.setAutoPadding(false);
    return Buffer.concat([c.update(block), c.final()]);
  };
  const { k1, k2 } = cmacSubkeys(key);
  const n = Math.max(1, Math.ceil(m.length / 16));
  const complete = m.length > 0 && m.length % 16 === 0;
  const last = Buffer.alloc(16);
  m.copy(last, 0, (n - 1) * 16);
  if (!complete) last[m.length - (n - 1) * 16] = 0x80;
  const sub = complete ? k1 : k2;
  for (let i = 0; i < 16; i++) last[i] = last[i]! ^ sub[i]!;
  let x: Buffer = Buffer.alloc(16);
  for (let b = 0; b < n; b++) {
    const block = b === n - 1 ? last : m.subarray(b * 16, b * 16 + 16);
    const y = Buffer.alloc(16);
    for (let i = 0; i < 16; i++) y[i] = x[i]! ^ block[i]!;
    x = aes(y);
  }
  return x;
}

describe('AES-CMAC (RFC 4493)', () => {
  it('the literal reference agrees with RFC 4493 (so it can judge random inputs)', () => {
    for (const ex of RFC4493.examples) {
      expect(hx(naiveCmac(RFC4493.key, RFC4493.message.subarray(0, ex.length)))).toBe(hx(ex.mac));
    }
  });

  it('generates the subkeys of RFC 4493 section 4', () => {
    const { k1, k2 } = cmacSubkeys(RFC4493.key);
    expect(hx(k1)).toBe(hx(RFC4493.k1));
    expect(hx(k2)).toBe(hx(RFC4493.k2));
  });

  for (const ex of RFC4493.examples) {
    it(`RFC 4493 example, Mlen = ${ex.length}`, () => {
      expect(hx(aesCmac(RFC4493.key, [RFC4493.message.subarray(0, ex.length)]))).toBe(hx(ex.mac));
    });

    it(`RFC 4493 example, Mlen = ${ex.length}, split at every offset`, () => {
      const m = RFC4493.message.subarray(0, ex.length);
      for (let cut = 0; cut <= m.length; cut++) {
        expect(hx(aesCmac(RFC4493.key, [m.subarray(0, cut), m.subarray(cut)]))).toBe(hx(ex.mac));
      }
    });
  }

  it('byte-at-a-time and many empty parts give the RFC result', () => {
    const mac = new AesCmac(RFC4493.key);
    for (const b of RFC4493.message.subarray(0, 40)) mac.update(Buffer.alloc(0)).update(Buffer.from([b]));
    expect(hx(mac.digest())).toBe(hx(RFC4493.examples[2]!.mac));
  });

  it('is independent of how a random message is split (large and odd-sized parts)', () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.uint8Array({ maxLength: 100 }), fc.uint8Array({ maxLength: 200_000 })),
        fc.array(fc.nat(), { maxLength: 6 }),
        (bytes, rawCuts) => {
          const msg = Buffer.from(bytes);
          const one = naiveCmac(RFC4493.key, msg);
          const parts = split(msg, rawCuts.map((c) => c % (msg.length + 1)));
          expect(hx(aesCmac(RFC4493.key, parts))).toBe(hx(one));
        },
      ),
      { numRuns: 60 },
    );
  });

  it('refuses update or digest after digest', () => {
    const mac = new AesCmac(RFC4493.key);
    mac.digest();
    expect(() => mac.update(Buffer.alloc(1))).toThrow(/assertion/);
    expect(() => mac.digest()).toThrow(/assertion/);
  });
});
