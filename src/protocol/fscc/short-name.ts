// 8.3 short names (MS-FSCC 2.1.5.2.1): the DOS alias of a long name, reported by
// FileAlternateNameInformation (MS-FSCC 2.4.5, MS-FSA 2.1.5.12.3) and in the ShortName field of
// FileBothDirectoryInformation / FileIdBothDirectoryInformation (MS-FSCC 2.4.8, 2.4.17).
//
// NTFS stores a generated short name with each long name that is not itself a valid 8.3 name and
// numbers collisions (LONGNA~1.TXT, LONGNA~2.TXT) from what the directory already holds. Names here
// are derived from the long name alone, with no stored state (the way Samba's hash mangling does):
// the first characters of the base name, '~', and three characters of a hash of the case-folded long
// name, then the first three characters of the extension. The same long name (in any case) always
// gives the same short name, on every node, across restarts and renames of other files. Two long
// names in one directory can map to the same short name (1 in 46656 for names sharing a prefix); a
// client that opens a file by its short name is not served (names are looked up as given).

/** Characters a short name may hold besides A-Z and 0-9 (MS-FSCC 2.1.5.2.1: the OEM set minus the reserved ones). */
const SHORT_EXTRA = "!#$%&'()-@^_`{}~";
const BASE36 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ';

function isShortChar(c: string): boolean {
  return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || SHORT_EXTRA.includes(c);
}

/**
 * True when `name` already is an 8.3 name (ignoring case): 1-8 characters, optionally one '.' and
 * 1-3 more, all of them characters a short name may hold. Such a name is its own short name.
 */
export function isShortName(name: string): boolean {
  if (name === '.' || name === '..') return false;
  const upper = name.toUpperCase();
  if (upper.length !== name.length) return false; // a one-to-many case mapping: not an OEM name
  const dot = upper.indexOf('.');
  const base = dot < 0 ? upper : upper.slice(0, dot);
  const ext = dot < 0 ? '' : upper.slice(dot + 1);
  if (base.length < 1 || base.length > 8 || ext.length > 3 || (dot >= 0 && ext.length === 0)) return false;
  for (const c of base + ext) if (!isShortChar(c)) return false;
  return true;
}

/** FNV-1a over the UTF-16 units of the case-folded name: stable across platforms and versions. */
function hash32(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** The characters of `s` a short name may hold, upper-cased; others are dropped ('.' and ' ' too). */
function shortChars(s: string, max: number): string {
  let out = '';
  for (const c of s.toUpperCase()) {
    if (out.length === max) break;
    if (c.length === 1 && isShortChar(c)) out += c;
  }
  return out;
}

/**
 * The short name of a long name: the name itself (upper-cased) when it is a valid 8.3 name, else a
 * generated BASE~XYZ.EXT. Undefined for '.', '..' and '' (no short name).
 */
export function shortNameOf(name: string): string | undefined {
  if (name === '' || name === '.' || name === '..') return undefined;
  if (isShortName(name)) return name.toUpperCase();
  // MS-FSCC 2.1.5.2.1: leading dots and trailing dots/spaces do not count; the extension is what
  // follows the last dot.
  const trimmed = name.replace(/^\.+/, '').replace(/[. ]+$/, '');
  const dot = trimmed.lastIndexOf('.');
  const base = dot < 0 ? trimmed : trimmed.slice(0, dot);
  const ext = dot < 0 ? '' : shortChars(trimmed.slice(dot + 1), 3);
  const h = hash32(name.toUpperCase());
  const tail = BASE36[h % 36]! + BASE36[Math.floor(h / 36) % 36]! + BASE36[Math.floor(h / 1296) % 36]!;
  const prefix = shortChars(base, 4) || '_';
  return `${prefix}~${tail}${ext === '' ? '' : `.${ext}`}`;
}

/** The ShortName of a directory entry: empty when the long name is itself an 8.3 name (NTFS stores none then). */
export function dirShortNameOf(name: string): string {
  if (name === '.' || name === '..' || isShortName(name)) return '';
  return shortNameOf(name) ?? '';
}
