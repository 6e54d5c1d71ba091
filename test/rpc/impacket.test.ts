// Real-peer test: impacket's srvsvc client (ncacn_ip_tcp: the same connection-oriented PDUs as
// ncacn_np) against a tiny TCP server that feeds the byte stream to an RpcPipeEndpoint.
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PFC, PTYPE } from '../../src/protocol/dcerpc.js';
import { STYPE, type SrvsvcShare } from '../../src/rpc/srvsvc.js';
import { SHARES, pythonModuleMissing, runPythonClient, startRpcTcpServer } from './helpers.js';

const SCRIPT = fileURLToPath(new URL('./impacket_srvsvc_client.py', import.meta.url));
const missing = pythonModuleMissing('impacket.dcerpc.v5.srvs');
if (missing) console.warn(`skipping impacket real-peer test: ${missing}`);

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

/** pfc_flags of every REQUEST fragment received. */
const requestFragments: number[] = [];
let srv: Awaited<ReturnType<typeof startRpcTcpServer>>;

beforeAll(async () => {
  srv = await startRpcTcpServer(MANY, (pdu) => {
    if (pdu[2] === PTYPE.REQUEST) requestFragments.push(pdu[3]!);
  });
});
afterAll(() => srv.close());

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

describe('impacket srvsvc client (real peer)', () => {
  // The real peer is installed by .ci/run (python3-impacket, samba): its absence is a failure, not a skip.
  it('has the real client available', () => {
    expect(missing, 'impacket missing (install it: see .ci/run)').toBe('');
  });

  it('binds, enumerates shares at levels 0/1/502, gets share and server info', async () => {
    expectAnswers(await runPythonClient(SCRIPT, [String(srv.port), '0']));
  });

  it('works with every request fragmented into 8-byte stubs', async () => {
    requestFragments.length = 0;
    expectAnswers(await runPythonClient(SCRIPT, [String(srv.port), '8']));
    // impacket wrote many small REQUEST fragments (most neither first nor last), each call
    // reassembled by the endpoint.
    expect(requestFragments.length).toBeGreaterThan(20);
    expect(requestFragments.filter((f) => (f & (PFC.FIRST_FRAG | PFC.LAST_FRAG)) === 0).length).toBeGreaterThan(10);
  });
});
