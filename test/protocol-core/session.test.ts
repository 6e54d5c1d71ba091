import { describe, expect, it } from 'vitest';
import { Command } from '../../src/protocol/header.js';
import { decodeSessionSetupRequest, SessionFlags, SessionSetupFlags, sessionSetupResponse } from '../../src/protocol/session-setup.js';
import { decodeLogoffRequest, logoffResponse } from '../../src/protocol/logoff.js';
import { decodeTreeDisconnectRequest, treeDisconnectResponse } from '../../src/protocol/tree-disconnect.js';
import { decodeEchoRequest, echoResponse } from '../../src/protocol/echo.js';
import { decodeCancelRequest } from '../../src/protocol/cancel.js';
import { errorResponse } from '../../src/protocol/error.js';
import { encodeBody, expectMalformed, fuzzDecoder, hex, message } from './helpers.js';

// MS-SMB2 2.2.5: StructureSize 25 | Flags BINDING | SecurityMode 3 | Capabilities DFS | Channel 0 |
// SecurityBufferOffset 88 | SecurityBufferLength 4 | PreviousSessionId 0x1122334455667788 | Buffer
const goldenSetup = message(Command.SESSION_SETUP, hex('1900 01 03 01000000 00000000 5800 0400 8877665544332211 a0b1c2d3'));

describe('SESSION_SETUP (MS-SMB2 2.2.5/2.2.6)', () => {
  it('decodes the golden request', () => {
    const r = decodeSessionSetupRequest(goldenSetup);
    expect(r).toMatchObject({
      StructureSize: 25,
      Flags: SessionSetupFlags.BINDING,
      SecurityMode: 3,
      Capabilities: 1,
      Channel: 0,
      SecurityBufferOffset: 88,
      SecurityBufferLength: 4,
      PreviousSessionId: 0x1122334455667788n,
    });
    expect(r.SecurityBuffer.toString('hex')).toBe('a0b1c2d3');
    expect(r.SecurityBuffer.buffer).toBe(goldenSetup.buffer);
  });

  it('accepts an empty security buffer whatever its offset, and the odd-size body without Buffer', () => {
    const r = decodeSessionSetupRequest(message(Command.SESSION_SETUP, hex('1900 00 01 00000000 00000000 0000 0000 0000000000000000')));
    expect(r.SecurityBuffer.length).toBe(0);
  });

  it('rejects buffers outside the message or overlapping the fixed part', () => {
    expectMalformed(() => decodeSessionSetupRequest(goldenSetup.subarray(0, goldenSetup.length - 1)));
    const early = Buffer.from(goldenSetup);
    early.writeUInt16LE(80, 64 + 12);
    expectMalformed(() => decodeSessionSetupRequest(early));
    const size = Buffer.from(goldenSetup);
    size.writeUInt16LE(24, 64);
    expectMalformed(() => decodeSessionSetupRequest(size));
    expectMalformed(() => decodeSessionSetupRequest(goldenSetup.subarray(0, 64 + 23)));
  });

  it('encodes the golden response', () => {
    const body = encodeBody(sessionSetupResponse({ SessionFlags: SessionFlags.ENCRYPT_DATA, SecurityBuffer: hex('a107') }));
    expect(body.toString('hex')).toBe(hex('0900 0400 4800 0200 a107').toString('hex'));
    expect(SessionFlags.IS_GUEST | SessionFlags.IS_NULL).toBe(3);
  });

  it('fuzz: throws only MalformedError', () => fuzzDecoder(decodeSessionSetupRequest, goldenSetup));
});

describe('4-byte requests and responses (LOGOFF 2.2.7, TREE_DISCONNECT 2.2.11, ECHO 2.2.28, CANCEL 2.2.30)', () => {
  const decoders = [
    [Command.LOGOFF, decodeLogoffRequest],
    [Command.TREE_DISCONNECT, decodeTreeDisconnectRequest],
    [Command.ECHO, decodeEchoRequest],
    [Command.CANCEL, decodeCancelRequest],
  ] as const;
  for (const [cmd, decode] of decoders) {
    it(`command ${cmd}: StructureSize 4 is required`, () => {
      const ok = message(cmd, hex('0400 0000'));
      expect(decode(ok)).toEqual({ StructureSize: 4 });
      expectMalformed(() => decode(message(cmd, hex('0500 0000'))));
      expectMalformed(() => decode(ok.subarray(0, 67)));
      fuzzDecoder(decode, ok, 500);
    });
  }
  it('responses are 04 00 00 00', () => {
    for (const enc of [logoffResponse(), treeDisconnectResponse(), echoResponse()]) {
      expect(encodeBody(enc).toString('hex')).toBe('04000000');
    }
  });
});

describe('ERROR response (MS-SMB2 2.2.2)', () => {
  it('has one zero byte of ErrorData when ByteCount is 0', () => {
    const enc = errorResponse();
    expect(enc.byteLength()).toBe(9);
    expect(encodeBody(enc).toString('hex')).toBe('0900000000000000' + '00');
  });
  it('carries ErrorData (BUFFER_TOO_SMALL required size) and ErrorContextCount', () => {
    expect(encodeBody(errorResponse(hex('10000000'))).toString('hex')).toBe(hex('0900 00 00 04000000 10000000').toString('hex'));
    const ctx = hex('0400 0000 00000000 aabbccdd'); // ErrorDataLength 4, ErrorId 0, data
    expect(encodeBody(errorResponse(ctx, 1)).toString('hex')).toBe(hex(`0900 01 00 0c000000 ${ctx.toString('hex')}`).toString('hex'));
  });
});
