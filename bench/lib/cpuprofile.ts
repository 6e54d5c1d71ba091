// Summary of a V8 CPU profile (`node --cpu-prof`, the .cpuprofile JSON): where a server's main thread
// spent its samples, by area of the code (self time: a sample counts for the function on top of the
// stack) and by function. Used by `npm run bench:opens` to say where Tessera's time goes.

import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileShare {
  name: string;
  ms: number;
  pct: number;
}

export interface ProfileSummary {
  wallMs: number;
  /** Samples not idle: time the main thread was running JS, native code or GC. */
  busyMs: number;
  byArea: ProfileShare[];
  byFunction: ProfileShare[];
  /** Tessera's own functions (src/) by inclusive time: samples with the function anywhere on the stack. */
  byOwnInclusive: ProfileShare[];
  /** False when the window was not given or held no samples (then every sample is counted). */
  windowed: boolean;
}

/** Area of the code a frame belongs to, from its script URL. */
export function areaOf(url: string, functionName: string): string {
  if (functionName === '(idle)') return 'idle';
  if (functionName === '(garbage collector)') return 'garbage collector';
  if (functionName === '(program)') return 'native (program)';
  if (url === '') return 'native (builtins, C++)';
  if (url.includes('node_modules/')) {
    const mod = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url);
    return `node_modules/${mod ? mod[1] : '?'}`;
  }
  // Tessera's own code, compiled from src/AREA/*.ts to dist/AREA/*.js.
  const own = /\/(?:dist|src)\/([^/]+)\/[^/]+\.[jt]s$/.exec(url) ?? /\/(?:dist|src)\/([^/]+)\/.*\.[jt]s$/.exec(url);
  if (own) return `src/${own[1]}`;
  if (url.startsWith('node:')) {
    const m = /^node:internal\/([^/]+)/.exec(url);
    return `node:${m ? m[1] : url.slice(5)}`;
  }
  return 'other';
}

/**
 * Summary of the samples taken in `windowUs` (CLOCK_MONOTONIC µs, the clock of V8's profile timestamps
 * and of process.hrtime on Linux), or of all samples.
 */
export function summarizeProfile(file: string, windowUs?: [number, number], top = 15): ProfileSummary {
  const p = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map<number, ProfileNode>();
  const parent = new Map<number, number>();
  for (const n of p.nodes) {
    byId.set(n.id, n);
    for (const c of n.children ?? []) parent.set(c, n.id);
  }
  const selfUs = new Map<number, number>();
  // timeDeltas[i] is the time since the previous sample; it is spent in samples[i-1]'s stack.
  // Attributing delta i to sample i (as Chrome DevTools does) differs by one sample at most.
  let at = p.startTime;
  // A window no sample falls in means the clocks differ (not Linux?): count every sample then.
  const inWindow = windowUs !== undefined && p.startTime <= windowUs[1] && p.endTime >= windowUs[0];
  for (let i = 0; i < p.samples.length; i++) {
    const d = Math.max(0, p.timeDeltas[i] ?? 0);
    at += d;
    if (inWindow && (at < windowUs[0] || at > windowUs[1])) continue;
    selfUs.set(p.samples[i]!, (selfUs.get(p.samples[i]!) ?? 0) + d);
  }
  const areas = new Map<string, number>();
  const functions = new Map<string, number>();
  const inclusive = new Map<string, number>();
  const label = (n: ProfileNode): string => {
    const { functionName, url, lineNumber } = n.callFrame;
    const where = url === '' ? '' : ` ${url.replace(/^.*\/node_modules\//, '').replace(/^.*\/dist\//, 'src/').replace(/^file:\/\//, '')}:${lineNumber + 1}`;
    return `${functionName || '(anonymous)'}${where}`;
  };
  let total = 0;
  let idle = 0;
  for (const [id, us] of selfUs) {
    const n = byId.get(id);
    if (!n) continue;
    const area = areaOf(n.callFrame.url, n.callFrame.functionName);
    total += us;
    if (area === 'idle') {
      idle += us;
      continue;
    }
    areas.set(area, (areas.get(area) ?? 0) + us);
    const key = label(n);
    functions.set(key, (functions.get(key) ?? 0) + us);
    // Every Tessera function on this node's stack, once (recursion would count it twice otherwise).
    const seen = new Set<string>();
    for (let frame: number | undefined = id; frame !== undefined; frame = parent.get(frame)) {
      const f = byId.get(frame)!;
      if (!areaOf(f.callFrame.url, f.callFrame.functionName).startsWith('src/')) continue;
      const k = label(f);
      if (seen.has(k)) continue;
      seen.add(k);
      inclusive.set(k, (inclusive.get(k) ?? 0) + us);
    }
  }
  const busy = total - idle;
  const share = (m: Map<string, number>, n: number): ProfileShare[] =>
    [...m.entries()]
      .sort((x, y) => y[1] - x[1])
      .slice(0, n)
      .map(([name, us]) => ({ name, ms: us / 1000, pct: busy > 0 ? (100 * us) / busy : 0 }));
  return { wallMs: total / 1000, busyMs: busy / 1000, byArea: share(areas, 20), byFunction: share(functions, top), byOwnInclusive: share(inclusive, top), windowed: inWindow };
}
