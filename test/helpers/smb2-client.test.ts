// Tests of the test-side SMB2 client (test/helpers/smb2-client.ts) on its own: its MAC against the
// RFC 4493 vectors, its create-context parser on a hand-built response, and a round trip of every
// command it offers against a private Samba (the reference server), unsigned and signed, on each
// dialect it speaks. The semantics suites trust it; it must be right independently of Tessera.

import { mkdtempSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, startSamba, type RunningServer } from './servers.js';
import {
  Access,
  aesCmac,
  Disposition,
  Lease,
  NoticeQueue,
  Oplock,
  parseCreateResponse,
  Share,
  Smb2Client,
  Status,
  tracker,
} from './smb2-client.js';

describe('AES-CMAC (RFC 4493 section 4 examples)', () => {
  const key = Buffer.from('2b7e151628aed2a6abf7158809cf4f3c', 'hex');
  const message = Buffer.from(
    '6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51' +
      '30c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710',
    'hex',
  );
  it.each([
    [0, 'bb1d6929e95937287fa37d129b756746'],
    [16, '070a16b46b4d4144f79bdd9dd04a287c'],
    [40, 'dfa66747de9ae63030ca32611497c827'],
    [64, '51f0bebf7e3b9d92fc49741779363cfe'],
  ])('message of %i bytes', (length, mac) => {
    expect(aesCmac(key, message.subarray(0, length)).toString('hex')).toBe(mac);
  });
});

describe('parseCreateResponse', () => {
  it('decodes the fixed fields and a chain of lease v2, DH2Q and MxAc contexts (MS-SMB2 2.2.14)', () => {
    const context = (name: string, data: Buffer, last: boolean): Buffer => {
      const size = 24 + data.length;
      const c = Buffer.alloc(last ? size : (size + 7) & ~7);
      if (!last) c.writeUInt32LE(c.length, 0);
      c.writeUInt16LE(16, 4);
      c.writeUInt16LE(4, 6);
      c.writeUInt16LE(24, 10);
      c.writeUInt32LE(data.length, 12);
      c.write(name, 16, 'latin1');
      data.copy(c, 24);
      return c;
    };
    const lease = Buffer.alloc(52);
    lease.fill(0xaa, 0, 16);
    lease.writeUInt32LE(Lease.RH, 16);
    lease.writeUInt32LE(0x4, 20); // parent key set
    lease.fill(0xbb, 32, 48);
    lease.writeUInt16LE(3, 48);
    const dh2q = Buffer.alloc(8);
    dh2q.writeUInt32LE(60_000, 0);
    const mxac = Buffer.alloc(8);
    mxac.writeUInt32LE(0x1f01ff, 4);
    const chain = Buffer.concat([context('RqLs', lease, false), context('DH2Q', dh2q, false), context('MxAc', mxac, true)]);
    const msg = Buffer.alloc(64 + 88);
    msg.writeUInt32BE(0xfe534d42, 0);
    const b = 64;
    msg.writeUInt16LE(89, b);
    msg[b + 2] = Oplock.LEASE;
    msg.writeUInt32LE(2, b + 4); // FILE_CREATED
    msg.writeBigUInt64LE(4n << 30n, b + 48);
    msg.writeUInt32LE(0x20, b + 56);
    msg.fill(0x11, b + 64, b + 72);
    msg.fill(0x22, b + 72, b + 80);
    msg.writeUInt32LE(64 + 88, b + 80);
    msg.writeUInt32LE(chain.length, b + 84);
    const r = parseCreateResponse(Buffer.concat([msg, chain]));
    expect(r.OplockLevel).toBe(Oplock.LEASE);
    expect(r.CreateAction).toBe(2);
    expect(r.EndofFile).toBe(4n << 30n);
    expect(r.FileId.toString('hex')).toBe('11'.repeat(8) + '22'.repeat(8));
    expect(r.lease).toEqual({ LeaseKey: Buffer.alloc(16, 0xaa), LeaseState: Lease.RH, Flags: 4, ParentLeaseKey: Buffer.alloc(16, 0xbb), Epoch: 3 });
    expect(r.durableV2).toEqual({ Timeout: 60_000, Flags: 0 });
    expect(r.maximalAccess).toEqual({ QueryStatus: 0, MaximalAccess: 0x1f01ff });
    expect(r.durable).toBe(false);
  });
});

describe('NoticeQueue', () => {
  it('hands out queued notices first, then waits for the next, and times out', async () => {
    const q = new NoticeQueue<number>();
    q.push(1);
    expect(await q.next()).toBe(1);
    const later = q.next();
    q.push(2);
    expect(await later).toBe(2);
    await expect(q.next(10)).rejects.toThrow(/within 10 ms/);
    q.push(3);
    expect(q.queued()).toEqual([3]);
  });
});

describe('Smb2Client against Samba', () => {
  const user = 'smb2cliuser';
  const password = 'Cli-Passw0rd';
  let root = '';
  let server: RunningServer;

  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), 'tessera-smb2cli-'));
    // workDir under root (see windows-semantics.test.ts: smbd must reach its lock directory).
    server = await startSamba({ port: await freePort(), shares: [{ name: 'vms', path: join(root, 'share') }], user, password, workDir: join(root, 'samba') });
  });

  afterAll(async () => {
    await server?.stop();
    if (root) rmSync(root, { recursive: true, force: true });
  });

  const cases = [0x0210, 0x0300, 0x0302].flatMap((dialect) => [false, true].map((sign) => [dialect, sign] as const));
  it.each(cases)('dialect 0x%s, signed %s: every command round-trips', async (dialect, sign) => {
    const c = await Smb2Client.open({ host: server.host, port: server.port, user, password, share: 'vms', dialects: [dialect], sign });
    try {
      expect(c.dialect).toBe(dialect);
      const name = `rt-${dialect.toString(16)}-${sign}.bin`;
      const f = await c.create({
        name,
        desiredAccess: Access.GENERIC_READ | Access.GENERIC_WRITE | Access.DELETE,
        disposition: Disposition.OVERWRITE_IF,
        maximalAccess: true,
        ...(dialect >= 0x0300 ? { appInstanceId: randomBytes(16), durableV2: { createGuid: randomBytes(16) } } : {}),
      });
      expect(f.maximalAccess?.QueryStatus).toBe(Status.SUCCESS);
      expect(f.maximalAccess!.MaximalAccess & Access.WRITE_DATA).toBe(Access.WRITE_DATA);
      // Multi-credit (1 MiB = 16 credits) write and read.
      const data = randomBytes(1 << 20);
      expect(await c.write(f.FileId, 0, data)).toBe(data.length);
      await c.flush(f.FileId);
      expect((await c.read(f.FileId, 0, data.length)).equals(data)).toBe(true);
      await c.setEndOfFile(f.FileId, 3n << 30n);
      expect((await c.queryStandard(f.FileId)).EndOfFile).toBe(3n << 30n);
      expect((await c.queryBasic(f.FileId)).FileAttributes & 0x10).toBe(0); // not a directory
      await c.rename(f.FileId, `${name}.renamed`);
      await c.setDeleteOnClose(f.FileId);
      await c.closeFile(f.FileId);
      const gone = await c.create({ name: `${name}.renamed`, desiredAccess: Access.GENERIC_READ, disposition: Disposition.OPEN }).catch((e: { status: number }) => e.status);
      expect(gone).toBe(Status.OBJECT_NAME_NOT_FOUND);
      await c.echo();
      // Unsigned sessions still see a signed final SESSION_SETUP response; signed ones see every response signed.
      if (sign) expect(c.verifiedSignatures).toBeGreaterThanOrEqual(13);
      else expect(c.verifiedSignatures).toBeLessThanOrEqual(1);
    } finally {
      c.destroy();
    }
  });

  it('lease v1 on SMB 2.1 and v2 on 3.0.2 come back in their own forms', async () => {
    const c21 = await Smb2Client.open({ host: server.host, port: server.port, user, password, share: 'vms', dialects: [0x0210] });
    const c3 = await Smb2Client.open({ host: server.host, port: server.port, user, password, share: 'vms', dialects: [0x0302] });
    try {
      const v1 = await c21.create({ name: 'lease-v1.bin', desiredAccess: Access.GENERIC_READ, shareAccess: Share.READ, lease: { key: randomBytes(16), state: Lease.RH, version: 1 } });
      expect(v1.lease?.LeaseState).toBe(Lease.RH);
      expect(v1.lease?.Epoch).toBeNull();
      const v2 = await c3.create({ name: 'lease-v2.bin', desiredAccess: Access.GENERIC_READ, shareAccess: Share.READ, lease: { key: randomBytes(16), state: Lease.RWH } });
      expect(v2.lease?.LeaseState).toBe(Lease.RWH);
      expect(v2.lease?.Epoch).toBeGreaterThan(0);
    } finally {
      c21.destroy();
      c3.destroy();
    }
  });

  it('reports a sent request, and destroy() rejects what is outstanding', async () => {
    const c = await Smb2Client.open({ host: server.host, port: server.port, user, password, share: 'vms', dialects: [0x0302] });
    const f = await c.create({ name: 'destroy.bin', desiredAccess: Access.GENERIC_WRITE, disposition: Disposition.OVERWRITE_IF });
    const t = tracker();
    const w = c.write(f.FileId, 0, randomBytes(4 << 20), { track: t.track });
    const sent = await t.sent;
    expect(sent.command).toBe(0x09);
    c.destroy();
    await expect(w).rejects.toThrow(/destroyed/);
    expect(c.isClosed).toBe(true);
    await expect(c.echo()).rejects.toThrow(/destroyed/);
  });
});
