// SMB2 LOCK (MS-SMB2 2.2.26 request, 2.2.26.1 SMB2_LOCK_ELEMENT, 2.2.27 response).

import { MalformedError } from '../base/errors.js';
import type { BodyEncoder } from './encoder.js';
import { decodeFileId, type FileId } from './create.js';
import { checkBody } from './fscc/wire.js';

export const LockFlags = {
  SMB2_LOCKFLAG_SHARED_LOCK: 0x01,
  SMB2_LOCKFLAG_EXCLUSIVE_LOCK: 0x02,
  SMB2_LOCKFLAG_UNLOCK: 0x04,
  SMB2_LOCKFLAG_FAIL_IMMEDIATELY: 0x10,
} as const;

export interface LockElement {
  Offset: bigint;
  Length: bigint;
  Flags: number;
}

export interface LockRequest {
  LockCount: number;
  /** Low 4 bits of the 32-bit field at body offset 4 (MS-SMB2 2.2.26). */
  LockSequenceNumber: number;
  /** High 28 bits of the same field; 0 means lock sequence checking is not requested. */
  LockSequenceIndex: number;
  FileId: FileId;
  Locks: LockElement[];
}

const LOCK_ELEMENT_SIZE = 24;

/** Upper bound on LockCount accepted (each element is 24 bytes; a frame cannot hold more). */
export function decodeLockRequest(msg: Buffer): LockRequest {
  checkBody(msg, 48, 24 + LOCK_ELEMENT_SIZE, 'LOCK');
  const b = 64;
  const LockCount = msg.readUInt16LE(b + 2);
  // MS-SMB2 3.3.5.14: LockCount of zero is STATUS_INVALID_PARAMETER.
  if (LockCount === 0) throw new MalformedError('LOCK LockCount is 0');
  if (msg.length < b + 24 + LockCount * LOCK_ELEMENT_SIZE) {
    throw new MalformedError(`LOCK: ${LockCount} elements do not fit in ${msg.length - b - 24} bytes`);
  }
  const seq = msg.readUInt32LE(b + 4);
  const Locks: LockElement[] = [];
  for (let i = 0; i < LockCount; i++) {
    const at = b + 24 + i * LOCK_ELEMENT_SIZE;
    Locks.push({ Offset: msg.readBigUInt64LE(at), Length: msg.readBigUInt64LE(at + 8), Flags: msg.readUInt32LE(at + 16) });
  }
  return {
    LockCount,
    LockSequenceNumber: seq & 0xf,
    LockSequenceIndex: seq >>> 4,
    FileId: decodeFileId(msg, b + 8),
    Locks,
  };
}

export function lockResponse(): BodyEncoder {
  return {
    byteLength: () => 4,
    encodeInto(buf: Buffer, at: number): void {
      buf.writeUInt32LE(0, at);
      buf.writeUInt16LE(4, at);
    },
  };
}
