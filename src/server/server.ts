// The SMB server: listeners, connections, the session registry and server-wide configuration.

import { createServer, Socket, type Server as NetServer } from 'node:net';
import type { Logger } from 'pino';
import { limits } from '../base/limits.js';
import { TesseraError } from '../base/errors.js';
import { systemClock, systemRandom, type Clock, type Random } from '../base/clock.js';
import { IosError } from '../ios/spi.js';
import type { CredentialStore } from '../auth/credential-store.js';
import { LogonThrottle } from '../auth/throttle.js';
import { NtStatus } from '../protocol/ntstatus.js';
import { Connection } from './connection.js';
import type { ServerIdentity, Session, ShareDef } from './state.js';
import { statusForIosError } from './status-map.js';
import type { FsStats } from '../ios/spi.js';
import { RpcPipeEndpoint, openablePipeNames, type PipeNameTable, type RpcService } from '../rpc/pipe.js';
import { createSrvsvcService, STYPE } from '../rpc/srvsvc.js';
import { buildSecurityDescriptor } from '../protocol/security-descriptor.js';
import { NotifyHub } from './notify.js';
import { boundConnections, newChannel, type Channel } from './channels.js';
import type { BreakSink, NodeOpenTable } from './open-table.js';
import { endOpen, endOpenClosedByTable } from './opens.js';
import type { Open } from './state.js';
import { leaseBreakNotification, LeaseBreakFlags, oplockBreakBody } from '../protocol/oplock-break.js';
import { OplockLevel } from '../protocol/create.js';

/** A self-relative descriptor without a DACL (everything granted), for directories that have none. */
const OPEN_DIRECTORY_SD = buildSecurityDescriptor({ Control: 0 });

export interface ServerOptions {
  identity: ServerIdentity;
  shares: ShareDef[];
  credentials: CredentialStore;
  /** Dialects offered, e.g. [0x0202, 0x0210, 0x0300, 0x0302, 0x0311]. */
  dialects: number[];
  /** Encryption required for every session (MS-SMB2 3.3.1.5 EncryptData). */
  encryptRequired: boolean;
  /** Refuse unencrypted access to shares/sessions that require encryption (RejectUnencryptedAccess). */
  rejectUnencryptedAccess: boolean;
  /** Signing required by the server (RequireMessageSigning). */
  signingRequired: boolean;
  /** Cipher ids in preference order (MS-SMB2 2.2.3.1.2); empty disables encryption. */
  ciphers: number[];
  /** Signing algorithm ids in preference order (2.2.3.1.7). */
  signingAlgorithms: number[];
  allowGuest: boolean;
  allowAnonymous: boolean;
  logger: Logger;
  clock?: Clock;
  random?: Random;
  /** Milliseconds before a slow request gets an interim (STATUS_PENDING) response. */
  interimAfterMs?: number;
  /** Sessions may be bound to more connections (MS-SMB2 3.3.1.5 IsMultiChannelCapable); default true. */
  multiChannel?: boolean;
  /** This node's side of the replicated open table (every disk open is recorded there). */
  openTable: NodeOpenTable;
}

export class Server implements BreakSink {
  readonly options: ServerOptions;
  readonly openTable: NodeOpenTable;
  /** Files and streams whose delete is pending until their last open closes (MS-FSA 2.1.5.4). */
  readonly pendingDeletes = new Map<string, { path: string; stream?: string }>();
  readonly log: Logger;
  readonly clock: Clock;
  readonly random: Random;
  readonly throttle: LogonThrottle;
  readonly interimAfterMs: number;
  private readonly shares = new Map<string, ShareDef>();
  /** GlobalSessionTable (MS-SMB2 3.3.1.5); a session's connections are its channels (channels.ts). */
  private readonly sessions = new Map<bigint, Session>();
  private readonly connections = new Set<Connection>();
  private readonly perAddress = new Map<string, number>();
  private readonly listeners: NetServer[] = [];
  private nextVolatile = 1n;
  private readonly volumeCache = new Map<ShareDef, { at: number; stats: FsStats }>();
  private readonly sdCache = new Map<ShareDef, Map<string, { at: number; sd: Buffer | undefined }>>();
  /** Directory watches (CHANGE_NOTIFY) fed by this server's own operations. */
  readonly notify = new NotifyHub();
  /** Named pipes served on IPC$ (DCE/RPC endpoints). */
  readonly pipes: PipeNameTable;

  constructor(options: ServerOptions) {
    this.options = options;
    this.openTable = options.openTable;
    this.log = options.logger;
    this.clock = options.clock ?? systemClock;
    this.random = options.random ?? systemRandom;
    this.interimAfterMs = options.interimAfterMs ?? 500;
    this.throttle = new LogonThrottle(limits, this.clock);
    for (const share of options.shares) this.shares.set(share.name.toUpperCase(), share);
    const services: RpcService[] = [
      createSrvsvcService({
        serverName: options.identity.netbiosName,
        serverComment: 'Tessera SMB3 server',
        listShares: () =>
          this.allShares().map((sh) => ({
            name: sh.name,
            type: sh.type === 'ipc' ? STYPE.IPC | STYPE.SPECIAL : STYPE.DISKTREE,
            remark: sh.comment,
          })),
      }),
    ];
    this.pipes = openablePipeNames(services);
  }

  /** A DCE/RPC endpoint for one pipe open (its state is per open, like a Windows named pipe instance). */
  newPipe(found: { pipeName: string; services: RpcService[] }, session: Session): RpcPipeEndpoint {
    return new RpcPipeEndpoint(found.services, {
      maxBufferedBytes: limits.pipeBufferedBytesMax,
      caller: { userName: session.user, domain: session.domain, isAdmin: false },
      pipeName: found.pipeName,
    });
  }

  /**
   * Security descriptor of a directory (undefined when none was ever set), for access checks and
   * inheritance at CREATE. Cached per share for a second; SET_INFO on security clears the share's cache.
   */
  async parentSecurity(share: ShareDef, dirPath: string): Promise<Buffer | undefined> {
    const now = this.clock.monotonicMs();
    let cache = this.sdCache.get(share);
    if (!cache) {
      cache = new Map();
      this.sdCache.set(share, cache);
    }
    const hit = cache.get(dirPath.toUpperCase());
    if (hit && now - hit.at < 1000) return hit.sd;
    let sd: Buffer | undefined;
    try {
      const { handle } = await share.ios!.open(dirPath, { mode: 'open', directory: true, write: false });
      try {
        sd = await handle.getSecurity();
      } finally {
        await handle.close();
      }
    } catch (err) {
      if (!(err instanceof IosError)) throw err;
      sd = undefined; // a missing parent fails the open itself with the right status
    }
    // A directory without a stored descriptor behaves as one with a NULL DACL: it grants everything,
    // including FILE_DELETE_CHILD and FILE_LIST_DIRECTORY to the objects below it (MS-FSA 2.1.5.1.2.1).
    sd ??= OPEN_DIRECTORY_SD;
    if (cache.size >= 4096) cache.clear();
    cache.set(dirPath.toUpperCase(), { at: now, sd });
    return sd;
  }

  forgetSecurity(share: ShareDef): void {
    this.sdCache.delete(share);
  }

  /** File system figures of a share, cached for a second (fresh=true bypasses the cache). */
  async volumeInfo(share: ShareDef, fresh = false): Promise<FsStats> {
    const now = this.clock.monotonicMs();
    const cached = this.volumeCache.get(share);
    if (cached && !fresh && now - cached.at < 1000) return cached.stats;
    const stats = await share.ios!.statfs();
    this.volumeCache.set(share, { at: now, stats });
    return stats;
  }

  get identity(): ServerIdentity {
    return this.options.identity;
  }

  shareByName(name: string): ShareDef | undefined {
    return this.shares.get(name.toUpperCase());
  }

  allShares(): ShareDef[] {
    return [...this.shares.values()];
  }

  /** Listens on host:port; rejects with a TesseraError whose message says what to do. */
  async listen(host: string, port: number): Promise<{ host: string; port: number }> {
    // pauseOnConnect: the accepted handle is re-wrapped to read into a per-connection buffer (accept()).
    const srv = createServer({ noDelay: true, allowHalfOpen: false, pauseOnConnect: true }, (socket) => this.accept(socket));
    await new Promise<void>((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException) => {
        srv.off('listening', onListening);
        let hint = '';
        if (err.code === 'EADDRINUSE') hint = `port ${port} on ${host} is already in use; pick another with --listen ${host}:PORT`;
        else if (err.code === 'EACCES') hint = `binding ${host}:${port} needs privileges (ports below 1024 need root or CAP_NET_BIND_SERVICE); run as root or pick another with --listen ${host}:4450`;
        else if (err.code === 'EADDRNOTAVAIL') hint = `address ${host} is not configured on this machine`;
        else hint = err.message;
        reject(new TesseraError('TESSERA_LISTEN_FAILED', `cannot listen on ${host}:${port}: ${hint}`, { cause: err }));
      };
      const onListening = () => {
        srv.off('error', onError);
        resolve();
      };
      srv.once('error', onError);
      srv.once('listening', onListening);
      srv.listen({ host, port, backlog: 511 });
    });
    srv.on('error', (err) => this.log.error({ err }, 'listener error'));
    this.listeners.push(srv);
    const addr = srv.address();
    const bound = typeof addr === 'object' && addr ? { host: addr.address, port: addr.port } : { host, port };
    this.log.info(bound, 'listening');
    return bound;
  }

  /** The addresses this server listens on (FSCTL_QUERY_NETWORK_INTERFACE_INFO, MS-SMB2 3.3.5.15.11). */
  listeningAddresses(): { host: string; port: number }[] {
    const out: { host: string; port: number }[] = [];
    for (const l of this.listeners) {
      const a = l.address();
      if (typeof a === 'object' && a) out.push({ host: a.address, port: a.port });
    }
    return out;
  }

  private accept(socket: Socket): void {
    const address = socket.remoteAddress ?? 'unknown';
    const count = this.perAddress.get(address) ?? 0;
    if (count >= limits.connectionsPerAddressMax || this.connections.size >= limits.connectionsMax) {
      this.log.warn({ address }, 'connection limit reached; refusing');
      socket.destroy();
      return;
    }
    this.perAddress.set(address, count + 1);
    const conn = new Connection(this, (target, onRead) => adoptSocket(socket, target, onRead));
    this.connections.add(conn);
  }

  forgetConnection(conn: Connection): void {
    if (!this.connections.delete(conn)) return;
    const n = (this.perAddress.get(conn.remoteAddress) ?? 1) - 1;
    if (n <= 0) this.perAddress.delete(conn.remoteAddress);
    else this.perAddress.set(conn.remoteAddress, n);
  }

  // ---- sessions and their channels (MS-SMB2 3.3.1.5 GlobalSessionTable, 3.3.1.8 ChannelList) ----

  /** Enters a new session in the GlobalSessionTable with `conn` as its first channel (3.3.5.5.1). */
  registerSession(session: Session, conn: Connection, signingAlgorithm: number): Channel {
    this.sessions.set(session.id, session);
    return this.addChannel(session, conn, newChannel(conn, { bound: true, signingAlgorithm }));
  }

  /** Adds a channel (a binding in progress, or the first connection) to a session. */
  addChannel(session: Session, conn: Connection, channel: Channel): Channel {
    session.channels.set(conn, channel);
    conn.sessions.set(session.id, session);
    return channel;
  }

  /**
   * Removes `conn` from a session's channels. A session left without a bound channel ends: its opens
   * are disconnected when the connection was lost (`lost`; durable ones wait for a reconnect), closed
   * otherwise.
   */
  async removeChannel(session: Session, conn: Connection, reason: string, lost = false): Promise<void> {
    if (!session.channels.delete(conn)) return;
    conn.sessions.delete(session.id);
    if (this.sessions.get(session.id) !== session) return; // already ended
    for (const c of session.channels.values()) if (c.bound) return;
    await this.destroySession(session, reason, lost);
  }

  /** Sessions with a tree connected to `share` (their opens are this node's opens of it). */
  *sessionsOpenOn(share: ShareDef): Iterable<Session> {
    for (const s of this.sessions.values()) {
      for (const t of s.trees.values()) {
        if (t.share === share) {
          yield s;
          break;
        }
      }
    }
  }

  /** A session of the GlobalSessionTable, whichever connections it is on (binding, 3.3.5.5.2). */
  lookupSession(id: bigint): Session | undefined {
    return this.sessions.get(id);
  }

  /** Allocates a session id unique on this server (never 0, never all ones). */
  newSessionId(): bigint {
    for (;;) {
      const id = this.random.bytes(8).readBigUInt64LE(0) & 0x7fffffffffffffffn;
      if (id !== 0n && !this.sessions.has(id)) return id;
    }
  }

  /** A session usable on this connection: `conn` is one of its bound channels (MS-SMB2 3.3.5.2.9). */
  findSession(id: bigint, conn: Connection): Session | undefined {
    const session = this.sessions.get(id);
    return session?.channels.get(conn)?.bound ? session : undefined;
  }

  allocateVolatileId(): bigint {
    return this.nextVolatile++;
  }

  /** A connection the server's own messages to a session go out on: one of its bound channels. */
  connectionFor(session: Session): Connection | undefined {
    return boundConnections(session)[0];
  }

  /**
   * Ends a session: its trees go, and its opens are closed, or, when the connection was lost
   * (`lost`), disconnected: durable and resilient ones then wait in the open table for a reconnect
   * (MS-SMB2 3.3.7.1). LOGOFF closes durable opens too (MS-SMB2 3.3.5.6).
   */
  async destroySession(session: Session, reason: string, lost = false): Promise<void> {
    // Gone from the GlobalSessionTable and from every channel (a LOGOFF on any channel ends it on all).
    if (this.sessions.get(session.id) === session) this.sessions.delete(session.id);
    for (const c of session.channels.values()) if (c.conn.sessions.get(session.id) === session) c.conn.sessions.delete(session.id);
    // The ended session lets its connections go (its disconnected opens may outlive it).
    session.channels.clear();
    session.state = 'expired';
    const opens = [...session.opens.values()];
    session.trees.clear();
    for (const open of opens) {
      try {
        await endOpen(this, open, lost ? 'disconnect' : 'close');
      } catch (err) {
        this.log.warn({ err, path: open.path }, 'ending an open during session teardown failed');
      }
    }
    session.opens.clear();
    if (session.state && session.user) this.log.info({ session: session.id.toString(16), user: session.user, reason }, 'session ended');
  }

  // ---- BreakSink: what the open table asks this node to send (MS-SMB2 3.3.4.6, 3.3.4.7) ----

  oplockBreak(open: Open, to: 'II' | 'none'): void {
    if (open.disconnected || open.closed) return;
    const conn = this.connectionFor(open.session);
    if (!conn) return;
    const level = to === 'II' ? OplockLevel.II : OplockLevel.NONE;
    conn.sendBreakNotification(oplockBreakBody({ OplockLevel: level, FileId: { Persistent: open.persistent, Volatile: open.volatile } }), open.session, open.tree.encrypt);
  }

  leaseBreak(opens: Open[], n: { from: number; to: number; epoch: number; ackRequired: boolean }): void {
    // MS-SMB2 3.3.4.7: sent on a connection of the lease's client (the lease table is per ClientGuid).
    // Windows sends it on the client's oldest connection whichever connection the lease's opens
    // were made on (smbtorture lease.v2_complex1); a connection whose messages must be encrypted
    // for the open's session is used only if that session is one of its channels.
    const open = opens.find((o) => !o.disconnected && !o.closed);
    if (open === undefined) return;
    const own = this.connectionFor(open.session);
    const encrypts = open.tree.encrypt || open.session.encryptData;
    let conn: Connection | undefined;
    for (const c of this.connections) {
      if (c.isClosed || c.negotiated === undefined || c.negotiated.clientGuid.toString('hex') !== open.clientGuid) continue;
      if (![...c.sessions.values()].some((s) => s.state === 'valid' && s.channels.get(c)?.bound === true)) continue;
      if (encrypts && c !== own && open.session.channels.get(c)?.bound !== true) continue;
      conn = c;
      break;
    }
    conn ??= own;
    if (!conn || conn.isClosed) return;
    const body = leaseBreakNotification({
      NewEpoch: open.lease!.version === 2 ? n.epoch : 0,
      Flags: n.ackRequired ? LeaseBreakFlags.SMB2_NOTIFY_BREAK_LEASE_FLAG_ACK_REQUIRED : 0,
      LeaseKey: open.lease!.keyBytes,
      CurrentLeaseState: n.from,
      NewLeaseState: n.to,
    });
    conn.sendBreakNotification(body, open.session, open.tree.encrypt);
    this.log.debug({ lease: open.lease!.key, from: n.from, to: n.to, epoch: n.epoch, ackRequired: n.ackRequired }, 'lease break sent');
  }

  closedByTable(open: Open): Promise<void> {
    return endOpenClosedByTable(this, open).catch((err: unknown) => this.log.warn({ err, path: open.path }, 'releasing an open closed by the table failed'));
  }

  /** Maps an exception thrown by a handler to an NTSTATUS (the one place errors become statuses). */
  statusForError(err: unknown, log: Logger, command: number): number {
    if (err instanceof IosError) return statusForIosError(err.code);
    if (err instanceof TesseraError && err.code === 'TESSERA_MALFORMED') return NtStatus.INVALID_PARAMETER;
    log.error({ err, command }, 'handler failed');
    return NtStatus.INTERNAL_ERROR;
  }

  async close(): Promise<void> {
    for (const l of this.listeners) l.close();
    for (const c of [...this.connections]) c.close('server shutting down');
    this.openTable.stop();
    for (const share of this.shares.values()) await share.ios?.close();
  }
}

/**
 * Re-wraps an accepted (paused) connection in a Socket that reads into `buffer` and reports each
 * read to `onRead` (Node's `onread` option, which net.Server does not offer for accepted sockets):
 * no Buffer is allocated per read. Falls back to 'data' events if the handle cannot be taken over.
 */
function adoptSocket(accepted: Socket, target: () => Buffer, onRead: (n: number, buf: Buffer) => void): Socket {
  const holder = accepted as unknown as { _handle: unknown };
  const handle = holder._handle;
  if (handle && typeof handle === 'object') {
    holder._handle = null;
    const options = {
      handle,
      readable: true,
      writable: true,
      allowHalfOpen: false,
      onread: {
        // Called before every read: the buffer the kernel should fill (see FrameDecoder.readTarget).
        buffer: target,
        callback: (n: number, buf: Buffer) => {
          onRead(n, buf);
          return true;
        },
      },
    };
    // `handle` is accepted by the constructor at run time but missing from @types/node.
    const socket = new Socket(options as unknown as ConstructorParameters<typeof Socket>[0]);
    socket.resume();
    return socket;
  }
  accepted.on('data', (chunk: Buffer) => {
    for (let at = 0; at < chunk.length; ) {
      const buf = target();
      const n = chunk.copy(buf, 0, at, Math.min(chunk.length, at + buf.length));
      at += n;
      onRead(n, buf);
    }
  });
  accepted.resume();
  return accepted;
}
