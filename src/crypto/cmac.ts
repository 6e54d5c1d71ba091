// AES-CMAC (RFC 4493) over node:crypto's AES-ECB/CBC, streaming: input may arrive in any number of
// pieces of any size and is never concatenated.
import { createCipheriv } from 'node:crypto';
import type { Cipher } from 'node:crypto';
import { assert } from '../base/assert.js';

const BLOCK = 16;
/** RFC 4493 2.3: R_128 = 0^120 || 10000111. */
const RB = 0x87;
/** Bound on the bytes pushed through the CBC cipher per update(), so its output buffer stays small. */
const CHUNK = 64 * 1024;

/** RFC 4493 2.3: shift a 128-bit string left by one bit; XOR Rb into the last byte if the MSB was set. */
function doubleBlock(input: Buffer): Buffer {
  const out = Buffer.alloc(BLOCK);
  for (let i = 0; i < BLOCK; i++) {
    const next = i + 1 < BLOCK ? input[i + 1]! : 0;
    out[i] = ((input[i]! << 1) | (next >>> 7)) & 0xff;
  }
  if ((input[0]! & 0x80) !== 0) out[BLOCK - 1] = out[BLOCK - 1]! ^ RB;
  return out;
}

/** RFC 4493 2.3 Generate_Subkey: L = AES-128(K, 0^128); K1 = double(L); K2 = double(K1). */
export function cmacSubkeys(key: Buffer): { k1: Buffer; k2: Buffer } {
  assert(key.length === 16, 'AES-CMAC key is 16 bytes');
  const ecb = createCipheriv('aes-128-ecb', key, null);
  ecb.setAutoPadding(false);
  const l = Buffer.concat([ecb.update(Buffer.alloc(BLOCK)), ecb.final()]);
  const k1 = doubleBlock(l);
  return { k1, k2: doubleBlock(k1) };
}

/**
 * Incremental AES-128-CMAC. The CBC-MAC chain runs inside one AES-128-CBC cipher with a zero IV and
 * no padding; the last (possibly partial) block is held back until digest(), because RFC 4493 2.4
 * step 4 XORs it with K1 (complete block) or pads it 10* and XORs it with K2 (incomplete block).
 */
export class AesCmac {
  private readonly cbc: Cipher;
  private readonly k1: Buffer;
  private readonly k2: Buffer;
  /** The held-back tail of the input: 0..16 bytes that are not yet known to be non-final. */
  private readonly pending = Buffer.alloc(BLOCK);
  private pendingLength = 0;
  private done = false;

  constructor(key: Buffer) {
    const { k1, k2 } = cmacSubkeys(key);
    this.k1 = k1;
    this.k2 = k2;
    this.cbc = createCipheriv('aes-128-cbc', key, Buffer.alloc(BLOCK));
    this.cbc.setAutoPadding(false);
  }

  update(data: Buffer): this {
    assert(!this.done, 'AesCmac.update after digest');
    const n = data.length;
    if (n === 0) return this;
    let offset = 0;
    if (this.pendingLength < BLOCK) {
      const take = Math.min(BLOCK - this.pendingLength, n);
      data.copy(this.pending, this.pendingLength, 0, take);
      this.pendingLength += take;
      offset = take;
      if (offset === n) return this;
    }
    // More input follows the full pending block, so that block is not the last one.
    this.chain(this.pending);
    this.pendingLength = 0;
    const remaining = n - offset;
    const hold = ((remaining - 1) % BLOCK) + 1; // 1..16: the tail that may be the last block
    const bulkEnd = offset + remaining - hold;
    for (let at = offset; at < bulkEnd; at += CHUNK) {
      this.chain(data.subarray(at, Math.min(at + CHUNK, bulkEnd)));
    }
    data.copy(this.pending, 0, bulkEnd, n);
    this.pendingLength = hold;
    return this;
  }

  /** The 16-byte MAC (RFC 4493 2.4 steps 4-7). */
  digest(): Buffer {
    assert(!this.done, 'AesCmac.digest called twice');
    this.done = true;
    const last = Buffer.alloc(BLOCK);
    if (this.pendingLength === BLOCK) {
      for (let i = 0; i < BLOCK; i++) last[i] = this.pending[i]! ^ this.k1[i]!;
    } else {
      this.pending.copy(last, 0, 0, this.pendingLength);
      last[this.pendingLength] = 0x80;
      for (let i = 0; i < BLOCK; i++) last[i] = last[i]! ^ this.k2[i]!;
    }
    const tag = this.cbc.update(last);
    this.cbc.final();
    assert(tag.length === BLOCK, 'AesCmac: CBC emits one block for one block');
    return tag;
  }

  private chain(blocks: Buffer): void {
    const out = this.cbc.update(blocks);
    assert(out.length === blocks.length, 'AesCmac: CBC consumes whole blocks');
  }
}

/** One-shot AES-128-CMAC over the concatenation of `parts` (which are not concatenated). */
export function aesCmac(key: Buffer, parts: readonly Buffer[]): Buffer {
  const mac = new AesCmac(key);
  for (const p of parts) mac.update(p);
  return mac.digest();
}
