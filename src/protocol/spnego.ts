// SPNEGO token codecs (RFC 4178, RFC 2743 3.1 framing, MS-SPNG 2.2) with a small hand-written DER
// reader and writer. Pure. The reader is strict about structure and bounds: definite lengths only
// (at most 4 length octets), single-octet tags, every element inside its parent, fields of a
// SEQUENCE in ascending context-tag order without duplicates. It tolerates non-minimal length octets
// (BER long form for short lengths), which some encoders produce. Decoders return views.
import { MalformedError } from '../base/errors.js';

export const OID_SPNEGO = '1.3.6.1.5.5.2';
export const OID_NTLMSSP = '1.3.6.1.4.1.311.2.2.10';
export const OID_KRB5 = '1.2.840.113554.1.2.2';
export const OID_MS_KRB5 = '1.2.840.48018.1.2.2';
export const OID_NEGOEX = '1.3.6.1.4.1.311.2.2.30';

/** hintName a Windows server puts in NegTokenInit2 (MS-SPNG 3.2.5.2). */
export const NEG_HINT_NAME = 'not_defined_in_RFC4178@please_ignore';

/** negState (RFC 4178 4.2.2). */
export const NegState = {
  acceptCompleted: 0,
  acceptIncomplete: 1,
  reject: 2,
  requestMic: 3,
} as const;

/** ContextFlags bits (RFC 4178 4.2.1), as bit positions of the BIT STRING. */
export const ContextFlags = {
  delegFlag: 1 << 0,
  mutualFlag: 1 << 1,
  replayFlag: 1 << 2,
  sequenceFlag: 1 << 3,
  anonFlag: 1 << 4,
  confFlag: 1 << 5,
  integFlag: 1 << 6,
} as const;

/** NegTokenInit (RFC 4178 4.2.1), also reading MS-SPNG NegTokenInit2 (2.2.1). */
export interface NegTokenInit {
  mechTypes: string[];
  /** The DER of the MechTypeList (SEQUENCE OF MechType) as received: the input of mechListMIC. View. */
  mechTypesDer: Buffer;
  /** ContextFlags, bit n set when named bit n is set (see ContextFlags). */
  reqFlags?: number;
  mechToken?: Buffer;
  /** Only in NegTokenInit2. */
  negHints?: { hintName?: string; hintAddress?: Buffer };
  mechListMIC?: Buffer;
}

/** NegTokenResp (RFC 4178 4.2.2). */
export interface NegTokenResp {
  negState?: number;
  supportedMech?: string;
  responseToken?: Buffer;
  mechListMIC?: Buffer;
}

export type SpnegoToken =
  | { kind: 'init'; token: NegTokenInit }
  | { kind: 'resp'; token: NegTokenResp }
  /** A bare NTLMSSP message sent without SPNEGO. */
  | { kind: 'ntlmssp'; token: Buffer };

// ---- DER primitives ---------------------------------------------------------------------------

const TAG_BIT_STRING = 0x03;
const TAG_OCTET_STRING = 0x04;
const TAG_OID = 0x06;
const TAG_ENUMERATED = 0x0a;
const TAG_GENERAL_STRING = 0x1b;
const TAG_SEQUENCE = 0x30;
const TAG_APPLICATION_0 = 0x60;
const ctx = (n: number): number => 0xa0 | n;

const OID_BYTES_MAX = 64;

function malformed(what: string): never {
  throw new MalformedError(`SPNEGO: ${what}`);
}

interface Tlv {
  tag: number;
  /** Content octets (view). */
  content: Buffer;
  /** The whole element, header included (view). */
  whole: Buffer;
}

/** Reads consecutive TLVs from [start, end) of a buffer. */
class DerReader {
  private at: number;
  constructor(
    private readonly buf: Buffer,
    start = 0,
    private readonly end = buf.length,
  ) {
    this.at = start;
  }
  get done(): boolean {
    return this.at >= this.end;
  }
  peekTag(): number | undefined {
    return this.at < this.end ? this.buf[this.at] : undefined;
  }
  read(): Tlv {
    const b = this.buf;
    const begin = this.at;
    if (begin + 2 > this.end) malformed('truncated element header');
    const tag = b[begin]!;
    if ((tag & 0x1f) === 0x1f) malformed('multi-octet tags are not used by SPNEGO');
    let p = begin + 1;
    const first = b[p++]!;
    let len: number;
    if (first < 0x80) {
      len = first;
    } else {
      const n = first & 0x7f;
      if (n === 0) malformed('indefinite length is not DER');
      if (n > 4) malformed(`length of ${n} octets`);
      if (p + n > this.end) malformed('truncated length');
      len = 0;
      for (let i = 0; i < n; i++) len = len * 256 + b[p++]!;
    }
    if (len > this.end - p) malformed(`element of ${len} bytes overruns its container`);
    this.at = p + len;
    return { tag, content: b.subarray(p, p + len), whole: b.subarray(begin, p + len) };
  }
  expect(tag: number, what: string): Tlv {
    const t = this.read();
    if (t.tag !== tag) malformed(`${what}: tag 0x${t.tag.toString(16)}, expected 0x${tag.toString(16)}`);
    return t;
  }
}

function readerOf(t: Tlv): DerReader {
  return new DerReader(t.content);
}

/** Decodes OBJECT IDENTIFIER content octets to dotted form (X.690 8.19). */
export function decodeOid(content: Buffer): string {
  if (content.length === 0 || content.length > OID_BYTES_MAX) malformed(`OID of ${content.length} bytes`);
  const arcs: number[] = [];
  let value = 0;
  let inArc = false;
  for (let i = 0; i < content.length; i++) {
    const byte = content[i]!;
    if (!inArc && byte === 0x80) malformed('OID arc with a leading 0x80 octet');
    value = value * 128 + (byte & 0x7f);
    if (value > 0xffffffff) malformed('OID arc larger than 32 bits');
    inArc = (byte & 0x80) !== 0;
    if (!inArc) {
      if (arcs.length === 0) {
        const first = value < 40 ? 0 : value < 80 ? 1 : 2;
        arcs.push(first, value - first * 40);
      } else {
        arcs.push(value);
      }
      value = 0;
    }
  }
  if (inArc) malformed('OID ends inside an arc');
  return arcs.join('.');
}

/** Encodes a dotted OID to content octets. */
export function encodeOidContent(oid: string): Buffer {
  const arcs = oid.split('.').map((s) => {
    if (!/^\d+$/.test(s)) throw new RangeError(`bad OID ${oid}`);
    return Number(s);
  });
  if (arcs.length < 2 || arcs[0]! > 2) throw new RangeError(`bad OID ${oid}`);
  const values = [arcs[0]! * 40 + arcs[1]!, ...arcs.slice(2)];
  const bytes: number[] = [];
  for (const v of values) {
    const chunk: number[] = [v & 0x7f];
    let rest = Math.floor(v / 128);
    while (rest > 0) {
      chunk.unshift((rest & 0x7f) | 0x80);
      rest = Math.floor(rest / 128);
    }
    bytes.push(...chunk);
  }
  return Buffer.from(bytes);
}

/** Encodes one DER element. */
export function derTlv(tag: number, ...content: Buffer[]): Buffer {
  const body = content.length === 1 ? content[0]! : Buffer.concat(content);
  const n = body.length;
  let header: Buffer;
  if (n < 0x80) header = Buffer.from([tag, n]);
  else if (n < 0x100) header = Buffer.from([tag, 0x81, n]);
  else if (n < 0x10000) header = Buffer.from([tag, 0x82, n >> 8, n & 0xff]);
  else if (n < 0x1000000) header = Buffer.from([tag, 0x83, n >> 16, (n >> 8) & 0xff, n & 0xff]);
  else header = Buffer.from([tag, 0x84, (n >>> 24) & 0xff, (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff]);
  return Buffer.concat([header, body]);
}

/** DER of MechTypeList ::= SEQUENCE OF MechType: the bytes a mechListMIC covers (RFC 4178 5). */
export function encodeMechTypeList(oids: readonly string[]): Buffer {
  return derTlv(TAG_SEQUENCE, ...oids.map((o) => derTlv(TAG_OID, encodeOidContent(o))));
}

function decodeMechTypeList(t: Tlv): string[] {
  if (t.tag !== TAG_SEQUENCE) malformed('mechTypes is not a SEQUENCE');
  const r = readerOf(t);
  const out: string[] = [];
  while (!r.done) out.push(decodeOid(r.expect(TAG_OID, 'MechType').content));
  if (out.length === 0) malformed('empty mechTypes');
  return out;
}

/** ContextFlags BIT STRING to bits (bit n = named bit n; only the first 32 bits are kept). */
function decodeContextFlags(t: Tlv): number {
  const c = t.content;
  if (c.length === 0) malformed('BIT STRING without its unused-bits octet');
  const unused = c[0]!;
  if (unused > 7 || (c.length === 1 && unused !== 0)) malformed('bad BIT STRING unused-bits octet');
  let flags = 0;
  for (let i = 1; i < c.length && i <= 4; i++) {
    const byte = c[i]!;
    for (let bit = 0; bit < 8; bit++) if (byte & (0x80 >> bit)) flags |= 1 << ((i - 1) * 8 + bit);
  }
  return flags >>> 0;
}

/** Iterates the context-tagged fields of a SEQUENCE, enforcing ascending, unique tags. */
function* taggedFields(seq: Tlv, what: string): Generator<[number, Tlv]> {
  if (seq.tag !== TAG_SEQUENCE) malformed(`${what} is not a SEQUENCE`);
  const r = readerOf(seq);
  let last = -1;
  while (!r.done) {
    const t = r.read();
    if ((t.tag & 0xe0) !== 0xa0) malformed(`${what}: unexpected tag 0x${t.tag.toString(16)}`);
    const n = t.tag & 0x1f;
    if (n <= last) malformed(`${what}: field [${n}] out of order or repeated`);
    last = n;
    // Each explicit tag wraps exactly one element.
    const inner = readerOf(t);
    const value = inner.read();
    if (!inner.done) malformed(`${what}: trailing bytes in field [${n}]`);
    yield [n, value];
  }
}

function octets(t: Tlv, what: string): Buffer {
  if (t.tag !== TAG_OCTET_STRING) malformed(`${what} is not an OCTET STRING`);
  return t.content;
}

function decodeNegTokenInitBody(t: Tlv): NegTokenInit {
  // NegotiationToken CHOICE [0] NegTokenInit
  const r = readerOf(t);
  const seq = r.read();
  if (!r.done) malformed('trailing bytes after NegTokenInit');
  let mechTypes: string[] | undefined;
  let mechTypesDer: Buffer | undefined;
  const out: Partial<NegTokenInit> = {};
  for (const [n, v] of taggedFields(seq, 'NegTokenInit')) {
    switch (n) {
      case 0:
        mechTypes = decodeMechTypeList(v);
        mechTypesDer = v.whole;
        break;
      case 1:
        if (v.tag !== TAG_BIT_STRING) malformed('reqFlags is not a BIT STRING');
        out.reqFlags = decodeContextFlags(v);
        break;
      case 2:
        out.mechToken = octets(v, 'mechToken');
        break;
      case 3:
        // RFC 4178: mechListMIC OCTET STRING. MS-SPNG NegTokenInit2: negHints SEQUENCE.
        if (v.tag === TAG_OCTET_STRING) out.mechListMIC = v.content;
        else if (v.tag === TAG_SEQUENCE) out.negHints = decodeNegHints(v);
        else malformed('NegTokenInit field [3] is neither mechListMIC nor negHints');
        break;
      case 4:
        out.mechListMIC = octets(v, 'mechListMIC');
        break;
      default:
        // Unknown extension fields are skipped (RFC 4178 is extensible after the known fields).
        break;
    }
  }
  if (!mechTypes || !mechTypesDer) malformed('NegTokenInit without mechTypes');
  return { ...out, mechTypes, mechTypesDer };
}

function decodeNegHints(seq: Tlv): { hintName?: string; hintAddress?: Buffer } {
  const out: { hintName?: string; hintAddress?: Buffer } = {};
  for (const [n, v] of taggedFields(seq, 'NegHints')) {
    if (n === 0) {
      if (v.tag !== TAG_GENERAL_STRING) malformed('hintName is not a GeneralString');
      out.hintName = v.content.toString('latin1');
    } else if (n === 1) {
      out.hintAddress = octets(v, 'hintAddress');
    }
  }
  return out;
}

function decodeNegTokenRespBody(t: Tlv): NegTokenResp {
  const r = readerOf(t);
  const seq = r.read();
  if (!r.done) malformed('trailing bytes after NegTokenResp');
  const out: NegTokenResp = {};
  for (const [n, v] of taggedFields(seq, 'NegTokenResp')) {
    switch (n) {
      case 0: {
        if (v.tag !== TAG_ENUMERATED || v.content.length !== 1) malformed('negState is not a one-octet ENUMERATED');
        const s = v.content[0]!;
        if (s > NegState.requestMic) malformed(`negState ${s}`);
        out.negState = s;
        break;
      }
      case 1:
        if (v.tag !== TAG_OID) malformed('supportedMech is not an OID');
        out.supportedMech = decodeOid(v.content);
        break;
      case 2:
        out.responseToken = octets(v, 'responseToken');
        break;
      case 3:
        out.mechListMIC = octets(v, 'mechListMIC');
        break;
      default:
        break;
    }
  }
  return out;
}

/**
 * Decodes the client's first token: InitialContextToken ([APPLICATION 0] { thisMech OID = SPNEGO,
 * innerContextToken }, RFC 2743 3.1) wrapping NegotiationToken [0] NegTokenInit. A bare [0]
 * NegTokenInit (no GSS-API framing) is accepted too.
 */
export function decodeNegTokenInit(buf: Buffer): NegTokenInit {
  const r = new DerReader(buf);
  const outer = r.read();
  if (!r.done) malformed('trailing bytes after the token');
  if (outer.tag === ctx(0)) return decodeNegTokenInitBody(outer);
  if (outer.tag !== TAG_APPLICATION_0) malformed(`token tag 0x${outer.tag.toString(16)} is not [APPLICATION 0]`);
  const inner = readerOf(outer);
  const mech = decodeOid(inner.expect(TAG_OID, 'thisMech').content);
  if (mech !== OID_SPNEGO) malformed(`thisMech ${mech} is not SPNEGO`);
  const body = inner.read();
  if (!inner.done) malformed('trailing bytes in InitialContextToken');
  if (body.tag !== ctx(0)) malformed('InitialContextToken does not carry a NegTokenInit');
  return decodeNegTokenInitBody(body);
}

/** Decodes NegotiationToken [1] NegTokenResp (RFC 4178 4.2.2). */
export function decodeNegTokenResp(buf: Buffer): NegTokenResp {
  const r = new DerReader(buf);
  const outer = r.expect(ctx(1), 'NegTokenResp');
  if (!r.done) malformed('trailing bytes after the token');
  return decodeNegTokenRespBody(outer);
}

/** True when the bytes are a raw NTLMSSP message ("NTLMSSP\0" signature, MS-NLMP 2.2.1). */
export function isRawNtlmssp(buf: Buffer): boolean {
  return buf.length >= 8 && buf.toString('latin1', 0, 8) === 'NTLMSSP\0';
}

/** Classifies and decodes any token a client may put in SESSION_SETUP's security buffer. */
export function decodeSpnegoToken(buf: Buffer): SpnegoToken {
  if (isRawNtlmssp(buf)) return { kind: 'ntlmssp', token: buf };
  const tag = buf[0];
  if (tag === TAG_APPLICATION_0 || tag === ctx(0)) return { kind: 'init', token: decodeNegTokenInit(buf) };
  if (tag === ctx(1)) return { kind: 'resp', token: decodeNegTokenResp(buf) };
  malformed(buf.length === 0 ? 'empty token' : `unknown token tag 0x${tag!.toString(16)}`);
}

// ---- Encoders ---------------------------------------------------------------------------------

function gssWrap(negotiationToken: Buffer): Buffer {
  return derTlv(TAG_APPLICATION_0, derTlv(TAG_OID, encodeOidContent(OID_SPNEGO)), negotiationToken);
}

/**
 * The server's NegTokenInit2 for the SMB2 NEGOTIATE response (MS-SPNG 2.2.1, 3.2.5.2): mechTypes
 * and negHints with hintName "not_defined_in_RFC4178@please_ignore"; hintAddress omitted.
 */
export function encodeNegTokenInit2(mechTypes: readonly string[] = [OID_NTLMSSP], hintName: string = NEG_HINT_NAME): Buffer {
  const negHints = derTlv(TAG_SEQUENCE, derTlv(ctx(0), derTlv(TAG_GENERAL_STRING, Buffer.from(hintName, 'latin1'))));
  const body = derTlv(TAG_SEQUENCE, derTlv(ctx(0), encodeMechTypeList(mechTypes)), derTlv(ctx(3), negHints));
  return gssWrap(derTlv(ctx(0), body));
}

/** A client's NegTokenInit wrapped in InitialContextToken (RFC 4178 4.2.1). For clients and tests. */
export function encodeNegTokenInit(t: { mechTypes: readonly string[]; reqFlags?: number; mechToken?: Buffer; mechListMIC?: Buffer }): Buffer {
  const fields: Buffer[] = [derTlv(ctx(0), encodeMechTypeList(t.mechTypes))];
  if (t.reqFlags !== undefined) fields.push(derTlv(ctx(1), encodeContextFlags(t.reqFlags)));
  if (t.mechToken) fields.push(derTlv(ctx(2), derTlv(TAG_OCTET_STRING, t.mechToken)));
  if (t.mechListMIC) fields.push(derTlv(ctx(3), derTlv(TAG_OCTET_STRING, t.mechListMIC)));
  return gssWrap(derTlv(ctx(0), derTlv(TAG_SEQUENCE, ...fields)));
}

function encodeContextFlags(flags: number): Buffer {
  let byte = 0;
  for (let bit = 0; bit < 7; bit++) if (flags & (1 << bit)) byte |= 0x80 >> bit;
  // One content octet; the last set bit decides the unused-bit count (DER: trailing zero bits unused).
  let unused = 0;
  if (byte === 0) return derTlv(TAG_BIT_STRING, Buffer.from([0]));
  while (!(byte & (1 << unused))) unused++;
  return derTlv(TAG_BIT_STRING, Buffer.from([unused, byte]));
}

/** NegTokenResp (RFC 4178 4.2.2): [1] SEQUENCE { negState, supportedMech, responseToken, mechListMIC }. */
export function encodeNegTokenResp(t: NegTokenResp): Buffer {
  const fields: Buffer[] = [];
  if (t.negState !== undefined) fields.push(derTlv(ctx(0), derTlv(TAG_ENUMERATED, Buffer.from([t.negState]))));
  if (t.supportedMech !== undefined) fields.push(derTlv(ctx(1), derTlv(TAG_OID, encodeOidContent(t.supportedMech))));
  if (t.responseToken !== undefined) fields.push(derTlv(ctx(2), derTlv(TAG_OCTET_STRING, t.responseToken)));
  if (t.mechListMIC !== undefined) fields.push(derTlv(ctx(3), derTlv(TAG_OCTET_STRING, t.mechListMIC)));
  return derTlv(ctx(1), derTlv(TAG_SEQUENCE, ...fields));
}
