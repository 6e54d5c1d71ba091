// Real-peer test: Samba's DCE/RPC client library (python3-samba) against the endpoint over
// ncacn_ip_tcp. Samba's NDR parser is strict, and its bind proposes bind-time feature negotiation.
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PTYPE, decodeBind } from '../../src/protocol/dcerpc.js';
import { STYPE } from '../../src/rpc/srvsvc.js';
import { SHARES, pythonModuleMissing, runPythonClient, startRpcTcpServer } from './helpers.js';

const SCRIPT = fileURLToPath(new URL('./samba_srvsvc_client.py', import.meta.url));
const missing = pythonModuleMissing('samba.dcerpc.srvsvc');
if (missing) console.warn(`skipping Samba real-peer test: ${missing}`);

const MANY = [...SHARES, ...Array.from({ length: 100 }, (_, i) => ({ name: `vol${i}`, type: STYPE.DISKTREE, remark: `volume ${i}`, path: `C:\\v\\${i}` }))];
const binds: Buffer[] = [];
let srv: Awaited<ReturnType<typeof startRpcTcpServer>>;

beforeAll(async () => {
  srv = await startRpcTcpServer(MANY, (pdu) => {
    if (pdu[2] === PTYPE.BIND) binds.push(Buffer.from(pdu));
  });
});
afterAll(() => srv.close());

describe('Samba srvsvc client (real peer)', () => {
  // The real peer is installed by .ci/run (python3-impacket, samba): its absence is a failure, not a skip.
  it('has the real client available', () => {
    expect(missing, 'Samba python bindings missing (install it: see .ci/run)').toBe('');
  });

  it('enumerates shares and reads share and server info', async () => {
    const r = await runPythonClient(SCRIPT, [String(srv.port)]);
    const enum1 = r.enum1 as { total: number; resume: number; shares: unknown[][] };
    expect([enum1.total, enum1.resume, enum1.shares.length]).toEqual([MANY.length, 0, MANY.length]);
    expect(enum1.shares.slice(0, 3)).toEqual([
      ['IPC$', 0x80000003, 'IPC Service'],
      ['Data', 0, 'Team data'],
      ['vms', 0, ''],
    ]);
    expect((r.enum502 as unknown[][])[1]).toEqual(['Data', 'C:\\shares\\data', null, 0xffffffff, 0]);
    expect(r.get502).toEqual(['vms', 'C:\\shares\\vms', 10, 2]);
    expect(r.getMissing).toBe(2310);
    expect(r.server101).toEqual([500, 'TESSERA', 10, 0, 0x9003, 'Tessera SMB3']);
    expect(r.server102).toEqual(['TESSERA', 'C:\\', 15, 240]);
    expect(r.opnum36).toBe(0xc002002e); // our nca_s_op_rng_error fault, as NT_STATUS_RPC_PROCNUM_OUT_OF_RANGE
    // The client proposed bind-time feature negotiation, which the endpoint acknowledged.
    const features = decodeBind(binds[0]!).p_context_elem.filter((c) => c.transfer_syntaxes[0]!.if_uuid.startsWith('6cb71c2c'));
    expect(features).toHaveLength(1);
  });
});
