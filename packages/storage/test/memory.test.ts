/**
 * Proves MemoryStorage keeps the Storage contract: a fresh storage loads null; saves round-trip hard
 * state, entries and snapshots; entries replace the stored suffix from their first index (§5.3); an
 * installed snapshot discards the log and a local one keeps the suffix after it (§7); and it copies the
 * Ready's views, so reusing the node's buffers after advance() cannot change what was stored.
 */
import { describe, expect, it } from 'vitest';
import { MemoryStorage, StorageError } from '../src/index.js';
import { describeState, entriesOf, readyOf, snapshotOf } from './helpers.js';

describe('MemoryStorage', () => {
  it('loads null when nothing was saved', async () => {
    expect(await new MemoryStorage().load()).toBeNull();
  });

  it('round-trips hard state, entries and a snapshot', async () => {
    const storage = new MemoryStorage();
    await storage.save(readyOf({ hardState: { term: 2, vote: 1, commit: 0 }, entries: entriesOf(1, [1, 1, 2]) }));
    await storage.save(readyOf({ hardState: { term: 2, vote: 1, commit: 3 } }));
    expect(describeState(await storage.load())).toEqual({
      hardState: { term: 2, vote: 1, commit: 3 },
      snapshot: null,
      entries: ['1:1:0:653a31', '2:1:0:653a32', '3:2:0:653a33'],
    });
  });

  it('replaces the stored suffix from the first index of new entries (§5.3)', async () => {
    const storage = new MemoryStorage();
    await storage.save(readyOf({ hardState: { term: 3, vote: 0, commit: 0 }, entries: entriesOf(1, [1, 1, 1, 1]) }));
    await storage.save(readyOf({ entries: entriesOf(3, [3], 'x') }));
    const state = describeState(await storage.load()) as { entries: string[] };
    expect(state.entries).toEqual(['1:1:0:653a31', '2:1:0:653a32', `3:3:0:${Buffer.from('x:3').toString('hex')}`]);
  });

  it('discards the whole log for an installed snapshot and keeps the suffix after a local one (§7)', async () => {
    const installed = new MemoryStorage();
    await installed.save(readyOf({ hardState: { term: 1, vote: 0, commit: 0 }, entries: entriesOf(1, [1, 1, 1, 1]) }));
    await installed.save(readyOf({ snapshot: snapshotOf(2, 1), hardState: { term: 2, vote: 0, commit: 2 } }));
    expect((describeState(await installed.load()) as { entries: string[] }).entries).toEqual([]);

    const local = new MemoryStorage();
    await local.save(readyOf({ hardState: { term: 1, vote: 0, commit: 3 }, entries: entriesOf(1, [1, 1, 1, 1]) }));
    await local.saveSnapshot(snapshotOf(2, 1));
    const state = describeState(await local.load()) as { entries: string[]; snapshot: { index: number } };
    expect(state.snapshot.index).toBe(2);
    expect(state.entries).toEqual(['3:1:0:653a33', '4:1:0:653a34']);
  });

  it('copies the entries of a Ready: reusing the source buffer afterwards changes nothing stored', async () => {
    const storage = new MemoryStorage();
    const entries = entriesOf(1, [1, 1]);
    await storage.save(readyOf({ hardState: { term: 1, vote: 0, commit: 0 }, entries }));
    const before = describeState(await storage.load());
    (entries.slices[0] as Uint8Array).fill(0);
    expect(describeState(await storage.load())).toEqual(before);
  });

  it('refuses work after close with code storage-closed', async () => {
    const storage = new MemoryStorage();
    await storage.close();
    await expect(storage.save(readyOf({ hardState: { term: 1, vote: 0, commit: 0 } }))).rejects.toMatchObject({ code: 'storage-closed' });
    await expect(storage.load()).rejects.toBeInstanceOf(StorageError);
  });

  it('reports itself as not durable', () => {
    expect(new MemoryStorage().stats()).toMatchObject({ kind: 'memory', durable: false, syncCount: 0 });
  });
});
