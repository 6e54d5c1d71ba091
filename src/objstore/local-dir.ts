// The embedded default object store: objects are files in a local directory (spi.ts contract).
//
// Layout under the store directory `dir`:
//   dir/objects/   the key space. Key 'a/b/c' is the file objects/a\/b\/c: every '/' of a key is a
//                  subdirectory, and a directory's name is its key segment followed by a backslash.
//                  Keys never contain '\\' (spi.ts keyProblem), so the marker keeps object 'a' (a file
//                  named a) and object 'a/b' (a file b in a directory named a\) apart, as S3 does, and
//                  no key can name a directory or the other way round.
//   dir/tmp/       temp files of puts and copies in progress, on the same file system as objects/ so
//                  a rename or link publishes them. Cleaned at open.
//
// Object file format: the object's bytes, then a 32-byte trailer: a tag (16), their length (u64
// big-endian, 8), magic 'TSOBJv1\n' (8). The ETag is the tag in hex. Each put draws a random
// 128-bit tag (objects written before 2026-11-26 carry the MD5 of their bytes there instead, S3's
// single-part ETag; both are opaque, spi.ts): hashing every byte on the event loop cost as much CPU
// as the rest of the write path (1.4 s per GiB), and nothing needs a content hash. The tag lives inside
// the file, so the rename that publishes the bytes publishes their ETag in the same atomic step: a
// sidecar file or an xattr would need a second step, and an ETag derived from stat (size, mtime,
// inode) could repeat for different content (inodes are reused and mtime ticks are coarse), which
// would let a stale ifMatch pass; a random tag repeats with probability 2^-128. head() and list() read the trailer only; the
// content is not re-read or re-verified on get(), as on S3.
//
// Durability (spi.ts): a put writes the temp file, fdatasyncs it, publishes it, then fsyncs the
// directory holding the key and the parents of every directory it created. deleteMany fsyncs the
// directories it removed entries from. Only then do they resolve.
//
// Publication: plain put and copy rename(2) over the key; create-only (ifNoneMatch '*') uses link(2),
// which fails with EEXIST atomically, so exactly one of many concurrent creators wins, across
// processes too. ifMatch compares the current ETag and renames under a per-key lock of this process:
// it is atomic against everything this LocalDirStore does, NOT against another process writing the
// same directory (a plain directory has no compare-and-rename).
//
// Confinement: keys are validated (no '..', '.', empty segment, leading '/', backslash). Files are
// opened with O_NOFOLLOW and each opened file or directory is checked, through /proc/self/fd, to be
// exactly the path the key maps to, so a symbolic link planted anywhere in the tree is refused
// ('denied') instead of followed out of the store (without /proc: every directory on the path is
// lstat'ed instead). list() never descends into symbolic links. This guards against stray links, not
// against an attacker racing the server with write access to the directory.
//
// Restrictions of this adapter: a key segment is at most objstoreLocalSegmentBytesMax bytes (a file
// name is at most 255 bytes); the directory must be on a case-sensitive local file system.
import { randomBytes } from 'node:crypto';
import { constants as fsc } from 'node:fs';
import { copyFile, link, lstat, mkdir, open, readdir, readlink, realpath, rename, rmdir, unlink, type FileHandle } from 'node:fs/promises';
import { limits } from '../base/limits.js';
import {
  bodyParts,
  checkDeleteKeys,
  checkKey,
  checkListArgs,
  checkPutOptions,
  checkRange,
  clampRange,
  compareKeys,
  mapBounded,
} from './checks.js';
import {
  ObjStoreError,
  type ByteRange,
  type DeleteResult,
  type ListPage,
  type ObjectInfo,
  type ObjectStore,
  type ObjStoreErrorCode,
  type PutOptions,
} from './spi.js';

const TRAILER_BYTES = 32;
const MAGIC = Buffer.from('TSOBJv1\n', 'latin1');
const DIR_MARK = '\\';
const OBJECTS_DIR = 'objects';
const TEMPS_DIR = 'tmp';

const READ_FLAGS = fsc.O_RDONLY | fsc.O_NOFOLLOW | fsc.O_NONBLOCK; // O_NONBLOCK: a planted FIFO must not hang us
const DIR_FLAGS = fsc.O_RDONLY | fsc.O_DIRECTORY | fsc.O_NOFOLLOW;
const TEMP_FLAGS = fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL | fsc.O_NOFOLLOW;

/** Attempts of a publication whose directory a concurrent deleteMany removed meanwhile. */
const PUBLISH_ATTEMPTS = 4;

/** Temp names are `${pid}.${process start ms}.${seq}`: whose they are decides when open() may remove them. */
const PROCESS_MARK = `${process.pid}.${Math.round(performance.timeOrigin)}`;
let tempSeq = 0;

export interface LocalDirOptions {
  /**
   * How opened paths are checked against symbolic links: 'auto' uses /proc/self/fd when the system
   * has it and lstat of every directory otherwise; 'lstat' forces the latter (tests).
   */
  readonly pathCheck?: 'auto' | 'lstat';
}

interface Parent {
  readonly fh: FileHandle;
  /** Directories this call created, shallowest first (their parents need an fsync too). */
  readonly created: readonly string[];
}

export class LocalDirStore implements ObjectStore {
  readonly kind = 'local';
  private closed = false;
  private readonly locks = new Map<string, Promise<void>>();

  private constructor(
    /** The store directory, resolved (no symbolic links in it). */
    readonly dir: string,
    private readonly objRoot: string,
    private readonly tmpRoot: string,
    private readonly procFd: boolean,
  ) {}

  /** Opens (creating if needed) the store in `dir`; removes temp files that crashed puts left behind. */
  static async open(dir: string, options: LocalDirOptions = {}): Promise<LocalDirStore> {
    try {
      await mkdir(dir, { recursive: true });
      const root = await realpath(dir);
      const objRoot = `${root}/${OBJECTS_DIR}`;
      const tmpRoot = `${root}/${TEMPS_DIR}`;
      for (const d of [objRoot, tmpRoot]) {
        await mkdir(d).catch((e: NodeJS.ErrnoException) => {
          if (e.code !== 'EEXIST') throw e;
        });
        if (!(await lstat(d)).isDirectory()) throw new ObjStoreError('corrupt', `${d} is not a directory`);
      }
      await fsyncPath(root);
      let procFd = false;
      if (options.pathCheck !== 'lstat') {
        const fh = await open(objRoot, DIR_FLAGS);
        try {
          procFd = (await readlink(`/proc/self/fd/${fh.fd}`).catch(() => '')) === objRoot;
        } finally {
          await fh.close();
        }
      }
      await removeStaleTemps(tmpRoot);
      return new LocalDirStore(root, objRoot, tmpRoot, procFd);
    } catch (e) {
      throw fsFail(e, `opening object store ${dir}`);
    }
  }

  async get(key: string, range?: ByteRange): Promise<Buffer> {
    this.enter();
    checkKey(key);
    checkRange(range);
    this.segments(key);
    const path = this.pathOf(key);
    const fh = await this.openObject(path, key);
    try {
      const st = await fh.stat();
      if (!st.isFile()) throw new ObjStoreError('corrupt', `${key}: not a regular file`);
      const size = objectSize(st.size, key);
      const { start, end } = clampRange(size, range);
      const buf = Buffer.allocUnsafe(end - start);
      await readFully(fh, buf, start, key);
      return buf;
    } catch (e) {
      throw fsFail(e, `get ${key}`);
    } finally {
      await fh.close().catch(() => undefined);
    }
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    this.enter();
    checkKey(key);
    this.segments(key);
    try {
      return await this.infoAt(this.pathOf(key), key);
    } catch (e) {
      if (e instanceof ObjStoreError && e.code === 'not-found') return undefined;
      throw e;
    }
  }

  async put(key: string, body: Uint8Array | readonly Uint8Array[], opts?: PutOptions): Promise<ObjectInfo> {
    this.enter();
    checkKey(key);
    const segs = this.segments(key);
    checkPutOptions(opts);
    const { parts, size } = bodyParts(body);
    const temp = this.tempPath();
    let etag: string;
    try {
      etag = await writeTemp(temp, parts, size);
    } catch (e) {
      await unlink(temp).catch(() => undefined);
      throw fsFail(e, `put ${key}: writing the temp file`);
    }
    return this.publish(key, segs, temp, { key, size, etag }, opts ?? {});
  }

  async copy(source: string, target: string, opts?: { ifNoneMatch?: '*' }): Promise<ObjectInfo> {
    this.enter();
    checkKey(source, 'source');
    checkKey(target, 'target');
    this.segments(source);
    const targetSegs = this.segments(target);
    checkPutOptions(opts);
    const srcPath = this.pathOf(source);
    const temp = this.tempPath();
    let info: ObjectInfo;
    try {
      const src = await this.openObject(srcPath, source);
      try {
        objectSize((await src.stat()).size, source);
        // Copy from the descriptor already checked (not the path, which could change meanwhile);
        // FICLONE shares extents on file systems that can (XFS, Btrfs), copy_file_range otherwise.
        const from = this.procFd ? `/proc/self/fd/${src.fd}` : srcPath;
        await copyFile(from, temp, fsc.COPYFILE_EXCL | fsc.COPYFILE_FICLONE);
      } finally {
        await src.close().catch(() => undefined);
      }
      const fh = await open(temp, fsc.O_RDWR | fsc.O_NOFOLLOW);
      try {
        await fh.datasync();
        const t = await readTrailer(fh, source);
        info = { key: target, size: t.size, etag: t.etag };
      } finally {
        await fh.close();
      }
    } catch (e) {
      await unlink(temp).catch(() => undefined);
      throw fsFail(e, `copy ${source} to ${target}`);
    }
    return this.publish(target, targetSegs, temp, info, opts ?? {});
  }

  async deleteMany(keys: readonly string[]): Promise<DeleteResult> {
    this.enter();
    checkDeleteKeys(keys);
    const segsOf = keys.map((k) => this.segments(k));
    // One group per directory: open and fsync each directory once.
    const groups = new Map<string, number[]>();
    keys.forEach((k, i) => {
      const d = this.dirOf(segsOf[i]!);
      const g = groups.get(d);
      if (g === undefined) groups.set(d, [i]);
      else g.push(i);
    });
    const failed = new Map<number, { code: ObjStoreErrorCode; message: string }>();
    const fail = (i: number, e: unknown): void => {
      const err = fsFail(e, `delete ${keys[i]}`);
      failed.set(i, { code: err.code, message: err.message });
    };
    await mapBounded([...groups], limits.objstoreLocalIoConcurrencyMax, async ([dirPath, idxs]) => {
      let parent: Parent | undefined;
      try {
        parent = await this.openParent(segsOf[idxs[0]!]!, false);
      } catch (e) {
        for (const i of idxs) fail(i, e);
        return;
      }
      if (parent === undefined) return; // the directory is absent, so are the keys
      try {
        let removed = 0;
        for (const i of idxs) {
          try {
            await this.withKeyLock(keys[i]!, () => unlink(this.pathOf(keys[i]!)));
            removed++;
          } catch (e) {
            if ((e as NodeJS.ErrnoException).code !== 'ENOENT') fail(i, e);
          }
        }
        if (removed > 0) {
          try {
            await parent.fh.sync();
          } catch (e) {
            // The unlinks happened but may not survive a crash.
            for (const i of idxs) if (!failed.has(i)) failed.set(i, { code: 'ambiguous', message: `delete ${keys[i]}: fsync of ${dirPath} failed: ${String(e)}` });
          }
        }
      } finally {
        await parent.fh.close().catch(() => undefined);
      }
      await this.removeEmptyDirs(dirPath);
    });
    const deleted: string[] = [];
    const errors: { key: string; code: ObjStoreErrorCode; message: string }[] = [];
    keys.forEach((k, i) => {
      const f = failed.get(i);
      if (f === undefined) deleted.push(k);
      else errors.push({ key: k, ...f });
    });
    return { deleted, errors };
  }

  async list(prefix: string, opts?: { after?: string; limit?: number }): Promise<ListPage> {
    this.enter();
    const { after, limit } = checkListArgs(prefix, opts);
    // Every key starting with `prefix` lies under the directory of the prefix's complete segments.
    const cut = prefix.lastIndexOf('/');
    const baseKey = prefix.slice(0, cut + 1);
    const baseSegs = baseKey === '' ? [] : baseKey.slice(0, -1).split('/');
    if (baseSegs.some((s) => s === '' || s === '.' || s === '..' || s.length > limits.objstoreLocalSegmentBytesMax)) {
      return { objects: [] }; // no key can have such a segment
    }
    const baseDir = this.dirOf([...baseSegs, '']);
    try {
      const fh = await open(baseDir, DIR_FLAGS);
      try {
        await this.verifyOpened(fh, baseDir);
      } finally {
        await fh.close();
      }
    } catch (e) {
      const err = (e as NodeJS.ErrnoException).code === 'ENOTDIR' ? await this.notDirectory(baseDir, e) : fsFail(e, `list ${prefix}`);
      if (err.code === 'not-found') return { objects: [] };
      throw err;
    }
    const keys: string[] = [];
    try {
      for await (const k of walk(baseDir, baseKey, prefix, after)) {
        keys.push(k);
        if (keys.length > limit) break;
      }
    } catch (e) {
      throw fsFail(e, `list ${prefix}`);
    }
    const page = keys.slice(0, limit);
    const infos = await mapBounded(page, limits.objstoreLocalIoConcurrencyMax, async (k) => {
      try {
        return await this.infoAt(this.pathOf(k), k);
      } catch (e) {
        if (e instanceof ObjStoreError && e.code === 'not-found') return undefined; // deleted meanwhile
        throw e;
      }
    });
    const objects = infos.filter((o): o is ObjectInfo => o !== undefined);
    return keys.length > limit ? { objects, next: page[page.length - 1]! } : { objects };
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  // --- internals ---

  private enter(): void {
    if (this.closed) throw new ObjStoreError('closed', 'object store is closed');
  }

  /** The key's segments; 'invalid' if one is too long for a file name. */
  private segments(key: string): string[] {
    const segs = key.split('/');
    for (const s of segs) {
      if (s.length > limits.objstoreLocalSegmentBytesMax) {
        throw new ObjStoreError('invalid', `key segment longer than ${limits.objstoreLocalSegmentBytesMax} bytes (a local file name)`);
      }
    }
    return segs;
  }

  /** The directory holding the object whose key has these segments. */
  private dirOf(segs: readonly string[]): string {
    let p = this.objRoot;
    for (let i = 0; i < segs.length - 1; i++) p += `/${segs[i]}${DIR_MARK}`;
    return p;
  }

  private pathOf(key: string): string {
    const segs = key.split('/');
    return `${this.dirOf(segs)}/${segs[segs.length - 1]}`;
  }

  private tempPath(): string {
    return `${this.tmpRoot}/${PROCESS_MARK}.${tempSeq++}`;
  }

  /** Opens the object file at `path` for reading, checked to be inside the store. */
  private async openObject(path: string, key: string): Promise<FileHandle> {
    let fh: FileHandle;
    try {
      fh = await open(path, READ_FLAGS);
    } catch (e) {
      throw fsFail(e, `open ${key}`);
    }
    try {
      await this.verifyOpened(fh, path);
      return fh;
    } catch (e) {
      await fh.close().catch(() => undefined);
      throw fsFail(e, `open ${key}`);
    }
  }

  private async infoAt(path: string, key: string): Promise<ObjectInfo> {
    const fh = await this.openObject(path, key);
    try {
      const t = await readTrailer(fh, key);
      return { key, size: t.size, etag: t.etag };
    } catch (e) {
      throw fsFail(e, `head ${key}`);
    } finally {
      await fh.close().catch(() => undefined);
    }
  }

  /** Refuses an opened file or directory that is not exactly at `path` (a symbolic link on the way). */
  private async verifyOpened(fh: FileHandle, path: string): Promise<void> {
    if (this.procFd) {
      const real = await readlink(`/proc/self/fd/${fh.fd}`);
      if (real === path || real === `${path} (deleted)`) return;
      throw new ObjStoreError('denied', `${path} resolves to ${real}: refusing a symbolic link in the store`);
    }
    // Without /proc: the last component was opened with O_NOFOLLOW; check the directories above it.
    if (path === this.objRoot) return;
    let p = this.objRoot;
    const rest = path.slice(this.objRoot.length + 1).split('/');
    for (let i = 0; i < rest.length - 1; i++) {
      p += `/${rest[i]}`;
      if (!(await lstat(p)).isDirectory()) throw new ObjStoreError('denied', `${p} is not a directory: refusing a symbolic link in the store`);
    }
  }

  /**
   * Why a directory path of the layout could not be opened as a directory (ENOTDIR): a symbolic
   * link on the way ('denied') or a file where a directory belongs ('corrupt').
   */
  private async notDirectory(path: string, cause: unknown): Promise<ObjStoreError> {
    let p = this.objRoot;
    for (const seg of path.slice(this.objRoot.length + 1).split('/')) {
      p += `/${seg}`;
      const st = await lstat(p).catch(() => undefined);
      if (st === undefined) break;
      if (st.isSymbolicLink()) return new ObjStoreError('denied', `${p} is a symbolic link: refusing to follow it out of the store`, { cause });
      if (!st.isDirectory()) return new ObjStoreError('corrupt', `${p}: a file where the store needs a directory`, { cause });
    }
    return new ObjStoreError('not-found', `${path}: not a directory`, { cause });
  }

  /**
   * Opens the directory that holds the key with these segments, checked to be inside the store;
   * creates missing directories when `create` (undefined when absent and not `create`).
   */
  private async openParent(segs: readonly string[], create: boolean): Promise<Parent | undefined> {
    const dirPath = this.dirOf(segs);
    let created: string[] = [];
    for (let attempt = 0; ; attempt++) {
      let fh: FileHandle;
      try {
        fh = await open(dirPath, DIR_FLAGS);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'ENOENT' && !create) return undefined;
        // O_DIRECTORY|O_NOFOLLOW meeting a symbolic link fails with ENOTDIR, as a plain file does.
        if (code === 'ENOTDIR') throw await this.notDirectory(dirPath, e);
        if (code === 'ENOENT' && attempt < PUBLISH_ATTEMPTS) {
          created = created.concat(await this.makeDirs(segs));
          continue;
        }
        throw e;
      }
      try {
        await this.verifyOpened(fh, dirPath);
      } catch (e) {
        await fh.close().catch(() => undefined);
        throw e;
      }
      return { fh, created };
    }
  }

  /** Creates the missing directories of the key's path one by one, never through a symbolic link. */
  private async makeDirs(segs: readonly string[]): Promise<string[]> {
    const created: string[] = [];
    let p = this.objRoot;
    for (let i = 0; i < segs.length - 1; i++) {
      p += `/${segs[i]}${DIR_MARK}`;
      try {
        await mkdir(p);
        created.push(p);
        continue;
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'ENOENT') return created; // a parent was removed meanwhile: the caller retries
        if (code !== 'EEXIST') throw e;
      }
      const st = await lstat(p).catch(() => undefined);
      if (st === undefined) return created; // removed meanwhile: retry
      if (!st.isDirectory()) throw new ObjStoreError('denied', `${p} is not a directory: refusing a symbolic link in the store`);
    }
    return created;
  }

  /** Publishes a synced temp file as `key` per the put options; fsyncs what it changed. */
  private async publish(key: string, segs: readonly string[], temp: string, info: ObjectInfo, opts: PutOptions): Promise<ObjectInfo> {
    const path = this.pathOf(key);
    let parent: Parent | undefined;
    try {
      for (let attempt = 1; ; attempt++) {
        try {
          parent = await this.openParent(segs, true);
          await this.withKeyLock(key, async () => {
            if (opts.ifMatch !== undefined) {
              const current = await this.infoAt(path, key).catch((e: unknown) => {
                if (e instanceof ObjStoreError && e.code === 'not-found') return undefined;
                throw e;
              });
              if (current?.etag !== opts.ifMatch) {
                throw new ObjStoreError('precondition-failed', current === undefined ? `${key} does not exist` : `${key} has another etag`);
              }
            }
            if (opts.ifNoneMatch === '*') {
              try {
                await link(temp, path);
              } catch (e) {
                if ((e as NodeJS.ErrnoException).code === 'EEXIST') throw new ObjStoreError('precondition-failed', `${key} exists`);
                throw e;
              }
            } else {
              await rename(temp, path);
            }
          });
          break;
        } catch (e) {
          // ENOENT: a concurrent deleteMany removed the (then empty) directory: make it again.
          if ((e as NodeJS.ErrnoException).code === 'ENOENT' && attempt < PUBLISH_ATTEMPTS) {
            await parent?.fh.close().catch(() => undefined);
            parent = undefined;
            continue;
          }
          throw fsFail(e, `put ${key}`);
        }
      }
    } catch (e) {
      await parent?.fh.close().catch(() => undefined);
      await unlink(temp).catch(() => undefined);
      throw e;
    }
    // Visible now; make it durable. A failure here leaves the outcome unknown: 'ambiguous'.
    try {
      if (opts.ifNoneMatch === '*') await unlink(temp).catch(() => undefined);
      await parent!.fh.sync();
      await Promise.all(parent!.created.map((d) => fsyncPath(d.slice(0, d.lastIndexOf('/'))).catch(ignoreEnoent)));
    } catch (e) {
      throw new ObjStoreError('ambiguous', `put ${key}: published but not synced: ${String(e)}`, { cause: e });
    } finally {
      await parent!.fh.close().catch(() => undefined);
    }
    return info;
  }

  /** Removes `dirPath` and its parents up to the objects root while they are empty (best effort). */
  private async removeEmptyDirs(dirPath: string): Promise<void> {
    let p = dirPath;
    while (p.length > this.objRoot.length) {
      try {
        await rmdir(p);
      } catch {
        return; // not empty (or gone): stop
      }
      p = p.slice(0, p.lastIndexOf('/'));
    }
  }

  private async withKeyLock<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.locks.get(key);
    let release!: () => void;
    const mine = new Promise<void>((r) => (release = r));
    const tail = prev === undefined ? mine : prev.then(() => mine);
    this.locks.set(key, tail);
    if (prev !== undefined) await prev;
    try {
      return await fn();
    } finally {
      release();
      if (this.locks.get(key) === tail) this.locks.delete(key);
    }
  }
}

/**
 * Yields, in key order, the keys under `dir` (whose objects' keys start with `dirKey`) that start
 * with `prefix` and sort after `after`. Subtrees that cannot hold such a key are not read, so a page
 * costs the directories along its path plus the ones it returns keys from.
 */
async function* walk(dir: string, dirKey: string, prefix: string, after: string | undefined): AsyncGenerator<string> {
  const entries = await readdir(dir, { withFileTypes: true }).catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT') return []; // removed meanwhile (emptied by a deleteMany)
    throw e;
  });
  const items: { sortKey: string; name: string; isDir: boolean }[] = [];
  for (const e of entries) {
    if (!isFragment(e.name)) continue;
    // Dirent types come from the directory itself (lstat semantics): symbolic links are neither.
    if (e.isFile() && !e.name.includes(DIR_MARK)) {
      items.push({ sortKey: dirKey + e.name, name: e.name, isDir: false });
    } else if (e.isDirectory() && e.name.length > 1 && e.name.indexOf(DIR_MARK) === e.name.length - 1) {
      // All keys under the directory start with `segment/`; no other entry here does, so sorting
      // by that string puts the whole subtree in its place in key order.
      items.push({ sortKey: `${dirKey}${e.name.slice(0, -1)}/`, name: e.name, isDir: true });
    }
  }
  items.sort((a, b) => compareKeys(a.sortKey, b.sortKey));
  for (const it of items) {
    const k = it.sortKey;
    if (k > prefix && !k.startsWith(prefix)) break; // past every key with the prefix
    if (!it.isDir) {
      if (k.startsWith(prefix) && (after === undefined || k > after)) yield k;
      continue;
    }
    // A subtree holds keys starting with k: it is useful if k and prefix are compatible, and unless
    // all of them sort before `after` (k < after without being a prefix of it).
    if (!(k.startsWith(prefix) || prefix.startsWith(k))) continue;
    if (after !== undefined && k < after && !after.startsWith(k)) continue;
    yield* walk(`${dir}/${it.name}`, k, prefix, after);
  }
}

/** Printable ASCII (key bytes and the directory marker): other names are not the store's. */
function isFragment(name: string): boolean {
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c < 0x20 || c > 0x7e) return false;
  }
  return true;
}

/** Writes the parts and the trailer (a new random tag: the ETag) to a new temp file; syncs it. */
async function writeTemp(temp: string, parts: readonly Uint8Array[], size: number): Promise<string> {
  const fh = await open(temp, TEMP_FLAGS, 0o600);
  try {
    const tag = randomBytes(16);
    const trailer = Buffer.alloc(TRAILER_BYTES);
    tag.copy(trailer, 0);
    trailer.writeBigUInt64BE(BigInt(size), 16);
    MAGIC.copy(trailer, 24);
    // One writev for the bytes and the trailer (writev takes at most IOV_MAX buffers: writeAll
    // resumes after a short write).
    await writeAll(fh, [...parts, trailer], 0);
    await fh.datasync();
    return tag.toString('hex');
  } finally {
    await fh.close();
  }
}

/** writev of all parts from `position`, resuming after short writes. */
async function writeAll(fh: FileHandle, parts: readonly Uint8Array[], position: number): Promise<void> {
  let rest = parts.filter((p) => p.byteLength > 0);
  let pos = position;
  while (rest.length > 0) {
    const { bytesWritten } = await fh.writev(rest as Uint8Array[], pos);
    if (bytesWritten <= 0) throw new ObjStoreError('unavailable', 'write made no progress');
    pos += bytesWritten;
    let skip = bytesWritten;
    const next: Uint8Array[] = [];
    for (const p of rest) {
      if (skip >= p.byteLength) {
        skip -= p.byteLength;
        continue;
      }
      next.push(skip > 0 ? p.subarray(skip) : p);
      skip = 0;
    }
    rest = next;
  }
}

async function readFully(fh: FileHandle, buf: Buffer, position: number, key: string): Promise<void> {
  let done = 0;
  while (done < buf.byteLength) {
    const { bytesRead } = await fh.read(buf, done, buf.byteLength - done, position + done);
    if (bytesRead === 0) throw new ObjStoreError('corrupt', `${key}: object file shorter than its size`);
    done += bytesRead;
  }
}

function objectSize(fileBytes: number, key: string): number {
  const size = fileBytes - TRAILER_BYTES;
  if (size < 0 || size > limits.objstoreObjectBytesMax) throw new ObjStoreError('corrupt', `${key}: not an object file (${fileBytes} bytes)`);
  return size;
}

async function readTrailer(fh: FileHandle, key: string): Promise<{ size: number; etag: string }> {
  const st = await fh.stat();
  if (!st.isFile()) throw new ObjStoreError('corrupt', `${key}: not a regular file`);
  const size = objectSize(st.size, key);
  const t = Buffer.alloc(TRAILER_BYTES);
  await readFully(fh, t, size, key);
  if (!t.subarray(24).equals(MAGIC) || t.readBigUInt64BE(16) !== BigInt(size)) {
    throw new ObjStoreError('corrupt', `${key}: object file without a valid trailer`);
  }
  return { size, etag: t.subarray(0, 16).toString('hex') };
}

async function fsyncPath(dirPath: string): Promise<void> {
  const fh = await open(dirPath, DIR_FLAGS);
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

function ignoreEnoent(e: NodeJS.ErrnoException): void {
  if (e.code !== 'ENOENT') throw e;
}

/** Removes temp files whose writer is gone: dead process, or an earlier process with our pid. */
async function removeStaleTemps(tmpRoot: string): Promise<void> {
  const now = Date.now();
  for (const name of await readdir(tmpRoot)) {
    const m = /^(\d+)\.(\d+)\.\d+$/.exec(name);
    const path = `${tmpRoot}/${name}`;
    let stale: boolean;
    if (m === null) stale = true; // not ours to keep
    else if (`${m[1]}.${m[2]}` === PROCESS_MARK) stale = false; // another store of this process may be writing it
    else if (Number(m[1]) === process.pid || !processAlive(Number(m[1]))) stale = true;
    else {
      const st = await lstat(path).catch(() => undefined);
      stale = st !== undefined && now - st.mtimeMs > limits.objstoreLocalTempStaleMs;
    }
    if (stale) await unlink(path).catch(ignoreEnoent);
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Maps a file system error to the SPI's codes (an ObjStoreError passes through). */
function fsFail(e: unknown, what: string): ObjStoreError {
  if (e instanceof ObjStoreError) return e;
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  const msg = `${what}: ${e instanceof Error ? e.message : String(e)}`;
  switch (code) {
    case 'ENOENT':
    case 'ENOTDIR':
      return new ObjStoreError('not-found', msg, { cause: e });
    case 'EACCES':
    case 'EPERM':
    case 'EROFS':
    case 'ELOOP': // O_NOFOLLOW met a symbolic link
      return new ObjStoreError('denied', msg, { cause: e });
    case 'EISDIR':
    case 'ENOTEMPTY':
      return new ObjStoreError('corrupt', `${msg} (a directory where an object file belongs)`, { cause: e });
    case 'ENAMETOOLONG':
      return new ObjStoreError('invalid', msg, { cause: e });
    default: // ENOSPC, EDQUOT, EIO, EMFILE...: the operation did not take effect
      return new ObjStoreError('unavailable', msg, { cause: e });
  }
}
