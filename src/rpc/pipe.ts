// One open of a named pipe on IPC$ that speaks connection-oriented DCE/RPC (ncacn_np, MS-RPCE 2.1.1.2).
// The SMB layer feeds it WRITE payloads and drains READ / FSCTL_PIPE_TRANSCEIVE output; each open is
// one association (C706 12.1). Synchronous and bounded: unprocessed input, reassembled request stubs
// and queued output each stay within maxBufferedBytes (output may exceed it by one response).
//
// Behaviour follows C706 12.6 and MS-RPCE 3.3.1.5, and where those leave a choice, what Samba's
// dcesrv_core.c does (one bind per association, no concurrent multiplexing, fault-and-stop on
// protocol errors, the bind-time feature negotiation answer).

import { AssertionFailed, assert } from '../base/assert.js';
import { MalformedError, TesseraError } from '../base/errors.js';
import {
  BIND_NAK_REASON,
  BIND_TIME_FEATURE,
  CONT_RESULT,
  FAULT,
  NULL_SYNTAX,
  PFC,
  PROVIDER_REASON,
  PTYPE,
  bindTimeFeatures,
  decodeBind,
  decodeCommonHeader,
  decodeRequest,
  encodeBindAck,
  encodeBindNak,
  encodeFault,
  encodeResponseFragments,
  pduLength,
  type BindPdu,
  type ContextResult,
  type SyntaxId,
} from '../protocol/dcerpc.js';
import { NDR20_SYNTAX_UUID, NDR20_SYNTAX_VERSION } from '../protocol/ndr.js';
import { RpcFault, type RpcCaller, type RpcService } from './service.js';

export { RpcFault, type RpcCaller, type RpcCallContext, type RpcService } from './service.js';

/** Largest fragment we send or accept to negotiate (Samba's value; Windows uses 4280 or 5840). */
export const SERVER_MAX_FRAG = 5840;
/** Smallest negotiated fragment (Samba: the values seen from Windows 2012R2 start at 2048). */
export const NEGOTIATED_FRAG_MIN = 2048;
/** Presentation contexts per association. */
export const CONTEXTS_PER_ASSOCIATION_MAX = 64;

const NDR20: SyntaxId = { if_uuid: NDR20_SYNTAX_UUID, if_version: NDR20_SYNTAX_VERSION };

const ANONYMOUS: RpcCaller = { userName: '', domain: '', isAdmin: false };

let nextAssocGroupId = 0x0000_53f0;

export interface RpcPipeOptions {
  /** Bound on buffered input, reassembled request stubs and queued output (limits.pipeBufferedBytesMax). */
  maxBufferedBytes: number;
  /** The session behind the open; anonymous non-admin when absent. */
  caller?: RpcCaller;
  /** Name the client opened, for the BIND_ACK secondary address; defaults to the bound service's name. */
  pipeName?: string;
  /** Association group id answered in BIND_ACK; a process-wide counter when absent. */
  assocGroupId?: number;
}

interface Reassembly {
  callId: number;
  contextId: number;
  opnum: number;
  service: RpcService;
  parts: Buffer[];
  bytes: number;
}

export class RpcPipeEndpoint {
  private readonly services: readonly RpcService[];
  private readonly maxBufferedBytes: number;
  private readonly caller: RpcCaller;
  private readonly pipeName: string | undefined;
  private readonly assocGroupId: number;

  private input: Buffer = Buffer.alloc(0);
  private readonly output: Buffer[] = [];
  private headOffset = 0;
  private outputBytes = 0;

  private bound = false;
  private broken = false;
  private readonly contexts = new Map<number, RpcService>();
  private maxXmitFrag = SERVER_MAX_FRAG;
  private reassembly: Reassembly | undefined;

  constructor(services: RpcService[], opts: RpcPipeOptions) {
    assert(opts.maxBufferedBytes >= 65_536, 'pipe: maxBufferedBytes holds at least one maximal fragment');
    this.services = [...services];
    this.maxBufferedBytes = opts.maxBufferedBytes;
    this.caller = opts.caller ?? ANONYMOUS;
    this.pipeName = opts.pipeName;
    this.assocGroupId = opts.assocGroupId ?? nextAssocGroupId++;
  }

  /** True once a protocol error ended the association: the queued FAULT/BIND_NAK is still readable. */
  get failed(): boolean {
    return this.broken;
  }

  /** Bytes queued for READ. */
  get pendingOutputBytes(): number {
    return this.outputBytes;
  }

  /**
   * SMB2 WRITE on the pipe. Any number of PDUs, or part of one, per call. Throws MalformedError when
   * the association already failed, and TesseraError('TESSERA_LIMIT_EXCEEDED') when the input would
   * exceed maxBufferedBytes (the client is writing without reading).
   */
  write(data: Buffer): void {
    if (this.broken) throw new MalformedError('dcerpc: association failed after a protocol error');
    if (this.input.length + data.length > this.maxBufferedBytes) {
      throw new TesseraError('TESSERA_LIMIT_EXCEEDED', `pipe: more than ${this.maxBufferedBytes} bytes unprocessed`);
    }
    if (data.length === 0) return;
    // Copy: the caller may reuse its buffer after write returns, and partial PDUs stay here.
    this.input = this.input.length === 0 ? Buffer.from(data) : Buffer.concat([this.input, data]);
    this.pump();
  }

  /**
   * SMB2 READ: the next bytes of the next queued PDU, at most maxBytes and never more than one PDU
   * (named pipes for RPC are message mode). undefined when nothing is pending. Use readMessage to
   * learn whether the PDU was cut short (STATUS_BUFFER_OVERFLOW).
   */
  read(maxBytes: number): Buffer | undefined {
    return this.readMessage(maxBytes)?.output;
  }

  /** Like read; `more` is true when the rest of this PDU is still queued (STATUS_BUFFER_OVERFLOW). */
  readMessage(maxBytes: number): { output: Buffer; more: boolean } | undefined {
    assert(maxBytes > 0, 'pipe: read of at least one byte');
    const head = this.output[0];
    if (head === undefined) return undefined;
    const n = Math.min(maxBytes, head.length - this.headOffset);
    const output = head.subarray(this.headOffset, this.headOffset + n);
    this.headOffset += n;
    this.outputBytes -= n;
    const more = this.headOffset < head.length;
    if (!more) {
      this.output.shift();
      this.headOffset = 0;
    }
    this.pump(); // output room may have been made for input held back
    return { output, more };
  }

  /**
   * FSCTL_PIPE_TRANSCEIVE: write input, then read one PDU of at most maxOutput bytes. more = the PDU
   * was truncated (STATUS_BUFFER_OVERFLOW); the rest is readable with read(). An empty output means
   * the input produced no PDU (a non-final request fragment, an orphaned call).
   */
  transceive(input: Buffer, maxOutput: number): { output: Buffer; more: boolean } {
    this.write(input);
    return this.readMessage(maxOutput) ?? { output: Buffer.alloc(0), more: false };
  }

  // -------------------------------------------------------------------------------------------

  private pump(): void {
    while (!this.broken && this.outputBytes < this.maxBufferedBytes) {
      let length: number | undefined;
      try {
        length = pduLength(this.input);
      } catch (e) {
        if (!(e instanceof MalformedError)) throw e;
        // Unframeable stream: no call to answer properly; fault call 0 and stop (C706 12.6.3.1).
        this.fail(encodeFault({ call_id: 0, p_cont_id: 0, status: FAULT.nca_proto_error }));
        return;
      }
      if (length === undefined || this.input.length < length) return;
      const pdu = this.input.subarray(0, length);
      this.input = this.input.subarray(length);
      this.handle(pdu);
    }
  }

  private emit(pdu: Buffer): void {
    this.output.push(pdu);
    this.outputBytes += pdu.length;
  }

  private fail(pdu: Buffer): void {
    this.emit(pdu);
    this.broken = true;
    this.reassembly = undefined;
    this.input = Buffer.alloc(0);
  }

  private failFault(callId: number, status: number = FAULT.nca_proto_error, contextId = 0): void {
    this.fail(encodeFault({ call_id: callId, p_cont_id: contextId, status, did_not_execute: true }));
  }

  private handle(pdu: Buffer): void {
    const callId = pdu.readUInt32LE(12); // frag_length >= 16 was checked by pduLength
    let ptype: number;
    try {
      ptype = decodeCommonHeader(pdu).PTYPE;
    } catch (e) {
      if (!(e instanceof MalformedError)) throw e;
      this.failFault(callId);
      return;
    }
    switch (ptype) {
      case PTYPE.BIND:
        this.onBind(pdu, callId);
        return;
      case PTYPE.ALTER_CONTEXT:
        this.onAlterContext(pdu, callId);
        return;
      case PTYPE.REQUEST:
        this.onRequest(pdu, callId);
        return;
      case PTYPE.ORPHANED:
        // MS-RPCE 3.3.1.5.10: the client abandoned the call; drop its fragments and stay connected.
        if (this.reassembly?.callId === callId) this.reassembly = undefined;
        return;
      case PTYPE.CO_CANCEL:
        // Calls run to completion synchronously: there is never a call to cancel (C706 12.4.1).
        return;
      default:
        // AUTH3 without a security context, or a PDU only a server sends.
        this.failFault(callId);
    }
  }

  private onBind(pdu: Buffer, callId: number): void {
    // C706 12.6.4.3: one bind per association; Samba faults a second one and disconnects.
    if (this.bound) return this.failFault(callId);
    let bind: BindPdu;
    try {
      bind = decodeBind(pdu);
    } catch (e) {
      if (!(e instanceof MalformedError)) throw e;
      return this.fail(encodeBindNak(callId, BIND_NAK_REASON.protocol_version_not_supported));
    }
    // Pipes on IPC$ are protected by the SMB session; we offer no RPC-level security provider.
    if (bind.auth_verifier !== undefined) {
      return this.fail(encodeBindNak(callId, BIND_NAK_REASON.authentication_type_not_recognized));
    }
    if (bind.p_context_elem.length === 0) {
      return this.fail(encodeBindNak(callId, BIND_NAK_REASON.protocol_version_not_supported));
    }
    if (bind.p_context_elem.some((c) => c.transfer_syntaxes.length === 0)) {
      return this.fail(encodeBindNak(callId, BIND_NAK_REASON.reason_not_specified));
    }
    const results = this.negotiate(bind, true);
    if (results === undefined) return this.fail(encodeBindNak(callId, BIND_NAK_REASON.reason_not_specified));

    // Both directions use one size, the smaller of what the client offers, within our bounds
    // (C706 12.6.3.7; Samba: at least 2048, truncated to a multiple of 8).
    const offered = Math.min(bind.max_xmit_frag, bind.max_recv_frag);
    this.maxXmitFrag = Math.min(Math.max(NEGOTIATED_FRAG_MIN, offered), SERVER_MAX_FRAG) & 0xfff8;
    this.bound = true;

    // ncacn_np: the secondary address is the pipe's path, e.g. \PIPE\srvsvc (Windows; Samba sends \pipe\srvsvc).
    const accepted = bind.p_context_elem.find((_, i) => results[i]!.result === CONT_RESULT.acceptance);
    const name = this.pipeName ?? (accepted ? this.contexts.get(accepted.p_cont_id)!.name : this.services[0]?.name);
    this.emit(
      encodeBindAck({
        call_id: callId,
        max_xmit_frag: this.maxXmitFrag,
        max_recv_frag: this.maxXmitFrag,
        assoc_group_id: this.assocGroupId,
        sec_addr: name === undefined ? '' : `\\PIPE\\${name}`,
        p_result_list: results,
      }),
    );
  }

  private onAlterContext(pdu: Buffer, callId: number): void {
    if (!this.bound) return this.failFault(callId);
    let alter: BindPdu;
    try {
      alter = decodeBind(pdu);
    } catch (e) {
      if (!(e instanceof MalformedError)) throw e;
      return this.failFault(callId);
    }
    if (alter.auth_verifier !== undefined) return this.failFault(callId, FAULT.access_denied);
    if (alter.p_context_elem.length === 0 || alter.p_context_elem.some((c) => c.transfer_syntaxes.length === 0)) {
      return this.failFault(callId);
    }
    const results = this.negotiate(alter, false);
    if (results === undefined) return this.failFault(callId);
    this.emit(
      encodeBindAck({
        PTYPE: PTYPE.ALTER_CONTEXT_RESP,
        call_id: callId,
        max_xmit_frag: this.maxXmitFrag,
        max_recv_frag: this.maxXmitFrag,
        assoc_group_id: this.assocGroupId,
        sec_addr: '',
        p_result_list: results,
      }),
    );
  }

  /** Per-context results (C706 12.6.4.4); undefined on a protocol error. */
  private negotiate(bind: BindPdu, isBind: boolean): ContextResult[] | undefined {
    const results: ContextResult[] = [];
    let featuresSeen = false;
    for (const c of bind.p_context_elem) {
      // MS-RPCE 3.3.1.5.3: a context whose (first) transfer syntax is 6cb71c2c-9812-4540-xxxx v1.0
      // asks for bind-time features; answer negotiate_ack with the supported bits in `reason` and a
      // zero transfer syntax. We support KeepConnectionOnOrphan (ORPHANED PDUs never end the
      // association) but not security context multiplexing (no RPC-level auth at all).
      const features = isBind ? bindTimeFeatures(c.transfer_syntaxes[0]!) : undefined;
      if (features !== undefined) {
        if (featuresSeen) return undefined; // at most one such element (MS-RPCE 3.3.1.5.3)
        featuresSeen = true;
        results.push({
          result: CONT_RESULT.negotiate_ack,
          reason: features & BIND_TIME_FEATURE.KeepConnectionOnOrphanSupported,
          transfer_syntax: NULL_SYNTAX,
        });
        continue;
      }
      const service = this.findService(c.abstract_syntax);
      if (service === undefined) {
        results.push(rejection(PROVIDER_REASON.abstract_syntax_not_supported));
        continue;
      }
      // NDR 2.0 only: NDR64 and anything else is refused, the client then uses NDR 2.0.
      if (!c.transfer_syntaxes.some((t) => t.if_uuid === NDR20.if_uuid && t.if_version === NDR20.if_version)) {
        results.push(rejection(PROVIDER_REASON.proposed_transfer_syntaxes_not_supported));
        continue;
      }
      const existing = this.contexts.get(c.p_cont_id);
      if (existing !== undefined && existing !== service) return undefined; // redefining a context id
      if (existing === undefined && this.contexts.size >= CONTEXTS_PER_ASSOCIATION_MAX) {
        results.push(rejection(PROVIDER_REASON.local_limit_exceeded));
        continue;
      }
      this.contexts.set(c.p_cont_id, service);
      results.push({ result: CONT_RESULT.acceptance, reason: PROVIDER_REASON.reason_not_specified, transfer_syntax: NDR20 });
    }
    return results;
  }

  /** C706 6.2.1 (version compatibility): same major version, client minor not above ours. */
  private findService(s: SyntaxId): RpcService | undefined {
    const major = s.if_version & 0xffff;
    const minor = s.if_version >>> 16;
    return this.services.find(
      (svc) => svc.uuid.toLowerCase() === s.if_uuid && (svc.version & 0xffff) === major && minor <= svc.version >>> 16,
    );
  }

  private onRequest(pdu: Buffer, callId: number): void {
    if (!this.bound) return this.failFault(callId);
    let req: ReturnType<typeof decodeRequest>;
    try {
      req = decodeRequest(pdu);
    } catch (e) {
      if (!(e instanceof MalformedError)) throw e;
      return this.failFault(callId);
    }
    if (req.auth_verifier !== undefined) return this.failFault(callId, FAULT.access_denied, req.p_cont_id);
    const flags = req.header.pfc_flags;

    if (flags & PFC.FIRST_FRAG) {
      // No PFC_CONC_MPX: a new call while one is being reassembled is a protocol error, faulted on
      // the call in progress (Samba dcesrv_process_ncacn_packet).
      if (this.reassembly !== undefined) return this.failFault(this.reassembly.callId, FAULT.nca_proto_error, this.reassembly.contextId);
      const service = this.contexts.get(req.p_cont_id);
      if (service === undefined) {
        // C706 12.6.4.9: unknown presentation context; the association survives.
        this.emit(encodeFault({ call_id: callId, p_cont_id: req.p_cont_id, status: FAULT.nca_s_unk_if, did_not_execute: true }));
        return;
      }
      if (flags & PFC.LAST_FRAG) return this.dispatch(service, callId, req.p_cont_id, req.opnum, req.stub);
      this.reassembly = {
        callId,
        contextId: req.p_cont_id,
        opnum: req.opnum,
        service,
        parts: [req.stub],
        bytes: req.stub.length,
      };
      return;
    }

    // A middle or last fragment: it must continue the call in progress (C706 12.6.3.7).
    const r = this.reassembly;
    if (r === undefined || r.callId !== callId) return this.failFault(callId, FAULT.nca_proto_error, req.p_cont_id);
    r.bytes += req.stub.length;
    if (r.bytes > this.maxBufferedBytes) return this.failFault(callId, FAULT.nca_proto_error, r.contextId);
    r.parts.push(req.stub);
    if (flags & PFC.LAST_FRAG) {
      this.reassembly = undefined;
      this.dispatch(r.service, r.callId, r.contextId, r.opnum, Buffer.concat(r.parts, r.bytes));
    }
  }

  private dispatch(service: RpcService, callId: number, contextId: number, opnum: number, stub: Buffer): void {
    let response: Buffer;
    try {
      response = service.call(opnum, stub, { callId, contextId, opnum, caller: this.caller });
    } catch (e) {
      if (e instanceof AssertionFailed) throw e;
      let status: number = FAULT.other;
      let didNotExecute = false;
      if (e instanceof RpcFault) {
        status = e.status;
        didNotExecute = e.didNotExecute;
      } else if (e instanceof MalformedError) {
        status = FAULT.rpc_x_bad_stub_data;
        didNotExecute = true;
      }
      this.emit(encodeFault({ call_id: callId, p_cont_id: contextId, status, did_not_execute: didNotExecute }));
      return;
    }
    for (const fragment of encodeResponseFragments({ call_id: callId, p_cont_id: contextId, stub: response, max_xmit_frag: this.maxXmitFrag })) {
      this.emit(fragment);
    }
  }
}

function rejection(reason: number): ContextResult {
  return { result: CONT_RESULT.provider_rejection, reason, transfer_syntax: NULL_SYNTAX };
}

/** Which pipe names can be opened on IPC$, and the services behind each. */
export interface PipeNameTable {
  /** Canonical names (lowercase, without \PIPE\). */
  readonly names: readonly string[];
  /**
   * The pipe a CREATE name refers to: case-insensitive, with or without a leading \PIPE\ or \
   * (MS-SMB2 3.3.5.9: the name on IPC$ is the pipe name). undefined when no service serves it.
   */
  resolve(requested: string): { pipeName: string; services: RpcService[] } | undefined;
}

export function canonicalPipeName(requested: string): string {
  let name = requested.toLowerCase();
  if (name.startsWith('\\')) name = name.slice(1);
  if (name.startsWith('pipe\\')) name = name.slice(5);
  return name;
}

export function openablePipeNames(services: readonly RpcService[]): PipeNameTable {
  const byName = new Map<string, RpcService[]>();
  for (const s of services) {
    const key = canonicalPipeName(s.name);
    assert(key.length > 0 && !key.includes('\\'), `pipe name ${s.name}`);
    byName.set(key, [...(byName.get(key) ?? []), s]);
  }
  return {
    names: [...byName.keys()],
    resolve(requested: string) {
      const key = canonicalPipeName(requested);
      const found = byName.get(key);
      return found === undefined ? undefined : { pipeName: key, services: [...found] };
    },
  };
}
