import { describe, expect, it } from 'vitest';
import {
  Command,
  commandName,
  decodeHeader,
  encodeHeader,
  HeaderFlags,
  isAsync,
  SIGNATURE_OFFSET,
  SIGNATURE_SIZE,
} from '../../src/protocol/header.js';
import { expectMalformed, fuzzDecoder, hex } from './helpers.js';

// A sync SMB 3.1.1 request header, written from the MS-SMB2 2.2.1.2 table:
// ProtocolId FE 'SMB' | StructureSize 64 | CreditCharge 1 | ChannelSequence 3, Reserved 0 |
// Command READ (8) | CreditRequest 31 | Flags SIGNED|DFS | NextCommand 0 | MessageId 0x1122 |
// Reserved(ProcessId) 0xFEFF | TreeId 5 | SessionId 0x0000400000000011 | Signature 00..0F
const syncRequest = hex(`
  fe534d42 4000 0100 03000000 0800 1f00 08000010 00000000
  2211000000000000 fffe0000 05000000 1100000000400000
  000102030405060708090a0b0c0d0e0f`);

// An async response header (MS-SMB2 2.2.1.1): STATUS_PENDING, Flags SERVER_TO_REDIR|ASYNC, AsyncId 7.
const asyncResponse = hex(`
  fe534d42 4000 0000 03010000 0f00 0100 03000000 00000000
  0900000000000000 0700000000000000 1100000000400000
  00000000000000000000000000000000`);

describe('header (MS-SMB2 2.2.1)', () => {
  it('decodes a sync request header field by field', () => {
    const h = decodeHeader(syncRequest);
    expect(h).toMatchObject({
      ProtocolId: 0x424d53fe,
      StructureSize: 64,
      CreditCharge: 1,
      Status: 3,
      ChannelSequence: 3,
      Command: Command.READ,
      Credits: 31,
      Flags: HeaderFlags.SIGNED | HeaderFlags.DFS_OPERATIONS,
      NextCommand: 0,
      MessageId: 0x1122n,
      AsyncId: 0n,
      Reserved: 0xfeff,
      TreeId: 5,
      SessionId: 0x0000400000000011n,
    });
    expect(h.Signature.equals(hex('000102030405060708090a0b0c0d0e0f'))).toBe(true);
    // The signature is a view, not a copy.
    expect(h.Signature.buffer).toBe(syncRequest.buffer);
    expect(h.Signature.byteOffset).toBe(syncRequest.byteOffset + SIGNATURE_OFFSET);
  });

  it('decodes an async header: AsyncId instead of Reserved/TreeId', () => {
    const h = decodeHeader(asyncResponse);
    expect(isAsync(h.Flags)).toBe(true);
    expect(h.Status).toBe(0x103);
    expect(h.AsyncId).toBe(7n);
    expect(h.TreeId).toBe(0);
    expect(h.Reserved).toBe(0);
    expect(h.Command).toBe(Command.CHANGE_NOTIFY);
  });

  it('encodes the same bytes (sync and async)', () => {
    const a = Buffer.alloc(64, 0xaa);
    encodeHeader(
      {
        Command: Command.READ,
        MessageId: 0x1122n,
        CreditCharge: 1,
        Status: 3,
        Credits: 31,
        Flags: HeaderFlags.SIGNED | HeaderFlags.DFS_OPERATIONS,
        Reserved: 0xfeff,
        TreeId: 5,
        SessionId: 0x0000400000000011n,
        Signature: hex('000102030405060708090a0b0c0d0e0f'),
      },
      a,
      0,
    );
    expect(a.toString('hex')).toBe(syncRequest.toString('hex'));

    const b = Buffer.alloc(80, 0xaa);
    encodeHeader(
      {
        Command: Command.CHANGE_NOTIFY,
        MessageId: 9n,
        Status: 0x103,
        Credits: 1,
        Flags: HeaderFlags.SERVER_TO_REDIR | HeaderFlags.ASYNC_COMMAND,
        AsyncId: 7n,
        SessionId: 0x0000400000000011n,
      },
      b,
      16,
    );
    expect(b.subarray(16).toString('hex')).toBe(asyncResponse.toString('hex'));
    expect(b.subarray(0, 16).every((x) => x === 0xaa)).toBe(true);
  });

  it('writes NTSTATUS values above 2^31 unsigned', () => {
    const b = Buffer.alloc(64);
    encodeHeader({ Command: Command.CREATE, MessageId: 1n, Status: 0xc0000034 }, b, 0);
    expect(b.readUInt32LE(8)).toBe(0xc0000034);
    expect(decodeHeader(b).Status).toBe(0xc0000034);
  });

  it('rejects short, non-SMB2 and wrong StructureSize headers', () => {
    expectMalformed(() => decodeHeader(syncRequest.subarray(0, 63)));
    const p = Buffer.from(syncRequest);
    p[0] = 0xff;
    expectMalformed(() => decodeHeader(p));
    const s = Buffer.from(syncRequest);
    s.writeUInt16LE(65, 4);
    expectMalformed(() => decodeHeader(s));
  });

  it('constants match the spec', () => {
    expect(Command.NEGOTIATE).toBe(0);
    expect(Command.IOCTL).toBe(0x0b);
    expect(Command.OPLOCK_BREAK).toBe(0x12);
    expect(HeaderFlags.PRIORITY_MASK).toBe(0x70);
    expect(HeaderFlags.REPLAY_OPERATION).toBe(0x20000000);
    expect(SIGNATURE_OFFSET + SIGNATURE_SIZE).toBe(64);
    expect(commandName(0x0e)).toBe('QUERY_DIRECTORY');
    expect(commandName(0x99)).toBe('0x0099');
  });

  it('fuzz: decodeHeader throws only MalformedError', () => {
    fuzzDecoder(decodeHeader, syncRequest);
  });
});
