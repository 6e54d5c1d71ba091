// One client connection and the request pipeline (ARCHITECTURE.md, "The path of one request"):
//   frame → [SMB1 negotiate upgrade] → [decrypt TRANSFORM] → split compound → per message:
//   header check → credits → preauth hash → session → signature/encryption rules → tree → open →
//   handler → response header → sign → [encrypt the whole response frame] → send.
//
// Requests of different frames run concurrently; messages of one compound run in order.

import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import { limits } from '../base/limits.js';
import { MalformedError } from '../base/errors.js';
import { align8, SMB2_HEADER_SIZE, type BodyEncoder } from '../protocol/encoder.js';
import { Command, decodeHeader, encodeHeader, HeaderFlags, SIGNATURE_OFFSET, type Smb2Header } from '../protocol/header.js';
import { isFileIdAny } from '../protocol/create.js';
import { NtStatus, ntStatusName } from '../protocol/ntstatus.js';
import { splitCompound } from '../protocol/compound.js';
import {
  decodeTransformHeader,
  encodeTransformHeader,
  isCompressionTransform,
  isTransform,
  TRANSFORM_HEADER_SIZE,
} from '../protocol/transform.js';
import { isSmb1Negotiate } from '../protocol/smb1-negotiate.js';
import { errorResponse } from '../protocol/error.js';
import { Dialect } from '../protocol/negotiate.js';
import { computeSignature, verifySignature, type SigningAlgorithm } from '../crypto/signing.js';
import { seal, sealInPlace, unseal, unsealInPlace, type CipherId } from '../crypto/sealing.js';
import { CreditWindow } from './credits.js';
import { FrameDecoder, FramePool, writeFrameHeader } from './framing.js';
import { dispatchTable, type CommandSpec } from './dispatch.js';
import type { ChainState, FileIdRef, Reply, RequestContext } from './context.js';
import type { Open, Session, Tree } from './state.js';
import type { Server } from './server.js';
import { handleSmb1Negotiate } from './handlers/negotiate.js';
import { signingKeyFor, type SigningKeyRef } from './channels.js';


function frameHeaderFor(length: number): Buffer {
  const fh = Buffer.allocUnsafe(4);
  writeFrameHeader(fh, 0, length);
  return fh;
}

/** NTSTATUS severity "error" (MS-ERREF 2.3): warnings such as BUFFER_OVERFLOW do not break a chain. */
function isError(status: number): boolean {
  return status >>> 30 === 3;
}

/** Negotiated connection state (MS-SMB2 3.3.1.7). */
export interface Negotiated {
  dialect: number;
  clientGuid: Buffer;
  clientCapabilities: number;
  clientSecurityMode: number;
  serverCapabilities: number;
  serverSecurityMode: number;
  /** 3.1.1: negotiated cipher (0 = none); 3.0/3.0.2: AES-128-CCM when the client can encrypt. */
  cipherId: number;
  /** Signing algorithm id (MS-SMB2 2.2.3.1.7). */
  signingAlgorithm: number;
  /** Connection.PreauthIntegrityHashValue after NEGOTIATE (3.1.1). */
  preauthHash: Buffer | undefined;
  /** The NEGOTIATE request as received, for FSCTL_VALIDATE_NEGOTIATE_INFO. */
  clientDialects: number[];
  supportsMultiCredit: boolean;
}

/**
 * A request being processed. The AbortController behind `signal` is created only when a handler
 * asks for the signal (few do), because creating one per request is measurable on small IO.
 */
class PendingRequest {
  asyncId: bigint | undefined = undefined;
  /** Set for standalone requests that may be answered asynchronously: what the interim response needs. */
  interim: { hdr: Smb2Header; session: Session | undefined; tree: Tree | undefined; encrypted: boolean } | undefined;
  private controller: AbortController | undefined;
  private cancelled = false;
  constructor(
    readonly messageId: bigint,
    readonly sessionId: bigint,
    readonly startedMs: number,
  ) {}

  get signal(): AbortSignal {
    if (!this.controller) {
      this.controller = new AbortController();
      if (this.cancelled) this.controller.abort();
    }
    return this.controller.signal;
  }

  abort(): void {
    this.cancelled = true;
    this.controller?.abort();
  }
}

/** Responses of one request frame, sent together once every message of the chain is done. */
interface FrameReplies {
  out: OutMessage[];
  encryptWith: Session | undefined;
  /** The message being processed is the last of the chain. */
  last: boolean;
}

interface OutMessage {
  /** Header + encoded body (+ padding when followed by another message of the compound). */
  head: Buffer;
  /** `head` with 4 spare bytes in front, where a lone plain response gets its direct-TCP header. */
  framed: Buffer;
  payload: Buffer | undefined;
  padding: number;
  sign: SigningKeyRef | undefined;
  /** Gives the payload's buffer back once it is no longer needed (see Reply.release). */
  release: (() => void) | undefined;
  /** Reply.afterEncode of a signed response: runs once the signature is in (a signed binding's preauth hash). */
  afterSign?: (parts: Buffer[]) => void;
}

let connectionSeq = 0;

export class Connection {
  readonly id = ++connectionSeq;
  readonly server: Server;
  readonly log: Logger;
  readonly remoteAddress: string;
  negotiated: Negotiated | undefined;
  /** Connection.PreauthIntegrityHashValue while NEGOTIATE is in progress (3.1.1). */
  readonly sessions = new Map<bigint, Session>();
  readonly credits = new CreditWindow(limits.creditsPerConnectionMax, 0n, limits.creditsInitial);
  private readonly socket: Socket;
  /** Reusable large buffers of this connection: received frames and READ data. */
  readonly bufferPool = new FramePool();
  private readonly decoder = new FrameDecoder(limits.frameBytesMax, this.bufferPool);
  private readonly pending = new Map<bigint, PendingRequest>();
  private readonly pendingAsync = new Map<bigint, PendingRequest>();
  private nextAsyncId = 1n;
  private inFlight = 0;
  private closed = false;
  private pausedForBackpressure = false;
  private sawFirstFrame = false;
  private authTimer: NodeJS.Timeout | undefined;
  private interimTimer: NodeJS.Timeout | undefined;
  /** Per-request timing lines at log level 'trace' (checked once per connection). */
  private readonly traceRequests: boolean;

  /**
   * `open` turns the accepted connection into a socket that reads into the buffer `target()` gives
   * before each read and reports the read to `onRead` (see Server.accept).
   */
  constructor(server: Server, open: (target: () => Buffer, onRead: (n: number, buf: Buffer) => void) => Socket) {
    this.server = server;
    const scratch = Buffer.allocUnsafeSlow(limits.socketReadBytes);
    const socket = open(
      () => this.decoder.readTarget(scratch),
      (n, buf) => (buf === scratch ? this.onData(scratch.subarray(0, n)) : this.onDirectRead(n)),
    );
    this.socket = socket;
    this.remoteAddress = socket.remoteAddress ?? 'unknown';
    this.log = server.log.child({ conn: this.id, peer: `${this.remoteAddress}:${socket.remotePort ?? 0}` });
    socket.setNoDelay(true);
    this.traceRequests = this.log.isLevelEnabled('trace');
    socket.on('error', (err) => this.log.debug({ err: err.message }, 'socket error'));
    socket.on('close', () => this.teardown());
    socket.on('drain', () => this.maybeResume());
    this.authTimer = setTimeout(() => {
      if (!this.hasValidSession()) this.close('no authenticated session within the time limit');
    }, limits.authTimeoutMs);
    this.authTimer.unref();
  }

  get isClosed(): boolean {
    return this.closed;
  }

  private hasValidSession(): boolean {
    for (const s of this.sessions.values()) if (s.state === 'valid' && s.channels.get(this)?.bound) return true;
    return false;
  }

  close(reason: string): void {
    if (this.closed) return;
    this.log.info({ reason }, 'closing connection');
    this.socket.destroy();
    this.teardown();
  }

  private teardown(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.authTimer) clearTimeout(this.authTimer);
    if (this.interimTimer) clearInterval(this.interimTimer);
    for (const p of this.pending.values()) p.abort();
    for (const p of this.pendingAsync.values()) p.abort();
    this.pending.clear();
    this.pendingAsync.clear();
    const sessions = [...this.sessions.values()];
    this.sessions.clear();
    // The session survives on its other channels; losing its last one disconnects it (channels.ts).
    for (const s of sessions) void this.server.removeChannel(s, this, 'connection closed', true);
    this.server.forgetConnection(this);
  }

  // ---------------------------------------------------------------- input

  /** Bytes were read straight into the frame being received (FrameDecoder.readTarget). */
  private onDirectRead(n: number): void {
    if (this.closed) return;
    this.decoder.commitDirect(n);
    this.onData(undefined);
  }

  private onData(chunk: Buffer | undefined): void {
    if (this.closed) return;
    try {
      if (chunk) this.decoder.push(chunk);
      for (;;) {
        const frame = this.decoder.next();
        if (!frame) break;
        this.startFrame(frame);
        if (this.closed) return;
      }
    } catch (err) {
      this.onBadInput(err);
      return;
    }
    this.applyBackpressure();
  }

  private onBadInput(err: unknown): void {
    if (err instanceof MalformedError) {
      this.log.warn({ err: err.message }, 'malformed input; closing connection');
    } else {
      this.log.error({ err }, 'internal error while reading input; closing connection');
    }
    this.close('bad input');
  }

  /** Stop reading while responses queue up or too much work is in flight (per-connection backpressure). */
  private applyBackpressure(): void {
    const tooMuch =
      this.socket.writableLength > limits.sendQueueBytesHigh ||
      this.inFlight >= limits.requestsInFlightPerConnectionMax ||
      this.decoder.buffered > limits.receiveBufferedBytesMax;
    if (tooMuch && !this.pausedForBackpressure) {
      this.pausedForBackpressure = true;
      this.socket.pause();
    }
  }

  private maybeResume(): void {
    if (!this.pausedForBackpressure || this.closed) return;
    if (this.socket.writableLength <= limits.sendQueueBytesHigh / 2 && this.inFlight < limits.requestsInFlightPerConnectionMax) {
      this.pausedForBackpressure = false;
      this.socket.resume();
    }
  }

  private startFrame(frame: Buffer): void {
    this.inFlight++;
    this.processFrame(frame)
      .catch((err) => this.onBadInput(err))
      .finally(() => {
        // Every handler of this frame has finished with its views: the gather buffer can be reused.
        this.decoder.release(frame);
        this.inFlight--;
        this.maybeResume();
      });
  }

  private async processFrame(frame: Buffer): Promise<void> {
    const first = !this.sawFirstFrame;
    this.sawFirstFrame = true;
    if (first && isSmb1Negotiate(frame)) {
      // MS-SMB2 3.3.5.3.1: multi-protocol negotiate upgrading to SMB2.
      const reply = handleSmb1Negotiate(this, frame);
      if (!reply) {
        this.close('SMB1 negotiate without an SMB2 dialect');
        return;
      }
      // The SMB1 request consumed MessageId 0; the response grants one credit for MessageId 1.
      this.credits.consume(0n, 1);
      this.credits.grant(1, 1);
      this.sendFrame([reply]);
      return;
    }
    if (frame.length < 4) throw new MalformedError('frame too short');
    if (isCompressionTransform(frame)) throw new MalformedError('compressed message but compression was not negotiated');

    let encryptedSession: Session | undefined;
    let plain = frame;
    let plainPooled: Buffer | undefined;
    if (isTransform(frame)) {
      // MS-SMB2 3.3.5.2.1.1: decrypt; any failure disconnects.
      const t = decodeTransformHeader(frame);
      const neg = this.negotiated;
      if (!neg || neg.dialect < Dialect.SMB300) throw new MalformedError('TRANSFORM before a 3.x negotiate');
      // Any session of the GlobalSessionTable can be decrypted (only its key holder can produce the
      // ciphertext); whether the messages inside may use it on this connection is checked per message,
      // so a session this connection is not a channel of gets STATUS_USER_SESSION_DELETED, encrypted.
      const session = this.server.lookupSession(t.SessionId);
      if (!session || !session.keys?.decryptionKey) throw new MalformedError('TRANSFORM for an unknown session');
      const cipherId = neg.cipherId;
      if (t.Flags !== 1) throw new MalformedError('TRANSFORM Flags/EncryptionAlgorithm is not 1');
      const nonce = t.Nonce.subarray(0, cipherId === 1 || cipherId === 3 ? 11 : 12);
      // GCM with the native accelerator: decrypted in place, inside the (pooled) frame buffer.
      const inPlace = unsealInPlace(cipherId as CipherId, session.keys.decryptionKey, nonce, t.aad, t.ciphertext, t.Signature);
      if (inPlace === false) throw new MalformedError('TRANSFORM failed to decrypt');
      // Otherwise large messages are decrypted into a pooled buffer, given back with the frame (GCM only).
      const into = inPlace === undefined && t.ciphertext.length >= 64 * 1024 ? this.bufferPool.acquire(t.ciphertext.length) : undefined;
      const out = inPlace ? t.ciphertext : unseal(cipherId as CipherId, session.keys.decryptionKey, nonce, t.aad, t.ciphertext, t.Signature, into);
      if (!out) {
        if (into) this.bufferPool.release(into);
        throw new MalformedError('TRANSFORM failed to decrypt');
      }
      plain = out;
      if (into) plainPooled = into;
      encryptedSession = session;
    }

    try {
      await this.processMessages(plain, encryptedSession);
    } finally {
      if (plainPooled) this.bufferPool.release(plainPooled);
    }
  }

  private async processMessages(plain: Buffer, encryptedSession: Session | undefined): Promise<void> {
    const messages = splitCompound(plain);
    const chain: ChainState = {
      sessionId: 0n,
      treeId: 0,
      fileId: undefined,
      previousStatus: NtStatus.SUCCESS,
      invalidRelated: false,
    };
    const replies: FrameReplies = { out: [], encryptWith: encryptedSession, last: false };
    let disconnect = false;
    const single = messages.length === 1;
    for (let i = 0; i < messages.length; i++) {
      const msg = messages[i]!;
      replies.last = i === messages.length - 1;
      const result = await this.processMessage(msg, chain, encryptedSession, i === 0, single, replies);
      if (result.kind === 'disconnect') {
        this.close(result.reason);
        return;
      }
      if (result.kind === 'none') continue;
      if (result.kind === 'sent') continue;
      replies.out.push(result.message);
      if (result.encryptWith && !replies.encryptWith) replies.encryptWith = result.encryptWith;
      if (result.disconnect) disconnect = true;
    }
    if (replies.out.length > 0) this.sendCompound(replies.out, replies.encryptWith);
    if (disconnect) this.close('handler asked to disconnect');
  }

  // ---------------------------------------------------------------- one message

  private async processMessage(
    msg: Buffer,
    chain: ChainState,
    encryptedSession: Session | undefined,
    firstInChain: boolean,
    single: boolean,
    frame: FrameReplies,
  ): Promise<
    | { kind: 'disconnect'; reason: string }
    | { kind: 'none' }
    | { kind: 'sent' }
    | { kind: 'reply'; message: OutMessage; encryptWith: Session | undefined; disconnect: boolean }
  > {
    const hdr = decodeHeader(msg);
    if (hdr.Flags & HeaderFlags.SERVER_TO_REDIR) return { kind: 'disconnect', reason: 'response flag set in a request' };
    const encrypted = encryptedSession !== undefined;
    const neg = this.negotiated;

    // CANCEL consumes no credit and gets no response (MS-SMB2 3.3.5.16).
    if (hdr.Command === Command.CANCEL) {
      this.cancel(hdr);
      return { kind: 'none' };
    }

    if (!neg && hdr.Command !== Command.NEGOTIATE) return { kind: 'disconnect', reason: 'request before NEGOTIATE' };

    // Credits (MS-SMB2 3.3.5.2.3, 3.3.5.2.5).
    const spec: CommandSpec | undefined = dispatchTable[hdr.Command];
    let charge = 1;
    if (neg && neg.supportsMultiCredit) {
      charge = Math.max(1, hdr.CreditCharge);
    }
    if (!this.credits.consume(hdr.MessageId, charge)) {
      return { kind: 'disconnect', reason: `MessageId ${hdr.MessageId} (charge ${charge}) outside the credit window` };
    }
    const grant = (status: number): number => this.grantCredits(hdr, status);

    const reply = (r: Reply, session: Session | undefined, tree: Tree | undefined) => {
      // MS-SMB2 3.3.5.2.7.2: a failure is remembered for the related requests that follow.
      chain.previousStatus = r.status;
      if (hdr.Command === Command.CREATE) chain.fileId = undefined;
      return this.buildReply(hdr, r, session, tree, encrypted, grant(r.status));
    };

    // Related operations take their ids from the chain (MS-SMB2 3.3.5.2.7.2).
    const related = (hdr.Flags & HeaderFlags.RELATED_OPERATIONS) !== 0;
    if (!related) {
      chain.invalidRelated = false;
      // An unrelated request starts a new chain context: its own ids, no inherited FileId.
      chain.sessionId = hdr.SessionId;
      chain.treeId = hdr.TreeId;
      chain.fileId = undefined;
    }
    if (related && firstInChain) {
      // MS-SMB2 3.3.5.2.7.2: the first request of a chain cannot be related; its ids still seed the
      // chain, and every related request after it fails the same way.
      chain.sessionId = hdr.SessionId;
      chain.treeId = hdr.TreeId;
      chain.invalidRelated = true;
      return reply({ status: NtStatus.INVALID_PARAMETER }, undefined, undefined);
    }
    if (related && chain.invalidRelated) return reply({ status: NtStatus.INVALID_PARAMETER }, undefined, undefined);
    const sessionId = related ? chain.sessionId : hdr.SessionId;
    const treeId = related ? chain.treeId : hdr.TreeId;

    if (!spec) return reply({ status: NtStatus.INVALID_PARAMETER }, undefined, undefined);

    if (neg?.supportsMultiCredit && spec.payloadSize) {
      // MS-SMB2 3.3.5.2.5: CreditCharge must cover the larger of the request and the expected response.
      let size = 0;
      try {
        size = spec.payloadSize(msg);
      } catch {
        size = 0;
      }
      const needed = size <= 0 ? 1 : Math.floor((size - 1) / 65536) + 1;
      if (Math.max(1, hdr.CreditCharge) < needed) {
        return reply({ status: NtStatus.INVALID_PARAMETER }, undefined, undefined);
      }
    } else if (neg && !neg.supportsMultiCredit && spec.payloadSize) {
      let size = 0;
      try {
        size = spec.payloadSize(msg);
      } catch {
        size = 0;
      }
      if (size > 65536) return reply({ status: NtStatus.INVALID_PARAMETER }, undefined, undefined);
    }

    // Session (MS-SMB2 3.3.5.2.9).
    let session: Session | undefined;
    if (hdr.Command === Command.SESSION_SETUP && sessionId !== 0n) {
      // MS-SMB2 3.3.5.2.4, 3.3.5.5: a SESSION_SETUP may name a session this connection is not (yet) a
      // channel of. A binding finds it in the GlobalSessionTable; any other such request is still
      // checked with the session's key, so that its error can be signed. The handler decides.
      session = this.server.lookupSession(sessionId);
      if (!session) {
        chain.sessionId = sessionId;
        return reply({ status: related ? NtStatus.INVALID_PARAMETER : NtStatus.USER_SESSION_DELETED }, undefined, undefined);
      }
    } else if (spec.needsSession) {
      session = this.server.findSession(sessionId, this);
      if (!session) {
        chain.sessionId = sessionId;
        // A related request inheriting an unknown session is malformed rather than expired (Windows
        // behaviour smbtorture's compound.invalid2 checks).
        return reply({ status: related ? NtStatus.INVALID_PARAMETER : NtStatus.USER_SESSION_DELETED }, undefined, undefined);
      }
      if (spec.needsSession && session.state !== 'valid') {
        if (session.state === 'expired') return reply({ status: NtStatus.NETWORK_SESSION_EXPIRED }, session, undefined);
        if (hdr.Command !== Command.SESSION_SETUP) return reply({ status: NtStatus.USER_SESSION_DELETED }, undefined, undefined);
      }
    } else if (sessionId !== 0n) {
      session = this.server.findSession(sessionId, this);
    }

    // Signature and encryption rules (MS-SMB2 3.3.5.2.4, 3.3.5.2.9).
    if (!encrypted && neg) {
      const signed = (hdr.Flags & HeaderFlags.SIGNED) !== 0;
      if (signed && session?.keys && hdr.Command !== Command.NEGOTIATE) {
        // Channel.SigningKey on one of the session's channels, Session.SigningKey elsewhere (channels.ts).
        const key = signingKeyFor(session, this);
        if (!key || !this.verify(msg, hdr, key)) {
          this.log.warn({ cmd: hdr.Command, session: session.id.toString(16) }, 'bad signature');
          // The error of a SESSION_SETUP is signed: the client checks it before reporting the status.
          const sessionSetup = hdr.Command === Command.SESSION_SETUP;
          return reply({ status: NtStatus.ACCESS_DENIED, ...(sessionSetup ? { signWithSession: session } : {}) }, undefined, undefined);
        }
      } else if (
        !signed &&
        session &&
        session.state === 'valid' &&
        session.signingRequired &&
        (spec.needsSession || (hdr.Command === Command.SESSION_SETUP && session.channels.get(this)?.bound))
      ) {
        // MS-SMB2 3.3.5.2.4: unsigned request of a session that requires signing (a re-authentication too).
        return reply({ status: NtStatus.ACCESS_DENIED }, undefined, undefined);
      }
      const reauthentication = hdr.Command === Command.SESSION_SETUP && session?.channels.get(this)?.bound === true;
      if (session && session.encryptData && session.state === 'valid' && neg.dialect >= Dialect.SMB300 && (spec.needsSession || reauthentication)) {
        // MS-SMB2 3.3.5.2.9: unencrypted request on a session that requires encryption (a
        // re-authentication too; a binding is unencrypted by nature, 3.3.5.5.2).
        return reply({ status: NtStatus.ACCESS_DENIED }, session, undefined);
      }
    } else if (encrypted && session && encryptedSession !== session && spec.needsSession) {
      // A message encrypted for one session must not act on another.
      return reply({ status: NtStatus.ACCESS_DENIED }, undefined, undefined);
    }

    // Tree (MS-SMB2 3.3.5.2.11).
    let tree: Tree | undefined;
    if (spec.needsTree) {
      tree = session?.trees.get(treeId);
      if (!tree) {
        chain.sessionId = sessionId;
        chain.treeId = treeId;
        return reply({ status: NtStatus.NETWORK_NAME_DELETED }, session, undefined);
      }
      if (tree.encrypt && !encrypted && neg && neg.dialect >= Dialect.SMB300) {
        return reply({ status: NtStatus.ACCESS_DENIED }, session, tree);
      }
    }

    chain.sessionId = sessionId;
    chain.treeId = treeId;

    // Open (the FileId sits at a fixed offset for each command that has one).
    let open: Open | undefined;
    if (spec.fileIdOffset !== undefined) {
      if (msg.length < spec.fileIdOffset + 16) return reply({ status: NtStatus.INVALID_PARAMETER }, session, tree);
      let fid: FileIdRef = {
        Persistent: msg.readBigUInt64LE(spec.fileIdOffset),
        Volatile: msg.readBigUInt64LE(spec.fileIdOffset + 8),
      };
      if (related && isFileIdAny(fid)) {
        if (!chain.fileId) {
          const status = isError(chain.previousStatus) ? chain.previousStatus : NtStatus.FILE_CLOSED;
          return reply({ status }, session, tree);
        }
        fid = chain.fileId;
      }
      open = session?.opens.get(fid.Volatile);
      if (!open || open.persistent !== fid.Persistent || open.closed || (tree && open.tree !== tree)) {
        if (spec.fileIdOptional) open = undefined;
        else {
          const status = NtStatus.FILE_CLOSED;
          return reply({ status }, session, tree);
        }
      }
      if (open) chain.fileId = { Persistent: open.persistent, Volatile: open.volatile };
    }

    const pending = new PendingRequest(hdr.MessageId, sessionId, this.server.clock.monotonicMs());
    this.pending.set(hdr.MessageId, pending);
    const ctx: RequestContext = {
      conn: this,
      hdr,
      msg,
      encrypted,
      session,
      tree,
      open,
      chain,
      get signal() {
        return pending.signal;
      },
      goAsync: () => {
        // MS-SMB2 3.3.4.2: a standalone request, or the last of a chain, may be answered with an
        // interim STATUS_PENDING now; in the middle of a chain it cannot (the caller then fails it,
        // as Windows does: MS-SMB2 <159>).
        if (pending.asyncId !== undefined) return true;
        if (!frame.last) return false;
        if (this.pendingAsync.size >= limits.asyncRequestsPerConnectionMax) return false;
        const asyncId = this.nextAsyncId++;
        pending.asyncId = asyncId;
        this.pendingAsync.set(asyncId, pending);
        const credits = this.grantCredits(hdr, NtStatus.PENDING);
        const interim = this.buildMessage(hdr, { status: NtStatus.PENDING }, session, tree, encrypted, credits, asyncId);
        // Whatever the chain answered so far goes out with the interim response, now.
        frame.out.push(interim.message);
        if (interim.encryptWith && !frame.encryptWith) frame.encryptWith = interim.encryptWith;
        this.sendCompound(frame.out, frame.encryptWith);
        frame.out = [];
        return true;
      },
    };

    let result: Reply;
    try {
      if (single && spec.mayGoAsync) {
        pending.interim = { hdr, session, tree, encrypted };
        this.startInterimSweep();
      }
      if (this.traceRequests) {
        const t0 = performance.now();
        result = await spec.handler(ctx);
        this.log.trace({ cmd: hdr.Command, mid: Number(hdr.MessageId), status: result.status >>> 0, ms: +(performance.now() - t0).toFixed(3) }, 'request');
      } else {
        result = await spec.handler(ctx);
      }
    } catch (err) {
      result = { status: this.server.statusForError(err, this.log, hdr.Command) };
    } finally {
      this.pending.delete(hdr.MessageId);
      if (pending.asyncId !== undefined) this.pendingAsync.delete(pending.asyncId);
    }
    if (this.closed) return { kind: 'none' };

    chain.previousStatus = result.status;
    if (hdr.Command === Command.CREATE) {
      if (result.createdFileId) chain.fileId = result.createdFileId;
      else chain.fileId = undefined;
    }
    if (result.sessionId !== undefined) chain.sessionId = result.sessionId;
    if (result.treeId !== undefined) chain.treeId = result.treeId;
    if (result.noResponse) return { kind: 'none' };

    const sessionForReply = result.signWithSession ?? session ?? (result.sessionId !== undefined ? this.server.findSession(result.sessionId, this) : undefined);
    if (pending.asyncId !== undefined) {
      // The interim response already granted credits; the final async response grants none.
      const message = this.buildMessage(hdr, result, sessionForReply, tree, encrypted, 0, pending.asyncId);
      this.sendCompound([message.message], message.encryptWith);
      if (result.disconnect) this.close('handler asked to disconnect');
      return { kind: 'sent' };
    }
    return this.buildReply(hdr, result, sessionForReply, tree, encrypted, grant(result.status));
  }

  /**
   * Interim responses (MS-SMB2 3.3.4.2): one sweep timer per connection, running only while some
   * request that may go async is pending, answers those older than interimAfterMs with
   * STATUS_PENDING and an AsyncId. (A timer per request costs more than the small IO it guards.)
   */
  private startInterimSweep(): void {
    if (this.interimTimer || this.closed) return;
    const every = Math.max(10, Math.floor(this.server.interimAfterMs / 2));
    this.interimTimer = setInterval(() => this.sweepInterim(), every);
    this.interimTimer.unref();
  }

  private sweepInterim(): void {
    const now = this.server.clock.monotonicMs();
    let waiting = 0;
    for (const p of this.pending.values()) {
      if (!p.interim || p.asyncId !== undefined) continue;
      waiting++;
      if (now - p.startedMs >= this.server.interimAfterMs) this.goAsync(p);
    }
    if (waiting === 0 && this.interimTimer) {
      clearInterval(this.interimTimer);
      this.interimTimer = undefined;
    }
  }

  private goAsync(p: PendingRequest): void {
    const i = p.interim!;
    if (this.pendingAsync.size >= limits.asyncRequestsPerConnectionMax) return;
    const asyncId = this.nextAsyncId++;
    p.asyncId = asyncId;
    this.pendingAsync.set(asyncId, p);
    const credits = this.grantCredits(i.hdr, NtStatus.PENDING);
    const interimReply = this.buildMessage(i.hdr, { status: NtStatus.PENDING }, i.session, i.tree, i.encrypted, credits, asyncId);
    this.sendCompound([interimReply.message], interimReply.encryptWith);
  }

  private grantCredits(hdr: Smb2Header, _status: number): number {
    const requested = Math.max(hdr.Credits, 1);
    return this.credits.grant(requested, limits.creditsGrantPerResponseMax);
  }

  private cancel(hdr: Smb2Header): void {
    // MS-SMB2 3.3.5.16: find the request by AsyncId (async) or MessageId (sync) and cancel it.
    const target =
      hdr.Flags & HeaderFlags.ASYNC_COMMAND ? this.pendingAsync.get(hdr.AsyncId) : this.pending.get(hdr.MessageId);
    if (target && target.sessionId === hdr.SessionId) target.abort();
  }

  private verify(msg: Buffer, hdr: Smb2Header, key: SigningKeyRef): boolean {
    const saved = Buffer.from(msg.subarray(SIGNATURE_OFFSET, SIGNATURE_OFFSET + 16));
    msg.fill(0, SIGNATURE_OFFSET, SIGNATURE_OFFSET + 16);
    try {
      return verifySignature(key.algorithm as SigningAlgorithm, key.key, [msg], saved, {
        messageId: hdr.MessageId,
        isServer: false,
        isCancel: hdr.Command === Command.CANCEL,
      });
    } finally {
      saved.copy(msg, SIGNATURE_OFFSET);
    }
  }

  // ---------------------------------------------------------------- output

  private buildReply(
    hdr: Smb2Header,
    r: Reply,
    session: Session | undefined,
    tree: Tree | undefined,
    encrypted: boolean,
    credits: number,
  ): { kind: 'reply'; message: OutMessage; encryptWith: Session | undefined; disconnect: boolean } {
    const built = this.buildMessage(hdr, r, session, tree, encrypted, credits, undefined);
    return { kind: 'reply', message: built.message, encryptWith: built.encryptWith, disconnect: r.disconnect ?? false };
  }

  private buildMessage(
    hdr: Smb2Header,
    r: Reply,
    session: Session | undefined,
    tree: Tree | undefined,
    encrypted: boolean,
    credits: number,
    asyncId: bigint | undefined,
  ): { message: OutMessage; encryptWith: Session | undefined } {
    const body: BodyEncoder = r.body ?? errorResponse();
    const bodyLength = body.byteLength();
    const framed = Buffer.allocUnsafe(4 + SMB2_HEADER_SIZE + bodyLength);
    const head = framed.subarray(4);
    const neg = this.negotiated;

    // Encrypt when the request was encrypted or the session/tree requires it (MS-SMB2 3.3.4.1.4).
    let encryptWith: Session | undefined;
    const s = r.signWithSession ?? session;
    if (s && s.keys?.encryptionKey && neg && neg.dialect >= Dialect.SMB300) {
      // The final SESSION_SETUP response is signed, not encrypted, unless the request was encrypted
      // (a re-authentication on an encrypted session): the client derives its keys from it.
      if (hdr.Command === Command.SESSION_SETUP) {
        if (encrypted) encryptWith = s;
      } else if (encrypted || (s.encryptData && s.state === 'valid') || tree?.encrypt) {
        encryptWith = s;
      }
    }
    // Sign when not encrypted and the request was signed or the session requires it (3.3.4.1.1).
    let sign: SigningKeyRef | undefined;
    if (!encryptWith && s?.keys) {
      const requestSigned = (hdr.Flags & HeaderFlags.SIGNED) !== 0;
      const statusAllowsSigning = r.status !== NtStatus.USER_SESSION_DELETED || !!r.signWithSession;
      if ((requestSigned || s.signingRequired || r.signWithSession) && statusAllowsSigning && hdr.Command !== Command.NEGOTIATE) {
        // The key of this connection's channel, or Session.SigningKey where it has none (channels.ts).
        if (s.state === 'valid' || r.signWithSession) sign = r.signingKey ?? signingKeyFor(s, this);
      }
    }
    let flags = HeaderFlags.SERVER_TO_REDIR | (hdr.Flags & HeaderFlags.RELATED_OPERATIONS);
    if (hdr.Flags & HeaderFlags.PRIORITY_MASK) flags |= hdr.Flags & HeaderFlags.PRIORITY_MASK;
    if (sign) flags |= HeaderFlags.SIGNED;
    // A signed request naming a session this connection does not have gets STATUS_USER_SESSION_DELETED
    // with SMB2_FLAGS_SIGNED set even without a key to sign with: clients do not check the signature of
    // that status but require the flag (Windows does so; smbtorture smb2.session.bind2).
    if (!sign && r.status === NtStatus.USER_SESSION_DELETED && hdr.Flags & HeaderFlags.SIGNED && hdr.Command !== Command.NEGOTIATE) {
      flags |= HeaderFlags.SIGNED;
    }
    if (asyncId !== undefined) flags |= HeaderFlags.ASYNC_COMMAND;
    encodeHeader(
      {
        CreditCharge: hdr.CreditCharge,
        Status: r.status >>> 0,
        Command: hdr.Command,
        Credits: credits,
        Flags: flags,
        NextCommand: 0,
        MessageId: hdr.MessageId,
        AsyncId: asyncId ?? 0n,
        TreeId: asyncId !== undefined ? 0 : r.treeId ?? hdr.TreeId,
        SessionId: r.sessionId ?? hdr.SessionId,
      },
      head,
      0,
    );
    body.encodeInto(head, SMB2_HEADER_SIZE);
    // The 3.1.1 preauth hash covers the message as sent: a signed one is hashed once signed (sendCompound).
    if (r.afterEncode && !sign) r.afterEncode(body.payload ? [head, body.payload] : [head]);
    if (r.status !== NtStatus.SUCCESS && r.status !== NtStatus.MORE_PROCESSING_REQUIRED && r.status !== NtStatus.PENDING) {
      this.log.debug({ cmd: hdr.Command, status: ntStatusName(r.status) }, 'request failed');
    }
    const message: OutMessage = { head, framed, payload: body.payload, padding: 0, sign, release: r.release };
    if (r.afterEncode && sign) message.afterSign = r.afterEncode;
    return { message, encryptWith };
  }

  /**
   * Sends an unsolicited OPLOCK_BREAK notification (oplock 2.2.23.1 or lease 2.2.23.2): MessageId all
   * ones, SessionId and TreeId 0, unsigned (MS-SMB2 3.3.4.6, 3.3.4.7). On 3.x it is encrypted with
   * `session` when that session or the open's tree encrypts (3.3.4.1.4); the transform header then
   * names the session.
   */
  sendBreakNotification(body: BodyEncoder, session: Session | undefined, treeEncrypts: boolean): void {
    if (this.closed || !this.negotiated) return;
    const bodyLength = body.byteLength();
    const framed = Buffer.allocUnsafe(4 + SMB2_HEADER_SIZE + bodyLength);
    const head = framed.subarray(4);
    encodeHeader(
      {
        Command: Command.OPLOCK_BREAK,
        MessageId: 0xffffffffffffffffn,
        Status: NtStatus.SUCCESS,
        Credits: 0,
        Flags: HeaderFlags.SERVER_TO_REDIR,
        TreeId: 0,
        SessionId: 0n,
      },
      head,
      0,
    );
    body.encodeInto(head, SMB2_HEADER_SIZE);
    const encrypt =
      session?.keys?.encryptionKey !== undefined &&
      this.negotiated.dialect >= Dialect.SMB300 &&
      (session.encryptData || treeEncrypts);
    this.sendCompound([{ head, framed, payload: undefined, padding: 0, sign: undefined, release: undefined }], encrypt ? session : undefined);
  }

  /** Assembles, signs and (optionally) encrypts one response frame holding one or more messages. */
  private sendCompound(messages: OutMessage[], encryptWith: Session | undefined): void {
    if (this.closed) return;
    if (messages.length === 1 && !encryptWith) {
      // The common case: one plain response, its frame header written into the spare bytes in front.
      const m = messages[0]!;
      const parts = m.payload && m.payload.length ? [m.head, m.payload] : [m.head];
      if (m.sign) this.sign(parts, m.sign);
      m.afterSign?.(parts.slice());
      let size = 0;
      for (const p of parts) size += p.length;
      writeFrameHeader(m.framed, 0, size);
      parts[0] = m.framed;
      this.writeParts(parts, m.release);
      return;
    }
    // Chain (MS-SMB2 3.3.4.1.3): every message of a compound response is padded to 8 bytes, the last
    // one too (as Windows does, and smbtorture's compound-padding checks); all but the last point to
    // the next. A lone response is not padded.
    if (messages.length > 1) {
      for (let i = 0; i < messages.length; i++) {
        const m = messages[i]!;
        const size = m.head.length + (m.payload?.length ?? 0);
        m.padding = align8(size) - size;
        if (i < messages.length - 1) m.head.writeUInt32LE(size + m.padding, 20);
      }
    }
    const parts: Buffer[] = [];
    for (const m of messages) {
      const own: Buffer[] = [m.head];
      if (m.payload && m.payload.length) own.push(m.payload);
      if (m.padding) own.push(Buffer.alloc(m.padding));
      if (m.sign && !encryptWith) this.sign(own, m.sign);
      m.afterSign?.(m.payload?.length ? [m.head, m.payload] : [m.head]);
      parts.push(...own);
    }
    const releases: (() => void)[] = [];
    for (const m of messages) if (m.release) releases.push(m.release);
    const releaseAll = releases.length === 0 ? undefined : () => releases.forEach((r) => r());
    if (encryptWith) {
      this.sendEncrypted(parts, encryptWith, releaseAll);
      return;
    }
    this.sendFrame(parts, releaseAll);
  }

  private sign(parts: Buffer[], key: SigningKeyRef): void {
    const head = parts[0]!;
    head.fill(0, SIGNATURE_OFFSET, SIGNATURE_OFFSET + 16);
    const sig = computeSignature(key.algorithm as SigningAlgorithm, key.key, parts, {
      messageId: head.readBigUInt64LE(24),
      isServer: true,
      isCancel: head.readUInt16LE(12) === Command.CANCEL,
    });
    sig.copy(head, SIGNATURE_OFFSET, 0, 16);
  }

  /** `onDone` runs once the plaintext parts are no longer needed. */
  private sendEncrypted(parts: Buffer[], session: Session, onDone?: () => void): void {
    const neg = this.negotiated!;
    const cipherId = neg.cipherId;
    let size = 0;
    for (const p of parts) size += p.length;
    const nonce = session.nonces!.next();
    const nonceField = Buffer.alloc(16);
    nonce.copy(nonceField, 0);
    const th = encodeTransformHeader({ Nonce: nonceField, OriginalMessageSize: size, SessionId: session.id, Flags: 1 });
    const aad = th.subarray(20, TRANSFORM_HEADER_SIZE);
    // The response's parts are this connection's own buffers: with the native accelerator they are
    // encrypted in place and sent as they are (released once written).
    const inPlaceTag = sealInPlace(cipherId as CipherId, session.keys!.encryptionKey!, nonce, aad, parts);
    if (inPlaceTag) {
      inPlaceTag.copy(th, 4);
      this.writeParts([frameHeaderFor(TRANSFORM_HEADER_SIZE + size), th, ...parts], onDone);
      return;
    }
    const { ciphertext, tag } = seal(cipherId as CipherId, session.keys!.encryptionKey!, nonce, aad, parts);
    tag.copy(th, 4);
    const out = Array.isArray(ciphertext) ? ciphertext : [ciphertext];
    // Sealing wrote the ciphertext elsewhere: the plaintext parts are free at once.
    onDone?.();
    this.sendFrame([th, ...out]);
  }

  /** Writes one direct-TCP frame made of `parts`, without copying them (cork + writev). */
  sendFrame(parts: Buffer[], onWritten?: () => void): void {
    if (this.closed) return;
    let size = 0;
    for (const p of parts) size += p.length;
    const fh = Buffer.allocUnsafe(4);
    writeFrameHeader(fh, 0, size);
    this.writeParts([fh, ...parts], onWritten);
  }

  /** Writes already framed bytes in one writev (cork/uncork); `onWritten` once all are written. */
  private writeParts(parts: Buffer[], onWritten?: () => void): void {
    if (this.closed) return;
    this.socket.cork();
    for (let i = 0; i < parts.length; i++) {
      // The last write's callback runs once every part has gone to the kernel (or failed).
      if (onWritten && i === parts.length - 1) this.socket.write(parts[i]!, () => onWritten());
      else this.socket.write(parts[i]!);
    }
    this.socket.uncork();
    this.applyBackpressure();
  }
}
