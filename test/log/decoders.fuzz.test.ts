// Fuzzing of the bytes the metadata layer reads back from disk, etcd or a snapshot: random bytes,
// truncations and single-byte mutations of valid encodings. Only the documented error escapes
// (LogError 'corrupt' for log batches, SnapshotError for snapshots, MalformedEntryError or
// MetaVersionError for entries), a valid result round-trips, and a rejected snapshot leaves the
// existing state untouched.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { open as openLmdb } from 'lmdb';
import { describe, expect, it } from 'vitest';
import { decodeBatch, encodeBatch } from '../../src/log/etcd.js';
import { decodeBatchRecord, LocalLog, LOCAL_LOG_DBS } from '../../src/log/local.js';
import { LogError } from '../../src/log/spi.js';
import { metaHandlers } from '../../src/meta/families/index.js';
import { encodeEntry, MetaVersionError } from '../../src/meta/entry.js';
import { SnapshotError, StateMachine } from '../../src/meta/state-machine.js';
import { MemoryStateStore } from '../../src/meta/store.js';

const entriesArb = fc.array(fc.uint8Array({ minLength: 0, maxLength: 64 }), { minLength: 1, maxLength: 8 });

function onlyCorrupt(fn: () => unknown): unknown {
  try {
    return fn();
  } catch (err) {
    if (err instanceof LogError && err.code === 'corrupt') return undefined;
    throw err;
  }
}

const same = (a: readonly Uint8Array[], b: readonly Uint8Array[]) =>
  a.length === b.length && a.every((x, i) => Buffer.from(x).equals(Buffer.from(b[i]!)));

describe('etcd batch decoder', () => {
  it('round-trips and rejects random bytes with "corrupt" only', () => {
    fc.assert(
      fc.property(entriesArb, (entries) => {
        expect(same(decodeBatch(encodeBatch(entries), 7), entries)).toBe(true);
      }),
    );
    fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => void onlyCorrupt(() => decodeBatch(bytes, 1))));
  });

  it('truncated or mutated batches: "corrupt" or a decoding of the same length as the bytes allow', () => {
    fc.assert(
      fc.property(entriesArb, fc.nat(), fc.nat(255), fc.boolean(), (entries, at, byte, truncate) => {
        const enc = Buffer.from(encodeBatch(entries));
        const bad = truncate ? enc.subarray(0, at % enc.length) : (enc[at % enc.length] = byte, enc);
        const out = onlyCorrupt(() => decodeBatch(bad, 1)) as Uint8Array[] | undefined;
        if (out) for (const e of out) expect(e.byteLength).toBeLessThanOrEqual(bad.length);
      }),
    );
  });
});

describe('local log batch records', () => {
  it('random bytes and mutations of stored records give "corrupt", never another error', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tessera-fuzz-local-'));
    try {
      const log = await LocalLog.open({ dir });
      for (let i = 0; i < 5; i++) await log.append([Buffer.from(`entry-${i}`), Buffer.alloc(i * 10, i)]);
      await log.close();
      const env = openLmdb({ path: dir, maxDbs: 8 });
      const db = env.openDB<Buffer, number>({ name: LOCAL_LOG_DBS.batches, encoding: 'binary' });
      const stored: [number, Buffer][] = [];
      for (const { key, value } of db.getRange({})) stored.push([key as number, Buffer.from(value)]);
      await env.close();
      expect(stored.length).toBe(5);
      for (const [pos, rec] of stored) expect(decodeBatchRecord(pos, rec).length).toBe(2);
      fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), fc.nat(100), (bytes, pos) => void onlyCorrupt(() => decodeBatchRecord(pos + 1, bytes))));
      fc.assert(
        fc.property(fc.nat(stored.length - 1), fc.nat(), fc.integer({ min: 1, max: 255 }), (which, at, flip) => {
          const [pos, rec] = stored[which]!;
          const bad = Buffer.from(rec);
          bad[at % bad.length]! ^= flip;
          // The record carries a CRC: every single-byte change is caught.
          expect(onlyCorrupt(() => decodeBatchRecord(pos, bad))).toBeUndefined();
        }),
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('state snapshots', () => {
  it('a mutated or truncated snapshot is refused and the state kept', async () => {
    const src = StateMachine.open({ store: new MemoryStateStore(), handlers: metaHandlers });
    const entry = (s: number, c: { t: string; [k: string]: unknown }) => encodeEntry({ v: 1, n: 'n1', i: 1, s, w: s, c });
    src.applyBatch({ position: 1, entries: [entry(1, { t: 'cluster.init', clusterId: 'f', recordVersion: 1 })] });
    src.applyBatch({ position: 2, entries: [entry(2, { t: 'node.join', node: 'n1', inc: 1, address: '', now: 1, leaseMs: 1000 })] });
    src.applyBatch({
      position: 3,
      entries: [3, 4, 5].map((s) => entry(s, { t: 'share.put', name: `share${s}`, config: { path: `/srv/${s}` } })),
    });
    const chunks: Buffer[] = [];
    for await (const c of src.snapshot().data) chunks.push(Buffer.from(c));
    const good = Buffer.concat(chunks);
    const dst = StateMachine.open({ store: new MemoryStateStore(), handlers: metaHandlers });
    const before = dst.hash();
    await fc.assert(
      fc.asyncProperty(fc.nat(), fc.integer({ min: 1, max: 255 }), fc.boolean(), async (at, flip, truncate) => {
        const bad = truncate ? good.subarray(0, at % good.length) : Buffer.from(good);
        if (!truncate) bad[at % bad.length]! ^= flip;
        async function* once() {
          yield bad;
        }
        // A damaged version field reads as another record version (MetaVersionError); anything else
        // is a SnapshotError.
        const err = await dst.restore(once()).then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(err instanceof SnapshotError || err instanceof MetaVersionError, String(err)).toBe(true);
        expect(dst.hash()).toBe(before);
      }),
      { numRuns: 200 },
    );
    async function* whole() {
      yield good;
    }
    expect(await dst.restore(whole())).toBe(3);
    expect(dst.hash()).toBe(src.hash());
  });
});
