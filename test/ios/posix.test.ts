import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { FileAttr, IOS_SPI_VERSION, IosError, type IosShare } from '../../src/ios/spi.js';
import { posixDriver } from '../../src/ios/posix/index.js';
import { toIosError } from '../../src/ios/posix/errno.js';
import { LmdbMetaStore } from '../../src/ios/posix/sidecar.js';
import { NameIndexCache } from '../../src/ios/posix/name-index.js';
import { streamKeyOf } from '../../src/ios/posix/streams.js';
import { codeOf, runIosConformance, type IosFixture } from './conformance.js';

async function posixFixture(): Promise<IosFixture> {
  const root = await mkdtemp(join(tmpdir(), 'tessera-ios-'));
  const fx: IosFixture = {
    share: await posixDriver.openShare(root, {}),
    async reopen(options = {}) {
      await fx.share.close();
      fx.share = await posixDriver.openShare(root, options);
      return fx.share;
    },
    async cleanup() {
      await fx.share.close();
      await rm(root, { recursive: true, force: true });
    },
  };
  return fx;
}

runIosConformance('posix', posixFixture);

describe('posix driver specifics', () => {
  let root: string;
  let outside: string;
  let share: IosShare;
  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'tessera-posix-'));
    outside = await mkdtemp(join(tmpdir(), 'tessera-outside-'));
    fs.writeFileSync(join(outside, 'secret'), 'top secret');
    share = await posixDriver.openShare(root, {});
  });
  afterEach(async () => {
    await share.close();
    await rm(root, { recursive: true, force: true });
    await rm(outside, { recursive: true, force: true });
  });

  it('identifies itself', () => {
    expect(posixDriver.name).toBe('posix');
    expect(posixDriver.spiVersion).toBe(IOS_SPI_VERSION);
  });

  it('openShare checks that the root exists and is a directory', async () => {
    expect(await codeOf(posixDriver.openShare(join(root, 'missing'), {}))).toBe('ENOENT');
    fs.writeFileSync(join(root, 'file'), '');
    expect(await codeOf(posixDriver.openShare(join(root, 'file'), {}))).toBe('ENOTDIR');
  });

  describe('symlinks never lead out of the share', () => {
    it('a symlink to /etc can be neither read nor listed', async () => {
      fs.symlinkSync('/etc', join(root, 'etc'));
      fs.symlinkSync('/etc/passwd', join(root, 'passwd'));
      expect(await codeOf(share.stat('etc'))).toBe('ENOENT');
      expect(await codeOf(share.stat('ETC'))).toBe('ENOENT');
      expect(await codeOf(share.stat('etc/passwd'))).toBe('ENOENT');
      expect(await codeOf(share.open('etc/passwd', { mode: 'open', write: false }))).toBe('ENOENT');
      expect(await codeOf(share.open('etc', { mode: 'open', directory: true, write: false }))).toBe('ENOENT');
      expect(await codeOf(share.open('passwd', { mode: 'open', write: false }))).toBe('ENOENT');
      expect(await codeOf(share.open('Passwd', { mode: 'open', write: false }))).toBe('ENOENT');
      // Creating over the link is refused, never followed.
      expect(await codeOf(share.open('passwd', { mode: 'openOrCreate', write: true }))).toBe('EACCES');
      expect(await codeOf(share.open('passwd', { mode: 'truncateOrCreate', write: true }))).toBe('EACCES');
      expect(await codeOf(share.open('etc/newfile', { mode: 'create', write: true }))).toBe('ENOENT');
      expect(await codeOf(share.rename('etc/passwd', 'stolen', false))).toBe('ENOENT');
      expect(await codeOf(share.remove('etc/passwd'))).toBe('ENOENT');
      const { handle } = await share.open('', { mode: 'open', write: false });
      const page = await handle.list(undefined, 100);
      expect(page.entries.map((e) => e.name)).toEqual([]);
      await handle.close();
      expect(fs.readFileSync('/etc/passwd').length).toBeGreaterThan(0);
    });

    it('a symlinked directory component is not traversed (inside or outside targets)', async () => {
      fs.mkdirSync(join(root, 'real'));
      fs.writeFileSync(join(root, 'real', 'inner'), 'inner');
      fs.symlinkSync(join(root, 'real'), join(root, 'alias')); // points inside the share
      fs.symlinkSync(outside, join(root, 'out')); // points outside
      fs.mkdirSync(join(root, 'sub'));
      fs.symlinkSync('../../' + outside.split('/').pop(), join(root, 'sub', 'rel')); // relative escape
      expect((await share.stat('real/inner')).path).toBe('real/inner');
      for (const p of ['alias/inner', 'out/secret', 'OUT/SECRET', 'sub/rel/secret']) {
        expect(await codeOf(share.stat(p)), p).toBe('ENOENT');
        expect(await codeOf(share.open(p, { mode: 'open', write: false })), p).toBe('ENOENT');
        expect(await codeOf(share.open(p, { mode: 'openOrCreate', write: true })), p).toBe('ENOENT');
      }
      expect(await codeOf(share.open('out/planted', { mode: 'create', write: true }))).toBe('ENOENT');
      expect(await codeOf(share.rename('real/inner', 'out/inner', false))).toBe('ENOENT');
      expect(fs.existsSync(join(outside, 'planted'))).toBe(false);
      expect(fs.existsSync(join(outside, 'inner'))).toBe(false);
      const { handle } = await share.open('sub', { mode: 'open', write: false });
      expect((await handle.list(undefined, 10)).entries).toEqual([]);
      await handle.close();
      expect(fs.readFileSync(join(outside, 'secret'), 'utf8')).toBe('top secret');
    });

    it('random paths only ever resolve inside the share or reject with IosError', async () => {
      fs.mkdirSync(join(root, 'a'));
      fs.symlinkSync(outside, join(root, 'a', 'l'));
      fs.symlinkSync('/etc', join(root, 'e'));
      const before = fs.readdirSync(outside).sort();
      const piece = fc.constantFrom('a', 'A', 'l', 'L', 'e', '..', '.', '', 'x', ':', '\\', '\u0000', '.tessera', 'secret', '/');
      await fc.assert(
        fc.asyncProperty(fc.array(piece, { maxLength: 6 }), fc.constantFrom('stat', 'open', 'create', 'mkdir', 'remove', 'rename'), async (pieces, op) => {
          const path = pieces.join(pieces.length % 2 === 0 ? '/' : '');
          try {
            if (op === 'stat') await share.stat(path);
            else if (op === 'open') await (await share.open(path, { mode: 'open', write: false })).handle.close();
            else if (op === 'create') await (await share.open(path, { mode: 'openOrCreate', write: true })).handle.close();
            else if (op === 'mkdir') await (await share.open(path, { mode: 'openOrCreate', directory: true, write: false })).handle.close();
            else if (op === 'remove') await share.remove(path);
            else await share.rename(path, 'a/moved', true);
          } catch (err) {
            if (!(err instanceof IosError)) throw err;
          }
        }),
        { numRuns: 400 },
      );
      expect(fs.readdirSync(outside).sort()).toEqual(before);
      expect(fs.readFileSync(join(outside, 'secret'), 'utf8')).toBe('top secret');
      expect(fs.lstatSync(join(root, 'e')).isSymbolicLink()).toBe(true);
    });

    it('FIFOs and other special files are invisible', async () => {
      const { execFileSync } = await import('node:child_process');
      try {
        execFileSync('mkfifo', [join(root, 'pipe')]);
      } catch {
        return; // no mkfifo on this host
      }
      expect(await codeOf(share.stat('pipe'))).toBe('ENOENT');
      expect(await codeOf(share.open('pipe', { mode: 'open', write: false }))).toBe('ENOENT');
    });
  });

  describe('the state directory', () => {
    it('is hidden from listings and refused in any case', async () => {
      expect(fs.existsSync(join(root, '.tessera', 'meta.lmdb'))).toBe(true);
      for (const p of ['.tessera', '.TESSERA', '.Tessera/meta.lmdb', '.tessera/meta.lmdb']) {
        expect(await codeOf(share.stat(p)), p).toBe('ENOENT');
        expect(await codeOf(share.open(p, { mode: 'open', write: false })), p).toBe('ENOENT');
      }
      expect(await codeOf(share.open('.Tessera', { mode: 'create', directory: true, write: false }))).toBe('EACCES');
      expect(await codeOf(share.open('.tessera/x', { mode: 'create', write: true }))).toBe('ENOENT');
      expect(await codeOf(share.remove('.tessera'))).toBe('ENOENT');
      fs.writeFileSync(join(root, 'f'), '');
      expect(await codeOf(share.rename('f', '.TESSERA', true))).toBe('EACCES');
      expect(await codeOf(share.rename('.tessera', 'x', false))).toBe('ENOENT');
      const { handle } = await share.open('', { mode: 'open', write: false });
      expect((await handle.list(undefined, 100)).entries.map((e) => e.name)).toEqual(['f']);
      await handle.close();
      // Only at the root: a subdirectory may hold a .tessera of its own.
      fs.mkdirSync(join(root, 'd'));
      const r = await share.open('d/.tessera', { mode: 'create', write: true });
      expect(r.path).toBe('d/.tessera');
      await r.handle.close();
    });

    it('stateDir moves the sidecar out of the share', async () => {
      const other = await mkdtemp(join(tmpdir(), 'tessera-state-'));
      const root2 = await mkdtemp(join(tmpdir(), 'tessera-root2-'));
      try {
        const opts = { stateDir: other } as { readOnly?: boolean };
        let s = await posixDriver.openShare(root2, opts);
        const { handle } = await s.open('f', { mode: 'create', write: true, attributes: FileAttr.HIDDEN });
        await handle.close();
        await s.close();
        expect(fs.existsSync(join(root2, '.tessera'))).toBe(false);
        expect(fs.existsSync(join(other, 'meta.lmdb'))).toBe(true);
        s = await posixDriver.openShare(root2, opts);
        expect((await s.stat('f')).info.attributes).toBe(FileAttr.HIDDEN);
        await s.close();
      } finally {
        await rm(other, { recursive: true, force: true });
        await rm(root2, { recursive: true, force: true });
      }
    });

    it('a read-only share without a sidecar creates none and reports defaults', async () => {
      const root2 = await mkdtemp(join(tmpdir(), 'tessera-ro-'));
      try {
        fs.writeFileSync(join(root2, 'f'), 'x');
        const s = await posixDriver.openShare(root2, { readOnly: true });
        expect((await s.stat('F')).info.attributes).toBe(FileAttr.ARCHIVE);
        await s.close();
        expect(fs.existsSync(join(root2, '.tessera'))).toBe(false);
      } finally {
        await rm(root2, { recursive: true, force: true });
      }
    });
  });

  describe('case-insensitive lookup details', () => {
    it('exact case wins when two stored names fold equal', async () => {
      fs.writeFileSync(join(root, 'abc'), 'lower');
      fs.writeFileSync(join(root, 'ABC'), 'upper');
      expect((await share.stat('abc')).path).toBe('abc');
      expect((await share.stat('ABC')).path).toBe('ABC');
      expect(['abc', 'ABC']).toContain((await share.stat('Abc')).path);
      // Removing one leaves the other reachable in any case.
      await share.remove('abc');
      expect((await share.stat('aBC')).path).toBe('ABC');
    });

    it('notices names created and removed by other programs', async () => {
      fs.mkdirSync(join(root, 'd'));
      expect(await codeOf(share.stat('d/EXTERNAL'))).toBe('ENOENT'); // builds the index
      await new Promise((r) => setTimeout(r, 20)); // let the directory mtime tick
      fs.writeFileSync(join(root, 'd', 'External'), '');
      expect((await share.stat('d/EXTERNAL')).path).toBe('d/External');
      await new Promise((r) => setTimeout(r, 20));
      fs.renameSync(join(root, 'd', 'External'), join(root, 'd', 'Renamed'));
      expect(await codeOf(share.stat('d/EXTERNAL'))).toBe('ENOENT');
      expect((await share.stat('d/RENAMED')).path).toBe('d/Renamed');
    });

    it('keeps its index current through its own create, rename and remove', async () => {
      fs.mkdirSync(join(root, 'd'));
      expect(await codeOf(share.stat('d/X'))).toBe('ENOENT');
      for (let i = 0; i < 20; i++) {
        const r = await share.open(`d/Name${i}`, { mode: 'create', write: false });
        await r.handle.close();
        expect((await share.stat(`d/NAME${i}`)).path).toBe(`d/Name${i}`);
      }
      await share.rename('d/name3', 'd/Other3', false);
      expect((await share.stat('d/OTHER3')).path).toBe('d/Other3');
      expect(await codeOf(share.stat('d/NAME3'))).toBe('ENOENT');
      await share.remove('d/name4');
      expect(await codeOf(share.stat('d/NAME4'))).toBe('ENOENT');
      await share.rename('d/name5', 'd/NAME5', false);
      expect((await share.stat('d/name5')).path).toBe('d/NAME5');
    });

    it('replacing rename onto a differently-cased target takes the new case', async () => {
      fs.writeFileSync(join(root, 'src'), 'new');
      fs.writeFileSync(join(root, 'Target'), 'old');
      await share.rename('src', 'TARGET', true);
      expect(fs.readdirSync(root).filter((n) => n !== '.tessera')).toEqual(['TARGET']);
      expect(fs.readFileSync(join(root, 'TARGET'), 'utf8')).toBe('new');
    });

    it('the index cache is bounded (LRU) and rebuilds on a foreign mtime', async () => {
      const cache = new NameIndexCache(2);
      const dirs = ['a', 'b', 'c'].map((n) => {
        fs.mkdirSync(join(root, n));
        fs.writeFileSync(join(root, n, 'File'), '');
        return join(root, n);
      });
      for (const d of dirs) {
        const st = fs.lstatSync(d, { bigint: true });
        expect(await cache.candidates(d, st, false, 'FILE')).toEqual(['File']);
      }
      expect(cache.size).toBe(2);
    });
  });

  describe('metadata sidecar', () => {
    it('ignores a record whose birth time does not match (inode reuse)', async () => {
      const dir = await mkdtemp(join(tmpdir(), 'tessera-meta-'));
      try {
        const store = LmdbMetaStore.open(join(dir, 'meta.lmdb'), false);
        await store.update(42n, 1000n, { attributes: FileAttr.HIDDEN, creationTimeNs: 5n });
        expect(store.get(42n, 1000n)).toEqual({ attributes: FileAttr.HIDDEN, creationTimeNs: 5n });
        expect(store.get(42n, 1001n)).toBeUndefined();
        // An update for the new object starts from scratch, not from the stale record.
        await store.update(42n, 1001n, { securityDescriptor: Buffer.from('sd') });
        expect(store.get(42n, 1001n)).toEqual({ securityDescriptor: Buffer.from('sd') });
        expect(store.get(42n, 1000n)).toBeUndefined();
        await store.update(42n, 1001n, { securityDescriptor: null });
        expect(store.get(42n, 1001n)).toBeUndefined();
        // Concurrent updates of one record both land.
        await Promise.all([store.update(7n, 1n, { attributes: 2 }), store.update(7n, 1n, { creationTimeNs: 9n })]);
        expect(store.get(7n, 1n)).toEqual({ attributes: 2, creationTimeNs: 9n });
        await store.close();
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });

    it('an inode reused outside the server does not inherit attributes', async () => {
      const { handle } = await share.open('victim', { mode: 'create', write: true, attributes: FileAttr.HIDDEN | FileAttr.SYSTEM });
      const id = handle.fileId;
      await handle.close();
      fs.unlinkSync(join(root, 'victim'));
      // ext4 and friends usually hand the freed inode to the next file created in the directory.
      let reusedBy: string | undefined;
      for (let i = 0; i < 50 && reusedBy === undefined; i++) {
        const p = join(root, `n${i}`);
        fs.writeFileSync(p, '');
        if (fs.statSync(p, { bigint: true }).ino === id) reusedBy = `n${i}`;
      }
      if (reusedBy === undefined) {
        console.log('inode not reused on this file system; guard covered by the sidecar unit test');
        return;
      }
      const st = await share.stat(reusedBy);
      expect(st.info.fileId).toBe(id);
      expect(st.info.attributes).toBe(FileAttr.ARCHIVE);
    });

    it('default creation time is the birth time; remove() drops the record', async () => {
      const { handle } = await share.open('c', { mode: 'create', write: true, attributes: FileAttr.HIDDEN });
      const birth = fs.statSync(join(root, 'c'), { bigint: true }).birthtimeNs;
      const info = await handle.info();
      expect(info.creationTimeNs).toBe(birth !== 0n ? birth : info.creationTimeNs);
      await handle.write(0, Buffer.from('later'));
      expect((await handle.info()).creationTimeNs).toBe(info.creationTimeNs);
      const id = handle.fileId;
      await handle.close();
      await share.remove('c');
      await share.close();
      const store = LmdbMetaStore.open(join(root, '.tessera', 'meta.lmdb'), true);
      try {
        expect(store.get(id, birth)).toBeUndefined();
      } finally {
        await store.close();
      }
      share = await posixDriver.openShare(root, {});
    });
  });

  describe('named streams storage', () => {
    const streamsDir = () => join(root, '.tessera', 'streams');
    async function idOf(path: string): Promise<bigint> {
      return (await share.stat(path)).info.fileId;
    }
    async function names(path: string): Promise<string[]> {
      const { handle } = await share.open(path, { mode: 'open', write: false });
      try {
        return (await handle.listStreams()).map((e) => e.name).sort();
      } finally {
        await handle.close();
      }
    }
    async function put(path: string, stream: string, data: string): Promise<void> {
      const { handle } = await share.open(path, { mode: 'openOrCreate', write: true, stream });
      await handle.write(0, Buffer.from(data));
      await handle.close();
    }

    it('keeps streams under <state>/streams/<fileId>/, out of the share and keyed by the folded name', async () => {
      await put('f', 'Zone.Identifier', 'zone');
      const id = await idOf('f');
      const dir = join(streamsDir(), id.toString());
      const st = fs.statSync(join(root, 'f'), { bigint: true });
      expect(fs.readFileSync(join(dir, 'birth'), 'utf8')).toBe(st.birthtimeNs.toString());
      const key = streamKeyOf('zone.identifier');
      expect(key).toBe(streamKeyOf('ZONE.IDENTIFIER'));
      expect(fs.readFileSync(join(dir, key), 'utf8')).toBe('zone');
      expect(fs.readFileSync(join(dir, `${key}.name`), 'utf16le')).toBe('Zone.Identifier');
      expect(fs.readdirSync(dir).sort()).toEqual([key, `${key}.name`, 'birth'].sort());
      // Nothing in the visible tree.
      expect(fs.readdirSync(root).sort()).toEqual(['.tessera', 'f']);
      expect(fs.readFileSync(join(root, 'f'), 'utf8')).toBe('');
      // A file that never had a stream has no directory.
      const { handle } = await share.open('plain', { mode: 'create', write: true });
      await handle.close();
      expect(fs.existsSync(join(streamsDir(), (await idOf('plain')).toString()))).toBe(false);
    });

    it('removing or replacing an object through the driver deletes its stream directory', async () => {
      await put('f', 's', 'x');
      const dirF = join(streamsDir(), (await idOf('f')).toString());
      expect(fs.existsSync(dirF)).toBe(true);
      await share.remove('f');
      expect(fs.existsSync(dirF)).toBe(false);
      await put('a', 's', 'a');
      await put('b', 's', 'b');
      const dirB = join(streamsDir(), (await idOf('b')).toString());
      const dirA = join(streamsDir(), (await idOf('a')).toString());
      await share.rename('a', 'b', true);
      expect(fs.existsSync(dirB)).toBe(false);
      expect(fs.existsSync(dirA)).toBe(true);
      fs.mkdirSync(join(root, 'd'));
      await put('d', 's', 'd');
      const dirD = join(streamsDir(), (await idOf('d')).toString());
      await share.remove('d');
      expect(fs.existsSync(dirD)).toBe(false);
      // A file with another hard link keeps its streams when one name goes.
      await put('h', 's', 'linked');
      fs.linkSync(join(root, 'h'), join(root, 'h2'));
      await share.remove('h');
      expect(await names('h2')).toEqual(['s']);
    });

    it('a stream directory left by an object removed outside the server does not attach to a reused inode', async () => {
      await put('victim', 'secret', 'old stream data');
      const id = await idOf('victim');
      fs.unlinkSync(join(root, 'victim'));
      let reusedBy: string | undefined;
      for (let i = 0; i < 50 && reusedBy === undefined; i++) {
        const p = join(root, `n${i}`);
        fs.writeFileSync(p, '');
        if (fs.statSync(p, { bigint: true }).ino === id) reusedBy = `n${i}`;
      }
      if (reusedBy === undefined) {
        console.log('inode not reused on this file system; guard covered by the forged-birth test');
        return;
      }
      expect(await idOf(reusedBy)).toBe(id);
      expect(await names(reusedBy)).toEqual([]);
      expect(await codeOf(share.open(reusedBy, { mode: 'open', write: false, stream: 'secret' }))).toBe('ENOENT');
      // The first stream of the new object wipes the stale directory.
      await put(reusedBy, 'fresh', 'new');
      expect(await names(reusedBy)).toEqual(['fresh']);
      const r = await share.open(reusedBy, { mode: 'openOrCreate', write: false, stream: 'secret' });
      expect(r.action).toBe('created');
      expect((await r.handle.read(0, 100)).length).toBe(0);
      await r.handle.close();
    });

    it('the birth guard hides a directory whose birth does not match, and the next create replaces it', async () => {
      await put('f', 'one', '1');
      await put('f', 'two', '2');
      const dir = join(streamsDir(), (await idOf('f')).toString());
      fs.writeFileSync(join(dir, 'birth'), '12345');
      expect(await names('f')).toEqual([]);
      expect(await codeOf(share.open('f', { mode: 'open', write: false, stream: 'one' }))).toBe('ENOENT');
      expect(await codeOf(share.removeStream('f', 'one'))).toBe('ENOENT');
      expect(await codeOf(share.renameStream('f', 'one', 'x', false))).toBe('ENOENT');
      await put('f', 'three', '3');
      expect(await names('f')).toEqual(['three']);
      const st = fs.statSync(join(root, 'f'), { bigint: true });
      expect(fs.readFileSync(join(dir, 'birth'), 'utf8')).toBe(st.birthtimeNs.toString());
      expect(fs.existsSync(join(dir, streamKeyOf('one')))).toBe(false);
      // A missing birth file counts as stale too.
      fs.unlinkSync(join(dir, 'birth'));
      expect(await names('f')).toEqual([]);
    });

    it('tolerates debris: orphan name files, data without a name, temp files', async () => {
      await put('f', 'real', 'r');
      const dir = join(streamsDir(), (await idOf('f')).toString());
      fs.writeFileSync(join(dir, `${streamKeyOf('orphan')}.name`), Buffer.from('orphan', 'utf16le'));
      fs.writeFileSync(join(dir, streamKeyOf('nameless')), 'data');
      fs.writeFileSync(join(dir, `${streamKeyOf('wrong')}.name`), Buffer.from('not-wrong', 'utf16le'));
      fs.writeFileSync(join(dir, `${streamKeyOf('odd')}.name`), Buffer.from('odd!', 'latin1').subarray(0, 3));
      fs.writeFileSync(join(dir, streamKeyOf('odd')), 'data');
      fs.writeFileSync(join(dir, streamKeyOf('wrong')), 'data');
      fs.writeFileSync(join(dir, 'birth.tmp'), 'x');
      expect(await names('f')).toEqual(['real']);
      // An orphan name file does not make a stream, and a create over it takes the new case.
      expect(await codeOf(share.open('f', { mode: 'open', write: false, stream: 'orphan' }))).toBe('ENOENT');
      await put('f', 'ORPHAN', 'o');
      expect(await names('f')).toEqual(['ORPHAN', 'real']);
    });

    it('stateDir moves streams with the sidecar', async () => {
      const other = await mkdtemp(join(tmpdir(), 'tessera-state-'));
      const root2 = await mkdtemp(join(tmpdir(), 'tessera-root2-'));
      try {
        const opts = { stateDir: other } as { readOnly?: boolean };
        const s = await posixDriver.openShare(root2, opts);
        const { handle } = await s.open('f', { mode: 'create', write: true, stream: 's' });
        await handle.close();
        await s.close();
        expect(fs.readdirSync(root2)).toEqual(['f']);
        expect(fs.readdirSync(join(other, 'streams')).length).toBe(1);
      } finally {
        await rm(other, { recursive: true, force: true });
        await rm(root2, { recursive: true, force: true });
      }
    });

    it('random stream names are stored, listed and read back exactly, or rejected with EINVAL/ENAMETOOLONG', async () => {
      const { handle } = await share.open('fuzz', { mode: 'create', write: true });
      await handle.close();
      const piece = fc.oneof(fc.string({ maxLength: 8 }), fc.constantFrom(':', '/', '\\', '\u0000', '..', '$DATA', 'ß', '\u{1F600}', '\uD800'));
      await fc.assert(
        fc.asyncProperty(fc.array(piece, { maxLength: 6 }), fc.nat(300), async (pieces, pad) => {
          const name = pieces.join('') + (pad > 250 ? 'p'.repeat(pad) : '');
          try {
            const r = await share.open('fuzz', { mode: 'openOrCreate', write: true, stream: name });
            await r.handle.write(0, Buffer.from('v'));
            await r.handle.close();
          } catch (err) {
            if (!(err instanceof IosError)) throw err;
            expect(['EINVAL', 'ENAMETOOLONG']).toContain(err.code);
            return;
          }
          expect(name.length).toBeLessThanOrEqual(255);
          expect(/[\u0000/\\:]/.test(name)).toBe(false);
          const got = await share.open('fuzz', { mode: 'open', write: false, stream: name });
          expect((await got.handle.read(0, 10)).toString()).toBe('v');
          await got.handle.close();
          expect(got.stream).toBe(name);
          expect(await names('fuzz')).toEqual([name]);
          await share.removeStream('fuzz', name);
        }),
        { numRuns: 200 },
      );
      expect(await names('fuzz')).toEqual([]);
      expect(fs.readdirSync(root).sort()).toEqual(['.tessera', 'fuzz']);
    });
  });

  describe('errors', () => {
    it('maps errno values in one place', () => {
      const e = (code: string) => Object.assign(new Error(code), { code });
      const table: Record<string, string> = {
        ENOENT: 'ENOENT',
        ENOTDIR: 'ENOTDIR',
        EISDIR: 'EISDIR',
        EEXIST: 'EEXIST',
        ENOTEMPTY: 'ENOTEMPTY',
        EACCES: 'EACCES',
        EPERM: 'EACCES',
        EROFS: 'EROFS',
        ENOSPC: 'ENOSPC',
        EDQUOT: 'ENOSPC',
        ENAMETOOLONG: 'ENAMETOOLONG',
        EBUSY: 'EBUSY',
        EINVAL: 'EINVAL',
        EMFILE: 'EIO',
        EIO: 'EIO',
      };
      for (const [errno, code] of Object.entries(table)) expect(toIosError(e(errno), 'x').code, errno).toBe(code);
      const weird = toIosError('boom', 'x');
      expect(weird.code).toBe('EIO');
      expect(weird.cause).toBe('boom');
      const passthrough = new IosError('EBUSY', 'x');
      expect(toIosError(passthrough, 'y')).toBe(passthrough);
    });

    it('a name valid in UTF-16 units but over 255 UTF-8 bytes is ENAMETOOLONG', async () => {
      expect(await codeOf(share.open('é'.repeat(200), { mode: 'create', write: true }))).toBe('ENAMETOOLONG');
    });
  });

  describe('statfs', () => {
    it('names the volume after the directory and reports 512/4096 sectors', async () => {
      const s = await share.statfs();
      expect(s.label).toBe(root.split('/').pop());
      expect(s.sectorBytesLogical).toBe(512);
      expect(s.sectorBytesPhysical).toBe(4096);
      expect(s.supportsSparse).toBe(true);
      const st = fs.statSync(root, { bigint: true });
      expect(s.createdNs).toBe(st.birthtimeNs !== 0n ? st.birthtimeNs : st.mtimeNs);
    });
  });
});
