// NEGOTIATE (MS-SMB2 3.3.5.3.1 for the SMB1 upgrade, 3.3.5.4 for SMB2 NEGOTIATE).

import { limits } from '../../base/limits.js';
import { unixNsToFiletime } from '../../base/clock.js';
import { SMB2_HEADER_SIZE } from '../../protocol/encoder.js';
import { Command, encodeHeader, HeaderFlags } from '../../protocol/header.js';
import { NtStatus } from '../../protocol/ntstatus.js';
import { decodeSmb1NegotiateDialects, Smb1Dialect } from '../../protocol/smb1-negotiate.js';
import {
  decodeNegotiateRequest,
  Dialect,
  encryptionContext,
  GlobalCap,
  HashAlgorithm,
  NegotiateContextType,
  negotiateResponse,
  preauthIntegrityContext,
  SecurityMode,
  signingContext,
  type NegotiateContextOut,
} from '../../protocol/negotiate.js';
import { preauthInitial, preauthUpdate } from '../../crypto/preauth.js';
import { SigningAlgorithm } from '../../crypto/signing.js';
import { CipherId } from '../../crypto/sealing.js';
import { encodeNegTokenInit2 } from '../../protocol/spnego.js';

/** The SPNEGO NegTokenInit2 hint (MS-SPNG 3.2.5.2) sent in every NEGOTIATE response: NTLMSSP only. */
let hint: Buffer | undefined;
function negTokenInitHint(): Buffer {
  hint ??= encodeNegTokenInit2();
  return hint;
}
import type { Reply, RequestContext } from '../context.js';
import type { Connection, Negotiated } from '../connection.js';

function nowFiletime(conn: Connection): bigint {
  return unixNsToFiletime(BigInt(Math.round(conn.server.clock.nowMs())) * 1_000_000n);
}

function securityMode(conn: Connection): number {
  return SecurityMode.SIGNING_ENABLED | (conn.server.options.signingRequired ? SecurityMode.SIGNING_REQUIRED : 0);
}

function ioSizeFor(dialect: number): { transact: number; read: number; write: number } {
  // MS-SMB2 3.3.5.4: 2.0.2 servers must not exceed 65536; LARGE_MTU (2.1+) allows more.
  if (dialect === Dialect.SMB202) return { transact: 65536, read: 65536, write: 65536 };
  return { transact: limits.transactBytesMax, read: limits.ioBytesMax, write: limits.ioBytesMax };
}

/**
 * MS-SMB2 3.3.5.3.1: an SMB1 NEGOTIATE naming SMB2 dialects is answered with an SMB2 NEGOTIATE
 * response: DialectRevision 0x02FF when "SMB 2.???" is offered (the client then sends an SMB2
 * NEGOTIATE), 0x0202 when only "SMB 2.002" is. Returns the whole SMB2 message, or undefined when no
 * SMB2 dialect is offered (the connection is then closed: SMB1 is not served).
 */
export function handleSmb1Negotiate(conn: Connection, frame: Buffer): Buffer | undefined {
  const dialects = decodeSmb1NegotiateDialects(frame);
  const server = conn.server;
  let revision: number;
  if (dialects.includes(Smb1Dialect.SMB2_WILDCARD) && server.options.dialects.some((d) => d > Dialect.SMB202)) {
    revision = Dialect.SMB2_WILDCARD;
  } else if (dialects.includes(Smb1Dialect.SMB2_002) && server.options.dialects.includes(Dialect.SMB202)) {
    revision = Dialect.SMB202;
  } else {
    return undefined;
  }
  const sizes = ioSizeFor(Dialect.SMB202);
  const body = negotiateResponse({
    SecurityMode: securityMode(conn),
    DialectRevision: revision,
    ServerGuid: server.identity.serverGuid,
    Capabilities: revision === Dialect.SMB2_WILDCARD ? GlobalCap.LARGE_MTU : 0,
    MaxTransactSize: sizes.transact,
    MaxReadSize: sizes.read,
    MaxWriteSize: sizes.write,
    SystemTime: nowFiletime(conn),
    ServerStartTime: 0n,
    SecurityBuffer: negTokenInitHint(),
  });
  const msg = Buffer.alloc(SMB2_HEADER_SIZE + body.byteLength());
  encodeHeader({ Command: Command.NEGOTIATE, MessageId: 0n, Credits: 1, Flags: HeaderFlags.SERVER_TO_REDIR, Status: 0 }, msg, 0);
  body.encodeInto(msg, SMB2_HEADER_SIZE);
  if (revision === Dialect.SMB202) {
    conn.negotiated = {
      dialect: Dialect.SMB202,
      clientGuid: Buffer.alloc(16),
      clientCapabilities: 0,
      clientSecurityMode: 0,
      serverCapabilities: 0,
      serverSecurityMode: securityMode(conn),
      cipherId: 0,
      signingAlgorithm: SigningAlgorithm.HMAC_SHA256,
      preauthHash: undefined,
      clientDialects: [Dialect.SMB202],
      supportsMultiCredit: false,
    };
    conn.log.debug({ dialect: '2.0.2' }, 'negotiated via SMB1');
  }
  return msg;
}

export function handleNegotiate(ctx: RequestContext): Reply {
  const { conn } = ctx;
  const server = conn.server;
  // MS-SMB2 3.3.5.4: a second NEGOTIATE on a connection disconnects it.
  if (conn.negotiated) return { status: NtStatus.INVALID_PARAMETER, disconnect: true };
  const req = decodeNegotiateRequest(ctx.msg);
  if (req.DialectCount === 0) return { status: NtStatus.INVALID_PARAMETER };

  let dialect = 0;
  for (const d of req.Dialects) {
    if (server.options.dialects.includes(d) && d > dialect && d !== Dialect.SMB2_WILDCARD) dialect = d;
  }
  if (dialect === 0) return { status: NtStatus.NOT_SUPPORTED, disconnect: false };

  let cipherId = 0;
  let signingAlgorithm: number = dialect >= Dialect.SMB300 ? SigningAlgorithm.AES_CMAC : SigningAlgorithm.HMAC_SHA256;
  const contexts: NegotiateContextOut[] = [];
  if (dialect === Dialect.SMB311) {
    // MS-SMB2 3.3.5.4: duplicate capability contexts and a missing preauth context are invalid.
    const once = [
      NegotiateContextType.PREAUTH_INTEGRITY_CAPABILITIES,
      NegotiateContextType.ENCRYPTION_CAPABILITIES,
      NegotiateContextType.COMPRESSION_CAPABILITIES,
      NegotiateContextType.RDMA_TRANSFORM_CAPABILITIES,
      NegotiateContextType.SIGNING_CAPABILITIES,
    ] as number[];
    if (req.DuplicateContextTypes.some((t) => once.includes(t))) return { status: NtStatus.INVALID_PARAMETER };
    if (!req.PreauthIntegrity) return { status: NtStatus.INVALID_PARAMETER };
    if (!req.PreauthIntegrity.HashAlgorithms.includes(HashAlgorithm.SHA512)) {
      return { status: NtStatus.SMB_NO_PREAUTH_INTEGRITY_HASH_OVERLAP };
    }
    contexts.push(preauthIntegrityContext(server.random.bytes(32)));
    if (req.Encryption) {
      // Server preference order wins (the first configured cipher the client also offers).
      cipherId = server.options.ciphers.find((c) => req.Encryption!.Ciphers.includes(c)) ?? 0;
      contexts.push(encryptionContext(cipherId));
    }
    if (req.Signing) {
      const alg = server.options.signingAlgorithms.find((a) => req.Signing!.SigningAlgorithms.includes(a));
      if (alg !== undefined) signingAlgorithm = alg;
      contexts.push(signingContext(signingAlgorithm));
    }
    // Compression, RDMA and transport-security contexts are ignored: none of them is supported,
    // and an absent response context tells the client so (MS-SMB2 3.3.5.4).
  } else if (dialect >= Dialect.SMB300) {
    // 3.0/3.0.2 encrypt with AES-128-CCM when both sides can (MS-SMB2 3.3.5.4).
    const clientCanEncrypt = (req.Capabilities & GlobalCap.ENCRYPTION) !== 0;
    if (clientCanEncrypt && server.options.ciphers.includes(CipherId.AES_128_CCM)) cipherId = CipherId.AES_128_CCM;
  }

  let capabilities = 0;
  if (dialect >= Dialect.SMB210) capabilities |= GlobalCap.LARGE_MTU;
  // Leases (MS-SMB2 3.3.5.9.8, 3.3.5.9.11) are granted and broken through the replicated open table.
  if (dialect >= Dialect.SMB210) capabilities |= GlobalCap.LEASING;
  if (dialect === Dialect.SMB300 || dialect === Dialect.SMB302) {
    if (cipherId !== 0) capabilities |= GlobalCap.ENCRYPTION;
  }
  // MS-SMB2 3.3.5.4: a 3.x connection may bind sessions of other connections (IsMultiChannelCapable;
  // session binding in session-setup.ts, channels in channels.ts).
  if (dialect >= Dialect.SMB300 && server.options.multiChannel !== false) capabilities |= GlobalCap.MULTI_CHANNEL;
  // Not advertised until honoured: DFS, PERSISTENT_HANDLES, DIRECTORY_LEASING (a directory lease
  // must break when the directory's entries change; those breaks are not built).

  const sizes = ioSizeFor(dialect);
  const body = negotiateResponse({
    SecurityMode: securityMode(conn),
    DialectRevision: dialect,
    ServerGuid: server.identity.serverGuid,
    Capabilities: capabilities,
    MaxTransactSize: sizes.transact,
    MaxReadSize: sizes.read,
    MaxWriteSize: sizes.write,
    SystemTime: nowFiletime(conn),
    ServerStartTime: 0n,
    SecurityBuffer: negTokenInitHint(),
    ...(dialect === Dialect.SMB311 ? { NegotiateContexts: contexts } : {}),
  });

  const negotiated: Negotiated = {
    dialect,
    clientGuid: Buffer.from(req.ClientGuid),
    clientCapabilities: req.Capabilities,
    clientSecurityMode: req.SecurityMode,
    serverCapabilities: capabilities,
    serverSecurityMode: securityMode(conn),
    cipherId,
    signingAlgorithm,
    preauthHash: undefined,
    clientDialects: [...req.Dialects],
    supportsMultiCredit: dialect >= Dialect.SMB210,
  };
  conn.negotiated = negotiated;
  let afterEncode: ((parts: Buffer[]) => void) | undefined;
  if (dialect === Dialect.SMB311) {
    // MS-SMB2 3.3.5.4: Connection.PreauthIntegrityHashValue over the request and the response.
    const afterRequest = preauthUpdate(preauthInitial(), [ctx.msg]);
    afterEncode = (parts) => {
      negotiated.preauthHash = preauthUpdate(afterRequest, parts);
    };
  }
  conn.log.debug({ dialect: dialect.toString(16), cipherId, signingAlgorithm }, 'negotiated');
  return { status: NtStatus.SUCCESS, body, ...(afterEncode ? { afterEncode } : {}) };
}
