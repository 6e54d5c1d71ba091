// The open table command family (src/meta/families/opens.ts): share modes, oplocks, leases,
// byte-range locks, durable/persistent handles, app-instance takeover, node failure.
import { describe, expect, it } from 'vitest';
import { create, Table } from './opens-harness.js';
import fc from 'fast-check';
import { decodeKey, key } from '../../src/meta/keys.js';
import { MemoryStore, type Command } from '../../src/meta/tx.js';
import {
  DELETE,
  FILE_APPEND_DATA,
  FILE_EXECUTE,
  FILE_READ_ATTRIBUTES,
  FILE_READ_DATA,
  FILE_WRITE_DATA,
  LEASE_H,
  LEASE_R,
  LEASE_W,
  READ_CONTROL,
  SYNCHRONIZE,
  findByCreateGuid,
  getLease,
  getOpen,
  locksOfFile,
  opensHandlers,
  opensOfFile,
  planBreaks,
  rangeConflicts,
  testLock,
  type Lease,
  type Lock,
  type Open,
} from '../../src/meta/families/opens.js';


const RD = FILE_READ_DATA;
const WR = FILE_WRITE_DATA;
const r = 1;
const w = 2;
const d = 4;


const lease = (k: string, state: number, epoch = 0, version = 2) => ({ key: k, state, epoch, version });

describe('share modes (MS-FSA 2.1.5.1.2.1, 2.1.5.1.2.2)', () => {
  // [name, existing {access, share, stream}, new {access, share, stream}, expected]
  type Side = { access: number; share: number; stream?: string };
  const cases: [string, Side, Side, 'ok' | 'sharing-violation'][] = [
    ['read/read, both share read', { access: RD, share: r }, { access: RD, share: r }, 'ok'],
    ['writer against a reader that does not share write', { access: RD, share: r }, { access: WR, share: r | w }, 'sharing-violation'],
    ['writer against a reader that shares write', { access: RD, share: r | w }, { access: WR, share: r | w }, 'ok'],
    ['reader not sharing read against a write-only open', { access: WR, share: r | w }, { access: RD, share: w }, 'ok'],
    ['reader not sharing write against a writer', { access: WR, share: r | w }, { access: RD, share: r }, 'sharing-violation'],
    ['attribute-only opener against an exclusive open', { access: RD, share: 0 }, { access: FILE_READ_ATTRIBUTES, share: 0 }, 'ok'],
    ['reader against an attribute-only exclusive open', { access: FILE_READ_ATTRIBUTES, share: 0 }, { access: RD, share: 0 }, 'ok'],
    ['READ_CONTROL|SYNCHRONIZE open shares nothing, writer comes', { access: READ_CONTROL | SYNCHRONIZE, share: 0 }, { access: WR, share: 0 }, 'ok'],
    ['reader not sharing delete against a deleter', { access: DELETE, share: r | w | d }, { access: RD, share: r | w }, 'sharing-violation'],
    ['reader sharing delete against a deleter', { access: DELETE, share: r | w | d }, { access: RD, share: r | w | d }, 'ok'],
    ['deleter against a reader not sharing delete', { access: RD, share: r | w }, { access: DELETE, share: r | w | d }, 'sharing-violation'],
    ['deleter against a reader sharing delete', { access: RD, share: r | w | d }, { access: DELETE, share: r | w | d }, 'ok'],
    ['DELETE|READ_ATTRIBUTES against a reader not sharing delete', { access: RD, share: r | w }, { access: DELETE | FILE_READ_ATTRIBUTES, share: 7 }, 'sharing-violation'],
    ['reader against an executer that shares read', { access: FILE_EXECUTE, share: r }, { access: RD, share: r }, 'ok'],
    ['reader against an executer sharing nothing', { access: FILE_EXECUTE, share: 0 }, { access: RD, share: 7 }, 'sharing-violation'],
    ['executer against a reader not sharing read', { access: WR, share: w | d }, { access: FILE_EXECUTE, share: 7 }, 'sharing-violation'],
    ['writer not sharing write against an appender', { access: FILE_APPEND_DATA, share: r | w }, { access: WR, share: r }, 'sharing-violation'],
    ['reader sharing write against an appender', { access: FILE_APPEND_DATA, share: r | w }, { access: RD, share: r | w }, 'ok'],
    ['read-write pair, everything shared', { access: RD | WR, share: 7 }, { access: RD | WR, share: 7 }, 'ok'],
    ['reader against a read-write open sharing read only', { access: RD | WR, share: r }, { access: RD, share: 7 }, 'ok'],
    ['read-write against a read-write open sharing read only', { access: RD | WR, share: r }, { access: RD | WR, share: 7 }, 'sharing-violation'],
    ['no sharing at all, both readers', { access: RD, share: 0 }, { access: RD, share: 0 }, 'sharing-violation'],
    ['different named streams do not conflict', { access: RD, share: 0, stream: 's1' }, { access: RD, share: 0, stream: 's2' }, 'ok'],
    ['named stream against the unnamed stream', { access: RD, share: 0, stream: 's1' }, { access: RD, share: 0 }, 'ok'],
    ['deleting the file against a named-stream open not sharing delete', { access: RD, share: r | w, stream: 's1' }, { access: DELETE, share: 7 }, 'sharing-violation'],
    ['named-stream opener not sharing delete against a file deleter', { access: DELETE, share: 7 }, { access: RD, share: r | w, stream: 's1' }, 'sharing-violation'],
    ['named-stream opener sharing delete against a file deleter', { access: DELETE, share: 7 }, { access: RD, share: 7, stream: 's1' }, 'ok'],
    ['deleting a named stream does not need the other streams to share delete', { access: RD, share: r | w, stream: 's1' }, { access: DELETE, share: 7, stream: 's2' }, 'ok'],
  ];
  it.each(cases)('%s', (_name, e, n, expected) => {
    const t = new Table();
    t.ok(create({ clientGuid: 'c0', desiredAccess: e.access, shareAccess: e.share, stream: e.stream }));
    expect(t.code(create({ clientGuid: 'c2', desiredAccess: n.access, shareAccess: n.share, stream: n.stream }))).toBe(expected);
  });

  it('a failed open leaves nothing behind', () => {
    const t = new Table();
    t.ok(create({ shareAccess: 0 }));
    expect(t.code(create({ clientGuid: 'c2' }))).toBe('sharing-violation');
    expect(opensOfFile(t.tx, 'share/1')).toHaveLength(1);
  });
});

describe('leases (MS-SMB2 3.3.5.9.8, 3.3.5.9.11, 3.3.4.7, 3.3.5.22.2)', () => {
  it('RWH holder vs a new opener asking RWH: the holder breaks to RH, the opener gets RH; v2 epochs rise', () => {
    const t = new Table();
    const a = t.ok(create({ oplock: 'lease', lease: lease('L1', 7, 10) }));
    expect(a.lease).toMatchObject({ key: 'L1', state: 7, epoch: 11 }); // a new state bumps the client's epoch
    expect(a.breaks).toEqual([]);
    // The opener's first proposal only starts the break: it waits for it (MS-FSA 2.1.4.12) and is
    // granted by the same command proposed again.
    const b0 = t.ok(create({ clientGuid: 'c2', oplock: 'lease', lease: lease('L2', 7, 0) }));
    expect(b0.status).toBe('break-required');
    expect(b0.breaks).toEqual([
      { kind: 'lease', clientGuid: 'c1', leaseKey: 'L1', node: 'n1', nodes: ['n1'], from: 7, to: 3, epoch: 12, ackRequired: true },
    ]);
    expect(b0.waitFor).toEqual([{ kind: 'lease', clientGuid: 'c1', leaseKey: 'L1' }]);
    expect(getLease(t.tx, 'c1', 'L1')).toMatchObject({ state: 7, breaking: { to: 3, epoch: 12 } });
    expect(opensOfFile(t.tx, 'share/1')).toHaveLength(1);

    // Acknowledging more than the break allows is refused; the right state completes it.
    expect(t.code({ t: 'lease.ack', clientGuid: 'c1', leaseKey: 'L1', state: 7, now: 1_100 })).toBe('invalid');
    expect(t.ok({ t: 'lease.ack', clientGuid: 'c1', leaseKey: 'L1', state: 3, now: 1_100 })).toMatchObject({ state: 3, epoch: 12 });
    expect(getLease(t.tx, 'c1', 'L1')?.breaking).toBeUndefined();
    expect(t.code({ t: 'lease.ack', clientGuid: 'c1', leaseKey: 'L1', state: 3, now: 1_100 })).toBe('invalid'); // not breaking
    const b = t.ok(create({ clientGuid: 'c2', oplock: 'lease', lease: lease('L2', 7, 0) }));
    expect(b.status).toBe('ok');
    expect(b.breaks).toEqual([]);
    expect(b.lease).toMatchObject({ key: 'L2', state: LEASE_R | LEASE_H, epoch: 1 });

    // An overwriting open breaks both RH leases to none, each with a new epoch; the breaks need
    // acknowledgments, but the open does not wait for them (MS-FSA 2.1.4.12: only write caching is
    // waited for; Windows: smbtorture lease.breaking4).
    const c = t.ok(create({ clientGuid: 'c3', overwrite: true, oplock: 'lease', lease: lease('L3', 7) }));
    expect(c.status).toBe('ok');
    expect(c.breaks.map((x: { leaseKey: string; to: number; epoch: number; ackRequired: boolean }) => [x.leaseKey, x.to, x.epoch, x.ackRequired])).toEqual([
      ['L1', 0, 13, true],
      ['L2', 0, 2, true],
    ]);
    expect(c.waitFor).toEqual([]);
    // Judged by what the breaks leave (nobody caches) and two other opens remain: no W, so RH.
    expect(c.lease.state).toBe(LEASE_R | LEASE_H);
    expect(getLease(t.tx, 'c1', 'L1')).toMatchObject({ state: 3, breaking: { to: 0, epoch: 13 } });
    // Another overwrite while those breaks are in flight neither breaks L1 or L2 again nor waits (it
    // breaks the opener's new RH lease, L3, the same way).
    const d = t.ok(create({ clientGuid: 'c4', overwrite: true }));
    expect(d).toMatchObject({ status: 'ok', waitFor: [] });
    expect(d.breaks.map((x: { leaseKey: string; from: number; to: number }) => [x.leaseKey, x.from, x.to])).toEqual([['L3', 3, 0]]);
    expect(t.ok({ t: 'lease.ack', clientGuid: 'c1', leaseKey: 'L1', state: 0, now: 1_200 })).toMatchObject({ state: 0, breaks: [] });
  });

  it('breaking R alone needs no acknowledgment', () => {
    const t = new Table();
    t.ok(create({ oplock: 'lease', lease: lease('L1', LEASE_R) }));
    const b = t.ok(create({ clientGuid: 'c2', overwrite: true }));
    expect(b.breaks[0]).toMatchObject({ leaseKey: 'L1', from: 1, to: 0, ackRequired: false });
    expect(b.waitFor).toEqual([]);
    expect(getLease(t.tx, 'c1', 'L1')?.state).toBe(0);
  });

  it('attribute-only opens break no lease (MS-FSA 2.1.4.12 case OPEN)', () => {
    const t = new Table();
    t.ok(create({ oplock: 'lease', lease: lease('L1', 7) }));
    const b = t.ok(create({ clientGuid: 'c2', desiredAccess: FILE_READ_ATTRIBUTES | SYNCHRONIZE }));
    expect(b.breaks).toEqual([]);
    expect(getLease(t.tx, 'c1', 'L1')?.state).toBe(7);
  });

  it('the same lease key on a second open joins and may promote the lease', () => {
    const t = new Table();
    const a = t.ok(create({ oplock: 'lease', lease: lease('L1', LEASE_R, 5) }));
    expect(a.lease).toMatchObject({ state: LEASE_R, epoch: 6 });
    const b = t.ok(create({ oplock: 'lease', lease: lease('L1', 7, 5) }));
    expect(b.breaks).toEqual([]); // the same key is never broken
    expect(b.lease).toMatchObject({ state: 7, epoch: 7 });
    expect(getLease(t.tx, 'c1', 'L1')?.opens).toBe(2);
    // Asking for less than held never downgrades.
    const c = t.ok(create({ oplock: 'lease', lease: lease('L1', LEASE_R) }));
    expect(c.lease).toMatchObject({ state: 7, epoch: 7 });
    t.ok({ t: 'open.close', openId: a.openId, now: 2_000 });
    t.ok({ t: 'open.close', openId: b.openId, now: 2_000 });
    expect(getLease(t.tx, 'c1', 'L1')?.opens).toBe(1);
    t.ok({ t: 'open.close', openId: c.openId, now: 2_000 });
    expect(getLease(t.tx, 'c1', 'L1')).toBeUndefined(); // the last open takes the lease with it
  });

  it('a lease key used by the same client on another file is refused (STATUS_INVALID_PARAMETER)', () => {
    const t = new Table();
    t.ok(create({ oplock: 'lease', lease: lease('L1', 7) }));
    expect(t.code(create({ file: 'share/2', oplock: 'lease', lease: lease('L1', 7) }))).toBe('invalid');
    // Another client may use the same key bytes: leases belong to a ClientGuid.
    expect(t.code(create({ clientGuid: 'c2', file: 'share/2', oplock: 'lease', lease: lease('L1', 7) }))).toBe('ok');
  });

  it('invalid lease states and directories are trimmed (MS-FSA 2.1.5.18)', () => {
    const t = new Table();
    expect(t.ok(create({ oplock: 'lease', lease: lease('L1', LEASE_H) })).lease.state).toBe(0);
    expect(t.ok(create({ file: 'dir/1', directory: true, oplock: 'lease', lease: lease('L2', 7) })).lease.state).toBe(LEASE_R | LEASE_H);
    expect(t.ok(create({ file: 'dir/2', directory: true, oplock: 'batch' })).oplock).toBe('none');
  });

  it('a lease break that is never acknowledged leaves the lease at NONE at its timeout (MS-SMB2 3.3.2.5)', () => {
    const t = new Table();
    t.ok(create({ oplock: 'lease', lease: lease('L1', 7) }));
    t.ok(create({ clientGuid: 'c2', now: 2_000 }));
    expect(t.code({ t: 'lease.break-timeout', clientGuid: 'c1', leaseKey: 'L1', now: 2_001 })).toBe('invalid'); // not due
    // Whatever the break asked for (RH here), as Windows does: smbtorture lease.timeout.
    expect(t.ok({ t: 'lease.break-timeout', clientGuid: 'c1', leaseKey: 'L1', now: 40_000 })).toMatchObject({ completed: true, state: 0 });
    expect(getLease(t.tx, 'c1', 'L1')).toMatchObject({ state: 0 });
    expect(getLease(t.tx, 'c1', 'L1')?.breaking).toBeUndefined();
  });

  it("'lease-handle' breaks other leases' H and is waited for; oplocks are left alone (rename, delete-on-close)", () => {
    const t = new Table();
    t.ok(create({ oplock: 'lease', lease: lease('L1', LEASE_R | LEASE_H) }));
    const me = t.ok(create({ clientGuid: 'c3', desiredAccess: RD | WR | DELETE }));
    expect(planBreaks(t.tx, me.openId, 'lease-handle')).toBe(true);
    const b = t.ok({ t: 'open.break', openId: me.openId, op: 'lease-handle', now: 2_000 });
    expect(b.breaks).toEqual([expect.objectContaining({ kind: 'lease', leaseKey: 'L1', from: 3, to: 1, ackRequired: true })]);
    expect(b.waitFor).toEqual([{ kind: 'lease', clientGuid: 'c1', leaseKey: 'L1' }]);
    // While the break is in flight another such operation proposes too (and waits for it, sending
    // nothing new); once acknowledged nothing is left to break.
    expect(planBreaks(t.tx, me.openId, 'lease-handle')).toBe(true);
    expect(t.ok({ t: 'open.break', openId: me.openId, op: 'lease-handle', now: 2_050 })).toMatchObject({
      breaks: [],
      waitFor: [{ kind: 'lease', clientGuid: 'c1', leaseKey: 'L1' }],
    });
    t.ok({ t: 'lease.ack', clientGuid: 'c1', leaseKey: 'L1', state: LEASE_R, now: 2_060 });
    expect(planBreaks(t.tx, me.openId, 'lease-handle')).toBe(false);
    // A batch oplock beside a stat open: 'handle' would break it to none, 'lease-handle' does not.
    const batch = t.ok(create({ file: 'share/2', clientGuid: 'c2', oplock: 'batch' }));
    expect(batch.oplock).toBe('batch');
    const stat = t.ok(create({ file: 'share/2', clientGuid: 'c3', desiredAccess: FILE_READ_ATTRIBUTES }));
    expect(stat).toMatchObject({ status: 'ok', breaks: [] });
    expect(planBreaks(t.tx, stat.openId, 'handle')).toBe(true);
    expect(planBreaks(t.tx, stat.openId, 'lease-handle')).toBe(false);
    expect(t.ok({ t: 'open.break', openId: stat.openId, op: 'lease-handle', now: 2_100 })).toMatchObject({ breaks: [], waitFor: [] });
    expect(getOpen(t.tx, batch.openId)?.oplock).toBe('batch');
  });

  it('an open that needs H gone for a sharing conflict waits for an RH break in flight (OPEN_BREAK_H)', () => {
    const t = new Table();
    t.ok(create({ oplock: 'lease', lease: lease('L1', LEASE_R | LEASE_H), shareAccess: r }));
    // A reader that shares everything breaks nothing and does not wait.
    expect(t.ok(create({ clientGuid: 'c2', desiredAccess: RD, shareAccess: r | w | d }))).toMatchObject({ status: 'ok', breaks: [], waitFor: [] });
    // A writer conflicts with the holder's share mode: RH -> R, waited for, then the sharing check fails.
    const c0 = t.ok(create({ clientGuid: 'c3', desiredAccess: WR, shareAccess: r | w | d }));
    expect(c0.status).toBe('break-required');
    expect(c0.breaks).toEqual([expect.objectContaining({ leaseKey: 'L1', from: 3, to: 1, ackRequired: true })]);
    expect(c0.waitFor).toEqual([{ kind: 'lease', clientGuid: 'c1', leaseKey: 'L1' }]);
    // Proposed again while the break is still in flight: it keeps waiting, nothing new is sent.
    const c1 = t.ok(create({ clientGuid: 'c3', desiredAccess: WR, shareAccess: r | w | d }));
    expect(c1).toMatchObject({ status: 'break-required', breaks: [], waitFor: [{ kind: 'lease', clientGuid: 'c1', leaseKey: 'L1' }] });
    t.ok({ t: 'lease.ack', clientGuid: 'c1', leaseKey: 'L1', state: LEASE_R, now: 3_000 });
    expect(t.code(create({ clientGuid: 'c3', desiredAccess: WR, shareAccess: r | w | d }))).toBe('sharing-violation');
  });

  it('a break asked for during another break follows it: RH -> R, then R -> none, with one epoch', () => {
    const t = new Table();
    t.ok(create({ oplock: 'lease', lease: lease('L1', 7, 0x11) }));
    const b = t.ok(create({ clientGuid: 'c2' })); // RWH -> RH in flight
    expect(b.breaks[0]).toMatchObject({ from: 7, to: 3, epoch: 0x13 });
    const c = t.ok(create({ clientGuid: 'c3', overwrite: true })); // wants none
    expect(c.breaks).toEqual([]);
    expect(c.waitFor).toEqual([{ kind: 'lease', clientGuid: 'c1', leaseKey: 'L1' }]);
    // Windows (smbtorture lease.breaking3, v2_breaking3): the acknowledgment to RH is answered with
    // RH, then RH -> R needs one more acknowledgment, then R -> none needs none; the epoch stays.
    const ack = t.ok({ t: 'lease.ack', clientGuid: 'c1', leaseKey: 'L1', state: 3, now: 3_000 });
    expect(ack.state).toBe(3);
    expect(ack.breaks).toEqual([expect.objectContaining({ leaseKey: 'L1', from: 3, to: 1, epoch: 0x13, ackRequired: true })]);
    expect(getLease(t.tx, 'c1', 'L1')?.breaking).toMatchObject({ to: 1, next: 0 });
    const ack2 = t.ok({ t: 'lease.ack', clientGuid: 'c1', leaseKey: 'L1', state: 1, now: 3_100 });
    expect(ack2.state).toBe(1);
    expect(ack2.breaks).toEqual([expect.objectContaining({ leaseKey: 'L1', from: 1, to: 0, epoch: 0x13, ackRequired: false })]);
    expect(getLease(t.tx, 'c1', 'L1')).toMatchObject({ state: 0 });
    expect(getLease(t.tx, 'c1', 'L1')?.breaking).toBeUndefined();
    // The waiting opens, proposed again, break nothing more and are granted.
    expect(t.ok(create({ clientGuid: 'c2' }))).toMatchObject({ status: 'ok', breaks: [], waitFor: [] });
    expect(t.ok(create({ clientGuid: 'c3', overwrite: true }))).toMatchObject({ status: 'ok', breaks: [], waitFor: [] });
  });
});

describe('oplocks (MS-SMB2 3.3.5.9 Oplock Acquisition, 3.3.4.6, 3.3.5.22.1)', () => {
  it('a batch oplock breaks to level II for a second opener, who gets level II', () => {
    const t = new Table();
    const a = t.ok(create({ oplock: 'batch' }));
    expect(a.oplock).toBe('batch');
    const b0 = t.ok(create({ clientGuid: 'c2', oplock: 'batch' }));
    expect(b0.status).toBe('break-required');
    expect(b0.breaks).toEqual([{ kind: 'oplock', openId: a.openId, node: 'n1', from: 'batch', to: 'II', ackRequired: true }]);
    expect(getOpen(t.tx, a.openId)?.oplockBreaking).toMatchObject({ to: 'II' });
    expect(t.ok({ t: 'oplock.ack', openId: a.openId, level: 'II' })).toMatchObject({ oplock: 'II', protocolError: false });
    const b = t.ok(create({ clientGuid: 'c2', oplock: 'batch' }));
    expect(b.oplock).toBe('II');
    // Level II holders lose their oplock, without acknowledgment, to an overwriting open.
    const c = t.ok(create({ clientGuid: 'c3', overwrite: true, oplock: 'II' }));
    expect(c.breaks.map((x: { openId: number; to: string; ackRequired: boolean }) => [x.openId, x.to, x.ackRequired])).toEqual([
      [a.openId, 'none', false],
      [b.openId, 'none', false],
    ]);
  });

  it('acknowledging level II to a break to none is a protocol error and drops the oplock', () => {
    const t = new Table();
    const a = t.ok(create({ oplock: 'exclusive' }));
    t.ok(create({ clientGuid: 'c2', overwrite: true }));
    expect(getOpen(t.tx, a.openId)?.oplockBreaking?.to).toBe('none');
    expect(t.ok({ t: 'oplock.ack', openId: a.openId, level: 'II' })).toMatchObject({ oplock: 'none', protocolError: true });
    expect(t.code({ t: 'oplock.ack', openId: a.openId, level: 'none' })).toBe('invalid'); // nothing breaking now
  });

  it('level II is not granted over byte-range locks (MS-FSA 2.1.5.18)', () => {
    const t = new Table();
    const a = t.ok(create());
    t.ok({ t: 'lock.apply', openId: a.openId, locks: [{ offset: 0, length: 1, exclusive: false }], now: 1_000 });
    expect(t.ok(create({ clientGuid: 'c2', oplock: 'II' })).oplock).toBe('none');
    expect(t.ok(create({ clientGuid: 'c3', oplock: 'lease', lease: lease('L3', LEASE_R | LEASE_H) })).lease.state).toBe(0);
  });

  it('taking a lock breaks other holders of read caching (MS-FSA 2.1.5.8), and the locker\'s own level II', () => {
    const t = new Table();
    const a = t.ok(create({ oplock: 'II' }));
    const b = t.ok(create({ clientGuid: 'c2', oplock: 'II' }));
    expect(planBreaks(t.tx, b.openId, 'write')).toBe(true);
    const l = t.ok({ t: 'lock.apply', openId: b.openId, locks: [{ offset: 0, length: 1, exclusive: true }], now: 1_000 });
    expect(l.breaks).toEqual([
      { kind: 'oplock', openId: a.openId, node: 'n1', from: 'II', to: 'none', ackRequired: false },
      { kind: 'oplock', openId: b.openId, node: 'n1', from: 'II', to: 'none', ackRequired: false },
    ]);
    expect(planBreaks(t.tx, b.openId, 'write')).toBe(false);
  });

  it('open.break breaks write caching for a read (MS-FSA 2.1.4.12 case READ)', () => {
    const t = new Table();
    const a = t.ok(create({ oplock: 'lease', lease: lease('L1', 7) }));
    const b = t.ok(create({ clientGuid: 'c2', desiredAccess: FILE_READ_ATTRIBUTES })); // breaks nothing
    expect(getLease(t.tx, 'c1', 'L1')?.state).toBe(7);
    const x = t.ok({ t: 'open.break', openId: b.openId, op: 'read', now: 1_500 });
    expect(x.breaks).toEqual([expect.objectContaining({ leaseKey: 'L1', from: 7, to: 3 })]);
    expect(a.openId).toBe(1);
  });
});

describe('handle caching and the sharing check (MS-FSA 2.1.5.1.2, OPEN_BREAK_H)', () => {
  it('an RH holder that blocks an open is asked to give up handle caching; the open is retried', () => {
    const t = new Table();
    const a = t.ok(create({ desiredAccess: RD, shareAccess: 0, oplock: 'lease', lease: lease('L1', LEASE_R | LEASE_H) }));
    const retry = create({ clientGuid: 'c2', desiredAccess: RD, shareAccess: 7, now: 2_000 });
    const first = t.ok(retry);
    expect(first.status).toBe('break-required');
    expect(first.breaks).toEqual([expect.objectContaining({ kind: 'lease', leaseKey: 'L1', from: 3, to: 1, ackRequired: true })]);
    expect(opensOfFile(t.tx, 'share/1')).toHaveLength(1); // no open created
    // Retrying before the acknowledgment: still waiting, no second notification.
    const again = t.ok(retry);
    expect(again).toMatchObject({ status: 'break-required', breaks: [], waitFor: [{ kind: 'lease', clientGuid: 'c1', leaseKey: 'L1' }] });
    t.ok({ t: 'lease.ack', clientGuid: 'c1', leaseKey: 'L1', state: LEASE_R, now: 2_100 });
    // The holder still uses its handle: now the conflict is real.
    expect(t.code(retry)).toBe('sharing-violation');
    t.ok({ t: 'open.close', openId: a.openId, now: 2_200 });
    expect(t.ok(retry).status).toBe('ok');
  });

  it('a handle-caching holder on another stream is not broken: only the opened stream is (no retry loop)', () => {
    const t = new Table();
    t.ok(create({ stream: 's1', desiredAccess: RD, shareAccess: r | w, oplock: 'lease', lease: lease('L1', LEASE_R | LEASE_H) }));
    expect(t.code(create({ clientGuid: 'c2', desiredAccess: DELETE, shareAccess: 7 }))).toBe('sharing-violation');
    expect(getLease(t.tx, 'c1', 'L1')?.breaking).toBeUndefined();
  });

  it('a batch holder blocking an open is broken to level II first', () => {
    const t = new Table();
    const a = t.ok(create({ shareAccess: 0, oplock: 'batch' }));
    const first = t.ok(create({ clientGuid: 'c2' }));
    expect(first).toMatchObject({ status: 'break-required', breaks: [{ kind: 'oplock', openId: a.openId, to: 'II' }] });
  });

  it('a disconnected durable handle blocking an open is purged, and the open succeeds', () => {
    const t = new Table();
    const a = t.ok(create({ shareAccess: 0, oplock: 'batch', durable: { kind: 'v1' } }));
    expect(a.durable).toBe('v1');
    t.ok({ t: 'lock.apply', openId: a.openId, locks: [{ offset: 0, length: 10, exclusive: true }], now: 1_000 });
    expect(t.ok({ t: 'open.disconnect', openId: a.openId, now: 1_500 })).toMatchObject({ closed: false });
    const b = t.ok(create({ clientGuid: 'c2', now: 2_000 }));
    expect(b).toMatchObject({ status: 'ok', closed: [a.openId] });
    expect(getOpen(t.tx, a.openId)).toBeUndefined();
    expect(locksOfFile(t.tx, 'share/1')).toEqual([]);
  });
});

describe('byte-range locks (MS-SMB2 3.3.5.14, MS-FSA 2.1.4.10, 2.1.5.8, 2.1.5.9)', () => {
  function twoOpens() {
    const t = new Table();
    const a = t.ok(create()).openId as number;
    const b = t.ok(create({ clientGuid: 'c2' })).openId as number;
    const lock = (openId: number, offset: number | bigint, length: number | bigint, exclusive: boolean) =>
      t.code({ t: 'lock.apply', openId, locks: [{ offset, length, exclusive }], now: 1_000 });
    const unlock = (openId: number, offset: number | bigint, length: number | bigint) =>
      t.code({ t: 'lock.apply', openId, locks: [{ offset, length, unlock: true }], now: 1_000 });
    return { t, a, b, lock, unlock };
  }

  it('exclusive and shared conflicts between opens, adjacent ranges', () => {
    const { a, b, lock } = twoOpens();
    expect(lock(a, 0, 10, true)).toBe('ok');
    expect(lock(b, 5, 1, false)).toBe('lock-conflict');
    expect(lock(b, 9, 1, true)).toBe('lock-conflict');
    expect(lock(b, 10, 5, true)).toBe('ok'); // [10, 15) only touches [0, 10)
    expect(lock(a, 100, 10, false)).toBe('ok');
    expect(lock(b, 105, 10, false)).toBe('ok'); // shared locks overlap freely
    expect(lock(b, 100, 1, true)).toBe('lock-conflict');
  });

  it('the owner: shared inside its exclusive lock is fine, overlapping exclusive is not, shared blocks its exclusive', () => {
    const { a, lock } = twoOpens();
    expect(lock(a, 0, 10, true)).toBe('ok');
    expect(lock(a, 2, 3, false)).toBe('ok');
    expect(lock(a, 5, 1, true)).toBe('lock-conflict');
    expect(lock(a, 100, 10, false)).toBe('ok');
    expect(lock(a, 100, 10, true)).toBe('lock-conflict');
  });

  it('zero-length ranges', () => {
    const { a, b, lock } = twoOpens();
    expect(lock(a, 0, 10, true)).toBe('ok');
    expect(lock(b, 0, 0, true)).toBe('ok'); // {0, 0} conflicts with nothing
    expect(lock(b, 0, 0, true)).toBe('ok');
    expect(lock(b, 5, 0, true)).toBe('lock-conflict'); // strictly inside [0, 10)
    expect(lock(b, 1, 0, true)).toBe('lock-conflict');
    expect(lock(b, 10, 0, true)).toBe('ok'); // at the end: no byte of the lock precedes and follows it
    expect(lock(a, 20, 0, true)).toBe('ok');
    expect(lock(b, 19, 2, true)).toBe('lock-conflict'); // straddles offset 20
    expect(lock(b, 20, 5, true)).toBe('ok');
    expect(lock(b, 15, 5, true)).toBe('ok');
  });

  it('ranges up to 2^64 - 1, offsets beyond 2^53 kept exactly', () => {
    const { t, a, b, lock } = twoOpens();
    const top = (1n << 64n) - 1n;
    expect(lock(a, top, 1, true)).toBe('ok');
    expect(lock(b, top, 1, false)).toBe('lock-conflict');
    expect(lock(b, top - 1n, 1, true)).toBe('ok');
    expect(lock(a, 1n << 63n, 1n << 62n, false)).toBe('ok');
    expect(lock(b, (1n << 63n) + 5n, 1, true)).toBe('lock-conflict');
    expect(lock(b, top, 2, true)).toBe('invalid'); // runs past 2^64 - 1: STATUS_INVALID_LOCK_RANGE
    expect(lock(b, -1, 1, true)).toBe('invalid');
    const offsets = locksOfFile(t.tx, 'share/1').map((l) => l.offset);
    expect(offsets).toContain(top);
    expect(offsets).toContain(1n << 63n);
    expect(testLock(t.tx, 'share/1', (1n << 63n) + 1n, 1, false, b)).toBe(false); // read past a shared lock
    expect(testLock(t.tx, 'share/1', (1n << 63n) + 1n, 1, true, b)).toBe(true);
  });

  it('unlock needs the exact range held by the same open (STATUS_RANGE_NOT_LOCKED)', () => {
    const { t, a, b, lock, unlock } = twoOpens();
    expect(lock(a, 0, 10, true)).toBe('ok');
    expect(unlock(a, 0, 5)).toBe('not-found');
    expect(unlock(b, 0, 10)).toBe('not-found');
    expect(unlock(a, 0, 10)).toBe('ok');
    expect(unlock(a, 0, 10)).toBe('not-found');
    expect(getOpen(t.tx, a)?.lockCount).toBe(0);
    // A shared and an exclusive lock on the same range: the exclusive one goes first.
    expect(lock(a, 50, 5, true)).toBe('ok');
    expect(lock(a, 50, 5, false)).toBe('ok');
    expect(unlock(a, 50, 5)).toBe('ok');
    expect(locksOfFile(t.tx, 'share/1').map((l) => l.exclusive)).toEqual([false]);
  });

  it('a multi-element lock request is all or nothing; a failing unlock list keeps earlier unlocks', () => {
    const { t, a, b, lock } = twoOpens();
    expect(lock(a, 0, 10, true)).toBe('ok');
    const many = { t: 'lock.apply', openId: b, now: 1_000 };
    expect(t.code({ ...many, locks: [{ offset: 50, length: 1, exclusive: true }, { offset: 5, length: 1, exclusive: true }] })).toBe('lock-conflict');
    expect(locksOfFile(t.tx, 'share/1')).toHaveLength(1);
    // Two overlapping exclusive locks in one request conflict with each other.
    expect(t.code({ ...many, locks: [{ offset: 60, length: 2, exclusive: true }, { offset: 61, length: 1, exclusive: true }] })).toBe('lock-conflict');
    expect(t.code({ ...many, locks: [{ offset: 70, length: 1, exclusive: true }, { offset: 71, length: 1, unlock: true }] })).toBe('invalid');
    t.ok({ ...many, locks: [{ offset: 80, length: 1, exclusive: true }, { offset: 90, length: 1, exclusive: true }] });
    const partial = t.ok({ ...many, locks: [{ offset: 80, length: 1, unlock: true }, { offset: 85, length: 1, unlock: true }, { offset: 90, length: 1, unlock: true }] });
    expect(partial).toMatchObject({ unlocked: 1, failed: { index: 1, code: 'not-found' } });
    expect(locksOfFile(t.tx, 'share/1').filter((l) => l.openId === b).map((l) => l.offset)).toEqual([90n]);
    expect(getOpen(t.tx, b)?.lockCount).toBe(1);
  });

  it('testLock answers READ and WRITE checks (MS-FSA 2.1.5.3, 2.1.5.4)', () => {
    const { t, a, b, lock } = twoOpens();
    lock(a, 0, 10, true);
    lock(a, 100, 10, false);
    expect(testLock(t.tx, 'share/1', 5, 1, false, b)).toBe(true);
    expect(testLock(t.tx, 'share/1', 5, 1, false, a)).toBe(false);
    expect(testLock(t.tx, 'share/1', 5, 1, true, a)).toBe(false);
    expect(testLock(t.tx, 'share/1', 100, 4, true, a)).toBe(true); // a shared lock blocks its owner's writes
    expect(testLock(t.tx, 'share/1', 100, 4, false, b)).toBe(false);
    expect(testLock(t.tx, 'share/1', 0, 0, true, b)).toBe(false);
    expect(rangeConflicts({ openId: 1, offset: 0n, length: 0n, exclusive: true }, 0n, 5n, true, true, 2)).toBe(false);
  });

  it('closing an open removes its locks', () => {
    const { t, a, lock } = twoOpens();
    lock(a, 0, 10, true);
    lock(a, 20, 10, true);
    t.ok({ t: 'open.close', openId: a, now: 2_000 });
    expect(locksOfFile(t.tx, 'share/1')).toEqual([]);
  });
});

describe('lock sequence replay (MS-SMB2 3.3.5.14, 3.3.1.10 LockSequenceArray)', () => {
  const req = (openId: number, seq: number, index = 5, offset = 0) => ({
    t: 'lock.apply',
    openId,
    locks: [{ offset, length: 1, exclusive: true }],
    lockSequence: { index, seq },
    now: 1_000,
  });

  it('a durable open replays a repeated sequence without locking again', () => {
    const t = new Table();
    const a = t.ok(create({ oplock: 'batch', durable: { kind: 'v2', timeoutMs: 0 }, createGuid: 'g1' }));
    expect(a.durable).toBe('v2');
    expect(t.ok(req(a.openId, 3))).toMatchObject({ replay: false });
    expect(getOpen(t.tx, a.openId)?.lockSequence[4]).toBe(3);
    expect(t.ok(req(a.openId, 3))).toMatchObject({ replay: true });
    expect(locksOfFile(t.tx, 'share/1')).toHaveLength(1);
    // Another sequence number at that index is a new request (here: an overlapping exclusive lock).
    expect(t.code(req(a.openId, 4))).toBe('lock-conflict');
    expect(t.ok(req(a.openId, 4, 5, 10))).toMatchObject({ replay: false });
    expect(getOpen(t.tx, a.openId)?.lockSequence[4]).toBe(4);
    // Index 0 and indexes beyond 64 are not tracked.
    expect(t.ok(req(a.openId, 1, 0, 20)).replay).toBe(false);
    expect(t.code(req(a.openId, 1, 0, 20))).toBe('lock-conflict');
    expect(t.ok(req(a.openId, 1, 65, 30)).replay).toBe(false);
  });

  it('a plain open does not replay', () => {
    const t = new Table();
    const a = t.ok(create());
    expect(t.ok(req(a.openId, 3)).replay).toBe(false);
    expect(t.code(req(a.openId, 3))).toBe('lock-conflict');
    // ...unless the connection is multichannel.
    expect(t.ok({ ...req(a.openId, 7, 2, 40), multiChannel: true }).replay).toBe(false);
    expect(t.ok({ ...req(a.openId, 7, 2, 40), multiChannel: true }).replay).toBe(true);
  });
});

describe('durable and persistent handles (MS-SMB2 3.3.5.9.6-12, 3.3.7.1, 3.3.2.2)', () => {
  it('disconnect keeps a durable open and its locks; reconnect checks owner and CreateGuid; expiry closes it', () => {
    const t = new Table();
    const a = t.ok(create({ createGuid: 'g1', oplock: 'batch', durable: { kind: 'v2', timeoutMs: 60_000 } }));
    expect(a).toMatchObject({ durable: 'v2', timeoutMs: 60_000 });
    t.ok({ t: 'lock.apply', openId: a.openId, locks: [{ offset: 0, length: 1, exclusive: true }], now: 1_000 });
    expect(t.ok({ t: 'open.disconnect', openId: a.openId, now: 2_000 })).toEqual({ closed: false, expiresAt: 62_000 });
    expect(getOpen(t.tx, a.openId)).toMatchObject({ state: 'disconnected', disconnectedAt: 2_000 });
    expect(locksOfFile(t.tx, 'share/1')).toHaveLength(1);

    const rc = { t: 'open.reconnect', openId: a.openId, clientGuid: 'c1', createGuid: 'g1', v2: true, node: 'n2', inc: 7, owner: 'S-1-5-21-1000', now: 3_000 };
    expect(t.code({ ...rc, owner: 'S-1-5-21-2000' })).toBe('access-denied');
    expect(t.code({ ...rc, createGuid: 'g2' })).toBe('not-found');
    expect(t.code({ ...rc, openId: 99 })).toBe('not-found');
    expect(t.code({ ...rc, lease: { key: 'L1' } })).toBe('not-found'); // the open has no lease
    expect(t.code({ ...rc, persistent: true })).toBe('invalid');
    expect(t.ok(rc)).toMatchObject({ openId: a.openId, oplock: 'batch', durable: 'v2' });
    expect(getOpen(t.tx, a.openId)).toMatchObject({ state: 'active', node: 'n2', inc: 7 });
    expect(getOpen(t.tx, a.openId)?.expiresAt).toBeUndefined();
    expect(t.code(rc)).toBe('not-found'); // connected again

    t.ok({ t: 'open.disconnect', openId: a.openId, now: 4_000 });
    expect(t.ok({ t: 'open.expire', now: 63_999 })).toEqual({ closed: [], more: false });
    expect(t.ok({ t: 'open.expire', now: 64_000 })).toEqual({ closed: [a.openId], more: false });
    expect(getOpen(t.tx, a.openId)).toBeUndefined();
    expect(locksOfFile(t.tx, 'share/1')).toEqual([]);
    expect(findByCreateGuid(t.tx, 'c1', 'g1')).toBeUndefined();
  });

  it('a plain open closes on disconnect; durability needs a batch oplock or handle caching', () => {
    const t = new Table();
    const a = t.ok(create({ durable: { kind: 'v1' } }));
    expect(a.durable).toBe('none');
    expect(t.ok({ t: 'open.disconnect', openId: a.openId, now: 2_000 })).toMatchObject({ closed: true, lastOpen: true });
    expect(t.ok(create({ oplock: 'lease', lease: lease('L1', LEASE_R | LEASE_W), durable: { kind: 'v2' } })).durable).toBe('none');
    const h = t.ok(create({ file: 'share/2', oplock: 'lease', lease: lease('L2', 7), durable: { kind: 'v2', timeoutMs: 999_999 } }));
    expect(h).toMatchObject({ durable: 'v2', timeoutMs: 300_000 });
    expect(t.ok(create({ file: 'share/3', durable: { kind: 'v2' } })).durable).toBe('none');
  });

  it('a durable lease open that lost handle caching cannot reconnect', () => {
    const t = new Table();
    const a = t.ok(create({ oplock: 'lease', lease: lease('L1', 7), durable: { kind: 'v1' } }));
    expect(a.durable).toBe('v1');
    t.ok({ t: 'open.disconnect', openId: a.openId, now: 2_000 });
    // Another client overwrites: the disconnected holder cannot acknowledge, loses H and is closed.
    const b = t.ok(create({ clientGuid: 'c2', overwrite: true, now: 3_000 }));
    expect(b.closed).toEqual([a.openId]);
    expect(getLease(t.tx, 'c1', 'L1')).toBeUndefined();
  });

  it('persistent handles on CA shares: no caching needed, block other opens while disconnected, reclaimed by CreateGuid', () => {
    const t = new Table();
    const p = { createGuid: 'g9', durable: { kind: 'persistent' }, caShare: true };
    expect(t.ok(create({ ...p, file: 'share/9', createGuid: 'g8', caShare: false })).durable).toBe('none');
    const a = t.ok(create(p));
    expect(a).toMatchObject({ durable: 'persistent', timeoutMs: 180_000 });
    t.ok({ t: 'open.disconnect', openId: a.openId, now: 2_000 });
    expect(t.code(create({ clientGuid: 'c2', now: 3_000 }))).toBe('unavailable'); // STATUS_FILE_NOT_AVAILABLE
    const rc = { t: 'open.reconnect', openId: 12345, clientGuid: 'c1', createGuid: 'g9', v2: true, node: 'n3', inc: 1, owner: 'S-1-5-21-1000', now: 4_000 };
    expect(t.code({ ...rc, persistent: false })).toBe('not-found');
    expect(t.ok({ ...rc, persistent: true })).toMatchObject({ openId: a.openId, durable: 'persistent' });
  });

  it('a replayed create returns the same open; a reused CreateGuid without the replay flag is refused', () => {
    const t = new Table();
    const c = create({ createGuid: 'g1', oplock: 'batch', durable: { kind: 'v2' }, sessionId: 77 });
    const a = t.ok(c);
    expect(t.ok({ ...c, replay: true })).toMatchObject({ status: 'ok', replayed: true, openId: a.openId, oplock: 'batch' });
    expect(t.code(c)).toBe('exists'); // STATUS_DUPLICATE_OBJECTID
    expect(t.code({ ...c, replay: true, owner: 'S-1-5-21-2000' })).toBe('access-denied');
    expect(t.code({ ...c, replay: true, sessionId: 78 })).toBe('exists');
    expect(opensOfFile(t.tx, 'share/1')).toHaveLength(1);
  });

  it('the scavenger is bounded per command', () => {
    const t = new Table();
    const ids: number[] = [];
    for (let i = 0; i < 5; i++) {
      ids.push(t.ok(create({ file: `share/${i}`, oplock: 'batch', durable: { kind: 'v1' } })).openId);
    }
    for (const id of ids) t.ok({ t: 'open.disconnect', openId: id, now: 1_000 });
    expect(t.ok({ t: 'open.expire', now: 100_000, limit: 2 })).toEqual({ closed: ids.slice(0, 2), more: true });
    expect(t.ok({ t: 'open.expire', now: 100_000, limit: 2 })).toEqual({ closed: ids.slice(2, 4), more: true });
    expect(t.ok({ t: 'open.expire', now: 100_000, limit: 2 })).toEqual({ closed: ids.slice(4), more: false });
  });

  it('open.set-resilient keeps a plain open across a disconnect (MS-SMB2 3.3.5.15.9)', () => {
    const t = new Table();
    const a = t.ok(create());
    expect(t.code({ t: 'open.set-resilient', openId: a.openId, timeoutMs: 400_000 })).toBe('invalid');
    expect(t.ok({ t: 'open.set-resilient', openId: a.openId, timeoutMs: 0 })).toEqual({ timeoutMs: 120_000 });
    expect(t.ok({ t: 'open.disconnect', openId: a.openId, now: 2_000 })).toEqual({ closed: false, expiresAt: 122_000 });
  });

  it('channel sequence bookkeeping (MS-SMB2 3.3.5.2.10)', () => {
    const t = new Table();
    const a = t.ok(create({ channelSequence: 0xfff0 }));
    const cs = (channelSequence: number) => t.ok({ t: 'open.channel-sequence', openId: a.openId, channelSequence });
    expect(cs(0xfff0)).toMatchObject({ advanced: false, stale: false });
    expect(cs(2)).toMatchObject({ advanced: true, stale: false }); // wraps forward
    expect(cs(0xfff5)).toMatchObject({ advanced: false, stale: true, channelSequence: 2 });
    expect(getOpen(t.tx, a.openId)?.channelSequence).toBe(2);
  });
});

describe('app instance takeover (MS-SMB2 3.3.5.9.13)', () => {
  const vm = (clientGuid: string, extra: Partial<Command> = {}) =>
    create({ clientGuid, appInstanceId: 'vm-1', shareAccess: r, createGuid: `cg-${clientGuid}`, durable: { kind: 'persistent' }, caShare: true, ...extra });

  it("another host's open with the same AppInstanceId is closed, not broken", () => {
    const t = new Table();
    const a = t.ok(vm('hostA', { oplock: 'lease', lease: lease('LA', 7) }));
    t.ok({ t: 'lock.apply', openId: a.openId, locks: [{ offset: 0, length: 1, exclusive: true }], now: 1_000 });
    const b = t.ok(vm('hostB'));
    expect(b).toMatchObject({ status: 'ok', closed: [a.openId], breaks: [] });
    expect(getOpen(t.tx, a.openId)).toBeUndefined();
    expect(getLease(t.tx, 'hostA', 'LA')).toBeUndefined();
    expect(locksOfFile(t.tx, 'share/1')).toEqual([]);
  });

  it('also when the old open is a disconnected persistent handle', () => {
    const t = new Table();
    const a = t.ok(vm('hostA'));
    t.ok({ t: 'open.disconnect', openId: a.openId, now: 2_000 });
    expect(t.ok(vm('hostB', { now: 3_000 })).closed).toEqual([a.openId]);
  });

  it('the same client is not taken over from; a different AppInstanceId is not touched', () => {
    const t = new Table();
    t.ok(vm('hostA'));
    expect(t.code(vm('hostA', { createGuid: 'other' }))).toBe('sharing-violation');
    expect(t.code(vm('hostB', { appInstanceId: 'vm-2' }))).toBe('sharing-violation');
  });

  it('an older or equal AppInstanceVersion fails with STATUS_FILE_FORCED_CLOSED', () => {
    const t = new Table();
    const a = t.ok(vm('hostA', { appInstanceVersion: [1, 5] }));
    expect(t.code(vm('hostB', { appInstanceVersion: [1, 5] }))).toBe('stale');
    expect(t.code(vm('hostB', { appInstanceVersion: [0, 9] }))).toBe('stale');
    expect(t.code(vm('hostB'))).toBe('stale'); // no version against a versioned open
    expect(t.ok(vm('hostB', { appInstanceVersion: [1n, 6n] })).closed).toEqual([a.openId]);
  });
});

describe('node failure', () => {
  it('open.node-down: durable opens of the dead incarnation disconnect, the others close; later incarnations and other nodes stay', () => {
    const t = new Table();
    const durable = t.ok(create({ file: 'f/1', oplock: 'batch', durable: { kind: 'v1' } })).openId;
    const plain = t.ok(create({ file: 'f/2' })).openId;
    t.ok({ t: 'lock.apply', openId: plain, locks: [{ offset: 0, length: 1, exclusive: true }], now: 1_000 });
    const elsewhere = t.ok(create({ file: 'f/3', node: 'n2' })).openId;
    const newer = t.ok(create({ file: 'f/4', inc: 2 })).openId;
    const res = t.ok({ t: 'open.node-down', node: 'n1', inc: 1, now: 5_000 });
    expect(res).toEqual({ disconnected: [durable], closed: [plain], more: false });
    expect(getOpen(t.tx, durable)).toMatchObject({ state: 'disconnected', expiresAt: 65_000 });
    expect(getOpen(t.tx, plain)).toBeUndefined();
    expect(locksOfFile(t.tx, 'f/2')).toEqual([]);
    expect(getOpen(t.tx, elsewhere)?.state).toBe('active');
    expect(getOpen(t.tx, newer)?.state).toBe('active');
    expect(t.ok({ t: 'open.node-down', node: 'n1', inc: 1, now: 5_000 })).toEqual({ disconnected: [], closed: [], more: false });
  });

  it("an open of a node whose incarnation changed can be reclaimed before node-down ran", () => {
    const t = new Table();
    const a = t.ok(create({ oplock: 'batch', durable: { kind: 'v1' } }));
    const rc = { t: 'open.reconnect', openId: a.openId, clientGuid: 'c1', node: 'n2', inc: 1, owner: 'S-1-5-21-1000', now: 2_000 };
    expect(t.code(rc)).toBe('not-found'); // n1 incarnation 1 is, as far as the table knows, alive
    // The cluster family's node record (key('node', id)) says n1 restarted as incarnation 2.
    t.store.tx().put(key('node', 'n1'), { node: 'n1', incarnation: 2, state: 'up' });
    expect(t.ok(rc)).toMatchObject({ openId: a.openId });
    expect(getOpen(t.tx, a.openId)).toMatchObject({ node: 'n2', state: 'active' });
  });
});

describe('argument validation', () => {
  it.each([
    ['missing file', { file: undefined }],
    ['NUL in file', { file: 'a\u0000b' }],
    ['bad oplock', { oplock: 'level3' }],
    ['share bits beyond delete', { shareAccess: 8 }],
    ['negative now', { now: -1 }],
    ['version without id', { appInstanceVersion: [1, 1] }],
    ['bad durable kind', { durable: { kind: 'v3' } }],
    ['lease version 3', { oplock: 'lease', lease: { key: 'k', state: 7, version: 3 } }],
  ] as [string, Partial<Command>][])('open.create refuses %s', (_n, over) => {
    expect(new Table().code(create(over))).toBe('invalid');
  });

  it('every command refuses junk with a result, never a throw', () => {
    const t = new Table();
    for (const [name, handler] of Object.entries(opensHandlers)) {
      const res = handler(new MemoryStore().tx(), { t: name, openId: 'x', now: 'y', locks: 5, file: 3, node: 7 });
      expect(res, name).toMatchObject({ ok: false, code: 'invalid' });
    }
    expect(t.code({ t: 'lock.apply', openId: 1, locks: [], now: 1 })).toBe('invalid');
    expect(t.code({ t: 'open.close', openId: 1, now: 1 })).toBe('not-found');
  });
});

// ---- property: random command streams keep the table consistent ----

function checkInvariants(store: MemoryStore): void {
  const tx = store.tx();
  const opens = new Map<number, Open>();
  for (const [, o] of tx.range<Open>(key('open'))) opens.set(o.openId, o);
  const leaseRefs = new Map<string, number>();
  for (const o of opens.values()) {
    expect(tx.get(key('open-file', o.file, o.openId))).toBeDefined();
    expect(tx.get(key('open-node', o.node, o.openId)) !== undefined).toBe(o.state === 'active');
    if (o.state === 'disconnected') expect(tx.get(key('open-disc', o.expiresAt!, o.openId))).toBeDefined();
    if (o.leaseKey !== undefined) {
      const id = `${o.clientGuid}/${o.leaseKey}`;
      leaseRefs.set(id, (leaseRefs.get(id) ?? 0) + 1);
      expect(getLease(tx, o.clientGuid, o.leaseKey)?.file).toBe(o.file);
    }
  }
  const indexed = (prefix: string, check: (parts: (string | number)[], v: Record<string, unknown>) => void) => {
    for (const [k, v] of tx.range<Record<string, unknown>>(key(prefix))) check(decodeKey(k), v);
  };
  indexed('open-file', ([, file, id]) => expect(opens.get(id as number)?.file).toBe(file));
  indexed('open-node', ([, node, id]) => expect(opens.get(id as number)).toMatchObject({ node, state: 'active' }));
  indexed('open-disc', ([, exp, id]) => expect(opens.get(id as number)).toMatchObject({ expiresAt: exp, state: 'disconnected' }));
  indexed('open-app', ([, app, id]) => expect(opens.get(id as number)?.appInstanceId).toBe(app));
  indexed('open-create', ([, cg, g], v) => expect(opens.get(v.openId as number)).toMatchObject({ clientGuid: cg, createGuid: g }));
  const lockCounts = new Map<number, number>();
  for (const [k, l] of tx.range<Lock>(key('lock'))) {
    const o = opens.get(l.openId);
    expect(o, `lock ${decodeKey(k).join('/')} without its open`).toBeDefined();
    expect(decodeKey(k)[1]).toBe(o!.file);
    expect(l.stream).toBe(o!.stream);
    lockCounts.set(l.openId, (lockCounts.get(l.openId) ?? 0) + 1);
  }
  for (const o of opens.values()) expect(o.lockCount).toBe(lockCounts.get(o.openId) ?? 0);
  for (const [, l] of tx.range<Lease>(key('lease'))) {
    expect(l.opens).toBeGreaterThan(0);
    expect(leaseRefs.get(`${l.clientGuid}/${l.leaseKey}`)).toBe(l.opens);
  }
  for (const o of opens.values()) if (o.leaseKey !== undefined) expect(getLease(tx, o.clientGuid, o.leaseKey)).toBeDefined();
}

/** Points a generated command at the table's current opens and leases, so most commands hit something. */
function aim(t: Table, c: Command): Command {
  const live = [...opensOfFile(t.tx, 'f/1'), ...opensOfFile(t.tx, 'f/2')];
  const cmd: Command = { ...c };
  delete cmd.match;
  if (typeof c.openId === 'number' && live.length > 0) {
    const o = live[c.openId % live.length]!;
    cmd.openId = o.openId;
    if (c.t === 'open.reconnect' && c.match === true) {
      const o = live.find((x) => x.state === 'disconnected') ?? live[c.openId % live.length]!;
      cmd.openId = o.openId;
      Object.assign(cmd, { clientGuid: o.clientGuid, owner: o.owner, createGuid: o.createGuid, v2: o.createGuid !== undefined });
      cmd.persistent = o.durable === 'persistent';
      cmd.lease = o.leaseKey === undefined ? undefined : { key: o.leaseKey };
    }
  }
  if (c.t === 'oplock.ack' && c.match === true) {
    const o = live.find((x) => x.oplockBreaking !== undefined);
    if (o !== undefined) Object.assign(cmd, { openId: o.openId, level: o.oplockBreaking!.to });
  }
  if (c.t === 'lock.apply') cmd.locks = (c.locks as object[]).map((l) => ({ ...l, unlock: c.unlock }));
  delete cmd.unlock;
  if (c.t === 'lease.ack' && c.match === true) {
    for (const o of live) {
      const l = o.leaseKey === undefined ? undefined : getLease(t.tx, o.clientGuid, o.leaseKey);
      if (l?.breaking !== undefined) Object.assign(cmd, { clientGuid: l.clientGuid, leaseKey: l.leaseKey, state: l.breaking.to });
    }
  }
  return cmd;
}

describe('property: random command streams', () => {
  const clients = ['c1', 'c2', 'c3'];
  const arbCreate = fc.record({
    t: fc.constant('open.create'),
    file: fc.constantFrom('f/1', 'f/2'),
    stream: fc.constantFrom('', '', 's'),
    node: fc.constantFrom('n1', 'n2'),
    inc: fc.constant(1),
    clientGuid: fc.constantFrom(...clients),
    desiredAccess: fc.constantFrom(RD, WR, RD | WR, DELETE, FILE_READ_ATTRIBUTES, RD | WR | DELETE),
    shareAccess: fc.integer({ min: 0, max: 7 }),
    createOptions: fc.constant(0),
    overwrite: fc.boolean(),
    oplock: fc.constantFrom('none', 'II', 'batch', 'lease', 'lease'),
    lease: fc.record({ key: fc.constantFrom('k1', 'k2'), state: fc.constantFrom(1, 3, 5, 7), epoch: fc.nat(3) }),
    durable: fc.option(fc.record({ kind: fc.constantFrom('v1', 'v2', 'persistent'), timeoutMs: fc.constantFrom(0, 5_000) }), { nil: undefined }),
    caShare: fc.boolean(),
    createGuid: fc.option(fc.constantFrom('g1', 'g2', 'g3'), { nil: undefined }),
    replay: fc.boolean(),
    appInstanceId: fc.option(fc.constant('app'), { nil: undefined }),
    owner: fc.constantFrom('u1', 'u2'),
  });
  const id = fc.integer({ min: 1, max: 6 });
  const arbCmd = fc.oneof(
    { weight: 8, arbitrary: arbCreate },
    { weight: 2, arbitrary: fc.record({ t: fc.constant('open.close'), openId: id }) },
    { weight: 2, arbitrary: fc.record({ t: fc.constant('open.disconnect'), openId: id }) },
    {
      weight: 2,
      arbitrary: fc.record({
        t: fc.constant('open.reconnect'),
        openId: id,
        clientGuid: fc.constantFrom(...clients),
        createGuid: fc.option(fc.constantFrom('g1', 'g2'), { nil: undefined }),
        v2: fc.boolean(),
        persistent: fc.boolean(),
        match: fc.boolean(),
        lease: fc.option(fc.record({ key: fc.constantFrom('k1', 'k2') }), { nil: undefined }),
        node: fc.constantFrom('n1', 'n2'),
        inc: fc.constant(1),
        owner: fc.constantFrom('u1', 'u2'),
      }),
    },
    { weight: 1, arbitrary: fc.record({ t: fc.constant('open.expire'), limit: fc.integer({ min: 1, max: 3 }) }) },
    { weight: 1, arbitrary: fc.record({ t: fc.constant('open.node-down'), node: fc.constantFrom('n1', 'n2'), inc: fc.constant(1) }) },
    {
      weight: 4,
      arbitrary: fc.record({
        t: fc.constant('lock.apply'),
        openId: id,
        locks: fc.array(
          fc.record({ offset: fc.integer({ min: 0, max: 20 }), length: fc.integer({ min: 0, max: 6 }), exclusive: fc.boolean() }),
          { minLength: 1, maxLength: 3 },
        ),
        unlock: fc.constantFrom(false, false, false, true),
        lockSequence: fc.option(fc.record({ index: fc.integer({ min: 0, max: 3 }), seq: fc.integer({ min: 0, max: 2 }) }), { nil: undefined }),
      }),
    },
    {
      weight: 2,
      arbitrary: fc.record({
        t: fc.constant('lease.ack'),
        clientGuid: fc.constantFrom(...clients),
        leaseKey: fc.constantFrom('k1', 'k2'),
        state: fc.constantFrom(0, 1, 3, 5),
        match: fc.boolean(),
      }),
    },
    { weight: 1, arbitrary: fc.record({ t: fc.constant('lease.break-timeout'), clientGuid: fc.constantFrom(...clients), leaseKey: fc.constantFrom('k1', 'k2') }) },
    { weight: 2, arbitrary: fc.record({ t: fc.constant('oplock.ack'), openId: id, level: fc.constantFrom('II', 'none'), match: fc.boolean() }) },
    { weight: 1, arbitrary: fc.record({ t: fc.constant('open.set-resilient'), openId: id, timeoutMs: fc.constantFrom(0, 9_000) }) },
    { weight: 1, arbitrary: fc.record({ t: fc.constant('oplock.break-timeout'), openId: id }) },
    { weight: 1, arbitrary: fc.record({ t: fc.constant('open.break'), openId: id, op: fc.constantFrom('read', 'write', 'handle') }) },
  );

  it('never leaves an index entry without its open, or a lock/lease whose open is gone; retries settle', () => {
    fc.assert(
      fc.property(fc.array(arbCmd, { minLength: 10, maxLength: 50 }), (cmds) => {
        const t = new Table();
        let now = 1_000;
        for (const c of cmds) {
          now += 7_000; // every step moves time on; timeouts fall due along the way
          const cmd = aim(t, { ...(c as Command), now });
          const res = t.run(cmd);
          expect(res.ok || res.code !== 'internal').toBe(true);
          checkInvariants(t.store);
          // Liveness: 'break-required' with nothing to wait for settles on an immediate retry.
          const v = res.ok ? (res.value as { status?: string; waitFor?: unknown[] }) : undefined;
          if (v?.status === 'break-required' && v.waitFor!.length === 0) {
            const again = t.run(cmd);
            expect(again.ok && (again.value as { status?: string }).status === 'break-required' && (again.value as { waitFor: unknown[] }).waitFor.length === 0).toBe(false);
            checkInvariants(t.store);
          }
        }
      }),
      { numRuns: 150 },
    );
  });
});
