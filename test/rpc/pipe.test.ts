import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MalformedError, TesseraError } from '../../src/base/errors.js';
import {
  BIND_NAK_REASON,
  CONT_RESULT,
  FAULT,
  PFC,
  PTYPE,
  decodeBindAck,
  decodeBindNak,
  decodeCommonHeader,
  decodeFault,
  decodeResponse,
  encodeBind,
  encodeRequest,
  pduLength,
} from '../../src/protocol/dcerpc.js';
import { RpcFault, RpcPipeEndpoint, openablePipeNames, type RpcService } from '../../src/rpc/pipe.js';
import { STYPE } from '../../src/rpc/srvsvc.js';
import {
  NDR20,
  NDR64,
  SHARES,
  SRVSVC_SYNTAX,
  drain,
  endpoint,
  fragmentRequest,
  shareEnumStub,
  splitPdus,
  srvsvc,
  windowsBind,
} from './helpers.js';

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');

const MANY = Array.from({ length: 120 }, (_, i) => ({ name: `s${i}`, type: STYPE.DISKTREE, remark: `share ${i}` }));

function bound(frag = 4280, shares = SHARES): RpcPipeEndpoint {
  const ep = endpoint(shares);
  ep.write(windowsBind(1, frag));
  expect(decodeBindAck(drain(ep)[0]!).p_result_list[0]!.result).toBe(CONT_RESULT.acceptance);
  return ep;
}

/** Reassembled stub of the RESPONSE fragments of one call (asserting their flags). */
function responseStub(pdus: Buffer[]): Buffer {
  const frags = pdus.map(decodeResponse);
  expect(frags[0]!.header.pfc_flags & PFC.FIRST_FRAG).toBeTruthy();
  expect(frags[frags.length - 1]!.header.pfc_flags & PFC.LAST_FRAG).toBeTruthy();
  return Buffer.concat(frags.map((f) => f.stub));
}

describe('bind', () => {
  it('answers NDR, NDR64 and bind-time feature contexts as Windows and Samba do (golden)', () => {
    const ep = endpoint();
    const out = ep.transceive(windowsBind(1, 4280), 4280);
    expect(out.more).toBe(false);
    expect(out.output).toEqual(
      hex(
        '05000c03 10000000 7400 0000 01000000' +
          'b810 b810 34120000' + // 4280/4280, assoc_group_id 0x1234
          '0d00 5c504950455c73727673766300 00' + // "\PIPE\srvsvc"
          '03 00 0000' +
          '0000 0000 045d888aeb1cc9119fe808002b104860 02000000' + // acceptance, NDR 2.0
          '0200 0200 00000000000000000000000000000000 00000000' + // NDR64: proposed transfer syntaxes not supported
          '0300 0200 00000000000000000000000000000000 00000000', // negotiate_ack, KeepConnectionOnOrphan only
      ),
    );
  });

  it('negotiates the fragment size: at least 2048, at most 5840, a multiple of 8', () => {
    const frag = (x: number, r: number) => {
      const ep = endpoint();
      ep.write(encodeBind({ call_id: 1, max_xmit_frag: x, max_recv_frag: r, assoc_group_id: 0, p_context_elem: [{ p_cont_id: 0, abstract_syntax: SRVSVC_SYNTAX, transfer_syntaxes: [NDR20] }] }));
      return decodeBindAck(drain(ep)[0]!).max_xmit_frag;
    };
    expect(frag(4280, 4280)).toBe(4280);
    expect(frag(65535, 65535)).toBe(5840);
    expect(frag(1432, 4280)).toBe(2048);
    expect(frag(3001, 5000)).toBe(3000);
  });

  it('rejects an unknown interface and an interface version it does not serve', () => {
    const ep = endpoint();
    ep.write(
      encodeBind({
        call_id: 1, max_xmit_frag: 4280, max_recv_frag: 4280, assoc_group_id: 0,
        p_context_elem: [
          { p_cont_id: 0, abstract_syntax: { if_uuid: '12345778-1234-abcd-ef00-0123456789ab', if_version: 0 }, transfer_syntaxes: [NDR20] },
          { p_cont_id: 1, abstract_syntax: { ...SRVSVC_SYNTAX, if_version: 2 }, transfer_syntaxes: [NDR20] },
          { p_cont_id: 2, abstract_syntax: { ...SRVSVC_SYNTAX, if_version: 3 | (1 << 16) }, transfer_syntaxes: [NDR20] },
        ],
      }),
    );
    const ack = decodeBindAck(drain(ep)[0]!);
    expect(ack.p_result_list.map((r) => [r.result, r.reason])).toEqual([[2, 1], [2, 1], [2, 1]]);
    // No context bound: a request on one faults with nca_s_unk_if, the association stays.
    ep.write(encodeRequest({ call_id: 2, p_cont_id: 0, opnum: 15, stub: shareEnumStub(1) }));
    const fault = decodeFault(drain(ep)[0]!);
    expect([fault.status, fault.header.pfc_flags & PFC.DID_NOT_EXECUTE]).toEqual([FAULT.nca_s_unk_if, PFC.DID_NOT_EXECUTE]);
    expect(ep.failed).toBe(false);
  });

  it('naks a bind with authentication, with no contexts, or with two feature contexts', () => {
    const withAuth = Buffer.concat([windowsBind(), hex('0a020000 00000000'), Buffer.alloc(16)]);
    withAuth.writeUInt16LE(withAuth.length, 8);
    withAuth.writeUInt16LE(16, 10);
    const noContexts = encodeBind({ call_id: 1, max_xmit_frag: 4280, max_recv_frag: 4280, assoc_group_id: 0, p_context_elem: [] });
    const btfn = { if_uuid: '6cb71c2c-9812-4540-0300-000000000000', if_version: 1 };
    const twoFeatures = encodeBind({
      call_id: 1, max_xmit_frag: 4280, max_recv_frag: 4280, assoc_group_id: 0,
      p_context_elem: [0, 1].map((p_cont_id) => ({ p_cont_id, abstract_syntax: SRVSVC_SYNTAX, transfer_syntaxes: [btfn] })),
    });
    const cases: Array<[Buffer, number]> = [
      [withAuth, BIND_NAK_REASON.authentication_type_not_recognized],
      [noContexts, BIND_NAK_REASON.protocol_version_not_supported],
      [twoFeatures, BIND_NAK_REASON.reason_not_specified],
    ];
    for (const [pdu, reason] of cases) {
      const ep = endpoint();
      ep.write(pdu);
      expect(decodeBindNak(drain(ep)[0]!).provider_reject_reason).toBe(reason);
      expect(ep.failed).toBe(true);
      expect(() => ep.write(windowsBind())).toThrow(MalformedError);
    }
  });

  it('faults a second bind and a request before any bind', () => {
    const ep = bound();
    ep.write(windowsBind(2));
    expect(decodeFault(drain(ep)[0]!)).toMatchObject({ status: FAULT.nca_proto_error, header: { call_id: 2 } });
    expect(ep.failed).toBe(true);

    const fresh = endpoint();
    fresh.write(encodeRequest({ call_id: 1, p_cont_id: 0, opnum: 15, stub: shareEnumStub(1) }));
    expect(decodeFault(drain(fresh)[0]!).status).toBe(FAULT.nca_proto_error);
  });

  it('adds contexts with ALTER_CONTEXT and answers with an empty secondary address', () => {
    const ep = endpoint();
    ep.write(encodeBind({ call_id: 1, max_xmit_frag: 4280, max_recv_frag: 4280, assoc_group_id: 0, p_context_elem: [{ p_cont_id: 0, abstract_syntax: SRVSVC_SYNTAX, transfer_syntaxes: [NDR64] }] }));
    expect(decodeBindAck(drain(ep)[0]!).p_result_list[0]!.result).toBe(CONT_RESULT.provider_rejection);
    ep.write(encodeBind({ PTYPE: PTYPE.ALTER_CONTEXT, call_id: 2, max_xmit_frag: 4280, max_recv_frag: 4280, assoc_group_id: 0, p_context_elem: [{ p_cont_id: 5, abstract_syntax: SRVSVC_SYNTAX, transfer_syntaxes: [NDR64, NDR20] }] }));
    const resp = decodeBindAck(drain(ep)[0]!);
    expect(resp.header.PTYPE).toBe(PTYPE.ALTER_CONTEXT_RESP);
    expect(resp.sec_addr).toBe('');
    expect(resp.p_result_list).toEqual([{ result: 0, reason: 0, transfer_syntax: NDR20 }]);
    ep.write(encodeRequest({ call_id: 3, p_cont_id: 5, opnum: 15, stub: shareEnumStub(0) }));
    expect(decodeResponse(drain(ep)[0]!).p_cont_id).toBe(5);
  });

  it('faults ALTER_CONTEXT before a bind', () => {
    const ep = endpoint();
    ep.write(encodeBind({ PTYPE: PTYPE.ALTER_CONTEXT, call_id: 1, max_xmit_frag: 4280, max_recv_frag: 4280, assoc_group_id: 0, p_context_elem: [{ p_cont_id: 0, abstract_syntax: SRVSVC_SYNTAX, transfer_syntaxes: [NDR20] }] }));
    expect(decodeFault(drain(ep)[0]!).status).toBe(FAULT.nca_proto_error);
    expect(ep.failed).toBe(true);
  });
});

describe('calls', () => {
  it('answers an unknown opnum with nca_s_op_rng_error and keeps the association', () => {
    const ep = bound();
    ep.write(encodeRequest({ call_id: 2, p_cont_id: 0, opnum: 99, stub: Buffer.alloc(0) }));
    const f = decodeFault(drain(ep)[0]!);
    expect([f.status, f.header.call_id, f.header.pfc_flags]).toEqual([FAULT.nca_s_op_rng_error, 2, PFC.FIRST_FRAG | PFC.LAST_FRAG | PFC.DID_NOT_EXECUTE]);
    ep.write(encodeRequest({ call_id: 3, p_cont_id: 0, opnum: 15, stub: shareEnumStub(1) }));
    expect(decodeResponse(drain(ep)[0]!).header.call_id).toBe(3);
  });

  it('answers malformed stub data with rpc_x_bad_stub_data', () => {
    const ep = bound();
    ep.write(encodeRequest({ call_id: 2, p_cont_id: 0, opnum: 15, stub: hex('00000000 01000000') }));
    expect(decodeFault(drain(ep)[0]!).status).toBe(FAULT.rpc_x_bad_stub_data);
    expect(ep.failed).toBe(false);
  });

  it('maps service failures to faults', () => {
    const failing: RpcService = {
      uuid: SRVSVC_SYNTAX.if_uuid, version: 3, name: 'srvsvc',
      call(opnum) {
        if (opnum === 1) throw new RpcFault(FAULT.access_denied);
        throw new Error('disk on fire');
      },
    };
    const ep = new RpcPipeEndpoint([failing], { maxBufferedBytes: 1 << 20 });
    ep.write(windowsBind());
    drain(ep);
    ep.write(encodeRequest({ call_id: 2, p_cont_id: 0, opnum: 1, stub: Buffer.alloc(0) }));
    ep.write(encodeRequest({ call_id: 3, p_cont_id: 0, opnum: 2, stub: Buffer.alloc(0) }));
    expect(drain(ep).map((p) => decodeFault(p).status)).toEqual([FAULT.access_denied, FAULT.other]);
  });

  it('reassembles a fragmented request (C706 12.6.3.7)', () => {
    const whole = bound();
    whole.write(encodeRequest({ call_id: 2, p_cont_id: 0, opnum: 15, stub: shareEnumStub(1) }));
    const expected = responseStub(drain(whole));

    for (const chunk of [1, 4, 7, 8, 35]) {
      const ep = bound();
      const frags = fragmentRequest(2, 15, shareEnumStub(1), chunk);
      expect(frags.length).toBe(Math.ceil(36 / chunk));
      for (const f of frags.slice(0, -1)) {
        expect(ep.transceive(f, 4280).output.length).toBe(0); // nothing until the last fragment
      }
      ep.write(frags[frags.length - 1]!);
      expect(responseStub(drain(ep))).toEqual(expected);
    }
  });

  it('faults a new call while another is being reassembled, on the call in progress', () => {
    const ep = bound();
    const frags = fragmentRequest(2, 15, shareEnumStub(1), 8);
    ep.write(frags[0]!);
    ep.write(encodeRequest({ call_id: 3, p_cont_id: 0, opnum: 15, stub: shareEnumStub(1) }));
    expect(decodeFault(drain(ep)[0]!)).toMatchObject({ status: FAULT.nca_proto_error, header: { call_id: 2 } });
    expect(ep.failed).toBe(true);
  });

  it('faults a continuation fragment of no call', () => {
    const ep = bound();
    ep.write(fragmentRequest(2, 15, shareEnumStub(1), 8)[1]!);
    expect(decodeFault(drain(ep)[0]!).status).toBe(FAULT.nca_proto_error);
  });

  it('bounds reassembly by maxBufferedBytes', () => {
    const ep = new RpcPipeEndpoint([srvsvc()], { maxBufferedBytes: 65536 });
    ep.write(windowsBind());
    drain(ep);
    const part = Buffer.alloc(30_000);
    ep.write(encodeRequest({ call_id: 2, pfc_flags: PFC.FIRST_FRAG, p_cont_id: 0, opnum: 15, stub: part }));
    ep.write(encodeRequest({ call_id: 2, pfc_flags: 0, p_cont_id: 0, opnum: 15, stub: part }));
    expect(drain(ep)).toEqual([]);
    ep.write(encodeRequest({ call_id: 2, pfc_flags: 0, p_cont_id: 0, opnum: 15, stub: part }));
    expect(decodeFault(drain(ep)[0]!).status).toBe(FAULT.nca_proto_error);
  });

  it('drops an orphaned call and keeps the association (MS-RPCE 3.3.1.5.10)', () => {
    const ep = bound();
    ep.write(fragmentRequest(2, 15, shareEnumStub(1), 8)[0]!);
    const orphaned = Buffer.from(encodeRequest({ call_id: 2, p_cont_id: 0, opnum: 0, stub: Buffer.alloc(0) }).subarray(0, 16));
    orphaned[2] = PTYPE.ORPHANED;
    orphaned.writeUInt16LE(16, 8);
    ep.write(orphaned);
    ep.write(encodeRequest({ call_id: 3, p_cont_id: 0, opnum: 15, stub: shareEnumStub(1) }));
    expect(decodeResponse(drain(ep)[0]!).header.call_id).toBe(3);
  });

  it('fragments a large response by the negotiated max_xmit_frag', () => {
    const big = bound(5840, MANY);
    big.write(encodeRequest({ call_id: 2, p_cont_id: 0, opnum: 15, stub: shareEnumStub(1) }));
    const expected = responseStub(drain(big));
    expect(expected.length).toBeGreaterThan(3 * 2048);

    const ep = bound(2048, MANY);
    ep.write(encodeRequest({ call_id: 2, p_cont_id: 0, opnum: 15, stub: shareEnumStub(1) }));
    const frags = drain(ep);
    expect(frags.length).toBe(Math.ceil(expected.length / (2048 - 24)));
    for (const f of frags) expect(f.length).toBeLessThanOrEqual(2048);
    expect(frags.slice(1, -1).every((f) => (f[3]! & (PFC.FIRST_FRAG | PFC.LAST_FRAG)) === 0)).toBe(true);
    expect(responseStub(frags)).toEqual(expected);
  });
});

describe('pipe semantics', () => {
  const conversation = () => [
    windowsBind(1),
    encodeRequest({ call_id: 2, p_cont_id: 0, opnum: 15, stub: shareEnumStub(1) }),
    ...fragmentRequest(3, 16, hex('00000000 05000000 00000000 05000000 44006100 74006100 0000 0000 01000000'), 12),
    encodeRequest({ call_id: 4, p_cont_id: 0, opnum: 21, stub: hex('00000000 65000000') }),
  ];

  function outputOf(writes: Buffer[]): Buffer[] {
    const ep = endpoint();
    for (const w of writes) ep.write(w);
    return drain(ep);
  }

  it('handles several PDUs in one write', () => {
    const separately = outputOf(conversation());
    expect(separately.map((p) => decodeCommonHeader(p).PTYPE)).toEqual([PTYPE.BIND_ACK, PTYPE.RESPONSE, PTYPE.RESPONSE, PTYPE.RESPONSE]);
    expect(outputOf([Buffer.concat(conversation())])).toEqual(separately);
  });

  it('handles the stream split at every offset, and byte by byte', () => {
    const stream = Buffer.concat(conversation());
    const expected = outputOf(conversation());
    for (let cut = 0; cut <= stream.length; cut++) {
      expect(outputOf([stream.subarray(0, cut), stream.subarray(cut)])).toEqual(expected);
    }
    expect(outputOf([...stream].map((b) => Buffer.from([b])))).toEqual(expected);
  });

  it('copies input: the caller may reuse its buffer after write', () => {
    const ep = endpoint();
    const buf = Buffer.from(windowsBind());
    ep.write(buf.subarray(0, 50));
    buf.fill(0, 0, 50);
    ep.write(buf.subarray(50));
    expect(decodeBindAck(drain(ep)[0]!).p_result_list).toHaveLength(3);
  });

  it('reads one PDU at most per read, in pieces when the buffer is small', () => {
    const ep = endpoint();
    ep.write(Buffer.concat(conversation().slice(0, 2)));
    const ack = ep.readMessage(50)!;
    expect(ack.more).toBe(true);
    const rest = ep.readMessage(1000)!;
    expect(rest.more).toBe(false);
    expect(decodeBindAck(Buffer.concat([ack.output, rest.output])).p_result_list).toHaveLength(3);
    const resp = ep.read(1 << 20)!;
    expect(decodeCommonHeader(resp).PTYPE).toBe(PTYPE.RESPONSE);
    expect(ep.read(100)).toBeUndefined();
    expect(ep.pendingOutputBytes).toBe(0);
  });

  it('transceive truncates to maxOutput and leaves the rest for read (STATUS_BUFFER_OVERFLOW)', () => {
    const ep = bound();
    const t = ep.transceive(encodeRequest({ call_id: 2, p_cont_id: 0, opnum: 15, stub: shareEnumStub(1) }), 64);
    expect([t.output.length, t.more]).toEqual([64, true]);
    const rest = ep.read(4280)!;
    const pdu = Buffer.concat([t.output, rest]);
    expect(pdu.length).toBe(pduLength(pdu));
    expect(decodeResponse(pdu).header.call_id).toBe(2);
  });

  it('fails the association on an unframeable stream and then refuses writes', () => {
    const ep = endpoint();
    ep.write(hex('04000b03 10000000 2000 0000 01000000'));
    expect(decodeFault(drain(ep)[0]!).status).toBe(FAULT.nca_proto_error);
    expect(ep.failed).toBe(true);
    expect(() => ep.write(windowsBind())).toThrow(MalformedError);
  });

  it('stops processing while output is full and refuses input beyond the bound', () => {
    const ep = new RpcPipeEndpoint([srvsvc(MANY)], { maxBufferedBytes: 65536 });
    ep.write(windowsBind());
    drain(ep);
    const req = encodeRequest({ call_id: 2, p_cont_id: 0, opnum: 15, stub: shareEnumStub(1) });
    let thrown: unknown;
    try {
      for (let i = 0; i < 10_000; i++) ep.write(req);
    } catch (e) {
      thrown = e;
    }
    expect(thrown).toBeInstanceOf(TesseraError);
    expect((thrown as TesseraError).code).toBe('TESSERA_LIMIT_EXCEEDED');
    expect(ep.pendingOutputBytes).toBeLessThan(65536 + 20_000);
    // Reading makes room: held-back input is processed and every queued call is answered.
    let answered = 0;
    for (let p = ep.read(1 << 20); p !== undefined; p = ep.read(1 << 20)) if (p[3]! & PFC.LAST_FRAG) answered++;
    expect(answered).toBeGreaterThan(1);
    expect(ep.pendingOutputBytes).toBe(0);
  });

  it('produces only well-formed PDUs (or MalformedError on a failed pipe) for hostile streams', () => {
    const valid = Buffer.concat(conversation());
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 400 }).map((b) => Buffer.from(b)),
          fc.tuple(fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 8 }), fc.nat()).map(([edits, cut]) => {
            const b = Buffer.from(valid);
            for (const [at, v] of edits) b[at % b.length] = v;
            return b.subarray(0, cut % (b.length + 1));
          }),
        ),
        fc.array(fc.nat(), { maxLength: 4 }),
        (stream, cuts) => {
          const ep = endpoint();
          const points = [...new Set(cuts.map((c) => c % (stream.length + 1)))].sort((a, b) => a - b);
          let last = 0;
          for (const p of [...points, stream.length]) {
            try {
              ep.write(stream.subarray(last, p));
            } catch (e) {
              if (!(e instanceof MalformedError)) throw e;
              expect(ep.failed).toBe(true);
            }
            last = p;
          }
          for (const pdu of splitPdus(Buffer.concat(drain(ep)))) {
            const type = decodeCommonHeader(pdu).PTYPE;
            expect([PTYPE.BIND_ACK, PTYPE.BIND_NAK, PTYPE.ALTER_CONTEXT_RESP, PTYPE.RESPONSE, PTYPE.FAULT]).toContain(type);
          }
        },
      ),
      { numRuns: 2000 },
    );
  });
});

describe('openablePipeNames', () => {
  const table = openablePipeNames([srvsvc()]);
  it('lists canonical names', () => {
    expect(table.names).toEqual(['srvsvc']);
  });
  it('resolves case-insensitively, with or without \\PIPE\\', () => {
    for (const name of ['srvsvc', 'SRVSVC', '\\PIPE\\srvsvc', '\\pipe\\SrvSvc', 'PIPE\\srvsvc', '\\srvsvc']) {
      expect(table.resolve(name)?.pipeName).toBe('srvsvc');
      expect(table.resolve(name)?.services).toHaveLength(1);
    }
    for (const name of ['wkssvc', 'srvsvc2', '\\PIPE\\PIPE\\srvsvc', '', 'x\\srvsvc']) {
      expect(table.resolve(name)).toBeUndefined();
    }
  });
});
