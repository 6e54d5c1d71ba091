// The metadata side of issue 4's info classes: ns.seteas and the EAs of ns.create (MS-FSA
// 2.1.5.15.5), ns.setattr's keepChange and allocation, and the mapped-bytes count of a fork
// (extents.ts remap) that the chunked driver reports as AllocationSize.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { key } from '../../src/meta/keys.js';
import { MemoryStore, type ApplyTx, type Command, type CommandResult, type HandlerTable } from '../../src/meta/tx.js';
import { extentHandlers, extentsIn, mappedBytes, MAPPED_COUNT_SCAN_MAX } from '../../src/meta/families/extents.js';
import { getInode, namespaceHandlers, type Inode } from '../../src/meta/families/namespace.js';

const NOW = 133_500_000_000_000_000n;
const LATER = NOW + 10_000_000n;

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
  inode(ino: number): Inode {
    return getInode(this.tx(), ino)!;
  }
  root(): number {
    return this.ok<{ ino: number }>({ t: 'ns.mkroot', share: 'vms', now: NOW }).ino;
  }
  file(name: string, extra: Record<string, unknown> = {}): { ino: number; fork: number } {
    return this.ok({ t: 'ns.create', parent: this.root(), name, kind: 'file', attributes: 0x20, now: NOW, ...extra });
  }
}

const ea = (name: string, value: string, flags = 0) => ({ name, flags, value: Buffer.from(value) });
const names = (node: Inode) => (node.eas ?? []).map((e) => `${e.name}=${Buffer.from(e.value).toString()}`);

describe('ns.seteas and ns.create eas', () => {
  it('merges in order, upper-cases names, removes on empty values, moves ChangeTime unless kept', () => {
    const f = new Fixture();
    const { ino } = f.file('f', { eas: [ea('one', '1'), ea('Two', '2', 0x80), ea('gone', '')] });
    expect(names(f.inode(ino))).toEqual(['ONE=1', 'TWO=2']);
    expect(f.inode(ino).eas![1]!.flags).toBe(0x80);
    f.ok({ t: 'ns.seteas', ino, eas: [ea('ONE', 'uno'), ea('three', '3'), ea('two', '')], now: LATER });
    expect(names(f.inode(ino))).toEqual(['ONE=uno', 'THREE=3']);
    expect(f.inode(ino).change).toBe(LATER);
    f.ok({ t: 'ns.seteas', ino, eas: [ea('one', '')], now: LATER + 1n, keepChange: true });
    expect(f.inode(ino).change).toBe(LATER);
    f.ok({ t: 'ns.seteas', ino, eas: [ea('three', '')], now: LATER });
    expect(f.inode(ino).eas).toBeUndefined();
  });

  it('refuses bad names, flags, sizes and a list over 64 KiB - 5 packed bytes, changing nothing', () => {
    const f = new Fixture();
    const { ino } = f.file('f', { eas: [ea('keep', 'me')] });
    const before = JSON.stringify(names(f.inode(ino)));
    for (const bad of [[ea('', 'x')], [ea('a\u0100', 'x')], [ea('x', 'y', 1)], [{ name: 'x', flags: 0, value: 'not bytes' }], 'not a list']) {
      expect(f.code({ t: 'ns.seteas', ino, eas: bad, now: LATER })).toBe('invalid');
    }
    const big = { name: 'BIG', flags: 0, value: Buffer.alloc(65_000) };
    expect(f.code({ t: 'ns.seteas', ino, eas: [big, { ...big, name: 'BIG2' }], now: LATER })).toBe('invalid');
    expect(f.code({ t: 'ns.seteas', ino: 999, eas: [], now: LATER })).toBe('not-found');
    expect(JSON.stringify(names(f.inode(ino)))).toBe(before);
    expect(f.code({ t: 'ns.create', parent: f.root(), name: 'g', kind: 'file', attributes: 0, now: NOW, eas: [ea('x', 'y', 3)] })).toBe('invalid');
  });
});

describe('ns.setattr: keepChange and allocation', () => {
  it('keeps ChangeTime when asked, sets it when given, forgets an allocation set to 0', () => {
    const f = new Fixture();
    const { ino } = f.file('f', { allocation: 8192 });
    expect(f.inode(ino).allocation).toBe(8192);
    f.ok({ t: 'ns.setattr', ino, lastWrite: LATER, keepChange: true, now: LATER });
    expect(f.inode(ino).change).toBe(NOW);
    expect(f.inode(ino).lastWrite).toBe(LATER);
    f.ok({ t: 'ns.setattr', ino, change: NOW + 5n, keepChange: true, now: LATER });
    expect(f.inode(ino).change).toBe(NOW + 5n);
    f.ok({ t: 'ns.setattr', ino, allocation: 0, now: LATER });
    expect(f.inode(ino).allocation).toBeUndefined();
    expect(f.inode(ino).change).toBe(LATER);
    expect(f.code({ t: 'ns.setattr', ino, keepChange: 'yes', now: LATER })).toBe('invalid');
  });
});

describe('mapped bytes of a fork', () => {
  type Op =
    | { k: 'write'; off: number; len: number }
    | { k: 'punch'; off: number; len: number }
    | { k: 'truncate'; size: number }
    | { k: 'clone'; so: number; doff: number; len: number };
  const SPACE = 256;
  const opArb: fc.Arbitrary<Op> = fc.oneof(
    fc.record({ k: fc.constant('write' as const), off: fc.nat(SPACE - 1), len: fc.integer({ min: 1, max: 64 }) }),
    fc.record({ k: fc.constant('punch' as const), off: fc.nat(SPACE - 1), len: fc.integer({ min: 0, max: 96 }) }),
    fc.record({ k: fc.constant('truncate' as const), size: fc.nat(SPACE + 64) }),
    fc.record({ k: fc.constant('clone' as const), so: fc.nat(SPACE - 1), doff: fc.nat(SPACE - 1), len: fc.integer({ min: 0, max: 64 }) }),
  );

  it('equals the sum of the extents under random writes, punches, truncates and clones', () => {
    fc.assert(
      fc.property(fc.array(opArb, { minLength: 1, maxLength: 40 }), (ops) => {
        const f = new Fixture();
        const a = f.file('a');
        const b = f.file('b');
        // b gets some data to clone from.
        f.ok({ t: 'ext.write', fork: b.fork, offset: 0, length: SPACE, object: 'src', objectOffset: 0 });
        let n = 0;
        for (const op of ops) {
          if (op.k === 'write') f.ok({ t: 'ext.write', fork: a.fork, offset: op.off, length: op.len, object: `o${n++}`, objectOffset: 3 });
          else if (op.k === 'punch') f.ok({ t: 'ext.punch', fork: a.fork, offset: op.off, length: op.len });
          else if (op.k === 'truncate') f.ok({ t: 'ext.truncate', fork: a.fork, size: op.size });
          else f.code({ t: 'ext.clone', srcFork: b.fork, srcOffset: op.so, dstFork: a.fork, dstOffset: op.doff, length: op.len });
          const sum = extentsIn(f.tx(), a.fork, 0, 1 << 30).reduce((s, e) => s + e.length, 0);
          if (mappedBytes(f.tx(), a.fork) !== sum) return false;
        }
        return mappedBytes(f.tx(), b.fork) === SPACE;
      }),
    );
  });

  it('a map larger than the counting scan when counting starts is unknown for good; dropped with its fork', () => {
    const f = new Fixture();
    const { ino, fork } = f.file('big');
    // Extents written behind the counter's back (as before the count existed): disjoint, one byte each.
    const tx = f.tx();
    for (let i = 0; i <= MAPPED_COUNT_SCAN_MAX; i++) tx.put(key('ext', fork, i * 2), { length: 1, object: 'x', objectOffset: i });
    expect(mappedBytes(f.tx(), fork)).toBeUndefined();
    f.ok({ t: 'ext.write', fork, offset: 1 << 20, length: 10, object: 'y', objectOffset: 0 });
    expect(f.tx().get(key('mapped', fork))).toEqual({});
    expect(mappedBytes(f.tx(), fork)).toBeUndefined();
    // A new fork starts counted (its first write finds an empty map).
    const small = f.file('small');
    f.ok({ t: 'ext.write', fork: small.fork, offset: 0, length: 10, object: 'z', objectOffset: 0 });
    expect(f.tx().get(key('mapped', small.fork))).toEqual({ bytes: 10 });
    f.ok({ t: 'ns.unlink', parent: f.root(), name: 'small', now: LATER });
    expect(f.tx().get(key('mapped', small.fork))).toBeUndefined();
    expect(f.inode(ino).fork).toBe(fork);
  });
});
