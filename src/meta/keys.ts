// Keys of the materialised metadata state: tuples of strings and non-negative integers encoded so
// that bytewise order (LMDB's order, and MemoryStore's) is tuple order. A tuple is a prefix of every
// longer tuple that starts with it, so a family's records, or a directory's entries, are one range.
//
// Encoding per part: integer -> 0x01 + 8 bytes big-endian; string -> 0x02 + UTF-8 + 0x00.
// Strings must not contain NUL (SMB names cannot); integers are safe non-negative integers.
import { assert } from '../base/assert.js';

export type KeyPart = string | number;

const TAG_INT = 0x01;
const TAG_STR = 0x02;

export function key(...parts: KeyPart[]): Buffer {
  let size = 0;
  const strs: (Buffer | null)[] = [];
  for (const p of parts) {
    if (typeof p === 'number') {
      assert(Number.isSafeInteger(p) && p >= 0, `key: integer part out of range: ${p}`);
      size += 9;
      strs.push(null);
    } else {
      const b = Buffer.from(p, 'utf8');
      assert(!b.includes(0), 'key: string part contains NUL');
      size += b.length + 2;
      strs.push(b);
    }
  }
  const out = Buffer.allocUnsafe(size);
  let o = 0;
  for (let i = 0; i < parts.length; i++) {
    const s = strs[i];
    if (s === null) {
      out[o++] = TAG_INT;
      out.writeBigUInt64BE(BigInt(parts[i] as number), o);
      o += 8;
    } else {
      out[o++] = TAG_STR;
      s!.copy(out, o);
      o += s!.length;
      out[o++] = 0;
    }
  }
  return out;
}

/** Inverse of key(); throws on bytes key() cannot produce. */
export function decodeKey(buf: Uint8Array): KeyPart[] {
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  const parts: KeyPart[] = [];
  let o = 0;
  while (o < b.length) {
    const tag = b[o++];
    if (tag === TAG_INT) {
      assert(o + 8 <= b.length, 'decodeKey: truncated integer');
      parts.push(Number(b.readBigUInt64BE(o)));
      o += 8;
    } else if (tag === TAG_STR) {
      const end = b.indexOf(0, o);
      assert(end >= 0, 'decodeKey: unterminated string');
      parts.push(b.toString('utf8', o, end));
      o = end + 1;
    } else {
      throw new Error(`decodeKey: bad tag ${tag}`);
    }
  }
  return parts;
}

/** Smallest key greater than every key that starts with `prefix` (exclusive end of a prefix range). */
export function prefixEnd(prefix: Uint8Array): Buffer {
  const out = Buffer.from(prefix);
  for (let i = out.length - 1; i >= 0; i--) {
    if (out[i] !== 0xff) {
      out[i]++;
      return out.subarray(0, i + 1);
    }
  }
  return Buffer.alloc(0); // the empty key is used as "no end"
}
