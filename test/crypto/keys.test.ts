import { describe, expect, it } from 'vitest';
import { deriveSessionKeys, Dialect, sessionKeyOf } from '../../src/crypto/keys.js';
import { kdf } from '../../src/crypto/kdf.js';
import { CipherId } from '../../src/crypto/sealing.js';
import { ANATOMY_30, ANATOMY_311, ANATOMY_311_CHANNEL, ENC30_CCM, ENC311_GCM, hex } from './vectors.js';

const h = (b: Buffer | null): string | null => (b === null ? null : b.toString('hex').toUpperCase());

describe('deriveSessionKeys (MS-SMB2 3.3.5.5.3)', () => {
  // The blogs print the client's keys: the server's EncryptionKey is the client's DecryptionKey.
  it('3.0: anatomy-of-keys example', () => {
    const k = deriveSessionKeys({ dialect: Dialect.SMB300, sessionKey: ANATOMY_30.sessionKey });
    expect(h(k.signingKey)).toBe(h(ANATOMY_30.signingKey));
    expect(h(k.encryptionKey)).toBe(h(ANATOMY_30.clientDecryptionKey));
    expect(h(k.decryptionKey)).toBe(h(ANATOMY_30.clientEncryptionKey));
    expect(h(k.applicationKey)).toBe(h(ANATOMY_30.applicationKey));
  });

  it('3.0: second channel signing key of the anatomy example', () => {
    const k = deriveSessionKeys({ dialect: Dialect.SMB300, sessionKey: ANATOMY_30.channelSessionKey });
    expect(h(k.signingKey)).toBe(h(ANATOMY_30.channelSigningKey));
  });

  it('3.0.2 uses the same labels as 3.0: encryption-in-SMB-3.0 example', () => {
    for (const dialect of [Dialect.SMB300, Dialect.SMB302]) {
      const k = deriveSessionKeys({ dialect, sessionKey: ENC30_CCM.sessionKey, cipherId: CipherId.AES_128_CCM });
      expect(h(k.signingKey)).toBe(h(ENC30_CCM.signingKey));
      expect(h(k.encryptionKey)).toBe(h(ENC30_CCM.clientDecryptionKey));
      expect(h(k.decryptionKey)).toBe(h(ENC30_CCM.clientEncryptionKey));
      expect(h(k.applicationKey)).toBe(h(ENC30_CCM.applicationKey));
    }
  });

  it('3.1.1: anatomy-of-keys example (AES-128-GCM)', () => {
    const k = deriveSessionKeys({
      dialect: Dialect.SMB311,
      sessionKey: ANATOMY_311.sessionKey,
      preauthHash: ANATOMY_311.preauthHash,
      cipherId: ANATOMY_311.cipherId,
    });
    expect(h(k.signingKey)).toBe(h(ANATOMY_311.signingKey));
    expect(h(k.encryptionKey)).toBe(h(ANATOMY_311.clientDecryptionKey));
    expect(h(k.decryptionKey)).toBe(h(ANATOMY_311.clientEncryptionKey));
    expect(h(k.applicationKey)).toBe(h(ANATOMY_311.applicationKey));
  });

  it('3.1.1: second channel signing key (binding, channel preauth hash)', () => {
    const k = deriveSessionKeys({
      dialect: Dialect.SMB311,
      sessionKey: ANATOMY_311_CHANNEL.sessionKey,
      preauthHash: ANATOMY_311_CHANNEL.preauthHash,
    });
    expect(h(k.signingKey)).toBe(h(ANATOMY_311_CHANNEL.channelSigningKey));
  });

  it('3.1.1: SMB 3.1.1 encryption example (AES-128-GCM)', () => {
    const k = deriveSessionKeys({
      dialect: Dialect.SMB311,
      sessionKey: ENC311_GCM.sessionKey,
      preauthHash: ENC311_GCM.preauthHash,
      cipherId: CipherId.AES_128_GCM,
    });
    expect(h(k.signingKey)).toBe(h(ENC311_GCM.signingKey));
    expect(h(k.encryptionKey)).toBe(h(ENC311_GCM.clientDecryptionKey));
    expect(h(k.decryptionKey)).toBe(h(ENC311_GCM.clientEncryptionKey));
    expect(h(k.applicationKey)).toBe(h(ENC311_GCM.applicationKey));
  });

  it('3.1.1 with AES-256: 32-byte cipher keys (L = 256) from the full session key; 16-byte signing key', () => {
    const full = hex('000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f');
    for (const cipherId of [CipherId.AES_256_CCM, CipherId.AES_256_GCM]) {
      const k = deriveSessionKeys({ dialect: Dialect.SMB311, sessionKey: full, preauthHash: ANATOMY_311.preauthHash, cipherId });
      expect(k.encryptionKey!.length).toBe(32);
      expect(k.decryptionKey!.length).toBe(32);
      expect(h(k.encryptionKey)).toBe(h(kdf(full, Buffer.from('SMBS2CCipherKey\0'), ANATOMY_311.preauthHash, 256)));
      expect(h(k.decryptionKey)).toBe(h(kdf(full, Buffer.from('SMBC2SCipherKey\0'), ANATOMY_311.preauthHash, 256)));
      expect(h(k.signingKey)).toBe(h(kdf(full.subarray(0, 16), Buffer.from('SMBSigningKey\0'), ANATOMY_311.preauthHash, 128)));
      expect(k.applicationKey.length).toBe(16);
    }
    // With a 16-byte (NTLM) session key, FullSessionKey equals SessionKey.
    const k = deriveSessionKeys({
      dialect: Dialect.SMB311,
      sessionKey: ANATOMY_311.sessionKey,
      preauthHash: ANATOMY_311.preauthHash,
      cipherId: CipherId.AES_256_GCM,
    });
    expect(h(k.signingKey)).toBe(h(ANATOMY_311.signingKey));
    expect(h(k.decryptionKey)).toBe(h(kdf(ANATOMY_311.sessionKey, Buffer.from('SMBC2SCipherKey\0'), ANATOMY_311.preauthHash, 256)));
  });

  it('3.1.1 with AES-128 ciphers uses only the first 16 bytes of a longer GSS key', () => {
    const full = hex('000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f');
    const a = deriveSessionKeys({ dialect: Dialect.SMB311, sessionKey: full, preauthHash: ANATOMY_311.preauthHash, cipherId: 2 });
    const b = deriveSessionKeys({ dialect: Dialect.SMB311, sessionKey: full.subarray(0, 16), preauthHash: ANATOMY_311.preauthHash, cipherId: 2 });
    expect(h(a.encryptionKey)).toBe(h(b.encryptionKey));
    expect(a.encryptionKey!.length).toBe(16);
  });

  it('2.0.2/2.1: the signing key is Session.SessionKey; no cipher keys', () => {
    for (const dialect of [Dialect.SMB202, Dialect.SMB210]) {
      const k = deriveSessionKeys({ dialect, sessionKey: ANATOMY_30.sessionKey });
      expect(h(k.signingKey)).toBe(h(ANATOMY_30.sessionKey));
      expect(h(k.applicationKey)).toBe(h(ANATOMY_30.sessionKey));
      expect(k.encryptionKey).toBeNull();
      expect(k.decryptionKey).toBeNull();
    }
  });

  it('Session.SessionKey is the first 16 bytes, right-padded with zeros', () => {
    expect(h(sessionKeyOf(hex('0102')))).toBe('01020000000000000000000000000000');
    expect(h(sessionKeyOf(hex('000102030405060708090a0b0c0d0e0f1011')))).toBe('000102030405060708090A0B0C0D0E0F');
  });

  it('refuses misuse: unknown dialect, 3.1.1 without a 64-byte preauth hash, a cipher for 2.x, AES-256 for 3.0', () => {
    expect(() => deriveSessionKeys({ dialect: 0x0301, sessionKey: ANATOMY_30.sessionKey })).toThrow(/assertion/);
    expect(() => deriveSessionKeys({ dialect: Dialect.SMB311, sessionKey: ANATOMY_30.sessionKey })).toThrow(/assertion/);
    expect(() =>
      deriveSessionKeys({ dialect: Dialect.SMB311, sessionKey: ANATOMY_30.sessionKey, preauthHash: Buffer.alloc(32) }),
    ).toThrow(/assertion/);
    expect(() =>
      deriveSessionKeys({ dialect: Dialect.SMB311, sessionKey: ANATOMY_30.sessionKey, preauthHash: Buffer.alloc(64), cipherId: 5 }),
    ).toThrow(/assertion/);
    expect(() => deriveSessionKeys({ dialect: Dialect.SMB210, sessionKey: ANATOMY_30.sessionKey, cipherId: 1 })).toThrow(/assertion/);
    expect(() => deriveSessionKeys({ dialect: Dialect.SMB300, sessionKey: ANATOMY_30.sessionKey, cipherId: 4 })).toThrow(/assertion/);
  });
});
