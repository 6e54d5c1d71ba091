// MS-FSCC 2.5 file system information classes: QUERY encoders and their output-size rules
// (MS-FSA 2.1.5.13). Sizes are bigint, FILETIMEs bigint, 32-bit fields numbers.

import { utf16Bytes, writeI64, writeU64 } from './wire.js';

/** File system information classes (MS-FSCC 2.5). */
export const FsInfoClass = {
  FileFsVolumeInformation: 1,
  FileFsLabelInformation: 2,
  FileFsSizeInformation: 3,
  FileFsDeviceInformation: 4,
  FileFsAttributeInformation: 5,
  FileFsControlInformation: 6,
  FileFsFullSizeInformation: 7,
  FileFsObjectIdInformation: 8,
  FileFsDriverPathInformation: 9,
  FileFsVolumeFlagsInformation: 10,
  FileFsSectorSizeInformation: 11,
} as const;

/** FileSystemAttributes (MS-FSCC 2.5.1). */
export const FileSystemAttributes = {
  FILE_CASE_SENSITIVE_SEARCH: 0x0000_0001,
  FILE_CASE_PRESERVED_NAMES: 0x0000_0002,
  FILE_UNICODE_ON_DISK: 0x0000_0004,
  FILE_PERSISTENT_ACLS: 0x0000_0008,
  FILE_FILE_COMPRESSION: 0x0000_0010,
  FILE_VOLUME_QUOTAS: 0x0000_0020,
  FILE_SUPPORTS_SPARSE_FILES: 0x0000_0040,
  FILE_SUPPORTS_REPARSE_POINTS: 0x0000_0080,
  FILE_SUPPORTS_REMOTE_STORAGE: 0x0000_0100,
  FILE_RETURNS_CLEANUP_RESULT_INFO: 0x0000_0200,
  FILE_SUPPORTS_POSIX_UNLINK_RENAME: 0x0000_0400,
  FILE_VOLUME_IS_COMPRESSED: 0x0000_8000,
  FILE_SUPPORTS_OBJECT_IDS: 0x0001_0000,
  FILE_SUPPORTS_ENCRYPTION: 0x0002_0000,
  FILE_NAMED_STREAMS: 0x0004_0000,
  FILE_READ_ONLY_VOLUME: 0x0008_0000,
  FILE_SEQUENTIAL_WRITE_ONCE: 0x0010_0000,
  FILE_SUPPORTS_TRANSACTIONS: 0x0020_0000,
  FILE_SUPPORTS_HARD_LINKS: 0x0040_0000,
  FILE_SUPPORTS_EXTENDED_ATTRIBUTES: 0x0080_0000,
  FILE_SUPPORTS_OPEN_BY_FILE_ID: 0x0100_0000,
  FILE_SUPPORTS_USN_JOURNAL: 0x0200_0000,
  FILE_SUPPORT_INTEGRITY_STREAMS: 0x0400_0000,
  FILE_SUPPORTS_BLOCK_REFCOUNTING: 0x0800_0000,
  FILE_SUPPORTS_SPARSE_VDL: 0x1000_0000,
  FILE_DAX_VOLUME: 0x2000_0000,
  FILE_SUPPORTS_GHOSTING: 0x4000_0000,
} as const;

/** DeviceType and Characteristics of FileFsDeviceInformation (MS-FSCC 2.5.10). */
export const DeviceType = {
  FILE_DEVICE_CD_ROM: 0x0000_0002,
  FILE_DEVICE_DISK: 0x0000_0007,
} as const;

export const DeviceCharacteristics = {
  FILE_REMOVABLE_MEDIA: 0x0000_0001,
  FILE_READ_ONLY_DEVICE: 0x0000_0002,
  FILE_FLOPPY_DISKETTE: 0x0000_0004,
  FILE_WRITE_ONCE_MEDIA: 0x0000_0008,
  FILE_REMOTE_DEVICE: 0x0000_0010,
  FILE_DEVICE_IS_MOUNTED: 0x0000_0020,
  FILE_VIRTUAL_VOLUME: 0x0000_0040,
  FILE_DEVICE_SECURE_OPEN: 0x0000_0100,
  FILE_CHARACTERISTIC_TS_DEVICE: 0x0000_1000,
  FILE_CHARACTERISTIC_WEBDAV_DEVICE: 0x0000_2000,
  FILE_DEVICE_ALLOW_APPCONTAINER_TRAVERSAL: 0x0002_0000,
  FILE_PORTABLE_DEVICE: 0x0004_0000,
} as const;

/** FileSystemControlFlags of FileFsControlInformation (MS-FSCC 2.5.2). */
export const FileSystemControlFlags = {
  FILE_VC_QUOTA_TRACK: 0x0000_0001,
  FILE_VC_QUOTA_ENFORCE: 0x0000_0002,
  FILE_VC_CONTENT_INDEX_DISABLED: 0x0000_0008,
  FILE_VC_LOG_QUOTA_THRESHOLD: 0x0000_0010,
  FILE_VC_LOG_QUOTA_LIMIT: 0x0000_0020,
  FILE_VC_LOG_VOLUME_THRESHOLD: 0x0000_0040,
  FILE_VC_LOG_VOLUME_LIMIT: 0x0000_0080,
  FILE_VC_QUOTAS_INCOMPLETE: 0x0000_0100,
  FILE_VC_QUOTAS_REBUILDING: 0x0000_0200,
} as const;

/** DefaultQuotaThreshold / DefaultQuotaLimit value meaning "none set" (MS-FSCC 2.5.2). */
export const QUOTA_NONE = 0xffff_ffff_ffff_ffffn;

/** FileFsSectorSizeInformation Flags (MS-FSCC 2.5.7). */
export const SectorSizeFlags = {
  SSINFO_FLAGS_ALIGNED_DEVICE: 0x0000_0001,
  SSINFO_FLAGS_PARTITION_ALIGNED_ON_DEVICE: 0x0000_0002,
  SSINFO_FLAGS_NO_SEEK_PENALTY: 0x0000_0004,
  SSINFO_FLAGS_TRIM_ENABLED: 0x0000_0008,
} as const;

/** FileFsVolumeInformation (MS-FSCC 2.5.9): 18 fixed bytes + VolumeLabel. */
export function encodeFileFsVolumeInformation(v: {
  VolumeCreationTime: bigint;
  VolumeSerialNumber: number;
  SupportsObjects: boolean;
  VolumeLabel: string;
}): Buffer {
  const n = utf16Bytes(v.VolumeLabel);
  const b = Buffer.alloc(18 + n);
  writeI64(b, v.VolumeCreationTime, 0);
  b.writeUInt32LE(v.VolumeSerialNumber >>> 0, 8);
  b.writeUInt32LE(n, 12);
  b.writeUInt8(v.SupportsObjects ? 1 : 0, 16);
  b.write(v.VolumeLabel, 18, 'utf16le');
  return b;
}

/** FileFsSizeInformation (MS-FSCC 2.5.8): 24 bytes. */
export function encodeFileFsSizeInformation(v: {
  TotalAllocationUnits: bigint;
  AvailableAllocationUnits: bigint;
  SectorsPerAllocationUnit: number;
  BytesPerSector: number;
}): Buffer {
  const b = Buffer.alloc(24);
  writeU64(b, v.TotalAllocationUnits, 0);
  writeU64(b, v.AvailableAllocationUnits, 8);
  b.writeUInt32LE(v.SectorsPerAllocationUnit >>> 0, 16);
  b.writeUInt32LE(v.BytesPerSector >>> 0, 20);
  return b;
}

/** FileFsDeviceInformation (MS-FSCC 2.5.10): 8 bytes. */
export function encodeFileFsDeviceInformation(v: { DeviceType: number; Characteristics: number }): Buffer {
  const b = Buffer.alloc(8);
  b.writeUInt32LE(v.DeviceType >>> 0, 0);
  b.writeUInt32LE(v.Characteristics >>> 0, 4);
  return b;
}

/** FileFsAttributeInformation (MS-FSCC 2.5.1): 12 fixed bytes + FileSystemName (e.g. 'NTFS'). */
export function encodeFileFsAttributeInformation(v: {
  FileSystemAttributes: number;
  MaximumComponentNameLength: number;
  FileSystemName: string;
}): Buffer {
  const n = utf16Bytes(v.FileSystemName);
  const b = Buffer.alloc(12 + n);
  b.writeUInt32LE(v.FileSystemAttributes >>> 0, 0);
  b.writeUInt32LE(v.MaximumComponentNameLength >>> 0, 4);
  b.writeUInt32LE(n, 8);
  b.write(v.FileSystemName, 12, 'utf16le');
  return b;
}

/** FileFsControlInformation (MS-FSCC 2.5.2): 48 bytes. */
export function encodeFileFsControlInformation(v: {
  FreeSpaceStartFiltering: bigint;
  FreeSpaceThreshold: bigint;
  FreeSpaceStopFiltering: bigint;
  DefaultQuotaThreshold: bigint;
  DefaultQuotaLimit: bigint;
  FileSystemControlFlags: number;
}): Buffer {
  const b = Buffer.alloc(48);
  writeI64(b, v.FreeSpaceStartFiltering, 0);
  writeI64(b, v.FreeSpaceThreshold, 8);
  writeI64(b, v.FreeSpaceStopFiltering, 16);
  writeU64(b, v.DefaultQuotaThreshold, 24);
  writeU64(b, v.DefaultQuotaLimit, 32);
  b.writeUInt32LE(v.FileSystemControlFlags >>> 0, 40);
  return b;
}

/** FileFsFullSizeInformation (MS-FSCC 2.5.4): 32 bytes. */
export function encodeFileFsFullSizeInformation(v: {
  TotalAllocationUnits: bigint;
  CallerAvailableAllocationUnits: bigint;
  ActualAvailableAllocationUnits: bigint;
  SectorsPerAllocationUnit: number;
  BytesPerSector: number;
}): Buffer {
  const b = Buffer.alloc(32);
  writeU64(b, v.TotalAllocationUnits, 0);
  writeU64(b, v.CallerAvailableAllocationUnits, 8);
  writeU64(b, v.ActualAvailableAllocationUnits, 16);
  b.writeUInt32LE(v.SectorsPerAllocationUnit >>> 0, 24);
  b.writeUInt32LE(v.BytesPerSector >>> 0, 28);
  return b;
}

/** FileFsObjectIdInformation (MS-FSCC 2.5.6): ObjectId (16) + ExtendedInfo (48). */
export function encodeFileFsObjectIdInformation(v: { ObjectId: Buffer; ExtendedInfo?: Buffer }): Buffer {
  const b = Buffer.alloc(64);
  v.ObjectId.copy(b, 0, 0, 16);
  v.ExtendedInfo?.copy(b, 16, 0, 48);
  return b;
}

/** FileFsSectorSizeInformation (MS-FSCC 2.5.7): 28 bytes. */
export function encodeFileFsSectorSizeInformation(v: {
  LogicalBytesPerSector: number;
  PhysicalBytesPerSectorForAtomicity: number;
  PhysicalBytesPerSectorForPerformance: number;
  FileSystemEffectivePhysicalBytesPerSectorForAtomicity: number;
  Flags: number;
  ByteOffsetForSectorAlignment: number;
  ByteOffsetForPartitionAlignment: number;
}): Buffer {
  const b = Buffer.alloc(28);
  b.writeUInt32LE(v.LogicalBytesPerSector >>> 0, 0);
  b.writeUInt32LE(v.PhysicalBytesPerSectorForAtomicity >>> 0, 4);
  b.writeUInt32LE(v.PhysicalBytesPerSectorForPerformance >>> 0, 8);
  b.writeUInt32LE(v.FileSystemEffectivePhysicalBytesPerSectorForAtomicity >>> 0, 12);
  b.writeUInt32LE(v.Flags >>> 0, 16);
  b.writeUInt32LE(v.ByteOffsetForSectorAlignment >>> 0, 20);
  b.writeUInt32LE(v.ByteOffsetForPartitionAlignment >>> 0, 24);
  return b;
}

const FS_QUERY_RULES: ReadonlyMap<number, { min: number; partial: boolean }> = new Map([
  // BlockAlign(FieldOffset(FILE_FS_VOLUME_INFORMATION.VolumeLabel), 8) = 24 (MS-FSA 2.1.5.13.1).
  [FsInfoClass.FileFsVolumeInformation, { min: 24, partial: true }],
  [FsInfoClass.FileFsSizeInformation, { min: 24, partial: false }],
  [FsInfoClass.FileFsDeviceInformation, { min: 8, partial: false }],
  // MS-FSA 2.1.5.13.5 names BlockAlign(FieldOffset(FileSystemName), 4) = 12, but Windows answers
  // STATUS_INFO_LENGTH_MISMATCH below sizeof(FILE_FS_ATTRIBUTE_INFORMATION) = 16 (12 + one WCHAR,
  // aligned to 4), as smbtorture's smb2.getinfo.qfs_buffercheck (written against Windows) checks.
  [FsInfoClass.FileFsAttributeInformation, { min: 16, partial: true }],
  [FsInfoClass.FileFsControlInformation, { min: 48, partial: false }],
  [FsInfoClass.FileFsFullSizeInformation, { min: 32, partial: false }],
  [FsInfoClass.FileFsObjectIdInformation, { min: 64, partial: false }],
  [FsInfoClass.FileFsSectorSizeInformation, { min: 28, partial: false }],
]);

/** QUERY rule of a file-system class (use with fitQueryOutput from file-info.ts). */
export function fsInfoQueryRule(cls: number): { min: number; partial: boolean } | undefined {
  return FS_QUERY_RULES.get(cls);
}
