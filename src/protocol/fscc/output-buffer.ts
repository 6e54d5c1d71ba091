// The response shape shared by QUERY_DIRECTORY (MS-SMB2 2.2.34), CHANGE_NOTIFY (2.2.36) and
// QUERY_INFO (2.2.38): StructureSize 9, OutputBufferOffset, OutputBufferLength, Buffer.

import type { BodyEncoder } from '../encoder.js';

/** Offset of the output buffer relative to the header: 64 + 8-byte fixed body. */
export const OUTPUT_BUFFER_OFFSET = 0x48;

/**
 * Body with the output as `payload` (not copied). With an empty output the body is the 8 fixed
 * bytes; OutputBufferOffset is 0x48 either way, as Windows and Samba send it.
 */
export function outputBufferResponse(output: Buffer): BodyEncoder {
  return {
    payload: output,
    byteLength: () => 8,
    encodeInto(buf: Buffer, at: number): void {
      buf.writeUInt16LE(9, at);
      buf.writeUInt16LE(OUTPUT_BUFFER_OFFSET, at + 2);
      buf.writeUInt32LE(output.length, at + 4);
    },
  };
}
