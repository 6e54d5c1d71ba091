// Property: random command streams (with re-sent duplicates, leftovers of superseded incarnations,
// restarts, junk entries, refused and throwing commands) applied to a memory store and to an LMDB
// store give the same results, the same changed keys and the same state hash after every batch;
// no (node, incarnation, seq) is ever applied twice; a snapshot restores to the same hash.
import { afterAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { RECORD_VERSION } from '../../src/meta/codec.js';
import { key } from '../../src/meta/keys.js';
import type { Command } from '../../src/meta/tx.js';
import { chunked, collect, entry, join, machine, makeStore, TempDirs } from './sm-helpers.js';

const dirs = new TempDirs();
afterAll(() => dirs.cleanup());

const NODES = ['a', 'b', 'c'] as const;
const KEYS = ['k1', 'k2', 'k3', 'k4'];

const command: fc.Arbitrary<Command> = fc.oneof(
  fc.record({ t: fc.constant('kv.put'), k: fc.constantFrom(...KEYS), v: fc.oneof(fc.integer(), fc.string({ maxLength: 8 })) }),
  fc.record({ t: fc.constant('kv.del'), k: fc.constantFrom(...KEYS) }),
  fc.record({ t: fc.constant('kv.inc'), k: fc.constantFrom(...KEYS) }),
  fc.record({ t: fc.constant('kv.putThenFail'), k: fc.constantFrom(...KEYS) }),
  fc.record({ t: fc.constant('kv.putThenThrow'), k: fc.constantFrom(...KEYS) }),
  fc.record({ t: fc.constant('kv.list') }),
  fc.record({ t: fc.constant('share.put'), name: fc.constantFrom('vms', 'VMS', 'Data'), config: fc.record({ ro: fc.boolean() }) }),
  fc.record({ t: fc.constant('share.delete'), name: fc.constantFrom('vms', 'data') }),
  fc.record({ t: fc.constant('node.expire'), node: fc.constantFrom(...NODES), now: fc.integer({ min: 0, max: 50_000 }) }),
  fc.record({ t: fc.constant('no.such.command') }),
);

type Op =
  | { op: 'cmd'; node: number; cmd: Command; lag: number }
  | { op: 'restart'; node: number }
  | { op: 'resend'; pick: number }
  | { op: 'old'; node: number; cmd: Command }
  | { op: 'junk'; bytes: Uint8Array }
  | { op: 'cut'; skip: number };

const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 10, arbitrary: fc.record({ op: fc.constant('cmd' as const), node: fc.nat(2), cmd: command, lag: fc.nat(4) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('restart' as const), node: fc.nat(2) }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('resend' as const), pick: fc.nat() }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('old' as const), node: fc.nat(2), cmd: command }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('junk' as const), bytes: fc.uint8Array({ maxLength: 12 }) }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('cut' as const), skip: fc.nat(2) }) },
);

/** Turns ops into log batches, as a set of proposers (with retries and restarts) would. */
function toBatches(ops: Op[]): { position: number; entries: Buffer[] }[] {
  const inc = [0, 0, 0];
  const seq = [0, 0, 0];
  const sent: Buffer[] = [];
  const out: { position: number; entries: Buffer[] }[] = [];
  let cur: Buffer[] = [];
  let pos = 0;
  const push = (e: Buffer) => {
    cur.push(e);
    sent.push(e);
  };
  const cut = (skip: number) => {
    if (cur.length === 0) return;
    pos += 1 + skip;
    out.push({ position: pos, entries: cur });
    cur = [];
  };
  const joinNode = (n: number) => {
    inc[n]!++;
    seq[n] = 0;
    if (n === 0 && inc[n] === 1) push(entry('a', 1, ++seq[n]!, { t: 'cluster.init', clusterId: 'prop', recordVersion: RECORD_VERSION }, 1));
    push(join(NODES[n]!, inc[n]!, ++seq[n]!, 1000 * inc[n]!, 5000));
  };
  for (const o of ops) {
    switch (o.op) {
      case 'cmd': {
        if (inc[o.node] === 0) joinNode(o.node);
        const s = ++seq[o.node]!;
        push(entry(NODES[o.node]!, inc[o.node]!, s, o.cmd, Math.max(0, s - o.lag)));
        break;
      }
      case 'restart':
        joinNode(o.node);
        break;
      case 'resend':
        if (sent.length > 0) push(sent[o.pick % sent.length]!);
        break;
      case 'old':
        if (inc[o.node]! > 1) push(entry(NODES[o.node]!, inc[o.node]! - 1, 1_000_000 + seq[o.node]!, o.cmd, 0));
        break;
      case 'junk':
        push(Buffer.from(o.bytes));
        break;
      case 'cut':
        cut(o.skip);
        break;
    }
  }
  cut(0);
  return out;
}

describe('state machine determinism (property)', () => {
  it('memory and LMDB stores agree after every batch; nothing is applied twice', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 30, maxLength: 200, size: 'max' }), async (ops) => {
        const batches = toBatches(ops);
        const mem = makeStore('memory', dirs);
        const lm = makeStore('lmdb', dirs);
        const other = makeStore('lmdb', dirs);
        try {
          const a = machine(mem);
          const b = machine(lm);
          const applied = new Set<string>();
          let incs = 0;
          for (const bt of batches) {
            const ra = a.applyBatch(bt);
            const rb = b.applyBatch(bt);
            expect(rb).toEqual(ra);
            expect(b.hash()).toBe(a.hash());
            for (const r of ra.results) {
              if (r.result === 'duplicate' || r.result === 'stale' || r.node === '') continue;
              const id = `${r.node}/${r.inc}/${r.seq}`;
              expect(applied.has(id)).toBe(false);
              applied.add(id);
            }
            incs += ra.results.filter((r, i) => typeof r.result === 'object' && r.result.ok && isInc(bt.entries[i]!)).length;
          }
          // Every ok kv.inc ran exactly once: the counters add up.
          const total = a.read((tx) => [...tx.range<{ n: number }>(key('ctr'))].reduce((s, [, v]) => s + v.n, 0));
          expect(total).toBe(incs);
          // A snapshot of one store restores to the same hash in a fresh store of the other kind.
          const fresh = machine(other);
          await fresh.restore(chunked(await collect(a.snapshot().data), [97, 4096]));
          expect(fresh.hash()).toBe(b.hash());
        } finally {
          await mem.close();
          await lm.close();
          await other.close();
        }
      }),
      // Bounded even when a failure shrinks slowly (each run opens LMDB stores).
      { numRuns: 40, interruptAfterTimeLimit: 60_000, markInterruptAsFailure: true },
    );
  });
});

function isInc(bytes: Uint8Array): boolean {
  return Buffer.from(bytes).includes(Buffer.from('kv.inc'));
}
