// Path and name rules of the posix driver. The server has already validated paths (spi.ts
// conventions); the driver re-checks every component because a path must never resolve outside the
// share, whatever the caller did.
import { checkName as checkNameCommon, splitPath as splitPathCommon } from '../names.js';

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

/** Checks a component against the common rules and the host's NAME_MAX. */
export function checkName(name: string): void {
  checkNameCommon(name, nameBytesMax);
}

/** Splits a share-relative path ('' is the root) into checked components. */
export function splitPath(path: string): string[] {
  return splitPathCommon(path, nameBytesMax);
}

/** Directory below the state directory holding named streams (streams.ts). */
export const STREAMS_DIR_NAME = 'streams';

// Stream names never reach the host file system (streams.ts stores them hashed): the common rule.
export { checkStreamName } from '../names.js';
