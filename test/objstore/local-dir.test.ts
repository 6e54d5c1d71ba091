import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { lstat, mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { limits } from '../../src/base/limits.js';
import { LocalDirStore, type LocalDirOptions } from '../../src/objstore/local-dir.js';
import { ObjStoreError, type ObjStoreErrorCode } from '../../src/objstore/spi.js';
import { runObjStoreConformance } from './conformance.js';

const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = join(here, '..', '..');

function tempDir(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'tessera-objstore-'));
}

runObjStoreConformance('local', async () => {
  const dir = await tempDir();
  const store = await LocalDirStore.open(dir);
  return { store, cleanup: () => rm(dir, { recursive: true, force: true }) };
});

// The same contract with the path check that does not use /proc (other systems), on a smaller scale.
runObjStoreConformance(
  'local (lstat path check)',
  async () => {
    const dir = await tempDir();
    const store = await LocalDirStore.open(dir, { pathCheck: 'lstat' });
    return { store, cleanup: () => rm(dir, { recursive: true, force: true }) };
  },
  { scale: { listKeys: 400, deleteKeys: 200, overwriteBytes: 1 << 20, overwriteRounds: 4 } },
);

async function withStore(body: (s: LocalDirStore, dir: string) => Promise<void>, opts?: LocalDirOptions): Promise<void> {
  const dir = await tempDir();
  const s = await LocalDirStore.open(dir, opts);
  try {
    await body(s, dir);
  } finally {
    await s.close();
    await rm(dir, { recursive: true, force: true });
  }
}

async function expectCode(fn: () => Promise<unknown>, code: ObjStoreErrorCode, what = ''): Promise<void> {
  const err = await fn().then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, `${what}: expected '${code}'`).toBeInstanceOf(ObjStoreError);
  expect((err as ObjStoreError).code, `${what}: ${(err as Error).message}`).toBe(code);
}

/** Same as the child's: ~40 KiB derived from the key. */
function killBody(key: string): Buffer {
  return Buffer.from(`${key};`.repeat(Math.ceil(40_000 / (key.length + 1))));
}

const md5 = (b: Buffer): string => createHash('md5').update(b).digest('hex');

describe('LocalDirStore', () => {
  it('layout: keys are files under objects/, directories carry a backslash, the trailer holds the etag', async () => {
    await withStore(async (s, dir) => {
      const i1 = await s.put('a', Buffer.from('top'));
      const i2 = await s.put('a/b/c', [Buffer.from('dee'), Buffer.from('per')]);
      const f1 = await readFile(join(dir, 'objects', 'a'));
      const f2 = await readFile(join(dir, 'objects', 'a\\', 'b\\', 'c'));
      // The object's bytes come first (the file can be read as is), then a 32-byte trailer.
      expect(f1.length).toBe(3 + 32);
      expect(f1.subarray(0, 3).toString()).toBe('top');
      expect(f2.subarray(0, 6).toString()).toBe('deeper');
      expect(f2.subarray(-8).toString('latin1')).toBe('TSOBJv1\n');
      // The etag is the trailer's random 128-bit tag, in hex: opaque, new at every put (the same
      // bytes put again get another one); head agrees with put.
      expect(i1.etag).toMatch(/^[0-9a-f]{32}$/);
      expect(f1.subarray(3, 3 + 16).toString('hex')).toBe(i1.etag);
      expect(f2.subarray(6, 6 + 16).toString('hex')).toBe(i2.etag);
      expect((await s.head('a'))?.etag).toBe(i1.etag);
      const again = await s.put('a', Buffer.from('top'));
      expect(again.etag).not.toBe(i1.etag);
      expect(f1.subarray(3, 3 + 16).toString('hex')).not.toBe(md5(Buffer.from('top')));
      expect((await readdir(join(dir, 'tmp'))).length).toBe(0);
    });
  });

  it('objects survive close and reopen; deleting the last object removes its empty directories', async () => {
    const dir = await tempDir();
    try {
      const s1 = await LocalDirStore.open(dir);
      const info = await s1.put('p/q/r', Buffer.from('kept'));
      await s1.put('p/other', Buffer.from('x'));
      await s1.close();
      const s2 = await LocalDirStore.open(dir);
      expect(await s2.head('p/q/r')).toEqual(info);
      expect((await s2.get('p/q/r')).toString()).toBe('kept');
      await s2.deleteMany(['p/q/r']);
      expect(await readdir(join(dir, 'objects', 'p\\'))).toEqual(['other']);
      await s2.deleteMany(['p/other']);
      expect(await readdir(join(dir, 'objects'))).toEqual([]);
      await s2.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('a put resolved before a SIGKILL of its process survives it; reopening leaves no stale temp', async () => {
    const dir = await tempDir();
    try {
      const killAfter = 150;
      const child = spawn(process.execPath, ['--import', 'tsx', join(here, 'local-kill-child.ts'), dir, String(killAfter)], {
        cwd: repoRoot,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      let err = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr.on('data', (d: Buffer) => (err += d.toString()));
      const signal = await new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_c, sig) => resolve(sig)));
      expect(signal, err).toBe('SIGKILL');
      const acked = out
        .trim()
        .split('\n')
        .map((l) => l.split(' ') as [string, string]);
      expect(acked.length).toBe(killAfter);

      // Temp files: whatever the killed writers left, plus planted ones covering each rule.
      const tmp = join(dir, 'tmp');
      const leftByKill = (await readdir(tmp)).length;
      await writeFile(join(tmp, `${child.pid}.1.999999`), 'dead writer');
      await writeFile(join(tmp, `${process.pid}.1.5`), 'earlier process with our pid');
      await writeFile(join(tmp, 'stray'), 'not a temp name');
      await writeFile(join(tmp, '1.1.1'), 'live process (pid 1), recent: kept');
      await writeFile(join(tmp, '1.1.2'), 'live process (pid 1), hours old: removed');
      const old = (Date.now() - 2 * limits.objstoreLocalTempStaleMs) / 1000;
      await utimes(join(tmp, '1.1.2'), old, old);

      const s = await LocalDirStore.open(dir);
      expect(await readdir(tmp), `${leftByKill} temps left by the kill`).toEqual(['1.1.1']);
      for (const [key, etag] of acked) {
        expect(await s.head(key), key).toEqual({ key, size: killBody(key).length, etag });
        expect((await s.get(key)).equals(killBody(key)), key).toBe(true);
      }
      // No object is partial: every object present (acked or not) has all its bytes.
      let after: string | undefined;
      let seen = 0;
      do {
        const page = await s.list('kill/', { after });
        for (const o of page.objects) {
          expect((await s.get(o.key)).equals(killBody(o.key)), o.key).toBe(true);
          seen++;
        }
        after = page.next;
      } while (after !== undefined);
      expect(seen).toBeGreaterThanOrEqual(killAfter);
      await s.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  for (const pathCheck of ['auto', 'lstat'] as const) {
    it(`symbolic links planted in the store are refused, never followed out (${pathCheck})`, async () => {
      const outside = await tempDir();
      try {
        await withStore(
          async (s, dir) => {
            // A valid object file outside the store, so following a link would succeed.
            const src = await tempDir();
            const donor = await LocalDirStore.open(src);
            await donor.put('x', Buffer.from('secret'));
            await donor.close();
            await writeFile(join(outside, 'x'), await readFile(join(src, 'objects', 'x')));
            await rm(src, { recursive: true, force: true });

            const objects = join(dir, 'objects');
            await symlink(join(outside, 'x'), join(objects, 'evil')); // an object file that is a link
            await symlink(outside, join(objects, 'd\\')); // a directory that is a link
            await s.put('ok', Buffer.from('fine'));

            await expectCode(() => s.get('evil'), 'denied', 'get file link');
            await expectCode(() => s.head('evil'), 'denied', 'head file link');
            await expectCode(() => s.copy('evil', 'stolen'), 'denied', 'copy from file link');
            await expectCode(() => s.get('d/x'), 'denied', 'get through dir link');
            await expectCode(() => s.head('d/x'), 'denied', 'head through dir link');
            await expectCode(() => s.copy('d/x', 'stolen'), 'denied', 'copy through dir link');
            await expectCode(() => s.put('d/y', Buffer.from('planted')), 'denied', 'put through dir link');
            await expectCode(() => s.put('d/z/w', Buffer.from('planted')), 'denied', 'put below dir link');
            await expectCode(() => s.copy('ok', 'd/y'), 'denied', 'copy into dir link');
            const del = await s.deleteMany(['d/x', 'ok']);
            expect(del.deleted).toEqual(['ok']);
            expect(del.errors.map((e) => [e.key, e.code])).toEqual([['d/x', 'denied']]);
            expect(await s.head('stolen')).toBeUndefined();
            // list never descends into or reports links.
            expect((await s.list('')).objects).toEqual([]);
            await expectCode(() => s.list('d/'), 'denied', 'list through dir link');
            // Nothing outside changed.
            expect((await readdir(outside)).sort()).toEqual(['x']);
            expect((await readFile(join(outside, 'x'))).subarray(0, 6).toString()).toBe('secret');
            // A put over the file link replaces the link itself (rename does not follow it).
            await s.put('evil', Buffer.from('mine'));
            expect((await lstat(join(objects, 'evil'))).isFile()).toBe(true);
            expect((await readFile(join(outside, 'x'))).subarray(0, 6).toString()).toBe('secret');
          },
          { pathCheck },
        );
      } finally {
        await rm(outside, { recursive: true, force: true });
      }
    });
  }

  it("keys with dots stay inside ('..x' is a name, '..' is refused), and long segments are refused", async () => {
    await withStore(async (s, dir) => {
      await s.put('a/..x/...', Buffer.from('dots'));
      expect((await stat(join(dir, 'objects', 'a\\', '..x\\', '...'))).isFile()).toBe(true);
      for (const k of ['../x', 'a/../../x', '..', 'a/..']) await expectCode(() => s.put(k, Buffer.from('no')), 'invalid', k);
      const seg = 'y'.repeat(limits.objstoreLocalSegmentBytesMax);
      await s.put(`${seg}/${seg}`, Buffer.from('max'));
      expect((await s.get(`${seg}/${seg}`)).toString()).toBe('max');
      await expectCode(() => s.put(`${seg}y`, Buffer.from('long')), 'invalid', 'long segment');
      await expectCode(() => s.get(`a/${seg}y`), 'invalid', 'long segment');
      expect((await s.list(`${seg}y/`)).objects).toEqual([]);
    });
  });

  it('files that are not objects are corrupt, not misread', async () => {
    await withStore(async (s, dir) => {
      await writeFile(join(dir, 'objects', 'junk'), 'short');
      await writeFile(join(dir, 'objects', 'junk2'), Buffer.alloc(100, 1));
      await mkdir(join(dir, 'objects', 'dir'));
      await expectCode(() => s.get('junk'), 'corrupt', 'get short');
      await expectCode(() => s.head('junk'), 'corrupt', 'head short');
      await expectCode(() => s.head('junk2'), 'corrupt', 'head without trailer');
      await expectCode(() => s.copy('junk2', 'copied'), 'corrupt', 'copy without trailer');
      await expectCode(() => s.list('junk'), 'corrupt', 'list');
      await expectCode(() => s.get('dir'), 'corrupt', 'get of a directory');
      expect(await s.head('copied')).toBeUndefined();
      expect((await readdir(join(dir, 'tmp'))).length).toBe(0);
    });
  });

  it('ifMatch is atomic within the process: of 16 concurrent replacements of one etag, one wins', async () => {
    await withStore(async (s) => {
      const base = await s.put('cas', Buffer.from('base'));
      const outcomes = await Promise.allSettled(
        Array.from({ length: 16 }, (_, i) => s.put('cas', Buffer.from(`writer ${i}`), { ifMatch: base.etag })),
      );
      const won = outcomes.flatMap((o, i) => (o.status === 'fulfilled' ? [i] : []));
      expect(won.length).toBe(1);
      expect((await s.get('cas')).toString()).toBe(`writer ${won[0]}`);
      for (const o of outcomes) if (o.status === 'rejected') expect((o.reason as ObjStoreError).code).toBe('precondition-failed');
    });
  });

  it('puts and deletes racing in one directory: a put never fails because a delete emptied its directory', async () => {
    await withStore(async (s) => {
      let failures = 0;
      await Promise.all(
        Array.from({ length: 8 }, async (_, w) => {
          for (let i = 0; i < 40; i++) {
            const k = `race/d/w${w}-${i}`;
            try {
              await s.put(k, Buffer.from(k));
              const r = await s.deleteMany([k]);
              if (r.errors.length > 0) failures++;
            } catch {
              failures++;
            }
          }
        }),
      );
      expect(failures).toBe(0);
      expect((await s.list('race/')).objects).toEqual([]);
    });
  });

  it('copy of a large object goes through a temp and keeps the etag of the source', async () => {
    await withStore(async (s, dir) => {
      const body = Buffer.alloc(3 << 20, 7);
      const src = await s.put('big/src', body);
      const c = await s.copy('big/src', 'big/dst', { ifNoneMatch: '*' });
      expect(c).toEqual({ key: 'big/dst', size: body.length, etag: src.etag });
      expect((await s.get('big/dst')).equals(body)).toBe(true);
      expect((await readdir(join(dir, 'tmp'))).length).toBe(0);
    });
  });
});
