/**
 * Proves snapshot storage and compaction: a snapshot file is written atomically (temp file, fdatasync,
 * rename, directory fsync) and a leftover temp file from a crash is ignored and removed; a new snapshot
 * replaces the old file; segments wholly covered by a snapshot are removed while the log after it
 * loads unchanged; a damaged snapshot refuses to start (or is set aside under repair); a snapshot ahead
 * of the stored log restarts the log; and the compaction policy fires on either bound.
 */
import * as fs from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type StorageFileSystem, WalStorage, nodeFileSystem, shouldCompact } from '../src/index.js';
import { describeState, entriesOf, readyOf, recordingLogger, removeDirectory, segmentFiles, snapshotFiles, snapshotOf, temporaryDirectory } from './helpers.js';

let directory = '';
beforeEach(() => {
  directory = temporaryDirectory();
});
afterEach(() => {
  removeDirectory(directory);
});

async function fillSegments(storage: WalStorage, saves: number): Promise<void> {
  for (let i = 0; i < saves; i++) {
    await storage.save(readyOf({ hardState: { term: 1, vote: 1, commit: (i + 1) * 10 }, entries: entriesOf(i * 10 + 1, new Array(10).fill(1), 's', 30) }));
  }
}

describe('snapshot files', () => {
  it('writes through a temp file, fdatasync, rename and a directory fsync, in that order', async () => {
    const calls: string[] = [];
    const files: StorageFileSystem = {
      ...nodeFileSystem,
      async open(path, mode) {
        calls.push(`open ${path.split('/').pop()} ${mode}`);
        return nodeFileSystem.open(path, mode);
      },
      async syncData(fd) {
        calls.push('syncData');
        return nodeFileSystem.syncData(fd);
      },
      async rename(from, to) {
        calls.push(`rename ${from.split('/').pop()} ${to.split('/').pop()}`);
        return nodeFileSystem.rename(from, to);
      },
      async syncDirectory(path) {
        calls.push('syncDirectory');
        return nodeFileSystem.syncDirectory(path);
      },
    };
    const storage = await WalStorage.open(directory, { fileSystem: files });
    await storage.save(readyOf({ hardState: { term: 1, vote: 1, commit: 2 }, entries: entriesOf(1, [1, 1]) }));
    calls.length = 0;
    await storage.saveSnapshot(snapshotOf(2, 1));
    const name = 'snapshot-0000000000000002-0000000000000001.snap';
    expect(calls.slice(0, 4)).toEqual([`open ${name}.tmp replace`, 'syncData', `rename ${name}.tmp ${name}`, 'syncDirectory']);
    await storage.close();
  });

  it('ignores and removes a temp file left by a crash mid-write', async () => {
    let storage = await WalStorage.open(directory, { logger: recordingLogger() });
    await storage.save(readyOf({ hardState: { term: 1, vote: 1, commit: 2 }, entries: entriesOf(1, [1, 1]) }));
    await storage.close();
    const leftover = `${directory}/snapshot-0000000000000002-0000000000000001.snap.tmp`;
    fs.writeFileSync(leftover, Buffer.alloc(10, 7));
    const logger = recordingLogger();
    storage = await WalStorage.open(directory, { logger });
    const state = describeState(await storage.load()) as { snapshot: unknown; entries: string[] };
    expect(state.snapshot).toBeNull();
    expect(state.entries).toHaveLength(2);
    expect(fs.existsSync(leftover)).toBe(false);
    expect(logger.warnings.map((warning) => warning.message)).toEqual(['removed an unfinished snapshot write']);
    await storage.close();
  });

  it('keeps only the newest snapshot file', async () => {
    const storage = await WalStorage.open(directory);
    await storage.save(readyOf({ hardState: { term: 1, vote: 1, commit: 6 }, entries: entriesOf(1, [1, 1, 1, 1, 1, 1]) }));
    await storage.saveSnapshot(snapshotOf(3, 1));
    await storage.saveSnapshot(snapshotOf(6, 1));
    await storage.saveSnapshot(snapshotOf(5, 1)); // older than the stored one: ignored
    expect(snapshotFiles(directory)).toEqual(['snapshot-0000000000000006-0000000000000001.snap']);
    expect(storage.stats()).toMatchObject({ snapshotIndex: 6, snapshotCount: 2, entriesSinceSnapshot: 0 });
    await storage.close();
  });

  it('refuses a damaged snapshot file by name; repair sets it aside', async () => {
    const storage = await WalStorage.open(directory);
    await storage.save(readyOf({ hardState: { term: 1, vote: 1, commit: 4 }, entries: entriesOf(1, [1, 1, 1, 1]) }));
    await storage.saveSnapshot(snapshotOf(2, 1));
    await storage.close();
    const file = `${directory}/snapshot-0000000000000002-0000000000000001.snap`;
    const bytes = fs.readFileSync(file);
    bytes[bytes.length - 1] ^= 0xff;
    fs.writeFileSync(file, bytes);
    await expect(WalStorage.open(directory, { logger: recordingLogger() })).rejects.toMatchObject({
      code: 'storage-corrupt',
      file,
      reason: 'data crc32c mismatch',
    });
    const logger = recordingLogger();
    const repaired = await WalStorage.open(directory, { repair: 'truncate', logger });
    const state = describeState(await repaired.load()) as { snapshot: unknown; entries: string[] };
    // The segments still hold the whole log, so nothing is lost here.
    expect(state.snapshot).toBeNull();
    expect(state.entries).toHaveLength(4);
    expect(fs.existsSync(`${file}.corrupt`)).toBe(true);
    await repaired.close();
  });
});

describe('compaction', () => {
  it('removes the segments a snapshot covers and loads the log after it unchanged', async () => {
    let storage = await WalStorage.open(directory, { segmentBytesMax: 4096 });
    await fillSegments(storage, 40);
    const before = segmentFiles(directory);
    expect(before.length).toBeGreaterThan(4);
    const full = describeState(await storage.load()) as { entries: string[] };
    await storage.saveSnapshot(snapshotOf(300, 1));
    const after = segmentFiles(directory);
    expect(after.length).toBeLessThan(before.length);
    expect(after[after.length - 1]).toBe(before[before.length - 1]); // the active segment stays
    expect(storage.stats().segmentCount).toBe(after.length);
    await storage.close();
    storage = await WalStorage.open(directory, { segmentBytesMax: 4096 });
    const state = describeState(await storage.load()) as { entries: string[]; snapshot: { index: number }; hardState: { commit: number } };
    expect(state.snapshot.index).toBe(300);
    expect(state.entries).toEqual(full.entries.slice(300));
    expect(state.hardState.commit).toBe(400);
    await storage.close();
  });

  it('removes covered segments after a restart too, starting a segment that carries the hard state first', async () => {
    let storage = await WalStorage.open(directory, { segmentBytesMax: 4096 });
    await fillSegments(storage, 40);
    await storage.close();
    const before = segmentFiles(directory);
    storage = await WalStorage.open(directory, { segmentBytesMax: 4096 });
    await storage.saveSnapshot(snapshotOf(400, 1));
    const after = segmentFiles(directory);
    expect(after).toHaveLength(1);
    expect(Number(after[0]?.slice(0, 16))).toBe(before.length + 1);
    await storage.close();
    storage = await WalStorage.open(directory, { segmentBytesMax: 4096 });
    expect(describeState(await storage.load())).toMatchObject({ hardState: { term: 1, vote: 1, commit: 400 }, snapshot: { index: 400 }, entries: [] });
    await storage.close();
  });

  it('restarts the log when a snapshot is ahead of it, and takes saves after it across a restart', async () => {
    let storage = await WalStorage.open(directory);
    await storage.save(readyOf({ hardState: { term: 1, vote: 1, commit: 2 }, entries: entriesOf(1, [1, 1]) }));
    await storage.saveSnapshot(snapshotOf(10, 2));
    await storage.save(readyOf({ hardState: { term: 2, vote: 1, commit: 10 }, entries: entriesOf(11, [2]) }));
    await storage.close();
    storage = await WalStorage.open(directory);
    expect(describeState(await storage.load())).toMatchObject({ snapshot: { index: 10, term: 2 }, entries: ['11:2:0:653a3131'] });
    await storage.close();
  });

  it('reports entries and bytes since the snapshot, and shouldCompact fires on either bound', async () => {
    const storage = await WalStorage.open(directory);
    await storage.save(readyOf({ hardState: { term: 1, vote: 1, commit: 0 }, entries: entriesOf(1, new Array(100).fill(1), 'b', 95) }));
    const stats = storage.stats();
    expect(stats.entriesSinceSnapshot).toBe(100);
    expect(stats.bytesSinceSnapshot).toBe(100 * 100); // 95 data bytes + 5 frame header bytes each
    expect(shouldCompact(stats, { compactEntriesMin: 100, compactBytesMin: 1e9 })).toBe(true);
    expect(shouldCompact(stats, { compactEntriesMin: 1e9, compactBytesMin: 10_000 })).toBe(true);
    expect(shouldCompact(stats, { compactEntriesMin: 101, compactBytesMin: 10_001 })).toBe(false);
    await storage.saveSnapshot(snapshotOf(60, 1));
    expect(storage.stats()).toMatchObject({ entriesSinceSnapshot: 40, bytesSinceSnapshot: 4000 });
    await storage.close();
  });
});
