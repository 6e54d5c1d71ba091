// Shared fixtures for the rpc tests.
import { spawn, spawnSync } from 'node:child_process';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { SrvsvcService, STYPE, type SrvsvcShare } from '../../src/rpc/srvsvc.js';
import { RpcPipeEndpoint, type RpcCaller } from '../../src/rpc/pipe.js';
import {
  PFC,
  encodeBind,
  encodeRequest,
  pduLength,
  type SyntaxId,
} from '../../src/protocol/dcerpc.js';
import { NDR20_SYNTAX_UUID, NDR64_SYNTAX_UUID } from '../../src/protocol/ndr.js';

export const SHARES: SrvsvcShare[] = [
  { name: 'IPC$', type: STYPE.IPC | STYPE.SPECIAL, remark: 'IPC Service' },
  { name: 'Data', type: STYPE.DISKTREE, remark: 'Team data', path: 'C:\\shares\\data', flags: 0x30 },
  { name: 'vms', type: STYPE.DISKTREE, remark: '', path: 'C:\\shares\\vms', maxUses: 10, currentUses: 2 },
];

export const ADMIN: RpcCaller = { userName: 'admin', domain: 'TESSERA', isAdmin: true };

export function srvsvc(shares: SrvsvcShare[] = SHARES): SrvsvcService {
  return new SrvsvcService({ listShares: () => shares, serverName: 'TESSERA', serverComment: 'Tessera SMB3' });
}

export function endpoint(shares: SrvsvcShare[] = SHARES, caller: RpcCaller = ADMIN): RpcPipeEndpoint {
  return new RpcPipeEndpoint([srvsvc(shares)], { maxBufferedBytes: 1 << 20, caller, pipeName: 'srvsvc', assocGroupId: 0x1234 });
}

export const SRVSVC_SYNTAX: SyntaxId = { if_uuid: '4b324fc8-1670-01d3-1278-5a47bf6ee188', if_version: 3 };
export const NDR20: SyntaxId = { if_uuid: NDR20_SYNTAX_UUID, if_version: 2 };
export const NDR64: SyntaxId = { if_uuid: NDR64_SYNTAX_UUID, if_version: 1 };
export const BTFN: SyntaxId = { if_uuid: '6cb71c2c-9812-4540-0300-000000000000', if_version: 1 };

/** The bind a Windows client sends: NDR, NDR64 and bind-time feature negotiation contexts. */
export function windowsBind(callId = 1, frag = 4280): Buffer {
  return encodeBind({
    call_id: callId,
    max_xmit_frag: frag,
    max_recv_frag: frag,
    assoc_group_id: 0,
    p_context_elem: [
      { p_cont_id: 0, abstract_syntax: SRVSVC_SYNTAX, transfer_syntaxes: [NDR20] },
      { p_cont_id: 1, abstract_syntax: SRVSVC_SYNTAX, transfer_syntaxes: [NDR64] },
      { p_cont_id: 2, abstract_syntax: SRVSVC_SYNTAX, transfer_syntaxes: [BTFN] },
    ],
  });
}

/** Splits a byte stream of PDUs into PDUs. */
export function splitPdus(stream: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let at = 0;
  while (at < stream.length) {
    const n = pduLength(stream.subarray(at))!;
    out.push(stream.subarray(at, at + n));
    at += n;
  }
  return out;
}

/** Everything queued on the endpoint, read with a large buffer. */
export function drain(ep: RpcPipeEndpoint): Buffer[] {
  const out: Buffer[] = [];
  for (let m = ep.readMessage(1 << 20); m !== undefined; m = ep.readMessage(1 << 20)) out.push(m.output);
  return out;
}

/** Request fragments of at most `chunk` stub bytes. */
export function fragmentRequest(callId: number, opnum: number, stub: Buffer, chunk: number, contextId = 0): Buffer[] {
  const out: Buffer[] = [];
  for (let at = 0; at < stub.length || at === 0; at += chunk) {
    const part = stub.subarray(at, at + chunk);
    const flags = (at === 0 ? PFC.FIRST_FRAG : 0) | (at + chunk >= stub.length ? PFC.LAST_FRAG : 0);
    out.push(encodeRequest({ call_id: callId, pfc_flags: flags, alloc_hint: stub.length - at, p_cont_id: contextId, opnum, stub: part }));
    if (stub.length === 0) break;
  }
  return out;
}

/** NetrShareEnum [in] stub, hand-built from the MS-SRVS 3.1.4.8 IDL: ServerName NULL, an empty container. */
export function shareEnumStub(level: number, prefMax = 0xffffffff, resume: number | null = 0): Buffer {
  const b = Buffer.alloc(36);
  b.writeUInt32LE(0, 0); // ServerName: NULL unique pointer
  b.writeUInt32LE(level, 4); // InfoStruct.Level
  b.writeUInt32LE(level, 8); // union tag
  b.writeUInt32LE(0x20000, 12); // -> SHARE_INFO_x_CONTAINER
  b.writeUInt32LE(0, 16); // EntriesRead
  b.writeUInt32LE(0, 20); // Buffer: NULL
  b.writeUInt32LE(prefMax, 24); // PreferedMaximumLength
  if (resume === null) return b.subarray(0, 32); // ResumeHandle: NULL
  b.writeUInt32LE(0x20004, 28); // ResumeHandle -> DWORD
  b.writeUInt32LE(resume, 32);
  return b;
}

/**
 * A TCP server on 127.0.0.1 that runs one RpcPipeEndpoint per connection (ncacn_ip_tcp framing is
 * the same PDU stream as a named pipe). onPdu sees every PDU the client sent.
 */
export async function startRpcTcpServer(
  shares: SrvsvcShare[],
  onPdu: (pdu: Buffer) => void = () => {},
): Promise<{ server: Server; port: number; close(): Promise<void> }> {
  const server = createServer((socket) => {
    const ep = new RpcPipeEndpoint([srvsvc(shares)], { maxBufferedBytes: 1 << 20, caller: ADMIN, pipeName: 'srvsvc' });
    let seen = Buffer.alloc(0);
    socket.on('data', (chunk) => {
      seen = Buffer.concat([seen, chunk]);
      for (let n = pduLength(seen); n !== undefined && seen.length >= n; n = pduLength(seen)) {
        onPdu(seen.subarray(0, n));
        seen = seen.subarray(n);
      }
      ep.write(chunk);
      for (let m = ep.read(65536); m !== undefined; m = ep.read(65536)) socket.write(m);
    });
    socket.on('error', () => socket.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return { server, port, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

export const PYTHON = '/usr/bin/python3';

/** Why `import module` fails under /usr/bin/python3, or '' when it works. */
export function pythonModuleMissing(module: string): string {
  const probe = spawnSync(PYTHON, ['-c', `import ${module}`], { encoding: 'utf8' });
  return probe.status === 0 ? '' : `cannot import ${module} with ${PYTHON}: ${probe.error?.message ?? probe.stderr.trim()}`;
}

/** Runs a Python client script and parses the JSON object it prints. */
export function runPythonClient(script: string, args: string[]): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const child = spawn(PYTHON, [script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      if (code !== 0) reject(new Error(`${script} exited ${code}: ${err}`));
      else resolve(JSON.parse(out) as Record<string, unknown>);
    });
  });
}
