// Change notification (MS-SMB2 3.3.5.19, MS-FSA 2.1.5.10): directory watches fed by the server's
// own operations. Per MS-FSA, once an open has asked for notifications, changes that happen between
// two CHANGE_NOTIFY requests are kept (bounded) and returned by the next one; when they do not fit,
// the answer is STATUS_NOTIFY_ENUM_DIR (the client re-reads the directory).

import { CompletionFilter, FileAction, fileNotifyInformationSize, type FileNotifyChange } from '../protocol/change-notify.js';
import type { Open, ShareDef } from './state.js';

/** Changes kept per watching open between requests before it degrades to NOTIFY_ENUM_DIR. */
const PENDING_CHANGES_MAX = 256;

export type NotifyOutcome =
  | { kind: 'changes'; changes: FileNotifyChange[] }
  | { kind: 'overflow' }
  | { kind: 'cleanup' }
  | { kind: 'delete-pending' };

interface Watch {
  open: Open;
  share: ShareDef;
  /** Watched directory, share-relative ('' = root). */
  dir: string;
  recursive: boolean;
  filter: number;
  /**
   * Size of the notify buffer, fixed by the first CHANGE_NOTIFY on the open (MS-FSA 2.1.5.10: the
   * first request allocates NotifyEventList with its OutputBufferLength): changes that do not fit
   * in it overflow to STATUS_NOTIFY_ENUM_DIR, whatever later requests ask for.
   */
  bufferSize: number;
  changes: FileNotifyChange[];
  /** Encoded size of `changes` as a FILE_NOTIFY_INFORMATION chain. */
  changesBytes: number;
  overflow: boolean;
  /** The watched directory itself became delete-pending (MS-FSA 2.1.5.4). */
  deletePending: boolean;
  /** Outstanding requests, oldest first: each change completes the oldest (MS-SMB2 3.3.5.19). */
  waiters: ((outcome: NotifyOutcome) => void)[];
}

/** What kind of object a change is about, for FILE_NAME vs DIR_NAME filters. */
export type ChangeKind = 'file' | 'directory';

export class NotifyHub {
  private readonly watches = new Map<Open, Watch>();
  private readonly perShare = new Map<ShareDef, number>();
  private readonly renamedFiles = new WeakSet<Open>();

  /** Registers the watch of a directory open on its first CHANGE_NOTIFY. */
  watch(open: Open, recursive: boolean, filter: number, bufferSize: number): void {
    // Like the buffer size, WatchTree and CompletionFilter are those of the first request: Windows
    // keeps them until the handle is closed (smbtorture smb2.notify.mask-change, smb2.notify.rec).
    if (this.watches.has(open)) return;
    const share = open.tree.share;
    this.watches.set(open, {
      open,
      share,
      dir: open.path,
      recursive,
      filter,
      bufferSize,
      changes: [],
      changesBytes: 0,
      overflow: false,
      deletePending: false,
      waiters: [],
    });
    this.perShare.set(share, (this.perShare.get(share) ?? 0) + 1);
  }

  /** Changes already waiting for this open, taken (undefined when none). */
  take(open: Open): NotifyOutcome | undefined {
    const w = this.watches.get(open);
    if (!w) return undefined;
    if (w.deletePending) return { kind: 'delete-pending' };
    if (w.overflow) {
      w.overflow = false;
      w.changes = [];
      w.changesBytes = 0;
      return { kind: 'overflow' };
    }
    if (w.changes.length === 0) return undefined;
    const changes = w.changes;
    w.changes = [];
    w.changesBytes = 0;
    return { kind: 'changes', changes };
  }

  /** The notify buffer size of this open's watch (see Watch.bufferSize). */
  bufferSize(open: Open): number | undefined {
    return this.watches.get(open)?.bufferSize;
  }

  /**
   * The directory at `path` became delete-pending while watched: a waiting CHANGE_NOTIFY on it
   * completes with STATUS_DELETE_PENDING, and so do later ones (smbtorture smb2.notify.rmdir1..4;
   * Windows behaviour, MS-FSA 2.1.5.4 / 2.1.5.10).
   */
  deletePending(share: ShareDef, path: string): void {
    if (!this.perShare.has(share)) return;
    const key = path.toUpperCase();
    for (const w of this.watches.values()) {
      if (w.share !== share || w.dir.toUpperCase() !== key) continue;
      w.deletePending = true;
      const waiters = w.waiters;
      w.waiters = [];
      for (const waiter of waiters) waiter({ kind: 'delete-pending' });
    }
  }

  /** Waits for the next change of this open's watch; resolves 'cleanup' when the open goes away. */
  wait(open: Open, signal: AbortSignal): Promise<NotifyOutcome | 'cancelled'> {
    const w = this.watches.get(open);
    if (!w) return Promise.resolve({ kind: 'cleanup' });
    return new Promise((resolve) => {
      const onAbort = () => {
        const i = w.waiters.indexOf(deliver);
        if (i >= 0) w.waiters.splice(i, 1);
        resolve('cancelled');
      };
      const deliver = (o: NotifyOutcome) => {
        signal.removeEventListener('abort', onAbort);
        resolve(o);
      };
      w.waiters.push(deliver);
      if (signal.aborted) onAbort();
      else signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** The open was closed: its pending request completes with STATUS_NOTIFY_CLEANUP. */
  forget(open: Open): void {
    if (this.renamedFiles.delete(open)) {
      // Windows marks a renamed file FILE_ATTRIBUTE_ARCHIVE and reports it when the handle that
      // renamed it goes (MODIFIED under FILE_NOTIFY_CHANGE_ATTRIBUTES; smbtorture
      // smb2.notify.mask-change, and the "rename file special handling" of smb2.notify.mask).
      this.emit(open.tree.share, open.path, FileAction.FILE_ACTION_MODIFIED, 'file', CompletionFilter.FILE_NOTIFY_CHANGE_ATTRIBUTES);
    }
    const w = this.watches.get(open);
    if (!w) return;
    this.watches.delete(open);
    const n = (this.perShare.get(w.share) ?? 1) - 1;
    if (n <= 0) this.perShare.delete(w.share);
    else this.perShare.set(w.share, n);
    const waiters = w.waiters;
    w.waiters = [];
    for (const waiter of waiters) waiter({ kind: 'cleanup' });
  }

  /** A file was renamed through this open (see forget). */
  renamed(open: Open): void {
    if (open.kind !== 'directory' && open.stream === undefined) this.renamedFiles.add(open);
  }

  /** True when some open watches this share (callers skip building events otherwise). */
  watching(share: ShareDef): boolean {
    return this.perShare.has(share);
  }

  /**
   * Reports a change of `path` (share-relative). `filter` is the FILE_NOTIFY_CHANGE_* bit(s) the
   * change falls under; for ADDED/REMOVED/RENAMED the name filter follows from `kind`.
   */
  emit(share: ShareDef, path: string, action: number, kind: ChangeKind, filter?: number): void {
    if (!this.perShare.has(share)) return;
    const bits =
      filter ??
      (kind === 'directory' ? CompletionFilter.FILE_NOTIFY_CHANGE_DIR_NAME : CompletionFilter.FILE_NOTIFY_CHANGE_FILE_NAME);
    for (const w of this.watches.values()) {
      if (w.share !== share || (w.filter & bits) === 0) continue;
      const rel = relativeTo(w.dir, path, w.recursive);
      if (rel === undefined) continue;
      const change = { Action: action, FileName: rel.split('/').join('\\') };
      const size = fileNotifyInformationSize(change);
      const waiter = w.waiters.shift();
      if (waiter) {
        // MS-FSA 2.1.5.10: a change that does not fit in the notify buffer is NOTIFY_ENUM_DIR.
        waiter(size > w.bufferSize ? { kind: 'overflow' } : { kind: 'changes', changes: [change] });
      } else if (w.overflow) {
        continue;
      } else if (w.changes.length >= PENDING_CHANGES_MAX || w.changesBytes + size > w.bufferSize) {
        // MS-FSA 2.1.5.10: once the kept changes no longer fit, they are dropped and the next
        // request answers STATUS_NOTIFY_ENUM_DIR.
        w.overflow = true;
        w.changes = [];
        w.changesBytes = 0;
      } else {
        w.changes.push(change);
        w.changesBytes += size;
      }
    }
  }
}

/** `path` relative to `dir` when it is a child (or, recursively, a descendant) of it. */
function relativeTo(dir: string, path: string, recursive: boolean): string | undefined {
  const prefix = dir === '' ? '' : dir + '/';
  if (dir !== '' && path.toUpperCase().startsWith(prefix.toUpperCase()) === false) return undefined;
  const rel = path.slice(prefix.length);
  if (rel === '' || (!recursive && rel.includes('/'))) return undefined;
  return rel;
}

export { FileAction };
