import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { limits } from '../../src/base/limits.js';
import { RECORD_VERSION } from '../../src/meta/codec.js';
import { key } from '../../src/meta/keys.js';
import { LmdbStateStore, MemoryStateStore, type StateStore } from '../../src/meta/store.js';
import { MetaVersionError, SnapshotError, StateMachine, type ProposerRecord } from '../../src/meta/state-machine.js';
import { getNode } from '../../src/meta/families/cluster.js';
import { decodeRecord, ok } from '../../src/meta/tx.js';
import { allHandlers, batch, chunked, collect, entry, join, machine, makeStore, TempDirs, testHandlers, type StoreKind } from './sm-helpers.js';

const dirs = new TempDirs();
const open: StateStore[] = [];
function fresh(kind: StoreKind): StateMachine {
  const s = makeStore(kind, dirs);
  open.push(s);
  return machine(s);
}
afterEach(async () => {
  for (const s of open.splice(0)) await s.close();
});
afterAll(() => dirs.cleanup());

const kv = (sm: StateMachine, k: string) => sm.read((tx) => tx.get<{ v: unknown }>(key('kv', k))?.v);
const ctr = (sm: StateMachine, k: string) => sm.read((tx) => tx.get<{ n: number }>(key('ctr', k))?.n ?? 0);

describe.each<StoreKind>(['memory', 'lmdb'])('StateMachine on %s', (kind) => {
  it('applies commands in order and reports one result per entry', () => {
    const sm = fresh(kind);
    const out = sm.applyBatch(
      batch(1, join('a', 1, 1), entry('a', 1, 2, { t: 'kv.put', k: 'x', v: 1 }), entry('a', 1, 3, { t: 'kv.list' })),
    );
    expect(out.position).toBe(1);
    expect(out.results.map((r) => [r.node, r.inc, r.seq])).toEqual([
      ['a', 1, 1],
      ['a', 1, 2],
      ['a', 1, 3],
    ]);
    expect(out.results[0]!.result).toEqual(ok({ epoch: 1 }));
    expect(out.results[2]!.result).toEqual(ok([1])); // sees the write of the entry before it
    expect(sm.appliedPosition).toBe(1);
    expect(kv(sm, 'x')).toBe(1);
  });

  it('deduplicates by (node, incarnation, seq) within a batch, across batches and below the watermark', () => {
    const sm = fresh(kind);
    sm.applyBatch(batch(1, join('a', 1, 1)));
    const e = entry('a', 1, 5, { t: 'kv.inc', k: 'c' });
    const out = sm.applyBatch(batch(2, e, e));
    expect(out.results.map((r) => r.result)).toEqual([ok(1), 'duplicate']);
    expect(sm.applyBatch(batch(3, e)).results[0]!.result).toBe('duplicate');
    expect(ctr(sm, 'c')).toBe(1);
    // A later entry whose watermark says "everything below 7 is resolved": seq 6 is now refused too.
    sm.applyBatch(batch(4, entry('a', 1, 7, { t: 'kv.inc', k: 'c' }, 7)));
    expect(sm.applyBatch(batch(5, entry('a', 1, 6, { t: 'kv.inc', k: 'c' }, 1))).results[0]!.result).toBe('duplicate');
    expect(ctr(sm, 'c')).toBe(2);
    // The record stays small: the watermark runs over contiguous applied seqs.
    const rec = sm.read((tx) => tx.get<ProposerRecord>(key('proposer', 'a')))!;
    expect(rec).toEqual({ inc: 1, w: 8, done: [] });
  });

  it('counts refused commands as applied (a re-send gets "duplicate", not a second attempt)', () => {
    const sm = fresh(kind);
    sm.applyBatch(batch(1, join('a', 1, 1)));
    const e = entry('a', 1, 2, { t: 'kv.del', k: 'missing' });
    expect(sm.applyBatch(batch(2, e)).results[0]!.result).toMatchObject({ ok: false, code: 'not-found' });
    expect(sm.applyBatch(batch(3, e)).results[0]!.result).toBe('duplicate');
  });

  it('fences entries of a node that has not joined, and of superseded incarnations', () => {
    const sm = fresh(kind);
    expect(sm.applyBatch(batch(1, entry('a', 1, 1, { t: 'kv.inc', k: 'c' }))).results[0]!.result).toBe('stale');
    sm.applyBatch(batch(2, join('a', 1, 2), entry('a', 1, 3, { t: 'kv.inc', k: 'c' })));
    expect(ctr(sm, 'c')).toBe(1);
    // A restarted process joins with incarnation 2: leftovers of incarnation 1 are never applied.
    const out = sm.applyBatch(
      batch(3, join('a', 2, 1), entry('a', 1, 4, { t: 'kv.inc', k: 'c' }), entry('a', 2, 2, { t: 'kv.inc', k: 'c' })),
    );
    expect(out.results.map((r) => r.result)).toEqual([ok({ epoch: 2 }), 'stale', ok(2)]);
    expect(ctr(sm, 'c')).toBe(2);
    // A late copy of the old incarnation's join is stale too, and the node record is untouched.
    expect(sm.applyBatch(batch(4, join('a', 1, 2))).results[0]!.result).toBe('stale');
    expect(sm.read((tx) => getNode(tx, 'a'))).toMatchObject({ incarnation: 2, epoch: 2 });
    // A fresh seq of the current incarnation re-joining is refused by the handler.
    expect(sm.applyBatch(batch(5, join('a', 2, 3))).results[0]!.result).toMatchObject({ ok: false, code: 'stale' });
  });

  it('cluster.init is not fenced (it bootstraps before any node has joined)', () => {
    const sm = fresh(kind);
    const out = sm.applyBatch(batch(1, entry('a', 1, 1, { t: 'cluster.init', clusterId: 'c1', recordVersion: RECORD_VERSION }, 1), join('a', 1, 2)));
    expect(out.results.map((r) => r.result)).toEqual([ok({ created: true }), ok({ epoch: 1 })]);
  });

  it('rolls back the writes of a refused command and of a throwing one', () => {
    const sm = fresh(kind);
    sm.applyBatch(batch(1, join('a', 1, 1)));
    const before = sm.hash();
    const out = sm.applyBatch(
      batch(
        2,
        entry('a', 1, 2, { t: 'kv.putThenFail', k: 'x' }),
        entry('a', 1, 3, { t: 'kv.list' }),
        entry('a', 1, 4, { t: 'kv.putThenThrow', k: 'y' }),
        entry('a', 1, 5, { t: 'kv.list' }),
      ),
    );
    expect(out.results.map((r) => r.result)).toEqual([
      { ok: false, code: 'exists', message: 'refused after writing' },
      ok([]),
      { ok: false, code: 'internal', message: 'kv.putThenThrow: boom' },
      ok([]),
    ]);
    expect(kv(sm, 'x')).toBeUndefined();
    expect(kv(sm, 'y')).toBeUndefined();
    expect(out.changed).toEqual([]);
    expect(sm.hash()).not.toBe(before); // position and dedup records moved on
  });

  it('gives limit for records beyond limits.ts, invalid for unknown commands and undecodable entries', () => {
    const sm = fresh(kind);
    sm.applyBatch(batch(1, join('a', 1, 1)));
    const out = sm.applyBatch(batch(2, entry('a', 1, 2, { t: 'kv.huge' }), entry('a', 1, 3, { t: 'no.such' }), Buffer.from([0xc1, 1, 2])));
    expect(out.results[0]!.result).toMatchObject({ ok: false, code: 'limit' });
    expect(out.results[1]!.result).toMatchObject({ ok: false, code: 'invalid' });
    expect(out.results[2]).toMatchObject({ node: '', inc: 0, seq: 0, result: { ok: false, code: 'invalid' } });
    expect(kv(sm, 'huge')).toBeUndefined();
  });

  it('an entry of another record version is fatal: nothing of its batch is applied, later batches refused', () => {
    const sm = fresh(kind);
    sm.applyBatch(batch(1, join('a', 1, 1)));
    const h = sm.hash();
    const bad = batch(2, entry('a', 1, 2, { t: 'kv.put', k: 'x', v: 1 }), entry('a', 1, 3, { t: 'kv.put', k: 'y', v: 1 }, 0, RECORD_VERSION + 1));
    expect(() => sm.applyBatch(bad)).toThrow(MetaVersionError);
    expect(sm.appliedPosition).toBe(1);
    expect(sm.hash()).toBe(h);
    expect(() => sm.applyBatch(batch(3, entry('a', 1, 4, { t: 'kv.put', k: 'z', v: 1 })))).toThrow(MetaVersionError);
    expect(sm.appliedPosition).toBe(1);
  });

  it('ignores batches at or below the applied position; positions may skip numbers', () => {
    const sm = fresh(kind);
    sm.applyBatch(batch(5, join('a', 1, 1)));
    const h = sm.hash();
    expect(sm.applyBatch(batch(5, entry('a', 1, 2, { t: 'kv.inc', k: 'c' })))).toEqual({ position: 5, results: [], changed: [], values: [], proposers: new Map() });
    expect(sm.applyBatch(batch(3, entry('a', 1, 3, { t: 'kv.inc', k: 'c' }))).results).toEqual([]);
    expect(sm.hash()).toBe(h);
    sm.applyBatch(batch(9, entry('a', 1, 4, { t: 'kv.inc', k: 'c' })));
    expect(sm.appliedPosition).toBe(9);
    expect(ctr(sm, 'c')).toBe(1);
    expect(() => sm.applyBatch(batch(0.5, entry('a', 1, 5, { t: 'kv.inc', k: 'c' })))).toThrow();
  });

  it('reports changed keys: deduplicated, sorted, deletes included, refused commands excluded', () => {
    const sm = fresh(kind);
    sm.applyBatch(batch(1, join('a', 1, 1)));
    const out = sm.applyBatch(
      batch(
        2,
        entry('a', 1, 2, { t: 'kv.put', k: 'b', v: 1 }),
        entry('a', 1, 3, { t: 'kv.put', k: 'a', v: 1 }),
        entry('a', 1, 4, { t: 'kv.put', k: 'b', v: 2 }),
        entry('a', 1, 5, { t: 'kv.putThenFail', k: 'zz' }),
        entry('a', 1, 6, { t: 'kv.del', k: 'a' }),
      ),
    );
    expect(out.changed).toEqual([key('kv', 'a'), key('kv', 'b')]);
    // Each key's record as the batch left it: 'a' deleted, 'b' its last write.
    expect(out.values[0]).toBeNull();
    expect(decodeRecord<unknown>(out.values[1]!)).toEqual({ v: 2 });
    expect(kv(sm, 'a')).toBeUndefined();
    expect(kv(sm, 'b')).toBe(2);
  });

  it('bounds the per-proposer dedup window (limit, without applying)', () => {
    const sm = fresh(kind);
    const saved = limits.metaProposerWindowMax;
    (limits as { metaProposerWindowMax: number }).metaProposerWindowMax = 3;
    try {
      sm.applyBatch(batch(1, join('a', 1, 1, 1000), entry('a', 1, 3, { t: 'kv.inc', k: 'c' }), entry('a', 1, 5, { t: 'kv.inc', k: 'c' })));
      // done = [1, 3, 5] with watermark 0: full. Seq 7 is refused without running.
      const out = sm.applyBatch(batch(2, entry('a', 1, 7, { t: 'kv.inc', k: 'c' })));
      expect(out.results[0]!.result).toMatchObject({ ok: false, code: 'limit' });
      expect(ctr(sm, 'c')).toBe(2);
      // A watermark that resolves the old seqs frees the window.
      expect(sm.applyBatch(batch(3, entry('a', 1, 8, { t: 'kv.inc', k: 'c' }, 6))).results[0]!.result).toEqual(ok(3));
    } finally {
      (limits as { metaProposerWindowMax: number }).metaProposerWindowMax = saved;
    }
  });

  it('read() gives a read-only view; stats() counts records', () => {
    const sm = fresh(kind);
    sm.applyBatch(batch(1, join('a', 1, 1), entry('a', 1, 2, { t: 'kv.put', k: 'x', v: 1 })));
    expect(sm.stats()).toEqual({ records: 3, position: 1 }); // node, proposer, kv
    expect(sm.read((tx) => [...tx.range(key('kv'))].length)).toBe(1);
    expect(() => sm.read((tx) => (tx as unknown as { put(k: Buffer, v: object): void }).put(key('kv', 'y'), {}))).toThrow();
  });

  it('snapshot -> restore into a fresh store (of either kind) gives an equal hash', async () => {
    const sm = fresh(kind);
    sm.applyBatch(batch(1, join('a', 1, 1), join('b', 1, 1)));
    // Enough state for several chunks.
    const pad = 'p'.repeat(200);
    for (let b = 0; b < 30; b++) {
      const es = [];
      for (let j = 0; j < 100; j++) es.push(entry('a', 1, 2 + b * 100 + j, { t: 'kv.put', k: `k${b}-${j}`, v: pad }, 2 + b * 100 + j));
      sm.applyBatch(batch(2 + b, ...es));
    }
    const snap = sm.snapshot();
    expect(snap.position).toBe(31);
    // Applying more after taking the snapshot does not change what it streams.
    sm.applyBatch(batch(40, entry('b', 1, 2, { t: 'kv.put', k: 'late', v: 1 })));
    const bytes = await collect(snap.data);
    expect(bytes.length).toBeGreaterThan(limits.metaSnapshotChunkBytes);
    for (const target of ['memory', 'lmdb'] as StoreKind[]) {
      const other = fresh(target);
      expect(await other.restore(chunked(bytes, [1, 7, 4096, 33, 100_000]))).toBe(31);
      expect(other.appliedPosition).toBe(31);
      expect(kv(other, 'late')).toBeUndefined();
      // Applying the same later batch on both gives the same state.
      other.applyBatch(batch(40, entry('b', 1, 2, { t: 'kv.put', k: 'late', v: 1 })));
      expect(other.hash()).toBe(sm.hash());
    }
  });

  it('rejects a corrupt snapshot and keeps the existing state', async () => {
    const sm = fresh(kind);
    sm.applyBatch(batch(1, join('a', 1, 1), entry('a', 1, 2, { t: 'kv.put', k: 'x', v: 'hello' })));
    const good = await collect(sm.snapshot().data);
    const target = fresh(kind);
    target.applyBatch(batch(7, join('z', 1, 1)));
    const h = target.hash();
    const flip = Buffer.from(good);
    flip[good.length - 50] ^= 0x01; // inside a record value
    const wrongVersion = Buffer.from(good);
    wrongVersion.writeUInt32BE(RECORD_VERSION + 1, 12);
    const cases: [string, Buffer, unknown][] = [
      ['flipped byte', flip, SnapshotError],
      ['truncated', good.subarray(0, good.length - 10), SnapshotError],
      ['no trailer', good.subarray(0, good.length - 36), SnapshotError],
      ['bytes after trailer', Buffer.concat([good, Buffer.from([0])]), SnapshotError],
      ['bad magic', Buffer.concat([Buffer.from('XXXXXXXX'), good.subarray(8)]), SnapshotError],
      ['other record version', wrongVersion, MetaVersionError],
      ['empty', Buffer.alloc(0), SnapshotError],
    ];
    for (const [, bytes, type] of cases) {
      await expect(target.restore(chunked(bytes, [5, 64]))).rejects.toBeInstanceOf(type);
      expect(target.hash()).toBe(h);
      expect(target.appliedPosition).toBe(7);
    }
    // Still usable afterwards, and a good snapshot restores.
    expect(await target.restore(chunked(good, [10]))).toBe(1);
    expect(target.hash()).toBe(sm.hash());
  });

  it('flushed() resolves', async () => {
    const sm = fresh(kind);
    sm.applyBatch(batch(1, join('a', 1, 1)));
    await sm.flushed();
  });
});

describe('StateMachine across stores', () => {
  it('throws on a command name defined twice', () => {
    expect(() => StateMachine.open({ store: new MemoryStateStore(), handlers: [...allHandlers, { 'kv.put': testHandlers['kv.put']! }] })).toThrow(
      /defined twice/,
    );
  });

  it('the same batches on a memory store and an LMDB store give equal hashes', () => {
    const a = fresh('memory');
    const b = fresh('lmdb');
    const batches = [
      batch(1, entry('a', 1, 1, { t: 'cluster.init', clusterId: 'c', recordVersion: RECORD_VERSION }, 1), join('a', 1, 2)),
      batch(2, join('b', 1, 1), entry('a', 1, 3, { t: 'kv.put', k: 'x', v: [1, 2, 3] }, 3)),
      batch(4, entry('b', 1, 2, { t: 'kv.putThenThrow', k: 'q' }), entry('a', 1, 4, { t: 'share.put', name: 'vms', config: { path: '/x' } })),
      batch(6, entry('a', 1, 3, { t: 'kv.put', k: 'dup', v: 1 }), entry('b', 1, 3, { t: 'kv.del', k: 'x' })),
    ];
    for (const bt of batches) expect(a.applyBatch(bt)).toEqual(b.applyBatch(bt));
    expect(a.hash()).toBe(b.hash());
    expect(a.stats()).toEqual(b.stats());
  });

  it('LMDB state and position survive reopening', async () => {
    const dir = dirs.make();
    let store = LmdbStateStore.open(dir);
    let sm = machine(store);
    sm.applyBatch(batch(3, join('a', 1, 1), entry('a', 1, 2, { t: 'kv.put', k: 'x', v: 1 })));
    const h = sm.hash();
    await store.close();
    store = LmdbStateStore.open(dir);
    open.push(store);
    sm = machine(store);
    expect(sm.appliedPosition).toBe(3);
    expect(sm.hash()).toBe(h);
    // Restore swaps databases; the swap survives reopening too.
    const snap = await collect(sm.snapshot().data);
    sm.applyBatch(batch(4, entry('a', 1, 3, { t: 'kv.put', k: 'y', v: 1 })));
    expect(await sm.restore(chunked(snap, [1000]))).toBe(3);
    await store.close();
    store = LmdbStateStore.open(dir);
    open.push(store);
    sm = machine(store);
    expect(sm.appliedPosition).toBe(3);
    expect(sm.hash()).toBe(h);
  });

  it('a SIGKILLed applier loses no committed batch and never leaves a torn one', async () => {
    const dir = dirs.make();
    const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('./lmdb-kill-child.ts', import.meta.url)), dir], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let last = 0;
    let buf = '';
    const guard = setTimeout(() => child.kill('SIGKILL'), 15_000);
    await new Promise<void>((resolve, reject) => {
      child.on('error', reject);
      child.on('exit', (code, signal) => (signal === 'SIGKILL' ? resolve() : reject(new Error(`child exited ${code}`))));
      child.stdout!.on('data', (d: Buffer) => {
        buf += d.toString();
        const lines = buf.split('\n');
        buf = lines.pop()!;
        for (const l of lines) last = Number(l);
        if (last >= 300 && child.exitCode === null && !child.killed) child.kill('SIGKILL');
      });
    }).finally(() => clearTimeout(guard));
    expect(last).toBeGreaterThanOrEqual(300);
    const store = LmdbStateStore.open(dir);
    open.push(store);
    const sm = machine(store);
    expect(sm.appliedPosition).toBeGreaterThanOrEqual(last);
    const pos = sm.appliedPosition;
    expect(kv(sm, 'pos')).toBe(pos);
    // Every batch through the applied position is complete: 16 keys each, plus 'pos'.
    expect(sm.read((tx) => [...tx.range(key('kv'))].length)).toBe(16 * (pos - 1) + 1);
    // And it continues where it stopped.
    sm.applyBatch(batch(pos + 1, entry('a', 1, 10_000_000, { t: 'kv.put', k: 'after', v: 1 }, 10_000_000)));
    expect(kv(sm, 'after')).toBe(1);
  });

  it('apply throughput on LMDB (batches of 1 / 64 / 1024 small commands)', () => {
    const sm = fresh('lmdb');
    sm.applyBatch(batch(1, join('a', 1, 1)));
    let pos = 1;
    let seq = 1;
    const figures: Record<number, number> = {};
    for (const size of [1, 64, 1024]) {
      const total = size === 1 ? 1000 : 20_000;
      const batches = [];
      for (let b = 0; b < total / size; b++) {
        const es = [];
        for (let j = 0; j < size; j++) {
          seq++;
          es.push(entry('a', 1, seq, { t: 'kv.put', k: `k${seq % 5000}`, v: seq }, seq));
        }
        batches.push(batch(++pos, ...es));
      }
      const t0 = performance.now();
      for (const bt of batches) sm.applyBatch(bt);
      const ms = performance.now() - t0;
      figures[size] = Math.round((total / ms) * 1000);
    }
    console.log(`meta apply on LMDB, commands/s: batch 1: ${figures[1]}, batch 64: ${figures[64]}, batch 1024: ${figures[1024]}`);
    // Generous floor (the target on the lab machines is >= 50,000/s at 64; see the report).
    expect(figures[64]!).toBeGreaterThan(10_000);
  });
});
