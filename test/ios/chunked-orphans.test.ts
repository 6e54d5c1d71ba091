// H18: the collector's orphan sweep (segments of superseded writers that nothing references) and
// the fencing of segment writers by their node lease (src/ios/chunked/collector.ts, segments.ts).
import { afterEach, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Clock } from '../../src/base/clock.js';
import { limits } from '../../src/base/limits.js';
import { LocalLog } from '../../src/log/local.js';
import { metaHandlers } from '../../src/meta/families/index.js';
import { MetaService } from '../../src/meta/service.js';
import { StateMachine } from '../../src/meta/state-machine.js';
import { LmdbStateStore } from '../../src/meta/store.js';
import { MemoryObjectStore } from '../../src/objstore/memory.js';
import { ChunkedDriver } from '../../src/ios/chunked/index.js';
import { Collector } from '../../src/ios/chunked/collector.js';
import { runFsck } from '../../src/ios/chunked/fsck.js';
import { IosError, type IosShare } from '../../src/ios/spi.js';

class FakeClock implements Clock {
  t = 1_700_000_000_000;
  nowMs(): number {
    return this.t;
  }
  monotonicMs(): number {
    return this.t;
  }
}

interface Node {
  svc: MetaService;
  share: IosShare;
  stop(): Promise<void>;
}

interface Env {
  dir: string;
  store: MemoryObjectStore;
  clock: FakeClock;
  /** Starts a process of node n1 on the shared log and state (each start is a new incarnation and epoch). */
  start(opts?: { nodeLeaseMs?: number }): Promise<Node>;
  close(): Promise<void>;
}

const envs: Env[] = [];
afterEach(async () => {
  for (const e of envs.splice(0)) await e.close();
});

async function openEnv(): Promise<Env> {
  const dir = await mkdtemp(join(tmpdir(), 'tessera-orphans-'));
  const store = new MemoryObjectStore();
  const clock = new FakeClock();
  let current: Node | undefined;
  const env: Env = {
    dir,
    store,
    clock,
    async start(opts = {}) {
      const log = await LocalLog.open({ dir: join(dir, 'log') });
      const state = LmdbStateStore.open(join(dir, 'state'));
      const svc = await MetaService.start({
        log,
        machine: StateMachine.open({ store: state, handlers: metaHandlers }),
        nodeId: 'n1',
        clusterId: 'test',
        clock,
        nodeLeaseMs: opts.nodeLeaseMs ?? 0,
      });
      const driver = new ChunkedDriver({ meta: svc, store, clusterId: 'test', nodeId: 'n1', clock, segmentBytes: 64 * 1024 });
      const share = await driver.openShare('vms', {});
      let stopped = false;
      const node: Node = {
        svc,
        share,
        async stop() {
          if (stopped) return;
          stopped = true;
          await share.close();
          await svc.close();
          await log.close();
          await state.close();
        },
      };
      current = node;
      return node;
    },
    async close() {
      await current?.stop();
      await store.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
  envs.push(env);
  return env;
}

const keys = async (store: MemoryObjectStore): Promise<string[]> => (await store.list('test/', { limit: 1000 })).objects.map((o) => o.key);
const seg = (epoch: number, seq: number, node = 'n1'): string => `test/seg/${node}/${epoch}/${seq.toString(16).padStart(16, '0')}`;

async function writeFile(share: IosShare, name: string, data: Buffer): Promise<void> {
  const { handle } = await share.open(name, { mode: 'create', write: true });
  await handle.write(0, data);
  await handle.close();
}

async function readFile(share: IosShare, name: string, n: number): Promise<Buffer> {
  const { handle } = await share.open(name, { mode: 'open', write: false });
  try {
    return await handle.read(0, n);
  } finally {
    await handle.close();
  }
}

describe('collector: orphan sweep', () => {
  it('sweeps an unreferenced segment of a replaced process after the grace window, never a current or referenced one', async () => {
    const env = await openEnv();
    const a = await env.start();
    expect(a.svc.membership.epoch).toBe(1);
    const kept = randomBytes(3000);
    await writeFile(a.share, 'kept.bin', kept);
    // A file whose segment becomes unreferenced (in 'gc': the gc path's business, not the sweep's).
    await writeFile(a.share, 'gone.bin', randomBytes(100));
    await a.share.remove('gone.bin');
    // A segment of epoch 1 whose map command never committed (the process died after the put).
    const orphan = seg(1, 0xfff0);
    await env.store.put(orphan, Buffer.alloc(500, 1));
    const referencedBefore = (await keys(env.store)).filter((k) => k !== orphan);
    await a.stop();

    const b = await env.start();
    expect(b.svc.membership.epoch).toBe(2);
    // Current epoch, unreferenced: its writer may still commit it.
    const current = seg(2, 0xfff0);
    await env.store.put(current, Buffer.alloc(10));
    // Left alone too: a key that is not a segment key, a segment of a node without a record.
    await env.store.put('test/seg/junk', Buffer.alloc(1));
    await env.store.put(seg(1, 1, 'n9'), Buffer.alloc(1));

    const grace = 5000;
    // positionLag: the gc path deletes nothing here, so every deletion below is the sweep's.
    const col = new Collector({ meta: b.svc, store: env.store, clusterId: 'test', nodeId: 'n1', clock: env.clock, graceMs: grace, positionLag: 1_000_000, compaction: false });
    let r = await col.collectOnce(); // first sight of epoch 2: nothing is swept yet
    expect(r.orphansDeleted).toBe(0);
    env.clock.t += grace - 1;
    r = await col.collectOnce();
    expect(r.orphansDeleted).toBe(0);
    expect(await keys(env.store)).toContain(orphan);
    env.clock.t += 1;
    r = await col.collectOnce();
    expect(r).toMatchObject({ orphansDeleted: 1, orphanBytesFreed: 500, objectsDeleted: 0 });
    const after = await keys(env.store);
    expect(after).not.toContain(orphan);
    for (const k of [...referencedBefore, current, 'test/seg/junk', seg(1, 1, 'n9')]) expect(after).toContain(k);
    expect(col.stats.orphansDeleted).toBe(1);
    expect(col.stats.orphanScans).toBeGreaterThan(0);
    // Again: nothing more to sweep; the data of the referenced segment is intact.
    env.clock.t += grace;
    expect((await col.collectOnce()).orphansDeleted).toBe(0);
    expect((await readFile(b.share, 'kept.bin', kept.length)).equals(kept)).toBe(true);
    const f = await runFsck({ meta: b.svc, store: env.store, clusterId: 'test' });
    expect(f.clean).toBe(true);
    // Garbage left: the current-epoch segment, n9's and the foreign key. fsck counts n9's as
    // superseded (no record); the sweep leaves it (a node whose join this node has not applied yet
    // may be writing it). The unlinked file's segment awaits the gc path.
    expect(f.garbage).toMatchObject({ objects: 3, superseded: { objects: 1 }, foreign: 1 });
    expect(f.garbage.keys).toContain(seg(1, 1, 'n9'));
    expect(f.pendingGc.objects).toBe(1);
  });

  it('is bounded per pass and pages through the listing', async () => {
    const env = await openEnv();
    const a = await env.start();
    await writeFile(a.share, 'f.bin', randomBytes(100));
    await a.stop();
    const b = await env.start(); // epoch 2
    const orphans: string[] = [];
    for (let i = 0; i < 7; i++) {
      orphans.push(seg(1, 0x100 + i));
      await env.store.put(orphans[i]!, Buffer.alloc(10));
    }
    for (let i = 0; i < 5; i++) await env.store.put(seg(2, 0x100 + i), Buffer.alloc(10)); // current epoch
    const col = new Collector({
      meta: b.svc,
      store: env.store,
      clusterId: 'test',
      nodeId: 'n1',
      clock: env.clock,
      graceMs: 10,
      positionLag: 1_000_000,
      compaction: false,
      orphanListPerPass: 3,
      orphansPerPass: 2,
    });
    await col.collectOnce();
    env.clock.t += 10;
    const perPass: number[] = [];
    for (let i = 0; i < 12 && col.stats.orphansDeleted < 7; i++) {
      const listed = col.stats.orphanKeysListed;
      perPass.push((await col.collectOnce()).orphansDeleted);
      expect(col.stats.orphanKeysListed - listed).toBeLessThanOrEqual(3);
    }
    expect(Math.max(...perPass)).toBeLessThanOrEqual(2);
    expect(col.stats.orphansDeleted).toBe(7);
    const left = await keys(env.store);
    for (const o of orphans) expect(left).not.toContain(o);
    for (let i = 0; i < 5; i++) expect(left).toContain(seg(2, 0x100 + i));
    expect((await runFsck({ meta: b.svc, store: env.store, clusterId: 'test' })).clean).toBe(true);
  });
});

describe('segment writer: fencing by the node lease', () => {
  it('refuses to put segments once the lease ran out (EIO, nothing put), and writes again after renewal', async () => {
    const env = await openEnv();
    const lease = 60_000;
    const a = await env.start({ nodeLeaseMs: lease });
    const writer = (a.share as unknown as { writer: { stats: { fencedSegments: number } } }).writer;
    const { handle } = await a.share.open('f.bin', { mode: 'create', write: true });
    await handle.write(0, Buffer.from('before'));
    const before = await keys(env.store);
    // Not renewed (the renewal timer runs on real time; the driver's clock jumps): inside the margin.
    env.clock.t += lease - limits.chunkedLeaseMarginMs + 1;
    const err = await handle.write(0, Buffer.from('during')).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(IosError);
    expect((err as IosError).code).toBe('EIO');
    expect((err as Error).message).toMatch(/fenced.*lease/);
    expect(await keys(env.store)).toEqual(before);
    expect(writer.stats.fencedSegments).toBe(1);
    expect((await handle.read(0, 6)).toString()).toBe('before');
    // Renewed (what MetaService's timer proposes every third of the lease): writes work again.
    const r = await a.svc.propose({ t: 'node.renew', node: 'n1', inc: a.svc.membership.incarnation, now: env.clock.nowMs(), leaseMs: lease });
    expect(r.ok).toBe(true);
    await handle.write(0, Buffer.from('after!'));
    expect((await handle.read(0, 6)).toString()).toBe('after!');
    expect((await keys(env.store)).length).toBe(before.length + 1);
    await handle.close();
  });

  it('refuses once the node left; with leases disabled (nodeLeaseMs 0) time alone never fences', async () => {
    const env = await openEnv();
    const a = await env.start({ nodeLeaseMs: 0 });
    const { handle } = await a.share.open('f.bin', { mode: 'create', write: true });
    env.clock.t += 10 * limits.metaNodeLeaseMs;
    await handle.write(0, Buffer.from('still fine'));
    const n = (await keys(env.store)).length;
    expect((await a.svc.propose({ t: 'node.leave', node: 'n1', inc: a.svc.membership.incarnation })).ok).toBe(true);
    await expect(handle.write(0, Buffer.from('no'))).rejects.toMatchObject({ code: 'EIO' });
    expect((await keys(env.store)).length).toBe(n);
    await handle.close().catch(() => undefined);
  });

  it('fences the collector\'s compaction segments too', async () => {
    const env = await openEnv();
    const lease = 60_000;
    const a = await env.start({ nodeLeaseMs: lease });
    const { handle } = await a.share.open('f.bin', { mode: 'create', write: true });
    for (let i = 7; i >= 0; i--) {
      await handle.write(i * 1024, randomBytes(1024));
      await handle.flush();
    }
    await handle.close();
    const n = (await keys(env.store)).length;
    env.clock.t += lease;
    const col = new Collector({ meta: a.svc, store: env.store, clusterId: 'test', nodeId: 'n1', clock: env.clock, graceMs: 0, positionLag: 0, compaction: { minExtents: 4, smallBytes: 8192 } });
    const r = await col.collectOnce();
    expect(r.compactions).toBe(0);
    expect(col.stats.compactionsFailed).toBeGreaterThan(0);
    expect((await keys(env.store)).length).toBe(n);
  });
});
