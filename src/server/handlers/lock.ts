// LOCK (MS-SMB2 3.3.5.14). Byte-range locks live in the replicated open table, which the Windows
// semantics issue builds; until then every lock request is refused with STATUS_NOT_SUPPORTED rather
// than granted without being enforced.

import { NtStatus } from '../../protocol/ntstatus.js';
import { decodeLockRequest } from '../../protocol/lock.js';
import type { Reply, RequestContext } from '../context.js';

export function handleLock(ctx: RequestContext): Reply {
  decodeLockRequest(ctx.msg);
  return { status: NtStatus.NOT_SUPPORTED };
}
