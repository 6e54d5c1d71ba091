// End to end with smbclient against a real Tessera process serving a chunked share on a real S3 (a
// private Ceph RGW, test/helpers/rgw.ts) with its metadata in a real 3-member etcd cluster
// (test/helpers/etcd-cluster.ts): the deployment of issue 5's "done when", wired by the CLI
// (`--share vms` without a path, `--store s3://BUCKET/vms/ --s3-endpoint URL`, `--meta etcd://...`,
// S3 credentials from the SDK's environment chain).
//  - SMB3_11: put a 1 GiB random file, get it back (sha256), ls, rename, del;
//  - a restart of the server (same arguments) serves the file again (sha256): metadata replayed from
//    the etcd log into the node's state under --state-dir, data from RGW;
//  - `tessera fsck` with the same --store/--meta/--state-dir is clean (exit 0), run while the server
//    runs (src/cli/fsck.ts: read-only, safe beside a running server) and again after it stopped.
// TESSERA_E2E_BIG_MIB sets the big file's size (default 1024).

import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { startEtcdCluster, type EtcdCluster } from '../helpers/etcd-cluster.js';
import { startRgw, type Rgw } from '../helpers/rgw.js';
import { ensureBuilt, freePort, repoRoot, startTessera, type RunningServer } from '../helpers/servers.js';
import { parseLsBlocks, runSmbclient, sha256File, writeRandomFile, type SmbclientRun } from '../helpers/smbclient.js';

const bigMiB = Number(process.env['TESSERA_E2E_BIG_MIB'] ?? 1024);
const bigBytes = bigMiB * 1024 * 1024;
const smallBytes = 5 * 1024 * 1024 + 4321; // not a multiple of anything the driver aligns to
const user = 'rgwuser';
const password = 'Rgw-Passw0rd';
const bucket = 'tessera-e2e';
const transferTimeoutMs = 300_000;

let root = '';
let bigPath = '';
let bigSha = '';
let smallPath = '';
let rgw: Rgw | undefined;
let etcd: EtcdCluster | undefined;
let server: RunningServer | undefined;
const figures: string[] = [];

/** The options `serve` and `fsck` share: where data, metadata and the node's state live. */
function backendArgs(): string[] {
  return [
    '--state-dir', join(root, 'state'),
    '--store', `s3://${bucket}/vms/`,
    '--s3-endpoint', rgw!.endpoint,
    '--meta', `etcd://${etcd!.endpoints.map((e) => e.replace(/^http:\/\//, '')).join(',')}`,
  ];
}

/** Credentials and region through the AWS SDK's environment chain, as an operator would set them. */
function s3Env(): Record<string, string> {
  return {
    AWS_ACCESS_KEY_ID: rgw!.accessKeyId,
    AWS_SECRET_ACCESS_KEY: rgw!.secretAccessKey,
    AWS_REGION: rgw!.region,
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
  };
}

async function start(): Promise<void> {
  await server?.stop();
  server = undefined;
  const port = await freePort();
  server = await startTessera({
    port,
    shares: [],
    users: [{ name: user, password }],
    extraArgs: ['--log-level', 'warn', '--share', 'vms', ...backendArgs(), '--node-id', 'rgw-node'],
    env: s3Env(),
  });
}

function client(commands: string[]): Promise<SmbclientRun> {
  return runSmbclient({ host: server!.host, port: server!.port, user, password, share: 'vms', maxProtocol: 'SMB3_11', timeoutMs: transferTimeoutMs, commands });
}

function explain(run: SmbclientRun): string {
  const tail = server ? server.logs().slice(-3000) : '';
  return `smbclient ${run.args.join(' ')}\nexit ${run.code}\n--- stdout ---\n${run.stdout.slice(-3000)}\n--- stderr ---\n${run.stderr.slice(-3000)}\n--- server log tail ---\n${tail}\n--- radosgw log tail ---\n${rgw?.logTail(2000) ?? ''}`;
}

/** smbclient's own put/get rates (it prints kb/s for put, KiloBytes/sec for get), in MB/s. */
function rates(run: SmbclientRun): { put: string; get: string } {
  const text = run.stderr + run.stdout;
  const put = /putting file .* \(([\d.]+) kb\/s\)/.exec(text);
  const get = /getting file .* \(([\d.]+) KiloBytes\/sec\)/.exec(text);
  const mb = (kib: string): string => ((Number(kib) * 1024) / 1e6).toFixed(0);
  return { put: put ? mb(put[1]!) : '?', get: get ? mb(get[1]!) : '?' };
}

/** `tessera fsck ARGS` as a process: exit code and output. */
function fsck(extra: string[] = []): Promise<{ code: number | null; out: string }> {
  ensureBuilt();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(repoRoot, 'bin', 'tessera.js'), 'fsck', ...backendArgs(), ...extra], {
      cwd: root,
      env: { ...process.env, ...s3Env() },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString('utf8')));
    child.stderr.on('data', (c: Buffer) => (out += c.toString('utf8')));
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
}

async function objectCount(): Promise<number> {
  const s3 = rgw!.client();
  try {
    let n = 0;
    let token: string | undefined;
    do {
      const r = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: 'vms/', ...(token !== undefined ? { ContinuationToken: token } : {}) }));
      n += r.KeyCount ?? 0;
      token = r.IsTruncated ? r.NextContinuationToken : undefined;
    } while (token !== undefined);
    return n;
  } finally {
    s3.destroy();
  }
}

describe('smbclient against Tessera on a chunked share on Ceph RGW with etcd metadata', () => {
  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), 'tessera-chunked-rgw-e2e-'));
    mkdirSync(join(root, 'local'));
    bigPath = join(root, 'local', 'big.bin');
    smallPath = join(root, 'local', 'small.bin');
    // RGW's memstore OSD keeps objects in RAM (~2x the bytes stored): room for the big file twice.
    const [sha, , r, e] = await Promise.all([
      writeRandomFile(bigPath, bigBytes),
      writeRandomFile(smallPath, smallBytes),
      startRgw({ name: 'e2e', osdBytes: Math.max(4 * 1024, 3 * bigMiB) * 1024 * 1024 }),
      startEtcdCluster({ members: 3, name: 'e2e-rgw' }),
    ]);
    bigSha = sha;
    rgw = r;
    etcd = e;
    await rgw.createBucket(bucket);
    await start();
  }, 300_000);

  afterAll(async () => {
    if (figures.length > 0) console.log(`\nchunked share on RGW + etcd (3 members), SMB3_11, ${bigMiB} MiB file:\n${figures.join('\n')}\n`);
    await server?.stop();
    await etcd?.stop();
    await rgw?.stop();
    if (root) rmSync(root, { recursive: true, force: true });
  });

  test(
    `put/get ${bigMiB} MiB (sha256), ls, rename, del; restart and get again; fsck clean`,
    async () => {
      const local = join(root, 'local', 'big.out');
      // 1. Transfer, rename and delete.
      const run = await client([
        `put ${bigPath} big.bin`,
        'ls',
        `get big.bin ${local}`,
        'rename big.bin renamed.bin',
        `put ${smallPath} small.bin`,
        'ls',
        'del small.bin',
        'ls',
      ]);
      expect(run.statuses, explain(run)).toEqual([]);
      expect(run.code, explain(run)).toBe(0);
      const blocks = parseLsBlocks(run.stdout);
      expect(blocks.length, explain(run)).toBe(3);
      expect(blocks[0]!.find((e) => e.name === 'big.bin')?.size, 'size after put').toBe(bigBytes);
      const names = (i: number): string[] => blocks[i]!.map((e) => e.name);
      expect(names(1)).toContain('renamed.bin');
      expect(names(1)).not.toContain('big.bin');
      expect(blocks[1]!.find((e) => e.name === 'small.bin')?.size).toBe(smallBytes);
      expect(names(2)).toContain('renamed.bin');
      expect(names(2)).not.toContain('small.bin');
      expect(await sha256File(local), 'sha256 of the file read back').toBe(bigSha);
      rmSync(local, { force: true });
      const r1 = rates(run);
      figures.push(`  first server:  put ${r1.put} MB/s, get ${r1.get} MB/s (smbclient's figures; whole invocation ${(run.durationMs / 1000).toFixed(1)} s)`);
      // Data went to RGW under the configured prefix.
      expect(await objectCount()).toBeGreaterThan(0);

      // 2. Restart (SIGTERM, then the same arguments): metadata from etcd, data from RGW.
      await start();
      const again = await client(['ls', `get renamed.bin ${local}`]);
      expect(again.statuses, explain(again)).toEqual([]);
      expect(again.code, explain(again)).toBe(0);
      const after = parseLsBlocks(again.stdout);
      expect(after[0]!.find((e) => e.name === 'renamed.bin')?.size, explain(again)).toBe(bigBytes);
      expect(after[0]!.map((e) => e.name)).not.toContain('small.bin');
      expect(await sha256File(local), 'sha256 after the restart').toBe(bigSha);
      rmSync(local, { force: true });
      figures.push(`  after restart: get ${rates(again).get} MB/s`);

      // 3. fsck beside the running server (read-only on the node's replica), then after a stop.
      const live = await fsck(['--json']);
      expect(live.code, live.out).toBe(0);
      // It looked at the real thing: the big file's bytes are mapped, every referenced object is in RGW.
      const report = JSON.parse(live.out) as { mappedBytes: number; referenced: { objects: number }; store: { objects: number }; problemCount: number };
      expect(report.mappedBytes, live.out).toBeGreaterThanOrEqual(bigBytes);
      expect(report.referenced.objects, live.out).toBeGreaterThan(0);
      expect(report.store.objects, live.out).toBeGreaterThanOrEqual(report.referenced.objects);
      expect(report.problemCount, live.out).toBe(0);
      await server!.stop();
      server = undefined;
      const stopped = await fsck();
      expect(stopped.code, stopped.out).toBe(0);
      expect(stopped.out).toContain(`s3://${bucket}/vms/`);
    },
    3 * transferTimeoutMs,
  );
});
