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
}

export class Server {
  readonly options: ServerOptions;
  readonly log: Logger;
  readonly clock: Clock;
  readonly random: Random;
  readonly throttle: LogonThrottle;
  readonly interimAfterMs: number;
  private readonly shares = new Map<string, ShareDef>();
  private readonly sessions = new Map<bigint, { session: Session; conn: Connection }>();
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

  /** Allocates a session id unique on this server (never 0, never all ones). */
  registerSession(session: Session, conn: Connection): void {
    this.sessions.set(session.id, { session, conn });
    conn.sessions.set(session.id, session);
  }

  newSessionId(): bigint {
    for (;;) {
      const id = this.random.bytes(8).readBigUInt64LE(0) & 0x7fffffffffffffffn;
      if (id !== 0n && !this.sessions.has(id)) return id;
    }
  }

  /** Finds a session bound to this connection (no multichannel yet). */
  findSession(id: bigint, conn: Connection): Session | undefined {
    const entry = this.sessions.get(id);
    if (!entry || entry.conn !== conn) return undefined;
    return entry.session;
  }

  allocateVolatileId(): bigint {
    return this.nextVolatile++;
  }

  /** Closes every open and tree of a session and forgets it. */
  async destroySession(session: Session, reason: string): Promise<void> {
    const entry = this.sessions.get(session.id);
    if (entry) {
      this.sessions.delete(session.id);
      entry.conn.sessions.delete(session.id);
    }
    session.state = 'expired';
    const opens = [...session.opens.values()];
    session.opens.clear();
    session.trees.clear();
    for (const open of opens) {
      open.closed = true;
      this.notify.forget(open);
      try {
        await open.handle?.close();
      } catch (err) {
        this.log.warn({ err, path: open.path }, 'close during session teardown failed');
      }
      if (open.deleteOnClose && open.tree.share.ios) {
        try {
          await open.tree.share.ios.remove(open.path);
        } catch {
          /* the object may already be gone */
        }
      }
    }
    if (session.state && session.user) this.log.info({ session: session.id.toString(16), user: session.user, reason }, 'session ended');
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
