// FSCTL_VALIDATE_NEGOTIATE_INFO input (MS-SMB2 2.2.31.4) and output (2.2.32.6).

import { MalformedError } from '../base/errors.js';
import { assert } from '../base/assert.js';

export interface ValidateNegotiateInfoRequest {
  Capabilities: number;
  /** View of the 16-byte client Guid. */
  Guid: Buffer;
  SecurityMode: number;
  DialectCount: number;
  Dialects: number[];
}

const REQUEST_FIXED = 24;

/** Decodes the IOCTL input of FSCTL_VALIDATE_NEGOTIATE_INFO (the IoctlRequest.Input view). */
export function decodeValidateNegotiateInfoRequest(input: Buffer): ValidateNegotiateInfoRequest {
  if (input.length < REQUEST_FIXED) throw new MalformedError(`VALIDATE_NEGOTIATE_INFO: ${input.length} bytes < 24`);
  const count = input.readUInt16LE(22);
  // MS-SMB2 3.3.5.15.12: an InputCount smaller than the dialects it declares fails the request.
  if (REQUEST_FIXED + 2 * count > input.length) {
    throw new MalformedError(`VALIDATE_NEGOTIATE_INFO: ${count} dialects exceed ${input.length} bytes`);
  }
  const dialects: number[] = new Array(count);
  for (let i = 0; i < count; i++) dialects[i] = input.readUInt16LE(REQUEST_FIXED + 2 * i);
  return {
    Capabilities: input.readUInt32LE(0),
    Guid: input.subarray(4, 20),
    SecurityMode: input.readUInt16LE(20),
    DialectCount: count,
    Dialects: dialects,
  };
}

export interface ValidateNegotiateInfoResponseFields {
  Capabilities: number;
  /** ServerGuid, 16 bytes. */
  Guid: Buffer;
  SecurityMode: number;
  Dialect: number;
}

/** Encodes the 24-byte VALIDATE_NEGOTIATE_INFO response (MS-SMB2 2.2.32.6). */
export function encodeValidateNegotiateInfoResponse(f: ValidateNegotiateInfoResponseFields): Buffer {
  assert(f.Guid.length === 16, 'VALIDATE_NEGOTIATE_INFO: Guid is 16 bytes');
  const out = Buffer.alloc(24);
  out.writeUInt32LE(f.Capabilities >>> 0, 0);
  f.Guid.copy(out, 4);
  out.writeUInt16LE(f.SecurityMode, 20);
  out.writeUInt16LE(f.Dialect, 22);
  return out;
}
