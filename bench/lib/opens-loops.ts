// The measured loops of `npm run bench:opens` (bench/opens.ts), written with the scriptable SMB2 client
// of the tests (test/helpers/smb2-client.ts: SMB 3.0.2, unsigned): closed loops, one request in
// flight per connection, a short untimed warm-up, then a timed window over which the server's and
// this process's CPU are sampled.
//  - open+close: CREATE of an existing file (FILE_OPEN, read+write access, share read+write, no
//    oplock) and CLOSE of the handle;
//  - create+close: CREATE of a new file (FILE_CREATE, delete-on-close) and CLOSE, which deletes it;
//  - lease break: client A holds an RWH lease on a file; client B's CREATE breaks it (MS-SMB2 3.3.4.7:
//    the server sends the break to A and holds B's CREATE until A acknowledges, 3.3.5.22.2), B closes,
//    and A gets RWH back: 'upgrade' (default) opens the file again with the same lease key asking for
//    RWH, which upgrades the lease while A's first handle stays open (MS-SMB2 3.3.5.9.8), then closes
//    that second handle; 'reopen' closes A's handle (the lease ends with its last open) and opens the
//    file again with the same key asking for RWH (a new lease).

import { randomBytes } from 'node:crypto';
import {
  Access,
  CreateOption,
  Disposition,
  LEASE_BREAK_ACK_REQUIRED,
  Lease,
  Share,
  Smb2Client,
  type CreateRequest,
} from '../../test/helpers/smb2-client.js';
import { treeCpuSeconds } from './proc.js';

export interface Target {
  host: string;
  port: number;
  share: string;
  user: string;
  password: string;
  /** Root of the server's process tree (CPU accounting). */
  pid: number;
}

export interface Latency {
  p50Us: number;
  p99Us: number;
}

export interface RowResult {
  /** Cycles completed in the timed window per second, over all connections. */
  perSec: number;
  cycles: number;
  seconds: number;
  /** Latency of a whole cycle. */
  cycle: Latency;
  /** Lease break: latency of B's CREATE (break sent, acknowledged, CREATE completed). */
  breakingCreate?: Latency;
  /** Server CPU (process tree) per cycle, µs. */
  serverCpuUsPerCycle: number;
  /** Server CPU over the window, % of one core. */
  serverCpuPct: number;
  /** This (client) process's CPU over the window, % of one core. */
  clientCpuPct: number;
  /** The timed window on CLOCK_MONOTONIC (process.hrtime), µs: V8 CPU profiles use the same clock. */
  windowUs: [number, number];
}

export interface LoopTiming {
  warmupMs: number;
  durationMs: number;
}

const RW = Access.READ_DATA | Access.WRITE_DATA;
const shareRW = Share.READ | Share.WRITE;

/** Quantile of ascending values (nearest rank). */
export function quantile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

function latency(values: number[]): Latency {
  const s = Float64Array.from(values).sort();
  return { p50Us: quantile(s, 0.5), p99Us: quantile(s, 0.99) };
}

const nowUs = (): number => performance.now() * 1000;

export async function connect(t: Target): Promise<Smb2Client> {
  return Smb2Client.open({ host: t.host, port: t.port, user: t.user, password: t.password, share: t.share });
}

export async function closeAll(clients: Smb2Client[]): Promise<void> {
  await Promise.all(clients.map((c) => c.close().catch(() => {})));
}

/** Creates `name` (empty) if it is not there: FILE_OPEN_IF then CLOSE. */
export async function ensureFile(c: Smb2Client, name: string): Promise<void> {
  const f = await c.create({ name, desiredAccess: RW, shareAccess: shareRW, disposition: Disposition.OPEN_IF });
  await c.closeFile(f.FileId);
}

/** One cycle of a worker; `sub` records a second latency (the breaking CREATE) when given. */
type Cycle = (worker: number, i: number, sub: (us: number) => void) => Promise<void>;

/**
 * Runs `workers` closed loops of `cycle`, each with one request in flight, for warm-up + duration;
 * counts the cycles that end inside the timed window. The first error stops every loop and is thrown.
 */
export async function closedLoop(target: Target, workers: number, timing: LoopTiming, cycle: Cycle): Promise<RowResult> {
  const lat: number[] = [];
  const subLat: number[] = [];
  let measuring = false;
  let stop = false;
  let failure: Error | null = null;
  const loops = Array.from({ length: workers }, async (_, w) => {
    for (let i = 0; !stop; i++) {
      const t0 = nowUs();
      try {
        await cycle(w, i, (us) => {
          if (measuring) subLat.push(us);
        });
      } catch (e) {
        failure ??= e as Error;
        stop = true;
        return;
      }
      if (measuring) lat.push(nowUs() - t0);
    }
  });
  const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
  await Promise.race([sleep(timing.warmupMs), Promise.all(loops)]);
  const cpu0 = treeCpuSeconds(target.pid);
  const own0 = process.cpuUsage();
  const t0 = performance.now();
  const mono0 = process.hrtime.bigint();
  measuring = true;
  await Promise.race([sleep(timing.durationMs), Promise.all(loops)]);
  measuring = false;
  const mono1 = process.hrtime.bigint();
  const seconds = (performance.now() - t0) / 1000;
  const own = process.cpuUsage(own0);
  const cpu = treeCpuSeconds(target.pid) - cpu0;
  stop = true;
  await Promise.all(loops);
  if (failure) throw failure;
  const cycles = lat.length;
  return {
    perSec: cycles / seconds,
    cycles,
    seconds,
    cycle: latency(lat),
    ...(subLat.length > 0 ? { breakingCreate: latency(subLat) } : {}),
    serverCpuUsPerCycle: cycles > 0 ? (cpu * 1e6) / cycles : NaN,
    serverCpuPct: (100 * cpu) / seconds,
    clientCpuPct: (100 * (own.user + own.system)) / 1e6 / seconds,
    windowUs: [Number(mono0 / 1000n), Number(mono1 / 1000n)],
  };
}

/** A fixed number of cycles (for the strace run), no timing. */
export async function fixedCycles(workers: number, cyclesPerWorker: number, cycle: Cycle): Promise<void> {
  await Promise.all(
    Array.from({ length: workers }, async (_, w) => {
      for (let i = 0; i < cyclesPerWorker; i++) await cycle(w, i, () => {});
    }),
  );
}

// ---- The workloads -------------------------------------------------------------------------------

/** A workload: connects its clients and prepares its files, then hands out the cycle. */
export interface Workload {
  clients: Smb2Client[];
  workers: number;
  cycle: Cycle;
  /** Closes handles the workload holds and its connections. */
  done(): Promise<void>;
}

/** File names of the open+close workload: one per connection (no contention on one file's record). */
export const openFile = (w: number): string => `opens-${w}.bin`;

/** open+close of an existing file, `conns` connections (one file each). */
export async function openClose(t: Target, conns: number): Promise<Workload> {
  const clients = await Promise.all(Array.from({ length: conns }, () => connect(t)));
  for (let w = 0; w < conns; w++) await ensureFile(clients[w]!, openFile(w));
  const req = (w: number): CreateRequest => ({ name: openFile(w), desiredAccess: RW, shareAccess: shareRW, disposition: Disposition.OPEN });
  return {
    clients,
    workers: conns,
    cycle: async (w) => {
      const c = clients[w]!;
      const f = await c.create(req(w));
      await c.closeFile(f.FileId);
    },
    done: () => closeAll(clients),
  };
}

/** create+close of new files with delete-on-close: every CLOSE deletes the file it created. */
export async function createClose(t: Target, conns: number): Promise<Workload> {
  const clients = await Promise.all(Array.from({ length: conns }, () => connect(t)));
  const run = randomBytes(4).toString('hex');
  return {
    clients,
    workers: conns,
    cycle: async (w, i) => {
      const c = clients[w]!;
      const f = await c.create({
        name: `new-${run}-${w}-${i}.bin`,
        desiredAccess: RW | Access.DELETE,
        shareAccess: shareRW | Share.DELETE,
        disposition: Disposition.CREATE,
        createOptions: CreateOption.NON_DIRECTORY | CreateOption.DELETE_ON_CLOSE,
      });
      await c.closeFile(f.FileId);
    },
    done: () => closeAll(clients),
  };
}

export const leaseFile = 'lease.bin';

export type LeaseCycle = 'upgrade' | 'reopen';

/** The lease-break cycle between two connections (see the header comment). */
export async function leaseBreak(t: Target, how: LeaseCycle): Promise<Workload> {
  const [a, b] = await Promise.all([connect(t), connect(t)]);
  await ensureFile(a, leaseFile);
  const key = randomBytes(16);
  const withLease: CreateRequest = { name: leaseFile, desiredAccess: RW, shareAccess: shareRW, disposition: Disposition.OPEN, lease: { key, state: Lease.RWH } };
  const state = (r: { lease: { LeaseState: number } | null }): string => (r.lease ? `state 0x${r.lease.LeaseState.toString(16)}` : 'no lease');
  let held = await a.create(withLease);
  if (held.lease?.LeaseState !== Lease.RWH) {
    await closeAll([a, b]);
    throw new Error(`A asked for an RWH lease and got ${state(held)}`);
  }
  return {
    clients: [a, b],
    workers: 1,
    cycle: async (_w, _i, sub) => {
      const t0 = nowUs();
      const opening = b.create({ name: leaseFile, desiredAccess: RW, shareAccess: shareRW, disposition: Disposition.OPEN });
      // B's CREATE cannot complete before A acknowledges: a failure of it would otherwise go unseen
      // while A waits for a break that never comes.
      const failed = opening.then(
        () => new Promise<never>(() => {}),
        (e: Error) => Promise.reject(e),
      );
      const brk = await Promise.race([a.breaks.next(10_000), failed]);
      if (brk.kind !== 'lease' || !brk.LeaseKey.equals(key) || (brk.NewLeaseState & Lease.W) !== 0) {
        throw new Error(`unexpected break notification ${JSON.stringify({ ...brk, LeaseKey: undefined, FileId: undefined })}`);
      }
      if (brk.Flags & LEASE_BREAK_ACK_REQUIRED) await a.ackLeaseBreak(key, brk.NewLeaseState);
      const fb = await opening;
      sub(nowUs() - t0);
      await b.closeFile(fb.FileId);
      if (how === 'upgrade') {
        // MS-SMB2 3.3.5.9.8: a CREATE with the key of a held lease asking for more state upgrades it
        // when nothing conflicts (B's handle is closed; A's own handles are of the same lease).
        const again = await a.create(withLease);
        if (again.lease?.LeaseState !== Lease.RWH) throw new Error(`A's re-open with its lease key asked RWH and got ${state(again)} (no upgrade)`);
        await a.closeFile(again.FileId);
      } else {
        await a.closeFile(held.FileId);
        held = await a.create(withLease);
        if (held.lease?.LeaseState !== Lease.RWH) throw new Error(`A's new open asked RWH and got ${state(held)}`);
      }
    },
    done: async () => {
      await a.closeFile(held.FileId).catch(() => {});
      await closeAll([a, b]);
    },
  };
}
