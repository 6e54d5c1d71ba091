// The dispatch table (STYLE.md: Samba's smbd_smb2_table). For each command: does it need a valid
// session, a tree, where its FileId sits in the message, how big its payload is for the credit
// charge check (MS-SMB2 3.3.5.2.5), and whether it may be answered asynchronously.
// Session, tree and open lookups happen once, in the pipeline, never in handlers.

import { Command } from '../protocol/header.js';
import type { Handler } from './context.js';
import { handleNegotiate } from './handlers/negotiate.js';
import { handleSessionSetup } from './handlers/session-setup.js';
import { handleLogoff } from './handlers/logoff.js';
import { handleTreeConnect } from './handlers/tree-connect.js';
import { handleTreeDisconnect } from './handlers/tree-disconnect.js';
import { handleCreate } from './handlers/create.js';
import { handleClose } from './handlers/close.js';
import { handleFlush } from './handlers/flush.js';
import { handleRead } from './handlers/read.js';
import { handleWrite } from './handlers/write.js';
import { handleLock } from './handlers/lock.js';
import { handleIoctl } from './handlers/ioctl.js';
import { handleEcho } from './handlers/echo.js';
import { handleQueryDirectory } from './handlers/query-directory.js';
import { handleChangeNotify } from './handlers/change-notify.js';
import { handleQueryInfo } from './handlers/query-info.js';
import { handleSetInfo } from './handlers/set-info.js';
import { handleOplockBreak } from './handlers/oplock-break.js';

export interface CommandSpec {
  handler: Handler;
  needsSession: boolean;
  needsTree: boolean;
  /** Offset of the 16-byte FileId in the message (header at 0). */
  fileIdOffset?: number;
  /** An unknown FileId is passed to the handler as `open: undefined` instead of failing (IOCTL). */
  fileIdOptional?: boolean;
  /** Bytes moved by the request or its response, for CreditCharge (MS-SMB2 3.3.5.2.5). */
  payloadSize?: (msg: Buffer) => number;
  /** A standalone request of this command gets an interim response when it runs long (3.3.4.2). */
  mayGoAsync?: boolean;
}

const H = 64; // body offset

const u32 = (msg: Buffer, at: number): number => (msg.length >= at + 4 ? msg.readUInt32LE(at) : 0);

export const dispatchTable: Partial<Record<number, CommandSpec>> = {
  [Command.NEGOTIATE]: { handler: handleNegotiate, needsSession: false, needsTree: false },
  [Command.SESSION_SETUP]: { handler: handleSessionSetup, needsSession: false, needsTree: false },
  [Command.LOGOFF]: { handler: handleLogoff, needsSession: true, needsTree: false },
  [Command.TREE_CONNECT]: { handler: handleTreeConnect, needsSession: true, needsTree: false },
  [Command.TREE_DISCONNECT]: { handler: handleTreeDisconnect, needsSession: true, needsTree: true },
  [Command.CREATE]: { handler: handleCreate, needsSession: true, needsTree: true, mayGoAsync: true },
  [Command.CLOSE]: { handler: handleClose, needsSession: true, needsTree: true, fileIdOffset: H + 8 },
  [Command.FLUSH]: { handler: handleFlush, needsSession: true, needsTree: true, fileIdOffset: H + 8, mayGoAsync: true },
  [Command.READ]: {
    handler: handleRead,
    needsSession: true,
    needsTree: true,
    fileIdOffset: H + 16,
    payloadSize: (m) => u32(m, H + 4),
    mayGoAsync: true,
  },
  [Command.WRITE]: {
    handler: handleWrite,
    needsSession: true,
    needsTree: true,
    fileIdOffset: H + 16,
    payloadSize: (m) => u32(m, H + 4),
    mayGoAsync: true,
  },
  [Command.LOCK]: { handler: handleLock, needsSession: true, needsTree: true, fileIdOffset: H + 8 },
  [Command.IOCTL]: {
    handler: handleIoctl,
    needsSession: true,
    needsTree: true,
    fileIdOffset: H + 8,
    fileIdOptional: true,
    payloadSize: (m) => Math.max(u32(m, H + 28) + u32(m, H + 40), u32(m, H + 32) + u32(m, H + 44)),
    mayGoAsync: true,
  },
  [Command.ECHO]: { handler: handleEcho, needsSession: false, needsTree: false },
  [Command.QUERY_DIRECTORY]: {
    handler: handleQueryDirectory,
    needsSession: true,
    needsTree: true,
    fileIdOffset: H + 8,
    payloadSize: (m) => u32(m, H + 28),
    mayGoAsync: true,
  },
  [Command.CHANGE_NOTIFY]: {
    handler: handleChangeNotify,
    needsSession: true,
    needsTree: true,
    fileIdOffset: H + 8,
    payloadSize: (m) => u32(m, H + 4),
  },
  [Command.QUERY_INFO]: {
    handler: handleQueryInfo,
    needsSession: true,
    needsTree: true,
    fileIdOffset: H + 24,
    payloadSize: (m) => Math.max(u32(m, H + 4), u32(m, H + 12)),
  },
  [Command.SET_INFO]: {
    handler: handleSetInfo,
    needsSession: true,
    needsTree: true,
    fileIdOffset: H + 16,
    payloadSize: (m) => u32(m, H + 4),
  },
  // A lease break acknowledgment has a LeaseKey where an oplock acknowledgment has its FileId: the
  // handler finds the open (or the lease) itself (MS-SMB2 3.3.5.22).
  [Command.OPLOCK_BREAK]: { handler: handleOplockBreak, needsSession: true, needsTree: true, fileIdOffset: H + 8, fileIdOptional: true },
};
