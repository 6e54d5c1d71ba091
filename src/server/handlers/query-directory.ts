// QUERY_DIRECTORY (MS-SMB2 3.3.5.18; enumeration rules of MS-FSA 2.1.5.6.3).

import { NtStatus } from '../../protocol/ntstatus.js';
import { decodeQueryDirectoryRequest, QueryDirectoryFlags, queryDirectoryResponse } from '../../protocol/query-directory.js';
import { AccessMask } from '../../protocol/create.js';
import { DirEntryWriter, isDirInfoClassSupported, type DirEntry as WireDirEntry } from '../../protocol/fscc/dir-info.js';
import { matchPattern } from '../../protocol/fscc/wildcard.js';
import { dirShortNameOf } from '../../protocol/fscc/short-name.js';
import { eaSizeOf } from '../../protocol/fscc/ea.js';
import { FileInfoClass } from '../../protocol/fscc/file-info.js';
import { IosError, type FileInfo } from '../../ios/spi.js';
import { limits } from '../../base/limits.js';
import type { Reply, RequestContext } from '../context.js';
import { maxTransact, parentOf, wireAttributes, wireTimes } from '../files.js';
import type { DirectoryScan, Open } from '../state.js';

const WILDCARDS = /[*?<>"]/;
const LIST_PAGE = 512;

/** Classes with a ShortName field (MS-FSCC 2.4.8, 2.4.17). */
const WITH_SHORT_NAME: ReadonlySet<number> = new Set([FileInfoClass.FileBothDirectoryInformation, FileInfoClass.FileIdBothDirectoryInformation]);

function toWire(name: string, info: FileInfo, infoClass: number): WireDirEntry {
  const entry: WireDirEntry = {
    FileName: name,
    ...wireTimes(info),
    EndOfFile: BigInt(info.size),
    AllocationSize: BigInt(info.allocationSize),
    FileAttributes: wireAttributes(info),
    FileId: info.fileId,
    EaSize: eaSizeOf(info.eaBytes ?? 0),
  };
  // The 8.3 alias FileAlternateNameInformation reports too (fscc/short-name.ts); none for 8.3 names.
  if (WITH_SHORT_NAME.has(infoClass)) entry.ShortName = dirShortNameOf(name);
  return entry;
}

async function startScan(open: Open, pattern: string): Promise<DirectoryScan> {
  const scan: DirectoryScan = { pattern, cookie: undefined, pending: [], dotsToEmit: 2, finished: false, returnedAny: false };
  if (!WILDCARDS.test(pattern)) {
    // A name without wildcards is a lookup, not a scan: one stat instead of reading the directory
    // (clients probe single names this way; directories may hold 100k entries).
    scan.dotsToEmit = 0;
    scan.finished = true;
    if (pattern === '.' || pattern === '..') {
      const info = await open.handle!.info();
      scan.pending.push({ name: pattern, info });
      return scan;
    }
    const ios = open.tree.share.ios!;
    try {
      const found = await ios.stat(open.path === '' ? pattern : `${open.path}/${pattern}`);
      const name = found.path.slice(found.path.lastIndexOf('/') + 1);
      scan.pending.push({ name, info: found.info });
    } catch (err) {
      if (!(err instanceof IosError) || (err.code !== 'ENOENT' && err.code !== 'EINVAL' && err.code !== 'ENOTDIR')) throw err;
    }
  }
  return scan;
}

async function refill(open: Open, scan: DirectoryScan): Promise<void> {
  if (scan.dotsToEmit > 0) {
    const self = await open.handle!.info();
    let parent = self;
    if (open.path !== '') {
      try {
        parent = (await open.tree.share.ios!.stat(parentOf(open.path))).info;
      } catch {
        parent = self;
      }
    }
    if (matchPattern(scan.pattern, '.')) scan.pending.push({ name: '.', info: self });
    if (matchPattern(scan.pattern, '..')) scan.pending.push({ name: '..', info: parent });
    scan.dotsToEmit = 0;
    if (scan.pending.length > 0) return;
  }
  while (scan.pending.length === 0 && !scan.finished) {
    const page = await open.handle!.list(scan.cookie, LIST_PAGE);
    scan.cookie = page.cookie;
    if (page.cookie === undefined) scan.finished = true;
    for (const e of page.entries) if (matchPattern(scan.pattern, e.name)) scan.pending.push(e);
  }
}

export async function handleQueryDirectory(ctx: RequestContext): Promise<Reply> {
  const req = decodeQueryDirectoryRequest(ctx.msg);
  const open = ctx.open!;
  if (open.kind !== 'directory') return { status: NtStatus.INVALID_PARAMETER };
  if (!(open.grantedAccess & AccessMask.FILE_LIST_DIRECTORY)) return { status: NtStatus.ACCESS_DENIED };
  if (!isDirInfoClassSupported(req.FileInformationClass)) return { status: NtStatus.INVALID_INFO_CLASS };
  // MS-SMB2 3.3.5.18: OutputBufferLength above MaxTransactSize is invalid.
  if (req.OutputBufferLength > maxTransact(ctx.conn)) return { status: NtStatus.INVALID_PARAMETER };
  const maxBytes = Math.min(req.OutputBufferLength, limits.outputBufferBytesMax);

  const restart = (req.Flags & (QueryDirectoryFlags.SMB2_RESTART_SCANS | QueryDirectoryFlags.SMB2_REOPEN)) !== 0;
  const pattern = req.FileName === '' ? '*' : req.FileName;
  if (!open.scan || restart || (req.FileName !== '' && !open.scan.returnedAny && open.scan.pattern !== pattern)) {
    open.scan = await startScan(open, restart || !open.scan ? pattern : open.scan.pattern);
  }
  const scan = open.scan;
  const writer = new DirEntryWriter(req.FileInformationClass, maxBytes);
  const single = (req.Flags & QueryDirectoryFlags.SMB2_RETURN_SINGLE_ENTRY) !== 0;
  for (;;) {
    if (scan.pending.length === 0) await refill(open, scan);
    const next = scan.pending[0];
    if (!next) break;
    if (!writer.tryAdd(toWire(next.name, next.info, req.FileInformationClass))) break;
    scan.pending.shift();
    if (single || writer.count >= limits.directoryEntriesPerReplyMax) break;
  }
  if (writer.count === 0) {
    if (scan.pending.length > 0) return { status: NtStatus.INFO_LENGTH_MISMATCH };
    // MS-FSA 2.1.5.6.3: nothing ever matched → NO_SUCH_FILE; the end of a scan → NO_MORE_FILES.
    return { status: scan.returnedAny ? NtStatus.NO_MORE_FILES : NtStatus.NO_SUCH_FILE };
  }
  scan.returnedAny = true;
  return { status: NtStatus.SUCCESS, body: queryDirectoryResponse(writer.finish()) };
}
