import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { CipherId, cipherKeyLength, inPlaceGcmAvailable, nonceLength, seal, sealInPlace, unseal, unsealInPlace } from '../../src/crypto/sealing.js';
import type { Sealed } from '../../src/crypto/sealing.js';
import { ENC30_CCM, ENC311_GCM } from './vectors.js';

const hx = (b: Buffer): string => b.toString('hex');
const joined = (s: Sealed): Buffer => (Array.isArray(s.ciphertext) ? Buffer.concat(s.ciphertext) : s.ciphertext);

/** The pieces of an SMB2 TRANSFORM_HEADER message (MS-SMB2 2.2.41): tag, nonce, AAD, ciphertext. */
function parseTransformed(msg: Buffer, cipherId: CipherId) {
  return {
    tag: msg.subarray(4, 20),
    nonce: msg.subarray(20, 20 + nonceLength(cipherId)),
    aad: msg.subarray(20, 52),
    ciphertext: msg.subarray(52),
  };
}

const ALL = [CipherId.AES_128_CCM, CipherId.AES_128_GCM, CipherId.AES_256_CCM, CipherId.AES_256_GCM] as const;

describe('sealing: published vectors', () => {
  it('AES-128-GCM (3.1.1 blog): WRITE and READ requests encrypt to the published bytes', () => {
    for (const req of [ENC311_GCM.writeRequest, ENC311_GCM.readRequest]) {
      const aad = req.transformHeader.subarray(20, 52);
      const s = seal(CipherId.AES_128_GCM, ENC311_GCM.clientEncryptionKey, req.nonce, aad, [req.plaintext]);
      expect(hx(joined(s))).toBe(hx(req.ciphertext));
      expect(hx(s.tag)).toBe(hx(req.transformHeader.subarray(4, 20)));
      // The server decrypts it with its DecryptionKey (= the client's EncryptionKey).
      const p = unseal(CipherId.AES_128_GCM, ENC311_GCM.clientEncryptionKey, req.nonce, aad, req.ciphertext, s.tag);
      expect(p && hx(p)).toBe(hx(req.plaintext));
    }
  });

  it('AES-128-GCM (3.1.1 blog): WRITE and READ responses decrypt, and re-encrypt to the same bytes', () => {
    for (const rsp of [ENC311_GCM.writeResponse, ENC311_GCM.readResponse]) {
      const t = parseTransformed(rsp.transformed, CipherId.AES_128_GCM);
      const key = ENC311_GCM.clientDecryptionKey; // the server's EncryptionKey
      const p = unseal(CipherId.AES_128_GCM, key, t.nonce, t.aad, t.ciphertext, t.tag);
      expect(p && hx(p)).toBe(hx(rsp.plaintext));
      const s = seal(CipherId.AES_128_GCM, key, t.nonce, t.aad, [rsp.plaintext.subarray(0, 64), rsp.plaintext.subarray(64)]);
      expect(hx(joined(s))).toBe(hx(t.ciphertext));
      expect(hx(s.tag)).toBe(hx(t.tag));
    }
  });

  it('AES-128-CCM (3.0 blog): WRITE and READ requests encrypt to the published bytes', () => {
    for (const req of [ENC30_CCM.writeRequest, ENC30_CCM.readRequest]) {
      const s = seal(CipherId.AES_128_CCM, ENC30_CCM.clientEncryptionKey, req.nonce, req.aad, [req.plaintext]);
      expect(hx(joined(s))).toBe(hx(req.ciphertext));
      expect(hx(s.tag)).toBe(hx(req.tag));
      const p = unseal(CipherId.AES_128_CCM, ENC30_CCM.clientEncryptionKey, req.nonce, req.aad, req.ciphertext, req.tag);
      expect(p && hx(p)).toBe(hx(req.plaintext));
    }
  });

  it('AES-128-CCM (3.0 blog): WRITE and READ responses decrypt', () => {
    for (const rsp of [ENC30_CCM.writeResponse, ENC30_CCM.readResponse]) {
      const t = parseTransformed(rsp.transformed, CipherId.AES_128_CCM);
      const p = unseal(CipherId.AES_128_CCM, ENC30_CCM.clientDecryptionKey, t.nonce, t.aad, t.ciphertext, t.tag);
      expect(p && hx(p)).toBe(hx(rsp.plaintext));
      const s = seal(CipherId.AES_128_CCM, ENC30_CCM.clientDecryptionKey, t.nonce, t.aad, [rsp.plaintext.subarray(0, 10), rsp.plaintext.subarray(10)]);
      expect(hx(joined(s))).toBe(hx(t.ciphertext));
      expect(hx(s.tag)).toBe(hx(t.tag));
    }
  });
});

describe('sealing: properties', () => {
  it('nonce and key lengths per cipher (MS-SMB2 2.2.41, 3.3.5.5.3)', () => {
    expect(ALL.map(nonceLength)).toEqual([11, 12, 11, 12]);
    expect(ALL.map(cipherKeyLength)).toEqual([16, 16, 32, 32]);
  });

  it('round-trips every cipher, and parts-split input equals one buffer', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...ALL),
        fc.uint8Array({ maxLength: 5000 }),
        fc.array(fc.nat(), { maxLength: 5 }),
        (cipherId, bytes, rawCuts) => {
          const key = randomBytes(cipherKeyLength(cipherId));
          const nonce = randomBytes(nonceLength(cipherId));
          const aad = randomBytes(32);
          const msg = Buffer.from(bytes);
          const points = [0, ...rawCuts.map((c) => c % (msg.length + 1)).sort((a, b) => a - b), msg.length];
          const parts = points.slice(1).map((end, i) => msg.subarray(points[i], end));
          const whole = seal(cipherId, key, nonce, aad, [msg]);
          const split = seal(cipherId, key, nonce, aad, parts);
          expect(hx(joined(split))).toBe(hx(joined(whole)));
          expect(hx(split.tag)).toBe(hx(whole.tag));
          if (Array.isArray(split.ciphertext)) {
            // GCM returns the ciphertext in pieces of at most 64 KiB covering the message exactly.
            expect(split.ciphertext.reduce((n, c) => n + c.length, 0)).toBe(msg.length);
            expect(split.ciphertext.every((c) => c.length > 0 && c.length <= 64 * 1024)).toBe(true);
          }
          const back = unseal(cipherId, key, nonce, aad, joined(whole), whole.tag);
          expect(back && hx(back)).toBe(hx(msg));
        },
      ),
      { numRuns: 200 },
    );
  });

  it('a flipped bit anywhere (ciphertext, tag, AAD, nonce) makes unseal return null', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...ALL),
        fc.uint8Array({ minLength: 1, maxLength: 300 }),
        fc.constantFrom('ciphertext', 'tag', 'aad', 'nonce'),
        fc.nat(),
        (cipherId, bytes, where, rawBit) => {
          const key = randomBytes(cipherKeyLength(cipherId));
          const nonce = randomBytes(nonceLength(cipherId));
          const aad = randomBytes(32);
          const s = seal(cipherId, key, nonce, aad, [Buffer.from(bytes)]);
          const fields = { ciphertext: Buffer.from(joined(s)), tag: Buffer.from(s.tag), aad: Buffer.from(aad), nonce: Buffer.from(nonce) };
          const target = fields[where];
          const bit = rawBit % (target.length * 8);
          target[bit >> 3] = target[bit >> 3]! ^ (1 << (bit & 7));
          expect(unseal(cipherId, key, fields.nonce, fields.aad, fields.ciphertext, fields.tag)).toBeNull();
        },
      ),
      { numRuns: 300 },
    );
  });

  it('never throws on garbage wire input: returns null', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...ALL),
        fc.uint8Array({ maxLength: 40 }),
        fc.uint8Array({ maxLength: 64 }),
        fc.uint8Array({ maxLength: 500 }),
        fc.uint8Array({ maxLength: 40 }),
        (cipherId, nonce, aad, ciphertext, tag) => {
          const key = Buffer.alloc(cipherKeyLength(cipherId), 7);
          const r = unseal(cipherId, key, Buffer.from(nonce), Buffer.from(aad), Buffer.from(ciphertext), Buffer.from(tag));
          expect(r).toBeNull();
        },
      ),
      { numRuns: 500 },
    );
  });

  it('rejects truncated tags (GCM would otherwise accept 4..15-byte tags)', () => {
    const key = randomBytes(16);
    const nonce = randomBytes(12);
    const aad = randomBytes(32);
    const s = seal(CipherId.AES_128_GCM, key, nonce, aad, [Buffer.from('hello')]);
    for (let n = 0; n < 16; n++) {
      expect(unseal(CipherId.AES_128_GCM, key, nonce, aad, joined(s), s.tag.subarray(0, n))).toBeNull();
    }
    expect(unseal(CipherId.AES_128_GCM, key, nonce, aad, joined(s), s.tag)?.toString()).toBe('hello');
  });

  it('the wrong key or the other cipher does not authenticate', () => {
    const nonce = randomBytes(12);
    const aad = randomBytes(32);
    const key = randomBytes(16);
    const s = seal(CipherId.AES_128_GCM, key, nonce, aad, [Buffer.from('payload')]);
    expect(unseal(CipherId.AES_128_GCM, randomBytes(16), nonce, aad, joined(s), s.tag)).toBeNull();
    expect(unseal(CipherId.AES_128_CCM, key, nonce.subarray(0, 11), aad, joined(s), s.tag)).toBeNull();
  });

  it('asserts on local misuse (key or nonce length not matching the cipher)', () => {
    expect(() => seal(CipherId.AES_256_GCM, randomBytes(16), randomBytes(12), Buffer.alloc(32), [])).toThrow(/assertion/);
    expect(() => seal(CipherId.AES_128_CCM, randomBytes(16), randomBytes(12), Buffer.alloc(32), [])).toThrow(/assertion/);
    expect(() => unseal(CipherId.AES_128_CCM, randomBytes(32), randomBytes(11), Buffer.alloc(32), Buffer.alloc(0), Buffer.alloc(16))).toThrow(
      /assertion/,
    );
  });

  it('handles zero-length buffers without a backing store (null data pointer) for every cipher', () => {
    // Regression: node passes NULL to OpenSSL for these, which CCM took as "no input" (final threw).
    const nullEmpty = (): Buffer => Buffer.from(new ArrayBuffer(0));
    for (const cipherId of ALL) {
      const key = randomBytes(cipherKeyLength(cipherId));
      const nonce = randomBytes(nonceLength(cipherId));
      const e = seal(cipherId, key, nonce, Buffer.alloc(32, 1), [nullEmpty()]);
      expect(joined(e).length).toBe(0);
      expect(unseal(cipherId, key, nonce, Buffer.alloc(32, 1), nullEmpty(), e.tag)?.length).toBe(0);
      const bad = Buffer.from(e.tag);
      bad[0] = bad[0]! ^ 1;
      expect(unseal(cipherId, key, nonce, Buffer.alloc(32, 1), nullEmpty(), bad)).toBeNull();
      const m = seal(cipherId, key, nonce, nullEmpty(), [Buffer.from('abc'), nullEmpty(), Buffer.from('de')]);
      expect(unseal(cipherId, key, nonce, nullEmpty(), joined(m), m.tag)?.toString()).toBe('abcde');
      expect(unseal(cipherId, key, nonce, Buffer.alloc(1), joined(m), m.tag)).toBeNull();
    }
  });

  it('seals an empty message', () => {
    for (const cipherId of ALL) {
      const key = randomBytes(cipherKeyLength(cipherId));
      const nonce = randomBytes(nonceLength(cipherId));
      const s = seal(cipherId, key, nonce, Buffer.alloc(32), []);
      expect(joined(s).length).toBe(0);
      expect(unseal(cipherId, key, nonce, Buffer.alloc(32), Buffer.alloc(0), s.tag)?.length).toBe(0);
    }
  });
});

describe('sealing: large messages in pieces', () => {
  it('seals and unseals a 1 MiB message through 64 KiB pieces, into a caller buffer', () => {
    const key = randomBytes(16);
    const nonce = randomBytes(12);
    const aad = randomBytes(32);
    const msg = randomBytes(1024 * 1024 + 13);
    const sealed = seal(2, key, nonce, aad, [msg.subarray(0, 100), msg.subarray(100)]);
    const pieces = sealed.ciphertext as Buffer[];
    expect(pieces.length).toBeGreaterThan(16);
    const into = Buffer.alloc(msg.length + 7);
    const back = unseal(2, key, nonce, aad, Buffer.concat(pieces), sealed.tag, into)!;
    expect(back.buffer).toBe(into.buffer);
    expect(back.equals(msg)).toBe(true);
    const tampered = Buffer.concat(pieces);
    tampered[500000] ^= 1;
    expect(unseal(2, key, nonce, aad, tampered, sealed.tag, into)).toBeNull();
  });
});

describe('sealing: in-place AES-GCM (native accelerator)', () => {
  it('is built on the machines that run the tests (.ci/run has a C++ toolchain)', () => {
    expect(inPlaceGcmAvailable).toBe(true);
  });

  it('produces exactly what node:crypto produces, for both key sizes, and detects tampering', () => {
    for (const cipherId of [2, 4] as const) {
      const key = randomBytes(cipherKeyLength(cipherId));
      const nonce = randomBytes(12);
      const aad = randomBytes(32);
      const msg = randomBytes(300_000);
      const parts = [Buffer.from(msg.subarray(0, 64)), Buffer.from(msg.subarray(64, 70_000)), Buffer.from(msg.subarray(70_000))];
      const tag = sealInPlace(cipherId, key, nonce, aad, parts)!;
      const reference = seal(cipherId, key, nonce, aad, [msg]);
      expect(Buffer.concat(parts).equals(joined(reference))).toBe(true);
      expect(tag.equals(reference.tag)).toBe(true);
      const data = Buffer.concat(parts);
      expect(unsealInPlace(cipherId, key, nonce, aad, data, tag)).toBe(true);
      expect(data.equals(msg)).toBe(true);
      const bad = Buffer.from(joined(reference));
      bad[123] ^= 1;
      expect(unsealInPlace(cipherId, key, nonce, aad, bad, tag)).toBe(false);
    }
  });

  it('declines CCM (the caller falls back to node:crypto)', () => {
    expect(sealInPlace(1, randomBytes(16), randomBytes(12), randomBytes(32), [Buffer.alloc(10)])).toBeUndefined();
  });
});
