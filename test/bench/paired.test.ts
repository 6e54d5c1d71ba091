// The bench's paired rounds (bench/lib/paired.ts): the order alternates, each round's ratio comes
// from its own two figures, a failed side leaves its round without a ratio (the others still count),
// and the median is over the rounds that have one.
import { describe, expect, it } from 'vitest';
import { median, renderPaired, runPaired, type PairedCase } from '../../bench/lib/paired.js';

function spec(target: () => Promise<number>, baseline: () => Promise<number>): PairedCase {
  return { id: 't', label: 'T / B', unit: 'ops/s', targetLabel: 'T', baselineLabel: 'B', aim: '2x', notes: ['a note'], target, baseline };
}

describe('bench paired rounds', () => {
  it('alternates the order, pairs each round, and takes the median of the ratios', async () => {
    const calls: string[] = [];
    const targets = [300, 200, 500, 400];
    const baselines = [100, 100, 100, 200];
    let t = 0;
    let b = 0;
    const r = await runPaired(
      spec(
        async () => {
          calls.push('T');
          return targets[t++]!;
        },
        async () => {
          calls.push('B');
          return baselines[b++]!;
        },
      ),
      4,
      () => undefined,
    );
    expect(calls).toEqual(['B', 'T', 'T', 'B', 'B', 'T', 'T', 'B']);
    expect(r.rounds.map((x) => x.first)).toEqual(['baseline', 'target', 'baseline', 'target']);
    expect(r.rounds.map((x) => x.ratio)).toEqual([3, 2, 5, 2]);
    expect(r.median).toBe(2.5);
    expect([r.min, r.max]).toEqual([2, 5]);
    expect(r.notes).toEqual(['a note']);
    expect('target' in r).toBe(false);
    const md = renderPaired([r]);
    expect(md).toContain('| T / B | **2.50x** | 2.00x / 5.00x | 4 of 4 | 2x |');
    expect(md).toContain('| 3 | baseline | 500 | 100 | 5.00x |');
    expect(md).toContain('- a note');
  });

  it('a failed side leaves its round without a ratio; a rate that is not one is a failure', async () => {
    let n = 0;
    const r = await runPaired(
      spec(
        async () => {
          n++;
          if (n === 2) throw new Error('server gone\nsecond line');
          return n === 3 ? Number.NaN : 90;
        },
        async () => 30,
      ),
      3,
      () => undefined,
    );
    expect(r.rounds.map((x) => x.ratio)).toEqual([3, null, null]);
    expect(r.rounds[1]!.error).toBe('target: server gone');
    expect(r.rounds[2]!.error).toMatch(/target: not a rate/);
    expect(r.rounds[1]!.baseline).toBe(30);
    expect(r.median).toBe(3);
    expect(renderPaired([r])).toContain('1 of 3');
    const none = await runPaired(spec(async () => Promise.reject(new Error('x')), async () => 1), 1, () => undefined);
    expect([none.median, none.min, none.max]).toEqual([null, null, null]);
    await expect(runPaired(spec(async () => 1, async () => 1), 0, () => undefined)).rejects.toThrow(/rounds/);
    // A baseline of 0 gives no ratio (not Infinity), so it cannot become the median.
    const zero = await runPaired(spec(async () => 5, async () => 0), 1, () => undefined);
    expect(zero.rounds[0]!.ratio).toBeNull();
    expect(zero.median).toBeNull();
    expect(median([5, 1, 3])).toBe(3);
    expect(renderPaired([])).toBe('');
  });
});
