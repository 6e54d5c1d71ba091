import { describe, expect, it } from 'vitest';
import {
  decodeTransformHeader,
  encodeTransformHeader,
  isCompressionTransform,
  isTransform,
  TRANSFORM_AAD_OFFSET,
  TRANSFORM_HEADER_SIZE,
} from '../../src/protocol/transform.js';
import { expectMalformed, fuzzDecoder, hex } from './helpers.js';

const nonce = hex('000102030405060708090a0b0c0d0e0f');
const ciphertext = Buffer.alloc(70, 0xc3);
// MS-SMB2 2.2.41: ProtocolId FD 'SMB' | Signature | Nonce | OriginalMessageSize 70 | Reserved | Flags 1 | SessionId
const golden = Buffer.concat([
  hex(`fd534d42 ${'aa'.repeat(16)} ${nonce.toString('hex')} 46000000 0000 0100 1100000000400000`),
  ciphertext,
]);

describe('TRANSFORM_HEADER (MS-SMB2 2.2.41)', () => {
  it('detects transform and compression-transform frames', () => {
    expect(isTransform(golden)).toBe(true);
    expect(isTransform(hex('fe534d42'))).toBe(false);
    expect(isTransform(hex('fd53'))).toBe(false);
    expect(isCompressionTransform(hex('fc534d42 00000000'))).toBe(true);
    expect(isCompressionTransform(golden)).toBe(false);
  });

  it('decodes the golden header into views; AAD is bytes 20..52 (3.1.4.3)', () => {
    const t = decodeTransformHeader(golden);
    expect(t.Signature.toString('hex')).toBe('aa'.repeat(16));
    expect(t.Nonce.equals(nonce)).toBe(true);
    expect(t.OriginalMessageSize).toBe(70);
    expect(t.Flags).toBe(1);
    expect(t.SessionId).toBe(0x0000400000000011n);
    expect(TRANSFORM_AAD_OFFSET).toBe(20);
    expect(t.aad.length).toBe(32);
    expect(t.aad.equals(golden.subarray(20, 52))).toBe(true);
    expect(t.aad.subarray(0, 16).equals(nonce)).toBe(true);
    expect(t.aad.subarray(24).toString('hex')).toBe('1100000000400000');
    expect(t.ciphertext.equals(ciphertext)).toBe(true);
    expect(t.ciphertext.buffer).toBe(golden.buffer);
    expect(t.aad.byteOffset).toBe(golden.byteOffset + 20);
  });

  it('enforces the 3.3.5.2.1.1 disconnect rules', () => {
    expectMalformed(() => decodeTransformHeader(golden.subarray(0, TRANSFORM_HEADER_SIZE))); // not longer than the header
    expectMalformed(() => decodeTransformHeader(golden.subarray(0, golden.length - 1))); // size mismatch
    const flags = Buffer.from(golden);
    flags.writeUInt16LE(2, 42);
    expectMalformed(() => decodeTransformHeader(flags));
    const small = Buffer.concat([golden.subarray(0, 52), Buffer.alloc(10)]);
    small.writeUInt32LE(10, 36);
    expectMalformed(() => decodeTransformHeader(small)); // cannot hold an SMB2 header
    const proto = Buffer.from(golden);
    proto[0] = 0xfe;
    expectMalformed(() => decodeTransformHeader(proto));
  });

  it('encodes the golden header with a zero signature, padding short nonces', () => {
    const h = encodeTransformHeader({ Nonce: nonce, OriginalMessageSize: 70, SessionId: 0x0000400000000011n });
    const expected = Buffer.from(golden.subarray(0, 52));
    expected.fill(0, 4, 20);
    expect(h.toString('hex')).toBe(expected.toString('hex'));
    const ccm = encodeTransformHeader({ Nonce: nonce.subarray(0, 11), OriginalMessageSize: 1, SessionId: 1n, Flags: 1 });
    expect(ccm.subarray(20, 36).toString('hex')).toBe('000102030405060708090a0000000000');
  });

  it('fuzz: throws only MalformedError', () => fuzzDecoder(decodeTransformHeader, golden));
});
