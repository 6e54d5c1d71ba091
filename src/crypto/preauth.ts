// SMB 3.1.1 pre-authentication integrity (MS-SMB2 3.3.5.4 NEGOTIATE, 3.3.5.5 SESSION_SETUP;
// hash algorithm SHA-512, the only one defined in MS-SMB2 2.2.3.1.1).
import { createHash } from 'node:crypto';
import { assert } from '../base/assert.js';

/** SHA-512 output size: Connection/Session.PreauthIntegrityHashValue is 64 bytes. */
export const PREAUTH_HASH_SIZE = 64;

/** MS-SMB2 3.3.5.4: Connection.PreauthIntegrityHashValue starts as 64 zero bytes. */
export function preauthInitial(): Buffer {
  return Buffer.alloc(PREAUTH_HASH_SIZE);
}

/**
 * MS-SMB2 3.3.5.4 / 3.3.5.5: PreauthIntegrityHashValue = SHA-512(previous || message), where the
 * message (the concatenation of `parts`) is the whole SMB2 message as on the wire, header included,
 * without the 4-byte transport header. The parts are streamed into the hash, never concatenated.
 */
export function preauthUpdate(previous: Buffer, parts: readonly Buffer[]): Buffer {
  assert(previous.length === PREAUTH_HASH_SIZE, 'preauth hash value is 64 bytes');
  const h = createHash('sha512');
  h.update(previous);
  for (const p of parts) h.update(p);
  return h.digest();
}
