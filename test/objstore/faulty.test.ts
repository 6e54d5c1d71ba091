import { describe, expect, it } from 'vitest';
import { TesseraError } from '../../src/base/errors.js';
import { FaultyStore, mulberry32, type FaultEvent, type FaultMix } from '../../src/objstore/faulty.js';
import { MemoryObjectStore } from '../../src/objstore/memory.js';
import { ObjStoreError, type ObjStoreErrorCode } from '../../src/objstore/spi.js';
import { runObjStoreConformance } from './conformance.js';

// With no faults configured the wrapper must be transparent: the whole contract holds through it.
runObjStoreConformance('faulty(memory) without faults', async () => ({
  store: new FaultyStore(new MemoryObjectStore(), { seed: 3 }),
  cleanup: async () => undefined,
}));

const b = (s: string): Buffer => Buffer.from(s);

async function codeOf(p: Promise<unknown>): Promise<ObjStoreErrorCode | 'ok'> {
  try {
    await p;
    return 'ok';
  } catch (e) {
    if (e instanceof ObjStoreError) return e.code;
    throw e;
  }
}

/** A faulty store over memory whose latency is recorded, not waited for. */
function setup(seed: number, faults: FaultMix): { inner: MemoryObjectStore; s: FaultyStore; events: FaultEvent[]; sleeps: number[] } {
  const inner = new MemoryObjectStore();
  const events: FaultEvent[] = [];
  const sleeps: number[] = [];
  const s = new FaultyStore(inner, {
    seed,
    faults,
    sleep: async (ms) => {
      sleeps.push(ms);
    },
    onFault: (e) => events.push(e),
  });
  return { inner, s, events, sleeps };
}

const MIX: FaultMix = {
  all: { unavailable: 0.2, latencyMs: [0, 5] },
  put: { ambiguous: 0.2 },
  copy: { ambiguous: 0.3 },
  deleteMany: { ambiguous: 0.1 },
  deleteKeyFailure: 0.25,
};

/** A fixed workload, partly concurrent; returns each operation's outcome in call order. */
async function workload(s: FaultyStore): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < 60; i++) {
    out.push(`put ${await codeOf(s.put(`k${i % 20}`, b(`v${i}`)))}`);
    out.push(`get ${await codeOf(s.get(`k${(i * 7) % 20}`))}`);
    if (i % 5 === 0) out.push(`copy ${await codeOf(s.copy(`k${i % 20}`, `c${i}`))}`);
    if (i % 10 === 9) {
      const r = await s.deleteMany(Array.from({ length: 8 }, (_, j) => `k${(i + j) % 20}`)).catch((e: ObjStoreError) => e);
      out.push(r instanceof ObjStoreError ? `delete ${r.code}` : `delete ${r.deleted.length}/${r.errors.map((e) => e.key).join(',')}`);
    }
  }
  // Concurrent calls: the schedule follows call order, not completion order.
  const all = await Promise.all(Array.from({ length: 20 }, (_, i) => codeOf(i % 2 ? s.head(`k${i}`) : s.list('k'))));
  out.push(`concurrent ${all.join(',')}`);
  return out;
}

describe('FaultyStore', () => {
  it('the injected faults follow the seed: same seed, same run; another seed, another run', async () => {
    const r1 = setup(42, MIX);
    const r2 = setup(42, MIX);
    const r3 = setup(43, MIX);
    const o1 = await workload(r1.s);
    const o2 = await workload(r2.s);
    const o3 = await workload(r3.s);
    expect(o2).toEqual(o1);
    expect(r2.events).toEqual(r1.events);
    expect(r2.sleeps).toEqual(r1.sleeps);
    expect(r2.s.counters()).toEqual(r1.s.counters());
    expect(o3).not.toEqual(o1);
    // The mix was really exercised.
    const c = r1.s.counters();
    expect(c.put.unavailable).toBeGreaterThan(0);
    expect(c.put.ambiguous).toBeGreaterThan(0);
    expect(c.get.unavailable).toBeGreaterThan(0);
    expect(c.deleteMany.keysFailed).toBeGreaterThan(0);
    expect(c.get.ambiguous).toBe(0); // reads are never ambiguous
    expect(c.put.calls).toBe(60);
    // Rates near the configured probabilities (60 puts + 60 gets + 12 copies + 6 deletes + 20).
    const calls = Object.values(c).reduce((n, x) => n + x.calls, 0);
    const unavailable = Object.values(c).reduce((n, x) => n + x.unavailable, 0);
    expect(unavailable / calls).toBeGreaterThan(0.08);
    expect(unavailable / calls).toBeLessThan(0.35);
  });

  it('an injected random function replaces the seed', async () => {
    const mk = (): FaultyStore => new FaultyStore(new MemoryObjectStore(), { random: mulberry32(9), faults: MIX, sleep: async () => undefined });
    expect(await workload(mk())).toEqual(await workload(mk()));
  });

  it('every call draws the same randoms: changing one probability does not shift the rest of the run', async () => {
    const r1 = setup(5, MIX);
    const r2 = setup(5, { ...MIX, put: {}, copy: { ambiguous: 0 }, deleteKeyFailure: 0 });
    await workload(r1.s);
    await workload(r2.s);
    expect(r2.sleeps).toEqual(r1.sleeps);
    const unavailable = (ev: FaultEvent[]): number[] => ev.filter((e) => e.fault === 'unavailable').map((e) => e.call);
    expect(unavailable(r2.events)).toEqual(unavailable(r1.events));
  });

  it("'unavailable' happens before the operation: the store is untouched", async () => {
    const { inner, s } = setup(1, { all: { unavailable: 1 } });
    await inner.put('there', b('x'));
    expect(await codeOf(s.put('k', b('v')))).toBe('unavailable');
    expect(await codeOf(s.copy('there', 'copied'))).toBe('unavailable');
    expect(await codeOf(s.deleteMany(['there']))).toBe('unavailable');
    expect(await codeOf(s.get('there'))).toBe('unavailable');
    expect(await inner.head('k')).toBeUndefined();
    expect(await inner.head('copied')).toBeUndefined();
    expect(await inner.head('there')).toBeDefined();
    expect(s.counters().put).toMatchObject({ calls: 1, unavailable: 1 });
  });

  it("'ambiguous' comes after the effect: the write really happened", async () => {
    const { inner, s, events } = setup(1, { put: { ambiguous: 1 }, copy: { ambiguous: 1 }, deleteMany: { ambiguous: 1 }, get: { ambiguous: 1 } });
    expect(await codeOf(s.put('k', b('value')))).toBe('ambiguous');
    expect((await inner.get('k')).toString()).toBe('value');
    expect(await codeOf(s.copy('k', 'k2'))).toBe('ambiguous');
    expect((await inner.get('k2')).toString()).toBe('value');
    expect(await codeOf(s.deleteMany(['k']))).toBe('ambiguous');
    expect(await inner.head('k')).toBeUndefined();
    // A write that failed in the store is hidden behind the ambiguity too (the reply was lost)...
    expect(await codeOf(s.put('k2', b('again'), { ifNoneMatch: '*' }))).toBe('ambiguous');
    expect((await inner.get('k2')).toString()).toBe('value');
    // ...but not a rejection decided before any I/O.
    expect(await codeOf(s.put('../bad', b('x')))).toBe('invalid');
    // Reads are never ambiguous.
    expect((await s.get('k2')).toString()).toBe('value');
    expect(events.map((e) => `${e.op}:${e.fault}`)).toEqual(['put:ambiguous', 'copy:ambiguous', 'deleteMany:ambiguous', 'put:ambiguous']);
  });

  it('partial deleteMany: keys reported failed are left in place, the others are gone', async () => {
    const { inner, s, events } = setup(11, { deleteKeyFailure: 0.5 });
    const keys = Array.from({ length: 100 }, (_, i) => `d/${i}`);
    for (const k of keys) await inner.put(k, b(k));
    const r = await s.deleteMany(keys);
    expect(r.deleted.length + r.errors.length).toBe(100);
    expect(r.errors.length).toBeGreaterThan(25);
    expect(r.errors.length).toBeLessThan(75);
    for (const e of r.errors) {
      expect(e.code).toBe('unavailable');
      expect(await inner.head(e.key)).toBeDefined();
    }
    for (const k of r.deleted) expect(await inner.head(k)).toBeUndefined();
    expect(s.counters().deleteMany.keysFailed).toBe(r.errors.length);
    expect(events.filter((e) => e.fault === 'key-failed').map((e) => e.detail)).toEqual(r.errors.map((e) => e.key));
    // A retry of the failed keys eventually deletes them all.
    let left = r.errors.map((e) => e.key);
    for (let i = 0; i < 20 && left.length > 0; i++) left = (await s.deleteMany(left)).errors.map((e) => e.key);
    expect(left).toEqual([]);
    expect(inner.stats().objects).toBe(0);
    // Bad keys are refused before any fault is drawn.
    expect(await codeOf(s.deleteMany(['ok', '/bad']))).toBe('invalid');
  });

  it('latency: drawn in the configured range, waited for before the operation', async () => {
    const { s, sleeps } = setup(2, { all: { latencyMs: [3, 9] }, head: { latencyMs: [0, 0] } });
    for (let i = 0; i < 50; i++) await s.put(`k${i}`, b('x'));
    for (let i = 0; i < 10; i++) await s.head(`k${i}`);
    expect(sleeps.length).toBe(50);
    for (const ms of sleeps) {
      expect(ms).toBeGreaterThanOrEqual(3);
      expect(ms).toBeLessThanOrEqual(9);
    }
    const c = s.counters();
    expect(c.put.delayed).toBe(50);
    expect(c.put.delayMs).toBeCloseTo(sleeps.reduce((a, x) => a + x, 0), 6);
    expect(c.head.delayed).toBe(0);
    // With the real timer, the wait really happens.
    const real = new FaultyStore(new MemoryObjectStore(), { faults: { all: { latencyMs: [30, 30] } } });
    const t0 = performance.now();
    await real.put('k', b('x'));
    expect(performance.now() - t0).toBeGreaterThanOrEqual(25);
  });

  it('setFaults changes the mix mid-run; bad mixes are refused', async () => {
    const { s } = setup(4, { put: { unavailable: 1 } });
    expect(await codeOf(s.put('k', b('1')))).toBe('unavailable');
    s.setFaults({});
    expect(await codeOf(s.put('k', b('2')))).toBe('ok');
    s.setFaults({ get: { unavailable: 1 } });
    expect(await codeOf(s.put('k', b('3')))).toBe('ok');
    expect(await codeOf(s.get('k'))).toBe('unavailable');
    expect(s.counters().put).toMatchObject({ calls: 3, unavailable: 1 });
    for (const bad of [{ all: { unavailable: 1.5 } }, { put: { ambiguous: -0.1 } }, { get: { latencyMs: [5, 1] as const } }, { deleteKeyFailure: Number.NaN }]) {
      expect(() => s.setFaults(bad)).toThrow(TesseraError);
    }
    expect(await codeOf(s.get('k'))).toBe('unavailable'); // the refused mixes did not replace the last good one
  });

  it('kind names the wrapped store; close closes it and later calls are closed', async () => {
    const { inner, s } = setup(1, { all: { unavailable: 1 } });
    expect(s.kind).toBe('faulty(memory)');
    await s.close();
    expect(await codeOf(s.get('k'))).toBe('closed'); // not an injected fault
    expect(await codeOf(inner.get('k'))).toBe('closed');
  });
});
