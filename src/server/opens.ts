// Ending a disk open: CLOSE, TREE_DISCONNECT, LOGOFF, a lost connection, or the open table closing it
// on its own. The table record goes first (it decides whether this was the file's last open and
// whether a durable open outlives its connection), then the driver handle, then delete-on-close.

import { FileAction } from '../protocol/change-notify.js';
import { AccessMask, ShareAccess } from '../protocol/create.js';
import { NtStatus } from '../protocol/ntstatus.js';
import { IosError } from '../ios/spi.js';
import type { MetaErrorCode } from '../meta/opens-client.js';
import { parentOf } from './files.js';
import type { Server } from './server.js';
import type { Open, ShareDef } from './state.js';
import { statusForIosError } from './status-map.js';

/** The open table's id of a file: share and driver file id ("<SHARE>/<fileId>"). */
export function tableFileId(share: ShareDef, fileId: bigint): string {
  return `${share.name.toUpperCase()}/${fileId}`;
}

/** The table's name of a stream: '' for the unnamed data stream, named streams case-folded. */
export function tableStream(stream: string | undefined): string {
  return stream === undefined ? '' : stream.toUpperCase();
}

/** The key under which a pending delete is kept: the file, or one of its named streams. */
export function pendingDeleteKey(open: Pick<Open, 'file' | 'stream'>): string {
  return open.stream === undefined ? open.file! : `${open.file!}:${open.stream.toUpperCase()}`;
}

/** NTSTATUS for an open-table refusal (families/opens.ts names the status each code stands for). */
export function statusForRefusal(code: MetaErrorCode): number {
  switch (code) {
    case 'sharing-violation':
      return NtStatus.SHARING_VIOLATION;
    case 'exists':
      return NtStatus.DUPLICATE_OBJECTID;
    case 'stale':
      return NtStatus.FILE_FORCED_CLOSED;
    case 'unavailable':
      return NtStatus.FILE_NOT_AVAILABLE;
    case 'access-denied':
      return NtStatus.ACCESS_DENIED;
    case 'not-found':
      return NtStatus.OBJECT_NAME_NOT_FOUND;
    case 'lock-conflict':
      return NtStatus.LOCK_NOT_GRANTED;
    case 'limit':
      return NtStatus.INSUFFICIENT_RESOURCES;
    default:
      return NtStatus.INVALID_PARAMETER;
  }
}

/**
 * Ends an open. 'close' removes its table record (CLOSE, TREE_DISCONNECT, LOGOFF); 'disconnect' is a
 * lost connection (MS-SMB2 3.3.7.1): a durable or resilient open then stays in the table, with its
 * driver handle kept here, until it is reclaimed or times out. Returns the status of a
 * delete-on-close (a non-empty directory cannot be deleted: MS-FSA 2.1.5.4).
 */
export function endOpen(server: Server, open: Open, mode: 'close' | 'disconnect'): Promise<number> {
  const p = endOpenNow(server, open, mode);
  const file = open.file;
  if (file === undefined) return p;
  // Tracked from its first step on, so a create that meets this file delete-pending meanwhile can
  // wait for it (openEndsSettled).
  let byFile = ending.get(server);
  if (byFile === undefined) ending.set(server, (byFile = new Map()));
  const set = byFile.get(file) ?? new Set<Promise<unknown>>();
  byFile.set(file, set);
  set.add(p);
  const done = (): void => {
    set.delete(p);
    if (set.size === 0 && byFile.get(file) === set) byFile.delete(file);
  };
  p.then(done, done);
  return p;
}

/** endOpen calls in flight, by the open table's file id. */
const ending = new WeakMap<Server, Map<string, Set<Promise<unknown>>>>();

/**
 * Resolves once the opens of `file` whose end was in flight when called (a CLOSE, or the teardown of a
 * lost connection) have ended, with whether there were any. A create that finds the file
 * delete-pending waits for them and starts again from the name: the last handle of a
 * delete-on-close file may have been going away while the create ran, and the file is gone now
 * (MS-FSA 2.1.5.4: the delete happens when the last open is closed). Without this, a client that
 * drops its connection and opens the same name at once on another one can see STATUS_DELETE_PENDING
 * (smbtorture smb2.oplock.exclusive6 then exclusive9).
 */
export async function openEndsSettled(server: Server, file: string): Promise<boolean> {
  const set = ending.get(server)?.get(file);
  if (set === undefined || set.size === 0) return false;
  server.log.debug({ file, ending: set.size }, 'create waits for opens being closed');
  await Promise.allSettled([...set]);
  return true;
}

async function endOpenNow(server: Server, open: Open, mode: 'close' | 'disconnect'): Promise<number> {
  server.log.debug({ open: open.tableId, path: open.path, mode, closed: open.closed }, 'ending open');
  if (open.closed) return NtStatus.SUCCESS;
  open.closed = true;
  open.session.opens.delete(open.volatile);
  server.notify.forget(open);
  if (open.tableId === undefined) {
    await releaseHandle(server, open);
    return NtStatus.SUCCESS;
  }
  const table = server.openTable;
  let last = true;
  let lastOnStream = true;
  // A LOGOFF ends the session first: its client cannot acknowledge on it any more, so no waiting then.
  if (open.deleteOnClose) await breakForDeleteOnClose(server, open, mode === 'close' && open.session.state === 'valid');
  try {
    if (mode === 'disconnect') {
      const r = await table.client.disconnect(open.tableId, table.now());
      if (r.ok && !r.closed) {
        // Kept: reclaimable by DHnC/DH2C until r.expiresAt (MS-SMB2 3.3.5.9.7, 3.3.5.9.12).
        open.closed = false;
        open.disconnected = true;
        table.keepDisconnected(open, r.expiresAt ?? table.now());
        return NtStatus.SUCCESS;
      }
      const remaining = table.client.opensOf(open.file!);
      last = remaining.length === 0;
      lastOnStream = !remaining.some((o) => o.stream === tableStream(open.stream));
    } else {
      const r = await table.client.close(open.tableId, table.now());
      if (r.ok) {
        last = r.lastOpen;
        lastOnStream = r.lastOnStream;
      }
    }
  } catch (err) {
    server.log.warn({ err, path: open.path }, 'open table: closing the open failed');
  }
  table.unregister(open);
  await releaseHandle(server, open);
  return finishDelete(server, open, open.stream === undefined ? last : lastOnStream, last);
}


/**
 * An open with delete-on-close that ends (CLOSE, TREE_DISCONNECT, LOGOFF, a lost connection) deletes
 * its file once the other opens are gone: other holders' leases lose handle caching first, as a
 * delete through FileDispositionInformation breaks it (MS-FSA 2.1.4.12 case SET_INFORMATION; Windows
 * and Samba send RH->R: smbtorture lease.unlink, lease.initial_delete_*). A CLOSE waits for the
 * acknowledgments (or their timeout); a lost connection only sends the breaks.
 */
export async function breakForDeleteOnClose(server: Server, open: Open, wait: boolean): Promise<void> {
  if (open.kind === 'pipe') return;
  try {
    await breakLeaseHandles(server, open, wait);
  } catch (err) {
    server.log.warn({ err, path: open.path }, 'open table: breaking handle caching for delete-on-close failed');
  }
}

/**
 * Other holders of the open's file (stream) lose the handle caching of their leases (MS-FSA
 * 2.1.4.12, HANDLE_CACHING; MS-SMB2 3.3.4.7); with `wait`, resolves once the breaks are acknowledged
 * or timed out (or `signal` aborts). Oplocks are not touched. Used by a rename (renameGate) and by
 * delete-on-close; set-info.ts may call it for FileLinkInformation the same way.
 */
export async function breakLeaseHandles(server: Server, open: Open, wait: boolean, signal?: AbortSignal): Promise<void> {
  if (open.tableId === undefined) return;
  const table = server.openTable;
  if (!table.client.breakNeeded(open.tableId, 'lease-handle')) return;
  const r = await table.ordered(open.session, async () => {
    const b = await table.client.breakFor(open.tableId!, 'lease-handle', table.now());
    if (b.ok) await table.apply(b);
    return b;
  });
  if (r.ok && wait) await table.waitBreaks(r.waitFor, signal);
}

/** The table closed a disconnected open on its own (expiry, takeover, purge): free what it held. */
export async function endOpenClosedByTable(server: Server, open: Open): Promise<void> {
  const wasAttached = !open.closed && !open.disconnected;
  open.closed = true;
  open.session.opens.delete(open.volatile);
  server.notify.forget(open);
  await releaseHandle(server, open);
  const remaining = server.openTable.client.opensOf(open.file!);
  const last = open.stream === undefined ? remaining.length === 0 : !remaining.some((o) => o.stream === tableStream(open.stream));
  await finishDelete(server, open, last, remaining.length === 0);
  if (wasAttached) server.log.info({ path: open.path, open: open.tableId }, 'open closed by the open table (app instance takeover)');
}

async function releaseHandle(server: Server, open: Open): Promise<void> {
  try {
    await open.handle?.close();
  } catch (err) {
    server.log.warn({ err, path: open.path }, 'driver close failed');
  }
}

/**
 * MS-FSA 2.1.5.4: closing an open with DeleteOnClose marks its file (or stream) delete-pending; the
 * object goes when its last open closes.
 */
async function finishDelete(server: Server, open: Open, last: boolean, lastOfFile: boolean): Promise<number> {
  const ios = open.tree.share.ios;
  if (!ios || open.file === undefined) return NtStatus.SUCCESS;
  const status = await finishDeleteOf(server, open, last);
  // MS-FSA 2.1.5.4: a file deleted while one of its named streams is open goes when that stream's
  // last open closes (smbtorture smb2.streams.delete).
  if (open.stream === undefined || !lastOfFile || !server.pendingDeletes.has(open.file)) return status;
  return finishDeleteOf(server, { ...open, stream: undefined, deleteOnClose: false, kind: 'file' } as Open, true);
}

async function finishDeleteOf(server: Server, open: Open, last: boolean): Promise<number> {
  const ios = open.tree.share.ios!;
  const key = pendingDeleteKey(open);
  if (open.deleteOnClose) server.pendingDeletes.set(key, { path: open.path, ...(open.stream !== undefined ? { stream: open.stream } : {}) });
  const pending = server.pendingDeletes.get(key);
  if (!last && pending !== undefined && pending.stream === undefined) server.notify.deletePending(open.tree.share, pending.path);
  if (!last || pending === undefined) return NtStatus.SUCCESS;
  // The mark stays until the object is gone: a create meanwhile waits for this end (openEndsSettled)
  // instead of opening an object about to disappear under it.
  try {
    if (pending.stream !== undefined) {
      await ios.removeStream(pending.path, pending.stream);
      return NtStatus.SUCCESS;
    }
    await ios.remove(pending.path);
    server.notify.emit(open.tree.share, pending.path, FileAction.FILE_ACTION_REMOVED, open.kind === 'directory' ? 'directory' : 'file');
  } catch (err) {
    if (err instanceof IosError) {
      if (err.code === 'ENOENT') return NtStatus.SUCCESS;
      return statusForIosError(err.code);
    }
    throw err;
  } finally {
    if (server.pendingDeletes.get(key) === pending) server.pendingDeletes.delete(key);
    noteRemoved(server, key);
  }
  return NtStatus.SUCCESS;
}

/**
 * Removals by delete-on-close, by pending-delete key, numbered in order; kept for the last
 * REMOVALS_KEPT only. A create that opened an object and then finds it removed since (its handle
 * names a deleted object) starts again from the name: see removedSince().
 */
interface Removals {
  seq: number;
  at: Map<string, number>;
  /** The highest number forgotten to stay within REMOVALS_KEPT. */
  forgotten: number;
}
const REMOVALS_KEPT = 4096;
const removals = new WeakMap<Server, Removals>();

function removalsOf(server: Server): Removals {
  let r = removals.get(server);
  if (r === undefined) removals.set(server, (r = { seq: 0, at: new Map(), forgotten: 0 }));
  return r;
}

function noteRemoved(server: Server, key: string): void {
  const r = removalsOf(server);
  r.seq++;
  r.at.delete(key);
  r.at.set(key, r.seq);
  if (r.at.size > REMOVALS_KEPT) {
    const [oldest, seq] = r.at.entries().next().value as [string, number];
    r.at.delete(oldest);
    r.forgotten = Math.max(r.forgotten, seq);
  }
}

/** A mark to pass to removedSince() later. */
export function removalMark(server: Server): number {
  return removalsOf(server).seq;
}

/**
 * Whether the object with this pending-delete key (or, for a stream key, its file) was removed by a
 * delete-on-close after `mark` was taken; true also when that can no longer be told.
 */
export function removedSince(server: Server, key: string, mark: number): boolean {
  const r = removalsOf(server);
  if (r.seq === mark) return false;
  if (r.forgotten > mark) return true;
  const at = r.at.get(key);
  return at !== undefined && at > mark;
}

/**
 * What a READ or WRITE asks of the open table first: the range must not be locked against this open
 * (MS-FSA 2.1.5.3 / 2.1.5.4: STATUS_FILE_LOCK_CONFLICT), and other holders' caching is broken as the
 * operation requires (MS-FSA 2.1.4.12: READ breaks write caching, WRITE breaks read and write
 * caching), without waiting for the acknowledgments. Returns an NTSTATUS to fail with, or
 * undefined to go on. One read of the applied state when nothing is locked or cached elsewhere.
 * Answers synchronously unless breaks must be sent (no await, no AbortSignal: small I/O pays for
 * neither, and later requests on the connection cannot overtake this one meanwhile).
 */
export function ioGate(server: Server, open: Open, offset: bigint, length: number, write: boolean): number | undefined | Promise<number | undefined> {
  if (open.tableId === undefined) return undefined;
  const table = server.openTable;
  const off = offset <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(offset) : offset;
  const c = table.client.ioCheck(open.file!, open.tableId, off, length, write);
  if (c.locked) return NtStatus.FILE_LOCK_CONFLICT;
  if (!c.breakNeeded) return undefined;
  // The breaks are sent, and the I/O goes on without waiting for their acknowledgments: Windows
  // completes a write that breaks a read-handle lease at once (the acknowledgment is still
  // required, and times out as usual).
  const tableId = open.tableId;
  return (async () => {
    const r = await table.client.breakFor(tableId, write ? 'write' : 'read', table.now());
    if (r.ok) await table.apply(r);
    return undefined;
  })();
}

/**
 * The oplock and lease breaks a SET_INFO makes before it changes the file (MS-FSA 2.1.4.12 case
 * SET_INFORMATION, called from 2.1.5.15): 'size' for FileEndOfFileInformation and
 * FileAllocationInformation (other holders lose read and write caching; level II oplocks, this
 * open's own included, break to none), 'handle' for FileRenameInformation, FileLinkInformation and
 * FileDispositionInformation with DeletePending (other holders lose handle caching; a batch oplock
 * breaks to none). Waits for the acknowledgments the breaks need (or their timeout, or `signal`).
 */
export async function breakForSetInfo(server: Server, open: Open, op: 'size' | 'handle', signal?: AbortSignal): Promise<void> {
  if (open.tableId === undefined) return;
  const table = server.openTable;
  const kind = op === 'size' ? 'write' : 'handle';
  if (!table.client.breakNeeded(open.tableId, kind)) return;
  const r = await table.ordered(open.session, async () => {
    const b = await table.client.breakFor(open.tableId!, kind, table.now());
    if (b.ok) await table.apply(b);
    return b;
  });
  if (!r.ok) return;
  await table.waitBreaks(r.waitFor, signal);
}

/**
 * The other open-table checks of a rename (MS-FSA 2.1.5.14.11), made before the driver renames:
 * - a directory with open files below it cannot be renamed (STATUS_ACCESS_DENIED; smbtorture
 *   smb2.rename.rename_dir_openfile);
 * - the destination directory's opens (renameTargetConflict);
 * - a replaced target that is open cannot be replaced (STATUS_ACCESS_DENIED).
 * Opens below a directory are looked up among this node's opens (a cluster-wide lookup by path comes
 * with the cluster issue).
 */
export async function renameGate(server: Server, open: Open, targetPath: string, replace: boolean): Promise<number | undefined> {
  const share = open.tree.share;
  const ios = share.ios;
  if (!ios || open.tableId === undefined) return undefined;
  // MS-FSA 2.1.4.12 case SET_INFORMATION (FileRenameInformation), first of all: other holders' leases
  // on the file lose handle caching, and the rename waits for their acknowledgments (smbtorture
  // lease.rename_wait, lease.v2_rename; the break goes out before later requests of the session are
  // answered). Oplocks are left to the oplock rules of the rename.
  await breakLeaseHandles(server, open, true);
  if (open.kind === 'directory') {
    const prefix = open.path.toUpperCase() + '/';
    for (const s of server.sessionsOpenOn(share)) {
      for (const o of s.opens.values()) if (o !== open && !o.closed && o.path.toUpperCase().startsWith(prefix)) return NtStatus.ACCESS_DENIED;
    }
  }
  const parentConflict = await renameTargetConflict(server, open, targetPath);
  if (parentConflict !== undefined) return parentConflict;
  if (replace) {
    try {
      const t = await ios.stat(targetPath);
      if (t.info.fileId !== open.handle?.fileId) {
        if (server.openTable.client.opensOf(tableFileId(share, t.info.fileId)).length > 0) return NtStatus.ACCESS_DENIED;
      }
    } catch (err) {
      if (!(err instanceof IosError)) throw err;
    }
  }
  return undefined;
}

/**
 * A rename of a file or directory (not of a stream) opens the directory that receives the new name
 * for adding an entry, sharing read and write only (Windows' I/O manager opens the rename target so;
 * smbtorture smb2.oplock.exclusive6, batch19, batch20, smb2.rename.*_delete_access). That open meets
 * the sharing check of MS-FSA 2.1.5.1.2.2 with the directory's opens: one with DELETE access, or one
 * with FILE_ADD_FILE that does not share write, fails the rename with STATUS_SHARING_VIOLATION
 * before any oplock is broken. `target` is the new path (share-relative, '/'-separated). Returns the
 * status to fail with, or undefined.
 */
export async function renameTargetConflict(server: Server, open: Open, target: string): Promise<number | undefined> {
  if (open.stream !== undefined || open.tableId === undefined) return undefined;
  const share = open.tree.share;
  let parentId: bigint;
  try {
    parentId = (await share.ios!.stat(parentOf(target))).info.fileId;
  } catch (err) {
    if (!(err instanceof IosError)) throw err;
    return undefined; // the rename itself reports a missing target directory
  }
  for (const o of server.openTable.client.opensOf(tableFileId(share, parentId))) {
    if (o.stream !== '' || o.openId === open.tableId) continue;
    if (o.desiredAccess & AccessMask.DELETE) return NtStatus.SHARING_VIOLATION;
    if (o.desiredAccess & AccessMask.FILE_ADD_FILE && !(o.shareAccess & ShareAccess.FILE_SHARE_WRITE)) return NtStatus.SHARING_VIOLATION;
  }
  return undefined;
}

/**
 * FileDispositionInformation (MS-FSA 2.1.5.15.3) marks the file (or the open's stream) delete-pending
 * at once, not at close as FILE_DELETE_ON_CLOSE does: from then on a new open of it fails with
 * STATUS_DELETE_PENDING (MS-FSA 2.1.5.1.2; smbtorture smb2.oplock.doc), and clearing it lifts that;
 * the object goes when its last open closes. Setting it first breaks other holders' handle caching
 * (MS-FSA 2.1.4.12 case SET_INFORMATION, FileDispositionInformation).
 */
export async function setDeletePending(server: Server, open: Open, pending: boolean, signal?: AbortSignal): Promise<void> {
  if (pending) await breakForSetInfo(server, open, 'handle', signal);
  open.deleteOnClose = pending;
  if (open.file === undefined) return;
  const key = pendingDeleteKey(open);
  if (pending) server.pendingDeletes.set(key, { path: open.path, ...(open.stream !== undefined ? { stream: open.stream } : {}) });
  else server.pendingDeletes.delete(key);
}

/**
 * MS-SMB2 3.3.5.2.10 for WRITE, SET_INFO and IOCTL on an open (3.x): a ChannelSequence ahead of the
 * open's becomes the open's (in the replicated table, so another node judges replays the same
 * way); one behind it is stale and the request fails with STATUS_FILE_NOT_AVAILABLE (the client then
 * replays it). The common case, the same sequence, costs nothing. Open.OutstandingRequestCount and
 * OutstandingPreRequestCount are not kept yet, so a replay (SMB2_FLAGS_REPLAY_OPERATION) carrying the
 * current sequence is accepted even while requests of the previous sequence are outstanding.
 */
export function channelSequenceGate(server: Server, open: Open, dialect: number, channelSequence: number): Promise<number | undefined> | undefined {
  // The common case answers synchronously: an await here, even of nothing, lets requests that
  // arrived behind this one on the connection overtake it (smbtorture smb2.lease.rename_wait).
  if (dialect < 0x0300 || open.tableId === undefined || channelSequence === open.channelSequence) return undefined;
  return (async () => {
    const r = await server.openTable.client.channelSequence(open.tableId!, channelSequence);
    if (!r.ok) return undefined;
    if (r.stale) return NtStatus.FILE_NOT_AVAILABLE;
    open.channelSequence = r.channelSequence;
    return undefined;
  })();
}
