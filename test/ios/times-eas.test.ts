// Times, allocation and extended attributes on both IOS drivers (issue 4; spi.ts "Times" and
// "Extended attributes"): explicit times stick to the 100 ns (ChangeTime too, which POSIX cannot
// set), writes update LastWriteTime/ChangeTime by close unless the handle stopped those updates
// (MS-FSA 2.1.4.17, 2.1.5.15.2 -1/-2), FileAllocationInformation is kept and released by a truncate
// (2.1.5.15.1, 2.1.5.15.4), EAs merge as 2.1.5.15.5 says. The chunked driver also reports the
// allocation of the extents it maps.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalLog } from '../../src/log/local.js';
import { metaHandlers } from '../../src/meta/families/index.js';
import { MetaService } from '../../src/meta/service.js';
import { StateMachine } from '../../src/meta/state-machine.js';
import { LmdbStateStore } from '../../src/meta/store.js';
import { MemoryObjectStore } from '../../src/objstore/memory.js';
import { ChunkedDriver, type ChunkedHandle } from '../../src/ios/chunked/index.js';
import { posixDriver } from '../../src/ios/posix/index.js';
import { IOS_EA_BYTES_MAX, type EaEntry, type IosHandle, type IosShare } from '../../src/ios/spi.js';
import { codeOf } from './conformance.js';

interface Fixture {
  share: IosShare;
  reopen(options?: { readOnly?: boolean }): Promise<IosShare>;
  cleanup(): Promise<void>;
}

async function posixFixture(): Promise<Fixture> {
  const root = await mkdtemp(join(tmpdir(), 'tessera-times-'));
  const fx: Fixture = {
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

async function chunkedFixture(): Promise<Fixture> {
  const dir = await mkdtemp(join(tmpdir(), 'tessera-times-chunked-'));
  const log = await LocalLog.open({ dir: join(dir, 'log') });
  const state = LmdbStateStore.open(join(dir, 'state'));
  const machine = StateMachine.open({ store: state, handlers: metaHandlers });
  const svc = await MetaService.start({ log, machine, nodeId: 'n1', clusterId: 'test', nodeLeaseMs: 0 });
  const store = new MemoryObjectStore();
  const driver = new ChunkedDriver({ meta: svc, store, clusterId: 'test', nodeId: 'n1' });
  const fx: Fixture = {
    share: await driver.openShare('vms', {}),
    async reopen(options = {}) {
      await fx.share.close();
      fx.share = await driver.openShare('vms', options);
      return fx.share;
    },
    async cleanup() {
      await fx.share.close();
      await store.close();
      await svc.close();
      await log.close();
      await state.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
  return fx;
}

/** A time in 2001 with every 100 ns digit used: far before "now", exact only if kept to the 100 ns. */
const T0 = 978_307_200_123_456_700n;
const SEC = 1_000_000_000n;

const W = { mode: 'openOrCreate', write: true } as const;

async function infoOf(share: IosShare, path: string) {
  return (await share.stat(path)).info;
}

function eas(...list: [string, string, number?][]): EaEntry[] {
  return list.map(([name, value, flags]) => ({ name, value: Buffer.from(value), flags: flags ?? 0 }));
}

for (const [name, make] of [
  ['posix', posixFixture],
  ['chunked', chunkedFixture],
] as const) {
  describe(`times, allocation and EAs: ${name}`, () => {
    let fx: Fixture;
    let share: IosShare;
    beforeEach(async () => {
      fx = await make();
      share = fx.share;
    });
    afterEach(async () => {
      await fx.cleanup();
    });

    it('explicit times stick to the 100 ns, ChangeTime included, and survive a restart', async () => {
      const { handle } = await share.open('f', { mode: 'create', write: true });
      await handle.write(0, Buffer.from('data'));
      await handle.setInfo({ creationTimeNs: T0, lastAccessTimeNs: T0 + 1n * SEC + 100n, lastWriteTimeNs: T0 + 2n * SEC + 200n, changeTimeNs: T0 + 3n * SEC + 300n });
      const expected = { creationTimeNs: T0, lastAccessTimeNs: T0 + SEC + 100n, lastWriteTimeNs: T0 + 2n * SEC + 200n, changeTimeNs: T0 + 3n * SEC + 300n };
      expect(await handle.info()).toMatchObject(expected);
      // 0 in FILE_BASIC_INFORMATION: nothing given, nothing changes (the handle stopped its updates).
      await handle.setInfo({});
      expect(await handle.info()).toMatchObject(expected);
      await handle.close();
      expect(await infoOf(share, 'f')).toMatchObject(expected);
      const [listed] = (await (await share.open('', { mode: 'open', write: false })).handle.list(undefined, 10)).entries;
      expect(listed!.info).toMatchObject(expected);
      share = await fx.reopen();
      expect(await infoOf(share, 'f')).toMatchObject(expected);
    });

    it('a change through a handle that set nothing moves ChangeTime to now', async () => {
      const { handle } = await share.open('f', { mode: 'create', write: true });
      await handle.setInfo({ lastWriteTimeNs: T0, changeTimeNs: T0 });
      await handle.close();
      const other = (await share.open('f', W)).handle;
      await other.setInfo({ attributes: 0x2 });
      const after = await other.info();
      expect(after.changeTimeNs).toBeGreaterThan(T0 + 1000n * SEC);
      expect(after.lastWriteTimeNs).toBe(T0);
      expect(after.attributes & 0x2).toBe(0x2);
      await other.close();
    });

    it('a handle that stopped ChangeTime updates (-1) changes attributes without moving it; -2 resumes', async () => {
      const { handle } = await share.open('f', { mode: 'create', write: true });
      await handle.setInfo({ changeTimeNs: T0 });
      await handle.close();
      const h = (await share.open('f', W)).handle;
      await h.setInfo({ suspend: { change: true } });
      await h.setInfo({ attributes: 0x2 });
      expect((await h.info()).changeTimeNs).toBe(T0);
      await h.setInfo({ suspend: { change: false } });
      await h.setInfo({ attributes: 0x4 });
      expect((await h.info()).changeTimeNs).toBeGreaterThan(T0 + 1000n * SEC);
      await h.close();
    });

    it('writes update LastWriteTime and ChangeTime by the time the writing handle closes', async () => {
      const { handle } = await share.open('f', { mode: 'create', write: true });
      await handle.setInfo({ lastWriteTimeNs: T0, changeTimeNs: T0 });
      await handle.close();
      const w = (await share.open('f', W)).handle;
      await w.write(0, Buffer.from('more data'));
      await w.truncate(4);
      await w.close();
      const info = await infoOf(share, 'f');
      expect(info.size).toBe(4);
      expect(info.lastWriteTimeNs).toBeGreaterThan(T0 + 1000n * SEC);
      expect(info.changeTimeNs).toBeGreaterThan(T0 + 1000n * SEC);
    });

    it('a handle that set LastWriteTime keeps it through its own writes; another handle moves it', async () => {
      const { handle } = await share.open('f', { mode: 'create', write: true });
      await handle.setInfo({ lastWriteTimeNs: T0 });
      await handle.write(0, Buffer.from('kept'));
      await handle.truncate(2);
      expect((await handle.info()).lastWriteTimeNs).toBe(T0);
      await handle.close();
      const info = await infoOf(share, 'f');
      expect(info.lastWriteTimeNs).toBe(T0);
      // Its ChangeTime updates were not stopped: they moved.
      expect(info.changeTimeNs).toBeGreaterThan(T0 + 1000n * SEC);
      const other = (await share.open('f', W)).handle;
      await other.write(0, Buffer.from('x'));
      await other.close();
      expect((await infoOf(share, 'f')).lastWriteTimeNs).toBeGreaterThan(T0 + 1000n * SEC);
    });

    it('suspend (-1) then resume (-2) the LastWriteTime updates of a handle', async () => {
      const { handle } = await share.open('f', { mode: 'create', write: true });
      await handle.setInfo({ lastWriteTimeNs: T0 });
      await handle.close();
      const h = (await share.open('f', W)).handle;
      await h.setInfo({ suspend: { lastWrite: true } });
      await h.write(0, Buffer.from('quiet'));
      await h.flush();
      expect((await h.info()).lastWriteTimeNs).toBe(T0);
      await h.setInfo({ suspend: { lastWrite: false } });
      await h.write(0, Buffer.from('loud'));
      await h.close();
      expect((await infoOf(share, 'f')).lastWriteTimeNs).toBeGreaterThan(T0 + 1000n * SEC);
    });

    it('FileAllocationInformation is kept in clusters and released by a truncate below it', async () => {
      const { handle } = await share.open('f', { mode: 'create', write: true });
      await handle.setInfo({ allocationSize: 10_000 });
      let info = await handle.info();
      expect(info.size).toBe(0);
      expect(info.allocationSize).toBe(12_288);
      await handle.truncate(5000);
      info = await handle.info();
      expect(info.size).toBe(5000);
      expect(info.allocationSize).toBe(8192);
      await handle.truncate(0);
      expect((await handle.info()).allocationSize).toBe(0);
      await handle.setInfo({ allocationSize: 4096 });
      await handle.close();
      share = await fx.reopen();
      expect((await infoOf(share, 'f')).allocationSize).toBe(4096);
      const c = await share.open('g', { mode: 'create', write: true, allocationSize: 100_000 });
      expect((await c.handle.info()).allocationSize).toBe(102_400);
      await c.handle.close();
      // An overwriting open takes the new request and forgets the old one.
      const o = await share.open('g', { mode: 'truncate', write: true });
      expect((await o.handle.info()).allocationSize).toBe(0);
      await o.handle.close();
      expect(await codeOf((await share.open('f', W)).handle.setInfo({ allocationSize: -1 }))).toBe('EINVAL');
    });

    it('EAs: set, replace in place, remove, case-blind names stored upper-cased, packed size', async () => {
      const { handle } = await share.open('f', { mode: 'create', write: true });
      expect(await handle.getEas!()).toEqual([]);
      expect((await handle.info()).eaBytes ?? 0).toBe(0);
      await handle.setEas!(eas(['EaOne', 'v1'], ['second', 'value2', 0x80]));
      expect(await handle.getEas!()).toEqual(eas(['EAONE', 'v1'], ['SECOND', 'value2', 0x80]));
      expect((await handle.info()).eaBytes).toBe(4 + 5 + 1 + 2 + (4 + 6 + 1 + 6));
      await handle.setEas!(eas(['eaone', 'changed'], ['third', '3'], ['Second', '']));
      expect(await handle.getEas!()).toEqual(eas(['EAONE', 'changed'], ['THIRD', '3']));
      await handle.setEas!(eas(['absent', '']));
      expect((await handle.getEas!()).length).toBe(2);
      // Refused changes leave everything as it was.
      expect(await codeOf(handle.setEas!([{ name: '', value: Buffer.from('x'), flags: 0 }]))).toBe('EINVAL');
      expect(await codeOf(handle.setEas!([{ name: 'X', value: Buffer.from('x'), flags: 1 }]))).toBe('EINVAL');
      const big = Buffer.alloc(40_000);
      expect(await codeOf(handle.setEas!([{ name: 'BIG1', value: big, flags: 0 }, { name: 'BIG2', value: big, flags: 0 }]))).toBe('EINVAL');
      expect(await handle.getEas!()).toEqual(eas(['EAONE', 'changed'], ['THIRD', '3']));
      // Exactly at the limit is allowed.
      const room = IOS_EA_BYTES_MAX - (4 + 5 + 1 + 7) - (4 + 5 + 1 + 1) - (4 + 4 + 1);
      await handle.setEas!([{ name: 'FILL', value: Buffer.alloc(room), flags: 0 }]);
      expect((await handle.info()).eaBytes).toBe(IOS_EA_BYTES_MAX);
      await handle.close();
      share = await fx.reopen();
      const again = (await share.open('f', { mode: 'open', write: false })).handle;
      expect((await again.getEas!()).map((e) => e.name)).toEqual(['EAONE', 'THIRD', 'FILL']);
      await again.close();
    });

    it('EAs at create, on directories, through stream handles, in listings; read-only shares refuse them', async () => {
      const c = await share.open('f', { mode: 'create', write: true, eas: eas(['a', '1'], ['B', '22']) });
      expect(await c.handle.getEas!()).toEqual(eas(['A', '1'], ['B', '22']));
      await c.handle.close();
      const s = await share.open('f', { mode: 'create', write: true, stream: 'ads' });
      expect(await s.handle.getEas!()).toEqual(eas(['A', '1'], ['B', '22']));
      await s.handle.setEas!(eas(['c', '3']));
      await s.handle.close();
      expect((await infoOf(share, 'f')).eaBytes).toBe(4 + 1 + 1 + 1 + (4 + 1 + 1 + 2) + (4 + 1 + 1 + 1));
      const d = await share.open('d', { mode: 'create', directory: true, write: false });
      await d.handle.setEas!(eas(['dirEa', 'x']));
      expect(await d.handle.getEas!()).toEqual(eas(['DIREA', 'x']));
      await d.handle.close();
      const root = (await share.open('', { mode: 'open', write: false })).handle;
      const listed = new Map((await root.list(undefined, 10)).entries.map((e) => [e.name, e.info.eaBytes ?? 0]));
      expect(listed.get('d')).toBe(4 + 5 + 1 + 1);
      expect(listed.get('f')).toBe(22);
      await root.close();
      expect(await codeOf(share.open('bad', { mode: 'create', write: true, eas: [{ name: 'x', value: Buffer.from('1'), flags: 7 }] }))).toBe('EINVAL');
      expect(await codeOf(share.stat('bad'))).toBe('ENOENT');
      share = await fx.reopen({ readOnly: true });
      const ro = (await share.open('f', { mode: 'open', write: false })).handle;
      expect(await codeOf(ro.setEas!(eas(['x', 'y'])))).toBe('EROFS');
      await ro.close();
    });
  });
}

describe('chunked allocation: the bytes the map holds', () => {
  let fx: Fixture;
  beforeEach(async () => {
    fx = await chunkedFixture();
  });
  afterEach(async () => {
    await fx.cleanup();
  });

  it('counts mapped extents in clusters: writes add, zeroing and truncation release, holes cost nothing', async () => {
    const { handle } = await fx.share.open('sparse', { mode: 'create', write: true });
    const h = handle as ChunkedHandle;
    const alloc = async (): Promise<number> => (await h.info()).allocationSize;
    await h.truncate(100 << 20);
    expect(await alloc()).toBe(0);
    await h.write(0, Buffer.alloc(10, 1));
    expect(await alloc()).toBe(4096);
    await h.write(1 << 20, Buffer.alloc(8192, 2));
    expect(await alloc()).toBe(4096 * 3); // 10 + 8192 bytes mapped, in whole clusters
    await h.write(0, Buffer.alloc(10, 3)); // rewriting mapped bytes adds nothing
    expect(await alloc()).toBe(4096 * 3);
    await h.zeroRange(1 << 20, 8192);
    expect(await alloc()).toBe(4096);
    await h.write(4096, Buffer.alloc(4096, 4));
    expect(await alloc()).toBe(8192);
    await h.truncate(4096);
    expect(await alloc()).toBe(4096);
    const streams = await fx.share.open('sparse', { mode: 'create', write: true, stream: 's' });
    await streams.handle.write(0, Buffer.alloc(5000, 5));
    expect((await streams.handle.info()).allocationSize).toBe(8192);
    expect((await h.listStreams()).find((s) => s.name === 's')!.allocationSize).toBe(8192);
    await streams.handle.close();
    await h.close();
  });
});

/** Type check: the optional EA methods are implemented by both drivers. */
export type _HasEas = Required<Pick<IosHandle, 'getEas' | 'setEas'>>;
