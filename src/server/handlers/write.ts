// WRITE (MS-SMB2 3.3.5.13). The payload is a view into the received frame, handed to the driver.

import { NtStatus } from '../../protocol/ntstatus.js';
import { decodeWriteRequest, WriteFlags, writeResponse } from '../../protocol/write.js';
import { AccessMask, CreateOptions } from '../../protocol/create.js';
import type { Reply, RequestContext } from '../context.js';
import { Dialect } from '../../protocol/negotiate.js';
import { limits } from '../../base/limits.js';

const OFFSET_MAX = BigInt(Number.MAX_SAFE_INTEGER);
const APPEND_OFFSET = 0xffffffffffffffffn;

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

  const handle = open.handle!;
  let offset: number;
  if (req.Offset === APPEND_OFFSET) {
    // MS-FSA 2.1.5.3: an offset of -1 writes at the end of file.
    offset = (await handle.info()).size;
  } else {
    if (req.Offset > OFFSET_MAX || req.Offset + BigInt(req.Length) > OFFSET_MAX) return { status: NtStatus.INVALID_PARAMETER };
    offset = Number(req.Offset);
    if (!(open.grantedAccess & AccessMask.FILE_WRITE_DATA)) {
      // Append-only opens may only write at the end (MS-FSA 2.1.5.3).
      const size = (await handle.info()).size;
      if (offset < size) return { status: NtStatus.ACCESS_DENIED };
    }
  }
  const written = req.Data.length === 0 ? 0 : await handle.write(offset, req.Data);
  if (req.Flags & WriteFlags.SMB2_WRITEFLAG_WRITE_THROUGH || open.createOptions & CreateOptions.FILE_WRITE_THROUGH) await handle.flush();
  return { status: NtStatus.SUCCESS, body: writeResponse({ Count: written }) };
}
