// FaultyStore: wraps any ObjectStore and injects the failures a real object store shows, on a seeded
// schedule, for crash and retry tests of the code above it (the chunked driver):
// - 'unavailable' before an operation (it never reaches the store: nothing happened),
// - 'ambiguous' after a write (put, copy, deleteMany) ran: its effect happened, the caller is told it
//   may not have (a timeout after sending),
// - added latency before an operation,
// - partial deleteMany: some keys reported failed ('unavailable') and left in place.
// The schedule depends only on the seed (or the injected random function), the fault mix and the
// order in which operations are called: every call draws the same number of random values at call
// time, whatever the probabilities, so changing one probability does not shift the rest of a run.
import { TesseraError } from '../base/errors.js';
import { checkDeleteKeys } from './checks.js';
import {
  ObjStoreError,
  type ByteRange,
  type DeleteResult,
  type ListPage,
  type ObjectInfo,
  type ObjectStore,
  type ObjStoreErrorCode,
  type PutOptions,
} from './spi.js';

export type FaultOp = 'get' | 'put' | 'head' | 'deleteMany' | 'list' | 'copy';
const OPS: readonly FaultOp[] = ['get', 'put', 'head', 'deleteMany', 'list', 'copy'];
const WRITES: ReadonlySet<FaultOp> = new Set(['put', 'copy', 'deleteMany']);

export interface OpFaults {
  /** Probability that the operation fails 'unavailable' without reaching the store. */
  readonly unavailable?: number;
  /** Probability that a write (put, copy, deleteMany) runs, then fails 'ambiguous'. Ignored for reads. */
  readonly ambiguous?: number;
  /** Latency added before the operation, uniform in [min, max] milliseconds. */
  readonly latencyMs?: readonly [number, number];
}

export interface FaultMix {
  /** Defaults for every operation; a per-operation entry overrides them field by field. */
  readonly all?: OpFaults;
  readonly get?: OpFaults;
  readonly put?: OpFaults;
  readonly head?: OpFaults;
  readonly deleteMany?: OpFaults;
  readonly list?: OpFaults;
  readonly copy?: OpFaults;
  /** deleteMany: probability that each key is reported failed and left in place. */
  readonly deleteKeyFailure?: number;
}

export interface FaultCounters {
  calls: number;
  unavailable: number;
  ambiguous: number;
  delayed: number;
  delayMs: number;
  /** deleteMany keys reported failed and left in place. */
  keysFailed: number;
}

/** One injected fault, reported to `onFault` in call order. */
export interface FaultEvent {
  readonly op: FaultOp;
  /** Sequence number of the call (0-based, over all operations). */
  readonly call: number;
  readonly fault: 'unavailable' | 'ambiguous' | 'latency' | 'key-failed';
  /** Latency in ms, or the key left in place. */
  readonly detail?: number | string;
}

export interface FaultyOptions {
  /** Seed of the built-in PRNG (mulberry32); ignored when `random` is given. Default 1. */
  readonly seed?: number;
  /** Source of uniform numbers in [0, 1), instead of the seeded PRNG. */
  readonly random?: () => number;
  readonly faults?: FaultMix;
  /** How latency is waited for (a fake clock in simulations); default setTimeout. */
  readonly sleep?: (ms: number) => Promise<void>;
  readonly onFault?: (e: FaultEvent) => void;
}

/** mulberry32: a small, fast 32-bit PRNG; one seed reproduces one sequence. */
export function mulberry32(seed: number): () => number {
  let s = seed >>> 0 || 0x9e3779b9;
  return () => {
    let t = (s = (s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Plan {
  readonly call: number;
  readonly unavailable: boolean;
  readonly ambiguous: boolean;
  readonly delayMs: number;
}

/** Errors that a store raises before any I/O: an ambiguous outcome would be a lie about them. */
const PRE_IO: ReadonlySet<ObjStoreErrorCode> = new Set(['invalid', 'too-large', 'closed']);

export class FaultyStore implements ObjectStore {
  readonly kind: string;
  private readonly random: () => number;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly onFault: ((e: FaultEvent) => void) | undefined;
  private mix: FaultMix = {};
  private calls = 0;
  private closed = false;
  private readonly counts: Record<FaultOp, FaultCounters>;

  constructor(
    readonly inner: ObjectStore,
    options: FaultyOptions = {},
  ) {
    this.kind = `faulty(${inner.kind})`;
    this.random = options.random ?? mulberry32(options.seed ?? 1);
    this.sleep = options.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
    this.onFault = options.onFault;
    this.counts = Object.fromEntries(
      OPS.map((op) => [op, { calls: 0, unavailable: 0, ambiguous: 0, delayed: 0, delayMs: 0, keysFailed: 0 }]),
    ) as Record<FaultOp, FaultCounters>;
    this.setFaults(options.faults ?? {});
  }

  /** Replaces the fault mix (takes effect for the next call). */
  setFaults(mix: FaultMix): void {
    const prob = (p: number | undefined, what: string): void => {
      if (p !== undefined && !(typeof p === 'number' && p >= 0 && p <= 1)) {
        throw new TesseraError('TESSERA_CONFIG_INVALID', `faulty store: ${what} must be a probability in [0, 1]`);
      }
    };
    for (const k of ['all', ...OPS] as const) {
      const f = mix[k];
      if (f === undefined) continue;
      prob(f.unavailable, `${k}.unavailable`);
      prob(f.ambiguous, `${k}.ambiguous`);
      const l = f.latencyMs;
      if (l !== undefined && !(Array.isArray(l) && l.length === 2 && l[0] >= 0 && l[1] >= l[0] && Number.isFinite(l[1]))) {
        throw new TesseraError('TESSERA_CONFIG_INVALID', `faulty store: ${k}.latencyMs must be [min, max] with 0 <= min <= max`);
      }
    }
    prob(mix.deleteKeyFailure, 'deleteKeyFailure');
    this.mix = mix;
  }

  /** What was injected so far, per operation (a copy). */
  counters(): Record<FaultOp, FaultCounters> {
    return Object.fromEntries(OPS.map((op) => [op, { ...this.counts[op] }])) as Record<FaultOp, FaultCounters>;
  }

  get(key: string, range?: ByteRange): Promise<Buffer> {
    return this.run('get', () => this.inner.get(key, range));
  }

  put(key: string, body: Uint8Array | readonly Uint8Array[], opts?: PutOptions): Promise<ObjectInfo> {
    return this.run('put', () => this.inner.put(key, body, opts));
  }

  head(key: string): Promise<ObjectInfo | undefined> {
    return this.run('head', () => this.inner.head(key));
  }

  list(prefix: string, opts?: { after?: string; limit?: number }): Promise<ListPage> {
    return this.run('list', () => this.inner.list(prefix, opts));
  }

  copy(source: string, target: string, opts?: { ifNoneMatch?: '*' }): Promise<ObjectInfo> {
    return this.run('copy', () => this.inner.copy(source, target, opts));
  }

  async deleteMany(keys: readonly string[]): Promise<DeleteResult> {
    if (this.closed) throw new ObjStoreError('closed', 'object store is closed');
    checkDeleteKeys(keys); // 'invalid' is decided before any fault, as the store would
    // Per-key draws happen now, in call order, like the plan's.
    const pKey = this.mix.deleteKeyFailure ?? 0;
    const failing = keys.map(() => this.random() < pKey);
    let call = -1;
    const result = await this.run(
      'deleteMany',
      async () => {
        const kept = keys.filter((_, i) => !failing[i]);
        const r = kept.length > 0 ? await this.inner.deleteMany(kept) : { deleted: [], errors: [] };
        const injected = keys.filter((_, i) => failing[i]);
        this.counts.deleteMany.keysFailed += injected.length;
        for (const key of injected) this.emit({ op: 'deleteMany', call, fault: 'key-failed', detail: key });
        return {
          deleted: r.deleted,
          errors: [...r.errors, ...injected.map((key) => ({ key, code: 'unavailable' as const, message: 'injected fault: key not deleted' }))],
        };
      },
      (c) => (call = c),
    );
    return result;
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.inner.close();
  }

  private plan(op: FaultOp): Plan {
    const f = { ...this.mix.all, ...this.mix[op] };
    // Always three draws per call, whatever the mix.
    const r1 = this.random();
    const r2 = this.random();
    const r3 = this.random();
    const [lo, hi] = f.latencyMs ?? [0, 0];
    return {
      call: this.calls++,
      unavailable: r1 < (f.unavailable ?? 0),
      ambiguous: WRITES.has(op) && r2 < (f.ambiguous ?? 0),
      delayMs: lo + r3 * (hi - lo),
    };
  }

  private async run<T>(op: FaultOp, fn: () => Promise<T>, onCall?: (call: number) => void): Promise<T> {
    if (this.closed) throw new ObjStoreError('closed', 'object store is closed');
    const p = this.plan(op);
    onCall?.(p.call);
    const c = this.counts[op];
    c.calls++;
    if (p.delayMs > 0) {
      c.delayed++;
      c.delayMs += p.delayMs;
      this.emit({ op, call: p.call, fault: 'latency', detail: p.delayMs });
      await this.sleep(p.delayMs);
    }
    if (p.unavailable) {
      c.unavailable++;
      this.emit({ op, call: p.call, fault: 'unavailable' });
      throw new ObjStoreError('unavailable', `injected fault: ${op} did not reach the store`);
    }
    if (!p.ambiguous) return fn();
    try {
      await fn();
    } catch (e) {
      if (e instanceof ObjStoreError && PRE_IO.has(e.code)) throw e;
    }
    c.ambiguous++;
    this.emit({ op, call: p.call, fault: 'ambiguous' });
    throw new ObjStoreError('ambiguous', `injected fault: ${op} ran, its outcome is hidden`);
  }

  private emit(e: FaultEvent): void {
    this.onFault?.(e);
  }
}
