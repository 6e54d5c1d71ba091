// The one place storage errors become NTSTATUS codes (ARCHITECTURE.md: "errors are mapped to
// NTSTATUS in exactly one place"). Values follow MS-FSA's failure statuses for the same conditions.

import type { IosErrorCode } from '../ios/spi.js';
import { NtStatus } from '../protocol/ntstatus.js';

export function statusForIosError(code: IosErrorCode): number {
  switch (code) {
    case 'ENOENT':
      return NtStatus.OBJECT_NAME_NOT_FOUND;
    case 'ENOTDIR':
      return NtStatus.NOT_A_DIRECTORY;
    case 'EISDIR':
      return NtStatus.FILE_IS_A_DIRECTORY;
    case 'EEXIST':
      return NtStatus.OBJECT_NAME_COLLISION;
    case 'ENOTEMPTY':
      return NtStatus.DIRECTORY_NOT_EMPTY;
    case 'EACCES':
      return NtStatus.ACCESS_DENIED;
    case 'EROFS':
      return NtStatus.MEDIA_WRITE_PROTECTED;
    case 'ENOSPC':
      return NtStatus.DISK_FULL;
    case 'EINVAL':
      return NtStatus.INVALID_PARAMETER;
    case 'ENAMETOOLONG':
      return NtStatus.OBJECT_NAME_INVALID;
    case 'EBUSY':
      return NtStatus.SHARING_VIOLATION;
    case 'EIO':
      return NtStatus.UNEXPECTED_IO_ERROR;
  }
}
