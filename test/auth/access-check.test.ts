import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MalformedError } from '../../src/base/errors.js';
import {
  AccessMask,
  FILE_GENERIC_MAPPING,
  accessCheck,
  createAccessCheck,
  fileAccessCheck,
  inheritSecurityDescriptor,
  mapGenericMask,
} from '../../src/auth/access-check.js';
import { tokenForUser, tokenHasSid, type AccessToken } from '../../src/auth/token.js';
import {
  AceFlags,
  AceType,
  SdControl,
  WellKnownSid,
  buildSecurityDescriptor,
  defaultFileSecurityDescriptor,
  encodeSid,
  parseSecurityDescriptor,
  sidFromString,
  sidToString,
  type Ace,
} from '../../src/protocol/security-descriptor.js';

// ---------------------------------------------------------------------------------------------
// Fixtures

const DOMAIN = 'S-1-5-21-1111-2222-3333';
const ALICE = `${DOMAIN}-1000`;
const BOB = `${DOMAIN}-1001`;
const NONE_GROUP = `${DOMAIN}-513`;
const OWNER_RIGHTS = 'S-1-3-4';

const alice = tokenForUser({ userSid: ALICE });
const bob = tokenForUser({ userSid: BOB });

const { FILE_READ_DATA, FILE_WRITE_DATA, FILE_LIST_DIRECTORY, FILE_DELETE_CHILD, FILE_READ_ATTRIBUTES } = AccessMask;
const { DELETE, READ_CONTROL, WRITE_DAC, WRITE_OWNER, MAXIMUM_ALLOWED, ACCESS_SYSTEM_SECURITY } = AccessMask;
const FILE_ALL = 0x001f_01ff;
/** smbtorture SEC_RIGHTS_FILE_READ (= FILE_GENERIC_READ) and SEC_STD_ALL. */
const SEC_RIGHTS_FILE_READ = 0x0012_0089;
const SEC_STD_ALL = 0x001f_0000;

const { OBJECT_INHERIT_ACE: OI, CONTAINER_INHERIT_ACE: CI, NO_PROPAGATE_INHERIT_ACE: NP, INHERIT_ONLY_ACE: IO, INHERITED_ACE: ID } = AceFlags;

function allow(sid: string, Mask: number, flags = 0): Ace {
  return { AceType: AceType.ACCESS_ALLOWED_ACE_TYPE, AceFlags: flags, Mask, Sid: sidFromString(sid) };
}
function deny(sid: string, Mask: number, flags = 0): Ace {
  return { AceType: AceType.ACCESS_DENIED_ACE_TYPE, AceFlags: flags, Mask, Sid: sidFromString(sid) };
}
function sdWith(dacl: Ace[] | undefined, opts: { owner?: string; group?: string; control?: number; sacl?: Ace[] } = {}): Buffer {
  return buildSecurityDescriptor({
    Control: opts.control ?? 0,
    Owner: sidFromString(opts.owner ?? ALICE),
    Group: sidFromString(opts.group ?? NONE_GROUP),
    Dacl: dacl,
    Sacl: opts.sacl,
  });
}

/** An object ACE (MS-DTYP 2.4.4.3) with an optional ObjectType GUID. */
function objectAce(type: number, sid: string, Mask: number, withObjectType: boolean): Ace {
  const parts: Buffer[] = [Buffer.alloc(8)];
  parts[0]!.writeUInt32LE(Mask, 0);
  parts[0]!.writeUInt32LE(withObjectType ? 1 : 0, 4);
  if (withObjectType) parts.push(Buffer.alloc(16, 0xab));
  parts.push(encodeSid(sid));
  return { AceType: type, AceFlags: 0, Mask, Body: Buffer.concat(parts) };
}

/** A callback ACE (MS-DTYP 2.4.4.6): Mask, SID, ApplicationData ("artx" + padding). */
function callbackAce(type: number, sid: string, Mask: number): Ace {
  const head = Buffer.alloc(4);
  head.writeUInt32LE(Mask, 0);
  return { AceType: type, AceFlags: 0, Mask, Body: Buffer.concat([head, encodeSid(sid), Buffer.from('artx\0\0\0\0', 'latin1')]) };
}

type AceRow = [type: number, flags: number, mask: number, sid: string];
function rows(sd: Buffer): AceRow[] | undefined {
  const p = parseSecurityDescriptor(sd);
  return p.Dacl?.map((a) => [a.AceType, a.AceFlags, a.Mask, a.Sid ? sidToString(a.Sid) : '?']);
}

// ---------------------------------------------------------------------------------------------

describe('tokenForUser (network logon groups)', () => {
  it('gives a user Everyone, NETWORK, Authenticated Users and Users, and no privileges', () => {
    expect(alice.userSid).toBe(ALICE);
    expect(alice.groupSids).toEqual(['S-1-1-0', 'S-1-5-2', 'S-1-5-11', 'S-1-5-32-545']);
    expect([...alice.privileges]).toEqual([]);
  });
  it('adds Administrators and the file privileges for an admin', () => {
    const t = tokenForUser({ userSid: ALICE, isAdmin: true });
    expect(t.groupSids).toEqual(['S-1-1-0', 'S-1-5-2', 'S-1-5-11', 'S-1-5-32-545', 'S-1-5-32-544']);
    expect([...t.privileges].sort()).toEqual(['SeBackupPrivilege', 'SeRestorePrivilege', 'SeSecurityPrivilege', 'SeTakeOwnershipPrivilege']);
  });
  it('puts a guest in Guests without Authenticated Users', () => {
    const t = tokenForUser({ userSid: `${DOMAIN}-501`, isGuest: true, isAdmin: true });
    expect(t.groupSids).toEqual(['S-1-1-0', 'S-1-5-2', 'S-1-5-32-546']);
    expect(t.privileges.size).toBe(0);
  });
  it('gives an anonymous logon ANONYMOUS LOGON and neither Users nor Authenticated Users', () => {
    const t = tokenForUser({ userSid: 'S-1-5-7', isAnonymous: true });
    expect(t.groupSids).toEqual(['S-1-1-0', 'S-1-5-2']);
    expect(tokenHasSid(t, 'S-1-5-7')).toBe(true);
    expect(tokenHasSid(t, 'S-1-5-11')).toBe(false);
    const t2 = tokenForUser({ userSid: `${DOMAIN}-501`, isAnonymous: true, extraGroupSids: [NONE_GROUP] });
    expect(t2.groupSids).toEqual(['S-1-1-0', 'S-1-5-2', 'S-1-5-7', NONE_GROUP]);
  });
});

describe('mapGenericMask (MS-DTYP 2.5.3.3, FILE_GENERIC_MAPPING)', () => {
  it('maps each generic right to the file rights', () => {
    expect(mapGenericMask(AccessMask.GENERIC_READ)).toBe(0x0012_0089);
    expect(mapGenericMask(AccessMask.GENERIC_WRITE)).toBe(0x0012_0116);
    expect(mapGenericMask(AccessMask.GENERIC_EXECUTE)).toBe(0x0012_00a0);
    expect(mapGenericMask(AccessMask.GENERIC_ALL)).toBe(FILE_ALL);
    expect(mapGenericMask(AccessMask.GENERIC_READ | AccessMask.GENERIC_WRITE | MAXIMUM_ALLOWED)).toBe((0x0012_019f | MAXIMUM_ALLOWED) >>> 0);
    expect(FILE_GENERIC_MAPPING.GenericAll).toBe(FILE_ALL);
  });
});

describe('accessCheck (MS-DTYP 2.5.3.2)', () => {
  it('grants everything when there is no descriptor or no DACL', () => {
    expect(accessCheck(undefined, bob, FILE_WRITE_DATA)).toEqual({ granted: FILE_WRITE_DATA, ok: true, privilegeNotHeld: false });
    const noDacl = sdWith(undefined);
    expect(parseSecurityDescriptor(noDacl).Control & SdControl.SE_DACL_PRESENT).toBe(0);
    expect(accessCheck(noDacl, bob, FILE_ALL)).toMatchObject({ granted: FILE_ALL, ok: true });
  });

  it('treats a NULL DACL (present, no ACL) as granting everything, MAXIMUM_ALLOWED included', () => {
    const nullDacl = sdWith(undefined, { control: SdControl.SE_DACL_PRESENT });
    expect(nullDacl.readUInt16LE(2) & SdControl.SE_DACL_PRESENT).toBe(SdControl.SE_DACL_PRESENT);
    expect(nullDacl.readUInt32LE(16)).toBe(0);
    expect(accessCheck(nullDacl, bob, MAXIMUM_ALLOWED)).toMatchObject({ granted: FILE_ALL, ok: true });
    expect(accessCheck(nullDacl, bob, AccessMask.GENERIC_WRITE)).toMatchObject({ granted: 0x0012_0116, ok: true });
  });

  it('an empty DACL grants nothing except the owner implicit READ_CONTROL | WRITE_DAC', () => {
    const empty = sdWith([]);
    expect(accessCheck(empty, bob, FILE_READ_DATA)).toMatchObject({ granted: 0, ok: false });
    expect(accessCheck(empty, bob, MAXIMUM_ALLOWED)).toMatchObject({ granted: 0, ok: false });
    expect(accessCheck(empty, alice, READ_CONTROL | WRITE_DAC)).toMatchObject({ granted: READ_CONTROL | WRITE_DAC, ok: true });
    expect(accessCheck(empty, alice, MAXIMUM_ALLOWED)).toMatchObject({ granted: READ_CONTROL | WRITE_DAC, ok: true });
    expect(accessCheck(empty, alice, FILE_READ_DATA | READ_CONTROL)).toMatchObject({ granted: READ_CONTROL, ok: false });
    expect(accessCheck(empty, alice, WRITE_OWNER).ok).toBe(false);
  });

  it('a deny ACE before an allow ACE wins', () => {
    const sd = sdWith([deny('S-1-1-0', FILE_WRITE_DATA), allow(BOB, FILE_ALL)]);
    expect(accessCheck(sd, bob, FILE_WRITE_DATA).ok).toBe(false);
    expect(accessCheck(sd, bob, FILE_READ_DATA | FILE_WRITE_DATA)).toMatchObject({ granted: FILE_READ_DATA, ok: false });
    expect(accessCheck(sd, bob, FILE_READ_DATA)).toMatchObject({ granted: FILE_READ_DATA, ok: true });
    expect(accessCheck(sd, bob, MAXIMUM_ALLOWED).granted).toBe(FILE_ALL & ~FILE_WRITE_DATA);
    expect(accessCheck(sd, bob, MAXIMUM_ALLOWED | FILE_WRITE_DATA).ok).toBe(false);
  });

  it('an allow ACE before a deny ACE wins for the rights it already granted', () => {
    const sd = sdWith([allow(BOB, FILE_READ_DATA | FILE_WRITE_DATA), deny('S-1-1-0', FILE_ALL)]);
    expect(accessCheck(sd, bob, FILE_READ_DATA | FILE_WRITE_DATA)).toMatchObject({ granted: 3, ok: true });
    expect(accessCheck(sd, bob, FILE_READ_DATA | DELETE).ok).toBe(false);
    expect(accessCheck(sd, bob, MAXIMUM_ALLOWED).granted).toBe(3);
  });

  it('accumulates rights from several ACEs and ignores ACEs for SIDs not in the token', () => {
    const sd = sdWith([allow('S-1-5-11', FILE_READ_DATA), allow('S-1-5-32-545', FILE_WRITE_DATA), allow(ALICE, DELETE)]);
    expect(accessCheck(sd, bob, FILE_READ_DATA | FILE_WRITE_DATA)).toMatchObject({ granted: 3, ok: true });
    expect(accessCheck(sd, bob, DELETE).ok).toBe(false);
    const guest = tokenForUser({ userSid: `${DOMAIN}-501`, isGuest: true });
    expect(accessCheck(sd, guest, FILE_READ_DATA).ok).toBe(false);
  });

  it('owner implicit rights are not taken away by deny ACEs', () => {
    const sd = sdWith([deny(ALICE, WRITE_DAC | READ_CONTROL | FILE_READ_DATA), allow(ALICE, FILE_ALL)]);
    expect(accessCheck(sd, alice, READ_CONTROL | WRITE_DAC).ok).toBe(true);
    expect(accessCheck(sd, alice, FILE_READ_DATA).ok).toBe(false);
    expect(accessCheck(sd, alice, MAXIMUM_ALLOWED).granted).toBe(FILE_ALL & ~FILE_READ_DATA);
  });

  it('OWNER RIGHTS (S-1-3-4) ACEs replace the implicit owner rights and apply only to the owner', () => {
    const sd = sdWith([allow(OWNER_RIGHTS, FILE_READ_DATA)]);
    expect(accessCheck(sd, alice, FILE_READ_DATA).ok).toBe(true);
    expect(accessCheck(sd, alice, WRITE_DAC).ok).toBe(false);
    expect(accessCheck(sd, alice, MAXIMUM_ALLOWED).granted).toBe(FILE_READ_DATA);
    expect(accessCheck(sd, bob, FILE_READ_DATA).ok).toBe(false);
    // Inherit-only OWNER RIGHTS ACEs do not count: the implicit rights come back.
    const io = sdWith([allow(OWNER_RIGHTS, FILE_READ_DATA, OI | IO)]);
    expect(accessCheck(io, alice, MAXIMUM_ALLOWED).granted).toBe(READ_CONTROL | WRITE_DAC);
  });

  it('maps generic rights in the request and in ACE masks', () => {
    const sd = sdWith([allow(BOB, AccessMask.GENERIC_READ)]);
    expect(accessCheck(sd, bob, AccessMask.GENERIC_READ)).toMatchObject({ granted: 0x0012_0089, ok: true });
    expect(accessCheck(sd, bob, FILE_READ_DATA).ok).toBe(true);
    expect(accessCheck(sd, bob, AccessMask.GENERIC_WRITE).ok).toBe(false);
    const all = sdWith([allow(BOB, FILE_ALL)]);
    expect(accessCheck(all, bob, AccessMask.GENERIC_ALL)).toMatchObject({ granted: FILE_ALL, ok: true });
  });

  it('skips INHERIT_ONLY ACEs', () => {
    const sd = sdWith([allow('S-1-1-0', FILE_ALL, OI | CI | IO), deny(BOB, FILE_ALL, CI | IO), allow(BOB, FILE_READ_DATA)]);
    expect(accessCheck(sd, bob, FILE_READ_DATA).ok).toBe(true);
    expect(accessCheck(sd, bob, FILE_WRITE_DATA).ok).toBe(false);
  });

  it('MAXIMUM_ALLOWED returns every granted right within FILE_ALL_ACCESS', () => {
    const sd = sdWith([allow(BOB, 0xffff_ffff)]);
    expect(accessCheck(sd, bob, MAXIMUM_ALLOWED)).toMatchObject({ granted: FILE_ALL, ok: true });
  });

  it('ACCESS_SYSTEM_SECURITY needs SeSecurityPrivilege and is never granted by an ACE', () => {
    const sd = sdWith([allow('S-1-1-0', 0xffff_ffff)]);
    expect(accessCheck(sd, bob, ACCESS_SYSTEM_SECURITY)).toEqual({ granted: 0, ok: false, privilegeNotHeld: true });
    const admin = tokenForUser({ userSid: BOB, isAdmin: true });
    expect(accessCheck(sd, admin, ACCESS_SYSTEM_SECURITY | FILE_READ_DATA)).toEqual({
      granted: (ACCESS_SYSTEM_SECURITY | FILE_READ_DATA) >>> 0,
      ok: true,
      privilegeNotHeld: false,
    });
    expect(accessCheck(sdWith([]), admin, ACCESS_SYSTEM_SECURITY).ok).toBe(true);
    expect(accessCheck(undefined, bob, ACCESS_SYSTEM_SECURITY).ok).toBe(false);
  });

  it('SeTakeOwnershipPrivilege grants WRITE_OWNER even over a deny ACE', () => {
    const sd = sdWith([deny('S-1-1-0', WRITE_OWNER)], { owner: ALICE });
    const taker: AccessToken = { userSid: BOB, groupSids: ['S-1-1-0'], privileges: new Set(['SeTakeOwnershipPrivilege']) };
    expect(accessCheck(sd, taker, WRITE_OWNER).ok).toBe(true);
    expect(accessCheck(sd, bob, WRITE_OWNER).ok).toBe(false);
  });

  it('an empty request is not ok', () => {
    expect(accessCheck(undefined, bob, 0).ok).toBe(false);
  });

  it('object ACEs apply only without an ObjectType; callback allow ACEs never grant, callback deny ACEs deny', () => {
    const plainObject = sdWith([objectAce(AceType.ACCESS_ALLOWED_OBJECT_ACE_TYPE, BOB, FILE_READ_DATA, false)]);
    expect(accessCheck(plainObject, bob, FILE_READ_DATA).ok).toBe(true);
    const typed = sdWith([objectAce(AceType.ACCESS_ALLOWED_OBJECT_ACE_TYPE, BOB, FILE_READ_DATA, true)]);
    expect(accessCheck(typed, bob, FILE_READ_DATA).ok).toBe(false);
    const denyObject = sdWith([objectAce(AceType.ACCESS_DENIED_OBJECT_ACE_TYPE, BOB, FILE_READ_DATA, false), allow(BOB, FILE_ALL)]);
    expect(accessCheck(denyObject, bob, FILE_READ_DATA).ok).toBe(false);
    const cbAllow = sdWith([callbackAce(AceType.ACCESS_ALLOWED_CALLBACK_ACE_TYPE, BOB, FILE_READ_DATA)]);
    expect(accessCheck(cbAllow, bob, FILE_READ_DATA).ok).toBe(false);
    const cbDeny = sdWith([callbackAce(AceType.ACCESS_DENIED_CALLBACK_ACE_TYPE, BOB, FILE_READ_DATA), allow(BOB, FILE_ALL)]);
    expect(accessCheck(cbDeny, bob, FILE_READ_DATA).ok).toBe(false);
    expect(accessCheck(cbDeny, bob, FILE_WRITE_DATA).ok).toBe(true);
    const cbDenyOther = sdWith([callbackAce(AceType.ACCESS_DENIED_CALLBACK_ACE_TYPE, ALICE, FILE_READ_DATA), allow(BOB, FILE_ALL)]);
    expect(accessCheck(cbDenyOther, bob, FILE_READ_DATA).ok).toBe(true);
  });

  it('reports a malformed object ACE SID as MalformedError', () => {
    const ace = objectAce(AceType.ACCESS_ALLOWED_OBJECT_ACE_TYPE, BOB, FILE_READ_DATA, true);
    const bad: Ace = { ...ace, Body: ace.Body!.subarray(0, 24) }; // the SID is cut off
    const sd = sdWith([bad]);
    expect(() => accessCheck(sd, bob, FILE_READ_DATA)).toThrow(MalformedError);
  });

  // smbtorture smb2.compound.related4 / related7: SET_INFO sets a DACL whose only ACE allows
  // SEC_RIGHTS_FILE_READ | SEC_STD_ALL to CREATOR OWNER, non-inherited. CREATOR OWNER in an
  // effective ACE matches nobody, so the owner's open for FILE_WRITE_DATA is denied, while the
  // owner's implicit READ_CONTROL | WRITE_DAC still hold.
  it('compound.related4: CREATOR OWNER in a non-inherited ACE matches nobody', () => {
    const sd = sdWith([allow(WellKnownSid.CREATOR_OWNER, SEC_RIGHTS_FILE_READ | SEC_STD_ALL)], { owner: ALICE });
    expect(accessCheck(sd, alice, FILE_WRITE_DATA)).toMatchObject({ granted: 0, ok: false });
    expect(accessCheck(sd, alice, FILE_READ_DATA).ok).toBe(false);
    expect(accessCheck(sd, alice, READ_CONTROL | WRITE_DAC)).toMatchObject({ granted: READ_CONTROL | WRITE_DAC, ok: true });
    expect(accessCheck(sd, alice, MAXIMUM_ALLOWED).granted).toBe(READ_CONTROL | WRITE_DAC);
    const parent = defaultFileSecurityDescriptor(ALICE, { isDirectory: true });
    expect(fileAccessCheck({ sd, parentSd: parent, token: alice, desired: FILE_WRITE_DATA, isDirectory: false }).ok).toBe(false);
    expect(fileAccessCheck({ sd, parentSd: parent, token: alice, desired: READ_CONTROL | WRITE_DAC }).ok).toBe(true);
  });
});

describe('fileAccessCheck (MS-FSA 2.1.5.1.2.1)', () => {
  const fileSd = sdWith([allow(BOB, FILE_WRITE_DATA)], { owner: ALICE });
  const listAndDelete = sdWith([allow(BOB, FILE_LIST_DIRECTORY | FILE_DELETE_CHILD)], { owner: ALICE });
  const nothing = sdWith([], { owner: ALICE });

  it('grants DELETE when the parent grants FILE_DELETE_CHILD', () => {
    expect(accessCheck(fileSd, bob, DELETE).ok).toBe(false);
    expect(fileAccessCheck({ sd: fileSd, parentSd: listAndDelete, token: bob, desired: DELETE })).toMatchObject({
      granted: DELETE | FILE_READ_ATTRIBUTES,
      ok: true,
    });
    expect(fileAccessCheck({ sd: fileSd, parentSd: nothing, token: bob, desired: DELETE }).ok).toBe(false);
    // Even over a deny on the file itself.
    const denied = sdWith([deny(BOB, DELETE), allow(BOB, FILE_ALL)], { owner: ALICE });
    expect(fileAccessCheck({ sd: denied, parentSd: listAndDelete, token: bob, desired: DELETE }).ok).toBe(true);
    expect(fileAccessCheck({ sd: denied, parentSd: nothing, token: bob, desired: DELETE }).ok).toBe(false);
  });

  it('adds FILE_READ_ATTRIBUTES when the parent grants FILE_LIST_DIRECTORY, even unrequested', () => {
    // smbtorture base.acls INHERITANCE: open for FILE_WRITE_DATA reports WRITE_DATA | READ_ATTRIBUTE.
    expect(fileAccessCheck({ sd: fileSd, parentSd: listAndDelete, token: bob, desired: FILE_WRITE_DATA })).toMatchObject({
      granted: FILE_WRITE_DATA | FILE_READ_ATTRIBUTES,
      ok: true,
    });
    expect(fileAccessCheck({ sd: fileSd, parentSd: listAndDelete, token: bob, desired: FILE_READ_ATTRIBUTES }).ok).toBe(true);
    expect(fileAccessCheck({ sd: fileSd, parentSd: nothing, token: bob, desired: FILE_READ_ATTRIBUTES }).ok).toBe(false);
    expect(fileAccessCheck({ sd: fileSd, parentSd: nothing, token: bob, desired: FILE_WRITE_DATA }).granted).toBe(FILE_WRITE_DATA);
  });

  it('does not add DELETE unrequested; MAXIMUM_ALLOWED includes both parent rights', () => {
    expect(fileAccessCheck({ sd: fileSd, parentSd: listAndDelete, token: bob, desired: FILE_WRITE_DATA }).granted & DELETE).toBe(0);
    expect(fileAccessCheck({ sd: fileSd, parentSd: listAndDelete, token: bob, desired: MAXIMUM_ALLOWED }).granted).toBe(
      FILE_WRITE_DATA | DELETE | FILE_READ_ATTRIBUTES,
    );
  });

  it('applies no parent rule without a parent (share root)', () => {
    expect(fileAccessCheck({ sd: fileSd, token: bob, desired: DELETE }).ok).toBe(false);
    expect(fileAccessCheck({ sd: fileSd, parentSd: undefined, token: bob, desired: MAXIMUM_ALLOWED }).granted).toBe(FILE_WRITE_DATA);
  });
});

describe('createAccessCheck (MS-FSA 2.1.5.1.2)', () => {
  const parent = sdWith([allow(BOB, AccessMask.FILE_ADD_FILE)], { owner: ALICE });
  it('needs FILE_ADD_FILE for files and FILE_ADD_SUBDIRECTORY for directories', () => {
    expect(createAccessCheck({ parentSd: parent, token: bob, desired: FILE_ALL, isDirectory: false })).toMatchObject({ granted: FILE_ALL, ok: true });
    expect(createAccessCheck({ parentSd: parent, token: bob, desired: FILE_READ_DATA, isDirectory: true }).ok).toBe(false);
    expect(createAccessCheck({ parentSd: parent, token: bob, desired: MAXIMUM_ALLOWED, isDirectory: false }).granted).toBe(FILE_ALL);
    expect(createAccessCheck({ parentSd: parent, token: bob, desired: ACCESS_SYSTEM_SECURITY | FILE_READ_DATA, isDirectory: false })).toMatchObject({
      ok: false,
      privilegeNotHeld: true,
    });
  });
});

describe('inheritSecurityDescriptor (MS-DTYP 2.5.3.4)', () => {
  const base = { creatorSid: ALICE, creatorGroupSid: NONE_GROUP };

  it('returns the default descriptor when the parent has none', () => {
    expect(inheritSecurityDescriptor(undefined, { ...base, isDirectory: false })).toEqual(
      defaultFileSecurityDescriptor(ALICE, { groupSid: NONE_GROUP, isDirectory: false }),
    );
    expect(inheritSecurityDescriptor(undefined, { creatorSid: ALICE, creatorGroupSid: ALICE, isDirectory: true })).toEqual(
      defaultFileSecurityDescriptor(ALICE, { isDirectory: true }),
    );
  });

  // smbtorture base.acls / smb2.acls INHERITANCE: the parent DACL is
  // [CREATOR OWNER FILE_WRITE_DATA with parent_flags, Everyone FILE_ALL|STD_ALL with no flags];
  // the expected child DACLs below are what Windows produces (the parent is not auto-inherited).
  const table: { parent: number; file: AceRow[] | 'default'; dir: AceRow[] | 'default' }[] = [];
  const CO = WellKnownSid.CREATOR_OWNER;
  const owner = (flags: number): AceRow => [0, flags, FILE_WRITE_DATA, ALICE];
  const co = (flags: number): AceRow => [0, flags, FILE_WRITE_DATA, CO];
  for (const parent of [0, OI, CI, OI | CI, NP, NP | OI, NP | CI, NP | CI | OI, IO, IO | OI, IO | CI, IO | CI | OI, IO | NP, IO | NP | OI, IO | NP | CI, IO | NP | CI | OI]) {
    const file = parent & OI ? [owner(0)] : 'default';
    let dir: AceRow[] | 'default';
    if (!(parent & CI) && (!(parent & OI) || parent & NP)) dir = 'default';
    else if (parent & CI && parent & NP) dir = [owner(0)];
    else if (parent & CI) dir = [owner(0), co((parent & (OI | CI)) | IO)];
    else dir = [co(OI | IO)];
    table.push({ parent, file, dir });
  }
  for (const { parent, file, dir } of table) {
    it(`parent flags 0x${parent.toString(16)}: file and directory children match Windows`, () => {
      const parentSd = sdWith([allow(CO, FILE_WRITE_DATA, parent), allow('S-1-1-0', FILE_ALL | SEC_STD_ALL)], { owner: ALICE });
      const f = inheritSecurityDescriptor(parentSd, { ...base, isDirectory: false });
      const d = inheritSecurityDescriptor(parentSd, { ...base, isDirectory: true });
      const defFile = rows(defaultFileSecurityDescriptor(ALICE, { isDirectory: false }));
      const defDir = rows(defaultFileSecurityDescriptor(ALICE, { isDirectory: true }));
      expect(rows(f)).toEqual(file === 'default' ? defFile : file);
      expect(rows(d)).toEqual(dir === 'default' ? defDir : dir);
      const pf = parseSecurityDescriptor(f);
      expect(sidToString(pf.Owner!)).toBe(ALICE);
      expect(sidToString(pf.Group!)).toBe(NONE_GROUP);
      expect(pf.Control & SdControl.SE_DACL_AUTO_INHERITED).toBe(0);
    });
  }

  it('marks copies INHERITED_ACE and the child SE_DACL_AUTO_INHERITED when the parent is auto-inherited', () => {
    // smbtorture base.acls INHERITFLAGS.
    const parentSd = sdWith([allow(ALICE, FILE_WRITE_DATA | WRITE_DAC, OI | CI), allow('S-1-1-0', FILE_ALL | SEC_STD_ALL)], {
      control: SdControl.SE_DACL_AUTO_INHERITED,
    });
    const f = inheritSecurityDescriptor(parentSd, { ...base, isDirectory: false });
    expect(rows(f)).toEqual([[0, ID, FILE_WRITE_DATA | WRITE_DAC, ALICE]]);
    expect(parseSecurityDescriptor(f).Control).toBe(SdControl.SE_SELF_RELATIVE | SdControl.SE_DACL_PRESENT | SdControl.SE_DACL_AUTO_INHERITED);
    const d = inheritSecurityDescriptor(parentSd, { ...base, isDirectory: true });
    expect(rows(d)).toEqual([[0, OI | CI | ID, FILE_WRITE_DATA | WRITE_DAC, ALICE]]);
    // An INHERITED_ACE mark on the parent's ACE changes nothing.
    const parent2 = sdWith([allow(ALICE, FILE_WRITE_DATA | WRITE_DAC, OI | CI | ID)], { control: SdControl.SE_DACL_AUTO_INHERITED });
    expect(rows(inheritSecurityDescriptor(parent2, { ...base, isDirectory: false }))).toEqual([[0, ID, FILE_WRITE_DATA | WRITE_DAC, ALICE]]);
  });

  it('expands generic rights and CREATOR GROUP into an effective ACE plus an inherit-only original', () => {
    const parentSd = sdWith([allow('S-1-1-0', AccessMask.GENERIC_READ, OI | CI), allow(WellKnownSid.CREATOR_GROUP, FILE_ALL, CI)]);
    const d = inheritSecurityDescriptor(parentSd, { ...base, isDirectory: true });
    expect(rows(d)).toEqual([
      [0, 0, 0x0012_0089, 'S-1-1-0'],
      [0, OI | CI | IO, AccessMask.GENERIC_READ, 'S-1-1-0'],
      [0, 0, FILE_ALL, NONE_GROUP],
      [0, CI | IO, FILE_ALL, WellKnownSid.CREATOR_GROUP],
    ]);
    const f = inheritSecurityDescriptor(parentSd, { ...base, isDirectory: false });
    expect(rows(f)).toEqual([[0, 0, 0x0012_0089, 'S-1-1-0']]);
  });

  it('propagates over generations: grandchildren of CI|OI CREATOR OWNER get their own owner', () => {
    const root = sdWith([allow(WellKnownSid.CREATOR_OWNER, FILE_ALL, OI | CI)], { owner: BOB });
    const dir = inheritSecurityDescriptor(root, { ...base, isDirectory: true });
    const file = inheritSecurityDescriptor(dir, { creatorSid: BOB, creatorGroupSid: NONE_GROUP, isDirectory: false });
    expect(rows(file)).toEqual([[0, 0, FILE_ALL, BOB]]);
    expect(accessCheck(file, bob, FILE_ALL).ok).toBe(true);
    expect(accessCheck(file, alice, FILE_READ_DATA).ok).toBe(false);
    expect(accessCheck(dir, alice, FILE_ALL).ok).toBe(true);
  });

  it('keeps the payload of object and callback ACEs when inheriting them', () => {
    const cb = { ...callbackAce(AceType.ACCESS_DENIED_CALLBACK_ACE_TYPE, WellKnownSid.CREATOR_OWNER, FILE_WRITE_DATA), AceFlags: OI };
    const parentSd = sdWith([cb, allow('S-1-1-0', FILE_ALL, OI)]);
    const f = parseSecurityDescriptor(inheritSecurityDescriptor(parentSd, { ...base, isDirectory: false }));
    const got = f.Dacl![0]!;
    expect(got.AceType).toBe(AceType.ACCESS_DENIED_CALLBACK_ACE_TYPE);
    expect(got.AceFlags).toBe(0);
    expect(got.Body!.subarray(4, 4 + encodeSid(ALICE).length)).toEqual(encodeSid(ALICE));
    expect(got.Body!.subarray(4 + encodeSid(ALICE).length).toString('latin1')).toBe('artx\0\0\0\0');
  });

  describe('with an explicit descriptor (SecD create context)', () => {
    const parentAuto = sdWith([allow('S-1-1-0', FILE_READ_DATA, OI | CI)], { control: SdControl.SE_DACL_AUTO_INHERITED });
    const parentPlain = sdWith([allow('S-1-1-0', FILE_READ_DATA, OI | CI)]);

    it('merges explicit ACEs before inherited ones when the parent is auto-inherited', () => {
      const explicit = sdWith([allow(BOB, FILE_WRITE_DATA), allow('S-1-1-0', FILE_ALL, ID)], { owner: BOB, group: BOB });
      const f = inheritSecurityDescriptor(parentAuto, { ...base, isDirectory: false, explicitSd: explicit });
      expect(rows(f)).toEqual([
        [0, 0, FILE_WRITE_DATA, BOB],
        [0, ID, FILE_READ_DATA, 'S-1-1-0'],
      ]);
      const p = parseSecurityDescriptor(f);
      expect(sidToString(p.Owner!)).toBe(BOB);
      expect(sidToString(p.Group!)).toBe(BOB);
      expect(p.Control & SdControl.SE_DACL_AUTO_INHERITED).toBe(SdControl.SE_DACL_AUTO_INHERITED);
    });

    it('uses only the explicit ACEs when they are protected or the parent is not auto-inherited', () => {
      const prot = sdWith([allow(BOB, FILE_WRITE_DATA), allow('S-1-1-0', FILE_ALL, ID)], { control: SdControl.SE_DACL_PROTECTED });
      const f = inheritSecurityDescriptor(parentAuto, { ...base, isDirectory: false, explicitSd: prot });
      expect(rows(f)).toEqual([
        [0, 0, FILE_WRITE_DATA, BOB],
        [0, 0, FILE_ALL, 'S-1-1-0'],
      ]);
      expect(parseSecurityDescriptor(f).Control & SdControl.SE_DACL_PROTECTED).toBe(SdControl.SE_DACL_PROTECTED);
      const explicit = sdWith([allow(BOB, FILE_WRITE_DATA)]);
      expect(rows(inheritSecurityDescriptor(parentPlain, { ...base, isDirectory: false, explicitSd: explicit }))).toEqual([[0, 0, FILE_WRITE_DATA, BOB]]);
    });

    it('expands CREATOR OWNER and generic rights in explicit effective ACEs', () => {
      const explicit = sdWith([allow(WellKnownSid.CREATOR_OWNER, AccessMask.GENERIC_ALL, OI | CI), allow(BOB, AccessMask.GENERIC_READ)]);
      const d = inheritSecurityDescriptor(undefined, { ...base, isDirectory: true, explicitSd: explicit });
      expect(rows(d)).toEqual([
        [0, OI | CI | IO, AccessMask.GENERIC_ALL, WellKnownSid.CREATOR_OWNER],
        [0, 0, FILE_ALL, ALICE],
        [0, 0, 0x0012_0089, BOB],
      ]);
    });

    it('keeps an explicit NULL DACL, and inherits when the explicit descriptor has no DACL', () => {
      const nullDacl = sdWith(undefined, { control: SdControl.SE_DACL_PRESENT });
      const f = inheritSecurityDescriptor(parentAuto, { ...base, isDirectory: false, explicitSd: nullDacl });
      expect(parseSecurityDescriptor(f).Dacl).toBeUndefined();
      expect(f.readUInt16LE(2) & SdControl.SE_DACL_PRESENT).toBe(SdControl.SE_DACL_PRESENT);
      expect(accessCheck(f, bob, FILE_ALL).ok).toBe(true);
      const ownerOnly = buildSecurityDescriptor({ Control: 0, Owner: sidFromString(BOB) });
      const g = inheritSecurityDescriptor(parentAuto, { ...base, isDirectory: false, explicitSd: ownerOnly });
      expect(rows(g)).toEqual([[0, ID, FILE_READ_DATA, 'S-1-1-0']]);
      expect(sidToString(parseSecurityDescriptor(g).Owner!)).toBe(BOB);
      // Nothing inheritable and no explicit DACL: the creator's default DACL with the explicit owner.
      const h = inheritSecurityDescriptor(sdWith([]), { ...base, isDirectory: false, explicitSd: ownerOnly });
      expect(rows(h)).toEqual(rows(defaultFileSecurityDescriptor(ALICE)));
      expect(sidToString(parseSecurityDescriptor(h).Owner!)).toBe(BOB);
    });
  });

  it('inherits SACL ACEs like DACL ACEs', () => {
    const audit: Ace = { AceType: AceType.SYSTEM_AUDIT_ACE_TYPE, AceFlags: OI | AceFlags.FAILED_ACCESS_ACE_FLAG, Mask: FILE_ALL, Sid: sidFromString('S-1-1-0') };
    const parentSd = sdWith([allow('S-1-1-0', FILE_READ_DATA, OI)], { sacl: [audit] });
    const p = parseSecurityDescriptor(inheritSecurityDescriptor(parentSd, { ...base, isDirectory: false }));
    expect(p.Sacl?.map((a) => [a.AceType, a.AceFlags, a.Mask])).toEqual([[AceType.SYSTEM_AUDIT_ACE_TYPE, AceFlags.FAILED_ACCESS_ACE_FLAG, FILE_ALL]]);
    expect(p.Control & SdControl.SE_SACL_PRESENT).toBe(SdControl.SE_SACL_PRESENT);
  });
});

describe('fuzz: only MalformedError on hostile descriptors', () => {
  const valid = [
    sdWith([deny('S-1-1-0', FILE_WRITE_DATA, OI), allow(BOB, FILE_ALL, OI | CI), allow(WellKnownSid.CREATOR_OWNER, FILE_ALL, OI | CI | IO)]),
    sdWith([
      objectAce(AceType.ACCESS_ALLOWED_OBJECT_ACE_TYPE, BOB, FILE_READ_DATA, true),
      callbackAce(AceType.ACCESS_DENIED_CALLBACK_ACE_TYPE, BOB, FILE_WRITE_DATA),
      { ...objectAce(AceType.ACCESS_DENIED_OBJECT_ACE_TYPE, BOB, FILE_READ_DATA, false), AceFlags: OI | CI },
    ], { control: SdControl.SE_DACL_AUTO_INHERITED }),
    sdWith([], { sacl: [{ AceType: AceType.SYSTEM_AUDIT_ACE_TYPE, AceFlags: OI, Mask: 1, Sid: sidFromString('S-1-1-0') }] }),
  ];
  const admin = tokenForUser({ userSid: BOB, isAdmin: true });

  function exercise(sd: Buffer): void {
    for (const run of [
      () => accessCheck(sd, bob, MAXIMUM_ALLOWED),
      () => accessCheck(sd, admin, FILE_READ_DATA | ACCESS_SYSTEM_SECURITY),
      () => fileAccessCheck({ sd, parentSd: sd, token: bob, desired: DELETE }),
      () => inheritSecurityDescriptor(sd, { creatorSid: BOB, creatorGroupSid: NONE_GROUP, isDirectory: true }),
      () => inheritSecurityDescriptor(valid[1], { creatorSid: BOB, creatorGroupSid: NONE_GROUP, isDirectory: false, explicitSd: sd }),
    ]) {
      try {
        const r = run();
        if (Buffer.isBuffer(r)) parseSecurityDescriptor(r); // what we build must parse back
      } catch (e) {
        if (!(e instanceof MalformedError)) throw e;
      }
    }
  }

  it('random bytes', () => {
    fc.assert(fc.property(fc.uint8Array({ minLength: 0, maxLength: 300 }), (bytes) => exercise(Buffer.from(bytes))), { numRuns: 3000 });
  });

  it('mutated valid descriptors', () => {
    fc.assert(
      fc.property(
        fc.nat(valid.length - 1),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 6 }),
        fc.nat(),
        (which, edits, cut) => {
          const b = Buffer.from(valid[which]!);
          for (const [at, v] of edits) b[at % b.length] = v;
          exercise(b);
          exercise(b.subarray(0, cut % (b.length + 1)));
        },
      ),
      { numRuns: 3000 },
    );
  });
});
