// NETWORK_INTERFACE_INFO (MS-SMB2 2.2.32.5), the output of FSCTL_QUERY_NETWORK_INTERFACE_INFO: one
// 152-byte entry per IP address of each interface, chained by Next.

/** MS-SMB2 2.2.32.5 Capability. */
export const InterfaceCapability = {
  RSS_CAPABLE: 0x00000001,
  RDMA_CAPABLE: 0x00000002,
} as const;

/** MS-SMB2 2.2.32.5.1 SOCKADDR_STORAGE Family. */
export const SockAddrFamily = {
  InterNetwork: 0x0002,
  InterNetworkV6: 0x0017,
} as const;

export interface NetworkInterfaceInfo {
  /** Nonzero; the same for every address of one interface (MS-SMB2 3.3.5.15.11). */
  IfIndex: number;
  Capability: number;
  /** Bits per second. */
  LinkSpeed: bigint;
  /** IPv4 dotted or IPv6 text address. */
  address: string;
}

export const NETWORK_INTERFACE_INFO_SIZE = 152;
const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;
const SOCKADDR_OFFSET = 24;

/** Encodes the entries back to back (each is 8-byte aligned: 152 bytes), the last with Next 0. */
export function encodeNetworkInterfaceInfo(entries: readonly NetworkInterfaceInfo[]): Buffer {
  const out = Buffer.alloc(entries.length * NETWORK_INTERFACE_INFO_SIZE);
  entries.forEach((e, i) => {
    const at = i * NETWORK_INTERFACE_INFO_SIZE;
    out.writeUInt32LE(i === entries.length - 1 ? 0 : NETWORK_INTERFACE_INFO_SIZE, at);
    out.writeUInt32LE(e.IfIndex >>> 0, at + 4);
    out.writeUInt32LE(e.Capability >>> 0, at + 8);
    out.writeBigUInt64LE(e.LinkSpeed, at + 16);
    encodeSockAddr(e.address, out, at + SOCKADDR_OFFSET);
  });
  return out;
}

/**
 * SOCKADDR_STORAGE (MS-SMB2 2.2.32.5.1): Family, then SOCKADDR_IN (Port 0, the IPv4 address in
 * network order, Reserved) or SOCKADDR_IN6 (Port 0, FlowInfo 0, the IPv6 address, ScopeId 0).
 */
function encodeSockAddr(address: string, buf: Buffer, at: number): void {
  if (IPV4.test(address)) {
    buf.writeUInt16LE(SockAddrFamily.InterNetwork, at);
    const parts = address.split('.').map(Number);
    for (let i = 0; i < 4; i++) buf[at + 4 + i] = parts[i]!;
    return;
  }
  if (!address.includes(':')) throw new RangeError(`not an IP address: ${address}`);
  buf.writeUInt16LE(SockAddrFamily.InterNetworkV6, at);
  ipv6Bytes(address).copy(buf, at + 8);
}

/** The 16 bytes of an IPv6 address in text form (with "::" compression or an embedded IPv4 tail). */
export function ipv6Bytes(address: string): Buffer {
  const out = Buffer.alloc(16);
  let text = address.split('%')[0]!;
  const words: number[] = [];
  const tail = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (tail) {
    const v4 = tail[1]!.split('.').map(Number);
    text = text.slice(0, -tail[1]!.length) + `${((v4[0]! << 8) | v4[1]!).toString(16)}:${((v4[2]! << 8) | v4[3]!).toString(16)}`;
  }
  const [head, rest] = text.split('::') as [string, string | undefined];
  const parse = (s: string): number[] => (s === '' ? [] : s.split(':').map((w) => parseInt(w, 16)));
  const a = parse(head);
  const b = rest === undefined ? [] : parse(rest);
  words.push(...a, ...new Array<number>(8 - a.length - b.length).fill(0), ...b);
  for (let i = 0; i < 8; i++) out.writeUInt16BE(words[i]! & 0xffff, i * 2);
  return out;
}

/** Decodes a chain of entries (tests and clients); stops at Next 0. */
export function decodeNetworkInterfaceInfo(buf: Buffer): NetworkInterfaceInfo[] {
  const out: NetworkInterfaceInfo[] = [];
  let at = 0;
  for (;;) {
    if (at + NETWORK_INTERFACE_INFO_SIZE > buf.length) throw new RangeError('NETWORK_INTERFACE_INFO truncated');
    const next = buf.readUInt32LE(at);
    const family = buf.readUInt16LE(at + SOCKADDR_OFFSET);
    let address: string;
    if (family === SockAddrFamily.InterNetwork) {
      address = [...buf.subarray(at + SOCKADDR_OFFSET + 4, at + SOCKADDR_OFFSET + 8)].join('.');
    } else {
      const b = buf.subarray(at + SOCKADDR_OFFSET + 8, at + SOCKADDR_OFFSET + 24);
      const w: string[] = [];
      for (let i = 0; i < 8; i++) w.push(b.readUInt16BE(i * 2).toString(16));
      address = w.join(':');
    }
    out.push({ IfIndex: buf.readUInt32LE(at + 4), Capability: buf.readUInt32LE(at + 8), LinkSpeed: buf.readBigUInt64LE(at + 16), address });
    if (next === 0) return out;
    if (next < NETWORK_INTERFACE_INFO_SIZE || next % 8 !== 0) throw new RangeError('NETWORK_INTERFACE_INFO Next is invalid');
    at += next;
  }
}
