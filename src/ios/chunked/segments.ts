// The write path of the chunked driver (ARCHITECTURE.md, "The chunked driver"): group commit.
//
// Concurrent writes (of any forks of one share) are gathered into a segment. A segment is sealed
// when it holds `segmentBytes`, when one fork has metaExtentWritesPerBatchMax writes in it, or
// `groupCommitMs` after its first write. A sealed segment is put to the object store as one object,
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
import { limits } from '../../base/limits.js';
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
}

export class SegmentWriter {
  private readonly meta: MetaService;
  private readonly store: ObjectStore;
  private readonly prefix: string;
  private readonly segmentBytes: number;
  private readonly groupCommitMs: number;
  private readonly bufferedBytesMax: number;
  private readonly extentsPerCommandMax: number;
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
  readonly stats: SegmentStats = { segments: 0, segmentBytes: 0, writes: 0, failedSegments: 0 };

  constructor(opts: SegmentWriterOptions) {
    this.meta = opts.meta;
    this.store = opts.store;
    this.prefix = `${opts.clusterId}/seg/${opts.nodeId}/`;
    this.segmentBytes = opts.segmentBytes ?? limits.chunkedSegmentBytes;
    this.groupCommitMs = opts.groupCommitMs ?? limits.chunkedGroupCommitMs;
    this.extentsPerCommandMax = opts.extentsPerCommandMax ?? limits.metaExtentsPerCommandMax;
    this.bufferedBytesMax = Math.max(opts.bufferedBytesMax ?? limits.chunkedBufferedBytesMax, 2 * this.segmentBytes);
  }

  /**
   * Writes `data` at `offset` of `fork`; resolves once the bytes are in a stored segment and the map
   * points at them (applied on this node). The caller checked the arguments and keeps `data` intact
   * until this settles. Writes longer than a segment are split (each piece its own map entry).
   */
  write(fork: number, offset: number, data: Buffer): Promise<void> {
    if (this.closed) return Promise.reject(new IosError('EIO', 'share is closing'));
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
      s.timer = setTimeout(() => {
        if (this.cur === s) this.sealCurrent();
      }, this.groupCommitMs);
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
    void this.commit(seg, key, put, prev, issued);
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
          p = f.ext.length === 0 ? undefined : this.meta.propose({ t: 'ext.writev', fork, writes: f.ext });
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
          if (!r.ok && r.code === 'limit') r = await this.writeSlowly(x.fork, x.ext);
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
  private async writeSlowly(fork: number, ext: MapWrite[]): Promise<CommandResult> {
    const max = this.extentsPerCommandMax;
    let last: CommandResult = { ok: true };
    for (const e of ext) {
      last = await this.meta.propose({ t: 'ext.write', fork, ...e });
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
      last = await this.meta.propose({ t: 'ext.write', fork, ...e });
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
