// SMB2 IOCTL request (MS-SMB2 2.2.31) and response (2.2.32), and the FSCTL/IOCTL codes a file
// server meets (values from MS-FSCC 2.3 and MS-SMB2 2.2.31; cross-checked against Microsoft's
// WindowsProtocolTestSuites FsControlCommand table and impacket).

import { align8, SMB2_HEADER_SIZE, type BodyEncoder } from './encoder.js';
import { checkRequestBody, regionAt } from './header.js';

export const FsctlCode = {
  // MS-SMB2 2.2.31 (SMB-specific, device 0x14 / 0x11 / 0x06)
  DFS_GET_REFERRALS: 0x00060194,
  DFS_GET_REFERRALS_EX: 0x000601b0,
  PIPE_PEEK: 0x0011400c,
  PIPE_WAIT: 0x00110018,
  PIPE_TRANSCEIVE: 0x0011c017,
  SRV_COPYCHUNK: 0x001440f2,
  SRV_COPYCHUNK_WRITE: 0x001480f2,
  SRV_ENUMERATE_SNAPSHOTS: 0x00144064,
  SRV_REQUEST_RESUME_KEY: 0x00140078,
  SRV_READ_HASH: 0x001441bb,
  LMR_REQUEST_RESILIENCY: 0x001401d4,
  QUERY_NETWORK_INTERFACE_INFO: 0x001401fc,
  VALIDATE_NEGOTIATE_INFO: 0x00140204,
  // MS-FSCC 2.3 (file system, device 0x09)
  CREATE_OR_GET_OBJECT_ID: 0x000900c0,
  DELETE_OBJECT_ID: 0x000900a0,
  DELETE_REPARSE_POINT: 0x000900ac,
  DUPLICATE_EXTENTS_TO_FILE: 0x00098344,
  DUPLICATE_EXTENTS_TO_FILE_EX: 0x000983e8,
  FILE_LEVEL_TRIM: 0x00098208,
  FILESYSTEM_GET_STATISTICS: 0x00090060,
  FIND_FILES_BY_SID: 0x0009008f,
  GET_COMPRESSION: 0x0009003c,
  GET_INTEGRITY_INFORMATION: 0x0009027c,
  GET_NTFS_VOLUME_DATA: 0x00090064,
  GET_REFS_VOLUME_DATA: 0x000902d8,
  GET_OBJECT_ID: 0x0009009c,
  GET_REPARSE_POINT: 0x000900a8,
  GET_RETRIEVAL_POINTERS: 0x00090073,
  IS_PATHNAME_VALID: 0x0009002c,
  LMR_SET_LINK_TRACKING_INFORMATION: 0x001400ec,
  MARK_HANDLE: 0x000900fc,
  OFFLOAD_READ: 0x00094264,
  OFFLOAD_WRITE: 0x00098268,
  QUERY_ALLOCATED_RANGES: 0x000940cf,
  QUERY_FAT_BPB: 0x00090058,
  QUERY_FILE_REGIONS: 0x00090284,
  QUERY_ON_DISK_VOLUME_INFO: 0x0009013c,
  QUERY_SPARING_INFO: 0x00090138,
  READ_FILE_USN_DATA: 0x000900eb,
  RECALL_FILE: 0x00090117,
  SET_COMPRESSION: 0x0009c040,
  SET_DEFECT_MANAGEMENT: 0x00098134,
  SET_ENCRYPTION: 0x000900d7,
  SET_INTEGRITY_INFORMATION: 0x0009c280,
  SET_OBJECT_ID: 0x00090098,
  SET_OBJECT_ID_EXTENDED: 0x000900bc,
  SET_REPARSE_POINT: 0x000900a4,
  SET_SPARSE: 0x000900c4,
  SET_ZERO_DATA: 0x000980c8,
  SET_ZERO_ON_DEALLOCATION: 0x00090194,
  SIS_COPYFILE: 0x00090100,
  WRITE_USN_CLOSE_RECORD: 0x000900ef,
} as const;

const fsctlNames: ReadonlyMap<number, string> = new Map(Object.entries(FsctlCode).map(([k, v]) => [v, `FSCTL_${k}`]));

/** FSCTL name for logs, or the code in hex. */
export function fsctlName(code: number): string {
  const c = code >>> 0;
  return fsctlNames.get(c) ?? `0x${c.toString(16).padStart(8, '0')}`;
}

/** MS-SMB2 2.2.31: Flags. */
export const IoctlFlags = {
  IS_IOCTL: 0x00000000,
  IS_FSCTL: 0x00000001,
} as const;

export interface FileId {
  Persistent: bigint;
  Volatile: bigint;
}

export interface IoctlRequest {
  StructureSize: number;
  CtlCode: number;
  FileId: FileId;
  InputOffset: number;
  InputCount: number;
  MaxInputResponse: number;
  OutputOffset: number;
  OutputCount: number;
  MaxOutputResponse: number;
  Flags: number;
  /** View of the input data inside msg. */
  Input: Buffer;
  /** View of the (rarely used) output data the client sent. */
  Output: Buffer;
}

const REQUEST_STRUCTURE_SIZE = 57;
const REQUEST_FIXED = 56;

/** Decodes an IOCTL request (msg starts at the SMB2 header). MS-SMB2 2.2.31. */
export function decodeIoctlRequest(msg: Buffer): IoctlRequest {
  checkRequestBody(msg, REQUEST_STRUCTURE_SIZE, 'IOCTL');
  const b = SMB2_HEADER_SIZE;
  const inputOffset = msg.readUInt32LE(b + 24);
  const inputCount = msg.readUInt32LE(b + 28);
  const outputOffset = msg.readUInt32LE(b + 36);
  const outputCount = msg.readUInt32LE(b + 40);
  const minAt = b + REQUEST_FIXED;
  return {
    StructureSize: REQUEST_STRUCTURE_SIZE,
    CtlCode: msg.readUInt32LE(b + 4),
    FileId: { Persistent: msg.readBigUInt64LE(b + 8), Volatile: msg.readBigUInt64LE(b + 16) },
    InputOffset: inputOffset,
    InputCount: inputCount,
    MaxInputResponse: msg.readUInt32LE(b + 32),
    OutputOffset: outputOffset,
    OutputCount: outputCount,
    MaxOutputResponse: msg.readUInt32LE(b + 44),
    Flags: msg.readUInt32LE(b + 48),
    // MS-SMB2 3.3.5.15: buffers outside the request fail with STATUS_INVALID_PARAMETER.
    Input: regionAt(msg, inputOffset, inputCount, minAt, 'IOCTL Input'),
    Output: regionAt(msg, outputOffset, outputCount, minAt, 'IOCTL Output'),
  };
}

export interface IoctlResponseFields {
  CtlCode: number;
  FileId: FileId;
  /** Echoed input (rare, small: copied into the encoded body). */
  Input?: Buffer;
  /** Output data, sent after the encoded body without being copied. */
  Output?: Buffer;
}

const RESPONSE_STRUCTURE_SIZE = 49;
const RESPONSE_FIXED = 48;

/**
 * IOCTL response body (MS-SMB2 2.2.32). The output travels as `payload`; byteLength() covers the
 * fixed part, the echoed input and the padding that puts Output at an 8-byte aligned offset.
 */
export function ioctlResponse(f: IoctlResponseFields): BodyEncoder {
  const input = f.Input ?? Buffer.alloc(0);
  const output = f.Output ?? Buffer.alloc(0);
  const inputAt = SMB2_HEADER_SIZE + RESPONSE_FIXED; // 112
  const outputAt = input.length > 0 ? align8(inputAt + input.length) : inputAt;
  const length = output.length > 0 ? outputAt - SMB2_HEADER_SIZE : RESPONSE_FIXED + input.length;
  const enc: BodyEncoder = {
    byteLength: () => length,
    encodeInto(buf: Buffer, at: number): void {
      buf.fill(0, at, at + length);
      buf.writeUInt16LE(RESPONSE_STRUCTURE_SIZE, at);
      buf.writeUInt32LE(f.CtlCode >>> 0, at + 4);
      buf.writeBigUInt64LE(f.FileId.Persistent, at + 8);
      buf.writeBigUInt64LE(f.FileId.Volatile, at + 16);
      buf.writeUInt32LE(inputAt, at + 24);
      buf.writeUInt32LE(input.length, at + 28);
      buf.writeUInt32LE(outputAt, at + 32);
      buf.writeUInt32LE(output.length, at + 36);
      // Flags and Reserved2 stay 0 (MS-SMB2 2.2.32).
      input.copy(buf, at + RESPONSE_FIXED);
    },
  };
  return output.length > 0 ? { ...enc, payload: output } : enc;
}
