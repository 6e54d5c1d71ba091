// A real etcd cluster for tests and benchmarks (shared/design/TOOLS.md, etcd section): N members of
// the Debian `etcd` 3.4 binary on 127.0.0.1, free ports picked by the kernel, data directories on
// /dev/shm (RAM: 3.4 has no --unsafe-no-fsync) or os.tmpdir() when /dev/shm is missing, each
// member's output in a log file beside its data. Members are killed by pid only: SIGKILL by default,
// since a SIGTERM'd member can take more than 5 s to exit. A process-exit hook kills whatever a test
// forgot to stop.

import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, openSync, closeSync, readFileSync, rmSync, statSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './servers.js';

export interface EtcdClusterOptions {
  /** Members (default 3). */
  members?: number;
  /** Names the cluster token and the directory (default 'etcd'). */
  name?: string;
  /** Extra flags for every member (e.g. ['--auto-compaction-retention=1']). */
  extraArgs?: string[];
  /** Milliseconds to wait for the cluster (or a restarted member) to become healthy (default 30 s). */
  startTimeoutMs?: number;
}

export interface EtcdCluster {
  /** Client URLs (http://127.0.0.1:port), one per member, in member order. */
  readonly endpoints: string[];
  /** Member process ids; undefined for a member that is not running. */
  readonly pids: (number | undefined)[];
  /** Index of the current leader (polls the members' status until one is agreed). */
  leaderIndex(timeoutMs?: number): Promise<number>;
  /** Kills member i (by pid) and waits for it to exit. */
  kill(i: number, signal?: NodeJS.Signals): Promise<void>;
  /** Starts member i again on its data directory and ports; resolves once it is healthy. */
  restart(i: number): Promise<void>;
  /** Whether member i answers /health (it has a leader and serves a linearizable read). */
  healthy(i: number): Promise<boolean>;
  /** The last `bytes` of member i's log (diagnostics). */
  logTail(i: number, bytes?: number): string;
  /** Kills every member still running (SIGKILL, by pid) and removes the data and log directories. */
  stop(): Promise<void>;
}

interface Member {
  name: string;
  clientPort: number;
  peerPort: number;
  dataDir: string;
  logFile: string;
  child: ChildProcess | undefined;
  exited: Promise<void> | undefined;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

// Last-resort cleanup: members still running when the test process exits are SIGKILLed by pid.
const livePids = new Set<number>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const pid of livePids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  });
}

function baseDir(): string {
  try {
    if (existsSync('/dev/shm') && statSync('/dev/shm').isDirectory()) return '/dev/shm';
  } catch {
    // fall through
  }
  return tmpdir();
}

function httpGetJson(port: number, path: string, body: string | undefined, timeoutMs: number): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, path, method: body === undefined ? 'GET' : 'POST', timeout: timeoutMs },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          try {
            resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')));
          } catch (err) {
            reject(err);
          }
        });
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end(body);
  });
}

export async function startEtcdCluster(options: EtcdClusterOptions = {}): Promise<EtcdCluster> {
  const count = options.members ?? 3;
  const name = options.name ?? 'etcd';
  const startTimeoutMs = options.startTimeoutMs ?? 30_000;
  if (!Number.isInteger(count) || count < 1 || count > 9) throw new Error(`startEtcdCluster: members must be 1..9, got ${count}`);
  if (!/^[A-Za-z0-9_-]{1,40}$/.test(name)) throw new Error(`startEtcdCluster: bad name ${JSON.stringify(name)}`);
  installExitHook();

  const root = mkdtempSync(join(baseDir(), `tessera-${name}-`));
  const members: Member[] = [];
  const taken = new Set<number>();
  const pickPort = async (): Promise<number> => {
    for (;;) {
      const p = await freePort();
      if (!taken.has(p)) {
        taken.add(p);
        return p;
      }
    }
  };
  for (let i = 0; i < count; i++) {
    const dir = join(root, `m${i}`);
    mkdirSync(dir, { recursive: true });
    members.push({
      name: `m${i}`,
      clientPort: await pickPort(),
      peerPort: await pickPort(),
      dataDir: join(dir, 'data'),
      logFile: join(dir, 'etcd.log'),
      child: undefined,
      exited: undefined,
    });
  }
  const initialCluster = members.map((m) => `${m.name}=http://127.0.0.1:${m.peerPort}`).join(',');
  const token = `${name}-${process.pid}-${Date.now()}`;

  const spawnMember = (m: Member): void => {
    const fd = openSync(m.logFile, 'a');
    const args = [
      `--name=${m.name}`,
      `--data-dir=${m.dataDir}`,
      `--listen-client-urls=http://127.0.0.1:${m.clientPort}`,
      `--advertise-client-urls=http://127.0.0.1:${m.clientPort}`,
      `--listen-peer-urls=http://127.0.0.1:${m.peerPort}`,
      `--initial-advertise-peer-urls=http://127.0.0.1:${m.peerPort}`,
      `--initial-cluster=${initialCluster}`,
      '--initial-cluster-state=new',
      `--initial-cluster-token=${token}`,
      '--logger=zap',
      '--log-outputs=stderr',
      ...(options.extraArgs ?? []),
    ];
    const child = spawn('etcd', args, { stdio: ['ignore', fd, fd] });
    closeSync(fd);
    m.child = child;
    const pid = child.pid;
    if (pid === undefined) throw new Error(`etcd ${m.name} did not start (is the etcd binary installed?)`);
    livePids.add(pid);
    m.exited = new Promise<void>((resolve) => {
      child.once('exit', () => {
        livePids.delete(pid);
        if (m.child === child) m.child = undefined;
        resolve();
      });
      child.once('error', () => {
        livePids.delete(pid);
        if (m.child === child) m.child = undefined;
        resolve();
      });
    });
  };

  const logTail = (i: number, bytes = 4000): string => {
    try {
      const text = readFileSync(members[i]!.logFile, 'utf8');
      return text.slice(-bytes);
    } catch {
      return '(no log)';
    }
  };

  const healthy = async (i: number): Promise<boolean> => {
    try {
      const res = (await httpGetJson(members[i]!.clientPort, '/health', undefined, 2000)) as { health?: unknown };
      return res.health === 'true' || res.health === true;
    } catch {
      return false;
    }
  };

  const waitHealthy = async (indexes: number[]): Promise<void> => {
    const deadline = Date.now() + startTimeoutMs;
    for (;;) {
      const states = await Promise.all(indexes.map((i) => healthy(i)));
      if (states.every(Boolean)) return;
      const dead = indexes.find((i) => members[i]!.child === undefined);
      if (dead !== undefined) throw new Error(`etcd member ${dead} exited during start:\n${logTail(dead)}`);
      if (Date.now() > deadline) {
        const bad = indexes.filter((_, k) => !states[k]);
        throw new Error(`etcd members ${bad.join(',')} not healthy after ${startTimeoutMs} ms:\n${bad.map((b) => logTail(b)).join('\n---\n')}`);
      }
      await sleep(100);
    }
  };

  const kill = async (i: number, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> => {
    const m = members[i];
    if (m === undefined) throw new Error(`no member ${i}`);
    const child = m.child;
    if (child === undefined || child.pid === undefined) return;
    try {
      process.kill(child.pid, signal);
    } catch {
      // already gone
    }
    await m.exited;
  };

  const stop = async (): Promise<void> => {
    await Promise.all(members.map((_, i) => kill(i, 'SIGKILL')));
    rmSync(root, { recursive: true, force: true });
  };

  try {
    for (const m of members) spawnMember(m);
    await waitHealthy(members.map((_, i) => i));
  } catch (err) {
    await stop();
    throw err;
  }

  return {
    endpoints: members.map((m) => `http://127.0.0.1:${m.clientPort}`),
    get pids() {
      return members.map((m) => m.child?.pid);
    },
    async leaderIndex(timeoutMs = 15_000): Promise<number> {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const ids = new Map<string, number>();
        const leaders = new Set<string>();
        await Promise.all(
          members.map(async (m, i) => {
            if (m.child === undefined) return;
            try {
              const st = (await httpGetJson(m.clientPort, '/v3/maintenance/status', '{}', 1000)) as {
                header?: { member_id?: string };
                leader?: string;
              };
              if (st.header?.member_id !== undefined) ids.set(st.header.member_id, i);
              if (st.leader !== undefined && st.leader !== '0') leaders.add(st.leader);
            } catch {
              // member not answering; others decide
            }
          }),
        );
        if (leaders.size === 1) {
          const [leader] = [...leaders];
          const idx = ids.get(leader!);
          if (idx !== undefined) return idx;
        }
        if (Date.now() > deadline) throw new Error(`etcd: no agreed leader after ${timeoutMs} ms`);
        await sleep(100);
      }
    },
    kill,
    async restart(i: number): Promise<void> {
      const m = members[i];
      if (m === undefined) throw new Error(`no member ${i}`);
      if (m.child !== undefined) throw new Error(`etcd member ${i} is still running (pid ${m.child.pid})`);
      spawnMember(m);
      await waitHealthy([i]);
    },
    healthy,
    logTail,
    stop,
  };
}
