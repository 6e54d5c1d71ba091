// The disk tier of the chunked driver's read cache (src/ios/chunked/disk-cache.ts, H17): hits from
// disk once the memory tier evicted a block (store gets counted), survival of a driver restart on the
// same directory, damaged block files detected and refetched, the byte bound (also applied at start),
// one fetch for concurrent reads of one block, temp files of a crash removed at start.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, stat, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalLog } from '../../src/log/local.js';
import { metaHandlers } from '../../src/meta/families/index.js';
import { MetaService } from '../../src/meta/service.js';
import { StateMachine } from '../../src/meta/state-machine.js';
import { LmdbStateStore } from '../../src/meta/store.js';
import { MemoryObjectStore } from '../../src/objstore/memory.js';
import type { ByteRange } from '../../src/objstore/spi.js';
import { BlockCache, ChunkedDriver, type ChunkedHandle } from '../../src/ios/chunked/index.js';

const KiB = 1024;
const B = 4 * KiB;

/** A memory store that counts gets. */
class CountingStore extends MemoryObjectStore {
  gets = 0;
  override async get(key: string, range?: ByteRange): Promise<Buffer> {
    this.gets++;
    return super.get(key, range);
  }
}

/** Every block file under the cache directory, with its size. */
async function filesIn(dir: string): Promise<{ path: string; size: number }[]> {
  const out: { path: string; size: number }[] = [];
  for (const sub of await readdir(dir)) {
    const d = join(dir, sub);
    if (!(await stat(d)).isDirectory()) continue;
    for (const f of await readdir(d)) out.push({ path: join(d, f), size: (await stat(join(d, f))).size });
  }
  return out;
}

const whole = (o: string, len: number) => [{ object: o, objectOffset: 0, length: len, at: 0 }];

describe('chunked read cache: disk tier', () => {
  let dir: string;
  let store: CountingStore;
  const caches: BlockCache[] = [];
  const open = (memory: number, disk: number, more: { writeQueueBytesMax?: number } = {}): BlockCache => {
    const c = new BlockCache(store, { blockBytes: B, bytesMax: memory, disk: { dir: join(dir, 'cache'), bytesMax: disk, ...more } });
    caches.push(c);
    return c;
  };
  const read = async (c: BlockCache, o: string, len: number): Promise<Buffer> => {
    const out = Buffer.alloc(len);
    await c.readInto(whole(o, len), out);
    return out;
  };

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tessera-disk-cache-'));
    store = new CountingStore();
  });
  afterEach(async () => {
    for (const c of caches.splice(0)) await c.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('serves blocks from disk once the memory tier evicted them (no store get)', async () => {
    const data = randomBytes(16 * B + 100); // 17 blocks, the last one short
    await store.put('seg/a', data);
    const c = open(2 * B, 1024 * KiB);
    expect((await read(c, 'seg/a', data.length)).equals(data)).toBe(true);
    expect(store.gets).toBe(1);
    await c.disk!.idle();
    expect(c.disk!.stats.writes).toBe(17);
    expect(c.size).toBe(2); // memory kept only the last two
    const again = await read(c, 'seg/a', data.length);
    expect(again.equals(data)).toBe(true);
    expect(store.gets).toBe(1);
    expect(c.stats.diskHits).toBe(15);
    expect(c.stats.hits).toBe(2);
    // A disk hit is promoted to memory (the last ones read stay): the next read of it is a memory hit.
    const hitsBefore = c.stats.hits;
    await c.readInto([{ object: 'seg/a', objectOffset: 14 * B, length: 100, at: 0 }], Buffer.alloc(100));
    expect(c.stats.hits).toBe(hitsBefore + 1);
    // The memory tier off (0): everything comes from disk.
    const d = open(0, 1024 * KiB);
    expect((await read(d, 'seg/a', data.length)).equals(data)).toBe(true);
    expect(store.gets).toBe(1);
    expect(d.stats.diskHits).toBe(17);
  });

  it('a damaged block file (flipped byte, truncated, another block, wrong block size) is a miss: refetched, replaced', async () => {
    const data = randomBytes(8 * B);
    await store.put('seg/b', data);
    const c = open(0, 1024 * KiB);
    await read(c, 'seg/b', data.length);
    await c.disk!.idle();
    const disk = c.disk!;
    // Block 1: one data byte flipped. Block 2: truncated. Block 3: holds block 4's file.
    const p1 = disk.pathOf('seg/b', 1);
    const f1 = await readFile(p1);
    f1[f1.length - 7]! ^= 0x10;
    await writeFile(p1, f1);
    const p2 = disk.pathOf('seg/b', 2);
    await writeFile(p2, (await readFile(p2)).subarray(0, 200));
    await writeFile(disk.pathOf('seg/b', 3), await readFile(disk.pathOf('seg/b', 4)));
    store.gets = 0;
    expect((await read(c, 'seg/b', data.length)).equals(data)).toBe(true);
    expect(disk.stats.corrupt).toBe(3);
    expect(store.gets).toBe(1); // blocks 1-3: one stretch missing on disk, one get
    await disk.idle();
    // Rewritten from the store: the next read is all from disk.
    store.gets = 0;
    expect((await read(c, 'seg/b', data.length)).equals(data)).toBe(true);
    expect(store.gets).toBe(0);
    expect(disk.stats.corrupt).toBe(3);
    // Another block size names other files: nothing is served across sizes.
    const other = new BlockCache(store, { blockBytes: 2 * B, bytesMax: 0, disk: { dir: join(dir, 'cache'), bytesMax: 1024 * KiB } });
    caches.push(other);
    expect((await read(other, 'seg/b', data.length)).equals(data)).toBe(true);
    expect(store.gets).toBe(1);
    expect(other.stats.diskHits).toBe(0);
  });

  it('the byte bound holds while filling, and is applied to what a restart finds', async () => {
    const objs = ['seg/c0', 'seg/c1', 'seg/c2', 'seg/c3'];
    const data = objs.map(() => randomBytes(16 * B));
    for (let i = 0; i < objs.length; i++) await store.put(objs[i]!, data[i]!);
    const bound = 20 * (B + 200);
    const c = open(0, bound);
    for (let i = 0; i < objs.length; i++) {
      await read(c, objs[i]!, 16 * B);
      expect(c.disk!.bytes).toBeLessThanOrEqual(bound);
    }
    await c.disk!.idle();
    await new Promise((r) => setTimeout(r, 20)); // evictions unlink in the background
    const files = await filesIn(join(dir, 'cache'));
    expect(files.reduce((s, f) => s + f.size, 0)).toBeLessThanOrEqual(bound);
    expect(c.disk!.bytes).toBe(files.reduce((s, f) => s + f.size, 0));
    expect(c.disk!.stats.evictions).toBe(64 - files.length);
    // LRU: the last object read is all on disk, the first is gone.
    store.gets = 0;
    await read(c, objs[3]!, 16 * B);
    expect(store.gets).toBe(0);
    await c.close();
    // A restart with a smaller bound trims the oldest files at once.
    const small = open(0, 5 * (B + 200));
    await small.disk!.ready;
    expect(small.disk!.stats.scanned).toBe(files.length);
    expect(small.disk!.bytes).toBeLessThanOrEqual(5 * (B + 200));
    expect(small.disk!.size).toBe(5);
  });

  it('concurrent reads of one block fetch it once, from the store and then from disk', async () => {
    const data = randomBytes(2 * B);
    await store.put('seg/d', data);
    const c = open(0, 1024 * KiB);
    const many = () => Promise.all(Array.from({ length: 8 }, (_, i) => (async () => {
      const out = Buffer.alloc(100);
      await c.readInto([{ object: 'seg/d', objectOffset: B + i * 10, length: 100, at: 0 }], out);
      return out.equals(data.subarray(B + i * 10, B + i * 10 + 100));
    })()));
    expect(await many()).toEqual(Array(8).fill(true));
    expect(store.gets).toBe(1);
    expect(c.stats.joined).toBe(7);
    await c.disk!.idle();
    expect(await many()).toEqual(Array(8).fill(true));
    expect(store.gets).toBe(1);
    expect(c.disk!.stats.hits).toBe(1);
  });

  it('a full write queue skips writes (reads go on); a crash\'s temp files are removed at start, other files left', async () => {
    const data = randomBytes(8 * B);
    await store.put('seg/e', data);
    const c = open(0, 1024 * KiB, { writeQueueBytesMax: 2 * B });
    expect((await read(c, 'seg/e', data.length)).equals(data)).toBe(true);
    await c.disk!.idle();
    expect(c.disk!.stats.writesSkipped).toBeGreaterThan(0);
    expect(c.disk!.stats.writes + c.disk!.stats.writesSkipped).toBe(8);
    await c.close();
    const sub = join(dir, 'cache', 'ab');
    await mkdir(sub, { recursive: true });
    await writeFile(join(sub, 'cd'.repeat(31) + '.123.4.tmp'), 'torn');
    await writeFile(join(dir, 'cache', 'README'), 'not a block');
    const d = open(0, 1024 * KiB);
    await d.disk!.ready;
    expect(d.disk!.stats.scanTempsDeleted).toBe(1);
    expect(await readdir(sub)).toEqual([]);
    expect(await readFile(join(dir, 'cache', 'README'), 'utf8')).toBe('not a block');
  });
});

describe('chunked driver with a disk cache', () => {
  it('survives a driver restart on the same directory: reads come from disk', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tessera-disk-cache-drv-'));
    const log = await LocalLog.open({ dir: join(dir, 'log') });
    const state = LmdbStateStore.open(join(dir, 'state'));
    const machine = StateMachine.open({ store: state, handlers: metaHandlers });
    const meta = await MetaService.start({ log, machine, nodeId: 'n1', clusterId: 'test', nodeLeaseMs: 0 });
    const store = new CountingStore();
    const opts = { meta, store, clusterId: 'test', nodeId: 'n1', cacheDir: join(dir, 'cache'), cacheDiskBytes: 8 * 1024 * KiB, readAheadBytes: 0, cacheWrites: false };
    try {
      const data = randomBytes(512 * KiB + 3);
      let driver = new ChunkedDriver(opts);
      let share = await driver.openShare('vms', {});
      let h = (await share.open('disk.img', { mode: 'openOrCreate', write: true })).handle as ChunkedHandle;
      await h.write(0, data);
      await h.flush();
      store.gets = 0;
      expect((await h.read(0, data.length)).equals(data)).toBe(true);
      const first = store.gets;
      expect(first).toBeGreaterThan(0);
      await h.close();
      await share.close();
      await driver.cache.close();
      expect(driver.cache.disk!.stats.writes).toBeGreaterThan(0);

      driver = new ChunkedDriver(opts);
      share = await driver.openShare('vms', {});
      h = (await share.open('disk.img', { mode: 'open', write: false })).handle as ChunkedHandle;
      store.gets = 0;
      expect((await h.read(0, data.length)).equals(data)).toBe(true);
      expect(store.gets).toBe(0);
      expect(driver.cache.stats.diskHits).toBe(Math.ceil(data.length / (64 * KiB)));
      await h.close();
      await share.close();
      await driver.cache.close();
    } finally {
      await meta.close();
      await log.close();
      await state.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
