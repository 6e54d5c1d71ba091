import { describe, expect, it } from 'vitest';
import { decodeSmb1NegotiateDialects, isSmb1Negotiate, Smb1Dialect } from '../../src/protocol/smb1-negotiate.js';
import { expectMalformed, hex, mutated, onlyMalformed } from './helpers.js';
import fc from 'fast-check';

const dialectBytes = Buffer.from('\x02NT LM 0.12\x00\x02SMB 2.002\x00\x02SMB 2.???\x00', 'latin1');
// MS-CIFS 2.2.3.1 header: Protocol FF 'SMB' | Command 0x72 | Status | Flags 0x18 | Flags2 0xC853 |
// PIDHigh | SecurityFeatures | Reserved | TID 0xFFFF | PIDLow 0xFEFF | UID | MID; then WordCount 0, ByteCount.
const golden = Buffer.concat([
  hex('ff534d42 72 00000000 18 53c8 0000 0000000000000000 0000 ffff feff 0000 0000 00'),
  Buffer.from([dialectBytes.length, 0]),
  dialectBytes,
]);

describe('SMB1 NEGOTIATE (MS-SMB2 3.3.5.3.1, MS-CIFS 2.2.4.52.1)', () => {
  it('detects it', () => {
    expect(isSmb1Negotiate(golden)).toBe(true);
    const other = Buffer.from(golden);
    other[4] = 0x73;
    expect(isSmb1Negotiate(other)).toBe(false);
    expect(isSmb1Negotiate(golden.subarray(0, 31))).toBe(false);
    expect(isSmb1Negotiate(hex('fe534d42'.padEnd(80, '0')))).toBe(false);
  });

  it('decodes the dialect strings in order', () => {
    expect(decodeSmb1NegotiateDialects(golden)).toEqual(['NT LM 0.12', Smb1Dialect.SMB2_002, Smb1Dialect.SMB2_WILDCARD]);
  });

  it('rejects a bad WordCount, BufferFormat, ByteCount or missing terminator', () => {
    const wc = Buffer.from(golden);
    wc[32] = 1;
    expectMalformed(() => decodeSmb1NegotiateDialects(wc));
    const bf = Buffer.from(golden);
    bf[35] = 0x03;
    expectMalformed(() => decodeSmb1NegotiateDialects(bf));
    expectMalformed(() => decodeSmb1NegotiateDialects(golden.subarray(0, golden.length - 1)));
    const unterminated = Buffer.from(golden);
    unterminated[unterminated.length - 1] = 0x41;
    expectMalformed(() => decodeSmb1NegotiateDialects(unterminated));
    expectMalformed(() => decodeSmb1NegotiateDialects(golden.subarray(0, 34)));
  });

  it('fuzz: throws only MalformedError', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 120 }), (a) => onlyMalformed(decodeSmb1NegotiateDialects, Buffer.from(a))), { numRuns: 2000 });
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 120 }), (a) => onlyMalformed(decodeSmb1NegotiateDialects, Buffer.concat([golden.subarray(0, 32), Buffer.from(a)]))),
      { numRuns: 2000 },
    );
    fc.assert(fc.property(mutated(golden), (b) => onlyMalformed(decodeSmb1NegotiateDialects, b)), { numRuns: 4000 });
  });
});
