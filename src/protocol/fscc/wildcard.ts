// Name matching for QUERY_DIRECTORY patterns: MS-FSA 2.1.4.4 "Algorithm for Determining if a
// FileName Is in an Expression" (the semantics of FsRtlIsNameInExpression), case-insensitive.
//
//   *  matches zero or more characters
//   ?  matches exactly one character
//   "  DOS_DOT: matches a period, or zero characters at the end of the name
//   >  DOS_QM: matches one character other than a period; at a period or the end of the name it
//      matches zero characters (so a run of them advances to its end)
//   <  DOS_STAR: matches zero or more characters, but never the final period of the name
//
// Implemented as a simulation of the pattern's NFA: O(|name| * |pattern|), no backtracking.

const STAR = 0x2a; // '*'
const QM = 0x3f; // '?'
const DOS_DOT = 0x22; // '"'
const DOS_QM = 0x3e; // '>'
const DOS_STAR = 0x3c; // '<'
const DOT = 0x2e; // '.'
const END = -1;

const WILDCARDS = /[*?"<>]/;

const upcaseCache = new Map<number, number>();

/** Upcases one UTF-16 code unit (characters whose uppercase is longer than one unit stay as is). */
function up(c: number): number {
  if (c < 0x80) return c >= 0x61 && c <= 0x7a ? c - 0x20 : c;
  let u = upcaseCache.get(c);
  if (u === undefined) {
    const s = String.fromCharCode(c).toUpperCase();
    u = s.length === 1 ? s.charCodeAt(0) : c;
    upcaseCache.set(c, u);
  }
  return u;
}

function upcaseUnits(s: string): Uint16Array {
  const out = new Uint16Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = up(s.charCodeAt(i));
  return out;
}

/** True when the pattern has any of the five wildcard characters (MS-FSA 2.1.4.3). */
export function hasWildcards(pattern: string): boolean {
  return WILDCARDS.test(pattern);
}

/** Case-insensitive equality of two names (same upcasing as matchPattern). */
export function namesEqual(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (up(a.charCodeAt(i)) !== up(b.charCodeAt(i))) return false;
  return true;
}

export function matchPattern(pattern: string, name: string): boolean {
  // Part 1: special cases (MS-FSA 2.1.4.4).
  if (name.length === 0) return pattern.length === 0;
  if (pattern.length === 0) return false;
  if (pattern === '*' || pattern === '*.*') return true;
  if (!hasWildcards(pattern)) return namesEqual(pattern, name);

  // Part 2: NFA simulation over pattern positions 0..m (m = accepted).
  const p = upcaseUnits(pattern);
  const n = upcaseUnits(name);
  const m = p.length;
  let lastDot = -1;
  for (let i = n.length - 1; i >= 0; i--) {
    if (n[i] === DOT) {
      lastDot = i;
      break;
    }
  }
  let cur = new Uint8Array(m + 1);
  let next = new Uint8Array(m + 1);
  const stack: number[] = [];

  // Adds the zero-length moves available before consuming character c (END at the end).
  const closure = (set: Uint8Array, c: number): void => {
    for (let i = 0; i <= m; i++) if (set[i]) stack.push(i);
    while (stack.length > 0) {
      const s = stack.pop()!;
      if (s >= m) continue;
      const e = p[s]!;
      const empty =
        e === STAR || e === DOS_STAR || (e === DOS_QM && (c === END || c === DOT)) || (e === DOS_DOT && c === END);
      if (empty && !set[s + 1]) {
        set[s + 1] = 1;
        stack.push(s + 1);
      }
    }
  };

  cur[0] = 1;
  for (let i = 0; i < n.length; i++) {
    const c = n[i]!;
    closure(cur, c);
    next.fill(0);
    let any = false;
    for (let s = 0; s < m; s++) {
      if (!cur[s]) continue;
      const e = p[s]!;
      let to = -1;
      if (e === STAR) to = s;
      else if (e === DOS_STAR) to = c !== DOT || i !== lastDot ? s : -1;
      else if (e === QM) to = s + 1;
      else if (e === DOS_QM) to = c !== DOT ? s + 1 : -1;
      else if (e === DOS_DOT) to = c === DOT ? s + 1 : -1;
      else to = e === c ? s + 1 : -1;
      if (to >= 0) {
        next[to] = 1;
        any = true;
      }
    }
    if (!any) return false;
    [cur, next] = [next, cur];
  }
  closure(cur, END);
  return cur[m] === 1;
}
