// Seeded run of the metadata service on the real local backend (LMDB log + LMDB state): random
// command streams with crashes (the service, the log and the state store dropped mid-flight and
// reopened from disk), snapshots to a directory and log compaction. At the end the node's
// materialised state equals that of an independent replica that restores the latest snapshot and
// replays the log, at the same position. The seed reproduces the command stream and the crash
// schedule (LMDB's fsync timing still decides how appends group into batches).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { LocalLog } from '../../src/log/local.js';
import { DirectorySnapshotStore } from '../../src/log/snapshot-dir.js';
import { metaHandlers } from '../../src/meta/families/index.js';
import { MetaError, MetaService } from '../../src/meta/service.js';
import { StateMachine } from '../../src/meta/state-machine.js';
import { LmdbStateStore, MemoryStateStore } from '../../src/meta/store.js';
import type { Command } from '../../src/meta/tx.js';
import { Prng, simSeeds } from '../helpers/prng.js';
import { learn, randomCommand, type GenContext } from './gen.js';

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function runLocal(seed: number, steps: number): Promise<void> {
  const r = new Prng(seed);
  const dir = await mkdtemp(join(tmpdir(), `tessera-sim-local-${seed}-`));
  dirs.push(dir);
  const snapshots = await DirectorySnapshotStore.open(join(dir, 'snapshots'));
  const handlers = metaHandlers;
  let log: LocalLog;
  let store: LmdbStateStore;
  let svc: MetaService;
  const gen: GenContext = { node: 'solo', inc: 0, now: Date.now(), openIds: [] };
  // Independent replica, live from position 0: applies every committed batch into memory through its
  // own subscription (re-attached after each crash), never touching the node's LMDB state.
  const replica = StateMachine.open({ store: new MemoryStateStore(), handlers });
  let replicaErr: unknown;
  let replicaSub: { close(): Promise<void> } | undefined;
  const attachReplica = () => {
    replicaSub = log.subscribe(replica.appliedPosition, (b) => void replica.applyBatch(b), (err) => (replicaErr = err));
  };
  const replicaCaughtUp = async (position: number) => {
    while (replica.appliedPosition < position) {
      if (replicaErr) throw replicaErr;
      await new Promise((res) => setTimeout(res, 1));
    }
  };
  const open = async () => {
    log = await LocalLog.open({ dir: join(dir, 'log') });
    attachReplica();
    store = LmdbStateStore.open(join(dir, 'state'));
    svc = await MetaService.start({ log, machine: StateMachine.open({ store, handlers }), nodeId: 'solo', clusterId: 'sim-local', snapshots, nodeLeaseMs: 0 });
    gen.inc = svc.membership.incarnation;
    gen.openIds = [];
  };
  const crash = async () => {
    // Drop everything without a clean leave; in-flight proposals fail with 'closed'.
    await svc.close();
    await replicaSub?.close();
    await log.close();
    await store.close();
  };
  await open();
  const inflight = new Set<Promise<unknown>>();
  let crashes = 0;
  let window = 4;
  let snaps = 0;
  for (let step = 0; step < steps; step++) {
    const e = r.int(1000);
    if (e < 6) {
      await crash();
      crashes++;
      await open();
    } else if (e < 8) {
      await Promise.all(inflight);
      await replicaCaughtUp(svc!.appliedPosition); // the replica must not fall behind compaction
      await svc!.snapshotNow();
      snaps++;
    } else {
      gen.now = Date.now();
      const cmd: Command = randomCommand(r, gen);
      const p = svc!.propose(cmd).then(
        (res) => res.ok && learn(gen, cmd, res.value),
        (err: unknown) => {
          if (!(err instanceof MetaError && err.kind === 'closed')) throw err;
        },
      );
      const t = p.finally(() => inflight.delete(t));
      inflight.add(t);
      if (inflight.size >= window) await Promise.race(inflight);
      if (r.chance(0.01)) window = r.pick([1, 4, 64]);
    }
  }
  await Promise.all(inflight);
  await svc!.barrier();
  const mine = svc!.stateHash();

  await replicaCaughtUp(mine.position);
  const snap = await snapshots.latest();
  expect(replica.appliedPosition).toBe(mine.position);
  expect(replica.hash(), `seed ${seed}: node and replica differ at ${mine.position}`).toBe(mine.hash);
  console.log(`sim-local seed ${seed}: position ${mine.position}, crashes ${crashes}, snapshots ${snaps}, snapshot at ${snap?.position ?? 'none'}`);
  await crash();
}

describe('seeded run on the local backend (LMDB log and state, crashes, snapshots)', () => {
  for (const seed of simSeeds(Number(process.env.SIM_SEEDS ?? 2), 2000)) {
    it(`seed ${seed}`, async () => {
      try {
        await runLocal(seed, 4000);
      } catch (err) {
        console.error(`sim-local failed: reproduce with SIM_SEED=${seed} npx vitest run test/meta/sim-local.test.ts`);
        throw err;
      }
    });
  }
});
