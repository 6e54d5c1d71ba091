// CHANGE_NOTIFY (MS-SMB2 3.3.5.19). Directory watches come with the Windows semantics issue; until
// then the request is refused with STATUS_NOT_SUPPORTED (never left pending forever).

import { NtStatus } from '../../protocol/ntstatus.js';
import { decodeChangeNotifyRequest } from '../../protocol/change-notify.js';
import type { Reply, RequestContext } from '../context.js';

export function handleChangeNotify(ctx: RequestContext): Reply {
  decodeChangeNotifyRequest(ctx.msg);
  return { status: NtStatus.NOT_SUPPORTED };
}
