// S3 adapter of the object store SPI (spi.ts): MinIO, Ceph RGW, AWS S3 through @aws-sdk/client-s3 v3.
//
// Choices (see the SPI contract in spi.ts for what every adapter promises):
// - One S3Client per store, over our own keep-alive http/https Agents (maxSockets = the concurrency
//   bound), so connections are reused; passing Agent instances also stops the SDK from opening a fresh
//   non-keep-alive connection for every `Expect: 100-continue` request (we do not send that header).
// - The SDK's retries are off (maxAttempts 1). run() retries itself: exponential backoff with equal
//   jitter on throttling, 5xx and network errors, a per-attempt timeout (AbortSignal), an overall
//   deadline, and a semaphore over every request. A write whose attempt may have reached the service
//   (timeout or reset after sending, 500/502/504) and that did not succeed on a later attempt fails
//   'ambiguous', never 'unavailable' or 'precondition-failed' (a conditional put retried after its
//   first attempt secretly succeeded sees 412 from its own write).
// - Payload integrity: by default the body's SHA-256 goes in x-amz-content-sha256 (SigV4 signs it and
//   the service rejects a body that does not match). It is computed over the gathered pieces without
//   joining them (~1.7 GB/s here with SHA-NI). payloadSigning: false sends UNSIGNED-PAYLOAD.
//   The SDK's "flexible checksums" (CRC32 in aws-chunked trailers) are off: Ceph RGW 16 does not
//   understand them.
// - Gathered bodies are streamed from the caller's buffers (a Readable over them, with Content-Length):
//   no concatenation. A get reads the response into one Buffer of the announced size.
import http from 'node:http';
import https from 'node:https';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import {
  CopyObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  type GetObjectCommandOutput,
} from '@aws-sdk/client-s3';
import { limits } from '../base/limits.js';
import { bodyParts, checkDeleteKeys, checkKey, checkKeyFragment, checkListArgs, checkPutOptions, checkRange } from './checks.js';
import {
  keyProblem,
  ObjStoreError,
  type ByteRange,
  type DeleteResult,
  type ListPage,
  type ObjectInfo,
  type ObjectStore,
  type ObjStoreErrorCode,
  type PutOptions,
} from './spi.js';

/** S3's own bound on a key (UTF-8 bytes); the store prefix plus an SPI key must fit in it. */
const S3_KEY_BYTES = 1024;
const PREFIX_BYTES_MAX = S3_KEY_BYTES - limits.objstoreKeyBytesMax;

export interface S3Credentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken?: string;
}

/** Timeouts and retries; each at most its bound in limits.ts (tests shorten them). */
export interface S3Tuning {
  /** Requests in flight (semaphore and sockets per agent). */
  readonly concurrency: number;
  readonly attemptMs: number;
  readonly deadlineMs: number;
  readonly connectMs: number;
  readonly retriesMax: number;
  readonly retryBaseMs: number;
  readonly retryDelayMaxMs: number;
}

export interface S3StoreOptions {
  readonly bucket: string;
  /** Prepended to every key ('' or ends with '/'); list() and deleteMany() results are without it. */
  readonly prefix?: string;
  /** e.g. http://127.0.0.1:7480 (MinIO, RGW); absent: AWS's endpoint for the region. */
  readonly endpoint?: string;
  /** Default 'us-east-1' when an endpoint is given; else the SDK's region chain (AWS_REGION, config). */
  readonly region?: string;
  /** Path-style addressing (http://host/bucket/key); default true when an endpoint is given. */
  readonly forcePathStyle?: boolean;
  /** Absent: the SDK's default chain (environment, shared config/credentials files, SSO, IMDS...). */
  readonly credentials?: S3Credentials;
  /**
   * How copy(source, target, { ifNoneMatch: '*' }) is done. 'native': CopyObject with If-None-Match: *
   * on the target (AWS S3 documents it: 412 if the target exists). 'refuse': reject with 'invalid'
   * before any I/O, for services that ignore that header: Ceph RGW 16 does (on CopyObject and on
   * CompleteMultipartUpload alike; measured), so there a create-only copy cannot be made atomic
   * without moving the bytes through this process. Default: 'native' for AWS (no endpoint),
   * 'refuse' with a custom endpoint until the operator has checked the service.
   */
  readonly conditionalCopy?: 'native' | 'refuse';
  /** Put the body's SHA-256 in the signature so the service checks it (default true). */
  readonly payloadSigning?: boolean;
  readonly tuning?: Partial<S3Tuning>;
  /** Jitter source in [0, 1) (default Math.random); injectable for tests. */
  readonly random?: () => number;
}

export interface S3StoreStats {
  /** HTTP requests sent (attempts). */
  readonly attempts: number;
  /** Attempts after the first of an operation. */
  readonly retries: number;
  /** Attempts cut by the per-attempt timeout. */
  readonly timeouts: number;
  /** Operations that failed (any code). */
  readonly failures: number;
  /** Operations that failed 'ambiguous'. */
  readonly ambiguous: number;
}

interface OpSpec {
  readonly name: string;
  readonly key?: string;
  /** Changes the store: an attempt that may have reached it turns a final failure into 'ambiguous'. */
  readonly write: boolean;
  /** What a 404 means for this operation (If-Match put on an absent key: 'precondition-failed'). */
  readonly absent?: ObjStoreErrorCode;
}

interface Failure {
  readonly code: ObjStoreErrorCode;
  readonly retry: boolean;
  /** The request may have been acted on by the service. */
  readonly mayHaveApplied: boolean;
  readonly message: string;
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/** FIFO counting semaphore whose waiters give up at a deadline. */
class Gate {
  private free: number;
  private readonly waiters: { grant: () => void }[] = [];
  constructor(size: number) {
    this.free = size;
  }
  /** Resolves true with a slot, false if none came within timeoutMs. */
  acquire(timeoutMs: number): Promise<boolean> {
    if (this.free > 0) {
      this.free--;
      return Promise.resolve(true);
    }
    return new Promise<boolean>((resolve) => {
      const w = {
        grant: () => {
          clearTimeout(timer);
          resolve(true);
        },
      };
      const timer = setTimeout(() => {
        const i = this.waiters.indexOf(w);
        if (i >= 0) this.waiters.splice(i, 1);
        resolve(false);
      }, Math.max(0, timeoutMs));
      this.waiters.push(w);
    });
  }
  release(): void {
    const w = this.waiters.shift();
    if (w) w.grant();
    else this.free++;
  }
}

function bad(message: string): ObjStoreError {
  return new ObjStoreError('invalid', message);
}

function tuningOf(t: Partial<S3Tuning> | undefined): S3Tuning {
  const pick = (name: keyof S3Tuning, max: number, min: number): number => {
    const v = t?.[name];
    if (v === undefined) return max;
    if (!Number.isSafeInteger(v) || v < min || v > max) throw bad(`tuning.${name} must be an integer in ${min}..${max}`);
    return v;
  };
  return {
    concurrency: pick('concurrency', limits.objstoreS3ConcurrencyMax, 1),
    attemptMs: pick('attemptMs', limits.objstoreS3AttemptMs, 1),
    deadlineMs: pick('deadlineMs', limits.objstoreS3DeadlineMs, 1),
    connectMs: pick('connectMs', limits.objstoreS3ConnectMs, 1),
    retriesMax: pick('retriesMax', limits.objstoreS3RetriesMax, 0),
    retryBaseMs: pick('retryBaseMs', limits.objstoreS3RetryBaseMs, 0),
    retryDelayMaxMs: pick('retryDelayMaxMs', limits.objstoreS3RetryDelayMaxMs, 0),
  };
}

/** S3 wants the copy source as "bucket/key" with the key URL-encoded ('/' kept). */
function copySource(bucket: string, fullKey: string): string {
  return `${bucket}/${fullKey.split('/').map(encodeURIComponent).join('/')}`;
}

/**
 * ETags as the SPI hands them out: without the quotes of the HTTP entity-tag (RFC 9110 8.8.3).
 * S3 quotes them in headers and listings but not always in CopyObjectResult, and Ceph RGW 16 compares
 * If-Match byte for byte with the unquoted value (a quoted If-Match always fails there), so the
 * unquoted form is also what we send (AWS and MinIO accept it).
 */
function bareEtag(raw: string | undefined): string {
  if (raw === undefined) return '';
  const t = raw.trim();
  return t.length >= 2 && t.startsWith('"') && t.endsWith('"') ? t.slice(1, -1) : t;
}

function asBuffer(u: Uint8Array): Buffer {
  return Buffer.isBuffer(u) ? u : Buffer.from(u.buffer, u.byteOffset, u.byteLength);
}

interface SdkErrorShape {
  name?: unknown;
  code?: unknown;
  message?: unknown;
  Code?: unknown;
  $metadata?: { httpStatusCode?: number };
  $response?: { statusCode?: number };
}

function httpStatus(err: unknown): number | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const e = err as SdkErrorShape;
  return e.$metadata?.httpStatusCode ?? e.$response?.statusCode;
}

// Network errors raised before any byte of the request left (safe to call 'unavailable').
const NOT_SENT = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL', 'ENETDOWN']);
// Errors after the request may have been sent (a write may have happened).
const MAYBE_SENT = new Set(['ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ECONNABORTED', 'ERR_STREAM_PREMATURE_CLOSE', 'UND_ERR_SOCKET']);
const THROTTLE = new Set(['SlowDown', 'Throttling', 'ThrottlingException', 'RequestLimitExceeded', 'TooManyRequests', 'ServiceUnavailable', 'ConditionalRequestConflict', 'OperationAborted']);

/** Maps one failed attempt to an SPI code and a retry decision. */
function classify(err: unknown, spec: OpSpec, timedOutMs: number | undefined): Failure {
  const e = (typeof err === 'object' && err !== null ? err : {}) as SdkErrorShape;
  const name = typeof e.name === 'string' ? e.name : '';
  const msg = typeof e.message === 'string' ? e.message : String(err);
  const what = `${spec.name}${spec.key !== undefined ? ` ${spec.key}` : ''}`;
  if (timedOutMs !== undefined) {
    return { code: 'unavailable', retry: true, mayHaveApplied: true, message: `${what}: no answer within ${timedOutMs} ms` };
  }
  const status = httpStatus(err);
  if (status !== undefined && status > 0) {
    const m = `${what}: HTTP ${status} ${name}${msg && msg !== name ? `: ${msg}` : ''}`;
    if (status === 404) {
      if (name === 'NoSuchBucket') return { code: 'invalid', retry: false, mayHaveApplied: false, message: `${m} (the bucket does not exist)` };
      return { code: spec.absent ?? 'not-found', retry: false, mayHaveApplied: false, message: m };
    }
    // RFC 9110 13.1.1/13.1.2: a failed If-Match / If-None-Match answers 412 (RGW: ERR_PRECONDITION_FAILED).
    if (status === 412 || name === 'PreconditionFailed') return { code: 'precondition-failed', retry: false, mayHaveApplied: false, message: m };
    if (status === 401 || status === 403) return { code: 'denied', retry: false, mayHaveApplied: false, message: m };
    if (status === 413 || name === 'EntityTooLarge') return { code: 'too-large', retry: false, mayHaveApplied: false, message: m };
    if (status === 429 || status === 503 || THROTTLE.has(name)) return { code: 'unavailable', retry: true, mayHaveApplied: false, message: m };
    // A body mangled on the way: the service refused it, nothing was written; send again.
    if (name === 'BadDigest' || name === 'XAmzContentSHA256Mismatch' || name === 'IncompleteBody') {
      return { code: 'unavailable', retry: true, mayHaveApplied: false, message: m };
    }
    // 500/502/504 and S3's 400 RequestTimeout: the service may have acted before failing.
    if (status >= 500 || name === 'RequestTimeout' || name === 'InternalError') return { code: 'unavailable', retry: true, mayHaveApplied: true, message: m };
    return { code: 'invalid', retry: false, mayHaveApplied: false, message: m };
  }
  if (name === 'CredentialsProviderError') return { code: 'denied', retry: false, mayHaveApplied: false, message: `${what}: no credentials: ${msg}` };
  const code = typeof e.code === 'string' ? e.code : '';
  if (NOT_SENT.has(code) || msg.includes('did not establish a connection')) {
    return { code: 'unavailable', retry: true, mayHaveApplied: false, message: `${what}: ${code || name}: ${msg}` };
  }
  if (MAYBE_SENT.has(code) || name === 'TimeoutError' || name === 'AbortError' || /socket hang up|premature|aborted/i.test(msg)) {
    return { code: 'unavailable', retry: true, mayHaveApplied: true, message: `${what}: ${code || name}: ${msg}` };
  }
  // An answer the SDK could not parse (a proxy's HTML page, a cut XML body) without a status.
  if (name === 'SyntaxError' || /deserializ|xml/i.test(msg)) {
    return { code: 'unavailable', retry: true, mayHaveApplied: true, message: `${what}: unreadable answer: ${msg}` };
  }
  return { code: 'invalid', retry: false, mayHaveApplied: false, message: `${what}: ${name || 'error'}: ${msg}` };
}

/** Error raised by readBody when the body ends early (retried like a reset connection). */
function prematureEnd(got: number, want: number): Error {
  return Object.assign(new Error(`response body ended after ${got} of ${want} bytes (premature)`), { code: 'ERR_STREAM_PREMATURE_CLOSE' });
}

/** "bytes a-b/total" -> a, or undefined. */
function contentRangeStart(h: string | undefined): number | undefined {
  if (!h) return undefined;
  const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(h.trim());
  return m ? Number(m[1]) : undefined;
}

/**
 * Reads a GetObject body into one Buffer of the announced size (one copy from the socket's chunks,
 * no joining). If the service ignored our Range (200 with the whole object), the range is cut out
 * while reading.
 */
async function readBody(out: GetObjectCommandOutput, range: ByteRange | undefined, signal: AbortSignal): Promise<Buffer> {
  const body = out.Body as unknown as Readable | undefined;
  const announced = out.ContentLength;
  if (!body) {
    if (announced === 0 || announced === undefined) return Buffer.alloc(0);
    throw new ObjStoreError('corrupt', `get: answer without a body but Content-Length ${announced}`);
  }
  const onAbort = (): void => {
    body.destroy(Object.assign(new Error('aborted while reading the body'), { name: 'AbortError' }));
  };
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    if (announced === undefined) {
      // No Content-Length (chunked answer): the only case where pieces are joined.
      const chunks: Buffer[] = [];
      let total = 0;
      for await (const c of body) {
        total += (c as Buffer).length;
        if (total > limits.objstoreObjectBytesMax) throw new ObjStoreError('too-large', `get: body above ${limits.objstoreObjectBytesMax} bytes`);
        chunks.push(c as Buffer);
      }
      const all = Buffer.concat(chunks);
      if (!range || out.ContentRange) return all;
      return Buffer.from(all.subarray(Math.min(range.offset, all.length), Math.min(range.offset + range.length, all.length)));
    }
    if (!Number.isSafeInteger(announced) || announced < 0) throw new ObjStoreError('corrupt', `get: Content-Length ${announced}`);
    let skip = 0;
    let want = announced;
    if (range) {
      const start = contentRangeStart(out.ContentRange);
      if (start === undefined) {
        // Whole object came back: keep [offset, offset+length) of it.
        skip = Math.min(range.offset, announced);
        want = Math.min(range.length, announced - skip);
      } else if (start !== range.offset || announced > range.length) {
        throw new ObjStoreError('corrupt', `get: asked bytes from ${range.offset} (${range.length}), got Content-Range ${out.ContentRange}`);
      }
    }
    if (want > limits.objstoreObjectBytesMax) {
      throw new ObjStoreError('too-large', `get: ${want} bytes > ${limits.objstoreObjectBytesMax}; read it in ranges`);
    }
    // Not from Node's shared pool: the caller owns the whole ArrayBuffer (it may encrypt in place or
    // transfer it). Every byte is written below before it is returned.
    const buf = Buffer.allocUnsafeSlow(want);
    let pos = 0;
    for await (const chunk of body) {
      const c = chunk as Buffer;
      const cStart = pos;
      pos += c.length;
      if (pos > announced) throw new ObjStoreError('corrupt', `get: body longer than its Content-Length ${announced}`);
      const s = Math.max(cStart, skip);
      const e = Math.min(pos, skip + want);
      if (e > s) c.copy(buf, s - skip, s - cStart, e - cStart);
    }
    if (pos !== announced) throw prematureEnd(pos, announced);
    return buf;
  } catch (err) {
    body.destroy(); // an unread rest must not stay on a pooled connection
    throw err;
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
}

export class S3Store implements ObjectStore {
  readonly kind = 's3';
  readonly bucket: string;
  readonly prefix: string;
  private readonly client: S3Client;
  private readonly agents: { http: http.Agent; https: https.Agent };
  private readonly tuning: S3Tuning;
  private readonly gate: Gate;
  private readonly payloadSigning: boolean;
  private readonly conditionalCopy: 'native' | 'refuse';
  private readonly random: () => number;
  private readonly counters: Mutable<S3StoreStats> = { attempts: 0, retries: 0, timeouts: 0, failures: 0, ambiguous: 0 };
  private closed = false;
  private inFlight = 0;
  private destroyed = false;

  private constructor(opts: S3StoreOptions) {
    if (typeof opts !== 'object' || opts === null) throw bad('S3Store.open: options required');
    if (typeof opts.bucket !== 'string' || !/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(opts.bucket)) {
      throw bad(`S3Store.open: bucket ${JSON.stringify(opts.bucket)} is not a valid S3 bucket name`);
    }
    const prefix = opts.prefix ?? '';
    checkKeyFragment(prefix, 'prefix');
    if (prefix.length > PREFIX_BYTES_MAX) throw bad(`prefix longer than ${PREFIX_BYTES_MAX} bytes`);
    if (prefix !== '' && (!prefix.endsWith('/') || keyProblem(prefix.slice(0, -1), PREFIX_BYTES_MAX) !== undefined)) {
      throw bad(`prefix ${JSON.stringify(prefix)} must be empty or key segments ending with '/'`);
    }
    let endpoint: string | undefined;
    if (opts.endpoint !== undefined) {
      let u: URL;
      try {
        u = new URL(opts.endpoint);
      } catch {
        throw bad(`endpoint ${JSON.stringify(opts.endpoint)} is not a URL`);
      }
      if (u.protocol !== 'http:' && u.protocol !== 'https:') throw bad('endpoint must be http: or https:');
      endpoint = opts.endpoint;
    }
    if (opts.credentials !== undefined) {
      const c = opts.credentials;
      if (typeof c.accessKeyId !== 'string' || c.accessKeyId === '' || typeof c.secretAccessKey !== 'string' || c.secretAccessKey === '') {
        throw bad('credentials need accessKeyId and secretAccessKey');
      }
    }
    this.bucket = opts.bucket;
    this.prefix = prefix;
    this.tuning = tuningOf(opts.tuning);
    this.gate = new Gate(this.tuning.concurrency);
    this.payloadSigning = opts.payloadSigning ?? true;
    if (opts.conditionalCopy !== undefined && opts.conditionalCopy !== 'native' && opts.conditionalCopy !== 'refuse') {
      throw bad("conditionalCopy must be 'native' or 'refuse'");
    }
    this.conditionalCopy = opts.conditionalCopy ?? (endpoint === undefined ? 'native' : 'refuse');
    this.random = opts.random ?? Math.random;
    const agentOpts = { keepAlive: true, maxSockets: this.tuning.concurrency, maxFreeSockets: this.tuning.concurrency, scheduling: 'lifo' as const };
    this.agents = { http: new http.Agent(agentOpts), https: new https.Agent(agentOpts) };
    const region = opts.region ?? (endpoint !== undefined ? 'us-east-1' : undefined);
    this.client = new S3Client({
      ...(region !== undefined ? { region } : {}),
      ...(endpoint !== undefined ? { endpoint } : {}),
      forcePathStyle: opts.forcePathStyle ?? endpoint !== undefined,
      ...(opts.credentials !== undefined ? { credentials: { ...opts.credentials } } : {}),
      maxAttempts: 1, // run() retries
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      expectContinueHeader: false,
      requestHandler: {
        httpAgent: this.agents.http,
        httpsAgent: this.agents.https,
        connectionTimeout: this.tuning.connectMs,
      },
    });
  }

  /** No I/O: a wrong bucket, endpoint or secret shows on the first operation. */
  static open(opts: S3StoreOptions): Promise<S3Store> {
    try {
      return Promise.resolve(new S3Store(opts));
    } catch (e) {
      return Promise.reject(e);
    }
  }

  stats(): S3StoreStats {
    return { ...this.counters };
  }

  private full(key: string): string {
    return this.prefix + key;
  }

  private checkOpen(): void {
    if (this.closed) throw new ObjStoreError('closed', 'S3 store is closed');
  }

  /** One operation: semaphore, per-attempt timeout, retries with backoff, overall deadline. */
  private async run<T>(spec: OpSpec, attemptFn: (signal: AbortSignal) => Promise<T>): Promise<T> {
    this.checkOpen();
    const t = this.tuning;
    const deadline = performance.now() + t.deadlineMs;
    let mayHaveApplied = false;
    let last: Failure | undefined;
    this.inFlight++;
    try {
      for (let attempt = 0; attempt <= t.retriesMax; attempt++) {
        if (attempt > 0) {
          const exp = Math.min(t.retryDelayMaxMs, t.retryBaseMs * 2 ** (attempt - 1));
          const delay = exp / 2 + (this.random() * exp) / 2;
          if (performance.now() + delay >= deadline) break;
          await new Promise((r) => setTimeout(r, delay));
          if (this.closed) break;
          this.counters.retries++;
        }
        const remaining = deadline - performance.now();
        if (remaining <= 0) break;
        if (!(await this.gate.acquire(remaining))) {
          last = { code: 'unavailable', retry: true, mayHaveApplied: false, message: `${spec.name}: no request slot free before the deadline` };
          break;
        }
        const attemptMs = Math.max(1, Math.min(t.attemptMs, deadline - performance.now()));
        const ac = new AbortController();
        let timedOut: number | undefined;
        const timer = setTimeout(() => {
          timedOut = attemptMs;
          ac.abort(new Error(`attempt timeout ${attemptMs} ms`));
        }, attemptMs);
        this.counters.attempts++;
        try {
          return await attemptFn(ac.signal);
        } catch (err) {
          if (err instanceof ObjStoreError) throw err; // decided by the operation itself
          if (timedOut !== undefined) this.counters.timeouts++;
          last = classify(err, spec, timedOut);
          if (last.mayHaveApplied) mayHaveApplied = true;
          if (!last.retry) break;
        } finally {
          clearTimeout(timer);
          this.gate.release();
        }
      }
    } catch (err) {
      this.counters.failures++;
      throw err;
    } finally {
      this.inFlight--;
      if (this.closed && this.inFlight === 0) this.destroy();
    }
    this.counters.failures++;
    if (this.closed && !(spec.write && mayHaveApplied)) throw new ObjStoreError('closed', `${spec.name}: store closed while retrying`);
    const f = last ?? { code: 'unavailable', retry: true, mayHaveApplied: false, message: `${spec.name}: deadline of ${t.deadlineMs} ms passed` };
    if (spec.write && mayHaveApplied) {
      // An earlier attempt may have written: neither "did not happen" nor "condition failed" is true.
      this.counters.ambiguous++;
      throw new ObjStoreError('ambiguous', `${f.message} (an earlier attempt may have taken effect)`);
    }
    throw new ObjStoreError(f.retry ? 'unavailable' : f.code, f.retry ? `${f.message} (gave up)` : f.message);
  }

  private destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.client.destroy();
    this.agents.http.destroy();
    this.agents.https.destroy();
  }

  /** Adds the body's hash (or UNSIGNED-PAYLOAD) as x-amz-content-sha256 before SigV4 signs. */
  private withPayloadHash<C extends PutObjectCommand>(cmd: C, hash: string): C {
    cmd.middlewareStack.add(
      (next) => async (args) => {
        const req = args.request as { headers?: Record<string, string> };
        if (req.headers) req.headers['x-amz-content-sha256'] = hash;
        return next(args);
      },
      { step: 'build', name: 'tesseraPayloadHash', override: true },
    );
    return cmd;
  }

  async get(key: string, range?: ByteRange): Promise<Buffer> {
    this.checkOpen();
    checkKey(key);
    checkRange(range);
    if (range !== undefined) {
      if (!Number.isSafeInteger(range.offset + range.length)) throw bad('range end beyond safe integers');
      if (range.length === 0) {
        if ((await this.head(key)) === undefined) throw new ObjStoreError('not-found', `get ${key}: no such key`);
        return Buffer.alloc(0);
      }
    }
    const Key = this.full(key);
    const Range = range ? `bytes=${range.offset}-${range.offset + range.length - 1}` : undefined;
    return this.run({ name: 'get', key, write: false }, async (signal) => {
      let out: GetObjectCommandOutput;
      try {
        out = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key, Range }), { abortSignal: signal });
      } catch (err) {
        // RFC 9110 15.5.17: a range starting at or past the end is unsatisfiable; the SPI reads it as empty.
        if (httpStatus(err) === 416) return Buffer.alloc(0);
        throw err;
      }
      return readBody(out, range, signal);
    });
  }

  async put(key: string, body: Uint8Array | readonly Uint8Array[], opts?: PutOptions): Promise<ObjectInfo> {
    this.checkOpen();
    checkKey(key);
    const { parts: given, size: total } = bodyParts(body);
    const parts = given.filter((p) => p.byteLength > 0).map(asBuffer);
    checkPutOptions(opts);
    if (opts?.ifMatch !== undefined) checkKeyFragment(opts.ifMatch, 'ifMatch'); // goes into a header
    let hash = 'UNSIGNED-PAYLOAD';
    if (this.payloadSigning) {
      const h = createHash('sha256');
      for (const p of parts) h.update(p);
      hash = h.digest('hex');
    }
    const Key = this.full(key);
    const out = await this.run(
      { name: 'put', key, write: true, absent: opts?.ifMatch !== undefined ? 'precondition-failed' : 'not-found' },
      (signal) => {
        // A fresh stream per attempt over the same buffers: nothing is copied or joined.
        const Body = parts.length === 0 ? Buffer.alloc(0) : parts.length === 1 ? parts[0] : Readable.from(parts, { objectMode: false });
        const cmd = new PutObjectCommand({
          Bucket: this.bucket,
          Key,
          Body,
          ContentLength: total,
          ...(opts?.ifNoneMatch !== undefined ? { IfNoneMatch: '*' } : {}),
          ...(opts?.ifMatch !== undefined ? { IfMatch: bareEtag(opts.ifMatch) } : {}),
        });
        return this.client.send(this.withPayloadHash(cmd, hash), { abortSignal: signal });
      },
    );
    let etag = bareEtag(out.ETag);
    if (etag === '') {
      // Some gateways omit it; ask (the object may already be newer: the SPI's etag is advisory here).
      etag = (await this.head(key))?.etag ?? '';
    }
    return { key, size: total, etag };
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    this.checkOpen();
    checkKey(key);
    const Key = this.full(key);
    return this.run({ name: 'head', key, write: false }, async (signal) => {
      try {
        const out = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key }), { abortSignal: signal });
        return { key, size: out.ContentLength ?? 0, etag: bareEtag(out.ETag) };
      } catch (err) {
        // HEAD answers carry no body: a missing bucket looks the same as a missing key here.
        if (httpStatus(err) === 404) return undefined;
        throw err;
      }
    });
  }

  async deleteMany(keys: readonly string[]): Promise<DeleteResult> {
    this.checkOpen();
    checkDeleteKeys(keys);
    const unique = [...new Set(keys)];
    if (unique.length === 0) return { deleted: [], errors: [] };
    const out = await this.run({ name: 'deleteMany', write: true }, (signal) =>
      this.client.send(
        new DeleteObjectsCommand({
          Bucket: this.bucket,
          // Quiet=false: the answer lists every key, deleted or not, so per-key errors are learnt.
          Delete: { Objects: unique.map((k) => ({ Key: this.full(k) })), Quiet: false },
        }),
        { abortSignal: signal },
      ),
    );
    const done = new Set<string>();
    const failed = new Map<string, { code: ObjStoreErrorCode; message: string }>();
    for (const d of out.Deleted ?? []) if (d.Key !== undefined) done.add(d.Key);
    for (const e of out.Errors ?? []) {
      if (e.Key === undefined) continue;
      if (e.Code === 'NoSuchKey') {
        done.add(e.Key); // idempotent: missing is deleted
        continue;
      }
      const code: ObjStoreErrorCode =
        e.Code === 'AccessDenied' ? 'denied' : e.Code === 'InternalError' || e.Code === 'SlowDown' || e.Code === 'ServiceUnavailable' ? 'unavailable' : 'invalid';
      failed.set(e.Key, { code, message: `${e.Code ?? 'error'}: ${e.Message ?? ''}` });
    }
    const deleted: string[] = [];
    const errors: { key: string; code: ObjStoreErrorCode; message: string }[] = [];
    for (const k of unique) {
      const f = failed.get(this.full(k));
      if (f) errors.push({ key: k, ...f });
      else if (done.has(this.full(k))) deleted.push(k);
      else errors.push({ key: k, code: 'ambiguous', message: 'the store did not report this key' });
    }
    return { deleted, errors };
  }

  async list(prefix: string, opts?: { after?: string; limit?: number }): Promise<ListPage> {
    this.checkOpen();
    const { after, limit } = checkListArgs(prefix, opts);
    const out = await this.run({ name: 'list', key: prefix, write: false }, (signal) =>
      this.client.send(
        new ListObjectsV2Command({
          Bucket: this.bucket,
          Prefix: this.full(prefix),
          MaxKeys: limit,
          ...(after !== undefined && after !== '' ? { StartAfter: this.full(after) } : {}),
        }),
        { abortSignal: signal },
      ),
    );
    const objects: ObjectInfo[] = [];
    for (const o of out.Contents ?? []) {
      if (o.Key === undefined || !o.Key.startsWith(this.prefix)) {
        throw new ObjStoreError('corrupt', `list: the store returned key ${JSON.stringify(o.Key)} outside prefix ${JSON.stringify(this.prefix)}`);
      }
      objects.push({ key: o.Key.slice(this.prefix.length), size: o.Size ?? 0, etag: bareEtag(o.ETag) });
    }
    // S3 lists in UTF-8 binary order, which for our printable-ASCII keys is bytewise order.
    const last = objects[objects.length - 1];
    return out.IsTruncated && last !== undefined ? { objects, next: last.key } : { objects };
  }

  async copy(source: string, target: string, opts?: { ifNoneMatch?: '*' }): Promise<ObjectInfo> {
    this.checkOpen();
    checkKey(source, 'copy source');
    checkKey(target, 'copy target');
    if (opts?.ifNoneMatch !== undefined && opts.ifNoneMatch !== '*') throw bad(`ifNoneMatch must be '*'`);
    if (opts?.ifNoneMatch !== undefined && this.conditionalCopy === 'refuse') {
      throw bad(`copy ${target}: create-only copy is not supported on this service (conditionalCopy 'refuse')`);
    }
    // The size comes from a HEAD of the source, and x-amz-copy-source-if-match pins the copy to that
    // version; a source replaced in between makes us look again (bounded).
    for (let round = 0; ; round++) {
      const src = await this.head(source);
      if (src === undefined) throw new ObjStoreError('not-found', `copy: source ${source} does not exist`);
      try {
        const out = await this.run({ name: 'copy', key: target, write: true }, (signal) =>
          this.client.send(
            new CopyObjectCommand({
              Bucket: this.bucket,
              Key: this.full(target),
              CopySource: copySource(this.bucket, this.full(source)),
              CopySourceIfMatch: src.etag,
              ...(opts?.ifNoneMatch !== undefined ? { IfNoneMatch: '*' } : {}),
            }),
            { abortSignal: signal },
          ),
        );
        const etag = bareEtag(out.CopyObjectResult?.ETag);
        return { key: target, size: src.size, etag: etag !== '' ? etag : ((await this.head(target))?.etag ?? '') };
      } catch (err) {
        if (!(err instanceof ObjStoreError) || (err.code !== 'precondition-failed' && err.code !== 'not-found') || round >= 2) throw err;
        const now = await this.head(source);
        if (now === undefined) throw new ObjStoreError('not-found', `copy: source ${source} does not exist`, { cause: err });
        if (now.etag === src.etag) throw err; // the target's condition failed
      }
    }
  }

  close(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      if (this.inFlight === 0) this.destroy();
    }
    return Promise.resolve();
  }
}
