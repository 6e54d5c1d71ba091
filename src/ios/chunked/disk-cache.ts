// The disk tier of the chunked driver's read cache (cache.ts; issue 5: "a bounded local cache (disk and
// memory, limits configurable)").
//
// Objects are immutable and their keys never reused, so a block of (object key, block size, block
// index) never changes: a file holding it is valid forever, or is damaged. Hence:
// - One file per block, named by SHA-256 of (block size, object key, block index), under a two-hex-digit
//   subdirectory: DIR/ab/abcdef...(62 more hex digits).
// - The file carries a header (magic, format version, block size, block index, length, the object key)
//   and a SHA-256 over the header and the data. A read checks all of it: a file that does not match
//   (torn, bit rot, another format, a hash collision) is a miss and is deleted. Wrong bytes are never
//   served.
// - Writes go to a unique temp file, then rename (a reader sees the whole file or none; no fsync: a
//   file lost or torn by a crash is only a miss). They run in the background, a bounded number at a
//   time, from a queue bounded in bytes; when the queue is full a write is skipped, never waited for.
//   A read never waits for a write.
// - Bounded in bytes (file sizes, headers included) with LRU order in memory. At start the directory
//   is indexed (oldest modification first; a hit does not touch the file, so the order after a
//   restart is write order), leftover temp files are deleted, and the bound is applied. Files that are
//   not block files are left alone.
// - Two processes should not share one directory: each would bound only what it knows (reads stay
//   correct: files are checked, temp names are unique).
import { createHash } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { open, readdir, readFile, rename, stat, unlink, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { limits } from '../../base/limits.js';
import { IosError } from '../spi.js';

const MAGIC = 0x54534443; // 'TSDC'
const FORMAT = 1;
/** magic u32, format u32, blockBytes u32, length u32, block index u64, key length u16, key. */
const FIXED = 4 + 4 + 4 + 4 + 8 + 2;
const SUM = 32;
const NAME = /^[0-9a-f]{64}$/;
const SUBDIR = /^[0-9a-f]{2}$/;

export interface DiskCacheOptions {
  /** The cache directory (made if missing). */
  dir: string;
  /** Bytes of block files kept (> 0). */
  bytesMax: number;
  /** The block size of the memory tier; part of every block's identity. */
  blockBytes: number;
  /** Bytes of writes queued (default limits.chunkedDiskCacheWriteQueueBytesMax). */
  writeQueueBytesMax?: number;
  /** Writes in flight (default limits.chunkedDiskCacheWritesInFlightMax). */
  writesInFlightMax?: number;
}

export interface DiskCacheStats {
  /** Blocks found (and verified) on disk; blocks not found. */
  hits: number;
  misses: number;
  /** Files that failed verification (deleted, counted as misses too). */
  corrupt: number;
  /** Block files written; writes skipped because the queue was full; writes that failed. */
  writes: number;
  writesSkipped: number;
  writeFailures: number;
  /** Files deleted to stay within the bound. */
  evictions: number;
  /** Files found by the start-up scan; temp files it deleted. */
  scanned: number;
  scanTempsDeleted: number;
}

interface PendingWrite {
  name: string;
  object: string;
  block: number;
  data: Buffer;
}

export class DiskCache {
  readonly dir: string;
  readonly bytesMax: number;
  readonly blockBytes: number;
  private readonly queueBytesMax: number;
  private readonly writersMax: number;
  /** name -> file bytes, in LRU order (a hit re-inserts at the end). */
  private readonly index = new Map<string, number>();
  private held = 0;
  private readonly queue: PendingWrite[] = [];
  /** Names queued or being written (a second put of one is dropped). */
  private readonly writing = new Set<string>();
  private queuedBytes = 0;
  private writers = 0;
  private tempSeq = 0;
  private closed = false;
  private readonly madeDirs = new Set<string>();
  private idleWaiters: (() => void)[] = [];
  /** The start-up scan; reads wait for it (the index and the bound are complete after it). */
  readonly ready: Promise<void>;
  readonly stats: DiskCacheStats = { hits: 0, misses: 0, corrupt: 0, writes: 0, writesSkipped: 0, writeFailures: 0, evictions: 0, scanned: 0, scanTempsDeleted: 0 };

  constructor(opts: DiskCacheOptions) {
    const int = (name: string, v: number, min: number): void => {
      if (!Number.isSafeInteger(v) || v < min) throw new IosError('EINVAL', `disk cache option ${name} = ${v}`);
    };
    this.dir = opts.dir;
    this.bytesMax = opts.bytesMax;
    this.blockBytes = opts.blockBytes;
    this.queueBytesMax = opts.writeQueueBytesMax ?? limits.chunkedDiskCacheWriteQueueBytesMax;
    this.writersMax = opts.writesInFlightMax ?? limits.chunkedDiskCacheWritesInFlightMax;
    int('bytesMax', this.bytesMax, 1);
    int('blockBytes', this.blockBytes, 1);
    int('writeQueueBytesMax', this.queueBytesMax, 0);
    int('writesInFlightMax', this.writersMax, 1);
    try {
      mkdirSync(this.dir, { recursive: true });
    } catch (err) {
      throw new IosError('EIO', `disk cache: cannot make ${this.dir}: ${(err as Error).message}`);
    }
    this.ready = this.scan();
  }

  /** Bytes of block files indexed. */
  get bytes(): number {
    return this.held;
  }

  /** Block files indexed. */
  get size(): number {
    return this.index.size;
  }

  /** The file of a block (for tests and tools). */
  pathOf(object: string, block: number): string {
    return this.fileOf(this.nameOf(object, block));
  }

  /** The verified block, or undefined (not cached, damaged, unreadable). Never rejects. */
  async get(object: string, block: number): Promise<Buffer | undefined> {
    await this.ready;
    const name = this.nameOf(object, block);
    const size = this.index.get(name);
    if (size === undefined) {
      this.stats.misses++;
      return undefined;
    }
    let file: Buffer;
    try {
      file = await readFile(this.fileOf(name));
    } catch {
      // Gone (evicted and a read raced it, or removed by hand): a miss.
      this.drop(name, false);
      this.stats.misses++;
      return undefined;
    }
    const data = this.verify(file, object, block);
    if (data === undefined) {
      this.stats.corrupt++;
      this.stats.misses++;
      this.drop(name, true);
      return undefined;
    }
    if (this.index.get(name) !== undefined) {
      this.index.delete(name);
      this.index.set(name, size);
    }
    this.stats.hits++;
    return data;
  }

  /**
   * Queues a block to be written (returns at once). `data` must not change afterwards (the memory
   * tier's blocks never do). Skipped if the block is on disk or queued, or the queue is full.
   */
  put(object: string, block: number, data: Buffer): void {
    if (this.closed || data.length === 0) return;
    const name = this.nameOf(object, block);
    if (this.index.has(name) || this.writing.has(name)) return;
    if (data.length + FIXED + SUM + object.length > this.bytesMax) return;
    if (this.queuedBytes + data.length > this.queueBytesMax) {
      this.stats.writesSkipped++;
      return;
    }
    this.writing.add(name);
    this.queuedBytes += data.length;
    this.queue.push({ name, object, block, data });
    this.pump();
  }

  /** Resolves once no write is queued or in flight (and the start-up scan is done). */
  async idle(): Promise<void> {
    await this.ready;
    if (this.queue.length === 0 && this.writers === 0) return;
    await new Promise<void>((res) => this.idleWaiters.push(res));
  }

  /** Stops taking writes; waits for the ones queued. */
  async close(): Promise<void> {
    this.closed = true;
    await this.idle();
  }

  // ---- internals ----

  private nameOf(object: string, block: number): string {
    return createHash('sha256').update(`${this.blockBytes}\u0000${object}\u0000${block}`).digest('hex');
  }

  private fileOf(name: string): string {
    return join(this.dir, name.slice(0, 2), name.slice(2));
  }

  private header(object: string, block: number, length: number): Buffer {
    const key = Buffer.from(object, 'utf8');
    const h = Buffer.alloc(FIXED + key.length);
    h.writeUInt32BE(MAGIC, 0);
    h.writeUInt32BE(FORMAT, 4);
    h.writeUInt32BE(this.blockBytes, 8);
    h.writeUInt32BE(length, 12);
    h.writeBigUInt64BE(BigInt(block), 16);
    h.writeUInt16BE(key.length, 24);
    key.copy(h, FIXED);
    return h;
  }

  /** The data of a block file if everything in it matches what was asked for. */
  private verify(file: Buffer, object: string, block: number): Buffer | undefined {
    if (file.length < FIXED + SUM) return undefined;
    if (file.readUInt32BE(0) !== MAGIC || file.readUInt32BE(4) !== FORMAT || file.readUInt32BE(8) !== this.blockBytes) return undefined;
    const length = file.readUInt32BE(12);
    const keyLen = file.readUInt16BE(24);
    const dataAt = FIXED + keyLen + SUM;
    if (file.readBigUInt64BE(16) !== BigInt(block) || length > this.blockBytes || file.length !== dataAt + length) return undefined;
    if (!file.subarray(FIXED, FIXED + keyLen).equals(Buffer.from(object, 'utf8'))) return undefined;
    const sum = createHash('sha256').update(file.subarray(0, FIXED + keyLen)).update(file.subarray(dataAt)).digest();
    if (!sum.equals(file.subarray(FIXED + keyLen, dataAt))) return undefined;
    // A copy of its own: the file buffer holds the header too (the memory tier keeps what we return).
    return Buffer.from(file.subarray(dataAt));
  }

  /** Forgets a file (and deletes it if `unlinkFile`). */
  private drop(name: string, unlinkFile: boolean): void {
    const size = this.index.get(name);
    if (size !== undefined) {
      this.index.delete(name);
      this.held -= size;
    }
    if (unlinkFile) void unlink(this.fileOf(name)).catch(() => undefined);
  }

  private add(name: string, size: number): void {
    const old = this.index.get(name);
    if (old !== undefined) {
      this.index.delete(name);
      this.held -= old;
    }
    this.index.set(name, size);
    this.held += size;
    this.evict();
  }

  private evict(): void {
    while (this.held > this.bytesMax) {
      const oldest = this.index.keys().next();
      if (oldest.done === true) break;
      this.drop(oldest.value, true);
      this.stats.evictions++;
    }
  }

  private pump(): void {
    while (this.writers < this.writersMax && this.queue.length > 0) {
      const w = this.queue.shift()!;
      this.writers++;
      void this.write(w).finally(() => {
        this.writers--;
        this.queuedBytes -= w.data.length;
        this.writing.delete(w.name);
        this.pump();
        if (this.queue.length === 0 && this.writers === 0) for (const r of this.idleWaiters.splice(0)) r();
      });
    }
  }

  private async write(w: PendingWrite): Promise<void> {
    // Written only once the scan is done, so that the index it builds can not undo our accounting.
    await this.ready;
    const h = this.header(w.object, w.block, w.data.length);
    const sum = createHash('sha256').update(h).update(w.data).digest();
    const sub = join(this.dir, w.name.slice(0, 2));
    const target = join(sub, w.name.slice(2));
    const temp = `${target}.${process.pid}.${++this.tempSeq}.tmp`;
    try {
      if (!this.madeDirs.has(sub)) {
        await mkdir(sub, { recursive: true });
        this.madeDirs.add(sub);
      }
      const fh = await open(temp, 'w', 0o600);
      try {
        await fh.writev([h, sum, w.data]);
      } finally {
        await fh.close();
      }
      await rename(temp, target);
    } catch {
      this.stats.writeFailures++;
      void unlink(temp).catch(() => undefined);
      return;
    }
    this.stats.writes++;
    this.add(w.name, h.length + SUM + w.data.length);
  }

  /** Indexes the block files left by an earlier run (oldest first), deletes temp files, applies the bound. */
  private async scan(): Promise<void> {
    const found: { name: string; size: number; mtime: number }[] = [];
    let subs: string[];
    try {
      subs = (await readdir(this.dir)).filter((s) => SUBDIR.test(s)).sort();
    } catch {
      return; // unreadable: start empty (writes will fail and be counted)
    }
    for (const sub of subs) {
      let files: string[];
      try {
        files = await readdir(join(this.dir, sub));
      } catch {
        continue;
      }
      this.madeDirs.add(join(this.dir, sub));
      const jobs: (() => Promise<void>)[] = [];
      for (const f of files.sort()) {
        const path = join(this.dir, sub, f);
        if (f.endsWith('.tmp')) {
          jobs.push(async () => {
            await unlink(path).then(
              () => void this.stats.scanTempsDeleted++,
              () => undefined,
            );
          });
        } else if (NAME.test(sub + f)) {
          jobs.push(async () => {
            try {
              const st = await stat(path);
              if (st.isFile()) found.push({ name: sub + f, size: st.size, mtime: st.mtimeMs });
            } catch {
              /* gone meanwhile */
            }
          });
        }
      }
      let next = 0;
      const worker = async (): Promise<void> => {
        while (next < jobs.length) await jobs[next++]!();
      };
      await Promise.all(Array.from({ length: Math.min(limits.chunkedDiskCacheScanStatsInFlightMax, jobs.length) }, worker));
    }
    found.sort((a, b) => a.mtime - b.mtime || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const f of found) {
      this.index.set(f.name, f.size);
      this.held += f.size;
    }
    this.stats.scanned = found.length;
    this.evict();
  }
}
