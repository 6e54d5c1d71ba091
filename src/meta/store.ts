// Where the materialised metadata state lives: an ordered byte key/value store with atomic write
// transactions, consistent reads and a way to replace the whole state (snapshot restore). Two
// implementations: LMDB (every node) and memory (unit tests, the deterministic simulation). The
// state machine (state-machine.ts) is the only caller; keys and values are opaque bytes here.
//
// Both give the same bytes for the same writes, so a state hash computed over either is equal.
import { open as openLmdb, type Database, type RootDatabase } from 'lmdb';
import { TesseraError } from '../base/errors.js';
import { limits } from '../base/limits.js';
import { lowerBound, MemoryStore, type RawKV } from './tx.js';

const EMPTY = Buffer.alloc(0);

/** Read access to one consistent version of the state. */
export interface StoreReader {
  getRaw(k: Uint8Array): Buffer | undefined;
  /** Keys in bytewise order within [start, end) (end empty = unbounded; start empty = from the first). */
  rangeRaw(start: Uint8Array, end: Uint8Array, reverse?: boolean): Iterable<[Buffer, Buffer]>;
  /** Applied position this version corresponds to. */
  readonly position: number;
  /** Number of records. */
  count(): number;
}

/** Inside a write transaction: reads see the transaction's own writes. */
export interface StoreWriter extends RawKV {
  readonly position: number;
  setPosition(position: number): void;
}

/** A read version that stays valid across awaits until close() (snapshot streaming). */
export interface StoreSnapshot extends StoreReader {
  close(): void;
}

/** Builds a complete replacement state; nothing is visible until commit(). */
export interface StoreRestore {
  /** Appends records, keys strictly increasing across all calls. */
  append(records: readonly [Buffer, Buffer][]): void;
  /** Atomically replaces all state (and the position) with what was appended. */
  commit(position: number): void;
  /** Discards what was appended; the current state is untouched. Idempotent. */
  abort(): void;
}

export interface StateStore {
  readonly kind: 'lmdb' | 'memory';
  /** Applied position of the committed state (0 for a new store). */
  position(): number;
  /**
   * Runs fn inside one atomic write transaction: everything it wrote, position included, commits
   * together when fn returns, or nothing does when it throws (the error is re-thrown).
   */
  write<T>(fn: (w: StoreWriter) => T): T;
  /** Runs fn on a consistent read version (synchronous: iterate inside fn). */
  read<T>(fn: (r: StoreReader) => T): T;
  /** Opens a read version that survives awaits. Close it. */
  openSnapshot(): StoreSnapshot;
  /** Starts building a replacement state (one at a time). */
  beginRestore(): StoreRestore;
  /** Resolves once every committed write transaction is durable on disk. */
  flushed(): Promise<void>;
  close(): Promise<void>;
}

export class StoreError extends TesseraError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('TESSERA_INTERNAL', `state store: ${message}`, options);
    this.name = 'StoreError';
  }
}

/** A write of a key or record beyond limits.ts (thrown from a handler's put: the command fails 'limit'). */
export class StoreLimitError extends TesseraError {
  constructor(message: string) {
    super('TESSERA_LIMIT_EXCEEDED', message);
    this.name = 'StoreLimitError';
  }
}

export function checkRecordSize(k: Uint8Array, v: Uint8Array): void {
  if (k.length === 0) throw new StoreLimitError('empty key');
  if (k.length > limits.metaKeyBytesMax) {
    throw new StoreLimitError(`key of ${k.length} bytes exceeds ${limits.metaKeyBytesMax}`);
  }
  if (v.length > limits.metaRecordBytesMax) {
    throw new StoreLimitError(`record of ${v.length} bytes exceeds ${limits.metaRecordBytesMax}`);
  }
}

/** Keys an Overlay keeps in order as they arrive; beyond, it sorts them again at the next range read. */
const OVERLAY_INSERT_SORTED_MAX = 4096;

const str = (k: Uint8Array): string => Buffer.from(k.buffer, k.byteOffset, k.byteLength).toString('latin1');

/**
 * Buffered writes over a base store: reads see the buffered writes merged with the base; commitTo()
 * moves them into a target; dropping the overlay discards them. The state machine runs each command
 * in one (its writes count only if the command returned ok), and MemoryStateStore uses one per
 * write transaction. Keys are kept as latin1 strings: code units 0-255 map 1:1 to bytes, so string
 * order is byte order.
 */
export class Overlay implements RawKV {
  /** latin1 key -> [key bytes, value or null for a deletion]. */
  private readonly pending = new Map<string, [Buffer, Buffer | null]>();
  private sorted: string[] | null = [];
  /** Range reads in progress (each walks the `sorted` array of its start; see set()). */
  private iterating = 0;
  constructor(private readonly base: RawKV) {}

  get size(): number {
    return this.pending.size;
  }

  getRaw(k: Uint8Array): Buffer | undefined {
    const p = this.pending.get(str(k));
    if (p === undefined) return this.base.getRaw(k);
    return p[1] ?? undefined;
  }

  putRaw(k: Uint8Array, v: Buffer): void {
    checkRecordSize(k, v);
    this.set(k, v);
  }

  delRaw(k: Uint8Array): void {
    this.set(k, null);
  }

  private set(k: Uint8Array, v: Buffer | null): void {
    this.setKey(str(k), k, v, true);
  }

  /** `s`: k as latin1; `copy`: k may be reused by the caller (another overlay's commit hands over its own). */
  private setKey(s: string, k: Uint8Array, v: Buffer | null, copy: boolean): void {
    const p = this.pending.get(s);
    if (p !== undefined) p[1] = v;
    else {
      // Kept sorted as keys arrive (a binary search and a short move) rather than sorted again at
      // the next range read: a transaction's overlay holds every key its commands wrote so far, and
      // each command's window reads range over it.
      // Past a few thousand keys (a large delete), sorting once at the next read is cheaper.
      // A range read in progress walks the array it started with: copy before changing it.
      if (this.sorted !== null && this.sorted.length < OVERLAY_INSERT_SORTED_MAX) {
        if (this.iterating > 0) this.sorted = this.sorted.slice();
        this.sorted.splice(lowerBound(this.sorted, s), 0, s);
      } else this.sorted = null;
      this.pending.set(s, [copy || !Buffer.isBuffer(k) ? Buffer.from(k) : k, v]); // a copy unless handed over
    }
  }

  private order(): string[] {
    if (this.sorted === null) this.sorted = [...this.pending.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    return this.sorted;
  }

  *rangeRaw(start: Uint8Array, end: Uint8Array, reverse = false): Iterable<[Buffer, Buffer]> {
    const s = str(start);
    const e = end.length === 0 ? null : str(end);
    // Pending keys in range, walked in iteration order over the sorted array as it is now (set()
    // copies it before inserting while a read is in progress: writes during iteration do not
    // disturb it, and no read copies it).
    const all = this.order();
    const lo = lowerBound(all, s);
    const hi = e === null ? all.length : lowerBound(all, e);
    const count = hi - lo;
    const at = (n: number): string => all[reverse ? hi - 1 - n : lo + n]!;
    this.iterating++;
    const base = this.base.rangeRaw(start, end, reverse)[Symbol.iterator]();
    let b = base.next();
    let i = 0;
    const before = (x: string, y: string) => (reverse ? x > y : x < y);
    try {
      while (!b.done || i < count) {
        const bk = b.done ? null : str(b.value[0]);
        const mk = i < count ? at(i) : null;
        if (mk !== null && (bk === null || before(mk, bk) || mk === bk)) {
          // The pending write wins (and hides the base entry with the same key).
          if (bk === mk) b = base.next();
          i++;
          const p = this.pending.get(mk)!;
          if (p[1] !== null) yield [p[0], p[1]];
          continue;
        }
        const entry = b.value as [Buffer, Buffer];
        b = base.next();
        const now = this.pending.get(bk!);
        if (now === undefined) yield entry;
        else if (now[1] !== null) yield [entry[0], now[1]]; // written during iteration
      }
    } finally {
      this.iterating--;
      base.return?.();
    }
  }

  /** Keys written or deleted, in byte order. */
  keys(): Buffer[] {
    return this.order().map((x) => this.pending.get(x)![0]);
  }

  /**
   * Applies the buffered writes to `target` (in byte order), forgets them, and returns the keys
   * written or deleted (in byte order); `each` sees every key with its new value (null: deleted) and
   * its latin1 form.
   */
  commitTo(target: RawKV, each?: (k: Buffer, v: Buffer | null, latin1: string) => void): Buffer[] {
    const keys: Buffer[] = [];
    for (const s of this.order()) {
      const [k, v] = this.pending.get(s)!;
      // Into another overlay (a command's writes into its transaction's): the key, checked when it
      // was written here and no longer ours, is handed over with its latin1 form.
      if (target instanceof Overlay) target.setKey(s, k, v, false);
      else if (v === null) target.delRaw(k);
      else target.putRaw(k, v);
      keys.push(k);
      each?.(k, v, s);
    }
    this.pending.clear();
    this.sorted = [];
    return keys;
  }
}

// ---------------------------------------------------------------------------------------------
// Memory

function memoryReader(m: MemoryStore, position: number): StoreReader {
  return {
    position,
    getRaw: (k) => m.getRaw(k),
    rangeRaw: (s, e, r) => m.rangeRaw(s, e, r ?? false),
    count: () => m.size,
  };
}

/**
 * The state on a MemoryStore (tx.ts). Write transactions buffer in an Overlay and apply on success.
 * A snapshot copies the records (the state is in memory anyway); restore builds a new MemoryStore
 * and swaps it in.
 */
export class MemoryStateStore implements StateStore {
  readonly kind = 'memory' as const;
  private mem = new MemoryStore();
  private pos = 0;
  private restoring = false;
  private closed = false;

  position(): number {
    return this.pos;
  }

  write<T>(fn: (w: StoreWriter) => T): T {
    this.assertOpen();
    const ov = new Overlay(this.mem);
    let pos = this.pos;
    const w: StoreWriter = {
      get position() {
        return pos;
      },
      setPosition: (p) => void (pos = p),
      getRaw: (k) => ov.getRaw(k),
      putRaw: (k, v) => ov.putRaw(k, v),
      delRaw: (k) => ov.delRaw(k),
      rangeRaw: (s, e, r) => ov.rangeRaw(s, e, r ?? false),
    };
    const out = fn(w);
    ov.commitTo(this.mem);
    this.pos = pos;
    return out;
  }

  read<T>(fn: (r: StoreReader) => T): T {
    this.assertOpen();
    return fn(memoryReader(this.mem, this.pos));
  }

  openSnapshot(): StoreSnapshot {
    this.assertOpen();
    let copy: MemoryStore | null = new MemoryStore();
    for (const [k, v] of this.mem.rangeRaw(EMPTY, EMPTY)) copy.putRaw(k, v);
    const live = (): MemoryStore => {
      if (copy === null) throw new StoreError('read version used after close');
      return copy;
    };
    return {
      position: this.pos,
      getRaw: (k) => live().getRaw(k),
      rangeRaw: (s, e, r) => live().rangeRaw(s, e, r ?? false),
      count: () => live().size,
      close: () => void (copy = null),
    };
  }

  beginRestore(): StoreRestore {
    this.assertOpen();
    if (this.restoring) throw new StoreError('a restore is already in progress');
    this.restoring = true;
    let fresh: MemoryStore | null = new MemoryStore();
    return {
      append: (records) => {
        if (!fresh) throw new StoreError('restore already finished');
        for (const [k, v] of records) fresh.putRaw(k, v);
      },
      commit: (position) => {
        if (!fresh) throw new StoreError('restore already finished');
        this.mem = fresh;
        this.pos = position;
        fresh = null;
        this.restoring = false;
      },
      abort: () => {
        if (!fresh) return;
        fresh = null;
        this.restoring = false;
      },
    };
  }

  flushed(): Promise<void> {
    return Promise.resolve();
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  private assertOpen(): void {
    if (this.closed) throw new StoreError('closed');
  }
}

// ---------------------------------------------------------------------------------------------
// LMDB

const META_ACTIVE = Buffer.from('active');
const META_POSITION = Buffer.from('position');

function u64(n: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(n));
  return b;
}
function readU64(b: Buffer | undefined): number {
  return b === undefined ? 0 : Number(b.readBigUInt64BE(0));
}

type Bin = Database<Buffer, Buffer>;

/**
 * LMDB layout: two state databases ('state.0', 'state.1') and 'meta' holding which one is active
 * and the applied position. A restore fills the inactive one, then one transaction flips 'active',
 * sets the position and clears the old one: readers see the old state or the new, never a mix.
 *
 * Durability (flags chosen so a killed process never loses or tears a committed transaction):
 * - Not noSync / useWritemap / mapAsync: with those, a machine crash can leave a meta page pointing
 *   at pages that never reached the disk (a corrupt tree, not just a lost transaction).
 * - Each applied batch is one synchronous, abortable transaction (a throw rolls it back) committed
 *   with MDB_NOMETASYNC: LMDB fdatasyncs the data pages, then writes the meta page without a second
 *   sync. A SIGKILL loses nothing (the meta write is in the page cache before transactionSync
 *   returns); a machine crash may undo the last transaction, never tear one ("maintains database
 *   integrity", lmdb.h), which the log replays. flushed() forces the meta page out (mdb_env_sync).
 *   One sync per batch instead of two; the sync is the dominant cost of apply, so batching amortises
 *   it (see the throughput figures printed by test/meta/state-machine.test.ts).
 * - overlappingSync off: with it, lmdb-js syncs every synchronous commit anyway (inline, after the
 *   writer lock is released) plus an extra meta write, and recovery depends on the OS boot id.
 */
const TXN_FLAGS = 0x1 | 0x2 | 0x40000; // abortable | synchronous commit | MDB_NOMETASYNC

export class LmdbStateStore implements StateStore {
  readonly kind = 'lmdb' as const;
  private readonly root: RootDatabase;
  private readonly dbs: [Bin, Bin];
  private readonly meta: Bin;
  private active: 0 | 1;
  private pos: number;
  private restoring = false;
  private closed = false;
  private readonly openSnapshots = new Set<{ done(): void }>();

  private constructor(root: RootDatabase) {
    this.root = root;
    const opt = { keyEncoding: 'binary' as const, encoding: 'binary' as const };
    this.dbs = [root.openDB<Buffer, Buffer>('state.0', opt), root.openDB<Buffer, Buffer>('state.1', opt)];
    this.meta = root.openDB<Buffer, Buffer>('meta', opt);
    const a = this.meta.get(META_ACTIVE);
    this.active = a !== undefined && a[0] === 1 ? 1 : 0;
    this.pos = readU64(this.meta.get(META_POSITION));
  }

  /**
   * Opens (creating if needed) the state in `dir`. `readOnly`: another process's state, opened for
   * reading while that process may write it (LMDB allows it; fsck): it must exist, write() throws.
   */
  static open(dir: string, opts: { readOnly?: boolean } = {}): LmdbStateStore {
    try {
      const root = openLmdb(dir, {
        ...(opts.readOnly === true ? { readOnly: true } : {}),
        keyEncoding: 'binary',
        encoding: 'binary',
        maxDbs: 4,
        overlappingSync: false,
        noSync: false,
        useWritemap: false,
        cache: false,
      });
      return new LmdbStateStore(root);
    } catch (err) {
      throw new StoreError(`cannot open LMDB state at ${dir}: ${(err as Error).message}`, { cause: err });
    }
  }

  position(): number {
    return this.pos;
  }

  private get db(): Bin {
    return this.dbs[this.active];
  }

  write<T>(fn: (w: StoreWriter) => T): T {
    this.assertOpen();
    const db = this.db;
    let pos = this.pos;
    let posDirty = false;
    const w: StoreWriter = {
      get position() {
        return pos;
      },
      setPosition: (p) => {
        pos = p;
        posDirty = true;
      },
      getRaw: (k) => db.get(Buffer.from(k.buffer, k.byteOffset, k.byteLength)),
      putRaw: (k, v) => {
        checkRecordSize(k, v);
        db.putSync(Buffer.from(k.buffer, k.byteOffset, k.byteLength), v);
      },
      delRaw: (k) => void db.removeSync(Buffer.from(k.buffer, k.byteOffset, k.byteLength)),
      rangeRaw: (s, e, r) => lmdbRange(db, s, e, r ?? false, undefined),
    };
    const out = db.transactionSync(() => {
      const res = fn(w);
      if (posDirty) this.meta.putSync(META_POSITION, u64(pos));
      return res;
    }, TXN_FLAGS);
    this.pos = pos;
    return out;
  }

  read<T>(fn: (r: StoreReader) => T): T {
    const snap = this.openSnapshot();
    try {
      return fn(snap);
    } finally {
      snap.close();
    }
  }

  openSnapshot(): StoreSnapshot {
    this.assertOpen();
    const txn = this.root.useReadTransaction();
    this.openSnapshots.add(txn);
    // The active database and the position as of this read version (read through it, so the three
    // always belong together even if a restore flips them while the version is open).
    const a = this.meta.get(META_ACTIVE, { transaction: txn });
    const db = this.dbs[a !== undefined && a[0] === 1 ? 1 : 0];
    const position = readU64(this.meta.get(META_POSITION, { transaction: txn }));
    let open = true;
    const check = () => {
      if (!open) throw new StoreError('read version used after close');
    };
    return {
      position,
      getRaw: (k) => {
        check();
        return db.get(Buffer.from(k.buffer, k.byteOffset, k.byteLength), { transaction: txn });
      },
      rangeRaw: (s, e, r) => {
        check();
        return lmdbRange(db, s, e, r ?? false, txn);
      },
      count: () => {
        check();
        return db.getCount({ transaction: txn });
      },
      close: () => {
        if (!open) return;
        open = false;
        this.openSnapshots.delete(txn);
        txn.done();
      },
    };
  }

  beginRestore(): StoreRestore {
    this.assertOpen();
    if (this.restoring) throw new StoreError('a restore is already in progress');
    this.restoring = true;
    const target: 0 | 1 = this.active === 0 ? 1 : 0;
    const staging = this.dbs[target];
    let finished = false;
    const clearStaging = () => staging.transactionSync(() => staging.clearSync(), TXN_FLAGS);
    try {
      clearStaging(); // leftovers of a restore interrupted by a crash
    } catch (err) {
      this.restoring = false;
      throw err;
    }
    let last: Buffer | null = null;
    return {
      append: (records) => {
        if (finished) throw new StoreError('restore already finished');
        if (records.length === 0) return;
        staging.transactionSync(() => {
          for (const [k, v] of records) {
            if (last !== null && Buffer.compare(k, last) <= 0) throw new StoreError('restore keys out of order');
            checkRecordSize(k, v);
            // Keys arrive in order: append mode skips the B-tree search.
            staging.putSync(k, v, { append: true });
            last = k;
          }
        }, TXN_FLAGS);
      },
      commit: (position) => {
        if (finished) throw new StoreError('restore already finished');
        const old = this.dbs[this.active];
        this.meta.transactionSync(() => {
          this.meta.putSync(META_ACTIVE, Buffer.from([target]));
          this.meta.putSync(META_POSITION, u64(position));
          old.clearSync();
        }, TXN_FLAGS);
        this.active = target;
        this.pos = position;
        finished = true;
        this.restoring = false;
      },
      abort: () => {
        if (finished) return;
        finished = true;
        this.restoring = false;
        try {
          clearStaging();
        } catch {
          // Cleared again at the next restore.
        }
      },
    };
  }

  async flushed(): Promise<void> {
    this.assertOpen();
    // Force the data and meta pages of everything committed so far to disk.
    await new Promise<void>((resolve, reject) =>
      (this.root as unknown as { sync(cb: (err?: Error) => void): void }).sync((err) => (err ? reject(err) : resolve())),
    );
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const t of [...this.openSnapshots]) t.done();
    this.openSnapshots.clear();
    await this.root.close();
  }

  private assertOpen(): void {
    if (this.closed) throw new StoreError('closed');
  }
}

/** [start, end) in byte order (reverse: descending), as RawKV.rangeRaw asks. */
function* lmdbRange(
  db: Bin,
  start: Uint8Array,
  end: Uint8Array,
  reverse: boolean,
  transaction: ReturnType<RootDatabase['useReadTransaction']> | undefined,
): Iterable<[Buffer, Buffer]> {
  const s = Buffer.from(start.buffer, start.byteOffset, start.byteLength);
  const e = Buffer.from(end.buffer, end.byteOffset, end.byteLength);
  if (e.length > 0 && Buffer.compare(s, e) >= 0) return; // empty range
  const opts: Record<string, unknown> = {};
  if (transaction) opts.transaction = transaction;
  if (!reverse) {
    if (s.length > 0) opts.start = s;
    if (e.length > 0) opts.end = e; // exclusive by default
  } else {
    // lmdb-js reverse ranges run from `start` (upper) down to `end` (lower).
    opts.reverse = true;
    if (e.length > 0) {
      opts.start = e;
      opts.exclusiveStart = true;
    }
    if (s.length > 0) {
      opts.end = s;
      opts.inclusiveEnd = true;
    }
  }
  for (const { key, value } of db.getRange(opts)) {
    yield [Buffer.isBuffer(key) ? key : Buffer.from(key as Uint8Array), value];
  }
}
