// A transparent TCP tap for end-to-end tests: it sits between a real client (smbclient) and a
// server, forwards every byte unchanged, and records what crossed the wire: the NEGOTIATE
// exchange (dialect, cipher, signing algorithm: all sent in clear) and, for every later frame,
// whether it was a plain SMB2 message (and whether it was signed) or an encrypted transform.
// This is how the tests learn which cipher was negotiated without trusting client debug output.
// Written independently of src/protocol on purpose: the tests must not share the server's codec.

import { createServer, Socket, type AddressInfo, type Server } from 'node:net';

/** Protocol identifiers of MS-SMB2 2.2.1 (SMB2 header), 2.2.41 (transform), 2.2.42 (compression). */
const protocolSmb2 = 0x424d53fe; // 0xFE 'S' 'M' 'B' read little-endian
const protocolTransform = 0x424d53fd;
const protocolCompressed = 0x424d53fc;
const protocolSmb1 = 0x424d53ff;

export const commandNegotiate = 0x0000;
export const commandSessionSetup = 0x0001;
export const commandTreeConnect = 0x0003;

/** MS-SMB2 2.2.1.2 Flags. */
export const flagServerToRedir = 0x00000001;
export const flagSigned = 0x00000008;

/** MS-SMB2 2.2.3.1.2 Cipher identifiers. */
export const cipherNames: Record<number, string> = {
  0x0001: 'AES-128-CCM',
  0x0002: 'AES-128-GCM',
  0x0003: 'AES-256-CCM',
  0x0004: 'AES-256-GCM',
};

/** MS-SMB2 2.2.3.1.7 signing algorithm identifiers. */
export const signingNames: Record<number, string> = {
  0x0000: 'HMAC-SHA256',
  0x0001: 'AES-CMAC',
  0x0002: 'AES-GMAC',
};

export type Direction = 'c2s' | 's2c';

export interface WireMessage {
  dir: Direction;
  kind: 'smb2' | 'transform' | 'compressed' | 'smb1' | 'unknown';
  /** SMB2 header fields (kind 'smb2' only); one entry per message of a compound chain. */
  Command?: number;
  Flags?: number;
  Status?: number;
  SessionId?: bigint;
  /** Length of the whole NetBIOS frame payload this message came in. */
  frameLength: number;
}

export interface NegotiateContexts {
  /** ENCRYPTION_CAPABILITIES (0x0002) Ciphers, in order. */
  Ciphers?: number[];
  /** SIGNING_CAPABILITIES (0x0008) SigningAlgorithms, in order. */
  SigningAlgorithms?: number[];
  /** Context types present, in order. */
  types: number[];
}

export interface NegotiateRequestInfo extends NegotiateContexts {
  Dialects: number[];
  SecurityMode: number;
  Capabilities: number;
}

export interface NegotiateResponseInfo extends NegotiateContexts {
  Status: number;
  DialectRevision: number;
  SecurityMode: number;
  Capabilities: number;
  MaxReadSize: number;
  MaxWriteSize: number;
}

export class WireFormatError extends Error {}

function need(buf: Buffer, offset: number, length: number, what: string): void {
  if (offset < 0 || length < 0 || offset + length > buf.length) {
    throw new WireFormatError(`${what}: needs bytes [${offset}, ${offset + length}) of ${buf.length}`);
  }
}

/** MS-SMB2 2.2.3.1 / 2.2.4.1: contexts are 8-byte aligned from the start of the SMB2 header. */
function parseContexts(msg: Buffer, offset: number, count: number): NegotiateContexts {
  const out: NegotiateContexts = { types: [] };
  let at = offset;
  for (let i = 0; i < count; i++) {
    at = (at + 7) & ~7;
    need(msg, at, 8, 'negotiate context header');
    const ContextType = msg.readUInt16LE(at);
    const DataLength = msg.readUInt16LE(at + 2);
    const data = at + 8;
    need(msg, data, DataLength, 'negotiate context data');
    out.types.push(ContextType);
    if (ContextType === 0x0002 || ContextType === 0x0008) {
      need(msg, data, 2, 'context list count');
      const n = msg.readUInt16LE(data);
      need(msg, data + 2, 2 * n, 'context list');
      if (2 + 2 * n > DataLength) throw new WireFormatError('context list longer than DataLength');
      const ids: number[] = [];
      for (let k = 0; k < n; k++) ids.push(msg.readUInt16LE(data + 2 + 2 * k));
      if (ContextType === 0x0002) out.Ciphers = ids;
      else out.SigningAlgorithms = ids;
    }
    at = data + DataLength;
  }
  return out;
}

/** Parses one SMB2 NEGOTIATE request message (header + body), MS-SMB2 2.2.3. */
export function parseNegotiateRequest(msg: Buffer): NegotiateRequestInfo {
  need(msg, 0, 64 + 36, 'negotiate request');
  if (msg.readUInt32LE(0) !== protocolSmb2 || msg.readUInt16LE(12) !== commandNegotiate) {
    throw new WireFormatError('not an SMB2 NEGOTIATE');
  }
  const b = 64;
  if (msg.readUInt16LE(b) !== 36) throw new WireFormatError('negotiate request StructureSize is not 36');
  const DialectCount = msg.readUInt16LE(b + 2);
  const SecurityMode = msg.readUInt16LE(b + 4);
  const Capabilities = msg.readUInt32LE(b + 8);
  need(msg, b + 36, 2 * DialectCount, 'Dialects');
  const Dialects: number[] = [];
  for (let i = 0; i < DialectCount; i++) Dialects.push(msg.readUInt16LE(b + 36 + 2 * i));
  let contexts: NegotiateContexts = { types: [] };
  if (Dialects.includes(0x0311)) {
    const NegotiateContextOffset = msg.readUInt32LE(b + 28);
    const NegotiateContextCount = msg.readUInt16LE(b + 32);
    contexts = parseContexts(msg, NegotiateContextOffset, NegotiateContextCount);
  }
  return { Dialects, SecurityMode, Capabilities, ...contexts };
}

/** Parses one SMB2 NEGOTIATE response message (header + body), MS-SMB2 2.2.4. */
export function parseNegotiateResponse(msg: Buffer): NegotiateResponseInfo {
  need(msg, 0, 64 + 8, 'negotiate response');
  if (msg.readUInt32LE(0) !== protocolSmb2 || msg.readUInt16LE(12) !== commandNegotiate) {
    throw new WireFormatError('not an SMB2 NEGOTIATE');
  }
  const Status = msg.readUInt32LE(8);
  const b = 64;
  if (Status !== 0) {
    return { Status, DialectRevision: 0, SecurityMode: 0, Capabilities: 0, MaxReadSize: 0, MaxWriteSize: 0, types: [] };
  }
  need(msg, b, 64, 'negotiate response body');
  if (msg.readUInt16LE(b) !== 65) throw new WireFormatError('negotiate response StructureSize is not 65');
  const SecurityMode = msg.readUInt16LE(b + 2);
  const DialectRevision = msg.readUInt16LE(b + 4);
  const NegotiateContextCount = msg.readUInt16LE(b + 6);
  const Capabilities = msg.readUInt32LE(b + 24);
  const MaxReadSize = msg.readUInt32LE(b + 32);
  const MaxWriteSize = msg.readUInt32LE(b + 36);
  const NegotiateContextOffset = msg.readUInt32LE(b + 60);
  const contexts =
    DialectRevision === 0x0311 ? parseContexts(msg, NegotiateContextOffset, NegotiateContextCount) : { types: [] };
  return { Status, DialectRevision, SecurityMode, Capabilities, MaxReadSize, MaxWriteSize, ...contexts };
}

/** Splits a Direct-TCP byte stream (MS-SMB2 2.1: 4-byte header, 24-bit length) into frames. */
export class FrameSplitter {
  private pending: Buffer[] = [];
  private pendingBytes = 0;

  constructor(private readonly onFrame: (frame: Buffer) => void) {}

  push(chunk: Buffer): void {
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    for (;;) {
      if (this.pendingBytes < 4) return;
      const head = this.peek(4);
      const length = (head[1]! << 16) | (head[2]! << 8) | head[3]!;
      if (this.pendingBytes < 4 + length) return;
      const all = this.take(4 + length);
      this.onFrame(all.subarray(4));
    }
  }

  private peek(n: number): Buffer {
    if (this.pending[0]!.length >= n) return this.pending[0]!.subarray(0, n);
    const joined = Buffer.concat(this.pending);
    this.pending = [joined];
    return joined.subarray(0, n);
  }

  private take(n: number): Buffer {
    const joined = this.pending.length === 1 ? this.pending[0]! : Buffer.concat(this.pending);
    this.pending = joined.length > n ? [joined.subarray(n)] : [];
    this.pendingBytes -= n;
    return joined.subarray(0, n);
  }
}

/** Classifies one frame; a compound chain yields one message per SMB2 header (NextCommand). */
export function classifyFrame(dir: Direction, frame: Buffer): WireMessage[] {
  if (frame.length < 4) return [{ dir, kind: 'unknown', frameLength: frame.length }];
  const protocol = frame.readUInt32LE(0);
  if (protocol === protocolTransform) return [{ dir, kind: 'transform', frameLength: frame.length }];
  if (protocol === protocolCompressed) return [{ dir, kind: 'compressed', frameLength: frame.length }];
  if (protocol === protocolSmb1) return [{ dir, kind: 'smb1', frameLength: frame.length }];
  if (protocol !== protocolSmb2) return [{ dir, kind: 'unknown', frameLength: frame.length }];
  const out: WireMessage[] = [];
  let at = 0;
  for (let guard = 0; guard < 256 && at + 64 <= frame.length; guard++) {
    out.push({
      dir,
      kind: 'smb2',
      Command: frame.readUInt16LE(at + 12),
      Flags: frame.readUInt32LE(at + 16),
      Status: frame.readUInt32LE(at + 8),
      SessionId: frame.readBigUInt64LE(at + 40),
      frameLength: frame.length,
    });
    const NextCommand = frame.readUInt32LE(at + 20);
    if (NextCommand === 0) break;
    at += NextCommand;
  }
  return out.length > 0 ? out : [{ dir, kind: 'unknown', frameLength: frame.length }];
}

export interface WireTap {
  host: string;
  port: number;
  /** Every message seen so far, both directions, all connections, in arrival order per direction. */
  messages(): WireMessage[];
  /** The last NEGOTIATE request/response seen (clients may negotiate twice after SMB1 0x02FF). */
  negotiateRequest(): NegotiateRequestInfo | null;
  negotiateResponse(): NegotiateResponseInfo | null;
  /** Forget what was recorded (before the next probe). */
  reset(): void;
  close(): Promise<void>;
}

const messagesMax = 200_000;

/** Starts a tap on 127.0.0.1:<ephemeral> that forwards to target. */
export async function startWireTap(target: { host: string; port: number }): Promise<WireTap> {
  let messages: WireMessage[] = [];
  let request: NegotiateRequestInfo | null = null;
  let response: NegotiateResponseInfo | null = null;
  const sockets = new Set<Socket>();

  const record = (dir: Direction, frame: Buffer): void => {
    for (const m of classifyFrame(dir, frame)) {
      if (messages.length < messagesMax) messages.push(m);
    }
    if (frame.length >= 64 && frame.readUInt32LE(0) === protocolSmb2 && frame.readUInt16LE(12) === commandNegotiate) {
      try {
        if (dir === 'c2s') request = parseNegotiateRequest(frame);
        else response = parseNegotiateResponse(frame);
      } catch {
        // A malformed negotiate is the server's or client's problem; the tests look at results.
      }
    }
  };

  const server: Server = createServer((client) => {
    const upstream = new Socket();
    sockets.add(client);
    sockets.add(upstream);
    const c2s = new FrameSplitter((f) => record('c2s', f));
    const s2c = new FrameSplitter((f) => record('s2c', f));
    client.on('data', (d: Buffer) => c2s.push(d));
    upstream.on('data', (d: Buffer) => s2c.push(d));
    client.pipe(upstream);
    upstream.pipe(client);
    const end = (): void => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', end);
    upstream.on('error', end);
    client.on('close', end);
    upstream.on('close', end);
    upstream.connect(target.port, target.host);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    host: '127.0.0.1',
    port,
    messages: () => messages,
    negotiateRequest: () => request,
    negotiateResponse: () => response,
    reset: () => {
      messages = [];
      request = null;
      response = null;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
