// The one msgpackr configuration used for log entries and state records. Deterministic: no shared
// structures or record extensions (the same value always encodes to the same bytes, which the state
// hash relies on). Integers beyond 2^53 (FILETIME timestamps) travel as bigint: a bigint that fits a
// safe integer comes back as a number, so read such fields with BigInt(x).
import { Packr } from 'msgpackr';

const packr = new Packr({
  useRecords: false,
  structuredClone: false,
  moreTypes: false,
  int64AsType: 'auto' as 'number', // 'auto' exists at runtime (msgpackr 1.12); the typings lag
  largeBigIntToFloat: false,
  mapsAsObjects: true,
  variableMapSize: true,
});

export function pack(value: unknown): Buffer {
  return packr.pack(value);
}

export function unpack<T = unknown>(bytes: Uint8Array): T {
  return packr.unpack(bytes) as T;
}

/**
 * Version of the record layouts and the command set. Stored in every record and in the cluster
 * record; a node whose version differs refuses to join (src/meta/service.ts). Bump it with any change
 * to a record's fields, a command's meaning or the command set (a node that does not know a command
 * would refuse it where others apply it). Nothing has been released yet: version 1 is the layout of
 * the first release, and changes before it keep 1.
 */
export const RECORD_VERSION = 1;
