// Directory entry encoders for QUERY_DIRECTORY (MS-FSCC 2.4: FileDirectoryInformation,
// FileFullDirectoryInformation, FileBothDirectoryInformation, FileNamesInformation,
// FileIdBothDirectoryInformation, FileIdFullDirectoryInformation, FileIdExtdDirectoryInformation,
// FileId64ExtdDirectoryInformation), appended into a bounded output buffer.

import { assert } from '../../base/assert.js';
import { FileInfoClass } from './file-info.js';
import { align8, utf16Bytes, writeI64, writeU64 } from './wire.js';

export interface DirEntry {
  FileName: string;
  CreationTime: bigint;
  LastAccessTime: bigint;
  LastWriteTime: bigint;
  ChangeTime: bigint;
  EndOfFile: bigint;
  AllocationSize: bigint;
  FileAttributes: number;
  /** EaSize; for reparse points MS-FSCC puts the reparse tag here instead. Default 0. */
  EaSize?: number;
  /** 8.3 name for the Both classes (at most 12 characters); default none. */
  ShortName?: string;
  /** 64-bit file id (IdBoth, IdFull, Id64Extd; low half of the 128-bit id of IdExtd). */
  FileId?: bigint;
  /** 128-bit file id for FileIdExtdDirectoryInformation (16 bytes); overrides FileId there. */
  FileId128?: Buffer;
  /** ReparsePointTag of the Extd classes; default 0. */
  ReparsePointTag?: number;
}

/** Offset of FileName in each supported class (the fixed part of one entry). */
const NAME_OFFSET: ReadonlyMap<number, number> = new Map([
  [FileInfoClass.FileDirectoryInformation, 64],
  [FileInfoClass.FileFullDirectoryInformation, 68],
  [FileInfoClass.FileBothDirectoryInformation, 94],
  [FileInfoClass.FileNamesInformation, 12],
  [FileInfoClass.FileIdBothDirectoryInformation, 104],
  [FileInfoClass.FileIdFullDirectoryInformation, 80],
  [FileInfoClass.FileIdExtdDirectoryInformation, 88],
  [FileInfoClass.FileId64ExtdDirectoryInformation, 80],
]);

export function isDirInfoClassSupported(infoClass: number): boolean {
  return NAME_OFFSET.has(infoClass);
}

/** Size in bytes of one entry (without the padding that aligns the next one). */
export function dirEntrySize(infoClass: number, entry: Pick<DirEntry, 'FileName'>): number {
  const fixed = NAME_OFFSET.get(infoClass);
  assert(fixed !== undefined, `directory info class ${infoClass} supported`);
  return fixed + utf16Bytes(entry.FileName);
}

function encodeEntry(infoClass: number, e: DirEntry, b: Buffer, at: number): void {
  const nameLen = utf16Bytes(e.FileName);
  if (infoClass === FileInfoClass.FileNamesInformation) {
    b.writeUInt32LE(nameLen, at + 8);
    b.write(e.FileName, at + 12, 'utf16le');
    return;
  }
  // Common prefix: NextEntryOffset (0), FileIndex (4, MUST be 0 on NTFS-like stores), times, sizes.
  writeI64(b, e.CreationTime, at + 8);
  writeI64(b, e.LastAccessTime, at + 16);
  writeI64(b, e.LastWriteTime, at + 24);
  writeI64(b, e.ChangeTime, at + 32);
  writeU64(b, e.EndOfFile, at + 40);
  writeU64(b, e.AllocationSize, at + 48);
  b.writeUInt32LE(e.FileAttributes >>> 0, at + 56);
  b.writeUInt32LE(nameLen, at + 60);
  const nameAt = at + NAME_OFFSET.get(infoClass)!;
  if (infoClass !== FileInfoClass.FileDirectoryInformation) b.writeUInt32LE((e.EaSize ?? 0) >>> 0, at + 64);
  switch (infoClass) {
    case FileInfoClass.FileBothDirectoryInformation:
    case FileInfoClass.FileIdBothDirectoryInformation: {
      const short = (e.ShortName ?? '').slice(0, 12);
      b.writeUInt8(utf16Bytes(short), at + 68);
      b.write(short, at + 70, 'utf16le');
      if (infoClass === FileInfoClass.FileIdBothDirectoryInformation) writeU64(b, e.FileId ?? 0n, at + 96);
      break;
    }
    case FileInfoClass.FileIdFullDirectoryInformation:
      writeU64(b, e.FileId ?? 0n, at + 72);
      break;
    case FileInfoClass.FileIdExtdDirectoryInformation:
      b.writeUInt32LE((e.ReparsePointTag ?? 0) >>> 0, at + 68);
      if (e.FileId128) e.FileId128.copy(b, at + 72, 0, 16);
      else writeU64(b, e.FileId ?? 0n, at + 72);
      break;
    case FileInfoClass.FileId64ExtdDirectoryInformation:
      b.writeUInt32LE((e.ReparsePointTag ?? 0) >>> 0, at + 68);
      writeU64(b, e.FileId ?? 0n, at + 72);
      break;
    default:
      break;
  }
  b.write(e.FileName, nameAt, 'utf16le');
}

/**
 * Appends directory entries into at most `maxBytes` of output (MS-FSA 2.1.5.6.3): each entry
 * starts on an 8-byte boundary, NextEntryOffset links to the next one and is 0 on the last; the
 * output ends at the last entry (no trailing padding). tryAdd returns false, writing nothing, when
 * the entry would not fit; the caller keeps it for the next QUERY_DIRECTORY. If the first entry
 * does not fit the caller answers STATUS_BUFFER_OVERFLOW (MS-SMB2 3.3.5.18).
 */
export class DirEntryWriter {
  private buf: Buffer;
  private end = 0;
  private lastAt = -1;
  private entries = 0;

  constructor(
    readonly infoClass: number,
    readonly maxBytes: number,
  ) {
    assert(isDirInfoClassSupported(infoClass), `directory info class ${infoClass} supported`);
    assert(Number.isInteger(maxBytes) && maxBytes >= 0, 'maxBytes is a non-negative integer');
    this.buf = Buffer.alloc(Math.min(maxBytes, 4096));
  }

  get count(): number {
    return this.entries;
  }

  get byteLength(): number {
    return this.end;
  }

  tryAdd(entry: DirEntry): boolean {
    const at = this.entries === 0 ? 0 : align8(this.end);
    const size = dirEntrySize(this.infoClass, entry);
    if (at + size > this.maxBytes) return false;
    this.reserve(at + size);
    encodeEntry(this.infoClass, entry, this.buf, at);
    if (this.lastAt >= 0) this.buf.writeUInt32LE(at - this.lastAt, this.lastAt);
    this.lastAt = at;
    this.end = at + size;
    this.entries++;
    return true;
  }

  /** The encoded chain (a view of the internal buffer; the writer must not be used afterwards). */
  finish(): Buffer {
    return this.buf.subarray(0, this.end);
  }

  private reserve(n: number): void {
    if (n <= this.buf.length) return;
    let size = Math.max(this.buf.length * 2, 4096);
    while (size < n) size *= 2;
    const next = Buffer.alloc(Math.min(size, this.maxBytes));
    this.buf.copy(next, 0, 0, this.end);
    this.buf = next;
  }
}
