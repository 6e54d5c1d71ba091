// Host calls of the posix driver, in one place, with one switch between two ways of making them.
//
// Every node:fs/promises call is a hop through libuv's thread pool and back: a wake-up of a pool
// thread, the syscall, a wake-up of the event loop (~50-100 µs of latency and CPU on a small VM).
// A metadata syscall on a local file system with its inodes and dentries cached takes a few µs, so
// one SMB CREATE or CLOSE (4-6 host calls) spends far more time hopping than working. With
// syncSyscalls the driver calls the *Sync variants on the event-loop thread instead; the functions
// here keep promise signatures either way (a failed sync call becomes a rejected promise with the
// same errno `code`, so errno.ts maps both modes alike) and the driver has one code path.
//
// The trade-off: a sync call holds the event loop for as long as the host takes. On a slow or remote
// file system (NFS, FUSE, a disk that has to seek for an uncached inode) one stalled lstat stalls every
// connection of the server. There, set TESSERA_POSIX_SYNC_IO_BYTES=0: every call then goes to the
// pool. The same variable bounds the size of reads and writes done synchronously (IO above it always
// goes to the pool, so a large transfer never holds the loop). fsync/fdatasync always go to the pool:
// they wait for the device and can take milliseconds.
import type { BigIntStats, Dirent, StatsFs } from 'node:fs';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';

/**
 * Reads and writes up to this many bytes run synchronously; 0 (or anything not a positive number)
 * sends all IO and all metadata calls to the thread pool.
 */
export const SYNC_IO_BYTES_MAX: number = (() => {
  const n = Number(process.env['TESSERA_POSIX_SYNC_IO_BYTES'] ?? 64 * 1024);
  return Number.isFinite(n) && n > 0 ? n : 0;
})();

/** Metadata calls (stat, open, close, unlink, rename, readdir...) run synchronously. */
export const syncSyscalls: boolean = SYNC_IO_BYTES_MAX > 0;

/** Runs `sync` now (its throw becomes a rejection) or `async` on the pool, per syncSyscalls. */
function call<T>(sync: () => T, async: () => Promise<T>): Promise<T> {
  if (!syncSyscalls) return async();
  try {
    return Promise.resolve(sync());
  } catch (err) {
    return Promise.reject(err);
  }
}

function badFd(what: string): Error {
  return Object.assign(new Error(`${what}: descriptor is closed`), { code: 'EBADF' });
}

/**
 * An open file descriptor. Replaces fs/promises' FileHandle so both modes share one code path.
 *
 * Lifetime: the descriptor is closed exactly once, by close() (idempotent: later calls return the
 * first call's promise). Operations that run on the pool (large IO, fsync, pinned path calls) hold
 * the descriptor open: a close() while one is in flight takes effect when the last one settles, so a
 * queued pool call never runs on a number the kernel has since given to another open. An operation
 * started after close() rejects with EBADF.
 */
export class Fd {
  #fd: number;
  /** Pool operations in flight on this descriptor. */
  #pending = 0;
  #closing: Promise<void> | undefined;
  #closeNow: (() => void) | undefined;

  constructor(fd: number) {
    this.#fd = fd;
  }

  /** The descriptor number; -1 once close() was called. */
  get fd(): number {
    return this.#closing === undefined ? this.#fd : -1;
  }

  get closed(): boolean {
    return this.#closing !== undefined;
  }

  /** fstat. */
  stat(): Promise<BigIntStats> {
    if (this.#closing !== undefined) return Promise.reject(badFd('fstat'));
    const fd = this.#fd;
    return call(
      () => fs.fstatSync(fd, { bigint: true }),
      () => this.pinned(() => new Promise((res, rej) => fs.fstat(fd, { bigint: true }, (e, st) => (e ? rej(e) : res(st))))),
    );
  }

  /** pread of up to `length` bytes into buf[at..]; sync up to SYNC_IO_BYTES_MAX. */
  read(buf: Buffer, at: number, length: number, position: number): Promise<number> {
    if (this.#closing !== undefined) return Promise.reject(badFd('read'));
    const fd = this.#fd;
    if (length <= SYNC_IO_BYTES_MAX) {
      try {
        return Promise.resolve(fs.readSync(fd, buf, at, length, position));
      } catch (err) {
        return Promise.reject(err);
      }
    }
    // The callback form: the FileHandle promise API costs measurably more per call.
    return this.pinned(() => new Promise((res, rej) => fs.read(fd, buf, at, length, position, (e, n) => (e ? rej(e) : res(n)))));
  }

  /** pwrite of buf[at..at+length]; sync up to SYNC_IO_BYTES_MAX. */
  write(buf: Buffer, at: number, length: number, position: number): Promise<number> {
    if (this.#closing !== undefined) return Promise.reject(badFd('write'));
    const fd = this.#fd;
    if (length <= SYNC_IO_BYTES_MAX) {
      try {
        return Promise.resolve(fs.writeSync(fd, buf, at, length, position));
      } catch (err) {
        return Promise.reject(err);
      }
    }
    return this.pinned(() => new Promise((res, rej) => fs.write(fd, buf, at, length, position, (e, n) => (e ? rej(e) : res(n)))));
  }

  /** ftruncate. */
  truncate(length: number): Promise<void> {
    if (this.#closing !== undefined) return Promise.reject(badFd('ftruncate'));
    const fd = this.#fd;
    return call(
      () => fs.ftruncateSync(fd, length),
      () => this.pinned(() => new Promise<void>((res, rej) => fs.ftruncate(fd, length, (e) => (e ? rej(e) : res())))),
    );
  }

  /** futimes, times in seconds (fractions allowed). */
  utimes(atime: number, mtime: number): Promise<void> {
    if (this.#closing !== undefined) return Promise.reject(badFd('futimes'));
    const fd = this.#fd;
    return call(
      () => fs.futimesSync(fd, atime, mtime),
      () => this.pinned(() => new Promise<void>((res, rej) => fs.futimes(fd, atime, mtime, (e) => (e ? rej(e) : res())))),
    );
  }

  /** fsync: always on the pool (it waits for the device). */
  sync(): Promise<void> {
    if (this.#closing !== undefined) return Promise.reject(badFd('fsync'));
    const fd = this.#fd;
    return this.pinned(() => new Promise<void>((res, rej) => fs.fsync(fd, (e) => (e ? rej(e) : res()))));
  }

  /** fdatasync: always on the pool (it waits for the device). */
  datasync(): Promise<void> {
    if (this.#closing !== undefined) return Promise.reject(badFd('fdatasync'));
    const fd = this.#fd;
    return this.pinned(() => new Promise<void>((res, rej) => fs.fdatasync(fd, (e) => (e ? rej(e) : res()))));
  }

  /**
   * Runs `fn` with the descriptor held open (for path calls through /proc/self/fd/N that go to the
   * pool). Rejects with EBADF when already closed.
   */
  use<T>(fn: (fd: number) => Promise<T>): Promise<T> {
    if (this.#closing !== undefined) return Promise.reject(badFd('use'));
    const fd = this.#fd;
    return this.pinned(() => fn(fd));
  }

  /** Closes the descriptor once; waits for pool operations in flight. */
  close(): Promise<void> {
    if (this.#closing === undefined) {
      const fd = this.#fd;
      const closeNow = (): Promise<void> =>
        call(
          () => fs.closeSync(fd),
          () => new Promise<void>((res, rej) => fs.close(fd, (e) => (e ? rej(e) : res()))),
        );
      if (this.#pending === 0) {
        this.#closing = closeNow();
      } else {
        this.#closing = new Promise<void>((resolve, reject) => {
          this.#closeNow = () => void closeNow().then(resolve, reject);
        });
      }
    }
    return this.#closing;
  }

  private pinned<T>(start: () => Promise<T>): Promise<T> {
    this.#pending++;
    let p: Promise<T>;
    try {
      p = start();
    } catch (err) {
      p = Promise.reject(err);
    }
    return p.finally(() => {
      if (--this.#pending === 0 && this.#closeNow !== undefined) {
        const closeNow = this.#closeNow;
        this.#closeNow = undefined;
        closeNow();
      }
    });
  }
}

/** open(2); the result owns the descriptor. */
export function open(path: string, flags: number, mode?: number): Promise<Fd> {
  return call(
    () => new Fd(fs.openSync(path, flags, mode)),
    () => new Promise<Fd>((res, rej) => fs.open(path, flags, mode, (e, fd) => (e ? rej(e) : res(new Fd(fd))))),
  );
}

export function lstat(path: string): Promise<BigIntStats> {
  return call(
    () => fs.lstatSync(path, { bigint: true }),
    () => fsp.lstat(path, { bigint: true }),
  );
}

/**
 * lstat, or undefined when the path does not exist (ENOENT). The sync form asks Node not to build an
 * exception for the miss: a lookup of a name about to be created is the common case, not an error.
 */
export function lstatIfExists(path: string): Promise<BigIntStats | undefined> {
  if (syncSyscalls) {
    try {
      return Promise.resolve(fs.lstatSync(path, { bigint: true, throwIfNoEntry: false }));
    } catch (err) {
      return Promise.reject(err);
    }
  }
  return fsp.lstat(path, { bigint: true }).catch((err: unknown) => {
    if ((err as { code?: unknown }).code === 'ENOENT') return undefined;
    throw err;
  });
}

export function stat(path: string): Promise<BigIntStats> {
  return call(
    () => fs.statSync(path, { bigint: true }),
    () => fsp.stat(path, { bigint: true }),
  );
}

export function unlink(path: string): Promise<void> {
  return call(
    () => fs.unlinkSync(path),
    () => fsp.unlink(path),
  );
}

export function rmdir(path: string): Promise<void> {
  return call(
    () => fs.rmdirSync(path),
    () => fsp.rmdir(path),
  );
}

/** rm -r (force: a missing path is no error). */
export function rmTree(path: string): Promise<void> {
  return call(
    () => fs.rmSync(path, { recursive: true, force: true }),
    () => fsp.rm(path, { recursive: true, force: true }),
  );
}

/** mkdir(2) with `mode`; `recursive` makes missing parents and accepts an existing directory. */
export function mkdir(path: string, mode: number, recursive = false): Promise<void> {
  return call(
    () => void fs.mkdirSync(path, { mode, recursive }),
    async () => void (await fsp.mkdir(path, { mode, recursive })),
  );
}

export function rename(from: string, to: string): Promise<void> {
  return call(
    () => fs.renameSync(from, to),
    () => fsp.rename(from, to),
  );
}

/** readdir with file types (names as UTF-8 strings). */
export function readdirTyped(path: string): Promise<Dirent[]> {
  return call(
    () => fs.readdirSync(path, { withFileTypes: true }),
    () => fsp.readdir(path, { withFileTypes: true }),
  );
}

/** readdir, names only. */
export function readdir(path: string): Promise<string[]> {
  return call(
    () => fs.readdirSync(path),
    () => fsp.readdir(path),
  );
}

/**
 * Whole content of a small file; `flags` as in open(2) (e.g. O_RDONLY | O_NOFOLLOW). Reads until end
 * of file, so a file that grows meanwhile is read to where it ends then.
 */
export async function readFile(path: string, flags: number): Promise<Buffer> {
  const fd = await open(path, flags);
  try {
    const size = Number((await fd.stat()).size);
    let buf = Buffer.allocUnsafe(Math.max(size, 64));
    let done = 0;
    for (;;) {
      if (done === buf.length) {
        const grown = Buffer.allocUnsafe(buf.length * 2);
        buf.copy(grown, 0, 0, done);
        buf = grown;
      }
      const n = await fd.read(buf, done, buf.length - done, done);
      if (n === 0) break;
      done += n;
    }
    return buf.subarray(0, done);
  } finally {
    await fd.close();
  }
}

export function statfs(path: string): Promise<StatsFs> {
  return call(
    () => fs.statfsSync(path),
    () => fsp.statfs(path),
  );
}
