// An open object of the chunked driver: an inode (file id) and, for data, the fork it reads and writes
// (the unnamed stream's fork, or a named stream's). A handle holds no data and no cached metadata:
// every call reads the local applied state, so a handle follows its object across renames (the inode
// and fork numbers never change) and sees every change applied on this node.
import { limits } from '../../base/limits.js';
import { filetimeToUnixNs, unixNsToFiletime } from '../../base/clock.js';
import type { MetaService } from '../../meta/service.js';
import type { ReadTx } from '../../meta/tx.js';
import { extentsIn } from '../../meta/families/extents.js';
import { getFork, getInode, getStream, listStreams, readdir, type Inode } from '../../meta/families/namespace.js';
import type { ObjectStore } from '../../objstore/spi.js';
import {
  FILE_ATTR_SETTABLE,
  FileAttr,
  IosError,
  type DirEntry,
  type FileInfo,
  type IosHandle,
  type ListPage,
  type SetInfo,
  type StreamEntry,
} from '../spi.js';
import { toIosError, valueOf } from './errors.js';
import type { SegmentWriter } from './segments.js';

/** What a handle needs from its share. */
export interface ShareContext {
  readonly meta: MetaService;
  readonly store: ObjectStore;
  readonly writer: SegmentWriter;
  readonly readOnly: boolean;
  /** The current time as a FILETIME (records keep FILETIME, the SPI Unix ns). */
  now(): bigint;
  checkOpen(): void;
  /** Sets a fork's end of file once the writes issued before are committed (share.ts). */
  truncateFork(fork: number, size: number): Promise<void>;
  /** Checks a security descriptor from the SPI (opaque bytes, bounded). */
  checkSd(sd: Buffer): void;
}

/** Allocation reported for `size` bytes: whole 4 KiB clusters, or the caller's hint if larger. */
export function allocationOf(size: number, hint: number | undefined): number {
  const clusters = Math.ceil(size / 4096) * 4096;
  return Math.max(clusters, hint ?? 0);
}

export function infoOf(node: Inode, size?: number): FileInfo {
  const isDirectory = node.kind === 'dir';
  const sz = size ?? (isDirectory ? 0 : node.size);
  return {
    fileId: BigInt(node.ino),
    isDirectory: size === undefined ? isDirectory : false,
    size: sz,
    allocationSize: size === undefined && isDirectory ? 0 : allocationOf(sz, size === undefined ? node.allocation : undefined),
    creationTimeNs: filetimeToUnixNs(node.creation),
    lastAccessTimeNs: filetimeToUnixNs(node.lastAccess),
    lastWriteTimeNs: filetimeToUnixNs(node.lastWrite),
    changeTimeNs: filetimeToUnixNs(node.change),
    attributes: (node.attributes & FILE_ATTR_SETTABLE) | (isDirectory ? FileAttr.DIRECTORY : 0),
    links: node.nlink,
  };
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

export function checkRange(offset: number, length: number): void {
  if (!Number.isSafeInteger(offset) || offset < 0) throw new IosError('EINVAL', `offset ${offset}`);
  if (!Number.isSafeInteger(length) || length < 0) throw new IosError('EINVAL', `length ${length}`);
  if (offset + length > limits.metaFileBytesMax) throw new IosError('EINVAL', `range ends beyond ${limits.metaFileBytesMax}`);
}

/** Runs `jobs` with at most `max` in flight; rejects with the first failure. */
async function bounded(jobs: (() => Promise<void>)[], max: number): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < jobs.length) await jobs[next++]!();
  };
  await Promise.all(Array.from({ length: Math.min(max, jobs.length) }, worker));
}

export class ChunkedHandle implements IosHandle {
  readonly fileId: bigint;
  readonly isDirectory: boolean;
  private closed = false;
  private lastStreamName: string | undefined;

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
      if (!this.named) return infoOf(node);
      const s = forkState(tx, this.fork);
      if (s === undefined) throw new IosError('ENOENT', `stream of inode ${this.ino} no longer exists`);
      return infoOf(node, s.size);
    });
  }

  /**
   * Reads [offset, offset+length) clamped at end of file: the extents over the range from the local
   * state, holes as zeros without touching the store, mapped ranges fetched concurrently.
   */
  async read(offset: number, length: number, into?: Buffer): Promise<Buffer> {
    this.checkOpen();
    this.checkData();
    checkRange(offset, Math.min(length, limits.ioBytesMax));
    if (length > limits.ioBytesMax) throw new IosError('EINVAL', `read of ${length} bytes`);
    if (into !== undefined && into.length < length) throw new IosError('EINVAL', `read buffer of ${into.length} bytes for ${length}`);
    const plan = this.ctx.meta.read((tx) => {
      const s = forkState(tx, this.fork);
      if (s === undefined) throw new IosError('ENOENT', `data of inode ${this.ino} no longer exists`);
      const end = Math.min(offset + length, s.size);
      if (end <= offset) return undefined;
      const pieces: { object: string; objectOffset: number; length: number; at: number }[] = [];
      let pos = offset;
      for (;;) {
        const exts = extentsIn(tx, this.fork, pos, end - pos);
        for (const e of exts) {
          const s0 = Math.max(e.offset, pos);
          const t0 = Math.min(e.offset + e.length, end);
          if (t0 > s0) pieces.push({ object: e.object, objectOffset: e.objectOffset + (s0 - e.offset), length: t0 - s0, at: s0 - offset });
        }
        if (exts.length < limits.metaReadEntriesMax) break;
        const last = exts[exts.length - 1]!;
        pos = last.offset + last.length;
        if (pos >= end) break;
      }
      return { n: end - offset, pieces };
    });
    if (plan === undefined) return into !== undefined ? into.subarray(0, 0) : Buffer.alloc(0);
    const { n, pieces } = plan;
    // One piece covering the whole read: the store's buffer is the answer (it belongs to us).
    if (into === undefined && pieces.length === 1 && pieces[0]!.at === 0 && pieces[0]!.length === n) {
      return this.fetch(pieces[0]!);
    }
    const out = into !== undefined ? into.subarray(0, n) : Buffer.allocUnsafe(n);
    let cursor = 0;
    for (const p of pieces) {
      if (p.at > cursor) out.fill(0, cursor, p.at);
      cursor = p.at + p.length;
    }
    if (cursor < n) out.fill(0, cursor, n);
    await bounded(
      pieces.map((p) => async () => {
        const b = await this.fetch(p);
        b.copy(out, p.at);
      }),
      limits.chunkedReadGetsInFlightMax,
    );
    return out;
  }

  private async fetch(p: { object: string; objectOffset: number; length: number }): Promise<Buffer> {
    let b: Buffer;
    try {
      b = await this.ctx.store.get(p.object, { offset: p.objectOffset, length: p.length });
    } catch (err) {
      const e = toIosError(err, `read of ${p.object}`);
      throw e.code === 'EIO' ? e : new IosError('EIO', e.message, { cause: err });
    }
    if (b.length !== p.length) throw new IosError('EIO', `object ${p.object} holds ${b.length} of ${p.length} bytes at ${p.objectOffset}`);
    return b;
  }

  async write(offset: number, data: Buffer): Promise<number> {
    this.checkOpen();
    this.checkData();
    this.checkWritable();
    checkRange(offset, data.length);
    if (data.length === 0) return 0;
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
    const times = [
      ['creationTimeNs', 'creation'],
      ['lastAccessTimeNs', 'lastAccess'],
      ['lastWriteTimeNs', 'lastWrite'],
      ['changeTimeNs', 'change'],
    ] as const;
    let any = cmd.attributes !== undefined;
    for (const [from, to] of times) {
      const v = change[from];
      if (v === undefined) continue;
      if (typeof v !== 'bigint') throw new IosError('EINVAL', `${from} is not a bigint`);
      const ft = unixNsToFiletime(v);
      if (ft < 0n || ft >= 1n << 63n) throw new IosError('EINVAL', `${from} out of range`);
      cmd[to] = ft;
      any = true;
    }
    if (!any) return;
    valueOf(await this.propose(cmd), 'setInfo');
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
        if (node !== undefined) entries.push({ name: d.name, info: infoOf(node) });
      }
      return { entries, cookie: more ? page[page.length - 1]!.name : undefined };
    });
  }

  async listStreams(): Promise<StreamEntry[]> {
    this.checkOpen();
    return this.ctx.meta.read((tx) =>
      listStreams(tx, this.ino).map((s) => ({ name: s.name, size: s.size, allocationSize: allocationOf(s.size, undefined) })),
    );
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // Writes of this handle answer their callers anyway; close does not wait for them.
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
