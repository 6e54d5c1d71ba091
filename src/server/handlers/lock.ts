// LOCK (MS-SMB2 3.3.5.14; MS-FSA 2.1.5.8 lock, 2.1.5.9 unlock). Byte-range locks are records of the
// replicated open table (lock.apply): another node sees them, and a durable open's locks survive its
// reconnect and go with its close or expiry. A blocking lock goes async and retries whenever the
// locks of its file change, until it is granted, cancelled, or its open goes away.

import { NtStatus } from '../../protocol/ntstatus.js';
import { decodeLockRequest, LockFlags, lockResponse } from '../../protocol/lock.js';
import { Dialect, GlobalCap } from '../../protocol/negotiate.js';
import type { Reply, RequestContext } from '../context.js';
import type { LockElementArg, LockOutcome } from '../../meta/opens-client.js';
import { statusForRefusal } from '../opens.js';

const U64_MAX = (1n << 64n) - 1n;

const narrow = (v: bigint): number | bigint => (v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v);

/** MS-SMB2 2.2.26.1: the flag combinations a lock element of a lock request may carry. */
function validLockFlags(f: number): boolean {
  const kind = f & ~LockFlags.SMB2_LOCKFLAG_FAIL_IMMEDIATELY;
  return kind === LockFlags.SMB2_LOCKFLAG_SHARED_LOCK || kind === LockFlags.SMB2_LOCKFLAG_EXCLUSIVE_LOCK;
}

/** What a request asks of the table, or the status it fails with before the table is asked. */
type Plan = { status: number } | { elements: LockElementArg[]; unlocking: boolean; blocking: boolean };

function plan(locks: { Offset: bigint; Length: bigint; Flags: number }[]): Plan {
  // MS-SMB2 3.3.5.14: the first element decides whether the request is a series of unlocks or locks.
  const unlocking = (locks[0]!.Flags & LockFlags.SMB2_LOCKFLAG_UNLOCK) !== 0;
  const elements: LockElementArg[] = [];
  for (const [i, e] of locks.entries()) {
    if (unlocking) {
      if (e.Flags !== LockFlags.SMB2_LOCKFLAG_UNLOCK) {
        // MS-SMB2 3.3.5.14.1: an element with SHARED or EXCLUSIVE set stops the request with
        // STATUS_INVALID_PARAMETER, after the unlocks before it. Windows also refuses UNLOCK with
        // FAIL_IMMEDIATELY and an empty Flags here (smbtorture smb2.lock.valid-request), as Samba does.
        if (i === 0) return { status: NtStatus.INVALID_PARAMETER };
        elements.push({ offset: 0, length: 0, exclusive: false, unlock: false });
        break; // nothing after the first invalid element is looked at
      }
    } else {
      // MS-SMB2 3.3.5.14.2: an UNLOCK element, or a combination of flags 2.2.26.1 does not define,
      // is STATUS_INVALID_PARAMETER; so is a multi-element request that is allowed to block.
      if (!validLockFlags(e.Flags)) return { status: NtStatus.INVALID_PARAMETER };
      if (locks.length > 1 && !(e.Flags & LockFlags.SMB2_LOCKFLAG_FAIL_IMMEDIATELY)) return { status: NtStatus.INVALID_PARAMETER };
    }
    // MS-FSA 2.1.5.8 / 2.1.5.9: a range running past 2^64 - 1 is STATUS_INVALID_LOCK_RANGE.
    if (e.Length !== 0n && e.Offset + e.Length - 1n > U64_MAX) return { status: NtStatus.INVALID_LOCK_RANGE };
    elements.push({ offset: narrow(e.Offset), length: narrow(e.Length), exclusive: (e.Flags & LockFlags.SMB2_LOCKFLAG_EXCLUSIVE_LOCK) !== 0, unlock: unlocking });
  }
  const blocking = !unlocking && locks.length === 1 && !(locks[0]!.Flags & LockFlags.SMB2_LOCKFLAG_FAIL_IMMEDIATELY);
  return { elements, unlocking, blocking };
}

export async function handleLock(ctx: RequestContext): Promise<Reply> {
  const req = decodeLockRequest(ctx.msg);
  const open = ctx.open!;
  if (open.kind === 'pipe' || open.tableId === undefined) return { status: NtStatus.INVALID_DEVICE_REQUEST };
  if (open.kind === 'directory') return { status: NtStatus.INVALID_PARAMETER };
  const p = plan(req.Locks);
  if ('status' in p) return { status: p.status };
  const table = ctx.conn.server.openTable;
  const neg = ctx.conn.negotiated!;

  // MS-SMB2 3.3.5.14: LockSequence replay detection (not on 2.0.2; index 0 means "not requested").
  // The table checks the open's LockSequenceArray when the open is resilient, durable or
  // persistent, or when this is a 3.x connection of a server with SMB2_GLOBAL_CAP_MULTI_CHANNEL.
  const seq = neg.dialect >= Dialect.SMB210 && req.LockSequenceIndex !== 0 ? { index: req.LockSequenceIndex, seq: req.LockSequenceNumber } : undefined;
  const multiChannel = neg.dialect >= Dialect.SMB300 && (neg.serverCapabilities & GlobalCap.MULTI_CHANNEL) !== 0;
  const attempt = (): Promise<LockOutcome> => table.client.lock(open.tableId!, p.elements, table.now(), seq, multiChannel);

  let r = await attempt();
  if (!r.ok && r.code === 'lock-conflict' && p.blocking) {
    // MS-SMB2 3.3.5.14.2: without FAIL_IMMEDIATELY the request waits (interim STATUS_PENDING) until
    // the lock can be granted or the request is cancelled.
    if (!ctx.goAsync()) return { status: NtStatus.LOCK_NOT_GRANTED };
    const waited = await waitForLock({
      signal: ctx.signal,
      gone: () => open.closed || open.disconnected,
      attempt,
      watch: (cb) => {
        const stopLocks = table.client.watchLocks(cb, open.file);
        const stopOpen = table.client.watchOpen(open.tableId!, cb);
        return () => {
          stopLocks();
          stopOpen();
        };
      },
    });
    // MS-SMB2 3.3.5.16: a cancelled pending lock completes with STATUS_CANCELLED. A pending lock
    // whose open is closed completes with STATUS_RANGE_NOT_LOCKED, as Windows does (smbtorture
    // smb2.lock.cancel, "cancel by close").
    if (waited === 'cancelled') return { status: NtStatus.CANCELLED };
    if (waited === 'closed') return { status: NtStatus.RANGE_NOT_LOCKED };
    r = waited;
  }
  if (!r.ok) {
    if (r.code === 'lock-conflict') return { status: NtStatus.LOCK_NOT_GRANTED };
    if (r.code === 'not-found') return { status: p.unlocking ? NtStatus.RANGE_NOT_LOCKED : NtStatus.FILE_CLOSED };
    return { status: statusForRefusal(r.code) };
  }
  if (r.failed !== undefined) {
    // MS-SMB2 3.3.5.14.1: the unlocks before the failing element stay done.
    return { status: r.failed.code === 'invalid' ? NtStatus.INVALID_PARAMETER : NtStatus.RANGE_NOT_LOCKED };
  }
  table.apply({ breaks: r.breaks });
  return { status: NtStatus.SUCCESS, body: lockResponse() };
}

/** What waitForLock needs: kept apart from the request context so it can be tested alone. */
export interface LockWait {
  /** Aborted when the client cancels the request (MS-SMB2 3.3.5.16) or the connection goes away. */
  signal: AbortSignal;
  /** True once the waiting open is closed or its connection lost. */
  gone: () => boolean;
  /** Proposes the lock again. */
  attempt: () => Promise<LockOutcome>;
  /** Calls `cb` on every change that may let the lock through or end the open; returns the stop. */
  watch: (cb: () => void) => () => void;
}

/**
 * Waits for a blocked lock: retries after every change of the file's locks or of the open's record,
 * until the lock is granted or fails for another reason (its outcome), the request is cancelled
 * ('cancelled'), or the open goes away ('closed'). The watch is registered before the first retry,
 * so a change that lands while a retry is in flight is not lost; it is removed on every exit path.
 */
export async function waitForLock(w: LockWait): Promise<LockOutcome | 'cancelled' | 'closed'> {
  let changed = true; // the conflict seen by the caller may already be gone: retry once at once
  let wake: (() => void) | undefined;
  const poke = (): void => {
    const f = wake;
    wake = undefined;
    f?.();
  };
  const onChange = (): void => {
    changed = true;
    poke();
  };
  const stop = w.watch(onChange);
  w.signal.addEventListener('abort', poke);
  try {
    for (;;) {
      if (w.gone()) return 'closed';
      if (w.signal.aborted) return 'cancelled';
      if (!changed) {
        await new Promise<void>((resolve) => (wake = resolve));
        continue;
      }
      changed = false;
      const r = await w.attempt();
      if (r.ok || r.code !== 'lock-conflict') {
        // The open's record is gone: it was closed under the waiting request.
        if (!r.ok && r.code === 'not-found') return 'closed';
        return r;
      }
    }
  } finally {
    stop();
    w.signal.removeEventListener('abort', poke);
    wake = undefined;
  }
}
