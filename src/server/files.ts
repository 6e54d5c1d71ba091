// Helpers shared by the file handlers: SMB path validation, access masks, attribute translation.

import { unixNsToFiletime } from '../base/clock.js';
import { limits } from '../base/limits.js';
import { FileAttr, type FileInfo } from '../ios/spi.js';
import { AccessMask } from '../protocol/create.js';
import { NtStatus } from '../protocol/ntstatus.js';
import { Dialect } from '../protocol/negotiate.js';
import type { Connection } from './connection.js';

/** MaxTransactSize as negotiated on this connection (MS-SMB2 3.3.5.4). */
export function maxTransact(conn: Connection): number {
  return conn.negotiated?.dialect === Dialect.SMB202 ? 65536 : limits.transactBytesMax;
}

/** Characters MS-FSCC 2.1.5.2 forbids in a file name component (':' is the stream separator). */
const INVALID_NAME_CHAR = /["*/<>?|\u0000-\u001f]/;

export type ParsedPath = { ok: true; path: string; components: string[]; stream?: string; dataStream?: true } | { ok: false; status: number };

/**
 * Turns an SMB2 CREATE name ("dir\\file.txt", share-relative) into a driver path ("dir/file.txt").
 * MS-SMB2 3.3.5.9: a name beginning with '\\' is invalid; MS-FSCC 2.1.5: forbidden characters give
 * OBJECT_NAME_INVALID; '.' and '..' components are refused (no traversal outside the share).
 * The default data stream suffix "::$DATA" is accepted and stripped; named streams are not yet served.
 */
export function parseSmbPath(name: string): ParsedPath {
  if (name.length > limits.pathUnitsMax) return { ok: false, status: NtStatus.OBJECT_NAME_INVALID };
  if (name.startsWith('\\')) return { ok: false, status: NtStatus.INVALID_PARAMETER };
  let n = name;
  // A trailing separator names the same object (clients send "dir\\" when opening directories).
  while (n.endsWith('\\')) n = n.slice(0, -1);
  // MS-FSCC 2.1.5.1: the last component may name a stream: "file:stream[:$DATA]" or "file::$DATA".
  let stream: string | undefined;
  let dataStream = false;
  const lastSep = n.lastIndexOf('\\');
  const colon = n.indexOf(':', lastSep + 1);
  if (colon >= 0) {
    const spec = n.slice(colon + 1).split(':');
    n = n.slice(0, colon);
    if (spec.length > 2) return { ok: false, status: NtStatus.OBJECT_NAME_INVALID };
    if (spec.length === 2 && spec[1]!.toUpperCase() !== '$DATA') return { ok: false, status: NtStatus.OBJECT_NAME_INVALID };
    if (spec[0] === '') {
      if (spec.length !== 2) return { ok: false, status: NtStatus.OBJECT_NAME_INVALID };
      dataStream = true;
    } else {
      if (spec[0]!.length > limits.nameUnitsMax || /[\\/\u0000]/.test(spec[0]!)) return { ok: false, status: NtStatus.OBJECT_NAME_INVALID };
      stream = spec[0];
    }
  }
  if (n === '') return stream === undefined ? { ok: true, path: '', components: [] } : { ok: false, status: NtStatus.OBJECT_NAME_INVALID };
  const components = n.split('\\');
  for (const c of components) {
    if (c === '') return { ok: false, status: NtStatus.OBJECT_NAME_INVALID };
    if (c === '.' || c === '..') return { ok: false, status: NtStatus.OBJECT_PATH_SYNTAX_BAD };
    if (c.length > limits.nameUnitsMax) return { ok: false, status: NtStatus.OBJECT_NAME_INVALID };
    if (c.includes(':')) return { ok: false, status: NtStatus.OBJECT_NAME_INVALID };
    if (INVALID_NAME_CHAR.test(c)) return { ok: false, status: NtStatus.OBJECT_NAME_INVALID };
  }
  if (stream !== undefined) return { ok: true, path: components.join('/'), components, stream };
  return dataStream ? { ok: true, path: components.join('/'), components, dataStream } : { ok: true, path: components.join('/'), components };
}

export function parentOf(path: string): string {
  const i = path.lastIndexOf('/');
  return i < 0 ? '' : path.slice(0, i);
}

/** MS-DTYP 2.4.3 / MS-SMB2 3.3.5.9: generic rights map to file rights. */
export function mapGenericAccess(mask: number): number {
  let m = mask >>> 0;
  if (m & AccessMask.GENERIC_READ) m |= AccessMask.FILE_GENERIC_READ;
  if (m & AccessMask.GENERIC_WRITE) m |= AccessMask.FILE_GENERIC_WRITE;
  if (m & AccessMask.GENERIC_EXECUTE) m |= AccessMask.FILE_GENERIC_EXECUTE;
  if (m & AccessMask.GENERIC_ALL) m |= AccessMask.FILE_ALL_ACCESS;
  m &= ~(AccessMask.GENERIC_READ | AccessMask.GENERIC_WRITE | AccessMask.GENERIC_EXECUTE | AccessMask.GENERIC_ALL);
  return m >>> 0;
}

export const WRITE_ACCESS_BITS =
  AccessMask.FILE_WRITE_DATA |
  AccessMask.FILE_APPEND_DATA |
  AccessMask.FILE_WRITE_EA |
  AccessMask.FILE_WRITE_ATTRIBUTES |
  AccessMask.DELETE |
  AccessMask.WRITE_DAC |
  AccessMask.WRITE_OWNER |
  AccessMask.FILE_DELETE_CHILD;

export function hasAny(mask: number, bits: number): boolean {
  return (mask & bits) !== 0;
}

export interface WireTimes {
  CreationTime: bigint;
  LastAccessTime: bigint;
  LastWriteTime: bigint;
  ChangeTime: bigint;
}

export function wireTimes(info: FileInfo): WireTimes {
  return {
    CreationTime: unixNsToFiletime(info.creationTimeNs),
    LastAccessTime: unixNsToFiletime(info.lastAccessTimeNs),
    LastWriteTime: unixNsToFiletime(info.lastWriteTimeNs),
    ChangeTime: unixNsToFiletime(info.changeTimeNs),
  };
}

/** FileAttributes as clients expect them: DIRECTORY for directories, NORMAL when nothing else is set. */
export function wireAttributes(info: FileInfo): number {
  let a = info.attributes & ~FileAttr.NORMAL;
  if (info.isDirectory) a |= FileAttr.DIRECTORY;
  else a &= ~FileAttr.DIRECTORY;
  return a === 0 ? FileAttr.NORMAL : a;
}
