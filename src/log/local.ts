// The local replicated log (backend 'local'): the embedded default of ARCHITECTURE.md ("Embedded
// default: a local log. Single-node mode appends commands to an LMDB-backed log on the same node").
// It implements the contract of ./spi.ts on one node, in one process.
//
// Layout: one LMDB environment in `dir` with two named databases.
// - 'batches': key = position (1, 2, 3 ..., contiguous; a JS number, lmdb's ordered-binary key
//   encoding keeps numeric order), value = one batch record (framing below).
// - 'meta': key 'state' = the compaction record (compactedThrough).
//
// Durability. The environment is opened with overlappingSync: false. lmdb-js (3.5.6) then begins
// every write transaction without MDB_NOSYNC (src/writer.cpp: `(jsFlags & MDB_OVERLAPPINGSYNC) ?
// MDB_NOSYNC : 0`), so mdb_txn_commit() fdatasyncs the data file before it returns, and the promise
// of db.transaction() resolves only after that (write.js resolveCommit runs once the writer thread
// has set TXN_COMMITTED, which it sets after mdb_txn_commit returned). With lmdb-js's default
// (overlappingSync: true on Linux) the promise would resolve at commit, before the flush.
// Checked with strace: one fdatasync per write transaction.
//
// Group commit. append() only queues. One write loop takes everything queued, packs it into batches
// (each at most limits.logBatchBytesMax; one append is never split), writes them in one LMDB write
// transaction (one fsync), then publishes them to subscribers and resolves the appends. Appends made
// while that transaction is in flight form the next group.
//
// One process per directory: positions are assigned in memory. A second LocalLog on the same
// directory in this process is refused; another process writing the same directory is detected
// (the next position already exists) and turns this log into a failed state.

import { mkdir, realpath } from 'node:fs/promises';
import { setImmediate as nextTurn } from 'node:timers/promises';
import * as zlib from 'node:zlib';
import { open as openLmdb, type Database, type RootDatabase } from 'lmdb';
import { limits } from '../base/limits.js';
import { LogError, type LogBatch, type LogSubscription, type ReplicatedLog } from './spi.js';

/** Names inside the LMDB environment (exported for tests and offline tools). */
export const LOCAL_LOG_DBS = { batches: 'batches', meta: 'meta', stateKey: 'state' } as const;

export interface LocalLogOptions {
  /** Directory of the LMDB environment (created if missing). */
  dir: string;
  /** Overrides limits.logQueuedBytesMax (tests use a small value). */
  queuedBytesMax?: number;
  /** Overrides limits.logSubscriberBufferedBatchesMax. */
  subscriberBufferedBatchesMax?: number;
  /** Overrides limits.logSubscriberBufferedBytesMax. */
  subscriberBufferedBytesMax?: number;
}

// ---------------------------------------------------------------------------------------------
// Batch record framing (little-endian):
//   0  u32 magic 'TLB1'
//   4  u32 position, high 21 bits     8  u32 position, low 32 bits
//  12  u32 entry count (>= 1)
//  16  u32 length of each entry (count of them)
//   .. entry bytes, concatenated
//   .. u32 CRC-32 of everything before it
// The position is inside the record so a value stored under the wrong key is caught.

const BATCH_MAGIC = 0x3142_4c54; // bytes 'T' 'L' 'B' '1'
const META_MAGIC = 0x314d_4c54; // bytes 'T' 'L' 'M' '1'
const HEADER_BYTES = 16;
const TRAILER_BYTES = 4;
const META_BYTES = 16;
const TWO_POW_32 = 2 ** 32;
/** Memory charged per queued entry beyond its bytes (the Uint8Array object, the array slot). */
const ENTRY_ACCOUNTING_BYTES = 64;
/** A subscriber catching up yields to the event loop after running this long. */
const SUBSCRIBER_SLICE_MS = 4;

/** Stored size of a batch record holding `count` entries with `payload` bytes in total. */
export function batchRecordBytes(count: number, payload: number): number {
  return HEADER_BYTES + 4 * count + payload + TRAILER_BYTES;
}

let crcTable: Uint32Array | undefined;
function crc32(data: Uint8Array): number {
  // zlib.crc32 exists from Node 20.15; the engines field allows 20.12, so keep a table fallback.
  if (typeof zlib.crc32 === 'function') return zlib.crc32(data) >>> 0;
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb8_8320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let c = 0xffff_ffff;
  for (let i = 0; i < data.length; i++) c = crcTable[(c ^ data[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffff_ffff) >>> 0;
}

function writePosition(view: DataView, at: number, position: number): void {
  view.setUint32(at, Math.floor(position / TWO_POW_32), true);
  view.setUint32(at + 4, position >>> 0, true);
}

function readPosition(view: DataView, at: number): number {
  return view.getUint32(at, true) * TWO_POW_32 + view.getUint32(at + 4, true);
}

interface Encoded {
  readonly frame: Buffer;
  readonly entries: Uint8Array[];
}

function encodeBatch(position: number, members: readonly Pending[], count: number, payload: number): Encoded {
  const frame = Buffer.allocUnsafe(batchRecordBytes(count, payload));
  const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  view.setUint32(0, BATCH_MAGIC, true);
  writePosition(view, 4, position);
  view.setUint32(12, count, true);
  let lenAt = HEADER_BYTES;
  let dataAt = HEADER_BYTES + 4 * count;
  const entries: Uint8Array[] = [];
  for (const m of members) {
    for (const e of m.entries) {
      view.setUint32(lenAt, e.byteLength, true);
      lenAt += 4;
      frame.set(e, dataAt);
      entries.push(frame.subarray(dataAt, dataAt + e.byteLength));
      dataAt += e.byteLength;
    }
  }
  view.setUint32(dataAt, crc32(frame.subarray(0, dataAt)), true);
  return { frame, entries };
}

/** Validates a stored batch record and returns its entries (views into `buf`). */
export function decodeBatchRecord(expectedPosition: number, buf: Uint8Array): Uint8Array[] {
  const bad = (why: string): LogError =>
    new LogError('corrupt', `local log: batch record at position ${expectedPosition} is invalid (${why})`);
  if (buf.byteLength < HEADER_BYTES + 4 + TRAILER_BYTES) throw bad(`${buf.byteLength} bytes is too short`);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  if (view.getUint32(0, true) !== BATCH_MAGIC) throw bad('unknown format');
  const position = readPosition(view, 4);
  if (position !== expectedPosition) throw bad(`record says position ${position}`);
  const count = view.getUint32(12, true);
  if (count === 0) throw bad('no entries');
  const dataStart = HEADER_BYTES + 4 * count;
  if (dataStart + TRAILER_BYTES > buf.byteLength) throw bad(`count ${count} does not fit`);
  const crcAt = buf.byteLength - TRAILER_BYTES;
  if (view.getUint32(crcAt, true) !== crc32(buf.subarray(0, crcAt))) throw bad('checksum mismatch');
  const entries: Uint8Array[] = new Array(count);
  let at = dataStart;
  for (let i = 0; i < count; i++) {
    const len = view.getUint32(HEADER_BYTES + 4 * i, true);
    if (len > crcAt - at) throw bad(`entry ${i} overruns the record`);
    entries[i] = buf.subarray(at, at + len);
    at += len;
  }
  if (at !== crcAt) throw bad(`${crcAt - at} trailing bytes`);
  return entries;
}

function encodeMeta(compactedThrough: number): Buffer {
  const buf = Buffer.alloc(META_BYTES);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  view.setUint32(0, META_MAGIC, true);
  writePosition(view, 4, compactedThrough);
  view.setUint32(12, crc32(buf.subarray(0, 12)), true);
  return buf;
}

function decodeMeta(buf: Uint8Array): number {
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  if (
    buf.byteLength !== META_BYTES ||
    view.getUint32(0, true) !== META_MAGIC ||
    view.getUint32(12, true) !== crc32(buf.subarray(0, 12))
  ) {
    throw new LogError('corrupt', 'local log: the compaction record is invalid');
  }
  const through = readPosition(view, 4);
  if (!Number.isSafeInteger(through)) throw new LogError('corrupt', 'local log: compaction position out of range');
  return through;
}

function isPosition(n: unknown): n is number {
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;
}

// ---------------------------------------------------------------------------------------------

export interface LocalLogStats {
  /** Write transactions (one fsync each) that committed appends. */
  groups: number;
  /** Batches committed (a group holds one or more). */
  batches: number;
  /** Entries committed. */
  entries: number;
  /** Times a live subscriber's buffer overflowed and it went back to reading stored batches. */
  subscriberOverflows: number;
  /** Batches subscribers read back from LMDB (catching up) instead of receiving them in memory. */
  subscriberStoredReads: number;
}

interface Pending {
  readonly entries: readonly Uint8Array[];
  readonly count: number;
  readonly payload: number;
  readonly cost: number;
  readonly resolve: (position: number) => void;
  readonly reject: (err: unknown) => void;
}

/** Directories (real paths) with an open LocalLog in this process. */
const openDirs = new Set<string>();

export class LocalLog implements ReplicatedLog {
  readonly backend = 'local';

  private readonly env: RootDatabase;
  private readonly batches: Database<Buffer, number>;
  private readonly meta: Database<Buffer, string>;
  private readonly realDir: string;
  private readonly queuedBytesMax: number;
  /** @internal read by LocalSubscription */
  readonly subBatchesMax: number;
  /** @internal read by LocalSubscription */
  readonly subBytesMax: number;

  private nextPosition: number;
  /** @internal Position of the last durable batch (0 if none). */
  committed: number;
  /** @internal */
  compacted: number;

  private queue: Pending[] = [];
  private queuedBytes = 0;
  private scheduled = false;
  private writing: Promise<void> | undefined;
  /** Set when a write failed in a way that leaves this instance unsure of the stored state. */
  private failure: LogError | undefined;
  /** @internal */
  closed = false;
  private closing: Promise<void> | undefined;
  private compactChain: Promise<void> = Promise.resolve();
  private readonly subs = new Set<LocalSubscription>();

  /** Counters for metrics and tests (monotonic since open). */
  readonly stats: LocalLogStats = { groups: 0, batches: 0, entries: 0, subscriberOverflows: 0, subscriberStoredReads: 0 };

  private constructor(
    env: RootDatabase,
    batches: Database<Buffer, number>,
    meta: Database<Buffer, string>,
    realDir: string,
    last: number,
    compacted: number,
    opts: LocalLogOptions,
  ) {
    this.env = env;
    this.batches = batches;
    this.meta = meta;
    this.realDir = realDir;
    this.queuedBytesMax = opts.queuedBytesMax ?? limits.logQueuedBytesMax;
    this.subBatchesMax = opts.subscriberBufferedBatchesMax ?? limits.logSubscriberBufferedBatchesMax;
    this.subBytesMax = opts.subscriberBufferedBytesMax ?? limits.logSubscriberBufferedBytesMax;
    // Positions continue after the highest stored one; if everything was compacted away, after the
    // compaction point (compact() never goes beyond the last committed batch).
    this.committed = Math.max(last, compacted);
    this.nextPosition = this.committed + 1;
    this.compacted = compacted;
  }

  /** Opens (creating if needed) the log in `opts.dir`. Rejects with LogError 'corrupt' or 'unavailable'. */
  static async open(opts: LocalLogOptions): Promise<LocalLog> {
    if (typeof opts?.dir !== 'string' || opts.dir === '') throw new TypeError('LocalLog.open: dir is required');
    for (const k of ['queuedBytesMax', 'subscriberBufferedBatchesMax', 'subscriberBufferedBytesMax'] as const) {
      const v = opts[k];
      if (v !== undefined && !(Number.isSafeInteger(v) && v > 0)) throw new RangeError(`LocalLog.open: ${k} must be a positive integer`);
    }
    await mkdir(opts.dir, { recursive: true });
    const realDir = await realpath(opts.dir);
    if (openDirs.has(realDir)) {
      throw new LogError('unavailable', `local log: ${realDir} is already open in this process`);
    }
    openDirs.add(realDir);
    let env: RootDatabase | undefined;
    try {
      env = openLmdb({ path: realDir, overlappingSync: false, maxDbs: 4, encoding: 'binary' });
      const batches = env.openDB<Buffer, number>({ name: LOCAL_LOG_DBS.batches, encoding: 'binary' });
      const meta = env.openDB<Buffer, string>({ name: LOCAL_LOG_DBS.meta, encoding: 'binary' });
      const metaBuf = meta.getBinary(LOCAL_LOG_DBS.stateKey);
      const compacted = metaBuf ? decodeMeta(metaBuf) : 0;
      let first: unknown;
      for (const k of batches.getKeys({ limit: 1 })) first = k;
      let last: unknown = 0;
      for (const k of batches.getKeys({ reverse: true, limit: 1 })) last = k;
      if (first !== undefined && !(isPosition(first) && first > 0)) {
        throw new LogError('corrupt', `local log: unexpected key ${String(first)}`);
      }
      if (!(isPosition(last) && (last > 0 || first === undefined))) {
        throw new LogError('corrupt', `local log: unexpected key ${String(last)}`);
      }
      if (last > 0) {
        const buf = batches.getBinary(last);
        if (!buf) throw new LogError('corrupt', `local log: batch ${last} vanished`);
        decodeBatchRecord(last, buf);
      }
      const log = new LocalLog(env, batches, meta, realDir, last, compacted, opts);
      // A compaction interrupted by a crash left batches at or below the recorded point: finish it.
      if (first !== undefined && (first as number) <= compacted) {
        log.compactChain = log.deleteThrough(compacted).catch(() => undefined);
      }
      return log;
    } catch (err) {
      openDirs.delete(realDir);
      if (env) await env.close().catch(() => undefined);
      if (err instanceof LogError) throw err;
      throw new LogError('unavailable', `local log: cannot open ${realDir}: ${(err as Error)?.message}`, { cause: err });
    }
  }

  append(entries: readonly Uint8Array[]): Promise<number> {
    if (this.closed) return Promise.reject(new LogError('closed', 'local log is closed'));
    if (this.failure) return Promise.reject(this.failure);
    if (!Array.isArray(entries) || entries.length === 0) {
      return Promise.reject(new TypeError('append: entries must be a non-empty array of Uint8Array'));
    }
    let payload = 0;
    for (const e of entries) {
      if (!(e instanceof Uint8Array)) return Promise.reject(new TypeError('append: every entry must be a Uint8Array'));
      payload += e.byteLength;
    }
    const bytes = batchRecordBytes(entries.length, payload);
    if (bytes > limits.logBatchBytesMax) {
      return Promise.reject(
        new LogError('too-large', `append: batch of ${bytes} bytes exceeds logBatchBytesMax (${limits.logBatchBytesMax})`),
      );
    }
    const cost = bytes + entries.length * ENTRY_ACCOUNTING_BYTES;
    if (this.queuedBytes > 0 && this.queuedBytes + cost > this.queuedBytesMax) {
      return Promise.reject(
        new LogError('unavailable', `append: ${this.queuedBytes} bytes already queued (logQueuedBytesMax ${this.queuedBytesMax}); not committed`),
      );
    }
    return new Promise<number>((resolve, reject) => {
      this.queue.push({ entries, count: entries.length, payload, cost, resolve, reject });
      this.queuedBytes += cost;
      this.schedule();
    });
  }

  subscribe(
    after: number,
    onBatch: (batch: LogBatch) => void | Promise<void>,
    onError: (err: LogError) => void,
  ): LogSubscription {
    if (!isPosition(after)) throw new RangeError(`subscribe: after must be a safe integer >= 0, got ${String(after)}`);
    if (typeof onBatch !== 'function' || typeof onError !== 'function') throw new TypeError('subscribe: callbacks required');
    const sub = new LocalSubscription(this, after, onBatch, onError);
    if (this.closed) sub.fail(new LogError('closed', 'local log is closed'));
    else if (after < this.compacted) {
      sub.fail(new LogError('compacted', `subscribe: history through ${this.compacted} was compacted (asked after ${after})`));
    } else {
      this.subs.add(sub);
      sub.start();
    }
    return sub;
  }

  readIndex(): Promise<number> {
    if (this.closed) return Promise.reject(new LogError('closed', 'local log is closed'));
    // Every resolved append was published (committed updated) before it resolved.
    return Promise.resolve(this.committed);
  }

  compactedThrough(): Promise<number> {
    if (this.closed) return Promise.reject(new LogError('closed', 'local log is closed'));
    return Promise.resolve(this.compacted);
  }

  /**
   * Records the compaction point durably, then deletes batches at or below it in chunks of
   * limits.logCompactChunkBatches (one short write transaction each, yielding in between).
   * `through` beyond the last committed batch is clamped to it (future batches are never discarded).
   */
  compact(through: number): Promise<void> {
    if (!isPosition(through)) return Promise.reject(new RangeError(`compact: through must be a safe integer >= 0`));
    if (this.closed) return Promise.reject(new LogError('closed', 'local log is closed'));
    const run = this.compactChain.then(() => this.doCompact(through));
    this.compactChain = run.catch(() => undefined);
    return run;
  }

  close(): Promise<void> {
    this.closing ??= this.doClose();
    return this.closing;
  }

  // --- internals ------------------------------------------------------------------------------

  /** @internal Reads one stored batch for a catching-up subscriber (throws LogError). */
  readStored(position: number): LogBatch | undefined {
    this.stats.subscriberStoredReads++;
    const buf = this.batches.getBinary(position);
    if (!buf) return undefined;
    return { position, entries: decodeBatchRecord(position, buf) };
  }

  /** @internal */
  dropSubscription(sub: LocalSubscription): void {
    this.subs.delete(sub);
  }

  private schedule(): void {
    if (this.scheduled || this.writing) return;
    this.scheduled = true;
    // Start on the next turn so appends made in this turn (e.g. by many callers woken together)
    // join the first group.
    setImmediate(() => {
      this.scheduled = false;
      if (!this.writing) this.writing = this.writeLoop();
    });
  }

  private async writeLoop(): Promise<void> {
    try {
      while (this.queue.length > 0 && !this.closed && !this.failure) {
        const group = this.queue;
        this.queue = [];
        await this.commitGroup(group);
      }
      if (this.failure) this.rejectQueued(this.failure);
    } finally {
      this.writing = undefined;
    }
  }

  private async commitGroup(group: Pending[]): Promise<void> {
    // Pack appends into batches of at most logBatchBytesMax; an append is never split.
    const out: { position: number; members: Pending[]; count: number; payload: number }[] = [];
    let position = this.nextPosition;
    let cur = { position, members: [] as Pending[], count: 0, payload: 0 };
    for (const p of group) {
      if (cur.members.length > 0 && batchRecordBytes(cur.count + p.count, cur.payload + p.payload) > limits.logBatchBytesMax) {
        out.push(cur);
        position++;
        cur = { position, members: [], count: 0, payload: 0 };
      }
      cur.members.push(p);
      cur.count += p.count;
      cur.payload += p.payload;
    }
    out.push(cur);
    const encoded = out.map((b) => encodeBatch(b.position, b.members, b.count, b.payload));
    const first = out[0]!.position;
    let cost = 0;
    for (const p of group) cost += p.cost;

    let guardFailed = false;
    try {
      await this.batches.transaction(() => {
        // Nothing may have been written at our next position: if it was, another process writes to
        // this directory. Checked before any put, so the (empty) transaction commits nothing.
        if (this.batches.doesExist(first)) {
          guardFailed = true;
          throw new Error(`position ${first} already exists`);
        }
        for (let i = 0; i < out.length; i++) this.batches.putSync(out[i]!.position, encoded[i]!.frame);
      });
    } catch (err) {
      this.queuedBytes -= cost;
      const why = (err as Error)?.message ?? String(err);
      if (guardFailed) {
        this.failure = new LogError('unavailable', `local log: another writer uses ${this.realDir} (${why}); reopen the log`);
        for (const p of group) p.reject(this.failure);
      } else {
        // The commit itself failed (disk full, I/O error): it may or may not be on disk.
        this.failure = new LogError('unavailable', `local log: a write failed (${why}); reopen the log`, { cause: err });
        const ambiguous = new LogError('ambiguous', `local log: write failed, outcome unknown (${why})`, { cause: err });
        for (const p of group) p.reject(ambiguous);
      }
      return;
    }

    // Durable: publish in order, then answer the callers.
    this.nextPosition = out[out.length - 1]!.position + 1;
    this.stats.groups++;
    this.stats.batches += out.length;
    for (let i = 0; i < out.length; i++) {
      const b = out[i]!;
      const e = encoded[i]!;
      this.committed = b.position;
      this.stats.entries += b.count;
      const batch: LogBatch = Object.freeze({ position: b.position, entries: Object.freeze(e.entries) });
      for (const sub of this.subs) sub.push(batch, e.frame.byteLength);
    }
    this.queuedBytes -= cost;
    for (const b of out) for (const p of b.members) p.resolve(b.position);
  }

  private rejectQueued(err: LogError): void {
    const queued = this.queue;
    this.queue = [];
    for (const p of queued) {
      this.queuedBytes -= p.cost;
      p.reject(err);
    }
  }

  private async doCompact(through: number): Promise<void> {
    if (this.closed) throw new LogError('closed', 'local log is closed');
    const target = Math.min(through, this.committed);
    if (target > this.compacted) {
      try {
        // Durable before any batch goes: a crash in between leaves extra batches, never a gap
        // that is not recorded as compacted. (overlappingSync is off: put resolves after fsync.)
        await this.meta.put(LOCAL_LOG_DBS.stateKey, encodeMeta(target));
      } catch (err) {
        throw new LogError('unavailable', `compact: cannot record the compaction point: ${(err as Error)?.message}`, { cause: err });
      }
      this.compacted = target;
    }
    await this.deleteThrough(this.compacted);
  }

  private async deleteThrough(target: number): Promise<void> {
    while (!this.closed) {
      const keys: number[] = [];
      for (const k of this.batches.getKeys({ end: target + 1, limit: limits.logCompactChunkBatches })) keys.push(k);
      if (keys.length === 0) return;
      await this.batches.transaction(() => {
        for (const k of keys) this.batches.removeSync(k);
      });
      await nextTurn();
    }
  }

  private async doClose(): Promise<void> {
    this.closed = true;
    this.rejectQueued(new LogError('closed', 'local log closed before the batch was written; not committed'));
    for (const sub of [...this.subs]) sub.end();
    this.subs.clear();
    // A transaction already handed to LMDB cannot be recalled: let it finish and answer its callers.
    await this.writing;
    await this.compactChain;
    try {
      await this.env.close();
    } finally {
      openDirs.delete(this.realDir);
    }
  }
}

// ---------------------------------------------------------------------------------------------

/**
 * One subscriber. Catching up, it reads batches from LMDB one position at a time; once caught up it
 * is "live" and the write loop pushes committed batches into its buffer (bounded by batches and
 * bytes). On overflow the buffer is dropped and the subscriber goes back to reading from LMDB, so a
 * slow consumer costs disk reads, never unbounded memory.
 */
class LocalSubscription implements LogSubscription {
  private cursor: number;
  private buffer: LogBatch[] = [];
  private bufferedBytes = 0;
  private live = false;
  private ended = false;
  private wake: (() => void) | undefined;
  private done: Promise<void> = Promise.resolve();

  constructor(
    private readonly log: LocalLog,
    after: number,
    private readonly onBatch: (batch: LogBatch) => void | Promise<void>,
    private readonly onError: (err: LogError) => void,
  ) {
    this.cursor = after;
  }

  start(): void {
    this.done = this.run();
  }

  /** Called by the write loop for each newly committed batch, in order. */
  push(batch: LogBatch, bytes: number): void {
    if (!this.live || this.ended || batch.position <= this.cursor) return;
    if (this.buffer.length >= this.log.subBatchesMax || this.bufferedBytes + bytes > this.log.subBytesMax) {
      this.live = false;
      this.buffer = [];
      this.bufferedBytes = 0;
      this.log.stats.subscriberOverflows++;
    } else {
      this.buffer.push(batch);
      this.bufferedBytes += bytes;
    }
    this.wakeUp();
  }

  /** Ends delivery without reporting (log closed or subscription closed). */
  end(): void {
    if (this.ended) return;
    this.ended = true;
    this.live = false;
    this.buffer = [];
    this.bufferedBytes = 0;
    this.log.dropSubscription(this);
    this.wakeUp();
  }

  /** Ends delivery and reports `err` once. */
  fail(err: LogError): void {
    if (this.ended) return;
    this.end();
    // Reported asynchronously so subscribe() returns before onError runs.
    queueMicrotask(() => {
      try {
        this.onError(err);
      } catch {
        // the consumer's error handler failed; nothing more to do
      }
    });
  }

  close(): Promise<void> {
    this.end();
    return this.done;
  }

  private wakeUp(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }

  private async run(): Promise<void> {
    // Never call onBatch before subscribe() has returned the handle.
    await Promise.resolve();
    let sliceStart = performance.now();
    while (!this.ended && !this.log.closed) {
      let batch: LogBatch | undefined;
      while (this.buffer.length > 0 && this.buffer[0]!.position <= this.cursor) this.buffer.shift();
      if (this.buffer.length > 0 && this.buffer[0]!.position === this.cursor + 1) {
        batch = this.buffer.shift()!;
        this.bufferedBytes = Math.max(0, this.bufferedBytes - recordBytesOf(batch));
      } else if (this.cursor < this.log.committed) {
        const want = this.cursor + 1;
        if (this.cursor < this.log.compacted) {
          this.fail(new LogError('compacted', `subscription: batch ${want} was compacted (through ${this.log.compacted})`));
          return;
        }
        try {
          batch = this.log.readStored(want);
        } catch (err) {
          this.fail(err instanceof LogError ? err : new LogError('corrupt', `subscription: cannot read batch ${want}`, { cause: err }));
          return;
        }
        if (!batch) {
          this.fail(
            this.cursor < this.log.compacted
              ? new LogError('compacted', `subscription: batch ${want} was compacted`)
              : new LogError('corrupt', `local log: batch ${want} is missing (committed through ${this.log.committed})`),
          );
          return;
        }
      } else {
        // Caught up: wait for the write loop to push (no polling).
        this.live = true;
        await new Promise<void>((resolve) => {
          this.wake = resolve;
        });
        continue;
      }

      try {
        const r = this.onBatch(batch);
        if (r && typeof (r as Promise<void>).then === 'function') await r;
      } catch (err) {
        // The SPI has no code for a consumer failure; 'closed' says delivery stopped here.
        this.fail(new LogError('closed', `subscription ended: onBatch threw at position ${batch.position}`, { cause: err }));
        return;
      }
      this.cursor = batch.position;

      // A consumer that never awaits would otherwise run this loop on microtasks alone.
      if (performance.now() - sliceStart > SUBSCRIBER_SLICE_MS) {
        await nextTurn();
        sliceStart = performance.now();
      }
    }
  }
}

function recordBytesOf(batch: LogBatch): number {
  let payload = 0;
  for (const e of batch.entries) payload += e.byteLength;
  return batchRecordBytes(batch.entries.length, payload);
}
