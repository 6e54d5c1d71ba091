// SMB2 FLUSH (MS-SMB2 2.2.17 request, 2.2.18 response).

import type { BodyEncoder } from './encoder.js';
import { decodeFileId, type FileId } from './create.js';
import { checkBody } from './fscc/wire.js';

export interface FlushRequest {
  FileId: FileId;
}

export function decodeFlushRequest(msg: Buffer): FlushRequest {
  checkBody(msg, 24, 24, 'FLUSH');
  return { FileId: decodeFileId(msg, 64 + 8) };
}

export function flushResponse(): BodyEncoder {
  return {
    byteLength: () => 4,
    encodeInto(buf: Buffer, at: number): void {
      buf.writeUInt32LE(0, at);
      buf.writeUInt16LE(4, at);
    },
  };
}
