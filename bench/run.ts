// Side-by-side benchmarks of Tessera and Samba in one run: `npx tsx bench/run.ts [flags]`
// (see bench/README.md). For every workload, Samba then Tessera is started, measured and stopped,
// so the two never compete for the machine and any drift in machine load hits both equally.

import { execFileSync } from 'node:child_process';
import { chmodSync, closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, statfsSync, writeFileSync, writeSync } from 'node:fs';
import { availableParallelism, loadavg, release, tmpdir, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomFillSync } from 'node:crypto';
import { parseArgs } from 'node:util';
import { freePort, serverAlive, startSamba, startTessera, type RunningServer } from '../test/helpers/servers.js';
import { failed, serverKinds, workloadIds, type ServerKind, type Table, type WorkloadId } from './lib/model.js';
import { renderResults, renderTable, type ReportHeader } from './lib/report.js';
import { buildTools, type BuiltTools } from './lib/tools.js';
import { workloads, type BenchEnv, type BenchParams } from './lib/workloads.js';
import { otherSections } from './lib/results-section.js';

const benchDir = dirname(fileURLToPath(import.meta.url));
const repoRoot = resolve(benchDir, '..');
const outDir = join(benchDir, 'out');

const usage = `usage: npx tsx bench/run.ts [--only seq,rand,meta,echo] [--quick] [--size-gib N] [--duration S]
                             [--files N] [--servers samba,tessera] [--workdir DIR] [--keep] [--no-results-md]
  --only        workloads to run (default: all)
  --quick       smoke run: 0.125 GiB, 3 s per run, 1000 files (explicit flags still win)
  --size-gib    size of the sequential transfer and of the random-IO file (default 1)
  --duration    seconds per random-IO and ECHO run (default 10)
  --files       files for the metadata workload (default 10000)
  --repeat      runs of each sequential put/get, median shown (default 3, --quick 1)
  --servers     which servers to measure (default: samba,tessera)
  --workdir     where shares and data go (default: a fresh directory on tmpfs /dev/shm when it has room,
                else under ${tmpdir()}); a default workdir is removed unless --keep
  --no-results-md  do not overwrite bench/RESULTS.md (JSON still goes to bench/out/)`;

function fail(msg: string): never {
  process.stderr.write(`${msg}\n${usage}\n`);
  process.exit(64);
}

function parseList<T extends string>(v: string | undefined, all: readonly T[], what: string): T[] {
  if (v === undefined) return [...all];
  const items = v.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
  for (const i of items) if (!(all as readonly string[]).includes(i)) fail(`unknown ${what}: ${i}`);
  return all.filter((a) => items.includes(a));
}

function positive(v: string | undefined, dflt: number, what: string): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) fail(`--${what} must be a positive number`);
  return n;
}

const { values: flags } = parseArgs({
  options: {
    only: { type: 'string' },
    quick: { type: 'boolean', default: false },
    'size-gib': { type: 'string' },
    duration: { type: 'string' },
    files: { type: 'string' },
    repeat: { type: 'string' },
    servers: { type: 'string' },
    workdir: { type: 'string' },
    keep: { type: 'boolean', default: false },
    'no-results-md': { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
  strict: true,
});
if (flags.help) {
  process.stdout.write(`${usage}\n`);
  process.exit(0);
}

const quick = flags.quick ?? false;
const selected = parseList(flags.only, workloadIds, 'workload');
const servers = parseList(flags.servers, serverKinds, 'server');
const sizeGiB = positive(flags['size-gib'], quick ? 0.125 : 1, 'size-gib');
const sizeBytes = Math.round((sizeGiB * 1024 ** 3) / 65536) * 65536;
if (sizeBytes < 65536) fail('--size-gib is too small');
const params: BenchParams = {
  seqBytes: sizeBytes,
  seqRepeats: Math.round(positive(flags.repeat, quick ? 1 : 3, 'repeat')),
  randFileBytes: sizeBytes,
  durationS: positive(flags.duration, quick ? 3 : 10, 'duration'),
  metaFiles: Math.round(positive(flags.files, quick ? 1000 : 10000, 'files')),
  metaPhaseMaxS: 120,
};

const log = (msg: string): void => {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
};

function sh(cmd: string, args: string[], cwd?: string): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', cwd, stdio: ['ignore', 'pipe', 'pipe'], timeout: 20_000 }).trim();
  } catch {
    return 'unknown';
  }
}

function machineFacts(workdir: string): Record<string, string> {
  let cpuModel = 'unknown';
  try {
    cpuModel = /^model name\s*:\s*(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? 'unknown';
  } catch {
    // not Linux
  }
  return {
    'CPU': cpuModel,
    'nproc': String(availableParallelism()),
    'RAM': `${(totalmem() / 1024 ** 3).toFixed(1)} GiB`,
    'kernel': release(),
    'share file system': `${sh('findmnt', ['-n', '-o', 'FSTYPE', '-T', workdir]).split('\n')[0]} (${workdir})`,
    'load average (1/5/15 min) at start': loadavg().map((l) => l.toFixed(2)).join(' '),
  };
}

/**
 * tmpfs when it has room for the data (3 files of the chosen size plus slack), so that the
 * figures measure the servers and not the allocation behaviour of a virtual disk; else tmpdir().
 */
function defaultWorkParent(): string {
  try {
    const st = statfsSync('/dev/shm');
    const need = 3 * sizeBytes + 2 * 1024 ** 3;
    if (st.bavail * st.bsize >= need) return '/dev/shm';
  } catch {
    // no /dev/shm
  }
  return tmpdir();
}

function versions(): Record<string, string> {
  const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { version: string };
  const commit = sh('git', ['rev-parse', '--short', 'HEAD'], repoRoot);
  const dirty = sh('git', ['status', '--porcelain', '--untracked-files=no'], repoRoot);
  return {
    'Tessera': `${pkg.version}, git ${commit}${dirty !== '' && dirty !== 'unknown' ? ' + uncommitted changes' : ''}`,
    'Node': process.version,
    'Samba smbd': sh('smbd', ['--version']),
    'smbclient': sh('smbclient', ['--version']),
    'libsmbclient': `${sh('pkg-config', ['--modversion', 'smbclient'])} (pkg-config)`,
    'gcc': sh('gcc', ['--version']).split('\n')[0] ?? 'unknown',
  };
}

/** A file of `bytes` pseudo-random bytes (an 8 MiB random block repeated), world-writable. */
function createDataFile(path: string, bytes: number): void {
  const block = randomFillSync(Buffer.allocUnsafe(8 * 1024 * 1024));
  const fd = openSync(path, 'w', 0o666);
  try {
    for (let done = 0; done < bytes; ) {
      const n = Math.min(block.length, bytes - done);
      // A different first word per block keeps blocks distinct.
      block.writeUInt32LE(done / block.length, 0);
      done += writeSync(fd, block, 0, n);
    }
  } finally {
    closeSync(fd);
  }
  // smbd acts as the mapped Unix user; Tessera may run as anyone.
  chmodSync(path, 0o666);
}

async function main(): Promise<number> {
  const started = new Date();
  mkdirSync(outDir, { recursive: true });
  const workdir = flags.workdir !== undefined ? resolve(flags.workdir) : mkdtempSync(join(defaultWorkParent(), 'tessera-bench-'));
  mkdirSync(workdir, { recursive: true });
  const shareDir: Record<ServerKind, string> = { samba: join(workdir, 'share-samba'), tessera: join(workdir, 'share-tessera') };
  for (const d of Object.values(shareDir)) {
    mkdirSync(d, { recursive: true });
    chmodSync(d, 0o777);
  }
  const user = 'tessbench';
  const password = 'Bench-Pa55word';
  const share = 'bench';
  const clientConf = join(workdir, 'client.conf');
  writeFileSync(clientConf, '[global]\n\tclient min protocol = SMB2_02\n\tclient max protocol = SMB3_11\n\tlog level = 0\n');
  const authFile = join(workdir, 'auth.txt');
  writeFileSync(authFile, `username = ${user}\npassword = ${password}\ndomain = WORKGROUP\n`, { mode: 0o600 });

  const machine = machineFacts(workdir);
  const vers = versions();
  log(`workdir ${workdir}; workloads ${selected.join(',')}; servers ${servers.join(',')}; size ${sizeGiB} GiB`);

  let tools: BuiltTools | null = null;
  let toolsError: string | null = null;
  if (selected.some((w) => w !== 'seq')) {
    try {
      tools = buildTools(join(benchDir, 'tools'), outDir);
    } catch (e) {
      toolsError = (e as Error).message;
      log(`C tools: ${toolsError}`);
    }
  }

  const seqSource = join(workdir, 'seq-source.bin');
  const randFile = 'rand.bin';
  log('creating data files');
  if (selected.includes('seq')) createDataFile(seqSource, params.seqBytes);
  if (selected.includes('rand')) for (const k of servers) createDataFile(join(shareDir[k], randFile), params.randFileBytes);

  const tables: Table[] = [];
  let tesseraStartError: string | null = null;
  let tesseraRan = false;
  for (const wid of selected) {
    const w = workloads[wid];
    const table = w.table(params);
    tables.push(table);
    for (const kind of servers) {
      const fillMissing = (msg: string): void => {
        for (const row of table.rows) if (row.results[kind] === undefined) row.results[kind] = failed(msg);
      };
      if (kind === 'tessera' && tesseraStartError !== null) {
        fillMissing(`not runnable: ${tesseraStartError}`);
        continue;
      }
      log(`${wid}: starting ${kind}`);
      let server: RunningServer;
      try {
        server = await startServer(kind, wid, { workdir, share, shareDir: shareDir[kind], user, password });
      } catch (e) {
        const first = ((e as Error).message.split('\n')[0] ?? 'start failed').slice(0, 300);
        log(`${wid}: ${kind} did not start: ${first}`);
        saveLog(`${kind}-${wid}-start.log`, (e as Error).message);
        if (kind === 'tessera') tesseraStartError = first;
        fillMissing(`server did not start: ${first}`);
        continue;
      }
      if (kind === 'tessera') tesseraRan = true;
      const env: BenchEnv = {
        server, share, user, password, clientConf, authFile, seqSource, randFile, tools, toolsError, params, log,
      };
      try {
        await w.run(env, (rowId, m) => {
          const row = table.rows.find((r) => r.id === rowId);
          if (row) row.results[kind] = m;
        });
      } catch (e) {
        fillMissing((e as Error).message);
      }
      const died = !serverAlive(server);
      if (died) fillMissing(`${kind} exited during the workload`);
      const anyError = table.rows.some((r) => r.results[kind]?.error !== undefined);
      if (anyError || died) saveLog(`${kind}-${wid}.log`, server.logs());
      await server.stop();
    }
    process.stdout.write(`\n${renderTable(table)}\n`);
  }

  if (flags.workdir === undefined && !flags.keep) rmSync(workdir, { recursive: true, force: true });

  let tesseraStatus: string;
  if (!servers.includes('tessera')) tesseraStatus = 'not measured in this run (--servers)';
  else if (!tesseraRan) tesseraStatus = `not yet runnable (${tesseraStartError ?? 'did not start'})`;
  else {
    const bad = tables.flatMap((t) => t.rows).filter((r) => r.results.tessera?.value === null).length;
    tesseraStatus = bad === 0 ? 'ran every workload' : `ran; ${bad} row(s) failed (reasons in the tables)`;
  }
  const header: ReportHeader = {
    date: started.toISOString(),
    command: `npx tsx bench/run.ts ${process.argv.slice(2).join(' ')}`.trim(),
    tesseraStatus,
    machine,
    versions: vers,
    params: {
      'sequential size': `${params.seqBytes} bytes, ${params.seqRepeats} run(s) per row (median)`,
      'random-IO file': `${params.randFileBytes} bytes`,
      'duration per random-IO / ECHO run': `${params.durationS} s`,
      'metadata files': String(params.metaFiles),
      'CPU accounting': 'server process tree, /proc/PID/stat utime+stime+cutime+cstime (see README)',
    },
  };
  header.machine['load average (1/5/15 min) at end'] = loadavg().map((l) => l.toFixed(2)).join(' ');
  const md = renderResults(header, tables);
  const stamp = started.toISOString().replace(/[:.]/g, '-');
  const json = JSON.stringify({ header, params, tables }, null, 2);
  writeFileSync(join(outDir, `results-${stamp}.json`), json);
  writeFileSync(join(outDir, 'results-latest.json'), json);
  if (!flags['no-results-md']) {
    // Keep the sections other benchmarks own (bench:meta) below this run's report.
    const others = otherSections(join(benchDir, 'RESULTS.md'), 'smb');
    writeFileSync(join(benchDir, 'RESULTS.md'), others ? `${md.trimEnd()}\n\n${others}` : md);
  }
  process.stdout.write(`\nTessera: ${tesseraStatus}\nresults: ${flags['no-results-md'] ? '' : 'bench/RESULTS.md, '}bench/out/results-${stamp}.json\n`);

  // The reference must work: a failed Samba row means the harness or the machine is broken.
  const sambaFailures = tables.flatMap((t) => t.rows).filter((r) => r.results.samba !== undefined && r.results.samba.value === null);
  return sambaFailures.length > 0 ? 1 : 0;
}

function saveLog(name: string, text: string): void {
  try {
    mkdirSync(join(outDir, 'logs'), { recursive: true });
    writeFileSync(join(outDir, 'logs', name), text);
  } catch {
    // diagnostics only
  }
}

async function startServer(
  kind: ServerKind,
  wid: WorkloadId,
  o: { workdir: string; share: string; shareDir: string; user: string; password: string },
): Promise<RunningServer> {
  const port = await freePort();
  if (kind === 'samba') {
    return startSamba({
      port,
      shares: [{ name: o.share, path: o.shareDir }],
      user: o.user,
      password: o.password,
      workDir: join(o.workdir, `samba-state-${wid}`),
    });
  }
  return startTessera({
    port,
    shares: [{ name: o.share, path: o.shareDir }],
    users: [{ name: o.user, password: o.password }],
    extraArgs: ['--log-level', 'warn'],
  });
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`bench: ${(e as Error).stack ?? String(e)}\n`);
    process.exit(2);
  },
);
