// Conformance suite for the object store SPI (src/objstore/spi.ts). Every adapter runs it:
//   runObjStoreConformance('local', async () => ({ store, cleanup }), { scale: { listKeys: 300 } })
// `make` is called once per test (and once for the shared listing fixture). The suite writes only
// under a fresh key prefix per test, so a store shared between tests (one S3 bucket) works; `cleanup`
// runs after the test, possibly after the suite closed the store, so it must not need the store.
// `scale` shrinks the bulk tests for stores where each operation costs milliseconds (S3 over HTTP).

import { randomBytes } from 'node:crypto';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { limits, MiB } from '../../src/base/limits.js';
import { keyProblem, ObjStoreError, type ObjectInfo, type ObjectStore, type ObjStoreErrorCode } from '../../src/objstore/spi.js';

export interface ObjStoreUnderTest {
  store: ObjectStore;
  cleanup(): Promise<void>;
}

export interface ConformanceScale {
  /** Keys of the listing fixture (depth 1-3); paging is checked with pages of 1000 and 333. Default 2500. */
  listKeys?: number;
  /** Keys of the bulk deleteMany test (at most deleteBatchMax). Default 1000. */
  deleteKeys?: number;
  /** Concurrent create-only puts of one key. Default 16. */
  creators?: number;
  /** Object size of the overwrite-atomicity test, and how many overwrites it makes. Default 4 MiB, 6. */
  overwriteBytes?: number;
  overwriteRounds?: number;
  /** Puts in flight while filling fixtures. Default 32. */
  putConcurrency?: number;
}

export interface ConformanceOptions {
  scale?: ConformanceScale;
  /**
   * false: the store refuses copy(..., { ifNoneMatch: '*' }) with 'invalid' (and changes nothing)
   * because its service cannot make a create-only copy atomic (S3Store on Ceph RGW 16). Default true.
   */
  copyIfNoneMatch?: boolean;
}

let prefixSeq = 0;
/** A key prefix no other test (or earlier run against a shared bucket) uses. */
function freshPrefix(): string {
  return `ct-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}-${prefixSeq++}/`;
}

const b = (s: string): Buffer => Buffer.from(s, 'latin1');
const cmp = (x: string, y: string): number => (x < y ? -1 : x > y ? 1 : 0);

/** Runs `fn` and expects an ObjStoreError with `code` (a synchronous throw counts too). */
async function expectCode(fn: () => Promise<unknown>, code: ObjStoreErrorCode, what = ''): Promise<ObjStoreError> {
  let err: unknown;
  try {
    await fn();
  } catch (e) {
    err = e;
  }
  expect(err, `${what}: expected ObjStoreError '${code}'`).toBeInstanceOf(ObjStoreError);
  expect((err as ObjStoreError).code, `${what}: ${(err as Error).message}`).toBe(code);
  return err as ObjStoreError;
}

/** Runs `fn` over items with at most `width` in flight. */
async function pool<T>(items: readonly T[], width: number, fn: (x: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(width, items.length) }, async () => {
      while (next < items.length) await fn(items[next++]!);
    }),
  );
}

/** Every page of a listing, following `next`. */
async function listAll(s: ObjectStore, prefix: string, limit?: number): Promise<{ objects: ObjectInfo[]; pages: number }> {
  const objects: ObjectInfo[] = [];
  let after: string | undefined;
  let pages = 0;
  for (;;) {
    const page = await s.list(prefix, { after, limit });
    pages++;
    expect(page.objects.length).toBeLessThanOrEqual(limit ?? limits.objstoreListPageMax);
    objects.push(...page.objects);
    if (page.next === undefined) return { objects, pages };
    expect(page.next > (after ?? '')).toBe(true);
    after = page.next;
  }
}

/** Keys that break the contract (spi.ts): each method must reject them with 'invalid' before I/O. */
const BAD_KEYS: readonly unknown[] = [
  '',
  '/a',
  'a/',
  'a//b',
  './a',
  'a/./b',
  '../a',
  'a/../b',
  'a/..',
  '.',
  '..',
  'a\\b',
  'a\u00e9b',
  'a\u0000b',
  'a\nb',
  'a\u007fb',
  'x'.repeat(limits.objstoreKeyBytesMax + 1),
  undefined,
  42,
];

export function runObjStoreConformance(name: string, make: () => Promise<ObjStoreUnderTest>, options: ConformanceOptions = {}): void {
  const scale = {
    listKeys: 2500,
    deleteKeys: 1000,
    creators: 16,
    overwriteBytes: 4 * MiB,
    overwriteRounds: 6,
    putConcurrency: 32,
    ...options.scale,
  };

  describe(`object store conformance: ${name}`, () => {
    let u: ObjStoreUnderTest;
    let s: ObjectStore;
    let P: string;
    beforeEach(async () => {
      u = await make();
      s = u.store;
      P = freshPrefix();
    });
    afterEach(async () => {
      await u.cleanup();
    });

    describe('put, get, head', () => {
      it('round trip: put returns what head reports, get returns the bytes', async () => {
        const body = randomBytes(10_000);
        const info = await s.put(`${P}a`, body);
        expect(info).toEqual({ key: `${P}a`, size: 10_000, etag: expect.any(String) });
        expect(info.etag.length).toBeGreaterThan(0);
        expect(await s.head(`${P}a`)).toEqual(info);
        expect((await s.get(`${P}a`)).equals(body)).toBe(true);
      });

      it('a gathered body (array of buffers, Uint8Arrays, empty parts) is stored as its concatenation', async () => {
        const parts = [b('hello'), new Uint8Array(0), new Uint8Array([0x20, 0x77]), b('orld'), randomBytes(70_000), b('')];
        const whole = Buffer.concat(parts);
        const info = await s.put(`${P}g`, parts);
        expect(info.size).toBe(whole.length);
        expect((await s.get(`${P}g`)).equals(whole)).toBe(true);
        expect((await s.put(`${P}g1`, [b('x')])).size).toBe(1);
        expect((await s.get(`${P}g1`)).toString()).toBe('x');
      });

      it('empty objects (empty buffer, empty array)', async () => {
        const i1 = await s.put(`${P}e1`, Buffer.alloc(0));
        const i2 = await s.put(`${P}e2`, []);
        expect(i1.size).toBe(0);
        expect(i2.size).toBe(0);
        expect(await s.head(`${P}e1`)).toEqual(i1);
        expect((await s.get(`${P}e2`)).length).toBe(0);
        expect((await s.get(`${P}e1`, { offset: 0, length: 10 })).length).toBe(0);
      });

      it('missing keys: get rejects not-found, head returns undefined', async () => {
        await expectCode(() => s.get(`${P}missing`), 'not-found', 'get');
        await expectCode(() => s.get(`${P}missing/deeper`, { offset: 0, length: 1 }), 'not-found', 'get range');
        expect(await s.head(`${P}missing`)).toBeUndefined();
        await s.put(`${P}file`, b('f'));
        expect(await s.head(`${P}file/under`)).toBeUndefined(); // a key below an object's key
        expect(await s.head(`${P}fil`)).toBeUndefined();
      });

      it('buffers are not shared: the caller may change what get returned and what it passed to put', async () => {
        const body = Buffer.from('0123456789');
        await s.put(`${P}own`, body);
        body.fill(0x78); // changing the caller's buffer after put resolved changes nothing stored
        const got = await s.get(`${P}own`);
        expect(got.toString()).toBe('0123456789');
        got.fill(0x79); // the returned buffer belongs to the caller (it may encrypt in place)
        expect((await s.get(`${P}own`)).toString()).toBe('0123456789');
        const r = await s.get(`${P}own`, { offset: 2, length: 3 });
        r.fill(0x7a);
        expect((await s.get(`${P}own`)).toString()).toBe('0123456789');
      });

      it('a put over an existing key replaces it (also with a shorter body)', async () => {
        await s.put(`${P}o`, randomBytes(5000));
        const i2 = await s.put(`${P}o`, b('short'));
        expect(i2.size).toBe(5);
        expect((await s.get(`${P}o`)).toString()).toBe('short');
        expect(await s.head(`${P}o`)).toEqual(i2);
      });

      it('etags: put and head agree; different content gives a different etag', async () => {
        const i1 = await s.put(`${P}t`, b('one'));
        const i2 = await s.put(`${P}t`, b('two'));
        expect(i2.etag).not.toBe(i1.etag);
        expect((await s.head(`${P}t`))!.etag).toBe(i2.etag);
        const i3 = await s.put(`${P}t2`, b('three'));
        expect(i3.etag).not.toBe(i2.etag);
      });

      it("a key and keys below it ('a' and 'a/b') are independent objects", async () => {
        await s.put(`${P}a/b`, b('ab'));
        await s.put(`${P}a`, b('a'));
        await s.put(`${P}a/b/c`, b('abc'));
        expect((await s.get(`${P}a`)).toString()).toBe('a');
        expect((await s.get(`${P}a/b`)).toString()).toBe('ab');
        expect((await s.get(`${P}a/b/c`)).toString()).toBe('abc');
        await s.deleteMany([`${P}a/b`]);
        expect((await s.get(`${P}a`)).toString()).toBe('a');
        expect((await s.get(`${P}a/b/c`)).toString()).toBe('abc');
        expect(await s.head(`${P}a/b`)).toBeUndefined();
      });

      it('the longest key (keyBytesMax bytes, segments of 100) round trips, lists and deletes', async () => {
        let k = P;
        while (k.length < limits.objstoreKeyBytesMax) k += k.length % 101 === 100 ? '/' : 'y';
        if (k.endsWith('/')) k = `${k.slice(0, -1)}y`;
        expect(k.length).toBe(limits.objstoreKeyBytesMax);
        expect(keyProblem(k, limits.objstoreKeyBytesMax)).toBeUndefined();
        const info = await s.put(k, b('long'));
        expect(info.key).toBe(k);
        expect((await s.get(k)).toString()).toBe('long');
        expect((await s.list(k.slice(0, 300))).objects.map((o) => o.key)).toEqual([k]);
        expect((await s.deleteMany([k])).deleted).toEqual([k]);
        expect(await s.head(k)).toBeUndefined();
      });
    });

    describe('ranges', () => {
      it('middle, start, clamped at the end, at and beyond the end, zero length', async () => {
        const body = randomBytes(100_000);
        await s.put(`${P}r`, [body.subarray(0, 30_000), body.subarray(30_000)]);
        const get = (offset: number, length: number): Promise<Buffer> => s.get(`${P}r`, { offset, length });
        expect((await get(40_000, 1000)).equals(body.subarray(40_000, 41_000))).toBe(true);
        expect((await get(0, 1)).equals(body.subarray(0, 1))).toBe(true);
        expect((await get(29_999, 2)).equals(body.subarray(29_999, 30_001))).toBe(true);
        expect((await get(99_000, 5000)).equals(body.subarray(99_000))).toBe(true);
        expect((await get(99_999, 1)).equals(body.subarray(99_999))).toBe(true);
        expect((await get(0, 100_000)).equals(body)).toBe(true);
        expect((await get(0, Number.MAX_SAFE_INTEGER)).equals(body)).toBe(true);
        expect((await get(100_000, 10)).length).toBe(0);
        expect((await get(250_000, 10)).length).toBe(0);
        expect((await get(500, 0)).length).toBe(0);
      });

      it('bad ranges are invalid', async () => {
        await s.put(`${P}r`, b('abc'));
        for (const r of [
          { offset: -1, length: 1 },
          { offset: 0, length: -1 },
          { offset: 0.5, length: 1 },
          { offset: 0, length: Number.NaN },
          { offset: 2 ** 53, length: 1 },
        ]) {
          await expectCode(() => s.get(`${P}r`, r), 'invalid', JSON.stringify(r));
        }
      });
    });

    describe('atomicity and conditional puts', () => {
      it('an overwrite is atomic: concurrent readers see the old or the new object, never a mix', async () => {
        const size = scale.overwriteBytes;
        const A = Buffer.alloc(size, 0x41);
        const B = Buffer.alloc(size, 0x42);
        const k = `${P}big`;
        await s.put(k, A);
        let writing = true;
        let reads = 0;
        const seen = new Set<string>();
        const reader = async (): Promise<void> => {
          while (writing) {
            const got = await s.get(k);
            expect(got.length).toBe(size);
            const which = got.equals(A) ? 'A' : got.equals(B) ? 'B' : 'mix';
            expect(which).not.toBe('mix');
            seen.add(which);
            // A range read of the tail and the head agree on one object as well.
            const r = await s.get(k, { offset: size - 8, length: 100 });
            expect(r.length).toBe(8);
            expect(r[0] === 0x41 || r[0] === 0x42).toBe(true);
            expect(r.every((x) => x === r[0])).toBe(true);
            reads++;
          }
        };
        const writer = async (): Promise<void> => {
          try {
            for (let i = 0; i < scale.overwriteRounds; i++) {
              // Half the rounds gather the body from many parts, as the chunked driver does.
              const src = i % 2 === 0 ? B : A;
              await s.put(k, i % 4 < 2 ? src : Array.from({ length: 64 }, (_, j) => src.subarray((j * size) / 64, ((j + 1) * size) / 64)));
            }
          } finally {
            writing = false;
          }
        };
        await Promise.all([writer(), reader(), reader()]);
        expect(reads).toBeGreaterThan(0);
        expect(seen.size).toBeGreaterThan(0);
      });

      it(`create-only: exactly one of ${scale.creators} concurrent creators wins`, async () => {
        const k = `${P}once`;
        const outcomes = await Promise.allSettled(
          Array.from({ length: scale.creators }, (_, i) => s.put(k, b(`creator ${i}`), { ifNoneMatch: '*' })),
        );
        const won = outcomes.flatMap((o, i) => (o.status === 'fulfilled' ? [i] : []));
        expect(won.length).toBe(1);
        for (const o of outcomes) {
          if (o.status === 'rejected') {
            expect(o.reason).toBeInstanceOf(ObjStoreError);
            expect((o.reason as ObjStoreError).code).toBe('precondition-failed');
          }
        }
        expect((await s.get(k)).toString()).toBe(`creator ${won[0]}`);
        const winner = outcomes[won[0]!] as PromiseFulfilledResult<ObjectInfo>;
        expect(await s.head(k)).toEqual(winner.value);
      });

      it('create-only on an existing key fails and changes nothing; on a free key it creates', async () => {
        const i1 = await s.put(`${P}c`, b('first'));
        await expectCode(() => s.put(`${P}c`, b('second'), { ifNoneMatch: '*' }), 'precondition-failed');
        expect((await s.get(`${P}c`)).toString()).toBe('first');
        expect(await s.head(`${P}c`)).toEqual(i1);
        const i2 = await s.put(`${P}c2`, [b('new'), b('er')], { ifNoneMatch: '*' });
        expect(i2.size).toBe(5);
        expect((await s.get(`${P}c2`)).toString()).toBe('newer');
      });

      it('ifMatch: the right etag replaces; a wrong one or an absent object fails and changes nothing', async () => {
        const i1 = await s.put(`${P}m`, b('v1'));
        const i2 = await s.put(`${P}m`, b('v2'), { ifMatch: i1.etag });
        expect((await s.get(`${P}m`)).toString()).toBe('v2');
        await expectCode(() => s.put(`${P}m`, b('v3'), { ifMatch: i1.etag }), 'precondition-failed', 'stale etag');
        await expectCode(() => s.put(`${P}m`, b('v3'), { ifMatch: 'no-such-etag' }), 'precondition-failed', 'made-up etag');
        expect((await s.get(`${P}m`)).toString()).toBe('v2');
        expect(await s.head(`${P}m`)).toEqual(i2);
        await expectCode(() => s.put(`${P}absent`, b('x'), { ifMatch: i2.etag }), 'precondition-failed', 'absent');
        expect(await s.head(`${P}absent`)).toBeUndefined();
        const i3 = await s.put(`${P}m`, b('v3'), { ifMatch: i2.etag });
        expect(await s.head(`${P}m`)).toEqual(i3);
      });
    });

    describe('copy', () => {
      it('copies content; the result is what head reports; the source stays', async () => {
        const body = randomBytes(50_000);
        const src = await s.put(`${P}src`, body);
        const info = await s.copy(`${P}src`, `${P}dst/x`);
        expect(info.key).toBe(`${P}dst/x`);
        expect(info.size).toBe(50_000);
        expect(await s.head(`${P}dst/x`)).toEqual(info);
        expect((await s.get(`${P}dst/x`)).equals(body)).toBe(true);
        expect(await s.head(`${P}src`)).toEqual(src);
        expect((await s.get(`${P}dst/x`, { offset: 49_990, length: 100 })).equals(body.subarray(49_990))).toBe(true);
        // The copy's etag works as an ifMatch condition on the copy.
        await s.put(`${P}dst/x`, b('after'), { ifMatch: info.etag });
        expect((await s.get(`${P}dst/x`)).toString()).toBe('after');
        expect((await s.get(`${P}src`)).equals(body)).toBe(true);
      });

      it('copies an empty object, and replaces an existing target', async () => {
        await s.put(`${P}empty`, []);
        await s.put(`${P}t`, b('old target'));
        const info = await s.copy(`${P}empty`, `${P}t`);
        expect(info.size).toBe(0);
        expect((await s.get(`${P}t`)).length).toBe(0);
      });

      it('ifNoneMatch on the target: fails on an existing target, unchanged; works on a free one', async () => {
        await s.put(`${P}s`, b('source'));
        await s.put(`${P}t`, b('target'));
        if (options.copyIfNoneMatch === false) {
          await expectCode(() => s.copy(`${P}s`, `${P}t`, { ifNoneMatch: '*' }), 'invalid', 'refused (existing target)');
          await expectCode(() => s.copy(`${P}s`, `${P}u`, { ifNoneMatch: '*' }), 'invalid', 'refused (free target)');
          expect((await s.get(`${P}t`)).toString()).toBe('target');
          expect(await s.head(`${P}u`)).toBeUndefined();
          return;
        }
        await expectCode(() => s.copy(`${P}s`, `${P}t`, { ifNoneMatch: '*' }), 'precondition-failed');
        expect((await s.get(`${P}t`)).toString()).toBe('target');
        await s.copy(`${P}s`, `${P}u`, { ifNoneMatch: '*' });
        expect((await s.get(`${P}u`)).toString()).toBe('source');
      });

      it('a missing source is not-found, and creates no target', async () => {
        await expectCode(() => s.copy(`${P}nothing`, `${P}t`), 'not-found');
        expect(await s.head(`${P}t`)).toBeUndefined();
      });
    });

    describe('deleteMany', () => {
      it('missing keys count as deleted; neighbours stay; deleting twice is fine', async () => {
        await s.put(`${P}d/1`, b('1'));
        await s.put(`${P}d/2`, b('2'));
        await s.put(`${P}d/10`, b('10'));
        const r = await s.deleteMany([`${P}d/1`, `${P}nope`, `${P}d/nope/deeper`]);
        expect(r.errors).toEqual([]);
        expect([...r.deleted].sort()).toEqual([`${P}d/1`, `${P}d/nope/deeper`, `${P}nope`]);
        expect(await s.head(`${P}d/1`)).toBeUndefined();
        expect((await s.get(`${P}d/2`)).toString()).toBe('2');
        expect((await s.get(`${P}d/10`)).toString()).toBe('10');
        expect((await s.deleteMany([`${P}d/1`, `${P}d/1`])).errors).toEqual([]);
        expect((await s.deleteMany([])).deleted).toEqual([]);
        await s.deleteMany([`${P}d/2`, `${P}d/10`]);
        expect((await s.list(P)).objects).toEqual([]);
        // The key space is usable again after its last object went.
        await s.put(`${P}d/3`, b('3'));
        expect((await s.list(P)).objects.map((o) => o.key)).toEqual([`${P}d/3`]);
      });

      it(`deletes ${scale.deleteKeys} keys in one call`, async () => {
        const keys = Array.from({ length: scale.deleteKeys }, (_, i) => `${P}many/${i % 10}/k${i}`);
        await pool(keys, scale.putConcurrency, async (k) => {
          await s.put(k, b(k));
        });
        expect((await listAll(s, P)).objects.length).toBe(keys.length);
        const r = await s.deleteMany(keys);
        expect(r.errors).toEqual([]);
        expect(r.deleted.length).toBe(keys.length);
        expect((await s.list(P)).objects).toEqual([]);
        expect(await s.head(keys[0]!)).toBeUndefined();
      });

      it('more than deleteBatchMax keys is invalid, and deletes nothing', async () => {
        await s.put(`${P}keep`, b('k'));
        const keys = [`${P}keep`, ...Array.from({ length: limits.objstoreDeleteBatchMax }, (_, i) => `${P}x${i}`)];
        await expectCode(() => s.deleteMany(keys), 'invalid');
        expect(await s.head(`${P}keep`)).toBeDefined();
      });
    });

    describe('bad input', () => {
      it('bad keys are invalid for every method, before any I/O', async () => {
        const good = `${P}good`;
        await s.put(good, b('g'));
        for (const bad of BAD_KEYS) {
          const k = bad as string;
          const what = JSON.stringify(bad)?.slice(0, 40) ?? String(bad);
          await expectCode(() => s.get(k), 'invalid', `get ${what}`);
          await expectCode(() => s.get(k, { offset: 0, length: 1 }), 'invalid', `get range ${what}`);
          await expectCode(() => s.head(k), 'invalid', `head ${what}`);
          await expectCode(() => s.put(k, b('x')), 'invalid', `put ${what}`);
          await expectCode(() => s.put(k, b('x'), { ifNoneMatch: '*' }), 'invalid', `put create-only ${what}`);
          await expectCode(() => s.deleteMany([good, k]), 'invalid', `deleteMany ${what}`);
          await expectCode(() => s.copy(k, good), 'invalid', `copy from ${what}`);
          await expectCode(() => s.copy(good, k), 'invalid', `copy to ${what}`);
        }
        // deleteMany rejected the whole batch: the good key is still there.
        expect((await s.get(good)).toString()).toBe('g');
      });

      it('bad list arguments are invalid', async () => {
        for (const prefix of ['a\\b', 'caf\u00e9', 'x'.repeat(limits.objstoreKeyBytesMax + 1)]) {
          await expectCode(() => s.list(prefix), 'invalid', `prefix ${prefix.slice(0, 20)}`);
        }
        await expectCode(() => s.list(P, { after: 'a\\b' }), 'invalid', 'after');
        for (const limit of [0, -1, 1.5, limits.objstoreListPageMax + 1]) {
          await expectCode(() => s.list(P, { limit }), 'invalid', `limit ${limit}`);
        }
      });

      it('a body above objectBytesMax is too-large, and nothing is written', async () => {
        const mib = Buffer.alloc(MiB);
        const parts = [...Array.from({ length: limits.objstoreObjectBytesMax / MiB }, () => mib), Buffer.alloc(1)];
        await expectCode(() => s.put(`${P}huge`, parts), 'too-large');
        await expectCode(() => s.put(`${P}huge`, parts, { ifNoneMatch: '*' }), 'too-large');
        expect(await s.head(`${P}huge`)).toBeUndefined();
      });
    });

    it('close: every method then rejects closed; close is idempotent', async () => {
      await s.put(`${P}k`, b('k'));
      await s.close();
      await s.close();
      await expectCode(() => s.get(`${P}k`), 'closed', 'get');
      await expectCode(() => s.head(`${P}k`), 'closed', 'head');
      await expectCode(() => s.put(`${P}k`, b('x')), 'closed', 'put');
      await expectCode(() => s.deleteMany([`${P}k`]), 'closed', 'deleteMany');
      await expectCode(() => s.list(P), 'closed', 'list');
      await expectCode(() => s.copy(`${P}k`, `${P}k2`), 'closed', 'copy');
    });
  });

  describe(`object store conformance: ${name}: list`, () => {
    let u: ObjStoreUnderTest;
    let s: ObjectStore;
    const P = freshPrefix();
    let expected: string[];
    const bodyOf = (k: string): Buffer => b(`body of ${k}`);

    beforeAll(async () => {
      u = await make();
      s = u.store;
      // Depth 1-3 below P, with neighbours of '/' in byte order ('-' 0x2d, '.' 0x2e, '/' 0x2f,
      // '0' 0x30) and names that are both an object and a "directory" ('d0' and 'd0/...').
      const keys = new Set<string>();
      for (let i = 0; i < scale.listKeys; i++) {
        const n = String(i).padStart(5, '0');
        const depth = 1 + (i % 3);
        keys.add(depth === 1 ? `${P}k${n}` : depth === 2 ? `${P}d${i % 5}/k${n}` : `${P}d${i % 5}/e${i % 7}/k${n}`);
      }
      for (const k of ['d0', 'd0-z', 'd0.z', 'd00', 'd1/e1', 'd1/e1-', 'd1/e1/x', 'd1/e10', 'x', 'x/1', 'x/1/2', 'x-1', 'x0', '~']) {
        keys.add(`${P}${k}`);
      }
      expected = [...keys].sort(cmp);
      await pool(expected, scale.putConcurrency, async (k) => {
        await s.put(k, bodyOf(k));
      });
    });
    afterAll(async () => {
      await u.cleanup();
    });

    it('every key in bytewise order, with size and etag, in pages of listPageMax and of 333', async () => {
      const all = await listAll(s, P);
      expect(all.objects.map((o) => o.key)).toEqual(expected);
      expect(all.pages).toBe(Math.ceil(expected.length / limits.objstoreListPageMax));
      for (const o of all.objects) expect(o.size).toBe(bodyOf(o.key).length);
      for (const k of [expected[0]!, expected[expected.length - 1]!, `${P}x/1`]) {
        expect(all.objects.find((o) => o.key === k)).toEqual(await s.head(k));
      }
      const small = await listAll(s, P, 333);
      expect(small.objects).toEqual(all.objects);
      expect(small.pages).toBe(Math.ceil(expected.length / 333));
    });

    it('prefixes: whole segments, partial segments, a key itself, nothing', async () => {
      const want = (p: string): string[] => expected.filter((k) => k.startsWith(p));
      for (const p of [`${P}d0`, `${P}d0/`, `${P}d1/e1`, `${P}d1/e1/`, `${P}d2/e`, `${P}x`, `${P}x/1`, `${P}k0001`, `${P}~`]) {
        expect((await listAll(s, p, 100)).objects.map((o) => o.key), p).toEqual(want(p));
      }
      expect(want(`${P}d0`).length).toBeGreaterThan(0);
      for (const p of [`${P}zz`, `${P}d9/`, `${P}x/1/2/3`, `${P}nothing/at/all/`]) {
        expect(await s.list(p), p).toEqual({ objects: [] });
      }
    });

    it('after is exclusive and may be any string; limit bounds a page', async () => {
      const mid = expected[Math.floor(expected.length / 2)]!;
      const page = await s.list(P, { after: mid, limit: 10 });
      expect(page.objects.map((o) => o.key)).toEqual(expected.filter((k) => k > mid).slice(0, 10));
      expect(page.next).toBe(page.objects[9]!.key);
      for (const after of [`${P}d0/`, `${P}d0/e3`, `${P}d1/e1-`, `${P}x/`, `${P}d`, P, '', `${P}~`, `${P}\u007e\u007e`]) {
        const p = await s.list(P, { after, limit: 7 });
        expect(p.objects.map((o) => o.key), after).toEqual(expected.filter((k) => k > after).slice(0, 7));
      }
      // After the last key: an empty last page. The exact last page has no next.
      const last = expected[expected.length - 1]!;
      expect(await s.list(P, { after: last })).toEqual({ objects: [] });
      const tail = await s.list(P, { after: expected[expected.length - 4]!, limit: 3 });
      expect(tail.objects.map((o) => o.key)).toEqual(expected.slice(-3));
      expect(tail.next).toBeUndefined();
      // A page of one.
      const one = await s.list(`${P}x`, { limit: 1 });
      expect(one.objects.map((o) => o.key)).toEqual([`${P}x`]);
      expect(one.next).toBe(`${P}x`);
    });
  });
}
