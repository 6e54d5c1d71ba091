// The etcd log backend against a real 3-member etcd cluster (test/helpers/etcd-cluster.ts): the SPI
// conformance suite, then failure behaviour (leader kill under load, a subscriber's member killed),
// a slow consumer, corrupt values, and a throughput figure (printed, not asserted).

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { limits } from '../../src/base/limits.js';
import { EtcdLog, decodeBatch, encodeBatch } from '../../src/log/etcd.js';
import { LogError, type LogBatch } from '../../src/log/spi.js';
import { startEtcdCluster, type EtcdCluster } from '../helpers/etcd-cluster.js';
import { runLogConformance } from './conformance.js';

let cluster: EtcdCluster;
let prefixSeq = 0;
const runId = `${process.pid}-${Date.now()}`;
const freshPrefix = (what: string): string => `/tessera-test/${runId}/${what}-${prefixSeq++}`;

const enc = new TextEncoder();
const dec = new TextDecoder();
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function waitFor(what: string, cond: () => boolean, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

/** Endpoints starting at member `first`, then the others in ring order. */
function rotated(first: number): string[] {
  const n = cluster.endpoints.length;
  return Array.from({ length: n }, (_, k) => cluster.endpoints[(first + k) % n]!);
}

interface Recorder {
  batches: { position: number; entries: string[] }[];
  errors: LogError[];
  last: () => number;
  close: () => Promise<void>;
}

function record(log: EtcdLog, after: number, onEach?: (b: LogBatch) => Promise<void> | void): Recorder {
  const batches: Recorder['batches'] = [];
  const errors: LogError[] = [];
  const sub = log.subscribe(
    after,
    async (b) => {
      batches.push({ position: b.position, entries: b.entries.map((e) => dec.decode(e)) });
      if (onEach) await onEach(b);
    },
    (err) => errors.push(err),
  );
  return { batches, errors, last: () => batches[batches.length - 1]?.position ?? after, close: () => sub.close() };
}

beforeAll(async () => {
  cluster = await startEtcdCluster({ members: 3, name: 'logtest' });
});

afterAll(async () => {
  await cluster?.stop();
});

describe('etcd batch framing', () => {
  it('round-trips entries, including empty ones', () => {
    const entries = [enc.encode('a'), new Uint8Array(0), new Uint8Array(300).fill(9)];
    const back = decodeBatch(encodeBatch(entries), 1);
    expect(back.map((e) => Array.from(e))).toEqual(entries.map((e) => Array.from(e)));
  });

  it('rejects damaged values as corrupt', () => {
    const good = encodeBatch([enc.encode('hello'), enc.encode('world')]);
    const bad: Uint8Array[] = [
      good.subarray(0, 5), // shorter than the header
      Buffer.concat([good, Buffer.from([0])]), // trailing byte
      good.subarray(0, good.length - 1), // truncated entry
      Buffer.from(good).fill(0, 0, 4), // magic
      (() => {
        const b = Buffer.from(good);
        b.writeUInt32BE(0, 4); // zero entries
        return b;
      })(),
      (() => {
        const b = Buffer.from(good);
        b.writeUInt32BE(0xffffffff, 8); // entry length past the end
        return b;
      })(),
    ];
    for (const v of bad) {
      let err: unknown;
      try {
        decodeBatch(v, 7);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(LogError);
      expect((err as LogError).code).toBe('corrupt');
    }
  });
});

runLogConformance('etcd', async () => {
  const prefix = freshPrefix('conf');
  const log = await EtcdLog.open({ endpoints: cluster.endpoints, prefix });
  return {
    log,
    reopen: () => EtcdLog.open({ endpoints: rotated(1), prefix }),
    cleanup: async () => undefined,
  };
});

describe('etcd log under failures', () => {
  it('leader SIGKILL under load: 6,000 appends, 256 in flight, three instances, two subscribers', async () => {
    const prefix = freshPrefix('kill');
    const resent = new Set<string>();
    const logs = await Promise.all(
      [0, 1, 2].map((i) =>
        EtcdLog.open({
          endpoints: rotated(i),
          prefix,
          onResend: (entries) => {
            for (const e of entries) resent.add(dec.decode(e));
          },
        }),
      ),
    );
    const leader = await cluster.leaderIndex();
    const start = await logs[0]!.readIndex();
    // Subscriber A watches through the member about to be killed, B through another.
    const subA = record(logs[leader]!, start);
    const subB = record(logs[(leader + 1) % 3]!, start);

    const total = 6000;
    const inFlight = 256;
    const outcomes = new Map<string, { position?: number; code?: string }>();
    let issued = 0;
    let settled = 0;
    let killedAt = -1;
    let killing: Promise<void> | undefined;
    const t0 = performance.now();
    let tKill = 0;
    await Promise.all(
      Array.from({ length: inFlight }, async (_, w) => {
        const log = logs[w % 3]!;
        for (let seq = 0; issued < total; seq++) {
          issued++;
          const id = `w${w}.${seq}`;
          try {
            outcomes.set(id, { position: await log.append([enc.encode(id)]) });
          } catch (err) {
            outcomes.set(id, { code: err instanceof LogError ? err.code : `not a LogError: ${String(err)}` });
          }
          settled++;
          if (settled === total / 2) {
            killedAt = settled;
            tKill = performance.now();
            killing = cluster.kill(leader, 'SIGKILL');
          }
        }
      }),
    );
    const tDone = performance.now();
    await killing;
    expect(killedAt).toBe(total / 2);

    const resolved = [...outcomes].filter(([, o]) => o.position !== undefined);
    const rejected = [...outcomes].filter(([, o]) => o.position === undefined);
    const codes = new Set(rejected.map(([, o]) => o.code));
    for (const code of codes) expect(['ambiguous', 'unavailable']).toContain(code);

    // Everything committed reaches both subscribers (the one watching through the killed member too).
    const target = await logs[1]!.readIndex();
    await waitFor('subscriber A', () => subA.last() >= target);
    await waitFor('subscriber B', () => subB.last() >= target);
    await sleep(50);
    await subA.close();
    await subB.close();
    expect(subA.errors).toEqual([]);
    expect(subB.errors).toEqual([]);
    expect(subB.batches).toEqual(subA.batches);
    for (let i = 1; i < subA.batches.length; i++) expect(subA.batches[i]!.position).toBeGreaterThan(subA.batches[i - 1]!.position);

    const seenAt = new Map<string, number[]>();
    for (const b of subA.batches) for (const e of b.entries) seenAt.set(e, [...(seenAt.get(e) ?? []), b.position]);
    for (const [id, o] of resolved) {
      expect(seenAt.get(id), `resolved ${id} delivered`).toBeDefined();
      expect(seenAt.get(id)).toContain(o.position);
    }
    // 'unavailable' means never committed.
    for (const [id, o] of rejected) if (o.code === 'unavailable') expect(seenAt.has(id), `unavailable ${id} not delivered`).toBe(false);
    // Duplicates only of entries whose batch was re-sent after an attempt that may have landed.
    const duplicates = [...seenAt].filter(([, ps]) => ps.length > 1).map(([id]) => id);
    for (const id of duplicates) expect(resent.has(id), `duplicate ${id} was re-sent`).toBe(true);
    for (const id of seenAt.keys()) expect(outcomes.has(id)).toBe(true);

    const stats = logs.map((l) => l.stats);
    console.log(
      `[etcd leader kill] ${total} appends in ${((tDone - t0) / 1000).toFixed(2)} s (kill at ${((tKill - t0) / 1000).toFixed(2)} s, ` +
        `last append settled ${((tDone - tKill) / 1000).toFixed(2)} s after it): resolved ${resolved.length}, ` +
        `ambiguous ${rejected.filter(([, o]) => o.code === 'ambiguous').length}, unavailable ${rejected.filter(([, o]) => o.code === 'unavailable').length}; ` +
        `entries re-sent ${resent.size}, delivered twice ${duplicates.length}; batches ${subA.batches.length}; ` +
        `puts ${stats.map((s) => s.puts).join('/')}, failed attempts ${stats.map((s) => s.attemptsFailed).join('/')}`,
    );
    expect(resolved.length).toBeGreaterThan(total * 0.9);

    await Promise.all(logs.map((l) => l.close()));
    await cluster.restart(leader);
  });

  it('a subscriber survives the SIGKILL of the member it watches through', async () => {
    const prefix = freshPrefix('subkill');
    const leader = await cluster.leaderIndex();
    const follower = (leader + 1) % 3;
    const watcher = await EtcdLog.open({ endpoints: rotated(follower), prefix });
    const writer = await EtcdLog.open({ endpoints: rotated(leader), prefix });
    const sub = record(watcher, 0);
    const want: string[] = [];
    for (let i = 0; i < 100; i++) {
      want.push(`a${i}`);
      await writer.append([enc.encode(`a${i}`)]);
    }
    await waitFor('first 100', () => sub.batches.length >= 100);
    await cluster.kill(follower, 'SIGKILL');
    await Promise.all(
      Array.from({ length: 100 }, (_, i) => {
        want.push(`b${i}`);
        return writer.append([enc.encode(`b${i}`)]);
      }),
    );
    await waitFor('all 200 entries', () => sub.batches.reduce((n, b) => n + b.entries.length, 0) >= 200);
    await sleep(50);
    await sub.close();
    expect(sub.errors).toEqual([]);
    const got = sub.batches.flatMap((b) => b.entries);
    expect(got.slice(0, 100)).toEqual(want.slice(0, 100));
    expect(new Set(got.slice(100))).toEqual(new Set(want.slice(100)));
    expect(got.length).toBe(200);
    for (let i = 1; i < sub.batches.length; i++) expect(sub.batches[i]!.position).toBeGreaterThan(sub.batches[i - 1]!.position);
    await watcher.close();
    await writer.close();
    await cluster.restart(follower);
  });
});

describe('etcd log with a frozen leader', () => {
  it('SIGSTOP on the preferred member: the attempt deadline fires and the append moves to another member', async () => {
    const prefix = freshPrefix('frozen');
    const leader = await cluster.leaderIndex();
    const resent: string[] = [];
    const log = await EtcdLog.open({
      endpoints: rotated(leader),
      prefix,
      onResend: (entries) => resent.push(...entries.map((e) => dec.decode(e))),
    });
    await log.append([enc.encode('warm')]);
    const pid = cluster.pids[leader]!;
    process.kill(pid, 'SIGSTOP');
    try {
      const t0 = performance.now();
      const outcomes = await Promise.allSettled(Array.from({ length: 20 }, (_, i) => log.append([enc.encode(`f${i}`)])));
      const ms = performance.now() - t0;
      console.log(`[etcd frozen leader] 20 appends settled in ${ms.toFixed(0)} ms; re-sent entries ${resent.length}; stats ${JSON.stringify(log.stats)}`);
      for (const o of outcomes) expect(o.status).toBe('fulfilled');
      expect(log.stats.attemptsFailed).toBeGreaterThan(0);
      expect(ms).toBeLessThan(limits.logAppendDeadlineMs);
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    const sub = record(log, 0);
    const target = await log.readIndex();
    await waitFor('history', () => sub.last() >= target);
    await sub.close();
    const got = sub.batches.flatMap((b) => b.entries);
    for (let i = 0; i < 20; i++) expect(got).toContain(`f${i}`);
    // Anything delivered twice was re-sent after an attempt that may have landed.
    const counts = new Map<string, number>();
    for (const e of got) counts.set(e, (counts.get(e) ?? 0) + 1);
    for (const [e, n] of counts) if (n > 1) expect(resent).toContain(e);
    await log.close();
    // The thawed member rejoins as a follower.
    for (let i = 0; i < 100 && !(await cluster.healthy(leader)); i++) await sleep(100);
    expect(await cluster.healthy(leader)).toBe(true);
  });
});

describe('etcd log subscribers', () => {
  it('a slow consumer (buffer full) pauses the watch and resumes without gaps or repeats', async () => {
    const prefix = freshPrefix('slow');
    const log = await EtcdLog.open({ endpoints: cluster.endpoints, prefix });
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let first = true;
    const sub = record(log, 0, async () => {
      if (first) {
        first = false;
        await gate;
      }
    });
    // More single-entry batches than the subscriber buffers, written as separate puts.
    const n = limits.logSubscriberBufferedBatchesMax + 300;
    const client = log.clientFor(0);
    let next = 0;
    await Promise.all(
      Array.from({ length: 32 }, async () => {
        while (next < n) {
          const i = next++;
          await client.kv.put({ key: log.key, value: encodeBatch([enc.encode(`s${i}`)]) });
        }
      }),
    );
    await sleep(200); // the watch fills the buffer and stops
    release();
    await waitFor('all batches', () => sub.batches.length >= n);
    await sleep(100);
    await sub.close();
    expect(sub.errors).toEqual([]);
    expect(sub.batches.length).toBe(n);
    for (let i = 1; i < n; i++) expect(sub.batches[i]!.position).toBeGreaterThan(sub.batches[i - 1]!.position);
    expect(new Set(sub.batches.map((b) => b.entries[0])).size).toBe(n);
    await log.close();
  });

  it('a value that is not a batch, or a deleted log key, ends the subscription with "corrupt"', async () => {
    for (const damage of ['garbage', 'delete'] as const) {
      const prefix = freshPrefix('corrupt');
      const log = await EtcdLog.open({ endpoints: cluster.endpoints, prefix });
      await log.append([enc.encode('fine')]);
      const client = log.clientFor(0);
      if (damage === 'garbage') await client.kv.put({ key: log.key, value: Buffer.from('not a batch') });
      else await client.kv.deleteRange({ key: log.key });
      const sub = record(log, 0);
      await waitFor('error', () => sub.errors.length > 0);
      await sleep(20);
      expect(sub.errors.length).toBe(1);
      expect(sub.errors[0]!.code).toBe('corrupt');
      expect(sub.batches.map((b) => b.entries)).toEqual([['fine']]);
      await sub.close();
      await log.close();
    }
  });

  it('a history compaction by another user of the cluster does not fail a subscriber that lost nothing', async () => {
    const mine = await EtcdLog.open({ endpoints: cluster.endpoints, prefix: freshPrefix('mine') });
    const other = await EtcdLog.open({ endpoints: cluster.endpoints, prefix: freshPrefix('other') });
    const before = await mine.append([enc.encode('m0')]);
    let p = 0;
    for (let i = 0; i < 5; i++) p = await other.append([enc.encode(`o${i}`)]);
    await other.compact(p); // etcd compaction is cluster-wide
    const sub = record(mine, before); // watch starts at before + 1 < p: below etcd's compaction
    const after = await mine.append([enc.encode('m1')]);
    await waitFor('m1', () => sub.batches.length >= 1);
    await sub.close();
    expect(sub.errors).toEqual([]);
    expect(sub.batches).toEqual([{ position: after, entries: ['m1'] }]);
    // A subscriber that did lose batches to that compaction is told so.
    const lost = record(mine, 0);
    await waitFor('compacted', () => lost.errors.length > 0);
    expect(lost.errors[0]!.code).toBe('compacted');
    await lost.close();
    await mine.close();
    await other.close();
  });
});

describe('etcd log throughput (printed, not asserted)', () => {
  it('appends/s at 1/16/256 concurrent vs raw single-key puts/s with the same client', async () => {
    const log = await EtcdLog.open({ endpoints: cluster.endpoints, prefix: freshPrefix('tput') });
    const client = log.clientFor(0);
    const rawKey = Buffer.from(`${freshPrefix('raw')}/k`);
    const payload = new Uint8Array(100).fill(1);
    const measure = async (concurrency: number, op: () => Promise<unknown>): Promise<number> => {
      const ms = 800;
      let n = 0;
      const t0 = performance.now();
      const end = t0 + ms;
      await Promise.all(
        Array.from({ length: concurrency }, async () => {
          while (performance.now() < end) {
            await op();
            n++;
          }
        }),
      );
      return Math.round(n / ((performance.now() - t0) / 1000));
    };
    await measure(16, () => log.append([payload])); // warm-up
    const rows: string[] = [];
    for (const c of [1, 16, 256]) {
      const appends = await measure(c, () => log.append([payload]));
      const puts = await measure(c, () => client.kv.put({ key: rawKey, value: Buffer.from(payload) }));
      rows.push(`${c}: ${appends} appends/s vs ${puts} puts/s`);
    }
    console.log(`[etcd throughput, 100-byte entries, 3 members on 2 shared cores] ${rows.join('; ')}`);
    await log.close();
  });
});
