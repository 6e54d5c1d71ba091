// Windows access checks on self-relative security descriptors, and the security descriptor a new
// file or directory receives from its parent. Pure functions over bytes: no I/O, no state.
//
//  - accessCheck:               MS-DTYP 2.5.3.2 (Access Check Algorithm Pseudocode).
//  - fileAccessCheck:           MS-FSA 2.1.5.1.2.1 (check access to an existing file; parent rules).
//  - createAccessCheck:         MS-FSA 2.1.5.1.2 (creating a file: the parent must allow adding it).
//  - inheritSecurityDescriptor: MS-DTYP 2.5.3.4 (CreateSecurityDescriptor, ComputeACL) as NTFS
//                               applies it, checked against smbtorture's base/smb2 acls tests.
//
// Every byte-level defect in a descriptor surfaces as MalformedError (from the descriptor parser or
// from the object/callback ACE SID parsing here); nothing else is thrown on any input.

import { MalformedError } from '../base/errors.js';
import {
  AceFlags,
  AceType,
  SdControl,
  WellKnownSid,
  buildSecurityDescriptor,
  defaultFileSecurityDescriptor,
  encodeSid,
  parseSecurityDescriptor,
  parseSid,
  sidByteLength,
  sidFromString,
  sidToString,
  type Ace,
  type SecurityDescriptor,
  type Sid,
} from '../protocol/security-descriptor.js';
import type { AccessToken } from './token.js';
import { AccessMask } from '../protocol/create.js';

// ---------------------------------------------------------------------------------------------
// Access mask bits (MS-DTYP 2.4.3, MS-SMB2 2.2.13.1.1)

// One table of access bits for the whole server: the CREATE codec's (protocol may be imported here).
export { AccessMask };

const GENERIC_BITS = 0xf000_0000;

/** GENERIC_MAPPING (MS-DTYP 2.4.3 / 2.5.3.3 MapGenericBits): generic right -> specific rights. */
export interface GenericMapping {
  GenericRead: number;
  GenericWrite: number;
  GenericExecute: number;
  GenericAll: number;
}

/** File and directory objects (MS-DTYP 2.4.3: FILE_GENERIC_READ/WRITE/EXECUTE, FILE_ALL_ACCESS). */
export const FILE_GENERIC_MAPPING: Readonly<GenericMapping> = Object.freeze({
  GenericRead: 0x0012_0089,
  GenericWrite: 0x0012_0116,
  GenericExecute: 0x0012_00a0,
  GenericAll: 0x001f_01ff,
});

/** Replaces GENERIC_* bits with the specific rights they stand for (MS-DTYP 2.5.3.3). */
export function mapGenericMask(mask: number, mapping: GenericMapping = FILE_GENERIC_MAPPING): number {
  let m = mask >>> 0;
  if (m & AccessMask.GENERIC_READ) m |= mapping.GenericRead;
  if (m & AccessMask.GENERIC_WRITE) m |= mapping.GenericWrite;
  if (m & AccessMask.GENERIC_EXECUTE) m |= mapping.GenericExecute;
  if (m & AccessMask.GENERIC_ALL) m |= mapping.GenericAll;
  return (m & ~GENERIC_BITS) >>> 0;
}

// ---------------------------------------------------------------------------------------------
// ACE views: which ACEs take part in a DACL walk, their SID and mask

/** OWNER RIGHTS (MS-DTYP 2.4.2.4): in an ACE, stands for whoever owns the object. */
export const OWNER_RIGHTS_SID = 'S-1-3-4';

/** ACE_OBJECT_TYPE_PRESENT / ACE_INHERITED_OBJECT_TYPE_PRESENT (MS-DTYP 2.4.4.3 Flags). */
const ACE_OBJECT_TYPE_PRESENT = 0x1;
const ACE_INHERITED_OBJECT_TYPE_PRESENT = 0x2;

const SIMPLE_TYPES = new Set<number>([0x00, 0x01, 0x02, 0x03, 0x11, 0x13]);
const CALLBACK_TYPES = new Set<number>([0x09, 0x0a, 0x0d, 0x0e, 0x12]);
const OBJECT_TYPES = new Set<number>([0x05, 0x06, 0x07, 0x08, 0x0b, 0x0c, 0x0f, 0x10]);
/** ACE types that belong in a DACL (MS-DTYP 2.4.4.1); the others belong in a SACL. */
const DACL_TYPES = new Set<number>([0x00, 0x01, 0x05, 0x06, 0x09, 0x0a, 0x0b, 0x0c]);

interface AceSidInfo {
  sid: Sid;
  /** Offset of the SID inside ace.Body (the bytes after the 4-byte ACE header). */
  sidAt: number;
  /** Object ACEs only: the Flags field. */
  objectFlags: number;
}

/** Locates the SID of any mask+SID, callback or object ACE; undefined for other ACE types. */
function aceSidInfo(ace: Ace): AceSidInfo | undefined {
  if (SIMPLE_TYPES.has(ace.AceType) && ace.Sid) return { sid: ace.Sid, sidAt: 4, objectFlags: 0 };
  const body = ace.Body;
  if (!body) return undefined;
  if (SIMPLE_TYPES.has(ace.AceType) || CALLBACK_TYPES.has(ace.AceType)) {
    // MS-DTYP 2.4.4.2 / 2.4.4.6: Mask, Sid (, ApplicationData).
    return { sid: parseSid(body, 4), sidAt: 4, objectFlags: 0 };
  }
  if (OBJECT_TYPES.has(ace.AceType)) {
    // MS-DTYP 2.4.4.3: Mask, Flags, [ObjectType GUID], [InheritedObjectType GUID], Sid.
    if (body.length < 8) throw new MalformedError(`object ACE of ${body.length + 4} bytes`);
    const objectFlags = body.readUInt32LE(4);
    let at = 8;
    if (objectFlags & ACE_OBJECT_TYPE_PRESENT) at += 16;
    if (objectFlags & ACE_INHERITED_OBJECT_TYPE_PRESENT) at += 16;
    return { sid: parseSid(body, at), sidAt: at, objectFlags };
  }
  return undefined;
}

type AceEffect = 'allow' | 'deny' | 'ignore';

/**
 * How an ACE acts in a file-system access check (MS-DTYP 2.5.3.2 with Object Tree NULL, as MS-FSA
 * 2.1.4.14 calls it):
 * - ACCESS_ALLOWED / ACCESS_DENIED: allow / deny.
 * - ACCESS_ALLOWED_OBJECT / ACCESS_DENIED_OBJECT: files have no object types, so an object ACE
 *   naming an ObjectType GUID never applies; one without ObjectType applies to the whole object
 *   like its plain counterpart.
 * - Callback (conditional, MS-DTYP 2.4.4.17) ACEs: we do not evaluate conditional expressions, so
 *   every condition counts as UNKNOWN, which MS-DTYP 2.5.3.2 treats as "no" for allow ACEs and as
 *   "yes" for deny ACEs (fail closed).
 * - Everything else (audit, alarm, label, compound, resource attribute) is not an access ACE.
 */
function aceEffect(ace: Ace, info: AceSidInfo): AceEffect {
  switch (ace.AceType) {
    case AceType.ACCESS_ALLOWED_ACE_TYPE:
      return 'allow';
    case AceType.ACCESS_DENIED_ACE_TYPE:
      return 'deny';
    case AceType.ACCESS_ALLOWED_OBJECT_ACE_TYPE:
      return info.objectFlags & ACE_OBJECT_TYPE_PRESENT ? 'ignore' : 'allow';
    case AceType.ACCESS_DENIED_OBJECT_ACE_TYPE:
      return info.objectFlags & ACE_OBJECT_TYPE_PRESENT ? 'ignore' : 'deny';
    case AceType.ACCESS_DENIED_CALLBACK_ACE_TYPE:
      return 'deny';
    case AceType.ACCESS_DENIED_CALLBACK_OBJECT_ACE_TYPE:
      return info.objectFlags & ACE_OBJECT_TYPE_PRESENT ? 'ignore' : 'deny';
    default:
      return 'ignore';
  }
}

// ---------------------------------------------------------------------------------------------
// Access check (MS-DTYP 2.5.3.2)

export interface AccessCheckResult {
  /**
   * Rights granted. Without MAXIMUM_ALLOWED: the subset of the (generic-mapped) request that was
   * granted. With MAXIMUM_ALLOWED: every right the descriptor grants (within GenericAll) plus the
   * explicitly requested ones that were granted.
   */
  granted: number;
  /** Every requested right granted, and at least one right granted at all. */
  ok: boolean;
  /** ACCESS_SYSTEM_SECURITY was requested without SeSecurityPrivilege (STATUS_PRIVILEGE_NOT_HELD). */
  privilegeNotHeld: boolean;
}

/**
 * The MS-DTYP 2.5.3.2 access check of `token` against the self-relative descriptor `sd`.
 *
 * - `desired` is generic-mapped first (MS-DTYP 2.5.3.3). MAXIMUM_ALLOWED switches to computing
 *   every right the descriptor grants; other bits requested alongside it must still be granted.
 * - No descriptor, or no DACL (SE_DACL_PRESENT clear, or set with a NULL DACL): no policy, every
 *   right is granted (MAXIMUM_ALLOWED yields GenericAll).
 * - An empty DACL grants nothing but the owner's implicit rights.
 * - The owner is granted READ_CONTROL | WRITE_DAC implicitly unless the DACL holds an effective
 *   ACE for OWNER RIGHTS (S-1-3-4); OWNER RIGHTS ACEs then apply to the owner like any other.
 * - ACEs are walked in order, INHERIT_ONLY ones skipped; for each right the first matching ACE
 *   that mentions it decides (an earlier deny beats a later allow and vice versa), which is the
 *   pseudocode's RemainingAccess walk and its MAXIMUM_ALLOWED variant expressed per bit.
 *   Generic bits in ACE masks are mapped, as Windows maps them when the descriptor is stored.
 * - ACCESS_SYSTEM_SECURITY is granted only by SeSecurityPrivilege (never by an ACE); WRITE_OWNER
 *   is granted by SeTakeOwnershipPrivilege when requested explicitly. Privilege grants are decided
 *   before the DACL, so deny ACEs do not take them away.
 * - SeBackupPrivilege / SeRestorePrivilege semantics (backup-intent opens) are not applied here.
 * - A request of nothing (0, or MAXIMUM_ALLOWED yielding nothing) is not ok: Windows fails such
 *   an open with STATUS_ACCESS_DENIED.
 */
export function accessCheck(
  sd: Buffer | undefined,
  token: AccessToken,
  desired: number,
  genericMapping: GenericMapping = FILE_GENERIC_MAPPING,
): AccessCheckResult {
  const mapped = mapGenericMask(desired, genericMapping);
  const maxAllowed = (mapped & AccessMask.MAXIMUM_ALLOWED) !== 0;
  const wanted = (mapped & ~AccessMask.MAXIMUM_ALLOWED) >>> 0;
  const parsed = sd === undefined ? undefined : parseSecurityDescriptor(sd);

  let granted = 0;
  let privilegeNotHeld = false;
  if (wanted & AccessMask.ACCESS_SYSTEM_SECURITY) {
    if (token.privileges.has('SeSecurityPrivilege')) granted |= AccessMask.ACCESS_SYSTEM_SECURITY;
    else privilegeNotHeld = true;
  }
  if (wanted & AccessMask.WRITE_OWNER && token.privileges.has('SeTakeOwnershipPrivilege')) granted |= AccessMask.WRITE_OWNER;

  const scope = maxAllowed ? (genericMapping.GenericAll | wanted) >>> 0 : wanted;
  const notFromAces = AccessMask.ACCESS_SYSTEM_SECURITY | AccessMask.MAXIMUM_ALLOWED;

  if (parsed?.Dacl === undefined) {
    // MS-DTYP 2.5.3.2: no DACL means no policy; any access check succeeds.
    granted |= scope & ~notFromAces;
  } else {
    granted |= walkDacl(parsed, token, genericMapping, granted, notFromAces);
  }
  granted = (granted & scope) >>> 0;
  const ok = granted !== 0 && (wanted & ~granted) === 0;
  return { granted, ok, privilegeNotHeld };
}

/** The rights the DACL (and ownership) grant; bits already in `decidedByPrivilege` stay decided. */
function walkDacl(
  sd: SecurityDescriptor,
  token: AccessToken,
  mapping: GenericMapping,
  decidedByPrivilege: number,
  notFromAces: number,
): number {
  const sids = new Set<string>([token.userSid, ...token.groupSids]);
  const isOwner = sd.Owner !== undefined && sids.has(sidToString(sd.Owner));
  const effective: { ace: Ace; info: AceSidInfo; sid: string }[] = [];
  for (const ace of sd.Dacl ?? []) {
    const info = aceSidInfo(ace); // parsed for every ACE, so a malformed one is always reported
    if (!info || ace.AceFlags & AceFlags.INHERIT_ONLY_ACE) continue;
    effective.push({ ace, info, sid: sidToString(info.sid) });
  }
  let granted = 0;
  let decided = decidedByPrivilege;
  // MS-DTYP 2.5.3.2: the owner is implicitly granted READ_CONTROL and WRITE_DAC unless the DACL
  // carries OWNER RIGHTS ACEs, which then say what the owner gets.
  const ownerRightsPresent = effective.some((e) => e.sid === OWNER_RIGHTS_SID && aceEffect(e.ace, e.info) !== 'ignore');
  if (isOwner && !ownerRightsPresent) {
    const implicit = AccessMask.READ_CONTROL | AccessMask.WRITE_DAC;
    granted |= implicit & ~decided;
    decided |= implicit;
  }
  for (const { ace, info, sid } of effective) {
    const effect = aceEffect(ace, info);
    if (effect === 'ignore') continue;
    const matches = sids.has(sid) || (sid === OWNER_RIGHTS_SID && isOwner);
    if (!matches) continue;
    const mask = mapGenericMask(ace.Mask, mapping) & ~notFromAces;
    if (effect === 'allow') granted |= mask & ~decided;
    decided |= mask;
  }
  return granted >>> 0;
}

// ---------------------------------------------------------------------------------------------
// File-system rules (MS-FSA)

export interface FileAccessCheckInput {
  /** The file's own descriptor (undefined: the file has none, so no policy applies). */
  sd: Buffer | undefined;
  /**
   * The parent directory's descriptor, consulted for the two parent-granted rights. Undefined when
   * the object has no parent (the share root): then no right comes from a parent.
   */
  parentSd?: Buffer | undefined;
  token: AccessToken;
  desired: number;
  /** Accepted for the caller's convenience; MS-FSA applies the same rules to files and directories. */
  isDirectory?: boolean;
}

/**
 * MS-FSA 2.1.5.1.2.1, on top of accessCheck:
 * - DELETE (requested, or under MAXIMUM_ALLOWED) is granted when the parent grants
 *   FILE_DELETE_CHILD, even if the file's own DACL does not grant or denies it.
 * - FILE_READ_ATTRIBUTES is granted when the parent grants FILE_LIST_DIRECTORY; Windows adds it to
 *   the granted access even when it was not requested (smbtorture base.acls INHERITANCE checks
 *   that an open for FILE_WRITE_DATA reports FILE_WRITE_DATA | FILE_READ_ATTRIBUTES).
 * The FILE_ATTRIBUTE_READONLY and read-only-volume rules of the same section depend on attributes
 * and stay with the caller.
 */
export function fileAccessCheck(input: FileAccessCheckInput): AccessCheckResult {
  const { sd, parentSd, token, desired } = input;
  const own = accessCheck(sd, token, desired);
  const mapped = mapGenericMask(desired);
  const maxAllowed = (mapped & AccessMask.MAXIMUM_ALLOWED) !== 0;
  const wanted = (mapped & ~AccessMask.MAXIMUM_ALLOWED) >>> 0;
  let granted = own.granted;
  if (parentSd !== undefined) {
    const wantsDelete = maxAllowed || (wanted & AccessMask.DELETE) !== 0;
    if (wantsDelete && !(granted & AccessMask.DELETE) && accessCheck(parentSd, token, AccessMask.FILE_DELETE_CHILD).ok) {
      granted |= AccessMask.DELETE;
    }
    if (!(granted & AccessMask.FILE_READ_ATTRIBUTES) && accessCheck(parentSd, token, AccessMask.FILE_LIST_DIRECTORY).ok) {
      granted |= AccessMask.FILE_READ_ATTRIBUTES;
    }
  }
  granted >>>= 0;
  return { granted, ok: granted !== 0 && (wanted & ~granted) === 0, privilegeNotHeld: own.privilegeNotHeld };
}

export interface CreateAccessCheckInput {
  /** The descriptor of the directory the new object is created in (undefined: none, no policy). */
  parentSd: Buffer | undefined;
  token: AccessToken;
  desired: number;
  isDirectory: boolean;
}

/**
 * Creating a file or directory (MS-FSA 2.1.5.1.2): the parent must grant FILE_ADD_SUBDIRECTORY
 * (directories) or FILE_ADD_FILE (files). The creator is then granted the access it asked for,
 * whatever the new object's descriptor says (smbtorture base.acls INHERITANCE creates a file with
 * SEC_RIGHTS_FILE_ALL under a DACL that will only grant FILE_WRITE_DATA | WRITE_DAC and expects
 * the create to be granted everything); MAXIMUM_ALLOWED yields FILE_ALL_ACCESS. Only
 * ACCESS_SYSTEM_SECURITY still needs SeSecurityPrivilege.
 */
export function createAccessCheck(input: CreateAccessCheckInput): AccessCheckResult {
  const { parentSd, token, desired, isDirectory } = input;
  const need = isDirectory ? AccessMask.FILE_ADD_SUBDIRECTORY : AccessMask.FILE_ADD_FILE;
  const parentOk = accessCheck(parentSd, token, need).ok;
  const mapped = mapGenericMask(desired);
  const maxAllowed = (mapped & AccessMask.MAXIMUM_ALLOWED) !== 0;
  const wanted = (mapped & ~AccessMask.MAXIMUM_ALLOWED) >>> 0;
  const privilegeNotHeld = (wanted & AccessMask.ACCESS_SYSTEM_SECURITY) !== 0 && !token.privileges.has('SeSecurityPrivilege');
  if (!parentOk) return { granted: 0, ok: false, privilegeNotHeld };
  let granted = (wanted | (maxAllowed ? FILE_GENERIC_MAPPING.GenericAll : 0)) >>> 0;
  if (privilegeNotHeld) granted = (granted & ~AccessMask.ACCESS_SYSTEM_SECURITY) >>> 0;
  return { granted, ok: granted !== 0 && (wanted & ~granted) === 0, privilegeNotHeld };
}

// ---------------------------------------------------------------------------------------------
// Inheritance (MS-DTYP 2.5.3.4)

export interface InheritOptions {
  isDirectory: boolean;
  /** The creating user's SID: owner of the new object and the CREATOR OWNER substitute. */
  creatorSid: string;
  /** Primary group of the new object and the CREATOR GROUP substitute. */
  creatorGroupSid: string;
  /** Descriptor supplied by the client (SMB2_CREATE_SD_BUFFER "SecD" create context). */
  explicitSd?: Buffer | undefined;
  genericMapping?: GenericMapping;
}

const INHERIT_FLAGS = AceFlags.OBJECT_INHERIT_ACE | AceFlags.CONTAINER_INHERIT_ACE | AceFlags.NO_PROPAGATE_INHERIT_ACE;

/** Rewrites an ACE's flags, mask and (optionally) SID, preserving any callback/object payload. */
function rewriteAce(ace: Ace, flags: number, mask: number, sid?: Sid): Ace {
  if (SIMPLE_TYPES.has(ace.AceType) && ace.Sid) {
    return { AceType: ace.AceType, AceFlags: flags & 0xff, Mask: mask >>> 0, Sid: sid ?? ace.Sid };
  }
  const body = ace.Body;
  if (!body || body.length < 4) throw new MalformedError('ACE without a body');
  let out: Buffer;
  const info = sid ? aceSidInfo(ace) : undefined;
  if (sid && info) {
    const tail = body.subarray(info.sidAt + sidByteLength(info.sid));
    out = Buffer.concat([body.subarray(0, info.sidAt), encodeSid(sid), tail]);
  } else {
    out = Buffer.from(body);
  }
  out.writeUInt32LE(mask >>> 0, 0);
  return { AceType: ace.AceType, AceFlags: flags & 0xff, Mask: mask >>> 0, Body: out };
}

interface Substitution {
  owner: Sid;
  group: Sid;
  mapping: GenericMapping;
}

/** True when an ACE needs an "effective" copy: CREATOR OWNER/GROUP SID or generic rights. */
function needsExpansion(ace: Ace, info: AceSidInfo | undefined): boolean {
  if ((ace.Mask & GENERIC_BITS) !== 0) return true;
  if (!info) return false;
  const s = sidToString(info.sid);
  return s === WellKnownSid.CREATOR_OWNER || s === WellKnownSid.CREATOR_GROUP;
}

/** The effective form of an ACE: CREATOR OWNER/GROUP replaced, generic rights mapped. */
function expandAce(ace: Ace, info: AceSidInfo | undefined, flags: number, sub: Substitution): Ace {
  let sid: Sid | undefined;
  if (info) {
    const s = sidToString(info.sid);
    if (s === WellKnownSid.CREATOR_OWNER) sid = sub.owner;
    else if (s === WellKnownSid.CREATOR_GROUP) sid = sub.group;
  }
  return rewriteAce(ace, flags, mapGenericMask(ace.Mask, sub.mapping), sid);
}

/**
 * The ACEs a child inherits from its parent's ACL (MS-DTYP 2.5.3.4.4 ComputeInheritedACLfromParent
 * with the CREATOR OWNER / generic expansion of 2.5.3.4.3), in the parent's order:
 * - a file inherits OBJECT_INHERIT ACEs as effective ACEs with no inheritance flags;
 * - a directory inherits CONTAINER_INHERIT ACEs as effective ACEs that stay inheritable (same
 *   OI/CI), or, with NO_PROPAGATE_INHERIT, as effective ACEs with no inheritance flags;
 * - a directory keeps OBJECT_INHERIT-only ACEs (without NO_PROPAGATE_INHERIT) as INHERIT_ONLY, to
 *   pass on to its files;
 * - an ACE that is both effective and inheritable but names CREATOR OWNER / CREATOR GROUP or carries
 *   generic rights becomes two: the expanded effective ACE, then the original as INHERIT_ONLY;
 * - INHERITED_ACE is set on every copy when `markInherited` (parent auto-inherited).
 * Verified against smbtorture base.acls / smb2.acls INHERITANCE's table of parent flags.
 */
function inheritAcl(parentAcl: readonly Ace[], isDirectory: boolean, forDacl: boolean, markInherited: boolean, sub: Substitution): Ace[] {
  const out: Ace[] = [];
  const id = markInherited ? AceFlags.INHERITED_ACE : 0;
  for (const ace of parentAcl) {
    if (DACL_TYPES.has(ace.AceType) !== forDacl || ace.AceType === AceType.ACCESS_ALLOWED_COMPOUND_ACE_TYPE) continue;
    const f = ace.AceFlags;
    const noPropagate = (f & AceFlags.NO_PROPAGATE_INHERIT_ACE) !== 0;
    let effective: boolean;
    let propagate: boolean;
    if (isDirectory) {
      if (f & AceFlags.CONTAINER_INHERIT_ACE) {
        effective = true;
        propagate = !noPropagate;
      } else if (f & AceFlags.OBJECT_INHERIT_ACE) {
        effective = false;
        propagate = !noPropagate;
      } else continue;
    } else {
      if (!(f & AceFlags.OBJECT_INHERIT_ACE)) continue;
      effective = true;
      propagate = false;
    }
    if (!effective && !propagate) continue;
    const info = aceSidInfo(ace);
    const base = f & ~(AceFlags.INHERIT_ONLY_ACE | AceFlags.INHERITED_ACE);
    const plain = (base & ~INHERIT_FLAGS) | id;
    if (effective && propagate) {
      if (needsExpansion(ace, info)) {
        out.push(expandAce(ace, info, plain, sub));
        out.push(rewriteAce(ace, base | AceFlags.INHERIT_ONLY_ACE | id, ace.Mask));
      } else {
        out.push(rewriteAce(ace, base | id, ace.Mask));
      }
    } else if (effective) {
      out.push(needsExpansion(ace, info) ? expandAce(ace, info, plain, sub) : rewriteAce(ace, plain, ace.Mask));
    } else {
      out.push(rewriteAce(ace, base | AceFlags.INHERIT_ONLY_ACE | id, ace.Mask));
    }
  }
  return out;
}

type ExplicitMode = 'auto-inherit' | 'protected' | 'as-is';

/**
 * The creator's own ACEs (MS-DTYP 2.5.3.4.3 PostProcessACL): with auto-inheritance, ACEs marked
 * INHERITED_ACE are dropped (inheritance recomputes them); when protected the mark is cleared.
 * Effective ACEs naming CREATOR OWNER/GROUP or carrying generic rights are expanded in place, or,
 * on a directory when they are also inheritable, kept as INHERIT_ONLY followed by the expansion.
 */
function processExplicitAcl(acl: readonly Ace[], isDirectory: boolean, mode: ExplicitMode, sub: Substitution): Ace[] {
  const out: Ace[] = [];
  for (const ace of acl) {
    let flags = ace.AceFlags;
    if (flags & AceFlags.INHERITED_ACE) {
      if (mode === 'auto-inherit') continue;
      if (mode === 'protected') flags &= ~AceFlags.INHERITED_ACE;
    }
    const info = aceSidInfo(ace);
    if (flags & AceFlags.INHERIT_ONLY_ACE || !needsExpansion(ace, info)) {
      out.push(flags === ace.AceFlags ? ace : rewriteAce(ace, flags, ace.Mask));
      continue;
    }
    const plain = flags & ~INHERIT_FLAGS;
    if (isDirectory && flags & (AceFlags.OBJECT_INHERIT_ACE | AceFlags.CONTAINER_INHERIT_ACE)) {
      out.push(rewriteAce(ace, flags | AceFlags.INHERIT_ONLY_ACE, ace.Mask));
    }
    out.push(expandAce(ace, info, plain, sub));
  }
  return out;
}

interface ComputedAcl {
  /** undefined with present=true is a NULL ACL. */
  acl: Ace[] | undefined;
  present: boolean;
  control: number;
}

/** MS-DTYP 2.5.3.4.2 ComputeACL for one of DACL / SACL. */
function computeAcl(
  forDacl: boolean,
  parent: SecurityDescriptor | undefined,
  creator: SecurityDescriptor | undefined,
  isDirectory: boolean,
  sub: Substitution,
): ComputedAcl {
  const autoInheritedBit = forDacl ? SdControl.SE_DACL_AUTO_INHERITED : SdControl.SE_SACL_AUTO_INHERITED;
  const protectedBit = forDacl ? SdControl.SE_DACL_PROTECTED : SdControl.SE_SACL_PROTECTED;
  const presentBit = forDacl ? SdControl.SE_DACL_PRESENT : SdControl.SE_SACL_PRESENT;
  // NTFS passes DACL/SACL_AUTO_INHERIT to the computation exactly when the parent's descriptor
  // is marked auto-inherited (smbtorture base.acls INHERITFLAGS): only then do copies carry
  // INHERITED_ACE and the child carry SE_*_AUTO_INHERITED, and only then are explicit and
  // inherited ACEs merged.
  const autoInherit = parent !== undefined && (parent.Control & autoInheritedBit) !== 0;
  const parentAcl = parent ? (forDacl ? parent.Dacl : parent.Sacl) : undefined;
  const inherited = parentAcl ? inheritAcl(parentAcl, isDirectory, forDacl, autoInherit, sub) : [];
  const aiControl = autoInherit ? autoInheritedBit : 0;

  if (creator && creator.Control & presentBit) {
    const creatorAcl = forDacl ? creator.Dacl : creator.Sacl;
    const isProtected = (creator.Control & protectedBit) !== 0;
    const keep = isProtected ? protectedBit : 0;
    // A NULL ACL supplied by the creator stays NULL (no policy).
    if (creatorAcl === undefined) return { acl: undefined, present: true, control: keep };
    if (isProtected) {
      return { acl: processExplicitAcl(creatorAcl, isDirectory, 'protected', sub), present: true, control: keep | aiControl };
    }
    if (autoInherit) {
      const explicit = processExplicitAcl(creatorAcl, isDirectory, 'auto-inherit', sub);
      return { acl: [...explicit, ...inherited], present: true, control: aiControl };
    }
    return { acl: processExplicitAcl(creatorAcl, isDirectory, 'as-is', sub), present: true, control: 0 };
  }
  if (inherited.length > 0) return { acl: inherited, present: true, control: aiControl };
  return { acl: undefined, present: false, control: 0 };
}

/**
 * The security descriptor of a newly created file or directory (MS-DTYP 2.5.3.4.1
 * CreateSecurityDescriptor):
 * - Owner and Group come from the explicit descriptor when it carries them, else the creator's
 *   SIDs. (Whether the creator may name another owner is the CREATE handler's check.)
 * - DACL: the explicit DACL when one is supplied (merged with the inherited ACEs when the parent is
 *   auto-inherited and the explicit DACL is not SE_DACL_PROTECTED); else the ACEs inherited from
 *   the parent; else, when nothing is inheritable, the default DACL of
 *   defaultFileSecurityDescriptor for the creator. SACL likewise, without a default.
 * - Without a parent descriptor and without explicit parts this is exactly
 *   defaultFileSecurityDescriptor(creatorSid, { groupSid: creatorGroupSid, isDirectory }).
 * Throws MalformedError when either descriptor is malformed.
 */
export function inheritSecurityDescriptor(parentSd: Buffer | undefined, opts: InheritOptions): Buffer {
  const parent = parentSd === undefined ? undefined : parseSecurityDescriptor(parentSd);
  const creator = opts.explicitSd === undefined ? undefined : parseSecurityDescriptor(opts.explicitSd);
  const owner = creator?.Owner ?? sidFromString(opts.creatorSid);
  const group = creator?.Group ?? sidFromString(opts.creatorGroupSid);
  const sub: Substitution = { owner, group, mapping: opts.genericMapping ?? FILE_GENERIC_MAPPING };

  const dacl = computeAcl(true, parent, creator, opts.isDirectory, sub);
  const sacl = computeAcl(false, parent, creator, opts.isDirectory, sub);

  let control = dacl.control | sacl.control;
  let daclAces = dacl.acl;
  if (!dacl.present) {
    // Nothing explicit and nothing inheritable: the default for the creator (MS-DTYP 2.5.3.4.2
    // falls back to the token's DefaultDACL; ours is the server's default file descriptor).
    const fallback = parseSecurityDescriptor(
      defaultFileSecurityDescriptor(opts.creatorSid, { groupSid: opts.creatorGroupSid, isDirectory: opts.isDirectory }),
    );
    daclAces = fallback.Dacl;
  }
  control |= SdControl.SE_DACL_PRESENT;
  if (sacl.present) control |= SdControl.SE_SACL_PRESENT;
  const out: SecurityDescriptor = { Control: control, Owner: owner, Group: group };
  if (daclAces !== undefined) out.Dacl = daclAces;
  if (sacl.acl !== undefined) out.Sacl = sacl.acl;
  return buildSecurityDescriptor(out);
}
