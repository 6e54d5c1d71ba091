// Driving Samba's smbclient from tests: run one invocation, collect its output, and parse what
// the tests check (NT_STATUS errors, `ls` listings, transfer rates). smbclient's exit code only
// reflects the last command of a -c list, so every test must look at the errors as well.

import { execFile, spawn as spawnChild } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { expect } from 'vitest';

export interface SmbclientRun {
  /** Exit code (null when killed by the timeout). */
  code: number | null;
  stdout: string;
  stderr: string;
  /** Every NT_STATUS_* name printed (stdout and stderr), in order. */
  statuses: string[];
  durationMs: number;
  args: string[];
}

export interface SmbclientOptions {
  host: string;
  port: number;
  share?: string;
  user: string;
  password: string;
  /** -m: the highest dialect, e.g. SMB3_11. */
  maxProtocol?: string;
  /** --client-protection=sign|encrypt|off. */
  protection?: 'sign' | 'encrypt' | 'off';
  /** -c command list (joined with '; '). */
  commands?: string[];
  /** -L: list shares instead of connecting to one. */
  list?: boolean;
  extraArgs?: string[];
  timeoutMs?: number;
}

export function smbclientArgs(o: SmbclientOptions): string[] {
  const args: string[] = [];
  if (o.list) args.push('-L', `//${o.host}`);
  else args.push(`//${o.host}/${o.share ?? ''}`);
  args.push('-p', String(o.port), '-U', `${o.user}%${o.password}`);
  if (o.maxProtocol) args.push('-m', o.maxProtocol);
  if (o.protection) args.push(`--client-protection=${o.protection}`);
  args.push(...(o.extraArgs ?? []));
  if (o.commands && o.commands.length > 0) args.push('-c', o.commands.join('; '));
  return args;
}

/** Runs smbclient asynchronously (a wire tap in this process must keep forwarding meanwhile). */
export function runSmbclient(o: SmbclientOptions): Promise<SmbclientRun> {
  const args = smbclientArgs(o);
  const started = Date.now();
  return new Promise((resolve) => {
    execFile(
      'smbclient',
      args,
      { encoding: 'utf8', timeout: o.timeoutMs ?? 120_000, maxBuffer: 64 * 1024 * 1024, env: { ...process.env, LC_ALL: 'C' } },
      (error, stdout, stderr) => {
        const err = error as (Error & { code?: number | string }) | null;
        const code = err === null ? 0 : typeof err.code === 'number' ? err.code : null;
        resolve({
          code,
          stdout,
          stderr,
          statuses: ntStatuses(`${stdout}\n${stderr}`),
          durationMs: Date.now() - started,
          args,
        });
      },
    );
  });
}

export function ntStatuses(text: string): string[] {
  return text.match(/NT_STATUS_[A-Z0-9_]+/g) ?? [];
}

export interface LsEntry {
  name: string;
  attributes: string;
  size: number;
}

const lsEntry = /^ {2}(.+?)\s+([A-Z]*)\s+(\d+)\s+\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}$/;
const lsEnd = /^\s+\d+ blocks of size \d+\. \d+ blocks available$/;

/** Splits smbclient output into the listings of its successive `ls` commands. */
export function parseLsBlocks(stdout: string): LsEntry[][] {
  const blocks: LsEntry[][] = [];
  let current: LsEntry[] = [];
  for (const line of stdout.split('\n')) {
    if (lsEnd.test(line)) {
      blocks.push(current);
      current = [];
      continue;
    }
    const m = lsEntry.exec(line);
    if (m) current.push({ name: m[1]!, attributes: m[2]!, size: Number(m[3]) });
  }
  return blocks;
}

/** Share names of `smbclient -L` output. */
export function parseShareList(stdout: string): { name: string; type: string }[] {
  const out: { name: string; type: string }[] = [];
  let inTable = false;
  for (const line of stdout.split('\n')) {
    if (/^\s+Sharename\s+Type/.test(line)) {
      inTable = true;
      continue;
    }
    if (!inTable || /^\s+-+\s+-+/.test(line)) continue;
    const m = /^\t(\S+)\s+(Disk|IPC|Printer)\b/.exec(line);
    if (m) out.push({ name: m[1]!, type: m[2]! });
    else if (line.trim() === '') inTable = false;
  }
  return out;
}

/** Writes size bytes of random data to path and returns their sha256 (hex). */
export async function writeRandomFile(path: string, size: number): Promise<string> {
  const hash = createHash('sha256');
  const fh = await open(path, 'w');
  try {
    const chunk = 8 * 1024 * 1024;
    for (let done = 0; done < size; ) {
      const n = Math.min(chunk, size - done);
      const buf = randomBytes(n);
      hash.update(buf);
      await fh.write(buf, 0, n);
      done += n;
    }
  } finally {
    await fh.close();
  }
  return hash.digest('hex');
}

export function sha256File(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    createReadStream(path, { highWaterMark: 4 * 1024 * 1024 })
      .on('data', (c) => hash.update(c))
      .on('error', reject)
      .on('end', () => resolve(hash.digest('hex')));
  });
}

/** MiB/s of a transfer of bytes in ms (for the summary only). */
export function mibPerSecond(bytes: number, ms: number): number {
  return ms > 0 ? bytes / (1024 * 1024) / (ms / 1000) : 0;
}

/**
 * One long-lived smbclient session driven through stdin (line-buffered with stdbuf), so a test can
 * act on the same TCP connection before and after something else happens on the server.
 */
export class InteractiveSmbclient {
  private stdoutText = '';
  private stderrText = '';
  private exited: Promise<number | null>;
  private readonly child: ReturnType<typeof spawnChild>;

  constructor(o: Omit<SmbclientOptions, 'commands' | 'list'>) {
    this.child = spawnChild('stdbuf', ['-oL', '-eL', 'smbclient', ...smbclientArgs(o)], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, LC_ALL: 'C' },
    });
    this.child.stdout!.on('data', (d: Buffer) => (this.stdoutText += d.toString('utf8')));
    this.child.stderr!.on('data', (d: Buffer) => (this.stderrText += d.toString('utf8')));
    this.exited = new Promise((resolve) => this.child.once('exit', (code) => resolve(code)));
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get stdout(): string {
    return this.stdoutText;
  }

  get stderr(): string {
    return this.stderrText;
  }

  /**
   * Sends one command line and waits until the output it produces (stdout and stderr) matches
   * `until`. Send the next line only after that: smbclient reads stdin through a buffer and then
   * polls the descriptor, so a second line that arrives early can sit unread. `del`, `rename` and
   * `mkdir` print nothing on success; follow them with `ls` through a new command() instead.
   */
  async command(line: string, until: RegExp, timeoutMs = 30_000): Promise<string> {
    const fromOut = this.stdoutText.length;
    const fromErr = this.stderrText.length;
    this.child.stdin!.write(`${line}\n`);
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const fresh = `${this.stdoutText.slice(fromOut)}${this.stderrText.slice(fromErr)}`;
      if (until.test(fresh)) return this.stdoutText.slice(fromOut);
      if (this.child.exitCode !== null) throw new Error(`smbclient exited (${this.child.exitCode}) during "${line}":\n${this.stdoutText}\n${this.stderrText}`);
      if (Date.now() > deadline) throw new Error(`smbclient: no ${until} after "${line}" in ${timeoutMs} ms:\n${fresh}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** `ls` and its parsed listing. */
  async ls(mask = ''): Promise<LsEntry[]> {
    const out = await this.command(mask ? `ls ${mask}` : 'ls', /blocks available/);
    return parseLsBlocks(out)[0] ?? [];
  }

  async quit(): Promise<number | null> {
    if (this.child.exitCode === null) this.child.stdin!.end('quit\n');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
    const code = await this.exited;
    clearTimeout(timer);
    return code;
  }
}

/**
 * The end-to-end round trip of the e2e suites: ls, mkdir, cd, put, ls, get, rename, ls, del, ls,
 * cd .., rmdir, ls (five listings, checked by expectRoundTrip).
 */
export function roundTripCommands(dir: string, bigPath: string, local: string): string[] {
  return [
    'ls',
    `mkdir ${dir}`,
    `cd ${dir}`,
    `put ${bigPath} big.bin`,
    'ls',
    `get big.bin ${local}`,
    'rename big.bin renamed.bin',
    'ls',
    'del renamed.bin',
    'ls',
    'cd ..',
    `rmdir ${dir}`,
    'ls',
  ];
}

/** Asserts what roundTripCommands must have produced; `why` explains a failure (output, logs). */
export async function expectRoundTrip(run: SmbclientRun, dir: string, bigBytes: number, local: string, bigSha: string, why: string): Promise<void> {
  expect(run.statuses, why).toEqual([]);
  expect(run.code, why).toBe(0);
  const blocks = parseLsBlocks(run.stdout);
  expect(blocks.length, why).toBe(5);
  const names = (i: number): string[] => blocks[i]!.map((e) => e.name);
  expect(names(0)).toContain('.');
  expect(blocks[1]!.find((e) => e.name === 'big.bin')?.size, 'size after put').toBe(bigBytes);
  expect(names(2)).toContain('renamed.bin');
  expect(names(2)).not.toContain('big.bin');
  expect(names(3)).not.toContain('renamed.bin');
  expect(names(4)).not.toContain(dir);
  expect(await sha256File(local), 'sha256 of the file read back').toBe(bigSha);
}
