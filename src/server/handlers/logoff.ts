// LOGOFF (MS-SMB2 3.3.5.6): ends the session on every channel it has (a LOGOFF sent on any of the
// connections of a multichannel session logs it off everywhere). The response is signed with the key
// of the channel it is sent on (channels.ts).

import { NtStatus } from '../../protocol/ntstatus.js';
import { decodeLogoffRequest, logoffResponse } from '../../protocol/logoff.js';
import type { Reply, RequestContext } from '../context.js';
import { signingKeyFor } from '../channels.js';

export async function handleLogoff(ctx: RequestContext): Promise<Reply> {
  decodeLogoffRequest(ctx.msg);
  const session = ctx.session!;
  const signed = session.keys !== undefined && (session.signingRequired || (ctx.hdr.Flags & 8) !== 0);
  // The key of this connection's channel, taken before the session (and its channels) goes.
  const key = signingKeyFor(session, ctx.conn);
  // Durable opens outlive a LOGOFF as they outlive a lost connection: a new session may reclaim them
  // (Windows does; smbtorture durable-open.reopen4). The others are closed.
  await ctx.conn.server.destroySession(session, 'logoff', true);
  return { status: NtStatus.SUCCESS, body: logoffResponse(), ...(signed && key ? { signWithSession: session, signingKey: key } : {}) };
}
