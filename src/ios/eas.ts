// Extended attribute rules every driver applies the same way (spi.ts "Extended attributes"): the
// merge of setEas, the checks a driver re-does whatever the caller did, and the packed size.
import { IOS_EA_BYTES_MAX, IosError, type EaEntry } from './spi.js';

const FILE_NEED_EA = 0x80;

/** EA names upper-cased in ASCII only (NTFS upcases them; a wider mapping could leave U+00FF). */
export function eaNameKey(name: string): string {
  return name.replace(/[a-z]+/g, (m) => m.toUpperCase());
}

/** Packed size of an EA list (MS-FSA ExtendedAttributesLength): 4 + name + NUL + value per EA. */
export function eaListBytes(eas: readonly EaEntry[]): number {
  let n = 0;
  for (const ea of eas) n += 4 + ea.name.length + 1 + ea.value.length;
  return n;
}

function checkEa(ea: EaEntry): void {
  if (typeof ea !== 'object' || ea === null) throw new IosError('EINVAL', 'EA is not an object');
  const { name, flags, value } = ea;
  // Characters U+0020..U+00FF only (stored as one byte each on the wire); the caller validates the rest.
  if (typeof name !== 'string' || name.length === 0 || name.length > 255 || /[^\u0020-\u00ff]/.test(name)) {
    throw new IosError('EINVAL', 'invalid EA name');
  }
  if (flags !== 0 && flags !== FILE_NEED_EA) throw new IosError('EINVAL', `EA flags ${String(flags)}`);
  if (!Buffer.isBuffer(value) || value.length > 0xffff) throw new IosError('EINVAL', 'EA value must be a Buffer of at most 65535 bytes');
}

/**
 * The list after applying `changes` to `current` (spi.ts setEas): names upper-cased, a change
 * replaces the EA of its name in place or is appended, an empty value removes. Values are copied
 * (the caller may reuse its buffers). EINVAL, with nothing applied, on a bad entry or when the result
 * exceeds IOS_EA_BYTES_MAX.
 */
export function applyEas(current: readonly EaEntry[], changes: readonly EaEntry[]): EaEntry[] {
  if (!Array.isArray(changes)) throw new IosError('EINVAL', 'EAs must be an array');
  const next = current.map((ea) => ({ ...ea }));
  for (const change of changes) {
    checkEa(change);
    const name = eaNameKey(change.name);
    const i = next.findIndex((ea) => ea.name === name);
    if (change.value.length === 0) {
      if (i >= 0) next.splice(i, 1);
      continue;
    }
    const ea: EaEntry = { name, flags: change.flags, value: Buffer.from(change.value) };
    if (i >= 0) next[i] = ea;
    else next.push(ea);
  }
  if (eaListBytes(next) > IOS_EA_BYTES_MAX) throw new IosError('EINVAL', `EAs of more than ${IOS_EA_BYTES_MAX} packed bytes`);
  return next;
}
