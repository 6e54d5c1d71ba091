// Child process of test/ios/chunked-crash.test.ts: the chunked driver on a temp directory (LocalLog +
// LmdbStateStore + MetaService, LocalDirStore objects), one file, random overlapping writes with many
// in flight. The parent SIGKILLs it at random moments and starts it again on the same directories.
//
// Run: node --import tsx test/ios/chunked-crash-child.ts '<json config>'   (CrashChildConfig below)
// On start, when `historyFile` is given, the child first verifies the file against the history the
// parent recorded (chunked-crash-lib.ts: the rule) reading through the driver, and checks that every
// map entry of the file points at an existing object range (head() of each object, and fsck.ts's
// runFsck over the whole store: extents, reference counts). Then, unless
// `verifyOnly`, it writes until killed.
// Output, one line each, written with fs.writeSync(1, ...) (a line printed is a line the parent sees,
// even if the process is killed right after):
//   opened <ms to open the driver> <epoch>
//   verified <intervals> <bytes checked> <file size> <ms> <bytes holding an unacknowledged write> <zero bytes>
//   mismatch <json>                                  (then exit 3)
//   fsck <map entries> <objects> <ms> <garbage objects> <garbage bytes>   (own walk + fsck.ts runFsck)
//   fsck-bad <json>                                  (then exit 4)
//   issue <id> <offset> <length> <seed>              (before the write is handed to the driver)
//   ack <id>                                         (the write resolved)
//   error <id> <message>                             (the write rejected: should not happen)
//   done                                             (verifyOnly: closed cleanly)
import { readFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { limits } from '../../src/base/limits.js';
import { LocalLog } from '../../src/log/local.js';
import { metaHandlers } from '../../src/meta/families/index.js';
import { extentsIn } from '../../src/meta/families/extents.js';
import { MetaService } from '../../src/meta/service.js';
import { StateMachine } from '../../src/meta/state-machine.js';
import { LmdbStateStore } from '../../src/meta/store.js';
import { LocalDirStore } from '../../src/objstore/local-dir.js';
import { ChunkedDriver, type ChunkedHandle } from '../../src/ios/chunked/index.js';
import { runFsck } from '../../src/ios/chunked/fsck.js';
import { checkWindow, contentOf, intervals, rng, sizeBounds, type Mismatch, type WriteRec } from './chunked-crash-lib.js';

export interface CrashChildConfig {
  dir: string;
  round: number;
  /** Seed of this run's choices (offsets, lengths, write seeds). */
  seed: number;
  /** Writes are placed within [0, fileBytes). */
  fileBytes: number;
  inFlight: number;
  /** JSON WriteRec[] of every earlier run. */
  historyFile?: string;
  verifyOnly?: boolean;
  /**
   * SIGKILL itself right after printing this many acks, in the same turn: the other writes of the
   * same segment are then in the map but unanswered (a crash point a kill from outside rarely hits).
   */
  selfKillAfterAcks?: number;
}

const out = (line: string): void => void writeSync(1, `${line}\n`);
const cfg = JSON.parse(process.argv[2]!) as CrashChildConfig;
const t0 = performance.now();

const log = await LocalLog.open({ dir: join(cfg.dir, 'log') });
const state = LmdbStateStore.open(join(cfg.dir, 'state'));
const machine = StateMachine.open({ store: state, handlers: metaHandlers });
const svc = await MetaService.start({ log, machine, nodeId: 'n1', clusterId: 'crash', nodeLeaseMs: 0 });
const store = await LocalDirStore.open(join(cfg.dir, 'objects'));
const driver = new ChunkedDriver({ meta: svc, store, clusterId: 'crash', nodeId: 'n1' });
const share = await driver.openShare('vms', {});
const { handle: h } = await share.open('disk.img', { mode: 'openOrCreate', write: true });
const handle = h as ChunkedHandle;
out(`opened ${Math.round(performance.now() - t0)} ${svc.membership.epoch}`);

if (cfg.historyFile !== undefined) {
  const history = JSON.parse(readFileSync(cfg.historyFile, 'utf8')) as WriteRec[];
  await verify(history);
  await fsck();
}

if (cfg.verifyOnly === true) {
  await handle.close();
  await share.close();
  await store.close();
  await svc.close();
  await log.close();
  await state.close();
  out('done');
  process.exit(0);
}

// ---- the workload: until killed ----
const next = rng(cfg.seed);
let k = 0;
let acks = 0;
const minLog = Math.log(4096);
const maxLog = Math.log(1024 * 1024);
await Promise.all(
  Array.from({ length: cfg.inFlight }, async () => {
    for (;;) {
      // 0-3 ms between a worker's writes: the workers drift apart, so segments are sealed with some
      // of the writes each and several are in flight at once (puts overlapping map commands).
      await new Promise((res) => setTimeout(res, Math.floor(next() * 4)));
      const id = `${cfg.round}-${k++}`;
      // Lengths log-uniform in [4 KiB, 1 MiB]; a quarter of the writes at byte-granular offsets and
      // lengths, the rest 512-byte aligned (what a VHDX sees), all within fileBytes.
      const unaligned = next() < 0.25;
      let length = Math.round(Math.exp(minLog + next() * (maxLog - minLog)));
      if (!unaligned) length = Math.max(4096, length - (length % 512));
      let offset = Math.floor(next() * (cfg.fileBytes - length + 1));
      if (!unaligned) offset -= offset % 512;
      const seed = Math.floor(next() * 0xffff_ffff) >>> 0;
      const data = contentOf(seed, offset, length);
      out(`issue ${id} ${offset} ${length} ${seed}`);
      try {
        await handle.write(offset, data);
        out(`ack ${id}`);
        if (++acks === cfg.selfKillAfterAcks) process.kill(process.pid, 'SIGKILL');
      } catch (err) {
        out(`error ${id} ${(err as Error).message}`);
      }
    }
  }),
);

async function verify(history: WriteRec[]): Promise<void> {
  const t = performance.now();
  const size = (await handle.info()).size;
  const bounds = sizeBounds(history);
  const bad: (Mismatch | { size: number; min: number; max: number })[] = [];
  if (size < bounds.min || size > bounds.max) bad.push({ size, ...bounds });
  const ivs = intervals(history, cfg.fileBytes);
  const window = limits.ioBytesMax;
  let checked = 0;
  const stats = { fromUnacked: 0, zero: 0 };
  for (let base = 0; base < cfg.fileBytes && bad.length < 20; base += window) {
    const n = Math.min(window, cfg.fileBytes - base);
    const got = await handle.read(base, n);
    // Past the end of file the bytes read as nothing: they must be allowed to be zero.
    const data = got.length === n ? got : Buffer.concat([got, Buffer.alloc(n - got.length)]);
    const inWindow = ivs.filter((iv) => iv.end > base && iv.start < base + n);
    bad.push(...checkWindow(history, inWindow, base, data, stats));
    checked += n;
  }
  if (bad.length > 0) {
    for (const b of bad.slice(0, 20)) out(`mismatch ${JSON.stringify(b)}`);
    process.exit(3);
  }
  out(`verified ${ivs.length} ${checked} ${size} ${Math.round(performance.now() - t)} ${stats.fromUnacked} ${stats.zero}`);
}

/** Every map entry of the file points at an existing object holding its range. */
async function fsck(): Promise<void> {
  const t = performance.now();
  const fork = handle.fork;
  const entries: { object: string; objectOffset: number; length: number; offset: number }[] = [];
  let pos = 0;
  const end = limits.metaFileBytesMax;
  for (;;) {
    const page = svc.read((tx) => extentsIn(tx, fork, pos, end - pos));
    for (const e of page) if (e.offset + e.length > pos) entries.push(e);
    if (page.length < limits.metaReadEntriesMax) break;
    const last = page[page.length - 1]!;
    pos = last.offset + last.length;
  }
  const need = new Map<string, number>();
  for (const e of entries) need.set(e.object, Math.max(need.get(e.object) ?? 0, e.objectOffset + e.length));
  const bad: string[] = [];
  let prevEnd = 0;
  for (const e of entries) {
    if (e.offset < prevEnd) bad.push(`overlapping entries at ${e.offset}`);
    prevEnd = e.offset + e.length;
  }
  for (const [object, bytes] of need) {
    const info = await store.head(object);
    if (info === undefined) bad.push(`missing object ${object}`);
    else if (info.size < bytes) bad.push(`object ${object} holds ${info.size} bytes, map needs ${bytes}`);
  }
  // And the driver's own fsck (fsck.ts, every fork: extents in existing objects, reference counts).
  const report = await runFsck({ meta: svc, store, clusterId: 'crash', headAll: true });
  if (!report.clean) bad.push(...report.problems.map((p) => `fsck.ts: ${p.kind}: ${p.message}`));
  if (bad.length > 0) {
    for (const b of bad.slice(0, 20)) out(`fsck-bad ${JSON.stringify(b)}`);
    process.exit(4);
  }
  out(`fsck ${entries.length} ${need.size} ${Math.round(performance.now() - t)} ${report.garbage.objects} ${report.garbage.bytes}`);
}
