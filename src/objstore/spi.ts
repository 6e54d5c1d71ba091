// Object store SPI, version 1 (ARCHITECTURE.md: "src/objstore: the object store SPI and its adapters
// (local directory, S3, memory, fault-injecting)"). The chunked driver keeps file data as immutable
// objects through it; metadata snapshots go through it in a cluster. Adapters: LocalDirStore (the
// embedded default), S3Store (MinIO, Ceph RGW, AWS), MemoryObjectStore (tests), FaultyStore (a wrapper that
// injects errors and latency). No SMB types here; src/objstore imports only src/base.
//
// Contract, for every adapter:
// - Keys are 1..limits.objstoreKeyBytesMax bytes of printable ASCII without '\\', no empty, '.' or
//   '..' path segment, no leading '/', no segment over 254 bytes (a file name on the local-directory
//   store; the chunked driver's keys are far shorter). '/' separates "directories" for list(). Bad keys reject with
//   ObjStoreError 'invalid' before any I/O.
// - Atomicity. put() and copy() make the whole object visible at once or not at all; a reader never
//   sees a partial object. A put over an existing key replaces it atomically.
// - Durability. put(), copy() and deleteMany() resolve only once the change survives a crash of the
//   store's host (local directory: fsync of the file and its directory; S3: the service's ack).
// - Conditional put (If-None-Match: * and If-Match: etag, RFC 9110 13.1): a failed condition rejects
//   with 'precondition-failed' and changes nothing. Exactly one of several concurrent create-only puts
//   of one key succeeds.
// - Reads. get() of a missing key rejects with 'not-found'. A range is clamped at the object's end; a
//   range starting at or beyond the end returns an empty buffer (S3 answers 416; adapters hide it).
//   The returned Buffer belongs to the caller (the server may encrypt it in place).
// - Listing is in key order (bytewise), paged (`after` = last key of the previous page, exclusive).
// - deleteMany() treats missing keys as deleted (idempotent); per-key failures are returned, not thrown.
// - ETags are opaque strings: put, head and copy of one object agree; different content gives a
//   different etag; two puts of equal content need not give equal etags (adapters differ).
// - Errors are ObjStoreError with a code. 'unavailable' means the store could not be reached and the
//   operation did not happen; 'ambiguous' means a write may or may not have taken effect (timeout after
//   sending) — the caller's retry must be idempotent (immutable keys make puts idempotent).

export const OBJSTORE_SPI_VERSION = 1;

export type ObjStoreErrorCode =
  | 'not-found'
  | 'precondition-failed'
  | 'invalid'
  | 'too-large'
  | 'denied'
  | 'unavailable'
  | 'ambiguous'
  | 'corrupt'
  | 'closed';

export class ObjStoreError extends Error {
  readonly code: ObjStoreErrorCode;
  constructor(code: ObjStoreErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = 'ObjStoreError';
  }
}

export interface ObjectInfo {
  readonly key: string;
  readonly size: number;
  readonly etag: string;
}

export interface ByteRange {
  readonly offset: number;
  /** Bytes wanted from offset (clamped at the object's end). */
  readonly length: number;
}

export interface PutOptions {
  /** '*': create only (fails 'precondition-failed' if the key exists). */
  readonly ifNoneMatch?: '*';
  /** Replace only if the current object has this etag (fails 'precondition-failed' otherwise or if absent). */
  readonly ifMatch?: string;
}

export interface ListPage {
  readonly objects: readonly ObjectInfo[];
  /** Pass as `after` to get the next page; absent on the last page. */
  readonly next?: string;
}

export interface DeleteResult {
  readonly deleted: readonly string[];
  readonly errors: readonly { key: string; code: ObjStoreErrorCode; message: string }[];
}

export interface ObjectStore {
  /** 'local', 's3', 'memory', 'faulty(...)' (logs and metrics). */
  readonly kind: string;

  /** The object's bytes, or a range of them. */
  get(key: string, range?: ByteRange): Promise<Buffer>;

  /**
   * Stores `body` (the concatenation of the given buffers: a segment gathered from many writes is
   * passed without copying it into one buffer) under `key`. Rejects 'too-large' above
   * limits.objstoreObjectBytesMax.
   */
  put(key: string, body: Uint8Array | readonly Uint8Array[], opts?: PutOptions): Promise<ObjectInfo>;

  /** Size and etag, or undefined if absent. */
  head(key: string): Promise<ObjectInfo | undefined>;

  /** Deletes up to limits.objstoreDeleteBatchMax keys (S3 DeleteObjects semantics). */
  deleteMany(keys: readonly string[]): Promise<DeleteResult>;

  /** Objects whose keys start with `prefix`, in key order, at most `limit` (<= listPageMax) per page. */
  list(prefix: string, opts?: { after?: string; limit?: number }): Promise<ListPage>;

  /** Server-side copy of a whole object (no bytes through this process); `ifNoneMatch` on the target. */
  copy(source: string, target: string, opts?: { ifNoneMatch?: '*' }): Promise<ObjectInfo>;

  /** Rejects later calls with 'closed'; waits for nothing in flight. Idempotent. */
  close(): Promise<void>;
}

/** Checks a key against the contract; returns a message for a bad key, undefined for a good one. */
export function keyProblem(key: unknown, keyBytesMax: number): string | undefined {
  if (typeof key !== 'string' || key.length === 0) return 'key must be a non-empty string';
  if (key.length > keyBytesMax) return `key longer than ${keyBytesMax} bytes`;
  for (let i = 0; i < key.length; i++) {
    const c = key.charCodeAt(i);
    if (c < 0x20 || c > 0x7e || c === 0x5c) return `key has a byte outside printable ASCII or a backslash at ${i}`;
  }
  if (key.startsWith('/')) return 'key starts with /';
  for (const seg of key.split('/')) {
    if (seg === '' || seg === '.' || seg === '..') return `key has an empty, '.' or '..' segment`;
  }
  return undefined;
}
