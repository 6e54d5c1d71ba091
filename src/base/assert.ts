/** Invariant check for the hot path: cheap, and a failure is a programming error, never bad input. */
export function assert(cond: unknown, what: string): asserts cond {
  if (!cond) throw new AssertionFailed(what);
}

export class AssertionFailed extends Error {
  constructor(what: string) {
    super(`assertion failed: ${what}`);
    this.name = 'AssertionFailed';
  }
}
