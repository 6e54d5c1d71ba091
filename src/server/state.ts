// Connection-local state: sessions, tree connects and opens as MS-SMB2 3.3.1 models them.
// (The open table moves into the replicated metadata state machine in a later issue; until then an
// open lives here, owned by its session.)

import type { IosHandle, IosShare } from '../ios/spi.js';
import type { SpnegoServer } from '../auth/spnego-server.js';
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
  auth: SpnegoServer | undefined;
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
}

export interface ServerIdentity {
  serverGuid: Buffer;
  netbiosName: string;
  netbiosDomain: string;
  dnsName: string;
  dnsDomain: string;
  startTime: bigint; // FILETIME
}
