// READ (MS-SMB2 3.3.5.12). The driver's buffer is sent as the response payload without a copy.

import { NtStatus } from '../../protocol/ntstatus.js';
import { decodeReadRequest, readResponse } from '../../protocol/read.js';
import { AccessMask } from '../../protocol/create.js';
import type { Reply, RequestContext } from '../context.js';
import { Dialect } from '../../protocol/negotiate.js';
import { limits } from '../../base/limits.js';
import { ioGate } from '../opens.js';

const OFFSET_MAX = BigInt(Number.MAX_SAFE_INTEGER);
const INT64_MAX = (1n << 63n) - 1n;
const EMPTY = Buffer.alloc(0);

export async function handleRead(ctx: RequestContext): Promise<Reply> {
  const req = decodeReadRequest(ctx.msg);
  const open = ctx.open!;
  const neg = ctx.conn.negotiated!;
  const maxRead = neg.dialect === Dialect.SMB202 ? 65536 : limits.ioBytesMax;
  if (req.Length > maxRead) return { status: NtStatus.INVALID_PARAMETER };

  if (open.kind === 'pipe') {
    const data = open.pipe!.read(req.Length);
    if (!data || data.length === 0) return { status: NtStatus.PIPE_EMPTY };
    return { status: NtStatus.SUCCESS, body: readResponse({ Data: data, DataRemaining: 0 }) };
  }
  if (open.kind === 'directory') return { status: NtStatus.INVALID_DEVICE_REQUEST };
  // MS-SMB2 3.3.5.12: the open must have been granted read (or execute) access.
  if (!(open.grantedAccess & (AccessMask.FILE_READ_DATA | AccessMask.FILE_EXECUTE))) return { status: NtStatus.ACCESS_DENIED };
  // MS-FSA 2.1.5.2: a negative offset, or a range that ends past INT64_MAX, is invalid; a zero-length
  // read is answered with no data; a range beyond any file this server can hold is end of file.
  if (req.Offset > INT64_MAX || req.Offset + BigInt(req.Length) > INT64_MAX) return { status: NtStatus.INVALID_PARAMETER };
  if (req.Length === 0 && req.MinimumCount === 0) return { status: NtStatus.SUCCESS, body: readResponse({ Data: EMPTY, DataRemaining: 0 }) };
  if (req.Offset + BigInt(req.Length) > OFFSET_MAX) return { status: NtStatus.END_OF_FILE };

  const g = ioGate(ctx.conn.server, open, req.Offset, req.Length, false);
  const gate = g instanceof Promise ? await g : g;
  if (gate !== undefined) return { status: gate };
  // The data is read into a pooled buffer that goes back to the pool once the socket has it.
  const pool = ctx.conn.bufferPool;
  const into = pool.acquire(req.Length);
  let data: Buffer;
  try {
    data = await open.handle!.read(Number(req.Offset), req.Length, into);
  } catch (err) {
    pool.release(into);
    throw err;
  }
  // MS-SMB2 3.3.5.12: reading at or past the end, or less than MinimumCount, is STATUS_END_OF_FILE.
  if ((data.length === 0 && req.Length > 0) || data.length < req.MinimumCount) {
    pool.release(into);
    return { status: NtStatus.END_OF_FILE };
  }
  // The file position follows synchronous reads (FilePositionInformation, MS-FSA 2.1.5.2).
  open.position = req.Offset + BigInt(data.length);
  return { status: NtStatus.SUCCESS, body: readResponse({ Data: data, DataRemaining: 0 }), release: () => pool.release(into) };
}
