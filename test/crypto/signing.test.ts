import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  aesGmac,
  computeSignature,
  gmacNonce,
  SIGNATURE_OFFSET,
  SigningAlgorithm,
  verifySignature,
} from '../../src/crypto/signing.js';
import { ANATOMY_311, ANATOMY_311_CHANNEL, ENC311_GCM, hex, NIST_GMAC } from './vectors.js';

const hx = (b: Buffer): string => b.toString('hex');

/** A copy of `msg` with the Signature field zeroed, and the signature it carried. */
function unsign(msg: Buffer): { zeroed: Buffer; signature: Buffer } {
  const zeroed = Buffer.from(msg);
  const signature = Buffer.from(msg.subarray(SIGNATURE_OFFSET, SIGNATURE_OFFSET + 16));
  zeroed.fill(0, SIGNATURE_OFFSET, SIGNATURE_OFFSET + 16);
  return { zeroed, signature };
}

function splitAt(buf: Buffer, cuts: number[]): Buffer[] {
  const points = [0, ...[...new Set(cuts)].sort((a, b) => a - b), buf.length];
  return points.slice(1).map((end, i) => buf.subarray(points[i], end));
}

// Signed messages from the Microsoft blogs (dialect 3.1.1 without SIGNING_CAPABILITIES: AES-128-CMAC).
const SIGNED_CMAC = [
  ['anatomy: final SESSION_SETUP response', ANATOMY_311.signingKey, ANATOMY_311.sessionSetupResponse2],
  ['anatomy: binding SESSION_SETUP request 1 (session key)', ANATOMY_311.signingKey, ANATOMY_311_CHANNEL.sessionSetupRequest1],
  ['anatomy: binding SESSION_SETUP response 1 (session key)', ANATOMY_311.signingKey, ANATOMY_311_CHANNEL.sessionSetupResponse1],
  ['anatomy: binding SESSION_SETUP request 2 (session key)', ANATOMY_311.signingKey, ANATOMY_311_CHANNEL.sessionSetupRequest2],
  ['anatomy: binding final response (channel key)', ANATOMY_311_CHANNEL.channelSigningKey, ANATOMY_311_CHANNEL.sessionSetupResponse2],
  ['3.1.1 encryption blog: final SESSION_SETUP response', ENC311_GCM.signingKey, ENC311_GCM.sessionSetupResponse2],
] as const;

describe('AES-CMAC signing (MS-SMB2 3.1.4.1) against published signed messages', () => {
  for (const [name, key, msg] of SIGNED_CMAC) {
    it(name, () => {
      const { zeroed, signature } = unsign(msg);
      expect(hx(computeSignature(SigningAlgorithm.AES_CMAC, key, [zeroed]))).toBe(hx(signature));
      expect(verifySignature(SigningAlgorithm.AES_CMAC, key, [zeroed], signature)).toBe(true);
    });
  }

  it('the same signature for every split of the message into two or more parts', () => {
    const { zeroed, signature } = unsign(ANATOMY_311.sessionSetupResponse2);
    for (let cut = 0; cut <= zeroed.length; cut++) {
      const parts = [zeroed.subarray(0, cut), zeroed.subarray(cut)];
      expect(hx(computeSignature(SigningAlgorithm.AES_CMAC, ANATOMY_311.signingKey, parts))).toBe(hx(signature));
    }
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: zeroed.length }), { maxLength: 10 }), (cuts) => {
        const parts = splitAt(zeroed, cuts);
        expect(verifySignature(SigningAlgorithm.AES_CMAC, ANATOMY_311.signingKey, parts, signature)).toBe(true);
      }),
    );
  });

  it('any flipped bit in message, signature or key fails verification', () => {
    const { zeroed, signature } = unsign(ANATOMY_311.sessionSetupResponse2);
    fc.assert(
      fc.property(fc.integer({ min: 0, max: zeroed.length * 8 - 1 }), (bit) => {
        const m = Buffer.from(zeroed);
        m[bit >> 3] = m[bit >> 3]! ^ (1 << (bit & 7));
        expect(verifySignature(SigningAlgorithm.AES_CMAC, ANATOMY_311.signingKey, [m], signature)).toBe(false);
      }),
    );
    for (let bit = 0; bit < 128; bit++) {
      const s = Buffer.from(signature);
      s[bit >> 3] = s[bit >> 3]! ^ (1 << (bit & 7));
      expect(verifySignature(SigningAlgorithm.AES_CMAC, ANATOMY_311.signingKey, [zeroed], s)).toBe(false);
      const k = Buffer.from(ANATOMY_311.signingKey);
      k[bit >> 3] = k[bit >> 3]! ^ (1 << (bit & 7));
      expect(verifySignature(SigningAlgorithm.AES_CMAC, k, [zeroed], signature)).toBe(false);
    }
  });

  it('a signature of the wrong length is rejected, not thrown on', () => {
    const { zeroed, signature } = unsign(ANATOMY_311.sessionSetupResponse2);
    expect(verifySignature(SigningAlgorithm.AES_CMAC, ANATOMY_311.signingKey, [zeroed], signature.subarray(0, 15))).toBe(false);
    expect(verifySignature(SigningAlgorithm.AES_CMAC, ANATOMY_311.signingKey, [zeroed], Buffer.alloc(0))).toBe(false);
  });
});

describe('HMAC-SHA256 signing (2.0.2/2.1)', () => {
  it('is the first 16 bytes of HMAC-SHA256(SessionKey, message), streamed', () => {
    const key = ANATOMY_311.sessionKey;
    const { zeroed } = unsign(ANATOMY_311.sessionSetupRequest2);
    const expected = createHmac('sha256', key).update(zeroed).digest().subarray(0, 16);
    const parts = splitAt(zeroed, [1, 64, 65, 300]);
    expect(hx(computeSignature(SigningAlgorithm.HMAC_SHA256, key, parts))).toBe(hx(expected));
    expect(verifySignature(SigningAlgorithm.HMAC_SHA256, key, [zeroed], expected)).toBe(true);
    const bad = Buffer.from(expected);
    bad[15] = bad[15]! ^ 0x80;
    expect(verifySignature(SigningAlgorithm.HMAC_SHA256, key, [zeroed], bad)).toBe(false);
  });
});

describe('AES-GMAC signing (3.1.1 with SMB2_SIGNING_CAPABILITIES)', () => {
  it('the GMAC primitive reproduces NIST CAVP GCM vectors with empty plaintext', () => {
    for (const v of NIST_GMAC) {
      expect(hx(aesGmac(v.key, v.iv, [v.aad]))).toBe(hx(v.tag));
      expect(hx(aesGmac(v.key, v.iv, [v.aad.subarray(0, 5), v.aad.subarray(5, 7), v.aad.subarray(7)]))).toBe(hx(v.tag));
      const nullEmpty = Buffer.from(new ArrayBuffer(0));
      expect(hx(aesGmac(v.key, v.iv, [nullEmpty, v.aad, Buffer.alloc(0)]))).toBe(hx(v.tag));
    }
  });

  it('builds the nonce as MessageId (LE) then role and CANCEL bits in the next 32-bit field', () => {
    expect(hx(gmacNonce({ messageId: 0x0102030405060708n, isServer: false, isCancel: false }))).toBe(
      '080706050403020100000000',
    );
    expect(hx(gmacNonce({ messageId: 5n, isServer: true, isCancel: false }))).toBe('050000000000000001000000');
    expect(hx(gmacNonce({ messageId: 5n, isServer: false, isCancel: true }))).toBe('050000000000000002000000');
    expect(hx(gmacNonce({ messageId: 0xffffffffffffffffn, isServer: true, isCancel: true }))).toBe(
      'ffffffffffffffff03000000',
    );
  });

  it('signature = GMAC(key, nonce(MessageId, role, cancel), message); differs by role and MessageId', () => {
    const { zeroed } = unsign(ENC311_GCM.sessionSetupResponse2);
    const key = ENC311_GCM.signingKey;
    const params = { messageId: 2n, isServer: true, isCancel: false };
    const sig = computeSignature(SigningAlgorithm.AES_GMAC, key, [zeroed], params);
    expect(hx(sig)).toBe(hx(aesGmac(key, hex('020000000000000001000000'), [zeroed])));
    expect(verifySignature(SigningAlgorithm.AES_GMAC, key, splitAt(zeroed, [3, 64, 70]), sig, params)).toBe(true);
    expect(verifySignature(SigningAlgorithm.AES_GMAC, key, [zeroed], sig, { ...params, isServer: false })).toBe(false);
    expect(verifySignature(SigningAlgorithm.AES_GMAC, key, [zeroed], sig, { ...params, isCancel: true })).toBe(false);
    expect(verifySignature(SigningAlgorithm.AES_GMAC, key, [zeroed], sig, { ...params, messageId: 3n })).toBe(false);
    const m = Buffer.from(zeroed);
    m[m.length - 1] = m[m.length - 1]! ^ 1;
    expect(verifySignature(SigningAlgorithm.AES_GMAC, key, [m], sig, params)).toBe(false);
  });

  it('requires the MessageId/role parameters and a 16-byte key', () => {
    expect(() => computeSignature(SigningAlgorithm.AES_GMAC, ENC311_GCM.signingKey, [Buffer.alloc(64)])).toThrow(/assertion/);
    expect(() =>
      computeSignature(SigningAlgorithm.AES_GMAC, Buffer.alloc(32), [Buffer.alloc(64)], { messageId: 1n, isServer: true, isCancel: false }),
    ).toThrow(/assertion/);
    expect(() => computeSignature(9 as SigningAlgorithm, ENC311_GCM.signingKey, [])).toThrow(/assertion/);
  });
});
