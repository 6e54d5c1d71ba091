// smbtorture against a chunked share (issue 5, "smbtorture results from the semantics issue hold on
// a chunked share"): the suites and floors of test/conformance/smbtorture.test.ts (the posix share),
// run against `--share vms` on a local-directory object store with the local metadata log. Same
// rules: a failure not in the known-fail list fails the test, a listed test that passes fails it
// ("unexpected pass"), and fewer passes than the posix share's floor is a regression.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { freePort, startTessera, type RunningServer } from '../helpers/servers.js';
import { describeVerdict, judge, loadKnownFail, runTorture, type Verdict } from '../conformance/torture.js';
import { suites as allSuites, user2, user2Options } from '../conformance/suites.js';

const here = dirname(fileURLToPath(import.meta.url));

/** The posix share's suites and floors; chunkedFloor where a chunked-only failure is listed. */
const suites = allSuites.map((x) => ({ suite: x.suite, floor: x.chunkedFloor ?? x.floor }));

const suiteTimeoutMs = 240_000;
const share = 'vms';
const user = 'tortureuser';
const password = 'Torture-Pw1';
const knownFail = new Map([...loadKnownFail(join(here, '..', 'conformance', 'knownfail.txt')), ...loadKnownFail(join(here, 'chunked-knownfail.txt'))]);
const verdicts = new Map<string, Verdict>();
let server: RunningServer | undefined;
let root = '';

describe('smbtorture against Tessera on a chunked share', () => {
  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), 'tessera-chunked-torture-'));
    const port = await freePort();
    server = await startTessera({
      port,
      shares: [],
      users: [{ name: user, password }, user2],
      extraArgs: ['--log-level', 'warn', '--anonymous', '--state-dir', root, '--share', share, '--store', `file://${join(root, 'objects')}`, '--meta', `local://${join(root, 'meta')}`],
    });
  });

  afterAll(async () => {
    const rows = [...verdicts].map(([s, v]) => `${s.padEnd(14)} ${v.passed}/${v.total} (floor ${suites.find((x) => x.suite === s)?.floor})`);
    console.log(`\nsmbtorture on a chunked share:\n${rows.join('\n')}\n`);
    await server?.stop();
    if (root) rmSync(root, { recursive: true, force: true });
  });

  for (const { suite, floor } of suites) {
    test(
      suite,
      async () => {
        if (!server) throw new Error('server did not start');
        const results = await runTorture(server, share, user, password, suite, { timeoutMs: suiteTimeoutMs, torture: user2Options });
        const verdict = judge(results, knownFail);
        verdicts.set(suite, verdict);
        const problems = describeVerdict(verdict, 'test/conformance/knownfail.txt + test/e2e/chunked-knownfail.txt');
        if (problems !== '') console.log(`--- ${suite}: server log tail ---\n${server.logs().slice(-6000)}`);
        expect(problems, `${suite}: unexpected smbtorture results on the chunked share`).toBe('');
        expect(verdict.passed, `${suite}: fewer passes than the posix share's floor`).toBeGreaterThanOrEqual(floor);
      },
      suiteTimeoutMs + 30_000,
    );
  }
});
