// What a handler receives and returns. The pipeline (connection.ts) has already validated the
// header, credits, signature/encryption, and looked up the session, tree and open the dispatch table
// says the command needs (STYLE.md: "validate, then dispatch"; Samba's smbd_smb2_table).

import type { BodyEncoder } from '../protocol/encoder.js';
import type { Smb2Header } from '../protocol/header.js';
import type { Open, Session, Tree } from './state.js';
import type { Connection } from './connection.js';
import type { SigningKeyRef } from './channels.js';

export interface FileIdRef {
  Persistent: bigint;
  Volatile: bigint;
}

export interface RequestContext {
  readonly conn: Connection;
  readonly hdr: Smb2Header;
  /** The whole SMB2 message (header at 0). */
  readonly msg: Buffer;
  /** The request arrived inside a TRANSFORM_HEADER. */
  readonly encrypted: boolean;
  readonly session: Session | undefined;
  readonly tree: Tree | undefined;
  readonly open: Open | undefined;
  /** The compound chain this request belongs to (for FileId propagation from CREATE). */
  readonly chain: ChainState;
  /** Aborted when the client cancels the request or the connection goes away. */
  readonly signal: AbortSignal;
  /**
   * Sends the interim STATUS_PENDING response now (the final response follows when the handler
   * returns). False when the request cannot go async (the middle of a compound chain).
   */
  goAsync(): boolean;
}

export interface ChainState {
  sessionId: bigint;
  treeId: number;
  fileId: FileIdRef | undefined;
  /** Status of the previous operation in the chain (MS-SMB2 3.3.5.2.7.2). */
  previousStatus: number;
  /** The chain began with a RELATED request: every related request after it is invalid. */
  invalidRelated: boolean;
}

export interface Reply {
  status: number;
  /** Response body; undefined means an ERROR response body (MS-SMB2 2.2.2). */
  body?: BodyEncoder;
  /** Send nothing (CANCEL). */
  noResponse?: boolean;
  /** Close the connection once this reply is sent. */
  disconnect?: boolean;
  /** SESSION_SETUP: the session the response belongs to (new session ids are assigned by the handler). */
  sessionId?: bigint;
  /** SESSION_SETUP success: sign the response with the new session's key even if the request was unsigned. */
  signWithSession?: Session;
  /** The key (and algorithm) to sign with, when it cannot be found from the session any more (LOGOFF). */
  signingKey?: SigningKeyRef;
  /** CREATE: the FileId to propagate to related requests in the chain. */
  createdFileId?: FileIdRef;
  /** TREE_CONNECT: the new tree id for the response header. */
  treeId?: number;
  /** Called with the encoded response message (header + body + payload) before it is sent; used for
   *  the 3.1.1 preauth integrity hash of NEGOTIATE and SESSION_SETUP responses (MS-SMB2 3.3.5.4, 3.3.5.5). */
  afterEncode?: (parts: Buffer[]) => void;
  /** Called once the response (and its payload) has been handed to the socket or sealed: the
   *  payload's buffer may then be reused (READ data read into a pooled buffer). */
  release?: () => void;
}

export type Handler = (ctx: RequestContext) => Promise<Reply> | Reply;

export function errorReply(status: number): Reply {
  return { status };
}
