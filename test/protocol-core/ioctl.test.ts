import { describe, expect, it } from 'vitest';
import { Command } from '../../src/protocol/header.js';
import { decodeIoctlRequest, FsctlCode, fsctlName, IoctlFlags, ioctlResponse } from '../../src/protocol/ioctl.js';
import { decodeValidateNegotiateInfoRequest, encodeValidateNegotiateInfoResponse } from '../../src/protocol/validate-negotiate.js';
import { encodeBody, expectMalformed, fuzzDecoder, hex, message, onlyMalformed } from './helpers.js';
import fc from 'fast-check';

const FF16 = 'ff'.repeat(16);
// MS-SMB2 2.2.31.4 VALIDATE_NEGOTIATE_INFO input: Capabilities | Guid | SecurityMode | DialectCount 4 | Dialects
const vniInput = hex(`7f000000 00112233445566778899aabbccddeeff 0100 0400 0202 1002 0003 0203`);
// MS-SMB2 2.2.31: StructureSize 57 | Reserved | CtlCode | FileId | InputOffset 120 | InputCount 32 |
// MaxInputResponse 0 | OutputOffset 120 | OutputCount 0 | MaxOutputResponse 24 | Flags IS_FSCTL | Reserved2 | Buffer
const golden = message(
  Command.IOCTL,
  hex(`3900 0000 04021400 ${FF16} 78000000 20000000 00000000 78000000 00000000 18000000 01000000 00000000 ${vniInput.toString('hex')}`),
);

describe('IOCTL (MS-SMB2 2.2.31/2.2.32)', () => {
  it('decodes the golden request', () => {
    const r = decodeIoctlRequest(golden);
    expect(r).toMatchObject({
      StructureSize: 57,
      CtlCode: FsctlCode.VALIDATE_NEGOTIATE_INFO,
      FileId: { Persistent: 0xffffffffffffffffn, Volatile: 0xffffffffffffffffn },
      InputOffset: 120,
      InputCount: 32,
      MaxInputResponse: 0,
      OutputOffset: 120,
      OutputCount: 0,
      MaxOutputResponse: 24,
      Flags: IoctlFlags.IS_FSCTL,
    });
    expect(r.Input.equals(vniInput)).toBe(true);
    expect(r.Input.buffer).toBe(golden.buffer);
    expect(r.Output.length).toBe(0);
  });

  it('rejects input outside the message, overlapping the fixed part, and short bodies', () => {
    expectMalformed(() => decodeIoctlRequest(golden.subarray(0, golden.length - 1)));
    const early = Buffer.from(golden);
    early.writeUInt32LE(100, 64 + 24);
    expectMalformed(() => decodeIoctlRequest(early));
    const huge = Buffer.from(golden);
    huge.writeUInt32LE(0xffffffff, 64 + 28);
    expectMalformed(() => decodeIoctlRequest(huge));
    const out = Buffer.from(golden);
    out.writeUInt32LE(8, 64 + 40);
    out.writeUInt32LE(0xfffffff8, 64 + 36);
    expectMalformed(() => decodeIoctlRequest(out));
    expectMalformed(() => decodeIoctlRequest(golden.subarray(0, 64 + 55)));
  });

  it('encodes a response whose output travels as an uncopied payload', () => {
    const output = Buffer.alloc(24, 0x5a);
    const enc = ioctlResponse({ CtlCode: FsctlCode.VALIDATE_NEGOTIATE_INFO, FileId: { Persistent: 2n ** 64n - 1n, Volatile: 2n ** 64n - 1n }, Output: output });
    expect(enc.byteLength()).toBe(48);
    expect(enc.payload).toBe(output);
    expect(encodeBody(enc).toString('hex')).toBe(
      hex(`3100 0000 04021400 ${FF16} 70000000 00000000 70000000 18000000 00000000 00000000`).toString('hex'),
    );
  });

  it('aligns Output after an echoed Input; no payload when there is no output', () => {
    const enc = ioctlResponse({ CtlCode: FsctlCode.PIPE_TRANSCEIVE, FileId: { Persistent: 1n, Volatile: 2n }, Input: hex('aabbcc'), Output: hex('01') });
    const body = encodeBody(enc);
    expect(body.length).toBe(56);
    expect(body.readUInt32LE(24)).toBe(112); // InputOffset
    expect(body.readUInt32LE(28)).toBe(3);
    expect(body.readUInt32LE(32)).toBe(120); // OutputOffset, 8-byte aligned
    expect(body.readUInt32LE(36)).toBe(1);
    expect(body.subarray(48).toString('hex')).toBe('aabbcc0000000000');

    const none = ioctlResponse({ CtlCode: FsctlCode.SET_SPARSE, FileId: { Persistent: 1n, Volatile: 2n } });
    expect(none.payload).toBeUndefined();
    expect(none.byteLength()).toBe(48);
  });

  it('FSCTL codes match MS-FSCC 2.3 / MS-SMB2 2.2.31', () => {
    expect(FsctlCode.DFS_GET_REFERRALS).toBe(0x00060194);
    expect(FsctlCode.PIPE_TRANSCEIVE).toBe(0x0011c017);
    expect(FsctlCode.SRV_COPYCHUNK_WRITE).toBe(0x001480f2);
    expect(FsctlCode.QUERY_NETWORK_INTERFACE_INFO).toBe(0x001401fc);
    expect(FsctlCode.SET_ZERO_DATA).toBe(0x000980c8);
    expect(FsctlCode.OFFLOAD_READ).toBe(0x00094264);
    expect(FsctlCode.DUPLICATE_EXTENTS_TO_FILE).toBe(0x00098344);
    const values = Object.values(FsctlCode);
    expect(new Set(values).size).toBe(values.length);
    expect(fsctlName(0x00140204)).toBe('FSCTL_VALIDATE_NEGOTIATE_INFO');
    expect(fsctlName(0x12345678)).toBe('0x12345678');
  });

  it('fuzz: throws only MalformedError', () => fuzzDecoder(decodeIoctlRequest, golden));
});

describe('VALIDATE_NEGOTIATE_INFO (MS-SMB2 2.2.31.4/2.2.32.6)', () => {
  it('decodes the golden input', () => {
    const r = decodeValidateNegotiateInfoRequest(vniInput);
    expect(r.Capabilities).toBe(0x7f);
    expect(r.Guid.toString('hex')).toBe('00112233445566778899aabbccddeeff');
    expect(r.SecurityMode).toBe(1);
    expect(r.DialectCount).toBe(4);
    expect(r.Dialects).toEqual([0x0202, 0x0210, 0x0300, 0x0302]);
  });

  it('rejects short inputs and dialect counts beyond the input', () => {
    expectMalformed(() => decodeValidateNegotiateInfoRequest(vniInput.subarray(0, 23)));
    expectMalformed(() => decodeValidateNegotiateInfoRequest(vniInput.subarray(0, 31)));
  });

  it('encodes the golden response', () => {
    const out = encodeValidateNegotiateInfoResponse({ Capabilities: 0x44, Guid: hex('f0e0d0c0b0a090807060504030201000'), SecurityMode: 1, Dialect: 0x0302 });
    expect(out.toString('hex')).toBe(hex('44000000 f0e0d0c0b0a090807060504030201000 0100 0203').toString('hex'));
  });

  it('fuzz: throws only MalformedError', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 80 }), (a) => onlyMalformed(decodeValidateNegotiateInfoRequest, Buffer.from(a))), { numRuns: 3000 });
  });
});
