// Every bound the server enforces, in one place (STYLE.md: "put a limit on everything, in one file").
// Units are last in names. Relationships between limits are asserted at the bottom of this file.

export const KiB = 1024;
export const MiB = 1024 * KiB;

export const limits = {
  /** Largest direct-TCP frame accepted (StreamProtocolLength is 24 bits, MS-SMB2 2.1). */
  frameBytesMax: 8 * MiB + 64 * KiB,
  /** Largest READ/WRITE payload advertised in NEGOTIATE (MaxReadSize/MaxWriteSize). */
  ioBytesMax: 8 * MiB,
  /** Largest transact payload advertised in NEGOTIATE (MaxTransactSize). */
  transactBytesMax: 1 * MiB,
  /** Credits granted at most per connection (outstanding, MS-SMB2 3.3.1.2). */
  creditsPerConnectionMax: 8192,
  /** Credits granted to a connection right after NEGOTIATE. */
  creditsInitial: 1,
  /** Credits granted per response when the client asks for more. */
  creditsGrantPerResponseMax: 8192,
  /** Requests a connection may have in flight (including async ones). */
  requestsInFlightPerConnectionMax: 8192,
  /** Async (interim-answered) requests per connection. */
  asyncRequestsPerConnectionMax: 4096,
  /** Commands in one compound chain. */
  compoundCommandsMax: 128,
  /** Bytes of responses queued to a socket before we stop reading from it (backpressure). */
  sendQueueBytesHigh: 32 * MiB,
  /** Size of the per-connection buffer the socket reads into (one read syscall at most). */
  socketReadBytes: 64 * KiB,
  /** Bytes of unprocessed input buffered per connection before we pause the socket. */
  receiveBufferedBytesMax: 16 * MiB,
  /** Sessions per connection and opens per session. */
  sessionsPerConnectionMax: 64,
  treesPerSessionMax: 256,
  opensPerSessionMax: 65536,
  /** Connections accepted by one listener in total and per client address. */
  connectionsMax: 4096,
  connectionsPerAddressMax: 1024,
  /** Time a connection may stay before completing NEGOTIATE + SESSION_SETUP. */
  authTimeoutMs: 30_000,
  /** Failed logons per client address within the window before further attempts are delayed. */
  logonFailuresPerWindowMax: 10,
  logonFailureWindowMs: 60_000,
  logonFailureDelayMs: 2_000,
  /** Security blob bytes in SESSION_SETUP. */
  securityBlobBytesMax: 64 * KiB,
  /** Bytes of one QUERY_DIRECTORY / QUERY_INFO output buffer we produce at most. */
  outputBufferBytesMax: 1 * MiB,
  /** Directory entries returned per QUERY_DIRECTORY at most. */
  directoryEntriesPerReplyMax: 4096,
  /** Path length in UTF-16 code units (MS-FSCC 2.1.5 caps at 32767). */
  pathUnitsMax: 32_767,
  /** One path component in UTF-16 code units. */
  nameUnitsMax: 255,
  /** Named pipe (DCE/RPC) buffered bytes per open. */
  pipeBufferedBytesMax: 1 * MiB,
  /** Security descriptor bytes stored per file. */
  securityDescriptorBytesMax: 64 * KiB,
  /** Entries of the case-insensitive name cache per directory kept by the posix driver. */
  nameCacheDirectoriesMax: 1024,

  // --- Replicated log (src/log) ---
  /** Bytes of one log batch (etcd's request limit is 1.5 MiB; framing overhead stays below it). */
  logBatchBytesMax: 1 * MiB,
  /** Bytes of appends queued, not yet committed, per log instance (beyond: append waits/rejects). */
  logQueuedBytesMax: 64 * MiB,
  /** Committed batches buffered per subscriber before the backend pauses delivery. */
  logSubscriberBufferedBatchesMax: 1024,
  /** Bytes of committed batches buffered per subscriber (the local log then re-reads from disk). */
  logSubscriberBufferedBytesMax: 16 * MiB,
  /** Batches deleted per write transaction when compacting the local log (keeps each step short). */
  logCompactChunkBatches: 1024,
  // etcd backend (src/log/etcd.ts).
  /** Deadline of one etcd request attempt (a put of the log key, a range, a compaction). */
  logEtcdAttemptMs: 2_000,
  /** How long append() keeps (re-)sending a batch, queue wait included, before it rejects. */
  logAppendDeadlineMs: 15_000,
  /**
   * Puts of the log key in flight per EtcdLog; group commit merges everything queued behind them, so
   * batches grow with load. Measured on the 2-core test VM (3 members): 1 gave the most appends/s
   * and the lowest latency (every put costs etcd CPU; more puts in flight means smaller batches).
   */
  logEtcdPutsInFlightMax: 1,
  /** Pause after a failed etcd attempt (doubles per consecutive failure up to the max). */
  logEtcdRetryDelayMs: 25,
  logEtcdRetryDelayMaxMs: 500,
  /** Largest gRPC message taken from etcd (watch responses are fragmented at etcd's 1.5 MiB limit). */
  logEtcdReceiveBytesMax: 16 * MiB,

  // --- Metadata state machine (src/meta) ---
  /** Applied-but-unresolved sequence numbers remembered per proposer (dedup window). */
  metaProposerWindowMax: 65_536,
  // State machine core and cluster family (src/meta/state-machine.ts, store.ts, families/cluster.ts).
  /** Bytes of one state key (LMDB's default maximum key size is 1978 bytes). */
  metaKeyBytesMax: 1536,
  /** Bytes of one encoded state record. */
  metaRecordBytesMax: 1 * MiB,
  /** Length of a node id and of a cluster id (UTF-16 code units). */
  metaNodeIdLengthMax: 128,
  /** Length of a command name (`t`). */
  metaCommandNameLengthMax: 64,
  /** Length of a node's advertised address. */
  metaAddressLengthMax: 256,
  /** Longest node lease a join or renewal may ask for. */
  metaLeaseMsMax: 10 * 60_000,
  /** Share name length (MS-FSCC 2.1.6: no more than 80 characters). */
  metaShareNameLengthMax: 80,
  /** Bytes of one share's encoded configuration. */
  metaShareConfigBytesMax: 64 * KiB,
  /** Bytes per chunk of a state snapshot stream (and records per restore write transaction / 64). */
  metaSnapshotChunkBytes: 256 * KiB,
  /** A snapshot in the object store is written in part objects of this size (one held in memory). */
  metaSnapshotPartBytes: 64 * MiB,
  /** Largest state snapshot stored in the object store (beyond it the log keeps its history). */
  metaSnapshotBytesMax: 64 * 1024 * MiB,
  /** Proposals a node may have in flight (and readers waiting for a position). */
  metaPendingProposalsMax: 65_536,
  /** How long a proposal may take, re-sends included, before it is abandoned. */
  metaProposeDeadlineMs: 30_000,
  /** Pause before re-sending a proposal whose append failed. */
  metaRetryDelayMs: 200,
  /** Node membership lease (renewed every third of it). */
  metaNodeLeaseMs: 15_000,
  /** Committed batches queued for apply before the log is asked to wait. */
  metaApplyQueueBatchesMax: 4096,
  /** Entries applied in one state transaction at most (bounds one event-loop stall). */
  metaApplyEntriesPerCommitMax: 16_384,
  /** Applied batches between automatic snapshots (log history kept behind the latest snapshot). */
  metaSnapshotEveryBatches: 50_000,
  /** State snapshots kept in the snapshot store. */
  metaSnapshotsKept: 3,

  // --- Namespace and extent maps of object-backed shares (src/meta/families/namespace.ts, extents.ts) ---
  /**
   * Extent records one command may remove, trim, split or add (ext.punch/truncate/clone/writev,
   * ns.unlink). Beyond it: fail('limit'); the caller splits the range (see boundedEnd()). ns.unlink
   * never fails for it: forks too large to free inline go to the reap queue (ext.reap).
   */
  metaExtentsPerCommandMax: 4096,
  /** Writes in one ext.writev (one group commit of the chunked driver). */
  metaExtentWritesPerBatchMax: 1024,
  /** Records returned by one read helper call (extentsIn, allocatedRanges, readdir, gcCandidates...). */
  metaReadEntriesMax: 65_536,
  /** Largest end of file and highest mapped byte: 64 TiB, the VHDX maximum. */
  metaFileBytesMax: 2 ** 46,
  /** Bytes (UTF-8) of an object key in an extent. */
  metaObjectKeyBytesMax: 512,
  /** Named streams per file or directory. */
  metaStreamsPerFileMax: 1024,
  /** Hard links per file (NTFS's limit). */
  metaHardLinksMax: 1024,
  /** Ancestors walked to refuse moving a directory under itself (a 32,767-unit path has fewer levels). */
  metaTreeDepthMax: 16_384,

  // --- Open table: opens, share modes, oplocks, leases, byte-range locks (src/meta/families/opens.ts) ---
  /** Opens of one file (all its streams); every share-mode check reads them all (MS-FSA 2.1.5.1.2). */
  metaOpensPerFileMax: 4096,
  /** Byte-range locks on one file; every lock request and I/O check reads them all (MS-FSA 2.1.4.10). */
  metaLocksPerFileMax: 8192,
  /** Elements of one lock.apply (the LockCount of one SMB2 LOCK request, MS-SMB2 2.2.26). */
  metaLockElementsMax: 1024,
  /** Bytes (UTF-8) of a file id, stream name, ClientGuid, CreateGuid, lease key, AppInstanceId or owner. */
  metaOpenStringBytesMax: 512,
  /** Durable v1 handle timeout (MS-SMB2 3.3.5.9.6 leaves it implementation-specific). */
  metaDurableV1TimeoutMs: 60_000,
  /** Durable v2 / persistent timeout when the client asks for 0 (Windows Server 2022 uses 180 s). */
  metaDurableV2TimeoutDefaultMs: 180_000,
  /** Largest durable v2 / persistent timeout granted (MS-SMB2 3.3.5.9.10: at most 300 s). */
  metaDurableTimeoutMaxMs: 300_000,
  /** Resilient handle timeout when FSCTL_LMR_REQUEST_RESILIENCY asks for 0, and the largest granted. */
  metaResilientTimeoutDefaultMs: 120_000,
  metaResilientTimeoutMaxMs: 300_000,
  /** A lease or oplock break not acknowledged within this completes as if acknowledged (MS-SMB2 3.3.2.1, 3.3.2.5). */
  metaLeaseBreakTimeoutMs: 35_000,
  /** A durable reconnect of an open whose old connection still looks alive waits this long for its teardown. */
  durableReconnectRaceMs: 500,
  metaOplockBreakTimeoutMs: 35_000,
  /** Opens one open.expire or open.node-down command closes or disconnects at most (the caller repeats). */
  metaOpensPerSweepMax: 256,

  // --- Object store (src/objstore) ---
  /** Object key length (ASCII); the metadata's object references use the same bound. */
  objstoreKeyBytesMax: 512,
  /** Largest object put in one request (segments of the chunked driver are far smaller). */
  objstoreObjectBytesMax: 256 * MiB,
  /** Keys per deleteMany (S3 DeleteObjects allows 1000). */
  objstoreDeleteBatchMax: 1000,
  /** Objects per list page (S3 ListObjectsV2 returns at most 1000). */
  objstoreListPageMax: 1000,
  /** Requests in flight per S3 store (connection reuse is bounded by this too). */
  objstoreS3ConcurrencyMax: 64,
  /** Deadline of one S3 request attempt, and of an operation with its retries. */
  objstoreS3AttemptMs: 30_000,
  objstoreS3DeadlineMs: 120_000,
  /** Retries of a failed S3 request (exponential backoff with jitter from the base delay). */
  objstoreS3RetriesMax: 5,
  objstoreS3RetryBaseMs: 50,
  /** S3 adapter (H9): TCP connect deadline (a connect timeout means the request was never sent),
   *  and the longest backoff between two attempts. */
  objstoreS3ConnectMs: 5_000,
  objstoreS3RetryDelayMaxMs: 2_000,
  /** Local directory adapter (src/objstore/local-dir.ts): longest key segment it can store (a file
   *  name is at most 255 bytes, NAME_MAX, and a directory name carries one marker byte). */
  objstoreLocalSegmentBytesMax: 254,
  /** File operations one local list page, deleteMany or copy keeps in flight (libuv has 4 threads). */
  objstoreLocalIoConcurrencyMax: 16,
  /** At open, a temp file left by another live process is removed only once it is this old. */
  objstoreLocalTempStaleMs: 3_600_000,

  // --- Chunked driver (src/ios/chunked) ---
  /** A segment object is sealed once it holds this many bytes of gathered writes (group commit by size). */
  chunkedSegmentBytes: 8 * MiB,
  /** ... or this long after its first write (group commit by time). */
  chunkedGroupCommitMs: 2,
  /** Bytes of writes gathered or in flight (not yet answered) per share; beyond it writes wait (backpressure). */
  chunkedBufferedBytesMax: 64 * MiB,
  /** Object-store range reads one READ issues concurrently. */
  chunkedReadGetsInFlightMax: 16,
  /** Capacity the chunked driver reports in statfs (the object store has no fixed size): 1 PiB. */
  chunkedReportedVolumeBytes: 2 ** 50,

  // --- Chunked driver: read cache, read-ahead, range operations (src/ios/chunked/cache.ts, H14) ---
  /** Bytes of object ranges the read cache keeps in memory per driver (configurable; 0 disables it). */
  chunkedCacheBytesMax: 256 * MiB,
  /** The cache's unit: objects are cached as aligned blocks of this size (the last one may be short). */
  chunkedCacheBlockBytes: 64 * KiB,
  /** Longest run of missing blocks fetched by one ranged get (longer runs are fetched in parallel). */
  chunkedCacheFetchBytesMax: 1 * MiB,
  /** A segment just written is kept in the read cache's memory tier only if it is smaller than this
   *  (small segments: random writes, likely read back soon; a large sequential write would only push
   *  the cache out, and copying it costs CPU on the write path). */
  chunkedCacheAdmitSegmentBytesMax: 1 * MiB,
  /** Largest read-ahead window of one handle (it grows from a few reads' worth up to this). */
  chunkedReadAheadBytesMax: 8 * MiB,
  /** Bytes of read-ahead fetches in flight per driver; beyond it read-ahead is skipped, never queued. */
  chunkedReadAheadInFlightBytesMax: 32 * MiB,
  /** Ranges one allocatedRanges() call returns at most (FSCTL_QUERY_ALLOCATED_RANGES pages beyond). */
  chunkedAllocatedRangesMax: 65_536,
  /** Bytes at the end of a copyRange that extends its target copied as data (the write raises the end
   *  of file atomically, as ext.write does; the rest is an ext.clone). */
  chunkedCopyTailBytes: 4 * KiB,

  // --- Chunked driver: disk tier of the read cache (src/ios/chunked/disk-cache.ts, H17) ---
  /** Default bytes of block files the disk cache keeps (--cache-bytes; 0 disables the disk tier). */
  chunkedDiskCacheBytesDefault: 4 * 1024 * MiB,
  /** Smallest non-zero disk cache (a bound below a few blocks would only churn). */
  chunkedDiskCacheBytesMin: 1 * MiB,
  /** Bytes of block writes queued for the disk cache; beyond it a write is skipped, never waited for. */
  chunkedDiskCacheWriteQueueBytesMax: 32 * MiB,
  /** Block files written concurrently. */
  chunkedDiskCacheWritesInFlightMax: 4,
  /** Block files read concurrently at start-up while indexing the cache directory. */
  chunkedDiskCacheScanStatsInFlightMax: 32,

  // --- Collector and fsck of chunked shares (src/ios/chunked/collector.ts, fsck.ts) ---
  /** An unreferenced object is deleted only once the collector has seen its 'gc' record this long
   *  (readers that resolved an extent before the record may still fetch it; late map commands of
   *  its segment are abandoned after metaProposeDeadlineMs). */
  collectorGraceMs: 60_000,
  /** ... and once this node has applied at least this many log positions past the record's `since`. */
  collectorPositionLag: 2,
  /** Pause between two passes of the background collector. */
  collectorIntervalMs: 10_000,
  /** ext.reap commands one pass proposes. */
  collectorReapSlicesPerPass: 64,
  /** 'gc' objects one pass deletes; objects named by one gc.claim / gc.done command. */
  collectorGcObjectsPerPass: 10_000,
  collectorGcObjectsPerCommand: 1000,
  /** Compaction: an extent shorter than this is "small"; a run of at least compactMinExtents small
   *  extents (at most compactMaxExtents, at most compactRunBytesMax bytes) is rewritten into one segment. */
  collectorCompactSmallBytes: 256 * KiB,
  collectorCompactMinExtents: 16,
  collectorCompactMaxExtents: 1024,
  collectorCompactRunBytesMax: 8 * MiB,
  /** Bytes one pass rewrites, and extent records it scans looking for fragmented runs. */
  collectorCompactBytesPerPass: 64 * MiB,
  collectorCompactScanPerPass: 65_536,
  /** Compaction waits while the node's chunked shares were written within this window (their
   *  ranges are likely rewritten again: a compaction of them goes stale and competes with the
   *  writes for the store) ... */
  collectorCompactQuietMs: 5_000,
  /** ... but not for more than this many passes in a row; such a pass then rewrites at most
   *  collectorCompactBusyBytesPerPass. */
  collectorCompactDeferPassesMax: 6,
  collectorCompactBusyBytesPerPass: 8 * MiB,
  /** Range gets one compaction keeps in flight (pieces not in the read cache; collector.ts). Few: each
   *  costs the main thread about a millisecond of SDK work, and compaction is background work. */
  collectorCompactGetsInFlightMax: 4,
  /** Orphan sweep (H18): segment keys listed per pass (paged, resuming where the last pass stopped)
   *  and orphaned segments of superseded writers deleted per pass. */
  collectorOrphanListPerPass: 10_000,
  collectorOrphansPerPass: 1000,
  /** Segment writer fencing (H18, segments.ts): a segment is put only if this node's lease runs at
   *  least this much longer (covers the put itself and clock skew to the node that may expire us). */
  chunkedLeaseMarginMs: 5_000,
  /** fsck: object-store heads in flight, problems listed (all are counted). */
  fsckHeadsInFlightMax: 32,
  fsckProblemsListedMax: 1000,
} as const;

// Relationships (asserted at load so a bad edit fails immediately).
if (limits.frameBytesMax < limits.ioBytesMax + 64 * KiB) throw new Error('limits: frame must hold a full READ/WRITE');
if (limits.frameBytesMax >= 1 << 24) throw new Error('limits: direct-TCP length is 24 bits');
if (limits.creditsInitial > limits.creditsPerConnectionMax) throw new Error('limits: credits');
if (limits.asyncRequestsPerConnectionMax > limits.requestsInFlightPerConnectionMax) throw new Error('limits: async');
// Extent arithmetic (offset + length, objectOffset + length) stays within safe integers.
if (limits.metaFileBytesMax * 4 > Number.MAX_SAFE_INTEGER) throw new Error('limits: metaFileBytesMax');
if (limits.metaDurableV2TimeoutDefaultMs > limits.metaDurableTimeoutMaxMs) throw new Error('limits: durable timeouts');
// Chunked driver: a full segment plus the next one's writes fit under the backpressure bound.
if (limits.chunkedBufferedBytesMax < 2 * limits.chunkedSegmentBytes) throw new Error('limits: chunkedBufferedBytesMax');
// Collector: the grace outlasts a late map command of a segment (a proposal is abandoned after its deadline).
if (limits.collectorGraceMs < limits.metaProposeDeadlineMs) throw new Error('limits: collectorGraceMs');
// Writer fencing: a healthy node (renewing every third of the lease) keeps more than the margin.
if (limits.chunkedLeaseMarginMs * 3 > limits.metaNodeLeaseMs * 2 - 1) throw new Error('limits: chunkedLeaseMarginMs');
