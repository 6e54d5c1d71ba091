// Cluster, node membership and share records. Time comes only from the command (`now`, in ms since
// the epoch, read by the proposer); handlers never read the clock (ARCHITECTURE.md).
//
//   key('cluster')          -> ClusterRecord   (created once by cluster.init)
//   key('node', id)         -> NodeRecord      (node.join / renew / leave / expire)
//   key('share', NAME)      -> ShareRecord     (NAME upper-cased: share names are case-insensitive)
import { limits } from '../../base/limits.js';
import { pack, RECORD_VERSION } from '../codec.js';
import { key } from '../keys.js';
import { fail, ok, type ApplyTx, type Command, type CommandResult, type HandlerTable, type ReadTx } from '../tx.js';

export interface ClusterRecord {
  clusterId: string;
  recordVersion: number;
}

export type NodeState = 'up' | 'left' | 'down';

export interface NodeRecord {
  node: string;
  /** Process incarnation of the current membership (entries of other incarnations are fenced). */
  incarnation: number;
  /** Incremented on every join of this node: the fencing token of its current membership. */
  epoch: number;
  address: string;
  joinedAt: number;
  /** The node may act (e.g. write segments) until this time (ms); after it, another node may expire it. */
  leaseUntil: number;
  state: NodeState;
}

export interface ShareRecord {
  /** The name as given (display form); the key holds it upper-cased. */
  name: string;
  config: Record<string, unknown>;
}

const CLUSTER_KEY = key('cluster');
const nodeKey = (id: string) => key('node', id);
const shareKey = (name: string) => key('share', shareKeyName(name));

/** The case-insensitive form of a share name used in its key. */
export function shareKeyName(name: string): string {
  return name.toUpperCase();
}

// ---- argument validation (every failure is fail('invalid')) ----

class Invalid extends Error {}

function str(cmd: Command, field: string, max: number, allowEmpty = false): string {
  const v = cmd[field];
  if (typeof v !== 'string') throw new Invalid(`${field} must be a string`);
  if (!allowEmpty && v.length === 0) throw new Invalid(`${field} is empty`);
  if (v.length > max) throw new Invalid(`${field} is longer than ${max}`);
  if (v.includes('\0')) throw new Invalid(`${field} contains NUL`);
  return v;
}

function uint(cmd: Command, field: string, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  const v = cmd[field];
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max) {
    throw new Invalid(`${field} must be an integer in [${min}, ${max}]`);
  }
  return v;
}

const nodeId = (cmd: Command) => str(cmd, 'node', limits.metaNodeIdLengthMax);
const leaseMs = (cmd: Command) => uint(cmd, 'leaseMs', 1, limits.metaLeaseMsMax);

/** MS-FSCC 2.1.6: at most 80 characters; no " \ / [ ] : | < > + = ; , * ? and no 0x00-0x1F. */
const SHARE_NAME_ILLEGAL = /["\\/[\]:|<>+=;,*?\x00-\x1f]/;

function shareName(cmd: Command): string {
  const name = str(cmd, 'name', limits.metaShareNameLengthMax);
  if (SHARE_NAME_ILLEGAL.test(name)) throw new Invalid('name contains a character MS-FSCC 2.1.6 forbids in share names');
  if (shareKeyName(name).includes('\0')) throw new Invalid('name contains NUL');
  return name;
}

function plainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
}

/** Wraps a handler so argument errors (Invalid) become fail('invalid'); anything else is a bug. */
function handler(fn: (tx: ApplyTx, cmd: Command) => CommandResult): (tx: ApplyTx, cmd: Command) => CommandResult {
  return (tx, cmd) => {
    try {
      return fn(tx, cmd);
    } catch (err) {
      if (err instanceof Invalid) return fail('invalid', `${cmd.t}: ${err.message}`);
      throw err;
    }
  };
}

// ---- handlers ----

export const clusterHandlers: HandlerTable = {
  /** Creates the cluster record once. Repeating it with the same id and version is a no-op. */
  'cluster.init': handler((tx, cmd) => {
    const clusterId = str(cmd, 'clusterId', limits.metaNodeIdLengthMax);
    const recordVersion = uint(cmd, 'recordVersion', 1);
    const cur = tx.get<ClusterRecord>(CLUSTER_KEY);
    if (cur) {
      if (cur.clusterId !== clusterId) return fail('exists', `cluster '${cur.clusterId}' already exists`);
      if (cur.recordVersion !== recordVersion) {
        return fail('version-mismatch', `cluster runs record version ${cur.recordVersion}, not ${recordVersion}`);
      }
      return ok({ created: false });
    }
    if (recordVersion !== RECORD_VERSION) {
      return fail('version-mismatch', `cannot create a cluster of record version ${recordVersion} (this is ${RECORD_VERSION})`);
    }
    tx.put(CLUSTER_KEY, { clusterId, recordVersion } satisfies ClusterRecord);
    return ok({ created: true });
  }),

  /**
   * A node (re)joins with a new incarnation: the record is replaced, its epoch incremented (the
   * fencing token of this membership) and its lease starts. An incarnation not above the current
   * one is refused 'stale' (a leftover of an older process).
   */
  'node.join': handler((tx, cmd) => {
    const node = nodeId(cmd);
    const inc = uint(cmd, 'inc');
    const address = str(cmd, 'address', limits.metaAddressLengthMax, true);
    const now = uint(cmd, 'now');
    const lease = leaseMs(cmd);
    const leaseUntil = now + lease;
    if (!Number.isSafeInteger(leaseUntil)) throw new Invalid('now + leaseMs out of range');
    const cur = tx.get<NodeRecord>(nodeKey(node));
    if (cur && inc <= cur.incarnation) {
      return fail('stale', `node ${node} incarnation ${inc} is not above the current ${cur.incarnation}`);
    }
    const epoch = (cur?.epoch ?? 0) + 1;
    const rec: NodeRecord = { node, incarnation: inc, epoch, address, joinedAt: now, leaseUntil, state: 'up' };
    tx.put(nodeKey(node), rec);
    return ok({ epoch });
  }),

  /**
   * Extends the lease of the current incarnation (never shortens it: leaseUntil only grows). A node
   * that left or was declared down is 'fenced': it must join again.
   */
  'node.renew': handler((tx, cmd) => {
    const node = nodeId(cmd);
    const inc = uint(cmd, 'inc');
    const now = uint(cmd, 'now');
    const lease = leaseMs(cmd);
    if (!Number.isSafeInteger(now + lease)) throw new Invalid('now + leaseMs out of range');
    const cur = tx.get<NodeRecord>(nodeKey(node));
    if (!cur) return fail('not-found', `node ${node} is not a member`);
    if (cur.incarnation !== inc) return fail('stale', `node ${node} incarnation ${inc} is not the current ${cur.incarnation}`);
    if (cur.state !== 'up') return fail('fenced', `node ${node} is ${cur.state}; it must join again`);
    cur.leaseUntil = Math.max(cur.leaseUntil, now + lease);
    tx.put(nodeKey(node), cur);
    return ok({ leaseUntil: cur.leaseUntil, epoch: cur.epoch });
  }),

  /** Clean departure of the current incarnation (idempotent). */
  'node.leave': handler((tx, cmd) => {
    const node = nodeId(cmd);
    const inc = uint(cmd, 'inc');
    const cur = tx.get<NodeRecord>(nodeKey(node));
    if (!cur) return fail('not-found', `node ${node} is not a member`);
    if (cur.incarnation !== inc) return fail('stale', `node ${node} incarnation ${inc} is not the current ${cur.incarnation}`);
    if (cur.state !== 'left') {
      cur.state = 'left';
      tx.put(nodeKey(node), cur);
    }
    return ok();
  }),

  /**
   * Another node declares `node` dead if its lease ran out before `now` (the proposer's clock):
   * state 'down'. The result says whether it did ({ expired }); a live lease is left alone.
   */
  'node.expire': handler((tx, cmd) => {
    const node = nodeId(cmd);
    const now = uint(cmd, 'now');
    const cur = tx.get<NodeRecord>(nodeKey(node));
    if (!cur) return fail('not-found', `node ${node} is not a member`);
    if (cur.state !== 'up' || cur.leaseUntil >= now) return ok({ expired: false, state: cur.state });
    cur.state = 'down';
    tx.put(nodeKey(node), cur);
    return ok({ expired: true, state: cur.state });
  }),

  /** Creates or replaces a share (the name is case-insensitive; the record keeps the given form). */
  'share.put': handler((tx, cmd) => {
    const name = shareName(cmd);
    const config = cmd.config;
    if (!plainObject(config)) throw new Invalid('config must be an object');
    const bytes = pack(config).length;
    if (bytes > limits.metaShareConfigBytesMax) throw new Invalid(`config of ${bytes} bytes exceeds ${limits.metaShareConfigBytesMax}`);
    const k = shareKey(name);
    const created = tx.get<ShareRecord>(k) === undefined;
    tx.put(k, { name, config } satisfies ShareRecord);
    return ok({ created });
  }),

  'share.delete': handler((tx, cmd) => {
    const name = shareName(cmd);
    const k = shareKey(name);
    if (tx.get<ShareRecord>(k) === undefined) return fail('not-found', `share ${name} does not exist`);
    tx.del(k);
    return ok();
  }),
};

// ---- typed reads ----

export function getCluster(tx: ReadTx): ClusterRecord | undefined {
  return tx.get<ClusterRecord>(CLUSTER_KEY);
}

export function getNode(tx: ReadTx, id: string): NodeRecord | undefined {
  if (id.length === 0 || id.includes('\0')) return undefined;
  return tx.get<NodeRecord>(nodeKey(id));
}

/** All node records, in node id (byte) order. */
export function listNodes(tx: ReadTx): NodeRecord[] {
  return [...tx.range<NodeRecord>(key('node'))].map(([, v]) => v);
}

export function getShare(tx: ReadTx, name: string): ShareRecord | undefined {
  if (name.length === 0 || shareKeyName(name).includes('\0')) return undefined;
  return tx.get<ShareRecord>(shareKey(name));
}

/** All shares, in upper-cased name (byte) order. */
export function listShares(tx: ReadTx): ShareRecord[] {
  return [...tx.range<ShareRecord>(key('share'))].map(([, v]) => v);
}
