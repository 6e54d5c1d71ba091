// The authorization context of a logged-on session: the SIDs and privileges the access check
// (MS-DTYP 2.5.2 Token, 2.5.3.2) evaluates a security descriptor against. Built once per session at
// SESSION_SETUP and never mutated afterwards.

import { ANONYMOUS_LOGON_SID } from './sid.js';

/** Privileges the file-server access checks consult (MS-LSAD 3.1.1.2.1 names). */
export type Privilege = 'SeBackupPrivilege' | 'SeRestorePrivilege' | 'SeTakeOwnershipPrivilege' | 'SeSecurityPrivilege';

export interface AccessToken {
  /** The user's own SID ("S-1-5-21-a-b-c-rid", or S-1-5-7 for an anonymous logon). */
  userSid: string;
  /** Every group SID the session is a member of (well-known groups included). */
  groupSids: string[];
  /** Privileges held and enabled. */
  privileges: Set<Privilege>;
}

/** Well-known group SIDs a network logon token carries (MS-DTYP 2.4.2.4). */
export const TokenGroupSid = {
  EVERYONE: 'S-1-1-0',
  NETWORK: 'S-1-5-2',
  ANONYMOUS_LOGON: ANONYMOUS_LOGON_SID,
  AUTHENTICATED_USERS: 'S-1-5-11',
  BUILTIN_ADMINISTRATORS: 'S-1-5-32-544',
  BUILTIN_USERS: 'S-1-5-32-545',
  BUILTIN_GUESTS: 'S-1-5-32-546',
} as const;

/** Privileges an administrator's network logon holds enabled (as Windows and Samba grant them). */
const ADMIN_PRIVILEGES: readonly Privilege[] = [
  'SeBackupPrivilege',
  'SeRestorePrivilege',
  'SeTakeOwnershipPrivilege',
  'SeSecurityPrivilege',
];

export interface TokenForUserOptions {
  userSid: string;
  isGuest?: boolean;
  isAnonymous?: boolean;
  isAdmin?: boolean;
  /** Further group SIDs (for example the account's primary group or a domain's groups). */
  extraGroupSids?: readonly string[];
  /** Overrides the default privilege set (administrators: all four; everyone else: none). */
  privileges?: Iterable<Privilege>;
}

/**
 * Builds the token Windows gives a network (SMB) logon:
 * - everyone: Everyone (S-1-1-0) and NETWORK (S-1-5-2);
 * - a real account: Authenticated Users (S-1-5-11) and BUILTIN\Users (S-1-5-32-545), plus
 *   BUILTIN\Administrators (S-1-5-32-544) and the four file-related privileges when isAdmin;
 * - the guest account: BUILTIN\Guests (S-1-5-32-546), no Authenticated Users;
 * - an anonymous logon: ANONYMOUS LOGON (S-1-5-7), neither Authenticated Users nor Users/Guests
 *   (its userSid is S-1-5-7 itself when the caller passes that).
 * Everyone is included for anonymous logons too, as Samba does; Windows leaves it out unless the
 * "Let Everyone permissions apply to anonymous users" policy is on.
 */
export function tokenForUser(opts: TokenForUserOptions): AccessToken {
  const isAnonymous = opts.isAnonymous === true;
  const isGuest = !isAnonymous && opts.isGuest === true;
  const isAdmin = !isAnonymous && !isGuest && opts.isAdmin === true;
  const groups: string[] = [TokenGroupSid.EVERYONE, TokenGroupSid.NETWORK];
  if (isAnonymous) {
    groups.push(TokenGroupSid.ANONYMOUS_LOGON);
  } else if (isGuest) {
    groups.push(TokenGroupSid.BUILTIN_GUESTS);
  } else {
    groups.push(TokenGroupSid.AUTHENTICATED_USERS, TokenGroupSid.BUILTIN_USERS);
    if (isAdmin) groups.push(TokenGroupSid.BUILTIN_ADMINISTRATORS);
  }
  for (const g of opts.extraGroupSids ?? []) groups.push(g);
  const groupSids = [...new Set(groups.filter((g) => g !== opts.userSid))];
  const privileges = new Set<Privilege>(opts.privileges ?? (isAdmin ? ADMIN_PRIVILEGES : []));
  return { userSid: opts.userSid, groupSids, privileges };
}

/** True when `sid` is the token's user or one of its groups (MS-DTYP 2.5.3.1.1 SidInToken). */
export function tokenHasSid(token: AccessToken, sid: string): boolean {
  return token.userSid === sid || token.groupSids.includes(sid);
}
