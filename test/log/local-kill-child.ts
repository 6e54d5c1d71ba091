// Child process for test/log/local.test.ts: appends from 32 concurrent callers, prints each resolved
// append ("<entry> <position>") synchronously, and SIGKILLs itself the moment the N-th append
// resolves, while other appends are still queued or in flight.
import { writeSync } from 'node:fs';
import { LocalLog } from '../../src/log/local.js';

const [dir, killAfterArg] = process.argv.slice(2);
const killAfter = Number(killAfterArg);
const log = await LocalLog.open({ dir: dir! });
let resolved = 0;
let seq = 0;
await Promise.all(
  Array.from({ length: 32 }, async () => {
    for (;;) {
      const name = `e${seq++}`;
      const position = await log.append([Buffer.from(name)]);
      writeSync(1, `${name} ${position}\n`);
      if (++resolved === killAfter) process.kill(process.pid, 'SIGKILL');
    }
  }),
);
