// Error mapping of the chunked driver: metadata refusals, metadata service failures and object-store
// errors become IosError codes (spi.ts). The NTSTATUS mapping is the server's, in one place.
import { ObjStoreError } from '../../objstore/spi.js';
import { MetaError } from '../../meta/service.js';
import type { CommandResult, MetaErrorCode } from '../../meta/tx.js';
import { IosError, type IosErrorCode } from '../spi.js';

const byRefusal: Partial<Record<MetaErrorCode, IosErrorCode>> = {
  exists: 'EEXIST',
  'not-found': 'ENOENT',
  'not-empty': 'ENOTEMPTY',
  'not-directory': 'ENOTDIR',
  // ns.rename/ns.link: a directory target is never replaced (MS-FSA 2.1.5.14.11): a name collision.
  'is-directory': 'EEXIST',
  invalid: 'EINVAL',
  limit: 'ENOSPC',
  'access-denied': 'EACCES',
  'sharing-violation': 'EBUSY',
  unavailable: 'EBUSY',
};

/** The IosError for a refused command (`what` names the operation for the message). */
export function refusalError(r: Extract<CommandResult, { ok: false }>, what: string): IosError {
  return new IosError(byRefusal[r.code] ?? 'EIO', `${what}: ${r.code}: ${r.message}`);
}

/** Any rejection from the metadata service or the object store as an IosError. */
export function toIosError(err: unknown, what: string): IosError {
  if (err instanceof IosError) return err;
  if (err instanceof MetaError) return new IosError('EIO', `${what}: metadata ${err.kind}: ${err.message}`, { cause: err });
  if (err instanceof ObjStoreError) {
    const code: IosErrorCode = err.code === 'denied' ? 'EACCES' : err.code === 'invalid' ? 'EINVAL' : 'EIO';
    return new IosError(code, `${what}: object store ${err.code}: ${err.message}`, { cause: err });
  }
  return new IosError('EIO', `${what}: ${(err as Error)?.message ?? String(err)}`, { cause: err });
}

/** The value of a successful command, or the mapped refusal thrown. */
export function valueOf<T>(r: CommandResult, what: string): T {
  if (!r.ok) throw refusalError(r, what);
  return r.value as T;
}
