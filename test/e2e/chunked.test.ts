// End to end with smbclient against a real Tessera process serving a chunked share (issue 5): the
// chunked driver on a local-directory object store with the local metadata log, wired by the CLI
// (`--share NAME` without a path, `--store file://`, `--meta local://`).
//  - SMB3_11: ls, mkdir, put of a 1 GiB random file, get it back and compare sha256, rename, del,
//    rmdir; the same transfer on a posix share of the same server, for the throughput comparison;
//  - a restart of the server keeps files and directories (metadata replayed from the log, data from
//    the store);
//  - `serve --default` in an empty working directory serves a chunked `vms` with objects in
//    ./data/objects and metadata in ./data/meta.
// TESSERA_E2E_BIG_MIB sets the big file's size (default 1024).

import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { freePort, startTessera, type RunningServer } from '../helpers/servers.js';
import { expectRoundTrip, parseLsBlocks, roundTripCommands, runSmbclient, sha256File, writeRandomFile, type SmbclientRun } from '../helpers/smbclient.js';

const bigBytes = Number(process.env['TESSERA_E2E_BIG_MIB'] ?? 1024) * 1024 * 1024;
const keepBytes = 48 * 1024 * 1024 + 12345; // not a multiple of anything the driver aligns to
const user = 'chunkuser';
const password = 'Chunk-Passw0rd';
const transferTimeoutMs = 420_000;

let root = '';
let bigPath = '';
let bigSha = '';
let keepPath = '';
let keepSha = '';
let server: RunningServer | undefined;
const figures: string[][] = [['share', 'driver', 'put MiB/s', 'get MiB/s', 'invocation s']];

function serverArgs(): string[] {
  return [
    '--log-level', 'warn',
    '--state-dir', join(root, 'state'),
    '--share', 'vms',
    '--share', `posix=${join(root, 'posix')}`,
    '--store', `file://${join(root, 'objects')}`,
    '--meta', `local://${join(root, 'meta')}`,
    '--node-id', 'e2e-node',
  ];
}

async function start(): Promise<void> {
  await server?.stop();
  const port = await freePort();
  server = await startTessera({ port, shares: [], users: [{ name: user, password }], extraArgs: serverArgs() });
}

function client(share: string, commands: string[], s: RunningServer | undefined = server): Promise<SmbclientRun> {
  return runSmbclient({ host: s!.host, port: s!.port, user, password, share, maxProtocol: 'SMB3_11', timeoutMs: transferTimeoutMs, commands });
}

function explain(run: SmbclientRun, s: RunningServer | undefined = server): string {
  const tail = s ? s.logs().slice(-3000) : '';
  return `smbclient ${run.args.join(' ')}\nexit ${run.code}\n--- stdout ---\n${run.stdout.slice(-3000)}\n--- stderr ---\n${run.stderr.slice(-3000)}\n--- server log tail ---\n${tail}`;
}

function rates(run: SmbclientRun): { put: string; get: string } {
  const put = /putting file .* \(([\d.]+) kb\/s\)/.exec(run.stderr + run.stdout);
  const get = /getting file .* \(([\d.]+) KiloBytes\/sec\)/.exec(run.stderr + run.stdout);
  return { put: put ? (Number(put[1]) / 1024).toFixed(0) : '?', get: get ? (Number(get[1]) / 1024).toFixed(0) : '?' };
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length)));
  return rows.map((r) => r.map((cell, c) => cell.padEnd(widths[c]!)).join('  ')).join('\n');
}

describe('smbclient against Tessera on a chunked share (local-directory store, local log)', () => {
  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), 'tessera-chunked-e2e-'));
    mkdirSync(join(root, 'posix'));
    mkdirSync(join(root, 'local'));
    bigPath = join(root, 'local', 'big.bin');
    bigSha = await writeRandomFile(bigPath, bigBytes);
    keepPath = join(root, 'local', 'keep.bin');
    keepSha = await writeRandomFile(keepPath, keepBytes);
    await start();
  }, 300_000);

  afterAll(async () => {
    console.log(`\nchunked vs posix, SMB3_11, ${bigBytes / 1048576} MiB file, one server:\n${table(figures)}\n`);
    await server?.stop();
    if (root) rmSync(root, { recursive: true, force: true });
  });

  // The same sequence on the chunked share and, for the comparison, on a posix share.
  for (const [share, driver] of [['vms', 'chunked'], ['posix', 'posix']] as const) {
    test(
      `${share} (${driver}): ls, mkdir, put/get ${bigBytes / 1048576} MiB (sha256), rename, del, rmdir`,
      async () => {
        const dir = `dir_${driver}`;
        const local = join(root, 'local', `${share}.out`);
        const run = await client(share, roundTripCommands(dir, bigPath, local));
        try {
          await expectRoundTrip(run, dir, bigBytes, local, bigSha, explain(run));
          const r = rates(run);
          figures.push([share, driver, r.put, r.get, (run.durationMs / 1000).toFixed(1)]);
        } finally {
          rmSync(local, { force: true });
        }
      },
      transferTimeoutMs + 60_000,
    );
  }

  test(
    'a restart keeps files and directories (metadata from the log, data from the store)',
    async () => {
      const put = await client('vms', ['mkdir keep', 'mkdir keep/sub', `put ${keepPath} keep/sub/keep.bin`, `put ${keepPath} top.bin`, 'del top.bin', 'ls keep/sub/*']);
      expect(put.statuses, explain(put)).toEqual([]);
      expect(put.code, explain(put)).toBe(0);
      // Objects landed in the configured store directory, not in the posix share or the cwd.
      expect(readdirSync(join(root, 'objects')).length).toBeGreaterThan(0);
      expect(existsSync(join(root, 'meta', 'log'))).toBe(true);
      expect(existsSync(join(root, 'meta', 'state'))).toBe(true);

      await start(); // SIGTERM (clean shutdown), then the same arguments again

      const local = join(root, 'local', 'keep.out');
      const get = await client('vms', ['ls', 'cd keep', 'ls', 'cd sub', 'ls', `get keep.bin ${local}`]);
      try {
        expect(get.statuses, explain(get)).toEqual([]);
        expect(get.code, explain(get)).toBe(0);
        const blocks = parseLsBlocks(get.stdout);
        expect(blocks.length, explain(get)).toBe(3);
        expect(blocks[0]!.map((e) => e.name)).toContain('keep');
        expect(blocks[0]!.map((e) => e.name)).not.toContain('top.bin');
        expect(blocks[1]!.map((e) => e.name)).toContain('sub');
        expect(blocks[2]!.find((e) => e.name === 'keep.bin')?.size).toBe(keepBytes);
        expect(await sha256File(local), 'sha256 after the restart').toBe(keepSha);
      } finally {
        rmSync(local, { force: true });
      }
    },
    transferTimeoutMs,
  );

  test(
    'serve --default in an empty directory: chunked share vms, objects in ./data/objects, metadata in ./data/meta',
    async () => {
      const cwd = join(root, 'default-cwd');
      mkdirSync(cwd);
      const port = await freePort();
      // No --share, --store or --meta: all from the embedded default (only the port and a user are given).
      const def = await startTessera({ port, shares: [], users: [{ name: user, password }], extraArgs: ['--default'], cwd });
      const local = join(root, 'local', 'default.out');
      try {
        const run = await client('vms', [`put ${keepPath} disk.vhdx`, 'ls', `get disk.vhdx ${local}`], def);
        expect(run.statuses, explain(run, def)).toEqual([]);
        expect(run.code, explain(run, def)).toBe(0);
        expect(parseLsBlocks(run.stdout)[0]!.find((e) => e.name === 'disk.vhdx')?.size).toBe(keepBytes);
        expect(await sha256File(local)).toBe(keepSha);
        const data = join(cwd, 'data');
        expect(readdirSync(data).sort()).toEqual(expect.arrayContaining(['meta', 'objects', 'users.json', 'server-guid']));
        expect(existsSync(join(data, 'vms')), 'no posix directory for vms').toBe(false);
        // The log says where data and metadata live.
        const logs = def.logs();
        expect(logs).toContain(`"store":"file://${join(data, 'objects')}"`);
        expect(logs).toContain(`"meta":"local://${join(data, 'meta')}"`);
        expect(logs).toContain('"driver":"chunked"');
      } finally {
        rmSync(local, { force: true });
        await def.stop();
      }
    },
    transferTimeoutMs,
  );
});
