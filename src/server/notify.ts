// Change notification (MS-SMB2 3.3.5.19, MS-FSA 2.1.5.10): directory watches fed by the server's
// own operations. Per MS-FSA, once an open has asked for notifications, changes that happen between
// two CHANGE_NOTIFY requests are kept (bounded) and returned by the next one; when they do not fit,
// the answer is STATUS_NOTIFY_ENUM_DIR (the client re-reads the directory).

import { CompletionFilter, FileAction, type FileNotifyChange } from '../protocol/change-notify.js';
import type { Open, ShareDef } from './state.js';

/** Changes kept per watching open between requests before it degrades to NOTIFY_ENUM_DIR. */
const PENDING_CHANGES_MAX = 256;

export type NotifyOutcome = { kind: 'changes'; changes: FileNotifyChange[] } | { kind: 'overflow' } | { kind: 'cleanup' };

interface Watch {
  open: Open;
  share: ShareDef;
  /** Watched directory, share-relative ('' = root). */
  dir: string;
  recursive: boolean;
  filter: number;
  changes: FileNotifyChange[];
  overflow: boolean;
  waiter: ((outcome: NotifyOutcome) => void) | undefined;
}

/** What kind of object a change is about, for FILE_NAME vs DIR_NAME filters. */
export type ChangeKind = 'file' | 'directory';

export class NotifyHub {
  private readonly watches = new Map<Open, Watch>();
  private readonly perShare = new Map<ShareDef, number>();

  /** Registers (or updates) the watch of a directory open. */
  watch(open: Open, recursive: boolean, filter: number): void {
    const existing = this.watches.get(open);
    if (existing) {
      existing.recursive = recursive;
      existing.filter = filter;
      return;
    }
    const share = open.tree.share;
    this.watches.set(open, { open, share, dir: open.path, recursive, filter, changes: [], overflow: false, waiter: undefined });
    this.perShare.set(share, (this.perShare.get(share) ?? 0) + 1);
  }

  /** Changes already waiting for this open, taken (undefined when none). */
  take(open: Open): NotifyOutcome | undefined {
    const w = this.watches.get(open);
    if (!w) return undefined;
    if (w.overflow) {
      w.overflow = false;
      w.changes = [];
      return { kind: 'overflow' };
    }
    if (w.changes.length === 0) return undefined;
    const changes = w.changes;
    w.changes = [];
    return { kind: 'changes', changes };
  }

  /** Waits for the next change of this open's watch; resolves 'cleanup' when the open goes away. */
  wait(open: Open, signal: AbortSignal): Promise<NotifyOutcome | 'cancelled'> {
    const w = this.watches.get(open);
    if (!w) return Promise.resolve({ kind: 'cleanup' });
    return new Promise((resolve) => {
      const onAbort = () => {
        if (w.waiter === deliver) w.waiter = undefined;
        resolve('cancelled');
      };
      const deliver = (o: NotifyOutcome) => {
        signal.removeEventListener('abort', onAbort);
        resolve(o);
      };
      // One outstanding request per open is served; a newer one replaces the older (which is
      // completed as cleaned up so it never hangs).
      w.waiter?.({ kind: 'cleanup' });
      w.waiter = deliver;
      if (signal.aborted) onAbort();
      else signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** The open was closed: its pending request completes with STATUS_NOTIFY_CLEANUP. */
  forget(open: Open): void {
    const w = this.watches.get(open);
    if (!w) return;
    this.watches.delete(open);
    const n = (this.perShare.get(w.share) ?? 1) - 1;
    if (n <= 0) this.perShare.delete(w.share);
    else this.perShare.set(w.share, n);
    const waiter = w.waiter;
    w.waiter = undefined;
    waiter?.({ kind: 'cleanup' });
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
      if (w.waiter) {
        const waiter = w.waiter;
        w.waiter = undefined;
        waiter({ kind: 'changes', changes: [change] });
      } else if (w.changes.length >= PENDING_CHANGES_MAX) {
        w.overflow = true;
      } else {
        w.changes.push(change);
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
