// SMB2 QUERY_DIRECTORY (MS-SMB2 2.2.33 request, 2.2.34 response). Entry encoders: fscc/dir-info.ts.

import { MalformedError } from '../base/errors.js';
import { limits } from '../base/limits.js';
import type { BodyEncoder } from './encoder.js';
import { decodeFileId, type FileId } from './create.js';
import { outputBufferResponse } from './fscc/output-buffer.js';
import { checkBody, msgRange, utf16 } from './fscc/wire.js';

export const QueryDirectoryFlags = {
  SMB2_RESTART_SCANS: 0x01,
  SMB2_RETURN_SINGLE_ENTRY: 0x02,
  SMB2_INDEX_SPECIFIED: 0x04,
  SMB2_REOPEN: 0x10,
} as const;

export interface QueryDirectoryRequest {
  FileInformationClass: number;
  Flags: number;
  FileIndex: number;
  FileId: FileId;
  /** Search pattern (may hold wildcards, see fscc/wildcard.ts); '' when FileNameLength is 0. */
  FileName: string;
  OutputBufferLength: number;
}

const QUERY_DIRECTORY_FIXED = 32;

export function decodeQueryDirectoryRequest(msg: Buffer): QueryDirectoryRequest {
  checkBody(msg, 33, QUERY_DIRECTORY_FIXED, 'QUERY_DIRECTORY');
  const b = 64;
  const nameOff = msg.readUInt16LE(b + 24);
  const nameLen = msg.readUInt16LE(b + 26);
  if (nameLen > limits.pathUnitsMax * 2) throw new MalformedError(`QUERY_DIRECTORY FileNameLength ${nameLen}`);
  const name = msgRange(msg, nameOff, nameLen, QUERY_DIRECTORY_FIXED, 'QUERY_DIRECTORY FileName');
  return {
    FileInformationClass: msg.readUInt8(b + 2),
    Flags: msg.readUInt8(b + 3),
    FileIndex: msg.readUInt32LE(b + 4),
    FileId: decodeFileId(msg, b + 8),
    FileName: utf16(name, 'QUERY_DIRECTORY FileName'),
    OutputBufferLength: msg.readUInt32LE(b + 28),
  };
}

/** QUERY_DIRECTORY response; `output` is the entry chain (DirEntryWriter.finish()). */
export function queryDirectoryResponse(output: Buffer): BodyEncoder {
  return outputBufferResponse(output);
}
