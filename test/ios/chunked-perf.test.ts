// Throughput of the chunked driver's write path with a memory object store and the local log
// (LMDB): 4 KiB random writes with many in flight (group commit) and 1 MiB sequential writes.
// Figures are printed; the assertions are loose floors (a 2-core CI machine) that catch a write path
// gone serial (one segment or one log commit per write).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalLog } from '../../src/log/local.js';
import { metaHandlers } from '../../src/meta/families/index.js';
import { MetaService } from '../../src/meta/service.js';
import { StateMachine } from '../../src/meta/state-machine.js';
import { LmdbStateStore } from '../../src/meta/store.js';
import { MemoryObjectStore } from '../../src/objstore/memory.js';
import { ChunkedDriver, type ChunkedShare } from '../../src/ios/chunked/index.js';

describe('chunked driver throughput (memory store, local log)', () => {
  let dir: string;
  let log: LocalLog;
  let state: LmdbStateStore;
  let svc: MetaService;
  let share: ChunkedShare;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tessera-chunked-perf-'));
    log = await LocalLog.open({ dir: join(dir, 'log') });
    state = LmdbStateStore.open(join(dir, 'state'));
    svc = await MetaService.start({ log, machine: StateMachine.open({ store: state, handlers: metaHandlers }), nodeId: 'n1', clusterId: 'perf', nodeLeaseMs: 0 });
    const driver = new ChunkedDriver({ meta: svc, store: new MemoryObjectStore(), clusterId: 'perf', nodeId: 'n1' });
    share = (await driver.openShare('vms', {})) as ChunkedShare;
  });
  afterAll(async () => {
    await share?.close();
    await svc?.close();
    await log?.close();
    await state?.close();
    await rm(dir, { recursive: true, force: true });
  });

  async function run(name: string, size: number, count: number, inflight: number, random: boolean) {
    const h = (await share.open(name, { mode: 'create', write: true })).handle;
    const data = randomBytes(size);
    const span = 1024; // 4 KiB random writes land in a 4 MiB region (overlaps included)
    const s0 = { ...share.writer.stats };
    const t0 = performance.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: inflight }, async () => {
        while (next < count) {
          const i = next++;
          const at = random ? ((i * 7919) % span) * size : i * size;
          await h.write(at, data);
        }
      }),
    );
    const s = (performance.now() - t0) / 1000;
    const segs = share.writer.stats.segments - s0.segments;
    await h.close();
    const fig = { writesPerS: Math.round(count / s), mbPerS: Math.round((count * size) / s / 1e6), segments: segs, segmentsPerS: Math.round(segs / s) };
    console.log(`chunked ${name}: ${count} x ${size} B, ${inflight} in flight: ${JSON.stringify(fig)}`);
    return fig;
  }

  it('4 KiB random writes are group-committed', async () => {
    const f = await run('rand4k', 4096, 20_000, 256, true);
    expect(f.segments).toBeLessThan(20_000 / 8);
    expect(f.writesPerS).toBeGreaterThan(2_000);
  }, 60_000);

  it('1 MiB sequential writes', async () => {
    const f = await run('seq1m', 1024 * 1024, 256, 16, false);
    expect(f.mbPerS).toBeGreaterThan(30);
  }, 60_000);

  it('latency of one 4 KiB write at a time (one segment and one map commit each)', async () => {
    const h = (await share.open('lat', { mode: 'create', write: true })).handle;
    const data = randomBytes(4096);
    const ms: number[] = [];
    for (let i = 0; i < 200; i++) {
      const t0 = performance.now();
      await h.write(i * 4096, data);
      ms.push(performance.now() - t0);
    }
    ms.sort((a, b) => a - b);
    const p50 = ms[100]!;
    const p99 = ms[197]!;
    console.log(`chunked 4 KiB serial write latency: p50 ${p50.toFixed(2)} ms, p99 ${p99.toFixed(2)} ms`);
    expect(p50).toBeLessThan(100);
    await h.close();
  }, 60_000);
});
