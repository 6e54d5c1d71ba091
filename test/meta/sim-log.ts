// A deterministic in-memory replicated log for the seeded simulation: one shared history, one
// ReplicatedLog view per node, faults chosen by a Prng (an append that fails before committing, one
// that commits but reports 'ambiguous', one the "backend" commits twice after a re-send). Delivery
// runs on setImmediate turns only, so one seed replays the same interleaving.
import {
  LogError,
  type LogBatch,
  type LogSubscription,
  type ReplicatedLog,
  type SnapshotInfo,
  type SnapshotStore,
} from '../../src/log/spi.js';
import type { Prng } from '../helpers/prng.js';

export interface SimFaults {
  /** Append rejected 'unavailable' without committing. */
  unavailable: number;
  /** Append committed, then rejected 'ambiguous'. */
  ambiguousCommitted: number;
  /** Append not committed, rejected 'ambiguous'. */
  ambiguousLost: number;
  /** Append committed twice (a backend re-send), resolved with the second position. */
  duplicate: number;
}

export const noFaults: SimFaults = { unavailable: 0, ambiguousCommitted: 0, ambiguousLost: 0, duplicate: 0 };

export class SimHistory {
  readonly batches: LogBatch[] = [];
  compactedThrough = 0;
  private position = 0;
  private readonly listeners = new Set<() => void>();
  constructor(
    readonly rng: Prng,
    public faults: SimFaults = noFaults,
  ) {}

  commit(entries: readonly Uint8Array[]): number {
    // Positions skip numbers now and then, as etcd revisions do.
    this.position += 1 + (this.rng.chance(0.2) ? this.rng.int(3) : 0);
    this.batches.push({ position: this.position, entries: entries.map((e) => Uint8Array.from(e)) });
    for (const l of this.listeners) l();
    return this.position;
  }

  /** First batch with position > pos (binary search; batches are in position order). */
  after(pos: number): LogBatch | undefined {
    const b = this.batches;
    let lo = 0;
    let hi = b.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (b[mid]!.position <= pos) lo = mid + 1;
      else hi = mid;
    }
    return b[lo];
  }

  get last(): number {
    return this.position;
  }

  onCommit(l: () => void): () => void {
    this.listeners.add(l);
    return () => void this.listeners.delete(l);
  }

  view(): ReplicatedLog {
    return new SimLogView(this);
  }
}

const turn = () => new Promise<void>((r) => setImmediate(r));

class SimLogView implements ReplicatedLog {
  readonly backend = 'sim';
  private closed = false;
  private readonly subs = new Set<{ close(): Promise<void> }>();
  constructor(private readonly h: SimHistory) {}

  async append(entries: readonly Uint8Array[]): Promise<number> {
    if (this.closed) throw new LogError('closed', 'closed');
    await turn();
    if (this.closed) throw new LogError('closed', 'closed');
    const f = this.h.faults;
    const r = this.h.rng.next();
    let acc = f.unavailable;
    if (r < acc) throw new LogError('unavailable', 'sim: unavailable');
    acc += f.ambiguousCommitted;
    if (r < acc) {
      this.h.commit(entries);
      throw new LogError('ambiguous', 'sim: committed, reply lost');
    }
    acc += f.ambiguousLost;
    if (r < acc) throw new LogError('ambiguous', 'sim: lost');
    acc += f.duplicate;
    if (r < acc) {
      this.h.commit(entries);
      await turn();
      return this.h.commit(entries);
    }
    return this.h.commit(entries);
  }

  subscribe(after: number, onBatch: (b: LogBatch) => void | Promise<void>, onError: (e: LogError) => void): LogSubscription {
    let stopped = false;
    let running: Promise<void> = Promise.resolve();
    let wake: (() => void) | undefined;
    const off = this.h.onCommit(() => wake?.());
    const loop = async () => {
      let pos = after;
      if (pos < this.h.compactedThrough) {
        await turn();
        onError(new LogError('compacted', `sim: compacted through ${this.h.compactedThrough}`));
        return;
      }
      for (;;) {
        if (stopped) return;
        const next = this.h.after(pos);
        if (!next) {
          await new Promise<void>((r) => (wake = r));
          wake = undefined;
          continue;
        }
        await turn(); // delivery delay
        if (stopped) return;
        await onBatch(next);
        pos = next.position;
      }
    };
    running = loop();
    const sub = {
      close: async () => {
        stopped = true;
        off();
        wake?.();
        await running;
        this.subs.delete(sub);
      },
    };
    this.subs.add(sub);
    return sub;
  }

  async readIndex(): Promise<number> {
    if (this.closed) throw new LogError('closed', 'closed');
    await turn();
    return this.h.last;
  }

  async compactedThrough(): Promise<number> {
    return this.h.compactedThrough;
  }

  async compact(through: number): Promise<void> {
    if (through <= this.h.compactedThrough) return;
    this.h.compactedThrough = through;
    const keep = this.h.batches.filter((b) => b.position > through);
    this.h.batches.splice(0, this.h.batches.length, ...keep);
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const s of [...this.subs]) await s.close();
  }
}

/** Snapshots kept in memory (the simulation's shared snapshot store). */
export class MemorySnapshotStore implements SnapshotStore {
  private readonly snaps: { position: number; bytes: Buffer }[] = [];
  async put(position: number, data: AsyncIterable<Uint8Array>): Promise<SnapshotInfo> {
    const parts: Buffer[] = [];
    for await (const c of data) parts.push(Buffer.from(c));
    const bytes = Buffer.concat(parts);
    this.snaps.push({ position, bytes });
    this.snaps.sort((a, b) => a.position - b.position);
    return info(position, bytes);
  }
  async latest(): Promise<SnapshotInfo | undefined> {
    const s = this.snaps[this.snaps.length - 1];
    return s && info(s.position, s.bytes);
  }
  async prune(keep: number): Promise<void> {
    while (this.snaps.length > keep) this.snaps.shift();
  }
}

function info(position: number, bytes: Buffer): SnapshotInfo {
  return {
    position,
    bytes: bytes.length,
    async *read() {
      for (let o = 0; o < bytes.length; o += 64 * 1024) yield bytes.subarray(o, o + 64 * 1024);
    },
  };
}
