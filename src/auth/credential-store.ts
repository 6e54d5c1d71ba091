// The credential store port and two implementations: a JSON file for operators and an in-memory
// store for tests and `--user` flags.
//
// What is stored is the NT hash, NTOWFv1 = MD4(UTF-16LE(password)) (MS-NLMP 3.3.1), never the
// password. Clear text is hashed on the way in and not kept: it is never written to disk and no
// object retains it (JavaScript strings cannot be wiped, so "not kept" means no reference survives
// the call). Beware: for NTLM the NT hash is password-equivalent. Anyone holding it can authenticate
// as the user (pass-the-hash) without knowing the password, which is why the file is created with
// mode 0600, replaced atomically, and refused at open when group or others can access it.
import { randomBytes } from 'node:crypto';
import { open, readFile, rename, stat, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { TesseraError } from '../base/errors.js';
import { ntowfv1, upcase } from './ntlm-crypto.js';
import { FIRST_USER_RID } from './sid.js';

/** One account as the authentication code needs it. */
export interface CredentialRecord {
  /** The account name as stored (its canonical spelling; lookups are case-insensitive). */
  user: string;
  /** NTOWFv1 of the password, 16 bytes. Password-equivalent for NTLM: treat as a secret. */
  ntHash: Buffer;
  /** Relative identifier; the user's SID is the server's machine SID plus this RID. */
  rid: number;
  disabled?: boolean;
}

/** The port the NTLM server consults. `user` is compared case-insensitively. */
export interface CredentialStore {
  lookup(user: string): Promise<CredentialRecord | undefined>;
}

/** A user as listed (no secrets). */
export interface CredentialListing {
  name: string;
  rid: number;
  created: string;
  disabled: boolean;
}

export const USER_NAME_CHARS_MAX = 64;
export const PASSWORD_UNITS_MAX = 256;
const FILE_FORMAT_VERSION = 1;
const NT_HASH_HEX = /^[0-9a-f]{32}$/;
// Characters Windows refuses in account names ("/\[]:;|=,+*?<>@ and the double quote).
const FORBIDDEN_NAME_CHARS = /["/\\[\]:;|=,+*?<>@]/;
// eslint-disable-next-line no-control-regex
const CONTROL_CHARS = /[\u0000-\u001f\u007f-\u009f]/;

function storeError(message: string, cause?: unknown): TesseraError {
  return new TesseraError('TESSERA_USER_STORE', message, cause === undefined ? undefined : { cause });
}

/** Throws unless `name` is a valid account name: 1..64 characters, no control or reserved characters. */
export function validateUserName(name: string): void {
  const chars = [...name].length;
  if (chars < 1 || chars > USER_NAME_CHARS_MAX) throw storeError(`user name must be 1..${USER_NAME_CHARS_MAX} characters`);
  if (CONTROL_CHARS.test(name)) throw storeError('user name contains a control character');
  if (FORBIDDEN_NAME_CHARS.test(name)) throw storeError('user name contains one of "/\\[]:;|=,+*?<>@');
  if (name.trim() !== name) throw storeError('user name has leading or trailing white space');
  if (/^[. ]+$/.test(name)) throw storeError('user name consists only of dots and spaces');
}

function hashPassword(password: string): Buffer {
  if (typeof password !== 'string' || password.length === 0) throw storeError('password must not be empty');
  if (password.length > PASSWORD_UNITS_MAX) throw storeError(`password longer than ${PASSWORD_UNITS_MAX} characters`);
  return ntowfv1(password);
}

interface Entry {
  name: string;
  ntHash: Buffer;
  rid: number;
  created: string;
  disabled: boolean;
}

function nextRid(entries: Iterable<Entry>): number {
  let rid = FIRST_USER_RID;
  for (const e of entries) if (e.rid >= rid) rid = e.rid + 1;
  return rid;
}

function toRecord(e: Entry): CredentialRecord {
  // A copy of the hash: callers must not be able to alter the store's entry.
  return { user: e.name, ntHash: Buffer.from(e.ntHash), rid: e.rid, disabled: e.disabled };
}

/** In-memory store for tests and command-line users. Keeps only NT hashes. */
export class MemoryCredentialStore implements CredentialStore {
  private readonly entries = new Map<string, Entry>();

  /** Adds a user by password (hashed immediately). Returns the RID assigned. */
  add(name: string, password: string, rid?: number): number {
    return this.addHash(name, hashPassword(password), rid);
  }

  /** Adds a user by NT hash (16 bytes). */
  addHash(name: string, ntHash: Buffer, rid?: number): number {
    validateUserName(name);
    if (ntHash.length !== 16) throw storeError('NT hash must be 16 bytes');
    const key = upcase(name);
    if (this.entries.has(key)) throw storeError(`user ${name} already exists`);
    const r = rid ?? nextRid(this.entries.values());
    this.entries.set(key, { name, ntHash: Buffer.from(ntHash), rid: r, created: new Date().toISOString(), disabled: false });
    return r;
  }

  remove(name: string): boolean {
    return this.entries.delete(upcase(name));
  }

  setDisabled(name: string, disabled: boolean): void {
    const e = this.entries.get(upcase(name));
    if (!e) throw storeError(`no user ${name}`);
    e.disabled = disabled;
  }

  list(): CredentialListing[] {
    return [...this.entries.values()].map((e) => ({ name: e.name, rid: e.rid, created: e.created, disabled: e.disabled }));
  }

  async lookup(user: string): Promise<CredentialRecord | undefined> {
    const e = this.entries.get(upcase(user));
    return e ? toRecord(e) : undefined;
  }
}

interface FileShape {
  version: number;
  users: { name: string; ntHash: string; rid: number; created: string; disabled?: boolean }[];
}

function parseFile(text: string, path: string): Map<string, Entry> {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw storeError(`${path}: not JSON`, e);
  }
  const d = doc as Partial<FileShape>;
  if (typeof d !== 'object' || d === null || d.version !== FILE_FORMAT_VERSION) {
    throw storeError(`${path}: unsupported format version ${String((d as { version?: unknown } | null)?.version)}`);
  }
  if (!Array.isArray(d.users)) throw storeError(`${path}: "users" is not an array`);
  const out = new Map<string, Entry>();
  const rids = new Set<number>();
  for (const u of d.users as unknown[]) {
    const r = u as Partial<FileShape['users'][number]>;
    if (typeof r !== 'object' || r === null || typeof r.name !== 'string') throw storeError(`${path}: entry without a name`);
    validateUserName(r.name);
    if (typeof r.ntHash !== 'string' || !NT_HASH_HEX.test(r.ntHash)) throw storeError(`${path}: ${r.name}: ntHash must be 32 lower-case hex digits`);
    if (typeof r.rid !== 'number' || !Number.isInteger(r.rid) || r.rid < 0 || r.rid > 0xffffffff) throw storeError(`${path}: ${r.name}: bad rid`);
    if (typeof r.created !== 'string') throw storeError(`${path}: ${r.name}: missing created`);
    if (r.disabled !== undefined && typeof r.disabled !== 'boolean') throw storeError(`${path}: ${r.name}: disabled must be a boolean`);
    const key = upcase(r.name);
    if (out.has(key)) throw storeError(`${path}: duplicate user ${r.name}`);
    if (rids.has(r.rid)) throw storeError(`${path}: duplicate rid ${r.rid}`);
    rids.add(r.rid);
    out.set(key, { name: r.name, ntHash: Buffer.from(r.ntHash, 'hex'), rid: r.rid, created: r.created, disabled: r.disabled ?? false });
  }
  return out;
}

function serialize(entries: Map<string, Entry>): string {
  const doc: FileShape = {
    version: FILE_FORMAT_VERSION,
    users: [...entries.values()].map((e) => ({
      name: e.name,
      ntHash: e.ntHash.toString('hex'),
      rid: e.rid,
      created: e.created,
      ...(e.disabled ? { disabled: true } : {}),
    })),
  };
  return JSON.stringify(doc, null, 2) + '\n';
}

/** Writes `data` to `path` atomically: temp file (0600) + fsync + rename + fsync of the directory. */
async function writeFileAtomic(path: string, data: string): Promise<void> {
  const dir = dirname(path);
  const tmp = join(dir, `.${basename(path)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  const fh = await open(tmp, 'wx', 0o600);
  try {
    try {
      await fh.writeFile(data, 'utf8');
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (e) {
    await unlink(tmp).catch(() => undefined);
    throw e;
  }
  const dh = await open(dir, 'r');
  try {
    await dh.sync();
  } finally {
    await dh.close();
  }
}

/**
 * Users in a JSON file: {"version":1,"users":[{"name","ntHash" (hex),"rid","created"}]}.
 * Mutations are serialized, written atomically, and applied in memory only after the write succeeded.
 * Changes made to the file by another process are not picked up (reopen the store to reload).
 */
export class FileCredentialStore implements CredentialStore {
  private tail: Promise<unknown> = Promise.resolve();

  private constructor(
    readonly path: string,
    private entries: Map<string, Entry>,
  ) {}

  /** Opens (or, if absent, starts empty without creating) the store at `path`. */
  static async open(path: string): Promise<FileCredentialStore> {
    let text: string;
    try {
      const st = await stat(path);
      if ((st.mode & 0o077) !== 0) {
        throw storeError(`${path}: mode ${(st.mode & 0o777).toString(8)} lets others read NT hashes; run chmod 600 ${path}`);
      }
      text = await readFile(path, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return new FileCredentialStore(path, new Map());
      if (e instanceof TesseraError) throw e;
      throw storeError(`${path}: cannot read`, e);
    }
    return new FileCredentialStore(path, parseFile(text, path));
  }

  private mutate<T>(change: (draft: Map<string, Entry>) => T): Promise<T> {
    const run = async (): Promise<T> => {
      const draft = new Map([...this.entries].map(([k, e]) => [k, { ...e }]));
      const result = change(draft);
      try {
        await writeFileAtomic(this.path, serialize(draft));
      } catch (e) {
        throw storeError(`${this.path}: cannot write`, e);
      }
      this.entries = draft;
      return result;
    };
    const p = this.tail.then(run, run);
    this.tail = p.catch(() => undefined);
    return p;
  }

  /** Adds a user; stores only NTOWFv1(password). Returns the RID assigned. */
  add(name: string, password: string): Promise<number> {
    validateUserName(name);
    const ntHash = hashPassword(password);
    return this.mutate((draft) => {
      const key = upcase(name);
      if (draft.has(key)) throw storeError(`user ${name} already exists`);
      const rid = nextRid(draft.values());
      draft.set(key, { name, ntHash, rid, created: new Date().toISOString(), disabled: false });
      return rid;
    });
  }

  /** Replaces a user's password (hash). */
  setPassword(name: string, password: string): Promise<void> {
    const ntHash = hashPassword(password);
    return this.mutate((draft) => {
      const e = draft.get(upcase(name));
      if (!e) throw storeError(`no user ${name}`);
      e.ntHash = ntHash;
    });
  }

  setDisabled(name: string, disabled: boolean): Promise<void> {
    return this.mutate((draft) => {
      const e = draft.get(upcase(name));
      if (!e) throw storeError(`no user ${name}`);
      e.disabled = disabled;
    });
  }

  /** Removes a user. Resolves false when there was no such user (and then writes nothing). */
  async remove(name: string): Promise<boolean> {
    if (!this.entries.has(upcase(name))) return false;
    return this.mutate((draft) => draft.delete(upcase(name)));
  }

  list(): CredentialListing[] {
    return [...this.entries.values()].map((e) => ({ name: e.name, rid: e.rid, created: e.created, disabled: e.disabled }));
  }

  async lookup(user: string): Promise<CredentialRecord | undefined> {
    const e = this.entries.get(upcase(user));
    return e ? toRecord(e) : undefined;
  }
}
