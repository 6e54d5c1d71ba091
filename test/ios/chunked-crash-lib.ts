// Shared pieces of the chunked crash test (chunked-crash.test.ts, chunked-crash-child.ts): the
// content of a write (a pure function of its seed and the absolute file offset, so any sub-range of
// any write can be regenerated without keeping it), the history the parent records from the child's
// output, and the check of a file's bytes against that history.
//
// The rule checked, byte by byte (evaluated per interval between write boundaries, where the set of
// writes covering a byte is constant). Events carry one global sequence number in the order the child
// printed them (`issue` before the write is handed to the driver, `ack` after it resolved, and the
// kill after the last line of a run), so "V issued after W was done" is a real-time fact:
//   - a write W is done at its ack, or, if never acknowledged, at the kill of its run (after a restart
//     nothing can apply it any more);
//   - W is superseded at byte b when an ACKNOWLEDGED write V covering b was issued after W was done
//     (V was ordered after W by the caller; V's answer promises V's bytes or newer ones);
//   - the byte must hold the content of some write covering it that is not superseded (acknowledged,
//     or in flight at a kill); zero is allowed only when no acknowledged write covers it.
// This is the brief's rule ("the most recent acknowledged write, or a write issued after that ack and
// not acknowledged") made exact for overlapping writes that were in flight together: of two
// concurrent overlapping writes either may win, whichever was acknowledged last.

export interface WriteRec {
  /** `<round>-<k>` */
  id: string;
  offset: number;
  length: number;
  seed: number;
  /** Global sequence of the issue line. */
  issued: number;
  /** Global sequence of the ack line, or of the kill of its run when never acknowledged. */
  done: number;
  acked: boolean;
}

/** murmur3's 32-bit finaliser. */
function fmix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** The bytes write `seed` puts at [offset, offset+length): word k of the file is fmix(seed', k). */
export function contentOf(seed: number, offset: number, length: number): Buffer {
  const first = Math.floor(offset / 4);
  const last = Math.ceil((offset + length) / 4);
  const words = new Uint32Array(last - first);
  const s = Math.imul(seed | 0, 0x9e3779b1) >>> 0;
  for (let k = first; k < last; k++) words[k - first] = fmix((s ^ Math.imul(k, 0x27d4eb2f)) >>> 0);
  const b = Buffer.from(words.buffer, words.byteOffset, words.byteLength);
  return b.subarray(offset - first * 4, offset - first * 4 + length);
}

/** A small deterministic generator (mulberry32). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface Interval {
  start: number;
  end: number;
  /** Indices (into the history) of the writes allowed to supply these bytes, most recently done first. */
  candidates: number[];
  /** Zero bytes are allowed (no acknowledged write covers the interval). */
  zeroOk: boolean;
}

/** Splits [0, end) at every write boundary and lists, per interval, the writes allowed to hold it. */
export function intervals(history: readonly WriteRec[], end: number): Interval[] {
  const cuts = new Set<number>([0, end]);
  const starts = new Map<number, number[]>();
  const ends = new Map<number, number[]>();
  history.forEach((w, i) => {
    cuts.add(w.offset);
    cuts.add(w.offset + w.length);
    (starts.get(w.offset) ?? starts.set(w.offset, []).get(w.offset)!).push(i);
    (ends.get(w.offset + w.length) ?? ends.set(w.offset + w.length, []).get(w.offset + w.length)!).push(i);
  });
  const points = [...cuts].filter((p) => p <= end).sort((a, b) => a - b);
  const active = new Set<number>();
  const out: Interval[] = [];
  for (let j = 0; j + 1 < points.length; j++) {
    const p = points[j]!;
    for (const i of ends.get(p) ?? []) active.delete(i);
    for (const i of starts.get(p) ?? []) active.add(i);
    let maxAckedIssue = -1;
    for (const i of active) if (history[i]!.acked) maxAckedIssue = Math.max(maxAckedIssue, history[i]!.issued);
    const candidates = [...active].filter((i) => history[i]!.done > maxAckedIssue).sort((a, b) => history[b]!.done - history[a]!.done);
    out.push({ start: p, end: points[j + 1]!, candidates, zeroOk: maxAckedIssue < 0 });
  }
  return out;
}

/** The bytes a file must hold at least (end of the last acknowledged write) and may hold at most. */
export function sizeBounds(history: readonly WriteRec[]): { min: number; max: number } {
  let min = 0;
  let max = 0;
  for (const w of history) {
    max = Math.max(max, w.offset + w.length);
    if (w.acked) min = Math.max(min, w.offset + w.length);
  }
  return { min, max };
}

export interface Mismatch {
  start: number;
  end: number;
  firstBad: number;
  candidates: string[];
  zeroOk: boolean;
}

/**
 * Checks `data` (the file's bytes from `base`) over the intervals inside [base, base+data.length);
 * bytes past `data` up to an interval's end are not looked at (the caller passes whole windows).
 */
export function checkWindow(
  history: readonly WriteRec[],
  ivs: readonly Interval[],
  base: number,
  data: Buffer,
  stats?: { fromUnacked: number; zero: number },
): Mismatch[] {
  const bad: Mismatch[] = [];
  const end = base + data.length;
  for (const iv of ivs) {
    const s = Math.max(iv.start, base);
    const e = Math.min(iv.end, end);
    if (e <= s) continue;
    const got = data.subarray(s - base, e - base);
    let matched = false;
    for (const i of iv.candidates) {
      const w = history[i]!;
      if (got.equals(contentOf(w.seed, s, e - s))) {
        matched = true;
        if (stats !== undefined && !w.acked) stats.fromUnacked += e - s;
        break;
      }
    }
    if (!matched && iv.zeroOk && isZero(got)) {
      matched = true;
      if (stats !== undefined) stats.zero += e - s;
    }
    if (!matched) {
      let firstBad = s;
      const first = iv.candidates[0];
      if (first !== undefined) {
        const want = contentOf(history[first]!.seed, s, e - s);
        let k = 0;
        while (k < got.length && got[k] === want[k]) k++;
        firstBad = s + k;
      }
      bad.push({
        start: s,
        end: e,
        firstBad,
        candidates: iv.candidates.map((i) => `${history[i]!.id}${history[i]!.acked ? '' : '(unacked)'}`),
        zeroOk: iv.zeroOk,
      });
    }
  }
  return bad;
}

function isZero(b: Buffer): boolean {
  for (let i = 0; i < b.length; i++) if (b[i] !== 0) return false;
  return true;
}
