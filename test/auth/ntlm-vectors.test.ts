// MS-NLMP 4.2 worked examples (4.2.1 common values, 4.2.4 NTLMv2) and primitive test vectors.
import { describe, expect, it } from 'vitest';
import { hmacMd5, legacyNative, md4, md4Ts, Rc4, rc4Ts } from '../../src/auth/legacy.js';
import {
  lmv2Response,
  NtlmSessionSecurity,
  ntowfv1,
  ntowfv2,
  ntProofStr,
  rc4k,
  sealKey,
  sessionBaseKeyV2,
  signKey,
  upcase,
} from '../../src/auth/ntlm-crypto.js';
import { NtlmServer } from '../../src/auth/ntlm-server.js';
import { MemoryCredentialStore } from '../../src/auth/credential-store.js';
import {
  AvId,
  decodeAuthenticateMessage,
  decodeAvPairs,
  decodeChallengeMessage,
  decodeNtlmv2ClientChallenge,
  encodeAuthenticateMessage,
  encodeAvPairs,
  encodeChallengeMessage,
  encodeNegotiateMessage,
  NegotiateFlags,
} from '../../src/protocol/ntlm.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const u16 = (s: string): Buffer => Buffer.from(s, 'utf16le');

// MS-NLMP 4.2.1 Common Values
const USER = 'User';
const DOMAIN = 'Domain';
const PASSWORD = 'Password';
const RANDOM_SESSION_KEY = Buffer.alloc(16, 0x55);
const TIME = 0n;
const CLIENT_CHALLENGE = Buffer.alloc(8, 0xaa);
const SERVER_CHALLENGE = hex('0123456789abcdef');

// MS-NLMP 4.2.4.3: CHALLENGE_MESSAGE (104 bytes) and AUTHENTICATE_MESSAGE (232 bytes).
const CHALLENGE_MESSAGE = hex(`
  4e544c4d53535000 02000000 0c000c00 38000000 33828ae2 0123456789abcdef 0000000000000000
  24002400 44000000 06007017 0000000f 530065007200760065007200
  02000c0044006f006d00610069006e00 01000c005300650072007600650072 00 00000000`);
const AUTHENTICATE_MESSAGE = hex(`
  4e544c4d53535000 03000000 18001800 6c000000 54005400 84000000 0c000c00 48000000
  08000800 54000000 10001000 5c000000 10001000 d8000000 358288e2
  0501280a0000000f 44006f006d00610069006e00 5500730065007200 43004f004d0050005500540045005200
  86c35097ac9cec102554764a57cccc19 aaaaaaaaaaaaaaaa
  68cd0ab851e51c96aabc927bebef6a1c 0101000000000000 0000000000000000 aaaaaaaaaaaaaaaa 00000000
  02000c0044006f006d00610069006e00 01000c005300650072007600650072 00 0000000000000000
  c5dad2544fc9799094ce1c e90bc9d03e`);
const TARGET_INFO = hex('02000c0044006f006d00610069006e00 01000c00530065007200760065007200 00000000');

describe('primitives', () => {
  it('MD4 matches the RFC 1320 A.5 test suite (TypeScript and md4())', () => {
    const suite: [string, string][] = [
      ['', '31d6cfe0d16ae931b73c59d7e0c089c0'],
      ['a', 'bde52cb31de33e46245e05fbdbd6fb24'],
      ['abc', 'a448017aaf21d8525fc10ae87aa6729d'],
      ['message digest', 'd9130a8164549fe818874806e1c7014b'],
      ['abcdefghijklmnopqrstuvwxyz', 'd79e1c308aa5bbcdeea8ed63df412da9'],
      ['ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789', '043f8582f241db351ce627e153e7f0e4'],
      ['1234567890'.repeat(8), 'e33b4ddc9c38f2199c3e7b164fcc0536'],
    ];
    for (const [input, digest] of suite) {
      expect(md4Ts(Buffer.from(input, 'latin1')).toString('hex')).toBe(digest);
      expect(md4(Buffer.from(input, 'latin1')).toString('hex')).toBe(digest);
    }
    expect(typeof legacyNative.md4).toBe('boolean');
  });

  it('MD4 is right at every padding boundary (digests from `openssl dgst -md4 -provider legacy`)', () => {
    const expected: Record<number, string> = {
      55: 'c889c81dd86c4d2e025778944ea02881',
      56: 'd5f9a9e9257077a5f08b0b92f348b0ad',
      57: '872097e6f78e3b53f890459d03bc6fb7',
      63: '7ea3da77432d44c323671097d1348fc8',
      64: '52f5076fabd22680234a3fa9f9dc5732',
      65: '330e377bf231f3cacfecc2c182fe7e5b',
      119: 'e65dd227ccef97fa1d34d70189120f76',
      120: 'b03ddbd470b47c013e0c7ab2ddd763db',
    };
    for (const [n, digest] of Object.entries(expected)) {
      expect(md4Ts(Buffer.alloc(Number(n), 0x61)).toString('hex')).toBe(digest);
      expect(md4(Buffer.alloc(Number(n), 0x61)).toString('hex')).toBe(digest);
    }
  });

  it('RC4 matches RFC 6229 (40-bit and 128-bit keys) and keeps its state across update()', () => {
    expect(rc4Ts(hex('0102030405'), Buffer.alloc(8)).toString('hex')).toBe('b2396305f03dc027');
    expect(rc4k(hex('0102030405'), Buffer.alloc(8)).toString('hex')).toBe('b2396305f03dc027');
    const k128 = hex('0102030405060708090a0b0c0d0e0f10');
    expect(rc4k(k128, Buffer.alloc(8)).toString('hex')).toBe('9ac7cc9a609d1ef7');
    const h = new Rc4(k128);
    const a = h.update(Buffer.alloc(3));
    const b = h.update(Buffer.alloc(5));
    expect(Buffer.concat([a, b]).toString('hex')).toBe('9ac7cc9a609d1ef7');
  });

  it('HMAC-MD5 matches RFC 2202 test case 1', () => {
    expect(hmacMd5(Buffer.alloc(16, 0x0b), Buffer.from('Hi There')).toString('hex')).toBe('9294727a3638bb1c13f48ef8158bfc9d');
  });

  it('upcase keeps length like RtlUpcaseUnicodeString', () => {
    expect(upcase('user')).toBe('USER');
    expect(upcase('straße')).toBe('STRAßE');
    expect(upcase('élan')).toBe('ÉLAN');
  });
});

describe('MS-NLMP 4.2.4 NTLMv2 authentication', () => {
  it('4.2.2.1.2 NTOWFv1("Password")', () => {
    expect(ntowfv1(PASSWORD).toString('hex')).toBe('a4f49c406510bdcab6824ee7c30fd852');
  });

  it('4.2.4.1.1 NTOWFv2 and LMOWFv2', () => {
    const key = ntowfv2(ntowfv1(PASSWORD), USER, DOMAIN);
    expect(key.toString('hex')).toBe('0c868a403bfd7a93a3001ef22ef02e3f');
    // Only the user name is upper-cased.
    expect(ntowfv2(ntowfv1(PASSWORD), 'user', DOMAIN).equals(key)).toBe(true);
    expect(ntowfv2(ntowfv1(PASSWORD), USER, 'DOMAIN').equals(key)).toBe(false);
  });

  it('4.2.4.1.3 temp, 4.2.4.2.2 NTProofStr, 4.2.4.1.2 SessionBaseKey, 4.2.4.2.1 LMv2, 4.2.4.2.3 key', () => {
    const key = ntowfv2(ntowfv1(PASSWORD), USER, DOMAIN);
    const temp = Buffer.concat([hex('0101000000000000'), Buffer.alloc(8), CLIENT_CHALLENGE, Buffer.alloc(4), TARGET_INFO, Buffer.alloc(4)]);
    // temp is exactly the NtChallengeResponse after NTProofStr in 4.2.4.3 (offsets 0x94..0xd8).
    expect(temp.equals(AUTHENTICATE_MESSAGE.subarray(0x94, 0xd8))).toBe(true);
    const proof = ntProofStr(key, SERVER_CHALLENGE, temp);
    expect(proof.toString('hex')).toBe('68cd0ab851e51c96aabc927bebef6a1c');
    const sbk = sessionBaseKeyV2(key, proof);
    expect(sbk.toString('hex')).toBe('8de40ccadbc14a82f15cb0ad0de95ca3');
    expect(lmv2Response(key, SERVER_CHALLENGE, CLIENT_CHALLENGE).toString('hex')).toBe('86c35097ac9cec102554764a57cccc19aaaaaaaaaaaaaaaa');
    expect(rc4k(sbk, RANDOM_SESSION_KEY).toString('hex')).toBe('c5dad2544fc9799094ce1ce90bc9d03e');
  });

  it('4.2.4.3 CHALLENGE_MESSAGE decodes and re-encodes byte for byte', () => {
    const m = decodeChallengeMessage(CHALLENGE_MESSAGE);
    expect(m.NegotiateFlags).toBe(0xe28a8233);
    expect(m.ServerChallenge.equals(SERVER_CHALLENGE)).toBe(true);
    expect(m.TargetName.toString('utf16le')).toBe('Server');
    expect(m.TargetInfo.equals(TARGET_INFO)).toBe(true);
    expect(m.Version).toEqual({ ProductMajorVersion: 6, ProductMinorVersion: 0, ProductBuild: 6000, NTLMRevisionCurrent: 15 });
    const pairs = decodeAvPairs(m.TargetInfo);
    expect(pairs.map((p) => [p.AvId, p.Value.toString('utf16le')])).toEqual([
      [AvId.MsvAvNbDomainName, 'Domain'],
      [AvId.MsvAvNbComputerName, 'Server'],
    ]);
    expect(encodeAvPairs(pairs).equals(TARGET_INFO)).toBe(true);
    expect(encodeChallengeMessage(m).equals(CHALLENGE_MESSAGE)).toBe(true);
  });

  it('4.2.4.3 AUTHENTICATE_MESSAGE decodes (no MIC: payload at 72) and re-encodes byte for byte', () => {
    const m = decodeAuthenticateMessage(AUTHENTICATE_MESSAGE);
    expect(m.NegotiateFlags).toBe(0xe2888235);
    expect(m.UserName).toBe('User');
    expect(m.DomainName).toBe('Domain');
    expect(m.Workstation).toBe('COMPUTER');
    expect(m.MIC).toBeUndefined();
    expect(m.Version).toEqual({ ProductMajorVersion: 5, ProductMinorVersion: 1, ProductBuild: 2600, NTLMRevisionCurrent: 15 });
    expect(m.EncryptedRandomSessionKey.toString('hex')).toBe('c5dad2544fc9799094ce1ce90bc9d03e');
    const blob = decodeNtlmv2ClientChallenge(m.NtChallengeResponse.subarray(16));
    expect(blob.TimeStamp).toBe(TIME);
    expect(blob.ChallengeFromClient.equals(CLIENT_CHALLENGE)).toBe(true);
    expect(blob.AvPairs.length).toBe(2);
    const again = encodeAuthenticateMessage({
      NegotiateFlags: m.NegotiateFlags,
      LmChallengeResponse: m.LmChallengeResponse,
      NtChallengeResponse: m.NtChallengeResponse,
      DomainName: u16(m.DomainName),
      UserName: u16(m.UserName),
      Workstation: u16(m.Workstation),
      EncryptedRandomSessionKey: m.EncryptedRandomSessionKey,
      Version: m.Version!,
    });
    expect(again.equals(AUTHENTICATE_MESSAGE)).toBe(true);
  });

  it('NtlmServer accepts the 4.2.4.3 AUTHENTICATE_MESSAGE and exports RandomSessionKey', async () => {
    const store = new MemoryCredentialStore();
    store.add(USER, PASSWORD, 1000);
    const server = new NtlmServer({
      store,
      netbiosDomain: 'Domain',
      netbiosComputer: 'Server',
      dnsDomain: '',
      dnsComputer: '',
      allowGuest: false,
      allowAnonymous: false,
      // FILETIME 0: the example's client timestamp is 0, so put the server clock there.
      clock: { nowMs: () => -11_644_473_600_000, monotonicMs: () => 0 },
      random: { bytes: (n) => SERVER_CHALLENGE.subarray(0, n) },
    });
    server.challenge(encodeNegotiateMessage({ NegotiateFlags: 0xe28a8233 }));
    const r = await server.authenticate(AUTHENTICATE_MESSAGE);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.user).toBe('User');
    expect(r.domain).toBe('Domain');
    expect(r.workstation).toBe('COMPUTER');
    expect(r.sessionKey.equals(RANDOM_SESSION_KEY)).toBe(true);
    expect(r.sid).toMatch(/^S-1-5-21-\d+-\d+-\d+-1000$/);
  });

  it('the same message is refused with a different password, and as expired with a real clock', async () => {
    const mk = (password: string, nowMs: number): NtlmServer => {
      const store = new MemoryCredentialStore();
      store.add(USER, password);
      return new NtlmServer({
        store,
        netbiosDomain: 'Domain',
        netbiosComputer: 'Server',
        dnsDomain: '',
        dnsComputer: '',
        allowGuest: false,
        allowAnonymous: false,
        clock: { nowMs: () => nowMs, monotonicMs: () => 0 },
        random: { bytes: (n) => SERVER_CHALLENGE.subarray(0, n) },
      });
    };
    const s1 = mk('password', -11_644_473_600_000);
    s1.challenge(encodeNegotiateMessage({ NegotiateFlags: 0xe28a8233 }));
    expect(await s1.authenticate(AUTHENTICATE_MESSAGE)).toEqual({ ok: false, reason: 'bad-password' });
    const s2 = mk(PASSWORD, Date.UTC(2024, 0, 1));
    s2.challenge(encodeNegotiateMessage({ NegotiateFlags: 0xe28a8233 }));
    expect(await s2.authenticate(AUTHENTICATE_MESSAGE)).toEqual({ ok: false, reason: 'expired-timestamp' });
  });

  it('4.2.4.4 GSS_WrapEx: SEALKEY, SIGNKEY, sealed data and signature', () => {
    const flags = 0xe28a8233; // the 4.2.4 challenge flags: KEY_EXCH, 128, ESS
    expect(sealKey(RANDOM_SESSION_KEY, flags, 'client-to-server').toString('hex')).toBe('59f600973cc4960a25480a7c196e4c58');
    expect(signKey(RANDOM_SESSION_KEY, 'client-to-server').toString('hex')).toBe('4788dc861b4782f35d43fd98fe1a2d39');
    const sec = new NtlmSessionSecurity(RANDOM_SESSION_KEY, flags, 'client-to-server');
    const { sealed, signature } = sec.seal(u16('Plaintext'));
    expect(sealed.toString('hex')).toBe('54e50165bf1936dc996020c1811b0f06fb5f');
    expect(signature.toString('hex')).toBe('010000007fb38ec5c55d497600000000');
    // The receiver verifies with a fresh object for the same direction (sealing then advances its handle too).
    const rx = new NtlmSessionSecurity(RANDOM_SESSION_KEY, flags, 'client-to-server');
    rx['handle'].update(sealed); // unseal advances the shared RC4 handle exactly as sealing did
    expect(rx.verify(u16('Plaintext'), signature)).toBe(true);
  });

  it('flag constants match MS-NLMP 2.2.2.5 (the 4.2.4 challenge flags decompose exactly)', () => {
    const F = NegotiateFlags;
    const parts =
      F.NTLMSSP_NEGOTIATE_KEY_EXCH |
      F.NTLMSSP_NEGOTIATE_56 |
      F.NTLMSSP_NEGOTIATE_128 |
      F.NTLMSSP_NEGOTIATE_VERSION |
      F.NTLMSSP_NEGOTIATE_TARGET_INFO |
      F.NTLMSSP_NEGOTIATE_EXTENDED_SESSIONSECURITY |
      F.NTLMSSP_TARGET_TYPE_SERVER |
      F.NTLMSSP_NEGOTIATE_ALWAYS_SIGN |
      F.NTLMSSP_NEGOTIATE_NTLM |
      F.NTLMSSP_NEGOTIATE_SEAL |
      F.NTLMSSP_NEGOTIATE_SIGN |
      F.NTLM_NEGOTIATE_OEM |
      F.NTLMSSP_NEGOTIATE_UNICODE;
    expect(parts >>> 0).toBe(0xe28a8233);
  });
});
