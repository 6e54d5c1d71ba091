// `tessera fsck`: checks chunked shares' extent maps against the object store (src/ios/chunked/fsck.ts).
//
// Read-only, safe while servers run. Metadata is read from a node's local LMDB state (the state
// machine every node materialises), opened read-only: LMDB lets one process read while another (the
// server) writes. For --meta local:///DIR that is DIR/state; for --meta etcd://... it is the node's
// replica under --state-dir (as `serve` lays it out, src/cli/chunked.ts), so run fsck on a server
// node; the replica may lag the cluster by the replication delay (fsck re-checks its findings).
// Exit code: 0 clean, 1 problems found (or fsck could not run), 2 bad usage.
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { TesseraError } from '../base/errors.js';
import { formatFsckReport, runFsck } from '../ios/chunked/fsck.js';
import { metaHandlers } from '../meta/families/index.js';
import { StateMachine } from '../meta/state-machine.js';
import { LmdbStateStore } from '../meta/store.js';
import { LocalDirStore } from '../objstore/local-dir.js';
import { S3Store } from '../objstore/s3.js';
import type { ObjectStore } from '../objstore/spi.js';
import { describeStore } from './chunked.js';
import { describeMeta, stateDirOf } from './meta.js';
import { applyBackendFlag, defaultConfig, flagValue, loadConfigFile, type parseMeta, type parseStore } from './config.js';

export const FSCK_USAGE = `usage:
  tessera fsck [--config FILE] [--state-dir DIR] [--store file:///DIR | --store s3://BUCKET/PREFIX --s3-endpoint URL]
               [--meta local:///DIR | --meta etcd://HOST:PORT,...[/PREFIX]] [--cluster-id ID] [--json] [--head-all]
  Defaults as for serve: state dir ./data, store file://<state dir>/objects, meta local://<state dir>/meta.
  Exit code 0: clean; 1: problems (dangling extents, reference count mismatches, ...); 2: bad usage.
  Unreferenced segments are reported as garbage (the collector's business), not as problems.
`;

export interface FsckArgs {
  store: ReturnType<typeof parseStore>;
  s3Endpoint: string | undefined;
  meta: ReturnType<typeof parseMeta>;
  stateDir: string;
  clusterId: string;
  json: boolean;
  headAll: boolean;
}


export function parseFsckArgs(args: string[], cwd = process.cwd()): FsckArgs {
  const config = defaultConfig();
  const ci = args.indexOf('--config');
  if (ci >= 0) loadConfigFile(resolve(cwd, flagValue(args, ci, '--config')), config);
  let json = false;
  let headAll = false;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const used = applyBackendFlag(config, args, i, cwd);
    if (used > 0) {
      i += used - 1;
      continue;
    }
    switch (a) {
      case '--config':
        i++;
        break;
      case '--json':
        json = true;
        break;
      case '--head-all':
        headAll = true;
        break;
      default:
        throw new TesseraError('TESSERA_CONFIG_INVALID', `fsck: unknown option "${a}"`);
    }
  }
  const stateDir = config.stateDir ?? resolve(cwd, 'data');
  return {
    store: config.store ?? { kind: 'file', dir: resolve(stateDir, 'objects') },
    s3Endpoint: config.s3Endpoint,
    meta: config.meta ?? { kind: 'local', dir: resolve(stateDir, 'meta') },
    stateDir,
    clusterId: config.clusterId,
    json,
    headAll,
  };
}

/** Runs fsck with parsed arguments; returns the exit code (0 clean, 1 problems). */
export async function runFsckCli(a: FsckArgs, out: (s: string) => void): Promise<number> {
  const stateDir = stateDirOf({ meta: a.meta, stateDir: a.stateDir, clusterId: a.clusterId });
  if (!existsSync(stateDir)) {
    throw new TesseraError(
      'TESSERA_CONFIG_INVALID',
      `fsck: no metadata state at ${stateDir} (for ${describeMeta(a.meta, a.clusterId)}): run fsck where a server keeps it, with the same --meta/--state-dir`,
    );
  }
  if (a.store.kind === 'file' && !existsSync(a.store.dir)) {
    throw new TesseraError('TESSERA_CONFIG_INVALID', `fsck: no object store at ${a.store.dir}`);
  }
  const state = LmdbStateStore.open(stateDir, { readOnly: true });
  let store: ObjectStore | undefined;
  try {
    store =
      a.store.kind === 'file'
        ? await LocalDirStore.open(a.store.dir)
        : await S3Store.open({ bucket: a.store.bucket, prefix: a.store.prefix, ...(a.s3Endpoint !== undefined ? { endpoint: a.s3Endpoint } : {}) });
    const machine = StateMachine.open({ store: state, handlers: metaHandlers });
    const report = await runFsck({ meta: machine, store, clusterId: a.clusterId, headAll: a.headAll });
    if (a.json) out(JSON.stringify({ where: { store: describeStore(a.store), meta: describeMeta(a.meta, a.clusterId), state: stateDir }, ...report }, null, 2) + '\n');
    else out(`fsck of cluster ${a.clusterId}: store ${describeStore(a.store)}, metadata ${describeMeta(a.meta, a.clusterId)} (state ${stateDir})\n` + formatFsckReport(report));
    return report.clean ? 0 : 1;
  } finally {
    await store?.close();
    await state.close();
  }
}

/** `tessera fsck ARGS`: the exit code (main.ts dispatches here). */
export async function fsckCommand(argv: string[]): Promise<number> {
  let args: FsckArgs;
  try {
    args = parseFsckArgs(argv);
  } catch (err) {
    if (err instanceof TesseraError) {
      process.stderr.write(`tessera: ${err.message}\n${FSCK_USAGE}`);
      return 2;
    }
    throw err;
  }
  try {
    return await runFsckCli(args, (s) => process.stdout.write(s));
  } catch (err) {
    process.stderr.write(`tessera fsck: ${(err as Error).message}\n`);
    return 1;
  }
}
