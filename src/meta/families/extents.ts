// The extent-map command family: the map of each data fork from byte ranges to pieces of immutable
// objects (ARCHITECTURE.md, "The chunked driver"), with reference counts of the objects.
//
// Invariants kept by every command (and checked by test/meta/extents.test.ts):
// - A fork's extents ('ext', fork, offset) never overlap; holes are absent keys.
// - No two neighbouring extents could be one (same object, contiguous in the fork and in the object):
//   they are merged, so sequential writes out of one segment object stay one extent.
// - ('obj', o).refs = the number of extent records, in all forks and in the reap queue, whose object
//   is o. A record with refs 0 does not exist: it moves to ('gc', o) { since: position } for the
//   collector (a later issue); an object in 'gc' that gains a reference again leaves 'gc'.
// - Extents lie below the owner's size (writes raise it; truncate frees what lies beyond).
//
// Work per command is bounded (limits.metaExtentsPerCommandMax extent records read or changed);
// beyond it a command fails with 'limit' and the caller splits the range (boundedEnd() tells where).
// Nothing here scans a whole map, except ext.reap, which frees a bounded slice per command.
import { assert } from '../../base/assert.js';
import { limits } from '../../base/limits.js';
import { decodeKey, key } from '../keys.js';
import { ok, type ApplyTx, type Command, type HandlerTable, type ReadTx } from '../tx.js';
import {
  Budget,
  argBytes,
  argId,
  argObjectKey,
  extKey,
  extPrefix,
  forkKey,
  gcClaimKey,
  gcKey,
  getFork,
  guarded,
  inoKey,
  mappedKey,
  objKey,
  reapKey,
  refuse,
  streamKey,
  type Extent,
  type ForkRecord,
  type GcRecord,
  type Inode,
  type MappedExtent,
  type MappedRecord,
  type ObjectRecord,
  type ReapRecord,
  type StreamRecord,
} from './ns-records.js';

export interface ExtentFamilyOptions {
  /** Extent records one command may touch (default limits.metaExtentsPerCommandMax; tests lower it). */
  extentsPerCommandMax?: number;
}

// ---- reference counts ----

/** Sizes of the objects a command maps, from its `objectSizes` (what the collector frees is counted from them). */
export type ObjectSizes = Map<string, number>;

/**
 * A command's optional `objectSizes: { [objectKey]: bytes }`, the whole size of objects it maps (a
 * new segment): kept in their object records so the collector can report the bytes it frees.
 */
export function argObjectSizes(cmd: Command, max: number): ObjectSizes | undefined {
  const v = cmd.objectSizes;
  if (v === undefined) return undefined;
  if (typeof v !== 'object' || v === null || Array.isArray(v)) refuse('invalid', `${cmd.t}: objectSizes must be a map`);
  const entries = Object.entries(v as Record<string, unknown>);
  if (entries.length > max) refuse('limit', `${cmd.t}: objectSizes has more than ${max} entries`);
  const out: ObjectSizes = new Map();
  for (const [object, bytes] of entries) out.set(argObjectKey(cmd, 'objectSizes', object), argBytes(cmd, `objectSizes[${object}]`, bytes));
  return out;
}

/** Pending reference count changes of one command, applied once at its end (insertion order). */
export type RefDeltas = Map<string, number>;

function bump(d: RefDeltas, object: string, n: number): void {
  d.set(object, (d.get(object) ?? 0) + n);
}

/**
 * Applies reference count changes. An object left with no reference is in 'gc' (also one that a
 * command referenced and unreferenced again, e.g. a writev whose later write covers an earlier one:
 * its segment exists in the store and nothing points to it); a new reference takes it out of 'gc'.
 */
export function applyRefs(tx: ApplyTx, deltas: RefDeltas, sizes?: ObjectSizes): void {
  for (const [object, d] of deltas) {
    const k = objKey(object);
    const rec = tx.get<ObjectRecord>(k);
    const refs = (rec?.refs ?? 0) + d;
    // A negative count means the map and the counts disagree: a bug, never input. The throw makes the
    // state machine roll the command back and report 'internal' on every node alike.
    assert(refs >= 0, `extent refs of ${object} would be ${refs}`);
    if (refs > 0 && d === 0) continue;
    const g = gcKey(object);
    const gone = rec === undefined ? tx.get<GcRecord>(g) : undefined;
    if (refs === 0) {
      if (rec !== undefined) tx.del(k);
      if (gone === undefined) {
        const gc: GcRecord = { since: tx.position };
        if (rec?.bytes !== undefined) gc.bytes = rec.bytes;
        tx.put(g, gc);
      }
    } else {
      // A claimed object (gc.claim, collector.ts) is being deleted from the store: a late command
      // referencing it is refused (its write was never answered) rather than pointing at nothing.
      if (rec === undefined && gone === undefined && tx.get<GcRecord>(gcClaimKey(object)) !== undefined) {
        refuse('stale', `object ${object} is being deleted by the collector`);
      }
      const next: ObjectRecord = { refs };
      const bytes = rec?.bytes ?? gone?.bytes ?? sizes?.get(object);
      if (bytes !== undefined) next.bytes = bytes;
      // Referenced again before the collector deleted it (e.g. a late group-commit write).
      if (gone !== undefined) tx.del(g);
      tx.put(k, next);
    }
  }
}

// ---- reading a window of the map ----

/** The offset part of an ('ext', fork, offset) key: its last 8 bytes. */
function extOffset(k: Buffer): number {
  return Number(k.readBigUInt64BE(k.length - 8));
}

function mapped(k: Buffer, e: Extent): MappedExtent {
  return { offset: extOffset(k), length: e.length, object: e.object, objectOffset: e.objectOffset };
}

interface Window {
  /** The nearest extent starting before `start` (it overlaps the window if it ends after start). */
  before?: MappedExtent;
  /** Extents starting in [start, end), in order. */
  inside: MappedExtent[];
  /** The extent starting exactly at `end` (it may merge with the window's last piece), if asked for. */
  atEnd?: MappedExtent;
}

/**
 * Reads the extents around [start, end); more than `max` inside -> undefined. One reverse scan from
 * `end` down to the first extent before `start`, and (withAtEnd) one point read at `end`: cheaper than
 * two scans, and a random write on a fragmented map touches one or two records.
 */
function readWindow(tx: ReadTx, fork: number, start: number, end: number, max: number, withAtEnd: boolean): Window | undefined {
  const w: Window = { inside: [] };
  for (const [k, e] of tx.range<Extent>(extPrefix(fork), { start: extKey(fork, end), reverse: true, limit: max + 1 })) {
    const m = mapped(k, e);
    if (m.offset < start) {
      w.before = m;
      break;
    }
    if (w.inside.length === max) return undefined;
    w.inside.push(m);
  }
  w.inside.reverse();
  if (withAtEnd) {
    const e = tx.get<Extent>(extKey(fork, end));
    if (e !== undefined) w.atEnd = { offset: end, length: e.length, object: e.object, objectOffset: e.objectOffset };
  }
  return w;
}

const endOf = (e: { offset: number; length: number }): number => e.offset + e.length;

function mergeable(a: MappedExtent, b: MappedExtent): boolean {
  return endOf(a) === b.offset && a.object === b.object && a.objectOffset + a.length === b.objectOffset;
}

function sameExtent(a: MappedExtent, b: MappedExtent): boolean {
  return a.length === b.length && a.object === b.object && a.objectOffset === b.objectOffset;
}

/**
 * Replaces the map of [start, end) by `pieces` (sorted, disjoint, inside the range; none = holes):
 * extents overlapping the range are trimmed or split, neighbours that become contiguous pieces of one
 * object are merged, and reference count changes are added to `deltas`.
 */
export function remap(
  tx: ApplyTx,
  fork: number,
  start: number,
  end: number,
  pieces: readonly MappedExtent[],
  budget: Budget,
  deltas: RefDeltas,
  what: string,
  /** Collects the change of the fork's mapped bytes instead of writing it (the caller writes it once). */
  mappedAcc?: { delta: number },
): void {
  if (end <= start) return;
  const w = readWindow(tx, fork, start, end, budget.left, true);
  if (w === undefined) refuse('limit', `${what}: touches more than ${budget.max} extent records; split the range`);
  budget.take(w.inside.length + pieces.length, what);

  const old: MappedExtent[] = [];
  const seq: MappedExtent[] = [];
  let tail: MappedExtent | undefined;
  const cutTail = (e: MappedExtent): void => {
    if (endOf(e) > end) {
      tail = { offset: end, length: endOf(e) - end, object: e.object, objectOffset: e.objectOffset + (end - e.offset) };
    }
  };
  if (w.before !== undefined) {
    const b = w.before;
    if (endOf(b) > start) {
      old.push(b);
      seq.push({ offset: b.offset, length: start - b.offset, object: b.object, objectOffset: b.objectOffset });
      cutTail(b);
    } else if (endOf(b) === start) {
      old.push(b); // unchanged unless it merges with the first piece
      seq.push(b);
    }
  }
  for (const e of w.inside) {
    old.push(e);
    cutTail(e);
  }
  for (const p of pieces) seq.push(p);
  if (tail !== undefined) seq.push(tail);
  else if (w.atEnd !== undefined) {
    old.push(w.atEnd);
    seq.push(w.atEnd);
  }

  const merged: MappedExtent[] = [];
  for (const e of seq) {
    const last = merged[merged.length - 1];
    if (last !== undefined && mergeable(last, e)) merged[merged.length - 1] = { ...last, length: last.length + e.length };
    else merged.push(e);
  }

  // Write the difference: unchanged records stay, everything else is put or deleted.
  const byOffset = new Map<number, MappedExtent>();
  for (const e of old) byOffset.set(e.offset, e);
  for (const n of merged) {
    const o = byOffset.get(n.offset);
    if (o !== undefined) {
      byOffset.delete(n.offset);
      if (sameExtent(o, n)) continue;
      bump(deltas, o.object, -1);
    }
    tx.put(extKey(fork, n.offset), { length: n.length, object: n.object, objectOffset: n.objectOffset } satisfies Extent);
    bump(deltas, n.object, +1);
  }
  for (const o of byOffset.values()) {
    tx.del(extKey(fork, o.offset));
    bump(deltas, o.object, -1);
  }

  // The fork's mapped bytes change by what the window maps now minus what it mapped before.
  let delta = 0;
  for (const n of merged) delta += n.length;
  for (const o of old) delta -= o.length;
  if (mappedAcc !== undefined) mappedAcc.delta += delta;
  else if (delta !== 0) adjustMapped(tx, fork, delta);
}

/** Extents a fork's map may hold for its mapped bytes to be counted when counting starts. */
export const MAPPED_COUNT_SCAN_MAX = 4096;

/**
 * Adds `delta` to a fork's mapped bytes (the map has already changed). A fork without a record yet
 * is counted once from its map as it now stands, if that map is small (new forks: empty); a larger
 * one is marked unknown for good, so no later command scans it again.
 */
export function adjustMapped(tx: ApplyTx, fork: number, delta: number): void {
  const k = mappedKey(fork);
  const rec = tx.get<MappedRecord>(k);
  if (rec !== undefined) {
    if (rec.bytes === undefined) return;
    const bytes = rec.bytes + delta;
    assert(bytes >= 0, `mapped bytes of fork ${fork} would be ${bytes}`);
    tx.put(k, { bytes } satisfies MappedRecord);
    return;
  }
  let bytes = 0;
  let n = 0;
  for (const [, e] of tx.range<Extent>(extPrefix(fork), { limit: MAPPED_COUNT_SCAN_MAX + 1 })) {
    if (++n > MAPPED_COUNT_SCAN_MAX) {
      tx.put(k, {} satisfies MappedRecord);
      return;
    }
    bytes += e.length;
  }
  tx.put(k, { bytes } satisfies MappedRecord);
}

/** Bytes the extents of `fork` map, or undefined when not known (see MappedRecord). */
export function mappedBytes(tx: ReadTx, fork: number): number | undefined {
  const rec = tx.get<MappedRecord>(mappedKey(fork));
  if (rec !== undefined) return rec.bytes;
  // Never counted: no command changed the map since counting exists; a new fork's map is empty.
  let bytes = 0;
  let n = 0;
  for (const [, e] of tx.range<Extent>(extPrefix(fork), { limit: MAPPED_COUNT_SCAN_MAX + 1 })) {
    if (++n > MAPPED_COUNT_SCAN_MAX) return undefined;
    bytes += e.length;
  }
  return bytes;
}

/**
 * Frees a fork whose owner is gone (ns.unlink, ns.stream.delete): its map if that fits the budget
 * (the fork record is deleted), else the fork goes to the reap queue whole and ext.reap frees it in
 * slices. Returns true if it was queued. A queued fork exhausts the budget, so a command frees at
 * most one budget's worth of extents and reads at most one more record per further fork.
 */
export function dropFork(tx: ApplyTx, fork: number, ino: number, budget: Budget, deltas: RefDeltas): boolean {
  const recs = [...tx.range<Extent>(extPrefix(fork), { limit: budget.left + 1 })];
  tx.del(forkKey(fork));
  tx.del(mappedKey(fork));
  if (recs.length > budget.left) {
    budget.left = 0;
    tx.put(reapKey(fork), { ino, since: tx.position } satisfies ReapRecord);
    return true;
  }
  budget.take(recs.length, 'drop fork');
  for (const [k, e] of recs) {
    tx.del(k);
    bump(deltas, e.object, -1);
  }
  return false;
}

// ---- the owner's size ----

function ownerSize(tx: ReadTx, f: ForkRecord): number {
  if (f.stream !== undefined) {
    const s = tx.get<StreamRecord>(streamKey(f.ino, f.stream));
    assert(s !== undefined, `fork owner stream ${f.ino}:${f.stream} exists`);
    return s.size;
  }
  const i = tx.get<Inode>(inoKey(f.ino));
  assert(i !== undefined, `fork owner inode ${f.ino} exists`);
  return i.size;
}

function setOwnerSize(tx: ApplyTx, f: ForkRecord, size: number): void {
  if (f.stream !== undefined) {
    const k = streamKey(f.ino, f.stream);
    const s = tx.get<StreamRecord>(k)!;
    if (s.size !== size) tx.put(k, { ...s, size });
    return;
  }
  const k = inoKey(f.ino);
  const i = tx.get<Inode>(k)!;
  if (i.size !== size) tx.put(k, { ...i, size });
}

function argFork(tx: ReadTx, cmd: Command, field: string): ForkRecord {
  const fork = argId(cmd, field);
  const f = getFork(tx, fork);
  if (f === undefined) refuse('not-found', `${cmd.t}: fork ${fork} does not exist`);
  return f;
}

interface WriteArgs {
  offset: number;
  length: number;
  object: string;
  objectOffset: number;
}

function argWrite(cmd: Command, w: unknown, at: string): WriteArgs {
  if (typeof w !== 'object' || w === null) refuse('invalid', `${cmd.t}: ${at} must be an object`);
  const r = w as Record<string, unknown>;
  const offset = argBytes(cmd, `${at}.offset`, r.offset);
  const length = argBytes(cmd, `${at}.length`, r.length);
  if (length === 0) refuse('invalid', `${cmd.t}: ${at}.length must be > 0`);
  if (offset + length > limits.metaFileBytesMax) refuse('limit', `${cmd.t}: ${at} ends beyond ${limits.metaFileBytesMax}`);
  const object = argObjectKey(cmd, `${at}.object`, r.object);
  const objectOffset = argBytes(cmd, `${at}.objectOffset`, r.objectOffset);
  return { offset, length, object, objectOffset };
}

// ---- handlers ----

export function createExtentHandlers(opts: ExtentFamilyOptions = {}): HandlerTable {
  const perCommand = opts.extentsPerCommandMax ?? limits.metaExtentsPerCommandMax;
  assert(Number.isSafeInteger(perCommand) && perCommand >= 1, 'extentsPerCommandMax >= 1');

  const writeAll = (tx: ApplyTx, cmd: Command, writes: WriteArgs[]): ReturnType<typeof ok> => {
    const fork = argId(cmd, 'fork');
    const f = argFork(tx, cmd, 'fork');
    const budget = new Budget(perCommand);
    const deltas: RefDeltas = new Map();
    const mapped = { delta: 0 };
    let end = 0;
    for (const w of writes) {
      const piece: MappedExtent = { offset: w.offset, length: w.length, object: w.object, objectOffset: w.objectOffset };
      remap(tx, fork, w.offset, w.offset + w.length, [piece], budget, deltas, cmd.t, mapped);
      end = Math.max(end, w.offset + w.length);
    }
    if (mapped.delta !== 0) adjustMapped(tx, fork, mapped.delta);
    applyRefs(tx, deltas, argObjectSizes(cmd, perCommand));
    const size = Math.max(ownerSize(tx, f), end);
    setOwnerSize(tx, f, size);
    return ok({ size });
  };

  return {
    /**
     * ext.write { fork, offset, length, object, objectOffset } -> { size }: maps [offset, offset+length)
     * to object bytes [objectOffset, objectOffset+length), replacing what was mapped there; the
     * owner's end of file becomes max(size, offset+length) (a WRITE past EOF extends the file).
     */
    'ext.write': guarded((tx, cmd) => writeAll(tx, cmd, [argWrite(cmd, cmd, 'write')])),

    /** ext.writev { fork, writes: [{ offset, length, object, objectOffset }] } -> { size }: in order. */
    'ext.writev': guarded((tx, cmd) => {
      const ws = cmd.writes;
      if (!Array.isArray(ws) || ws.length === 0) refuse('invalid', `${cmd.t}: writes must be a non-empty array`);
      if (ws.length > limits.metaExtentWritesPerBatchMax) {
        refuse('limit', `${cmd.t}: ${ws.length} writes exceed ${limits.metaExtentWritesPerBatchMax}`);
      }
      return writeAll(tx, cmd, ws.map((w, i) => argWrite(cmd, w, `writes[${i}]`)));
    }),

    /**
     * ext.punch { fork, offset, length }: unmaps the range (reads of it return zeros; FSCTL_SET_ZERO_DATA,
     * TRIM); the size is unchanged.
     */
    'ext.punch': guarded((tx, cmd) => {
      const fork = argId(cmd, 'fork');
      const offset = argBytes(cmd, 'offset');
      const length = argBytes(cmd, 'length');
      argFork(tx, cmd, 'fork');
      const end = Math.min(offset + length, limits.metaFileBytesMax);
      const deltas: RefDeltas = new Map();
      remap(tx, fork, offset, end, [], new Budget(perCommand), deltas, cmd.t);
      applyRefs(tx, deltas);
      return ok();
    }),

    /** ext.truncate { fork, size }: sets the end of file; what is mapped at or beyond it is freed. */
    'ext.truncate': guarded((tx, cmd) => {
      const fork = argId(cmd, 'fork');
      const size = argBytes(cmd, 'size');
      const f = argFork(tx, cmd, 'fork');
      const deltas: RefDeltas = new Map();
      remap(tx, fork, size, limits.metaFileBytesMax, [], new Budget(perCommand), deltas, cmd.t);
      applyRefs(tx, deltas);
      setOwnerSize(tx, f, size);
      return ok();
    }),

    /**
     * ext.clone { srcFork, srcOffset, dstFork, dstOffset, length }: the destination range maps what
     * the source range maps (holes included), sharing the objects (refs + 1 per copied extent);
     * FSCTL_DUPLICATE_EXTENTS_TO_FILE, MS-FSA 2.1.5.10.4. Refused ('invalid') as MS-FSCC 2.3.7/2.3.8
     * and the block-cloning rules require: overlapping ranges in one fork, a source range beyond the
     * source's end of file, a destination range beyond the destination's end of file (the caller
     * extends the file first).
     */
    'ext.clone': guarded((tx, cmd) => {
      const srcFork = argId(cmd, 'srcFork');
      const dstFork = argId(cmd, 'dstFork');
      const srcOffset = argBytes(cmd, 'srcOffset');
      const dstOffset = argBytes(cmd, 'dstOffset');
      const length = argBytes(cmd, 'length');
      const sf = argFork(tx, cmd, 'srcFork');
      const df = argFork(tx, cmd, 'dstFork');
      if (srcFork === dstFork && srcOffset < dstOffset + length && dstOffset < srcOffset + length && length > 0) {
        refuse('invalid', `${cmd.t}: source and destination ranges overlap in one fork`);
      }
      if (srcOffset + length > ownerSize(tx, sf)) refuse('invalid', `${cmd.t}: source range is beyond the source's end of file`);
      if (dstOffset + length > ownerSize(tx, df)) refuse('invalid', `${cmd.t}: destination range is beyond the destination's end of file`);
      if (length === 0) return ok();
      const budget = new Budget(perCommand);
      const srcEnd = srcOffset + length;
      const w = readWindow(tx, srcFork, srcOffset, srcEnd, budget.left, false);
      if (w === undefined) refuse('limit', `${cmd.t}: source range holds more than ${budget.max} extents; split it`);
      budget.take(w.inside.length, cmd.t);
      const shift = dstOffset - srcOffset;
      const pieces: MappedExtent[] = [];
      const src = w.before !== undefined && endOf(w.before) > srcOffset ? [w.before, ...w.inside] : w.inside;
      for (const e of src) {
        const s = Math.max(e.offset, srcOffset);
        const t = Math.min(endOf(e), srcEnd);
        if (t <= s) continue;
        pieces.push({ offset: s + shift, length: t - s, object: e.object, objectOffset: e.objectOffset + (s - e.offset) });
      }
      const deltas: RefDeltas = new Map();
      remap(tx, dstFork, dstOffset, dstOffset + length, pieces, budget, deltas, cmd.t);
      applyRefs(tx, deltas);
      return ok();
    }),

    /**
     * ext.reap { fork } -> { freed, done }: frees up to one budget of extents of a fork in the reap
     * queue (an unlinked file's map too large to free in the unlink); done once the queue entry is gone.
     */
    'ext.reap': guarded((tx, cmd) => {
      const fork = argId(cmd, 'fork');
      const rk = reapKey(fork);
      if (tx.get<ReapRecord>(rk) === undefined) refuse('not-found', `${cmd.t}: fork ${fork} is not in the reap queue`);
      const recs = [...tx.range<Extent>(extPrefix(fork), { limit: perCommand + 1 })];
      const take = recs.slice(0, perCommand);
      const deltas: RefDeltas = new Map();
      for (const [k, e] of take) {
        tx.del(k);
        bump(deltas, e.object, -1);
      }
      applyRefs(tx, deltas);
      const done = recs.length <= perCommand;
      if (done) tx.del(rk);
      return ok({ freed: take.length, done });
    }),
  };
}

export const extentHandlers: HandlerTable = createExtentHandlers();

// ---- read helpers (pure functions over ReadTx) ----

function checkLimit(limit: number): void {
  assert(Number.isSafeInteger(limit) && limit >= 1 && limit <= limits.metaReadEntriesMax, `read limit ${limit} in 1..${limits.metaReadEntriesMax}`);
}

/**
 * Extents of `fork` overlapping [offset, offset+length), in order, as stored (not clipped): the one
 * starting before offset that overlaps it included. At most `limit`: a caller that gets `limit`
 * entries continues from the end of the last one.
 */
export function extentsIn(tx: ReadTx, fork: number, offset: number, length: number, limit: number = limits.metaReadEntriesMax): MappedExtent[] {
  checkLimit(limit);
  if (length <= 0) return [];
  const end = offset + length;
  const out: MappedExtent[] = [];
  for (const [k, e] of tx.range<Extent>(extPrefix(fork), { start: extKey(fork, offset), reverse: true, limit: 1 })) {
    const m = mapped(k, e);
    if (endOf(m) > offset) out.push(m);
  }
  for (const [k, e] of tx.range<Extent>(extPrefix(fork), { start: extKey(fork, offset), limit })) {
    if (out.length >= limit) break;
    const m = mapped(k, e);
    if (m.offset >= end) break;
    out.push(m);
  }
  return out;
}

/**
 * Mapped (allocated) ranges within [offset, offset+length), clipped to it, neighbours coalesced
 * (FSCTL_QUERY_ALLOCATED_RANGES, MS-FSCC 2.3.47). At most `limit` extents are read.
 */
export function allocatedRanges(
  tx: ReadTx,
  fork: number,
  offset: number,
  length: number,
  limit: number = limits.metaReadEntriesMax,
): { offset: number; length: number }[] {
  const end = offset + length;
  const out: { offset: number; length: number }[] = [];
  for (const e of extentsIn(tx, fork, offset, length, limit)) {
    const s = Math.max(e.offset, offset);
    const t = Math.min(endOf(e), end);
    const last = out[out.length - 1];
    if (last !== undefined && endOf(last) === s) last.length += t - s;
    else out.push({ offset: s, length: t - s });
  }
  return out;
}

/**
 * Where to cut [offset, end) so that remapping [offset, cut) touches at most `max` extent records:
 * the start of the (max+1)-th extent overlapping the range, or `end`. Callers split a punch or a
 * shrinking truncate (punch [size, oldSize) in steps, then truncate) with it; a clone counts source
 * and destination extents, so split it with max = half the budget.
 */
export function boundedEnd(tx: ReadTx, fork: number, offset: number, end: number, max: number = limits.metaExtentsPerCommandMax): number {
  assert(Number.isSafeInteger(max) && max >= 1, 'boundedEnd: max >= 1');
  if (end <= offset) return end;
  const over = extentsIn(tx, fork, offset, end - offset, Math.min(max + 1, limits.metaReadEntriesMax));
  return over.length > max ? over[max]!.offset : end;
}

/** Number of extent records pointing into `object` (0 if none). */
export function objectRefs(tx: ReadTx, object: string): number {
  if (object.length === 0 || object.includes('\u0000')) return 0;
  return tx.get<ObjectRecord>(objKey(object))?.refs ?? 0;
}

/** Unreferenced objects, in key order, for the collector. */
export function gcCandidates(tx: ReadTx, limit: number): { object: string; since: number; bytes?: number }[] {
  checkLimit(limit);
  const out: { object: string; since: number; bytes?: number }[] = [];
  for (const [k, g] of tx.range<GcRecord>(key('gc'), { limit })) {
    const object = decodeKey(k)[1] as string;
    out.push(g.bytes === undefined ? { object, since: g.since } : { object, since: g.since, bytes: g.bytes });
  }
  return out;
}

/** Forks of unlinked files still holding extents (free them with ext.reap), in fork order. */
export function reapCandidates(tx: ReadTx, limit: number): { fork: number; ino: number; since: number }[] {
  checkLimit(limit);
  const out: { fork: number; ino: number; since: number }[] = [];
  for (const [k, r] of tx.range<ReapRecord>(key('reap'), { limit })) {
    out.push({ fork: extOffset(k), ino: r.ino, since: r.since });
  }
  return out;
}
