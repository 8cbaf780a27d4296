/**
 * Proves the fsync policies and the Ready contract (hard state and entries durable before the
 * messages that depend on them leave): under `always` every mustSync save is followed by its own
 * fdatasync and resolves only after it, a commit-only save is not synced; under `batch` concurrent saves
 * share fsyncs (group commit) yet each resolves only after an fsync that began after its write; `none`
 * never syncs and says so in stats. A failed fsync fails the storage for good. What stats report as
 * synced is what survives a crash that loses unsynced bytes.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type FsyncPolicy, StorageFailedError, type StorageFileSystem, WalStorage, nodeFileSystem } from '../src/index.js';
import { countingFileSystem, describeState, entriesOf, readyOf, recordingLogger, removeDirectory, snapshotOf, temporaryDirectory } from './helpers.js';

let directory = '';
beforeEach(() => {
  directory = temporaryDirectory();
});
afterEach(() => {
  removeDirectory(directory);
});

const tick = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 5));

describe('fsync policy always', () => {
  it('does one fdatasync per mustSync save and none for a commit-only save', async () => {
    const { files, counts } = countingFileSystem();
    const storage = await WalStorage.open(directory, { fileSystem: files, fsyncPolicy: 'always' });
    for (let i = 0; i < 10; i++) await storage.save(readyOf({ hardState: { term: 1, vote: 1, commit: i }, entries: entriesOf(i + 1, [1]) }));
    expect(counts.syncData).toBe(10);
    await storage.save(readyOf({ hardState: { term: 1, vote: 1, commit: 10 }, mustSync: false }));
    expect(counts.syncData).toBe(10);
    expect(storage.stats()).toMatchObject({ syncCount: 10, directorySyncCount: 1, durable: true, fsyncPolicy: 'always' });
    expect(storage.stats().bytesSynced).toBeLessThan(storage.stats().bytesWritten);
    await storage.close();
    expect(counts.syncData).toBe(11); // close makes the commit-only write durable
  });

  it('resolves a save only after its fdatasync returned (the Ready contract)', async () => {
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    let syncStarted: () => void = () => undefined;
    const started = new Promise<void>((resolve) => {
      syncStarted = resolve;
    });
    const { files } = countingFileSystem({
      beforeSyncData: async () => {
        syncStarted();
        await gate;
      },
    });
    const storage = await WalStorage.open(directory, { fileSystem: files, fsyncPolicy: 'always' });
    let resolved = false;
    const saving = storage.save(readyOf({ hardState: { term: 1, vote: 1, commit: 0 }, entries: entriesOf(1, [1]) })).then(() => {
      resolved = true;
    });
    await started;
    await tick();
    expect(resolved).toBe(false);
    release();
    await saving;
    expect(resolved).toBe(true);
    await storage.close();
  });
});

describe('fsync policy batch', () => {
  it('shares fsyncs among concurrent saves (group commit), each resolving after an fsync begun after its write', async () => {
    const events: string[] = [];
    const files: StorageFileSystem = {
      ...nodeFileSystem,
      async writev(fd, buffers) {
        const written = await nodeFileSystem.writev(fd, buffers);
        events.push('write');
        return written;
      },
      async syncData(fd) {
        events.push('sync-start');
        await new Promise((resolve) => setTimeout(resolve, 20));
        await nodeFileSystem.syncData(fd);
        events.push('sync-end');
      },
    };
    const storage = await WalStorage.open(directory, { fileSystem: files, fsyncPolicy: 'batch' });
    await storage.save(readyOf({ hardState: { term: 1, vote: 1, commit: 0 } }));
    events.length = 0;
    const saves = 12;
    const resolvedAt: number[] = [];
    const writeAt: number[] = [];
    await Promise.all(
      Array.from({ length: saves }, (_, i) => {
        const promise = storage.save(readyOf({ entries: entriesOf(i + 1, [1]) }));
        return promise.then(() => {
          resolvedAt[i] = events.length;
        });
      }),
    );
    events.forEach((event, at) => {
      if (event === 'write') writeAt.push(at);
    });
    const syncs = events.filter((event) => event === 'sync-end').length;
    expect(syncs).toBeGreaterThanOrEqual(1);
    expect(syncs).toBeLessThan(saves);
    for (let i = 0; i < saves; i++) {
      // Some fsync started after save i's write completed and ended before save i resolved.
      const startedAfter = events.findIndex((event, at) => event === 'sync-start' && at > (writeAt[i] as number));
      const endedAt = events.findIndex((event, at) => event === 'sync-end' && at > startedAfter);
      expect(startedAfter, `save ${i}`).toBeGreaterThan(-1);
      expect(endedAt, `save ${i}`).toBeLessThan(resolvedAt[i] as number);
    }
    expect(storage.stats().lastIndexSynced).toBe(saves);
    await storage.close();
  });

  it('is the same fsync count as always when the driver awaits each save', async () => {
    const { files, counts } = countingFileSystem();
    const storage = await WalStorage.open(directory, { fileSystem: files, fsyncPolicy: 'batch' });
    for (let i = 0; i < 8; i++) await storage.save(readyOf({ hardState: { term: 1, vote: 1, commit: 0 }, entries: entriesOf(i + 1, [1]) }));
    expect(counts.syncData).toBe(8);
    await storage.close();
  });
});

describe('fsync policy none', () => {
  it('never syncs a segment, a snapshot or the directory, and marks itself not durable', async () => {
    const { files, counts } = countingFileSystem();
    const storage = await WalStorage.open(directory, { fileSystem: files, fsyncPolicy: 'none', segmentBytesMax: 4096 });
    for (let i = 0; i < 30; i++) await storage.save(readyOf({ hardState: { term: 1, vote: 1, commit: i * 10 }, entries: entriesOf(i * 10 + 1, new Array(10).fill(1), 'n', 30) }));
    await storage.saveSnapshot(snapshotOf(100, 1));
    await storage.save(readyOf({ snapshot: snapshotOf(500, 2), hardState: { term: 2, vote: 0, commit: 500 } }));
    await storage.close();
    expect(storage.stats()).toMatchObject({ syncCount: 0, directorySyncCount: 0, bytesSynced: 0, durable: false, fsyncPolicy: 'none' });
    expect(counts.syncData).toBe(0);
    expect(counts.syncDirectory).toBe(0);
  });
});

describe('failures and crashes', () => {
  it('fails for good after a failed fsync: that save and every later one reject with storage-failed', async () => {
    let failing = false;
    const { files } = countingFileSystem({
      beforeSyncData: async () => {
        if (failing) throw Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' });
      },
    });
    const storage = await WalStorage.open(directory, { fileSystem: files });
    await storage.save(readyOf({ hardState: { term: 1, vote: 1, commit: 0 }, entries: entriesOf(1, [1]) }));
    failing = true;
    const error = await storage.save(readyOf({ entries: entriesOf(2, [1]) })).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(StorageFailedError);
    expect(error).toMatchObject({ code: 'storage-failed', message: expect.stringMatching(/EIO/) });
    failing = false;
    await expect(storage.save(readyOf({ entries: entriesOf(2, [1]) }))).rejects.toMatchObject({ code: 'storage-failed' });
    await storage.close();
    // What reached the disk is still there for the restarted node.
    const reopened = await WalStorage.open(directory, { logger: recordingLogger() });
    expect(((describeState(await reopened.load()) as { entries: string[] }).entries.length)).toBeGreaterThanOrEqual(1);
    await reopened.close();
  });

  for (const policy of ['always', 'batch'] as const satisfies readonly FsyncPolicy[]) {
    it(`${policy}: a crash that loses unsynced bytes leaves exactly what stats reported as synced`, async () => {
      const storage = await WalStorage.open(directory, { fsyncPolicy: policy });
      await storage.save(readyOf({ hardState: { term: 1, vote: 1, commit: 0 }, entries: entriesOf(1, [1, 1]) }));
      const durable = describeState(await storage.load());
      await storage.save(readyOf({ hardState: { term: 1, vote: 1, commit: 2 }, mustSync: false }));
      const stats = storage.stats();
      expect(stats.bytesSynced).toBeLessThan(stats.bytesWritten);
      expect(stats.lastIndexSynced).toBe(2);
      await storage.simulateCrash({ loseUnsyncedBytes: true });
      const reopened = await WalStorage.open(directory, { logger: recordingLogger() });
      expect(describeState(await reopened.load())).toEqual(durable);
      await reopened.close();
    });
  }

  it('a crash that keeps written bytes (a killed process) keeps the unsynced commit-only save', async () => {
    const storage = await WalStorage.open(directory);
    await storage.save(readyOf({ hardState: { term: 1, vote: 1, commit: 0 }, entries: entriesOf(1, [1, 1]) }));
    await storage.save(readyOf({ hardState: { term: 1, vote: 1, commit: 2 }, mustSync: false }));
    await storage.simulateCrash();
    const reopened = await WalStorage.open(directory);
    expect((describeState(await reopened.load()) as { hardState: { commit: number } }).hardState.commit).toBe(2);
    await reopened.close();
  });
});
