// The `tessera` command. The only place that wires concrete pieces together (ARCHITECTURE.md).

import { mkdirSync, mkdtempSync, existsSync, readFileSync, rmSync, writeFileSync, statSync } from 'node:fs';
import { resolve, join } from 'node:path';
import { randomBytes, randomUUID } from 'node:crypto';
import { hostname, tmpdir } from 'node:os';
import { pino, type Logger } from 'pino';
import { TesseraError } from '../base/errors.js';
import { systemClock, unixNsToFiletime } from '../base/clock.js';
import { posixDriver } from '../ios/posix/index.js';
import type { IosShare } from '../ios/spi.js';
import { FileCredentialStore, MemoryCredentialStore, type CredentialStore } from '../auth/credential-store.js';
import { Server } from '../server/server.js';
import type { ShareDef, ServerIdentity } from '../server/state.js';
import {
  CIPHER_NAMES,
  SIGNING_NAMES,
  applyBackendFlag,
  flagValue,
  defaultConfig,
  loadConfigFile,
  parseListen,
  parseId,
  parseNameList,
  parseShare,
  parseUser,
  type Config,
} from './config.js';
import { openChunkedBackend, type ChunkedBackend } from './chunked.js';
import { describeMeta, openMetaBackend, type MetaBackend } from './meta.js';
import { OpenTableClient } from '../meta/opens-client.js';
import type { MetaService } from '../meta/service.js';
import { NodeOpenTable } from '../server/open-table.js';
import { FSCK_USAGE, fsckCommand } from './fsck.js';

const USAGE = `usage:
  tessera serve [--config FILE] [--listen HOST:PORT]... [--share NAME=PATH | --share NAME]... [--user NAME:PASSWORD]...
                [--users-file FILE] [--encrypt] [--encrypt-share NAME]... [--ciphers LIST] [--signing LIST]
                [--require-signing] [--guest] [--anonymous] [--server-name NAME] [--state-dir DIR] [--log-level LEVEL]
                [--store file:///DIR | --store s3://BUCKET/PREFIX [--s3-endpoint URL]]
                [--meta local:///DIR | --meta etcd://HOST:PORT,...[/PREFIX]] [--node-id ID] [--cluster-id ID]
                [--cache-dir DIR] [--cache-bytes SIZE] [--cache-memory-bytes SIZE]
  tessera serve --default        embedded default: chunked share "vms" with objects in ./data/objects and
                                 metadata in ./data/meta, users in ./data/users.json, port 445 (override
                                 with --listen); a user is created on first start

  --share NAME=PATH   a directory shared as it is (posix driver)
  --share NAME        a chunked share on the object store (--store, default file://<state dir>/objects)
                      with its metadata in --meta (default local://<state dir>/meta); state dir: ./data
  --cache-dir DIR     read cache of chunked shares on disk (default <state dir>/cache); --cache-bytes
                      bounds it (default 4G, or none with a file:// store; 0: no disk cache),
                      --cache-memory-bytes the memory tier
                      (default 256M; it also keeps small segments just written); sizes take K, M, G, T
  tessera user add NAME [--users-file FILE]     (reads the password from stdin or asks twice on a terminal)
  tessera user del NAME [--users-file FILE]
  tessera user list [--users-file FILE]
${FSCK_USAGE.replace(/^usage:\n/, '')}
  --ciphers   preference order, from ${Object.keys(CIPHER_NAMES).join(',')}
  --signing   preference order, from ${Object.keys(SIGNING_NAMES).join(',')}
`;

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  try {
    if (cmd === 'serve') return await serve(rest);
    if (cmd === 'user') return await user(rest);
    if (cmd === 'fsck') return await fsckCommand(rest);
    if (cmd === 'help' || cmd === '--help' || cmd === '-h' || cmd === undefined) {
      process.stdout.write(USAGE);
      return cmd === undefined ? 2 : 0;
    }
    process.stderr.write(`tessera: unknown command "${cmd}"\n${USAGE}`);
    return 2;
  } catch (err) {
    if (err instanceof TesseraError) {
      process.stderr.write(`tessera: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
}


interface ServeFlags {
  config: Config;
  defaultMode: boolean;
  encryptShares: string[];
}

export function parseServeArgs(args: string[], cwd = process.cwd()): ServeFlags {
  const config = defaultConfig();
  let defaultMode = false;
  const encryptShares: string[] = [];
  // The config file is applied first so flags override it.
  const ci = args.indexOf('--config');
  if (ci >= 0) loadConfigFile(resolve(cwd, flagValue(args, ci, '--config')), config);
  if (args.includes('--default') && ci < 0 && existsSync(resolve(cwd, 'tessera.json'))) {
    loadConfigFile(resolve(cwd, 'tessera.json'), config);
  }
  let flagListen = false;
  let flagShares = false;
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
      case '--default':
        defaultMode = true;
        break;
      case '--listen':
        if (!flagListen) config.listen = [];
        flagListen = true;
        config.listen.push(parseListen('--listen', flagValue(args, i++, a)));
        break;
      case '--share':
        if (!flagShares) config.shares = [];
        flagShares = true;
        config.shares.push(parseShare('--share', flagValue(args, i++, a), cwd));
        break;
      case '--user':
        config.inlineUsers.push(parseUser('--user', flagValue(args, i++, a)));
        break;
      case '--users-file':
        config.usersFile = resolve(cwd, flagValue(args, i++, a));
        break;
      case '--encrypt':
        config.encryptRequired = true;
        break;
      case '--encrypt-share':
        encryptShares.push(flagValue(args, i++, a));
        break;
      case '--ciphers':
        config.ciphers = parseNameList('--ciphers', flagValue(args, i++, a), CIPHER_NAMES);
        break;
      case '--signing':
        config.signingAlgorithms = parseNameList('--signing', flagValue(args, i++, a), SIGNING_NAMES);
        break;
      case '--require-signing':
        config.signingRequired = true;
        break;
      case '--guest':
        config.guest = true;
        break;
      case '--anonymous':
        config.anonymous = true;
        break;
      case '--server-name':
        config.serverName = flagValue(args, i++, a).toUpperCase();
        break;
      case '--log-level':
        config.logLevel = flagValue(args, i++, a);
        break;
      default:
        throw new TesseraError('TESSERA_CONFIG_INVALID', `unknown option "${a}"\n${USAGE}`);
    }
  }
  if (defaultMode) {
    config.stateDir ??= resolve(cwd, 'data');
    config.usersFile ??= join(config.stateDir, 'users.json');
    if (config.shares.length === 0) {
      // Issue 5: the chunked driver is the embedded default (objects and metadata under ./data).
      config.shares.push({ name: 'vms', path: undefined, encrypt: false, readOnly: false, comment: 'Tessera default share' });
    }
    if (config.listen.length === 0) config.listen.push({ host: '0.0.0.0', port: 445 });
  }
  for (const name of encryptShares) {
    const share = config.shares.find((s) => s.name.toUpperCase() === name.toUpperCase());
    if (!share) throw new TesseraError('TESSERA_CONFIG_INVALID', `--encrypt-share: no share named "${name}"`);
    share.encrypt = true;
  }
  if (config.listen.length === 0) throw new TesseraError('TESSERA_CONFIG_INVALID', 'nothing to listen on: give --listen HOST:PORT (or use --default)');
  if (config.shares.length === 0) throw new TesseraError('TESSERA_CONFIG_INVALID', 'no shares: give --share NAME=PATH (or use --default)');
  const seen = new Set<string>();
  for (const s of config.shares) {
    const k = s.name.toUpperCase();
    if (seen.has(k)) throw new TesseraError('TESSERA_CONFIG_INVALID', `share "${s.name}" is defined twice`);
    seen.add(k);
  }
  if (config.s3Endpoint !== undefined && config.store?.kind !== 's3') {
    throw new TesseraError('TESSERA_CONFIG_INVALID', 'config: --s3-endpoint: only with --store s3://BUCKET/PREFIX');
  }
  if (config.shares.some((s) => s.path === undefined)) {
    // Chunked shares: defaults under the state directory (./data unless --state-dir).
    config.stateDir ??= resolve(cwd, 'data');
    config.store ??= { kind: 'file', dir: join(config.stateDir, 'objects') };
    config.meta ??= { kind: 'local', dir: join(config.stateDir, 'meta') };
    config.nodeId ??= parseId('--node-id (default: the host name)', hostname().split('.')[0] || 'tessera');
    config.cache.dir ??= join(config.stateDir, 'cache');
  }
  if (!config.usersFile && config.inlineUsers.length === 0 && !config.guest) {
    throw new TesseraError('TESSERA_CONFIG_INVALID', 'no users: give --user NAME:PASSWORD, --users-file FILE, or --guest');
  }
  return { config, defaultMode, encryptShares };
}

function loadOrCreateServerGuid(stateDir: string | undefined): Buffer {
  if (!stateDir) return Buffer.from(randomUUID().replace(/-/g, ''), 'hex');
  mkdirSync(stateDir, { recursive: true });
  const file = join(stateDir, 'server-guid');
  if (existsSync(file)) {
    const hex = readFileSync(file, 'utf8').trim();
    if (/^[0-9a-f]{32}$/.test(hex)) return Buffer.from(hex, 'hex');
  }
  const guid = Buffer.from(randomUUID().replace(/-/g, ''), 'hex');
  writeFileSync(file, guid.toString('hex') + '\n', { mode: 0o644 });
  return guid;
}

async function buildCredentials(config: Config, log: Logger, defaultMode: boolean): Promise<CredentialStore> {
  if (config.usersFile) {
    const store = await FileCredentialStore.open(config.usersFile);
    if (defaultMode && (await store.list()).length === 0 && config.inlineUsers.length === 0) {
      // First start of the embedded default: a user with a generated password, shown once.
      const password = randomBytes(12).toString('base64url');
      await store.add('tessera', password);
      process.stdout.write(
        `\nFirst start: created SMB user "tessera" with password ${password}\n` +
          `It is stored only as an NT hash in ${config.usersFile}; note it now, it is not shown again.\n` +
          `Manage users with: tessera user add|del|list --users-file ${config.usersFile}\n\n`,
      );
    }
    for (const u of config.inlineUsers) {
      if (await store.lookup(u.name)) await store.setPassword(u.name, u.password);
      else await store.add(u.name, u.password);
    }
    return store;
  }
  const mem = new MemoryCredentialStore();
  for (const u of config.inlineUsers) mem.add(u.name, u.password);
  log.debug({ users: config.inlineUsers.map((u) => u.name) }, 'users from the command line (in memory)');
  return mem;
}

async function serve(args: string[]): Promise<number> {
  const { config, defaultMode } = parseServeArgs(args);
  const log = pino({ level: config.logLevel, base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime });
  const shares: ShareDef[] = [{ name: 'IPC$', type: 'ipc', comment: 'IPC Service', encrypt: false, readOnly: true }];
  let chunked: ChunkedBackend | undefined;
  /** The metadata backend of a server without chunked shares (it keeps the open table). */
  let metaOnly: MetaBackend | undefined;
  /** A private directory for that backend when no state directory was configured (removed at stop). */
  let scratchMeta: string | undefined;
  const opened: IosShare[] = [];
  /** Undoes a partial start: shares (flushing writes), then the chunked or metadata backend. */
  const abandon = async (): Promise<void> => {
    for (const ios of opened) await ios.close().catch(() => {});
    await chunked?.close();
    await metaOnly?.close();
    if (scratchMeta) rmSync(scratchMeta, { recursive: true, force: true });
  };
  let meta: MetaService;
  try {
    for (const s of config.shares) {
      if (s.path === undefined) continue;
      if (defaultMode) mkdirSync(s.path, { recursive: true });
      let st;
      try {
        st = statSync(s.path);
      } catch {
        throw new TesseraError('TESSERA_CONFIG_INVALID', `share "${s.name}": directory ${s.path} does not exist`);
      }
      if (!st.isDirectory()) throw new TesseraError('TESSERA_CONFIG_INVALID', `share "${s.name}": ${s.path} is not a directory`);
    }
    if (config.shares.some((s) => s.path === undefined)) {
      chunked = await openChunkedBackend(
        { store: config.store!, s3Endpoint: config.s3Endpoint, meta: config.meta!, stateDir: config.stateDir!, nodeId: config.nodeId!, clusterId: config.clusterId, cache: config.cache },
        log,
      );
      log.info(chunked.where, 'chunked shares: objects in the store, metadata in the log (state is a local copy)');
      meta = chunked.meta;
    } else {
      // Posix shares only: the open table still lives in a metadata log (issue 4), under --meta, or
      // <state dir>/meta, or, with neither, a private directory that goes away with the process
      // (durable handles then do not outlive it, which they cannot anyway: driver handles don't).
      let metaConfig = config.meta;
      let stateDir = config.stateDir;
      if (metaConfig === undefined) {
        if (stateDir === undefined) {
          scratchMeta = mkdtempSync(join(tmpdir(), 'tessera-opens-'));
          stateDir = scratchMeta;
        }
        metaConfig = { kind: 'local', dir: join(stateDir, 'meta') };
      }
      const nodeId = config.nodeId ?? parseId('--node-id (default: the host name)', hostname().split('.')[0] || 'tessera');
      metaOnly = await openMetaBackend({ meta: metaConfig, stateDir: stateDir ?? resolve('data'), nodeId, clusterId: config.clusterId }, log);
      log.info({ meta: describeMeta(metaConfig, config.clusterId), scratch: scratchMeta !== undefined }, 'open table: metadata log');
      meta = metaOnly.meta;
    }
    for (const s of config.shares) {
      const ios = s.path === undefined ? await chunked!.driver.openShare(s.name, { readOnly: s.readOnly }) : await posixDriver.openShare(s.path, { readOnly: s.readOnly });
      opened.push(ios);
      shares.push({ name: s.name, type: 'disk', comment: s.comment, ios, encrypt: s.encrypt, readOnly: s.readOnly });
    }
  } catch (err) {
    await abandon();
    throw err;
  }
  const credentials = await buildCredentials(config, log, defaultMode).catch(async (err: unknown) => {
    await abandon();
    throw err;
  });
  const nowNs = BigInt(Date.now()) * 1_000_000n;
  const host = hostname().split('.')[0]!.toUpperCase().slice(0, 15) || 'TESSERA';
  const identity: ServerIdentity = {
    serverGuid: loadOrCreateServerGuid(config.stateDir),
    netbiosName: config.serverName === 'TESSERA' ? host : config.serverName,
    netbiosDomain: 'WORKGROUP',
    dnsName: hostname().toLowerCase(),
    dnsDomain: '',
    startTime: unixNsToFiletime(nowNs),
  };
  const openTable = new NodeOpenTable({ client: new OpenTableClient(meta), node: meta.nodeId, clock: systemClock, log: log.child({ part: 'opens' }) });
  const server = new Server({
    openTable,
    identity,
    shares,
    credentials,
    dialects: config.dialects,
    encryptRequired: config.encryptRequired,
    rejectUnencryptedAccess: true,
    signingRequired: config.signingRequired,
    ciphers: config.ciphers,
    signingAlgorithms: config.signingAlgorithms,
    allowGuest: config.guest,
    allowAnonymous: config.anonymous,
    logger: log,
  });
  // Server.close() closes every share's IOS (the chunked driver flushes its writes there); the
  // chunked backend closes after it: service (node.leave), log, state, object store.
  const shutdown = async (): Promise<void> => {
    await server.close().catch((err: unknown) => log.error({ err }, 'closing the server failed'));
    await chunked?.close();
    await metaOnly?.close();
    if (scratchMeta) rmSync(scratchMeta, { recursive: true, force: true });
  };
  try {
    await openTable.start(server);
  } catch (err) {
    await shutdown();
    throw err;
  }
  try {
    for (const l of config.listen) await server.listen(l.host, l.port);
  } catch (err) {
    await shutdown();
    throw err;
  }
  log.info(
    {
      shares: config.shares.map((s) => ({
        name: s.name,
        driver: s.path === undefined ? 'chunked' : 'posix',
        ...(s.path !== undefined ? { path: s.path } : { store: chunked!.where.store, meta: chunked!.where.meta }),
        encrypt: s.encrypt,
      })),
      encrypt: config.encryptRequired,
    },
    'tessera ready',
  );
  await new Promise<void>((resolveStop) => {
    const stop = (signal: string) => {
      log.info({ signal }, 'stopping');
      void shutdown().finally(() => {
        log.info('stopped');
        resolveStop();
      });
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
  });
  return 0;
}

async function readPassword(): Promise<string> {
  if (!process.stdin.isTTY) {
    const chunks: Buffer[] = [];
    for await (const c of process.stdin) chunks.push(c as Buffer);
    const line = Buffer.concat(chunks).toString('utf8').split(/\r?\n/)[0] ?? '';
    return line;
  }
  const { createInterface } = await import('node:readline/promises');
  const ask = async (q: string) => {
    const rl = createInterface({ input: process.stdin, output: process.stdout, terminal: true });
    const answer = await rl.question(q);
    rl.close();
    return answer;
  };
  const a = await ask('Password: ');
  const b = await ask('Again: ');
  if (a !== b) throw new TesseraError('TESSERA_USER_STORE', 'passwords differ');
  return a;
}

async function user(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  let file = resolve('data', 'users.json');
  const positional: string[] = [];
  for (let i = 0; i < rest.length; i++) {
    if (rest[i] === '--users-file') file = resolve(flagValue(rest, i++, '--users-file'));
    else positional.push(rest[i]!);
  }
  mkdirSync(resolve(file, '..'), { recursive: true });
  const store = await FileCredentialStore.open(file);
  switch (sub) {
    case 'add': {
      const name = positional[0];
      if (!name) throw new TesseraError('TESSERA_CONFIG_INVALID', 'user add NAME');
      const password = await readPassword();
      if (!password) throw new TesseraError('TESSERA_USER_STORE', 'empty password');
      await store.add(name, password);
      process.stdout.write(`user "${name}" saved in ${file}\n`);
      return 0;
    }
    case 'del': {
      const name = positional[0];
      if (!name) throw new TesseraError('TESSERA_CONFIG_INVALID', 'user del NAME');
      const removed = await store.remove(name);
      if (!removed) {
        process.stderr.write(`tessera: no user "${name}" in ${file}\n`);
        return 1;
      }
      process.stdout.write(`user "${name}" removed\n`);
      return 0;
    }
    case 'list':
      for (const u of store.list()) process.stdout.write(`${u.name}${u.disabled ? ' (disabled)' : ''}\n`);
      return 0;
    default:
      process.stderr.write(USAGE);
      return 2;
  }
}
