// Child process for test/objstore/local-dir.test.ts: 16 concurrent writers put objects into a
// LocalDirStore, print each resolved put ("<key> <etag>") synchronously, and the process SIGKILLs
// itself the moment the N-th put resolves, while other puts are still writing their temp files.
import { writeSync } from 'node:fs';
import { LocalDirStore } from '../../src/objstore/local-dir.js';

/** The body of a key: ~40 KiB derived from the key (the test has the same function). */
function killBody(key: string): Buffer {
  return Buffer.from(`${key};`.repeat(Math.ceil(40_000 / (key.length + 1))));
}

const [dir, killAfterArg] = process.argv.slice(2);
const killAfter = Number(killAfterArg);
const store = await LocalDirStore.open(dir!);
let resolved = 0;
let seq = 0;
await Promise.all(
  Array.from({ length: 16 }, async (_, w) => {
    for (;;) {
      const key = `kill/w${w % 4}/o${seq++}`;
      const body = killBody(key);
      const info = await store.put(key, [body.subarray(0, 1000), body.subarray(1000)]);
      writeSync(1, `${key} ${info.etag}\n`);
      if (++resolved === killAfter) process.kill(process.pid, 'SIGKILL');
    }
  }),
);
