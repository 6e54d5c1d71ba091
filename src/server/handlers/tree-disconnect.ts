// TREE_DISCONNECT (MS-SMB2 3.3.5.8): closes every open of the tree.

import { NtStatus } from '../../protocol/ntstatus.js';
import { decodeTreeDisconnectRequest, treeDisconnectResponse } from '../../protocol/tree-disconnect.js';
import type { Reply, RequestContext } from '../context.js';
import { closeOpen } from './close.js';

export async function handleTreeDisconnect(ctx: RequestContext): Promise<Reply> {
  decodeTreeDisconnectRequest(ctx.msg);
  const session = ctx.session!;
  const tree = ctx.tree!;
  session.trees.delete(tree.id);
  for (const open of [...session.opens.values()]) {
    if (open.tree === tree) await closeOpen(ctx.conn, open);
  }
  ctx.conn.log.info({ session: session.id.toString(16), share: tree.share.name, tree: tree.id }, 'tree disconnected');
  return { status: NtStatus.SUCCESS, body: treeDisconnectResponse() };
}
