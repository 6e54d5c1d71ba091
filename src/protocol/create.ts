// SMB2 CREATE request/response (MS-SMB2 2.2.13, 2.2.14) and the create context chain (2.2.13.2).
// Context payload codecs live in create-contexts.ts.

import { MalformedError } from '../base/errors.js';
import { limits } from '../base/limits.js';
import type { BodyEncoder } from './encoder.js';
import { align8, checkBody, msgRange, need, utf16, writeAttributeBlock } from './fscc/wire.js';

// ---------------------------------------------------------------------------------------------
// FileId (MS-SMB2 2.2.14.1)

/** SMB2_FILEID: Persistent and Volatile halves, 8 bytes each. */
export interface FileId {
  Persistent: bigint;
  Volatile: bigint;
}

/** The all-ones FileId a related compound request carries to mean "the previous open" (MS-SMB2 3.3.5.2.7.2). */
export const FILE_ID_ANY: Readonly<FileId> = Object.freeze({
  Persistent: 0xffff_ffff_ffff_ffffn,
  Volatile: 0xffff_ffff_ffff_ffffn,
});

export function decodeFileId(buf: Buffer, at: number): FileId {
  need(buf, at, 16, 'FileId');
  return { Persistent: buf.readBigUInt64LE(at), Volatile: buf.readBigUInt64LE(at + 8) };
}

export function encodeFileId(id: FileId, buf: Buffer, at: number): void {
  buf.writeBigUInt64LE(BigInt.asUintN(64, id.Persistent), at);
  buf.writeBigUInt64LE(BigInt.asUintN(64, id.Volatile), at + 8);
}

export function isFileIdAny(id: FileId): boolean {
  return id.Persistent === FILE_ID_ANY.Persistent && id.Volatile === FILE_ID_ANY.Volatile;
}

// ---------------------------------------------------------------------------------------------
// Constants

/** Access mask bits (MS-SMB2 2.2.13.1.1 file/pipe/printer, 2.2.13.1.2 directory aliases, MS-DTYP 2.4.3). */
export const AccessMask = {
  FILE_READ_DATA: 0x0000_0001,
  FILE_LIST_DIRECTORY: 0x0000_0001,
  FILE_WRITE_DATA: 0x0000_0002,
  FILE_ADD_FILE: 0x0000_0002,
  FILE_APPEND_DATA: 0x0000_0004,
  FILE_ADD_SUBDIRECTORY: 0x0000_0004,
  FILE_READ_EA: 0x0000_0008,
  FILE_WRITE_EA: 0x0000_0010,
  FILE_EXECUTE: 0x0000_0020,
  FILE_TRAVERSE: 0x0000_0020,
  FILE_DELETE_CHILD: 0x0000_0040,
  FILE_READ_ATTRIBUTES: 0x0000_0080,
  FILE_WRITE_ATTRIBUTES: 0x0000_0100,
  DELETE: 0x0001_0000,
  READ_CONTROL: 0x0002_0000,
  WRITE_DAC: 0x0004_0000,
  WRITE_OWNER: 0x0008_0000,
  SYNCHRONIZE: 0x0010_0000,
  ACCESS_SYSTEM_SECURITY: 0x0100_0000,
  MAXIMUM_ALLOWED: 0x0200_0000,
  GENERIC_ALL: 0x1000_0000,
  GENERIC_EXECUTE: 0x2000_0000,
  GENERIC_WRITE: 0x4000_0000,
  GENERIC_READ: 0x8000_0000,
  /** All specific and standard rights of a file (MS-DTYP FILE_ALL_ACCESS). */
  FILE_ALL_ACCESS: 0x001f_01ff,
  /** FILE_GENERIC_READ = READ_CONTROL|SYNCHRONIZE|FILE_READ_DATA|FILE_READ_ATTRIBUTES|FILE_READ_EA. */
  FILE_GENERIC_READ: 0x0012_0089,
  /** FILE_GENERIC_WRITE = READ_CONTROL|SYNCHRONIZE|FILE_WRITE_DATA|FILE_WRITE_ATTRIBUTES|FILE_WRITE_EA|FILE_APPEND_DATA. */
  FILE_GENERIC_WRITE: 0x0012_0116,
  /** FILE_GENERIC_EXECUTE = READ_CONTROL|SYNCHRONIZE|FILE_READ_ATTRIBUTES|FILE_EXECUTE. */
  FILE_GENERIC_EXECUTE: 0x0012_00a0,
} as const;

/** ShareAccess (MS-SMB2 2.2.13). */
export const ShareAccess = {
  FILE_SHARE_READ: 0x1,
  FILE_SHARE_WRITE: 0x2,
  FILE_SHARE_DELETE: 0x4,
} as const;

/** CreateDisposition (MS-SMB2 2.2.13). */
export const CreateDisposition = {
  FILE_SUPERSEDE: 0,
  FILE_OPEN: 1,
  FILE_CREATE: 2,
  FILE_OPEN_IF: 3,
  FILE_OVERWRITE: 4,
  FILE_OVERWRITE_IF: 5,
} as const;

/** CreateOptions (MS-SMB2 2.2.13). */
export const CreateOptions = {
  FILE_DIRECTORY_FILE: 0x0000_0001,
  FILE_WRITE_THROUGH: 0x0000_0002,
  FILE_SEQUENTIAL_ONLY: 0x0000_0004,
  FILE_NO_INTERMEDIATE_BUFFERING: 0x0000_0008,
  FILE_SYNCHRONOUS_IO_ALERT: 0x0000_0010,
  FILE_SYNCHRONOUS_IO_NONALERT: 0x0000_0020,
  FILE_NON_DIRECTORY_FILE: 0x0000_0040,
  FILE_COMPLETE_IF_OPLOCKED: 0x0000_0100,
  FILE_NO_EA_KNOWLEDGE: 0x0000_0200,
  FILE_OPEN_REMOTE_INSTANCE: 0x0000_0400,
  FILE_RANDOM_ACCESS: 0x0000_0800,
  FILE_DELETE_ON_CLOSE: 0x0000_1000,
  FILE_OPEN_BY_FILE_ID: 0x0000_2000,
  FILE_OPEN_FOR_BACKUP_INTENT: 0x0000_4000,
  FILE_NO_COMPRESSION: 0x0000_8000,
  FILE_OPEN_REQUIRING_OPLOCK: 0x0001_0000,
  FILE_DISALLOW_EXCLUSIVE: 0x0002_0000,
  FILE_RESERVE_OPFILTER: 0x0010_0000,
  FILE_OPEN_REPARSE_POINT: 0x0020_0000,
  FILE_OPEN_NO_RECALL: 0x0040_0000,
  FILE_OPEN_FOR_FREE_SPACE_QUERY: 0x0080_0000,
} as const;

/** CreateAction in the response (MS-SMB2 2.2.14). */
export const CreateAction = {
  FILE_SUPERSEDED: 0,
  FILE_OPENED: 1,
  FILE_CREATED: 2,
  FILE_OVERWRITTEN: 3,
} as const;

/** RequestedOplockLevel / OplockLevel (MS-SMB2 2.2.13, 2.2.14, 2.2.23). */
export const OplockLevel = {
  NONE: 0x00,
  II: 0x01,
  EXCLUSIVE: 0x08,
  BATCH: 0x09,
  LEASE: 0xff,
} as const;

/** ImpersonationLevel (MS-SMB2 2.2.13). */
export const ImpersonationLevel = {
  Anonymous: 0,
  Identification: 1,
  Impersonation: 2,
  Delegate: 3,
} as const;

/** CREATE response Flags (MS-SMB2 2.2.14). */
export const CreateResponseFlags = {
  SMB2_CREATE_FLAG_REPARSEPOINT: 0x01,
} as const;

/**
 * Create context names (MS-SMB2 2.2.13.2, 2.2.14.2). Four-byte tags are their ASCII text; 16-byte
 * names are the uppercase hex of the bytes in wire (network) order, as the spec prints them.
 */
export const CreateContextName = {
  EA_BUFFER: 'ExtA',
  SD_BUFFER: 'SecD',
  DURABLE_HANDLE_REQUEST: 'DHnQ',
  DURABLE_HANDLE_RECONNECT: 'DHnC',
  ALLOCATION_SIZE: 'AlSi',
  QUERY_MAXIMAL_ACCESS: 'MxAc',
  TIMEWARP_TOKEN: 'TWrp',
  QUERY_ON_DISK_ID: 'QFid',
  REQUEST_LEASE: 'RqLs',
  DURABLE_HANDLE_REQUEST_V2: 'DH2Q',
  DURABLE_HANDLE_RECONNECT_V2: 'DH2C',
  APP_INSTANCE_ID: '45BCA66AEFA7F74A9008FA462E144D74',
  APP_INSTANCE_VERSION: 'B982D0B73B56074FA07B524A8116A010',
  SVHDX_OPEN_DEVICE_CONTEXT: '9CCBCF9E04C1E643980E158DA1F6EC83',
  POSIX: '93AD25509CB411E7B42383DE968BCD7C',
} as const;

// ---------------------------------------------------------------------------------------------
// Create contexts (MS-SMB2 2.2.13.2)

export interface CreateContext {
  /** ASCII tag ('MxAc') for 4-byte printable names, else uppercase hex of the name bytes. */
  Name: string;
  NameBytes: Buffer;
  Data: Buffer;
}

export interface CreateContextOut {
  /** A 4-character ASCII tag, a 32-digit hex name (see CreateContextName), or raw name bytes. */
  Name: string | Buffer;
  Data: Buffer;
}

const CONTEXT_HEADER_SIZE = 16;

function contextNameString(b: Buffer): string {
  if (b.length === 4 && b.every((c) => c >= 0x20 && c < 0x7f)) return b.toString('latin1');
  return b.toString('hex').toUpperCase();
}

export function contextNameBytes(name: string | Buffer): Buffer {
  if (Buffer.isBuffer(name)) return name;
  if (name.length === 4) return Buffer.from(name, 'latin1');
  if (/^[0-9A-Fa-f]{32}$/.test(name)) return Buffer.from(name, 'hex');
  throw new MalformedError(`create context name must be a 4-char tag or 32 hex digits: ${name}`);
}

/**
 * Parses a chain of SMB2_CREATE_CONTEXT structures occupying all of `chain` (MS-SMB2 2.2.13.2):
 * Next is 8-byte aligned and stays inside the chain, NameLength >= 4, names and data lie inside
 * their own context, DataOffset is 8-byte aligned when DataLength > 0. Returns views.
 */
export function decodeCreateContexts(chain: Buffer): CreateContext[] {
  const out: CreateContext[] = [];
  let pos = 0;
  while (pos < chain.length) {
    need(chain, pos, CONTEXT_HEADER_SIZE, 'create context header');
    const Next = chain.readUInt32LE(pos);
    const NameOffset = chain.readUInt16LE(pos + 4);
    const NameLength = chain.readUInt16LE(pos + 6);
    const DataOffset = chain.readUInt16LE(pos + 10);
    const DataLength = chain.readUInt32LE(pos + 12);
    let size: number;
    if (Next === 0) {
      size = chain.length - pos;
    } else {
      // MS-SMB2 2.2.13.2: Next is the offset to a subsequent 8-byte aligned context.
      if (Next % 8 !== 0 || Next < CONTEXT_HEADER_SIZE || pos + Next >= chain.length) {
        throw new MalformedError(`create context Next ${Next} invalid at ${pos}`);
      }
      size = Next;
    }
    if (NameLength < 4 || NameOffset < CONTEXT_HEADER_SIZE || NameOffset + NameLength > size) {
      throw new MalformedError(`create context name (offset ${NameOffset}, length ${NameLength}) invalid`);
    }
    let Data: Buffer;
    if (DataLength === 0) {
      Data = chain.subarray(0, 0);
    } else {
      if (DataOffset % 8 !== 0 || DataOffset < NameOffset + NameLength || DataOffset + DataLength > size) {
        throw new MalformedError(`create context data (offset ${DataOffset}, length ${DataLength}) invalid`);
      }
      Data = chain.subarray(pos + DataOffset, pos + DataOffset + DataLength);
    }
    const NameBytes = chain.subarray(pos + NameOffset, pos + NameOffset + NameLength);
    out.push({ Name: contextNameString(NameBytes), NameBytes, Data });
    if (Next === 0) break;
    pos += Next;
  }
  return out;
}

/** Returns the first context with this name (see CreateContextName), or undefined. */
export function findCreateContext(list: readonly CreateContext[], name: string): CreateContext | undefined {
  return list.find((c) => c.Name === name);
}

function contextSize(c: { nameBytes: Buffer; Data: Buffer }): number {
  const dataAt = align8(CONTEXT_HEADER_SIZE + c.nameBytes.length);
  return c.Data.length > 0 ? dataAt + c.Data.length : CONTEXT_HEADER_SIZE + c.nameBytes.length;
}

/** Byte length of an encoded context chain (the last context is not padded). */
export function createContextsByteLength(list: readonly CreateContextOut[]): number {
  let total = 0;
  list.forEach((c, i) => {
    const size = contextSize({ nameBytes: contextNameBytes(c.Name), Data: c.Data });
    total += i === list.length - 1 ? size : align8(size);
  });
  return total;
}

/** Writes a context chain at `at` (8-byte aligned relative to `at`); returns bytes written. */
export function encodeCreateContextsInto(list: readonly CreateContextOut[], buf: Buffer, at: number): number {
  let pos = at;
  list.forEach((c, i) => {
    const nameBytes = contextNameBytes(c.Name);
    const size = contextSize({ nameBytes, Data: c.Data });
    const last = i === list.length - 1;
    const span = last ? size : align8(size);
    buf.fill(0, pos, pos + span);
    buf.writeUInt32LE(last ? 0 : span, pos);
    buf.writeUInt16LE(CONTEXT_HEADER_SIZE, pos + 4);
    buf.writeUInt16LE(nameBytes.length, pos + 6);
    const dataAt = align8(CONTEXT_HEADER_SIZE + nameBytes.length);
    buf.writeUInt16LE(c.Data.length > 0 ? dataAt : 0, pos + 10);
    buf.writeUInt32LE(c.Data.length, pos + 12);
    nameBytes.copy(buf, pos + CONTEXT_HEADER_SIZE);
    if (c.Data.length > 0) c.Data.copy(buf, pos + dataAt);
    pos += span;
  });
  return pos - at;
}

export function encodeCreateContexts(list: readonly CreateContextOut[]): Buffer {
  const b = Buffer.alloc(createContextsByteLength(list));
  encodeCreateContextsInto(list, b, 0);
  return b;
}

// ---------------------------------------------------------------------------------------------
// CREATE request (MS-SMB2 2.2.13)

export interface CreateRequest {
  SecurityFlags: number;
  RequestedOplockLevel: number;
  ImpersonationLevel: number;
  SmbCreateFlags: bigint;
  DesiredAccess: number;
  FileAttributes: number;
  ShareAccess: number;
  CreateDisposition: number;
  CreateOptions: number;
  /** Path relative to the share, backslash separated; '' is the share root. */
  Name: string;
  CreateContexts: CreateContext[];
}

const CREATE_REQUEST_FIXED = 56;

export function decodeCreateRequest(msg: Buffer): CreateRequest {
  checkBody(msg, 57, CREATE_REQUEST_FIXED, 'CREATE');
  const b = 64;
  const NameOffset = msg.readUInt16LE(b + 44);
  const NameLength = msg.readUInt16LE(b + 46);
  const CreateContextsOffset = msg.readUInt32LE(b + 48);
  const CreateContextsLength = msg.readUInt32LE(b + 52);
  if (NameLength > limits.pathUnitsMax * 2) throw new MalformedError(`CREATE NameLength ${NameLength} too long`);
  const nameBytes = msgRange(msg, NameOffset, NameLength, CREATE_REQUEST_FIXED, 'CREATE Name');
  const chain = msgRange(msg, CreateContextsOffset, CreateContextsLength, CREATE_REQUEST_FIXED, 'CREATE CreateContexts');
  // MS-SMB2 2.2.13: the first create context is 8-byte aligned (relative to the header).
  if (CreateContextsLength > 0 && CreateContextsOffset % 8 !== 0) {
    throw new MalformedError(`CREATE CreateContextsOffset ${CreateContextsOffset} not 8-byte aligned`);
  }
  return {
    SecurityFlags: msg.readUInt8(b + 2),
    RequestedOplockLevel: msg.readUInt8(b + 3),
    ImpersonationLevel: msg.readUInt32LE(b + 4),
    SmbCreateFlags: msg.readBigUInt64LE(b + 8),
    DesiredAccess: msg.readUInt32LE(b + 24),
    FileAttributes: msg.readUInt32LE(b + 28),
    ShareAccess: msg.readUInt32LE(b + 32),
    CreateDisposition: msg.readUInt32LE(b + 36),
    CreateOptions: msg.readUInt32LE(b + 40),
    Name: utf16(nameBytes, 'CREATE Name'),
    CreateContexts: decodeCreateContexts(chain),
  };
}

// ---------------------------------------------------------------------------------------------
// CREATE response (MS-SMB2 2.2.14)

export interface CreateResponseFields {
  OplockLevel: number;
  Flags?: number;
  CreateAction: number;
  CreationTime: bigint;
  LastAccessTime: bigint;
  LastWriteTime: bigint;
  ChangeTime: bigint;
  AllocationSize: bigint;
  EndofFile: bigint;
  FileAttributes: number;
  FileId: FileId;
  CreateContexts?: readonly CreateContextOut[];
}

const CREATE_RESPONSE_FIXED = 88;

/**
 * CREATE response body. Without contexts the body is the 88-byte fixed part (StructureSize 89
 * counts one byte of Buffer; clients accept its absence). Contexts start at 64+88 = 152, which is
 * 8-byte aligned relative to the header as MS-SMB2 2.2.14 requires.
 */
export function createResponse(f: CreateResponseFields): BodyEncoder {
  const contexts = f.CreateContexts ?? [];
  const ccLen = createContextsByteLength(contexts);
  return {
    byteLength: () => CREATE_RESPONSE_FIXED + ccLen,
    encodeInto(buf: Buffer, at: number): void {
      buf.fill(0, at, at + CREATE_RESPONSE_FIXED);
      buf.writeUInt16LE(89, at);
      buf.writeUInt8(f.OplockLevel, at + 2);
      buf.writeUInt8(f.Flags ?? 0, at + 3);
      buf.writeUInt32LE(f.CreateAction, at + 4);
      writeAttributeBlock(f, buf, at + 8);
      encodeFileId(f.FileId, buf, at + 64);
      buf.writeUInt32LE(ccLen > 0 ? 64 + CREATE_RESPONSE_FIXED : 0, at + 80);
      buf.writeUInt32LE(ccLen, at + 84);
      if (ccLen > 0) encodeCreateContextsInto(contexts, buf, at + CREATE_RESPONSE_FIXED);
    },
  };
}
