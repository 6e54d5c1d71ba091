// Snapshot store on a local directory (SnapshotStore of ./spi.ts), used until snapshots move to the
// object store. One file per snapshot, `snapshot-<position, 16 digits>.bin`; 16 digits hold every
// safe integer, so the names sort like the positions.
//
// put() streams the data into a temporary file (`.tmp-snapshot-...`), fsyncs it, renames it to its
// final name and fsyncs the directory: a reader sees a complete snapshot or none, and once put()
// resolves the snapshot survives a crash. Snapshots are never held in memory whole. Temporary files
// left by a crash are removed by open(); other files in the directory are ignored.
//
// One writer per directory (the metadata service of this node).

import { createReadStream } from 'node:fs';
import { mkdir, open, readdir, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { SnapshotInfo, SnapshotStore } from './spi.js';

const NAME_RE = /^snapshot-(\d{16})\.bin$/;
const TEMP_PREFIX = '.tmp-snapshot-';
const POSITION_DIGITS = 16;

function snapshotName(position: number): string {
  return `snapshot-${String(position).padStart(POSITION_DIGITS, '0')}.bin`;
}

async function fsyncDir(dir: string): Promise<void> {
  const h = await open(dir, 'r');
  try {
    await h.sync();
  } finally {
    await h.close();
  }
}

export class DirectorySnapshotStore implements SnapshotStore {
  private tempSeq = 0;

  private constructor(readonly dir: string) {}

  /** Creates the directory if needed and removes temporary files a crash left behind. */
  static async open(dir: string): Promise<DirectorySnapshotStore> {
    if (typeof dir !== 'string' || dir === '') throw new TypeError('DirectorySnapshotStore.open: dir is required');
    await mkdir(dir, { recursive: true });
    let removed = false;
    for (const name of await readdir(dir)) {
      if (name.startsWith(TEMP_PREFIX)) {
        await rm(join(dir, name), { force: true });
        removed = true;
      }
    }
    if (removed) await fsyncDir(dir);
    return new DirectorySnapshotStore(dir);
  }

  async put(position: number, data: AsyncIterable<Uint8Array>): Promise<SnapshotInfo> {
    if (!Number.isSafeInteger(position) || position < 0) {
      throw new RangeError(`snapshot put: position must be a safe integer >= 0, got ${String(position)}`);
    }
    const temp = join(this.dir, `${TEMP_PREFIX}${String(position).padStart(POSITION_DIGITS, '0')}-${process.pid}-${++this.tempSeq}`);
    const final = join(this.dir, snapshotName(position));
    let h: FileHandle | undefined = await open(temp, 'wx');
    let bytes = 0;
    try {
      for await (const chunk of data) {
        if (!(chunk instanceof Uint8Array)) throw new TypeError('snapshot put: data must yield Uint8Array chunks');
        let off = 0;
        while (off < chunk.byteLength) {
          const { bytesWritten } = await h.write(chunk, off, chunk.byteLength - off);
          off += bytesWritten;
        }
        bytes += chunk.byteLength;
      }
      await h.sync();
      await h.close();
      h = undefined;
      await rename(temp, final);
      await fsyncDir(this.dir);
    } catch (err) {
      if (h) await h.close().catch(() => undefined);
      await rm(temp, { force: true }).catch(() => undefined);
      throw err;
    }
    return this.info(position, final, bytes);
  }

  async latest(): Promise<SnapshotInfo | undefined> {
    const all = await this.list();
    const last = all[all.length - 1];
    if (last === undefined) return undefined;
    const path = join(this.dir, snapshotName(last));
    let size: number;
    try {
      size = (await stat(path)).size;
    } catch (err) {
      // Pruned between readdir and stat: look again.
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return this.latest();
      throw err;
    }
    return this.info(last, path, size);
  }

  async prune(keep: number): Promise<void> {
    if (!Number.isSafeInteger(keep) || keep < 0) throw new RangeError(`snapshot prune: keep must be an integer >= 0`);
    const all = await this.list();
    const doomed = all.slice(0, Math.max(0, all.length - keep));
    for (const p of doomed) await rm(join(this.dir, snapshotName(p)), { force: true });
    if (doomed.length > 0) await fsyncDir(this.dir);
  }

  /** Positions of the stored snapshots, ascending. */
  private async list(): Promise<number[]> {
    const out: number[] = [];
    for (const name of await readdir(this.dir)) {
      const m = NAME_RE.exec(name);
      if (!m) continue;
      const p = Number(m[1]);
      if (Number.isSafeInteger(p)) out.push(p);
    }
    return out.sort((a, b) => a - b);
  }

  private info(position: number, path: string, bytes: number): SnapshotInfo {
    return {
      position,
      bytes,
      read: () => createReadStream(path) as AsyncIterable<Uint8Array>,
    };
  }
}
