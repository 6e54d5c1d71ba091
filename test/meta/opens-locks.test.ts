// Byte-range locks in the open table (src/meta/families/opens.ts, lock.apply): the element rules of
// MS-SMB2 3.3.5.14.1/3.3.5.14.2 as Windows applies them (smbtorture smb2.lock.valid-request and
// multiple-unlock), and the lock state a durable open keeps across its reconnect (MS-SMB2 3.3.5.14
// LockSequenceArray, HYPERV-CA.md item 8) or loses with its expiry.
import { describe, expect, it } from 'vitest';
import { create, Table } from './opens-harness.js';
import { getOpen, locksOfFile } from '../../src/meta/families/opens.js';

const RH = { key: 'L1', state: 3, epoch: 0, version: 2 };
const X = (offset: number, length = 10) => ({ offset, length, exclusive: true });
const U = (offset: number, length = 10) => ({ offset, length, unlock: true });
const heldBy = (t: Table, openId: number) =>
  locksOfFile(t.tx, 'share/1')
    .filter((l) => l.openId === openId)
    .map((l) => Number(l.offset));

describe('lock.apply element rules (MS-SMB2 3.3.5.14.1, 3.3.5.14.2)', () => {
  it('an unlock request stops at a lock element with STATUS_INVALID_PARAMETER and keeps the unlocks before it', () => {
    const t = new Table();
    const a = t.ok(create()).openId as number;
    t.ok({ t: 'lock.apply', openId: a, locks: [X(0), X(10)], now: 1_000 });
    const r = t.ok({ t: 'lock.apply', openId: a, locks: [U(0), X(10)], now: 1_000 });
    expect(r).toMatchObject({ unlocked: 1, failed: { index: 1, code: 'invalid' } });
    expect(heldBy(t, a)).toEqual([10]);
    expect(getOpen(t.tx, a)?.lockCount).toBe(1);
  });

  it('an unlock request whose first range is not locked fails before a later invalid element is looked at', () => {
    const t = new Table();
    const a = t.ok(create()).openId as number;
    t.ok({ t: 'lock.apply', openId: a, locks: [X(10)], now: 1_000 });
    expect(t.code({ t: 'lock.apply', openId: a, locks: [U(0), X(10)], now: 1_000 })).toBe('not-found');
    expect(t.code({ t: 'lock.apply', openId: a, locks: [U(0), U(10)], now: 1_000 })).toBe('not-found');
    expect(heldBy(t, a)).toEqual([10]); // nothing was unlocked
  });

  it('a lock request with an unlock element takes none of its locks', () => {
    const t = new Table();
    const a = t.ok(create()).openId as number;
    t.ok({ t: 'lock.apply', openId: a, locks: [X(10)], now: 1_000 });
    expect(t.code({ t: 'lock.apply', openId: a, locks: [X(0), U(10)], now: 1_000 })).toBe('invalid');
    expect(heldBy(t, a)).toEqual([10]);
  });

  it('a lock request that conflicts part way takes none of its locks (3.3.5.14.2: unlock what was locked)', () => {
    const t = new Table();
    const a = t.ok(create()).openId as number;
    const b = t.ok(create({ clientGuid: 'c2' })).openId as number;
    t.ok({ t: 'lock.apply', openId: a, locks: [X(10)], now: 1_000 });
    expect(t.code({ t: 'lock.apply', openId: b, locks: [X(0), X(10)], now: 1_000 })).toBe('lock-conflict');
    expect(heldBy(t, b)).toEqual([]);
    expect(getOpen(t.tx, b)?.lockCount).toBe(0);
  });

  it('a failed request does not store its lock sequence; a successful one does', () => {
    const t = new Table();
    const a = t.ok(create({ oplock: 'batch', durable: { kind: 'v1' } })).openId as number;
    const seq = { index: 3, seq: 5 };
    t.ok({ t: 'lock.apply', openId: a, locks: [X(0), X(10)], now: 1_000 });
    const partial = t.ok({ t: 'lock.apply', openId: a, locks: [U(0), U(50)], lockSequence: seq, now: 1_000 });
    expect(partial.failed).toEqual({ index: 1, code: 'not-found' });
    expect(getOpen(t.tx, a)?.lockSequence[2]).toBeNull();
    // Not a replay: the request runs again and fails at its first element now.
    expect(t.code({ t: 'lock.apply', openId: a, locks: [U(0), U(50)], lockSequence: seq, now: 1_000 })).toBe('not-found');
    expect(t.ok({ t: 'lock.apply', openId: a, locks: [U(10)], lockSequence: seq, now: 1_000 }).replay).toBe(false);
    expect(getOpen(t.tx, a)?.lockSequence[2]).toBe(5);
    expect(t.ok({ t: 'lock.apply', openId: a, locks: [U(10)], lockSequence: seq, now: 1_000 }).replay).toBe(true);
  });
});

describe('locks of a durable open across disconnect, reconnect and expiry (MS-SMB2 3.3.5.9.7, 3.3.5.14, 3.3.2.2)', () => {
  it('locks and the LockSequenceArray survive the reconnect; a replayed lock does not run again', () => {
    const t = new Table();
    // A durable open with a read-handle lease: another client's compatible open breaks nothing.
    const a = t.ok(create({ oplock: 'lease', lease: RH, durable: { kind: 'v1' } }));
    expect(a.durable).toBe('v1');
    const lockReq = { t: 'lock.apply', openId: a.openId, locks: [X(100, 100)], lockSequence: { index: 1, seq: 1 }, now: 1_000 };
    expect(t.ok(lockReq).replay).toBe(false);
    t.ok({ t: 'open.disconnect', openId: a.openId, now: 2_000 });
    // While it is disconnected, another open still meets its lock.
    const b = t.ok(create({ clientGuid: 'c2', now: 2_500 })).openId as number;
    expect(t.code({ t: 'lock.apply', openId: b, locks: [X(150, 1)], now: 2_500 })).toBe('lock-conflict');
    const rc = { t: 'open.reconnect', openId: a.openId, clientGuid: 'c1', node: 'n2', inc: 1, owner: 'S-1-5-21-1000', v2: false, now: 3_000 };
    expect(t.ok({ ...rc, lease: { key: 'L1', version: 2 } })).toMatchObject({ openId: a.openId });
    // The client resends the lock it sent before the connection dropped: a replay (HYPERV-CA.md item 8).
    expect(t.ok({ ...lockReq, now: 3_100 }).replay).toBe(true);
    expect(heldBy(t, a.openId)).toEqual([100]);
    expect(getOpen(t.tx, a.openId)?.lockCount).toBe(1);
    // The reconnected open unlocks its range; the other open can then lock it.
    t.ok({ t: 'lock.apply', openId: a.openId, locks: [U(100, 100)], now: 3_200 });
    expect(t.code({ t: 'lock.apply', openId: b, locks: [X(150, 1)], now: 3_300 })).toBe('ok');
  });

  it('an expired durable open takes its locks with it', () => {
    const t = new Table();
    const a = t.ok(create({ oplock: 'lease', lease: RH, durable: { kind: 'v1' } })).openId as number;
    t.ok({ t: 'lock.apply', openId: a, locks: [X(0)], now: 1_000 });
    const d = t.ok({ t: 'open.disconnect', openId: a, now: 2_000 });
    const b = t.ok(create({ clientGuid: 'c2', now: 2_000 })).openId as number;
    expect(t.code({ t: 'lock.apply', openId: b, locks: [X(5, 1)], now: 2_100 })).toBe('lock-conflict');
    expect(t.ok({ t: 'open.expire', now: d.expiresAt }).closed).toEqual([a]);
    expect(locksOfFile(t.tx, 'share/1')).toEqual([]);
    expect(t.code({ t: 'lock.apply', openId: b, locks: [X(5, 1)], now: d.expiresAt + 1 })).toBe('ok');
  });
});
