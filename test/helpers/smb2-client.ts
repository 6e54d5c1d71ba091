// A small promise-based SMB2 client for end-to-end semantics tests (issue 4): two or more clients
// drive a server through share modes, leases, oplocks, byte-range locks and durable reconnects, and
// see its asynchronous traffic (interim STATUS_PENDING, break notifications) as awaitable events.
// Written independently of src/protocol on purpose: the tests must not share the server's SMB2
// codec. Only NTLM comes from test/auth/ntlm-test-client.ts (it needs MD4, which OpenSSL 3 lacks).
// Dialects 2.1, 3.0 and 3.0.2 (no preauth integrity, no encryption); signing is optional.

import { createCipheriv, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { Socket } from 'node:net';
import { NtlmTestClient } from '../auth/ntlm-test-client.js';
import { FrameSplitter } from './smbwire.js';

// ---- Constants (MS-SMB2 2.2, MS-ERREF 2.3, MS-FSCC 2.4) --------------------------------------------

export const Status = {
  SUCCESS: 0x00000000,
  PENDING: 0x00000103,
  UNSUCCESSFUL: 0xc0000001,
  MORE_PROCESSING_REQUIRED: 0xc0000016,
  INVALID_PARAMETER: 0xc000000d,
  ACCESS_DENIED: 0xc0000022,
  OBJECT_NAME_NOT_FOUND: 0xc0000034,
  OBJECT_NAME_COLLISION: 0xc0000035,
  SHARING_VIOLATION: 0xc0000043,
  DELETE_PENDING: 0xc0000056,
  FILE_LOCK_CONFLICT: 0xc0000054,
  LOCK_NOT_GRANTED: 0xc0000055,
  RANGE_NOT_LOCKED: 0xc000007e,
  CANCELLED: 0xc0000120,
  FILE_CLOSED: 0xc0000128,
  NETWORK_NAME_DELETED: 0xc00000c9,
  REQUEST_NOT_ACCEPTED: 0xc00000d0,
  END_OF_FILE: 0xc0000011,
} as const;

export const Command = {
  NEGOTIATE: 0x00, SESSION_SETUP: 0x01, LOGOFF: 0x02, TREE_CONNECT: 0x03, TREE_DISCONNECT: 0x04,
  CREATE: 0x05, CLOSE: 0x06, FLUSH: 0x07, READ: 0x08, WRITE: 0x09, LOCK: 0x0a, IOCTL: 0x0b,
  CANCEL: 0x0c, ECHO: 0x0d, QUERY_INFO: 0x10, SET_INFO: 0x11, OPLOCK_BREAK: 0x12,
} as const;

/** MS-SMB2 2.2.1.2 Flags. */
const FLAG_SERVER_TO_REDIR = 0x1;
const FLAG_ASYNC = 0x2;
const FLAG_SIGNED = 0x8;
/** MS-SMB2 2.2.23: unsolicited break notifications carry MessageId 0xFFFFFFFFFFFFFFFF. */
const MESSAGE_ID_UNSOLICITED = 0xffffffffffffffffn;

/** MS-SMB2 2.2.3 Capabilities. */
const CAP_LEASING = 0x2;
const CAP_LARGE_MTU = 0x4;

/** MS-SMB2 2.2.13 DesiredAccess (MS-DTYP 2.4.3 / MS-SMB2 2.2.13.1.1). */
export const Access = {
  READ_DATA: 0x1, WRITE_DATA: 0x2, APPEND_DATA: 0x4, READ_EA: 0x8, WRITE_EA: 0x10,
  READ_ATTRIBUTES: 0x80, WRITE_ATTRIBUTES: 0x100, DELETE: 0x10000, READ_CONTROL: 0x20000,
  SYNCHRONIZE: 0x100000, MAXIMUM_ALLOWED: 0x02000000, GENERIC_ALL: 0x10000000,
  GENERIC_WRITE: 0x40000000, GENERIC_READ: 0x80000000,
} as const;
export const Share = { READ: 0x1, WRITE: 0x2, DELETE: 0x4, NONE: 0 } as const;
export const Disposition = { SUPERSEDE: 0, OPEN: 1, CREATE: 2, OPEN_IF: 3, OVERWRITE: 4, OVERWRITE_IF: 5 } as const;
export const CreateOption = { DIRECTORY: 0x1, NON_DIRECTORY: 0x40, DELETE_ON_CLOSE: 0x1000 } as const;
export const Oplock = { NONE: 0x00, II: 0x01, EXCLUSIVE: 0x08, BATCH: 0x09, LEASE: 0xff } as const;
/** MS-SMB2 2.2.13.2.8 LeaseState. */
export const Lease = { NONE: 0, R: 0x1, H: 0x2, W: 0x4, RH: 0x3, RW: 0x5, RWH: 0x7 } as const;
/** MS-SMB2 2.2.26.1 LOCK_ELEMENT Flags. */
export const LockFlag = { SHARED: 0x1, EXCLUSIVE: 0x2, UNLOCK: 0x4, FAIL_IMMEDIATELY: 0x10 } as const;
/** MS-SMB2 2.2.23.2 lease break notification Flags. */
export const LEASE_BREAK_ACK_REQUIRED = 0x1;
/** MS-SMB2 2.2.13.2.10 Flags. */
const LEASE_FLAG_PARENT_LEASE_KEY_SET = 0x4;

const INFO_FILE = 1;
/** MS-FSCC 2.4 information classes used here. */
const FileBasicInformation = 4;
const FileStandardInformation = 5;
const FileRenameInformation = 10;
const FileDispositionInformation = 13;
const FileEndOfFileInformation = 20;

/** MS-SMB2 2.2.13.2.13: SMB2_CREATE_APP_INSTANCE_ID's name is this GUID, as bytes on the wire. */
const APP_INSTANCE_ID_TAG = Buffer.from('45bca66aefa7f74a9008fa462e144d74', 'hex');

export const statusName = (s: number): string =>
  Object.entries(Status).find(([, v]) => v === s)?.[0] ?? `0x${s.toString(16).padStart(8, '0')}`;

export class SmbStatusError extends Error {
  constructor(readonly status: number, readonly command: number) {
    super(`SMB2 command 0x${command.toString(16)} failed: ${statusName(status)}`);
  }
}

// ---- Messages ------------------------------------------------------------------------------------

/** One received SMB2 message; body offsets in SMB2 are from the start of the header (msg). */
export interface Message {
  command: number;
  status: number;
  flags: number;
  messageId: bigint;
  asyncId: bigint;
  sessionId: bigint;
  treeId: number;
  creditResponse: number;
  msg: Buffer;
}

export interface OplockBreakNotice {
  kind: 'oplock';
  OplockLevel: number;
  FileId: Buffer;
}
export interface LeaseBreakNotice {
  kind: 'lease';
  NewEpoch: number;
  Flags: number;
  LeaseKey: Buffer;
  CurrentLeaseState: number;
  NewLeaseState: number;
}
export type BreakNotice = (OplockBreakNotice | LeaseBreakNotice) & { receivedAtMs: number };

/** A sent request: its MessageId, the interim response's AsyncId once one came, and the result. */
export interface PendingRequest {
  command: number;
  messageId: bigint;
  asyncId: bigint | null;
  /** Resolves with the AsyncId when the server answers STATUS_PENDING (MS-SMB2 3.3.4.2). */
  interim: Promise<bigint>;
  response: Promise<Message>;
}

interface Waiter {
  req: PendingRequest;
  resolve: (m: Message) => void;
  reject: (e: Error) => void;
  onInterim: (asyncId: bigint) => void;
}

export interface LeaseRequest {
  key: Buffer;
  state: number;
  /** 2 sends SMB2_CREATE_REQUEST_LEASE_V2 (MS-SMB2 2.2.13.2.10), 1 the v1 form (2.2.13.2.8). */
  version?: 1 | 2;
  parentKey?: Buffer;
  epoch?: number;
}

export interface CreateRequest {
  name: string;
  desiredAccess: number;
  shareAccess?: number;
  disposition?: number;
  createOptions?: number;
  fileAttributes?: number;
  /** RequestedOplockLevel; a lease request forces SMB2_OPLOCK_LEVEL_LEASE. */
  oplock?: number;
  lease?: LeaseRequest;
  /** DHnQ, MS-SMB2 2.2.13.2.3. */
  durable?: boolean;
  /** DHnC with this FileId, MS-SMB2 2.2.13.2.4. */
  durableReconnect?: Buffer;
  /** DH2Q, MS-SMB2 2.2.13.2.11. */
  durableV2?: { createGuid: Buffer; timeoutMs?: number; persistent?: boolean };
  /** DH2C, MS-SMB2 2.2.13.2.12. */
  durableV2Reconnect?: { fileId: Buffer; createGuid: Buffer; persistent?: boolean };
  appInstanceId?: Buffer;
  /** MxAc, MS-SMB2 2.2.13.2.5. */
  maximalAccess?: boolean;
}

export interface LeaseResponse {
  LeaseKey: Buffer;
  LeaseState: number;
  Flags: number;
  ParentLeaseKey: Buffer | null;
  /** Only in the v2 form (MS-SMB2 2.2.14.2.11). */
  Epoch: number | null;
}

export interface CreateResult {
  FileId: Buffer;
  OplockLevel: number;
  CreateAction: number;
  EndofFile: bigint;
  FileAttributes: number;
  lease: LeaseResponse | null;
  /** DHnQ response present (MS-SMB2 2.2.14.2.3). */
  durable: boolean;
  /** DH2Q response (MS-SMB2 2.2.14.2.12). */
  durableV2: { Timeout: number; Flags: number } | null;
  maximalAccess: { QueryStatus: number; MaximalAccess: number } | null;
  contexts: Map<string, Buffer>;
}

export interface LockElement {
  offset: bigint | number;
  length: bigint | number;
  flags: number;
}

export interface ClientOptions {
  host: string;
  port: number;
  dialects?: number[];
  clientGuid?: Buffer;
  /** Sign every request after SESSION_SETUP (HMAC-SHA256 on 2.1, AES-CMAC on 3.0.x). */
  sign?: boolean;
  creditRequest?: number;
}

export interface RequestOptions {
  /** Called once the request is on the wire, with its PendingRequest (see tracker()). */
  track?: (req: PendingRequest) => void;
  /** CreditCharge for multi-credit READ/WRITE (MS-SMB2 3.2.4.1.5). */
  creditCharge?: number;
}

/** A track callback and a promise of the request it reports (requests go out asynchronously). */
export function tracker(): { track: (req: PendingRequest) => void; sent: Promise<PendingRequest> } {
  let track!: (req: PendingRequest) => void;
  const sent = new Promise<PendingRequest>((r) => (track = r));
  return { track, sent };
}

// ---- Crypto: signing keys and MACs (MS-SMB2 3.1.4.1, 3.1.4.2) ----------------------------------------

/** SP800-108 counter-mode KDF with HMAC-SHA256, L = 128 (MS-SMB2 3.1.4.2). */
export function smb3Kdf(key: Buffer, label: Buffer, context: Buffer): Buffer {
  const i = Buffer.from([0, 0, 0, 1]);
  const l = Buffer.from([0, 0, 0, 128]);
  return createHmac('sha256', key).update(Buffer.concat([i, label, Buffer.from([0]), context, l])).digest().subarray(0, 16);
}

function aesEcb(key: Buffer, block: Buffer): Buffer {
  const c = createCipheriv('aes-128-ecb', key, null);
  c.setAutoPadding(false);
  return c.update(block);
}

/** Doubling in GF(2^128) for CMAC subkeys (RFC 4493 2.3). */
function dbl(b: Buffer): Buffer {
  const out = Buffer.alloc(16);
  for (let i = 0; i < 16; i++) out[i] = ((b[i]! << 1) | (i < 15 ? b[i + 1]! >> 7 : 0)) & 0xff;
  if (b[0]! & 0x80) out[15] = out[15]! ^ 0x87;
  return out;
}

/** AES-128-CMAC (RFC 4493), the SMB 3.0.x signing MAC. */
export function aesCmac(key: Buffer, data: Buffer): Buffer {
  const k1 = dbl(aesEcb(key, Buffer.alloc(16)));
  const k2 = dbl(k1);
  const blocks = Math.max(1, Math.ceil(data.length / 16));
  const complete = data.length > 0 && data.length % 16 === 0;
  const padded = Buffer.alloc(blocks * 16);
  data.copy(padded);
  if (!complete) padded[data.length] = 0x80;
  const sub = complete ? k1 : k2;
  for (let i = 0; i < 16; i++) padded[padded.length - 16 + i] = padded[padded.length - 16 + i]! ^ sub[i]!;
  const c = createCipheriv('aes-128-cbc', key, Buffer.alloc(16));
  c.setAutoPadding(false);
  const out = c.update(padded);
  return out.subarray(out.length - 16);
}

// ---- SPNEGO (RFC 4178) wrapping of NTLMSSP, minimal DER -------------------------------------------

function der(tag: number, ...content: Buffer[]): Buffer {
  const body = Buffer.concat(content);
  const n = body.length;
  const len = n < 0x80 ? [n] : n < 0x100 ? [0x81, n] : [0x82, n >> 8, n & 0xff];
  return Buffer.concat([Buffer.from([tag, ...len]), body]);
}

/** Children of a constructed DER value (tag, content) starting at `at` in buf. */
function derChildren(buf: Buffer): { tag: number; content: Buffer }[] {
  const out: { tag: number; content: Buffer }[] = [];
  let at = 0;
  while (at + 2 <= buf.length) {
    const tag = buf[at]!;
    let len = buf[at + 1]!;
    let head = 2;
    if (len & 0x80) {
      const k = len & 0x7f;
      len = 0;
      for (let i = 0; i < k; i++) len = len * 256 + buf[at + 2 + i]!;
      head += k;
    }
    out.push({ tag, content: buf.subarray(at + head, at + head + len) });
    at += head + len;
  }
  return out;
}

const OID_SPNEGO = Buffer.from('06062b0601050502', 'hex');
const OID_NTLMSSP = Buffer.from('060a2b06010401823702020a', 'hex');
const MECH_TYPE_LIST = der(0x30, OID_NTLMSSP);

/** The NTLMSSP token inside a NegTokenResp ([1] SEQUENCE { [2] responseToken }). */
function negTokenRespToken(buf: Buffer): Buffer | null {
  const outer = derChildren(buf)[0];
  if (outer?.tag !== 0xa1) return null;
  const seq = derChildren(outer.content)[0];
  for (const f of derChildren(seq?.content ?? Buffer.alloc(0))) {
    if (f.tag === 0xa2) return derChildren(f.content)[0]?.content ?? null;
  }
  return null;
}

// ---- Awaitable queue of notifications --------------------------------------------------------------

export class NoticeQueue<T> {
  private items: T[] = [];
  private waiters: ((t: T) => void)[] = [];

  push(t: T): void {
    const w = this.waiters.shift();
    if (w) w(t);
    else this.items.push(t);
  }

  /** The next notice (queued or future); rejects after timeoutMs. */
  next(timeoutMs = 10_000): Promise<T> {
    const queued = this.items.shift();
    if (queued !== undefined) return Promise.resolve(queued);
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(new Error(`no break notification within ${timeoutMs} ms`));
      }, timeoutMs);
      const waiter = (t: T): void => {
        clearTimeout(timer);
        resolve(t);
      };
      this.waiters.push(waiter);
    });
  }

  /** Notices received and not yet taken with next(). */
  queued(): readonly T[] {
    return this.items;
  }
}

// ---- The client ------------------------------------------------------------------------------------

const utf16 = (s: string): Buffer => Buffer.from(s, 'utf16le');
const debug = process.env['SMB2_CLIENT_DEBUG'] === '1';
const pad8 = (n: number): number => (n + 7) & ~7;

export class Smb2Client {
  readonly clientGuid: Buffer;
  readonly breaks = new NoticeQueue<BreakNotice>();
  dialect = 0;
  serverCapabilities = 0;
  maxWriteSize = 65536;
  sessionId = 0n;
  treeId = 0;
  /** Responses whose signature was checked and found right (signing tests assert on it). */
  verifiedSignatures = 0;
  private signingKey: Buffer | null = null;
  private signing = false;
  private nextMessageId = 0n;
  private credits = 1;
  private creditWaiters: (() => void)[] = [];
  private readonly waiters = new Map<bigint, Waiter>();
  private closedError: Error | null = null;
  private readonly socket: Socket;

  private constructor(private readonly o: ClientOptions, socket: Socket) {
    this.clientGuid = o.clientGuid ?? randomBytes(16);
    this.socket = socket;
    const splitter = new FrameSplitter((frame) => this.onFrame(frame));
    socket.on('data', (d: Buffer) => {
      try {
        splitter.push(d);
      } catch (e) {
        // A malformed frame from the server: the connection is unusable from here on.
        this.fail(e as Error);
        socket.destroy();
      }
    });
    socket.on('error', (e) => this.fail(e));
    socket.on('close', () => this.fail(new Error('connection closed')));
  }

  /** Opens the TCP connection only. */
  static async connect(o: ClientOptions): Promise<Smb2Client> {
    const socket = new Socket();
    socket.setNoDelay(true);
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.connect(o.port, o.host, () => {
        socket.off('error', reject);
        resolve();
      });
    });
    return new Smb2Client(o, socket);
  }

  /** connect + NEGOTIATE + SESSION_SETUP + TREE_CONNECT. */
  static async open(
    o: ClientOptions & { user: string; password: string; domain?: string; share: string; previousSessionId?: bigint },
  ): Promise<Smb2Client> {
    const c = await Smb2Client.connect(o);
    try {
      await c.negotiate();
      await c.sessionSetup(o.user, o.password, { domain: o.domain, previousSessionId: o.previousSessionId });
      await c.treeConnect(o.share);
      return c;
    } catch (e) {
      c.destroy();
      throw e;
    }
  }

  get isClosed(): boolean {
    return this.closedError !== null;
  }

  /** Kills the TCP connection abruptly (RST), as a crashed host or a pulled cable would. */
  destroy(): void {
    this.socket.resetAndDestroy();
    this.fail(new Error('connection destroyed by the test'));
  }

  /** Orderly end: LOGOFF is not sent; the server sees FIN. */
  async close(): Promise<void> {
    if (this.closedError || this.socket.destroyed) return;
    await new Promise<void>((resolve) => {
      this.socket.once('close', () => resolve());
      this.socket.end();
    });
  }

  private fail(e: Error): void {
    if (this.closedError) return;
    this.closedError = e;
    for (const w of this.waiters.values()) w.reject(e);
    this.waiters.clear();
    for (const w of this.creditWaiters.splice(0)) w();
  }

  // ---- Framing, credits, signing -------------------------------------------------------------------

  private onFrame(frame: Buffer): void {
    let at = 0;
    for (;;) {
      if (frame.length - at < 64 || frame.readUInt32BE(at) !== 0xfe534d42) throw new Error('not an SMB2 message');
      const next = frame.readUInt32LE(at + 20);
      const msg = frame.subarray(at, next ? at + next : frame.length);
      this.onMessage(msg);
      if (!next) return;
      at += next;
    }
  }

  private onMessage(msg: Buffer): void {
    const flags = msg.readUInt32LE(16);
    if (debug) console.error(`smb2-client <- cmd=0x${msg.readUInt16LE(12).toString(16)} status=${statusName(msg.readUInt32LE(8))} mid=${msg.readBigUInt64LE(24)} flags=0x${flags.toString(16)}`);
    const m: Message = {
      command: msg.readUInt16LE(12),
      status: msg.readUInt32LE(8),
      flags,
      messageId: msg.readBigUInt64LE(24),
      asyncId: flags & FLAG_ASYNC ? msg.readBigUInt64LE(32) : 0n,
      treeId: flags & FLAG_ASYNC ? 0 : msg.readUInt32LE(36),
      sessionId: msg.readBigUInt64LE(40),
      creditResponse: msg.readUInt16LE(14),
      msg,
    };
    if (!(flags & FLAG_SERVER_TO_REDIR)) throw new Error('a request arrived from the server');
    if (m.creditResponse > 0) this.addCredits(m.creditResponse);
    if (m.messageId === MESSAGE_ID_UNSOLICITED && m.command === Command.OPLOCK_BREAK) {
      this.onBreak(msg);
      return;
    }
    if (flags & FLAG_SIGNED && this.signingKey && m.sessionId === this.sessionId) this.verify(msg);
    const w = this.waiters.get(m.messageId);
    if (!w) throw new Error(`response to unknown MessageId ${m.messageId}`);
    // MS-SMB2 3.2.5.1.5: an interim response carries STATUS_PENDING and the AsyncId.
    if (m.status === Status.PENDING && flags & FLAG_ASYNC) {
      w.req.asyncId = m.asyncId;
      w.onInterim(m.asyncId);
      return;
    }
    this.waiters.delete(m.messageId);
    w.resolve(m);
  }

  /** MS-SMB2 2.2.23.1 oplock and 2.2.23.2 lease break notifications. */
  private onBreak(msg: Buffer): void {
    const b = 64;
    const receivedAtMs = performance.now();
    if (msg.readUInt16LE(b) === 24) {
      this.breaks.push({ kind: 'oplock', OplockLevel: msg[b + 2]!, FileId: Buffer.from(msg.subarray(b + 8, b + 24)), receivedAtMs });
    } else if (msg.readUInt16LE(b) === 44) {
      this.breaks.push({
        kind: 'lease',
        NewEpoch: msg.readUInt16LE(b + 2),
        Flags: msg.readUInt32LE(b + 4),
        LeaseKey: Buffer.from(msg.subarray(b + 8, b + 24)),
        CurrentLeaseState: msg.readUInt32LE(b + 24),
        NewLeaseState: msg.readUInt32LE(b + 28),
        receivedAtMs,
      });
    } else {
      throw new Error(`break notification with StructureSize ${msg.readUInt16LE(b)}`);
    }
  }

  private addCredits(n: number): void {
    this.credits += n;
    for (const w of this.creditWaiters.splice(0)) w();
  }

  private async takeCredits(n: number): Promise<void> {
    while (this.credits < n) {
      if (this.closedError) throw this.closedError;
      // Only responses grant credits: with nothing outstanding, waiting would never end.
      if (this.waiters.size === 0) throw new Error(`request needs ${n} credits, the server granted ${this.credits}`);
      await new Promise<void>((r) => this.creditWaiters.push(r));
    }
    this.credits -= n;
  }

  private mac(msg: Buffer): Buffer {
    const copy = Buffer.from(msg);
    copy.fill(0, 48, 64);
    // MS-SMB2 3.1.4.1: HMAC-SHA256 for 2.x, AES-128-CMAC for 3.0 and 3.0.2.
    if (this.dialect >= 0x0300) return aesCmac(this.signingKey!, copy);
    return createHmac('sha256', this.signingKey!).update(copy).digest().subarray(0, 16);
  }

  private verify(msg: Buffer): void {
    const expected = this.mac(msg);
    if (!timingSafeEqual(expected, msg.subarray(48, 64))) {
      throw new Error(`bad signature on a response to command 0x${msg.readUInt16LE(12).toString(16)}`);
    }
    this.verifiedSignatures++;
  }

  private header(command: number, messageId: bigint, charge: number, asyncId?: bigint): Buffer {
    const h = Buffer.alloc(64);
    h.writeUInt32BE(0xfe534d42, 0);
    h.writeUInt16LE(64, 4);
    h.writeUInt16LE(charge, 6);
    h.writeUInt16LE(command, 12);
    h.writeUInt16LE(command === Command.CANCEL ? 0 : (this.o.creditRequest ?? 64), 14);
    h.writeUInt32LE(asyncId !== undefined ? FLAG_ASYNC : 0, 16);
    h.writeBigUInt64LE(messageId, 24);
    if (asyncId !== undefined) h.writeBigUInt64LE(asyncId, 32);
    else h.writeUInt32LE(this.treeId, 36);
    h.writeBigUInt64LE(this.sessionId, 40);
    return h;
  }

  private transmit(msg: Buffer): void {
    if (this.signing && this.signingKey) {
      msg.writeUInt32LE(msg.readUInt32LE(16) | FLAG_SIGNED, 16);
      this.mac(msg).copy(msg, 48);
    }
    if (debug) console.error(`smb2-client -> cmd=0x${msg.readUInt16LE(12).toString(16)} mid=${msg.readBigUInt64LE(24)}`);
    const nb = Buffer.alloc(4);
    nb.writeUInt32BE(msg.length, 0); // MS-SMB2 2.1: zero byte + 24-bit length
    this.socket.write(Buffer.concat([nb, msg]));
  }

  /** Sends one request; resolves with the final response whatever its status. */
  async request(command: number, body: Buffer, o: RequestOptions = {}): Promise<Message> {
    if (this.closedError) throw this.closedError;
    const charge = this.dialect === 0 ? 0 : Math.max(1, o.creditCharge ?? 1);
    await this.takeCredits(Math.max(1, charge));
    if (this.closedError) throw this.closedError;
    const messageId = this.nextMessageId;
    this.nextMessageId += BigInt(Math.max(1, charge));
    let onInterim!: (id: bigint) => void;
    const interim = new Promise<bigint>((r) => (onInterim = r));
    let resolve!: (m: Message) => void;
    let reject!: (e: Error) => void;
    const response = new Promise<Message>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    const req: PendingRequest = { command, messageId, asyncId: null, interim, response };
    this.waiters.set(messageId, { req, resolve, reject, onInterim });
    this.transmit(Buffer.concat([this.header(command, messageId, charge), body]));
    o.track?.(req);
    return response;
  }

  private async call(command: number, body: Buffer, o: RequestOptions = {}, ok: number[] = [Status.SUCCESS]): Promise<Message> {
    const m = await this.request(command, body, o);
    if (!ok.includes(m.status)) throw new SmbStatusError(m.status, command);
    return m;
  }

  /** CANCEL (MS-SMB2 2.2.30, 3.2.4.24): uses the target's MessageId or AsyncId, takes no credit. */
  cancel(req: PendingRequest): void {
    const body = Buffer.alloc(4);
    body.writeUInt16LE(4, 0);
    this.transmit(Buffer.concat([this.header(Command.CANCEL, req.messageId, 0, req.asyncId ?? undefined), body]));
  }

  // ---- NEGOTIATE, SESSION_SETUP, TREE_CONNECT -------------------------------------------------------

  async negotiate(): Promise<void> {
    const dialects = this.o.dialects ?? [0x0210, 0x0300, 0x0302];
    const body = Buffer.alloc(36 + 2 * dialects.length);
    body.writeUInt16LE(36, 0);
    body.writeUInt16LE(dialects.length, 2);
    body.writeUInt16LE(this.o.sign ? 0x2 : 0x1, 4); // SecurityMode: signing enabled / required
    body.writeUInt32LE(CAP_LEASING | CAP_LARGE_MTU, 8);
    this.clientGuid.copy(body, 12);
    dialects.forEach((d, i) => body.writeUInt16LE(d, 36 + 2 * i));
    const m = await this.call(Command.NEGOTIATE, body);
    const b = 64;
    this.dialect = m.msg.readUInt16LE(b + 4);
    this.serverCapabilities = m.msg.readUInt32LE(b + 24);
    this.maxWriteSize = m.msg.readUInt32LE(b + 36);
  }

  /** NTLMv2 in SPNEGO, MS-SMB2 3.2.4.2.3; PreviousSessionId lets the server end the old session. */
  async sessionSetup(user: string, password: string, o: { domain?: string; previousSessionId?: bigint } = {}): Promise<void> {
    const ntlm = new NtlmTestClient({ user, password, domain: o.domain ?? 'WORKGROUP' });
    const init = der(0x60, OID_SPNEGO, der(0xa0, der(0x30, der(0xa0, MECH_TYPE_LIST), der(0xa2, der(0x04, ntlm.negotiate())))));
    const first = await this.call(Command.SESSION_SETUP, this.sessionSetupBody(init, o.previousSessionId), {}, [
      Status.MORE_PROCESSING_REQUIRED,
    ]);
    this.sessionId = first.sessionId;
    const challenge = negTokenRespToken(this.securityBuffer(first.msg));
    if (!challenge) throw new Error('SESSION_SETUP: no NTLM CHALLENGE in the SPNEGO reply');
    const auth = ntlm.authenticate(challenge);
    const mic = ntlm.signMechList(MECH_TYPE_LIST);
    const resp = der(0xa1, der(0x30, der(0xa2, der(0x04, auth)), der(0xa3, der(0x04, mic))));
    const sessionKey = ntlm.exportedSessionKey;
    // MS-SMB2 3.2.5.3.1 / 3.1.4.2: 3.0.x derives the signing key; 2.x signs with the session key.
    this.signingKey =
      this.dialect >= 0x0300 ? smb3Kdf(sessionKey, Buffer.from('SMB2AESCMAC\0'), Buffer.from('SmbSign\0')) : sessionKey;
    await this.call(Command.SESSION_SETUP, this.sessionSetupBody(resp, o.previousSessionId));
    this.signing = this.o.sign === true;
  }

  private sessionSetupBody(token: Buffer, previousSessionId = 0n): Buffer {
    const body = Buffer.alloc(24);
    body.writeUInt16LE(25, 0);
    body[3] = this.o.sign ? 0x2 : 0x1; // SecurityMode
    body.writeUInt16LE(64 + 24, 12);
    body.writeUInt16LE(token.length, 14);
    body.writeBigUInt64LE(previousSessionId, 16);
    return Buffer.concat([body, token]);
  }

  private securityBuffer(msg: Buffer): Buffer {
    const off = msg.readUInt16LE(64 + 4);
    return msg.subarray(off, off + msg.readUInt16LE(64 + 6));
  }

  async treeConnect(share: string): Promise<void> {
    const path = utf16(`\\\\${this.o.host}\\${share}`);
    const body = Buffer.alloc(8);
    body.writeUInt16LE(9, 0);
    body.writeUInt16LE(64 + 8, 4);
    body.writeUInt16LE(path.length, 6);
    const m = await this.call(Command.TREE_CONNECT, Buffer.concat([body, path]));
    this.treeId = m.msg.readUInt32LE(36);
  }

  // ---- CREATE and its contexts (MS-SMB2 2.2.13, 2.2.14) ------------------------------------------

  async create(r: CreateRequest, o: RequestOptions = {}): Promise<CreateResult> {
    const contexts: [Buffer, Buffer][] = [];
    const ctx = (name: string | Buffer, data: Buffer): void => {
      contexts.push([typeof name === 'string' ? Buffer.from(name, 'latin1') : name, data]);
    };
    if (r.lease) {
      const v2 = (r.lease.version ?? 2) === 2;
      const d = Buffer.alloc(v2 ? 52 : 32);
      r.lease.key.copy(d, 0);
      d.writeUInt32LE(r.lease.state, 16);
      if (v2) {
        if (r.lease.parentKey) {
          d.writeUInt32LE(LEASE_FLAG_PARENT_LEASE_KEY_SET, 20);
          r.lease.parentKey.copy(d, 32);
        }
        d.writeUInt16LE(r.lease.epoch ?? 0, 48);
      }
      ctx('RqLs', d);
    }
    if (r.durable) ctx('DHnQ', Buffer.alloc(16));
    if (r.durableReconnect) ctx('DHnC', Buffer.from(r.durableReconnect));
    if (r.durableV2) {
      const d = Buffer.alloc(32);
      d.writeUInt32LE(r.durableV2.timeoutMs ?? 0, 0);
      d.writeUInt32LE(r.durableV2.persistent ? 0x2 : 0, 4);
      r.durableV2.createGuid.copy(d, 16);
      ctx('DH2Q', d);
    }
    if (r.durableV2Reconnect) {
      const d = Buffer.alloc(36);
      r.durableV2Reconnect.fileId.copy(d, 0);
      r.durableV2Reconnect.createGuid.copy(d, 16);
      d.writeUInt32LE(r.durableV2Reconnect.persistent ? 0x2 : 0, 32);
      ctx('DH2C', d);
    }
    if (r.appInstanceId) {
      const d = Buffer.alloc(20);
      d.writeUInt16LE(20, 0);
      r.appInstanceId.copy(d, 4);
      ctx(APP_INSTANCE_ID_TAG, d);
    }
    if (r.maximalAccess) ctx('MxAc', Buffer.alloc(0));

    // Each SMB2_CREATE_CONTEXT (2.2.13.2): Next, NameOffset, NameLength, Reserved, DataOffset,
    // DataLength; name at 16, data 8-aligned, next context 8-aligned.
    const chain: Buffer[] = [];
    contexts.forEach(([name, data], i) => {
      const dataOffset = pad8(16 + name.length);
      const size = data.length > 0 ? dataOffset + data.length : 16 + name.length;
      const c = Buffer.alloc(i === contexts.length - 1 ? size : pad8(size));
      if (i < contexts.length - 1) c.writeUInt32LE(c.length, 0);
      c.writeUInt16LE(16, 4);
      c.writeUInt16LE(name.length, 6);
      if (data.length > 0) c.writeUInt16LE(dataOffset, 10);
      c.writeUInt32LE(data.length, 12);
      name.copy(c, 16);
      data.copy(c, dataOffset);
      chain.push(c);
    });
    const name = utf16(r.name);
    const nameField = name.length > 0 ? name : Buffer.alloc(1);
    const ctxOffset = chain.length > 0 ? pad8(64 + 56 + nameField.length) : 0;
    const body = Buffer.alloc(56);
    body.writeUInt16LE(57, 0);
    body[3] = r.lease ? Oplock.LEASE : (r.oplock ?? Oplock.NONE);
    body.writeUInt32LE(2, 4); // ImpersonationLevel: Impersonation
    body.writeUInt32LE(r.desiredAccess >>> 0, 24);
    body.writeUInt32LE(r.fileAttributes ?? 0, 28);
    body.writeUInt32LE(r.shareAccess ?? Share.READ | Share.WRITE | Share.DELETE, 32);
    body.writeUInt32LE(r.disposition ?? Disposition.OPEN_IF, 36);
    body.writeUInt32LE(r.createOptions ?? CreateOption.NON_DIRECTORY, 40);
    body.writeUInt16LE(64 + 56, 44);
    body.writeUInt16LE(name.length, 46);
    const contextBytes = Buffer.concat(chain);
    body.writeUInt32LE(ctxOffset, 48);
    body.writeUInt32LE(contextBytes.length, 52);
    const gap = ctxOffset > 0 ? Buffer.alloc(ctxOffset - 64 - 56 - nameField.length) : Buffer.alloc(0);
    const m = await this.call(Command.CREATE, Buffer.concat([body, nameField, gap, contextBytes]), o);
    return parseCreateResponse(m.msg);
  }

  // ---- CLOSE, FLUSH, READ, WRITE, LOCK (MS-SMB2 2.2.15-2.2.26) -----------------------------------

  async closeFile(fileId: Buffer): Promise<void> {
    const body = Buffer.alloc(24);
    body.writeUInt16LE(24, 0);
    fileId.copy(body, 8);
    await this.call(Command.CLOSE, body);
  }

  async flush(fileId: Buffer): Promise<void> {
    const body = Buffer.alloc(24);
    body.writeUInt16LE(24, 0);
    fileId.copy(body, 8);
    await this.call(Command.FLUSH, body);
  }

  private charge(bytes: number): number {
    // MS-SMB2 3.2.4.1.5: one credit per 64 KiB when the server supports multi-credit requests.
    return this.serverCapabilities & CAP_LARGE_MTU ? Math.max(1, Math.ceil(bytes / 65536)) : 1;
  }

  async read(fileId: Buffer, offset: bigint | number, length: number, o: RequestOptions = {}): Promise<Buffer> {
    const body = Buffer.alloc(49);
    body.writeUInt16LE(49, 0);
    body[2] = 0x50; // Padding: data right after the response body
    body.writeUInt32LE(length, 4);
    body.writeBigUInt64LE(BigInt(offset), 8);
    fileId.copy(body, 16);
    const m = await this.call(Command.READ, body, { creditCharge: this.charge(length), ...o });
    const dataOffset = m.msg[64 + 2]!;
    return Buffer.from(m.msg.subarray(dataOffset, dataOffset + m.msg.readUInt32LE(64 + 4)));
  }

  async write(fileId: Buffer, offset: bigint | number, data: Buffer, o: RequestOptions = {}): Promise<number> {
    const body = Buffer.alloc(48);
    body.writeUInt16LE(49, 0);
    body.writeUInt16LE(64 + 48, 2);
    body.writeUInt32LE(data.length, 4);
    body.writeBigUInt64LE(BigInt(offset), 8);
    fileId.copy(body, 16);
    const m = await this.call(Command.WRITE, Buffer.concat([body, data]), { creditCharge: this.charge(data.length), ...o });
    return m.msg.readUInt32LE(64 + 4);
  }

  /** LOCK with LockSequenceNumber/Index packed as MS-SMB2 2.2.26 (4 bits number, 28 bits index). */
  async lock(fileId: Buffer, locks: LockElement[], o: RequestOptions & { sequence?: { number: number; index: number } } = {}): Promise<void> {
    const body = Buffer.alloc(24 + 24 * locks.length);
    body.writeUInt16LE(48, 0);
    body.writeUInt16LE(locks.length, 2);
    if (o.sequence) body.writeUInt32LE(((o.sequence.index << 4) | (o.sequence.number & 0xf)) >>> 0, 4);
    fileId.copy(body, 8);
    locks.forEach((l, i) => {
      body.writeBigUInt64LE(BigInt(l.offset), 24 + 24 * i);
      body.writeBigUInt64LE(BigInt(l.length), 32 + 24 * i);
      body.writeUInt32LE(l.flags, 40 + 24 * i);
    });
    await this.call(Command.LOCK, body, o);
  }

  // ---- Break acknowledgments (MS-SMB2 2.2.24) -------------------------------------------------------

  /** Oplock break acknowledgment; resolves with the OplockLevel the server granted. */
  async ackOplockBreak(fileId: Buffer, oplockLevel: number): Promise<number> {
    const body = Buffer.alloc(24);
    body.writeUInt16LE(24, 0);
    body[2] = oplockLevel;
    fileId.copy(body, 8);
    const m = await this.call(Command.OPLOCK_BREAK, body);
    return m.msg[64 + 2]!;
  }

  /** Lease break acknowledgment; resolves with the LeaseState of the response. */
  async ackLeaseBreak(leaseKey: Buffer, leaseState: number): Promise<number> {
    const body = Buffer.alloc(36);
    body.writeUInt16LE(36, 0);
    leaseKey.copy(body, 8);
    body.writeUInt32LE(leaseState, 24);
    const m = await this.call(Command.OPLOCK_BREAK, body);
    return m.msg.readUInt32LE(64 + 24);
  }

  // ---- QUERY_INFO and SET_INFO (MS-SMB2 2.2.37, 2.2.39; MS-FSCC 2.4) ---------------------------------

  private async queryFileInfo(fileId: Buffer, infoClass: number): Promise<Buffer> {
    const body = Buffer.alloc(40);
    body.writeUInt16LE(41, 0);
    body[2] = INFO_FILE;
    body[3] = infoClass;
    body.writeUInt32LE(4096, 4);
    fileId.copy(body, 24);
    const m = await this.call(Command.QUERY_INFO, Buffer.concat([body, Buffer.alloc(1)]));
    const off = m.msg.readUInt16LE(64 + 2);
    return m.msg.subarray(off, off + m.msg.readUInt32LE(64 + 4));
  }

  async queryBasic(fileId: Buffer): Promise<{ CreationTime: bigint; LastWriteTime: bigint; ChangeTime: bigint; FileAttributes: number }> {
    const b = await this.queryFileInfo(fileId, FileBasicInformation);
    return { CreationTime: b.readBigUInt64LE(0), LastWriteTime: b.readBigUInt64LE(16), ChangeTime: b.readBigUInt64LE(24), FileAttributes: b.readUInt32LE(32) };
  }

  async queryStandard(fileId: Buffer): Promise<{ AllocationSize: bigint; EndOfFile: bigint; NumberOfLinks: number; DeletePending: boolean; Directory: boolean }> {
    const b = await this.queryFileInfo(fileId, FileStandardInformation);
    return {
      AllocationSize: b.readBigUInt64LE(0),
      EndOfFile: b.readBigUInt64LE(8),
      NumberOfLinks: b.readUInt32LE(16),
      DeletePending: b[20] !== 0,
      Directory: b[21] !== 0,
    };
  }

  private async setFileInfo(fileId: Buffer, infoClass: number, info: Buffer, o: RequestOptions = {}): Promise<void> {
    const body = Buffer.alloc(32);
    body.writeUInt16LE(33, 0);
    body[2] = INFO_FILE;
    body[3] = infoClass;
    body.writeUInt32LE(info.length, 4);
    body.writeUInt16LE(64 + 32, 8);
    fileId.copy(body, 16);
    await this.call(Command.SET_INFO, Buffer.concat([body, info]), o);
  }

  setEndOfFile(fileId: Buffer, eof: bigint | number, o: RequestOptions = {}): Promise<void> {
    const info = Buffer.alloc(8);
    info.writeBigUInt64LE(BigInt(eof));
    return this.setFileInfo(fileId, FileEndOfFileInformation, info, o);
  }

  setDeleteOnClose(fileId: Buffer, deletePending = true): Promise<void> {
    return this.setFileInfo(fileId, FileDispositionInformation, Buffer.from([deletePending ? 1 : 0]));
  }

  /** FILE_RENAME_INFORMATION_TYPE_2 (MS-FSCC 2.4.37.2), the SMB2 form. */
  rename(fileId: Buffer, newName: string, replaceIfExists = false, o: RequestOptions = {}): Promise<void> {
    const name = utf16(newName);
    const info = Buffer.alloc(20);
    info[0] = replaceIfExists ? 1 : 0;
    info.writeUInt32LE(name.length, 16);
    return this.setFileInfo(fileId, FileRenameInformation, Buffer.concat([info, name]), o);
  }

  async echo(): Promise<void> {
    await this.call(Command.ECHO, Buffer.from([4, 0, 0, 0])); // MS-SMB2 2.2.28: StructureSize 4
  }
}

/** SMB2 CREATE response (MS-SMB2 2.2.14) and its create contexts (2.2.14.2). */
export function parseCreateResponse(msg: Buffer): CreateResult {
  const b = 64;
  const contexts = new Map<string, Buffer>();
  let at = msg.readUInt32LE(b + 80);
  const end = at + msg.readUInt32LE(b + 84);
  while (at > 0 && at + 16 <= end) {
    const next = msg.readUInt32LE(at);
    const nameRaw = msg.subarray(at + msg.readUInt16LE(at + 4), at + msg.readUInt16LE(at + 4) + msg.readUInt16LE(at + 6));
    const name = nameRaw.length === 4 ? nameRaw.toString('latin1') : nameRaw.toString('hex');
    const dataOffset = msg.readUInt16LE(at + 10);
    contexts.set(name, Buffer.from(msg.subarray(at + dataOffset, at + dataOffset + msg.readUInt32LE(at + 12))));
    if (next === 0) break;
    at += next;
  }
  let lease: LeaseResponse | null = null;
  const rqls = contexts.get('RqLs');
  if (rqls && rqls.length >= 32) {
    const v2 = rqls.length >= 52;
    lease = {
      LeaseKey: rqls.subarray(0, 16),
      LeaseState: rqls.readUInt32LE(16),
      Flags: rqls.readUInt32LE(20),
      ParentLeaseKey: v2 && rqls.readUInt32LE(20) & LEASE_FLAG_PARENT_LEASE_KEY_SET ? rqls.subarray(32, 48) : null,
      Epoch: v2 ? rqls.readUInt16LE(48) : null,
    };
  }
  const dh2q = contexts.get('DH2Q');
  const mxac = contexts.get('MxAc');
  return {
    OplockLevel: msg[b + 2]!,
    CreateAction: msg.readUInt32LE(b + 4),
    EndofFile: msg.readBigUInt64LE(b + 48),
    FileAttributes: msg.readUInt32LE(b + 56),
    FileId: Buffer.from(msg.subarray(b + 64, b + 80)),
    lease,
    durable: contexts.has('DHnQ'),
    durableV2: dh2q && dh2q.length >= 8 ? { Timeout: dh2q.readUInt32LE(0), Flags: dh2q.readUInt32LE(4) } : null,
    maximalAccess: mxac && mxac.length >= 8 ? { QueryStatus: mxac.readUInt32LE(0), MaximalAccess: mxac.readUInt32LE(4) } : null,
    contexts,
  };
}
