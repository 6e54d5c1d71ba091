// SPNEGO acceptor (RFC 4178, MS-SPNG) driving one SESSION_SETUP authentication over NTLM.
//
// Flows handled by step():
//  - empty security buffer first: answer with the NegTokenInit2 hint (as the NEGOTIATE response has).
//  - NegTokenInit listing NTLMSSP first with an NTLM mechToken: answer the CHALLENGE at once.
//  - NegTokenInit whose first choice is another mech (Kerberos, NEGOEX) but that lists NTLMSSP, or
//    that carries no mechToken: select NTLMSSP with no responseToken (RFC 4178 3.2, 4.2.2). The
//    optimistic token is for the other mech and is dropped. negState is request-mic when we did not
//    pick the client's first choice (RFC 4178 4.2.2, 5; Samba does the same), accept-incomplete
//    otherwise. The client then sends the NTLM NEGOTIATE in a NegTokenResp.
//  - NegTokenResp with the AUTHENTICATE: verify; then the mechListMIC exchange (RFC 4178 5):
//    when the client sent a mechListMIC we verify it and answer accept-completed with ours, as Samba
//    and Windows do. When it did not, but one is needed (the AUTHENTICATE had an NTLM MIC, or we did
//    not pick its first choice), we send ours with accept-incomplete and wait for the client's.
//  - raw NTLMSSP messages without SPNEGO: NTLM runs bare and the answers are bare.
// Guest and anonymous logons have no NTLM session security (MS-NLMP 3.4), so no mechListMIC is
// checked or sent for them.
import { limits } from '../base/limits.js';
import { MalformedError } from '../base/errors.js';
import { ntlmMessageType, NtlmMessageType } from '../protocol/ntlm.js';
import {
  decodeSpnegoToken,
  encodeNegTokenInit2,
  encodeNegTokenResp,
  NegState,
  OID_NTLMSSP,
  type NegTokenInit,
  type NegTokenResp,
  type SpnegoToken,
} from '../protocol/spnego.js';
import { NtlmServer, type NtlmServerOptions, type NtlmSuccess } from './ntlm-server.js';

export type SpnegoFailureReason =
  | 'malformed'
  | 'invalid-ntlmv2-response'
  | 'unexpected-token'
  | 'no-common-mech'
  | 'mech-list-mic-mismatch'
  | 'mech-list-mic-missing'
  | 'bad-password'
  | 'no-such-user'
  | 'account-disabled'
  | 'ntlmv1-refused'
  | 'anonymous-refused'
  | 'expired-timestamp'
  | 'mic-mismatch';

export type SpnegoStep =
  | { status: 'continue'; token: Buffer }
  | { status: 'done'; token: Buffer; result: NtlmSuccess }
  | { status: 'failed'; token?: Buffer; reason: SpnegoFailureReason };

type State = 'start' | 'want-ntlm-negotiate' | 'want-ntlm-authenticate' | 'want-mech-list-mic' | 'finished';

const REJECT = (): Buffer => encodeNegTokenResp({ negState: NegState.reject });

export class SpnegoServer {
  private state: State = 'start';
  private raw = false;
  private readonly ntlm: NtlmServer;
  /** Copy of the client's MechTypeList DER (the mechListMIC input); the token buffer may be reused. */
  private mechTypesDer: Buffer | undefined;
  private ntlmWasFirstChoice = true;
  private pending: NtlmSuccess | undefined;

  constructor(opts: NtlmServerOptions) {
    this.ntlm = new NtlmServer(opts);
  }

  /** The NegTokenInit2 for the SMB2 NEGOTIATE response SecurityBuffer (MS-SPNG 3.2.5.2). */
  initialToken(): Buffer {
    return encodeNegTokenInit2([OID_NTLMSSP]);
  }

  /** The NTLM context (session key flags, mechListMIC helpers) for callers that need it. */
  get ntlmContext(): NtlmServer {
    return this.ntlm;
  }

  async step(token: Buffer): Promise<SpnegoStep> {
    if (this.state === 'finished') return { status: 'failed', reason: 'unexpected-token' };
    if (token.length > limits.securityBlobBytesMax) return this.failed('malformed');
    try {
      return await this.dispatch(token);
    } catch (e) {
      if (e instanceof MalformedError) return this.failed('malformed');
      throw e;
    }
  }

  private async dispatch(token: Buffer): Promise<SpnegoStep> {
    if (token.length === 0) {
      // An empty buffer is only meaningful before anything happened: the client asks for our hint.
      if (this.state === 'start') return { status: 'continue', token: this.initialToken() };
      return this.failed('unexpected-token');
    }
    const decoded = decodeSpnegoToken(token);
    if (decoded.kind === 'ntlmssp') return this.rawStep(decoded.token);
    if (this.raw) return this.failed('unexpected-token');
    switch (this.state) {
      case 'start':
        if (decoded.kind !== 'init') return this.failed('unexpected-token', REJECT());
        return this.onInit(decoded.token);
      case 'want-ntlm-negotiate':
        return this.onNegotiateResp(expectResp(decoded));
      case 'want-ntlm-authenticate':
        return this.onAuthenticateResp(expectResp(decoded));
      case 'want-mech-list-mic':
        return this.onMechListMicResp(expectResp(decoded));
      default:
        return this.failed('unexpected-token');
    }
  }

  private onInit(init: NegTokenInit): SpnegoStep {
    if (!init.mechTypes.includes(OID_NTLMSSP)) return this.failed('no-common-mech', REJECT());
    this.mechTypesDer = Buffer.from(init.mechTypesDer);
    this.ntlmWasFirstChoice = init.mechTypes[0] === OID_NTLMSSP;
    if (this.ntlmWasFirstChoice && init.mechToken && init.mechToken.length > 0) {
      const challenge = this.ntlmChallenge(init.mechToken);
      this.state = 'want-ntlm-authenticate';
      return this.cont({ negState: NegState.acceptIncomplete, supportedMech: OID_NTLMSSP, responseToken: challenge });
    }
    this.state = 'want-ntlm-negotiate';
    return this.cont({
      negState: this.ntlmWasFirstChoice ? NegState.acceptIncomplete : NegState.requestMic,
      supportedMech: OID_NTLMSSP,
    });
  }

  private onNegotiateResp(resp: NegTokenResp): SpnegoStep {
    if (!resp.responseToken || resp.responseToken.length === 0) return this.failed('unexpected-token', REJECT());
    const challenge = this.ntlmChallenge(resp.responseToken);
    this.state = 'want-ntlm-authenticate';
    return this.cont({ negState: NegState.acceptIncomplete, responseToken: challenge });
  }

  private async onAuthenticateResp(resp: NegTokenResp): Promise<SpnegoStep> {
    const auth = resp.responseToken;
    if (!auth || ntlmMessageType(auth) !== NtlmMessageType.NtLmAuthenticate) return this.failed('unexpected-token', REJECT());
    const result = await this.ntlm.authenticate(auth);
    if (!result.ok) return this.failed(result.reason, REJECT());
    const mechList = this.mechTypesDer!;
    if (!this.ntlm.canSign) {
      // Guest, anonymous, or no signing negotiated: no session security, no mechListMIC (MS-NLMP 3.4).
      return this.done(encodeNegTokenResp({ negState: NegState.acceptCompleted }), result);
    }
    if (resp.mechListMIC) {
      if (!this.ntlm.verifyMechListMic(mechList, resp.mechListMIC)) return this.failed('mech-list-mic-mismatch', REJECT());
      return this.done(encodeNegTokenResp({ negState: NegState.acceptCompleted, mechListMIC: this.ntlm.signMechListMic(mechList) }), result);
    }
    if (this.ntlm.micPresent || !this.ntlmWasFirstChoice) {
      // A MIC exchange is required but the client has not sent its part yet: send ours and wait.
      this.pending = result;
      this.state = 'want-mech-list-mic';
      return this.cont({ negState: NegState.acceptIncomplete, mechListMIC: this.ntlm.signMechListMic(mechList) });
    }
    return this.done(encodeNegTokenResp({ negState: NegState.acceptCompleted }), result);
  }

  private onMechListMicResp(resp: NegTokenResp): SpnegoStep {
    if (resp.responseToken && resp.responseToken.length > 0) return this.failed('unexpected-token', REJECT());
    if (!resp.mechListMIC) return this.failed('mech-list-mic-missing', REJECT());
    if (!this.ntlm.verifyMechListMic(this.mechTypesDer!, resp.mechListMIC)) return this.failed('mech-list-mic-mismatch', REJECT());
    return this.done(encodeNegTokenResp({ negState: NegState.acceptCompleted }), this.pending!);
  }

  private async rawStep(msg: Buffer): Promise<SpnegoStep> {
    const type = ntlmMessageType(msg);
    if (this.state === 'start' && type === NtlmMessageType.NtLmNegotiate) {
      this.raw = true;
      const challenge = this.ntlmChallenge(msg);
      this.state = 'want-ntlm-authenticate';
      return { status: 'continue', token: challenge };
    }
    if (this.raw && this.state === 'want-ntlm-authenticate' && type === NtlmMessageType.NtLmAuthenticate) {
      const result = await this.ntlm.authenticate(msg);
      if (!result.ok) return this.failed(result.reason);
      return this.done(Buffer.alloc(0), result);
    }
    return this.failed('unexpected-token');
  }

  private ntlmChallenge(negotiate: Buffer): Buffer {
    if (ntlmMessageType(negotiate) !== NtlmMessageType.NtLmNegotiate) throw new MalformedError('SPNEGO: mechToken is not an NTLM NEGOTIATE_MESSAGE');
    return this.ntlm.challenge(negotiate);
  }

  private cont(resp: NegTokenResp): SpnegoStep {
    return { status: 'continue', token: encodeNegTokenResp(resp) };
  }

  private done(token: Buffer, result: NtlmSuccess): SpnegoStep {
    this.state = 'finished';
    return { status: 'done', token, result };
  }

  private failed(reason: SpnegoFailureReason, token?: Buffer): SpnegoStep {
    this.state = 'finished';
    return token ? { status: 'failed', token, reason } : { status: 'failed', reason };
  }
}

function expectResp(t: SpnegoToken): NegTokenResp {
  if (t.kind !== 'resp') throw new MalformedError('SPNEGO: expected a NegTokenResp');
  return t.token;
}
