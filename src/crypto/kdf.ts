// SP800-108 key derivation in counter mode with HMAC-SHA256, as MS-SMB2 3.1.4.2 uses it.
import { createHmac } from 'node:crypto';
import { assert } from '../base/assert.js';

/** Output length of the PRF (HMAC-SHA256) in bits. */
const PRF_OUTPUT_BITS = 256;

/**
 * MS-SMB2 3.1.4.2: KDF in counter mode (NIST SP800-108 section 5.1) with
 *   PRF = HMAC-SHA256, r = 32 (the counter i is a 32-bit big-endian integer starting at 1),
 *   fixed input = Label || 0x00 || Context || L (32-bit big-endian, in bits).
 *
 * The 0x00 separator is added here. SMB labels and 3.0 contexts are NUL-terminated strings whose
 * terminator is part of the string as MS-SMB2 3.3.5.5.3 sizes them (e.g. "SMB2AESCMAC" is 12 bytes),
 * so callers pass the terminator in `label`/`context` and the fixed input then holds two NULs.
 */
export function kdf(key: Buffer, label: Buffer, context: Buffer, lengthBits: 128 | 256): Buffer {
  assert(lengthBits === 128 || lengthBits === 256, 'kdf: L is 128 or 256');
  const blocks = Math.ceil(lengthBits / PRF_OUTPUT_BITS);
  const lengthField = Buffer.alloc(4);
  lengthField.writeUInt32BE(lengthBits, 0);
  const separator = Buffer.alloc(1);
  const out = Buffer.alloc(blocks * (PRF_OUTPUT_BITS / 8));
  for (let i = 1; i <= blocks; i++) {
    const counter = Buffer.alloc(4);
    counter.writeUInt32BE(i, 0);
    const h = createHmac('sha256', key);
    h.update(counter);
    h.update(label);
    h.update(separator);
    h.update(context);
    h.update(lengthField);
    h.digest().copy(out, (i - 1) * (PRF_OUTPUT_BITS / 8));
  }
  return out.subarray(0, lengthBits / 8);
}
