// CLOSE (MS-SMB2 3.3.5.10).

import { NtStatus } from '../../protocol/ntstatus.js';
import { CloseFlags, closeResponse, decodeCloseRequest } from '../../protocol/close.js';
import type { Reply, RequestContext } from '../context.js';
import type { Connection } from '../connection.js';
import type { Open } from '../state.js';
import { wireAttributes, wireTimes } from '../files.js';
import { endOpen } from '../opens.js';

/**
 * Closes an open: its open-table record, the driver handle and, for delete-on-close, the object once
 * its last open is gone. Returns the status of the delete (a non-empty directory cannot be deleted).
 */
export async function closeOpen(conn: Connection, open: Open): Promise<number> {
  return endOpen(conn.server, open, 'close');
}

export async function handleClose(ctx: RequestContext): Promise<Reply> {
  const req = decodeCloseRequest(ctx.msg);
  const open = ctx.open!;
  let attributes;
  if (req.Flags & CloseFlags.SMB2_CLOSE_FLAG_POSTQUERY_ATTRIB && open.handle && !open.deleteOnClose) {
    // MS-SMB2 3.3.5.10: attributes as they are after the close.
    const info = await open.handle.info();
    attributes = {
      ...wireTimes(info),
      AllocationSize: BigInt(info.allocationSize),
      EndofFile: BigInt(info.size),
      FileAttributes: wireAttributes(info),
    };
  }
  await closeOpen(ctx.conn, open);
  // A failed delete-on-close does not fail the CLOSE (MS-FSA 2.1.5.4): the handle is gone either way.
  return { status: NtStatus.SUCCESS, body: closeResponse(attributes) };
}
