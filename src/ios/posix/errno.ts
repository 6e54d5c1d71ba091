// The one place where host errno values become IosErrorCode (ARCHITECTURE.md: errors are mapped in
// exactly one place per layer). Everything the posix driver throws passes through toIosError.
import { IosError, type IosErrorCode } from '../spi.js';

const errnoToCode: Readonly<Record<string, IosErrorCode>> = {
  ENOENT: 'ENOENT',
  // ELOOP only arises from O_NOFOLLOW meeting a symlink: the driver never exposes symlinks, so the
  // name behaves as absent.
  ELOOP: 'ENOENT',
  ENOTDIR: 'ENOTDIR',
  EISDIR: 'EISDIR',
  EEXIST: 'EEXIST',
  ENOTEMPTY: 'ENOTEMPTY',
  EACCES: 'EACCES',
  EPERM: 'EACCES',
  // A rename across a mount point inside the share: the host refuses, so does the driver.
  EXDEV: 'EACCES',
  EROFS: 'EROFS',
  ENOSPC: 'ENOSPC',
  EDQUOT: 'ENOSPC',
  EFBIG: 'ENOSPC',
  ENAMETOOLONG: 'ENAMETOOLONG',
  EBUSY: 'EBUSY',
  ETXTBSY: 'EBUSY',
  EINVAL: 'EINVAL',
};

/** Maps any rejection from a host call to an IosError; IosErrors pass through unchanged. */
export function toIosError(err: unknown, what: string): IosError {
  if (err instanceof IosError) return err;
  const errno = typeof err === 'object' && err !== null ? (err as { code?: unknown }).code : undefined;
  const code = typeof errno === 'string' ? errnoToCode[errno] : undefined;
  if (code !== undefined) return new IosError(code, `${what} (${errno})`, { cause: err });
  return new IosError('EIO', `${what}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
}

/** The errno string of a host error, or undefined. */
export function errnoOf(err: unknown): string | undefined {
  const errno = typeof err === 'object' && err !== null ? (err as { code?: unknown }).code : undefined;
  return typeof errno === 'string' ? errno : undefined;
}
