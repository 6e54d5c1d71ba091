// SMB2 TREE_CONNECT request (MS-SMB2 2.2.9, extension 2.2.9.1) and response (2.2.10).

import { MalformedError } from '../base/errors.js';
import { SMB2_HEADER_SIZE, type BodyEncoder } from './encoder.js';
import { checkRequestBody, regionAt, utf16At } from './header.js';

/** MS-SMB2 2.2.9: Flags (SMB 3.1.1 only; Reserved in earlier dialects). */
export const TreeConnectFlags = {
  CLUSTER_RECONNECT: 0x0001,
  REDIRECT_TO_OWNER: 0x0002,
  EXTENSION_PRESENT: 0x0004,
} as const;

/** MS-SMB2 2.2.10: ShareType. */
export const ShareType = {
  DISK: 0x01,
  PIPE: 0x02,
  PRINT: 0x03,
} as const;

/** MS-SMB2 2.2.10: ShareFlags. Exactly one of the *_CACHING values (bits 0x30) is set. */
export const ShareFlags = {
  MANUAL_CACHING: 0x00000000,
  AUTO_CACHING: 0x00000010,
  VDO_CACHING: 0x00000020,
  NO_CACHING: 0x00000030,
  DFS: 0x00000001,
  DFS_ROOT: 0x00000002,
  RESTRICT_EXCLUSIVE_OPENS: 0x00000100,
  FORCE_SHARED_DELETE: 0x00000200,
  ALLOW_NAMESPACE_CACHING: 0x00000400,
  ACCESS_BASED_DIRECTORY_ENUM: 0x00000800,
  FORCE_LEVELII_OPLOCK: 0x00001000,
  ENABLE_HASH_V1: 0x00002000,
  ENABLE_HASH_V2: 0x00004000,
  ENCRYPT_DATA: 0x00008000,
  IDENTITY_REMOTING: 0x00040000,
  COMPRESS_DATA: 0x00100000,
  ISOLATED_TRANSPORT: 0x00200000,
} as const;

/** MS-SMB2 2.2.10: Capabilities (SMB2_SHARE_CAP_*). */
export const ShareCapabilities = {
  DFS: 0x00000008,
  CONTINUOUS_AVAILABILITY: 0x00000010,
  SCALEOUT: 0x00000020,
  CLUSTER: 0x00000040,
  ASYMMETRIC: 0x00000080,
  REDIRECT_TO_OWNER: 0x00000100,
} as const;

export interface TreeConnectRequest {
  StructureSize: number;
  /** Flags in 3.1.1, Reserved before (then decoded as 0). */
  Flags: number;
  PathOffset: number;
  PathLength: number;
  /** The share path, normally "\\server\share" (MS-SMB2 2.2.9). */
  Path: string;
  /** From the 2.2.9.1 extension when EXTENSION_PRESENT is set; 0 otherwise. Contexts are not decoded. */
  TreeConnectContextOffset: number;
  TreeConnectContextCount: number;
}

const REQUEST_STRUCTURE_SIZE = 9;
const REQUEST_FIXED = 8;
const BUFFER_AT = SMB2_HEADER_SIZE + REQUEST_FIXED; // 72
const EXTENSION_FIXED = 16; // TreeConnectContextOffset(4) + Count(2) + Reserved(10)

/**
 * Decodes a TREE_CONNECT request (msg starts at the SMB2 header). Pass `dialect311 = false` on
 * connections below 3.1.1, where the Flags field is Reserved and must be ignored.
 *
 * With SMB2_TREE_CONNECT_FLAG_EXTENSION_PRESENT the Buffer starts with the 2.2.9.1 extension and
 * PathOffset (still relative to the header, as Windows and ksmbd read it) locates its PathName,
 * which therefore cannot start before the end of the 16-byte extension header.
 */
export function decodeTreeConnectRequest(msg: Buffer, dialect311 = true): TreeConnectRequest {
  checkRequestBody(msg, REQUEST_STRUCTURE_SIZE, 'TREE_CONNECT');
  const b = SMB2_HEADER_SIZE;
  const flags = dialect311 ? msg.readUInt16LE(b + 2) : 0;
  const pathOffset = msg.readUInt16LE(b + 4);
  const pathLength = msg.readUInt16LE(b + 6);
  let contextOffset = 0;
  let contextCount = 0;
  let minPathAt = BUFFER_AT;
  if ((flags & TreeConnectFlags.EXTENSION_PRESENT) !== 0) {
    if (BUFFER_AT + EXTENSION_FIXED > msg.length) throw new MalformedError('TREE_CONNECT: extension truncated');
    contextOffset = msg.readUInt32LE(BUFFER_AT);
    contextCount = msg.readUInt16LE(BUFFER_AT + 4);
    minPathAt = BUFFER_AT + EXTENSION_FIXED;
  }
  const pathBytes = regionAt(msg, pathOffset, pathLength, minPathAt, 'TREE_CONNECT Path');
  return {
    StructureSize: REQUEST_STRUCTURE_SIZE,
    Flags: flags,
    PathOffset: pathOffset,
    PathLength: pathLength,
    Path: utf16At(pathBytes, 'TREE_CONNECT Path'),
    TreeConnectContextOffset: contextOffset,
    TreeConnectContextCount: contextCount,
  };
}

export interface TreeConnectResponseFields {
  ShareType: number;
  ShareFlags: number;
  Capabilities: number;
  MaximalAccess: number;
}

/** TREE_CONNECT response body (MS-SMB2 2.2.10), StructureSize 16. */
export function treeConnectResponse(f: TreeConnectResponseFields): BodyEncoder {
  return {
    byteLength: () => 16,
    encodeInto(buf: Buffer, at: number): void {
      buf.writeUInt16LE(16, at);
      buf[at + 2] = f.ShareType;
      buf[at + 3] = 0;
      buf.writeUInt32LE(f.ShareFlags >>> 0, at + 4);
      buf.writeUInt32LE(f.Capabilities >>> 0, at + 8);
      buf.writeUInt32LE(f.MaximalAccess >>> 0, at + 12);
    },
  };
}
