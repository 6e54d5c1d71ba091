// The posix driver's two syscall modes (src/ios/posix/syscalls.ts): synchronous calls on the event
// loop (default) and thread-pool calls (TESSERA_POSIX_SYNC_IO_BYTES=0). The mode is fixed when the
// module loads, so each mode gets its own module graph (vi.resetModules + dynamic import). The
// conformance suite runs here in the mode the environment did NOT select: posix.test.ts covers the
// other one, so one `vitest run test/ios` exercises both.
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import * as fs from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

type Syscalls = typeof import('../../src/ios/posix/syscalls.js');
type Driver = typeof import('../../src/ios/posix/index.js');
type Conformance = typeof import('./conformance.js');

const envName = 'TESSERA_POSIX_SYNC_IO_BYTES';

async function loadMode(syncBytes: string): Promise<{ sys: Syscalls; driver: Driver; conf: Conformance }> {
  const saved = process.env[envName];
  process.env[envName] = syncBytes;
  try {
    vi.resetModules();
    // conformance.ts is loaded in the same graph so its IosError class is the driver's.
    const [sys, driver, conf] = await Promise.all([
      import('../../src/ios/posix/syscalls.js'),
      import('../../src/ios/posix/index.js'),
      import('./conformance.js'),
    ]);
    return { sys, driver, conf };
  } finally {
    if (saved === undefined) delete process.env[envName];
    else process.env[envName] = saved;
  }
}

function fdIsOpen(fd: number): boolean {
  try {
    fs.fstatSync(fd);
    return true;
  } catch (err) {
    expect((err as { code?: string }).code).toBe('EBADF');
    return false;
  }
}

async function rejectionCode(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    return String((err as { code?: unknown }).code);
  }
  return 'OK';
}

const modes = {
  sync: await loadMode('65536'),
  pool: await loadMode('0'),
};

for (const [label, { sys }] of Object.entries(modes)) {
  describe(`posix syscalls (${label} mode)`, () => {
    let dir: string;
    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), 'tessera-sys-'));
    });
    afterAll(async () => {
      await rm(dir, { recursive: true, force: true });
    });

    it('reads the knob', () => {
      expect(sys.syncSyscalls).toBe(label === 'sync');
      expect(sys.SYNC_IO_BYTES_MAX).toBe(label === 'sync' ? 65536 : 0);
    });

    it('host errors reject with the errno code', async () => {
      const { O_RDONLY, O_NOFOLLOW, O_RDWR, O_CREAT, O_EXCL } = fs.constants;
      expect(await rejectionCode(sys.lstat(join(dir, 'missing')))).toBe('ENOENT');
      expect(await sys.lstatIfExists(join(dir, 'missing'))).toBeUndefined();
      fs.writeFileSync(join(dir, 'f'), 'x');
      expect(await rejectionCode(sys.lstatIfExists(join(dir, 'f', 'below')))).toBe('ENOTDIR');
      fs.symlinkSync(join(dir, 'f'), join(dir, 'link'));
      expect(await rejectionCode(sys.open(join(dir, 'link'), O_RDONLY | O_NOFOLLOW))).toBe('ELOOP');
      expect(await rejectionCode(sys.open(join(dir, 'f'), O_RDWR | O_CREAT | O_EXCL, 0o600))).toBe('EEXIST');
      expect(await rejectionCode(sys.unlink(join(dir, 'missing')))).toBe('ENOENT');
      expect(await rejectionCode(sys.rmdir(join(dir, 'f')))).toBe('ENOTDIR');
      expect(await rejectionCode(sys.mkdir(join(dir, 'f'), 0o700))).toBe('EEXIST');
      expect(await rejectionCode(sys.rename(join(dir, 'missing'), join(dir, 'x')))).toBe('ENOENT');
      expect(await rejectionCode(sys.readdirTyped(join(dir, 'f')))).toBe('ENOTDIR');
      // A sync failure is still a rejection, never a synchronous throw.
      let p: Promise<unknown> | undefined;
      expect(() => {
        p = sys.lstat(join(dir, 'missing'));
      }).not.toThrow();
      await expect(p).rejects.toMatchObject({ code: 'ENOENT' });
    });

    it('metadata calls do what they say', async () => {
      const sub = join(dir, 'meta');
      await sys.mkdir(join(sub, 'a', 'b'), 0o700, true);
      await sys.mkdir(join(sub, 'a', 'b'), 0o700, true); // recursive accepts an existing directory
      const fd = await sys.open(join(sub, 'a', 'file'), fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_EXCL, 0o600);
      expect(await fd.write(Buffer.from('hello world'), 0, 11, 0)).toBe(11);
      await fd.truncate(5);
      await fd.utimes(1_000_000_000, 1_500_000_000.5);
      const st = await fd.stat();
      expect(st.size).toBe(5n);
      expect(st.mtimeNs).toBe(1_500_000_000_500_000_000n);
      await fd.datasync();
      await fd.sync();
      await fd.close();
      expect((await sys.readFile(join(sub, 'a', 'file'), fs.constants.O_RDONLY)).toString()).toBe('hello');
      const names = (await sys.readdirTyped(join(sub, 'a'))).map((d) => `${d.name}:${d.isDirectory() ? 'd' : 'f'}`).sort();
      expect(names).toEqual(['b:d', 'file:f']);
      await sys.rename(join(sub, 'a', 'file'), join(sub, 'a', 'b', 'moved'));
      expect(await sys.readdir(join(sub, 'a', 'b'))).toEqual(['moved']);
      expect((await sys.lstat(join(sub, 'a', 'b', 'moved'))).size).toBe(5n);
      expect((await sys.stat(join(sub, 'a'))).isDirectory()).toBe(true);
      await sys.unlink(join(sub, 'a', 'b', 'moved'));
      await sys.rmdir(join(sub, 'a', 'b'));
      expect(await sys.readdir(join(sub, 'a'))).toEqual([]);
      const sfs = await sys.statfs(dir);
      expect(sfs.bsize).toBeGreaterThan(0);
      await sys.rmTree(sub);
      expect(fs.existsSync(sub)).toBe(false);
    });

    it('readFile reads past a size that grew and files larger than its first buffer', async () => {
      const big = Buffer.alloc(200_000, 7);
      fs.writeFileSync(join(dir, 'big'), big);
      expect((await sys.readFile(join(dir, 'big'), fs.constants.O_RDONLY)).equals(big)).toBe(true);
      fs.writeFileSync(join(dir, 'empty'), '');
      expect((await sys.readFile(join(dir, 'empty'), fs.constants.O_RDONLY)).length).toBe(0);
    });

    it('closes a descriptor exactly once; later operations fail with EBADF', async () => {
      const fd = await sys.open(join(dir, 'once'), fs.constants.O_RDWR | fs.constants.O_CREAT, 0o600);
      const n = fd.fd;
      expect(fdIsOpen(n)).toBe(true);
      const first = fd.close();
      const second = fd.close();
      expect(second).toBe(first);
      await first;
      expect(fd.closed).toBe(true);
      expect(fd.fd).toBe(-1);
      expect(fdIsOpen(n)).toBe(false);
      // Another open may now get number n: the closed wrapper must never touch it.
      const other = await sys.open(join(dir, 'other'), fs.constants.O_RDWR | fs.constants.O_CREAT, 0o600);
      expect(await rejectionCode(fd.stat())).toBe('EBADF');
      expect(await rejectionCode(fd.read(Buffer.alloc(4), 0, 4, 0))).toBe('EBADF');
      expect(await rejectionCode(fd.write(Buffer.alloc(4), 0, 4, 0))).toBe('EBADF');
      expect(await rejectionCode(fd.truncate(0))).toBe('EBADF');
      expect(await rejectionCode(fd.datasync())).toBe('EBADF');
      expect(await rejectionCode(fd.use(async () => 1))).toBe('EBADF');
      await fd.close(); // still the first close's (settled) promise
      expect(fdIsOpen(other.fd)).toBe(true);
      await other.close();
    });

    it('a close during pool operations waits for them', async () => {
      const fd = await sys.open(join(dir, 'pinned'), fs.constants.O_RDWR | fs.constants.O_CREAT, 0o600);
      const n = fd.fd;
      const big = Buffer.alloc(1024 * 1024, 3); // above any sync IO limit: goes to the pool
      const write = fd.write(big, 0, big.length, 0);
      const flush = fd.datasync(); // always on the pool
      let seenOpen = false;
      const pinned = fd.use(async (num) => {
        await new Promise((r) => setTimeout(r, 20));
        seenOpen = fdIsOpen(num);
      });
      const closed = fd.close();
      expect(fd.closed).toBe(true);
      expect(await write).toBe(big.length);
      await flush;
      await pinned;
      expect(seenOpen).toBe(true);
      await closed;
      expect(fdIsOpen(n)).toBe(false);
      expect(fs.statSync(join(dir, 'pinned')).size).toBe(big.length);
    });
  });
}

// The driver's conformance suite in the mode posix.test.ts does not cover in this run.
{
  const envSync = Number(process.env[envName] ?? 65536) > 0;
  const other = envSync ? modes.pool : modes.sync;
  const otherLabel = envSync ? 'pool' : 'sync';
  other.conf.runIosConformance(`posix (${otherLabel} syscalls)`, async () => {
    const root = await mkdtemp(join(tmpdir(), 'tessera-ios-mode-'));
    const fx = {
      share: await other.driver.posixDriver.openShare(root, {}),
      async reopen(options: { readOnly?: boolean } = {}) {
        await fx.share.close();
        fx.share = await other.driver.posixDriver.openShare(root, options);
        return fx.share;
      },
      async cleanup() {
        await fx.share.close();
        await rm(root, { recursive: true, force: true });
      },
    };
    return fx;
  });
  it(`conformance above ran in ${otherLabel} mode`, () => {
    expect(other.sys.syncSyscalls).toBe(otherLabel === 'sync');
  });
}
