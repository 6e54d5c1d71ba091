import { describe, expect, it } from 'vitest';
import { limits } from '../../src/base/limits.js';
import { RECORD_VERSION } from '../../src/meta/codec.js';
import { clusterHandlers, getCluster, getNode, getShare, listNodes, listShares } from '../../src/meta/families/cluster.js';
import { MemoryStore, type ApplyTx, type Command, type CommandResult } from '../../src/meta/tx.js';
import { MemoryStateStore } from '../../src/meta/store.js';
import { batch, entry, join, machine } from './sm-helpers.js';

/** Runs handlers straight on a MemoryStore (the state machine's overlay/rollback is tested elsewhere). */
function harness() {
  const store = new MemoryStore();
  const tx: ApplyTx = store.tx();
  const run = (cmd: Command): CommandResult => {
    const h = clusterHandlers[cmd.t];
    if (!h) throw new Error(`no handler ${cmd.t}`);
    return h(tx, cmd);
  };
  return { tx, run };
}

const joinCmd = (node: string, inc: number, now = 1000, leaseMs = 5000, address = '127.0.0.11:445') => ({
  t: 'node.join',
  node,
  inc,
  address,
  now,
  leaseMs,
});

describe('cluster.init', () => {
  it('creates the cluster record once; the same init again is a no-op', () => {
    const { tx, run } = harness();
    expect(getCluster(tx)).toBeUndefined();
    expect(run({ t: 'cluster.init', clusterId: 'lab', recordVersion: RECORD_VERSION })).toEqual({ ok: true, value: { created: true } });
    expect(getCluster(tx)).toEqual({ clusterId: 'lab', recordVersion: RECORD_VERSION });
    expect(run({ t: 'cluster.init', clusterId: 'lab', recordVersion: RECORD_VERSION })).toEqual({ ok: true, value: { created: false } });
  });

  it('refuses another id (exists) or another version (version-mismatch)', () => {
    const { tx, run } = harness();
    run({ t: 'cluster.init', clusterId: 'lab', recordVersion: RECORD_VERSION });
    expect(run({ t: 'cluster.init', clusterId: 'other', recordVersion: RECORD_VERSION })).toMatchObject({ ok: false, code: 'exists' });
    expect(run({ t: 'cluster.init', clusterId: 'lab', recordVersion: RECORD_VERSION + 1 })).toMatchObject({
      ok: false,
      code: 'version-mismatch',
    });
    expect(getCluster(tx)).toEqual({ clusterId: 'lab', recordVersion: RECORD_VERSION });
  });

  it('does not create a cluster of another record version', () => {
    const { tx, run } = harness();
    expect(run({ t: 'cluster.init', clusterId: 'lab', recordVersion: RECORD_VERSION + 1 })).toMatchObject({ code: 'version-mismatch' });
    expect(getCluster(tx)).toBeUndefined();
  });

  it('validates its arguments', () => {
    const { run } = harness();
    for (const bad of [
      { t: 'cluster.init', recordVersion: RECORD_VERSION },
      { t: 'cluster.init', clusterId: '', recordVersion: RECORD_VERSION },
      { t: 'cluster.init', clusterId: 'x'.repeat(limits.metaNodeIdLengthMax + 1), recordVersion: RECORD_VERSION },
      { t: 'cluster.init', clusterId: 'lab', recordVersion: '1' },
      { t: 'cluster.init', clusterId: 'lab', recordVersion: 0 },
      { t: 'cluster.init', clusterId: 'lab', recordVersion: 1.5 },
    ]) {
      expect(run(bad)).toMatchObject({ ok: false, code: 'invalid' });
    }
  });
});

describe('node membership', () => {
  it('join sets the record and increments the epoch on every join', () => {
    const { tx, run } = harness();
    expect(run(joinCmd('n1', 1, 1000, 5000))).toEqual({ ok: true, value: { epoch: 1 } });
    expect(getNode(tx, 'n1')).toEqual({
      node: 'n1',
      incarnation: 1,
      epoch: 1,
      address: '127.0.0.11:445',
      joinedAt: 1000,
      leaseUntil: 6000,
      state: 'up',
    });
    expect(run(joinCmd('n1', 5, 2000, 5000, '127.0.0.12:445'))).toEqual({ ok: true, value: { epoch: 2 } });
    expect(getNode(tx, 'n1')).toMatchObject({ incarnation: 5, epoch: 2, address: '127.0.0.12:445', joinedAt: 2000, leaseUntil: 7000 });
  });

  it('join with an incarnation not above the current one is stale', () => {
    const { tx, run } = harness();
    run(joinCmd('n1', 3));
    expect(run(joinCmd('n1', 3))).toMatchObject({ ok: false, code: 'stale' });
    expect(run(joinCmd('n1', 2))).toMatchObject({ ok: false, code: 'stale' });
    expect(getNode(tx, 'n1')).toMatchObject({ incarnation: 3, epoch: 1 });
  });

  it('renew extends the lease of the current incarnation and never shortens it', () => {
    const { tx, run } = harness();
    run(joinCmd('n1', 1, 1000, 5000));
    expect(run({ t: 'node.renew', node: 'n1', inc: 1, now: 3000, leaseMs: 5000 })).toEqual({ ok: true, value: { leaseUntil: 8000, epoch: 1 } });
    // A renewal computed with an earlier clock reading does not pull the lease back.
    expect(run({ t: 'node.renew', node: 'n1', inc: 1, now: 1000, leaseMs: 1000 })).toMatchObject({ ok: true, value: { leaseUntil: 8000 } });
    expect(getNode(tx, 'n1')!.leaseUntil).toBe(8000);
    expect(run({ t: 'node.renew', node: 'n1', inc: 2, now: 3000, leaseMs: 5000 })).toMatchObject({ ok: false, code: 'stale' });
    expect(run({ t: 'node.renew', node: 'nx', inc: 1, now: 3000, leaseMs: 5000 })).toMatchObject({ ok: false, code: 'not-found' });
  });

  it('leave marks the node left (idempotent); a left node cannot renew until it joins again', () => {
    const { tx, run } = harness();
    run(joinCmd('n1', 1));
    expect(run({ t: 'node.leave', node: 'n1', inc: 2 })).toMatchObject({ ok: false, code: 'stale' });
    expect(run({ t: 'node.leave', node: 'n1', inc: 1 })).toEqual({ ok: true });
    expect(run({ t: 'node.leave', node: 'n1', inc: 1 })).toEqual({ ok: true });
    expect(getNode(tx, 'n1')!.state).toBe('left');
    expect(run({ t: 'node.renew', node: 'n1', inc: 1, now: 1500, leaseMs: 5000 })).toMatchObject({ ok: false, code: 'fenced' });
    expect(run(joinCmd('n1', 2, 9000))).toEqual({ ok: true, value: { epoch: 2 } });
    expect(getNode(tx, 'n1')!.state).toBe('up');
  });

  it('expire declares a node down only once its lease ran out before `now`', () => {
    const { tx, run } = harness();
    run(joinCmd('n1', 1, 1000, 5000)); // leaseUntil 6000
    expect(run({ t: 'node.expire', node: 'n1', now: 6000 })).toEqual({ ok: true, value: { expired: false, state: 'up' } });
    expect(getNode(tx, 'n1')!.state).toBe('up');
    expect(run({ t: 'node.expire', node: 'n1', now: 6001 })).toEqual({ ok: true, value: { expired: true, state: 'down' } });
    expect(getNode(tx, 'n1')!.state).toBe('down');
    expect(run({ t: 'node.expire', node: 'n1', now: 9999 })).toEqual({ ok: true, value: { expired: false, state: 'down' } });
    // A node declared down is fenced from renewing; it must rejoin (new incarnation, new epoch).
    expect(run({ t: 'node.renew', node: 'n1', inc: 1, now: 7000, leaseMs: 5000 })).toMatchObject({ ok: false, code: 'fenced' });
    expect(run({ t: 'node.expire', node: 'nx', now: 1 })).toMatchObject({ ok: false, code: 'not-found' });
  });

  it('listNodes returns every node in id order', () => {
    const { tx, run } = harness();
    run(joinCmd('n2', 1));
    run(joinCmd('n1', 1));
    run(joinCmd('n10', 1));
    expect(listNodes(tx).map((n) => n.node)).toEqual(['n1', 'n10', 'n2']);
    expect(getNode(tx, '')).toBeUndefined();
  });

  it('validates arguments (types, ranges, lengths)', () => {
    const { run } = harness();
    const bad: Command[] = [
      { ...joinCmd('n1', 1), node: '' },
      { ...joinCmd('n1', 1), node: 'x'.repeat(limits.metaNodeIdLengthMax + 1) },
      { ...joinCmd('n1', 1), node: 'a\0b' },
      { ...joinCmd('n1', 1), inc: -1 },
      { ...joinCmd('n1', 1), inc: '1' },
      { ...joinCmd('n1', 1), now: 1.5 },
      { ...joinCmd('n1', 1), now: -5 },
      { ...joinCmd('n1', 1), leaseMs: 0 },
      { ...joinCmd('n1', 1), leaseMs: limits.metaLeaseMsMax + 1 },
      { ...joinCmd('n1', 1), now: Number.MAX_SAFE_INTEGER },
      { ...joinCmd('n1', 1), address: 'x'.repeat(limits.metaAddressLengthMax + 1) },
      { ...joinCmd('n1', 1), address: 5 },
      { t: 'node.renew', node: 'n1', inc: 1, now: 1 },
      { t: 'node.leave', node: 'n1' },
      { t: 'node.expire', node: 'n1' },
    ];
    for (const c of bad) expect(run(c), JSON.stringify(c)).toMatchObject({ ok: false, code: 'invalid' });
  });
});

describe('shares', () => {
  it('share names are case-insensitive; the record keeps the given form', () => {
    const { tx, run } = harness();
    expect(run({ t: 'share.put', name: 'VMs', config: { path: '/srv/vms', ca: true } })).toEqual({ ok: true, value: { created: true } });
    expect(getShare(tx, 'vms')).toEqual({ name: 'VMs', config: { path: '/srv/vms', ca: true } });
    expect(getShare(tx, 'VMS')).toEqual(getShare(tx, 'vms'));
    expect(run({ t: 'share.put', name: 'vms', config: { path: '/srv/other' } })).toEqual({ ok: true, value: { created: false } });
    expect(getShare(tx, 'VMs')).toEqual({ name: 'vms', config: { path: '/srv/other' } });
    run({ t: 'share.put', name: 'data', config: {} });
    expect(listShares(tx).map((s) => s.name)).toEqual(['data', 'vms']);
    expect(run({ t: 'share.delete', name: 'VMS' })).toEqual({ ok: true });
    expect(getShare(tx, 'vms')).toBeUndefined();
    expect(run({ t: 'share.delete', name: 'vms' })).toMatchObject({ ok: false, code: 'not-found' });
  });

  it('refuses names MS-FSCC 2.1.6 forbids, and bad configs', () => {
    const { run } = harness();
    for (const name of ['', 'x'.repeat(81), 'a/b', 'a\\b', 'a:b', 'a*', 'a?', 'a|b', 'a<b', 'a"b', 'a[b]', 'a+b', 'a=b', 'a;b', 'a,b', 'a\x01b']) {
      expect(run({ t: 'share.put', name, config: {} }), name).toMatchObject({ ok: false, code: 'invalid' });
    }
    expect(run({ t: 'share.put', name: 'x'.repeat(80), config: {} })).toMatchObject({ ok: true });
    expect(run({ t: 'share.put', name: 'IPC$', config: {} })).toMatchObject({ ok: true });
    for (const config of [null, [], 'x', 5, undefined]) {
      expect(run({ t: 'share.put', name: 'ok', config }), String(config)).toMatchObject({ ok: false, code: 'invalid' });
    }
    expect(run({ t: 'share.put', name: 'big', config: { blob: 'x'.repeat(limits.metaShareConfigBytesMax) } })).toMatchObject({
      ok: false,
      code: 'invalid',
    });
  });
});

describe('cluster family through the state machine', () => {
  it('bootstraps, joins, fences a superseded process and expires a silent node', () => {
    const sm = machine(new MemoryStateStore());
    const r1 = sm.applyBatch(
      batch(
        1,
        entry('n1', 1, 1, { t: 'cluster.init', clusterId: 'lab', recordVersion: RECORD_VERSION }, 1),
        join('n1', 1, 2, 1000, 5000),
        join('n2', 1, 1, 1000, 5000),
      ),
    );
    expect(r1.results.map((r) => r.result)).toEqual([
      { ok: true, value: { created: true } },
      { ok: true, value: { epoch: 1 } },
      { ok: true, value: { epoch: 1 } },
    ]);
    // n1 restarts (incarnation 2); its old process's renewal is fenced.
    const r2 = sm.applyBatch(
      batch(2, join('n1', 2, 1, 4000, 5000), entry('n1', 1, 3, { t: 'node.renew', node: 'n1', inc: 1, now: 4000, leaseMs: 5000 }, 3)),
    );
    expect(r2.results.map((r) => r.result)).toEqual([{ ok: true, value: { epoch: 2 } }, 'stale']);
    // n2 went silent: n1 expires it.
    const r3 = sm.applyBatch(batch(3, entry('n1', 2, 2, { t: 'node.expire', node: 'n2', now: 6001 }, 2)));
    expect(r3.results[0]!.result).toEqual({ ok: true, value: { expired: true, state: 'down' } });
    expect(r3.changed).toHaveLength(1);
    expect(sm.read((tx) => listNodes(tx).map((n) => [n.node, n.incarnation, n.epoch, n.state]))).toEqual([
      ['n1', 2, 2, 'up'],
      ['n2', 1, 1, 'down'],
    ]);
  });
});
