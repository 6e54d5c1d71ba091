// The chunked driver's data features (H14): the read cache (hits, ownership of returned buffers,
// eviction, shared fetches, failures), read-ahead (sequential vs random), and the map operations
// beyond the SPI (zeroRange, trimRange, allocatedRanges, cloneRange, copyRange) checked byte for
// byte against a model, with reference counts, bounded command splitting, and the store cost of a
// 10 GiB sparse file built by writing, zeroing, trimming and cloning, and the collector on it.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalLog } from '../../src/log/local.js';
import { metaHandlers } from '../../src/meta/families/index.js';
import { createExtentHandlers, extentsIn, gcCandidates, objectRefs } from '../../src/meta/families/extents.js';
import { clusterHandlers } from '../../src/meta/families/cluster.js';
import { createNamespaceHandlers } from '../../src/meta/families/namespace.js';
import { sysHandlers } from '../../src/meta/families/sys.js';
import { MetaService } from '../../src/meta/service.js';
import { StateMachine } from '../../src/meta/state-machine.js';
import { LmdbStateStore } from '../../src/meta/store.js';
import type { HandlerTable } from '../../src/meta/tx.js';
import { MemoryObjectStore } from '../../src/objstore/memory.js';
import { ObjStoreError, type ByteRange, type ObjectInfo, type ObjectStore, type PutOptions } from '../../src/objstore/spi.js';
import { BlockCache, ChunkedDriver, type ChunkedDriverOptions, type ChunkedHandle } from '../../src/ios/chunked/index.js';
import type { IosShare } from '../../src/ios/spi.js';
import { codeOf } from './conformance.js';
import { Collector } from '../../src/ios/chunked/collector.js';

const KiB = 1024;
const MiB = 1024 * KiB;

interface Node {
  svc: MetaService;
  close(): Promise<void>;
}

async function openNode(handlers: readonly HandlerTable[] | HandlerTable = metaHandlers): Promise<Node> {
  const dir = await mkdtemp(join(tmpdir(), 'tessera-chunked-data-'));
  const log = await LocalLog.open({ dir: join(dir, 'log') });
  const state = LmdbStateStore.open(join(dir, 'state'));
  const machine = StateMachine.open({ store: state, handlers: handlers as typeof metaHandlers });
  const svc = await MetaService.start({ log, machine, nodeId: 'n1', clusterId: 'test', nodeLeaseMs: 0 });
  return {
    svc,
    async close() {
      await svc.close();
      await log.close();
      await state.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Counts gets (and the ranges asked), can fail gets or return them short. */
class CountingStore implements ObjectStore {
  readonly kind = 'counting';
  gets = 0;
  ranges: { key: string; offset: number; length: number }[] = [];
  failGets = false;
  constructor(readonly inner: MemoryObjectStore) {}
  async get(key: string, range?: ByteRange): Promise<Buffer> {
    this.gets++;
    this.ranges.push({ key, offset: range?.offset ?? 0, length: range?.length ?? -1 });
    if (this.failGets) throw new ObjStoreError('unavailable', 'injected get failure');
    return this.inner.get(key, range);
  }
  put(key: string, body: Uint8Array | readonly Uint8Array[], opts?: PutOptions): Promise<ObjectInfo> {
    return this.inner.put(key, body, opts);
  }
  head(key: string) {
    return this.inner.head(key);
  }
  deleteMany(keys: readonly string[]) {
    return this.inner.deleteMany(keys);
  }
  list(prefix: string, opts?: { after?: string; limit?: number }) {
    return this.inner.list(prefix, opts);
  }
  copy(source: string, target: string, opts?: { ifNoneMatch?: '*' }) {
    return this.inner.copy(source, target, opts);
  }
  close() {
    return this.inner.close();
  }
}

/** A deterministic PRNG (mulberry32) so a failing sequence replays. */
function prng(seed: number): (n: number) => number {
  let a = seed >>> 0;
  return (n: number) => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) % n) >>> 0;
  };
}

const tick = (ms = 5) => new Promise((r) => setTimeout(r, ms));

describe('chunked read cache and read-ahead', () => {
  let node: Node;
  let store: CountingStore;
  let share: IosShare;
  let driver: ChunkedDriver;

  async function setup(opts: Partial<ChunkedDriverOptions> = {}): Promise<void> {
    // These cases count the store's gets after writing: the blocks of what was written are not kept.
    driver = new ChunkedDriver({ meta: node.svc, store, clusterId: 'test', nodeId: 'n1', cacheWrites: false, ...opts });
    share = await driver.openShare('vms', {});
  }
  beforeEach(async () => {
    node = await openNode();
    store = new CountingStore(new MemoryObjectStore());
  });
  afterEach(async () => {
    await share?.close();
    await node.close();
    await store.close();
  });

  const fileWith = async (name: string, data: Buffer): Promise<ChunkedHandle> => {
    const h = (await share.open(name, { mode: 'openOrCreate', write: true })).handle as ChunkedHandle;
    // Written in 1 MiB pieces, awaited one by one: one segment each.
    for (let at = 0; at < data.length; at += MiB) await h.write(at, data.subarray(at, Math.min(data.length, at + MiB)));
    return h;
  };

  it('what was just written is read back from memory, not from the store (cacheWrites, the default)', async () => {
    await setup({ readAheadBytes: 0, cacheWrites: true });
    const data = randomBytes(3 * 64 * KiB + 100);
    const h = await fileWith('w', data);
    store.gets = 0;
    expect((await h.read(0, data.length)).equals(data)).toBe(true);
    expect((await h.read(64 * KiB + 7, 5000)).equals(data.subarray(64 * KiB + 7, 64 * KiB + 5007))).toBe(true);
    expect(store.gets).toBe(0);
    // Overwritten bytes: the new segment's blocks, never the old ones.
    const over = randomBytes(4096);
    await h.write(100, over);
    over.copy(data, 100);
    expect((await h.read(0, data.length)).equals(data)).toBe(true);
    expect(store.gets).toBe(0);
    await h.close();
  });

  it('reads see every write, zero, truncate and clone made through any handle at once (the map cache, map-cache.ts)', async () => {
    await setup({ readAheadBytes: 0, cacheWrites: true });
    const a = (await share.open('m', { mode: 'openOrCreate', write: true })).handle as ChunkedHandle;
    const src = (await share.open('src', { mode: 'openOrCreate', write: true })).handle as ChunkedHandle;
    const srcData = randomBytes(64 * KiB);
    await src.write(0, srcData);
    const b = (await share.open('m', { mode: 'open', write: false })).handle as ChunkedHandle;
    const span = 256 * KiB;
    let model = Buffer.alloc(0);
    const resize = (n: number): void => {
      const next = Buffer.alloc(n);
      model.copy(next, 0, 0, Math.min(n, model.length));
      model = next;
    };
    const rnd = (n: number): number => Math.floor(Math.random() * n);
    for (let step = 0; step < 300; step++) {
      const op = rnd(11);
      const off = rnd(span);
      const len = 1 + rnd(16 * KiB);
      if (op === 10) {
        // Writes issued together share a segment and one ext.writev: one batch changes many records
        // of the fork (the cache merges them in one pass rather than splicing each).
        const burst: Promise<void>[] = [];
        for (let i = 0; i < 8; i++) {
          const o = rnd(span);
          const d = randomBytes(1 + rnd(8 * KiB));
          burst.push(a.write(o, d).then(() => undefined));
          if (o + d.length > model.length) resize(o + d.length);
          d.copy(model, o);
        }
        await Promise.all(burst);
      } else if (op < 5) {
        const d = randomBytes(len);
        await a.write(off, d);
        if (off + len > model.length) resize(off + len);
        d.copy(model, off);
      } else if (op < 7) {
        await a.zeroRange(off, len);
        if (off < model.length) model.fill(0, off, Math.min(model.length, off + len));
      } else if (op < 8) {
        const size = rnd(span);
        await a.truncate(size);
        resize(size);
      } else {
        // Clone onto bytes inside the end of file (FSCTL_DUPLICATE_EXTENTS_TO_FILE needs them there).
        const n = 4 * KiB * (1 + rnd(8));
        if (model.length < n) continue;
        const at = 4 * KiB * rnd(Math.floor((model.length - n) / (4 * KiB)) + 1);
        await a.cloneRange(src, 0, at, n);
        srcData.copy(model, at, 0, n);
      }
      // Every read comes after the change was answered: through the other handle, whole and in part.
      expect((await b.info()).size).toBe(model.length);
      expect((await b.read(0, span + 64 * KiB)).equals(model)).toBe(true);
      const from = rnd(model.length + 1);
      const l = rnd(32 * KiB);
      expect((await b.read(from, l)).equals(model.subarray(from, Math.min(model.length, from + l)))).toBe(true);
    }
    expect((share as unknown as { maps: { stats: { hits: number } } }).maps.stats.hits).toBeGreaterThan(300);
    for (const h of [a, b, src]) await h.close();
  });

  it('a second read of cached bytes does not call the store; returned buffers are never shared', async () => {
    await setup({ readAheadBytes: 0 });
    const data = randomBytes(256 * KiB);
    const h = await fileWith('f', data);
    store.gets = 0;
    const a = await h.read(1000, 100 * KiB);
    expect(a.equals(data.subarray(1000, 1000 + 100 * KiB))).toBe(true);
    const first = store.gets;
    expect(first).toBe(1); // one run of two blocks, one get
    const b = await h.read(1000, 100 * KiB);
    const c = await h.read(70 * KiB, 10); // inside a block read before
    expect(store.gets).toBe(first);
    expect(b.equals(a)).toBe(true);
    expect(c.equals(data.subarray(70 * KiB, 70 * KiB + 10))).toBe(true);
    // The caller owns what it got: changing it (as in-place encryption does) changes nothing cached.
    a.fill(0xff);
    b.fill(0xee);
    const into = Buffer.alloc(100 * KiB);
    const d = await h.read(1000, 100 * KiB, into);
    expect(d.buffer).toBe(into.buffer);
    into.fill(0x11);
    expect((await h.read(1000, 100 * KiB)).equals(data.subarray(1000, 1000 + 100 * KiB))).toBe(true);
    // A whole-block read gives a buffer of its own too (not the cached block).
    const whole = await h.read(0, 64 * KiB);
    whole.fill(0);
    expect((await h.read(0, 64 * KiB)).equals(data.subarray(0, 64 * KiB))).toBe(true);
    expect(store.gets).toBe(first); // block 0 came with the first read
    expect(driver.cache.stats.hits).toBeGreaterThan(0);
    await h.close();
  });

  it('evicts least recently used blocks to stay under its byte limit', async () => {
    await setup({ readAheadBytes: 0, cacheBytes: 4 * 64 * KiB });
    const data = randomBytes(1 * MiB);
    const h = await fileWith('f', data);
    for (let at = 0; at < data.length; at += 64 * KiB) {
      expect((await h.read(at, 64 * KiB)).equals(data.subarray(at, at + 64 * KiB))).toBe(true);
      expect(driver.cache.bytes).toBeLessThanOrEqual(4 * 64 * KiB);
    }
    expect(driver.cache.size).toBe(4);
    expect(driver.cache.stats.evictions).toBe(12);
    // The last four blocks are kept, the first is gone.
    store.gets = 0;
    await h.read(15 * 64 * KiB, 64 * KiB);
    expect(store.gets).toBe(0);
    // A hit makes block 12 the most recent: the next miss evicts block 13, not 12.
    await h.read(12 * 64 * KiB, 64 * KiB);
    await h.read(0, 64 * KiB);
    expect(store.gets).toBe(1);
    await h.read(12 * 64 * KiB, 10);
    expect(store.gets).toBe(1);
    await h.read(13 * 64 * KiB, 10);
    expect(store.gets).toBe(2);
    await h.close();
  });

  it('concurrent reads of one block share a fetch; a failed fetch is not cached', async () => {
    await setup({ readAheadBytes: 0 });
    const data = randomBytes(128 * KiB);
    const h = await fileWith('f', data);
    store.gets = 0;
    const rs = await Promise.all(Array.from({ length: 8 }, (_, i) => h.read(i * 1000, 4 * KiB)));
    rs.forEach((r, i) => expect(r.equals(data.subarray(i * 1000, i * 1000 + 4 * KiB))).toBe(true));
    expect(store.gets).toBe(1);
    expect(driver.cache.stats.joined).toBe(7);
    store.failGets = true;
    expect(await codeOf(h.read(100 * KiB, 10))).toBe('EIO');
    store.failGets = false;
    expect((await h.read(100 * KiB, 10)).equals(data.subarray(100 * KiB, 100 * KiB + 10))).toBe(true);
    await h.close();
  });

  it('a block cache alone: an object shorter than a piece is EIO; cache 0 keeps nothing', async () => {
    const mem = new MemoryObjectStore();
    await mem.put('o', Buffer.alloc(100, 7));
    const cache = new BlockCache(mem, { blockBytes: 512 });
    const out = Buffer.alloc(200);
    await expect(cache.readInto([{ object: 'o', objectOffset: 50, length: 150, at: 0 }], out)).rejects.toMatchObject({ code: 'EIO' });
    await cache.readInto([{ object: 'o', objectOffset: 50, length: 50, at: 10 }], out);
    expect(out.subarray(10, 60).equals(Buffer.alloc(50, 7))).toBe(true);
    expect(cache.size).toBe(1);
    const none = new BlockCache(mem, { bytesMax: 0, blockBytes: 512 });
    await none.readInto([{ object: 'o', objectOffset: 0, length: 100, at: 0 }], out);
    expect(none.size).toBe(0);
    expect(none.prefetch([{ object: 'o', objectOffset: 0, length: 100 }])).toBe(0);
    expect(() => new BlockCache(mem, { blockBytes: 1 })).toThrow(/blockBytes/);
    await mem.close();
  });

  it('peek copies kept bytes (across blocks) without fetching, counting or reordering; anything not kept is undefined', async () => {
    const mem = new CountingStore(new MemoryObjectStore());
    const body = randomBytes(1300);
    await mem.put('o', body);
    const cache = new BlockCache(mem, { blockBytes: 512, bytesMax: 1024 });
    expect(cache.peek('o', 0, 10)).toBeUndefined(); // nothing kept yet: no get either
    expect(mem.gets).toBe(0);
    // Blocks 0 and 1 kept (two reads, so they are two LRU entries: 0 older than 1).
    await cache.readInto([{ object: 'o', objectOffset: 0, length: 512, at: 0 }], Buffer.alloc(512));
    await cache.readInto([{ object: 'o', objectOffset: 512, length: 512, at: 0 }], Buffer.alloc(512));
    const gets = mem.gets;
    const stats = { ...cache.stats };
    const p = cache.peek('o', 500, 30)!; // spans blocks 0 and 1
    expect(p.equals(body.subarray(500, 530))).toBe(true);
    expect(cache.peek('o', 0, 1024)!.equals(body.subarray(0, 1024))).toBe(true);
    // A copy: changing it changes nothing kept.
    p.fill(0);
    expect(cache.peek('o', 500, 30)!.equals(body.subarray(500, 530))).toBe(true);
    // Block 2 is not kept: a range touching it is a miss, and peek fetched nothing.
    expect(cache.peek('o', 1000, 100)).toBeUndefined();
    expect(cache.peek('other', 0, 10)).toBeUndefined();
    expect(cache.peek('o', -1, 10)).toBeUndefined();
    expect(cache.peek('o', 0, 0)).toBeUndefined();
    expect(mem.gets).toBe(gets);
    expect(cache.stats).toEqual(stats);
    // peek does not make a block recent: after a peek of block 0 alone, reading block 2 still
    // evicts block 0 (the oldest), not block 1.
    expect(cache.peek('o', 0, 10)!.equals(body.subarray(0, 10))).toBe(true);
    await cache.readInto([{ object: 'o', objectOffset: 1024, length: 276, at: 0 }], Buffer.alloc(276));
    expect(cache.peek('o', 0, 10)).toBeUndefined();
    expect(cache.peek('o', 512, 10)!.equals(body.subarray(512, 522))).toBe(true);
    // A kept last block shorter than the asked range (the object ends first) is a miss.
    expect(cache.peek('o', 1024, 276)!.equals(body.subarray(1024))).toBe(true);
    expect(cache.peek('o', 1024, 300)).toBeUndefined();
    await mem.close();
  });

  it('blocks of one ranged get share its buffer, and the bound counts that buffer once, until its last block goes', async () => {
    const mem = new MemoryObjectStore();
    const data = randomBytes(2 * MiB);
    await mem.put('o', data);
    // 64 KiB blocks, 1 MiB gets: a 4 MiB tier holds views into shared 1 MiB buffers.
    const cache = new BlockCache(mem, { bytesMax: 4 * MiB, blockBytes: 64 * KiB, fetchBytesMax: MiB });
    const out = Buffer.alloc(2 * MiB);
    await cache.readInto([{ object: 'o', objectOffset: 0, length: 2 * MiB, at: 0 }], out);
    expect(out.equals(data)).toBe(true);
    expect(cache.size).toBe(32);
    expect(cache.bytes).toBe(2 * MiB); // two gets' buffers, not 32 copies
    // Changing what the caller got changes nothing kept.
    out.fill(0);
    await cache.readInto([{ object: 'o', objectOffset: 0, length: 2 * MiB, at: 0 }], out);
    expect(out.equals(data)).toBe(true);
    // Block 0 read again: the most recently used of o's blocks, it keeps o's first buffer alive.
    await cache.readInto([{ object: 'o', objectOffset: 0, length: 10, at: 0 }], Buffer.alloc(10));
    // Other objects push o out. Evicting blocks 1-15 frees nothing (block 0 still holds their
    // buffer), so o's second buffer goes whole: what stays is block 0 and p's 48 blocks, 4 MiB held
    // (own copies of each block would have left blocks 0 and 17-31 in the same 4 MiB).
    await mem.put('p', randomBytes(3 * MiB));
    await cache.readInto([{ object: 'p', objectOffset: 0, length: 3 * MiB, at: 0 }], Buffer.alloc(3 * MiB));
    expect(cache.bytes).toBe(4 * MiB);
    expect(cache.size).toBe(1 + 48);
    await mem.close();
  });

  it('read-ahead fetches ahead on sequential reads, and never on random ones', async () => {
    await setup({ readAheadBytes: 2 * MiB });
    const data = randomBytes(8 * MiB);
    const h = await fileWith('f', data);
    const step = 64 * KiB;
    store.gets = 0;
    await h.read(0, step);
    await h.read(step, step); // second sequential read: read-ahead starts
    // Two gets for the two reads, then the window after them asked for already.
    expect(store.gets).toBe(3);
    expect(store.ranges[2]).toMatchObject({ offset: 2 * step, length: 4 * step });
    await tick(20);
    expect(driver.cache.stats.prefetchedBlocks).toBeGreaterThan(0);
    // The next reads are served from what read-ahead fetched: no read fetches a block itself.
    const missesBefore = driver.cache.stats.misses;
    for (let i = 2; i < 6; i++) expect((await h.read(i * step, step)).equals(data.subarray(i * step, (i + 1) * step))).toBe(true);
    expect(driver.cache.stats.misses).toBe(missesBefore);
    // Reading the whole file sequentially: every read returns the right bytes, few reads wait on a get.
    const misses0 = driver.cache.stats.misses;
    for (let at = 6 * step; at < data.length; at += step) {
      expect((await h.read(at, step)).equals(data.subarray(at, at + step))).toBe(true);
    }
    const reads = (data.length - 6 * step) / step;
    const missed = driver.cache.stats.misses - misses0;
    expect(missed).toBeLessThan(reads / 4);
    console.log(`read-ahead: ${reads} sequential 64 KiB reads, ${missed} blocks fetched by reads, ${driver.cache.stats.prefetchedBlocks} by read-ahead, ${store.gets} gets`);

    // Random reads of another handle: no read-ahead at all.
    const r = (await share.open('f', { mode: 'open', write: false })).handle as ChunkedHandle;
    driver.cache.clear();
    const prefetched = driver.cache.stats.prefetchedBlocks;
    store.gets = 0;
    const offsets = [5, 97, 33, 61, 12, 80, 44, 120, 2, 70].map((b) => b * step);
    for (const at of offsets) expect((await r.read(at, 4 * KiB)).equals(data.subarray(at, at + 4 * KiB))).toBe(true);
    await tick(20);
    expect(driver.cache.stats.prefetchedBlocks).toBe(prefetched);
    expect(store.gets).toBe(offsets.length);
    await r.close();
    await h.close();
  });

  it('read-ahead stops at end of file, skips holes, and is bounded in flight', async () => {
    await setup({ readAheadBytes: 8 * MiB });
    const h = (await share.open('sparse', { mode: 'create', write: true })).handle as ChunkedHandle;
    await h.truncate(4 * MiB);
    await h.write(0, randomBytes(128 * KiB));
    await h.write(3 * MiB, randomBytes(64 * KiB));
    store.ranges = [];
    await h.read(0, 64 * KiB);
    await h.read(64 * KiB, 64 * KiB);
    await tick(20);
    // Fetched: the first object's blocks and the second object's (beyond the hole), nothing else.
    for (const g of store.ranges) expect(g.offset + g.length).toBeLessThanOrEqual(128 * KiB);
    expect(store.ranges.length).toBeGreaterThanOrEqual(2);
    // In-flight bound: a cache allowing no read-ahead bytes skips it.
    const mem = new MemoryObjectStore();
    await mem.put('o', Buffer.alloc(MiB));
    const c = new BlockCache(mem, { prefetchInFlightBytesMax: 64 * KiB });
    expect(c.prefetch([{ object: 'o', objectOffset: 0, length: 64 * KiB }])).toBe(64 * KiB);
    expect(c.prefetch([{ object: 'o', objectOffset: 128 * KiB, length: 64 * KiB }])).toBe(0);
    expect(c.stats.prefetchSkipped).toBe(1);
    await tick(5);
    // Skipped blocks are not left "in flight": a read fetches them.
    const out = Buffer.alloc(64 * KiB);
    await c.readInto([{ object: 'o', objectOffset: 128 * KiB, length: 64 * KiB, at: 0 }], out);
    expect(c.prefetch([{ object: 'o', objectOffset: 256 * KiB, length: 64 * KiB }])).toBe(64 * KiB);
    await mem.close();
    await h.close();
  });
});

/** A byte model of one file: contents, size, and which bytes are mapped. */
class Model {
  data: Buffer;
  mapped: Uint8Array;
  size = 0;
  constructor(capacity: number) {
    this.data = Buffer.alloc(capacity);
    this.mapped = new Uint8Array(capacity);
  }
  write(at: number, b: Buffer): void {
    b.copy(this.data, at);
    this.mapped.fill(1, at, at + b.length);
    this.size = Math.max(this.size, at + b.length);
  }
  zero(at: number, n: number): void {
    const end = Math.min(at + n, this.size);
    if (end <= at) return;
    this.data.fill(0, at, end);
    this.mapped.fill(0, at, end);
  }
  /** Same-file or cross-file map copy of [s, s+n) of `src` to d (as if read first). */
  clone(src: Model, s: number, d: number, n: number): void {
    const bytes = Buffer.from(src.data.subarray(s, s + n));
    const bits = src.mapped.slice(s, s + n);
    bytes.copy(this.data, d);
    this.mapped.set(bits, d);
  }
  ranges(at: number, n: number): { offset: number; length: number }[] {
    const out: { offset: number; length: number }[] = [];
    for (let i = at; i < Math.min(at + n, this.size); i++) {
      if (this.mapped[i] !== 1) continue;
      const last = out[out.length - 1];
      if (last !== undefined && last.offset + last.length === i) last.length++;
      else out.push({ offset: i, length: 1 });
    }
    return out;
  }
}

describe('chunked range operations: zero, trim, allocated ranges, clone, copy', () => {
  let node: Node;
  let mem: MemoryObjectStore;
  let share: IosShare;

  beforeEach(async () => {
    node = await openNode();
    mem = new MemoryObjectStore();
    share = await new ChunkedDriver({ meta: node.svc, store: mem, clusterId: 'test', nodeId: 'n1' }).openShare('vms', {});
  });
  afterEach(async () => {
    await share.close();
    await node.close();
    await mem.close();
  });

  const fileOf = async (name: string, s: IosShare = share) => (await s.open(name, { mode: 'openOrCreate', write: true })).handle as ChunkedHandle;
  const mapOf = (h: ChunkedHandle, svc = node.svc) => svc.read((tx) => extentsIn(tx, h.fork, 0, 2 ** 40));

  it('zeroRange and trimRange unmap (holes read as zero, size kept); allocatedRanges reports what is mapped', async () => {
    const h = await fileOf('z');
    const data = randomBytes(300 * KiB);
    await h.write(0, data);
    await h.zeroRange(10 * KiB, 20 * KiB);
    await h.trimRange(100 * KiB, 50 * KiB);
    await h.zeroRange(290 * KiB, 100 * KiB); // beyond EOF: only what lies below it changes
    expect((await h.info()).size).toBe(300 * KiB);
    const want = Buffer.from(data);
    want.fill(0, 10 * KiB, 30 * KiB);
    want.fill(0, 100 * KiB, 150 * KiB);
    want.fill(0, 290 * KiB, 300 * KiB);
    expect((await h.read(0, 400 * KiB)).equals(want)).toBe(true);
    expect(await h.allocatedRanges(0, 1 * MiB)).toEqual([
      { offset: 0, length: 10 * KiB },
      { offset: 30 * KiB, length: 70 * KiB },
      { offset: 150 * KiB, length: 140 * KiB },
    ]);
    expect(await h.allocatedRanges(20 * KiB, 100 * KiB)).toEqual([{ offset: 30 * KiB, length: 70 * KiB }]);
    expect(await h.allocatedRanges(0, 1 * MiB, 2)).toEqual([
      { offset: 0, length: 10 * KiB },
      { offset: 30 * KiB, length: 70 * KiB },
    ]);
    expect(await h.allocatedRanges(10 * KiB, 20 * KiB)).toEqual([]);
    expect(await codeOf(h.zeroRange(-1, 5))).toBe('EINVAL');
    expect(await codeOf(h.allocatedRanges(0, 10, 0))).toBe('EINVAL');
    const ro = (await share.open('z', { mode: 'open', write: false })).handle as ChunkedHandle;
    expect(await codeOf(ro.zeroRange(0, 10))).toBe('EACCES');
    expect((await ro.allocatedRanges(0, 5 * KiB)).length).toBe(1);
    await ro.close();
    await h.close();
  });

  it('zero and clone are ordered after writes still in flight', async () => {
    const h = await fileOf('o');
    const w = h.write(0, Buffer.alloc(64 * KiB, 1)); // not awaited
    await h.zeroRange(0, 32 * KiB);
    await w;
    expect((await h.read(0, 64 * KiB)).equals(Buffer.concat([Buffer.alloc(32 * KiB), Buffer.alloc(32 * KiB, 1)]))).toBe(true);
    const d = await fileOf('d');
    await d.truncate(64 * KiB);
    const w2 = h.write(0, Buffer.alloc(16 * KiB, 2)); // not awaited
    await d.cloneRange(h, 0, 0, 64 * KiB);
    await w2;
    expect((await d.read(0, 64 * KiB)).equals(Buffer.concat([Buffer.alloc(16 * KiB, 2), Buffer.alloc(16 * KiB), Buffer.alloc(32 * KiB, 1)]))).toBe(true);
    expect(await d.allocatedRanges(0, 64 * KiB)).toEqual([
      { offset: 0, length: 16 * KiB },
      { offset: 32 * KiB, length: 32 * KiB },
    ]);
    await h.close();
    await d.close();
  });

  it('cloneRange shares objects (refs counted) and follows FSCTL_DUPLICATE_EXTENTS rules', async () => {
    const a = await fileOf('a');
    const b = await fileOf('b');
    const data = randomBytes(128 * KiB);
    await a.write(0, data);
    const [ext] = mapOf(a);
    const obj = ext!.object;
    expect(node.svc.read((tx) => objectRefs(tx, obj))).toBe(1);
    await b.truncate(256 * KiB);
    const puts0 = mem.stats();
    await b.cloneRange(a, 0, 128 * KiB, 128 * KiB);
    expect(mem.stats()).toEqual(puts0); // no data moved
    expect(node.svc.read((tx) => objectRefs(tx, obj))).toBe(2);
    expect((await b.read(128 * KiB, 128 * KiB)).equals(data)).toBe(true);
    // Same file, disjoint ranges: fine; overlapping: EINVAL; beyond either end of file: EINVAL.
    await a.truncate(256 * KiB);
    await a.cloneRange(a, 0, 128 * KiB, 64 * KiB);
    expect(node.svc.read((tx) => objectRefs(tx, obj))).toBe(3);
    expect(await codeOf(a.cloneRange(a, 0, 32 * KiB, 64 * KiB))).toBe('EINVAL');
    expect(await codeOf(b.cloneRange(a, 200 * KiB, 0, 100 * KiB))).toBe('EINVAL');
    expect(await codeOf(b.cloneRange(a, 0, 200 * KiB, 100 * KiB))).toBe('EINVAL');
    const ro = (await share.open('b', { mode: 'open', write: false })).handle as ChunkedHandle;
    expect(await codeOf(ro.cloneRange(a, 0, 0, 10))).toBe('EACCES');
    await ro.close();
    // Freed references: zeroing every copy leaves the object to the collector.
    await a.zeroRange(0, 256 * KiB);
    expect(node.svc.read((tx) => objectRefs(tx, obj))).toBe(1);
    await b.zeroRange(0, 256 * KiB);
    expect(node.svc.read((tx) => objectRefs(tx, obj))).toBe(0);
    expect(node.svc.read((tx) => gcCandidates(tx, 100)).map((g) => g.object)).toContain(obj);
    await a.close();
    await b.close();
  });

  it('copyRange clamps at the source end of file, extends the target, and copies overlapping ranges as memmove', async () => {
    const a = await fileOf('a');
    const b = await fileOf('b');
    const data = randomBytes(100 * KiB);
    await a.write(0, data);
    // Extends b to 50 KiB + 100 KiB; the source is clamped at its end of file.
    expect(await b.copyRange(a, 0, 50 * KiB, 200 * KiB)).toBe(100 * KiB);
    expect((await b.info()).size).toBe(150 * KiB);
    expect((await b.read(0, 150 * KiB)).equals(Buffer.concat([Buffer.alloc(50 * KiB), data]))).toBe(true);
    expect(await b.allocatedRanges(0, MiB)).toEqual([{ offset: 50 * KiB, length: 100 * KiB }]);
    expect(await b.copyRange(a, 100 * KiB, 0, 10)).toBe(0);
    // Only the tail was stored again as data; the rest shares a's object.
    const objs = new Set(mapOf(b).map((e) => e.object));
    expect(objs.has(mapOf(a)[0]!.object)).toBe(true);
    // Overlapping in one file, both directions.
    const m = Buffer.from(data);
    expect(await a.copyRange(a, 0, 10 * KiB, 100 * KiB)).toBe(100 * KiB);
    m.copy(m, 10 * KiB, 0, 90 * KiB);
    const grown = Buffer.concat([m, data.subarray(90 * KiB)]);
    expect((await a.read(0, 200 * KiB)).equals(grown)).toBe(true);
    expect(await a.copyRange(a, 20 * KiB, 5 * KiB, 50 * KiB)).toBe(50 * KiB);
    grown.copy(grown, 5 * KiB, 20 * KiB, 70 * KiB);
    expect((await a.read(0, 200 * KiB)).equals(grown)).toBe(true);
    await a.close();
    await b.close();
  });

  it('random writes, zeros, trims, clones and copies match a byte model (two files, reads through the cache)', async () => {
    const rnd = prng(1405);
    const cap = 2 * MiB;
    const files = [await fileOf('m0'), await fileOf('m1')];
    const models = [new Model(cap), new Model(cap)];
    const span = 768 * KiB;
    const check = async (i: number) => {
      const h = files[i]!;
      const m = models[i]!;
      expect((await h.info()).size).toBe(m.size);
      const got = await h.read(0, m.size + 10);
      expect(got.equals(m.data.subarray(0, m.size))).toBe(true);
      expect(await h.allocatedRanges(0, cap)).toEqual(m.ranges(0, cap));
    };
    for (let step = 0; step < 120; step++) {
      const i = rnd(2);
      const h = files[i]!;
      const m = models[i]!;
      const op = rnd(6);
      const at = rnd(span);
      const n = 1 + rnd(96 * KiB);
      if (op === 0 || m.size === 0) {
        const b = randomBytes(n);
        await h.write(at, b);
        m.write(at, b);
      } else if (op === 1) {
        await h.zeroRange(at, n);
        m.zero(at, n);
      } else if (op === 2) {
        await h.trimRange(at, n);
        m.zero(at, n);
      } else if (op === 3) {
        const j = rnd(2);
        const s = rnd(models[j]!.size);
        const len = Math.min(n, models[j]!.size - s, m.size - at);
        if (len <= 0) continue;
        if (j === i && s < at + len && at < s + len) {
          expect(await codeOf(h.cloneRange(files[j]!, s, at, len))).toBe('EINVAL');
          continue;
        }
        await h.cloneRange(files[j]!, s, at, len);
        m.clone(models[j]!, s, at, len);
      } else {
        const j = rnd(2);
        const src = models[j]!;
        const s = rnd(src.size + 1);
        const copied = await h.copyRange(files[j]!, s, at, n);
        const len = Math.max(0, Math.min(n, src.size - s));
        expect(copied).toBe(len);
        if (len > 0) {
          const overlapping = j === i && s < at + len && at < s + len;
          const extends_ = at + len > m.size;
          m.clone(src, s, at, len);
          m.size = Math.max(m.size, at + len);
          if (overlapping) m.mapped.fill(1, at, at + len);
          else if (extends_) m.mapped.fill(1, at + len - Math.min(len, 4 * KiB), at + len);
        }
      }
      if (step % 10 === 9) await check(i);
    }
    await check(0);
    await check(1);
    await files[0]!.close();
    await files[1]!.close();
  }, 30_000);

  it('zero, clone and copy over more extents than one command may touch are split into bounded commands', async () => {
    const budget = 8;
    const small = await openNode([sysHandlers, clusterHandlers, createNamespaceHandlers({ extentsPerCommandMax: budget }), createExtentHandlers({ extentsPerCommandMax: budget })]);
    const store = new MemoryObjectStore();
    const s2 = await new ChunkedDriver({ meta: small.svc, store, clusterId: 'test', nodeId: 'n1', extentsPerCommandMax: budget }).openShare('frag', {});
    const a = await fileOf('a', s2);
    const b = await fileOf('b', s2);
    const m = new Model(4096);
    // 40 one-byte extents from 40 segments, a byte apart.
    for (let i = 0; i < 40; i++) {
      const byte = Buffer.from([0x41 + (i % 26)]);
      await a.write(i * 2, byte);
      m.write(i * 2, byte);
    }
    expect(mapOf(a, small.svc).length).toBe(40);
    await b.truncate(200);
    expect((await a.info()).size).toBe(79);
    await b.cloneRange(a, 0, 100, 79);
    const mb = new Model(4096);
    mb.size = 200;
    mb.clone(m, 0, 100, 79);
    expect((await b.read(0, 300)).equals(mb.data.subarray(0, 200))).toBe(true);
    expect(await b.allocatedRanges(0, 300)).toEqual(mb.ranges(0, 300));
    expect(await b.copyRange(a, 0, 180, 80)).toBe(79);
    mb.clone(m, 0, 180, 79);
    mb.size = 259;
    expect((await b.read(0, 300)).equals(mb.data.subarray(0, 259))).toBe(true);
    await a.zeroRange(0, 80);
    expect(mapOf(a, small.svc)).toEqual([]);
    expect((await b.read(0, 300)).equals(mb.data.subarray(0, 259))).toBe(true);
    await a.close();
    await b.close();
    await s2.close();
    await store.close();
    await small.close();
  });

  it('a 10 GiB sparse file built by writing, zeroing, trimming and cloning costs about the bytes written; the collector frees dead objects', async () => {
    const chunk = MiB;
    const chunks = 10 * 1024; // 10 GiB
    const h = await fileOf('vm.vhdx');
    await h.truncate(chunks * chunk);
    const model = new Map<number, Buffer>();
    const rnd = prng(77);
    let written = 0;
    // 160 MiB of writes: 96 scattered 1 MiB chunks and one 64 MiB run (a region later trimmed whole).
    const inflight: Promise<number>[] = [];
    const put = async (c: number) => {
      const b = randomBytes(chunk);
      model.set(c, b);
      written += chunk;
      inflight.push(h.write(c * chunk, b));
      if (inflight.length >= 8) await Promise.all(inflight.splice(0));
    };
    for (let i = 0; i < 96; i++) await put(rnd(chunks));
    const run = 4096 + rnd(1024);
    for (let k = 0; k < 64; k++) await put(run + k);
    await Promise.all(inflight);
    // Zero and trim 128 MiB each at random places, and trim the whole 64 MiB run.
    const unmap = async (c: number, n: number, zero: boolean) => {
      if (zero) await h.zeroRange(c * chunk, n * chunk);
      else await h.trimRange(c * chunk, n * chunk);
      for (let k = c; k < c + n; k++) model.delete(k);
    };
    for (let i = 0; i < 4; i++) await unmap(rnd(chunks - 128), 128, i % 2 === 0);
    await unmap(run, 64, false);
    // Clone 3 ranges of 512 MiB to other places (disjoint from their source).
    for (let i = 0; i < 3; i++) {
      const s = rnd(chunks / 2 - 512);
      const d = chunks / 2 + rnd(chunks / 2 - 512);
      await h.cloneRange(h, s * chunk, d * chunk, 512 * chunk);
      const copy = new Map<number, Buffer>();
      for (let k = 0; k < 512; k++) {
        const v = model.get(s + k);
        if (v !== undefined) copy.set(d + k, v);
      }
      for (let k = 0; k < 512; k++) model.delete(d + k);
      for (const [k, v] of copy) model.set(k, v);
    }
    // Read back every mapped chunk and 512 random holes; allocated ranges must equal the model.
    for (const [c, want] of model) expect((await h.read(c * chunk, chunk)).equals(want)).toBe(true);
    for (let i = 0; i < 512; i++) {
      const c = rnd(chunks);
      if (!model.has(c)) expect((await h.read(c * chunk, chunk)).equals(Buffer.alloc(chunk))).toBe(true);
    }
    const allocated = (await h.allocatedRanges(0, chunks * chunk)).reduce((n, r) => n + r.length, 0);
    expect(allocated).toBe(model.size * chunk);
    const stored = mem.stats().bytes;
    const ratio = stored / written;
    expect((await h.info()).size).toBe(chunks * chunk);
    expect(ratio).toBeLessThanOrEqual(1.01);
    // The collector deletes the objects nothing references any more (the trimmed 64 MiB run's
    // segments); objects still partly referenced stay (compaction of dead space is not done).
    const col = new Collector({ meta: node.svc, store: mem, clusterId: 'test', nodeId: 'n1', graceMs: 0, positionLag: 0, compaction: false });
    for (let i = 0; i < 3; i++) await col.collectOnce();
    const after = mem.stats().bytes;
    expect(col.stats.objectsDeleted).toBeGreaterThan(0);
    expect(after).toBeLessThan(stored);
    // What the collector says it freed is what left the store.
    expect(col.stats.bytesFreed).toBe(stored - after);
    for (const [c, want] of model) expect((await h.read(c * chunk, chunk)).equals(want)).toBe(true);
    console.log(
      `10 GiB sparse file: ${written / MiB} MiB written, ${stored / MiB} MiB in the store (ratio ${ratio.toFixed(3)}), ${allocated / MiB} MiB allocated after zero/trim/clone; collector deleted ${col.stats.objectsDeleted} objects (${(col.stats.bytesFreed / MiB).toFixed(0)} MiB): ${(after / MiB).toFixed(0)} MiB stored (ratio ${(after / written).toFixed(3)})`,
    );
    await h.close();
  }, 120_000);
});
