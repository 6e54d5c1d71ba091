import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { kdf } from '../../src/crypto/kdf.js';
import { ANATOMY_30, ANATOMY_311, hex } from './vectors.js';

// Independent reading of SP800-108 counter mode as MS-SMB2 3.1.4.2 fixes it, one fixed-input buffer.
function reference(key: Buffer, label: Buffer, context: Buffer, bits: number): Buffer {
  const fixed = Buffer.concat([hex('00000001'), label, hex('00'), context, Buffer.from([0, 0, bits >> 8, bits & 0xff])]);
  return createHmac('sha256', key).update(fixed).digest().subarray(0, bits / 8);
}

describe('kdf (SP800-108 counter mode, HMAC-SHA256)', () => {
  it('derives the SMB 3.0 signing key of the published example', () => {
    const key = kdf(ANATOMY_30.sessionKey, Buffer.from('SMB2AESCMAC\0'), Buffer.from('SmbSign\0'), 128);
    expect(key.toString('hex')).toBe(ANATOMY_30.signingKey.toString('hex'));
  });

  it('derives the SMB 3.1.1 signing key of the published example (preauth hash as context)', () => {
    const key = kdf(ANATOMY_311.sessionKey, Buffer.from('SMBSigningKey\0'), ANATOMY_311.preauthHash, 128);
    expect(key.toString('hex')).toBe(ANATOMY_311.signingKey.toString('hex'));
  });

  it('gives 16 or 32 bytes, and L is part of the input (the 128-bit key is not a prefix of the 256-bit one)', () => {
    const k128 = kdf(ANATOMY_311.sessionKey, Buffer.from('SMBC2SCipherKey\0'), ANATOMY_311.preauthHash, 128);
    const k256 = kdf(ANATOMY_311.sessionKey, Buffer.from('SMBC2SCipherKey\0'), ANATOMY_311.preauthHash, 256);
    expect(k128.length).toBe(16);
    expect(k256.length).toBe(32);
    expect(k256.subarray(0, 16).equals(k128)).toBe(false);
  });

  it('matches a direct transcription of the fixed input for random inputs', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 1, maxLength: 64 }),
        fc.uint8Array({ maxLength: 32 }),
        fc.uint8Array({ maxLength: 80 }),
        fc.constantFrom(128 as const, 256 as const),
        (k, l, c, bits) => {
          const [key, label, context] = [Buffer.from(k), Buffer.from(l), Buffer.from(c)];
          expect(kdf(key, label, context, bits).equals(reference(key, label, context, bits))).toBe(true);
        },
      ),
    );
  });

  it('rejects an L other than 128 or 256', () => {
    expect(() => kdf(Buffer.alloc(16), Buffer.alloc(1), Buffer.alloc(1), 192 as 128)).toThrow(/assertion/);
  });
});
