import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MalformedError } from '../../src/base/errors.js';
import { FAULT } from '../../src/protocol/dcerpc.js';
import { NdrReader } from '../../src/protocol/ndr.js';
import { RpcFault, type RpcCallContext } from '../../src/rpc/service.js';
import {
  SRVSVC_OPNUM,
  STYPE,
  WERR,
  decodeNetrServerGetInfo,
  decodeNetrShareEnum,
  decodeNetrShareGetInfo,
  type SrvsvcShare,
} from '../../src/rpc/srvsvc.js';
import { ADMIN, SHARES, shareEnumStub, srvsvc } from './helpers.js';

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0);
  return b.toString('hex');
};
/** [string] wchar_t pointee body: MaximumCount, Offset, ActualCount, UTF-16LE, NUL (no trailing pad). */
const wstr = (s: string) => u32(s.length + 1) + u32(0) + u32(s.length + 1) + Buffer.from(s + '\0', 'utf16le').toString('hex');

const ctx = (isAdmin = true): RpcCallContext => ({ callId: 1, contextId: 0, opnum: 0, caller: { ...ADMIN, isAdmin } });
const TWO: SrvsvcShare[] = [
  { name: 'IPC$', type: STYPE.IPC | STYPE.SPECIAL, remark: 'IPC Service' },
  { name: 'Data', type: STYPE.DISKTREE, remark: 'Team' },
];

function shareGetInfoStub(name: string, level: number): Buffer {
  return hex(u32(0) + wstr(name) + (name.length % 2 === 0 ? '0000' : '') + u32(level));
}

describe('NetrShareEnum (opnum 15)', () => {
  it('level 1: golden NDR built from the MS-SRVS IDL', () => {
    const out = srvsvc(TWO).call(SRVSVC_OPNUM.NetrShareEnum, shareEnumStub(1), ctx());
    expect(out.toString('hex')).toBe(
      [
        u32(1), u32(1), u32(0x20000), // Level, union tag, -> SHARE_INFO_1_CONTAINER
        u32(2), u32(0x20004), // EntriesRead, -> Buffer
        u32(2), // MaximumCount of the array
        u32(0x20008), u32(0x80000003), u32(0x2000c), // [0] netname ->, type, remark ->
        u32(0x20010), u32(0), u32(0x20014), // [1]
        wstr('IPC$'), '0000',
        wstr('IPC Service'),
        wstr('Data'), '0000',
        wstr('Team'), '0000',
        u32(2), // TotalEntries
        u32(0x20018), u32(0), // ResumeHandle -> 0
        u32(0), // NERR_Success
      ].join(''),
    );
  });

  it('level 0 and 501 carry names, and flags at 501', () => {
    const r0 = srvsvc(TWO).call(15, shareEnumStub(0), ctx());
    expect(r0.toString('hex')).toBe(
      [u32(0), u32(0), u32(0x20000), u32(2), u32(0x20004), u32(2), u32(0x20008), u32(0x2000c), wstr('IPC$'), '0000', wstr('Data'), '0000', u32(2), u32(0x20010), u32(0), u32(0)].join(''),
    );
    const r501 = srvsvc([{ name: 'a', type: 0, remark: 'r', flags: 0x30 }]).call(15, shareEnumStub(501), ctx());
    expect(r501.toString('hex')).toBe(
      [u32(501), u32(501), u32(0x20000), u32(1), u32(0x20004), u32(1), u32(0x20008), u32(0), u32(0x2000c), u32(0x30), wstr('a'), wstr('r'), u32(1), u32(0x20010), u32(0), u32(0)].join(''),
    );
  });

  it('levels 2 and 502 include path and uses, and need an administrator', () => {
    const r2 = srvsvc().call(15, shareEnumStub(2), ctx());
    const r = new NdrReader(r2);
    r.u32(); r.u32(); r.u32(); r.u32(); r.u32();
    expect(r.u32()).toBe(3); // MaximumCount
    const fields = Array.from({ length: 3 }, () => Array.from({ length: 8 }, () => r.u32()));
    expect(fields[2]!.slice(3, 6)).toEqual([0, 10, 2]); // permissions, max_uses, current_uses
    expect(fields[0]![4]).toBe(0xffffffff); // unlimited by default
    expect(fields[1]![7]).toBe(0); // shi2_passwd NULL

    const denied = srvsvc().call(15, shareEnumStub(502), ctx(false));
    expect(denied.toString('hex')).toBe([u32(502), u32(502), u32(0x20000), u32(0), u32(0), u32(0), u32(0x20004), u32(0), u32(WERR.ACCESS_DENIED)].join(''));
  });

  it('answers ERROR_INVALID_LEVEL: with an empty container for level 503, with no arm outside the union', () => {
    expect(srvsvc().call(15, shareEnumStub(503), ctx()).toString('hex')).toBe(
      [u32(503), u32(503), u32(0x20000), u32(0), u32(0), u32(0), u32(0x20004), u32(0), u32(WERR.INVALID_LEVEL)].join(''),
    );
    expect(srvsvc().call(15, hex(u32(0) + u32(7) + u32(7) + u32(0xffffffff) + u32(0)), ctx()).toString('hex')).toBe(
      [u32(7), u32(7), u32(0), u32(0), u32(WERR.INVALID_LEVEL)].join(''),
    );
  });

  it('honours PreferedMaximumLength with ERROR_MORE_DATA and ResumeHandle (MS-SRVS 3.1.4.8)', () => {
    const many = Array.from({ length: 10 }, (_, i) => ({ name: `share${i}`, type: 0, remark: 'x' }));
    const svc = srvsvc(many);
    const seen: string[] = [];
    let resume = 0;
    for (let round = 0; round < 20; round++) {
      const out = svc.call(15, shareEnumStub(0, 60, resume), ctx());
      const r = new NdrReader(out);
      const names = r.construct(() => {
        r.u32();
        r.u32();
        const c = r.unique(() => {
          r.u32();
          return r.unique(() => r.conformantArray(() => r.unique(() => r.wstring())));
        });
        return c;
      });
      const total = r.u32();
      const next = r.construct(() => r.unique(() => r.u32())).value!;
      const status = r.u32();
      expect(total).toBe(10);
      const got = names.value!.value!.map((ref) => ref.value!);
      expect(got.length).toBeGreaterThanOrEqual(1);
      expect(got.length).toBeLessThan(10);
      seen.push(...got);
      if (status === WERR.OK) {
        expect(next).toBe(0);
        break;
      }
      expect(status).toBe(WERR.MORE_DATA);
      resume = next;
    }
    expect(seen).toEqual(many.map((s) => s.name));
  });

  it('echoes a NULL ResumeHandle', () => {
    const out = srvsvc(TWO).call(15, shareEnumStub(0, 0xffffffff, null), ctx());
    expect(out.subarray(out.length - 12).toString('hex')).toBe(u32(2) + u32(0) + u32(0));
  });

  it('decodes requests with a server name and a non-empty [in] container', () => {
    const stub = hex(
      [
        u32(0x20000), wstr('\\\\TESSERA'), // ServerName (10 units: no padding)
        u32(1), u32(1), u32(0x20004), // InfoStruct
        u32(1), u32(0x20008), // container: EntriesRead 1, -> array
        u32(1), u32(0x2000c), u32(0), u32(0), // one SHARE_INFO_1 with a netname and no remark
        wstr('x'),
        u32(1000), // PreferedMaximumLength
        u32(0x20010), u32(4), // ResumeHandle
      ].join(''),
    );
    expect(decodeNetrShareEnum(stub)).toEqual({ ServerName: '\\\\TESSERA', Level: 1, PreferedMaximumLength: 1000, ResumeHandle: 4 });
  });

  it('rejects a union tag that differs from Level', () => {
    const stub = Buffer.from(shareEnumStub(1));
    stub.writeUInt32LE(2, 8);
    expect(() => decodeNetrShareEnum(stub)).toThrow(MalformedError);
  });
});

describe('NetrShareGetInfo (opnum 16)', () => {
  it('level 502: golden NDR', () => {
    const out = srvsvc().call(SRVSVC_OPNUM.NetrShareGetInfo, shareGetInfoStub('VMS', 502), ctx());
    expect(out.toString('hex')).toBe(
      [
        u32(502), u32(0x20000), // union tag, -> SHARE_INFO_502_I
        u32(0x20004), u32(0), u32(0x20008), // netname ->, type, remark ->
        u32(0), u32(10), u32(2), // permissions, max_uses, current_uses
        u32(0x2000c), u32(0), // path ->, passwd NULL
        u32(0), u32(0), // shi502_reserved, security descriptor NULL
        wstr('vms'),
        wstr(''), '0000',
        wstr('C:\\shares\\vms'),
        u32(0),
      ].join(''),
    );
  });

  it('level 1005 returns the flags', () => {
    expect(srvsvc().call(16, shareGetInfoStub('data', 1005), ctx()).toString('hex')).toBe(u32(1005) + u32(0x20000) + u32(0x30) + u32(0));
  });

  it('unknown share: NULL arm and NERR_NetNameNotFound (2310)', () => {
    expect(srvsvc().call(16, shareGetInfoStub('nope', 1), ctx()).toString('hex')).toBe(u32(1) + u32(0) + u32(2310));
  });

  it('unsupported levels: NULL arm inside the union, no arm outside it', () => {
    expect(srvsvc().call(16, shareGetInfoStub('data', 1004), ctx()).toString('hex')).toBe(u32(1004) + u32(0) + u32(WERR.INVALID_LEVEL));
    expect(srvsvc().call(16, shareGetInfoStub('data', 7), ctx()).toString('hex')).toBe(u32(7) + u32(WERR.INVALID_LEVEL));
  });

  it('level 2 needs an administrator', () => {
    expect(srvsvc().call(16, shareGetInfoStub('data', 2), ctx(false)).toString('hex')).toBe(u32(2) + u32(0) + u32(WERR.ACCESS_DENIED));
  });

  it('decodes the request', () => {
    expect(decodeNetrShareGetInfo(shareGetInfoStub('Data', 2))).toEqual({ ServerName: null, NetName: 'Data', Level: 2 });
  });
});

describe('NetrServerGetInfo (opnum 21)', () => {
  it('level 101: golden NDR', () => {
    const out = srvsvc().call(SRVSVC_OPNUM.NetrServerGetInfo, hex(u32(0) + u32(101)), ctx());
    expect(out.toString('hex')).toBe(
      [
        u32(101), u32(0x20000),
        u32(500), u32(0x20004), u32(10), u32(0), u32(0x9003), u32(0x20008),
        wstr('TESSERA'),
        wstr('Tessera SMB3'), '0000',
        u32(0),
      ].join(''),
    );
  });

  it('levels 100 and 102', () => {
    expect(srvsvc().call(21, hex(u32(0) + u32(100)), ctx()).toString('hex')).toBe(
      [u32(100), u32(0x20000), u32(500), u32(0x20004), wstr('TESSERA'), u32(0)].join(''),
    );
    const r = new NdrReader(srvsvc().call(21, hex(u32(0) + u32(102)), ctx()));
    const info = r.construct(() => {
      expect(r.u32()).toBe(102);
      return r.unique(() => {
        const v = [r.u32(), r.unique(() => r.wstring()), r.u32(), r.u32(), r.u32(), r.unique(() => r.wstring())];
        const rest = [r.u32(), r.i32(), r.u32(), r.u32(), r.u32(), r.u32(), r.unique(() => r.wstring())];
        return { v, rest };
      });
    });
    expect(r.u32()).toBe(0);
    expect(r.remaining).toBe(0);
    expect(info.value!.rest.slice(0, 6)).toEqual([0, 15, 0, 240, 3000, 0]);
    expect((info.value!.rest[6] as { value: string }).value).toBe('C:\\');
  });

  it('unsupported levels', () => {
    expect(srvsvc().call(21, hex(u32(0) + u32(103)), ctx()).toString('hex')).toBe(u32(103) + u32(0) + u32(WERR.INVALID_LEVEL));
    expect(srvsvc().call(21, hex(u32(0) + u32(7)), ctx()).toString('hex')).toBe(u32(7) + u32(WERR.INVALID_LEVEL));
  });

  it('decodes a request naming the server', () => {
    expect(decodeNetrServerGetInfo(hex(u32(0x20000) + wstr('srv') + u32(101)))).toEqual({ ServerName: 'srv', Level: 101 });
  });
});

describe('dispatch', () => {
  it('faults unknown opnums with nca_s_op_rng_error', () => {
    let caught: unknown;
    try {
      srvsvc().call(36, Buffer.alloc(0), ctx());
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(RpcFault);
    expect((caught as RpcFault).status).toBe(FAULT.nca_s_op_rng_error);
  });

  it('request decoders throw only MalformedError on random and mutated stubs', () => {
    const valid = [shareEnumStub(1), shareEnumStub(502, 10, null), shareGetInfoStub('data', 2), hex(u32(0x20000) + wstr('srv') + u32(101))];
    const svc = srvsvc(SHARES);
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 120 }).map((b) => Buffer.from(b)),
          fc.tuple(fc.constantFrom(...valid), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }), fc.nat()).map(([v, edits, cut]) => {
            const b = Buffer.from(v);
            for (const [at, x] of edits) b[at % b.length] = x;
            return b.subarray(0, cut % (b.length + 1));
          }),
        ),
        (stub) => {
          for (const opnum of [15, 16, 21]) {
            try {
              svc.call(opnum, stub, ctx());
            } catch (e) {
              if (!(e instanceof MalformedError)) throw e;
            }
          }
        },
      ),
      { numRuns: 4000 },
    );
  });
});
