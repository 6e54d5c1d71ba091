import { describe, expect, it } from 'vitest';
import { NonceGenerator, TRANSFORM_NONCE_FIELD_SIZE } from '../../src/crypto/nonce.js';
import { CipherId } from '../../src/crypto/sealing.js';
import { TesseraError } from '../../src/base/errors.js';

const fixedRandom = { bytes: (n: number) => Buffer.alloc(n, 0xab) };

describe('NonceGenerator', () => {
  it('lays out random prefix then a little-endian counter: 11 bytes for CCM, 12 for GCM', () => {
    const ccm = new NonceGenerator(CipherId.AES_128_CCM, { random: fixedRandom });
    expect(ccm.next().toString('hex')).toBe('ababab' + '0000000000000000');
    expect(ccm.next().toString('hex')).toBe('ababab' + '0100000000000000');
    const gcm = new NonceGenerator(CipherId.AES_256_GCM, { random: fixedRandom });
    expect(gcm.length).toBe(12);
    expect(gcm.next().toString('hex')).toBe('abababab' + '0000000000000000');
    expect(gcm.issued).toBe(1n);
  });

  it('never repeats within a generator', () => {
    const g = new NonceGenerator(CipherId.AES_128_GCM);
    const seen = new Set<string>();
    for (let i = 0; i < 100_000; i++) seen.add(g.next().toString('hex'));
    expect(seen.size).toBe(100_000);
  });

  it('draws a different prefix per generator', () => {
    const a = new NonceGenerator(CipherId.AES_128_GCM).next();
    const b = new NonceGenerator(CipherId.AES_128_GCM).next();
    expect(a.subarray(0, 4).equals(b.subarray(0, 4))).toBe(false); // fails with probability 2^-32
  });

  it('writes the 16-byte transform header Nonce field with zero Reserved bytes', () => {
    const g = new NonceGenerator(CipherId.AES_128_CCM, { random: fixedRandom });
    const header = Buffer.alloc(52, 0xff);
    const nonce = g.writeField(header, 20);
    expect(header.subarray(20, 20 + TRANSFORM_NONCE_FIELD_SIZE).toString('hex')).toBe('ababab' + '0000000000000000' + '0000000000');
    expect(nonce.length).toBe(11);
    expect(nonce.buffer === header.buffer && nonce.byteOffset === header.byteOffset + 20).toBe(true);
    expect(header[19]).toBe(0xff);
    expect(header[36]).toBe(0xff);
    expect(() => g.writeField(header, 40)).toThrow(/assertion/);
  });

  it('refuses to continue at the counter limit instead of wrapping', () => {
    const g = new NonceGenerator(CipherId.AES_128_GCM, { counterLimit: 3n });
    g.next();
    g.next();
    g.next();
    let thrown: unknown;
    try {
      g.next();
    } catch (e) {
      thrown = e;
    }
    expect(thrown).toBeInstanceOf(TesseraError);
    expect((thrown as TesseraError).code).toBe('TESSERA_LIMIT_EXCEEDED');
    expect(() => g.next()).toThrow(TesseraError);
    expect(g.issued).toBe(3n);
  });

  it('does not accept a limit beyond the 64-bit counter space', () => {
    expect(() => new NonceGenerator(CipherId.AES_128_GCM, { counterLimit: (1n << 64n) + 1n })).toThrow(/assertion/);
    expect(() => new NonceGenerator(CipherId.AES_128_GCM, { counterLimit: 0n })).toThrow(/assertion/);
  });
});
