// SMB2 OPLOCK_BREAK: oplock break notification/acknowledgment/response (MS-SMB2 2.2.23.1,
// 2.2.24.1, 2.2.25.1) and lease break notification/acknowledgment/response (2.2.23.2, 2.2.24.2,
// 2.2.25.2). Acknowledgments share the command code; StructureSize (24 or 36) tells them apart.

import { MalformedError } from '../base/errors.js';
import type { BodyEncoder } from './encoder.js';
import { decodeFileId, encodeFileId, type FileId } from './create.js';
import { need, writeU64 } from './fscc/wire.js';

export const LeaseBreakFlags = {
  SMB2_NOTIFY_BREAK_LEASE_FLAG_ACK_REQUIRED: 0x01,
} as const;

export interface OplockBreakAck {
  kind: 'oplock';
  OplockLevel: number;
  FileId: FileId;
}

export interface LeaseBreakAck {
  kind: 'lease';
  Flags: number;
  LeaseKey: Buffer;
  LeaseState: number;
  LeaseDuration: bigint;
}

export function decodeOplockBreakAck(msg: Buffer): OplockBreakAck | LeaseBreakAck {
  need(msg, 64, 2, 'OPLOCK_BREAK');
  const b = 64;
  const StructureSize = msg.readUInt16LE(b);
  if (StructureSize === 24) {
    need(msg, b, 24, 'OPLOCK_BREAK acknowledgment');
    return { kind: 'oplock', OplockLevel: msg.readUInt8(b + 2), FileId: decodeFileId(msg, b + 8) };
  }
  if (StructureSize === 36) {
    need(msg, b, 36, 'LEASE_BREAK acknowledgment');
    return {
      kind: 'lease',
      Flags: msg.readUInt32LE(b + 4),
      LeaseKey: msg.subarray(b + 8, b + 24),
      LeaseState: msg.readUInt32LE(b + 24),
      LeaseDuration: msg.readBigUInt64LE(b + 28),
    };
  }
  throw new MalformedError(`OPLOCK_BREAK StructureSize ${StructureSize}`);
}

/** Oplock break notification (2.2.23.1) and oplock break response (2.2.25.1): same 24-byte layout. */
export function oplockBreakBody(f: { OplockLevel: number; FileId: FileId }): BodyEncoder {
  return {
    byteLength: () => 24,
    encodeInto(buf: Buffer, at: number): void {
      buf.fill(0, at, at + 24);
      buf.writeUInt16LE(24, at);
      buf.writeUInt8(f.OplockLevel, at + 2);
      encodeFileId(f.FileId, buf, at + 8);
    },
  };
}

export interface LeaseBreakNotificationFields {
  NewEpoch: number;
  Flags: number;
  LeaseKey: Buffer;
  CurrentLeaseState: number;
  NewLeaseState: number;
}

/** Lease break notification (2.2.23.2); BreakReason and the hints are 0 as the spec requires. */
export function leaseBreakNotification(f: LeaseBreakNotificationFields): BodyEncoder {
  return {
    byteLength: () => 44,
    encodeInto(buf: Buffer, at: number): void {
      buf.fill(0, at, at + 44);
      buf.writeUInt16LE(44, at);
      buf.writeUInt16LE(f.NewEpoch & 0xffff, at + 2);
      buf.writeUInt32LE(f.Flags >>> 0, at + 4);
      f.LeaseKey.copy(buf, at + 8, 0, 16);
      buf.writeUInt32LE(f.CurrentLeaseState >>> 0, at + 24);
      buf.writeUInt32LE(f.NewLeaseState >>> 0, at + 28);
    },
  };
}

/** Lease break response (2.2.25.2): 36 bytes, LeaseDuration 0. */
export function leaseBreakResponse(f: { Flags?: number; LeaseKey: Buffer; LeaseState: number }): BodyEncoder {
  return {
    byteLength: () => 36,
    encodeInto(buf: Buffer, at: number): void {
      buf.fill(0, at, at + 36);
      buf.writeUInt16LE(36, at);
      buf.writeUInt32LE((f.Flags ?? 0) >>> 0, at + 4);
      f.LeaseKey.copy(buf, at + 8, 0, 16);
      buf.writeUInt32LE(f.LeaseState >>> 0, at + 24);
      writeU64(buf, 0n, at + 28);
    },
  };
}
