// The collector of chunked shares (ARCHITECTURE.md, "The chunked driver": "a background collector
// compacts fragmented ranges and deletes what nothing references, without ever racing a reader").
// One pass (collectOnce) does, each step bounded:
//   (a) reap: ext.reap slices for forks of unlinked files in the reap queue;
//   (b) delete objects in 'gc' that are old enough, in three steps (src/meta/families/collector.ts):
//       gc.claim (CAS on the record's `since`; from then on no command may reference the object),
//       deleteMany in batches, gc.done for what the store deleted; claims left by a crashed pass are
//       finished first;
//   (c) compaction: runs of many small extents of a fork are read, written as one new segment and
//       mapped over it with ext.rewrite, which applies only if the extents are still exactly those
//       read (else 'stale': the new segment is deleted; it was never referenced). Compaction is
//       background work and must not starve the clients: a run's pieces come from the node's read
//       cache when it holds them (recently written small segments are kept there), else from the
//       store with few gets in flight (limits.collectorCompactGetsInFlightMax); and a pass that
//       started while the shares were quiet stops as soon as they are written again (yields),
//       dropping the run it was reading. Measured on a chunked share on RGW before this rule:
//       random 4 KiB writes at 32 connections fell from ~2,500/s to 259-335/s (p50 86-134 ms) for
//       the ~8 s a pass spent issuing thousands of 4 KiB range gets, all on the main thread;
//   (d) orphan sweep: segments of superseded writers that nothing references (below).
//
// When is an unreferenced object old enough to delete? A reader (on any node) that resolved an
// extent before the object lost its last reference may still fetch it, and a late map command of
// its segment could reference it again (that one is refused once the object is claimed). Rule: the
// object's 'gc' record has `since` = s (the log position that dropped the last reference); it is
// deleted only if THIS node applied position s + positionLag at least graceMs ago (by the collector's
// monotonic clock). The collector samples (applied position, time) at every pass; the newest sample
// at least graceMs old gives P*, and objects with s + positionLag <= P* are eligible. After a restart
// there are no samples: nothing is deleted for graceMs (conservative). graceMs defaults to
// limits.collectorGraceMs (>= limits.metaProposeDeadlineMs, asserted in limits.ts, so a proposal
// made before the record was written has been applied or abandoned). Readers are assumed not to hold
// a resolved extent for longer than graceMs (a READ resolves and fetches at once).
//
// Orphan sweep (d). A segment whose map command failed, or was cut by a crash, is in the store but
// in no map and not in 'gc' (only objects once referenced go there). Such a segment of key
// <cluster>/seg/<node>/<epoch>/<seq> is deleted when its writer was replaced: the node's record
// shows an epoch above <epoch> (a new process joined with a new incarnation; from that join on the
// state machine refuses every entry of the old incarnation, so no command can reference the segment
// any more, and whatever that process committed before is applied here already, since this node
// applies in log order), and it has no reference and no 'gc'/'gcx' record. Grace: the epoch must
// have been superseded at least graceMs ago by this collector's clock (per node, (epoch, time)
// samples like the position samples; after a restart nothing is swept for graceMs). Segments of a
// node's current epoch are never swept by this rule: their writer may still commit them (they stay
// fsck "garbage" until the node joins again). Keys that are not segment keys, and segments of nodes
// without a record, are left alone (a node whose join this node has not applied yet may be writing
// them; fsck counts them as superseded). Lagging behind the log is safe: epochs only grow, so a
// lagging view only makes fewer segments eligible. The store is listed by prefix in pages, resuming where the last
// pass stopped (a node's current epoch is skipped in one step), at most orphanListPerPass keys and
// orphansPerPass deletes per pass; each page's candidates are re-checked in one metadata read just
// before the delete.
import { systemClock, type Clock } from '../../base/clock.js';
import { limits } from '../../base/limits.js';
import { decodeKey, key } from '../../meta/keys.js';
import type { MetaLogger, MetaService } from '../../meta/service.js';
import type { CommandResult } from '../../meta/tx.js';
import { objectRefs, reapCandidates } from '../../meta/families/extents.js';
import { extentsAre } from '../../meta/families/collector.js';
import { type Extent, type GcRecord, type MappedExtent } from '../../meta/families/ns-records.js';
import type { ObjectStore } from '../../objstore/spi.js';
import { listNodes } from '../../meta/families/cluster.js';
import { parseSegmentKey } from './fsck.js';
import { leaseRefusal, nextSeq } from './segments.js';

export interface CompactionOptions {
  /** An extent shorter than this is small (limits.collectorCompactSmallBytes). */
  smallBytes?: number;
  /** Fewest small extents in a run worth rewriting (limits.collectorCompactMinExtents). */
  minExtents?: number;
  /** Most extents in one rewrite (limits.collectorCompactMaxExtents, and half the command budget). */
  maxExtents?: number;
  /** Most bytes in one rewrite (limits.collectorCompactRunBytesMax). */
  runBytesMax?: number;
  /** Bytes rewritten per pass (limits.collectorCompactBytesPerPass). */
  bytesPerPass?: number;
  /** Extent records scanned per pass (limits.collectorCompactScanPerPass). */
  scanPerPass?: number;
}

export interface CollectorOptions {
  meta: MetaService;
  store: ObjectStore;
  clusterId: string;
  /** This node's id (compaction segments are keyed like the writer's: <cluster>/seg/<node>/<epoch>/<seq>). */
  nodeId: string;
  clock?: Clock;
  /** pino-compatible; progress at info, failures at warn. */
  logger?: MetaLogger;
  graceMs?: number;
  positionLag?: number;
  intervalMs?: number;
  reapSlicesPerPass?: number;
  gcObjectsPerPass?: number;
  /** false: no compaction. */
  compaction?: CompactionOptions | false;
  /** The state machine's extent budget per command (lowered only in tests). */
  extentsPerCommandMax?: number;
  /** Orphan sweep: keys listed per pass (limits.collectorOrphanListPerPass; 0 disables the sweep). */
  orphanListPerPass?: number;
  /** Orphan sweep: segments deleted per pass (limits.collectorOrphansPerPass). */
  orphansPerPass?: number;
  /** Compaction segments are put only while the node's lease runs this much longer (limits.chunkedLeaseMarginMs). */
  leaseMarginMs?: number;
  /**
   * True while the shares are being written (cli: a write in the last limits.collectorCompactQuietMs).
   * Compaction then waits, at most limits.collectorCompactDeferPassesMax passes in a row; a pass that
   * waited that long compacts at most limits.collectorCompactBusyBytesPerPass. A pass that started
   * quiet stops compacting once this turns true.
   */
  busy?: () => boolean;
  /**
   * The bytes [offset, offset+length) of `object` if the node's read cache holds them in memory
   * (cli: BlockCache.peek), else undefined: compaction then gets them from the store.
   */
  cached?: (object: string, offset: number, length: number) => Buffer | undefined;
  /** Range gets one compaction keeps in flight (limits.collectorCompactGetsInFlightMax). */
  compactGetsInFlight?: number;
}

export interface CollectorStats {
  passes: number;
  reapSlices: number;
  objectsDeleted: number;
  bytesFreed: number;
  deleteErrors: number;
  /** Rewrites applied, refused because the map changed ('stale'), or failed otherwise. */
  compactions: number;
  compactionsStale: number;
  compactionsFailed: number;
  /** Runs dropped half-read because the shares were written again (the pass stopped compacting). */
  compactionsYielded: number;
  /** Pieces of runs found in the read cache, and fetched from the store. */
  compactPiecesCached: number;
  compactPiecesFetched: number;
  /** Extent records removed by compaction (before minus after) and bytes rewritten. */
  extentsCompacted: number;
  bytesRewritten: number;
  /** Orphan sweep: segment keys listed, orphaned segments of superseded writers deleted, their bytes. */
  orphanKeysListed: number;
  orphansDeleted: number;
  orphanBytesFreed: number;
  /** Full listings of the segment prefix completed by the sweep. */
  orphanScans: number;
  /** Passes that left compaction for later because the shares were being written (busy). */
  compactionPassesDeferred: number;
}

export interface PassResult {
  reapSlices: number;
  objectsDeleted: number;
  bytesFreed: number;
  compactions: number;
  compactionsStale: number;
  compactionsYielded: number;
  extentsCompacted: number;
  orphansDeleted: number;
  orphanBytesFreed: number;
}

const silent: MetaLogger = { info() {}, warn() {}, error() {} };

interface Run {
  fork: number;
  extents: MappedExtent[];
  bytes: number;
}

export class Collector {
  readonly stats: CollectorStats = {
    passes: 0,
    reapSlices: 0,
    objectsDeleted: 0,
    bytesFreed: 0,
    deleteErrors: 0,
    compactions: 0,
    compactionsStale: 0,
    compactionsFailed: 0,
    compactionsYielded: 0,
    compactPiecesCached: 0,
    compactPiecesFetched: 0,
    extentsCompacted: 0,
    bytesRewritten: 0,
    orphanKeysListed: 0,
    orphansDeleted: 0,
    orphanBytesFreed: 0,
    orphanScans: 0,
    compactionPassesDeferred: 0,
  };
  private readonly meta: MetaService;
  private readonly store: ObjectStore;
  private readonly clock: Clock;
  private readonly log: MetaLogger;
  private readonly graceMs: number;
  private readonly positionLag: number;
  private readonly intervalMs: number;
  private readonly reapSlices: number;
  private readonly gcPerPass: number;
  private readonly compact: Required<CompactionOptions> | undefined;
  private readonly segPrefix: string;
  private readonly clusterSegPrefix: string;
  private readonly clusterId: string;
  private readonly orphanListPerPass: number;
  private readonly orphansPerPass: number;
  private readonly leaseMarginMs: number;
  private readonly busy: (() => boolean) | undefined;
  private readonly cached: CollectorOptions['cached'];
  private readonly compactGets: number;
  /** Passes in a row that deferred compaction. */
  private compactDeferred = 0;
  /** Per node: (epoch, monotonic ms) samples, oldest first (the orphan sweep's grace). */
  private epochSamples = new Map<string, { epoch: number; at: number }[]>();
  /** Where the orphan listing resumes (exclusive); undefined: at the start of the prefix. */
  private orphanAfter: string | undefined;
  /** Orphans deleted in the current full listing (logged when it completes). */
  private orphanScanDeleted = 0;
  /** (applied position, monotonic ms) samples, oldest first. */
  private samples: { position: number; at: number }[] = [];
  /** Where the gc scan and the compaction scan resume (key of the next record to look at). */
  private gcCursor: Buffer | undefined;
  private extCursor: Buffer | undefined;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<PassResult> | undefined;
  private stopped = true;
  /** stop() was called: a pass in progress ends after its current step. */
  private stopping = false;

  constructor(opts: CollectorOptions) {
    this.meta = opts.meta;
    this.store = opts.store;
    this.clock = opts.clock ?? systemClock;
    this.log = opts.logger ?? silent;
    this.graceMs = opts.graceMs ?? limits.collectorGraceMs;
    this.positionLag = opts.positionLag ?? limits.collectorPositionLag;
    this.intervalMs = opts.intervalMs ?? limits.collectorIntervalMs;
    this.reapSlices = opts.reapSlicesPerPass ?? limits.collectorReapSlicesPerPass;
    this.gcPerPass = opts.gcObjectsPerPass ?? limits.collectorGcObjectsPerPass;
    this.segPrefix = `${opts.clusterId}/seg/${opts.nodeId}/`;
    this.clusterSegPrefix = `${opts.clusterId}/seg/`;
    this.clusterId = opts.clusterId;
    this.orphanListPerPass = opts.orphanListPerPass ?? limits.collectorOrphanListPerPass;
    this.orphansPerPass = opts.orphansPerPass ?? limits.collectorOrphansPerPass;
    this.leaseMarginMs = opts.leaseMarginMs ?? limits.chunkedLeaseMarginMs;
    this.busy = opts.busy;
    this.cached = opts.cached;
    this.compactGets = opts.compactGetsInFlight ?? limits.collectorCompactGetsInFlightMax;
    if (!Number.isSafeInteger(this.compactGets) || this.compactGets < 1) throw new RangeError('Collector: compactGetsInFlight must be a positive integer');
    for (const [n, v] of [
      ['graceMs', this.graceMs],
      ['positionLag', this.positionLag],
      ['intervalMs', this.intervalMs],
      ['orphanListPerPass', this.orphanListPerPass],
      ['orphansPerPass', this.orphansPerPass],
      ['leaseMarginMs', this.leaseMarginMs],
    ] as const) {
      if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`Collector: ${n} must be a non-negative integer`);
    }
    if (opts.compaction !== false) {
      const c = opts.compaction ?? {};
      const budget = opts.extentsPerCommandMax ?? limits.metaExtentsPerCommandMax;
      this.compact = {
        smallBytes: c.smallBytes ?? limits.collectorCompactSmallBytes,
        minExtents: Math.max(2, c.minExtents ?? limits.collectorCompactMinExtents),
        // A rewrite reads its window and writes its pieces in one command: at most half the budget.
        maxExtents: Math.max(2, Math.min(c.maxExtents ?? limits.collectorCompactMaxExtents, Math.floor(budget / 2) - 2, limits.metaExtentWritesPerBatchMax)),
        runBytesMax: Math.min(c.runBytesMax ?? limits.collectorCompactRunBytesMax, limits.objstoreObjectBytesMax),
        bytesPerPass: c.bytesPerPass ?? limits.collectorCompactBytesPerPass,
        scanPerPass: Math.min(c.scanPerPass ?? limits.collectorCompactScanPerPass, limits.metaReadEntriesMax),
      };
    }
  }

  /** Runs a pass every intervalMs until stop(). */
  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.stopping = false;
    const tick = (): void => {
      this.timer = setTimeout(() => {
        void this.collectOnce()
          .catch((err: unknown) => this.log.warn({ err }, 'collector: pass failed'))
          .finally(() => {
            if (!this.stopped) tick();
          });
      }, this.intervalMs);
      this.timer.unref();
    };
    this.sample();
    tick();
  }

  /** Stops the timer and waits for a pass in progress. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.stopping = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    await this.running?.catch(() => undefined);
  }

  /** One pass: reap, delete what is old enough, compact. Concurrent calls share one pass. */
  collectOnce(): Promise<PassResult> {
    if (this.running === undefined) this.stopping = false;
    this.running ??= this.pass().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  /** Records (applied position, now); keeps only what the grace rule can still use. */
  private sample(): void {
    const now = this.clock.monotonicMs();
    const position = this.meta.appliedPosition;
    const last = this.samples[this.samples.length - 1];
    if (last === undefined || last.position !== position) this.samples.push({ position, at: now });
    // Drop samples older than the newest one that is already graceMs old.
    let keep = 0;
    for (let i = 0; i < this.samples.length; i++) if (now - this.samples[i]!.at >= this.graceMs) keep = i;
    if (keep > 0) this.samples = this.samples.slice(keep);
    // The same per node for epochs (node records are few: one per node id of the cluster).
    let nodes;
    try {
      nodes = this.meta.read((tx) => listNodes(tx));
    } catch {
      return; // the service failed: the pass fails at its first step
    }
    const seen = new Set<string>();
    for (const n of nodes) {
      seen.add(n.node);
      let list = this.epochSamples.get(n.node);
      if (list === undefined) {
        list = [];
        this.epochSamples.set(n.node, list);
      }
      const lastE = list[list.length - 1];
      if (lastE === undefined || lastE.epoch !== n.epoch) list.push({ epoch: n.epoch, at: now });
      let k = 0;
      for (let i = 0; i < list.length; i++) if (now - list[i]!.at >= this.graceMs) k = i;
      if (k > 0) list.splice(0, k);
    }
    for (const id of [...this.epochSamples.keys()]) if (!seen.has(id)) this.epochSamples.delete(id);
  }

  /** The highest epoch of `node` this collector saw at least graceMs ago (-1: none). */
  private safeEpoch(node: string): number {
    const now = this.clock.monotonicMs();
    let e = -1;
    for (const s of this.epochSamples.get(node) ?? []) if (now - s.at >= this.graceMs) e = Math.max(e, s.epoch);
    return e;
  }

  /** P*: the highest position this node had applied at least graceMs ago (-1: none). */
  private safePosition(): number {
    const now = this.clock.monotonicMs();
    let p = -1;
    for (const s of this.samples) if (now - s.at >= this.graceMs) p = Math.max(p, s.position);
    return p;
  }

  private async pass(): Promise<PassResult> {
    this.sample();
    const r: PassResult = { reapSlices: 0, objectsDeleted: 0, bytesFreed: 0, compactions: 0, compactionsStale: 0, compactionsYielded: 0, extentsCompacted: 0, orphansDeleted: 0, orphanBytesFreed: 0 };
    await this.reap(r);
    await this.deleteGarbage(r);
    if (this.compact !== undefined) {
      const busy = this.busy;
      if (busy?.() !== true) {
        this.compactDeferred = 0;
        // Started quiet: the clients come first again as soon as they write.
        await this.compactRuns(r, this.compact.bytesPerPass, busy ?? (() => false));
      } else if (++this.compactDeferred > limits.collectorCompactDeferPassesMax) {
        // Written to without pause: compact a little anyway, so fragmentation cannot grow forever.
        this.compactDeferred = 0;
        await this.compactRuns(r, Math.min(this.compact.bytesPerPass, limits.collectorCompactBusyBytesPerPass), () => false);
      } else {
        this.stats.compactionPassesDeferred++;
      }
    }
    if (!this.stopping) await this.sweepOrphans(r);
    this.stats.passes++;
    if (r.reapSlices + r.objectsDeleted + r.compactions + r.compactionsStale + r.compactionsYielded + r.orphansDeleted > 0) {
      this.log.info({ ...r, totals: { ...this.stats } }, 'collector pass');
    }
    return r;
  }

  // ---- (a) reap ----

  private async reap(r: PassResult): Promise<void> {
    let slices = this.reapSlices;
    if (slices === 0) return;
    const forks = this.meta.read((tx) => reapCandidates(tx, Math.min(slices, limits.metaReadEntriesMax)));
    for (const f of forks) {
      while (slices > 0) {
        slices--;
        const res = await this.meta.propose({ t: 'ext.reap', fork: f.fork });
        if (!res.ok) break; // not-found: another node finished it
        r.reapSlices++;
        this.stats.reapSlices++;
        if ((res.value as { done: boolean }).done) break;
      }
      if (slices === 0) break;
    }
  }

  // ---- (b) deleting unreferenced objects ----

  private async deleteGarbage(r: PassResult): Promise<void> {
    // Claims left by an earlier pass (or another node's collector, crashed or in progress: deleting
    // twice is harmless) first.
    const leftover = this.meta.read((tx) => {
      const out: { object: string; bytes: number | undefined }[] = [];
      for (const [k, g] of tx.range<GcRecord>(key('gcx'), { limit: this.gcPerPass })) out.push({ object: objectOf(k), bytes: g.bytes });
      return out;
    });
    if (leftover.length > 0) await this.deleteClaimed(leftover, r);
    const safe = this.safePosition();
    if (safe < 0) return;
    const budget = this.gcPerPass - leftover.length;
    if (budget <= 0) return;
    const candidates = this.meta.read((tx) => {
      const out: { object: string; since: number; bytes?: number }[] = [];
      let scanned = 0;
      const scanMax = Math.min(limits.metaReadEntriesMax, 4 * budget);
      let cursor: Buffer | undefined;
      for (const [k, g] of tx.range<GcRecord>(key('gc'), this.gcCursor === undefined ? {} : { start: this.gcCursor })) {
        if (scanned === scanMax || out.length === budget) {
          cursor = k;
          break;
        }
        scanned++;
        if (g.since + this.positionLag <= safe) out.push(g.bytes === undefined ? { object: objectOf(k), since: g.since } : { object: objectOf(k), since: g.since, bytes: g.bytes });
      }
      this.gcCursor = cursor; // undefined: the next scan starts at the beginning again
      return out;
    });
    for (let i = 0; i < candidates.length; i += limits.collectorGcObjectsPerCommand) {
      const slice = candidates.slice(i, i + limits.collectorGcObjectsPerCommand);
      const res = await this.meta.propose({ t: 'gc.claim', objects: slice.map((c) => ({ object: c.object, since: c.since })) });
      if (!res.ok) {
        this.log.warn({ code: res.code, message: res.message }, 'collector: gc.claim refused');
        continue;
      }
      const claimed = new Set((res.value as { claimed: string[] }).claimed);
      await this.deleteClaimed(slice.filter((c) => claimed.has(c.object)).map((c) => ({ object: c.object, bytes: c.bytes })), r);
    }
  }

  /** Deletes claimed objects from the store (batches), then drops the claims of what it deleted. */
  private async deleteClaimed(objs: { object: string; bytes: number | undefined }[], r: PassResult): Promise<void> {
    const batch = Math.min(limits.objstoreDeleteBatchMax, limits.collectorGcObjectsPerCommand);
    for (let i = 0; i < objs.length; i += batch) {
      const part = objs.slice(i, i + batch);
      const res = await this.store.deleteMany(part.map((o) => o.object));
      if (res.errors.length > 0) {
        this.stats.deleteErrors += res.errors.length;
        this.log.warn({ errors: res.errors.slice(0, 5), count: res.errors.length }, 'collector: some deletes failed (retried next pass)');
      }
      if (res.deleted.length === 0) continue;
      const done = await this.meta.propose({ t: 'gc.done', objects: [...res.deleted] });
      if (!done.ok) this.log.warn({ code: done.code, message: done.message }, 'collector: gc.done refused');
      const deleted = new Set(res.deleted);
      for (const o of part) {
        if (!deleted.has(o.object)) continue;
        r.objectsDeleted++;
        this.stats.objectsDeleted++;
        r.bytesFreed += o.bytes ?? 0;
        this.stats.bytesFreed += o.bytes ?? 0;
      }
    }
  }

  // ---- (d) orphan sweep (see the header) ----

  private async sweepOrphans(r: PassResult): Promise<void> {
    let listBudget = this.orphanListPerPass;
    let deleteBudget = this.orphansPerPass;
    if (listBudget === 0 || deleteBudget === 0) return;
    const prefix = this.clusterSegPrefix;
    while (listBudget > 0 && deleteBudget > 0 && !this.stopping) {
      const after = this.orphanAfter;
      const limit = Math.min(limits.objstoreListPageMax, listBudget);
      const page = await this.store.list(prefix, after === undefined ? { limit } : { after, limit });
      listBudget -= page.objects.length;
      this.stats.orphanKeysListed += page.objects.length;
      // Candidates: segment keys of an epoch superseded at least graceMs ago.
      const cands: { key: string; size: number; nodeId: string; epoch: number }[] = [];
      /** Last key dealt with (the next listing starts after it). */
      let done = after;
      let full = false;
      let skipPrefix: string | undefined;
      for (const o of page.objects) {
        const seg = skipPrefix !== undefined && o.key.startsWith(skipPrefix) ? undefined : parseSegmentKey(this.clusterId, o.key);
        if (seg !== undefined) {
          if (seg.epoch < this.safeEpoch(seg.nodeId)) {
            if (cands.length === deleteBudget) {
              full = true; // this key is looked at again next time
              break;
            }
            cands.push({ key: o.key, size: o.size, nodeId: seg.nodeId, epoch: seg.epoch });
          } else {
            // An epoch not sweepable (current, or superseded too recently): skip the rest of it.
            skipPrefix = `${prefix}${seg.nodeId}/${seg.epoch}/`;
          }
        }
        done = o.key;
      }
      if (cands.length > 0) await this.deleteOrphans(cands, r);
      deleteBudget -= cands.length;
      if (full) {
        this.orphanAfter = done;
        break;
      }
      if (page.next === undefined) {
        // The end of the prefix: the next listing starts over (at most one full listing per pass).
        this.orphanAfter = undefined;
        this.stats.orphanScans++;
        if (this.orphanScanDeleted > 0) {
          this.log.info({ deleted: this.orphanScanDeleted, totals: { ...this.stats } }, 'collector: orphan sweep went through every segment');
        }
        this.orphanScanDeleted = 0;
        break;
      }
      // Past the rest of a skipped epoch in one step ('~' is the highest printable key character).
      this.orphanAfter = skipPrefix !== undefined && done !== undefined && done.startsWith(skipPrefix) ? `${skipPrefix}~` : page.next;
      if (page.objects.length === 0) break; // (a store paging oddity: never spin)
    }
  }

  /** Re-checks candidates against the current map (one read), deletes what is still an orphan. */
  private async deleteOrphans(cands: { key: string; size: number; nodeId: string; epoch: number }[], r: PassResult): Promise<void> {
    const still = this.meta.read((tx) =>
      cands.filter((c) => {
        const node = tx.get<{ epoch: number }>(key('node', c.nodeId));
        return node !== undefined && node.epoch > c.epoch && objectRefs(tx, c.key) === 0 && tx.get(key('gc', c.key)) === undefined && tx.get(key('gcx', c.key)) === undefined;
      }),
    );
    for (let i = 0; i < still.length; i += limits.objstoreDeleteBatchMax) {
      const part = still.slice(i, i + limits.objstoreDeleteBatchMax);
      const res = await this.store.deleteMany(part.map((c) => c.key));
      if (res.errors.length > 0) {
        this.stats.deleteErrors += res.errors.length;
        this.log.warn({ errors: res.errors.slice(0, 5), count: res.errors.length }, 'collector: some orphan deletes failed (retried on a later listing)');
      }
      const deleted = new Set(res.deleted);
      for (const c of part) {
        if (!deleted.has(c.key)) continue;
        r.orphansDeleted++;
        r.orphanBytesFreed += c.size;
        this.stats.orphansDeleted++;
        this.stats.orphanBytesFreed += c.size;
        this.orphanScanDeleted++;
      }
    }
  }

  // ---- (c) compaction ----

  /** Finds runs of small extents (one consistent read, bounded), then rewrites them one by one. */
  private findRuns(bytesPerPass: number): Run[] {
    const c = this.compact!;
    return this.meta.read((tx) => {
      const runs: Run[] = [];
      let bytes = 0;
      let run: Run | undefined;
      let scanned = 0;
      let cursor: Buffer | undefined;
      const close = (): void => {
        if (run !== undefined && run.extents.length >= c.minExtents && reduces(run.extents)) {
          runs.push(run);
          bytes += run.bytes;
        }
        run = undefined;
      };
      for (const [k, e] of tx.range<Extent>(key('ext'), this.extCursor === undefined ? {} : { start: this.extCursor })) {
        if (scanned === c.scanPerPass || bytes >= bytesPerPass) {
          cursor = k;
          break;
        }
        scanned++;
        const [, fork, offset] = decodeKey(k) as [string, number, number];
        const m: MappedExtent = { offset, length: e.length, object: e.object, objectOffset: e.objectOffset };
        if (run !== undefined && (run.fork !== fork || run.extents.length >= c.maxExtents || run.bytes + m.length > c.runBytesMax)) close();
        if (m.length >= c.smallBytes) {
          close();
          continue;
        }
        run ??= { fork, extents: [], bytes: 0 };
        run.extents.push(m);
        run.bytes += m.length;
      }
      close();
      this.extCursor = cursor;
      return runs;
    });
  }

  /** Rewrites the runs found, until `yieldTo` turns true (then the run being read is dropped). */
  private async compactRuns(r: PassResult, bytesPerPass: number, yieldTo: () => boolean): Promise<void> {
    for (const run of this.findRuns(bytesPerPass)) {
      if (this.stopping) break;
      if (!(await this.rewrite(run, r, yieldTo))) break;
    }
  }

  /** One run; false if it yielded (the pass should stop compacting). */
  private async rewrite(run: Run, r: PassResult, yieldTo: () => boolean): Promise<boolean> {
    if (yieldTo()) {
      r.compactionsYielded++;
      this.stats.compactionsYielded++;
      return false;
    }
    // Read the run's bytes (the objects are referenced: no collector deletes them within graceMs).
    let parts: Buffer[] | undefined;
    try {
      parts = await this.readRun(run.extents, yieldTo);
    } catch (err) {
      this.stats.compactionsFailed++;
      this.log.warn({ err, fork: run.fork }, 'collector: compaction read failed');
      return true;
    }
    if (parts === undefined) {
      r.compactionsYielded++;
      this.stats.compactionsYielded++;
      return false;
    }
    // Clients may have rewritten part of the run while it was read (a share written without pause,
    // where a forced pass compacts anyway): then ext.rewrite would refuse it. Skip the put and the
    // delete. (The check can still pass and ext.rewrite refuse: that path stays below.)
    if (!this.meta.read((tx) => extentsAre(tx, run.fork, run.extents))) {
      r.compactionsStale++;
      this.stats.compactionsStale++;
      return true;
    }
    // Compaction segments are segments too: written only under a valid lease (segments.ts, fencing).
    const fenced = leaseRefusal(this.meta, this.clock.nowMs(), this.leaseMarginMs);
    if (fenced !== undefined) {
      this.stats.compactionsFailed++;
      this.log.warn({ fork: run.fork, reason: fenced }, 'collector: compaction not written (fenced)');
      return true;
    }
    const { epoch } = this.meta.membership;
    const object = `${this.segPrefix}${epoch}/${nextSeq(this.meta).toString(16).padStart(16, '0')}`;
    // One write per contiguous group of extents (holes between groups stay holes).
    const writes: { offset: number; length: number; object: string; objectOffset: number }[] = [];
    let at = 0;
    for (const e of run.extents) {
      const last = writes[writes.length - 1];
      if (last !== undefined && last.offset + last.length === e.offset) last.length += e.length;
      else writes.push({ offset: e.offset, length: e.length, object, objectOffset: at });
      at += e.length;
    }
    try {
      await this.store.put(object, parts, { ifNoneMatch: '*' });
    } catch (err) {
      this.stats.compactionsFailed++;
      this.log.warn({ err, fork: run.fork }, 'collector: compaction segment put failed');
      return true;
    }
    let res: CommandResult | undefined;
    try {
      res = await this.meta.propose({ t: 'ext.rewrite', fork: run.fork, expect: run.extents, writes, objectSizes: { [object]: at } });
    } catch (err) {
      this.log.warn({ err, fork: run.fork }, 'collector: ext.rewrite failed');
    }
    if (res?.ok === true) {
      r.compactions++;
      this.stats.compactions++;
      const removed = run.extents.length - writes.length;
      r.extentsCompacted += removed;
      this.stats.extentsCompacted += removed;
      this.stats.bytesRewritten += run.bytes;
      return true;
    }
    if (res !== undefined && res.code === 'stale') {
      r.compactionsStale++;
      this.stats.compactionsStale++;
    } else {
      this.stats.compactionsFailed++;
      if (res !== undefined && !res.ok) this.log.warn({ code: res.code, message: res.message, fork: run.fork }, 'collector: ext.rewrite refused');
    }
    // Not applied: the new segment is referenced by nothing and known to no one else. Delete it
    // unless the outcome is unknown and the map points at it after all.
    if (this.meta.read((tx) => objectRefs(tx, object)) === 0 && (res !== undefined || this.meta.failure === undefined)) {
      await this.store.deleteMany([object]).catch(() => undefined);
    }
    return true;
  }

  /**
   * The bytes of every extent, in order: from the read cache when it holds them, else from the
   * store, at most compactGets gets in flight. Undefined if `yieldTo` turned true meanwhile (no
   * further get is started; those in flight are let finish and dropped).
   */
  private async readRun(extents: readonly MappedExtent[], yieldTo: () => boolean): Promise<Buffer[] | undefined> {
    const out: Buffer[] = new Array<Buffer>(extents.length);
    const missing: number[] = [];
    for (let i = 0; i < extents.length; i++) {
      const e = extents[i]!;
      const b = this.cached?.(e.object, e.objectOffset, e.length);
      if (b !== undefined && b.length === e.length) out[i] = b;
      else missing.push(i);
    }
    this.stats.compactPiecesCached += extents.length - missing.length;
    let next = 0;
    let yielded = false;
    const worker = async (): Promise<void> => {
      while (next < missing.length && !yielded) {
        if (yieldTo()) {
          yielded = true;
          return;
        }
        const i = missing[next++]!;
        const e = extents[i]!;
        const b = await this.store.get(e.object, { offset: e.objectOffset, length: e.length });
        if (b.length !== e.length) throw new Error(`object ${e.object} holds ${b.length} of ${e.length} bytes at ${e.objectOffset}`);
        this.stats.compactPiecesFetched++;
        out[i] = b;
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.compactGets, missing.length) }, worker));
    return yielded ? undefined : out;
  }
}

/** The object of a ('gc' | 'gcx', object) key. */
const objectOf = (k: Buffer): string => decodeKey(k)[1] as string;

/** True if rewriting the run leaves at most half as many extents (contiguous groups). */
function reduces(extents: readonly MappedExtent[]): boolean {
  let groups = 0;
  let end = -1;
  for (const e of extents) {
    if (e.offset !== end) groups++;
    end = e.offset + e.length;
  }
  return groups * 2 <= extents.length;
}
