// SMB2 TREE_DISCONNECT request (MS-SMB2 2.2.11) and response (2.2.12).

import { type BodyEncoder } from './encoder.js';
import { checkRequestBody } from './header.js';
import { fourByteBody } from './echo.js';

export interface TreeDisconnectRequest {
  StructureSize: number;
}

/** Decodes a TREE_DISCONNECT request: StructureSize 4, Reserved (MS-SMB2 2.2.11). */
export function decodeTreeDisconnectRequest(msg: Buffer): TreeDisconnectRequest {
  checkRequestBody(msg, 4, 'TREE_DISCONNECT');
  return { StructureSize: 4 };
}

/** TREE_DISCONNECT response body (MS-SMB2 2.2.12). */
export function treeDisconnectResponse(): BodyEncoder {
  return fourByteBody;
}
