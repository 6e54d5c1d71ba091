// What a READ of a chunked file needs from the metadata state, kept in memory between changes: the
// fork's size and its extent map. Without it every READ made a consistent read of the state (the
// fork, inode or stream records and two range scans of the map), more CPU than the rest of a read
// served from the block cache.
//
// Validity. An entry is built from one consistent read of the applied state. It is dropped by a
// watch (MetaService.watch) on every key family it was built from: ('ext', fork), ('mapped', fork) is
// not read; ('fork', fork), ('ino', ino) and ('stream', ino, name) give the size. Watches run
// synchronously while a batch is applied (service.ts onApplied, after the LMDB commit and before any
// proposer's promise settles), so no read can see the new state while an entry still holds the old
// one, and a write is answered only after the entries it changed are gone: reads after an answered
// write always see it, on this node as on every other (each node applies the log and fires its own
// watches). A restored snapshot changes everything at once without watches: meta.restoreCount
// empties the cache.
//
// Bounds: forks with more than MAP_CACHE_EXTENTS_PER_FORK extents keep only their size (reads scan
// the map as before); at most MAP_CACHE_EXTENTS extents in all, least recently used forks go first.
import { decodeKey, key } from '../../meta/keys.js';
import { extentsIn } from '../../meta/families/extents.js';
import type { MappedExtent } from '../../meta/families/ns-records.js';
import type { MetaService } from '../../meta/service.js';
import type { ReadTx } from '../../meta/tx.js';

/** Extents one fork may keep in the cache (a more fragmented map is read from the state). */
export const MAP_CACHE_EXTENTS_PER_FORK = 4096;
/** Extents kept in all (about 100 bytes each). */
export const MAP_CACHE_EXTENTS = 262_144;

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
  readonly stats = { builds: 0, hits: 0, drops: 0 };

  constructor(
    private readonly meta: MetaService,
    private readonly state: (tx: ReadTx, fork: number) => { ino: number; size: number } | undefined,
  ) {
    this.restores = meta.restoreCount;
    const byFork = (keys: Buffer[]): void => {
      if (this.entries.size === 0) return;
      for (const k of keys) this.dropFork(decodeKey(k)[1] as number);
    };
    const byIno = (keys: Buffer[]): void => {
      if (this.entries.size === 0) return;
      for (const k of keys) this.dropIno(decodeKey(k)[1] as number);
    };
    this.stopWatches = [meta.watch(key('ext'), byFork), meta.watch(key('fork'), byFork), meta.watch(key('ino'), byIno), meta.watch(key('stream'), byIno)];
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

  private dropIno(ino: number): void {
    const set = this.byIno.get(ino);
    if (set === undefined) return;
    for (const fork of [...set]) this.dropFork(fork);
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
