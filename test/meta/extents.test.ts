// Extent-map command family (src/meta/families/extents.ts): unit tests per command and a model test
// of random write/punch/truncate/clone sequences against a byte-per-byte model.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { limits } from '../../src/base/limits.js';
import { decodeKey, key } from '../../src/meta/keys.js';
import { MemoryStore, type ApplyTx, type Command, type CommandResult, type HandlerTable } from '../../src/meta/tx.js';
import {
  allocatedRanges,
  boundedEnd,
  createExtentHandlers,
  extentHandlers,
  extentsIn,
  gcCandidates,
  objectRefs,
  reapCandidates,
} from '../../src/meta/families/extents.js';
import {
  createNamespaceHandlers,
  getInode,
  getStream,
  namespaceHandlers,
  type Extent,
  type ObjectRecord,
} from '../../src/meta/families/namespace.js';

const NOW = 133_500_000_000_000_000n; // a FILETIME in 2024 (beyond 2^53: travels as bigint)

class Fixture {
  readonly store = new MemoryStore();
  position = 1;
  constructor(readonly handlers: HandlerTable = { ...namespaceHandlers, ...extentHandlers }) {}
  tx(): ApplyTx {
    return this.store.tx(this.position);
  }
  run(cmd: Command): CommandResult {
    const h = this.handlers[cmd.t];
    if (h === undefined) throw new Error(`no handler ${cmd.t}`);
    const r = h(this.store.tx(this.position++), cmd);
    return r;
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
  /** Every key/value, for "a refused command writes nothing". */
  dump(): string {
    const parts: string[] = [];
    for (const [k, v] of this.store.rangeRaw(Buffer.alloc(0), Buffer.alloc(0))) parts.push(k.toString('hex') + '=' + v.toString('hex'));
    return parts.join(',');
  }
  root(): number {
    return this.ok<{ ino: number }>({ t: 'ns.mkroot', share: 'vms', now: NOW }).ino;
  }
  file(parent: number, name: string): { ino: number; fork: number } {
    return this.ok({ t: 'ns.create', parent, name, kind: 'file', attributes: 0x20, now: NOW });
  }
  write(fork: number, offset: number, length: number, object: string, objectOffset = 0): { size: number } {
    return this.ok({ t: 'ext.write', fork, offset, length, object, objectOffset });
  }
  map(fork: number): [number, number, string, number][] {
    return extentsIn(this.tx(), fork, 0, limits.metaFileBytesMax).map((e) => [e.offset, e.length, e.object, e.objectOffset]);
  }
  refs(object: string): number {
    return objectRefs(this.tx(), object);
  }
  inGc(object: string): boolean {
    return this.tx().get(key('gc', object)) !== undefined;
  }
}

/** Recounts references from the extent records and checks the 'obj' and 'gc' records agree. */
function checkRefs(f: Fixture, everUsed: Iterable<string>): void {
  const tx = f.tx();
  const counted = new Map<string, number>();
  for (const [, e] of tx.range<Extent>(key('ext'))) counted.set(e.object, (counted.get(e.object) ?? 0) + 1);
  const stored = new Map<string, number>();
  for (const [k, o] of tx.range<ObjectRecord>(key('obj'))) stored.set(decodeKey(k)[1] as string, o.refs);
  expect(stored).toEqual(counted);
  for (const o of everUsed) {
    expect(f.inGc(o), `object ${o} in gc iff unreferenced`).toBe(!counted.has(o));
  }
}

/** Extents of a fork do not overlap, no neighbours could merge, and all lie below `size`. */
function checkMapShape(f: Fixture, fork: number, size: number): void {
  const m = extentsIn(f.tx(), fork, 0, limits.metaFileBytesMax);
  for (let i = 0; i < m.length; i++) {
    const e = m[i]!;
    expect(e.length).toBeGreaterThan(0);
    expect(e.offset + e.length).toBeLessThanOrEqual(size);
    const n = m[i + 1];
    if (n === undefined) continue;
    expect(e.offset + e.length).toBeLessThanOrEqual(n.offset);
    const mergeable = e.offset + e.length === n.offset && e.object === n.object && e.objectOffset + e.length === n.objectOffset;
    expect(mergeable, `extents at ${e.offset} and ${n.offset} should have been merged`).toBe(false);
  }
}

describe('ext.write', () => {
  it('maps a range, extends the size, and counts a reference', () => {
    const f = new Fixture();
    const { fork, ino } = f.file(f.root(), 'disk.vhdx');
    expect(f.write(fork, 4096, 8192, 'seg-1', 100)).toEqual({ size: 12288 });
    expect(f.map(fork)).toEqual([[4096, 8192, 'seg-1', 100]]);
    expect(getInode(f.tx(), ino)!.size).toBe(12288);
    expect(f.refs('seg-1')).toBe(1);
    // A write below the end of file keeps the size.
    expect(f.write(fork, 0, 10, 'seg-2')).toEqual({ size: 12288 });
  });

  it('splits an extent it overwrites in the middle (the split counts twice)', () => {
    const f = new Fixture();
    const { fork } = f.file(f.root(), 'a');
    f.write(fork, 0, 100, 'A', 1000);
    f.write(fork, 40, 20, 'B', 0);
    expect(f.map(fork)).toEqual([
      [0, 40, 'A', 1000],
      [40, 20, 'B', 0],
      [60, 40, 'A', 1060],
    ]);
    expect(f.refs('A')).toBe(2);
    expect(f.refs('B')).toBe(1);
    checkRefs(f, ['A', 'B']);
  });

  it('trims and removes overlapped extents across several', () => {
    const f = new Fixture();
    const { fork } = f.file(f.root(), 'a');
    f.write(fork, 0, 10, 'A');
    f.write(fork, 10, 10, 'B');
    f.write(fork, 20, 10, 'C');
    f.write(fork, 5, 20, 'D', 7);
    expect(f.map(fork)).toEqual([
      [0, 5, 'A', 0],
      [5, 20, 'D', 7],
      [25, 5, 'C', 5],
    ]);
    expect([f.refs('A'), f.refs('B'), f.refs('C'), f.refs('D')]).toEqual([1, 0, 1, 1]);
    expect(f.inGc('B')).toBe(true);
    checkRefs(f, ['A', 'B', 'C', 'D']);
  });

  it('merges contiguous pieces of one object (sequential writes out of one segment)', () => {
    const f = new Fixture();
    const { fork } = f.file(f.root(), 'a');
    for (let i = 0; i < 16; i++) f.write(fork, i * 4096, 4096, 'seg', i * 4096);
    expect(f.map(fork)).toEqual([[0, 65536, 'seg', 0]]);
    expect(f.refs('seg')).toBe(1);
    // Writing back into the middle and then restoring it merges again.
    f.write(fork, 4096, 4096, 'other');
    expect(f.map(fork).length).toBe(3);
    f.write(fork, 4096, 4096, 'seg', 4096);
    expect(f.map(fork)).toEqual([[0, 65536, 'seg', 0]]);
    expect(f.inGc('other')).toBe(true);
    checkRefs(f, ['seg', 'other']);
  });

  it('a reference to an object waiting in gc takes it out of gc', () => {
    const f = new Fixture();
    const { fork } = f.file(f.root(), 'a');
    f.write(fork, 0, 10, 'seg', 0);
    const pos = f.position;
    f.write(fork, 0, 10, 'seg2', 0);
    expect(gcCandidates(f.tx(), 10)).toEqual([{ object: 'seg', since: pos }]);
    f.write(fork, 20, 10, 'seg', 10); // a late group-commit write of the same segment
    expect(f.inGc('seg')).toBe(false);
    expect(f.refs('seg')).toBe(1);
    expect(gcCandidates(f.tx(), 10)).toEqual([]);
  });

  it('updates the size of a named stream for a stream fork', () => {
    const f = new Fixture();
    const { ino } = f.file(f.root(), 'a');
    const { fork } = f.ok<{ fork: number }>({ t: 'ns.stream.create', ino, name: 'Zone.Identifier' });
    f.write(fork, 0, 26, 'z');
    expect(getStream(f.tx(), ino, 'zone.identifier')!.size).toBe(26);
    expect(getInode(f.tx(), ino)!.size).toBe(0);
  });

  it('refuses bad arguments without writing', () => {
    const f = new Fixture();
    const { fork } = f.file(f.root(), 'a');
    f.write(fork, 0, 10, 'A');
    const before = f.dump();
    const w = (over: Record<string, unknown>) => f.code({ t: 'ext.write', fork, offset: 0, length: 1, object: 'X', objectOffset: 0, ...over });
    expect(w({ fork: 0 })).toBe('invalid');
    expect(w({ fork: 'x' })).toBe('invalid');
    expect(w({ fork: 999 })).toBe('not-found');
    expect(w({ offset: -1 })).toBe('invalid');
    expect(w({ offset: 1.5 })).toBe('invalid');
    expect(w({ length: 0 })).toBe('invalid');
    expect(w({ object: '' })).toBe('invalid');
    expect(w({ object: 'a\u0000b' })).toBe('invalid');
    expect(w({ object: 'x'.repeat(limits.metaObjectKeyBytesMax + 1) })).toBe('invalid');
    expect(w({ objectOffset: -5 })).toBe('invalid');
    expect(w({ offset: limits.metaFileBytesMax })).toBe('limit');
    expect(w({ offset: limits.metaFileBytesMax + 1 })).toBe('limit');
    expect(f.dump()).toBe(before);
  });
});

describe('ext.writev', () => {
  it('applies writes in order in one command', () => {
    const f = new Fixture();
    const { fork } = f.file(f.root(), 'a');
    const r = f.ok({
      t: 'ext.writev',
      fork,
      writes: [
        { offset: 0, length: 10, object: 'S', objectOffset: 0 },
        { offset: 10, length: 10, object: 'S', objectOffset: 10 },
        { offset: 5, length: 2, object: 'T', objectOffset: 0 },
        { offset: 100, length: 1, object: 'S', objectOffset: 20 },
      ],
    });
    expect(r).toEqual({ size: 101 });
    expect(f.map(fork)).toEqual([
      [0, 5, 'S', 0],
      [5, 2, 'T', 0],
      [7, 13, 'S', 7],
      [100, 1, 'S', 20],
    ]);
    checkRefs(f, ['S', 'T']);
  });

  it('bounds the batch', () => {
    const f = new Fixture();
    const { fork } = f.file(f.root(), 'a');
    expect(f.code({ t: 'ext.writev', fork, writes: [] })).toBe('invalid');
    expect(f.code({ t: 'ext.writev', fork, writes: 'x' })).toBe('invalid');
    expect(f.code({ t: 'ext.writev', fork, writes: [{ offset: 0, length: 1, object: 'S' }] })).toBe('invalid');
    const many = Array.from({ length: limits.metaExtentWritesPerBatchMax + 1 }, (_, i) => ({ offset: i, length: 1, object: 'S', objectOffset: i }));
    expect(f.code({ t: 'ext.writev', fork, writes: many })).toBe('limit');
  });
});

describe('ext.punch and ext.truncate', () => {
  it('punch leaves holes and keeps the size', () => {
    const f = new Fixture();
    const { fork, ino } = f.file(f.root(), 'a');
    f.write(fork, 0, 100, 'A');
    f.ok({ t: 'ext.punch', fork, offset: 10, length: 20 });
    expect(f.map(fork)).toEqual([
      [0, 10, 'A', 0],
      [30, 70, 'A', 30],
    ]);
    expect(getInode(f.tx(), ino)!.size).toBe(100);
    expect(allocatedRanges(f.tx(), fork, 0, 100)).toEqual([
      { offset: 0, length: 10 },
      { offset: 30, length: 70 },
    ]);
    f.ok({ t: 'ext.punch', fork, offset: 0, length: 0 }); // empty: nothing
    f.ok({ t: 'ext.punch', fork, offset: 0, length: 1000 });
    expect(f.map(fork)).toEqual([]);
    expect(f.inGc('A')).toBe(true);
  });

  it('truncate frees what lies beyond, trims the straddling extent, and sets the size', () => {
    const f = new Fixture();
    const { fork, ino } = f.file(f.root(), 'a');
    f.write(fork, 0, 50, 'A');
    f.write(fork, 60, 40, 'B');
    f.ok({ t: 'ext.truncate', fork, size: 30 });
    expect(f.map(fork)).toEqual([[0, 30, 'A', 0]]);
    expect(getInode(f.tx(), ino)!.size).toBe(30);
    expect(f.inGc('B')).toBe(true);
    f.ok({ t: 'ext.truncate', fork, size: 1 << 30 }); // extending maps nothing
    expect(getInode(f.tx(), ino)!.size).toBe(1 << 30);
    expect(f.map(fork)).toEqual([[0, 30, 'A', 0]]);
    expect(f.code({ t: 'ext.truncate', fork, size: -1 })).toBe('invalid');
    expect(f.code({ t: 'ext.truncate', fork, size: limits.metaFileBytesMax + 1 })).toBe('limit');
  });

  it('allocatedRanges coalesces neighbours of different objects and clips to the query', () => {
    const f = new Fixture();
    const { fork } = f.file(f.root(), 'a');
    f.write(fork, 0, 10, 'A');
    f.write(fork, 10, 10, 'B');
    f.write(fork, 30, 10, 'C');
    expect(allocatedRanges(f.tx(), fork, 5, 30)).toEqual([
      { offset: 5, length: 15 },
      { offset: 30, length: 5 },
    ]);
    expect(extentsIn(f.tx(), fork, 5, 1).map((e) => e.offset)).toEqual([0]);
    expect(extentsIn(f.tx(), fork, 20, 10)).toEqual([]);
    expect(extentsIn(f.tx(), fork, 0, 40, 2).length).toBe(2);
  });
});

describe('ext.clone', () => {
  function twoFiles(f: Fixture) {
    const root = f.root();
    const a = f.file(root, 'a');
    const b = f.file(root, 'b');
    return { a: a.fork, b: b.fork };
  }

  it('maps the same bytes as the source (holes and pieces)', () => {
    const f = new Fixture();
    const { a, b } = twoFiles(f);
    f.write(a, 0, 10, 'A');
    f.write(a, 20, 10, 'B');
    f.write(b, 0, 100, 'C');
    f.ok({ t: 'ext.clone', srcFork: a, srcOffset: 5, dstFork: b, dstOffset: 50, length: 20 });
    // a[5,10) -> b[50,55): A@5; a[10,20) hole -> b[55,65) hole; a[20,25) -> b[65,70): B@0.
    expect(f.map(b)).toEqual([
      [0, 50, 'C', 0],
      [50, 5, 'A', 5],
      [65, 5, 'B', 0],
      [70, 30, 'C', 70],
    ]);
    expect([f.refs('A'), f.refs('B'), f.refs('C')]).toEqual([2, 2, 2]);
    checkRefs(f, ['A', 'B', 'C']);
  });

  it('clones within one fork when the ranges are disjoint, and refuses overlap', () => {
    const f = new Fixture();
    const { a } = twoFiles(f);
    f.write(a, 0, 10, 'A');
    f.ok({ t: 'ext.truncate', fork: a, size: 40 });
    f.ok({ t: 'ext.clone', srcFork: a, srcOffset: 0, dstFork: a, dstOffset: 20, length: 10 });
    expect(f.map(a)).toEqual([
      [0, 10, 'A', 0],
      [20, 10, 'A', 0],
    ]);
    expect(f.refs('A')).toBe(2);
    const before = f.dump();
    expect(f.code({ t: 'ext.clone', srcFork: a, srcOffset: 0, dstFork: a, dstOffset: 5, length: 10 })).toBe('invalid');
    expect(f.code({ t: 'ext.clone', srcFork: a, srcOffset: 10, dstFork: a, dstOffset: 5, length: 10 })).toBe('invalid');
    expect(f.dump()).toBe(before);
  });

  it('refuses ranges beyond either end of file', () => {
    const f = new Fixture();
    const { a, b } = twoFiles(f);
    f.write(a, 0, 10, 'A');
    f.write(b, 0, 10, 'B');
    expect(f.code({ t: 'ext.clone', srcFork: a, srcOffset: 5, dstFork: b, dstOffset: 0, length: 6 })).toBe('invalid');
    expect(f.code({ t: 'ext.clone', srcFork: a, srcOffset: 0, dstFork: b, dstOffset: 5, length: 6 })).toBe('invalid');
    expect(f.code({ t: 'ext.clone', srcFork: a, srcOffset: 0, dstFork: 999, dstOffset: 0, length: 1 })).toBe('not-found');
    expect(f.code({ t: 'ext.clone', srcFork: a, srcOffset: 0, dstFork: b, dstOffset: 0 })).toBe('invalid');
    f.ok({ t: 'ext.clone', srcFork: a, srcOffset: 0, dstFork: b, dstOffset: 0, length: 0 });
  });
});

describe('bounded work per command', () => {
  const small = () => new Fixture({ ...createNamespaceHandlers({ extentsPerCommandMax: 4 }), ...createExtentHandlers({ extentsPerCommandMax: 4 }) });

  it('a punch over more extents than the budget fails with limit, writes nothing, and boundedEnd splits it', () => {
    const f = small();
    const { fork } = f.file(f.root(), 'a');
    for (let i = 0; i < 10; i++) f.write(fork, i * 10, 5, `o${i}`);
    const before = f.dump();
    expect(f.code({ t: 'ext.punch', fork, offset: 0, length: 100 })).toBe('limit');
    expect(f.code({ t: 'ext.truncate', fork, size: 0 })).toBe('limit');
    expect(f.code({ t: 'ext.write', fork, offset: 0, length: 100, object: 'X', objectOffset: 0 })).toBe('limit');
    expect(f.dump()).toBe(before);
    let at = 2;
    let steps = 0;
    while (at < 100) {
      const cut = boundedEnd(f.tx(), fork, at, 100, 4);
      expect(cut).toBeGreaterThan(at);
      f.ok({ t: 'ext.punch', fork, offset: at, length: cut - at });
      at = cut;
      steps++;
    }
    expect(steps).toBe(3);
    expect(f.map(fork)).toEqual([[0, 2, 'o0', 0]]);
    checkRefs(f, Array.from({ length: 10 }, (_, i) => `o${i}`));
  });

  it('unlink of a file with a large map queues the fork for ext.reap; reap frees it in slices', () => {
    const f = small();
    const root = f.root();
    const { ino, fork } = f.file(root, 'big');
    for (let i = 0; i < 10; i++) f.write(fork, i * 10, 5, `o${i}`);
    const { fork: sfork } = f.ok<{ fork: number }>({ t: 'ns.stream.create', ino, name: 's' });
    f.write(sfork, 0, 5, 'so');
    const r = f.ok<{ ino: number; freed: boolean; reap?: number[] }>({ t: 'ns.unlink', parent: root, name: 'big', now: NOW });
    // The stream's single extent fits the budget and is freed inline; the main fork is queued.
    expect(r).toEqual({ ino, freed: true, reap: [fork] });
    expect(f.inGc('so')).toBe(true);
    expect(getInode(f.tx(), ino)).toBeUndefined();
    expect(reapCandidates(f.tx(), 10)).toEqual([{ fork, ino, since: f.position - 1 }]);
    expect(f.code({ t: 'ext.write', fork, offset: 0, length: 1, object: 'x', objectOffset: 0 })).toBe('not-found');
    checkRefs(f, ['so', ...Array.from({ length: 10 }, (_, i) => `o${i}`)]);
    const slices: unknown[] = [];
    for (;;) {
      const v = f.ok<{ freed: number; done: boolean }>({ t: 'ext.reap', fork });
      slices.push(v);
      if (v.done) break;
    }
    expect(slices).toEqual([
      { freed: 4, done: false },
      { freed: 4, done: false },
      { freed: 2, done: true },
    ]);
    expect(reapCandidates(f.tx(), 10)).toEqual([]);
    expect(f.code({ t: 'ext.reap', fork })).toBe('not-found');
    expect(f.map(fork)).toEqual([]);
    checkRefs(f, ['so', ...Array.from({ length: 10 }, (_, i) => `o${i}`)]);
  });
});

// ---- model test ----

type Cell = { o: string; off: number } | null;
interface ModelFork {
  bytes: Cell[];
  size: number;
}

const SPACE = 160; // bytes modelled per fork; every op stays below it
const OBJECTS = ['p', 'q', 'r', 's'];

type Op =
  | { k: 'write'; f: number; off: number; len: number; o: string; oo: number }
  | { k: 'writev'; f: number; ws: { off: number; len: number; o: string; oo: number }[] }
  | { k: 'punch'; f: number; off: number; len: number }
  | { k: 'truncate'; f: number; size: number }
  | { k: 'clone'; f: number; g: number; so: number; doff: number; len: number }
  | { k: 'recreate' } // delete the named stream (fork 2) and create it again: a new, empty fork
  | { k: 'reap' };

const piece = fc.record({
  off: fc.integer({ min: 0, max: 100 }),
  len: fc.integer({ min: 1, max: 40 }),
  o: fc.constantFrom(...OBJECTS),
  oo: fc.integer({ min: 0, max: 3 }).map((x) => x * 16),
});
const forkIx = fc.integer({ min: 0, max: 2 });
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ f: forkIx, p: piece }).map(({ f, p }) => ({ k: 'write' as const, f, ...p })) },
  { weight: 2, arbitrary: fc.record({ f: forkIx, ws: fc.array(piece, { minLength: 1, maxLength: 4 }) }).map(({ f, ws }) => ({ k: 'writev' as const, f, ws })) },
  { weight: 2, arbitrary: fc.record({ f: forkIx, off: fc.integer({ min: 0, max: 120 }), len: fc.integer({ min: 0, max: 40 }) }).map((x) => ({ k: 'punch' as const, ...x })) },
  { weight: 2, arbitrary: fc.record({ f: forkIx, size: fc.integer({ min: 0, max: 150 }) }).map((x) => ({ k: 'truncate' as const, ...x })) },
  {
    weight: 3,
    arbitrary: fc
      .record({ f: forkIx, g: forkIx, so: fc.integer({ min: 0, max: 100 }), doff: fc.integer({ min: 0, max: 100 }), len: fc.integer({ min: 0, max: 40 }) })
      .map((x) => ({ k: 'clone' as const, ...x })),
  },
  { weight: 1, arbitrary: fc.constant({ k: 'recreate' as const }) },
  { weight: 1, arbitrary: fc.constant({ k: 'reap' as const }) },
);

describe('extent map model', () => {
  it('agrees with a byte-per-byte model under random write/punch/truncate/clone sequences', () => {
    fc.assert(
      fc.property(fc.array(opArb, { minLength: 1, maxLength: 60 }), fc.integer({ min: 2, max: 64 }), (ops, unlinkBudget) => {
        // ns.stream.delete frees inline up to `unlinkBudget` extents, else queues the fork for ext.reap.
        const f = new Fixture({ ...createNamespaceHandlers({ extentsPerCommandMax: unlinkBudget }), ...extentHandlers });
        const root = f.root();
        const a = f.file(root, 'a');
        const b = f.file(root, 'b');
        const s = f.ok<{ fork: number }>({ t: 'ns.stream.create', ino: a.ino, name: 'ads' });
        const forks = [a.fork, b.fork, s.fork];
        const model: ModelFork[] = forks.map(() => ({ bytes: new Array<Cell>(SPACE).fill(null), size: 0 }));
        const used = new Set<string>();

        const mwrite = (m: ModelFork, off: number, len: number, o: string, oo: number) => {
          for (let i = 0; i < len; i++) m.bytes[off + i] = { o, off: oo + i };
          m.size = Math.max(m.size, off + len);
          used.add(o);
        };

        for (const op of ops) {
          switch (op.k) {
            case 'write': {
              f.ok({ t: 'ext.write', fork: forks[op.f], offset: op.off, length: op.len, object: op.o, objectOffset: op.oo });
              mwrite(model[op.f]!, op.off, op.len, op.o, op.oo);
              break;
            }
            case 'writev': {
              const writes = op.ws.map((w) => ({ offset: w.off, length: w.len, object: w.o, objectOffset: w.oo }));
              f.ok({ t: 'ext.writev', fork: forks[op.f], writes });
              for (const w of op.ws) mwrite(model[op.f]!, w.off, w.len, w.o, w.oo);
              break;
            }
            case 'punch': {
              f.ok({ t: 'ext.punch', fork: forks[op.f], offset: op.off, length: op.len });
              for (let i = op.off; i < Math.min(op.off + op.len, SPACE); i++) model[op.f]!.bytes[i] = null;
              break;
            }
            case 'truncate': {
              f.ok({ t: 'ext.truncate', fork: forks[op.f], size: op.size });
              const m = model[op.f]!;
              for (let i = op.size; i < SPACE; i++) m.bytes[i] = null;
              m.size = op.size;
              break;
            }
            case 'clone': {
              const src = model[op.f]!;
              const dst = model[op.g]!;
              const overlap = op.f === op.g && op.len > 0 && op.so < op.doff + op.len && op.doff < op.so + op.len;
              const expected = overlap || op.so + op.len > src.size || op.doff + op.len > dst.size ? 'invalid' : 'ok';
              const got = f.code({ t: 'ext.clone', srcFork: forks[op.f], srcOffset: op.so, dstFork: forks[op.g], dstOffset: op.doff, length: op.len });
              expect(got).toBe(expected);
              if (got === 'ok') {
                const tmp = src.bytes.slice(op.so, op.so + op.len);
                for (let i = 0; i < op.len; i++) dst.bytes[op.doff + i] = tmp[i]!;
              }
              break;
            }
            case 'recreate': {
              f.ok({ t: 'ns.stream.delete', ino: a.ino, name: 'ADS' });
              forks[2] = f.ok<{ fork: number }>({ t: 'ns.stream.create', ino: a.ino, name: 'ads' }).fork;
              model[2] = { bytes: new Array<Cell>(SPACE).fill(null), size: 0 };
              break;
            }
            case 'reap': {
              for (const c of reapCandidates(f.tx(), 100)) f.ok({ t: 'ext.reap', fork: c.fork });
              break;
            }
          }

          // Every fork reads back as the model says, whole and through a random window.
          for (let i = 0; i < forks.length; i++) {
            const m = model[i]!;
            const got = new Array<Cell>(SPACE).fill(null);
            for (const e of extentsIn(f.tx(), forks[i]!, 0, SPACE)) {
              for (let j = 0; j < e.length; j++) got[e.offset + j] = { o: e.object, off: e.objectOffset + j };
            }
            expect(got).toEqual(m.bytes);
            const owner = i === 2 ? getStream(f.tx(), a.ino, 'ads')!.size : getInode(f.tx(), i === 0 ? a.ino : b.ino)!.size;
            expect(owner).toBe(m.size);
            checkMapShape(f, forks[i]!, m.size);
            const wOff = (op.k === 'write' ? op.off : 7) % SPACE;
            const win = extentsIn(f.tx(), forks[i]!, wOff, 13);
            const firstMapped = m.bytes.slice(0, wOff + 13).findIndex((c, j) => j >= wOff && c !== null);
            if (firstMapped < 0) expect(win).toEqual([]);
            else expect(win[0]!.offset).toBeLessThanOrEqual(firstMapped);
            for (const e of win) expect(e.offset < wOff + 13 && e.offset + e.length > wOff).toBe(true);
          }
          checkRefs(f, used);
        }
      }),
      { numRuns: 150 },
    );
  });
});
