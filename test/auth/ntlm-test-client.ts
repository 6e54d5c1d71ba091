// A tiny NTLMv2 client (MS-NLMP 3.1.5) built on the codecs, for driving the server in tests.
import {
  AvId,
  decodeAvPairs,
  decodeChallengeMessage,
  encodeAuthenticateMessage,
  encodeAvPairs,
  encodeNegotiateMessage,
  encodeNtlmv2ClientChallenge,
  findAvPair,
  NegotiateFlags as F,
  AUTHENTICATE_MIC_OFFSET,
  type AvPair,
} from '../../src/protocol/ntlm.js';
import { rc4k } from '../../src/auth/legacy.js';
import {
  computeMic,
  lmv2Response,
  NtlmSessionSecurity,
  ntowfv1,
  ntowfv2,
  ntProofStr,
  sessionBaseKeyV2,
} from '../../src/auth/ntlm-crypto.js';

/** NEGOTIATE flags a Windows 10 client sends (0xE2088297). */
export const WINDOWS_CLIENT_FLAGS = 0xe2088297;

export interface TestClientOptions {
  user: string;
  password: string;
  domain: string;
  workstation?: string;
  flags?: number;
  /** Put MsvAvFlags(MIC present) in the blob and a MIC in the message (default true). */
  withMic?: boolean;
  /** Overrides the timestamp (default: the server's MsvAvTimestamp). */
  timestamp?: bigint;
  clientChallenge?: Buffer;
  randomSessionKey?: Buffer;
  /** Send a 24-byte (NTLMv1-shaped) NT response instead. */
  ntlmv1?: boolean;
  /** Flip a bit of the MIC after computing it. */
  tamperMic?: boolean;
}

export class NtlmTestClient {
  negotiateMsg: Buffer = Buffer.alloc(0);
  exportedSessionKey: Buffer = Buffer.alloc(0);
  flags = 0;

  constructor(private readonly o: TestClientOptions) {}

  negotiate(): Buffer {
    this.negotiateMsg = encodeNegotiateMessage({
      NegotiateFlags: this.o.flags ?? WINDOWS_CLIENT_FLAGS,
      Version: { ProductMajorVersion: 10, ProductMinorVersion: 0, ProductBuild: 19041, NTLMRevisionCurrent: 15 },
    });
    return this.negotiateMsg;
  }

  authenticate(challengeMsg: Buffer): Buffer {
    const chal = decodeChallengeMessage(challengeMsg);
    const flags = (chal.NegotiateFlags & (this.o.flags ?? WINDOWS_CLIENT_FLAGS)) >>> 0;
    this.flags = flags;
    const withMic = this.o.withMic ?? true;
    const serverPairs = decodeAvPairs(chal.TargetInfo);
    const ts = findAvPair(serverPairs, AvId.MsvAvTimestamp);
    const timestamp = this.o.timestamp ?? (ts ? ts.Value.readBigUInt64LE(0) : 0n);
    const pairs: AvPair[] = [...serverPairs];
    if (withMic) {
      const v = Buffer.alloc(4);
      v.writeUInt32LE(0x2, 0);
      pairs.push({ AvId: AvId.MsvAvFlags, Value: v });
    }
    pairs.push({ AvId: AvId.MsvAvTargetName, Value: Buffer.from('cifs/server', 'utf16le') });
    const clientChallenge = this.o.clientChallenge ?? Buffer.from('0102030405060708', 'hex');
    const temp = encodeNtlmv2ClientChallenge({ TimeStamp: timestamp, ChallengeFromClient: clientChallenge, AvPairs: encodeAvPairs(pairs) });
    const key = ntowfv2(ntowfv1(this.o.password), this.o.user, this.o.domain);
    const proof = ntProofStr(key, chal.ServerChallenge, temp);
    const nt = this.o.ntlmv1 ? Buffer.alloc(24, 7) : Buffer.concat([proof, temp]);
    const sbk = sessionBaseKeyV2(key, proof);
    let encrypted: Buffer = Buffer.alloc(0);
    this.exportedSessionKey = sbk;
    if (flags & F.NTLMSSP_NEGOTIATE_KEY_EXCH) {
      const rsk = this.o.randomSessionKey ?? Buffer.alloc(16, 0x42);
      encrypted = rc4k(sbk, rsk);
      this.exportedSessionKey = rsk;
    }
    const msg = encodeAuthenticateMessage({
      NegotiateFlags: flags,
      LmChallengeResponse: ts ? Buffer.alloc(24) : lmv2Response(key, chal.ServerChallenge, clientChallenge),
      NtChallengeResponse: nt,
      DomainName: Buffer.from(this.o.domain, 'utf16le'),
      UserName: Buffer.from(this.o.user, 'utf16le'),
      Workstation: Buffer.from(this.o.workstation ?? 'WORKSTATION', 'utf16le'),
      EncryptedRandomSessionKey: encrypted,
      Version: { ProductMajorVersion: 10, ProductMinorVersion: 0, ProductBuild: 19041, NTLMRevisionCurrent: 15 },
      withMic,
    });
    if (withMic) {
      const mic = computeMic(this.exportedSessionKey, this.negotiateMsg, challengeMsg, msg, AUTHENTICATE_MIC_OFFSET);
      if (this.o.tamperMic) mic[0] = mic[0]! ^ 1;
      mic.copy(msg, AUTHENTICATE_MIC_OFFSET);
    }
    return msg;
  }

  /** The client's mechListMIC (client-to-server keys, SeqNum 0). */
  signMechList(der: Buffer): Buffer {
    return new NtlmSessionSecurity(this.exportedSessionKey, this.flags, 'client-to-server').sign(der);
  }

  /** Checks the server's mechListMIC (server-to-client keys). */
  verifyServerMechList(der: Buffer, mic: Buffer): boolean {
    return new NtlmSessionSecurity(this.exportedSessionKey, this.flags, 'server-to-client').verify(der, mic);
  }
}
