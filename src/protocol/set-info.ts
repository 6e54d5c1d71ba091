// SMB2 SET_INFO (MS-SMB2 2.2.39 request, 2.2.40 response). Payload decoders: fscc/file-info.ts,
// security-descriptor.ts.

import type { BodyEncoder } from './encoder.js';
import { decodeFileId, type FileId } from './create.js';
import { checkBody, msgRange } from './fscc/wire.js';

export interface SetInfoRequest {
  InfoType: number;
  FileInfoClass: number;
  /** View of the information to set. */
  Buffer: Buffer;
  AdditionalInformation: number;
  FileId: FileId;
}

const SET_INFO_FIXED = 32;

export function decodeSetInfoRequest(msg: Buffer): SetInfoRequest {
  checkBody(msg, 33, SET_INFO_FIXED, 'SET_INFO');
  const b = 64;
  const len = msg.readUInt32LE(b + 4);
  const off = msg.readUInt16LE(b + 8);
  return {
    InfoType: msg.readUInt8(b + 2),
    FileInfoClass: msg.readUInt8(b + 3),
    Buffer: msgRange(msg, off, len, SET_INFO_FIXED, 'SET_INFO Buffer'),
    AdditionalInformation: msg.readUInt32LE(b + 12),
    FileId: decodeFileId(msg, b + 16),
  };
}

export function setInfoResponse(): BodyEncoder {
  return {
    byteLength: () => 2,
    encodeInto(buf: Buffer, at: number): void {
      buf.writeUInt16LE(2, at);
    },
  };
}
