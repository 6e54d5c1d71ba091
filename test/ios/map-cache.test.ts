// ExtentList (src/ios/chunked/map-cache.ts): the blocked sorted list the map cache keeps per fork,
// checked against a plain sorted array under random puts, replacements and removals.
import { describe, expect, it } from 'vitest';
import { ExtentList } from '../../src/ios/chunked/map-cache.js';
import type { MappedExtent } from '../../src/meta/families/ns-records.js';
import { Prng } from '../helpers/prng.js';

const ext = (offset: number, length: number, tag: number): MappedExtent => ({ offset, length, object: `o${tag}`, objectOffset: tag });

describe('ExtentList', () => {
  it('agrees with a sorted array under 20,000 random changes, through block splits and removals', () => {
    const rng = new Prng(7);
    const slot = 4096;
    const slots = 3000;
    // Disjoint extents: at most one per slot, each shorter than a slot.
    const model = new Map<number, MappedExtent>();
    const initial: MappedExtent[] = [];
    for (let s = 0; s < slots; s += 3) initial.push(ext(s * slot, 100 + (s % 7), s));
    for (const e of initial) model.set(e.offset, e);
    const list = new ExtentList(initial);
    const sorted = (): MappedExtent[] => [...model.values()].sort((a, b) => a.offset - b.offset);
    for (let step = 0; step < 20_000; step++) {
      const s = rng.int(slots);
      const at = s * slot;
      if (rng.int(3) === 0) {
        list.set(at, undefined);
        model.delete(at);
      } else {
        const e = ext(at, 1 + rng.int(slot - 1), step);
        list.set(at, e);
        model.set(at, e);
      }
      if (step % 500 === 0 || step === 19_999) {
        const want = sorted();
        expect(list.length).toBe(want.length);
        expect(list.toArray()).toEqual(want);
        for (let q = 0; q < 50; q++) {
          const from = rng.int(slots * slot);
          const end = from + rng.int(20 * slot);
          expect(list.overlapping(from, end)).toEqual(want.filter((x) => x.offset < end && x.offset + x.length > from));
        }
      }
    }
    // Everything removed: an empty list, and it fills again.
    for (const at of [...model.keys()]) list.set(at, undefined);
    expect(list.length).toBe(0);
    expect(list.overlapping(0, slots * slot)).toEqual([]);
    list.set(5, ext(5, 10, 1));
    expect(list.overlapping(0, 100)).toEqual([ext(5, 10, 1)]);
  });
});
