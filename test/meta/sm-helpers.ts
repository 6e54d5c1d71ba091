// Shared helpers of the state machine tests: entry builders, a small test command family and store
// factories (memory and LMDB in a temporary directory).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join as joinPath } from 'node:path';
import { RECORD_VERSION } from '../../src/meta/codec.js';
import { encodeEntry } from '../../src/meta/entry.js';
import { key } from '../../src/meta/keys.js';
import { LmdbStateStore, MemoryStateStore, type StateStore } from '../../src/meta/store.js';
import { StateMachine } from '../../src/meta/state-machine.js';
import { clusterHandlers } from '../../src/meta/families/cluster.js';
import { fail, ok, type Command, type HandlerTable } from '../../src/meta/tx.js';
import { limits } from '../../src/base/limits.js';
import type { LogBatch } from '../../src/log/spi.js';

/** A tiny family for exercising the machine. */
export const testHandlers: HandlerTable = {
  'kv.put': (tx, c) => {
    tx.put(key('kv', c.k as string), { v: c.v });
    return ok();
  },
  'kv.del': (tx, c) => {
    if (!tx.get(key('kv', c.k as string))) return fail('not-found', 'no such key');
    tx.del(key('kv', c.k as string));
    return ok();
  },
  /** Increments a counter: tells how many times a command really ran. */
  'kv.inc': (tx, c) => {
    const k = key('ctr', c.k as string);
    const cur = tx.get<{ n: number }>(k) ?? { n: 0 };
    cur.n++;
    tx.put(k, cur);
    return ok(cur.n);
  },
  'kv.putThenFail': (tx, c) => {
    tx.put(key('kv', c.k as string), { v: 'should not stay' });
    return fail('exists', 'refused after writing');
  },
  'kv.putThenThrow': (tx, c) => {
    tx.put(key('kv', c.k as string), { v: 'should not stay' });
    throw new Error('boom');
  },
  'kv.huge': (tx) => {
    tx.put(key('kv', 'huge'), { v: Buffer.alloc(limits.metaRecordBytesMax + 1) });
    return ok();
  },
  /** Lists the kv keys it sees (visibility of earlier entries' writes). */
  'kv.list': (tx) => ok([...tx.range<{ v: unknown }>(key('kv'))].map(([, r]) => r.v)),
};

export const allHandlers = [clusterHandlers, testHandlers];

export function entry(n: string, i: number, s: number, c: Command, w = 0, v = RECORD_VERSION): Buffer {
  return encodeEntry({ v, n, i, s, w, c });
}

export const join = (n: string, inc: number, s: number, now = 1000, leaseMs = 10_000): Buffer =>
  entry(n, inc, s, { t: 'node.join', node: n, inc, address: `127.0.0.1:${inc}`, now, leaseMs });

export function batch(position: number, ...entries: Uint8Array[]): LogBatch {
  return { position, entries };
}

export class TempDirs {
  private readonly dirs: string[] = [];
  make(): string {
    const d = mkdtempSync(joinPath(tmpdir(), 'tessera-meta-'));
    this.dirs.push(d);
    return d;
  }
  cleanup(): void {
    for (const d of this.dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  }
}

export type StoreKind = 'memory' | 'lmdb';

export function makeStore(kind: StoreKind, dirs: TempDirs): StateStore {
  return kind === 'memory' ? new MemoryStateStore() : LmdbStateStore.open(dirs.make());
}

export function machine(store: StateStore): StateMachine {
  return StateMachine.open({ store, handlers: allHandlers });
}

/** Consumes a snapshot stream into one buffer. */
export async function collect(data: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of data) parts.push(Buffer.from(c));
  return Buffer.concat(parts);
}

/** Re-chunks bytes into pieces of the given sizes (cycled). */
export async function* chunked(bytes: Buffer, sizes: number[]): AsyncGenerator<Uint8Array> {
  let o = 0;
  let i = 0;
  while (o < bytes.length) {
    const n = Math.max(1, sizes[i++ % sizes.length]!);
    yield bytes.subarray(o, o + n);
    o += n;
  }
}
