// Session key derivation at the end of SESSION_SETUP: MS-SMB2 3.3.5.5.3 (server side; the client's
// mirror is 3.2.5.3.1), with the KDF of MS-SMB2 3.1.4.2.
import { assert } from '../base/assert.js';
import { kdf } from './kdf.js';
import { PREAUTH_HASH_SIZE } from './preauth.js';
import { CipherId, cipherKeyLength, isCipherId } from './sealing.js';

/** Dialect revision numbers (MS-SMB2 2.2.3 Dialects). */
export const Dialect = {
  SMB202: 0x0202,
  SMB210: 0x0210,
  SMB300: 0x0300,
  SMB302: 0x0302,
  SMB311: 0x0311,
} as const;
export type Dialect = (typeof Dialect)[keyof typeof Dialect];

/** MS-SMB2 3.3.1.8: Session.SessionKey is the first 16 bytes of the GSS key, right-padded with zeros. */
export const SESSION_KEY_SIZE = 16;

// Labels and contexts are NUL-terminated; the terminator is part of the string (MS-SMB2 3.3.5.5.3
// gives the sizes including it, e.g. "SMB2AESCMAC" size 12, "ServerIn " size 10 with its trailing
// space). The KDF adds its own 0x00 separator after the label.
const nulTerminated = (s: string): Buffer => Buffer.from(`${s}\0`, 'latin1');
const L30 = {
  signingLabel: nulTerminated('SMB2AESCMAC'),
  signingContext: nulTerminated('SmbSign'),
  applicationLabel: nulTerminated('SMB2APP'),
  applicationContext: nulTerminated('SmbRpc'),
  cipherLabel: nulTerminated('SMB2AESCCM'),
  serverOutContext: nulTerminated('ServerOut'),
  serverInContext: nulTerminated('ServerIn '),
};
const L311 = {
  signingLabel: nulTerminated('SMBSigningKey'),
  applicationLabel: nulTerminated('SMBAppKey'),
  c2sCipherLabel: nulTerminated('SMBC2SCipherKey'),
  s2cCipherLabel: nulTerminated('SMBS2CCipherKey'),
};

export interface DeriveSessionKeysInput {
  /** Negotiated dialect, 0x0202..0x0311. */
  dialect: number;
  /** The cryptographic key from the GSS (NTLM/Kerberos) context, any length (NTLM: 16 bytes). */
  sessionKey: Buffer;
  /** Session.PreauthIntegrityHashValue after the final SESSION_SETUP request; required for 3.1.1. */
  preauthHash?: Buffer;
  /** Connection.CipherId (1..4); 3.1.1 only. Absent: keys for AES-128 (L = 128). */
  cipherId?: number;
}

export interface SessionKeys {
  /** Session.SigningKey (16 bytes). For 2.0.2/2.1: Session.SessionKey itself. */
  signingKey: Buffer;
  /** Session.EncryptionKey: the server encrypts server→client messages with it. Null before 3.0. */
  encryptionKey: Buffer | null;
  /** Session.DecryptionKey: the server decrypts client→server messages with it. Null before 3.0. */
  decryptionKey: Buffer | null;
  /** Session.ApplicationKey (16 bytes). For 2.0.2/2.1: Session.SessionKey (MS-SMB2 3.3.4.x, 3.2.4.25). */
  applicationKey: Buffer;
}

/** Session.SessionKey: first 16 bytes, right-padded with zero bytes (MS-SMB2 3.3.1.8). */
export function sessionKeyOf(gssKey: Buffer): Buffer {
  const out = Buffer.alloc(SESSION_KEY_SIZE);
  gssKey.copy(out, 0, 0, Math.min(gssKey.length, SESSION_KEY_SIZE));
  return out;
}

/**
 * The server's keys for a session, MS-SMB2 3.3.5.5.3:
 * - 2.0.2, 2.1: signing uses Session.SessionKey directly (HMAC-SHA256); no encryption.
 * - 3.0, 3.0.2: KDF(SessionKey, "SMB2AESCMAC", "SmbSign") signing; "SMB2AESCCM"/"ServerOut" for the
 *   server's EncryptionKey, "SMB2AESCCM"/"ServerIn " for its DecryptionKey; "SMB2APP"/"SmbRpc".
 * - 3.1.1: "SMBSigningKey", "SMBS2CCipherKey" (EncryptionKey), "SMBC2SCipherKey" (DecryptionKey),
 *   "SMBAppKey", each with Session.PreauthIntegrityHashValue as context. For AES-256-CCM/GCM the
 *   encryption and decryption keys are 32 bytes (L = 256) derived from Session.FullSessionKey (the
 *   whole GSS key, when it is longer than 16 bytes, as with Kerberos AES-256); signing and
 *   application keys always come from the 16-byte Session.SessionKey with L = 128.
 * Misuse (unknown dialect, missing preauth hash, cipher outside 3.1.1) is a programming error.
 */
export function deriveSessionKeys(input: DeriveSessionKeysInput): SessionKeys {
  const { dialect, sessionKey: gssKey, preauthHash, cipherId } = input;
  const sessionKey = sessionKeyOf(gssKey);
  switch (dialect) {
    case Dialect.SMB202:
    case Dialect.SMB210:
      assert(cipherId === undefined, 'no encryption before SMB 3.0');
      return { signingKey: sessionKey, encryptionKey: null, decryptionKey: null, applicationKey: sessionKey };
    case Dialect.SMB300:
    case Dialect.SMB302:
      // SMB 3.0/3.0.2 encrypt only with AES-128-CCM (MS-SMB2 3.3.5.4: CipherId is a 3.1.1 concept).
      assert(cipherId === undefined || cipherId === CipherId.AES_128_CCM, '3.0.x uses AES-128-CCM');
      return {
        signingKey: kdf(sessionKey, L30.signingLabel, L30.signingContext, 128),
        encryptionKey: kdf(sessionKey, L30.cipherLabel, L30.serverOutContext, 128),
        decryptionKey: kdf(sessionKey, L30.cipherLabel, L30.serverInContext, 128),
        applicationKey: kdf(sessionKey, L30.applicationLabel, L30.applicationContext, 128),
      };
    case Dialect.SMB311: {
      assert(preauthHash !== undefined && preauthHash.length === PREAUTH_HASH_SIZE, '3.1.1 needs the preauth hash');
      assert(cipherId === undefined || isCipherId(cipherId), 'cipher id is 1..4');
      const wide = cipherId !== undefined && cipherKeyLength(cipherId) === 32;
      const cipherKey = wide && gssKey.length > SESSION_KEY_SIZE ? gssKey : sessionKey;
      const bits = wide ? 256 : 128;
      return {
        signingKey: kdf(sessionKey, L311.signingLabel, preauthHash, 128),
        encryptionKey: kdf(cipherKey, L311.s2cCipherLabel, preauthHash, bits),
        decryptionKey: kdf(cipherKey, L311.c2sCipherLabel, preauthHash, bits),
        applicationKey: kdf(sessionKey, L311.applicationLabel, preauthHash, 128),
      };
    }
    default:
      assert(false, `unknown dialect 0x${dialect.toString(16)}`);
  }
}
