// SMB2 SESSION_SETUP request (MS-SMB2 2.2.5) and response (2.2.6).

import { SMB2_HEADER_SIZE, type BodyEncoder } from './encoder.js';
import { checkRequestBody, regionAt } from './header.js';

/** MS-SMB2 2.2.5: Flags of the request. */
export const SessionSetupFlags = {
  BINDING: 0x01,
} as const;

/** MS-SMB2 2.2.6: SessionFlags of the response. */
export const SessionFlags = {
  IS_GUEST: 0x0001,
  IS_NULL: 0x0002,
  ENCRYPT_DATA: 0x0004,
} as const;

export interface SessionSetupRequest {
  StructureSize: number;
  Flags: number;
  SecurityMode: number;
  Capabilities: number;
  Channel: number;
  SecurityBufferOffset: number;
  SecurityBufferLength: number;
  PreviousSessionId: bigint;
  /** View of the GSS token inside msg. */
  SecurityBuffer: Buffer;
}

const REQUEST_STRUCTURE_SIZE = 25;
const REQUEST_FIXED = 24;

/** Decodes a SESSION_SETUP request (msg starts at the SMB2 header). MS-SMB2 2.2.5. */
export function decodeSessionSetupRequest(msg: Buffer): SessionSetupRequest {
  checkRequestBody(msg, REQUEST_STRUCTURE_SIZE, 'SESSION_SETUP');
  const b = SMB2_HEADER_SIZE;
  const offset = msg.readUInt16LE(b + 12);
  const length = msg.readUInt16LE(b + 14);
  return {
    StructureSize: REQUEST_STRUCTURE_SIZE,
    Flags: msg[b + 2]!,
    SecurityMode: msg[b + 3]!,
    Capabilities: msg.readUInt32LE(b + 4),
    Channel: msg.readUInt32LE(b + 8),
    SecurityBufferOffset: offset,
    SecurityBufferLength: length,
    PreviousSessionId: msg.readBigUInt64LE(b + 16),
    SecurityBuffer: regionAt(msg, offset, length, b + REQUEST_FIXED, 'SESSION_SETUP SecurityBuffer'),
  };
}

const RESPONSE_STRUCTURE_SIZE = 9;
const RESPONSE_FIXED = 8;

/** SESSION_SETUP response body (MS-SMB2 2.2.6). */
export function sessionSetupResponse(f: { SessionFlags: number; SecurityBuffer: Buffer }): BodyEncoder {
  const length = RESPONSE_FIXED + f.SecurityBuffer.length;
  return {
    byteLength: () => length,
    encodeInto(buf: Buffer, at: number): void {
      buf.writeUInt16LE(RESPONSE_STRUCTURE_SIZE, at);
      buf.writeUInt16LE(f.SessionFlags, at + 2);
      buf.writeUInt16LE(SMB2_HEADER_SIZE + RESPONSE_FIXED, at + 4);
      buf.writeUInt16LE(f.SecurityBuffer.length, at + 6);
      f.SecurityBuffer.copy(buf, at + RESPONSE_FIXED);
    },
  };
}
