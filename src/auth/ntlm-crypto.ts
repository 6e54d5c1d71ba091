// NTLMv2 key and response computations (MS-NLMP 3.3.2, 3.4.4, 3.4.5) and the session security
// used for the SPNEGO mechListMIC. Pure functions over Buffers; verified against MS-NLMP 4.2.4.
import { timingSafeEqual } from 'node:crypto';
import { assert } from '../base/assert.js';
import { NegotiateFlags } from '../protocol/ntlm.js';
import { hmacMd5, md4, md5, Rc4, rc4k } from './legacy.js';

/**
 * Upper-cases like Windows' RtlUpcaseUnicodeString: one UTF-16 unit in, one out, with no special
 * casing that changes length (JavaScript maps "ß" to "SS"; Windows leaves it). Used for NTOWFv2's
 * Uppercase(User) and for case-insensitive user names.
 */
export function upcase(s: string): string {
  let out = '';
  for (const ch of s) {
    const u = ch.toUpperCase();
    out += u.length === ch.length ? u : ch;
  }
  return out;
}

/** NTOWFv1(Passwd) = MD4(UNICODE(Passwd)) (MS-NLMP 3.3.1): the NT hash. */
export function ntowfv1(password: string): Buffer {
  return md4(Buffer.from(password, 'utf16le'));
}

/** NTOWFv2 = HMAC_MD5(MD4(UNICODE(Passwd)), UNICODE(ConcatenationOf(Uppercase(User), UserDom))) (MS-NLMP 3.3.2). */
export function ntowfv2(ntHash: Buffer, user: string, userDom: string): Buffer {
  return hmacMd5(ntHash, Buffer.from(upcase(user) + userDom, 'utf16le'));
}

/** NTProofStr = HMAC_MD5(ResponseKeyNT, ConcatenationOf(CHALLENGE_MESSAGE.ServerChallenge, temp)) (MS-NLMP 3.3.2). */
export function ntProofStr(responseKeyNT: Buffer, serverChallenge: Buffer, temp: Buffer): Buffer {
  return hmacMd5(responseKeyNT, serverChallenge, temp);
}

/** SessionBaseKey = HMAC_MD5(ResponseKeyNT, NTProofStr) (MS-NLMP 3.3.2). */
export function sessionBaseKeyV2(responseKeyNT: Buffer, proof: Buffer): Buffer {
  return hmacMd5(responseKeyNT, proof);
}

/** LmChallengeResponse for NTLMv2 = HMAC_MD5(ResponseKeyLM, ServerChallenge || ClientChallenge) || ClientChallenge. */
export function lmv2Response(responseKeyLM: Buffer, serverChallenge: Buffer, clientChallenge: Buffer): Buffer {
  return Buffer.concat([hmacMd5(responseKeyLM, serverChallenge, clientChallenge), clientChallenge]);
}

/** KXKEY for NTLMv2 is the SessionBaseKey (MS-NLMP 3.4.5.1). */
export function keyExchangeKeyV2(sessionBaseKey: Buffer): Buffer {
  return sessionBaseKey;
}

/**
 * MIC = HMAC_MD5(ExportedSessionKey, ConcatenationOf(NEGOTIATE_MESSAGE, CHALLENGE_MESSAGE,
 * AUTHENTICATE_MESSAGE)) with the AUTHENTICATE_MESSAGE's MIC field set to zero (MS-NLMP 3.1.5.1.2, 3.2.5.1.2).
 */
export function computeMic(exportedSessionKey: Buffer, negotiate: Buffer, challenge: Buffer, authenticate: Buffer, micOffset: number): Buffer {
  const zeroed = Buffer.from(authenticate);
  zeroed.fill(0, micOffset, micOffset + 16);
  return hmacMd5(exportedSessionKey, negotiate, challenge, zeroed);
}

export type Direction = 'client-to-server' | 'server-to-client';

const SIGN_MAGIC: Record<Direction, Buffer> = {
  'client-to-server': Buffer.from('session key to client-to-server signing key magic constant\0', 'latin1'),
  'server-to-client': Buffer.from('session key to server-to-client signing key magic constant\0', 'latin1'),
};
const SEAL_MAGIC: Record<Direction, Buffer> = {
  'client-to-server': Buffer.from('session key to client-to-server sealing key magic constant\0', 'latin1'),
  'server-to-client': Buffer.from('session key to server-to-client sealing key magic constant\0', 'latin1'),
};

/** SIGNKEY with extended session security (MS-NLMP 3.4.5.2). */
export function signKey(exportedSessionKey: Buffer, direction: Direction): Buffer {
  return md5(exportedSessionKey, SIGN_MAGIC[direction]);
}

/** SEALKEY with extended session security (MS-NLMP 3.4.5.3): the key is cut to 16, 7 or 5 bytes by the flags. */
export function sealKey(exportedSessionKey: Buffer, negotiateFlags: number, direction: Direction): Buffer {
  const n = negotiateFlags & NegotiateFlags.NTLMSSP_NEGOTIATE_128 ? 16 : negotiateFlags & NegotiateFlags.NTLMSSP_NEGOTIATE_56 ? 7 : 5;
  return md5(exportedSessionKey.subarray(0, n), SEAL_MAGIC[direction]);
}

/**
 * One direction of NTLM session security with extended session security (MS-NLMP 3.4.3, 3.4.4.2):
 * a signing key, a stateful RC4 handle keyed with the sealing key, and a sequence number. The sender
 * of that direction calls sign()/seal(); the receiver builds the same object and calls verify().
 */
export class NtlmSessionSecurity {
  private readonly signingKey: Buffer;
  private readonly handle: Rc4;
  private readonly keyExch: boolean;
  private seqNum = 0;

  constructor(exportedSessionKey: Buffer, negotiateFlags: number, direction: Direction) {
    assert(
      (negotiateFlags & NegotiateFlags.NTLMSSP_NEGOTIATE_EXTENDED_SESSIONSECURITY) !== 0,
      'NTLM session security without extended session security is not implemented',
    );
    this.signingKey = signKey(exportedSessionKey, direction);
    this.handle = new Rc4(sealKey(exportedSessionKey, negotiateFlags, direction));
    this.keyExch = (negotiateFlags & NegotiateFlags.NTLMSSP_NEGOTIATE_KEY_EXCH) !== 0;
  }

  /** MAC (MS-NLMP 3.4.4.2): Version 1 || Checksum || SeqNum, consuming one sequence number. */
  sign(message: Buffer): Buffer {
    const seq = Buffer.alloc(4);
    seq.writeUInt32LE(this.seqNum >>> 0, 0);
    let checksum = hmacMd5(this.signingKey, seq, message).subarray(0, 8);
    if (this.keyExch) checksum = this.handle.update(checksum);
    this.seqNum = (this.seqNum + 1) >>> 0;
    const sig = Buffer.alloc(16);
    sig.writeUInt32LE(1, 0);
    checksum.copy(sig, 4);
    seq.copy(sig, 12);
    return sig;
  }

  /** SEAL (MS-NLMP 3.4.3): RC4 the message with the handle, then MAC over the plaintext. */
  seal(message: Buffer): { sealed: Buffer; signature: Buffer } {
    const sealed = this.handle.update(message);
    return { sealed, signature: this.sign(message) };
  }

  /** Recomputes the MAC of `message` and compares it with `signature` in constant time. */
  verify(message: Buffer, signature: Buffer): boolean {
    if (signature.length !== 16) return false;
    const expected = this.sign(message);
    return timingSafeEqual(expected, signature);
  }
}

/** RC4K of MS-NLMP 6, re-exported for key exchange. */
export { rc4k };
