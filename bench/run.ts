// Side-by-side benchmarks of Tessera and Samba in one run: `npx tsx bench/run.ts [flags]`
// (see bench/README.md). For every workload, each target (Samba, Tessera posix, Tessera chunked on a
// local-directory store, Tessera chunked on a Ceph RGW) is started, measured and stopped in turn,
// so no two compete for the machine and any drift in machine load hits all of them. With the RGW
// target, raw @aws-sdk/client-s3 throughput on an RGW started the same way follows the workloads.

import { execFileSync } from 'node:child_process';
import { chmodSync, closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, statfsSync, writeFileSync, writeSync } from 'node:fs';
import { availableParallelism, loadavg, release, tmpdir, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomFillSync } from 'node:crypto';
import { parseArgs } from 'node:util';
import { freePort, serverAlive, startSamba, startTessera, type RunningServer } from '../test/helpers/servers.js';
import { startRgw, type Rgw } from '../test/helpers/rgw.js';
import { chunkedKinds, failed, kindLabel, serverKinds, workloadIds, type ServerKind, type Table, type WorkloadId } from './lib/model.js';
import { renderResults, renderTable, type ReportHeader } from './lib/report.js';
import { buildTools, type BuiltTools } from './lib/tools.js';
import { treeCpuSeconds } from './lib/proc.js';
import { needTools, runRandio, seqTimeoutMs, smbclient, smbclientFailure, smbclientRate, workloads, type BenchEnv, type BenchParams } from './lib/workloads.js';
import { renderPaired, runPaired, type PairedCase, type PairedResult } from './lib/paired.js';
import { toolFailure } from './lib/tools.js';
import { rawCasesById, renderRawS3, runRawCase, runRawCases, runRawS3, type RawComparison, type RawResult, type SameRgwBaselines } from './lib/s3raw.js';
import { otherSections } from './lib/results-section.js';

const benchDir = dirname(fileURLToPath(import.meta.url));
const repoRoot = resolve(benchDir, '..');
const outDir = join(benchDir, 'out');

const usage = `usage: npx tsx bench/run.ts [--only seq,rand,meta,echo] [--quick] [--size-gib N] [--duration S]
                             [--files N] [--targets samba,tessera,chunked,rgw] [--paired N] [--workdir DIR] [--keep]
                             [--no-results-md]
  --only        workloads to run (default: all)
  --quick       smoke run: 0.125 GiB, 3 s per run, 1000 files (explicit flags still win)
  --size-gib    size of the sequential transfer and of the random-IO file (default 1)
  --duration    seconds per random-IO and ECHO run (default 10)
  --files       files for the metadata workload (default 10000)
  --repeat      runs of each sequential put/get, median shown (default 3, --quick 1)
  --targets     what to measure (default: all): samba, tessera (posix driver), chunked (chunked share on a
                local-directory store + local log), rgw (chunked share on a Ceph RGW started by the bench
                + local log; also raw S3 throughput on an RGW). The chunked targets run seq and rand only.
  --servers     same as --targets
  --paired      rounds of the paired comparisons on the rgw target's own RGW (default 5; 0: none): its
                sequential put against raw 8 MiB puts at 2 in flight, its random 4 KiB writes at 32
                connections against synchronous 4 KiB puts, run alternately, each round's ratio kept
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
    paired: { type: 'string' },
    servers: { type: 'string' },
    targets: { type: 'string' },
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
if (flags.servers !== undefined && flags.targets !== undefined) fail('give --targets or --servers, not both');
const servers = parseList(flags.targets ?? flags.servers, serverKinds, 'target');
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
const pairedRounds = flags.paired === undefined ? 5 : Number(flags.paired);
if (!Number.isInteger(pairedRounds) || pairedRounds < 0 || pairedRounds > 100) fail('--paired must be an integer from 0 to 100');
/** Bytes of each paired sequential put (bounded: the memstore OSD keeps every object in RAM). */
const pairedSeqBytes = Math.min(sizeBytes, 128 * 1024 ** 2);

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
    // Chunked targets keep their objects there too (and the RGW's memstore is in RAM as well).
    const need = (servers.some((k) => chunkedKinds.includes(k)) ? 8 : 3) * sizeBytes + 2 * 1024 ** 3;
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
  // Samba and the posix driver share a directory; the chunked targets get fresh state per workload.
  const shareDir: Partial<Record<ServerKind, string>> = {};
  for (const k of servers) {
    if (chunkedKinds.includes(k)) continue;
    const d = join(workdir, `share-${k}`);
    mkdirSync(d, { recursive: true });
    chmodSync(d, 0o777);
    shareDir[k] = d;
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
  log(`workdir ${workdir}; workloads ${selected.join(',')}; targets ${servers.join(',')}; size ${sizeGiB} GiB`);

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
  // The chunked targets get rand.bin through SMB (smbclient put of this file) before the workload.
  const randSource = join(workdir, 'rand-source.bin');
  log('creating data files');
  if (selected.includes('seq')) createDataFile(seqSource, params.seqBytes);
  const pairedSource = pairedSeqBytes === params.seqBytes ? seqSource : join(workdir, 'paired-source.bin');
  if (selected.includes('seq') && servers.includes('rgw') && pairedRounds > 0 && pairedSource !== seqSource) createDataFile(pairedSource, pairedSeqBytes);
  if (selected.includes('rand')) {
    for (const k of servers) {
      const d = shareDir[k];
      if (d !== undefined) createDataFile(join(d, randFile), params.randFileBytes);
    }
    if (servers.some((k) => chunkedKinds.includes(k))) createDataFile(randSource, params.randFileBytes);
  }

  const tables: Table[] = [];
  // Raw S3 on the RGW that serves the Chunked-RGW target, next to its rows (the issue: "raw
  // @aws-sdk/client-s3 throughput against the same RGW"); the fresh-RGW table after the workloads stays.
  const same: SameRgwBaselines = { errors: [] };
  const rawOpts = { durationS: params.durationS, maxBytes: Math.max(512 * 1024 ** 2, 2 * params.seqBytes), log };
  const sameRaw = async (rgw: Rgw, ids: string[]): Promise<RawResult[] | undefined> => {
    try {
      log(`s3raw (same RGW): ${ids.join(', ')}`);
      return await runRawCases(rgw, 'tessera-raw-same', rawCasesById(ids), rawOpts);
    } catch (e) {
      same.errors.push(`${ids.join(', ')}: ${((e as Error).message.split('\n')[0] ?? 'failed').slice(0, 200)}`);
      return undefined;
    }
  };
  const paired: PairedResult[] = [];
  const startError: Partial<Record<ServerKind, string>> = {};
  const ran = new Set<ServerKind>();
  for (const wid of selected) {
    const w = workloads[wid];
    const kinds = servers.filter((k) => w.kinds.includes(k));
    if (kinds.length === 0) continue;
    const table: Table = { ...w.table(params), kinds };
    tables.push(table);
    for (const kind of kinds) {
      const fillMissing = (msg: string): void => {
        for (const row of table.rows) if (row.results[kind] === undefined) row.results[kind] = failed(msg);
      };
      const known = startError[kind];
      if (kind !== 'samba' && known !== undefined) {
        fillMissing(`not runnable: ${known}`);
        continue;
      }
      log(`${wid}: starting ${kind}`);
      let server: RunningServer;
      let rgw: Rgw | undefined;
      try {
        ({ server, rgw } = await startServer(kind, wid, { workdir, share, shareDir: shareDir[kind], user, password }));
      } catch (e) {
        const first = ((e as Error).message.split('\n')[0] ?? 'start failed').slice(0, 300);
        log(`${wid}: ${kind} did not start: ${first}`);
        saveLog(`${kind}-${wid}-start.log`, (e as Error).message);
        if (kind !== 'samba') startError[kind] = first;
        fillMissing(`server did not start: ${first}`);
        continue;
      }
      ran.add(kind);
      const env: BenchEnv = {
        server, share, user, password, clientConf, authFile, seqSource, randFile, tools, toolsError, params, log,
      };
      // Where the time goes on the chunked targets: CPU of Tessera and of the RGW daemons over the
      // whole workload (the per-row CPU columns count the Tessera process tree only).
      const cpuPids = (): [string, number | undefined][] => [
        ['tessera', server.pid],
        ...(rgw !== undefined ? ([['radosgw', rgw.pids.rgw], ['ceph-osd', rgw.pids.osd]] as [string, number | undefined][]) : []),
      ];
      if (kind === 'rgw' && rgw !== undefined && wid === 'rand') same.randBefore = await sameRaw(rgw, ['put-4k-1']);
      const cpu0 = cpuPids().map(([, pid]) => (pid !== undefined ? treeCpuSeconds(pid) : 0));
      const t0 = process.hrtime.bigint();
      try {
        if (wid === 'rand' && chunkedKinds.includes(kind)) await putRandFile(env, randSource, kind, table);
        if (wid === 'rand') await warmRandFile(env, kind, table);
        await w.run(env, (rowId, m) => {
          const row = table.rows.find((r) => r.id === rowId);
          if (row) row.results[kind] = m;
        });
      } catch (e) {
        fillMissing((e as Error).message);
      }
      if (chunkedKinds.includes(kind)) {
        const wall = Number(process.hrtime.bigint() - t0) / 1e9;
        const spent = cpuPids().map(([name, pid], i) => `${name} ${(pid !== undefined ? treeCpuSeconds(pid) - cpu0[i]! : 0).toFixed(1)}`);
        table.notes.push(`${kindLabel[kind]}: whole workload ${wall.toFixed(1)} s wall; server CPU s: ${spent.join(', ')} (2 cores shared with the clients).`);
      }
      // Outside the CPU window above: these requests are the baseline's, not the target's.
      if (kind === 'rgw' && rgw !== undefined && wid === 'rand') same.randAfter = await sameRaw(rgw, ['put-4k-1']);
      if (kind === 'rgw' && rgw !== undefined && wid === 'seq') same.seq = await sameRaw(rgw, ['put-8m-2', 'put-8m-16']);
      if (kind === 'rgw' && rgw !== undefined && pairedRounds > 0 && serverAlive(server)) {
        const c = wid === 'seq' ? pairedSeqCase(env, rgw, pairedSource, pairedSeqBytes) : wid === 'rand' ? pairedRandCase(env, rgw) : undefined;
        if (c !== undefined) {
          log(`paired (same RGW): ${c.id}, ${pairedRounds} rounds`);
          paired.push(await runPaired(c, pairedRounds, log));
        }
      }
      const died = !serverAlive(server);
      if (died) fillMissing(`${kind} exited during the workload`);
      const anyError = table.rows.some((r) => r.results[kind]?.error !== undefined);
      if (anyError || died) saveLog(`${kind}-${wid}.log`, server.logs() + (rgw !== undefined ? `\n--- rgw ---\n${rgw.logTail()}` : ''));
      await server.stop();
      await rgw?.stop();
      // The chunked state (objects, log) of a finished workload is not needed any more: free the tmpfs.
      if (chunkedKinds.includes(kind)) rmSync(join(workdir, `${kind}-state-${wid}`), { recursive: true, force: true });
    }
    process.stdout.write(`\n${renderTable(table)}\n`);
  }

  // Raw S3 on an RGW started exactly as for the rgw target (fresh memstore), after the workloads.
  let raw: RawResult[] | null = null;
  let rawError: string | null = null;
  const extra: string[] = [];
  if (servers.includes('rgw') && (selected.includes('seq') || selected.includes('rand'))) {
    log('s3raw: starting RGW');
    let rgw: Rgw | undefined;
    try {
      rgw = await startBenchRgw('s3raw');
      raw = await runRawS3(rgw, 'tessera-raw', rawOpts);
    } catch (e) {
      rawError = ((e as Error).message.split('\n')[0] ?? 'failed').slice(0, 300);
      log(`s3raw: ${rawError}`);
    } finally {
      await rgw?.stop();
    }
    const seqRow = tables.find((t) => t.workload === 'seq')?.rows.find((r) => r.id === 'off-put')?.results.rgw;
    const randRows = tables.find((t) => t.workload === 'rand')?.rows;
    const cmp: RawComparison = {
      seqPutMiBs: seqRow?.value != null ? seqRow.value * 1024 : null,
      rand4kWrite: [1, 8, 32].map((conns) => {
        const m = randRows?.find((r) => r.id === `4096-write-${conns}`)?.results.rgw;
        return { conns, iops: m?.value ?? null, latUs: (m?.detail['lat_us'] as Record<string, number> | undefined) ?? null };
      }),
      ...(same.seq !== undefined || same.randBefore !== undefined || same.randAfter !== undefined || same.errors.length > 0 ? { same } : {}),
    };
    const note =
      'Raw S3: one S3Client set up like src/objstore/s3.ts (keep-alive, 16 sockets, no Expect: 100-continue, SHA-256 payload signing, no SDK retries), ' +
      `on a fresh RGW started as for the Chunked-RGW target; ${params.durationS} s per case or ${Math.max(512, (2 * params.seqBytes) / 1024 ** 2)} MiB, whichever comes first; puts cycle over 64 keys per size, gets read them back. ` +
      'Rows marked "same RGW" ran on the RGW that served the Chunked-RGW target, in bucket tessera-raw-same, just before and after that target\'s rows (outside their timed windows). ' +
      'The chunked driver seals a segment at 8 MiB or 2 ms after its first write (limits.chunkedSegmentBytes, chunkedGroupCommitMs), then commits its extent-map update to the local log before answering.';
    // The same-RGW and paired rows do not depend on the fresh RGW: they are shown even if it failed.
    extra.push([renderRawS3(raw, cmp, note, rawError ?? 'not run'), renderPaired(paired)].filter((x) => x !== '').join('\n\n'));
    process.stdout.write(`\n${extra[extra.length - 1]}\n`);
  }

  if (flags.workdir === undefined && !flags.keep) rmSync(workdir, { recursive: true, force: true });

  const status = (k: ServerKind): string => {
    if (!ran.has(k)) return `not yet runnable (${startError[k] ?? 'did not start'})`;
    const bad = tables.flatMap((t) => t.rows).filter((r) => r.results[k]?.value === null).length;
    return bad === 0 ? 'ran every workload' : `ran; ${bad} row(s) failed (reasons in the tables)`;
  };
  const statusLabel: Record<ServerKind, string> = { samba: 'Samba', tessera: 'posix driver', chunked: 'chunked on a local directory', rgw: 'chunked on RGW' };
  const measured = servers.filter((k) => k !== 'samba' && tables.some((t) => t.kinds.includes(k)));
  const tesseraStatus = measured.length === 0 ? 'not measured in this run (--targets)' : measured.map((k) => `${statusLabel[k]} ${status(k)}`).join('; ');
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
      'targets': servers.map((k) => kindLabel[k]).join(', '),
      'chunked targets': 'Chunked-local: --share bench --store file://WORKDIR/... --meta local://...; Chunked-RGW: --store s3://BUCKET/PREFIX --s3-endpoint on a private Ceph RGW (test/helpers/rgw.ts: 1 mon, 1 memstore OSD, radosgw beast, all on this machine, Ceph debug logging off) and a local log. Fresh state per workload; they run seq and rand only; rand.bin is written through SMB (smbclient put) first.',
      'CPU accounting': 'server process tree, /proc/PID/stat utime+stime+cutime+cstime (see README); the RGW daemons are not in it (see the notes under each table)',
    },
    extra,
  };
  header.machine['load average (1/5/15 min) at end'] = loadavg().map((l) => l.toFixed(2)).join(' ');
  const md = renderResults(header, tables);
  const stamp = started.toISOString().replace(/[:.]/g, '-');
  const json = JSON.stringify({ header, params, tables, rawS3: raw, rawS3Error: rawError, rawS3SameRgw: same, pairedRgw: paired }, null, 2);
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

/**
 * The sequential put of the Chunked-RGW target (smbclient, unsigned) against raw 8 MiB puts at 2 in
 * flight (the segments smbclient's two outstanding 8 MiB WRITEs become), the same bytes each. The
 * target's figure is smbclient's own rate (open, writes, close), as the baseline's excludes setting
 * up its connections (runRawCases warms them first); the seq table's wall-clock rate also counts
 * connect and logon.
 */
function pairedSeqCase(env: BenchEnv, rgw: Rgw, source: string, bytes: number): PairedCase {
  const mib = bytes / 1024 ** 2;
  return {
    id: 'seq-put',
    label: `sequential write on Chunked-RGW (smbclient put, unsigned, ${mib} MiB) / raw 8 MiB puts, 2 in flight (${mib} MiB)`,
    unit: 'MiB/s',
    targetLabel: "Chunked-RGW put (smbclient's rate)",
    baselineLabel: 'raw 8 MiB puts, 2 in flight',
    aim: '0.8x',
    notes: [
      "Target: smbclient's own rate for the put (from opening the file to closing it: every WRITE answered, so every byte in a stored segment and mapped in the log); the seq table's rate also counts starting smbclient, connecting and logging on.",
      'Baseline: the same bytes as 8 MiB puts, 2 in flight (runRawCases, after an untimed wave that opens the connections), in bucket tessera-raw-same of the same RGW.',
      'The order alternates: baseline first in odd rounds, target first in even ones.',
    ],
    target: async () => {
      const r = await smbclient(env, 'off', `put "${source}" paired.bin`, seqTimeoutMs(bytes));
      const why = smbclientFailure(r, 'put', bytes);
      if (why !== null) throw new Error(why);
      const gibs = smbclientRate(r.out);
      if (gibs === null) throw new Error('smbclient printed no rate');
      return gibs * 1024;
    },
    baseline: async () => {
      return (await runRawCase(rgw, 'tessera-raw-same', 'put-8m-2', { durationS: 3600, maxBytes: bytes, log })).mibPerS;
    },
  };
}

/** Random 4 KiB writes at 32 connections on the Chunked-RGW target against synchronous 4 KiB puts. */
function pairedRandCase(env: BenchEnv, rgw: Rgw): PairedCase {
  return {
    id: 'rand-4k-32',
    label: `random 4 KiB writes on Chunked-RGW, 32 connections QD1 / synchronous 4 KiB puts (${env.params.durationS} s each)`,
    unit: 'ops/s',
    targetLabel: 'Chunked-RGW writes/s',
    baselineLabel: 'synchronous puts/s',
    aim: '20x',
    notes: [
      'Target: randio, 32 processes, one 4 KiB write in flight each, on rand.bin (as the rand table). Baseline: one 4 KiB put at a time, as long, same RGW.',
      'The order alternates: baseline first in odd rounds, target first in even ones.',
    ],
    target: async () => {
      const run = await runRandio(env, needTools(env), 4096, 'write', 32);
      const why = toolFailure(run);
      if (why !== null) throw new Error(why);
      const rate = run.json?.['rate'];
      if (typeof rate !== 'number') throw new Error('randio printed no rate');
      return rate;
    },
    baseline: async () => {
      return (await runRawCase(rgw, 'tessera-raw-same', 'put-4k-1', { durationS: env.params.durationS, maxBytes: 1024 ** 3, log })).opsPerS;
    },
  };
}

/**
 * Writes rand.bin into a chunked share through SMB (a chunked share has no directory to create it
 * in). Its rate is logged and noted under the table; a failure fails the workload for this target.
 */
async function putRandFile(env: BenchEnv, source: string, kind: ServerKind, table: Table): Promise<void> {
  const bytes = env.params.randFileBytes;
  const r = await smbclient(env, 'off', `put "${source}" ${env.randFile}`, 60_000 + Math.ceil(bytes / (10 * 1024 * 1024)) * 1000);
  const status = /NT_STATUS_[A-Z0-9_]+/.exec(r.out)?.[0];
  if (r.timedOut || r.code !== 0 || status !== undefined || !/putting file/.test(r.out)) {
    throw new Error(`writing ${env.randFile} through SMB failed: ${r.timedOut ? 'timed out' : `smbclient exit ${r.code}${status ? `, ${status}` : ''}`}`);
  }
  const rate = bytes / 1024 ** 2 / r.seconds;
  env.log(`  rand: ${env.randFile} written through SMB in ${r.seconds.toFixed(2)} s (${rate.toFixed(0)} MiB/s)`);
  table.notes.push(`${kindLabel[kind]}: ${env.randFile} (${bytes} bytes) was first written through SMB (smbclient put, ${rate.toFixed(0)} MiB/s).`);
}

/**
 * Reads rand.bin once through SMB before the random-IO rows, on every target alike, so the rows
 * measure reads from a warm cache: the page cache for Samba and the posix driver (warm already), the
 * chunked driver's memory tier (--cache-memory-bytes, 256 MiB by default: a larger file is read
 * partly from the store).
 */
async function warmRandFile(env: BenchEnv, kind: ServerKind, table: Table): Promise<void> {
  const bytes = env.params.randFileBytes;
  const r = await smbclient(env, 'off', `get ${env.randFile} /dev/null`, 60_000 + Math.ceil(bytes / (10 * 1024 * 1024)) * 1000);
  const status = /NT_STATUS_[A-Z0-9_]+/.exec(r.out)?.[0];
  if (r.timedOut || r.code !== 0 || status !== undefined) {
    throw new Error(`reading ${env.randFile} through SMB failed: ${r.timedOut ? 'timed out' : `smbclient exit ${r.code}${status ? `, ${status}` : ''}`}`);
  }
  const rate = bytes / 1024 ** 2 / r.seconds;
  env.log(`  rand: ${env.randFile} read once through SMB in ${r.seconds.toFixed(2)} s (${rate.toFixed(0)} MiB/s)`);
  table.notes.push(`${kindLabel[kind]}: ${env.randFile} was read once before the rows (smbclient get, ${rate.toFixed(0)} MiB/s).`);
}

function saveLog(name: string, text: string): void {
  try {
    mkdirSync(join(outDir, 'logs'), { recursive: true });
    writeFileSync(join(outDir, 'logs', name), text);
  } catch {
    // diagnostics only
  }
}

/**
 * Ceph's debug logging off, as for a production gateway: the defaults (debug rgw 1/5, osd 1/5, ...)
 * write a log line at level 1 for every request and gather entries up to level 5 in memory, CPU
 * that the RGW daemons take from the 2 cores the target and the clients share (a chunked share at
 * 32 connections did 2,182-2,364 random 4 KiB writes/s with the defaults, 2,508-3,170 without, on
 * alternating fresh RGWs). The tests keep the defaults: their failures print the RGW's log.
 */
const quietCeph: Record<string, string> = Object.fromEntries(
  ['rgw', 'rgw_sync', 'osd', 'objecter', 'rados', 'memdb', 'rocksdb', 'auth', 'asok', 'monc', 'mon', 'paxos', 'finisher', 'throttle', 'optracker', 'heartbeatmap', 'perfcounter', 'tp', 'none', 'objclass', 'crypto', 'context', 'buffer', 'timer', 'reserver', 'crush', 'prioritycache', 'compressor'].map((s) => [`debug ${s}`, '0/0']),
);

/** A private Ceph RGW for the bench (memstore: objects live in the OSD's RAM). */
async function startBenchRgw(name: string): Promise<Rgw> {
  // memstore's capacity is only a bound (RAM is used as objects arrive); sequential rows overwrite
  // whole files, and RGW frees the tails of deleted objects only a minute later.
  const osdBytes = Math.min(16 * 1024 ** 3, Math.max(4 * 1024 ** 3, 12 * sizeBytes));
  return startRgw({ name, osdBytes, conf: quietCeph });
}

async function startServer(
  kind: ServerKind,
  wid: WorkloadId,
  o: { workdir: string; share: string; shareDir: string | undefined; user: string; password: string },
): Promise<{ server: RunningServer; rgw?: Rgw }> {
  const port = await freePort();
  if (kind === 'samba' || kind === 'tessera') {
    if (o.shareDir === undefined) throw new Error(`${kind}: no share directory`);
    if (kind === 'samba') {
      const server = await startSamba({
        port,
        shares: [{ name: o.share, path: o.shareDir }],
        user: o.user,
        password: o.password,
        workDir: join(o.workdir, `samba-state-${wid}`),
      });
      return { server };
    }
    const server = await startTessera({
      port,
      shares: [{ name: o.share, path: o.shareDir }],
      users: [{ name: o.user, password: o.password }],
      extraArgs: ['--log-level', 'warn'],
    });
    return { server };
  }
  // Chunked share (`--share NAME` without a path): fresh objects, log and state for every workload.
  const state = join(o.workdir, `${kind}-state-${wid}`);
  rmSync(state, { recursive: true, force: true });
  mkdirSync(state, { recursive: true });
  const common = ['--share', o.share, '--meta', `local://${join(state, 'meta')}`, '--state-dir', state, '--log-level', 'warn'];
  if (kind === 'chunked') {
    const server = await startTessera({
      port,
      shares: [],
      users: [{ name: o.user, password: o.password }],
      extraArgs: [...common, '--store', `file://${join(state, 'objects')}`],
    });
    return { server };
  }
  const rgw = await startBenchRgw(`bench-${wid}`);
  try {
    const bucket = 'tessera-bench';
    await rgw.createBucket(bucket);
    const server = await startTessera({
      port,
      shares: [],
      users: [{ name: o.user, password: o.password }],
      extraArgs: [...common, '--store', `s3://${bucket}/${wid}/`, '--s3-endpoint', rgw.endpoint],
      // The S3 adapter takes credentials from the standard AWS environment.
      env: {
        AWS_ACCESS_KEY_ID: rgw.accessKeyId,
        AWS_SECRET_ACCESS_KEY: rgw.secretAccessKey,
        AWS_REGION: rgw.region,
        AWS_EC2_METADATA_DISABLED: 'true',
      },
    });
    return { server, rgw };
  } catch (e) {
    await rgw.stop();
    throw e;
  }
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`bench: ${(e as Error).stack ?? String(e)}\n`);
    process.exit(2);
  },
);
