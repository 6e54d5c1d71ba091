// Markdown rendering of the results: one table per workload, Samba and Tessera side by side.

import type { Measure, Table } from './model.js';

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
  const head = [
    'test',
    `Samba ${t.unit}`,
    `Tessera ${t.unit}`,
    'Tessera/Samba (higher is better)',
    `Samba ${t.cpuUnit}`,
    `Tessera ${t.cpuUnit}`,
    'CPU Tessera/Samba (lower is better)',
  ];
  if (t.detailColumn) head.push(`Samba ${t.detailColumn.title}`, `Tessera ${t.detailColumn.title}`);
  const lines = [`### ${t.title}`, '', `| ${head.join(' | ')} |`, `|${head.map((_, i) => (i === 0 ? '---' : '---:')).join('|')}|`];
  const value = (m: Measure): number | null => m.value;
  const cpu = (m: Measure): number | null => (m.value === null ? null : m.cpu);
  for (const row of t.rows) {
    const s = row.results.samba;
    const x = row.results.tessera;
    const cols = [
      row.label,
      cell(s, (v) => fmtValue(v, t.unit), value),
      cell(x, (v) => fmtValue(v, t.unit), value),
      ratio(x, s, value),
      s && s.value !== null && s.cpu !== null ? fmtCpu(s.cpu, t.cpuUnit) : '-',
      x && x.value !== null && x.cpu !== null ? fmtCpu(x.cpu, t.cpuUnit) : '-',
      ratio(x, s, cpu),
    ];
    if (t.detailColumn) {
      const d = t.detailColumn;
      cols.push(s && s.value !== null ? d.render(s) : '-', x && x.value !== null ? d.render(x) : '-');
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
}

export function renderResults(h: ReportHeader, tables: Table[]): string {
  const kv = (o: Record<string, string>): string[] => Object.entries(o).map(([k, v]) => `- ${k}: ${v}`);
  return [
    '# Tessera vs Samba: side-by-side benchmark',
    '',
    `Run ${h.date} with \`${h.command}\`. Both servers ran on this machine in the same run, one after the other`,
    'for every workload (never at the same time), sharing directories on the same file system. See bench/README.md',
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
  ].join('\n');
}
