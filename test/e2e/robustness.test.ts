// A malformed frame closes only its own connection. While one smbclient session stays connected,
// raw TCP connections send garbage, a non-zero Direct TCP header byte, an oversized frame, a
// truncated frame followed by FIN, broken SMB2 headers after a valid NEGOTIATE, and resets in the
// middle of a frame. Each bad connection must be closed by the server (or, for a well-framed
// SMB2 message with bad fields, answered with an error); the smbclient session must keep working
// on its same connection, a new session must work, and the server process must stay alive.
// TESSERA_E2E_SERVER=samba runs it against a private Samba (harness check).

import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { freePort, serverAlive, startSamba, startTessera, type RunningServer } from '../helpers/servers.js';
import { InteractiveSmbclient, parseLsBlocks, runSmbclient, sha256File } from '../helpers/smbclient.js';

const againstSamba = process.env['TESSERA_E2E_SERVER'] === 'samba';
const user = 'robustuser';
const password = 'Robust-Passw0rd';
const closeWaitMs = 10_000;

let root = '';
let server: RunningServer | undefined;

// ---------------------------------------------------------------------------------------------
// Raw connections

/** Direct TCP transport header, MS-SMB2 2.1: one zero byte and a 24-bit big-endian length. */
function frameHeader(length: number, firstByte = 0): Buffer {
  return Buffer.from([firstByte, (length >> 16) & 0xff, (length >> 8) & 0xff, length & 0xff]);
}

/** SMB2 sync header, MS-SMB2 2.2.1.2. */
function smb2Header(o: { Command: number; MessageId: bigint; NextCommand?: number; StructureSize?: number }): Buffer {
  const h = Buffer.alloc(64);
  h.writeUInt32BE(0xfe534d42, 0); // 0xFE 'S' 'M' 'B'
  h.writeUInt16LE(o.StructureSize ?? 64, 4);
  h.writeUInt16LE(0, 6); // CreditCharge
  h.writeUInt32LE(0, 8); // Status
  h.writeUInt16LE(o.Command, 12);
  h.writeUInt16LE(1, 14); // CreditRequest
  h.writeUInt32LE(0, 16); // Flags
  h.writeUInt32LE(o.NextCommand ?? 0, 20);
  h.writeBigUInt64LE(o.MessageId, 24);
  return h;
}

/** A valid SMB2 NEGOTIATE request for 2.0.2 and 2.1 (no negotiate contexts), MS-SMB2 2.2.3. */
function negotiateRequest(): Buffer {
  const body = Buffer.alloc(36 + 4);
  body.writeUInt16LE(36, 0); // StructureSize
  body.writeUInt16LE(2, 2); // DialectCount
  body.writeUInt16LE(0x0001, 4); // SecurityMode: signing enabled
  body.writeUInt32LE(0, 8); // Capabilities
  randomBytes(16).copy(body, 12); // ClientGuid
  body.writeUInt16LE(0x0202, 36);
  body.writeUInt16LE(0x0210, 38);
  const msg = Buffer.concat([smb2Header({ Command: 0, MessageId: 0n }), body]);
  return Buffer.concat([frameHeader(msg.length), msg]);
}

class RawConnection {
  readonly socket = new Socket();
  readonly closed: Promise<void>;
  private received = Buffer.alloc(0);
  isClosed = false;

  constructor(host: string, port: number) {
    this.closed = new Promise((resolve) => this.socket.once('close', () => resolve()));
    this.socket.on('close', () => (this.isClosed = true));
    this.socket.on('error', () => undefined); // ECONNRESET from the server is an accepted outcome
    this.socket.on('data', (d: Buffer) => (this.received = Buffer.concat([this.received, d])));
    this.socket.connect(port, host);
  }

  connected(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.socket.once('connect', () => resolve());
      this.socket.once('error', reject);
    });
  }

  send(data: Buffer): Promise<void> {
    return new Promise((resolve) => {
      if (this.isClosed || this.socket.destroyed) return resolve();
      this.socket.write(data, () => resolve());
    });
  }

  /** The frames received so far (payloads without the 4-byte header). */
  frames(): Buffer[] {
    const out: Buffer[] = [];
    let at = 0;
    while (at + 4 <= this.received.length) {
      const len = (this.received[at + 1]! << 16) | (this.received[at + 2]! << 8) | this.received[at + 3]!;
      if (at + 4 + len > this.received.length) break;
      out.push(this.received.subarray(at + 4, at + 4 + len));
      at += 4 + len;
    }
    return out;
  }

  async waitFor(predicate: () => boolean, ms: number): Promise<boolean> {
    const deadline = Date.now() + ms;
    while (Date.now() < deadline) {
      if (predicate()) return true;
      await new Promise((r) => setTimeout(r, 20));
    }
    return predicate();
  }

  async waitClosed(ms: number): Promise<boolean> {
    return this.waitFor(() => this.isClosed, ms);
  }

  destroy(): void {
    this.socket.destroy();
  }
}

async function negotiated(): Promise<RawConnection> {
  const c = new RawConnection(server!.host, server!.port);
  await c.connected();
  await c.send(negotiateRequest());
  const ok = await c.waitFor(() => c.frames().length >= 1, 5000);
  if (!ok) throw new Error('no NEGOTIATE response on a raw connection');
  const rsp = c.frames()[0]!;
  if (rsp.readUInt32BE(0) !== 0xfe534d42 || rsp.readUInt16LE(12) !== 0 || rsp.readUInt32LE(8) !== 0) {
    throw new Error(`unexpected NEGOTIATE response: ${rsp.subarray(0, 16).toString('hex')}`);
  }
  return c;
}

/** True when the server closed the connection, or answered the bad message with an SMB2 error. */
async function closedOrRefused(c: RawConnection, framesBefore: number): Promise<boolean> {
  return c.waitFor(() => {
    if (c.isClosed) return true;
    const frames = c.frames();
    return frames.slice(framesBefore).some((f) => f.length >= 12 && f.readUInt32BE(0) === 0xfe534d42 && f.readUInt32LE(8) !== 0);
  }, closeWaitMs);
}

describe(`robustness against ${againstSamba ? 'Samba (harness check)' : 'Tessera'}`, () => {
  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), 'tessera-robust-'));
    const share = join(root, 'vms');
    mkdirSync(share);
    mkdirSync(join(root, 'local'));
    const port = await freePort();
    server = againstSamba
      ? await startSamba({ port, shares: [{ name: 'vms', path: share }], user, password })
      : await startTessera({ port, shares: [{ name: 'vms', path: share }], users: [{ name: user, password }], extraArgs: ['--log-level', 'warn'] });
  });

  afterAll(async () => {
    await server?.stop();
    if (root) rmSync(root, { recursive: true, force: true });
  });

  test('malformed frames close only their own connection', async () => {
    const s = server!;
    const session = new InteractiveSmbclient({ host: s.host, port: s.port, share: 'vms', user, password, maxProtocol: 'SMB3_11' });
    try {
      const before = await session.ls();
      expect(before.map((e) => e.name)).toContain('.');

      const outcomes: { name: string; ok: boolean }[] = [];
      const cases: { name: string; run: () => Promise<boolean> }[] = [];

      // Random bytes in a well-formed Direct TCP frame: not an SMB message at all.
      for (let i = 0; i < 3; i++) {
        cases.push({
          name: `garbage frame ${i}`,
          run: async () => {
            const c = new RawConnection(s.host, s.port);
            await c.connected();
            const junk = randomBytes(1000);
            junk[0] = 0x42; // never a valid ProtocolId first byte (0xFE/0xFF/0xFD/0xFC)
            await c.send(Buffer.concat([frameHeader(junk.length), junk]));
            return c.waitClosed(closeWaitMs);
          },
        });
      }
      // MS-SMB2 2.1: the first byte of the transport header must be zero.
      cases.push({
        name: 'non-zero transport header byte',
        run: async () => {
          const c = new RawConnection(s.host, s.port);
          await c.connected();
          await c.send(Buffer.concat([frameHeader(64, 0x85), randomBytes(64)]));
          await c.send(Buffer.concat([frameHeader(100), randomBytes(100)]));
          return c.waitClosed(closeWaitMs);
        },
      });
      // The largest frame the header can describe, filled with zeros.
      cases.push({
        name: 'oversized frame (16 MiB - 1)',
        run: async () => {
          const c = new RawConnection(s.host, s.port);
          await c.connected();
          await c.send(frameHeader(0xffffff));
          const chunk = Buffer.alloc(1024 * 1024);
          for (let sent = 0; sent < 0xffffff && !c.isClosed; sent += chunk.length) {
            await c.send(chunk.subarray(0, Math.min(chunk.length, 0xffffff - sent)));
          }
          return c.waitClosed(closeWaitMs);
        },
      });
      // Half a frame, then FIN: the server must not wait forever for the rest.
      cases.push({
        name: 'truncated frame then FIN',
        run: async () => {
          const c = new RawConnection(s.host, s.port);
          await c.connected();
          const msg = negotiateRequest();
          await c.send(msg.subarray(0, 40));
          c.socket.end();
          return c.waitClosed(closeWaitMs);
        },
      });
      // After a valid NEGOTIATE: a compound whose NextCommand points past the end of the frame.
      cases.push({
        name: 'NextCommand beyond the frame',
        run: async () => {
          const c = await negotiated();
          const bad = Buffer.concat([smb2Header({ Command: 0x000d /* ECHO */, MessageId: 1n, NextCommand: 4096 }), Buffer.from([4, 0, 0, 0])]);
          await c.send(Buffer.concat([frameHeader(bad.length), bad]));
          return closedOrRefused(c, 1);
        },
      });
      // After a valid NEGOTIATE: an unknown command code.
      cases.push({
        name: 'unknown command 0x00ff',
        run: async () => {
          const c = await negotiated();
          const bad = Buffer.concat([smb2Header({ Command: 0x00ff, MessageId: 1n }), Buffer.alloc(8)]);
          await c.send(Buffer.concat([frameHeader(bad.length), bad]));
          return closedOrRefused(c, 1);
        },
      });
      // After a valid NEGOTIATE: a header whose StructureSize is not 64 and a frame shorter than a header.
      cases.push({
        name: 'bad header StructureSize',
        run: async () => {
          const c = await negotiated();
          const bad = Buffer.concat([smb2Header({ Command: 0x000d, MessageId: 1n, StructureSize: 7 }), Buffer.from([4, 0, 0, 0])]);
          await c.send(Buffer.concat([frameHeader(bad.length), bad]));
          return closedOrRefused(c, 1);
        },
      });
      cases.push({
        name: 'frame shorter than an SMB2 header',
        run: async () => {
          const c = await negotiated();
          const bad = smb2Header({ Command: 0x000d, MessageId: 1n }).subarray(0, 20);
          await c.send(Buffer.concat([frameHeader(bad.length), bad]));
          return closedOrRefused(c, 1);
        },
      });
      // Resets in the middle of a frame: the server must just drop them.
      for (let i = 0; i < 5; i++) {
        cases.push({
          name: `reset mid-frame ${i}`,
          run: async () => {
            const c = new RawConnection(s.host, s.port);
            await c.connected();
            await c.send(negotiateRequest().subarray(0, 10 + i * 20));
            c.socket.resetAndDestroy();
            return true;
          },
        });
      }

      const results = await Promise.all(cases.map(async (k) => ({ name: k.name, ok: await k.run().catch(() => false) })));
      outcomes.push(...results);
      expect(serverAlive(s), `server process died:\n${s.logs().slice(-4000)}`).toBe(true);
      const failed = outcomes.filter((o) => !o.ok).map((o) => o.name);
      expect(failed, 'bad connections neither closed nor refused').toEqual([]);

      // The session connected before the garbage still works on its own connection.
      const local = join(root, 'local', 'after.bin');
      const data = randomBytes(3 * 1024 * 1024 + 17);
      writeFileSync(local, data);
      await session.command(`put ${local} after.bin`, /putting file|NT_STATUS_/);
      const listed = await session.ls('after.bin');
      expect(listed.find((e) => e.name === 'after.bin')?.size, `put after the garbage\n${session.stdout}\n${session.stderr}`).toBe(data.length);
      const back = join(root, 'local', 'after.out');
      await session.command(`get after.bin ${back}`, /getting file|NT_STATUS_/);
      expect(await sha256File(back)).toBe(createHash('sha256').update(data).digest('hex'));
      expect(`${session.stdout}\n${session.stderr}`.match(/NT_STATUS_[A-Z_]+/g) ?? []).toEqual([]);

      // And a new session works too.
      const fresh = await runSmbclient({ host: s.host, port: s.port, share: 'vms', user, password, maxProtocol: 'SMB3_11', commands: ['del after.bin', 'ls'] });
      expect(fresh.statuses, fresh.stdout + fresh.stderr).toEqual([]);
      expect(fresh.code).toBe(0);
      expect(parseLsBlocks(fresh.stdout)[0]?.map((e) => e.name)).not.toContain('after.bin');
      expect(serverAlive(s)).toBe(true);
    } finally {
      await session.quit();
    }
  }, 180_000);
});
