// MS-SRVS server service (srvsvc pipe): share enumeration and server information, enough for
// `smbclient -L`, Explorer's "\\server" view and `net view`. Interface 4b324fc8-1670-01d3-1278-
// 5a47bf6ee188 v3.0 (MS-SRVS 1.9). Stubs are NDR 2.0 (src/protocol/ndr.ts); every method returns a
// NET_API_STATUS (Win32 error code) as its last out value.

import { AssertionFailed } from '../base/assert.js';
import { MalformedError } from '../base/errors.js';
import { FAULT } from '../protocol/dcerpc.js';
import { NdrReader, NdrWriter } from '../protocol/ndr.js';
import { RpcFault, type RpcCallContext, type RpcService } from './service.js';

export const SRVSVC_UUID = '4b324fc8-1670-01d3-1278-5a47bf6ee188';
export const SRVSVC_VERSION = 3; // 3.0

export const SRVSVC_OPNUM = {
  NetrShareEnum: 15,
  NetrShareGetInfo: 16,
  NetrServerGetInfo: 21,
} as const;

/** Share types (MS-SRVS 2.2.2.4). */
export const STYPE = {
  DISKTREE: 0x0000_0000,
  PRINTQ: 0x0000_0001,
  DEVICE: 0x0000_0002,
  IPC: 0x0000_0003,
  TEMPORARY: 0x4000_0000,
  SPECIAL: 0x8000_0000,
} as const;

/** Server types (MS-SRVS 2.2.2.7). */
export const SV_TYPE = {
  WORKSTATION: 0x0000_0001,
  SERVER: 0x0000_0002,
  NT: 0x0000_1000,
  SERVER_NT: 0x0000_8000,
} as const;

/** NET_API_STATUS values used here (MS-ERREF 2.2, MS-SRVS 3.1.4). */
export const WERR = {
  OK: 0,
  ACCESS_DENIED: 5,
  INVALID_PARAMETER: 87,
  INVALID_LEVEL: 124,
  MORE_DATA: 234,
  NET_NAME_NOT_FOUND: 2310,
} as const;

/** PLATFORM_ID_NT (MS-SRVS 2.2.2.6). */
export const PLATFORM_ID_NT = 500;
export const MAX_PREFERRED_LENGTH = 0xffff_ffff;
/** SHARE_INFO_2 shi2_max_uses for "no limit" (MS-SRVS 2.2.4.24). */
export const SHI_USES_UNLIMITED = 0xffff_ffff;

export interface SrvsvcShare {
  name: string;
  /** STYPE_DISKTREE = 0, STYPE_IPC = 3, possibly | STYPE_SPECIAL (0x80000000). */
  type: number;
  remark: string;
  /** Local path shown at levels 2/502 ("C:\\..." style). */
  path?: string;
  maxUses?: number;
  currentUses?: number;
  /** shi501_flags / shi1005_flags: client-side caching and related bits (MS-SRVS 2.2.4.29). */
  flags?: number;
}

export interface SrvsvcProvider {
  listShares(): SrvsvcShare[];
  /** NetBIOS-style name of the server (sv10x_name). */
  serverName: string;
  serverComment: string;
}

// ---------------------------------------------------------------------------------------------
// SHARE_INFO_x layouts (MS-SRVS 2.2.4.22 - 2.2.4.29), as field lists so one table drives both the
// encoder and the decoder of the [in] containers clients send.

type Field = 'string' | 'u32' | 'security_descriptor';

const SHARE_INFO_FIELDS: Record<number, readonly Field[]> = {
  0: ['string'], // shi0_netname
  1: ['string', 'u32', 'string'], // shi1_netname, shi1_type, shi1_remark
  // shi2_netname, _type, _remark, _permissions, _max_uses, _current_uses, _path, _passwd
  2: ['string', 'u32', 'string', 'u32', 'u32', 'u32', 'string', 'string'],
  501: ['string', 'u32', 'string', 'u32'], // shi501_netname, _type, _remark, _flags
  // SHARE_INFO_502_I: as level 2, then shi502_reserved and shi502_security_descriptor
  502: ['string', 'u32', 'string', 'u32', 'u32', 'u32', 'string', 'string', 'security_descriptor'],
  // SHARE_INFO_503_I: as level 2, then shi503_servername, shi503_reserved, shi503_security_descriptor
  503: ['string', 'u32', 'string', 'u32', 'u32', 'u32', 'string', 'string', 'string', 'security_descriptor'],
  1005: ['u32'], // shi1005_flags
};

/** Levels of SHARE_ENUM_UNION (MS-SRVS 2.2.4.38) and the subset we answer. */
const ENUM_ARMS = new Set([0, 1, 2, 501, 502, 503]);
const ENUM_LEVELS = new Set([0, 1, 2, 501, 502]);
/** Levels of the SHARE_INFO union (MS-SRVS 2.2.3.6) and the subset we answer. */
const GETINFO_ARMS = new Set([0, 1, 2, 501, 502, 503, 1004, 1005, 1006, 1501]);
const GETINFO_LEVELS = new Set([0, 1, 2, 501, 502, 1005]);
/** Levels whose answer includes local paths: administrators only (MS-SRVS 3.1.4.8, 3.1.4.10). */
const ADMIN_LEVELS = new Set([2, 502, 503]);
/** Levels of the SERVER_INFO union (MS-SRVS 2.2.3.7) and the subset we answer. */
const SERVER_ARMS = new Set([
  100, 101, 102, 103, 502, 503, 599, 1005, 1107, 1010, 1016, 1017, 1018, 1501, 1502, 1503, 1506, 1510, 1511, 1512,
  1513, 1514, 1515, 1516, 1518, 1523, 1528, 1529, 1530, 1533, 1534, 1535, 1536, 1538, 1539, 1540, 1541, 1542, 1543,
  1544, 1545, 1546, 1547, 1548, 1549, 1550, 1552, 1553, 1554, 1555, 1556,
]);
const SERVER_LEVELS = new Set([100, 101, 102]);

type ShareValue = string | number | null;

function shareValues(level: number, s: SrvsvcShare): ShareValue[] {
  const maxUses = s.maxUses ?? SHI_USES_UNLIMITED;
  const uses = s.currentUses ?? 0;
  const path = s.path ?? '';
  switch (level) {
    case 0:
      return [s.name];
    case 1:
      return [s.name, s.type, s.remark];
    case 2:
      // shi2_permissions is ignored with user-level security; shi2_passwd is NULL (MS-SRVS 2.2.4.24).
      return [s.name, s.type, s.remark, 0, maxUses, uses, path, null];
    case 501:
      return [s.name, s.type, s.remark, s.flags ?? 0];
    case 502:
      return [s.name, s.type, s.remark, 0, maxUses, uses, path, null, null];
    case 1005:
      return [s.flags ?? 0];
    default:
      throw new AssertionFailed(`srvsvc: no encoder for share level ${level}`);
  }
}

/** Writes the scalars of one SHARE_INFO_x; strings and descriptors become deferred pointees. */
function writeShareInfo(w: NdrWriter, level: number, values: readonly ShareValue[]): void {
  SHARE_INFO_FIELDS[level]!.forEach((field, i) => {
    const v = values[i];
    if (field === 'u32') w.u32(v as number);
    else if (field === 'string') w.uniqueWstring(v as string | null);
    else {
      // shi50x_reserved = descriptor length, then a unique pointer to the bytes: we send none.
      w.u32(0);
      w.u32(0);
    }
  });
}

/** Reads (and discards) one SHARE_INFO_x of a client's [in] container. */
function readShareInfo(r: NdrReader, level: number): void {
  for (const field of SHARE_INFO_FIELDS[level]!) {
    if (field === 'u32') r.u32();
    else if (field === 'string') r.unique(() => r.wstring());
    else {
      r.u32();
      r.unique(() => r.conformantBytes());
    }
  }
}

/** Smallest NDR size of one SHARE_INFO_x element, used to bound array counts against the stub. */
function shareInfoBytesMin(level: number): number {
  return SHARE_INFO_FIELDS[level]!.reduce((n, f) => n + (f === 'security_descriptor' ? 8 : 4), 0);
}

/** Rough size of an entry in the caller's buffer, for PreferedMaximumLength (MS-SRVS 3.1.4.8). */
function entryBytes(level: number, values: readonly ShareValue[]): number {
  let n = 0;
  for (const v of values) n += typeof v === 'string' ? 8 + 2 * (v.length + 1) : 4;
  return n + (level === 502 ? 4 : 0);
}

// ---------------------------------------------------------------------------------------------
// Request decoders (exported for tests and fuzzing). They read views and throw only MalformedError.

export interface NetrShareEnumRequest {
  ServerName: string | null;
  Level: number;
  PreferedMaximumLength: number;
  /** null when the client passed no ResumeHandle pointer. */
  ResumeHandle: number | null;
}

/** Level and the switch of an InfoStruct union arm: a unique pointer to a container. */
function readShareEnumStruct(r: NdrReader): number {
  const Level = r.u32();
  const tag = r.u32(); // non-encapsulated union discriminant (C706 14.3.8), switch_is(Level)
  if (tag !== Level) throw new MalformedError(`srvsvc: SHARE_ENUM_STRUCT Level ${Level} with union tag ${tag}`);
  if (!ENUM_ARMS.has(tag)) return Level; // not an arm of SHARE_ENUM_UNION: nothing follows (Samba's [default])
  r.unique(() => {
    r.u32(); // EntriesRead
    r.unique(() => r.conformantArray(() => readShareInfo(r, tag), shareInfoBytesMin(tag)));
  });
  return Level;
}

export function decodeNetrShareEnum(stub: Buffer): NetrShareEnumRequest {
  const r = new NdrReader(stub);
  const ServerName = r.construct(() => r.unique(() => r.wstring()));
  const Level = r.construct(() => readShareEnumStruct(r));
  const PreferedMaximumLength = r.construct(() => r.u32());
  const resume = r.construct(() => r.unique(() => r.u32()));
  return { ServerName: ServerName.value, Level, PreferedMaximumLength, ResumeHandle: resume.value };
}

export interface NetrShareGetInfoRequest {
  ServerName: string | null;
  NetName: string;
  Level: number;
}

export function decodeNetrShareGetInfo(stub: Buffer): NetrShareGetInfoRequest {
  const r = new NdrReader(stub);
  const ServerName = r.construct(() => r.unique(() => r.wstring()));
  const NetName = r.construct(() => r.wstring()); // [in, string] WCHAR*: top-level ref, inline
  const Level = r.construct(() => r.u32());
  return { ServerName: ServerName.value, NetName, Level };
}

export interface NetrServerGetInfoRequest {
  ServerName: string | null;
  Level: number;
}

export function decodeNetrServerGetInfo(stub: Buffer): NetrServerGetInfoRequest {
  const r = new NdrReader(stub);
  const ServerName = r.construct(() => r.unique(() => r.wstring()));
  const Level = r.construct(() => r.u32());
  return { ServerName: ServerName.value, Level };
}

// ---------------------------------------------------------------------------------------------
// The service

export class SrvsvcService implements RpcService {
  readonly uuid = SRVSVC_UUID;
  readonly version = SRVSVC_VERSION;
  readonly name = 'srvsvc';

  constructor(private readonly provider: SrvsvcProvider) {}

  call(opnum: number, stub: Buffer, ctx: RpcCallContext): Buffer {
    switch (opnum) {
      case SRVSVC_OPNUM.NetrShareEnum:
        return this.netrShareEnum(decodeNetrShareEnum(stub), ctx);
      case SRVSVC_OPNUM.NetrShareGetInfo:
        return this.netrShareGetInfo(decodeNetrShareGetInfo(stub), ctx);
      case SRVSVC_OPNUM.NetrServerGetInfo:
        return this.netrServerGetInfo(decodeNetrServerGetInfo(stub));
      default:
        // C706 12.6.4.7 / MS-RPCE 3.1.1.5.5: an opnum the interface does not implement.
        throw new RpcFault(FAULT.nca_s_op_rng_error, true);
    }
  }

  /** MS-SRVS 3.1.4.8 NetrShareEnum (opnum 15). */
  private netrShareEnum(req: NetrShareEnumRequest, ctx: RpcCallContext): Buffer {
    const level = req.Level;
    const w = new NdrWriter(1024);
    let status: number = WERR.OK;
    let entries: ShareValue[][] = [];
    let total = 0;
    let resume = 0;
    if (!ENUM_LEVELS.has(level)) status = WERR.INVALID_LEVEL;
    else if (ADMIN_LEVELS.has(level) && !ctx.caller.isAdmin) status = WERR.ACCESS_DENIED;
    else {
      const all = this.provider.listShares();
      total = all.length;
      const start = Math.min(req.ResumeHandle ?? 0, all.length);
      // Return what fits in PreferedMaximumLength, at least one entry so the caller progresses;
      // ERROR_MORE_DATA and a ResumeHandle naming the next entry when some are left.
      let budget = req.PreferedMaximumLength;
      let i = start;
      for (; i < all.length; i++) {
        const values = shareValues(level, all[i]!);
        const size = entryBytes(level, values);
        if (req.PreferedMaximumLength !== MAX_PREFERRED_LENGTH && entries.length > 0 && size > budget) break;
        budget -= size;
        entries.push(values);
      }
      if (i < all.length) {
        status = WERR.MORE_DATA;
        resume = i;
      }
    }
    if (status !== WERR.OK && status !== WERR.MORE_DATA) entries = [];

    // [in, out] LPSHARE_ENUM_STRUCT InfoStruct: Level, union tag, arm (MS-SRVS 2.2.4.38).
    w.construct(() => {
      w.u32(level);
      w.u32(level);
      if (!ENUM_ARMS.has(level)) return; // no arm to marshal for a level outside the union
      // SHARE_INFO_x_CONTAINER { EntriesRead; [size_is(EntriesRead)] LPSHARE_INFO_x Buffer; }
      w.unique({}, () => {
        w.u32(entries.length);
        w.unique(entries.length > 0 ? entries : null, (list) =>
          w.conformantArray(list, (values) => writeShareInfo(w, level, values)),
        );
      });
    });
    w.construct(() => w.u32(total)); // [out] DWORD* TotalEntries
    w.construct(() => w.unique(req.ResumeHandle === null ? null : resume, (v) => w.u32(v))); // ResumeHandle
    w.u32(status);
    return w.finish();
  }

  /** MS-SRVS 3.1.4.10 NetrShareGetInfo (opnum 16). */
  private netrShareGetInfo(req: NetrShareGetInfoRequest, ctx: RpcCallContext): Buffer {
    const level = req.Level;
    let status: number = WERR.OK;
    let share: SrvsvcShare | undefined;
    if (!GETINFO_LEVELS.has(level)) status = WERR.INVALID_LEVEL;
    else {
      const wanted = req.NetName.toLowerCase();
      share = this.provider.listShares().find((s) => s.name.toLowerCase() === wanted);
      if (share === undefined) status = WERR.NET_NAME_NOT_FOUND;
      else if (ADMIN_LEVELS.has(level) && !ctx.caller.isAdmin) {
        status = WERR.ACCESS_DENIED;
        share = undefined;
      }
    }
    const w = new NdrWriter(512);
    // [out, switch_is(Level)] LPSHARE_INFO InfoStruct: union tag, then the arm's unique pointer.
    w.construct(() => {
      w.u32(level);
      if (!GETINFO_ARMS.has(level)) return;
      w.unique(share, (s) => w.construct(() => writeShareInfo(w, level, shareValues(level, s))));
    });
    w.u32(status);
    return w.finish();
  }

  /** MS-SRVS 3.1.4.17 NetrServerGetInfo (opnum 21). */
  private netrServerGetInfo(req: NetrServerGetInfoRequest): Buffer {
    const level = req.Level;
    const known = SERVER_LEVELS.has(level);
    const p = this.provider;
    const w = new NdrWriter(256);
    w.construct(() => {
      w.u32(level);
      // Other arms get a NULL pointer and ERROR_INVALID_LEVEL; a level outside the union has no arm.
      if (!SERVER_ARMS.has(level)) return;
      w.unique(known ? level : null, () => {
        w.u32(PLATFORM_ID_NT); // sv10x_platform_id
        w.uniqueWstring(p.serverName); // sv10x_name
        if (level === 100) return;
        w.u32(10); // sv10x_version_major
        w.u32(0); // sv10x_version_minor
        w.u32(SV_TYPE.WORKSTATION | SV_TYPE.SERVER | SV_TYPE.NT | SV_TYPE.SERVER_NT); // sv10x_type
        w.uniqueWstring(p.serverComment); // sv10x_comment
        if (level === 101) return;
        w.u32(0); // sv102_users
        w.i32(15); // sv102_disc: auto-disconnect minutes
        w.u32(0); // sv102_hidden: SV_VISIBLE
        w.u32(240); // sv102_announce: seconds
        w.u32(3000); // sv102_anndelta: milliseconds
        w.u32(0); // sv102_licenses
        w.uniqueWstring('C:\\'); // sv102_userpath
      });
    });
    w.u32(known ? WERR.OK : WERR.INVALID_LEVEL);
    return w.finish();
  }
}

export function createSrvsvcService(provider: SrvsvcProvider): SrvsvcService {
  return new SrvsvcService(provider);
}
