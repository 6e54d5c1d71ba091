// Child process of test/meta/kill-restart.test.ts: one metadata node (LocalLog or EtcdLog +
// LmdbStateStore + MetaService) that creates uniquely named files with 64 proposals in flight and
// prints one line per acknowledged name. The parent SIGKILLs it at arbitrary moments and starts it
// again on the same directories.
//
// Run: node --import tsx test/meta/node-child.ts '<json config>'   (config: ChildConfig below)
// Output, one line each, written with fs.writeSync(1, ...) so that a line printed is a line the
// parent sees even if the process is killed right after (no buffered stdout):
//   open <applied position of the LMDB state at open>
//   event <message> <json>                        (info/warn/error messages of the service's start)
//   started <applied position> <batches replayed during start> <root ino>
//   ack <name>                                    (ns.create of <name> was applied here: ok)
//   refused <name> <code>                         (should not happen: names are unique)
//   error <name> <message>                        (MetaError)
//   hash <position> <sha256>                      (stop mode: after `count` acks and a barrier)
import { writeSync } from 'node:fs';
import { DirectorySnapshotStore } from '../../src/log/snapshot-dir.js';
import { openNode } from './cluster-node.js';

export interface ChildConfig {
  mode: 'local' | 'etcd';
  nodeId: string;
  clusterId: string;
  stateDir: string;
  /** mode 'local' */
  logDir?: string;
  /** mode 'etcd' */
  endpoints?: string[];
  prefix?: string;
  snapDir?: string;
  /** Names are `<tag>-<k>`: unique per run of the child. */
  tag: string;
  /** Stop after this many acknowledged names, barrier, print the hash and exit (default: run until killed). */
  count?: number;
  inFlight?: number;
}

const out = (line: string): void => void writeSync(1, `${line}\n`);

const cfg = JSON.parse(process.argv[2]!) as ChildConfig;
const events: { level: string; msg: string; obj: object }[] = [];
const node = await openNode({
  id: cfg.nodeId,
  clusterId: cfg.clusterId,
  stateDir: cfg.stateDir,
  events,
  ...(cfg.mode === 'local' ? { localLogDir: cfg.logDir! } : { etcd: { endpoints: cfg.endpoints!, prefix: cfg.prefix! } }),
  ...(cfg.snapDir !== undefined ? { snapshots: await DirectorySnapshotStore.open(cfg.snapDir) } : {}),
});
out(`open ${node.openedAt}`);
for (const e of events) out(`event ${e.msg} ${JSON.stringify(e.obj)}`);
const replayed = node.delivered();

const root = await node.svc.propose({ t: 'ns.mkroot', share: 'kr', now: Date.now() });
if (!root.ok) throw new Error(`ns.mkroot refused: ${root.message}`);
const rootIno = (root.value as { ino: number }).ino;
out(`started ${node.svc.appliedPosition} ${replayed} ${rootIno}`);

let k = 0;
let acked = 0;
const limit = cfg.count ?? Infinity;
await Promise.all(
  Array.from({ length: cfg.inFlight ?? 64 }, async () => {
    while (k < limit) {
      const name = `${cfg.tag}-${k++}`;
      try {
        const r = await node.svc.propose({ t: 'ns.create', parent: rootIno, name, kind: 'file', attributes: 0x20, now: Date.now() });
        if (r.ok) {
          out(`ack ${name}`);
          acked++;
        } else {
          out(`refused ${name} ${r.code}`);
        }
      } catch (err) {
        out(`error ${name} ${(err as Error).message}`);
        if (node.svc.failure) throw err;
      }
    }
  }),
);
await node.svc.barrier();
const h = node.svc.stateHash();
out(`hash ${h.position} ${h.hash} ${acked}`);
await node.close();
process.exit(0);
