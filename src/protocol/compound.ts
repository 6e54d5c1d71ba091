// Splitting a compounded request chain into its messages (MS-SMB2 3.3.5.2.7).

import { MalformedError } from '../base/errors.js';
import { limits } from '../base/limits.js';
import { SMB2_HEADER_SIZE } from './encoder.js';
import { NEXT_COMMAND_OFFSET, ProtocolId } from './header.js';

/**
 * Splits one (decrypted) frame into views of its SMB2 messages by following NextCommand.
 * Rules enforced (all MalformedError; the pipeline disconnects):
 * - every message starts with an SMB2 ProtocolId and holds at least a 64-byte header;
 * - NextCommand is a multiple of 8, so every message but the first starts 8-byte aligned
 *   (MS-SMB2 3.3.5.2.7: otherwise the server SHOULD disconnect), and is at least 64;
 * - NextCommand points inside the frame with room for the next header;
 * - at most limits.compoundCommandsMax messages.
 * The last message (NextCommand 0) extends to the end of the frame.
 */
export function splitCompound(frame: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let at = 0;
  for (;;) {
    if (out.length >= limits.compoundCommandsMax) {
      throw new MalformedError(`compound: more than ${limits.compoundCommandsMax} commands`);
    }
    if (at + SMB2_HEADER_SIZE > frame.length) throw new MalformedError(`compound: message at ${at} shorter than a header`);
    if (frame.readUInt32LE(at) !== ProtocolId.SMB2) throw new MalformedError(`compound: no SMB2 ProtocolId at ${at}`);
    const next = frame.readUInt32LE(at + NEXT_COMMAND_OFFSET);
    if (next === 0) {
      out.push(frame.subarray(at));
      return out;
    }
    if (next % 8 !== 0) throw new MalformedError(`compound: NextCommand ${next} not 8-byte aligned`);
    if (next < SMB2_HEADER_SIZE) throw new MalformedError(`compound: NextCommand ${next} < 64`);
    if (at + next + SMB2_HEADER_SIZE > frame.length) throw new MalformedError(`compound: NextCommand ${next} beyond frame`);
    out.push(frame.subarray(at, at + next));
    at += next;
  }
}
