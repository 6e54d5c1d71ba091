// SMB2 WRITE (MS-SMB2 2.2.21 request, 2.2.22 response).

import type { BodyEncoder } from './encoder.js';
import { decodeFileId, type FileId } from './create.js';
import { checkBody, msgRange } from './fscc/wire.js';

export const WriteFlags = {
  SMB2_WRITEFLAG_WRITE_THROUGH: 0x0000_0001,
  SMB2_WRITEFLAG_WRITE_UNBUFFERED: 0x0000_0002,
} as const;

export interface WriteRequest {
  DataOffset: number;
  Length: number;
  Offset: bigint;
  FileId: FileId;
  Channel: number;
  RemainingBytes: number;
  WriteChannelInfo: Buffer;
  Flags: number;
  /** View of the message bytes [DataOffset, DataOffset+Length): never copied. */
  Data: Buffer;
}

const WRITE_REQUEST_FIXED = 48;

/**
 * Validates that the data lies inside the message after the fixed body (MS-SMB2 3.3.5.13: a
 * request whose DataOffset/Length fall outside is STATUS_INVALID_PARAMETER). Offset is passed
 * through unchanged (the handler applies file-size limits and the append-at-end convention).
 */
export function decodeWriteRequest(msg: Buffer): WriteRequest {
  checkBody(msg, 49, WRITE_REQUEST_FIXED, 'WRITE');
  const b = 64;
  const DataOffset = msg.readUInt16LE(b + 2);
  const Length = msg.readUInt32LE(b + 4);
  const Offset = msg.readBigUInt64LE(b + 8);
  const infoOff = msg.readUInt16LE(b + 40);
  const infoLen = msg.readUInt16LE(b + 42);
  return {
    DataOffset,
    Length,
    Offset,
    FileId: decodeFileId(msg, b + 16),
    Channel: msg.readUInt32LE(b + 32),
    RemainingBytes: msg.readUInt32LE(b + 36),
    WriteChannelInfo: msgRange(msg, infoOff, infoLen, WRITE_REQUEST_FIXED, 'WRITE WriteChannelInfo'),
    Flags: msg.readUInt32LE(b + 44),
    Data: msgRange(msg, DataOffset, Length, WRITE_REQUEST_FIXED, 'WRITE Data'),
  };
}

/** WRITE response (2.2.22): 16 fixed bytes (StructureSize 17; no channel info is ever returned). */
export function writeResponse(f: { Count: number; Remaining?: number }): BodyEncoder {
  return {
    byteLength: () => 16,
    encodeInto(buf: Buffer, at: number): void {
      buf.fill(0, at, at + 16);
      buf.writeUInt16LE(17, at);
      buf.writeUInt32LE(f.Count >>> 0, at + 4);
      buf.writeUInt32LE((f.Remaining ?? 0) >>> 0, at + 8);
    },
  };
}
