// The open table: every open, share mode, oplock, lease, byte-range lock and durable/persistent
// handle record lives here, in the replicated state, even on one node, so another node can see and
// reclaim it (ARCHITECTURE.md "Continuous availability"; HYPERV-CA.md, the checklist).
//
// Pure, deterministic handlers over ApplyTx: no clock, randomness or I/O (time and ids arrive in the
// command). Plain numbers and strings only: a file is the caller's string id ("<share>/<ino>" or a
// posix file id) and a stream its name ('' = the unnamed data stream), so both drivers can use it.
//
// Key layout (key() tuples, bytewise order = tuple order):
//   ('open', openId)                        -> Open          persistent FileId = openId
//   ('open-file', file, openId)             -> {}            opens of one file, all streams
//   ('open-create', clientGuid, createGuid) -> { openId }    replay / DH2C lookup (MS-SMB2 3.3.5.9.10)
//   ('open-app', appInstanceId, openId)     -> {}            APP_INSTANCE_ID lookup (3.3.5.9.13)
//   ('open-node', node, openId)             -> {}            opens a node serves (active ones only)
//   ('open-disc', expiresAt, openId)        -> {}            disconnected opens by expiry (3.3.2.2)
//   ('lease', clientGuid, leaseKey)         -> Lease         (3.3.1.11 lease table, 3.3.1.12 lease)
//   ('lock', file, offsetKey, openId, seq)  -> Lock          byte-range locks (MS-FSA 2.1.1.7)
//   ('ctr', 'open')                         -> { last }      last openId handed out
// offsetKey is the lock's offset clamped to Number.MAX_SAFE_INTEGER (key parts are safe integers);
// the record keeps the exact 64-bit offset and length (number when safe, bigint beyond).
//
// How the server uses it (issue 4):
// - CREATE proposes open.create. ok {status:'ok'} -> the open exists; if `waitFor` is not empty the
//   server waits for those breaks (acknowledged or timed out) before it answers, as MS-FSA 2.1.4.12
//   makes the opener wait. ok {status:'break-required'} -> no open was created; the server lets the
//   breaks complete (they are recorded here and delivered by the node named in each entry, through
//   the watch) and proposes the same open.create again (MS-FSA 2.1.5.1.2: handle caching is broken
//   before the sharing check is repeated).
// - Ack/timeout commands complete breaks; CLOSE, LOCK, disconnect, reconnect, the scavenger and
//   node failure have their commands below. testLock() answers READ/WRITE range checks.
//
// Deliberate simplifications (also listed in the final report):
// - A sharing conflict with any open that holds neither a handle-caching lease nor a batch oplock
//   fails at once; Windows would first break the other holders' handle caching and then fail.
// - Disconnected persistent opens keep their lease/oplock through a break (the break waits for the
//   reconnect or the break timeout); disconnected durable (non-persistent) opens that lose handle
//   caching are closed at once (MS-SMB2 3.3.4.6, 3.3.4.7).
// - An SMB2 LOCK whose unlock list fails part way keeps the unlocks done so far (MS-SMB2 3.3.5.14):
//   the result is ok with `failed` set, so those writes are not rolled back.
import { limits } from '../../base/limits.js';
import { decodeKey, key } from '../keys.js';
import { guarded, ok, refuse, type ApplyTx, type Command, type CommandResult, type HandlerTable, type ReadTx } from '../tx.js';

// ---- constants (MS-SMB2 2.2.13, 2.2.13.1.1, 2.2.13.2.8) ----

export const FILE_READ_DATA = 0x0000_0001;
export const FILE_WRITE_DATA = 0x0000_0002;
export const FILE_APPEND_DATA = 0x0000_0004;
export const FILE_EXECUTE = 0x0000_0020;
export const FILE_READ_ATTRIBUTES = 0x0000_0080;
export const FILE_WRITE_ATTRIBUTES = 0x0000_0100;
export const DELETE = 0x0001_0000;
export const READ_CONTROL = 0x0002_0000;
export const SYNCHRONIZE = 0x0010_0000;

export const FILE_SHARE_READ = 0x1;
export const FILE_SHARE_WRITE = 0x2;
export const FILE_SHARE_DELETE = 0x4;

/** CreateOptions bit (MS-SMB2 2.2.13). */
export const FILE_DELETE_ON_CLOSE = 0x0000_1000;

export const LEASE_NONE = 0;
export const LEASE_R = 0x1;
export const LEASE_H = 0x2;
export const LEASE_W = 0x4;

/** Access bits that make an open take part in sharing checks (MS-FSA 2.1.5.1.2.2). */
const DATA_ACCESS = FILE_READ_DATA | FILE_EXECUTE | FILE_WRITE_DATA | FILE_APPEND_DATA | DELETE;
/** Opens asking for no more than these break no lease (MS-FSA 2.1.4.12, case OPEN). */
const LEASE_ATTR_ONLY = FILE_READ_ATTRIBUTES | FILE_WRITE_ATTRIBUTES | READ_CONTROL | SYNCHRONIZE;
/** Opens asking for no more than these break no oplock (MS-FSA 2.1.4.12, case OPEN). */
const OPLOCK_ATTR_ONLY = FILE_READ_ATTRIBUTES | FILE_WRITE_ATTRIBUTES | SYNCHRONIZE;

const LOCK_SEQUENCE_ENTRIES = 64; // MS-SMB2 3.3.1.10 LockSequenceArray
/** A CreateGuid of zeros, as the server's hex form of the 16 bytes. */
const ZERO_GUID = '00000000000000000000000000000000';
const U64_MAX = (1n << 64n) - 1n;
const SAFE_MAX = BigInt(Number.MAX_SAFE_INTEGER);

// ---- records ----

export type OplockLevel = 'none' | 'II' | 'exclusive' | 'batch' | 'lease';
export type DurableKind = 'none' | 'v1' | 'v2' | 'persistent';
/** A 64-bit unsigned value: a number while it is a safe integer, a bigint beyond (codec.ts). */
export type U64 = number | bigint;

/** A break in progress on a non-lease oplock (MS-SMB2 3.3.1.10 OplockState Breaking). */
export interface OplockBreaking {
  to: 'II' | 'none';
  startedAt: number;
  /** A further break asked for while this one is in flight (MS-FSA BREAK_TO_TWO_TO_NONE). */
  next?: 'none';
}

/** One open (MS-SMB2 3.3.1.10 Per Open: the fields another node needs to judge and reclaim it). */
export interface Open {
  /** Persistent FileId (Open.DurableFileId), from the ('ctr','open') counter. */
  openId: number;
  file: string;
  /** Stream name; '' is the unnamed data stream (MS-FSA 2.1.1.5). */
  stream: string;
  directory: boolean;
  /** Node serving the open and that node's incarnation (its process lifetime). */
  node: string;
  inc: number;
  sessionId?: U64;
  clientGuid: string;
  createGuid?: string;
  appInstanceId?: string;
  /** [AppInstanceVersionHigh, AppInstanceVersionLow] (MS-SMB2 2.2.13.2.15). */
  appInstanceVersion?: [U64, U64];
  /** Granted access (generic bits already mapped by the server). */
  desiredAccess: number;
  shareAccess: number;
  createOptions: number;
  deleteOnClose: boolean;
  oplock: OplockLevel;
  oplockBreaking?: OplockBreaking;
  leaseKey?: string;
  durable: DurableKind;
  /** Durable/persistent/resilient timeout (Open.DurableOpenTimeout / ResilientOpenTimeout). */
  timeoutMs: number;
  /** Durable owner: the SID of the user that opened it (Open.DurableOwner). */
  owner: string;
  state: 'active' | 'disconnected';
  disconnectedAt?: number;
  expiresAt?: number;
  /** Open.ChannelSequence (MS-SMB2 3.3.5.2.10). */
  channelSequence: number;
  /** Open.LockSequenceArray: entry i holds the sequence number stored for index i + 1, or null. */
  lockSequence: (number | null)[];
  resilient: boolean;
  created: number;
  /** Next per-open lock sequence number (part of the lock key) and the locks this open holds. */
  nextLockSeq: number;
  lockCount: number;
}

/** A lease break in progress (MS-SMB2 3.3.1.12 Breaking, BreakToLeaseState). */
export interface LeaseBreaking {
  to: number;
  /** Lease epoch announced with the break (v2; 0 for v1). */
  epoch: number;
  startedAt: number;
  /** A lower state asked for while this break is in flight; broken to once this one is acknowledged. */
  next?: number;
}

/** One lease (MS-SMB2 3.3.1.12), keyed by (ClientGuid, LeaseKey). */
export interface Lease {
  clientGuid: string;
  leaseKey: string;
  file: string;
  stream: string;
  /** LEASE_R | LEASE_H | LEASE_W. */
  state: number;
  epoch: number;
  version: 1 | 2;
  parentLeaseKey?: string;
  breaking?: LeaseBreaking;
  /** Opens that reference the lease (Lease.LeaseOpens); the record goes with the last one. */
  opens: number;
}

/** One byte-range lock (MS-FSA 2.1.1.7); the range is [offset, offset + length). */
export interface Lock {
  openId: number;
  stream: string;
  offset: U64;
  length: U64;
  exclusive: boolean;
}

export type BreakNotice =
  | {
      kind: 'lease';
      clientGuid: string;
      leaseKey: string;
      /** Node that should deliver it (an active open of the lease lives there); '' if none. */
      node: string;
      nodes: string[];
      from: number;
      to: number;
      epoch: number;
      ackRequired: boolean;
    }
  | { kind: 'oplock'; openId: number; node: string; from: OplockLevel; to: 'II' | 'none'; ackRequired: boolean };

/** A break the caller has to wait for (acknowledgment or timeout) before going on. */
export type WaitItem = { kind: 'lease'; clientGuid: string; leaseKey: string } | { kind: 'oplock'; openId: number };

// ---- keys ----

export const openKey = (id: number): Buffer => key('open', id);
const openFileKey = (file: string, id: number): Buffer => key('open-file', file, id);
const openCreateKey = (clientGuid: string, createGuid: string): Buffer => key('open-create', clientGuid, createGuid);
const openAppKey = (appInstanceId: string, id: number): Buffer => key('open-app', appInstanceId, id);
const openNodeKey = (node: string, id: number): Buffer => key('open-node', node, id);
const openDiscKey = (expiresAt: number, id: number): Buffer => key('open-disc', expiresAt, id);
export const leaseRecordKey = (clientGuid: string, leaseKey: string): Buffer => key('lease', clientGuid, leaseKey);
const lockPrefix = (file: string): Buffer => key('lock', file);
const lockKey = (file: string, offset: bigint, openId: number, seq: number): Buffer =>
  key('lock', file, offset > SAFE_MAX ? Number.MAX_SAFE_INTEGER : Number(offset), openId, seq);

const leaseId = (clientGuid: string, leaseKey: string): string => `${clientGuid}\u0000${leaseKey}`;

// ---- argument checks ----


const LONE_SURROGATE = /[\uD800-\uDFFF]/u;

function isIdString(v: unknown, allowEmpty = false): v is string {
  return (
    typeof v === 'string' &&
    (allowEmpty || v.length > 0) &&
    !v.includes('\u0000') &&
    !LONE_SURROGATE.test(v) &&
    Buffer.byteLength(v, 'utf8') <= limits.metaOpenStringBytesMax
  );
}

function argStr(cmd: Command, field: string, v: unknown = cmd[field], allowEmpty = false): string {
  if (!isIdString(v, allowEmpty)) {
    refuse('invalid', `${cmd.t}: ${field} must be a string of 1..${limits.metaOpenStringBytesMax} bytes without NUL`);
  }
  return v;
}

function optStr(cmd: Command, field: string, v: unknown = cmd[field]): string | undefined {
  return v === undefined ? undefined : argStr(cmd, field, v);
}

function argInt(cmd: Command, field: string, v: unknown = cmd[field], min = 0, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max) {
    refuse('invalid', `${cmd.t}: ${field} must be an integer in [${min}, ${max}]`);
  }
  return v;
}

const argU32 = (cmd: Command, field: string, v: unknown = cmd[field]): number => argInt(cmd, field, v, 0, 0xffff_ffff);
const argId = (cmd: Command, field: string): number => argInt(cmd, field, cmd[field], 1);
const argTime = (cmd: Command, field: string): number => argInt(cmd, field);

function optBool(cmd: Command, field: string, v: unknown = cmd[field]): boolean {
  if (v === undefined) return false;
  if (typeof v !== 'boolean') refuse('invalid', `${cmd.t}: ${field} must be a boolean`);
  return v;
}

function argU64(cmd: Command, field: string, v: unknown): bigint {
  let b: bigint;
  if (typeof v === 'bigint') b = v;
  else if (typeof v === 'number' && Number.isSafeInteger(v)) b = BigInt(v);
  else refuse('invalid', `${cmd.t}: ${field} must be an unsigned 64-bit integer (number or bigint)`);
  if (b < 0n || b > U64_MAX) refuse('invalid', `${cmd.t}: ${field} is outside [0, 2^64)`);
  return b;
}

function optU64(cmd: Command, field: string, v: unknown = cmd[field]): U64 | undefined {
  return v === undefined ? undefined : narrow(argU64(cmd, field, v));
}

function argObj(cmd: Command, field: string, v: unknown = cmd[field]): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) refuse('invalid', `${cmd.t}: ${field} must be an object`);
  return v as Record<string, unknown>;
}

function oneOf<T extends string>(cmd: Command, field: string, v: unknown, values: readonly T[]): T {
  if (typeof v !== 'string' || !(values as readonly string[]).includes(v)) {
    refuse('invalid', `${cmd.t}: ${field} must be one of ${values.join(', ')}`);
  }
  return v as T;
}


// ---- 64-bit helpers ----

const big = (v: U64): bigint => (typeof v === 'bigint' ? v : BigInt(v));
const narrow = (v: bigint): U64 => (v <= SAFE_MAX ? Number(v) : v);
const sameU64 = (a: U64 | undefined, b: U64 | undefined): boolean =>
  a === undefined || b === undefined ? a === b : big(a) === big(b);

/** Drops undefined fields so a record encodes the same whichever way it was built. */
function clean<T extends object>(o: T): T {
  for (const k of Object.keys(o) as (keyof T)[]) if (o[k] === undefined) delete o[k];
  return o;
}

// ---- lease states ----

/** The four legal non-empty lease states (MS-FSA 2.1.5.18): R, RW, RH, RWH. */
export function isValidLeaseState(s: number): boolean {
  return s === 0 || s === LEASE_R || s === (LEASE_R | LEASE_W) || s === (LEASE_R | LEASE_H) || s === 7;
}

/** Removes `mask` from a lease state; a state that loses R loses everything (H or W need R). */
function leaseMinus(state: number, mask: number): number {
  const s = state & ~mask;
  return s & LEASE_R ? s : 0;
}

// ---- the per-command work area ----

/**
 * Caches the open and lease records one command touches so several steps can change the same record
 * (a break, then a close that drops a lease reference) without overwriting each other; flush() writes
 * them back in first-touched order. Index and lock records are written straight to the transaction.
 */
class Work {
  readonly breaks: BreakNotice[] = [];
  readonly waitFor: WaitItem[] = [];
  readonly closed: number[] = [];
  private readonly opens = new Map<number, Open | null>();
  private readonly leases = new Map<string, Lease | null>();

  constructor(
    readonly tx: ApplyTx,
    readonly now: number,
  ) {}

  open(id: number): Open | undefined {
    const c = this.opens.get(id);
    if (c !== undefined) return c ?? undefined;
    const rec = this.tx.get<Open>(openKey(id));
    if (rec !== undefined) this.opens.set(id, rec);
    return rec;
  }
  touchOpen(o: Open): void {
    this.opens.set(o.openId, o);
  }
  forgetOpen(id: number): void {
    this.opens.set(id, null);
  }
  lease(clientGuid: string, leaseKey: string): Lease | undefined {
    const id = leaseId(clientGuid, leaseKey);
    const c = this.leases.get(id);
    if (c !== undefined) return c ?? undefined;
    const rec = this.tx.get<Lease>(leaseRecordKey(clientGuid, leaseKey));
    if (rec !== undefined) this.leases.set(id, rec);
    return rec;
  }
  touchLease(l: Lease): void {
    this.leases.set(leaseId(l.clientGuid, l.leaseKey), l);
  }
  forgetLease(l: Lease): void {
    this.leases.set(leaseId(l.clientGuid, l.leaseKey), null);
  }
  leaseOf(o: Open): Lease | undefined {
    return o.leaseKey === undefined ? undefined : this.lease(o.clientGuid, o.leaseKey);
  }
  /** Opens of a file (all streams), in openId order. */
  opensOf(file: string): Open[] {
    const out: Open[] = [];
    for (const [k] of this.tx.range<object>(key('open-file', file), { limit: limits.metaOpensPerFileMax + 1 })) {
      const id = decodeKey(k)[2] as number;
      const o = this.open(id);
      if (o !== undefined) out.push(o);
    }
    return out;
  }
  flush(): void {
    for (const [id, o] of this.opens) {
      if (o === null) this.tx.del(openKey(id));
      else this.tx.put(openKey(id), clean(o));
    }
    for (const l of this.leases.values()) {
      if (l !== null) this.tx.put(leaseRecordKey(l.clientGuid, l.leaseKey), clean(l));
    }
    for (const [id, l] of this.leases) {
      if (l === null) {
        const [cg, lk] = id.split('\u0000') as [string, string];
        this.tx.del(leaseRecordKey(cg, lk));
      }
    }
  }
}

// ---- read helpers (pure functions over ReadTx) ----

export function getOpen(tx: ReadTx, openId: number): Open | undefined {
  return Number.isSafeInteger(openId) && openId > 0 ? tx.get<Open>(openKey(openId)) : undefined;
}

/** Opens of a file, all streams, in openId order (at most limits.metaOpensPerFileMax). */
export function opensOfFile(tx: ReadTx, file: string): Open[] {
  if (!isIdString(file)) return [];
  const out: Open[] = [];
  for (const [k] of tx.range<object>(key('open-file', file), { limit: limits.metaOpensPerFileMax })) {
    const o = tx.get<Open>(openKey(decodeKey(k)[2] as number));
    if (o !== undefined) out.push(o);
  }
  return out;
}

/** The open a (ClientGuid, CreateGuid) pair names (MS-SMB2 3.3.5.9.10 replay, 3.3.5.9.12 DH2C). */
export function findByCreateGuid(tx: ReadTx, clientGuid: string, createGuid: string): Open | undefined {
  if (!isIdString(clientGuid) || !isIdString(createGuid)) return undefined;
  const idx = tx.get<{ openId: number }>(openCreateKey(clientGuid, createGuid));
  return idx === undefined ? undefined : tx.get<Open>(openKey(idx.openId));
}

export function getLease(tx: ReadTx, clientGuid: string, leaseKey: string): Lease | undefined {
  if (!isIdString(clientGuid) || !isIdString(leaseKey)) return undefined;
  return tx.get<Lease>(leaseRecordKey(clientGuid, leaseKey));
}

/** Byte-range locks of a file (all streams) in key order, offsets and lengths as bigint. */
export function locksOfFile(tx: ReadTx, file: string): (Omit<Lock, 'offset' | 'length'> & { offset: bigint; length: bigint })[] {
  if (!isIdString(file)) return [];
  const out = [];
  for (const [, l] of tx.range<Lock>(lockPrefix(file), { limit: limits.metaLocksPerFileMax })) {
    out.push({ ...l, offset: big(l.offset), length: big(l.length) });
  }
  return out;
}

/**
 * MS-FSA 2.1.4.10: does an access to [offset, offset + length) conflict with a byte-range lock?
 * `lockIntent` false is a READ (exclusive false) or WRITE (exclusive true) check (MS-FSA 2.1.5.3,
 * 2.1.5.4); true is a lock request. LockKey does not exist in SMB2 (always 0).
 */
export function rangeConflicts(
  lock: { openId: number; offset: bigint; length: bigint; exclusive: boolean },
  offset: bigint,
  length: bigint,
  exclusive: boolean,
  lockIntent: boolean,
  openId: number,
): boolean {
  if (offset === 0n && length === 0n) return false; // the {0, 0} range conflicts with nothing
  if (lock.offset === 0n && lock.length === 0n) return false;
  const last1 = offset + length - 1n;
  const last2 = lock.offset + lock.length - 1n;
  if (!(offset <= last2 && last1 >= lock.offset)) return false;
  if (lock.exclusive) {
    // Exclusive locks block every other open; the owner may read and write through them and take
    // shared locks inside them, but not another overlapping exclusive lock.
    if (lock.openId !== openId) return true;
    return exclusive && lockIntent;
  }
  // Shared locks block every access with exclusive intent, the owner's included.
  return exclusive;
}

/**
 * READ/WRITE check for the server (MS-FSA 2.1.5.3 / 2.1.5.4): true if the range is blocked by a lock
 * on the open's stream. `exclusive` is true for a write.
 */
export function testLock(tx: ReadTx, file: string, offset: U64, length: U64, exclusive: boolean, openId: number): boolean {
  const stream = getOpen(tx, openId)?.stream ?? '';
  const off = big(offset);
  const len = big(length);
  for (const l of locksOfFile(tx, file)) {
    if (l.stream === stream && rangeConflicts(l, off, len, exclusive, false, openId)) return true;
  }
  return false;
}

/** True if the open may be reclaimed by a reconnect: disconnected, or its node incarnation is dead. */
function ownerGone(tx: ReadTx, o: Open): boolean {
  if (o.state === 'disconnected') return true;
  // The node record belongs to the cluster family (key('node', id) -> { incarnation, state }).
  const n = tx.get<{ incarnation?: number; state?: string }>(key('node', o.node));
  if (n === undefined) return false;
  return n.incarnation !== o.inc || n.state === 'down' || n.state === 'left';
}

// ---- open bookkeeping ----

function nextOpenId(tx: ApplyTx): number {
  const k = key('ctr', 'open');
  const c = tx.get<{ last: number }>(k);
  const id = (c?.last ?? 0) + 1;
  tx.put(k, { last: id });
  return id;
}

/** Removes an open with its indexes, locks and lease reference (MS-SMB2 3.3.4.17). */
function dropOpen(w: Work, o: Open): void {
  const tx = w.tx;
  w.forgetOpen(o.openId);
  tx.del(openFileKey(o.file, o.openId));
  if (o.createGuid !== undefined) {
    const ck = openCreateKey(o.clientGuid, o.createGuid);
    if (tx.get<{ openId: number }>(ck)?.openId === o.openId) tx.del(ck);
  }
  if (o.appInstanceId !== undefined) tx.del(openAppKey(o.appInstanceId, o.openId));
  if (o.state === 'active') tx.del(openNodeKey(o.node, o.openId));
  if (o.expiresAt !== undefined) tx.del(openDiscKey(o.expiresAt, o.openId));
  if (o.lockCount > 0) {
    const mine: Buffer[] = [];
    for (const [k, l] of tx.range<Lock>(lockPrefix(o.file))) if (l.openId === o.openId) mine.push(k);
    for (const k of mine) tx.del(k);
  }
  const l = w.leaseOf(o);
  if (l !== undefined) {
    l.opens -= 1;
    // The last open takes the lease with it; a break in flight completes to NONE (3.3.4.17).
    if (l.opens <= 0) w.forgetLease(l);
    else w.touchLease(l);
  }
}

/** Closes an open on the table's own initiative (purge, takeover, expiry) and records it. */
function closeOpen(w: Work, o: Open): void {
  dropOpen(w, o);
  w.closed.push(o.openId);
}

function disconnectOpen(w: Work, o: Open): void {
  w.tx.del(openNodeKey(o.node, o.openId));
  o.state = 'disconnected';
  o.disconnectedAt = w.now;
  o.expiresAt = w.now + o.timeoutMs;
  o.sessionId = undefined;
  w.tx.put(openDiscKey(o.expiresAt, o.openId), {});
  w.touchOpen(o);
}

function reactivate(w: Work, o: Open, node: string, inc: number, sessionId: U64 | undefined): void {
  if (o.state === 'disconnected') {
    if (o.expiresAt !== undefined) w.tx.del(openDiscKey(o.expiresAt, o.openId));
    o.state = 'active';
    o.disconnectedAt = undefined;
    o.expiresAt = undefined;
  } else {
    w.tx.del(openNodeKey(o.node, o.openId));
  }
  o.node = node;
  o.inc = inc;
  o.sessionId = sessionId;
  w.tx.put(openNodeKey(node, o.openId), {});
  w.touchOpen(o);
}

function describe(w: Work, o: Open): Record<string, unknown> {
  const l = w.leaseOf(o);
  return clean({
    openId: o.openId,
    oplock: o.oplock,
    durable: o.durable,
    timeoutMs: o.timeoutMs,
    lease:
      l === undefined
        ? undefined
        : clean({
            key: l.leaseKey,
            state: l.state,
            epoch: l.epoch,
            version: l.version,
            parentKey: l.parentLeaseKey,
            breaking: l.breaking === undefined ? undefined : { ...l.breaking },
          }),
  });
}

// ---- sharing (MS-FSA 2.1.5.1.2.1 and 2.1.5.1.2.2) ----

interface Opener {
  access: number;
  share: number;
  stream: string;
  directory: boolean;
}

/** Would the new open conflict with existing open `e`? */
export function sharingConflict(n: Opener, e: Pick<Open, 'desiredAccess' | 'shareAccess' | 'stream' | 'directory'>): boolean {
  // MS-FSA 2.1.5.1.2.1: deleting the primary stream deletes the file, so DELETE access on it is checked
  // against the sharing modes of opens of every stream.
  if (!(n.share & FILE_SHARE_DELETE) && n.access & DATA_ACCESS && e.desiredAccess & DELETE && (e.directory || e.stream === '')) {
    return true;
  }
  if (n.access & DELETE && (n.directory || n.stream === '') && !(e.shareAccess & FILE_SHARE_DELETE) && e.desiredAccess & DATA_ACCESS) {
    return true;
  }
  // MS-FSA 2.1.5.1.2.2: opens of the same stream, both with data access.
  if (e.stream !== n.stream || !(n.access & DATA_ACCESS) || !(e.desiredAccess & DATA_ACCESS)) return false;
  const READS = FILE_READ_DATA | FILE_EXECUTE;
  const WRITES = FILE_WRITE_DATA | FILE_APPEND_DATA;
  return (
    (!(e.shareAccess & FILE_SHARE_READ) && (n.access & READS) !== 0) ||
    (!(e.shareAccess & FILE_SHARE_WRITE) && (n.access & WRITES) !== 0) ||
    (!(e.shareAccess & FILE_SHARE_DELETE) && (n.access & DELETE) !== 0) ||
    (!(n.share & FILE_SHARE_READ) && (e.desiredAccess & READS) !== 0) ||
    (!(n.share & FILE_SHARE_WRITE) && (e.desiredAccess & WRITES) !== 0) ||
    (!(n.share & FILE_SHARE_DELETE) && (e.desiredAccess & DELETE) !== 0)
  );
}

// ---- breaks (MS-FSA 2.1.4.12; MS-SMB2 3.3.4.6, 3.3.4.7) ----

/** What an operation breaks in other holders' caching. */
interface BreakRule {
  /** Lease bits removed (a lease that loses R loses everything). */
  leaseMask: number;
  batch: 'II' | 'none' | null;
  exclusive: 'II' | 'none' | null;
  levelII: 'none' | null;
  /** For opens: the opener's access; attribute-only opens break nothing (2.1.4.12 case OPEN). */
  openAccess?: number;
  /**
   * For opens: the disposition supersedes or overwrites. Such an open writes the data whatever access
   * it asked for, so it breaks oplocks even when it is attribute-only (MS-FSA 2.1.4.12 case OPEN;
   * smbtorture smb2.oplock.exclusive5, batch13/14/16).
   */
  openOverwrite?: boolean;
  /**
   * Lease bits whose break the operation waits for (its acknowledgment or timeout). MS-FSA 2.1.4.12:
   * a break of write caching (an exclusive oplock) is always waited for; a read-handle lease that
   * loses R or H is not, except by OPEN_BREAK_H after a sharing violation (2.1.5.1.2) and by rename,
   * link and delete (2.1.5.14, smbtorture lease.rename_wait), which need the handles closed first
   * (smbtorture lease.breaking4: an overwrite breaks RH to none and goes on at once).
   */
  leaseWait: number;
}

/** OPEN (not overwriting), READ, FLUSH: BreakToTwo, BreakCacheState = WRITE_CACHING. */
const BREAK_TO_TWO: BreakRule = { leaseMask: LEASE_W, batch: 'II', exclusive: 'II', levelII: null, leaseWait: LEASE_W };
/** OPEN with SUPERSEDE/OVERWRITE(_IF), WRITE, LOCK_CONTROL, set EOF: BreakToNone, R|W. */
const BREAK_TO_NONE: BreakRule = { leaseMask: LEASE_R | LEASE_W, batch: 'none', exclusive: 'none', levelII: 'none', leaseWait: LEASE_W };
/**
 * OPEN_BREAK_H after a sharing violation (2.1.5.1.2) with the batch-oplock OPEN break that precedes the
 * sharing check: handle caching goes, a batch oplock drops to II.
 */
const BREAK_HANDLE: BreakRule = { leaseMask: LEASE_H, batch: 'II', exclusive: null, levelII: null, leaseWait: LEASE_W | LEASE_H };
/** Rename, link, delete, set security: HANDLE_CACHING, and a batch oplock breaks to none. */
const BREAK_HANDLE_NONE: BreakRule = { leaseMask: LEASE_H, batch: 'none', exclusive: null, levelII: null, leaseWait: LEASE_W | LEASE_H };
/**
 * Handle caching of leases only, waited for: a rename and a delete-on-close that takes effect (the
 * server's 'lease-handle' op; oplocks are left to the operation's own rules).
 */
const BREAK_LEASE_HANDLE: BreakRule = { leaseMask: LEASE_H, batch: null, exclusive: null, levelII: null, leaseWait: LEASE_W | LEASE_H };

/** The operations open.break knows (see breakCmd). */
export type BreakOp = 'read' | 'write' | 'handle' | 'lease-handle';
const BREAK_OPS = ['read', 'write', 'handle', 'lease-handle'] as const;
const ruleForOp = (op: BreakOp): BreakRule =>
  op === 'read' ? BREAK_TO_TWO : op === 'write' ? BREAK_TO_NONE : op === 'handle' ? BREAK_HANDLE_NONE : BREAK_LEASE_HANDLE;

function oplockTarget(rule: BreakRule, level: OplockLevel): 'II' | 'none' | null {
  if (level === 'batch') return rule.batch;
  if (level === 'exclusive') return rule.exclusive;
  if (level === 'II') return rule.levelII;
  return null;
}

/**
 * Breaks the caching other holders have on `stream` of `file`, as `rule` says. `actorOpenId` and
 * `actorLease` (its lease identity) are never broken (MS-FSA 2.1.4.12.2: same oplock key). Records
 * breaks on the leases/opens, closes disconnected durable opens that cannot keep their handle, and
 * fills w.breaks (notifications to send) and w.waitFor (breaks the caller has to wait for).
 */
function breakHolders(w: Work, file: string, stream: string, actorOpenId: number, actorLease: string | undefined, rule: BreakRule): void {
  const opens = w.opensOf(file).filter((o) => o.stream === stream && o.openId !== actorOpenId);
  const leaseGroups = new Map<string, Open[]>();
  for (const o of opens) {
    if (o.leaseKey !== undefined) {
      const id = leaseId(o.clientGuid, o.leaseKey);
      if (id === actorLease) continue;
      const g = leaseGroups.get(id);
      if (g === undefined) leaseGroups.set(id, [o]);
      else g.push(o);
    }
  }
  const access = rule.openAccess;
  for (const group of leaseGroups.values()) {
    if (access !== undefined && (access & ~LEASE_ATTR_ONLY) === 0) continue;
    const first = group[0]!;
    const l = w.lease(first.clientGuid, first.leaseKey!);
    if (l !== undefined) breakLease(w, l, group, rule);
  }
  if (access !== undefined && (access & ~OPLOCK_ATTR_ONLY) === 0 && rule.openOverwrite !== true) return;
  for (const o of w.opensOf(file)) {
    if (o.stream !== stream || o.leaseKey !== undefined || o.oplock === 'none' || o.oplock === 'lease') continue;
    if (o.openId === actorOpenId) {
      // The actor's own oplock has its oplock key and is not broken (MS-FSA 2.1.4.12.2), except level
      // II: 2.1.4.12 breaks every open in Oplock.IIOplocks to none, the actor's own included, without
      // comparing keys (a write or lock through a level II open breaks it: smbtorture
      // smb2.oplock.batch1, brl1, levelii500). No acknowledgment is needed, and the actor stays open
      // whatever its state (a command may name a disconnected resilient open).
      if (o.oplock !== 'II' || o.oplockBreaking !== undefined || rule.levelII === null) continue;
      o.oplock = 'none';
      w.touchOpen(o);
      if (o.state === 'active') w.breaks.push({ kind: 'oplock', openId: o.openId, node: o.node, from: 'II', to: 'none', ackRequired: false });
      continue;
    }
    breakOplock(w, o, rule);
  }
}

/**
 * Breaks one lease as `rule` says (MS-SMB2 3.3.4.7; MS-FSA 2.1.4.12). `followUp`: the break queued
 * behind one just acknowledged, which announces no new epoch (smbtorture lease.v2_breaking3).
 */
function breakLease(w: Work, l: Lease, group: Open[], rule: BreakRule, followUp = false): void {
  const current = l.breaking ? (l.breaking.next ?? l.breaking.to) : l.state;
  const target = leaseMinus(current, rule.leaseMask);
  // MS-FSA 2.1.4.12: the operation waits while a break in flight still holds bits it needs gone, when
  // those are bits it waits for (write caching always; handle caching for H breaks).
  const waitInFlight = l.breaking !== undefined && (l.state & rule.leaseMask) !== 0 && (l.state & rule.leaseWait) !== 0;
  if (waitInFlight) w.waitFor.push({ kind: 'lease', clientGuid: l.clientGuid, leaseKey: l.leaseKey });
  if (target === current) return;
  if (l.breaking !== undefined) {
    l.breaking.next = target;
    w.touchLease(l);
    return;
  }
  const connected = group.filter((o) => o.state === 'active');
  if (connected.length === 0) {
    if (group.some((o) => o.durable === 'persistent')) {
      // MS-SMB2 3.3.4.7: a persistent open's lease stays breaking; the notification goes out when the
      // client reconnects (3.3.5.9.12), or the break times out.
      if (l.version === 2) l.epoch += 1;
      l.breaking = { to: target, epoch: l.epoch, startedAt: w.now };
      w.touchLease(l);
      w.waitFor.push({ kind: 'lease', clientGuid: l.clientGuid, leaseKey: l.leaseKey });
      return;
    }
    // No connection can receive the break (MS-SMB2 3.3.4.7): the disconnected durable opens of the
    // lease are closed, and the lease goes with its last open (Windows then grants the opener as if
    // they had never been there).
    if (l.version === 2) l.epoch += 1;
    l.state = target;
    w.touchLease(l);
    for (const o of group) if (o.durable !== 'none' || o.resilient) closeOpen(w, o);
    return;
  }
  const from = l.state;
  // MS-SMB2 3.3.4.7: breaking from R alone needs no acknowledgment; v2 leases announce a new epoch.
  const ackRequired = (from & (LEASE_H | LEASE_W)) !== 0;
  if (l.version === 2 && !followUp) l.epoch += 1;
  if (ackRequired) {
    l.breaking = { to: target, epoch: l.epoch, startedAt: w.now };
    // MS-FSA 2.1.4.12: waited for only when the lost bits include one the operation waits for.
    if ((from & ~target & rule.leaseWait) !== 0) w.waitFor.push({ kind: 'lease', clientGuid: l.clientGuid, leaseKey: l.leaseKey });
  } else {
    l.state = target;
  }
  w.touchLease(l);
  const nodes = [...new Set(connected.map((o) => o.node))].sort();
  w.breaks.push({
    kind: 'lease',
    clientGuid: l.clientGuid,
    leaseKey: l.leaseKey,
    node: nodes[0] ?? '',
    nodes,
    from,
    to: target,
    epoch: l.version === 2 ? l.epoch : 0,
    ackRequired,
  });
}

function breakOplock(w: Work, o: Open, rule: BreakRule): void {
  const current: OplockLevel = o.oplockBreaking ? (o.oplockBreaking.next ?? o.oplockBreaking.to) : o.oplock;
  const held = o.oplock;
  if (o.oplockBreaking !== undefined && oplockTarget(rule, held) !== null) {
    w.waitFor.push({ kind: 'oplock', openId: o.openId });
  }
  const target = oplockTarget(rule, current);
  if (target === null || target === current) return;
  if (o.oplockBreaking !== undefined) {
    if (target === 'none') o.oplockBreaking.next = 'none';
    w.touchOpen(o);
    return;
  }
  if (o.state === 'disconnected') {
    if (o.durable === 'persistent') {
      o.oplockBreaking = { to: target, startedAt: w.now };
      w.touchOpen(o);
      w.waitFor.push({ kind: 'oplock', openId: o.openId });
    } else {
      // MS-SMB2 3.3.4.6: a durable open whose break cannot be sent is closed.
      closeOpen(w, o);
    }
    return;
  }
  const ackRequired = current === 'batch' || current === 'exclusive';
  if (ackRequired) {
    o.oplockBreaking = { to: target, startedAt: w.now };
    w.waitFor.push({ kind: 'oplock', openId: o.openId });
  } else {
    o.oplock = target;
  }
  w.touchOpen(o);
  w.breaks.push({ kind: 'oplock', openId: o.openId, node: o.node, from: current, to: target, ackRequired });
}

/** Could breaking this open's handle caching resolve a sharing conflict with it? */
function handleBreakable(w: Work, o: Open, actorLease: string | undefined): boolean {
  if (o.leaseKey !== undefined) {
    if (leaseId(o.clientGuid, o.leaseKey) === actorLease) return false;
    const l = w.leaseOf(o);
    return l !== undefined && (l.state & LEASE_H) !== 0;
  }
  return o.oplock === 'batch';
}

// ---- grant (MS-SMB2 3.3.5.9 "Oplock Acquisition", 3.3.5.9.8, 3.3.5.9.11; MS-FSA 2.1.5.18) ----

interface Others {
  /** Opens on the stream that are not the opener's and not of its lease. */
  count: number;
  /** The same, without stat opens (attribute-only access, no caching): they do not keep a lease from W. */
  dataCount: number;
  exclusive: boolean;
  levelII: boolean;
  handle: boolean;
  locks: boolean;
}

function surveyOthers(w: Work, file: string, stream: string, actorLease: string | undefined): Others {
  const r: Others = { count: 0, dataCount: 0, exclusive: false, levelII: false, handle: false, locks: false };
  for (const o of w.opensOf(file)) {
    if (o.stream !== stream) continue;
    // The opener's own lease is no other holder (MS-FSA 2.1.5.18: same oplock key).
    if (o.leaseKey !== undefined && leaseId(o.clientGuid, o.leaseKey) === actorLease) continue;
    // A stat open (MS-FSA 2.1.4.12: attribute-only access) neither breaks nor, holding no caching,
    // prevents write caching of a lease (smbtorture lease.statopen3).
    if (!((o.desiredAccess & ~LEASE_ATTR_ONLY) === 0 && o.oplock === 'none')) r.dataCount++;
    if (o.leaseKey !== undefined) {
      r.count++;
      const l = w.leaseOf(o);
      if (l === undefined) continue;
      // Breaks in flight are waited for before the grant is answered: judge by their target.
      const s = l.breaking ? (l.breaking.next ?? l.breaking.to) : l.state;
      if (s & LEASE_W) r.exclusive = true;
      if (s & LEASE_H) r.handle = true;
    } else {
      r.count++;
      const lv = o.oplockBreaking ? (o.oplockBreaking.next ?? o.oplockBreaking.to) : o.oplock;
      if (lv === 'batch' || lv === 'exclusive') r.exclusive = true;
      if (lv === 'II') r.levelII = true;
    }
  }
  for (const [, l] of w.tx.range<Lock>(lockPrefix(file), { limit: limits.metaLocksPerFileMax })) {
    if (l.stream === stream) {
      r.locks = true;
      break;
    }
  }
  return r;
}

/** The lease state the object store grants for `want` (MS-SMB2 3.3.5.9: drop W, then H, and retry). */
function grantLeaseState(want: number, others: Others): number {
  let s = isValidLeaseState(want) ? want : 0;
  // W is an exclusive oplock: no other open on the stream but stat opens (MS-FSA 2.1.5.18.1).
  if (s & LEASE_W && others.dataCount > 0) s &= ~LEASE_W;
  if (s & LEASE_W) return s;
  // R and RH are shared oplocks: not over byte-range locks (2.1.5.18), not beside an exclusive
  // oplock, and RH not beside level II oplocks (2.1.5.18.2).
  if (s & LEASE_H && (others.levelII || others.exclusive || others.locks)) s &= ~LEASE_H;
  if (s & LEASE_R && (others.exclusive || others.locks)) s = 0;
  return s;
}

function grantOplock(want: OplockLevel, others: Others, directory: boolean): OplockLevel {
  if (directory || want === 'none' || want === 'lease') return 'none'; // MS-FSA 2.1.5.18: granular only
  // Exclusive and batch need the stream to themselves; otherwise the server asks for level II
  // (MS-SMB2 3.3.5.9 "Oplock Acquisition").
  if ((want === 'batch' || want === 'exclusive') && others.count === 0) return want;
  if (!others.locks && !others.exclusive && !others.handle) return 'II';
  return 'none';
}

// ---- open.create ----

/** The lease an open.create asks for (MS-SMB2 2.2.13.2.8 / 2.2.13.2.10). */
export interface LeaseRequest {
  key: string;
  state: number;
  version: 1 | 2;
  parentKey?: string;
  epoch: number;
}

/** The fields of an open.create, as parseCreate() checks them. */
export interface CreateArgs {
  file: string;
  stream: string;
  directory: boolean;
  node: string;
  inc: number;
  sessionId?: U64;
  clientGuid: string;
  createGuid?: string;
  appInstanceId?: string;
  appInstanceVersion?: [U64, U64];
  desiredAccess: number;
  shareAccess: number;
  createOptions: number;
  overwrite: boolean;
  oplock: OplockLevel;
  lease?: LeaseRequest;
  durable?: { kind: 'v1' | 'v2' | 'persistent'; timeoutMs: number };
  caShare: boolean;
  replay: boolean;
  owner: string;
  channelSequence: number;
  now: number;
}

function parseCreate(cmd: Command): CreateArgs {
  const a: CreateArgs = {
    file: argStr(cmd, 'file'),
    stream: cmd.stream === undefined ? '' : argStr(cmd, 'stream', cmd.stream, true),
    directory: optBool(cmd, 'directory'),
    node: argStr(cmd, 'node'),
    inc: argInt(cmd, 'inc'),
    sessionId: optU64(cmd, 'sessionId'),
    clientGuid: argStr(cmd, 'clientGuid'),
    createGuid: optStr(cmd, 'createGuid'),
    appInstanceId: optStr(cmd, 'appInstanceId'),
    desiredAccess: argU32(cmd, 'desiredAccess'),
    shareAccess: argInt(cmd, 'shareAccess', cmd.shareAccess, 0, 7),
    createOptions: argU32(cmd, 'createOptions'),
    overwrite: optBool(cmd, 'overwrite'),
    oplock: oneOf(cmd, 'oplock', cmd.oplock, ['none', 'II', 'exclusive', 'batch', 'lease'] as const),
    caShare: optBool(cmd, 'caShare'),
    replay: optBool(cmd, 'replay'),
    owner: argStr(cmd, 'owner'),
    channelSequence: cmd.channelSequence === undefined ? 0 : argInt(cmd, 'channelSequence', cmd.channelSequence, 0, 0xffff),
    now: argTime(cmd, 'now'),
  };
  if (cmd.appInstanceVersion !== undefined) {
    const v = cmd.appInstanceVersion;
    if (!Array.isArray(v) || v.length !== 2) refuse('invalid', `${cmd.t}: appInstanceVersion must be [high, low]`);
    a.appInstanceVersion = [narrow(argU64(cmd, 'appInstanceVersion[0]', v[0])), narrow(argU64(cmd, 'appInstanceVersion[1]', v[1]))];
    if (a.appInstanceId === undefined) refuse('invalid', `${cmd.t}: appInstanceVersion needs appInstanceId`);
  }
  // MS-SMB2 3.3.5.9.8 / 3.3.5.9.11: a lease context is only acted on with RequestedOplockLevel LEASE.
  if (a.oplock === 'lease') {
    if (cmd.lease === undefined) {
      a.oplock = 'none'; // "the lease request MUST be ignored and Open.OplockLevel ... NONE"
    } else {
      const l = argObj(cmd, 'lease');
      const version = l.version === undefined ? 2 : l.version;
      if (version !== 1 && version !== 2) refuse('invalid', `${cmd.t}: lease.version must be 1 or 2`);
      a.lease = {
        key: argStr(cmd, 'lease.key', l.key),
        state: argInt(cmd, 'lease.state', l.state, 0, 7),
        version,
        parentKey: optStr(cmd, 'lease.parentKey', l.parentKey),
        epoch: l.epoch === undefined ? 0 : argInt(cmd, 'lease.epoch', l.epoch, 0, 0xffff),
      };
    }
  }
  if (cmd.durable !== undefined) {
    const d = argObj(cmd, 'durable');
    a.durable = {
      kind: oneOf(cmd, 'durable.kind', d.kind, ['v1', 'v2', 'persistent'] as const),
      timeoutMs: d.timeoutMs === undefined ? 0 : argInt(cmd, 'durable.timeoutMs', d.timeoutMs, 0, 0xffff_ffff),
    };
  }
  return a;
}

/** 3.3.5.9.13: is the open's app instance version older than or equal to the new one's? */
function versionNotNewer(old: [U64, U64], neu: [U64, U64]): boolean {
  const [oh, ol] = [big(old[0]), big(old[1])];
  const [nh, nl] = [big(neu[0]), big(neu[1])];
  return oh > nh || (oh === nh && ol >= nl);
}

function createOpen(tx: ApplyTx, cmd: Command): CommandResult {
  const a = parseCreate(cmd);
  const w = new Work(tx, a.now);
  const actorLease = a.lease === undefined ? undefined : leaseId(a.clientGuid, a.lease.key);

  // Replay of a create (MS-SMB2 3.3.5.9, REPLAY_OPERATION with DH2Q) and DH2Q CreateGuid reuse
  // (3.3.5.9.10: a CreateGuid already in use without the replay flag -> STATUS_DUPLICATE_OBJECTID).
  if (a.createGuid !== undefined) {
    const idx = tx.get<{ openId: number }>(openCreateKey(a.clientGuid, a.createGuid));
    const x = idx === undefined ? undefined : w.open(idx.openId);
    if (x !== undefined) return replayCreate(w, a, x);
  }

  // MS-SMB2 3.3.5.9.8 / 3.3.5.9.11: a lease key names one file per client.
  if (a.lease !== undefined) {
    const l = w.lease(a.clientGuid, a.lease.key);
    if (l !== undefined && (l.file !== a.file || l.stream !== a.stream)) {
      refuse('invalid', `${cmd.t}: lease key already used by this client for another file (STATUS_INVALID_PARAMETER)`);
    }
    // A request of the other lease version names the same lease, which keeps the version it was
    // created with (Windows answers in that version: smbtorture lease.v2_epoch2/3).
  }

  // MS-SMB2 3.3.5.9.13: another client's open of the same file with the same AppInstanceId is closed
  // (not broken) so the new host takes the file over; a not-newer AppInstanceVersion fails instead.
  if (a.appInstanceId !== undefined) {
    const victims: Open[] = [];
    for (const [k] of tx.range<object>(key('open-app', a.appInstanceId))) {
      const o = w.open(decodeKey(k)[2] as number);
      if (o === undefined || o.file !== a.file || o.stream !== a.stream || o.clientGuid === a.clientGuid) continue;
      if (o.appInstanceVersion !== undefined) {
        if (a.appInstanceVersion === undefined || versionNotNewer(o.appInstanceVersion, a.appInstanceVersion)) {
          refuse('stale', `${cmd.t}: open ${o.openId} holds a newer or equal AppInstanceVersion (STATUS_FILE_FORCED_CLOSED)`);
        }
      }
      victims.push(o);
    }
    for (const o of victims) closeOpen(w, o);
  }

  const existing = w.opensOf(a.file);
  if (existing.length >= limits.metaOpensPerFileMax) refuse('limit', `${cmd.t}: ${a.file} has ${existing.length} opens`);
  // MS-SMB2 3.3.5.9: a disconnected persistent open holds the file for its owner to reclaim.
  if (existing.some((o) => o.stream === a.stream && o.durable === 'persistent' && o.state === 'disconnected')) {
    refuse('unavailable', `${cmd.t}: a disconnected persistent open holds ${a.file} (STATUS_FILE_NOT_AVAILABLE)`);
  }

  // Sharing (MS-FSA 2.1.5.1.2).
  const opener: Opener = { access: a.desiredAccess, share: a.shareAccess, stream: a.stream, directory: a.directory };
  let conflicts = existing.filter((o) => sharingConflict(opener, o));
  if (conflicts.length > 0) {
    // Only the opened stream's caching is broken (MS-FSA 2.1.5.1.2: Open.Stream.Oplock), so only
    // conflicts on that stream can be settled by a break. Disconnected durable holders of handle
    // caching cannot acknowledge one: they are closed (MS-SMB2 3.3.4.6, 3.3.4.7).
    const breakable = (o: Open): boolean => o.stream === a.stream && handleBreakable(w, o, actorLease);
    let purged = false;
    for (const o of conflicts) {
      if (o.state === 'disconnected' && o.durable !== 'persistent' && breakable(o)) {
        closeOpen(w, o);
        purged = true;
      }
    }
    if (purged) conflicts = w.opensOf(a.file).filter((o) => sharingConflict(opener, o));
    if (conflicts.length > 0) {
      if (!conflicts.every(breakable)) {
        if (!purged) refuse('sharing-violation', `${cmd.t}: ${a.file} is open with a conflicting share mode`);
        // Keep the purge (a failed command would roll it back); the retry then fails for real.
        w.flush();
        return ok({ status: 'break-required', breaks: w.breaks, waitFor: w.waitFor, closed: w.closed });
      }
      // OPEN_BREAK_H (and the batch OPEN break before the sharing check): break, wait, retry.
      breakHolders(w, a.file, a.stream, 0, actorLease, a.overwrite ? BREAK_HANDLE_NONE : BREAK_HANDLE);
      w.flush();
      return ok({ status: 'break-required', breaks: w.breaks, waitFor: w.waitFor, closed: w.closed });
    }
  }

  // MS-FSA 2.1.4.12 case OPEN: other holders lose write caching (or everything when overwriting).
  const openRule: BreakRule = { ...(a.overwrite ? BREAK_TO_NONE : BREAK_TO_TWO), openAccess: a.desiredAccess, openOverwrite: a.overwrite };
  breakHolders(w, a.file, a.stream, 0, actorLease, openRule);
  if (w.waitFor.length > 0) {
    // The open waits for these breaks (MS-FSA 2.1.4.12) and is then granted by what the holders kept:
    // a holder may acknowledge to less, or go away (a disconnected durable open is closed), so the
    // grant is decided by the same command proposed again once the breaks are done.
    w.flush();
    return ok({ status: 'break-required', breaks: w.breaks, waitFor: w.waitFor, closed: w.closed });
  }

  // Grant.
  const others = surveyOthers(w, a.file, a.stream, actorLease);
  const openId = nextOpenId(tx);
  let oplock: OplockLevel = 'none';
  let leaseFlagsBreaking = false;
  let lease: Lease | undefined;
  if (a.lease !== undefined) {
    oplock = 'lease';
    const want = a.directory ? a.lease.state & ~LEASE_W : a.lease.state;
    lease = w.lease(a.clientGuid, a.lease.key);
    if (lease === undefined) {
      lease = clean({
        clientGuid: a.clientGuid,
        leaseKey: a.lease.key,
        file: a.file,
        stream: a.stream,
        state: 0,
        epoch: a.lease.version === 2 ? a.lease.epoch : 0,
        version: a.lease.version,
        parentLeaseKey: a.lease.parentKey,
        opens: 0,
      } satisfies Lease);
    }
    if (lease.breaking !== undefined) {
      leaseFlagsBreaking = true; // SMB2_LEASE_FLAG_BREAK_IN_PROGRESS; no promotion while breaking
    } else if ((want & lease.state) === lease.state) {
      // Promotion only to a superset of the held state (3.3.5.9.8 / 3.3.5.9.11). A new lease gets what
      // can be shared of the request; a held lease is promoted all or nothing: to the requested
      // state if it can be held beside the others, else it stays as it is (as Windows does:
      // smbtorture lease.upgrade2 / upgrade3).
      const target = want | lease.state;
      const granted = grantLeaseState(target, others);
      const fresh = lease.opens === 0;
      const promoted = fresh ? granted : granted === target ? target : lease.state;
      if ((promoted & lease.state) === lease.state && promoted !== lease.state) {
        lease.state = promoted;
        if (lease.version === 2) lease.epoch += 1; // 3.3.5.9.11: promotion increments Lease.Epoch
      }
    }
    lease.opens += 1;
    w.touchLease(lease);
  } else {
    oplock = grantOplock(a.oplock, others, a.directory);
  }

  // Durability (MS-SMB2 3.3.5.9.6 v1, 3.3.5.9.10 v2): a batch oplock or a handle-caching lease; a
  // persistent handle when asked for on a CA share (the caller passes caShare only when the
  // connection also negotiated SMB2_GLOBAL_CAP_PERSISTENT_HANDLES). Never for directories.
  let durable: DurableKind = 'none';
  let timeoutMs = 0;
  if (a.durable !== undefined && !a.directory) {
    const handle = oplock === 'batch' || (lease !== undefined && (lease.state & LEASE_H) !== 0);
    if (a.durable.kind === 'v1') {
      if (handle) {
        durable = 'v1';
        timeoutMs = limits.metaDurableV1TimeoutMs;
      }
    } else {
      if (a.durable.kind === 'persistent' && a.caShare) durable = 'persistent';
      else if (handle) durable = 'v2';
      if (durable !== 'none') {
        timeoutMs =
          a.durable.timeoutMs === 0 ? limits.metaDurableV2TimeoutDefaultMs : Math.min(a.durable.timeoutMs, limits.metaDurableTimeoutMaxMs);
      }
    }
  }

  const o: Open = clean({
    openId,
    file: a.file,
    stream: a.stream,
    directory: a.directory,
    node: a.node,
    inc: a.inc,
    sessionId: a.sessionId,
    clientGuid: a.clientGuid,
    createGuid: a.createGuid,
    appInstanceId: a.appInstanceId,
    appInstanceVersion: a.appInstanceVersion,
    desiredAccess: a.desiredAccess,
    shareAccess: a.shareAccess,
    createOptions: a.createOptions,
    deleteOnClose: (a.createOptions & FILE_DELETE_ON_CLOSE) !== 0,
    oplock,
    leaseKey: a.lease?.key,
    durable,
    timeoutMs,
    owner: a.owner,
    state: 'active',
    channelSequence: a.channelSequence,
    lockSequence: new Array<number | null>(LOCK_SEQUENCE_ENTRIES).fill(null),
    resilient: false,
    created: a.now,
    nextLockSeq: 1,
    lockCount: 0,
  } satisfies Open);
  w.touchOpen(o);
  tx.put(openFileKey(a.file, openId), {});
  tx.put(openNodeKey(a.node, openId), {});
  if (a.createGuid !== undefined) tx.put(openCreateKey(a.clientGuid, a.createGuid), { openId });
  if (a.appInstanceId !== undefined) tx.put(openAppKey(a.appInstanceId, openId), {});
  w.flush();
  const value = describe(w, o);
  if (value.lease !== undefined && leaseFlagsBreaking) (value.lease as Record<string, unknown>).breakInProgress = true;
  return ok({ status: 'ok', replayed: false, ...value, breaks: w.breaks, waitFor: w.waitFor, closed: w.closed });
}

function replayCreate(w: Work, a: CreateArgs, x: Open): CommandResult {
  const t = 'open.create';
  if (!a.replay) refuse('exists', `${t}: CreateGuid is already in use (STATUS_DUPLICATE_OBJECTID)`);
  if (x.owner !== a.owner) refuse('access-denied', `${t}: replay by a user other than the durable owner`);
  if (x.leaseKey !== undefined && x.leaseKey !== a.lease?.key) refuse('access-denied', `${t}: replay with another lease key`);
  if (x.durable === 'persistent' && a.durable?.kind !== 'persistent') {
    refuse('invalid', `${t}: replay of a persistent open without the persistent flag`);
  }
  if (x.state === 'disconnected') {
    // The CreateGuid lookup of a persistent open (MS-SMB2 3.3.5.9): the create must match it.
    if (x.durable !== 'persistent') refuse('exists', `${t}: CreateGuid names a disconnected open (STATUS_DUPLICATE_OBJECTID)`);
    if (x.createOptions !== a.createOptions || x.desiredAccess !== a.desiredAccess || x.shareAccess !== a.shareAccess) {
      refuse('invalid', `${t}: replay differs from the open (STATUS_CONTEXT_MISMATCH)`);
    }
    reactivate(w, x, a.node, a.inc, a.sessionId);
  } else if (a.sessionId !== undefined && x.sessionId !== undefined && !sameU64(a.sessionId, x.sessionId)) {
    refuse('exists', `${t}: replay on another session (STATUS_DUPLICATE_OBJECTID)`);
  }
  w.flush();
  return ok({ status: 'ok', replayed: true, ...describe(w, x), breaks: [], waitFor: [], closed: [] });
}

// ---- close, disconnect, reconnect, scavenger, node failure ----

function lastOpenOf(tx: ApplyTx, file: string): boolean {
  return tx.range<object>(key('open-file', file), { limit: 1 })[Symbol.iterator]().next().done === true;
}

function closeCmd(tx: ApplyTx, cmd: Command): CommandResult {
  const id = argId(cmd, 'openId');
  const w = new Work(tx, argTime(cmd, 'now'));
  const o = w.open(id);
  if (o === undefined) refuse('not-found', `${cmd.t}: no open ${id} (STATUS_FILE_CLOSED)`);
  dropOpen(w, o);
  w.flush();
  const lastOnStream = !w.opensOf(o.file).some((x) => x.stream === o.stream);
  return ok({ deleteOnClose: o.deleteOnClose, lastOpen: lastOpenOf(tx, o.file), lastOnStream, file: o.file, stream: o.stream });
}

/** MS-SMB2 3.3.7.1: durable, persistent and resilient opens outlive their connection; others close. */
function disconnectCmd(tx: ApplyTx, cmd: Command): CommandResult {
  const id = argId(cmd, 'openId');
  const w = new Work(tx, argTime(cmd, 'now'));
  const o = w.open(id);
  if (o === undefined) refuse('not-found', `${cmd.t}: no open ${id}`);
  if (o.state === 'disconnected') return ok({ closed: false, expiresAt: o.expiresAt });
  if (o.durable === 'none' && !o.resilient) {
    dropOpen(w, o);
    w.flush();
    return ok({ closed: true, deleteOnClose: o.deleteOnClose, lastOpen: lastOpenOf(tx, o.file) });
  }
  if (o.durable !== 'persistent' && !o.resilient && breakLostWithConnection(w, o)) {
    // MS-SMB2 3.3.4.6 / 3.3.4.7: a durable open that cannot keep its handle caching once its pending
    // break completes (no connection is left to acknowledge it) is closed, not kept.
    dropOpen(w, o);
    w.flush();
    return ok({ closed: true, deleteOnClose: o.deleteOnClose, lastOpen: lastOpenOf(tx, o.file) });
  }
  disconnectOpen(w, o);
  w.flush();
  return ok({ closed: false, expiresAt: o.expiresAt });
}

/**
 * A break in flight on an open that is losing its connection completes now, to its target, when no
 * other connected open can acknowledge it. True if the open is then left without handle caching
 * (a batch oplock broken, or a lease without H), so a durable open cannot be kept.
 */
function breakLostWithConnection(w: Work, o: Open): boolean {
  if (o.oplockBreaking !== undefined) {
    o.oplock = o.oplockBreaking.next ?? o.oplockBreaking.to;
    o.oplockBreaking = undefined;
    w.touchOpen(o);
    return true;
  }
  const l = w.leaseOf(o);
  if (l === undefined || l.breaking === undefined) return false;
  const others = w.opensOf(l.file).some((x) => x.openId !== o.openId && x.leaseKey === l.leaseKey && x.clientGuid === l.clientGuid && x.state === 'active');
  if (others) return false;
  // Nobody is left to acknowledge: the break completes, and (as a break that finds no connection
  // does, MS-SMB2 3.3.4.7) the durable open is not kept.
  l.state = l.breaking.next ?? l.breaking.to;
  l.breaking = undefined;
  w.touchLease(l);
  return true;
}

/** MS-SMB2 3.3.5.9.7 (DHnC) and 3.3.5.9.12 (DH2C). */
function reconnectCmd(tx: ApplyTx, cmd: Command): CommandResult {
  const now = argTime(cmd, 'now');
  const openId = argId(cmd, 'openId');
  const clientGuid = argStr(cmd, 'clientGuid');
  const createGuid = optStr(cmd, 'createGuid');
  const node = argStr(cmd, 'node');
  const inc = argInt(cmd, 'inc');
  const owner = argStr(cmd, 'owner');
  const sessionId = optU64(cmd, 'sessionId');
  const v2 = optBool(cmd, 'v2');
  const persistentFlag = optBool(cmd, 'persistent');
  let lease: { key: string; version: number } | undefined;
  if (cmd.lease !== undefined) {
    const l = argObj(cmd, 'lease');
    lease = { key: argStr(cmd, 'lease.key', l.key), version: l.version === undefined ? 2 : argInt(cmd, 'lease.version', l.version, 1, 2) };
  }
  const w = new Work(tx, now);
  let o = w.open(openId);
  // 3.3.5.9.12: a persistent handle unknown by FileId is looked up by CreateGuid.
  if (o === undefined && v2 && persistentFlag && createGuid !== undefined) {
    const idx = tx.get<{ openId: number }>(openCreateKey(clientGuid, createGuid));
    if (idx !== undefined) o = w.open(idx.openId);
  }
  const nf: (why: string) => never = (why) => refuse('not-found', `${cmd.t}: ${why} (STATUS_OBJECT_NAME_NOT_FOUND)`);
  if (o === undefined) nf('no such durable open');
  if (o.leaseKey !== undefined && o.clientGuid !== clientGuid) nf('lease held by another client');
  // A DH2C names the open's CreateGuid; a v1 open has none, which a DH2C names with a zero GUID
  // (as Windows matches: smbtorture durable-open.reopen2-lease vs durable-v2-open.reopen2c).
  if (v2 && (o.createGuid ?? ZERO_GUID) !== createGuid) nf('CreateGuid differs');
  if (o.durable === 'none' && !o.resilient) nf('open is not durable');
  if (!ownerGone(tx, o)) nf('open is still connected');
  if (o.leaseKey === undefined && lease !== undefined) nf('open has no lease');
  if (o.leaseKey !== undefined && lease === undefined) nf('open has a lease');
  const held = w.leaseOf(o);
  if (o.leaseKey !== undefined && lease !== undefined) {
    if (lease.key !== o.leaseKey) nf('lease key differs');
    if (held !== undefined && held.version !== lease.version) nf('lease version differs');
  }
  if (o.durable === 'v1' || o.durable === 'v2') {
    if (o.leaseKey === undefined && o.oplock !== 'batch') nf('durable open lost its batch oplock');
    if (held !== undefined && !(held.state & LEASE_H)) nf('durable open lost handle caching');
  }
  if (v2 && o.durable === 'persistent' && !persistentFlag) nf('persistent open reconnected without the persistent flag');
  if (v2 && o.durable !== 'persistent' && persistentFlag) refuse('invalid', `${cmd.t}: persistent flag on a non-persistent open`);
  if (o.owner !== owner) refuse('access-denied', `${cmd.t}: not the durable owner (STATUS_ACCESS_DENIED)`);
  reactivate(w, o, node, inc, sessionId);
  w.flush();
  return ok(describe(w, o));
}

/** Opens one sweep command handles: `limit` if given, never more than limits.metaOpensPerSweepMax. */
function sweepLimit(cmd: Command): number {
  const max = limits.metaOpensPerSweepMax;
  return cmd.limit === undefined ? max : Math.min(argInt(cmd, 'limit', cmd.limit, 1), max);
}

/** MS-SMB2 3.3.2.2 durable open scavenger: close disconnected opens whose timeout passed. */
function expireCmd(tx: ApplyTx, cmd: Command): CommandResult {
  const now = argTime(cmd, 'now');
  const limit = sweepLimit(cmd);
  const w = new Work(tx, now);
  const due: [Buffer, number][] = [];
  let more = false;
  for (const [k] of tx.range<object>(key('open-disc'))) {
    const [, expiresAt, id] = decodeKey(k) as [string, number, number];
    if (expiresAt > now) break;
    if (due.length === limit) {
      more = true;
      break;
    }
    due.push([k, id]);
  }
  for (const [k, id] of due) {
    const o = w.open(id);
    if (o !== undefined) closeOpen(w, o);
    else tx.del(k); // defensive: an index entry without its open
  }
  w.flush();
  return ok({ closed: w.closed, more });
}

/**
 * A node incarnation died (its lease in the log expired): its durable, persistent and resilient opens
 * become disconnected (reclaimable until their timeout), the others are closed.
 */
function nodeDownCmd(tx: ApplyTx, cmd: Command): CommandResult {
  const node = argStr(cmd, 'node');
  const inc = argInt(cmd, 'inc');
  const now = argTime(cmd, 'now');
  const limit = sweepLimit(cmd);
  const w = new Work(tx, now);
  const victims: Open[] = [];
  let more = false;
  for (const [k] of tx.range<object>(key('open-node', node))) {
    const o = w.open(decodeKey(k)[2] as number);
    if (o === undefined || o.state !== 'active' || o.inc > inc) continue;
    if (victims.length === limit) {
      more = true;
      break;
    }
    victims.push(o);
  }
  const disconnected: number[] = [];
  for (const o of victims) {
    if (o.durable === 'none' && !o.resilient) closeOpen(w, o);
    else {
      disconnectOpen(w, o);
      disconnected.push(o.openId);
    }
  }
  w.flush();
  return ok({ disconnected, closed: w.closed, more });
}

// ---- break acknowledgments and timeouts ----

function leaseArgs(cmd: Command): { clientGuid: string; leaseKey: string; now: number } {
  return { clientGuid: argStr(cmd, 'clientGuid'), leaseKey: argStr(cmd, 'leaseKey'), now: argTime(cmd, 'now') };
}

/**
 * Starts the break queued behind one that just completed (BreakToLeaseState lowered meanwhile), with
 * the epoch of the break it follows; the operations waiting for the first break keep waiting. A
 * lease with handle caching that has to lose R as well goes to R first, and to none once that is
 * acknowledged (Windows: RWH->RH acknowledged, RH->R, then R->none, all with one epoch: smbtorture
 * lease.breaking3, lease.v2_breaking3).
 */
function followUpLeaseBreak(w: Work, l: Lease, next: number | undefined): void {
  if (next === undefined || (l.state & ~next) === 0) return;
  const stage = (l.state & LEASE_H) !== 0 && (l.state & LEASE_R) !== 0 && (next & LEASE_R) === 0 ? LEASE_R : next;
  const group = w.opensOf(l.file).filter((o) => o.leaseKey === l.leaseKey && o.clientGuid === l.clientGuid);
  breakLease(w, l, group, { leaseMask: l.state & ~stage, batch: null, exclusive: null, levelII: null, leaseWait: 0 }, true);
  if (stage !== next && l.breaking !== undefined) {
    l.breaking.next = next;
    w.touchLease(l);
  }
}

/** MS-SMB2 3.3.5.22.2: Lease Break Acknowledgment. */
function leaseAckCmd(tx: ApplyTx, cmd: Command): CommandResult {
  const { clientGuid, leaseKey, now } = leaseArgs(cmd);
  const state = argInt(cmd, 'state', cmd.state, 0, 7);
  const w = new Work(tx, now);
  const l = w.lease(clientGuid, leaseKey);
  if (l === undefined) refuse('not-found', `${cmd.t}: no such lease (STATUS_OBJECT_NAME_NOT_FOUND)`);
  if (l.breaking === undefined) refuse('invalid', `${cmd.t}: lease is not breaking (STATUS_UNSUCCESSFUL)`);
  if ((state & ~l.breaking.to) !== 0) refuse('invalid', `${cmd.t}: state is not within the break target (STATUS_REQUEST_NOT_ACCEPTED)`);
  const next = l.breaking.next;
  l.state = state;
  l.breaking = undefined;
  w.touchLease(l);
  followUpLeaseBreak(w, l, next);
  w.flush();
  // The response carries the acknowledged state (3.3.5.22.2), whatever a follow-up break does next.
  return ok({ state, epoch: l.epoch, breaks: w.breaks, waitFor: w.waitFor, closed: w.closed });
}

/**
 * MS-SMB2 3.3.2.5 (the lease break acknowledgment timer's event): a lease break left unacknowledged
 * past the timer leaves the lease with no caching at all, whatever the break asked for (Windows:
 * smbtorture lease.timeout finds the lease at NONE, and a later write breaks nothing of it).
 */
function leaseBreakTimeoutCmd(tx: ApplyTx, cmd: Command): CommandResult {
  const { clientGuid, leaseKey, now } = leaseArgs(cmd);
  const w = new Work(tx, now);
  const l = w.lease(clientGuid, leaseKey);
  if (l === undefined || l.breaking === undefined) return ok({ completed: false });
  if (now < l.breaking.startedAt + limits.metaLeaseBreakTimeoutMs) {
    refuse('invalid', `${cmd.t}: the break started at ${l.breaking.startedAt} is not due yet`);
  }
  l.state = LEASE_NONE;
  l.breaking = undefined;
  w.touchLease(l);
  // Durable (non-persistent) opens of the lease that are disconnected and lost handle caching go.
  if (!(l.state & LEASE_H)) {
    for (const o of w.opensOf(l.file)) {
      const mine = o.leaseKey === l.leaseKey && o.clientGuid === l.clientGuid;
      if (mine && o.state === 'disconnected' && (o.durable === 'v1' || o.durable === 'v2')) closeOpen(w, o);
    }
  }
  w.flush();
  return ok({ completed: true, state: l.state, closed: w.closed });
}

/** MS-SMB2 3.3.5.22.1: Oplock Break Acknowledgment. */
function oplockAckCmd(tx: ApplyTx, cmd: Command): CommandResult {
  const id = argId(cmd, 'openId');
  const level = oneOf(cmd, 'level', cmd.level, ['II', 'none'] as const);
  const w = new Work(tx, cmd.now === undefined ? 0 : argTime(cmd, 'now'));
  const o = w.open(id);
  if (o === undefined) refuse('not-found', `${cmd.t}: no open ${id} (STATUS_FILE_CLOSED)`);
  if (o.oplockBreaking === undefined) refuse('invalid', `${cmd.t}: no oplock break in progress (STATUS_INVALID_DEVICE_STATE)`);
  const b = o.oplockBreaking;
  o.oplockBreaking = undefined;
  let protocolError = false;
  if (level === 'II' && b.to === 'none') {
    // Acknowledging a higher level than the break allows: the oplock goes, the server answers
    // STATUS_INVALID_OPLOCK_PROTOCOL.
    o.oplock = 'none';
    protocolError = true;
  } else {
    o.oplock = level;
  }
  if (o.oplock === 'II' && b.next === 'none') {
    o.oplock = 'none';
    w.breaks.push({ kind: 'oplock', openId: o.openId, node: o.node, from: 'II', to: 'none', ackRequired: false });
  }
  w.touchOpen(o);
  w.flush();
  return ok({ oplock: o.oplock, protocolError, breaks: w.breaks });
}

/** MS-SMB2 3.3.2.1: an unacknowledged oplock break leaves the open without an oplock. */
function oplockBreakTimeoutCmd(tx: ApplyTx, cmd: Command): CommandResult {
  const id = argId(cmd, 'openId');
  const now = argTime(cmd, 'now');
  const w = new Work(tx, now);
  const o = w.open(id);
  if (o === undefined || o.oplockBreaking === undefined) return ok({ completed: false });
  if (now < o.oplockBreaking.startedAt + limits.metaOplockBreakTimeoutMs) {
    refuse('invalid', `${cmd.t}: the break started at ${o.oplockBreaking.startedAt} is not due yet`);
  }
  o.oplockBreaking = undefined;
  o.oplock = 'none';
  w.touchOpen(o);
  w.flush();
  return ok({ completed: true, oplock: 'none' });
}

/**
 * Breaks other holders' caching for an operation on an open (MS-FSA 2.1.4.12): 'read' (READ, FLUSH:
 * write caching), 'write' (WRITE, set EOF/allocation, zero data: read and write caching), 'handle'
 * (rename, link, delete, set security: handle caching, batch to none), 'lease-handle' (handle
 * caching of leases only). See planBreaks() for a check the server can make before proposing.
 */
function breakCmd(tx: ApplyTx, cmd: Command): CommandResult {
  const id = argId(cmd, 'openId');
  const op = oneOf(cmd, 'op', cmd.op, BREAK_OPS);
  const w = new Work(tx, argTime(cmd, 'now'));
  const o = w.open(id);
  if (o === undefined) refuse('not-found', `${cmd.t}: no open ${id}`);
  const rule = ruleForOp(op);
  breakHolders(w, o.file, o.stream, o.openId, o.leaseKey === undefined ? undefined : leaseId(o.clientGuid, o.leaseKey), rule);
  w.flush();
  return ok({ breaks: w.breaks, waitFor: w.waitFor, closed: w.closed });
}

/** True if open.break with this op would change anything (so the server proposes only then). */
export function planBreaks(tx: ReadTx, openId: number, op: BreakOp): boolean {
  const o = getOpen(tx, openId);
  if (o === undefined) return false;
  const mine = o.leaseKey === undefined ? undefined : leaseId(o.clientGuid, o.leaseKey);
  const rule = ruleForOp(op);
  for (const x of opensOfFile(tx, o.file)) {
    if (x.stream !== o.stream) continue;
    if (x.openId === o.openId) {
      // The actor's own level II oplock is broken too (see breakHolders).
      if (x.leaseKey === undefined && x.oplock === 'II' && rule.levelII !== null) return true;
      continue;
    }
    if (x.leaseKey !== undefined) {
      if (leaseId(x.clientGuid, x.leaseKey) === mine) continue;
      const l = getLease(tx, x.clientGuid, x.leaseKey);
      if (l !== undefined && (l.state & rule.leaseMask) !== 0) return true;
    } else if (oplockTarget(rule, x.oplock) !== null) {
      return true;
    }
  }
  return false;
}

// ---- byte-range locks (MS-SMB2 3.3.5.14; MS-FSA 2.1.5.8, 2.1.5.9) ----

interface LockElement {
  offset: bigint;
  length: bigint;
  exclusive: boolean;
  unlock: boolean;
}

function lockApplyCmd(tx: ApplyTx, cmd: Command): CommandResult {
  const id = argId(cmd, 'openId');
  const now = argTime(cmd, 'now');
  const multiChannel = optBool(cmd, 'multiChannel');
  if (!Array.isArray(cmd.locks) || cmd.locks.length === 0 || cmd.locks.length > limits.metaLockElementsMax) {
    refuse('invalid', `${cmd.t}: locks must hold 1..${limits.metaLockElementsMax} elements`);
  }
  const elements: LockElement[] = cmd.locks.map((raw: unknown, i: number) => {
    const e = argObj(cmd, `locks[${i}]`, raw);
    const el: LockElement = {
      offset: argU64(cmd, `locks[${i}].offset`, e.offset),
      length: argU64(cmd, `locks[${i}].length`, e.length),
      exclusive: optBool(cmd, `locks[${i}].exclusive`, e.exclusive),
      unlock: optBool(cmd, `locks[${i}].unlock`, e.unlock),
    };
    // MS-FSA 2.1.5.8 / 2.1.5.9: the range may not run past 2^64 - 1 (STATUS_INVALID_LOCK_RANGE).
    if (el.length !== 0n && el.offset + el.length - 1n > U64_MAX) {
      refuse('invalid', `${cmd.t}: locks[${i}] runs past 2^64 (STATUS_INVALID_LOCK_RANGE)`);
    }
    return el;
  });
  let seq: { index: number; seq: number } | undefined;
  if (cmd.lockSequence !== undefined) {
    const s = argObj(cmd, 'lockSequence');
    seq = { index: argInt(cmd, 'lockSequence.index', s.index, 0, 0x0fff_ffff), seq: argInt(cmd, 'lockSequence.seq', s.seq, 0, 15) };
  }
  const w = new Work(tx, now);
  const o = w.open(id);
  if (o === undefined) refuse('not-found', `${cmd.t}: no open ${id} (STATUS_FILE_CLOSED)`);
  if (o.directory) refuse('invalid', `${cmd.t}: byte-range locks are not permitted on directories (MS-FSA 2.1.5.8)`);

  // MS-SMB2 3.3.5.14: lock sequence replay detection for resilient, durable and persistent opens.
  const tracked = o.resilient || o.durable !== 'none' || multiChannel;
  const slot = seq !== undefined && seq.index >= 1 && seq.index <= LOCK_SEQUENCE_ENTRIES ? seq.index - 1 : -1;
  if (slot >= 0 && tracked) {
    const stored = o.lockSequence[slot];
    if (stored !== null && stored !== undefined) {
      if (stored === seq!.seq) return ok({ replay: true, breaks: [], waitFor: [] });
      // A different sequence: reset the entry and process the request. (A request that is then
      // refused rolls the reset back with the rest of its transaction; it matters only to a client
      // that resends an older sequence number after a newer one failed.)
      o.lockSequence[slot] = null;
      w.touchOpen(o);
    }
  }

  // MS-SMB2 3.3.5.14: the first element decides whether the request locks or unlocks.
  const unlocking = elements[0]!.unlock;
  if (!unlocking && elements.some((e) => e.unlock)) {
    // MS-SMB2 3.3.5.14.2: an unlock inside a lock request is STATUS_INVALID_PARAMETER; Windows takes
    // none of the request's locks then (smbtorture smb2.lock.multiple-unlock), so nothing is kept.
    refuse('invalid', `${cmd.t}: an unlock element in a lock request (STATUS_INVALID_PARAMETER)`);
  }
  if (unlocking) {
    let done = 0;
    for (const e of elements) {
      if (!e.unlock) {
        // MS-SMB2 3.3.5.14.1: an element that is not an unlock stops the request with
        // STATUS_INVALID_PARAMETER; the unlocks already done are not rolled back.
        if (done === 0) refuse('invalid', `${cmd.t}: a lock element in an unlock request (STATUS_INVALID_PARAMETER)`);
        w.touchOpen(o);
        w.flush();
        return ok({ replay: false, unlocked: done, failed: { index: done, code: 'invalid' }, breaks: [], waitFor: [] });
      }
      // MS-FSA 2.1.5.9: the exact range held by this open; an exclusive lock goes before a shared one.
      let found: Buffer | undefined;
      let foundExclusive = false;
      for (const [k, l] of tx.range<Lock>(lockPrefix(o.file), { limit: limits.metaLocksPerFileMax })) {
        if (l.openId !== o.openId || l.stream !== o.stream || big(l.offset) !== e.offset || big(l.length) !== e.length) continue;
        if (found === undefined || (l.exclusive && !foundExclusive)) {
          found = k;
          foundExclusive = l.exclusive;
        }
      }
      if (found === undefined) {
        if (done === 0) refuse('not-found', `${cmd.t}: range not locked (STATUS_RANGE_NOT_LOCKED)`);
        // MS-SMB2 3.3.5.14: the unlocks already done are not rolled back.
        w.touchOpen(o);
        w.flush();
        return ok({ replay: false, unlocked: done, failed: { index: done, code: 'not-found' }, breaks: [], waitFor: [] });
      }
      tx.del(found);
      o.lockCount -= 1;
      done++;
    }
  } else {
    const existing = locksOfFile(tx, o.file).filter((l) => l.stream === o.stream);
    if (existing.length + elements.length > limits.metaLocksPerFileMax) {
      refuse('limit', `${cmd.t}: ${o.file} would hold more than ${limits.metaLocksPerFileMax} locks`);
    }
    for (const e of elements) {
      // MS-FSA 2.1.5.8 with the 2.1.4.10 check (LockIntent TRUE); earlier elements of this request count.
      if (existing.some((l) => rangeConflicts(l, e.offset, e.length, e.exclusive, true, o.openId))) {
        refuse('lock-conflict', `${cmd.t}: range conflicts with a held lock (STATUS_LOCK_NOT_GRANTED)`);
      }
      const s = o.nextLockSeq++;
      const rec: Lock = { openId: o.openId, stream: o.stream, offset: narrow(e.offset), length: narrow(e.length), exclusive: e.exclusive };
      tx.put(lockKey(o.file, e.offset, o.openId, s), rec);
      existing.push({ ...rec, offset: e.offset, length: e.length });
      o.lockCount += 1;
    }
    // MS-FSA 2.1.5.8: a lock breaks other holders' read and write caching (2.1.4.12 LOCK_CONTROL).
    breakHolders(w, o.file, o.stream, o.openId, o.leaseKey === undefined ? undefined : leaseId(o.clientGuid, o.leaseKey), BREAK_TO_NONE);
  }
  if (slot >= 0 && tracked) o.lockSequence[slot] = seq!.seq;
  w.touchOpen(o);
  w.flush();
  return ok({ replay: false, breaks: w.breaks, waitFor: w.waitFor });
}

// ---- small per-open updates ----

/**
 * MS-SMB2 3.3.5.2.10 bookkeeping: a ChannelSequence ahead of the open's (16-bit unsigned difference
 * <= 0x7FFF) becomes the open's; an older one is stale (the server fails WRITE, SET_INFO and IOCTL
 * with STATUS_FILE_NOT_AVAILABLE). The outstanding request counters stay with the serving node.
 */
function channelSequenceCmd(tx: ApplyTx, cmd: Command): CommandResult {
  const id = argId(cmd, 'openId');
  const cs = argInt(cmd, 'channelSequence', cmd.channelSequence, 0, 0xffff);
  const w = new Work(tx, 0);
  const o = w.open(id);
  if (o === undefined) refuse('not-found', `${cmd.t}: no open ${id}`);
  if (cs === o.channelSequence) return ok({ channelSequence: cs, advanced: false, stale: false });
  if (((cs - o.channelSequence) & 0xffff) <= 0x7fff) {
    o.channelSequence = cs;
    w.touchOpen(o);
    w.flush();
    return ok({ channelSequence: cs, advanced: true, stale: false });
  }
  return ok({ channelSequence: o.channelSequence, advanced: false, stale: true });
}

/** FSCTL_LMR_REQUEST_RESILIENCY (MS-SMB2 3.3.5.15.9): the open becomes resilient with a timeout. */
function setResilientCmd(tx: ApplyTx, cmd: Command): CommandResult {
  const id = argId(cmd, 'openId');
  const t = argInt(cmd, 'timeoutMs', cmd.timeoutMs, 0, 0xffff_ffff);
  if (t > limits.metaResilientTimeoutMaxMs) {
    refuse('invalid', `${cmd.t}: timeout above ${limits.metaResilientTimeoutMaxMs} ms (STATUS_INVALID_PARAMETER)`);
  }
  const w = new Work(tx, 0);
  const o = w.open(id);
  if (o === undefined) refuse('not-found', `${cmd.t}: no open ${id}`);
  o.resilient = true;
  o.timeoutMs = Math.max(o.durable === 'none' ? 0 : o.timeoutMs, t === 0 ? limits.metaResilientTimeoutDefaultMs : t);
  w.touchOpen(o);
  w.flush();
  return ok({ timeoutMs: o.timeoutMs });
}

export const opensHandlers: HandlerTable = {
  'open.create': guarded(createOpen),
  'open.close': guarded(closeCmd),
  'open.disconnect': guarded(disconnectCmd),
  'open.reconnect': guarded(reconnectCmd),
  'open.expire': guarded(expireCmd),
  'open.node-down': guarded(nodeDownCmd),
  'open.channel-sequence': guarded(channelSequenceCmd),
  'open.set-resilient': guarded(setResilientCmd),
  'open.break': guarded(breakCmd),
  'lease.ack': guarded(leaseAckCmd),
  'lease.break-timeout': guarded(leaseBreakTimeoutCmd),
  'oplock.ack': guarded(oplockAckCmd),
  'oplock.break-timeout': guarded(oplockBreakTimeoutCmd),
  'lock.apply': guarded(lockApplyCmd),
};
