// SMB2 ECHO request (MS-SMB2 2.2.28) and response (2.2.29). The 4-byte body { StructureSize = 4,
// Reserved = 0 } is shared by LOGOFF, TREE_DISCONNECT and ECHO responses.

import { type BodyEncoder } from './encoder.js';
import { checkRequestBody } from './header.js';

/** Body of StructureSize 4 and a zero Reserved field. Stateless, so one instance serves all. */
export const fourByteBody: BodyEncoder = {
  byteLength: () => 4,
  encodeInto(buf: Buffer, at: number): void {
    buf.writeUInt16LE(4, at);
    buf.writeUInt16LE(0, at + 2);
  },
};

export interface EchoRequest {
  StructureSize: number;
}

/** Decodes an ECHO request: StructureSize 4, Reserved (MS-SMB2 2.2.28). */
export function decodeEchoRequest(msg: Buffer): EchoRequest {
  checkRequestBody(msg, 4, 'ECHO');
  return { StructureSize: 4 };
}

/** ECHO response body (MS-SMB2 2.2.29). */
export function echoResponse(): BodyEncoder {
  return fourByteBody;
}
