// Response bodies are encoded size-then-write (STYLE.md): the pipeline asks each body for its
// byteLength(), allocates one buffer for header + body, then calls encodeInto once.

/**
 * An encodable SMB2 message body. `at` is where the body starts in `buf`; the 64-byte SMB2 header
 * sits at `at - 64`, so offset fields (relative to the header, MS-SMB2 2.2) are `64 + position in body`.
 * `payload`, when present, is sent right after the encoded bytes without being copied (READ data,
 * IOCTL output): byteLength() does not include it, but offset/length fields written by encodeInto do.
 */
export interface BodyEncoder {
  byteLength(): number;
  encodeInto(buf: Buffer, at: number): void;
  readonly payload?: Buffer;
}

/** Size in bytes of the SMB2 sync/async header (MS-SMB2 2.2.1). */
export const SMB2_HEADER_SIZE = 64;

/** Rounds n up to a multiple of 8 (compound alignment, MS-SMB2 3.3.4.1.3). */
export function align8(n: number): number {
  return (n + 7) & ~7;
}
