// The read cache of the chunked driver (ARCHITECTURE.md, "The chunked driver": "Reads consult the map
// and fetch ranges, through a bounded local cache").
//
// Objects are immutable and their keys are never reused (segments.ts: node, epoch, sequence), so a
// cached range never goes stale: the cache is keyed by (object key, aligned block index), with no
// invalidation. A map change (write, punch, clone) only changes which blocks later reads ask for.
//
// - Memory tier bounded by bytes (LRU; blocks are counted by their length), the bound configurable
//   (0: nothing is kept, reads still go through the same path).
// - Optional disk tier under it (disk-cache.ts): a block missing from memory is looked up on disk
//   (verified) before the store; a block fetched from the store is queued to be written to disk in the
//   background (write-through; a block evicted from memory is queued again in case its write was
//   skipped). A read never waits for a disk write.
// - Ownership (spi.ts): a cached block is never handed out. Callers get bytes copied into their own
//   buffer (readInto), which they may change or encrypt in place.
// - Concurrent misses of one block share one fetch (also a read arriving while read-ahead fetches it).
// - A run of consecutive missing blocks of one object is fetched by one ranged get, at most
//   chunkedCacheFetchBytesMax long; the gets of one read run concurrently, bounded.
// - Read-ahead (prefetch) loads blocks in the background, bounded in bytes in flight; when over the
//   bound it is skipped, never queued, so read-ahead can not delay the reads it is meant to help.
// - A get answering fewer bytes than an extent says the object holds is EIO (a map pointing past an
//   object's end is corruption, not a hole).
import { limits } from '../../base/limits.js';
import type { ObjectStore } from '../../objstore/spi.js';
import { IosError } from '../spi.js';
import { DiskCache } from './disk-cache.js';

/** A range of an object to copy to `at` in the output. */
export interface ReadPiece {
  readonly object: string;
  readonly objectOffset: number;
  readonly length: number;
  readonly at: number;
}

export interface BlockCacheOptions {
  /** Bytes kept (default limits.chunkedCacheBytesMax; 0 keeps nothing). */
  bytesMax?: number;
  /** Block size (default limits.chunkedCacheBlockBytes). */
  blockBytes?: number;
  /** Longest single get (default limits.chunkedCacheFetchBytesMax; rounded down to whole blocks). */
  fetchBytesMax?: number;
  /** Read-ahead bytes in flight (default limits.chunkedReadAheadInFlightBytesMax). */
  prefetchInFlightBytesMax?: number;
  /** Gets one readInto keeps in flight (default limits.chunkedReadGetsInFlightMax). */
  getsInFlightMax?: number;
  /** admit() keeps the segments it is given (default true; false: only reads fill the cache)... */
  keepWrites?: boolean;
  /** ... when smaller than this (default limits.chunkedCacheAdmitSegmentBytesMax). */
  admitBytesMax?: number;
  /** The disk tier (absent: memory only). Its blocks have this cache's block size. */
  disk?: { dir: string; bytesMax: number; writeQueueBytesMax?: number; writesInFlightMax?: number };
}

export interface BlockCacheStats {
  /** Blocks found in the cache. */
  hits: number;
  /** Blocks fetched for a read (not found, not already being fetched). */
  misses: number;
  /** Blocks a read found being fetched (by read-ahead or another read) and waited for. */
  joined: number;
  /** Object-store gets issued, and bytes they returned. */
  gets: number;
  getBytes: number;
  /** Blocks fetched by read-ahead; read-ahead requests skipped because of the in-flight bound. */
  prefetchedBlocks: number;
  prefetchSkipped: number;
  /** Read-ahead gets that failed (nobody waited for them; a read that needs the blocks fetches again). */
  prefetchFailures: number;
  evictions: number;
  /** Blocks missing from memory found on disk (the disk tier's own figures: `disk.stats`). */
  diskHits: number;
}

interface Deferred {
  promise: Promise<Buffer>;
  /** Fetched by read-ahead: a read that joined it fetches the block itself if it fails. */
  prefetch: boolean;
  resolve: (b: Buffer) => void;
  reject: (e: unknown) => void;
}

function deferred(): Deferred {
  let resolve!: (b: Buffer) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<Buffer>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  // Every waiter attaches its own handlers; this keeps a failure nobody waits for from being "unhandled".
  promise.catch(() => undefined);
  return { promise, resolve, reject, prefetch: false };
}

/** One ranged get of blocks [first, first+count) of an object. */
interface Run {
  object: string;
  first: number;
  count: number;
  waits: Deferred[];
}

function checkPositiveInt(name: string, v: number, min: number): void {
  if (!Number.isSafeInteger(v) || v < min) throw new IosError('EINVAL', `cache option ${name} = ${v}`);
}

export class BlockCache {
  readonly bytesMax: number;
  readonly blockBytes: number;
  private readonly keepWrites: boolean;
  private readonly admitBytesMax: number;
  private readonly fetchBlocksMax: number;
  private readonly prefetchBytesMax: number;
  private readonly getsMax: number;
  /** LRU order: Map iteration is insertion order; a hit re-inserts its block at the end. */
  private readonly blocks = new Map<string, Buffer>();
  private readonly inflight = new Map<string, Deferred>();
  private held = 0;
  /** Kept blocks that are views into each shared buffer (see charge()). */
  private readonly views = new Map<ArrayBufferLike, number>();
  /** Blocks kept by admit(): not offered to the disk tier when evicted (it fills from reads only). */
  private readonly admitted = new WeakSet<Buffer>();
  private prefetching = 0;
  readonly stats: BlockCacheStats = { hits: 0, misses: 0, joined: 0, gets: 0, getBytes: 0, prefetchedBlocks: 0, prefetchSkipped: 0, prefetchFailures: 0, evictions: 0, diskHits: 0 };
  /** The disk tier, if configured. */
  readonly disk: DiskCache | undefined;

  constructor(
    private readonly store: ObjectStore,
    opts: BlockCacheOptions = {},
  ) {
    this.bytesMax = opts.bytesMax ?? limits.chunkedCacheBytesMax;
    this.blockBytes = opts.blockBytes ?? limits.chunkedCacheBlockBytes;
    this.keepWrites = opts.keepWrites ?? true;
    this.admitBytesMax = opts.admitBytesMax ?? limits.chunkedCacheAdmitSegmentBytesMax;
    const fetchBytes = opts.fetchBytesMax ?? limits.chunkedCacheFetchBytesMax;
    this.prefetchBytesMax = opts.prefetchInFlightBytesMax ?? limits.chunkedReadAheadInFlightBytesMax;
    this.getsMax = opts.getsInFlightMax ?? limits.chunkedReadGetsInFlightMax;
    checkPositiveInt('bytesMax', this.bytesMax, 0);
    checkPositiveInt('blockBytes', this.blockBytes, 512);
    checkPositiveInt('fetchBytesMax', fetchBytes, 1);
    checkPositiveInt('prefetchInFlightBytesMax', this.prefetchBytesMax, 0);
    checkPositiveInt('getsInFlightMax', this.getsMax, 1);
    this.fetchBlocksMax = Math.max(1, Math.floor(fetchBytes / this.blockBytes));
    if (opts.disk !== undefined) {
      const d = opts.disk;
      this.disk = new DiskCache({
        dir: d.dir,
        bytesMax: d.bytesMax,
        blockBytes: this.blockBytes,
        ...(d.writeQueueBytesMax !== undefined ? { writeQueueBytesMax: d.writeQueueBytesMax } : {}),
        ...(d.writesInFlightMax !== undefined ? { writesInFlightMax: d.writesInFlightMax } : {}),
      });
    }
  }

  /** Waits for the disk tier's queued writes and stops it taking more (reads still work). */
  async close(): Promise<void> {
    await this.disk?.close();
  }

  /** Bytes currently kept. */
  get bytes(): number {
    return this.held;
  }

  /** Blocks currently kept. */
  get size(): number {
    return this.blocks.size;
  }

  /** Drops every kept block (fetches in flight finish and are kept). */
  clear(): void {
    this.blocks.clear();
    this.views.clear();
    this.held = 0;
  }

  /**
   * Copies every piece's object bytes into `out` at `piece.at` (the caller zero-fills holes). Rejects
   * with the store's error (the caller maps it) or IosError EIO for an object shorter than a piece.
   */
  async readInto(pieces: readonly ReadPiece[], out: Buffer): Promise<void> {
    const runs: Run[] = [];
    const copies: Promise<void>[] = [];
    for (const p of pieces) {
      if (p.length <= 0) continue;
      // Copies run after planning (a short block throws in copyPart; planning must finish so that
      // every run it registered is fetched and settles).
      this.plan(p.object, p.objectOffset, p.length, runs, (b, wait) => {
        const got =
          Buffer.isBuffer(wait)
            ? Promise.resolve(wait)
            : wait.prefetch
              ? wait.promise.catch(() => this.fetchBlock(p.object, b))
              : wait.promise;
        copies.push(got.then((buf) => this.copyPart(p, b, buf, out)));
      });
    }
    for (const r of runs) this.stats.misses += r.count;
    const jobs = runs.map((r) => () => this.fetchRun(r, false));
    // Gets are started bounded; every copy waits on its block (fetched here or by someone else).
    const started = this.bounded(jobs, this.getsMax);
    const results = await Promise.allSettled([started, ...copies]);
    for (const r of results) if (r.status === 'rejected') throw r.reason;
  }

  /**
   * Keeps the blocks of a new object whose whole body is `parts` (in order), copied: a segment just
   * stored (segments.ts onStored), so data read back soon after it is written does not go to the
   * store. Memory tier only (the disk tier fills from reads). Objects are immutable: nothing can be
   * stale. An object larger than the memory tier, or not smaller than admitBytesMax, is not kept.
   */
  admit(object: string, parts: readonly Buffer[]): void {
    const B = this.blockBytes;
    let total = 0;
    for (const p of parts) total += p.length;
    if (!this.keepWrites || total === 0 || total > this.bytesMax || total >= this.admitBytesMax) return;
    let part = 0;
    let inPart = 0;
    for (let b = 0; b * B < total; b++) {
      const block = Buffer.allocUnsafe(Math.min(B, total - b * B));
      let filled = 0;
      while (filled < block.length) {
        const src = parts[part]!;
        const n = src.copy(block, filled, inPart, Math.min(src.length, inPart + block.length - filled));
        filled += n;
        inPart += n;
        if (inPart === src.length) {
          part++;
          inPart = 0;
        }
      }
      const k = this.keyOf(object, b);
      if (this.inflight.has(k)) continue;
      this.admitted.add(block);
      this.keep(k, block);
    }
  }

  /**
   * Starts loading the blocks covering the given object ranges in the background (read-ahead). Skips
   * what is cached or being fetched, and everything once the in-flight bound is reached. Returns the
   * bytes scheduled.
   */
  prefetch(ranges: readonly { object: string; objectOffset: number; length: number }[]): number {
    if (this.bytesMax === 0 && this.disk === undefined) return 0; // nothing would be kept
    const runs: Run[] = [];
    for (const r of ranges) {
      if (r.length <= 0) continue;
      this.plan(r.object, r.objectOffset, r.length, runs, undefined);
    }
    for (const run of runs) for (const d of run.waits) d.prefetch = true;
    let scheduled = 0;
    for (const run of runs) {
      const bytes = run.count * this.blockBytes;
      if (this.prefetching + bytes > this.prefetchBytesMax) {
        // Not fetched after all: release the blocks so later reads fetch them themselves.
        this.stats.prefetchSkipped++;
        this.abandon(run);
        continue;
      }
      this.prefetching += bytes;
      scheduled += bytes;
      this.stats.prefetchedBlocks += run.count;
      void this.fetchRun(run, true).finally(() => {
        this.prefetching -= bytes;
      });
    }
    return scheduled;
  }

  /**
   * A copy of bytes [offset, offset+length) of `object` if every block covering them is kept in
   * memory, else undefined. For background readers (compaction): nothing is fetched, the LRU order
   * and the hit/miss counters are left alone, and a block shorter than the range (the object ends
   * earlier) is a miss. Blocks are immutable, so the copy is exactly the object's bytes.
   */
  peek(object: string, offset: number, length: number): Buffer | undefined {
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length <= 0) return undefined;
    const B = this.blockBytes;
    const first = Math.floor(offset / B);
    const last = Math.floor((offset + length - 1) / B);
    const found: Buffer[] = [];
    for (let b = first; b <= last; b++) {
      const kept = this.blocks.get(this.keyOf(object, b));
      if (kept === undefined) return undefined;
      const end = Math.min(offset + length, (b + 1) * B);
      if (b * B + kept.length < end) return undefined;
      found.push(kept);
    }
    const out = Buffer.allocUnsafe(length);
    for (let i = 0; i < found.length; i++) {
      const start = (first + i) * B;
      const from = Math.max(offset, start);
      const to = Math.min(offset + length, start + B);
      found[i]!.copy(out, from - offset, from - start, to - start);
    }
    return out;
  }

  // ---- internals ----

  private keyOf(object: string, block: number): string {
    return `${object}\u0000${block}`;
  }

  /**
   * For each block of [offset, offset+length) of `object`: hands a kept block (or the promise of one
   * being fetched) to `use`; consecutive missing blocks become runs (registered as in flight now, so
   * a later piece of the same read, or another read, joins them instead of fetching again). Without
   * `use` (read-ahead) only the runs are made and nothing is counted as a hit.
   */
  private plan(object: string, offset: number, length: number, runs: Run[], use: ((block: number, b: Buffer | Deferred) => void) | undefined): void {
    const B = this.blockBytes;
    const first = Math.floor(offset / B);
    const last = Math.floor((offset + length - 1) / B);
    let run: Run | undefined;
    for (let b = first; b <= last; b++) {
      const k = this.keyOf(object, b);
      const kept = this.blocks.get(k);
      if (kept !== undefined) {
        this.blocks.delete(k);
        this.blocks.set(k, kept);
        if (use !== undefined) this.stats.hits++;
        run = undefined;
        use?.(b, kept);
        continue;
      }
      const pending = this.inflight.get(k);
      if (pending !== undefined) {
        if (use !== undefined) this.stats.joined++;
        run = undefined;
        use?.(b, pending);
        continue;
      }
      if (run === undefined || run.count >= this.fetchBlocksMax) {
        run = { object, first: b, count: 0, waits: [] };
        runs.push(run);
      }
      const d = deferred();
      this.inflight.set(k, d);
      run.waits.push(d);
      run.count++;
      use?.(b, d);
    }
  }

  private abandon(run: Run): void {
    for (let i = 0; i < run.count; i++) {
      const k = this.keyOf(run.object, run.first + i);
      const d = run.waits[i]!;
      if (this.inflight.get(k) === d) this.inflight.delete(k);
      d.reject(new IosError('EIO', 'read-ahead abandoned'));
    }
  }

  /**
   * Resolves a run's blocks: from the disk tier where it has them, the rest by ranged gets (one per
   * stretch of consecutive blocks missing on disk, one after another so that a run stays one get in
   * flight). Never rejects.
   */
  private async fetchRun(run: Run, prefetch: boolean): Promise<void> {
    const disk = this.disk;
    if (disk === undefined) return this.getRun(run, prefetch);
    const found = await Promise.all(run.waits.map((_, i) => disk.get(run.object, run.first + i)));
    const rest: Run[] = [];
    let sub: Run | undefined;
    for (let i = 0; i < run.count; i++) {
      const f = found[i];
      const d = run.waits[i]!;
      if (f !== undefined) {
        const k = this.keyOf(run.object, run.first + i);
        if (this.inflight.get(k) === d) this.inflight.delete(k);
        this.stats.diskHits++;
        this.keep(k, f);
        d.resolve(f);
        sub = undefined;
        continue;
      }
      if (sub === undefined) {
        sub = { object: run.object, first: run.first + i, count: 0, waits: [] };
        rest.push(sub);
      }
      sub.waits.push(d);
      sub.count++;
    }
    for (const r of rest) await this.getRun(r, prefetch);
  }

  /** One ranged get for a run; resolves its blocks (kept if they fit) or rejects them. Never rejects. */
  private async getRun(run: Run, prefetch: boolean): Promise<void> {
    const B = this.blockBytes;
    const offset = run.first * B;
    let buf: Buffer;
    try {
      buf = await this.store.get(run.object, { offset, length: run.count * B });
      this.stats.gets++;
      this.stats.getBytes += buf.length;
    } catch (err) {
      for (let i = 0; i < run.count; i++) {
        const k = this.keyOf(run.object, run.first + i);
        if (this.inflight.get(k) === run.waits[i]) this.inflight.delete(k);
        run.waits[i]!.reject(err);
      }
      if (prefetch) this.stats.prefetchFailures++;
      return;
    }
    for (let i = 0; i < run.count; i++) {
      const k = this.keyOf(run.object, run.first + i);
      const s = Math.min(i * B, buf.length);
      const t = Math.min((i + 1) * B, buf.length);
      // The store's buffer is ours (its contract): blocks are views into it, not copies (copying
      // cost more than the rest of a cold read); keep() counts the whole buffer while any view of it
      // is kept. In a memory tier too small for that (a quarter of it), each block gets its own copy.
      const block = run.count === 1 || buf.buffer.byteLength * 4 <= this.bytesMax ? buf.subarray(s, t) : Buffer.from(buf.subarray(s, t));
      if (this.inflight.get(k) === run.waits[i]) this.inflight.delete(k);
      if (block.length > 0) {
        this.keep(k, block);
        this.disk?.put(run.object, run.first + i, block);
      }
      run.waits[i]!.resolve(block);
    }
  }

  /** One block fetched directly (a read whose read-ahead fetch failed), not kept. */
  private async fetchBlock(object: string, b: number): Promise<Buffer> {
    const buf = await this.store.get(object, { offset: b * this.blockBytes, length: this.blockBytes });
    this.stats.gets++;
    this.stats.getBytes += buf.length;
    return buf;
  }

  /**
   * Memory a kept block holds: its own bytes, or, for a view into a larger buffer (the blocks of one
   * ranged get share it), that whole buffer, counted once for all the views kept into it and
   * released when the last of them goes. The bound is on memory really held.
   */
  private charge(block: Buffer): number {
    const whole = block.buffer.byteLength;
    // Slices of Node's small-buffer pool count as themselves, as they always did.
    if (whole <= block.length || whole <= Buffer.poolSize) return block.length;
    const refs = this.views.get(block.buffer) ?? 0;
    this.views.set(block.buffer, refs + 1);
    return refs === 0 ? whole : 0;
  }

  private release(block: Buffer): number {
    const whole = block.buffer.byteLength;
    if (whole <= block.length || whole <= Buffer.poolSize) return block.length;
    const refs = this.views.get(block.buffer) ?? 1;
    if (refs > 1) {
      this.views.set(block.buffer, refs - 1);
      return 0;
    }
    this.views.delete(block.buffer);
    return whole;
  }

  private keep(k: string, block: Buffer): void {
    if (Math.max(block.length, block.buffer.byteLength > Buffer.poolSize ? block.buffer.byteLength : 0) > this.bytesMax) return;
    const old = this.blocks.get(k);
    if (old !== undefined) {
      this.blocks.delete(k);
      this.held -= this.release(old);
    }
    this.blocks.set(k, block);
    this.held += this.charge(block);
    while (this.held > this.bytesMax) {
      const oldest = this.blocks.keys().next();
      if (oldest.done === true) break;
      const ob = this.blocks.get(oldest.value)!;
      this.blocks.delete(oldest.value);
      this.held -= this.release(ob);
      this.stats.evictions++;
      if (this.disk !== undefined && !this.admitted.has(ob)) {
        // Its write-through may have been skipped (queue full): offer it again (a no-op if on disk).
        const sep = oldest.value.lastIndexOf('\u0000');
        this.disk.put(oldest.value.slice(0, sep), Number(oldest.value.slice(sep + 1)), ob);
      }
    }
  }

  /** Copies the part of piece `p` that lies in block `b` (holding `buf`) into `out`. */
  private copyPart(p: ReadPiece, b: number, buf: Buffer, out: Buffer): void {
    const start = b * this.blockBytes;
    const from = Math.max(p.objectOffset, start);
    const to = Math.min(p.objectOffset + p.length, start + this.blockBytes);
    if (start + buf.length < to) {
      throw new IosError('EIO', `object ${p.object} holds ${start + buf.length - p.objectOffset} of ${p.length} bytes at ${p.objectOffset}`);
    }
    buf.copy(out, p.at + (from - p.objectOffset), from - start, to - start);
  }

  /** Runs `jobs` with at most `max` in flight. */
  private async bounded(jobs: (() => Promise<void>)[], max: number): Promise<void> {
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < jobs.length) await jobs[next++]!();
    };
    await Promise.all(Array.from({ length: Math.min(max, jobs.length) }, worker));
  }
}
