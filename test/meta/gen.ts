// Random metadata commands over a small universe (a few directories, names, forks, files and
// clients) so that commands collide: creates race renames and unlinks, opens meet share modes,
// leases and locks of other nodes. Valid and invalid commands both occur; every node must reach
// the same state whatever the outcome.
import type { Command } from '../../src/meta/tx.js';
import type { Prng } from '../helpers/prng.js';

const NAMES = ['a', 'B', 'c.txt', 'C.TXT', 'disk.vhdx', 'Disk.VHDX', 'cfg', 'snap'];
const FILES = ['vms/1', 'vms/2', 'vms/3'];
const SHARE_ACCESS = [0, 1, 3, 7, 5];
const ACCESS = [0x80, 0x1, 0x2, 0x3, 0x10000, 0x12019f];
const OPLOCK = ['none', 'II', 'exclusive', 'batch', 'lease'] as const;

export interface GenContext {
  node: string;
  inc: number;
  /** Simulation time in ms (increases with the run). */
  now: number;
  /** Open ids this proposer learned (from open.create results), to close/lock/disconnect them. */
  openIds: number[];
}

export function randomCommand(r: Prng, g: GenContext): Command {
  const ino = r.range(1, 24);
  const parent = r.range(1, 8);
  const name = r.pick(NAMES);
  const fork = r.range(1, 24);
  const now = g.now;
  const openId = g.openIds.length > 0 && r.chance(0.8) ? r.pick(g.openIds) : r.range(1, 40);
  const k = r.int(100);
  if (k < 4) return { t: 'ns.mkroot', share: r.pick(['vms', 'VMS', 'iso']), now };
  if (k < 22) return { t: 'ns.create', parent, name, kind: r.chance(0.3) ? 'dir' : 'file', attributes: r.pick([0x20, 0x80, 0x2]), now };
  if (k < 28)
    return { t: 'ns.rename', srcParent: parent, srcName: name, dstParent: r.range(1, 8), dstName: r.pick(NAMES), replace: r.chance(0.5), now };
  if (k < 34) return { t: 'ns.unlink', parent, name, now };
  if (k < 37) return { t: 'ns.setattr', ino, attributes: r.pick([0x20, 0x1, 0x2]), lastWrite: BigInt(now) * 10_000n + 116444736000000000n, now };
  if (k < 39) return { t: 'ns.stream.create', ino, name: r.pick(['s1', 'S1', 'zone']) };
  if (k < 40) return { t: 'ns.link', ino, parent, name: r.pick(NAMES), replace: r.chance(0.3), now };
  if (k < 50) {
    const offset = r.int(64) * 4096;
    return { t: 'ext.write', fork, offset, length: r.range(1, 16) * 4096, object: `seg-${g.node}-${r.int(50)}`, objectOffset: r.int(16) * 4096 };
  }
  if (k < 53) return { t: 'ext.punch', fork, offset: r.int(64) * 4096, length: r.range(1, 32) * 4096 };
  if (k < 55) return { t: 'ext.truncate', fork, size: r.int(64) * 4096 };
  if (k < 57)
    return { t: 'ext.clone', srcFork: fork, srcOffset: r.int(8) * 4096, dstFork: r.range(1, 24), dstOffset: r.int(8) * 4096, length: r.range(1, 8) * 4096 };
  if (k < 58) return { t: 'share.put', name: r.pick(['vms', 'iso']), config: { path: `/p/${r.int(3)}`, ca: r.chance(0.5) } };
  if (k < 72) {
    const oplock = r.pick(OPLOCK);
    const cmd: Command = {
      t: 'open.create',
      file: r.pick(FILES),
      node: g.node,
      inc: g.inc,
      clientGuid: `client-${g.node}-${r.int(2)}`,
      desiredAccess: r.pick(ACCESS),
      shareAccess: r.pick(SHARE_ACCESS),
      createOptions: r.chance(0.1) ? 0x1000 : 0,
      oplock,
      owner: 'S-1-5-21-1-2-3-1001',
      now,
    };
    if (oplock === 'lease') cmd.lease = { key: `lk-${g.node}-${r.int(3)}`, state: r.pick([1, 3, 5, 7]), version: 2 };
    if (r.chance(0.4)) cmd.durable = { kind: r.pick(['v1', 'v2']), timeoutMs: r.pick([0, 1000, 60000]) };
    if (r.chance(0.2)) cmd.createGuid = `cg-${g.node}-${r.int(1000)}`;
    if (r.chance(0.1)) cmd.appInstanceId = `app-${r.int(2)}`;
    return cmd;
  }
  if (k < 80) return { t: 'open.close', openId, now };
  if (k < 83) return { t: 'open.disconnect', openId, now };
  if (k < 85) return { t: 'open.expire', now, limit: 16 };
  if (k < 93) {
    const offset = r.int(16) * 512;
    return { t: 'lock.apply', openId, now, locks: [{ offset, length: r.range(0, 4) * 512, exclusive: r.chance(0.5), unlock: r.chance(0.3) }] };
  }
  if (k < 95) return { t: 'lease.ack', clientGuid: `client-${g.node}-${r.int(2)}`, leaseKey: `lk-${g.node}-${r.int(3)}`, state: r.pick([0, 1, 3]), now };
  if (k < 96) return { t: 'lease.break-timeout', clientGuid: `client-${r.pick(['n1', 'n2', 'n3'])}-0`, leaseKey: `lk-n1-${r.int(3)}`, now };
  if (k < 97) return { t: 'ns.setsd', ino, sd: Buffer.from([1, 0, 4, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]) };
  if (k < 98) return { t: 'no.such.command' };
  return { t: 'ns.create', parent, name: 'bad\\name', kind: 'file', attributes: 0, now }; // invalid
}

/** Remembers open ids returned by open.create results. */
export function learn(g: GenContext, cmd: Command, value: unknown): void {
  if (cmd.t !== 'open.create' || typeof value !== 'object' || value === null) return;
  const id = (value as { openId?: unknown }).openId;
  if (typeof id === 'number') {
    g.openIds.push(id);
    if (g.openIds.length > 32) g.openIds.shift();
  }
}
