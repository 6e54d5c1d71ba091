// WRITE (MS-SMB2 3.3.5.13). The payload is a view into the received frame, handed to the driver.

import { NtStatus } from '../../protocol/ntstatus.js';
import { decodeWriteRequest, WriteFlags, writeResponse } from '../../protocol/write.js';
import { AccessMask, CreateOptions } from '../../protocol/create.js';
import type { Reply, RequestContext } from '../context.js';
import { CompletionFilter, FileAction } from '../../protocol/change-notify.js';
import { Dialect } from '../../protocol/negotiate.js';
import { limits } from '../../base/limits.js';
import { channelSequenceGate, ioGate } from '../opens.js';

const INT64_MAX = (1n << 63n) - 1n;
/** NTFS's largest file (MS-FSA: 0xfffffff0000 bytes, 16 TiB - 64 KiB). */
const MAX_FILE_SIZE = 0xfffffff0000n;

export async function handleWrite(ctx: RequestContext): Promise<Reply> {
  const req = decodeWriteRequest(ctx.msg);
  const open = ctx.open!;
  const neg = ctx.conn.negotiated!;
  const maxWrite = neg.dialect === Dialect.SMB202 ? 65536 : limits.ioBytesMax;
  if (req.Length > maxWrite) return { status: NtStatus.INVALID_PARAMETER };

  if (open.kind === 'pipe') {
    open.pipe!.write(req.Data);
    return { status: NtStatus.SUCCESS, body: writeResponse({ Count: req.Data.length }) };
  }
  if (open.kind === 'directory') return { status: NtStatus.INVALID_DEVICE_REQUEST };
  // MS-SMB2 3.3.5.13: write or append access is required.
  if (!(open.grantedAccess & (AccessMask.FILE_WRITE_DATA | AccessMask.FILE_APPEND_DATA))) return { status: NtStatus.ACCESS_DENIED };
  if (open.tree.share.readOnly) return { status: NtStatus.MEDIA_WRITE_PROTECTED };

  const csGate = channelSequenceGate(ctx.conn.server, open, neg.dialect, ctx.hdr.ChannelSequence);
  const stale = csGate === undefined ? undefined : await csGate;
  if (stale !== undefined) return { status: stale };
  const handle = open.handle!;
  // MS-FSA 2.1.5.3: negative offsets (including the -1 "end of file" marker, which SMB2 does not
  // honour) are invalid; a zero-length write anywhere below INT64_MAX succeeds and writes nothing;
  // a range ending past the NTFS maximum file size is invalid.
  if (req.Offset > INT64_MAX) return { status: NtStatus.INVALID_PARAMETER };
  if (req.Data.length === 0) return { status: NtStatus.SUCCESS, body: writeResponse({ Count: 0 }) };
  const end = req.Offset + BigInt(req.Data.length);
  if (end > MAX_FILE_SIZE) return { status: NtStatus.INVALID_PARAMETER };
  // A non-sparse file cannot grow beyond the volume: NTFS answers DISK_FULL, and so do we.
  const fs = await ctx.conn.server.volumeInfo(open.tree.share);
  if (end > BigInt(fs.totalBytes)) return { status: NtStatus.DISK_FULL };
  const g = ioGate(ctx.conn.server, open, req.Offset, req.Data.length, true);
  const gate = g instanceof Promise ? await g : g;
  if (gate !== undefined) return { status: gate };
  const offset = Number(req.Offset);
  if (!(open.grantedAccess & AccessMask.FILE_WRITE_DATA)) {
    // Append-only opens may only write at the end (MS-FSA 2.1.5.3).
    const size = (await handle.info()).size;
    if (offset < size) return { status: NtStatus.ACCESS_DENIED };
  }
  const written = await handle.write(offset, req.Data);
  open.position = BigInt(offset + written);
  const hub = ctx.conn.server.notify;
  if (hub.watching(open.tree.share)) {
    hub.emit(open.tree.share, open.path, FileAction.FILE_ACTION_MODIFIED, 'file', CompletionFilter.FILE_NOTIFY_CHANGE_LAST_WRITE | CompletionFilter.FILE_NOTIFY_CHANGE_SIZE);
  }
  if (req.Flags & WriteFlags.SMB2_WRITEFLAG_WRITE_THROUGH || open.createOptions & CreateOptions.FILE_WRITE_THROUGH) await handle.flush();
  return { status: NtStatus.SUCCESS, body: writeResponse({ Count: written }) };
}
