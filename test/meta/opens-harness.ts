// The open table's commands (src/meta/families/opens.ts) applied to an in-memory store, as the state
// machine applies them: through an overlay, keeping a command's writes only if it returned ok. Shared
// by the open-table tests (opens, opens-locks, opens-oplocks).
import { MemoryStore, type Command, type CommandResult } from '../../src/meta/tx.js';
import { opensHandlers } from '../../src/meta/families/opens.js';

export class Table {
  store = new MemoryStore();
  private pos = 1;

  run(cmd: Command): CommandResult {
    const copy = new MemoryStore();
    for (const [k, v] of this.store.rangeRaw(Buffer.alloc(0), Buffer.alloc(0))) copy.putRaw(k, v);
    const handler = opensHandlers[cmd.t];
    if (handler === undefined) throw new Error(`no handler ${cmd.t}`);
    const r = handler(copy.tx(this.pos++), cmd);
    if (r.ok) this.store = copy;
    return r;
  }

  /** The result value, loosely typed for assertions; a failure throws with its code. */
  ok(cmd: Command): any {
    const r = this.run(cmd);
    if (!r.ok) throw new Error(`${cmd.t} failed: ${r.code} ${r.message}`);
    return r.value;
  }

  code(cmd: Command): string {
    const r = this.run(cmd);
    return r.ok ? 'ok' : r.code;
  }

  get tx() {
    return this.store.tx();
  }
}

/** An open.create of 'share/1' by client c1 (read+write access, sharing everything), as changed by `over`. */
export function create(over: Partial<Command> = {}): Command {
  return {
    t: 'open.create',
    file: 'share/1',
    node: 'n1',
    inc: 1,
    clientGuid: 'c1',
    desiredAccess: 0x1 | 0x2,
    shareAccess: 7,
    createOptions: 0,
    oplock: 'none',
    owner: 'S-1-5-21-1000',
    now: 1_000,
    ...over,
  };
}
