// SMB2 ERROR response (MS-SMB2 2.2.2), sent with a failing Status in the header.

import { assert } from '../base/assert.js';
import { type BodyEncoder } from './encoder.js';

/** MS-SMB2 2.2.2.1: ErrorId of an SMB2 ERROR Context. */
export const ErrorId = {
  DEFAULT: 0x00000000,
  SHARE_REDIRECT: 0x72645253,
} as const;

/**
 * ERROR response body: StructureSize 9, ErrorContextCount, Reserved, ByteCount, ErrorData.
 * MS-SMB2 2.2.2: when ByteCount is 0 the ErrorData field is still one (zero) byte, so the body is
 * 9 bytes; otherwise it is 8 + ByteCount. ErrorData is copied (it is small: a symlink error or
 * the ErrorContext list). For STATUS_BUFFER_TOO_SMALL the caller passes the 4-byte required size.
 */
export function errorResponse(ErrorData?: Buffer, ErrorContextCount = 0): BodyEncoder {
  const data = ErrorData ?? Buffer.alloc(0);
  assert(ErrorContextCount >= 0 && ErrorContextCount <= 0xff, 'errorResponse: ErrorContextCount is one byte');
  const length = 8 + Math.max(1, data.length);
  return {
    byteLength: () => length,
    encodeInto(buf: Buffer, at: number): void {
      buf.writeUInt16LE(9, at);
      buf[at + 2] = ErrorContextCount;
      buf[at + 3] = 0;
      buf.writeUInt32LE(data.length, at + 4);
      if (data.length === 0) buf[at + 8] = 0;
      else data.copy(buf, at + 8);
    },
  };
}
