import { describe, expect, it } from 'vitest';
import { isNtError, isNtWarning, NtStatus, ntStatusName } from '../../src/protocol/ntstatus.js';

describe('NtStatus (MS-ERREF 2.3.1)', () => {
  it('has the exact values of well-known codes', () => {
    expect(NtStatus.SUCCESS).toBe(0);
    expect(NtStatus.PENDING).toBe(0x103);
    expect(NtStatus.NOTIFY_ENUM_DIR).toBe(0x10c);
    expect(NtStatus.BUFFER_OVERFLOW).toBe(0x80000005);
    expect(NtStatus.NO_MORE_FILES).toBe(0x80000006);
    expect(NtStatus.INVALID_PARAMETER).toBe(0xc000000d);
    expect(NtStatus.MORE_PROCESSING_REQUIRED).toBe(0xc0000016);
    expect(NtStatus.ACCESS_DENIED).toBe(0xc0000022);
    expect(NtStatus.OBJECT_NAME_NOT_FOUND).toBe(0xc0000034);
    expect(NtStatus.SHARING_VIOLATION).toBe(0xc0000043);
    expect(NtStatus.LOGON_FAILURE).toBe(0xc000006d);
    expect(NtStatus.NOT_SUPPORTED).toBe(0xc00000bb);
    expect(NtStatus.BAD_NETWORK_NAME).toBe(0xc00000cc);
    expect(NtStatus.CANCELLED).toBe(0xc0000120);
    expect(NtStatus.FILE_CLOSED).toBe(0xc0000128);
    expect(NtStatus.USER_SESSION_DELETED).toBe(0xc0000203);
    expect(NtStatus.NETWORK_SESSION_EXPIRED).toBe(0xc000035c);
    expect(NtStatus.FILE_NOT_AVAILABLE).toBe(0xc0000467);
    expect(NtStatus.SMB_NO_PREAUTH_INTEGRITY_HASH_OVERLAP).toBe(0xc05d0000);
  });

  it('has no two names for one value', () => {
    const values = Object.values(NtStatus);
    expect(new Set(values).size).toBe(values.length);
  });

  it('names codes for logs, including negative int32 reads', () => {
    expect(ntStatusName(0xc0000022)).toBe('STATUS_ACCESS_DENIED');
    expect(ntStatusName(0xc0000022 | 0)).toBe('STATUS_ACCESS_DENIED');
    expect(ntStatusName(0)).toBe('STATUS_SUCCESS');
    expect(ntStatusName(0xc0ffee00)).toBe('0xC0FFEE00');
  });

  it('classifies severity', () => {
    expect(isNtError(NtStatus.ACCESS_DENIED)).toBe(true);
    expect(isNtError(NtStatus.BUFFER_OVERFLOW)).toBe(false);
    expect(isNtWarning(NtStatus.BUFFER_OVERFLOW)).toBe(true);
    expect(isNtWarning(NtStatus.SUCCESS)).toBe(false);
  });
});
