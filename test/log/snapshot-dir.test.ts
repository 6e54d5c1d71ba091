import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DirectorySnapshotStore } from '../../src/log/snapshot-dir.js';

async function withDir(body: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'tessera-snap-'));
  try {
    await body(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function* chunks(n: number, size: number, fill = (i: number) => i & 0xff): AsyncIterable<Uint8Array> {
  for (let i = 0; i < n; i++) yield new Uint8Array(size).fill(fill(i));
}

async function readAll(it: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of it) parts.push(Buffer.from(c));
  return Buffer.concat(parts);
}

describe('DirectorySnapshotStore', () => {
  it('is empty at first; put then latest returns the highest position with its bytes', async () => {
    await withDir(async (dir) => {
      const store = await DirectorySnapshotStore.open(join(dir, 'snaps'));
      expect(await store.latest()).toBeUndefined();
      const a = await store.put(5, chunks(3, 1000));
      expect(a).toMatchObject({ position: 5, bytes: 3000 });
      await store.put(120, chunks(2, 7, () => 9));
      await store.put(40, chunks(1, 1));
      const l = (await store.latest())!;
      expect(l.position).toBe(120);
      expect(l.bytes).toBe(14);
      expect(await readAll(l.read())).toEqual(Buffer.alloc(14, 9));
      expect(await readAll(a.read())).toEqual(Buffer.concat([Buffer.alloc(1000, 0), Buffer.alloc(1000, 1), Buffer.alloc(1000, 2)]));
      // Names sort like positions (padded) and hold the largest safe integer.
      await store.put(Number.MAX_SAFE_INTEGER, chunks(1, 1));
      expect((await store.latest())!.position).toBe(Number.MAX_SAFE_INTEGER);
      expect((await readdir(join(dir, 'snaps'))).sort()).toEqual([
        'snapshot-0000000000000005.bin',
        'snapshot-0000000000000040.bin',
        'snapshot-0000000000000120.bin',
        'snapshot-9007199254740991.bin',
      ]);
    });
  });

  it('streams a large snapshot without buffering it (8 MiB through 64 KiB chunks)', async () => {
    await withDir(async (dir) => {
      const store = await DirectorySnapshotStore.open(dir);
      const info = await store.put(1, chunks(128, 64 * 1024));
      expect(info.bytes).toBe(8 * 1024 * 1024);
      let total = 0;
      let maxChunk = 0;
      for await (const c of (await store.latest())!.read()) {
        total += c.byteLength;
        maxChunk = Math.max(maxChunk, c.byteLength);
      }
      expect(total).toBe(8 * 1024 * 1024);
      expect(maxChunk).toBeLessThanOrEqual(1024 * 1024);
    });
  });

  it('a failing source leaves no snapshot and no temporary file', async () => {
    await withDir(async (dir) => {
      const store = await DirectorySnapshotStore.open(dir);
      await store.put(1, chunks(1, 10));
      async function* failing(): AsyncIterable<Uint8Array> {
        yield new Uint8Array(100);
        throw new Error('source broke');
      }
      await expect(store.put(2, failing())).rejects.toThrow('source broke');
      expect((await store.latest())!.position).toBe(1);
      expect(await readdir(dir)).toEqual(['snapshot-0000000000000001.bin']);
    });
  });

  it('open removes temporary leftovers and ignores unrelated files', async () => {
    await withDir(async (dir) => {
      await writeFile(join(dir, '.tmp-snapshot-0000000000000009-123-1'), 'half');
      await writeFile(join(dir, 'notes.txt'), 'x');
      await writeFile(join(dir, 'snapshot-12.bin'), 'bad name');
      const store = await DirectorySnapshotStore.open(dir);
      expect((await readdir(dir)).sort()).toEqual(['notes.txt', 'snapshot-12.bin']);
      expect(await store.latest()).toBeUndefined();
    });
  });

  it('prune keeps the most recent snapshots', async () => {
    await withDir(async (dir) => {
      const store = await DirectorySnapshotStore.open(dir);
      for (const p of [3, 1, 7, 5]) await store.put(p, chunks(1, p));
      await store.prune(2);
      expect((await readdir(dir)).sort()).toEqual(['snapshot-0000000000000005.bin', 'snapshot-0000000000000007.bin']);
      await store.prune(5);
      expect((await readdir(dir)).length).toBe(2);
      await store.prune(0);
      expect(await readdir(dir)).toEqual([]);
      expect(await store.latest()).toBeUndefined();
    });
  });

  it('rejects bad arguments', async () => {
    await withDir(async (dir) => {
      const store = await DirectorySnapshotStore.open(dir);
      await expect(store.put(-1, chunks(1, 1))).rejects.toBeInstanceOf(RangeError);
      await expect(store.put(1.5, chunks(1, 1))).rejects.toBeInstanceOf(RangeError);
      await expect(store.prune(-1)).rejects.toBeInstanceOf(RangeError);
      async function* notBytes(): AsyncIterable<Uint8Array> {
        yield 'text' as unknown as Uint8Array;
      }
      await expect(store.put(1, notBytes())).rejects.toBeInstanceOf(TypeError);
      expect(await readdir(dir)).toEqual([]);
    });
  });

  it('a reopened store sees what was put', async () => {
    await withDir(async (dir) => {
      const store = await DirectorySnapshotStore.open(dir);
      await store.put(11, chunks(4, 4096));
      const again = await DirectorySnapshotStore.open(dir);
      const l = (await again.latest())!;
      expect(l.position).toBe(11);
      expect((await readAll(l.read())).length).toBe(4 * 4096);
    });
  });
});
