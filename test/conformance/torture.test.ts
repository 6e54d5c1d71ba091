// Unit tests of the smbtorture runner's parser and judge (no server needed).

import { describe, expect, test } from 'vitest';
import { describeVerdict, judge, parseKnownFail, parseSubunit, qualifyName, tortureArgs, type Results } from './torture.js';

// Shape of real smbtorture 4.17 --format=subunit output (smb2.read against Samba), with test chatter.
const readOutput = `smbtorture 4.17.12-Debian
Using seed 1795659930
time: 2026-11-26 02:25:30.659647
progress: 5
test: eof
time: 2026-11-26 02:25:30.659889
success: eof
test: position
all_info for '\\test9.dat'
\tcreate_time:    Thu Nov 26 02:25:31 2026 UTC
success: position
test: dir
time: 2026-11-26 02:25:30.667812
failure: dir [
../../source4/torture/smb2/read.c:200: status was NT_STATUS_OK, expected NT_STATUS_INVALID_DEVICE_REQUEST
second line
]
test: access
error: access [
Establishing SMB2 connection failed
]
test: bug14607
skip: bug14607 [
../../source4/torture/smb2/read.c:394: server doesn't support FSCTL_SMBTORTURE_GLOBAL_READ_RESPONSE_BODY_PADDING8
]
`;

function results(suite: string, text: string, extra: Partial<Results> = {}): Results {
  return { suite, tests: parseSubunit(text, suite), exitCode: 1, signal: null, timedOut: false, durationMs: 1, output: text, ...extra };
}

describe('parseSubunit', () => {
  test('parses outcomes, names and detail blocks of a real stream', () => {
    const tests = parseSubunit(readOutput, 'smb2.read');
    expect(tests.map((t) => [t.name, t.outcome])).toEqual([
      ['smb2.read.eof', 'success'],
      ['smb2.read.position', 'success'],
      ['smb2.read.dir', 'failure'],
      ['smb2.read.access', 'error'],
      ['smb2.read.bug14607', 'skip'],
    ]);
    expect(tests[2]!.details).toBe(
      '../../source4/torture/smb2/read.c:200: status was NT_STATUS_OK, expected NT_STATUS_INVALID_DEVICE_REQUEST\nsecond line',
    );
    expect(tests[4]!.details).toContain("server doesn't support");
  });

  test('a single-test suite keeps its own name', () => {
    expect(parseSubunit('test: connect\nsuccess: connect\n', 'smb2.connect')).toEqual([
      { name: 'smb2.connect', outcome: 'success', details: '' },
    ]);
    expect(qualifyName('smb2.connect', 'connect')).toBe('smb2.connect');
    expect(qualifyName('smb2', 'read.eof')).toBe('smb2.read.eof');
    expect(qualifyName('smb2.read', 'smb2.read.eof')).toBe('smb2.read.eof');
  });

  test('a started test without an outcome is an error (crash or timeout)', () => {
    const tests = parseSubunit('test: a\nsuccess: a\ntest: b\nsome output\n', 's');
    expect(tests).toEqual([
      { name: 's.a', outcome: 'success', details: '' },
      { name: 's.b', outcome: 'error', details: 'no outcome reported (smbtorture died or timed out)' },
    ]);
  });

  test('synonyms, xfail, uxsuccess, CRLF and multipart blocks', () => {
    const text = 'test: a\r\nsuccessful: a\r\ntest: b\nfail: b [ multipart\nx\n]\ntest: c\nxfail: c\ntest: d\nuxsuccess: d\n';
    expect(parseSubunit(text, 's').map((t) => [t.name, t.outcome, t.details])).toEqual([
      ['s.a', 'success', ''],
      ['s.b', 'failure', 'x'],
      ['s.c', 'xfail', ''],
      ['s.d', 'uxsuccess', ''],
    ]);
  });

  test('an unterminated detail block does not hang or throw', () => {
    const tests = parseSubunit('test: a\nfailure: a [\nreason without end', 's');
    expect(tests).toEqual([{ name: 's.a', outcome: 'failure', details: 'reason without end' }]);
  });
});

describe('knownfail and judge', () => {
  test('parseKnownFail reads names and reasons, ignores comments and blanks', () => {
    const kf = parseKnownFail('# header\n\nsmb2.read.dir   # not yet\nsmb2.read.access\n');
    expect([...kf.keys()]).toEqual(['smb2.read.dir', 'smb2.read.access']);
    expect(kf.get('smb2.read.dir')!.reason).toBe('not yet');
    expect(kf.get('smb2.read.access')!.reason).toBe('');
  });

  test('unlisted failures and listed passes are both reported', () => {
    const kf = parseKnownFail('smb2.read.dir # listed\nsmb2.read.eof # listed but passes\n');
    const v = judge(results('smb2.read', readOutput), kf);
    expect(v.total).toBe(5);
    expect(v.passed).toBe(2); // eof, position (the skipped bug14607 is not a pass)
    expect(v.succeeded).toBe(2);
    expect(v.skipped).toBe(1);
    expect(v.expectedFailures.map((t) => t.name)).toEqual(['smb2.read.dir']);
    expect(v.unexpectedFailures.map((t) => t.name)).toEqual(['smb2.read.access']);
    expect(v.unexpectedPasses.map((t) => t.name)).toEqual(['smb2.read.eof']);
    const text = describeVerdict(v);
    expect(text).toContain('FAIL smb2.read.access (error)');
    expect(text).toContain('unexpected pass: smb2.read.eof: remove it from knownfail.txt');
  });

  test('a clean run has an empty description; an empty or timed-out run does not', () => {
    const ok = judge(results('smb2.connect', 'test: connect\nsuccess: connect\n'), new Map());
    expect(describeVerdict(ok)).toBe('');
    expect(describeVerdict(judge(results('smb2.x', 'Failed to connect\n'), new Map()))).toContain('no test results');
    const late = judge(results('smb2.connect', 'test: connect\nsuccess: connect\n', { timedOut: true }), new Map());
    expect(describeVerdict(late)).toContain('timed out');
  });

  test('tortureArgs builds the documented command line', () => {
    expect(
      tortureArgs({ host: '127.0.0.1', port: 4455 }, 'vms', 'u', 'p w', 'smb2.read', '/c/smb.conf', '/b', {
        torture: { user2name: 'u2' },
        target: 'samba3',
      }),
    ).toEqual([
      '//127.0.0.1/vms',
      '-p',
      '4455',
      '-U',
      'u%p w',
      '--format=subunit',
      '-s',
      '/c/smb.conf',
      '--basedir=/b',
      '--target=samba3',
      '--option=torture:user2name=u2',
      'smb2.read',
    ]);
  });
});
