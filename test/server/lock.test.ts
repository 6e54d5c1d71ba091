// SMB2 LOCK against a running Tessera (src/server/handlers/lock.ts over the open table's lock.apply):
// blocking locks and what ends their wait (MS-SMB2 3.3.5.14.2, 3.3.5.16), and a durable open's locks
// across its reconnect with LockSequence replay (MS-SMB2 3.3.5.9.7, 3.3.5.14; HYPERV-CA.md item 8).
// waitForLock, the wait itself, is also tested alone: every exit path removes its watch.

import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitForLock } from '../../src/server/handlers/lock.js';
import type { LockOutcome } from '../../src/meta/opens-client.js';
import { freePort, startTessera, type RunningServer } from '../helpers/servers.js';
import { Access, Lease, LockFlag, Smb2Client, SmbStatusError, Status, statusName, tracker, type ClientOptions } from '../helpers/smb2-client.js';

const user = 'lockuser';
const password = 'Lock-Passw0rd';

// ---- waitForLock alone ---------------------------------------------------------------------------

const granted: LockOutcome = { ok: true, replay: false, breaks: [], waitFor: [] };
const conflict: LockOutcome = { ok: false, code: 'lock-conflict', message: 'conflict' };

/** A fake table: counts live watches, lets the test fire a change and script the attempts. */
function fakeTable(outcomes: LockOutcome[]) {
  const watchers = new Set<() => void>();
  let attempts = 0;
  return {
    watchers,
    get attempts() {
      return attempts;
    },
    watch: (cb: () => void) => {
      watchers.add(cb);
      return () => void watchers.delete(cb);
    },
    change: () => {
      for (const cb of [...watchers]) cb();
    },
    attempt: async (): Promise<LockOutcome> => {
      attempts++;
      await Promise.resolve(); // the proposal is in flight: the test may act meanwhile
      return outcomes.shift() ?? conflict;
    },
  };
}

/** Resolves once `cond` holds, checking after each turn of the event loop (bounded). */
async function until(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 1000 && !cond(); i++) await new Promise<void>((r) => setImmediate(r));
  expect(cond()).toBe(true);
}

describe('waitForLock', () => {
  it('retries once at once, then only after a change; granted ends the wait and removes the watch', async () => {
    const t = fakeTable([conflict, conflict, granted]);
    const ac = new AbortController();
    const p = waitForLock({ signal: ac.signal, gone: () => false, attempt: t.attempt, watch: t.watch });
    await until(() => t.attempts === 1);
    expect(t.watchers.size).toBe(1);
    await new Promise<void>((r) => setImmediate(r));
    expect(t.attempts).toBe(1); // no change, no retry
    t.change();
    await until(() => t.attempts === 2);
    t.change();
    expect(await p).toBe(granted);
    expect(t.attempts).toBe(3);
    expect(t.watchers.size).toBe(0);
  });

  it('a change during an attempt in flight is not lost', async () => {
    const t = fakeTable([conflict, granted]);
    const ac = new AbortController();
    const p = waitForLock({ signal: ac.signal, gone: () => false, attempt: t.attempt, watch: t.watch });
    t.change(); // lands while the first retry is being proposed
    expect(await p).toBe(granted);
    expect(t.watchers.size).toBe(0);
  });

  it('cancel ends the wait with "cancelled"; a closed open with "closed"; both remove the watch', async () => {
    const t = fakeTable([]);
    const ac = new AbortController();
    const p = waitForLock({ signal: ac.signal, gone: () => false, attempt: t.attempt, watch: t.watch });
    await until(() => t.attempts === 1);
    ac.abort();
    expect(await p).toBe('cancelled');
    expect(t.watchers.size).toBe(0);

    const u = fakeTable([]);
    let gone = false;
    const q = waitForLock({ signal: new AbortController().signal, gone: () => gone, attempt: u.attempt, watch: u.watch });
    await until(() => u.attempts === 1);
    gone = true;
    u.change();
    expect(await q).toBe('closed');
    expect(u.watchers.size).toBe(0);
  });

  it('the open vanishing from the table is "closed"; another refusal is returned as it is', async () => {
    const t = fakeTable([{ ok: false, code: 'not-found', message: 'no open' }]);
    expect(await waitForLock({ signal: new AbortController().signal, gone: () => false, attempt: t.attempt, watch: t.watch })).toBe('closed');
    expect(t.watchers.size).toBe(0);
    const limit: LockOutcome = { ok: false, code: 'limit', message: 'too many' };
    const u = fakeTable([limit]);
    expect(await waitForLock({ signal: new AbortController().signal, gone: () => false, attempt: u.attempt, watch: u.watch })).toBe(limit);
    expect(u.watchers.size).toBe(0);
  });

  it('an attempt that throws removes the watch too', async () => {
    const watchers = new Set<() => void>();
    const watch = (cb: () => void) => {
      watchers.add(cb);
      return () => void watchers.delete(cb);
    };
    const attempt = async (): Promise<LockOutcome> => {
      throw new Error('meta unavailable');
    };
    await expect(waitForLock({ signal: new AbortController().signal, gone: () => false, attempt, watch })).rejects.toThrow('meta unavailable');
    expect(watchers.size).toBe(0);
  });
});

// ---- against a running server ---------------------------------------------------------------------

let root = '';
let server: RunningServer | undefined;
let base: ClientOptions & { user: string; password: string; share: string };

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'tessera-locktest-'));
  const port = await freePort();
  server = await startTessera({ port, shares: [{ name: 'vms', path: join(root, 'vms') }], users: [{ name: user, password }], extraArgs: ['--log-level', 'warn'] });
  base = { host: server.host, port, user, password, share: 'vms' };
});

afterAll(async () => {
  await server?.stop();
  if (root) rmSync(root, { recursive: true, force: true });
});

const X = (offset: number, length: number, wait = false) => ({ offset, length, flags: LockFlag.EXCLUSIVE | (wait ? 0 : LockFlag.FAIL_IMMEDIATELY) });
const U = (offset: number, length: number) => ({ offset, length, flags: LockFlag.UNLOCK });

/** The status a LOCK ends with (SUCCESS when it resolves). */
async function statusOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'SUCCESS';
  } catch (e) {
    if (e instanceof SmbStatusError) return statusName(e.status);
    throw e;
  }
}

/** Sends a blocking lock and waits for its interim STATUS_PENDING; `settled` tells whether it ended. */
async function pendingLock(c: Smb2Client, fileId: Buffer, offset: number, length: number) {
  const t = tracker();
  let settled = false;
  const result = statusOf(c.lock(fileId, [X(offset, length, true)], { track: t.track })).finally(() => (settled = true));
  const req = await t.sent;
  await req.interim;
  return { req, result, settled: () => settled };
}

async function twoHandles(name: string) {
  const c1 = await Smb2Client.open(base);
  const c2 = await Smb2Client.open(base);
  const rw = Access.READ_DATA | Access.WRITE_DATA;
  const h1 = (await c1.create({ name, desiredAccess: rw })).FileId;
  const h2 = (await c2.create({ name, desiredAccess: rw })).FileId;
  return { c1, c2, h1, h2 };
}

describe('READ and WRITE against locks (MS-FSA 2.1.5.3, 2.1.5.4)', () => {
  it('see every lock and unlock at once, also after earlier I/O through the same open (the per-open check is kept between changes)', async () => {
    const { c1, c2, h1, h2 } = await twoHandles('io-vs-locks.dat');
    await c2.write(h2, 0, Buffer.alloc(4096, 1));
    expect((await c2.read(h2, 0, 10)).length).toBe(10); // nothing locked yet: the check is kept
    for (let round = 0; round < 3; round++) {
      await c1.lock(h1, [X(0, 100)]);
      expect(await statusOf(c2.read(h2, 50, 10))).toBe('FILE_LOCK_CONFLICT');
      expect(await statusOf(c2.write(h2, 0, Buffer.alloc(1)))).toBe('FILE_LOCK_CONFLICT');
      expect((await c2.read(h2, 200, 10)).length).toBe(10); // outside the range
      await c1.lock(h1, [U(0, 100)]);
      expect((await c2.read(h2, 50, 10)).length).toBe(10);
      expect(await c2.write(h2, 0, Buffer.alloc(1))).toBe(1);
    }
    c1.destroy();
    c2.destroy();
  });
});

describe('blocking locks (MS-SMB2 3.3.5.14.2)', () => {
  it('pends on a conflict and is granted when the holder unlocks', async () => {
    const { c1, c2, h1, h2 } = await twoHandles('unlock-wakes.dat');
    await c1.lock(h1, [X(100, 10)]);
    const w = await pendingLock(c2, h2, 105, 1);
    expect(await statusOf(c2.lock(h2, [X(105, 1)]))).toBe('LOCK_NOT_GRANTED'); // FAIL_IMMEDIATELY still fails
    await c1.lock(h1, [U(100, 10)]);
    expect(await w.result).toBe('SUCCESS');
    expect(await statusOf(c1.lock(h1, [X(105, 1)]))).toBe('LOCK_NOT_GRANTED'); // c2 holds it now
    c1.destroy();
    c2.destroy();
  });

  it('is granted when the holder closes its open, or its connection drops', async () => {
    const { c1, c2, h1, h2 } = await twoHandles('close-wakes.dat');
    await c1.lock(h1, [X(0, 10)]);
    const w = await pendingLock(c2, h2, 0, 10);
    await c1.closeFile(h1);
    expect(await w.result).toBe('SUCCESS');

    const c3 = await Smb2Client.open(base);
    const h3 = (await c3.create({ name: 'close-wakes.dat', desiredAccess: Access.READ_DATA | Access.WRITE_DATA })).FileId;
    const w3 = await pendingLock(c3, h3, 5, 1);
    c2.destroy(); // the holder's connection goes: its (non-durable) open and locks go with it
    expect(await w3.result).toBe('SUCCESS');
    c1.destroy();
    c3.destroy();
  });

  it('CANCEL completes it with STATUS_CANCELLED and it takes nothing afterwards', async () => {
    const { c1, c2, h1, h2 } = await twoHandles('cancel.dat');
    await c1.lock(h1, [X(0, 10)]);
    const w = await pendingLock(c2, h2, 0, 10);
    c2.cancel(w.req);
    expect(await w.result).toBe('CANCELLED');
    await c1.lock(h1, [U(0, 10)]);
    await c1.lock(h1, [X(0, 10)]); // the cancelled request did not take the range when it was freed
    c1.destroy();
    c2.destroy();
  });

  it('closing the waiting handle completes it with STATUS_RANGE_NOT_LOCKED', async () => {
    const { c1, c2, h1, h2 } = await twoHandles('close-waiter.dat');
    await c1.lock(h1, [X(0, 10)]);
    const w = await pendingLock(c2, h2, 0, 10);
    await c2.closeFile(h2);
    expect(await w.result).toBe('RANGE_NOT_LOCKED');
    await c1.lock(h1, [U(0, 10)]);
    await c1.lock(h1, [U(0, 10)]).then(
      () => expect.fail('a second unlock succeeded'),
      (e: SmbStatusError) => expect(e.status).toBe(Status.RANGE_NOT_LOCKED),
    );
    c1.destroy();
    c2.destroy();
  });
});

describe('a durable open keeps its locks across a reconnect (MS-SMB2 3.3.5.9.7, 3.3.5.14)', () => {
  it('another open stays blocked while it is disconnected; a replayed lock does not run again; its unlock wakes the waiter', async () => {
    const clientGuid = randomBytes(16);
    const name = 'durable-locks.dat';
    const leaseKey = randomBytes(16);
    const rw = Access.READ_DATA | Access.WRITE_DATA;
    const c1 = await Smb2Client.open({ ...base, clientGuid });
    const a = await c1.create({ name, desiredAccess: rw, lease: { key: leaseKey, state: Lease.RH }, durable: true });
    expect(a.durable).toBe(true);
    expect(a.lease?.LeaseState).toBe(Lease.RH);
    const sequence = { number: 1, index: 1 };
    await c1.lock(a.FileId, [X(100, 100)], { sequence });

    const c2 = await Smb2Client.open(base);
    const h2 = (await c2.create({ name, desiredAccess: rw })).FileId;
    const w = await pendingLock(c2, h2, 150, 1);

    c1.destroy(); // the host goes away; the durable open and its lock stay in the table
    const c3 = await Smb2Client.open({ ...base, clientGuid });
    const r = await c3.create({ name, desiredAccess: rw, lease: { key: leaseKey, state: Lease.RH }, durableReconnect: a.FileId });
    expect(r.FileId.equals(a.FileId)).toBe(true);
    expect(await statusOf(c2.lock(h2, [X(150, 1)]))).toBe('LOCK_NOT_GRANTED');
    expect(w.settled()).toBe(false);

    // The same LockSequence again is a replay: had it run, the exclusive lock would meet itself.
    await c3.lock(r.FileId, [X(100, 100)], { sequence });
    expect(w.settled()).toBe(false);
    await c3.lock(r.FileId, [U(100, 100)], { sequence: { number: 2, index: 1 } });
    expect(await w.result).toBe('SUCCESS');
    expect(await statusOf(c3.lock(r.FileId, [U(100, 100)]))).toBe('RANGE_NOT_LOCKED');
    c2.destroy();
    c3.destroy();
  });
});
