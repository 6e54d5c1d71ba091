// The open table as the server sees it: typed proposals of the open-table commands (families/opens.ts)
// through a MetaService, and the reads the server needs between proposals. This file and service.ts
// are the only parts of src/meta the server imports (.dependency-cruiser.cjs): the command names, the
// record layout and the key encoding stay inside src/meta.

import { key } from './keys.js';
import type { MetaService } from './service.js';
import type { CommandResult, MetaErrorCode } from './tx.js';
import {
  getLease,
  getOpen,
  locksOfFile,
  opensOfFile,
  planBreaks,
  rangeConflicts,
  testLock,
  type BreakNotice,
  type CreateArgs,
  type LeaseRequest,
  type BreakOp,
  type DurableKind,
  type Lease,
  type Open,
  type OplockLevel,
  type U64,
  type WaitItem,
} from './families/opens.js';

export type { BreakNotice, BreakOp, DurableKind, Lease, Open, OplockLevel, U64, WaitItem, MetaErrorCode };

/** A refusal by the state machine: `code` says which (families/opens.ts documents each). */
export interface Refused {
  ok: false;
  code: MetaErrorCode;
  message: string;
}

export interface LeaseGrant {
  key: string;
  state: number;
  epoch: number;
  version: 1 | 2;
  parentKey?: string;
  breaking?: { to: number; epoch: number; startedAt: number; next?: number };
  breakInProgress?: boolean;
}

/** What open.create, open.reconnect and a replayed create answer about the open. */
export interface OpenGrant {
  openId: number;
  /** open.create only: the create was a replay of an earlier one (MS-SMB2 3.3.5.9.10). */
  replayed?: boolean;
  oplock: OplockLevel;
  durable: DurableKind;
  timeoutMs: number;
  lease?: LeaseGrant;
}

/** Breaks to deliver, breaks to wait for, opens the table closed on its own (takeover, purge). */
export interface BreakEffects {
  breaks: BreakNotice[];
  waitFor: WaitItem[];
  closed: number[];
}

export type CreateOutcome =
  | ({ ok: true; status: 'ok'; replayed: boolean } & OpenGrant & BreakEffects)
  | ({ ok: true; status: 'break-required' } & BreakEffects)
  | Refused;

/** An open.create as the server proposes it (the table's CreateArgs; a lease's epoch defaults to 0). */
export type CreateRequest = Omit<CreateArgs, 'lease'> & { lease?: Omit<LeaseRequest, 'epoch'> & { epoch?: number } };

export interface ReconnectRequest {
  openId: number;
  clientGuid: string;
  createGuid?: string;
  node: string;
  inc: number;
  owner: string;
  sessionId?: U64;
  v2: boolean;
  persistent: boolean;
  lease?: { key: string; version: 1 | 2 };
  now: number;
}

export interface CloseOutcome {
  ok: true;
  deleteOnClose: boolean;
  lastOpen: boolean;
  lastOnStream: boolean;
  file: string;
  stream: string;
}

export type DisconnectOutcome = { ok: true; closed: boolean; expiresAt?: number; deleteOnClose?: boolean; lastOpen?: boolean } | Refused;

export interface LockElementArg {
  offset: U64;
  length: U64;
  exclusive: boolean;
  unlock: boolean;
}

export type LockOutcome =
  | { ok: true; replay: boolean; unlocked?: number; failed?: { index: number; code: string }; breaks: BreakNotice[]; waitFor: WaitItem[] }
  | Refused;

function unwrap<T>(r: CommandResult): ({ ok: true } & T) | Refused {
  if (!r.ok) return { ok: false, code: r.code, message: r.message };
  return { ok: true, ...(r.value as T) };
}

/** What ioCheck() keeps of one open between changes of the open table. */
interface IoCacheEntry {
  stamp: number;
  file: string;
  stream: string;
  locks: ReturnType<typeof locksOfFile>;
  read?: boolean;
  write?: boolean;
}

/** Opens whose ioCheck answers are kept (the map is emptied when it reaches this). */
const IO_CACHE_MAX = 4096;

/** Typed proposals of the open-table commands and the reads between them. */
export class OpenTableClient {
  /**
   * Bumped, synchronously as each batch is applied, when the batch changed an open, a lease or a
   * lock: what ioCheck() keeps per open is valid while this (and meta.restoreCount) is unchanged.
   */
  private generation = 0;
  private readonly ioCache = new Map<number, IoCacheEntry>();

  constructor(readonly meta: MetaService) {
    // Registered first, so no other watcher of this service sees the change before the bump.
    const bump = (): void => void this.generation++;
    for (const family of ['open', 'open-file', 'lease', 'lock']) meta.watch(key(family), bump);
  }

  async create(req: CreateRequest): Promise<CreateOutcome> {
    const cmd: Record<string, unknown> = { t: 'open.create' };
    for (const [k, v] of Object.entries(req)) if (v !== undefined) cmd[k] = v;
    return unwrap(await this.meta.propose(cmd as { t: string })) as CreateOutcome;
  }

  async close(openId: number, now: number): Promise<CloseOutcome | Refused> {
    return unwrap<Omit<CloseOutcome, 'ok'>>(await this.meta.propose({ t: 'open.close', openId, now }));
  }

  async disconnect(openId: number, now: number): Promise<DisconnectOutcome> {
    return unwrap<Omit<Extract<DisconnectOutcome, { ok: true }>, 'ok'>>(await this.meta.propose({ t: 'open.disconnect', openId, now }));
  }

  async reconnect(req: ReconnectRequest): Promise<({ ok: true } & OpenGrant) | Refused> {
    const cmd: Record<string, unknown> = { t: 'open.reconnect' };
    for (const [k, v] of Object.entries(req)) if (v !== undefined) cmd[k] = v;
    return unwrap<OpenGrant>(await this.meta.propose(cmd as { t: string }));
  }

  async expire(now: number): Promise<{ ok: true; closed: number[]; more: boolean } | Refused> {
    return unwrap<{ closed: number[]; more: boolean }>(await this.meta.propose({ t: 'open.expire', now }));
  }

  async nodeDown(node: string, inc: number, now: number): Promise<{ ok: true; disconnected: number[]; closed: number[]; more: boolean } | Refused> {
    return unwrap<{ disconnected: number[]; closed: number[]; more: boolean }>(await this.meta.propose({ t: 'open.node-down', node, inc, now }));
  }

  async breakFor(openId: number, op: BreakOp, now: number): Promise<({ ok: true } & BreakEffects) | Refused> {
    return unwrap<BreakEffects>(await this.meta.propose({ t: 'open.break', openId, op, now }));
  }

  async leaseAck(clientGuid: string, leaseKey: string, state: number, now: number): Promise<({ ok: true; state: number; epoch: number } & BreakEffects) | Refused> {
    return unwrap<{ state: number; epoch: number } & BreakEffects>(await this.meta.propose({ t: 'lease.ack', clientGuid, leaseKey, state, now }));
  }

  async leaseBreakTimeout(clientGuid: string, leaseKey: string, now: number): Promise<{ ok: true; completed: boolean; state?: number; closed?: number[] } | Refused> {
    return unwrap<{ completed: boolean; state?: number; closed?: number[] }>(await this.meta.propose({ t: 'lease.break-timeout', clientGuid, leaseKey, now }));
  }

  async oplockAck(openId: number, level: 'II' | 'none', now: number): Promise<{ ok: true; oplock: OplockLevel; protocolError: boolean; breaks: BreakNotice[] } | Refused> {
    return unwrap<{ oplock: OplockLevel; protocolError: boolean; breaks: BreakNotice[] }>(await this.meta.propose({ t: 'oplock.ack', openId, level, now }));
  }

  async oplockBreakTimeout(openId: number, now: number): Promise<{ ok: true; completed: boolean } | Refused> {
    return unwrap<{ completed: boolean }>(await this.meta.propose({ t: 'oplock.break-timeout', openId, now }));
  }

  async lock(openId: number, locks: LockElementArg[], now: number, lockSequence?: { index: number; seq: number }, multiChannel = false): Promise<LockOutcome> {
    const cmd: Record<string, unknown> = { t: 'lock.apply', openId, locks, now };
    if (lockSequence !== undefined) cmd['lockSequence'] = lockSequence;
    if (multiChannel) cmd['multiChannel'] = true;
    return unwrap(await this.meta.propose(cmd as { t: string })) as LockOutcome;
  }

  async setResilient(openId: number, timeoutMs: number): Promise<{ ok: true; timeoutMs: number } | Refused> {
    return unwrap<{ timeoutMs: number }>(await this.meta.propose({ t: 'open.set-resilient', openId, timeoutMs }));
  }

  async channelSequence(openId: number, channelSequence: number): Promise<{ ok: true; channelSequence: number; advanced: boolean; stale: boolean } | Refused> {
    return unwrap<{ channelSequence: number; advanced: boolean; stale: boolean }>(await this.meta.propose({ t: 'open.channel-sequence', openId, channelSequence }));
  }

  // ---- reads of this node's applied state ----

  open(openId: number): Open | undefined {
    return this.meta.read((tx) => getOpen(tx, openId));
  }

  lease(clientGuid: string, leaseKey: string): Lease | undefined {
    return this.meta.read((tx) => getLease(tx, clientGuid, leaseKey));
  }

  opensOf(file: string): Open[] {
    return this.meta.read((tx) => opensOfFile(tx, file));
  }

  /** MS-FSA 2.1.5.3 / 2.1.5.4: is [offset, offset+length) locked against this open's read/write? */
  lockConflict(file: string, openId: number, offset: U64, length: U64, write: boolean): boolean {
    return this.meta.read((tx) => testLock(tx, file, offset, length, write, openId));
  }

  /** Would an operation of kind `op` on this open break someone's caching? */
  breakNeeded(openId: number, op: BreakOp): boolean {
    return this.meta.read((tx) => planBreaks(tx, openId, op));
  }

  /**
   * The checks a READ or WRITE makes, in one read of the applied state: is the range locked against
   * this open (MS-FSA 2.1.5.3 / 2.1.5.4), and would the I/O break someone's caching (MS-FSA 2.1.4.12)?
   */
  ioCheck(file: string, openId: number, offset: U64, length: U64, write: boolean): { locked: boolean; breakNeeded: boolean } {
    // Every READ and WRITE asks this: the answer is computed from the applied state once per open
    // and kept until an open, lease or lock changes (decoding every open of a file shared by many
    // clients on each I/O cost more than the I/O itself).
    const stamp = this.generation * 65536 + (this.meta.restoreCount % 65536);
    let e = this.ioCache.get(openId);
    if (e === undefined || e.stamp !== stamp || e.file !== file) {
      if (this.ioCache.size >= IO_CACHE_MAX) this.ioCache.clear();
      e = this.meta.read((tx) => ({ stamp, file, stream: getOpen(tx, openId)?.stream ?? '', locks: locksOfFile(tx, file) }));
      this.ioCache.set(openId, e);
    }
    const op = write ? 'write' : 'read';
    let breakNeeded = e[op];
    if (breakNeeded === undefined) breakNeeded = e[op] = this.meta.read((tx) => planBreaks(tx, openId, op));
    let locked = false;
    if (e.locks.length > 0) {
      const off = BigInt(offset);
      const len = BigInt(length);
      locked = e.locks.some((l) => l.stream === e.stream && rangeConflicts(l, off, len, write, false, openId));
    }
    return { locked, breakNeeded };
  }

  /**
   * Calls `cb` after every applied batch that changed a byte-range lock, of `file` when given
   * (blocked LOCK requests retry). Returns the function that stops watching.
   */
  watchLocks(cb: () => void, file?: string): () => void {
    return this.meta.watch(file === undefined ? key('lock') : key('lock', file), () => cb());
  }

  /** Calls `cb` after every applied batch that changed (or removed) the record of one open. */
  watchOpen(openId: number, cb: () => void): () => void {
    return this.meta.watch(key('open', openId), () => cb());
  }

  /** Is the break named by `w` still waiting for its acknowledgment or timeout? */
  stillBreaking(w: WaitItem): boolean {
    return this.meta.read((tx) => {
      if (w.kind === 'lease') return getLease(tx, w.clientGuid, w.leaseKey)?.breaking !== undefined;
      return getOpen(tx, w.openId)?.oplockBreaking !== undefined;
    });
  }

  /** Calls `cb` after every applied batch that changed an open or a lease (any node's proposal). */
  watchChanges(cb: () => void): () => void {
    const a = this.meta.watch(key('open'), () => cb());
    const b = this.meta.watch(key('lease'), () => cb());
    return () => {
      a();
      b();
    };
  }
}
