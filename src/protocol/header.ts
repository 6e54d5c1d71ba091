// SMB2 packet header (MS-SMB2 2.2.1) plus the bounds helpers every request decoder of this module
// uses. Offsets in MS-SMB2 are relative to the start of the header, so decoders index `msg` directly.

import { MalformedError } from '../base/errors.js';
import { SMB2_HEADER_SIZE } from './encoder.js';
import { assert } from '../base/assert.js';

/** MS-SMB2 2.2.1: Command values. */
export const Command = {
  NEGOTIATE: 0x0000,
  SESSION_SETUP: 0x0001,
  LOGOFF: 0x0002,
  TREE_CONNECT: 0x0003,
  TREE_DISCONNECT: 0x0004,
  CREATE: 0x0005,
  CLOSE: 0x0006,
  FLUSH: 0x0007,
  READ: 0x0008,
  WRITE: 0x0009,
  LOCK: 0x000a,
  IOCTL: 0x000b,
  CANCEL: 0x000c,
  ECHO: 0x000d,
  QUERY_DIRECTORY: 0x000e,
  CHANGE_NOTIFY: 0x000f,
  QUERY_INFO: 0x0010,
  SET_INFO: 0x0011,
  OPLOCK_BREAK: 0x0012,
  SERVER_TO_CLIENT_NOTIFICATION: 0x0013,
} as const;
export type Command = (typeof Command)[keyof typeof Command];

const commandNames: ReadonlyMap<number, string> = new Map(Object.entries(Command).map(([k, v]) => [v, k]));

/** Name of a command for logs; unknown values are shown in hex. */
export function commandName(command: number): string {
  return commandNames.get(command) ?? `0x${command.toString(16).padStart(4, '0')}`;
}

/** MS-SMB2 2.2.1.1/2.2.1.2: Flags. */
export const HeaderFlags = {
  SERVER_TO_REDIR: 0x00000001,
  ASYNC_COMMAND: 0x00000002,
  RELATED_OPERATIONS: 0x00000004,
  SIGNED: 0x00000008,
  PRIORITY_MASK: 0x00000070,
  DFS_OPERATIONS: 0x10000000,
  REPLAY_OPERATION: 0x20000000,
} as const;

/** Protocol identifiers (first four bytes of a message), little-endian uint32 values. */
export const ProtocolId = {
  SMB2: 0x424d53fe, // 0xFE 'S' 'M' 'B'
  TRANSFORM: 0x424d53fd, // 0xFD 'S' 'M' 'B' (MS-SMB2 2.2.41)
  COMPRESSION_TRANSFORM: 0x424d53fc, // 0xFC 'S' 'M' 'B' (MS-SMB2 2.2.42)
  SMB1: 0x424d53ff, // 0xFF 'S' 'M' 'B'
} as const;

export const SIGNATURE_OFFSET = 48;
export const SIGNATURE_SIZE = 16;
/** Offset of NextCommand in the header (used to chain compound responses). */
export const NEXT_COMMAND_OFFSET = 20;
/** Offset of Flags in the header. */
export const FLAGS_OFFSET = 16;

export function isAsync(flags: number): boolean {
  return (flags & HeaderFlags.ASYNC_COMMAND) !== 0;
}

export interface Smb2Header {
  ProtocolId: number;
  StructureSize: number;
  CreditCharge: number;
  /** The whole 32-bit field: NTSTATUS in responses; ChannelSequence (low 16 bits) + Reserved in 3.x requests. */
  Status: number;
  /** Low 16 bits of the Status field (MS-SMB2 2.2.1.2, SMB 3.x requests). */
  ChannelSequence: number;
  Command: number;
  /** CreditRequest in requests, CreditResponse in responses. */
  Credits: number;
  Flags: number;
  NextCommand: number;
  MessageId: bigint;
  /** 0n for sync messages. */
  AsyncId: bigint;
  /** Sync header's Reserved (ProcessId); 0 for async messages. */
  Reserved: number;
  /** Sync header's TreeId; 0 for async messages. */
  TreeId: number;
  SessionId: bigint;
  /** View of the 16 signature bytes inside msg (not a copy). */
  Signature: Buffer;
}

/** Decodes the 64-byte header at the start of msg (MS-SMB2 2.2.1). */
export function decodeHeader(msg: Buffer): Smb2Header {
  if (msg.length < SMB2_HEADER_SIZE) throw new MalformedError(`SMB2 header: ${msg.length} bytes < 64`);
  const protocolId = msg.readUInt32LE(0);
  if (protocolId !== ProtocolId.SMB2) throw new MalformedError('SMB2 header: ProtocolId is not 0xFE SMB');
  const structureSize = msg.readUInt16LE(4);
  // MS-SMB2 2.2.1: StructureSize MUST be 64.
  if (structureSize !== SMB2_HEADER_SIZE) throw new MalformedError(`SMB2 header: StructureSize ${structureSize} != 64`);
  const status = msg.readUInt32LE(8);
  const flags = msg.readUInt32LE(16);
  const async = isAsync(flags);
  return {
    ProtocolId: protocolId,
    StructureSize: structureSize,
    CreditCharge: msg.readUInt16LE(6),
    Status: status,
    ChannelSequence: status & 0xffff,
    Command: msg.readUInt16LE(12),
    Credits: msg.readUInt16LE(14),
    Flags: flags,
    NextCommand: msg.readUInt32LE(20),
    MessageId: msg.readBigUInt64LE(24),
    AsyncId: async ? msg.readBigUInt64LE(32) : 0n,
    Reserved: async ? 0 : msg.readUInt32LE(32),
    TreeId: async ? 0 : msg.readUInt32LE(36),
    SessionId: msg.readBigUInt64LE(40),
    // A view made on demand: most requests never look at it, and a Buffer view costs an allocation.
    get Signature(): Buffer {
      return msg.subarray(SIGNATURE_OFFSET, SIGNATURE_OFFSET + SIGNATURE_SIZE);
    },
  };
}

/** Fields of a header to encode; everything but Command and MessageId defaults to zero. */
export interface Smb2HeaderInit {
  Command: number;
  MessageId: bigint;
  CreditCharge?: number;
  Status?: number;
  Credits?: number;
  Flags?: number;
  NextCommand?: number;
  /** Written when Flags has ASYNC_COMMAND. */
  AsyncId?: bigint;
  /** Written when Flags lacks ASYNC_COMMAND. */
  Reserved?: number;
  TreeId?: number;
  SessionId?: bigint;
  /** 16 bytes; zero when absent (signing fills it in later). */
  Signature?: Buffer;
}

/** Writes a 64-byte header at buf[at]. */
export function encodeHeader(h: Smb2HeaderInit, buf: Buffer, at: number): void {
  const flags = h.Flags ?? 0;
  buf.writeUInt32LE(ProtocolId.SMB2, at);
  buf.writeUInt16LE(SMB2_HEADER_SIZE, at + 4);
  buf.writeUInt16LE(h.CreditCharge ?? 0, at + 6);
  buf.writeUInt32LE((h.Status ?? 0) >>> 0, at + 8);
  buf.writeUInt16LE(h.Command, at + 12);
  buf.writeUInt16LE(h.Credits ?? 0, at + 14);
  buf.writeUInt32LE(flags >>> 0, at + 16);
  buf.writeUInt32LE(h.NextCommand ?? 0, at + 20);
  buf.writeBigUInt64LE(h.MessageId, at + 24);
  if (isAsync(flags)) {
    buf.writeBigUInt64LE(h.AsyncId ?? 0n, at + 32);
  } else {
    buf.writeUInt32LE(h.Reserved ?? 0, at + 32);
    buf.writeUInt32LE(h.TreeId ?? 0, at + 36);
  }
  buf.writeBigUInt64LE(h.SessionId ?? 0n, at + 40);
  if (h.Signature !== undefined) {
    assert(h.Signature.length === SIGNATURE_SIZE, 'encodeHeader: Signature is 16 bytes');
    h.Signature.copy(buf, at + SIGNATURE_OFFSET);
  } else {
    buf.fill(0, at + SIGNATURE_OFFSET, at + SIGNATURE_OFFSET + SIGNATURE_SIZE);
  }
}

// ---- Bounds helpers shared by the request decoders of this module ----

/**
 * Checks that msg holds a header plus the fixed part of a request body and that the body's
 * StructureSize is `structureSize`. For odd StructureSize values the last byte counts the first
 * byte of the variable part, which may be absent, so the fixed part is StructureSize - 1 bytes.
 */
export function checkRequestBody(msg: Buffer, structureSize: number, what: string): void {
  const fixed = structureSize & ~1;
  if (msg.length < SMB2_HEADER_SIZE + Math.max(fixed, 2)) {
    throw new MalformedError(`${what}: ${msg.length} bytes is too short for a ${structureSize}-byte body`);
  }
  const got = msg.readUInt16LE(SMB2_HEADER_SIZE);
  if (got !== structureSize) throw new MalformedError(`${what}: StructureSize ${got} != ${structureSize}`);
}

/**
 * A view of msg[offset, offset+length) where offset is relative to the header, as every MS-SMB2
 * offset field is. The region must start at or after `minOffset` (the end of the fixed part, so
 * variable data never overlaps fixed fields) and end inside msg. A zero length yields an empty
 * view whatever the offset says (clients send Offset 0 with Length 0).
 */
export function regionAt(msg: Buffer, offset: number, length: number, minOffset: number, what: string): Buffer {
  if (length === 0) return msg.subarray(msg.length);
  if (offset < minOffset) throw new MalformedError(`${what}: offset ${offset} overlaps the fixed part (< ${minOffset})`);
  if (offset + length > msg.length) {
    throw new MalformedError(`${what}: ${offset}+${length} exceeds the ${msg.length}-byte message`);
  }
  return msg.subarray(offset, offset + length);
}

/** Decodes UTF-16LE bytes into a string; an odd byte count is malformed. */
export function utf16At(bytes: Buffer, what: string): string {
  if ((bytes.length & 1) !== 0) throw new MalformedError(`${what}: odd UTF-16 byte length ${bytes.length}`);
  return bytes.toString('utf16le');
}
