// bench/RESULTS.md holds the latest figures of several benchmarks; each owns one section between
// markers, so one benchmark's run replaces its own section and keeps the others'.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';

const begin = (name: string) => `<!-- section:${name} -->`;
const end = (name: string) => `<!-- /section:${name} -->`;

/** Replaces (or appends) section `name` of `file` with `body`. */
export function writeSection(file: string, name: string, body: string): void {
  const text = existsSync(file) ? readFileSync(file, 'utf8') : '';
  const block = `${begin(name)}\n${body.trimEnd()}\n${end(name)}\n`;
  const a = text.indexOf(begin(name));
  const b = text.indexOf(end(name));
  const next = a >= 0 && b > a ? text.slice(0, a) + block + text.slice(b + end(name).length + 1) : `${text.trimEnd()}\n\n${block}`;
  writeFileSync(file, next);
}

/** Every section of `file` except `name` (a benchmark that rewrites the file keeps the others). */
export function otherSections(file: string, name: string): string {
  if (!existsSync(file)) return '';
  const text = readFileSync(file, 'utf8');
  const out: string[] = [];
  const re = /<!-- section:([\w:-]+) -->\n[\s\S]*?<!-- \/section:\1 -->\n/g;
  for (const m of text.matchAll(re)) if (m[1] !== name) out.push(m[0]);
  return out.join('\n');
}
