// Argument checks shared by the object store adapters: every rule of the SPI contract (spi.ts) that
// can be decided before any I/O, so each adapter rejects bad input the same way ('invalid',
// 'too-large') and never half-starts an operation on it.
import { limits } from '../base/limits.js';
import { ObjStoreError, keyProblem, type ByteRange, type PutOptions } from './spi.js';

/** Rejects with 'invalid' unless `key` is a key of the contract. */
export function checkKey(key: unknown, what = 'key'): asserts key is string {
  const problem = keyProblem(key, limits.objstoreKeyBytesMax);
  if (problem !== undefined) throw new ObjStoreError('invalid', `${what}: ${problem}`);
}

/** A list prefix or `after` bound: printable ASCII without '\\', at most keyBytesMax (may be ''). */
export function checkKeyFragment(s: unknown, what: string): asserts s is string {
  if (typeof s !== 'string') throw new ObjStoreError('invalid', `${what} must be a string`);
  if (s.length > limits.objstoreKeyBytesMax) throw new ObjStoreError('invalid', `${what} longer than ${limits.objstoreKeyBytesMax} bytes`);
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c > 0x7e || c === 0x5c) throw new ObjStoreError('invalid', `${what} has a byte outside printable ASCII or a backslash at ${i}`);
  }
}

function isSafeCount(n: unknown): n is number {
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;
}

/** Validates a read range; undefined means the whole object. */
export function checkRange(range: ByteRange | undefined): void {
  if (range === undefined) return;
  if (typeof range !== 'object' || range === null) throw new ObjStoreError('invalid', 'range must be an object');
  if (!isSafeCount(range.offset) || !isSafeCount(range.length)) {
    throw new ObjStoreError('invalid', 'range offset and length must be non-negative safe integers');
  }
}

/**
 * The byte span [start, end) a range selects in an object of `size` bytes: clamped at the end, and
 * empty when it starts at or beyond the end (spi.ts "Reads").
 */
export function clampRange(size: number, range: ByteRange | undefined): { start: number; end: number } {
  if (range === undefined) return { start: 0, end: size };
  const start = Math.min(range.offset, size);
  return { start, end: start + Math.min(range.length, size - start) };
}

/** The body as a list of parts (never copied) and its total size; 'too-large' above objectBytesMax. */
export function bodyParts(body: Uint8Array | readonly Uint8Array[]): { parts: readonly Uint8Array[]; size: number } {
  const parts: readonly Uint8Array[] = body instanceof Uint8Array ? [body] : body;
  if (!Array.isArray(parts)) throw new ObjStoreError('invalid', 'body must be a Uint8Array or an array of them');
  let size = 0;
  for (const p of parts) {
    if (!(p instanceof Uint8Array)) throw new ObjStoreError('invalid', 'body parts must be Uint8Arrays');
    size += p.byteLength;
    if (size > limits.objstoreObjectBytesMax) {
      throw new ObjStoreError('too-large', `object larger than ${limits.objstoreObjectBytesMax} bytes`);
    }
  }
  return { parts, size };
}

/** Validates conditional put options (RFC 9110 13.1.1 If-Match, 13.1.2 If-None-Match). */
export function checkPutOptions(opts: PutOptions | undefined): void {
  if (opts === undefined) return;
  if (typeof opts !== 'object' || opts === null) throw new ObjStoreError('invalid', 'put options must be an object');
  if (opts.ifNoneMatch !== undefined && opts.ifNoneMatch !== '*') throw new ObjStoreError('invalid', "ifNoneMatch must be '*'");
  if (opts.ifMatch !== undefined && (typeof opts.ifMatch !== 'string' || opts.ifMatch.length === 0)) {
    throw new ObjStoreError('invalid', 'ifMatch must be a non-empty etag');
  }
  if (opts.ifMatch !== undefined && opts.ifNoneMatch !== undefined) {
    throw new ObjStoreError('invalid', 'ifMatch and ifNoneMatch together can never both hold');
  }
}

/** Validates list() arguments; returns the page size to use. */
export function checkListArgs(prefix: unknown, opts: { after?: string; limit?: number } | undefined): { after: string | undefined; limit: number } {
  checkKeyFragment(prefix, 'prefix');
  if (opts !== undefined && (typeof opts !== 'object' || opts === null)) throw new ObjStoreError('invalid', 'list options must be an object');
  const after = opts?.after;
  if (after !== undefined) checkKeyFragment(after, 'after');
  const limit = opts?.limit ?? limits.objstoreListPageMax;
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > limits.objstoreListPageMax) {
    throw new ObjStoreError('invalid', `limit must be an integer in 1..${limits.objstoreListPageMax}`);
  }
  return { after, limit };
}

/** Validates a deleteMany() batch: every key good, at most deleteBatchMax of them. */
export function checkDeleteKeys(keys: unknown): asserts keys is readonly string[] {
  if (!Array.isArray(keys)) throw new ObjStoreError('invalid', 'keys must be an array');
  if (keys.length > limits.objstoreDeleteBatchMax) {
    throw new ObjStoreError('invalid', `more than ${limits.objstoreDeleteBatchMax} keys in one deleteMany`);
  }
  for (const k of keys) checkKey(k);
}

/** Bytewise comparison of two keys (they are ASCII, so UTF-16 code unit order is byte order). */
export function compareKeys(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Runs `fn` over `items` with at most `width` in flight; results in input order. */
export async function mapBounded<T, R>(items: readonly T[], width: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(width, items.length) }, worker));
  return out;
}
