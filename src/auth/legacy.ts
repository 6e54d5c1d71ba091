// Legacy primitives NTLM needs and OpenSSL 3 no longer offers by default: MD4 (RFC 1320) and RC4.
// Node 20 links OpenSSL 3, where both live in the "legacy" provider that is usually not loaded.
// At load we probe the native implementation once (and check it against a known answer); when it
// is missing we use the TypeScript versions below. HMAC-MD5 is always native.
import { createCipheriv, createHash, createHmac, type Cipher } from 'node:crypto';

function probe(fn: () => boolean): boolean {
  try {
    return fn();
  } catch {
    return false;
  }
}

// RFC 1320 A.5 test suite: MD4("abc").
const nativeMd4 = probe(() => createHash('md4').update('abc').digest('hex') === 'a448017aaf21d8525fc10ae87aa6729d');
// RFC 6229 gives no 128-bit all-zero-key vector we need here; we check native RC4 against our own on load.
const nativeRc4 = probe(() => {
  const key = Buffer.from('0102030405060708090a0b0c0d0e0f10', 'hex');
  const c = createCipheriv('rc4', key, null);
  // RFC 6229, key 0x0102..10 (128 bits), keystream offset 0: 9a c7 cc 9a 60 9d 1e f7
  return c.update(Buffer.alloc(8)).toString('hex') === '9ac7cc9a609d1ef7';
});

/** True when MD4 / RC4 come from OpenSSL rather than from this file (exported for diagnostics). */
export const legacyNative = { md4: nativeMd4, rc4: nativeRc4 } as const;

// ---- MD4 (RFC 1320) ---------------------------------------------------------------------------

function rotl(x: number, s: number): number {
  return (x << s) | (x >>> (32 - s));
}

const R2_ORDER = [0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15];
const R3_ORDER = [0, 8, 4, 12, 2, 10, 6, 14, 1, 9, 5, 13, 3, 11, 7, 15];
const R1_SHIFT = [3, 7, 11, 19];
const R2_SHIFT = [3, 5, 9, 13];
const R3_SHIFT = [3, 9, 11, 15];

/** MD4 in TypeScript (RFC 1320 section 3). Exported for tests; use md4() instead. */
export function md4Ts(data: Buffer): Buffer {
  const bitLength = BigInt(data.length) * 8n;
  // Step 1 and 2 (RFC 1320 3.1, 3.2): pad with 0x80 then zeros to 56 mod 64, then the 64-bit length.
  const padded = Buffer.alloc((((data.length + 8) >> 6) + 1) << 6);
  data.copy(padded, 0);
  padded[data.length] = 0x80;
  padded.writeBigUInt64LE(bitLength & 0xffffffffffffffffn, padded.length - 8);

  let a = 0x67452301;
  let b = 0xefcdab89 | 0;
  let c = 0x98badcfe | 0;
  let d = 0x10325476;
  const x = new Int32Array(16);
  for (let off = 0; off < padded.length; off += 64) {
    for (let i = 0; i < 16; i++) x[i] = padded.readInt32LE(off + i * 4);
    const aa = a;
    const bb = b;
    const cc = c;
    const dd = d;
    // Round 1: F(X,Y,Z) = XY v not(X) Z
    for (let i = 0; i < 16; i += 4) {
      a = rotl((a + ((b & c) | (~b & d)) + x[i]!) | 0, R1_SHIFT[0]!);
      d = rotl((d + ((a & b) | (~a & c)) + x[i + 1]!) | 0, R1_SHIFT[1]!);
      c = rotl((c + ((d & a) | (~d & b)) + x[i + 2]!) | 0, R1_SHIFT[2]!);
      b = rotl((b + ((c & d) | (~c & a)) + x[i + 3]!) | 0, R1_SHIFT[3]!);
    }
    // Round 2: G(X,Y,Z) = XY v XZ v YZ, constant 0x5A827999
    for (let i = 0; i < 16; i += 4) {
      a = rotl((a + ((b & c) | (b & d) | (c & d)) + x[R2_ORDER[i]!]! + 0x5a827999) | 0, R2_SHIFT[0]!);
      d = rotl((d + ((a & b) | (a & c) | (b & c)) + x[R2_ORDER[i + 1]!]! + 0x5a827999) | 0, R2_SHIFT[1]!);
      c = rotl((c + ((d & a) | (d & b) | (a & b)) + x[R2_ORDER[i + 2]!]! + 0x5a827999) | 0, R2_SHIFT[2]!);
      b = rotl((b + ((c & d) | (c & a) | (d & a)) + x[R2_ORDER[i + 3]!]! + 0x5a827999) | 0, R2_SHIFT[3]!);
    }
    // Round 3: H(X,Y,Z) = X xor Y xor Z, constant 0x6ED9EBA1
    for (let i = 0; i < 16; i += 4) {
      a = rotl((a + (b ^ c ^ d) + x[R3_ORDER[i]!]! + 0x6ed9eba1) | 0, R3_SHIFT[0]!);
      d = rotl((d + (a ^ b ^ c) + x[R3_ORDER[i + 1]!]! + 0x6ed9eba1) | 0, R3_SHIFT[1]!);
      c = rotl((c + (d ^ a ^ b) + x[R3_ORDER[i + 2]!]! + 0x6ed9eba1) | 0, R3_SHIFT[2]!);
      b = rotl((b + (c ^ d ^ a) + x[R3_ORDER[i + 3]!]! + 0x6ed9eba1) | 0, R3_SHIFT[3]!);
    }
    a = (a + aa) | 0;
    b = (b + bb) | 0;
    c = (c + cc) | 0;
    d = (d + dd) | 0;
  }
  const out = Buffer.alloc(16);
  out.writeInt32LE(a, 0);
  out.writeInt32LE(b, 4);
  out.writeInt32LE(c, 8);
  out.writeInt32LE(d, 12);
  return out;
}

/** MD4 digest (16 bytes). */
export function md4(data: Buffer): Buffer {
  return nativeMd4 ? createHash('md4').update(data).digest() : md4Ts(data);
}

// ---- RC4 --------------------------------------------------------------------------------------

/** RC4 in TypeScript: key scheduling then a keystream XORed into the data. Stateful across update(). */
class Rc4Ts {
  private readonly s = new Uint8Array(256);
  private i = 0;
  private j = 0;
  constructor(key: Buffer) {
    const s = this.s;
    for (let n = 0; n < 256; n++) s[n] = n;
    let j = 0;
    for (let n = 0; n < 256; n++) {
      j = (j + s[n]! + key[n % key.length]!) & 0xff;
      const t = s[n]!;
      s[n] = s[j]!;
      s[j] = t;
    }
  }
  update(data: Buffer): Buffer {
    const s = this.s;
    const out = Buffer.allocUnsafe(data.length);
    let i = this.i;
    let j = this.j;
    for (let n = 0; n < data.length; n++) {
      i = (i + 1) & 0xff;
      j = (j + s[i]!) & 0xff;
      const t = s[i]!;
      s[i] = s[j]!;
      s[j] = t;
      out[n] = data[n]! ^ s[(s[i]! + s[j]!) & 0xff]!;
    }
    this.i = i;
    this.j = j;
    return out;
  }
}

/**
 * A stateful RC4 handle (MS-NLMP 6: RC4Init / RC4). Successive update() calls continue the keystream,
 * which is what NTLM sealing needs (the checksum is encrypted with the handle after the message).
 */
export class Rc4 {
  private readonly impl: Cipher | Rc4Ts;
  constructor(key: Buffer) {
    if (key.length === 0 || key.length > 256) throw new RangeError('RC4 key must be 1..256 bytes');
    // OpenSSL's "rc4" has a fixed 128-bit key; other lengths always use the TypeScript version.
    this.impl = nativeRc4 && key.length === 16 ? createCipheriv('rc4', key, null) : new Rc4Ts(key);
  }
  update(data: Buffer): Buffer {
    return this.impl.update(data);
  }
}

/** Rc4Ts exposed for tests that compare both implementations. */
export function rc4Ts(key: Buffer, data: Buffer): Buffer {
  return new Rc4Ts(key).update(data);
}

/** RC4K(K, D) of MS-NLMP 6: a fresh handle keyed with K applied once to D. */
export function rc4k(key: Buffer, data: Buffer): Buffer {
  return new Rc4(key).update(data);
}

/** HMAC_MD5(K, M) of MS-NLMP 6 (RFC 2104), 16 bytes. */
export function hmacMd5(key: Buffer, ...parts: Buffer[]): Buffer {
  const h = createHmac('md5', key);
  for (const p of parts) h.update(p);
  return h.digest();
}

/** MD5(M), 16 bytes. */
export function md5(...parts: Buffer[]): Buffer {
  const h = createHash('md5');
  for (const p of parts) h.update(p);
  return h.digest();
}
