// An open object of the posix driver: a file descriptor plus what the sidecar needs (file id and
// birth time). Positional IO only, so concurrent reads and writes on one handle never share a cursor.
import type { BigIntStats } from 'node:fs';
import { existsSync } from 'node:fs';
import { limits } from '../../base/limits.js';
import {
  FILE_ATTR_SETTABLE,
  IosError,
  type DirEntry,
  type EaEntry,
  type FileInfo,
  type IosHandle,
  type ListPage,
  type SetInfo,
  type StreamEntry,
} from '../spi.js';
import { applyEas } from '../eas.js';
import { errnoOf, toIosError } from './errno.js';
import { birthNsOf, buildInfo, effectiveTimes, fileIdOf } from './info.js';
import { fold, STATE_DIR_FOLDED } from './paths.js';
import type { MetaPatch, MetaStore } from './sidecar.js';
import type { StreamStore } from './streams.js';
import { lstatIfExists, readdirTyped, type Fd } from './syscalls.js';

/** What a handle needs from its share. */
export interface ShareContext {
  readonly rootDev: bigint;
  readonly meta: MetaStore;
  readonly streams: StreamStore;
  readonly readOnly: boolean;
  /**
   * Exact times recorded in the sidecar so far (any object): a handle that has seen the current count
   * knows no record was made since it last looked, and its writes skip the sidecar.
   */
  readonly timesRecorded: { count: number };
}

/**
 * Linux exposes an open directory as /proc/self/fd/N: listing through it follows the directory
 * across renames and cannot be redirected by swapping a path component. Elsewhere the path
 * captured at open is used.
 */
const procFdAvailable = process.platform === 'linux' && existsSync('/proc/self/fd');

/** Entries stat'ed in parallel while filling a listing page. */
const listStatParallelMax = 64;

function roundUp(n: number, unit: number): number {
  return Math.ceil(n / unit) * unit;
}

function checkRange(offset: number, length: number): void {
  if (!Number.isSafeInteger(offset) || offset < 0) throw new IosError('EINVAL', `offset ${offset}`);
  if (!Number.isSafeInteger(length) || length < 0) throw new IosError('EINVAL', `length ${length}`);
  if (!Number.isSafeInteger(offset + length)) throw new IosError('EINVAL', 'offset + length beyond 2^53');
}

/**
 * Small read buffers are cut from shared slabs: a 4 KiB read would otherwise allocate its own
 * ArrayBuffer (Node's pool stops below 4 KiB) and the garbage collector would free one per request.
 * A slab is released once every buffer cut from it is gone.
 */
const SLAB_BYTES = 1024 * 1024;
const SLAB_PIECE_BYTES_MAX = 64 * 1024;
let slab = Buffer.allocUnsafeSlow(SLAB_BYTES);
let slabUsed = 0;

function readBuffer(length: number): Buffer {
  if (length > SLAB_PIECE_BYTES_MAX) return Buffer.allocUnsafeSlow(length);
  if (slabUsed + length > SLAB_BYTES) {
    slab = Buffer.allocUnsafeSlow(SLAB_BYTES);
    slabUsed = 0;
  }
  const piece = slab.subarray(slabUsed, slabUsed + length);
  slabUsed += (length + 7) & ~7;
  return piece;
}

/** Positional read of up to `length` bytes (short at end of file). */
async function readAt(fh: Fd, offset: number, length: number, into?: Buffer): Promise<Buffer> {
  if (length > limits.ioBytesMax) throw new IosError('EINVAL', `read of ${length} bytes`);
  if (into && into.length < length) throw new IosError('EINVAL', `read buffer of ${into.length} bytes for ${length}`);
  const buf = into ? into.subarray(0, length) : readBuffer(length);
  let done = 0;
  try {
    while (done < length) {
      const bytesRead = await fh.read(buf, done, length - done, offset + done);
      if (bytesRead === 0) break; // end of file
      done += bytesRead;
    }
  } catch (err) {
    throw toIosError(err, 'read');
  }
  return done === length ? buf : buf.subarray(0, done);
}

/** Positional write of all of `data`. */
async function writeAt(fh: Fd, offset: number, data: Buffer): Promise<number> {
  let done = 0;
  try {
    while (done < data.length) {
      const bytesWritten = await fh.write(data, done, data.length - done, offset + done);
      if (bytesWritten === 0) throw new IosError('EIO', 'write made no progress');
      done += bytesWritten;
    }
  } catch (err) {
    throw toIosError(err, 'write');
  }
  return done;
}

/** Unix ns → seconds as the double fs.futimes takes. A double near 1.7e9 s resolves ~0.24 µs. */
function nsToSeconds(ns: bigint): number {
  return Number(ns / 1_000_000_000n) + Number(ns % 1_000_000_000n) / 1e9;
}

/** Allocation unit the driver rounds a client's FileAllocationInformation to. */
const ALLOCATION_UNIT_BYTES = 4096;

/** Which automatic time updates a handle has stopped (MS-FSA Open.UserSet*Time; spi.ts "Times"). */
interface UserSetTimes {
  lastAccess: boolean;
  lastWrite: boolean;
  change: boolean;
}

export class PosixHandle implements IosHandle {
  readonly fileId: bigint;
  readonly isDirectory: boolean;
  readonly stream: string | undefined = undefined;
  /** Birth time of the object (the sidecar's and the stream store's guard). */
  readonly birthNs: bigint;
  private closed = false;
  private closing: Promise<void> | undefined;
  /** Names of the directory taken by the listing that started with cookie undefined. */
  private snapshot: string[] | undefined;
  /** Automatic time updates this handle stopped (spi.ts "Times"). */
  private readonly userSet: UserSetTimes = { lastAccess: false, lastWrite: false, change: false };
  /** ShareContext.timesRecorded.count when this handle last made sure its object holds no stale record. */
  private timesSeen = -1;

  constructor(
    private readonly ctx: ShareContext,
    private readonly fh: Fd,
    st: BigIntStats,
    private readonly writable: boolean,
    /** Absolute path at open time (listing fallback where /proc/self/fd is unavailable). */
    private readonly absPath: string,
    /** The share root: the state directory is hidden from its listing. */
    private readonly isRoot: boolean,
  ) {
    this.fileId = fileIdOf(st, ctx.rootDev);
    this.isDirectory = st.isDirectory();
    this.birthNs = birthNsOf(st);
  }

  async info(): Promise<FileInfo> {
    this.checkOpen();
    try {
      return buildInfo(await this.fh.stat(), this.ctx.rootDev, this.ctx.meta);
    } catch (err) {
      throw toIosError(err, 'fstat');
    }
  }

  async read(offset: number, length: number, into?: Buffer): Promise<Buffer> {
    this.checkOpen();
    checkRange(offset, length);
    if (this.isDirectory) throw new IosError('EISDIR', 'read on a directory');
    return readAt(this.fh, offset, length, into);
  }

  async write(offset: number, data: Buffer): Promise<number> {
    this.checkOpen();
    checkRange(offset, data.length);
    if (this.isDirectory) throw new IosError('EISDIR', 'write on a directory');
    this.checkWritable();
    // The host stamps mtime and ctime itself; a handle that stopped those updates puts them back.
    if (this.keepsTimes()) return this.keepingTimes(() => writeAt(this.fh, offset, data));
    const n = await writeAt(this.fh, offset, data);
    if (this.timesSeen !== this.ctx.timesRecorded.count) await this.dropRecordedTimes();
    return n;
  }

  async flush(): Promise<void> {
    this.checkOpen();
    try {
      // Directories: fsync makes created/removed entries durable. Files: data plus the size.
      if (this.isDirectory) await this.fh.sync();
      else await this.fh.datasync();
    } catch (err) {
      throw toIosError(err, 'flush');
    }
  }

  async truncate(size: number): Promise<void> {
    this.checkOpen();
    checkRange(size, 0);
    if (this.isDirectory) throw new IosError('EISDIR', 'truncate on a directory');
    this.checkWritable();
    const cut = async (): Promise<void> => {
      try {
        await this.fh.truncate(size);
      } catch (err) {
        throw toIosError(err, 'truncate');
      }
    };
    if (this.keepsTimes()) await this.keepingTimes(cut);
    else {
      await cut();
      if (this.timesSeen !== this.ctx.timesRecorded.count) await this.dropRecordedTimes();
    }
    // MS-FSA 2.1.5.15.4: an end of file below a requested allocation releases what lies beyond it.
    const allocation = this.ctx.meta.get(this.fileId, this.birthNs)?.allocation;
    if (allocation !== undefined && allocation > size) {
      await this.ctx.meta.update(this.fileId, this.birthNs, { allocation: size > 0 ? roundUp(size, ALLOCATION_UNIT_BYTES) : null });
    }
  }

  /**
   * Times (spi.ts "Times"): access and write times go to the host through futimes (a double: ~0.24
   * us), and the three Windows times also to the sidecar exactly, with the host ctime they hold for
   * (sidecar.ts): that is how a client-set ChangeTime sticks although POSIX ctime cannot be set.
   * Creation time, attributes and the allocation asked for go to the sidecar.
   */
  async setInfo(change: SetInfo): Promise<void> {
    this.checkOpen();
    this.checkWritable();
    if (change.attributes !== undefined && (!Number.isInteger(change.attributes) || change.attributes < 0)) {
      throw new IosError('EINVAL', `attributes ${change.attributes}`);
    }
    for (const t of [change.creationTimeNs, change.lastAccessTimeNs, change.lastWriteTimeNs, change.changeTimeNs]) {
      if (t !== undefined && typeof t !== 'bigint') throw new IosError('EINVAL', 'times are bigint ns');
    }
    const alloc = change.allocationSize;
    if (alloc !== undefined && (!Number.isSafeInteger(alloc) || alloc < 0)) throw new IosError('EINVAL', `allocation ${alloc}`);
    const s = change.suspend;
    if (s !== undefined) {
      if (s.lastAccess !== undefined) this.userSet.lastAccess = s.lastAccess;
      if (s.lastWrite !== undefined) this.userSet.lastWrite = s.lastWrite;
      if (s.change !== undefined) this.userSet.change = s.change;
    }
    // MS-FSA 2.1.5.15.2: a time set explicitly stops this handle's automatic updates of it.
    if (change.lastAccessTimeNs !== undefined) this.userSet.lastAccess = true;
    if (change.lastWriteTimeNs !== undefined) this.userSet.lastWrite = true;
    if (change.changeTimeNs !== undefined) this.userSet.change = true;
    const patch: MetaPatch = {};
    if (change.creationTimeNs !== undefined) patch.creationTimeNs = change.creationTimeNs;
    if (change.attributes !== undefined) patch.attributes = change.attributes & FILE_ATTR_SETTABLE;
    if (alloc !== undefined && !this.isDirectory) patch.allocation = alloc > 0 ? roundUp(alloc, ALLOCATION_UNIT_BYTES) : null;
    const timesGiven = change.lastAccessTimeNs !== undefined || change.lastWriteTimeNs !== undefined || change.changeTimeNs !== undefined;
    if (!timesGiven && Object.keys(patch).length === 0) return; // only suspend/resume
    const before = await this.stat();
    const eff = effectiveTimes(before, this.ctx.meta.get(this.fileId, this.birthNs));
    // Anything changed: ChangeTime becomes now (the host ctime after futimes) unless given or stopped.
    await this.recordTimes(
      {
        lastAccessNs: change.lastAccessTimeNs ?? eff.lastAccessNs,
        lastWriteNs: change.lastWriteTimeNs ?? eff.lastWriteNs,
        changeNs: change.changeTimeNs ?? (this.userSet.change ? eff.changeNs : undefined),
      },
      patch,
    );
  }

  async getSecurity(): Promise<Buffer | undefined> {
    this.checkOpen();
    return this.ctx.meta.get(this.fileId, this.birthNs)?.securityDescriptor;
  }

  /** Security is not data: it needs no write handle (the server checks WRITE_DAC), only a writable share. */
  async setSecurity(descriptor: Buffer): Promise<void> {
    this.checkOpen();
    if (this.ctx.readOnly) throw new IosError('EROFS', 'share is read-only');
    if (!Buffer.isBuffer(descriptor) || descriptor.length === 0) throw new IosError('EINVAL', 'empty security descriptor');
    if (descriptor.length > limits.securityDescriptorBytesMax) {
      throw new IosError('EINVAL', `security descriptor of ${descriptor.length} bytes`);
    }
    // Copy: the caller may reuse its buffer once we resolve (spi.ts ownership rule).
    await this.ctx.meta.update(this.fileId, this.birthNs, { securityDescriptor: Buffer.from(descriptor) });
  }

  async getEas(): Promise<EaEntry[]> {
    this.checkOpen();
    return (this.ctx.meta.get(this.fileId, this.birthNs)?.eas ?? []).map((ea) => ({ ...ea, value: Buffer.from(ea.value) }));
  }

  /** EAs live in the sidecar (spi.ts "Extended attributes"); like security, no write handle needed. */
  async setEas(eas: EaEntry[]): Promise<void> {
    this.checkOpen();
    if (this.ctx.readOnly) throw new IosError('EROFS', 'share is read-only');
    const next = applyEas(this.ctx.meta.get(this.fileId, this.birthNs)?.eas ?? [], eas);
    // MS-FSA 2.1.5.15.5: ChangeTime becomes now unless this handle stopped its updates.
    const before = await this.stat();
    const eff = effectiveTimes(before, this.ctx.meta.get(this.fileId, this.birthNs));
    await this.recordTimes(
      { lastAccessNs: eff.lastAccessNs, lastWriteNs: eff.lastWriteNs, changeNs: this.userSet.change ? eff.changeNs : undefined },
      { eas: next.length > 0 ? next : null },
    );
  }

  /**
   * After a write or truncate by a handle that stopped no updates: exact times recorded for the object
   * no longer hold (the host's new mtime and ctime do). The host ctime guard alone can miss a write
   * made within the same clock tick as the record (Linux stamps file times at jiffy resolution).
   */
  private async dropRecordedTimes(): Promise<void> {
    this.timesSeen = this.ctx.timesRecorded.count;
    const recorded = this.ctx.meta.get(this.fileId, this.birthNs)?.times;
    if (recorded === undefined) return;
    // The write moved LastWriteTime and ChangeTime (the host's now); LastAccessTime stays exact.
    const st = await this.stat();
    const times = { lastAccessNs: recorded.lastAccessNs, lastWriteNs: st.mtimeNs, changeNs: st.ctimeNs, hostCtimeNs: st.ctimeNs };
    await this.ctx.meta.update(this.fileId, this.birthNs, { times });
  }

  /** False when this handle stopped the updates a write makes (lastWrite or change). */
  private keepsTimes(): boolean {
    return this.userSet.lastWrite || this.userSet.change;
  }

  /**
   * Runs a write or truncate for a handle that stopped some automatic updates: afterwards the times it
   * stopped are put back as they were before, the others take what the host stamped.
   */
  private async keepingTimes<T>(op: () => Promise<T>): Promise<T> {
    const before = await this.stat();
    const eff = effectiveTimes(before, this.ctx.meta.get(this.fileId, this.birthNs));
    const result = await op();
    const after = await this.stat();
    await this.recordTimes({
      lastAccessNs: eff.lastAccessNs,
      lastWriteNs: this.userSet.lastWrite ? eff.lastWriteNs : after.mtimeNs,
      changeNs: this.userSet.change ? eff.changeNs : undefined,
    });
    return result;
  }

  /**
   * Sets the host atime/mtime to the given times (as near as futimes gets) and records the exact
   * times in the sidecar, valid for the host ctime futimes leaves; `changeNs` undefined means now
   * (that ctime). `patch` is written in the same sidecar update.
   */
  private async recordTimes(t: { lastAccessNs: bigint; lastWriteNs: bigint; changeNs: bigint | undefined }, patch: MetaPatch = {}): Promise<void> {
    try {
      await this.fh.utimes(nsToSeconds(t.lastAccessNs), nsToSeconds(t.lastWriteNs));
    } catch (err) {
      throw toIosError(err, 'set times');
    }
    const st = await this.stat();
    patch.times = { lastAccessNs: t.lastAccessNs, lastWriteNs: t.lastWriteNs, changeNs: t.changeNs ?? st.ctimeNs, hostCtimeNs: st.ctimeNs };
    await this.ctx.meta.update(this.fileId, this.birthNs, patch);
    this.ctx.timesRecorded.count++;
  }

  private async stat(): Promise<BigIntStats> {
    try {
      return await this.fh.stat();
    } catch (err) {
      throw toIosError(err, 'fstat');
    }
  }

  async list(cookie: string | undefined, max: number): Promise<ListPage> {
    this.checkOpen();
    if (!this.isDirectory) throw new IosError('ENOTDIR', 'list on a file');
    if (!Number.isSafeInteger(max) || max < 1) throw new IosError('EINVAL', `max ${max}`);
    if (cookie !== undefined && !/^\d{1,15}$/.test(cookie)) throw new IosError('EINVAL', 'bad listing cookie');
    // The descriptor stays open while the page is filled: a close() racing with a pool-mode readdir
    // of /proc/self/fd/N waits, so N is never reused for another object under the listing.
    try {
      return await this.fh.use((fd) => this.fillPage(procFdAvailable ? `/proc/self/fd/${fd}` : this.absPath, cookie, max));
    } catch (err) {
      throw toIosError(err, 'list');
    }
  }

  private async fillPage(base: string, cookie: string | undefined, max: number): Promise<ListPage> {
    let start = 0;
    if (cookie === undefined) {
      this.snapshot = await this.readNames(base);
    } else {
      start = Number(cookie);
      if (this.snapshot === undefined || start > this.snapshot.length) throw new IosError('EINVAL', 'stale listing cookie');
    }
    const names = this.snapshot!;
    const entries: DirEntry[] = [];
    let next = start;
    while (next < names.length && entries.length < max) {
      // Stat a batch (in parallel in pool mode); vanished entries and symlinks are skipped, so a
      // batch may yield fewer than it stats, never more than the page still needs.
      const batch = names.slice(next, next + Math.min(max - entries.length, listStatParallelMax));
      const stats = await Promise.all(batch.map((name) => this.lstatEntry(`${base}/${name}`)));
      for (let i = 0; i < batch.length; i++) {
        const st = stats[i];
        if (st !== undefined) entries.push({ name: batch[i]!, info: buildInfo(st, this.ctx.rootDev, this.ctx.meta) });
      }
      next += batch.length;
    }
    return { entries, cookie: next < names.length ? String(next) : undefined };
  }

  async listStreams(): Promise<StreamEntry[]> {
    this.checkOpen();
    return this.ctx.streams.list(this.fileId, this.birthNs);
  }

  close(): Promise<void> {
    if (this.closing === undefined) {
      this.closed = true;
      this.snapshot = undefined;
      this.closing = this.fh.close().catch((err: unknown) => {
        throw toIosError(err, 'close');
      });
    }
    return this.closing;
  }

  private async readNames(base: string): Promise<string[]> {
    let dirents;
    try {
      dirents = await readdirTyped(base);
    } catch (err) {
      throw toIosError(err, 'readdir');
    }
    const names: string[] = [];
    for (const d of dirents) {
      if (d.isSymbolicLink()) continue;
      if (this.isRoot && fold(d.name) === STATE_DIR_FOLDED) continue;
      names.push(d.name);
    }
    // Code-unit order: stable across listings and independent of the host's hash order.
    return names.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  }

  /** lstat of a listed entry, or undefined when it vanished or is not a file or directory. */
  private async lstatEntry(abs: string): Promise<BigIntStats | undefined> {
    try {
      const st = await lstatIfExists(abs);
      return st !== undefined && (st.isFile() || st.isDirectory()) ? st : undefined;
    } catch (err) {
      const errno = errnoOf(err);
      if (errno === 'ENOENT' || errno === 'ENOTDIR') return undefined;
      throw toIosError(err, 'lstat listed entry');
    }
  }

  private checkOpen(): void {
    if (this.closed) throw new IosError('EINVAL', 'handle is closed');
  }

  private checkWritable(): void {
    if (this.ctx.readOnly) throw new IosError('EROFS', 'share is read-only');
    if (!this.writable) throw new IosError('EACCES', 'handle not opened for writing');
  }
}

/**
 * A named stream of an object: the stream's data file plus a handle on the object itself (times,
 * attributes, security and the file id come from the object; spi.ts OpenOptions.stream).
 */
export class PosixStreamHandle implements IosHandle {
  readonly fileId: bigint;
  readonly isDirectory = false;
  private closed = false;
  private closing: Promise<void> | undefined;

  constructor(
    private readonly ctx: ShareContext,
    /** Handle on the object; opened with the same write flag, closed with this one. */
    private readonly base: PosixHandle,
    private readonly fh: Fd,
    readonly stream: string,
    private readonly writable: boolean,
  ) {
    this.fileId = base.fileId;
  }

  async info(): Promise<FileInfo> {
    this.checkOpen();
    const info = await this.base.info();
    let st: BigIntStats;
    try {
      st = await this.fh.stat();
    } catch (err) {
      throw toIosError(err, 'fstat stream');
    }
    return { ...info, isDirectory: false, size: Number(st.size), allocationSize: Number(st.blocks) * 512 };
  }

  async read(offset: number, length: number, into?: Buffer): Promise<Buffer> {
    this.checkOpen();
    checkRange(offset, length);
    return readAt(this.fh, offset, length, into);
  }

  async write(offset: number, data: Buffer): Promise<number> {
    this.checkOpen();
    checkRange(offset, data.length);
    this.checkWritable();
    return writeAt(this.fh, offset, data);
  }

  async flush(): Promise<void> {
    this.checkOpen();
    try {
      await this.fh.datasync();
    } catch (err) {
      throw toIosError(err, 'flush stream');
    }
  }

  async truncate(size: number): Promise<void> {
    this.checkOpen();
    checkRange(size, 0);
    this.checkWritable();
    try {
      await this.fh.truncate(size);
    } catch (err) {
      throw toIosError(err, 'truncate stream');
    }
  }

  async setInfo(change: SetInfo): Promise<void> {
    this.checkOpen();
    return this.base.setInfo(change);
  }

  async getSecurity(): Promise<Buffer | undefined> {
    this.checkOpen();
    return this.base.getSecurity();
  }

  async setSecurity(descriptor: Buffer): Promise<void> {
    this.checkOpen();
    return this.base.setSecurity(descriptor);
  }

  async getEas(): Promise<EaEntry[]> {
    this.checkOpen();
    return this.base.getEas();
  }

  async setEas(eas: EaEntry[]): Promise<void> {
    this.checkOpen();
    return this.base.setEas(eas);
  }

  async list(): Promise<ListPage> {
    this.checkOpen();
    throw new IosError('EINVAL', 'list on a stream handle');
  }

  async listStreams(): Promise<StreamEntry[]> {
    this.checkOpen();
    return this.base.listStreams();
  }

  close(): Promise<void> {
    if (this.closing === undefined) {
      this.closed = true;
      this.closing = Promise.allSettled([this.fh.close(), this.base.close()]).then(([data, base]) => {
        if (data.status === 'rejected') throw toIosError(data.reason, 'close stream');
        if (base.status === 'rejected') throw toIosError(base.reason, 'close');
      });
    }
    return this.closing;
  }

  private checkOpen(): void {
    if (this.closed) throw new IosError('EINVAL', 'handle is closed');
  }

  private checkWritable(): void {
    if (this.ctx.readOnly) throw new IosError('EROFS', 'share is read-only');
    if (!this.writable) throw new IosError('EACCES', 'handle not opened for writing');
  }
}
