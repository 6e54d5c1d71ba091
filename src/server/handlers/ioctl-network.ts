// FSCTL_QUERY_NETWORK_INTERFACE_INFO (MS-SMB2 3.3.5.15.11): the addresses a multichannel client may
// open further channels to. They are the addresses the server listens on; a wildcard listener
// (0.0.0.0, ::) stands for every non-loopback address of the machine.

import { networkInterfaces } from 'node:os';
import { NtStatus } from '../../protocol/ntstatus.js';
import { ioctlResponse, type IoctlRequest } from '../../protocol/ioctl.js';
import { Dialect, GlobalCap } from '../../protocol/negotiate.js';
import { encodeNetworkInterfaceInfo, type NetworkInterfaceInfo } from '../../protocol/network-interface.js';
import type { Reply, RequestContext } from '../context.js';

/** Reported for every interface: the speed is not known portably (the client compares them only). */
const LINK_SPEED_BPS = 1_000_000_000n;

export function queryNetworkInterfaces(ctx: RequestContext, req: IoctlRequest): Reply {
  const neg = ctx.conn.negotiated!;
  // MS-SMB2 3.3.5.15.11: only 3.x connections of a multichannel-capable server are answered.
  if (neg.dialect < Dialect.SMB300 || (neg.serverCapabilities & GlobalCap.MULTI_CHANNEL) === 0) return { status: NtStatus.NOT_SUPPORTED };
  const out = encodeNetworkInterfaceInfo(interfacesFor(ctx.conn.server.listeningAddresses().map((a) => a.host)));
  if (out.length > req.MaxOutputResponse) return { status: NtStatus.BUFFER_TOO_SMALL };
  return { status: NtStatus.SUCCESS, body: ioctlResponse({ CtlCode: req.CtlCode, FileId: req.FileId, Output: out }) };
}

/**
 * One entry per address: the listening addresses themselves, or for a wildcard listener every
 * non-internal address of its family (IPv6 "::" listens on IPv4 too). IfIndex is the position of the
 * address's interface in the machine's interface list, plus one: nonzero and the same for every
 * address of one interface (MS-SMB2 3.3.5.15.11).
 */
export function interfacesFor(hosts: readonly string[], ifaces = networkInterfaces()): NetworkInterfaceInfo[] {
  const all: { index: number; address: string; family: 'IPv4' | 'IPv6'; internal: boolean }[] = [];
  Object.entries(ifaces).forEach(([, addrs], i) => {
    for (const a of addrs ?? []) all.push({ index: i + 1, address: a.address, family: a.family === 'IPv6' ? 'IPv6' : 'IPv4', internal: a.internal });
  });
  const seen = new Set<string>();
  const out: NetworkInterfaceInfo[] = [];
  const add = (index: number, address: string): void => {
    if (seen.has(address)) return;
    seen.add(address);
    out.push({ IfIndex: index, Capability: 0, LinkSpeed: LINK_SPEED_BPS, address });
  };
  for (const host of hosts) {
    if (host === '0.0.0.0' || host === '::') {
      for (const a of all) if (!a.internal && (host === '::' || a.family === 'IPv4')) add(a.index, a.address);
      continue;
    }
    const plain = host.startsWith('::ffff:') ? host.slice(7) : host;
    add(all.find((a) => a.address === plain)?.index ?? 1, plain);
  }
  return out;
}
