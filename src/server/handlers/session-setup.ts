// SESSION_SETUP (MS-SMB2 3.3.5.5): SPNEGO/NTLMv2 authentication, key derivation, signing and
// encryption requirements of the new session.

import { NtStatus } from '../../protocol/ntstatus.js';
import { decodeSessionSetupRequest, SessionFlags, SessionSetupFlags, sessionSetupResponse } from '../../protocol/session-setup.js';
import { Dialect, GlobalCap, SecurityMode } from '../../protocol/negotiate.js';
import { deriveSessionKeys } from '../../crypto/keys.js';
import { preauthUpdate } from '../../crypto/preauth.js';
import { NonceGenerator } from '../../crypto/nonce.js';
import type { CipherId } from '../../crypto/sealing.js';
import { createSpnegoServer } from '../auth-factory.js';
import { limits } from '../../base/limits.js';
import type { Reply, RequestContext } from '../context.js';
import { Session } from '../state.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function handleSessionSetup(ctx: RequestContext): Promise<Reply> {
  const { conn } = ctx;
  const server = conn.server;
  const neg = conn.negotiated!;
  const req = decodeSessionSetupRequest(ctx.msg);

  // MS-SMB2 3.3.5.5: binding a session to a second channel needs multichannel, which is not offered.
  if (req.Flags & SessionSetupFlags.BINDING) return { status: NtStatus.REQUEST_NOT_ACCEPTED };
  if (req.SecurityBuffer.length > limits.securityBlobBytesMax) return { status: NtStatus.INVALID_PARAMETER };

  let session = ctx.session;
  const reauth = session !== undefined && session.state === 'valid';
  if (!session) {
    if (ctx.hdr.SessionId !== 0n) return { status: NtStatus.USER_SESSION_DELETED };
    if (conn.sessions.size >= limits.sessionsPerConnectionMax) return { status: NtStatus.INSUFFICIENT_RESOURCES };
    session = new Session(server.newSessionId());
    if (neg.dialect === Dialect.SMB311) session.preauthHash = neg.preauthHash;
    server.registerSession(session, conn);
  }
  if (!session.auth) session.auth = createSpnegoServer(server);
  const s = session;

  // MS-SMB2 3.3.5.5.1/3.3.5.5.2: the session's preauth hash covers every SESSION_SETUP request.
  if (neg.dialect === Dialect.SMB311 && !reauth && s.preauthHash) s.preauthHash = preauthUpdate(s.preauthHash, [ctx.msg]);

  const step = await s.auth!.step(req.SecurityBuffer);
  if (step.status === 'continue') {
    return {
      status: NtStatus.MORE_PROCESSING_REQUIRED,
      body: sessionSetupResponse({ SessionFlags: 0, SecurityBuffer: step.token }),
      sessionId: s.id,
      afterEncode: (parts) => {
        if (neg.dialect === Dialect.SMB311 && !reauth && s.preauthHash) s.preauthHash = preauthUpdate(s.preauthHash, parts);
      },
    };
  }
  s.auth = undefined;
  if (step.status === 'failed') {
    server.throttle.recordFailure(conn.remoteAddress);
    conn.log.warn({ reason: step.reason, session: s.id.toString(16) }, 'logon failed');
    if (!reauth) await server.destroySession(s, 'logon failed');
    else await server.destroySession(s, 'reauthentication failed');
    // Rate limit per client address: failures beyond the allowance are answered late.
    const delay = server.throttle.delayMsFor(conn.remoteAddress);
    if (delay > 0) await sleep(delay);
    return { status: NtStatus.LOGON_FAILURE, sessionId: s.id };
  }

  const result = step.result;
  server.throttle.recordSuccess(conn.remoteAddress);
  if (reauth) {
    // MS-SMB2 3.3.5.5.3: re-authentication keeps the session's keys; the user must stay the same.
    if (result.user.toUpperCase() !== s.user.toUpperCase()) {
      await server.destroySession(s, 'reauthentication as another user');
      return { status: NtStatus.ACCESS_DENIED, sessionId: s.id };
    }
    conn.log.info({ session: s.id.toString(16), user: s.user }, 'session reauthenticated');
    return {
      status: NtStatus.SUCCESS,
      body: sessionSetupResponse({ SessionFlags: 0, SecurityBuffer: step.token }),
      sessionId: s.id,
      signWithSession: s,
    };
  }

  s.user = result.user;
  s.domain = result.domain;
  s.sid = result.sid;
  s.isGuest = result.isGuest;
  s.isAnonymous = result.isAnonymous;

  let sessionFlags = 0;
  const canEncrypt = neg.dialect >= Dialect.SMB300 && neg.cipherId !== 0 && (neg.dialect === Dialect.SMB311 || (neg.clientCapabilities & GlobalCap.ENCRYPTION) !== 0);
  if (result.isGuest || result.isAnonymous) {
    // Guest and anonymous sessions have no usable key: no signing, no encryption (MS-SMB2 3.3.5.5.3).
    sessionFlags |= result.isAnonymous ? SessionFlags.IS_NULL : SessionFlags.IS_GUEST;
    if (server.options.encryptRequired) {
      await server.destroySession(s, 'encryption required but guest session');
      return { status: NtStatus.ACCESS_DENIED, sessionId: s.id };
    }
  } else {
    const keys = deriveSessionKeys({
      dialect: neg.dialect,
      sessionKey: result.sessionKey,
      ...(neg.dialect === Dialect.SMB311 ? { preauthHash: s.preauthHash! } : {}),
      ...(neg.dialect === Dialect.SMB311 && neg.cipherId !== 0 ? { cipherId: neg.cipherId } : {}),
      ...(neg.dialect === Dialect.SMB300 || neg.dialect === Dialect.SMB302 ? (neg.cipherId ? { cipherId: neg.cipherId } : {}) : {}),
    });
    s.keys = {
      sessionKey: result.sessionKey,
      signingKey: keys.signingKey,
      ...(keys.encryptionKey && canEncrypt ? { encryptionKey: keys.encryptionKey } : {}),
      ...(keys.decryptionKey && canEncrypt ? { decryptionKey: keys.decryptionKey } : {}),
      applicationKey: keys.applicationKey,
    };
    if (canEncrypt) s.nonces = new NonceGenerator(neg.cipherId as CipherId);
    // MS-SMB2 3.3.5.5.3: signing is required when the server or the client requires it.
    s.signingRequired =
      server.options.signingRequired ||
      (neg.clientSecurityMode & SecurityMode.SIGNING_REQUIRED) !== 0 ||
      (req.SecurityMode & SecurityMode.SIGNING_REQUIRED) !== 0;
    if (server.options.encryptRequired) {
      if (canEncrypt) {
        s.encryptData = true;
        sessionFlags |= SessionFlags.ENCRYPT_DATA;
      } else if (server.options.rejectUnencryptedAccess) {
        // MS-SMB2 3.3.5.5.3: encryption required but the client cannot encrypt.
        await server.destroySession(s, 'encryption required but not supported by the client');
        return { status: NtStatus.ACCESS_DENIED, sessionId: s.id };
      }
    }
    if (s.encryptData) s.signingRequired = false;
  }
  s.state = 'valid';
  s.preauthHash = undefined;
  conn.log.info(
    {
      session: s.id.toString(16),
      user: s.user,
      domain: s.domain,
      dialect: neg.dialect.toString(16),
      guest: s.isGuest,
      signing: s.signingRequired,
      encrypt: s.encryptData,
    },
    'session established',
  );
  // MS-SMB2 3.3.5.5.3: the final response of a 3.1.1 session setup is signed with the new signing key;
  // for older dialects it is signed when signing is required.
  const sign = s.keys && (neg.dialect === Dialect.SMB311 || s.signingRequired || (ctx.hdr.Flags & 8) !== 0);
  return {
    status: NtStatus.SUCCESS,
    body: sessionSetupResponse({ SessionFlags: sessionFlags, SecurityBuffer: step.token }),
    sessionId: s.id,
    ...(sign ? { signWithSession: s } : {}),
  };
}
