/**
 * Proves WAL preallocation (WalOptions.preallocateBytes) keeps fsync policy `always` exact while
 * saving the file-size update from every fdatasync: the active segment is zero-filled ahead of its
 * records and its size stays put across saves (so an fdatasync has no size to commit), every
 * acknowledged save is recovered after a crash that leaves the zeros behind, a segment is cut to its
 * records when sealed or closed, a save torn inside the zeros is a torn tail like any other, and only
 * zeros count as preallocated space: a non-zero byte after the last save is still damage. Also proves
 * the inline file system (writes and fdatasync on the calling thread) stores and recovers the same log
 * and reports a failing fdatasync as a failure of the storage.
 */
import * as fs from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { StorageCorruptionError, StorageFailedError, type StorageFileSystem, WalStorage, inlineFileSystem } from '../src/index.js';
import { countingFileSystem, describeState, entriesOf, readyOf, recordingLogger, removeDirectory, segmentFiles, temporaryDirectory } from './helpers.js';

let directory = '';
beforeEach(() => {
  directory = temporaryDirectory();
});
afterEach(() => {
  removeDirectory(directory);
});

const preallocateBytes = 64 * 1024;

/** Saves `count` Readys of three entries each (term 1); entry data ends in a non-zero byte. */
async function saveMany(storage: WalStorage, count: number, from = 0): Promise<void> {
  for (let i = from; i < from + count; i++) {
    await storage.save(readyOf({ hardState: { term: 1, vote: 1, commit: i * 3 }, entries: entriesOf(i * 3 + 1, [1, 1, 1], 'p'.repeat(36)) }));
  }
}

function sizeOf(name: string): number {
  return fs.statSync(`${directory}/${name}`).size;
}

function isZero(bytes: Uint8Array): boolean {
  return bytes.every((byte) => byte === 0);
}

describe('preallocation', () => {
  it('zero-fills the active segment ahead of its records, so saves do not change the file size', async () => {
    const { files, counts } = countingFileSystem();
    const storage = await WalStorage.open(directory, { preallocateBytes, fileSystem: files, logger: recordingLogger() });
    await saveMany(storage, 1);
    const [name] = segmentFiles(directory) as [string];
    const sizeAfterFirst = sizeOf(name);
    expect(sizeAfterFirst).toBe(preallocateBytes);
    const syncsBefore = counts.syncData;
    await saveMany(storage, 20, 1);
    expect(sizeOf(name)).toBe(sizeAfterFirst);
    // Policy always: exactly one fdatasync per save, none spent on growing the file.
    expect(counts.syncData - syncsBefore).toBe(20);
    const written = storage.stats().writtenPosition.offset;
    expect(written).toBeLessThan(preallocateBytes);
    expect(isZero(fs.readFileSync(`${directory}/${name}`).subarray(written))).toBe(true);
    await storage.close();
  });

  it('extends by another step when the records reach the zeros, and cuts the zeros when the segment is sealed', async () => {
    const storage = await WalStorage.open(directory, { preallocateBytes: 4096, segmentBytesMax: 16 * 1024, logger: recordingLogger() });
    await saveMany(storage, 200);
    const names = segmentFiles(directory);
    expect(names.length).toBeGreaterThan(2);
    const active = names[names.length - 1] as string;
    expect(sizeOf(active) % 4096).toBe(0);
    for (const name of names.slice(0, -1)) {
      const bytes = fs.readFileSync(`${directory}/${name}`);
      expect(bytes.length).toBeLessThanOrEqual(16 * 1024);
      expect(bytes[bytes.length - 1]).not.toBe(undefined);
      // A sealed segment ends with its last record: no zero tail left behind.
      expect(isZero(bytes.subarray(bytes.length - 8))).toBe(false);
    }
    const before = describeState(await storage.load());
    await storage.close();
    expect(isZero(fs.readFileSync(`${directory}/${active}`).subarray(-8))).toBe(false);
    const reopened = await WalStorage.open(directory, { preallocateBytes: 4096, segmentBytesMax: 16 * 1024, logger: recordingLogger() });
    expect(describeState(await reopened.load())).toEqual(before);
    await reopened.close();
  });

  it('recovers every acknowledged save after a crash that leaves the zero tail, without a warning', async () => {
    const storage = await WalStorage.open(directory, { preallocateBytes, logger: recordingLogger() });
    await saveMany(storage, 30);
    const expected = describeState(await storage.load());
    const [name] = segmentFiles(directory) as [string];
    expect(sizeOf(name)).toBe(preallocateBytes);
    await storage.simulateCrash();
    const logger = recordingLogger();
    const recovered = await WalStorage.open(directory, { preallocateBytes, logger });
    expect(describeState(await recovered.load())).toEqual(expected);
    expect(logger.warnings).toEqual([]);
    // Recovery cut the zeros; the writer continues in a new segment.
    expect(isZero(fs.readFileSync(`${directory}/${name}`).subarray(-8))).toBe(false);
    await saveMany(recovered, 5, 30);
    const more = describeState(await recovered.load());
    await recovered.simulateCrash();
    const again = await WalStorage.open(directory, { preallocateBytes, logger: recordingLogger() });
    expect(describeState(await again.load())).toEqual(more);
    await again.close();
  });

  it('treats a save torn inside the zeros as a torn tail: truncated with a warning, earlier saves kept', async () => {
    const storage = await WalStorage.open(directory, { preallocateBytes, logger: recordingLogger() });
    await saveMany(storage, 5);
    const kept = describeState(await storage.load());
    const end = storage.stats().writtenPosition.offset;
    await saveMany(storage, 1, 5);
    const tornEnd = storage.stats().writtenPosition.offset;
    await storage.simulateCrash();
    const [name] = segmentFiles(directory) as [string];
    const bytes = fs.readFileSync(`${directory}/${name}`);
    // The crash reached the disk with only the first half of the last save: the rest is still zeros.
    bytes.fill(0, end + Math.floor((tornEnd - end) / 2), tornEnd);
    fs.writeFileSync(`${directory}/${name}`, bytes);
    const logger = recordingLogger();
    const recovered = await WalStorage.open(directory, { preallocateBytes, logger });
    expect(describeState(await recovered.load())).toEqual(kept);
    expect(logger.warnings).toHaveLength(1);
    expect(logger.warnings[0]?.message).toMatch(/torn write/);
    expect(sizeOf(name)).toBe(end);
    await recovered.close();
  });

  it('accepts only zeros as preallocated space: one stray byte in the tail is damage, not a clean end', async () => {
    const storage = await WalStorage.open(directory, { preallocateBytes, logger: recordingLogger() });
    await saveMany(storage, 5);
    const expected = describeState(await storage.load());
    const end = storage.stats().writtenPosition.offset;
    await storage.simulateCrash();
    const [name] = segmentFiles(directory) as [string];
    const bytes = fs.readFileSync(`${directory}/${name}`);
    bytes[end + 1000] = 1;
    fs.writeFileSync(`${directory}/${name}`, bytes);
    const logger = recordingLogger();
    const recovered = await WalStorage.open(directory, { preallocateBytes, logger });
    expect(describeState(await recovered.load())).toEqual(expected);
    expect(logger.warnings).toHaveLength(1); // torn-tail handling noticed it
    await recovered.close();
  });

  it('refuses a stray byte after the records of an earlier segment, and accepts zeros there', async () => {
    const storage = await WalStorage.open(directory, { preallocateBytes: 4096, segmentBytesMax: 16 * 1024, logger: recordingLogger() });
    await saveMany(storage, 200);
    const expected = describeState(await storage.load());
    await storage.close();
    const first = segmentFiles(directory)[0] as string;
    const path = `${directory}/${first}`;
    const original = fs.readFileSync(path);
    // A crash between sealing and cutting would leave zeros after an earlier segment's records: fine.
    fs.appendFileSync(path, Buffer.alloc(4096));
    const zeros = await WalStorage.open(directory, { logger: recordingLogger() });
    expect(describeState(await zeros.load())).toEqual(expected);
    await zeros.close();
    // Anything else there is damage in the middle of the log.
    fs.writeFileSync(path, Buffer.concat([original, Buffer.alloc(100, 0xab)]));
    await expect(WalStorage.open(directory, { logger: recordingLogger() })).rejects.toBeInstanceOf(StorageCorruptionError);
  });

  it('removes an all-zero last segment like an empty one (created and extended just before a crash)', async () => {
    const storage = await WalStorage.open(directory, { preallocateBytes, segmentBytesMax: 16 * 1024, logger: recordingLogger() });
    await saveMany(storage, 3);
    const expected = describeState(await storage.load());
    await storage.close();
    const [name] = segmentFiles(directory) as [string];
    const next = name.replace(/^0000000000000001-/, '0000000000000002-');
    fs.writeFileSync(`${directory}/${next}`, Buffer.alloc(8192));
    const logger = recordingLogger();
    const recovered = await WalStorage.open(directory, { logger });
    expect(describeState(await recovered.load())).toEqual(expected);
    expect(segmentFiles(directory)).toEqual([name]);
    expect(logger.warnings).toHaveLength(1);
    await recovered.close();
  });

  it('refuses a negative or oversized preallocation step', async () => {
    await expect(WalStorage.open(directory, { preallocateBytes: -1 })).rejects.toMatchObject({ code: 'invalid-storage-options' });
    await expect(WalStorage.open(directory, { preallocateBytes: 2 ** 31 })).rejects.toMatchObject({ code: 'invalid-storage-options' });
  });
});

describe('inline file system', () => {
  it('stores and recovers the same log with writes and fdatasync on the calling thread', async () => {
    const files = inlineFileSystem({ writes: true, syncs: true });
    const storage = await WalStorage.open(directory, { fileSystem: files, preallocateBytes, logger: recordingLogger() });
    await saveMany(storage, 10);
    const expected = describeState(await storage.load());
    expect(storage.stats()).toMatchObject({ bytesSynced: storage.stats().bytesWritten, lastIndexSynced: 30 });
    await storage.simulateCrash({ loseUnsyncedBytes: true });
    const recovered = await WalStorage.open(directory, { fileSystem: files, logger: recordingLogger() });
    expect(describeState(await recovered.load())).toEqual(expected);
    await recovered.close();
  });

  it('turns a failing inline fdatasync into a failed storage, never a resolved save', async () => {
    const inline = inlineFileSystem({ writes: true, syncs: true });
    let failNext = false;
    const files: StorageFileSystem = {
      ...inline,
      syncData(fd) {
        // A closed descriptor makes the real fdatasync fail (EBADF), on the calling thread.
        return failNext ? inline.syncData(-1) : inline.syncData(fd);
      },
    };
    const storage = await WalStorage.open(directory, { fileSystem: files, logger: recordingLogger() });
    await saveMany(storage, 1);
    failNext = true;
    await expect(saveMany(storage, 1, 1)).rejects.toBeInstanceOf(StorageFailedError);
    await expect(saveMany(storage, 1, 2)).rejects.toBeInstanceOf(StorageFailedError);
    await storage.close();
  });
});
