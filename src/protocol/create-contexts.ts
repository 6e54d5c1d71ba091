// Payload codecs of the SMB2 create contexts (MS-SMB2 2.2.13.2.x requests, 2.2.14.2.x responses).
// Decoders take the context's Data view (CreateContext.Data from create.ts) and validate its size;
// encoders return the Data buffer to put in a CreateContextOut.

import { MalformedError } from '../base/errors.js';
import { decodeFileId, encodeFileId, type FileId } from './create.js';
import { writeI64, writeU64 } from './fscc/wire.js';

function exactly(data: Buffer, n: number, what: string): void {
  if (data.length !== n) throw new MalformedError(`${what}: DataLength ${data.length}, expected ${n}`);
}

// --- MxAc (2.2.13.2.5 request, 2.2.14.2.5 response) ------------------------------------------

export interface MaximalAccessRequest {
  /** Optional FILETIME: the server answers only if the file changed since (MS-SMB2 3.3.5.9.5). */
  Timestamp?: bigint;
}

export function decodeMaximalAccessRequest(data: Buffer): MaximalAccessRequest {
  if (data.length === 0) return {};
  exactly(data, 8, 'MxAc');
  return { Timestamp: data.readBigInt64LE(0) };
}

export function encodeMaximalAccessResponse(f: { QueryStatus: number; MaximalAccess: number }): Buffer {
  const b = Buffer.alloc(8);
  b.writeUInt32LE(f.QueryStatus >>> 0, 0);
  b.writeUInt32LE(f.MaximalAccess >>> 0, 4);
  return b;
}

export function decodeMaximalAccessResponse(data: Buffer): { QueryStatus: number; MaximalAccess: number } {
  exactly(data, 8, 'MxAc response');
  return { QueryStatus: data.readUInt32LE(0), MaximalAccess: data.readUInt32LE(4) };
}

// --- QFid (2.2.14.2.9) -----------------------------------------------------------------------

/**
 * SMB2_CREATE_QUERY_ON_DISK_ID response: 32 bytes. Laid out as Windows, Samba and the Linux client
 * do: DiskFileId (8 bytes, the file index), VolumeId (8 bytes), Reserved (16 bytes of zero).
 */
export function encodeQueryOnDiskIdResponse(f: { DiskFileId: bigint; VolumeId: bigint }): Buffer {
  const b = Buffer.alloc(32);
  writeU64(b, f.DiskFileId, 0);
  writeU64(b, f.VolumeId, 8);
  return b;
}

// --- DHnQ / DHnC (2.2.13.2.3, 2.2.13.2.4, 2.2.14.2.3) ---------------------------------------

/** DHnQ request Data is 16 reserved bytes. */
export function decodeDurableHandleRequest(data: Buffer): Record<string, never> {
  exactly(data, 16, 'DHnQ');
  return {};
}

/** DHnQ response Data is 8 reserved bytes. */
export function encodeDurableHandleResponse(): Buffer {
  return Buffer.alloc(8);
}

/** DHnC: the FileId of the durable open being reclaimed. */
export function decodeDurableHandleReconnect(data: Buffer): { FileId: FileId } {
  exactly(data, 16, 'DHnC');
  return { FileId: decodeFileId(data, 0) };
}

// --- DH2Q / DH2C (2.2.13.2.11, 2.2.13.2.12, 2.2.14.2.12) -------------------------------------

export const DurableHandleFlags = {
  SMB2_DHANDLE_FLAG_PERSISTENT: 0x0000_0002,
} as const;

export interface DurableHandleRequestV2 {
  /** Milliseconds; 0 means the server chooses. */
  Timeout: number;
  Flags: number;
  /** 16-byte GUID view. */
  CreateGuid: Buffer;
}

export function decodeDurableHandleRequestV2(data: Buffer): DurableHandleRequestV2 {
  exactly(data, 32, 'DH2Q');
  return { Timeout: data.readUInt32LE(0), Flags: data.readUInt32LE(4), CreateGuid: data.subarray(16, 32) };
}

export function encodeDurableHandleRequestV2(f: DurableHandleRequestV2): Buffer {
  const b = Buffer.alloc(32);
  b.writeUInt32LE(f.Timeout >>> 0, 0);
  b.writeUInt32LE(f.Flags >>> 0, 4);
  f.CreateGuid.copy(b, 16, 0, 16);
  return b;
}

export function encodeDurableHandleResponseV2(f: { Timeout: number; Flags: number }): Buffer {
  const b = Buffer.alloc(8);
  b.writeUInt32LE(f.Timeout >>> 0, 0);
  b.writeUInt32LE(f.Flags >>> 0, 4);
  return b;
}

export function decodeDurableHandleResponseV2(data: Buffer): { Timeout: number; Flags: number } {
  exactly(data, 8, 'DH2Q response');
  return { Timeout: data.readUInt32LE(0), Flags: data.readUInt32LE(4) };
}

export interface DurableHandleReconnectV2 {
  FileId: FileId;
  CreateGuid: Buffer;
  Flags: number;
}

export function decodeDurableHandleReconnectV2(data: Buffer): DurableHandleReconnectV2 {
  exactly(data, 36, 'DH2C');
  return { FileId: decodeFileId(data, 0), CreateGuid: data.subarray(16, 32), Flags: data.readUInt32LE(32) };
}

export function encodeDurableHandleReconnectV2(f: DurableHandleReconnectV2): Buffer {
  const b = Buffer.alloc(36);
  encodeFileId(f.FileId, b, 0);
  f.CreateGuid.copy(b, 16, 0, 16);
  b.writeUInt32LE(f.Flags >>> 0, 32);
  return b;
}

// --- RqLs (2.2.13.2.8 v1, 2.2.13.2.10 v2; responses 2.2.14.2.10, 2.2.14.2.11) ---------------

export const LeaseState = {
  SMB2_LEASE_NONE: 0x00,
  SMB2_LEASE_READ_CACHING: 0x01,
  SMB2_LEASE_HANDLE_CACHING: 0x02,
  SMB2_LEASE_WRITE_CACHING: 0x04,
} as const;

export const LeaseFlags = {
  /** Response: a break is in progress (2.2.14.2.10). */
  SMB2_LEASE_FLAG_BREAK_IN_PROGRESS: 0x02,
  /** V2: ParentLeaseKey is set (2.2.13.2.10). */
  SMB2_LEASE_FLAG_PARENT_LEASE_KEY_SET: 0x04,
} as const;

export interface LeaseV1 {
  version: 1;
  LeaseKey: Buffer;
  LeaseState: number;
  LeaseFlags: number;
  LeaseDuration: bigint;
}

export interface LeaseV2 {
  version: 2;
  LeaseKey: Buffer;
  LeaseState: number;
  /** Named "Flags" in 2.2.13.2.10; kept as LeaseFlags so both versions share the field. */
  LeaseFlags: number;
  LeaseDuration: bigint;
  ParentLeaseKey: Buffer;
  Epoch: number;
}

export type Lease = LeaseV1 | LeaseV2;

/** Decodes RqLs: 32 bytes is v1, 52 bytes is v2 (the DataLength distinguishes them). */
export function decodeLease(data: Buffer): Lease {
  if (data.length === 32) {
    return {
      version: 1,
      LeaseKey: data.subarray(0, 16),
      LeaseState: data.readUInt32LE(16),
      LeaseFlags: data.readUInt32LE(20),
      LeaseDuration: data.readBigUInt64LE(24),
    };
  }
  if (data.length === 52) {
    return {
      version: 2,
      LeaseKey: data.subarray(0, 16),
      LeaseState: data.readUInt32LE(16),
      LeaseFlags: data.readUInt32LE(20),
      LeaseDuration: data.readBigUInt64LE(24),
      ParentLeaseKey: data.subarray(32, 48),
      Epoch: data.readUInt16LE(48),
    };
  }
  throw new MalformedError(`RqLs: DataLength ${data.length}, expected 32 or 52`);
}

/** Encodes an RqLs request or response (same layouts; LeaseDuration is 0 in responses). */
export function encodeLease(l: Lease): Buffer {
  const b = Buffer.alloc(l.version === 1 ? 32 : 52);
  l.LeaseKey.copy(b, 0, 0, 16);
  b.writeUInt32LE(l.LeaseState >>> 0, 16);
  b.writeUInt32LE(l.LeaseFlags >>> 0, 20);
  writeU64(b, l.LeaseDuration, 24);
  if (l.version === 2) {
    l.ParentLeaseKey.copy(b, 32, 0, 16);
    b.writeUInt16LE(l.Epoch & 0xffff, 48);
  }
  return b;
}

// --- SecD, ExtA, AlSi, TWrp (2.2.13.2.1, .2, .6, .7) -----------------------------------------

/** SecD: the self-relative security descriptor (parse with security-descriptor.ts). */
export function decodeSdBuffer(data: Buffer): Buffer {
  if (data.length < 20) throw new MalformedError(`SecD: ${data.length} bytes is too short`);
  return data;
}

/** ExtA: a FILE_FULL_EA_INFORMATION chain (MS-FSCC 2.4.15), returned as a view. */
export function decodeEaBuffer(data: Buffer): Buffer {
  return data;
}

export function decodeAllocationSize(data: Buffer): { AllocationSize: bigint } {
  exactly(data, 8, 'AlSi');
  return { AllocationSize: data.readBigUInt64LE(0) };
}

export function decodeTimewarpToken(data: Buffer): { Timestamp: bigint } {
  exactly(data, 8, 'TWrp');
  return { Timestamp: data.readBigInt64LE(0) };
}

export function encodeTimewarpToken(Timestamp: bigint): Buffer {
  const b = Buffer.alloc(8);
  writeI64(b, Timestamp, 0);
  return b;
}

// --- AppInstanceId / AppInstanceVersion (2.2.13.2.13, 2.2.13.2.15) ---------------------------

export function decodeAppInstanceId(data: Buffer): { AppInstanceId: Buffer } {
  exactly(data, 20, 'AppInstanceId');
  const StructureSize = data.readUInt16LE(0);
  if (StructureSize !== 20) throw new MalformedError(`AppInstanceId StructureSize ${StructureSize}`);
  return { AppInstanceId: data.subarray(4, 20) };
}

export function encodeAppInstanceId(AppInstanceId: Buffer): Buffer {
  const b = Buffer.alloc(20);
  b.writeUInt16LE(20, 0);
  AppInstanceId.copy(b, 4, 0, 16);
  return b;
}

export interface AppInstanceVersion {
  AppInstanceVersionHigh: bigint;
  AppInstanceVersionLow: bigint;
}

export function decodeAppInstanceVersion(data: Buffer): AppInstanceVersion {
  exactly(data, 24, 'AppInstanceVersion');
  const StructureSize = data.readUInt16LE(0);
  if (StructureSize !== 24) throw new MalformedError(`AppInstanceVersion StructureSize ${StructureSize}`);
  return { AppInstanceVersionHigh: data.readBigUInt64LE(8), AppInstanceVersionLow: data.readBigUInt64LE(16) };
}

export function encodeAppInstanceVersion(v: AppInstanceVersion): Buffer {
  const b = Buffer.alloc(24);
  b.writeUInt16LE(24, 0);
  writeU64(b, v.AppInstanceVersionHigh, 8);
  writeU64(b, v.AppInstanceVersionLow, 16);
  return b;
}
