import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DirEntryWriter, dirEntrySize, isDirInfoClassSupported, type DirEntry } from '../../src/protocol/fscc/dir-info.js';
import { FileInfoClass } from '../../src/protocol/fscc/file-info.js';

const entry = (FileName: string, extra: Partial<DirEntry> = {}): DirEntry => ({
  FileName,
  CreationTime: 1n,
  LastAccessTime: 2n,
  LastWriteTime: 3n,
  ChangeTime: 4n,
  EndOfFile: 100n,
  AllocationSize: 4096n,
  FileAttributes: 0x20,
  ...extra,
});

const CLASSES = [
  [FileInfoClass.FileDirectoryInformation, 64],
  [FileInfoClass.FileFullDirectoryInformation, 68],
  [FileInfoClass.FileBothDirectoryInformation, 94],
  [FileInfoClass.FileNamesInformation, 12],
  [FileInfoClass.FileIdBothDirectoryInformation, 104],
  [FileInfoClass.FileIdFullDirectoryInformation, 80],
  [FileInfoClass.FileIdExtdDirectoryInformation, 88],
  [FileInfoClass.FileId64ExtdDirectoryInformation, 80],
] as const;

describe('directory entries (MS-FSCC 2.4)', () => {
  it('has the fixed sizes of the spec', () => {
    for (const [cls, fixed] of CLASSES) expect(dirEntrySize(cls, { FileName: 'ab' })).toBe(fixed + 4);
    expect(isDirInfoClassSupported(FileInfoClass.FileBasicInformation)).toBe(false);
  });

  it('FileIdBothDirectoryInformation golden entry', () => {
    const w = new DirEntryWriter(FileInfoClass.FileIdBothDirectoryInformation, 4096);
    expect(w.tryAdd(entry('Disk.vhdx', { ShortName: 'DISK~1.VHD', FileId: 0x1234n, EaSize: 0 }))).toBe(true);
    const b = w.finish();
    expect(b.length).toBe(104 + 18);
    expect(b.readUInt32LE(0)).toBe(0); // last entry
    expect(b.readUInt32LE(4)).toBe(0); // FileIndex
    expect([8, 16, 24, 32].map((o) => b.readBigInt64LE(o))).toEqual([1n, 2n, 3n, 4n]);
    expect(b.readBigUInt64LE(40)).toBe(100n); // EndOfFile
    expect(b.readBigUInt64LE(48)).toBe(4096n); // AllocationSize
    expect(b.readUInt32LE(56)).toBe(0x20);
    expect(b.readUInt32LE(60)).toBe(18); // FileNameLength
    expect(b.readUInt32LE(64)).toBe(0); // EaSize
    expect(b[68]).toBe(20); // ShortNameLength
    expect(b.subarray(70, 90).toString('utf16le')).toBe('DISK~1.VHD');
    expect(b.subarray(90, 96)).toEqual(Buffer.alloc(6));
    expect(b.readBigUInt64LE(96)).toBe(0x1234n);
    expect(b.subarray(104).toString('utf16le')).toBe('Disk.vhdx');
  });

  it('FileNamesInformation and FileIdExtdDirectoryInformation layouts', () => {
    const n = new DirEntryWriter(FileInfoClass.FileNamesInformation, 100);
    n.tryAdd(entry('x'));
    expect(n.finish().toString('hex')).toBe('00000000' + '00000000' + '02000000' + '7800');
    const x = new DirEntryWriter(FileInfoClass.FileIdExtdDirectoryInformation, 1000);
    const id128 = Buffer.from('00112233445566778899aabbccddeeff', 'hex');
    x.tryAdd(entry('y', { ReparsePointTag: 0xa000000c, FileId128: id128, EaSize: 5 }));
    const b = x.finish();
    expect(b.readUInt32LE(64)).toBe(5);
    expect(b.readUInt32LE(68)).toBe(0xa000000c);
    expect(b.subarray(72, 88)).toEqual(id128);
    expect(b.subarray(88).toString('utf16le')).toBe('y');
  });

  it('chains entries on 8-byte boundaries and stops when the next entry does not fit', () => {
    const w = new DirEntryWriter(FileInfoClass.FileDirectoryInformation, 64 + 2 + 6 + 64 + 4);
    expect(w.tryAdd(entry('a'))).toBe(true); // 66 bytes, next at 72
    expect(w.tryAdd(entry('bc'))).toBe(true); // 72 + 68 = 140
    expect(w.tryAdd(entry('d'))).toBe(false); // 144 + 66 > 140
    expect(w.count).toBe(2);
    const b = w.finish();
    expect(b.length).toBe(140);
    expect(b.readUInt32LE(0)).toBe(72);
    expect(b.subarray(66, 72)).toEqual(Buffer.alloc(6));
    expect(b.readUInt32LE(72)).toBe(0);
    expect(b.subarray(72 + 64).toString('utf16le')).toBe('bc');
  });

  it('reports an empty result when even the first entry does not fit', () => {
    const w = new DirEntryWriter(FileInfoClass.FileFullDirectoryInformation, 60);
    expect(w.tryAdd(entry('a'))).toBe(false);
    expect(w.count).toBe(0);
    expect(w.finish().length).toBe(0);
  });

  it('property: any entry list walks back to the same names, all aligned, within maxBytes', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...CLASSES.map(([c]) => c)),
        fc.array(fc.string({ minLength: 1, maxLength: 40 }), { maxLength: 200 }),
        fc.integer({ min: 0, max: 20000 }),
        (cls, names, max) => {
          const w = new DirEntryWriter(cls, max);
          const added: string[] = [];
          for (const n of names) {
            if (!w.tryAdd(entry(n))) break;
            added.push(n);
          }
          const b = w.finish();
          expect(b.length).toBeLessThanOrEqual(max);
          const fixed = CLASSES.find(([c]) => c === cls)![1];
          const lenAt = cls === FileInfoClass.FileNamesInformation ? 8 : 60;
          const seen: string[] = [];
          let at = 0;
          while (added.length > 0) {
            expect(at % 8).toBe(0);
            const len = b.readUInt32LE(at + lenAt);
            seen.push(b.subarray(at + fixed, at + fixed + len).toString('utf16le'));
            const next = b.readUInt32LE(at);
            if (next === 0) {
              expect(at + fixed + len).toBe(b.length);
              break;
            }
            at += next;
          }
          expect(seen).toEqual(added);
        },
      ),
      { numRuns: 300 },
    );
  });
});
