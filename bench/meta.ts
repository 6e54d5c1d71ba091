// npm run bench:meta: commit rate and latency of the metadata service on the local log and on a
// three-member etcd cluster (started here), side by side with raw etcd single-key puts measured in
// the same run with the same client library and concurrency.
//
// Each "command" is an ns.create of a new file (a dirent, an inode and counters written by the state
// machine), proposed by N concurrent closed-loop proposers on one node; a command counts when the
// proposer has its result from its own node's state machine (committed + applied). The last line is
// a one-line summary ending in etcd_vs_raw_x = etcd-backend commands/s at 256 proposers over raw
// puts/s at 256.
//
// Options: --seconds N (per measurement, default 4), --levels 1,16,256, --backends local,etcd,
// --puts-in-flight N (etcd), --out FILE (markdown section; default bench/RESULTS.md), --no-results-md.
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Etcd3 } from 'etcd3';
import { EtcdLog } from '../src/log/etcd.js';
import { LocalLog } from '../src/log/local.js';
import type { ReplicatedLog } from '../src/log/spi.js';
import { metaHandlers } from '../src/meta/families/index.js';
import { MetaService } from '../src/meta/service.js';
import { StateMachine } from '../src/meta/state-machine.js';
import { LmdbStateStore } from '../src/meta/store.js';
import { startEtcdCluster } from '../test/helpers/etcd-cluster.js';
import { writeSection } from './lib/results-section.js';

interface Figures {
  what: string;
  proposers: number;
  ops: number;
  seconds: number;
  perSec: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
}

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : dflt;
}

const seconds = Number(arg('seconds', '4'));
const levels = arg('levels', '1,16,256').split(',').map(Number);
// Results go to bench/RESULTS.md (section "meta") unless --out FILE or --no-results-md.
const outFile = process.argv.includes('--no-results-md') ? '' : arg('out', join(dirname(fileURLToPath(import.meta.url)), 'RESULTS.md'));
const backends = arg('backends', 'local,etcd').split(',');

function pct(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/** N closed-loop workers calling op() for `secs` seconds (after a short warm-up). */
async function closedLoop(what: string, n: number, secs: number, op: (worker: number, i: number) => Promise<void>): Promise<Figures> {
  const lat: number[] = [];
  let errors = 0;
  let measuring = false;
  let stop = false;
  const warmupMs = Math.min(1000, secs * 250);
  const workers = Array.from({ length: n }, async (_, w) => {
    for (let i = 0; !stop; i++) {
      const t0 = performance.now();
      try {
        await op(w, i);
        if (measuring) lat.push(performance.now() - t0);
      } catch {
        if (measuring) errors++;
      }
    }
  });
  await new Promise((r) => setTimeout(r, warmupMs));
  measuring = true;
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, secs * 1000));
  measuring = false;
  const elapsed = (performance.now() - t0) / 1000;
  stop = true;
  await Promise.all(workers);
  const sorted = Float64Array.from(lat).sort();
  return { what, proposers: n, ops: lat.length, seconds: elapsed, perSec: lat.length / elapsed, p50Ms: pct(sorted, 50), p99Ms: pct(sorted, 99), errors };
}

async function serviceBench(what: string, log: ReplicatedLog, stateDir: string): Promise<Figures[]> {
  const store = LmdbStateStore.open(stateDir);
  const machine = StateMachine.open({ store, handlers: metaHandlers });
  const svc = await MetaService.start({ log, machine, nodeId: 'bench-1', clusterId: 'bench', nodeLeaseMs: 0 });
  const root = await svc.propose({ t: 'ns.mkroot', share: 'bench', now: Date.now() });
  if (!root.ok) throw new Error(`mkroot: ${root.message}`);
  const parent = (root.value as { ino: number }).ino;
  const out: Figures[] = [];
  let round = 0;
  for (const n of levels) {
    round++;
    const f = await closedLoop(what, n, seconds, async (w, i) => {
      const r = await svc.propose({ t: 'ns.create', parent, name: `r${round}-w${w}-${i}`, kind: 'file', attributes: 0x20, now: Date.now() });
      if (!r.ok) throw new Error(r.message);
    });
    out.push(f);
    console.log(line(f));
  }
  // The same at the highest concurrency with sys.noop (no state change beyond the dedup record):
  // the cost of the log and the service alone, without a command's own apply work.
  const top = Math.max(...levels);
  const noop = await closedLoop(`${what}, sys.noop`, top, seconds, async () => {
    const r = await svc.propose({ t: 'sys.noop' });
    if (!r.ok) throw new Error(r.message);
  });
  out.push(noop);
  console.log(line(noop));
  await svc.close();
  await log.close();
  await store.close();
  return out;
}

async function rawEtcdBench(endpoints: string[]): Promise<Figures[]> {
  // One client per member like EtcdLog, all puts to the preferred (first) member, which forwards to
  // the leader as EtcdLog's puts do.
  const client = new Etcd3({ hosts: endpoints[0]! });
  const value = Buffer.alloc(160, 0x61); // about the size of one encoded ns.create entry
  const out: Figures[] = [];
  try {
    for (const n of levels) {
      const f = await closedLoop('raw etcd put', n, seconds, async (w, i) => {
        await client.kv.put({ key: Buffer.from(`/bench/raw/${w}`), value: Buffer.concat([value, Buffer.from(String(i))]) });
      });
      out.push(f);
      console.log(line(f));
    }
  } finally {
    client.close();
  }
  return out;
}

function line(f: Figures): string {
  return `${f.what.padEnd(22)} proposers=${String(f.proposers).padStart(3)}  ${Math.round(f.perSec).toString().padStart(7)}/s  p50=${f.p50Ms.toFixed(2)}ms  p99=${f.p99Ms.toFixed(2)}ms  errors=${f.errors}`;
}

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'tessera-bench-meta-'));
  const all: Figures[] = [];
  let cluster: Awaited<ReturnType<typeof startEtcdCluster>> | undefined;
  try {
    console.log(`bench:meta: ${seconds}s per measurement, proposers ${levels.join('/')}`);
    if (backends.includes('local')) {
      all.push(...(await serviceBench('local log', await LocalLog.open({ dir: join(dir, 'local-log') }), join(dir, 'local-state'))));
    }
    if (!backends.includes('etcd')) return;
    cluster = await startEtcdCluster({ members: 3, name: 'bench-meta' });
    const putsInFlight = Number(arg('puts-in-flight', '0')) || undefined;
    const etcdLog = await EtcdLog.open({ endpoints: cluster.endpoints, prefix: '/tessera/bench', putsInFlight });
    all.push(...(await serviceBench('etcd log (3 members)', etcdLog, join(dir, 'etcd-state'))));
    if (!process.argv.includes('--no-raw')) all.push(...(await rawEtcdBench(cluster.endpoints)));
  } finally {
    await cluster?.stop();
    await rm(dir, { recursive: true, force: true });
    summary(all);
  }
}

function summary(all: Figures[]): void {
  const get = (what: string, n: number) => all.find((f) => f.what.startsWith(what) && !f.what.includes('noop') && f.proposers === n);
  const top = Math.max(...levels);
  const local = get('local', top);
  const etcd = get('etcd', top);
  const raw = get('raw', top);
  const ratio = etcd && raw && raw.perSec > 0 ? etcd.perSec / raw.perSec : NaN;
  const line = `bench:meta summary: local_${top}=${Math.round(local?.perSec ?? NaN)}/s etcd_${top}=${Math.round(etcd?.perSec ?? NaN)}/s raw_put_${top}=${Math.round(raw?.perSec ?? NaN)}/s etcd_p99=${etcd?.p99Ms.toFixed(1)}ms etcd_vs_raw_x=${ratio.toFixed(2)}`;
  if (outFile && all.length > 0) writeResults(all, line);
  console.log(line);
}

function writeResults(all: Figures[], summaryLine: string): void {
  const rows = all.map(
    (f) => `| ${f.what} | ${f.proposers} | ${Math.round(f.perSec).toLocaleString('en-US')} | ${f.p50Ms.toFixed(2)} | ${f.p99Ms.toFixed(2)} | ${f.errors} |`,
  );
  let rev = 'unknown';
  try {
    rev = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
  } catch {
    /* not a git checkout */
  }
  const body = [
    '## Metadata log (`npm run bench:meta`)',
    '',
    `Run ${new Date().toISOString()}, git ${rev}, ${cpus().length} cores, ${seconds} s per measurement. One node proposes`,
    '`ns.create` commands (a dirent, an inode, counters) from N closed-loop proposers (rows "sys.noop": a command',
    'that changes nothing but the dedup record, i.e. the log and service alone); a command counts once the',
    "proposer has its result from its own node's state machine (committed and applied). etcd: three members",
    'on loopback started by the benchmark (data in /dev/shm), same machine. Raw etcd put: the same client',
    'library, one put of a single key per operation, same concurrency, same run.',
    '',
    '| backend | proposers | commands/s | p50 ms | p99 ms | errors |',
    '|---|---|---|---|---|---|',
    ...rows,
    '',
    `\`${summaryLine}\``,
    '',
  ].join('\n');
  writeSection(outFile, 'meta', body);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
