import { describe, expect, it } from 'vitest';
import { MalformedError } from '../../src/base/errors.js';
import { decodeChangeNotifyRequest, changeNotifyResponse, encodeFileNotifyInformation, FileAction } from '../../src/protocol/change-notify.js';
import { closeResponse, decodeCloseRequest } from '../../src/protocol/close.js';
import { decodeFlushRequest, flushResponse } from '../../src/protocol/flush.js';
import { decodeLockRequest, LockFlags, lockResponse } from '../../src/protocol/lock.js';
import { decodeOplockBreakAck, leaseBreakNotification, leaseBreakResponse, oplockBreakBody } from '../../src/protocol/oplock-break.js';
import { decodeQueryDirectoryRequest, queryDirectoryResponse } from '../../src/protocol/query-directory.js';
import { decodeQueryInfoRequest, InfoType, queryInfoResponse } from '../../src/protocol/query-info.js';
import { decodeReadRequest, readResponse } from '../../src/protocol/read.js';
import { decodeSetInfoRequest, setInfoResponse } from '../../src/protocol/set-info.js';
import { decodeWriteRequest, writeResponse } from '../../src/protocol/write.js';
import { Bytes, encodeBody, fuzzDecoder, msgOf } from './helpers.js';

const fid = (b: Bytes): Bytes => b.u64(0x0102030405060708n).u64(0x1112131415161718n);
const FID = { Persistent: 0x0102030405060708n, Volatile: 0x1112131415161718n };

describe('CLOSE / FLUSH (MS-SMB2 2.2.15-2.2.18)', () => {
  const close = msgOf(fid(new Bytes().u16(24).u16(1).u32(0)).build());
  const flush = msgOf(fid(new Bytes().u16(24).u16(0).u32(0)).build());

  it('decodes', () => {
    expect(decodeCloseRequest(close)).toEqual({ Flags: 1, FileId: FID });
    expect(decodeFlushRequest(flush)).toEqual({ FileId: FID });
    expect(() => decodeCloseRequest(msgOf(fid(new Bytes().u16(25).u16(1).u32(0)).build()))).toThrow(MalformedError);
  });

  it('encodes the CLOSE response with and without attributes', () => {
    const plain = encodeBody(closeResponse()).body;
    expect(plain.toString('hex')).toBe('3c00' + '00'.repeat(58));
    const full = encodeBody(
      closeResponse({ CreationTime: 1n, LastAccessTime: 2n, LastWriteTime: 3n, ChangeTime: 4n, AllocationSize: 8192n, EndofFile: 5000n, FileAttributes: 0x20 }),
    ).body;
    expect(full.length).toBe(60);
    expect(full.readUInt16LE(2)).toBe(1);
    expect([8, 16, 24, 32].map((o) => full.readBigUInt64LE(o))).toEqual([1n, 2n, 3n, 4n]);
    expect(full.readBigUInt64LE(40)).toBe(8192n);
    expect(full.readBigUInt64LE(48)).toBe(5000n);
    expect(full.readUInt32LE(56)).toBe(0x20);
    expect(encodeBody(flushResponse()).body.toString('hex')).toBe('04000000');
  });

  it('fuzz', () => {
    fuzzDecoder(decodeCloseRequest, close);
    fuzzDecoder(decodeFlushRequest, flush);
  });
});

describe('READ (MS-SMB2 2.2.19, 2.2.20)', () => {
  const read = msgOf(
    fid(new Bytes().u16(49).u8(0x50).u8(1).u32(65536).u64(0x1_0000_0000n)).u32(1).u32(0).u32(0).u16(0).u16(0).u8(0).build(),
  );

  it('decodes a golden request', () => {
    expect(decodeReadRequest(read)).toMatchObject({
      Padding: 0x50, Flags: 1, Length: 65536, Offset: 0x1_0000_0000n, FileId: FID, MinimumCount: 1, Channel: 0, RemainingBytes: 0,
    });
    // 48-byte body (no Buffer byte) is accepted too.
    expect(decodeReadRequest(read.subarray(0, 64 + 48)).Length).toBe(65536);
    expect(() => decodeReadRequest(read.subarray(0, 64 + 47))).toThrow(MalformedError);
  });

  it('validates ReadChannelInfo bounds', () => {
    const m = Buffer.from(read);
    m.writeUInt16LE(64 + 48, 64 + 44);
    m.writeUInt16LE(16, 64 + 46);
    expect(() => decodeReadRequest(m)).toThrow(MalformedError);
    m.writeUInt16LE(1, 64 + 46);
    expect(decodeReadRequest(m).ReadChannelInfo.length).toBe(1);
  });

  it('encodes the response with DataOffset 0x50 and the data as payload (not copied)', () => {
    const data = Buffer.from('hello world');
    const enc = readResponse({ Data: data, DataRemaining: 0 });
    expect(enc.payload).toBe(data);
    const { body } = encodeBody(enc);
    expect(body.subarray(0, 16).toString('hex')).toBe('1100' + '50' + '00' + '0b000000' + '00000000' + '00000000');
    expect(body.subarray(16).toString()).toBe('hello world');
  });

  it('fuzz', () => fuzzDecoder(decodeReadRequest, read));
});

describe('WRITE (MS-SMB2 2.2.21, 2.2.22)', () => {
  const data = Buffer.from('0123456789');
  const write = msgOf(fid(new Bytes().u16(49).u16(0x70).u32(data.length).u64(4096n)).u32(0).u32(0).u16(0).u16(0).u32(1).raw(data).build());

  it('decodes a golden request; Data is a view of the message', () => {
    const w = decodeWriteRequest(write);
    expect(w).toMatchObject({ DataOffset: 0x70, Length: 10, Offset: 4096n, FileId: FID, Channel: 0, RemainingBytes: 0, Flags: 1 });
    expect(w.Data.toString()).toBe('0123456789');
    expect(w.Data.buffer).toBe(write.buffer);
  });

  it('rejects data outside the message or overlapping the fixed body', () => {
    const m = Buffer.from(write);
    m.writeUInt32LE(11, 64 + 4);
    expect(() => decodeWriteRequest(m)).toThrow(MalformedError);
    const n = Buffer.from(write);
    n.writeUInt16LE(0x60, 64 + 2);
    expect(() => decodeWriteRequest(n)).toThrow(MalformedError);
  });

  it('encodes the response', () => {
    expect(encodeBody(writeResponse({ Count: 10 })).body.toString('hex')).toBe('1100' + '0000' + '0a000000' + '00000000' + '0000' + '0000');
  });

  it('fuzz', () => fuzzDecoder(decodeWriteRequest, write));
});

describe('LOCK (MS-SMB2 2.2.26, 2.2.27)', () => {
  const lock = msgOf(
    fid(new Bytes().u16(48).u16(2).u32((5 << 4) | 3))
      .u64(0n).u64(100n).u32(LockFlags.SMB2_LOCKFLAG_EXCLUSIVE_LOCK | LockFlags.SMB2_LOCKFLAG_FAIL_IMMEDIATELY).u32(0)
      .u64(200n).u64(50n).u32(LockFlags.SMB2_LOCKFLAG_SHARED_LOCK).u32(0)
      .build(),
  );

  it('decodes the lock sequence fields and elements', () => {
    expect(decodeLockRequest(lock)).toEqual({
      LockCount: 2,
      LockSequenceNumber: 3,
      LockSequenceIndex: 5,
      FileId: FID,
      Locks: [
        { Offset: 0n, Length: 100n, Flags: 0x12 },
        { Offset: 200n, Length: 50n, Flags: 1 },
      ],
    });
  });

  it('rejects LockCount 0 and elements past the end', () => {
    const m = Buffer.from(lock);
    m.writeUInt16LE(0, 66);
    expect(() => decodeLockRequest(m)).toThrow(MalformedError);
    m.writeUInt16LE(3, 66);
    expect(() => decodeLockRequest(m)).toThrow(MalformedError);
    expect(encodeBody(lockResponse()).body.toString('hex')).toBe('04000000');
  });

  it('fuzz', () => fuzzDecoder(decodeLockRequest, lock));
});

describe('QUERY_DIRECTORY (MS-SMB2 2.2.33, 2.2.34)', () => {
  const pattern = Buffer.from('*.vhdx', 'utf16le');
  const qd = msgOf(fid(new Bytes().u16(33).u8(37).u8(1).u32(0)).u16(0x60).u16(pattern.length).u32(65536).raw(pattern).build());

  it('decodes', () => {
    expect(decodeQueryDirectoryRequest(qd)).toEqual({
      FileInformationClass: 37, Flags: 1, FileIndex: 0, FileId: FID, FileName: '*.vhdx', OutputBufferLength: 65536,
    });
    const m = Buffer.from(qd);
    m.writeUInt16LE(0x5e, 64 + 24);
    expect(() => decodeQueryDirectoryRequest(m)).toThrow(MalformedError);
  });

  it('encodes the response with the output as payload at 0x48', () => {
    const out = Buffer.from('abcdefgh');
    const enc = queryDirectoryResponse(out);
    expect(enc.payload).toBe(out);
    expect(encodeBody(enc).body.toString('hex')).toBe('0900' + '4800' + '08000000' + out.toString('hex'));
  });

  it('fuzz', () => fuzzDecoder(decodeQueryDirectoryRequest, qd));
});

describe('QUERY_INFO / SET_INFO (MS-SMB2 2.2.37-2.2.40)', () => {
  const input = Buffer.from('0000000004000000', 'hex');
  const qi = msgOf(fid(new Bytes().u16(41).u8(InfoType.SMB2_0_INFO_SECURITY).u8(0).u32(4096).u16(0x68).u16(0).u32(input.length).u32(7).u32(0)).raw(input).build());
  const info = Buffer.alloc(40, 0x11);
  const si = msgOf(fid(new Bytes().u16(33).u8(1).u8(4).u32(info.length).u16(0x60).u16(0).u32(0)).raw(info).build());

  it('decodes QUERY_INFO', () => {
    const q = decodeQueryInfoRequest(qi);
    expect(q).toMatchObject({ InfoType: 3, FileInfoClass: 0, OutputBufferLength: 4096, AdditionalInformation: 7, Flags: 0, FileId: FID });
    expect(q.InputBuffer).toEqual(input);
  });

  it('decodes SET_INFO', () => {
    const s = decodeSetInfoRequest(si);
    expect(s).toMatchObject({ InfoType: 1, FileInfoClass: 4, AdditionalInformation: 0, FileId: FID });
    expect(s.Buffer).toEqual(info);
    const m = Buffer.from(si);
    m.writeUInt32LE(41, 64 + 4);
    expect(() => decodeSetInfoRequest(m)).toThrow(MalformedError);
  });

  it('encodes the responses', () => {
    expect(encodeBody(queryInfoResponse(Buffer.alloc(0))).body.toString('hex')).toBe('0900480000000000');
    expect(encodeBody(setInfoResponse()).body.toString('hex')).toBe('0200');
  });

  it('fuzz', () => {
    fuzzDecoder(decodeQueryInfoRequest, qi);
    fuzzDecoder(decodeSetInfoRequest, si);
  });
});

describe('CHANGE_NOTIFY (MS-SMB2 2.2.35, 2.2.36; MS-FSCC 2.7.1)', () => {
  const cn = msgOf(new Bytes().u16(32).u16(1).u32(8192).u64(FID.Persistent).u64(FID.Volatile).u32(0x17).u32(0).build());

  it('decodes', () => {
    expect(decodeChangeNotifyRequest(cn)).toEqual({ Flags: 1, OutputBufferLength: 8192, FileId: FID, CompletionFilter: 0x17 });
  });

  it('encodes FILE_NOTIFY_INFORMATION with 4-byte aligned entries', () => {
    const out = encodeFileNotifyInformation(
      [
        { Action: FileAction.FILE_ACTION_RENAMED_OLD_NAME, FileName: 'a' },
        { Action: FileAction.FILE_ACTION_RENAMED_NEW_NAME, FileName: 'bc' },
      ],
      100,
    )!;
    // Entry 1: 12 + 2 = 14 -> next at 16; entry 2: 12 + 4 = 16, last, unpadded.
    expect(out.toString('hex')).toBe(
      '10000000' + '04000000' + '02000000' + '6100' + '0000' + '00000000' + '05000000' + '04000000' + '62006300',
    );
    expect(encodeFileNotifyInformation([{ Action: 1, FileName: 'abcdef' }], 23)).toBeUndefined();
    expect(encodeBody(changeNotifyResponse(out)).body.readUInt32LE(4)).toBe(32);
  });

  it('fuzz', () => fuzzDecoder(decodeChangeNotifyRequest, cn));
});

describe('OPLOCK_BREAK (MS-SMB2 2.2.23-2.2.25)', () => {
  const key = Buffer.from('000102030405060708090a0b0c0d0e0f', 'hex');
  const oplockAck = msgOf(fid(new Bytes().u16(24).u8(1).u8(0).u32(0)).build());
  const leaseAck = msgOf(new Bytes().u16(36).u16(0).u32(0).raw(key).u32(1).u64(0n).build());

  it('decodes both acknowledgment forms by StructureSize', () => {
    expect(decodeOplockBreakAck(oplockAck)).toEqual({ kind: 'oplock', OplockLevel: 1, FileId: FID });
    const l = decodeOplockBreakAck(leaseAck);
    expect(l).toMatchObject({ kind: 'lease', Flags: 0, LeaseState: 1, LeaseDuration: 0n });
    expect(l.kind === 'lease' && l.LeaseKey).toEqual(key);
    const m = Buffer.from(oplockAck);
    m.writeUInt16LE(44, 64);
    expect(() => decodeOplockBreakAck(m)).toThrow(MalformedError);
  });

  it('encodes notifications and responses', () => {
    expect(encodeBody(oplockBreakBody({ OplockLevel: 1, FileId: FID })).body.toString('hex')).toBe(
      '1800' + '01' + '00' + '00000000' + '0807060504030201' + '1817161514131211',
    );
    expect(
      encodeBody(leaseBreakNotification({ NewEpoch: 2, Flags: 1, LeaseKey: key, CurrentLeaseState: 7, NewLeaseState: 1 })).body.toString('hex'),
    ).toBe('2c00' + '0200' + '01000000' + key.toString('hex') + '07000000' + '01000000' + '00'.repeat(12));
    expect(encodeBody(leaseBreakResponse({ LeaseKey: key, LeaseState: 1 })).body.toString('hex')).toBe(
      '2400' + '0000' + '00000000' + key.toString('hex') + '01000000' + '00'.repeat(8),
    );
  });

  it('fuzz', () => {
    fuzzDecoder(decodeOplockBreakAck, oplockAck);
    fuzzDecoder(decodeOplockBreakAck, leaseAck);
  });
});
