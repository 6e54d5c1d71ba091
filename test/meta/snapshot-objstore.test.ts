// Metadata snapshots kept in the object store (src/cli/snapshot-objstore.ts): stored and listed in
// position order, pruned, foreign keys ignored, and a node that lost its state after the log was
// compacted catches up from them.
import { describe, expect, it } from 'vitest';
import { ObjectStoreSnapshotStore } from '../../src/cli/snapshot-objstore.js';
import { metaHandlers } from '../../src/meta/families/index.js';
import { MetaService } from '../../src/meta/service.js';
import { StateMachine } from '../../src/meta/state-machine.js';
import { MemoryStateStore } from '../../src/meta/store.js';
import { MemoryObjectStore } from '../../src/objstore/memory.js';
import { Prng } from '../helpers/prng.js';
import { SimHistory } from './sim-log.js';

async function* chunks(...parts: string[]): AsyncIterable<Uint8Array> {
  for (const p of parts) yield Buffer.from(p);
}

async function readAll(it: AsyncIterable<Uint8Array>): Promise<string> {
  const out: Buffer[] = [];
  for await (const c of it) out.push(Buffer.from(c));
  return Buffer.concat(out).toString();
}

describe('ObjectStoreSnapshotStore', () => {
  it('stores snapshots as objects, returns the latest by position, prunes the oldest', async () => {
    const store = new MemoryObjectStore();
    const snaps = new ObjectStoreSnapshotStore(store, 'c1/meta-snapshots/');
    expect(await snaps.latest()).toBeUndefined();
    await snaps.put(9, chunks('nine'));
    await snaps.put(300, chunks('three', '-hundred'));
    await snaps.put(17, chunks('seventeen'));
    await store.put('c1/meta-snapshots/not-a-snapshot', Buffer.from('x'));
    const latest = await snaps.latest();
    expect(latest?.position).toBe(300);
    expect(latest?.bytes).toBe('three-hundred'.length);
    expect(await readAll(latest!.read())).toBe('three-hundred');
    await snaps.prune(2);
    const left = (await store.list('c1/meta-snapshots/')).objects.map((o) => o.key);
    expect(left).toEqual(['c1/meta-snapshots/0000000000000011', 'c1/meta-snapshots/000000000000012c', 'c1/meta-snapshots/not-a-snapshot']);
    expect(() => new ObjectStoreSnapshotStore(store, 'no-slash')).toThrow(/end with/);
  });

  it('a node whose state is gone after compaction restores from the object store and converges', async () => {
    const h = new SimHistory(new Prng(11));
    const objects = new MemoryObjectStore();
    const snapshots = new ObjectStoreSnapshotStore(objects, 'lab/meta-snapshots/');
    const start = (nodeId: string) =>
      MetaService.start({
        log: h.view(),
        machine: StateMachine.open({ store: new MemoryStateStore(), handlers: metaHandlers }),
        nodeId,
        clusterId: 'lab',
        nodeLeaseMs: 0,
        retryDelayMs: 0,
        snapshots,
      });
    const a = await start('a');
    for (let i = 0; i < 25; i++) expect((await a.propose({ t: 'share.put', name: `s${i}`, config: { i } })).ok).toBe(true);
    const pos = await a.snapshotNow();
    expect(pos).toBeGreaterThan(0);
    expect(h.compactedThrough).toBe(pos);
    expect((await objects.list('lab/meta-snapshots/')).objects).toHaveLength(1);
    await a.propose({ t: 'share.put', name: 'after', config: {} });
    const b = await start('b'); // empty state, log compacted: must restore the snapshot
    await a.barrier();
    await b.barrier();
    expect(b.stateHash()).toEqual(a.stateHash());
    await a.close();
    await b.close();
  });
});
