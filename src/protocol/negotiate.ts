// SMB2 NEGOTIATE request (MS-SMB2 2.2.3, contexts 2.2.3.1.x) and response (2.2.4, contexts 2.2.4.1.x).

import { assert } from '../base/assert.js';
import { MalformedError } from '../base/errors.js';
import { align8, SMB2_HEADER_SIZE, type BodyEncoder } from './encoder.js';
import { checkRequestBody } from './header.js';

/** MS-SMB2 2.2.3: Dialects. 0x02FF is only ever sent by a server (multi-protocol negotiate, 3.3.5.3.1). */
export const Dialect = {
  SMB202: 0x0202,
  SMB210: 0x0210,
  SMB300: 0x0300,
  SMB302: 0x0302,
  SMB311: 0x0311,
  SMB2_WILDCARD: 0x02ff,
} as const;

/** MS-SMB2 2.2.3/2.2.4: Capabilities (SMB2_GLOBAL_CAP_*). */
export const GlobalCap = {
  DFS: 0x00000001,
  LEASING: 0x00000002,
  LARGE_MTU: 0x00000004,
  MULTI_CHANNEL: 0x00000008,
  PERSISTENT_HANDLES: 0x00000010,
  DIRECTORY_LEASING: 0x00000020,
  ENCRYPTION: 0x00000040,
  NOTIFICATIONS: 0x00000080,
} as const;

/** MS-SMB2 2.2.3: SecurityMode (SMB2_NEGOTIATE_SIGNING_*). */
export const SecurityMode = {
  SIGNING_ENABLED: 0x0001,
  SIGNING_REQUIRED: 0x0002,
} as const;

/** MS-SMB2 2.2.3.1: ContextType. */
export const NegotiateContextType = {
  PREAUTH_INTEGRITY_CAPABILITIES: 0x0001,
  ENCRYPTION_CAPABILITIES: 0x0002,
  COMPRESSION_CAPABILITIES: 0x0003,
  NETNAME_NEGOTIATE_CONTEXT_ID: 0x0005,
  TRANSPORT_CAPABILITIES: 0x0006,
  RDMA_TRANSFORM_CAPABILITIES: 0x0007,
  SIGNING_CAPABILITIES: 0x0008,
} as const;

/** MS-SMB2 2.2.3.1.1: HashAlgorithms. */
export const HashAlgorithm = { SHA512: 0x0001 } as const;

/** MS-SMB2 2.2.3.1.2: Ciphers. */
export const CipherId = {
  AES_128_CCM: 0x0001,
  AES_128_GCM: 0x0002,
  AES_256_CCM: 0x0003,
  AES_256_GCM: 0x0004,
} as const;

/** MS-SMB2 2.2.3.1.3: CompressionAlgorithms. */
export const CompressionAlgorithm = {
  NONE: 0x0000,
  LZNT1: 0x0001,
  LZ77: 0x0002,
  LZ77_HUFFMAN: 0x0003,
  PATTERN_V1: 0x0004,
  LZ4: 0x0005,
} as const;

/** MS-SMB2 2.2.3.1.3: Flags of the compression context. */
export const CompressionCapFlags = { NONE: 0, CHAINED: 0x00000001 } as const;

/** MS-SMB2 2.2.3.1.5: Flags of the transport context. */
export const TransportCapFlags = { ACCEPT_TRANSPORT_LEVEL_SECURITY: 0x00000001 } as const;

/** MS-SMB2 2.2.3.1.6: RdmaTransformIds. */
export const RdmaTransformId = { NONE: 0x0000, ENCRYPTION: 0x0001, SIGNING: 0x0002 } as const;

/** MS-SMB2 2.2.3.1.7: SigningAlgorithms. */
export const SigningAlgorithm = {
  HMAC_SHA256: 0x0000,
  AES_CMAC: 0x0001,
  AES_GMAC: 0x0002,
} as const;

/** One context as found on the wire; Data is a view into the request. */
export interface RawNegotiateContext {
  ContextType: number;
  Data: Buffer;
}

export interface NegotiateRequest {
  StructureSize: number;
  DialectCount: number;
  SecurityMode: number;
  Capabilities: number;
  /** View of the 16 ClientGuid bytes. */
  ClientGuid: Buffer;
  /** Only when Dialects lacks 0x0311 (otherwise the field holds the context list location): 0n then. */
  ClientStartTime: bigint;
  /** Only meaningful when Dialects includes 0x0311; 0 otherwise. */
  NegotiateContextOffset: number;
  NegotiateContextCount: number;
  Dialects: number[];
  /** Every context, in wire order (unknown ContextType values included, untouched). */
  NegotiateContexts: RawNegotiateContext[];
  /** Decoded first occurrence of each known context. */
  PreauthIntegrity?: { HashAlgorithms: number[]; Salt: Buffer };
  Encryption?: { Ciphers: number[] };
  Compression?: { Flags: number; CompressionAlgorithms: number[] };
  NetName?: string;
  Transport?: { Flags: number };
  RdmaTransform?: { RdmaTransformIds: number[] };
  Signing?: { SigningAlgorithms: number[] };
  /**
   * ContextType values that occur more than once. MS-SMB2 3.3.5.4: the server MUST fail the request
   * with STATUS_INVALID_PARAMETER when PREAUTH_INTEGRITY, ENCRYPTION, COMPRESSION, RDMA_TRANSFORM or
   * SIGNING capabilities appear more than once; the handler decides (it knows the chosen dialect).
   */
  DuplicateContextTypes: number[];
}

const REQUEST_STRUCTURE_SIZE = 36;
const DIALECTS_AT = SMB2_HEADER_SIZE + REQUEST_STRUCTURE_SIZE; // 100
const CONTEXT_HEADER_SIZE = 8;

function u16Array(data: Buffer, at: number, count: number): number[] {
  const out: number[] = new Array(count);
  for (let i = 0; i < count; i++) out[i] = data.readUInt16LE(at + 2 * i);
  return out;
}

/** Decodes a NEGOTIATE request (msg starts at the SMB2 header). MS-SMB2 2.2.3. */
export function decodeNegotiateRequest(msg: Buffer): NegotiateRequest {
  checkRequestBody(msg, REQUEST_STRUCTURE_SIZE, 'NEGOTIATE');
  const b = SMB2_HEADER_SIZE;
  const dialectCount = msg.readUInt16LE(b + 2);
  // MS-SMB2 3.3.5.4: DialectCount 0 fails with STATUS_INVALID_PARAMETER.
  if (dialectCount === 0) throw new MalformedError('NEGOTIATE: DialectCount is 0');
  const dialectsEnd = DIALECTS_AT + 2 * dialectCount;
  if (dialectsEnd > msg.length) throw new MalformedError(`NEGOTIATE: ${dialectCount} dialects exceed the message`);
  const dialects = u16Array(msg, DIALECTS_AT, dialectCount);

  const req: NegotiateRequest = {
    StructureSize: REQUEST_STRUCTURE_SIZE,
    DialectCount: dialectCount,
    SecurityMode: msg.readUInt16LE(b + 4),
    Capabilities: msg.readUInt32LE(b + 8),
    ClientGuid: msg.subarray(b + 12, b + 28),
    ClientStartTime: 0n,
    NegotiateContextOffset: 0,
    NegotiateContextCount: 0,
    Dialects: dialects,
    NegotiateContexts: [],
    DuplicateContextTypes: [],
  };

  // MS-SMB2 2.2.3: the 8 bytes at body offset 28 are NegotiateContextOffset/Count/Reserved2 only
  // when Dialects contains 0x0311; otherwise they are ClientStartTime.
  if (!dialects.includes(Dialect.SMB311)) {
    req.ClientStartTime = msg.readBigUInt64LE(b + 28);
    return req;
  }
  const offset = msg.readUInt32LE(b + 28);
  const count = msg.readUInt16LE(b + 32);
  req.NegotiateContextOffset = offset;
  req.NegotiateContextCount = count;
  if (count === 0) return req;
  // The first context is 8-byte aligned (from the header) and follows the Dialects array.
  if (offset % 8 !== 0) throw new MalformedError(`NEGOTIATE: NegotiateContextOffset ${offset} not 8-byte aligned`);
  if (offset < dialectsEnd) throw new MalformedError(`NEGOTIATE: NegotiateContextOffset ${offset} overlaps Dialects`);

  const seen = new Set<number>();
  const dup = new Set<number>();
  let at = offset;
  for (let i = 0; i < count; i++) {
    if (i > 0) at = align8(at); // MS-SMB2 2.2.3.1: each subsequent context starts 8-byte aligned.
    if (at + CONTEXT_HEADER_SIZE > msg.length) throw new MalformedError(`NEGOTIATE: context ${i} header beyond message`);
    const type = msg.readUInt16LE(at);
    const len = msg.readUInt16LE(at + 2);
    const dataAt = at + CONTEXT_HEADER_SIZE;
    if (dataAt + len > msg.length) throw new MalformedError(`NEGOTIATE: context ${i} data beyond message`);
    const data = msg.subarray(dataAt, dataAt + len);
    req.NegotiateContexts.push({ ContextType: type, Data: data });
    if (seen.has(type)) dup.add(type);
    else {
      seen.add(type);
      decodeKnownContext(req, type, data);
    }
    at = dataAt + len;
  }
  req.DuplicateContextTypes = [...dup];
  return req;
}

function decodeKnownContext(req: NegotiateRequest, type: number, data: Buffer): void {
  switch (type) {
    case NegotiateContextType.PREAUTH_INTEGRITY_CAPABILITIES: {
      // MS-SMB2 2.2.3.1.1: HashAlgorithmCount (>0), SaltLength, HashAlgorithms, Salt.
      if (data.length < 4) throw new MalformedError('NEGOTIATE: preauth context too short');
      const n = data.readUInt16LE(0);
      const saltLen = data.readUInt16LE(2);
      if (n === 0) throw new MalformedError('NEGOTIATE: HashAlgorithmCount is 0');
      if (4 + 2 * n + saltLen > data.length) throw new MalformedError('NEGOTIATE: preauth context overflows');
      req.PreauthIntegrity = { HashAlgorithms: u16Array(data, 4, n), Salt: data.subarray(4 + 2 * n, 4 + 2 * n + saltLen) };
      return;
    }
    case NegotiateContextType.ENCRYPTION_CAPABILITIES: {
      // MS-SMB2 2.2.3.1.2: CipherCount (>0), Ciphers.
      if (data.length < 2) throw new MalformedError('NEGOTIATE: encryption context too short');
      const n = data.readUInt16LE(0);
      if (n === 0) throw new MalformedError('NEGOTIATE: CipherCount is 0');
      if (2 + 2 * n > data.length) throw new MalformedError('NEGOTIATE: encryption context overflows');
      req.Encryption = { Ciphers: u16Array(data, 2, n) };
      return;
    }
    case NegotiateContextType.COMPRESSION_CAPABILITIES: {
      // MS-SMB2 2.2.3.1.3: CompressionAlgorithmCount (>0), Padding, Flags, CompressionAlgorithms.
      if (data.length < 8) throw new MalformedError('NEGOTIATE: compression context too short');
      const n = data.readUInt16LE(0);
      if (n === 0) throw new MalformedError('NEGOTIATE: CompressionAlgorithmCount is 0');
      if (8 + 2 * n > data.length) throw new MalformedError('NEGOTIATE: compression context overflows');
      req.Compression = { Flags: data.readUInt32LE(4), CompressionAlgorithms: u16Array(data, 8, n) };
      return;
    }
    case NegotiateContextType.SIGNING_CAPABILITIES: {
      // MS-SMB2 2.2.3.1.7: SigningAlgorithmCount (>0), SigningAlgorithms.
      if (data.length < 2) throw new MalformedError('NEGOTIATE: signing context too short');
      const n = data.readUInt16LE(0);
      if (n === 0) throw new MalformedError('NEGOTIATE: SigningAlgorithmCount is 0');
      if (2 + 2 * n > data.length) throw new MalformedError('NEGOTIATE: signing context overflows');
      req.Signing = { SigningAlgorithms: u16Array(data, 2, n) };
      return;
    }
    // The next three are informational to this server: a malformed one is left undecoded (its raw
    // bytes stay in NegotiateContexts) rather than failing the whole negotiate.
    case NegotiateContextType.NETNAME_NEGOTIATE_CONTEXT_ID:
      // MS-SMB2 2.2.3.1.4: NetName, UTF-16LE, DataLength bytes (not null-terminated).
      if ((data.length & 1) === 0) req.NetName = data.toString('utf16le');
      return;
    case NegotiateContextType.TRANSPORT_CAPABILITIES:
      // MS-SMB2 2.2.3.1.5: Flags.
      if (data.length >= 4) req.Transport = { Flags: data.readUInt32LE(0) };
      return;
    case NegotiateContextType.RDMA_TRANSFORM_CAPABILITIES: {
      // MS-SMB2 2.2.3.1.6: TransformCount, Reserved1, Reserved2, RdmaTransformIds.
      if (data.length < 8) return;
      const n = data.readUInt16LE(0);
      if (8 + 2 * n <= data.length) req.RdmaTransform = { RdmaTransformIds: u16Array(data, 8, n) };
      return;
    }
    default:
      return; // MS-SMB2 3.3.5.4: unknown contexts are ignored.
  }
}

// ---- Response ----

/** A context to send in the response; Data excludes the 8-byte context header. */
export interface NegotiateContextOut {
  ContextType: number;
  Data: Buffer;
}

export interface NegotiateResponseFields {
  SecurityMode: number;
  DialectRevision: number;
  /** 16 bytes. */
  ServerGuid: Buffer;
  Capabilities: number;
  MaxTransactSize: number;
  MaxReadSize: number;
  MaxWriteSize: number;
  /** FILETIME. */
  SystemTime: bigint;
  /** FILETIME, 0n when not meaningful. */
  ServerStartTime: bigint;
  SecurityBuffer: Buffer;
  /** Only for DialectRevision 0x0311. */
  NegotiateContexts?: NegotiateContextOut[];
}

const RESPONSE_STRUCTURE_SIZE = 65;
const RESPONSE_FIXED = 64;

/** NEGOTIATE response body (MS-SMB2 2.2.4). */
export function negotiateResponse(f: NegotiateResponseFields): BodyEncoder {
  assert(f.ServerGuid.length === 16, 'negotiateResponse: ServerGuid is 16 bytes');
  const contexts = f.NegotiateContexts ?? [];
  const securityAt = SMB2_HEADER_SIZE + RESPONSE_FIXED; // 128, header-relative
  const securityEnd = securityAt + f.SecurityBuffer.length;
  // MS-SMB2 2.2.4: NegotiateContextOffset is 8-byte aligned from the header; contexts are padded
  // to 8 bytes between each other; the last one is not padded.
  const contextsAt = contexts.length > 0 ? align8(securityEnd) : 0;
  let end = securityEnd;
  if (contexts.length > 0) {
    end = contextsAt;
    contexts.forEach((c, i) => {
      assert(c.Data.length <= 0xffff, 'negotiateResponse: context DataLength fits 16 bits');
      end += CONTEXT_HEADER_SIZE + c.Data.length;
      if (i < contexts.length - 1) end = align8(end);
    });
  }
  const length = end - SMB2_HEADER_SIZE;
  return {
    byteLength: () => length,
    encodeInto(buf: Buffer, at: number): void {
      const hdr = at - SMB2_HEADER_SIZE; // header-relative offsets index from here
      buf.fill(0, at, at + length);
      buf.writeUInt16LE(RESPONSE_STRUCTURE_SIZE, at);
      buf.writeUInt16LE(f.SecurityMode, at + 2);
      buf.writeUInt16LE(f.DialectRevision, at + 4);
      buf.writeUInt16LE(contexts.length, at + 6);
      f.ServerGuid.copy(buf, at + 8);
      buf.writeUInt32LE(f.Capabilities >>> 0, at + 24);
      buf.writeUInt32LE(f.MaxTransactSize >>> 0, at + 28);
      buf.writeUInt32LE(f.MaxReadSize >>> 0, at + 32);
      buf.writeUInt32LE(f.MaxWriteSize >>> 0, at + 36);
      buf.writeBigUInt64LE(f.SystemTime, at + 40);
      buf.writeBigUInt64LE(f.ServerStartTime, at + 48);
      buf.writeUInt16LE(securityAt, at + 56);
      buf.writeUInt16LE(f.SecurityBuffer.length, at + 58);
      buf.writeUInt32LE(contextsAt, at + 60);
      f.SecurityBuffer.copy(buf, hdr + securityAt);
      let p = contextsAt;
      contexts.forEach((c, i) => {
        buf.writeUInt16LE(c.ContextType, hdr + p);
        buf.writeUInt16LE(c.Data.length, hdr + p + 2);
        c.Data.copy(buf, hdr + p + CONTEXT_HEADER_SIZE);
        p += CONTEXT_HEADER_SIZE + c.Data.length;
        if (i < contexts.length - 1) p = align8(p);
      });
    },
  };
}

/** MS-SMB2 2.2.4.1.1: the preauth context the server sends (one hash algorithm, with its Salt). */
export function preauthIntegrityContext(Salt: Buffer, hashAlgorithm: number = HashAlgorithm.SHA512): NegotiateContextOut {
  const data = Buffer.alloc(6 + Salt.length);
  data.writeUInt16LE(1, 0);
  data.writeUInt16LE(Salt.length, 2);
  data.writeUInt16LE(hashAlgorithm, 4);
  Salt.copy(data, 6);
  return { ContextType: NegotiateContextType.PREAUTH_INTEGRITY_CAPABILITIES, Data: data };
}

/** MS-SMB2 2.2.4.1.2: the cipher the server selected (0 = none in common). */
export function encryptionContext(cipher: number): NegotiateContextOut {
  const data = Buffer.alloc(4);
  data.writeUInt16LE(1, 0);
  data.writeUInt16LE(cipher, 2);
  return { ContextType: NegotiateContextType.ENCRYPTION_CAPABILITIES, Data: data };
}

/** MS-SMB2 2.2.4.1.7: the signing algorithm the server selected. */
export function signingContext(algorithm: number): NegotiateContextOut {
  const data = Buffer.alloc(4);
  data.writeUInt16LE(1, 0);
  data.writeUInt16LE(algorithm, 2);
  return { ContextType: NegotiateContextType.SIGNING_CAPABILITIES, Data: data };
}
