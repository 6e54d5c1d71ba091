// A share of the chunked driver: a root directory in the metadata namespace (ns.mkroot), files as
// extent maps over immutable segment objects (segments.ts). Reads of metadata use this node's applied
// state (MetaService.read); every change is a proposed command, never a write of state any other way.
//
// Names: resolved from the share root through directory entries, case-insensitively (the dirent key
// is the folded name, spi.ts and ns-records.ts fold() agree), returning the stored case.
import { createHash } from 'node:crypto';
import { limits } from '../../base/limits.js';
import { filetimeToUnixNs, unixNsToFiletime, type Clock } from '../../base/clock.js';
import type { MetaService } from '../../meta/service.js';
import type { CommandResult, ReadTx } from '../../meta/tx.js';
import { boundedEnd } from '../../meta/families/extents.js';
import { getInode, getRoot, getStream, listStreams, lookup, type Dirent, type Inode } from '../../meta/families/namespace.js';
import type { ObjectStore } from '../../objstore/spi.js';
import {
  FILE_ATTR_SETTABLE,
  FileAttr,
  IosError,
  type FileInfo,
  type FsStats,
  type IosShare,
  type OpenMode,
  type OpenOptions,
  type OpenResult,
} from '../spi.js';
import { checkStreamName, splitPath } from '../names.js';
import { refusalError, toIosError, valueOf } from './errors.js';
import { ChunkedHandle, CLUSTER_BYTES, easArg, forkState, infoOf, type ShareContext } from './handle.js';
import { BlockCache } from './cache.js';
import { SegmentWriter, type WriteActivity } from './segments.js';
import { ForkMapCache } from './map-cache.js';

const openModes: ReadonlySet<OpenMode> = new Set(['open', 'create', 'openOrCreate', 'truncate', 'truncateOrCreate', 'replace']);
const truncatingModes: ReadonlySet<OpenMode> = new Set(['truncate', 'truncateOrCreate', 'replace']);
/**
 * The allocation a create asks for (CREATE AllocationSize, MS-FSA 2.1.5.1.2.1) in whole clusters;
 * 0 for none. Reported, not reserved: the store has no space to set aside.
 */
function allocationHint(bytes: number | undefined): number {
  if (bytes === undefined || !Number.isSafeInteger(bytes) || bytes <= 0) return 0;
  return Math.min(Math.ceil(bytes / CLUSTER_BYTES) * CLUSTER_BYTES, limits.metaFileBytesMax);
}

/** Attempts of an open whose name is created or removed concurrently (a lost race re-resolves). */
const openAttemptsMax = 8;


/** The end of a walk: the parent directory and what its last component names (if anything). */
interface Resolved {
  parent: number;
  /** Share-relative path of the parent with stored case ('' for the root). */
  parentPath: string;
  name: string;
  ent: Dirent | undefined;
}

const join = (dir: string, name: string): string => (dir === '' ? name : `${dir}/${name}`);

export interface ChunkedShareDeps {
  meta: MetaService;
  store: ObjectStore;
  clusterId: string;
  nodeId: string;
  clock: Clock;
  /** Segment and group-commit tuning (tests). */
  segmentBytes?: number;
  groupCommitMs?: number;
  bufferedBytesMax?: number;
  extentsPerCommandMax?: number;
  /** The driver's read cache (index.ts makes one per driver; a share opened alone makes its own). */
  cache?: BlockCache;
  /** Largest read-ahead window per handle (default limits.chunkedReadAheadBytesMax; 0 disables). */
  readAheadBytesMax?: number;
  /** Stamped at every write (index.ts: one per driver). */
  activity?: WriteActivity;
}

export class ChunkedShare implements IosShare, ShareContext {
  readonly meta: MetaService;
  readonly store: ObjectStore;
  readonly writer: SegmentWriter;
  readonly cache: BlockCache;
  readonly maps: ForkMapCache;
  readonly readAheadBytesMax: number;
  private closed = false;

  private constructor(
    private readonly deps: ChunkedShareDeps,
    readonly name: string,
    readonly rootIno: number,
    readonly readOnly: boolean,
  ) {
    this.meta = deps.meta;
    this.store = deps.store;
    const w: ConstructorParameters<typeof SegmentWriter>[0] = {
      meta: deps.meta,
      store: deps.store,
      clusterId: deps.clusterId,
      nodeId: deps.nodeId,
      clock: deps.clock,
      // What was just written is read from memory (the memory tier only: see BlockCache.admit).
      onStored: (key, parts) => this.cache.admit(key, parts),
      ...(deps.activity !== undefined ? { activity: deps.activity } : {}),
    };
    if (deps.segmentBytes !== undefined) w.segmentBytes = deps.segmentBytes;
    if (deps.groupCommitMs !== undefined) w.groupCommitMs = deps.groupCommitMs;
    if (deps.bufferedBytesMax !== undefined) w.bufferedBytesMax = deps.bufferedBytesMax;
    if (deps.extentsPerCommandMax !== undefined) w.extentsPerCommandMax = deps.extentsPerCommandMax;
    this.writer = new SegmentWriter(w);
    this.cache = deps.cache ?? new BlockCache(deps.store);
    this.maps = new ForkMapCache(deps.meta, forkState);
    this.readAheadBytesMax = deps.readAheadBytesMax ?? limits.chunkedReadAheadBytesMax;
  }

  /** Opens share `name`, making its root directory (ns.mkroot, idempotent) unless read-only. */
  static async open(deps: ChunkedShareDeps, name: string, readOnly: boolean): Promise<ChunkedShare> {
    if (typeof name !== 'string' || name.length === 0 || name.length > limits.metaShareNameLengthMax || /[\u0000\\/]/.test(name)) {
      throw new IosError('EINVAL', `share name '${String(name)}'`);
    }
    let ino = deps.meta.read((tx) => getRoot(tx, name));
    if (ino === undefined) {
      if (readOnly) throw new IosError('ENOENT', `share ${name} has no root yet`);
      const now = unixNsToFiletime(BigInt(deps.clock.nowMs()) * 1_000_000n);
      let r: CommandResult;
      try {
        r = await deps.meta.propose({ t: 'ns.mkroot', share: name, now });
      } catch (err) {
        throw toIosError(err, `share ${name}`);
      }
      ino = valueOf<{ ino: number }>(r, `share ${name}`).ino;
    }
    return new ChunkedShare(deps, name, ino, readOnly);
  }

  now(): bigint {
    return unixNsToFiletime(BigInt(this.deps.clock.nowMs()) * 1_000_000n);
  }

  checkOpen(): void {
    if (this.closed) throw new IosError('EINVAL', 'share is closed');
  }

  checkSd(sd: Buffer): void {
    if (!(sd instanceof Uint8Array) || sd.length === 0 || sd.length > limits.securityDescriptorBytesMax) {
      throw new IosError('EINVAL', `security descriptor of ${sd?.length} bytes`);
    }
  }

  // ---- IosShare ----

  async stat(path: string): Promise<{ path: string; info: FileInfo }> {
    this.checkOpen();
    const parts = splitPath(path);
    return this.meta.read((tx) => {
      if (parts.length === 0) return { path: '', info: infoOf(tx, this.inode(tx, this.rootIno)) };
      const r = this.resolve(tx, parts);
      if (r.ent === undefined) throw new IosError('ENOENT', `no such object: ${path}`);
      return { path: join(r.parentPath, r.ent.name), info: infoOf(tx, this.inode(tx, r.ent.ino)) };
    });
  }

  async open(path: string, options: OpenOptions): Promise<OpenResult> {
    this.checkOpen();
    const { mode, directory } = options;
    if (!openModes.has(mode)) throw new IosError('EINVAL', `open mode ${String(mode)}`);
    if (directory === true && truncatingModes.has(mode)) throw new IosError('EINVAL', `mode ${mode} on a directory`);
    if (this.readOnly && (options.write || mode === 'create' || truncatingModes.has(mode))) {
      throw new IosError('EROFS', 'share is read-only');
    }
    if (options.securityDescriptor !== undefined) this.checkSd(options.securityDescriptor);
    if (options.attributes !== undefined) {
      const a = options.attributes;
      if (!Number.isInteger(a) || a < 0 || a > 0xffff_ffff) throw new IosError('EINVAL', `attributes ${a}`);
    }
    const parts = splitPath(path);
    if (options.stream !== undefined) return this.openStream(parts, path, options);
    if (parts.length === 0) {
      if (mode === 'create') throw new IosError('EEXIST', 'the share root exists');
      if (truncatingModes.has(mode) || directory === false) throw new IosError('EISDIR', 'the share root is a directory');
      return { handle: new ChunkedHandle(this, this.rootIno, true, 0, false, options.write), action: 'opened', path: '' };
    }
    for (let attempt = 0; attempt < openAttemptsMax; attempt++) {
      const r = this.meta.read((tx) => this.resolve(tx, parts));
      if (r.ent !== undefined) return this.openExisting(r, options);
      if (mode === 'open' || mode === 'truncate') throw new IosError('ENOENT', `no such object: ${path}`);
      if (this.readOnly) throw new IosError('EROFS', 'share is read-only');
      const made = await this.create(r.parent, r.name, directory === true ? 'dir' : 'file', options);
      if (made !== undefined) {
        const handle = new ChunkedHandle(this, made.ino, directory === true, made.fork, false, options.write);
        return { handle, action: 'created', path: join(r.parentPath, r.name) };
      }
      if (mode === 'create') throw new IosError('EEXIST', `object exists: ${path}`);
      // Created by someone else between our lookup and our command: open it.
    }
    throw new IosError('EBUSY', `name kept changing during open: ${path}`);
  }

  async rename(from: string, to: string, replace: boolean): Promise<void> {
    this.checkOpen();
    if (this.readOnly) throw new IosError('EROFS', 'share is read-only');
    const fromParts = splitPath(from);
    const toParts = splitPath(to);
    if (fromParts.length === 0 || toParts.length === 0) throw new IosError('EINVAL', 'cannot rename the share root');
    const { src, dst } = this.meta.read((tx) => ({ src: this.resolve(tx, fromParts), dst: this.resolve(tx, toParts) }));
    if (src.ent === undefined) throw new IosError('ENOENT', `no such object: ${from}`);
    // MS-FSA 2.1.5.14.11: rules enforced by ns.rename (collision, directory target, cycles).
    const r = await this.propose({
      t: 'ns.rename',
      srcParent: src.parent,
      srcName: src.ent.name,
      dstParent: dst.parent,
      dstName: dst.name,
      replace: replace === true,
      now: this.now(),
    });
    const v = valueOf<{ replaced?: { reap?: number[] } }>(r, `rename ${from} -> ${to}`);
    if (v.replaced?.reap !== undefined) await this.reap(v.replaced.reap);
  }

  async remove(path: string): Promise<void> {
    this.checkOpen();
    if (this.readOnly) throw new IosError('EROFS', 'share is read-only');
    const parts = splitPath(path);
    if (parts.length === 0) throw new IosError('EACCES', 'cannot remove the share root');
    const r = this.meta.read((tx) => this.resolve(tx, parts));
    if (r.ent === undefined) throw new IosError('ENOENT', `no such object: ${path}`);
    const res = await this.propose({ t: 'ns.unlink', parent: r.parent, name: r.ent.name, now: this.now() });
    const v = valueOf<{ reap?: number[] }>(res, `remove ${path}`);
    if (v.reap !== undefined) await this.reap(v.reap);
  }

  async removeStream(path: string, stream: string): Promise<void> {
    this.checkOpen();
    if (this.readOnly) throw new IosError('EROFS', 'share is read-only');
    checkStreamName(stream);
    const ino = this.objectIno(path);
    const v = valueOf<{ reap?: number[] }>(await this.propose({ t: 'ns.stream.delete', ino, name: stream }), `remove stream ${stream}`);
    if (v.reap !== undefined) await this.reap(v.reap);
  }

  async renameStream(path: string, from: string, to: string, replace: boolean): Promise<void> {
    this.checkOpen();
    if (this.readOnly) throw new IosError('EROFS', 'share is read-only');
    checkStreamName(from);
    checkStreamName(to);
    const ino = this.objectIno(path);
    // MS-FSA 2.1.5.14.11.1 (stream rename): the rules are ns.stream.rename's.
    const v = valueOf<{ reap?: number[] }>(
      await this.propose({ t: 'ns.stream.rename', ino, from, to, replace: replace === true }),
      `rename stream ${from} -> ${to}`,
    );
    if (v.reap !== undefined) await this.reap(v.reap);
  }

  /**
   * The object store has no fixed capacity: a configured size is reported (limits). Sector sizes
   * are those of a 512e disk (512 logical, 4096 physical), as the posix driver reports, so Hyper-V
   * accepts both VHDX sector formats. The serial is a hash of cluster and share names (stable).
   */
  async statfs(): Promise<FsStats> {
    this.checkOpen();
    const root = this.meta.read((tx) => this.inode(tx, this.rootIno));
    const total = limits.chunkedReportedVolumeBytes;
    return {
      totalBytes: total,
      freeBytes: total,
      availableBytes: total,
      blockBytes: 4096,
      sectorBytesLogical: 512,
      sectorBytesPhysical: 4096,
      volumeSerial: createHash('sha256').update(`${this.deps.clusterId}\u0000${this.name.toUpperCase()}`).digest().readUInt32LE(0),
      label: this.name,
      createdNs: filetimeToUnixNs(root.creation),
      nameUnitsMax: limits.nameUnitsMax,
      caseSensitive: false,
      supportsSparse: true,
    };
  }

  /** Waits for the writes in flight (they are answered to their callers), then refuses every call. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.writer.close();
    this.maps.close();
  }

  // ---- data operations shared with handles ----

  /**
   * Sets a fork's end of file. Writes to the fork issued before are committed first, so a truncate
   * is ordered after them. A cut over more extents than one command may free is done in bounded
   * punches from the new end up, then the truncate itself.
   */
  async truncateFork(fork: number, size: number): Promise<void> {
    await this.writer.flushFork(fork);
    let r = await this.propose({ t: 'ext.truncate', fork, size });
    if (!r.ok && r.code === 'limit') {
      const max = this.deps.extentsPerCommandMax ?? limits.metaExtentsPerCommandMax;
      const end = this.meta.read((tx) => forkState(tx, fork)?.size ?? size);
      let from = size;
      while (from < end) {
        const cut = this.meta.read((tx) => boundedEnd(tx, fork, from, end, Math.max(1, max - 2)));
        valueOf(await this.propose({ t: 'ext.punch', fork, offset: from, length: cut - from }), 'truncate');
        from = cut;
      }
      r = await this.propose({ t: 'ext.truncate', fork, size });
    }
    valueOf(r, 'truncate');
  }

  /**
   * Unmaps [offset, offset+length) of a fork (ext.punch: the range reads as zeros, the size is kept;
   * FSCTL_SET_ZERO_DATA, MS-FSA 2.1.5.10.39, and FILE_LEVEL_TRIM later). Writes to the fork issued
   * before are committed first. A range over more extents than one command may touch is punched in
   * bounded steps (not atomic as a whole: a concurrent reader may see part of it zeroed).
   */
  async punchFork(fork: number, offset: number, length: number): Promise<void> {
    await this.writer.flushFork(fork);
    const end = offset + length;
    const max = this.deps.extentsPerCommandMax ?? limits.metaExtentsPerCommandMax;
    let from = offset;
    while (from < end) {
      const cut = this.meta.read((tx) => boundedEnd(tx, fork, from, end, Math.max(1, max - 2)));
      valueOf(await this.propose({ t: 'ext.punch', fork, offset: from, length: cut - from }), 'punch');
      from = cut;
    }
  }

  /**
   * Maps [dstOffset, dstOffset+length) of dstFork to what [srcOffset, srcOffset+length) of srcFork
   * maps (holes included), sharing objects (ext.clone counts the references). The caller flushed both
   * forks and checked the ranges. Split so that each ext.clone reads at most a third of the extent
   * budget in the source and in the destination (source window + destination window + new pieces fit).
   */
  async cloneFork(srcFork: number, srcOffset: number, dstFork: number, dstOffset: number, length: number): Promise<void> {
    const max = this.deps.extentsPerCommandMax ?? limits.metaExtentsPerCommandMax;
    const third = Math.max(1, Math.floor((max - 2) / 3));
    let done = 0;
    while (done < length) {
      const cut = this.meta.read((tx) => {
        const s = boundedEnd(tx, srcFork, srcOffset + done, srcOffset + length, third) - srcOffset;
        const d = boundedEnd(tx, dstFork, dstOffset + done, dstOffset + length, third) - dstOffset;
        return Math.min(s, d);
      });
      const r = await this.propose({ t: 'ext.clone', srcFork, srcOffset: srcOffset + done, dstFork, dstOffset: dstOffset + done, length: cut - done });
      valueOf(r, 'clone');
      done = cut;
    }
  }

  // ---- helpers ----

  private propose(cmd: { t: string; [k: string]: unknown }): Promise<CommandResult> {
    return this.meta.propose(cmd).catch((err: unknown) => {
      throw toIosError(err, cmd.t);
    });
  }

  private inode(tx: ReadTx, ino: number): Inode {
    const node = getInode(tx, ino);
    if (node === undefined) throw new IosError('ENOENT', `inode ${ino} does not exist`);
    return node;
  }

  /** Walks every component but the last as directories, then looks the last one up. */
  private resolve(tx: ReadTx, parts: readonly string[]): Resolved {
    let dir = this.rootIno;
    let dirPath = '';
    for (let i = 0; i < parts.length - 1; i++) {
      const ent = lookup(tx, dir, parts[i]!);
      if (ent === undefined) throw new IosError('ENOENT', `no such directory: ${parts.slice(0, i + 1).join('/')}`);
      if (ent.kind !== 'dir') throw new IosError('ENOTDIR', `not a directory: ${parts.slice(0, i + 1).join('/')}`);
      dir = ent.ino;
      dirPath = join(dirPath, ent.name);
    }
    const name = parts[parts.length - 1]!;
    return { parent: dir, parentPath: dirPath, name, ent: lookup(tx, dir, name) };
  }

  /** The inode at `path` (the root included); ENOENT when absent. */
  private objectIno(path: string): number {
    const parts = splitPath(path);
    if (parts.length === 0) return this.rootIno;
    const r = this.meta.read((tx) => this.resolve(tx, parts));
    if (r.ent === undefined) throw new IosError('ENOENT', `no such object: ${path}`);
    return r.ent.ino;
  }

  private initialAttributes(kind: 'file' | 'dir', requested: number | undefined): number {
    if (requested === undefined) return kind === 'dir' ? 0 : FileAttr.ARCHIVE;
    return requested & FILE_ATTR_SETTABLE;
  }

  /** ns.create; undefined when the name exists (a lost race). */
  private async create(parent: number, name: string, kind: 'file' | 'dir', options: OpenOptions): Promise<{ ino: number; fork: number } | undefined> {
    const cmd: { t: string; [k: string]: unknown } = {
      t: 'ns.create',
      parent,
      name,
      kind,
      attributes: this.initialAttributes(kind, options.attributes),
      now: this.now(),
    };
    if (options.securityDescriptor !== undefined) {
      cmd.sd = Buffer.from(options.securityDescriptor);
    }
    const allocation = allocationHint(options.allocationSize);
    if (kind === 'file' && allocation > 0) cmd.allocation = allocation;
    if (options.eas !== undefined && options.eas.length > 0) cmd.eas = easArg(options.eas);
    const r = await this.propose(cmd);
    if (!r.ok && r.code === 'exists') return undefined;
    return valueOf<{ ino: number; fork: number }>(r, `create ${name}`);
  }

  private async openExisting(r: Resolved, options: OpenOptions): Promise<OpenResult> {
    const { mode, directory } = options;
    const ent = r.ent!;
    const rel = join(r.parentPath, ent.name);
    if (mode === 'create') throw new IosError('EEXIST', `object exists: ${rel}`);
    const isDir = ent.kind === 'dir';
    if (directory === true && !isDir) throw new IosError('ENOTDIR', `not a directory: ${rel}`);
    if (directory === false && isDir) throw new IosError('EISDIR', `is a directory: ${rel}`);
    if (isDir) {
      if (truncatingModes.has(mode)) throw new IosError('EISDIR', `cannot ${mode} a directory: ${rel}`);
      return { handle: new ChunkedHandle(this, ent.ino, true, 0, false, options.write), action: 'opened', path: rel };
    }
    const node = this.meta.read((tx) => this.inode(tx, ent.ino));
    if (truncatingModes.has(mode)) {
      // Overwriting or superseding the unnamed stream replaces the whole file: its named streams go
      // too (MS-FSA 2.1.5.1.2.1), then its data. The file was modified (LastWriteTime, ChangeTime:
      // MS-FSA 2.1.4.17) and the create's AllocationSize replaces any allocation asked before.
      await this.dropStreams(node.ino);
      await this.truncateFork(node.fork, 0);
      const now = this.now();
      const cmd: { t: string; [k: string]: unknown } = { t: 'ns.setattr', ino: node.ino, lastWrite: now, allocation: allocationHint(options.allocationSize), now };
      // A superseded file takes the new attributes (and security descriptor when one is given).
      if (mode === 'replace') cmd.attributes = this.initialAttributes('file', options.attributes);
      valueOf(await this.propose(cmd), `${mode} ${rel}`);
      if (mode === 'replace' && options.securityDescriptor !== undefined) {
        const sd = Buffer.from(options.securityDescriptor);
        valueOf(await this.propose({ t: 'ns.setsd', ino: node.ino, sd, now: this.now() }), `replace ${rel}`);
      }
    }
    const handle = new ChunkedHandle(this, node.ino, false, node.fork, false, options.write);
    const action = mode === 'replace' ? 'replaced' : truncatingModes.has(mode) ? 'truncated' : 'opened';
    return { handle, action, path: rel };
  }

  private async dropStreams(ino: number): Promise<void> {
    const names = this.meta.read((tx) => listStreams(tx, ino).map((s) => s.name));
    const reaps: number[] = [];
    await Promise.all(
      names.map(async (name) => {
        const r = await this.propose({ t: 'ns.stream.delete', ino, name });
        if (!r.ok && r.code === 'not-found') return; // removed meanwhile
        const v = valueOf<{ reap?: number[] }>(r, `drop stream ${name}`);
        if (v.reap !== undefined) reaps.push(...v.reap);
      }),
    );
    if (reaps.length > 0) await this.reap(reaps);
  }

  /** Frees forks queued for reaping (maps too large to free in the unlink), one bounded slice per command. */
  private async reap(forks: readonly number[]): Promise<void> {
    for (const fork of forks) {
      for (let i = 0; i < 1_000_000; i++) {
        const r = await this.propose({ t: 'ext.reap', fork });
        if (!r.ok) break; // not queued any more (another node reaped it)
        if ((r.value as { done: boolean }).done) break;
      }
    }
  }

  /**
   * Opens a named stream (spi.ts OpenOptions.stream): the object at `parts` is found (or, for a
   * creating mode, created as a file, as NTFS does), then the stream is opened per `mode`.
   */
  private async openStream(parts: readonly string[], path: string, options: OpenOptions): Promise<OpenResult> {
    const { mode, stream } = options;
    checkStreamName(stream);
    // MS-FSA 2.1.5.1: a data stream is never a directory.
    if (options.directory === true) throw new IosError('ENOTDIR', `stream ${stream} is not a directory`);
    let createdObject = false;
    let basePath = '';
    let ino = this.rootIno;
    for (let attempt = 0; ; attempt++) {
      if (attempt >= openAttemptsMax) throw new IosError('EBUSY', `name kept changing during open: ${path}`);
      if (parts.length === 0) break;
      const r = this.meta.read((tx) => this.resolve(tx, parts));
      if (r.ent !== undefined) {
        ino = r.ent.ino;
        basePath = join(r.parentPath, r.ent.name);
        break;
      }
      if (mode === 'open' || mode === 'truncate') throw new IosError('ENOENT', `no such object: ${path}`);
      if (this.readOnly) throw new IosError('EROFS', 'share is read-only');
      const made = await this.create(r.parent, r.name, 'file', options);
      if (made !== undefined) {
        ino = made.ino;
        basePath = join(r.parentPath, r.name);
        createdObject = true;
        break;
      }
    }
    for (let attempt = 0; attempt < openAttemptsMax; attempt++) {
      const s = this.meta.read((tx) => getStream(tx, ino, stream));
      if (s !== undefined) {
        if (mode === 'create') throw new IosError('EEXIST', `stream ${stream} exists`);
        if (truncatingModes.has(mode)) await this.truncateFork(s.fork, 0);
        const action = mode === 'replace' ? 'replaced' : truncatingModes.has(mode) ? 'truncated' : 'opened';
        const handle = new ChunkedHandle(this, ino, false, s.fork, true, options.write, s.name);
        return { handle, action: createdObject ? 'created' : action, path: basePath, stream: s.name };
      }
      if (mode === 'open' || mode === 'truncate') throw new IosError('ENOENT', `no such stream: ${path}:${stream}`);
      if (this.readOnly) throw new IosError('EROFS', 'share is read-only');
      const r = await this.propose({ t: 'ns.stream.create', ino, name: stream });
      if (r.ok) {
        const { fork } = r.value as { fork: number };
        const handle = new ChunkedHandle(this, ino, false, fork, true, options.write, stream);
        return { handle, action: 'created', path: basePath, stream };
      }
      if (r.code !== 'exists') throw refusalError(r, `create stream ${stream}`);
      if (mode === 'create') throw new IosError('EEXIST', `stream ${stream} exists`);
    }
    throw new IosError('EBUSY', `stream kept changing during open: ${path}:${stream}`);
  }
}
