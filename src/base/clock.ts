// Injectable clock and randomness so simulations and tests can replace them.
import { randomBytes } from 'node:crypto';

export interface Clock {
  /** Milliseconds since the Unix epoch. */
  nowMs(): number;
  /** Monotonic milliseconds for measuring intervals. */
  monotonicMs(): number;
}

export const systemClock: Clock = {
  nowMs: () => Date.now(),
  monotonicMs: () => performance.now(),
};

export interface Random {
  bytes(n: number): Buffer;
}

export const systemRandom: Random = { bytes: (n) => randomBytes(n) };

/** 100-ns intervals between 1601-01-01 and 1970-01-01 (Windows FILETIME epoch). */
export const FILETIME_UNIX_EPOCH = 116444736000000000n;

/** Unix nanoseconds to Windows FILETIME (100 ns units since 1601). */
export function unixNsToFiletime(ns: bigint): bigint {
  return ns / 100n + FILETIME_UNIX_EPOCH;
}

/** Windows FILETIME to Unix nanoseconds. */
export function filetimeToUnixNs(ft: bigint): bigint {
  return (ft - FILETIME_UNIX_EPOCH) * 100n;
}
