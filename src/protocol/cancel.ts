// SMB2 CANCEL request (MS-SMB2 2.2.30). There is no CANCEL response: the cancelled request itself is
// answered (usually with STATUS_CANCELLED). The target is named by the header (MessageId for a sync
// request, AsyncId when SMB2_FLAGS_ASYNC_COMMAND is set), so the body carries nothing else.

import { checkRequestBody } from './header.js';

export interface CancelRequest {
  StructureSize: number;
}

/** Decodes a CANCEL request: StructureSize 4, Reserved (MS-SMB2 2.2.30). */
export function decodeCancelRequest(msg: Buffer): CancelRequest {
  checkRequestBody(msg, 4, 'CANCEL');
  return { StructureSize: 4 };
}
