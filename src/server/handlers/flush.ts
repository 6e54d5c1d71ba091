// FLUSH (MS-SMB2 3.3.5.11): makes the open's writes durable.

import { NtStatus } from '../../protocol/ntstatus.js';
import { decodeFlushRequest, flushResponse } from '../../protocol/flush.js';
import { AccessMask } from '../../protocol/create.js';
import type { Reply, RequestContext } from '../context.js';

const body = flushResponse();

export async function handleFlush(ctx: RequestContext): Promise<Reply> {
  decodeFlushRequest(ctx.msg);
  const open = ctx.open!;
  if (open.kind === 'pipe') return { status: NtStatus.SUCCESS, body };
  // MS-SMB2 3.3.5.11: FILE_WRITE_DATA or FILE_APPEND_DATA is required.
  if (!(open.grantedAccess & (AccessMask.FILE_WRITE_DATA | AccessMask.FILE_APPEND_DATA))) return { status: NtStatus.ACCESS_DENIED };
  if (open.kind === 'file') await open.handle!.flush();
  return { status: NtStatus.SUCCESS, body };
}
