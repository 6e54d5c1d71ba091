// The collector of chunked shares (src/ios/chunked/collector.ts, src/meta/families/collector.ts):
// reaping, deleting unreferenced objects after the grace window and not before, claims refusing late
// references, compaction byte-exact under concurrent writes (the CAS refusal path included), and
// never deleting an object something references.
import { limits } from '../../src/base/limits.js';
import { afterEach, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Clock } from '../../src/base/clock.js';
import { LocalLog } from '../../src/log/local.js';
import { clusterHandlers } from '../../src/meta/families/cluster.js';
import { createCollectorHandlers } from '../../src/meta/families/collector.js';
import { createExtentHandlers, gcCandidates } from '../../src/meta/families/extents.js';
import { createNamespaceHandlers } from '../../src/meta/families/namespace.js';
import { opensHandlers } from '../../src/meta/families/opens.js';
import { sysHandlers } from '../../src/meta/families/sys.js';
import { key } from '../../src/meta/keys.js';
import { MetaService } from '../../src/meta/service.js';
import { StateMachine } from '../../src/meta/state-machine.js';
import { LmdbStateStore } from '../../src/meta/store.js';
import { MemoryObjectStore } from '../../src/objstore/memory.js';
import type { ObjectInfo, ObjectStore, PutOptions } from '../../src/objstore/spi.js';
import { ChunkedDriver } from '../../src/ios/chunked/index.js';
import { Collector } from '../../src/ios/chunked/collector.js';
import { runFsck } from '../../src/ios/chunked/fsck.js';
import type { IosHandle, IosShare } from '../../src/ios/spi.js';

const BUDGET = 16;

class FakeClock implements Clock {
  t = 1_000_000;
  nowMs(): number {
    return this.t;
  }
  monotonicMs(): number {
    return this.t;
  }
}

interface Env {
  svc: MetaService;
  store: MemoryObjectStore;
  driver: ChunkedDriver;
  share: IosShare;
  close(): Promise<void>;
}

const envs: Env[] = [];
afterEach(async () => {
  for (const e of envs.splice(0)) await e.close();
});

async function openEnv(): Promise<Env> {
  const dir = await mkdtemp(join(tmpdir(), 'tessera-collector-'));
  const log = await LocalLog.open({ dir: join(dir, 'log') });
  const state = LmdbStateStore.open(join(dir, 'state'));
  const handlers = [
    sysHandlers,
    clusterHandlers,
    createNamespaceHandlers({ extentsPerCommandMax: BUDGET }),
    createExtentHandlers({ extentsPerCommandMax: BUDGET }),
    opensHandlers,
    createCollectorHandlers({ extentsPerCommandMax: BUDGET }),
  ];
  const svc = await MetaService.start({ log, machine: StateMachine.open({ store: state, handlers }), nodeId: 'n1', clusterId: 'test', nodeLeaseMs: 0 });
  const store = new MemoryObjectStore();
  const driver = new ChunkedDriver({ meta: svc, store, clusterId: 'test', nodeId: 'n1', segmentBytes: 64 * 1024, extentsPerCommandMax: BUDGET });
  const share = await driver.openShare('vms', {});
  const env: Env = {
    svc,
    store,
    driver,
    share,
    async close() {
      await share.close();
      await svc.close();
      await log.close();
      await state.close();
      await store.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
  envs.push(env);
  return env;
}

async function storeKeys(store: ObjectStore): Promise<string[]> {
  return (await store.list('test/seg/', { limit: 1000 })).objects.map((o) => o.key);
}

/** Writes `n` blocks of `size` at descending offsets, each flushed alone: one extent per block. */
async function fragment(h: IosHandle, model: Buffer, n: number, size: number, gap = 0): Promise<void> {
  for (let i = n - 1; i >= 0; i--) {
    const b = randomBytes(size);
    const at = i * (size + gap);
    await h.write(at, b);
    await h.flush();
    b.copy(model, at);
  }
}

const extentCount = (svc: MetaService, fork: number): number =>
  svc.read((tx) => [...tx.range(key('ext', fork))].length);

const forkOf = (h: IosHandle): number => (h as unknown as { fork: number }).fork;

describe('collector: deleting unreferenced objects', () => {
  it("frees an unlinked file's objects (reaped in slices) after the grace window and not before", async () => {
    const env = await openEnv();
    const clock = new FakeClock();
    const col = new Collector({ meta: env.svc, store: env.store, clusterId: 'test', nodeId: 'n1', clock, graceMs: 5000, positionLag: 1, compaction: false });
    const { handle } = await env.share.open('big.bin', { mode: 'create', write: true });
    // More extents than one command frees: the unlink queues the fork for ext.reap.
    await fragment(handle, Buffer.alloc(40 * 1024), 40, 1024);
    await handle.close();
    const { handle: keep } = await env.share.open('keep.bin', { mode: 'create', write: true });
    await keep.write(0, Buffer.from('kept data'));
    await keep.close();
    const before = await storeKeys(env.store);
    expect(before.length).toBe(41);
    await env.share.remove('big.bin');
    // t=0: reaps, deletes nothing (no position applied graceMs ago).
    let r = await col.collectOnce();
    expect(env.svc.read((tx) => [...tx.range(key('reap'))].length)).toBe(0);
    expect(r.objectsDeleted).toBe(0);
    expect(env.svc.read((tx) => gcCandidates(tx, 100)).length).toBe(40);
    await env.svc.propose({ t: 'sys.noop' });
    clock.t += 4999;
    r = await col.collectOnce();
    expect(r.objectsDeleted).toBe(0);
    expect((await storeKeys(env.store)).length).toBe(41);
    clock.t += 1;
    // Deleted: what the unlink itself freed (applied before the first pass's sample), not what the
    // first pass's reap slices freed after it.
    r = await col.collectOnce();
    expect(r.objectsDeleted).toBeGreaterThan(0);
    expect(r.objectsDeleted).toBeLessThan(40);
    clock.t += 5000;
    r = await col.collectOnce();
    expect(col.stats.objectsDeleted).toBe(40);
    // Every segment held one 1 KiB write: the bytes freed are the objects' sizes (ext.writev objectSizes).
    expect(col.stats.bytesFreed).toBe(40 * 1024);
    expect(await storeKeys(env.store)).toHaveLength(1);
    expect(env.svc.read((tx) => [...tx.range(key('gc'))].length + [...tx.range(key('gcx'))].length)).toBe(0);
    const { handle: k2 } = await env.share.open('keep.bin', { mode: 'open', write: false });
    expect((await k2.read(0, 9)).toString()).toBe('kept data');
    const f = await runFsck({ meta: env.svc, store: env.store, clusterId: 'test' });
    expect(f.clean).toBe(true);
    expect(f.pendingGc.objects + f.garbage.objects).toBe(0);
  });

  it('requires the position lag as well as the time', async () => {
    const env = await openEnv();
    const clock = new FakeClock();
    const col = new Collector({ meta: env.svc, store: env.store, clusterId: 'test', nodeId: 'n1', clock, graceMs: 10, positionLag: 1000, compaction: false });
    const { handle } = await env.share.open('a.bin', { mode: 'create', write: true });
    await handle.write(0, randomBytes(100));
    await handle.close();
    await env.share.remove('a.bin');
    await col.collectOnce();
    clock.t += 100;
    expect((await col.collectOnce()).objectsDeleted).toBe(0);
  });

  it('a claimed object is never referenced again (a late map command is refused)', async () => {
    const env = await openEnv();
    const { handle } = await env.share.open('a.bin', { mode: 'create', write: true });
    await handle.write(0, randomBytes(100));
    await handle.close();
    await env.share.remove('a.bin');
    const [g] = env.svc.read((tx) => gcCandidates(tx, 10));
    expect(g).toBeDefined();
    // A stale since claims nothing.
    let r = await env.svc.propose({ t: 'gc.claim', objects: [{ object: g!.object, since: g!.since + 1 }] });
    expect(r).toEqual({ ok: true, value: { claimed: [] } });
    r = await env.svc.propose({ t: 'gc.claim', objects: [{ object: g!.object, since: g!.since }] });
    expect(r).toEqual({ ok: true, value: { claimed: [g!.object] } });
    const { handle: b } = await env.share.open('b.bin', { mode: 'create', write: true });
    const fork = forkOf(b);
    const late = await env.svc.propose({ t: 'ext.write', fork, offset: 0, length: 10, object: g!.object, objectOffset: 0 });
    expect(late.ok).toBe(false);
    expect(!late.ok && late.code).toBe('stale');
    expect(extentCount(env.svc, fork)).toBe(0);
    expect(await env.svc.propose({ t: 'gc.done', objects: [g!.object] })).toEqual({ ok: true, value: { done: 1 } });
    expect((await env.svc.propose({ t: 'gc.done', objects: [] })).ok).toBe(false);
  });
});

/**
 * A store whose puts of compaction segments can be held (the test then races a write); it counts
 * gets, the most in flight at once, puts, and can run a hook after each get.
 */
class HoldingStore implements ObjectStore {
  readonly kind = 'holding';
  hold: ((key: string) => Promise<void>) | undefined;
  afterGet: (() => void) | undefined;
  getDelayMs = 0;
  gets = 0;
  puts = 0;
  private getting = 0;
  maxGetsInFlight = 0;
  constructor(private readonly inner: ObjectStore) {}
  async get(k: string, range?: { offset: number; length: number }): Promise<Buffer> {
    this.gets++;
    this.getting++;
    this.maxGetsInFlight = Math.max(this.maxGetsInFlight, this.getting);
    try {
      if (this.getDelayMs > 0) await new Promise((r) => setTimeout(r, this.getDelayMs));
      return await this.inner.get(k, range);
    } finally {
      this.getting--;
      this.afterGet?.();
    }
  }
  async put(k: string, body: Uint8Array | readonly Uint8Array[], opts?: PutOptions): Promise<ObjectInfo> {
    this.puts++;
    const h = this.hold;
    if (h !== undefined) await h(k);
    return this.inner.put(k, body, opts);
  }
  head(k: string) {
    return this.inner.head(k);
  }
  deleteMany(keys: readonly string[]) {
    return this.inner.deleteMany(keys);
  }
  list(prefix: string, opts?: { after?: string; limit?: number }) {
    return this.inner.list(prefix, opts);
  }
  copy(s: string, t: string, opts?: { ifNoneMatch?: '*' }) {
    return this.inner.copy(s, t, opts);
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

describe('collector: compaction', () => {
  it('rewrites a fragmented range into one extent, byte-exact; holes stay holes', async () => {
    const env = await openEnv();
    const col = new Collector({ meta: env.svc, store: env.store, clusterId: 'test', nodeId: 'n1', graceMs: 0, positionLag: 0, compaction: { minExtents: 4, smallBytes: 8192 }, extentsPerCommandMax: BUDGET });
    const { handle } = await env.share.open('frag.bin', { mode: 'create', write: true });
    const model = Buffer.alloc(7 * 5000 + 3 * 4096);
    // Runs are at most BUDGET/2 - 2 = 6 extents (one command reads and writes them).
    await fragment(handle, model, 5, 4096, 0); // 5 contiguous extents [0, 20480)
    const tail = randomBytes(3000);
    await handle.write(40_000, tail); // a hole before it
    tail.copy(model, 40_000);
    await handle.flush();
    const fork = forkOf(handle);
    expect(extentCount(env.svc, fork)).toBe(6);
    const r = await col.collectOnce();
    expect(r.compactions).toBe(1);
    expect(r.extentsCompacted).toBe(4); // 5 contiguous extents + 1 after a hole -> 2
    expect(extentCount(env.svc, fork)).toBe(2);
    const size = 40_000 + 3000;
    expect((await handle.read(0, size)).equals(model.subarray(0, size))).toBe(true);
    // The old segments became garbage; a later pass (grace 0) deletes them; fsck is clean.
    await col.collectOnce();
    const f = await runFsck({ meta: env.svc, store: env.store, clusterId: 'test' });
    expect(f.problems).toEqual([]);
    expect(f.pendingGc.objects + f.garbage.objects).toBe(0);
    expect(f.store.objects).toBe(1); // the compaction segment holds the tail too
    // A sparse pattern that compaction cannot reduce is left alone.
    const { handle: sparse } = await env.share.open('sparse.bin', { mode: 'create', write: true });
    await fragment(sparse, Buffer.alloc(10 * 2 * 4096), 10, 4096, 4096);
    const again = await col.collectOnce();
    expect(again.compactions).toBe(0);
  });

  it('waits while the shares are busy, at most collectorCompactDeferPassesMax passes in a row', async () => {
    const env = await openEnv();
    let busy = true;
    const col = new Collector({ meta: env.svc, store: env.store, clusterId: 'test', nodeId: 'n1', graceMs: 0, positionLag: 0, compaction: { minExtents: 4, smallBytes: 8192 }, extentsPerCommandMax: BUDGET, busy: () => busy });
    const { handle } = await env.share.open('busy.bin', { mode: 'create', write: true });
    const model = Buffer.alloc(5 * 4096);
    await fragment(handle, model, 5, 4096, 0);
    const fork = forkOf(handle);
    for (let i = 0; i < limits.collectorCompactDeferPassesMax; i++) expect((await col.collectOnce()).compactions).toBe(0);
    expect(col.stats.compactionPassesDeferred).toBe(limits.collectorCompactDeferPassesMax);
    expect(extentCount(env.svc, fork)).toBe(5);
    // Busy for too long: this pass compacts anyway (within collectorCompactBusyBytesPerPass).
    expect((await col.collectOnce()).compactions).toBe(1);
    expect(extentCount(env.svc, fork)).toBe(1);
    // Quiet: compaction runs at every pass again.
    busy = false;
    await fragment(handle, model, 5, 4096, 0);
    expect((await col.collectOnce()).compactions).toBe(1);
    expect((await handle.read(0, model.length)).equals(model)).toBe(true);
  });

  it('yields to the clients: a pass started quiet stops reading once the shares are written; nothing is put or mapped', async () => {
    const env = await openEnv();
    const store = new HoldingStore(env.store);
    let busy = false;
    const col = new Collector({ meta: env.svc, store, clusterId: 'test', nodeId: 'n1', graceMs: 0, positionLag: 0, compaction: { minExtents: 4, smallBytes: 8192 }, extentsPerCommandMax: BUDGET, busy: () => busy, compactGetsInFlight: 1 });
    const { handle } = await env.share.open('yield.bin', { mode: 'create', write: true });
    const model = Buffer.alloc(6 * 4096);
    await fragment(handle, model, 6, 4096);
    const fork = forkOf(handle);
    env.driver.cache.clear(); // every piece comes from the store
    // A client writes while the collector reads the run's first piece.
    store.afterGet = () => {
      busy = true;
    };
    const r = await col.collectOnce();
    expect(r.compactionsYielded).toBe(1);
    expect(r.compactions + r.compactionsStale).toBe(0);
    expect(store.gets).toBe(1); // no get started after the shares became busy
    expect(store.puts).toBe(0);
    expect(extentCount(env.svc, fork)).toBe(6);
    expect(col.stats.compactionsYielded).toBe(1);
    // Busy at the start of a pass: compaction defers (it does not count as yielding).
    expect((await col.collectOnce()).compactionsYielded).toBe(0);
    expect(col.stats.compactionPassesDeferred).toBe(1);
    // Quiet again: the next pass compacts.
    store.afterGet = undefined;
    busy = false;
    const r2 = await col.collectOnce();
    expect(r2.compactions).toBe(1);
    expect(extentCount(env.svc, fork)).toBe(1);
    expect((await handle.read(0, model.length)).equals(model)).toBe(true);
  });

  it('reads the pieces the node cache holds from there, the rest with at most compactGetsInFlight gets', async () => {
    const env = await openEnv();
    const store = new HoldingStore(env.store);
    const cached = (o: string, off: number, len: number): Buffer | undefined => env.driver.cache.peek(o, off, len);
    const mk = (): Collector =>
      new Collector({ meta: env.svc, store, clusterId: 'test', nodeId: 'n1', graceMs: 0, positionLag: 0, compaction: { minExtents: 4, smallBytes: 8192 }, extentsPerCommandMax: BUDGET, cached, compactGetsInFlight: 2 });
    const { handle } = await env.share.open('cached.bin', { mode: 'create', write: true });
    const model = Buffer.alloc(6 * 4096);
    // Just written: the driver's cache keeps these small segments (cacheWrites).
    await fragment(handle, model, 6, 4096);
    const fork = forkOf(handle);
    const col = mk();
    const r = await col.collectOnce();
    expect(r.compactions).toBe(1);
    expect(col.stats.compactPiecesCached).toBe(6);
    expect(col.stats.compactPiecesFetched).toBe(0);
    expect(store.gets).toBe(0);
    expect(extentCount(env.svc, fork)).toBe(1);
    expect((await handle.read(0, model.length)).equals(model)).toBe(true);
    // Not cached: fetched, two at a time (slow gets, so the bound is reached and must hold).
    await fragment(handle, model, 6, 4096);
    env.driver.cache.clear();
    store.getDelayMs = 20;
    const col2 = mk();
    const r2 = await col2.collectOnce();
    expect(r2.compactions).toBe(1);
    expect(col2.stats.compactPiecesFetched).toBe(6);
    expect(col2.stats.compactPiecesCached).toBe(0);
    expect(store.maxGetsInFlight).toBe(2);
    expect(extentCount(env.svc, fork)).toBe(1);
    expect((await handle.read(0, model.length)).equals(model)).toBe(true);
    expect(() => new Collector({ meta: env.svc, store, clusterId: 'test', nodeId: 'n1', compactGetsInFlight: 0 })).toThrow(/compactGetsInFlight/);
  });

  it('a run rewritten by a client while it is read is dropped before its segment is put (stale, nothing put)', async () => {
    const env = await openEnv();
    const store = new HoldingStore(env.store);
    // No busy(): the pass does not yield (as a forced pass on a share written without pause).
    const col = new Collector({ meta: env.svc, store, clusterId: 'test', nodeId: 'n1', graceMs: 0, positionLag: 0, compaction: { minExtents: 4, smallBytes: 8192 }, extentsPerCommandMax: BUDGET, compactGetsInFlight: 1 });
    const { handle } = await env.share.open('stale-early.bin', { mode: 'create', write: true });
    const model = Buffer.alloc(6 * 4096);
    await fragment(handle, model, 6, 4096);
    const fork = forkOf(handle);
    env.driver.cache.clear();
    store.getDelayMs = 10;
    let write: Promise<unknown> | undefined;
    store.afterGet = () => {
      if (write !== undefined) return;
      const b = randomBytes(5000);
      b.copy(model, 6000);
      write = handle.write(6000, b);
    };
    const r = await col.collectOnce();
    await write;
    expect(r.compactionsStale).toBe(1);
    expect(r.compactions).toBe(0);
    expect(store.puts).toBe(0);
    expect((await handle.read(0, model.length)).equals(model)).toBe(true);
    // Stable now: the next pass compacts (and puts its segment).
    store.afterGet = undefined;
    const r2 = await col.collectOnce();
    expect(r2.compactions).toBe(1);
    expect(store.puts).toBe(1);
    expect(extentCount(env.svc, fork)).toBe(2);
    expect((await handle.read(0, model.length)).equals(model)).toBe(true);
  });

  it('is refused (stale) when a write changes the range meanwhile; the new segment is deleted; data stays exact', async () => {
    const env = await openEnv();
    const holding = new HoldingStore(env.store);
    const col = new Collector({ meta: env.svc, store: holding, clusterId: 'test', nodeId: 'n1', graceMs: 0, positionLag: 0, compaction: { minExtents: 4, smallBytes: 8192 }, extentsPerCommandMax: BUDGET });
    const { handle } = await env.share.open('race.bin', { mode: 'create', write: true });
    const model = Buffer.alloc(6 * 4096);
    await fragment(handle, model, 6, 4096);
    const fork = forkOf(handle);
    let compactKey = '';
    holding.hold = async (k) => {
      compactKey = k;
      holding.hold = undefined;
      // The collector has read the old bytes; a client write lands before its ext.rewrite.
      const b = randomBytes(5000);
      await handle.write(6000, b);
      b.copy(model, 6000);
    };
    const r = await col.collectOnce();
    expect(r.compactionsStale).toBe(1);
    expect(r.compactions).toBe(0);
    expect(compactKey).not.toBe('');
    expect(await env.store.head(compactKey)).toBeUndefined();
    expect((await handle.read(0, model.length)).equals(model)).toBe(true);
    // Next pass: the range is stable, compaction applies.
    const r2 = await col.collectOnce();
    expect(r2.compactions).toBe(1);
    // The write split the map into 7 extents; one rewrite takes at most 6 (BUDGET/2 - 2).
    expect(extentCount(env.svc, fork)).toBe(2);
    expect((await handle.read(0, model.length)).equals(model)).toBe(true);
  });

  it('never deletes what something references: random writes, punches and clones race passes with no grace', async () => {
    const env = await openEnv();
    const col = new Collector({ meta: env.svc, store: env.store, clusterId: 'test', nodeId: 'n1', graceMs: 0, positionLag: 0, compaction: { minExtents: 3, smallBytes: 16_384 }, extentsPerCommandMax: BUDGET });
    const size = 256 * 1024;
    const { handle } = await env.share.open('rand.bin', { mode: 'create', write: true });
    const model = Buffer.alloc(size);
    await handle.truncate(size);
    let seed = 12345;
    const rnd = (n: number): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    let stop = false;
    const passes = (async () => {
      let n = 0;
      while (!stop || n < 3) {
        await col.collectOnce();
        n++;
        await new Promise((r) => setTimeout(r, 1));
      }
    })();
    for (let round = 0; round < 30; round++) {
      const ws: Promise<unknown>[] = [];
      for (let i = 0; i < 8; i++) {
        const len = 512 + rnd(8192);
        const at = rnd(size - len);
        const b = randomBytes(len);
        b.copy(model, at);
        ws.push(handle.write(at, b));
      }
      await Promise.all(ws);
      if (round % 5 === 4) {
        // Zero a range through a punch (FSCTL_SET_ZERO_DATA).
        const at = rnd(size - 10_000);
        const fork = forkOf(handle);
        expect((await env.svc.propose({ t: 'ext.punch', fork, offset: at, length: 10_000 })).ok).toBe(true);
        model.fill(0, at, at + 10_000);
      }
      if (round % 7 === 3) {
        // Share pieces between two ranges (refs > 1): FSCTL_DUPLICATE_EXTENTS_TO_FILE as a map operation.
        const src = rnd(size / 2 - 8192);
        const dst = size / 2 + rnd(size / 2 - 8192);
        const fork = forkOf(handle);
        expect((await env.svc.propose({ t: 'ext.clone', srcFork: fork, srcOffset: src, dstFork: fork, dstOffset: dst, length: 8192 })).ok).toBe(true);
        model.copy(model, dst, src, src + 8192);
      }
      // Read back a random range while passes run.
      const at = rnd(size - 20_000);
      expect((await handle.read(at, 20_000)).equals(model.subarray(at, at + 20_000))).toBe(true);
    }
    stop = true;
    await passes;
    await col.collectOnce();
    expect((await handle.read(0, size)).equals(model)).toBe(true);
    expect(col.stats.objectsDeleted).toBeGreaterThan(0);
    expect(col.stats.compactions).toBeGreaterThan(0);
    const f = await runFsck({ meta: env.svc, store: env.store, clusterId: 'test' });
    expect(f.problems).toEqual([]);
  });
});
