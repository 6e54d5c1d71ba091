// The contract between the DCE/RPC pipe endpoint and an interface implementation (srvsvc, ...).

/** Who is calling: the SMB session behind the pipe open. */
export interface RpcCaller {
  userName: string;
  domain: string;
  /** True for members of the server's administrators (MS-SRVS restricts some info levels to them). */
  isAdmin: boolean;
}

export interface RpcCallContext {
  callId: number;
  contextId: number;
  opnum: number;
  caller: RpcCaller;
}

/**
 * One RPC interface served over a named pipe. `call` gets the reassembled NDR request stub (a view
 * that is only valid during the call) and returns the NDR response stub. It throws:
 *  - RpcFault for a call that must be answered with a FAULT PDU (unknown opnum, ...);
 *  - MalformedError when the stub cannot be unmarshalled (answered with rpc_x_bad_stub_data).
 * Anything else is answered with a FAULT carrying FAULT.other; the association stays usable.
 */
export interface RpcService {
  /** Interface UUID, lowercase canonical text. */
  uuid: string;
  /** Interface version: major in the low 16 bits, minor in the high 16 bits (as in p_syntax_id_t). */
  version: number;
  /** Pipe name without the \PIPE\ prefix, e.g. 'srvsvc'. */
  name: string;
  call(opnum: number, stub: Buffer, ctx: RpcCallContext): Buffer;
}

/** Thrown by a service to answer a call with a FAULT PDU carrying `status` (codes in protocol/dcerpc.ts FAULT). */
export class RpcFault extends Error {
  constructor(
    readonly status: number,
    readonly didNotExecute = false,
  ) {
    super(`rpc fault 0x${status.toString(16).padStart(8, '0')}`);
    this.name = 'RpcFault';
  }
}
