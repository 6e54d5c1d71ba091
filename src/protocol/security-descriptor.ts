// Self-relative security descriptors (MS-DTYP 2.4.6), SIDs (2.4.2), ACLs (2.4.5) and ACEs (2.4.4):
// parsing with validation, building, and the SECURITY_INFORMATION selection and merge used by
// QUERY_INFO / SET_INFO with SMB2_0_INFO_SECURITY (MS-SMB2 3.3.5.20.3, 3.3.5.21.3).

import { MalformedError } from '../base/errors.js';
import { limits } from '../base/limits.js';
import { need } from './fscc/wire.js';

// ---------------------------------------------------------------------------------------------
// SID (MS-DTYP 2.4.2)

export interface Sid {
  Revision: number;
  /** 48-bit IdentifierAuthority (big-endian on the wire). */
  IdentifierAuthority: number;
  SubAuthority: number[];
}

export const WellKnownSid = {
  EVERYONE: 'S-1-1-0',
  CREATOR_OWNER: 'S-1-3-0',
  CREATOR_GROUP: 'S-1-3-1',
  AUTHENTICATED_USERS: 'S-1-5-11',
  LOCAL_SYSTEM: 'S-1-5-18',
  BUILTIN_ADMINISTRATORS: 'S-1-5-32-544',
  BUILTIN_USERS: 'S-1-5-32-545',
} as const;

const SID_SUBAUTHORITIES_MAX = 15;

export function sidByteLength(sid: Sid): number {
  return 8 + 4 * sid.SubAuthority.length;
}

/** Parses a SID at `at`; validates Revision 1, SubAuthorityCount <= 15 and bounds. */
export function parseSid(buf: Buffer, at = 0): Sid {
  need(buf, at, 8, 'SID');
  const Revision = buf.readUInt8(at);
  const count = buf.readUInt8(at + 1);
  if (Revision !== 1) throw new MalformedError(`SID Revision ${Revision}`);
  if (count > SID_SUBAUTHORITIES_MAX) throw new MalformedError(`SID SubAuthorityCount ${count}`);
  need(buf, at, 8 + 4 * count, 'SID');
  const SubAuthority: number[] = [];
  for (let i = 0; i < count; i++) SubAuthority.push(buf.readUInt32LE(at + 8 + 4 * i));
  return { Revision, IdentifierAuthority: buf.readUIntBE(at + 2, 6), SubAuthority };
}

export function encodeSidInto(sid: Sid, buf: Buffer, at: number): number {
  buf.writeUInt8(sid.Revision, at);
  buf.writeUInt8(sid.SubAuthority.length, at + 1);
  buf.writeUIntBE(sid.IdentifierAuthority, at + 2, 6);
  sid.SubAuthority.forEach((s, i) => buf.writeUInt32LE(s >>> 0, at + 8 + 4 * i));
  return sidByteLength(sid);
}

export function encodeSid(sid: Sid | string): Buffer {
  const s = typeof sid === 'string' ? sidFromString(sid) : sid;
  const b = Buffer.alloc(sidByteLength(s));
  encodeSidInto(s, b, 0);
  return b;
}

/** "S-1-5-32-544" form (MS-DTYP 2.4.2.1); authorities >= 2^32 are printed in hex. */
export function sidToString(sid: Sid | Buffer): string {
  const s = Buffer.isBuffer(sid) ? parseSid(sid) : sid;
  const auth = s.IdentifierAuthority >= 2 ** 32 ? `0x${s.IdentifierAuthority.toString(16).toUpperCase().padStart(12, '0')}` : String(s.IdentifierAuthority);
  return [`S-${s.Revision}`, auth, ...s.SubAuthority.map((x) => String(x >>> 0))].join('-');
}

export function sidFromString(text: string): Sid {
  const m = /^S-1-(0x[0-9A-Fa-f]{1,12}|\d{1,15})((?:-\d{1,10}){0,15})$/i.exec(text);
  if (!m) throw new MalformedError(`not a SID: ${text}`);
  const IdentifierAuthority = m[1]!.toLowerCase().startsWith('0x') ? parseInt(m[1]!.slice(2), 16) : Number(m[1]);
  if (IdentifierAuthority >= 2 ** 48) throw new MalformedError(`SID authority too large: ${text}`);
  const SubAuthority = m[2] ? m[2].slice(1).split('-').map(Number) : [];
  if (SubAuthority.some((x) => x > 0xffff_ffff)) throw new MalformedError(`SID subauthority too large: ${text}`);
  return { Revision: 1, IdentifierAuthority, SubAuthority };
}

export function sidEquals(a: Sid, b: Sid): boolean {
  return (
    a.Revision === b.Revision &&
    a.IdentifierAuthority === b.IdentifierAuthority &&
    a.SubAuthority.length === b.SubAuthority.length &&
    a.SubAuthority.every((x, i) => x === b.SubAuthority[i])
  );
}

// ---------------------------------------------------------------------------------------------
// ACE / ACL (MS-DTYP 2.4.4, 2.4.5)

export const AceType = {
  ACCESS_ALLOWED_ACE_TYPE: 0x00,
  ACCESS_DENIED_ACE_TYPE: 0x01,
  SYSTEM_AUDIT_ACE_TYPE: 0x02,
  SYSTEM_ALARM_ACE_TYPE: 0x03,
  ACCESS_ALLOWED_COMPOUND_ACE_TYPE: 0x04,
  ACCESS_ALLOWED_OBJECT_ACE_TYPE: 0x05,
  ACCESS_DENIED_OBJECT_ACE_TYPE: 0x06,
  SYSTEM_AUDIT_OBJECT_ACE_TYPE: 0x07,
  SYSTEM_ALARM_OBJECT_ACE_TYPE: 0x08,
  ACCESS_ALLOWED_CALLBACK_ACE_TYPE: 0x09,
  ACCESS_DENIED_CALLBACK_ACE_TYPE: 0x0a,
  ACCESS_ALLOWED_CALLBACK_OBJECT_ACE_TYPE: 0x0b,
  ACCESS_DENIED_CALLBACK_OBJECT_ACE_TYPE: 0x0c,
  SYSTEM_AUDIT_CALLBACK_ACE_TYPE: 0x0d,
  SYSTEM_ALARM_CALLBACK_ACE_TYPE: 0x0e,
  SYSTEM_AUDIT_CALLBACK_OBJECT_ACE_TYPE: 0x0f,
  SYSTEM_ALARM_CALLBACK_OBJECT_ACE_TYPE: 0x10,
  SYSTEM_MANDATORY_LABEL_ACE_TYPE: 0x11,
  SYSTEM_RESOURCE_ATTRIBUTE_ACE_TYPE: 0x12,
  SYSTEM_SCOPED_POLICY_ID_ACE_TYPE: 0x13,
} as const;

export const AceFlags = {
  OBJECT_INHERIT_ACE: 0x01,
  CONTAINER_INHERIT_ACE: 0x02,
  NO_PROPAGATE_INHERIT_ACE: 0x04,
  INHERIT_ONLY_ACE: 0x08,
  INHERITED_ACE: 0x10,
  SUCCESSFUL_ACCESS_ACE_FLAG: 0x40,
  FAILED_ACCESS_ACE_FLAG: 0x80,
} as const;

export const ACL_REVISION = 2;
export const ACL_REVISION_DS = 4;

/** ACE types whose body is exactly Mask + SID (+ application data for the callback ones). */
const MASK_SID_TYPES = new Set<number>([0x00, 0x01, 0x02, 0x03, 0x09, 0x0a, 0x0d, 0x0e, 0x11, 0x12, 0x13]);
const OBJECT_TYPES = new Set<number>([0x05, 0x06, 0x07, 0x08, 0x0b, 0x0c, 0x0f, 0x10]);

export interface Ace {
  AceType: number;
  AceFlags: number;
  Mask: number;
  /** Present for the mask+SID ACE types; when set, encoding writes Mask + Sid (+ nothing else). */
  Sid?: Sid;
  /** The bytes after the 4-byte ACE header (a view when parsed); encoded as is when Sid is absent. */
  Body?: Buffer;
}

function parseAce(buf: Buffer, at: number, end: number): { ace: Ace; size: number } {
  if (at + 4 > end) throw new MalformedError('ACE header past ACL end');
  const AceType = buf.readUInt8(at);
  const AceFlags = buf.readUInt8(at + 1);
  const AceSize = buf.readUInt16LE(at + 2);
  if (AceSize < 8 || AceSize % 4 !== 0 || at + AceSize > end) throw new MalformedError(`AceSize ${AceSize} invalid`);
  const Body = buf.subarray(at + 4, at + AceSize);
  const Mask = buf.readUInt32LE(at + 4);
  const ace: Ace = { AceType, AceFlags, Mask, Body };
  if (MASK_SID_TYPES.has(AceType)) {
    const sid = parseSid(Body, 4);
    if (4 + sidByteLength(sid) > Body.length) throw new MalformedError('ACE SID past AceSize');
    // Plain ACEs carry nothing after the SID but padding; callback and attribute ACEs carry data we keep.
    if (AceType <= 0x03 || AceType === 0x11 || AceType === 0x13) ace.Sid = sid;
  }
  return { ace, size: AceSize };
}

/** Parses an ACL at `at` and validates AclSize / AceCount / each AceSize against the buffer. */
export function parseAcl(buf: Buffer, at = 0): { AclRevision: number; Aces: Ace[] } {
  need(buf, at, 8, 'ACL');
  const AclRevision = buf.readUInt8(at);
  const AclSize = buf.readUInt16LE(at + 2);
  const AceCount = buf.readUInt16LE(at + 4);
  if (AclRevision !== ACL_REVISION && AclRevision !== ACL_REVISION_DS) throw new MalformedError(`AclRevision ${AclRevision}`);
  if (AclSize < 8) throw new MalformedError(`AclSize ${AclSize}`);
  need(buf, at, AclSize, 'ACL');
  if (AceCount * 8 > AclSize - 8) throw new MalformedError(`AceCount ${AceCount} cannot fit AclSize ${AclSize}`);
  const Aces: Ace[] = [];
  let pos = at + 8;
  for (let i = 0; i < AceCount; i++) {
    const { ace, size } = parseAce(buf, pos, at + AclSize);
    Aces.push(ace);
    pos += size;
  }
  return { AclRevision, Aces };
}

function aceByteLength(a: Ace): number {
  if (a.Sid) return 8 + sidByteLength(a.Sid);
  if (!a.Body || a.Body.length < 4 || a.Body.length % 4 !== 0) throw new MalformedError('ACE needs a Sid or a 4-aligned Body');
  return 4 + a.Body.length;
}

export function aclByteLength(aces: readonly Ace[]): number {
  return 8 + aces.reduce((n, a) => n + aceByteLength(a), 0);
}

function encodeAclInto(aces: readonly Ace[], buf: Buffer, at: number): number {
  const size = aclByteLength(aces);
  if (size > 0xffff) throw new MalformedError(`ACL of ${size} bytes exceeds 65535`);
  const revision = aces.some((a) => OBJECT_TYPES.has(a.AceType)) ? ACL_REVISION_DS : ACL_REVISION;
  buf.fill(0, at, at + 8);
  buf.writeUInt8(revision, at);
  buf.writeUInt16LE(size, at + 2);
  buf.writeUInt16LE(aces.length, at + 4);
  let pos = at + 8;
  for (const a of aces) {
    const n = aceByteLength(a);
    buf.writeUInt8(a.AceType, pos);
    buf.writeUInt8(a.AceFlags, pos + 1);
    buf.writeUInt16LE(n, pos + 2);
    if (a.Sid) {
      buf.writeUInt32LE(a.Mask >>> 0, pos + 4);
      encodeSidInto(a.Sid, buf, pos + 8);
    } else {
      a.Body!.copy(buf, pos + 4);
    }
    pos += n;
  }
  return size;
}

// ---------------------------------------------------------------------------------------------
// SECURITY_DESCRIPTOR (MS-DTYP 2.4.6)

export const SdControl = {
  SE_OWNER_DEFAULTED: 0x0001,
  SE_GROUP_DEFAULTED: 0x0002,
  SE_DACL_PRESENT: 0x0004,
  SE_DACL_DEFAULTED: 0x0008,
  SE_SACL_PRESENT: 0x0010,
  SE_SACL_DEFAULTED: 0x0020,
  SE_DACL_TRUSTED: 0x0040,
  SE_SERVER_SECURITY: 0x0080,
  SE_DACL_AUTO_INHERIT_REQ: 0x0100,
  SE_SACL_AUTO_INHERIT_REQ: 0x0200,
  SE_DACL_AUTO_INHERITED: 0x0400,
  SE_SACL_AUTO_INHERITED: 0x0800,
  SE_DACL_PROTECTED: 0x1000,
  SE_SACL_PROTECTED: 0x2000,
  SE_RM_CONTROL_VALID: 0x4000,
  SE_SELF_RELATIVE: 0x8000,
} as const;

/** SECURITY_INFORMATION bits (MS-DTYP 2.4.7), as sent in AdditionalInformation. */
export const SecurityInfo = {
  OWNER: 0x0000_0001,
  GROUP: 0x0000_0002,
  DACL: 0x0000_0004,
  SACL: 0x0000_0008,
  LABEL: 0x0000_0010,
  ATTRIBUTE: 0x0000_0020,
  SCOPE: 0x0000_0040,
  PROCESS_TRUST_LABEL: 0x0000_0080,
  BACKUP: 0x0001_0000,
} as const;

export interface SecurityDescriptor {
  /** Control flags; SE_SELF_RELATIVE is always set on encode, *_PRESENT follow Dacl/Sacl. */
  Control: number;
  Owner?: Sid;
  Group?: Sid;
  /**
   * DACL entries. Undefined with SE_DACL_PRESENT set in Control is a NULL DACL (everyone is
   * granted everything); undefined without it is "no DACL in this descriptor".
   */
  Dacl?: Ace[];
  Sacl?: Ace[];
}

const SD_HEADER_SIZE = 20;

/** Parses and validates a self-relative security descriptor; ACE bodies are views of `buf`. */
export function parseSecurityDescriptor(buf: Buffer): SecurityDescriptor {
  need(buf, 0, SD_HEADER_SIZE, 'SECURITY_DESCRIPTOR');
  if (buf.length > limits.securityDescriptorBytesMax) throw new MalformedError(`security descriptor of ${buf.length} bytes`);
  const Revision = buf.readUInt8(0);
  if (Revision !== 1) throw new MalformedError(`SECURITY_DESCRIPTOR Revision ${Revision}`);
  const Control = buf.readUInt16LE(2);
  const OffsetOwner = buf.readUInt32LE(4);
  const OffsetGroup = buf.readUInt32LE(8);
  const OffsetSacl = buf.readUInt32LE(12);
  const OffsetDacl = buf.readUInt32LE(16);
  const check = (off: number, what: string): void => {
    if (off !== 0 && (off < SD_HEADER_SIZE || off >= buf.length)) throw new MalformedError(`${what} offset ${off} invalid`);
  };
  check(OffsetOwner, 'Owner');
  check(OffsetGroup, 'Group');
  check(OffsetSacl, 'Sacl');
  check(OffsetDacl, 'Dacl');
  const sd: SecurityDescriptor = { Control };
  if (OffsetOwner !== 0) sd.Owner = parseSid(buf, OffsetOwner);
  if (OffsetGroup !== 0) sd.Group = parseSid(buf, OffsetGroup);
  if (Control & SdControl.SE_DACL_PRESENT && OffsetDacl !== 0) sd.Dacl = parseAcl(buf, OffsetDacl).Aces;
  if (Control & SdControl.SE_SACL_PRESENT && OffsetSacl !== 0) sd.Sacl = parseAcl(buf, OffsetSacl).Aces;
  return sd;
}

/** Builds a self-relative descriptor laid out header, Owner, Group, SACL, DACL. */
export function buildSecurityDescriptor(sd: SecurityDescriptor): Buffer {
  let control = (sd.Control | SdControl.SE_SELF_RELATIVE) & 0xffff;
  if (sd.Dacl) control |= SdControl.SE_DACL_PRESENT;
  if (sd.Sacl) control |= SdControl.SE_SACL_PRESENT;
  const size =
    SD_HEADER_SIZE +
    (sd.Owner ? sidByteLength(sd.Owner) : 0) +
    (sd.Group ? sidByteLength(sd.Group) : 0) +
    (sd.Sacl ? aclByteLength(sd.Sacl) : 0) +
    (sd.Dacl ? aclByteLength(sd.Dacl) : 0);
  const b = Buffer.alloc(size);
  b.writeUInt8(1, 0);
  b.writeUInt16LE(control, 2);
  let pos = SD_HEADER_SIZE;
  if (sd.Owner) {
    b.writeUInt32LE(pos, 4);
    pos += encodeSidInto(sd.Owner, b, pos);
  }
  if (sd.Group) {
    b.writeUInt32LE(pos, 8);
    pos += encodeSidInto(sd.Group, b, pos);
  }
  if (sd.Sacl) {
    b.writeUInt32LE(pos, 12);
    pos += encodeAclInto(sd.Sacl, b, pos);
  }
  if (sd.Dacl) {
    b.writeUInt32LE(pos, 16);
    pos += encodeAclInto(sd.Dacl, b, pos);
  }
  return b;
}

const OWNER_BITS = SdControl.SE_OWNER_DEFAULTED;
const GROUP_BITS = SdControl.SE_GROUP_DEFAULTED;
const DACL_BITS =
  SdControl.SE_DACL_PRESENT |
  SdControl.SE_DACL_DEFAULTED |
  SdControl.SE_DACL_AUTO_INHERIT_REQ |
  SdControl.SE_DACL_AUTO_INHERITED |
  SdControl.SE_DACL_PROTECTED |
  SdControl.SE_DACL_TRUSTED;
const SACL_BITS =
  SdControl.SE_SACL_PRESENT |
  SdControl.SE_SACL_DEFAULTED |
  SdControl.SE_SACL_AUTO_INHERIT_REQ |
  SdControl.SE_SACL_AUTO_INHERITED |
  SdControl.SE_SACL_PROTECTED;

/** Which SACL ACE types the LABEL / ATTRIBUTE / SCOPE bits select without SACL itself. */
function saclTypesFor(info: number): Set<number> {
  const t = new Set<number>();
  if (info & SecurityInfo.LABEL) t.add(AceType.SYSTEM_MANDATORY_LABEL_ACE_TYPE);
  if (info & SecurityInfo.ATTRIBUTE) t.add(AceType.SYSTEM_RESOURCE_ATTRIBUTE_ACE_TYPE);
  if (info & SecurityInfo.SCOPE) t.add(AceType.SYSTEM_SCOPED_POLICY_ID_ACE_TYPE);
  return t;
}

function normalizeInfo(info: number): number {
  return info & SecurityInfo.BACKUP ? info | SecurityInfo.OWNER | SecurityInfo.GROUP | SecurityInfo.DACL | SecurityInfo.SACL : info;
}

/**
 * Returns a descriptor holding only the parts AdditionalInformation asks for (QUERY_INFO,
 * MS-SMB2 3.3.5.20.3 / MS-FSA 2.1.5.13.x): OWNER=1, GROUP=2, DACL=4, SACL=8; LABEL, ATTRIBUTE and
 * SCOPE select the matching SACL ACE types; BACKUP selects all four parts.
 */
export function selectSecurityInformation(sd: Buffer, AdditionalInformation: number): Buffer {
  const info = normalizeInfo(AdditionalInformation);
  const src = parseSecurityDescriptor(sd);
  let control = src.Control & ~(OWNER_BITS | GROUP_BITS | DACL_BITS | SACL_BITS);
  const out: SecurityDescriptor = { Control: 0 };
  if (info & SecurityInfo.OWNER) {
    out.Owner = src.Owner;
    control |= src.Control & OWNER_BITS;
  }
  if (info & SecurityInfo.GROUP) {
    out.Group = src.Group;
    control |= src.Control & GROUP_BITS;
  }
  if (info & SecurityInfo.DACL) {
    out.Dacl = src.Dacl;
    control |= src.Control & DACL_BITS;
  }
  if (info & SecurityInfo.SACL) {
    out.Sacl = src.Sacl;
    control |= src.Control & SACL_BITS;
  } else {
    const types = saclTypesFor(info);
    if (types.size > 0 && src.Sacl) {
      out.Sacl = src.Sacl.filter((a) => types.has(a.AceType));
      control |= SdControl.SE_SACL_PRESENT;
    }
  }
  out.Control = control;
  return buildSecurityDescriptor(out);
}

/**
 * SET_INFO merge (MS-FSA 2.1.5.16): every part named in AdditionalInformation (with its Control
 * bits) comes from `next`, everything else from `old`. A requested owner or group missing from
 * `next` is malformed (the caller answers STATUS_INVALID_PARAMETER / STATUS_INVALID_OWNER).
 */
export function mergeSecurityDescriptor(old: Buffer, next: Buffer, AdditionalInformation: number): Buffer {
  const info = normalizeInfo(AdditionalInformation);
  const a = parseSecurityDescriptor(old);
  const b = parseSecurityDescriptor(next);
  const out: SecurityDescriptor = { Control: 0, Owner: a.Owner, Group: a.Group, Dacl: a.Dacl, Sacl: a.Sacl };
  let control = a.Control;
  if (info & SecurityInfo.OWNER) {
    if (!b.Owner) throw new MalformedError('SET_INFO security: OWNER requested but absent');
    out.Owner = b.Owner;
    control = (control & ~OWNER_BITS) | (b.Control & OWNER_BITS);
  }
  if (info & SecurityInfo.GROUP) {
    if (!b.Group) throw new MalformedError('SET_INFO security: GROUP requested but absent');
    out.Group = b.Group;
    control = (control & ~GROUP_BITS) | (b.Control & GROUP_BITS);
  }
  if (info & SecurityInfo.DACL) {
    out.Dacl = b.Dacl;
    control = (control & ~DACL_BITS) | (b.Control & DACL_BITS);
  }
  if (info & SecurityInfo.SACL) {
    out.Sacl = b.Sacl;
    control = (control & ~SACL_BITS) | (b.Control & SACL_BITS);
  } else {
    const types = saclTypesFor(info);
    if (types.size > 0) {
      const kept = (a.Sacl ?? []).filter((x) => !types.has(x.AceType));
      const added = (b.Sacl ?? []).filter((x) => types.has(x.AceType));
      out.Sacl = [...kept, ...added];
      control |= SdControl.SE_SACL_PRESENT;
    }
  }
  out.Control = control;
  return buildSecurityDescriptor(out);
}

/** FILE_ALL_ACCESS and FILE_GENERIC_READ | FILE_GENERIC_EXECUTE (MS-DTYP 2.4.3). */
const FILE_ALL_ACCESS = 0x001f_01ff;
const FILE_READ_EXECUTE = 0x0012_00a9;

/**
 * The descriptor given to files created without one (no SecD context and no inheritable ACEs):
 * owner and group (group defaults to the owner), and a DACL granting FILE_ALL_ACCESS to the owner,
 * SYSTEM and BUILTIN\Administrators, and read + execute to Everyone. On directories the ACEs are
 * OBJECT_INHERIT | CONTAINER_INHERIT so children inherit the same policy.
 */
export function defaultFileSecurityDescriptor(
  ownerSid: string,
  opts: { groupSid?: string; isDirectory?: boolean } = {},
): Buffer {
  const flags = opts.isDirectory ? AceFlags.OBJECT_INHERIT_ACE | AceFlags.CONTAINER_INHERIT_ACE : 0;
  const allow = (sid: string, Mask: number): Ace => ({
    AceType: AceType.ACCESS_ALLOWED_ACE_TYPE,
    AceFlags: flags,
    Mask,
    Sid: sidFromString(sid),
  });
  return buildSecurityDescriptor({
    Control: SdControl.SE_DACL_PRESENT,
    Owner: sidFromString(ownerSid),
    Group: sidFromString(opts.groupSid ?? ownerSid),
    Dacl: [
      allow(ownerSid, FILE_ALL_ACCESS),
      allow(WellKnownSid.LOCAL_SYSTEM, FILE_ALL_ACCESS),
      allow(WellKnownSid.BUILTIN_ADMINISTRATORS, FILE_ALL_ACCESS),
      allow(WellKnownSid.EVERYONE, FILE_READ_EXECUTE),
    ],
  });
}
