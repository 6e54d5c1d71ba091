// SMB2 LOGOFF request (MS-SMB2 2.2.7) and response (2.2.8).

import { type BodyEncoder } from './encoder.js';
import { checkRequestBody } from './header.js';
import { fourByteBody } from './echo.js';

export interface LogoffRequest {
  StructureSize: number;
}

/** Decodes a LOGOFF request: StructureSize 4, Reserved (MS-SMB2 2.2.7). */
export function decodeLogoffRequest(msg: Buffer): LogoffRequest {
  checkRequestBody(msg, 4, 'LOGOFF');
  return { StructureSize: 4 };
}

/** LOGOFF response body (MS-SMB2 2.2.8). */
export function logoffResponse(): BodyEncoder {
  return fourByteBody;
}
