// SMB2 READ (MS-SMB2 2.2.19 request, 2.2.20 response).

import type { BodyEncoder } from './encoder.js';
import { decodeFileId, type FileId } from './create.js';
import { checkBody, msgRange } from './fscc/wire.js';

export const ReadFlags = {
  SMB2_READFLAG_READ_UNBUFFERED: 0x01,
  SMB2_READFLAG_REQUEST_COMPRESSED: 0x02,
} as const;

/** Channel values shared by READ and WRITE (MS-SMB2 2.2.19). */
export const Channel = {
  SMB2_CHANNEL_NONE: 0,
  SMB2_CHANNEL_RDMA_V1: 1,
  SMB2_CHANNEL_RDMA_V1_INVALIDATE: 2,
  SMB2_CHANNEL_RDMA_TRANSFORM: 3,
} as const;

export interface ReadRequest {
  Padding: number;
  Flags: number;
  Length: number;
  Offset: bigint;
  FileId: FileId;
  MinimumCount: number;
  Channel: number;
  RemainingBytes: number;
  ReadChannelInfo: Buffer;
}

const READ_REQUEST_FIXED = 48;

/**
 * StructureSize is 49, but clients may send only the 48 fixed bytes when there is no channel info
 * (the Buffer byte is optional padding), so 48 is the minimum body accepted.
 */
export function decodeReadRequest(msg: Buffer): ReadRequest {
  checkBody(msg, 49, READ_REQUEST_FIXED, 'READ');
  const b = 64;
  const off = msg.readUInt16LE(b + 44);
  const len = msg.readUInt16LE(b + 46);
  return {
    Padding: msg.readUInt8(b + 2),
    Flags: msg.readUInt8(b + 3),
    Length: msg.readUInt32LE(b + 4),
    Offset: msg.readBigUInt64LE(b + 8),
    FileId: decodeFileId(msg, b + 16),
    MinimumCount: msg.readUInt32LE(b + 32),
    Channel: msg.readUInt32LE(b + 36),
    RemainingBytes: msg.readUInt32LE(b + 40),
    ReadChannelInfo: msgRange(msg, off, len, READ_REQUEST_FIXED, 'READ ReadChannelInfo'),
  };
}

export interface ReadResponseFields {
  /** The bytes read, sent after the 16-byte body without copying. */
  Data: Buffer;
  DataRemaining?: number;
  Flags?: number;
}

/** DataOffset of a READ response: header (64) + fixed body (16). */
export const READ_RESPONSE_DATA_OFFSET = 0x50;

/**
 * READ response: a 16-byte body followed by `payload` (the data). DataOffset is 0x50 (MS-SMB2 2.2.20).
 * StructureSize 17 counts the first data byte; with no data the body is only the 16 fixed bytes.
 */
export function readResponse(f: ReadResponseFields): BodyEncoder {
  return {
    payload: f.Data,
    byteLength: () => 16,
    encodeInto(buf: Buffer, at: number): void {
      buf.writeUInt16LE(17, at);
      buf.writeUInt8(READ_RESPONSE_DATA_OFFSET, at + 2);
      buf.writeUInt8(0, at + 3);
      buf.writeUInt32LE(f.Data.length, at + 4);
      buf.writeUInt32LE((f.DataRemaining ?? 0) >>> 0, at + 8);
      buf.writeUInt32LE((f.Flags ?? 0) >>> 0, at + 12);
    },
  };
}
