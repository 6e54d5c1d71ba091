// SESSION_SETUP (MS-SMB2 3.3.5.5): SPNEGO/NTLMv2 authentication of a new session, re-authentication
// of an established one, and binding of an established session to another connection (multichannel,
// SMB2_SESSION_FLAG_BINDING). Key derivation, signing and encryption requirements of the session.
//
// Which of the three a request is:
//   - SessionId 0: a new session on this connection (3.3.5.5.1).
//   - BINDING flag: this connection becomes a channel of the named session (3.3.5.5.2, channels.ts).
//   - otherwise: the authentication of a session of this connection continues, or an established
//     session re-authenticates (3.3.5.5.2 "Reauthenticating an Existing Session"). A session this
//     connection is not a channel of is STATUS_USER_SESSION_DELETED.
//
// The pipeline has looked the session up in the GlobalSessionTable (SESSION_SETUP only) and checked
// a signed request with the key of this connection's channel or, where it has none, Session.SigningKey.

import { NtStatus } from '../../protocol/ntstatus.js';
import { HeaderFlags } from '../../protocol/header.js';
import {
  decodeSessionSetupRequest,
  SessionFlags,
  SessionSetupFlags,
  sessionSetupResponse,
  type SessionSetupRequest,
} from '../../protocol/session-setup.js';
import { Dialect, GlobalCap, SecurityMode } from '../../protocol/negotiate.js';
import { deriveSessionKeys } from '../../crypto/keys.js';
import { preauthUpdate } from '../../crypto/preauth.js';
import { NonceGenerator } from '../../crypto/nonce.js';
import type { CipherId } from '../../crypto/sealing.js';
import type { SpnegoFailureReason, SpnegoStep } from '../../auth/spnego-server.js';
import type { NtlmSuccess } from '../../auth/ntlm-server.js';
import { createSpnegoServer } from '../auth-factory.js';
import { limits } from '../../base/limits.js';
import type { Reply, RequestContext } from '../context.js';
import type { Connection } from '../connection.js';
import { Session } from '../state.js';
import { bindingRefusal, newChannel, type Channel } from '../channels.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function handleSessionSetup(ctx: RequestContext): Promise<Reply> {
  const req = decodeSessionSetupRequest(ctx.msg);
  if (req.SecurityBuffer.length > limits.securityBlobBytesMax) return { status: NtStatus.INVALID_PARAMETER };
  if (req.Flags & SessionSetupFlags.BINDING) return bindSession(ctx, req);
  if (ctx.hdr.SessionId === 0n) return newSession(ctx, req);

  const session = ctx.session!;
  const channel = session.channels.get(ctx.conn);
  if (!channel?.bound) {
    // MS-SMB2 3.3.5.5: not in Connection.SessionTable (a session of another connection, or one whose
    // binding to this connection has not completed). Signed when the request was (3.3.4.1.1).
    return { status: NtStatus.USER_SESSION_DELETED, ...(signedRequest(ctx) ? { signWithSession: session } : {}) };
  }
  if (session.state === 'inProgress') return authenticate(ctx, req, session, channel);
  return reauthenticate(ctx, req, session, channel);
}

function signedRequest(ctx: RequestContext): boolean {
  return (ctx.hdr.Flags & HeaderFlags.SIGNED) !== 0;
}

/** The status a failed GSS exchange is answered with (MS-SMB2 3.3.5.5.3: the error the protocol gave). */
function failureStatus(reason: SpnegoFailureReason): number {
  // A malformed NTLMv2 response (an NTLMv2_CLIENT_CHALLENGE that does not parse) is a bad parameter,
  // as Windows and Samba answer it (smbtorture smb2.session.ntlmssp_bug14932); every other failure
  // is a logon failure that tells the client nothing more.
  return reason === 'invalid-ntlmv2-response' ? NtStatus.INVALID_PARAMETER : NtStatus.LOGON_FAILURE;
}

/** Logs and rate-limits a failed logon; answers late once a client address exceeds its allowance. */
async function logonFailed(conn: Connection, session: Session, reason: SpnegoFailureReason, what: string): Promise<void> {
  conn.server.throttle.recordFailure(conn.remoteAddress);
  conn.log.warn({ reason, session: session.id.toString(16) }, what);
  const delay = conn.server.throttle.delayMsFor(conn.remoteAddress);
  if (delay > 0) await sleep(delay);
}

// ---------------------------------------------------------------- new session (3.3.5.5.1)

async function newSession(ctx: RequestContext, req: SessionSetupRequest): Promise<Reply> {
  const { conn } = ctx;
  const neg = conn.negotiated!;
  if (conn.sessions.size >= limits.sessionsPerConnectionMax) return { status: NtStatus.INSUFFICIENT_RESOURCES };
  const session = new Session(conn.server.newSessionId());
  session.dialect = neg.dialect;
  session.signingAlgorithm = neg.signingAlgorithm;
  session.cipherId = neg.cipherId;
  // MS-SMB2 3.3.5.5.1: Session.PreauthIntegrityHashValue starts from the connection's.
  if (neg.dialect === Dialect.SMB311) session.preauthHash = neg.preauthHash;
  const channel = conn.server.registerSession(session, conn, neg.signingAlgorithm);
  return authenticate(ctx, req, session, channel);
}

/** One leg of the first authentication of `session` (on its first channel). */
async function authenticate(ctx: RequestContext, req: SessionSetupRequest, s: Session, channel: Channel): Promise<Reply> {
  const { conn } = ctx;
  const server = conn.server;
  const neg = conn.negotiated!;
  channel.auth ??= createSpnegoServer(server);

  // MS-SMB2 3.3.5.5.3: the session's preauth hash covers every SESSION_SETUP request and response
  // until the session is established.
  if (neg.dialect === Dialect.SMB311 && s.preauthHash) s.preauthHash = preauthUpdate(s.preauthHash, [ctx.msg]);

  const step = await channel.auth.step(req.SecurityBuffer);
  if (step.status === 'continue') {
    return {
      status: NtStatus.MORE_PROCESSING_REQUIRED,
      body: sessionSetupResponse({ SessionFlags: 0, SecurityBuffer: step.token }),
      sessionId: s.id,
      afterEncode: (parts) => {
        if (neg.dialect === Dialect.SMB311 && s.preauthHash) s.preauthHash = preauthUpdate(s.preauthHash, parts);
      },
    };
  }
  channel.auth = undefined;
  if (step.status === 'failed') {
    // MS-SMB2 3.3.5.5.3: a failed authentication removes the session.
    await server.destroySession(s, 'logon failed');
    await logonFailed(conn, s, step.reason, 'logon failed');
    return { status: failureStatus(step.reason), sessionId: s.id };
  }
  server.throttle.recordSuccess(conn.remoteAddress);
  return establish(ctx, req, s, channel, step.result, step.token);
}

/** The first authentication succeeded: identity, keys, signing and encryption of the session (3.3.5.5.3). */
async function establish(
  ctx: RequestContext,
  req: SessionSetupRequest,
  s: Session,
  channel: Channel,
  result: NtlmSuccess,
  token: Buffer,
): Promise<Reply> {
  const { conn } = ctx;
  const server = conn.server;
  const neg = conn.negotiated!;
  setIdentity(s, result);

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
    // The first channel signs with Session.SigningKey (MS-SMB2 3.3.5.5.3).
    channel.signingKey = keys.signingKey;
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
  await closePreviousSession(conn, s, req.PreviousSessionId);
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
  // MS-SMB2 3.3.5.5.3: the final response is signed with the new signing key whenever there is one
  // (3.1.1 requires it; Windows does it for every dialect, and clients that require signing or
  // encryption check it: smbclient -m SMB3_00 --client-protection=encrypt).
  const sign = s.keys !== undefined;
  return {
    status: NtStatus.SUCCESS,
    body: sessionSetupResponse({ SessionFlags: sessionFlags, SecurityBuffer: token }),
    sessionId: s.id,
    ...(sign ? { signWithSession: s } : {}),
  };
}

function setIdentity(s: Session, result: NtlmSuccess): void {
  s.user = result.user;
  s.domain = result.domain;
  s.sid = result.sid;
  s.isGuest = result.isGuest;
  s.isAnonymous = result.isAnonymous;
  // Access checks from now on use the token of this identity (built on first use).
  s.token = undefined;
}

/**
 * MS-SMB2 3.3.5.5.3 PreviousSessionId: a client reconnecting after losing its connection names the
 * session it had; the server ends that session when it belongs to the same user, so that its state
 * does not linger. It is ended as a lost connection ends a session (MS-SMB2 3.3.7.1): its opens are
 * closed, except durable and persistent ones, which the open table keeps disconnected for the
 * client to reclaim (destroySession's `lost`).
 */
async function closePreviousSession(conn: Connection, s: Session, previousId: bigint): Promise<void> {
  if (previousId === 0n || previousId === s.id) return;
  const previous = conn.server.lookupSession(previousId);
  if (!previous || previous.state !== 'valid') return;
  // Only the same user may end a session this way; guest and anonymous sessions are nobody's.
  if (s.isGuest || s.isAnonymous || previous.isGuest || previous.isAnonymous || previous.sid !== s.sid) return;
  await conn.server.destroySession(previous, `replaced by session ${s.id.toString(16)} (PreviousSessionId)`, true);
}

// ---------------------------------------------------------------- re-authentication (3.3.5.5.2)

/**
 * Re-authentication of an established session on one of its channels. The session keeps its keys
 * (MS-SMB2 3.3.5.5.2: "the existing Session.SessionKey will be retained"), its trees and its opens;
 * the identity becomes the one just authenticated, whose token the access checks use from now on
 * (the user may change: Windows re-authenticates a session as another user or as anonymous, which
 * smbtorture smb2.session.reauth2-5 check). A failed re-authentication ends the session on all its
 * channels (MS-SMB2 3.3.5.5.3).
 */
async function reauthenticate(ctx: RequestContext, req: SessionSetupRequest, s: Session, channel: Channel): Promise<Reply> {
  const { conn } = ctx;
  const server = conn.server;
  if (s.state === 'expired') s.state = 'valid'; // no expiry yet (Kerberos tickets only); kept for 3.3.5.5.2
  channel.auth ??= createSpnegoServer(server);
  const step = await channel.auth.step(req.SecurityBuffer);
  if (step.status === 'continue') {
    return {
      status: NtStatus.MORE_PROCESSING_REQUIRED,
      body: sessionSetupResponse({ SessionFlags: 0, SecurityBuffer: step.token }),
      sessionId: s.id,
    };
  }
  channel.auth = undefined;
  if (step.status === 'failed') {
    await server.destroySession(s, 'reauthentication failed');
    await logonFailed(conn, s, step.reason, 'reauthentication failed');
    return { status: failureStatus(step.reason), sessionId: s.id };
  }
  server.throttle.recordSuccess(conn.remoteAddress);
  const before = s.user;
  setIdentity(s, step.result);
  conn.log.info({ session: s.id.toString(16), user: s.user, ...(before !== s.user ? { was: before } : {}) }, 'session reauthenticated');
  return {
    status: NtStatus.SUCCESS,
    body: sessionSetupResponse({ SessionFlags: 0, SecurityBuffer: step.token }),
    sessionId: s.id,
    signWithSession: s,
  };
}

// ---------------------------------------------------------------- binding (3.3.5.5.2, multichannel)

/**
 * Binds `conn` to an established session as a new channel, once bindingRefusal (channels.ts) finds
 * nothing against it. The binding then authenticates the same user again (another user:
 * STATUS_ACCESS_DENIED); a failure removes this channel only, never the session (another
 * connection's session must not be ended by a wrong password here). On success Channel.SigningKey is derived from the key of this
 * authentication, with the channel's own preauth hash on 3.1.1 (MS-SMB2 3.3.5.5.3).
 * ClientGuid is not compared (MS-SMB2 3.3.5.5.2 leaves it to the server, "MAY"; Windows binds
 * connections of another ClientGuid, smbtorture's bind_negative_*d check it): the same user must
 * authenticate again, with the session's key, which is what protects the session.
 */
async function bindSession(ctx: RequestContext, req: SessionSetupRequest): Promise<Reply> {
  const { conn } = ctx;
  const server = conn.server;
  const neg = conn.negotiated!;
  if (ctx.hdr.SessionId === 0n) return { status: NtStatus.INVALID_PARAMETER };
  const s = ctx.session;
  if (!s) return { status: NtStatus.USER_SESSION_DELETED };
  const rejected = (status: number): Reply => ({ status, ...(signedRequest(ctx) ? { signWithSession: s } : {}) });

  const refusal = bindingRefusal(s, conn, { signed: signedRequest(ctx), multiChannel: server.options.multiChannel !== false });
  if (refusal !== undefined) return rejected(refusal);

  let channel = s.channels.get(conn);
  if (!channel) {
    if (conn.sessions.size >= limits.sessionsPerConnectionMax) return rejected(NtStatus.INSUFFICIENT_RESOURCES);
    // MS-SMB2 3.3.5.5.2: the channel's preauth hash starts from Connection.PreauthIntegrityHashValue.
    channel = server.addChannel(
      s,
      conn,
      newChannel(conn, { bound: false, signingAlgorithm: neg.signingAlgorithm, ...(neg.preauthHash ? { preauthHash: neg.preauthHash } : {}) }),
    );
  }
  const c = channel;
  c.auth ??= createSpnegoServer(server);
  if (neg.dialect === Dialect.SMB311 && c.preauthHash) c.preauthHash = preauthUpdate(c.preauthHash, [ctx.msg]);

  const step: SpnegoStep = await c.auth.step(req.SecurityBuffer);
  if (step.status === 'continue') {
    return {
      status: NtStatus.MORE_PROCESSING_REQUIRED,
      body: sessionSetupResponse({ SessionFlags: 0, SecurityBuffer: step.token }),
      sessionId: s.id,
      signWithSession: s,
      afterEncode: (parts) => {
        if (neg.dialect === Dialect.SMB311 && c.preauthHash) c.preauthHash = preauthUpdate(c.preauthHash, parts);
      },
    };
  }
  c.auth = undefined;
  if (step.status === 'failed') {
    await server.removeChannel(s, conn, 'binding failed');
    await logonFailed(conn, s, step.reason, 'session binding failed');
    return rejected(failureStatus(step.reason));
  }
  const result = step.result;
  // MS-SMB2 3.3.5.5.3: a channel is bound by the session's own user only.
  if (result.sid !== s.sid || result.isGuest || result.isAnonymous) {
    await server.removeChannel(s, conn, 'binding as another user');
    conn.log.warn({ session: s.id.toString(16), user: result.user, owner: s.user }, 'session binding by another user refused');
    return rejected(NtStatus.ACCESS_DENIED);
  }
  server.throttle.recordSuccess(conn.remoteAddress);
  c.signingKey = deriveSessionKeys({
    dialect: neg.dialect,
    sessionKey: result.sessionKey,
    ...(neg.dialect === Dialect.SMB311 ? { preauthHash: c.preauthHash! } : {}),
  }).signingKey;
  c.signingAlgorithm = neg.signingAlgorithm;
  c.preauthHash = undefined;
  c.bound = true;
  conn.log.info({ session: s.id.toString(16), user: s.user, channels: s.channels.size }, 'session bound to another connection');
  // The response is signed with the new Channel.SigningKey (channels.ts); the client ignores its
  // SessionFlags (MS-SMB2 3.2.5.3.3).
  return {
    status: NtStatus.SUCCESS,
    body: sessionSetupResponse({ SessionFlags: 0, SecurityBuffer: step.token }),
    sessionId: s.id,
    signWithSession: s,
  };
}
