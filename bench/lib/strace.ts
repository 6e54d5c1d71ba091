// Counting a server's fsync-family system calls over a stretch of work (`npm run bench:opens`):
// `strace -f -c -w -e trace=fdatasync,fsync,... -p PID...` attached to every process of the server's tree
// (Samba serves each connection from its own smbd child, Node runs LMDB's commits on its threads;
// -f with -p attaches every thread of those processes and follows new children), stopped with SIGINT,
// which makes strace detach and write its summary table (-o FILE). -w: the times are wall-clock
// latencies of the calls (without it strace -c reports the system CPU time spent in them, which for an
// fsync waiting on the disk is a small part).

import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';

export interface SyscallCount {
  calls: number;
  /** strace's own figure (wall-clock time inside the call, as seen under tracing), µs per call. */
  usPerCall: number;
}

export interface StraceSession {
  /** Detaches; resolves with the counts per system call name (missing: not called). */
  stop(): Promise<Map<string, SyscallCount>>;
}

const syscalls = ['fdatasync', 'fsync', 'sync_file_range', 'msync'];

/** Attaches strace to `pids`; resolves once every one of them is attached. */
export async function attachStrace(pids: number[], outFile: string, timeoutMs = 10_000): Promise<StraceSession> {
  const args = ['-f', '-c', '-w', '-o', outFile, '-e', `trace=${syscalls.join(',')}`, ...pids.flatMap((p) => ['-p', String(p)])];
  const child = spawn('strace', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`strace did not attach within ${timeoutMs} ms: ${err.trim()}`));
    }, timeoutMs);
    const check = (): void => {
      const attached = new Set([...err.matchAll(/Process (\d+) attached/g)].map((m) => Number(m[1])));
      if (pids.every((p) => attached.has(p))) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString('utf8');
      check();
    });
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`strace exited (${code}) before attaching: ${err.trim()}`));
    });
  });
  return {
    async stop() {
      child.kill('SIGINT');
      await exited;
      return parseStraceSummary(readFileSync(outFile, 'utf8'));
    },
  };
}

/** The rows of `strace -c` output: "% time seconds usecs/call calls [errors] syscall". */
export function parseStraceSummary(text: string): Map<string, SyscallCount> {
  const out = new Map<string, SyscallCount>();
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length < 5 || !/^[\d.]+$/.test(f[0]!)) continue;
    const name = f[f.length - 1]!;
    if (!/^[a-z_0-9]+$/.test(name) || name === 'total') continue;
    out.set(name, { calls: Number(f[3]), usPerCall: Number(f[2]) });
  }
  return out;
}
