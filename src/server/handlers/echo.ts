// ECHO (MS-SMB2 3.3.5.17).

import { NtStatus } from '../../protocol/ntstatus.js';
import { decodeEchoRequest, echoResponse } from '../../protocol/echo.js';
import type { Reply, RequestContext } from '../context.js';

const body = echoResponse();

export function handleEcho(ctx: RequestContext): Reply {
  decodeEchoRequest(ctx.msg);
  return { status: NtStatus.SUCCESS, body };
}
