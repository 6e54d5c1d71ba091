// MS-FSCC 2.4 file information classes: QUERY encoders, SET decoders, and the output-size rules of
// MS-FSA 2.1.5.12 (QUERY) / 2.1.5.15 (SET).
//
// Conventions: FILETIMEs are bigint (signed 64-bit, 100 ns since 1601); sizes, offsets and file ids
// are bigint; 32-bit fields are numbers; names are JS strings (encoded as UTF-16LE).

import { MalformedError } from '../../base/errors.js';
import { align8, need, utf16, utf16Bytes, writeI64, writeU64 } from './wire.js';

/** File information classes (MS-FSCC 2.4). */
export const FileInfoClass = {
  FileDirectoryInformation: 1,
  FileFullDirectoryInformation: 2,
  FileBothDirectoryInformation: 3,
  FileBasicInformation: 4,
  FileStandardInformation: 5,
  FileInternalInformation: 6,
  FileEaInformation: 7,
  FileAccessInformation: 8,
  FileNameInformation: 9,
  FileRenameInformation: 10,
  FileLinkInformation: 11,
  FileNamesInformation: 12,
  FileDispositionInformation: 13,
  FilePositionInformation: 14,
  FileFullEaInformation: 15,
  FileModeInformation: 16,
  FileAlignmentInformation: 17,
  FileAllInformation: 18,
  FileAllocationInformation: 19,
  FileEndOfFileInformation: 20,
  FileAlternateNameInformation: 21,
  FileStreamInformation: 22,
  FilePipeInformation: 23,
  FilePipeLocalInformation: 24,
  FilePipeRemoteInformation: 25,
  FileMailslotQueryInformation: 26,
  FileMailslotSetInformation: 27,
  FileCompressionInformation: 28,
  FileObjectIdInformation: 29,
  FileMoveClusterInformation: 31,
  FileQuotaInformation: 32,
  FileReparsePointInformation: 33,
  FileNetworkOpenInformation: 34,
  FileAttributeTagInformation: 35,
  FileTrackingInformation: 36,
  FileIdBothDirectoryInformation: 37,
  FileIdFullDirectoryInformation: 38,
  FileValidDataLengthInformation: 39,
  FileShortNameInformation: 40,
  FileSfioReserveInformation: 44,
  FileSfioVolumeInformation: 45,
  FileHardLinkInformation: 46,
  FileNormalizedNameInformation: 48,
  FileIdGlobalTxDirectoryInformation: 50,
  FileStandardLinkInformation: 54,
  FileIdInformation: 59,
  FileIdExtdDirectoryInformation: 60,
  FileDispositionInformationEx: 64,
  FileRenameInformationEx: 65,
  FileCaseSensitiveInformation: 71,
  FileLinkInformationEx: 72,
  FileStatInformation: 68,
  FileStatLxInformation: 70,
  FileId64ExtdDirectoryInformation: 78,
  FileId64ExtdBothDirectoryInformation: 79,
  FileIdAllExtdDirectoryInformation: 80,
  FileIdAllExtdBothDirectoryInformation: 81,
} as const;

// ---------------------------------------------------------------------------------------------
// Inputs

export interface FileTimes {
  CreationTime: bigint;
  LastAccessTime: bigint;
  LastWriteTime: bigint;
  ChangeTime: bigint;
}

export interface FileBasicInformation extends FileTimes {
  FileAttributes: number;
}

export interface FileStandardInformation {
  AllocationSize: bigint;
  EndOfFile: bigint;
  NumberOfLinks: number;
  DeletePending: boolean;
  Directory: boolean;
}

export interface FileNetworkOpenInformation extends FileTimes {
  AllocationSize: bigint;
  EndOfFile: bigint;
  FileAttributes: number;
}

export interface FileAllInformation {
  BasicInformation: FileBasicInformation;
  StandardInformation: FileStandardInformation;
  /** FILE_INTERNAL_INFORMATION.IndexNumber. */
  IndexNumber: bigint;
  /** FILE_EA_INFORMATION.EaSize. */
  EaSize: number;
  /** FILE_ACCESS_INFORMATION.AccessFlags: the open's granted access. */
  AccessFlags: number;
  /** FILE_POSITION_INFORMATION.CurrentByteOffset. */
  CurrentByteOffset: bigint;
  /** FILE_MODE_INFORMATION.Mode. */
  Mode: number;
  /** FILE_ALIGNMENT_INFORMATION.AlignmentRequirement. */
  AlignmentRequirement: number;
  /** FILE_NAME_INFORMATION.FileName (for SMB2: path from the share root, leading backslash). */
  FileName: string;
}

export interface FileStreamEntry {
  /** Full stream name, e.g. '::$DATA' or ':name:$DATA'. */
  StreamName: string;
  StreamSize: bigint;
  StreamAllocationSize: bigint;
}

export interface FileCompressionInformation {
  CompressedFileSize: bigint;
  CompressionFormat: number;
  CompressionUnitShift: number;
  ChunkShift: number;
  ClusterShift: number;
}

// ---------------------------------------------------------------------------------------------
// QUERY encoders (each returns the complete structure; truncate with fitQueryOutput)

function writeTimes(b: Buffer, t: FileTimes, at: number): void {
  writeI64(b, t.CreationTime, at);
  writeI64(b, t.LastAccessTime, at + 8);
  writeI64(b, t.LastWriteTime, at + 16);
  writeI64(b, t.ChangeTime, at + 24);
}

function basicInto(b: Buffer, v: FileBasicInformation, at: number): void {
  writeTimes(b, v, at);
  b.writeUInt32LE(v.FileAttributes >>> 0, at + 32);
}

function standardInto(b: Buffer, v: FileStandardInformation, at: number): void {
  writeU64(b, v.AllocationSize, at);
  writeU64(b, v.EndOfFile, at + 8);
  b.writeUInt32LE(v.NumberOfLinks >>> 0, at + 16);
  b.writeUInt8(v.DeletePending ? 1 : 0, at + 20);
  b.writeUInt8(v.Directory ? 1 : 0, at + 21);
}

function u32(v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(v >>> 0, 0);
  return b;
}

function u64(v: bigint): Buffer {
  const b = Buffer.alloc(8);
  writeU64(b, v, 0);
  return b;
}

function nameInfo(name: string): Buffer {
  const n = utf16Bytes(name);
  const b = Buffer.alloc(4 + n);
  b.writeUInt32LE(n, 0);
  b.write(name, 4, 'utf16le');
  return b;
}

/** FileBasicInformation (MS-FSCC 2.4.7): 40 bytes. */
export function encodeFileBasicInformation(v: FileBasicInformation): Buffer {
  const b = Buffer.alloc(40);
  basicInto(b, v, 0);
  return b;
}

/** FileStandardInformation (MS-FSCC 2.4.47): 24 bytes. */
export function encodeFileStandardInformation(v: FileStandardInformation): Buffer {
  const b = Buffer.alloc(24);
  standardInto(b, v, 0);
  return b;
}

/** FileInternalInformation (MS-FSCC 2.4.26): IndexNumber. */
export function encodeFileInternalInformation(v: { IndexNumber: bigint }): Buffer {
  return u64(v.IndexNumber);
}

/** FileEaInformation (MS-FSCC 2.4.13): EaSize. */
export function encodeFileEaInformation(v: { EaSize: number }): Buffer {
  return u32(v.EaSize);
}

/** FileAccessInformation (MS-FSCC 2.4.1): AccessFlags. */
export function encodeFileAccessInformation(v: { AccessFlags: number }): Buffer {
  return u32(v.AccessFlags);
}

/** FileNameInformation (MS-FSCC 2.4.28): FileNameLength + FileName. */
export function encodeFileNameInformation(v: { FileName: string }): Buffer {
  return nameInfo(v.FileName);
}

/** FileAlternateNameInformation (MS-FSCC 2.4.5): same layout as FileNameInformation (8.3 name). */
export function encodeFileAlternateNameInformation(v: { FileName: string }): Buffer {
  return nameInfo(v.FileName);
}

/** FileNormalizedNameInformation (MS-FSCC 2.4.30): same layout as FileNameInformation. */
export function encodeFileNormalizedNameInformation(v: { FileName: string }): Buffer {
  return nameInfo(v.FileName);
}

/** FilePositionInformation (MS-FSCC 2.4.40): CurrentByteOffset. */
export function encodeFilePositionInformation(v: { CurrentByteOffset: bigint }): Buffer {
  return u64(v.CurrentByteOffset);
}

/** FileModeInformation (MS-FSCC 2.4.31): Mode. */
export function encodeFileModeInformation(v: { Mode: number }): Buffer {
  return u32(v.Mode);
}

/** FileAlignmentInformation (MS-FSCC 2.4.3): AlignmentRequirement (0 = byte aligned). */
export function encodeFileAlignmentInformation(v: { AlignmentRequirement: number }): Buffer {
  return u32(v.AlignmentRequirement);
}

/** FileAllInformation (MS-FSCC 2.4.2): 100 fixed bytes + FileName. */
export function encodeFileAllInformation(v: FileAllInformation): Buffer {
  const n = utf16Bytes(v.FileName);
  const b = Buffer.alloc(100 + n);
  basicInto(b, v.BasicInformation, 0);
  standardInto(b, v.StandardInformation, 40);
  writeU64(b, v.IndexNumber, 64);
  b.writeUInt32LE(v.EaSize >>> 0, 72);
  b.writeUInt32LE(v.AccessFlags >>> 0, 76);
  writeU64(b, v.CurrentByteOffset, 80);
  b.writeUInt32LE(v.Mode >>> 0, 88);
  b.writeUInt32LE(v.AlignmentRequirement >>> 0, 92);
  b.writeUInt32LE(n, 96);
  b.write(v.FileName, 100, 'utf16le');
  return b;
}

/**
 * FileStreamInformation (MS-FSCC 2.4.49): a chain of 24-byte headers + names, each entry 8-byte
 * aligned. Adds whole entries while they fit in maxBytes (MS-FSA 2.1.5.12.29); `overflow` is true
 * when some did not (STATUS_BUFFER_OVERFLOW). An empty list encodes as zero bytes.
 */
export function encodeFileStreamInformation(
  streams: readonly FileStreamEntry[],
  maxBytes: number,
): { data: Buffer; overflow: boolean } {
  const starts: number[] = [];
  let end = 0;
  let overflow = false;
  for (const s of streams) {
    const at = starts.length === 0 ? 0 : align8(end);
    const size = 24 + utf16Bytes(s.StreamName);
    if (at + size > maxBytes) {
      overflow = true;
      break;
    }
    starts.push(at);
    end = at + size;
  }
  const b = Buffer.alloc(end);
  starts.forEach((at, i) => {
    const s = streams[i]!;
    const n = utf16Bytes(s.StreamName);
    b.writeUInt32LE(i === starts.length - 1 ? 0 : starts[i + 1]! - at, at);
    b.writeUInt32LE(n, at + 4);
    writeU64(b, s.StreamSize, at + 8);
    writeU64(b, s.StreamAllocationSize, at + 16);
    b.write(s.StreamName, at + 24, 'utf16le');
  });
  return { data: b, overflow };
}

/** FileCompressionInformation (MS-FSCC 2.4.9): 16 bytes. */
export function encodeFileCompressionInformation(v: FileCompressionInformation): Buffer {
  const b = Buffer.alloc(16);
  writeU64(b, v.CompressedFileSize, 0);
  b.writeUInt16LE(v.CompressionFormat & 0xffff, 8);
  b.writeUInt8(v.CompressionUnitShift & 0xff, 10);
  b.writeUInt8(v.ChunkShift & 0xff, 11);
  b.writeUInt8(v.ClusterShift & 0xff, 12);
  return b;
}

/** FileNetworkOpenInformation (MS-FSCC 2.4.34): 56 bytes. */
export function encodeFileNetworkOpenInformation(v: FileNetworkOpenInformation): Buffer {
  const b = Buffer.alloc(56);
  writeTimes(b, v, 0);
  writeU64(b, v.AllocationSize, 32);
  writeU64(b, v.EndOfFile, 40);
  b.writeUInt32LE(v.FileAttributes >>> 0, 48);
  return b;
}

/** FileAttributeTagInformation (MS-FSCC 2.4.6): 8 bytes. */
export function encodeFileAttributeTagInformation(v: { FileAttributes: number; ReparseTag: number }): Buffer {
  const b = Buffer.alloc(8);
  b.writeUInt32LE(v.FileAttributes >>> 0, 0);
  b.writeUInt32LE(v.ReparseTag >>> 0, 4);
  return b;
}

/** FileIdInformation (MS-FSCC 2.4.23): VolumeSerialNumber (8) + FileId (16 bytes, 128-bit id). */
export function encodeFileIdInformation(v: { VolumeSerialNumber: bigint; FileId: Buffer | bigint }): Buffer {
  const b = Buffer.alloc(24);
  writeU64(b, v.VolumeSerialNumber, 0);
  if (typeof v.FileId === 'bigint') writeU64(b, v.FileId, 8);
  else v.FileId.copy(b, 8, 0, 16);
  return b;
}

// ---------------------------------------------------------------------------------------------
// Output size rules (MS-FSA 2.1.5.12 / MS-SMB2 3.3.5.20.1)

interface QueryRule {
  /** Smallest OutputBufferLength accepted; below it: STATUS_INFO_LENGTH_MISMATCH. */
  min: number;
  /** True when a longer result is truncated and answered with STATUS_BUFFER_OVERFLOW. */
  partial: boolean;
}

const QUERY_RULES: ReadonlyMap<number, QueryRule> = new Map<number, QueryRule>([
  [FileInfoClass.FileBasicInformation, { min: 40, partial: false }],
  [FileInfoClass.FileStandardInformation, { min: 24, partial: false }],
  [FileInfoClass.FileInternalInformation, { min: 8, partial: false }],
  [FileInfoClass.FileEaInformation, { min: 4, partial: false }],
  [FileInfoClass.FileAccessInformation, { min: 4, partial: false }],
  // Name classes: sizeof(FILE_NAME_INFORMATION) = BlockAlign(FieldOffset(FileName) + 2, 4) = 8.
  [FileInfoClass.FileNameInformation, { min: 8, partial: true }],
  [FileInfoClass.FileAlternateNameInformation, { min: 8, partial: true }],
  [FileInfoClass.FileNormalizedNameInformation, { min: 8, partial: true }],
  [FileInfoClass.FilePositionInformation, { min: 8, partial: false }],
  [FileInfoClass.FileModeInformation, { min: 4, partial: false }],
  [FileInfoClass.FileAlignmentInformation, { min: 4, partial: false }],
  // BlockAlign(FieldOffset(FILE_ALL_INFORMATION.NameInformation.FileName) + 2, 4) = 104.
  [FileInfoClass.FileAllInformation, { min: 104, partial: true }],
  // sizeof(FILE_STREAM_INFORMATION) = 32; entries are cut whole (encodeFileStreamInformation).
  [FileInfoClass.FileStreamInformation, { min: 32, partial: true }],
  [FileInfoClass.FileCompressionInformation, { min: 16, partial: false }],
  [FileInfoClass.FileNetworkOpenInformation, { min: 56, partial: false }],
  [FileInfoClass.FileAttributeTagInformation, { min: 8, partial: false }],
  [FileInfoClass.FileIdInformation, { min: 24, partial: false }],
]);

/** The QUERY rule of a file information class, or undefined when this codec does not encode it. */
export function fileInfoQueryRule(cls: number): QueryRule | undefined {
  return QUERY_RULES.get(cls);
}

export type FitResult =
  | { kind: 'ok'; data: Buffer }
  | { kind: 'overflow'; data: Buffer }
  | { kind: 'mismatch' };

/**
 * Applies a client's OutputBufferLength to a fully encoded result: too small for the fixed part
 * is 'mismatch' (STATUS_INFO_LENGTH_MISMATCH); a variable-length result longer than the buffer
 * is cut to it and is 'overflow' (STATUS_BUFFER_OVERFLOW, data still returned).
 */
export function fitQueryOutput(full: Buffer, outputBufferLength: number, rule: QueryRule): FitResult {
  if (outputBufferLength < rule.min) return { kind: 'mismatch' };
  if (full.length <= outputBufferLength) return { kind: 'ok', data: full };
  if (!rule.partial) return { kind: 'mismatch' };
  return { kind: 'overflow', data: full.subarray(0, outputBufferLength) };
}

// ---------------------------------------------------------------------------------------------
// SET decoders (MS-FSA 2.1.5.15)

const SET_MIN: ReadonlyMap<number, number> = new Map<number, number>([
  [FileInfoClass.FileBasicInformation, 40],
  [FileInfoClass.FileRenameInformation, 20],
  [FileInfoClass.FileRenameInformationEx, 20],
  [FileInfoClass.FileLinkInformation, 20],
  [FileInfoClass.FileLinkInformationEx, 20],
  [FileInfoClass.FileDispositionInformation, 1],
  [FileInfoClass.FileDispositionInformationEx, 4],
  [FileInfoClass.FilePositionInformation, 8],
  [FileInfoClass.FileModeInformation, 4],
  [FileInfoClass.FileAllocationInformation, 8],
  [FileInfoClass.FileEndOfFileInformation, 8],
  [FileInfoClass.FileValidDataLengthInformation, 8],
  [FileInfoClass.FileShortNameInformation, 4],
]);

/**
 * Smallest InputBufferLength of a SET class decoded here, or undefined for classes not decoded.
 * A shorter buffer is STATUS_INFO_LENGTH_MISMATCH (MS-FSA 2.1.5.15): check before decoding.
 */
export function fileInfoSetMinBytes(cls: number): number | undefined {
  return SET_MIN.get(cls);
}

/** Decodes FileBasicInformation for SET (0 = leave unchanged, -1/-2 = suspend/resume updates). */
export function decodeFileBasicInformation(buf: Buffer): FileBasicInformation {
  need(buf, 0, 40, 'FileBasicInformation');
  return {
    CreationTime: buf.readBigInt64LE(0),
    LastAccessTime: buf.readBigInt64LE(8),
    LastWriteTime: buf.readBigInt64LE(16),
    ChangeTime: buf.readBigInt64LE(24),
    FileAttributes: buf.readUInt32LE(32),
  };
}

/** FILE_RENAME_INFORMATION_EX Flags (MS-FSCC 2.4.42.2). */
export const RenameFlags = {
  FILE_RENAME_REPLACE_IF_EXISTS: 0x0000_0001,
  FILE_RENAME_POSIX_SEMANTICS: 0x0000_0002,
  FILE_RENAME_SUPPRESS_PIN_STATE_INHERITANCE: 0x0000_0004,
  FILE_RENAME_SUPPRESS_STORAGE_RESERVE_INHERITANCE: 0x0000_0008,
  FILE_RENAME_NO_INCREASE_AVAILABLE_SPACE: 0x0000_0010,
  FILE_RENAME_NO_DECREASE_AVAILABLE_SPACE: 0x0000_0020,
  FILE_RENAME_IGNORE_READONLY_ATTRIBUTE: 0x0000_0040,
  FILE_RENAME_FORCE_RESIZE_TARGET_SR: 0x0000_0080,
  FILE_RENAME_FORCE_RESIZE_SOURCE_SR: 0x0000_0100,
} as const;

export interface FileRenameInformation {
  ReplaceIfExists: boolean;
  /** Only for the Ex classes; for the plain classes: REPLACE_IF_EXISTS when ReplaceIfExists. */
  Flags: number;
  /** Must be 0 over SMB2 (MS-SMB2 2.2.39; the name is relative to the share root). */
  RootDirectory: bigint;
  FileName: string;
}

function decodeRenameLike(buf: Buffer, ex: boolean, what: string): FileRenameInformation {
  // SMB2 layout (MS-FSCC 2.4.42.2 "FILE_RENAME_INFORMATION_TYPE_2"): ReplaceIfExists (1),
  // Reserved (7), RootDirectory (8), FileNameLength (4), FileName. The Ex form puts a 32-bit Flags
  // where ReplaceIfExists and the first reserved bytes are.
  need(buf, 0, 20, what);
  const FileNameLength = buf.readUInt32LE(16);
  // MS-FSA 2.1.5.15.14: an odd or out-of-buffer FileNameLength is STATUS_INVALID_PARAMETER.
  if (FileNameLength === 0 || FileNameLength % 2 !== 0 || 20 + FileNameLength > buf.length) {
    throw new MalformedError(`${what}: FileNameLength ${FileNameLength} invalid for ${buf.length} bytes`);
  }
  const Flags = ex ? buf.readUInt32LE(0) : buf.readUInt8(0) !== 0 ? RenameFlags.FILE_RENAME_REPLACE_IF_EXISTS : 0;
  return {
    ReplaceIfExists: (Flags & RenameFlags.FILE_RENAME_REPLACE_IF_EXISTS) !== 0,
    Flags,
    RootDirectory: buf.readBigUInt64LE(8),
    FileName: utf16(buf.subarray(20, 20 + FileNameLength), what),
  };
}

/** FileRenameInformation (10) or, with `ex`, FileRenameInformationEx (65). */
export function decodeFileRenameInformation(buf: Buffer, ex = false): FileRenameInformation {
  return decodeRenameLike(buf, ex, ex ? 'FileRenameInformationEx' : 'FileRenameInformation');
}

/** FileLinkInformation (11, MS-FSCC 2.4.27) or FileLinkInformationEx (72): same layout as rename. */
export function decodeFileLinkInformation(buf: Buffer, ex = false): FileRenameInformation {
  return decodeRenameLike(buf, ex, ex ? 'FileLinkInformationEx' : 'FileLinkInformation');
}

/** FileDispositionInformation (MS-FSCC 2.4.11): DeletePending (any nonzero byte is TRUE). */
export function decodeFileDispositionInformation(buf: Buffer): { DeletePending: boolean } {
  need(buf, 0, 1, 'FileDispositionInformation');
  return { DeletePending: buf.readUInt8(0) !== 0 };
}

/** FILE_DISPOSITION_INFORMATION_EX Flags (MS-FSCC 2.4.12). */
export const DispositionFlags = {
  FILE_DISPOSITION_DO_NOT_DELETE: 0x0000_0000,
  FILE_DISPOSITION_DELETE: 0x0000_0001,
  FILE_DISPOSITION_POSIX_SEMANTICS: 0x0000_0002,
  FILE_DISPOSITION_FORCE_IMAGE_SECTION_CHECK: 0x0000_0004,
  FILE_DISPOSITION_ON_CLOSE: 0x0000_0008,
  FILE_DISPOSITION_IGNORE_READONLY_ATTRIBUTE: 0x0000_0010,
} as const;

export function decodeFileDispositionInformationEx(buf: Buffer): { Flags: number } {
  need(buf, 0, 4, 'FileDispositionInformationEx');
  return { Flags: buf.readUInt32LE(0) };
}

export function decodeFilePositionInformation(buf: Buffer): { CurrentByteOffset: bigint } {
  need(buf, 0, 8, 'FilePositionInformation');
  return { CurrentByteOffset: buf.readBigUInt64LE(0) };
}

export function decodeFileModeInformation(buf: Buffer): { Mode: number } {
  need(buf, 0, 4, 'FileModeInformation');
  return { Mode: buf.readUInt32LE(0) };
}

// AllocationSize, EndOfFile and ValidDataLength are LARGE_INTEGERs: returned signed so the handler
// can reject negative values (MS-FSA 2.1.5.15.x: STATUS_INVALID_PARAMETER).

export function decodeFileAllocationInformation(buf: Buffer): { AllocationSize: bigint } {
  need(buf, 0, 8, 'FileAllocationInformation');
  return { AllocationSize: buf.readBigInt64LE(0) };
}

export function decodeFileEndOfFileInformation(buf: Buffer): { EndOfFile: bigint } {
  need(buf, 0, 8, 'FileEndOfFileInformation');
  return { EndOfFile: buf.readBigInt64LE(0) };
}

export function decodeFileValidDataLengthInformation(buf: Buffer): { ValidDataLength: bigint } {
  need(buf, 0, 8, 'FileValidDataLengthInformation');
  return { ValidDataLength: buf.readBigInt64LE(0) };
}

/** FileShortNameInformation (MS-FSCC 2.4.46): same layout as FileNameInformation. */
export function decodeFileShortNameInformation(buf: Buffer): { FileName: string } {
  need(buf, 0, 4, 'FileShortNameInformation');
  const n = buf.readUInt32LE(0);
  if (n % 2 !== 0 || 4 + n > buf.length) throw new MalformedError(`FileShortNameInformation: FileNameLength ${n}`);
  return { FileName: utf16(buf.subarray(4, 4 + n), 'FileShortNameInformation') };
}
