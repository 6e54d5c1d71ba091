// fsck of chunked shares (issue 5, "Self-describing object keys"): checks the extent maps against
// the object store and the reference counts against a recount. Read-only: it never proposes a
// command nor changes the store, so it may run while servers run (its findings are then re-checked
// against a later read before they are reported, see below).
//
// Checks:
// - every extent lies in an existing object and within its size (dangling / beyond the object);
// - extents of a fork are sorted and disjoint; every fork holding extents exists or is in the reap
//   queue (else: orphan extents); extents of a live fork lie below its owner's end of file;
// - ('obj', o).refs equals the number of extent records pointing into o (recount), for every o;
// - objects in 'gc' (unreferenced, awaiting the collector) and 'gcx' (being deleted) have no extent.
// And it lists objects under `<clusterId>/seg/` that nothing references and that are neither in 'gc'
// nor claimed: garbage (a segment whose map command failed or was cut by a crash). Garbage is not a
// problem (no data is at risk); it is reported with counts and bytes, split by whether its writer
// is superseded (the node joined again since: its key's epoch is below the node's current epoch, so
// nothing can reference the segment any more) or still current (possibly a write in flight).
//
// Concurrency with running servers: the store is listed first, then the metadata is read in one
// consistent read version; objects referenced by that version but missing from the listing are
// headed (a segment put after the listing). A finding (dangling extent, garbage) is re-checked
// against a second read after the heads: an object dropped from the map meanwhile (the collector
// may then delete it) is not reported as dangling, a segment referenced meanwhile is not garbage.
import { limits } from '../../base/limits.js';
import { decodeKey, key } from '../../meta/keys.js';
import type { ReadTx } from '../../meta/tx.js';
import { listNodes } from '../../meta/families/cluster.js';
import { getInode, getStream } from '../../meta/families/namespace.js';
import type { Extent, ForkRecord, GcRecord, ObjectRecord } from '../../meta/families/ns-records.js';
import { objKey } from '../../meta/families/ns-records.js';
import type { ObjectInfo, ObjectStore } from '../../objstore/spi.js';

/** What fsck reads metadata through: a MetaService or a (read-only) StateMachine both fit. */
export interface MetaReader {
  read<T>(fn: (tx: ReadTx) => T): T;
  readonly appliedPosition?: number;
}

export interface FsckOptions {
  meta: MetaReader;
  store: ObjectStore;
  clusterId: string;
  /** Head every referenced object (default: only those the listing of `<clusterId>/seg/` lacks). */
  headAll?: boolean;
  /** Heads in flight (default limits.fsckHeadsInFlightMax). */
  headsInFlight?: number;
  /** Keys of garbage objects listed in the report (all are counted); default 100. */
  garbageListed?: number;
}

export type FsckProblemKind =
  | 'dangling-extent'
  | 'extent-beyond-object'
  | 'refcount-mismatch'
  | 'gc-referenced'
  | 'orphan-extent'
  | 'overlapping-extents'
  | 'extent-beyond-eof';

export interface FsckProblem {
  kind: FsckProblemKind;
  message: string;
  object?: string;
  fork?: number;
  offset?: number;
}

export interface FsckReport {
  /** Applied log position of the metadata read (undefined if the reader does not tell). */
  position: number | undefined;
  forks: number;
  extents: number;
  /** Bytes the maps point at (sum of extent lengths; shared pieces count once per extent). */
  mappedBytes: number;
  referenced: { objects: number; bytes: number };
  store: { objects: number; bytes: number };
  /** Objects in 'gc' (awaiting the collector) and claimed ('gcx', being deleted) still in the store. */
  pendingGc: { objects: number; bytes: number };
  reapQueue: number;
  /** Unreferenced segments not known to the collector. */
  garbage: {
    objects: number;
    bytes: number;
    /** Of which written by a superseded process (certainly garbage). */
    superseded: { objects: number; bytes: number };
    /** Keys under the prefix that are not segment keys of this cluster. */
    foreign: number;
    keys: string[];
  };
  problems: FsckProblem[];
  /** All problems found (problems[] lists at most limits.fsckProblemsListedMax). */
  problemCount: number;
  clean: boolean;
}

interface ObjAgg {
  refs: number;
  /** Largest objectOffset + length of an extent into it. */
  end: number;
  /** Where one extent into it is (for messages). */
  fork: number;
  offset: number;
}

interface Scan {
  position: number | undefined;
  forks: number;
  extents: number;
  mappedBytes: number;
  objs: Map<string, ObjAgg>;
  gc: Map<string, GcRecord>;
  reap: number;
  nodeEpochs: Map<string, number>;
  problems: FsckProblem[];
}

/** Parses `<clusterId>/seg/<nodeId>/<epoch>/<seq: 16 hex>` (segments.ts); undefined if it is not one. */
export function parseSegmentKey(clusterId: string, k: string): { nodeId: string; epoch: number; seq: bigint } | undefined {
  const prefix = `${clusterId}/seg/`;
  if (!k.startsWith(prefix)) return undefined;
  const parts = k.slice(prefix.length).split('/');
  if (parts.length !== 3) return undefined;
  const [nodeId, epoch, seq] = parts as [string, string, string];
  if (nodeId === '' || !/^\d{1,15}$/.test(epoch) || !/^[0-9a-f]{16}$/.test(seq)) return undefined;
  return { nodeId, epoch: Number(epoch), seq: BigInt(`0x${seq}`) };
}

/** The last 8 bytes of an integer key part at the end of a key. */
const tailInt = (k: Buffer): number => Number(k.readBigUInt64BE(k.length - 8));

function ownerSize(tx: ReadTx, f: ForkRecord): number | undefined {
  if (f.stream !== undefined) return getStream(tx, f.ino, f.stream)?.size;
  return getInode(tx, f.ino)?.size;
}

function scanMeta(tx: ReadTx, position: number | undefined): Scan {
  const s: Scan = {
    position,
    forks: 0,
    extents: 0,
    mappedBytes: 0,
    objs: new Map(),
    gc: new Map(),
    reap: 0,
    nodeEpochs: new Map(),
    problems: [],
  };
  const reaped = new Set<number>();
  for (const [k] of tx.range<object>(key('reap'))) {
    reaped.add(tailInt(k));
    s.reap++;
  }
  // Extents, fork by fork (key order = (fork, offset) order).
  let curFork = -1;
  let curSize: number | undefined;
  let live = false;
  let prevEnd = 0;
  for (const [k, e] of tx.range<Extent>(key('ext'))) {
    const parts = decodeKey(k);
    const fork = parts[1] as number;
    const offset = parts[2] as number;
    if (fork !== curFork) {
      curFork = fork;
      prevEnd = 0;
      const f = tx.get<ForkRecord>(key('fork', fork));
      live = f !== undefined;
      curSize = f !== undefined ? ownerSize(tx, f) : undefined;
      if (f === undefined && !reaped.has(fork)) {
        s.problems.push({ kind: 'orphan-extent', fork, offset, message: `fork ${fork} has extents but neither a fork record nor a reap entry` });
      }
    }
    s.extents++;
    s.mappedBytes += e.length;
    if (offset < prevEnd) {
      s.problems.push({ kind: 'overlapping-extents', fork, offset, message: `fork ${fork}: extent at ${offset} starts before the previous one ends (${prevEnd})` });
    }
    prevEnd = Math.max(prevEnd, offset + e.length);
    if (live && curSize !== undefined && offset + e.length > curSize) {
      s.problems.push({
        kind: 'extent-beyond-eof',
        fork,
        offset,
        object: e.object,
        message: `fork ${fork}: extent [${offset}, ${offset + e.length}) lies beyond the end of file ${curSize}`,
      });
    }
    let a = s.objs.get(e.object);
    if (a === undefined) {
      a = { refs: 0, end: 0, fork, offset };
      s.objs.set(e.object, a);
    }
    a.refs++;
    a.end = Math.max(a.end, e.objectOffset + e.length);
  }
  for (const _ of tx.range<object>(key('fork'))) s.forks++;
  // Reference counts against the recount, both ways.
  const counted = new Set<string>();
  for (const [k, o] of tx.range<ObjectRecord>(key('obj'))) {
    const object = decodeKey(k)[1] as string;
    counted.add(object);
    const n = s.objs.get(object)?.refs ?? 0;
    if (o.refs !== n) s.problems.push({ kind: 'refcount-mismatch', object, message: `object ${object}: refs ${o.refs}, extents pointing into it ${n}` });
  }
  for (const [object, a] of s.objs) {
    if (!counted.has(object)) {
      s.problems.push({ kind: 'refcount-mismatch', object, message: `object ${object}: no reference count record, extents pointing into it ${a.refs}` });
    }
  }
  for (const family of ['gc', 'gcx'] as const) {
    for (const [k, g] of tx.range<GcRecord>(key(family))) {
      const object = decodeKey(k)[1] as string;
      s.gc.set(object, g);
      const a = s.objs.get(object);
      if (a !== undefined) {
        s.problems.push({
          kind: 'gc-referenced',
          object,
          message: `object ${object} is ${family === 'gc' ? 'awaiting the collector' : 'being deleted'} but ${a.refs} extents point into it (e.g. fork ${a.fork} at ${a.offset})`,
        });
      }
    }
  }
  for (const n of listNodes(tx)) s.nodeEpochs.set(n.node, n.epoch);
  return s;
}

/** Runs `jobs` with at most `max` in flight. */
async function bounded<T>(items: readonly T[], max: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(max, items.length)) }, worker));
}

export async function runFsck(opts: FsckOptions): Promise<FsckReport> {
  const { meta, store, clusterId } = opts;
  const prefix = `${clusterId}/seg/`;
  const listed = new Map<string, number>();
  let storeBytes = 0;
  let after: string | undefined;
  for (;;) {
    const page = await store.list(prefix, after === undefined ? { limit: limits.objstoreListPageMax } : { after, limit: limits.objstoreListPageMax });
    for (const o of page.objects) {
      listed.set(o.key, o.size);
      storeBytes += o.size;
    }
    if (page.next === undefined) break;
    after = page.next;
  }

  const scan = meta.read((tx) => scanMeta(tx, meta.appliedPosition));
  const problems = scan.problems;

  // Sizes of the referenced objects: the listing's, or a head.
  const sizes = new Map<string, number | undefined>();
  const toHead: string[] = [];
  for (const object of scan.objs.keys()) {
    const n = listed.get(object);
    if (n !== undefined && opts.headAll !== true) sizes.set(object, n);
    else toHead.push(object);
  }
  await bounded(toHead, opts.headsInFlight ?? limits.fsckHeadsInFlightMax, async (object) => {
    const info: ObjectInfo | undefined = await store.head(object);
    sizes.set(object, info?.size);
  });

  // Candidates, re-checked against a later read of the map (see the header).
  const missing: string[] = [];
  const short: string[] = [];
  let refBytes = 0;
  for (const [object, a] of scan.objs) {
    const size = sizes.get(object);
    if (size === undefined) missing.push(object);
    else {
      refBytes += size;
      if (size < a.end) short.push(object);
    }
  }
  const garbageCandidates: string[] = [];
  let pendingObjects = 0;
  let pendingBytes = 0;
  for (const [k, size] of listed) {
    if (scan.objs.has(k)) continue;
    if (scan.gc.has(k)) {
      pendingObjects++;
      pendingBytes += size;
      continue;
    }
    garbageCandidates.push(k);
  }
  const later = missing.length + garbageCandidates.length === 0 ? undefined : meta.read((tx) => {
    const refs = (o: string): number => tx.get<ObjectRecord>(objKey(o))?.refs ?? 0;
    return {
      stillReferenced: missing.filter((o) => refs(o) > 0),
      nowReferenced: new Set(garbageCandidates.filter((o) => refs(o) > 0 || tx.get(key('gc', o)) !== undefined || tx.get(key('gcx', o)) !== undefined)),
    };
  });
  for (const object of later?.stillReferenced ?? []) {
    const a = scan.objs.get(object)!;
    problems.push({
      kind: 'dangling-extent',
      object,
      fork: a.fork,
      offset: a.offset,
      message: `object ${object} does not exist in the store; ${a.refs} extents point into it (e.g. fork ${a.fork} at ${a.offset})`,
    });
  }
  for (const object of short) {
    const a = scan.objs.get(object)!;
    problems.push({
      kind: 'extent-beyond-object',
      object,
      fork: a.fork,
      offset: a.offset,
      message: `object ${object} holds ${sizes.get(object)} bytes; extents reach byte ${a.end} of it`,
    });
  }

  const garbageListed = opts.garbageListed ?? 100;
  const garbage: FsckReport['garbage'] = { objects: 0, bytes: 0, superseded: { objects: 0, bytes: 0 }, foreign: 0, keys: [] };
  for (const k of garbageCandidates) {
    if (later?.nowReferenced.has(k)) continue;
    const size = listed.get(k)!;
    garbage.objects++;
    garbage.bytes += size;
    if (garbage.keys.length < garbageListed) garbage.keys.push(k);
    const seg = parseSegmentKey(clusterId, k);
    if (seg === undefined) garbage.foreign++;
    else if ((scan.nodeEpochs.get(seg.nodeId) ?? Number.MAX_SAFE_INTEGER) > seg.epoch) {
      garbage.superseded.objects++;
      garbage.superseded.bytes += size;
    }
  }

  const problemCount = problems.length;
  return {
    position: scan.position,
    forks: scan.forks,
    extents: scan.extents,
    mappedBytes: scan.mappedBytes,
    referenced: { objects: scan.objs.size, bytes: refBytes },
    store: { objects: listed.size, bytes: storeBytes },
    pendingGc: { objects: pendingObjects, bytes: pendingBytes },
    reapQueue: scan.reap,
    garbage,
    problems: problems.slice(0, limits.fsckProblemsListedMax),
    problemCount,
    clean: problemCount === 0,
  };
}

const fmtBytes = (n: number): string => {
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < u.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${n} B` : `${v.toFixed(1)} ${u[i]} (${n} B)`;
};

/** The report for people. */
export function formatFsckReport(r: FsckReport): string {
  const lines = [
    `metadata position ${r.position ?? '?'}: ${r.forks} forks, ${r.extents} extents mapping ${fmtBytes(r.mappedBytes)}, ${r.reapQueue} forks in the reap queue`,
    `store: ${r.store.objects} segment objects, ${fmtBytes(r.store.bytes)}`,
    `referenced: ${r.referenced.objects} objects, ${fmtBytes(r.referenced.bytes)}`,
    `awaiting the collector: ${r.pendingGc.objects} objects, ${fmtBytes(r.pendingGc.bytes)}`,
    `garbage (unreferenced, unknown to the collector): ${r.garbage.objects} objects, ${fmtBytes(r.garbage.bytes)}` +
      ` (${r.garbage.superseded.objects} objects, ${fmtBytes(r.garbage.superseded.bytes)} from superseded writers; ${r.garbage.foreign} foreign keys)`,
  ];
  for (const k of r.garbage.keys) lines.push(`  garbage: ${k}`);
  if (r.clean) lines.push('clean: no problems');
  else {
    lines.push(`${r.problemCount} problems:`);
    for (const p of r.problems) lines.push(`  ${p.kind}: ${p.message}`);
    if (r.problemCount > r.problems.length) lines.push(`  ... and ${r.problemCount - r.problems.length} more`);
  }
  return lines.join('\n') + '\n';
}
