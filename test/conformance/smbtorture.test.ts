// Conformance: Samba's smbtorture against a real Tessera process (testing tier 4 of
// shared/design/ARCHITECTURE.md). Each suite is one vitest test. A test fails when
//  - a smbtorture test not listed in knownfail.txt fails (or errors),
//  - a listed test passes (the list must shrink: "unexpected pass"),
//  - fewer tests pass than the suite's floor: the count Tessera has reached (a ratchet: raise it when
//    a fix lands). Samba 4.17's count (shared/design/TOOLS.md) is printed beside it; where Tessera is
//    still below Samba the shortfall is printed and the gap is explained by knownfail.txt.
// TESSERA_TORTURE_SERVER=samba runs the same suites against a private Samba instead (with
// knownfail-samba.txt and no minimum), to check the harness itself.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { freePort, startSamba, startTessera, type RunningServer } from '../helpers/servers.js';
import { describeVerdict, judge, loadKnownFail, runTorture, type Verdict } from './torture.js';
import { mustPass, suites, user2, user2Options } from './suites.js';

const here = dirname(fileURLToPath(import.meta.url));
const againstSamba = process.env['TESSERA_TORTURE_SERVER'] === 'samba';

const suiteTimeoutMs = 240_000;
const share = 'vms';
const user = 'tortureuser';
const password = 'Torture-Pw1';

const knownFailFile = againstSamba ? 'knownfail-samba.txt' : 'knownfail.txt';
const knownFail = loadKnownFail(join(here, knownFailFile));
const verdicts = new Map<string, Verdict>();
let server: RunningServer | undefined;
let shareDir = '';

function summaryTable(): string {
  const rows = [['suite', 'passed/total', 'success', 'skip', 'known fail', 'unexpected', 'Samba 4.17']];
  for (const { suite, sambaPassed } of suites) {
    const v = verdicts.get(suite);
    if (!v) {
      rows.push([suite, 'not run', '', '', '', '', String(sambaPassed)]);
      continue;
    }
    rows.push([
      suite,
      `${v.passed}/${v.total}`,
      String(v.succeeded),
      String(v.skipped),
      String(v.expectedFailures.length),
      String(v.unexpectedFailures.length + v.unexpectedPasses.length),
      String(sambaPassed),
    ]);
  }
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  return rows.map((r) => r.map((cell, c) => cell.padEnd(widths[c]!)).join('  ')).join('\n');
}

describe(`smbtorture against ${againstSamba ? 'Samba (harness check)' : 'Tessera'}`, () => {
  beforeAll(async () => {
    shareDir = mkdtempSync(join(tmpdir(), 'tessera-torture-share-'));
    const port = await freePort();
    const shares = [{ name: share, path: shareDir }];
    server = againstSamba
      ? await startSamba({ port, shares, user, password })
      : await startTessera({ port, shares, users: [{ name: user, password }, user2], extraArgs: ['--log-level', 'warn', '--anonymous'] });
  });

  afterAll(async () => {
    console.log(`\nsmbtorture summary (${againstSamba ? 'Samba' : 'Tessera'}):\n${summaryTable()}\n`);
    await server?.stop();
    if (shareDir) rmSync(shareDir, { recursive: true, force: true });
  });

  for (const { suite, sambaPassed, floor } of suites) {
    test(
      suite,
      async () => {
        if (!server) throw new Error('server did not start');
        const results = await runTorture(server, share, user, password, suite, { timeoutMs: suiteTimeoutMs, ...(againstSamba ? {} : { torture: user2Options }) });
        const verdict = judge(results, knownFail);
        verdicts.set(suite, verdict);
        const problems = describeVerdict(verdict, `test/conformance/${knownFailFile}`);
        if (problems !== '') {
          console.log(`--- ${suite}: server log tail ---\n${server.logs().slice(-6000)}`);
        }
        expect(problems, `${suite}: unexpected smbtorture results`).toBe('');
        for (const name of mustPass.filter((n) => n.startsWith(`${suite}.`))) {
          const t = results.tests.find((x) => x.name === name);
          if (!againstSamba) expect(t?.outcome, `${name} must pass`).toBe('success');
        }
        if (!againstSamba) {
          if (verdict.passed < sambaPassed) {
            console.log(`${suite}: ${verdict.passed} passes, Samba 4.17 passes ${sambaPassed} (gap listed in knownfail.txt)`);
          }
          expect(verdict.passed, `${suite}: fewer passes than the floor (a regression)`).toBeGreaterThanOrEqual(floor);
        }
      },
      suiteTimeoutMs + 30_000,
    );
  }
});
