// Slows down password guessing per client address: once an address has failed
// `logonFailuresPerWindowMax` logons within `logonFailureWindowMs`, each further attempt is delayed
// by `logonFailureDelayMs` until the window has slid past enough of those failures. Memory is bounded:
// at most `addressesMax` addresses are tracked and the least recently failed one is forgotten first.
import { assert } from '../base/assert.js';
import type { Clock } from '../base/clock.js';

/** Addresses tracked at most (not in limits.ts, which this module may not edit; see the report). */
export const THROTTLE_ADDRESSES_MAX = 65_536;

/** The three limits.ts entries the throttle uses (pass `limits` itself in production). */
export interface ThrottleLimits {
  readonly logonFailuresPerWindowMax: number;
  readonly logonFailureWindowMs: number;
  readonly logonFailureDelayMs: number;
}

export class LogonThrottle {
  /** Address -> monotonic times of its recent failures, oldest first (at most logonFailuresPerWindowMax). */
  private readonly failures = new Map<string, number[]>();

  constructor(
    private readonly limits: ThrottleLimits,
    private readonly clock: Clock,
    private readonly addressesMax: number = THROTTLE_ADDRESSES_MAX,
  ) {
    assert(limits.logonFailuresPerWindowMax >= 1, 'logonFailuresPerWindowMax >= 1');
    assert(limits.logonFailureWindowMs > 0 && limits.logonFailureDelayMs >= 0, 'throttle windows');
    assert(addressesMax >= 1, 'addressesMax >= 1');
  }

  /** Milliseconds the caller should wait before processing a logon from `address` (0: no delay). */
  delayMsFor(address: string): number {
    const times = this.recent(address);
    return times !== undefined && times.length >= this.limits.logonFailuresPerWindowMax ? this.limits.logonFailureDelayMs : 0;
  }

  recordFailure(address: string): void {
    const now = this.clock.monotonicMs();
    const times = this.recent(address) ?? [];
    times.push(now);
    // Only the newest `max` failures matter for the decision.
    if (times.length > this.limits.logonFailuresPerWindowMax) times.splice(0, times.length - this.limits.logonFailuresPerWindowMax);
    // Re-insert so Map order is "least recently failed first", then evict from the front.
    this.failures.delete(address);
    this.failures.set(address, times);
    while (this.failures.size > this.addressesMax) {
      const oldest = this.failures.keys().next().value as string;
      this.failures.delete(oldest);
    }
  }

  recordSuccess(address: string): void {
    this.failures.delete(address);
  }

  /** Number of addresses currently tracked (for tests and metrics). */
  get trackedAddresses(): number {
    return this.failures.size;
  }

  /** The failures of `address` still inside the window (pruning older ones), or undefined. */
  private recent(address: string): number[] | undefined {
    const times = this.failures.get(address);
    if (!times) return undefined;
    const horizon = this.clock.monotonicMs() - this.limits.logonFailureWindowMs;
    let drop = 0;
    while (drop < times.length && times[drop]! <= horizon) drop++;
    if (drop === times.length) {
      this.failures.delete(address);
      return undefined;
    }
    if (drop > 0) times.splice(0, drop);
    return times;
  }
}
