// Configuration of chunked shares (src/cli/config.ts, parseServeArgs in src/cli/main.ts): --share
// NAME without a path, --store, --s3-endpoint, --meta, --node-id, --cluster-id, the config-file keys,
// the defaults under the state directory and the embedded default. No server is started.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { TesseraError } from '../../src/base/errors.js';
import { parseServeArgs } from '../../src/cli/main.js';
import { describeStore } from '../../src/cli/chunked.js';
import { describeMeta, stateDirOf } from '../../src/cli/meta.js';

const cwd = mkdtempSync(join(tmpdir(), 'tessera-chunked-config-'));
const base = ['--listen', '127.0.0.1:4450', '--user', 'u:p'];
const parse = (...args: string[]) => parseServeArgs([...base, ...args], cwd).config;
const refusal = (args: string[]): string => {
  try {
    parseServeArgs([...base, ...args], cwd);
  } catch (err) {
    expect(err).toBeInstanceOf(TesseraError);
    return (err as Error).message;
  }
  throw new Error(`accepted: ${args.join(' ')}`);
};

afterAll(() => rmSync(cwd, { recursive: true, force: true }));

describe('chunked share configuration', () => {
  test('--share NAME is chunked, NAME=PATH stays posix; defaults live under the state dir', () => {
    const c = parse('--share', 'vms', '--share', 'files=/srv/files');
    expect(c.shares.map((s) => [s.name, s.path])).toEqual([
      ['vms', undefined],
      ['files', '/srv/files'],
    ]);
    expect(c.stateDir).toBe(join(cwd, 'data'));
    expect(c.store).toEqual({ kind: 'file', dir: join(cwd, 'data', 'objects') });
    expect(c.meta).toEqual({ kind: 'local', dir: join(cwd, 'data', 'meta') });
    expect(c.clusterId).toBe('tessera');
    expect(c.nodeId).toMatch(/^[A-Za-z0-9]/);
    expect(stateDirOf({ meta: c.meta!, stateDir: c.stateDir!, clusterId: c.clusterId })).toBe(join(cwd, 'data', 'meta', 'state'));
  });

  test('posix shares alone open no chunked backend (no defaults filled in)', () => {
    const c = parse('--share', 'files=/srv/files');
    expect(c.store).toBeUndefined();
    expect(c.meta).toBeUndefined();
    expect(c.stateDir).toBeUndefined();
  });

  test('--store, --meta, --state-dir, ids', () => {
    const c = parse('--share', 'vms', '--state-dir', 'st', '--store', 's3://vm-bucket/tessera/a', '--s3-endpoint', 'http://127.0.0.1:7480', '--meta', 'etcd://127.0.0.1:2379,10.0.0.2:2379/tess/x', '--node-id', 'node-1', '--cluster-id', 'lab');
    expect(c.store).toEqual({ kind: 's3', bucket: 'vm-bucket', prefix: 'tessera/a/' });
    expect(c.s3Endpoint).toBe('http://127.0.0.1:7480');
    expect(c.meta).toEqual({ kind: 'etcd', endpoints: ['http://127.0.0.1:2379', 'http://10.0.0.2:2379'], prefix: '/tess/x' });
    expect(c.nodeId).toBe('node-1');
    expect(c.clusterId).toBe('lab');
    expect(describeStore(c.store!)).toBe('s3://vm-bucket/tessera/a/');
    expect(describeMeta(c.meta!, 'lab')).toBe('etcd://127.0.0.1:2379,10.0.0.2:2379/tess/x');
    // etcd: the LMDB state is local, one per log prefix, under the state dir.
    expect(stateDirOf({ meta: c.meta!, stateDir: c.stateDir!, clusterId: 'lab' })).toBe(join(cwd, 'st', 'etcd-state', '%2Ftess%2Fx'));
    const d = parse('--share', 'vms', '--meta', 'etcd://h:2379', '--store', 'file:///abs/objects', '--cluster-id', 'c1');
    expect(d.meta).toEqual({ kind: 'etcd', endpoints: ['http://h:2379'], prefix: undefined });
    expect(describeMeta(d.meta!, 'c1')).toBe('etcd://h:2379/tessera/c1');
    expect(d.store).toEqual({ kind: 'file', dir: '/abs/objects' });
    expect(parse('--share', 'vms', '--store', 'file://rel/objs').store).toEqual({ kind: 'file', dir: join(cwd, 'rel', 'objs') });
    expect(parse('--share', 'vms', '--store', 's3://bucket1').store).toEqual({ kind: 's3', bucket: 'bucket1', prefix: '' });
  });

  test('bad values are refused, naming the option', () => {
    expect(refusal(['--share', 'vms', '--store', '/tmp/x'])).toMatch(/--store: "\/tmp\/x" is not file:\/\/\/DIR or s3:\/\/BUCKET/);
    expect(refusal(['--share', 'vms', '--store', 's3://Bad_Bucket/p'])).toMatch(/--store: .*bucket "Bad_Bucket"/);
    expect(refusal(['--share', 'vms', '--store', 's3://bucket1//p'])).toMatch(/--store: .*prefix/);
    expect(refusal(['--share', 'vms', '--store', 'file://'])).toMatch(/--store: .*directory is missing/);
    expect(refusal(['--share', 'vms', '--meta', 'etcd://nohostport'])).toMatch(/--meta: .*"nohostport" is not HOST:PORT/);
    expect(refusal(['--share', 'vms', '--meta', 'etcd://h:0'])).toMatch(/--meta: .*is not HOST:PORT/);
    expect(refusal(['--share', 'vms', '--meta', 'zk://h:1'])).toMatch(/--meta: .*local:\/\/\/DIR or etcd:\/\//);
    expect(refusal(['--share', 'vms', '--s3-endpoint', 'ftp://x'])).toMatch(/--s3-endpoint: .*http/);
    expect(refusal(['--share', 'vms', '--s3-endpoint', 'http://127.0.0.1:7480'])).toMatch(/--s3-endpoint: only with --store s3:/);
    expect(refusal(['--share', 'vms', '--node-id', 'bad id'])).toMatch(/--node-id: "bad id"/);
    expect(refusal(['--share', 'vms', '--cluster-id', 'x'.repeat(200)])).toMatch(/--cluster-id: .*1-128/);
    expect(refusal(['--share', 'IPC$'])).toMatch(/IPC\$ is reserved/);
    expect(refusal(['--share', '=x'])).toMatch(/is not NAME=PATH/);
  });

  test('config file: shares without a path, store, meta, ids; bad values name the key', () => {
    const file = join(cwd, 'tessera-chunked.json');
    writeFileSync(file, JSON.stringify({ shares: [{ name: 'vms' }, { name: 'iso', path: 'iso' }], store: 'file://objs', meta: 'local://m', nodeId: 'n7', clusterId: 'prod' }));
    const c = parse('--config', file);
    expect(c.shares.map((s) => [s.name, s.path])).toEqual([
      ['vms', undefined],
      ['iso', join(cwd, 'iso')],
    ]);
    expect(c.store).toEqual({ kind: 'file', dir: join(cwd, 'objs') });
    expect(c.meta).toEqual({ kind: 'local', dir: join(cwd, 'm') });
    expect([c.nodeId, c.clusterId]).toEqual(['n7', 'prod']);
    // Flags override the file.
    expect(parse('--config', file, '--store', 'file:///o2').store).toEqual({ kind: 'file', dir: '/o2' });
    writeFileSync(file, JSON.stringify({ shares: [{ name: 'vms' }], store: 'nfs://x' }));
    expect(refusal(['--config', file])).toMatch(/config: store: "nfs:\/\/x"/);
    writeFileSync(file, JSON.stringify({ shares: [{ name: 'vms' }], meta: 5 }));
    expect(refusal(['--config', file])).toMatch(/config: meta: must be a string/);
    writeFileSync(file, JSON.stringify({ shares: [{ name: 'vms', path: '' }] }));
    expect(refusal(['--config', file])).toMatch(/config: shares\[0\]\.path/);
  });

  test('read cache: --cache-dir, --cache-bytes, --cache-memory-bytes, the config file, defaults, bad values', () => {
    expect(parse('--share', 'vms').cache).toEqual({ dir: join(cwd, 'data', 'cache'), bytes: undefined, memoryBytes: undefined });
    expect(parse('--share', 'vms', '--cache-dir', 'c', '--cache-bytes', '2G', '--cache-memory-bytes', '512M').cache).toEqual({ dir: join(cwd, 'c'), bytes: 2 * 1024 ** 3, memoryBytes: 512 * 1024 ** 2 });
    expect(parse('--share', 'vms', '--cache-bytes', '0', '--cache-memory-bytes', '65536').cache).toMatchObject({ bytes: 0, memoryBytes: 65536 });
    expect(parse('--share', 'vms', '--state-dir', 'st', '--cache-bytes', '10MiB').cache).toEqual({ dir: join(cwd, 'st', 'cache'), bytes: 10 * 1024 ** 2, memoryBytes: undefined });
    expect(refusal(['--share', 'vms', '--cache-bytes', '12X'])).toMatch(/--cache-bytes: "12X" is not a size/);
    expect(refusal(['--share', 'vms', '--cache-bytes', '1000'])).toMatch(/--cache-bytes: .*below the smallest disk cache/);
    expect(refusal(['--share', 'vms', '--cache-memory-bytes', '-1'])).toMatch(/--cache-memory-bytes: "-1" is not a size/);
    expect(refusal(['--share', 'vms', '--cache-dir'])).toMatch(/--cache-dir needs a value/);
    const file = join(cwd, 'tessera-cache.json');
    writeFileSync(file, JSON.stringify({ shares: [{ name: 'vms' }], cache: { dir: 'cdir', bytes: '1G', memoryBytes: 1048576 } }));
    expect(parse('--config', file).cache).toEqual({ dir: join(cwd, 'cdir'), bytes: 1024 ** 3, memoryBytes: 1024 ** 2 });
    expect(parse('--config', file, '--cache-bytes', '0').cache.bytes).toBe(0);
    writeFileSync(file, JSON.stringify({ shares: [{ name: 'vms' }], cache: { size: 1 } }));
    expect(refusal(['--config', file])).toMatch(/config: cache\.size: unknown key/);
    writeFileSync(file, JSON.stringify({ shares: [{ name: 'vms' }], cache: { bytes: 1.5 } }));
    expect(refusal(['--config', file])).toMatch(/config: cache\.bytes: 1\.5 is not a byte count/);
    writeFileSync(file, JSON.stringify({ shares: [{ name: 'vms' }], cache: 'big' }));
    expect(refusal(['--config', file])).toMatch(/config: cache: must be an object/);
  });

  test('serve --default: chunked share vms on ./data/objects with the local log in ./data/meta', () => {
    const { config, defaultMode } = parseServeArgs(['--default'], cwd);
    expect(defaultMode).toBe(true);
    expect(config.shares.map((s) => [s.name, s.path])).toEqual([['vms', undefined]]);
    expect(config.store).toEqual({ kind: 'file', dir: join(cwd, 'data', 'objects') });
    expect(config.meta).toEqual({ kind: 'local', dir: join(cwd, 'data', 'meta') });
    expect(config.usersFile).toBe(join(cwd, 'data', 'users.json'));
    expect(config.listen).toEqual([{ host: '0.0.0.0', port: 445 }]);
    // Explicit posix shares replace the default share and need no backend.
    const posix = parseServeArgs(['--default', '--share', 'vms=./data/vms'], cwd).config;
    expect(posix.shares.map((s) => [s.name, s.path])).toEqual([['vms', join(cwd, 'data', 'vms')]]);
    expect(posix.store).toBeUndefined();
  });
});
