// Path and name rules of the posix driver. The server has already validated paths (spi.ts
// conventions); the driver re-checks every component because a path must never resolve outside the
// share, whatever the caller did.
import { limits } from '../../base/limits.js';
import { IosError } from '../spi.js';

/** Directory at the share root holding driver state (the LMDB sidecar). Hidden and unreachable. */
export const STATE_DIR_NAME = '.tessera';

/**
 * Case folding for name comparison. spi.ts fixes the rule: toUpperCase on both sides. NTFS uses the
 * volume's upcase table (simple, one-to-one mappings); toUpperCase also applies a few full mappings
 * ('ß' → 'SS'), so a handful of names compare equal here that NTFS keeps apart. Close enough until
 * an upcase table is needed.
 */
export function fold(name: string): string {
  return name.toUpperCase();
}

export const STATE_DIR_FOLDED = fold(STATE_DIR_NAME);

/** POSIX NAME_MAX in bytes (Linux file systems): a name within 255 UTF-16 units may still exceed it. */
const nameBytesMax = 255;

/** Rejects a component that could escape or that the driver refuses to store. */
export function checkName(name: string): void {
  if (name === '' || name === '.' || name === '..') throw new IosError('EINVAL', `invalid name component '${name}'`);
  // '/' cannot occur after splitting; NUL ends C strings; '\' and ':' are Windows separators and
  // stream syntax that must never reach the host under another meaning.
  if (/[\u0000/\\:]/.test(name)) throw new IosError('EINVAL', 'name contains a reserved character');
  if (name.length > limits.nameUnitsMax || Buffer.byteLength(name, 'utf8') > nameBytesMax) {
    throw new IosError('ENAMETOOLONG', `name of ${name.length} units`);
  }
}

/** Splits a share-relative path ('' is the root) into checked components. */
export function splitPath(path: string): string[] {
  if (typeof path !== 'string') throw new IosError('EINVAL', 'path is not a string');
  if (path.length > limits.pathUnitsMax) throw new IosError('ENAMETOOLONG', `path of ${path.length} units`);
  if (path === '') return [];
  const parts = path.split('/');
  for (const part of parts) checkName(part);
  return parts;
}

/** Directory below the state directory holding named streams (streams.ts). */
export const STREAMS_DIR_NAME = 'streams';

/**
 * Checks a named stream's name (MS-FSCC 2.1.5.3): 1..255 UTF-16 units, none of NUL, '\', '/', ':'.
 * The name never reaches the host file system (streams.ts stores it hashed), so no byte limit applies.
 */
export function checkStreamName(name: unknown): asserts name is string {
  if (typeof name !== 'string' || name === '') throw new IosError('EINVAL', 'empty stream name');
  if (/[\u0000/\\:]/.test(name)) throw new IosError('EINVAL', 'stream name contains a reserved character');
  if (name.length > limits.nameUnitsMax) throw new IosError('ENAMETOOLONG', `stream name of ${name.length} units`);
}
