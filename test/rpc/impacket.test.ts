// Real-peer test: impacket's srvsvc client (ncacn_ip_tcp: the same connection-oriented PDUs as
// ncacn_np) against a tiny TCP server that feeds the byte stream to an RpcPipeEndpoint.
import { spawnSync, spawn } from 'node:child_process';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PFC, PTYPE, pduLength } from '../../src/protocol/dcerpc.js';
import { RpcPipeEndpoint } from '../../src/rpc/pipe.js';
import { STYPE, type SrvsvcShare } from '../../src/rpc/srvsvc.js';
import { ADMIN, SHARES, srvsvc } from './helpers.js';

const PYTHON = '/usr/bin/python3';
const SCRIPT = fileURLToPath(new URL('./impacket_srvsvc_client.py', import.meta.url));

const probe = spawnSync(PYTHON, ['-c', 'import impacket.dcerpc.v5.srvs'], { encoding: 'utf8' });
const impacketMissing = probe.status !== 0 ? `cannot import impacket with ${PYTHON}: ${probe.error?.message ?? probe.stderr.trim()}` : '';
if (impacketMissing) console.warn(`skipping impacket real-peer test: ${impacketMissing}`);

// Enough shares that the level-1 and level-502 answers span several RESPONSE fragments.
const MANY: SrvsvcShare[] = [
  ...SHARES,
  ...Array.from({ length: 150 }, (_, i) => ({
    name: `share${String(i).padStart(3, '0')}`,
    type: STYPE.DISKTREE,
    remark: `remark for share number ${i}`,
    path: `C:\\shares\\share${i}`,
  })),
];

let server: Server;
let port = 0;
/** pfc_flags of every REQUEST fragment received. */
const requestFragments: number[] = [];

beforeAll(async () => {
  server = createServer((socket) => {
    const ep = new RpcPipeEndpoint([srvsvc(MANY)], { maxBufferedBytes: 1 << 20, caller: ADMIN, pipeName: 'srvsvc' });
    let seen = Buffer.alloc(0);
    socket.on('data', (chunk) => {
      // Count the request fragments the client sent (independently of the endpoint's framing).
      seen = Buffer.concat([seen, chunk]);
      for (let n = pduLength(seen); n !== undefined && seen.length >= n; n = pduLength(seen)) {
        if (seen[2] === PTYPE.REQUEST) requestFragments.push(seen[3]!);
        seen = seen.subarray(n);
      }
      ep.write(chunk);
      for (let m = ep.read(65536); m !== undefined; m = ep.read(65536)) socket.write(m);
    });
    socket.on('error', () => socket.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
});

afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

function runClient(fragment: number): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const child = spawn(PYTHON, [SCRIPT, String(port), String(fragment)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      if (code !== 0) reject(new Error(`impacket client exited ${code}: ${err}`));
      else resolve(JSON.parse(out) as Record<string, unknown>);
    });
  });
}

function expectAnswers(r: Record<string, unknown>): void {
  const enum1 = r.enum1 as { total: number; shares: Array<[string, number, string]> };
  expect(enum1.total).toBe(MANY.length);
  expect(enum1.shares).toHaveLength(MANY.length);
  expect(enum1.shares[0]).toEqual(['IPC$', 0x80000003, 'IPC Service']);
  expect(enum1.shares[2]).toEqual(['vms', 0, '']);
  expect(enum1.shares[152]).toEqual(['share149', 0, 'remark for share number 149']);
  expect((r.enum0 as string[]).slice(0, 3)).toEqual(['IPC$', 'Data', 'vms']);
  const enum502 = r.enum502 as unknown[][];
  expect(enum502[2]).toEqual(['vms', 0, 'C:\\shares\\vms', 10, 2, 0]);
  expect(enum502).toHaveLength(MANY.length);
  expect(r.get2).toEqual(['Data', 0, 'Team data', 'C:\\shares\\data', 0xffffffff, null]);
  expect(r.get1005).toBe(0x30);
  expect(r.getMissing).toBe(2310);
  expect(r.server101).toEqual([500, 'TESSERA', 10, 0, 0x9003, 'Tessera SMB3']);
  expect(r.server102).toEqual(['TESSERA', 'C:\\']);
  expect(String(r.sticky)).toMatch(/nca_s_op_rng_error/);
}

describe.skipIf(impacketMissing !== '')('impacket srvsvc client (real peer)', () => {
  it('binds, enumerates shares at levels 0/1/502, gets share and server info', async () => {
    expectAnswers(await runClient(0));
  });

  it('works with every request fragmented into 8-byte stubs', async () => {
    requestFragments.length = 0;
    expectAnswers(await runClient(8));
    // impacket wrote many small REQUEST fragments (neither first nor last among them), each call
    // reassembled by the endpoint.
    expect(requestFragments.length).toBeGreaterThan(20);
    expect(requestFragments.filter((f) => (f & (PFC.FIRST_FRAG | PFC.LAST_FRAG)) === 0).length).toBeGreaterThan(10);
  });
});
