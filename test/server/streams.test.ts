// Named streams through SMB2 CREATE on a posix share and a chunked share: a file deleted while one of
// its streams is open goes when that stream's last open closes (MS-FSA 2.1.5.4; smbtorture
// smb2.streams.delete), and "name::$DATA" names the unnamed data stream, which a directory does not
// have (MS-FSA 2.1.5.1; smbtorture smb2.streams.dir).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, startTessera, type RunningServer } from '../helpers/servers.js';
import { Access, CreateOption, Disposition, Share, Smb2Client, SmbStatusError, Status } from '../helpers/smb2-client.js';

const user = 'streamuser';
const password = 'Stream-Pw-1234';
const NOT_A_DIRECTORY = 0xc0000103;
const FILE_IS_A_DIRECTORY = 0xc00000ba;

let root = '';
let server: RunningServer | undefined;
let port = 0;

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'tessera-streams-'));
  port = await freePort();
  server = await startTessera({
    port,
    shares: [{ name: 'px', path: join(root, 'px') }],
    users: [{ name: user, password }],
    extraArgs: ['--log-level', 'warn', '--state-dir', join(root, 'state'), '--share', 'ck', '--store', `file://${join(root, 'objects')}`, '--meta', `local://${join(root, 'meta')}`],
  });
});

afterAll(async () => {
  await server?.stop();
  if (root) rmSync(root, { recursive: true, force: true });
});

async function statusOf(p: Promise<unknown>): Promise<number> {
  try {
    await p;
    return Status.SUCCESS;
  } catch (err) {
    if (err instanceof SmbStatusError) return err.status;
    throw err;
  }
}

for (const share of ['px', 'ck']) {
  describe(`named streams on share ${share}`, () => {
    it('a file deleted while a stream is open goes when the stream closes', async () => {
      const c = await Smb2Client.open({ host: server!.host, port, user, password, share });
      try {
        const all = Share.READ | Share.WRITE | Share.DELETE;
        const s = await c.create({ name: 'del.txt:one', desiredAccess: Access.READ_DATA | Access.WRITE_DATA, shareAccess: all, disposition: Disposition.CREATE });
        await c.write(s.FileId, 0, Buffer.from('test data'));
        const f = await c.create({ name: 'del.txt', desiredAccess: Access.DELETE, shareAccess: all, disposition: Disposition.OPEN, createOptions: CreateOption.NON_DIRECTORY | CreateOption.DELETE_ON_CLOSE });
        await c.closeFile(f.FileId);
        // The stream's handle still reads; names of the file and its stream are delete-pending.
        expect((await c.read(s.FileId, 0, 9)).toString()).toBe('test data');
        expect(await statusOf(c.create({ name: 'del.txt', desiredAccess: Access.READ_DATA, shareAccess: all, disposition: Disposition.OPEN_IF }))).toBe(Status.DELETE_PENDING);
        expect(await statusOf(c.create({ name: 'del.txt:one', desiredAccess: Access.READ_DATA, shareAccess: all, disposition: Disposition.OPEN_IF }))).toBe(Status.DELETE_PENDING);
        await c.closeFile(s.FileId);
        expect(await statusOf(c.create({ name: 'del.txt', desiredAccess: Access.READ_DATA, shareAccess: all, disposition: Disposition.OPEN }))).toBe(Status.OBJECT_NAME_NOT_FOUND);
      } finally {
        await c.close();
      }
    });

    it('"dir::$DATA" is not a directory', async () => {
      const c = await Smb2Client.open({ host: server!.host, port, user, password, share });
      try {
        const d = await c.create({ name: 'sdir', desiredAccess: Access.READ_DATA, shareAccess: Share.READ | Share.WRITE, disposition: Disposition.CREATE, createOptions: CreateOption.DIRECTORY });
        expect(await statusOf(c.create({ name: 'sdir::$DATA', desiredAccess: Access.WRITE_DATA, shareAccess: Share.NONE, disposition: Disposition.OPEN, createOptions: CreateOption.DIRECTORY }))).toBe(NOT_A_DIRECTORY);
        expect(await statusOf(c.create({ name: 'sdir::$DATA', desiredAccess: Access.WRITE_DATA, shareAccess: Share.NONE, disposition: Disposition.OPEN, createOptions: 0 }))).toBe(FILE_IS_A_DIRECTORY);
        await c.closeFile(d.FileId);
      } finally {
        await c.close();
      }
    });
  });
}
