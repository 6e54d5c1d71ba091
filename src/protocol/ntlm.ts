// NTLMSSP message codecs (MS-NLMP 2.2). Pure: no state, no crypto. Decoders return views into the
// input buffer (never copies) and validate every offset/length against the message before use;
// anything that does not form a valid message raises MalformedError and nothing else.
import { MalformedError } from '../base/errors.js';

/** "NTLMSSP\0" (MS-NLMP 2.2.1). */
export const NTLMSSP_SIGNATURE = Buffer.from('NTLMSSP\0', 'latin1');

/** MessageType values (MS-NLMP 2.2.1.1 .. 2.2.1.3). */
export const NtlmMessageType = {
  NtLmNegotiate: 1,
  NtLmChallenge: 2,
  NtLmAuthenticate: 3,
} as const;

/** NEGOTIATE flags (MS-NLMP 2.2.2.5). Bit 31 is set with `>>> 0` so every value is a non-negative number. */
export const NegotiateFlags = {
  NTLMSSP_NEGOTIATE_UNICODE: 0x00000001,
  NTLM_NEGOTIATE_OEM: 0x00000002,
  NTLMSSP_REQUEST_TARGET: 0x00000004,
  NTLMSSP_NEGOTIATE_SIGN: 0x00000010,
  NTLMSSP_NEGOTIATE_SEAL: 0x00000020,
  NTLMSSP_NEGOTIATE_DATAGRAM: 0x00000040,
  NTLMSSP_NEGOTIATE_LM_KEY: 0x00000080,
  NTLMSSP_NEGOTIATE_NTLM: 0x00000200,
  /** "J" in MS-NLMP 2.2.2.5: the connection SHOULD be anonymous. */
  NTLMSSP_ANONYMOUS: 0x00000800,
  NTLMSSP_NEGOTIATE_OEM_DOMAIN_SUPPLIED: 0x00001000,
  NTLMSSP_NEGOTIATE_OEM_WORKSTATION_SUPPLIED: 0x00002000,
  NTLMSSP_NEGOTIATE_ALWAYS_SIGN: 0x00008000,
  NTLMSSP_TARGET_TYPE_DOMAIN: 0x00010000,
  NTLMSSP_TARGET_TYPE_SERVER: 0x00020000,
  NTLMSSP_NEGOTIATE_EXTENDED_SESSIONSECURITY: 0x00080000,
  NTLMSSP_NEGOTIATE_IDENTIFY: 0x00100000,
  NTLMSSP_REQUEST_NON_NT_SESSION_KEY: 0x00400000,
  NTLMSSP_NEGOTIATE_TARGET_INFO: 0x00800000,
  NTLMSSP_NEGOTIATE_VERSION: 0x02000000,
  NTLMSSP_NEGOTIATE_128: 0x20000000,
  NTLMSSP_NEGOTIATE_KEY_EXCH: 0x40000000,
  NTLMSSP_NEGOTIATE_56: 0x80000000 >>> 0,
} as const;

/** AV_PAIR AvId values (MS-NLMP 2.2.2.1). */
export const AvId = {
  MsvAvEOL: 0x0000,
  MsvAvNbComputerName: 0x0001,
  MsvAvNbDomainName: 0x0002,
  MsvAvDnsComputerName: 0x0003,
  MsvAvDnsDomainName: 0x0004,
  MsvAvDnsTreeName: 0x0005,
  MsvAvFlags: 0x0006,
  MsvAvTimestamp: 0x0007,
  MsvAvSingleHost: 0x0008,
  MsvAvTargetName: 0x0009,
  MsvAvChannelBindings: 0x000a,
} as const;

/** Bits of the MsvAvFlags value (MS-NLMP 2.2.2.1). */
export const MsvAvFlagsBits = {
  /** The account authentication is constrained. */
  Constrained: 0x1,
  /** The client provides message integrity in the MIC field of the AUTHENTICATE_MESSAGE. */
  MicPresent: 0x2,
  /** The client provides a target SPN generated from an untrusted source. */
  UntrustedSpn: 0x4,
} as const;

/** VERSION structure (MS-NLMP 2.2.2.10). */
export interface NtlmVersion {
  ProductMajorVersion: number;
  ProductMinorVersion: number;
  ProductBuild: number;
  /** NTLMSSP_REVISION_W2K3 = 0x0F. */
  NTLMRevisionCurrent: number;
}

export const NTLMSSP_REVISION_W2K3 = 0x0f;

export interface AvPair {
  AvId: number;
  /** View into the decoded buffer. */
  Value: Buffer;
}

/** MS-NLMP 2.2.1.1 */
export interface NegotiateMessage {
  NegotiateFlags: number;
  /** OEM string, meaningful only with NTLMSSP_NEGOTIATE_OEM_DOMAIN_SUPPLIED (view). */
  DomainName: Buffer;
  /** OEM string, meaningful only with NTLMSSP_NEGOTIATE_OEM_WORKSTATION_SUPPLIED (view). */
  Workstation: Buffer;
  Version?: NtlmVersion;
}

/** MS-NLMP 2.2.1.2 */
export interface ChallengeMessage {
  NegotiateFlags: number;
  /** Encoded as the flags say (UTF-16LE with NTLMSSP_NEGOTIATE_UNICODE); view. */
  TargetName: Buffer;
  ServerChallenge: Buffer;
  /** Encoded AV_PAIR list (view). */
  TargetInfo: Buffer;
  Version?: NtlmVersion;
}

/** MS-NLMP 2.2.1.3 */
export interface AuthenticateMessage {
  NegotiateFlags: number;
  LmChallengeResponse: Buffer;
  NtChallengeResponse: Buffer;
  /** Decoded per NTLMSSP_NEGOTIATE_UNICODE (UTF-16LE) or OEM (latin1). */
  DomainName: string;
  UserName: string;
  Workstation: string;
  EncryptedRandomSessionKey: Buffer;
  Version?: NtlmVersion;
  /** The 16-byte MIC field (view) when the message has room for it (payload starts at >= 88). */
  MIC?: Buffer;
  /** Offset of the MIC field in the message (72) when MIC is present. */
  micOffset?: number;
}

/** NTLMv2_CLIENT_CHALLENGE (MS-NLMP 2.2.2.7): the "temp" blob after NTProofStr. */
export interface Ntlmv2ClientChallenge {
  RespType: number;
  HiRespType: number;
  TimeStamp: bigint;
  ChallengeFromClient: Buffer;
  AvPairs: AvPair[];
}

// Local aliases: the decoders name their flag variable after the field (NegotiateFlags), shadowing the table.
const FLAG_VERSION = NegotiateFlags.NTLMSSP_NEGOTIATE_VERSION;
const FLAG_UNICODE = NegotiateFlags.NTLMSSP_NEGOTIATE_UNICODE;

const NEGOTIATE_FIXED_BYTES = 16; // Signature + MessageType + NegotiateFlags: the least a legacy client sends
const CHALLENGE_HEADER_BYTES = 56;
const AUTHENTICATE_FIXED_BYTES = 64; // up to and including NegotiateFlags
const AUTH_VERSION_OFFSET = 64;
const AUTH_MIC_OFFSET = 72;
const AUTH_PAYLOAD_WITH_MIC = 88;
const NTLMV2_CLIENT_CHALLENGE_FIXED = 28;

function malformed(what: string): never {
  throw new MalformedError(`NTLMSSP: ${what}`);
}

/** Message type of an NTLMSSP message, or undefined when the bytes do not start with the signature. */
export function ntlmMessageType(buf: Buffer): number | undefined {
  if (buf.length < 12 || !buf.subarray(0, 8).equals(NTLMSSP_SIGNATURE)) return undefined;
  return buf.readUInt32LE(8);
}

function checkHeader(buf: Buffer, type: number, minBytes: number): void {
  if (buf.length < minBytes) malformed(`message of ${buf.length} bytes is shorter than ${minBytes}`);
  if (!buf.subarray(0, 8).equals(NTLMSSP_SIGNATURE)) malformed('bad Signature');
  const t = buf.readUInt32LE(8);
  if (t !== type) malformed(`MessageType ${t}, expected ${type}`);
}

interface FieldRef {
  len: number;
  offset: number;
}

/** Reads Len/MaxLen/BufferOffset (MS-NLMP 2.2.1.x "...Fields") and validates the range. */
function readField(buf: Buffer, at: number, name: string): FieldRef {
  const len = buf.readUInt16LE(at);
  const offset = buf.readUInt32LE(at + 4);
  if (len > 0 && offset + len > buf.length) malformed(`${name} [${offset}, +${len}) outside ${buf.length}-byte message`);
  return { len, offset };
}

function view(buf: Buffer, f: FieldRef): Buffer {
  return f.len === 0 ? buf.subarray(0, 0) : buf.subarray(f.offset, f.offset + f.len);
}

function readVersion(buf: Buffer, at: number): NtlmVersion {
  return {
    ProductMajorVersion: buf[at]!,
    ProductMinorVersion: buf[at + 1]!,
    ProductBuild: buf.readUInt16LE(at + 2),
    NTLMRevisionCurrent: buf[at + 7]!,
  };
}

function writeVersion(buf: Buffer, at: number, v: NtlmVersion): void {
  buf[at] = v.ProductMajorVersion;
  buf[at + 1] = v.ProductMinorVersion;
  buf.writeUInt16LE(v.ProductBuild, at + 2);
  buf.fill(0, at + 4, at + 7);
  buf[at + 7] = v.NTLMRevisionCurrent;
}

/** Lowest offset of the non-empty payload fields, or the message length when all are empty. */
function payloadStart(buf: Buffer, fields: FieldRef[]): number {
  let start = buf.length;
  for (const f of fields) if (f.len > 0 && f.offset < start) start = f.offset;
  return start;
}

/** Decodes a NEGOTIATE_MESSAGE (MS-NLMP 2.2.1.1). Accepts the 16-byte form of very old clients. */
export function decodeNegotiateMessage(buf: Buffer): NegotiateMessage {
  checkHeader(buf, NtlmMessageType.NtLmNegotiate, NEGOTIATE_FIXED_BYTES);
  const NegotiateFlags = buf.readUInt32LE(12);
  if (buf.length < 32) {
    return { NegotiateFlags, DomainName: buf.subarray(0, 0), Workstation: buf.subarray(0, 0) };
  }
  const domain = readField(buf, 16, 'DomainNameFields');
  const workstation = readField(buf, 24, 'WorkstationFields');
  const start = payloadStart(buf, [domain, workstation]);
  const msg: NegotiateMessage = { NegotiateFlags, DomainName: view(buf, domain), Workstation: view(buf, workstation) };
  // Version sits at 32 when NTLMSSP_NEGOTIATE_VERSION is set and the payload leaves room for it.
  if (NegotiateFlags & FLAG_VERSION && start >= 40 && buf.length >= 40) msg.Version = readVersion(buf, 32);
  return msg;
}
/** Decodes a CHALLENGE_MESSAGE (MS-NLMP 2.2.1.2). Used by clients and tests. */
export function decodeChallengeMessage(buf: Buffer): ChallengeMessage {
  checkHeader(buf, NtlmMessageType.NtLmChallenge, 48);
  const target = readField(buf, 12, 'TargetNameFields');
  const NegotiateFlags = buf.readUInt32LE(20);
  const ServerChallenge = buf.subarray(24, 32);
  const info = readField(buf, 40, 'TargetInfoFields');
  const start = payloadStart(buf, [target, info]);
  const msg: ChallengeMessage = { NegotiateFlags, TargetName: view(buf, target), ServerChallenge, TargetInfo: view(buf, info) };
  if (NegotiateFlags & FLAG_VERSION && start >= CHALLENGE_HEADER_BYTES && buf.length >= CHALLENGE_HEADER_BYTES) {
    msg.Version = readVersion(buf, 48);
  }
  return msg;
}

function decodeString(b: Buffer, unicode: boolean, name: string): string {
  if (!unicode) return b.toString('latin1');
  if (b.length % 2 !== 0) malformed(`${name} has odd length ${b.length} in a Unicode message`);
  return b.toString('utf16le');
}

/**
 * Decodes an AUTHENTICATE_MESSAGE (MS-NLMP 2.2.1.3). The Version field (offset 64) and the MIC field
 * (offset 72) exist only when the payload starts after them: MS-NLMP 4.2.4.3 shows a message with a
 * Version but no MIC (payload at 72). We therefore report MIC when the lowest payload offset is >= 88;
 * whether a MIC is *required* is decided by the MsvAvFlags of the NTLMv2 response (3.2.5.1.2).
 */
export function decodeAuthenticateMessage(buf: Buffer): AuthenticateMessage {
  checkHeader(buf, NtlmMessageType.NtLmAuthenticate, AUTHENTICATE_FIXED_BYTES);
  const lm = readField(buf, 12, 'LmChallengeResponseFields');
  const nt = readField(buf, 20, 'NtChallengeResponseFields');
  const domain = readField(buf, 28, 'DomainNameFields');
  const user = readField(buf, 36, 'UserNameFields');
  const ws = readField(buf, 44, 'WorkstationFields');
  const key = readField(buf, 52, 'EncryptedRandomSessionKeyFields');
  const NegotiateFlags = buf.readUInt32LE(60);
  const fields = [lm, nt, domain, user, ws, key];
  for (const f of fields) {
    if (f.len > 0 && f.offset < AUTHENTICATE_FIXED_BYTES) malformed('payload field overlaps the fixed header');
  }
  const start = payloadStart(buf, fields);
  const unicode = (NegotiateFlags & FLAG_UNICODE) !== 0;
  const msg: AuthenticateMessage = {
    NegotiateFlags,
    LmChallengeResponse: view(buf, lm),
    NtChallengeResponse: view(buf, nt),
    DomainName: decodeString(view(buf, domain), unicode, 'DomainName'),
    UserName: decodeString(view(buf, user), unicode, 'UserName'),
    Workstation: decodeString(view(buf, ws), unicode, 'Workstation'),
    EncryptedRandomSessionKey: view(buf, key),
  };
  if (start >= AUTH_MIC_OFFSET && NegotiateFlags & FLAG_VERSION) msg.Version = readVersion(buf, AUTH_VERSION_OFFSET);
  if (start >= AUTH_PAYLOAD_WITH_MIC) {
    msg.MIC = buf.subarray(AUTH_MIC_OFFSET, AUTH_MIC_OFFSET + 16);
    msg.micOffset = AUTH_MIC_OFFSET;
  }
  return msg;
}

/**
 * Decodes an AV_PAIR list (MS-NLMP 2.2.2.1) up to and excluding MsvAvEOL. Values are views.
 * `requireEol`: the list MUST end with MsvAvEOL; bytes after it are ignored (the NTLMv2 client
 * challenge carries trailing zero padding).
 */
export function decodeAvPairs(buf: Buffer, requireEol = true): AvPair[] {
  const out: AvPair[] = [];
  let at = 0;
  for (;;) {
    if (at === buf.length && !requireEol) return out;
    if (at + 4 > buf.length) malformed('AV_PAIR list not terminated by MsvAvEOL');
    const id = buf.readUInt16LE(at);
    const len = buf.readUInt16LE(at + 2);
    if (at + 4 + len > buf.length) malformed(`AV_PAIR ${id} length ${len} past the end of the list`);
    if (id === AvId.MsvAvEOL) return out;
    out.push({ AvId: id, Value: buf.subarray(at + 4, at + 4 + len) });
    at += 4 + len;
  }
}

/** Encodes an AV_PAIR list and appends MsvAvEOL (MS-NLMP 2.2.2.1). Pairs with AvId EOL are skipped. */
export function encodeAvPairs(pairs: readonly AvPair[]): Buffer {
  let size = 4;
  for (const p of pairs) if (p.AvId !== AvId.MsvAvEOL) size += 4 + p.Value.length;
  const out = Buffer.alloc(size);
  let at = 0;
  for (const p of pairs) {
    if (p.AvId === AvId.MsvAvEOL) continue;
    if (p.Value.length > 0xffff) throw new RangeError('AV_PAIR value too long');
    out.writeUInt16LE(p.AvId, at);
    out.writeUInt16LE(p.Value.length, at + 2);
    p.Value.copy(out, at + 4);
    at += 4 + p.Value.length;
  }
  return out; // the last 4 bytes stay zero: MsvAvEOL with AvLen 0
}

/** First AV pair with the given id. */
export function findAvPair(pairs: readonly AvPair[], id: number): AvPair | undefined {
  return pairs.find((p) => p.AvId === id);
}

/** Decodes NTLMv2_CLIENT_CHALLENGE (MS-NLMP 2.2.2.7), the bytes after NTProofStr in an NTLMv2 response. */
export function decodeNtlmv2ClientChallenge(buf: Buffer): Ntlmv2ClientChallenge {
  if (buf.length < NTLMV2_CLIENT_CHALLENGE_FIXED + 4) malformed(`NTLMv2_CLIENT_CHALLENGE of ${buf.length} bytes`);
  return {
    RespType: buf[0]!,
    HiRespType: buf[1]!,
    TimeStamp: buf.readBigUInt64LE(8),
    ChallengeFromClient: buf.subarray(16, 24),
    AvPairs: decodeAvPairs(buf.subarray(NTLMV2_CLIENT_CHALLENGE_FIXED), true),
  };
}

/** Encodes NTLMv2_CLIENT_CHALLENGE followed by the 4 zero bytes clients append (MS-NLMP 3.3.2 "temp"). */
export function encodeNtlmv2ClientChallenge(f: { TimeStamp: bigint; ChallengeFromClient: Buffer; AvPairs: Buffer }): Buffer {
  const out = Buffer.alloc(NTLMV2_CLIENT_CHALLENGE_FIXED + f.AvPairs.length + 4);
  out[0] = 1; // RespType
  out[1] = 1; // HiRespType
  out.writeBigUInt64LE(f.TimeStamp, 8);
  f.ChallengeFromClient.copy(out, 16, 0, 8);
  f.AvPairs.copy(out, NTLMV2_CLIENT_CHALLENGE_FIXED);
  return out;
}

interface PayloadItem {
  at: number; // offset of the ...Fields structure in the header
  data: Buffer;
}

/** Writes the payload in the given order after `headerBytes` and fills the ...Fields structures. */
function writeMessage(type: number, headerBytes: number, items: PayloadItem[], fill: (buf: Buffer) => void): Buffer {
  let size = headerBytes;
  for (const it of items) size += it.data.length;
  const buf = Buffer.alloc(size);
  NTLMSSP_SIGNATURE.copy(buf, 0);
  buf.writeUInt32LE(type, 8);
  let off = headerBytes;
  for (const it of items) {
    if (it.data.length > 0xffff) throw new RangeError('NTLMSSP field too long');
    buf.writeUInt16LE(it.data.length, it.at);
    buf.writeUInt16LE(it.data.length, it.at + 2);
    buf.writeUInt32LE(off, it.at + 4);
    it.data.copy(buf, off);
    off += it.data.length;
  }
  fill(buf);
  return buf;
}

/** Encodes a CHALLENGE_MESSAGE (MS-NLMP 2.2.1.2): TargetName then TargetInfo in the payload. */
export function encodeChallengeMessage(m: ChallengeMessage): Buffer {
  if (m.ServerChallenge.length !== 8) throw new RangeError('ServerChallenge must be 8 bytes');
  return writeMessage(
    NtlmMessageType.NtLmChallenge,
    CHALLENGE_HEADER_BYTES,
    [
      { at: 12, data: m.TargetName },
      { at: 40, data: m.TargetInfo },
    ],
    (buf) => {
      buf.writeUInt32LE(m.NegotiateFlags >>> 0, 20);
      m.ServerChallenge.copy(buf, 24);
      if (m.Version) writeVersion(buf, 48, m.Version);
    },
  );
}

/** Encodes a NEGOTIATE_MESSAGE (MS-NLMP 2.2.1.1). For clients and tests. */
export function encodeNegotiateMessage(m: { NegotiateFlags: number; DomainName?: Buffer; Workstation?: Buffer; Version?: NtlmVersion }): Buffer {
  return writeMessage(
    NtlmMessageType.NtLmNegotiate,
    40,
    [
      { at: 16, data: m.DomainName ?? Buffer.alloc(0) },
      { at: 24, data: m.Workstation ?? Buffer.alloc(0) },
    ],
    (buf) => {
      buf.writeUInt32LE(m.NegotiateFlags >>> 0, 12);
      if (m.Version) writeVersion(buf, 32, m.Version);
    },
  );
}

/**
 * Encodes an AUTHENTICATE_MESSAGE (MS-NLMP 2.2.1.3). For clients and tests. Payload order is
 * DomainName, UserName, Workstation, LmChallengeResponse, NtChallengeResponse,
 * EncryptedRandomSessionKey, as in MS-NLMP 4.2.4.3. With `withMic` a zeroed 16-byte MIC field is
 * reserved at offset 72 (fill it with `MIC` or patch it afterwards).
 */
export function encodeAuthenticateMessage(m: {
  NegotiateFlags: number;
  LmChallengeResponse: Buffer;
  NtChallengeResponse: Buffer;
  DomainName: Buffer;
  UserName: Buffer;
  Workstation: Buffer;
  EncryptedRandomSessionKey: Buffer;
  Version?: NtlmVersion;
  withMic?: boolean;
  MIC?: Buffer;
}): Buffer {
  const header = m.withMic ? AUTH_PAYLOAD_WITH_MIC : AUTH_MIC_OFFSET;
  return writeMessage(
    NtlmMessageType.NtLmAuthenticate,
    header,
    [
      { at: 28, data: m.DomainName },
      { at: 36, data: m.UserName },
      { at: 44, data: m.Workstation },
      { at: 12, data: m.LmChallengeResponse },
      { at: 20, data: m.NtChallengeResponse },
      { at: 52, data: m.EncryptedRandomSessionKey },
    ],
    (buf) => {
      buf.writeUInt32LE(m.NegotiateFlags >>> 0, 60);
      if (m.Version) writeVersion(buf, AUTH_VERSION_OFFSET, m.Version);
      if (m.withMic && m.MIC) m.MIC.copy(buf, AUTH_MIC_OFFSET, 0, 16);
    },
  );
}

/** Offset of the MIC field in an AUTHENTICATE_MESSAGE (MS-NLMP 2.2.1.3). */
export const AUTHENTICATE_MIC_OFFSET = AUTH_MIC_OFFSET;
