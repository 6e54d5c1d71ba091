// Namespace command family (src/meta/families/namespace.ts): unit tests per command, refusals, and a
// 100k-entry directory.
import { describe, expect, it } from 'vitest';
import { limits } from '../../src/base/limits.js';
import { key } from '../../src/meta/keys.js';
import { MemoryStore, type ApplyTx, type Command, type CommandResult, type HandlerTable } from '../../src/meta/tx.js';
import { extentHandlers, extentsIn, objectRefs } from '../../src/meta/families/extents.js';
import {
  fold,
  getInode,
  getRoot,
  getStream,
  listStreams,
  lookup,
  namespaceHandlers,
  readdir,
  type Inode,
} from '../../src/meta/families/namespace.js';

const NOW = 133_500_000_000_000_000n; // a FILETIME in 2024: beyond 2^53, stored as bigint
const LATER = NOW + 10_000_000n;

/** A minimal self-relative security descriptor: revision 1, SE_SELF_RELATIVE, no owner/group/ACLs. */
const SD = Uint8Array.from([1, 0, 0x00, 0x80, ...new Array(16).fill(0)]);

class Fixture {
  readonly store = new MemoryStore();
  position = 1;
  constructor(readonly handlers: HandlerTable = { ...namespaceHandlers, ...extentHandlers }) {}
  tx(): ApplyTx {
    return this.store.tx(this.position);
  }
  run(cmd: Command): CommandResult {
    return this.handlers[cmd.t]!(this.store.tx(this.position++), cmd);
  }
  ok<T = Record<string, unknown>>(cmd: Command): T {
    const r = this.run(cmd);
    if (!r.ok) throw new Error(`${cmd.t} failed: ${r.code} ${r.message}`);
    return (r.value ?? {}) as T;
  }
  code(cmd: Command): string {
    const r = this.run(cmd);
    return r.ok ? 'ok' : r.code;
  }
  dump(): string {
    const parts: string[] = [];
    for (const [k, v] of this.store.rangeRaw(Buffer.alloc(0), Buffer.alloc(0))) parts.push(k.toString('hex') + '=' + v.toString('hex'));
    return parts.join(',');
  }
  root(share = 'vms'): number {
    return this.ok<{ ino: number }>({ t: 'ns.mkroot', share, now: NOW }).ino;
  }
  create(parent: number, name: string, kind: 'file' | 'dir' = 'file', now: bigint = NOW): { ino: number; fork: number } {
    return this.ok({ t: 'ns.create', parent, name, kind, attributes: kind === 'file' ? 0x20 : 0, now });
  }
  inode(ino: number): Inode {
    const i = getInode(this.tx(), ino);
    if (i === undefined) throw new Error(`no inode ${ino}`);
    return i;
  }
  /** Runs `cmd`, expects `code`, and checks that the refused command wrote nothing. */
  refused(cmd: Command, code: string): void {
    const before = this.dump();
    expect(this.code(cmd), JSON.stringify(cmd, (_, v) => (typeof v === 'bigint' ? String(v) : v))).toBe(code);
    expect(this.dump()).toBe(before);
  }
}

describe('ns.mkroot', () => {
  it('creates one root per share, idempotently and case-insensitively', () => {
    const f = new Fixture();
    const r = f.ok<{ ino: number; created: boolean }>({ t: 'ns.mkroot', share: 'VMs', now: NOW, sd: SD });
    expect(r.created).toBe(true);
    expect(f.ok({ t: 'ns.mkroot', share: 'vms', now: LATER })).toEqual({ ino: r.ino, created: false });
    expect(getRoot(f.tx(), 'VMS')).toBe(r.ino);
    const other = f.root('other');
    expect(other).not.toBe(r.ino);
    const root = f.inode(r.ino);
    expect(root).toMatchObject({ kind: 'dir', share: 'VMs', parent: r.ino, attributes: 0x10, nlink: 1, fork: 0, creation: NOW });
    expect(Buffer.from(root.sd!)).toEqual(Buffer.from(SD));
    f.refused({ t: 'ns.mkroot', share: '', now: NOW }, 'invalid');
    f.refused({ t: 'ns.mkroot', share: 'a\\b', now: NOW }, 'invalid');
    f.refused({ t: 'ns.mkroot', share: 'x'.repeat(limits.metaShareNameLengthMax + 1), now: NOW }, 'invalid');
    f.refused({ t: 'ns.mkroot', share: 'new', now: -1 }, 'invalid');
    f.refused({ t: 'ns.mkroot', share: 'new', now: 1.5 }, 'invalid');
    f.refused({ t: 'ns.mkroot', share: 'new', now: 1n << 63n }, 'invalid');
  });
});

describe('ns.create and lookup', () => {
  it('creates files and directories with the given times, a fork for files, and updates the parent', () => {
    const f = new Fixture();
    const root = f.root();
    const d = f.create(root, 'Virtual Machines', 'dir', LATER);
    expect(d.fork).toBe(0);
    const file = f.create(d.ino, 'Disk.VHDX', 'file', LATER);
    expect(file.fork).toBeGreaterThan(0);
    const node = f.inode(file.ino);
    expect(node).toMatchObject({ kind: 'file', share: 'vms', attributes: 0x20, size: 0, nlink: 1, parent: 0, fork: file.fork });
    expect([node.creation, node.lastAccess, node.lastWrite, node.change]).toEqual([LATER, LATER, LATER, LATER]);
    expect(typeof node.creation).toBe('bigint');
    const dir = f.inode(d.ino);
    expect(dir.attributes & 0x10).toBe(0x10);
    expect(dir.parent).toBe(root);
    expect(dir.lastWrite).toBe(LATER); // the new entry changed the directory
    expect(f.inode(root).lastWrite).toBe(LATER);
    expect(f.inode(root).creation).toBe(NOW);
    // Case-insensitive lookup returns the name as created.
    expect(lookup(f.tx(), d.ino, 'disk.vhdx')).toEqual({ name: 'Disk.VHDX', ino: file.ino, kind: 'file' });
    expect(lookup(f.tx(), d.ino, 'DISK.VHDX')?.ino).toBe(file.ino);
    expect(lookup(f.tx(), d.ino, 'other')).toBeUndefined();
    expect(lookup(f.tx(), d.ino, 'a\u0000b')).toBeUndefined();
    expect(lookup(f.tx(), root, 'virtual machines')?.kind).toBe('dir');
  });

  it('refuses existing names (any case), missing or non-directory parents, and bad arguments', () => {
    const f = new Fixture();
    const root = f.root();
    const { ino: file } = f.create(root, 'a.txt');
    const c = (over: Record<string, unknown>): Command => ({ t: 'ns.create', parent: root, name: 'new', kind: 'file', attributes: 0, now: NOW, ...over });
    f.refused(c({ name: 'A.TXT' }), 'exists');
    f.refused(c({ parent: 999 }), 'not-found');
    f.refused(c({ parent: file }), 'not-directory');
    f.refused(c({ parent: 0 }), 'invalid');
    for (const name of ['', '.', '..', 'a\\b', 'a/b', 'a:b', 'a\u0000b', 'a*b', 'a?b', 'a|b', 'a"b', 'a<b', 'a\u0001b', 'x'.repeat(256), 'bad\uD800']) {
      f.refused(c({ name }), 'invalid');
    }
    f.refused(c({ name: 7 }), 'invalid');
    f.refused(c({ kind: 'symlink' }), 'invalid');
    f.refused(c({ attributes: -1 }), 'invalid');
    f.refused(c({ attributes: 2 ** 32 }), 'invalid');
    f.refused(c({ attributes: undefined }), 'invalid');
    // MS-FSA 2.1.5.1: FILE_ATTRIBUTE_DIRECTORY on a file, FILE_ATTRIBUTE_TEMPORARY on a directory.
    f.refused(c({ attributes: 0x10 }), 'invalid');
    f.refused(c({ kind: 'dir', attributes: 0x100 }), 'invalid');
    f.refused(c({ now: 'yesterday' }), 'invalid');
    f.refused(c({ sd: new Uint8Array(0) }), 'invalid');
    f.refused(c({ sd: 'bytes' }), 'invalid');
    const huge = new Uint8Array(limits.securityDescriptorBytesMax + 1);
    huge[0] = 1;
    f.refused(c({ sd: huge }), 'limit');
    // Names at the limits are fine: 255 units, astral characters (surrogate pairs), spaces.
    f.create(root, 'x'.repeat(255));
    f.create(root, 'emoji \u{1F600} name');
  });

  it('refuses a name whose case-folded key would be too long', () => {
    const f = new Fixture();
    const root = f.root();
    // U+0390 upper-cases to three code points (6 UTF-8 bytes): 255 of them exceed the key limit.
    const name = '\u0390'.repeat(255);
    expect(Buffer.byteLength(fold(name))).toBeGreaterThan(limits.metaKeyBytesMax - 32);
    f.refused({ t: 'ns.create', parent: root, name, kind: 'file', attributes: 0, now: NOW }, 'invalid');
  });
});

describe('ns.setattr and ns.setsd', () => {
  it('sets the given fields; ChangeTime is `change` or `now`', () => {
    const f = new Fixture();
    const root = f.root();
    const { ino } = f.create(root, 'a');
    f.ok({ t: 'ns.setattr', ino, attributes: 0x21, lastWrite: 5n, allocation: 4096, now: LATER });
    expect(f.inode(ino)).toMatchObject({ attributes: 0x21, lastWrite: 5n, creation: NOW, allocation: 4096, change: LATER });
    f.ok({ t: 'ns.setattr', ino, creation: 7, change: 9, now: LATER });
    expect(f.inode(ino)).toMatchObject({ creation: 7n, change: 9n });
    const { ino: dir } = f.create(root, 'd', 'dir');
    f.ok({ t: 'ns.setattr', ino: dir, attributes: 0x2, now: LATER }); // the directory bit stays
    expect(f.inode(dir).attributes).toBe(0x12);
    // MS-FSA 2.1.5.14.2: FILE_ATTRIBUTE_DIRECTORY on a file, TEMPORARY on a directory.
    f.refused({ t: 'ns.setattr', ino, attributes: 0x10, now: LATER }, 'invalid');
    f.refused({ t: 'ns.setattr', ino: dir, attributes: 0x100, now: LATER }, 'invalid');
    f.refused({ t: 'ns.setattr', ino, lastAccess: -2, now: LATER }, 'invalid');
    f.refused({ t: 'ns.setattr', ino, allocation: -1, now: LATER }, 'invalid');
    f.refused({ t: 'ns.setattr', ino, now: undefined }, 'invalid');
    f.refused({ t: 'ns.setattr', ino: 424242, now: LATER }, 'not-found');
  });

  it('replaces the security descriptor within the limit', () => {
    const f = new Fixture();
    const { ino } = f.create(f.root(), 'a');
    const sd2 = Uint8Array.from([...SD, 9, 9]);
    f.ok({ t: 'ns.setsd', ino, sd: sd2, now: LATER });
    expect(Buffer.from(f.inode(ino).sd!)).toEqual(Buffer.from(sd2));
    expect(f.inode(ino).change).toBe(LATER);
    const big = new Uint8Array(limits.securityDescriptorBytesMax + 1);
    big[0] = 1;
    f.refused({ t: 'ns.setsd', ino, sd: big }, 'limit');
    f.refused({ t: 'ns.setsd', ino, sd: new Uint8Array(0) }, 'invalid');
    f.refused({ t: 'ns.setsd', ino }, 'invalid');
    f.refused({ t: 'ns.setsd', ino: 999, sd: SD }, 'not-found');
  });
});

describe('ns.rename', () => {
  const rn = (srcParent: number, srcName: string, dstParent: number, dstName: string, replace = false): Command => ({
    t: 'ns.rename',
    srcParent,
    srcName,
    dstParent,
    dstName,
    replace,
    now: LATER,
  });

  it('renames within a directory, across directories, and case-only in place', () => {
    const f = new Fixture();
    const root = f.root();
    const { ino: d1 } = f.create(root, 'd1', 'dir');
    const { ino: d2 } = f.create(root, 'd2', 'dir');
    const { ino } = f.create(d1, 'a');
    f.ok(rn(d1, 'a', d1, 'b'));
    expect(lookup(f.tx(), d1, 'a')).toBeUndefined();
    expect(lookup(f.tx(), d1, 'b')?.ino).toBe(ino);
    f.ok(rn(d1, 'B', d2, 'c'));
    expect(readdir(f.tx(), d1, { limit: 10 })).toEqual([]);
    expect(lookup(f.tx(), d2, 'c')).toEqual({ name: 'c', ino, kind: 'file' });
    f.ok(rn(d2, 'c', d2, 'C'));
    expect(lookup(f.tx(), d2, 'c')?.name).toBe('C');
    expect(f.inode(ino).change).toBe(LATER);
    expect(f.inode(d1).lastWrite).toBe(LATER);
    // A directory moved elsewhere gets its new parent.
    const { ino: sub } = f.create(d1, 'sub', 'dir');
    f.ok(rn(d1, 'sub', d2, 'sub'));
    expect(f.inode(sub).parent).toBe(d2);
  });

  it('follows MS-FSA 2.1.5.14.11 for existing targets, directory cycles and shares', () => {
    const f = new Fixture();
    const root = f.root();
    const { ino: a } = f.create(root, 'a');
    f.create(root, 'b');
    const { ino: d } = f.create(root, 'd', 'dir');
    const { ino: inner } = f.create(d, 'inner', 'dir');
    f.refused(rn(root, 'a', root, 'B'), 'exists');
    f.refused(rn(root, 'a', root, 'd', true), 'is-directory');
    f.refused(rn(root, 'd', d, 'x'), 'invalid');
    f.refused(rn(root, 'd', inner, 'x'), 'invalid');
    f.refused(rn(root, 'missing', root, 'x'), 'not-found');
    f.refused(rn(root, 'a', 999, 'x'), 'not-found');
    f.refused(rn(root, 'a', a, 'x'), 'not-directory');
    f.refused(rn(root, 'a', root, 'x:y'), 'invalid');
    f.refused({ ...rn(root, 'a', root, 'x'), replace: 'yes' }, 'invalid');
    const other = f.root('other');
    f.refused(rn(root, 'a', other, 'a'), 'invalid');
    // Moving a directory sideways or up is fine.
    f.ok(rn(d, 'inner', root, 'inner'));
    expect(f.inode(inner).parent).toBe(root);
  });

  it('replacing a file unlinks it and frees its data', () => {
    const f = new Fixture();
    const root = f.root();
    const { ino: a } = f.create(root, 'a');
    const { ino: b, fork: bf } = f.create(root, 'b');
    f.ok({ t: 'ext.write', fork: bf, offset: 0, length: 100, object: 'seg-b', objectOffset: 0 });
    const r = f.ok(rn(root, 'a', root, 'b', true));
    expect(r).toEqual({ ino: a, replaced: { ino: b, freed: true } });
    expect(lookup(f.tx(), root, 'b')?.ino).toBe(a);
    expect(lookup(f.tx(), root, 'a')).toBeUndefined();
    expect(getInode(f.tx(), b)).toBeUndefined();
    expect(extentsIn(f.tx(), bf, 0, 1000)).toEqual([]);
    expect(objectRefs(f.tx(), 'seg-b')).toBe(0);
    expect(f.tx().get(key('gc', 'seg-b'))).toBeDefined();
  });

  it('renaming one link of a file over another link of the same file leaves one link', () => {
    const f = new Fixture();
    const root = f.root();
    const { ino } = f.create(root, 'a');
    f.ok({ t: 'ns.link', ino, parent: root, name: 'b', replace: false, now: NOW });
    expect(f.inode(ino).nlink).toBe(2);
    f.ok(rn(root, 'a', root, 'b', true));
    expect(f.inode(ino).nlink).toBe(1);
    expect(readdir(f.tx(), root, { limit: 10 })).toEqual([{ name: 'b', ino, kind: 'file' }]);
  });
});

describe('ns.link and ns.unlink', () => {
  it('hard links count; the data goes with the last link', () => {
    const f = new Fixture();
    const root = f.root();
    const { ino: d } = f.create(root, 'd', 'dir');
    const { ino, fork } = f.create(root, 'a');
    f.ok({ t: 'ext.write', fork, offset: 0, length: 10, object: 'seg', objectOffset: 0 });
    f.ok({ t: 'ns.link', ino, parent: d, name: 'A2', replace: false, now: LATER });
    expect(f.inode(ino).nlink).toBe(2);
    expect(lookup(f.tx(), d, 'a2')?.ino).toBe(ino);
    expect(f.ok({ t: 'ns.unlink', parent: root, name: 'a', now: LATER })).toEqual({ ino, freed: false });
    expect(f.inode(ino).nlink).toBe(1);
    expect(objectRefs(f.tx(), 'seg')).toBe(1);
    expect(f.ok({ t: 'ns.unlink', parent: d, name: 'a2', now: LATER })).toEqual({ ino, freed: true });
    expect(getInode(f.tx(), ino)).toBeUndefined();
    expect(objectRefs(f.tx(), 'seg')).toBe(0);
    expect(f.tx().get(key('fork', fork))).toBeUndefined();
  });

  it('refuses links to directories, across shares, onto directories, and beyond the link limit', () => {
    const f = new Fixture();
    const root = f.root();
    const { ino: d } = f.create(root, 'd', 'dir');
    const { ino } = f.create(root, 'a');
    f.create(root, 'b');
    const l = (over: Record<string, unknown>): Command => ({ t: 'ns.link', ino, parent: root, name: 'n', replace: false, now: NOW, ...over });
    f.refused(l({ ino: d }), 'is-directory');
    f.refused(l({ name: 'B' }), 'exists');
    f.refused(l({ name: 'd', replace: true }), 'is-directory');
    f.refused(l({ parent: f.root('other') }), 'invalid');
    f.refused(l({ ino: 999 }), 'not-found');
    f.refused(l({ parent: ino }), 'not-directory');
    // Linking onto itself is a no-op.
    expect(f.ok(l({ name: 'a' }))).toEqual({ ino });
    expect(f.inode(ino).nlink).toBe(1);
    for (let i = 1; i < limits.metaHardLinksMax; i++) f.ok(l({ name: `l${i}` }));
    expect(f.inode(ino).nlink).toBe(limits.metaHardLinksMax);
    f.refused(l({ name: 'one-more' }), 'limit');
  });

  it('a directory must be empty; removing it removes its inode', () => {
    const f = new Fixture();
    const root = f.root();
    const { ino: d } = f.create(root, 'd', 'dir');
    f.create(d, 'x');
    f.refused({ t: 'ns.unlink', parent: root, name: 'd', now: LATER }, 'not-empty');
    f.ok({ t: 'ns.unlink', parent: d, name: 'X', now: LATER });
    expect(f.ok({ t: 'ns.unlink', parent: root, name: 'D', now: LATER })).toEqual({ ino: d, freed: true });
    expect(getInode(f.tx(), d)).toBeUndefined();
    expect(f.inode(root).lastWrite).toBe(LATER);
    f.refused({ t: 'ns.unlink', parent: root, name: 'd', now: LATER }, 'not-found');
    f.refused({ t: 'ns.unlink', parent: 999, name: 'd', now: LATER }, 'not-found');
    f.refused({ t: 'ns.unlink', parent: root, name: '..', now: LATER }, 'invalid');
  });

  it('unlinking the last link removes named streams and their maps', () => {
    const f = new Fixture();
    const root = f.root();
    const { ino, fork } = f.create(root, 'a');
    const { fork: s1 } = f.ok<{ fork: number }>({ t: 'ns.stream.create', ino, name: 'one' });
    f.ok({ t: 'ext.write', fork, offset: 0, length: 10, object: 'main', objectOffset: 0 });
    f.ok({ t: 'ext.write', fork: s1, offset: 0, length: 10, object: 'ads', objectOffset: 0 });
    f.ok({ t: 'ext.clone', srcFork: fork, srcOffset: 0, dstFork: s1, dstOffset: 0, length: 5 });
    expect(objectRefs(f.tx(), 'main')).toBe(2);
    f.ok({ t: 'ns.unlink', parent: root, name: 'a', now: LATER });
    expect(objectRefs(f.tx(), 'main')).toBe(0);
    expect(objectRefs(f.tx(), 'ads')).toBe(0);
    expect([...f.tx().range(key('stream'))]).toEqual([]);
    expect([...f.tx().range(key('ext'))]).toEqual([]);
    expect([...f.tx().range(key('fork'))]).toEqual([]);
    expect([...f.tx().range(key('gc'))].length).toBe(2);
  });
});

describe('named streams', () => {
  it('create, look up case-insensitively, list, delete', () => {
    const f = new Fixture();
    const { ino } = f.create(f.root(), 'a');
    const { fork } = f.ok<{ fork: number }>({ t: 'ns.stream.create', ino, name: 'Zone.Identifier' });
    expect(f.tx().get(key('fork', fork))).toEqual({ ino, stream: 'Zone.Identifier' });
    f.refused({ t: 'ns.stream.create', ino, name: 'ZONE.IDENTIFIER' }, 'exists');
    f.refused({ t: 'ns.stream.create', ino, name: 'a:b' }, 'invalid');
    f.refused({ t: 'ns.stream.create', ino, name: '' }, 'invalid');
    f.refused({ t: 'ns.stream.create', ino: 999, name: 's' }, 'not-found');
    f.ok({ t: 'ns.stream.create', ino, name: 'a*b' }); // stream names may hold what file names may not
    expect(getStream(f.tx(), ino, 'zone.identifier')).toEqual({ name: 'Zone.Identifier', fork, size: 0 });
    expect(listStreams(f.tx(), ino).map((s) => s.name)).toEqual(['a*b', 'Zone.Identifier']);
    f.ok({ t: 'ext.write', fork, offset: 0, length: 3, object: 'z', objectOffset: 0 });
    expect(f.ok({ t: 'ns.stream.delete', ino, name: 'zone.identifier' })).toEqual({ fork });
    expect(objectRefs(f.tx(), 'z')).toBe(0);
    expect(f.tx().get(key('fork', fork))).toBeUndefined();
    f.refused({ t: 'ns.stream.delete', ino, name: 'zone.identifier' }, 'not-found');
  });

  it('rename: in place, onto an existing stream with replace, refused without', () => {
    const f = new Fixture();
    const { ino } = f.create(f.root(), 'a');
    const { fork: s } = f.ok<{ fork: number }>({ t: 'ns.stream.create', ino, name: 's' });
    const { fork: t } = f.ok<{ fork: number }>({ t: 'ns.stream.create', ino, name: 't' });
    f.ok({ t: 'ext.write', fork: t, offset: 0, length: 3, object: 'tt', objectOffset: 0 });
    f.ok({ t: 'ext.write', fork: s, offset: 0, length: 4, object: 'ss', objectOffset: 0 });
    f.refused({ t: 'ns.stream.rename', ino, from: 's', to: 'T', replace: false }, 'exists');
    f.refused({ t: 'ns.stream.rename', ino, from: 'x', to: 'y', replace: false }, 'not-found');
    expect(f.ok({ t: 'ns.stream.rename', ino, from: 's', to: 'T', replace: true })).toEqual({ fork: s });
    expect(listStreams(f.tx(), ino)).toEqual([{ name: 'T', fork: s, size: 4 }]);
    expect(objectRefs(f.tx(), 'tt')).toBe(0);
    expect(f.tx().get(key('fork', t))).toBeUndefined();
    f.ok({ t: 'ns.stream.rename', ino, from: 't', to: 'tee', replace: false });
    f.ok({ t: 'ns.stream.rename', ino, from: 'TEE', to: 'Tee', replace: false });
    expect(listStreams(f.tx(), ino)).toEqual([{ name: 'Tee', fork: s, size: 4 }]);
    expect(f.tx().get(key('fork', s))).toEqual({ ino, stream: 'Tee' });
    // Writes through the fork still find the renamed stream.
    f.ok({ t: 'ext.write', fork: s, offset: 10, length: 4, object: 'ss', objectOffset: 10 });
    expect(getStream(f.tx(), ino, 'tee')!.size).toBe(14);
  });

  it('bounds the number of streams per file', () => {
    const f = new Fixture();
    const { ino } = f.create(f.root(), 'a');
    for (let i = 0; i < limits.metaStreamsPerFileMax; i++) f.ok({ t: 'ns.stream.create', ino, name: `s${i}` });
    f.refused({ t: 'ns.stream.create', ino, name: 'one-more' }, 'limit');
  });
});

describe('a 100k-entry directory', () => {
  it('creates, looks up and pages through 100,000 entries', () => {
    const f = new Fixture();
    const root = f.root();
    const { ino: dir } = f.create(root, 'big', 'dir');
    const n = 100_000;
    const name = (i: number) => `file-${i.toString(36).padStart(4, '0')}-${i % 7 === 0 ? 'X' : 'y'}.dat`;
    const t0 = performance.now();
    for (let i = 0; i < n; i++) f.create(dir, name(i), i % 10 === 0 ? 'dir' : 'file');
    const t1 = performance.now();
    for (let i = 0; i < n; i += 97) expect(lookup(f.tx(), dir, name(i).toUpperCase())?.name).toBe(name(i));
    expect(f.code({ t: 'ns.create', parent: dir, name: name(12345).toLowerCase(), kind: 'file', attributes: 0, now: NOW })).toBe('exists');
    const t2 = performance.now();
    const seen = new Set<string>();
    let after: string | undefined;
    let last = '';
    let pages = 0;
    for (;;) {
      const page = readdir(f.tx(), dir, after === undefined ? { limit: 4096 } : { after, limit: 4096 });
      for (const e of page) {
        const k = Buffer.from(fold(e.name)).toString('latin1');
        expect(k > last).toBe(true);
        last = k;
        seen.add(e.name);
      }
      pages++;
      if (page.length < 4096) break;
      after = page[page.length - 1]!.name.toLowerCase(); // resuming is case-insensitive too
    }
    const t3 = performance.now();
    expect(seen.size).toBe(n);
    expect(pages).toBe(Math.ceil(n / 4096) + (n % 4096 === 0 ? 1 : 0));
    console.log(
      `100k directory: create ${(t1 - t0).toFixed(0)} ms, ${Math.ceil(n / 97)} lookups ${(t2 - t1).toFixed(0)} ms, readdir ${pages} pages ${(t3 - t2).toFixed(0)} ms (MemoryStore)`,
    );
  });
});
