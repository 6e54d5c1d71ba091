// TREE_CONNECT (MS-SMB2 3.3.5.7).

import { limits } from '../../base/limits.js';
import { NtStatus } from '../../protocol/ntstatus.js';
import { decodeTreeConnectRequest, ShareFlags, ShareType, treeConnectResponse } from '../../protocol/tree-connect.js';
import { Dialect, GlobalCap } from '../../protocol/negotiate.js';
import { AccessMask } from '../../protocol/create.js';
import type { Reply, RequestContext } from '../context.js';

const FILE_ALL_ACCESS = 0x001f01ff;
const FILE_READ_ONLY_ACCESS =
  AccessMask.FILE_READ_DATA |
  AccessMask.FILE_READ_EA |
  AccessMask.FILE_EXECUTE |
  AccessMask.FILE_READ_ATTRIBUTES |
  AccessMask.READ_CONTROL |
  AccessMask.SYNCHRONIZE;

export function handleTreeConnect(ctx: RequestContext): Reply {
  const { conn } = ctx;
  const session = ctx.session!;
  const neg = conn.negotiated!;
  const req = decodeTreeConnectRequest(ctx.msg, neg.dialect === Dialect.SMB311);
  // Path is "\\server\share"; the share name is the last component (MS-SMB2 2.2.9).
  const parts = req.Path.split('\\').filter((p) => p.length > 0);
  if (parts.length < 2 || !req.Path.startsWith('\\\\')) return { status: NtStatus.BAD_NETWORK_NAME };
  const shareName = parts[parts.length - 1]!;
  const share = conn.server.shareByName(shareName);
  if (!share) {
    conn.log.info({ share: shareName, user: session.user }, 'tree connect refused: no such share');
    return { status: NtStatus.BAD_NETWORK_NAME };
  }
  if (session.trees.size >= limits.treesPerSessionMax) return { status: NtStatus.INSUFFICIENT_RESOURCES };

  // MS-SMB2 3.3.5.7: a share that requires encryption refuses clients that cannot encrypt.
  const mustEncrypt = share.type === 'disk' && (share.encrypt || conn.server.options.encryptRequired);
  const canEncrypt =
    neg.dialect >= Dialect.SMB300 &&
    neg.cipherId !== 0 &&
    session.keys?.encryptionKey !== undefined &&
    (neg.dialect === Dialect.SMB311 || (neg.clientCapabilities & GlobalCap.ENCRYPTION) !== 0);
  if (mustEncrypt && !canEncrypt && conn.server.options.rejectUnencryptedAccess) {
    conn.log.warn({ share: share.name, user: session.user }, 'tree connect refused: share requires encryption');
    return { status: NtStatus.ACCESS_DENIED };
  }

  const id = session.allocateTreeId();
  const maximalAccess = share.readOnly ? FILE_READ_ONLY_ACCESS : FILE_ALL_ACCESS;
  const encrypt = mustEncrypt && canEncrypt && share.encrypt;
  session.trees.set(id, { id, share, encrypt, maximalAccess });
  conn.log.info({ session: session.id.toString(16), user: session.user, share: share.name, tree: id, encrypt }, 'tree connected');
  return {
    status: NtStatus.SUCCESS,
    treeId: id,
    body: treeConnectResponse({
      ShareType: share.type === 'ipc' ? ShareType.PIPE : ShareType.DISK,
      ShareFlags: share.type === 'ipc' ? ShareFlags.NO_CACHING : ShareFlags.MANUAL_CACHING | (encrypt ? ShareFlags.ENCRYPT_DATA : 0),
      Capabilities: 0,
      MaximalAccess: maximalAccess,
    }),
  };
}
