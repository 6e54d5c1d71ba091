// SMB2 QUERY_INFO (MS-SMB2 2.2.37 request, 2.2.38 response).

import type { BodyEncoder } from './encoder.js';
import { decodeFileId, type FileId } from './create.js';
import { outputBufferResponse } from './fscc/output-buffer.js';
import { checkBody, msgRange } from './fscc/wire.js';

/** InfoType (MS-SMB2 2.2.37). */
export const InfoType = {
  SMB2_0_INFO_FILE: 0x01,
  SMB2_0_INFO_FILESYSTEM: 0x02,
  SMB2_0_INFO_SECURITY: 0x03,
  SMB2_0_INFO_QUOTA: 0x04,
} as const;

/** AdditionalInformation bits for SMB2_0_INFO_SECURITY (MS-SMB2 2.2.37, MS-DTYP 2.4.7). */
export const SecurityInformation = {
  OWNER_SECURITY_INFORMATION: 0x0000_0001,
  GROUP_SECURITY_INFORMATION: 0x0000_0002,
  DACL_SECURITY_INFORMATION: 0x0000_0004,
  SACL_SECURITY_INFORMATION: 0x0000_0008,
  LABEL_SECURITY_INFORMATION: 0x0000_0010,
  ATTRIBUTE_SECURITY_INFORMATION: 0x0000_0020,
  SCOPE_SECURITY_INFORMATION: 0x0000_0040,
  BACKUP_SECURITY_INFORMATION: 0x0001_0000,
} as const;

/** QUERY_INFO Flags for FileFullEaInformation (MS-SMB2 2.2.37). */
export const QueryInfoFlags = {
  SL_RESTART_SCAN: 0x01,
  SL_RETURN_SINGLE_ENTRY: 0x02,
  SL_INDEX_SPECIFIED: 0x04,
} as const;

export interface QueryInfoRequest {
  InfoType: number;
  FileInfoClass: number;
  OutputBufferLength: number;
  /** View: an EA name list or quota query (FILE_GET_QUOTA_INFORMATION / SMB2_QUERY_QUOTA_INFO). */
  InputBuffer: Buffer;
  AdditionalInformation: number;
  Flags: number;
  FileId: FileId;
}

const QUERY_INFO_FIXED = 40;

export function decodeQueryInfoRequest(msg: Buffer): QueryInfoRequest {
  checkBody(msg, 41, QUERY_INFO_FIXED, 'QUERY_INFO');
  const b = 64;
  const inOff = msg.readUInt16LE(b + 8);
  const inLen = msg.readUInt32LE(b + 12);
  return {
    InfoType: msg.readUInt8(b + 2),
    FileInfoClass: msg.readUInt8(b + 3),
    OutputBufferLength: msg.readUInt32LE(b + 4),
    InputBuffer: msgRange(msg, inOff, inLen, QUERY_INFO_FIXED, 'QUERY_INFO InputBuffer'),
    AdditionalInformation: msg.readUInt32LE(b + 16),
    Flags: msg.readUInt32LE(b + 20),
    FileId: decodeFileId(msg, b + 24),
  };
}

/** QUERY_INFO response; `output` goes out as payload (also for STATUS_BUFFER_OVERFLOW partial data). */
export function queryInfoResponse(output: Buffer): BodyEncoder {
  return outputBufferResponse(output);
}
