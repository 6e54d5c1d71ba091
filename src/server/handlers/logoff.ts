// LOGOFF (MS-SMB2 3.3.5.6): the response is signed with the session's key before it goes away.

import { NtStatus } from '../../protocol/ntstatus.js';
import { decodeLogoffRequest, logoffResponse } from '../../protocol/logoff.js';
import type { Reply, RequestContext } from '../context.js';

export async function handleLogoff(ctx: RequestContext): Promise<Reply> {
  decodeLogoffRequest(ctx.msg);
  const session = ctx.session!;
  const signed = session.keys !== undefined && (session.signingRequired || (ctx.hdr.Flags & 8) !== 0);
  await ctx.conn.server.destroySession(session, 'logoff');
  return { status: NtStatus.SUCCESS, body: logoffResponse(), ...(signed ? { signWithSession: session } : {}) };
}
