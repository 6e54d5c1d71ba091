// SMB2/3 message signing: MS-SMB2 3.1.4.1 (signing an outgoing message) and 3.1.5.1 (verifying).
import { createCipheriv, createHmac, timingSafeEqual } from 'node:crypto';
import { assert } from '../base/assert.js';
import { AesCmac } from './cmac.js';

/** MS-SMB2 2.2.3.1.7 SMB2_SIGNING_CAPABILITIES SigningAlgorithms values. */
export const SigningAlgorithm = {
  HMAC_SHA256: 0,
  AES_CMAC: 1,
  AES_GMAC: 2,
} as const;
export type SigningAlgorithm = (typeof SigningAlgorithm)[keyof typeof SigningAlgorithm];

/** Size of the SMB2 header Signature field (MS-SMB2 2.2.1). */
export const SIGNATURE_SIZE = 16;
/** Offset of the Signature field in the SMB2 header (MS-SMB2 2.2.1). */
export const SIGNATURE_OFFSET = 48;

export interface GmacParams {
  /** MessageId of the message being signed (SMB2 header). */
  messageId: bigint;
  /** True when the sender is the server. */
  isServer: boolean;
  /** True when the message is an SMB2 CANCEL request. */
  isCancel: boolean;
}

const GMAC_NONCE_SIZE = 12;
const U64_MAX = 0xffff_ffff_ffff_ffffn;

/**
 * MS-SMB2 3.1.4.1: the AES-GMAC nonce (RFC 4543) is 12 bytes: MessageId in the first 8 bytes, then a
 * 4-byte field whose least significant bit is 1 when the sender is the server, whose penultimate bit
 * is 1 for an SMB2 CANCEL request, and whose remaining 30 bits are zero. Like every SMB2 integer the
 * fields are little-endian, so the role and cancel bits land in byte 8.
 */
export function gmacNonce(p: GmacParams): Buffer {
  assert(p.messageId >= 0n && p.messageId <= U64_MAX, 'GMAC MessageId is a u64');
  const nonce = Buffer.alloc(GMAC_NONCE_SIZE);
  nonce.writeBigUInt64LE(p.messageId, 0);
  nonce.writeUInt32LE((p.isServer ? 0x1 : 0) | (p.isCancel ? 0x2 : 0), 8);
  return nonce;
}

/**
 * AES-128-GMAC (RFC 4543): AES-128-GCM with empty plaintext and the data as AAD; the 16-byte tag is
 * the MAC. The parts are fed to the AAD one after another (OpenSSL buffers partial blocks).
 */
export function aesGmac(key: Buffer, nonce: Buffer, parts: readonly Buffer[]): Buffer {
  assert(key.length === 16, 'AES-GMAC signing key is 16 bytes');
  assert(nonce.length === GMAC_NONCE_SIZE, 'AES-GMAC nonce is 12 bytes');
  const c = createCipheriv('aes-128-gcm', key, nonce, { authTagLength: SIGNATURE_SIZE });
  for (const p of parts) if (p.length > 0) c.setAAD(p);
  c.final();
  return c.getAuthTag();
}

/**
 * The 16-byte signature of one SMB2 message, given as `parts` whose concatenation is the message
 * (including any compound padding, MS-SMB2 3.1.4.1) with the Signature field (bytes 48..64) already
 * zeroed by the caller. The parts are streamed, never concatenated.
 * - HMAC_SHA256 (dialects 2.0.2 and 2.1): the first 16 bytes of HMAC-SHA256 with Session.SessionKey.
 * - AES_CMAC (3.x): AES-128-CMAC (RFC 4493) with the 16-byte signing key.
 * - AES_GMAC (3.1.1 with SMB2_SIGNING_CAPABILITIES): AES-128-GCM with the nonce of gmacNonce(), empty
 *   plaintext and the whole message as AAD; the tag is the signature. `gmac` is required.
 */
export function computeSignature(
  alg: SigningAlgorithm,
  key: Buffer,
  parts: readonly Buffer[],
  gmac?: GmacParams,
): Buffer {
  switch (alg) {
    case SigningAlgorithm.HMAC_SHA256: {
      const h = createHmac('sha256', key);
      for (const p of parts) h.update(p);
      return h.digest().subarray(0, SIGNATURE_SIZE);
    }
    case SigningAlgorithm.AES_CMAC: {
      assert(key.length === 16, 'AES-CMAC signing key is 16 bytes');
      const mac = new AesCmac(key);
      for (const p of parts) mac.update(p);
      return mac.digest();
    }
    case SigningAlgorithm.AES_GMAC: {
      assert(gmac !== undefined, 'AES-GMAC signing needs MessageId and role');
      return aesGmac(key, gmacNonce(gmac), parts);
    }
    default:
      assert(false, `unknown signing algorithm ${String(alg)}`);
  }
}

/**
 * MS-SMB2 3.1.5.1: recompute the signature over `parts` (Signature field zeroed by the caller, the
 * received value saved in `signature`) and compare in constant time. False for a signature that is
 * not 16 bytes.
 */
export function verifySignature(
  alg: SigningAlgorithm,
  key: Buffer,
  parts: readonly Buffer[],
  signature: Buffer,
  gmac?: GmacParams,
): boolean {
  if (signature.length !== SIGNATURE_SIZE) return false;
  return timingSafeEqual(computeSignature(alg, key, parts, gmac), signature);
}
