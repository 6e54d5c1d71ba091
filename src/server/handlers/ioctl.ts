// IOCTL (MS-SMB2 3.3.5.15). FSCTLs dispatch by family; the storage FSCTLs Hyper-V uses (ODX, zeroing,
// trim, cloning, sparse) arrive with the chunked driver and are refused until then.

import { NtStatus } from '../../protocol/ntstatus.js';
import { decodeIoctlRequest, FsctlCode, IoctlFlags, ioctlResponse, type IoctlRequest } from '../../protocol/ioctl.js';
import { decodeValidateNegotiateInfoRequest, encodeValidateNegotiateInfoResponse } from '../../protocol/validate-negotiate.js';
import { Dialect } from '../../protocol/negotiate.js';
import { channelSequenceGate } from '../opens.js';
import type { Reply, RequestContext } from '../context.js';
import { maxTransact } from '../files.js';
import { queryNetworkInterfaces } from './ioctl-network.js';

const VALIDATE_NEGOTIATE_RESPONSE_SIZE = 24;

export async function handleIoctl(ctx: RequestContext): Promise<Reply> {
  const req = decodeIoctlRequest(ctx.msg);
  // MS-SMB2 3.3.5.15: only FSCTLs are served over SMB2.
  if (req.Flags !== IoctlFlags.IS_FSCTL) return { status: NtStatus.NOT_SUPPORTED };
  const limit = maxTransact(ctx.conn);
  if (req.InputCount > limit || req.MaxOutputResponse > limit || req.OutputCount > limit) return { status: NtStatus.INVALID_PARAMETER };
  if (ctx.open !== undefined) {
    const gate = channelSequenceGate(ctx.conn.server, ctx.open, ctx.conn.negotiated!.dialect, ctx.hdr.ChannelSequence);
    const stale = gate === undefined ? undefined : await gate;
    if (stale !== undefined) return { status: stale };
  }

  switch (req.CtlCode) {
    case FsctlCode.VALIDATE_NEGOTIATE_INFO:
      return validateNegotiate(ctx, req);
    case FsctlCode.PIPE_TRANSCEIVE:
      return pipeTransceive(ctx, req);
    case FsctlCode.CREATE_OR_GET_OBJECT_ID:
      return objectId(ctx, req);
    case FsctlCode.QUERY_NETWORK_INTERFACE_INFO:
      return queryNetworkInterfaces(ctx, req);
    case FsctlCode.DFS_GET_REFERRALS:
    case FsctlCode.DFS_GET_REFERRALS_EX:
      // MS-SMB2 3.3.5.15.2: a server without DFS answers STATUS_FS_DRIVER_REQUIRED.
      return { status: NtStatus.FS_DRIVER_REQUIRED };
    default:
      if (!ctx.open) return { status: NtStatus.FILE_CLOSED };
      // MS-FSA: a file system that does not implement an FSCTL fails it with INVALID_DEVICE_REQUEST.
      return { status: ctx.open.kind === 'pipe' ? NtStatus.NOT_SUPPORTED : NtStatus.INVALID_DEVICE_REQUEST };
  }
}

function validateNegotiate(ctx: RequestContext, req: IoctlRequest): Reply {
  const conn = ctx.conn;
  const neg = conn.negotiated!;
  // MS-SMB2 3.3.5.15.12: every mismatch terminates the connection.
  if (neg.dialect === Dialect.SMB311) return { status: NtStatus.ACCESS_DENIED, disconnect: true };
  if (req.MaxOutputResponse < VALIDATE_NEGOTIATE_RESPONSE_SIZE) return { status: NtStatus.INVALID_PARAMETER, disconnect: true };
  let v;
  try {
    v = decodeValidateNegotiateInfoRequest(req.Input);
  } catch {
    return { status: NtStatus.INVALID_PARAMETER, disconnect: true };
  }
  const server = conn.server;
  let best = 0;
  for (const d of v.Dialects) if (server.options.dialects.includes(d) && d > best) best = d;
  const same =
    best === neg.dialect &&
    v.Guid.equals(neg.clientGuid) &&
    v.SecurityMode === neg.clientSecurityMode &&
    v.Capabilities === neg.clientCapabilities;
  if (!same) {
    conn.log.warn('VALIDATE_NEGOTIATE_INFO mismatch: possible downgrade attack; closing');
    return { status: NtStatus.ACCESS_DENIED, disconnect: true };
  }
  const out = encodeValidateNegotiateInfoResponse({
    Capabilities: neg.serverCapabilities,
    Guid: server.identity.serverGuid,
    SecurityMode: neg.serverSecurityMode,
    Dialect: neg.dialect,
  });
  return { status: NtStatus.SUCCESS, body: ioctlResponse({ CtlCode: req.CtlCode, FileId: req.FileId, Output: out }) };
}

function pipeTransceive(ctx: RequestContext, req: IoctlRequest): Reply {
  const open = ctx.open;
  if (!open) return { status: NtStatus.FILE_CLOSED };
  if (open.kind !== 'pipe') return { status: NtStatus.INVALID_DEVICE_REQUEST };
  const { output, more } = open.pipe!.transceive(req.Input, req.MaxOutputResponse);
  // MS-SMB2 3.3.5.15.1: output longer than MaxOutputResponse is cut; the rest is read with READ.
  return {
    status: more ? NtStatus.BUFFER_OVERFLOW : NtStatus.SUCCESS,
    body: ioctlResponse({ CtlCode: req.CtlCode, FileId: req.FileId, Output: output }),
  };
}

/**
 * FSCTL_CREATE_OR_GET_OBJECT_ID (MS-FSCC 2.3.7): a FILE_OBJECTID_BUFFER. Object ids are derived from
 * the stable file id and the volume serial, so "create" and "get" agree across restarts without
 * storing anything.
 */
async function objectId(ctx: RequestContext, req: IoctlRequest): Promise<Reply> {
  const open = ctx.open;
  if (!open) return { status: NtStatus.FILE_CLOSED };
  if (open.kind === 'pipe') return { status: NtStatus.INVALID_DEVICE_REQUEST };
  if (req.MaxOutputResponse < 64) return { status: NtStatus.BUFFER_TOO_SMALL };
  const info = await open.handle!.info();
  const fs = await ctx.conn.server.volumeInfo(open.tree.share);
  const out = Buffer.alloc(64);
  out.writeBigUInt64LE(info.fileId, 0);
  out.writeUInt32LE(fs.volumeSerial >>> 0, 8);
  out.writeUInt32LE(fs.volumeSerial >>> 0, 16); // BirthVolumeId
  out.copy(out, 32, 0, 16); // BirthObjectId = ObjectId
  return { status: NtStatus.SUCCESS, body: ioctlResponse({ CtlCode: req.CtlCode, FileId: req.FileId, Output: out }) };
}
