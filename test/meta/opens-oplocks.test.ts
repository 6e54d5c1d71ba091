// Oplock rules of the open table (src/meta/families/opens.ts): which operations break which
// oplocks, MS-FSA 2.1.4.12 as smbtorture smb2.oplock checks it against Windows.
import { describe, expect, it } from 'vitest';
import { create, Table } from './opens-harness.js';
import { FILE_READ_ATTRIBUTES, FILE_WRITE_ATTRIBUTES, SYNCHRONIZE, getOpen, planBreaks } from '../../src/meta/families/opens.js';


const ATTR_ONLY = FILE_READ_ATTRIBUTES | FILE_WRITE_ATTRIBUTES | SYNCHRONIZE;
type Notice = { openId: number; to: string; ackRequired: boolean };
const brief = (breaks: Notice[]) => breaks.map((b) => [b.openId, b.to, b.ackRequired]);
const level = (t: Table, openId: number) => getOpen(t.tx, openId)?.oplock;

describe('an operation through a level II open breaks that open too (MS-FSA 2.1.4.12, IIOplocks)', () => {
  it('a write breaks every level II holder to none, its own included, without acknowledgment', () => {
    const t = new Table();
    const a = t.ok(create({ oplock: 'II' }));
    const b = t.ok(create({ clientGuid: 'c2', oplock: 'II' }));
    expect([a.oplock, b.oplock]).toEqual(['II', 'II']);
    expect(planBreaks(t.tx, a.openId, 'read')).toBe(false); // a read breaks no level II
    expect(planBreaks(t.tx, a.openId, 'write')).toBe(true);
    const r = t.ok({ t: 'open.break', openId: a.openId, op: 'write', now: 1_100 });
    expect(brief(r.breaks)).toEqual([
      [a.openId, 'none', false],
      [b.openId, 'none', false],
    ]);
    expect(r.waitFor).toEqual([]);
    expect([level(t, a.openId), level(t, b.openId)]).toEqual(['none', 'none']);
    expect(planBreaks(t.tx, a.openId, 'write')).toBe(false);
  });

  it('an open alone with its level II oplock breaks itself on a write', () => {
    const t = new Table();
    const a = t.ok(create({ oplock: 'II' }));
    expect(a.oplock).toBe('II');
    expect(planBreaks(t.tx, a.openId, 'write')).toBe(true);
    expect(brief(t.ok({ t: 'open.break', openId: a.openId, op: 'write', now: 1_100 }).breaks)).toEqual([[a.openId, 'none', false]]);
  });

  it('a batch or exclusive oplock is never broken by its own open (2.1.4.12.2: same oplock key)', () => {
    const t = new Table();
    const a = t.ok(create({ oplock: 'batch' }));
    expect(a.oplock).toBe('batch');
    for (const op of ['read', 'write', 'handle'] as const) {
      expect(planBreaks(t.tx, a.openId, op)).toBe(false);
      expect(t.ok({ t: 'open.break', openId: a.openId, op, now: 1_100 }).breaks).toEqual([]);
    }
    const lock = t.ok({ t: 'lock.apply', openId: a.openId, locks: [{ offset: 0, length: 4, exclusive: true }], now: 1_200 });
    expect(lock.breaks).toEqual([]);
    expect(level(t, a.openId)).toBe('batch');
  });

  it('a disconnected resilient open loses its own level II without a notice, and stays open', () => {
    const t = new Table();
    const a = t.ok(create({ oplock: 'II' }));
    t.ok({ t: 'open.set-resilient', openId: a.openId, timeoutMs: 0 });
    expect(t.ok({ t: 'open.disconnect', openId: a.openId, now: 1_100 })).toMatchObject({ closed: false });
    const r = t.ok({ t: 'open.break', openId: a.openId, op: 'write', now: 1_200 });
    expect(r).toMatchObject({ breaks: [], waitFor: [], closed: [] });
    expect(getOpen(t.tx, a.openId)).toMatchObject({ oplock: 'none', state: 'disconnected' });
  });

  it('a byte-range lock through a level II open breaks it to none (MS-FSA 2.1.5.8)', () => {
    const t = new Table();
    const a = t.ok(create({ oplock: 'II' }));
    const lock = t.ok({ t: 'lock.apply', openId: a.openId, locks: [{ offset: 0, length: 4, exclusive: true }], now: 1_200 });
    expect(brief(lock.breaks)).toEqual([[a.openId, 'none', false]]);
    expect(level(t, a.openId)).toBe('none');
  });
});

describe('attribute-only opens (MS-FSA 2.1.4.12 case OPEN)', () => {
  it('break nothing when they open, but break a batch oplock to none when they overwrite; the opener then gets level II', () => {
    const t = new Table();
    const a = t.ok(create({ oplock: 'batch' }));
    const stat = t.ok(create({ clientGuid: 'c2', desiredAccess: ATTR_ONLY, oplock: 'batch' }));
    expect(stat.status).toBe('ok');
    expect(stat.breaks).toEqual([]);
    expect(stat.oplock).toBe('none'); // beside a batch oplock nothing can be granted
    expect(level(t, a.openId)).toBe('batch');

    const ow = t.ok(create({ clientGuid: 'c3', desiredAccess: ATTR_ONLY, overwrite: true, oplock: 'II' }));
    expect(ow.status).toBe('break-required');
    expect(brief(ow.breaks)).toEqual([[a.openId, 'none', true]]);
    t.ok({ t: 'oplock.ack', openId: a.openId, level: 'none', now: 1_300 });
    const again = t.ok(create({ clientGuid: 'c3', desiredAccess: ATTR_ONLY, overwrite: true, oplock: 'II' }));
    expect([again.status, again.oplock]).toEqual(['ok', 'II']);
  });

  it('an overwriting attribute-only open breaks level II holders to none', () => {
    const t = new Table();
    const a = t.ok(create({ oplock: 'II' }));
    const ow = t.ok(create({ clientGuid: 'c2', desiredAccess: ATTR_ONLY, overwrite: true }));
    expect(ow.status).toBe('ok');
    expect(brief(ow.breaks)).toEqual([[a.openId, 'none', false]]);
  });
});

describe('handle breaks (rename, delete: MS-FSA 2.1.4.12 case SET_INFORMATION)', () => {
  it('break another open\'s batch oplock to none and wait for it; level II holders keep their oplock', () => {
    const t = new Table();
    const a = t.ok(create({ oplock: 'batch' }));
    const b = t.ok(create({ clientGuid: 'c2', desiredAccess: ATTR_ONLY }));
    expect(planBreaks(t.tx, b.openId, 'handle')).toBe(true);
    const r = t.ok({ t: 'open.break', openId: b.openId, op: 'handle', now: 1_100 });
    expect(brief(r.breaks)).toEqual([[a.openId, 'none', true]]);
    expect(r.waitFor).toEqual([{ kind: 'oplock', openId: a.openId }]);

    const u = new Table();
    const x = u.ok(create({ oplock: 'II' }));
    const y = u.ok(create({ clientGuid: 'c2', oplock: 'II' }));
    expect(planBreaks(u.tx, y.openId, 'handle')).toBe(false);
    expect(u.ok({ t: 'open.break', openId: y.openId, op: 'handle', now: 1_100 }).breaks).toEqual([]);
    expect(level(u, x.openId)).toBe('II');
  });
});
