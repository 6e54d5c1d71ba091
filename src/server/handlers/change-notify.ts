// CHANGE_NOTIFY (MS-SMB2 3.3.5.19; MS-FSA 2.1.5.10). Changes made through this server are reported;
// a request with nothing to report goes async at once and completes on the next change, on CANCEL
// (STATUS_CANCELLED) or when the directory is closed (STATUS_NOTIFY_CLEANUP).

import { NtStatus } from '../../protocol/ntstatus.js';
import { ChangeNotifyFlags, changeNotifyResponse, decodeChangeNotifyRequest, encodeFileNotifyInformation } from '../../protocol/change-notify.js';
import { AccessMask } from '../../protocol/create.js';
import type { Reply, RequestContext } from '../context.js';
import { maxTransact } from '../files.js';

const EMPTY = Buffer.alloc(0);

export async function handleChangeNotify(ctx: RequestContext): Promise<Reply> {
  const req = decodeChangeNotifyRequest(ctx.msg);
  const open = ctx.open!;
  // MS-SMB2 3.3.5.19: only directories can be watched, with FILE_LIST_DIRECTORY access.
  if (open.kind !== 'directory') return { status: NtStatus.INVALID_PARAMETER };
  if (!(open.grantedAccess & AccessMask.FILE_LIST_DIRECTORY)) return { status: NtStatus.ACCESS_DENIED };
  if (req.OutputBufferLength > maxTransact(ctx.conn)) return { status: NtStatus.INVALID_PARAMETER };

  const hub = ctx.conn.server.notify;
  hub.watch(open, (req.Flags & ChangeNotifyFlags.SMB2_WATCH_TREE) !== 0, req.CompletionFilter, req.OutputBufferLength);
  // MS-FSA 2.1.5.10: the buffer of the first request bounds every later answer.
  const limit = Math.min(req.OutputBufferLength, hub.bufferSize(open) ?? req.OutputBufferLength);
  let outcome = hub.take(open);
  if (!outcome) {
    // Windows answers a notify that would block in the middle of a compound with INTERNAL_ERROR
    // (MS-SMB2 <159>): only a standalone request or the last of a chain can go async.
    if (!ctx.goAsync()) return { status: NtStatus.INTERNAL_ERROR };
    const waited = await hub.wait(open, ctx.signal);
    if (waited === 'cancelled') return { status: NtStatus.CANCELLED };
    outcome = waited;
  }
  switch (outcome.kind) {
    case 'cleanup':
      return { status: NtStatus.NOTIFY_CLEANUP, body: changeNotifyResponse(EMPTY) };
    case 'delete-pending':
      return { status: NtStatus.DELETE_PENDING };
    case 'overflow':
      return { status: NtStatus.NOTIFY_ENUM_DIR, body: changeNotifyResponse(EMPTY) };
    case 'changes': {
      const out = encodeFileNotifyInformation(outcome.changes, limit);
      if (!out) return { status: NtStatus.NOTIFY_ENUM_DIR, body: changeNotifyResponse(EMPTY) };
      return { status: NtStatus.SUCCESS, body: changeNotifyResponse(out) };
    }
  }
}
