// CLOSE (MS-SMB2 3.3.5.10).

import { NtStatus } from '../../protocol/ntstatus.js';
import { CloseFlags, closeResponse, decodeCloseRequest } from '../../protocol/close.js';
import type { Reply, RequestContext } from '../context.js';
import type { Connection } from '../connection.js';
import type { Open } from '../state.js';
import { wireAttributes, wireTimes } from '../files.js';
import { IosError } from '../../ios/spi.js';
import { statusForIosError } from '../status-map.js';
import { FileAction } from '../../protocol/change-notify.js';

/**
 * Closes an open: releases the driver handle and, for delete-on-close, removes the object.
 * Returns the status of the delete (a non-empty directory cannot be deleted).
 */
export async function closeOpen(conn: Connection, open: Open): Promise<number> {
  if (open.closed) return NtStatus.SUCCESS;
  open.closed = true;
  open.session.opens.delete(open.volatile);
  conn.server.notify.forget(open);
  try {
    await open.handle?.close();
  } catch (err) {
    conn.log.warn({ err, path: open.path }, 'driver close failed');
  }
  if (open.deleteOnClose && open.tree.share.ios) {
    try {
      if (open.stream !== undefined) {
        await open.tree.share.ios.removeStream(open.path, open.stream);
        return NtStatus.SUCCESS;
      }
      await open.tree.share.ios.remove(open.path);
      conn.server.notify.emit(open.tree.share, open.path, FileAction.FILE_ACTION_REMOVED, open.kind === 'directory' ? 'directory' : 'file');
    } catch (err) {
      if (err instanceof IosError) {
        if (err.code === 'ENOENT') return NtStatus.SUCCESS;
        return statusForIosError(err.code);
      }
      throw err;
    }
  }
  return NtStatus.SUCCESS;
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
