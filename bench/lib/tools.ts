// Building the C load generators and running them under the sync-point protocol
// (bench/tools/common.h): at each "SYNC <label>" line the harness samples the server's CPU,
// then releases the tool with one line on its stdin.

import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { treeCpuSeconds } from './proc.js';

export interface BuiltTools {
  echo: string;
  randio: string;
  meta: string;
}

function newer(a: string, b: string): boolean {
  return !existsSync(b) || statSync(a).mtimeMs > statSync(b).mtimeMs;
}

/** Compiles bench/tools/*.c into outDir when a source is newer than its binary. Throws on failure. */
export function buildTools(toolsDir: string, outDir: string): BuiltTools {
  mkdirSync(outDir, { recursive: true });
  let smbFlags: string[] = [];
  const need = (name: keyof BuiltTools, libsmb: boolean): string => {
    const src = join(toolsDir, `${name}.c`);
    const bin = join(outDir, name);
    if (newer(src, bin) || newer(join(toolsDir, 'common.h'), bin)) {
      if (libsmb && smbFlags.length === 0) {
        try {
          smbFlags = execFileSync('pkg-config', ['--cflags', '--libs', 'smbclient'], { encoding: 'utf8' }).trim().split(/\s+/);
        } catch {
          throw new Error('pkg-config smbclient failed: install libsmbclient-dev');
        }
      }
      try {
        execFileSync('gcc', ['-O2', '-Wall', '-Wextra', '-o', bin, src, ...(libsmb ? smbFlags : [])], {
          encoding: 'utf8',
          stdio: ['ignore', 'pipe', 'pipe'],
        });
      } catch (e) {
        const err = e as { stderr?: string; message: string };
        throw new Error(`gcc ${name}.c failed: ${err.stderr ?? err.message}`);
      }
    }
    return bin;
  };
  return { echo: need('echo', false), randio: need('randio', true), meta: need('meta', true) };
}

export interface ToolRun {
  /** The last JSON object the tool printed (its result, or {error}). */
  json: Record<string, unknown> | null;
  /** Server CPU seconds sampled at each sync point, by label. */
  cpuAt: Map<string, number>;
  exitCode: number | null;
  stderr: string;
  timedOut: boolean;
}

/**
 * Runs a tool with -S, sampling serverPid's CPU at every sync point. The tool runs in its own
 * process group so a timeout can kill it together with its forked workers.
 */
export function runTool(bin: string, args: string[], serverPid: number, timeoutMs: number): Promise<ToolRun> {
  return new Promise((resolve) => {
    const child = spawn(bin, ['-S', ...args], { stdio: ['pipe', 'pipe', 'pipe'], detached: true });
    const cpuAt = new Map<string, number>();
    let json: Record<string, unknown> | null = null;
    let stderr = '';
    let pending = '';
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // already gone
      }
    }, timeoutMs);
    child.stdin.on('error', () => {
      // the tool exited before reading its release line
    });
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      pending += chunk;
      let nl: number;
      while ((nl = pending.indexOf('\n')) >= 0) {
        const line = pending.slice(0, nl).trim();
        pending = pending.slice(nl + 1);
        if (line.startsWith('SYNC ')) {
          cpuAt.set(line.slice(5), treeCpuSeconds(serverPid));
          child.stdin.write('\n');
        } else if (line.startsWith('{')) {
          try {
            json = JSON.parse(line) as Record<string, unknown>;
          } catch {
            stderr += `unparsable output line: ${line}\n`;
          }
        }
      }
    });
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => {
      if (stderr.length < 64 * 1024) stderr += chunk;
    });
    child.on('error', (e) => {
      stderr += String(e);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ json, cpuAt, exitCode: code, stderr, timedOut });
    });
  });
}

/** CPU seconds between two sync labels, or null if either was not reached. */
export function cpuBetween(run: ToolRun, from: string, to: string): number | null {
  const a = run.cpuAt.get(from);
  const b = run.cpuAt.get(to);
  return a === undefined || b === undefined ? null : b - a;
}

/** A one-line reason why a tool run did not produce a result. */
export function toolFailure(run: ToolRun): string | null {
  if (run.timedOut) return 'timed out';
  if (run.json === null) return `no result (exit ${run.exitCode}): ${run.stderr.trim().split('\n').slice(-2).join(' | ')}`;
  if (typeof run.json['error'] === 'string') return run.json['error'] as string;
  return null;
}
