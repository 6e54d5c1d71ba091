// Markdown rendering of the results: one table per workload, every target side by side (Samba first).

import { kindLabel, type Measure, type ServerKind, type Table } from './model.js';

function fmtValue(v: number, unit: string): string {
  if (unit === 'GiB/s') return v.toFixed(2);
  return Math.round(v).toLocaleString('en-US');
}

function fmtCpu(v: number, cpuUnit: string): string {
  if (cpuUnit.includes('s/GiB')) return v.toFixed(3);
  return v >= 100 ? v.toFixed(0) : v.toFixed(1);
}

function clean(s: string): string {
  const one = s.replace(/\s+/g, ' ').replace(/\|/g, '/').trim();
  return one.length > 90 ? `${one.slice(0, 87)}...` : one;
}

function cell(m: Measure | undefined, fmt: (v: number) => string, pick: (m: Measure) => number | null): string {
  if (m === undefined) return 'not run';
  const v = pick(m);
  if (v === null) return m.error !== undefined ? `FAILED: ${clean(m.error)}` : '-';
  return m.error !== undefined ? `${fmt(v)} (${clean(m.error)})` : fmt(v);
}

function ratio(t: Measure | undefined, s: Measure | undefined, pick: (m: Measure) => number | null): string {
  const a = t ? pick(t) : null;
  const b = s ? pick(s) : null;
  if (a === null || b === null || b === 0) return '-';
  return `${(a / b).toFixed(2)}x`;
}

export function renderTable(t: Table): string {
  // The first kind is the reference (Samba when measured); every other kind gets a ratio to it.
  const kinds = t.kinds;
  const ref = kinds[0];
  const others = kinds.slice(1);
  const refLabel = ref !== undefined ? kindLabel[ref] : '';
  const head = [
    'test',
    ...kinds.map((k) => `${kindLabel[k]} ${t.unit}`),
    ...others.map((k) => `${kindLabel[k]}/${refLabel} (higher is better)`),
    ...kinds.map((k) => `${kindLabel[k]} ${t.cpuUnit}`),
    ...others.map((k) => `CPU ${kindLabel[k]}/${refLabel} (lower is better)`),
  ];
  if (t.detailColumn) head.push(...kinds.map((k) => `${kindLabel[k]} ${t.detailColumn!.title}`));
  const lines = [`### ${t.title}`, '', `| ${head.join(' | ')} |`, `|${head.map((_, i) => (i === 0 ? '---' : '---:')).join('|')}|`];
  const value = (m: Measure): number | null => m.value;
  const cpu = (m: Measure): number | null => (m.value === null ? null : m.cpu);
  for (const row of t.rows) {
    const r = (k: ServerKind): Measure | undefined => row.results[k];
    const s = ref !== undefined ? r(ref) : undefined;
    const cols = [
      row.label,
      ...kinds.map((k) => cell(r(k), (v) => fmtValue(v, t.unit), value)),
      ...others.map((k) => ratio(r(k), s, value)),
      ...kinds.map((k) => {
        const m = r(k);
        return m && m.value !== null && m.cpu !== null ? fmtCpu(m.cpu, t.cpuUnit) : '-';
      }),
      ...others.map((k) => ratio(r(k), s, cpu)),
    ];
    if (t.detailColumn) {
      const d = t.detailColumn;
      cols.push(
        ...kinds.map((k) => {
          const m = r(k);
          return m && m.value !== null ? d.render(m) : '-';
        }),
      );
    }
    lines.push(`| ${cols.join(' | ')} |`);
  }
  if (t.notes.length > 0) lines.push('', ...t.notes.map((n) => `- ${n}`));
  return lines.join('\n');
}

export interface ReportHeader {
  date: string;
  command: string;
  tesseraStatus: string;
  machine: Record<string, string>;
  versions: Record<string, string>;
  params: Record<string, string>;
  /** Extra Markdown sections placed after the tables (raw S3 throughput). */
  extra?: string[];
}

export function renderResults(h: ReportHeader, tables: Table[]): string {
  const kv = (o: Record<string, string>): string[] => Object.entries(o).map(([k, v]) => `- ${k}: ${v}`);
  return [
    '# Tessera (posix and chunked shares) vs Samba: side-by-side benchmark',
    '',
    `Run ${h.date} with \`${h.command}\`. Every target ran on this machine in the same run, one after the other`,
    'for every workload (never at the same time); Samba and the posix driver share directories on the same file system,',
    'the chunked shares keep their objects and metadata log there too (or in the RGW\'s memstore OSD). See bench/README.md',
    'for what every figure means.',
    '',
    `**Tessera: ${h.tesseraStatus}**`,
    '',
    '## Machine',
    ...kv(h.machine),
    '',
    '## Versions',
    ...kv(h.versions),
    '',
    '## Parameters',
    ...kv(h.params),
    '',
    '## Results',
    '',
    ...tables.flatMap((t) => [renderTable(t), '']),
    ...(h.extra ?? []).flatMap((x) => [x.trimEnd(), '']),
  ].join('\n');
}
