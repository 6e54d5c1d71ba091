// Ad-hoc: runs smbtorture suites against Tessera (posix) or Samba and prints pass/total per suite
// plus failing test names. Usage: tsx test/conformance/baseline.ts tessera|samba suite...
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, startSamba, startTessera } from '../helpers/servers.js';
import { runTorture } from './torture.js';
import { user2, user2Options } from './suites.js';

const [which, ...suiteList] = process.argv.slice(2);
const user = 'tortureuser';
const password = 'Torture-Pw1';
const shareDir = mkdtempSync(join(tmpdir(), 'tessera-baseline-'));
const port = await freePort();
const shares = [{ name: 'vms', path: shareDir }];
const server =
  which === 'samba'
    ? await startSamba({ port, shares, user, password })
    : await startTessera({ port, shares, users: [{ name: user, password }, user2], extraArgs: ['--log-level', 'warn', '--anonymous'] });
try {
  for (const suite of suiteList) {
    const r = await runTorture(server, 'vms', user, password, suite, { timeoutMs: 600_000, ...(which === 'samba' ? {} : { torture: user2Options }) });
    const ok = r.tests.filter((t) => t.outcome === 'success').length;
    const fails = r.tests.filter((t) => t.outcome !== 'success').map((t) => `${t.name}:${t.outcome}`);
    console.log(`${which} ${suite} ${ok}/${r.tests.length} (${Math.round(r.durationMs / 1000)} s)`);
    for (const f of fails) console.log(`   ${f}`);
  }
} finally {
  await server.stop();
  rmSync(shareDir, { recursive: true, force: true });
}
