// The metadata service: what the server and the drivers call. It proposes commands through the
// replicated log, applies every committed batch (its own and other nodes') to the local state
// machine in log order, and answers a proposer once its own node has applied the command
// (ARCHITECTURE.md: "a proposer answers the client once its own node has applied the command").
//
//   propose(cmd)        -> the command's deterministic result (ok or a refusal such as 'exists')
//   barrier()           -> resolves once everything committed before the call is applied here
//   read(fn)            -> local read (may lag other nodes); linearizableRead(fn) = barrier + read
//   watch(prefix, cb)   -> cb(keys, position, values) after each applied batch that changed keys under prefix
//   snapshotNow()       -> state snapshot to the snapshot store, log history compacted behind it
//
// Exactly-once: every entry carries (node, incarnation, seq, watermark). A proposal whose append
// fails ambiguously is re-sent with the same seq until its deadline; the state machine applies a
// seq at most once. When the deadline passes, the proposal is abandoned: later entries carry a
// watermark above its seq, after which the state machine refuses it forever; the caller learns the
// definite outcome (applied -> its result; refused -> MetaError 'unavailable'), never a guess.
//
// Fencing: a node joins with a new incarnation (node.join); the state machine refuses entries of
// older incarnations ('stale'), so a restarted process never has its predecessor's leftovers applied,
// and two processes with one node id cannot both serve (the second join supersedes the first, whose
// next proposal is refused and which stops: MetaError 'fenced').
import type { Clock } from '../base/clock.js';
import { systemClock } from '../base/clock.js';
import { limits } from '../base/limits.js';
import { LogError, type LogBatch, type LogSubscription, type ReplicatedLog, type SnapshotStore } from '../log/spi.js';
import { RECORD_VERSION } from './codec.js';
import { encodeEntry } from './entry.js';
import { MetaVersionError, type ApplyOutcome, type StateMachine } from './state-machine.js';
import type { Command, CommandResult, ReadTx } from './tx.js';
import { getCluster, getNode } from './families/cluster.js';

export type MetaErrorKind =
  /** The command could not be committed before its deadline (definitely not applied). */
  | 'unavailable'
  /** This node's incarnation was superseded (another process joined with the same node id). */
  | 'fenced'
  /** The cluster runs a different record version; this node refuses to join or continue. */
  | 'version-mismatch'
  /** The service is closed or failed. */
  | 'closed'
  /** Too many proposals in flight. */
  | 'busy';

export class MetaError extends Error {
  readonly kind: MetaErrorKind;
  constructor(kind: MetaErrorKind, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.kind = kind;
    this.name = 'MetaError';
  }
}

/** Structural logger (pino satisfies it). */
export interface MetaLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

const silentLogger: MetaLogger = { info() {}, warn() {}, error() {} };

export interface MetaServiceOptions {
  log: ReplicatedLog;
  machine: StateMachine;
  /** Node identity (stable across restarts of the same node). */
  nodeId: string;
  /** Name of the cluster; a node refuses a cluster record with another id. */
  clusterId: string;
  address?: string;
  /** Where snapshots go; without one, history is compacted only behind durable local state (local log). */
  snapshots?: SnapshotStore;
  /**
   * Take a snapshot (and compact) after this many applied batches; 0 = only on snapshotNow().
   * Defaults to limits.metaSnapshotEveryBatches when a snapshot store is given or compactLocally is
   * set, else 0 (the log keeps all history).
   */
  snapshotEveryBatches?: number;
  /** Compact the log behind durable local state without a snapshot store (single-node local log). */
  compactLocally?: boolean;
  clock?: Clock;
  logger?: MetaLogger;
  /** How long a proposal may take, retries included. */
  proposeDeadlineMs?: number;
  /** Node lease length; renewed every third of it. 0 disables renewal (tests). */
  nodeLeaseMs?: number;
  /** Pause before re-sending a failed append (0: next event-loop turn, for the deterministic simulation). */
  retryDelayMs?: number;
  /** Record version this node runs (tests override to check refusal). */
  recordVersion?: number;
}

interface Pending {
  seq: number;
  inc: number;
  cmd: Command;
  resolve: (r: CommandResult) => void;
  reject: (e: Error) => void;
  deadline: number;
  abandoned: boolean;
  sending: boolean;
}

/** keys: changed keys under the prefix, in byte order; values[i]: keys[i]'s record bytes after the batch (null: deleted). */
export type WatchCallback = (keys: Buffer[], position: number, values: (Buffer | null)[]) => void;
type Watcher = { prefix: Buffer; cb: WatchCallback };

export class MetaService {
  readonly nodeId: string;
  private readonly log: ReplicatedLog;
  private readonly machine: StateMachine;
  private readonly clock: Clock;
  private readonly logger: MetaLogger;
  private readonly opts: MetaServiceOptions;
  private readonly deadlineMs: number;
  private readonly recordVersion: number;

  private inc = 0;
  private epoch = 0;
  private nextSeq = 1;
  private readonly pending = new Map<number, Pending>();
  private queue: Pending[] = [];
  private flushScheduled = false;
  /** Highest watermark carried by one of our entries that has been applied. */
  private appliedWatermark = 0;
  private readonly positionWaiters: { position: number; resolve: () => void; reject: (e: Error) => void }[] = [];
  private readonly watchers = new Set<Watcher>();
  private sub: LogSubscription | undefined;
  private failed: Error | undefined;
  private closed = false;
  private renewTimer: NodeJS.Timeout | undefined;
  private batchesSinceSnapshot = 0;
  private snapshotting: Promise<void> | undefined;
  private readonly retryDelayMs: number;
  private applyQueue: LogBatch[] = [];
  private applyScheduled = false;
  private readonly applyWaiters: (() => void)[] = [];
  private restoring = false;

  private constructor(opts: MetaServiceOptions) {
    this.opts = opts;
    this.log = opts.log;
    this.machine = opts.machine;
    this.nodeId = opts.nodeId;
    this.clock = opts.clock ?? systemClock;
    this.logger = opts.logger ?? silentLogger;
    this.deadlineMs = opts.proposeDeadlineMs ?? limits.metaProposeDeadlineMs;
    this.recordVersion = opts.recordVersion ?? RECORD_VERSION;
    this.retryDelayMs = opts.retryDelayMs ?? limits.metaRetryDelayMs;
  }

  /**
   * Catches up with the log (restoring a snapshot if the log was compacted past the local state),
   * checks the cluster's record version, and joins with a new incarnation.
   */
  static async start(opts: MetaServiceOptions): Promise<MetaService> {
    const svc = new MetaService(opts);
    try {
      await svc.catchUp();
      await svc.join();
    } catch (err) {
      await svc.close();
      throw err;
    }
    return svc;
  }

  /** Incarnation and fencing epoch of this node's current membership. */
  get membership(): { incarnation: number; epoch: number } {
    return { incarnation: this.inc, epoch: this.epoch };
  }

  get appliedPosition(): number {
    return this.machine.appliedPosition;
  }

  /** The node lease length this service renews (0: leases disabled, nothing renewed; tests). */
  get nodeLeaseMs(): number {
    return this.opts.nodeLeaseMs ?? limits.metaNodeLeaseMs;
  }

  // ---- proposing ----

  /**
   * Proposes a command and resolves with its result as applied by this node. Refusals by the state
   * machine are results ({ ok: false, code }); MetaError rejects only for infrastructure failures.
   */
  propose(cmd: Command): Promise<CommandResult> {
    if (this.failed) return Promise.reject(this.failed);
    if (this.closed) return Promise.reject(new MetaError('closed', 'metadata service closed'));
    if (this.inc === 0) return Promise.reject(new MetaError('closed', 'metadata service not joined'));
    return this.enqueue(cmd, this.inc);
  }

  private enqueue(cmd: Command, inc: number): Promise<CommandResult> {
    if (this.pending.size >= limits.metaPendingProposalsMax) {
      return Promise.reject(new MetaError('busy', `more than ${limits.metaPendingProposalsMax} proposals in flight`));
    }
    return new Promise<CommandResult>((resolve, reject) => {
      const seq = this.nextSeq++;
      const p: Pending = {
        seq,
        inc,
        cmd,
        resolve,
        reject,
        deadline: this.clock.monotonicMs() + this.deadlineMs,
        abandoned: false,
        sending: false,
      };
      this.pending.set(seq, p);
      this.queue.push(p);
      this.scheduleFlush();
    });
  }

  /** Lowest seq whose outcome the proposer still waits for (abandoned ones excluded). */
  private watermark(): number {
    let w = this.nextSeq;
    for (const p of this.pending.values()) if (!p.abandoned && p.seq < w) w = p.seq;
    return w;
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    // One append per event-loop turn gathers the proposals made in that turn; the log backend
    // merges concurrent appends further (group commit).
    setImmediate(() => {
      this.flushScheduled = false;
      void this.flush();
    });
  }

  private async flush(): Promise<void> {
    if (this.queue.length === 0 || this.closed || this.failed) return;
    // The watermark is taken at send time: every seq below it is resolved (or abandoned).
    const w = this.watermark();
    const batch: Pending[] = [];
    const entries: Buffer[] = [];
    let bytes = 0;
    while (this.queue.length > 0) {
      const p = this.queue[0]!;
      if (!this.pending.has(p.seq)) {
        this.queue.shift(); // resolved meanwhile (applied by an earlier send)
        continue;
      }
      const e = encodeEntry({ v: this.recordVersion, n: this.nodeId, i: p.inc, s: p.seq, w: Math.min(w, p.seq), c: p.cmd });
      if (batch.length > 0 && bytes + e.length > limits.logBatchBytesMax - 4096) break;
      this.queue.shift();
      p.sending = true;
      batch.push(p);
      entries.push(e);
      bytes += e.length;
    }
    if (this.queue.length > 0) this.scheduleFlush();
    if (batch.length === 0) return;
    try {
      await this.log.append(entries);
    } catch (err) {
      const code = err instanceof LogError ? err.code : 'unknown';
      for (const p of batch) {
        p.sending = false;
        if (!this.pending.has(p.seq)) continue;
        if (code === 'closed' || code === 'too-large') {
          this.pending.delete(p.seq);
          p.reject(new MetaError(code === 'closed' ? 'closed' : 'unavailable', `log append failed: ${(err as Error).message}`, { cause: err }));
          continue;
        }
        this.retryOrAbandon(p, err as Error);
      }
      return;
    }
    for (const p of batch) p.sending = false;
    // Committed: the result arrives through the subscription (applyBatch), also for duplicates.
  }

  private retryOrAbandon(p: Pending, err: Error): void {
    if (this.clock.monotonicMs() < p.deadline && !this.closed) {
      this.logger.warn({ seq: p.seq, err: err.message }, 'meta: append failed, re-sending');
      const again = () => {
        if (!this.pending.has(p.seq)) return;
        this.queue.push(p);
        this.scheduleFlush();
      };
      if (this.retryDelayMs === 0) setImmediate(again);
      else setTimeout(again, this.retryDelayMs).unref();
      return;
    }
    // Abandon: later entries carry a watermark above p.seq, after which the state machine refuses
    // p forever. The outcome becomes definite when one of those entries is applied (see onApplied);
    // make sure one is sent even if nothing else is proposed.
    p.abandoned = true;
    this.logger.warn({ seq: p.seq, err: err.message }, 'meta: proposal abandoned after its deadline');
    if (!this.closed && !this.failed) void this.enqueue({ t: 'sys.noop' }, this.inc).catch(() => {});
  }

  // ---- applying ----

  private async catchUp(): Promise<void> {
    const compacted = await this.log.compactedThrough();
    if (compacted > this.machine.appliedPosition) await this.restoreLatest(compacted);
    this.subscribe();
    await this.barrier();
  }

  private subscribe(): void {
    this.sub = this.log.subscribe(
      this.machine.appliedPosition,
      (batch) => this.onBatch(batch),
      (err) => void this.onLogError(err),
    );
  }

  private async onLogError(err: LogError): Promise<void> {
    if (this.closed) return;
    if (err.code === 'compacted' && !this.restoring) {
      // Fell behind the compaction point: restore the latest snapshot, resume after it.
      this.restoring = true;
      try {
        await this.sub?.close();
        await this.restoreLatest(await this.log.compactedThrough());
        this.subscribe();
      } catch (e) {
        this.fail(e as Error);
      } finally {
        this.restoring = false;
      }
      return;
    }
    this.fail(err);
  }

  /**
   * Snapshots restored by this service so far: the whole state changed at once, without watch
   * notifications (a reader caching what watches keep current compares this too).
   */
  restoreCount = 0;

  private async restoreLatest(needAtLeast: number): Promise<void> {
    const snap = await this.opts.snapshots?.latest();
    if (!snap || snap.position < needAtLeast) {
      throw new MetaError(
        'unavailable',
        `log compacted through ${needAtLeast} but the latest snapshot covers ${snap?.position ?? 'nothing'}; cannot catch up`,
      );
    }
    const from = this.machine.appliedPosition;
    const pos = await this.machine.restore(snap.read());
    this.restoreCount++;
    this.logger.info({ from, to: pos, bytes: snap.bytes }, 'meta: restored state snapshot');
  }

  /**
   * Batches are queued and applied on the next event-loop turn, all that arrived meanwhile in one
   * store transaction (one sync): a burst, or a node catching up, costs one commit, not one each.
   */
  private onBatch(batch: LogBatch): void | Promise<void> {
    if (this.failed || this.closed) return;
    this.applyQueue.push(batch);
    if (!this.applyScheduled) {
      this.applyScheduled = true;
      setImmediate(() => this.drainApply());
    }
    // Backpressure: the log waits before delivering more once enough is queued.
    if (this.applyQueue.length >= limits.metaApplyQueueBatchesMax) {
      return new Promise<void>((resolve) => this.applyWaiters.push(resolve));
    }
  }

  private drainApply(): void {
    this.applyScheduled = false;
    if (this.failed || this.closed) {
      this.applyQueue = [];
      for (const w of this.applyWaiters.splice(0)) w();
      return;
    }
    // At most metaApplyEntriesPerCommitMax entries per transaction (bounds the event-loop stall).
    let n = 0;
    let entries = 0;
    while (n < this.applyQueue.length && (n === 0 || entries + this.applyQueue[n]!.entries.length <= limits.metaApplyEntriesPerCommitMax)) {
      entries += this.applyQueue[n]!.entries.length;
      n++;
    }
    const batches = this.applyQueue.splice(0, n);
    if (this.applyQueue.length > 0) {
      this.applyScheduled = true;
      setImmediate(() => this.drainApply());
    } else {
      for (const w of this.applyWaiters.splice(0)) w();
    }
    let outs: ApplyOutcome[];
    try {
      outs = this.machine.applyBatches(batches);
    } catch (err) {
      const at = `${batches[0]!.position}..${batches[batches.length - 1]!.position}`;
      if (err instanceof MetaVersionError) {
        this.fail(new MetaError('version-mismatch', `cannot apply positions ${at}: ${err.message}`, { cause: err }));
      } else {
        this.fail(err as Error);
      }
      return;
    }
    for (const out of outs) {
      this.onApplied(out);
      if (this.failed) return;
    }
  }

  private onApplied(out: ApplyOutcome): void {
    for (const r of out.results) {
      if (r.node !== this.nodeId) continue;
      const p = this.pending.get(r.seq);
      if (r.inc !== this.inc) {
        // The join of a new incarnation (before this.inc is set) is resolved here too.
        if (p && r.result !== 'duplicate' && r.result !== 'stale' && r.inc === this.joiningInc) {
          this.pending.delete(r.seq);
          p.resolve(r.result);
        }
        continue;
      }
      if (r.result === 'duplicate') continue; // an earlier copy already resolved it
      if (r.result === 'stale') {
        this.fail(new MetaError('fenced', `node ${this.nodeId} incarnation ${this.inc} was superseded`));
        return;
      }
      if (!p) continue;
      this.pending.delete(r.seq);
      p.resolve(r.result);
    }
    if (this.inc > 0 && out.results.some((r) => r.node === this.nodeId)) {
      // This node's dedup record as the batch left it (no read of the state per batch).
      const rec = out.proposers.get(this.nodeId);
      if (rec && rec.inc === this.inc && rec.w > this.appliedWatermark) this.appliedWatermark = rec.w;
    }
    // Abandoned proposals below an applied watermark can never be applied any more.
    for (const p of this.pending.values()) {
      if (p.abandoned && p.seq < this.appliedWatermark) {
        this.pending.delete(p.seq);
        p.reject(new MetaError('unavailable', `proposal ${p.seq} was not committed before its deadline (definitely not applied)`));
      }
    }
    const pos = out.position;
    for (let i = this.positionWaiters.length - 1; i >= 0; i--) {
      const w = this.positionWaiters[i]!;
      if (w.position <= pos) {
        this.positionWaiters.splice(i, 1);
        w.resolve();
      }
    }
    if (out.changed.length > 0 && this.watchers.size > 0) this.notifyWatchers(out.changed, out.values, pos);
    this.batchesSinceSnapshot++;
    const every = this.opts.snapshotEveryBatches ?? (this.opts.snapshots || this.opts.compactLocally ? limits.metaSnapshotEveryBatches : 0);
    if (every > 0 && this.batchesSinceSnapshot >= every && !this.snapshotting) {
      this.snapshotting = this.snapshotNow()
        .then(() => undefined)
        .catch((err) => this.logger.warn({ err: (err as Error).message }, 'meta: snapshot failed'))
        .finally(() => (this.snapshotting = undefined));
    }
  }

  private joiningInc = 0;

  private notifyWatchers(changed: Buffer[], values: (Buffer | null)[], position: number): void {
    for (const w of this.watchers) {
      // `changed` is in byte order: the keys under a prefix are one run, found by binary search.
      const p = w.prefix;
      let lo = 0;
      let hi = changed.length;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (Buffer.compare(changed[mid]!, p) < 0) lo = mid + 1;
        else hi = mid;
      }
      let end = lo;
      while (end < changed.length && changed[end]!.length >= p.length && p.compare(changed[end]!, 0, p.length) === 0) end++;
      if (end === lo) continue;
      try {
        w.cb(changed.slice(lo, end), position, values.slice(lo, end));
      } catch (err) {
        this.logger.error({ err: (err as Error).message }, 'meta: watcher threw');
      }
    }
  }

  private fail(err: Error): void {
    if (this.failed) return;
    this.failed = err;
    this.logger.error({ err: err.message }, 'meta: service failed; no further commands are applied here');
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
    for (const w of this.positionWaiters.splice(0)) w.reject(err);
    this.applyQueue = [];
    for (const w of this.applyWaiters.splice(0)) w();
    if (this.renewTimer) clearInterval(this.renewTimer);
  }

  /** Why the service stopped, if it did. */
  get failure(): Error | undefined {
    return this.failed;
  }

  // ---- membership ----

  private async join(): Promise<void> {
    const cluster = this.machine.read((tx) => getCluster(tx));
    if (cluster && cluster.recordVersion !== this.recordVersion) {
      throw new MetaError(
        'version-mismatch',
        `cluster ${cluster.clusterId} runs record version ${cluster.recordVersion}; this node runs ${this.recordVersion}: refusing to join`,
      );
    }
    if (cluster && cluster.clusterId !== this.opts.clusterId) {
      throw new MetaError('version-mismatch', `log belongs to cluster '${cluster.clusterId}', not '${this.opts.clusterId}'`);
    }
    const prev = this.machine.read((tx) => getNode(tx, this.nodeId));
    const inc = (prev?.incarnation ?? 0) + 1;
    this.joiningInc = inc;
    if (!cluster) {
      const r = await this.enqueue({ t: 'cluster.init', clusterId: this.opts.clusterId, recordVersion: this.recordVersion }, inc);
      // A concurrent init by another node with the same id and version is fine; anything else is not.
      if (!r.ok) {
        const c = this.machine.read((tx) => getCluster(tx));
        if (!c || c.clusterId !== this.opts.clusterId || c.recordVersion !== this.recordVersion) {
          throw new MetaError('version-mismatch', `cluster init refused: ${r.message}`);
        }
      }
    }
    const now = this.clock.nowMs();
    const leaseMs = this.opts.nodeLeaseMs ?? limits.metaNodeLeaseMs;
    const r = await this.enqueue(
      { t: 'node.join', node: this.nodeId, inc, address: this.opts.address ?? '', now, leaseMs: Math.max(leaseMs, 1) },
      inc,
    );
    if (!r.ok) throw new MetaError('fenced', `join refused: ${r.code}: ${r.message}`);
    this.inc = inc;
    this.joiningInc = 0;
    this.epoch = (r.value as { epoch: number }).epoch;
    this.logger.info({ node: this.nodeId, incarnation: inc, epoch: this.epoch, position: this.appliedPosition }, 'meta: joined');
    if (leaseMs > 0) {
      this.renewTimer = setInterval(() => {
        this.propose({ t: 'node.renew', node: this.nodeId, inc: this.inc, now: this.clock.nowMs(), leaseMs }).catch((err) =>
          this.logger.warn({ err: (err as Error).message }, 'meta: lease renewal failed'),
        );
      }, Math.max(1, Math.floor(leaseMs / 3)));
      this.renewTimer.unref();
    }
  }

  // ---- reads ----

  /** Resolves once every batch committed before the call has been applied on this node. */
  async barrier(): Promise<void> {
    if (this.failed) throw this.failed;
    const index = await this.log.readIndex();
    await this.waitApplied(index);
  }

  /** Resolves once this node has applied through `position`. */
  waitApplied(position: number): Promise<void> {
    if (this.failed) return Promise.reject(this.failed);
    if (this.machine.appliedPosition >= position) return Promise.resolve();
    if (this.positionWaiters.length >= limits.metaPendingProposalsMax) {
      return Promise.reject(new MetaError('busy', 'too many readers waiting'));
    }
    return new Promise((resolve, reject) => this.positionWaiters.push({ position, resolve, reject }));
  }

  /** A read of this node's applied state (may lag other nodes by the replication delay). */
  read<T>(fn: (tx: ReadTx) => T): T {
    if (this.failed) throw this.failed;
    return this.machine.read(fn);
  }

  /** A linearizable read: sees every command committed before the call. */
  async linearizableRead<T>(fn: (tx: ReadTx) => T): Promise<T> {
    await this.barrier();
    return this.machine.read(fn);
  }

  /**
   * Calls `cb` after each applied batch that wrote or deleted keys starting with `prefix` (on any
   * node's proposal), with those keys in byte order and the record each holds after the batch
   * (encoded, null: deleted). Returns the function that stops watching.
   */
  watch(prefix: Uint8Array, cb: WatchCallback): () => void {
    const w: Watcher = { prefix: Buffer.from(prefix), cb };
    this.watchers.add(w);
    return () => void this.watchers.delete(w);
  }

  /** State hash at the current applied position (tests, convergence checks). */
  stateHash(): { position: number; hash: string } {
    return { position: this.machine.appliedPosition, hash: this.machine.hash() };
  }

  // ---- snapshots and compaction ----

  /**
   * Writes a snapshot of the applied state to the snapshot store and compacts the log behind it.
   * With no store and compactLocally (single node, local log), compacts behind durable local state.
   */
  async snapshotNow(): Promise<number> {
    this.batchesSinceSnapshot = 0;
    const store = this.opts.snapshots;
    if (store) {
      const snap = this.machine.snapshot();
      const info = await store.put(snap.position, snap.data);
      await store.prune(limits.metaSnapshotsKept);
      await this.log.compact(info.position);
      this.logger.info({ position: info.position, bytes: info.bytes }, 'meta: snapshot stored, log compacted');
      return info.position;
    }
    if (this.opts.compactLocally) {
      const pos = this.machine.appliedPosition;
      await this.machine.flushed();
      await this.log.compact(pos);
      return pos;
    }
    return 0;
  }

  /**
   * Stops proposing and applying. Pending proposals reject with 'closed'. Does not close the log or
   * the state machine (their owner does). `leave` proposes node.leave first (clean shutdown).
   */
  async close(opts: { leave?: boolean } = {}): Promise<void> {
    if (this.closed) return;
    if (opts.leave && this.inc > 0 && !this.failed) {
      await this.propose({ t: 'node.leave', node: this.nodeId, inc: this.inc }).catch(() => {});
    }
    this.closed = true;
    if (this.renewTimer) clearInterval(this.renewTimer);
    await this.snapshotting;
    await this.sub?.close();
    const err = new MetaError('closed', 'metadata service closed');
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
    for (const w of this.positionWaiters.splice(0)) w.reject(err);
  }
}
