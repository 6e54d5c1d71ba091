// QUERY_INFO (MS-SMB2 3.3.5.20; information classes of MS-FSCC 2.4/2.5, rules of MS-FSA 2.1.5.12/2.1.5.13).

import { NtStatus } from '../../protocol/ntstatus.js';
import { decodeQueryInfoRequest, InfoType, QueryInfoFlags, queryInfoResponse, type QueryInfoRequest } from '../../protocol/query-info.js';
import { decodeGetEaList, eaSizeOf, encodeFullEaList, type FullEa } from '../../protocol/fscc/ea.js';
import { MalformedError } from '../../base/errors.js';
import { AccessMask } from '../../protocol/create.js';
import {
  encodeFileAccessInformation,
  encodeFileAlignmentInformation,
  encodeFileAllInformation,
  encodeFileAlternateNameInformation,
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
  encodeFileFsControlInformation,
  encodeFileFsDeviceInformation,
  encodeFileFsFullSizeInformation,
  encodeFileFsObjectIdInformation,
  encodeFileFsSectorSizeInformation,
  encodeFileFsSizeInformation,
  encodeFileFsVolumeInformation,
  FileSystemAttributes,
  FsInfoClass,
  fsInfoQueryRule,
  QUOTA_NONE,
  SectorSizeFlags,
} from '../../protocol/fscc/fs-info.js';
import { shortNameOf } from '../../protocol/fscc/short-name.js';
import { createHash } from 'node:crypto';
import { errorResponse } from '../../protocol/error.js';
import { defaultFileSecurityDescriptor, selectSecurityInformation } from '../../protocol/security-descriptor.js';
import { unixNsToFiletime } from '../../base/clock.js';
import type { FileInfo, FsStats } from '../../ios/spi.js';
import type { Reply, RequestContext } from '../context.js';
import { maxTransact, wireAttributes, wireTimes } from '../files.js';
import type { Open } from '../state.js';
import type { Server } from '../server.js';
import { pendingDeleteKey } from '../opens.js';
import { Dialect } from '../../protocol/negotiate.js';

const SECURITY_SACL = 0x8;

export async function handleQueryInfo(ctx: RequestContext): Promise<Reply> {
  const req = decodeQueryInfoRequest(ctx.msg);
  const open = ctx.open!;
  // MS-SMB2 3.3.5.20: OutputBufferLength above MaxTransactSize is invalid.
  if (req.OutputBufferLength > maxTransact(ctx.conn)) return { status: NtStatus.INVALID_PARAMETER };
  switch (req.InfoType) {
    case InfoType.SMB2_0_INFO_FILE:
      if (req.FileInfoClass === FileInfoClass.FileFullEaInformation) return queryEas(open, req);
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

function standard(server: Server, open: Open, info: FileInfo) {
  // MS-FSA 2.1.5.12.27: DeletePending is the link's (or, for a named stream, the stream's) pending
  // delete, set through any open of it; NumberOfLinks counts the links not marked for deletion.
  const pending = open.deleteOnClose || (open.file !== undefined && server.pendingDeletes.has(pendingDeleteKey(open)));
  const links = Math.max(0, info.links - (pending && open.stream === undefined ? 1 : 0));
  return {
    AllocationSize: BigInt(info.allocationSize),
    EndOfFile: BigInt(info.size),
    NumberOfLinks: links,
    DeletePending: pending || links === 0,
    Directory: info.isDirectory,
  };
}

/**
 * Classes that need FILE_READ_ATTRIBUTES on the open (MS-SMB2 3.3.5.20.1: FileBasicInformation,
 * FileAllInformation, the pipe classes, FileNetworkOpenInformation, FileAttributeTagInformation).
 * Every other class is answered whatever the open was granted, as Windows does.
 */
const NEEDS_READ_ATTRIBUTES: ReadonlySet<number> = new Set([
  FileInfoClass.FileBasicInformation,
  FileInfoClass.FileAllInformation,
  FileInfoClass.FilePipeInformation,
  FileInfoClass.FilePipeLocalInformation,
  FileInfoClass.FilePipeRemoteInformation,
  FileInfoClass.FileNetworkOpenInformation,
  FileInfoClass.FileAttributeTagInformation,
]);

async function queryFile(ctx: RequestContext, open: Open, cls: number, outputLength: number): Promise<Reply> {
  if (open.kind === 'pipe') {
    if (cls !== FileInfoClass.FileStandardInformation) return { status: NtStatus.INVALID_PARAMETER };
    const data = encodeFileStandardInformation({ AllocationSize: 4096n, EndOfFile: 0n, NumberOfLinks: 1, DeletePending: true, Directory: false });
    return fit(data, outputLength, cls);
  }
  const rule = fileInfoQueryRule(cls);
  if (!rule) return { status: cls === 0 || cls > 0x4f ? NtStatus.INVALID_INFO_CLASS : NtStatus.NOT_SUPPORTED };
  if (NEEDS_READ_ATTRIBUTES.has(cls) && !(open.grantedAccess & AccessMask.FILE_READ_ATTRIBUTES)) return { status: NtStatus.ACCESS_DENIED };
  // MS-SMB2 3.3.5.20.1: FileIdInformation only for the 3.x dialects; FileNormalizedNameInformation
  // only for 3.1.1. Checked before the buffer size, as Windows does.
  const dialect = ctx.conn.negotiated!.dialect;
  if (cls === FileInfoClass.FileIdInformation && dialect < Dialect.SMB300) return { status: NtStatus.NOT_SUPPORTED };
  if (cls === FileInfoClass.FileNormalizedNameInformation && dialect < Dialect.SMB311) return { status: NtStatus.NOT_SUPPORTED };
  const info = await open.handle!.info();
  let data: Buffer;
  switch (cls) {
    case FileInfoClass.FileBasicInformation:
      data = encodeFileBasicInformation(basic(info));
      break;
    case FileInfoClass.FileStandardInformation:
      data = encodeFileStandardInformation(standard(ctx.conn.server, open, info));
      break;
    case FileInfoClass.FileInternalInformation:
      data = encodeFileInternalInformation({ IndexNumber: info.fileId });
      break;
    case FileInfoClass.FileEaInformation:
      // MS-FSA 2.1.5.12.10: the packed size of the EAs, plus 4 for the header when there are any.
      data = encodeFileEaInformation({ EaSize: eaSizeOf(info.eaBytes ?? 0) });
      break;
    case FileInfoClass.FileAccessInformation:
      data = encodeFileAccessInformation({ AccessFlags: open.grantedAccess });
      break;
    case FileInfoClass.FileNameInformation:
      data = encodeFileNameInformation({ FileName: shareRelativeName(open) });
      break;
    case FileInfoClass.FileNormalizedNameInformation:
      // MS-FSA 2.1.5.12.20: the path from the share root with every component in its stored case,
      // no leading backslash (empty for the root), and the stream name when the open is on a named
      // stream ("dir\\file:stream"; the default "::$DATA" never appears).
      data = encodeFileNormalizedNameInformation({
        FileName: open.path.split('/').join('\\') + (open.stream !== undefined ? `:${open.stream}` : ''),
      });
      break;
    case FileInfoClass.FileAlternateNameInformation: {
      // MS-FSA 2.1.5.12.3: the 8.3 name of the open's link (fscc/short-name.ts); the root has none.
      const short = shortNameOf(open.path.slice(open.path.lastIndexOf('/') + 1));
      if (short === undefined) return { status: NtStatus.OBJECT_NAME_NOT_FOUND };
      data = encodeFileAlternateNameInformation({ FileName: short });
      break;
    }
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
        StandardInformation: standard(ctx.conn.server, open, info),
        IndexNumber: info.fileId,
        EaSize: eaSizeOf(info.eaBytes ?? 0),
        AccessFlags: open.grantedAccess,
        CurrentByteOffset: open.position,
        Mode: open.mode,
        AlignmentRequirement: 0,
        FileName: shareRelativeName(open),
      });
      break;
    case FileInfoClass.FileStreamInformation: {
      // MS-FSCC 2.4.49: the unnamed data stream (files only) then every named stream as ":name:$DATA".
      if (outputLength < rule.min) return { status: NtStatus.INFO_LENGTH_MISMATCH };
      const named = await open.handle!.listStreams();
      let base = info;
      if (open.stream !== undefined) base = (await open.tree.share.ios!.stat(open.path)).info;
      const streams = [
        ...(base.isDirectory ? [] : [{ StreamName: '::$DATA', StreamSize: BigInt(base.size), StreamAllocationSize: BigInt(base.allocationSize) }]),
        ...named.map((s) => ({ StreamName: `:${s.name}:$DATA`, StreamSize: BigInt(s.size), StreamAllocationSize: BigInt(s.allocationSize) })),
      ];
      // MS-FSA 2.1.5.12.29: whole entries while they fit; a cut list is STATUS_BUFFER_OVERFLOW.
      const out = encodeFileStreamInformation(streams, outputLength);
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

/** Open.NextEaEntry (MS-FSA 2.1.5.12.12): where a FileFullEaInformation scan of an open resumes. */
const nextEaEntry = new WeakMap<Open, number>();

/**
 * FileFullEaInformation (MS-SMB2 3.3.5.20.1, MS-FSA 2.1.5.12.12): the EAs named in the
 * FILE_GET_EA_INFORMATION list of the InputBuffer (a name the file lacks comes back with an empty
 * value), or else the open's EA scan from Open.NextEaEntry (SL_RESTART_SCAN: from the first;
 * SL_INDEX_SPECIFIED: from the 1-based EaIndex in AdditionalInformation), whole entries only.
 */
async function queryEas(open: Open, req: QueryInfoRequest): Promise<Reply> {
  if (open.kind === 'pipe') return { status: NtStatus.INVALID_PARAMETER };
  const handle = open.handle!;
  if (handle.getEas === undefined) return { status: NtStatus.EAS_NOT_SUPPORTED };
  if (!(open.grantedAccess & AccessMask.FILE_READ_EA)) return { status: NtStatus.ACCESS_DENIED };
  const stored = await handle.getEas();
  if (stored.length === 0) return { status: NtStatus.NO_EAS_ON_FILE };
  const all: FullEa[] = stored.map((ea) => ({ Flags: ea.flags, EaName: ea.name, EaValue: ea.value }));
  const single = (req.Flags & QueryInfoFlags.SL_RETURN_SINGLE_ENTRY) !== 0;
  let wanted: FullEa[];
  let start = 0;
  if (req.InputBuffer.length > 0) {
    let names: string[];
    try {
      names = decodeGetEaList(req.InputBuffer);
    } catch (err) {
      if (err instanceof MalformedError) return { status: NtStatus.EA_LIST_INCONSISTENT };
      throw err;
    }
    wanted = names.map((n) => all.find((ea) => ea.EaName.toUpperCase() === n.toUpperCase()) ?? { Flags: 0, EaName: n, EaValue: Buffer.alloc(0) });
  } else {
    if (req.Flags & QueryInfoFlags.SL_INDEX_SPECIFIED) {
      const index = req.AdditionalInformation;
      if (index === 0 || index > all.length) return { status: NtStatus.NONEXISTENT_EA_ENTRY };
      start = index - 1;
    } else if (!(req.Flags & QueryInfoFlags.SL_RESTART_SCAN)) {
      start = nextEaEntry.get(open) ?? 0;
    }
    if (start >= all.length) return { status: NtStatus.NO_MORE_EAS };
    wanted = all.slice(start);
  }
  const out = encodeFullEaList(wanted, req.OutputBufferLength, single ? 1 : undefined);
  if (out.count === 0) return { status: NtStatus.BUFFER_TOO_SMALL };
  if (req.InputBuffer.length === 0) nextEaEntry.set(open, start + out.count);
  const more = out.count < wanted.length && !single;
  return { status: more ? NtStatus.BUFFER_OVERFLOW : NtStatus.SUCCESS, body: queryInfoResponse(out.data) };
}

function fit(data: Buffer, outputLength: number, cls: number): Reply {
  const rule = fileInfoQueryRule(cls)!;
  const r = fitQueryOutput(data, outputLength, rule);
  if (r.kind === 'mismatch') return { status: NtStatus.INFO_LENGTH_MISMATCH };
  return { status: r.kind === 'overflow' ? NtStatus.BUFFER_OVERFLOW : NtStatus.SUCCESS, body: queryInfoResponse(r.data) };
}

/**
 * The volume object id (FileFsObjectIdInformation, MS-FSCC 2.5.6): a GUID derived from what
 * identifies the volume (serial, creation time, label), so it is stable and the same on every node.
 */
function volumeObjectId(fs: FsStats): Buffer {
  return createHash('sha256').update(`tessera-volume:${fs.volumeSerial}:${fs.createdNs}:${fs.label}`).digest().subarray(0, 16);
}

async function queryFs(ctx: RequestContext, open: Open, cls: number, outputLength: number): Promise<Reply> {
  // MS-FSA 2.1.5.13: the fixed size of each class; below it STATUS_INFO_LENGTH_MISMATCH, and
  // variable ones (volume label, file system name) are cut with STATUS_BUFFER_OVERFLOW.
  const rule = fsInfoQueryRule(cls);
  if (!rule || cls === FsInfoClass.FileFsLabelInformation) {
    return { status: cls === 0 || cls > 16 ? NtStatus.INVALID_INFO_CLASS : NtStatus.NOT_SUPPORTED };
  }
  if (open.kind === 'pipe') return { status: NtStatus.INVALID_PARAMETER };
  if (outputLength < rule.min) return { status: NtStatus.INFO_LENGTH_MISMATCH };
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
          // Both drivers keep named streams (IOS SPI 2), and EAs where the driver has them.
          FileSystemAttributes.FILE_NAMED_STREAMS |
          (open.handle?.getEas !== undefined ? FileSystemAttributes.FILE_SUPPORTS_EXTENDED_ATTRIBUTES : 0) |
          // FILE_SUPPORTS_SPARSE_FILES stays off until FSCTL_SET_SPARSE and allocated-range queries are served.
          (fs.caseSensitive ? FileSystemAttributes.FILE_CASE_SENSITIVE_SEARCH : 0),
        MaximumComponentNameLength: fs.nameUnitsMax,
        FileSystemName: 'NTFS',
      });
      break;
    case FsInfoClass.FileFsControlInformation:
      // MS-FSCC 2.5.2: quotas are neither tracked nor enforced (FileSystemControlFlags 0, no default
      // threshold or limit); the content-indexing fields SHOULD be 0.
      data = encodeFileFsControlInformation({
        FreeSpaceStartFiltering: 0n,
        FreeSpaceThreshold: 0n,
        FreeSpaceStopFiltering: 0n,
        DefaultQuotaThreshold: QUOTA_NONE,
        DefaultQuotaLimit: QUOTA_NONE,
        FileSystemControlFlags: 0,
      });
      break;
    case FsInfoClass.FileFsObjectIdInformation:
      // MS-FSA 2.1.5.13.8: ObjectId is the volume's id; no ExtendedInfo was ever written (48 zero bytes).
      data = encodeFileFsObjectIdInformation({ ObjectId: volumeObjectId(fs) });
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
  const r = fitQueryOutput(data, outputLength, rule);
  if (r.kind === 'mismatch') return { status: NtStatus.INFO_LENGTH_MISMATCH };
  return { status: r.kind === 'overflow' ? NtStatus.BUFFER_OVERFLOW : NtStatus.SUCCESS, body: queryInfoResponse(r.data) };
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
