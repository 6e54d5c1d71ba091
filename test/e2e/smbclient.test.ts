// End to end with Samba's smbclient against a real Tessera process (testing tier 4).
// Shares: `vms` (plain) and `secure` (--encrypt-share secure).
//  - share listing through srvsvc over IPC$;
//  - for every dialect (and 3.1.1 signed / encrypted): ls, mkdir, put of a 1 GiB random file, get it
//    back and compare sha256, rename, del, rmdir, in one smbclient invocation per configuration;
//    what was negotiated and whether traffic was really signed or encrypted is read off the wire
//    through a forwarding tap (test/helpers/smbwire.ts), not taken from smbclient's word;
//  - wrong password; the encrypted share refused to a dialect without encryption;
//  - each cipher as the server's first preference (--ciphers) is the one negotiated.
// TESSERA_E2E_SERVER=samba runs the same file against a private Samba (harness check);
// TESSERA_E2E_BIG_MIB sets the big file's size (default 1024), TESSERA_E2E_CIPHER_MIB the size
// moved once per cipher (default: the big file itself).

import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { freePort, startSamba, startTessera, type RunningServer, type ShareSpec } from '../helpers/servers.js';
import {
  expectRoundTrip,
  roundTripCommands,
  parseShareList,
  runSmbclient,
  sha256File,
  writeRandomFile,
  type SmbclientOptions,
  type SmbclientRun,
} from '../helpers/smbclient.js';
import {
  cipherNames,
  commandNegotiate,
  commandSessionSetup,
  flagSigned,
  signingNames,
  startWireTap,
  type WireMessage,
  type WireTap,
} from '../helpers/smbwire.js';

const againstSamba = process.env['TESSERA_E2E_SERVER'] === 'samba';
const bigBytes = Number(process.env['TESSERA_E2E_BIG_MIB'] ?? 1024) * 1024 * 1024;
// The issue asks for 1 GiB transfers with each cipher too: by default the big file is reused.
const cipherBytes = process.env['TESSERA_E2E_CIPHER_MIB'] === undefined ? bigBytes : Number(process.env['TESSERA_E2E_CIPHER_MIB']) * 1024 * 1024;
const user = 'e2euser';
const password = 'E2e-Passw0rd';
const transferTimeoutMs = 420_000;

let root = '';
let bigPath = '';
let bigSha = '';
let cipherPath = '';
let cipherSha = '';
let shares: ShareSpec[] = [];
let server: RunningServer | undefined;
let tap: WireTap | undefined;
const summary: string[][] = [['configuration', 'dialect', 'on the wire', 'put MiB/s', 'get MiB/s', 'invocation s']];

const cipherIds: Record<string, number> = { 'AES-128-CCM': 1, 'AES-128-GCM': 2, 'AES-256-CCM': 3, 'AES-256-GCM': 4 };
const allCiphers = Object.keys(cipherIds);

async function start(ciphers?: string[]): Promise<void> {
  await tap?.close();
  await server?.stop();
  const port = await freePort();
  if (againstSamba) {
    const globals: Record<string, string> = {};
    if (ciphers) globals['server smb3 encryption algorithms'] = ciphers.map((c) => c.toLowerCase()).join(', ');
    server = await startSamba({ port, shares, user, password, globals });
  } else {
    const extraArgs = ['--log-level', 'warn'];
    if (ciphers) extraArgs.push('--ciphers', ciphers.join(','));
    server = await startTessera({ port, shares, users: [{ name: user, password }], extraArgs });
  }
  tap = await startWireTap(server);
}

function client(o: Omit<SmbclientOptions, 'host' | 'port' | 'user' | 'password'> & { password?: string; viaTap?: boolean }): Promise<SmbclientRun> {
  const target = o.viaTap ? tap! : server!;
  return runSmbclient({ user, password, ...o, host: target.host, port: target.port });
}

function explain(run: SmbclientRun): string {
  const tail = server ? server.logs().slice(-3000) : '';
  return `smbclient ${run.args.join(' ')}\nexit ${run.code}\n--- stdout ---\n${run.stdout.slice(-3000)}\n--- stderr ---\n${run.stderr.slice(-3000)}\n--- server log tail ---\n${tail}`;
}

/** Messages after authentication: everything but NEGOTIATE and SESSION_SETUP exchanges. */
function afterAuth(messages: WireMessage[]): WireMessage[] {
  return messages.filter((m) => !(m.kind === 'smb2' && (m.Command === commandNegotiate || m.Command === commandSessionSetup)));
}

function wireKind(messages: WireMessage[]): string {
  const rest = afterAuth(messages);
  if (rest.length === 0) return 'nothing';
  if (rest.every((m) => m.kind === 'transform')) return 'encrypted';
  if (rest.every((m) => m.kind === 'smb2' && ((m.Flags ?? 0) & flagSigned) !== 0)) return 'signed';
  if (rest.every((m) => m.kind === 'smb2')) return 'plain';
  return 'mixed';
}

/** One `ls` through the tap: what the wire says about a configuration. */
async function probe(o: { share: string; maxProtocol?: string; protection?: 'sign' | 'encrypt' | 'off' }) {
  tap!.reset();
  const run = await client({ ...o, viaTap: true, commands: ['ls'] });
  return { run, request: tap!.negotiateRequest(), response: tap!.negotiateResponse(), kind: wireKind(tap!.messages()) };
}

describe(`smbclient against ${againstSamba ? 'Samba (harness check)' : 'Tessera'}`, () => {
  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), 'tessera-e2e-'));
    shares = [
      { name: 'vms', path: join(root, 'vms') },
      { name: 'secure', path: join(root, 'secure'), encrypt: true },
    ];
    for (const s of shares) mkdirSync(s.path);
    mkdirSync(join(root, 'local'));
    bigPath = join(root, 'local', 'big.bin');
    cipherPath = join(root, 'local', 'cipher.bin');
    bigSha = await writeRandomFile(bigPath, bigBytes);
    if (cipherBytes === bigBytes) {
      cipherPath = bigPath;
      cipherSha = bigSha;
    } else {
      cipherSha = await writeRandomFile(cipherPath, cipherBytes);
    }
    await start();
  });

  afterAll(async () => {
    console.log(`\nsmbclient matrix (${againstSamba ? 'Samba' : 'Tessera'}, ${bigBytes / 1048576} MiB file):\n${table(summary)}\n`);
    await tap?.close();
    await server?.stop();
    if (root) rmSync(root, { recursive: true, force: true });
  });

  test('smbclient -L lists vms and IPC$ (srvsvc NetShareEnumAll over IPC$)', async () => {
    const run = await client({ list: true, maxProtocol: 'SMB3_11' });
    expect(run.statuses, explain(run)).toEqual([]);
    expect(run.code, explain(run)).toBe(0);
    const listed = parseShareList(run.stdout);
    expect(listed, explain(run)).toContainEqual({ name: 'vms', type: 'Disk' });
    expect(listed, explain(run)).toContainEqual({ name: 'IPC$', type: 'IPC' });
  });

  const matrix: { label: string; maxProtocol: string; protection?: 'sign' | 'encrypt'; dialect: number; wire?: string }[] = [
    { label: 'SMB2_02', maxProtocol: 'SMB2_02', dialect: 0x0202 },
    { label: 'SMB2_10', maxProtocol: 'SMB2_10', dialect: 0x0210 },
    { label: 'SMB3_00', maxProtocol: 'SMB3_00', dialect: 0x0300 },
    { label: 'SMB3_02', maxProtocol: 'SMB3_02', dialect: 0x0302 },
    { label: 'SMB3_11', maxProtocol: 'SMB3_11', dialect: 0x0311 },
    { label: 'SMB3_11 sign', maxProtocol: 'SMB3_11', protection: 'sign', dialect: 0x0311, wire: 'signed' },
    { label: 'SMB3_11 encrypt', maxProtocol: 'SMB3_11', protection: 'encrypt', dialect: 0x0311, wire: 'encrypted' },
  ];

  for (const c of matrix) {
    test(
      `${c.label}: ls, mkdir, put/get ${bigBytes / 1048576} MiB (sha256), rename, del, rmdir`,
      async () => {
        const p = await probe({ share: 'vms', maxProtocol: c.maxProtocol, ...(c.protection ? { protection: c.protection } : {}) });
        expect(p.run.statuses, explain(p.run)).toEqual([]);
        expect(p.response?.DialectRevision, 'negotiated dialect').toBe(c.dialect);
        if (c.wire) expect(p.kind, `${c.label}: traffic after session setup`).toBe(c.wire);
        if (c.protection === 'sign') {
          const algorithm = p.response?.SigningAlgorithms?.[0];
          expect(algorithm === undefined ? 'none' : signingNames[algorithm], 'signing algorithm').toMatch(/^(AES-GMAC|AES-CMAC|HMAC-SHA256)$/);
        }

        const dir = `dir_${c.label.replace(/\W/g, '_')}`;
        const local = join(root, 'local', `${dir}.out`);
        const run = await client({
          share: 'vms',
          maxProtocol: c.maxProtocol,
          ...(c.protection ? { protection: c.protection } : {}),
          timeoutMs: transferTimeoutMs,
          commands: roundTripCommands(dir, bigPath, local),
        });
        try {
          await expectRoundTrip(run, dir, bigBytes, local, bigSha, explain(run));
          const put = /putting file .* \(([\d.]+) kb\/s\)/.exec(run.stderr + run.stdout);
          const get = /getting file .* \(([\d.]+) KiloBytes\/sec\)/.exec(run.stderr + run.stdout);
          summary.push([
            c.label,
            `0x${(p.response?.DialectRevision ?? 0).toString(16).padStart(4, '0')}`,
            p.kind,
            put ? (Number(put[1]) / 1024).toFixed(0) : '?',
            get ? (Number(get[1]) / 1024).toFixed(0) : '?',
            (run.durationMs / 1000).toFixed(1),
          ]);
        } finally {
          rmSync(local, { force: true });
        }
      },
      transferTimeoutMs + 60_000,
    );
  }

  test('wrong password: NT_STATUS_LOGON_FAILURE and a non-zero exit', async () => {
    const run = await client({ share: 'vms', maxProtocol: 'SMB3_11', password: 'not-the-password', commands: ['ls'] });
    expect(run.statuses, explain(run)).toContain('NT_STATUS_LOGON_FAILURE');
    expect(run.code, explain(run)).not.toBe(0);
  });

  test('secure share: refused without encryption, encrypted whenever it is reachable', async () => {
    // MS-SMB2 3.3.5.7: a share with EncryptData refuses a connection that cannot encrypt
    // (dialect below 3.0, or no cipher) with STATUS_ACCESS_DENIED.
    for (const maxProtocol of ['SMB2_02', 'SMB2_10']) {
      const run = await client({ share: 'secure', maxProtocol, commands: ['ls'] });
      expect(run.statuses, explain(run)).toContain('NT_STATUS_ACCESS_DENIED');
      expect(run.code, explain(run)).not.toBe(0);
    }
    // smbclient still offers ciphers with --client-protection=off (and by default), so the tree
    // connect succeeds and the client must then encrypt everything on that tree: check the wire.
    for (const protection of [undefined, 'off', 'encrypt'] as const) {
      for (const maxProtocol of ['SMB3_00', 'SMB3_11']) {
        const p = await probe({ share: 'secure', maxProtocol, ...(protection ? { protection } : {}) });
        const what = `secure, ${maxProtocol}, protection ${protection ?? 'default'}`;
        expect(p.run.statuses, `${what}\n${explain(p.run)}`).toEqual([]);
        expect(p.run.code, `${what}\n${explain(p.run)}`).toBe(0);
        // smbclient first visits IPC$ (DFS referral) in clear; its last plain TREE_CONNECT request
        // is the one for `secure` (the response may be plain or sealed), and every message after
        // it must be sealed. With --client-protection=encrypt the whole session is sealed.
        const messages = tap!.messages();
        let lastTree = -1;
        messages.forEach((m, i) => {
          if (m.kind === 'smb2' && m.dir === 'c2s' && m.Command === 0x0003) lastTree = i;
        });
        if (protection === 'encrypt') expect(p.kind, `${what}: whole session`).toBe('encrypted');
        const after = (lastTree >= 0 ? messages.slice(lastTree + 1) : afterAuth(messages)).filter((m) => !(m.kind === 'smb2' && m.dir === 's2c' && m.Command === 0x0003));
        expect(after.length, `${what}: traffic after the tree connect`).toBeGreaterThan(0);
        expect(after.filter((m) => m.kind !== 'transform'), `${what}: unencrypted messages on the encrypted share`).toEqual([]);
        expect(after.some((m) => m.dir === 'c2s') && after.some((m) => m.dir === 's2c'), `${what}: sealed both ways`).toBe(true);
      }
    }
  });

  describe('cipher selection (--ciphers: first server preference the client offers wins)', () => {
    for (const first of allCiphers) {
      test(
        `${first} first: negotiated, and a ${cipherBytes / 1048576} MiB round trip is intact`,
        async () => {
          await start([first, ...allCiphers.filter((c) => c !== first)]);
          const p = await probe({ share: 'vms', maxProtocol: 'SMB3_11', protection: 'encrypt' });
          expect(p.run.statuses, explain(p.run)).toEqual([]);
          expect(p.request?.Ciphers?.map((id) => cipherNames[id]), 'smbclient offers all four').toEqual(
            expect.arrayContaining(allCiphers),
          );
          expect(p.response?.Ciphers?.map((id) => cipherNames[id]), 'negotiated cipher').toEqual([first]);
          expect(p.kind).toBe('encrypted');

          const local = join(root, 'local', `cipher-${first}.out`);
          const run = await client({
            share: 'vms',
            maxProtocol: 'SMB3_11',
            protection: 'encrypt',
            timeoutMs: transferTimeoutMs,
            commands: [`put ${cipherPath} c.bin`, `get c.bin ${local}`, 'del c.bin'],
          });
          try {
            expect(run.statuses, explain(run)).toEqual([]);
            expect(run.code, explain(run)).toBe(0);
            expect(await sha256File(local)).toBe(cipherSha);
          } finally {
            rmSync(local, { force: true });
          }
        },
        transferTimeoutMs + 60_000,
      );
    }
  });
});

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length)));
  return rows.map((r) => r.map((cell, c) => cell.padEnd(widths[c]!)).join('  ')).join('\n');
}
