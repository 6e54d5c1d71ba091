// Configuration: a JSON file and/or command-line flags, validated with messages that name the bad key.

import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { TesseraError } from '../base/errors.js';
import { limits } from '../base/limits.js';

export const CIPHER_NAMES: Record<string, number> = {
  'AES-128-CCM': 1,
  'AES-128-GCM': 2,
  'AES-256-CCM': 3,
  'AES-256-GCM': 4,
};
export const SIGNING_NAMES: Record<string, number> = { 'HMAC-SHA256': 0, 'AES-CMAC': 1, 'AES-GMAC': 2 };
export const DIALECT_NAMES: Record<string, number> = {
  '2.0.2': 0x0202,
  '2.1': 0x0210,
  '3.0': 0x0300,
  '3.0.2': 0x0302,
  '3.1.1': 0x0311,
};

export interface ShareConfig {
  name: string;
  /** A directory (posix driver); undefined: a chunked share on the configured object store. */
  path: string | undefined;
  encrypt: boolean;
  readOnly: boolean;
  comment: string;
}

export interface Config {
  listen: { host: string; port: number }[];
  shares: ShareConfig[];
  /** User store file (NT hashes only). Undefined: only users given with --user (kept in memory). */
  usersFile: string | undefined;
  /** Users from --user flags (name, password) — hashed at start, never stored. */
  inlineUsers: { name: string; password: string }[];
  encryptRequired: boolean;
  ciphers: number[];
  signingRequired: boolean;
  signingAlgorithms: number[];
  dialects: number[];
  guest: boolean;
  anonymous: boolean;
  serverName: string;
  logLevel: string;
  /** Directory for server state (server GUID; with chunked shares also the default store and metadata). */
  stateDir: string | undefined;
  /** Object store of the chunked shares; undefined: file://<stateDir>/objects. */
  store: StoreConfig | undefined;
  /** Endpoint of an s3:// store (e.g. http://127.0.0.1:7480); undefined: AWS's own. */
  s3Endpoint: string | undefined;
  /** Metadata backend of the chunked shares; undefined: local://<stateDir>/meta. */
  meta: MetaConfig | undefined;
  /** This node's id in the metadata cluster; undefined: the host name. */
  nodeId: string | undefined;
  clusterId: string;
  /** Read cache of the chunked shares; undefined fields: dir <stateDir>/cache, the limits' defaults. */
  cache: CacheConfig;
}

export interface CacheConfig {
  /** Directory of the disk tier. */
  dir: string | undefined;
  /** Bytes of the disk tier (0: no disk tier). */
  bytes: number | undefined;
  /** Bytes of the memory tier (0: none). */
  memoryBytes: number | undefined;
}

export type StoreConfig = { kind: 'file'; dir: string } | { kind: 's3'; bucket: string; prefix: string };
export type MetaConfig = { kind: 'local'; dir: string } | { kind: 'etcd'; endpoints: string[]; prefix: string | undefined };

export function defaultConfig(): Config {
  return {
    listen: [],
    shares: [],
    usersFile: undefined,
    inlineUsers: [],
    encryptRequired: false,
    ciphers: [CIPHER_NAMES['AES-128-GCM']!, CIPHER_NAMES['AES-128-CCM']!, CIPHER_NAMES['AES-256-GCM']!, CIPHER_NAMES['AES-256-CCM']!],
    signingRequired: false,
    signingAlgorithms: [SIGNING_NAMES['AES-GMAC']!, SIGNING_NAMES['AES-CMAC']!, SIGNING_NAMES['HMAC-SHA256']!],
    dialects: Object.values(DIALECT_NAMES),
    guest: false,
    anonymous: false,
    serverName: 'TESSERA',
    logLevel: 'info',
    stateDir: undefined,
    store: undefined,
    s3Endpoint: undefined,
    meta: undefined,
    nodeId: undefined,
    clusterId: 'tessera',
    cache: { dir: undefined, bytes: undefined, memoryBytes: undefined },
  };
}

const bad = (key: string, why: string): TesseraError => new TesseraError('TESSERA_CONFIG_INVALID', `config: ${key}: ${why}`);

const SHARE_NAME = /^[A-Za-z0-9][A-Za-z0-9_.$-]{0,79}$/;

export function parseListen(key: string, value: string): { host: string; port: number } {
  const m = /^(\[[0-9a-fA-F:.]+\]|[^:\s]+):(\d{1,5})$/.exec(value) ?? /^(\d{1,5})$/.exec(value);
  if (!m) throw bad(key, `"${value}" is not HOST:PORT`);
  let host = m.length === 3 ? m[1]! : '0.0.0.0';
  const port = Number(m.length === 3 ? m[2] : m[1]);
  if (host.startsWith('[')) host = host.slice(1, -1);
  if (!(port >= 0 && port <= 65535)) throw bad(key, `port ${port} is out of range 0..65535`);
  return { host, port };
}

/** `NAME=PATH`: a posix share of a directory; `NAME` alone: a chunked share on the configured store. */
export function parseShare(key: string, value: string, baseDir: string): ShareConfig {
  const eq = value.indexOf('=');
  if (eq < 0) {
    checkShareName(key, value);
    return { name: value, path: undefined, encrypt: false, readOnly: false, comment: '' };
  }
  if (eq === 0 || eq === value.length - 1) throw bad(key, `"${value}" is not NAME=PATH (or NAME alone for a chunked share)`);
  const name = value.slice(0, eq);
  checkShareName(key, name);
  return { name, path: resolve(baseDir, value.slice(eq + 1)), encrypt: false, readOnly: false, comment: '' };
}

/** A path after `scheme://`: absolute (`file:///srv/x`) or relative to baseDir (`file://data/x`). */
function urlPath(key: string, value: string, rest: string, baseDir: string): string {
  let p: string;
  try {
    p = decodeURIComponent(rest);
  } catch {
    throw bad(key, `"${value}": bad %-escape in the path`);
  }
  if (p === '') throw bad(key, `"${value}": the directory is missing`);
  if (p.includes('\0')) throw bad(key, `"${value}": NUL in the path`);
  return resolve(baseDir, p);
}

// Bucket names per the S3 naming rules (3-63 lower-case letters, digits, '.', '-').
const BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

/** `file:///DIR` or `s3://BUCKET[/PREFIX]`. */
export function parseStore(key: string, value: string, baseDir: string): StoreConfig {
  if (value.startsWith('file://')) return { kind: 'file', dir: urlPath(key, value, value.slice('file://'.length), baseDir) };
  if (value.startsWith('s3://')) {
    const rest = value.slice('s3://'.length);
    const slash = rest.indexOf('/');
    const bucket = slash < 0 ? rest : rest.slice(0, slash);
    let prefix = slash < 0 ? '' : rest.slice(slash + 1);
    if (!BUCKET.test(bucket)) throw bad(key, `"${value}": bucket "${bucket}" is not a valid S3 bucket name (3-63 of a-z 0-9 . -)`);
    if (prefix !== '' && !prefix.endsWith('/')) prefix += '/';
    if (prefix.startsWith('/') || prefix.includes('//') || !/^[\x21-\x7e]*$/.test(prefix)) {
      throw bad(key, `"${value}": prefix must be printable ASCII key segments separated by single '/'`);
    }
    return { kind: 's3', bucket, prefix };
  }
  throw bad(key, `"${value}" is not file:///DIR or s3://BUCKET/PREFIX`);
}

/** `local:///DIR` or `etcd://HOST:PORT,HOST:PORT[/PREFIX]`. */
export function parseMeta(key: string, value: string, baseDir: string): MetaConfig {
  if (value.startsWith('local://')) return { kind: 'local', dir: urlPath(key, value, value.slice('local://'.length), baseDir) };
  if (value.startsWith('etcd://')) {
    const rest = value.slice('etcd://'.length);
    const slash = rest.indexOf('/');
    const hosts = (slash < 0 ? rest : rest.slice(0, slash)).split(',');
    const endpoints = hosts.map((h) => {
      const l = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(h);
      if (!l || Number(l[2]) < 1 || Number(l[2]) > 65535) throw bad(key, `"${value}": "${h}" is not HOST:PORT`);
      return `http://${l[1]}:${l[2]}`;
    });
    let prefix: string | undefined;
    if (slash >= 0) {
      prefix = rest.slice(slash).replace(/\/+$/, '');
      // Its length is checked by EtcdLog.open.
      if (prefix === '' || !/^[\x21-\x7e]+$/.test(prefix)) throw bad(key, `"${value}": prefix must be printable ASCII`);
    }
    return { kind: 'etcd', endpoints, prefix };
  }
  throw bad(key, `"${value}" is not local:///DIR or etcd://HOST:PORT,...[/PREFIX]`);
}

export function parseS3Endpoint(key: string, value: string): string {
  let u: URL;
  try {
    u = new URL(value);
  } catch {
    throw bad(key, `"${value}" is not a URL`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw bad(key, `"${value}" must be an http:// or https:// URL`);
  return value;
}

/** Node and cluster ids: printable, no spaces, bounded (limits.metaNodeIdLengthMax). */
export function parseId(key: string, value: string): string {
  if (value.length === 0 || value.length > limits.metaNodeIdLengthMax || !/^[A-Za-z0-9][A-Za-z0-9_.:-]*$/.test(value)) {
    throw bad(key, `"${value}" must be 1-${limits.metaNodeIdLengthMax} letters, digits, '_', '.', ':' or '-', starting with a letter or digit`);
  }
  return value;
}

const SIZE_UNITS: Record<string, number> = { '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 };

/** A byte count: a non-negative integer, or a string `N`, `NK`, `NM`, `NG`, `NT` (binary units; `NMiB`, `NMB` too). */
export function parseSize(key: string, value: unknown): number {
  let n: number;
  if (typeof value === 'number') {
    n = value;
  } else if (typeof value === 'string') {
    const m = /^(\d+)\s*([KMGT]?)(?:i?B)?$/i.exec(value.trim());
    if (!m) throw bad(key, `"${value}" is not a size (a number of bytes, optionally with K, M, G or T)`);
    n = Number(m[1]) * SIZE_UNITS[m[2]!.toUpperCase()]!;
  } else {
    throw bad(key, 'must be a size: a number of bytes or a string like "512M"');
  }
  if (!Number.isSafeInteger(n) || n < 0) throw bad(key, `${String(value)} is not a byte count from 0 to 2^53`);
  return n;
}

/** Disk cache size: 0 (off) or at least limits.chunkedDiskCacheBytesMin. */
export function parseDiskCacheSize(key: string, value: unknown): number {
  const n = parseSize(key, value);
  if (n !== 0 && n < limits.chunkedDiskCacheBytesMin) throw bad(key, `${String(value)} is below the smallest disk cache, ${limits.chunkedDiskCacheBytesMin} bytes (0 turns it off)`);
  return n;
}

function parseCacheDir(key: string, value: string, baseDir: string): string {
  if (value === '' || value.includes('\0')) throw bad(key, 'must be a directory path');
  return resolve(baseDir, value);
}

function checkShareName(key: string, name: string): void {
  if (!SHARE_NAME.test(name)) throw bad(key, `share name "${name}" must be 1-80 letters, digits, '_', '.', '-' or '$', starting with a letter or digit`);
  if (name.toUpperCase() === 'IPC$') throw bad(key, 'IPC$ is reserved');
}

export function parseUser(key: string, value: string): { name: string; password: string } {
  const colon = value.indexOf(':');
  if (colon <= 0) throw bad(key, `"${value.replace(/:.*/, ':***')}" is not NAME:PASSWORD`);
  const password = value.slice(colon + 1);
  if (password.length === 0) throw bad(key, 'empty password');
  return { name: value.slice(0, colon), password };
}

function names(key: string, value: unknown, table: Record<string, number>): number[] {
  if (!Array.isArray(value) || value.length === 0) throw bad(key, `must be a non-empty list of ${Object.keys(table).join(', ')}`);
  return value.map((v, i) => {
    const id = typeof v === 'string' ? table[v.toUpperCase()] ?? table[v] : undefined;
    if (id === undefined) throw bad(`${key}[${i}]`, `"${String(v)}" is not one of ${Object.keys(table).join(', ')}`);
    return id;
  });
}

export function parseNameList(key: string, value: string, table: Record<string, number>): number[] {
  return names(key, value.split(',').map((s) => s.trim()).filter(Boolean), table);
}

const KNOWN_KEYS = new Set([
  'listen',
  'shares',
  'usersFile',
  'encryption',
  'signing',
  'dialects',
  'guest',
  'anonymous',
  'serverName',
  'logLevel',
  'stateDir',
  'store',
  's3Endpoint',
  'meta',
  'nodeId',
  'clusterId',
  'cache',
]);

/** Reads and validates a JSON config file; relative paths are resolved against the file's directory. */
export function loadConfigFile(path: string, into: Config): Config {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new TesseraError('TESSERA_CONFIG_INVALID', `config: cannot read ${path}: ${(err as Error).message}`);
  }
  const base = resolve(path, '..');
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw bad('(top level)', 'must be a JSON object');
  const o = raw as Record<string, unknown>;
  for (const k of Object.keys(o)) if (!KNOWN_KEYS.has(k)) throw bad(k, `unknown key (known: ${[...KNOWN_KEYS].join(', ')})`);
  const c = into;
  if (o.listen !== undefined) {
    if (!Array.isArray(o.listen)) throw bad('listen', 'must be a list of "HOST:PORT" strings');
    c.listen = o.listen.map((v, i) => {
      if (typeof v !== 'string') throw bad(`listen[${i}]`, 'must be a "HOST:PORT" string');
      return parseListen(`listen[${i}]`, v);
    });
  }
  if (o.shares !== undefined) {
    if (!Array.isArray(o.shares)) throw bad('shares', 'must be a list of {name, path} (no path: a chunked share)');
    c.shares = o.shares.map((v, i) => {
      const key = `shares[${i}]`;
      if (typeof v !== 'object' || v === null) throw bad(key, 'must be an object {name, path}');
      const s = v as Record<string, unknown>;
      for (const k of Object.keys(s)) if (!['name', 'path', 'encrypt', 'readOnly', 'comment'].includes(k)) throw bad(`${key}.${k}`, 'unknown key (known: name, path, encrypt, readOnly, comment)');
      if (typeof s.name !== 'string') throw bad(`${key}.name`, 'must be a string');
      checkShareName(`${key}.name`, s.name);
      if (s.path !== undefined && (typeof s.path !== 'string' || !s.path)) throw bad(`${key}.path`, 'must be a non-empty string (or absent: a chunked share)');
      for (const b of ['encrypt', 'readOnly'] as const) if (s[b] !== undefined && typeof s[b] !== 'boolean') throw bad(`${key}.${b}`, 'must be true or false');
      if (s.comment !== undefined && typeof s.comment !== 'string') throw bad(`${key}.comment`, 'must be a string');
      return { name: s.name, path: typeof s.path === 'string' ? resolve(base, s.path) : undefined, encrypt: s.encrypt === true, readOnly: s.readOnly === true, comment: (s.comment as string) ?? '' };
    });
  }
  if (o.usersFile !== undefined) {
    if (typeof o.usersFile !== 'string') throw bad('usersFile', 'must be a path');
    c.usersFile = resolve(base, o.usersFile);
  }
  if (o.encryption !== undefined) {
    const e = o.encryption as Record<string, unknown>;
    if (typeof e !== 'object' || e === null) throw bad('encryption', 'must be an object {required, ciphers}');
    for (const k of Object.keys(e)) if (!['required', 'ciphers'].includes(k)) throw bad(`encryption.${k}`, 'unknown key (known: required, ciphers)');
    if (e.required !== undefined) {
      if (typeof e.required !== 'boolean') throw bad('encryption.required', 'must be true or false');
      c.encryptRequired = e.required;
    }
    if (e.ciphers !== undefined) c.ciphers = names('encryption.ciphers', e.ciphers, CIPHER_NAMES);
  }
  if (o.signing !== undefined) {
    const s = o.signing as Record<string, unknown>;
    if (typeof s !== 'object' || s === null) throw bad('signing', 'must be an object {required, algorithms}');
    for (const k of Object.keys(s)) if (!['required', 'algorithms'].includes(k)) throw bad(`signing.${k}`, 'unknown key (known: required, algorithms)');
    if (s.required !== undefined) {
      if (typeof s.required !== 'boolean') throw bad('signing.required', 'must be true or false');
      c.signingRequired = s.required;
    }
    if (s.algorithms !== undefined) c.signingAlgorithms = names('signing.algorithms', s.algorithms, SIGNING_NAMES);
  }
  if (o.dialects !== undefined) c.dialects = names('dialects', o.dialects, DIALECT_NAMES);
  for (const b of ['guest', 'anonymous'] as const) {
    if (o[b] !== undefined) {
      if (typeof o[b] !== 'boolean') throw bad(b, 'must be true or false');
      c[b] = o[b] as boolean;
    }
  }
  if (o.serverName !== undefined) {
    if (typeof o.serverName !== 'string' || !/^[A-Za-z0-9-]{1,15}$/.test(o.serverName)) throw bad('serverName', 'must be 1-15 letters, digits or "-" (a NetBIOS name)');
    c.serverName = o.serverName.toUpperCase();
  }
  if (o.logLevel !== undefined) {
    if (typeof o.logLevel !== 'string' || !['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].includes(o.logLevel)) throw bad('logLevel', 'must be one of fatal, error, warn, info, debug, trace, silent');
    c.logLevel = o.logLevel;
  }
  if (o.stateDir !== undefined) {
    if (typeof o.stateDir !== 'string') throw bad('stateDir', 'must be a path');
    c.stateDir = resolve(base, o.stateDir);
  }
  const str = (k: string): string => {
    if (typeof o[k] !== 'string') throw bad(k, 'must be a string');
    return o[k] as string;
  };
  if (o.store !== undefined) c.store = parseStore('store', str('store'), base);
  if (o.s3Endpoint !== undefined) c.s3Endpoint = parseS3Endpoint('s3Endpoint', str('s3Endpoint'));
  if (o.meta !== undefined) c.meta = parseMeta('meta', str('meta'), base);
  if (o.nodeId !== undefined) c.nodeId = parseId('nodeId', str('nodeId'));
  if (o.clusterId !== undefined) c.clusterId = parseId('clusterId', str('clusterId'));
  if (o.cache !== undefined) {
    const k = o.cache as Record<string, unknown>;
    if (typeof k !== 'object' || k === null || Array.isArray(k)) throw bad('cache', 'must be an object {dir, bytes, memoryBytes}');
    for (const x of Object.keys(k)) if (!['dir', 'bytes', 'memoryBytes'].includes(x)) throw bad(`cache.${x}`, 'unknown key (known: dir, bytes, memoryBytes)');
    if (k.dir !== undefined) {
      if (typeof k.dir !== 'string') throw bad('cache.dir', 'must be a directory path');
      c.cache.dir = parseCacheDir('cache.dir', k.dir, base);
    }
    if (k.bytes !== undefined) c.cache.bytes = parseDiskCacheSize('cache.bytes', k.bytes);
    if (k.memoryBytes !== undefined) c.cache.memoryBytes = parseSize('cache.memoryBytes', k.memoryBytes);
  }
  return c;
}

/** The value after flag `args[i]`, or a clear error. */
export function flagValue(args: readonly string[], i: number, flag: string): string {
  const v = args[i + 1];
  if (v === undefined || v.startsWith('--')) throw new TesseraError('TESSERA_CONFIG_INVALID', `${flag} needs a value`);
  return v;
}

/**
 * The flags serve and fsck share (where chunked shares keep data and metadata): applies `args[i]`
 * to `config` and returns how many arguments it used (0 if it is not one of them).
 */
export function applyBackendFlag(config: Config, args: readonly string[], i: number, cwd: string): number {
  const a = args[i]!;
  switch (a) {
    case '--store':
      config.store = parseStore(a, flagValue(args, i, a), cwd);
      return 2;
    case '--s3-endpoint':
      config.s3Endpoint = parseS3Endpoint(a, flagValue(args, i, a));
      return 2;
    case '--meta':
      config.meta = parseMeta(a, flagValue(args, i, a), cwd);
      return 2;
    case '--node-id':
      config.nodeId = parseId(a, flagValue(args, i, a));
      return 2;
    case '--cluster-id':
      config.clusterId = parseId(a, flagValue(args, i, a));
      return 2;
    case '--state-dir':
      config.stateDir = resolve(cwd, flagValue(args, i, a));
      return 2;
    case '--cache-dir':
      config.cache.dir = parseCacheDir(a, flagValue(args, i, a), cwd);
      return 2;
    case '--cache-bytes':
      config.cache.bytes = parseDiskCacheSize(a, flagValue(args, i, a));
      return 2;
    case '--cache-memory-bytes':
      config.cache.memoryBytes = parseSize(a, flagValue(args, i, a));
      return 2;
    default:
      return 0;
  }
}
