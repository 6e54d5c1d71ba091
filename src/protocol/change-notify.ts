// SMB2 CHANGE_NOTIFY (MS-SMB2 2.2.35 request, 2.2.36 response) and FILE_NOTIFY_INFORMATION
// (MS-FSCC 2.7.1).

import type { BodyEncoder } from './encoder.js';
import { decodeFileId, type FileId } from './create.js';
import { outputBufferResponse } from './fscc/output-buffer.js';
import { align4, checkBody, utf16Bytes } from './fscc/wire.js';

export const ChangeNotifyFlags = {
  SMB2_WATCH_TREE: 0x0001,
} as const;

/** CompletionFilter bits (MS-SMB2 2.2.35). */
export const CompletionFilter = {
  FILE_NOTIFY_CHANGE_FILE_NAME: 0x0000_0001,
  FILE_NOTIFY_CHANGE_DIR_NAME: 0x0000_0002,
  FILE_NOTIFY_CHANGE_ATTRIBUTES: 0x0000_0004,
  FILE_NOTIFY_CHANGE_SIZE: 0x0000_0008,
  FILE_NOTIFY_CHANGE_LAST_WRITE: 0x0000_0010,
  FILE_NOTIFY_CHANGE_LAST_ACCESS: 0x0000_0020,
  FILE_NOTIFY_CHANGE_CREATION: 0x0000_0040,
  FILE_NOTIFY_CHANGE_EA: 0x0000_0080,
  FILE_NOTIFY_CHANGE_SECURITY: 0x0000_0100,
  FILE_NOTIFY_CHANGE_STREAM_NAME: 0x0000_0200,
  FILE_NOTIFY_CHANGE_STREAM_SIZE: 0x0000_0400,
  FILE_NOTIFY_CHANGE_STREAM_WRITE: 0x0000_0800,
} as const;

/** FILE_NOTIFY_INFORMATION Action (MS-FSCC 2.7.1). */
export const FileAction = {
  FILE_ACTION_ADDED: 0x0000_0001,
  FILE_ACTION_REMOVED: 0x0000_0002,
  FILE_ACTION_MODIFIED: 0x0000_0003,
  FILE_ACTION_RENAMED_OLD_NAME: 0x0000_0004,
  FILE_ACTION_RENAMED_NEW_NAME: 0x0000_0005,
  FILE_ACTION_ADDED_STREAM: 0x0000_0006,
  FILE_ACTION_REMOVED_STREAM: 0x0000_0007,
  FILE_ACTION_MODIFIED_STREAM: 0x0000_0008,
  FILE_ACTION_REMOVED_BY_DELETE: 0x0000_0009,
  FILE_ACTION_ID_NOT_TUNNELLED: 0x0000_000a,
  FILE_ACTION_TUNNELLED_ID_COLLISION: 0x0000_000b,
} as const;

export interface ChangeNotifyRequest {
  Flags: number;
  OutputBufferLength: number;
  FileId: FileId;
  CompletionFilter: number;
}

export function decodeChangeNotifyRequest(msg: Buffer): ChangeNotifyRequest {
  checkBody(msg, 32, 32, 'CHANGE_NOTIFY');
  const b = 64;
  return {
    Flags: msg.readUInt16LE(b + 2),
    OutputBufferLength: msg.readUInt32LE(b + 4),
    FileId: decodeFileId(msg, b + 8),
    CompletionFilter: msg.readUInt32LE(b + 24),
  };
}

export function changeNotifyResponse(output: Buffer): BodyEncoder {
  return outputBufferResponse(output);
}

export interface FileNotifyChange {
  Action: number;
  /** Path relative to the watched directory, backslash separated. */
  FileName: string;
}

/**
 * Bytes one entry takes in a FILE_NOTIFY_INFORMATION chain when followed by another (4-aligned);
 * summing these bounds the chain's size from above.
 */
export function fileNotifyInformationSize(change: FileNotifyChange): number {
  return align4(12 + utf16Bytes(change.FileName));
}

/**
 * Encodes a FILE_NOTIFY_INFORMATION chain (MS-FSCC 2.7.1): 12-byte header + UTF-16 name per entry,
 * each entry starting on a 4-byte boundary, NextEntryOffset 0 on the last. Returns undefined when
 * the chain does not fit in maxBytes: the caller then answers STATUS_NOTIFY_ENUM_DIR
 * (MS-SMB2 3.3.4.4 / MS-FSA 2.1.5.11).
 */
export function encodeFileNotifyInformation(changes: readonly FileNotifyChange[], maxBytes: number): Buffer | undefined {
  let total = 0;
  changes.forEach((c, i) => {
    const size = 12 + utf16Bytes(c.FileName);
    total += i === changes.length - 1 ? size : align4(size);
  });
  if (total > maxBytes) return undefined;
  const out = Buffer.alloc(total);
  let pos = 0;
  changes.forEach((c, i) => {
    const nameLen = utf16Bytes(c.FileName);
    const size = 12 + nameLen;
    const last = i === changes.length - 1;
    out.writeUInt32LE(last ? 0 : align4(size), pos);
    out.writeUInt32LE(c.Action >>> 0, pos + 4);
    out.writeUInt32LE(nameLen, pos + 8);
    out.write(c.FileName, pos + 12, 'utf16le');
    pos += last ? size : align4(size);
  });
  return out;
}
