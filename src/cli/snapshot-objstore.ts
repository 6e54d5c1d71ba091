// Metadata snapshots in the object store (the log SPI's SnapshotStore over the object store SPI), so
// that with etcd metadata every node of a cluster finds the same snapshots and the etcd history can
// be compacted behind them (src/meta/service.ts). Lives in src/cli because it joins two SPIs that
// may not import each other (src/meta sees only src/log; src/objstore only src/base).
//
// Keys: `<prefix><position as 16 hex digits>`: listing in key order is position order. A snapshot is
// one object (put is atomic: a reader sees it whole or not at all), so its size is bounded by
// limits.objstoreObjectBytesMax; a larger state fails the snapshot with a clear error and the log
// keeps its history.
import { TesseraError } from '../base/errors.js';
import { limits } from '../base/limits.js';
import type { SnapshotInfo, SnapshotStore } from '../log/spi.js';
import type { ObjectStore } from '../objstore/spi.js';

const READ_CHUNK_BYTES = 1024 * 1024;

export class ObjectStoreSnapshotStore implements SnapshotStore {
  constructor(
    private readonly store: ObjectStore,
    /** e.g. `<clusterId>/meta-snapshots/` */
    private readonly prefix: string,
  ) {
    if (!prefix.endsWith('/')) throw new TesseraError('TESSERA_CONFIG_INVALID', `snapshot prefix must end with '/': ${prefix}`);
  }

  private keyOf(position: number): string {
    return `${this.prefix}${position.toString(16).padStart(16, '0')}`;
  }

  async put(position: number, data: AsyncIterable<Uint8Array>): Promise<SnapshotInfo> {
    if (!Number.isSafeInteger(position) || position < 0) throw new TesseraError('TESSERA_INTERNAL', `bad snapshot position ${position}`);
    const parts: Uint8Array[] = [];
    let bytes = 0;
    for await (const chunk of data) {
      bytes += chunk.byteLength;
      if (bytes > limits.objstoreObjectBytesMax) {
        throw new TesseraError(
          'TESSERA_LIMIT_EXCEEDED',
          `metadata snapshot larger than ${limits.objstoreObjectBytesMax} bytes (one object): not stored, the log keeps its history`,
        );
      }
      parts.push(chunk);
    }
    const key = this.keyOf(position);
    await this.store.put(key, parts);
    return this.info(position, key, bytes);
  }

  async latest(): Promise<SnapshotInfo | undefined> {
    const keys = await this.keys();
    const last = keys[keys.length - 1];
    if (last === undefined) return undefined;
    return this.info(last.position, last.key, last.size);
  }

  async prune(keep: number): Promise<void> {
    const keys = await this.keys();
    const old = keys.slice(0, Math.max(0, keys.length - keep)).map((k) => k.key);
    for (let i = 0; i < old.length; i += limits.objstoreDeleteBatchMax) {
      await this.store.deleteMany(old.slice(i, i + limits.objstoreDeleteBatchMax));
    }
  }

  /** Every snapshot object, in position order (keys that are not ours are ignored). */
  private async keys(): Promise<{ key: string; position: number; size: number }[]> {
    const out: { key: string; position: number; size: number }[] = [];
    let after: string | undefined;
    for (;;) {
      const page = await this.store.list(this.prefix, after === undefined ? {} : { after });
      for (const o of page.objects) {
        const hex = o.key.slice(this.prefix.length);
        if (!/^[0-9a-f]{16}$/.test(hex)) continue;
        out.push({ key: o.key, position: Number.parseInt(hex, 16), size: o.size });
      }
      if (page.next === undefined) return out;
      after = page.next;
    }
  }

  private info(position: number, key: string, bytes: number): SnapshotInfo {
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
