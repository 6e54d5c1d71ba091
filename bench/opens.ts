// npm run bench:opens: open+close, create+close and lease-break round trips per second, Tessera side by
// side with Samba in one run (issue 4), with the scriptable SMB2 client of the tests
// (test/helpers/smb2-client.ts; SMB 3.0.2, unsigned, all connections in this one process).
//
// Targets, one after the other (never two at once): a private Samba smbd with leases and durable
// handles on, Tessera on a posix share with its metadata log (which holds the open table) under the
// work directory, the same with the log on tmpfs (what the log's fsyncs cost), and Tessera on a chunked
// share (`--share NAME` without a path, `--state-dir DIR`: objects, log and cache under DIR).
// Rows: open+close of an existing file on 1 and N connections (QD1 each, one file per connection),
// create+close (FILE_CREATE + delete-on-close) on 1 and N, and the lease-break cycle of
// bench/lib/opens-loops.ts. Then, per target, a fixed number of cycles under `strace -f -y -T -e
// trace=fdatasync,fsync,...` (fsyncs per cycle, by file), and one run of Tessera (posix) under
// `node --cpu-prof` (where its time goes). See bench/README.md, section "Opens and lease breaks".

import { spawn, execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { ensureBuilt, freePort, repoRoot, startSamba, startTessera, tesseraArgs, waitForPort, type RunningServer } from '../test/helpers/servers.js';
import { summarizeProfile, type ProfileSummary } from './lib/cpuprofile.js';
import { closedLoop, createClose, fixedCycles, leaseBreak, openClose, type LeaseCycle, type RowResult, type Target, type Workload } from './lib/opens-loops.js';
import { processTree } from './lib/proc.js';
import { writeSection } from './lib/results-section.js';
import { attachStrace } from './lib/strace.js';

const benchDir = dirname(fileURLToPath(import.meta.url));
const outDir = join(benchDir, 'out');

const targetKinds = ['samba', 'tessera', 'tessera-tmpfs', 'chunked'] as const;
type TargetKind = (typeof targetKinds)[number];
const targetLabel: Record<TargetKind, string> = {
  'samba': 'Samba',
  'tessera': 'Tessera posix',
  'tessera-tmpfs': 'Tessera posix, log on tmpfs',
  'chunked': 'Tessera chunked',
};

const usage = `usage: npx tsx bench/opens.ts [--seconds S] [--conns N] [--targets samba,tessera,tessera-tmpfs,chunked]
                              [--lease-cycle upgrade|reopen] [--strace-cycles N] [--no-strace] [--no-profile]
                              [--workdir DIR] [--keep] [--no-results-md]
  --seconds        timed seconds per row (default 3; each row has a 0.5 s warm-up before)
  --conns          connections of the parallel rows (default 8)
  --targets        default: all. tessera = posix share, metadata log under the work directory;
                   tessera-tmpfs = the same with the log on /dev/shm; chunked = chunked share, --state-dir
                   under the work directory (objects, log, cache)
  --lease-cycle    how A gets RWH back after the break: upgrade (default: a second open with the same lease
                   key while A's first handle stays open, then closed) or reopen (A closes its handle and
                   opens again with the same lease key)
  --strace-cycles  cycles per workload under strace (default 200; lease break: a third)
  --no-strace      skip the fsync count;  --no-profile  skip the CPU profile of Tessera
  --workdir        shares and server state (default: a fresh directory under ${tmpdir()}, removed unless --keep)
  --no-results-md  do not write the "opens" section of bench/RESULTS.md (JSON still goes to bench/out/)`;

function fail(msg: string): never {
  process.stderr.write(`${msg}\n${usage}\n`);
  process.exit(64);
}

const { values: flags } = parseArgs({
  options: {
    'seconds': { type: 'string' },
    'conns': { type: 'string' },
    'targets': { type: 'string' },
    'strace-cycles': { type: 'string' },
    'lease-cycle': { type: 'string' },
    'no-strace': { type: 'boolean', default: false },
    'no-profile': { type: 'boolean', default: false },
    'workdir': { type: 'string' },
    'keep': { type: 'boolean', default: false },
    'no-results-md': { type: 'boolean', default: false },
    'help': { type: 'boolean', default: false },
  },
  strict: true,
});
if (flags.help) {
  process.stdout.write(`${usage}\n`);
  process.exit(0);
}

function positive(v: string | undefined, dflt: number, what: string): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) fail(`--${what} must be a positive number`);
  return n;
}

const seconds = positive(flags.seconds, 3, 'seconds');
const conns = Math.round(positive(flags.conns, 8, 'conns'));
const straceCycles = Math.round(positive(flags['strace-cycles'], 200, 'strace-cycles'));
const leaseCycle = (flags['lease-cycle'] ?? 'upgrade') as LeaseCycle;
if (leaseCycle !== 'upgrade' && leaseCycle !== 'reopen') fail('--lease-cycle must be upgrade or reopen');
const timing = { warmupMs: 500, durationMs: seconds * 1000 };
const targets: TargetKind[] = (() => {
  if (flags.targets === undefined) return [...targetKinds];
  const want = flags.targets.split(',').map((s) => s.trim()).filter((s) => s !== '');
  for (const w of want) if (!(targetKinds as readonly string[]).includes(w)) fail(`unknown target: ${w}`);
  return targetKinds.filter((k) => want.includes(k));
})();

const log = (msg: string): void => {
  process.stderr.write(`[bench:opens ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
};

interface RowSpec {
  id: string;
  label: string;
  make: (t: Target) => Promise<Workload>;
  /** Under strace: cycles in all (spread over the connections; undefined: not counted). */
  strace?: { cycles: number };
}

const rows: RowSpec[] = [
  { id: 'open-1', label: 'open+close, 1 conn', make: (t) => openClose(t, 1), strace: { cycles: straceCycles } },
  { id: `open-${conns}`, label: `open+close, ${conns} conns`, make: (t) => openClose(t, conns), strace: { cycles: straceCycles } },
  { id: 'create-1', label: 'create+close (delete-on-close), 1 conn', make: (t) => createClose(t, 1), strace: { cycles: straceCycles } },
  { id: `create-${conns}`, label: `create+close (delete-on-close), ${conns} conns`, make: (t) => createClose(t, conns) },
  { id: 'lease', label: `lease break cycle (2 conns, ${leaseCycle})`, make: (t) => leaseBreak(t, leaseCycle), strace: { cycles: Math.max(1, Math.round(straceCycles / 3)) } },
];

type Outcome = RowResult | { error: string };
const isError = (o: Outcome | undefined): o is { error: string } => o !== undefined && 'error' in o;

interface FsyncCount {
  cycles: number;
  calls: number;
  usPerCall: number;
  /** Calls by "syscall file", the file relative to the work directory (or to the tmpfs state). */
  byFile: { what: string; calls: number; usPerCall: number }[];
  error?: string;
}

const user = 'tessbench';
const password = 'Bench-Pa55word';
const share = 'bench';

async function startTarget(kind: TargetKind, workdir: string, tmpfsState: string | undefined): Promise<RunningServer> {
  const port = await freePort();
  const shareDir = join(workdir, `share-${kind}`);
  if (kind !== 'chunked') {
    mkdirSync(shareDir, { recursive: true });
    chmodSync(shareDir, 0o777);
  }
  switch (kind) {
    case 'samba':
      // Leases and durable handles as on Windows: kernel oplocks, kernel share modes and POSIX locking
      // off (smbd could not grant RWH leases otherwise). They are startSamba's defaults; given here so
      // the benchmark says what it measures whatever the defaults become.
      return startSamba({
        port,
        shares: [{ name: share, path: shareDir }],
        user,
        password,
        workDir: join(workdir, 'samba-state'),
        globals: { 'kernel oplocks': 'no', 'kernel share modes': 'no', 'posix locking': 'no', 'durable handles': 'yes', 'smb2 leases': 'yes' },
      });
    case 'tessera':
    case 'tessera-tmpfs': {
      const state = kind === 'tessera' ? join(workdir, 'tessera-state') : tmpfsState!;
      return startTessera({ port, shares: [{ name: share, path: shareDir }], users: [{ name: user, password }], extraArgs: ['--log-level', 'warn', '--state-dir', state] });
    }
    case 'chunked':
      return startTessera({ port, shares: [], users: [{ name: user, password }], extraArgs: ['--share', share, '--state-dir', join(workdir, 'chunked-state'), '--log-level', 'warn'] });
  }
}

const targetOf = (s: { host: string; port: number; pid: number }): Target => ({ host: s.host, port: s.port, pid: s.pid, share, user, password });

async function measureRow(target: Target, row: RowSpec): Promise<Outcome> {
  let w: Workload | undefined;
  try {
    w = await row.make(target);
    return await closedLoop(target, w.workers, timing, w.cycle);
  } catch (e) {
    return { error: ((e as Error).message.split('\n')[0] ?? 'failed').slice(0, 300) };
  } finally {
    await w?.done();
  }
}

async function countFsyncs(target: Target, row: RowSpec, outFile: string, roots: [string, string][]): Promise<FsyncCount> {
  let cycles = row.strace!.cycles;
  let w: Workload | undefined;
  try {
    // Connections first, then strace on the whole tree: Samba's connection processes are in it.
    w = await row.make(target);
    const perWorker = Math.ceil(cycles / w.workers);
    cycles = perWorker * w.workers;
    const session = await attachStrace(processTree(target.pid), outFile);
    let counts;
    try {
      await fixedCycles(w.workers, perWorker, w.cycle);
    } finally {
      counts = await session.stop();
    }
    let calls = 0;
    let us = 0;
    const byFile: FsyncCount['byFile'] = [];
    for (const [what, c] of counts) {
      calls += c.calls;
      us += c.totalUs;
      let short = what;
      for (const [dir, name] of roots) short = short.replace(`${dir}/`, `${name}/`);
      byFile.push({ what: short, calls: c.calls, usPerCall: c.totalUs / c.calls });
    }
    byFile.sort((a, b) => b.calls - a.calls);
    return { cycles, calls, usPerCall: calls > 0 ? us / calls : 0, byFile };
  } catch (e) {
    return { cycles, calls: 0, usPerCall: 0, byFile: [], error: ((e as Error).message.split('\n')[0] ?? 'failed').slice(0, 300) };
  } finally {
    await w?.done();
  }
}

/**
 * Tessera (posix share, log under the work directory) under `node --cpu-prof`, started by hand since
 * NODE_OPTIONS may not carry --cpu-prof; SIGTERM makes it stop cleanly, which writes the profile.
 */
async function profileTessera(workdir: string): Promise<{ summary: ProfileSummary; result: RowResult } | { error: string }> {
  ensureBuilt();
  const port = await freePort();
  const profDir = join(workdir, 'cpuprof');
  const shareDir = join(workdir, 'share-profile');
  mkdirSync(shareDir, { recursive: true });
  const args = tesseraArgs({ port, shares: [{ name: share, path: shareDir }], users: [{ name: user, password }], extraArgs: ['--log-level', 'warn', '--state-dir', join(workdir, 'profile-state')] });
  const child = spawn(process.execPath, ['--cpu-prof', '--cpu-prof-dir', profDir, join(repoRoot, 'bin', 'tessera.js'), ...args], { cwd: repoRoot, stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr.on('data', (d: Buffer) => (err = (err + d.toString('utf8')).slice(-4000)));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const killOnExit = (): void => {
    if (child.exitCode === null) child.kill('SIGKILL');
  };
  process.once('exit', killOnExit);
  try {
    await waitForPort('127.0.0.1', port, 30_000, () => (child.exitCode !== null ? `exit ${child.exitCode}: ${err}` : null));
    const target = targetOf({ host: '127.0.0.1', port, pid: child.pid! });
    const w = await openClose(target, 1);
    let result: RowResult;
    try {
      result = await closedLoop(target, w.workers, timing, w.cycle);
    } finally {
      await w.done();
    }
    child.kill('SIGTERM');
    const stopped = await Promise.race([exited.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 20_000))]);
    if (!stopped) return { error: 'Tessera did not stop within 20 s of SIGTERM (no profile written)' };
    const file = readdirSync(profDir).find((f) => f.endsWith('.cpuprofile'));
    if (file === undefined) return { error: `no .cpuprofile in ${profDir}` };
    return { summary: summarizeProfile(join(profDir, file), result.windowUs), result };
  } catch (e) {
    return { error: ((e as Error).message.split('\n')[0] ?? 'failed').slice(0, 300) };
  } finally {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
    process.off('exit', killOnExit);
  }
}

// ---- Output --------------------------------------------------------------------------------------

const int = (n: number): string => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '-');
const fixed = (n: number, d: number): string => (Number.isFinite(n) ? n.toFixed(d) : '-');

function resultsTable(results: Map<string, Map<TargetKind, Outcome>>): string[] {
  const lines = [
    '| workload | target | cycles/s | vs Samba | p50 µs | p99 µs | B\'s CREATE p50 / p99 µs | server CPU µs/cycle | server CPU % | client CPU % |',
    '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const row of rows) {
    const byTarget = results.get(row.id);
    const samba = byTarget?.get('samba');
    for (const kind of targets) {
      const o = byTarget?.get(kind);
      if (o === undefined) continue;
      if (isError(o)) {
        lines.push(`| ${row.label} | ${targetLabel[kind]} | FAILED: ${o.error.replace(/\|/g, '/')} | | | | | | | |`);
        continue;
      }
      const ratio = samba !== undefined && !isError(samba) && kind !== 'samba' ? `${(o.perSec / samba.perSec).toFixed(2)}x` : '';
      const sub = o.breakingCreate ? `${int(o.breakingCreate.p50Us)} / ${int(o.breakingCreate.p99Us)}` : '';
      lines.push(
        `| ${row.label} | ${targetLabel[kind]} | ${int(o.perSec)} | ${ratio} | ${int(o.cycle.p50Us)} | ${int(o.cycle.p99Us)} | ${sub} | ${int(o.serverCpuUsPerCycle)} | ${int(o.serverCpuPct)} | ${int(o.clientCpuPct)} |`,
      );
    }
  }
  return lines;
}

function fsyncTable(counts: Map<string, Map<TargetKind, FsyncCount>>): string[] {
  const lines = [
    '| workload | target | cycles | calls | per cycle | µs per call | per cycle by call and file (WORK = work directory, TMPFS = tmpfs state) |',
    '|---|---|---:|---:|---:|---:|---|',
  ];
  for (const row of rows) {
    for (const kind of targets) {
      const c = counts.get(row.id)?.get(kind);
      if (c === undefined) continue;
      if (c.error !== undefined) {
        lines.push(`| ${row.label} | ${targetLabel[kind]} | FAILED: ${c.error.replace(/\|/g, '/')} | | | | |`);
        continue;
      }
      const files = c.byFile.map((f) => `${fixed(f.calls / c.cycles, 2)} ${f.what} (${int(f.usPerCall)} µs)`).join('; ');
      lines.push(`| ${row.label} | ${targetLabel[kind]} | ${c.cycles} | ${c.calls} | ${fixed(c.calls / c.cycles, 2)} | ${c.calls > 0 ? int(c.usPerCall) : '-'} | ${files.replace(/\|/g, '/')} |`);
    }
  }
  return lines;
}

function profileLines(p: Awaited<ReturnType<typeof profileTessera>> | null): string[] {
  if (p === null) return [];
  if ('error' in p) return ['### Where Tessera\'s time goes', '', `CPU profile FAILED: ${p.error}`, ''];
  const s = p.summary;
  return [
    "### Where Tessera's time goes (posix share, open+close, 1 conn, `node --cpu-prof`)",
    '',
    `${int(p.result.perSec)} cycles/s under the profiler (p50 ${int(p.result.cycle.p50Us)} µs), ${p.result.cycles} cycles in the ${fixed(p.result.seconds, 1)} s window. ` +
      `Samples of the main thread in that window${s.windowed ? '' : ' (not found: the whole run, start-up included)'}: ` +
      `${fixed((100 * s.busyMs) / s.wallMs, 0)}% not idle, i.e. running JavaScript or native code or blocked in a synchronous call ` +
      "(LMDB's synchronous commit of the state machine fdatasyncs on this thread); the rest idle (waiting for the network or another thread). " +
      `Per cycle: ${fixed((s.busyMs * 1000) / Math.max(1, p.result.cycles), 0)} µs not idle. Self time of the non-idle samples, by area and by function:`,
    '',
    '| area | ms | % of not idle |',
    '|---|---:|---:|',
    ...s.byArea.map((a) => `| ${a.name} | ${int(a.ms)} | ${fixed(a.pct, 1)} |`),
    '',
    '| function (self) | ms | % of not idle |',
    '|---|---:|---:|',
    ...s.byFunction.map((f) => `| \`${f.name.replace(/\|/g, '/')}\` | ${int(f.ms)} | ${fixed(f.pct, 1)} |`),
    '',
    "Tessera's own functions by inclusive time (the function anywhere on the stack):",
    '',
    '| function (inclusive) | ms | % of not idle |',
    '|---|---:|---:|',
    ...s.byOwnInclusive.map((f) => `| \`${f.name.replace(/\|/g, '/')}\` | ${int(f.ms)} | ${fixed(f.pct, 1)} |`),
    '',
  ];
}

function sh(cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return 'unknown';
  }
}

// ---- Main ----------------------------------------------------------------------------------------

async function main(): Promise<number> {
  const started = new Date();
  const load0 = loadavg();
  const ownWorkdir = flags.workdir === undefined;
  const workdir = ownWorkdir ? mkdtempSync(join(tmpdir(), 'tessera-bench-opens-')) : resolve(flags.workdir!);
  mkdirSync(workdir, { recursive: true });
  const tmpfsState = targets.includes('tessera-tmpfs') ? mkdtempSync('/dev/shm/tessera-bench-opens-') : undefined;
  const fsType = sh('findmnt', ['-n', '-o', 'FSTYPE', '-T', workdir]).split('\n')[0];
  if (targets.some((k) => k !== 'samba')) {
    // startTessera would run `npm run build` when dist/ is older than src/: do it before any timing.
    log('npm run build if dist/ is stale');
    ensureBuilt();
  }
  log(`workdir ${workdir} (${fsType}); targets ${targets.join(',')}; ${seconds} s per row; ${conns} conns in the parallel rows`);

  const results = new Map<string, Map<TargetKind, Outcome>>();
  const fsyncs = new Map<string, Map<TargetKind, FsyncCount>>();
  const put = <V>(m: Map<string, Map<TargetKind, V>>, id: string, k: TargetKind, v: V): void => {
    if (!m.has(id)) m.set(id, new Map());
    m.get(id)!.set(k, v);
  };
  let profile: Awaited<ReturnType<typeof profileTessera>> | null = null;
  try {
    for (const kind of targets) {
      log(`${kind}: starting`);
      let server: RunningServer;
      try {
        server = await startTarget(kind, workdir, tmpfsState);
      } catch (e) {
        const msg = ((e as Error).message.split('\n')[0] ?? 'start failed').slice(0, 300);
        log(`${kind}: did not start: ${msg}`);
        for (const row of rows) put(results, row.id, kind, { error: `server did not start: ${msg}` });
        continue;
      }
      try {
        const target = targetOf(server);
        for (const row of rows) {
          const o = await measureRow(target, row);
          put(results, row.id, kind, o);
          log(`${kind}: ${row.label}: ${isError(o) ? `FAILED ${o.error}` : `${int(o.perSec)}/s p50 ${int(o.cycle.p50Us)} µs p99 ${int(o.cycle.p99Us)} µs${o.breakingCreate ? ` (B's CREATE p50 ${int(o.breakingCreate.p50Us)} p99 ${int(o.breakingCreate.p99Us)})` : ''}, server ${int(o.serverCpuPct)}% CPU, client ${int(o.clientCpuPct)}%`}`);
        }
        if (!flags['no-strace']) {
          for (const row of rows.filter((r) => r.strace !== undefined)) {
            const roots: [string, string][] = [[workdir, 'WORK'], ...(tmpfsState !== undefined ? ([[tmpfsState, 'TMPFS']] as [string, string][]) : [])];
            const c = await countFsyncs(target, row, join(workdir, `strace-${kind}-${row.id}.txt`), roots);
            put(fsyncs, row.id, kind, c);
            log(`${kind}: ${row.label} under strace: ${c.error ?? `${c.calls} fsync-family calls in ${c.cycles} cycles`}`);
          }
        }
      } finally {
        await server.stop();
      }
    }
    if (!flags['no-profile'] && (targets.includes('tessera') || targets.includes('tessera-tmpfs'))) {
      log('tessera: open+close under node --cpu-prof');
      profile = await profileTessera(workdir);
      if ('error' in profile) log(`profile: ${profile.error}`);
    }
  } finally {
    if (ownWorkdir && !flags.keep) rmSync(workdir, { recursive: true, force: true });
    if (tmpfsState !== undefined) rmSync(tmpfsState, { recursive: true, force: true });
  }

  const rev = sh('git', ['-C', repoRoot, 'rev-parse', '--short', 'HEAD']);
  const dirty = sh('git', ['-C', repoRoot, 'status', '--porcelain', '--untracked-files=no']);
  const body = [
    '## Opens, closes and lease breaks (`npm run bench:opens`)',
    '',
    `Run ${started.toISOString()}, git ${rev}${dirty !== '' && dirty !== 'unknown' ? ' + uncommitted changes' : ''}, ${cpus().length} cores shared by the clients and the servers, ` +
      `${sh('smbd', ['--version'])}, Node ${process.version}, load average ${load0.map((l) => l.toFixed(2)).join(' ')} at start and ` +
      `${loadavg().map((l) => l.toFixed(2)).join(' ')} at end.`,
    '',
    `- Work directory (shares, Samba's state, Tessera's \`--state-dir\` with the metadata log and state) on ${fsType}; ` +
      '"log on tmpfs" has its `--state-dir` on /dev/shm. Samba: leases and durable handles on, no kernel oplocks, share modes or POSIX locking.',
    `- ${seconds} s per row after a 0.5 s warm-up. Clients: test/helpers/smb2-client.ts, all in one Node process (SMB 3.0.2, unsigned), ` +
      'one request in flight per connection.',
    '- open+close: CREATE of an existing file (FILE_OPEN, read/write, share read/write, no oplock) + CLOSE, one file per connection. ' +
      'create+close: CREATE (FILE_CREATE, delete-on-close) + CLOSE, which deletes the file.',
    "- lease break: B's CREATE breaks A's RWH lease to RH, A acknowledges, B's CREATE completes, B closes, then " +
      (leaseCycle === 'upgrade'
        ? 'A opens again with the same lease key asking RWH (an upgrade: its first handle stays open) and closes that second handle.'
        : 'A closes its handle and opens again with the same lease key asking RWH (a new lease).'),
    '- Server CPU: the process tree (/proc, see the README); client CPU: this process (100% = one core: the client would be the limit).',
    '',
    ...resultsTable(results),
    '',
    ...(fsyncs.size > 0
      ? [
          "### fsyncs per cycle (`strace -f -y -T -e trace=fdatasync,fsync,sync_file_range,msync,sync,syncfs` on the server's process tree)",
          '',
          'µs per call: wall-clock time in the call as strace saw it (tracing adds to it).',
          '',
          ...fsyncTable(fsyncs),
          '',
        ]
      : []),
    ...profileLines(profile),
  ].join('\n');

  process.stdout.write(`\n${body}\n`);
  mkdirSync(outDir, { recursive: true });
  const json = JSON.stringify({ date: started.toISOString(), seconds, conns, targets, results: Object.fromEntries([...results].map(([k, v]) => [k, Object.fromEntries(v)])), fsyncs: Object.fromEntries([...fsyncs].map(([k, v]) => [k, Object.fromEntries(v)])), profile }, null, 2);
  writeFileSync(join(outDir, 'opens-latest.json'), json);
  if (!flags['no-results-md']) writeSection(join(benchDir, 'RESULTS.md'), 'opens', body);
  const sambaFailed = [...results.values()].some((m) => isError(m.get('samba')));
  return sambaFailed ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
