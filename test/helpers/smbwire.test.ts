// Unit tests of the test-side wire tap parsers (test/helpers/smbwire.ts): the e2e tests rely on
// them to tell which dialect and cipher were negotiated, so they must be right on their own.

import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import {
  classifyFrame,
  FrameSplitter,
  parseNegotiateRequest,
  parseNegotiateResponse,
  WireFormatError,
} from './smbwire.js';
import { parseLsBlocks, parseShareList } from './smbclient.js';

function header(Command: number, Flags: number, Status = 0, NextCommand = 0): Buffer {
  const h = Buffer.alloc(64);
  h.writeUInt32BE(0xfe534d42, 0);
  h.writeUInt16LE(64, 4);
  h.writeUInt32LE(Status, 8);
  h.writeUInt16LE(Command, 12);
  h.writeUInt32LE(Flags, 16);
  h.writeUInt32LE(NextCommand, 20);
  return h;
}

/** An SMB 3.1.1 NEGOTIATE response (MS-SMB2 2.2.4) with preauth, encryption and signing contexts. */
function negotiateResponse(cipher: number, signing: number): Buffer {
  const body = Buffer.alloc(64);
  body.writeUInt16LE(65, 0);
  body.writeUInt16LE(0x0001, 2); // SecurityMode
  body.writeUInt16LE(0x0311, 4); // DialectRevision
  body.writeUInt16LE(3, 6); // NegotiateContextCount
  body.writeUInt32LE(0x2f, 24); // Capabilities
  body.writeUInt32LE(8 * 1024 * 1024, 32); // MaxReadSize
  body.writeUInt32LE(8 * 1024 * 1024, 36); // MaxWriteSize
  body.writeUInt16LE(128, 56); // SecurityBufferOffset
  body.writeUInt16LE(6, 58); // SecurityBufferLength
  const security = Buffer.from('spnego');
  const ctxOffset = 64 + 64 + 8; // header + body + security buffer padded to 8
  body.writeUInt32LE(ctxOffset, 60);
  const preauth = Buffer.alloc(8 + 38);
  preauth.writeUInt16LE(0x0001, 0);
  preauth.writeUInt16LE(38, 2);
  preauth.writeUInt16LE(1, 8);
  preauth.writeUInt16LE(32, 10);
  preauth.writeUInt16LE(0x0001, 12);
  const pad = Buffer.alloc((8 - (preauth.length % 8)) % 8);
  const enc = Buffer.alloc(8 + 4);
  enc.writeUInt16LE(0x0002, 0);
  enc.writeUInt16LE(4, 2);
  enc.writeUInt16LE(1, 8);
  enc.writeUInt16LE(cipher, 10);
  const pad2 = Buffer.alloc((8 - (enc.length % 8)) % 8);
  const sig = Buffer.alloc(8 + 4);
  sig.writeUInt16LE(0x0008, 0);
  sig.writeUInt16LE(4, 2);
  sig.writeUInt16LE(1, 8);
  sig.writeUInt16LE(signing, 10);
  return Buffer.concat([header(0, 1), body, security, Buffer.alloc(2), preauth, pad, enc, pad2, sig]);
}

function frame(msg: Buffer): Buffer {
  const h = Buffer.from([0, (msg.length >> 16) & 0xff, (msg.length >> 8) & 0xff, msg.length & 0xff]);
  return Buffer.concat([h, msg]);
}

describe('negotiate parsers', () => {
  test('reads dialect, cipher and signing algorithm of a 3.1.1 response', () => {
    const info = parseNegotiateResponse(negotiateResponse(0x0001, 0x0002));
    expect(info).toMatchObject({
      Status: 0,
      DialectRevision: 0x0311,
      SecurityMode: 1,
      Capabilities: 0x2f,
      MaxReadSize: 8 * 1024 * 1024,
      Ciphers: [0x0001],
      SigningAlgorithms: [0x0002],
      types: [0x0001, 0x0002, 0x0008],
    });
  });

  test('reads the dialects of a request', () => {
    const body = Buffer.alloc(36 + 6);
    body.writeUInt16LE(36, 0);
    body.writeUInt16LE(3, 2);
    body.writeUInt16LE(1, 4);
    body.writeUInt32LE(0x7f, 8);
    body.writeUInt16LE(0x0202, 36);
    body.writeUInt16LE(0x0210, 38);
    body.writeUInt16LE(0x0300, 40);
    expect(parseNegotiateRequest(Buffer.concat([header(0, 0), body]))).toEqual({
      Dialects: [0x0202, 0x0210, 0x0300],
      SecurityMode: 1,
      Capabilities: 0x7f,
      types: [],
    });
  });

  test('truncations and random bytes give WireFormatError, never another exception', () => {
    const good = negotiateResponse(2, 1);
    for (let n = 0; n < good.length; n++) {
      try {
        parseNegotiateResponse(good.subarray(0, n));
      } catch (e) {
        expect(e).toBeInstanceOf(WireFormatError);
      }
    }
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.nat(299), fc.integer({ min: 0, max: 255 }), (bytes, at, value) => {
        const mutated = Buffer.from(good);
        mutated[at % mutated.length] = value;
        for (const input of [Buffer.from(bytes), mutated]) {
          for (const parse of [parseNegotiateResponse, parseNegotiateRequest]) {
            try {
              parse(input);
            } catch (e) {
              if (!(e instanceof WireFormatError)) throw e;
            }
          }
          classifyFrame('s2c', input);
        }
      }),
    );
  });
});

describe('FrameSplitter and classifyFrame', () => {
  test('yields the same frames whatever the split point', () => {
    const a = frame(Buffer.concat([header(5, 8), Buffer.alloc(10)]));
    const b = frame(Buffer.concat([Buffer.from([0xfd, 0x53, 0x4d, 0x42]), Buffer.alloc(60)]));
    const stream = Buffer.concat([a, b, a]);
    for (let cut = 0; cut <= stream.length; cut++) {
      const got: Buffer[] = [];
      const s = new FrameSplitter((f) => got.push(Buffer.from(f)));
      s.push(stream.subarray(0, cut));
      s.push(stream.subarray(cut));
      expect(got.map((f) => f.length)).toEqual([74, 64, 74]);
      expect(got.map((f) => classifyFrame('c2s', f)[0]!.kind)).toEqual(['smb2', 'transform', 'smb2']);
    }
  });

  test('walks a compound chain by NextCommand', () => {
    const first = Buffer.concat([header(5, 0, 0, 72), Buffer.alloc(8)]);
    const second = Buffer.concat([header(6, 0x8 | 0x4, 0xc0000022), Buffer.alloc(8)]);
    const msgs = classifyFrame('s2c', Buffer.concat([first, second]));
    expect(msgs.map((m) => [m.Command, m.Flags, m.Status])).toEqual([
      [5, 0, 0],
      [6, 0xc, 0xc0000022],
    ]);
  });
});

describe('smbclient output parsers', () => {
  test('ls blocks and share list', () => {
    const ls = [
      '  .                                   D        0  Thu Nov 26 02:31:29 2026',
      '  big file.bin                        A  3000000  Thu Nov  6 02:31:29 2026',
      '',
      '\t\t264212084 blocks of size 1024. 79957316 blocks available',
      '  .                                   D        0  Thu Nov 26 02:31:29 2026',
      '',
      '\t\t264212084 blocks of size 1024. 79957316 blocks available',
    ].join('\n');
    expect(parseLsBlocks(ls)).toEqual([
      [
        { name: '.', attributes: 'D', size: 0 },
        { name: 'big file.bin', attributes: 'A', size: 3000000 },
      ],
      [{ name: '.', attributes: 'D', size: 0 }],
    ]);
    const list = '\n\tSharename       Type      Comment\n\t---------       ----      -------\n\tvms             Disk      \n\tIPC$            IPC       IPC Service\nSMB1 disabled -- no workgroup available\n';
    expect(parseShareList(list)).toEqual([
      { name: 'vms', type: 'Disk' },
      { name: 'IPC$', type: 'IPC' },
    ]);
  });
});
