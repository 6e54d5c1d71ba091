// IOS driver conformance suite: one set of tests every driver must pass (STYLE.md: "one conformance
// suite run against every implementation"). A driver's test file calls runIosConformance with a
// factory; the chunked driver will run the same suite.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import {
  FILE_ATTR_SETTABLE,
  FileAttr,
  IOS_STREAMS_PER_OBJECT_MAX,
  IosError,
  type IosHandle,
  type IosShare,
  type OpenOptions,
} from '../../src/ios/spi.js';

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

async function makeStream(share: IosShare, path: string, stream: string, content?: string | Buffer): Promise<void> {
  const { handle } = await share.open(path, { mode: 'create', write: true, stream });
  if (content !== undefined) await handle.write(0, Buffer.from(content));
  await handle.close();
}

async function readStream(share: IosShare, path: string, stream: string): Promise<Buffer> {
  const { handle } = await share.open(path, { mode: 'open', write: false, stream });
  try {
    const info = await handle.info();
    return await handle.read(0, info.size);
  } finally {
    await handle.close();
  }
}

/** Stream names of the object at `path`, sorted, as "name=size". */
async function streamsOf(share: IosShare, path: string): Promise<string[]> {
  const { handle } = await share.open(path, { mode: 'open', write: false });
  try {
    return (await handle.listStreams()).map((s) => `${s.name}=${s.size}`).sort();
  } finally {
    await handle.close();
  }
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

    describe('named streams', () => {
      it('create, write, read, truncate a stream apart from the unnamed data', async () => {
        const id = await makeFile(share, 'f', 'base data');
        const r = await share.open('f', { mode: 'create', write: true, stream: 'Zone.Identifier' });
        expect(r.action).toBe('created');
        expect(r.path).toBe('f');
        expect(r.stream).toBe('Zone.Identifier');
        const h = r.handle;
        expect(h.stream).toBe('Zone.Identifier');
        expect(h.isDirectory).toBe(false);
        expect(h.fileId).toBe(id);
        expect(await h.write(0, Buffer.from('[ZoneTransfer]'))).toBe(14);
        expect(await h.write(20, Buffer.from('x'))).toBe(1);
        let info = await h.info();
        expect(info.size).toBe(21);
        expect(info.fileId).toBe(id);
        expect(info.isDirectory).toBe(false);
        expect(info.attributes).toBe(FileAttr.ARCHIVE);
        expect(await h.read(0, 100)).toEqual(Buffer.concat([Buffer.from('[ZoneTransfer]'), Buffer.alloc(6), Buffer.from('x')]));
        expect((await h.read(21, 5)).length).toBe(0);
        await h.truncate(4);
        expect((await h.read(0, 100)).toString()).toBe('[Zon');
        await h.truncate(10);
        expect(await h.read(0, 100)).toEqual(Buffer.concat([Buffer.from('[Zon'), Buffer.alloc(6)]));
        info = await h.info();
        expect(info.size).toBe(10);
        expect(await codeOf(h.list(undefined, 10))).toBe('EINVAL');
        expect(await codeOf(h.read(-1, 1))).toBe('EINVAL');
        await h.flush();
        await h.close();
        await h.close();
        expect(await codeOf(h.read(0, 1))).not.toBe('OK');
        // The unnamed stream and the object's size are untouched.
        expect((await readAll(share, 'f')).toString()).toBe('base data');
        expect((await share.stat('f')).info.size).toBe(9);
        expect((await readStream(share, 'F', 'zone.identifier')).length).toBe(10);
      });

      it('open modes apply to the stream', async () => {
        await makeFile(share, 'f', 'base');
        expect(await codeOf(share.open('f', { mode: 'open', write: false, stream: 's' }))).toBe('ENOENT');
        expect(await codeOf(share.open('f', { mode: 'truncate', write: true, stream: 's' }))).toBe('ENOENT');
        const expected = {
          openOrCreate: ['created', 'opened', 3],
          truncateOrCreate: ['created', 'truncated', 0],
          replace: ['created', 'replaced', 0],
          create: ['created', 'EEXIST', 3],
        } as const;
        for (const [mode, [first, second, size]] of Object.entries(expected)) {
          const stream = `s-${mode}`;
          const a = await share.open('f', { mode: mode as keyof typeof expected, write: true, stream });
          expect(a.action, mode).toBe(first);
          await a.handle.write(0, Buffer.from('abc'));
          await a.handle.close();
          if (second === 'EEXIST') {
            expect(await codeOf(share.open('f', { mode: 'create', write: true, stream }))).toBe('EEXIST');
            continue;
          }
          const b = await share.open('f', { mode: mode as keyof typeof expected, write: true, stream });
          expect(b.action, mode).toBe(second);
          expect((await b.handle.info()).size, mode).toBe(size);
          await b.handle.close();
        }
        const t = await share.open('f', { mode: 'truncate', write: true, stream: 's-create' });
        expect(t.action).toBe('truncated');
        expect((await t.handle.info()).size).toBe(0);
        await t.handle.close();
        // Opening streams never touched the unnamed data.
        expect((await readAll(share, 'f')).toString()).toBe('base');
        // A stream is never a directory.
        expect(await codeOf(share.open('f', { mode: 'openOrCreate', directory: true, write: true, stream: 'x' }))).toBe('ENOTDIR');
        const r = await share.open('f', { mode: 'open', directory: false, write: false, stream: 's-create' });
        await r.handle.close();
      });

      it('a stream of a missing object: ENOENT to open, creates the file to create', async () => {
        expect(await codeOf(share.open('m', { mode: 'open', write: false, stream: 's' }))).toBe('ENOENT');
        expect(await codeOf(share.open('m', { mode: 'truncate', write: true, stream: 's' }))).toBe('ENOENT');
        expect(await codeOf(share.stat('m'))).toBe('ENOENT');
        expect(await codeOf(share.open('nodir/m', { mode: 'create', write: true, stream: 's' }))).toBe('ENOENT');
        const sd = randomBytes(40);
        const r = await share.open('m', { mode: 'create', write: true, stream: 'S', attributes: FileAttr.HIDDEN, securityDescriptor: sd });
        expect(r.action).toBe('created');
        expect(r.path).toBe('m');
        await r.handle.write(0, Buffer.from('stream'));
        const info = await r.handle.info();
        expect(info.attributes).toBe(FileAttr.HIDDEN);
        expect(info.size).toBe(6);
        expect(await r.handle.getSecurity()).toEqual(sd);
        await r.handle.close();
        const st = await share.stat('m');
        expect(st.info.isDirectory).toBe(false);
        expect(st.info.size).toBe(0);
        expect(st.info.fileId).toBe(r.handle.fileId);
        expect(await streamsOf(share, 'm')).toEqual(['S=6']);
        for (const mode of ['openOrCreate', 'truncateOrCreate', 'replace'] as const) {
          const c = await share.open(`m-${mode}`, { mode, write: true, stream: 'x' });
          expect(c.action, mode).toBe('created');
          await c.handle.close();
          expect((await share.stat(`m-${mode}`)).info.isDirectory).toBe(false);
        }
      });

      it('names: case-insensitive, case-preserving, checked', async () => {
        await makeFile(share, 'f');
        await makeStream(share, 'f', 'MixedCase', 'v1');
        const r = await share.open('F', { mode: 'openOrCreate', write: true, stream: 'MIXEDCASE' });
        expect(r.action).toBe('opened');
        expect(r.stream).toBe('MixedCase');
        expect(r.handle.stream).toBe('MixedCase');
        await r.handle.close();
        expect(await codeOf(share.open('f', { mode: 'create', write: true, stream: 'mixedcase' }))).toBe('EEXIST');
        await makeStream(share, 'f', 'Ärger-ñ', 'u');
        expect((await readStream(share, 'f', 'äRGER-Ñ')).toString()).toBe('u');
        expect(await streamsOf(share, 'f')).toEqual(['MixedCase=2', 'Ärger-ñ=1']);
        for (const bad of ['', 'a:b', 'a/b', 'a\\b', 'a\u0000b', ':', '$DATA:x']) {
          expect(await codeOf(share.open('f', { mode: 'openOrCreate', write: true, stream: bad })), JSON.stringify(bad)).toBe('EINVAL');
          expect(await codeOf(share.removeStream('f', bad)), JSON.stringify(bad)).toBe('EINVAL');
          expect(await codeOf(share.renameStream('f', 'MixedCase', bad, false)), JSON.stringify(bad)).toBe('EINVAL');
        }
        expect(await codeOf(share.open('f', { mode: 'create', write: true, stream: 'n'.repeat(256) }))).toBe('ENAMETOOLONG');
        // 255 units of 3-byte UTF-8 characters: a stream name is not a host name.
        const long = '\u20ac'.repeat(255);
        await makeStream(share, 'f', long, 'euro');
        expect((await readStream(share, 'f', long)).toString()).toBe('euro');
        // Names other file systems treat specially are ordinary stream names.
        for (const odd of ['$DATA', '.', '..', ' spaced ', '*?<>|"', '\u0001']) await makeStream(share, 'f', odd, odd);
        const names = (await streamsOf(share, 'f')).map((e) => e.slice(0, e.lastIndexOf('=')));
        expect(names).toEqual(expect.arrayContaining([long, '$DATA', '.', '..', ' spaced ', '*?<>|"', '\u0001']));
        expect(names.length).toBe(9);
        expect((await readStream(share, 'f', '..')).toString()).toBe('..');
      });

      it('listStreams reports names as stored and sizes; none for a fresh file', async () => {
        await makeFile(share, 'f', 'unnamed');
        expect(await streamsOf(share, 'f')).toEqual([]);
        await makeStream(share, 'f', 'one', '1');
        await makeStream(share, 'f', 'Two', '22');
        await makeStream(share, 'f', 'empty');
        const { handle } = await share.open('f', { mode: 'open', write: false });
        const list = await handle.listStreams();
        expect(list.map((e) => e.name).sort()).toEqual(['Two', 'empty', 'one']);
        for (const e of list) {
          expect(e.allocationSize).toBeGreaterThanOrEqual(0);
          expect(Number.isSafeInteger(e.allocationSize)).toBe(true);
        }
        await handle.close();
        expect(await streamsOf(share, 'f')).toEqual(['Two=2', 'empty=0', 'one=1']);
        // A stream handle lists its object's streams.
        const s = await share.open('f', { mode: 'open', write: false, stream: 'one' });
        expect((await s.handle.listStreams()).map((e) => e.name).sort()).toEqual(['Two', 'empty', 'one']);
        await s.handle.close();
      });

      it('directories and the root have streams, and stay empty directories', async () => {
        const id = await makeDir(share, 'd');
        const r = await share.open('d', { mode: 'create', write: true, stream: 'ds' });
        expect(r.handle.isDirectory).toBe(false);
        expect(r.handle.fileId).toBe(id);
        await r.handle.write(0, Buffer.from('dir stream'));
        const info = await r.handle.info();
        expect(info.isDirectory).toBe(false);
        expect(info.size).toBe(10);
        expect(info.attributes & FileAttr.DIRECTORY).toBe(FileAttr.DIRECTORY);
        await r.handle.close();
        expect(await streamsOf(share, 'd')).toEqual(['ds=10']);
        const dh = await share.open('d', { mode: 'open', write: false });
        expect(await listAll(dh.handle, 10)).toEqual([]);
        await dh.handle.close();
        await makeStream(share, '', 'rootstream', 'r');
        expect(await streamsOf(share, '')).toEqual(['rootstream=1']);
        const root = await share.open('', { mode: 'open', write: false });
        expect(await listAll(root.handle, 100)).toEqual(['d']);
        await root.handle.close();
        await share.remove('d');
        expect(await codeOf(share.stat('d'))).toBe('ENOENT');
        await makeDir(share, 'd');
        expect(await streamsOf(share, 'd')).toEqual([]);
      });

      it('a stream handle sets and reads the object\'s attributes, times and security', async () => {
        const id = await makeFile(share, 'f');
        const { handle } = await share.open('f', { mode: 'create', write: true, stream: 's' });
        await handle.setInfo({ attributes: FileAttr.HIDDEN, creationTimeNs: 1_000_000_000_000_000_000n });
        const sd = randomBytes(64);
        await handle.setSecurity(sd);
        expect(await handle.getSecurity()).toEqual(sd);
        await handle.close();
        const st = await share.stat('f');
        expect(st.info.fileId).toBe(id);
        expect(st.info.attributes).toBe(FileAttr.HIDDEN);
        expect(st.info.creationTimeNs).toBe(1_000_000_000_000_000_000n);
        const o = await share.open('f', { mode: 'open', write: false });
        expect(await o.handle.getSecurity()).toEqual(sd);
        await o.handle.close();
        const ro = await share.open('f', { mode: 'open', write: false, stream: 's' });
        expect(await codeOf(ro.handle.write(0, Buffer.from('x')))).toBe('EACCES');
        expect(await codeOf(ro.handle.truncate(0))).toBe('EACCES');
        expect(await codeOf(ro.handle.setInfo({ attributes: 0 }))).toBe('EACCES');
        await ro.handle.close();
      });

      it('removeStream removes one stream; ENOENT for a missing stream or object', async () => {
        await makeFile(share, 'f', 'base');
        await makeStream(share, 'f', 'a', 'A');
        await makeStream(share, 'f', 'b', 'B');
        await share.removeStream('F', 'A');
        expect(await streamsOf(share, 'f')).toEqual(['b=1']);
        expect(await codeOf(share.open('f', { mode: 'open', write: false, stream: 'a' }))).toBe('ENOENT');
        expect(await codeOf(share.removeStream('f', 'a'))).toBe('ENOENT');
        expect(await codeOf(share.removeStream('missing', 'a'))).toBe('ENOENT');
        expect(await codeOf(share.removeStream('f/x', 'a'))).toBe('ENOTDIR');
        await makeFile(share, 'g');
        expect(await codeOf(share.removeStream('g', 'a'))).toBe('ENOENT');
        // Re-created, it starts empty.
        await makeStream(share, 'f', 'a');
        expect((await readStream(share, 'f', 'a')).length).toBe(0);
        expect((await readAll(share, 'f')).toString()).toBe('base');
      });

      it('renameStream: new name, EEXIST without replace, replace, case-only, ENOENT', async () => {
        await makeFile(share, 'f');
        await makeStream(share, 'f', 'src', 'source');
        await makeStream(share, 'f', 'dst', 'target');
        const held = await share.open('f', { mode: 'open', write: true, stream: 'src' });
        await share.renameStream('f', 'SRC', 'moved', false);
        expect(await streamsOf(share, 'f')).toEqual(['dst=6', 'moved=6']);
        expect(await codeOf(share.open('f', { mode: 'open', write: false, stream: 'src' }))).toBe('ENOENT');
        // An open handle follows its stream.
        await held.handle.write(6, Buffer.from('!'));
        await held.handle.close();
        expect((await readStream(share, 'f', 'moved')).toString()).toBe('source!');
        expect(await codeOf(share.renameStream('f', 'moved', 'DST', false))).toBe('EEXIST');
        expect((await readStream(share, 'f', 'dst')).toString()).toBe('target');
        await share.renameStream('f', 'moved', 'DST', true);
        expect(await streamsOf(share, 'f')).toEqual(['DST=7']);
        expect((await readStream(share, 'f', 'dst')).toString()).toBe('source!');
        await share.renameStream('f', 'dst', 'Dst', false); // case only
        expect(await streamsOf(share, 'f')).toEqual(['Dst=7']);
        await share.renameStream('f', 'DST', 'Dst', false); // no change at all
        expect(await streamsOf(share, 'f')).toEqual(['Dst=7']);
        expect(await codeOf(share.renameStream('f', 'nope', 'x', true))).toBe('ENOENT');
        expect(await codeOf(share.renameStream('missing', 'dst', 'x', true))).toBe('ENOENT');
        expect(await streamsOf(share, 'f')).toEqual(['Dst=7']);
      });

      it('streams follow the object: kept by rename, removed with it, dropped by overwrite', async () => {
        await makeDir(share, 'dir');
        const id = await makeFile(share, 'f', 'base');
        await makeStream(share, 'f', 's', 'stream data');
        await share.rename('f', 'dir/g', false);
        expect(await streamsOf(share, 'dir/g')).toEqual(['s=11']);
        expect((await readStream(share, 'dir/g', 's')).toString()).toBe('stream data');
        expect((await share.stat('dir/g')).info.fileId).toBe(id);
        // A directory rename carries its children's streams and its own.
        await makeStream(share, 'dir', 'ds', 'x');
        await share.rename('dir', 'dir2', false);
        expect(await streamsOf(share, 'dir2/g')).toEqual(['s=11']);
        expect(await streamsOf(share, 'dir2')).toEqual(['ds=1']);
        // Removing the object removes its streams: the same name starts without any.
        await share.remove('dir2/g');
        await makeFile(share, 'dir2/g');
        expect(await streamsOf(share, 'dir2/g')).toEqual([]);
        expect(await codeOf(share.open('dir2/g', { mode: 'open', write: false, stream: 's' }))).toBe('ENOENT');
        // A replacing rename drops the replaced object's streams and keeps the source's.
        await makeFile(share, 'a');
        await makeStream(share, 'a', 'fromA', 'a');
        await makeFile(share, 'b');
        await makeStream(share, 'b', 'fromB', 'b');
        await share.rename('a', 'b', true);
        expect(await streamsOf(share, 'b')).toEqual(['fromA=1']);
        // Overwriting (truncate, replace) the unnamed stream drops the named ones; open keeps them.
        for (const mode of ['truncate', 'truncateOrCreate', 'replace'] as const) {
          await makeStream(share, 'b', 'x', 'x');
          const o = await share.open('b', { mode: 'open', write: true });
          await o.handle.close();
          expect((await streamsOf(share, 'b')).length, mode).toBeGreaterThan(0);
          const t = await share.open('b', { mode, write: true });
          await t.handle.close();
          expect(await streamsOf(share, 'b'), mode).toEqual([]);
        }
      });

      it(`at most ${IOS_STREAMS_PER_OBJECT_MAX} streams per object`, async () => {
        await makeFile(share, 'f');
        const ids = Array.from({ length: IOS_STREAMS_PER_OBJECT_MAX }, (_, i) => i);
        for (let i = 0; i < ids.length; i += 64) {
          await Promise.all(ids.slice(i, i + 64).map((n) => makeStream(share, 'f', `s${n}`)));
        }
        expect(await codeOf(share.open('f', { mode: 'create', write: true, stream: 'one-more' }))).toBe('ENOSPC');
        expect(await codeOf(share.open('f', { mode: 'openOrCreate', write: true, stream: 'one-more' }))).toBe('ENOSPC');
        const { handle } = await share.open('f', { mode: 'open', write: false });
        expect((await handle.listStreams()).length).toBe(IOS_STREAMS_PER_OBJECT_MAX);
        await handle.close();
        // Existing ones still open; after a removal there is room again.
        const r = await share.open('f', { mode: 'openOrCreate', write: true, stream: 'S7' });
        expect(r.action).toBe('opened');
        await r.handle.close();
        await share.removeStream('f', 's0');
        await makeStream(share, 'f', 'one-more');
        expect(await codeOf(share.open('f', { mode: 'create', write: true, stream: 'two-more' }))).toBe('ENOSPC');
        // The bound is per object.
        await makeStream(share, 'g', 'first');
        expect(await streamsOf(share, 'g')).toEqual(['first=0']);
      });

      it('concurrent creates of one name in different case make one stream', async () => {
        await makeFile(share, 'f');
        const results = await Promise.all(
          ['race', 'RACE', 'Race', 'rAcE'].map((stream) => share.open('f', { mode: 'openOrCreate', write: true, stream })),
        );
        expect(results.filter((r) => r.action === 'created').length).toBe(1);
        await Promise.all(results.map((r, i) => r.handle.write(i, Buffer.from([0x41 + i]))));
        await Promise.all(results.map((r) => r.handle.close()));
        expect(await streamsOf(share, 'f')).toHaveLength(1);
        expect((await readStream(share, 'f', 'race')).toString()).toBe('ABCD');
        const many = await Promise.all(Array.from({ length: 20 }, (_, i) => share.open('f', { mode: 'openOrCreate', write: true, stream: `c${i % 5}` })));
        await Promise.all(many.map((r) => r.handle.close()));
        expect(await streamsOf(share, 'f')).toHaveLength(6);
      });

      it('streams persist across a restart; a read-only share reads them and refuses changes', async () => {
        await makeFile(share, 'f', 'base');
        const data = randomBytes(256 * 1024 + 3);
        const { handle } = await share.open('f', { mode: 'create', write: true, stream: 'Big' });
        await handle.write(0, data);
        await handle.flush();
        await handle.close();
        await makeStream(share, '', 'root', 'r');
        await reopen();
        expect(await streamsOf(share, 'f')).toEqual([`Big=${data.length}`]);
        expect((await readStream(share, 'f', 'big')).equals(data)).toBe(true);
        await reopen({ readOnly: true });
        expect((await readStream(share, 'f', 'BIG')).equals(data)).toBe(true);
        expect(await streamsOf(share, '')).toEqual(['root=1']);
        expect(await codeOf(share.open('f', { mode: 'open', write: true, stream: 'big' }))).toBe('EROFS');
        expect(await codeOf(share.open('f', { mode: 'openOrCreate', write: false, stream: 'new' }))).toBe('EROFS');
        expect(await codeOf(share.open('f', { mode: 'truncate', write: false, stream: 'big' }))).toBe('EROFS');
        expect(await codeOf(share.removeStream('f', 'big'))).toBe('EROFS');
        expect(await codeOf(share.renameStream('f', 'big', 'other', false))).toBe('EROFS');
        const ro = await share.open('f', { mode: 'open', write: false, stream: 'big' });
        expect(await codeOf(ro.handle.write(0, Buffer.from('x')))).toBe('EROFS');
        expect(await codeOf(ro.handle.truncate(0))).toBe('EROFS');
        await ro.handle.close();
        await reopen();
        expect((await readStream(share, 'f', 'big')).equals(data)).toBe(true);
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
