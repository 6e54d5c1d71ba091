// Records of the namespace of object-backed shares and their argument checks, shared by the
// namespace family (namespace.ts) and the extent-map family (extents.ts). No handlers here.
//
// Key layout (key() tuples; bytewise order = tuple order, so each family, directory, file's streams
// and fork's map is one contiguous range):
//   ('ino', ino)                     -> Inode
//   ('dirent', parentIno, fold(name)) -> Dirent          one directory = one range, sorted by folded name
//   ('root', SHARE)                  -> { ino }          per share root directory (ns.mkroot)
//   ('stream', ino, fold(name))      -> StreamRecord     named streams (alternate data streams)
//   ('fork', fork)                   -> ForkRecord       owner of a data fork (whose size ext.* updates)
//   ('ext', fork, offset)            -> Extent           [offset, offset+length) -> piece of an object
//   ('obj', objectKey)               -> ObjectRecord     extents pointing into the object
//   ('gc', objectKey)                -> GcRecord         unreferenced objects, for the collector
//   ('gcx', objectKey)               -> GcRecord         claimed by the collector: being deleted (gc.claim)
//   ('reap', fork)                   -> ReapRecord       unlinked forks whose map is still to be freed
//   ('mapped', fork)                 -> MappedRecord     bytes the fork's extents map (its allocation)
//   ('ctr', 'ino' | 'fork')          -> Counter          last id handed out
import { limits } from '../../base/limits.js';
import { key } from '../keys.js';
import { type Command, type ReadTx } from '../tx.js';

/** FILETIME: 100 ns intervals since 1601-01-01 UTC (MS-DTYP 2.3.3). */
export type Filetime = bigint;

export type NodeKind = 'file' | 'dir';

/** MS-FSCC 2.6 file attributes this layer looks at. */
export const FILE_ATTRIBUTE_DIRECTORY = 0x10;
export const FILE_ATTRIBUTE_TEMPORARY = 0x100;

export interface Inode {
  ino: number;
  /** Share the inode belongs to (as given to ns.mkroot); renames and links never cross shares. */
  share: string;
  kind: NodeKind;
  /** FILE_ATTRIBUTE_* (MS-FSCC 2.6); FILE_ATTRIBUTE_DIRECTORY is set exactly for directories. */
  attributes: number;
  creation: Filetime;
  lastAccess: Filetime;
  lastWrite: Filetime;
  change: Filetime;
  /** End of file of the unnamed data stream (0 for directories). */
  size: number;
  /** Allocation size as set by the caller (FileAllocationInformation), if ever set. */
  allocation?: number;
  /** Directory entries naming this inode (1 for directories). */
  nlink: number;
  /** Self-relative security descriptor (MS-DTYP 2.4.6), as set. */
  sd?: Uint8Array;
  /** Directories: the parent directory (the root: itself). Files: 0 (a file may have several links). */
  parent: number;
  /** Data fork of the unnamed stream; 0 for directories (they have no unnamed data stream). */
  fork: number;
  /** Extended attributes (MS-FSCC 2.4.15), names upper-cased, in the order first added; absent when none. */
  eas?: StoredEa[];
}

/** One extended attribute of an inode. */
export interface StoredEa {
  name: string;
  /** 0 or 0x80 (FILE_NEED_EA). */
  flags: number;
  /** Non-empty. */
  value: Uint8Array;
}

/** MS-FSA 2.1.5.15.5: packed EA bytes per inode (4 + name + 1 + value per EA) at most 64 KiB - 5. */
export const EA_PACKED_BYTES_MAX = 65536 - 5;

export function eaPackedBytes(eas: readonly StoredEa[] | undefined): number {
  let n = 0;
  for (const ea of eas ?? []) n += 4 + ea.name.length + 1 + ea.value.length;
  return n;
}

const EA_NAME_BAD = /[^\u0020-\u00ff]/;

/**
 * EA changes of a command (`field`: [{ name, flags, value }]): names of 1..255 characters in
 * U+0020..U+00FF (the server checks the finer MS-FSCC rules), flags 0 or 0x80, values of at most
 * 65535 bytes (empty: remove). At most 4096 changes.
 */
export function argEas(cmd: Command, field: string): StoredEa[] | undefined {
  const v = cmd[field];
  if (v === undefined) return undefined;
  if (!Array.isArray(v) || v.length > 4096) refuse('invalid', `${cmd.t}: ${field} must be an array of at most 4096 EAs`);
  return v.map((x: unknown, i) => {
    const e = x as Partial<StoredEa> | null;
    if (typeof e !== 'object' || e === null) refuse('invalid', `${cmd.t}: ${field}[${i}] is not an object`);
    const { name, flags, value } = e;
    if (typeof name !== 'string' || name.length === 0 || name.length > 255 || EA_NAME_BAD.test(name)) refuse('invalid', `${cmd.t}: ${field}[${i}].name is not an EA name`);
    if (flags !== 0 && flags !== 0x80) refuse('invalid', `${cmd.t}: ${field}[${i}].flags must be 0 or 0x80`);
    if (!(value instanceof Uint8Array) || value.length > 0xffff) refuse('invalid', `${cmd.t}: ${field}[${i}].value must be at most 65535 bytes`);
    return { name, flags, value };
  });
}

/**
 * The EA list after `changes` (deterministic): names upper-cased in ASCII, a change replaces the EA
 * of its name in place or is appended, an empty value removes it. Over EA_PACKED_BYTES_MAX: 'invalid'.
 */
export function mergeEas(cmd: Command, current: readonly StoredEa[] | undefined, changes: readonly StoredEa[]): StoredEa[] | undefined {
  const next = (current ?? []).slice();
  for (const c of changes) {
    const name = c.name.replace(/[a-z]+/g, (m) => m.toUpperCase());
    const i = next.findIndex((ea) => ea.name === name);
    if (c.value.length === 0) {
      if (i >= 0) next.splice(i, 1);
      continue;
    }
    const ea: StoredEa = { name, flags: c.flags, value: c.value };
    if (i >= 0) next[i] = ea;
    else next.push(ea);
  }
  if (eaPackedBytes(next) > EA_PACKED_BYTES_MAX) refuse('invalid', `${cmd.t}: EAs of more than ${EA_PACKED_BYTES_MAX} packed bytes`);
  return next.length === 0 ? undefined : next;
}

export interface Dirent {
  /** The name as given (case preserved). */
  name: string;
  ino: number;
  kind: NodeKind;
}

export interface RootRecord {
  ino: number;
}

export interface StreamRecord {
  /** Stream name as given (without ':' and without the ':$DATA' type). */
  name: string;
  fork: number;
  size: number;
}

export interface ForkRecord {
  ino: number;
  /** Named stream owning the fork (its name as given); absent for the unnamed data stream. */
  stream?: string;
}

export interface Extent {
  length: number;
  /** Key of the immutable object holding the bytes. */
  object: string;
  /** Offset in the object of the extent's first byte. */
  objectOffset: number;
}

/** An extent with its position in the fork (what the read helpers return). */
export interface MappedExtent extends Extent {
  offset: number;
}

export interface ObjectRecord {
  /** Number of extent records (in every fork) that point into the object; always > 0. */
  refs: number;
  bytes?: number;
}

export interface GcRecord {
  /** Log position of the command that dropped the last reference. */
  since: number;
  bytes?: number;
}

export interface ReapRecord {
  /** Inode the fork belonged to. */
  ino: number;
  /** Log position of the unlink that queued it. */
  since: number;
}

export interface Counter {
  last: number;
}

/**
 * Bytes a fork's extents map (the sum of their lengths), kept by every command that changes the map
 * (extents.ts remap). `bytes` is absent when it is not known: a fork whose map already held more than
 * MAPPED_COUNT_SCAN_MAX extents when counting started (maps written before the count existed).
 */
export interface MappedRecord {
  bytes?: number;
}

// ---- keys ----

/**
 * Case-insensitive lookup key of a name: `name.toUpperCase()`. NTFS compares names through the
 * volume's upcase table (one UTF-16 unit to one unit); toUpperCase approximates it and also applies
 * a few one-to-many mappings ('ß' -> 'SS'), so a handful of names NTFS keeps apart collide here. The
 * same rule as the IOS SPI (src/ios/spi.ts) and the posix driver, so both drivers agree on which
 * names are the same file.
 */
export function fold(name: string): string {
  return name.toUpperCase();
}

export const inoKey = (ino: number): Buffer => key('ino', ino);
export const direntKey = (parent: number, name: string): Buffer => key('dirent', parent, fold(name));
export const direntPrefix = (parent: number): Buffer => key('dirent', parent);
export const rootKey = (share: string): Buffer => key('root', share.toUpperCase());
export const streamKey = (ino: number, name: string): Buffer => key('stream', ino, fold(name));
export const streamPrefix = (ino: number): Buffer => key('stream', ino);
export const forkKey = (fork: number): Buffer => key('fork', fork);
export const extKey = (fork: number, offset: number): Buffer => key('ext', fork, offset);
export const extPrefix = (fork: number): Buffer => key('ext', fork);
export const objKey = (object: string): Buffer => key('obj', object);
export const gcKey = (object: string): Buffer => key('gc', object);
/** An object the collector claimed for deletion (collector.ts family): never referenced again. */
export const gcClaimKey = (object: string): Buffer => key('gcx', object);
export const reapKey = (fork: number): Buffer => key('reap', fork);
export const mappedKey = (fork: number): Buffer => key('mapped', fork);

/** Hands out the next id of a counter (1, 2, ...). Deterministic: the counter is state. */
export function nextId(tx: { get: ReadTx['get']; put(k: Uint8Array, v: object): void }, which: 'ino' | 'fork'): number {
  const k = key('ctr', which);
  const c = tx.get<Counter>(k);
  const id = (c?.last ?? 0) + 1;
  tx.put(k, { last: id } satisfies Counter);
  return id;
}

// ---- reading records (normalising what msgpack gives back) ----

const asTime = (v: unknown): Filetime => BigInt(v as bigint | number);

/** The inode with its FILETIME fields as bigint (codec.ts: small bigints come back as numbers). */
export function getInode(tx: ReadTx, ino: number): Inode | undefined {
  if (!isId(ino)) return undefined;
  const rec = tx.get<Inode>(inoKey(ino));
  if (rec === undefined) return undefined;
  rec.creation = asTime(rec.creation);
  rec.lastAccess = asTime(rec.lastAccess);
  rec.lastWrite = asTime(rec.lastWrite);
  rec.change = asTime(rec.change);
  return rec;
}

export function getFork(tx: ReadTx, fork: number): ForkRecord | undefined {
  return isId(fork) ? tx.get<ForkRecord>(forkKey(fork)) : undefined;
}

// ---- argument checks ----

/** A refused command detected before any write; handlers turn it into fail(code, message). */
import { refuse } from '../tx.js';
export { guarded, Refusal, refuse } from '../tx.js';

export const isId = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v > 0;

export function argId(cmd: Command, field: string): number {
  const v = cmd[field];
  if (!isId(v)) refuse('invalid', `${cmd.t}: ${field} must be a positive integer id`);
  return v;
}

/** A byte offset or length: integer in [0, metaFileBytesMax]; beyond it 'limit'. */
export function argBytes(cmd: Command, field: string, v: unknown = cmd[field]): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
    refuse('invalid', `${cmd.t}: ${field} must be a non-negative integer`);
  }
  if (v > limits.metaFileBytesMax) refuse('limit', `${cmd.t}: ${field} ${v} exceeds ${limits.metaFileBytesMax}`);
  return v;
}

export function argBool(cmd: Command, field: string): boolean {
  const v = cmd[field];
  if (typeof v !== 'boolean') refuse('invalid', `${cmd.t}: ${field} must be a boolean`);
  return v;
}

const FILETIME_MAX = (1n << 63n) - 1n;

/** A FILETIME (bigint, or a number that is a safe integer) in [0, 2^63). */
export function argTime(cmd: Command, field: string, optional = false): Filetime | undefined {
  const v = cmd[field];
  if (v === undefined && optional) return undefined;
  let t: bigint;
  if (typeof v === 'bigint') t = v;
  else if (typeof v === 'number' && Number.isSafeInteger(v)) t = BigInt(v);
  else refuse('invalid', `${cmd.t}: ${field} must be a FILETIME (bigint or integer)`);
  if (t < 0n || t > FILETIME_MAX) refuse('invalid', `${cmd.t}: ${field} is out of the FILETIME range`);
  return t;
}

export function argAttributes(cmd: Command, field: string): number | undefined {
  const v = cmd[field];
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 0xffff_ffff) {
    refuse('invalid', `${cmd.t}: ${field} must be a 32-bit unsigned integer`);
  }
  return v;
}

/**
 * A security descriptor, opaque to storage (src/ios/spi.ts: the server parses and validates it):
 * 1..securityDescriptorBytesMax bytes, stored and returned as set.
 */
export function argSd(cmd: Command, field: string): Uint8Array | undefined {
  const v = cmd[field];
  if (v === undefined) return undefined;
  if (!(v instanceof Uint8Array)) refuse('invalid', `${cmd.t}: ${field} must be bytes`);
  if (v.length > limits.securityDescriptorBytesMax) {
    refuse('limit', `${cmd.t}: security descriptor of ${v.length} bytes exceeds ${limits.securityDescriptorBytesMax}`);
  }
  if (v.length === 0) refuse('invalid', `${cmd.t}: ${field} is empty`);
  return v;
}

const LONE_SURROGATE = /[\uD800-\uDFFF]/u; // with the u flag only unpaired surrogates match
// MS-FSCC 2.1.5.2: a file name may not contain " * / : < > ? \ | or characters 0x00-0x1F.
const FILE_NAME_BAD = /[\u0000-\u001f"*/:<>?\\|]/;
// MS-FSCC 2.1.5.3: a stream name may not contain NUL, '\', '/' or ':'.
const STREAM_NAME_BAD = /[\u0000/:\\]/;

function checkKeyBytes(cmd: Command, field: string, name: string): void {
  // The folded name is a key part; one-to-many case mappings can grow it (e.g. U+0390 -> 3 units).
  if (Buffer.byteLength(fold(name), 'utf8') + 32 > limits.metaKeyBytesMax) {
    refuse('invalid', `${cmd.t}: ${field} is too long once case-folded`);
  }
}

/**
 * A file or directory name (one path component): 1..nameUnitsMax UTF-16 units, well-formed UTF-16,
 * none of the characters MS-FSCC 2.1.5.2 forbids (which include NUL, '\', '/' and ':'; streams are
 * named separately), not '.' or '..'.
 */
export function argName(cmd: Command, field: string, v: unknown = cmd[field]): string {
  if (typeof v !== 'string' || v.length === 0 || v.length > limits.nameUnitsMax) {
    refuse('invalid', `${cmd.t}: ${field} must be a name of 1..${limits.nameUnitsMax} characters`);
  }
  if (v === '.' || v === '..') refuse('invalid', `${cmd.t}: ${field} may not be '.' or '..'`);
  if (FILE_NAME_BAD.test(v) || LONE_SURROGATE.test(v)) refuse('invalid', `${cmd.t}: ${field} contains a character a file name may not hold`);
  checkKeyBytes(cmd, field, v);
  return v;
}

/** A named stream's name (without the ':' prefix and ':$DATA' type): 1..255 units (MS-FSCC 2.1.5.3). */
export function argStreamName(cmd: Command, field: string): string {
  const v = cmd[field];
  if (typeof v !== 'string' || v.length === 0 || v.length > limits.nameUnitsMax) {
    refuse('invalid', `${cmd.t}: ${field} must be a stream name of 1..${limits.nameUnitsMax} characters`);
  }
  if (STREAM_NAME_BAD.test(v) || LONE_SURROGATE.test(v)) refuse('invalid', `${cmd.t}: ${field} contains a character a stream name may not hold`);
  checkKeyBytes(cmd, field, v);
  return v;
}

/** True if `name` could name something (read helpers answer "absent" for impossible names). */
export function isPlausibleName(name: unknown): name is string {
  return (
    typeof name === 'string' &&
    name.length > 0 &&
    name.length <= limits.nameUnitsMax &&
    !name.includes('\u0000') &&
    !LONE_SURROGATE.test(name) &&
    Buffer.byteLength(fold(name), 'utf8') + 32 <= limits.metaKeyBytesMax
  );
}

export function argObjectKey(cmd: Command, field: string, v: unknown = cmd[field]): string {
  if (typeof v !== 'string' || v.length === 0) refuse('invalid', `${cmd.t}: ${field} must be a non-empty object key`);
  if (v.includes('\u0000') || LONE_SURROGATE.test(v)) refuse('invalid', `${cmd.t}: ${field} holds NUL or an unpaired surrogate`);
  if (Buffer.byteLength(v, 'utf8') > limits.metaObjectKeyBytesMax) {
    refuse('invalid', `${cmd.t}: ${field} exceeds ${limits.metaObjectKeyBytesMax} bytes`);
  }
  return v;
}


/** Work budget of one command (limits.metaExtentsPerCommandMax extent records). */
export class Budget {
  readonly max: number;
  constructor(public left: number) {
    this.max = left;
  }
  take(n: number, what: string): void {
    if (n > this.left) refuse('limit', `${what}: touches more than ${this.max} extent records; split the range`);
    this.left -= n;
  }
}
