// SMB 3.x message encryption (MS-SMB2 3.1.4.3) and decryption (MS-SMB2 3.3.5.2.1.1):
// AES-CCM and AES-GCM with a 16-byte tag, the transform header's Nonce..SessionId as AAD.
import { createCipheriv, createDecipheriv } from 'node:crypto';
import { createRequire } from 'node:module';
import type { CipherCCMTypes, CipherGCMTypes } from 'node:crypto';
import { assert } from '../base/assert.js';

/** MS-SMB2 2.2.3.1.2 SMB2_ENCRYPTION_CAPABILITIES Ciphers values. */
export const CipherId = {
  AES_128_CCM: 1,
  AES_128_GCM: 2,
  AES_256_CCM: 3,
  AES_256_GCM: 4,
} as const;
export type CipherId = (typeof CipherId)[keyof typeof CipherId];

/** Length of the AEAD tag; carried in SMB2 TRANSFORM_HEADER.Signature (MS-SMB2 2.2.41). */
export const SEAL_TAG_SIZE = 16;

export function isCipherId(value: number): value is CipherId {
  return value === 1 || value === 2 || value === 3 || value === 4;
}

export function isGcm(cipherId: CipherId): boolean {
  return cipherId === CipherId.AES_128_GCM || cipherId === CipherId.AES_256_GCM;
}

/** Key length in bytes: 16 for the AES-128 ciphers, 32 for AES-256 (MS-SMB2 3.3.5.5.3). */
export function cipherKeyLength(cipherId: CipherId): 16 | 32 {
  return cipherId === CipherId.AES_256_CCM || cipherId === CipherId.AES_256_GCM ? 32 : 16;
}

/**
 * MS-SMB2 2.2.41: of the 16-byte Nonce field, CCM uses the first 11 bytes (AES-CCM nonce) and GCM
 * the first 12 bytes (AES-GCM nonce); the rest is Reserved and zero.
 */
export function nonceLength(cipherId: CipherId): 11 | 12 {
  return isGcm(cipherId) ? 12 : 11;
}

/**
 * A zero-length view of a non-empty allocation. A zero-length Buffer may have a null data pointer
 * (e.g. one made from an empty ArrayBuffer); node then hands OpenSSL a NULL input, which CCM takes
 * as "no update" and final() fails with "tag not set". CCM needs the (empty) update with a real
 * pointer, so empty inputs are replaced by this view.
 */
const EMPTY = Buffer.alloc(16).subarray(0, 0);
const nonNull = (b: Buffer): Buffer => (b.length === 0 ? EMPTY : b);

function algorithm(cipherId: CipherId): CipherGCMTypes | CipherCCMTypes {
  switch (cipherId) {
    case CipherId.AES_128_CCM:
      return 'aes-128-ccm';
    case CipherId.AES_128_GCM:
      return 'aes-128-gcm';
    case CipherId.AES_256_CCM:
      return 'aes-256-ccm';
    case CipherId.AES_256_GCM:
      return 'aes-256-gcm';
  }
}

export interface Sealed {
  /** GCM: the ciphertext in pieces of at most 64 KiB, in order. CCM: one buffer for the whole message. */
  ciphertext: Buffer[] | Buffer;
  /** The 16-byte tag for TRANSFORM_HEADER.Signature. */
  tag: Buffer;
}

/**
 * Encrypts one SMB2 message (the concatenation of `parts`) as MS-SMB2 3.1.4.3 describes.
 * `nonce` is nonceLength(cipherId) bytes; `aad` is the 32 bytes of the transform header from Nonce
 * through SessionId. GCM streams the parts without concatenating them; CCM cannot (node's CCM takes
 * the whole plaintext in a single update() call, the length being part of the first block), so for
 * CCM the parts are concatenated once when there is more than one.
 * Key, nonce and cipher come from local session state: a mismatch is a programming error (assert).
 */
export function seal(cipherId: CipherId, key: Buffer, nonce: Buffer, aad: Buffer, parts: Buffer[]): Sealed {
  assert(key.length === cipherKeyLength(cipherId), 'seal: key length matches cipher');
  assert(nonce.length === nonceLength(cipherId), 'seal: nonce length matches cipher');
  const alg = algorithm(cipherId);
  if (isGcm(cipherId)) {
    const c = createCipheriv(alg as CipherGCMTypes, key, nonce, { authTagLength: SEAL_TAG_SIZE });
    c.setAAD(nonNull(aad));
    // Pieces of at most 64 KiB: one update() of a multi-MiB part allocates a fresh output buffer
    // (page faults on every byte) and runs several times slower than pieces below malloc's mmap
    // threshold. The ciphertext comes back as the list of pieces, in order.
    const out: Buffer[] = [];
    for (const part of parts) {
      for (let at = 0; at < part.length; at += UNSEAL_PIECE_BYTES) {
        out.push(c.update(part.subarray(at, Math.min(part.length, at + UNSEAL_PIECE_BYTES))));
      }
    }
    const rest = c.final();
    assert(rest.length === 0, 'seal: GCM final emits nothing');
    return { ciphertext: out, tag: c.getAuthTag() };
  }
  const plaintext = parts.length === 1 ? parts[0]! : Buffer.concat(parts);
  const c = createCipheriv(alg as CipherCCMTypes, key, nonce, { authTagLength: SEAL_TAG_SIZE });
  c.setAAD(nonNull(aad), { plaintextLength: plaintext.length });
  const ciphertext = c.update(nonNull(plaintext));
  c.final();
  return { ciphertext, tag: c.getAuthTag() };
}

/**
 * Decrypts and authenticates one sealed message. Returns the plaintext, or null when anything
 * about the wire input is wrong: authentication failure, a tag that is not 16 bytes, a nonce of the
 * wrong length. Never throws on wire input. (MS-SMB2 3.3.5.2.1.1: a failed decryption makes the
 * server drop the message.) The key and cipher id are local state and are asserted.
 */
/** Piece size for GCM decryption into a caller's buffer: below glibc's 128 KiB mmap threshold. */
const UNSEAL_PIECE_BYTES = 64 * 1024;

export function unseal(
  cipherId: CipherId,
  key: Buffer,
  nonce: Buffer,
  aad: Buffer,
  ciphertext: Buffer,
  tag: Buffer,
  /**
   * GCM only: where to put the plaintext (at least ciphertext.length bytes; a view of it is
   * returned). Large messages are then decrypted in pieces below malloc's mmap threshold, so no
   * fresh pages are faulted in per message; the plaintext must not be trusted if null is returned.
   */
  into?: Buffer,
): Buffer | null {
  assert(key.length === cipherKeyLength(cipherId), 'unseal: key length matches cipher');
  if (nonce.length !== nonceLength(cipherId)) return null;
  // Pin the tag length: GCM in OpenSSL would otherwise accept truncated tags of 4..15 bytes.
  if (tag.length !== SEAL_TAG_SIZE) return null;
  const alg = algorithm(cipherId);
  try {
    if (isGcm(cipherId)) {
      const d = createDecipheriv(alg as CipherGCMTypes, key, nonce, { authTagLength: SEAL_TAG_SIZE });
      d.setAuthTag(tag);
      d.setAAD(nonNull(aad));
      if (into && into.length >= ciphertext.length) {
        for (let at = 0; at < ciphertext.length; at += UNSEAL_PIECE_BYTES) {
          const piece = d.update(ciphertext.subarray(at, Math.min(ciphertext.length, at + UNSEAL_PIECE_BYTES)));
          piece.copy(into, at);
        }
        d.final(); // throws when the tag does not authenticate
        return into.subarray(0, ciphertext.length);
      }
      const plaintext = ciphertext.length === 0 ? Buffer.alloc(0) : d.update(ciphertext);
      d.final(); // throws when the tag does not authenticate
      return plaintext;
    }
    const d = createDecipheriv(alg as CipherCCMTypes, key, nonce, { authTagLength: SEAL_TAG_SIZE });
    d.setAuthTag(tag);
    d.setAAD(nonNull(aad), { plaintextLength: ciphertext.length });
    const plaintext = d.update(nonNull(ciphertext));
    d.final(); // throws when the tag does not authenticate
    return plaintext;
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------------------------------------
// In-place AES-GCM (optional native accelerator, native/aesgcm.cc)
//
// Node's cipher API allocates a new output buffer for every update(); for multi-MiB SMB3 messages
// that allocation and the garbage it leaves cost more than AES itself. The addon runs the same
// OpenSSL that Node links, in place, on the caller's buffers. It is built by `npm install` when a
// C++ toolchain is present; without it (or with TESSERA_NATIVE_AES=0) the node:crypto path is used.

interface NativeAesGcm {
  sealInPlace(key: Buffer, nonce: Buffer, aad: Buffer, parts: Buffer[], tag: Buffer): boolean;
  openInPlace(key: Buffer, nonce: Buffer, aad: Buffer, parts: Buffer[], tag: Buffer): boolean;
}

function loadNative(): NativeAesGcm | undefined {
  if (process.env['TESSERA_NATIVE_AES'] === '0') return undefined;
  try {
    // src/crypto and dist/crypto are both two levels below the package root.
    const native = createRequire(import.meta.url)('../../build/Release/aesgcm.node') as NativeAesGcm;
    return typeof native.sealInPlace === 'function' && typeof native.openInPlace === 'function' ? native : undefined;
  } catch {
    return undefined;
  }
}

const native = loadNative();

/** True when in-place AES-GCM is available (the native accelerator loaded). */
export const inPlaceGcmAvailable = native !== undefined;

/**
 * Encrypts the concatenation of `parts` in place (each part then holds its ciphertext) and returns
 * the tag; undefined when in-place sealing is not available for this cipher (the caller then uses
 * seal()). The caller must own every part: they are overwritten.
 */
export function sealInPlace(cipherId: CipherId, key: Buffer, nonce: Buffer, aad: Buffer, parts: Buffer[]): Buffer | undefined {
  if (!native || !isGcm(cipherId)) return undefined;
  assert(key.length === cipherKeyLength(cipherId), 'sealInPlace: key length matches cipher');
  assert(nonce.length === 12, 'sealInPlace: GCM nonce is 12 bytes');
  const tag = Buffer.alloc(SEAL_TAG_SIZE);
  assert(native.sealInPlace(key, nonce, aad, parts, tag), 'sealInPlace: OpenSSL failed');
  return tag;
}

/**
 * Decrypts `data` in place and authenticates it: true when the tag matches (data then holds the
 * plaintext), false when it does not (data then holds garbage and must be discarded), undefined
 * when in-place opening is not available for this cipher. Never throws on wire input.
 */
export function unsealInPlace(cipherId: CipherId, key: Buffer, nonce: Buffer, aad: Buffer, data: Buffer, tag: Buffer): boolean | undefined {
  if (!native || !isGcm(cipherId)) return undefined;
  assert(key.length === cipherKeyLength(cipherId), 'unsealInPlace: key length matches cipher');
  if (nonce.length !== 12 || tag.length !== SEAL_TAG_SIZE) return false;
  return native.openInPlace(key, nonce, aad, [data], tag);
}
