// Paired rounds: the Chunked-RGW target and its raw-S3 baseline measured alternately on the same
// RGW, seconds apart, several times; each round gives one ratio and the report shows their median.
//
// Why: on this machine one RGW's throughput drifts by up to 2x within minutes (its memstore OSD
// grows, RGW frees overwritten tails a minute later, two cores are shared with everything else).
// Raw 8 MiB puts at 2 in flight were seen at 107 to 236 MiB/s on fresh RGWs in one session. A ratio
// of two single figures taken minutes apart then says more about the drift than about the target;
// a ratio of figures taken back to back, repeated, does not. The order alternates (baseline first
// in odd rounds, target first in even ones) so that a trend within a round favours neither side.

export interface PairedRound {
  round: number;
  /** Which side ran first in this round. */
  first: 'target' | 'baseline';
  target: number | null;
  baseline: number | null;
  /** target / baseline, when both ran. */
  ratio: number | null;
  /** Why a side has no figure. */
  error?: string;
}

/** What a paired comparison measures (shown with its results). */
export interface PairedSpec {
  id: string;
  label: string;
  /** Unit of target and baseline (MiB/s, ops/s). */
  unit: string;
  targetLabel: string;
  baselineLabel: string;
  aim: string;
  /** What the figures are, shown under the rounds. */
  notes: string[];
}

export interface PairedResult extends PairedSpec {
  rounds: PairedRound[];
  /** Over the rounds where both sides ran; null when none did. */
  median: number | null;
  min: number | null;
  max: number | null;
}

export interface PairedCase extends PairedSpec {
  /** Each returns the figure of one run (higher is better), or throws with the reason. */
  target: () => Promise<number>;
  baseline: () => Promise<number>;
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

const reason = (e: unknown): string => ((e instanceof Error ? e.message : String(e)).split('\n')[0] ?? 'failed').slice(0, 200);

/** Runs `rounds` rounds of c (a failed side leaves that round without a ratio; the others still run). */
export async function runPaired(c: PairedCase, rounds: number, log: (msg: string) => void): Promise<PairedResult> {
  if (!Number.isInteger(rounds) || rounds < 1) throw new RangeError('runPaired: rounds must be a positive integer');
  const out: PairedRound[] = [];
  for (let i = 1; i <= rounds; i++) {
    const first: PairedRound['first'] = i % 2 === 1 ? 'baseline' : 'target';
    const r: PairedRound = { round: i, first, target: null, baseline: null, ratio: null };
    const errors: string[] = [];
    const side = async (which: 'target' | 'baseline'): Promise<void> => {
      try {
        const v = await c[which]();
        if (!Number.isFinite(v) || v < 0) throw new Error(`not a rate: ${v}`);
        r[which] = v;
      } catch (e) {
        errors.push(`${which}: ${reason(e)}`);
      }
    };
    await side(first);
    await side(first === 'baseline' ? 'target' : 'baseline');
    if (r.target !== null && r.baseline !== null && r.baseline > 0) r.ratio = r.target / r.baseline;
    if (errors.length > 0) r.error = errors.join('; ');
    out.push(r);
    log(`  paired ${c.id} round ${i}: target ${r.target?.toFixed(1) ?? '-'}, baseline ${r.baseline?.toFixed(1) ?? '-'} ${c.unit}${r.ratio !== null ? `, ${r.ratio.toFixed(2)}x` : ''}${r.error ? ` (${r.error})` : ''}`);
  }
  const ratios = out.flatMap((r) => (r.ratio !== null ? [r.ratio] : []));
  const { target: _t, baseline: _b, ...spec } = c;
  return {
    ...spec,
    rounds: out,
    median: ratios.length > 0 ? median(ratios) : null,
    min: ratios.length > 0 ? Math.min(...ratios) : null,
    max: ratios.length > 0 ? Math.max(...ratios) : null,
  };
}

const fmt = (v: number | null): string => (v === null ? '-' : v >= 100 ? v.toFixed(0) : v.toFixed(1));

/** The paired results as markdown: one summary table, then every round. */
export function renderPaired(results: readonly PairedResult[]): string {
  if (results.length === 0) return '';
  const lines = [
    '#### Paired rounds on the Chunked-RGW target\'s own RGW',
    '',
    '| comparison | median ratio | min / max | rounds with both sides | aim |',
    '|---|---:|---:|---:|---:|',
  ];
  for (const p of results) {
    const both = p.rounds.filter((r) => r.ratio !== null).length;
    lines.push(
      `| ${p.label} | ${p.median !== null ? `**${p.median.toFixed(2)}x**` : '-'} | ${p.min !== null && p.max !== null ? `${p.min.toFixed(2)}x / ${p.max.toFixed(2)}x` : '-'} | ${both} of ${p.rounds.length} | ${p.aim} |`,
    );
  }
  for (const p of results) {
    lines.push('', `${p.label}, each round (${p.unit}):`, '', `| round | first | ${p.targetLabel} | ${p.baselineLabel} | ratio |`, '|---:|---|---:|---:|---:|');
    for (const r of p.rounds) {
      lines.push(`| ${r.round} | ${r.first} | ${fmt(r.target)} | ${fmt(r.baseline)} | ${r.ratio !== null ? `${r.ratio.toFixed(2)}x` : `- (${(r.error ?? '').replace(/\|/g, '/').slice(0, 80)})`} |`);
    }
    if (p.notes.length > 0) lines.push('', ...p.notes.map((n) => `- ${n}`));
  }
  return lines.join('\n');
}
