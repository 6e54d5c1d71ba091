import { describe, expect, it } from 'vitest';
import { MalformedError } from '../../src/base/errors.js';
import {
  FileInfoClass,
  decodeFileBasicInformation,
  decodeFileDispositionInformation,
  decodeFileDispositionInformationEx,
  decodeFileEndOfFileInformation,
  decodeFileLinkInformation,
  decodeFileRenameInformation,
  decodeFileShortNameInformation,
  decodeFileAllocationInformation,
  decodeFileValidDataLengthInformation,
  decodeFilePositionInformation,
  decodeFileModeInformation,
  encodeFileAllInformation,
  encodeFileAttributeTagInformation,
  encodeFileBasicInformation,
  encodeFileCompressionInformation,
  encodeFileIdInformation,
  encodeFileInternalInformation,
  encodeFileNameInformation,
  encodeFileNetworkOpenInformation,
  encodeFileStandardInformation,
  encodeFileStreamInformation,
  fileInfoQueryRule,
  fileInfoSetMinBytes,
  fitQueryOutput,
  RenameFlags,
} from '../../src/protocol/fscc/file-info.js';
import {
  DeviceType,
  FileSystemAttributes,
  FsInfoClass,
  encodeFileFsAttributeInformation,
  encodeFileFsDeviceInformation,
  encodeFileFsFullSizeInformation,
  encodeFileFsSectorSizeInformation,
  encodeFileFsSizeInformation,
  encodeFileFsVolumeInformation,
  encodeFileFsControlInformation,
  encodeFileFsObjectIdInformation,
  fsInfoQueryRule,
} from '../../src/protocol/fscc/fs-info.js';
import { Bytes, fuzzDecoder } from './helpers.js';

const times = { CreationTime: 0x01d9_0000_0000_0001n, LastAccessTime: 0x01d9_0000_0000_0002n, LastWriteTime: 0x01d9_0000_0000_0003n, ChangeTime: 0x01d9_0000_0000_0004n };
const timesHex = '010000000000d901' + '020000000000d901' + '030000000000d901' + '040000000000d901';

describe('MS-FSCC 2.4 QUERY encoders', () => {
  it('FileBasicInformation (2.4.7) golden', () => {
    expect(encodeFileBasicInformation({ ...times, FileAttributes: 0x20 }).toString('hex')).toBe(timesHex + '20000000' + '00000000');
  });

  it('FileStandardInformation (2.4.47) golden', () => {
    expect(
      encodeFileStandardInformation({ AllocationSize: 4096n, EndOfFile: 100n, NumberOfLinks: 1, DeletePending: true, Directory: false }).toString('hex'),
    ).toBe('0010000000000000' + '6400000000000000' + '01000000' + '01' + '00' + '0000');
  });

  it('FileNetworkOpenInformation (2.4.34), AttributeTag (2.4.6), Internal (2.4.26), Id (2.4.23), Compression (2.4.9)', () => {
    const n = encodeFileNetworkOpenInformation({ ...times, AllocationSize: 8192n, EndOfFile: 5n, FileAttributes: 0x80 });
    expect(n.toString('hex')).toBe(timesHex + '0020000000000000' + '0500000000000000' + '80000000' + '00000000');
    expect(encodeFileAttributeTagInformation({ FileAttributes: 0x400, ReparseTag: 0xa000000c }).toString('hex')).toBe('000400000c0000a0');
    expect(encodeFileInternalInformation({ IndexNumber: 0x42n }).toString('hex')).toBe('4200000000000000');
    expect(encodeFileIdInformation({ VolumeSerialNumber: 0xabcdn, FileId: 7n }).toString('hex')).toBe('cdab000000000000' + '07' + '00'.repeat(15));
    expect(encodeFileCompressionInformation({ CompressedFileSize: 10n, CompressionFormat: 0, CompressionUnitShift: 0, ChunkShift: 0, ClusterShift: 0 }).length).toBe(16);
  });

  it('FileNameInformation (2.4.28) and FileAllInformation (2.4.2) layout', () => {
    expect(encodeFileNameInformation({ FileName: '\\a' }).toString('hex')).toBe('04000000' + '5c006100');
    const all = encodeFileAllInformation({
      BasicInformation: { ...times, FileAttributes: 0x20 },
      StandardInformation: { AllocationSize: 0n, EndOfFile: 3n, NumberOfLinks: 1, DeletePending: false, Directory: false },
      IndexNumber: 0x99n,
      EaSize: 0,
      AccessFlags: 0x12019f,
      CurrentByteOffset: 0n,
      Mode: 0x20,
      AlignmentRequirement: 0,
      FileName: '\\dir\\x.vhdx',
    });
    expect(all.length).toBe(100 + 22);
    expect(all.readUInt32LE(32)).toBe(0x20);
    expect(all.readBigUInt64LE(48)).toBe(3n);
    expect(all.readUInt32LE(56)).toBe(1);
    expect(all.readBigUInt64LE(64)).toBe(0x99n);
    expect(all.readUInt32LE(76)).toBe(0x12019f);
    expect(all.readUInt32LE(88)).toBe(0x20);
    expect(all.readUInt32LE(96)).toBe(22);
    expect(all.subarray(100).toString('utf16le')).toBe('\\dir\\x.vhdx');
  });

  it('FileStreamInformation (2.4.49): 8-byte aligned chain, whole entries only', () => {
    const streams = [
      { StreamName: '::$DATA', StreamSize: 10n, StreamAllocationSize: 4096n },
      { StreamName: ':ab:$DATA', StreamSize: 1n, StreamAllocationSize: 8n },
    ];
    const { data, overflow } = encodeFileStreamInformation(streams, 1000);
    expect(overflow).toBe(false);
    // Entry 1: 24 + 14 = 38 -> next at 40. Entry 2: 24 + 18 = 42 -> total 82.
    expect(data.length).toBe(82);
    expect(data.readUInt32LE(0)).toBe(40);
    expect(data.readUInt32LE(4)).toBe(14);
    expect(data.readBigUInt64LE(8)).toBe(10n);
    expect(data.readBigUInt64LE(16)).toBe(4096n);
    expect(data.subarray(24, 38).toString('utf16le')).toBe('::$DATA');
    expect(data.subarray(38, 40)).toEqual(Buffer.alloc(2));
    expect(data.readUInt32LE(40)).toBe(0);
    expect(data.subarray(64, 82).toString('utf16le')).toBe(':ab:$DATA');
    const cut = encodeFileStreamInformation(streams, 81);
    expect(cut.overflow).toBe(true);
    expect(cut.data.length).toBe(38);
    expect(cut.data.readUInt32LE(0)).toBe(0);
  });

  it('fitQueryOutput: INFO_LENGTH_MISMATCH below the minimum, BUFFER_OVERFLOW with partial data for names', () => {
    const basic = encodeFileBasicInformation({ ...times, FileAttributes: 0 });
    const basicRule = fileInfoQueryRule(FileInfoClass.FileBasicInformation)!;
    expect(fitQueryOutput(basic, 39, basicRule)).toEqual({ kind: 'mismatch' });
    expect(fitQueryOutput(basic, 4096, basicRule)).toEqual({ kind: 'ok', data: basic });
    const name = encodeFileNameInformation({ FileName: '\\long\\name' });
    const nameRule = fileInfoQueryRule(FileInfoClass.FileNameInformation)!;
    const r = fitQueryOutput(name, 10, nameRule);
    expect(r.kind).toBe('overflow');
    expect(r.kind === 'overflow' && r.data.length).toBe(10);
    // FileNameLength keeps the full length (MS-FSA 2.1.5.12).
    expect(r.kind === 'overflow' && r.data.readUInt32LE(0)).toBe(20);
    expect(fitQueryOutput(name, 7, nameRule)).toEqual({ kind: 'mismatch' });
    expect(fileInfoQueryRule(FileInfoClass.FileAllInformation)!.min).toBe(104);
    expect(fileInfoQueryRule(FileInfoClass.FileRenameInformation)).toBeUndefined();
  });
});

describe('MS-FSCC 2.4 SET decoders', () => {
  const rename = new Bytes().u8(1).zeros(7).u64(0n).u32(16).utf16('new\\name').build();

  it('FileRenameInformation SMB2 layout (2.4.42.2)', () => {
    expect(decodeFileRenameInformation(rename)).toEqual({ ReplaceIfExists: true, Flags: RenameFlags.FILE_RENAME_REPLACE_IF_EXISTS, RootDirectory: 0n, FileName: 'new\\name' });
    const noReplace = Buffer.from(rename);
    noReplace[0] = 0;
    expect(decodeFileRenameInformation(noReplace).ReplaceIfExists).toBe(false);
    expect(decodeFileLinkInformation(rename).FileName).toBe('new\\name');
  });

  it('FileRenameInformationEx flags', () => {
    const ex = Buffer.from(rename);
    ex.writeUInt32LE(RenameFlags.FILE_RENAME_POSIX_SEMANTICS | RenameFlags.FILE_RENAME_IGNORE_READONLY_ATTRIBUTE, 0);
    const r = decodeFileRenameInformation(ex, true);
    expect(r.Flags).toBe(0x42);
    expect(r.ReplaceIfExists).toBe(false);
  });

  it('rejects odd, zero, or oversize FileNameLength', () => {
    for (const n of [0, 15, 18]) {
      const b = Buffer.from(rename);
      b.writeUInt32LE(n, 16);
      expect(() => decodeFileRenameInformation(b)).toThrow(MalformedError);
    }
  });

  it('small SET classes', () => {
    expect(decodeFileBasicInformation(encodeFileBasicInformation({ ...times, FileAttributes: 1 }))).toEqual({ ...times, FileAttributes: 1 });
    const keep = Buffer.alloc(40);
    keep.writeBigInt64LE(-1n, 8);
    expect(decodeFileBasicInformation(keep).LastAccessTime).toBe(-1n);
    expect(decodeFileDispositionInformation(Buffer.from([2]))).toEqual({ DeletePending: true });
    expect(decodeFileDispositionInformation(Buffer.from([0]))).toEqual({ DeletePending: false });
    expect(decodeFileDispositionInformationEx(Buffer.from('09000000', 'hex'))).toEqual({ Flags: 9 });
    expect(decodeFileEndOfFileInformation(Buffer.from('0000100000000000', 'hex'))).toEqual({ EndOfFile: 0x100000n });
    expect(decodeFileAllocationInformation(Buffer.from('ffffffffffffffff', 'hex'))).toEqual({ AllocationSize: -1n });
    expect(decodeFileValidDataLengthInformation(Buffer.from('0100000000000000', 'hex'))).toEqual({ ValidDataLength: 1n });
    expect(decodeFilePositionInformation(Buffer.from('0800000000000000', 'hex'))).toEqual({ CurrentByteOffset: 8n });
    expect(decodeFileModeInformation(Buffer.from('02000000', 'hex'))).toEqual({ Mode: 2 });
    expect(decodeFileShortNameInformation(new Bytes().u32(6).utf16('A~1').build())).toEqual({ FileName: 'A~1' });
    expect(() => decodeFileEndOfFileInformation(Buffer.alloc(7))).toThrow(MalformedError);
    expect(fileInfoSetMinBytes(FileInfoClass.FileEndOfFileInformation)).toBe(8);
    expect(fileInfoSetMinBytes(FileInfoClass.FileRenameInformation)).toBe(20);
  });

  it('fuzz', () => {
    fuzzDecoder((b) => decodeFileRenameInformation(b), rename);
    fuzzDecoder((b) => decodeFileRenameInformation(b, true), rename);
    fuzzDecoder(decodeFileBasicInformation, Buffer.alloc(40));
    fuzzDecoder(decodeFileShortNameInformation, new Bytes().u32(6).utf16('A~1').build());
    fuzzDecoder(decodeFileDispositionInformationEx, Buffer.alloc(4));
    fuzzDecoder(decodeFileEndOfFileInformation, Buffer.alloc(8));
  });
});

describe('MS-FSCC 2.5 file system information', () => {
  it('FileFsVolumeInformation (2.5.9) golden', () => {
    expect(encodeFileFsVolumeInformation({ VolumeCreationTime: 1n, VolumeSerialNumber: 0xdeadbeef, SupportsObjects: false, VolumeLabel: 'vm' }).toString('hex')).toBe(
      '0100000000000000' + 'efbeadde' + '04000000' + '00' + '00' + '76006d00',
    );
  });

  it('FileFsAttributeInformation (2.5.1) golden and partial name', () => {
    const a = encodeFileFsAttributeInformation({
      FileSystemAttributes: FileSystemAttributes.FILE_CASE_PRESERVED_NAMES | FileSystemAttributes.FILE_UNICODE_ON_DISK | FileSystemAttributes.FILE_PERSISTENT_ACLS | FileSystemAttributes.FILE_SUPPORTS_SPARSE_FILES,
      MaximumComponentNameLength: 255,
      FileSystemName: 'NTFS',
    });
    expect(a.toString('hex')).toBe('4e000000' + 'ff000000' + '08000000' + '4e00540046005300');
    const rule = fsInfoQueryRule(FsInfoClass.FileFsAttributeInformation)!;
    const r = fitQueryOutput(a, 16, rule);
    expect(r.kind).toBe('overflow');
    expect(fitQueryOutput(a, 11, rule).kind).toBe('mismatch');
  });

  it('size, full size, device, sector size, control, object id', () => {
    expect(encodeFileFsSizeInformation({ TotalAllocationUnits: 100n, AvailableAllocationUnits: 50n, SectorsPerAllocationUnit: 8, BytesPerSector: 512 }).toString('hex')).toBe(
      '6400000000000000' + '3200000000000000' + '08000000' + '00020000',
    );
    const full = encodeFileFsFullSizeInformation({ TotalAllocationUnits: 100n, CallerAvailableAllocationUnits: 40n, ActualAvailableAllocationUnits: 50n, SectorsPerAllocationUnit: 8, BytesPerSector: 512 });
    expect(full.length).toBe(32);
    expect(full.readBigUInt64LE(8)).toBe(40n);
    expect(full.readUInt32LE(28)).toBe(512);
    expect(encodeFileFsDeviceInformation({ DeviceType: DeviceType.FILE_DEVICE_DISK, Characteristics: 0x20 }).toString('hex')).toBe('0700000020000000');
    const ss = encodeFileFsSectorSizeInformation({
      LogicalBytesPerSector: 512, PhysicalBytesPerSectorForAtomicity: 4096, PhysicalBytesPerSectorForPerformance: 4096,
      FileSystemEffectivePhysicalBytesPerSectorForAtomicity: 4096, Flags: 3, ByteOffsetForSectorAlignment: 0, ByteOffsetForPartitionAlignment: 0,
    });
    expect(ss.toString('hex')).toBe('00020000' + '00100000'.repeat(3) + '03000000' + '00000000' + '00000000');
    expect(encodeFileFsControlInformation({ FreeSpaceStartFiltering: 0n, FreeSpaceThreshold: 0n, FreeSpaceStopFiltering: 0n, DefaultQuotaThreshold: -1n & 0xffffffffffffffffn, DefaultQuotaLimit: 0xffffffffffffffffn, FileSystemControlFlags: 0 }).length).toBe(48);
    expect(encodeFileFsObjectIdInformation({ ObjectId: Buffer.alloc(16, 1) }).length).toBe(64);
  });
});
