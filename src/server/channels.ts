// Session channels (MS-SMB2 3.3.1.8 Session.ChannelList, 3.3.1.14 Per Channel): the connections a
// session is usable on, and the key each of them signs with.
//
// A session is created on one connection (its first channel, Session.Connection) and may be bound to
// more connections of the same client with a SESSION_SETUP carrying SMB2_SESSION_FLAG_BINDING
// (MS-SMB2 3.3.5.5, multichannel). Every channel has its own signing key: the first one signs with
// Session.SigningKey, a bound one with a key derived from the binding's own authentication
// (Channel.SigningKey, 3.3.5.5.3). Encryption keys, trees and opens belong to the session and are
// shared by all its channels.
//
// Which key checks a request and which signs a response (MS-SMB2 3.3.5.2.4, 3.3.4.1.1): the channel's
// key on a connection the session is bound to; on any other connection (a binding in progress, or a
// stray SESSION_SETUP naming a session of another connection) Session.SigningKey, with the signing
// algorithm of the connection the session was established on, which is what the client signs with
// there.

import type { SpnegoServer } from '../auth/spnego-server.js';
import { NtStatus } from '../protocol/ntstatus.js';
import { Dialect } from '../protocol/negotiate.js';
import { SigningAlgorithm } from '../crypto/signing.js';
import type { Connection } from './connection.js';
import type { Session } from './state.js';

export interface Channel {
  readonly conn: Connection;
  /**
   * The session's requests are accepted on this connection. False while a binding is in progress:
   * until it succeeds only the binding's own SESSION_SETUP requests may name the session here.
   */
  bound: boolean;
  /** Channel.SigningKey (3.x); Session.SigningKey on the session's first connection. */
  signingKey: Buffer | undefined;
  /** Signing algorithm of this connection (MS-SMB2 2.2.3.1.7; HMAC-SHA256 before 3.0). */
  signingAlgorithm: number;
  /** A GSS exchange under way on this connection: the first authentication, a re-authentication or a binding. */
  auth: SpnegoServer | undefined;
  /** 3.1.1 binding: the channel's preauth integrity hash, seeded from the connection's (3.3.5.5.2). */
  preauthHash: Buffer | undefined;
}

/** A signing key and the algorithm it is used with. */
export interface SigningKeyRef {
  key: Buffer;
  algorithm: number;
}

export function newChannel(conn: Connection, f: { bound: boolean; signingAlgorithm: number; preauthHash?: Buffer }): Channel {
  return { conn, bound: f.bound, signingKey: undefined, signingAlgorithm: f.signingAlgorithm, auth: undefined, preauthHash: f.preauthHash };
}

/** The channel of `session` on `conn` that is usable for requests, if any. */
export function boundChannel(session: Session, conn: Connection): Channel | undefined {
  const c = session.channels.get(conn);
  return c?.bound ? c : undefined;
}

/** The session's connections that carry its requests (for messages the server starts, such as breaks). */
export function boundConnections(session: Session): Connection[] {
  const out: Connection[] = [];
  for (const c of session.channels.values()) if (c.bound && !c.conn.isClosed) out.push(c.conn);
  return out;
}

/**
 * The key that checks a signed request of `session` arriving on `conn`, and signs the response
 * (MS-SMB2 3.3.5.2.4, 3.3.4.1.1): Channel.SigningKey when `conn` is one of the session's channels,
 * Session.SigningKey otherwise. Undefined when the session has no key (guest, anonymous, in progress).
 */
export function signingKeyFor(session: Session, conn: Connection): SigningKeyRef | undefined {
  const c = boundChannel(session, conn);
  if (c?.signingKey) return { key: c.signingKey, algorithm: c.signingAlgorithm };
  return sessionSigningKey(session);
}

/** Session.SigningKey with the algorithm of the connection the session was established on. */
export function sessionSigningKey(session: Session): SigningKeyRef | undefined {
  if (!session.keys) return undefined;
  return { key: session.keys.signingKey, algorithm: session.signingAlgorithm };
}

/**
 * Why `conn` may not bind `session` (MS-SMB2 3.3.5.5.2), as a status, or undefined when it may. The
 * checks run in the order, and answer with the statuses, Windows uses (smbtorture
 * smb2.session.bind_negative_*; Samba's smb2_sesssetup.c has the same order):
 *   - a session signed with AES-GMAC binds only over a connection that negotiated GMAC too
 *     (STATUS_REQUEST_OUT_OF_SEQUENCE), and a GMAC connection binds only a GMAC session
 *     (STATUS_NOT_SUPPORTED);
 *   - 2.x connections cannot bind, nor can any when multichannel is off (STATUS_REQUEST_NOT_ACCEPTED);
 *   - the request must be signed (the pipeline checked the signature with Session.SigningKey), and
 *     the connection must have negotiated the session's dialect and cipher (STATUS_INVALID_PARAMETER);
 *   - the session must be established (STATUS_USER_SESSION_DELETED);
 *   - a connection that already is a channel of the session cannot bind again
 *     (STATUS_REQUEST_NOT_ACCEPTED);
 *   - guest and anonymous sessions have no key to bind with (STATUS_NOT_SUPPORTED).
 */
export function bindingRefusal(session: Session, conn: Connection, f: { signed: boolean; multiChannel: boolean }): number | undefined {
  const neg = conn.negotiated!;
  if (session.signingAlgorithm === SigningAlgorithm.AES_GMAC && neg.signingAlgorithm !== session.signingAlgorithm) return NtStatus.REQUEST_OUT_OF_SEQUENCE;
  if (neg.signingAlgorithm === SigningAlgorithm.AES_GMAC && neg.signingAlgorithm !== session.signingAlgorithm) return NtStatus.NOT_SUPPORTED;
  if (neg.dialect < Dialect.SMB300 || !f.multiChannel) return NtStatus.REQUEST_NOT_ACCEPTED;
  if (!f.signed) return NtStatus.INVALID_PARAMETER;
  if (session.dialect !== neg.dialect || session.cipherId !== neg.cipherId) return NtStatus.INVALID_PARAMETER;
  if (session.state !== 'valid') return NtStatus.USER_SESSION_DELETED;
  const existing = session.channels.get(conn);
  if (existing?.bound) return NtStatus.REQUEST_NOT_ACCEPTED;
  if (!existing && (session.isGuest || session.isAnonymous || !session.keys)) return NtStatus.NOT_SUPPORTED;
  return undefined;
}
