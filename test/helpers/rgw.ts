// A real S3 server for tests: a private Ceph RGW (shared/design/TOOLS.md, "S3: Ceph RGW") made of one
// monitor, one OSD (memstore: object data in the OSD's RAM) and radosgw with the beast frontend, all
// on 127.0.0.1 with ports picked by the kernel. Every run has a fresh cluster fsid, fresh cephx keys
// and fresh S3 credentials; all state lives in one temp directory (on /dev/shm when it exists). The
// steps and the ceph.conf template (cluster/lab/ceph.conf.template) are those of cluster/lab/rgw.sh.
//
// Processes are killed by pid only (SIGKILL). Three layers make sure none outlives the test: stop(),
// a process-exit hook, and a detached watchdog shell that notices the test process is gone (even
// after a SIGKILL) and kills the daemons whose command line names this run's directory.
//
// Pitfalls met on Debian 12's Ceph 16.2 (pacific), each handled below or in the template:
// - radosgw cannot connect without cephx; ms bind msgr1 = false keeps everything on msgr2.
// - ceph-osd --mkfs asks the monitor for its config unless --no-mon-config (it then waits 300 s).
// - Each monitor change (pool creation, OSD registration) waits paxos propose interval (1 s);
//   radosgw's first requests, sent before the OSD is up, wait an objecter tick (5 s). Both are
//   lowered in the template, and the setup tools run while the daemons start: the first S3 answer
//   comes ~0.6 s after startRgw() (2 cores, quiet machine) instead of ~11 s.
// - RGW 16.2 does not understand the aws-chunked checksum trailer that @aws-sdk/client-s3 (>= 3.729)
//   uses for streamed uploads by default (411 MissingContentLength): clientConfig() sets
//   requestChecksumCalculation/responseChecksumValidation to 'WHEN_REQUIRED'. Path-style addressing
//   is required (no DNS names for buckets on loopback). Any SigV4 region is accepted.
// - S3 behaviour an adapter must know (checked here on 16.2.15): If-Match on PUT compares the etag
//   WITHOUT quotes (the quoted form that PUT/HEAD return always gives 412; send it unquoted);
//   CopyObject ignores x-amz-copy-source-if-match and If-None-Match (the copy always happens).
// - memstore keeps objects in the OSD's heap: its RSS grows ~2x the bytes stored (600 MiB for 270 MiB).

import { CreateBucketCommand, ListBucketsCommand, S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, repoRoot } from './servers.js';

export interface RgwOptions {
  /** Names the radosgw instance (client.rgw.NAME) and the run directory (default 'rgw'). */
  name?: string;
  /** Milliseconds to wait for the first successful S3 request (default 60 s). */
  startTimeoutMs?: number;
  /** Capacity the memstore OSD reports (default 4 GiB; data lives in the OSD's RAM). */
  osdBytes?: number;
  /**
   * Extra ceph.conf options appended to [global] (e.g. { 'rgw max put size': 1 << 30 }). Options the
   * template sets in a daemon's own section ([mon], [osd], [client.rgw.NAME]) keep the template's value.
   */
  conf?: Record<string, string | number | boolean>;
}

export interface RgwPids {
  mon: number | undefined;
  osd: number | undefined;
  rgw: number | undefined;
}

export interface Rgw {
  /** http://127.0.0.1:PORT (path-style S3). */
  readonly endpoint: string;
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  /** Region for SigV4; RGW accepts the SDK's default. */
  readonly region: string;
  /** The run directory (ceph.conf, keyring, logs). */
  readonly dir: string;
  /** Milliseconds from startRgw() to the first successful S3 request. */
  readonly startupMs: number;
  /** Pids of the running daemons (undefined for one that is not running). */
  readonly pids: RgwPids;
  /** S3Client settings for this server (path style, checksums only when required, no retries unless overridden). */
  clientConfig(overrides?: Partial<S3ClientConfig>): S3ClientConfig;
  /** A new S3Client with clientConfig(overrides); the caller destroys it. */
  client(overrides?: Partial<S3ClientConfig>): S3Client;
  /** Creates a bucket (no error if this user already owns it). */
  createBucket(name: string): Promise<void>;
  /** SIGKILLs radosgw only and waits for it to exit: S3 requests now fail to connect. */
  killGateway(): Promise<void>;
  /** Kills radosgw if it runs, starts it again on the same port; resolves once S3 answers. */
  restart(): Promise<void>;
  /** SIGSTOP / SIGCONT radosgw: requests hang (timeouts, "ambiguous" writes) until resumed. */
  pauseGateway(): void;
  resumeGateway(): void;
  /** The last bytes of the logs (radosgw first), for diagnostics. */
  logTail(bytes?: number): string;
  /** SIGKILLs every process this cluster started (by pid) and removes its directory. */
  stop(): Promise<void>;
}

export const rgwPackages = 'radosgw ceph-mon ceph-osd ceph-common';
const templatePath = join(repoRoot, 'cluster', 'lab', 'ceph.conf.template');
const marker = '.tessera-rgw-lab';
const defaultOsdBytes = 4 * 1024 * 1024 * 1024;
const toolTimeoutMs = 60_000;
const probeTimeoutMs = 3_000;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

// ---- last-resort cleanup -------------------------------------------------------------------------

interface LiveCluster {
  dir: string;
  pids: () => number[];
}
const liveClusters = new Set<LiveCluster>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const c of liveClusters) {
      for (const pid of c.pids()) sigkill(pid);
      try {
        rmSync(c.dir, { recursive: true, force: true });
      } catch {
        // the watchdog removes it
      }
    }
  });
}

function sigkill(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

// Runs detached; once the test process is gone, kills the daemons listed in DIR/pids whose command
// line names DIR/ceph.conf (so a reused pid is never hit), then removes DIR.
const watchdogScript = `
parent=$1; dir=$2
while kill -0 "$parent" 2>/dev/null; do sleep 1; done
[ -f "$dir/${marker}" ] || exit 0
if [ -f "$dir/pids" ]; then
  while read -r pid _; do
    grep -qaF "$dir/ceph.conf" "/proc/$pid/cmdline" 2>/dev/null && kill -9 "$pid"
  done <"$dir/pids"
fi
sleep 0.5
rm -rf "$dir"
`;

// ---- small process tools -------------------------------------------------------------------------

interface RunResult {
  code: number | null;
  output: string;
}

/** Runs a tool to completion (killed after timeoutMs); resolves with its exit code and output. */
function run(cmd: string, args: string[], timeoutMs = toolTimeoutMs, tools?: Set<ChildProcess>): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    tools?.add(child);
    const chunks: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => chunks.push(c));
    child.stderr.on('data', (c: Buffer) => chunks.push(c));
    const timer = setTimeout(() => {
      if (child.pid !== undefined) sigkill(child.pid);
    }, timeoutMs);
    child.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(
        err.code === 'ENOENT'
          ? new Error(`${cmd} not found: install Ceph (apt-get install -y --no-install-recommends ${rgwPackages})`)
          : err,
      );
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      tools?.delete(child);
      resolve({ code, output: Buffer.concat(chunks).toString('utf8') });
    });
  });
}

async function runOk(cmd: string, args: string[], timeoutMs = toolTimeoutMs, tools?: Set<ChildProcess>): Promise<string> {
  const r = await run(cmd, args, timeoutMs, tools);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (exit ${r.code}):\n${r.output.slice(-3000)}`);
  return r.output;
}

/** A cephx secret as ceph-authtool writes it: le16 type (1 = AES), le32 sec, le32 nsec, le16 16, 16 bytes. */
function cephxKey(): string {
  const b = Buffer.alloc(28);
  const now = Date.now();
  b.writeUInt16LE(1, 0);
  b.writeUInt32LE(Math.floor(now / 1000), 2);
  b.writeUInt32LE((now % 1000) * 1_000_000, 6);
  b.writeUInt16LE(16, 10);
  randomBytes(16).copy(b, 12);
  return b.toString('base64');
}

function randomAlnum(n: number, alphabet: string): string {
  let s = '';
  while (s.length < n) {
    for (const byte of randomBytes(n)) {
      // 256 % alphabet.length bias is irrelevant for test credentials, but keep it uniform anyway.
      if (byte < 256 - (256 % alphabet.length)) s += alphabet[byte % alphabet.length];
      if (s.length === n) break;
    }
  }
  return s;
}

function baseDir(): string {
  try {
    if (existsSync('/dev/shm') && statSync('/dev/shm').isDirectory()) return '/dev/shm';
  } catch {
    // fall through
  }
  return tmpdir();
}

function tailOf(file: string, bytes: number): string {
  try {
    const text = readFileSync(file, 'utf8');
    return text.length > bytes ? `[...]${text.slice(-bytes)}` : text;
  } catch {
    return '';
  }
}

/** ceph.conf from the shared template; every @NAME@ must be given. */
export function renderCephConf(vars: Record<string, string>, extra?: RgwOptions['conf']): string {
  const template = readFileSync(templatePath, 'utf8');
  const text = template.replace(/@([A-Z_]+)@/g, (whole, key: string) => {
    const v = vars[key];
    if (v === undefined) throw new Error(`ceph.conf.template: no value for ${whole}`);
    return v;
  });
  if (extra === undefined || Object.keys(extra).length === 0) return text;
  const lines = Object.entries(extra).map(([k, v]) => {
    if (!/^[a-z0-9_ ]+$/.test(k) || /[\n\r]/.test(String(v))) throw new Error(`startRgw: bad conf option ${k}`);
    return `${k} = ${String(v)}`;
  });
  // Appended as a second [global] section: Ceph merges sections of the same name, later lines win.
  return `${text}\n[global]\n${lines.join('\n')}\n`;
}

// ---- the cluster ---------------------------------------------------------------------------------

type DaemonName = 'mon' | 'osd' | 'rgw';

export async function startRgw(opts: RgwOptions = {}): Promise<Rgw> {
  const t0 = Date.now();
  const name = opts.name ?? 'rgw';
  const startTimeoutMs = opts.startTimeoutMs ?? 60_000;
  const osdBytes = opts.osdBytes ?? defaultOsdBytes;
  if (!/^[A-Za-z0-9_-]{1,32}$/.test(name)) throw new Error(`startRgw: bad name ${JSON.stringify(name)}`);
  if (!Number.isSafeInteger(osdBytes) || osdBytes < 256 * 1024 * 1024) throw new Error(`startRgw: osdBytes must be >= 256 MiB`);
  installExitHook();

  const fsid = randomUUID();
  const osdUuid = randomUUID();
  const monPort = await freePort();
  let rgwPort = await freePort();
  while (rgwPort === monPort) rgwPort = await freePort();
  const endpoint = `http://127.0.0.1:${rgwPort}`;
  const accessKeyId = `TESSERA${randomAlnum(13, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789')}`;
  const secretAccessKey = randomAlnum(40, 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789');
  const region = 'us-east-1';

  const dir = mkdtempSync(join(baseDir(), `tessera-${name}-`));
  writeFileSync(join(dir, marker), '');
  for (const sub of ['run', 'log', 'crash', 'rgw', 'osd.0']) mkdirSync(join(dir, sub));
  const conf = join(dir, 'ceph.conf');
  const keyring = join(dir, 'keyring');
  const setupLog = join(dir, 'setup.out');
  const rgwEntity = `client.rgw.${name}`;

  try {
    writeFileSync(
      conf,
      renderCephConf(
        {
          FSID: fsid,
          DIR: dir,
          MON_PORT: String(monPort),
          RGW_PORT: String(rgwPort),
          RGW_NAME: name,
          OSD_BYTES: String(osdBytes),
        },
        opts.conf,
      ),
    );
    // The monitor imports every key of this keyring at mkfs; the other daemons read theirs from it.
    const keys: [string, string[]][] = [
      ['mon.', ['mon = "allow *"']],
      ['client.admin', ['mon = "allow *"', 'osd = "allow *"', 'mgr = "allow *"']],
      ['osd.0', ['mon = "allow profile osd"', 'mgr = "allow profile osd"', 'osd = "allow *"']],
      [rgwEntity, ['mon = "allow rw"', 'osd = "allow rwx"']],
    ];
    writeFileSync(
      keyring,
      keys.map(([entity, caps]) => `[${entity}]\n\tkey = ${cephxKey()}\n${caps.map((c) => `\tcaps ${c}\n`).join('')}`).join(''),
      { mode: 0o600 },
    );
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }

  const children: Record<DaemonName, ChildProcess | undefined> = { mon: undefined, osd: undefined, rgw: undefined };
  const exits: Record<DaemonName, Promise<void> | undefined> = { mon: undefined, osd: undefined, rgw: undefined };
  let stopped = false;
  // Setup tools (ceph, radosgw-admin, mkfs) still running; stop() kills them too.
  const tools = new Set<ChildProcess>();
  // Daemons this module killed on purpose; any other exit during startup fails startRgw at once.
  const killing = new WeakSet<ChildProcess>();
  let onUnexpectedExit: ((what: string) => void) | undefined;
  const livePids = (): number[] =>
    (Object.values(children) as (ChildProcess | undefined)[]).flatMap((c) => (c?.pid === undefined ? [] : [c.pid]));
  const writePids = (): void => {
    const lines = (Object.keys(children) as DaemonName[]).flatMap((k) => {
      const pid = children[k]?.pid;
      return pid === undefined ? [] : [`${pid} ${k}\n`];
    });
    try {
      writeFileSync(join(dir, 'pids'), lines.join(''));
    } catch {
      // directory already removed (stop() racing an exit)
    }
  };
  let watchdog: ChildProcess | undefined;
  const cluster: LiveCluster = {
    dir,
    pids: () => [...livePids(), ...[...tools].flatMap((t) => (t.pid === undefined ? [] : [t.pid])), ...(watchdog?.pid === undefined ? [] : [watchdog.pid])],
  };
  liveClusters.add(cluster);
  watchdog = spawn('sh', ['-c', watchdogScript, 'tessera-rgw-watchdog', String(process.pid), dir], {
    detached: true,
    stdio: 'ignore',
  });
  watchdog.unref();

  const daemonArgs: Record<DaemonName, [string, string[]]> = {
    mon: ['ceph-mon', ['-c', conf, '-i', 'a', '-f']],
    osd: ['ceph-osd', ['-c', conf, '-i', '0', '-f']],
    rgw: ['radosgw', ['-c', conf, '-n', rgwEntity, '-f']],
  };
  const spawnDaemon = (which: DaemonName): void => {
    if (stopped) throw new Error('RGW lab: stopped');
    const [cmd, args] = daemonArgs[which];
    const fd = openSync(join(dir, `${which}.out`), 'a');
    let child: ChildProcess;
    try {
      child = spawn(cmd, args, { stdio: ['ignore', fd, fd] });
    } finally {
      closeSync(fd);
    }
    children[which] = child;
    exits[which] = new Promise<void>((resolve) => {
      const gone = (how: string): void => {
        if (children[which] === child) children[which] = undefined;
        writePids();
        if (!killing.has(child)) onUnexpectedExit?.(`${cmd} (${which}) ${how}`);
        resolve();
      };
      child.once('exit', (code, signal) => gone(signal !== null ? `was killed by ${signal}` : `exited with code ${code}`));
      child.once('error', (err) => gone(`did not start: ${err.message}`));
    });
    writePids();
  };
  const kill = async (which: DaemonName): Promise<void> => {
    const child = children[which];
    if (child !== undefined) killing.add(child);
    if (child?.pid !== undefined) sigkill(child.pid);
    await exits[which];
  };

  const logTail = (bytes = 6000): string => {
    const parts: string[] = [];
    const add = (label: string, file: string, n: number): void => {
      const t = tailOf(file, n).trim();
      if (t !== '') parts.push(`--- ${label}\n${t}`);
    };
    add('radosgw log', join(dir, 'log', `${rgwEntity}.log`), bytes);
    add('radosgw output', join(dir, 'rgw.out'), 1500);
    add('setup', setupLog, 2000);
    add('osd output', join(dir, 'osd.out'), 1500);
    add('osd log', join(dir, 'log', 'osd.0.log'), 1500);
    add('mon output', join(dir, 'mon.out'), 1000);
    add('mon log', join(dir, 'log', 'mon.a.log'), 1500);
    return parts.length === 0 ? '(no logs)' : parts.join('\n');
  };

  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    for (const t of tools) if (t.pid !== undefined) sigkill(t.pid);
    await Promise.all((['rgw', 'osd', 'mon'] as const).map((d) => kill(d)));
    if (watchdog?.pid !== undefined) sigkill(watchdog.pid);
    liveClusters.delete(cluster);
    rmSync(dir, { recursive: true, force: true });
  };

  const s3config = (overrides?: Partial<S3ClientConfig>): S3ClientConfig => ({
    endpoint,
    region,
    credentials: { accessKeyId, secretAccessKey },
    forcePathStyle: true,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    maxAttempts: 1,
    ...overrides,
  });

  /** Polls ListBuckets (signed with this run's user) until it succeeds; fails fast if a daemon died. */
  const waitS3 = async (timeoutMs: number): Promise<void> => {
    const probe = new S3Client(s3config());
    const deadline = Date.now() + timeoutMs;
    let last = '';
    try {
      for (;;) {
        try {
          await probe.send(new ListBucketsCommand({}), { abortSignal: AbortSignal.timeout(probeTimeoutMs) });
          return;
        } catch (err) {
          last = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
        }
        const dead = (['mon', 'osd', 'rgw'] as const).find((d) => children[d] === undefined);
        if (dead !== undefined) throw new Error(`RGW lab: ${dead} exited (last S3 error: ${last})`);
        if (Date.now() > deadline) throw new Error(`RGW lab: no S3 answer from ${endpoint} after ${timeoutMs} ms (last: ${last})`);
        await sleep(50);
      }
    } finally {
      probe.destroy();
    }
  };

  const setup = async (...steps: [string, string[]][]): Promise<void> => {
    for (const [cmd, args] of steps) {
      // Each tool gets what is left of the start deadline (they wait for the daemons they talk to).
      if (stopped) throw new Error('RGW lab: stopped during start');
      const out = await runOk(cmd, args, Math.max(1000, t0 + startTimeoutMs - Date.now()), tools);
      writeFileSync(setupLog, `$ ${cmd} ${args.join(' ')}\n${out}`, { flag: 'a' });
    }
  };

  const died = new Promise<never>((_, reject) => {
    onUnexpectedExit = (what) => reject(new Error(`RGW lab: ${what} during start`));
  });
  died.catch(() => undefined); // observed through the race below
  const startUp = async (): Promise<void> => {
    await setup(['monmaptool', ['--create', '--fsid', fsid, '--addv', 'a', `[v2:127.0.0.1:${monPort}]`, join(dir, 'monmap')]]);
    // As much as possible runs at once (measured: ~0.6 s to the first S3 answer instead of ~0.7 s
    // step by step). The ceph CLI (python, the slowest step) and radosgw-admin start before the
    // daemons they talk to and wait for them; radosgw and radosgw-admin both create the default zone
    // and pools on a new cluster, either may win (25 of 25 runs fine).
    const osdNew = setup(['ceph', ['-c', conf, '--connect-timeout', '30', 'osd', 'new', osdUuid, '0']]);
    const monUp = setup(['ceph-mon', ['-c', conf, '--mkfs', '-i', 'a', '--monmap', join(dir, 'monmap'), '--keyring', keyring]]).then(() =>
      spawnDaemon('mon'),
    );
    // --no-mon-config: without it ceph-osd --mkfs asks a monitor for its config (and waits 300 s).
    const osdMkfs = setup(['ceph-osd', ['-c', conf, '-i', '0', '--mkfs', '--no-mon-config', '--osd-uuid', osdUuid]]);
    const osdUp = Promise.all([osdMkfs, osdNew]).then(() => spawnDaemon('osd'));
    await monUp;
    spawnDaemon('rgw');
    const user = setup([
      'radosgw-admin',
      ['-c', conf, 'user', 'create', '--uid', 'tessera', '--display-name', 'Tessera', '--access-key', accessKeyId, '--secret-key', secretAccessKey],
    ]);
    await Promise.all([osdUp, user]);
    await waitS3(Math.max(1000, startTimeoutMs - (Date.now() - t0)));
  };
  try {
    const steps = startUp();
    steps.catch(() => undefined); // a daemon death may win the race while steps are still running
    await Promise.race([steps, died]);
    onUnexpectedExit = undefined;
  } catch (err) {
    const tail = logTail();
    await stop();
    throw new Error(`${err instanceof Error ? err.message : String(err)}\n${tail}`, { cause: err });
  }
  const startupMs = Date.now() - t0;

  return {
    endpoint,
    accessKeyId,
    secretAccessKey,
    region,
    dir,
    startupMs,
    get pids(): RgwPids {
      return { mon: children.mon?.pid, osd: children.osd?.pid, rgw: children.rgw?.pid };
    },
    clientConfig: s3config,
    client: (overrides) => new S3Client(s3config(overrides)),
    async createBucket(bucket: string): Promise<void> {
      const c = new S3Client(s3config());
      try {
        await c.send(new CreateBucketCommand({ Bucket: bucket }));
      } catch (err) {
        if (!(err instanceof Error && err.name === 'BucketAlreadyOwnedByYou')) throw err;
      } finally {
        c.destroy();
      }
    },
    killGateway: () => kill('rgw'),
    async restart(): Promise<void> {
      if (stopped) throw new Error('RGW lab: restart() after stop()');
      await kill('rgw');
      spawnDaemon('rgw');
      try {
        await waitS3(startTimeoutMs);
      } catch (err) {
        throw new Error(`${err instanceof Error ? err.message : String(err)}\n${logTail()}`, { cause: err });
      }
    },
    pauseGateway(): void {
      const pid = children.rgw?.pid;
      if (pid === undefined) throw new Error('RGW lab: radosgw is not running');
      process.kill(pid, 'SIGSTOP');
    },
    resumeGateway(): void {
      const pid = children.rgw?.pid;
      if (pid !== undefined) process.kill(pid, 'SIGCONT');
    },
    logTail,
    stop,
  };
}
