// fsck of chunked shares (src/ios/chunked/fsck.ts, src/cli/fsck.ts): clean after normal use; finds a
// dangling extent, a reference count mismatch and an unreferenced segment; the CLI's exit codes.
import { afterEach, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalLog } from '../../src/log/local.js';
import { metaHandlers } from '../../src/meta/families/index.js';
import { objKey } from '../../src/meta/families/ns-records.js';
import { MetaService } from '../../src/meta/service.js';
import { StateMachine } from '../../src/meta/state-machine.js';
import { LmdbStateStore } from '../../src/meta/store.js';
import { encodeRecord } from '../../src/meta/tx.js';
import { MemoryObjectStore } from '../../src/objstore/memory.js';
import { LocalDirStore } from '../../src/objstore/local-dir.js';
import type { ObjectStore } from '../../src/objstore/spi.js';
import { ChunkedDriver } from '../../src/ios/chunked/index.js';
import { parseSegmentKey, runFsck, formatFsckReport } from '../../src/ios/chunked/fsck.js';
import type { IosShare } from '../../src/ios/spi.js';
import { parseFsckArgs, runFsckCli } from '../../src/cli/fsck.js';

interface Env {
  dir: string;
  svc: MetaService;
  state: LmdbStateStore;
  store: ObjectStore;
  share: IosShare;
  close(keep?: boolean): Promise<void>;
}

const envs: Env[] = [];
afterEach(async () => {
  for (const e of envs.splice(0)) await e.close();
});

/** A node laid out as `serve` does: DIR/meta/{log,state}, DIR/objects. */
async function openEnv(kind: 'memory' | 'local' = 'memory'): Promise<Env> {
  const dir = await mkdtemp(join(tmpdir(), 'tessera-fsck-'));
  const log = await LocalLog.open({ dir: join(dir, 'meta', 'log') });
  const state = LmdbStateStore.open(join(dir, 'meta', 'state'));
  const svc = await MetaService.start({ log, machine: StateMachine.open({ store: state, handlers: metaHandlers }), nodeId: 'n1', clusterId: 'test', nodeLeaseMs: 0 });
  const store: ObjectStore = kind === 'memory' ? new MemoryObjectStore() : await LocalDirStore.open(join(dir, 'objects'));
  const driver = new ChunkedDriver({ meta: svc, store, clusterId: 'test', nodeId: 'n1', segmentBytes: 64 * 1024 });
  const share = await driver.openShare('vms', {});
  let closed = false;
  const env: Env = {
    dir,
    svc,
    state,
    store,
    share,
    async close(keep = false) {
      if (!closed) {
        closed = true;
        await share.close();
        await svc.close();
        await log.close();
        await state.close();
        await store.close();
      }
      if (!keep) await rm(dir, { recursive: true, force: true });
    },
  };
  envs.push(env);
  return env;
}

async function writeFiles(share: IosShare): Promise<void> {
  for (let f = 0; f < 3; f++) {
    const { handle } = await share.open(`f${f}.bin`, { mode: 'create', write: true });
    await Promise.all([0, 1, 2, 3].map((i) => handle.write(i * 40_000, randomBytes(30_000))));
    await handle.write(10_000, randomBytes(50_000)); // overwrites parts of the first two
    await handle.close();
  }
  const { handle } = await share.open('gone.bin', { mode: 'create', write: true });
  await handle.write(0, randomBytes(100_000));
  await handle.close();
  await share.remove('gone.bin');
}

describe('fsck', () => {
  it('parses self-describing segment keys', () => {
    expect(parseSegmentKey('test', 'test/seg/n1/3/000000000000001f')).toEqual({ nodeId: 'n1', epoch: 3, seq: 31n });
    expect(parseSegmentKey('test', 'test/seg/n1/3/1f')).toBeUndefined();
    expect(parseSegmentKey('test', 'other/seg/n1/3/000000000000001f')).toBeUndefined();
  });

  it('is clean after normal writes, overwrites and an unlink', async () => {
    const env = await openEnv();
    await writeFiles(env.share);
    const r = await runFsck({ meta: env.svc, store: env.store, clusterId: 'test' });
    expect(r.problems).toEqual([]);
    expect(r.clean).toBe(true);
    expect(r.extents).toBeGreaterThan(3);
    expect(r.referenced.objects).toBeGreaterThan(0);
    // The unlinked file's segment is awaiting the collector, not garbage.
    expect(r.pendingGc.objects).toBeGreaterThan(0);
    expect(r.garbage.objects).toBe(0);
    expect(r.store.objects).toBe(r.referenced.objects + r.pendingGc.objects);
    const headAll = await runFsck({ meta: env.svc, store: env.store, clusterId: 'test', headAll: true });
    expect(headAll.clean).toBe(true);
    expect(formatFsckReport(r)).toContain('clean: no problems');
  });

  it('finds a dangling extent (an object deleted behind the map)', async () => {
    const env = await openEnv();
    await writeFiles(env.share);
    const victim = env.svc.read((tx) => {
      for (const [, e] of tx.range<{ object: string }>(Buffer.from([0x02, ...Buffer.from('ext'), 0]))) return e.object;
      return undefined;
    })!;
    await env.store.deleteMany([victim]);
    const r = await runFsck({ meta: env.svc, store: env.store, clusterId: 'test' });
    expect(r.clean).toBe(false);
    expect(r.problems.filter((p) => p.kind === 'dangling-extent').map((p) => p.object)).toEqual([victim]);
  });

  it('finds an extent beyond its object and a reference count mismatch', async () => {
    const env = await openEnv();
    await writeFiles(env.share);
    const objs = env.svc.read((tx) => {
      const out: string[] = [];
      for (const [, e] of tx.range<{ object: string }>(Buffer.from([0x02, ...Buffer.from('ext'), 0]))) out.push(e.object);
      return [...new Set(out)];
    });
    // Corrupt the state directly (what a bug would do): a wrong count.
    env.state.write((w) => w.putRaw(objKey(objs[0]!), encodeRecord({ refs: 99 })));
    // And an object shorter than its extents.
    const short = objs[1]!;
    await env.store.put(short, Buffer.alloc(10));
    const r = await runFsck({ meta: env.svc, store: env.store, clusterId: 'test' });
    expect(r.problems.some((p) => p.kind === 'refcount-mismatch' && p.object === objs[0])).toBe(true);
    expect(r.problems.some((p) => p.kind === 'extent-beyond-object' && p.object === short)).toBe(true);
    expect(r.problemCount).toBe(2);
  });

  it('lists an unreferenced segment as garbage (superseded writer or not), not as a problem', async () => {
    const env = await openEnv();
    await writeFiles(env.share);
    const { epoch } = env.svc.membership;
    await env.store.put(`test/seg/n1/${epoch}/ffffffffffffff00`, randomBytes(1234)); // current writer: maybe in flight
    await env.store.put(`test/seg/n1/0/0000000000000001`, randomBytes(100)); // superseded writer
    await env.store.put(`test/seg/junk`, randomBytes(7));
    const r = await runFsck({ meta: env.svc, store: env.store, clusterId: 'test' });
    expect(r.clean).toBe(true);
    expect(r.garbage.objects).toBe(3);
    expect(r.garbage.bytes).toBe(1234 + 100 + 7);
    expect(r.garbage.superseded).toEqual({ objects: 1, bytes: 100 });
    expect(r.garbage.foreign).toBe(1);
    expect(r.garbage.keys).toContain(`test/seg/n1/${epoch}/ffffffffffffff00`);
  });
});

describe('tessera fsck (CLI)', () => {
  it('parses the serve URL forms and defaults', () => {
    const a = parseFsckArgs(['--store', 's3://bucket-1/pre', '--s3-endpoint', 'http://127.0.0.1:7480', '--meta', 'etcd://127.0.0.1:2379', '--cluster-id', 'c1', '--json'], '/x');
    expect(a.store).toEqual({ kind: 's3', bucket: 'bucket-1', prefix: 'pre/' });
    expect(a.meta.kind).toBe('etcd');
    expect(a.clusterId).toBe('c1');
    expect(a.json).toBe(true);
    const d = parseFsckArgs([], '/srv');
    expect(d.store).toEqual({ kind: 'file', dir: '/srv/data/objects' });
    expect(d.meta).toEqual({ kind: 'local', dir: '/srv/data/meta' });
    expect(() => parseFsckArgs(['--bogus'])).toThrow(/unknown option/);
    expect(() => parseFsckArgs(['--store', 'ftp://x'])).toThrow();
  });

  it('exits 0 on a clean local store, 1 once an object is missing; --json', async () => {
    const env = await openEnv('local');
    await writeFiles(env.share);
    const victim = env.svc.read((tx) => {
      for (const [, e] of tx.range<{ object: string }>(Buffer.from([0x02, ...Buffer.from('ext'), 0]))) return e.object;
      return undefined;
    })!;
    await env.close(true); // the server stopped; its directories stay
    const args = parseFsckArgs(['--state-dir', env.dir, '--cluster-id', 'test']);
    let text = '';
    expect(await runFsckCli(args, (s) => (text += s))).toBe(0);
    expect(text).toContain('clean: no problems');
    const store = await LocalDirStore.open(join(env.dir, 'objects'));
    await store.deleteMany([victim]);
    await store.close();
    let json = '';
    expect(await runFsckCli({ ...args, json: true }, (s) => (json += s))).toBe(1);
    const rep = JSON.parse(json) as { clean: boolean; problems: { kind: string; object: string }[] };
    expect(rep.clean).toBe(false);
    expect(rep.problems[0]).toMatchObject({ kind: 'dangling-extent', object: victim });
    await expect(runFsckCli(parseFsckArgs(['--state-dir', join(env.dir, 'nothing')]), () => {})).rejects.toThrow(/no metadata state/);
  });

  it('reads the state read-only while the server holds it', async () => {
    const env = await openEnv('local');
    await writeFiles(env.share);
    const args = parseFsckArgs(['--state-dir', env.dir, '--cluster-id', 'test']);
    let text = '';
    expect(await runFsckCli(args, (s) => (text += s))).toBe(0);
    // The server still works after fsck closed its read-only view.
    const { handle } = await env.share.open('after.bin', { mode: 'create', write: true });
    await handle.write(0, Buffer.from('still writable'));
    expect((await handle.read(0, 14)).toString()).toBe('still writable');
  });
});
