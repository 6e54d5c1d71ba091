// SMB1 SMB_COM_NEGOTIATE detection, for the multi-protocol negotiate of MS-SMB2 3.3.5.3.1: a client
// that starts with an SMB1 NEGOTIATE listing "SMB 2.002" and/or "SMB 2.???" is answered with an SMB2
// NEGOTIATE response. Layout from MS-CIFS 2.2.3.1 (32-byte header) and 2.2.4.52.1 (request).

import { MalformedError } from '../base/errors.js';
import { ProtocolId } from './header.js';

export const SMB1_HEADER_SIZE = 32;
export const SMB_COM_NEGOTIATE = 0x72;

/** Dialect strings relevant to MS-SMB2 3.3.5.3.1. */
export const Smb1Dialect = {
  SMB2_002: 'SMB 2.002',
  SMB2_WILDCARD: 'SMB 2.???',
} as const;

/** True when frame starts with an SMB1 header whose Command is SMB_COM_NEGOTIATE. */
export function isSmb1Negotiate(frame: Buffer): boolean {
  return (
    frame.length >= SMB1_HEADER_SIZE &&
    frame.readUInt32LE(0) === ProtocolId.SMB1 &&
    frame[4] === SMB_COM_NEGOTIATE
  );
}

/**
 * The dialect strings of an SMB1 NEGOTIATE request, in order. MS-CIFS 2.2.4.52.1: WordCount MUST be
 * 0; Bytes is a sequence of { BufferFormat = 0x02, null-terminated OEM string } filling ByteCount.
 */
export function decodeSmb1NegotiateDialects(frame: Buffer): string[] {
  if (!isSmb1Negotiate(frame)) throw new MalformedError('SMB1 NEGOTIATE: not an SMB1 negotiate');
  if (frame.length < SMB1_HEADER_SIZE + 3) throw new MalformedError('SMB1 NEGOTIATE: truncated parameters');
  const wordCount = frame[SMB1_HEADER_SIZE]!;
  if (wordCount !== 0) throw new MalformedError(`SMB1 NEGOTIATE: WordCount ${wordCount} != 0`);
  const byteCount = frame.readUInt16LE(SMB1_HEADER_SIZE + 1);
  const start = SMB1_HEADER_SIZE + 3;
  const end = start + byteCount;
  if (end > frame.length) throw new MalformedError(`SMB1 NEGOTIATE: ByteCount ${byteCount} exceeds the frame`);
  const dialects: string[] = [];
  let at = start;
  while (at < end) {
    if (frame[at] !== 0x02) throw new MalformedError(`SMB1 NEGOTIATE: BufferFormat 0x${frame[at]!.toString(16)} != 0x02`);
    const nul = frame.indexOf(0, at + 1);
    if (nul < 0 || nul >= end) throw new MalformedError('SMB1 NEGOTIATE: dialect string not terminated');
    dialects.push(frame.toString('latin1', at + 1, nul));
    at = nul + 1;
  }
  return dialects;
}
