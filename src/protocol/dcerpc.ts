// Connection-oriented DCE/RPC PDUs (C706 chapter 12.6, MS-RPCE 2.2.2): pure codecs, little-endian
// data representation only (packed_drep 0x10 0x00 0x00 0x00: little-endian integers, ASCII, IEEE
// floats), which every Windows and Samba client sends. Field names follow C706 12.6.
//
// Decoders take a Buffer holding exactly one PDU (frag_length bytes, see pduLength()) and return
// views into it; they throw only MalformedError.

import { MalformedError } from '../base/errors.js';
import { assert } from '../base/assert.js';
import { uuidFromBytes, uuidToBytes } from './ndr.js';

/** PTYPE values (C706 12.6.3.1). */
export const PTYPE = {
  REQUEST: 0,
  PING: 1,
  RESPONSE: 2,
  FAULT: 3,
  WORKING: 4,
  NOCALL: 5,
  REJECT: 6,
  ACK: 7,
  CL_CANCEL: 8,
  FACK: 9,
  CANCEL_ACK: 10,
  BIND: 11,
  BIND_ACK: 12,
  BIND_NAK: 13,
  ALTER_CONTEXT: 14,
  ALTER_CONTEXT_RESP: 15,
  AUTH3: 16,
  SHUTDOWN: 17,
  CO_CANCEL: 18,
  ORPHANED: 19,
} as const;

/** pfc_flags (C706 12.6.3.1, MS-RPCE 2.2.2.3). */
export const PFC = {
  FIRST_FRAG: 0x01,
  LAST_FRAG: 0x02,
  /** PFC_PENDING_CANCEL on requests; PFC_SUPPORT_HEADER_SIGN on bind/alter (MS-RPCE 2.2.2.3). */
  PENDING_CANCEL: 0x04,
  SUPPORT_HEADER_SIGN: 0x04,
  RESERVED_1: 0x08,
  CONC_MPX: 0x10,
  DID_NOT_EXECUTE: 0x20,
  MAYBE: 0x40,
  OBJECT_UUID: 0x80,
} as const;

/** Fault status codes (C706 appendix E, MS-RPCE 2.2.2.11 / MS-ERREF). */
export const FAULT = {
  /** Operation number out of range for the interface. */
  nca_s_op_rng_error: 0x1c010002,
  /** The presentation context names no interface. */
  nca_s_unk_if: 0x1c010003,
  /** Protocol error: the association cannot continue. */
  nca_proto_error: 0x1c01000b,
  /** The stub data could not be unmarshalled (RPC_X_BAD_STUB_DATA, what Windows and Samba send). */
  rpc_x_bad_stub_data: 0x000006f7,
  /** Access denied (ERROR_ACCESS_DENIED). */
  access_denied: 0x00000005,
  /** Any other failure of the server (Samba's DCERPC_FAULT_OTHER). */
  other: 0x00000001,
} as const;

/** p_cont_def_result_t (C706 12.6.3.1, MS-RPCE 2.2.2.4 adds negotiate_ack). */
export const CONT_RESULT = {
  acceptance: 0,
  user_rejection: 1,
  provider_rejection: 2,
  negotiate_ack: 3,
} as const;

/** p_provider_reason_t (C706 12.6.3.1). */
export const PROVIDER_REASON = {
  reason_not_specified: 0,
  abstract_syntax_not_supported: 1,
  proposed_transfer_syntaxes_not_supported: 2,
  local_limit_exceeded: 3,
} as const;

/** p_reject_reason_t for BIND_NAK (C706 12.6.3.1, MS-RPCE 2.2.2.5). */
export const BIND_NAK_REASON = {
  reason_not_specified: 0,
  temporary_congestion: 1,
  local_limit_exceeded: 2,
  called_paddr_unknown: 3,
  protocol_version_not_supported: 4,
  default_context_not_supported: 5,
  user_data_not_readable: 6,
  no_psap_available: 7,
  authentication_type_not_recognized: 8,
  invalid_checksum: 9,
} as const;

/** BindTimeFeatureNegotiationBitmask bits (MS-RPCE 2.2.2.14). */
export const BIND_TIME_FEATURE = {
  SecurityContextMultiplexingSupported: 0x01,
  KeepConnectionOnOrphanSupported: 0x02,
} as const;

/** First 8 bytes (text prefix 6CB71C2C-9812-4540) of the bind-time feature negotiation syntax. */
export const BIND_TIME_FEATURE_UUID_PREFIX = '6cb71c2c-9812-4540';

export const COMMON_HEADER_SIZE = 16;
/** REQUEST header: common header + alloc_hint, p_cont_id, opnum (C706 12.6.4.9). */
export const REQUEST_HEADER_SIZE = 24;
/** RESPONSE header: common header + alloc_hint, p_cont_id, cancel_count, reserved (C706 12.6.4.10). */
export const RESPONSE_HEADER_SIZE = 24;
/** FAULT: RESPONSE header + status + reserved (C706 12.6.4.7). */
export const FAULT_PDU_SIZE = 32;
/** sec_trailer before auth_value (MS-RPCE 2.2.2.11). */
export const SEC_TRAILER_SIZE = 8;
/** Smallest fragment a receiver must accept (C706 12.6.3.1 MustRecvFragSize). */
export const MUST_RECV_FRAG_SIZE = 1432;

const DREP_LITTLE_ENDIAN_ASCII = 0x10;

export interface CommonHeader {
  rpc_vers: number;
  rpc_vers_minor: number;
  PTYPE: number;
  pfc_flags: number;
  packed_drep: Buffer;
  frag_length: number;
  auth_length: number;
  call_id: number;
}

/** p_syntax_id_t: interface UUID (canonical lowercase text) and version (major | minor << 16). */
export interface SyntaxId {
  if_uuid: string;
  if_version: number;
}

export interface ContextElement {
  p_cont_id: number;
  abstract_syntax: SyntaxId;
  transfer_syntaxes: SyntaxId[];
}

/** BIND and ALTER_CONTEXT (C706 12.6.4.3, 12.6.4.1). */
export interface BindPdu {
  header: CommonHeader;
  max_xmit_frag: number;
  max_recv_frag: number;
  assoc_group_id: number;
  p_context_elem: ContextElement[];
  /** sec_trailer + auth_value, present when auth_length != 0. */
  auth_verifier: Buffer | undefined;
}

export interface ContextResult {
  result: number;
  reason: number;
  transfer_syntax: SyntaxId;
}

/** BIND_ACK and ALTER_CONTEXT_RESP (C706 12.6.4.4, 12.6.4.2). */
export interface BindAckPdu {
  header: CommonHeader;
  max_xmit_frag: number;
  max_recv_frag: number;
  assoc_group_id: number;
  /** port_spec without its terminating NUL ("" when sec_addr.length is 0). */
  sec_addr: string;
  p_result_list: ContextResult[];
}

export interface BindNakPdu {
  header: CommonHeader;
  provider_reject_reason: number;
  versions: Array<{ rpc_vers: number; rpc_vers_minor: number }>;
}

/** REQUEST (C706 12.6.4.9). `stub` excludes auth padding and verifier. */
export interface RequestPdu {
  header: CommonHeader;
  alloc_hint: number;
  p_cont_id: number;
  opnum: number;
  object: string | undefined;
  stub: Buffer;
  auth_verifier: Buffer | undefined;
}

export interface ResponsePdu {
  header: CommonHeader;
  alloc_hint: number;
  p_cont_id: number;
  cancel_count: number;
  stub: Buffer;
}

export interface FaultPdu {
  header: CommonHeader;
  alloc_hint: number;
  p_cont_id: number;
  cancel_count: number;
  status: number;
}

export const NULL_SYNTAX: SyntaxId = { if_uuid: '00000000-0000-0000-0000-000000000000', if_version: 0 };

// ---------------------------------------------------------------------------------------------
// Framing

/**
 * frag_length of the PDU at the start of buf, or undefined if fewer than 10 bytes are there yet.
 * Throws MalformedError when the prefix cannot start a connection-oriented PDU at all (wrong
 * version, big-endian or non-ASCII data representation, frag_length shorter than a header): the
 * stream is then unframeable.
 */
export function pduLength(buf: Buffer): number | undefined {
  if (buf.length >= 1 && buf[0] !== 5) throw new MalformedError(`dcerpc: rpc_vers ${buf[0]} is not 5`);
  if (buf.length >= 2 && buf[1] !== 0 && buf[1] !== 1) throw new MalformedError(`dcerpc: rpc_vers_minor ${buf[1]}`);
  if (buf.length >= 5 && buf[4] !== DREP_LITTLE_ENDIAN_ASCII) {
    throw new MalformedError(`dcerpc: unsupported data representation 0x${buf[4]!.toString(16)}`);
  }
  if (buf.length < 10) return undefined;
  const n = buf.readUInt16LE(8);
  if (n < COMMON_HEADER_SIZE) throw new MalformedError(`dcerpc: frag_length ${n} shorter than a header`);
  return n;
}

/** Decodes and validates the common header (C706 12.6.3.1) of a buffer holding exactly one PDU. */
export function decodeCommonHeader(pdu: Buffer): CommonHeader {
  if (pdu.length < COMMON_HEADER_SIZE) throw new MalformedError('dcerpc: PDU shorter than its header');
  const n = pduLength(pdu);
  if (n !== pdu.length) throw new MalformedError(`dcerpc: frag_length ${n} but ${pdu.length} bytes`);
  const auth_length = pdu.readUInt16LE(10);
  if (auth_length !== 0 && COMMON_HEADER_SIZE + SEC_TRAILER_SIZE + auth_length > n) {
    throw new MalformedError('dcerpc: auth_length beyond the fragment');
  }
  return {
    rpc_vers: pdu[0]!,
    rpc_vers_minor: pdu[1]!,
    PTYPE: pdu[2]!,
    pfc_flags: pdu[3]!,
    packed_drep: pdu.subarray(4, 8),
    frag_length: n,
    auth_length,
    call_id: pdu.readUInt32LE(12),
  };
}

/** End of the body (start of the auth padding) and the verifier view, per MS-RPCE 2.2.2.11. */
function splitAuth(pdu: Buffer, header: CommonHeader, bodyStart: number): { end: number; verifier: Buffer | undefined } {
  if (header.auth_length === 0) return { end: pdu.length, verifier: undefined };
  const trailer = pdu.length - header.auth_length - SEC_TRAILER_SIZE;
  if (trailer < bodyStart) throw new MalformedError('dcerpc: auth verifier overlaps the body');
  const authPad = pdu[trailer + 2]!;
  if (trailer - authPad < bodyStart) throw new MalformedError('dcerpc: auth_pad_length beyond the body');
  return { end: trailer - authPad, verifier: pdu.subarray(trailer) };
}

function writeCommonHeader(buf: Buffer, ptype: number, pfc_flags: number, call_id: number, auth_length = 0): void {
  buf[0] = 5;
  buf[1] = 0;
  buf[2] = ptype;
  buf[3] = pfc_flags;
  buf[4] = DREP_LITTLE_ENDIAN_ASCII;
  buf[5] = 0;
  buf[6] = 0;
  buf[7] = 0;
  buf.writeUInt16LE(buf.length, 8);
  buf.writeUInt16LE(auth_length, 10);
  buf.writeUInt32LE(call_id >>> 0, 12);
}

function readSyntax(pdu: Buffer, at: number): SyntaxId {
  return { if_uuid: uuidFromBytes(pdu.subarray(at, at + 16)), if_version: pdu.readUInt32LE(at + 16) };
}

function writeSyntax(buf: Buffer, at: number, s: SyntaxId): void {
  uuidToBytes(s.if_uuid).copy(buf, at);
  buf.writeUInt32LE(s.if_version >>> 0, at + 16);
}

export function syntaxEquals(a: SyntaxId, b: SyntaxId): boolean {
  return a.if_uuid === b.if_uuid && a.if_version === b.if_version;
}

/** The bitmask if `s` is a bind-time feature negotiation syntax (MS-RPCE 3.3.1.5.3), else undefined. */
export function bindTimeFeatures(s: SyntaxId): number | undefined {
  if (!s.if_uuid.startsWith(BIND_TIME_FEATURE_UUID_PREFIX) || s.if_version !== 1) return undefined;
  // The eight octets after the prefix are the bitmask; its first octet carries the defined bits.
  return Number.parseInt(s.if_uuid.slice(19, 21), 16);
}

// ---------------------------------------------------------------------------------------------
// BIND / ALTER_CONTEXT

const BIND_FIXED = COMMON_HEADER_SIZE + 8 + 4; // max frags, assoc group, n_context_elem + reserved
const CONTEXT_ELEMENT_FIXED = 4 + 20; // p_cont_id, n_transfer_syn, reserved, abstract_syntax
const SYNTAX_SIZE = 20;

export function decodeBind(pdu: Buffer): BindPdu {
  const header = decodeCommonHeader(pdu);
  if (header.PTYPE !== PTYPE.BIND && header.PTYPE !== PTYPE.ALTER_CONTEXT) {
    throw new MalformedError(`dcerpc: PTYPE ${header.PTYPE} is not bind/alter_context`);
  }
  const { end, verifier } = splitAuth(pdu, header, BIND_FIXED);
  if (end < BIND_FIXED) throw new MalformedError('dcerpc: bind shorter than its fixed part');
  const count = pdu[24]!;
  const p_context_elem: ContextElement[] = [];
  let at = BIND_FIXED;
  for (let i = 0; i < count; i++) {
    if (at + CONTEXT_ELEMENT_FIXED > end) throw new MalformedError('dcerpc: p_cont_elem beyond the PDU');
    const n = pdu[at + 2]!;
    if (at + CONTEXT_ELEMENT_FIXED + n * SYNTAX_SIZE > end) throw new MalformedError('dcerpc: transfer syntaxes beyond the PDU');
    const transfer_syntaxes: SyntaxId[] = [];
    for (let k = 0; k < n; k++) transfer_syntaxes.push(readSyntax(pdu, at + CONTEXT_ELEMENT_FIXED + k * SYNTAX_SIZE));
    p_context_elem.push({ p_cont_id: pdu.readUInt16LE(at), abstract_syntax: readSyntax(pdu, at + 4), transfer_syntaxes });
    at += CONTEXT_ELEMENT_FIXED + n * SYNTAX_SIZE;
  }
  return {
    header,
    max_xmit_frag: pdu.readUInt16LE(16),
    max_recv_frag: pdu.readUInt16LE(18),
    assoc_group_id: pdu.readUInt32LE(20),
    p_context_elem,
    auth_verifier: verifier,
  };
}

/** Encodes a BIND or ALTER_CONTEXT without authentication (the client side; used by tests and tools). */
export function encodeBind(p: {
  PTYPE?: number;
  call_id: number;
  pfc_flags?: number;
  max_xmit_frag: number;
  max_recv_frag: number;
  assoc_group_id: number;
  p_context_elem: ContextElement[];
}): Buffer {
  let size = BIND_FIXED;
  for (const c of p.p_context_elem) size += CONTEXT_ELEMENT_FIXED + c.transfer_syntaxes.length * SYNTAX_SIZE;
  const buf = Buffer.alloc(size);
  writeCommonHeader(buf, p.PTYPE ?? PTYPE.BIND, p.pfc_flags ?? PFC.FIRST_FRAG | PFC.LAST_FRAG, p.call_id);
  buf.writeUInt16LE(p.max_xmit_frag, 16);
  buf.writeUInt16LE(p.max_recv_frag, 18);
  buf.writeUInt32LE(p.assoc_group_id >>> 0, 20);
  buf[24] = p.p_context_elem.length;
  let at = BIND_FIXED;
  for (const c of p.p_context_elem) {
    buf.writeUInt16LE(c.p_cont_id, at);
    buf[at + 2] = c.transfer_syntaxes.length;
    writeSyntax(buf, at + 4, c.abstract_syntax);
    c.transfer_syntaxes.forEach((s, k) => writeSyntax(buf, at + CONTEXT_ELEMENT_FIXED + k * SYNTAX_SIZE, s));
    at += CONTEXT_ELEMENT_FIXED + c.transfer_syntaxes.length * SYNTAX_SIZE;
  }
  return buf;
}

// ---------------------------------------------------------------------------------------------
// BIND_ACK / ALTER_CONTEXT_RESP

/**
 * Encodes BIND_ACK (or ALTER_CONTEXT_RESP with PTYPE set). sec_addr is a port_spec_t: a u16 length
 * counting the terminating NUL, the ASCII text and the NUL, then padding to a 4-byte boundary
 * (C706 12.6.4.4). An empty sec_addr is sent with length 0, as Windows and Samba do in alter_resp.
 */
export function encodeBindAck(p: {
  PTYPE?: number;
  call_id: number;
  pfc_flags?: number;
  max_xmit_frag: number;
  max_recv_frag: number;
  assoc_group_id: number;
  sec_addr: string;
  p_result_list: ContextResult[];
}): Buffer {
  assert(/^[\x20-\x7e]*$/.test(p.sec_addr), 'sec_addr is printable ASCII');
  const addrLen = p.sec_addr.length === 0 ? 0 : p.sec_addr.length + 1;
  const afterAddr = COMMON_HEADER_SIZE + 8 + 2 + addrLen;
  const resultsAt = (afterAddr + 3) & ~3;
  const size = resultsAt + 4 + p.p_result_list.length * (4 + SYNTAX_SIZE);
  const buf = Buffer.alloc(size);
  writeCommonHeader(buf, p.PTYPE ?? PTYPE.BIND_ACK, p.pfc_flags ?? PFC.FIRST_FRAG | PFC.LAST_FRAG, p.call_id);
  buf.writeUInt16LE(p.max_xmit_frag, 16);
  buf.writeUInt16LE(p.max_recv_frag, 18);
  buf.writeUInt32LE(p.assoc_group_id >>> 0, 20);
  buf.writeUInt16LE(addrLen, 24);
  if (addrLen > 0) buf.write(p.sec_addr, 26, 'latin1');
  buf[resultsAt] = p.p_result_list.length;
  let at = resultsAt + 4;
  for (const r of p.p_result_list) {
    buf.writeUInt16LE(r.result, at);
    buf.writeUInt16LE(r.reason, at + 2);
    writeSyntax(buf, at + 4, r.transfer_syntax);
    at += 4 + SYNTAX_SIZE;
  }
  return buf;
}

export function decodeBindAck(pdu: Buffer): BindAckPdu {
  const header = decodeCommonHeader(pdu);
  if (header.PTYPE !== PTYPE.BIND_ACK && header.PTYPE !== PTYPE.ALTER_CONTEXT_RESP) {
    throw new MalformedError(`dcerpc: PTYPE ${header.PTYPE} is not bind_ack/alter_context_resp`);
  }
  const { end } = splitAuth(pdu, header, 26);
  if (end < 26) throw new MalformedError('dcerpc: bind_ack shorter than its fixed part');
  const addrLen = pdu.readUInt16LE(24);
  if (26 + addrLen > end) throw new MalformedError('dcerpc: sec_addr beyond the PDU');
  const addr = pdu.subarray(26, 26 + addrLen);
  const nul = addr.indexOf(0);
  const sec_addr = addr.toString('latin1', 0, nul < 0 ? addr.length : nul);
  const resultsAt = (26 + addrLen + 3) & ~3;
  if (resultsAt + 4 > end) throw new MalformedError('dcerpc: p_result_list beyond the PDU');
  const n = pdu[resultsAt]!;
  if (resultsAt + 4 + n * (4 + SYNTAX_SIZE) > end) throw new MalformedError('dcerpc: p_results beyond the PDU');
  const p_result_list: ContextResult[] = [];
  for (let i = 0, at = resultsAt + 4; i < n; i++, at += 4 + SYNTAX_SIZE) {
    p_result_list.push({ result: pdu.readUInt16LE(at), reason: pdu.readUInt16LE(at + 2), transfer_syntax: readSyntax(pdu, at + 4) });
  }
  return {
    header,
    max_xmit_frag: pdu.readUInt16LE(16),
    max_recv_frag: pdu.readUInt16LE(18),
    assoc_group_id: pdu.readUInt32LE(20),
    sec_addr,
    p_result_list,
  };
}

// ---------------------------------------------------------------------------------------------
// BIND_NAK

/** BIND_NAK (C706 12.6.4.5) listing protocol version 5.0, padded as Samba does to 24 bytes. */
export function encodeBindNak(call_id: number, provider_reject_reason: number): Buffer {
  const buf = Buffer.alloc(COMMON_HEADER_SIZE + 2 + 1 + 2 + 3);
  writeCommonHeader(buf, PTYPE.BIND_NAK, PFC.FIRST_FRAG | PFC.LAST_FRAG, call_id);
  buf.writeUInt16LE(provider_reject_reason, 16);
  buf[18] = 1; // n_protocols
  buf[19] = 5; // rpc_vers
  buf[20] = 0; // rpc_vers_minor
  return buf;
}

export function decodeBindNak(pdu: Buffer): BindNakPdu {
  const header = decodeCommonHeader(pdu);
  if (header.PTYPE !== PTYPE.BIND_NAK) throw new MalformedError(`dcerpc: PTYPE ${header.PTYPE} is not bind_nak`);
  if (pdu.length < 19) throw new MalformedError('dcerpc: bind_nak too short');
  const n = pdu[18]!;
  if (19 + 2 * n > pdu.length) throw new MalformedError('dcerpc: bind_nak versions beyond the PDU');
  const versions: BindNakPdu['versions'] = [];
  for (let i = 0; i < n; i++) versions.push({ rpc_vers: pdu[19 + 2 * i]!, rpc_vers_minor: pdu[20 + 2 * i]! });
  return { header, provider_reject_reason: pdu.readUInt16LE(16), versions };
}

// ---------------------------------------------------------------------------------------------
// REQUEST / RESPONSE / FAULT

export function decodeRequest(pdu: Buffer): RequestPdu {
  const header = decodeCommonHeader(pdu);
  if (header.PTYPE !== PTYPE.REQUEST) throw new MalformedError(`dcerpc: PTYPE ${header.PTYPE} is not request`);
  const hasObject = (header.pfc_flags & PFC.OBJECT_UUID) !== 0;
  const bodyStart = REQUEST_HEADER_SIZE + (hasObject ? 16 : 0);
  if (pdu.length < bodyStart) throw new MalformedError('dcerpc: request shorter than its header');
  const { end, verifier } = splitAuth(pdu, header, bodyStart);
  return {
    header,
    alloc_hint: pdu.readUInt32LE(16),
    p_cont_id: pdu.readUInt16LE(20),
    opnum: pdu.readUInt16LE(22),
    object: hasObject ? uuidFromBytes(pdu.subarray(24, 40)) : undefined,
    stub: pdu.subarray(bodyStart, end),
    auth_verifier: verifier,
  };
}

/** One REQUEST fragment without authentication (the client side; used by tests and tools). */
export function encodeRequest(p: {
  call_id: number;
  pfc_flags?: number;
  alloc_hint?: number;
  p_cont_id: number;
  opnum: number;
  stub: Buffer;
}): Buffer {
  const buf = Buffer.alloc(REQUEST_HEADER_SIZE + p.stub.length);
  writeCommonHeader(buf, PTYPE.REQUEST, p.pfc_flags ?? PFC.FIRST_FRAG | PFC.LAST_FRAG, p.call_id);
  buf.writeUInt32LE(p.alloc_hint ?? p.stub.length, 16);
  buf.writeUInt16LE(p.p_cont_id, 20);
  buf.writeUInt16LE(p.opnum, 22);
  p.stub.copy(buf, REQUEST_HEADER_SIZE);
  return buf;
}

/**
 * Splits a response stub into RESPONSE fragments no longer than max_xmit_frag (C706 12.6.3.7).
 * Each fragment's alloc_hint is the stub bytes remaining from it on, as Windows sends.
 */
export function encodeResponseFragments(p: {
  call_id: number;
  p_cont_id: number;
  stub: Buffer;
  max_xmit_frag: number;
}): Buffer[] {
  const chunk = p.max_xmit_frag - RESPONSE_HEADER_SIZE;
  assert(chunk >= 8, 'max_xmit_frag leaves room for stub data');
  const out: Buffer[] = [];
  let at = 0;
  do {
    const n = Math.min(chunk, p.stub.length - at);
    const flags = (at === 0 ? PFC.FIRST_FRAG : 0) | (at + n === p.stub.length ? PFC.LAST_FRAG : 0);
    const buf = Buffer.alloc(RESPONSE_HEADER_SIZE + n);
    writeCommonHeader(buf, PTYPE.RESPONSE, flags, p.call_id);
    buf.writeUInt32LE(p.stub.length - at, 16);
    buf.writeUInt16LE(p.p_cont_id, 20);
    p.stub.copy(buf, RESPONSE_HEADER_SIZE, at, at + n);
    out.push(buf);
    at += n;
  } while (at < p.stub.length);
  return out;
}

export function decodeResponse(pdu: Buffer): ResponsePdu {
  const header = decodeCommonHeader(pdu);
  if (header.PTYPE !== PTYPE.RESPONSE) throw new MalformedError(`dcerpc: PTYPE ${header.PTYPE} is not response`);
  if (pdu.length < RESPONSE_HEADER_SIZE) throw new MalformedError('dcerpc: response shorter than its header');
  const { end } = splitAuth(pdu, header, RESPONSE_HEADER_SIZE);
  return {
    header,
    alloc_hint: pdu.readUInt32LE(16),
    p_cont_id: pdu.readUInt16LE(20),
    cancel_count: pdu[22]!,
    stub: pdu.subarray(RESPONSE_HEADER_SIZE, end),
  };
}

/** FAULT (C706 12.6.4.7): status and four reserved bytes, no stub data. */
export function encodeFault(p: { call_id: number; p_cont_id: number; status: number; did_not_execute?: boolean }): Buffer {
  const buf = Buffer.alloc(FAULT_PDU_SIZE);
  const flags = PFC.FIRST_FRAG | PFC.LAST_FRAG | (p.did_not_execute ? PFC.DID_NOT_EXECUTE : 0);
  writeCommonHeader(buf, PTYPE.FAULT, flags, p.call_id);
  buf.writeUInt32LE(0, 16); // alloc_hint: no stub follows
  buf.writeUInt16LE(p.p_cont_id, 20);
  buf.writeUInt32LE(p.status >>> 0, 24);
  return buf;
}

export function decodeFault(pdu: Buffer): FaultPdu {
  const header = decodeCommonHeader(pdu);
  if (header.PTYPE !== PTYPE.FAULT) throw new MalformedError(`dcerpc: PTYPE ${header.PTYPE} is not fault`);
  if (pdu.length < 28) throw new MalformedError('dcerpc: fault too short');
  return {
    header,
    alloc_hint: pdu.readUInt32LE(16),
    p_cont_id: pdu.readUInt16LE(20),
    cancel_count: pdu[22]!,
    status: pdu.readUInt32LE(24),
  };
}
