// Extended attributes: FILE_FULL_EA_INFORMATION (MS-FSCC 2.4.15) and FILE_GET_EA_INFORMATION
// (2.4.15.1) lists, the EA name rules, and the sizes MS-FSA counts (2.1.5.12.10, 2.1.5.15.5).
// Used by QUERY_INFO/SET_INFO FileFullEaInformation and the CREATE ExtA context (MS-SMB2 2.2.13.2.2).

import { MalformedError } from '../../base/errors.js';
import { NtStatus } from '../ntstatus.js';
import { need } from './wire.js';

/** FILE_FULL_EA_INFORMATION Flags (MS-FSCC 2.4.15): the only flag a client may set. */
export const FILE_NEED_EA = 0x80;

/** MS-FSA 2.1.5.15.5: the packed EA list of a file may not exceed 64 KiB - 5 bytes. */
export const EA_LIST_BYTES_MAX = 65536 - 5;

export interface FullEa {
  Flags: number;
  /** 1..255 ASCII characters (EaNameLength excludes the terminating NUL). */
  EaName: string;
  /** Empty on SET means "remove this EA". */
  EaValue: Buffer;
}

/**
 * MS-FSCC 2.4.15: an EA name is 1..255 8-bit characters; Windows (FsRtlIsEaNameValid) admits the
 * characters legal in FAT names: no control characters and none of "*+,/:;<=>?[\]|. Returns false
 * for names the set and create operations refuse with STATUS_INVALID_EA_NAME.
 */
export function isValidEaName(name: string): boolean {
  if (name.length === 0 || name.length > 255) return false;
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c < 0x20 || c > 0xff || c === 0x7f) return false;
    if ('"*+,/:;<=>?[\\]|'.includes(name[i]!)) return false;
  }
  return true;
}

/** MS-FSA 2.1.5.15.5 / 2.1.5.12.10: bytes one EA takes in the packed list (Flags, lengths, name, NUL, value). */
export function packedEaBytes(ea: { EaName: string; EaValue: Buffer }): number {
  return 4 + ea.EaName.length + 1 + ea.EaValue.length;
}

/** ExtendedAttributesLength of a file: the packed size of all its EAs (0 without EAs). */
export function packedEaListBytes(eas: readonly { EaName: string; EaValue: Buffer }[]): number {
  let n = 0;
  for (const ea of eas) n += packedEaBytes(ea);
  return n;
}

/** EaSize as FileEaInformation and the directory classes report it (MS-FSA 2.1.5.12.10): +4 for the header when non-zero. */
export function eaSizeOf(packedBytes: number): number {
  return packedBytes === 0 ? 0 : packedBytes + 4;
}

/** One encoded FILE_FULL_EA_INFORMATION entry without padding. */
function entryBytes(ea: FullEa): number {
  return 8 + ea.EaName.length + 1 + ea.EaValue.length;
}

/**
 * Decodes a FILE_FULL_EA_INFORMATION chain (a SET_INFO buffer or a CREATE ExtA context). Throws
 * MalformedError (STATUS_EA_LIST_INCONSISTENT for the caller) when an entry runs past the buffer,
 * NextEntryOffset is not 4-aligned or does not move forward, the name has no terminating NUL, or the
 * chain has more than `max` entries. Names are not validated here (isValidEaName).
 */
export function decodeFullEaList(buf: Buffer, max = 4096): FullEa[] {
  const out: FullEa[] = [];
  let at = 0;
  for (;;) {
    if (out.length >= max) throw new MalformedError(`EA list of more than ${max} entries`);
    need(buf, at, 8, 'FILE_FULL_EA_INFORMATION');
    const next = buf.readUInt32LE(at);
    const Flags = buf.readUInt8(at + 4);
    const nameLen = buf.readUInt8(at + 5);
    const valueLen = buf.readUInt16LE(at + 6);
    need(buf, at + 8, nameLen + 1 + valueLen, 'FILE_FULL_EA_INFORMATION name and value');
    if (buf.readUInt8(at + 8 + nameLen) !== 0) throw new MalformedError('FILE_FULL_EA_INFORMATION: EaName not NUL-terminated');
    const EaName = buf.toString('latin1', at + 8, at + 8 + nameLen);
    const EaValue = buf.subarray(at + 9 + nameLen, at + 9 + nameLen + valueLen);
    out.push({ Flags, EaName, EaValue });
    if (next === 0) return out;
    if (next % 4 !== 0 || next < 8 + nameLen + 1 + valueLen) throw new MalformedError(`FILE_FULL_EA_INFORMATION: NextEntryOffset ${next}`);
    at += next;
  }
}

/**
 * Decodes a FILE_GET_EA_INFORMATION chain (the InputBuffer of a FileFullEaInformation query):
 * NextEntryOffset (4), EaNameLength (1), EaName, NUL. Same error rules as decodeFullEaList.
 */
export function decodeGetEaList(buf: Buffer, max = 4096): string[] {
  const out: string[] = [];
  let at = 0;
  for (;;) {
    if (out.length >= max) throw new MalformedError(`EA name list of more than ${max} entries`);
    need(buf, at, 5, 'FILE_GET_EA_INFORMATION');
    const next = buf.readUInt32LE(at);
    const nameLen = buf.readUInt8(at + 4);
    need(buf, at + 5, nameLen + 1, 'FILE_GET_EA_INFORMATION name');
    if (buf.readUInt8(at + 5 + nameLen) !== 0) throw new MalformedError('FILE_GET_EA_INFORMATION: EaName not NUL-terminated');
    out.push(buf.toString('latin1', at + 5, at + 5 + nameLen));
    if (next === 0) return out;
    if (next % 4 !== 0 || next < 5 + nameLen + 1) throw new MalformedError(`FILE_GET_EA_INFORMATION: NextEntryOffset ${next}`);
    at += next;
  }
}

/**
 * Encodes whole FILE_FULL_EA_INFORMATION entries while they fit in `maxBytes` (each 4-aligned,
 * NextEntryOffset 0 on the last, no trailing padding), at most `maxEntries`. Returns the bytes and
 * how many entries went in (MS-FSA 2.1.5.12.12: only complete entries are returned).
 */
export function encodeFullEaList(eas: readonly FullEa[], maxBytes: number, maxEntries = Number.MAX_SAFE_INTEGER): { data: Buffer; count: number } {
  const starts: number[] = [];
  let end = 0;
  for (const ea of eas) {
    if (starts.length >= maxEntries) break;
    const at = starts.length === 0 ? 0 : (end + 3) & ~3;
    if (at + entryBytes(ea) > maxBytes) break;
    starts.push(at);
    end = at + entryBytes(ea);
  }
  const b = Buffer.alloc(end);
  starts.forEach((at, i) => {
    const ea = eas[i]!;
    b.writeUInt32LE(i === starts.length - 1 ? 0 : starts[i + 1]! - at, at);
    b.writeUInt8(ea.Flags & 0xff, at + 4);
    b.writeUInt8(ea.EaName.length, at + 5);
    b.writeUInt16LE(ea.EaValue.length, at + 6);
    b.write(ea.EaName, at + 8, 'latin1');
    ea.EaValue.copy(b, at + 9 + ea.EaName.length);
  });
  return { data: b, count: starts.length };
}

/** Bytes one entry needs on its own (STATUS_BUFFER_TOO_SMALL when the buffer cannot hold the next one). */
export function fullEaEntryBytes(ea: FullEa): number {
  return entryBytes(ea);
}

/**
 * Decodes and checks an EA list a client sends (SET_INFO FileFullEaInformation, CREATE ExtA):
 * STATUS_EA_LIST_INCONSISTENT for a malformed chain, STATUS_INVALID_EA_NAME for a bad name or a flag
 * other than FILE_NEED_EA (MS-FSA 2.1.5.15.5), STATUS_EA_TOO_LARGE when the list alone packs to more
 * than EA_LIST_BYTES_MAX (the caller checks the merged result against what the file holds).
 */
export function checkEaList(buf: Buffer): { ok: true; eas: FullEa[] } | { ok: false; status: number } {
  let eas: FullEa[];
  try {
    eas = decodeFullEaList(buf);
  } catch (err) {
    if (err instanceof MalformedError) return { ok: false, status: NtStatus.EA_LIST_INCONSISTENT };
    throw err;
  }
  for (const ea of eas) {
    if (!isValidEaName(ea.EaName) || (ea.Flags & ~FILE_NEED_EA) !== 0) return { ok: false, status: NtStatus.INVALID_EA_NAME };
  }
  if (packedEaListBytes(eas.filter((ea) => ea.EaValue.length > 0)) > EA_LIST_BYTES_MAX) return { ok: false, status: NtStatus.EA_TOO_LARGE };
  return { ok: true, eas };
}
