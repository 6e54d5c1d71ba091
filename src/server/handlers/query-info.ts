// QUERY_INFO (MS-SMB2 3.3.5.20; information classes of MS-FSCC 2.4/2.5, rules of MS-FSA 2.1.5.12/2.1.5.13).

import { NtStatus } from '../../protocol/ntstatus.js';
import { decodeQueryInfoRequest, InfoType, queryInfoResponse } from '../../protocol/query-info.js';
import { AccessMask } from '../../protocol/create.js';
import {
  encodeFileAccessInformation,
  encodeFileAlignmentInformation,
  encodeFileAllInformation,
  encodeFileAttributeTagInformation,
  encodeFileBasicInformation,
  encodeFileCompressionInformation,
  encodeFileEaInformation,
  encodeFileIdInformation,
  encodeFileInternalInformation,
  encodeFileModeInformation,
  encodeFileNameInformation,
  encodeFileNetworkOpenInformation,
  encodeFileNormalizedNameInformation,
  encodeFilePositionInformation,
  encodeFileStandardInformation,
  encodeFileStreamInformation,
  FileInfoClass,
  fileInfoQueryRule,
  fitQueryOutput,
} from '../../protocol/fscc/file-info.js';
import {
  DeviceCharacteristics,
  DeviceType,
  encodeFileFsAttributeInformation,
  encodeFileFsDeviceInformation,
  encodeFileFsFullSizeInformation,
  encodeFileFsSectorSizeInformation,
  encodeFileFsSizeInformation,
  encodeFileFsVolumeInformation,
  FileSystemAttributes,
  FsInfoClass,
  SectorSizeFlags,
} from '../../protocol/fscc/fs-info.js';
import { errorResponse } from '../../protocol/error.js';
import { defaultFileSecurityDescriptor, selectSecurityInformation } from '../../protocol/security-descriptor.js';
import { unixNsToFiletime } from '../../base/clock.js';
import type { FileInfo, FsStats } from '../../ios/spi.js';
import type { Reply, RequestContext } from '../context.js';
import { maxTransact, wireAttributes, wireTimes } from '../files.js';
import type { Open } from '../state.js';
import { Dialect } from '../../protocol/negotiate.js';

const SECURITY_SACL = 0x8;

export async function handleQueryInfo(ctx: RequestContext): Promise<Reply> {
  const req = decodeQueryInfoRequest(ctx.msg);
  const open = ctx.open!;
  // MS-SMB2 3.3.5.20: OutputBufferLength above MaxTransactSize is invalid.
  if (req.OutputBufferLength > maxTransact(ctx.conn)) return { status: NtStatus.INVALID_PARAMETER };
  switch (req.InfoType) {
    case InfoType.SMB2_0_INFO_FILE:
      return queryFile(ctx, open, req.FileInfoClass, req.OutputBufferLength);
    case InfoType.SMB2_0_INFO_FILESYSTEM:
      return queryFs(ctx, open, req.FileInfoClass, req.OutputBufferLength);
    case InfoType.SMB2_0_INFO_SECURITY:
      return querySecurity(ctx, open, req.AdditionalInformation, req.OutputBufferLength);
    case InfoType.SMB2_0_INFO_QUOTA:
      return { status: NtStatus.NOT_SUPPORTED };
    default:
      return { status: NtStatus.INVALID_PARAMETER };
  }
}

function shareRelativeName(open: Open): string {
  return '\\' + open.path.split('/').join('\\') + (open.stream !== undefined ? `:${open.stream}` : '');
}

function basic(info: FileInfo) {
  return { ...wireTimes(info), FileAttributes: wireAttributes(info) };
}

function standard(open: Open, info: FileInfo) {
  return {
    AllocationSize: BigInt(info.allocationSize),
    EndOfFile: BigInt(info.size),
    NumberOfLinks: info.links,
    DeletePending: open.deleteOnClose,
    Directory: info.isDirectory,
  };
}

async function queryFile(ctx: RequestContext, open: Open, cls: number, outputLength: number): Promise<Reply> {
  if (open.kind === 'pipe') {
    if (cls !== FileInfoClass.FileStandardInformation) return { status: NtStatus.INVALID_PARAMETER };
    const data = encodeFileStandardInformation({ AllocationSize: 4096n, EndOfFile: 0n, NumberOfLinks: 1, DeletePending: true, Directory: false });
    return fit(data, outputLength, cls);
  }
  const rule = fileInfoQueryRule(cls);
  if (!rule) return { status: cls === 0 || cls > 0x4f ? NtStatus.INVALID_INFO_CLASS : NtStatus.NOT_SUPPORTED };
  // MS-SMB2 3.3.5.20.1 / MS-FSA 2.1.5.12: most classes need FILE_READ_ATTRIBUTES.
  const needsReadAttributes = ![
    FileInfoClass.FileAccessInformation,
    FileInfoClass.FileModeInformation,
    FileInfoClass.FileAlignmentInformation,
    FileInfoClass.FilePositionInformation,
    FileInfoClass.FileNameInformation,
    FileInfoClass.FileNormalizedNameInformation,
    FileInfoClass.FileInternalInformation,
    FileInfoClass.FileEaInformation,
  ].includes(cls as never);
  if (needsReadAttributes && !(open.grantedAccess & AccessMask.FILE_READ_ATTRIBUTES)) return { status: NtStatus.ACCESS_DENIED };
  const info = await open.handle!.info();
  let data: Buffer;
  switch (cls) {
    case FileInfoClass.FileBasicInformation:
      data = encodeFileBasicInformation(basic(info));
      break;
    case FileInfoClass.FileStandardInformation:
      data = encodeFileStandardInformation(standard(open, info));
      break;
    case FileInfoClass.FileInternalInformation:
      data = encodeFileInternalInformation({ IndexNumber: info.fileId });
      break;
    case FileInfoClass.FileEaInformation:
      data = encodeFileEaInformation({ EaSize: 0 });
      break;
    case FileInfoClass.FileAccessInformation:
      data = encodeFileAccessInformation({ AccessFlags: open.grantedAccess });
      break;
    case FileInfoClass.FileNameInformation:
      data = encodeFileNameInformation({ FileName: shareRelativeName(open) });
      break;
    case FileInfoClass.FileNormalizedNameInformation:
      // MS-SMB2 3.3.5.20.1: only for 3.1.1.
      if (ctx.conn.negotiated!.dialect < Dialect.SMB311) return { status: NtStatus.NOT_SUPPORTED };
      data = encodeFileNormalizedNameInformation({ FileName: open.path.split('/').join('\\') });
      break;
    case FileInfoClass.FileAlternateNameInformation:
      // No 8.3 short names are generated.
      return { status: NtStatus.OBJECT_NAME_NOT_FOUND };
    case FileInfoClass.FilePositionInformation:
      data = encodeFilePositionInformation({ CurrentByteOffset: open.position });
      break;
    case FileInfoClass.FileModeInformation:
      data = encodeFileModeInformation({ Mode: open.mode });
      break;
    case FileInfoClass.FileAlignmentInformation:
      data = encodeFileAlignmentInformation({ AlignmentRequirement: 0 });
      break;
    case FileInfoClass.FileAllInformation:
      data = encodeFileAllInformation({
        BasicInformation: basic(info),
        StandardInformation: standard(open, info),
        IndexNumber: info.fileId,
        EaSize: 0,
        AccessFlags: open.grantedAccess,
        CurrentByteOffset: open.position,
        Mode: open.mode,
        AlignmentRequirement: 0,
        FileName: shareRelativeName(open),
      });
      break;
    case FileInfoClass.FileStreamInformation: {
      // MS-FSCC 2.4.49: the unnamed data stream (files only) then every named stream as ":name:$DATA".
      const named = await open.handle!.listStreams();
      let base = info;
      if (open.stream !== undefined) base = (await open.tree.share.ios!.stat(open.path)).info;
      const streams = [
        ...(base.isDirectory ? [] : [{ StreamName: '::$DATA', StreamSize: BigInt(base.size), StreamAllocationSize: BigInt(base.allocationSize) }]),
        ...named.map((s) => ({ StreamName: `:${s.name}:$DATA`, StreamSize: BigInt(s.size), StreamAllocationSize: BigInt(s.allocationSize) })),
      ];
      const out = encodeFileStreamInformation(streams, outputLength);
      if (outputLength < rule.min) return { status: NtStatus.INFO_LENGTH_MISMATCH };
      return { status: out.overflow ? NtStatus.BUFFER_OVERFLOW : NtStatus.SUCCESS, body: queryInfoResponse(out.data) };
    }
    case FileInfoClass.FileCompressionInformation:
      data = encodeFileCompressionInformation({ CompressedFileSize: BigInt(info.size), CompressionFormat: 0, CompressionUnitShift: 0, ChunkShift: 0, ClusterShift: 0 });
      break;
    case FileInfoClass.FileNetworkOpenInformation:
      data = encodeFileNetworkOpenInformation({ ...basic(info), AllocationSize: BigInt(info.allocationSize), EndOfFile: BigInt(info.size) });
      break;
    case FileInfoClass.FileAttributeTagInformation:
      data = encodeFileAttributeTagInformation({ FileAttributes: wireAttributes(info), ReparseTag: 0 });
      break;
    case FileInfoClass.FileIdInformation: {
      const fs = await ctx.conn.server.volumeInfo(open.tree.share);
      data = encodeFileIdInformation({ VolumeSerialNumber: BigInt(fs.volumeSerial), FileId: info.fileId });
      break;
    }
    default:
      return { status: NtStatus.NOT_SUPPORTED };
  }
  return fit(data, outputLength, cls);
}

function fit(data: Buffer, outputLength: number, cls: number): Reply {
  const rule = fileInfoQueryRule(cls)!;
  const r = fitQueryOutput(data, outputLength, rule);
  if (r.kind === 'mismatch') return { status: NtStatus.INFO_LENGTH_MISMATCH };
  return { status: r.kind === 'overflow' ? NtStatus.BUFFER_OVERFLOW : NtStatus.SUCCESS, body: queryInfoResponse(r.data) };
}

// MS-FSA 2.1.5.13: fixed sizes of the file system classes; variable ones may be cut (BUFFER_OVERFLOW).
const FS_RULES: Record<number, { min: number; partial: boolean }> = {
  [FsInfoClass.FileFsVolumeInformation]: { min: 18, partial: true },
  [FsInfoClass.FileFsSizeInformation]: { min: 24, partial: false },
  [FsInfoClass.FileFsDeviceInformation]: { min: 8, partial: false },
  [FsInfoClass.FileFsAttributeInformation]: { min: 12, partial: true },
  [FsInfoClass.FileFsFullSizeInformation]: { min: 32, partial: false },
  [FsInfoClass.FileFsSectorSizeInformation]: { min: 28, partial: false },
};

async function queryFs(ctx: RequestContext, open: Open, cls: number, outputLength: number): Promise<Reply> {
  const rule = FS_RULES[cls];
  if (!rule) return { status: cls === 0 || cls > 16 ? NtStatus.INVALID_INFO_CLASS : NtStatus.NOT_SUPPORTED };
  if (open.kind === 'pipe') return { status: NtStatus.INVALID_PARAMETER };
  const fs: FsStats = await ctx.conn.server.volumeInfo(open.tree.share, true);
  const sectorsPerUnit = Math.max(1, Math.floor(fs.blockBytes / fs.sectorBytesLogical));
  const unit = sectorsPerUnit * fs.sectorBytesLogical;
  const units = (bytes: number): bigint => BigInt(Math.floor(bytes / unit));
  let data: Buffer;
  switch (cls) {
    case FsInfoClass.FileFsVolumeInformation:
      data = encodeFileFsVolumeInformation({
        VolumeCreationTime: unixNsToFiletime(fs.createdNs),
        VolumeSerialNumber: fs.volumeSerial,
        SupportsObjects: false,
        VolumeLabel: fs.label,
      });
      break;
    case FsInfoClass.FileFsSizeInformation:
      data = encodeFileFsSizeInformation({
        TotalAllocationUnits: units(fs.totalBytes),
        AvailableAllocationUnits: units(fs.availableBytes),
        SectorsPerAllocationUnit: sectorsPerUnit,
        BytesPerSector: fs.sectorBytesLogical,
      });
      break;
    case FsInfoClass.FileFsFullSizeInformation:
      data = encodeFileFsFullSizeInformation({
        TotalAllocationUnits: units(fs.totalBytes),
        CallerAvailableAllocationUnits: units(fs.availableBytes),
        ActualAvailableAllocationUnits: units(fs.freeBytes),
        SectorsPerAllocationUnit: sectorsPerUnit,
        BytesPerSector: fs.sectorBytesLogical,
      });
      break;
    case FsInfoClass.FileFsDeviceInformation:
      data = encodeFileFsDeviceInformation({ DeviceType: DeviceType.FILE_DEVICE_DISK, Characteristics: DeviceCharacteristics.FILE_DEVICE_IS_MOUNTED });
      break;
    case FsInfoClass.FileFsAttributeInformation:
      data = encodeFileFsAttributeInformation({
        FileSystemAttributes:
          FileSystemAttributes.FILE_CASE_PRESERVED_NAMES |
          FileSystemAttributes.FILE_UNICODE_ON_DISK |
          FileSystemAttributes.FILE_PERSISTENT_ACLS |
          // FILE_SUPPORTS_SPARSE_FILES stays off until FSCTL_SET_SPARSE and allocated-range queries are served.
          (fs.caseSensitive ? FileSystemAttributes.FILE_CASE_SENSITIVE_SEARCH : 0),
        MaximumComponentNameLength: fs.nameUnitsMax,
        FileSystemName: 'NTFS',
      });
      break;
    case FsInfoClass.FileFsSectorSizeInformation:
      data = encodeFileFsSectorSizeInformation({
        LogicalBytesPerSector: fs.sectorBytesLogical,
        PhysicalBytesPerSectorForAtomicity: fs.sectorBytesPhysical,
        PhysicalBytesPerSectorForPerformance: fs.sectorBytesPhysical,
        FileSystemEffectivePhysicalBytesPerSectorForAtomicity: fs.sectorBytesPhysical,
        Flags: SectorSizeFlags.SSINFO_FLAGS_ALIGNED_DEVICE | SectorSizeFlags.SSINFO_FLAGS_PARTITION_ALIGNED_ON_DEVICE,
        ByteOffsetForSectorAlignment: 0,
        ByteOffsetForPartitionAlignment: 0,
      });
      break;
    default:
      return { status: NtStatus.NOT_SUPPORTED };
  }
  if (outputLength < rule.min) return { status: NtStatus.INFO_LENGTH_MISMATCH };
  if (data.length <= outputLength) return { status: NtStatus.SUCCESS, body: queryInfoResponse(data) };
  if (!rule.partial) return { status: NtStatus.INFO_LENGTH_MISMATCH };
  return { status: NtStatus.BUFFER_OVERFLOW, body: queryInfoResponse(data.subarray(0, outputLength)) };
}

async function querySecurity(ctx: RequestContext, open: Open, additional: number, outputLength: number): Promise<Reply> {
  if (open.kind === 'pipe') return { status: NtStatus.INVALID_PARAMETER };
  // MS-SMB2 3.3.5.20.3 / MS-FSA 2.1.5.16: READ_CONTROL, and ACCESS_SYSTEM_SECURITY for the SACL.
  if (!(open.grantedAccess & AccessMask.READ_CONTROL)) return { status: NtStatus.ACCESS_DENIED };
  if (additional & SECURITY_SACL && !(open.grantedAccess & AccessMask.ACCESS_SYSTEM_SECURITY)) return { status: NtStatus.ACCESS_DENIED };
  const stored = await open.handle!.getSecurity();
  const sd = stored ?? defaultFileSecurityDescriptor(open.session.sid || 'S-1-5-32-544');
  const out = selectSecurityInformation(sd, additional);
  if (out.length > outputLength) {
    // MS-SMB2 3.3.5.20.3: BUFFER_TOO_SMALL with the required size in ErrorData.
    const need = Buffer.alloc(4);
    need.writeUInt32LE(out.length, 0);
    return { status: NtStatus.BUFFER_TOO_SMALL, body: errorResponse(need) };
  }
  return { status: NtStatus.SUCCESS, body: queryInfoResponse(out) };
}
