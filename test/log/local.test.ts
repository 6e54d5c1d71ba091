import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { open as openLmdb } from 'lmdb';
import { describe, expect, it } from 'vitest';
import { LOCAL_LOG_DBS, LocalLog, batchRecordBytes } from '../../src/log/local.js';
import { LogError, type LogBatch } from '../../src/log/spi.js';
import { runLogConformance } from './conformance.js';

const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = join(here, '..', '..');

async function tempDir(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'tessera-log-'));
}

runLogConformance('local', async () => {
  const dir = await tempDir();
  const log = await LocalLog.open({ dir });
  return {
    log,
    reopen: () => LocalLog.open({ dir }),
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
});

/** Opens a log in a fresh directory, runs body, closes, removes the directory. */
async function withDir(body: (dir: string) => Promise<void>): Promise<void> {
  const dir = await tempDir();
  try {
    await body(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Every batch through `until` entries, as [position, text entries]. */
async function readAll(log: LocalLog, after = 0): Promise<{ batches: [number, string[]][]; errors: LogError[] }> {
  const batches: [number, string[]][] = [];
  const errors: LogError[] = [];
  const target = await log.readIndex();
  const sub = log.subscribe(
    after,
    (b: LogBatch) => {
      batches.push([b.position, b.entries.map((e) => Buffer.from(e).toString())]);
    },
    (e) => errors.push(e),
  );
  const deadline = Date.now() + 20_000;
  while (errors.length === 0 && (batches.length === 0 || batches[batches.length - 1]![0] < target) && target > after) {
    if (Date.now() > deadline) throw new Error('readAll timed out');
    await new Promise((r) => setTimeout(r, 2));
  }
  await sub.close();
  return { batches, errors };
}

/** Raw access to the LMDB environment of a closed log. */
function rawBatches(dir: string) {
  const env = openLmdb({ path: dir, overlappingSync: false, maxDbs: 4 });
  const batches = env.openDB<Buffer, number>({ name: LOCAL_LOG_DBS.batches, encoding: 'binary' });
  const meta = env.openDB<Buffer, string>({ name: LOCAL_LOG_DBS.meta, encoding: 'binary' });
  return { env, batches, meta };
}

describe('local log specifics', () => {
  it('group commit: concurrent appends in one turn share batches; positions are contiguous from 1', async () => {
    await withDir(async (dir) => {
      const log = await LocalLog.open({ dir });
      const positions = await Promise.all(Array.from({ length: 256 }, (_, i) => log.append([Buffer.from(`g${i}`)])));
      const distinct = [...new Set(positions)];
      expect(distinct.length).toBeLessThan(16);
      expect(log.stats.groups).toBe(distinct.length); // one write transaction per batch here
      expect(log.stats.entries).toBe(256);
      expect(distinct).toEqual(Array.from({ length: distinct.length }, (_, i) => i + 1));
      const { batches } = await readAll(log);
      expect(batches.flatMap(([, es]) => es)).toEqual(Array.from({ length: 256 }, (_, i) => `g${i}`));
      await log.close();
    });
  });

  it('a queue over logQueuedBytesMax rejects with "unavailable" (nothing committed); the log keeps working', async () => {
    await withDir(async (dir) => {
      const log = await LocalLog.open({ dir, queuedBytesMax: 64 * 1024 });
      const results = await Promise.allSettled(Array.from({ length: 40 }, () => log.append([new Uint8Array(4000)])));
      const rejected = results.filter((r) => r.status === 'rejected') as PromiseRejectedResult[];
      expect(rejected.length).toBeGreaterThan(0);
      for (const r of rejected) expect((r.reason as LogError).code).toBe('unavailable');
      const okCount = results.length - rejected.length;
      expect(okCount).toBeGreaterThan(0);
      const { batches } = await readAll(log);
      expect(batches.reduce((n, [, es]) => n + es.length, 0)).toBe(okCount);
      expect(await log.append([Buffer.from('still-fine')])).toBeGreaterThan(0);
      await log.close();
    });
  });

  it('a large group is split into batches of at most logBatchBytesMax, one append never split', async () => {
    await withDir(async (dir) => {
      const log = await LocalLog.open({ dir });
      const chunk = new Uint8Array(300 * 1024);
      const positions = await Promise.all(Array.from({ length: 10 }, () => log.append([chunk, chunk])));
      // 600 KiB per append: one append per batch.
      expect(new Set(positions).size).toBe(10);
      const { batches } = await readAll(log);
      for (const [, es] of batches) expect(batchRecordBytes(es.length, es.reduce((n, e) => n + e.length, 0))).toBeLessThanOrEqual(1024 * 1024 + 1);
      expect(batches.length).toBe(10);
      await log.close();
    });
  });

  it('durability across reopen; a second open of the same directory in this process is refused', async () => {
    await withDir(async (dir) => {
      const log = await LocalLog.open({ dir });
      await expect(LocalLog.open({ dir })).rejects.toMatchObject({ code: 'unavailable' });
      for (let i = 0; i < 5; i++) await log.append([Buffer.from(`d${i}`), Buffer.alloc(0)]);
      await log.close();
      const again = await LocalLog.open({ dir });
      const { batches, errors } = await readAll(again);
      expect(errors).toEqual([]);
      expect(batches).toEqual(Array.from({ length: 5 }, (_, i) => [i + 1, [`d${i}`, '']]));
      expect(await again.append([Buffer.from('d5')])).toBe(6);
      await again.close();
    });
  });

  it('a fully compacted log continues positions after the compaction point', async () => {
    await withDir(async (dir) => {
      const log = await LocalLog.open({ dir });
      for (let i = 0; i < 7; i++) await log.append([Buffer.from(`c${i}`)]);
      await log.compact(1_000_000); // clamped to the last committed position
      expect(await log.compactedThrough()).toBe(7);
      await log.close();
      const raw = rawBatches(dir);
      expect(raw.batches.getKeysCount()).toBe(0);
      await raw.env.close();
      const again = await LocalLog.open({ dir });
      expect(await again.readIndex()).toBe(7);
      expect(await again.append([Buffer.from('c7')])).toBe(8);
      await again.close();
    });
  });

  it('compacts many batches in chunks and finishes an interrupted compaction on reopen', async () => {
    await withDir(async (dir) => {
      const log = await LocalLog.open({ dir });
      const payload = Array.from({ length: 3000 }, (_, i) => Buffer.from(`n${i}`));
      for (let i = 0; i < payload.length; i += 100) {
        await Promise.all(payload.slice(i, i + 100).map((e) => log.append([e])));
      }
      const last = await log.readIndex();
      const through = last - 10;
      const compacting = log.compact(through);
      // Close as soon as the compaction point is durable: deletion is then usually mid-way.
      while ((await log.compactedThrough()) !== through) await new Promise((r) => setImmediate(r));
      await log.close();
      await compacting;
      const again = await LocalLog.open({ dir });
      expect(await again.compactedThrough()).toBe(through);
      const { batches, errors } = await readAll(again, through);
      expect(errors).toEqual([]);
      expect(batches.length).toBe(10);
      await again.compact(through); // waits for the resumed deletion (same chain)
      await again.close();
      const raw = rawBatches(dir);
      expect(raw.batches.getKeysCount()).toBe(10);
      await raw.env.close();
    });
  });

  it('a corrupt record gives "corrupt" to the subscriber that reaches it (and on open if it is the last)', async () => {
    await withDir(async (dir) => {
      const log = await LocalLog.open({ dir });
      for (let i = 0; i < 3; i++) await log.append([Buffer.from(`v${i}`)]);
      await log.close();

      let raw = rawBatches(dir);
      const rec = Buffer.from(raw.batches.getBinary(2)!);
      rec[rec.length - 6] ^= 0x01; // a payload bit: checksum mismatch
      await raw.batches.put(2, rec);
      await raw.env.close();

      let again = await LocalLog.open({ dir });
      const { batches, errors } = await readAll(again);
      expect(batches).toEqual([[1, ['v0']]]);
      expect(errors.length).toBe(1);
      expect(errors[0]).toBeInstanceOf(LogError);
      expect(errors[0]!.code).toBe('corrupt');
      await again.close();

      // A record stored under the wrong key.
      raw = rawBatches(dir);
      await raw.batches.put(2, raw.batches.getBinary(1)!);
      await raw.env.close();
      again = await LocalLog.open({ dir });
      const second = await readAll(again);
      expect(second.batches.length).toBe(1);
      expect(second.errors.map((e) => e.code)).toEqual(['corrupt']);
      expect(second.errors[0]!.message).toMatch(/record says position 1/);
      await again.close();

      // A truncated last record: open itself refuses.
      raw = rawBatches(dir);
      await raw.batches.put(3, Buffer.from([1, 2, 3]));
      await raw.env.close();
      await expect(LocalLog.open({ dir })).rejects.toMatchObject({ code: 'corrupt' });
      raw = rawBatches(dir);
      await raw.batches.remove(3);
      await raw.batches.remove(2);
      await raw.env.close();
      again = await LocalLog.open({ dir }); // openable again: only batch 1 remains
      expect(await again.readIndex()).toBe(1);
      await again.close();

      // A bad compaction record.
      raw = rawBatches(dir);
      await raw.meta.put(LOCAL_LOG_DBS.stateKey, Buffer.from('nonsense'));
      await raw.env.close();
      await expect(LocalLog.open({ dir })).rejects.toMatchObject({ code: 'corrupt' });
    });
  });

  it('a slow subscriber overflowing its buffer falls back to disk and still sees everything in order', async () => {
    await withDir(async (dir) => {
      const log = await LocalLog.open({ dir, subscriberBufferedBatchesMax: 4 });
      const seen: string[] = [];
      const errors: LogError[] = [];
      let fast = 0;
      const slow = log.subscribe(
        0,
        async (b) => {
          seen.push(...b.entries.map((e) => Buffer.from(e).toString()));
          await new Promise((r) => setTimeout(r, 1));
        },
        (e) => errors.push(e),
      );
      const quick = log.subscribe(0, (b) => void (fast += b.entries.length), (e) => errors.push(e));
      for (let i = 0; i < 200; i++) await log.append([Buffer.from(`o${i}`)]);
      const deadline = Date.now() + 20_000;
      while ((seen.length < 200 || fast < 200) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
      await slow.close();
      await quick.close();
      expect(errors).toEqual([]);
      expect(seen).toEqual(Array.from({ length: 200 }, (_, i) => `o${i}`));
      expect(fast).toBe(200);
      // The bounded buffer did overflow, and the slow one caught up from disk.
      expect(log.stats.subscriberOverflows).toBeGreaterThan(0);
      expect(log.stats.subscriberStoredReads).toBeGreaterThan(0);
      await log.close();
    });
  });

  it('an onBatch that throws ends that subscription with one error; others go on', async () => {
    await withDir(async (dir) => {
      const log = await LocalLog.open({ dir });
      const errors: LogError[] = [];
      let calls = 0;
      log.subscribe(
        0,
        () => {
          calls++;
          throw new Error('consumer bug');
        },
        (e) => errors.push(e),
      );
      await log.append([Buffer.from('t0')]);
      await log.append([Buffer.from('t1')]);
      const { batches } = await readAll(log);
      expect(batches.length).toBe(2);
      await new Promise((r) => setTimeout(r, 20));
      expect(calls).toBe(1);
      expect(errors.length).toBe(1);
      expect((errors[0]!.cause as Error).message).toBe('consumer bug');
      await log.close();
    });
  });

  it('rejects bad arguments clearly', async () => {
    await withDir(async (dir) => {
      const log = await LocalLog.open({ dir });
      await expect(log.append([])).rejects.toBeInstanceOf(TypeError);
      await expect(log.append(['x' as unknown as Uint8Array])).rejects.toBeInstanceOf(TypeError);
      expect(() => log.subscribe(-1, () => undefined, () => undefined)).toThrow(RangeError);
      await expect(log.compact(1.5)).rejects.toBeInstanceOf(RangeError);
      await log.close();
    });
  });

  it('an append that resolved survives SIGKILL of the process right after it resolved', async () => {
    await withDir(async (dir) => {
      const killAfter = 300;
      const child = spawn(process.execPath, ['--import', 'tsx', join(here, 'local-kill-child.ts'), dir, String(killAfter)], {
        cwd: repoRoot,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      let err = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr.on('data', (d: Buffer) => (err += d.toString()));
      const signal = await new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, sig) => resolve(sig)));
      expect(signal, err).toBe('SIGKILL');
      const acked = out
        .trim()
        .split('\n')
        .map((l) => l.split(' '))
        .map(([name, pos]) => [name!, Number(pos)] as const);
      expect(acked.length).toBe(killAfter);

      const log = await LocalLog.open({ dir });
      const { batches, errors } = await readAll(log);
      expect(errors).toEqual([]);
      const where = new Map<string, number>();
      for (const [p, es] of batches) for (const e of es) where.set(e, p);
      for (const [name, pos] of acked) expect(where.get(name), name).toBe(pos);
      // Positions continue after what the killed process stored.
      expect(await log.append([Buffer.from('after-kill')])).toBe(batches[batches.length - 1]![0] + 1);
      await log.close();
    });
  });

  it('throughput (printed, not asserted): single-entry appends/s at 1, 16, 256 concurrent appenders', async () => {
    await withDir(async (dir) => {
      const log = await LocalLog.open({ dir });
      const lines: string[] = [];
      for (const [concurrency, total] of [
        [1, 1000],
        [16, 8000],
        [256, 60000],
      ] as const) {
        let next = 0;
        const positions = new Set<number>();
        const entry = Buffer.alloc(100, 1);
        const t0 = performance.now();
        await Promise.all(
          Array.from({ length: concurrency }, async () => {
            while (next < total) {
              next++;
              positions.add(await log.append([entry]));
            }
          }),
        );
        const s = (performance.now() - t0) / 1000;
        lines.push(
          `local log: ${concurrency} appenders: ${Math.round(total / s)} appends/s (${total} in ${s.toFixed(2)} s, ${positions.size} batches, ${(total / positions.size).toFixed(1)} entries/batch)`,
        );
      }
      console.log(lines.join('\n'));
      await log.close();
    });
  });
});
