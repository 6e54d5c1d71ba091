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

  // --- Metadata state machine (src/meta) ---
  /** Applied-but-unresolved sequence numbers remembered per proposer (dedup window). */
  metaProposerWindowMax: 65_536,
} as const;

// Relationships (asserted at load so a bad edit fails immediately).
if (limits.frameBytesMax < limits.ioBytesMax + 64 * KiB) throw new Error('limits: frame must hold a full READ/WRITE');
if (limits.frameBytesMax >= 1 << 24) throw new Error('limits: direct-TCP length is 24 bits');
if (limits.creditsInitial > limits.creditsPerConnectionMax) throw new Error('limits: credits');
if (limits.asyncRequestsPerConnectionMax > limits.requestsInFlightPerConnectionMax) throw new Error('limits: async');
