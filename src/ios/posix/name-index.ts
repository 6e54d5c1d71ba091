// Case-insensitive name lookup for large directories.
//
// The fast path is an exact-name lstat. When that misses, the directory's index (folded name →
// stored names) answers; it is built with one readdir and then MAINTAINED by the driver's own
// create/rename/remove calls, so a 100k-entry directory is read once, not on every miss.
//
// Freshness: an index is valid while the directory's mtime equals the mtime recorded with it. After
// each of its own changes the driver applies the change to the index and records the directory's new
// mtime, but only when the mtime seen just before the change is one the index knows (its build mtime
// or one recorded after an own change); otherwise somebody else changed the directory and the index is
// dropped, to be rebuilt on the next miss.
// Known window: a foreign change that lands in the same timestamp tick as an own change (or between
// the lstat before an own change and the change) is not noticed until the directory's mtime moves
// again. Names created that way are still found by their exact case.
//
// Bounded: at most limits.nameCacheDirectoriesMax directories are indexed (least recently used out).
import type { BigIntStats } from 'node:fs';
import { fold, STATE_DIR_FOLDED } from './paths.js';
import { toIosError } from './errno.js';
import { lstat, readdirTyped } from './syscalls.js';

/** Mtimes recorded after own changes that still count as "ours" (covers overlapping own changes). */
const ownMtimesMax = 8;

interface DirIndex {
  mtimeNs: bigint;
  ownMtimesNs: bigint[];
  /** folded → stored name, or several stored names when they fold equal. */
  names: Map<string, string | string[]>;
}

function keyOf(st: BigIntStats): string {
  return `${st.dev}:${st.ino}`;
}

function addName(names: Map<string, string | string[]>, name: string): void {
  const key = fold(name);
  const cur = names.get(key);
  if (cur === undefined) names.set(key, name);
  else if (typeof cur === 'string') {
    if (cur !== name) names.set(key, [cur, name]);
  } else if (!cur.includes(name)) cur.push(name);
}

function removeName(names: Map<string, string | string[]>, name: string): void {
  const key = fold(name);
  const cur = names.get(key);
  if (cur === undefined) return;
  if (typeof cur === 'string') {
    if (cur === name) names.delete(key);
    return;
  }
  const rest = cur.filter((n) => n !== name);
  if (rest.length === 0) names.delete(key);
  else names.set(key, rest.length === 1 ? rest[0]! : rest);
}

export class NameIndexCache {
  // Map iteration order is insertion order: re-inserting on use makes the first key the LRU one.
  private readonly dirs = new Map<string, DirIndex>();
  private readonly building = new Map<string, Promise<DirIndex>>();

  constructor(private readonly dirsMax: number) {}

  /** Number of directories currently indexed (for tests and metrics). */
  get size(): number {
    return this.dirs.size;
  }

  /**
   * Stored names in directory `dirAbs` (whose lstat is `dirSt`, taken during this resolution) that
   * fold equal to `folded`. `isRoot` hides the driver's state directory.
   */
  async candidates(dirAbs: string, dirSt: BigIntStats, isRoot: boolean, folded: string): Promise<readonly string[]> {
    const index = await this.get(dirAbs, dirSt, isRoot);
    const hit = index.names.get(folded);
    if (hit === undefined) return [];
    return typeof hit === 'string' ? [hit] : hit;
  }

  /**
   * Applies an own change (names removed, then names added) to the index of the directory `dirAbs`.
   * `beforeSt` is the directory's lstat taken before the change. Call after the change succeeded.
   */
  async noteChange(dirAbs: string, beforeSt: BigIntStats, added: readonly string[], removed: readonly string[]): Promise<void> {
    const key = keyOf(beforeSt);
    const index = this.dirs.get(key);
    if (index === undefined) return;
    if (index.mtimeNs !== beforeSt.mtimeNs && !index.ownMtimesNs.includes(beforeSt.mtimeNs)) {
      this.dirs.delete(key); // a foreign change happened before ours: rebuild on the next miss
      return;
    }
    for (const name of removed) removeName(index.names, name);
    for (const name of added) addName(index.names, name);
    let after: BigIntStats;
    try {
      after = await lstat(dirAbs);
    } catch {
      this.dirs.delete(key);
      return;
    }
    if (keyOf(after) !== key) {
      this.dirs.delete(key);
      return;
    }
    index.mtimeNs = after.mtimeNs;
    index.ownMtimesNs.push(after.mtimeNs);
    if (index.ownMtimesNs.length > ownMtimesMax) index.ownMtimesNs.shift();
  }

  /** Forgets a directory (it was removed). */
  drop(dirSt: BigIntStats): void {
    this.dirs.delete(keyOf(dirSt));
  }

  clear(): void {
    this.dirs.clear();
  }

  private async get(dirAbs: string, dirSt: BigIntStats, isRoot: boolean): Promise<DirIndex> {
    const key = keyOf(dirSt);
    const cached = this.dirs.get(key);
    if (cached !== undefined && cached.mtimeNs === dirSt.mtimeNs) {
      this.dirs.delete(key);
      this.dirs.set(key, cached);
      return cached;
    }
    const pending = this.building.get(key);
    if (pending !== undefined) return pending;
    const build = this.build(dirAbs, dirSt, isRoot).finally(() => this.building.delete(key));
    this.building.set(key, build);
    const index = await build;
    this.dirs.delete(key);
    this.dirs.set(key, index);
    while (this.dirs.size > this.dirsMax) {
      const oldest = this.dirs.keys().next().value as string;
      this.dirs.delete(oldest);
    }
    return index;
  }

  private async build(dirAbs: string, dirSt: BigIntStats, isRoot: boolean): Promise<DirIndex> {
    // dirSt was taken before readdir: a change during readdir moves the mtime past it, so the next
    // lookup rebuilds; the index is never newer than its recorded mtime claims.
    let entries;
    try {
      entries = await readdirTyped(dirAbs);
    } catch (err) {
      throw toIosError(err, 'readdir for name index');
    }
    const names = new Map<string, string | string[]>();
    for (const entry of entries) {
      if (entry.isSymbolicLink()) continue; // never exposed
      if (isRoot && fold(entry.name) === STATE_DIR_FOLDED) continue;
      addName(names, entry.name);
    }
    // The build mtime is a state the index matches, like the mtimes recorded after own changes.
    return { mtimeNs: dirSt.mtimeNs, ownMtimesNs: [dirSt.mtimeNs], names };
  }
}
