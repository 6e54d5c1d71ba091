// Issue 3's acceptance test: the metadata service on a real 3-member etcd cluster, three nodes in
// this process (each its own EtcdLog with the endpoints in a different order, its own LMDB state in
// a temporary directory, its own MetaService), 10,000 uniquely identifiable proposals with 256 in
// flight, and a SIGKILL of the etcd leader a third of the way through (restarted two thirds in).
//
// Every 20th append of each node is committed twice (a backend re-send that had landed), so
// duplicates in the log are certain, not left to the kill's timing.
//
// What must hold (exactly-once through leader failover, convergence):
// - every proposal resolves ok or rejects with MetaError 'unavailable' (definitely not applied);
// - every acknowledged id was applied exactly once on every node (test.incr makes a second
//   application visible: n would be 2); no id anywhere has n > 1; a rejected id has no record;
// - after barrier() all three nodes are at the same position with the same state hash.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EtcdLog } from '../../src/log/etcd.js';
import { decodeEntry } from '../../src/meta/entry.js';
import { MetaError } from '../../src/meta/service.js';
import { startEtcdCluster, type EtcdCluster } from '../helpers/etcd-cluster.js';
import { COUNT_KEY, converge, openNode, seenIds, seenKey, type TestNode } from './cluster-node.js';

const TOTAL = 10_000;
const IN_FLIGHT = 256;

let cluster: EtcdCluster;
let root: string;

beforeAll(async () => {
  cluster = await startEtcdCluster({ members: 3, name: 'metacluster' });
  root = mkdtempSync(join(tmpdir(), 'tessera-meta-cluster-'));
});

afterAll(async () => {
  await cluster?.stop();
  if (root) rmSync(root, { recursive: true, force: true });
});

describe('metadata service on a real 3-member etcd cluster', () => {
  it('10,000 proposals from three nodes, 256 in flight, etcd leader SIGKILLed and restarted: exactly once, converged', async () => {
    const n = cluster.endpoints.length;
    const prefix = `/tessera-test/${process.pid}-${Date.now()}/acceptance`;
    // Each node prefers a different member first (the etcd log moves to the next one on failure).
    const nodes: TestNode[] = await Promise.all(
      ['n1', 'n2', 'n3'].map((id, i) =>
        openNode({
          id,
          clusterId: 'accept',
          etcd: { endpoints: Array.from({ length: n }, (_, k) => cluster.endpoints[(i + k) % n]!), prefix },
          stateDir: join(root, id),
          // Every 20th append is committed twice, as after a re-send whose first attempt had landed
          // (real leader-kill re-sends rarely land twice): exactly-once must hold through it.
          duplicateEvery: 20,
        }),
      ),
    );
    try {
      const leader = await cluster.leaderIndex();
      const acked: string[] = [];
      const unavailable: string[] = [];
      const otherErrors: string[] = [];
      const ackTimes: number[] = [];
      let next = 0;
      let tKill = 0;
      let tRestartBegin = 0;
      let tRestarted = 0;
      let killing: Promise<void> | undefined;
      let restarting: Promise<void> | undefined;

      const t0 = performance.now();
      const worker = async (): Promise<void> => {
        for (;;) {
          const i = next++;
          if (i >= TOTAL) return;
          const node = nodes[i % 3]!;
          const id = `p${i}`;
          try {
            const r = await node.svc.propose({ t: 'test.incr', id });
            if (!r.ok || r.value !== 1) otherErrors.push(`${id}: ${JSON.stringify(r)}`);
            acked.push(id);
            ackTimes.push(performance.now());
          } catch (err) {
            if (err instanceof MetaError && err.kind === 'unavailable') unavailable.push(id);
            else otherErrors.push(`${id}: ${(err as Error).message}`);
          }
          if (killing === undefined && acked.length >= Math.floor(TOTAL / 3)) {
            tKill = performance.now();
            killing = cluster.kill(leader, 'SIGKILL');
          }
          if (restarting === undefined && killing !== undefined && acked.length >= Math.floor((2 * TOTAL) / 3)) {
            tRestartBegin = performance.now();
            restarting = killing.then(() => cluster.restart(leader)).then(() => void (tRestarted = performance.now()));
          }
        }
      };
      await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
      const tDone = performance.now();
      await killing;
      await restarting;

      // The longest stall in acknowledgements after the kill (the failover gap as a client sees it).
      let gap = 0;
      let firstAfterKill = Infinity;
      for (let k = 1; k < ackTimes.length; k++) {
        if (ackTimes[k]! < tKill) continue;
        if (ackTimes[k]! < firstAfterKill) firstAfterKill = ackTimes[k]!;
        const prev = Math.max(ackTimes[k - 1]!, tKill);
        gap = Math.max(gap, ackTimes[k]! - prev);
      }
      const secs = (tDone - t0) / 1000;
      console.log(
        `[meta etcd acceptance] ${TOTAL} proposals (${IN_FLIGHT} in flight, 3 nodes) in ${secs.toFixed(2)} s = ` +
          `${Math.round(TOTAL / secs)}/s; ok ${acked.length}, unavailable ${unavailable.length}, other ${otherErrors.length}; ` +
          `leader m${leader} killed at ${((tKill - t0) / 1000).toFixed(2)} s, longest ack gap after the kill ` +
          `${gap.toFixed(0)} ms (first ack after kill +${(firstAfterKill - tKill).toFixed(0)} ms); restart begun at ` +
          `${((tRestartBegin - t0) / 1000).toFixed(2)} s, member healthy after ${((tRestarted - tRestartBegin) / 1000).toFixed(2)} s`,
      );

      const logStats = nodes.map((x) => (x.inner as EtcdLog).stats);
      const resent = nodes.map((x) => x.events.filter((e) => e.msg === 'meta: append failed, re-sending').length);
      console.log(
        `[meta etcd acceptance] etcd puts ${logStats.map((s) => s.puts).join('/')}, failed attempts ` +
          `${logStats.map((s) => s.attemptsFailed).join('/')}, log re-sends of maybe-landed batches ` +
          `${logStats.map((s) => s.resends).join('/')}, service re-proposals ${resent.join('/')}, ` +
          `appends committed twice on purpose ${nodes.map((x) => x.doubled()).join('/')}`,
      );

      expect(otherErrors).toEqual([]);
      expect(acked.length + unavailable.length).toBe(TOTAL);
      expect(killing).toBeDefined();
      expect(restarting).toBeDefined();
      // Failover should cost a few seconds at most, not a proposal deadline's worth of rejections.
      expect(unavailable.length).toBeLessThanOrEqual(TOTAL / 100);

      const hashes = await converge(nodes);
      console.log(`[meta etcd acceptance] converged at position ${hashes[0]!.position}: ${hashes.map((h) => h.hash.slice(0, 12)).join(' ')}`);
      for (const h of hashes) expect(h).toEqual(hashes[0]);

      // Read the whole log back through a separate client: how many ids were committed more than once
      // (re-sent batches that had landed) and still applied once.
      const copies = new Map<string, number>();
      const reader = await EtcdLog.open({ endpoints: cluster.endpoints, prefix });
      try {
        const end = hashes[0]!.position;
        await new Promise<void>((resolve, reject) => {
          const sub = reader.subscribe(
            0,
            (b) => {
              for (const bytes of b.entries) {
                const e = decodeEntry(bytes);
                if (e.c.t === 'test.incr') copies.set(e.c.id as string, (copies.get(e.c.id as string) ?? 0) + 1);
              }
              if (b.position >= end) void sub.close().then(resolve);
            },
            reject,
          );
        });
      } finally {
        await reader.close();
      }
      const multi = [...copies.values()].filter((c) => c > 1).length;
      console.log(`[meta etcd acceptance] ${copies.size} ids in the log, ${multi} of them committed more than once (applied once)`);
      expect(multi).toBeGreaterThan(0);
      expect(acked.filter((id) => !copies.has(id))).toEqual([]);

      const unavailableSet = new Set(unavailable);
      for (const node of nodes) {
        const seen = seenIds((fn) => node.svc.read(fn));
        // Exactly the acknowledged ids, each applied once.
        expect(seen.size).toBe(acked.length);
        const twice = [...seen].filter(([, c]) => c !== 1);
        expect(twice).toEqual([]);
        for (const id of acked) expect(seen.get(id)).toBe(1);
        for (const id of unavailableSet) expect(seen.has(id)).toBe(false);
        const count = node.svc.read((tx) => tx.get<{ n: number }>(COUNT_KEY))?.n ?? 0;
        expect(count).toBe(acked.length);
        // Spot-check through a single get as well (not only the range scan).
        expect(node.svc.read((tx) => tx.get<{ n: number }>(seenKey(acked[0]!)))?.n).toBe(1);
        expect(node.svc.failure).toBeUndefined();
      }
    } finally {
      await Promise.all(nodes.map((x) => x.close()));
    }
  }, 120_000);
});
