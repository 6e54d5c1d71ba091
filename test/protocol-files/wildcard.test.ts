import { describe, expect, it } from 'vitest';
import { hasWildcards, matchPattern, namesEqual } from '../../src/protocol/fscc/wildcard.js';

// [pattern, name, expected] per MS-FSA 2.1.4.4 (FsRtlIsNameInExpression semantics).
const TABLE: [string, string, boolean][] = [
  // Part 1 special cases.
  ['', '', true],
  ['*', '', false],
  ['', 'a', false],
  ['*', 'anything.at.all', true],
  ['*.*', 'noext', true],
  ['*.*', '.', true],
  // Literal and case-insensitive.
  ['Disk.VHDX', 'disk.vhdx', true],
  ['disk.vhdx', 'disk.vhd', false],
  ['ÄBC', 'äbc', true],
  // * and ?
  ['*.txt', 'file.txt', true],
  ['*.txt', 'file.txt.bak', false],
  ['*.TXT', 'a.b.txt', true],
  ['f*e', 'fe', true],
  ['f*e', 'fabce', true],
  ['f*e', 'fabc', false],
  ['?.txt', 'a.txt', true],
  ['??.txt', 'a.txt', false],
  ['a?c', 'a.c', true],
  ['*a*b*', 'xxaxxbxx', true],
  ['*a*b*', 'xxbxxaxx', false],
  // DOS_DOT (")
  ['a"', 'a', true],
  ['a"', 'a.', true],
  ['a"b', 'a.b', true],
  ['a"b', 'ab', false],
  // DOS_QM (>)
  ['a>>', 'a', true],
  ['a>>', 'ab', true],
  ['a>>', 'abc', true],
  ['a>>', 'abcd', false],
  ['>>>.txt', 'ab.txt', true],
  ['>>>.txt', 'abcd.txt', false],
  ['a>.b', 'a.b', true],
  ['>', '.', false],
  // DOS_STAR (<)
  ['<.txt', 'a.b.txt', true],
  ['<.txt', 'file.txt', true],
  ['<', 'a.b', false],
  ['<', 'ab', true],
  ['<.', 'a.', true],
  // Win32 translations: "*.*" -> '<"*', "*." -> '<"', "?.?" -> '>">'
  ['<"*', 'file', true],
  ['<"*', 'a.b.c', true],
  ['<"', 'noext', true],
  ['<"', 'has.ext', false],
  ['>">', 'a.b', true],
  ['>">', 'a', true],
  ['>">', 'ab.c', false],
];

describe('matchPattern (MS-FSA 2.1.4.4)', () => {
  it.each(TABLE)('%j vs %j -> %s', (pattern, name, expected) => {
    expect(matchPattern(pattern, name)).toBe(expected);
  });

  it('helpers', () => {
    expect(hasWildcards('a<b')).toBe(true);
    expect(hasWildcards('plain.txt')).toBe(false);
    expect(namesEqual('ABC', 'abc')).toBe(true);
    expect(namesEqual('ABC', 'abd')).toBe(false);
  });

  it('is linear-ish on adversarial patterns', () => {
    const name = 'a'.repeat(255);
    const t0 = performance.now();
    expect(matchPattern('*a'.repeat(100) + 'b', name)).toBe(false);
    expect(performance.now() - t0).toBeLessThan(500);
  });
});
