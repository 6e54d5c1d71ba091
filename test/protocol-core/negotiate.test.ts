import { describe, expect, it } from 'vitest';
import {
  CipherId,
  decodeNegotiateRequest,
  Dialect,
  encryptionContext,
  GlobalCap,
  HashAlgorithm,
  NegotiateContextType,
  negotiateResponse,
  preauthIntegrityContext,
  SecurityMode,
  SigningAlgorithm,
  signingContext,
} from '../../src/protocol/negotiate.js';
import { encodeBody, expectMalformed, fuzzDecoder, hex, message } from './helpers.js';

const salt = Buffer.from(Array.from({ length: 32 }, (_, i) => i + 1));

// SMB 3.1.1 NEGOTIATE request body built from the MS-SMB2 2.2.3 / 2.2.3.1 tables.
const golden311 = message(
  0,
  hex(`
  2400 0200 0100 0000 7f000000 00112233445566778899aabbccddeeff
  68000000 0200 0000
  0203 1103
  0100 2600 00000000 | 0100 2000 0100 ${salt.toString('hex')} | 0000
  0200 0400 00000000 | 0100 0200`),
);

/** Builds a 3.1.1 request with the given contexts laid out per 2.2.3.1 (8-byte aligned). */
function build311(dialects: number[], contexts: { type: number; data: Buffer }[], padLast = false): Buffer {
  const fixed = Buffer.alloc(36);
  fixed.writeUInt16LE(36, 0);
  fixed.writeUInt16LE(dialects.length, 2);
  fixed.writeUInt16LE(1, 4);
  const d = Buffer.alloc(2 * dialects.length);
  dialects.forEach((x, i) => d.writeUInt16LE(x, 2 * i));
  let msg = Buffer.concat([Buffer.alloc(64), fixed, d]);
  const pad = (b: Buffer) => Buffer.concat([b, Buffer.alloc((8 - (b.length % 8)) % 8)]);
  msg = pad(msg);
  fixed.writeUInt32LE(msg.length, 28);
  fixed.writeUInt16LE(contexts.length, 32);
  contexts.forEach((c, i) => {
    const h = Buffer.alloc(8);
    h.writeUInt16LE(c.type, 0);
    h.writeUInt16LE(c.data.length, 2);
    msg = Buffer.concat([msg, h, c.data]);
    if (i < contexts.length - 1 || padLast) msg = pad(msg);
  });
  fixed.copy(msg, 64);
  msg.write('fe534d42', 0, 'hex');
  msg.writeUInt16LE(64, 4);
  return msg;
}

const u16s = (...v: number[]) => {
  const b = Buffer.alloc(2 * v.length);
  v.forEach((x, i) => b.writeUInt16LE(x, 2 * i));
  return b;
};

const allContexts = [
  { type: 1, data: Buffer.concat([u16s(1, 32, 1), salt]) },
  { type: 2, data: u16s(4, 4, 3, 2, 1) },
  { type: 3, data: Buffer.concat([u16s(2, 0), hex('01000000'), u16s(5, 4)]) },
  { type: 5, data: Buffer.from('fileserver', 'utf16le') },
  { type: 6, data: hex('01000000') },
  { type: 7, data: Buffer.concat([u16s(2, 0), hex('00000000'), u16s(1, 2)]) },
  { type: 8, data: u16s(3, 2, 1, 0) },
  { type: 0x0100, data: hex('93ad25509cb411e7b42383de968bcd7c') }, // POSIX extensions: unknown here
];

describe('NEGOTIATE request (MS-SMB2 2.2.3)', () => {
  it('decodes the golden 3.1.1 request', () => {
    const r = decodeNegotiateRequest(golden311);
    expect(r.StructureSize).toBe(36);
    expect(r.DialectCount).toBe(2);
    expect(r.SecurityMode).toBe(SecurityMode.SIGNING_ENABLED);
    expect(r.Capabilities).toBe(0x7f);
    expect(r.ClientGuid.toString('hex')).toBe('00112233445566778899aabbccddeeff');
    expect(r.Dialects).toEqual([Dialect.SMB302, Dialect.SMB311]);
    expect(r.NegotiateContextOffset).toBe(0x68);
    expect(r.NegotiateContextCount).toBe(2);
    expect(r.ClientStartTime).toBe(0n);
    expect(r.NegotiateContexts.map((c) => c.ContextType)).toEqual([1, 2]);
    expect(r.PreauthIntegrity?.HashAlgorithms).toEqual([HashAlgorithm.SHA512]);
    expect(r.PreauthIntegrity?.Salt.equals(salt)).toBe(true);
    expect(r.PreauthIntegrity?.Salt.buffer).toBe(golden311.buffer); // a view
    expect(r.Encryption?.Ciphers).toEqual([CipherId.AES_128_GCM]);
    expect(r.DuplicateContextTypes).toEqual([]);
    expect(r.Signing).toBeUndefined();
  });

  it('reads ClientStartTime and ignores contexts without 0x0311', () => {
    const body = hex(`2400 0200 0200 0000 00000000 ${'00'.repeat(16)} 0807060504030201 0202 1002`);
    const r = decodeNegotiateRequest(message(0, body));
    expect(r.Dialects).toEqual([0x0202, 0x0210]);
    expect(r.ClientStartTime).toBe(0x0102030405060708n);
    expect(r.NegotiateContexts).toEqual([]);
    expect(r.NegotiateContextCount).toBe(0);
  });

  it('decodes every context type and keeps unknown ones raw', () => {
    const msg = build311([0x0202, 0x0210, 0x0300, 0x0302, 0x0311], allContexts);
    const r = decodeNegotiateRequest(msg);
    expect(r.NegotiateContexts.map((c) => c.ContextType)).toEqual([1, 2, 3, 5, 6, 7, 8, 0x100]);
    expect(r.Encryption?.Ciphers).toEqual([4, 3, 2, 1]);
    expect(r.Compression).toEqual({ Flags: 1, CompressionAlgorithms: [5, 4] });
    expect(r.NetName).toBe('fileserver');
    expect(r.Transport).toEqual({ Flags: 1 });
    expect(r.RdmaTransform).toEqual({ RdmaTransformIds: [1, 2] });
    expect(r.Signing?.SigningAlgorithms).toEqual([2, 1, 0]);
    expect(r.NegotiateContexts[7]!.Data.toString('hex')).toBe('93ad25509cb411e7b42383de968bcd7c');
    // The last context may or may not be padded.
    expect(decodeNegotiateRequest(build311([0x0311], allContexts, true)).NegotiateContexts).toHaveLength(8);
  });

  it('reports duplicate contexts (3.3.5.4) and decodes the first occurrence', () => {
    const msg = build311([0x0311], [allContexts[0]!, { type: 2, data: u16s(1, 2) }, { type: 2, data: u16s(1, 1) }, allContexts[0]!]);
    const r = decodeNegotiateRequest(msg);
    expect(r.DuplicateContextTypes.sort()).toEqual([1, 2]);
    expect(r.Encryption?.Ciphers).toEqual([2]);
  });

  it('rejects malformed requests', () => {
    // DialectCount 0 (3.3.5.4).
    expectMalformed(() => decodeNegotiateRequest(message(0, hex(`2400 0000 0100 0000 00000000 ${'00'.repeat(24)}`))));
    // Wrong StructureSize / truncated fixed part / dialects beyond the message.
    const wrong = Buffer.from(golden311);
    wrong.writeUInt16LE(37, 64);
    expectMalformed(() => decodeNegotiateRequest(wrong));
    expectMalformed(() => decodeNegotiateRequest(golden311.subarray(0, 99)));
    expectMalformed(() => decodeNegotiateRequest(golden311.subarray(0, 102)));
    // Context offset not 8-byte aligned, or overlapping the dialects.
    const unaligned = Buffer.from(golden311);
    unaligned.writeUInt32LE(0x6a, 92);
    expectMalformed(() => decodeNegotiateRequest(unaligned));
    const overlap = Buffer.from(golden311);
    overlap.writeUInt32LE(0x60, 92);
    expectMalformed(() => decodeNegotiateRequest(overlap));
    // More contexts declared than present; data beyond the message.
    const more = Buffer.from(golden311);
    more.writeUInt16LE(3, 96);
    expectMalformed(() => decodeNegotiateRequest(more));
    expectMalformed(() => decodeNegotiateRequest(golden311.subarray(0, golden311.length - 1)));
    // HashAlgorithmCount 0, CipherCount 0, SigningAlgorithmCount 0.
    expectMalformed(() => decodeNegotiateRequest(build311([0x311], [{ type: 1, data: u16s(0, 0) }])));
    expectMalformed(() => decodeNegotiateRequest(build311([0x311], [{ type: 2, data: u16s(0) }])));
    expectMalformed(() => decodeNegotiateRequest(build311([0x311], [{ type: 8, data: u16s(0) }])));
    // Salt longer than the context.
    expectMalformed(() => decodeNegotiateRequest(build311([0x311], [{ type: 1, data: u16s(1, 40, 1) }])));
  });

  it('fuzz: throws only MalformedError', () => {
    fuzzDecoder(decodeNegotiateRequest, golden311);
    fuzzDecoder(decodeNegotiateRequest, build311([0x0202, 0x0311], allContexts), 1000);
  });
});

describe('NEGOTIATE response (MS-SMB2 2.2.4)', () => {
  it('encodes the golden 3.1.1 response with three contexts', () => {
    const enc = negotiateResponse({
      SecurityMode: SecurityMode.SIGNING_ENABLED,
      DialectRevision: Dialect.SMB311,
      ServerGuid: hex('f0e0d0c0b0a090807060504030201000'),
      Capabilities: GlobalCap.LARGE_MTU | GlobalCap.LEASING,
      MaxTransactSize: 0x100000,
      MaxReadSize: 0x800000,
      MaxWriteSize: 0x800000,
      SystemTime: 0x01d9000000000001n,
      ServerStartTime: 0n,
      SecurityBuffer: hex('a1b2c3'),
      NegotiateContexts: [
        preauthIntegrityContext(Buffer.alloc(32, 0x11)),
        encryptionContext(CipherId.AES_128_GCM),
        signingContext(SigningAlgorithm.AES_GMAC),
      ],
    });
    const expected = hex(`
      4100 0100 1103 0300 f0e0d0c0b0a090807060504030201000
      06000000 00001000 00008000 00008000
      010000000000d901 0000000000000000
      8000 0300 88000000
      a1b2c3 0000000000
      0100 2600 00000000 | 0100 2000 0100 ${'11'.repeat(32)} | 0000
      0200 0400 00000000 | 0100 0200 | 00000000
      0800 0400 00000000 | 0100 0200`);
    expect(enc.byteLength()).toBe(148);
    expect(encodeBody(enc).toString('hex')).toBe(expected.toString('hex'));
  });

  it('encodes a pre-3.1.1 response without contexts (Reserved fields zero)', () => {
    const enc = negotiateResponse({
      SecurityMode: SecurityMode.SIGNING_ENABLED | SecurityMode.SIGNING_REQUIRED,
      DialectRevision: Dialect.SMB2_WILDCARD,
      ServerGuid: Buffer.alloc(16, 0x42),
      Capabilities: 0,
      MaxTransactSize: 65536,
      MaxReadSize: 65536,
      MaxWriteSize: 65536,
      SystemTime: 1n,
      ServerStartTime: 2n,
      SecurityBuffer: hex('6082'),
    });
    const body = encodeBody(enc);
    expect(body.length).toBe(66);
    expect(body.readUInt16LE(0)).toBe(65);
    expect(body.readUInt16LE(2)).toBe(3);
    expect(body.readUInt16LE(4)).toBe(0x02ff);
    expect(body.readUInt16LE(6)).toBe(0); // NegotiateContextCount/Reserved
    expect(body.readUInt16LE(56)).toBe(128);
    expect(body.readUInt16LE(58)).toBe(2);
    expect(body.readUInt32LE(60)).toBe(0); // NegotiateContextOffset/Reserved2
    expect(body.subarray(64).toString('hex')).toBe('6082');
  });

  it('builds response contexts per 2.2.4.1.x', () => {
    expect(preauthIntegrityContext(hex('aabb')).Data.toString('hex')).toBe('010002000100aabb');
    expect(encryptionContext(0).Data.toString('hex')).toBe('01000000');
    expect(signingContext(SigningAlgorithm.AES_CMAC)).toEqual({ ContextType: NegotiateContextType.SIGNING_CAPABILITIES, Data: hex('01000100') });
  });
});
