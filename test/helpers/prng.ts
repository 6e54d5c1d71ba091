// Seeded pseudo-random numbers for simulations: one seed reproduces a run (mulberry32).
export class Prng {
  private s: number;
  readonly seed: number;
  constructor(seed: number) {
    this.seed = seed >>> 0;
    this.s = this.seed || 0x9e3779b9;
  }
  /** Uniform in [0, 1). */
  next(): number {
    let t = (this.s = (this.s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** Integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  /** Integer in [lo, hi]. */
  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)]!;
  }
}

/** Seeds for a simulation run: SIM_SEED=n reproduces one; otherwise `count` seeds from a base. */
export function simSeeds(count: number, base = 1000): number[] {
  const env = process.env.SIM_SEED;
  if (env !== undefined && env !== '') return [Number(env)];
  return Array.from({ length: count }, (_, i) => base + i);
}
