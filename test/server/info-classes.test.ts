// QUERY_INFO / SET_INFO / QUERY_DIRECTORY information classes against a running server, on a posix
// share and a chunked share (issue 4): file system classes and their buffer rules (MS-FSA 2.1.5.13),
// FILE_BASIC_INFORMATION times with the 0/-1/-2 conventions (MS-FSA 2.1.5.15.2), allocation
// (2.1.5.15.1), EAs (2.1.5.12.12, 2.1.5.15.5), 8.3 names (2.1.5.12.3), and the per-class access and
// dialect rules of MS-SMB2 3.3.5.20.1.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, startTessera, type RunningServer } from '../helpers/servers.js';
import { Access, Command, Disposition, Share, Smb2Client, type ClientOptions } from '../helpers/smb2-client.js';

const user = 'infouser';
const password = 'Info-Pw-1234';

// MS-SMB2 2.2.37 InfoType; MS-FSCC 2.4 / 2.5 classes; MS-ERREF statuses.
const INFO_FILE = 1;
const INFO_FS = 2;
const C = {
  Basic: 4, Standard: 5, Ea: 7, AllInfo: 18, AllocationInfo: 19, AltName: 21, Stream: 22, FullEa: 15,
  NetworkOpen: 34, AttributeTag: 35, Normalized: 48, Disposition: 13, FullDirectory: 2, BothDirectory: 3,
} as const;
const FS = { Volume: 1, Size: 3, Device: 4, Attribute: 5, Control: 6, FullSize: 7, ObjectId: 8, SectorSize: 11 } as const;
const S = {
  SUCCESS: 0, BUFFER_OVERFLOW: 0x80000005, NO_MORE_EAS: 0x80000012, INFO_LENGTH_MISMATCH: 0xc0000004, INVALID_PARAMETER: 0xc000000d,
  ACCESS_DENIED: 0xc0000022, BUFFER_TOO_SMALL: 0xc0000023, NO_EAS_ON_FILE: 0xc0000052, INVALID_EA_NAME: 0x80000013,
  EA_LIST_INCONSISTENT: 0x80000014, EA_TOO_LARGE: 0xc0000050,
} as const;
const SL_RESTART_SCAN = 0x1;
const SL_RETURN_SINGLE_ENTRY = 0x2;
const FILE_READ_EA = 0x8;
const FILE_WRITE_EA = 0x10;
const FILE_READ_ATTRIBUTES = 0x80;

let root = '';
let server: RunningServer | undefined;
let base: ClientOptions & { user: string; password: string };

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'tessera-infoclasses-'));
  const port = await freePort();
  server = await startTessera({
    port,
    shares: [{ name: 'px', path: join(root, 'px') }],
    users: [{ name: user, password }],
    extraArgs: ['--log-level', 'warn', '--state-dir', join(root, 'state'), '--share', 'ck', '--store', `file://${join(root, 'objects')}`, '--meta', `local://${join(root, 'meta')}`],
  });
  base = { host: server.host, port, user, password };
});

afterAll(async () => {
  await server?.stop();
  if (root) rmSync(root, { recursive: true, force: true });
});

async function query(c: Smb2Client, fileId: Buffer, infoType: number, cls: number, o: { length?: number; input?: Buffer; flags?: number; additional?: number } = {}) {
  const input = o.input ?? Buffer.alloc(0);
  const body = Buffer.alloc(40);
  body.writeUInt16LE(41, 0);
  body[2] = infoType;
  body[3] = cls;
  body.writeUInt32LE(o.length ?? 4096, 4);
  body.writeUInt16LE(input.length > 0 ? 64 + 40 : 0, 8);
  body.writeUInt32LE(input.length, 12);
  body.writeUInt32LE(o.additional ?? 0, 16);
  body.writeUInt32LE(o.flags ?? 0, 20);
  fileId.copy(body, 24);
  const m = await c.request(Command.QUERY_INFO, Buffer.concat([body, input.length > 0 ? input : Buffer.alloc(1)]));
  if (m.status !== S.SUCCESS && m.status !== S.BUFFER_OVERFLOW) return { status: m.status, data: Buffer.alloc(0) };
  const off = m.msg.readUInt16LE(64 + 2);
  return { status: m.status, data: Buffer.from(m.msg.subarray(off, off + m.msg.readUInt32LE(64 + 4))) };
}

async function set(c: Smb2Client, fileId: Buffer, cls: number, info: Buffer): Promise<number> {
  const body = Buffer.alloc(32);
  body.writeUInt16LE(33, 0);
  body[2] = INFO_FILE;
  body[3] = cls;
  body.writeUInt32LE(info.length, 4);
  body.writeUInt16LE(64 + 32, 8);
  fileId.copy(body, 16);
  return (await c.request(Command.SET_INFO, Buffer.concat([body, info]))).status;
}

async function queryDir(c: Smb2Client, dirId: Buffer, cls: number, pattern: string) {
  const name = Buffer.from(pattern, 'utf16le');
  const body = Buffer.alloc(32);
  body.writeUInt16LE(33, 0);
  body[2] = cls;
  body[3] = 0x01; // SMB2_RESTART_SCANS
  dirId.copy(body, 8);
  body.writeUInt16LE(64 + 32, 24);
  body.writeUInt16LE(name.length, 26);
  body.writeUInt32LE(65536, 28);
  const m = await c.request(0x0e, Buffer.concat([body, name]));
  expect(m.status).toBe(S.SUCCESS);
  const off = m.msg.readUInt16LE(64 + 2);
  return m.msg.subarray(off, off + m.msg.readUInt32LE(64 + 4));
}

function basicInfo(t: { creation?: bigint; access?: bigint; write?: bigint; change?: bigint; attributes?: number }): Buffer {
  const b = Buffer.alloc(40);
  b.writeBigInt64LE(t.creation ?? 0n, 0);
  b.writeBigInt64LE(t.access ?? 0n, 8);
  b.writeBigInt64LE(t.write ?? 0n, 16);
  b.writeBigInt64LE(t.change ?? 0n, 24);
  b.writeUInt32LE(t.attributes ?? 0, 32);
  return b;
}

function fullEas(list: [string, string, number?][]): Buffer {
  const parts: Buffer[] = [];
  list.forEach(([name, value, flags], i) => {
    const size = 8 + name.length + 1 + value.length;
    const padded = i === list.length - 1 ? size : (size + 3) & ~3;
    const b = Buffer.alloc(padded);
    b.writeUInt32LE(i === list.length - 1 ? 0 : padded, 0);
    b[4] = flags ?? 0;
    b[5] = name.length;
    b.writeUInt16LE(value.length, 6);
    b.write(name, 8, 'latin1');
    b.write(value, 9 + name.length, 'latin1');
    parts.push(b);
  });
  return Buffer.concat(parts);
}

function parseEas(b: Buffer): string[] {
  const out: string[] = [];
  let at = 0;
  for (;;) {
    const next = b.readUInt32LE(at);
    const nameLen = b[at + 5]!;
    const valueLen = b.readUInt16LE(at + 6);
    out.push(`${b.toString('latin1', at + 8, at + 8 + nameLen)}=${b.toString('latin1', at + 9 + nameLen, at + 9 + nameLen + valueLen)}`);
    if (next === 0) return out;
    at += next;
  }
}

const T = 127_000_000_001_234_567n; // a FILETIME in 2003, odd in every 100 ns digit

for (const shareName of ['px', 'ck']) {
  describe(`information classes on ${shareName === 'px' ? 'a posix' : 'a chunked'} share`, () => {
    let c: Smb2Client;
    beforeAll(async () => {
      c = await Smb2Client.open({ ...base, share: shareName });
    });
    afterAll(async () => {
      await c?.close();
    });

    const open = (name: string, desiredAccess: number = Access.GENERIC_ALL, disposition: number = Disposition.OPEN_IF, createOptions = 0) =>
      c.create({ name, desiredAccess, shareAccess: Share.READ | Share.WRITE | Share.DELETE, disposition, createOptions });

    it('file system classes answer, with the sizes and buffer rules Windows has', async () => {
      const { FileId } = await open('', Access.READ_ATTRIBUTES | Access.SYNCHRONIZE, Disposition.OPEN, 1);
      const sizes: [number, number][] = [[FS.Size, 24], [FS.Device, 8], [FS.Control, 48], [FS.FullSize, 32], [FS.ObjectId, 64], [FS.SectorSize, 28]];
      for (const [cls, size] of sizes) {
        const r = await query(c, FileId, INFO_FS, cls);
        expect(r.status, `class ${cls}`).toBe(S.SUCCESS);
        expect(r.data.length, `class ${cls}`).toBe(size);
        expect((await query(c, FileId, INFO_FS, cls, { length: size - 1 })).status).toBe(S.INFO_LENGTH_MISMATCH);
      }
      const control = (await query(c, FileId, INFO_FS, FS.Control)).data;
      expect(control.readBigUInt64LE(24)).toBe(0xffffffffffffffffn); // no default quota threshold
      expect(control.readUInt32LE(40)).toBe(0); // quotas neither tracked nor enforced
      const id1 = (await query(c, FileId, INFO_FS, FS.ObjectId)).data;
      expect(id1.subarray(0, 16).equals(Buffer.alloc(16))).toBe(false);
      expect((await query(c, FileId, INFO_FS, FS.ObjectId)).data.equals(id1)).toBe(true);
      const attr = await query(c, FileId, INFO_FS, FS.Attribute);
      const flags = attr.data.readUInt32LE(0);
      expect(flags & 0x40000).toBe(0x40000); // FILE_NAMED_STREAMS
      expect(flags & 0x800000).toBe(0x800000); // FILE_SUPPORTS_EXTENDED_ATTRIBUTES
      expect(attr.data.toString('utf16le', 12)).toBe('NTFS');
      for (let n = 0; n <= attr.data.length; n++) {
        const r = await query(c, FileId, INFO_FS, FS.Attribute, { length: n });
        expect(r.status, `${n} bytes`).toBe(n < 16 ? S.INFO_LENGTH_MISMATCH : n < attr.data.length ? S.BUFFER_OVERFLOW : S.SUCCESS);
      }
      const vol = await query(c, FileId, INFO_FS, FS.Volume);
      expect((await query(c, FileId, INFO_FS, FS.Volume, { length: 23 })).status).toBe(S.INFO_LENGTH_MISMATCH);
      expect(vol.status).toBe(S.SUCCESS);
      await c.closeFile(FileId);
    });

    it('explicit times stick exactly; -1 stops an open\'s updates, -2 resumes them; < -2 is invalid', async () => {
      const { FileId } = await open('times.txt', Access.GENERIC_ALL, Disposition.OVERWRITE_IF);
      expect(await set(c, FileId, C.Basic, basicInfo({ creation: T, access: T + 10n, write: T + 20n, change: T + 30n }))).toBe(S.SUCCESS);
      let b = (await query(c, FileId, INFO_FILE, C.Basic)).data;
      expect([b.readBigInt64LE(0), b.readBigInt64LE(8), b.readBigInt64LE(16), b.readBigInt64LE(24)]).toEqual([T, T + 10n, T + 20n, T + 30n]);
      // This open set LastWriteTime and ChangeTime: its own write moves neither.
      await c.write(FileId, 0, Buffer.from('written'));
      await c.closeFile(FileId);
      const again = await open('times.txt');
      b = (await query(c, again.FileId, INFO_FILE, C.Basic)).data;
      expect([b.readBigInt64LE(16), b.readBigInt64LE(24)]).toEqual([T + 20n, T + 30n]);
      // -1 on ChangeTime: an attribute change through this open leaves it; -2 and it moves again.
      expect(await set(c, again.FileId, C.Basic, basicInfo({ change: -1n, attributes: 0x2 }))).toBe(S.SUCCESS);
      b = (await query(c, again.FileId, INFO_FILE, C.Basic)).data;
      expect(b.readBigInt64LE(24)).toBe(T + 30n);
      expect(b.readUInt32LE(32) & 0x2).toBe(0x2);
      expect(await set(c, again.FileId, C.Basic, basicInfo({ change: -2n, attributes: 0x80 }))).toBe(S.SUCCESS);
      b = (await query(c, again.FileId, INFO_FILE, C.Basic)).data;
      expect(b.readBigInt64LE(24)).toBeGreaterThan(T + 1_000_000_000n);
      // -1 on LastWriteTime: writes through this open leave it, also after the close.
      expect(await set(c, again.FileId, C.Basic, basicInfo({ write: -1n }))).toBe(S.SUCCESS);
      await c.write(again.FileId, 0, Buffer.from('again'));
      await c.closeFile(again.FileId);
      const third = await open('times.txt');
      expect((await query(c, third.FileId, INFO_FILE, C.Basic)).data.readBigInt64LE(16)).toBe(T + 20n);
      expect(await set(c, third.FileId, C.Basic, basicInfo({ write: -3n }))).toBe(S.INVALID_PARAMETER);
      // Another open's write moves LastWriteTime (by its close at the latest).
      await c.write(third.FileId, 0, Buffer.from('moves'));
      await c.closeFile(third.FileId);
      const fourth = await open('times.txt');
      expect((await query(c, fourth.FileId, INFO_FILE, C.NetworkOpen)).data.readBigInt64LE(16)).toBeGreaterThan(T + 1_000_000_000n);
      await c.closeFile(fourth.FileId);
    });

    it('FileAllocationInformation is reported; one below the end of file cuts it', async () => {
      const { FileId } = await open('alloc.bin', Access.GENERIC_ALL, Disposition.OVERWRITE_IF);
      const alloc = (n: number) => {
        const b = Buffer.alloc(8);
        b.writeBigInt64LE(BigInt(n));
        return b;
      };
      expect(await set(c, FileId, C.AllocationInfo, alloc(4096))).toBe(S.SUCCESS);
      let std = (await query(c, FileId, INFO_FILE, C.Standard)).data;
      expect([std.readBigUInt64LE(0), std.readBigUInt64LE(8)]).toEqual([4096n, 0n]);
      await c.write(FileId, 0, Buffer.alloc(100, 1));
      expect(await set(c, FileId, C.AllocationInfo, alloc(10))).toBe(S.SUCCESS);
      std = (await query(c, FileId, INFO_FILE, C.Standard)).data;
      expect(std.readBigUInt64LE(8)).toBe(10n);
      expect(await set(c, FileId, C.AllocationInfo, alloc(-1))).toBe(S.INVALID_PARAMETER);
      await c.closeFile(FileId);
    });

    it('EAs: set, scan, name lists, sizes, removal and every refusal', async () => {
      const { FileId } = await open('eas.txt', Access.GENERIC_ALL, Disposition.OVERWRITE_IF);
      expect((await query(c, FileId, INFO_FILE, C.FullEa, { flags: SL_RESTART_SCAN })).status).toBe(S.NO_EAS_ON_FILE);
      expect(await set(c, FileId, C.FullEa, fullEas([['EaOne', 'VALUE1'], ['SecondEA', 'ValueTwo', 0x80]]))).toBe(S.SUCCESS);
      const all = await query(c, FileId, INFO_FILE, C.FullEa, { flags: SL_RESTART_SCAN });
      expect(all.status).toBe(S.SUCCESS);
      expect(parseEas(all.data)).toEqual(['EAONE=VALUE1', 'SECONDEA=ValueTwo']);
      // One at a time: the open's scan position moves on, then runs out.
      expect(parseEas((await query(c, FileId, INFO_FILE, C.FullEa, { flags: SL_RESTART_SCAN | SL_RETURN_SINGLE_ENTRY })).data)).toEqual(['EAONE=VALUE1']);
      expect(parseEas((await query(c, FileId, INFO_FILE, C.FullEa, { flags: SL_RETURN_SINGLE_ENTRY })).data)).toEqual(['SECONDEA=ValueTwo']);
      expect((await query(c, FileId, INFO_FILE, C.FullEa)).status).toBe(S.NO_MORE_EAS);
      // Too small for the next entry; room for one of two.
      expect((await query(c, FileId, INFO_FILE, C.FullEa, { flags: SL_RESTART_SCAN, length: 8 })).status).toBe(S.BUFFER_TOO_SMALL);
      const part = await query(c, FileId, INFO_FILE, C.FullEa, { flags: SL_RESTART_SCAN, length: 20 });
      expect(part.status).toBe(S.BUFFER_OVERFLOW);
      expect(parseEas(part.data)).toEqual(['EAONE=VALUE1']);
      // A name list: named EAs in its order, a missing one with an empty value.
      const list = Buffer.alloc(24);
      list.writeUInt32LE(12, 0);
      list[4] = 6;
      list.write('missin', 5, 'latin1');
      list[16] = 5;
      list.write('eaone', 17, 'latin1');
      expect(parseEas((await query(c, FileId, INFO_FILE, C.FullEa, { input: list.subarray(0, 23) })).data)).toEqual(['missin=', 'EAONE=VALUE1']);
      const eaSize = 4 + (4 + 5 + 1 + 6) + (4 + 8 + 1 + 8);
      expect((await query(c, FileId, INFO_FILE, C.Ea)).data.readUInt32LE(0)).toBe(eaSize);
      expect((await query(c, FileId, INFO_FILE, C.AllInfo)).data.readUInt32LE(72)).toBe(eaSize);
      // Refusals leave the EAs as they were.
      expect(await set(c, FileId, C.FullEa, fullEas([['bad*name', 'x']]))).toBe(S.INVALID_EA_NAME);
      expect(await set(c, FileId, C.FullEa, fullEas([['flags', 'x', 0x01]]))).toBe(S.INVALID_EA_NAME);
      expect(await set(c, FileId, C.FullEa, Buffer.from([0, 0, 0, 0, 0, 9, 0, 0]))).toBe(S.EA_LIST_INCONSISTENT);
      // Alone it fits (and in one SET_INFO buffer); with the two EAs the file has, it passes 64 KiB - 5.
      expect(await set(c, FileId, C.FullEa, fullEas([['big', 'v'.repeat(65_500)]]))).toBe(S.EA_TOO_LARGE);
      expect(parseEas((await query(c, FileId, INFO_FILE, C.FullEa, { flags: SL_RESTART_SCAN })).data)).toEqual(['EAONE=VALUE1', 'SECONDEA=ValueTwo']);
      // An empty value removes.
      expect(await set(c, FileId, C.FullEa, fullEas([['secondea', '']]))).toBe(S.SUCCESS);
      expect(parseEas((await query(c, FileId, INFO_FILE, C.FullEa, { flags: SL_RESTART_SCAN })).data)).toEqual(['EAONE=VALUE1']);
      // The directory listing reports the same EaSize.
      const dir = await open('', Access.READ_ATTRIBUTES | 0x1, Disposition.OPEN, 1);
      const entry = await queryDir(c, dir.FileId, C.FullDirectory, 'eas.txt');
      expect(entry.readUInt32LE(64)).toBe(4 + 4 + 5 + 1 + 6);
      await c.closeFile(dir.FileId);
      await c.closeFile(FileId);
      // Without FILE_READ_EA / FILE_WRITE_EA on the open.
      const ro = await open('eas.txt', FILE_READ_ATTRIBUTES | Access.SYNCHRONIZE, Disposition.OPEN);
      expect((await query(c, ro.FileId, INFO_FILE, C.FullEa, { flags: SL_RESTART_SCAN })).status).toBe(S.ACCESS_DENIED);
      expect(await set(c, ro.FileId, C.FullEa, fullEas([['x', 'y']]))).toBe(S.ACCESS_DENIED);
      await c.closeFile(ro.FileId);
      const eaOnly = await open('eas.txt', FILE_READ_EA | FILE_WRITE_EA | Access.SYNCHRONIZE, Disposition.OPEN);
      expect((await query(c, eaOnly.FileId, INFO_FILE, C.FullEa, { flags: SL_RESTART_SCAN })).status).toBe(S.SUCCESS);
      // Standard, stream and EA-size classes need no FILE_READ_ATTRIBUTES (MS-SMB2 3.3.5.20.1).
      expect((await query(c, eaOnly.FileId, INFO_FILE, C.Standard)).status).toBe(S.SUCCESS);
      expect((await query(c, eaOnly.FileId, INFO_FILE, C.Stream)).status).toBe(S.SUCCESS);
      expect((await query(c, eaOnly.FileId, INFO_FILE, C.Ea)).status).toBe(S.SUCCESS);
      await c.closeFile(eaOnly.FileId);
    });

    it('8.3 names, the dialect rule of normalized names, and links of a delete-pending file', async () => {
      const { FileId } = await open('a long file name.text', Access.GENERIC_ALL, Disposition.OVERWRITE_IF);
      const alt = (await query(c, FileId, INFO_FILE, C.AltName)).data;
      const short = alt.toString('utf16le', 4, 4 + alt.readUInt32LE(0));
      expect(short).toMatch(/^ALON~[0-9A-Z]{3}\.TEX$/);
      const dir = await open('', Access.READ_ATTRIBUTES | 0x1, Disposition.OPEN, 1);
      const both = await queryDir(c, dir.FileId, C.BothDirectory, 'a long file name.text');
      expect(both.toString('utf16le', 70, 70 + both[68]!)).toBe(short);
      const plain = await open('plain.txt', Access.GENERIC_ALL, Disposition.OVERWRITE_IF);
      expect((await queryDir(c, dir.FileId, C.BothDirectory, 'plain.txt'))[68]).toBe(0); // an 8.3 name has no alias
      const plainAlt = (await query(c, plain.FileId, INFO_FILE, C.AltName)).data;
      expect(plainAlt.toString('utf16le', 4)).toBe('PLAIN.TXT');
      await c.closeFile(dir.FileId);
      // FileNormalizedNameInformation is for SMB 3.1.1 only (MS-SMB2 3.3.5.20.1); this client speaks
      // 3.0.2 at most. (Stream names in it: smbtorture's smb2.getinfo.normalized.)
      expect(c.dialect).toBeLessThan(0x0311);
      expect((await query(c, plain.FileId, INFO_FILE, C.Normalized)).status).toBe(0xc00000bb); // STATUS_NOT_SUPPORTED
      // MS-FSA 2.1.5.12.27: a delete-pending link is not counted.
      expect(await set(c, plain.FileId, C.Disposition, Buffer.from([1]))).toBe(S.SUCCESS);
      let std = (await query(c, plain.FileId, INFO_FILE, C.Standard)).data;
      expect([std.readUInt32LE(16), std[20]]).toEqual([0, 1]);
      expect(await set(c, plain.FileId, C.Disposition, Buffer.from([0]))).toBe(S.SUCCESS);
      std = (await query(c, plain.FileId, INFO_FILE, C.Standard)).data;
      expect([std.readUInt32LE(16), std[20]]).toEqual([1, 0]);
      await c.closeFile(plain.FileId);
      await c.closeFile(FileId);
    });
  });
}
