// An object store in memory, for tests and simulations: byte-exact semantics of the SPI (spi.ts),
// never sharing a buffer with its callers (put copies in, get copies out). ETags are the MD5 of the
// content in hex, like S3's single-part ETag and LocalDirStore's. Every method resolves
// asynchronously, so a caller that forgets an await misbehaves here as it would on a real store.
import { createHash } from 'node:crypto';
import {
  bodyParts,
  checkDeleteKeys,
  checkKey,
  checkListArgs,
  checkPutOptions,
  checkRange,
  clampRange,
  compareKeys,
} from './checks.js';
import { ObjStoreError, type ByteRange, type DeleteResult, type ListPage, type ObjectInfo, type ObjectStore, type PutOptions } from './spi.js';

interface Stored {
  /** Owned by the store; never handed out. */
  readonly data: Buffer;
  readonly etag: string;
}

export class MemoryObjectStore implements ObjectStore {
  readonly kind = 'memory';
  private readonly objects = new Map<string, Stored>();
  /** Keys in order, rebuilt lazily after a key is added or removed. */
  private sorted: string[] | undefined = [];
  private closed = false;

  /** Objects held and their total bytes (tests). */
  stats(): { objects: number; bytes: number } {
    let bytes = 0;
    for (const o of this.objects.values()) bytes += o.data.byteLength;
    return { objects: this.objects.size, bytes };
  }

  async get(key: string, range?: ByteRange): Promise<Buffer> {
    await this.enter();
    checkKey(key);
    checkRange(range);
    const o = this.objects.get(key);
    if (o === undefined) throw new ObjStoreError('not-found', `no object ${key}`);
    const { start, end } = clampRange(o.data.byteLength, range);
    return Buffer.from(o.data.subarray(start, end)); // a copy: the caller may change it in place
  }

  async put(key: string, body: Uint8Array | readonly Uint8Array[], opts?: PutOptions): Promise<ObjectInfo> {
    await this.enter();
    checkKey(key);
    checkPutOptions(opts);
    const { parts, size } = bodyParts(body);
    const data = Buffer.allocUnsafe(size);
    let at = 0;
    for (const p of parts) {
      data.set(p, at);
      at += p.byteLength;
    }
    // The check and the replacement happen in one synchronous step: atomic for concurrent callers.
    const current = this.objects.get(key);
    if (opts?.ifNoneMatch === '*' && current !== undefined) throw new ObjStoreError('precondition-failed', `${key} exists`);
    if (opts?.ifMatch !== undefined && current?.etag !== opts.ifMatch) {
      throw new ObjStoreError('precondition-failed', current === undefined ? `${key} does not exist` : `${key} has another etag`);
    }
    const stored: Stored = { data, etag: md5Hex(data) };
    this.store(key, stored);
    return { key, size, etag: stored.etag };
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    await this.enter();
    checkKey(key);
    const o = this.objects.get(key);
    return o === undefined ? undefined : { key, size: o.data.byteLength, etag: o.etag };
  }

  async deleteMany(keys: readonly string[]): Promise<DeleteResult> {
    await this.enter();
    checkDeleteKeys(keys);
    for (const k of keys) {
      if (this.objects.delete(k)) this.sorted = undefined;
    }
    return { deleted: [...keys], errors: [] };
  }

  async list(prefix: string, opts?: { after?: string; limit?: number }): Promise<ListPage> {
    await this.enter();
    const { after, limit } = checkListArgs(prefix, opts);
    const keys = this.keysInOrder();
    // First key > after and >= prefix (binary search), then walk while the prefix matches.
    const from = after !== undefined && compareKeys(after, prefix) >= 0 ? after : undefined;
    let i = lowerBound(keys, from ?? prefix);
    if (from !== undefined && keys[i] === from) i++;
    const objects: ObjectInfo[] = [];
    for (; i < keys.length && keys[i]!.startsWith(prefix); i++) {
      if (objects.length === limit) return { objects, next: objects[objects.length - 1]!.key };
      const k = keys[i]!;
      const o = this.objects.get(k)!;
      objects.push({ key: k, size: o.data.byteLength, etag: o.etag });
    }
    return { objects };
  }

  async copy(source: string, target: string, opts?: { ifNoneMatch?: '*' }): Promise<ObjectInfo> {
    await this.enter();
    checkKey(source, 'source');
    checkKey(target, 'target');
    checkPutOptions(opts);
    const o = this.objects.get(source);
    if (o === undefined) throw new ObjStoreError('not-found', `no object ${source}`);
    if (opts?.ifNoneMatch === '*' && this.objects.has(target)) throw new ObjStoreError('precondition-failed', `${target} exists`);
    this.store(target, o); // stored buffers are immutable, so source and target may share one
    return { key: target, size: o.data.byteLength, etag: o.etag };
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  private async enter(): Promise<void> {
    await Promise.resolve();
    if (this.closed) throw new ObjStoreError('closed', 'object store is closed');
  }

  private store(key: string, o: Stored): void {
    if (!this.objects.has(key)) this.sorted = undefined;
    this.objects.set(key, o);
  }

  private keysInOrder(): string[] {
    if (this.sorted === undefined) this.sorted = [...this.objects.keys()].sort(compareKeys);
    return this.sorted;
  }
}

function md5Hex(data: Uint8Array): string {
  return createHash('md5').update(data).digest('hex');
}

/** Index of the first element >= x. */
function lowerBound(xs: readonly string[], x: string): number {
  let lo = 0;
  let hi = xs.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (xs[mid]! < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

