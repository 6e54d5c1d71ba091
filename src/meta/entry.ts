// The log entry envelope: one command per entry, with the proposer's identity so every node can
// fence (incarnation) and deduplicate (sequence, watermark) it the same way. The bytes are opaque to
// the log (src/log/spi.ts); this file is the only place that gives them a shape.
//
//   v  RECORD_VERSION of the proposer (a mismatch is fatal to the applier: MetaVersionError)
//   n  node id of the proposer
//   i  the proposer's incarnation (a new one per process start; older ones are fenced)
//   s  the proposer's sequence number of this entry (unique per (n, i))
//   w  watermark: every sequence number < w of this (n, i) is resolved (applied or abandoned)
//   c  the command
import { MalformedError, TesseraError } from '../base/errors.js';
import { limits } from '../base/limits.js';
import { pack, unpack, RECORD_VERSION } from './codec.js';
import type { Command } from './tx.js';

export interface Entry {
  /** RECORD_VERSION of the proposer. */
  v: number;
  /** Node id. */
  n: string;
  /** Node incarnation. */
  i: number;
  /** Proposer sequence number. */
  s: number;
  /** Watermark: every seq < w of this (n, i) is resolved. */
  w: number;
  /** The command. */
  c: Command;
}

/** Bytes that do not form an entry (junk, truncation, wrong field types). */
export class MalformedEntryError extends MalformedError {
  constructor(message: string) {
    super(`meta entry: ${message}`);
    this.name = 'MalformedEntryError';
  }
}

/**
 * An entry or snapshot written by a node of another record version. Fatal to the applier: it must
 * stop applying (skipping would make its state diverge from the nodes that understood the entry).
 */
export class MetaVersionError extends TesseraError {
  readonly found: number;
  constructor(found: number, what = 'entry') {
    super('TESSERA_INTERNAL', `meta ${what}: record version ${found}, this node runs ${RECORD_VERSION}`);
    this.found = found;
    this.name = 'MetaVersionError';
  }
}

const isSeq = (x: unknown): x is number => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;

/** Checks the shape of a decoded (or to-be-encoded) envelope; returns a reason or undefined. */
function shapeProblem(e: Record<string, unknown>): string | undefined {
  if (typeof e.n !== 'string' || e.n.length === 0 || e.n.length > limits.metaNodeIdLengthMax) return 'bad node id';
  if (e.n.includes('\0')) return 'node id contains NUL';
  if (!isSeq(e.i)) return 'bad incarnation';
  if (!isSeq(e.s)) return 'bad sequence number';
  if (!isSeq(e.w)) return 'bad watermark';
  const c = e.c;
  if (typeof c !== 'object' || c === null || Array.isArray(c)) return 'command is not an object';
  const t = (c as Record<string, unknown>).t;
  if (typeof t !== 'string' || t.length === 0 || t.length > limits.metaCommandNameLengthMax) return 'bad command name';
  return undefined;
}

export function encodeEntry(e: Entry): Buffer {
  if (typeof e !== 'object' || e === null) throw new MalformedEntryError('not an object');
  if (!isSeq(e.v)) throw new MalformedEntryError('bad version');
  const p = shapeProblem(e as unknown as Record<string, unknown>);
  if (p !== undefined) throw new MalformedEntryError(p);
  // Fixed field order: the same entry always gives the same bytes.
  return pack({ v: e.v, n: e.n, i: e.i, s: e.s, w: e.w, c: e.c });
}

/**
 * Decodes and validates an entry. Throws MalformedEntryError on junk, and MetaVersionError when the
 * bytes are an envelope of another record version (checked before the rest of the shape, whose
 * meaning may differ in that version).
 */
export function decodeEntry(bytes: Uint8Array): Entry {
  let raw: unknown;
  try {
    raw = unpack(bytes);
  } catch {
    // A fixed message: msgpackr's wording for the same bytes depends on its internal state, and
    // this result must be the same on every node.
    throw new MalformedEntryError('undecodable msgpack');
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw) || Buffer.isBuffer(raw) || raw instanceof Uint8Array) {
    throw new MalformedEntryError('not a map');
  }
  const e = raw as Record<string, unknown>;
  if (!isSeq(e.v)) throw new MalformedEntryError('bad version');
  if (e.v !== RECORD_VERSION) throw new MetaVersionError(e.v);
  const p = shapeProblem(e);
  if (p !== undefined) throw new MalformedEntryError(p);
  return { v: e.v, n: e.n as string, i: e.i as number, s: e.s as number, w: e.w as number, c: e.c as Command };
}
