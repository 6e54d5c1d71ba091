// Name and path rules every driver re-checks (spi.ts conventions: a path never resolves outside the
// share, whatever the caller did). Drivers with stricter storage limits pass them in (the posix
// driver: the host's NAME_MAX in bytes).
import { limits } from '../base/limits.js';
import { IosError } from './spi.js';

/** Rejects a component that could escape or that a driver must not store (MS-FSCC 2.1.5.2). */
export function checkName(name: string, bytesMax = Infinity): void {
  if (name === '' || name === '.' || name === '..') throw new IosError('EINVAL', `invalid name component '${name}'`);
  // '/' cannot occur after splitting; NUL ends C strings; '\' and ':' are Windows separators and
  // stream syntax that must never reach a store under another meaning.
  if (/[\u0000/\\:]/.test(name)) throw new IosError('EINVAL', 'name contains a reserved character');
  if (name.length > limits.nameUnitsMax || (bytesMax !== Infinity && Buffer.byteLength(name, 'utf8') > bytesMax)) {
    throw new IosError('ENAMETOOLONG', `name of ${name.length} units`);
  }
}

/** Splits a share-relative path ('' is the root) into checked components. */
export function splitPath(path: string, bytesMax = Infinity): string[] {
  if (typeof path !== 'string') throw new IosError('EINVAL', 'path is not a string');
  if (path.length > limits.pathUnitsMax) throw new IosError('ENAMETOOLONG', `path of ${path.length} units`);
  if (path === '') return [];
  const parts = path.split('/');
  for (const part of parts) checkName(part, bytesMax);
  return parts;
}

/** A named stream's name (MS-FSCC 2.1.5.3): 1..255 UTF-16 units, none of NUL, '\', '/', ':'. */
export function checkStreamName(name: unknown): asserts name is string {
  if (typeof name !== 'string' || name === '') throw new IosError('EINVAL', 'empty stream name');
  if (/[\u0000/\\:]/.test(name)) throw new IosError('EINVAL', 'stream name contains a reserved character');
  if (name.length > limits.nameUnitsMax) throw new IosError('ENAMETOOLONG', `stream name of ${name.length} units`);
}
