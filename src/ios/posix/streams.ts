// Named streams of the posix driver (spi.ts "Named streams"; MS-FSCC 2.1.5.3, MS-FSA 2.1.5.1).
//
// Layout, outside the share's visible tree (default <root>/.tessera/streams, or <stateDir>/streams):
//   streams/<fileId>/birth      decimal birth time (ns) of the object the directory belongs to
//   streams/<fileId>/<h>        the stream's data, read and written in place with positional IO
//   streams/<fileId>/<h>.name   the stream's name as created (UTF-16LE, like the wire: lossless for
//                               any JS string, lone surrogates included)
// where <fileId> is the base object's stable id (decimal) and <h> the hex SHA-256 of the folded
// name's UTF-16LE units. Hashing gives every case variant of a name the same file (case-insensitive lookup is one
// open) and keeps host names short whatever the stream name (255 UTF-16 units may be 765 UTF-8 bytes,
// over NAME_MAX). The name file keeps the case the stream was created with.
//
// Birth guard: as in the sidecar, an inode removed behind the server's back and reused by a new object
// has another birth time, so its old stream directory does not match: readers see no streams, and the
// first stream created for the new object wipes the stale directory. Where the host reports no birth
// time (0), the guard degrades to the inode number alone.
//
// Existence of a stream is existence of its data file. Creation writes the name file first (durably),
// then creates the data file with O_EXCL, then fsyncs the directory: a crash leaves at worst an
// orphan name file, which nothing counts or lists and the next create of that name overwrites.
// Create, rename and remove are durable when they resolve (name file fdatasync + directory fsync);
// stream data is durable after the handle's flush(), like file data.
//
// Concurrency: metadata changes of one object's streams are serialised by an in-process lock keyed by
// file id (one server process serves a share's state directory). Open stream handles keep working
// on the data file across rename (same inode) and remove (unlinked inode) like POSIX files.
import { constants as fsConstants } from 'node:fs';
import type { BigIntStats } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { IOS_STREAMS_PER_OBJECT_MAX, IosError, type OpenMode, type StreamEntry } from '../spi.js';
import { errnoOf, toIosError } from './errno.js';
import { checkStreamName, fold } from './paths.js';
import { lstatIfExists, mkdir, open, readdir, readFile, rename, rmTree, unlink, type Fd } from './syscalls.js';

const { O_RDONLY, O_RDWR, O_WRONLY, O_CREAT, O_EXCL, O_TRUNC, O_NOFOLLOW, O_DIRECTORY } = fsConstants;

const birthFileName = 'birth';
const nameSuffix = '.name';
const tmpSuffix = '.tmp';
const dataNamePattern = /^[0-9a-f]{64}$/;

/** Modes that cut an existing stream to zero. */
const truncatingModes: ReadonlySet<OpenMode> = new Set(['truncate', 'truncateOrCreate', 'replace']);

export interface StreamOpen {
  fh: Fd;
  /** Stored name (case as created). */
  name: string;
  action: 'opened' | 'created' | 'truncated' | 'replaced';
}

/** Host file name of a stream's data: equal for names that fold equal. */
export function streamKeyOf(name: string): string {
  return createHash('sha256').update(fold(name), 'utf16le').digest('hex');
}

async function syncDir(abs: string): Promise<void> {
  const fh = await open(abs, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Writes `abs` atomically (temp file, fdatasync, rename). The caller fsyncs the directory. */
async function writeDurable(abs: string, content: string | Buffer): Promise<void> {
  const tmp = abs + tmpSuffix;
  const fh = await open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW, 0o600);
  try {
    const data = typeof content === 'string' ? Buffer.from(content, 'utf8') : content;
    for (let done = 0; done < data.length; ) {
      const n = await fh.write(data, done, data.length - done, done);
      if (n === 0) throw Object.assign(new Error('write made no progress'), { code: 'EIO' });
      done += n;
    }
    await fh.datasync();
  } finally {
    await fh.close();
  }
  await rename(tmp, abs);
}

async function lstatOrUndefined(abs: string): Promise<BigIntStats | undefined> {
  try {
    return await lstatIfExists(abs);
  } catch (err) {
    const errno = errnoOf(err);
    if (errno === 'ENOENT' || errno === 'ENOTDIR') return undefined;
    throw err;
  }
}

export class StreamStore {
  /** Tail of the queue of metadata operations per file id. */
  private readonly locks = new Map<string, Promise<void>>();

  private constructor(
    /** Absolute path of the streams directory. */
    readonly dirAbs: string,
    private readonly readOnly: boolean,
  ) {}

  /** `stateDir` exists unless the share is read-only; the streams directory is made on demand. */
  static async open(stateDir: string, streamsDirName: string, readOnly: boolean): Promise<StreamStore> {
    const dirAbs = join(stateDir, streamsDirName);
    if (!readOnly) {
      try {
        await mkdir(dirAbs, 0o700, true);
      } catch (err) {
        throw toIosError(err, `streams directory ${dirAbs}`);
      }
    }
    return new StreamStore(dirAbs, readOnly);
  }

  /** The object's streams; none when it has no (valid) stream directory. */
  async list(fileId: bigint, birthNs: bigint): Promise<StreamEntry[]> {
    try {
      const dir = await this.validDir(fileId, birthNs);
      if (dir === undefined) return [];
      let names: string[];
      try {
        names = await readdir(dir);
      } catch (err) {
        if (errnoOf(err) === 'ENOENT') return [];
        throw err;
      }
      const found = await Promise.all(
        names.filter((n) => dataNamePattern.test(n)).map(async (key): Promise<StreamEntry | undefined> => {
          const st = await lstatOrUndefined(join(dir, key));
          if (st === undefined || !st.isFile()) return undefined;
          const name = await this.readName(dir, key);
          // A data file without a matching name file was tampered with: it is not a stream.
          if (name === undefined) return undefined;
          return { name, size: Number(st.size), allocationSize: Number(st.blocks) * 512 };
        }),
      );
      return found.filter((e): e is StreamEntry => e !== undefined);
    } catch (err) {
      throw toIosError(err, 'list streams');
    }
  }

  /** Opens (or creates, per `mode`) the stream `name` of the object (fileId, birthNs). */
  async open(fileId: bigint, birthNs: bigint, name: string, mode: OpenMode, write: boolean): Promise<StreamOpen> {
    checkStreamName(name);
    const key = streamKeyOf(name);
    const truncating = truncatingModes.has(mode);
    return this.locked(fileId, async () => {
      let dir = await this.validDir(fileId, birthNs);
      if (dir !== undefined) {
        let fh: Fd | undefined;
        try {
          fh = await open(join(dir, key), (write || truncating ? O_RDWR : O_RDONLY) | O_NOFOLLOW);
        } catch (err) {
          if (errnoOf(err) !== 'ENOENT') throw toIosError(err, `open stream ${name}`);
        }
        if (fh !== undefined) {
          try {
            if (mode === 'create') throw new IosError('EEXIST', `stream exists: ${name}`);
            const stored = (await this.readName(dir, key)) ?? name;
            // MS-FSA 2.1.5.1.2.1: overwrite and supersede of an existing stream cut it to zero.
            if (truncating) await fh.truncate(0);
            return { fh, name: stored, action: mode === 'replace' ? 'replaced' : truncating ? 'truncated' : 'opened' };
          } catch (err) {
            await fh.close().catch(() => undefined);
            throw toIosError(err, `open stream ${name}`);
          }
        }
      }
      if (mode === 'open' || mode === 'truncate') throw new IosError('ENOENT', `no such stream: ${name}`);
      if (this.readOnly) throw new IosError('EROFS', 'share is read-only');
      try {
        dir ??= await this.resetDir(fileId, birthNs);
        if ((await this.count(dir)) >= IOS_STREAMS_PER_OBJECT_MAX) {
          throw new IosError('ENOSPC', `object has ${IOS_STREAMS_PER_OBJECT_MAX} streams`);
        }
        await writeDurable(join(dir, key + nameSuffix), Buffer.from(name, 'utf16le'));
        const fh = await open(join(dir, key), O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600);
        try {
          await syncDir(dir);
        } catch (err) {
          await fh.close().catch(() => undefined);
          throw err;
        }
        return { fh, name, action: 'created' };
      } catch (err) {
        throw toIosError(err, `create stream ${name}`);
      }
    });
  }

  async remove(fileId: bigint, birthNs: bigint, name: string): Promise<void> {
    checkStreamName(name);
    if (this.readOnly) throw new IosError('EROFS', 'share is read-only');
    const key = streamKeyOf(name);
    await this.locked(fileId, async () => {
      const dir = await this.validDir(fileId, birthNs);
      if (dir === undefined) throw new IosError('ENOENT', `no such stream: ${name}`);
      try {
        await unlink(join(dir, key));
      } catch (err) {
        if (errnoOf(err) === 'ENOENT') throw new IosError('ENOENT', `no such stream: ${name}`);
        throw toIosError(err, `remove stream ${name}`);
      }
      try {
        await unlink(join(dir, key + nameSuffix)).catch((err: unknown) => {
          if (errnoOf(err) !== 'ENOENT') throw err;
        });
        await syncDir(dir);
      } catch (err) {
        throw toIosError(err, `remove stream ${name}`);
      }
    });
  }

  async rename(fileId: bigint, birthNs: bigint, from: string, to: string, replace: boolean): Promise<void> {
    checkStreamName(from);
    checkStreamName(to);
    if (this.readOnly) throw new IosError('EROFS', 'share is read-only');
    const fromKey = streamKeyOf(from);
    const toKey = streamKeyOf(to);
    await this.locked(fileId, async () => {
      const dir = await this.validDir(fileId, birthNs);
      const src = dir === undefined ? undefined : await lstatOrUndefined(join(dir, fromKey));
      if (dir === undefined || src === undefined) throw new IosError('ENOENT', `no such stream: ${from}`);
      try {
        if (fromKey === toKey) {
          // The same stream: only the stored case may change.
          if ((await this.readName(dir, fromKey)) === to) return;
          await writeDurable(join(dir, toKey + nameSuffix), Buffer.from(to, 'utf16le'));
          await syncDir(dir);
          return;
        }
        if (!replace && (await lstatOrUndefined(join(dir, toKey))) !== undefined) {
          throw new IosError('EEXIST', `stream exists: ${to}`);
        }
        // Name first (an orphan name file is harmless), then the atomic data rename.
        await writeDurable(join(dir, toKey + nameSuffix), Buffer.from(to, 'utf16le'));
        await rename(join(dir, fromKey), join(dir, toKey));
        await unlink(join(dir, fromKey + nameSuffix)).catch((err: unknown) => {
          if (errnoOf(err) !== 'ENOENT') throw err;
        });
        await syncDir(dir);
      } catch (err) {
        throw toIosError(err, `rename stream ${from} -> ${to}`);
      }
    });
  }

  /**
   * Drops every stream of the object with this id (it was removed or overwritten). Whatever directory
   * the id has is either the object's or stale, so no birth check is needed.
   */
  async removeAll(fileId: bigint): Promise<void> {
    if (this.readOnly) return;
    await this.locked(fileId, async () => {
      const dir = this.objectDir(fileId);
      try {
        if ((await lstatOrUndefined(dir)) === undefined) return;
        await rmTree(dir);
        await syncDir(this.dirAbs);
      } catch (err) {
        throw toIosError(err, 'remove streams');
      }
    });
  }

  // ---- internals ----

  private objectDir(fileId: bigint): string {
    return join(this.dirAbs, fileId.toString(10));
  }

  /** The object's directory when it exists and belongs to this object (birth guard). */
  private async validDir(fileId: bigint, birthNs: bigint): Promise<string | undefined> {
    const dir = this.objectDir(fileId);
    let recorded: string;
    try {
      recorded = (await readFile(join(dir, birthFileName), O_RDONLY | O_NOFOLLOW)).toString('utf8');
    } catch (err) {
      const errno = errnoOf(err);
      if (errno === 'ENOENT' || errno === 'ENOTDIR') return undefined;
      throw toIosError(err, 'read stream directory birth');
    }
    return recorded === birthNs.toString(10) ? dir : undefined;
  }

  /** Replaces whatever directory the id has (stale or none) by an empty one for this object. */
  private async resetDir(fileId: bigint, birthNs: bigint): Promise<string> {
    const dir = this.objectDir(fileId);
    await rmTree(dir);
    await mkdir(this.dirAbs, 0o700, true);
    await mkdir(dir, 0o700);
    await writeDurable(join(dir, birthFileName), birthNs.toString(10));
    await syncDir(dir);
    await syncDir(this.dirAbs);
    return dir;
  }

  private async count(dir: string): Promise<number> {
    let n = 0;
    for (const name of await readdir(dir)) if (dataNamePattern.test(name)) n++;
    return n;
  }

  /** Stored name of the stream with data file `key`, or undefined when missing or not matching. */
  private async readName(dir: string, key: string): Promise<string | undefined> {
    let name: string;
    try {
      const raw = await readFile(join(dir, key + nameSuffix), O_RDONLY | O_NOFOLLOW);
      if (raw.length % 2 !== 0) return undefined;
      name = raw.toString('utf16le');
    } catch (err) {
      if (errnoOf(err) === 'ENOENT') return undefined;
      throw err;
    }
    try {
      checkStreamName(name);
    } catch {
      return undefined;
    }
    return streamKeyOf(name) === key ? name : undefined;
  }

  /** Runs `fn` after every earlier operation on the same file id has settled. */
  private async locked<T>(fileId: bigint, fn: () => Promise<T>): Promise<T> {
    const key = fileId.toString(10);
    const prev = this.locks.get(key) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((resolve) => {
      release = resolve;
    });
    const tail = prev.then(() => mine);
    this.locks.set(key, tail);
    await prev;
    try {
      return await fn();
    } finally {
      release();
      if (this.locks.get(key) === tail) this.locks.delete(key);
    }
  }
}
