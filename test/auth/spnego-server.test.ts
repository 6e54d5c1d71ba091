// A simulated client authenticating against NtlmServer through SpnegoServer, all flows.
import { describe, expect, it } from 'vitest';
import { MemoryCredentialStore } from '../../src/auth/credential-store.js';
import { machineSidForName } from '../../src/auth/sid.js';
import { SpnegoServer, type SpnegoStep } from '../../src/auth/spnego-server.js';
import type { NtlmServerOptions } from '../../src/auth/ntlm-server.js';
import { ntlmMessageType, NegotiateFlags } from '../../src/protocol/ntlm.js';
import {
  decodeNegTokenInit,
  decodeNegTokenResp,
  encodeMechTypeList,
  encodeNegTokenInit,
  encodeNegTokenResp,
  NegState,
  OID_KRB5,
  OID_MS_KRB5,
  OID_NEGOEX,
  OID_NTLMSSP,
} from '../../src/protocol/spnego.js';
import { NtlmTestClient, type TestClientOptions } from './ntlm-test-client.js';

const NOW_MS = Date.UTC(2025, 5, 1, 12, 0, 0);

function serverOptions(over: Partial<NtlmServerOptions> = {}): NtlmServerOptions {
  const store = new MemoryCredentialStore();
  store.add('alice', 'Secret#1', 1001);
  store.add('bob', 'hunter2', 1002);
  store.setDisabled('bob', true);
  let n = 0;
  return {
    store,
    netbiosDomain: 'TESSERA',
    netbiosComputer: 'NODE1',
    dnsDomain: 'tessera.test',
    dnsComputer: 'node1.tessera.test',
    allowGuest: false,
    allowAnonymous: false,
    clock: { nowMs: () => NOW_MS, monotonicMs: () => 0 },
    random: { bytes: (len) => Buffer.alloc(len, ++n) },
    ...over,
  };
}

const ALICE: TestClientOptions = { user: 'ALICE', password: 'Secret#1', domain: 'WORKGROUP' };
const NTLM_ONLY = [OID_NTLMSSP];

function expectContinue(s: SpnegoStep): Buffer {
  if (s.status !== 'continue') throw new Error(`expected continue, got ${JSON.stringify(s)}`);
  return s.token;
}

/** The usual Windows/Samba exchange: NegTokenInit(NTLM NEGOTIATE) -> CHALLENGE -> AUTHENTICATE + mechListMIC. */
async function spnegoLogon(
  client: NtlmTestClient,
  server: SpnegoServer,
  o: { mechTypes?: string[]; sendMechListMic?: boolean; tamperMechListMic?: boolean } = {},
): Promise<{ last: SpnegoStep; mechList: Buffer }> {
  const mechTypes = o.mechTypes ?? NTLM_ONLY;
  const mechList = encodeMechTypeList(mechTypes);
  const first = await server.step(encodeNegTokenInit({ mechTypes, mechToken: client.negotiate() }));
  const r1 = decodeNegTokenResp(expectContinue(first));
  expect(r1.negState).toBe(NegState.acceptIncomplete);
  expect(r1.supportedMech).toBe(OID_NTLMSSP);
  expect(ntlmMessageType(r1.responseToken!)).toBe(2);
  const auth = client.authenticate(r1.responseToken!);
  let mic: Buffer | undefined;
  if (o.sendMechListMic ?? true) {
    mic = client.signMechList(mechList);
    if (o.tamperMechListMic) mic[5] = mic[5]! ^ 0x80;
  }
  const last = await server.step(encodeNegTokenResp({ responseToken: auth, ...(mic ? { mechListMIC: mic } : {}) }));
  return { last, mechList };
}

describe('SpnegoServer with a simulated NTLMv2 client', () => {
  it('initialToken is the MS-SPNG NegTokenInit2 hint, byte for byte', () => {
    const t = new SpnegoServer(serverOptions()).initialToken();
    expect(t.toString('hex')).toBe(
      '604806062b0601050502a03e303ca00e300c060a2b06010401823702020aa32a3028a0261b24' +
        Buffer.from('not_defined_in_RFC4178@please_ignore').toString('hex'),
    );
    const d = decodeNegTokenInit(t);
    expect(d.mechTypes).toEqual([OID_NTLMSSP]);
    expect(d.negHints?.hintName).toBe('not_defined_in_RFC4178@please_ignore');
  });

  it('authenticates, verifies the client mechListMIC and answers accept-completed with its own', async () => {
    const server = new SpnegoServer(serverOptions());
    const client = new NtlmTestClient(ALICE);
    const { last, mechList } = await spnegoLogon(client, server);
    expect(last.status).toBe('done');
    if (last.status !== 'done') return;
    expect(last.result.user).toBe('alice'); // canonical spelling from the store
    expect(last.result.domain).toBe('WORKGROUP');
    expect(last.result.workstation).toBe('WORKSTATION');
    expect(last.result.isGuest).toBe(false);
    expect(last.result.isAnonymous).toBe(false);
    expect(last.result.sid).toBe(`${machineSidForName('NODE1')}-1001`);
    expect(last.result.sessionKey.equals(client.exportedSessionKey)).toBe(true);
    expect(last.result.sessionKey.equals(Buffer.alloc(16, 0x42))).toBe(true); // KEY_EXCH: the client's random key
    const resp = decodeNegTokenResp(last.token);
    expect(resp.negState).toBe(NegState.acceptCompleted);
    expect(resp.responseToken).toBeUndefined();
    expect(client.verifyServerMechList(mechList, resp.mechListMIC!)).toBe(true);
    expect(server.ntlmContext.micPresent).toBe(true);
  });

  it('works without KEY_EXCH (ExportedSessionKey = SessionBaseKey) and without a MIC', async () => {
    const flags = (NegotiateFlags.NTLMSSP_NEGOTIATE_UNICODE |
      NegotiateFlags.NTLMSSP_REQUEST_TARGET |
      NegotiateFlags.NTLMSSP_NEGOTIATE_SIGN |
      NegotiateFlags.NTLMSSP_NEGOTIATE_NTLM |
      NegotiateFlags.NTLMSSP_NEGOTIATE_ALWAYS_SIGN |
      NegotiateFlags.NTLMSSP_NEGOTIATE_EXTENDED_SESSIONSECURITY |
      NegotiateFlags.NTLMSSP_NEGOTIATE_128) >>> 0;
    const server = new SpnegoServer(serverOptions());
    const client = new NtlmTestClient({ ...ALICE, flags, withMic: false });
    const { last } = await spnegoLogon(client, server, { sendMechListMic: false });
    expect(last.status).toBe('done');
    if (last.status !== 'done') return;
    expect(last.result.sessionKey.equals(client.exportedSessionKey)).toBe(true);
    expect(decodeNegTokenResp(last.token)).toEqual({ negState: NegState.acceptCompleted });
  });

  it('wrong password: failed with a reject token', async () => {
    const server = new SpnegoServer(serverOptions());
    const { last } = await spnegoLogon(new NtlmTestClient({ ...ALICE, password: 'secret#1' }), server);
    expect(last.status).toBe('failed');
    if (last.status !== 'failed') return;
    expect(last.reason).toBe('bad-password');
    expect(decodeNegTokenResp(last.token!).negState).toBe(NegState.reject);
    // The exchange is over.
    expect((await server.step(encodeNegTokenResp({ responseToken: Buffer.from('x') }))).status).toBe('failed');
  });

  it('tampered NTLM MIC: mic-mismatch', async () => {
    const { last } = await spnegoLogon(new NtlmTestClient({ ...ALICE, tamperMic: true }), new SpnegoServer(serverOptions()));
    expect(last).toMatchObject({ status: 'failed', reason: 'mic-mismatch' });
  });

  it('tampered SPNEGO mechListMIC: mech-list-mic-mismatch', async () => {
    const { last } = await spnegoLogon(new NtlmTestClient(ALICE), new SpnegoServer(serverOptions()), { tamperMechListMic: true });
    expect(last).toMatchObject({ status: 'failed', reason: 'mech-list-mic-mismatch' });
  });

  it('tampering with any byte of the AUTHENTICATE message fails the logon', async () => {
    // Flip bits across the header and payload: each must be caught (proof, MIC or structure).
    const client = new NtlmTestClient(ALICE);
    for (const at of [16, 60, 61, 72, 80, 100, 140, 200]) {
      const server = new SpnegoServer(serverOptions());
      const r1 = decodeNegTokenResp(expectContinue(await server.step(encodeNegTokenInit({ mechTypes: NTLM_ONLY, mechToken: client.negotiate() }))));
      const auth = client.authenticate(r1.responseToken!);
      if (at >= auth.length) continue;
      auth[at] = auth[at]! ^ 0x01;
      const last = await server.step(encodeNegTokenResp({ responseToken: auth, mechListMIC: client.signMechList(encodeMechTypeList(NTLM_ONLY)) }));
      expect(last.status, `byte ${at}`).toBe('failed');
    }
  });

  it('unknown and disabled users are refused; unknown users become Guest when allowed', async () => {
    const unknown = await spnegoLogon(new NtlmTestClient({ ...ALICE, user: 'mallory' }), new SpnegoServer(serverOptions()));
    expect(unknown.last).toMatchObject({ status: 'failed', reason: 'no-such-user' });
    const disabled = await spnegoLogon(new NtlmTestClient({ ...ALICE, user: 'bob', password: 'hunter2' }), new SpnegoServer(serverOptions()));
    expect(disabled.last).toMatchObject({ status: 'failed', reason: 'account-disabled' });
    const guest = await spnegoLogon(new NtlmTestClient({ ...ALICE, user: 'mallory' }), new SpnegoServer(serverOptions({ allowGuest: true })));
    expect(guest.last.status).toBe('done');
    if (guest.last.status !== 'done') return;
    expect(guest.last.result.isGuest).toBe(true);
    expect(guest.last.result.user).toBe('Guest');
    expect(guest.last.result.sid).toBe(`${machineSidForName('NODE1')}-501`);
    expect(guest.last.result.sessionKey.equals(Buffer.alloc(16))).toBe(true);
    // No session security for guests: no mechListMIC in the answer.
    expect(decodeNegTokenResp(guest.last.token).mechListMIC).toBeUndefined();
  });

  it('NTLMv1 responses are refused', async () => {
    const { last } = await spnegoLogon(new NtlmTestClient({ ...ALICE, ntlmv1: true, withMic: false }), new SpnegoServer(serverOptions()), {
      sendMechListMic: false,
    });
    expect(last).toMatchObject({ status: 'failed', reason: 'ntlmv1-refused' });
  });

  it('a timestamp more than 36 hours away is refused', async () => {
    const old = BigInt(NOW_MS - 37 * 3600_000) * 10_000n + 116444736000000000n;
    const { last } = await spnegoLogon(new NtlmTestClient({ ...ALICE, timestamp: old }), new SpnegoServer(serverOptions()));
    expect(last).toMatchObject({ status: 'failed', reason: 'expired-timestamp' });
    const recent = BigInt(NOW_MS - 35 * 3600_000) * 10_000n + 116444736000000000n;
    const ok = await spnegoLogon(new NtlmTestClient({ ...ALICE, timestamp: recent }), new SpnegoServer(serverOptions()));
    expect(ok.last.status).toBe('done');
  });

  it('Kerberos first, NTLM listed: selects NTLM with request-mic and no token, then needs the mechListMIC', async () => {
    const mechTypes = [OID_MS_KRB5, OID_KRB5, OID_NEGOEX, OID_NTLMSSP];
    const mechList = encodeMechTypeList(mechTypes);
    const server = new SpnegoServer(serverOptions());
    const client = new NtlmTestClient(ALICE);
    const krbOptimistic = Buffer.from('6082010006092a864886f712010202', 'hex'); // a Kerberos AP-REQ start, ignored
    const r1 = decodeNegTokenResp(expectContinue(await server.step(encodeNegTokenInit({ mechTypes, mechToken: krbOptimistic }))));
    expect(r1).toEqual({ negState: NegState.requestMic, supportedMech: OID_NTLMSSP });
    const r2 = decodeNegTokenResp(expectContinue(await server.step(encodeNegTokenResp({ responseToken: client.negotiate() }))));
    expect(r2.negState).toBe(NegState.acceptIncomplete);
    expect(r2.supportedMech).toBeUndefined();
    const auth = client.authenticate(r2.responseToken!);
    const last = await server.step(encodeNegTokenResp({ responseToken: auth, mechListMIC: client.signMechList(mechList) }));
    expect(last.status).toBe('done');
    if (last.status !== 'done') return;
    expect(client.verifyServerMechList(mechList, decodeNegTokenResp(last.token).mechListMIC!)).toBe(true);
  });

  it('mechListMIC over a different list (downgrade attempt) is refused', async () => {
    const mechTypes = [OID_KRB5, OID_NTLMSSP];
    const server = new SpnegoServer(serverOptions());
    const client = new NtlmTestClient(ALICE);
    await server.step(encodeNegTokenInit({ mechTypes }));
    const r2 = decodeNegTokenResp(expectContinue(await server.step(encodeNegTokenResp({ responseToken: client.negotiate() }))));
    const auth = client.authenticate(r2.responseToken!);
    // The client signs a list an attacker rewrote to NTLM only: the server holds the real one.
    const last = await server.step(encodeNegTokenResp({ responseToken: auth, mechListMIC: client.signMechList(encodeMechTypeList(NTLM_ONLY)) }));
    expect(last).toMatchObject({ status: 'failed', reason: 'mech-list-mic-mismatch' });
  });

  it('NTLM MIC but no SPNEGO mechListMIC: server sends its MIC first and waits for the client one', async () => {
    const server = new SpnegoServer(serverOptions());
    const client = new NtlmTestClient(ALICE);
    const { last, mechList } = await spnegoLogon(client, server, { sendMechListMic: false });
    const r = decodeNegTokenResp(expectContinue(last));
    expect(r.negState).toBe(NegState.acceptIncomplete);
    expect(client.verifyServerMechList(mechList, r.mechListMIC!)).toBe(true);
    const done = await server.step(encodeNegTokenResp({ mechListMIC: client.signMechList(mechList) }));
    expect(done.status).toBe('done');
    expect(decodeNegTokenResp(done.token!)).toEqual({ negState: NegState.acceptCompleted });

    // And the wrong MIC at that point fails.
    const server2 = new SpnegoServer(serverOptions());
    const client2 = new NtlmTestClient(ALICE);
    await spnegoLogon(client2, server2, { sendMechListMic: false });
    const bad = await server2.step(encodeNegTokenResp({ mechListMIC: Buffer.alloc(16, 1) }));
    expect(bad).toMatchObject({ status: 'failed', reason: 'mech-list-mic-mismatch' });
  });

  it('NTLM first but no mechToken: accept-incomplete with supportedMech, then the normal NTLM legs', async () => {
    const server = new SpnegoServer(serverOptions());
    const client = new NtlmTestClient(ALICE);
    const r1 = decodeNegTokenResp(expectContinue(await server.step(encodeNegTokenInit({ mechTypes: NTLM_ONLY }))));
    expect(r1).toEqual({ negState: NegState.acceptIncomplete, supportedMech: OID_NTLMSSP });
    const r2 = decodeNegTokenResp(expectContinue(await server.step(encodeNegTokenResp({ responseToken: client.negotiate() }))));
    const last = await server.step(
      encodeNegTokenResp({ responseToken: client.authenticate(r2.responseToken!), mechListMIC: client.signMechList(encodeMechTypeList(NTLM_ONLY)) }),
    );
    expect(last.status).toBe('done');
  });

  it('no NTLM in mechTypes: rejected', async () => {
    const s = await new SpnegoServer(serverOptions()).step(encodeNegTokenInit({ mechTypes: [OID_KRB5] }));
    expect(s).toMatchObject({ status: 'failed', reason: 'no-common-mech' });
    if (s.status === 'failed') expect(decodeNegTokenResp(s.token!).negState).toBe(NegState.reject);
  });

  it('raw NTLMSSP without SPNEGO', async () => {
    const server = new SpnegoServer(serverOptions());
    const client = new NtlmTestClient(ALICE);
    const chal = expectContinue(await server.step(client.negotiate()));
    expect(ntlmMessageType(chal)).toBe(2);
    const last = await server.step(client.authenticate(chal));
    expect(last.status).toBe('done');
    if (last.status !== 'done') return;
    expect(last.token.length).toBe(0);
    expect(last.result.sessionKey.equals(client.exportedSessionKey)).toBe(true);
    // Wrong password on the raw path.
    const s2 = new SpnegoServer(serverOptions());
    const c2 = new NtlmTestClient({ ...ALICE, password: 'nope' });
    const ch2 = expectContinue(await s2.step(c2.negotiate()));
    expect(await s2.step(c2.authenticate(ch2))).toEqual({ status: 'failed', reason: 'bad-password' });
  });

  it('an empty security buffer gets the init token; garbage and out-of-order tokens fail cleanly', async () => {
    const server = new SpnegoServer(serverOptions());
    const s = await server.step(Buffer.alloc(0));
    expect(s.status === 'continue' && s.token.equals(server.initialToken())).toBe(true);
    expect(await new SpnegoServer(serverOptions()).step(Buffer.from('hello'))).toEqual({ status: 'failed', reason: 'malformed' });
    const resp = await new SpnegoServer(serverOptions()).step(encodeNegTokenResp({ responseToken: Buffer.alloc(4) }));
    expect(resp).toMatchObject({ status: 'failed', reason: 'unexpected-token' });
    const client = new NtlmTestClient(ALICE);
    const authFirst = await new SpnegoServer(serverOptions()).step(encodeNegTokenInit({ mechTypes: NTLM_ONLY, mechToken: Buffer.from('NTLMSSP\0\x03\0\0\0', 'latin1') }));
    expect(authFirst).toMatchObject({ status: 'failed', reason: 'malformed' });
    void client;
    expect(await new SpnegoServer(serverOptions()).step(Buffer.alloc(70_000, 0x60))).toMatchObject({ status: 'failed', reason: 'malformed' });
  });

  it('anonymous: refused by default, accepted when allowed (no session key, no mechListMIC)', async () => {
    const anonAuth = (): Buffer => {
      // MS-NLMP 3.2.5.1.2 anonymous: empty user, empty NT response, LM response Z(1).
      const b = Buffer.alloc(72 + 1);
      Buffer.from('NTLMSSP\0', 'latin1').copy(b);
      b.writeUInt32LE(3, 8);
      b.writeUInt16LE(1, 12);
      b.writeUInt16LE(1, 14);
      b.writeUInt32LE(72, 16);
      for (const at of [20, 28, 36, 44, 52]) b.writeUInt32LE(72, at + 4);
      b.writeUInt32LE(NegotiateFlags.NTLMSSP_NEGOTIATE_UNICODE | NegotiateFlags.NTLMSSP_ANONYMOUS, 60);
      return b;
    };
    for (const allowAnonymous of [false, true]) {
      const server = new SpnegoServer(serverOptions({ allowAnonymous }));
      const client = new NtlmTestClient(ALICE);
      const r1 = decodeNegTokenResp(expectContinue(await server.step(encodeNegTokenInit({ mechTypes: NTLM_ONLY, mechToken: client.negotiate() }))));
      expect(r1.responseToken).toBeDefined();
      const last = await server.step(encodeNegTokenResp({ responseToken: anonAuth() }));
      if (!allowAnonymous) {
        expect(last).toMatchObject({ status: 'failed', reason: 'anonymous-refused' });
      } else {
        expect(last.status).toBe('done');
        if (last.status !== 'done') return;
        expect(last.result).toMatchObject({ isAnonymous: true, user: '', sid: 'S-1-5-7' });
        expect(last.result.sessionKey.equals(Buffer.alloc(16))).toBe(true);
        expect(decodeNegTokenResp(last.token)).toEqual({ negState: NegState.acceptCompleted });
      }
    }
  });

  it('the server challenge differs per exchange and the CHALLENGE carries the configured names', async () => {
    const { decodeChallengeMessage, decodeAvPairs, AvId } = await import('../../src/protocol/ntlm.js');
    let seed = 0;
    const opts = serverOptions({ random: { bytes: (n) => Buffer.alloc(n, ++seed) } });
    const c1 = decodeChallengeMessage(expectContinue(await new SpnegoServer(opts).step(new NtlmTestClient(ALICE).negotiate())));
    const c2 = decodeChallengeMessage(expectContinue(await new SpnegoServer(opts).step(new NtlmTestClient(ALICE).negotiate())));
    expect(c1.ServerChallenge.equals(c2.ServerChallenge)).toBe(false);
    expect(c1.TargetName.toString('utf16le')).toBe('NODE1');
    const pairs = Object.fromEntries(decodeAvPairs(c1.TargetInfo).map((p) => [p.AvId, p.Value]));
    expect(pairs[AvId.MsvAvNbDomainName]!.toString('utf16le')).toBe('TESSERA');
    expect(pairs[AvId.MsvAvNbComputerName]!.toString('utf16le')).toBe('NODE1');
    expect(pairs[AvId.MsvAvDnsDomainName]!.toString('utf16le')).toBe('tessera.test');
    expect(pairs[AvId.MsvAvDnsComputerName]!.toString('utf16le')).toBe('node1.tessera.test');
    expect(pairs[AvId.MsvAvTimestamp]!.readBigUInt64LE(0)).toBe(BigInt(NOW_MS) * 10_000n + 116444736000000000n);
    // Flags: what a Windows client asked for that we support, never LM_KEY.
    expect(c1.NegotiateFlags & NegotiateFlags.NTLMSSP_NEGOTIATE_LM_KEY).toBe(0);
    expect(c1.NegotiateFlags & NegotiateFlags.NTLMSSP_NEGOTIATE_KEY_EXCH).not.toBe(0);
    expect(c1.NegotiateFlags & NegotiateFlags.NTLMSSP_NEGOTIATE_EXTENDED_SESSIONSECURITY).not.toBe(0);
    expect(c1.Version).toBeDefined();
  });
});
