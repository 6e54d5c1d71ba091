// The deterministic state machine: applies committed log batches, in log order, to the materialised
// state (store.ts). Every node applies the same batches to the same state and gets the same state
// and the same results (ARCHITECTURE.md, "Decisions already taken"): nothing here reads the clock,
// randomness or the environment, and every iteration is in key or entry order.
//
// Per entry (one command, envelope in entry.ts), inside ONE write transaction per batch that also
// stores the batch position (state and position move together):
//   a. version: an entry of another RECORD_VERSION throws MetaVersionError; the machine refuses to
//      apply anything after it (skipping would silently diverge from nodes that understood it).
//   b. fencing: key('node', n).incarnation must equal the entry's incarnation, else 'stale'. Two
//      commands are exempt because they come before a node has a current incarnation: node.join
//      (its handler refuses an incarnation <= the current one) and cluster.init (bootstrap).
//   c. dedup: key('proposer', n) = { inc, w, done } remembers, for the proposer's latest incarnation,
//      the watermark w (every seq < w is resolved) and the applied seqs >= w. An entry of an older
//      incarnation is 'stale'; s < w or s in done is 'duplicate' (never applied twice). Applied seqs
//      (whatever their result) join done; w rises to the entry's watermark and over a contiguous run
//      of done seqs. done holds at most limits.metaProposerWindowMax seqs: beyond, fail('limit').
//      The records are kept in memory during a batch and written once at its end (handlers must
//      not read key('proposer', ...): mid-batch they would see the state before the batch).
//   d. the handler runs on an overlay: its writes reach the state (and later entries) only if it
//      returned ok; a refusal or a throw discards them (a throw gives fail('internal', message)).
import { createHash } from 'node:crypto';
import { TesseraError, MalformedError } from '../base/errors.js';
import { limits } from '../base/limits.js';
import type { LogBatch } from '../log/spi.js';
import { RECORD_VERSION } from './codec.js';
import { decodeEntry, MetaVersionError, type Entry } from './entry.js';
import { key } from './keys.js';
import { Overlay, StoreLimitError, type StateStore, type StoreReader } from './store.js';
import { decodeRecord, encodeRecord, fail, lowerBound, rawTx, type ApplyTx, type Command, type CommandResult, type HandlerTable, type RawKV, type ReadTx } from './tx.js';

export { MetaVersionError } from './entry.js';

export interface AppliedResult {
  /** Proposer node id ('' when the entry could not be decoded). */
  node: string;
  inc: number;
  seq: number;
  result: CommandResult | 'duplicate' | 'stale';
}

export interface ApplyOutcome {
  position: number;
  /** One per entry, in entry order (empty when the batch was already applied). */
  results: AppliedResult[];
  /**
   * Keys written or deleted by commands of this batch that returned ok, deduplicated, in byte order
   * (for watchers). The dedup bookkeeping under key('proposer') is not reported.
   */
  changed: Buffer[];
  /** The value each key of `changed` holds after the batch (same index; null: deleted). */
  values: (Buffer | null)[];
  /** Dedup records this batch changed, by node, as the batch left them (a proposer's applied watermark). */
  proposers: Map<string, ProposerRecord>;
}

/** Proposer dedup record, key('proposer', node). */
export interface ProposerRecord {
  inc: number;
  w: number;
  /** Applied seqs >= w, ascending. */
  done: number[];
}

/** Bytes that are not a valid state snapshot. */
export class SnapshotError extends MalformedError {
  constructor(message: string) {
    super(`meta snapshot: ${message}`);
    this.name = 'SnapshotError';
  }
}

/** Commands applied without the incarnation check (see b. above). */
const UNFENCED: ReadonlySet<string> = new Set(['node.join', 'cluster.init']);

type Handler = HandlerTable[string];

/** What one applyBatch carries from entry to entry. */
interface BatchContext {
  position: number;
  /** Dedup records read or changed in this batch (written back once, at the end). */
  proposers: Map<string, { rec: ProposerRecord; dirty: boolean }>;
  /** Node incarnations read in this batch (cleared whenever a command changes a node record). */
  incarnations: Map<string, number | undefined>;
  /** latin1 key -> [key, value after the batch so far, null: deleted]. */
  changed: Map<string, [Buffer, Buffer | null]>;
}

const EMPTY = Buffer.alloc(0);
const NODE_PREFIX = key('node');
const nodeKey = (n: string) => key('node', n);
const proposerKey = (n: string) => key('proposer', n);

export class StateMachine {
  private readonly store: StateStore;
  private readonly handlers: ReadonlyMap<string, Handler>;
  private fatal: Error | undefined;
  private restoring = false;

  private constructor(store: StateStore, handlers: ReadonlyMap<string, Handler>) {
    this.store = store;
    this.handlers = handlers;
  }

  /** Throws on a command name defined by two tables (or a non-function entry). */
  static open(opts: { store: StateStore; handlers: HandlerTable[] }): StateMachine {
    const map = new Map<string, Handler>();
    for (const table of opts.handlers) {
      for (const name of Object.keys(table)) {
        const fn = table[name];
        if (typeof fn !== 'function') throw new TesseraError('TESSERA_CONFIG_INVALID', `meta: handler '${name}' is not a function`);
        if (map.has(name)) throw new TesseraError('TESSERA_CONFIG_INVALID', `meta: command '${name}' is defined twice`);
        map.set(name, fn);
      }
    }
    return new StateMachine(opts.store, map);
  }

  /** Position of the last applied batch (0 before the first). */
  get appliedPosition(): number {
    return this.store.position();
  }

  /**
   * Applies one committed batch (synchronously, in one store transaction). Batches at or below the
   * applied position are ignored. Throws MetaVersionError (fatal: every later call throws it too) or a
   * store failure (nothing of the batch was applied).
   */
  applyBatch(batch: LogBatch): ApplyOutcome {
    return this.applyBatches([batch])[0] ?? { position: batch.position, results: [], changed: [], values: [], proposers: new Map() };
  }

  /**
   * Applies consecutive committed batches in one store transaction (one sync for all of them: a
   * node catching up, or a burst delivered while the previous apply ran). Same results as applying
   * them one by one; on a throw nothing of any of them is applied. Returns the outcomes of the
   * batches applied (those at or below the applied position are skipped and not reported).
   */
  applyBatches(batches: readonly LogBatch[]): ApplyOutcome[] {
    if (this.fatal) throw this.fatal;
    if (this.restoring) throw new TesseraError('TESSERA_INTERNAL', 'meta: applyBatch while a snapshot is being restored');
    let last = this.store.position();
    const todo: LogBatch[] = [];
    const outcomes: ApplyOutcome[] = [];
    for (const batch of batches) {
      const position = batch.position;
      if (!Number.isSafeInteger(position) || position <= 0) {
        throw new TesseraError('TESSERA_INTERNAL', `meta: bad batch position ${String(position)}`);
      }
      if (position <= last) continue;
      last = position;
      todo.push(batch);
    }
    if (todo.length === 0) return [];
    const ctxs: BatchContext[] = [];
    try {
      this.store.write((store) => {
        // Writes of the whole transaction gather in memory and reach the store once, in key order, at
        // the end: keys that every command touches (id counters, a parent directory) are read from
        // and written to the store once per transaction instead of once per command.
        const w = new Overlay(store);
        for (const batch of todo) {
          const ctx: BatchContext = { position: batch.position, proposers: new Map(), incarnations: new Map(), changed: new Map() };
          const results: AppliedResult[] = [];
          for (let index = 0; index < batch.entries.length; index++) {
            results.push(this.applyEntry(w, ctx, index, batch.entries[index]!));
          }
          // Dedup records, written once per batch (in first-seen order: the same on every node).
          const proposers = new Map<string, ProposerRecord>();
          for (const [n, p] of ctx.proposers) {
            if (!p.dirty) continue;
            w.putRaw(proposerKey(n), encodeRecord(p.rec));
            proposers.set(n, p.rec);
          }
          ctxs.push(ctx);
          outcomes.push({ position: batch.position, results, changed: [], values: [], proposers });
        }
        w.commitTo(store);
        store.setPosition(last);
      });
    } catch (err) {
      if (err instanceof MetaVersionError) this.fatal = err;
      throw err;
    }
    for (let i = 0; i < ctxs.length; i++) {
      const changed = ctxs[i]!.changed;
      const order = [...changed.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)).map((s) => changed.get(s)!);
      outcomes[i]!.changed = order.map((e) => e[0]);
      outcomes[i]!.values = order.map((e) => e[1]);
    }
    return outcomes;
  }

  private applyEntry(w: RawKV, ctx: BatchContext, index: number, bytes: Uint8Array): AppliedResult {
    let e: Entry;
    try {
      e = decodeEntry(bytes);
    } catch (err) {
      if (err instanceof MetaVersionError) throw err;
      return { node: '', inc: 0, seq: 0, result: fail('invalid', (err as Error).message) };
    }
    const { n, i, s, c } = e;
    const out = (result: AppliedResult['result']): AppliedResult => ({ node: n, inc: i, seq: s, result });

    // b. Fencing.
    if (!UNFENCED.has(c.t)) {
      let cur = ctx.incarnations.get(n);
      if (cur === undefined && !ctx.incarnations.has(n)) {
        cur = getRecord<{ incarnation?: number }>(w, nodeKey(n))?.incarnation;
        ctx.incarnations.set(n, cur);
      }
      if (cur !== i) return out('stale');
    }

    // c. Dedup.
    let slot = ctx.proposers.get(n);
    if (slot === undefined) {
      const rec = getRecord<ProposerRecord>(w, proposerKey(n));
      slot = { rec: rec ?? { inc: -1, w: 0, done: [] }, dirty: false };
      ctx.proposers.set(n, slot);
    }
    if (slot.rec.inc > i) return out('stale');
    if (slot.rec.inc === i) {
      if (s < slot.rec.w || indexOf(slot.rec.done, s) >= 0) return out('duplicate');
    } else {
      slot.rec = { inc: i, w: 0, done: [] }; // first entry of a new incarnation: a fresh window
    }
    const prop = slot.rec;
    slot.dirty = true;
    advance(prop, e.w);
    if (prop.done.length >= limits.metaProposerWindowMax) {
      return out(fail('limit', `node ${n} has more than ${limits.metaProposerWindowMax} unresolved commands`));
    }

    // d. The command, on an overlay.
    const result = this.runHandler(w, ctx.position, index, c);
    if (result.ok) {
      let nodes = false;
      result.overlay.commitTo(w, (k, v, latin1) => {
        ctx.changed.set(latin1, [k, v]);
        if (!nodes && startsWith(k, NODE_PREFIX)) nodes = true;
      });
      if (nodes) ctx.incarnations.clear(); // a node record changed: re-read incarnations
    }
    insertSorted(prop.done, s);
    advance(prop, prop.w);
    return out(result.result);
  }

  private runHandler(
    base: RawKV,
    position: number,
    index: number,
    c: Command,
  ): { ok: true; result: CommandResult; overlay: Overlay } | { ok: false; result: CommandResult } {
    const handler = this.handlers.get(c.t);
    if (handler === undefined) return { ok: false, result: fail('invalid', `unknown command '${c.t}'`) };
    const overlay = new Overlay(base);
    let result: CommandResult;
    try {
      result = handler(rawTx(overlay, position, index), c);
    } catch (err) {
      // Deterministic on every node: the same state and command throw the same error.
      if (err instanceof StoreLimitError) return { ok: false, result: fail('limit', `${c.t}: ${err.message}`) };
      return { ok: false, result: fail('internal', `${c.t}: ${err instanceof Error ? err.message : String(err)}`) };
    }
    if (typeof result !== 'object' || result === null || typeof result.ok !== 'boolean') {
      return { ok: false, result: fail('internal', `${c.t}: handler returned no result`) };
    }
    if (!result.ok) return { ok: false, result };
    return { ok: true, result, overlay };
  }

  /** Runs fn on a consistent read version of the applied state (iterate inside fn). */
  read<T>(fn: (tx: ReadTx) => T): T {
    return this.store.read((r) => fn(readTx(r)));
  }

  /** sha256 (hex) over the applied position and every key/value in key order. */
  hash(): string {
    return this.store.read((r) => {
      const h = createHash('sha256');
      h.update(u64(r.position));
      const len = Buffer.alloc(4);
      for (const [k, v] of r.rangeRaw(EMPTY, EMPTY)) {
        len.writeUInt32BE(k.length);
        h.update(len);
        h.update(k);
        len.writeUInt32BE(v.length);
        h.update(len);
        h.update(v);
      }
      return h.digest('hex');
    });
  }

  stats(): { records: number; position: number } {
    return this.store.read((r) => ({ records: r.count(), position: r.position }));
  }

  /**
   * A snapshot of the applied state as of this call, streamed in chunks of about
   * limits.metaSnapshotChunkBytes from one read version (never the whole state in memory). The read
   * version is held until `data` is fully consumed or its iterator is returned early: consume it.
   */
  snapshot(): { position: number; data: AsyncIterable<Uint8Array> } {
    const snap = this.store.openSnapshot();
    return { position: snap.position, data: snapshotStream(snap) };
  }

  /**
   * Replaces ALL state with a snapshot (validating its header, version, records and trailer hash)
   * and returns its position. The replacement is atomic: a bad snapshot leaves the state untouched
   * (SnapshotError; MetaVersionError for another record version). Do not apply batches meanwhile.
   */
  async restore(data: AsyncIterable<Uint8Array>): Promise<number> {
    if (this.restoring) throw new TesseraError('TESSERA_INTERNAL', 'meta: a restore is already running');
    this.restoring = true;
    let sink: ReturnType<StateStore['beginRestore']> | undefined;
    try {
      sink = this.store.beginRestore();
      const position = await parseSnapshot(data, (records) => sink!.append(records));
      sink.commit(position);
      sink = undefined;
      return position;
    } finally {
      sink?.abort();
      this.restoring = false;
    }
  }

  /** Resolves once the applied state through the current position is durable on disk. */
  flushed(): Promise<void> {
    return this.store.flushed();
  }
}

// ---------------------------------------------------------------------------------------------
// Helpers

function getRecord<T>(kv: RawKV, k: Uint8Array): T | undefined {
  const v = kv.getRaw(k);
  return v === undefined ? undefined : decodeRecord<T>(v);
}

/** Raises the watermark to w, drops done seqs below it, then runs it over contiguous done seqs. */
function advance(p: ProposerRecord, w: number): void {
  if (w > p.w) p.w = w;
  let drop = 0;
  while (drop < p.done.length && p.done[drop]! < p.w) drop++;
  while (drop < p.done.length && p.done[drop] === p.w) {
    p.w++;
    drop++;
  }
  if (drop > 0) p.done.splice(0, drop);
}

function startsWith(k: Buffer, prefix: Buffer): boolean {
  return k.length >= prefix.length && k.compare(prefix, 0, prefix.length, 0, prefix.length) === 0;
}

function indexOf(sorted: readonly number[], x: number): number {
  const i = lowerBound(sorted, x);
  return i < sorted.length && sorted[i] === x ? i : -1;
}

function insertSorted(sorted: number[], x: number): void {
  const i = lowerBound(sorted, x);
  if (sorted[i] !== x) sorted.splice(i, 0, x);
}

function readTx(r: StoreReader): ReadTx {
  const refuse = () => {
    throw new TesseraError('TESSERA_INTERNAL', 'meta: read transaction cannot write');
  };
  const tx: ApplyTx = rawTx({ getRaw: (k) => r.getRaw(k), rangeRaw: (s, e, rev) => r.rangeRaw(s, e, rev), putRaw: refuse, delRaw: refuse }, r.position, 0);
  return { get: (k) => tx.get(k), range: (p, o) => tx.range(p, o) };
}

function u64(n: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(n));
  return b;
}

// ---------------------------------------------------------------------------------------------
// Snapshot format (all integers big-endian):
//   header  : magic "TSMETAST" (8) | format version u32 | RECORD_VERSION u32 | position u64 | count u64
//   records : count x ( key length u32 | key | value length u32 | value ), keys strictly ascending
//   trailer : 0xFFFFFFFF u32 | sha256 of every byte before the trailer (32)
// Key lengths are 1..limits.metaKeyBytesMax, so 0xFFFFFFFF cannot start a record.

const MAGIC = Buffer.from('TSMETAST', 'latin1');
const FORMAT_VERSION = 1;
const HEADER_BYTES = 32;
const TRAILER_MARK = 0xffffffff;

async function* snapshotStream(snap: ReturnType<StateStore['openSnapshot']>): AsyncGenerator<Uint8Array> {
  try {
    const h = createHash('sha256');
    const header = Buffer.alloc(HEADER_BYTES);
    MAGIC.copy(header, 0);
    header.writeUInt32BE(FORMAT_VERSION, 8);
    header.writeUInt32BE(RECORD_VERSION, 12);
    header.writeBigUInt64BE(BigInt(snap.position), 16);
    header.writeBigUInt64BE(BigInt(snap.count()), 24);
    let parts: Buffer[] = [header];
    let size = header.length;
    const flush = (): Buffer => {
      const chunk = parts.length === 1 ? parts[0]! : Buffer.concat(parts, size);
      h.update(chunk);
      parts = [];
      size = 0;
      return chunk;
    };
    for (const [k, v] of snap.rangeRaw(EMPTY, EMPTY)) {
      const lens = Buffer.allocUnsafe(4);
      lens.writeUInt32BE(k.length);
      const lenv = Buffer.allocUnsafe(4);
      lenv.writeUInt32BE(v.length);
      parts.push(lens, k, lenv, v);
      size += 8 + k.length + v.length;
      if (size >= limits.metaSnapshotChunkBytes) yield flush();
    }
    const body = size > 0 ? flush() : undefined;
    const trailer = Buffer.alloc(36);
    trailer.writeUInt32BE(TRAILER_MARK, 0);
    h.digest().copy(trailer, 4);
    yield body === undefined ? trailer : Buffer.concat([body, trailer]);
  } finally {
    snap.close();
  }
}

/** Streaming parser: validates everything, hands records over in ordered groups, returns the position. */
async function parseSnapshot(data: AsyncIterable<Uint8Array>, sink: (records: [Buffer, Buffer][]) => void): Promise<number> {
  const h = createHash('sha256');
  let buf: Buffer = EMPTY;
  let header: { position: number; count: number } | undefined;
  let seen = 0;
  let last: Buffer | undefined;
  let trailer: Buffer | undefined;
  let pending: [Buffer, Buffer][] = [];
  let pendingBytes = 0;
  const recordMax = 8 + limits.metaKeyBytesMax + limits.metaRecordBytesMax;

  const parse = (): void => {
    let o = 0;
    if (header === undefined) {
      if (buf.length < HEADER_BYTES) return;
      if (!buf.subarray(0, 8).equals(MAGIC)) throw new SnapshotError('not a state snapshot (bad magic)');
      const fmt = buf.readUInt32BE(8);
      if (fmt !== FORMAT_VERSION) throw new SnapshotError(`unknown format version ${fmt}`);
      const rv = buf.readUInt32BE(12);
      if (rv !== RECORD_VERSION) throw new MetaVersionError(rv, 'snapshot');
      const position = Number(buf.readBigUInt64BE(16));
      const count = Number(buf.readBigUInt64BE(24));
      if (!Number.isSafeInteger(position) || !Number.isSafeInteger(count)) throw new SnapshotError('header out of range');
      header = { position, count };
      o = HEADER_BYTES;
    }
    while (trailer === undefined && buf.length - o >= 4) {
      const klen = buf.readUInt32BE(o);
      if (klen === TRAILER_MARK) {
        if (buf.length - o < 36) break; // the rest of the trailer is in the next chunk
        h.update(buf.subarray(0, o));
        trailer = Buffer.from(buf.subarray(o + 4, o + 36));
        o += 36;
        break;
      }
      if (klen === 0 || klen > limits.metaKeyBytesMax) throw new SnapshotError(`bad key length ${klen}`);
      if (buf.length - o < 8 + klen) break;
      const vlen = buf.readUInt32BE(o + 4 + klen);
      if (vlen > limits.metaRecordBytesMax) throw new SnapshotError(`bad record length ${vlen}`);
      if (buf.length - o < 8 + klen + vlen) break;
      const k = Buffer.from(buf.subarray(o + 4, o + 4 + klen));
      const v = Buffer.from(buf.subarray(o + 8 + klen, o + 8 + klen + vlen));
      if (last !== undefined && Buffer.compare(last, k) >= 0) throw new SnapshotError('keys out of order');
      last = k;
      if (++seen > header.count) throw new SnapshotError('more records than the header says');
      pending.push([k, v]);
      pendingBytes += k.length + v.length;
      o += 8 + klen + vlen;
    }
    if (trailer === undefined) h.update(buf.subarray(0, o));
    buf = buf.subarray(o);
    if (trailer === undefined && buf.length > recordMax) throw new SnapshotError('record too large');
  };

  for await (const chunk of data) {
    if (!(chunk instanceof Uint8Array)) throw new SnapshotError('stream yielded a non-byte chunk');
    if (trailer !== undefined) {
      if (chunk.length > 0) throw new SnapshotError('bytes after the trailer');
      continue;
    }
    const c = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    buf = buf.length === 0 ? c : Buffer.concat([buf, c]);
    parse();
    if (trailer !== undefined && buf.length > 0) throw new SnapshotError('bytes after the trailer');
    if (pendingBytes >= limits.metaSnapshotChunkBytes) {
      sink(pending);
      pending = [];
      pendingBytes = 0;
    }
  }
  if (header === undefined) throw new SnapshotError('truncated header');
  if (trailer === undefined) throw new SnapshotError('truncated (no trailer)');
  if (seen !== header.count) throw new SnapshotError(`header says ${header.count} records, found ${seen}`);
  if (!h.digest().equals(trailer)) throw new SnapshotError('checksum mismatch');
  if (pending.length > 0) sink(pending);
  return header.position;
}
