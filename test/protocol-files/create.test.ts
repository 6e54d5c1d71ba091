import { describe, expect, it } from 'vitest';
import { MalformedError } from '../../src/base/errors.js';
import {
  AccessMask,
  CreateAction,
  CreateContextName,
  CreateDisposition,
  CreateOptions,
  FILE_ID_ANY,
  ImpersonationLevel,
  OplockLevel,
  ShareAccess,
  createContextsByteLength,
  createResponse,
  decodeCreateContexts,
  decodeCreateRequest,
  decodeFileId,
  encodeCreateContexts,
  encodeFileId,
  findCreateContext,
  isFileIdAny,
} from '../../src/protocol/create.js';
import {
  DurableHandleFlags,
  decodeAllocationSize,
  decodeAppInstanceId,
  decodeAppInstanceVersion,
  decodeDurableHandleReconnect,
  decodeDurableHandleReconnectV2,
  decodeDurableHandleRequest,
  decodeDurableHandleRequestV2,
  decodeDurableHandleResponseV2,
  decodeLease,
  decodeMaximalAccessRequest,
  decodeMaximalAccessResponse,
  decodeTimewarpToken,
  encodeAppInstanceId,
  encodeAppInstanceVersion,
  encodeDurableHandleReconnectV2,
  encodeDurableHandleRequestV2,
  encodeDurableHandleResponse,
  encodeDurableHandleResponseV2,
  encodeLease,
  encodeMaximalAccessResponse,
  encodeQueryOnDiskIdResponse,
  encodeTimewarpToken,
  LeaseState,
} from '../../src/protocol/create-contexts.js';
import { Bytes, encodeBody, fuzzDecoder, msgOf } from './helpers.js';

/** One create context laid out by hand as MS-SMB2 2.2.13.2 describes (name at 16, data 8-aligned). */
function ctx(name: Buffer, data: Buffer, last: boolean): Buffer {
  const dataAt = data.length ? (16 + name.length + 7) & ~7 : 0;
  const size = data.length ? dataAt + data.length : 16 + name.length;
  const span = last ? size : (size + 7) & ~7;
  const b = Buffer.alloc(span);
  b.writeUInt32LE(last ? 0 : span, 0);
  b.writeUInt16LE(16, 4);
  b.writeUInt16LE(name.length, 6);
  b.writeUInt16LE(dataAt, 10);
  b.writeUInt32LE(data.length, 12);
  name.copy(b, 16);
  data.copy(b, dataAt);
  return b;
}

const leaseKey = Buffer.from('00112233445566778899aabbccddeeff', 'hex');
const parentKey = Buffer.from('ffeeddccbbaa99887766554433221100', 'hex');
const createGuid = Buffer.from('0102030405060708090a0b0c0d0e0f10', 'hex');

function leaseV2Data(): Buffer {
  return new Bytes().raw(leaseKey).u32(7).u32(4).u64(0n).raw(parentKey).u16(3).u16(0).build();
}

function dh2qData(): Buffer {
  return new Bytes().u32(60000).u32(2).zeros(8).raw(createGuid).build();
}

function appInstanceData(): Buffer {
  return new Bytes().u16(20).u16(0).raw(createGuid).build();
}

/** A CREATE request for "dir\file.txt" with MxAc, RqLs v2, DH2Q and AppInstanceId contexts. */
function goldenCreate(): Buffer {
  const name = Buffer.from('dir\\file.txt', 'utf16le'); // 24 bytes
  const chain = Buffer.concat([
    ctx(Buffer.from('MxAc'), Buffer.alloc(0), false),
    ctx(Buffer.from('RqLs'), leaseV2Data(), false),
    ctx(Buffer.from('DH2Q'), dh2qData(), false),
    ctx(Buffer.from(CreateContextName.APP_INSTANCE_ID, 'hex'), appInstanceData(), true),
  ]);
  const nameOffset = 64 + 56; // 0x78
  const ccOffset = (nameOffset + name.length + 7) & ~7; // 0x90
  const body = new Bytes()
    .u16(57)
    .u8(0) // SecurityFlags
    .u8(OplockLevel.LEASE)
    .u32(ImpersonationLevel.Impersonation)
    .u64(0n) // SmbCreateFlags
    .u64(0n) // Reserved
    .u32(AccessMask.FILE_READ_DATA | AccessMask.SYNCHRONIZE | AccessMask.FILE_READ_ATTRIBUTES)
    .u32(0x80) // FILE_ATTRIBUTE_NORMAL
    .u32(ShareAccess.FILE_SHARE_READ | ShareAccess.FILE_SHARE_WRITE)
    .u32(CreateDisposition.FILE_OPEN_IF)
    .u32(CreateOptions.FILE_NON_DIRECTORY_FILE)
    .u16(nameOffset)
    .u16(name.length)
    .u32(ccOffset)
    .u32(chain.length)
    .raw(name)
    .zeros(ccOffset - nameOffset - name.length)
    .raw(chain)
    .build();
  return msgOf(body);
}

describe('CREATE request (MS-SMB2 2.2.13)', () => {
  it('decodes a golden request with four contexts', () => {
    const r = decodeCreateRequest(goldenCreate());
    expect(r.RequestedOplockLevel).toBe(0xff);
    expect(r.ImpersonationLevel).toBe(2);
    expect(r.DesiredAccess).toBe(0x0010_0081);
    expect(r.FileAttributes).toBe(0x80);
    expect(r.ShareAccess).toBe(3);
    expect(r.CreateDisposition).toBe(3);
    expect(r.CreateOptions).toBe(0x40);
    expect(r.Name).toBe('dir\\file.txt');
    expect(r.CreateContexts.map((c) => c.Name)).toEqual(['MxAc', 'RqLs', 'DH2Q', '45BCA66AEFA7F74A9008FA462E144D74']);
    expect(r.CreateContexts[0]!.Data.length).toBe(0);

    const lease = decodeLease(findCreateContext(r.CreateContexts, 'RqLs')!.Data);
    expect(lease).toMatchObject({ version: 2, LeaseState: 7, LeaseFlags: 4, LeaseDuration: 0n, Epoch: 3 });
    expect(lease.LeaseKey).toEqual(leaseKey);
    expect(lease.version === 2 && lease.ParentLeaseKey).toEqual(parentKey);

    const dh2q = decodeDurableHandleRequestV2(findCreateContext(r.CreateContexts, 'DH2Q')!.Data);
    expect(dh2q.Timeout).toBe(60000);
    expect(dh2q.Flags).toBe(DurableHandleFlags.SMB2_DHANDLE_FLAG_PERSISTENT);
    expect(dh2q.CreateGuid).toEqual(createGuid);

    const app = decodeAppInstanceId(findCreateContext(r.CreateContexts, CreateContextName.APP_INSTANCE_ID)!.Data);
    expect(app.AppInstanceId).toEqual(createGuid);
  });

  it('returns views into the message, not copies', () => {
    const m = goldenCreate();
    const r = decodeCreateRequest(m);
    const data = r.CreateContexts[1]!.Data;
    expect(data.buffer).toBe(m.buffer);
    m[data.byteOffset - m.byteOffset] = 0x99;
    expect(data[0]).toBe(0x99);
  });

  it('accepts an empty name (share root) with any NameOffset', () => {
    const body = new Bytes().u16(57).zeros(42).u16(0xffff).u16(0).u32(0).u32(0).u8(0).build();
    const r = decodeCreateRequest(msgOf(body));
    expect(r.Name).toBe('');
    expect(r.CreateContexts).toEqual([]);
  });

  it('rejects a wrong StructureSize, a name past the end, an odd name and a misaligned chain', () => {
    const good = goldenCreate();
    const bad = (edit: (m: Buffer) => void): void => {
      const m = Buffer.from(good);
      edit(m);
      expect(() => decodeCreateRequest(m)).toThrow(MalformedError);
    };
    bad((m) => m.writeUInt16LE(56, 64));
    bad((m) => m.writeUInt16LE(0x7000, 64 + 46)); // NameLength past the end
    bad((m) => m.writeUInt16LE(23, 64 + 46)); // odd NameLength
    bad((m) => m.writeUInt16LE(64 + 40, 64 + 44)); // name inside the fixed body
    bad((m) => m.writeUInt32LE(0x94, 64 + 48)); // CreateContextsOffset not 8-aligned
    bad((m) => m.writeUInt32LE(0x10000, 64 + 52)); // chain past the end
    expect(() => decodeCreateRequest(good.subarray(0, 64 + 55))).toThrow(MalformedError);
  });

  it('fuzz: only MalformedError escapes', () => {
    fuzzDecoder(decodeCreateRequest, goldenCreate());
  });
});

describe('create context chain (MS-SMB2 2.2.13.2)', () => {
  it('rejects misaligned Next, short names, data outside the context, misaligned data', () => {
    const two = Buffer.concat([ctx(Buffer.from('AlSi'), Buffer.alloc(8), false), ctx(Buffer.from('TWrp'), Buffer.alloc(8), true)]);
    expect(decodeCreateContexts(two).map((c) => c.Name)).toEqual(['AlSi', 'TWrp']);
    const bad = (edit: (b: Buffer) => void): void => {
      const b = Buffer.from(two);
      edit(b);
      expect(() => decodeCreateContexts(b)).toThrow(MalformedError);
    };
    bad((b) => b.writeUInt32LE(20, 0)); // Next not a multiple of 8
    bad((b) => b.writeUInt32LE(two.length, 0)); // Next past the chain
    bad((b) => b.writeUInt16LE(3, 6)); // NameLength < 4
    bad((b) => b.writeUInt16LE(12, 4)); // name inside the header
    bad((b) => b.writeUInt32LE(64, 12)); // data past its context
    bad((b) => b.writeUInt16LE(20, 10)); // DataOffset not 8-aligned
    expect(() => decodeCreateContexts(two.subarray(0, 10))).toThrow(MalformedError);
    // A well-formed second context at an unaligned offset (20) is still rejected: Next % 8 != 0.
    const first = ctx(Buffer.from('MxAc'), Buffer.alloc(0), true);
    first.writeUInt32LE(20, 0);
    const unaligned = Buffer.concat([first, ctx(Buffer.from('QFid'), Buffer.alloc(0), true)]);
    expect(() => decodeCreateContexts(unaligned)).toThrow(/Next 20/);
    const aligned = Buffer.concat([first, Buffer.alloc(4), ctx(Buffer.from('QFid'), Buffer.alloc(0), true)]);
    aligned.writeUInt32LE(24, 0);
    expect(decodeCreateContexts(aligned).map((c) => c.Name)).toEqual(['MxAc', 'QFid']);
  });

  it('encodes 8-byte aligned chains that decode back', () => {
    const list = [
      { Name: 'MxAc', Data: encodeMaximalAccessResponse({ QueryStatus: 0, MaximalAccess: 0x1f01ff }) },
      { Name: 'QFid', Data: encodeQueryOnDiskIdResponse({ DiskFileId: 0x1234n, VolumeId: 0x99n }) },
      { Name: 'DH2Q', Data: encodeDurableHandleResponseV2({ Timeout: 120000, Flags: 2 }) },
      { Name: CreateContextName.APP_INSTANCE_VERSION, Data: encodeAppInstanceVersion({ AppInstanceVersionHigh: 5n, AppInstanceVersionLow: 6n }) },
      { Name: 'DHnQ', Data: encodeDurableHandleResponse() },
    ];
    const chain = encodeCreateContexts(list);
    expect(chain.length).toBe(createContextsByteLength(list));
    // First context: Next = 16 + 4 name + 4 pad + 8 data = 32, DataOffset 24.
    expect(chain.readUInt32LE(0)).toBe(32);
    expect(chain.readUInt16LE(4)).toBe(16);
    expect(chain.readUInt16LE(6)).toBe(4);
    expect(chain.readUInt16LE(10)).toBe(24);
    expect(chain.readUInt32LE(12)).toBe(8);
    expect(chain.subarray(16, 20).toString('latin1')).toBe('MxAc');
    const back = decodeCreateContexts(chain);
    expect(back.map((c) => c.Name)).toEqual(list.map((c) => c.Name));
    back.forEach((c, i) => expect(c.Data).toEqual(list[i]!.Data));
    expect(decodeMaximalAccessResponse(back[0]!.Data)).toEqual({ QueryStatus: 0, MaximalAccess: 0x1f01ff });
    expect(back[1]!.Data.toString('hex')).toBe('3412000000000000' + '9900000000000000' + '00'.repeat(16));
    expect(decodeDurableHandleResponseV2(back[2]!.Data)).toEqual({ Timeout: 120000, Flags: 2 });
    expect(decodeAppInstanceVersion(back[3]!.Data)).toEqual({ AppInstanceVersionHigh: 5n, AppInstanceVersionLow: 6n });
    expect(back[4]!.Data).toEqual(Buffer.alloc(8));
  });

  it('fuzz: only MalformedError escapes', () => {
    const valid = Buffer.concat([ctx(Buffer.from('RqLs'), leaseV2Data(), false), ctx(Buffer.from('MxAc'), Buffer.alloc(8), true)]);
    fuzzDecoder(decodeCreateContexts, valid);
  });
});

describe('create context payloads', () => {
  it('MxAc request with and without a timestamp', () => {
    expect(decodeMaximalAccessRequest(Buffer.alloc(0))).toEqual({});
    const t = Buffer.alloc(8);
    t.writeBigInt64LE(132_000_000_000_000_000n);
    expect(decodeMaximalAccessRequest(t)).toEqual({ Timestamp: 132_000_000_000_000_000n });
    expect(() => decodeMaximalAccessRequest(Buffer.alloc(4))).toThrow(MalformedError);
  });

  it('DHnQ, DHnC, DH2C, AlSi, TWrp sizes and fields', () => {
    expect(decodeDurableHandleRequest(Buffer.alloc(16))).toEqual({});
    expect(() => decodeDurableHandleRequest(Buffer.alloc(8))).toThrow(MalformedError);
    const fid = Buffer.alloc(16);
    encodeFileId({ Persistent: 7n, Volatile: 9n }, fid, 0);
    expect(decodeDurableHandleReconnect(fid)).toEqual({ FileId: { Persistent: 7n, Volatile: 9n } });
    const dh2c = encodeDurableHandleReconnectV2({ FileId: { Persistent: 1n, Volatile: 2n }, CreateGuid: createGuid, Flags: 2 });
    expect(dh2c.length).toBe(36);
    expect(decodeDurableHandleReconnectV2(dh2c)).toEqual({ FileId: { Persistent: 1n, Volatile: 2n }, CreateGuid: createGuid, Flags: 2 });
    expect(decodeDurableHandleRequestV2(encodeDurableHandleRequestV2({ Timeout: 5, Flags: 0, CreateGuid: createGuid }))).toEqual({
      Timeout: 5,
      Flags: 0,
      CreateGuid: createGuid,
    });
    expect(decodeAllocationSize(Buffer.from('0010000000000000', 'hex'))).toEqual({ AllocationSize: 0x1000n });
    expect(decodeTimewarpToken(encodeTimewarpToken(123n))).toEqual({ Timestamp: 123n });
    expect(decodeAppInstanceId(encodeAppInstanceId(createGuid)).AppInstanceId).toEqual(createGuid);
    expect(() => decodeAppInstanceId(new Bytes().u16(24).u16(0).raw(createGuid).build())).toThrow(MalformedError);
  });

  it('RqLs v1 and v2 round trip and golden v1 layout', () => {
    const v1 = encodeLease({ version: 1, LeaseKey: leaseKey, LeaseState: LeaseState.SMB2_LEASE_READ_CACHING | LeaseState.SMB2_LEASE_HANDLE_CACHING, LeaseFlags: 0, LeaseDuration: 0n });
    expect(v1.toString('hex')).toBe(leaseKey.toString('hex') + '03000000' + '00000000' + '0000000000000000');
    expect(decodeLease(v1)).toMatchObject({ version: 1, LeaseState: 3 });
    const v2 = encodeLease({ version: 2, LeaseKey: leaseKey, LeaseState: 5, LeaseFlags: 4, LeaseDuration: 0n, ParentLeaseKey: parentKey, Epoch: 9 });
    expect(v2.length).toBe(52);
    expect(decodeLease(v2)).toMatchObject({ version: 2, LeaseState: 5, LeaseFlags: 4, Epoch: 9 });
    expect(() => decodeLease(Buffer.alloc(40))).toThrow(MalformedError);
  });
});

describe('CREATE response (MS-SMB2 2.2.14)', () => {
  it('encodes the golden layout with contexts at 0x98', () => {
    const enc = createResponse({
      OplockLevel: OplockLevel.BATCH,
      CreateAction: CreateAction.FILE_CREATED,
      CreationTime: 0x01d0_0000_0000_0001n,
      LastAccessTime: 2n,
      LastWriteTime: 3n,
      ChangeTime: 4n,
      AllocationSize: 4096n,
      EndofFile: 10n,
      FileAttributes: 0x20,
      FileId: { Persistent: 0x1111n, Volatile: 0x2222n },
      CreateContexts: [{ Name: 'MxAc', Data: encodeMaximalAccessResponse({ QueryStatus: 0, MaximalAccess: 0x1f01ff }) }],
    });
    const { body } = encodeBody(enc);
    expect(body.length).toBe(88 + 32);
    expect(body.readUInt16LE(0)).toBe(89);
    expect(body[2]).toBe(9);
    expect(body.readUInt32LE(4)).toBe(2);
    expect(body.readBigUInt64LE(8)).toBe(0x01d0_0000_0000_0001n);
    expect(body.readBigUInt64LE(40)).toBe(4096n);
    expect(body.readBigUInt64LE(48)).toBe(10n);
    expect(body.readUInt32LE(56)).toBe(0x20);
    expect(decodeFileId(body, 64)).toEqual({ Persistent: 0x1111n, Volatile: 0x2222n });
    expect(body.readUInt32LE(80)).toBe(0x98);
    expect(body.readUInt32LE(84)).toBe(32);
    expect(decodeCreateContexts(body.subarray(88))[0]!.Name).toBe('MxAc');
  });

  it('has no context offset when there are no contexts', () => {
    const { body } = encodeBody(
      createResponse({
        OplockLevel: 0, CreateAction: 1, CreationTime: 0n, LastAccessTime: 0n, LastWriteTime: 0n, ChangeTime: 0n,
        AllocationSize: 0n, EndofFile: 0n, FileAttributes: 0x10, FileId: FILE_ID_ANY,
      }),
    );
    expect(body.length).toBe(88);
    expect(body.readUInt32LE(80)).toBe(0);
    expect(body.readUInt32LE(84)).toBe(0);
    expect(isFileIdAny(decodeFileId(body, 64))).toBe(true);
  });
});
