// A posix share: a local directory served through the IOS SPI.
//
// Path safety. Every path is resolved from the share root one component at a time with lstat: a
// symlink, FIFO, socket or device anywhere in the path is treated as absent (ENOENT; EACCES when a
// caller tries to create over one), so no path leads outside the root through a link. The final
// component is opened with O_NOFOLLOW (directories with O_DIRECTORY|O_NOFOLLOW, files with
// O_NONBLOCK so a FIFO swapped in cannot block a pool thread), and the opened descriptor's dev/ino is
// compared with what the walk saw; a mismatch retries the open. Truncating modes cut the file with
// ftruncate after that check, never with O_TRUNC.
// TOCTOU note: Node has no openat()/openat2(RESOLVE_BENEATH), so between the lstat walk and the
// host call, a local process with write access to the share's directories could swap an
// intermediate directory for a symlink. For open() the dev/ino check defeats that (the object opened
// must be the one the walk found inside the share). For mkdir, O_CREAT, rename, unlink and rmdir the
// window stays: a racing local user could redirect one such call. Hard links planted in the share by
// local users to files outside it cannot be told apart from ordinary files. Closing both needs
// openat-style calls (a native addon); the exposure is to local users who can already write into the
// share's tree on the server.
//
// The driver's state directory (.tessera at the root, any case) is invisible: absent from listings
// and lookups, refused (EACCES) as a name to create or rename to. It holds the metadata sidecar and
// the named streams (streams.ts), both keyed by file id and guarded by birth time.
import type { BigIntStats } from 'node:fs';
import { constants as fsConstants, existsSync } from 'node:fs';
import { realpath } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { basename, join } from 'node:path';
import { limits } from '../../base/limits.js';
import {
  FILE_ATTR_SETTABLE,
  IosError,
  type FileInfo,
  type FsStats,
  type IosShare,
  type OpenMode,
  type OpenOptions,
  type OpenResult,
} from '../spi.js';
import { applyEas } from '../eas.js';
import { errnoOf, toIosError } from './errno.js';
import { PosixHandle, PosixStreamHandle, type ShareContext } from './handle.js';
import { birthNsOf, buildInfo, defaultAttributes, fileIdOf } from './info.js';
import { NameIndexCache } from './name-index.js';
import { checkName, checkStreamName, fold, splitPath, STATE_DIR_FOLDED, STATE_DIR_NAME, STREAMS_DIR_NAME } from './paths.js';
import { emptyMetaStore, LmdbMetaStore, type MetaPatch, type MetaStore } from './sidecar.js';
import { StreamStore } from './streams.js';
import { lstat, lstatIfExists, mkdir, open, rename, rmdir, stat, statfs, unlink, type Fd } from './syscalls.js';

const { O_RDONLY, O_RDWR, O_CREAT, O_EXCL, O_NOFOLLOW, O_DIRECTORY, O_NONBLOCK } = fsConstants;

/**
 * The allocation a create asks for (SMB2 CREATE AllocationSize, MS-FSA 2.1.5.1.2.1), rounded to 4 KiB
 * and kept in the sidecar: the host has no fallocate through Node, so it is reported, not reserved.
 */
function allocationHint(bytes: number | undefined): number | null {
  if (bytes === undefined || !Number.isSafeInteger(bytes) || bytes <= 0) return null;
  return Math.ceil(bytes / 4096) * 4096;
}

/** Attempts of open() when the name changes under it (created or removed by someone else). */
const openAttemptsMax = 8;

const openModes: ReadonlySet<OpenMode> = new Set(['open', 'create', 'openOrCreate', 'truncate', 'truncateOrCreate', 'replace']);
const truncatingModes: ReadonlySet<OpenMode> = new Set(['truncate', 'truncateOrCreate', 'replace']);

export interface PosixShareOptions {
  readOnly?: boolean;
  /** Directory holding meta.lmdb and streams/. Default: <root>/.tessera. */
  stateDir?: string;
}

/** A directory reached by the walk. */
interface DirRef {
  abs: string;
  /** Share-relative path with stored case ('' for the root). */
  rel: string;
  st: BigIntStats;
  isRoot: boolean;
}

type Lookup =
  | { kind: 'found'; name: string; st: BigIntStats }
  | { kind: 'absent' }
  /** The exact name is taken by something the driver does not expose (symlink, FIFO, state dir). */
  | { kind: 'blocked' };

interface Entry {
  parent: DirRef;
  /** dev:ino of every directory from the root to `parent`, inclusive. */
  chain: Set<string>;
  name: string;
  found: Lookup;
}

function devIno(st: BigIntStats): string {
  return `${st.dev}:${st.ino}`;
}

function exposed(st: BigIntStats): boolean {
  return st.isFile() || st.isDirectory();
}

function childAbs(dir: DirRef, name: string): string {
  return `${dir.abs}/${name}`;
}

function childRel(dir: DirRef, name: string): string {
  return dir.rel === '' ? name : `${dir.rel}/${name}`;
}

async function lstatOrUndefined(abs: string): Promise<BigIntStats | undefined> {
  try {
    return await lstatIfExists(abs);
  } catch (err) {
    const errno = errnoOf(err);
    if (errno === 'ENOENT' || errno === 'ENOTDIR') return undefined;
    throw toIosError(err, 'lstat');
  }
}

export class PosixShare implements IosShare, ShareContext {
  private readonly names = new NameIndexCache(limits.nameCacheDirectoriesMax);
  private closed = false;
  readonly timesRecorded = { count: 0 };

  private constructor(
    private readonly rootAbs: string,
    readonly rootDev: bigint,
    private readonly rootIno: bigint,
    private readonly rootCreatedNs: bigint,
    readonly meta: MetaStore,
    readonly streams: StreamStore,
    readonly readOnly: boolean,
  ) {}

  static async open(root: string, options: PosixShareOptions): Promise<PosixShare> {
    const readOnly = options.readOnly === true;
    let rootAbs: string;
    let st: BigIntStats;
    try {
      // The operator's root may itself be reached through symlinks; everything below it may not.
      rootAbs = await realpath(root);
      st = await stat(rootAbs);
    } catch (err) {
      throw toIosError(err, `share root ${root}`);
    }
    if (!st.isDirectory()) throw new IosError('ENOTDIR', `share root ${root} is not a directory`);
    const stateDir = options.stateDir ?? join(rootAbs, STATE_DIR_NAME);
    const metaPath = join(stateDir, 'meta.lmdb');
    let meta: MetaStore;
    if (readOnly) {
      meta = existsSync(metaPath) ? LmdbMetaStore.open(metaPath, true) : emptyMetaStore;
    } else {
      try {
        await mkdir(stateDir, 0o700, true);
      } catch (err) {
        throw toIosError(err, `state directory ${stateDir}`);
      }
      meta = LmdbMetaStore.open(metaPath, false);
    }
    let streams: StreamStore;
    try {
      streams = await StreamStore.open(stateDir, STREAMS_DIR_NAME, readOnly);
    } catch (err) {
      await meta.close().catch(() => undefined);
      throw err;
    }
    const createdNs = st.birthtimeNs !== 0n ? st.birthtimeNs : st.mtimeNs;
    return new PosixShare(rootAbs, st.dev, st.ino, createdNs, meta, streams, readOnly);
  }

  async stat(path: string): Promise<{ path: string; info: FileInfo }> {
    this.checkOpen();
    const parts = splitPath(path);
    if (parts.length === 0) {
      const root = await this.root();
      return { path: '', info: buildInfo(root.st, this.rootDev, this.meta) };
    }
    const entry = await this.resolveEntry(parts);
    if (entry.found.kind !== 'found') throw new IosError('ENOENT', `no such object: ${path}`);
    return { path: childRel(entry.parent, entry.found.name), info: buildInfo(entry.found.st, this.rootDev, this.meta) };
  }

  async open(path: string, options: OpenOptions): Promise<OpenResult> {
    this.checkOpen();
    const { mode, directory } = options;
    if (!openModes.has(mode)) throw new IosError('EINVAL', `open mode ${String(mode)}`);
    if (directory === true && truncatingModes.has(mode)) throw new IosError('EINVAL', `mode ${mode} on a directory`);
    if (this.readOnly && (options.write || mode === 'create' || truncatingModes.has(mode))) {
      throw new IosError('EROFS', 'share is read-only');
    }
    const sd = options.securityDescriptor;
    if (sd !== undefined && (sd.length === 0 || sd.length > limits.securityDescriptorBytesMax)) {
      throw new IosError('EINVAL', `security descriptor of ${sd.length} bytes`);
    }
    const parts = splitPath(path);
    if (options.stream !== undefined) return this.openStream(parts, path, options);
    if (parts.length === 0) {
      if (mode === 'create') throw new IosError('EEXIST', 'the share root exists');
      if (truncatingModes.has(mode) || directory === false) throw new IosError('EISDIR', 'the share root is a directory');
      const root = await this.root();
      const handle = await this.openDirectory(root.abs, root.st, true);
      if (handle === undefined) throw new IosError('EBUSY', 'share root changed during open');
      return { handle, action: 'opened', path: '' };
    }

    for (let attempt = 0; attempt < openAttemptsMax; attempt++) {
      const entry = await this.resolveEntry(parts);
      const { parent, found, name } = entry;
      if (found.kind === 'found') {
        const result = await this.openExisting(entry.parent, found.name, found.st, options);
        if (result !== undefined) return result;
        continue; // replaced or removed between lookup and open: look again
      }
      if (mode === 'open' || mode === 'truncate') throw new IosError('ENOENT', `no such object: ${path}`);
      if (found.kind === 'blocked') throw new IosError('EACCES', `name '${name}' is not available`);
      if (this.readOnly) throw new IosError('EROFS', 'share is read-only');
      const created = await this.createAt(parent, name, options);
      if (created !== undefined) return created;
      if (mode === 'create') throw new IosError('EEXIST', `object exists: ${path}`);
      // Someone created the name between our lookup and our create: open it instead.
    }
    throw new IosError('EBUSY', `name kept changing during open: ${path}`);
  }

  async rename(from: string, to: string, replace: boolean): Promise<void> {
    this.checkOpen();
    if (this.readOnly) throw new IosError('EROFS', 'share is read-only');
    const fromParts = splitPath(from);
    const toParts = splitPath(to);
    if (fromParts.length === 0 || toParts.length === 0) throw new IosError('EINVAL', 'cannot rename the share root');
    const src = await this.resolveEntry(fromParts);
    if (src.found.kind !== 'found') throw new IosError('ENOENT', `no such object: ${from}`);
    const dst = await this.resolveEntry(toParts);
    const srcName = src.found.name;
    const srcSt = src.found.st;
    const srcAbs = childAbs(src.parent, srcName);
    const toName = dst.name;
    const sameDir = devIno(src.parent.st) === devIno(dst.parent.st);
    // A directory cannot move into itself or below itself.
    if (srcSt.isDirectory() && dst.chain.has(devIno(srcSt))) throw new IosError('EINVAL', 'cannot move a directory into its own subtree');
    if (dst.found.kind === 'blocked') throw new IosError('EACCES', `name '${toName}' is not available`);

    try {
      if (dst.found.kind === 'absent') {
        // Known window: POSIX rename replaces silently, so a name created by another process between
        // our lookup and the rename is replaced (Linux renameat2(RENAME_NOREPLACE) is not in Node).
        await rename(srcAbs, childAbs(dst.parent, toName));
        await this.noteRenamed(src, dst, [], [toName]);
        return;
      }
      const dstName = dst.found.name;
      const dstSt = dst.found.st;
      const sameObject = devIno(srcSt) === devIno(dstSt);
      if (sameObject && sameDir && dstName === srcName) {
        // The target resolves to the source itself: a rename that changes only case (or nothing).
        if (toName === srcName) return;
        await rename(srcAbs, childAbs(dst.parent, toName));
        await this.names.noteChange(dst.parent.abs, dst.parent.st, [toName], [srcName]);
        return;
      }
      if (!replace) throw new IosError('EEXIST', `target exists: ${to}`);
      if (dstSt.isDirectory()) throw new IosError('EEXIST', `target is a directory: ${to}`);
      if (sameObject) {
        // Two hard links of one file: POSIX rename would do nothing and keep both names.
        await unlink(srcAbs);
        await this.noteRenamed(src, dst, [], []);
        return;
      }
      const dstAbs = childAbs(dst.parent, dstName);
      if (srcSt.isDirectory()) {
        // POSIX cannot rename a directory over a file; two steps, not atomic.
        await unlink(dstAbs);
        await rename(srcAbs, childAbs(dst.parent, toName));
      } else {
        await rename(srcAbs, dstAbs); // atomic replace
        // The new name's case is the caller's: a second, same-directory step when it differs.
        if (toName !== dstName) await rename(dstAbs, childAbs(dst.parent, toName));
      }
      await this.noteRenamed(src, dst, [dstName], [toName]);
      if (dstSt.nlink <= 1n) await this.forget(dstSt);
    } catch (err) {
      throw toIosError(err, `rename ${from} -> ${to}`);
    }
  }

  async remove(path: string): Promise<void> {
    this.checkOpen();
    if (this.readOnly) throw new IosError('EROFS', 'share is read-only');
    const parts = splitPath(path);
    if (parts.length === 0) throw new IosError('EACCES', 'cannot remove the share root');
    const entry = await this.resolveEntry(parts);
    if (entry.found.kind !== 'found') throw new IosError('ENOENT', `no such object: ${path}`);
    const { name, st } = entry.found;
    const abs = childAbs(entry.parent, name);
    try {
      if (st.isDirectory()) {
        await rmdir(abs);
        this.names.drop(st);
      } else {
        await unlink(abs);
      }
    } catch (err) {
      throw toIosError(err, `remove ${path}`);
    }
    await this.names.noteChange(entry.parent.abs, entry.parent.st, [], [name]);
    // A file with other hard links lives on: keep its record and streams.
    if (st.isDirectory() || st.nlink <= 1n) await this.forget(st);
  }

  async removeStream(path: string, stream: string): Promise<void> {
    this.checkOpen();
    if (this.readOnly) throw new IosError('EROFS', 'share is read-only');
    checkStreamName(stream);
    const st = await this.statObject(path);
    await this.streams.remove(fileIdOf(st, this.rootDev), birthNsOf(st), stream);
  }

  async renameStream(path: string, from: string, to: string, replace: boolean): Promise<void> {
    this.checkOpen();
    if (this.readOnly) throw new IosError('EROFS', 'share is read-only');
    checkStreamName(from);
    checkStreamName(to);
    const st = await this.statObject(path);
    await this.streams.rename(fileIdOf(st, this.rootDev), birthNsOf(st), from, to, replace);
  }

  /**
   * Sizes from statfs. Sector sizes: 512 logical / 4096 physical, what a 512e disk reports, so
   * Hyper-V accepts both VHDX sector formats and aligns to 4 KiB. Volume serial: hash of the root's
   * dev and ino (stable while the directory exists on that file system).
   */
  async statfs(): Promise<FsStats> {
    this.checkOpen();
    let s;
    try {
      s = await statfs(this.rootAbs);
    } catch (err) {
      throw toIosError(err, 'statfs');
    }
    const serial = createHash('sha256').update(`${this.rootDev}:${this.rootIno}`).digest().readUInt32LE(0);
    return {
      totalBytes: s.blocks * s.bsize,
      freeBytes: s.bfree * s.bsize,
      availableBytes: s.bavail * s.bsize,
      blockBytes: s.bsize,
      sectorBytesLogical: 512,
      sectorBytesPhysical: 4096,
      volumeSerial: serial,
      label: basename(this.rootAbs),
      createdNs: this.rootCreatedNs,
      nameUnitsMax: limits.nameUnitsMax,
      caseSensitive: false,
      supportsSparse: true,
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.names.clear();
    await this.meta.close();
  }

  /** Drops what the driver keeps about an object whose last name is gone: sidecar record and streams. */
  private async forget(st: BigIntStats): Promise<void> {
    const fileId = fileIdOf(st, this.rootDev);
    await this.meta.remove(fileId);
    await this.streams.removeAll(fileId);
  }

  // ---- resolution ----

  /** lstat of the object at `path` (the root included); ENOENT when absent. */
  private async statObject(path: string): Promise<BigIntStats> {
    const parts = splitPath(path);
    if (parts.length === 0) return (await this.root()).st;
    const entry = await this.resolveEntry(parts);
    if (entry.found.kind !== 'found') throw new IosError('ENOENT', `no such object: ${path}`);
    return entry.found.st;
  }

  private checkOpen(): void {
    if (this.closed) throw new IosError('EINVAL', 'share is closed');
  }

  private async root(): Promise<DirRef> {
    let st: BigIntStats;
    try {
      st = await lstat(this.rootAbs);
    } catch (err) {
      throw toIosError(err, 'share root');
    }
    if (!st.isDirectory() || st.ino !== this.rootIno || st.dev !== this.rootDev) {
      throw new IosError('EIO', 'share root was replaced');
    }
    return { abs: this.rootAbs, rel: '', st, isRoot: true };
  }

  /** Resolves all components but the last as directories, then looks the last one up. */
  private async resolveEntry(parts: readonly string[]): Promise<Entry> {
    let dir = await this.root();
    const chain = new Set<string>([devIno(dir.st)]);
    for (let i = 0; i < parts.length - 1; i++) {
      const found = await this.lookup(dir, parts[i]!);
      if (found.kind !== 'found') throw new IosError('ENOENT', `no such directory: ${parts.slice(0, i + 1).join('/')}`);
      if (!found.st.isDirectory()) throw new IosError('ENOTDIR', `not a directory: ${parts.slice(0, i + 1).join('/')}`);
      dir = { abs: childAbs(dir, found.name), rel: childRel(dir, found.name), st: found.st, isRoot: false };
      chain.add(devIno(found.st));
    }
    const name = parts[parts.length - 1]!;
    return { parent: dir, chain, name, found: await this.lookup(dir, name) };
  }

  /** Case-insensitive lookup of one name in a directory; an exact-case match wins. */
  private async lookup(dir: DirRef, name: string): Promise<Lookup> {
    checkName(name);
    const folded = fold(name);
    if (dir.isRoot && folded === STATE_DIR_FOLDED) return { kind: 'blocked' };
    const exact = await lstatOrUndefined(childAbs(dir, name));
    if (exact !== undefined && exposed(exact)) return { kind: 'found', name, st: exact };
    for (const candidate of await this.names.candidates(dir.abs, dir.st, dir.isRoot, folded)) {
      if (candidate === name) continue;
      const st = await lstatOrUndefined(childAbs(dir, candidate));
      if (st !== undefined && exposed(st)) return { kind: 'found', name: candidate, st };
    }
    return exact !== undefined ? { kind: 'blocked' } : { kind: 'absent' };
  }

  // ---- open helpers ----

  /** Opens an object the walk found; undefined when it changed in between (caller retries). */
  private async openExisting(parent: DirRef, name: string, st: BigIntStats, options: OpenOptions): Promise<OpenResult | undefined> {
    const { mode, directory } = options;
    const isDir = st.isDirectory();
    const rel = childRel(parent, name);
    if (mode === 'create') throw new IosError('EEXIST', `object exists: ${rel}`);
    if (directory === true && !isDir) throw new IosError('ENOTDIR', `not a directory: ${rel}`);
    if (directory === false && isDir) throw new IosError('EISDIR', `is a directory: ${rel}`);
    const abs = childAbs(parent, name);
    if (isDir) {
      if (truncatingModes.has(mode)) throw new IosError('EISDIR', `cannot ${mode} a directory: ${rel}`);
      const handle = await this.openDirectory(abs, st, false, options.write);
      return handle && { handle, action: 'opened', path: rel };
    }
    const truncating = truncatingModes.has(mode);
    const handle = await this.openChecked(abs, st, (options.write || truncating ? O_RDWR : O_RDONLY) | O_NOFOLLOW | O_NONBLOCK, {
      write: options.write,
      isRoot: false,
      truncate: truncating,
    });
    if (handle === undefined) return undefined;
    if (truncating) {
      // Overwriting or superseding a file's unnamed stream replaces the whole file: its named streams
      // go too (MS-FSA 2.1.5.1.2.1; Samba's delete_all_streams on O_TRUNC does the same).
      try {
        await this.streams.removeAll(handle.fileId);
        // The allocation asked for before goes with the data; the create's AllocationSize replaces it.
        const allocation = allocationHint(options.allocationSize);
        if (mode !== 'replace' && (allocation !== null || this.meta.get(handle.fileId, birthNsOf(st))?.allocation !== undefined)) {
          await this.meta.update(handle.fileId, birthNsOf(st), { allocation });
        }
      } catch (err) {
        await handle.close().catch(() => undefined);
        throw err;
      }
    }
    if (mode === 'replace') {
      // A replaced object takes the new attributes (and security descriptor when one is given).
      const patch: MetaPatch = { attributes: this.initialAttributes(false, options.attributes), allocation: allocationHint(options.allocationSize) };
      if (options.securityDescriptor !== undefined) patch.securityDescriptor = Buffer.from(options.securityDescriptor);
      try {
        await this.meta.update(handle.fileId, birthNsOf(st), patch);
      } catch (err) {
        await handle.close().catch(() => undefined);
        throw err;
      }
      return { handle, action: 'replaced', path: rel };
    }
    return { handle, action: truncating ? 'truncated' : 'opened', path: rel };
  }

  /** Creates `name` in `parent`; undefined when the name exists (lost a race). */
  private async createAt(parent: DirRef, name: string, options: OpenOptions): Promise<OpenResult | undefined> {
    const isDir = options.directory === true;
    const abs = childAbs(parent, name);
    // Checked before anything is created (EINVAL leaves no object behind).
    const eas = options.eas !== undefined && options.eas.length > 0 ? applyEas([], options.eas) : [];
    let fh: Fd;
    try {
      if (isDir) await mkdir(abs, 0o777);
      // O_EXCL makes creation atomic: EEXIST when somebody won the race (never follows a symlink).
      fh = await open(abs, isDir ? O_RDONLY | O_DIRECTORY | O_NOFOLLOW : O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW, 0o666);
    } catch (err) {
      if (errnoOf(err) === 'EEXIST') return undefined;
      throw toIosError(err, `create ${childRel(parent, name)}`);
    }
    let handle: PosixHandle | undefined;
    try {
      const st = await fh.stat();
      handle = new PosixHandle(this, fh, st, options.write, abs, false);
      await this.names.noteChange(parent.abs, parent.st, [name], []);
      const attributes = this.initialAttributes(isDir, options.attributes);
      const patch: MetaPatch = {};
      if (attributes !== defaultAttributes(isDir)) patch.attributes = attributes;
      if (options.securityDescriptor !== undefined) patch.securityDescriptor = Buffer.from(options.securityDescriptor);
      const allocation = isDir ? null : allocationHint(options.allocationSize);
      if (allocation !== null) patch.allocation = allocation;
      if (eas.length > 0) patch.eas = eas;
      // Without a host birth time the creation time would follow mtime: pin it now.
      if (st.birthtimeNs === 0n) patch.creationTimeNs = st.mtimeNs;
      if (Object.keys(patch).length > 0) await this.meta.update(handle.fileId, birthNsOf(st), patch);
      return { handle, action: 'created', path: childRel(parent, name) };
    } catch (err) {
      // Undo a half-made object so a retry starts clean.
      if (handle !== undefined) await handle.close().catch(() => undefined);
      else await fh.close().catch(() => undefined);
      await (isDir ? rmdir(abs) : unlink(abs)).catch(() => undefined);
      throw toIosError(err, `create ${childRel(parent, name)}`);
    }
  }

  /**
   * Opens a named stream (spi.ts OpenOptions.stream): the object at `parts` is opened (or, for a
   * creating mode, created as a file) without truncation, then the stream is opened per `mode`.
   */
  private async openStream(parts: readonly string[], path: string, options: OpenOptions): Promise<OpenResult> {
    const { mode, stream } = options;
    checkStreamName(stream);
    // MS-FSA 2.1.5.1: a data stream is never a directory.
    if (options.directory === true) throw new IosError('ENOTDIR', `stream ${stream} is not a directory`);
    for (let attempt = 0; attempt < openAttemptsMax; attempt++) {
      let base: PosixHandle | undefined;
      let basePath: string;
      let created: { parent: DirRef; name: string } | undefined;
      if (parts.length === 0) {
        const root = await this.root();
        base = await this.openChecked(root.abs, root.st, O_RDONLY | O_DIRECTORY | O_NOFOLLOW, { write: options.write, isRoot: true, truncate: false });
        basePath = '';
      } else {
        const { parent, found, name } = await this.resolveEntry(parts);
        if (found.kind === 'found') {
          const flags = O_RDONLY | O_NOFOLLOW | (found.st.isDirectory() ? O_DIRECTORY : O_NONBLOCK);
          base = await this.openChecked(childAbs(parent, found.name), found.st, flags, { write: options.write, isRoot: false, truncate: false });
          basePath = childRel(parent, found.name);
        } else {
          if (mode === 'open' || mode === 'truncate') throw new IosError('ENOENT', `no such object: ${path}`);
          if (found.kind === 'blocked') throw new IosError('EACCES', `name '${name}' is not available`);
          if (this.readOnly) throw new IosError('EROFS', 'share is read-only');
          // NTFS creates the file when a stream of a missing file is created.
          const made = await this.createAt(parent, name, { ...options, stream: undefined, mode: 'create', directory: false });
          if (made !== undefined) {
            if (!(made.handle instanceof PosixHandle)) throw new IosError('EIO', 'unexpected handle type');
            base = made.handle;
            created = { parent, name };
          }
          basePath = childRel(parent, name);
        }
      }
      if (base === undefined) continue; // changed under us: look again
      try {
        const s = await this.streams.open(base.fileId, base.birthNs, stream, mode, options.write);
        return {
          handle: new PosixStreamHandle(this, base, s.fh, s.name, options.write),
          action: created !== undefined ? 'created' : s.action,
          path: basePath,
          stream: s.name,
        };
      } catch (err) {
        await base.close().catch(() => undefined);
        if (created !== undefined) {
          // Undo the object made for this stream, so a failed create leaves nothing behind.
          try {
            await unlink(childAbs(created.parent, created.name));
            await this.names.noteChange(created.parent.abs, created.parent.st, [], [created.name]);
            await this.meta.remove(base.fileId);
          } catch {
            // best effort: the stream error is what the caller needs
          }
        }
        throw err;
      }
    }
    throw new IosError('EBUSY', `name kept changing during open: ${path}`);
  }

  private initialAttributes(isDir: boolean, requested: number | undefined): number {
    if (requested === undefined) return defaultAttributes(isDir);
    if (!Number.isInteger(requested) || requested < 0) throw new IosError('EINVAL', `attributes ${requested}`);
    return requested & FILE_ATTR_SETTABLE;
  }

  private async openDirectory(abs: string, expect: BigIntStats, isRoot: boolean, write = false): Promise<PosixHandle | undefined> {
    return this.openChecked(abs, expect, O_RDONLY | O_DIRECTORY | O_NOFOLLOW, { write, isRoot, truncate: false });
  }

  /**
   * Opens and checks that the descriptor is the object the walk found (see the TOCTOU note).
   * Truncation happens after that check (ftruncate, not O_TRUNC), so a swapped-in object is never cut.
   */
  private async openChecked(
    abs: string,
    expect: BigIntStats,
    flags: number,
    how: { write: boolean; isRoot: boolean; truncate: boolean },
  ): Promise<PosixHandle | undefined> {
    let fh: Fd;
    try {
      fh = await open(abs, flags);
    } catch (err) {
      const errno = errnoOf(err);
      if (errno === 'ENOENT' || errno === 'ELOOP' || errno === 'ENOTDIR') return undefined;
      throw toIosError(err, 'open');
    }
    try {
      const st = await fh.stat();
      if (devIno(st) !== devIno(expect) || st.isDirectory() !== expect.isDirectory()) {
        await fh.close();
        return undefined;
      }
      if (how.truncate) await fh.truncate(0);
      return new PosixHandle(this, fh, st, how.write, abs, how.isRoot);
    } catch (err) {
      await fh.close().catch(() => undefined);
      throw toIosError(err, 'open');
    }
  }

  /** Updates the name indexes after a rename: source name out, target names in/out. */
  private async noteRenamed(src: Entry, dst: Entry, dstRemoved: string[], dstAdded: string[]): Promise<void> {
    if (src.found.kind !== 'found') return;
    if (devIno(src.parent.st) === devIno(dst.parent.st)) {
      await this.names.noteChange(dst.parent.abs, dst.parent.st, dstAdded, [src.found.name, ...dstRemoved]);
      return;
    }
    await this.names.noteChange(src.parent.abs, src.parent.st, [], [src.found.name]);
    await this.names.noteChange(dst.parent.abs, dst.parent.st, dstAdded, dstRemoved);
  }
}
