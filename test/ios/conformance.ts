// IOS driver conformance suite: one set of tests every driver must pass (STYLE.md: "one conformance
// suite run against every implementation"). A driver's test file calls runIosConformance with a
// factory; the chunked driver will run the same suite.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { FILE_ATTR_SETTABLE, FileAttr, IosError, type IosHandle, type IosShare, type OpenOptions } from '../../src/ios/spi.js';

export interface IosFixture {
  /** The share under test (replaced by reopen). */
  share: IosShare;
  /** Closes `share` and opens the same storage again (a server restart); sets and returns `share`. */
  reopen(options?: { readOnly?: boolean }): Promise<IosShare>;
  /** Closes everything and removes the storage. */
  cleanup(): Promise<void>;
}

/** Resolves to the IosError code of a rejection, or 'OK'. Anything else thrown fails the test. */
export async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    if (err instanceof IosError) return err.code;
    throw err;
  }
  return 'OK';
}

const W: OpenOptions = { mode: 'openOrCreate', write: true };

async function makeFile(share: IosShare, path: string, content?: string | Buffer): Promise<bigint> {
  const { handle } = await share.open(path, { mode: 'create', write: true });
  if (content !== undefined) await handle.write(0, Buffer.from(content));
  const id = handle.fileId;
  await handle.close();
  return id;
}

async function makeDir(share: IosShare, path: string): Promise<bigint> {
  const { handle } = await share.open(path, { mode: 'create', directory: true, write: false });
  const id = handle.fileId;
  await handle.close();
  return id;
}

async function readAll(share: IosShare, path: string): Promise<Buffer> {
  const { handle } = await share.open(path, { mode: 'open', write: false });
  try {
    const info = await handle.info();
    return await handle.read(0, info.size);
  } finally {
    await handle.close();
  }
}

async function listAll(h: IosHandle, max: number): Promise<string[]> {
  const names: string[] = [];
  let cookie: string | undefined;
  let pages = 0;
  do {
    const page = await h.list(cookie, max);
    expect(page.entries.length).toBeLessThanOrEqual(max);
    names.push(...page.entries.map((e) => e.name));
    cookie = page.cookie;
    if (++pages > 10_000) throw new Error('listing does not end');
  } while (cookie !== undefined);
  return names;
}

export function runIosConformance(name: string, makeShare: () => Promise<IosFixture>): void {
  describe(`IOS conformance: ${name}`, () => {
    let fx: IosFixture;
    let share: IosShare;
    beforeEach(async () => {
      fx = await makeShare();
      share = fx.share;
    });
    afterEach(async () => {
      await fx.cleanup();
    });
    const reopen = async (options?: { readOnly?: boolean }) => {
      share = await fx.reopen(options);
      return share;
    };

    describe('root and stat', () => {
      it('stat of the root is a directory with path ""', async () => {
        const r = await share.stat('');
        expect(r.path).toBe('');
        expect(r.info.isDirectory).toBe(true);
        expect(r.info.attributes & FileAttr.DIRECTORY).toBe(FileAttr.DIRECTORY);
        expect(r.info.fileId).not.toBe(0n);
        expect(r.info.size).toBe(0);
      });

      it('opens the root as a directory handle and refuses to create or truncate it', async () => {
        const r = await share.open('', { mode: 'open', write: false });
        expect(r.action).toBe('opened');
        expect(r.path).toBe('');
        expect(r.handle.isDirectory).toBe(true);
        await r.handle.close();
        expect(await codeOf(share.open('', { mode: 'create', write: false }))).toBe('EEXIST');
        expect(await codeOf(share.open('', { mode: 'truncate', write: true }))).toBe('EISDIR');
        expect(await codeOf(share.open('', { mode: 'open', directory: false, write: false }))).toBe('EISDIR');
      });

      it('a missing object is ENOENT, a missing parent ENOENT, a file as parent ENOTDIR', async () => {
        expect(await codeOf(share.stat('nope'))).toBe('ENOENT');
        expect(await codeOf(share.stat('nope/x'))).toBe('ENOENT');
        await makeFile(share, 'f');
        expect(await codeOf(share.stat('f/x'))).toBe('ENOTDIR');
        expect(await codeOf(share.open('f/x', { mode: 'create', write: true }))).toBe('ENOTDIR');
        expect(await codeOf(share.open('nope/x', { mode: 'create', write: true }))).toBe('ENOENT');
      });

      it('rejects invalid components with EINVAL and long names with ENAMETOOLONG', async () => {
        await makeDir(share, 'a');
        for (const p of ['..', 'a/..', '.', 'a/./b', 'a//b', '/a', 'a/', 'x:y', 'a\\b', 'a\u0000b', '../etc/passwd']) {
          expect(await codeOf(share.stat(p)), p).toBe('EINVAL');
          expect(await codeOf(share.open(p, { mode: 'openOrCreate', write: true })), p).toBe('EINVAL');
        }
        expect(await codeOf(share.rename('a', '../a', false))).toBe('EINVAL');
        expect(await codeOf(share.remove('a/..'))).toBe('EINVAL');
        expect(await codeOf(share.open('n'.repeat(256), { mode: 'create', write: true }))).toBe('ENAMETOOLONG');
        const ok = await share.open('n'.repeat(255), { mode: 'create', write: true });
        await ok.handle.close();
      });
    });

    describe('open modes', () => {
      it('on a missing name', async () => {
        expect(await codeOf(share.open('m', { mode: 'open', write: false }))).toBe('ENOENT');
        expect(await codeOf(share.open('m', { mode: 'truncate', write: true }))).toBe('ENOENT');
        for (const mode of ['create', 'openOrCreate', 'truncateOrCreate', 'replace'] as const) {
          const r = await share.open(`m-${mode}`, { mode, write: true });
          expect(r.action, mode).toBe('created');
          expect(r.path).toBe(`m-${mode}`);
          expect(r.handle.isDirectory).toBe(false);
          const info = await r.handle.info();
          expect(info.size).toBe(0);
          expect(info.isDirectory).toBe(false);
          expect(info.attributes).toBe(FileAttr.ARCHIVE);
          expect(info.fileId).toBe(r.handle.fileId);
          expect((await share.stat(`m-${mode}`)).info.fileId).toBe(r.handle.fileId);
          await r.handle.close();
        }
      });

      it('on an existing file', async () => {
        const expected = {
          open: ['opened', 5],
          openOrCreate: ['opened', 5],
          truncate: ['truncated', 0],
          truncateOrCreate: ['truncated', 0],
          replace: ['replaced', 0],
        } as const;
        for (const [mode, [action, size]] of Object.entries(expected)) {
          const id = await makeFile(share, `e-${mode}`, 'hello');
          const r = await share.open(`e-${mode}`, { mode: mode as keyof typeof expected, write: true });
          expect(r.action, mode).toBe(action);
          expect(r.handle.fileId).toBe(id);
          expect((await r.handle.info()).size, mode).toBe(size);
          await r.handle.close();
        }
        expect(await codeOf(share.open('e-open', { mode: 'create', write: true }))).toBe('EEXIST');
      });

      it('replace sets the given attributes; truncate keeps them', async () => {
        const a = await share.open('r', { mode: 'create', write: true, attributes: FileAttr.HIDDEN });
        await a.handle.close();
        expect((await share.stat('r')).info.attributes).toBe(FileAttr.HIDDEN);
        const t = await share.open('r', { mode: 'truncate', write: true, attributes: FileAttr.SYSTEM });
        await t.handle.close();
        expect((await share.stat('r')).info.attributes).toBe(FileAttr.HIDDEN);
        const p = await share.open('r', { mode: 'replace', write: true, attributes: FileAttr.SYSTEM | FileAttr.ARCHIVE });
        expect(p.action).toBe('replaced');
        await p.handle.close();
        expect((await share.stat('r')).info.attributes).toBe(FileAttr.SYSTEM | FileAttr.ARCHIVE);
      });

      it('directories: create, type checks, no truncation', async () => {
        const r = await share.open('d', { mode: 'create', directory: true, write: false });
        expect(r.action).toBe('created');
        expect(r.handle.isDirectory).toBe(true);
        const info = await r.handle.info();
        expect(info.isDirectory).toBe(true);
        expect(info.attributes).toBe(FileAttr.DIRECTORY);
        await r.handle.close();
        expect(await codeOf(share.open('d', { mode: 'create', directory: true, write: false }))).toBe('EEXIST');
        const again = await share.open('d', { mode: 'openOrCreate', directory: true, write: false });
        expect(again.action).toBe('opened');
        await again.handle.close();
        expect(await codeOf(share.open('d', { mode: 'open', directory: false, write: false }))).toBe('EISDIR');
        expect(await codeOf(share.open('d', { mode: 'truncate', write: true }))).toBe('EISDIR');
        expect(await codeOf(share.open('d', { mode: 'replace', write: true }))).toBe('EISDIR');
        expect(await codeOf(share.open('d2', { mode: 'truncateOrCreate', directory: true, write: true }))).toBe('EINVAL');
        await makeFile(share, 'f');
        expect(await codeOf(share.open('f', { mode: 'open', directory: true, write: false }))).toBe('ENOTDIR');
        const either = await share.open('d', { mode: 'open', write: false });
        expect(either.handle.isDirectory).toBe(true);
        await either.handle.close();
        const dirCreated = await share.open('d/sub', { mode: 'openOrCreate', directory: true, write: false });
        expect(dirCreated.action).toBe('created');
        await dirCreated.handle.close();
        expect((await share.stat('d/sub')).info.isDirectory).toBe(true);
      });

      it('creates with attributes and a security descriptor', async () => {
        const sd = randomBytes(100);
        const r = await share.open('s', {
          mode: 'create',
          write: true,
          attributes: FileAttr.HIDDEN | FileAttr.DIRECTORY | 0x10000,
          securityDescriptor: sd,
        });
        expect((await r.handle.info()).attributes).toBe(FileAttr.HIDDEN);
        expect(await r.handle.getSecurity()).toEqual(sd);
        await r.handle.close();
        expect(await codeOf(share.open('big', { mode: 'create', write: true, securityDescriptor: Buffer.alloc(64 * 1024 + 1) }))).toBe('EINVAL');
        expect(await codeOf(share.stat('big'))).toBe('ENOENT');
      });
    });

    describe('case-insensitive names', () => {
      it('resolves any case and returns the stored case', async () => {
        await makeDir(share, 'Dir');
        await makeDir(share, 'Dir/Sub');
        const id = await makeFile(share, 'Dir/Sub/MixedCase.txt', 'x');
        const r = await share.stat('dIR/sUB/mixedcase.TXT');
        expect(r.path).toBe('Dir/Sub/MixedCase.txt');
        expect(r.info.fileId).toBe(id);
        const o = await share.open('DIR/SUB/MIXEDCASE.TXT', { mode: 'open', write: false });
        expect(o.path).toBe('Dir/Sub/MixedCase.txt');
        await o.handle.close();
        expect(await codeOf(share.open('dir/sub/MIXEDCASE.txt', { mode: 'create', write: true }))).toBe('EEXIST');
        expect(await codeOf(share.open('DIR', { mode: 'create', directory: true, write: false }))).toBe('EEXIST');
        const names = await (async () => {
          const h = (await share.open('dir/sub', { mode: 'open', write: false })).handle;
          try {
            return await listAll(h, 100);
          } finally {
            await h.close();
          }
        })();
        expect(names).toEqual(['MixedCase.txt']);
      });

      it('non-ASCII names fold with toUpperCase', async () => {
        await makeFile(share, 'Ärger-ñ.txt', 'x');
        expect((await share.stat('äRGER-Ñ.TXT')).path).toBe('Ärger-ñ.txt');
      });
    });

    describe('data', () => {
      it('writes, reads, extends with zeros, reports short and empty reads', async () => {
        const { handle } = await share.open('data', W);
        expect(await handle.write(0, Buffer.from('abc'))).toBe(3);
        expect(await handle.write(10, Buffer.from('xyz'))).toBe(3);
        expect((await handle.info()).size).toBe(13);
        expect(await handle.read(0, 13)).toEqual(Buffer.concat([Buffer.from('abc'), Buffer.alloc(7), Buffer.from('xyz')]));
        expect(await handle.read(11, 100)).toEqual(Buffer.from('yz'));
        expect((await handle.read(13, 10)).length).toBe(0);
        expect((await handle.read(1000, 10)).length).toBe(0);
        expect((await handle.read(0, 0)).length).toBe(0);
        expect(await codeOf(handle.read(-1, 1))).toBe('EINVAL');
        expect(await codeOf(handle.write(-1, Buffer.from('a')))).toBe('EINVAL');
        expect(await codeOf(handle.read(0.5, 1))).toBe('EINVAL');
        await handle.flush();
        await handle.close();
        expect(await readAll(share, 'data')).toEqual(Buffer.concat([Buffer.from('abc'), Buffer.alloc(7), Buffer.from('xyz')]));
      });

      it('a large write and read round-trip', async () => {
        const data = randomBytes(3 * 1024 * 1024 + 17);
        const { handle } = await share.open('big', W);
        expect(await handle.write(4096, data)).toBe(data.length);
        // Buffer.equals: vitest's deep equality walks 3 MiB byte by byte (seconds).
        expect((await handle.read(4096, data.length)).equals(data)).toBe(true);
        await handle.close();
      });

      it('truncate extends with zeros and cuts', async () => {
        const { handle } = await share.open('t', W);
        await handle.write(0, Buffer.from('hello'));
        await handle.truncate(100);
        const all = await handle.read(0, 200);
        expect(all.length).toBe(100);
        expect(all.subarray(0, 5).toString()).toBe('hello');
        expect(all.subarray(5).equals(Buffer.alloc(95))).toBe(true);
        await handle.truncate(2);
        expect((await handle.read(0, 100)).toString()).toBe('he');
        expect((await handle.info()).size).toBe(2);
        expect(await codeOf(handle.truncate(-1))).toBe('EINVAL');
        await handle.close();
      });

      it('a handle opened without write refuses write, truncate and setInfo', async () => {
        await makeFile(share, 'ro', 'abc');
        const { handle } = await share.open('ro', { mode: 'open', write: false });
        expect(await codeOf(handle.write(0, Buffer.from('x')))).toBe('EACCES');
        expect(await codeOf(handle.truncate(0))).toBe('EACCES');
        expect(await codeOf(handle.setInfo({ attributes: FileAttr.HIDDEN }))).toBe('EACCES');
        expect((await handle.read(0, 10)).toString()).toBe('abc');
        await handle.close();
      });

      it('directory handles refuse data operations', async () => {
        const { handle } = await share.open('dd', { mode: 'create', directory: true, write: true });
        expect(await codeOf(handle.read(0, 1))).toBe('EISDIR');
        expect(await codeOf(handle.write(0, Buffer.from('x')))).toBe('EISDIR');
        expect(await codeOf(handle.truncate(0))).toBe('EISDIR');
        await handle.flush();
        await handle.close();
      });

      it('concurrent writes at distinct offsets on one handle all land', async () => {
        const { handle } = await share.open('conc', W);
        const chunk = 64 * 1024;
        const pieces = Array.from({ length: 64 }, () => randomBytes(chunk));
        // Issue in a shuffled order, all at once.
        const order = pieces.map((_, i) => i).sort(() => Math.random() - 0.5);
        const written = await Promise.all(order.map((i) => handle.write(i * chunk, pieces[i]!)));
        expect(written.every((n) => n === chunk)).toBe(true);
        const reads = await Promise.all(pieces.map((_, i) => handle.read(i * chunk, chunk)));
        reads.forEach((r, i) => expect(r.equals(pieces[i]!), `piece ${i}`).toBe(true));
        expect((await handle.info()).size).toBe(64 * chunk);
        await handle.close();
      });

      it('close is idempotent and a closed handle rejects', async () => {
        const { handle } = await share.open('c', W);
        await handle.close();
        await handle.close();
        expect(await codeOf(handle.read(0, 1))).not.toBe('OK');
        expect(await codeOf(handle.info())).not.toBe('OK');
      });

      it('a handle follows its file across a rename', async () => {
        const { handle } = await share.open('before', W);
        await share.rename('before', 'after', false);
        await handle.write(0, Buffer.from('moved'));
        await handle.close();
        expect((await readAll(share, 'after')).toString()).toBe('moved');
      });
    });

    describe('info and metadata', () => {
      it('setInfo sets times (to the microsecond), creation time and settable attributes', async () => {
        const { handle } = await share.open('i', W);
        const t = 981_173_106_123_456_700n; // 2001-02-03 04:05:06.1234567
        await handle.setInfo({ lastWriteTimeNs: t, lastAccessTimeNs: t + 1_000_000_000n, creationTimeNs: t - 5n * 1_000_000_000n });
        const info = await handle.info();
        const near = (a: bigint, b: bigint) => (a > b ? a - b : b - a) <= 1000n;
        expect(near(info.lastWriteTimeNs, t), `${info.lastWriteTimeNs}`).toBe(true);
        expect(near(info.lastAccessTimeNs, t + 1_000_000_000n)).toBe(true);
        expect(info.creationTimeNs).toBe(t - 5n * 1_000_000_000n);
        // Only one of the two times: the other stays.
        await handle.setInfo({ lastAccessTimeNs: t + 2_000_000_000n });
        const info2 = await handle.info();
        expect(near(info2.lastWriteTimeNs, t)).toBe(true);
        expect(near(info2.lastAccessTimeNs, t + 2_000_000_000n)).toBe(true);
        await handle.setInfo({ attributes: FileAttr.READONLY | FileAttr.HIDDEN | FileAttr.DIRECTORY | FileAttr.COMPRESSED });
        expect((await handle.info()).attributes).toBe(FileAttr.READONLY | FileAttr.HIDDEN);
        await handle.setInfo({ attributes: 0 });
        expect((await handle.info()).attributes).toBe(0);
        expect(await codeOf(handle.setInfo({ attributes: -1 }))).toBe('EINVAL');
        await handle.close();
        const st = await share.stat('i');
        expect(st.info.creationTimeNs).toBe(t - 5n * 1_000_000_000n);
        expect(st.info.attributes).toBe(0);
      });

      it('directory attributes always carry DIRECTORY', async () => {
        const { handle } = await share.open('dir', { mode: 'create', directory: true, write: true });
        await handle.setInfo({ attributes: FileAttr.HIDDEN });
        expect((await handle.info()).attributes).toBe(FileAttr.HIDDEN | FileAttr.DIRECTORY);
        await handle.setInfo({ attributes: 0 });
        expect((await handle.info()).attributes).toBe(FileAttr.DIRECTORY);
        await handle.close();
        expect(FILE_ATTR_SETTABLE & FileAttr.DIRECTORY).toBe(0);
      });

      it('security descriptors: none, set, replace, copy semantics, bound', async () => {
        const { handle } = await share.open('sec', W);
        expect(await handle.getSecurity()).toBeUndefined();
        const sd = Buffer.from(randomBytes(300));
        await handle.setSecurity(sd);
        const kept = Buffer.from(sd);
        sd.fill(0); // the driver must not have retained the caller's buffer
        expect(await handle.getSecurity()).toEqual(kept);
        const sd2 = randomBytes(64 * 1024);
        await handle.setSecurity(sd2);
        expect((await handle.getSecurity())?.equals(sd2)).toBe(true);
        expect(await codeOf(handle.setSecurity(Buffer.alloc(64 * 1024 + 1)))).toBe('EINVAL');
        expect((await handle.getSecurity())?.equals(sd2)).toBe(true);
        // Security is independent of data writes: a read handle may set it.
        const ro = await share.open('sec', { mode: 'open', write: false });
        await ro.handle.setSecurity(kept);
        expect(await handle.getSecurity()).toEqual(kept);
        await ro.handle.close();
        await handle.close();
      });

      it('file ids are unique, non-zero and stable across rename', async () => {
        const ids = new Set<bigint>();
        await makeDir(share, 'ids');
        for (let i = 0; i < 40; i++) ids.add(i % 4 === 0 ? await makeDir(share, `ids/d${i}`) : await makeFile(share, `ids/f${i}`));
        expect(ids.size).toBe(40);
        expect(ids.has(0n)).toBe(false);
        const id = (await share.stat('ids/f1')).info.fileId;
        await share.rename('ids/f1', 'moved', false);
        expect((await share.stat('moved')).info.fileId).toBe(id);
      });

      it('links counts hard links (1 for a fresh file)', async () => {
        await makeFile(share, 'l');
        expect((await share.stat('l')).info.links).toBe(1);
      });
    });

    describe('listing', () => {
      it('pages through every entry once, in a stable order, with info', async () => {
        await makeDir(share, 'L');
        const expected: string[] = [];
        for (let i = 0; i < 25; i++) {
          await makeFile(share, `L/file${i}`, 'x'.repeat(i));
          expected.push(`file${i}`);
        }
        for (let i = 0; i < 3; i++) {
          await makeDir(share, `L/dir${i}`);
          expected.push(`dir${i}`);
        }
        const { handle } = await share.open('l', { mode: 'open', directory: true, write: false });
        const first = await listAll(handle, 7);
        expect([...first].sort()).toEqual([...expected].sort());
        expect(first).not.toContain('.');
        expect(first).not.toContain('..');
        const second = await listAll(handle, 1000);
        expect(second).toEqual(first);
        const page = await handle.list(undefined, 1000);
        for (const e of page.entries) {
          const st = await share.stat(`L/${e.name}`);
          expect(e.info.fileId).toBe(st.info.fileId);
          expect(e.info.isDirectory).toBe(e.name.startsWith('dir'));
          if (!e.info.isDirectory) expect(e.info.size).toBe(Number(e.name.slice(4)));
        }
        await handle.close();
      });

      it('skips entries removed after the listing started; an empty directory lists nothing', async () => {
        await makeDir(share, 'S');
        for (let i = 0; i < 10; i++) await makeFile(share, `S/f${i}`);
        const { handle } = await share.open('S', { mode: 'open', write: false });
        const p1 = await handle.list(undefined, 3);
        expect(p1.entries.length).toBe(3);
        expect(p1.cookie).toBeDefined();
        const seen = new Set(p1.entries.map((e) => e.name));
        const victim = ['f0', 'f1', 'f2', 'f3', 'f4', 'f5', 'f6', 'f7', 'f8', 'f9'].find((n) => !seen.has(n))!;
        await share.remove(`S/${victim}`);
        let cookie = p1.cookie;
        while (cookie !== undefined) {
          const p = await handle.list(cookie, 3);
          p.entries.forEach((e) => seen.add(e.name));
          cookie = p.cookie;
        }
        expect(seen.size).toBe(9);
        expect(seen.has(victim)).toBe(false);
        await handle.close();
        await makeDir(share, 'E');
        const e = await share.open('E', { mode: 'open', write: false });
        expect(await e.handle.list(undefined, 10)).toEqual({ entries: [], cookie: undefined });
        await e.handle.close();
      });

      it('list on a file is ENOTDIR; bad max is EINVAL', async () => {
        await makeFile(share, 'f');
        const { handle } = await share.open('f', { mode: 'open', write: false });
        expect(await codeOf(handle.list(undefined, 10))).toBe('ENOTDIR');
        await handle.close();
        const root = await share.open('', { mode: 'open', write: false });
        expect(await codeOf(root.handle.list(undefined, 0))).toBe('EINVAL');
        await root.handle.close();
      });
    });

    describe('rename', () => {
      it('renames a file, keeps its id and content', async () => {
        const id = await makeFile(share, 'a', 'A');
        await share.rename('a', 'b', false);
        expect(await codeOf(share.stat('a'))).toBe('ENOENT');
        const st = await share.stat('b');
        expect(st.info.fileId).toBe(id);
        expect((await readAll(share, 'b')).toString()).toBe('A');
      });

      it('moves between directories, and a directory moves its subtree', async () => {
        await makeDir(share, 'd1');
        await makeDir(share, 'd2');
        await makeFile(share, 'd1/f', 'x');
        await share.rename('D1/F', 'd2/g', false);
        expect((await share.stat('d2/g')).path).toBe('d2/g');
        await makeDir(share, 'd1/deep');
        await makeFile(share, 'd1/deep/leaf', 'leaf');
        await share.rename('d1', 'd2/moved', false);
        expect((await readAll(share, 'd2/moved/deep/leaf')).toString()).toBe('leaf');
        expect(await codeOf(share.stat('d1'))).toBe('ENOENT');
      });

      it('allows a case-only rename of the last component', async () => {
        const id = await makeFile(share, 'abc');
        await share.rename('abc', 'ABC', false);
        const st = await share.stat('abc');
        expect(st.path).toBe('ABC');
        expect(st.info.fileId).toBe(id);
        await share.rename('ABC', 'aBc', true);
        expect((await share.stat('ABC')).path).toBe('aBc');
        await share.rename('abc', 'aBc', false); // no change at all
        expect((await share.stat('abc')).path).toBe('aBc');
        await makeDir(share, 'Dir');
        await share.rename('dir', 'DIR', false);
        expect((await share.stat('dir')).path).toBe('DIR');
      });

      it('EEXIST without replace; replace swaps in the source; never replaces a directory', async () => {
        const src = await makeFile(share, 'src', 'new');
        await makeFile(share, 'dst', 'old');
        expect(await codeOf(share.rename('src', 'DST', false))).toBe('EEXIST');
        expect((await readAll(share, 'dst')).toString()).toBe('old');
        await share.rename('src', 'DST', true);
        expect(await codeOf(share.stat('src'))).toBe('ENOENT');
        const st = await share.stat('dst');
        expect(st.info.fileId).toBe(src);
        expect((await readAll(share, 'dst')).toString()).toBe('new');
        await makeDir(share, 'dir');
        await makeFile(share, 'f2');
        expect(await codeOf(share.rename('f2', 'dir', true))).toBe('EEXIST');
        expect(await codeOf(share.rename('f2', 'dir', false))).toBe('EEXIST');
        expect((await share.stat('dir')).info.isDirectory).toBe(true);
      });

      it('refuses to move a directory into itself or its subtree', async () => {
        await makeDir(share, 'p');
        await makeDir(share, 'p/q');
        expect(await codeOf(share.rename('p', 'p/x', false))).toBe('EINVAL');
        expect(await codeOf(share.rename('p', 'P/Q/x', false))).toBe('EINVAL');
        expect((await share.stat('p/q')).info.isDirectory).toBe(true);
      });

      it('ENOENT for a missing source or a missing target parent; the root cannot move', async () => {
        await makeFile(share, 'x');
        expect(await codeOf(share.rename('missing', 'y', false))).toBe('ENOENT');
        expect(await codeOf(share.rename('x', 'nodir/y', false))).toBe('ENOENT');
        expect(await codeOf(share.rename('x', 'x/y', false))).toBe('ENOTDIR');
        expect(await codeOf(share.rename('', 'y', false))).not.toBe('OK');
        expect((await share.stat('x')).info.isDirectory).toBe(false);
      });
    });

    describe('remove', () => {
      it('removes files and empty directories; ENOTEMPTY and ENOENT otherwise', async () => {
        await makeFile(share, 'f');
        await share.remove('F');
        expect(await codeOf(share.stat('f'))).toBe('ENOENT');
        await makeDir(share, 'd');
        await makeFile(share, 'd/x');
        expect(await codeOf(share.remove('d'))).toBe('ENOTEMPTY');
        await share.remove('d/x');
        await share.remove('d');
        expect(await codeOf(share.stat('d'))).toBe('ENOENT');
        expect(await codeOf(share.remove('d'))).toBe('ENOENT');
        expect(await codeOf(share.remove(''))).not.toBe('OK');
      });

      it('a removed name can be created again with fresh metadata', async () => {
        const { handle } = await share.open('again', { mode: 'create', write: true, attributes: FileAttr.HIDDEN, securityDescriptor: Buffer.from('sd') });
        await handle.close();
        await share.remove('again');
        const r = await share.open('again', { mode: 'create', write: true });
        expect((await r.handle.info()).attributes).toBe(FileAttr.ARCHIVE);
        expect(await r.handle.getSecurity()).toBeUndefined();
        await r.handle.close();
      });
    });

    describe('statfs', () => {
      it('reports sane, stable volume information', async () => {
        const s = await share.statfs();
        expect(s.totalBytes).toBeGreaterThan(0);
        expect(s.freeBytes).toBeLessThanOrEqual(s.totalBytes);
        expect(s.availableBytes).toBeLessThanOrEqual(s.freeBytes);
        expect(s.blockBytes).toBeGreaterThan(0);
        for (const v of [s.sectorBytesLogical, s.sectorBytesPhysical]) expect(Number.isInteger(Math.log2(v))).toBe(true);
        expect(s.sectorBytesPhysical).toBeGreaterThanOrEqual(s.sectorBytesLogical);
        expect(s.caseSensitive).toBe(false);
        expect(s.nameUnitsMax).toBeGreaterThanOrEqual(255);
        expect(s.volumeSerial >>> 0).toBe(s.volumeSerial);
        expect(typeof s.createdNs).toBe('bigint');
        const again = await reopen();
        expect((await again.statfs()).volumeSerial).toBe(s.volumeSerial);
      });
    });

    describe('persistence and read-only', () => {
      it('creation time, attributes, security descriptor and file ids survive a restart and a rename', async () => {
        const sd = randomBytes(200);
        const { handle } = await share.open('p', { mode: 'create', write: true, attributes: FileAttr.HIDDEN | FileAttr.SYSTEM, securityDescriptor: sd });
        await handle.setInfo({ creationTimeNs: 1_000_000_000_000_000_000n });
        await handle.write(0, Buffer.from('persist'));
        const id = handle.fileId;
        await handle.close();
        const dirId = await makeDir(share, 'pd');
        await reopen();
        let st = await share.stat('P');
        expect(st.info.fileId).toBe(id);
        expect(st.info.attributes).toBe(FileAttr.HIDDEN | FileAttr.SYSTEM);
        expect(st.info.creationTimeNs).toBe(1_000_000_000_000_000_000n);
        expect((await share.stat('pd')).info.fileId).toBe(dirId);
        await share.rename('p', 'pd/renamed', false);
        await reopen();
        st = await share.stat('pd/renamed');
        expect(st.info.fileId).toBe(id);
        expect(st.info.attributes).toBe(FileAttr.HIDDEN | FileAttr.SYSTEM);
        expect(st.info.creationTimeNs).toBe(1_000_000_000_000_000_000n);
        const o = await share.open('pd/renamed', { mode: 'open', write: false });
        expect(await o.handle.getSecurity()).toEqual(sd);
        expect((await o.handle.read(0, 100)).toString()).toBe('persist');
        await o.handle.close();
      });

      it('a read-only share serves reads and refuses every modification with EROFS', async () => {
        await makeDir(share, 'd');
        await makeFile(share, 'd/f', 'data');
        await reopen({ readOnly: true });
        expect((await readAll(share, 'd/f')).toString()).toBe('data');
        expect(await codeOf(share.open('d/new', { mode: 'create', write: true }))).toBe('EROFS');
        expect(await codeOf(share.open('d/new', { mode: 'openOrCreate', write: false }))).toBe('EROFS');
        expect(await codeOf(share.open('d/f', { mode: 'open', write: true }))).toBe('EROFS');
        expect(await codeOf(share.open('d/f', { mode: 'truncate', write: false }))).toBe('EROFS');
        expect(await codeOf(share.open('d/f', { mode: 'replace', write: false }))).toBe('EROFS');
        expect(await codeOf(share.rename('d/f', 'd/g', false))).toBe('EROFS');
        expect(await codeOf(share.remove('d/f'))).toBe('EROFS');
        const { handle } = await share.open('d/f', { mode: 'openOrCreate', write: false });
        expect(await codeOf(handle.write(0, Buffer.from('x')))).toBe('EROFS');
        expect(await codeOf(handle.truncate(0))).toBe('EROFS');
        expect(await codeOf(handle.setInfo({ attributes: FileAttr.HIDDEN }))).toBe('EROFS');
        expect(await codeOf(handle.setSecurity(Buffer.from('sd')))).toBe('EROFS');
        await handle.close();
        expect((await readAll(share, 'd/f')).toString()).toBe('data');
      });
    });
  });
}
