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
    expect(left).toEqual([
      'c1/meta-snapshots/0000000000000011.m',
      'c1/meta-snapshots/0000000000000011.p00000000',
      'c1/meta-snapshots/000000000000012c.m',
      'c1/meta-snapshots/000000000000012c.p00000000',
      'c1/meta-snapshots/not-a-snapshot',
    ]);
    expect(() => new ObjectStoreSnapshotStore(store, 'no-slash')).toThrow(/end with/);
  });

  it('writes a large snapshot in parts (chunks cut across parts), read back in order; memory holds one part', async () => {
    const store = new MemoryObjectStore();
    const snaps = new ObjectStoreSnapshotStore(store, 's/', { partBytes: 5 });
    const text = 'the quick brown fox jumps over the lazy dog';
    const info = await snaps.put(7, chunks('the quick', ' brown fox jumps ', 'o', 'ver the lazy dog'));
    expect(info.bytes).toBe(text.length);
    const keys = (await store.list('s/')).objects.map((o) => o.key);
    expect(keys.filter((k) => k.includes('.p'))).toHaveLength(Math.ceil(text.length / 5));
    for (const o of (await store.list('s/')).objects) if (o.key.includes('.p')) expect(o.size).toBeLessThanOrEqual(5);
    expect(await readAll((await snaps.latest())!.read())).toBe(text);
  });

  it('a snapshot exists only once its manifest does: parts of a put cut short are ignored, then pruned', async () => {
    const store = new MemoryObjectStore();
    const snaps = new ObjectStoreSnapshotStore(store, 's/', { partBytes: 4 });
    await snaps.put(10, chunks('ten ten'));
    // A put at 20 that stopped after its first part (the node died): no manifest.
    let n = 0;
    async function* dies(): AsyncIterable<Uint8Array> {
      yield Buffer.from('twenty');
      if (n++ >= 0) throw new Error('node died');
    }
    await expect(snaps.put(20, dies())).rejects.toThrow(/node died/);
    expect((await store.list('s/0000000000000014')).objects.map((o) => o.key)).toEqual(['s/0000000000000014.p00000000']);
    expect((await snaps.latest())?.position).toBe(10);
    await snaps.put(30, chunks('thirty'));
    await snaps.put(40, chunks('forty'));
    await snaps.prune(2);
    const left = (await store.list('s/')).objects.map((o) => o.key.slice(2, 18));
    expect([...new Set(left)]).toEqual(['000000000000001e', '0000000000000028']);
    expect(await readAll((await snaps.latest())!.read())).toBe('forty');
  });

  it('reads a snapshot stored whole by earlier versions, and refuses a state above the bound', async () => {
    const store = new MemoryObjectStore();
    const snaps = new ObjectStoreSnapshotStore(store, 's/', { bytesMax: 10 });
    await store.put('s/0000000000000005', Buffer.from('legacy'));
    expect(await readAll((await snaps.latest())!.read())).toBe('legacy');
    await expect(snaps.put(6, chunks('more than ', 'ten bytes'))).rejects.toThrow(/larger than 10 bytes/);
    expect((await snaps.latest())?.position).toBe(5);
    await snaps.put(7, chunks('newer'));
    expect((await snaps.latest())?.position).toBe(7);
    await snaps.prune(1);
    expect((await store.list('s/')).objects.map((o) => o.key)).toEqual(['s/0000000000000007.m', 's/0000000000000007.p00000000']);
  });

  it('says so when a manifest is damaged or names parts of another snapshot', async () => {
    const store = new MemoryObjectStore();
    const snaps = new ObjectStoreSnapshotStore(store, 's/');
    await snaps.put(3, chunks('three'));
    await store.put('s/0000000000000003.m', Buffer.from('{not json'));
    await expect(snaps.latest()).rejects.toThrow(/manifest .* cannot be read/);
    await store.put('s/0000000000000003.m', Buffer.from(JSON.stringify({ format: 'tessera-snapshot-parts/1', bytes: 5, parts: [{ key: 's/0000000000000009.p00000000', bytes: 5 }] })));
    await expect(snaps.latest()).rejects.toThrow(/not this snapshot's/);
    await store.put('s/0000000000000003.m', Buffer.from(JSON.stringify({ format: 'tessera-snapshot-parts/1', bytes: 9, parts: [{ key: 's/0000000000000003.p00000000', bytes: 5 }] })));
    await expect(snaps.latest()).rejects.toThrow(/hold 5 bytes, the snapshot 9/);
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
    expect((await objects.list('lab/meta-snapshots/')).objects.filter((o) => o.key.endsWith('.m'))).toHaveLength(1);
    await a.propose({ t: 'share.put', name: 'after', config: {} });
    const b = await start('b'); // empty state, log compacted: must restore the snapshot
    await a.barrier();
    await b.barrier();
    expect(b.stateHash()).toEqual(a.stateHash());
    await a.close();
    await b.close();
  });
});
