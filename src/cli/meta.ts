// Wiring of the metadata backend every server runs: replicated log (local LMDB or etcd) + LMDB state
// machine + MetaService. Chunked shares keep their namespace and extent maps in it; every share keeps
// its open table there (issue 4: opens, share modes, oplocks, leases, locks, durable handles).

import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { EtcdLog } from '../log/etcd.js';
import { LocalLog } from '../log/local.js';
import type { ReplicatedLog, SnapshotStore } from '../log/spi.js';
import { metaHandlers } from '../meta/families/index.js';
import { MetaService } from '../meta/service.js';
import { StateMachine } from '../meta/state-machine.js';
import { LmdbStateStore } from '../meta/store.js';
import type { MetaConfig } from './config.js';

/** Default etcd key prefix of a cluster's log. */
export const etcdPrefixOf = (clusterId: string): string => `/tessera/${clusterId}`;

export function describeMeta(m: MetaConfig, clusterId: string): string {
  return m.kind === 'local' ? `local://${m.dir}` : `etcd://${m.endpoints.map((e) => e.replace(/^https?:\/\//, '')).join(',')}${m.prefix ?? etcdPrefixOf(clusterId)}`;
}

/** Local directory of the LMDB state machine for this metadata backend. */
export function stateDirOf(c: { meta: MetaConfig; stateDir: string; clusterId: string }): string {
  if (c.meta.kind === 'local') return join(c.meta.dir, 'state');
  // One state per etcd log (prefix): a state applied from another log must never be reused. The
  // encoded prefix starts with %2F, so it is never '.' or '..'.
  return join(c.stateDir, 'etcd-state', encodeURIComponent(c.meta.prefix ?? etcdPrefixOf(c.clusterId)));
}

export interface MetaBackend {
  readonly meta: MetaService;
  /** Directory of the LMDB state. */
  readonly stateDir: string;
  /** Service (with node.leave), log, state store. */
  close(): Promise<void>;
}

export async function openMetaBackend(
  c: { meta: MetaConfig; stateDir: string; nodeId: string; clusterId: string },
  log: Logger,
  snapshots?: SnapshotStore,
): Promise<MetaBackend> {
  const undo: (() => Promise<void>)[] = [];
  const unwind = async (): Promise<void> => {
    for (const f of undo.splice(0).reverse()) await f().catch((err: unknown) => log.warn({ err }, 'metadata backend: close failed'));
  };
  try {
    let rlog: ReplicatedLog;
    if (c.meta.kind === 'local') {
      mkdirSync(c.meta.dir, { recursive: true });
      rlog = await LocalLog.open({ dir: join(c.meta.dir, 'log') });
    } else {
      rlog = await EtcdLog.open({ endpoints: c.meta.endpoints, prefix: c.meta.prefix ?? etcdPrefixOf(c.clusterId) });
    }
    undo.push(() => rlog.close());
    const stateDir = stateDirOf(c);
    mkdirSync(stateDir, { recursive: true });
    const state = LmdbStateStore.open(stateDir);
    undo.push(() => state.close());
    const machine = StateMachine.open({ store: state, handlers: metaHandlers });
    const meta = await MetaService.start({
      log: rlog,
      machine,
      nodeId: c.nodeId,
      clusterId: c.clusterId,
      logger: log.child({ part: 'meta' }),
      // A single node on the local log compacts behind its durable state; with etcd, snapshots go to
      // the given store (the chunked backend's object store) and etcd is compacted behind them.
      ...(c.meta.kind === 'local' ? { compactLocally: true } : snapshots !== undefined ? { snapshots } : {}),
    });
    undo.push(() => meta.close({ leave: true }));
    let closing: Promise<void> | undefined;
    return { meta, stateDir, close: () => (closing ??= unwind()) };
  } catch (err) {
    await unwind();
    throw err;
  }
}
