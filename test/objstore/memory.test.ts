import { describe, expect, it } from 'vitest';
import { MemoryObjectStore } from '../../src/objstore/memory.js';
import { runObjStoreConformance } from './conformance.js';

runObjStoreConformance('memory', async () => ({ store: new MemoryObjectStore(), cleanup: async () => undefined }));

describe('MemoryObjectStore', () => {
  it('keeps one copy per object: a copy shares the stored bytes, an overwrite frees the old ones', async () => {
    const s = new MemoryObjectStore();
    await s.put('a', Buffer.alloc(1000));
    await s.copy('a', 'b');
    expect(s.stats()).toEqual({ objects: 2, bytes: 2000 });
    await s.put('a', Buffer.alloc(10));
    await s.deleteMany(['b']);
    expect(s.stats()).toEqual({ objects: 1, bytes: 10 });
  });

  it('resolves asynchronously (a missing await shows up as it would on a real store)', async () => {
    const s = new MemoryObjectStore();
    let done = false;
    const p = s.put('k', Buffer.from('v')).then(() => (done = true));
    expect(done).toBe(false);
    await p;
    expect(done).toBe(true);
  });
});
