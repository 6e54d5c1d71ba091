// The view command handlers get of the materialised state while a command is applied, and the
// in-memory store used by unit tests and the simulation. Handlers are deterministic: they read and
// write only through ApplyTx, never the clock, randomness or I/O; everything time- or identity-
// dependent comes in the command itself (ARCHITECTURE.md, "Decisions already taken").
import { pack, unpack, RECORD_VERSION } from './codec.js';
import { prefixEnd } from './keys.js';

export interface RangeOptions {
  /**
   * Forward: inclusive start key (defaults to the prefix), to resume a scan. Reverse: exclusive upper
   * bound (entries with keys < start), e.g. "the last extent at or before offset X" is
   * range(key('ext', f), { start: key('ext', f, X + 1), reverse: true, limit: 1 }).
   */
  start?: Uint8Array;
  /** At most this many entries. */
  limit?: number;
  reverse?: boolean;
}

export interface ReadTx {
  /** The record under `key`, decoded (a fresh copy: mutate it and put() it back). */
  get<T extends object>(key: Uint8Array): T | undefined;
  /** Records whose keys start with `prefix`, in key order. */
  range<T extends object>(prefix: Uint8Array, opts?: RangeOptions): Iterable<[Buffer, T]>;
}

export interface ApplyTx extends ReadTx {
  put(key: Uint8Array, value: object): void;
  del(key: Uint8Array): void;
  /** Log position of the batch being applied and the entry's index in it. */
  readonly position: number;
  readonly index: number;
}

/** Stable outcome codes of a command (the server maps them to NTSTATUS in one place). */
export type MetaErrorCode =
  | 'exists'
  | 'not-found'
  | 'not-empty'
  | 'not-directory'
  | 'is-directory'
  | 'sharing-violation'
  | 'lock-conflict'
  | 'lease-conflict'
  /** The file is held by a disconnected persistent open (MS-SMB2 3.3.5.9: STATUS_FILE_NOT_AVAILABLE). */
  | 'unavailable'
  /** The caller is not the owner the record requires (MS-SMB2 3.3.5.9.7: STATUS_ACCESS_DENIED). */
  | 'access-denied'
  | 'invalid'
  | 'stale'
  | 'fenced'
  | 'version-mismatch'
  | 'limit'
  | 'internal';

export type CommandResult =
  | { ok: true; value?: unknown }
  | { ok: false; code: MetaErrorCode; message: string };

/** Thrown by a handler's checks; guarded() turns it into fail(code, message). */
export class Refusal extends Error {
  constructor(
    readonly code: MetaErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'Refusal';
  }
}

export function refuse(code: MetaErrorCode, message: string): never {
  throw new Refusal(code, message);
}

/** Wraps a handler so a Refusal thrown by its checks becomes fail(code, message). */
export function guarded(fn: (tx: ApplyTx, cmd: Command) => CommandResult): (tx: ApplyTx, cmd: Command) => CommandResult {
  return (tx, cmd) => {
    try {
      return fn(tx, cmd);
    } catch (e) {
      if (e instanceof Refusal) return fail(e.code, e.message);
      throw e;
    }
  };
}

/** Index of the first element of ascending `sorted` that is >= x (sorted.length if none). */
export function lowerBound<T extends string | number>(sorted: readonly T[], x: T): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (sorted[mid]! < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

export const ok = (value?: unknown): CommandResult => (value === undefined ? { ok: true } : { ok: true, value });
export const fail = (code: MetaErrorCode, message: string): CommandResult => ({ ok: false, code, message });

/** A command: `t` names it ("ns.create"); the other fields are its arguments. */
export interface Command {
  t: string;
  [field: string]: unknown;
}

/**
 * A family's command handlers. A handler returns a result for bad arguments or refused operations
 * (never throws for those); a throw is a bug: the state machine rolls back that command's writes and
 * reports code 'internal' (deterministically, on every node).
 */
export type HandlerTable = Record<string, (tx: ApplyTx, cmd: Command) => CommandResult>;

/** Record bytes: [RECORD_VERSION, value]. */
export function encodeRecord(value: object): Buffer {
  return pack([RECORD_VERSION, value]);
}

export function decodeRecord<T>(bytes: Uint8Array): T {
  const rec = unpack<[number, T]>(bytes);
  if (!Array.isArray(rec) || rec[0] !== RECORD_VERSION) {
    throw new Error(`meta: record version ${Array.isArray(rec) ? rec[0] : '?'} is not ${RECORD_VERSION}`);
  }
  return rec[1];
}

/** Sorted in-memory key/value store with the same order and encoding as the LMDB store. */
export class MemoryStore {
  private readonly map = new Map<string, Buffer>();
  private sorted: string[] | null = [];

  getRaw(k: Uint8Array): Buffer | undefined {
    return this.map.get(Buffer.from(k).toString('latin1'));
  }
  putRaw(k: Uint8Array, v: Buffer): void {
    const s = Buffer.from(k).toString('latin1');
    if (!this.map.has(s)) this.sorted = null;
    this.map.set(s, v);
  }
  delRaw(k: Uint8Array): void {
    if (this.map.delete(Buffer.from(k).toString('latin1'))) this.sorted = null;
  }
  get size(): number {
    return this.map.size;
  }
  /** Keys in bytewise order within [start, end) (end empty = unbounded). */
  *rangeRaw(start: Uint8Array, end: Uint8Array, reverse = false): Iterable<[Buffer, Buffer]> {
    if (this.sorted === null) {
      // latin1 maps bytes 1:1 to code units 0-255, so string order is byte order.
      this.sorted = [...this.map.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    }
    const keys = this.sorted;
    const s = Buffer.from(start).toString('latin1');
    const e = end.length === 0 ? null : Buffer.from(end).toString('latin1');
    const from = lowerBound(keys, s);
    const to = e === null ? keys.length : lowerBound(keys, e);
    // `keys` is never mutated (a write drops it and the next call sorts a new array), so a caller may
    // write while iterating.
    for (let i = 0; i < to - from; i++) {
      const x = keys[reverse ? to - 1 - i : from + i]!;
      const v = this.map.get(x);
      if (v !== undefined) yield [Buffer.from(x, 'latin1'), v];
    }
  }
  /** A transaction whose writes go straight to this store (tests of single handlers). */
  tx(position = 1, index = 0): ApplyTx {
    return rawTx(this, position, index);
  }
}

export interface RawKV {
  getRaw(k: Uint8Array): Buffer | undefined;
  putRaw(k: Uint8Array, v: Buffer): void;
  delRaw(k: Uint8Array): void;
  rangeRaw(start: Uint8Array, end: Uint8Array, reverse?: boolean): Iterable<[Buffer, Buffer]>;
}

/** ApplyTx over any raw key/value store (the state machine passes an overlay over LMDB). */
export function rawTx(kv: RawKV, position: number, index: number): ApplyTx {
  return {
    position,
    index,
    get<T extends object>(k: Uint8Array): T | undefined {
      const v = kv.getRaw(k);
      return v === undefined ? undefined : decodeRecord<T>(v);
    },
    *range<T extends object>(prefix: Uint8Array, opts: RangeOptions = {}): Iterable<[Buffer, T]> {
      const end = prefixEnd(prefix);
      let start: Uint8Array = prefix;
      let stop: Uint8Array = end;
      if (opts.start !== undefined) {
        // reverse: resume below start (exclusive), never above the prefix's end.
        if (opts.reverse) stop = end.length === 0 || Buffer.compare(opts.start, end) < 0 ? opts.start : end;
        else start = Buffer.compare(opts.start, prefix) > 0 ? opts.start : prefix;
      }
      let n = 0;
      for (const [k, v] of kv.rangeRaw(start, stop, opts.reverse ?? false)) {
        if (opts.limit !== undefined && n >= opts.limit) return;
        n++;
        yield [k, decodeRecord<T>(v)];
      }
    },
    put(k: Uint8Array, value: object): void {
      kv.putRaw(k, encodeRecord(value));
    },
    del(k: Uint8Array): void {
      kv.delRaw(k);
    },
  };
}
