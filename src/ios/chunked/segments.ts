// The write path of the chunked driver (ARCHITECTURE.md, "The chunked driver"): group commit.
//
// Concurrent writes (of any forks of one share) are gathered into a segment. A segment is sealed
// when it holds `segmentBytes`, when one fork has metaExtentWritesPerBatchMax writes in it, when a
// segment in flight completes (what arrived meanwhile goes together), right after the current
// event-loop turn if no segment is in flight, and at the latest `groupCommitMs` after its first write. A sealed segment is put to the object store as one object,
// its body the callers' own buffers in arrival order (no copy: spi.ts lets the driver read a
// write's buffer until write() settles). Once the put resolves, ONE ext.writev per fork (that fork's
// writes in arrival order: overlapping writes in one segment, the later wins) is proposed; once those
// commands are applied locally, the writes are answered. Never before both.
//
// Failures: a failed put fails every write of the segment (EIO) and references nothing (no map entry
// can point at a missing object). A refused or failed command fails that fork's writes; the object
// then holds bytes nothing references: garbage for the collector (ext.* puts it in 'gc' only once
// referenced; an object never referenced is found by listing the store against the map).
//
// Order: puts run concurrently; the map commands of successive segments are proposed in sealing
// order (the service appends in proposal order), so a map never regresses to an older segment's data
// because a younger segment's put finished first.
//
// Object keys describe themselves: <clusterId>/seg/<nodeId>/<epoch>/<seq: 16 hex digits>. The epoch
// changes with every join of the node (a new process), so keys from two processes never collide; the
// sequence is per MetaService (one per process), shared by every share and driver using it.
//
// Fencing (ARCHITECTURE.md: "A node may only write segments while it holds a valid lease on its
// epoch in the metadata log; a node cut off from the log stops answering writes before another node
// may take over"): a segment is put only if this node's membership, as applied locally, is still
// ours and its lease runs at least limits.chunkedLeaseMarginMs past now (by the driver's clock); see
// leaseRefusal(). Otherwise the segment's writes fail EIO and nothing is put. The check is repeated
// after the put, before the map commands are proposed (a put may be slow).
import { systemClock, type Clock } from '../../base/clock.js';
import { limits } from '../../base/limits.js';
import { getNode } from '../../meta/families/cluster.js';
import { key } from '../../meta/keys.js';
import type { MetaService } from '../../meta/service.js';
import type { CommandResult } from '../../meta/tx.js';
import { boundedEnd } from '../../meta/families/extents.js';
import type { ObjectStore } from '../../objstore/spi.js';
import { IosError } from '../spi.js';
import { refusalError, toIosError } from './errors.js';

interface PendingWrite {
  fork: number;
  offset: number;
  data: Buffer;
  resolve: () => void;
  reject: (e: Error) => void;
}

/** One write of an ext.writev command. */
interface MapWrite {
  offset: number;
  length: number;
  object: string;
  objectOffset: number;
}

interface Segment {
  writes: PendingWrite[];
  bytes: number;
  perFork: Map<number, number>;
  timer: NodeJS.Timeout | undefined;
}

export interface SegmentWriterOptions {
  meta: MetaService;
  store: ObjectStore;
  clusterId: string;
  nodeId: string;
  segmentBytes?: number;
  groupCommitMs?: number;
  bufferedBytesMax?: number;
  /** The state machine's extent budget per command (limits.metaExtentsPerCommandMax unless lowered in tests). */
  extentsPerCommandMax?: number;
  /** The driver's clock: the lease check compares the node's leaseUntil with its nowMs(). */
  clock?: Clock;
  /** How long the lease must still run when a segment is put (limits.chunkedLeaseMarginMs). */
  leaseMarginMs?: number;
  /**
   * Called once a segment object is durable in the store, before its writes are answered, with its
   * key and body (the callers' buffers, in order; read them now, keep none): the read cache keeps
   * what was just written, so reading it back does not go to the store.
   */
  onStored?: (key: string, parts: readonly Buffer[]) => void;
  /** Stamped with the clock's monotonicMs() at every write (the driver's shares share one). */
  activity?: WriteActivity;
}

/** When a share of a driver was last written (the collector defers compaction meanwhile). */
export interface WriteActivity {
  lastWriteMs: number;
}

/**
 * Why this node may not write segments now, or undefined if it may (the fencing rule).
 *
 * Why it fences: another node may declare this one down (node.expire) only once its leaseUntil has
 * passed by that node's clock, and a new process of this node id joins with a new incarnation and
 * epoch, after which the state machine refuses every entry of ours ('stale'). Either way our map
 * commands would not be answered; but a node partitioned from the log (renewals no longer applied)
 * could go on putting segment objects, and with its in-flight proposals possibly still committing
 * until it is expired. Refusing to write once the lease, as this node last applied it, runs out
 * (minus a margin covering the put and clock skew) closes that window: a node that cannot renew
 * stops writing before anyone may take over from it.
 *
 * Refused when: the service failed or is not joined; the node record is missing, not 'up', or of
 * another incarnation or epoch than ours; leaseUntil - marginMs < nowMs. With leases disabled
 * (MetaService nodeLeaseMs 0: nothing is renewed; single-process tests) the time rule is skipped and
 * only the membership rules apply.
 */
export function leaseRefusal(meta: MetaService, nowMs: number, marginMs: number): string | undefined {
  if (meta.failure !== undefined) return `metadata service failed: ${meta.failure.message}`;
  const { incarnation, epoch } = meta.membership;
  if (incarnation === 0) return 'metadata service not joined';
  let rec;
  try {
    rec = nodeRecord(meta);
  } catch (err) {
    return `cannot read the node record: ${(err as Error).message}`;
  }
  if (rec === undefined) return `node ${meta.nodeId} has no membership record`;
  if (rec.incarnation !== incarnation || rec.epoch !== epoch) {
    return `node ${meta.nodeId} incarnation ${incarnation} epoch ${epoch} was superseded by incarnation ${rec.incarnation} epoch ${rec.epoch}`;
  }
  if (rec.state !== 'up') return `node ${meta.nodeId} is ${rec.state}`;
  if (meta.nodeLeaseMs > 0 && rec.leaseUntil - marginMs < nowMs) {
    return `node ${meta.nodeId} lease ends at ${rec.leaseUntil}, less than ${marginMs} ms after now (${nowMs}): not renewed`;
  }
  return undefined;
}

/**
 * This node's membership record as applied, read once and kept until a batch changes a node record
 * (a watch) or a snapshot is restored: the fencing check runs twice per segment.
 */
const nodeRecords = new WeakMap<MetaService, { rec: ReturnType<typeof getNode>; valid: boolean; restores: number }>();

function nodeRecord(meta: MetaService): ReturnType<typeof getNode> {
  let c = nodeRecords.get(meta);
  if (c === undefined) {
    const entry = { rec: undefined as ReturnType<typeof getNode>, valid: false, restores: meta.restoreCount };
    meta.watch(key('node'), () => void (entry.valid = false));
    nodeRecords.set(meta, entry);
    c = entry;
  }
  if (!c.valid || c.restores !== meta.restoreCount) {
    c.restores = meta.restoreCount;
    c.rec = meta.read((tx) => getNode(tx, meta.nodeId));
    c.valid = true;
  }
  return c.rec;
}

/** Segment counters, one per metadata service (one per process and node join). */
const sequences = new WeakMap<MetaService, { next: bigint }>();

/** The next segment sequence number of this process (the collector's compaction segments use it too). */
export function nextSeq(meta: MetaService): bigint {
  let s = sequences.get(meta);
  if (s === undefined) {
    s = { next: 1n };
    sequences.set(meta, s);
  }
  return s.next++;
}

export interface SegmentStats {
  segments: number;
  segmentBytes: number;
  writes: number;
  failedSegments: number;
  /** Segments refused by the lease check (fencing): their writes failed, nothing was put or mapped. */
  fencedSegments: number;
}

export class SegmentWriter {
  private readonly meta: MetaService;
  private readonly store: ObjectStore;
  private readonly prefix: string;
  private readonly segmentBytes: number;
  private readonly groupCommitMs: number;
  /** Segments sealed and not yet answered. */
  private inFlight = 0;
  private readonly bufferedBytesMax: number;
  private readonly extentsPerCommandMax: number;
  private readonly clock: Clock;
  private readonly leaseMarginMs: number;
  private readonly onStored: SegmentWriterOptions['onStored'];
  private readonly activity: WriteActivity | undefined;
  private cur: Segment | undefined;
  /** Bytes of writes accepted and not yet answered. */
  private buffered = 0;
  private readonly waiters: { bytes: number; go: () => void }[] = [];
  /** Resolves once the previous segment's map commands were proposed (or it failed). */
  private lastIssued: Promise<void> = Promise.resolve();
  /** Writes not yet answered, per fork (flush and truncate wait for them). */
  private readonly pendingByFork = new Map<number, Set<Promise<void>>>();
  private readonly all = new Set<Promise<void>>();
  private closed = false;
  readonly stats: SegmentStats = { segments: 0, segmentBytes: 0, writes: 0, failedSegments: 0, fencedSegments: 0 };

  constructor(opts: SegmentWriterOptions) {
    this.meta = opts.meta;
    this.store = opts.store;
    this.prefix = `${opts.clusterId}/seg/${opts.nodeId}/`;
    this.segmentBytes = opts.segmentBytes ?? limits.chunkedSegmentBytes;
    this.groupCommitMs = opts.groupCommitMs ?? limits.chunkedGroupCommitMs;
    this.extentsPerCommandMax = opts.extentsPerCommandMax ?? limits.metaExtentsPerCommandMax;
    this.bufferedBytesMax = Math.max(opts.bufferedBytesMax ?? limits.chunkedBufferedBytesMax, 2 * this.segmentBytes);
    this.clock = opts.clock ?? systemClock;
    this.leaseMarginMs = opts.leaseMarginMs ?? limits.chunkedLeaseMarginMs;
    this.onStored = opts.onStored;
    this.activity = opts.activity;
    if (!Number.isSafeInteger(this.leaseMarginMs) || this.leaseMarginMs < 0) throw new RangeError('SegmentWriter: leaseMarginMs must be a non-negative integer');
  }

  /** The fencing check (leaseRefusal) as an EIO, or undefined if this node may write segments. */
  private fenced(): IosError | undefined {
    const why = leaseRefusal(this.meta, this.clock.nowMs(), this.leaseMarginMs);
    return why === undefined ? undefined : new IosError('EIO', `segment write fenced: ${why}`);
  }

  /**
   * Writes `data` at `offset` of `fork`; resolves once the bytes are in a stored segment and the map
   * points at them (applied on this node). The caller checked the arguments and keeps `data` intact
   * until this settles. Writes longer than a segment are split (each piece its own map entry).
   */
  write(fork: number, offset: number, data: Buffer): Promise<void> {
    if (this.closed) return Promise.reject(new IosError('EIO', 'share is closing'));
    if (this.activity !== undefined) this.activity.lastWriteMs = this.clock.monotonicMs();
    let p: Promise<void>;
    if (data.length > this.segmentBytes) {
      const parts: Promise<void>[] = [];
      for (let at = 0; at < data.length; at += this.segmentBytes) {
        parts.push(this.writeOne(fork, offset + at, data.subarray(at, Math.min(data.length, at + this.segmentBytes))));
      }
      p = Promise.all(parts).then(() => undefined);
    } else {
      p = this.writeOne(fork, offset, data);
    }
    return p;
  }

  /** Resolves once every write of `fork` issued before the call has settled (answered or failed). */
  async flushFork(fork: number): Promise<void> {
    const set = this.pendingByFork.get(fork);
    if (set === undefined || set.size === 0) return;
    this.sealCurrent();
    await Promise.allSettled([...set]);
  }

  /** Resolves once every write issued before the call has settled. */
  async flushAll(): Promise<void> {
    if (this.all.size === 0) return;
    this.sealCurrent();
    await Promise.allSettled([...this.all]);
  }

  /** Refuses new writes, seals what is gathered, waits for everything in flight. */
  async close(): Promise<void> {
    this.closed = true;
    await this.flushAll();
  }

  private writeOne(fork: number, offset: number, data: Buffer): Promise<void> {
    const p = this.admit(data.length).then(
      () =>
        new Promise<void>((resolve, reject) => {
          this.add({ fork, offset, data, resolve, reject });
        }),
    );
    let set = this.pendingByFork.get(fork);
    if (set === undefined) {
      set = new Set();
      this.pendingByFork.set(fork, set);
    }
    const tracked = set;
    tracked.add(p);
    this.all.add(p);
    const done = (): void => {
      tracked.delete(p);
      if (tracked.size === 0 && this.pendingByFork.get(fork) === tracked) this.pendingByFork.delete(fork);
      this.all.delete(p);
    };
    p.then(done, done);
    return p;
  }

  /** Backpressure: waits (first come, first served) until `bytes` fit under the buffered bound. */
  private admit(bytes: number): Promise<void> {
    if (this.waiters.length === 0 && this.buffered + bytes <= this.bufferedBytesMax) {
      this.buffered += bytes;
      return Promise.resolve();
    }
    // Waiting writes are gathered no more: seal so the bytes ahead of them move.
    this.sealCurrent();
    return new Promise<void>((go) => this.waiters.push({ bytes, go }));
  }

  private release(bytes: number): void {
    this.buffered -= bytes;
    while (this.waiters.length > 0 && this.buffered + this.waiters[0]!.bytes <= this.bufferedBytesMax) {
      const w = this.waiters.shift()!;
      this.buffered += w.bytes;
      w.go();
    }
  }

  private add(w: PendingWrite): void {
    let seg = this.cur;
    if (seg !== undefined) {
      const forkWrites = seg.perFork.get(w.fork) ?? 0;
      if (seg.bytes + w.data.length > this.segmentBytes || forkWrites >= limits.metaExtentWritesPerBatchMax) {
        this.sealCurrent();
        seg = undefined;
      }
    }
    if (seg === undefined) {
      const s: Segment = { writes: [], bytes: 0, perFork: new Map(), timer: undefined };
      if (this.inFlight === 0) {
        // Nothing in flight: seal after this turn (writes issued together still share the
        // segment) instead of waiting out the window; a lone write pays no timer.
        setImmediate(() => {
          if (this.cur === s) this.sealCurrent();
        });
      } else {
        // Segments in flight: gather until one of them completes (see segmentDone), at most
        // groupCommitMs.
        s.timer = setTimeout(() => {
          if (this.cur === s) this.sealCurrent();
        }, this.groupCommitMs);
      }
      this.cur = s;
      seg = s;
    }
    seg.writes.push(w);
    seg.bytes += w.data.length;
    seg.perFork.set(w.fork, (seg.perFork.get(w.fork) ?? 0) + 1);
    if (seg.bytes >= this.segmentBytes) this.sealCurrent();
  }

  private sealCurrent(): void {
    const seg = this.cur;
    if (seg === undefined) return;
    this.cur = undefined;
    if (seg.timer !== undefined) clearTimeout(seg.timer);
    const fenced = this.fenced();
    if (fenced !== undefined) {
      // Nothing is put: the writes fail (none was answered) and the map is untouched.
      this.stats.fencedSegments++;
      this.finish(seg.writes, fenced);
      return;
    }
    const { epoch } = this.meta.membership;
    const key = `${this.prefix}${epoch}/${nextSeq(this.meta).toString(16).padStart(16, '0')}`;
    this.stats.segments++;
    this.stats.segmentBytes += seg.bytes;
    this.stats.writes += seg.writes.length;
    // Started now: puts of successive segments overlap.
    const put = this.store.put(
      key,
      seg.writes.map((w) => w.data),
    );
    const prev = this.lastIssued;
    let issued!: () => void;
    this.lastIssued = new Promise<void>((r) => (issued = r));
    this.inFlight++;
    void this.commit(seg, key, put, prev, issued).finally(() => this.segmentDone());
  }

  /**
   * A segment finished (answered or failed): what gathered meanwhile is sealed now. This is the
   * group commit: a segment holds the writes that arrived while the previous one was being stored.
   */
  private segmentDone(): void {
    this.inFlight--;
    if (this.cur !== undefined && this.cur.writes.length > 0) this.sealCurrent();
  }

  private async commit(seg: Segment, key: string, put: Promise<unknown>, prev: Promise<void>, issued: () => void): Promise<void> {
    let putError: unknown;
    try {
      await put;
    } catch (err) {
      putError = err;
    }
    await prev;
    if (putError !== undefined) {
      issued();
      this.stats.failedSegments++;
      const e = toIosError(putError, `segment ${key}`);
      const io = e.code === 'EIO' ? e : new IosError('EIO', e.message, { cause: putError });
      this.finish(seg.writes, io);
      return;
    }
    if (this.onStored !== undefined) {
      try {
        this.onStored(key, seg.writes.map((w) => w.data));
      } catch {
        // A cache that cannot keep the bytes changes nothing for the write.
      }
    }
    // The lease may have run out during the put: then propose nothing (the object is garbage of our
    // epoch, swept once this node joins again; fsck reports it meanwhile).
    const fenced = this.fenced();
    if (fenced !== undefined) {
      issued();
      this.stats.fencedSegments++;
      this.finish(seg.writes, fenced);
      return;
    }
    // One ext.writev per fork, the fork's writes in arrival order, their pieces laid out in the
    // object in arrival order too.
    const byFork = new Map<number, { writes: PendingWrite[]; ext: MapWrite[] }>();
    let at = 0;
    for (const w of seg.writes) {
      let f = byFork.get(w.fork);
      if (f === undefined) {
        f = { writes: [], ext: [] };
        byFork.set(w.fork, f);
      }
      f.writes.push(w);
      if (w.data.length > 0) f.ext.push({ offset: w.offset, length: w.data.length, object: key, objectOffset: at });
      at += w.data.length;
    }
    const proposals: { fork: number; writes: PendingWrite[]; ext: MapWrite[]; p: Promise<CommandResult> | undefined }[] = [];
    try {
      // Proposed in one turn, in order: the service appends them in this order, after the previous
      // segment's commands.
      for (const [fork, f] of byFork) {
        let p: Promise<CommandResult> | undefined;
        try {
          p = f.ext.length === 0 ? undefined : this.meta.propose({ t: 'ext.writev', fork, writes: f.ext, objectSizes: { [key]: at } });
        } catch (err) {
          p = Promise.reject(err);
        }
        proposals.push({ fork, writes: f.writes, ext: f.ext, p });
      }
    } finally {
      issued();
    }
    await Promise.all(
      proposals.map(async (x) => {
        try {
          if (x.p === undefined) {
            this.finish(x.writes, undefined);
            return;
          }
          let r = await x.p;
          if (!r.ok && r.code === 'limit') r = await this.writeSlowly(x.fork, x.ext, at);
          this.finish(x.writes, r.ok ? undefined : refusalError(r, `write of fork ${x.fork}`));
        } catch (err) {
          this.finish(x.writes, toIosError(err, `write of fork ${x.fork}`));
        }
      }),
    );
  }

  /**
   * The writev touched more extent records than one command may (a fragmented range): map the writes
   * one by one, each range first unmapped in bounded steps when it alone is too fragmented. Not
   * atomic as a whole; none of these writes has been answered yet.
   */
  private async writeSlowly(fork: number, ext: MapWrite[], objectBytes: number): Promise<CommandResult> {
    const max = this.extentsPerCommandMax;
    let last: CommandResult = { ok: true };
    for (const e of ext) {
      last = await this.meta.propose({ t: 'ext.write', fork, ...e, objectSizes: { [e.object]: objectBytes } });
      if (last.ok || last.code !== 'limit') {
        if (!last.ok) return last;
        continue;
      }
      const end = e.offset + e.length;
      let from = e.offset;
      while (from < end) {
        const cut = this.meta.read((tx) => boundedEnd(tx, fork, from, end, Math.max(1, max - 2)));
        const r = await this.meta.propose({ t: 'ext.punch', fork, offset: from, length: cut - from });
        if (!r.ok) return r;
        from = cut;
      }
      last = await this.meta.propose({ t: 'ext.write', fork, ...e, objectSizes: { [e.object]: objectBytes } });
      if (!last.ok) return last;
    }
    return last;
  }

  private finish(writes: PendingWrite[], err: Error | undefined): void {
    let bytes = 0;
    for (const w of writes) {
      bytes += w.data.length;
      if (err === undefined) w.resolve();
      else w.reject(err);
    }
    this.release(bytes);
  }
}
