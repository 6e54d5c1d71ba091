// An open object of the chunked driver: an inode (file id) and, for data, the fork it reads and writes
// (the unnamed stream's fork, or a named stream's). A handle holds no data and no cached metadata
// (only its read-ahead position): every call reads the local applied state, so a handle follows its
// object across renames (the inode and fork numbers never change) and sees every change applied on
// this node. Object bytes are cached by the driver (cache.ts), keyed by immutable object ranges.
import { limits } from '../../base/limits.js';
import { filetimeToUnixNs, unixNsToFiletime } from '../../base/clock.js';
import type { MetaService } from '../../meta/service.js';
import type { ReadTx } from '../../meta/tx.js';
import { extentsIn, mappedBytes } from '../../meta/families/extents.js';
import { getFork, getInode, getStream, listStreams, readdir, type Inode } from '../../meta/families/namespace.js';
import { eaPackedBytes, type MappedExtent, type StoredEa } from '../../meta/families/ns-records.js';
import type { ObjectStore } from '../../objstore/spi.js';
import {
  FILE_ATTR_SETTABLE,
  FileAttr,
  IosError,
  type DirEntry,
  type EaEntry,
  type FileInfo,
  type IosHandle,
  type ListPage,
  type SetInfo,
  type StreamEntry,
} from '../spi.js';
import { toIosError, valueOf } from './errors.js';
import type { BlockCache, ReadPiece } from './cache.js';
import type { SegmentWriter } from './segments.js';
import type { ForkMapCache } from './map-cache.js';

/** What a handle needs from its share. */
export interface ShareContext {
  readonly meta: MetaService;
  readonly store: ObjectStore;
  readonly writer: SegmentWriter;
  /** The driver's read cache (cache.ts), keyed by object: shared by every share on the same store. */
  readonly cache: BlockCache;
  /** Sizes and extent maps of forks as applied, kept between changes (map-cache.ts). */
  readonly maps: ForkMapCache;
  /** Largest read-ahead window of a handle (0: no read-ahead). */
  readonly readAheadBytesMax: number;
  readonly readOnly: boolean;
  /** The current time as a FILETIME (records keep FILETIME, the SPI Unix ns). */
  now(): bigint;
  checkOpen(): void;
  /** Sets a fork's end of file once the writes issued before are committed (share.ts). */
  truncateFork(fork: number, size: number): Promise<void>;
  /** Unmaps [offset, offset+length) of a fork in bounded ext.punch commands (share.ts). */
  punchFork(fork: number, offset: number, length: number): Promise<void>;
  /** Maps a range of dstFork to what a range of srcFork maps, in bounded ext.clone commands (share.ts). */
  cloneFork(srcFork: number, srcOffset: number, dstFork: number, dstOffset: number, length: number): Promise<void>;
  /** Checks a security descriptor from the SPI (opaque bytes, bounded). */
  checkSd(sd: Buffer): void;
}

/** The allocation unit the driver reports in (FsStats.blockBytes). */
export const CLUSTER_BYTES = 4096;

function clusters(bytes: number): number {
  return Math.ceil(bytes / CLUSTER_BYTES) * CLUSTER_BYTES;
}

/**
 * Allocation reported for a fork: the bytes its extents map, in whole clusters (holes hold nothing:
 * every file of this driver is sparse), or the allocation a client asked for if that is larger
 * (FileAllocationInformation, CREATE AllocationSize). A map too old to have a count (ns-records.ts
 * MappedRecord) reports its size in whole clusters.
 */
export function allocationOf(tx: ReadTx, fork: number, size: number, hint: number | undefined): number {
  const mapped = fork === 0 ? 0 : mappedBytes(tx, fork);
  return Math.max(clusters(mapped ?? size), hint ?? 0);
}

/** FileInfo of an inode, or of one of its named streams (`stream`: its fork and size). */
export function infoOf(tx: ReadTx, node: Inode, stream?: { fork: number; size: number }): FileInfo {
  const isDirectory = node.kind === 'dir';
  const sz = stream?.size ?? (isDirectory ? 0 : node.size);
  return {
    fileId: BigInt(node.ino),
    isDirectory: stream === undefined ? isDirectory : false,
    size: sz,
    allocationSize:
      stream === undefined
        ? isDirectory
          ? 0
          : allocationOf(tx, node.fork, sz, node.allocation)
        : allocationOf(tx, stream.fork, sz, undefined),
    creationTimeNs: filetimeToUnixNs(node.creation),
    lastAccessTimeNs: filetimeToUnixNs(node.lastAccess),
    lastWriteTimeNs: filetimeToUnixNs(node.lastWrite),
    changeTimeNs: filetimeToUnixNs(node.change),
    attributes: (node.attributes & FILE_ATTR_SETTABLE) | (isDirectory ? FileAttr.DIRECTORY : 0),
    links: node.nlink,
    eaBytes: eaPackedBytes(node.eas),
  };
}

/** EA changes as ns.seteas / ns.create take them (values copied: the proposal is encoded later). */
export function easArg(eas: readonly EaEntry[]): StoredEa[] {
  if (!Array.isArray(eas)) throw new IosError('EINVAL', 'EAs must be an array');
  for (const ea of eas) {
    if (typeof ea !== 'object' || ea === null || typeof ea.name !== 'string' || !Buffer.isBuffer(ea.value)) throw new IosError('EINVAL', 'invalid EA');
  }
  return eas.map((ea) => ({ name: ea.name, flags: ea.flags, value: Buffer.from(ea.value) }));
}

/** Size of the data a fork holds and the name of its stream (undefined: the unnamed stream). */
export function forkState(tx: ReadTx, fork: number): { ino: number; size: number; stream: string | undefined } | undefined {
  const f = getFork(tx, fork);
  if (f === undefined) return undefined;
  if (f.stream !== undefined) {
    const s = getStream(tx, f.ino, f.stream);
    return s === undefined ? undefined : { ino: f.ino, size: s.size, stream: s.name };
  }
  const i = getInode(tx, f.ino);
  return i === undefined ? undefined : { ino: f.ino, size: i.size, stream: undefined };
}

/** The parts of `exts` within [from, end) as read pieces placed relative to `offset` (the read's start). */
function addPieces(pieces: ReadPiece[], exts: readonly MappedExtent[], offset: number, from: number, end: number): void {
  for (const e of exts) {
    const s0 = Math.max(e.offset, from);
    const t0 = Math.min(e.offset + e.length, end);
    if (t0 > s0) pieces.push({ object: e.object, objectOffset: e.objectOffset + (s0 - e.offset), length: t0 - s0, at: s0 - offset });
  }
}

export function checkRange(offset: number, length: number): void {
  if (!Number.isSafeInteger(offset) || offset < 0) throw new IosError('EINVAL', `offset ${offset}`);
  if (!Number.isSafeInteger(length) || length < 0) throw new IosError('EINVAL', `length ${length}`);
  if (offset + length > limits.metaFileBytesMax) throw new IosError('EINVAL', `range ends beyond ${limits.metaFileBytesMax}`);
}

export class ChunkedHandle implements IosHandle {
  readonly fileId: bigint;
  readonly isDirectory: boolean;
  private closed = false;
  private lastStreamName: string | undefined;
  /** Data was written or truncated through this handle since the last stamp (spi.ts "Times"). */
  private modified = false;
  /** Automatic time updates this handle stopped (MS-FSA Open.UserSet*Time). */
  private readonly userSet = { lastAccess: false, lastWrite: false, change: false };

  constructor(
    private readonly ctx: ShareContext,
    readonly ino: number,
    isDirectory: boolean,
    /** Data fork (0 for a directory's unnamed stream). */
    readonly fork: number,
    /** True when open on a named stream. */
    private readonly named: boolean,
    private readonly writable: boolean,
    streamName?: string,
  ) {
    this.fileId = BigInt(ino);
    this.isDirectory = isDirectory && !named;
    this.lastStreamName = streamName;
  }

  /** The stream's stored name, following renames (spi.ts: "Open handles follow the stream"). */
  get stream(): string | undefined {
    if (!this.named) return undefined;
    try {
      const s = this.ctx.meta.read((tx) => forkState(tx, this.fork));
      if (s?.stream !== undefined) this.lastStreamName = s.stream;
    } catch {
      // the service failed: keep the last known name
    }
    return this.lastStreamName;
  }

  async info(): Promise<FileInfo> {
    this.checkOpen();
    return this.ctx.meta.read((tx) => {
      const node = getInode(tx, this.ino);
      if (node === undefined) throw new IosError('ENOENT', `inode ${this.ino} no longer exists`);
      if (!this.named) return infoOf(tx, node);
      const s = forkState(tx, this.fork);
      if (s === undefined) throw new IosError('ENOENT', `stream of inode ${this.ino} no longer exists`);
      return infoOf(tx, node, { fork: this.fork, size: s.size });
    });
  }

  /**
   * Reads [offset, offset+length) clamped at end of file: the extents over the range from the local
   * state, holes as zeros without touching the store, mapped ranges through the read cache (cache.ts:
   * the answer is always the caller's own buffer, never one the cache keeps). A sequential pattern
   * starts read-ahead of the following window in the background.
   */
  async read(offset: number, length: number, into?: Buffer): Promise<Buffer> {
    this.checkOpen();
    this.checkData();
    checkRange(offset, Math.min(length, limits.ioBytesMax));
    if (length > limits.ioBytesMax) throw new IosError('EINVAL', `read of ${length} bytes`);
    if (into !== undefined && into.length < length) throw new IosError('EINVAL', `read buffer of ${into.length} bytes for ${length}`);
    const plan = this.plan(offset, length);
    if (plan === undefined) return into !== undefined ? into.subarray(0, 0) : Buffer.alloc(0);
    const { n, pieces, size } = plan;
    const out = into !== undefined ? into.subarray(0, n) : Buffer.allocUnsafe(n);
    let cursor = 0;
    for (const p of pieces) {
      if (p.at > cursor) out.fill(0, cursor, p.at);
      cursor = p.at + p.length;
    }
    if (cursor < n) out.fill(0, cursor, n);
    // The read's own gets are issued first (synchronously, in readInto), then read-ahead, which skips
    // the blocks the read is fetching.
    const reading = pieces.length > 0 ? this.ctx.cache.readInto(pieces, out) : undefined;
    this.readAhead(offset, n, size);
    if (reading !== undefined) {
      try {
        await reading;
      } catch (err) {
        const e = toIosError(err, `read of inode ${this.ino}`);
        throw e.code === 'EIO' ? e : new IosError('EIO', e.message, { cause: err });
      }
    }
    return out;
  }

  /** The mapped pieces of [offset, offset+length) clamped at end of file; undefined when empty. */
  private plan(offset: number, length: number): { n: number; size: number; pieces: ReadPiece[] } | undefined {
    const v = this.ctx.maps.view(this.fork);
    if (v === undefined) throw new IosError('ENOENT', `data of inode ${this.ino} no longer exists`);
    if (v.extents !== undefined) {
      const end = Math.min(offset + length, v.size);
      if (end <= offset) return undefined;
      const pieces: ReadPiece[] = [];
      addPieces(pieces, v.extents.overlapping(offset, end), offset, offset, end);
      return { n: end - offset, size: v.size, pieces };
    }
    // A map too fragmented to keep: read the window from the state.
    return this.ctx.meta.read((tx) => {
      const s = forkState(tx, this.fork);
      if (s === undefined) throw new IosError('ENOENT', `data of inode ${this.ino} no longer exists`);
      const end = Math.min(offset + length, s.size);
      if (end <= offset) return undefined;
      const pieces: ReadPiece[] = [];
      let pos = offset;
      for (;;) {
        const exts = extentsIn(tx, this.fork, pos, end - pos);
        addPieces(pieces, exts, offset, pos, end);
        if (exts.length < limits.metaReadEntriesMax) break;
        const last = exts[exts.length - 1]!;
        pos = last.offset + last.length;
        if (pos >= end) break;
      }
      return { n: end - offset, size: s.size, pieces };
    });
  }

  /**
   * Read-ahead (per handle). A read is "sequential" when it starts near the furthest end read so far
   * (within twice the read size, either side: clients keep several reads in flight and they may
   * arrive out of order) and moves that end forward. From the second sequential read on, the window
   * after the furthest end is fetched into the cache in the background; the window starts at four
   * reads' worth and doubles up to readAheadBytesMax, and is topped up once half of it is consumed.
   * A far jump (random access) resets it all; prefetch never runs for random reads.
   */
  private readAhead(offset: number, n: number, size: number): void {
    const max = this.ctx.readAheadBytesMax;
    if (max <= 0) return;
    const ra = this.ra;
    const end = offset + n;
    const slack = 2 * Math.max(n, ra.lastLength);
    ra.lastLength = n;
    if (ra.end < 0 || offset < ra.end - slack || offset > ra.end + slack) {
      // First read, or a jump: a new candidate stream starts here.
      ra.end = end;
      ra.streak = 1;
      ra.window = 0;
      ra.fetchedTo = 0;
      return;
    }
    if (end <= ra.end) return; // inside what was read: neither a step forward nor a jump
    ra.end = end;
    ra.streak++;
    if (ra.streak < 2) return;
    if (ra.window === 0) ra.window = Math.min(max, Math.max(4 * n, this.ctx.cache.blockBytes));
    if (ra.fetchedTo >= ra.end + ra.window / 2) return; // enough is ahead already
    const from = Math.max(ra.end, ra.fetchedTo);
    const to = Math.min(ra.end + ra.window, size);
    ra.window = Math.min(max, ra.window * 2);
    if (to <= from) return;
    ra.fetchedTo = to;
    try {
      const plan = this.plan(from, to - from);
      if (plan !== undefined && plan.pieces.length > 0) this.ctx.cache.prefetch(plan.pieces);
    } catch {
      // read-ahead is best effort: the read itself reports errors
    }
  }

  private readonly ra = { end: -1, lastLength: 0, streak: 0, window: 0, fetchedTo: 0 };

  async write(offset: number, data: Buffer): Promise<number> {
    this.checkOpen();
    this.checkData();
    this.checkWritable();
    checkRange(offset, data.length);
    if (data.length === 0) return 0;
    // MS-FSA 2.1.4.17: the modification is noted on the handle and stamped (LastWriteTime, ChangeTime)
    // when it closes or truncates, as NTFS does: no metadata command per write.
    this.modified = true;
    await this.ctx.writer.write(this.fork, offset, data);
    return data.length;
  }

  /** Every write issued through this fork before the call is in the store and the map. */
  async flush(): Promise<void> {
    this.checkOpen();
    if (this.fork === 0) return;
    await this.ctx.writer.flushFork(this.fork);
  }

  async truncate(size: number): Promise<void> {
    this.checkOpen();
    this.checkData();
    this.checkWritable();
    checkRange(size, 0);
    await this.ctx.truncateFork(this.fork, size);
    // NTFS takes the moment it writes the new end of file to stamp the noted times too; a requested
    // allocation above the new end of file is released (MS-FSA 2.1.5.15.4).
    this.modified = true;
    const hint = this.named ? undefined : this.ctx.meta.read((tx) => getInode(tx, this.ino)?.allocation);
    await this.stampTimes(hint !== undefined && hint > size ? clusters(size) : undefined);
  }

  // ---- range operations beyond the SPI (map operations: no data moves) ----

  /**
   * Zeroes [offset, offset+length): the range is unmapped (ext.punch), reads as zeros and holds no
   * store space; the end of file is unchanged, a range beyond it changes nothing. The server's
   * FSCTL_SET_ZERO_DATA (MS-FSA 2.1.5.10.39; MS-FSCC 2.3.85 lets a file system deallocate zeroed
   * ranges) maps here. Writes of this fork issued before are committed first; writes issued
   * concurrently land in an unspecified order.
   */
  async zeroRange(offset: number, length: number): Promise<void> {
    this.checkOpen();
    this.checkData();
    this.checkWritable();
    checkRange(offset, length);
    if (length === 0) return;
    await this.ctx.punchFork(this.fork, offset, length);
  }

  /**
   * Discards [offset, offset+length) (FSCTL_FILE_LEVEL_TRIM, MS-FSA 2.1.5.10.6): after a trim the
   * contents are undefined to the client; this driver unmaps the range, so it reads as zeros.
   */
  async trimRange(offset: number, length: number): Promise<void> {
    await this.zeroRange(offset, length);
  }

  /**
   * The mapped (allocated) ranges within [offset, offset+length), in order, clipped to it, neighbours
   * coalesced; at most `max` (a caller wanting more asks again from the end of the last one). Writes
   * of this fork issued before are committed first. FSCTL_QUERY_ALLOCATED_RANGES (MS-FSA
   * 2.1.5.10.22) maps here; every file of this driver is sparse: holes are never reported.
   */
  async allocatedRanges(offset: number, length: number, max: number = limits.chunkedAllocatedRangesMax): Promise<{ offset: number; length: number }[]> {
    this.checkOpen();
    this.checkData();
    checkRange(offset, Math.min(length, limits.metaFileBytesMax - offset));
    if (!Number.isSafeInteger(max) || max < 1 || max > limits.chunkedAllocatedRangesMax) throw new IosError('EINVAL', `allocated ranges max ${max}`);
    await this.ctx.writer.flushFork(this.fork);
    const end = Math.min(offset + length, limits.metaFileBytesMax);
    const out: { offset: number; length: number }[] = [];
    let pos = offset;
    while (pos < end) {
      const exts = this.ctx.meta.read((tx) => extentsIn(tx, this.fork, pos, end - pos));
      for (const e of exts) {
        const s = Math.max(e.offset, pos);
        const t = Math.min(e.offset + e.length, end);
        if (t <= s) continue;
        const last = out[out.length - 1];
        if (last !== undefined && last.offset + last.length === s) last.length += t - s;
        else {
          if (out.length === max) return out;
          out.push({ offset: s, length: t - s });
        }
      }
      if (exts.length < limits.metaReadEntriesMax) break;
      const l = exts[exts.length - 1]!;
      pos = l.offset + l.length;
    }
    return out;
  }

  /**
   * Makes [dstOffset, dstOffset+length) of this handle's data map what [srcOffset, srcOffset+length)
   * of `src`'s maps (ext.clone: objects shared and reference counted, holes cloned as holes, no data
   * moves). As FSCTL_DUPLICATE_EXTENTS_TO_FILE requires (MS-FSA 2.1.5.10.4): both ranges within their
   * end of file (the caller extends the target first), ranges of one stream not overlapping; else
   * EINVAL. Pending writes of both forks are committed first. A range over more extents than one
   * command may touch is cloned in bounded steps (not atomic as a whole).
   */
  async cloneRange(src: ChunkedHandle, srcOffset: number, dstOffset: number, length: number): Promise<void> {
    const { srcSize, dstSize } = await this.prepareRangeOp(src, srcOffset, dstOffset, length);
    if (length === 0) return;
    if (src.fork === this.fork && srcOffset < dstOffset + length && dstOffset < srcOffset + length) {
      throw new IosError('EINVAL', 'clone ranges overlap in one stream');
    }
    if (srcOffset + length > srcSize) throw new IosError('EINVAL', `clone source range ends beyond its end of file ${srcSize}`);
    if (dstOffset + length > dstSize) throw new IosError('EINVAL', `clone target range ends beyond its end of file ${dstSize}`);
    await this.ctx.cloneFork(src.fork, srcOffset, this.fork, dstOffset, length);
  }

  /**
   * Copies [srcOffset, srcOffset+length) of `src` to dstOffset of this handle, as a map operation
   * where it can (SMB2 server-side copy, FSCTL_SRV_COPYCHUNK, MS-SMB2 3.3.5.15.6, and ODX later):
   * the source range is clamped at its end of file; the target is extended as a write would. Returns
   * the bytes copied. The target is extended atomically by writing the last chunkedCopyTailBytes as
   * data (ext.write raises the end of file to max(size, end), never lowers it, so a concurrent write
   * beyond it is never cut); the rest is cloned. Overlapping ranges of one stream are copied as data,
   * in memmove order (as if read whole first).
   */
  async copyRange(src: ChunkedHandle, srcOffset: number, dstOffset: number, length: number): Promise<number> {
    const { srcSize, dstSize } = await this.prepareRangeOp(src, srcOffset, dstOffset, length);
    const n = Math.max(0, Math.min(length, srcSize - srcOffset));
    if (n === 0) return 0;
    if (src.fork === this.fork && srcOffset < dstOffset + n && dstOffset < srcOffset + n) {
      await this.copyAsData(src, srcOffset, dstOffset, n);
      return n;
    }
    let cloned = n;
    if (dstOffset + n > dstSize) {
      const tail = Math.min(n, limits.chunkedCopyTailBytes);
      cloned = n - tail;
      const bytes = await src.read(srcOffset + cloned, tail);
      if (bytes.length !== tail) throw new IosError('EIO', `copy source shrank during the copy (${bytes.length} of ${tail} bytes)`);
      await this.ctx.writer.write(this.fork, dstOffset + cloned, bytes);
    }
    if (cloned > 0) await this.ctx.cloneFork(src.fork, srcOffset, this.fork, dstOffset, cloned);
    return n;
  }

  /** Checks a two-handle range operation and commits both forks' pending writes; the sizes after. */
  private async prepareRangeOp(src: ChunkedHandle, srcOffset: number, dstOffset: number, length: number): Promise<{ srcSize: number; dstSize: number }> {
    this.checkOpen();
    this.checkData();
    this.checkWritable();
    if (!(src instanceof ChunkedHandle) || src.ctx.meta !== this.ctx.meta) throw new IosError('EINVAL', 'source is not a handle of this metadata service');
    src.checkOpen();
    src.checkData();
    checkRange(srcOffset, length);
    checkRange(dstOffset, length);
    await Promise.all([src.ctx.writer.flushFork(src.fork), this.ctx.writer.flushFork(this.fork)]);
    return this.ctx.meta.read((tx) => {
      const s = forkState(tx, src.fork);
      const d = forkState(tx, this.fork);
      if (s === undefined) throw new IosError('ENOENT', `data of inode ${src.ino} no longer exists`);
      if (d === undefined) throw new IosError('ENOENT', `data of inode ${this.ino} no longer exists`);
      return { srcSize: s.size, dstSize: d.size };
    });
  }

  /** Copies through memory in chunks, backwards when the target lies after the source (memmove). */
  private async copyAsData(src: ChunkedHandle, srcOffset: number, dstOffset: number, n: number): Promise<void> {
    const chunk = limits.ioBytesMax;
    const one = async (k: number, c: number): Promise<void> => {
      const bytes = await src.read(srcOffset + k, c);
      if (bytes.length !== c) throw new IosError('EIO', `copy source shrank during the copy (${bytes.length} of ${c} bytes)`);
      await this.ctx.writer.write(this.fork, dstOffset + k, bytes);
    };
    if (dstOffset > srcOffset) {
      for (let k = n; k > 0; ) {
        const c = Math.min(chunk, k);
        k -= c;
        await one(k, c);
      }
    } else {
      for (let k = 0; k < n; k += chunk) await one(k, Math.min(chunk, n - k));
    }
  }

  async setInfo(change: SetInfo): Promise<void> {
    this.checkOpen();
    this.checkWritable();
    const cmd: Record<string, unknown> = { t: 'ns.setattr', ino: this.ino, now: this.ctx.now() };
    if (change.attributes !== undefined) {
      const a = change.attributes;
      if (!Number.isInteger(a) || a < 0 || a > 0xffff_ffff) throw new IosError('EINVAL', `attributes ${a}`);
      cmd.attributes = a & FILE_ATTR_SETTABLE;
    }
    const alloc = change.allocationSize;
    if (alloc !== undefined) {
      if (!Number.isSafeInteger(alloc) || alloc < 0 || alloc > limits.metaFileBytesMax) throw new IosError('EINVAL', `allocation ${alloc}`);
      // The inode keeps one allocation, that of its unnamed stream; a stream's is its map.
      if (!this.named && !this.isDirectory) cmd.allocation = clusters(alloc);
    }
    const times = [
      ['creationTimeNs', 'creation'],
      ['lastAccessTimeNs', 'lastAccess'],
      ['lastWriteTimeNs', 'lastWrite'],
      ['changeTimeNs', 'change'],
    ] as const;
    const given: Record<string, bigint> = {};
    for (const [from, to] of times) {
      const v = change[from];
      if (v === undefined) continue;
      if (typeof v !== 'bigint') throw new IosError('EINVAL', `${from} is not a bigint`);
      const ft = unixNsToFiletime(v);
      if (ft < 0n || ft >= 1n << 63n) throw new IosError('EINVAL', `${from} out of range`);
      given[to] = ft;
    }
    const s = change.suspend;
    if (s !== undefined) {
      if (s.lastAccess !== undefined) this.userSet.lastAccess = s.lastAccess;
      if (s.lastWrite !== undefined) this.userSet.lastWrite = s.lastWrite;
      if (s.change !== undefined) this.userSet.change = s.change;
    }
    // MS-FSA 2.1.5.15.2: a time set explicitly stops this handle's automatic updates of it.
    if (given.lastAccess !== undefined) this.userSet.lastAccess = true;
    if (given.lastWrite !== undefined) this.userSet.lastWrite = true;
    if (given.change !== undefined) this.userSet.change = true;
    Object.assign(cmd, given);
    if (cmd.attributes === undefined && cmd.allocation === undefined && Object.keys(given).length === 0) return;
    // ChangeTime becomes now unless given or stopped on this handle.
    if (given.change === undefined && this.userSet.change) cmd.keepChange = true;
    valueOf(await this.propose(cmd), 'setInfo');
  }

  /**
   * Stamps what writes through this handle noted (spi.ts "Times"): LastWriteTime and ChangeTime now,
   * unless the handle stopped those updates. `allocation` (bytes) replaces a requested allocation in
   * the same command (0 forgets it).
   */
  private async stampTimes(allocation?: number): Promise<void> {
    if (!this.modified && allocation === undefined) return;
    const cmd: Record<string, unknown> = { t: 'ns.setattr', ino: this.ino, now: this.ctx.now() };
    if (this.modified) {
      this.modified = false;
      if (!this.userSet.lastWrite) cmd.lastWrite = cmd.now;
      if (this.userSet.change) cmd.keepChange = true;
    }
    if (allocation !== undefined) cmd.allocation = allocation;
    valueOf(await this.propose(cmd), 'stamp times');
  }

  async getSecurity(): Promise<Buffer | undefined> {
    this.checkOpen();
    return this.ctx.meta.read((tx) => {
      const node = getInode(tx, this.ino);
      if (node === undefined) throw new IosError('ENOENT', `inode ${this.ino} no longer exists`);
      return node.sd === undefined ? undefined : Buffer.from(node.sd);
    });
  }

  /** Security is independent of the data access the handle was opened for (a read handle may set it). */
  async setSecurity(descriptor: Buffer): Promise<void> {
    this.checkOpen();
    if (this.ctx.readOnly) throw new IosError('EROFS', 'share is read-only');
    this.ctx.checkSd(descriptor);
    // Copied: the caller may reuse its buffer once this settles, and the proposal is encoded later.
    const sd = Buffer.from(descriptor);
    valueOf(await this.propose({ t: 'ns.setsd', ino: this.ino, sd, now: this.ctx.now() }), 'setSecurity');
  }

  async getEas(): Promise<EaEntry[]> {
    this.checkOpen();
    return this.ctx.meta.read((tx) => {
      const node = getInode(tx, this.ino);
      if (node === undefined) throw new IosError('ENOENT', `inode ${this.ino} no longer exists`);
      return (node.eas ?? []).map((ea) => ({ name: ea.name, flags: ea.flags, value: Buffer.from(ea.value) }));
    });
  }

  /** EAs are inode metadata (ns.seteas merges them in the state machine); no write handle needed. */
  async setEas(eas: EaEntry[]): Promise<void> {
    this.checkOpen();
    if (this.ctx.readOnly) throw new IosError('EROFS', 'share is read-only');
    const cmd: Record<string, unknown> = { t: 'ns.seteas', ino: this.ino, eas: easArg(eas), now: this.ctx.now() };
    if (this.userSet.change) cmd.keepChange = true;
    valueOf(await this.propose(cmd), 'setEas');
  }

  async list(cookie: string | undefined, max: number): Promise<ListPage> {
    this.checkOpen();
    if (this.named) throw new IosError('EINVAL', 'list on a stream handle');
    if (!this.isDirectory) throw new IosError('ENOTDIR', 'list on a file');
    if (!Number.isSafeInteger(max) || max < 1) throw new IosError('EINVAL', `list max ${max}`);
    if (cookie !== undefined && (typeof cookie !== 'string' || cookie.length === 0)) throw new IosError('EINVAL', 'bad cookie');
    const limit = Math.min(max, limits.metaReadEntriesMax - 1);
    return this.ctx.meta.read((tx) => {
      // Cookie = the last name returned: resumes after it even if it was removed meanwhile.
      const ents = readdir(tx, this.ino, cookie === undefined ? { limit: limit + 1 } : { after: cookie, limit: limit + 1 });
      const more = ents.length > limit;
      const page = more ? ents.slice(0, limit) : ents;
      const entries: DirEntry[] = [];
      for (const d of page) {
        const node = getInode(tx, d.ino);
        if (node !== undefined) entries.push({ name: d.name, info: infoOf(tx, node) });
      }
      return { entries, cookie: more ? page[page.length - 1]!.name : undefined };
    });
  }

  async listStreams(): Promise<StreamEntry[]> {
    this.checkOpen();
    return this.ctx.meta.read((tx) =>
      listStreams(tx, this.ino).map((s) => ({ name: s.name, size: s.size, allocationSize: allocationOf(tx, s.fork, s.size, undefined) })),
    );
  }

  /**
   * Closes the handle: stamps the times its writes noted (one ns.setattr, only if it wrote). Writes of
   * this handle answer their callers anyway; close does not wait for them.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (!this.modified || this.ctx.readOnly) return;
    try {
      this.ctx.checkOpen();
      await this.stampTimes();
    } catch {
      // Best effort: the object may be gone (deleted on close) or the share closing; nothing to undo.
    }
  }

  private propose(cmd: Record<string, unknown>) {
    return this.ctx.meta.propose(cmd as { t: string }).catch((err: unknown) => {
      throw toIosError(err, String(cmd.t));
    });
  }

  private checkOpen(): void {
    if (this.closed) throw new IosError('EINVAL', 'handle is closed');
    this.ctx.checkOpen();
  }

  private checkData(): void {
    if (this.isDirectory) throw new IosError('EISDIR', 'data operation on a directory');
  }

  private checkWritable(): void {
    if (this.ctx.readOnly) throw new IosError('EROFS', 'share is read-only');
    if (!this.writable) throw new IosError('EACCES', 'handle not opened for writing');
  }
}
