// Oplocks against a running Tessera (the open table decides grants and breaks, Server.oplockBreak
// sends them, handlers/oplock-break.ts takes the acknowledgments): the cases of MS-FSA 2.1.4.12 that
// smbtorture smb2.oplock exercises, checked with the test client on real connections.
//
// "No break was sent" is checked without waiting for a timer: a break to a holder is written to its
// connection before the operation that caused it is answered, so an ECHO answered on the holder's
// connection after that comes behind any such break.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, startTessera, type RunningServer } from '../helpers/servers.js';
import { Access, CreateOption, Disposition, LockFlag, Oplock, Share, Smb2Client, SmbStatusError, Status, type ClientOptions } from '../helpers/smb2-client.js';

const user = 'oplockuser';
const password = 'Oplock-Passw0rd';
/** MS-ERREF 2.3.1. */
const STATUS_INVALID_OPLOCK_PROTOCOL = 0xc00000e3;
const ALL = Share.READ | Share.WRITE | Share.DELETE;
const RW = Access.READ_DATA | Access.WRITE_DATA;
const ATTR_ONLY = Access.READ_ATTRIBUTES | Access.WRITE_ATTRIBUTES | Access.SYNCHRONIZE;

let root = '';
let server: RunningServer | undefined;
let chunked: RunningServer | undefined;
let base: ClientOptions & { user: string; password: string; share: string };
/** The same share on the chunked driver, whose removals go through the metadata log. */
let chunkedBase: typeof base;

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'tessera-oplocktest-'));
  const port = await freePort();
  server = await startTessera({ port, shares: [{ name: 'vms', path: join(root, 'vms') }], users: [{ name: user, password }], extraArgs: ['--log-level', 'warn'] });
  base = { host: server.host, port, user, password, share: 'vms' };
  const cport = await freePort();
  const c = join(root, 'chunked');
  chunked = await startTessera({
    port: cport,
    shares: [],
    users: [{ name: user, password }],
    extraArgs: ['--log-level', 'warn', '--state-dir', c, '--share', 'vms', '--store', `file://${join(c, 'objects')}`, '--meta', `local://${join(c, 'meta')}`],
  });
  chunkedBase = { ...base, port: cport };
});

afterAll(async () => {
  await server?.stop();
  await chunked?.stop();
  if (root) rmSync(root, { recursive: true, force: true });
});

async function statusOf(p: Promise<unknown>): Promise<number> {
  try {
    await p;
    return Status.SUCCESS;
  } catch (e) {
    if (e instanceof SmbStatusError) return e.status;
    throw e;
  }
}

/** The breaks `c` received up to now (an ECHO round trip puts every break sent before it in the queue). */
async function breaksSoFar(c: Smb2Client) {
  await c.echo();
  const out = [];
  while (c.breaks.queued().length > 0) out.push(await c.breaks.next());
  return out.map((b) => (b.kind === 'oplock' ? { level: b.OplockLevel, fileId: b.FileId.toString('hex') } : b));
}

describe('level II oplocks (MS-FSA 2.1.4.12: IIOplocks break to none without acknowledgment)', () => {
  it('a write through a level II open breaks that open too; acknowledging the break is a protocol error', async () => {
    const c1 = await Smb2Client.open(base);
    const h1 = await c1.create({ name: 'self-ii.dat', desiredAccess: RW, shareAccess: Share.READ | Share.WRITE, oplock: Oplock.II });
    expect(h1.OplockLevel).toBe(Oplock.II);
    await c1.write(h1.FileId, 0, Buffer.from('x'));
    expect(await breaksSoFar(c1)).toEqual([{ level: Oplock.NONE, fileId: h1.FileId.toString('hex') }]);
    // MS-SMB2 3.3.5.22.1: a level II to none break is not acknowledged (smbtorture levelii500).
    expect(await statusOf(c1.ackOplockBreak(h1.FileId, Oplock.NONE))).toBe(STATUS_INVALID_OPLOCK_PROTOCOL);
    // The oplock is gone: a second write breaks nothing.
    await c1.write(h1.FileId, 1, Buffer.from('y'));
    expect(await breaksSoFar(c1)).toEqual([]);
    c1.destroy();
  });

  it('a byte-range lock through a level II open breaks it to none; a batch holder locking alone keeps its oplock', async () => {
    const c1 = await Smb2Client.open(base);
    const c2 = await Smb2Client.open(base);
    const batch = await c1.create({ name: 'brl.dat', desiredAccess: RW, shareAccess: Share.READ | Share.WRITE, oplock: Oplock.BATCH });
    expect(batch.OplockLevel).toBe(Oplock.BATCH);
    await c1.lock(batch.FileId, [{ offset: 0, length: 4, flags: LockFlag.EXCLUSIVE | LockFlag.FAIL_IMMEDIATELY }]);
    expect(await breaksSoFar(c1)).toEqual([]); // its own oplock key: no break (smbtorture brl2)

    // A second opener breaks the batch oplock to level II (acknowledged), then the holder's own lock
    // breaks that level II to none (smbtorture brl1).
    const second = c2.create({ name: 'brl.dat', desiredAccess: RW, shareAccess: Share.READ | Share.WRITE });
    const b = await c1.breaks.next();
    expect(b).toMatchObject({ kind: 'oplock', OplockLevel: Oplock.II });
    expect(await c1.ackOplockBreak(batch.FileId, Oplock.II)).toBe(Oplock.II);
    await second;
    await c1.lock(batch.FileId, [{ offset: 8, length: 4, flags: LockFlag.EXCLUSIVE | LockFlag.FAIL_IMMEDIATELY }]);
    expect(await breaksSoFar(c1)).toEqual([{ level: Oplock.NONE, fileId: batch.FileId.toString('hex') }]);
    c1.destroy();
    c2.destroy();
  });
});

describe('batch oplocks and opens (MS-FSA 2.1.4.12 case OPEN, 2.1.5.1.2)', () => {
  it('an attribute-only open that overwrites breaks a batch oplock to none, then gets level II', async () => {
    const c1 = await Smb2Client.open(base);
    const c2 = await Smb2Client.open(base);
    const h1 = await c1.create({ name: 'attr-overwrite.dat', desiredAccess: RW, shareAccess: ALL, oplock: Oplock.BATCH });
    expect(h1.OplockLevel).toBe(Oplock.BATCH);
    // Attribute-only without overwriting: no break, no oplock (smbtorture batch8).
    const stat = await c2.create({ name: 'attr-overwrite.dat', desiredAccess: ATTR_ONLY, shareAccess: ALL, disposition: Disposition.OPEN, oplock: Oplock.BATCH });
    expect(stat.OplockLevel).toBe(Oplock.NONE);
    expect(await breaksSoFar(c1)).toEqual([]);
    await c2.closeFile(stat.FileId);
    // With OVERWRITE_IF (smbtorture batch16).
    const p = c2.create({ name: 'attr-overwrite.dat', desiredAccess: ATTR_ONLY, shareAccess: ALL, disposition: Disposition.OVERWRITE_IF, oplock: Oplock.BATCH });
    const b = await c1.breaks.next();
    expect(b).toMatchObject({ kind: 'oplock', OplockLevel: Oplock.NONE });
    await c1.ackOplockBreak(h1.FileId, Oplock.NONE);
    expect((await p).OplockLevel).toBe(Oplock.II);
    c1.destroy();
    c2.destroy();
  });

  it('an unlink blocked by a batch holder that shares nothing breaks it to level II once, then fails (smbtorture batch1)', async () => {
    const c1 = await Smb2Client.open(base);
    const c2 = await Smb2Client.open(base);
    const h1 = await c1.create({ name: 'unlink.dat', desiredAccess: RW, shareAccess: Share.NONE, oplock: Oplock.BATCH });
    const unlink = () =>
      c2.create({ name: 'unlink.dat', desiredAccess: Access.DELETE, shareAccess: ALL, disposition: Disposition.OPEN, createOptions: CreateOption.DELETE_ON_CLOSE });
    const first = statusOf(unlink());
    expect(await c1.breaks.next()).toMatchObject({ kind: 'oplock', OplockLevel: Oplock.II });
    await c1.ackOplockBreak(h1.FileId, Oplock.II);
    expect(await first).toBe(Status.SHARING_VIOLATION);
    expect(await statusOf(unlink())).toBe(Status.SHARING_VIOLATION);
    expect(await breaksSoFar(c1)).toEqual([]);
    await c1.write(h1.FileId, 0, Buffer.from('z'));
    expect(await breaksSoFar(c1)).toEqual([{ level: Oplock.NONE, fileId: h1.FileId.toString('hex') }]);
    c1.destroy();
    c2.destroy();
  });
});

describe('SET_INFO and oplocks (MS-FSA 2.1.4.12 case SET_INFORMATION)', () => {
  it('setting the end of file through another open breaks a level II holder to none', async () => {
    const c1 = await Smb2Client.open(base);
    const c2 = await Smb2Client.open(base);
    const h1 = await c1.create({ name: 'eof.dat', desiredAccess: RW, shareAccess: ALL, oplock: Oplock.BATCH });
    const p = c2.create({ name: 'eof.dat', desiredAccess: RW, shareAccess: ALL });
    expect(await c1.breaks.next()).toMatchObject({ kind: 'oplock', OplockLevel: Oplock.II });
    await c1.ackOplockBreak(h1.FileId, Oplock.II);
    const h2 = await p;
    await c2.setEndOfFile(h2.FileId, 100);
    expect(await breaksSoFar(c1)).toEqual([{ level: Oplock.NONE, fileId: h1.FileId.toString('hex') }]);
    c1.destroy();
    c2.destroy();
  });

  it('a delete made pending by FileDispositionInformation fails new opens with DELETE_PENDING, breaking nothing (smbtorture doc)', async () => {
    const c1 = await Smb2Client.open(base);
    const c2 = await Smb2Client.open(base);
    const h1 = await c1.create({ name: 'doc.dat', desiredAccess: RW | Access.DELETE, shareAccess: ALL, oplock: Oplock.BATCH });
    await c1.setDeleteOnClose(h1.FileId);
    expect(await statusOf(c2.create({ name: 'doc.dat', desiredAccess: Access.READ_DATA, shareAccess: ALL, disposition: Disposition.OPEN }))).toBe(Status.DELETE_PENDING);
    expect(await breaksSoFar(c1)).toEqual([]);
    await c1.closeFile(h1.FileId);
    expect(await statusOf(c2.create({ name: 'doc.dat', desiredAccess: Access.READ_DATA, shareAccess: ALL, disposition: Disposition.OPEN }))).toBe(Status.OBJECT_NAME_NOT_FOUND);
    c1.destroy();
    c2.destroy();
  });

  it('a rename fails with SHARING_VIOLATION while the target directory is open with DELETE access, and breaks nothing (smbtorture exclusive6)', async () => {
    const c1 = await Smb2Client.open(base);
    const dir = await c1.create({ name: 'rdir', desiredAccess: Access.READ_DATA | Access.DELETE, shareAccess: ALL, disposition: Disposition.OPEN_IF, createOptions: CreateOption.DIRECTORY });
    const h1 = await c1.create({ name: 'rdir\\a.dat', desiredAccess: RW | Access.DELETE, shareAccess: Share.NONE, oplock: Oplock.EXCLUSIVE });
    expect(await statusOf(c1.rename(h1.FileId, 'rdir\\b.dat'))).toBe(Status.SHARING_VIOLATION);
    expect(await breaksSoFar(c1)).toEqual([]);
    await c1.closeFile(dir.FileId);
    await c1.rename(h1.FileId, 'rdir\\b.dat');
    expect(await breaksSoFar(c1)).toEqual([]);
    c1.destroy();
  });
});

describe('a delete-pending file whose last open is going away', () => {
  it('is opened again by name once that open has ended: no STATUS_DELETE_PENDING from a teardown still in flight', async () => {
    for (let round = 0; round < 10; round++) {
      const c0 = await Smb2Client.open(base);
      const c1 = await Smb2Client.open(base);
      const c2 = await Smb2Client.open(base);
      const name = `teardown-${round}.dat`;
      await c0.create({ name, desiredAccess: RW, shareAccess: ALL });
      const del = await c1.create({ name, desiredAccess: Access.DELETE, shareAccess: ALL, createOptions: CreateOption.DELETE_ON_CLOSE });
      await c1.closeFile(del.FileId); // not the last open: the file is now delete-pending
      expect(await statusOf(c2.create({ name, desiredAccess: Access.READ_DATA, shareAccess: ALL, disposition: Disposition.OPEN }))).toBe(Status.DELETE_PENDING);
      // The last open goes with its connection, and the file with it. A new connection (three round
      // trips: the server has seen the old one go) opens the name while that teardown may still run.
      c0.destroy();
      const c3 = await Smb2Client.open(base);
      const again = await c3.create({ name, desiredAccess: RW, shareAccess: ALL, disposition: Disposition.OPEN_IF });
      expect(again.CreateAction).toBe(2); // FILE_CREATED: the old file was deleted first
      c1.destroy();
      c2.destroy();
      c3.destroy();
    }
  });

  it.each(['posix', 'chunked'])('a directory removed by that teardown is never handed to a new open: a file can always be created in what it opened (%s; smbtorture exclusive6 then exclusive9)', async (driver) => {
    const opts = driver === 'posix' ? base : chunkedBase;
    for (let round = 0; round < 40; round++) {
      const c0 = await Smb2Client.open(opts);
      const c1 = await Smb2Client.open(opts);
      const dir = `teardir-${round}`;
      // exclusive6 leaves an open of the directory without DELETE behind; its deltree then makes the
      // directory delete-pending, and the leaked open goes with the connection.
      await c0.create({ name: dir, desiredAccess: Access.READ_DATA, shareAccess: ALL, createOptions: CreateOption.DIRECTORY, disposition: Disposition.OPEN_IF });
      const del = await c1.create({ name: dir, desiredAccess: Access.DELETE, shareAccess: ALL, createOptions: CreateOption.DIRECTORY | CreateOption.DELETE_ON_CLOSE });
      await c1.closeFile(del.FileId);
      c0.destroy();
      const c3 = await Smb2Client.open(opts);
      // Swept across the teardown's steps (the open table's record, then the removal).
      await new Promise((r) => setTimeout(r, round % 8));
      let opened: { FileId: Buffer } | undefined;
      try {
        opened = await c3.create({ name: dir, desiredAccess: Access.READ_DATA, shareAccess: ALL, createOptions: CreateOption.DIRECTORY, disposition: Disposition.OPEN_IF });
      } catch (e) {
        // Met while the old connection was still open: the directory was still delete-pending then.
        if (!(e instanceof SmbStatusError) || e.status !== Status.DELETE_PENDING) throw e;
      }
      if (opened !== undefined) {
        await c3.closeFile(opened.FileId);
        const f = await c3.create({ name: `${dir}\\inside.dat`, desiredAccess: RW, shareAccess: ALL, disposition: Disposition.OPEN_IF });
        await c3.closeFile(f.FileId);
      }
      c1.destroy();
      c3.destroy();
    }
  });
});
