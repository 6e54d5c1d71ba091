// Launchers for real SMB servers used by the conformance and end-to-end tests: a private Samba smbd
// (the reference implementation, see shared/design/TOOLS.md) and Tessera itself (bin/tessera.js).
// Both bind to loopback only, wait until the TCP port accepts connections, keep a bounded copy of
// their output for diagnostics, and are killed (by pid, never by name) when the test process exits.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface RunningServer {
  host: string;
  port: number;
  pid: number;
  stop(): Promise<void>;
  logs(): string;
}

export interface ShareSpec {
  name: string;
  path: string;
  encrypt?: boolean;
}

export interface SambaOptions {
  port: number;
  host?: string;
  shares: ShareSpec[];
  user: string;
  password: string;
  /** Extra [global] parameters; they override the defaults written by startSamba. */
  globals?: Record<string, string>;
  /** Directory for smb.conf, state and logs; a fresh temp dir (removed on stop) when omitted. */
  workDir?: string;
}

export interface TesseraOptions {
  port: number;
  host?: string;
  shares: ShareSpec[];
  users: { name: string; password: string }[];
  extraArgs?: string[];
  env?: Record<string, string>;
  /** Working directory of the process (default: the repository root). */
  cwd?: string;
}

/** Root of the repository (this file is test/helpers/servers.ts). */
export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

const logBytesMax = 4 * 1024 * 1024;
const startTimeoutMs = 30_000;
const stopTimeoutMs = 10_000;

/** A port that was free a moment ago on 127.0.0.1 (the kernel picks it). */
export async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      if (address === null || typeof address === 'string') {
        server.close();
        reject(new Error('freePort: no port assigned'));
        return;
      }
      const port = address.port;
      server.close(() => resolvePort(port));
    });
  });
}

function tryConnect(host: string, port: number): Promise<boolean> {
  return new Promise((resolveConnect) => {
    const socket = new Socket();
    const done = (ok: boolean): void => {
      socket.removeAllListeners();
      socket.destroy();
      resolveConnect(ok);
    };
    socket.setTimeout(1000);
    socket.once('connect', () => done(true));
    socket.once('timeout', () => done(false));
    socket.once('error', () => done(false));
    socket.connect(port, host);
  });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Refuses a port something already listens on. smbd binds with SO_REUSEPORT, so a second smbd on a
 * taken port starts fine and the kernel then spreads connections over both servers.
 */
async function assertPortFree(host: string, port: number): Promise<void> {
  if (await tryConnect(host, port)) throw new Error(`${host}:${port} is already in use; pick another port (freePort())`);
}

/** Polls a TCP connect until it succeeds; throws after timeoutMs. */
export async function waitForPort(host: string, port: number, timeoutMs: number, alive?: () => string | null): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await tryConnect(host, port)) return;
    const dead = alive?.() ?? null;
    if (dead !== null) throw new Error(`server exited before listening on ${host}:${port}: ${dead}`);
    if (Date.now() > deadline) throw new Error(`nothing listens on ${host}:${port} after ${timeoutMs} ms`);
    await sleep(50);
  }
}

/** Keeps the last logBytesMax bytes written to it. */
class BoundedLog {
  private chunks: Buffer[] = [];
  private bytes = 0;
  private droppedBytes = 0;

  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.bytes += chunk.length;
    while (this.bytes > logBytesMax && this.chunks.length > 1) {
      const first = this.chunks.shift()!;
      this.bytes -= first.length;
      this.droppedBytes += first.length;
    }
  }

  text(): string {
    const head = this.droppedBytes > 0 ? `[... ${this.droppedBytes} earlier bytes dropped ...]\n` : '';
    return head + Buffer.concat(this.chunks).toString('utf8');
  }
}

// Every server this module started, with a synchronous last-resort kill run if the test process
// exits (or is interrupted) before the test stopped it.
const liveServers = new Map<number, () => void>();
const childrenByPid = new Map<number, ChildProcess>();
let exitHookInstalled = false;

function sigkill(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

function track(pid: number, child: ChildProcess, killSync: () => void): void {
  liveServers.set(pid, killSync);
  childrenByPid.set(pid, child);
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  const killAll = (): void => {
    for (const kill of liveServers.values()) kill();
    liveServers.clear();
  };
  process.on('exit', killAll);
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    const onSignal = (): void => {
      killAll();
      // Keep the default behaviour (terminate) unless someone else handles the signal too.
      if (process.listenerCount(signal) === 1) process.exit(128 + (signal === 'SIGINT' ? 2 : 15));
    };
    process.once(signal, onSignal);
  }
}

function untrack(pid: number): void {
  liveServers.delete(pid);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Sends SIGTERM, waits, then SIGKILL; resolves when the process is gone. */
async function killPid(pid: number, child?: ChildProcess): Promise<void> {
  const exited = child
    ? new Promise<void>((r) => {
        if (child.exitCode !== null || child.signalCode !== null) r();
        else child.once('exit', () => r());
      })
    : null;
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  const deadline = Date.now() + stopTimeoutMs;
  while (Date.now() < deadline) {
    if (exited ? child!.exitCode !== null || child!.signalCode !== null : !isAlive(pid)) break;
    await sleep(50);
  }
  if (exited ? child!.exitCode === null && child!.signalCode === null : isAlive(pid)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone meanwhile
    }
    if (exited) await exited;
    else while (isAlive(pid)) await sleep(20);
  }
}

function collectOutput(child: ChildProcess, log: BoundedLog): void {
  child.stdout?.on('data', (c: Buffer) => log.push(c));
  child.stderr?.on('data', (c: Buffer) => log.push(c));
}

function exitDescription(child: ChildProcess): string | null {
  if (child.exitCode !== null) return `exit code ${child.exitCode}`;
  if (child.signalCode !== null) return `signal ${child.signalCode}`;
  return null;
}

// ---------------------------------------------------------------------------------------------
// Samba

function run(cmd: string, args: string[], input?: string): { status: number | null; out: string } {
  const r = spawnSync(cmd, args, { input, encoding: 'utf8', timeout: 30_000 });
  return { status: r.status, out: `${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? String(r.error) : ''}` };
}

/** Creates the Unix account an SMB user maps to (Samba requires one), as root. */
function ensureUnixUser(name: string): void {
  if (run('id', ['-u', name]).status === 0) return;
  if (process.getuid?.() !== 0) throw new Error(`Unix user ${name} is missing and this process is not root`);
  const r = run('useradd', ['-M', '-s', '/usr/sbin/nologin', name]);
  if (r.status !== 0 && run('id', ['-u', name]).status !== 0) throw new Error(`useradd ${name} failed: ${r.out}`);
}

/** Adds o+x to dir and its ancestors that lack it, so a non-root user can reach a share below. */
function makeTraversable(dir: string): void {
  for (let d = dir; d !== dirname(d); d = dirname(d)) {
    const mode = statSync(d).mode;
    if ((mode & 0o001) === 0) chmodSync(d, (mode & 0o7777) | 0o001);
  }
}

function confValue(v: string): string {
  if (/[\n\r]/.test(v)) throw new Error(`smb.conf value contains a newline: ${JSON.stringify(v)}`);
  return v;
}

/** Pids (other than our own) whose command line mentions needle: smbd children, samba-dcerpcd, rpcd_*. */
function pidsMentioning(needle: string): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    if (pid === process.pid) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
      if (cmdline.includes(needle)) found.push(pid);
    } catch {
      // exited or not ours to read
    }
  }
  return found;
}

export async function startSamba(opts: SambaOptions): Promise<RunningServer> {
  const host = opts.host ?? '127.0.0.1';
  await assertPortFree(host, opts.port);
  const ownWorkDir = opts.workDir === undefined;
  const workDir = opts.workDir ?? mkdtempSync(join(tmpdir(), 'tessera-samba-'));
  mkdirSync(workDir, { recursive: true });
  for (const d of ['private', 'lock', 'state', 'cache', 'pid', 'ncalrpc', 'log']) mkdirSync(join(workDir, d), { recursive: true });
  // smbd serves a session as the share user: it must reach its lock and state directories, or it
  // takes the other smbd processes for dead and never breaks their oplocks or leases.
  makeTraversable(join(workDir, 'lock'));
  for (const d of ['lock', 'state', 'cache']) chmodSync(join(workDir, d), 0o755);

  ensureUnixUser(opts.user);
  const uid = Number(run('id', ['-u', opts.user]).out.trim());
  const gid = Number(run('id', ['-g', opts.user]).out.trim());
  for (const share of opts.shares) {
    mkdirSync(share.path, { recursive: true });
    // smbd acts as the mapped Unix user: it must own the share's files and be able to reach them
    // (mkdtemp makes 0700 directories, so parents get o+x added).
    if (process.getuid?.() === 0) {
      run('chown', ['-R', `${uid}:${gid}`, share.path]);
      makeTraversable(dirname(resolve(share.path)));
    }
  }

  const globals: Record<string, string> = {
    'workgroup': 'WORKGROUP',
    'server role': 'standalone server',
    'netbios name': `TESSCMP${opts.port}`.slice(0, 15),
    'smb ports': String(opts.port),
    'interfaces': host === '127.0.0.1' ? 'lo' : `${host}/8`,
    'bind interfaces only': 'yes',
    'disable netbios': 'yes',
    'private dir': join(workDir, 'private'),
    'lock directory': join(workDir, 'lock'),
    'state directory': join(workDir, 'state'),
    'cache directory': join(workDir, 'cache'),
    'pid directory': join(workDir, 'pid'),
    'ncalrpc dir': join(workDir, 'ncalrpc'),
    'log file': join(workDir, 'log', 'log.%m'),
    'max log size': '0',
    'log level': '1',
    'passdb backend': `tdbsam:${join(workDir, 'private', 'passdb.tdb')}`,
    'server min protocol': 'SMB2_02',
    'server signing': 'auto',
    // Durable handles as on Windows (TOOLS.md): no kernel oplocks/share modes/POSIX locks.
    'kernel oplocks': 'no',
    'kernel share modes': 'no',
    'posix locking': 'no',
    'durable handles': 'yes',
    'smb2 leases': 'yes',
    'load printers': 'no',
    'printing': 'bsd',
    'printcap name': '/dev/null',
    'disable spoolss': 'yes',
    'map to guest': 'never',
    // NT ACLs and named streams in xattrs, as Windows has them (smb2.compound.related4/7 need the
    // ACLs, smb2.compound.compound-padding a stream).
    'vfs objects': 'acl_xattr streams_xattr',
    'usershare path': '',
    ...opts.globals,
  };
  const lines = ['[global]'];
  for (const [k, v] of Object.entries(globals)) lines.push(`\t${k} = ${confValue(v)}`);
  for (const share of opts.shares) {
    lines.push('', `[${confValue(share.name)}]`);
    lines.push(`\tpath = ${confValue(share.path)}`, '\tread only = no', '\tbrowseable = yes');
    if (share.encrypt) lines.push('\tsmb encrypt = required');
  }
  const conf = join(workDir, 'smb.conf');
  writeFileSync(conf, lines.join('\n') + '\n');

  const pw = run('smbpasswd', ['-c', conf, '-s', '-a', opts.user], `${opts.password}\n${opts.password}\n`);
  if (pw.status !== 0) throw new Error(`smbpasswd -a ${opts.user} failed: ${pw.out}`);

  const log = new BoundedLog();
  // smbd signals its whole process group on shutdown (kill(0, SIGTERM)): run it in a group of its
  // own (detached = setsid) or stopping it would kill the test process too.
  const child = spawn('smbd', ['--foreground', '--no-process-group', '-s', conf], {
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  collectOutput(child, log);
  const spawnError = new Promise<never>((_, reject) => child.once('error', reject));
  await Promise.race([new Promise<void>((r) => child.once('spawn', () => r())), spawnError]);
  const pid = child.pid!;
  track(pid, child, () => {
    sigkill(pid);
    for (const p of pidsMentioning(conf)) sigkill(p);
  });

  const stop = async (): Promise<void> => {
    untrack(pid);
    // samba-dcerpcd and rpcd_* helpers detach from smbd; they carry the config path on their
    // command line, so find them by it (they are ours: the config lives in our private work dir).
    const helpers = pidsMentioning(conf).filter((p) => p !== pid);
    await killPid(pid, child);
    const more = new Set([...helpers, ...pidsMentioning(conf)]);
    await Promise.all([...more].map((p) => killPid(p)));
    if (ownWorkDir) rmSync(workDir, { recursive: true, force: true });
  };

  try {
    await waitForPort(host, opts.port, startTimeoutMs, () => exitDescription(child));
  } catch (e) {
    const logs = log.text();
    await stop();
    throw new Error(`${(e as Error).message}\n--- smbd output ---\n${logs}`);
  }

  return {
    host,
    port: opts.port,
    pid,
    stop,
    logs: () => {
      let files = '';
      let names: string[] = [];
      try {
        names = readdirSync(join(workDir, 'log'));
      } catch {
        // work dir removed after stop
      }
      for (const f of names) {
        try {
          const text = readFileSync(join(workDir, 'log', f), 'utf8');
          files += `--- ${f} ---\n${text.length > logBytesMax ? text.slice(-logBytesMax) : text}\n`;
        } catch {
          // a directory (cores/) or a file removed meanwhile
        }
      }
      return log.text() + files;
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Tessera

function newestMtimeMs(dir: string, suffix: string): number {
  let newest = 0;
  if (!existsSync(dir)) return 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestMtimeMs(p, suffix));
    else if (entry.name.endsWith(suffix)) newest = Math.max(newest, statSync(p).mtimeMs);
  }
  return newest;
}

let buildChecked = false;

/**
 * Builds dist/ with `npm run build` when it is missing or older than src/ (once per test process).
 * Set TESSERA_SKIP_BUILD=1 to use dist/ as it is.
 */
export function ensureBuilt(): void {
  if (buildChecked || process.env['TESSERA_SKIP_BUILD'] === '1') return;
  const entry = join(repoRoot, 'dist', 'cli', 'main.js');
  // A marker written only after a build that succeeded: a failed build (tsc still emits) leaves dist
  // newer than src, which must not count as up to date.
  const marker = join(repoRoot, 'dist', '.build-ok');
  const stale =
    !existsSync(entry) ||
    !existsSync(marker) ||
    newestMtimeMs(join(repoRoot, 'src'), '.ts') > statSync(marker).mtimeMs;
  if (stale) {
    const r = spawnSync('npm', ['run', 'build'], { cwd: repoRoot, encoding: 'utf8', timeout: 300_000 });
    if (!existsSync(entry)) throw new Error(`npm run build did not produce ${entry}:\n${r.stdout}${r.stderr}`);
    if (r.status !== 0) throw new Error(`npm run build failed (exit ${r.status}):\n${r.stdout}${r.stderr}`);
    writeFileSync(marker, new Date().toISOString() + '\n');
  }
  buildChecked = true;
}

/** The command-line arguments of `tessera serve` for these options (see briefs/cli-contract.md). */
export function tesseraArgs(opts: TesseraOptions): string[] {
  const host = opts.host ?? '127.0.0.1';
  const args = ['serve', '--listen', `${host}:${opts.port}`];
  for (const share of opts.shares) {
    args.push('--share', `${share.name}=${share.path}`);
    if (share.encrypt) args.push('--encrypt-share', share.name);
  }
  for (const user of opts.users) args.push('--user', `${user.name}:${user.password}`);
  args.push(...(opts.extraArgs ?? []));
  return args;
}

export async function startTessera(opts: TesseraOptions): Promise<RunningServer> {
  const host = opts.host ?? '127.0.0.1';
  ensureBuilt();
  await assertPortFree(host, opts.port);
  for (const share of opts.shares) mkdirSync(share.path, { recursive: true });
  const log = new BoundedLog();
  const child = spawn(process.execPath, [join(repoRoot, 'bin', 'tessera.js'), ...tesseraArgs(opts)], {
    cwd: opts.cwd ?? repoRoot,
    env: { ...process.env, ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  collectOutput(child, log);
  const spawnError = new Promise<never>((_, reject) => child.once('error', reject));
  await Promise.race([new Promise<void>((r) => child.once('spawn', () => r())), spawnError]);
  const pid = child.pid!;
  track(pid, child, () => sigkill(pid));
  const stop = async (): Promise<void> => {
    untrack(pid);
    await killPid(pid, child);
  };
  try {
    await waitForPort(host, opts.port, startTimeoutMs, () => exitDescription(child));
  } catch (e) {
    await stop();
    throw new Error(`${(e as Error).message}\n--- tessera output ---\n${log.text()}`);
  }
  return { host, port: opts.port, pid, stop, logs: () => log.text() };
}

/** True while the server's main process exists (used by robustness tests). */
export function serverAlive(server: RunningServer): boolean {
  const child = childrenByPid.get(server.pid);
  if (child) return child.exitCode === null && child.signalCode === null;
  return isAlive(server.pid);
}
