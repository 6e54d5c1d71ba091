// Raw S3 throughput against a Ceph RGW with @aws-sdk/client-s3, at the object sizes and
// concurrency of the chunked driver (limits.chunkedSegmentBytes = 8 MiB segments, 64 KiB cache
// blocks, 16 requests in flight = limits.chunkedReadGetsInFlightMax), plus one synchronous 4 KiB
// put at a time: the rate a server would reach if every 4 KiB write were its own S3 put.
//
// The client is set up like the S3 adapter (src/objstore/s3.ts): keep-alive agent with as many
// sockets as requests in flight, no Expect: 100-continue, no SDK retries, no flexible checksums
// (RGW 16 does not take them), and the body's SHA-256 in the SigV4 signature (the SDK hashes a
// Buffer body; the adapter does the same by default). So the figures measure RGW plus the SDK, the
// floor under what the chunked driver can reach on this RGW.

import http from 'node:http';
import { randomFillSync } from 'node:crypto';
import { GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { Rgw } from '../../test/helpers/rgw.js';

const KiB = 1024;
const MiB = 1024 * KiB;

export interface RawCase {
  id: string;
  label: string;
  op: 'put' | 'get';
  bytes: number;
  inFlight: number;
  /** Ranged get: `bytes` at a random `bytes`-aligned offset of an object of this size (as the
   *  chunked driver's cache reads a block of a segment). */
  rangeOf?: number;
}

export const rawCases: readonly RawCase[] = [
  { id: 'put-8m-16', label: 'put 8 MiB, 16 in flight', op: 'put', bytes: 8 * MiB, inFlight: 16 },
  { id: 'put-8m-8', label: 'put 8 MiB, 8 in flight (64 MiB = limits.chunkedBufferedBytesMax)', op: 'put', bytes: 8 * MiB, inFlight: 8 },
  // smbclient's put keeps two 8 MiB WRITEs outstanding (seen at the server: two segments in flight),
  // and each is answered once its segment is stored: the store sees 2 puts in flight at most.
  { id: 'put-8m-2', label: "put 8 MiB, 2 in flight (smbclient put: two 8 MiB writes outstanding)", op: 'put', bytes: 8 * MiB, inFlight: 2 },
  { id: 'get-8m-16', label: 'get 8 MiB, 16 in flight', op: 'get', bytes: 8 * MiB, inFlight: 16 },
  { id: 'put-64k-16', label: 'put 64 KiB, 16 in flight', op: 'put', bytes: 64 * KiB, inFlight: 16 },
  { id: 'get-64k-16', label: 'get 64 KiB, 16 in flight', op: 'get', bytes: 64 * KiB, inFlight: 16 },
  { id: 'get-64k-1', label: 'get 64 KiB, 1 in flight', op: 'get', bytes: 64 * KiB, inFlight: 1 },
  { id: 'range-64k-16', label: 'get 64 KiB range of an 8 MiB object, 16 in flight', op: 'get', bytes: 64 * KiB, inFlight: 16, rangeOf: 8 * MiB },
  { id: 'range-64k-1', label: 'get 64 KiB range of an 8 MiB object, 1 in flight', op: 'get', bytes: 64 * KiB, inFlight: 1, rangeOf: 8 * MiB },
  { id: 'put-4k-1', label: 'put 4 KiB, 1 in flight (synchronous)', op: 'put', bytes: 4 * KiB, inFlight: 1 },
];

export interface RawResult extends RawCase {
  ops: number;
  seconds: number;
  opsPerS: number;
  /** MiB/s of object bytes. */
  mibPerS: number;
  /** Per-request latency, milliseconds. */
  latMs: { p50: number; p99: number } | null;
  errors: number;
  firstError?: string;
}

export interface RawS3Options {
  /** Seconds per case (a case also stops after maxBytes). */
  durationS: number;
  /** Bytes moved per case at most (bounds the memstore OSD's RAM: it holds every object, and
   *  RGW frees the tails of overwritten objects only a minute later). */
  maxBytes: number;
  log: (msg: string) => void;
}

/** Distinct keys per object size: puts cycle over them, gets pick among those written. */
const keysPerCase = 64;

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function drain(body: unknown): Promise<number> {
  // GetObject's Body is an IncomingMessage (a Readable) in Node.
  let n = 0;
  for await (const chunk of body as AsyncIterable<Uint8Array>) n += chunk.byteLength;
  return n;
}

async function runCase(client: S3Client, bucket: string, c: RawCase, written: Map<number, number>, o: RawS3Options): Promise<RawResult> {
  const body = randomFillSync(Buffer.allocUnsafe(c.bytes));
  const objectBytes = c.rangeOf ?? c.bytes;
  const prefix = `raw/${objectBytes}`;
  const range = (): string | undefined => {
    if (c.rangeOf === undefined) return undefined;
    const off = Math.floor(Math.random() * (c.rangeOf / c.bytes)) * c.bytes;
    return `bytes=${off}-${off + c.bytes - 1}`;
  };
  const lat: number[] = [];
  let errors = 0;
  let firstError: string | undefined;
  let ops = 0;
  let bytes = 0;
  let next = 0;
  const have = written.get(objectBytes) ?? 0;
  if (c.op === 'get' && have === 0) {
    return { ...c, ops: 0, seconds: 0, opsPerS: 0, mibPerS: 0, latMs: null, errors: 1, firstError: 'no objects of this size were put' };
  }
  // One untimed wave first: connections open, the SDK and RGW warm up (a fresh RGW's first writes
  // also create its data pool's objects).
  try {
    await Promise.all(
      Array.from({ length: c.inFlight }, (_, w) =>
        c.op === 'put'
          ? client.send(new PutObjectCommand({ Bucket: bucket, Key: `${prefix}/warm-${w}`, Body: body, ContentLength: c.bytes }))
          : client.send(new GetObjectCommand({ Bucket: bucket, Key: `${prefix}/${w % have}`, Range: range() })).then((out) => drain(out.Body)),
      ),
    );
  } catch (e) {
    return { ...c, ops: 0, seconds: 0, opsPerS: 0, mibPerS: 0, latMs: null, errors: 1, firstError: `warm-up: ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}` };
  }
  const t0 = process.hrtime.bigint();
  const deadline = Date.now() + o.durationS * 1000;
  // A case runs for its duration, but at least 4 waves (else one slow wave of 8 MiB puts is the
  // whole figure), and never past maxBytes.
  const minOps = 4 * c.inFlight;
  const worker = async (): Promise<void> => {
    while (errors === 0) {
      if ((Date.now() >= deadline && next >= minOps) || bytes + c.bytes > o.maxBytes) break;
      const i = next++;
      const key = `${prefix}/${c.op === 'put' ? i % keysPerCase : Math.floor(Math.random() * have)}`;
      bytes += c.bytes;
      const s = process.hrtime.bigint();
      try {
        if (c.op === 'put') {
          await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, ContentLength: c.bytes }));
        } else {
          const out = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key, Range: range() }));
          const n = await drain(out.Body);
          if (n !== c.bytes) throw new Error(`get ${key}: ${n} bytes, expected ${c.bytes}`);
        }
        lat.push(Number(process.hrtime.bigint() - s) / 1e6);
        ops++;
      } catch (e) {
        errors++;
        firstError ??= e instanceof Error ? `${e.name}: ${e.message}` : String(e);
      }
    }
  };
  await Promise.all(Array.from({ length: c.inFlight }, worker));
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  if (c.op === 'put') written.set(c.bytes, Math.max(have, Math.min(keysPerCase, ops)));
  lat.sort((a, b) => a - b);
  const r: RawResult = {
    ...c,
    ops,
    seconds,
    opsPerS: seconds > 0 ? ops / seconds : 0,
    mibPerS: seconds > 0 ? (ops * c.bytes) / MiB / seconds : 0,
    latMs: lat.length > 0 ? { p50: percentile(lat, 50), p99: percentile(lat, 99) } : null,
    errors,
    ...(firstError !== undefined ? { firstError } : {}),
  };
  o.log(`  s3raw ${c.id}: ${Math.round(r.opsPerS)} ops/s, ${r.mibPerS.toFixed(1)} MiB/s${errors > 0 ? `, ${errors} errors: ${firstError}` : ''}`);
  return r;
}

/** Runs every raw case, in order (puts before the gets that read their objects), in `bucket`. */
export async function runRawS3(rgw: Rgw, bucket: string, o: RawS3Options): Promise<RawResult[]> {
  return runRawCases(rgw, bucket, rawCases, o);
}

/**
 * Runs the given cases, in order, in `bucket` (created if missing) of an RGW that may also serve a
 * Chunked-RGW target: the bench measures its baselines on that same RGW too, right before and after
 * the target's rows, since a fresh RGW and one holding a workload's objects differ by up to 2x.
 */
export async function runRawCases(rgw: Rgw, bucket: string, cases: readonly RawCase[], o: RawS3Options): Promise<RawResult[]> {
  await rgw.createBucket(bucket);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 16, maxFreeSockets: 16, scheduling: 'lifo' });
  const client = rgw.client({ expectContinueHeader: false, requestHandler: { httpAgent: agent } });
  const written = new Map<number, number>();
  const out: RawResult[] = [];
  try {
    for (const c of cases) out.push(await runCase(client, bucket, c, written, o));
  } finally {
    client.destroy();
    agent.destroy();
  }
  return out;
}

/** Raw cases by id (throws on an unknown id: a typo must not silently drop a baseline). */
export function rawCasesById(ids: readonly string[]): RawCase[] {
  return ids.map((id) => {
    const c = rawCases.find((x) => x.id === id);
    if (c === undefined) throw new Error(`s3raw: no case ${id}`);
    return c;
  });
}

/** One case by id on `rgw`'s `bucket`; throws unless it completed ops without an error. */
export async function runRawCase(rgw: Rgw, bucket: string, id: string, o: RawS3Options): Promise<RawResult> {
  const [res] = await runRawCases(rgw, bucket, rawCasesById([id]), o);
  if (res === undefined || res.errors > 0 || res.ops === 0) throw new Error(res?.firstError ?? `${id}: no ops`);
  return res;
}

/** The figures the issue asks for: chunked-on-RGW against raw S3 on the same RGW build. */
export interface RawComparison {
  /** Sequential put (unsigned smbclient) on the rgw target, MiB/s. */
  seqPutMiBs: number | null;
  /** Random 4 KiB writes on the rgw target, IOPS, by connections. */
  rand4kWrite: { conns: number; iops: number | null; latUs: Record<string, number> | null }[];
  /** Baselines on the RGW that served the Chunked-RGW target (see runRawCases), if measured. */
  same?: SameRgwBaselines;
}

/** Raw cases run on the Chunked-RGW target's own RGW, next to its rows. */
export interface SameRgwBaselines {
  /** After the sequential rows: 8 MiB puts at 2 and 16 in flight. */
  seq?: RawResult[];
  /** Synchronous 4 KiB puts just before, and just after, the random-IO rows. */
  randBefore?: RawResult[];
  randAfter?: RawResult[];
  errors: string[];
}

const f1 = (v: number): string => (v >= 100 ? v.toFixed(0) : v.toFixed(1));
/** "1.23x (a / b unit)". */
const ratioCell = (a: number, b: number, unit: string): string => `${(a / b).toFixed(2)}x (${f1(a)} / ${f1(b)} ${unit})`;

/**
 * The raw-S3 section. `fresh` is null when the fresh RGW failed (`freshError` says why): the rows
 * measured on the target's own RGW are still shown.
 */
export function renderRawS3(fresh: RawResult[] | null, cmp: RawComparison, note: string, freshError: string): string {
  const results = fresh ?? [];
  const lines = ['### Raw S3 on Ceph RGW (@aws-sdk/client-s3), beside the Chunked-RGW target', ''];
  if (fresh === null) lines.push(`Fresh RGW: FAILED: ${freshError}`, '');
  else lines.push('| case | ops/s | MiB/s | latency p50 / p99 ms | errors |', '|---|---:|---:|---:|---:|');
  for (const r of results) {
    lines.push(
      `| ${r.label} | ${f1(r.opsPerS)} | ${f1(r.mibPerS)} | ${r.latMs ? `${r.latMs.p50.toFixed(2)} / ${r.latMs.p99.toFixed(2)}` : '-'} | ${r.errors > 0 ? `${r.errors}: ${(r.firstError ?? '').slice(0, 80)}` : '0'} |`,
    );
  }
  const put8 = results.find((r) => r.id === 'put-8m-16');
  const put4k = results.find((r) => r.id === 'put-4k-1');
  lines.push(...(fresh === null ? [] : ['']), '| ratio | value | aim |', '|---|---:|---:|');
  const seq = cmp.seqPutMiBs !== null && put8 && put8.mibPerS > 0 && put8.errors === 0 ? ratioCell(cmp.seqPutMiBs, put8.mibPerS, 'MiB/s') : '-';
  lines.push(`| sequential write on Chunked-RGW (smbclient put, unsigned) / raw 8 MiB puts, 16 in flight | ${seq} | 0.8x |`);
  const put2 = results.find((r) => r.id === 'put-8m-2');
  const seq2 = cmp.seqPutMiBs !== null && put2 && put2.mibPerS > 0 && put2.errors === 0 ? ratioCell(cmp.seqPutMiBs, put2.mibPerS, 'MiB/s') : '-';
  lines.push(`| same / raw 8 MiB puts, 2 in flight (the concurrency smbclient's put allows) | ${seq2} | (context) |`);
  for (const r of cmp.rand4kWrite) {
    const v = r.iops !== null && put4k && put4k.opsPerS > 0 && put4k.errors === 0 ? ratioCell(r.iops, put4k.opsPerS, 'per s') : '-';
    lines.push(`| random 4 KiB writes/s on Chunked-RGW, ${r.conns} conn${r.conns > 1 ? 's' : ''} QD1 / synchronous 4 KiB puts/s | ${v} | 20x |`);
  }
  const same = cmp.same;
  if (same !== undefined) {
    const ok = (r: RawResult | undefined): r is RawResult => r !== undefined && r.errors === 0 && r.opsPerS > 0;
    for (const id of ['put-8m-2', 'put-8m-16']) {
      const r = same.seq?.find((x) => x.id === id);
      const v = cmp.seqPutMiBs !== null && ok(r) ? ratioCell(cmp.seqPutMiBs, r.mibPerS, 'MiB/s') : '-';
      lines.push(`| same RGW: sequential write on Chunked-RGW / raw 8 MiB puts, ${r?.inFlight ?? '?'} in flight, right after the sequential rows | ${v} | 0.8x |`);
    }
    const before = same.randBefore?.find((x) => x.id === 'put-4k-1');
    const after = same.randAfter?.find((x) => x.id === 'put-4k-1');
    for (const r of cmp.rand4kWrite) {
      const parts: string[] = [];
      if (r.iops !== null && ok(before)) parts.push(`${(r.iops / before.opsPerS).toFixed(2)}x of ${f1(before.opsPerS)}/s before`);
      if (r.iops !== null && ok(after)) parts.push(`${(r.iops / after.opsPerS).toFixed(2)}x of ${f1(after.opsPerS)}/s after`);
      lines.push(`| same RGW: random 4 KiB writes/s on Chunked-RGW, ${r.conns} conn${r.conns > 1 ? 's' : ''} QD1 (${r.iops !== null ? f1(r.iops) : '-'}) / synchronous 4 KiB puts/s just before and after the random-IO rows | ${parts.length > 0 ? parts.join('; ') : '-'} | 20x |`);
    }
    if (same.errors.length > 0) lines.push('', `- Same-RGW baselines: ${same.errors.join('; ')}`);
  }
  lines.push('', `- ${note}`);
  return lines.join('\n');
}
