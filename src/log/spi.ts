// Replicated-log SPI, version 1 (ARCHITECTURE.md: "src/log: the replicated-log SPI; entries are
// opaque bytes to it"). Two backends implement it: the local LMDB log (the embedded default, one node)
// and the etcd log (a cluster). The metadata service (src/meta) is its only caller.
//
// Contract, for every backend:
// - Order. Committed batches carry strictly increasing positions. Every subscriber on every node sees
//   the same batches with the same entries in the same order. Positions need not be contiguous (etcd
//   revisions skip numbers used by other keys); they are safe integers > 0. Position 0 means "before
//   the first batch".
// - Atomicity. The entries of one append() are committed together, contiguous and in order, in one
//   batch. A backend may merge concurrent append() calls into one batch (group commit); each of those
//   calls then resolves with that batch's position, and its entries keep their relative order.
// - Durability. append() resolves only once the batch is committed: for the local log, fsynced to
//   disk; for etcd, acknowledged by a quorum (etcd fsyncs its WAL before acknowledging).
// - Duplication. A batch sent once is delivered once. But a backend may re-send a batch after an
//   ambiguous failure (a timeout or lost connection after the request left), and append() may reject
//   with code 'ambiguous' (the batch may or may not have been committed) after which the caller may
//   append the same entries again: so the same entries can be committed more than once, and entries
//   must carry ids the consumer deduplicates by (src/meta does: proposer id + sequence number).
// - Errors are LogError with a code. 'too-large', 'unavailable' and 'closed' on append mean the batch
//   was definitely not committed; 'ambiguous' means it may have been.
// - Compaction. compact(through) discards history at or before `through`; the caller must first make
//   sure a snapshot covers it (SnapshotStore below). subscribe(after) with after < compactedThrough()
//   fails with 'compacted': the consumer must restore the latest snapshot and subscribe from its
//   position.

export const LOG_SPI_VERSION = 1;

export type LogErrorCode =
  /** The log was closed locally; the operation did not happen. */
  | 'closed'
  /** The batch exceeds the backend's size limit (logLimits.batchBytesMax); not committed. */
  | 'too-large'
  /** The backend could not be reached before the deadline and the request never left; not committed. */
  | 'unavailable'
  /** The request may or may not have been committed (timeout or connection loss after sending). */
  | 'ambiguous'
  /** History the caller asked for was compacted away; restore a snapshot first. */
  | 'compacted'
  /** Stored bytes failed validation (torn record, bad checksum, unknown format). */
  | 'corrupt';

export class LogError extends Error {
  readonly code: LogErrorCode;
  constructor(code: LogErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = 'LogError';
  }
}

export interface LogBatch {
  /** Strictly increasing across batches; the same on every node. */
  readonly position: number;
  /** Opaque entries in commit order (at least one). */
  readonly entries: readonly Uint8Array[];
}

export interface LogSubscription {
  /** Stops delivery; resolves once no onBatch call is running. Idempotent. */
  close(): Promise<void>;
}

export interface ReplicatedLog {
  /** 'local' or 'etcd' (for logs and metrics). */
  readonly backend: string;

  /**
   * Appends `entries` (at least one) as one atomic batch and resolves with its position once
   * committed (see Durability). Rejects with LogError.
   */
  append(entries: readonly Uint8Array[]): Promise<number>;

  /**
   * Delivers every committed batch with position > `after`, in order, each once per subscription,
   * including batches committed by other nodes. Waits for the promise returned by onBatch before
   * delivering the next batch (backpressure). A failure ('compacted', 'corrupt', or a backend that
   * cannot resume) is reported once to onError and ends the subscription. Transient disconnections
   * are retried by the backend and are not reported.
   */
  subscribe(
    after: number,
    onBatch: (batch: LogBatch) => void | Promise<void>,
    onError: (err: LogError) => void,
  ): LogSubscription;

  /**
   * Linearizable read index: resolves with a position >= the position of every batch whose append
   * resolved before this call began (the read-index idea). A consumer that has applied through the
   * returned position can serve a linearizable read. Rejects with LogError ('unavailable', 'closed').
   */
  readIndex(): Promise<number>;

  /** History at or before this position is gone (0 if nothing was compacted). */
  compactedThrough(): Promise<number>;

  /** Discards history at or before `through` (no-op if already compacted further). */
  compact(through: number): Promise<void>;

  /** Ends subscriptions, rejects pending appends with 'closed', releases resources. Idempotent. */
  close(): Promise<void>;
}

/** Stored state snapshot: the materialised state after applying every batch at or before `position`. */
export interface SnapshotInfo {
  readonly position: number;
  /** Size of the snapshot in bytes. */
  readonly bytes: number;
  /** Reads the snapshot's bytes as written. */
  read(): AsyncIterable<Uint8Array>;
}

/**
 * Where snapshots go: a local directory until the object store exists, the object store later.
 * put() is atomic (a reader sees a complete snapshot or none) and durable before it resolves.
 */
export interface SnapshotStore {
  put(position: number, data: AsyncIterable<Uint8Array>): Promise<SnapshotInfo>;
  /** The snapshot with the highest position, or undefined if none was stored. */
  latest(): Promise<SnapshotInfo | undefined>;
  /** Deletes all but the `keep` most recent snapshots. */
  prune(keep: number): Promise<void>;
}
