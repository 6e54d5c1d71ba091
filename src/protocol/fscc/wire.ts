// Shared byte-level helpers for the file-command codecs (src/protocol/*.ts of part 2 and fscc/).
// Every read of untrusted bytes goes through a bounds check that throws MalformedError, so a
// decoder can never raise RangeError from Buffer reads.

import { MalformedError } from '../../base/errors.js';

/** Throws MalformedError unless [off, off+len) lies inside buf. */
export function need(buf: Buffer, off: number, len: number, what: string): void {
  if (!Number.isInteger(off) || !Number.isInteger(len) || off < 0 || len < 0 || off + len > buf.length) {
    throw new MalformedError(`${what}: needs ${len} bytes at ${off}, have ${buf.length}`);
  }
}

/**
 * Validates an (Offset, Length) pair taken from an SMB2 request, relative to the header start.
 * A zero length is always accepted (the offset is then ignored, MS-SMB2 2.2.13 and others).
 * Otherwise the range must start at or after the fixed part of the body (`bodyFixed` bytes after
 * the 64-byte header) and end inside the message. Returns a view (never a copy).
 */
export function msgRange(msg: Buffer, offset: number, length: number, bodyFixed: number, what: string): Buffer {
  if (length === 0) return msg.subarray(0, 0);
  if (offset < 64 + bodyFixed || offset + length > msg.length) {
    throw new MalformedError(`${what}: offset ${offset} length ${length} outside message of ${msg.length} bytes`);
  }
  return msg.subarray(offset, offset + length);
}

/** Checks the body is present and its StructureSize is as the spec fixes it. */
export function checkBody(msg: Buffer, structureSize: number, minBody: number, what: string): void {
  if (msg.length < 64 + minBody) throw new MalformedError(`${what}: body of ${msg.length - 64} bytes is too short`);
  const got = msg.readUInt16LE(64);
  if (got !== structureSize) throw new MalformedError(`${what}: StructureSize ${got}, expected ${structureSize}`);
}

/** Decodes UTF-16LE; an odd byte count is malformed (MS-FSCC 2.1.5 names are 16-bit units). */
export function utf16(buf: Buffer, what: string): string {
  if (buf.length % 2 !== 0) throw new MalformedError(`${what}: odd UTF-16 byte length ${buf.length}`);
  return buf.toString('utf16le');
}

/** Byte length of a string in UTF-16LE. */
export function utf16Bytes(s: string): number {
  return s.length * 2;
}

/** Writes a 64-bit little-endian value given as bigint or number (number must be a safe integer). */
export function writeU64(buf: Buffer, v: bigint | number, at: number): void {
  buf.writeBigUInt64LE(BigInt.asUintN(64, typeof v === 'bigint' ? v : BigInt(v)), at);
}

/** Writes a signed 64-bit little-endian value (LARGE_INTEGER fields such as FILETIMEs). */
export function writeI64(buf: Buffer, v: bigint | number, at: number): void {
  buf.writeBigInt64LE(BigInt.asIntN(64, typeof v === 'bigint' ? v : BigInt(v)), at);
}

/** Rounds n up to a multiple of 4. */
export function align4(n: number): number {
  return (n + 3) & ~3;
}

/** Rounds n up to a multiple of 8. */
export function align8(n: number): number {
  return (n + 7) & ~7;
}

const GUID_RE = /^\{?([0-9a-fA-F]{8})-([0-9a-fA-F]{4})-([0-9a-fA-F]{4})-([0-9a-fA-F]{4})-([0-9a-fA-F]{12})\}?$/;

/** Formats a 16-byte GUID in its mixed-endian wire form (MS-DTYP 2.3.4.2) as {XXXXXXXX-...}. */
export function guidToString(b: Buffer): string {
  if (b.length !== 16) throw new MalformedError(`GUID must be 16 bytes, got ${b.length}`);
  const h = (x: number, w: number): string => x.toString(16).toUpperCase().padStart(w, '0');
  const d4 = b.subarray(8, 16).toString('hex').toUpperCase();
  return `{${h(b.readUInt32LE(0), 8)}-${h(b.readUInt16LE(4), 4)}-${h(b.readUInt16LE(6), 4)}-${d4.slice(0, 4)}-${d4.slice(4)}}`;
}

/** Parses "{XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX}" (braces optional) into the 16-byte wire form. */
export function guidFromString(s: string): Buffer {
  const m = GUID_RE.exec(s);
  if (!m) throw new MalformedError(`not a GUID: ${s}`);
  const b = Buffer.alloc(16);
  b.writeUInt32LE(parseInt(m[1]!, 16), 0);
  b.writeUInt16LE(parseInt(m[2]!, 16), 4);
  b.writeUInt16LE(parseInt(m[3]!, 16), 6);
  Buffer.from(m[4]! + m[5]!, 'hex').copy(b, 8);
  return b;
}

/**
 * The 52-byte run CreationTime .. FileAttributes that CLOSE (2.2.16) and CREATE (2.2.14) responses
 * share, written at `at`.
 */
export function writeAttributeBlock(
  a: {
    CreationTime: bigint;
    LastAccessTime: bigint;
    LastWriteTime: bigint;
    ChangeTime: bigint;
    AllocationSize: bigint;
    EndofFile: bigint;
    FileAttributes: number;
  },
  buf: Buffer,
  at: number,
): void {
  writeI64(buf, a.CreationTime, at);
  writeI64(buf, a.LastAccessTime, at + 8);
  writeI64(buf, a.LastWriteTime, at + 16);
  writeI64(buf, a.ChangeTime, at + 24);
  writeU64(buf, a.AllocationSize, at + 32);
  writeU64(buf, a.EndofFile, at + 40);
  buf.writeUInt32LE(a.FileAttributes >>> 0, at + 48);
}
