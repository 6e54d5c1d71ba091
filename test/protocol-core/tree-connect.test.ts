import { describe, expect, it } from 'vitest';
import { Command } from '../../src/protocol/header.js';
import {
  decodeTreeConnectRequest,
  ShareCapabilities,
  ShareFlags,
  ShareType,
  TreeConnectFlags,
  treeConnectResponse,
} from '../../src/protocol/tree-connect.js';
import { encodeBody, expectMalformed, fuzzDecoder, hex, message } from './helpers.js';

const path = Buffer.from('\\\\srv\\vms', 'utf16le'); // 9 UTF-16 units, 18 bytes
// MS-SMB2 2.2.9: StructureSize 9 | Flags 0 | PathOffset 72 | PathLength 18 | Buffer
const golden = message(Command.TREE_CONNECT, hex(`0900 0000 4800 1200 ${path.toString('hex')}`));
// 3.1.1 with EXTENSION_PRESENT: Buffer starts with the 2.2.9.1 extension (16 bytes), PathName at 88.
const goldenExt = message(
  Command.TREE_CONNECT,
  hex(`0900 0400 5800 1200 | 6c000000 0100 ${'00'.repeat(10)} | ${path.toString('hex')} | 0100 0000 00000000`),
);

describe('TREE_CONNECT (MS-SMB2 2.2.9/2.2.10)', () => {
  it('decodes the golden request', () => {
    const r = decodeTreeConnectRequest(golden);
    expect(r).toEqual({
      StructureSize: 9,
      Flags: 0,
      PathOffset: 72,
      PathLength: 18,
      Path: '\\\\srv\\vms',
      TreeConnectContextOffset: 0,
      TreeConnectContextCount: 0,
    });
  });

  it('locates the path inside the 3.1.1 extension', () => {
    const r = decodeTreeConnectRequest(goldenExt);
    expect(r.Flags).toBe(TreeConnectFlags.EXTENSION_PRESENT);
    expect(r.Path).toBe('\\\\srv\\vms');
    expect(r.TreeConnectContextOffset).toBe(0x6c);
    expect(r.TreeConnectContextCount).toBe(1);
    // Before 3.1.1 the field is Reserved: ignored, so the extension header is not skipped.
    const old = Buffer.from(goldenExt);
    old.writeUInt16LE(72, 68);
    expect(decodeTreeConnectRequest(old, false).Flags).toBe(0);
  });

  it('rejects malformed requests', () => {
    expectMalformed(() => decodeTreeConnectRequest(golden.subarray(0, golden.length - 2))); // path beyond message
    const odd = Buffer.from(golden);
    odd.writeUInt16LE(17, 70);
    expectMalformed(() => decodeTreeConnectRequest(odd)); // odd UTF-16 length
    const overlap = Buffer.from(goldenExt);
    overlap.writeUInt16LE(80, 68);
    expectMalformed(() => decodeTreeConnectRequest(overlap)); // path inside the extension header
    expectMalformed(() => decodeTreeConnectRequest(goldenExt.subarray(0, 80))); // extension truncated
    const size = Buffer.from(golden);
    size.writeUInt16LE(8, 64);
    expectMalformed(() => decodeTreeConnectRequest(size));
  });

  it('encodes the golden response', () => {
    const body = encodeBody(
      treeConnectResponse({
        ShareType: ShareType.DISK,
        ShareFlags: ShareFlags.ENCRYPT_DATA | ShareFlags.NO_CACHING,
        Capabilities: ShareCapabilities.CONTINUOUS_AVAILABILITY,
        MaximalAccess: 0x001f01ff,
      }),
    );
    expect(body.toString('hex')).toBe(hex('1000 01 00 30800000 10000000 ff011f00').toString('hex'));
  });

  it('fuzz: throws only MalformedError', () => {
    fuzzDecoder(decodeTreeConnectRequest, golden);
    fuzzDecoder(decodeTreeConnectRequest, goldenExt);
  });
});
