// SMB2 CLOSE (MS-SMB2 2.2.15 request, 2.2.16 response).

import type { BodyEncoder } from './encoder.js';
import { decodeFileId, type FileId } from './create.js';
import { checkBody, writeAttributeBlock } from './fscc/wire.js';

export const CloseFlags = {
  SMB2_CLOSE_FLAG_POSTQUERY_ATTRIB: 0x0001,
} as const;

export interface CloseRequest {
  Flags: number;
  FileId: FileId;
}

export function decodeCloseRequest(msg: Buffer): CloseRequest {
  checkBody(msg, 24, 24, 'CLOSE');
  return { Flags: msg.readUInt16LE(64 + 2), FileId: decodeFileId(msg, 64 + 8) };
}

/** Attributes returned when POSTQUERY_ATTRIB was asked for (otherwise all zero, MS-SMB2 3.3.5.10). */
export interface CloseAttributes {
  CreationTime: bigint;
  LastAccessTime: bigint;
  LastWriteTime: bigint;
  ChangeTime: bigint;
  AllocationSize: bigint;
  EndofFile: bigint;
  FileAttributes: number;
}

/** CLOSE response; pass `attributes` only when the request had SMB2_CLOSE_FLAG_POSTQUERY_ATTRIB. */
export function closeResponse(attributes?: CloseAttributes): BodyEncoder {
  return {
    byteLength: () => 60,
    encodeInto(buf: Buffer, at: number): void {
      buf.fill(0, at, at + 60);
      buf.writeUInt16LE(60, at);
      if (!attributes) return;
      buf.writeUInt16LE(CloseFlags.SMB2_CLOSE_FLAG_POSTQUERY_ATTRIB, at + 2);
      writeAttributeBlock(attributes, buf, at + 8);
    },
  };
}
