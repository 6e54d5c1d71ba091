// NotifyHub (src/server/notify.ts): the watch state behind CHANGE_NOTIFY (MS-SMB2 3.3.5.19,
// MS-FSA 2.1.5.10), driven directly with minimal opens.
import { describe, expect, it } from 'vitest';
import { CompletionFilter, FileAction } from '../../src/protocol/change-notify.js';
import { NotifyHub } from '../../src/server/notify.js';
import type { Open, ShareDef } from '../../src/server/state.js';

const ALL = 0xfff;
const share = { name: 'vms' } as unknown as ShareDef;

function dirOpen(path: string): Open {
  return { kind: 'directory', path, tree: { share } } as unknown as Open;
}

function fileOpen(path: string): Open {
  return { kind: 'file', path, tree: { share } } as unknown as Open;
}

const never = new AbortController().signal;

describe('NotifyHub', () => {
  it('keeps changes between requests and returns them in order', () => {
    const hub = new NotifyHub();
    const d = dirOpen('dir');
    hub.watch(d, false, ALL, 1000);
    hub.emit(share, 'dir/a', FileAction.FILE_ACTION_ADDED, 'file');
    hub.emit(share, 'dir/a', FileAction.FILE_ACTION_REMOVED, 'file');
    hub.emit(share, 'other/b', FileAction.FILE_ACTION_ADDED, 'file');
    expect(hub.take(d)).toEqual({
      kind: 'changes',
      changes: [
        { Action: FileAction.FILE_ACTION_ADDED, FileName: 'a' },
        { Action: FileAction.FILE_ACTION_REMOVED, FileName: 'a' },
      ],
    });
    expect(hub.take(d)).toBeUndefined();
  });

  it('fixes buffer size, filter and WatchTree at the first request', () => {
    const hub = new NotifyHub();
    const d = dirOpen('');
    hub.watch(d, true, CompletionFilter.FILE_NOTIFY_CHANGE_DIR_NAME, 1);
    hub.watch(d, false, ALL, 0x10000);
    expect(hub.bufferSize(d)).toBe(1);
    // Still recursive and directory-names only.
    hub.emit(share, 'x/y', FileAction.FILE_ACTION_ADDED, 'directory');
    hub.emit(share, 'f', FileAction.FILE_ACTION_ADDED, 'file');
    // One entry does not fit in a 1-byte buffer: the next request gets NOTIFY_ENUM_DIR.
    expect(hub.take(d)).toEqual({ kind: 'overflow' });
    expect(hub.take(d)).toBeUndefined();
  });

  it('overflows once the kept changes exceed the buffer', () => {
    const hub = new NotifyHub();
    const d = dirOpen('');
    hub.watch(d, false, ALL, 40); // each entry "nN" takes 16 bytes
    hub.emit(share, 'n1', FileAction.FILE_ACTION_ADDED, 'file');
    hub.emit(share, 'n2', FileAction.FILE_ACTION_ADDED, 'file');
    expect(hub.take(d)).toMatchObject({ kind: 'changes' });
    hub.emit(share, 'n1', FileAction.FILE_ACTION_ADDED, 'file');
    hub.emit(share, 'n2', FileAction.FILE_ACTION_ADDED, 'file');
    hub.emit(share, 'n3', FileAction.FILE_ACTION_ADDED, 'file');
    expect(hub.take(d)).toEqual({ kind: 'overflow' });
  });

  it('completes outstanding requests oldest first, and all of them on close', async () => {
    const hub = new NotifyHub();
    const d = dirOpen('');
    hub.watch(d, false, ALL, 1000);
    const first = hub.wait(d, never);
    const second = hub.wait(d, never);
    const third = hub.wait(d, never);
    hub.emit(share, 'one', FileAction.FILE_ACTION_ADDED, 'file');
    hub.emit(share, 'two', FileAction.FILE_ACTION_ADDED, 'file');
    expect(await first).toEqual({ kind: 'changes', changes: [{ Action: FileAction.FILE_ACTION_ADDED, FileName: 'one' }] });
    expect(await second).toEqual({ kind: 'changes', changes: [{ Action: FileAction.FILE_ACTION_ADDED, FileName: 'two' }] });
    hub.forget(d);
    expect(await third).toEqual({ kind: 'cleanup' });
    expect(hub.watching(share)).toBe(false);
  });

  it('answers a cancelled request as cancelled and leaves the others waiting', async () => {
    const hub = new NotifyHub();
    const d = dirOpen('');
    hub.watch(d, false, ALL, 1000);
    const ac = new AbortController();
    const cancelled = hub.wait(d, ac.signal);
    const other = hub.wait(d, never);
    ac.abort();
    expect(await cancelled).toBe('cancelled');
    hub.emit(share, 'z', FileAction.FILE_ACTION_ADDED, 'file');
    expect(await other).toEqual({ kind: 'changes', changes: [{ Action: FileAction.FILE_ACTION_ADDED, FileName: 'z' }] });
  });

  it('completes requests on a directory that becomes delete-pending with DELETE_PENDING', async () => {
    const hub = new NotifyHub();
    const d = dirOpen('Gone');
    hub.watch(d, false, ALL, 1000);
    const waiting = hub.wait(d, never);
    hub.deletePending(share, 'gone');
    expect(await waiting).toEqual({ kind: 'delete-pending' });
    expect(hub.take(d)).toEqual({ kind: 'delete-pending' });
  });

  it('reports an attribute change on the new name when a renaming handle closes', () => {
    const hub = new NotifyHub();
    const d = dirOpen('');
    hub.watch(d, true, CompletionFilter.FILE_NOTIFY_CHANGE_ATTRIBUTES, 1000);
    const f = fileOpen('sub/new');
    hub.renamed(f);
    hub.forget(f);
    hub.forget(f); // a second end of the same open reports nothing more
    expect(hub.take(d)).toEqual({
      kind: 'changes',
      changes: [{ Action: FileAction.FILE_ACTION_MODIFIED, FileName: 'sub\\new' }],
    });
  });
});
