// The etcd backend of the replicated log (ARCHITECTURE.md "Consensus: etcd"; SPI in ./spi.ts).
//
// Layout: one etcd key, `<prefix>/log`. Every put of that key is one batch; the batch's position is
// the put's revision (the key's mod_revision), so positions increase strictly but skip the revisions
// of other keys. Subscribers watch that key from `after + 1` and receive the puts in revision order;
// etcd keeps the key's history until it is compacted. `<prefix>/compacted` records (in decimal) how
// far the caller has compacted.
//
// Value framing (validated on read, 'corrupt' otherwise):
//   'T' 'L' 'B' 0x01 (magic + version) | u32 entry count (>= 1) | count x (u32 length | bytes)
// All integers big-endian; the entries end exactly at the end of the value.
//
// Client (etcd3 1.1.2 on @grpc/grpc-js), read from its source:
// - One Etcd3 client per endpoint, so this module chooses the member: the first endpoint is preferred,
//   a failed attempt moves the log to the next one. etcd3's own fault handling is switched off (both
//   policies pass through): its default global policy retries 3 times on a random member and its
//   per-host circuit breaker stays open 5 s after 3 failures; neither knows whether a failed put may
//   have landed, which append() must report ('ambiguous' vs 'unavailable').
// - etcd3 declares `dialTimeout` but never reads it (1.1.2); connection set-up is bounded by each
//   call's gRPC deadline instead (logEtcdAttemptMs), and a call on a channel that cannot connect fails
//   at once with UNAVAILABLE (no waitForReady).
// - Every call carries the gRPC metadata `hasleader: true` (etcd's "require leader", what clientv3's
//   WithRequireLeader sends): a member without a leader refuses the call at once instead of holding
//   it, and closes watch streams when it loses its leader (a member cut off in a minority would
//   otherwise keep a watch open that never delivers another event).
// - Watches use the raw Watch stream, not etcd3's Watcher: the Watcher resumes after a reconnect from
//   the watch response header's revision + 1, which can skip events (a created response or a
//   catch-up response carries the current store revision, not the last event delivered). Here the
//   resume point is always the revision of the last batch taken from the stream, and events at or
//   below it are dropped, so a reconnect gives no gap and no repeat.
// - Watch creation asks for `fragment: true` so no watch response exceeds etcd's request limit
//   (a catch-up response would otherwise hold up to 1,000 revisions of up-to-1 MiB batches, beyond
//   the client's receive limit, and fail forever).

import { InterceptingCall, type Interceptor } from '@grpc/grpc-js';
import { Etcd3, type IOptions, type IWatchResponse } from 'etcd3';
import { TesseraError } from '../base/errors.js';
import { limits } from '../base/limits.js';
import { LogError, type LogBatch, type LogSubscription, type ReplicatedLog } from './spi.js';

const MAGIC = 0x544c4201; // 'T' 'L' 'B' 0x01
const HEADER_BYTES = 8;
const ENTRY_HEADER_BYTES = 4;

/** Encodes a batch value (see the file comment). Exported for tests. */
export function encodeBatch(entries: readonly Uint8Array[]): Buffer {
  let total = HEADER_BYTES;
  for (const e of entries) total += ENTRY_HEADER_BYTES + e.length;
  const out = Buffer.allocUnsafe(total);
  out.writeUInt32BE(MAGIC, 0);
  out.writeUInt32BE(entries.length, 4);
  let at = HEADER_BYTES;
  for (const e of entries) {
    out.writeUInt32BE(e.length, at);
    at += ENTRY_HEADER_BYTES;
    out.set(e, at);
    at += e.length;
  }
  return out;
}

/** Decodes and validates a batch value; throws LogError 'corrupt'. Entries are views of `value`. */
export function decodeBatch(value: Uint8Array, position: number): Uint8Array[] {
  const corrupt = (why: string): LogError => new LogError('corrupt', `etcd log batch at ${position}: ${why}`);
  if (value.length < HEADER_BYTES) throw corrupt(`${value.length} bytes, shorter than the header`);
  const view = new DataView(value.buffer, value.byteOffset, value.byteLength);
  if (view.getUint32(0) !== MAGIC) throw corrupt('bad magic or unknown version');
  const count = view.getUint32(4);
  if (count < 1) throw corrupt('no entries');
  if (count > (value.length - HEADER_BYTES) / ENTRY_HEADER_BYTES) throw corrupt(`entry count ${count} exceeds the value`);
  const entries: Uint8Array[] = new Array<Uint8Array>(count);
  let at = HEADER_BYTES;
  for (let i = 0; i < count; i++) {
    if (at + ENTRY_HEADER_BYTES > value.length) throw corrupt(`entry ${i} header past the end`);
    const len = view.getUint32(at);
    at += ENTRY_HEADER_BYTES;
    if (len > value.length - at) throw corrupt(`entry ${i} (${len} bytes) past the end`);
    entries[i] = value.subarray(at, at + len);
    at += len;
  }
  if (at !== value.length) throw corrupt(`${value.length - at} trailing bytes`);
  return entries;
}

export interface EtcdLogOptions {
  /** Client URLs of the members (http://host:port); the first is preferred. */
  endpoints: string[];
  /** Key prefix of this log (e.g. '/tessera/<cluster>'); the log key is `<prefix>/log`. */
  prefix: string;
  /** Puts in flight (default limits.logEtcdPutsInFlightMax). */
  putsInFlight?: number;
  /** Deadline of one attempt, ms (default limits.logEtcdAttemptMs). */
  attemptMs?: number;
  /** Overall deadline of an append, ms (default limits.logAppendDeadlineMs). */
  appendDeadlineMs?: number;
  /**
   * Called before a batch whose previous attempt may have landed is sent again (its entries may be
   * committed twice; the consumer deduplicates by entry id). For metrics and tests.
   */
  onResend?: (entries: readonly Uint8Array[], cause: unknown) => void;
}

export interface EtcdLogStats {
  appends: number;
  puts: number;
  attemptsFailed: number;
  resends: number;
}

interface PendingAppend {
  readonly entries: readonly Uint8Array[];
  readonly bytes: number;
  readonly deadline: number;
  readonly resolve: (position: number) => void;
  readonly reject: (err: LogError) => void;
}

/** Whether a failed attempt may have been committed. */
type Outcome = 'not-sent' | 'maybe' | 'too-large';

// Errors after which the request was certainly not committed (it never reached raft, or etcd
// refused it before proposing). Everything else (deadline, reset connection, "request timed out"
// after a proposal) may have been committed.
const notSentPatterns = [
  'No connection established', // gRPC: the channel never connected to the member
  'Channel closed before call started', // gRPC: the call was queued on a channel being reset
  'etcdserver: no leader', // hasleader refused by the member's interceptor
  'raft proposal dropped', // a follower without a leader drops the proposal before raft
  'etcdserver: too many requests', // apply backlog: refused before proposing
  'etcdserver: not capable',
  'database space exceeded', // NOSPACE alarm: the put is rejected
  'client was already closed', // etcd3 ClientClosedError
];

function classify(err: unknown): Outcome {
  const msg = err instanceof Error ? err.message : String(err);
  if (msg.includes('etcdserver: request is too large')) return 'too-large';
  for (const p of notSentPatterns) if (msg.includes(p)) return 'not-sent';
  return 'maybe';
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

const requireLeader: Interceptor = (options, nextCall) =>
  new InterceptingCall(nextCall(options), {
    start(metadata, listener, next) {
      metadata.set('hasleader', 'true');
      next(metadata, listener);
    },
  });

type FaultPolicy = NonNullable<NonNullable<IOptions['faultHandling']>['global']>;
// Pass-through policy (what cockatiel's `noop` does): no retry, no circuit breaker.
const passThrough = {
  async execute<T>(fn: (context: { signal: AbortSignal }) => T | Promise<T>): Promise<T> {
    return fn({ signal: new AbortController().signal });
  },
} as unknown as FaultPolicy;

function makeClient(endpoint: string): Etcd3 {
  return new Etcd3({
    hosts: endpoint,
    faultHandling: { host: () => passThrough, global: passThrough },
    grpcOptions: {
      'grpc.max_receive_message_length': limits.logEtcdReceiveBytesMax,
      // A restarted member is found again within a second (gRPC's default backoff grows to 120 s).
      'grpc.initial_reconnect_backoff_ms': 100,
      'grpc.max_reconnect_backoff_ms': 1000,
      // Detect a member that stops answering (paused, partitioned) on an open watch. etcd's default
      // --grpc-keepalive-min-time is 5 s: pinging more often gets the connection closed.
      'grpc.keepalive_time_ms': 6000,
      'grpc.keepalive_timeout_ms': 3000,
    },
    defaultCallOptions: () => ({ interceptors: [requireLeader] }),
  });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function positionOf(revision: string | undefined, what: string): number {
  const n = Number(revision);
  if (revision === undefined || !Number.isSafeInteger(n) || n < 0) {
    throw new LogError('corrupt', `etcd returned an unusable ${what} revision ${String(revision)}`);
  }
  return n;
}

export class EtcdLog implements ReplicatedLog {
  readonly backend = 'etcd';
  readonly stats: EtcdLogStats = { appends: 0, puts: 0, attemptsFailed: 0, resends: 0 };

  private readonly clients: Etcd3[];
  private readonly logKey: Buffer;
  private readonly compactedKey: Buffer;
  private readonly putsInFlightMax: number;
  private readonly attemptMs: number;
  private readonly appendDeadlineMs: number;
  private readonly onResend: EtcdLogOptions['onResend'];

  /** Preferred member; moves to the next after a failed attempt on it. */
  private member = 0;
  private queue: PendingAppend[] = [];
  private queueHead = 0;
  private queuedBytes = 0;
  private putsInFlight = 0;
  private readonly sending = new Set<Promise<void>>();
  private sweepTimer: NodeJS.Timeout | undefined;
  private readonly subscriptions = new Set<EtcdSubscription>();
  private closed = false;
  private closing: Promise<void> | undefined;
  private wakeClosed!: () => void;
  private readonly closedSignal: Promise<void>;

  private constructor(opts: EtcdLogOptions) {
    this.clients = opts.endpoints.map(makeClient);
    this.logKey = Buffer.from(`${opts.prefix}/log`);
    this.compactedKey = Buffer.from(`${opts.prefix}/compacted`);
    this.putsInFlightMax = opts.putsInFlight ?? limits.logEtcdPutsInFlightMax;
    this.attemptMs = opts.attemptMs ?? limits.logEtcdAttemptMs;
    this.appendDeadlineMs = opts.appendDeadlineMs ?? limits.logAppendDeadlineMs;
    this.onResend = opts.onResend;
    this.closedSignal = new Promise<void>((r) => (this.wakeClosed = r));
  }

  /** Connects (one reachable member is enough) and checks the stored compaction record. */
  static async open(opts: EtcdLogOptions): Promise<EtcdLog> {
    if (!Array.isArray(opts.endpoints) || opts.endpoints.length === 0) {
      throw new TesseraError('TESSERA_CONFIG_INVALID', 'etcd log: at least one endpoint is needed');
    }
    for (const e of opts.endpoints) {
      if (typeof e !== 'string' || !/^https?:\/\/[^/\s]+\/?$/.test(e)) {
        throw new TesseraError('TESSERA_CONFIG_INVALID', `etcd log: bad endpoint ${JSON.stringify(e)} (want http://host:port)`);
      }
    }
    if (typeof opts.prefix !== 'string' || opts.prefix.length === 0 || opts.prefix.length > 256 || opts.prefix.endsWith('/')) {
      throw new TesseraError('TESSERA_CONFIG_INVALID', `etcd log: bad prefix ${JSON.stringify(opts.prefix)} (1..256 characters, no trailing '/')`);
    }
    const positive = (v: number | undefined, what: string): void => {
      if (v !== undefined && (!Number.isSafeInteger(v) || v < 1)) {
        throw new TesseraError('TESSERA_CONFIG_INVALID', `etcd log: ${what} must be a positive integer`);
      }
    };
    positive(opts.putsInFlight, 'putsInFlight');
    positive(opts.attemptMs, 'attemptMs');
    positive(opts.appendDeadlineMs, 'appendDeadlineMs');
    const log = new EtcdLog(opts);
    try {
      await log.compactedThrough();
    } catch (err) {
      await log.close();
      throw err;
    }
    return log;
  }

  // --- append: group commit ---

  append(entries: readonly Uint8Array[]): Promise<number> {
    if (this.closed) return Promise.reject(new LogError('closed', 'etcd log is closed'));
    if (!Array.isArray(entries) || entries.length === 0) {
      return Promise.reject(new TesseraError('TESSERA_INTERNAL', 'etcd log: append needs at least one entry'));
    }
    let bytes = 0;
    for (const e of entries) {
      if (!(e instanceof Uint8Array)) return Promise.reject(new TesseraError('TESSERA_INTERNAL', 'etcd log: entries must be Uint8Array'));
      bytes += ENTRY_HEADER_BYTES + e.length;
    }
    if (HEADER_BYTES + bytes > limits.logBatchBytesMax) {
      return Promise.reject(
        new LogError('too-large', `etcd log: append of ${HEADER_BYTES + bytes} bytes exceeds logBatchBytesMax (${limits.logBatchBytesMax})`),
      );
    }
    if (this.queuedBytes + bytes > limits.logQueuedBytesMax) {
      return Promise.reject(
        new LogError('unavailable', `etcd log: ${this.queuedBytes} bytes already queued (logQueuedBytesMax ${limits.logQueuedBytesMax})`),
      );
    }
    this.stats.appends++;
    return new Promise<number>((resolve, reject) => {
      this.queue.push({ entries, bytes, deadline: Date.now() + this.appendDeadlineMs, resolve, reject });
      this.queuedBytes += bytes;
      this.pump();
    });
  }

  private queueLength(): number {
    return this.queue.length - this.queueHead;
  }

  private shiftQueue(): PendingAppend {
    const a = this.queue[this.queueHead++]!;
    if (this.queueHead > 1024 && this.queueHead * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.queueHead);
      this.queueHead = 0;
    }
    return a;
  }

  /** Starts puts while slots are free; everything queued goes into as few batches as fit. */
  private pump(): void {
    while (!this.closed && this.putsInFlight < this.putsInFlightMax && this.queueLength() > 0) {
      const now = Date.now();
      const batch: PendingAppend[] = [];
      let bytes = HEADER_BYTES;
      while (this.queueLength() > 0) {
        const next = this.queue[this.queueHead]!;
        if (next.deadline <= now) {
          this.shiftQueue();
          this.queuedBytes -= next.bytes;
          next.reject(new LogError('unavailable', 'etcd log: append deadline passed while queued (never sent)'));
          continue;
        }
        if (bytes + next.bytes > limits.logBatchBytesMax) break;
        this.shiftQueue();
        batch.push(next);
        bytes += next.bytes;
      }
      if (batch.length === 0) continue;
      this.putsInFlight++;
      const p = this.send(batch)
        .catch((err: unknown) => {
          // Not reached unless something unexpected threw; the outcome is then unknown.
          for (const a of batch) a.reject(new LogError('ambiguous', `etcd log: append failed unexpectedly: ${errorText(err)}`, { cause: err }));
        })
        .finally(() => {
          this.putsInFlight--;
          this.sending.delete(p);
          for (const a of batch) this.queuedBytes -= a.bytes;
          this.pump();
        });
      this.sending.add(p);
    }
    this.armSweep();
  }

  /** While appends wait for a slot, expire those past their deadline (they were never sent). */
  private armSweep(): void {
    if (this.sweepTimer !== undefined || this.closed || this.queueLength() === 0) return;
    this.sweepTimer = setTimeout(() => {
      this.sweepTimer = undefined;
      const now = Date.now();
      const kept: PendingAppend[] = [];
      for (let i = this.queueHead; i < this.queue.length; i++) {
        const a = this.queue[i]!;
        if (a.deadline <= now) {
          this.queuedBytes -= a.bytes;
          a.reject(new LogError('unavailable', 'etcd log: append deadline passed while queued (never sent)'));
        } else {
          kept.push(a);
        }
      }
      this.queue = kept;
      this.queueHead = 0;
      this.armSweep();
    }, 250);
    this.sweepTimer.unref();
  }

  /** Sends one batch until it commits, fails for good or its deadline passes. */
  private async send(batch: PendingAppend[]): Promise<void> {
    const entries: Uint8Array[] = [];
    let deadline = Infinity;
    for (const a of batch) {
      for (const e of a.entries) entries.push(e);
      if (a.deadline < deadline) deadline = a.deadline;
    }
    const value = encodeBatch(entries);
    const settle = (err: LogError | undefined, position = 0): void => {
      for (const a of batch) {
        if (err === undefined) a.resolve(position);
        else a.reject(err);
      }
    };
    let mayHaveLanded = false;
    let lastError: unknown;
    let delay: number = limits.logEtcdRetryDelayMs;
    for (let attempt = 0; ; attempt++) {
      if (attempt > 0 && mayHaveLanded) {
        this.stats.resends++;
        try {
          this.onResend?.(entries, lastError);
        } catch {
          // a metrics hook must not break the append
        }
      }
      const member = this.member;
      this.stats.puts++;
      try {
        const res = await this.clients[member]!.kv.put(
          { key: this.logKey, value },
          { deadline: Math.min(Date.now() + this.attemptMs, deadline) },
        );
        let position: number;
        try {
          position = positionOf(res.header?.revision, 'put');
        } catch (err) {
          settle(err as LogError);
          return;
        }
        settle(undefined, position);
        return;
      } catch (err) {
        this.stats.attemptsFailed++;
        lastError = err;
        const outcome = classify(err);
        if (outcome === 'too-large') {
          settle(
            mayHaveLanded
              ? new LogError('ambiguous', `etcd log: batch refused as too large after an attempt that may have landed`, { cause: err })
              : new LogError('too-large', `etcd log: etcd refused a ${value.length}-byte batch as too large`, { cause: err }),
          );
          return;
        }
        if (outcome === 'maybe') mayHaveLanded = true;
        this.failedOn(member);
        const final = (code: 'closed' | 'unavailable', why: string): LogError =>
          mayHaveLanded
            ? new LogError('ambiguous', `etcd log: ${why}; an attempt may have been committed: ${errorText(err)}`, { cause: err })
            : new LogError(code, `etcd log: ${why}; not committed: ${errorText(err)}`, { cause: err });
        if (this.closed) {
          settle(final('closed', 'closed while appending'));
          return;
        }
        if (Date.now() + delay >= deadline) {
          settle(final('unavailable', `no attempt succeeded within ${this.appendDeadlineMs} ms (${attempt + 1} attempts)`));
          return;
        }
        await Promise.race([sleep(delay), this.closedSignal]);
        delay = Math.min(delay * 2, limits.logEtcdRetryDelayMaxMs);
        if (this.closed) {
          settle(final('closed', 'closed while appending'));
          return;
        }
      }
    }
  }

  /** A failed attempt on `member` moves the log to the next member (once per failure of the current one). */
  private failedOn(member: number): void {
    if (this.member === member) this.member = (member + 1) % this.clients.length;
  }

  /**
   * Runs an idempotent request (a read, a compaction) with the per-attempt deadline, moving to the
   * next member after a failure, until the overall deadline; then 'unavailable'.
   */
  private async request<T>(what: string, fn: (client: Etcd3, deadline: number) => Promise<T>, isFinal?: (err: unknown) => boolean): Promise<T> {
    const deadline = Date.now() + this.appendDeadlineMs;
    let delay: number = limits.logEtcdRetryDelayMs;
    for (let attempt = 1; ; attempt++) {
      if (this.closed) throw new LogError('closed', `etcd log: closed (${what})`);
      const member = this.member;
      try {
        return await fn(this.clients[member]!, Math.min(Date.now() + this.attemptMs, deadline));
      } catch (err) {
        if (err instanceof LogError) throw err;
        if (isFinal?.(err) === true) throw err;
        this.failedOn(member);
        if (this.closed) throw new LogError('closed', `etcd log: closed (${what})`);
        if (Date.now() + delay >= deadline) {
          throw new LogError('unavailable', `etcd log: ${what} failed ${attempt} times within ${this.appendDeadlineMs} ms: ${errorText(err)}`, {
            cause: err,
          });
        }
        await Promise.race([sleep(delay), this.closedSignal]);
        delay = Math.min(delay * 2, limits.logEtcdRetryDelayMaxMs);
      }
    }
  }

  // --- reads ---

  async readIndex(): Promise<number> {
    // A linearizable range (etcd's default) of the log key alone: its mod_revision is the position of
    // the last committed batch. The header revision would not do: other keys move it.
    return this.request('readIndex', async (client, deadline) => {
      const res = await client.kv.range({ key: this.logKey, keys_only: true }, { deadline });
      const kv = res.kvs[0];
      return kv === undefined ? 0 : positionOf(kv.mod_revision, 'log key');
    });
  }

  async compactedThrough(): Promise<number> {
    return (await this.readCompacted()).through;
  }

  private async readCompacted(): Promise<{ through: number; modRevision: string }> {
    return this.request('compactedThrough', async (client, deadline) => {
      const res = await client.kv.range({ key: this.compactedKey }, { deadline });
      const kv = res.kvs[0];
      if (kv === undefined) return { through: 0, modRevision: '0' };
      const text = kv.value.toString('latin1');
      const n = Number(text);
      if (!/^\d{1,16}$/.test(text) || !Number.isSafeInteger(n)) {
        throw new LogError('corrupt', `etcd log: ${this.compactedKey.toString()} holds ${JSON.stringify(text.slice(0, 40))}, not a position`);
      }
      return { through: n, modRevision: kv.mod_revision };
    });
  }

  /** Reads the log key as of `revision` (keys only); undefined if it did not exist then. */
  async logKeyAt(revision: number): Promise<number | undefined> {
    return this.request(
      'range at revision',
      async (client, deadline) => {
        const res = await client.kv.range({ key: this.logKey, keys_only: true, revision }, { deadline });
        const kv = res.kvs[0];
        return kv === undefined ? undefined : positionOf(kv.mod_revision, 'log key');
      },
      (err) => errorText(err).includes('required revision has been compacted'),
    );
  }

  // --- compaction ---

  async compact(through: number): Promise<void> {
    if (!Number.isSafeInteger(through) || through < 0) {
      throw new TesseraError('TESSERA_INTERNAL', `etcd log: compact(${through}): not a position`);
    }
    if (this.closed) throw new LogError('closed', 'etcd log is closed');
    if (through === 0) return;
    // Record first (compare-and-swap on the record's mod_revision, so a lower value never replaces a
    // higher one), then compact etcd's history at `through`: revisions below it are dropped, the
    // batch at `through` itself stays readable. A retried txn that had landed is harmless: the
    // compare then fails and the re-read finds the value already there.
    for (;;) {
      const cur = await this.readCompacted();
      if (cur.through >= through) break;
      const ok = await this.request('compact record', async (client, deadline) => {
        const res = await client.kv.txn(
          {
            compare: [{ key: this.compactedKey, target: 'Mod', result: 'Equal', mod_revision: cur.modRevision }],
            success: [{ request_put: { key: this.compactedKey, value: Buffer.from(String(through)) } }],
            failure: [],
          },
          { deadline },
        );
        return res.succeeded;
      });
      if (ok) break;
    }
    await this.request(
      'compact',
      async (client, deadline) => {
        try {
          await client.kv.compact({ revision: through, physical: false }, { deadline });
        } catch (err) {
          if (errorText(err).includes('required revision has been compacted')) return; // already further
          if (errorText(err).includes('required revision is a future revision')) {
            throw new TesseraError('TESSERA_INTERNAL', `etcd log: compact(${through}) is beyond the last revision`, { cause: err });
          }
          throw err;
        }
      },
      (err) => err instanceof TesseraError,
    );
  }

  // --- subscribe ---

  subscribe(after: number, onBatch: (batch: LogBatch) => void | Promise<void>, onError: (err: LogError) => void): LogSubscription {
    if (!Number.isSafeInteger(after) || after < 0) {
      throw new TesseraError('TESSERA_INTERNAL', `etcd log: subscribe(${after}): not a position`);
    }
    if (typeof onBatch !== 'function' || typeof onError !== 'function') {
      throw new TesseraError('TESSERA_INTERNAL', 'etcd log: subscribe needs onBatch and onError callbacks');
    }
    const sub = new EtcdSubscription(this, after, onBatch, onError, this.member);
    this.subscriptions.add(sub);
    sub.start();
    return sub;
  }

  /** @internal */
  clientFor(member: number): Etcd3 {
    return this.clients[member % this.clients.length]!;
  }
  /** @internal */
  get memberCount(): number {
    return this.clients.length;
  }
  /** @internal */
  get key(): Buffer {
    return this.logKey;
  }
  /** @internal */
  get attemptDeadlineMs(): number {
    return this.attemptMs;
  }
  /** @internal */
  get isClosed(): boolean {
    return this.closed;
  }
  /** @internal */
  forget(sub: EtcdSubscription): void {
    this.subscriptions.delete(sub);
  }

  // --- close ---

  close(): Promise<void> {
    this.closing ??= this.doClose();
    return this.closing;
  }

  private async doClose(): Promise<void> {
    this.closed = true;
    this.wakeClosed();
    if (this.sweepTimer !== undefined) clearTimeout(this.sweepTimer);
    this.sweepTimer = undefined;
    // Queued appends were never sent.
    while (this.queueLength() > 0) {
      const a = this.shiftQueue();
      this.queuedBytes -= a.bytes;
      a.reject(new LogError('closed', 'etcd log closed before the append was sent'));
    }
    // Puts in flight finish their current attempt (bounded by its deadline): they resolve, or reject
    // 'ambiguous'/'closed' without re-sending.
    await Promise.allSettled([...this.sending]);
    await Promise.allSettled([...this.subscriptions].map((s) => s.close()));
    for (const c of this.clients) c.close();
  }
}

type WatchStream = Awaited<ReturnType<Etcd3['watchClient']['watch']>>;

/**
 * One subscriber: a watch of the log key through one member, a bounded buffer of decoded batches,
 * and a delivery loop that awaits each onBatch. The watch is (re)created from the revision after the
 * last batch taken into the buffer; when the buffer is full the watch is cancelled and recreated
 * once the consumer has drained half of it.
 */
class EtcdSubscription implements LogSubscription {
  private lastQueued: number;
  /** Where the next watch starts at least (moved past history etcd compacted that held nothing of ours). */
  private startFloor = 0;
  private readonly buffer: LogBatch[] = [];
  private bufferHead = 0;
  private bufferedBytes = 0;
  private member: number;
  private stream: WatchStream | undefined;
  private generation = 0;
  private createTimer: NodeJS.Timeout | undefined;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private reconnectDelay: number = limits.logEtcdRetryDelayMs;
  private paused = false;
  /** Set by a watch-side failure; reported once the buffer is delivered. */
  private failure: LogError | undefined;
  private closed = false;
  private ended = false;
  private wake: (() => void) | undefined;
  private loop: Promise<void> = Promise.resolve();
  private closing: Promise<void> | undefined;

  constructor(
    private readonly log: EtcdLog,
    after: number,
    private readonly onBatch: (batch: LogBatch) => void | Promise<void>,
    private readonly onError: (err: LogError) => void,
    member: number,
  ) {
    this.lastQueued = after;
    this.member = member;
  }

  start(): void {
    this.loop = this.run();
  }

  private async run(): Promise<void> {
    await Promise.resolve(); // subscribe() returns before any callback runs
    // The caller's own compaction record decides first (SPI: after < compactedThrough -> 'compacted').
    // An unreachable cluster is a transient condition for a subscriber: keep trying until closed.
    for (;;) {
      if (this.closed) return;
      if (this.log.isClosed) {
        this.fail(new LogError('closed', 'etcd log is closed'));
        return;
      }
      try {
        const compacted = await this.log.compactedThrough();
        if (compacted > this.lastQueued) {
          this.fail(new LogError('compacted', `etcd log: subscribe(${this.lastQueued}) is below compactedThrough ${compacted}; restore a snapshot`));
          return;
        }
        break;
      } catch (err) {
        if (this.closed) return;
        if (!(err instanceof LogError) || (err.code !== 'unavailable' && err.code !== 'closed')) {
          this.fail(err instanceof LogError ? err : new LogError('unavailable', errorText(err), { cause: err }));
          return;
        }
      }
    }
    this.openWatch();
    while (!this.closed && !this.ended) {
      if (this.bufferHead === this.buffer.length) {
        if (this.failure !== undefined) {
          this.fail(this.failure);
          return;
        }
        await new Promise<void>((r) => (this.wake = r));
        this.wake = undefined;
        continue;
      }
      const batch = this.buffer[this.bufferHead]!;
      this.buffer[this.bufferHead++] = undefined as unknown as LogBatch;
      if (this.bufferHead === this.buffer.length) {
        this.buffer.length = 0;
        this.bufferHead = 0;
      }
      this.bufferedBytes -= batchBytes(batch);
      if (
        this.paused &&
        this.buffer.length - this.bufferHead <= limits.logSubscriberBufferedBatchesMax / 2 &&
        this.bufferedBytes <= limits.logSubscriberBufferedBytesMax / 2
      ) {
        this.paused = false;
        this.openWatch();
      }
      try {
        await this.onBatch(batch);
      } catch (err) {
        this.fail(new LogError('closed', `etcd log: subscription ended: onBatch failed: ${errorText(err)}`, { cause: err }));
        return;
      }
    }
  }

  private notify(): void {
    this.wake?.();
  }

  private dropStream(): void {
    this.generation++;
    if (this.createTimer !== undefined) clearTimeout(this.createTimer);
    this.createTimer = undefined;
    if (this.reconnectTimer !== undefined) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
    const s = this.stream;
    this.stream = undefined;
    if (s !== undefined) {
      try {
        s.cancel();
      } catch {
        // already gone
      }
    }
  }

  private openWatch(): void {
    if (this.closed || this.ended || this.paused || this.failure !== undefined || this.log.isClosed) return;
    this.dropStream();
    const gen = this.generation;
    const member = this.member;
    const start = Math.max(this.lastQueued + 1, this.startFloor);
    // A member that neither confirms the watch nor fails it within the attempt deadline is left.
    this.createTimer = setTimeout(() => this.streamFailed(gen, new Error('watch not created in time')), this.log.attemptDeadlineMs);
    this.createTimer.unref();
    this.log
      .clientFor(member)
      .watchClient.watch()
      .then((stream) => {
        if (gen !== this.generation) {
          stream.cancel();
          return;
        }
        this.stream = stream;
        stream.on('data', (res: IWatchResponse) => this.onResponse(gen, res));
        stream.on('error', (err: Error) => this.streamFailed(gen, err));
        stream.on('end', () => this.streamFailed(gen, new Error('watch stream ended')));
        stream.write({ create_request: { key: this.log.key, start_revision: start, fragment: true } });
      })
      .catch((err: unknown) => this.streamFailed(gen, err));
  }

  private streamFailed(gen: number, _err: unknown): void {
    if (gen !== this.generation || this.closed || this.ended) return;
    this.dropStream();
    this.member = (this.member + 1) % this.log.memberCount;
    if (this.paused) return;
    const delay = this.reconnectDelay;
    this.reconnectDelay = Math.min(this.reconnectDelay * 2, limits.logEtcdRetryDelayMaxMs);
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      this.openWatch();
    }, delay);
    this.reconnectTimer.unref();
  }

  private onResponse(gen: number, res: IWatchResponse): void {
    if (gen !== this.generation || this.closed || this.ended) return;
    if (res.created && this.createTimer !== undefined) {
      clearTimeout(this.createTimer);
      this.createTimer = undefined;
    }
    if (res.canceled) {
      const compactRevision = Number(res.compact_revision);
      if (Number.isSafeInteger(compactRevision) && compactRevision > 0) {
        this.dropStream();
        void this.onCompacted(compactRevision);
      } else {
        this.streamFailed(gen, new Error(`watch canceled: ${res.cancel_reason}`));
      }
      return;
    }
    this.reconnectDelay = limits.logEtcdRetryDelayMs;
    let added = false;
    for (const ev of res.events) {
      if (!ev.kv.key.equals(this.log.key)) continue;
      let position: number;
      try {
        position = positionOf(ev.kv.mod_revision, 'watched');
      } catch (err) {
        this.failAfterDrain(err as LogError);
        return;
      }
      if (position <= this.lastQueued) continue; // seen before a reconnect
      if (ev.type !== 'Put') {
        this.failAfterDrain(new LogError('corrupt', `etcd log: the log key was deleted at revision ${position}`));
        return;
      }
      let entries: Uint8Array[];
      try {
        entries = decodeBatch(ev.kv.value, position);
      } catch (err) {
        this.failAfterDrain(err as LogError);
        return;
      }
      const batch: LogBatch = { position, entries };
      this.buffer.push(batch);
      this.bufferedBytes += batchBytes(batch);
      this.lastQueued = position;
      added = true;
      if (
        this.buffer.length - this.bufferHead >= limits.logSubscriberBufferedBatchesMax ||
        this.bufferedBytes >= limits.logSubscriberBufferedBytesMax
      ) {
        // Slow consumer: stop the watch; the delivery loop restarts it from lastQueued + 1.
        this.paused = true;
        this.dropStream();
        break;
      }
    }
    if (added) this.notify();
  }

  /**
   * etcd compacted history below `revision`, which our start revision needs. Either another user of
   * the cluster compacted (auto-compaction, another prefix) and no batch of ours was in the
   * discarded range, and the watch resumes at `revision`; or batches were lost: 'compacted'.
   */
  private async onCompacted(revision: number): Promise<void> {
    const gen = this.generation;
    try {
      const modAtRevision = await this.log.logKeyAt(revision);
      if (gen !== this.generation || this.closed || this.ended) return;
      if (modAtRevision === undefined || modAtRevision <= this.lastQueued) {
        this.startFloor = Math.max(this.startFloor, revision);
        this.openWatch();
        return;
      }
      this.failAfterDrain(
        new LogError('compacted', `etcd log: history through revision ${revision - 1} was compacted past position ${this.lastQueued}; restore a snapshot`),
      );
    } catch (err) {
      if (gen !== this.generation || this.closed || this.ended) return;
      if (errorText(err).includes('required revision has been compacted')) {
        this.openWatch(); // compacted further meanwhile: the new watch reports the new revision
        return;
      }
      if (err instanceof LogError && err.code === 'corrupt') {
        this.failAfterDrain(err);
        return;
      }
      this.streamFailed(gen, err); // unreachable for now: retried like a lost stream
    }
  }

  /** A failure seen by the watch: batches already buffered (valid, earlier) are delivered first. */
  private failAfterDrain(err: LogError): void {
    if (this.closed || this.ended || this.failure !== undefined) return;
    this.failure = err;
    this.dropStream();
    this.notify();
  }

  private fail(err: LogError): void {
    if (this.closed || this.ended) return;
    this.ended = true;
    this.dropStream();
    this.log.forget(this);
    this.notify();
    try {
      this.onError(err);
    } catch {
      // the consumer's handler failed; the subscription has ended either way
    }
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      this.closed = true;
      this.dropStream();
      this.log.forget(this);
      this.notify();
      await this.loop;
    })();
    return this.closing;
  }
}

function batchBytes(batch: LogBatch): number {
  let n = HEADER_BYTES;
  for (const e of batch.entries) n += ENTRY_HEADER_BYTES + e.length;
  return n;
}
