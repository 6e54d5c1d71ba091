// NTLM server, connection-oriented (MS-NLMP 3.2.5), NTLMv2 only. One instance authenticates one
// SESSION_SETUP exchange: challenge() answers the NEGOTIATE_MESSAGE, authenticate() checks the
// AUTHENTICATE_MESSAGE; afterwards the instance offers the NTLM session security SPNEGO needs for
// its mechListMIC.
//
// Standalone server: the credential store is the only authority. The domain the client names in the
// AUTHENTICATE_MESSAGE is accepted whatever it is (it is an input of NTOWFv2, so it must be the one
// the client used, but it selects no other account database); it is reported back in the result.
import { timingSafeEqual } from 'node:crypto';
import { assert } from '../base/assert.js';
import type { Clock, Random } from '../base/clock.js';
import { FILETIME_UNIX_EPOCH } from '../base/clock.js';
import { MalformedError } from '../base/errors.js';
import {
  AvId,
  decodeAuthenticateMessage,
  decodeNegotiateMessage,
  decodeNtlmv2ClientChallenge,
  encodeAvPairs,
  encodeChallengeMessage,
  findAvPair,
  MsvAvFlagsBits,
  NegotiateFlags as F,
  NTLMSSP_REVISION_W2K3,
  type AuthenticateMessage,
  type NtlmVersion,
} from '../protocol/ntlm.js';
import type { CredentialStore } from './credential-store.js';
import { computeMic, NtlmSessionSecurity, ntowfv2, ntProofStr, rc4k, sessionBaseKeyV2, upcase } from './ntlm-crypto.js';
import { ANONYMOUS_LOGON_SID, DOMAIN_USER_RID_GUEST, machineSidForName, sidForRid } from './sid.js';

/**
 * Largest distance between the NTLMv2_CLIENT_CHALLENGE TimeStamp and the server's clock
 * (MaxLifetime, MS-NLMP 3.2.5.1.2, default 36 hours). Not in limits.ts, which this module may not edit.
 */
export const NTLM_TIMESTAMP_SKEW_MS_MAX = 36 * 60 * 60 * 1000;

/** Version we advertise (MS-NLMP 2.2.2.10): informational only; the values Samba sends. */
export const SERVER_NTLM_VERSION: NtlmVersion = {
  ProductMajorVersion: 6,
  ProductMinorVersion: 1,
  ProductBuild: 0,
  NTLMRevisionCurrent: NTLMSSP_REVISION_W2K3,
};

export interface NtlmServerOptions {
  store: CredentialStore;
  netbiosDomain: string;
  netbiosComputer: string;
  dnsDomain: string;
  dnsComputer: string;
  /** Unknown user names log on as the guest account (no session key, no signing). */
  allowGuest: boolean;
  /** Anonymous (null session) logons are accepted. */
  allowAnonymous: boolean;
  clock: Clock;
  random: Random;
  /** SID of the local account domain; defaults to machineSidForName(netbiosComputer). */
  domainSid?: string;
  timestampSkewMsMax?: number;
}

export type NtlmFailureReason =
  | 'bad-password'
  | 'no-such-user'
  | 'account-disabled'
  | 'ntlmv1-refused'
  | 'malformed'
  | 'invalid-ntlmv2-response'
  | 'anonymous-refused'
  | 'expired-timestamp'
  | 'mic-mismatch';

export type NtlmSuccess = {
  ok: true;
  /** Canonical account name from the store ("" for anonymous, "Guest" for guest). */
  user: string;
  /** Domain as the client sent it. */
  domain: string;
  workstation: string;
  /**
   * ExportedSessionKey, 16 bytes (MS-NLMP 3.2.5.1.2), the SMB2 session key. All zero for guest and
   * anonymous logons, which have no session security: the caller must not sign or encrypt with it.
   */
  sessionKey: Buffer;
  isGuest: boolean;
  isAnonymous: boolean;
  sid: string;
};

export type NtlmResult = NtlmSuccess | { ok: false; reason: NtlmFailureReason };

const GUEST_ACCOUNT_NAME = 'Guest';
const NT_RESPONSE_V1_BYTES = 24;
const NT_PROOF_BYTES = 16;
const CLIENT_CHALLENGE_MIN_BYTES = 32; // 28 fixed + MsvAvEOL

type State = 'initial' | 'challenged' | 'authenticated' | 'done';

function utf16(s: string): Buffer {
  return Buffer.from(s, 'utf16le');
}

function fail(reason: NtlmFailureReason): NtlmResult {
  return { ok: false, reason };
}

/** Flags of the CHALLENGE_MESSAGE for a client's NEGOTIATE flags (MS-NLMP 3.2.5.1.1). */
export function challengeFlagsFor(clientFlags: number): number {
  let f = F.NTLMSSP_NEGOTIATE_NTLM | F.NTLMSSP_NEGOTIATE_TARGET_INFO | F.NTLMSSP_REQUEST_TARGET | F.NTLMSSP_TARGET_TYPE_SERVER;
  f |= clientFlags & F.NTLMSSP_NEGOTIATE_UNICODE ? F.NTLMSSP_NEGOTIATE_UNICODE : F.NTLM_NEGOTIATE_OEM;
  // Echo what we support of what was asked. Never LM_KEY: extended session security replaces it.
  const echoed =
    F.NTLMSSP_NEGOTIATE_SIGN |
    F.NTLMSSP_NEGOTIATE_SEAL |
    F.NTLMSSP_NEGOTIATE_ALWAYS_SIGN |
    F.NTLMSSP_NEGOTIATE_EXTENDED_SESSIONSECURITY |
    F.NTLMSSP_NEGOTIATE_IDENTIFY |
    F.NTLMSSP_NEGOTIATE_VERSION |
    F.NTLMSSP_NEGOTIATE_128 |
    F.NTLMSSP_NEGOTIATE_KEY_EXCH |
    F.NTLMSSP_NEGOTIATE_56;
  f |= clientFlags & echoed;
  return f >>> 0;
}

export class NtlmServer {
  private state: State = 'initial';
  private negotiateBytes: Buffer = Buffer.alloc(0);
  private challengeBytes: Buffer = Buffer.alloc(0);
  private serverChallenge: Buffer = Buffer.alloc(0);
  private challengeFlags = 0;
  private flags = 0;
  private exportedSessionKey: Buffer | undefined;
  private hadMic = false;
  private sessionSecurity = false;
  private readonly domainSid: string;

  constructor(private readonly opts: NtlmServerOptions) {
    this.domainSid = opts.domainSid ?? machineSidForName(opts.netbiosComputer);
  }

  /** Answers a NEGOTIATE_MESSAGE with a CHALLENGE_MESSAGE (MS-NLMP 3.2.5.1.1). Throws MalformedError. */
  challenge(negotiateMsg: Buffer): Buffer {
    if (this.state !== 'initial') throw new MalformedError('NTLMSSP: NEGOTIATE_MESSAGE out of sequence');
    const neg = decodeNegotiateMessage(negotiateMsg);
    const flags = challengeFlagsFor(neg.NegotiateFlags);
    this.serverChallenge = Buffer.from(this.opts.random.bytes(8));
    assert(this.serverChallenge.length === 8, 'random.bytes(8) returns 8 bytes');
    const timestamp = Buffer.alloc(8);
    timestamp.writeBigUInt64LE(BigInt(Math.floor(this.opts.clock.nowMs())) * 10_000n + FILETIME_UNIX_EPOCH);
    const targetInfo = encodeAvPairs([
      { AvId: AvId.MsvAvNbDomainName, Value: utf16(this.opts.netbiosDomain) },
      { AvId: AvId.MsvAvNbComputerName, Value: utf16(this.opts.netbiosComputer) },
      { AvId: AvId.MsvAvDnsDomainName, Value: utf16(this.opts.dnsDomain) },
      { AvId: AvId.MsvAvDnsComputerName, Value: utf16(this.opts.dnsComputer) },
      { AvId: AvId.MsvAvTimestamp, Value: timestamp },
    ]);
    const unicode = (flags & F.NTLMSSP_NEGOTIATE_UNICODE) !== 0;
    const chal = encodeChallengeMessage({
      NegotiateFlags: flags,
      // TARGET_TYPE_SERVER: TargetName is the server's NetBIOS name (MS-NLMP 2.2.1.2).
      TargetName: unicode ? utf16(this.opts.netbiosComputer) : Buffer.from(this.opts.netbiosComputer, 'latin1'),
      ServerChallenge: this.serverChallenge,
      TargetInfo: targetInfo,
      ...(flags & F.NTLMSSP_NEGOTIATE_VERSION ? { Version: SERVER_NTLM_VERSION } : {}),
    });
    // The MIC covers the NEGOTIATE_MESSAGE as received: keep a copy, the input may be a reused buffer.
    this.negotiateBytes = Buffer.from(negotiateMsg);
    this.challengeBytes = chal;
    this.challengeFlags = flags;
    this.state = 'challenged';
    return chal;
  }

  /** Checks an AUTHENTICATE_MESSAGE (MS-NLMP 3.2.5.1.2). Never throws on client input. */
  async authenticate(authMsg: Buffer): Promise<NtlmResult> {
    if (this.state !== 'challenged') return fail('malformed');
    this.state = 'done';
    let msg: AuthenticateMessage;
    try {
      msg = decodeAuthenticateMessage(authMsg);
    } catch (e) {
      if (e instanceof MalformedError) return fail('malformed');
      throw e;
    }
    const flags = (this.challengeFlags & msg.NegotiateFlags) >>> 0;
    this.flags = flags;
    const lm = msg.LmChallengeResponse;
    const nt = msg.NtChallengeResponse;

    // Anonymous: empty user, empty NtChallengeResponse, LmChallengeResponse empty or Z(1) (MS-NLMP 3.2.5.1.2).
    if (msg.UserName === '' && nt.length === 0 && (lm.length === 0 || (lm.length === 1 && lm[0] === 0))) {
      if (!this.opts.allowAnonymous) return fail('anonymous-refused');
      return this.succeed(msg, { user: '', sid: ANONYMOUS_LOGON_SID, isAnonymous: true, isGuest: false, sessionKey: undefined });
    }
    // NTLMv2 only: a 24-byte NT response is NTLMv1 (or NTLM2 session response); none at all is LM only.
    if (nt.length === NT_RESPONSE_V1_BYTES || nt.length === 0) return fail('ntlmv1-refused');
    if (nt.length < NT_PROOF_BYTES + CLIENT_CHALLENGE_MIN_BYTES) return fail('malformed');
    const proof = nt.subarray(0, NT_PROOF_BYTES);
    const temp = nt.subarray(NT_PROOF_BYTES);
    let blob;
    try {
      blob = decodeNtlmv2ClientChallenge(temp);
    } catch (e) {
      // An NTLMv2_CLIENT_CHALLENGE whose AV pairs do not parse: Windows and Samba answer
      // STATUS_INVALID_PARAMETER rather than a logon failure (Samba bug 14932).
      if (e instanceof MalformedError) return fail('invalid-ntlmv2-response');
      throw e;
    }
    if (blob.RespType !== 1 || blob.HiRespType !== 1) return fail('malformed');

    const record = msg.UserName === '' ? undefined : await this.opts.store.lookup(msg.UserName);
    if (!record) {
      // Spend the same HMACs a real check would, so the answer time does not reveal unknown names.
      ntowfv2(this.opts.random.bytes(16), msg.UserName, msg.DomainName);
      if (!this.opts.allowGuest) return fail('no-such-user');
      return this.succeed(msg, {
        user: GUEST_ACCOUNT_NAME,
        sid: sidForRid(this.domainSid, DOMAIN_USER_RID_GUEST),
        isAnonymous: false,
        isGuest: true,
        sessionKey: undefined,
      });
    }
    if (record.disabled) return fail('account-disabled');

    // The client computed NTOWFv2 with its UserDom; accept it as sent, upper-cased or empty, as
    // Samba does for clients that normalise the domain differently.
    let responseKeyNT: Buffer | undefined;
    const domains = [...new Set([msg.DomainName, upcase(msg.DomainName), ''])];
    for (const dom of domains) {
      const key = ntowfv2(record.ntHash, msg.UserName, dom);
      if (timingSafeEqual(ntProofStr(key, this.serverChallenge, temp), proof)) {
        responseKeyNT = key;
        break;
      }
    }
    if (!responseKeyNT) return fail('bad-password');

    // MaxLifetime check on the client's timestamp (MS-NLMP 3.2.5.1.2).
    const nowFt = BigInt(Math.floor(this.opts.clock.nowMs())) * 10_000n + FILETIME_UNIX_EPOCH;
    const skew = nowFt > blob.TimeStamp ? nowFt - blob.TimeStamp : blob.TimeStamp - nowFt;
    if (skew > BigInt(this.opts.timestampSkewMsMax ?? NTLM_TIMESTAMP_SKEW_MS_MAX) * 10_000n) return fail('expired-timestamp');

    // KXKEY = SessionBaseKey for NTLMv2 (3.4.5.1); with KEY_EXCH the client chose the key (3.2.5.1.2).
    const keyExchangeKey = sessionBaseKeyV2(responseKeyNT, proof);
    let exported: Buffer;
    if (flags & F.NTLMSSP_NEGOTIATE_KEY_EXCH) {
      if (msg.EncryptedRandomSessionKey.length !== 16) return fail('malformed');
      exported = rc4k(keyExchangeKey, msg.EncryptedRandomSessionKey);
    } else {
      exported = Buffer.from(keyExchangeKey);
    }

    // MIC (3.2.5.1.2): required when the client's MsvAvFlags says it is present.
    const avFlags = findAvPair(blob.AvPairs, AvId.MsvAvFlags);
    const micFlagged = avFlags !== undefined && avFlags.Value.length >= 4 && (avFlags.Value.readUInt32LE(0) & MsvAvFlagsBits.MicPresent) !== 0;
    if (micFlagged) {
      if (!msg.MIC || msg.micOffset === undefined) return fail('malformed');
      const expected = computeMic(exported, this.negotiateBytes, this.challengeBytes, authMsg, msg.micOffset);
      if (!timingSafeEqual(expected, msg.MIC)) return fail('mic-mismatch');
      this.hadMic = true;
    }

    this.exportedSessionKey = exported;
    this.sessionSecurity =
      (flags & F.NTLMSSP_NEGOTIATE_SIGN) !== 0 && (flags & F.NTLMSSP_NEGOTIATE_EXTENDED_SESSIONSECURITY) !== 0;
    return this.succeed(msg, {
      user: record.user,
      sid: sidForRid(this.domainSid, record.rid),
      isAnonymous: false,
      isGuest: false,
      sessionKey: exported,
    });
  }

  private succeed(
    msg: AuthenticateMessage,
    who: { user: string; sid: string; isAnonymous: boolean; isGuest: boolean; sessionKey: Buffer | undefined },
  ): NtlmResult {
    this.state = 'authenticated';
    return {
      ok: true,
      user: who.user,
      domain: msg.DomainName,
      workstation: msg.Workstation,
      sessionKey: who.sessionKey ? Buffer.from(who.sessionKey) : Buffer.alloc(16),
      isGuest: who.isGuest,
      isAnonymous: who.isAnonymous,
      sid: who.sid,
    };
  }

  /** Flags in effect after AUTHENTICATE: those of our CHALLENGE the client kept. */
  get negotiatedFlags(): number {
    return this.flags;
  }

  /** The AUTHENTICATE_MESSAGE carried a MIC that verified (the client is "new SPNEGO" aware). */
  get micPresent(): boolean {
    return this.hadMic;
  }

  /**
   * NTLM session security is available: an authenticated user (not guest or anonymous, MS-NLMP
   * 3.4), with NTLMSSP_NEGOTIATE_SIGN and extended session security negotiated.
   */
  get canSign(): boolean {
    return this.state === 'authenticated' && this.sessionSecurity && this.exportedSessionKey !== undefined;
  }

  /**
   * Verifies the client's SPNEGO mechListMIC over the DER MechTypeList (RFC 4178 5) with the
   * client-to-server keys (MS-NLMP 3.4.4, 3.4.5). It is the first message of that direction, so
   * the sequence number is 0 and the RC4 handle is fresh on every call.
   */
  verifyMechListMic(mechListDer: Buffer, mic: Buffer): boolean {
    if (!this.canSign) return false;
    return new NtlmSessionSecurity(this.exportedSessionKey!, this.flags, 'client-to-server').verify(mechListDer, mic);
  }

  /** The server's mechListMIC (server-to-client keys, sequence number 0). Requires canSign. */
  signMechListMic(mechListDer: Buffer): Buffer {
    assert(this.canSign, 'signMechListMic needs an authenticated context with signing');
    return new NtlmSessionSecurity(this.exportedSessionKey!, this.flags, 'server-to-client').sign(mechListDer);
  }
}
