// Deterministic security identifiers for local users, so ACL evaluation has SIDs to work with.
// A standalone server is its own "domain": its machine SID is S-1-5-21-a-b-c (MS-DTYP 2.4.2.4) and a
// local user's SID is the machine SID plus the user's RID. We derive a-b-c from a hash of the server
// name, so every node of a cluster that serves the same name computes the same SIDs without
// coordination, and a restart does not change them.
import { createHash } from 'node:crypto';
import { upcase } from './ntlm-crypto.js';

/** Well-known SID of the anonymous logon (MS-DTYP 2.4.2.4). */
export const ANONYMOUS_LOGON_SID = 'S-1-5-7';
/** Well-known relative identifiers (MS-DTYP 2.4.2.4). */
export const DOMAIN_USER_RID_ADMIN = 500;
export const DOMAIN_USER_RID_GUEST = 501;
/** First RID handed to users created in a credential store (as Samba and Windows do for local accounts). */
export const FIRST_USER_RID = 1000;

const SID_DOMAIN_PREFIX = 'tessera-machine-sid\0';

/** S-1-5-21-a-b-c for a server name (case-insensitive: NetBIOS names are upper case). */
export function machineSidForName(serverName: string): string {
  const digest = createHash('sha256').update(SID_DOMAIN_PREFIX + upcase(serverName), 'utf8').digest();
  return `S-1-5-21-${digest.readUInt32LE(0)}-${digest.readUInt32LE(4)}-${digest.readUInt32LE(8)}`;
}

/** The SID of account `rid` in the domain `domainSid`. */
export function sidForRid(domainSid: string, rid: number): string {
  if (!Number.isInteger(rid) || rid < 0 || rid > 0xffffffff) throw new RangeError(`bad RID ${rid}`);
  return `${domainSid}-${rid}`;
}
