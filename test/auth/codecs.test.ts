// NTLMSSP and SPNEGO codecs: golden decodes (a real smbclient capture), round trips, strictness, and
// fuzzing (random bytes and mutated valid messages must only ever raise MalformedError).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MalformedError } from '../../src/base/errors.js';
import { MemoryCredentialStore } from '../../src/auth/credential-store.js';
import { NtlmServer } from '../../src/auth/ntlm-server.js';
import { SpnegoServer } from '../../src/auth/spnego-server.js';
import {
  AvId,
  decodeAuthenticateMessage,
  decodeAvPairs,
  decodeChallengeMessage,
  decodeNegotiateMessage,
  decodeNtlmv2ClientChallenge,
  encodeAvPairs,
  encodeNegotiateMessage,
  findAvPair,
  MsvAvFlagsBits,
  NegotiateFlags,
  ntlmMessageType,
} from '../../src/protocol/ntlm.js';
import {
  ContextFlags,
  decodeNegTokenInit,
  decodeNegTokenResp,
  decodeOid,
  decodeSpnegoToken,
  encodeMechTypeList,
  encodeNegTokenInit,
  encodeNegTokenInit2,
  encodeNegTokenResp,
  encodeOidContent,
  isRawNtlmssp,
  NegState,
  OID_KRB5,
  OID_MS_KRB5,
  OID_NEGOEX,
  OID_NTLMSSP,
  OID_SPNEGO,
} from '../../src/protocol/spnego.js';
import { SMBCLIENT_NEG_TOKEN_INIT, SMBCLIENT_NEG_TOKEN_RESP } from './smbclient-capture.js';
import { NtlmTestClient } from './ntlm-test-client.js';

const hex = (s: string): Buffer => Buffer.from(s, 'hex');
const INIT = hex(SMBCLIENT_NEG_TOKEN_INIT);
const RESP = hex(SMBCLIENT_NEG_TOKEN_RESP);

/** Runs fn and accepts only a normal return or MalformedError. */
function onlyMalformed(fn: () => unknown): void {
  try {
    fn();
  } catch (e) {
    if (!(e instanceof MalformedError)) throw e;
  }
}

const mutations = (seeds: Buffer[]): fc.Arbitrary<Buffer> =>
  fc
    .tuple(
      fc.constantFrom(...seeds),
      fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 6 }),
      fc.option(fc.nat(), { nil: undefined }),
    )
    .map(([seed, edits, cut]) => {
      const b = Buffer.from(seed);
      for (const [at, v] of edits) b[at % b.length] = v;
      return cut === undefined ? b : b.subarray(0, cut % (b.length + 1));
    });

describe('smbclient 4.17 capture', () => {
  it('decodes the NegTokenInit and its NTLM NEGOTIATE', () => {
    const t = decodeSpnegoToken(INIT);
    expect(t.kind).toBe('init');
    if (t.kind !== 'init') return;
    expect(t.token.mechTypes).toEqual([OID_NTLMSSP]);
    expect(t.token.mechTypesDer.toString('hex')).toBe('300c060a2b06010401823702020a');
    expect(t.token.mechListMIC).toBeUndefined();
    const neg = decodeNegotiateMessage(t.token.mechToken!);
    expect(neg.NegotiateFlags).toBe(0x62088215);
    expect(neg.NegotiateFlags & NegotiateFlags.NTLMSSP_NEGOTIATE_KEY_EXCH).not.toBe(0);
    expect(neg.Version).toEqual({ ProductMajorVersion: 6, ProductMinorVersion: 1, ProductBuild: 0, NTLMRevisionCurrent: 15 });
    // The token is a view: no copy of the input.
    expect(t.token.mechToken!.buffer).toBe(INIT.buffer);
  });

  it('decodes the NegTokenResp, its AUTHENTICATE (with MIC) and the NTLMv2 client challenge', () => {
    const r = decodeNegTokenResp(RESP);
    expect(r.negState).toBeUndefined();
    expect(r.mechListMIC!.length).toBe(16);
    const a = decodeAuthenticateMessage(r.responseToken!);
    expect(a.UserName).toBe('alice');
    expect(a.DomainName).toBe('WORKGROUP');
    expect(a.Workstation).toBe('VM');
    expect(a.MIC).toBeDefined();
    expect(a.micOffset).toBe(72);
    expect(a.LmChallengeResponse.equals(Buffer.alloc(24))).toBe(true);
    const blob = decodeNtlmv2ClientChallenge(a.NtChallengeResponse.subarray(16));
    expect(blob.RespType).toBe(1);
    const flags = findAvPair(blob.AvPairs, AvId.MsvAvFlags)!.Value.readUInt32LE(0);
    expect(flags & MsvAvFlagsBits.MicPresent).toBe(MsvAvFlagsBits.MicPresent);
    expect(findAvPair(blob.AvPairs, AvId.MsvAvTargetName)!.Value.toString('utf16le')).toBe('cifs/127.0.0.1');
    expect(findAvPair(blob.AvPairs, AvId.MsvAvNbComputerName)!.Value.toString('utf16le')).toBe('NODE1');
  });

  it('replays through SpnegoServer: NTLM MIC and mechListMIC verify, wrong password does not', async () => {
    const a = decodeAuthenticateMessage(decodeNegTokenResp(RESP).responseToken!);
    const ts = decodeNtlmv2ClientChallenge(a.NtChallengeResponse.subarray(16)).TimeStamp;
    const nowMs = Number((ts - 116444736000000000n) / 10_000n);
    const run = async (password: string) => {
      const store = new MemoryCredentialStore();
      store.add('alice', password, 1001);
      const server = new SpnegoServer({
        store,
        netbiosDomain: 'TESSERA',
        netbiosComputer: 'NODE1',
        dnsDomain: 'tessera.test',
        dnsComputer: 'node1.tessera.test',
        allowGuest: false,
        allowAnonymous: false,
        clock: { nowMs: () => nowMs, monotonicMs: () => 0 },
        random: { bytes: (n) => Buffer.alloc(n, 0x11) },
      });
      const first = await server.step(INIT);
      expect(first.status).toBe('continue');
      return server.step(RESP);
    };
    const ok = await run('Secret#1');
    expect(ok.status).toBe('done');
    if (ok.status !== 'done') return;
    expect(ok.result.user).toBe('alice');
    expect(ok.result.sessionKey.toString('hex')).toBe('f75450e9e399c3e391f199d2407a4520');
    const resp = decodeNegTokenResp(ok.token);
    expect(resp.negState).toBe(NegState.acceptCompleted);
    expect(resp.mechListMIC!.length).toBe(16);
    expect(await run('Secret#2')).toMatchObject({ status: 'failed', reason: 'bad-password' });
  });
});

describe('SPNEGO codec', () => {
  it('OIDs round trip, including multi-byte arcs', () => {
    for (const oid of [OID_SPNEGO, OID_NTLMSSP, OID_KRB5, OID_MS_KRB5, OID_NEGOEX, '2.999.1', '0.0']) {
      expect(decodeOid(encodeOidContent(oid))).toBe(oid);
    }
    expect(encodeOidContent(OID_NTLMSSP).toString('hex')).toBe('2b06010401823702020a');
    expect(encodeOidContent(OID_KRB5).toString('hex')).toBe('2a864886f712010202');
    expect(() => decodeOid(hex('2b8001'))).toThrow(MalformedError); // leading 0x80 in an arc
    expect(() => decodeOid(hex('2b86'))).toThrow(MalformedError); // ends inside an arc
    expect(() => decodeOid(Buffer.alloc(0))).toThrow(MalformedError);
  });

  it('NegTokenInit with every field round trips; NegTokenInit2 decodes its negHints', () => {
    const enc = encodeNegTokenInit({
      mechTypes: [OID_MS_KRB5, OID_NTLMSSP],
      reqFlags: ContextFlags.mutualFlag | ContextFlags.integFlag,
      mechToken: Buffer.from('tok'),
      mechListMIC: Buffer.from('mic'),
    });
    const d = decodeNegTokenInit(enc);
    expect(d.mechTypes).toEqual([OID_MS_KRB5, OID_NTLMSSP]);
    expect(d.reqFlags).toBe(ContextFlags.mutualFlag | ContextFlags.integFlag);
    expect(d.mechToken!.toString()).toBe('tok');
    expect(d.mechListMIC!.toString()).toBe('mic');
    expect(d.mechTypesDer.equals(encodeMechTypeList([OID_MS_KRB5, OID_NTLMSSP]))).toBe(true);
    const i2 = decodeNegTokenInit(encodeNegTokenInit2([OID_NTLMSSP, OID_KRB5], 'hint'));
    expect(i2.negHints).toEqual({ hintName: 'hint' });
    expect(i2.mechTypes).toEqual([OID_NTLMSSP, OID_KRB5]);
  });

  it('NegTokenResp encodings are exact DER', () => {
    expect(encodeNegTokenResp({ negState: NegState.reject }).toString('hex')).toBe('a1073005a0030a0102');
    expect(encodeNegTokenResp({ negState: NegState.acceptIncomplete, supportedMech: OID_NTLMSSP }).toString('hex')).toBe(
      'a1153013a0030a0101a10c060a2b06010401823702020a',
    );
    const big = encodeNegTokenResp({ negState: NegState.acceptCompleted, responseToken: Buffer.alloc(300, 7), mechListMIC: Buffer.alloc(16, 9) });
    const d = decodeNegTokenResp(big);
    expect(d).toMatchObject({ negState: 0 });
    expect(d.responseToken!.equals(Buffer.alloc(300, 7))).toBe(true);
    expect(d.mechListMIC!.equals(Buffer.alloc(16, 9))).toBe(true);
  });

  it('rejects structural violations', () => {
    const resp = encodeNegTokenResp({ negState: 1, responseToken: Buffer.from('abc') });
    expect(() => decodeNegTokenResp(Buffer.concat([resp, Buffer.from([0])]))).toThrow(MalformedError); // trailing
    expect(() => decodeNegTokenResp(hex('a180'))).toThrow(MalformedError); // indefinite length
    expect(() => decodeNegTokenResp(hex('a185ffffffffff'))).toThrow(MalformedError); // 5 length octets
    expect(() => decodeNegTokenResp(hex('a10a3008a2020400a0020a01'))).toThrow(MalformedError); // [2] before [0]
    expect(() => decodeNegTokenResp(hex('a1073005a0030a0104'))).toThrow(MalformedError); // negState 4
    expect(() => decodeNegTokenInit(hex('a0053003a10100'))).toThrow(MalformedError); // no mechTypes
    expect(() => decodeNegTokenInit(hex('600a06062b0601050503a000'))).toThrow(MalformedError); // not the SPNEGO OID
    expect(() => decodeSpnegoToken(Buffer.alloc(0))).toThrow(MalformedError);
  });

  it('accepts non-minimal (BER long-form) lengths', () => {
    expect(decodeNegTokenResp(hex('a18108308105a0030a0102')).negState).toBe(NegState.reject);
  });

  it('detects raw NTLMSSP', () => {
    expect(isRawNtlmssp(encodeNegotiateMessage({ NegotiateFlags: 1 }))).toBe(true);
    expect(isRawNtlmssp(INIT)).toBe(false);
    expect(decodeSpnegoToken(encodeNegotiateMessage({ NegotiateFlags: 1 })).kind).toBe('ntlmssp');
  });

  it('fuzz: random bytes and mutated tokens raise only MalformedError', () => {
    const seeds = [INIT, RESP, encodeNegTokenInit2(), encodeNegTokenResp({ negState: 1, supportedMech: OID_NTLMSSP, responseToken: Buffer.alloc(40, 1) })];
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a)), mutations(seeds)), (b) => {
        onlyMalformed(() => decodeSpnegoToken(b));
        onlyMalformed(() => decodeNegTokenInit(b));
        onlyMalformed(() => decodeNegTokenResp(b));
      }),
      { numRuns: 3000 },
    );
  });

  it('fuzz: prefixes of valid tokens never decode past their end', () => {
    for (const seed of [INIT, RESP]) {
      for (let n = 0; n < seed.length; n++) {
        expect(() => decodeSpnegoToken(seed.subarray(0, n))).toThrow(MalformedError);
      }
    }
  });
});

describe('NTLMSSP codec', () => {
  const client = new NtlmTestClient({ user: 'u', password: 'p', domain: 'd' });
  const negotiate = client.negotiate();
  const ntlmServer = new NtlmServer({
    store: new MemoryCredentialStore(),
    netbiosDomain: 'D',
    netbiosComputer: 'S',
    dnsDomain: 'd.test',
    dnsComputer: 's.d.test',
    allowGuest: false,
    allowAnonymous: false,
    clock: { nowMs: () => 1.7e12, monotonicMs: () => 0 },
    random: { bytes: (n) => Buffer.alloc(n, 3) },
  });
  const challenge = ntlmServer.challenge(negotiate);
  const authenticate = client.authenticate(challenge);

  it('messageType sniffing', () => {
    expect(ntlmMessageType(negotiate)).toBe(1);
    expect(ntlmMessageType(challenge)).toBe(2);
    expect(ntlmMessageType(authenticate)).toBe(3);
    expect(ntlmMessageType(Buffer.from('NTLMSSP'))).toBeUndefined();
  });

  it('validates every field range', () => {
    const bad = Buffer.from(authenticate);
    bad.writeUInt32LE(authenticate.length - 2, 24); // NtChallengeResponse offset near the end
    expect(() => decodeAuthenticateMessage(bad)).toThrow(MalformedError);
    const overlap = Buffer.from(authenticate);
    overlap.writeUInt32LE(8, 32); // DomainName inside the header
    expect(() => decodeAuthenticateMessage(overlap)).toThrow(MalformedError);
    const odd = Buffer.from(authenticate);
    odd.writeUInt16LE(odd.readUInt16LE(36) + 1, 36); // odd-length Unicode UserName
    expect(() => decodeAuthenticateMessage(odd)).toThrow(MalformedError);
    expect(() => decodeNegotiateMessage(Buffer.from('NTLMSSP\0\x02\0\0\0\0\0\0\0', 'latin1'))).toThrow(MalformedError);
    expect(() => decodeAvPairs(hex('0200ff00'))).toThrow(MalformedError);
    expect(() => decodeAvPairs(hex('02000000'))).toThrow(MalformedError); // no EOL
    expect(decodeAvPairs(hex('02000000'), false)).toHaveLength(1);
  });

  it('a 16-byte legacy NEGOTIATE is accepted; AV pairs round trip', () => {
    const legacy = Buffer.from(negotiate.subarray(0, 16));
    expect(decodeNegotiateMessage(legacy).NegotiateFlags).toBe(negotiate.readUInt32LE(12));
    const pairs = [
      { AvId: AvId.MsvAvNbComputerName, Value: Buffer.from('X', 'utf16le') },
      { AvId: AvId.MsvAvFlags, Value: hex('02000000') },
    ];
    const enc = encodeAvPairs(pairs);
    expect(enc.toString('hex')).toBe('0100020058000600040002000000' + '00000000');
    expect(decodeAvPairs(enc)).toEqual(pairs);
    expect(decodeChallengeMessage(challenge).ServerChallenge.equals(Buffer.alloc(8, 3))).toBe(true);
  });

  it('fuzz: random bytes and mutated messages raise only MalformedError', () => {
    const seeds = [negotiate, challenge, authenticate];
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 200 }).map((a) => Buffer.concat([Buffer.from('NTLMSSP\0', 'latin1'), Buffer.from(a)])),
          fc.uint8Array({ maxLength: 200 }).map((a) => Buffer.from(a)),
          mutations(seeds),
        ),
        (b) => {
          onlyMalformed(() => decodeNegotiateMessage(b));
          onlyMalformed(() => decodeChallengeMessage(b));
          onlyMalformed(() => decodeAuthenticateMessage(b));
          onlyMalformed(() => decodeAvPairs(b));
          onlyMalformed(() => decodeNtlmv2ClientChallenge(b));
        },
      ),
      { numRuns: 3000 },
    );
  });

  it('fuzz: the servers never throw on mutated client tokens', async () => {
    const store = new MemoryCredentialStore();
    store.add('u', 'p');
    const opts = {
      store,
      netbiosDomain: 'D',
      netbiosComputer: 'S',
      dnsDomain: 'd.test',
      dnsComputer: 's.d.test',
      allowGuest: true,
      allowAnonymous: true,
      clock: { nowMs: () => 1.7e12, monotonicMs: () => 0 },
      random: { bytes: (n: number) => Buffer.alloc(n, 3) },
    };
    await fc.assert(
      fc.asyncProperty(mutations([authenticate]), mutations([INIT, negotiate]), async (auth, first) => {
        const s = new NtlmServer(opts);
        s.challenge(negotiate);
        const r = await s.authenticate(auth);
        expect(typeof r.ok).toBe('boolean');
        const sp = new SpnegoServer(opts);
        const a = await sp.step(first);
        expect(['continue', 'failed']).toContain(a.status);
        const b = await sp.step(encodeNegTokenResp({ responseToken: auth }));
        expect(['continue', 'done', 'failed']).toContain(b.status);
      }),
      { numRuns: 500 },
    );
  });
});
