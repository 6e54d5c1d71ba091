// Child process of the SIGKILL test (state-machine.test.ts): applies batches to an LMDB state store
// as fast as it can and prints each position once applyBatch has returned. The parent kills it
// with SIGKILL at an arbitrary moment and checks that every printed position survived.
import { LmdbStateStore } from '../../src/meta/store.js';
import { batch, entry, join, machine } from './sm-helpers.js';

const dir = process.argv[2]!;
const sm = machine(LmdbStateStore.open(dir));
let pos = sm.appliedPosition;
if (pos === 0) sm.applyBatch(batch(++pos, join('a', 1, 1)));
let seq = 1000 * pos;
const deadline = Date.now() + 20_000; // never outlive a parent that failed before killing it
while (Date.now() < deadline) {
  pos++;
  const es = [];
  // Each batch writes its own position under 'pos' and one key per entry: the parent checks they
  // match the stored applied position (state and position moved together).
  for (let j = 0; j < 16; j++) es.push(entry('a', 1, ++seq, { t: 'kv.put', k: `b${pos}-${j}`, v: pos }, seq));
  es.push(entry('a', 1, ++seq, { t: 'kv.put', k: 'pos', v: pos }, seq));
  sm.applyBatch(batch(pos, ...es));
  process.stdout.write(`${pos}\n`);
}
