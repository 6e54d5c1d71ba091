// smbtorture runner: runs one suite against a running server, parses its subunit v1 stream into
// per-test outcomes, and judges them against a known-fail list (Samba selftest's knownfail idea:
// a listed test that fails is expected; a listed test that passes is an error too, so the list
// never goes stale).

import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RunningServer } from '../helpers/servers.js';

/** Subunit v1 outcomes, normalised ('successful' → 'success', 'fail' → 'failure'). */
export type Outcome = 'success' | 'failure' | 'error' | 'skip' | 'xfail' | 'uxsuccess';

export interface TestResult {
  /** Full dotted name, e.g. smb2.read.eof (smbtorture prints names relative to the suite). */
  name: string;
  outcome: Outcome;
  /** The bracketed detail block of the outcome line (failure reason, skip reason). */
  details: string;
}

export interface Results {
  suite: string;
  tests: TestResult[];
  exitCode: number | null;
  signal: string | null;
  timedOut: boolean;
  durationMs: number;
  /** smbtorture's stdout and stderr (bounded), for diagnostics. */
  output: string;
}

export interface TortureOptions {
  /** Kill smbtorture after this long (default 600 s). */
  timeoutMs?: number;
  /** --option=torture:KEY=VALUE pairs, e.g. { user2name: 'u2' }. */
  torture?: Record<string, string>;
  /** Other --option=NAME=VALUE pairs for the client (smb.conf parameter names). */
  clientOptions?: Record<string, string>;
  /** --target= (smbtorture's expectation profile); the default expects Windows behaviour. */
  target?: string;
  extraArgs?: string[];
  /** smbtorture binary (default: smbtorture on PATH). */
  binary?: string;
}

const outputBytesMax = 8 * 1024 * 1024;

const outcomeWords: Record<string, Outcome> = {
  success: 'success',
  successful: 'success',
  failure: 'failure',
  fail: 'failure',
  error: 'error',
  skip: 'skip',
  xfail: 'xfail',
  uxsuccess: 'uxsuccess',
};

/** smbtorture names tests relative to the suite it was given; make them absolute. */
export function qualifyName(suite: string, name: string): string {
  if (name === suite || name.startsWith(`${suite}.`)) return name;
  // A suite that is itself a single test (smb2.connect) reports its last component.
  if (suite.endsWith(`.${name}`)) return suite;
  return `${suite}.${name}`;
}

/**
 * Parses a subunit v1 stream (the text protocol smbtorture --format=subunit writes). Lines that are
 * not subunit directives (test chatter) are ignored. A test that started and never got an outcome
 * (smbtorture crashed, or was killed at the timeout) is reported as 'error'.
 */
export function parseSubunit(text: string, suite: string): TestResult[] {
  const results: TestResult[] = [];
  const lines = text.split('\n');
  let pending: string | null = null;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.replace(/\r$/, '');
    const m = /^(test|testing|success|successful|failure|fail|error|skip|xfail|uxsuccess)(?::|\s)\s*(.*?)\s*$/.exec(line);
    if (!m) continue;
    const word = m[1]!;
    let rest = m[2]!;
    if (word === 'test' || word === 'testing') {
      if (pending !== null) results.push({ name: qualifyName(suite, pending), outcome: 'error', details: 'no outcome reported' });
      pending = rest;
      continue;
    }
    let details = '';
    // "NAME [" opens a detail block closed by a line holding only "]"; "NAME [ multipart" too.
    const block = /^(.*?)\s*\[( multipart)?$/.exec(rest);
    if (block) {
      rest = block[1]!;
      const body: string[] = [];
      for (i++; i < lines.length; i++) {
        const l = lines[i]!.replace(/\r$/, '');
        if (l === ']') break;
        body.push(l);
      }
      details = body.join('\n');
    }
    const name = rest;
    if (pending !== null && pending !== name) {
      results.push({ name: qualifyName(suite, pending), outcome: 'error', details: 'no outcome reported' });
    }
    pending = null;
    results.push({ name: qualifyName(suite, name), outcome: outcomeWords[word]!, details });
  }
  if (pending !== null) {
    results.push({ name: qualifyName(suite, pending), outcome: 'error', details: 'no outcome reported (smbtorture died or timed out)' });
  }
  return results;
}

function appendBounded(chunks: Buffer[], state: { bytes: number }, chunk: Buffer): void {
  if (state.bytes >= outputBytesMax) return;
  chunks.push(chunk.subarray(0, outputBytesMax - state.bytes));
  state.bytes += chunk.length;
}

/** The smbtorture command line (without the binary) for one suite. */
export function tortureArgs(
  target: Pick<RunningServer, 'host' | 'port'>,
  share: string,
  user: string,
  password: string,
  suite: string,
  confPath: string,
  basedir: string,
  opts: TortureOptions = {},
): string[] {
  const args = [
    `//${target.host}/${share}`,
    '-p',
    String(target.port),
    '-U',
    `${user}%${password}`,
    '--format=subunit',
    '-s',
    confPath,
    `--basedir=${basedir}`,
  ];
  if (opts.target) args.push(`--target=${opts.target}`);
  for (const [k, v] of Object.entries(opts.torture ?? {})) args.push(`--option=torture:${k}=${v}`);
  for (const [k, v] of Object.entries(opts.clientOptions ?? {})) args.push(`--option=${k}=${v}`);
  args.push(...(opts.extraArgs ?? []), suite);
  return args;
}

/**
 * Runs one smbtorture suite against a server, with a private client smb.conf (so the machine's
 * /etc/samba/smb.conf cannot interfere) and a fresh --basedir.
 */
export async function runTorture(
  target: Pick<RunningServer, 'host' | 'port'>,
  share: string,
  user: string,
  password: string,
  suite: string,
  opts: TortureOptions = {},
): Promise<Results> {
  const work = mkdtempSync(join(tmpdir(), 'tessera-torture-'));
  const conf = join(work, 'smb.conf');
  const basedir = join(work, 'base');
  writeFileSync(
    conf,
    [
      '[global]',
      '\tworkgroup = WORKGROUP',
      '\tclient min protocol = SMB2_02',
      `\tprivate dir = ${join(work, 'private')}`,
      `\tlock directory = ${join(work, 'lock')}`,
      `\tstate directory = ${join(work, 'state')}`,
      `\tcache directory = ${join(work, 'cache')}`,
      `\tncalrpc dir = ${join(work, 'ncalrpc')}`,
      '',
    ].join('\n'),
  );
  mkdirSync(basedir);

  const args = tortureArgs(target, share, user, password, suite, conf, basedir, opts);
  const timeoutMs = opts.timeoutMs ?? 600_000;
  const started = Date.now();
  const chunks: Buffer[] = [];
  const state = { bytes: 0 };
  const child = spawn(opts.binary ?? 'smbtorture', args, { stdio: ['ignore', 'pipe', 'pipe'], cwd: work });
  child.stdout.on('data', (c: Buffer) => appendBounded(chunks, state, c));
  child.stderr.on('data', (c: Buffer) => appendBounded(chunks, state, c));
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGKILL');
  }, timeoutMs);
  const killOnExit = (): void => {
    child.kill('SIGKILL');
  };
  process.on('exit', killOnExit);
  const { code, signal } = await new Promise<{ code: number | null; signal: string | null }>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (c, s) => resolve({ code: c, signal: s }));
  }).finally(() => {
    clearTimeout(timer);
    process.off('exit', killOnExit);
  });
  rmSync(work, { recursive: true, force: true });
  const output = Buffer.concat(chunks).toString('utf8');
  return {
    suite,
    tests: parseSubunit(output, suite),
    exitCode: code,
    signal,
    timedOut,
    durationMs: Date.now() - started,
    output,
  };
}

// ---------------------------------------------------------------------------------------------
// Known failures

export interface KnownFail {
  name: string;
  reason: string;
}

/** Parses knownfail.txt: one full test name per line, optionally followed by "# reason". */
export function parseKnownFail(text: string): Map<string, KnownFail> {
  const map = new Map<string, KnownFail>();
  for (const raw of text.split('\n')) {
    const hash = raw.indexOf('#');
    const name = (hash >= 0 ? raw.slice(0, hash) : raw).trim();
    if (name === '') continue;
    map.set(name, { name, reason: hash >= 0 ? raw.slice(hash + 1).trim() : '' });
  }
  return map;
}

export function loadKnownFail(path: string): Map<string, KnownFail> {
  return parseKnownFail(readFileSync(path, 'utf8'));
}

/** Outcomes that are not failures. Only 'success' counts as a pass; skips are reported apart. */
export function isPass(outcome: Outcome): boolean {
  return outcome === 'success' || outcome === 'skip' || outcome === 'xfail';
}

export interface Verdict {
  suite: string;
  total: number;
  /** Tests that succeeded (skips are never counted as passes). */
  passed: number;
  succeeded: number;
  skipped: number;
  /** Failed and not in the known-fail list. */
  unexpectedFailures: TestResult[];
  /** In the known-fail list for this suite and passed: the list must shrink. */
  unexpectedPasses: TestResult[];
  /** Failed and listed. */
  expectedFailures: TestResult[];
  /** Suite-level problem (timeout, no tests at all, smbtorture could not start). */
  problems: string[];
}

export function judge(results: Results, knownFail: Map<string, KnownFail>): Verdict {
  const v: Verdict = {
    suite: results.suite,
    total: results.tests.length,
    passed: 0,
    succeeded: 0,
    skipped: 0,
    unexpectedFailures: [],
    unexpectedPasses: [],
    expectedFailures: [],
    problems: [],
  };
  for (const t of results.tests) {
    const listed = knownFail.has(t.name);
    if (isPass(t.outcome)) {
      if (t.outcome === 'success') {
        v.passed++;
        v.succeeded++;
      } else v.skipped++;
      if (listed && t.outcome === 'success') v.unexpectedPasses.push(t);
    } else if (listed) {
      v.expectedFailures.push(t);
    } else {
      v.unexpectedFailures.push(t);
    }
  }
  if (results.timedOut) v.problems.push(`smbtorture timed out after ${results.durationMs} ms`);
  if (results.tests.length === 0) {
    v.problems.push(`no test results (exit ${results.exitCode ?? results.signal}); output:\n${results.output.slice(-4000)}`);
  }
  return v;
}

/** A human-readable account of a verdict's problems ('' when there are none). */
export function describeVerdict(v: Verdict, listName = 'knownfail.txt'): string {
  const out: string[] = [];
  for (const p of v.problems) out.push(`${v.suite}: ${p}`);
  for (const t of v.unexpectedFailures) out.push(`FAIL ${t.name} (${t.outcome}): ${t.details.trim().split('\n').slice(0, 4).join(' | ')}`);
  for (const t of v.unexpectedPasses) out.push(`unexpected pass: ${t.name}: remove it from ${listName}`);
  return out.join('\n');
}
