import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MalformedError } from '../../src/base/errors.js';
import {
  AceFlags,
  AceType,
  SdControl,
  SecurityInfo,
  WellKnownSid,
  buildSecurityDescriptor,
  defaultFileSecurityDescriptor,
  encodeSid,
  mergeSecurityDescriptor,
  parseAcl,
  parseSecurityDescriptor,
  parseSid,
  selectSecurityInformation,
  sidFromString,
  sidToString,
} from '../../src/protocol/security-descriptor.js';
import { fuzzDecoder } from './helpers.js';

// Hand-assembled per MS-DTYP 2.4.6: owner S-1-5-18 at 0x14, DACL at 0x20 with one ACE
// ACCESS_ALLOWED Everyone FILE_ALL_ACCESS.
const GOLDEN = Buffer.from(
  '01000480' + '14000000' + '00000000' + '00000000' + '20000000' +
    '010100000000000512000000' +
    '02001c0001000000' + '00001400ff011f00' + '010100000000000100000000',
  'hex',
);

describe('SID (MS-DTYP 2.4.2)', () => {
  it('encodes and parses golden SIDs', () => {
    expect(encodeSid('S-1-5-32-544').toString('hex')).toBe('01020000000000052000000020020000');
    expect(sidToString(Buffer.from('01020000000000052000000020020000', 'hex'))).toBe('S-1-5-32-544');
    expect(sidToString(sidFromString('S-1-5-21-1004336348-1177238915-682003330-512'))).toBe('S-1-5-21-1004336348-1177238915-682003330-512');
    expect(sidToString(sidFromString('S-1-0x123456789ABC-1'))).toBe('S-1-0x123456789ABC-1');
    expect(parseSid(encodeSid('S-1-1-0'))).toEqual({ Revision: 1, IdentifierAuthority: 1, SubAuthority: [0] });
  });

  it('rejects bad SIDs', () => {
    for (const s of ['S-2-5', 'S-1', 'X-1-5', 'S-1-5-4294967296', 'S-1-5' + '-1'.repeat(16)]) expect(() => sidFromString(s)).toThrow(MalformedError);
    expect(() => parseSid(Buffer.from('0110000000000005', 'hex'))).toThrow(MalformedError); // 16 subauthorities
    expect(() => parseSid(Buffer.from('010200000000000520000000', 'hex'))).toThrow(MalformedError); // truncated
  });

  it('property: string round trip', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 48 - 1 }), fc.array(fc.integer({ min: 0, max: 0xffffffff }), { maxLength: 15 }), (auth, subs) => {
        const sid = { Revision: 1, IdentifierAuthority: auth, SubAuthority: subs };
        expect(sidFromString(sidToString(sid))).toEqual(sid);
        expect(parseSid(encodeSid(sid))).toEqual(sid);
      }),
    );
  });
});

describe('SECURITY_DESCRIPTOR (MS-DTYP 2.4.6)', () => {
  it('parses the golden descriptor', () => {
    const sd = parseSecurityDescriptor(GOLDEN);
    expect(sd.Control).toBe(SdControl.SE_SELF_RELATIVE | SdControl.SE_DACL_PRESENT);
    expect(sidToString(sd.Owner!)).toBe('S-1-5-18');
    expect(sd.Group).toBeUndefined();
    expect(sd.Sacl).toBeUndefined();
    expect(sd.Dacl).toHaveLength(1);
    expect(sd.Dacl![0]).toMatchObject({ AceType: 0, AceFlags: 0, Mask: 0x1f01ff });
    expect(sidToString(sd.Dacl![0]!.Sid!)).toBe('S-1-1-0');
  });

  it('builds the golden descriptor byte for byte', () => {
    const built = buildSecurityDescriptor({
      Control: 0,
      Owner: sidFromString('S-1-5-18'),
      Dacl: [{ AceType: AceType.ACCESS_ALLOWED_ACE_TYPE, AceFlags: 0, Mask: 0x1f01ff, Sid: sidFromString('S-1-1-0') }],
    });
    expect(built.toString('hex')).toBe(GOLDEN.toString('hex'));
  });

  it('round trips unknown ACE types through their Body', () => {
    const objectAce = Buffer.concat([Buffer.from('0500', 'hex'), Buffer.from([28, 0]), Buffer.from('00000100' + '01000000', 'hex'), Buffer.alloc(16, 0xab).subarray(0, 16)]);
    // Make AceSize match: header 4 + mask 4 + flags 4 + 16 = 28.
    const acl = Buffer.concat([Buffer.from('04002400' + '01000000', 'hex'), objectAce]);
    const parsed = parseAcl(acl);
    expect(parsed.AclRevision).toBe(4);
    const sd = buildSecurityDescriptor({ Control: 0, Dacl: parsed.Aces });
    const again = parseSecurityDescriptor(sd);
    expect(again.Dacl![0]!.AceType).toBe(5);
    expect(again.Dacl![0]!.Body).toEqual(objectAce.subarray(4));
    expect(sd[20]).toBe(4); // ACL_REVISION_DS because of the object ACE
  });

  it('NULL DACL: DACL_PRESENT with offset 0', () => {
    const b = buildSecurityDescriptor({ Control: SdControl.SE_DACL_PRESENT, Owner: sidFromString('S-1-1-0') });
    const sd = parseSecurityDescriptor(b);
    expect(sd.Control & SdControl.SE_DACL_PRESENT).toBeTruthy();
    expect(sd.Dacl).toBeUndefined();
    expect(b.readUInt32LE(16)).toBe(0);
  });

  it('rejects bad offsets, revisions and ACE sizes', () => {
    const bad = (edit: (b: Buffer) => void): void => {
      const b = Buffer.from(GOLDEN);
      edit(b);
      expect(() => parseSecurityDescriptor(b)).toThrow(MalformedError);
    };
    bad((b) => (b[0] = 2));
    bad((b) => b.writeUInt32LE(8, 4)); // owner inside the header
    bad((b) => b.writeUInt32LE(200, 16)); // DACL past the end
    bad((b) => b.writeUInt16LE(0x40, 34)); // AclSize past the end
    bad((b) => b.writeUInt16LE(2, 36)); // AceCount 2
    bad((b) => b.writeUInt16LE(18, 42)); // AceSize not a multiple of 4
    bad((b) => (b[32] = 3)); // AclRevision 3
  });

  it('fuzz', () => {
    fuzzDecoder(parseSecurityDescriptor, GOLDEN);
    fuzzDecoder(parseSecurityDescriptor, defaultFileSecurityDescriptor('S-1-5-21-1-2-3-1001', { isDirectory: true }));
    fuzzDecoder((b) => selectSecurityInformation(b, 0xf), GOLDEN);
  });
});

describe('SECURITY_INFORMATION selection and merge', () => {
  const owner = 'S-1-5-21-1-2-3-1001';
  const full = buildSecurityDescriptor({
    Control: SdControl.SE_DACL_PROTECTED | SdControl.SE_SACL_AUTO_INHERITED,
    Owner: sidFromString(owner),
    Group: sidFromString(WellKnownSid.BUILTIN_USERS),
    Dacl: [{ AceType: 0, AceFlags: 0, Mask: 0x1f01ff, Sid: sidFromString(owner) }],
    Sacl: [
      { AceType: AceType.SYSTEM_AUDIT_ACE_TYPE, AceFlags: AceFlags.FAILED_ACCESS_ACE_FLAG, Mask: 0x10000, Sid: sidFromString(WellKnownSid.EVERYONE) },
      { AceType: AceType.SYSTEM_MANDATORY_LABEL_ACE_TYPE, AceFlags: 0, Mask: 1, Sid: sidFromString('S-1-16-8192') },
    ],
  });

  it('returns only the requested parts', () => {
    const og = parseSecurityDescriptor(selectSecurityInformation(full, SecurityInfo.OWNER | SecurityInfo.GROUP));
    expect(sidToString(og.Owner!)).toBe(owner);
    expect(sidToString(og.Group!)).toBe(WellKnownSid.BUILTIN_USERS);
    expect(og.Dacl).toBeUndefined();
    expect(og.Sacl).toBeUndefined();
    expect(og.Control & (SdControl.SE_DACL_PRESENT | SdControl.SE_DACL_PROTECTED | SdControl.SE_SACL_PRESENT)).toBe(0);

    const d = parseSecurityDescriptor(selectSecurityInformation(full, SecurityInfo.DACL));
    expect(d.Owner).toBeUndefined();
    expect(d.Dacl).toHaveLength(1);
    expect(d.Control & SdControl.SE_DACL_PROTECTED).toBeTruthy();

    const label = parseSecurityDescriptor(selectSecurityInformation(full, SecurityInfo.LABEL));
    expect(label.Sacl!.map((a) => a.AceType)).toEqual([AceType.SYSTEM_MANDATORY_LABEL_ACE_TYPE]);

    expect(selectSecurityInformation(full, SecurityInfo.BACKUP).toString('hex')).toBe(full.toString('hex'));
    expect(selectSecurityInformation(full, 0).length).toBe(20);
  });

  it('merges the parts named by AdditionalInformation', () => {
    const next = buildSecurityDescriptor({
      Control: 0,
      Owner: sidFromString(WellKnownSid.BUILTIN_ADMINISTRATORS),
      Dacl: [{ AceType: 1, AceFlags: 0, Mask: 0x10000, Sid: sidFromString(WellKnownSid.EVERYONE) }],
    });
    const m = parseSecurityDescriptor(mergeSecurityDescriptor(full, next, SecurityInfo.DACL));
    expect(sidToString(m.Owner!)).toBe(owner);
    expect(m.Dacl![0]!.AceType).toBe(1);
    expect(m.Control & SdControl.SE_DACL_PROTECTED).toBe(0); // DACL control bits come from the new SD
    expect(m.Sacl).toHaveLength(2);

    const o = parseSecurityDescriptor(mergeSecurityDescriptor(full, next, SecurityInfo.OWNER));
    expect(sidToString(o.Owner!)).toBe(WellKnownSid.BUILTIN_ADMINISTRATORS);
    expect(o.Dacl![0]!.AceType).toBe(0);
    expect(() => mergeSecurityDescriptor(full, next, SecurityInfo.GROUP)).toThrow(MalformedError);
  });

  it('default descriptor: owner, group and a four-ACE DACL, inheritable on directories', () => {
    const f = parseSecurityDescriptor(defaultFileSecurityDescriptor(owner));
    expect(sidToString(f.Owner!)).toBe(owner);
    expect(sidToString(f.Group!)).toBe(owner);
    expect(f.Dacl!.map((a) => [sidToString(a.Sid!), a.Mask, a.AceFlags])).toEqual([
      [owner, 0x1f01ff, 0],
      ['S-1-5-18', 0x1f01ff, 0],
      ['S-1-5-32-544', 0x1f01ff, 0],
      ['S-1-1-0', 0x1200a9, 0],
    ]);
    const d = parseSecurityDescriptor(defaultFileSecurityDescriptor(owner, { isDirectory: true, groupSid: WellKnownSid.BUILTIN_USERS }));
    expect(d.Dacl!.every((a) => a.AceFlags === 3)).toBe(true);
    expect(sidToString(d.Group!)).toBe('S-1-5-32-545');
  });
});
