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

/** A block of an ExtentList is split in two beyond this many extents. */
const BLOCK_EXTENTS_MAX = 512;

/**
 * A fork's extents (sorted, disjoint) in blocks of at most BLOCK_EXTENTS_MAX: a change costs a binary
 * search over blocks and within one, and a splice of one short array, not a move of the whole map
 * (a fragmented VHDX holds tens of thousands of extents and random writes change a few per batch).
 */
export class ExtentList {
  /** Non-empty blocks in offset order (none when the list is empty). */
  private readonly blocks: MappedExtent[][] = [];
  private count = 0;

  constructor(sorted: readonly MappedExtent[]) {
    for (let i = 0; i < sorted.length; i += BLOCK_EXTENTS_MAX / 2) this.blocks.push(sorted.slice(i, i + BLOCK_EXTENTS_MAX / 2));
    this.count = sorted.length;
  }

  get length(): number {
    return this.count;
  }

  /** Index of the block that holds, or would hold, an extent starting at `offset`. */
  private blockFor(offset: number): number {
    let lo = 0;
    let hi = this.blocks.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if (this.blocks[mid]![0]!.offset <= offset) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  /** Puts (value) or removes (undefined) the extent starting at `offset`. */
  set(offset: number, value: MappedExtent | undefined): void {
    if (this.blocks.length === 0) {
      if (value !== undefined) {
        this.blocks.push([value]);
        this.count = 1;
      }
      return;
    }
    const bi = this.blockFor(offset);
    const block = this.blocks[bi]!;
    const i = lowerIndex(block, offset);
    const here = i < block.length && block[i]!.offset === offset;
    if (value === undefined) {
      if (!here) return;
      block.splice(i, 1);
      this.count--;
      if (block.length === 0) this.blocks.splice(bi, 1);
      return;
    }
    if (here) {
      block[i] = value;
      return;
    }
    block.splice(i, 0, value);
    this.count++;
    if (block.length > BLOCK_EXTENTS_MAX) this.blocks.splice(bi + 1, 0, block.splice(BLOCK_EXTENTS_MAX / 2));
  }

  /** The extents that overlap [offset, end), in order. */
  overlapping(offset: number, end: number): MappedExtent[] {
    const out: MappedExtent[] = [];
    if (this.blocks.length === 0 || end <= offset) return out;
    // The last block starting at or before offset (its extents before offset end by the next
    // block's start); in it, the extent just before offset may reach into the range.
    let bi = this.blockFor(offset);
    let i = lowerIndex(this.blocks[bi]!, offset);
    if (i > 0) i--;
    for (; bi < this.blocks.length; bi++, i = 0) {
      const block = this.blocks[bi]!;
      for (; i < block.length; i++) {
        const e = block[i]!;
        if (e.offset >= end) return out;
        if (e.offset + e.length > offset) out.push(e);
      }
    }
    return out;
  }

  /** Every extent, in order (tests). */
  toArray(): MappedExtent[] {
    return this.blocks.flat();
  }
}

export interface ForkView {
  ino: number;
  size: number;
  /** The fork's extents in offset order, or undefined when there are too many to keep. */
  extents: ExtentList | undefined;
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
      return { ino: s.ino, size: s.size, extents: extents.length > MAP_CACHE_EXTENTS_PER_FORK ? undefined : new ExtentList(extents) };
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

  /** Applies changed extent records (absent value: deleted) to a fork's entry. */
  private patch(fork: number, changes: ExtentChange[]): void {
    const v = this.entries.get(fork);
    if (v === undefined) return;
    this.stats.patches++;
    const list = v.extents;
    if (list === undefined) return; // size only: reads scan the map anyway
    const before = list.length;
    for (const c of changes) list.set(c.offset, c.value === undefined ? undefined : toMapped(c.offset, c.value));
    this.held += list.length - before;
    if (list.length > MAP_CACHE_EXTENTS_PER_FORK) {
      this.held -= list.length;
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
