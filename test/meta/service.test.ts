// MetaService behaviours one at a time, over the simulated log and memory stores: results come from
// the proposer's own state machine, watches see other nodes' changes, the barrier is linearizable,
// a node with another record version refuses to join, a superseded incarnation is fenced, and an
// abandoned proposal ends with a definite answer.
import { describe, expect, it } from 'vitest';
import { metaHandlers } from '../../src/meta/families/index.js';
import { getNode } from '../../src/meta/families/cluster.js';
import { lookup } from '../../src/meta/families/namespace.js';
import { decodeRecord } from '../../src/meta/tx.js';
import { key } from '../../src/meta/keys.js';
import { MetaError, MetaService, type MetaServiceOptions } from '../../src/meta/service.js';
import { StateMachine } from '../../src/meta/state-machine.js';
import { MemoryStateStore } from '../../src/meta/store.js';
import type { CommandResult } from '../../src/meta/tx.js';
import { Prng } from '../helpers/prng.js';
import { MemorySnapshotStore, SimHistory } from './sim-log.js';

function node(history: SimHistory, nodeId: string, extra: Partial<MetaServiceOptions> = {}, store = new MemoryStateStore()) {
  return MetaService.start({
    log: history.view(),
    machine: StateMachine.open({ store, handlers: metaHandlers }),
    nodeId,
    clusterId: 'test',
    nodeLeaseMs: 0,
    retryDelayMs: 0,
    ...extra,
  });
}

const now = 1_700_000_000_000;

function valueOf<T>(r: CommandResult): T {
  if (!r.ok) throw new Error(`${r.code}: ${r.message}`);
  return r.value as T;
}

describe('MetaService', () => {
  it('answers a proposal with the result its own node applied, and refusals as results', async () => {
    const h = new SimHistory(new Prng(1));
    const a = await node(h, 'a');
    const root = await a.propose({ t: 'ns.mkroot', share: 'vms', now });
    expect(root.ok).toBe(true);
    const parent = valueOf<{ ino: number }>(root).ino;
    const made = await a.propose({ t: 'ns.create', parent, name: 'disk.vhdx', kind: 'file', attributes: 0x20, now });
    expect(made.ok).toBe(true);
    // Applied locally before the answer: a local read sees it at once.
    expect(a.read((tx) => lookup(tx, parent, 'DISK.VHDX'))?.ino).toBe(valueOf<{ ino: number }>(made).ino);
    const again = await a.propose({ t: 'ns.create', parent, name: 'Disk.vhdx', kind: 'file', attributes: 0x20, now });
    expect(again).toMatchObject({ ok: false, code: 'exists' });
    await a.close();
  });

  it('a watch on one node sees changes proposed by another; barrier makes reads linearizable', async () => {
    const h = new SimHistory(new Prng(2));
    const a = await node(h, 'a');
    const b = await node(h, 'b');
    const seen: string[] = [];
    const values: unknown[] = [];
    const stop = b.watch(key('share'), (keys, _pos, vals) => {
      seen.push(...keys.map((k) => k.toString('latin1')));
      values.push(...vals.map((v) => (v === null ? null : decodeRecord<unknown>(v))));
    });
    // A watch on another prefix sees none of these keys (watchers find their run of the sorted keys).
    const other: Buffer[] = [];
    const stopOther = b.watch(key('sharf'), (keys) => other.push(...keys));
    const r = await a.propose({ t: 'share.put', name: 'vms', config: { ca: true } });
    expect(r.ok).toBe(true);
    // Right after a's answer, b may not have applied yet; after b.barrier() it has.
    await b.barrier();
    expect(b.appliedPosition).toBeGreaterThanOrEqual(a.appliedPosition);
    expect(seen.length).toBeGreaterThan(0);
    expect(values.length).toBe(seen.length);
    expect(values).toContainEqual(expect.objectContaining({ config: { ca: true } }));
    expect(other).toEqual([]);
    stopOther();
    expect(b.stateHash()).toEqual(a.stateHash());
    stop();
    await a.propose({ t: 'share.put', name: 'iso', config: {} });
    await b.barrier();
    expect(seen.length).toBe(1);
    await a.close();
    await b.close();
  });

  it('a node running another record version refuses to join', async () => {
    const h = new SimHistory(new Prng(3));
    const a = await node(h, 'a');
    await expect(node(h, 'b', { recordVersion: 99 })).rejects.toMatchObject({ kind: 'version-mismatch' });
    await expect(node(h, 'c', { clusterId: 'other' })).rejects.toMatchObject({ kind: 'version-mismatch' });
    await a.close();
  });

  it('entries of a newer record version stop a node rather than being skipped', async () => {
    const h = new SimHistory(new Prng(4));
    const a = await node(h, 'a');
    // A future node's entry (version 2) lands in the log.
    const { encodeEntry } = await import('../../src/meta/entry.js');
    h.commit([encodeEntry({ v: 2, n: 'z', i: 1, s: 1, w: 1, c: { t: 'sys.noop' } })]);
    await expect(a.barrier()).rejects.toMatchObject({ kind: 'version-mismatch' });
    expect(a.failure).toBeInstanceOf(MetaError);
    await a.close();
  });

  it('a second process with the same node id fences the first', async () => {
    const h = new SimHistory(new Prng(5));
    const store1 = new MemoryStateStore();
    const first = await node(h, 'n1', {}, store1);
    const second = await node(h, 'n1');
    expect(second.membership.incarnation).toBe(first.membership.incarnation + 1);
    expect(second.membership.epoch).toBeGreaterThan(first.membership.epoch);
    await expect(first.propose({ t: 'sys.noop' })).rejects.toMatchObject({ kind: 'fenced' });
    expect((await second.propose({ t: 'sys.noop' })).ok).toBe(true);
    expect(second.read((tx) => getNode(tx, 'n1'))?.incarnation).toBe(2);
    await first.close();
    await second.close();
  });

  it('a proposal that cannot be committed before its deadline gets a definite "not applied"', async () => {
    const h = new SimHistory(new Prng(6));
    let t = 0;
    const clock = { nowMs: () => now + t, monotonicMs: () => t };
    const a = await node(h, 'a', { clock, proposeDeadlineMs: 50 });
    h.faults = { unavailable: 0, ambiguousCommitted: 0, ambiguousLost: 1, duplicate: 0 };
    const p = a.propose({ t: 'share.put', name: 'lost', config: {} });
    // Let the re-sends run past the deadline, then let the log work again.
    for (let i = 0; i < 20; i++) {
      t += 10;
      await new Promise((r) => setImmediate(r));
    }
    h.faults = { unavailable: 0, ambiguousCommitted: 0, ambiguousLost: 0, duplicate: 0 };
    await expect(p).rejects.toMatchObject({ kind: 'unavailable' });
    await a.barrier();
    expect(a.read((tx) => tx.get(key('share', 'LOST')))).toBeUndefined();
    await a.close();
  });

  it('a node wiped after compaction restores the snapshot and catches up', async () => {
    const h = new SimHistory(new Prng(7));
    const snapshots = new MemorySnapshotStore();
    const a = await node(h, 'a', { snapshots });
    for (let i = 0; i < 20; i++) await a.propose({ t: 'share.put', name: `s${i}`, config: {} });
    await a.snapshotNow();
    expect(h.compactedThrough).toBeGreaterThan(0);
    await a.propose({ t: 'share.put', name: 'after', config: {} });
    const b = await node(h, 'b', { snapshots });
    await b.barrier();
    await a.barrier();
    expect(b.stateHash()).toEqual(a.stateHash());
    // Without a snapshot store, a node cannot catch up past compaction: a clear error.
    await expect(node(h, 'c')).rejects.toThrow(/compacted/);
    await a.close();
    await b.close();
  });

  it('single node: compacts the log behind its own durable state and resumes from that state', async () => {
    const h = new SimHistory(new Prng(8));
    const store = new MemoryStateStore();
    const a = await node(h, 'solo', { compactLocally: true, snapshotEveryBatches: 5 }, store);
    for (let i = 0; i < 30; i++) await a.propose({ t: 'share.put', name: `s${i}`, config: {} });
    await a.barrier();
    expect(h.compactedThrough).toBeGreaterThan(0);
    const before = a.stateHash();
    await a.close();
    // Restart on the same state: history before the compaction point is not needed.
    const again = await node(h, 'solo', { compactLocally: true }, store);
    await again.barrier();
    expect(again.read((tx) => tx.get(key('share', 'S29')))).toBeDefined();
    expect(again.appliedPosition).toBeGreaterThan(before.position); // its join was applied on top
    await again.close();
  });
});
