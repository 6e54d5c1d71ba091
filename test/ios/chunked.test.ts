// The chunked driver: the IOS conformance suite over a real LocalLog + LmdbStateStore + MetaService
// and a MemoryObjectStore, then the driver's own behaviours (group commit, write ordering against the
// store and the map, failures, holes, flush, a large round trip, last-writer-wins in one segment).
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalLog } from '../../src/log/local.js';
import { metaHandlers } from '../../src/meta/families/index.js';
import { createExtentHandlers, extentsIn, gcCandidates } from '../../src/meta/families/extents.js';
import { clusterHandlers } from '../../src/meta/families/cluster.js';
import { createNamespaceHandlers } from '../../src/meta/families/namespace.js';
import { sysHandlers } from '../../src/meta/families/sys.js';
import { MetaService } from '../../src/meta/service.js';
import { StateMachine } from '../../src/meta/state-machine.js';
import { LmdbStateStore } from '../../src/meta/store.js';
import { MemoryObjectStore } from '../../src/objstore/memory.js';
import { LocalDirStore } from '../../src/objstore/local-dir.js';
import { ObjStoreError, type ByteRange, type ObjectInfo, type ObjectStore, type PutOptions } from '../../src/objstore/spi.js';
import { ChunkedDriver, type ChunkedHandle } from '../../src/ios/chunked/index.js';
import type { ChunkedShare } from '../../src/ios/chunked/share.js';
import { IOS_SPI_VERSION, type IosShare } from '../../src/ios/spi.js';
import { codeOf, runIosConformance, type IosFixture } from './conformance.js';

interface Node {
  dir: string;
  svc: MetaService;
  log: LocalLog;
  state: LmdbStateStore;
  close(): Promise<void>;
}

async function openNode(handlers = metaHandlers): Promise<Node> {
  const dir = await mkdtemp(join(tmpdir(), 'tessera-chunked-'));
  const log = await LocalLog.open({ dir: join(dir, 'log') });
  const state = LmdbStateStore.open(join(dir, 'state'));
  const machine = StateMachine.open({ store: state, handlers });
  const svc = await MetaService.start({ log, machine, nodeId: 'n1', clusterId: 'test', nodeLeaseMs: 0 });
  return {
    dir,
    svc,
    log,
    state,
    async close() {
      await svc.close();
      await log.close();
      await state.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

async function chunkedFixture(kind: 'memory' | 'local' = 'memory'): Promise<IosFixture> {
  const node = await openNode();
  const store: ObjectStore = kind === 'memory' ? new MemoryObjectStore() : await LocalDirStore.open(join(node.dir, 'objects'));
  const driver = new ChunkedDriver({ meta: node.svc, store, clusterId: 'test', nodeId: 'n1' });
  const fx: IosFixture = {
    share: await driver.openShare('vms', {}),
    async reopen(options = {}) {
      await fx.share.close();
      fx.share = await driver.openShare('vms', options);
      return fx.share;
    },
    async cleanup() {
      await fx.share.close();
      await store.close();
      await node.close();
    },
  };
  return fx;
}

runIosConformance('chunked (memory store, local log)', () => chunkedFixture('memory'));
runIosConformance('chunked (local directory store, local log)', () => chunkedFixture('local'));

/** A store wrapper that counts calls and can hold or fail puts. */
class ProbeStore implements ObjectStore {
  readonly kind = 'probe';
  puts: { key: string; bytes: number }[] = [];
  gets = 0;
  /** When set, every put waits for it before reaching the inner store. */
  gate: Promise<void> | undefined;
  failPuts = false;
  readonly events: string[] = [];
  constructor(readonly inner: ObjectStore) {}
  async get(key: string, range?: ByteRange): Promise<Buffer> {
    this.gets++;
    return this.inner.get(key, range);
  }
  async put(key: string, body: Uint8Array | readonly Uint8Array[], opts?: PutOptions): Promise<ObjectInfo> {
    const parts = Array.isArray(body) ? (body as readonly Uint8Array[]) : [body as Uint8Array];
    this.puts.push({ key, bytes: parts.reduce((n, p) => n + p.length, 0) });
    this.events.push(`put-start ${key}`);
    if (this.gate) await this.gate;
    if (this.failPuts) {
      this.events.push(`put-fail ${key}`);
      throw new ObjStoreError('unavailable', 'injected put failure');
    }
    const info = await this.inner.put(key, body, opts);
    this.events.push(`put-done ${key}`);
    return info;
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

describe('chunked driver specifics', () => {
  let node: Node;
  let probe: ProbeStore;
  let driver: ChunkedDriver;
  let share: IosShare;

  beforeEach(async () => {
    node = await openNode();
    probe = new ProbeStore(new MemoryObjectStore());
    // Some cases count the store's gets after writing: written blocks are not kept in the cache.
    driver = new ChunkedDriver({ meta: node.svc, store: probe, clusterId: 'test', nodeId: 'n1', cacheWrites: false });
    share = await driver.openShare('vms', {});
  });
  afterEach(async () => {
    await share.close();
    await node.close();
    await probe.close();
  });

  const fileOf = async (name: string) => (await share.open(name, { mode: 'openOrCreate', write: true })).handle as ChunkedHandle;
  const mapOf = (h: ChunkedHandle) => node.svc.read((tx) => extentsIn(tx, h.fork, 0, 2 ** 40));

  it('identifies itself; share roots are idempotent; a read-only share needs its root', async () => {
    expect(driver.name).toBe('chunked');
    expect(driver.spiVersion).toBe(IOS_SPI_VERSION);
    const again = await driver.openShare('VMS', {});
    expect((await again.stat('')).info.fileId).toBe((await share.stat('')).info.fileId);
    await again.close();
    expect(await codeOf(driver.openShare('other', { readOnly: true }))).toBe('ENOENT');
    expect(await codeOf(driver.openShare('bad/name', {}))).toBe('EINVAL');
  });

  it('group commit: 256 concurrent 4 KiB writes go out in far fewer segments, keys describe themselves', async () => {
    const h = await fileOf('gc');
    const pieces = Array.from({ length: 256 }, () => randomBytes(4096));
    await Promise.all(pieces.map((p, i) => h.write(i * 4096, p)));
    expect(probe.puts.length).toBeLessThanOrEqual(4);
    const epoch = node.svc.membership.epoch;
    for (const p of probe.puts) expect(p.key).toMatch(new RegExp(`^test/seg/n1/${epoch}/[0-9a-f]{16}$`));
    // Sequential pieces of one segment merge into few extents.
    expect(mapOf(h).length).toBeLessThanOrEqual(probe.puts.length);
    const all = await h.read(0, 256 * 4096);
    expect(all.equals(Buffer.concat(pieces))).toBe(true);
    await h.close();
  });

  it('a write is answered only after its segment put and its map command', async () => {
    const h = await fileOf('order');
    let open!: () => void;
    probe.gate = new Promise<void>((r) => (open = r));
    let answered = false;
    const w = h.write(0, Buffer.from('hello')).then((n) => {
      answered = true;
      return n;
    });
    await new Promise((r) => setTimeout(r, 30));
    expect(probe.puts.length).toBe(1); // sealed by time and sent
    expect(answered).toBe(false); // the put has not finished
    expect(mapOf(h)).toEqual([]); // and nothing points at it
    expect((await h.info()).size).toBe(0);
    // Once the put is through, the answer comes only with the map applied.
    const seenAtAnswer: number[] = [];
    const w2 = w.then(() => seenAtAnswer.push(mapOf(h).length));
    open();
    expect(await w).toBe(5);
    await w2;
    expect(seenAtAnswer).toEqual([1]);
    expect(probe.events).toEqual([`put-start ${probe.puts[0]!.key}`, `put-done ${probe.puts[0]!.key}`]);
    expect((await h.read(0, 10)).toString()).toBe('hello');
    await h.close();
  });

  it('a failed put fails its writes with EIO and maps nothing; later writes work', async () => {
    const h = await fileOf('fail');
    await h.write(0, Buffer.from('keep'));
    probe.failPuts = true;
    const results = await Promise.all([codeOf(h.write(0, Buffer.from('lost'))), codeOf(h.write(100, Buffer.from('lost too')))]);
    expect(results).toEqual(['EIO', 'EIO']);
    expect(mapOf(h).length).toBe(1);
    expect((await h.info()).size).toBe(4);
    expect((await h.read(0, 100)).toString()).toBe('keep');
    probe.failPuts = false;
    await h.write(4, Buffer.from('!'));
    expect((await h.read(0, 100)).toString()).toBe('keep!');
    await h.close();
  });

  it('reads of holes never call the store; reads into a caller buffer', async () => {
    const h = await fileOf('sparse');
    await h.truncate(1024 * 1024);
    await h.write(512 * 1024, Buffer.from('middle'));
    probe.gets = 0;
    const hole = await h.read(0, 64 * 1024);
    expect(hole.equals(Buffer.alloc(64 * 1024))).toBe(true);
    expect(probe.gets).toBe(0);
    const into = Buffer.alloc(16, 0xee);
    const got = await h.read(512 * 1024 - 5, 11, into);
    expect(got.buffer).toBe(into.buffer);
    expect(got.byteOffset).toBe(into.byteOffset);
    expect(got).toEqual(Buffer.concat([Buffer.alloc(5), Buffer.from('middle')]));
    expect(into.subarray(11)).toEqual(Buffer.alloc(5, 0xee)); // untouched beyond the read
    expect(probe.gets).toBe(1);
    expect(await codeOf(h.read(0, 32, Buffer.alloc(8)))).toBe('EINVAL');
    await h.close();
  });

  it('flush waits for writes issued before it; truncate orders after pending writes', async () => {
    const h = await fileOf('flush');
    let open!: () => void;
    probe.gate = new Promise<void>((r) => (open = r));
    const w = h.write(0, Buffer.alloc(1000, 1));
    let flushed = false;
    const f = h.flush().then(() => (flushed = true));
    await new Promise((r) => setTimeout(r, 20));
    expect(flushed).toBe(false);
    open();
    await f;
    expect(flushed).toBe(true);
    expect(mapOf(h).length).toBe(1);
    await w;
    // A truncate issued while writes are in flight lands after them.
    probe.gate = new Promise<void>((r) => (open = r));
    const w2 = h.write(2000, Buffer.alloc(1000, 2));
    const t = h.truncate(500);
    setTimeout(open, 10);
    await Promise.all([w2, t]);
    expect((await h.info()).size).toBe(500);
    expect((await h.read(0, 5000)).equals(Buffer.alloc(500, 1))).toBe(true);
    await h.close();
  });

  it('overlapping writes in one segment: the later one wins', async () => {
    const h = await fileOf('overlap');
    await Promise.all([
      h.write(0, Buffer.alloc(100, 0x61)),
      h.write(50, Buffer.alloc(100, 0x62)),
      h.write(25, Buffer.alloc(10, 0x63)),
    ]);
    expect(probe.puts.length).toBe(1);
    const expected = Buffer.concat([Buffer.alloc(25, 0x61), Buffer.alloc(10, 0x63), Buffer.alloc(15, 0x61), Buffer.alloc(100, 0x62)]);
    expect((await h.read(0, 200)).equals(expected)).toBe(true);
    await h.close();
  });

  it('writes of several files share a segment; each file gets its own map', async () => {
    const a = await fileOf('a');
    const b = await fileOf('b');
    await Promise.all([a.write(0, Buffer.from('AAAA')), b.write(0, Buffer.from('BB')), a.write(4, Buffer.from('aa'))]);
    expect(probe.puts.length).toBe(1);
    expect((await a.read(0, 10)).toString()).toBe('AAAAaa');
    expect((await b.read(0, 10)).toString()).toBe('BB');
    // A fully overwritten write leaves a referenced-then-unreferenced segment for the collector.
    await a.write(0, Buffer.from('zzzzzz'));
    await b.write(0, Buffer.from('zz'));
    const gc = node.svc.read((tx) => gcCandidates(tx, 10)).map((g) => g.object);
    expect(gc).toContain(probe.puts[0]!.key);
    await a.close();
    await b.close();
  });

  it('a 64 MiB sequential write and read round trip (sha256)', async () => {
    const h = await fileOf('big');
    const chunk = 1024 * 1024;
    const hashIn = createHash('sha256');
    const started = performance.now();
    const inflight: Promise<number>[] = [];
    for (let i = 0; i < 64; i++) {
      const data = randomBytes(chunk);
      hashIn.update(data);
      inflight.push(h.write(i * chunk, data));
      if (inflight.length >= 16) await inflight.shift();
    }
    await Promise.all(inflight);
    const wrote = performance.now() - started;
    expect((await h.info()).size).toBe(64 * chunk);
    const hashOut = createHash('sha256');
    const t1 = performance.now();
    for (let i = 0; i < 64; i += 8) hashOut.update(await h.read(i * chunk, 8 * chunk));
    const read = performance.now() - t1;
    expect(hashOut.digest('hex')).toBe(hashIn.digest('hex'));
    expect(probe.puts.length).toBeLessThanOrEqual(16);
    console.log(`chunked 64 MiB: write ${(64 / (wrote / 1000)).toFixed(0)} MB/s, read ${(64 / (read / 1000)).toFixed(0)} MB/s, ${probe.puts.length} segments`);
    await h.close();
  }, 30_000);

  it('named-stream writes and the unnamed stream do not mix; closing the share waits for writes', async () => {
    const base = await fileOf('s');
    const st = (await share.open('s', { mode: 'create', write: true, stream: 'alt' })).handle;
    const ws = [base.write(0, Buffer.from('unnamed')), st.write(0, Buffer.from('named'))];
    await share.close();
    await Promise.all(ws);
    share = await driver.openShare('vms', {});
    const r = (await share.open('s', { mode: 'open', write: false })).handle;
    expect((await r.read(0, 100)).toString()).toBe('unnamed');
    const rs = (await share.open('s', { mode: 'open', write: false, stream: 'ALT' })).handle;
    expect((await rs.read(0, 100)).toString()).toBe('named');
    await r.close();
    await rs.close();
  });

  it('a refused map command fails only its own fork\'s writes in a shared segment', async () => {
    const a = await fileOf('keep');
    const b = await fileOf('gone');
    await share.remove('gone');
    const [ra, rb] = await Promise.all([codeOf(a.write(0, Buffer.from('fine'))), codeOf(b.write(0, Buffer.from('orphan')))]);
    expect(probe.puts.length).toBe(1);
    expect([ra, rb]).toEqual(['OK', 'ENOENT']);
    expect((await a.read(0, 10)).toString()).toBe('fine');
    await a.close();
    await b.close();
  });

  it('ns.create/ns.setsd store descriptors as opaque bytes (bounded, non-empty)', async () => {
    const root = (await share.stat('')).info.fileId;
    const now = 133_000_000_000_000_000n;
    const bytes = Buffer.from('sd');
    const opaque = await node.svc.propose({ t: 'ns.create', parent: Number(root), name: 'x', kind: 'file', attributes: 0x20, now, sd: bytes });
    expect(opaque.ok).toBe(true);
    const ino = (opaque as { value: { ino: number } }).value.ino;
    expect(await node.svc.propose({ t: 'ns.setsd', ino, sd: Buffer.alloc(0) })).toMatchObject({ ok: false, code: 'invalid' });
    expect(await node.svc.propose({ t: 'ns.setsd', ino, sd: Buffer.alloc(64 * 1024 + 1) })).toMatchObject({ ok: false, code: 'limit' });
    expect(await node.svc.propose({ t: 'ns.setsd', ino, sd: Buffer.alloc(64 * 1024, 7) })).toMatchObject({ ok: true });
    const h = (await share.open('x', { mode: 'open', write: false })).handle;
    expect((await h.getSecurity())?.equals(Buffer.alloc(64 * 1024, 7))).toBe(true);
    await h.close();
  });

  it('backpressure: writes beyond the buffered bound wait, and all land', async () => {
    const small = new ChunkedDriver({ meta: node.svc, store: probe, clusterId: 'test', nodeId: 'n1', segmentBytes: 64 * 1024, bufferedBytesMax: 128 * 1024 });
    const s2 = (await small.openShare('bp', {})) as ChunkedShare;
    const h = (await s2.open('f', { mode: 'create', write: true })).handle;
    const pieces = Array.from({ length: 64 }, () => randomBytes(16 * 1024));
    const before = probe.puts.length;
    await Promise.all(pieces.map((p, i) => h.write(i * p.length, p)));
    expect(probe.puts.length - before).toBeGreaterThanOrEqual(8);
    expect((await h.read(0, 64 * 16 * 1024)).equals(Buffer.concat(pieces))).toBe(true);
    await h.close();
    await s2.close();
  });

  it('a write or truncate over more extents than one command may touch is split into bounded commands', async () => {
    const budget = 8;
    const small = await openNode([sysHandlers, clusterHandlers, createNamespaceHandlers({ extentsPerCommandMax: budget }), createExtentHandlers({ extentsPerCommandMax: budget })]);
    const store = new MemoryObjectStore();
    const d = new ChunkedDriver({ meta: small.svc, store, clusterId: 'test', nodeId: 'n1', extentsPerCommandMax: budget });
    const s2 = await d.openShare('frag', {});
    const h = (await s2.open('f', { mode: 'create', write: true })).handle as ChunkedHandle;
    // 30 one-byte extents from 30 segments (awaited one by one), a byte apart.
    for (let i = 0; i < 30; i++) await h.write(i * 2, Buffer.from([0x41 + (i % 26)]));
    expect(small.svc.read((tx) => extentsIn(tx, h.fork, 0, 100)).length).toBe(30);
    await h.write(0, Buffer.alloc(59, 0x7a));
    expect((await h.read(0, 100)).equals(Buffer.alloc(59, 0x7a))).toBe(true);
    for (let i = 0; i < 30; i++) await h.write(100 + i * 2, Buffer.from([0x61]));
    await h.truncate(50);
    expect((await h.info()).size).toBe(50);
    expect((await h.read(0, 100)).equals(Buffer.alloc(50, 0x7a))).toBe(true);
    await h.close();
    await s2.close();
    await store.close();
    await small.close();
  });
});
