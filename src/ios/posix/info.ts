// FileInfo from a host stat plus the sidecar record.
import type { BigIntStats } from 'node:fs';
import { FILE_ATTR_SETTABLE, FileAttr, type FileInfo } from '../spi.js';
import { eaListBytes } from '../eas.js';
import type { MetaRecord, MetaStore } from './sidecar.js';

const u64Mask = (1n << 64n) - 1n;

/**
 * File id: the inode number, which is stable across rename and restart and unique on one file
 * system. Objects on another device than the share root (a mount point inside the share) get the
 * device number mixed into the high bits; uniqueness across devices is then likely, not guaranteed.
 * Never 0 (SMB reserves it).
 */
export function fileIdOf(st: BigIntStats, rootDev: bigint): bigint {
  let id = st.ino;
  if (st.dev !== rootDev) id = (id ^ (st.dev << 40n)) & u64Mask;
  return id === 0n ? u64Mask : id;
}

/** Birth time (statx btime) or 0 when the host file system does not report one. */
export function birthNsOf(st: BigIntStats): bigint {
  return st.birthtimeNs;
}

/** Settable attribute bits an object has when no record says otherwise. */
export function defaultAttributes(isDirectory: boolean): number {
  return isDirectory ? 0 : FileAttr.ARCHIVE;
}

/** The access, write and change times of an object: the record's exact ones while they hold (sidecar.ts). */
export function effectiveTimes(st: BigIntStats, record: MetaRecord | undefined): { lastAccessNs: bigint; lastWriteNs: bigint; changeNs: bigint } {
  const t = record?.times;
  if (t !== undefined && t.hostCtimeNs === st.ctimeNs) return { lastAccessNs: t.lastAccessNs, lastWriteNs: t.lastWriteNs, changeNs: t.changeNs };
  return { lastAccessNs: st.atimeNs, lastWriteNs: st.mtimeNs, changeNs: st.ctimeNs };
}

export function buildInfo(st: BigIntStats, rootDev: bigint, meta: MetaStore): FileInfo {
  const fileId = fileIdOf(st, rootDev);
  const isDirectory = st.isDirectory();
  const record: MetaRecord | undefined = meta.get(fileId, birthNsOf(st));
  const stored = record?.attributes ?? defaultAttributes(isDirectory);
  const times = effectiveTimes(st, record);
  return {
    fileId,
    isDirectory,
    size: isDirectory ? 0 : Number(st.size),
    // st_blocks is in 512-byte units; a client's FileAllocationInformation may ask for more.
    allocationSize: isDirectory ? 0 : Math.max(Number(st.blocks) * 512, record?.allocation ?? 0),
    // Without a client-set value: birth time, or mtime where the host has no birth time.
    creationTimeNs: record?.creationTimeNs ?? (st.birthtimeNs !== 0n ? st.birthtimeNs : st.mtimeNs),
    lastAccessTimeNs: times.lastAccessNs,
    lastWriteTimeNs: times.lastWriteNs,
    changeTimeNs: times.changeNs,
    attributes: (stored & FILE_ATTR_SETTABLE) | (isDirectory ? FileAttr.DIRECTORY : 0),
    links: Number(st.nlink),
    eaBytes: record?.eas === undefined ? 0 : eaListBytes(record.eas),
  };
}
