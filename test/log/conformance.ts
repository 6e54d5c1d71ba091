// Conformance suite for the replicated-log SPI (src/log/spi.ts). Every backend runs it:
//   runLogConformance('local', async () => ({ log, reopen, cleanup }))
// `make` must return a fresh, empty log each time; `reopen` (optional) closes nothing itself: it is
// called after the suite closed `log`, and must open the same log again. Only the SPI is used here,
// so positions may be non-contiguous (etcd revisions).

import { describe, expect, it } from 'vitest';
import { limits } from '../../src/base/limits.js';
import { LogError, type LogBatch, type ReplicatedLog } from '../../src/log/spi.js';

export interface LogUnderTest {
  log: ReplicatedLog;
  reopen?: () => Promise<ReplicatedLog>;
  cleanup: () => Promise<void>;
}

const WAIT_MS = 30_000;

const enc = new TextEncoder();
const dec = new TextDecoder();
const entry = (s: string): Uint8Array => enc.encode(s);
const text = (e: Uint8Array): string => dec.decode(e);

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Resolves when `cond()` holds; fails the test after `ms`. */
async function waitFor(what: string, cond: () => boolean, ms = WAIT_MS): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(2);
  }
}

interface Collected {
  batches: { position: number; entries: string[] }[];
  errors: LogError[];
  entryCount: () => number;
  close: () => Promise<void>;
}

/** Subscribes and records every batch (entries decoded as text) and error. */
function collect(log: ReplicatedLog, after: number, onBatchExtra?: (b: LogBatch) => Promise<void> | void): Collected {
  const batches: Collected['batches'] = [];
  const errors: LogError[] = [];
  let count = 0;
  const sub = log.subscribe(
    after,
    async (b) => {
      batches.push({ position: b.position, entries: b.entries.map(text) });
      count += b.entries.length;
      if (onBatchExtra) await onBatchExtra(b);
    },
    (err) => errors.push(err),
  );
  return { batches, errors, entryCount: () => count, close: () => sub.close() };
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error('expected a rejection');
}

function expectLogError(err: unknown, code: LogError['code']): void {
  expect(err).toBeInstanceOf(LogError);
  expect((err as LogError).code).toBe(code);
}

function expectStrictlyIncreasing(positions: number[]): void {
  for (let i = 1; i < positions.length; i++) expect(positions[i]!).toBeGreaterThan(positions[i - 1]!);
}

export function runLogConformance(name: string, make: () => Promise<LogUnderTest>): void {
  /** Runs `body` on a fresh log and always cleans up (closing whatever log is current). */
  async function withLog(body: (t: LogUnderTest & { current: () => ReplicatedLog; swap: (l: ReplicatedLog) => void }) => Promise<void>) {
    const t = await make();
    let current = t.log;
    try {
      await body({ ...t, current: () => current, swap: (l) => (current = l) });
    } finally {
      await current.close().catch(() => undefined);
      await t.cleanup();
    }
  }

  describe(`replicated log conformance: ${name}`, () => {
    it('sequential appends get strictly increasing safe-integer positions', async () => {
      await withLog(async ({ log }) => {
        const positions: number[] = [];
        for (let i = 0; i < 20; i++) positions.push(await log.append([entry(`s${i}`)]));
        for (const p of positions) {
          expect(Number.isSafeInteger(p)).toBe(true);
          expect(p).toBeGreaterThan(0);
        }
        expectStrictlyIncreasing(positions);
        expect(await log.readIndex()).toBeGreaterThanOrEqual(positions[positions.length - 1]!);
      });
    });

    it('keeps order within and across batches; batches carry the append positions', async () => {
      await withLog(async ({ log }) => {
        const expected: { position: number; entries: string[] }[] = [];
        for (let i = 0; i < 10; i++) {
          const entries = Array.from({ length: 1 + (i % 4) }, (_, j) => `b${i}e${j}`);
          const position = await log.append(entries.map(entry));
          expected.push({ position, entries });
        }
        const c = collect(log, 0);
        await waitFor('all batches', () => c.batches.length >= expected.length);
        await sleep(20);
        await c.close();
        expect(c.errors).toEqual([]);
        expect(c.batches).toEqual(expected);
      });
    });

    it('concurrent appends in one turn: each call contiguous and in order in the batch at its position', async () => {
      await withLog(async ({ log }) => {
        const calls = Array.from({ length: 50 }, (_, i) => Array.from({ length: 1 + (i % 3) }, (_, j) => `c${i}.${j}`));
        const positions = await Promise.all(calls.map((es) => log.append(es.map(entry))));
        const c = collect(log, 0);
        const total = calls.reduce((n, es) => n + es.length, 0);
        await waitFor('all entries', () => c.entryCount() >= total);
        await c.close();
        expect(c.errors).toEqual([]);
        expectStrictlyIncreasing(c.batches.map((b) => b.position));
        const byPos = new Map(c.batches.map((b) => [b.position, b.entries]));
        const seen = new Set<string>();
        for (let i = 0; i < calls.length; i++) {
          const batch = byPos.get(positions[i]!);
          expect(batch, `batch at ${positions[i]} for call ${i}`).toBeDefined();
          const at = batch!.indexOf(calls[i]![0]!);
          expect(at).toBeGreaterThanOrEqual(0);
          expect(batch!.slice(at, at + calls[i]!.length)).toEqual(calls[i]);
          for (const e of calls[i]!) seen.add(e);
        }
        // Nothing else was delivered, and nothing twice.
        expect(c.entryCount()).toBe(total);
        expect(seen.size).toBe(total);
      });
    });

    it('2,000 appends from 64 concurrent callers reach two subscribers exactly once, in the same order', async () => {
      await withLog(async ({ log }) => {
        const callers = 64;
        const total = 2000;
        const a = collect(log, 0);
        const b = collect(log, 0);
        const resolved = new Map<string, number>();
        let next = 0;
        const readIndexViolations: string[] = [];
        await Promise.all(
          Array.from({ length: callers }, async (_, caller) => {
            let seq = 0;
            for (;;) {
              if (next >= total) return;
              next++;
              const e = `k${caller}.${seq++}`;
              const p = await log.append([entry(e)]);
              resolved.set(e, p);
              // Read index: covers every append resolved before the call began.
              const ri = await log.readIndex();
              if (ri < p) readIndexViolations.push(`${e}@${p} readIndex ${ri}`);
            }
          }),
        );
        expect(resolved.size).toBe(total);
        expect(readIndexViolations).toEqual([]);
        await waitFor('subscriber a', () => a.entryCount() >= total);
        await waitFor('subscriber b', () => b.entryCount() >= total);
        await sleep(20);
        await a.close();
        await b.close();
        expect(a.errors).toEqual([]);
        expect(b.errors).toEqual([]);
        expect(a.entryCount()).toBe(total);
        expect(b.batches).toEqual(a.batches);
        expectStrictlyIncreasing(a.batches.map((x) => x.position));
        const lastSeq = new Map<number, number>();
        const seen = new Set<string>();
        for (const batch of a.batches) {
          for (const e of batch.entries) {
            expect(seen.has(e), `duplicate ${e}`).toBe(false);
            seen.add(e);
            expect(resolved.get(e), `position of ${e}`).toBe(batch.position);
            const [c, s] = e.slice(1).split('.').map(Number) as [number, number];
            // Each caller appended sequentially, so its entries appear in its order.
            expect(s).toBe((lastSeq.get(c) ?? -1) + 1);
            lastSeq.set(c, s);
          }
        }
        expect(seen.size).toBe(total);
      });
    });

    it('subscribe from a middle position delivers only later batches, then new ones', async () => {
      await withLog(async ({ log }) => {
        const positions: number[] = [];
        for (let i = 0; i < 10; i++) positions.push(await log.append([entry(`m${i}`)]));
        const c = collect(log, positions[4]!);
        await waitFor('5 batches', () => c.batches.length >= 5);
        const later = await log.append([entry('m10')]);
        await waitFor('the new batch', () => c.batches.length >= 6);
        await sleep(20);
        await c.close();
        expect(c.errors).toEqual([]);
        expect(c.batches.map((b) => b.position)).toEqual([...positions.slice(5), later]);
        expect(c.batches.flatMap((b) => b.entries)).toEqual(['m5', 'm6', 'm7', 'm8', 'm9', 'm10']);
        // After the last position: nothing until something new.
        const d = collect(log, later);
        await sleep(50);
        expect(d.batches).toEqual([]);
        const p = await log.append([entry('m11')]);
        await waitFor('m11', () => d.batches.length >= 1);
        await d.close();
        expect(d.batches).toEqual([{ position: p, entries: ['m11'] }]);
      });
    });

    it('backpressure: a slow onBatch is never re-entered and sees every batch in order', async () => {
      await withLog(async ({ log }) => {
        let running = 0;
        let maxRunning = 0;
        const c = collect(log, 0, async () => {
          running++;
          maxRunning = Math.max(maxRunning, running);
          await sleep(5);
          running--;
        });
        const appends: Promise<number>[] = [];
        for (let i = 0; i < 40; i++) {
          appends.push(log.append([entry(`p${i}`)]));
          if (i % 8 === 7) await sleep(3);
        }
        await Promise.all(appends);
        await waitFor('all 40', () => c.entryCount() >= 40);
        await c.close();
        expect(maxRunning).toBe(1);
        expect(c.batches.flatMap((b) => b.entries)).toEqual(Array.from({ length: 40 }, (_, i) => `p${i}`));
      });
    });

    it('subscription close() stops delivery and resolves once onBatch is not running', async () => {
      await withLog(async ({ log }) => {
        let inside = false;
        const c = collect(log, 0, async () => {
          inside = true;
          await sleep(30);
          inside = false;
        });
        await log.append([entry('x0')]);
        await waitFor('first delivery', () => inside);
        await c.close();
        expect(inside).toBe(false);
        const before = c.batches.length;
        await log.append([entry('x1')]);
        await sleep(50);
        expect(c.batches.length).toBe(before);
        await c.close(); // idempotent
      });
    });

    it('compaction: compactedThrough, "compacted" below it, delivery above it', async () => {
      await withLog(async ({ log }) => {
        expect(await log.compactedThrough()).toBe(0);
        const positions: number[] = [];
        for (let i = 0; i < 10; i++) positions.push(await log.append([entry(`q${i}`)]));
        const mid = positions[4]!;
        await log.compact(mid);
        const ct = await log.compactedThrough();
        expect(ct).toBeGreaterThanOrEqual(mid);
        expect(ct).toBeLessThan(positions[5]!);

        for (const after of [0, positions[2]!]) {
          const bad = collect(log, after);
          await waitFor('compacted error', () => bad.errors.length > 0);
          await sleep(20);
          expect(bad.errors.length).toBe(1);
          expectLogError(bad.errors[0], 'compacted');
          expect(bad.batches).toEqual([]);
          await bad.close();
        }

        const ok = collect(log, ct);
        await waitFor('rest', () => ok.batches.length >= 5);
        await ok.close();
        expect(ok.errors).toEqual([]);
        expect(ok.batches.flatMap((b) => b.entries)).toEqual(['q5', 'q6', 'q7', 'q8', 'q9']);

        // Compacting to an older point is a no-op.
        await log.compact(positions[1]!);
        expect(await log.compactedThrough()).toBe(ct);
        // Appends continue after compaction.
        const p = await log.append([entry('q10')]);
        expect(p).toBeGreaterThan(positions[9]!);
      });
    });

    it(`rejects an append over logBatchBytesMax (${limits.logBatchBytesMax}) with "too-large", accepts one well under it`, async () => {
      await withLog(async ({ log }) => {
        expectLogError(await rejection(log.append([new Uint8Array(limits.logBatchBytesMax + 1)])), 'too-large');
        const half = new Uint8Array(limits.logBatchBytesMax / 2 + 16);
        expectLogError(await rejection(log.append([half, half])), 'too-large');
        const big = new Uint8Array(limits.logBatchBytesMax - 64 * 1024).fill(7);
        const p = await log.append([big]);
        const small = await log.append([entry('after-big')]);
        expect(small).toBeGreaterThan(p);
        const c = collect(log, 0);
        await waitFor('both', () => c.batches.length >= 2);
        await c.close();
        expect(c.batches.length).toBe(2);
        expect(c.batches[0]!.position).toBe(p);
        expect(c.batches[1]!.entries).toEqual(['after-big']);
      });
    });

    it('close(): pending appends settle with a position or "closed"; later calls reject "closed"', async () => {
      await withLog(async ({ log, reopen, swap }) => {
        await log.append([entry('before-close')]);
        const sub = collect(log, 0);
        const pending = Array.from({ length: 100 }, (_, i) => log.append([entry(`z${i}`)]));
        const closing = log.close();
        const outcomes = await Promise.allSettled(pending);
        await closing;
        await log.close(); // idempotent
        const committed = new Set<string>();
        const notCommitted = new Set<string>();
        outcomes.forEach((o, i) => {
          if (o.status === 'fulfilled') {
            expect(Number.isSafeInteger(o.value)).toBe(true);
            committed.add(`z${i}`);
          } else {
            expectLogError(o.reason, 'closed');
            notCommitted.add(`z${i}`);
          }
        });
        expectLogError(await rejection(log.append([entry('late')])), 'closed');
        expectLogError(await rejection(log.readIndex()), 'closed');
        await sub.close();

        if (reopen) {
          // 'closed' means definitely not committed; a resolved append is durable.
          const again = await reopen();
          swap(again);
          const c = collect(again, 0);
          await waitFor('history', () => c.entryCount() >= 1 + committed.size);
          await sleep(50);
          await c.close();
          const all = c.batches.flatMap((b) => b.entries);
          expect(all[0]).toBe('before-close');
          expect(new Set(all.slice(1))).toEqual(committed);
          for (const e of notCommitted) expect(all).not.toContain(e);
        }
      });
    });

    it('reopen keeps history, compaction point, and continues positions', async ({ skip }) => {
      await withLog(async ({ log, reopen, swap }) => {
        if (!reopen) return skip();
        const positions: number[] = [];
        for (let i = 0; i < 6; i++) positions.push(await log.append([entry(`r${i}`), entry(`r${i}b`)]));
        await log.compact(positions[1]!);
        const ct = await log.compactedThrough();
        await log.close();
        const again = await reopen();
        swap(again);
        expect(await again.compactedThrough()).toBe(ct);
        expect(await again.readIndex()).toBeGreaterThanOrEqual(positions[5]!);
        const c = collect(again, ct);
        await waitFor('kept batches', () => c.batches.length >= 4);
        const p = await again.append([entry('r6')]);
        expect(p).toBeGreaterThan(positions[5]!);
        await waitFor('new batch', () => c.batches.length >= 5);
        await c.close();
        expect(c.errors).toEqual([]);
        expect(c.batches.map((b) => b.position)).toEqual([...positions.slice(2), p]);
        expect(c.batches[0]!.entries).toEqual(['r2', 'r2b']);
      });
    });
  });
}
