// This node's side of the replicated open table (src/meta/families/opens.ts): the local opens that
// hold driver handles, break delivery to the right connection, waiting for breaks, break timeouts,
// the durable-open scavenger, and the clean-up after a restart. Every open, share mode, oplock,
// lease, byte-range lock and durable handle is a record in the metadata state machine; what lives
// here is only what cannot be replicated (sockets, driver handles, timers).
//
// Break delivery: a command's result lists the breaks it started; this node sends those addressed to
// it (MS-SMB2 3.3.4.6 oplock, 3.3.4.7 lease). (A cluster delivers breaks started by other nodes
// through the metadata watch: the cluster issue.)

import type { Logger } from 'pino';
import type { Clock } from '../base/clock.js';
import { limits } from '../base/limits.js';
import type { BreakEffects, BreakNotice, OpenTableClient, WaitItem } from '../meta/opens-client.js';
import type { Open } from './state.js';

/** Where the node sends what the table decides: the server implements it. */
export interface BreakSink {
  /** An oplock break of a local open (MS-SMB2 3.3.4.6). */
  oplockBreak(open: Open, to: 'II' | 'none'): void;
  /** A lease break for (clientGuid, leaseKey) with the lease's local opens (MS-SMB2 3.3.4.7). */
  leaseBreak(opens: Open[], n: { from: number; to: number; epoch: number; ackRequired: boolean }): void;
  /** The table closed an open on its own (app-instance takeover, purge, expiry): release it here. */
  closedByTable(open: Open): Promise<void>;
}

interface Waiter {
  items: WaitItem[];
  resolve: () => void;
}

const itemKey = (w: WaitItem): string => (w.kind === 'lease' ? `L${w.clientGuid}\u0000${w.leaseKey}` : `O${w.openId}`);

export class NodeOpenTable {
  readonly client: OpenTableClient;
  readonly node: string;
  private readonly clock: Clock;
  private readonly log: Logger;
  private sink: BreakSink | undefined;
  /** Local opens by table id: active ones and disconnected durable ones (which keep their handle). */
  private readonly local = new Map<number, Open>();
  private readonly waiters = new Set<Waiter>();
  /** Break-starting proposals in progress, by session (ordered()). */
  private readonly breakSteps = new Map<object, Set<Promise<unknown>>>();
  private readonly breakTimers = new Map<string, NodeJS.Timeout>();
  private scavengeTimer: NodeJS.Timeout | undefined;
  private readonly disconnectedUntil = new Map<number, number>();
  private readonly disconnectWaiters = new Map<number, (() => void)[]>();
  private stopWatch: (() => void) | undefined;
  private closed = false;

  constructor(opts: { client: OpenTableClient; node: string; clock: Clock; log: Logger }) {
    this.client = opts.client;
    this.node = opts.node;
    this.clock = opts.clock;
    this.log = opts.log;
  }

  /** This node's incarnation: an open records it, so a restarted node's old opens are told apart. */
  get inc(): number {
    return this.client.meta.membership.incarnation;
  }

  now(): number {
    return this.clock.nowMs();
  }

  /**
   * Starts the node's side: opens left by an earlier incarnation of this node have lost their driver
   * handles with the process, so they are closed (durable ones included: nothing here can serve their
   * reconnect). Then watches the table so waiting opens resume when breaks complete.
   */
  async start(sink: BreakSink): Promise<void> {
    this.sink = sink;
    const inc = this.inc;
    let swept = 0;
    if (inc > 1) {
      for (let round = 0; round < 1_000_000; round++) {
        const r = await this.client.nodeDown(this.node, inc - 1, this.now());
        if (!r.ok) throw new Error(`open table: node-down of earlier incarnations failed: ${r.message}`);
        swept += r.closed.length;
        for (const id of r.disconnected) {
          const c = await this.client.close(id, this.now());
          if (c.ok) swept++;
        }
        if (!r.more) break;
      }
    }
    if (swept > 0) this.log.info({ opens: swept }, 'open table: closed the opens of this node\'s earlier run');
    this.stopWatch = this.client.watchChanges(() => this.checkWaiters());
  }

  stop(): void {
    this.closed = true;
    this.stopWatch?.();
    for (const t of this.breakTimers.values()) clearTimeout(t);
    this.breakTimers.clear();
    if (this.scavengeTimer) clearTimeout(this.scavengeTimer);
    for (const w of this.waiters) w.resolve();
    this.waiters.clear();
  }

  // ---- the local registry ----

  register(open: Open): void {
    this.local.set(open.tableId!, open);
  }

  unregister(open: Open): void {
    if (this.local.get(open.tableId!) === open) this.local.delete(open.tableId!);
    this.disconnectedUntil.delete(open.tableId!);
    this.wakeDisconnectWaiters(open.tableId!);
  }

  /**
   * Resolves once a local open whose connection is going away has been disconnected (or closed), or
   * after `timeoutMs`: a DHnC/DH2C can overtake the teardown of the connection it replaces.
   */
  whenDisconnected(open: Open, timeoutMs: number): Promise<void> {
    if (open.disconnected || this.local.get(open.tableId!) !== open) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const id = open.tableId!;
      const list = this.disconnectWaiters.get(id) ?? [];
      const timer = setTimeout(done, timeoutMs);
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      list.push(done);
      this.disconnectWaiters.set(id, list);
    });
  }

  private wakeDisconnectWaiters(id: number): void {
    const list = this.disconnectWaiters.get(id);
    if (list === undefined) return;
    this.disconnectWaiters.delete(id);
    for (const f of list) f();
  }

  get(tableId: number): Open | undefined {
    return this.local.get(tableId);
  }

  /** Local opens of a lease (same ClientGuid and key), connected ones first. */
  opensOfLease(clientGuid: string, leaseKey: string): Open[] {
    const out: Open[] = [];
    for (const o of this.local.values()) if (o.lease !== undefined && o.clientGuid === clientGuid && o.lease.key === leaseKey) out.push(o);
    return out;
  }

  /** A durable open whose connection went away stays here (with its driver handle) until `expiresAt`. */
  keepDisconnected(open: Open, expiresAt: number): void {
    this.disconnectedUntil.set(open.tableId!, expiresAt);
    this.wakeDisconnectWaiters(open.tableId!);
    this.scheduleScavenger();
  }

  reattached(open: Open): void {
    this.disconnectedUntil.delete(open.tableId!);
  }

  // ---- effects of a command: breaks to send, opens the table closed ----

  /**
   * Sends this node's breaks, arms their timeouts, and releases opens the table closed. Resolves once
   * those are released, with whether one of them had delete-on-close (its file may be gone since).
   */
  async apply(e: Partial<BreakEffects>): Promise<{ deletedOnClose: boolean }> {
    const releases: Promise<void>[] = [];
    let deletedOnClose = false;
    for (const id of e.closed ?? []) {
      const o = this.local.get(id);
      if (o === undefined || this.sink === undefined) continue;
      this.unregister(o);
      if (o.deleteOnClose) deletedOnClose = true;
      releases.push(this.sink.closedByTable(o));
    }
    for (const b of e.breaks ?? []) this.deliver(b);
    await Promise.all(releases);
    return { deletedOnClose };
  }

  private deliver(b: BreakNotice): void {
    if (b.kind === 'oplock') {
      if (b.node !== this.node) return;
      const o = this.local.get(b.openId);
      if (b.ackRequired) this.armTimeout({ kind: 'oplock', openId: b.openId });
      if (o !== undefined && o.session !== undefined) this.sink?.oplockBreak(o, b.to);
      return;
    }
    if (!b.nodes.includes(this.node) && b.node !== this.node) return;
    if (b.ackRequired) this.armTimeout({ kind: 'lease', clientGuid: b.clientGuid, leaseKey: b.leaseKey });
    const opens = this.opensOfLease(b.clientGuid, b.leaseKey);
    if (opens.length > 0) this.sink?.leaseBreak(opens, { from: b.from, to: b.to, epoch: b.epoch, ackRequired: b.ackRequired });
  }

  /** MS-SMB2 3.3.2.1 / 3.3.2.5: an unacknowledged break completes on its own after the timeout. */
  private armTimeout(w: WaitItem): void {
    const k = itemKey(w);
    if (this.breakTimers.has(k) || this.closed) return;
    const ms = w.kind === 'lease' ? limits.metaLeaseBreakTimeoutMs : limits.metaOplockBreakTimeoutMs;
    const t = setTimeout(() => {
      this.breakTimers.delete(k);
      void this.timeoutBreak(w);
    }, ms + 50);
    t.unref();
    this.breakTimers.set(k, t);
  }

  private async timeoutBreak(w: WaitItem): Promise<void> {
    if (this.closed) return;
    try {
      if (w.kind === 'lease') {
        const r = await this.client.leaseBreakTimeout(w.clientGuid, w.leaseKey, this.now());
        if (r.ok) await this.apply({ closed: r.closed ?? [] });
        else if (r.code === 'invalid') this.armTimeout(w); // not due yet by the table's clock: try again
      } else {
        const r = await this.client.oplockBreakTimeout(w.openId, this.now());
        if (!r.ok && r.code === 'invalid') this.armTimeout(w);
      }
    } catch (err) {
      this.log.warn({ err }, 'open table: break timeout failed');
    }
  }

  /** Called when the client acknowledged a break: its timer is no longer needed. */
  acknowledged(w: WaitItem): void {
    const k = itemKey(w);
    const t = this.breakTimers.get(k);
    if (t) clearTimeout(t);
    this.breakTimers.delete(k);
  }

  // ---- ordering: a break goes out before the answers to later requests of its session ----

  /**
   * Runs `work` (a proposal that starts breaks, and their delivery) as one of `key`'s (a session's)
   * break-starting steps: creates of that session that arrive meanwhile are answered only after it
   * (see settled()), as Windows sends a break before it answers the requests behind the one that
   * caused it (smbtorture lease.rename_wait: the rename's break precedes the CREATE replies).
   */
  async ordered<T>(key: object, work: () => Promise<T>): Promise<T> {
    const p = work();
    let set = this.breakSteps.get(key);
    if (set === undefined) this.breakSteps.set(key, (set = new Set()));
    set.add(p);
    try {
      return await p;
    } finally {
      set.delete(p);
      if (set.size === 0 && this.breakSteps.get(key) === set) this.breakSteps.delete(key);
    }
  }

  /** Resolves once the break-starting steps `key` has in progress now are done; undefined if none. */
  settled(key: object): Promise<void> | undefined {
    const set = this.breakSteps.get(key);
    if (set === undefined || set.size === 0) return undefined;
    return Promise.allSettled([...set]).then(() => undefined);
  }

  // ---- waiting for breaks (MS-FSA 2.1.4.12: the operation waits for the acknowledgment) ----

  /** Resolves once none of `items` is still breaking (acknowledged, timed out, or gone), or on abort. */
  waitBreaks(items: WaitItem[], signal?: AbortSignal): Promise<void> {
    const pending = items.filter((w) => this.client.stillBreaking(w));
    if (pending.length === 0 || this.closed) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const waiter: Waiter = {
        items: pending,
        resolve: () => {
          this.waiters.delete(waiter);
          signal?.removeEventListener('abort', waiter.resolve);
          resolve();
        },
      };
      this.waiters.add(waiter);
      signal?.addEventListener('abort', waiter.resolve, { once: true });
    });
  }

  private checkWaiters(): void {
    for (const w of [...this.waiters]) {
      w.items = w.items.filter((i) => this.client.stillBreaking(i));
      if (w.items.length === 0) w.resolve();
    }
  }

  // ---- the durable open scavenger (MS-SMB2 3.3.2.2) ----

  private scheduleScavenger(): void {
    if (this.closed) return;
    if (this.scavengeTimer) clearTimeout(this.scavengeTimer);
    this.scavengeTimer = undefined;
    if (this.disconnectedUntil.size === 0) return;
    const next = Math.min(...this.disconnectedUntil.values());
    const t = setTimeout(() => void this.scavenge(), Math.max(0, next - this.now()) + 20);
    t.unref();
    this.scavengeTimer = t;
  }

  private async scavenge(): Promise<void> {
    this.scavengeTimer = undefined;
    if (this.closed) return;
    try {
      for (let round = 0; round < 10_000; round++) {
        const r = await this.client.expire(this.now());
        if (!r.ok) break;
        await this.apply({ closed: r.closed });
        if (!r.more) break;
      }
    } catch (err) {
      this.log.warn({ err }, 'open table: durable open scavenger failed');
    }
    this.scheduleScavenger();
  }
}
