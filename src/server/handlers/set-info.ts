// SET_INFO (MS-SMB2 3.3.5.21; MS-FSA 2.1.5.15 for file classes, 2.1.5.17 for security).

import { NtStatus } from '../../protocol/ntstatus.js';
import { decodeSetInfoRequest, setInfoResponse } from '../../protocol/set-info.js';
import { InfoType } from '../../protocol/query-info.js';
import { AccessMask } from '../../protocol/create.js';
import {
  decodeFileAllocationInformation,
  decodeFileBasicInformation,
  decodeFileDispositionInformation,
  decodeFileDispositionInformationEx,
  decodeFileEndOfFileInformation,
  decodeFileModeInformation,
  decodeFilePositionInformation,
  decodeFileRenameInformation,
  decodeFileValidDataLengthInformation,
  DispositionFlags,
  FileInfoClass,
  fileInfoSetMinBytes,
} from '../../protocol/fscc/file-info.js';
import { mergeSecurityDescriptor, parseSecurityDescriptor } from '../../protocol/security-descriptor.js';
import { checkEaList, EA_LIST_BYTES_MAX, packedEaBytes } from '../../protocol/fscc/ea.js';
import { filetimeToUnixNs } from '../../base/clock.js';
import { limits } from '../../base/limits.js';
import { FILE_ATTR_SETTABLE, FileAttr, IosError, type SetInfo } from '../../ios/spi.js';
import type { Reply, RequestContext } from '../context.js';
import { breakForSetInfo, channelSequenceGate, renameGate, setDeletePending } from '../opens.js';
import { parentOf, parseSmbPath } from '../files.js';
import { CompletionFilter, FileAction } from '../../protocol/change-notify.js';
import type { Open } from '../state.js';
import type { NotifyHub } from '../notify.js';
import { statusForIosError } from '../status-map.js';
import { defaultFileSecurityDescriptor } from '../../protocol/security-descriptor.js';

const body = setInfoResponse();
const ok: Reply = { status: NtStatus.SUCCESS, body };
const SECURITY_OWNER = 0x1;
const SECURITY_GROUP = 0x2;
const SECURITY_DACL = 0x4;
const SECURITY_SACL = 0x8;
const OFFSET_MAX = BigInt(Number.MAX_SAFE_INTEGER);

export async function handleSetInfo(ctx: RequestContext): Promise<Reply> {
  const req = decodeSetInfoRequest(ctx.msg);
  const open = ctx.open!;
  if (open.kind === 'pipe') return { status: NtStatus.INVALID_PARAMETER };
  if (req.Buffer.length > limits.transactBytesMax) return { status: NtStatus.INVALID_PARAMETER };
  if (open.tree.share.readOnly) return { status: NtStatus.MEDIA_WRITE_PROTECTED };
  const gate = channelSequenceGate(ctx.conn.server, open, ctx.conn.negotiated!.dialect, ctx.hdr.ChannelSequence);
  const stale = gate === undefined ? undefined : await gate;
  if (stale !== undefined) return { status: stale };
  switch (req.InfoType) {
    case InfoType.SMB2_0_INFO_FILE:
      return setFile(ctx, open, req.FileInfoClass, req.Buffer);
    case InfoType.SMB2_0_INFO_SECURITY:
      ctx.conn.server.forgetSecurity(open.tree.share);
      return setSecurity(open, req.AdditionalInformation, req.Buffer, ctx.conn.server.notify);
    case InfoType.SMB2_0_INFO_FILESYSTEM:
      return { status: NtStatus.NOT_SUPPORTED };
    case InfoType.SMB2_0_INFO_QUOTA:
      return { status: NtStatus.NOT_SUPPORTED };
    default:
      return { status: NtStatus.INVALID_PARAMETER };
  }
}

function need(open: Open, bits: number): boolean {
  return (open.grantedAccess & bits) !== 0;
}

/**
 * FileFullEaInformation (MS-SMB2 3.3.5.21.1, MS-FSA 2.1.5.15.5): each EA of the list replaces the
 * one of its name, an empty value removes it; the whole list is checked before anything changes.
 */
async function setEas(ctx: RequestContext, open: Open, buf: Buffer): Promise<Reply> {
  const handle = open.handle!;
  if (handle.getEas === undefined || handle.setEas === undefined) return { status: NtStatus.EAS_NOT_SUPPORTED };
  if (!need(open, AccessMask.FILE_WRITE_EA)) return { status: NtStatus.ACCESS_DENIED };
  const checked = checkEaList(buf);
  if (!checked.ok) return { status: checked.status };
  const list = checked.eas;
  // MS-FSA 2.1.5.15.5: more than 64 KiB - 5 packed bytes afterwards is STATUS_EA_TOO_LARGE, nothing changed.
  const after = new Map((await handle.getEas()).map((ea) => [ea.name.toUpperCase(), packedEaBytes({ EaName: ea.name, EaValue: ea.value })]));
  for (const ea of list) {
    if (ea.EaValue.length === 0) after.delete(ea.EaName.toUpperCase());
    else after.set(ea.EaName.toUpperCase(), packedEaBytes(ea));
  }
  let total = 0;
  for (const n of after.values()) total += n;
  if (total > EA_LIST_BYTES_MAX) return { status: NtStatus.EA_TOO_LARGE };
  try {
    await handle.setEas(list.map((ea) => ({ name: ea.EaName, flags: ea.Flags, value: ea.EaValue })));
  } catch (err) {
    if (err instanceof IosError && err.code === 'EINVAL') return { status: NtStatus.EA_TOO_LARGE };
    throw err;
  }
  ctx.conn.server.notify.emit(open.tree.share, open.path, FileAction.FILE_ACTION_MODIFIED, open.kind === 'directory' ? 'directory' : 'file', CompletionFilter.FILE_NOTIFY_CHANGE_EA);
  return ok;
}

async function setFile(ctx: RequestContext, open: Open, cls: number, buf: Buffer): Promise<Reply> {
  if (cls === FileInfoClass.FileFullEaInformation) return setEas(ctx, open, buf);
  const min = fileInfoSetMinBytes(cls);
  if (min === undefined) return { status: cls === 0 || cls > 0x4f ? NtStatus.INVALID_INFO_CLASS : NtStatus.NOT_SUPPORTED };
  if (buf.length < min) return { status: NtStatus.INFO_LENGTH_MISMATCH };
  const handle = open.handle!;
  switch (cls) {
    case FileInfoClass.FileBasicInformation: {
      if (!need(open, AccessMask.FILE_WRITE_ATTRIBUTES)) return { status: NtStatus.ACCESS_DENIED };
      const v = decodeFileBasicInformation(buf);
      // MS-FSA 2.1.5.15.2: DIRECTORY on a file, or TEMPORARY on a directory, is invalid.
      if (v.FileAttributes & FileAttr.DIRECTORY && open.kind !== 'directory') return { status: NtStatus.INVALID_PARAMETER };
      if (v.FileAttributes & FileAttr.TEMPORARY && open.kind === 'directory') return { status: NtStatus.INVALID_PARAMETER };
      for (const t of [v.CreationTime, v.LastAccessTime, v.LastWriteTime, v.ChangeTime]) {
        if (t < -2n) return { status: NtStatus.INVALID_PARAMETER };
      }
      // MS-FSA 2.1.5.15.2 / MS-FSCC 2.4.7: 0 leaves a time alone; -1 stops this open's automatic
      // updates of it (Open.UserSet*Time) and -2 restarts them; a value sets it (and stops them: the
      // driver's business, spi.ts "Times"). Creation time is never updated automatically.
      const change: SetInfo = {};
      const suspend: NonNullable<SetInfo['suspend']> = {};
      const mode = (t: bigint): 'keep' | 'suspend' | 'resume' | 'set' => (t === 0n ? 'keep' : t === -1n ? 'suspend' : t === -2n ? 'resume' : 'set');
      if (mode(v.CreationTime) === 'set') change.creationTimeNs = filetimeToUnixNs(v.CreationTime);
      const timed = [
        [v.LastAccessTime, 'lastAccessTimeNs', 'lastAccess'],
        [v.LastWriteTime, 'lastWriteTimeNs', 'lastWrite'],
        [v.ChangeTime, 'changeTimeNs', 'change'],
      ] as const;
      for (const [t, field, which] of timed) {
        const m = mode(t);
        if (m === 'set') change[field] = filetimeToUnixNs(t);
        else if (m !== 'keep') suspend[which] = m === 'suspend';
      }
      if (Object.keys(suspend).length > 0) change.suspend = suspend;
      if (v.FileAttributes !== 0) {
        // MS-FSA 2.1.5.15.2: the root directory's HIDDEN and SYSTEM bits cannot be changed.
        const settable = open.path === '' ? FILE_ATTR_SETTABLE & ~(FileAttr.HIDDEN | FileAttr.SYSTEM) : FILE_ATTR_SETTABLE;
        const current = settable === FILE_ATTR_SETTABLE ? 0 : (await handle.info()).attributes & (FileAttr.HIDDEN | FileAttr.SYSTEM);
        change.attributes = (v.FileAttributes & settable) | current;
      }
      await handle.setInfo(change);
      const bits =
        (change.attributes !== undefined ? CompletionFilter.FILE_NOTIFY_CHANGE_ATTRIBUTES : 0) |
        (change.lastWriteTimeNs !== undefined ? CompletionFilter.FILE_NOTIFY_CHANGE_LAST_WRITE : 0) |
        (change.lastAccessTimeNs !== undefined ? CompletionFilter.FILE_NOTIFY_CHANGE_LAST_ACCESS : 0) |
        (change.creationTimeNs !== undefined ? CompletionFilter.FILE_NOTIFY_CHANGE_CREATION : 0);
      if (bits) ctx.conn.server.notify.emit(open.tree.share, open.path, FileAction.FILE_ACTION_MODIFIED, 'file', bits);
      return ok;
    }
    case FileInfoClass.FileRenameInformation: {
      // MS-FSA 2.1.5.15.13: renaming needs DELETE access on the source.
      if (!need(open, AccessMask.DELETE)) return { status: NtStatus.ACCESS_DENIED };
      const v = decodeFileRenameInformation(buf);
      if (v.RootDirectory !== 0n) return { status: NtStatus.INVALID_PARAMETER };
      let name = v.FileName;
      if (name.startsWith(':')) {
        // MS-FSA 2.1.5.14.11.1: ":newname[:$DATA]" renames the open's stream within its object.
        const target = name.slice(1).replace(/:\$DATA$/i, '');
        if (open.stream === undefined || target === '' || target.includes(':')) return { status: NtStatus.INVALID_PARAMETER };
        try {
          await open.tree.share.ios!.renameStream(open.path, open.stream, target, v.ReplaceIfExists);
        } catch (err) {
          if (err instanceof IosError) return { status: err.code === 'EEXIST' ? NtStatus.OBJECT_NAME_COLLISION : statusForIosError(err.code) };
          throw err;
        }
        open.stream = target;
        return ok;
      }
      if (open.stream !== undefined) return { status: NtStatus.INVALID_PARAMETER };
      if (name.startsWith('\\')) name = name.slice(1);
      const parsed = parseSmbPath(name);
      if (!parsed.ok) return { status: parsed.status };
      if (parsed.path === '' || open.path === '') return { status: NtStatus.INVALID_PARAMETER };
      const gate = await renameGate(ctx.conn.server, open, parsed.path, v.ReplaceIfExists);
      if (gate !== undefined) return { status: gate };
      // MS-FSA 2.1.4.12 (rename): other holders lose handle caching; a batch oplock breaks to none.
      await breakForSetInfo(ctx.conn.server, open, 'handle', ctx.signal);
      try {
        await open.tree.share.ios!.rename(open.path, parsed.path, v.ReplaceIfExists);
      } catch (err) {
        if (err instanceof IosError) {
          if (err.code === 'EEXIST') return { status: NtStatus.OBJECT_NAME_COLLISION };
          if (err.code === 'ENOENT') return { status: NtStatus.OBJECT_PATH_NOT_FOUND };
          if (err.code === 'EISDIR' || err.code === 'ENOTEMPTY') return { status: NtStatus.ACCESS_DENIED };
          return { status: statusForIosError(err.code) };
        }
        throw err;
      }
      const found = await open.tree.share.ios!.stat(parsed.path);
      const kind = open.kind === 'directory' ? 'directory' : 'file';
      const hub = ctx.conn.server.notify;
      const share = open.tree.share;
      // MS-FSA 2.1.5.14.11: a rename within one directory is OLD_NAME/NEW_NAME; a move is REMOVED/ADDED.
      if (parentOf(open.path).toUpperCase() === parentOf(found.path).toUpperCase()) {
        hub.emit(share, open.path, FileAction.FILE_ACTION_RENAMED_OLD_NAME, kind);
        hub.emit(share, found.path, FileAction.FILE_ACTION_RENAMED_NEW_NAME, kind);
      } else {
        hub.emit(share, open.path, FileAction.FILE_ACTION_REMOVED, kind);
        hub.emit(share, found.path, FileAction.FILE_ACTION_ADDED, kind);
      }
      open.path = found.path;
      hub.renamed(open);
      return ok;
    }
    case FileInfoClass.FileDispositionInformation:
    case FileInfoClass.FileDispositionInformationEx: {
      if (!need(open, AccessMask.DELETE)) return { status: NtStatus.ACCESS_DENIED };
      const deletePending =
        cls === FileInfoClass.FileDispositionInformation
          ? decodeFileDispositionInformation(buf).DeletePending
          : (decodeFileDispositionInformationEx(buf).Flags & DispositionFlags.FILE_DISPOSITION_DELETE) !== 0;
      if (deletePending) {
        // MS-FSA 2.1.5.15.3: read-only files, the root and non-empty directories cannot be deleted.
        if (open.path === '') return { status: NtStatus.CANNOT_DELETE };
        const info = await handle.info();
        if (!info.isDirectory && info.attributes & FileAttr.READONLY) return { status: NtStatus.CANNOT_DELETE };
        if (info.isDirectory) {
          const page = await handle.list(undefined, 1);
          if (page.entries.length > 0) return { status: NtStatus.DIRECTORY_NOT_EMPTY };
        }
      }
      await setDeletePending(ctx.conn.server, open, deletePending, ctx.signal);
      return ok;
    }
    case FileInfoClass.FilePositionInformation: {
      const v = decodeFilePositionInformation(buf);
      if (v.CurrentByteOffset > OFFSET_MAX) return { status: NtStatus.INVALID_PARAMETER };
      open.position = v.CurrentByteOffset;
      return ok;
    }
    case FileInfoClass.FileModeInformation: {
      const v = decodeFileModeInformation(buf);
      // MS-FSA 2.1.5.15.10: only these mode bits may be set.
      if (v.Mode & ~(0x2 | 0x4 | 0x10 | 0x20) || (v.Mode & 0x30) === 0x30) return { status: NtStatus.INVALID_PARAMETER };
      open.mode = (open.mode & ~0x36) | v.Mode;
      return ok;
    }
    case FileInfoClass.FileEndOfFileInformation:
    case FileInfoClass.FileAllocationInformation: {
      if (open.kind === 'directory') return { status: NtStatus.INVALID_PARAMETER };
      if (!need(open, AccessMask.FILE_WRITE_DATA)) return { status: NtStatus.ACCESS_DENIED };
      // MS-FSA 2.1.4.12: a size change breaks other holders' read and write caching.
      await breakForSetInfo(ctx.conn.server, open, 'size', ctx.signal);
      if (cls === FileInfoClass.FileEndOfFileInformation) {
        const v = decodeFileEndOfFileInformation(buf);
        if (v.EndOfFile < 0n || v.EndOfFile > OFFSET_MAX) return { status: NtStatus.INVALID_PARAMETER };
        await handle.truncate(Number(v.EndOfFile));
      } else {
        // MS-FSA 2.1.5.15.1: an allocation below the end of file cuts the file there; the stream's
        // AllocationSize becomes the request rounded up to the cluster (the driver keeps and reports it).
        const v = decodeFileAllocationInformation(buf);
        if (v.AllocationSize < 0n || v.AllocationSize > OFFSET_MAX) return { status: NtStatus.INVALID_PARAMETER };
        const allocationSize = Number(v.AllocationSize);
        const info = await handle.info();
        if (allocationSize < info.size) await handle.truncate(allocationSize);
        await handle.setInfo({ allocationSize });
      }
      ctx.conn.server.notify.emit(open.tree.share, open.path, FileAction.FILE_ACTION_MODIFIED, 'file', CompletionFilter.FILE_NOTIFY_CHANGE_SIZE);
      return ok;
    }
    case FileInfoClass.FileValidDataLengthInformation: {
      if (open.kind === 'directory') return { status: NtStatus.INVALID_PARAMETER };
      if (!need(open, AccessMask.FILE_WRITE_DATA)) return { status: NtStatus.ACCESS_DENIED };
      const v = decodeFileValidDataLengthInformation(buf);
      const info = await handle.info();
      // MS-FSA 2.1.5.15.14: the new valid data length must lie within the file; storage zero-fills anyway.
      if (v.ValidDataLength > BigInt(info.size)) return { status: NtStatus.INVALID_PARAMETER };
      return ok;
    }
    default:
      // Hard links and short names are not served yet.
      return { status: NtStatus.NOT_SUPPORTED };
  }
}

async function setSecurity(open: Open, additional: number, buf: Buffer, notify: NotifyHub): Promise<Reply> {
  // MS-FSA 2.1.5.17: WRITE_OWNER for owner/group, WRITE_DAC for the DACL, ACCESS_SYSTEM_SECURITY for the SACL.
  if (additional & (SECURITY_OWNER | SECURITY_GROUP) && !need(open, AccessMask.WRITE_OWNER)) return { status: NtStatus.ACCESS_DENIED };
  if (additional & SECURITY_DACL && !need(open, AccessMask.WRITE_DAC)) return { status: NtStatus.ACCESS_DENIED };
  if (additional & SECURITY_SACL && !need(open, AccessMask.ACCESS_SYSTEM_SECURITY)) return { status: NtStatus.ACCESS_DENIED };
  if (buf.length > limits.securityDescriptorBytesMax) return { status: NtStatus.INVALID_PARAMETER };
  try {
    parseSecurityDescriptor(buf);
  } catch {
    return { status: NtStatus.INVALID_SECURITY_DESCR };
  }
  const handle = open.handle!;
  const old = (await handle.getSecurity()) ?? defaultFileSecurityDescriptor(open.session.sid || 'S-1-5-32-544');
  const merged = mergeSecurityDescriptor(old, buf, additional);
  await handle.setSecurity(merged);
  notify.emit(open.tree.share, open.path, FileAction.FILE_ACTION_MODIFIED, 'file', CompletionFilter.FILE_NOTIFY_CHANGE_SECURITY);
  return ok;
}
