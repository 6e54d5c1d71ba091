// SMB2 TRANSFORM_HEADER (MS-SMB2 2.2.41) for encrypted messages, and detection of the
// COMPRESSION_TRANSFORM_HEADER (2.2.42), which this server never negotiates and so rejects.

import { assert } from '../base/assert.js';
import { MalformedError } from '../base/errors.js';
import { SMB2_HEADER_SIZE } from './encoder.js';
import { ProtocolId } from './header.js';

export const TRANSFORM_HEADER_SIZE = 52;
/** The AAD of MS-SMB2 3.1.4.3 is the header from Nonce through SessionId: bytes [20, 52). */
export const TRANSFORM_AAD_OFFSET = 20;
export const TRANSFORM_SIGNATURE_OFFSET = 4;
export const TRANSFORM_NONCE_OFFSET = 20;
export const TRANSFORM_NONCE_SIZE = 16;

/** MS-SMB2 2.2.41: Flags (3.1.1) / EncryptionAlgorithm (3.0, 3.0.2); both spell 0x0001. */
export const TransformFlags = {
  ENCRYPTED: 0x0001,
} as const;

export interface TransformHeader {
  /** View of the 16-byte AEAD tag. */
  Signature: Buffer;
  /** View of the 16-byte Nonce field (CCM uses the first 11 bytes, GCM the first 12). */
  Nonce: Buffer;
  OriginalMessageSize: number;
  Flags: number;
  SessionId: bigint;
  /** View of bytes [20, 52): the additional authenticated data (MS-SMB2 3.1.4.3). */
  aad: Buffer;
  /** View of the encrypted SMB2 message after the header. */
  ciphertext: Buffer;
}

export function isTransform(frame: Buffer): boolean {
  return frame.length >= 4 && frame.readUInt32LE(0) === ProtocolId.TRANSFORM;
}

export function isCompressionTransform(frame: Buffer): boolean {
  return frame.length >= 4 && frame.readUInt32LE(0) === ProtocolId.COMPRESSION_TRANSFORM;
}

/**
 * Decodes a TRANSFORM_HEADER frame. Every failure here means "disconnect" (MS-SMB2 3.3.5.2.1.1):
 * a frame not longer than the header, Flags/EncryptionAlgorithm other than 0x0001, or an
 * OriginalMessageSize that is not the rest of the frame (or cannot hold an SMB2 header).
 */
export function decodeTransformHeader(frame: Buffer): TransformHeader {
  if (frame.length <= TRANSFORM_HEADER_SIZE) throw new MalformedError(`TRANSFORM: ${frame.length} bytes <= 52`);
  if (!isTransform(frame)) throw new MalformedError('TRANSFORM: ProtocolId is not 0xFD SMB');
  const originalMessageSize = frame.readUInt32LE(36);
  if (originalMessageSize !== frame.length - TRANSFORM_HEADER_SIZE) {
    throw new MalformedError(`TRANSFORM: OriginalMessageSize ${originalMessageSize} != ${frame.length - TRANSFORM_HEADER_SIZE}`);
  }
  if (originalMessageSize < SMB2_HEADER_SIZE) throw new MalformedError('TRANSFORM: message shorter than an SMB2 header');
  const flags = frame.readUInt16LE(42);
  if (flags !== TransformFlags.ENCRYPTED) throw new MalformedError(`TRANSFORM: Flags 0x${flags.toString(16)} != 0x0001`);
  return {
    Signature: frame.subarray(TRANSFORM_SIGNATURE_OFFSET, TRANSFORM_SIGNATURE_OFFSET + 16),
    Nonce: frame.subarray(TRANSFORM_NONCE_OFFSET, TRANSFORM_NONCE_OFFSET + TRANSFORM_NONCE_SIZE),
    OriginalMessageSize: originalMessageSize,
    Flags: flags,
    SessionId: frame.readBigUInt64LE(44),
    aad: frame.subarray(TRANSFORM_AAD_OFFSET, TRANSFORM_HEADER_SIZE),
    ciphertext: frame.subarray(TRANSFORM_HEADER_SIZE),
  };
}

export interface TransformHeaderInit {
  /** Up to 16 bytes (11 for CCM, 12 for GCM); the rest of the field is zero. */
  Nonce: Buffer;
  OriginalMessageSize: number;
  SessionId: bigint;
  Flags?: number;
}

/** A 52-byte TRANSFORM_HEADER with a zero Signature, to be filled in after sealing. */
export function encodeTransformHeader(h: TransformHeaderInit): Buffer {
  assert(h.Nonce.length <= TRANSFORM_NONCE_SIZE, 'encodeTransformHeader: Nonce fits 16 bytes');
  const out = Buffer.alloc(TRANSFORM_HEADER_SIZE);
  out.writeUInt32LE(ProtocolId.TRANSFORM, 0);
  h.Nonce.copy(out, TRANSFORM_NONCE_OFFSET);
  out.writeUInt32LE(h.OriginalMessageSize >>> 0, 36);
  out.writeUInt16LE(h.Flags ?? TransformFlags.ENCRYPTED, 42);
  out.writeBigUInt64LE(h.SessionId, 44);
  return out;
}
