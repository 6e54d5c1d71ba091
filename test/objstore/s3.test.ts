// S3Store against a real Ceph RGW (test/helpers/rgw.ts): the SPI conformance suite, then what only
// an S3 adapter has: credentials, retries and their accounting, timeouts, ambiguity after a lost
// answer, a gateway killed and restarted, connection reuse, the concurrency bound, a 64 MiB gathered
// put, and throughput figures for the record. Faults are injected by a small HTTP proxy in front of
// RGW (the SigV4 signature covers the Host header, which the proxy forwards unchanged).
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MiB, KiB } from '../../src/base/limits.js';
import { S3Store, type S3StoreOptions } from '../../src/objstore/s3.js';
import { ObjStoreError, type ObjStoreErrorCode } from '../../src/objstore/spi.js';
import { startRgw, type Rgw } from '../helpers/rgw.js';
import { runObjStoreConformance } from './conformance.js';

let rgw: Rgw;
const BUCKET = 'tessera-s3';

beforeAll(async () => {
  rgw = await startRgw({ name: 'h9s3' });
  await rgw.createBucket(BUCKET);
}, 180_000);

afterAll(async () => {
  await rgw?.stop();
});

let seq = 0;
function storeOpts(extra: Partial<S3StoreOptions> = {}): S3StoreOptions {
  return {
    bucket: BUCKET,
    prefix: `run-${process.pid}-${seq++}/`,
    endpoint: rgw.endpoint,
    region: rgw.region,
    credentials: { accessKeyId: rgw.accessKeyId, secretAccessKey: rgw.secretAccessKey },
    random: () => 0.5,
    ...extra,
  };
}

async function expectCode(p: Promise<unknown>, code: ObjStoreErrorCode): Promise<ObjStoreError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, `expected '${code}'`).toBeInstanceOf(ObjStoreError);
  expect((err as ObjStoreError).code, (err as Error).message).toBe(code);
  return err as ObjStoreError;
}

runObjStoreConformance(
  's3 (Ceph RGW)',
  async () => {
    const store = await S3Store.open(storeOpts());
    return { store, cleanup: () => store.close() };
  },
  // RGW 16 ignores If-None-Match on CopyObject: the store refuses create-only copies there (below).
  { scale: { listKeys: 1500, deleteKeys: 1000, overwriteBytes: 4 * MiB, overwriteRounds: 4, putConcurrency: 32 }, copyIfNoneMatch: false },
);

type Fault = 'pass' | 'slowdown' | 'reset' | 'forward-then-reset' | 'hang' | 'flip-body-byte';

/** HTTP proxy in front of RGW that injects the next faults of its queue, one per request. */
class FaultProxy {
  readonly faults: Fault[] = [];
  requests = 0;
  connections = 0;
  inFlight = 0;
  maxInFlight = 0;
  private readonly server: http.Server;
  private readonly sockets = new Set<Socket>();
  private readonly upstream = new http.Agent({ keepAlive: true, maxSockets: 128 });
  private readonly target: URL;

  constructor(target: string) {
    this.target = new URL(target);
    this.server = http.createServer((req, res) => this.handle(req, res));
    this.server.on('connection', (s: Socket) => {
      this.connections++;
      s.setNoDelay(true);
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
  }

  async listen(): Promise<string> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    this.upstream.destroy();
    await new Promise((r) => this.server.close(r));
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    this.requests++;
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    res.on('close', () => this.inFlight--);
    const fault = this.faults.shift();
    if (fault === 'slowdown') {
      req.resume();
      req.on('end', () => {
        res.writeHead(503, { 'content-type': 'application/xml' });
        res.end('<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code><Message>reduce your rate</Message></Error>');
      });
      return;
    }
    if (fault === 'reset') {
      req.socket.destroy();
      return;
    }
    if (fault === 'hang') {
      req.resume(); // read the body, never answer
      return;
    }
    const up = http.request(
      { host: this.target.hostname, port: this.target.port, method: req.method, path: req.url, headers: req.headers, agent: this.upstream },
      (ur) => {
        if (fault === 'forward-then-reset') {
          // The service did the work; the client never hears of it.
          ur.resume();
          ur.on('end', () => req.socket.destroy());
          return;
        }
        res.writeHead(ur.statusCode ?? 502, ur.headers);
        ur.pipe(res);
      },
    );
    up.on('error', () => req.socket.destroy());
    if (fault === 'flip-body-byte') {
      // Damage the body on the wire (same length): the signed payload hash must catch it.
      let first = true;
      req.on('data', (c: Buffer) => {
        if (first && c.length > 0) {
          c[0] = c[0]! ^ 0xff;
          first = false;
        }
        up.write(c);
      });
      req.on('end', () => up.end());
      return;
    }
    req.pipe(up);
  }
}

describe('S3Store on Ceph RGW', () => {
  it('keys are stored under the store prefix and listed without it; prefixes are isolated', async () => {
    const a = await S3Store.open(storeOpts());
    const b = await S3Store.open(storeOpts());
    await a.put('x/1', Buffer.from('a1'));
    await b.put('x/1', Buffer.from('b1'));
    expect((await a.list('x/')).objects.map((o) => o.key)).toEqual(['x/1']);
    expect((await a.get('x/1')).toString()).toBe('a1');
    expect((await b.get('x/1')).toString()).toBe('b1');
    const raw = await S3Store.open(storeOpts({ prefix: '' }));
    const all = (await raw.list(a.prefix)).objects.map((o) => o.key);
    expect(all).toEqual([`${a.prefix}x/1`]);
    await Promise.all([a.close(), b.close(), raw.close()]);
  });

  it('a wrong secret is denied, without retries; a missing bucket is invalid', async () => {
    const s = await S3Store.open(storeOpts({ credentials: { accessKeyId: rgw.accessKeyId, secretAccessKey: 'wrong-secret-wrong-secret' } }));
    await expectCode(s.get('k'), 'denied');
    await expectCode(s.put('k', Buffer.from('v')), 'denied');
    await expectCode(s.list(''), 'denied');
    expect(s.stats().retries).toBe(0);
    const nb = await S3Store.open(storeOpts({ bucket: 'no-such-bucket-here' }));
    await expectCode(nb.get('k'), 'invalid');
    await expectCode(nb.put('k', Buffer.from('v')), 'invalid');
    await Promise.all([s.close(), nb.close()]);
  });

  it("without credentials in the options, the SDK's default chain is used (environment here)", async () => {
    const saved = { id: process.env.AWS_ACCESS_KEY_ID, secret: process.env.AWS_SECRET_ACCESS_KEY };
    process.env.AWS_ACCESS_KEY_ID = rgw.accessKeyId;
    process.env.AWS_SECRET_ACCESS_KEY = rgw.secretAccessKey;
    try {
      const s = await S3Store.open({ bucket: BUCKET, prefix: `env-${seq++}/`, endpoint: rgw.endpoint });
      await s.put('k', Buffer.from('from env'));
      expect((await s.get('k')).toString()).toBe('from env');
      await s.close();
    } finally {
      for (const [k, v] of [['AWS_ACCESS_KEY_ID', saved.id], ['AWS_SECRET_ACCESS_KEY', saved.secret]] as const) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    }
  });

  it('bad options are refused at open', async () => {
    await expectCode(S3Store.open(storeOpts({ bucket: 'Bad_Bucket' })), 'invalid');
    await expectCode(S3Store.open(storeOpts({ prefix: 'no-slash' })), 'invalid');
    await expectCode(S3Store.open(storeOpts({ prefix: '/abs/' })), 'invalid');
    await expectCode(S3Store.open(storeOpts({ endpoint: 'ftp://x' })), 'invalid');
    await expectCode(S3Store.open(storeOpts({ tuning: { attemptMs: 10 ** 9 } })), 'invalid');
  });

  it("Ceph RGW ignores If-None-Match on CopyObject: 'native' would overwrite, so the default with an endpoint refuses", async () => {
    const native = await S3Store.open(storeOpts({ conditionalCopy: 'native' }));
    await native.put('s', Buffer.from('source'));
    await native.put('t', Buffer.from('target'));
    await native.copy('s', 't', { ifNoneMatch: '*' }); // RGW 16.2: accepted, target replaced
    expect((await native.get('t')).toString()).toBe('source');
    const dflt = await S3Store.open(storeOpts());
    await expectCode(dflt.copy('x', 'y', { ifNoneMatch: '*' }), 'invalid');
    expect(dflt.stats().attempts).toBe(0);
    // A plain copy goes through CopyObject with the source pinned by x-amz-copy-source-if-match.
    await dflt.put('a/b c+d', Buffer.from('odd key'));
    expect(await dflt.copy('a/b c+d', 'z/%20')).toEqual(await dflt.head('z/%20'));
    expect((await dflt.get('z/%20')).toString()).toBe('odd key');
    await Promise.all([native.close(), dflt.close()]);
  });

  it('a 64 MiB gathered put (64 parts, not joined) round trips; md5 and ETag agree', async () => {
    const s = await S3Store.open(storeOpts());
    const parts = Array.from({ length: 64 }, () => randomBytes(MiB));
    const md5 = createHash('md5');
    for (const p of parts) md5.update(p);
    const want = md5.digest('hex');
    let t = performance.now();
    const info = await s.put('big', parts);
    const putMs = performance.now() - t;
    expect(info.size).toBe(64 * MiB);
    expect(info.etag.replace(/"/g, '')).toBe(want); // RGW's single-part ETag is the body's md5
    t = performance.now();
    const got = await s.get('big');
    const getMs = performance.now() - t;
    expect(got.length).toBe(64 * MiB);
    expect(createHash('md5').update(got).digest('hex')).toBe(want);
    // Same object as one buffer, for comparison (the SDK sends a single Buffer directly).
    const one = Buffer.concat(parts);
    t = performance.now();
    await s.put('big1', one);
    const put1Ms = performance.now() - t;
    console.log(
      `[s3] 64 MiB: gathered put ${putMs.toFixed(0)} ms (${(64 / (putMs / 1000)).toFixed(0)} MiB/s), ` +
        `one-buffer put ${put1Ms.toFixed(0)} ms, get ${getMs.toFixed(0)} ms (${(64 / (getMs / 1000)).toFixed(0)} MiB/s)`,
    );
    await s.deleteMany(['big', 'big1']);
    await s.close();
  });

  it('one connection is reused for sequential requests; requests in flight stay within the bound', async () => {
    const proxy = new FaultProxy(rgw.endpoint);
    const endpoint = await proxy.listen();
    try {
      const s = await S3Store.open(storeOpts({ endpoint, tuning: { concurrency: 3 } }));
      await s.put('r', Buffer.from('reuse'));
      for (let i = 0; i < 20; i++) expect((await s.get('r')).toString()).toBe('reuse');
      expect(proxy.connections).toBe(1);
      await Promise.all(Array.from({ length: 30 }, () => s.get('r')));
      expect(proxy.maxInFlight).toBe(3);
      expect(proxy.connections).toBe(3);
      await s.close();
    } finally {
      await proxy.close();
    }
  });

  describe('retries and ambiguity (fault proxy)', () => {
    let proxy: FaultProxy;
    let endpoint: string;
    beforeAll(async () => {
      proxy = new FaultProxy(rgw.endpoint);
      endpoint = await proxy.listen();
    });
    afterAll(async () => {
      await proxy.close();
    });

    it('throttling (503 SlowDown) and resets are retried and counted', async () => {
      const s = await S3Store.open(storeOpts({ endpoint, tuning: { retryBaseMs: 10 } }));
      proxy.faults.push('slowdown', 'slowdown');
      await s.put('k', Buffer.from('v'));
      expect(s.stats()).toMatchObject({ retries: 2, attempts: 3, failures: 0 });
      proxy.faults.push('reset');
      expect((await s.get('k')).toString()).toBe('v');
      expect(s.stats()).toMatchObject({ retries: 3, attempts: 5, failures: 0 });
      // Throttled every time: gives up after retriesMax retries with 'unavailable' (it did not happen).
      proxy.faults.push(...Array<Fault>(10).fill('slowdown'));
      await expectCode(s.put('k2', Buffer.from('v')), 'unavailable');
      expect(s.stats()).toMatchObject({ retries: 8, attempts: 11, failures: 1, ambiguous: 0 });
      proxy.faults.length = 0;
      expect(await s.head('k2')).toBeUndefined();
      await s.close();
    });

    it('a body damaged on the wire is refused by the service (signed SHA-256) and sent again', async () => {
      const s = await S3Store.open(storeOpts({ endpoint }));
      const body = randomBytes(200_000);
      proxy.faults.push('flip-body-byte');
      await s.put('sum', [body.subarray(0, 1000), body.subarray(1000)]);
      expect((await s.get('sum')).equals(body)).toBe(true);
      expect(s.stats().retries).toBe(1);
      // Without payload signing the damage goes through unnoticed: that is why signing is the default.
      const u = await S3Store.open(storeOpts({ endpoint, payloadSigning: false }));
      proxy.faults.push('flip-body-byte');
      await u.put('nosum', body);
      expect((await u.get('nosum')).equals(body)).toBe(false);
      expect(u.stats().retries).toBe(0);
      await Promise.all([s.close(), u.close()]);
    });

    it('a write whose answer was lost: a plain put or delete retries to success; a create-only put is ambiguous', async () => {
      const s = await S3Store.open(storeOpts({ endpoint }));
      proxy.faults.push('forward-then-reset');
      const info = await s.put('p', Buffer.from('plain'));
      expect(await s.head('p')).toEqual(info);
      expect(s.stats().retries).toBe(1);

      // The create-only put succeeded on its first attempt; the retry sees 412 from its own write.
      proxy.faults.push('forward-then-reset');
      await expectCode(s.put('c', Buffer.from('created'), { ifNoneMatch: '*' }), 'ambiguous');
      expect((await s.get('c')).toString()).toBe('created');
      // Same for ifMatch and for a create-only copy.
      const etag = (await s.head('c'))!.etag;
      proxy.faults.push('forward-then-reset');
      await expectCode(s.put('c', Buffer.from('second'), { ifMatch: etag }), 'ambiguous');
      expect((await s.get('c')).toString()).toBe('second');
      expect(s.stats().ambiguous).toBe(2);

      await s.put('d1', Buffer.from('1'));
      proxy.faults.push('forward-then-reset');
      const r = await s.deleteMany(['d1', 'd-missing']);
      expect(r).toEqual({ deleted: ['d1', 'd-missing'], errors: [] });
      expect(await s.head('d1')).toBeUndefined();
      await s.close();
    });

    it('no answer: attempts time out; a read gives unavailable, a write ambiguous, both within the deadline', async () => {
      const s = await S3Store.open(storeOpts({ endpoint, tuning: { attemptMs: 150, deadlineMs: 800, retryBaseMs: 20 } }));
      await s.put('h', Buffer.from('x'));
      proxy.faults.push('hang');
      expect((await s.get('h')).toString()).toBe('x'); // one attempt lost, the next one answers
      expect(s.stats().timeouts).toBe(1);
      proxy.faults.push(...Array<Fault>(20).fill('hang'));
      let t = performance.now();
      await expectCode(s.get('h'), 'unavailable');
      let ms = performance.now() - t;
      expect(ms).toBeLessThan(800 + 300);
      t = performance.now();
      proxy.faults.length = 0;
      proxy.faults.push(...Array<Fault>(20).fill('hang'));
      await expectCode(s.put('h2', Buffer.from('y')), 'ambiguous');
      ms = performance.now() - t;
      expect(ms).toBeLessThan(800 + 300);
      proxy.faults.length = 0;
      expect(s.stats().timeouts).toBeGreaterThanOrEqual(7); // 1 + at least 3 per failed operation
      await s.close();
    });
  });

  it('radosgw killed: unavailable within the deadline, counted retries; works again after restart', async () => {
    const s = await S3Store.open(storeOpts({ tuning: { deadlineMs: 10_000 } }));
    await s.put('alive', Buffer.from('before'));
    await rgw.killGateway();
    try {
      const before = s.stats();
      const t = performance.now();
      await expectCode(s.get('alive'), 'unavailable');
      // Refused connections: the request never left, so a write is 'unavailable', not 'ambiguous'.
      await expectCode(s.put('while-down', Buffer.from('x')), 'unavailable');
      const ms = performance.now() - t;
      expect(ms).toBeLessThan(2 * 10_000);
      const after = s.stats();
      expect(after.retries - before.retries).toBe(2 * 5);
      expect(after.failures - before.failures).toBe(2);
      console.log(`[s3] gateway down: two operations failed 'unavailable' after ${after.retries - before.retries} retries in ${ms.toFixed(0)} ms`);
    } finally {
      await rgw.restart();
    }
    expect((await s.get('alive')).toString()).toBe('before');
    await s.put('after', Buffer.from('restart'));
    expect((await s.get('after')).toString()).toBe('restart');
    await s.close();
  });

  it('throughput with 16 in flight (printed for the record)', async () => {
    const s = await S3Store.open(storeOpts());
    const run = async (label: string, size: number, count: number): Promise<void> => {
      const body = randomBytes(size);
      const keys = Array.from({ length: count }, (_, i) => `tp/${label}/${i}`);
      const pool = async (fn: (k: string) => Promise<unknown>): Promise<number> => {
        let next = 0;
        const t = performance.now();
        await Promise.all(
          Array.from({ length: 16 }, async () => {
            while (next < keys.length) await fn(keys[next++]!);
          }),
        );
        return performance.now() - t;
      };
      const putMs = await pool((k) => s.put(k, body));
      const getMs = await pool(async (k) => expect((await s.get(k)).length).toBe(size));
      const mib = (size * count) / MiB;
      console.log(
        `[s3] ${label} x${count}, 16 in flight: put ${((count * 1000) / putMs).toFixed(0)} ops/s ${(mib / (putMs / 1000)).toFixed(1)} MiB/s; ` +
          `get ${((count * 1000) / getMs).toFixed(0)} ops/s ${(mib / (getMs / 1000)).toFixed(1)} MiB/s`,
      );
      await s.deleteMany(keys);
    };
    await run('64KiB', 64 * KiB, 256);
    await run('4MiB', 4 * MiB, 32);
    await s.close();
  });
});
