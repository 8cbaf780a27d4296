/**
 * Proves WAL recovery's handling of damage. A torn tail (a record cut short, garbage or zeros after the
 * last complete save, a CRC mismatch in the very last record) is truncated with a warning and the node
 * starts from the last complete save; a save is atomic (a cut in its middle loses all of it, hard state
 * included). Damage anywhere else (a CRC mismatch or impossible length before the tail, damage in an
 * earlier segment, a missing segment) refuses to start with a StorageCorruptionError naming the file
 * and byte offset; `repair: 'truncate'` then recovers the prefix, keeping the newest intact hard state
 * from the discarded part so no term or vote is forgotten. An interrupted snapshot install (snapshot
 * file durable, log not yet restarted) resolves per §7 and stays resolved after more saves.
 */
import * as fs from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { StorageCorruptionError, WalStorage, nodeFileSystem } from '../src/index.js';
import { writeSnapshotFile } from '../src/snapshot-file.js';
import { describeState, entriesOf, readyOf, recordingLogger, removeDirectory, segmentFiles, snapshotOf, temporaryDirectory } from './helpers.js';

let directory = '';
beforeEach(() => {
  directory = temporaryDirectory();
});
afterEach(() => {
  removeDirectory(directory);
});

/** Saves three Readys (terms 1, 2, 3), recording the segment size after each; returns the states after each. */
async function threeSaves(options: Parameters<typeof WalStorage.open>[1] = {}): Promise<{ sizes: number[]; states: unknown[]; file: string }> {
  const storage = await WalStorage.open(directory, { logger: recordingLogger(), ...options });
  const sizes: number[] = [];
  const states: unknown[] = [];
  const saves = [
    readyOf({ hardState: { term: 1, vote: 1, commit: 0 }, entries: entriesOf(1, [1, 1, 1]) }),
    readyOf({ hardState: { term: 2, vote: 2, commit: 3 }, entries: entriesOf(4, [2, 2, 2]) }),
    readyOf({ hardState: { term: 3, vote: 3, commit: 6 }, entries: entriesOf(7, [3, 3, 3]) }),
  ];
  const [name] = segmentFiles(directory);
  for (const ready of saves) {
    await storage.save(ready);
    const file = `${directory}/${segmentFiles(directory)[0] ?? name}`;
    sizes.push(fs.statSync(file).size);
    states.push(describeState(await storage.load()));
  }
  await storage.close();
  return { sizes, states, file: `${directory}/${segmentFiles(directory)[0]}` };
}

async function openAndLoad(options: Parameters<typeof WalStorage.open>[1] = {}): Promise<{ state: unknown; warnings: { message: string; details: object }[] }> {
  const logger = recordingLogger();
  const storage = await WalStorage.open(directory, { ...options, logger });
  const state = describeState(await storage.load());
  await storage.close();
  return { state, warnings: logger.warnings };
}

describe('torn tail', () => {
  it('truncates a record cut short at the end, with a warning, and loads the saves before it', async () => {
    const { sizes, states, file } = await threeSaves();
    fs.truncateSync(file, (sizes[2] as number) - 7);
    const { state, warnings } = await openAndLoad();
    expect(state).toEqual(states[1]);
    expect(fs.statSync(file).size).toBe(sizes[1]);
    expect(warnings.map((warning) => warning.message)).toEqual([expect.stringMatching(/torn write at the end of the log/)]);
    expect(warnings[0]?.details).toMatchObject({ file, truncatedTo: sizes[1] });
  });

  it('loses a whole save, hard state included, when its write was cut in the middle (a save is atomic)', async () => {
    const { sizes, states, file } = await threeSaves();
    // Cut right after the third save's hard state record: that record is intact, its entries are not.
    fs.truncateSync(file, (sizes[1] as number) + 33 + 10);
    const { state } = await openAndLoad();
    expect(state).toEqual(states[1]);
    expect((state as { hardState: { term: number } }).hardState.term).toBe(2);
  });

  it('truncates garbage appended after the last save', async () => {
    const { sizes, states, file } = await threeSaves();
    fs.appendFileSync(file, Buffer.alloc(100, 0xab));
    const { state, warnings } = await openAndLoad();
    expect(state).toEqual(states[2]);
    expect(fs.statSync(file).size).toBe(sizes[2]);
    expect(warnings).toHaveLength(1);
  });

  it('truncates zeros after the last save (a file extended but never written)', async () => {
    const { sizes, states, file } = await threeSaves();
    fs.appendFileSync(file, Buffer.alloc(4096));
    const { state } = await openAndLoad();
    expect(state).toEqual(states[2]);
    expect(fs.statSync(file).size).toBe(sizes[2]);
  });

  it('treats a CRC mismatch in the very last record as a torn tail', async () => {
    const { sizes, states, file } = await threeSaves();
    const bytes = fs.readFileSync(file);
    bytes[(sizes[2] as number) - 2] ^= 0xff;
    fs.writeFileSync(file, bytes);
    const { state, warnings } = await openAndLoad();
    expect(state).toEqual(states[1]);
    expect(warnings[0]?.details).toMatchObject({ reason: expect.stringMatching(/crc32c mismatch/) });
  });
});

describe('corruption before the tail', () => {
  it('refuses to start on a CRC mismatch in the middle, naming the file and the record offset', async () => {
    const { sizes, file } = await threeSaves();
    const bytes = fs.readFileSync(file);
    // The second save's batch starts at sizes[0]: its hard state record (33 bytes), then its entries record.
    const entriesRecord = (sizes[0] as number) + 33;
    bytes[entriesRecord + 25] ^= 0x01;
    fs.writeFileSync(file, bytes);
    const error = await WalStorage.open(directory, { logger: recordingLogger() }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(StorageCorruptionError);
    expect(error).toMatchObject({ code: 'storage-corrupt', file, offset: entriesRecord, reason: expect.stringMatching(/crc32c mismatch/) });
    expect((error as Error).message).toContain(`${file} at byte ${entriesRecord}`);
    expect((error as Error).message).toContain("repair: 'truncate'");
    // Nothing was changed by the refusal.
    expect(fs.statSync(file).size).toBe(sizes[2]);
  });

  it('refuses to start on an impossible record length in the middle', async () => {
    const { sizes, file } = await threeSaves();
    const bytes = fs.readFileSync(file);
    bytes.writeUInt32LE(0xfffffff0, sizes[0] as number);
    fs.writeFileSync(file, bytes);
    await expect(WalStorage.open(directory, { logger: recordingLogger() })).rejects.toMatchObject({ code: 'storage-corrupt', offset: sizes[0] });
  });

  it("repair: 'truncate' recovers the prefix before the damage and keeps the newest intact hard state", async () => {
    const { sizes, states, file } = await threeSaves();
    const bytes = fs.readFileSync(file);
    bytes[(sizes[0] as number) + 33 + 25] ^= 0x01;
    fs.writeFileSync(file, bytes);
    const { state, warnings } = await openAndLoad({ repair: 'truncate' });
    const prefix = states[0] as { entries: string[] };
    // The log is the first save's; the hard state is the third save's (term 3, vote 3), its commit
    // lowered to the last entry kept.
    expect(state).toEqual({ ...prefix, hardState: { term: 3, vote: 3, commit: 3 } });
    expect(warnings.map((warning) => warning.message)).toContain('repair: discarded the log from the damaged record on; the node catches up from the leader');
    // The repaired directory opens cleanly without repair and keeps taking saves.
    const storage = await WalStorage.open(directory, { logger: recordingLogger() });
    expect(describeState(await storage.load())).toEqual(state);
    await storage.save(readyOf({ hardState: { term: 4, vote: 1, commit: 3 }, entries: entriesOf(4, [4]) }));
    await storage.close();
    expect(((await openAndLoad()).state as { entries: string[] }).entries).toHaveLength(4);
  });

  it('refuses damage in an earlier segment even at its very end', async () => {
    const storage = await WalStorage.open(directory, { segmentBytesMax: 4096, logger: recordingLogger() });
    for (let i = 0; i < 20; i++) await storage.save(readyOf({ hardState: { term: 1, vote: 1, commit: 0 }, entries: entriesOf(i * 10 + 1, new Array(10).fill(1), 'x', 30) }));
    await storage.close();
    const first = `${directory}/${segmentFiles(directory)[0]}`;
    fs.truncateSync(first, fs.statSync(first).size - 3);
    await expect(WalStorage.open(directory, { segmentBytesMax: 4096, logger: recordingLogger() })).rejects.toMatchObject({ code: 'storage-corrupt', file: first });
  });

  it('refuses a missing segment, naming the one after the gap; repair drops the segments after it', async () => {
    const storage = await WalStorage.open(directory, { segmentBytesMax: 4096, logger: recordingLogger() });
    for (let i = 0; i < 40; i++) await storage.save(readyOf({ hardState: { term: 1, vote: 1, commit: 0 }, entries: entriesOf(i * 10 + 1, new Array(10).fill(1), 'x', 30) }));
    await storage.close();
    const names = segmentFiles(directory);
    expect(names.length).toBeGreaterThan(3);
    fs.unlinkSync(`${directory}/${names[1]}`);
    await expect(WalStorage.open(directory, { logger: recordingLogger() })).rejects.toMatchObject({
      code: 'storage-corrupt',
      file: `${directory}/${names[2]}`,
      reason: expect.stringMatching(/segment 2 is missing/),
    });
    const { state } = await openAndLoad({ repair: 'truncate' });
    expect(segmentFiles(directory)).toEqual([names[0]]);
    expect((state as { entries: string[] }).entries.length).toBeGreaterThan(0);
  });
});

describe('interrupted snapshot install', () => {
  it('discards a log that conflicts with a newer snapshot file (§7), raises the term, and stays consistent after more saves', async () => {
    let storage = await WalStorage.open(directory, { logger: recordingLogger() });
    await storage.save(readyOf({ hardState: { term: 1, vote: 1, commit: 2 }, entries: entriesOf(1, [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]) }));
    await storage.close();
    // The crash came after the installed snapshot's file was durable and before its WAL batch.
    await writeSnapshotFile(nodeFileSystem, directory, snapshotOf(8, 2), true);
    const first = await openAndLoad();
    expect(first.state).toEqual({
      hardState: { term: 2, vote: 0, commit: 2 },
      snapshot: { index: 8, term: 2, peers: [1, 2, 3], data: Buffer.from('state@8').toString('hex') },
      entries: [],
    });
    expect(first.warnings.map((warning) => warning.message)).toContain('discarded a log that conflicts with the snapshot (an install interrupted by a crash)');
    storage = await WalStorage.open(directory, { logger: recordingLogger() });
    await storage.save(readyOf({ hardState: { term: 2, vote: 0, commit: 8 }, entries: entriesOf(9, [2, 2]) }));
    await storage.close();
    const second = await openAndLoad();
    expect((second.state as { entries: string[] }).entries).toEqual(['9:2:0:653a39', '10:2:0:653a3130']);
    expect(second.warnings).toEqual([]);
  });

  it('keeps the log after a snapshot whose last entry it holds with the same term', async () => {
    const storage = await WalStorage.open(directory, { logger: recordingLogger() });
    await storage.save(readyOf({ hardState: { term: 1, vote: 1, commit: 5 }, entries: entriesOf(1, [1, 1, 1, 1, 1, 1]) }));
    await storage.close();
    await writeSnapshotFile(nodeFileSystem, directory, snapshotOf(4, 1), true);
    const { state, warnings } = await openAndLoad();
    expect((state as { entries: string[] }).entries).toEqual(['5:1:0:653a35', '6:1:0:653a36']);
    expect(warnings).toEqual([]);
  });
});
