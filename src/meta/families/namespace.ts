// The namespace command family of object-backed shares: inodes, directory entries, named streams
// and per-share roots (records in ns-records.ts). The chunked driver calls these through the metadata
// service; the posix driver keeps its namespace on disk and does not.
//
// Scale: a directory is the key range ('dirent', parent, *), so create, lookup, rename and unlink
// touch a constant number of records whatever the directory's size, and readdir pages through the
// range from a name. Freeing a file's data is bounded per command (ns.unlink hands forks too large to
// free inline to the reap queue, see extents.ts).
//
// Handlers check every argument and refusal before their first write (a refused command writes
// nothing even on a raw transaction); the state machine rolls back anything else that fails.
import { assert } from '../../base/assert.js';
import { limits } from '../../base/limits.js';
import { ok, type ApplyTx, type Command, type HandlerTable, type ReadTx } from '../tx.js';
import { applyRefs, dropFork, type RefDeltas } from './extents.js';
import {
  Budget,
  FILE_ATTRIBUTE_DIRECTORY,
  FILE_ATTRIBUTE_TEMPORARY,
  argAttributes,
  argBool,
  argEas,
  mergeEas,
  argBytes,
  argId,
  argName,
  argSd,
  argStreamName,
  argTime,
  direntKey,
  direntPrefix,
  fold,
  forkKey,
  getInode,
  guarded,
  inoKey,
  isId,
  isPlausibleName,
  nextId,
  refuse,
  rootKey,
  streamKey,
  streamPrefix,
  type Dirent,
  type Filetime,
  type ForkRecord,
  type Inode,
  type NodeKind,
  type RootRecord,
  type StreamRecord,
} from './ns-records.js';

export {
  FILE_ATTRIBUTE_DIRECTORY,
  FILE_ATTRIBUTE_TEMPORARY,
  fold,
  getFork,
  getInode,
  type Counter,
  type Dirent,
  type Extent,
  type Filetime,
  type ForkRecord,
  type GcRecord,
  type Inode,
  type MappedExtent,
  type NodeKind,
  type ObjectRecord,
  type ReapRecord,
  type RootRecord,
  type StreamRecord,
} from './ns-records.js';

export interface NamespaceFamilyOptions {
  /** Extent records one unlink may free inline (default limits.metaExtentsPerCommandMax). */
  extentsPerCommandMax?: number;
}

// ---- helpers ----

function needInode(tx: ReadTx, cmd: Command, field: string): Inode {
  const ino = argId(cmd, field);
  const i = getInode(tx, ino);
  if (i === undefined) refuse('not-found', `${cmd.t}: inode ${ino} does not exist`);
  return i;
}

function needDir(tx: ReadTx, cmd: Command, field: string): Inode {
  const d = needInode(tx, cmd, field);
  if (d.kind !== 'dir') refuse('not-directory', `${cmd.t}: inode ${d.ino} is not a directory`);
  return d;
}

function argShare(cmd: Command): string {
  const v = cmd.share;
  if (typeof v !== 'string' || v.length === 0 || v.length > limits.metaShareNameLengthMax || /[\u0000\\/]|[\uD800-\uDFFF]/u.test(v)) {
    refuse('invalid', `${cmd.t}: share must be a share name of 1..${limits.metaShareNameLengthMax} characters`);
  }
  return v;
}

/** A new entry changes its directory: LastWriteTime and ChangeTime become `now` (as NTFS does). */
function touchDir(tx: ApplyTx, dirIno: number, now: Filetime): void {
  const d = getInode(tx, dirIno)!;
  if (d.lastWrite === now && d.change === now) return;
  tx.put(inoKey(dirIno), { ...d, lastWrite: now, change: now } satisfies Inode);
}

interface Unlinked {
  ino: number;
  freed: boolean;
  /** Forks handed to the reap queue (free them with ext.reap). */
  reap?: number[];
}

/**
 * Removes the entry `name` (already looked up as `ent`) of directory `parent`; when the inode's last
 * link goes, removes the inode, its named streams and frees their maps. The caller checked that a
 * directory is empty.
 */
function removeEntry(tx: ApplyTx, parent: number, ent: Dirent, now: Filetime, budget: Budget, deltas: RefDeltas): Unlinked {
  const node = getInode(tx, ent.ino);
  assert(node !== undefined, `dirent ${parent}/${ent.name} names inode ${ent.ino}, which exists`);
  tx.del(direntKey(parent, ent.name));
  if (node.kind === 'file' && node.nlink > 1) {
    tx.put(inoKey(node.ino), { ...node, nlink: node.nlink - 1, change: now } satisfies Inode);
    return { ino: node.ino, freed: false };
  }
  const reap: number[] = [];
  const streams = [...tx.range<StreamRecord>(streamPrefix(node.ino), { limit: limits.metaStreamsPerFileMax + 1 })];
  assert(streams.length <= limits.metaStreamsPerFileMax, `inode ${node.ino} has at most metaStreamsPerFileMax streams`);
  for (const [k, s] of streams) {
    if (dropFork(tx, s.fork, node.ino, budget, deltas)) reap.push(s.fork);
    tx.del(k);
  }
  if (node.fork > 0 && dropFork(tx, node.fork, node.ino, budget, deltas)) reap.push(node.fork);
  tx.del(inoKey(node.ino));
  return reap.length > 0 ? { ino: node.ino, freed: true, reap } : { ino: node.ino, freed: true };
}

function isEmptyDir(tx: ReadTx, ino: number): boolean {
  for (const _ of tx.range(direntPrefix(ino), { limit: 1 })) return false;
  return true;
}

/** Refuses moving directory `moved` into `dstParent` when that is `moved` or lies below it. */
function refuseCycle(tx: ReadTx, cmd: Command, moved: number, dstParent: number): void {
  let cur = dstParent;
  for (let depth = 0; depth <= limits.metaTreeDepthMax; depth++) {
    if (cur === moved) refuse('invalid', `${cmd.t}: cannot move a directory into itself or below itself`);
    const i = getInode(tx, cur);
    assert(i !== undefined && i.kind === 'dir', `ancestor ${cur} is a directory`);
    if (i.parent === cur) return; // reached the share root
    cur = i.parent;
  }
  refuse('limit', `${cmd.t}: directory tree deeper than ${limits.metaTreeDepthMax}`);
}

/** Attribute rules of MS-FSA 2.1.5.1 (create) and 2.1.5.14.2 (FileBasicInformation). */
function checkAttributes(cmd: Command, kind: NodeKind, attributes: number): number {
  if (kind === 'file' && (attributes & FILE_ATTRIBUTE_DIRECTORY) !== 0) {
    refuse('invalid', `${cmd.t}: FILE_ATTRIBUTE_DIRECTORY on a file`);
  }
  if (kind === 'dir' && (attributes & FILE_ATTRIBUTE_TEMPORARY) !== 0) {
    refuse('invalid', `${cmd.t}: FILE_ATTRIBUTE_TEMPORARY on a directory`);
  }
  return kind === 'dir' ? (attributes | FILE_ATTRIBUTE_DIRECTORY) >>> 0 : attributes;
}

function countStreams(tx: ReadTx, ino: number): number {
  let n = 0;
  for (const _ of tx.range(streamPrefix(ino), { limit: limits.metaStreamsPerFileMax })) n++;
  return n;
}

// ---- handlers ----

export function createNamespaceHandlers(opts: NamespaceFamilyOptions = {}): HandlerTable {
  const perCommand = opts.extentsPerCommandMax ?? limits.metaExtentsPerCommandMax;
  assert(Number.isSafeInteger(perCommand) && perCommand >= 1, 'extentsPerCommandMax >= 1');

  return {
    /**
     * ns.mkroot { share, now, sd? } -> { ino, created }: the share's root directory, created once;
     * idempotent (an existing root is returned with created: false).
     */
    'ns.mkroot': guarded((tx, cmd) => {
      const share = argShare(cmd);
      const now = argTime(cmd, 'now')!;
      const sd = argSd(cmd, 'sd');
      const existing = tx.get<RootRecord>(rootKey(share));
      if (existing !== undefined) return ok({ ino: existing.ino, created: false });
      const ino = nextId(tx, 'ino');
      const root: Inode = {
        ino,
        share,
        kind: 'dir',
        attributes: FILE_ATTRIBUTE_DIRECTORY,
        creation: now,
        lastAccess: now,
        lastWrite: now,
        change: now,
        size: 0,
        nlink: 1,
        parent: ino,
        fork: 0,
      };
      if (sd !== undefined) root.sd = sd;
      tx.put(inoKey(ino), root);
      tx.put(rootKey(share), { ino } satisfies RootRecord);
      return ok({ ino, created: true });
    }),

    /**
     * ns.create { parent, name, kind, attributes, now, sd?, allocation?, eas? } -> { ino, fork }: a new
     * file (with an empty unnamed data fork) or directory (fork 0) named `name` in directory `parent`.
     * `allocation` (files): the allocation the create asked for (CREATE AllocationSize), in bytes.
     * `eas`: extended attributes as ns.seteas applies them.
     */
    'ns.create': guarded((tx, cmd) => {
      const name = argName(cmd, 'name');
      const kind = cmd.kind;
      if (kind !== 'file' && kind !== 'dir') refuse('invalid', `${cmd.t}: kind must be 'file' or 'dir'`);
      const given = argAttributes(cmd, 'attributes');
      if (given === undefined) refuse('invalid', `${cmd.t}: attributes must be a 32-bit unsigned integer`);
      const attributes = checkAttributes(cmd, kind, given);
      const now = argTime(cmd, 'now')!;
      const sd = argSd(cmd, 'sd');
      const allocation = cmd.allocation === undefined || kind === 'dir' ? undefined : argBytes(cmd, 'allocation');
      const eas = argEas(cmd, 'eas');
      const dir = needDir(tx, cmd, 'parent');
      if (tx.get<Dirent>(direntKey(dir.ino, name)) !== undefined) refuse('exists', `${cmd.t}: ${name} exists`);

      const ino = nextId(tx, 'ino');
      let fork = 0;
      if (kind === 'file') {
        fork = nextId(tx, 'fork');
        tx.put(forkKey(fork), { ino } satisfies ForkRecord);
      }
      const node: Inode = {
        ino,
        share: dir.share,
        kind,
        attributes,
        creation: now,
        lastAccess: now,
        lastWrite: now,
        change: now,
        size: 0,
        nlink: 1,
        parent: kind === 'dir' ? dir.ino : 0,
        fork,
      };
      if (sd !== undefined) node.sd = sd;
      if (allocation !== undefined && allocation > 0) node.allocation = allocation;
      if (eas !== undefined) {
        const merged = mergeEas(cmd, undefined, eas);
        if (merged !== undefined) node.eas = merged;
      }
      tx.put(inoKey(ino), node);
      tx.put(direntKey(dir.ino, name), { name, ino, kind } satisfies Dirent);
      touchDir(tx, dir.ino, now);
      return ok({ ino, fork });
    }),

    /**
     * ns.setattr { ino, attributes?, creation?, lastAccess?, lastWrite?, change?, keepChange?,
     * allocation?, now }: sets the given fields (the FILE_BASIC_INFORMATION 0/-1/-2 conventions are the
     * server's and driver's business: a field given here is set). ChangeTime becomes `change` if given,
     * else stays with `keepChange: true` (the open stopped its updates), else `now`. `allocation: 0`
     * forgets a set allocation.
     */
    'ns.setattr': guarded((tx, cmd) => {
      const node = needInode(tx, cmd, 'ino');
      const attributes = argAttributes(cmd, 'attributes');
      const creation = argTime(cmd, 'creation', true);
      const lastAccess = argTime(cmd, 'lastAccess', true);
      const lastWrite = argTime(cmd, 'lastWrite', true);
      const change = argTime(cmd, 'change', true);
      const allocation = cmd.allocation === undefined ? undefined : argBytes(cmd, 'allocation');
      const keepChange = cmd.keepChange === undefined ? false : argBool(cmd, 'keepChange');
      const now = argTime(cmd, 'now')!;
      const next: Inode = { ...node };
      if (attributes !== undefined) next.attributes = checkAttributes(cmd, node.kind, attributes);
      if (creation !== undefined) next.creation = creation;
      if (lastAccess !== undefined) next.lastAccess = lastAccess;
      if (lastWrite !== undefined) next.lastWrite = lastWrite;
      if (allocation !== undefined) {
        if (allocation === 0) delete next.allocation;
        else next.allocation = allocation;
      }
      if (change !== undefined) next.change = change;
      else if (!keepChange) next.change = now;
      tx.put(inoKey(node.ino), next);
      return ok();
    }),

    /**
     * ns.seteas { ino, eas, now, keepChange? }: applies EA changes in order (MS-FSA 2.1.5.15.5): each
     * replaces the EA of its name (case-insensitive; names are stored upper-cased) or is appended; an
     * empty value removes it. More than 64 KiB - 5 packed bytes: 'invalid', nothing changes.
     * ChangeTime = now unless keepChange.
     */
    'ns.seteas': guarded((tx, cmd) => {
      const node = needInode(tx, cmd, 'ino');
      const eas = argEas(cmd, 'eas');
      if (eas === undefined) refuse('invalid', `${cmd.t}: eas is required`);
      const now = argTime(cmd, 'now')!;
      const keepChange = cmd.keepChange === undefined ? false : argBool(cmd, 'keepChange');
      const next: Inode = { ...node };
      const merged = mergeEas(cmd, node.eas, eas);
      if (merged === undefined) delete next.eas;
      else next.eas = merged;
      if (!keepChange) next.change = now;
      tx.put(inoKey(node.ino), next);
      return ok();
    }),

    /** ns.setsd { ino, sd, now? }: replaces the security descriptor (ChangeTime = now if given). */
    'ns.setsd': guarded((tx, cmd) => {
      const node = needInode(tx, cmd, 'ino');
      const sd = argSd(cmd, 'sd');
      if (sd === undefined) refuse('invalid', `${cmd.t}: sd is required`);
      const now = argTime(cmd, 'now', true);
      const next: Inode = { ...node, sd };
      if (now !== undefined) next.change = now;
      tx.put(inoKey(node.ino), next);
      return ok();
    }),

    /**
     * ns.rename { srcParent, srcName, dstParent, dstName, replace, now } -> { ino, replaced? }.
     * MS-FSA 2.1.5.14.11 (FileRenameInformation; 2.1.5.15.11 in current revisions), the rules that
     * hold at this level: an existing target and !replace -> 'exists' (STATUS_OBJECT_NAME_COLLISION);
     * a directory target is never replaced -> 'is-directory' (the spec's STATUS_ACCESS_DENIED);
     * a directory moved into itself or below -> 'invalid'; across shares -> 'invalid'
     * (STATUS_NOT_SAME_DEVICE); the same entry under another case renames in place. A replaced file
     * loses that link (freed when it was the last). Open-handle checks on the target are the caller's.
     */
    'ns.rename': guarded((tx, cmd) => {
      const srcName = argName(cmd, 'srcName');
      const dstName = argName(cmd, 'dstName');
      const replace = argBool(cmd, 'replace');
      const now = argTime(cmd, 'now')!;
      const src = needDir(tx, cmd, 'srcParent');
      const dst = needDir(tx, cmd, 'dstParent');
      const ent = tx.get<Dirent>(direntKey(src.ino, srcName));
      if (ent === undefined) refuse('not-found', `${cmd.t}: ${srcName} does not exist`);
      if (src.share !== dst.share) refuse('invalid', `${cmd.t}: source and target are on different shares`);
      const node = getInode(tx, ent.ino)!;

      if (src.ino === dst.ino && fold(srcName) === fold(dstName)) {
        // The same entry: a case-only rename keeps the entry and changes the stored name.
        if (ent.name !== dstName) {
          tx.put(direntKey(src.ino, dstName), { ...ent, name: dstName } satisfies Dirent);
          tx.put(inoKey(node.ino), { ...node, change: now } satisfies Inode);
          touchDir(tx, src.ino, now);
        }
        return ok({ ino: ent.ino });
      }
      if (node.kind === 'dir' && src.ino !== dst.ino) refuseCycle(tx, cmd, node.ino, dst.ino);
      const target = tx.get<Dirent>(direntKey(dst.ino, dstName));
      if (target !== undefined) {
        if (!replace) refuse('exists', `${cmd.t}: ${dstName} exists`);
        if (target.kind === 'dir') refuse('is-directory', `${cmd.t}: the target ${dstName} is a directory and is never replaced`);
      }

      const deltas: RefDeltas = new Map();
      let replaced: Unlinked | undefined;
      if (target !== undefined) replaced = removeEntry(tx, dst.ino, target, now, new Budget(perCommand), deltas);
      tx.del(direntKey(src.ino, srcName));
      tx.put(direntKey(dst.ino, dstName), { name: dstName, ino: ent.ino, kind: ent.kind } satisfies Dirent);
      const moved = getInode(tx, ent.ino)!; // re-read: replacing another link of it changed nlink
      tx.put(inoKey(moved.ino), { ...moved, change: now, parent: moved.kind === 'dir' ? dst.ino : moved.parent } satisfies Inode);
      touchDir(tx, src.ino, now);
      if (dst.ino !== src.ino) touchDir(tx, dst.ino, now);
      applyRefs(tx, deltas);
      return ok(replaced === undefined ? { ino: ent.ino } : { ino: ent.ino, replaced });
    }),

    /**
     * ns.link { ino, parent, name, replace, now } -> { ino, replaced? }: a hard link (MS-FSA
     * FileLinkInformation, 2.1.5.14.6): files only ('is-directory'); same share; an existing target
     * follows the rename rules; at most metaHardLinksMax links ('limit').
     */
    'ns.link': guarded((tx, cmd) => {
      const name = argName(cmd, 'name');
      const replace = argBool(cmd, 'replace');
      const now = argTime(cmd, 'now')!;
      const node = needInode(tx, cmd, 'ino');
      if (node.kind === 'dir') refuse('is-directory', `${cmd.t}: directories cannot have hard links`);
      const dir = needDir(tx, cmd, 'parent');
      if (dir.share !== node.share) refuse('invalid', `${cmd.t}: a link cannot cross shares`);
      const target = tx.get<Dirent>(direntKey(dir.ino, name));
      if (target !== undefined && target.ino === node.ino) {
        if (target.name !== name) {
          tx.put(direntKey(dir.ino, name), { ...target, name } satisfies Dirent); // case change of the link
          touchDir(tx, dir.ino, now);
        }
        return ok({ ino: node.ino });
      }
      if (target !== undefined) {
        if (!replace) refuse('exists', `${cmd.t}: ${name} exists`);
        if (target.kind === 'dir') refuse('is-directory', `${cmd.t}: the target ${name} is a directory and is never replaced`);
      }
      if (node.nlink >= limits.metaHardLinksMax) refuse('limit', `${cmd.t}: inode ${node.ino} has ${node.nlink} links`);

      const deltas: RefDeltas = new Map();
      let replaced: Unlinked | undefined;
      if (target !== undefined) replaced = removeEntry(tx, dir.ino, target, now, new Budget(perCommand), deltas);
      tx.put(direntKey(dir.ino, name), { name, ino: node.ino, kind: 'file' } satisfies Dirent);
      tx.put(inoKey(node.ino), { ...node, nlink: node.nlink + 1, change: now } satisfies Inode);
      touchDir(tx, dir.ino, now);
      applyRefs(tx, deltas);
      return ok(replaced === undefined ? { ino: node.ino } : { ino: node.ino, replaced });
    }),

    /**
     * ns.unlink { parent, name, now } -> { ino, freed, reap? }: removes the entry. A directory must be
     * empty ('not-empty'). When a file's last link goes (or a directory's), the inode, its named
     * streams and their maps go too, dropping object references; forks with more extents than one
     * command may free are queued for ext.reap (listed in `reap`).
     */
    'ns.unlink': guarded((tx, cmd) => {
      const name = argName(cmd, 'name');
      const now = argTime(cmd, 'now')!;
      const dir = needDir(tx, cmd, 'parent');
      const ent = tx.get<Dirent>(direntKey(dir.ino, name));
      if (ent === undefined) refuse('not-found', `${cmd.t}: ${name} does not exist`);
      if (ent.kind === 'dir' && !isEmptyDir(tx, ent.ino)) refuse('not-empty', `${cmd.t}: directory ${name} is not empty`);
      const deltas: RefDeltas = new Map();
      const res = removeEntry(tx, dir.ino, ent, now, new Budget(perCommand), deltas);
      touchDir(tx, dir.ino, now);
      applyRefs(tx, deltas);
      return ok(res);
    }),

    /** ns.stream.create { ino, name } -> { fork }: a new, empty named stream. */
    'ns.stream.create': guarded((tx, cmd) => {
      const name = argStreamName(cmd, 'name');
      const node = needInode(tx, cmd, 'ino');
      if (tx.get<StreamRecord>(streamKey(node.ino, name)) !== undefined) refuse('exists', `${cmd.t}: stream ${name} exists`);
      if (countStreams(tx, node.ino) >= limits.metaStreamsPerFileMax) {
        refuse('limit', `${cmd.t}: inode ${node.ino} has ${limits.metaStreamsPerFileMax} streams`);
      }
      const fork = nextId(tx, 'fork');
      tx.put(forkKey(fork), { ino: node.ino, stream: name } satisfies ForkRecord);
      tx.put(streamKey(node.ino, name), { name, fork, size: 0 } satisfies StreamRecord);
      return ok({ fork });
    }),

    /** ns.stream.delete { ino, name } -> { fork, reap? }: removes a named stream and frees its map. */
    'ns.stream.delete': guarded((tx, cmd) => {
      const name = argStreamName(cmd, 'name');
      const node = needInode(tx, cmd, 'ino');
      const k = streamKey(node.ino, name);
      const s = tx.get<StreamRecord>(k);
      if (s === undefined) refuse('not-found', `${cmd.t}: stream ${name} does not exist`);
      const deltas: RefDeltas = new Map();
      const queued = dropFork(tx, s.fork, node.ino, new Budget(perCommand), deltas);
      tx.del(k);
      applyRefs(tx, deltas);
      return ok(queued ? { fork: s.fork, reap: [s.fork] } : { fork: s.fork });
    }),

    /**
     * ns.stream.rename { ino, from, to, replace } -> { fork }: MS-FSA 2.1.5.14.11.1 (stream rename):
     * an existing target and !replace -> 'exists'; with replace the target stream is deleted first.
     * The same stream under another case renames in place.
     */
    'ns.stream.rename': guarded((tx, cmd) => {
      const from = argStreamName(cmd, 'from');
      const to = argStreamName(cmd, 'to');
      const replace = argBool(cmd, 'replace');
      const node = needInode(tx, cmd, 'ino');
      const fk = streamKey(node.ino, from);
      const s = tx.get<StreamRecord>(fk);
      if (s === undefined) refuse('not-found', `${cmd.t}: stream ${from} does not exist`);
      const same = fold(from) === fold(to);
      const tk = streamKey(node.ino, to);
      const target = same ? undefined : tx.get<StreamRecord>(tk);
      if (target !== undefined && !replace) refuse('exists', `${cmd.t}: stream ${to} exists`);

      const deltas: RefDeltas = new Map();
      const res: { fork: number; reap?: number[] } = { fork: s.fork };
      if (target !== undefined && dropFork(tx, target.fork, node.ino, new Budget(perCommand), deltas)) res.reap = [target.fork];
      if (!same) tx.del(fk);
      tx.put(tk, { ...s, name: to } satisfies StreamRecord);
      tx.put(forkKey(s.fork), { ino: node.ino, stream: to } satisfies ForkRecord);
      applyRefs(tx, deltas);
      return ok(res);
    }),
  };
}

export const namespaceHandlers: HandlerTable = createNamespaceHandlers();

// ---- read helpers (pure functions over ReadTx) ----

/** Root directory inode of a share (case-insensitive share name), if made. */
export function getRoot(tx: ReadTx, share: string): number | undefined {
  if (typeof share !== 'string' || share.length === 0 || share.includes('\u0000')) return undefined;
  return tx.get<RootRecord>(rootKey(share))?.ino;
}

/** The entry of directory `parent` whose name equals `name` case-insensitively. */
export function lookup(tx: ReadTx, parent: number, name: string): Dirent | undefined {
  if (!isId(parent) || !isPlausibleName(name)) return undefined;
  return tx.get<Dirent>(direntKey(parent, name));
}

/**
 * One page of directory `parent`: entries in folded-name order (bytewise UTF-8 of fold(name)),
 * starting after the entry named `after` (any case) if given; at most `limit`. A page shorter than
 * `limit` is the last.
 */
export function readdir(tx: ReadTx, parent: number, opts: { after?: string; limit: number }): Dirent[] {
  assert(Number.isSafeInteger(opts.limit) && opts.limit >= 1 && opts.limit <= limits.metaReadEntriesMax, `readdir limit in 1..${limits.metaReadEntriesMax}`);
  if (!isId(parent)) return [];
  const prefix = direntPrefix(parent);
  let start: Buffer = prefix;
  if (opts.after !== undefined) {
    assert(isPlausibleName(opts.after), 'readdir: after is a name');
    // The smallest key after the entry's own key: no other entry key has it as a prefix.
    start = Buffer.concat([direntKey(parent, opts.after), Buffer.from([0])]);
  }
  const out: Dirent[] = [];
  for (const [, d] of tx.range<Dirent>(prefix, { start, limit: opts.limit })) out.push(d);
  return out;
}

/** The named stream `name` of inode `ino` (case-insensitive). */
export function getStream(tx: ReadTx, ino: number, name: string): StreamRecord | undefined {
  if (!isId(ino) || !isPlausibleName(name)) return undefined;
  return tx.get<StreamRecord>(streamKey(ino, name));
}

/** Named streams of inode `ino`, in folded-name order (at most metaStreamsPerFileMax exist). */
export function listStreams(tx: ReadTx, ino: number): StreamRecord[] {
  if (!isId(ino)) return [];
  return [...tx.range<StreamRecord>(streamPrefix(ino), { limit: limits.metaStreamsPerFileMax })].map(([, s]) => s);
}
