// Wiring of the chunked shares' backend: object store + replicated log + LMDB state + metadata
// service + ChunkedDriver (ARCHITECTURE.md: src/cli is the only place that wires concrete pieces).
// Created only when some share is chunked; closed in order: (the server closes its shares, which
// flushes the driver's writes) service with node.leave, log, state store, object store.

import { join } from 'node:path';
import type { Logger } from 'pino';
import { TesseraError } from '../base/errors.js';
import { systemClock } from '../base/clock.js';
import { limits } from '../base/limits.js';
import { Collector } from '../ios/chunked/collector.js';
import { ChunkedDriver } from '../ios/chunked/index.js';
import { ObjectStoreSnapshotStore } from './snapshot-objstore.js';
import type { MetaService } from '../meta/service.js';
import { describeMeta, openMetaBackend } from './meta.js';
import { LocalDirStore } from '../objstore/local-dir.js';
import { S3Store } from '../objstore/s3.js';
import type { ObjectStore } from '../objstore/spi.js';
import type { CacheConfig, MetaConfig, StoreConfig } from './config.js';

export interface ChunkedBackendConfig {
  store: StoreConfig;
  s3Endpoint: string | undefined;
  meta: MetaConfig;
  /** Server state directory (the etcd backend keeps its local state under it). */
  stateDir: string;
  nodeId: string;
  clusterId: string;
  /** Read cache; dir undefined: <stateDir>/cache; sizes undefined: the limits' defaults. */
  cache?: CacheConfig;
}

export interface ChunkedBackend {
  readonly driver: ChunkedDriver;
  readonly meta: MetaService;
  readonly store: ObjectStore;
  /** Where things live, for the start-up log line. */
  readonly where: { store: string; meta: string; state: string; nodeId: string; clusterId: string; cache: string };
  /** Service (with node.leave), log, state store, object store; call after the shares are closed. */
  close(): Promise<void>;
}


export function describeStore(s: StoreConfig): string {
  return s.kind === 'file' ? `file://${s.dir}` : `s3://${s.bucket}/${s.prefix}`;
}


export async function openChunkedBackend(c: ChunkedBackendConfig, log: Logger): Promise<ChunkedBackend> {
  const undo: (() => Promise<void>)[] = [];
  const unwind = async (): Promise<void> => {
    for (const f of undo.splice(0).reverse()) await f().catch((err: unknown) => log.warn({ err }, 'chunked backend: close failed'));
  };
  try {
    let store: ObjectStore;
    if (c.store.kind === 'file') {
      store = await LocalDirStore.open(c.store.dir);
    } else {
      store = await S3Store.open({
        bucket: c.store.bucket,
        prefix: c.store.prefix,
        ...(c.s3Endpoint !== undefined ? { endpoint: c.s3Endpoint } : {}),
      });
    }
    undo.push(() => store.close());
    if (c.store.kind === 's3') {
      // Fail at start, not at the first write: endpoint reachable, bucket present, credentials valid.
      try {
        await store.list('', { limit: 1 });
      } catch (err) {
        throw new TesseraError('TESSERA_CONFIG_INVALID', `object store ${describeStore(c.store)}${c.s3Endpoint !== undefined ? ` at ${c.s3Endpoint}` : ''} is not usable: ${(err as Error).message}`, { cause: err });
      }
    }

    const metaBackend = await openMetaBackend(
      { meta: c.meta, stateDir: c.stateDir, nodeId: c.nodeId, clusterId: c.clusterId },
      log,
      // With etcd, snapshots go to the object store every limits.metaSnapshotEveryBatches batches
      // (every node sees them) and the etcd history is compacted behind them; a node that fell
      // behind restores the latest.
      c.meta.kind === 'local' ? undefined : new ObjectStoreSnapshotStore(store, `${c.clusterId}/meta-snapshots/`),
    );
    undo.push(() => metaBackend.close());
    const meta = metaBackend.meta;
    const stateDir = metaBackend.stateDir;
    const cacheDir = c.cache?.dir ?? join(c.stateDir, 'cache');
    // A local-directory store is a disk already: a disk cache in front of it only copies its files,
    // so it is off unless --cache-bytes asks for one.
    const diskBytes = c.cache?.bytes ?? (c.store.kind === 'file' ? 0 : limits.chunkedDiskCacheBytesDefault);
    const memoryBytes = c.cache?.memoryBytes ?? limits.chunkedCacheBytesMax;
    const driver = new ChunkedDriver({ meta, store, clusterId: c.clusterId, nodeId: c.nodeId, cacheDir, cacheDiskBytes: diskBytes, cacheBytes: memoryBytes });
    // Queued disk-cache writes finish after the shares close (undo runs in reverse: before the store).
    undo.push(() => driver.cache.close());
    // The collector: reaps unlinked files' maps, deletes objects nothing references (after a grace
    // window), compacts fragmented ranges. Stopped before the service closes (undo runs in reverse).
    const collector = new Collector({
      meta,
      store,
      clusterId: c.clusterId,
      nodeId: c.nodeId,
      logger: log.child({ part: 'collector' }),
      // Ranges being written are left alone until the writes pause (see limits.collectorCompactQuietMs).
      busy: () => systemClock.monotonicMs() - driver.activity.lastWriteMs < limits.collectorCompactQuietMs,
      // Compaction reads what the node's read cache holds from there, not from the store.
      cached: (object, offset, length) => driver.cache.peek(object, offset, length),
    });
    collector.start();
    undo.push(() => collector.stop());
    const cache = `memory ${memoryBytes} bytes, ${diskBytes === 0 ? 'no disk' : `disk ${diskBytes} bytes in ${cacheDir}`}`;
    const where = { store: describeStore(c.store), meta: describeMeta(c.meta, c.clusterId), state: stateDir, nodeId: c.nodeId, clusterId: c.clusterId, cache };
    let closing: Promise<void> | undefined;
    return {
      driver,
      meta,
      store,
      where,
      close: () => (closing ??= unwind()),
    };
  } catch (err) {
    await unwind();
    if (err instanceof TesseraError) throw err;
    throw new TesseraError('TESSERA_CONFIG_INVALID', `chunked shares: cannot open the store or the metadata: ${(err as Error).message}`, { cause: err });
  }
}
