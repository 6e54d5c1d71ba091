// Case-insensitive lookup must stay fast in a directory of 100k entries (the name index is built
// once and then maintained by the driver's own changes, not rebuilt per miss).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import type { IosShare } from '../../src/ios/spi.js';
import { posixDriver } from '../../src/ios/posix/index.js';

const entries = 100_000;
const ops = 1_000;

describe('posix driver: 100k-entry directory', () => {
  let root: string;
  let share: IosShare;
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'tessera-perf-'));
    const dir = join(root, 'big');
    fs.mkdirSync(dir);
    const t0 = performance.now();
    for (let i = 0; i < entries; i++) fs.closeSync(fs.openSync(join(dir, `Entry-${i}.vhdx`), 'w'));
    console.log(`created ${entries} files with fs in ${Math.round(performance.now() - t0)} ms`);
    // Flush the writeback of 100k creates first, so the timing measures the driver, not the disk.
    try {
      execFileSync('sync');
    } catch {
      // no sync(1): timing includes writeback noise
    }
    share = await posixDriver.openShare(root, {});
  }, 120_000);
  afterAll(async () => {
    await share?.close();
    await rm(root, { recursive: true, force: true });
  }, 120_000);

  it(`${ops} case-mismatched lookups and ${ops} creates stay fast`, async () => {
    const stride = Math.floor(entries / ops);
    const t0 = performance.now();
    let firstMs = 0;
    for (let i = 0; i < ops; i++) {
      if (i === 1) firstMs = performance.now() - t0;
      const n = i * stride;
      const r = await share.stat(`BIG/entry-${n}.VHDX`);
      expect(r.path).toBe(`big/Entry-${n}.vhdx`);
    }
    const t1 = performance.now();
    for (let i = 0; i < ops; i++) {
      const r = await share.open(`big/New-${i}.vhdx`, { mode: 'create', write: true });
      await r.handle.close();
    }
    const t2 = performance.now();
    // The creates kept the index current: new names resolve case-insensitively without a rebuild.
    for (let i = 0; i < ops; i += 97) expect((await share.stat(`big/NEW-${i}.VHDX`)).path).toBe(`big/New-${i}.vhdx`);
    // And an existing name in another case still refuses a create.
    const dup = share.open('big/ENTRY-5.VHDX', { mode: 'create', write: true });
    await expect(dup).rejects.toMatchObject({ code: 'EEXIST' });
    const lookupMs = t1 - t0;
    const createMs = t2 - t1;
    console.log(
      `lookups: ${ops} in ${lookupMs.toFixed(0)} ms (${Math.round((ops / lookupMs) * 1000)}/s; the first, which builds the index: ${firstMs.toFixed(0)} ms); ` +
        `creates: ${ops} in ${createMs.toFixed(0)} ms (${Math.round((ops / createMs) * 1000)}/s)`,
    );
    expect(lookupMs + createMs).toBeLessThan(5_000);
  }, 60_000);
});
