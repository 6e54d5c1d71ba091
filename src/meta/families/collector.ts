// Commands of the collector of chunked shares (src/ios/chunked/collector.ts): deleting unreferenced
// objects in two steps, and rewriting fragmented ranges under a compare-and-swap guard.
//
// Deleting an object ('gc', o) — the order that keeps a map from ever pointing at a deleted object:
//   1. gc.claim moves ('gc', o) to ('gcx', o) if its record is still the one the collector judged old
//      enough (same `since`). From then on a command that would reference o again (a late ext.writev
//      of its segment) is refused 'stale' by applyRefs (extents.ts) instead of mapping it.
//   2. The collector deletes the claimed objects from the store.
//   3. gc.done drops the ('gcx', o) records of the objects the store deleted.
// A crash between the steps leaves claims; the next pass deletes them again (deletes are idempotent).
import { limits } from '../../base/limits.js';
import { ok, type Command, type HandlerTable, type ReadTx } from '../tx.js';
import { applyRefs, argObjectSizes, extentsIn, remap, type RefDeltas } from './extents.js';
import {
  Budget,
  argBytes,
  argId,
  argObjectKey,
  gcClaimKey,
  gcKey,
  getFork,
  guarded,
  refuse,
  type GcRecord,
  type MappedExtent,
} from './ns-records.js';

/**
 * True if the extents of `fork` overlapping [expect[0].offset, end of the last expected extent) are
 * exactly `expect` (as stored, in order): ext.rewrite's guard, also asked by the collector before it
 * puts a compaction segment that would only be refused.
 */
export function extentsAre(tx: ReadTx, fork: number, expect: readonly MappedExtent[]): boolean {
  if (expect.length === 0) return false;
  const start = expect[0]!.offset;
  const end = endOf(expect[expect.length - 1]!);
  const cur = extentsIn(tx, fork, start, end - start, Math.min(expect.length + 1, limits.metaReadEntriesMax));
  return (
    cur.length === expect.length &&
    cur.every((c, i) => {
      const e = expect[i]!;
      return c.offset === e.offset && c.length === e.length && c.object === e.object && c.objectOffset === e.objectOffset;
    })
  );
}

export interface CollectorFamilyOptions {
  /** Extent records one command may touch (default limits.metaExtentsPerCommandMax; tests lower it). */
  extentsPerCommandMax?: number;
}

function argList(cmd: Command, field: string, max: number): unknown[] {
  const v = cmd[field];
  if (!Array.isArray(v) || v.length === 0) refuse('invalid', `${cmd.t}: ${field} must be a non-empty array`);
  if (v.length > max) refuse('limit', `${cmd.t}: ${v.length} ${field} exceed ${max}`);
  return v;
}

function argMapped(cmd: Command, v: unknown, at: string, withOffset = true): MappedExtent {
  if (typeof v !== 'object' || v === null) refuse('invalid', `${cmd.t}: ${at} must be an object`);
  const r = v as Record<string, unknown>;
  const offset = argBytes(cmd, `${at}.offset`, r.offset);
  const length = argBytes(cmd, `${at}.length`, r.length);
  if (length === 0) refuse('invalid', `${cmd.t}: ${at}.length must be > 0`);
  if (withOffset && offset + length > limits.metaFileBytesMax) refuse('limit', `${cmd.t}: ${at} ends beyond ${limits.metaFileBytesMax}`);
  const object = argObjectKey(cmd, `${at}.object`, r.object);
  const objectOffset = argBytes(cmd, `${at}.objectOffset`, r.objectOffset);
  return { offset, length, object, objectOffset };
}

const endOf = (e: { offset: number; length: number }): number => e.offset + e.length;

export function createCollectorHandlers(opts: CollectorFamilyOptions = {}): HandlerTable {
  const perCommand = opts.extentsPerCommandMax ?? limits.metaExtentsPerCommandMax;
  const objectsMax = limits.collectorGcObjectsPerCommand;

  return {
    /**
     * gc.claim { objects: [{ object, since }] } -> { claimed: string[] }: for each object whose ('gc')
     * record still has that `since`, the record becomes a claim ('gcx'): the object is being deleted
     * and no command may reference it again. Others (referenced again, or already claimed) are skipped.
     */
    'gc.claim': guarded((tx, cmd) => {
      const list = argList(cmd, 'objects', objectsMax);
      const claimed: string[] = [];
      list.forEach((v, i) => {
        if (typeof v !== 'object' || v === null) refuse('invalid', `${cmd.t}: objects[${i}] must be an object`);
        const r = v as Record<string, unknown>;
        const object = argObjectKey(cmd, `objects[${i}].object`, r.object);
        const since = argBytes(cmd, `objects[${i}].since`, r.since);
        const k = gcKey(object);
        const g = tx.get<GcRecord>(k);
        if (g === undefined || g.since !== since) return;
        tx.del(k);
        tx.put(gcClaimKey(object), g);
        claimed.push(object);
      });
      return ok({ claimed });
    }),

    /** gc.done { objects: string[] } -> { done }: drops the claims of objects deleted from the store. */
    'gc.done': guarded((tx, cmd) => {
      const list = argList(cmd, 'objects', objectsMax);
      let done = 0;
      list.forEach((v, i) => {
        const object = argObjectKey(cmd, `objects[${i}]`, v);
        const k = gcClaimKey(object);
        if (tx.get<GcRecord>(k) === undefined) return;
        tx.del(k);
        done++;
      });
      return ok({ done });
    }),

    /**
     * ext.rewrite { fork, expect: [{ offset, length, object, objectOffset }], writes: [...] } -> {}:
     * compaction. Applies only if the extents overlapping [expect[0].offset, end of the last expected
     * extent) are exactly `expect` (as stored, in order), else refuses 'stale' and changes nothing.
     * Each write must lie on bytes `expect` maps (holes stay holes); it maps them to the new object as
     * ext.writev does. The caller guarantees the new object holds the same bytes; the size is unchanged.
     */
    'ext.rewrite': guarded((tx, cmd) => {
      const fork = argId(cmd, 'fork');
      if (getFork(tx, fork) === undefined) refuse('not-found', `${cmd.t}: fork ${fork} does not exist`);
      const expect = argList(cmd, 'expect', perCommand).map((v, i) => argMapped(cmd, v, `expect[${i}]`));
      for (let i = 1; i < expect.length; i++) {
        if (expect[i]!.offset < endOf(expect[i - 1]!)) refuse('invalid', `${cmd.t}: expect must be sorted and disjoint`);
      }
      const writes = argList(cmd, 'writes', limits.metaExtentWritesPerBatchMax).map((v, i) => argMapped(cmd, v, `writes[${i}]`));
      // Every write on mapped bytes of `expect` (a sweep over the sorted expected extents).
      for (const [i, w] of writes.entries()) {
        let pos = w.offset;
        for (const e of expect) {
          if (endOf(e) <= pos) continue;
          if (e.offset > pos) break;
          pos = endOf(e);
          if (pos >= endOf(w)) break;
        }
        if (pos < endOf(w)) refuse('invalid', `${cmd.t}: writes[${i}] covers bytes expect does not map`);
      }
      if (!extentsAre(tx, fork, expect)) {
        refuse('stale', `${cmd.t}: the extents of fork ${fork} in [${expect[0]!.offset}, ${endOf(expect[expect.length - 1]!)}) changed`);
      }
      const budget = new Budget(perCommand);
      const deltas: RefDeltas = new Map();
      for (const w of writes) remap(tx, fork, w.offset, endOf(w), [w], budget, deltas, cmd.t);
      applyRefs(tx, deltas, argObjectSizes(cmd, perCommand));
      return ok();
    }),
  };
}

export const collectorHandlers: HandlerTable = createCollectorHandlers();
