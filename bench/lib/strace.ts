// Counting a server's fsync-family system calls over a stretch of work (`npm run bench:opens`):
// `strace -f -y -T -e trace=fdatasync,fsync,... -p PID...` attached to every process of the server's
// tree (Samba serves each connection from its own smbd child, Node runs LMDB's asynchronous commits on
// its own threads; -f with -p attaches every thread of those processes and follows new children),
// stopped with SIGINT, which makes strace detach. Each call is logged (-o FILE) with the file its
// descriptor refers to (-y) and its wall-clock duration (-T), so the count is split by file.

import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';

export interface SyscallCount {
  calls: number;
  /** Sum of the calls' wall-clock durations as strace saw them (tracing adds to it), µs. */
  totalUs: number;
}

export interface StraceSession {
  /** Detaches; resolves with the counts per "syscall file" (file: the descriptor's path). */
  stop(): Promise<Map<string, SyscallCount>>;
}

const syscalls = ['fdatasync', 'fsync', 'sync_file_range', 'msync', 'sync', 'syncfs'];

/** Attaches strace to `pids`; resolves once every one of them is attached. */
export async function attachStrace(pids: number[], outFile: string, timeoutMs = 10_000): Promise<StraceSession> {
  const args = ['-f', '-y', '-T', '-o', outFile, '-e', `trace=${syscalls.join(',')}`, ...pids.flatMap((p) => ['-p', String(p)])];
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
      return parseStraceLog(readFileSync(outFile, 'utf8'));
    },
  };
}

/**
 * Lines of `strace -f -y -T -o FILE`: "PID fdatasync(12</path/data.mdb>) = 0 <0.000123>", or, when
 * another thread's call came in between, "PID fdatasync(12</path> <unfinished ...>" and later
 * "PID <... fdatasync resumed>) = 0 <0.000123>".
 */
export function parseStraceLog(text: string): Map<string, SyscallCount> {
  const out = new Map<string, SyscallCount>();
  const pending = new Map<string, string>();
  const add = (key: string, seconds: number): void => {
    const c = out.get(key) ?? { calls: 0, totalUs: 0 };
    c.calls++;
    c.totalUs += Number.isFinite(seconds) ? seconds * 1e6 : 0;
    out.set(key, c);
  };
  const keyOf = (call: string, args: string): string => {
    const path = /^\d+<(.*)>/.exec(args)?.[1];
    return path !== undefined ? `${call} ${path}` : call;
  };
  for (const line of text.split('\n')) {
    const whole = /^(\d+)\s+(\w+)\((.*?)\)\s+=\s+-?\d+.*<([\d.]+)>\s*$/.exec(line);
    if (whole) {
      add(keyOf(whole[2]!, whole[3]!), Number(whole[4]));
      continue;
    }
    const start = /^(\d+)\s+(\w+)\((.*?)\s*<unfinished \.\.\.>\s*$/.exec(line);
    if (start) {
      pending.set(start[1]!, keyOf(start[2]!, start[3]!));
      continue;
    }
    const resumed = /^(\d+)\s+<\.\.\. (\w+) resumed>.*<([\d.]+)>\s*$/.exec(line);
    if (resumed) {
      add(pending.get(resumed[1]!) ?? resumed[2]!, Number(resumed[3]));
      pending.delete(resumed[1]!);
    }
  }
  return out;
}
