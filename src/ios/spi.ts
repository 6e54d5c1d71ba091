// IOS driver SPI: what the server asks of a storage driver. No SMB type crosses this boundary.
//
// Version history (bump IOS_SPI_VERSION on any incompatible change, add a line here):
//   1 — paths, handles, read/write/flush/truncate, attributes, times, security descriptors,
//       directory listing by cookie, rename, unlink, statfs.
//   2 — named streams: OpenOptions.stream, OpenResult.stream, IosHandle.stream/listStreams,
//       IosShare.removeStream/renameStream, IOS_STREAMS_PER_OBJECT_MAX; truncating opens of an
//       object's unnamed stream drop its named streams.
//       (compatible addition) IosHandle.read takes an optional buffer to read into.
//       (compatible addition) SetInfo.suspend and SetInfo.allocationSize; the "Times" contract below.
//       (compatible addition) extended attributes: optional IosHandle.getEas/setEas, OpenOptions.eas,
//       FileInfo.eaBytes (see "Extended attributes"); a driver without them has no EA support.
//
// Conventions
// - Paths are share-relative, components separated by '/', no leading '/', '' is the share root.
//   The caller has already split, validated and rejected '.', '..', empty components and ':'.
//   Drivers still re-check: a path never resolves outside the share (no '..', no symlink escape).
// - Names are matched case-insensitively (Unicode simple case folding via toUpperCase on both
//   sides), preserving the case they were created with. When two on-disk names fold to the same key
//   (possible on a POSIX share written by other programs) an exact-case match wins.
// - Times are Unix nanoseconds (bigint). Sizes and offsets are numbers (< 2^53).
// - Errors: drivers reject with IosError carrying one of IosErrorCode. Any other rejection is a
//   driver bug and is answered to clients as an internal error. NTSTATUS mapping happens in exactly
//   one place on the server side.
// - Concurrency: calls on one handle may overlap (the server issues concurrent reads and writes);
//   drivers must not corrupt state when they do. Writes to overlapping ranges complete in an
//   unspecified order unless the caller serialises them.
// - Ownership: a Buffer returned by read() belongs to the caller; a Buffer passed to write() may be
//   read by the driver until the returned promise settles and must not be retained afterwards.

export const IOS_SPI_VERSION = 2;

// Times (MS-FSA 2.1.4.17 "noting that a file has been modified", 2.1.5.15.2 FileBasicInformation)
// - A write or truncate through a handle updates the object's lastWriteTime and changeTime to the
//   current time, at the latest when that handle is closed (NTFS notes the change on the handle and
//   stamps it at cleanup; a driver may stamp earlier). FILE_ATTRIBUTE_ARCHIVE is not set by writes
//   (MS-FSA makes it a SHOULD; attributes change only when a client sets them).
// - setInfo with a time sets it exactly (to the 100 ns a FILETIME holds) and stops that handle's
//   automatic updates of that time (Open.UserSet*Time). SetInfo.suspend stops (true) or restarts
//   (false) them without setting a value (FILE_BASIC_INFORMATION -1 / -2). Other handles keep
//   updating it.
// - setInfo without changeTimeNs that changes anything sets changeTime to now, unless the handle's
//   updates of changeTime are stopped.

// Extended attributes (MS-FSCC 2.4.15, MS-FSA 2.1.5.15.5)
// - An object (file or directory) has zero or more EAs: a name (1..255 characters in U+0020..U+00FF,
//   the caller validates them), flags (0 or 0x80, FILE_NEED_EA) and a non-empty value. Names compare
//   case-insensitively and are stored upper-cased, as NTFS does. Order: as first added.
// - The packed size of an object's EAs (sum of 4 + name + 1 + value bytes, MS-FSA
//   ExtendedAttributesLength) never exceeds IOS_EA_BYTES_MAX: a setEas that would is EINVAL and
//   changes nothing (the caller answers STATUS_EA_TOO_LARGE; it checks first where it can).
// - EAs belong to the object: a stream handle reads and sets those of its object.

/** MS-FSA 2.1.5.15.5: 64 KiB - 5 bytes of packed EAs per object. */
export const IOS_EA_BYTES_MAX = 65536 - 5;

/** One extended attribute. */
export interface EaEntry {
  name: string;
  /** 0 or 0x80 (FILE_NEED_EA). */
  flags: number;
  value: Buffer;
}

// Named streams (alternate data streams, MS-FSCC 2.1.5.3 and MS-FSA 2.1.5.1)
// - An object (file or directory) has zero or more named data streams besides its unnamed data stream
//   (directories have no unnamed data stream). The SPI only ever names named streams: the unnamed
//   stream is the object itself ("::$DATA" is the caller's business, never passed here).
// - A stream name is the bare name (no ':' prefix, no ':$DATA' suffix; the caller strips them):
//   1..255 UTF-16 units, none of NUL, '\\', '/', ':' (MS-FSCC 2.1.5.3). Violations: EINVAL, or
//   ENAMETOOLONG for more than 255 units. Names compare like file names (toUpperCase folding,
//   case preserved as created).
// - Streams belong to the object, not to a name: renaming the object keeps them; removing the object's
//   last name removes them; opening the unnamed stream with 'truncate', 'truncateOrCreate' (existing)
//   or 'replace' removes them (an overwrite replaces the whole file, as NTFS and Samba do).
// - At most IOS_STREAMS_PER_OBJECT_MAX named streams per object: creating one more is ENOSPC.
//   Stream sizes are bounded only by the store.

export type IosErrorCode =
  | 'ENOENT' // the object or a parent component does not exist
  | 'ENOTDIR' // a parent component is not a directory, or a directory was required
  | 'EISDIR' // a file was required but the object is a directory
  | 'EEXIST' // create-only on an existing name, or rename target exists without replace
  | 'ENOTEMPTY' // removing a non-empty directory
  | 'EACCES' // the driver (or the host) refuses the operation
  | 'EROFS' // the share is read-only
  | 'ENOSPC' // no space left
  | 'EINVAL' // invalid argument (bad name, negative size, ...)
  | 'ENAMETOOLONG'
  | 'EBUSY' // the object is in use in a way that forbids the operation
  | 'EIO'; // the store failed

export class IosError extends Error {
  readonly code: IosErrorCode;
  constructor(code: IosErrorCode, message: string, options?: { cause?: unknown }) {
    super(`${code}: ${message}`, options);
    this.code = code;
    this.name = 'IosError';
  }
}

/** File attribute bits stored with a file (the MS-FSCC 2.6 values; storage treats them as opaque flags). */
export const FileAttr = {
  READONLY: 0x1,
  HIDDEN: 0x2,
  SYSTEM: 0x4,
  DIRECTORY: 0x10,
  ARCHIVE: 0x20,
  NORMAL: 0x80,
  TEMPORARY: 0x100,
  SPARSE_FILE: 0x200,
  REPARSE_POINT: 0x400,
  COMPRESSED: 0x800,
  OFFLINE: 0x1000,
  NOT_CONTENT_INDEXED: 0x2000,
  ENCRYPTED: 0x4000,
} as const;

/** Attribute bits a client may set and that drivers persist. Others are derived. */
export const FILE_ATTR_SETTABLE =
  FileAttr.READONLY |
  FileAttr.HIDDEN |
  FileAttr.SYSTEM |
  FileAttr.ARCHIVE |
  FileAttr.TEMPORARY |
  FileAttr.NOT_CONTENT_INDEXED |
  FileAttr.OFFLINE;

export interface FileInfo {
  /** Stable for the life of the object, unique within the share, never 0. Survives rename and restart. */
  fileId: bigint;
  isDirectory: boolean;
  /** End of file in bytes (0 for directories). */
  size: number;
  /** Bytes allocated on the store. */
  allocationSize: number;
  creationTimeNs: bigint;
  lastAccessTimeNs: bigint;
  lastWriteTimeNs: bigint;
  changeTimeNs: bigint;
  /** Persisted attribute bits (FileAttr); DIRECTORY is set for directories by the driver. */
  attributes: number;
  /** Hard link count. */
  links: number;
  /** Packed size of the object's EAs (see "Extended attributes"); 0 or absent without EAs. */
  eaBytes?: number;
}

export interface DirEntry {
  /** Name as stored (case preserved). */
  name: string;
  info: FileInfo;
}

export interface FsStats {
  totalBytes: number;
  freeBytes: number;
  /** Bytes available to this share's user (may be below freeBytes). */
  availableBytes: number;
  /** Allocation unit the store reports (bytes). */
  blockBytes: number;
  /** Logical and physical sector sizes the store prefers (bytes). */
  sectorBytesLogical: number;
  sectorBytesPhysical: number;
  /** Stable identifier of the volume (for FileFsVolumeInformation serial number). */
  volumeSerial: number;
  /** Driver-chosen label. */
  label: string;
  /** Time the volume was created, Unix ns. */
  createdNs: bigint;
  /** Longest component name accepted. */
  nameUnitsMax: number;
  caseSensitive: boolean;
  supportsSparse: boolean;
}

/** How open() treats an existing / missing object. Mirrors create dispositions without SMB names. */
export type OpenMode =
  | 'open' // must exist
  | 'create' // must not exist
  | 'openOrCreate' // open if it exists, else create
  | 'truncate' // must exist; truncated to 0
  | 'truncateOrCreate' // truncate if it exists, else create
  | 'replace'; // replace if it exists (new attributes), else create

export interface OpenOptions {
  mode: OpenMode;
  /** true: must be (or create) a directory; false: must be (or create) a non-directory; undefined: either, create makes a file. */
  directory?: boolean;
  /** The handle will be written through (write/truncate/setInfo). */
  write: boolean;
  /** Attributes for a created or replaced object (FileAttr bits; others ignored). */
  attributes?: number;
  /** Security descriptor (self-relative bytes) for a created object. Opaque to storage. */
  securityDescriptor?: Buffer;
  /** Initial allocation hint for a created file (bytes). */
  allocationSize?: number;
  /** EAs of a created object (ignored when an existing object is opened); as setEas applies them. */
  eas?: EaEntry[];
  /**
   * Opens the named stream `stream` of the object at `path` instead of its unnamed data (see "Named
   * streams"). `mode` applies to the stream: creating a stream of a missing object creates the object
   * (a file, with `attributes` and `securityDescriptor`; both are ignored when the object exists) as
   * NTFS does; 'truncate'/'truncateOrCreate'/'replace' cut an existing stream to zero and leave the
   * object's other streams and metadata alone; 'open'/'truncate' of a stream of a missing object or
   * of a missing stream is ENOENT. `directory: true` is ENOTDIR (a stream is never a directory);
   * streams of directories are opened with `directory` undefined or false.
   * The handle reads, writes, truncates and flushes the stream; info() reports the stream's size and
   * allocation with the object's fileId, times and attributes (isDirectory false); setInfo and
   * get/setSecurity act on the object; list() is EINVAL.
   */
  stream?: string;
}

/** Upper bound of named streams one object may have. */
export const IOS_STREAMS_PER_OBJECT_MAX = 1024;

export interface StreamEntry {
  /** Name as stored (case preserved), without ':' or ':$DATA'. */
  name: string;
  /** End of stream in bytes. */
  size: number;
  /** Bytes allocated on the store. */
  allocationSize: number;
}

export interface OpenResult {
  handle: IosHandle;
  /** What happened: the object existed and was opened, was created, was truncated, or was replaced. */
  action: 'opened' | 'created' | 'truncated' | 'replaced';
  /** Path with the stored case of every component. */
  path: string;
  /** For a stream open: the stream name with its stored case. */
  stream?: string;
}

export interface SetInfo {
  creationTimeNs?: bigint;
  lastAccessTimeNs?: bigint;
  lastWriteTimeNs?: bigint;
  changeTimeNs?: bigint;
  /** Settable bits (FILE_ATTR_SETTABLE) replace the stored ones; others are ignored. */
  attributes?: number;
  /** Stops (true) or restarts (false) this handle's automatic updates of a time (see "Times"). */
  suspend?: { lastAccess?: boolean; lastWrite?: boolean; change?: boolean };
  /**
   * FileAllocationInformation (MS-FSA 2.1.5.15.1): the allocation to report for the handle's data at
   * least, rounded up to the store's unit, until a truncate below it. The caller cuts the end of file
   * first when the allocation is below it. Ignored on directories.
   */
  allocationSize?: number;
}

export interface ListPage {
  entries: DirEntry[];
  /** Pass back to continue; undefined when the listing is complete. */
  cookie: string | undefined;
}

export interface IosHandle {
  readonly fileId: bigint;
  /** false for a stream handle, even of a directory. */
  readonly isDirectory: boolean;
  /** The stored name of the stream this handle is open on; undefined for the unnamed stream. */
  readonly stream: string | undefined;
  info(): Promise<FileInfo>;
  /**
   * Reads up to `length` bytes at `offset`. A shorter buffer means end of file was reached;
   * an empty buffer means offset >= size. When `into` is given (at least `length` bytes) the data
   * is read into it and the result is a view of it: the caller owns `into` and may reuse it once
   * the result is no longer needed (the server recycles READ buffers this way).
   */
  read(offset: number, length: number, into?: Buffer): Promise<Buffer>;
  /** Writes all of `data` at `offset`, extending the file as needed. Resolves with bytes written. */
  write(offset: number, data: Buffer): Promise<number>;
  /** Makes everything written through this handle durable. */
  flush(): Promise<void>;
  /** Sets end of file (extends with zeros or cuts). */
  truncate(size: number): Promise<void>;
  setInfo(change: SetInfo): Promise<void>;
  /** Stored security descriptor (self-relative bytes) or undefined when none was ever set. */
  getSecurity(): Promise<Buffer | undefined>;
  setSecurity(descriptor: Buffer): Promise<void>;
  /**
   * Lists a directory handle in a stable order. `cookie` undefined starts from the beginning.
   * Entries '.' and '..' are not returned (the server synthesises them). At most `max` entries.
   */
  list(cookie: string | undefined, max: number): Promise<ListPage>;
  /**
   * The named streams of the object this handle is open on (works on a stream handle too: it lists
   * its object's streams). The unnamed stream is not included; order is unspecified. Any number of
   * entries up to IOS_STREAMS_PER_OBJECT_MAX.
   */
  listStreams(): Promise<StreamEntry[]>;
  /** The object's EAs, names upper-cased, in the order first added (see "Extended attributes"). */
  getEas?(): Promise<EaEntry[]>;
  /**
   * Applies `eas` in order: each replaces the EA of the same name (case-insensitive) or is added; an
   * empty value removes it (absent: nothing to do). EINVAL, changing nothing, for a bad name or flags
   * or when the packed size would exceed IOS_EA_BYTES_MAX. Needs no write handle (the server checks
   * FILE_WRITE_EA), only a writable share. Updates changeTime as setInfo does.
   */
  setEas?(eas: EaEntry[]): Promise<void>;
  /** Releases the handle. Idempotent. */
  close(): Promise<void>;
}

export interface IosShare {
  /** Resolves a path case-insensitively. Rejects ENOENT/ENOTDIR as described above. */
  stat(path: string): Promise<{ path: string; info: FileInfo }>;
  open(path: string, options: OpenOptions): Promise<OpenResult>;
  /**
   * Renames `from` to `to` (both share-relative). `replace`: an existing non-directory target is
   * replaced; otherwise EEXIST. Renaming a directory moves its subtree. A rename that changes only
   * the case of the last component is allowed.
   */
  rename(from: string, to: string, replace: boolean): Promise<void>;
  /**
   * Removes a file or an empty directory (ENOTEMPTY otherwise). Named streams are not children: a
   * directory with streams and no entries is empty. The object's streams go with its last name.
   */
  remove(path: string): Promise<void>;
  /**
   * Removes the named stream `stream` of the object at `path`. ENOENT when the object or the stream
   * does not exist. Handles open on the stream keep working on the detached data until closed.
   */
  removeStream(path: string, stream: string): Promise<void>;
  /**
   * Renames stream `from` of the object at `path` to `to` (MS-FSA 2.1.5.14.11.1: a stream rename never
   * leaves its object). ENOENT when `from` is missing; when `to` names another existing stream: EEXIST
   * without `replace`, else that stream is replaced. A rename that changes only case is allowed.
   * Open handles follow the stream.
   */
  renameStream(path: string, from: string, to: string, replace: boolean): Promise<void>;
  statfs(): Promise<FsStats>;
  /** Releases resources (caches, metadata stores). */
  close(): Promise<void>;
}

export interface IosDriver {
  readonly name: string;
  readonly spiVersion: typeof IOS_SPI_VERSION;
  /** Opens a share rooted at `root` (driver-specific meaning: a directory for posix). */
  openShare(root: string, options: { readOnly?: boolean }): Promise<IosShare>;
}
