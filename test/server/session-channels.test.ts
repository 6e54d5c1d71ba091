// Sessions across connections: re-authentication, PreviousSessionId, session binding (multichannel)
// with per-channel signing keys, LOGOFF on any channel, FSCTL_QUERY_NETWORK_INTERFACE_INFO
// (MS-SMB2 3.3.5.5, 3.3.5.6, 3.3.5.15.11). The rules are checked directly (bindingRefusal, the
// channel key choice, the interface list) and over the wire against a real server process, with a
// small SMB 3.0.2 client written here (raw NTLMSSP, AES-CMAC signing, SP800-108 key derivation)
// rather than the server's own codecs.

import { createCipheriv, createHmac, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NtlmTestClient } from '../auth/ntlm-test-client.js';
import { encodeAuthenticateMessage } from '../../src/protocol/ntlm.js';
import { freePort, startTessera, type RunningServer } from '../helpers/servers.js';
import { FrameSplitter } from '../helpers/smbwire.js';
import { bindingRefusal, newChannel, sessionSigningKey, signingKeyFor } from '../../src/server/channels.js';
import { Session } from '../../src/server/state.js';
import type { Connection } from '../../src/server/connection.js';
import { decodeNetworkInterfaceInfo, encodeNetworkInterfaceInfo, ipv6Bytes } from '../../src/protocol/network-interface.js';
import { interfacesFor } from '../../src/server/handlers/ioctl-network.js';

// ---- statuses and constants the tests name (MS-ERREF 2.3.1, MS-SMB2 2.2) ----

const S = {
  SUCCESS: 0,
  MORE_PROCESSING_REQUIRED: 0xc0000016,
  INVALID_PARAMETER: 0xc000000d,
  ACCESS_DENIED: 0xc0000022,
  LOGON_FAILURE: 0xc000006d,
  NOT_SUPPORTED: 0xc00000bb,
  REQUEST_NOT_ACCEPTED: 0xc00000d0,
  USER_SESSION_DELETED: 0xc0000203,
  REQUEST_OUT_OF_SEQUENCE: 0xc000042a,
} as const;
const CMD = { NEGOTIATE: 0, SESSION_SETUP: 1, LOGOFF: 2, TREE_CONNECT: 3, IOCTL: 0x0b } as const;
const FLAG_RESPONSE = 0x1;
const FLAG_SIGNED = 0x8;
const CAP_MULTI_CHANNEL = 0x8;
const SESSION_FLAG_BINDING = 0x1;
const SIGNING_REQUIRED = 0x2;
const FSCTL_QUERY_NETWORK_INTERFACE_INFO = 0x001401fc;

// ---------------------------------------------------------------- the rules, directly

function fakeConn(n: { dialect: number; signingAlgorithm: number; cipherId?: number }): Connection {
  return { negotiated: { cipherId: 0, ...n }, isClosed: false } as unknown as Connection;
}

function establishedSession(c: Connection, f: { dialect: number; signingAlgorithm: number; cipherId?: number }): Session {
  const s = new Session(1n);
  s.state = 'valid';
  s.dialect = f.dialect;
  s.signingAlgorithm = f.signingAlgorithm;
  s.cipherId = f.cipherId ?? 0;
  s.sid = 'S-1-5-21-1-2-3-1000';
  s.keys = { sessionKey: Buffer.alloc(16, 1), signingKey: Buffer.alloc(16, 2) };
  const ch = newChannel(c, { bound: true, signingAlgorithm: f.signingAlgorithm });
  ch.signingKey = s.keys.signingKey;
  s.channels.set(c, ch);
  return s;
}

const HMAC = 0;
const CMAC = 1;
const GMAC = 2;

describe('bindingRefusal (MS-SMB2 3.3.5.5.2, in the order Windows checks)', () => {
  const ok = { signed: true, multiChannel: true };
  const cases: { name: string; session: [number, number, number?]; conn: [number, number, number?]; f?: Partial<typeof ok>; want: number | undefined }[] = [
    { name: 'same dialect, algorithm and cipher binds', session: [0x311, CMAC, 2], conn: [0x311, CMAC, 2], want: undefined },
    { name: 'CMAC session over an HMAC-SHA256 3.1.1 connection binds', session: [0x311, CMAC, 2], conn: [0x311, HMAC, 2], want: undefined },
    { name: 'GMAC session over a CMAC connection', session: [0x311, GMAC], conn: [0x311, CMAC], want: S.REQUEST_OUT_OF_SEQUENCE },
    { name: 'GMAC session over a 2.1 connection', session: [0x311, GMAC], conn: [0x210, HMAC], want: S.REQUEST_OUT_OF_SEQUENCE },
    { name: 'CMAC session over a GMAC connection', session: [0x311, CMAC], conn: [0x311, GMAC], want: S.NOT_SUPPORTED },
    { name: '3.0 session over a GMAC connection', session: [0x300, CMAC], conn: [0x311, GMAC], want: S.NOT_SUPPORTED },
    { name: '2.0.2 connection', session: [0x202, HMAC], conn: [0x202, HMAC], want: S.REQUEST_NOT_ACCEPTED },
    { name: '3.1.1 session over a 2.1 connection', session: [0x311, CMAC], conn: [0x210, HMAC], want: S.REQUEST_NOT_ACCEPTED },
    { name: 'multichannel off', session: [0x311, CMAC], conn: [0x311, CMAC], f: { multiChannel: false }, want: S.REQUEST_NOT_ACCEPTED },
    { name: 'unsigned request', session: [0x311, CMAC], conn: [0x311, CMAC], f: { signed: false }, want: S.INVALID_PARAMETER },
    { name: '2.1 session over a 3.1.1 connection', session: [0x210, HMAC], conn: [0x311, CMAC], want: S.INVALID_PARAMETER },
    { name: '3.0.2 session over a 3.1.1 connection', session: [0x302, CMAC], conn: [0x311, CMAC], want: S.INVALID_PARAMETER },
    { name: 'cipher mismatch', session: [0x311, CMAC, 2], conn: [0x311, CMAC, 1], want: S.INVALID_PARAMETER },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const first = fakeConn({ dialect: c.session[0], signingAlgorithm: c.session[1], cipherId: c.session[2] ?? 0 });
      const s = establishedSession(first, { dialect: c.session[0], signingAlgorithm: c.session[1], cipherId: c.session[2] ?? 0 });
      const second = fakeConn({ dialect: c.conn[0], signingAlgorithm: c.conn[1], cipherId: c.conn[2] ?? 0 });
      expect(bindingRefusal(s, second, { ...ok, ...c.f })).toBe(c.want);
    });
  }

  it('a connection that already is a channel cannot bind again; a session in progress or a guest one cannot be bound', () => {
    const first = fakeConn({ dialect: 0x311, signingAlgorithm: CMAC });
    const s = establishedSession(first, { dialect: 0x311, signingAlgorithm: CMAC });
    expect(bindingRefusal(s, first, ok)).toBe(S.REQUEST_NOT_ACCEPTED);
    const second = fakeConn({ dialect: 0x311, signingAlgorithm: CMAC });
    s.channels.set(second, newChannel(second, { bound: false, signingAlgorithm: CMAC }));
    expect(bindingRefusal(s, second, ok)).toBeUndefined(); // a binding in progress continues
    const third = fakeConn({ dialect: 0x311, signingAlgorithm: CMAC });
    s.isGuest = true;
    expect(bindingRefusal(s, third, ok)).toBe(S.NOT_SUPPORTED);
    s.isGuest = false;
    s.state = 'inProgress';
    expect(bindingRefusal(s, third, ok)).toBe(S.USER_SESSION_DELETED);
  });
});

describe('signing keys per channel (MS-SMB2 3.3.5.2.4, 3.3.4.1.1)', () => {
  it('a bound channel signs with its own key and algorithm; elsewhere Session.SigningKey with the session algorithm', () => {
    const first = fakeConn({ dialect: 0x311, signingAlgorithm: CMAC });
    const s = establishedSession(first, { dialect: 0x311, signingAlgorithm: CMAC });
    const second = fakeConn({ dialect: 0x311, signingAlgorithm: HMAC });
    const ch = newChannel(second, { bound: false, signingAlgorithm: HMAC });
    s.channels.set(second, ch);
    // Binding in progress: the session's key, the session's algorithm.
    expect(signingKeyFor(s, second)).toEqual({ key: Buffer.alloc(16, 2), algorithm: CMAC });
    ch.signingKey = Buffer.alloc(16, 9);
    ch.bound = true;
    expect(signingKeyFor(s, second)).toEqual({ key: Buffer.alloc(16, 9), algorithm: HMAC });
    expect(signingKeyFor(s, first)).toEqual({ key: Buffer.alloc(16, 2), algorithm: CMAC });
    const stranger = fakeConn({ dialect: 0x311, signingAlgorithm: GMAC });
    expect(signingKeyFor(s, stranger)).toEqual(sessionSigningKey(s));
    s.keys = undefined;
    expect(sessionSigningKey(s)).toBeUndefined();
  });
});

describe('NETWORK_INTERFACE_INFO (MS-SMB2 2.2.32.5)', () => {
  it('encodes 152-byte entries chained by Next, IPv4 and IPv6 socket addresses', () => {
    const buf = encodeNetworkInterfaceInfo([
      { IfIndex: 2, Capability: 1, LinkSpeed: 10_000_000_000n, address: '192.0.2.7' },
      { IfIndex: 3, Capability: 0, LinkSpeed: 1_000_000_000n, address: '2001:db8::1' },
    ]);
    expect(buf.length).toBe(304);
    expect(buf.readUInt32LE(0)).toBe(152);
    expect(buf.readUInt32LE(152)).toBe(0);
    expect(buf.readUInt16LE(24)).toBe(0x0002);
    expect([...buf.subarray(28, 32)]).toEqual([192, 0, 2, 7]);
    expect(buf.readUInt16LE(152 + 24)).toBe(0x0017);
    expect(decodeNetworkInterfaceInfo(buf)).toEqual([
      { IfIndex: 2, Capability: 1, LinkSpeed: 10_000_000_000n, address: '192.0.2.7' },
      { IfIndex: 3, Capability: 0, LinkSpeed: 1_000_000_000n, address: '2001:db8:0:0:0:0:0:1' },
    ]);
  });

  it('parses IPv6 text forms', () => {
    expect(ipv6Bytes('::1').toString('hex')).toBe('00000000000000000000000000000001');
    expect(ipv6Bytes('fe80::1%eth0').toString('hex')).toBe('fe800000000000000000000000000001');
    expect(ipv6Bytes('::ffff:192.0.2.1').toString('hex')).toBe('00000000000000000000ffffc0000201');
  });

  it('lists the listening addresses; a wildcard listener stands for every non-loopback address', () => {
    const ifaces = {
      lo: [{ address: '127.0.0.1', family: 'IPv4', internal: true }],
      eth0: [
        { address: '192.0.2.10', family: 'IPv4', internal: false },
        { address: '2001:db8::10', family: 'IPv6', internal: false },
      ],
      eth1: [{ address: '198.51.100.3', family: 'IPv4', internal: false }],
    } as unknown as ReturnType<typeof import('node:os').networkInterfaces>;
    expect(interfacesFor(['127.0.0.1'], ifaces).map((e) => [e.IfIndex, e.address])).toEqual([[1, '127.0.0.1']]);
    expect(interfacesFor(['0.0.0.0'], ifaces).map((e) => [e.IfIndex, e.address])).toEqual([
      [2, '192.0.2.10'],
      [3, '198.51.100.3'],
    ]);
    expect(interfacesFor(['::'], ifaces).map((e) => e.address)).toEqual(['192.0.2.10', '2001:db8::10', '198.51.100.3']);
    // An address of no interface still gets a nonzero IfIndex.
    expect(interfacesFor(['203.0.113.9'], ifaces)[0]!.IfIndex).toBe(1);
  });
});

// ---------------------------------------------------------------- a small SMB 3.0.2 client

/** SP800-108 counter-mode KDF with HMAC-SHA256, L = 128 (MS-SMB2 3.1.4.2). */
function kdf(key: Buffer, label: string, context: string): Buffer {
  const h = createHmac('sha256', key);
  h.update(Buffer.from([0, 0, 0, 1]));
  h.update(Buffer.from(`${label}\0`, 'latin1'));
  h.update(Buffer.from([0]));
  h.update(Buffer.from(`${context}\0`, 'latin1'));
  h.update(Buffer.from([0, 0, 0, 128]));
  return h.digest().subarray(0, 16);
}

/** The 3.0.x signing key (MS-SMB2 3.2.5.3.1): KDF(SessionKey, "SMB2AESCMAC", "SmbSign"). */
const signingKey30 = (sessionKey: Buffer): Buffer => kdf(sessionKey, 'SMB2AESCMAC', 'SmbSign');

/** AES-128-CMAC (RFC 4493). */
function aesCmac(key: Buffer, data: Buffer): Buffer {
  const enc = (b: Buffer): Buffer => {
    const c = createCipheriv('aes-128-ecb', key, null);
    c.setAutoPadding(false);
    return Buffer.concat([c.update(b), c.final()]);
  };
  const dbl = (b: Buffer): Buffer => {
    const out = Buffer.alloc(16);
    for (let i = 0; i < 16; i++) out[i] = ((b[i]! << 1) | (i < 15 ? b[i + 1]! >> 7 : 0)) & 0xff;
    if (b[0]! & 0x80) out[15] = out[15]! ^ 0x87;
    return out;
  };
  const k1 = dbl(enc(Buffer.alloc(16)));
  const k2 = dbl(k1);
  const n = Math.max(1, Math.ceil(data.length / 16));
  const complete = data.length > 0 && data.length % 16 === 0;
  const last = Buffer.alloc(16);
  data.copy(last, 0, (n - 1) * 16);
  if (!complete) last[data.length - (n - 1) * 16] = 0x80;
  const kx = complete ? k1 : k2;
  for (let i = 0; i < 16; i++) last[i] = last[i]! ^ kx[i]!;
  let x: Buffer = Buffer.alloc(16);
  for (let b = 0; b < n - 1; b++) {
    const block = data.subarray(b * 16, b * 16 + 16);
    for (let i = 0; i < 16; i++) x[i] = x[i]! ^ block[i]!;
    x = enc(x);
  }
  for (let i = 0; i < 16; i++) x[i] = x[i]! ^ last[i]!;
  return enc(x);
}

function sign(msg: Buffer, key: Buffer): void {
  msg.writeUInt32LE(msg.readUInt32LE(16) | FLAG_SIGNED, 16);
  msg.fill(0, 48, 64);
  aesCmac(key, msg).copy(msg, 48);
}

function signatureValid(msg: Buffer, key: Buffer): boolean {
  const copy = Buffer.from(msg);
  copy.fill(0, 48, 64);
  return aesCmac(key, copy).equals(msg.subarray(48, 64));
}

interface Response {
  status: number;
  flags: number;
  sessionId: bigint;
  treeId: number;
  msg: Buffer;
  body: Buffer;
}

class Conn {
  private nextMid = 0n;
  private readonly waiting = new Map<bigint, (r: Response) => void>();
  dialect = 0;
  capabilities = 0;
  private constructor(private readonly sock: Socket) {}

  static async open(port: number, dialects: number[], clientGuid = randomBytes(16)): Promise<Conn> {
    const sock = new Socket();
    await new Promise<void>((resolve, reject) => {
      sock.once('error', reject);
      sock.connect(port, '127.0.0.1', () => resolve());
    });
    const c = new Conn(sock);
    const splitter = new FrameSplitter((frame) => c.onFrame(frame));
    sock.on('data', (d: Buffer) => splitter.push(d));
    sock.on('error', () => undefined);
    const body = Buffer.alloc(36 + dialects.length * 2);
    body.writeUInt16LE(36, 0);
    body.writeUInt16LE(dialects.length, 2);
    body.writeUInt16LE(1, 4); // SIGNING_ENABLED
    body.writeUInt32LE(CAP_MULTI_CHANNEL, 8);
    clientGuid.copy(body, 12);
    dialects.forEach((d, i) => body.writeUInt16LE(d, 36 + i * 2));
    const r = await c.send(CMD.NEGOTIATE, body);
    expect(r.status).toBe(S.SUCCESS);
    c.dialect = r.body.readUInt16LE(4);
    c.capabilities = r.body.readUInt32LE(24);
    return c;
  }

  private onFrame(frame: Buffer): void {
    const r: Response = {
      status: frame.readUInt32LE(8),
      flags: frame.readUInt32LE(16),
      treeId: frame.readUInt32LE(36),
      sessionId: frame.readBigUInt64LE(40),
      msg: frame,
      body: frame.subarray(64),
    };
    if (r.status === 0x103) return; // interim response
    const mid = frame.readBigUInt64LE(24);
    this.waiting.get(mid)?.(r);
    this.waiting.delete(mid);
  }

  send(command: number, body: Buffer, o: { sessionId?: bigint; treeId?: number; key?: Buffer } = {}): Promise<Response> {
    const msg = Buffer.alloc(64 + body.length);
    msg.writeUInt32LE(0x424d53fe, 0);
    msg.writeUInt16LE(64, 4);
    msg.writeUInt16LE(1, 6); // CreditCharge
    msg.writeUInt16LE(command, 12);
    msg.writeUInt16LE(8, 14); // credits asked
    const mid = this.nextMid++;
    msg.writeBigUInt64LE(mid, 24);
    msg.writeUInt32LE(o.treeId ?? 0, 36);
    msg.writeBigUInt64LE(o.sessionId ?? 0n, 40);
    body.copy(msg, 64);
    if (o.key) sign(msg, o.key);
    const frame = Buffer.alloc(4 + msg.length);
    frame.writeUInt32BE(msg.length, 0);
    msg.copy(frame, 4);
    return new Promise((resolve, reject) => {
      // A response that never comes fails the test here rather than at the test timeout.
      const timer = setTimeout(() => reject(new Error(`no response to command ${command} (MessageId ${mid})`)), 10_000);
      this.waiting.set(mid, (r) => {
        clearTimeout(timer);
        resolve(r);
      });
      this.sock.write(frame);
    });
  }

  /** One SESSION_SETUP leg (raw NTLMSSP in the security buffer). */
  sessionSetup(token: Buffer, o: { sessionId?: bigint; key?: Buffer; flags?: number; previousSessionId?: bigint } = {}): Promise<Response> {
    const body = Buffer.alloc(24 + token.length);
    body.writeUInt16LE(25, 0);
    body[2] = o.flags ?? 0;
    body[3] = SIGNING_REQUIRED | 1;
    body.writeUInt16LE(64 + 24, 12);
    body.writeUInt16LE(token.length, 14);
    body.writeBigUInt64LE(o.previousSessionId ?? 0n, 16);
    token.copy(body, 24);
    return this.send(CMD.SESSION_SETUP, body, { ...(o.sessionId !== undefined ? { sessionId: o.sessionId } : {}), ...(o.key ? { key: o.key } : {}) });
  }

  /** Runs NTLM over SESSION_SETUP; returns the last response and the exported session key. */
  async authenticate(
    user: string,
    password: string,
    o: { sessionId?: bigint; key?: Buffer; flags?: number; previousSessionId?: bigint } = {},
  ): Promise<{ r: Response; sessionKey: Buffer }> {
    const ntlm = new NtlmTestClient({ user, password, domain: 'WORKGROUP', randomSessionKey: randomBytes(16) });
    const first = await this.sessionSetup(ntlm.negotiate(), o);
    if (first.status !== S.MORE_PROCESSING_REQUIRED) return { r: first, sessionKey: Buffer.alloc(0) };
    const challenge = first.body.subarray(first.body.readUInt16LE(4) - 64, first.body.readUInt16LE(4) - 64 + first.body.readUInt16LE(6));
    const r = await this.sessionSetup(ntlm.authenticate(challenge), { ...o, sessionId: first.sessionId });
    return { r, sessionKey: ntlm.exportedSessionKey };
  }

  treeConnect(sessionId: bigint, key: Buffer | undefined, port: number): Promise<Response> {
    const path = Buffer.from(`\\\\127.0.0.1:${port}\\vms`, 'utf16le');
    const body = Buffer.alloc(8 + path.length);
    body.writeUInt16LE(9, 0);
    body.writeUInt16LE(64 + 8, 4);
    body.writeUInt16LE(path.length, 6);
    path.copy(body, 8);
    return this.send(CMD.TREE_CONNECT, body, { sessionId, ...(key ? { key } : {}) });
  }

  logoff(sessionId: bigint, key: Buffer): Promise<Response> {
    const body = Buffer.alloc(4);
    body.writeUInt16LE(4, 0);
    return this.send(CMD.LOGOFF, body, { sessionId, key });
  }

  queryInterfaces(sessionId: bigint, treeId: number, key: Buffer): Promise<Response> {
    const body = Buffer.alloc(56);
    body.writeUInt16LE(57, 0);
    body.writeUInt32LE(FSCTL_QUERY_NETWORK_INTERFACE_INFO, 4);
    body.fill(0xff, 8, 24); // FileId { -1, -1 }
    body.writeUInt32LE(0x10000, 44); // MaxOutputResponse
    body.writeUInt32LE(1, 48); // SMB2_0_IOCTL_IS_FSCTL
    return this.send(CMD.IOCTL, body, { sessionId, treeId, key });
  }

  close(): void {
    this.sock.destroy();
  }
}

/** A session established on `c`: id and Session.SigningKey. */
async function logon(c: Conn, user = 'alice', password = 'Alice-Pw1'): Promise<{ id: bigint; key: Buffer }> {
  const { r, sessionKey } = await c.authenticate(user, password);
  expect(r.status).toBe(S.SUCCESS);
  const key = signingKey30(sessionKey);
  expect(signatureValid(r.msg, key)).toBe(true);
  return { id: r.sessionId, key };
}

/** Binds session `s` to `c`; returns the channel's signing key. */
async function bind(c: Conn, s: { id: bigint; key: Buffer }, user = 'alice', password = 'Alice-Pw1'): Promise<{ r: Response; channelKey: Buffer }> {
  const { r, sessionKey } = await c.authenticate(user, password, { sessionId: s.id, key: s.key, flags: SESSION_FLAG_BINDING });
  return { r, channelKey: sessionKey.length ? signingKey30(sessionKey) : Buffer.alloc(0) };
}

// ---------------------------------------------------------------- over the wire

describe('sessions across connections, against a server process', () => {
  let server: RunningServer;
  let dir: string;
  let port: number;
  const SMB302 = 0x302;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tessera-channels-'));
    port = await freePort();
    server = await startTessera({
      port,
      shares: [{ name: 'vms', path: join(dir, 'vms') }],
      users: [
        { name: 'alice', password: 'Alice-Pw1' },
        { name: 'bob', password: 'Bob-Pw-22' },
      ],
      extraArgs: ['--log-level', 'warn'],
    });
  }, 120_000);

  afterAll(async () => {
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('advertises multichannel on 3.x and binds a session to a second connection with its own signing key', async () => {
    const c1 = await Conn.open(port, [SMB302]);
    const c2 = await Conn.open(port, [SMB302]);
    try {
      expect(c1.capabilities & CAP_MULTI_CHANNEL).toBe(CAP_MULTI_CHANNEL);
      const s = await logon(c1);
      // Not a channel yet: the session is unknown on c2 (signed flag echoed, 3.3.5.2.9).
      const stray = await c2.treeConnect(s.id, s.key, port);
      expect(stray.status).toBe(S.USER_SESSION_DELETED);
      expect(stray.flags & FLAG_SIGNED).toBe(FLAG_SIGNED);

      const { r, channelKey } = await bind(c2, s);
      expect(r.status).toBe(S.SUCCESS);
      expect(r.sessionId).toBe(s.id);
      expect(channelKey.equals(s.key)).toBe(false);
      // The final response is signed with the new Channel.SigningKey (MS-SMB2 3.3.5.5.3).
      expect(signatureValid(r.msg, channelKey)).toBe(true);

      // The session now works on both connections, each with its own key.
      const t2 = await c2.treeConnect(s.id, channelKey, port);
      expect(t2.status).toBe(S.SUCCESS);
      expect(signatureValid(t2.msg, channelKey)).toBe(true);
      expect((await c1.treeConnect(s.id, s.key, port)).status).toBe(S.SUCCESS);
      // c2 no longer accepts the session's key: its channel has its own.
      expect((await c2.treeConnect(s.id, s.key, port)).status).toBe(S.ACCESS_DENIED);

      // FSCTL_QUERY_NETWORK_INTERFACE_INFO lists the listening address (MS-SMB2 3.3.5.15.11).
      const q = await c2.queryInterfaces(s.id, t2.treeId, channelKey);
      expect(q.status).toBe(S.SUCCESS);
      const out = q.msg.subarray(q.body.readUInt32LE(32), q.body.readUInt32LE(32) + q.body.readUInt32LE(36));
      expect(decodeNetworkInterfaceInfo(out).map((e) => e.address)).toEqual(['127.0.0.1']);
    } finally {
      c1.close();
      c2.close();
    }
  });

  it('refuses unsigned, repeated and other-user bindings, and a failed binding leaves the session alone', async () => {
    const c1 = await Conn.open(port, [SMB302]);
    const c2 = await Conn.open(port, [SMB302]);
    try {
      const s = await logon(c1);
      // Unsigned binding request (MS-SMB2 3.3.5.5.2).
      const unsigned = await c2.sessionSetup(new NtlmTestClient({ user: 'alice', password: 'x', domain: 'W' }).negotiate(), {
        sessionId: s.id,
        flags: SESSION_FLAG_BINDING,
      });
      expect(unsigned.status).toBe(S.INVALID_PARAMETER);
      // Another user, then a wrong password: refused, and the session lives on c1. A refusal is
      // signed with Session.SigningKey, which the client checks before reporting the status.
      const other = await bind(c2, s, 'bob', 'Bob-Pw-22');
      expect(other.r.status).toBe(S.ACCESS_DENIED);
      expect(signatureValid(other.r.msg, s.key)).toBe(true);
      expect((await bind(c2, s, 'alice', 'wrong')).r.status).toBe(S.LOGON_FAILURE);
      expect((await c1.treeConnect(s.id, s.key, port)).status).toBe(S.SUCCESS);
      const again = await bind(c2, s);
      expect(again.r.status).toBe(S.SUCCESS);
      // Binding a connection that already is a channel: its key checks the request now.
      const twice = await c2.authenticate('alice', 'Alice-Pw1', { sessionId: s.id, key: again.channelKey, flags: SESSION_FLAG_BINDING });
      expect(twice.r.status).toBe(S.REQUEST_NOT_ACCEPTED);
      expect(signatureValid(twice.r.msg, again.channelKey)).toBe(true);
    } finally {
      c1.close();
      c2.close();
    }
  });

  it('a 2.1 connection cannot bind (STATUS_REQUEST_NOT_ACCEPTED, signed with the session key)', async () => {
    const c1 = await Conn.open(port, [SMB302]);
    const c2 = await Conn.open(port, [0x210]);
    try {
      expect(c2.dialect).toBe(0x210);
      expect(c2.capabilities & CAP_MULTI_CHANNEL).toBe(0);
      const s = await logon(c1);
      // The 2.1 client signs the binding with the session's (CMAC) key, as its session was made on 3.0.2.
      const r = await c2.sessionSetup(new NtlmTestClient({ user: 'alice', password: 'Alice-Pw1', domain: 'W' }).negotiate(), {
        sessionId: s.id,
        key: s.key,
        flags: SESSION_FLAG_BINDING,
      });
      expect(r.status).toBe(S.REQUEST_NOT_ACCEPTED);
      expect(signatureValid(r.msg, s.key)).toBe(true);
    } finally {
      c1.close();
      c2.close();
    }
  });

  it('LOGOFF on one channel ends the session on all; losing one connection does not', async () => {
    const c1 = await Conn.open(port, [SMB302]);
    const c2 = await Conn.open(port, [SMB302]);
    const c3 = await Conn.open(port, [SMB302]);
    try {
      const s = await logon(c1);
      const b2 = await bind(c2, s);
      const b3 = await bind(c3, s);
      expect(b2.r.status).toBe(S.SUCCESS);
      expect(b3.r.status).toBe(S.SUCCESS);
      c1.close(); // the first channel goes; the session stays on c2 and c3
      await expect.poll(async () => (await c2.treeConnect(s.id, b2.channelKey, port)).status, { timeout: 5000 }).toBe(S.SUCCESS);
      const off = await c3.logoff(s.id, b3.channelKey);
      expect(off.status).toBe(S.SUCCESS);
      expect(signatureValid(off.msg, b3.channelKey)).toBe(true);
      expect((await c2.treeConnect(s.id, b2.channelKey, port)).status).toBe(S.USER_SESSION_DELETED);
    } finally {
      c1.close();
      c2.close();
      c3.close();
    }
  });

  it('re-authentication keeps the keys; a failed one ends the session', async () => {
    const c1 = await Conn.open(port, [SMB302]);
    try {
      const s = await logon(c1);
      const re = await c1.authenticate('alice', 'Alice-Pw1', { sessionId: s.id, key: s.key });
      expect(re.r.status).toBe(S.SUCCESS);
      expect(signatureValid(re.r.msg, s.key)).toBe(true); // the old key, not one from the new auth
      expect((await c1.treeConnect(s.id, s.key, port)).status).toBe(S.SUCCESS);
      // Windows lets a session re-authenticate as another user; the keys stay.
      expect((await c1.authenticate('bob', 'Bob-Pw-22', { sessionId: s.id, key: s.key })).r.status).toBe(S.SUCCESS);
      expect((await c1.treeConnect(s.id, s.key, port)).status).toBe(S.SUCCESS);
      expect((await c1.authenticate('bob', 'wrong', { sessionId: s.id, key: s.key })).r.status).toBe(S.LOGON_FAILURE);
      expect((await c1.treeConnect(s.id, s.key, port)).status).toBe(S.USER_SESSION_DELETED);
    } finally {
      c1.close();
    }
  });

  it('an NTLMv2 response whose client challenge does not parse is STATUS_INVALID_PARAMETER', async () => {
    const c1 = await Conn.open(port, [SMB302]);
    try {
      const ntlm = new NtlmTestClient({ user: 'alice', password: 'Alice-Pw1', domain: 'WORKGROUP' });
      const first = await c1.sessionSetup(ntlm.negotiate());
      expect(first.status).toBe(S.MORE_PROCESSING_REQUIRED);
      // NTProofStr, then an NTLMv2_CLIENT_CHALLENGE (RespType 1, HiRespType 1, timestamp, client
      // challenge) whose first AV pair claims more bytes than there are (MS-NLMP 2.2.2.7).
      const blob = Buffer.alloc(16 + 28 + 8);
      blob.fill(0xab, 0, 16);
      blob[16] = 1;
      blob[17] = 1;
      blob.writeUInt16LE(0x0002, 16 + 28);
      blob.writeUInt16LE(0x4000, 16 + 30);
      const auth = encodeAuthenticateMessage({
        NegotiateFlags: 0xe2088297,
        LmChallengeResponse: Buffer.alloc(24),
        NtChallengeResponse: blob,
        DomainName: Buffer.from('WORKGROUP', 'utf16le'),
        UserName: Buffer.from('alice', 'utf16le'),
        Workstation: Buffer.from('WS', 'utf16le'),
        EncryptedRandomSessionKey: Buffer.alloc(16),
      });
      const r = await c1.sessionSetup(auth, { sessionId: first.sessionId });
      expect(r.status).toBe(S.INVALID_PARAMETER);
      // The failed authentication removed the session.
      expect((await c1.treeConnect(first.sessionId, undefined, port)).status).toBe(S.USER_SESSION_DELETED);
    } finally {
      c1.close();
    }
  });

  it('PreviousSessionId ends the previous session of the same user only', async () => {
    const c1 = await Conn.open(port, [SMB302]);
    const c2 = await Conn.open(port, [SMB302]);
    const c3 = await Conn.open(port, [SMB302]);
    try {
      const old = await logon(c1);
      // Another user naming it: nothing happens to it.
      const { r: other } = await c2.authenticate('bob', 'Bob-Pw-22', { previousSessionId: old.id });
      expect(other.status).toBe(S.SUCCESS);
      expect((await c1.treeConnect(old.id, old.key, port)).status).toBe(S.SUCCESS);
      // The same user reconnecting: the old session is gone, the connection stays.
      const { r: again } = await c3.authenticate('alice', 'Alice-Pw1', { previousSessionId: old.id });
      expect(again.status).toBe(S.SUCCESS);
      expect(again.sessionId).not.toBe(old.id);
      expect((await c1.treeConnect(old.id, old.key, port)).status).toBe(S.USER_SESSION_DELETED);
    } finally {
      c1.close();
      c2.close();
      c3.close();
    }
  });
});

// (FLAG_RESPONSE is kept for readers comparing with the wire: every response above carries it.)
void FLAG_RESPONSE;
