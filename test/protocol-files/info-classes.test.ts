// Information-class codecs added for issue 4: 8.3 short names (MS-FSCC 2.1.5.2.1), EA lists
// (MS-FSCC 2.4.15, 2.4.15.1; MS-FSA 2.1.5.15.5), and the buffer-size rules of the classes
// smbtorture's smb2.getinfo.q*_buffercheck check against Windows (MS-FSA 2.1.5.12, 2.1.5.13).
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { MalformedError } from '../../src/base/errors.js';
import { NtStatus } from '../../src/protocol/ntstatus.js';
import { dirShortNameOf, isShortName, shortNameOf } from '../../src/protocol/fscc/short-name.js';
import {
  checkEaList,
  decodeFullEaList,
  decodeGetEaList,
  EA_LIST_BYTES_MAX,
  eaSizeOf,
  encodeFullEaList,
  FILE_NEED_EA,
  isValidEaName,
  packedEaListBytes,
  type FullEa,
} from '../../src/protocol/fscc/ea.js';
import { FileInfoClass, fileInfoQueryRule, fitQueryOutput } from '../../src/protocol/fscc/file-info.js';
import { encodeFileFsAttributeInformation, encodeFileFsVolumeInformation, FsInfoClass, fsInfoQueryRule } from '../../src/protocol/fscc/fs-info.js';

function ea(name: string, value: string | Buffer, flags = 0): FullEa {
  return { Flags: flags, EaName: name, EaValue: Buffer.isBuffer(value) ? value : Buffer.from(value) };
}

/** A FILE_GET_EA_INFORMATION chain built by hand (the client side of the codec). */
function getEaList(names: string[]): Buffer {
  const parts: Buffer[] = [];
  names.forEach((n, i) => {
    const size = 5 + n.length + 1;
    const padded = i === names.length - 1 ? size : (size + 3) & ~3;
    const b = Buffer.alloc(padded);
    b.writeUInt32LE(i === names.length - 1 ? 0 : padded, 0);
    b.writeUInt8(n.length, 4);
    b.write(n, 5, 'latin1');
    parts.push(b);
  });
  return Buffer.concat(parts);
}

describe('8.3 short names (MS-FSCC 2.1.5.2.1)', () => {
  it('a valid 8.3 name is its own short name, upper-cased, and lists no separate ShortName', () => {
    for (const n of ['bufsize.txt', 'README', 'A.B', 'x_1~2.c', "!#$%&'()-.@^_"]) {
      expect(isShortName(n), n).toBe(n !== "!#$%&'()-.@^_");
    }
    expect(shortNameOf('bufsize.txt')).toBe('BUFSIZE.TXT');
    expect(dirShortNameOf('bufsize.txt')).toBe('');
    expect(shortNameOf('README')).toBe('README');
  });

  it('a long name gets PREFIX~XYZ.EXT: stable, case-blind, at most 8.3, only allowed characters', () => {
    const s = shortNameOf('torture_search.txt')!;
    expect(s).toMatch(/^TORT~[0-9A-Z]{3}\.TXT$/);
    expect(shortNameOf('TORTURE_SEARCH.TXT')).toBe(s);
    expect(dirShortNameOf('torture_search.txt')).toBe(s);
    expect(shortNameOf('testsmb2_dir')).toMatch(/^TEST~[0-9A-Z]{3}$/);
    expect(shortNameOf('.hidden')).toMatch(/^HIDD~[0-9A-Z]{3}$/);
    expect(shortNameOf('a b.c d e')).toMatch(/^AB~[0-9A-Z]{3}\.CDE$/);
    expect(shortNameOf('archive.tar.gz')).toMatch(/^ARCH~[0-9A-Z]{3}\.GZ$/);
    expect(shortNameOf('日本語.txt')).toMatch(/^_~[0-9A-Z]{3}\.TXT$/);
    expect(shortNameOf('')).toBeUndefined();
    expect(shortNameOf('.')).toBeUndefined();
    expect(shortNameOf('..')).toBeUndefined();
    expect(dirShortNameOf('..')).toBe('');
  });

  it('every generated short name is itself a valid 8.3 name', () => {
    fc.assert(
      fc.property(fc.string({ minLength: 1, maxLength: 40 }), (name) => {
        const s = shortNameOf(name);
        if (name === '.' || name === '..') return s === undefined;
        return s !== undefined && isShortName(s) && s === s.toUpperCase() && s.length <= 12;
      }),
    );
  });
});

describe('extended attributes (MS-FSCC 2.4.15)', () => {
  it('FILE_FULL_EA_INFORMATION golden entry and a 4-aligned chain round trip', () => {
    const one = encodeFullEaList([ea('EAONE', 'VALUE1')], 1000);
    // NextEntryOffset 0, Flags 0, EaNameLength 5, EaValueLength 6, "EAONE\0", "VALUE1"
    expect(one.data.toString('hex')).toBe('00000000' + '00' + '05' + '0600' + Buffer.from('EAONE\0VALUE1').toString('hex'));
    const list = [ea('EAONE', 'VALUE1'), ea('SECONDEA', 'ValueTwo', FILE_NEED_EA), ea('Z', '')];
    const all = encodeFullEaList(list, 1000);
    expect(all.count).toBe(3);
    expect(all.data.readUInt32LE(0)).toBe(20); // 8 + 6 + 6 = 20, already aligned
    expect(all.data.readUInt32LE(20)).toBe(28); // 8 + 9 + 8 = 25 -> 28
    expect(decodeFullEaList(all.data)).toEqual(list);
  });

  it('only whole entries fit; a cap on entries (SL_RETURN_SINGLE_ENTRY)', () => {
    const list = [ea('A', 'x'), ea('B', 'y')];
    expect(encodeFullEaList(list, 11).count).toBe(1); // 8 + 2 + 1
    expect(encodeFullEaList(list, 10).count).toBe(0);
    expect(encodeFullEaList(list, 1000, 1).count).toBe(1);
    expect(encodeFullEaList(list, 1000, 1).data.readUInt32LE(0)).toBe(0);
  });

  it('malformed chains are refused', () => {
    const good = encodeFullEaList([ea('A', 'x'), ea('B', 'y')], 100).data;
    expect(() => decodeFullEaList(good.subarray(0, 7))).toThrow(MalformedError);
    const noNul = Buffer.from(good);
    noNul[9] = 0x41; // the NUL after "A"
    expect(() => decodeFullEaList(noNul)).toThrow(MalformedError);
    const unaligned = Buffer.from(good);
    unaligned.writeUInt32LE(13, 0);
    expect(() => decodeFullEaList(unaligned)).toThrow(MalformedError);
    const backwards = Buffer.from(good);
    backwards.writeUInt32LE(4, 0);
    expect(() => decodeFullEaList(backwards)).toThrow(MalformedError);
  });

  it('FILE_GET_EA_INFORMATION lists', () => {
    expect(decodeGetEaList(getEaList(['EAONE', 'secondEA']))).toEqual(['EAONE', 'secondEA']);
    expect(() => decodeGetEaList(Buffer.from([0, 0, 0, 0, 3, 0x41]))).toThrow(MalformedError);
  });

  it('decoders never throw anything but MalformedError on random bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        for (const decode of [decodeFullEaList, decodeGetEaList]) {
          try {
            decode(Buffer.from(bytes));
          } catch (err) {
            if (!(err instanceof MalformedError)) return false;
          }
        }
        return true;
      }),
    );
  });

  it('names, sizes and the checks SET_INFO and CREATE apply (MS-FSA 2.1.5.15.5)', () => {
    expect(isValidEaName('EAONE')).toBe(true);
    expect(isValidEaName('with space')).toBe(true);
    for (const bad of ['', 'a*b', 'a:b', 'a\u0001', 'x'.repeat(256), 'é€']) expect(isValidEaName(bad), bad).toBe(false);
    expect(packedEaListBytes([ea('EAONE', 'VALUE1')])).toBe(4 + 5 + 1 + 6);
    expect(eaSizeOf(0)).toBe(0);
    expect(eaSizeOf(16)).toBe(20);
    const list = encodeFullEaList([ea('GOOD', 'v')], 100).data;
    expect(checkEaList(list)).toEqual({ ok: true, eas: [ea('GOOD', 'v')] });
    expect(checkEaList(encodeFullEaList([ea('BAD*', 'v')], 100).data)).toEqual({ ok: false, status: NtStatus.INVALID_EA_NAME });
    expect(checkEaList(encodeFullEaList([ea('FLAGS', 'v', 0x01)], 100).data)).toEqual({ ok: false, status: NtStatus.INVALID_EA_NAME });
    expect(checkEaList(Buffer.from([1, 2, 3]))).toEqual({ ok: false, status: NtStatus.EA_LIST_INCONSISTENT });
    const big = [ea('A', Buffer.alloc(40000)), ea('B', Buffer.alloc(40000))];
    expect(checkEaList(encodeFullEaList(big, 100000).data)).toEqual({ ok: false, status: NtStatus.EA_TOO_LARGE });
    expect(packedEaListBytes([ea('A', Buffer.alloc(EA_LIST_BYTES_MAX - 6))])).toBe(EA_LIST_BYTES_MAX);
  });
});

describe('buffer-size rules Windows applies (smb2.getinfo.qfs_buffercheck / qfile_buffercheck)', () => {
  it('file classes: the fixed size is sizeof() of the structure', () => {
    const fixed: [number, number][] = [
      [FileInfoClass.FileBasicInformation, 40],
      [FileInfoClass.FileStandardInformation, 24],
      [FileInfoClass.FileInternalInformation, 8],
      [FileInfoClass.FileEaInformation, 4],
      [FileInfoClass.FileAccessInformation, 4],
      [FileInfoClass.FileModeInformation, 4],
      [FileInfoClass.FileAlignmentInformation, 4],
      [FileInfoClass.FileAllInformation, 104],
      [FileInfoClass.FileAlternateNameInformation, 8],
      [FileInfoClass.FileStreamInformation, 32],
      [FileInfoClass.FileCompressionInformation, 16],
      [FileInfoClass.FileNetworkOpenInformation, 56],
      [FileInfoClass.FileAttributeTagInformation, 8],
    ];
    for (const [cls, min] of fixed) expect(fileInfoQueryRule(cls)!.min, `class ${cls}`).toBe(min);
  });

  it('file system classes: volume 24, attribute 16; names cut with BUFFER_OVERFLOW in between', () => {
    const fixed: [number, number][] = [
      [FsInfoClass.FileFsVolumeInformation, 24],
      [FsInfoClass.FileFsSizeInformation, 24],
      [FsInfoClass.FileFsDeviceInformation, 8],
      [FsInfoClass.FileFsAttributeInformation, 16],
      [FsInfoClass.FileFsControlInformation, 48],
      [FsInfoClass.FileFsFullSizeInformation, 32],
      [FsInfoClass.FileFsObjectIdInformation, 64],
      [FsInfoClass.FileFsSectorSizeInformation, 28],
    ];
    for (const [cls, min] of fixed) expect(fsInfoQueryRule(cls)!.min, `class ${cls}`).toBe(min);
    const attr = encodeFileFsAttributeInformation({ FileSystemAttributes: 0, MaximumComponentNameLength: 255, FileSystemName: 'NTFS' });
    const rule = fsInfoQueryRule(FsInfoClass.FileFsAttributeInformation)!;
    // The walk smbtorture does: below the fixed size a mismatch, up to the full size an overflow, then OK.
    for (let n = 0; n <= attr.length; n++) {
      const r = fitQueryOutput(attr, n, rule);
      expect(r.kind, `${n} bytes`).toBe(n < 16 ? 'mismatch' : n < attr.length ? 'overflow' : 'ok');
      if (r.kind === 'overflow') expect(r.data.length).toBe(n);
    }
    const vol = encodeFileFsVolumeInformation({ VolumeCreationTime: 1n, VolumeSerialNumber: 7, SupportsObjects: false, VolumeLabel: 'vms' });
    expect(vol.length).toBe(24);
    expect(fitQueryOutput(vol, 23, fsInfoQueryRule(FsInfoClass.FileFsVolumeInformation)!).kind).toBe('mismatch');
  });
});
