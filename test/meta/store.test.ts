// The overlay that gives each command its own rollback-able view, and both stores' range reads:
// random base contents + random pending writes + random range queries, checked against a model.
import { afterAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { key } from '../../src/meta/keys.js';
import { Overlay, StoreLimitError, type StateStore } from '../../src/meta/store.js';
import { encodeRecord, rawTx } from '../../src/meta/tx.js';
import { limits } from '../../src/base/limits.js';
import { makeStore, TempDirs, type StoreKind } from './sm-helpers.js';

const dirs = new TempDirs();
afterAll(() => dirs.cleanup());

const part = fc.oneof(fc.constantFrom('a', 'b', 'ab', 'b\u00ff', ''), fc.nat(6));
const tupleKey = fc.array(part, { minLength: 1, maxLength: 3 }).map((parts) => key('t', ...parts));

interface Query {
  prefix: Buffer;
  start?: Buffer;
  limit?: number;
  reverse?: boolean;
}
const query: fc.Arbitrary<Query> = fc.record(
  {
    prefix: fc.oneof(fc.constant(key('t')), tupleKey),
    start: tupleKey,
    limit: fc.nat(5),
    reverse: fc.boolean(),
  },
  { requiredKeys: ['prefix'] },
);

/** What range() must return: keys starting with prefix, in order, honouring start/limit/reverse. */
function model(state: Map<string, number>, q: Query): [string, number][] {
  const p = q.prefix.toString('latin1');
  let ks = [...state.keys()].filter((k) => k.startsWith(p)).sort();
  if (q.start) {
    const s = q.start.toString('latin1');
    ks = q.reverse ? ks.filter((k) => k < s) : ks.filter((k) => k >= s);
  }
  if (q.reverse) ks.reverse();
  if (q.limit !== undefined) ks = ks.slice(0, q.limit);
  return ks.map((k) => [k, state.get(k)!]);
}

describe.each<StoreKind>(['memory', 'lmdb'])('Overlay over the %s store', (kind) => {
  it('reads merge pending writes with the base exactly like the model', async () => {
    const store: StateStore = makeStore(kind, dirs);
    try {
      let round = 0;
      fc.assert(
        fc.property(
          fc.array(fc.tuple(tupleKey, fc.nat(100)), { maxLength: 25 }),
          fc.array(fc.tuple(tupleKey, fc.option(fc.nat(100))), { maxLength: 25 }),
          fc.array(query, { minLength: 1, maxLength: 8 }),
          (base, writes, queries) => {
            round++;
            const truth = new Map<string, number>();
            store.write((w) => {
              // Reset the base: delete what a previous round left, then write this round's base.
              for (const [k] of [...w.rangeRaw(Buffer.alloc(0), Buffer.alloc(0))]) w.delRaw(k);
              for (const [k, v] of base) {
                w.putRaw(k, encodeRecord({ v }));
                truth.set(k.toString('latin1'), v);
              }
              w.setPosition(round);
            });
            store.write((w) => {
              const ov = new Overlay(w);
              const tx = rawTx(ov, round, 0);
              for (const [k, v] of writes) {
                if (v === null) {
                  tx.del(k);
                  truth.delete(k.toString('latin1'));
                } else {
                  tx.put(k, { v });
                  truth.set(k.toString('latin1'), v);
                }
              }
              for (const q of queries) {
                const got = [...tx.range<{ v: number }>(q.prefix, q)].map(([k, r]) => [k.toString('latin1'), r.v]);
                expect(got).toEqual(model(truth, q));
              }
              for (const [k] of writes) expect(tx.get<{ v: number }>(k)?.v).toBe(truth.get(k.toString('latin1')));
              // Dropped without commit: the base is untouched.
            });
            store.read((r) => {
              const n = [...r.rangeRaw(Buffer.alloc(0), Buffer.alloc(0))].length;
              expect(n).toBe(new Set(base.map(([k]) => k.toString('latin1'))).size);
            });
          },
        ),
        { numRuns: kind === 'lmdb' ? 60 : 150 },
      );
    } finally {
      await store.close();
    }
  });

  it('a write transaction that throws leaves nothing behind', async () => {
    const store = makeStore(kind, dirs);
    try {
      store.write((w) => {
        w.putRaw(key('x'), encodeRecord({ v: 1 }));
        w.setPosition(1);
      });
      expect(() =>
        store.write((w) => {
          w.putRaw(key('y'), encodeRecord({ v: 1 }));
          w.delRaw(key('x'));
          w.setPosition(2);
          throw new Error('abort');
        }),
      ).toThrow('abort');
      expect(store.position()).toBe(1);
      store.read((r) => {
        expect(r.getRaw(key('x'))).toBeDefined();
        expect(r.getRaw(key('y'))).toBeUndefined();
        expect(r.position).toBe(1);
      });
    } finally {
      await store.close();
    }
  });

  it('an open snapshot keeps its version while writes continue', async () => {
    const store = makeStore(kind, dirs);
    try {
      store.write((w) => {
        w.putRaw(key('x'), encodeRecord({ v: 1 }));
        w.setPosition(1);
      });
      const snap = store.openSnapshot();
      store.write((w) => {
        w.putRaw(key('x'), encodeRecord({ v: 2 }));
        w.putRaw(key('y'), encodeRecord({ v: 2 }));
        w.setPosition(2);
      });
      expect(snap.position).toBe(1);
      expect(snap.count()).toBe(1);
      expect(snap.getRaw(key('x'))!.equals(encodeRecord({ v: 1 }))).toBe(true);
      snap.close();
      expect(() => snap.getRaw(key('x'))).toThrow(/after close/);
    } finally {
      await store.close();
    }
  });
});

describe('Overlay range reads while the overlay is written', () => {
  it('a read walks the pending keys as they were when it started; base records show their new value', () => {
    const b = (x: string): Buffer => Buffer.from(x);
    const base = new Map<string, Buffer>([['b', b('B0')], ['d', b('D0')]]);
    const fresh = (): Overlay => new Overlay({
      getRaw: (k) => base.get(Buffer.from(k).toString('latin1')),
      putRaw: () => {},
      delRaw: () => {},
      *rangeRaw(start, end, reverse) {
        const ks = [...base.keys()].filter((k) => k >= Buffer.from(start).toString('latin1') && (end.length === 0 || k < Buffer.from(end).toString('latin1'))).sort();
        if (reverse) ks.reverse();
        for (const k of ks) yield [b(k), base.get(k)!] as [Buffer, Buffer];
      },
    });
    for (const reverse of [false, true]) {
      const ov = fresh();
      for (const k of ['a', 'c', 'e']) ov.putRaw(b(k), b(k.toUpperCase()));
      const seen: string[] = [];
      let n = 0;
      for (const [k, v] of ov.rangeRaw(b('a'), b('z'), reverse)) {
        seen.push(`${k.toString()}=${v.toString()}`);
        if (n++ === 0) {
          // New keys on both sides of the cursor, and a base record overwritten ahead of it.
          ov.putRaw(b(reverse ? 'ab' : 'bb'), b('new'));
          ov.putRaw(b(reverse ? 'dd' : 'f'), b('new'));
          ov.putRaw(b(reverse ? 'b' : 'd'), b('changed'));
        }
      }
      expect(seen).toEqual(reverse ? ['e=E', 'd=D0', 'c=C', 'b=changed', 'a=A'] : ['a=A', 'b=B0', 'c=C', 'd=changed', 'e=E']);
      // A read started afterwards sees everything written.
      expect([...ov.rangeRaw(b('a'), b('z'))].map(([k]) => k.toString())).toEqual(reverse ? ['a', 'ab', 'b', 'c', 'd', 'dd', 'e'] : ['a', 'b', 'bb', 'c', 'd', 'e', 'f']);
    }
  });
});

describe('record limits', () => {
  it('the overlay refuses keys and records beyond limits.ts (StoreLimitError)', () => {
    const ov = new Overlay({ getRaw: () => undefined, putRaw: () => {}, delRaw: () => {}, rangeRaw: () => [] });
    expect(() => ov.putRaw(Buffer.alloc(limits.metaKeyBytesMax + 1, 1), Buffer.alloc(1))).toThrow(StoreLimitError);
    expect(() => ov.putRaw(Buffer.alloc(0), Buffer.alloc(1))).toThrow(StoreLimitError);
    expect(() => ov.putRaw(Buffer.from([1]), Buffer.alloc(limits.metaRecordBytesMax + 1))).toThrow(StoreLimitError);
    ov.putRaw(Buffer.alloc(limits.metaKeyBytesMax, 1), Buffer.alloc(10));
  });
});
