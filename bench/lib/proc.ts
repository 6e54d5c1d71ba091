// CPU time of a server's process tree, read from /proc (Linux only).
//
// A server's CPU at one instant = sum over the root process and every live descendant of
// utime + stime + cutime + cstime (proc(5) fields 14-17). When a descendant exits and its
// parent reaps it, its whole time moves into the parent's cutime/cstime, so the sum only grows
// and a difference between two samples counts exactly the CPU used in between, including by
// smbd children that served a connection and exited (as long as the reaping parent is in the
// tree; smbd reaps its connection children). Detached helpers (samba-dcerpcd) are not in the
// tree and are not counted; none of the workloads talk to them.

import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

let ticksPerSecond = 0;

/** The kernel's USER_HZ (CLK_TCK), normally 100. */
export function clockTicksPerSecond(): number {
  if (ticksPerSecond === 0) {
    try {
      ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      ticksPerSecond = 100;
    }
  }
  return ticksPerSecond;
}

interface ProcStat {
  pid: number;
  ppid: number;
  /** utime + stime + cutime + cstime, in clock ticks. */
  ticks: number;
}

function readStat(pid: number): ProcStat | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null; // exited meanwhile
  }
  // The command name (field 2) is in parentheses and may contain spaces or ')'.
  const close = text.lastIndexOf(')');
  if (close < 0) return null;
  const f = text.slice(close + 2).split(' ');
  // f[0] is field 3 (state), so field n is f[n - 3].
  const ppid = Number(f[1]);
  const ticks = Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]);
  if (!Number.isFinite(ppid) || !Number.isFinite(ticks)) return null;
  return { pid, ppid, ticks };
}

/** Pids of root and all its live descendants. */
export function processTree(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const st = readStat(Number(entry));
    if (st === null) continue;
    const list = children.get(st.ppid);
    if (list) list.push(st.pid);
    else children.set(st.ppid, [st.pid]);
  }
  const out: number[] = [];
  const stack = [root];
  while (stack.length > 0) {
    const pid = stack.pop()!;
    out.push(pid);
    for (const c of children.get(pid) ?? []) stack.push(c);
  }
  return out;
}

/** CPU seconds consumed so far by root's process tree (see the header comment). */
export function treeCpuSeconds(root: number): number {
  let ticks = 0;
  for (const pid of processTree(root)) ticks += readStat(pid)?.ticks ?? 0;
  return ticks / clockTicksPerSecond();
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Waits (bounded) until the tree holds no process that was not in `before`: used after a client
 * disconnects so Samba's per-connection smbd has exited and been reaped before the end sample.
 */
export async function waitTreeSettled(root: number, before: readonly number[], timeoutMs: number): Promise<boolean> {
  const known = new Set(before);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const extra = processTree(root).filter((p) => !known.has(p));
    if (extra.length === 0) return true;
    if (Date.now() > deadline) return false;
    await sleep(20);
  }
}
