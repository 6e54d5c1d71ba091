// Connection-local state: sessions, tree connects and opens as MS-SMB2 3.3.1 models them. A disk
// open's share mode, oplock, lease, locks and durability live in the replicated open table
// (src/meta/families/opens.ts, reached through open-table.ts); the Open here holds what cannot be
// replicated: the driver handle, the session it is served on, the directory scan state.

import type { IosHandle, IosShare } from '../ios/spi.js';
import type { Channel } from './channels.js';
import type { Connection } from './connection.js';
import type { RpcPipeEndpoint } from '../rpc/pipe.js';
import type { NonceGenerator } from '../crypto/nonce.js';
import type { AccessToken } from '../auth/token.js';

export interface ShareDef {
  /** Name as configured (case preserved); lookups are case-insensitive. */
  name: string;
  type: 'disk' | 'ipc';
  comment: string;
  /** Disk shares: the opened IOS share. */
  ios?: IosShare;
  /** Share requires encrypted access (MS-SMB2 3.3.1.6 Share.EncryptData). */
  encrypt: boolean;
  readOnly: boolean;
}

export type SessionState = 'inProgress' | 'valid' | 'expired';

export interface SessionKeys {
  sessionKey: Buffer;
  signingKey: Buffer;
  encryptionKey?: Buffer; // server → client
  decryptionKey?: Buffer; // client → server
  applicationKey?: Buffer;
}

export class Session {
  readonly id: bigint;
  state: SessionState = 'inProgress';
  // ---- channels (multichannel, src/server/channels.ts) ----
  /**
   * Session.ChannelList (MS-SMB2 3.3.1.8): the connections this session is known on. The first is
   * Session.Connection; more are bound with SMB2_SESSION_FLAG_BINDING (3.3.5.5.2). Each channel
   * holds the GSS exchange under way on its connection.
   */
  readonly channels = new Map<Connection, Channel>();
  /** Dialect, signing algorithm and cipher of Session.Connection: a binding must match them (3.3.5.5.2). */
  dialect = 0;
  signingAlgorithm = 0;
  cipherId = 0;
  user = '';
  domain = '';
  sid = '';
  isGuest = false;
  isAnonymous = false;
  keys: SessionKeys | undefined;
  signingRequired = false;
  /** Session.EncryptData (MS-SMB2 3.3.1.8): every message of this session is encrypted. */
  encryptData = false;
  /** Session.PreauthIntegrityHashValue (3.1.1 only), until the session is established. */
  preauthHash: Buffer | undefined;
  readonly trees = new Map<number, Tree>();
  readonly opens = new Map<bigint, Open>();
  nonces: NonceGenerator | undefined;
  /** Access token for security checks, built on first use (MS-DTYP 2.5.2). */
  token: AccessToken | undefined;
  private nextTreeId = 1;

  constructor(id: bigint) {
    this.id = id;
  }

  allocateTreeId(): number {
    for (let i = 0; i < 0xfffffffe; i++) {
      const id = this.nextTreeId;
      this.nextTreeId = this.nextTreeId >= 0xfffffffe ? 1 : this.nextTreeId + 1;
      if (!this.trees.has(id)) return id;
    }
    throw new Error('tree ids exhausted');
  }
}

export interface Tree {
  id: number;
  share: ShareDef;
  /** Tree.EncryptData: responses on this tree are encrypted. */
  encrypt: boolean;
  maximalAccess: number;
}

export interface DirectoryScan {
  pattern: string;
  cookie: string | undefined;
  /** Entries read from the driver but not yet returned. */
  pending: { name: string; info: import('../ios/spi.js').FileInfo }[];
  /** '.' and '..' still to emit. */
  dotsToEmit: number;
  finished: boolean;
  /** A scan returned at least one entry (NO_SUCH_FILE vs NO_MORE_FILES). */
  returnedAny: boolean;
}

export interface Open {
  persistent: bigint;
  volatile: bigint;
  session: Session;
  tree: Tree;
  kind: 'file' | 'directory' | 'pipe';
  handle?: IosHandle;
  pipe?: RpcPipeEndpoint;
  /** Share-relative path with stored case ('' = root). */
  path: string;
  /** Named stream of the object at `path` (undefined: the unnamed data stream or a directory). */
  stream?: string;
  grantedAccess: number;
  shareAccess: number;
  createOptions: number;
  deleteOnClose: boolean;
  /** FilePositionInformation's CurrentByteOffset (kept for clients that set and query it). */
  position: bigint;
  /** FileModeInformation. */
  mode: number;
  scan?: DirectoryScan;
  /** Requests currently running against this open (CLOSE waits for none; it only marks). */
  closed: boolean;
  // ---- the open's record in the replicated open table (disk opens; pipes have none) ----
  /** Open id in the table: the persistent FileId (MS-SMB2 3.3.1.10 Open.DurableFileId). */
  tableId?: number;
  /** The table's file id: "<share>/<driver file id>". */
  file?: string;
  /** ClientGuid of the connection that opened it (hex), the lease's owner (MS-SMB2 3.3.1.12). */
  clientGuid: string;
  /** The lease this open belongs to (MS-SMB2 3.3.1.12), key as hex and as the 16 wire bytes. */
  lease?: { key: string; keyBytes: Buffer; version: 1 | 2 };
  /** Durable handle kind granted (MS-SMB2 3.3.5.9.6, 3.3.5.9.10). */
  durable: 'none' | 'v1' | 'v2' | 'persistent';
  /** The connection went away and the open waits for a reconnect (MS-SMB2 3.3.7.1). */
  disconnected: boolean;
  /** CreateGuid of a DH2Q open (hex), for DH2C (3.3.5.9.12). */
  createGuid?: string;
  /** The CreateAction the open was answered with (a replayed create answers the same, 3.3.5.9.10). */
  createAction: number;
  /** Open.ChannelSequence as this node last saw it (the table holds the replicated one; 3.3.5.2.10). */
  channelSequence: number;
}

export interface ServerIdentity {
  serverGuid: Buffer;
  netbiosName: string;
  netbiosDomain: string;
  dnsName: string;
  dnsDomain: string;
  startTime: bigint; // FILETIME
}
