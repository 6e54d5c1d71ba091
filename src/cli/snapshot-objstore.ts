// Metadata snapshots in the object store (the log SPI's SnapshotStore over the object store SPI), so
// that with etcd metadata every node of a cluster finds the same snapshots and the etcd history can
// be compacted behind them (src/meta/service.ts). Lives in src/cli because it joins two SPIs that
// may not import each other (src/meta sees only src/log; src/objstore only src/base).
//
// Keys (P = the position as 16 hex digits, so listing in key order is position order):
// - `<prefix>P.p<n as 8 hex digits>`: the snapshot's bytes in parts of limits.metaSnapshotPartBytes,
//   each put as it fills (memory holds one part, never the whole state);
// - `<prefix>P.m`: the manifest (JSON: total bytes, the parts in order with their sizes), put last.
//   A put is atomic, so the manifest is the commit point: a snapshot exists once its manifest does.
//   Parts without a manifest (a put cut short) are ignored and deleted by prune() once older than the
//   snapshots it keeps.
// - `<prefix>P`: a snapshot stored whole in one object by earlier versions; still read.
// A snapshot is at most limits.metaSnapshotBytesMax bytes; a larger state fails the snapshot with a
// clear error and the log keeps its history.
import { TesseraError } from '../base/errors.js';
import { limits } from '../base/limits.js';
import type { SnapshotInfo, SnapshotStore } from '../log/spi.js';
import type { ObjectStore } from '../objstore/spi.js';

const READ_CHUNK_BYTES = 1024 * 1024;
const MANIFEST_FORMAT = 'tessera-snapshot-parts/1';
const KEY_RE = /^([0-9a-f]{16})(?:\.m|\.p([0-9a-f]{8}))?$/;

interface Manifest {
  format: string;
  bytes: number;
  parts: { key: string; bytes: number }[];
}

/** One of our keys, parsed: a legacy whole snapshot, a manifest or a part. */
interface Entry {
  key: string;
  position: number;
  kind: 'whole' | 'manifest' | 'part';
  size: number;
}

export interface ObjectStoreSnapshotOptions {
  /** Bytes per part object (limits.metaSnapshotPartBytes; smaller in tests). */
  partBytes?: number;
  /** Largest snapshot stored (limits.metaSnapshotBytesMax). */
  bytesMax?: number;
}

export class ObjectStoreSnapshotStore implements SnapshotStore {
  private readonly partBytes: number;
  private readonly bytesMax: number;

  constructor(
    private readonly store: ObjectStore,
    /** e.g. `<clusterId>/meta-snapshots/` */
    private readonly prefix: string,
    opts: ObjectStoreSnapshotOptions = {},
  ) {
    if (!prefix.endsWith('/')) throw new TesseraError('TESSERA_CONFIG_INVALID', `snapshot prefix must end with '/': ${prefix}`);
    this.partBytes = opts.partBytes ?? limits.metaSnapshotPartBytes;
    this.bytesMax = opts.bytesMax ?? limits.metaSnapshotBytesMax;
    if (!Number.isSafeInteger(this.partBytes) || this.partBytes < 1 || this.partBytes > limits.objstoreObjectBytesMax) {
      throw new TesseraError('TESSERA_CONFIG_INVALID', `snapshot part size ${this.partBytes} must be 1..${limits.objstoreObjectBytesMax} bytes`);
    }
  }

  private base(position: number): string {
    return `${this.prefix}${position.toString(16).padStart(16, '0')}`;
  }

  async put(position: number, data: AsyncIterable<Uint8Array>): Promise<SnapshotInfo> {
    if (!Number.isSafeInteger(position) || position < 0) throw new TesseraError('TESSERA_INTERNAL', `bad snapshot position ${position}`);
    const base = this.base(position);
    const parts: { key: string; bytes: number }[] = [];
    let chunks: Uint8Array[] = [];
    let filled = 0;
    let bytes = 0;
    const flush = async (): Promise<void> => {
      if (filled === 0) return;
      const key = `${base}.p${parts.length.toString(16).padStart(8, '0')}`;
      await this.store.put(key, chunks);
      parts.push({ key, bytes: filled });
      chunks = [];
      filled = 0;
    };
    for await (const chunk of data) {
      bytes += chunk.byteLength;
      if (bytes > this.bytesMax) {
        throw new TesseraError(
          'TESSERA_LIMIT_EXCEEDED',
          `metadata snapshot larger than ${this.bytesMax} bytes (limits.metaSnapshotBytesMax): not stored, the log keeps its history`,
        );
      }
      // A chunk may straddle parts: parts are cut at exactly partBytes (views, no copy).
      let at = 0;
      while (at < chunk.byteLength) {
        const take = Math.min(this.partBytes - filled, chunk.byteLength - at);
        chunks.push(at === 0 && take === chunk.byteLength ? chunk : chunk.subarray(at, at + take));
        filled += take;
        at += take;
        if (filled === this.partBytes) await flush();
      }
    }
    await flush();
    const manifest: Manifest = { format: MANIFEST_FORMAT, bytes, parts };
    await this.store.put(`${base}.m`, Buffer.from(JSON.stringify(manifest)));
    return this.partsInfo(position, manifest);
  }

  async latest(): Promise<SnapshotInfo | undefined> {
    const snaps = this.snapshots(await this.entries());
    const last = snaps[snaps.length - 1];
    if (last === undefined) return undefined;
    if (last.kind === 'whole') return this.wholeInfo(last.position, last.key, last.size);
    return this.partsInfo(last.position, await this.readManifest(last));
  }

  async prune(keep: number): Promise<void> {
    const entries = await this.entries();
    const snaps = this.snapshots(entries);
    const kept = snaps.slice(Math.max(0, snaps.length - keep));
    if (kept.length === 0) return;
    const oldest = kept[0]!.position;
    const old = entries.filter((e) => e.position < oldest);
    // Manifests and whole snapshots first: a snapshot stops existing before its parts go.
    await this.deleteAll(old.filter((e) => e.kind !== 'part').map((e) => e.key));
    await this.deleteAll(old.filter((e) => e.kind === 'part').map((e) => e.key));
  }

  private async deleteAll(keys: string[]): Promise<void> {
    for (let i = 0; i < keys.length; i += limits.objstoreDeleteBatchMax) {
      const r = await this.store.deleteMany(keys.slice(i, i + limits.objstoreDeleteBatchMax));
      if (r.errors.length > 0) {
        const e = r.errors[0]!;
        throw new TesseraError('TESSERA_INTERNAL', `pruning metadata snapshots: ${r.errors.length} keys not deleted (${e.key}: ${e.message})`);
      }
    }
  }

  /** Complete snapshots (whole objects and manifests), in position order. */
  private snapshots(entries: Entry[]): Entry[] {
    const byPosition = new Map<number, Entry>();
    for (const e of entries) if (e.kind !== 'part') byPosition.set(e.position, e);
    return [...byPosition.values()].sort((a, b) => a.position - b.position);
  }

  /** Every object of ours under the prefix (keys that are not ours are ignored). */
  private async entries(): Promise<Entry[]> {
    const out: Entry[] = [];
    let after: string | undefined;
    for (;;) {
      const page = await this.store.list(this.prefix, after === undefined ? {} : { after });
      for (const o of page.objects) {
        const m = KEY_RE.exec(o.key.slice(this.prefix.length));
        if (m === null) continue;
        const kind = m[2] !== undefined ? 'part' : o.key.endsWith('.m') ? 'manifest' : 'whole';
        out.push({ key: o.key, position: Number.parseInt(m[1]!, 16), kind, size: o.size });
      }
      if (page.next === undefined) return out;
      after = page.next;
    }
  }

  /** Reads and checks a manifest: its parts must be this snapshot's and add up to its size. */
  private async readManifest(e: Entry): Promise<Manifest> {
    if (e.size > limits.objstoreObjectBytesMax) throw new TesseraError('TESSERA_INTERNAL', `snapshot manifest ${e.key} is ${e.size} bytes`);
    let m: Manifest;
    try {
      m = JSON.parse((await this.store.get(e.key)).toString('utf8')) as Manifest;
    } catch (err) {
      throw new TesseraError('TESSERA_INTERNAL', `snapshot manifest ${e.key} cannot be read: ${(err as Error).message}`, { cause: err });
    }
    const base = this.base(e.position);
    const bad = (why: string): never => {
      throw new TesseraError('TESSERA_INTERNAL', `snapshot manifest ${e.key} is invalid: ${why}`);
    };
    if (typeof m !== 'object' || m === null || m.format !== MANIFEST_FORMAT) bad(`format is not ${MANIFEST_FORMAT}`);
    if (!Number.isSafeInteger(m.bytes) || m.bytes < 0 || !Array.isArray(m.parts)) bad('bytes or parts missing');
    let sum = 0;
    m.parts.forEach((p, i) => {
      if (typeof p !== 'object' || p === null || p.key !== `${base}.p${i.toString(16).padStart(8, '0')}`) bad(`part ${i} is not this snapshot's`);
      if (!Number.isSafeInteger(p.bytes) || p.bytes <= 0) bad(`part ${i} has no size`);
      sum += p.bytes;
    });
    if (sum !== m.bytes) bad(`parts hold ${sum} bytes, the snapshot ${m.bytes}`);
    return m;
  }

  private partsInfo(position: number, m: Manifest): SnapshotInfo {
    const store = this.store;
    return {
      position,
      bytes: m.bytes,
      async *read() {
        for (const p of m.parts) {
          for (let offset = 0; offset < p.bytes; offset += READ_CHUNK_BYTES) {
            const want = Math.min(READ_CHUNK_BYTES, p.bytes - offset);
            const got = await store.get(p.key, { offset, length: want });
            if (got.length !== want) throw new TesseraError('TESSERA_INTERNAL', `snapshot part ${p.key} is shorter than its manifest says`);
            yield got;
          }
        }
      },
    };
  }

  private wholeInfo(position: number, key: string, bytes: number): SnapshotInfo {
    const store = this.store;
    return {
      position,
      bytes,
      async *read() {
        for (let offset = 0; offset < bytes; offset += READ_CHUNK_BYTES) {
          yield await store.get(key, { offset, length: Math.min(READ_CHUNK_BYTES, bytes - offset) });
        }
      },
    };
  }
}
