// The four workloads. Each one runs unchanged against whichever server it is handed and records
// one Measure per row; a failure fills that row (or the remaining rows) with its reason.

import { spawn } from 'node:child_process';
import type { RunningServer } from '../../test/helpers/servers.js';
import { failed, serverKinds, type Measure, type ServerKind, type Table, type WorkloadId } from './model.js';
import { processTree, treeCpuSeconds, waitTreeSettled } from './proc.js';
import { cpuBetween, runTool, toolFailure, type BuiltTools, type ToolRun } from './tools.js';
import { median } from './paired.js';

export interface BenchParams {
  /** Bytes moved by each sequential put/get. */
  seqBytes: number;
  /** Runs of each sequential put/get; the table shows the median. */
  seqRepeats: number;
  /** Size of the pre-created file for random IO. */
  randFileBytes: number;
  /** Seconds per random-IO and echo run. */
  durationS: number;
  /** Files created, listed and unlinked by the metadata workload. */
  metaFiles: number;
  /** Upper bound of one metadata phase, seconds. */
  metaPhaseMaxS: number;
}

export interface BenchEnv {
  server: RunningServer;
  share: string;
  user: string;
  password: string;
  /** Private client smb.conf (so the system's /etc/samba/smb.conf cannot interfere). */
  clientConf: string;
  /** smbclient authentication file (-A). */
  authFile: string;
  /** Local file that smbclient puts. */
  seqSource: string;
  /** Name of the random-IO file inside the share. */
  randFile: string;
  tools: BuiltTools | null;
  toolsError: string | null;
  params: BenchParams;
  log: (msg: string) => void;
}

/** A workload's table before the run decides which targets it has columns for. */
export type TableSpec = Omit<Table, 'kinds'>;

export interface Workload {
  id: WorkloadId;
  /** Targets this workload runs against (the chunked targets run seq and rand only). */
  kinds: readonly ServerKind[];
  table(params: BenchParams): TableSpec;
  /** Runs every row against env.server; record(rowId, measure) for each. */
  run(env: BenchEnv, record: (rowId: string, m: Measure) => void): Promise<void>;
}

const GiB = 1024 ** 3;
const fmtUs = (v: unknown): string => (typeof v === 'number' ? (v >= 100 ? v.toFixed(0) : v.toFixed(1)) : '-');

function latencyOf(json: Record<string, unknown> | null): Record<string, number> {
  const lat = json?.['lat_us'];
  return lat !== null && typeof lat === 'object' ? (lat as Record<string, number>) : {};
}

function renderLatency(m: Measure): string {
  const lat = m.detail['lat_us'] as Record<string, number> | undefined;
  return lat ? `${fmtUs(lat['p50'])} / ${fmtUs(lat['p99'])}` : '-';
}

export function needTools(env: BenchEnv): BuiltTools {
  if (env.tools === null) throw new Error(`C tools unavailable: ${env.toolsError ?? 'not built'}`);
  return env.tools;
}

function smbUrl(env: BenchEnv, path = ''): string {
  return `smb://${env.server.host}:${env.server.port}/${env.share}${path}`;
}

// ---------------------------------------------------------------------------------------------
// 1. Sequential 1 GiB with smbclient

const seqModes = [
  { mode: 'off', label: 'unsigned' },
  { mode: 'sign', label: 'signed' },
  { mode: 'encrypt', label: 'encrypted' },
] as const;

export interface SmbclientRun {
  code: number | null;
  out: string;
  seconds: number;
  timedOut: boolean;
}

export function smbclient(env: Pick<BenchEnv, 'server' | 'share' | 'authFile' | 'clientConf'>, protection: string, command: string, timeoutMs: number): Promise<SmbclientRun> {
  const args = [
    `//${env.server.host}/${env.share}`,
    '-p', String(env.server.port),
    '-A', env.authFile,
    '-s', env.clientConf,
    '-m', 'SMB3_11',
    `--client-protection=${protection}`,
    '-c', command,
  ];
  return new Promise((resolve) => {
    const t0 = process.hrtime.bigint();
    const child = spawn('smbclient', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    child.on('error', (e) => (out += String(e)));
    child.on('close', (code) => {
      const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
      clearTimeout(timer);
      resolve({ code, out, seconds, timedOut });
    });
  });
}

/** smbclient's own rate for the last transfer ("(average N kb/s)", KiB/s), in GiB/s. */
export function smbclientRate(out: string): number | null {
  const m = /\(average ([\d.]+) (?:kb\/s|KiloBytes\/sec)\)/.exec(out);
  return m ? Number(m[1]) / (1024 * 1024) : null;
}

/** Why an smbclient put or get of `bytes` did not do what it was asked, or null when it did. */
export function smbclientFailure(r: SmbclientRun, dir: 'put' | 'get', bytes: number): string | null {
  if (r.timedOut) return 'timed out';
  const status = /NT_STATUS_[A-Z0-9_]+/.exec(r.out)?.[0];
  const expect = dir === 'put' ? /putting file/ : new RegExp(`getting file .* of size ${bytes} as`);
  if (r.code !== 0 || status !== undefined || !expect.test(r.out)) {
    return `smbclient exit ${r.code}${status ? `, ${status}` : ''}: ${r.out.trim().split('\n').slice(-1)[0] ?? ''}`;
  }
  return null;
}

/** Generous: 10 MiB/s would already be a failure worth reporting. */
export function seqTimeoutMs(bytes: number): number {
  return 60_000 + Math.ceil(bytes / (10 * 1024 * 1024)) * 1000;
}

export const seqWorkload: Workload = {
  id: 'seq',
  kinds: serverKinds,
  table(p) {
    const rows = [];
    for (const { mode, label } of seqModes) {
      rows.push({ id: `${mode}-put`, label: `put, ${label}`, results: {} });
      rows.push({ id: `${mode}-get`, label: `get, ${label}`, results: {} });
    }
    return {
      workload: 'seq',
      title: `Sequential transfer, smbclient -m SMB3_11, ${(p.seqBytes / GiB).toFixed(3).replace(/\.?0+$/, '')} GiB`,
      unit: 'GiB/s',
      cpuUnit: 'CPU s/GiB',
      detailColumn: {
        title: 'smbclient-reported GiB/s',
        render: (m) => (typeof m.detail['smbclientGiBs'] === 'number' ? (m.detail['smbclientGiBs'] as number).toFixed(2) : '-'),
      },
      rows,
      notes: [
        `GiB/s = bytes / wall time of the smbclient process (connect, logon, tree connect and transfer), measured with a high-resolution timer; median of ${p.seqRepeats} run(s), as are CPU and smbclient's own rate.`,
        'unsigned = --client-protection=off (3.1.1 still signs the session setup), signed = sign (AES-128-GMAC on 3.1.1), encrypted = encrypt (AES-128-GCM).',
        'get writes to /dev/null; put reads a page-cached local file. CPU s/GiB = server CPU over the smbclient run / GiB moved.',
      ],
    };
  },
  async run(env, record) {
    const bytes = env.params.seqBytes;
    const gib = bytes / GiB;
    const timeoutMs = seqTimeoutMs(bytes);
    for (const { mode } of seqModes) {
      for (const dir of ['put', 'get'] as const) {
        const rowId = `${mode}-${dir}`;
        const remote = `seq-${mode}.bin`;
        const cmd = dir === 'put' ? `put "${env.seqSource}" ${remote}` : `get ${remote} /dev/null`;
        const runs: { seconds: number; cpuS: number; smbclientGiBs: number | null }[] = [];
        let error: string | null = null;
        for (let i = 0; i < env.params.seqRepeats && error === null; i++) {
          const pid = env.server.pid;
          const treeBefore = processTree(pid);
          const cpu0 = treeCpuSeconds(pid);
          const r = await smbclient(env, mode, cmd, timeoutMs);
          // Let Samba's per-connection smbd exit and be reaped so its CPU lands in the parent.
          await waitTreeSettled(pid, treeBefore, 5000);
          const cpu1 = treeCpuSeconds(pid);
          error = smbclientFailure(r, dir, bytes);
          if (error === null) runs.push({ seconds: r.seconds, cpuS: cpu1 - cpu0, smbclientGiBs: smbclientRate(r.out) });
        }
        if (error !== null) {
          record(rowId, failed(error));
          env.log(`  seq ${rowId}: ${error}`);
          continue;
        }
        const rates = runs.map((r) => gib / r.seconds);
        const reported = runs.map((r) => r.smbclientGiBs).filter((v): v is number => v !== null);
        record(rowId, {
          value: median(rates),
          cpu: median(runs.map((r) => r.cpuS / gib)),
          detail: { runs, smbclientGiBs: reported.length > 0 ? median(reported) : null },
        });
        env.log(`  seq ${rowId}: ${rates.map((r) => r.toFixed(2)).join(', ')} GiB/s`);
      }
    }
  },
};

// ---------------------------------------------------------------------------------------------
// 2. Random IO through libsmbclient

const randCases: { bs: number; mode: 'read' | 'write'; procs: number }[] = [];
for (const bs of [4096, 65536])
  for (const mode of ['read', 'write'] as const) for (const procs of [1, 8]) randCases.push({ bs, mode, procs });
// Many writers at once: what group commit gathers (a Hyper-V host keeps dozens of I/Os in flight).
randCases.splice(randCases.findIndex((c) => c.bs === 4096 && c.mode === 'write' && c.procs === 8) + 1, 0, { bs: 4096, mode: 'write', procs: 32 });

/** One randio run on the share's random-IO file: `procs` connections, QD1 each, params.durationS. */
export function runRandio(env: BenchEnv, tools: BuiltTools, bs: number, mode: 'read' | 'write', procs: number): Promise<ToolRun> {
  return runTool(
    tools.randio,
    ['-u', smbUrl(env, `/${env.randFile}`), '-U', env.user, '-P', env.password, '-c', env.clientConf,
      '-b', String(bs), '-m', mode, '-j', String(procs), '-d', String(env.params.durationS)],
    env.server.pid,
    (env.params.durationS + 120) * 1000,
  );
}

export const randWorkload: Workload = {
  id: 'rand',
  kinds: serverKinds,
  table(p) {
    return {
      workload: 'rand',
      title: `Random IO, libsmbclient SMB3_11, ${(p.randFileBytes / GiB).toFixed(3).replace(/\.?0+$/, '')} GiB file, QD1 per connection, ${p.durationS} s each`,
      unit: 'IOPS',
      cpuUnit: 'CPU µs/op',
      detailColumn: { title: 'latency p50 / p99 µs', render: renderLatency },
      rows: randCases.map((c) => ({
        id: `${c.bs}-${c.mode}-${c.procs}`,
        label: `${c.bs / 1024} KiB ${c.mode}, ${c.procs} conn${c.procs > 1 ? 's' : ''}`,
        results: {},
      })),
      notes: [
        'One process per connection (Debian libsmbclient has no thread support), one request in flight each; offsets uniformly random and block-aligned.',
        'IOPS = sum over connections of completed ops / elapsed; CPU µs/op = server CPU during the timed window / ops.',
      ],
    };
  },
  async run(env, record) {
    const tools = needTools(env);
    for (const c of randCases) {
      const rowId = `${c.bs}-${c.mode}-${c.procs}`;
      const run = await runRandio(env, tools, c.bs, c.mode, c.procs);
      record(rowId, toolMeasure(run, 'start', 'end', (j) => num(j['rate']), (j) => num(j['ops'])));
      env.log(`  rand ${rowId}: ${describe(run)}`);
    }
  },
};

function num(v: unknown): number | null {
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}

function describe(run: ToolRun): string {
  const why = toolFailure(run);
  return why ?? `${Math.round(num(run.json?.['rate']) ?? 0)}/s`;
}

/** Measure from a tool run: value from the JSON, CPU µs per op between two sync labels. */
function toolMeasure(
  run: ToolRun,
  from: string,
  to: string,
  value: (j: Record<string, unknown>) => number | null,
  ops: (j: Record<string, unknown>) => number | null,
  json: Record<string, unknown> | null = run.json,
): Measure {
  const why = toolFailure(run);
  if (why !== null || json === null) return failed(why ?? 'no result');
  const errors = num(json['errors']) ?? 0;
  const n = ops(json);
  const cpu = cpuBetween(run, from, to);
  const m: Measure = {
    value: value(json),
    cpu: cpu !== null && n !== null && n > 0 ? (cpu * 1e6) / n : null,
    detail: { ...json, lat_us: latencyOf(json), serverCpuS: cpu },
  };
  if (errors > 0) m.error = `${errors} errors${typeof json['first_error'] === 'string' ? `: ${json['first_error']}` : ''}`;
  return m;
}

// ---------------------------------------------------------------------------------------------
// 3. Metadata through libsmbclient

const metaPhases = [
  { id: 'create', label: 'create+close' },
  { id: 'list', label: 'listing (entries)' },
  { id: 'unlink', label: 'unlink' },
] as const;

export const metaWorkload: Workload = {
  id: 'meta',
  kinds: ['samba', 'tessera'],
  table(p) {
    return {
      workload: 'meta',
      title: `Metadata, libsmbclient SMB3_11, ${p.metaFiles} files in one directory, one connection`,
      unit: 'ops/s',
      cpuUnit: 'CPU µs/op',
      detailColumn: { title: 'latency p50 / p99 µs', render: renderLatency },
      rows: metaPhases.map((ph) => ({ id: ph.id, label: ph.label, results: {} })),
      notes: [
        'create+close: smbc_open(O_CREAT|O_EXCL) + smbc_close per file. listing: opendir/readdir/closedir of the whole directory, repeated for at least 1 s; rate counts entries, latency is per full listing. unlink: smbc_unlink per file.',
      ],
    };
  },
  async run(env, record) {
    const tools = needTools(env);
    const p = env.params;
    const run = await runTool(
      tools.meta,
      ['-u', smbUrl(env), '-U', env.user, '-P', env.password, '-c', env.clientConf, '-n', String(p.metaFiles),
        '-l', '1', '-t', String(p.metaPhaseMaxS)],
      env.server.pid,
      (3 * p.metaPhaseMaxS + 120) * 1000,
    );
    const why = toolFailure(run);
    for (const ph of metaPhases) {
      const sub = run.json?.[ph.id];
      if (why !== null || sub === null || typeof sub !== 'object') {
        record(ph.id, failed(why ?? `no ${ph.id} result`));
        continue;
      }
      const j = sub as Record<string, unknown>;
      const m = toolMeasure(run, `${ph.id}-start`, `${ph.id}-end`, (x) => num(x['rate']), (x) => num(x['ops']), j);
      if (j['truncated'] === true) m.error = `${m.error ? `${m.error}; ` : ''}stopped after ${p.metaPhaseMaxS} s (partial)`;
      record(ph.id, m);
    }
    env.log(`  meta: ${why ?? metaPhases.map((ph) => `${ph.id} ${Math.round(num((run.json?.[ph.id] as Record<string, unknown> | undefined)?.['rate']) ?? 0)}/s`).join(', ')}`);
  },
};

// ---------------------------------------------------------------------------------------------
// 4. SMB2 ECHO over raw TCP

const echoDepths = [1, 8];

export const echoWorkload: Workload = {
  id: 'echo',
  kinds: ['samba', 'tessera'],
  table(p) {
    return {
      workload: 'echo',
      title: `SMB2 ECHO, raw TCP client, NEGOTIATE 3.x then ECHO without a session, one connection, ${p.durationS} s each`,
      unit: 'echoes/s',
      cpuUnit: 'CPU µs/op',
      detailColumn: { title: 'latency p50 / p99 µs', render: renderLatency },
      rows: echoDepths.map((d) => ({ id: `qd${d}`, label: d === 1 ? 'QD1' : `pipelined ${d} deep`, results: {} })),
      notes: ['Credits: each ECHO costs one credit and asks for enough to keep the pipeline full; no request is sent without a credit.'],
    };
  },
  async run(env, record) {
    const tools = needTools(env);
    for (const depth of echoDepths) {
      const run = await runTool(
        tools.echo,
        ['-H', env.server.host, '-p', String(env.server.port), '-q', String(depth), '-d', String(env.params.durationS)],
        env.server.pid,
        (env.params.durationS + 60) * 1000,
      );
      const m = toolMeasure(run, 'start', 'end', (j) => num(j['rate']), (j) => num(j['ops']));
      if (run.json?.['dialect'] !== undefined) m.detail['dialect'] = run.json['dialect'];
      record(`qd${depth}`, m);
      env.log(`  echo qd${depth}: ${describe(run)}`);
    }
  },
};

export const workloads: Record<WorkloadId, Workload> = {
  seq: seqWorkload,
  rand: randWorkload,
  meta: metaWorkload,
  echo: echoWorkload,
};
