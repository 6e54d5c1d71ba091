// What a READ of a chunked file needs from the metadata state, kept in memory between changes: the
// fork's size and its extent map. Without it every READ made a consistent read of the state (the
// fork, inode or stream records and two range scans of the map), more CPU than the rest of a read
// served from the block cache.
//
// Validity. An entry is built from one consistent read of the applied state and kept current by
// watches (MetaService.watch) on every key family it was built from: changed ('ext', fork, offset)
// records are read again and patched into the entry (a write does not cost the next read a scan of
// the whole map); a change of ('ino', ino) or ('stream', ino, name) reads the size again; a change
// of ('fork', fork) drops the entry. Watches run
// synchronously while a batch is applied (service.ts onApplied, after the LMDB commit and before any
// proposer's promise settles), so no read can see the new state while an entry still holds the old
// one, and a write is answered only after the entries it changed are gone: reads after an answered
// write always see it, on this node as on every other (each node applies the log and fires its own
// watches). A restored snapshot changes everything at once without watches: meta.restoreCount
// empties the cache.
//
// Bounds: forks with more than MAP_CACHE_EXTENTS_PER_FORK extents keep only their size (reads scan
// the map as before); at most MAP_CACHE_EXTENTS extents in all, least recently used forks go first.
import { limits } from '../../base/limits.js';
import { decodeKey, key } from '../../meta/keys.js';
import { decodeRecord } from '../../meta/tx.js';
import { extentsIn } from '../../meta/families/extents.js';
import type { Extent, MappedExtent } from '../../meta/families/ns-records.js';
import type { MetaService } from '../../meta/service.js';
import type { ReadTx } from '../../meta/tx.js';

/** Extents one fork may keep in the cache (a more fragmented map is read from the state); one read
 *  of the state builds an entry, and reads at most limits.metaReadEntriesMax records. */
export const MAP_CACHE_EXTENTS_PER_FORK = limits.metaReadEntriesMax - 1;
/** Extents kept in all (about 100 bytes each). */
export const MAP_CACHE_EXTENTS = 262_144;

/** Changes up to this many are spliced into an entry's list; more are merged in one pass. */
const PATCH_SPLICE_MAX = 4;

interface ExtentChange {
  offset: number;
  value: Extent | undefined;
}

const toMapped = (offset: number, e: Extent): MappedExtent => ({ offset, length: e.length, object: e.object, objectOffset: e.objectOffset });

/** Index of the first extent of `list` starting at or after `offset`. */
function lowerIndex(list: readonly MappedExtent[], offset: number): number {
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (list[mid]!.offset < offset) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Applies `changes` in place (each a binary search and a splice): for a few. */
function spliceChanges(list: MappedExtent[], changes: readonly ExtentChange[]): MappedExtent[] {
  for (const c of changes) {
    const lo = lowerIndex(list, c.offset);
    const here = lo < list.length && list[lo]!.offset === c.offset;
    if (c.value === undefined) {
      if (here) list.splice(lo, 1);
    } else if (here) list[lo] = toMapped(c.offset, c.value);
    else list.splice(lo, 0, toMapped(c.offset, c.value));
  }
  return list;
}

/** A new list: `list` merged with `changes` (ascending offsets) in one pass; the untouched run before
 *  the first change is copied in bulk. */
function mergeChanges(list: readonly MappedExtent[], changes: readonly ExtentChange[]): MappedExtent[] {
  let i = lowerIndex(list, changes[0]!.offset);
  const out = list.slice(0, i);
  for (const c of changes) {
    while (i < list.length && list[i]!.offset < c.offset) out.push(list[i++]!);
    if (i < list.length && list[i]!.offset === c.offset) i++;
    if (c.value !== undefined) out.push(toMapped(c.offset, c.value));
  }
  while (i < list.length) out.push(list[i++]!);
  return out;
}

export interface ForkView {
  ino: number;
  size: number;
  /** The fork's extents in offset order, or undefined when there are too many to keep. */
  extents: MappedExtent[] | undefined;
}

export class ForkMapCache {
  /** LRU order: a hit re-inserts. */
  private readonly entries = new Map<number, ForkView>();
  /** Forks with an entry, by inode (an inode or stream record change drops them). */
  private readonly byIno = new Map<number, Set<number>>();
  private held = 0;
  private restores: number;
  private readonly stopWatches: (() => void)[];
  /** Entries built, and reads answered from an entry. */
  readonly stats = { builds: 0, hits: 0, drops: 0, patches: 0 };

  constructor(
    private readonly meta: MetaService,
    private readonly state: (tx: ReadTx, fork: number) => { ino: number; size: number } | undefined,
  ) {
    this.restores = meta.restoreCount;
    // Extent records changed: the entry is patched with the records as the batch left them (the
    // watch hands them over), so a write does not make the next read scan the whole map again.
    const byExt = (keys: Buffer[], _position: number, values: (Buffer | null)[]): void => {
      if (this.entries.size === 0) return;
      // Keys come in byte order: one fork's keys are one run, in ascending offset.
      let i = 0;
      while (i < keys.length) {
        const fork = decodeKey(keys[i]!)[1] as number;
        let j = i + 1;
        while (j < keys.length && keys[j]!.length === keys[i]!.length && keys[j]!.compare(keys[i]!, 0, keys[i]!.length - 8, 0, keys[j]!.length - 8) === 0) j++;
        if (this.entries.has(fork)) {
          try {
            const changes: ExtentChange[] = [];
            for (let x = i; x < j; x++) {
              const v = values[x];
              changes.push({ offset: Number(keys[x]!.readBigUInt64BE(keys[x]!.length - 8)), value: v === null || v === undefined ? undefined : decodeRecord<Extent>(v) });
            }
            this.patch(fork, changes);
          } catch {
            this.dropFork(fork);
          }
        }
        i = j;
      }
    };
    const byFork = (keys: Buffer[]): void => {
      if (this.entries.size === 0) return;
      for (const k of keys) this.dropFork(decodeKey(k)[1] as number);
    };
    // The size comes from the inode or stream record: read it again (times and attributes change
    // these records too, and a write past the end of file).
    const byIno = (keys: Buffer[]): void => {
      if (this.entries.size === 0) return;
      const forks = new Set<number>();
      for (const k of keys) for (const f of this.byIno.get(decodeKey(k)[1] as number) ?? []) forks.add(f);
      if (forks.size === 0) return;
      try {
        this.meta.read((tx) => {
          for (const fork of forks) {
            const v = this.entries.get(fork);
            const st = v === undefined ? undefined : this.state(tx, fork);
            if (v === undefined || st === undefined || st.ino !== v.ino) this.dropFork(fork);
            else v.size = st.size;
          }
        });
      } catch {
        for (const fork of forks) this.dropFork(fork);
      }
    };
    this.stopWatches = [meta.watch(key('ext'), byExt), meta.watch(key('fork'), byFork), meta.watch(key('ino'), byIno), meta.watch(key('stream'), byIno)];
  }

  /** Stops watching (the share closes). */
  close(): void {
    for (const stop of this.stopWatches) stop();
    this.clear();
  }

  /** The fork's size and map as applied now; undefined if the fork is gone. */
  view(fork: number): ForkView | undefined {
    if (this.meta.restoreCount !== this.restores) {
      this.restores = this.meta.restoreCount;
      this.clear();
    }
    const hit = this.entries.get(fork);
    if (hit !== undefined) {
      this.entries.delete(fork);
      this.entries.set(fork, hit);
      this.stats.hits++;
      return hit;
    }
    const v = this.meta.read((tx): ForkView | undefined => {
      const s = this.state(tx, fork);
      if (s === undefined) return undefined;
      const extents = s.size === 0 ? [] : extentsIn(tx, fork, 0, s.size, MAP_CACHE_EXTENTS_PER_FORK + 1);
      return { ino: s.ino, size: s.size, extents: extents.length > MAP_CACHE_EXTENTS_PER_FORK ? undefined : extents };
    });
    if (v === undefined) return undefined;
    this.stats.builds++;
    this.entries.set(fork, v);
    let set = this.byIno.get(v.ino);
    if (set === undefined) this.byIno.set(v.ino, (set = new Set()));
    set.add(fork);
    this.held += v.extents?.length ?? 0;
    while (this.held > MAP_CACHE_EXTENTS && this.entries.size > 1) {
      const oldest = this.entries.keys().next().value as number;
      this.dropFork(oldest);
    }
    return v;
  }

  /**
   * Applies changed extent records (absent value: deleted; ascending offsets) to a fork's entry: a
   * few by binary search and splice, more in one merge pass over the list.
   */
  private patch(fork: number, changes: ExtentChange[]): void {
    const v = this.entries.get(fork);
    if (v === undefined) return;
    this.stats.patches++;
    const list = v.extents;
    if (list === undefined) return; // size only: reads scan the map anyway
    const before = list.length;
    const next = changes.length <= PATCH_SPLICE_MAX ? spliceChanges(list, changes) : mergeChanges(list, changes);
    v.extents = next;
    this.held += next.length - before;
    if (next.length > MAP_CACHE_EXTENTS_PER_FORK) {
      this.held -= next.length;
      v.extents = undefined;
    }
    while (this.held > MAP_CACHE_EXTENTS && this.entries.size > 1) {
      const oldest = this.entries.keys().next().value as number;
      if (oldest === fork) break;
      this.dropFork(oldest);
    }
  }

  private dropFork(fork: number): void {
    const v = this.entries.get(fork);
    if (v === undefined) return;
    this.entries.delete(fork);
    this.held -= v.extents?.length ?? 0;
    this.stats.drops++;
    const set = this.byIno.get(v.ino);
    set?.delete(fork);
    if (set?.size === 0) this.byIno.delete(v.ino);
  }

  private clear(): void {
    this.entries.clear();
    this.byIno.clear();
    this.held = 0;
  }
}

/** The extents of `extents` (sorted, disjoint) that overlap [offset, end). */
export function overlapping(extents: readonly MappedExtent[], offset: number, end: number): MappedExtent[] {
  // The first extent ending after offset (binary search on ends: sorted and disjoint).
  let lo = 0;
  let hi = extents.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const e = extents[mid]!;
    if (e.offset + e.length <= offset) lo = mid + 1;
    else hi = mid;
  }
  const out: MappedExtent[] = [];
  for (let i = lo; i < extents.length; i++) {
    const e = extents[i]!;
    if (e.offset >= end) break;
    out.push(e);
  }
  return out;
}
