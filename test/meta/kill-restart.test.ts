// A metadata node in a child process (node-child.ts) SIGKILLed mid-run, several times, and started
// again on the same directories, with the local log and with a real 3-member etcd. Asserted:
// (a) a restarted node resumes from its LMDB state: applied position at open > 0, and the batches it
//     replays are few compared with the whole history (both printed);
// (b) no acknowledged write is lost: every name acknowledged before a kill is in the killed node's
//     LMDB state right after the kill, and in the restarted node's state at the end;
// (c) the restarted node converges: the same state hash as an independent replica (local: a fresh
//     in-memory machine replaying the whole LocalLog; etcd: a second node in this process);
// and, with etcd, the compaction case: while the child is dead the in-process node snapshots and
// compacts etcd past the child's state, so the restarted child must restore the snapshot.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalLog } from '../../src/log/local.js';
import { DirectorySnapshotStore } from '../../src/log/snapshot-dir.js';
import { direntKey } from '../../src/meta/families/ns-records.js';
import { StateMachine } from '../../src/meta/state-machine.js';
import { LmdbStateStore, MemoryStateStore } from '../../src/meta/store.js';
import { startEtcdCluster, type EtcdCluster } from '../helpers/etcd-cluster.js';
import { allHandlers, openNode, sleep, type TestNode } from './cluster-node.js';
import type { ChildConfig } from './node-child.js';

const here = dirname(fileURLToPath(import.meta.url));
const childScript = join(here, 'node-child.ts');

interface Child {
  readonly proc: ChildProcess;
  readonly acks: string[];
  readonly lines: string[];
  openedAt: number | undefined;
  started: { position: number; replayed: number; root: number } | undefined;
  hash: { position: number; hash: string } | undefined;
  readonly exited: Promise<number | null>;
  stderr: () => string;
  /** Resolves once pred() holds (checked after every line); rejects if the child exits first. */
  until(what: string, pred: () => boolean, ms?: number): Promise<void>;
}

const children = new Set<ChildProcess>();

function startChild(cfg: ChildConfig): Child {
  const proc = spawn(process.execPath, ['--import', 'tsx', childScript, JSON.stringify(cfg)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(proc);
  let err = '';
  proc.stderr!.on('data', (d: Buffer) => {
    err += d.toString();
    if (err.length > 20_000) err = err.slice(-10_000);
  });
  const waiters = new Set<() => void>();
  const c: Child = {
    proc,
    acks: [],
    lines: [],
    openedAt: undefined,
    started: undefined,
    hash: undefined,
    exited: new Promise((resolve) =>
      proc.once('exit', (code) => {
        children.delete(proc);
        resolve(code);
        for (const w of waiters) w();
      }),
    ),
    stderr: () => err,
    until(what, pred, ms = 60_000) {
      return new Promise<void>((resolve, reject) => {
        const check = (): void => {
          if (pred()) {
            done();
            resolve();
          } else if (proc.exitCode !== null || proc.signalCode !== null) {
            done();
            reject(new Error(`child exited (${proc.exitCode ?? proc.signalCode}) before ${what}:\n${c.lines.slice(-5).join('\n')}\n${err}`));
          }
        };
        const timer = setTimeout(() => {
          done();
          reject(new Error(`timed out waiting for ${what}:\n${c.lines.slice(-5).join('\n')}\n${err}`));
        }, ms);
        const done = (): void => {
          clearTimeout(timer);
          waiters.delete(check);
        };
        waiters.add(check);
        check();
      });
    },
  };
  const rl = createInterface({ input: proc.stdout! });
  rl.on('line', (line) => {
    const sp = line.split(' ');
    if (sp[0] === 'ack') c.acks.push(sp[1]!);
    else {
      c.lines.push(line);
      if (sp[0] === 'open') c.openedAt = Number(sp[1]);
      else if (sp[0] === 'started') c.started = { position: Number(sp[1]), replayed: Number(sp[2]), root: Number(sp[3]) };
      else if (sp[0] === 'hash') c.hash = { position: Number(sp[1]), hash: sp[2]! };
    }
    for (const w of [...waiters]) w();
  });
  return c;
}

async function killChild(c: Child): Promise<void> {
  process.kill(c.proc.pid!, 'SIGKILL');
  await c.exited;
}

/** Opens a (dead) node's LMDB state directly: its position and which of `names` are missing. */
async function inspectState(stateDir: string, root: number, names: readonly string[]): Promise<{ position: number; missing: string[] }> {
  const store = LmdbStateStore.open(stateDir);
  try {
    const sm = StateMachine.open({ store, handlers: allHandlers });
    const missing = sm.read((tx) => names.filter((n) => tx.get(direntKey(root, n)) === undefined));
    return { position: sm.appliedPosition, missing };
  } finally {
    await store.close();
  }
}

let root: string;
beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'tessera-kill-restart-'));
});
afterAll(() => {
  for (const p of children) if (p.pid !== undefined) p.kill('SIGKILL');
  if (root) rmSync(root, { recursive: true, force: true });
});

describe('metadata node killed and restarted (child process)', () => {
  it('local log: SIGKILL x4 mid-run, resumes from LMDB, loses no acknowledged name, matches a full replay', async () => {
    const dir = join(root, 'local');
    const base: Omit<ChildConfig, 'tag'> = { mode: 'local', nodeId: 'solo', clusterId: 'kr-local', stateDir: join(dir, 'state'), logDir: join(dir, 'log') };
    const acked: string[] = [];
    let rootIno = 0;
    const killAfter = [400, 900, 250, 1300];
    for (let round = 0; round < killAfter.length; round++) {
      const c = startChild({ ...base, tag: `r${round}` });
      await c.until('start', () => c.started !== undefined);
      const s = c.started!;
      rootIno = s.root;
      console.log(`[kill-restart local] round ${round}: state at open ${c.openedAt}, replayed ${s.replayed} batches, history ${s.position} batches`);
      if (round > 0) {
        expect(c.openedAt).toBeGreaterThan(0);
        // The local log's positions are contiguous: a node that resumed from its state replays only
        // the batches after it (those committed but not applied before the kill, and its own join).
        expect(s.replayed).toBeLessThanOrEqual(s.position - c.openedAt!);
        expect(s.replayed).toBeLessThan(s.position / 2);
      }
      await c.until(`${killAfter[round]} acks`, () => c.acks.length >= killAfter[round]!);
      await killChild(c);
      acked.push(...c.acks);
      // Acknowledged = applied by this node, whose LMDB commits are synchronous: all of it is there.
      const st = await inspectState(base.stateDir, rootIno, acked);
      expect(st.missing).toEqual([]);
      console.log(`[kill-restart local] round ${round}: killed after ${c.acks.length} acks; state at position ${st.position}`);
    }

    // Last run: a fixed number of names, a barrier, the state hash, a clean exit.
    const last = startChild({ ...base, tag: 'final', count: 300 });
    await last.until('hash', () => last.hash !== undefined);
    expect(await last.exited).toBe(0);
    expect(last.openedAt).toBeGreaterThan(0);
    expect(last.acks.length).toBe(300);
    acked.push(...last.acks);
    const st = await inspectState(base.stateDir, rootIno, acked);
    expect(st.missing).toEqual([]);
    expect(st.position).toBe(last.hash!.position);

    // An independent replica: a fresh in-memory machine replaying the whole log.
    const log = await LocalLog.open({ dir: base.logDir! });
    try {
      expect(await log.readIndex()).toBe(last.hash!.position);
      const replica = StateMachine.open({ store: new MemoryStateStore(), handlers: allHandlers });
      let failure: Error | undefined;
      const sub = log.subscribe(
        0,
        (b) => void replica.applyBatch(b),
        (e) => (failure = e),
      );
      const deadline = Date.now() + 30_000;
      while (replica.appliedPosition < last.hash!.position && failure === undefined && Date.now() < deadline) await sleep(5);
      await sub.close();
      expect(failure).toBeUndefined();
      expect(replica.appliedPosition).toBe(last.hash!.position);
      expect(replica.hash()).toBe(last.hash!.hash);
      console.log(`[kill-restart local] ${acked.length} names acknowledged over 5 runs; full replay of ${last.hash!.position} batches matches`);
    } finally {
      await log.close();
    }
  }, 120_000);

  describe('etcd', () => {
    let cluster: EtcdCluster;
    beforeAll(async () => {
      cluster = await startEtcdCluster({ members: 3, name: 'killrestart' });
    });
    afterAll(async () => {
      await cluster?.stop();
    });

    it('SIGKILL x3 with an in-process peer, then a snapshot + compaction while the child is dead: restore, converge', async () => {
      const dir = join(root, 'etcd');
      const prefix = `/tessera-test/${process.pid}-${Date.now()}/kill-restart`;
      const snapDir = join(dir, 'snapshots');
      const base: Omit<ChildConfig, 'tag'> = {
        mode: 'etcd',
        nodeId: 'n1',
        clusterId: 'kr-etcd',
        stateDir: join(dir, 'n1'),
        endpoints: cluster.endpoints,
        prefix,
        snapDir,
      };
      // The peer prefers the members in the reverse order.
      const peer: TestNode = await openNode({
        id: 'n2',
        clusterId: 'kr-etcd',
        stateDir: join(dir, 'n2'),
        etcd: { endpoints: [...cluster.endpoints].reverse(), prefix },
        snapshots: await DirectorySnapshotStore.open(snapDir),
      });
      let peerStop = false;
      let load: Promise<void> = Promise.resolve();
      try {
        const mk = await peer.svc.propose({ t: 'ns.mkroot', share: 'kr', now: Date.now() });
        if (!mk.ok) throw new Error(`ns.mkroot refused: ${mk.message}`);
        const rootIno = (mk.value as { ino: number }).ino;
        // The peer creates names of its own throughout (2 in flight, about 80 a second) so the child
        // has others' batches to catch up with.
        const peerAcked: string[] = [];
        let peerSeq = 0;
        const peerErrors: string[] = [];
        const peerLoad = (): Promise<void> =>
          Promise.all(
            Array.from({ length: 2 }, async () => {
              while (!peerStop) {
                await sleep(25);
                const name = `peer-${peerSeq++}`;
                try {
                  const r = await peer.svc.propose({ t: 'ns.create', parent: rootIno, name, kind: 'file', attributes: 0x20, now: Date.now() });
                  if (r.ok) peerAcked.push(name);
                  else peerErrors.push(`${name}: ${r.code}`);
                } catch (err) {
                  peerErrors.push(`${name}: ${(err as Error).message}`);
                  if (peer.svc.failure) return;
                }
              }
            }),
          ).then(() => undefined);
        load = peerLoad();

        const acked: string[] = [];
        const killAfter = [500, 300, 800];
        for (let round = 0; round < killAfter.length; round++) {
          const c = startChild({ ...base, tag: `r${round}` });
          await c.until('start', () => c.started !== undefined);
          await peer.svc.waitApplied(c.started!.position);
          const history = peer.positions.filter((p) => p <= c.started!.position).length;
          const newer = peer.positions.filter((p) => p > c.openedAt! && p <= c.started!.position).length;
          console.log(
            `[kill-restart etcd] round ${round}: state at open ${c.openedAt}, replayed ${c.started!.replayed} batches ` +
              `(${newer} committed after that state), history ${history} batches`,
          );
          if (round > 0) {
            expect(c.openedAt).toBeGreaterThan(0);
            // Only batches after its own state (the peer kept writing while it was dead), not the history.
            expect(c.started!.replayed).toBeLessThanOrEqual(newer);
            expect(c.started!.replayed).toBeLessThan(history);
          }
          await c.until(`${killAfter[round]} acks`, () => c.acks.length >= killAfter[round]!);
          await killChild(c);
          acked.push(...c.acks);
          const st = await inspectState(base.stateDir, rootIno, acked);
          expect(st.missing).toEqual([]);
        }

        // Compaction while the child is dead: the peer goes on, snapshots and compacts etcd past the
        // child's state, so the child cannot catch up from the log alone.
        const before = (await inspectState(base.stateDir, rootIno, [])).position;
        const target = peerAcked.length + 100;
        while (peerAcked.length < target) await sleep(10);
        peerStop = true;
        await load;
        const snapAt = await peer.svc.snapshotNow();
        expect(snapAt).toBeGreaterThan(before);
        expect(await peer.inner.compactedThrough()).toBe(snapAt);
        peerStop = false;
        load = peerLoad();

        const c = startChild({ ...base, tag: 'after-compaction' });
        await c.until('start', () => c.started !== undefined);
        const restored = c.lines.find((l) => l.startsWith('event meta: restored state snapshot'));
        console.log(
          `[kill-restart etcd] child state at ${before}, peer snapshot + compaction at ${snapAt}; restarted child: ` +
            `${restored ?? 'NO RESTORE'}; replayed ${c.started!.replayed} batches`,
        );
        expect(restored).toBeDefined();
        expect(c.openedAt).toBe(before);
        await c.until('400 acks', () => c.acks.length >= 400);
        await killChild(c);
        acked.push(...c.acks);
        expect((await inspectState(base.stateDir, rootIno, acked)).missing).toEqual([]);

        // Final run: the peer idle, the child creates 300 names, barriers and reports its hash.
        peerStop = true;
        await load;
        const last = startChild({ ...base, tag: 'final', count: 300 });
        await last.until('hash', () => last.hash !== undefined);
        expect(await last.exited).toBe(0);
        acked.push(...last.acks);
        await peer.svc.barrier();
        const ph = peer.svc.stateHash();
        expect(ph.position).toBe(last.hash!.position);
        expect(ph.hash).toBe(last.hash!.hash);
        expect(peerErrors).toEqual([]);
        const all = [...acked, ...peerAcked];
        expect(peer.svc.read((tx) => all.filter((n) => tx.get(direntKey(rootIno, n)) === undefined))).toEqual([]);
        expect((await inspectState(base.stateDir, rootIno, all)).missing).toEqual([]);
        console.log(
          `[kill-restart etcd] converged at ${ph.position}: ${acked.length} child names over 5 runs, ${peerAcked.length} peer names`,
        );
      } finally {
        peerStop = true;
        await load;
        await peer.close();
      }
    }, 150_000);
  });
});
