// OPLOCK_BREAK acknowledgment (MS-SMB2 3.3.5.22). No oplock or lease is ever granted yet, so an
// acknowledgment has nothing to acknowledge: STATUS_INVALID_OPLOCK_PROTOCOL as 3.3.5.22.1 says for an
// open whose oplock is not breaking.

import { NtStatus } from '../../protocol/ntstatus.js';
import type { Reply, RequestContext } from '../context.js';

export function handleOplockBreak(_ctx: RequestContext): Reply {
  return { status: NtStatus.INVALID_OPLOCK_PROTOCOL };
}
