// Shared pieces of the metadata cluster tests (etcd-cluster, kill-restart, sim-etcd): a test-only
// command family whose double application would be visible, and a "node" = EtcdLog or LocalLog +
// LmdbStateStore + StateMachine + MetaService wired the way a server process wires them.
import { limits } from '../../src/base/limits.js';
import { EtcdLog } from '../../src/log/etcd.js';
import { LocalLog } from '../../src/log/local.js';
import type { ReplicatedLog, SnapshotStore } from '../../src/log/spi.js';
import { metaHandlers } from '../../src/meta/families/index.js';
import { key } from '../../src/meta/keys.js';
import { MetaService, type MetaLogger } from '../../src/meta/service.js';
import { StateMachine } from '../../src/meta/state-machine.js';
import { LmdbStateStore, MemoryStateStore, type StateStore } from '../../src/meta/store.js';
import { fail, ok, type HandlerTable, type ReadTx } from '../../src/meta/tx.js';

export const seenKey = (id: string): Buffer => key('test', 'seen', id);
export const COUNT_KEY = key('test', 'count');

/**
 * test.incr { id }: increments key('test','seen',id).n and the global counter key('test','count').n.
 * A command applied twice leaves n = 2 (the state machine's dedup must prevent it).
 */
export const testHandlers: HandlerTable = {
  'test.incr': (tx, c) => {
    const id = c.id;
    if (typeof id !== 'string' || id.length === 0 || id.length > 64 || id.includes('\0')) return fail('invalid', 'test.incr: bad id');
    const k = seenKey(id);
    const rec = tx.get<{ n: number }>(k) ?? { n: 0 };
    rec.n++;
    tx.put(k, rec);
    const total = tx.get<{ n: number }>(COUNT_KEY) ?? { n: 0 };
    total.n++;
    tx.put(COUNT_KEY, total);
    return ok(rec.n);
  },
};

export const allHandlers: HandlerTable[] = [...metaHandlers, testHandlers];

/** Every test.incr record: id -> n. */
export function seenIds(read: (fn: (tx: ReadTx) => Map<string, number>) => Map<string, number>): Map<string, number> {
  return read((tx) => {
    const out = new Map<string, number>();
    const prefix = key('test', 'seen');
    for (const [k, v] of tx.range<{ n: number }>(prefix)) {
      // key layout: 0x02 'test' 0 0x02 'seen' 0 0x02 id 0
      const id = k.subarray(prefix.length + 1, k.length - 1).toString('utf8');
      out.set(id, v.n);
    }
    return out;
  });
}

/**
 * A log that counts the batches delivered to its subscribers (how many batches a node replays at
 * start, and how long a history is).
 */
export function countingLog(inner: ReplicatedLog): ReplicatedLog & { readonly delivered: number; readonly positions: number[] } {
  let delivered = 0;
  const positions: number[] = [];
  return {
    backend: inner.backend,
    get delivered() {
      return delivered;
    },
    positions,
    append: (entries) => inner.append(entries),
    subscribe: (after, onBatch, onError) =>
      inner.subscribe(
        after,
        (b) => {
          delivered++;
          positions.push(b.position);
          return onBatch(b);
        },
        onError,
      ),
    readIndex: () => inner.readIndex(),
    compactedThrough: () => inner.compactedThrough(),
    compact: (through) => inner.compact(through),
    close: () => inner.close(),
  };
}

/**
 * Commits every `every`-th append twice (the second copy right after the first), as a backend may
 * after re-sending a batch whose first attempt had landed (src/log/spi.ts, "Duplication"). Resolves
 * with the second copy's position. `doubled` counts the appends committed twice.
 */
export function duplicatingLog(inner: ReplicatedLog, every: number): ReplicatedLog & { readonly doubled: number } {
  let n = 0;
  let doubled = 0;
  return {
    backend: inner.backend,
    get doubled() {
      return doubled;
    },
    append: async (entries) => {
      if (++n % every !== 0) return inner.append(entries);
      await inner.append(entries);
      doubled++;
      return inner.append(entries);
    },
    subscribe: (after, onBatch, onError) => inner.subscribe(after, onBatch, onError),
    readIndex: () => inner.readIndex(),
    compactedThrough: () => inner.compactedThrough(),
    compact: (through) => inner.compact(through),
    close: () => inner.close(),
  };
}

export interface TestNode {
  readonly id: string;
  /** Applied position of the state store when it was opened (before catching up with the log). */
  readonly openedAt: number;
  /** Batches delivered to this node so far (catch-up included). */
  readonly delivered: () => number;
  /** Positions of the batches delivered to this node, in delivery order. */
  readonly positions: readonly number[];
  /** The backend log (EtcdLog or LocalLog) under the wrappers. */
  readonly inner: ReplicatedLog;
  /** Appends committed twice on purpose (duplicateEvery). */
  readonly doubled: () => number;
  readonly svc: MetaService;
  readonly log: ReplicatedLog;
  readonly store: StateStore;
  readonly machine: StateMachine;
  /** Records of the service's logger (info and warn messages, e.g. 'meta: restored state snapshot'). */
  readonly events: { level: string; msg: string; obj: object }[];
  /** Closes the service (without node.leave unless asked), then the log and the store. */
  close(opts?: { leave?: boolean }): Promise<void>;
}

export interface NodeOptions {
  id: string;
  clusterId: string;
  /** etcd: endpoints in this node's preferred order, and the log's key prefix. */
  etcd?: { endpoints: string[]; prefix: string; appendDeadlineMs?: number; attemptMs?: number };
  /** Local log directory (single node). */
  localLogDir?: string;
  /** LMDB state directory; without one, a MemoryStateStore. */
  stateDir?: string;
  snapshots?: SnapshotStore;
  proposeDeadlineMs?: number;
  retryDelayMs?: number;
  /** Node lease; 0 (default here) disables renewals so an idle cluster's position stays put. */
  nodeLeaseMs?: number;
  /** Commit every n-th append twice (duplicatingLog). */
  duplicateEvery?: number;
  /** Where the service's log messages go (default: a fresh array on the node). */
  events?: TestNode['events'];
}

export function recordingLogger(events: TestNode['events']): MetaLogger {
  const push = (level: string) => (obj: object, msg?: string) => {
    events.push({ level, msg: msg ?? '', obj });
    if (events.length > 10_000) events.splice(0, 5_000);
  };
  return { info: push('info'), warn: push('warn'), error: push('error') };
}

export async function openNode(o: NodeOptions): Promise<TestNode> {
  const inner: ReplicatedLog = o.etcd
    ? await EtcdLog.open({
        endpoints: o.etcd.endpoints,
        prefix: o.etcd.prefix,
        ...(o.etcd.appendDeadlineMs !== undefined ? { appendDeadlineMs: o.etcd.appendDeadlineMs } : {}),
        ...(o.etcd.attemptMs !== undefined ? { attemptMs: o.etcd.attemptMs } : {}),
      })
    : await LocalLog.open({ dir: o.localLogDir! });
  const dup = o.duplicateEvery !== undefined ? duplicatingLog(inner, o.duplicateEvery) : undefined;
  const log = countingLog(dup ?? inner);
  let store: StateStore;
  try {
    store = o.stateDir !== undefined ? LmdbStateStore.open(o.stateDir) : new MemoryStateStore();
  } catch (err) {
    await inner.close().catch(() => {});
    throw err;
  }
  const openedAt = store.position();
  const machine = StateMachine.open({ store, handlers: allHandlers });
  const events: TestNode['events'] = o.events ?? [];
  let svc: MetaService;
  try {
    svc = await MetaService.start({
      log,
      machine,
      nodeId: o.id,
      clusterId: o.clusterId,
      logger: recordingLogger(events),
      nodeLeaseMs: o.nodeLeaseMs ?? 0,
      proposeDeadlineMs: o.proposeDeadlineMs ?? limits.metaProposeDeadlineMs,
      ...(o.retryDelayMs !== undefined ? { retryDelayMs: o.retryDelayMs } : {}),
      ...(o.snapshots ? { snapshots: o.snapshots } : {}),
    });
  } catch (err) {
    await log.close().catch(() => {});
    await store.close().catch(() => {});
    throw err;
  }
  let closing: Promise<void> | undefined;
  return {
    id: o.id,
    openedAt,
    delivered: () => log.delivered,
    positions: log.positions,
    doubled: () => dup?.doubled ?? 0,
    inner,
    svc,
    log,
    store,
    machine,
    events,
    close(opts = {}) {
      closing ??= (async () => {
        await svc.close(opts);
        await log.close();
        await store.close();
      })();
      return closing;
    },
  };
}

/**
 * Barrier on every node until they all report the same applied position (a proposal committed
 * between two barriers moves it; repeat), then returns their state hashes.
 */
export async function converge(nodes: readonly { svc: MetaService }[], timeoutMs = 30_000): Promise<{ position: number; hash: string }[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    await Promise.all(nodes.map((n) => n.svc.barrier()));
    const hs = nodes.map((n) => n.svc.stateHash());
    if (hs.every((h) => h.position === hs[0]!.position)) return hs;
    if (Date.now() > deadline) return hs;
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
