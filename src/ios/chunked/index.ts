// The chunked IOS driver (ARCHITECTURE.md, "The chunked driver"): a share is a root directory in the
// replicated metadata namespace; a file is an extent map (ext.* commands) over immutable segment
// objects in an object store. openShare(name) takes a share NAME (not a path): the namespace root
// made by ns.mkroot for it.
//
// Behaviour notes (share.ts, handle.ts, segments.ts):
// - writes are group-committed into segment objects; a write is answered only once its segment is
//   in the store and its map update is applied on this node (so every answered write is durable:
//   flush() only waits for writes still in flight);
// - reads fetch mapped ranges through a bounded memory cache of object blocks (cache.ts, one per
//   driver) over an optional bounded disk cache (disk-cache.ts; cacheDir), with per-handle read-ahead of sequential access; holes read as zeros without the store;
// - zeroRange/trimRange/allocatedRanges/cloneRange/copyRange on ChunkedHandle: map operations beyond
//   the SPI (the FSCTLs that use them come later);
// - security descriptors are opaque bytes to this driver and to the namespace records (spi.ts);
// - file ids are inode numbers of the namespace; stable across rename and restart;
// - LastWriteTime is not updated by writes yet (the extent commands carry no time).
import { systemClock, type Clock } from '../../base/clock.js';
import type { MetaService } from '../../meta/service.js';
import type { ObjectStore } from '../../objstore/spi.js';
import { IOS_SPI_VERSION, type IosDriver, type IosShare } from '../spi.js';
import { limits } from '../../base/limits.js';
import { BlockCache, type BlockCacheOptions } from './cache.js';
import { ChunkedShare, type ChunkedShareDeps } from './share.js';
import type { WriteActivity } from './segments.js';

export { ChunkedShare } from './share.js';
export { ChunkedHandle } from './handle.js';
export { SegmentWriter, type SegmentStats } from './segments.js';
export { BlockCache, type BlockCacheOptions, type BlockCacheStats } from './cache.js';
export { DiskCache, type DiskCacheOptions, type DiskCacheStats } from './disk-cache.js';

export interface ChunkedDriverOptions {
  meta: MetaService;
  store: ObjectStore;
  clusterId: string;
  nodeId: string;
  clock?: Clock;
  /** Tuning (tests, benchmarks); defaults from limits ("Chunked driver"). */
  segmentBytes?: number;
  groupCommitMs?: number;
  bufferedBytesMax?: number;
  /** Must equal the state machine's extent budget per command (lowered only in tests). */
  extentsPerCommandMax?: number;
  /** Read cache bytes (default limits.chunkedCacheBytesMax; 0 keeps nothing) and block size. */
  cacheBytes?: number;
  cacheBlockBytes?: number;
  /** Keep each segment just written in the memory tier (default true; BlockCache.admit). */
  cacheWrites?: boolean;
  /** Disk tier of the read cache: its directory (absent: memory only) and bytes (> 0). */
  cacheDir?: string;
  cacheDiskBytes?: number;
  /** Largest read-ahead window per handle (default limits.chunkedReadAheadBytesMax; 0 disables). */
  readAheadBytes?: number;
}

export class ChunkedDriver implements IosDriver {
  readonly name = 'chunked';
  readonly spiVersion = IOS_SPI_VERSION;
  private readonly deps: ChunkedShareDeps;
  /** The read cache shared by every share of this driver (one store); close() it after the shares. */
  readonly cache: BlockCache;
  /** When a share of this driver was last written (by its clock's monotonicMs()). */
  readonly activity: WriteActivity = { lastWriteMs: Number.NEGATIVE_INFINITY };

  constructor(opts: ChunkedDriverOptions) {
    const deps: ChunkedShareDeps = {
      meta: opts.meta,
      store: opts.store,
      clusterId: opts.clusterId,
      nodeId: opts.nodeId,
      clock: opts.clock ?? systemClock,
    };
    if (opts.segmentBytes !== undefined) deps.segmentBytes = opts.segmentBytes;
    if (opts.groupCommitMs !== undefined) deps.groupCommitMs = opts.groupCommitMs;
    if (opts.bufferedBytesMax !== undefined) deps.bufferedBytesMax = opts.bufferedBytesMax;
    if (opts.extentsPerCommandMax !== undefined) deps.extentsPerCommandMax = opts.extentsPerCommandMax;
    const cacheOpts: BlockCacheOptions = {};
    if (opts.cacheBytes !== undefined) cacheOpts.bytesMax = opts.cacheBytes;
    if (opts.cacheBlockBytes !== undefined) cacheOpts.blockBytes = opts.cacheBlockBytes;
    if (opts.cacheWrites !== undefined) cacheOpts.keepWrites = opts.cacheWrites;
    if (opts.cacheDir !== undefined && opts.cacheDiskBytes !== 0) {
      cacheOpts.disk = { dir: opts.cacheDir, bytesMax: opts.cacheDiskBytes ?? limits.chunkedDiskCacheBytesDefault };
    }
    this.cache = new BlockCache(opts.store, cacheOpts);
    deps.cache = this.cache;
    deps.activity = this.activity;
    if (opts.readAheadBytes !== undefined) deps.readAheadBytesMax = opts.readAheadBytes;
    this.deps = deps;
  }

  /** `name` is the share name (the namespace root), made on first use unless read-only. */
  openShare(name: string, options: { readOnly?: boolean }): Promise<IosShare> {
    return ChunkedShare.open(this.deps, name, options.readOnly === true);
  }
}
