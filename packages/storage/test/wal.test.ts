/**
 * Proves WalStorage's write path and its round trip through close and open: hard state, entries and
 * snapshots come back as saved; entries replace the stored suffix (§5.3) across restarts; segments
 * rotate at segmentBytesMax and replay in order; each save reaches the file in one writev with the
 * entry bytes verbatim (never re-encoded); runs longer than recordBytesMax split into several records;
 * an entry that cannot fit is refused without harming the storage; a directory is opened by one
 * instance at a time; bad options are refused by name.
 */
import * as fs from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { StorageOptionsError, WalStorage, crc32c } from '../src/index.js';
import {
  countingFileSystem,
  describeState,
  entriesOf,
  readyOf,
  recordingLogger,
  removeDirectory,
  segmentFiles,
  snapshotOf,
  splitInTwo,
  temporaryDirectory,
} from './helpers.js';

let directory = '';
beforeEach(() => {
  directory = temporaryDirectory();
});
afterEach(() => {
  removeDirectory(directory);
});

async function reopen(storage: WalStorage, options: Parameters<typeof WalStorage.open>[1] = {}): Promise<WalStorage> {
  await storage.close();
  return WalStorage.open(directory, { logger: recordingLogger(), ...options });
}

describe('WalStorage round trip', () => {
  it('loads null from a fresh directory', async () => {
    const storage = await WalStorage.open(directory);
    expect(await storage.load()).toBeNull();
    await storage.close();
  });

  it('returns hard state, entries and snapshot after close and open', async () => {
    let storage = await WalStorage.open(directory);
    await storage.save(readyOf({ hardState: { term: 1, vote: 1, commit: 0 }, entries: entriesOf(1, [1, 1, 1]) }));
    await storage.save(readyOf({ hardState: { term: 2, vote: 2, commit: 3 }, entries: entriesOf(4, [2, 2]) }));
    await storage.saveSnapshot(snapshotOf(3, 1));
    const before = describeState(await storage.load());
    storage = await reopen(storage);
    const after = describeState(await storage.load());
    expect(after).toEqual(before);
    expect(after).toEqual({
      hardState: { term: 2, vote: 2, commit: 3 },
      snapshot: { index: 3, term: 1, peers: [1, 2, 3], data: Buffer.from('state@3').toString('hex') },
      entries: ['4:2:0:653a34', '5:2:0:653a35'],
    });
    await storage.close();
  });

  it('keeps suffix replacement across a restart: later records with lower indexes supersede', async () => {
    let storage = await WalStorage.open(directory);
    await storage.save(readyOf({ hardState: { term: 1, vote: 1, commit: 2 }, entries: entriesOf(1, [1, 1, 1, 1, 1]) }));
    await storage.save(readyOf({ hardState: { term: 3, vote: 0, commit: 2 }, entries: entriesOf(3, [3, 3], 'new') }));
    await storage.save(readyOf({ entries: entriesOf(5, [3], 'newer') }));
    storage = await reopen(storage);
    const state = describeState(await storage.load()) as { entries: string[] };
    expect(state.entries.map((entry) => entry.split(':').slice(0, 2).join(':'))).toEqual(['1:1', '2:1', '3:3', '4:3', '5:3']);
    expect(Buffer.from(state.entries[2]?.split(':')[3] ?? '', 'hex').toString()).toBe('new:3');
    expect(Buffer.from(state.entries[4]?.split(':')[3] ?? '', 'hex').toString()).toBe('newer:5');
    await storage.close();
  });

  it('rotates segments at segmentBytesMax and replays them in order', async () => {
    let storage = await WalStorage.open(directory, { segmentBytesMax: 4096 });
    for (let i = 0; i < 40; i++) {
      await storage.save(readyOf({ hardState: { term: 1, vote: 1, commit: i * 10 }, entries: entriesOf(i * 10 + 1, new Array(10).fill(1), 'r', 30) }));
    }
    const names = segmentFiles(directory);
    expect(names.length).toBeGreaterThan(3);
    expect(names.map((name) => Number(name.slice(0, 16)))).toEqual(names.map((_, i) => i + 1));
    for (const name of names.slice(0, -1)) expect(fs.statSync(`${directory}/${name}`).size).toBeLessThanOrEqual(4096);
    expect(storage.stats().segmentCount).toBe(names.length);
    const before = describeState(await storage.load());
    storage = await reopen(storage, { segmentBytesMax: 4096 });
    const after = describeState(await storage.load()) as { entries: string[]; hardState: { commit: number } };
    expect(after).toEqual(before);
    expect(after.entries).toHaveLength(400);
    expect(after.hardState.commit).toBe(390);
    await storage.close();
  });

  it('writes each save with one writev, the entry bytes verbatim in the file', async () => {
    const { files, counts } = countingFileSystem();
    const storage = await WalStorage.open(directory, { fileSystem: files });
    await storage.save(readyOf({ hardState: { term: 1, vote: 1, commit: 0 } }));
    const writesBefore = counts.writev;
    const entries = splitInTwo(entriesOf(1, new Array(1000).fill(1), 'verbatim', 16), 400);
    await storage.save(readyOf({ hardState: { term: 1, vote: 1, commit: 0 }, entries }));
    expect(counts.writev - writesBefore).toBe(1);
    await storage.close();
    const file = fs.readFileSync(`${directory}/${segmentFiles(directory)[0]}`);
    const joined = Buffer.concat(entries.slices);
    expect(file.indexOf(joined)).toBeGreaterThan(0);
  });

  it('splits a run longer than recordBytesMax into several records that load back whole', async () => {
    let storage = await WalStorage.open(directory, { recordBytesMax: 4096 });
    const entries = splitInTwo(entriesOf(1, new Array(300).fill(2), 'split', 100), 150);
    await storage.save(readyOf({ hardState: { term: 2, vote: 1, commit: 0 }, entries }));
    storage = await reopen(storage, { recordBytesMax: 4096 });
    const state = describeState(await storage.load()) as { entries: string[] };
    expect(state.entries).toHaveLength(300);
    expect(state.entries[299]?.startsWith('300:2:')).toBe(true);
    await storage.close();
  });

  it('refuses an entry larger than a record with code record-too-large and stays usable', async () => {
    const storage = await WalStorage.open(directory, { recordBytesMax: 1024 });
    await expect(storage.save(readyOf({ hardState: { term: 1, vote: 0, commit: 0 }, entries: entriesOf(1, [1], 'big', 2000) }))).rejects.toMatchObject({
      code: 'record-too-large',
    });
    await storage.save(readyOf({ hardState: { term: 1, vote: 0, commit: 0 }, entries: entriesOf(1, [1]) }));
    expect(((describeState(await storage.load()) as { entries: string[] }).entries)).toHaveLength(1);
    await storage.close();
  });

  it('load() after saves reads the directory again and sees them', async () => {
    const storage = await WalStorage.open(directory);
    expect(await storage.load()).toBeNull();
    await storage.save(readyOf({ hardState: { term: 1, vote: 1, commit: 0 }, entries: entriesOf(1, [1]) }));
    expect((describeState(await storage.load()) as { entries: string[] }).entries).toEqual(['1:1:0:653a31']);
    await storage.close();
  });

  it('restarts the log after an installed snapshot and removes the segments it made obsolete', async () => {
    let storage = await WalStorage.open(directory, { segmentBytesMax: 4096 });
    for (let i = 0; i < 20; i++) await storage.save(readyOf({ hardState: { term: 1, vote: 1, commit: 0 }, entries: entriesOf(i * 10 + 1, new Array(10).fill(1), 'old', 30) }));
    expect(segmentFiles(directory).length).toBeGreaterThan(2);
    await storage.save(readyOf({ snapshot: snapshotOf(500, 4), hardState: { term: 4, vote: 0, commit: 500 }, entries: entriesOf(501, [4, 4]) }));
    expect(segmentFiles(directory)).toHaveLength(1);
    storage = await reopen(storage, { segmentBytesMax: 4096 });
    expect(describeState(await storage.load())).toEqual({
      hardState: { term: 4, vote: 0, commit: 500 },
      snapshot: { index: 500, term: 4, peers: [1, 2, 3], data: Buffer.from('state@500').toString('hex') },
      entries: ['501:4:0:653a353031', '502:4:0:653a353032'],
    });
    await storage.close();
  });

  it('stores entry frames byte for byte: the CRC of the loaded entries equals the CRC of the saved ones', async () => {
    let storage = await WalStorage.open(directory);
    const entries = entriesOf(1, new Array(500).fill(7), 'crc', 64);
    await storage.save(readyOf({ hardState: { term: 7, vote: 1, commit: 0 }, entries }));
    storage = await reopen(storage);
    const loaded = await storage.load();
    const slices = loaded?.entries?.slices ?? [];
    expect(crc32c(Buffer.concat(slices))).toBe(crc32c(entries.slices[0] as Uint8Array));
    await storage.close();
  });
});

describe('WalStorage guards', () => {
  it('refuses a second open of the same directory with code storage-locked', async () => {
    const storage = await WalStorage.open(directory);
    await expect(WalStorage.open(directory)).rejects.toMatchObject({ code: 'storage-locked' });
    await storage.close();
    const again = await WalStorage.open(directory);
    await again.close();
  });

  it('takes over the LOCK of a dead process', async () => {
    fs.writeFileSync(`${directory}/LOCK`, '2147483646\n');
    const storage = await WalStorage.open(directory);
    expect(fs.readFileSync(`${directory}/LOCK`, 'utf8')).toBe(`${process.pid}\n`);
    await storage.close();
  });

  it('refuses bad options, naming the field', async () => {
    await expect(WalStorage.open(directory, { segmentBytesMax: 10 })).rejects.toThrow(/segmentBytesMax/);
    await expect(WalStorage.open(directory, { fsyncPolicy: 'sometimes' as never })).rejects.toBeInstanceOf(StorageOptionsError);
    await expect(WalStorage.open(directory, { repair: 'yes' as never })).rejects.toMatchObject({ code: 'invalid-storage-options', field: 'repair' });
  });

  it('refuses work after close with code storage-closed', async () => {
    const storage = await WalStorage.open(directory);
    await storage.close();
    await expect(storage.save(readyOf({ hardState: { term: 1, vote: 0, commit: 0 } }))).rejects.toMatchObject({ code: 'storage-closed' });
  });

  it('asserts that entries follow the stored log (a gap is a driver bug)', async () => {
    const storage = await WalStorage.open(directory);
    await storage.save(readyOf({ hardState: { term: 1, vote: 0, commit: 0 }, entries: entriesOf(1, [1]) }));
    await expect(storage.save(readyOf({ entries: entriesOf(3, [1]) }))).rejects.toMatchObject({ code: 'assertion-failed' });
    await storage.close();
  });
});
