// Credential stores, the logon throttle and SID derivation.
import { chmod, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { TesseraError } from '../../src/base/errors.js';
import { limits } from '../../src/base/limits.js';
import { FileCredentialStore, MemoryCredentialStore, validateUserName } from '../../src/auth/credential-store.js';
import { ntowfv1 } from '../../src/auth/ntlm-crypto.js';
import { machineSidForName, sidForRid } from '../../src/auth/sid.js';
import { LogonThrottle } from '../../src/auth/throttle.js';

describe('FileCredentialStore', () => {
  let dir: string;
  let path: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tessera-auth-'));
    path = join(dir, 'users.json');
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('adds users with mode 0600, stores only the NT hash, and reloads', async () => {
    const s = await FileCredentialStore.open(path);
    expect(s.list()).toEqual([]);
    expect(await s.add('Alice', 'Password')).toBe(1000);
    expect(await s.add('bob', 'correct horse')).toBe(1001);
    const st = await stat(path);
    expect(st.mode & 0o777).toBe(0o600);
    const text = await readFile(path, 'utf8');
    expect(text).not.toContain('Password');
    expect(text).not.toContain('correct horse');
    const doc = JSON.parse(text);
    expect(doc.version).toBe(1);
    // MS-NLMP 4.2.2.1.2: NTOWFv1("Password")
    expect(doc.users[0]).toMatchObject({ name: 'Alice', ntHash: 'a4f49c406510bdcab6824ee7c30fd852', rid: 1000 });
    expect(typeof doc.users[0].created).toBe('string');
    // No temp files left behind.
    expect(await readdir(dir)).toEqual(['users.json']);

    const again = await FileCredentialStore.open(path);
    const rec = await again.lookup('ALICE');
    expect(rec?.user).toBe('Alice');
    expect(rec?.rid).toBe(1000);
    expect(rec?.ntHash.equals(ntowfv1('Password'))).toBe(true);
    expect(again.list().map((u) => u.name)).toEqual(['Alice', 'bob']);
  });

  it('remove, setPassword, setDisabled; duplicates refused case-insensitively', async () => {
    const s = await FileCredentialStore.open(path);
    await s.add('carol', 'one');
    await expect(s.add('CAROL', 'two')).rejects.toBeInstanceOf(TesseraError);
    await s.setPassword('Carol', 'two');
    expect((await s.lookup('carol'))!.ntHash.equals(ntowfv1('two'))).toBe(true);
    await s.setDisabled('carol', true);
    expect((await (await FileCredentialStore.open(path)).lookup('carol'))!.disabled).toBe(true);
    expect(await s.remove('CAROL')).toBe(true);
    expect(await s.remove('carol')).toBe(false);
    expect(await (await FileCredentialStore.open(path)).lookup('carol')).toBeUndefined();
  });

  it('serializes concurrent mutations without losing any', async () => {
    const s = await FileCredentialStore.open(path);
    await Promise.all(Array.from({ length: 20 }, (_, i) => s.add(`user${i}`, `pw${i}`)));
    const reopened = await FileCredentialStore.open(path);
    expect(reopened.list()).toHaveLength(20);
    expect(new Set(reopened.list().map((u) => u.rid)).size).toBe(20);
  });

  it('refuses a file others can read, and malformed files', async () => {
    const s = await FileCredentialStore.open(path);
    await s.add('dave', 'pw');
    await chmod(path, 0o644);
    await expect(FileCredentialStore.open(path)).rejects.toThrow(/chmod 600/);
    await writeFile(path, '{"version":2,"users":[]}', { mode: 0o600 });
    await chmod(path, 0o600);
    await expect(FileCredentialStore.open(path)).rejects.toThrow(/version/);
    await writeFile(path, '{"version":1,"users":[{"name":"x","ntHash":"zz","rid":1,"created":"t"}]}');
    await expect(FileCredentialStore.open(path)).rejects.toThrow(/ntHash/);
    await writeFile(path, 'not json');
    await expect(FileCredentialStore.open(path)).rejects.toThrow(/JSON/);
  });

  it('a failed write leaves memory unchanged', async () => {
    const s = await FileCredentialStore.open(join(dir, 'missing-dir', 'users.json'));
    await expect(s.add('erin', 'pw')).rejects.toBeInstanceOf(TesseraError);
    expect(s.list()).toEqual([]);
  });
});

describe('user names and MemoryCredentialStore', () => {
  it('validates names', () => {
    for (const ok of ['alice', 'Bob Smith', 'x', 'a'.repeat(64), 'ünïcödé', 'first.last', 'a-b_c']) expect(() => validateUserName(ok)).not.toThrow();
    for (const bad of ['', 'a'.repeat(65), 'a/b', 'a\\b', 'a[b', 'a]b', 'a:b', 'a;b', 'a|b', 'a=b', 'a,b', 'a+b', 'a*b', 'a?b', 'a<b', 'a>b', 'a@b', 'a"b', 'tab\t', 'nul\0', ' lead', 'trail ', '...']) {
      expect(() => validateUserName(bad), JSON.stringify(bad)).toThrow(TesseraError);
    }
  });

  it('memory store keeps hashes only and looks up case-insensitively', async () => {
    const m = new MemoryCredentialStore();
    expect(m.add('Frank', 'Password')).toBe(1000);
    expect(m.add('gina', 'x', 2000)).toBe(2000);
    expect(m.add('hank', 'y')).toBe(2001);
    expect(JSON.stringify(m.list())).not.toContain('Password');
    const r = await m.lookup('fRANK');
    expect(r?.user).toBe('Frank');
    expect(r?.ntHash.toString('hex')).toBe('a4f49c406510bdcab6824ee7c30fd852');
    // Returned hashes are copies.
    r!.ntHash.fill(0);
    expect((await m.lookup('frank'))!.ntHash.toString('hex')).toBe('a4f49c406510bdcab6824ee7c30fd852');
    expect(() => m.add('FRANK', 'z')).toThrow(TesseraError);
    expect(() => m.add('ivan', '')).toThrow(TesseraError);
    expect(m.remove('frank')).toBe(true);
    expect(await m.lookup('frank')).toBeUndefined();
  });
});

describe('LogonThrottle', () => {
  const mkClock = () => {
    let t = 1000;
    return { clock: { nowMs: () => t, monotonicMs: () => t }, advance: (ms: number) => (t += ms) };
  };
  const L = { logonFailuresPerWindowMax: 3, logonFailureWindowMs: 60_000, logonFailureDelayMs: 2_000 };

  it('delays an address after the limit within the window, and forgets as the window slides', () => {
    const { clock, advance } = mkClock();
    const t = new LogonThrottle(L, clock);
    expect(t.delayMsFor('10.0.0.1')).toBe(0);
    t.recordFailure('10.0.0.1');
    advance(10_000);
    t.recordFailure('10.0.0.1');
    expect(t.delayMsFor('10.0.0.1')).toBe(0);
    advance(10_000);
    t.recordFailure('10.0.0.1');
    expect(t.delayMsFor('10.0.0.1')).toBe(2_000);
    expect(t.delayMsFor('10.0.0.2')).toBe(0);
    advance(40_001); // the first failure leaves the window
    expect(t.delayMsFor('10.0.0.1')).toBe(0);
    t.recordFailure('10.0.0.1');
    expect(t.delayMsFor('10.0.0.1')).toBe(2_000);
    t.recordSuccess('10.0.0.1');
    expect(t.delayMsFor('10.0.0.1')).toBe(0);
    advance(120_000);
    expect(t.delayMsFor('10.0.0.1')).toBe(0);
    expect(t.trackedAddresses).toBe(0);
  });

  it('is bounded: the least recently failed address is evicted first', () => {
    const { clock } = mkClock();
    const t = new LogonThrottle({ ...L, logonFailuresPerWindowMax: 1 }, clock, 3);
    for (const a of ['a', 'b', 'c']) t.recordFailure(a);
    t.recordFailure('a'); // refresh a
    t.recordFailure('d'); // evicts b
    expect(t.trackedAddresses).toBe(3);
    expect(t.delayMsFor('b')).toBe(0);
    expect(t.delayMsFor('a')).toBe(2_000);
    expect(t.delayMsFor('c')).toBe(2_000);
    expect(t.delayMsFor('d')).toBe(2_000);
    for (let i = 0; i < 1000; i++) t.recordFailure(`x${i}`);
    expect(t.trackedAddresses).toBe(3);
  });

  it('takes its numbers from limits.ts', () => {
    const { clock } = mkClock();
    const t = new LogonThrottle(limits, clock);
    for (let i = 0; i < limits.logonFailuresPerWindowMax; i++) t.recordFailure('h');
    expect(t.delayMsFor('h')).toBe(limits.logonFailureDelayMs);
  });
});

describe('SIDs', () => {
  it('machine SIDs are deterministic, case-insensitive and well-formed', () => {
    const a = machineSidForName('node1');
    expect(a).toMatch(/^S-1-5-21-\d+-\d+-\d+$/);
    expect(machineSidForName('NODE1')).toBe(a);
    expect(machineSidForName('NODE2')).not.toBe(a);
    expect(sidForRid(a, 1000)).toBe(`${a}-1000`);
    expect(() => sidForRid(a, -1)).toThrow(RangeError);
  });
});
