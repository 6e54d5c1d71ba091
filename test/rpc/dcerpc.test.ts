import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MalformedError } from '../../src/base/errors.js';
import {
  CONT_RESULT,
  FAULT,
  PFC,
  PROVIDER_REASON,
  PTYPE,
  bindTimeFeatures,
  decodeBind,
  decodeBindAck,
  decodeBindNak,
  decodeCommonHeader,
  decodeFault,
  decodeRequest,
  decodeResponse,
  encodeBindAck,
  encodeBindNak,
  encodeFault,
  encodeRequest,
  encodeResponseFragments,
  pduLength,
} from '../../src/protocol/dcerpc.js';
import { BTFN, NDR20, NDR64, SRVSVC_SYNTAX, windowsBind } from './helpers.js';

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');

describe('BIND', () => {
  it('decodes the three contexts a Windows client proposes', () => {
    const pdu = windowsBind(7, 4280);
    // Golden prefix: header, frags, assoc group, n_context_elem, first element.
    expect(pdu.subarray(0, 52)).toEqual(
      hex(
        '05000b03 10000000 a000 0000 07000000' + // rpc_vers 5.0, BIND, first|last, LE drep, frag 160, call 7
          'b810 b810 00000000' + // max_xmit_frag, max_recv_frag 4280, assoc_group_id 0
          '03 00 0000' + // n_context_elem 3
          '0000 01 00' + // p_cont_id 0, n_transfer_syn 1
          'c84f324b7016d30112785a47bf6ee188 03000000', // srvsvc 3.0
      ),
    );
    const bind = decodeBind(pdu);
    expect(bind.header).toMatchObject({ rpc_vers: 5, rpc_vers_minor: 0, PTYPE: PTYPE.BIND, frag_length: 160, call_id: 7 });
    expect(bind.max_xmit_frag).toBe(4280);
    expect(bind.p_context_elem.map((c) => [c.p_cont_id, c.abstract_syntax, c.transfer_syntaxes])).toEqual([
      [0, SRVSVC_SYNTAX, [NDR20]],
      [1, SRVSVC_SYNTAX, [NDR64]],
      [2, SRVSVC_SYNTAX, [BTFN]],
    ]);
    expect(bind.auth_verifier).toBeUndefined();
  });

  it('reads the bind-time feature bitmask from the syntax UUID (MS-RPCE 2.2.2.14)', () => {
    expect(bindTimeFeatures(BTFN)).toBe(3);
    expect(bindTimeFeatures({ if_uuid: '6cb71c2c-9812-4540-0200-000000000000', if_version: 1 })).toBe(2);
    expect(bindTimeFeatures({ if_uuid: '6cb71c2c-9812-4540-0300-000000000000', if_version: 2 })).toBeUndefined();
    expect(bindTimeFeatures(NDR20)).toBeUndefined();
  });

  it('rejects contexts that run past the PDU', () => {
    const pdu = Buffer.from(windowsBind());
    pdu[24] = 4; // one more element than present
    expect(() => decodeBind(pdu)).toThrow(MalformedError);
    pdu[24] = 3;
    pdu[28 + 2] = 9; // first element claims nine transfer syntaxes
    expect(() => decodeBind(pdu)).toThrow(MalformedError);
  });
});

describe('BIND_ACK', () => {
  it('encodes the secondary address as a NUL-terminated port_spec padded to 4 bytes', () => {
    const pdu = encodeBindAck({
      call_id: 1,
      max_xmit_frag: 4280,
      max_recv_frag: 4280,
      assoc_group_id: 0x1234,
      sec_addr: '\\PIPE\\srvsvc',
      p_result_list: [
        { result: CONT_RESULT.acceptance, reason: 0, transfer_syntax: NDR20 },
        { result: CONT_RESULT.provider_rejection, reason: PROVIDER_REASON.proposed_transfer_syntaxes_not_supported, transfer_syntax: { if_uuid: '00000000-0000-0000-0000-000000000000', if_version: 0 } },
      ],
    });
    expect(pdu).toEqual(
      hex(
        '05000c03 10000000 5c00 0000 01000000' +
          'b810 b810 34120000' +
          '0d00 5c504950455c73727673766300 00' + // length 13, "\PIPE\srvsvc\0", pad
          '02 00 0000' +
          '0000 0000 045d888aeb1cc9119fe808002b104860 02000000' +
          '0200 0200 00000000000000000000000000000000 00000000',
      ),
    );
    const back = decodeBindAck(pdu);
    expect(back.sec_addr).toBe('\\PIPE\\srvsvc');
    expect(back.assoc_group_id).toBe(0x1234);
    expect(back.p_result_list[0]).toEqual({ result: 0, reason: 0, transfer_syntax: NDR20 });
  });

  it('sends an empty secondary address with length 0 (alter_context_resp)', () => {
    const pdu = encodeBindAck({
      PTYPE: PTYPE.ALTER_CONTEXT_RESP,
      call_id: 2,
      max_xmit_frag: 4280,
      max_recv_frag: 4280,
      assoc_group_id: 1,
      sec_addr: '',
      p_result_list: [],
    });
    expect(pdu).toEqual(hex('05000f03 10000000 2000 0000 02000000 b810 b810 01000000 0000 0000 00 00 0000'));
    expect(decodeBindAck(pdu).sec_addr).toBe('');
  });
});

describe('BIND_NAK, REQUEST, RESPONSE, FAULT', () => {
  it('encodes BIND_NAK with the supported protocol version', () => {
    const pdu = encodeBindNak(3, 8);
    expect(pdu).toEqual(hex('05000d03 10000000 1800 0000 03000000 0800 01 0500 000000'));
    expect(decodeBindNak(pdu)).toMatchObject({ provider_reject_reason: 8, versions: [{ rpc_vers: 5, rpc_vers_minor: 0 }] });
  });

  it('round-trips REQUEST and strips an auth verifier', () => {
    const stub = hex('0102030405060708');
    const pdu = encodeRequest({ call_id: 9, p_cont_id: 1, opnum: 15, stub });
    expect(pdu.subarray(0, 24)).toEqual(hex('05000003 10000000 2000 0000 09000000 08000000 0100 0f00'));
    const req = decodeRequest(pdu);
    expect([req.opnum, req.p_cont_id, req.alloc_hint, req.stub]).toEqual([15, 1, 8, stub]);

    // stub, 4 bytes auth padding, sec_trailer (auth_pad_length 4), 16-byte auth_value
    const withAuth = Buffer.concat([pdu, Buffer.alloc(4, 0xbb), hex('0a 06 04 00 00000000'), Buffer.alloc(16, 0xcc)]);
    withAuth.writeUInt16LE(withAuth.length, 8);
    withAuth.writeUInt16LE(16, 10);
    const authed = decodeRequest(withAuth);
    expect(authed.stub).toEqual(stub);
    expect(authed.auth_verifier!.length).toBe(24);
  });

  it('decodes a REQUEST with an object UUID', () => {
    const pdu = Buffer.concat([encodeRequest({ call_id: 1, p_cont_id: 0, opnum: 2, stub: Buffer.alloc(0) }), hex('045d888aeb1cc9119fe808002b104860 aabb')]);
    pdu[3]! |= PFC.OBJECT_UUID;
    pdu.writeUInt16LE(pdu.length, 8);
    const req = decodeRequest(pdu);
    expect(req.object).toBe('8a885d04-1ceb-11c9-9fe8-08002b104860');
    expect(req.stub).toEqual(hex('aabb'));
  });

  it('fragments a response by max_xmit_frag with first/last flags and alloc_hint', () => {
    const stub = Buffer.from(Array.from({ length: 5000 }, (_, i) => i & 0xff));
    const frags = encodeResponseFragments({ call_id: 4, p_cont_id: 0, stub, max_xmit_frag: 2048 });
    expect(frags.map((f) => f.length)).toEqual([2048, 2048, 5000 - 2 * 2024 + 24]);
    expect(frags.map((f) => f[3])).toEqual([PFC.FIRST_FRAG, 0, PFC.LAST_FRAG]);
    expect(frags.map((f) => decodeResponse(f).alloc_hint)).toEqual([5000, 5000 - 2024, 5000 - 4048]);
    expect(Buffer.concat(frags.map((f) => decodeResponse(f).stub))).toEqual(stub);
  });

  it('sends an empty stub as one fragment', () => {
    const frags = encodeResponseFragments({ call_id: 4, p_cont_id: 0, stub: Buffer.alloc(0), max_xmit_frag: 2048 });
    expect(frags).toEqual([hex('05000203 10000000 1800 0000 04000000 00000000 0000 00 00')]);
  });

  it('encodes FAULT with status and reserved bytes', () => {
    const pdu = encodeFault({ call_id: 5, p_cont_id: 1, status: FAULT.nca_s_op_rng_error, did_not_execute: true });
    expect(pdu).toEqual(hex('05000323 10000000 2000 0000 05000000 00000000 0100 00 00 0200011c 00000000'));
    expect(decodeFault(pdu).status).toBe(0x1c010002);
  });
});

describe('framing', () => {
  it('reports frag_length once ten bytes are present', () => {
    const pdu = windowsBind();
    expect(pduLength(pdu.subarray(0, 9))).toBeUndefined();
    expect(pduLength(pdu.subarray(0, 10))).toBe(160);
  });

  it('refuses streams that cannot be connection-oriented DCE/RPC', () => {
    expect(() => pduLength(hex('04'))).toThrow(MalformedError); // rpc_vers 4 (connectionless)
    expect(() => pduLength(hex('05000b03 00000000'))).toThrow(/data representation/); // big-endian
    expect(() => pduLength(hex('05000b03 10000000 0f00'))).toThrow(/frag_length/);
  });

  it('checks frag_length against the buffer and auth_length against the fragment', () => {
    const pdu = Buffer.from(windowsBind());
    expect(() => decodeCommonHeader(pdu.subarray(0, 100))).toThrow(MalformedError);
    pdu.writeUInt16LE(200, 10);
    expect(() => decodeCommonHeader(pdu)).toThrow(/auth_length/);
  });
});

describe('decoders on hostile input', () => {
  const decoders = [decodeBind, decodeBindAck, decodeBindNak, decodeRequest, decodeResponse, decodeFault, decodeCommonHeader];
  const valid = [
    windowsBind(),
    encodeRequest({ call_id: 1, p_cont_id: 0, opnum: 15, stub: Buffer.alloc(40, 1) }),
    encodeFault({ call_id: 1, p_cont_id: 0, status: 1 }),
    encodeBindNak(1, 0),
    encodeBindAck({ call_id: 1, max_xmit_frag: 1, max_recv_frag: 1, assoc_group_id: 1, sec_addr: '\\PIPE\\x', p_result_list: [{ result: 0, reason: 0, transfer_syntax: NDR20 }] }),
    ...encodeResponseFragments({ call_id: 1, p_cont_id: 0, stub: Buffer.alloc(10), max_xmit_frag: 2048 }),
  ];

  function onlyMalformed(bytes: Buffer): void {
    for (const decode of decoders) {
      try {
        decode(bytes);
      } catch (e) {
        if (!(e instanceof MalformedError)) throw e;
      }
    }
    try {
      pduLength(bytes);
    } catch (e) {
      if (!(e instanceof MalformedError)) throw e;
    }
  }

  it('random bytes', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), (b) => onlyMalformed(Buffer.from(b))), { numRuns: 3000 });
  });

  it('random bytes behind a plausible header', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 20 }), fc.uint8Array({ maxLength: 300 }), fc.integer({ min: 0, max: 400 }), (ptype, body, auth) => {
        const b = Buffer.concat([hex('05000003 10000000 0000 0000 01000000'), Buffer.from(body)]);
        b[2] = ptype;
        b.writeUInt16LE(b.length, 8);
        b.writeUInt16LE(auth, 10);
        onlyMalformed(b);
      }),
      { numRuns: 3000 },
    );
  });

  it('mutated valid PDUs', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...valid),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 6 }),
        fc.nat(),
        (pdu, edits, cut) => {
          const b = Buffer.from(pdu);
          for (const [at, v] of edits) b[at % b.length] = v;
          onlyMalformed(b);
          onlyMalformed(b.subarray(0, cut % (b.length + 1)));
        },
      ),
      { numRuns: 5000 },
    );
  });
});
