// OPLOCK_BREAK acknowledgments (MS-SMB2 3.3.5.22.1 oplock, 3.3.5.22.2 lease). The break state lives
// in the replicated open table; an acknowledgment completes the break there, which wakes the
// operations waiting for it.

import { NtStatus } from '../../protocol/ntstatus.js';
import { decodeOplockBreakAck, leaseBreakResponse, oplockBreakBody } from '../../protocol/oplock-break.js';
import { OplockLevel } from '../../protocol/create.js';
import { Dialect } from '../../protocol/negotiate.js';
import type { Reply, RequestContext } from '../context.js';
import { clientGuidOf } from './create.js';

export async function handleOplockBreak(ctx: RequestContext): Promise<Reply> {
  const ack = decodeOplockBreakAck(ctx.msg);
  const table = ctx.conn.server.openTable;
  if (ack.kind === 'oplock') {
    // 3.3.5.22.1: the open by FileId (the dispatcher found it, or it is gone).
    const open = ctx.open;
    if (open === undefined || open.tableId === undefined) return { status: NtStatus.FILE_CLOSED };
    const rec = table.client.open(open.tableId);
    if (rec === undefined) return { status: NtStatus.FILE_CLOSED };
    if (rec.oplockBreaking === undefined) return { status: NtStatus.INVALID_OPLOCK_PROTOCOL };
    if (ack.OplockLevel === OplockLevel.LEASE) return { status: NtStatus.INVALID_PARAMETER };
    // Only NONE and II can be acknowledged; EXCLUSIVE or BATCH is a protocol error, and so is
    // acknowledging II when the break was to NONE (the table answers protocolError then).
    if (ack.OplockLevel !== OplockLevel.NONE && ack.OplockLevel !== OplockLevel.II) {
      await table.client.oplockAck(open.tableId, 'none', table.now());
      table.acknowledged({ kind: 'oplock', openId: open.tableId });
      return { status: NtStatus.INVALID_OPLOCK_PROTOCOL };
    }
    const r = await table.client.oplockAck(open.tableId, ack.OplockLevel === OplockLevel.II ? 'II' : 'none', table.now());
    if (!r.ok) return { status: r.code === 'not-found' ? NtStatus.FILE_CLOSED : NtStatus.INVALID_OPLOCK_PROTOCOL };
    table.acknowledged({ kind: 'oplock', openId: open.tableId });
    await table.apply({ breaks: r.breaks });
    if (r.protocolError) return { status: NtStatus.INVALID_OPLOCK_PROTOCOL };
    const level = r.oplock === 'II' ? OplockLevel.II : OplockLevel.NONE;
    return { status: NtStatus.SUCCESS, body: oplockBreakBody({ OplockLevel: level, FileId: { Persistent: open.persistent, Volatile: open.volatile } }) };
  }

  // 3.3.5.22.2: lease acknowledgments exist from SMB 2.1.
  if ((ctx.conn.negotiated?.dialect ?? 0) < Dialect.SMB210) return { status: NtStatus.NOT_SUPPORTED };
  const clientGuid = clientGuidOf(ctx.conn);
  const leaseKey = Buffer.from(ack.LeaseKey).toString('hex');
  const lease = table.client.lease(clientGuid, leaseKey);
  if (lease === undefined) return { status: NtStatus.OBJECT_NAME_NOT_FOUND };
  if (lease.breaking === undefined) return { status: NtStatus.UNSUCCESSFUL };
  // The acknowledged state must be within what the break asked for.
  if ((ack.LeaseState & ~lease.breaking.to) !== 0) return { status: NtStatus.REQUEST_NOT_ACCEPTED };
  const r = await table.client.leaseAck(clientGuid, leaseKey, ack.LeaseState, table.now());
  if (!r.ok) return { status: r.code === 'not-found' ? NtStatus.OBJECT_NAME_NOT_FOUND : NtStatus.REQUEST_NOT_ACCEPTED };
  table.acknowledged({ kind: 'lease', clientGuid, leaseKey });
  await table.apply(r);
  return { status: NtStatus.SUCCESS, body: leaseBreakResponse({ LeaseKey: ack.LeaseKey, LeaseState: r.state }) };
}
