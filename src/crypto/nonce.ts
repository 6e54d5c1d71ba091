// Nonces for SMB 3.x encryption (MS-SMB2 2.2.41 TRANSFORM_HEADER.Nonce, 3.1.4.3): a nonce MUST NOT be
// reused for two messages encrypted with the same key within a session.
import { systemRandom } from '../base/clock.js';
import type { Random } from '../base/clock.js';
import { assert } from '../base/assert.js';
import { TesseraError } from '../base/errors.js';
import { nonceLength } from './sealing.js';
import type { CipherId } from './sealing.js';

/** Size of the TRANSFORM_HEADER Nonce field; the bytes after the AES nonce are Reserved, zero. */
export const TRANSFORM_NONCE_FIELD_SIZE = 16;
const COUNTER_SIZE = 8;
const PREFIX_SIZE = 8;
/** Counter values are 0 .. 2^64-1; the 2^64th request is refused instead of wrapping. */
const COUNTER_SPACE = 1n << 64n;

export interface NonceGeneratorOptions {
  random?: Random;
  /**
   * Refuse once this many nonces have been issued (default and maximum 2^64). A lower value only
   * makes the generator stop earlier; it exists so tests can reach the limit.
   */
  counterLimit?: bigint;
}

/**
 * Per-key nonce source for the server's encryption of one session (Session.EncryptionKey).
 *
 * Layout of the AES nonce (11 bytes for CCM, 12 for GCM), following the deterministic construction
 * of NIST SP800-38D 8.2.1 (fixed field || invocation field):
 *   bytes 0 .. n-9   the first 3 (CCM) or 4 (GCM) bytes of a random 64-bit prefix drawn per generator
 *   bytes n-8 .. n-1 a 64-bit little-endian counter, starting at 0, incremented per message
 *
 * Why nonces never repeat under a key: within one generator the counter takes each value at most
 * once (it only increases and next() throws before it would wrap), so two nonces from the same
 * generator differ in the counter bytes whatever the prefix is. Uniqueness therefore requires exactly
 * one generator per key: keep it on the session, shared by all channels of a multichannel session
 * (they share Session.EncryptionKey), and create it together with the key. The client encrypts with
 * a different key (the server's DecryptionKey), so its nonces cannot collide with ours. The random
 * prefix is defence in depth only: if a bug ever created a second generator for the same key, the
 * two sequences would also have to draw the same 24/32-bit prefix to collide.
 */
export class NonceGenerator {
  readonly cipherId: CipherId;
  readonly length: 11 | 12;
  private readonly prefix: Buffer;
  private readonly limit: bigint;
  private counter = 0n;

  constructor(cipherId: CipherId, options: NonceGeneratorOptions = {}) {
    const limit = options.counterLimit ?? COUNTER_SPACE;
    assert(limit > 0n && limit <= COUNTER_SPACE, 'nonce counter limit within 1 .. 2^64');
    this.cipherId = cipherId;
    this.length = nonceLength(cipherId);
    this.limit = limit;
    const prefix = (options.random ?? systemRandom).bytes(PREFIX_SIZE);
    assert(prefix.length === PREFIX_SIZE, 'random source returned 8 bytes');
    this.prefix = prefix.subarray(0, this.length - COUNTER_SIZE);
  }

  /** Number of nonces issued so far. */
  get issued(): bigint {
    return this.counter;
  }

  /** The next AES nonce (11 or 12 bytes). Throws TESSERA_LIMIT_EXCEEDED rather than reuse a value. */
  next(): Buffer {
    const out = Buffer.alloc(this.length);
    this.fill(out, 0);
    return out;
  }

  /**
   * Writes the next nonce as the 16-byte TRANSFORM_HEADER Nonce field at `offset`: the AES nonce,
   * then zero Reserved bytes (MS-SMB2 2.2.41). Returns the AES nonce as a view into `target`.
   */
  writeField(target: Buffer, offset: number): Buffer {
    assert(offset >= 0 && offset + TRANSFORM_NONCE_FIELD_SIZE <= target.length, 'nonce field fits');
    target.fill(0, offset + this.length, offset + TRANSFORM_NONCE_FIELD_SIZE);
    this.fill(target, offset);
    return target.subarray(offset, offset + this.length);
  }

  private fill(target: Buffer, offset: number): void {
    if (this.counter >= this.limit) {
      throw new TesseraError(
        'TESSERA_LIMIT_EXCEEDED',
        'encryption nonce space of this session key is exhausted; the session must be re-established',
      );
    }
    this.prefix.copy(target, offset);
    target.writeBigUInt64LE(this.counter, offset + this.prefix.length);
    this.counter += 1n;
  }
}
