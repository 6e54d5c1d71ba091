// Persisted per-object metadata that POSIX cannot hold: client-set creation time, DOS attribute bits,
// the security descriptor, the allocation a client asked for, and exact client-set times. One LMDB
// environment per share (default <root>/.tessera/meta.lmdb).
//
// Times: the host keeps atime and mtime (set through futimes, whose double loses precision below
// ~0.24 us) and ctime (which no call can set). A record may hold the three Windows times exactly, as a
// client set them (or as the driver must keep them, MS-FSA 2.1.5.15.2), together with the host ctime
// they were recorded at: they hold while the host ctime is unchanged. Any later change of the file by
// anyone (a write, a truncate, a chmod by another program) moves the host ctime and the host times
// take over again, as Windows would update them too.
//
// Records are keyed by file id (the inode number) and guarded by the object's birth time: an inode
// deleted behind the server's back and reused by a new object has another birth time, so the stale
// record is ignored (and overwritten by the next update). On file systems without birth time (the
// host reports 0) the guard degrades to the inode number alone.
//
// Durability: an update resolves only after LMDB has committed it and flushed it to disk (put/
// transaction resolve on commit with lmdb's default overlappingSync; `flushed` then waits for the
// fsync), so a change acknowledged to a client survives a crash.
import { open, type RootDatabase } from 'lmdb';
import { limits } from '../../base/limits.js';
import { IosError, type EaEntry } from '../spi.js';
import { toIosError } from './errno.js';

/** Exact times (Unix ns), valid while the host ctime is `hostCtimeNs`. */
export interface TimesOverride {
  lastAccessNs: bigint;
  lastWriteNs: bigint;
  changeNs: bigint;
  hostCtimeNs: bigint;
}

export interface MetaRecord {
  creationTimeNs?: bigint;
  /** Settable attribute bits (FILE_ATTR_SETTABLE); DIRECTORY is derived, never stored. */
  attributes?: number;
  securityDescriptor?: Buffer;
  /** Allocation a client asked for (FileAllocationInformation), bytes; reported if above the host's. */
  allocation?: number;
  times?: TimesOverride;
  /** Extended attributes (spi.ts), names upper-cased, in the order first added; absent when none. */
  eas?: EaEntry[];
}

/**
 * On-disk form. Version 1; bigint values as decimal strings (msgpack-neutral). Fields added later
 * are optional (`al`, `t`, `e`): a record without them reads as before.
 */
interface StoredV1 {
  v: 1;
  /** Birth time (ns) of the object the record belongs to. */
  b: string;
  c?: string;
  a?: number;
  s?: Buffer;
  al?: number;
  /** [lastAccess, lastWrite, change, host ctime], ns as decimal strings. */
  t?: [string, string, string, string];
  /** Extended attributes: [name, flags, value] each. */
  e?: [string, number, Buffer][];
}

const INT_RE = /^-?\d+$/;

export type MetaPatch = { [K in keyof MetaRecord]?: MetaRecord[K] | null };

function keyOf(fileId: bigint): string {
  return fileId.toString(10);
}

function decode(raw: unknown, birthNs: bigint): MetaRecord | undefined {
  if (typeof raw !== 'object' || raw === null) return undefined;
  const r = raw as Partial<StoredV1>;
  if (r.v !== 1 || r.b !== birthNs.toString(10)) return undefined;
  const out: MetaRecord = {};
  if (typeof r.c === 'string' && INT_RE.test(r.c)) out.creationTimeNs = BigInt(r.c);
  if (typeof r.a === 'number') out.attributes = r.a;
  if (typeof r.al === 'number' && Number.isSafeInteger(r.al) && r.al >= 0) out.allocation = r.al;
  if (Array.isArray(r.t) && r.t.length === 4 && r.t.every((x) => typeof x === 'string' && INT_RE.test(x))) {
    const [a, w, ch, g] = r.t.map((x) => BigInt(x)) as [bigint, bigint, bigint, bigint];
    out.times = { lastAccessNs: a, lastWriteNs: w, changeNs: ch, hostCtimeNs: g };
  }
  if (Array.isArray(r.e)) {
    const eas: EaEntry[] = [];
    for (const x of r.e as unknown[]) {
      if (!Array.isArray(x) || typeof x[0] !== 'string' || typeof x[1] !== 'number' || !(x[2] instanceof Uint8Array)) continue;
      eas.push({ name: x[0], flags: x[1], value: Buffer.from(x[2]) });
    }
    if (eas.length > 0) out.eas = eas;
  }
  // Copy: values decoded by lmdb may share a buffer reused by the next read.
  if (r.s instanceof Uint8Array) out.securityDescriptor = Buffer.from(r.s);
  return out;
}

export interface MetaStore {
  get(fileId: bigint, birthNs: bigint): MetaRecord | undefined;
  /** Merges `patch` into the record (null deletes a field); durable when it resolves. */
  update(fileId: bigint, birthNs: bigint, patch: MetaPatch): Promise<void>;
  remove(fileId: bigint): Promise<void>;
  close(): Promise<void>;
}

/** A share opened read-only without an existing sidecar: every object has default metadata. */
export const emptyMetaStore: MetaStore = {
  get: () => undefined,
  update: async () => {
    throw new IosError('EROFS', 'metadata store is read-only');
  },
  remove: async () => undefined,
  close: async () => undefined,
};

export class LmdbMetaStore implements MetaStore {
  private constructor(private readonly db: RootDatabase) {}

  static open(path: string, readOnly: boolean): LmdbMetaStore {
    try {
      return new LmdbMetaStore(open({ path, readOnly, compression: false }));
    } catch (err) {
      throw toIosError(err, `open metadata store ${path}`);
    }
  }

  get(fileId: bigint, birthNs: bigint): MetaRecord | undefined {
    try {
      return decode(this.db.get(keyOf(fileId)), birthNs);
    } catch (err) {
      throw toIosError(err, 'read metadata record');
    }
  }

  async update(fileId: bigint, birthNs: bigint, patch: MetaPatch): Promise<void> {
    const key = keyOf(fileId);
    if (patch.securityDescriptor && patch.securityDescriptor.length > limits.securityDescriptorBytesMax) {
      throw new IosError('EINVAL', `security descriptor of ${patch.securityDescriptor.length} bytes`);
    }
    try {
      // Read-modify-write inside one LMDB write transaction: concurrent updates of one record
      // (attributes and security descriptor set at once) cannot lose each other.
      await this.db.transaction(() => {
        const cur = decode(this.db.get(key), birthNs) ?? {};
        const next: StoredV1 = { v: 1, b: birthNs.toString(10) };
        const creation = patch.creationTimeNs === undefined ? cur.creationTimeNs : patch.creationTimeNs;
        const attributes = patch.attributes === undefined ? cur.attributes : patch.attributes;
        const sd = patch.securityDescriptor === undefined ? cur.securityDescriptor : patch.securityDescriptor;
        const allocation = patch.allocation === undefined ? cur.allocation : patch.allocation;
        const times = patch.times === undefined ? cur.times : patch.times;
        const eas = patch.eas === undefined ? cur.eas : patch.eas;
        if (creation !== undefined && creation !== null) next.c = creation.toString(10);
        if (attributes !== undefined && attributes !== null) next.a = attributes;
        if (sd !== undefined && sd !== null) next.s = sd;
        if (allocation !== undefined && allocation !== null) next.al = allocation;
        if (times !== undefined && times !== null) {
          next.t = [times.lastAccessNs, times.lastWriteNs, times.changeNs, times.hostCtimeNs].map((x) => x.toString(10)) as StoredV1['t'];
        }
        if (eas !== undefined && eas !== null && eas.length > 0) next.e = eas.map((ea) => [ea.name, ea.flags, ea.value]);
        if (next.c === undefined && next.a === undefined && next.s === undefined && next.al === undefined && next.t === undefined && next.e === undefined) {
          this.db.remove(key);
        } else this.db.put(key, next);
      });
      await this.db.flushed;
    } catch (err) {
      throw toIosError(err, 'write metadata record');
    }
  }

  /**
   * Drops an object's record once the object is gone. Not waited for on disk: a record that a crash
   * leaves behind belongs to a dead inode and the birth-time guard ignores it.
   */
  async remove(fileId: bigint): Promise<void> {
    try {
      const key = keyOf(fileId);
      // Most objects never had a record (nothing set beyond the defaults): skip the write then.
      if (this.db.get(key) === undefined) return;
      await this.db.remove(key);
    } catch (err) {
      throw toIosError(err, 'remove metadata record');
    }
  }

  async close(): Promise<void> {
    try {
      await this.db.flushed;
      await this.db.close();
    } catch (err) {
      throw toIosError(err, 'close metadata store');
    }
  }
}
