/**
 * Property test: WalStorage loads exactly what MemoryStorage (the simple reference) loads, after random
 * sequences of saves a Raft node could produce (appends, suffix replacement above the commit index,
 * commit-only saves, installed snapshots with or without entries after them, local snapshots), with
 * entries split across two slices, closes and reopens, simulated process crashes, tiny segments
 * (rotation, compaction removing segments) and tiny records (runs split into several records), under
 * every fsync policy. A failure prints the seed. The checker is proven by a planted replay bug (suffix
 * replacement ignored), which it must catch.
 */
import { describe, expect, it } from 'vitest';
import { type EntryRange, type HardState, Prng, encodeEntry, framesOf } from '@raftlab/core';
import { type FsyncPolicy, MemoryStorage, type ReadyToSave, type WalPlantedBugs, WalStorage, fsyncPolicies } from '../src/index.js';
import { describeState, recordingLogger, removeDirectory, splitInTwo, temporaryDirectory } from './helpers.js';

/** What a Raft node's persisted state looks like, tracked to generate valid saves. */
class Model {
  hardState: HardState = { term: 0, vote: 0, commit: 0 };
  snapshotIndex = 0;
  base = 0;
  baseTerm = 0;
  terms: number[] = []; // terms of base + 1 .. last

  get last(): number {
    return this.base + this.terms.length;
  }

  termAt(index: number): number {
    return index === this.base ? this.baseTerm : (this.terms[index - this.base - 1] as number);
  }
}

async function runProperty(seed: number, plantedBugs: Partial<WalPlantedBugs> = {}): Promise<string | null> {
  const prng = new Prng(seed);
  const directory = temporaryDirectory();
  const policy = fsyncPolicies[seed % fsyncPolicies.length] as FsyncPolicy;
  const options = { fsyncPolicy: policy, segmentBytesMax: 4096, recordBytesMax: 1024 + prng.nextInt(2) * 4096, logger: recordingLogger(), plantedBugs };
  let wal = await WalStorage.open(directory, options);
  const memory = new MemoryStorage();
  const model = new Model();
  let step = 0;
  const compare = async (what: string): Promise<string | null> => {
    const expected = JSON.stringify(describeState(await memory.load()));
    const actual = JSON.stringify(describeState(await wal.load()));
    return expected === actual ? null : `seed ${seed} (policy ${policy}) step ${step} after ${what}:\n  memory ${expected}\n  wal    ${actual}`;
  };
  let savedHardState: HardState = model.hardState;
  const save = async (ready: ReadyToSave): Promise<void> => {
    // Like the core: a Ready carries the hard state only when it changed.
    const changed = ready.hardState !== null && JSON.stringify(ready.hardState) !== JSON.stringify(savedHardState);
    const sent = { ...ready, hardState: changed ? ready.hardState : null };
    if (ready.hardState !== null) savedHardState = ready.hardState;
    await memory.save(sent);
    await wal.save(sent);
  };
  const entries = (firstIndex: number, count: number): EntryRange => {
    let term = Math.max(model.termAt(firstIndex - 1), model.hardState.term - prng.nextInt(2));
    term = Math.min(term, model.hardState.term);
    const frames: Uint8Array[] = [];
    for (let i = 0; i < count; i++) {
      const data = new Uint8Array(prng.nextInt(100));
      for (let b = 0; b < data.length; b++) data[b] = (seed + step + i + b) & 0xff;
      frames.push(encodeEntry(term, prng.nextInt(8) === 0 ? 'empty' : 'normal', data));
    }
    model.terms.length = firstIndex - 1 - model.base;
    for (let i = 0; i < count; i++) model.terms.push(term);
    const range: EntryRange = { ...framesOf(frames), firstIndex };
    return count > 1 && prng.nextInt(3) === 0 ? splitInTwo(range, 1 + prng.nextInt(count - 1)) : range;
  };
  try {
    for (step = 0; step < 70; step++) {
      const choice = prng.nextInt(20);
      if (choice < 10) {
        // Append (maybe replacing a suffix above the commit index), maybe with a new term or vote.
        const hardState = prng.nextInt(3) === 0 ? { term: model.hardState.term + 1, vote: 1 + prng.nextInt(3), commit: model.hardState.commit } : null;
        if (hardState !== null) model.hardState = hardState;
        if (model.hardState.term === 0) model.hardState = { term: 1, vote: 1, commit: 0 };
        const low = Math.max(model.hardState.commit, model.base) + 1;
        const firstIndex = low + prng.nextInt(model.last + 2 - low);
        const run = entries(firstIndex, 1 + prng.nextInt(25));
        await save({ hardState: model.hardState, entries: run, snapshot: null, mustSync: true });
      } else if (choice < 13) {
        // Commit-only: mustSync false.
        if (model.last <= model.hardState.commit) continue;
        const commit = prng.nextInt(2) === 0 ? model.last : model.hardState.commit + 1 + prng.nextInt(model.last - model.hardState.commit);
        model.hardState = { ...model.hardState, commit };
        await save({ hardState: model.hardState, entries: { count: 0, slices: [], byteLength: 0, firstIndex: model.last + 1 }, snapshot: null, mustSync: false });
      } else if (choice < 15) {
        // A local snapshot at a committed index.
        if (model.hardState.commit <= model.snapshotIndex) continue;
        const index = prng.nextInt(2) === 0 ? model.hardState.commit : model.snapshotIndex + 1 + prng.nextInt(model.hardState.commit - model.snapshotIndex);
        const snapshot = { index, term: model.termAt(index), peers: [1, 2, 3], data: new Uint8Array([seed & 0xff, step & 0xff, index & 0xff]) };
        await memory.saveSnapshot(snapshot);
        await wal.saveSnapshot(snapshot);
        model.baseTerm = snapshot.term;
        model.terms = model.terms.slice(index - model.base);
        model.base = index;
        model.snapshotIndex = index;
      } else if (choice < 16) {
        // A snapshot installed from a leader (§7), maybe followed by entries in the same Ready.
        const index = model.hardState.commit + 1 + prng.nextInt(40);
        const term = Math.max(model.hardState.term, 1) + prng.nextInt(2);
        model.hardState = { term, vote: prng.nextInt(4), commit: index };
        model.snapshotIndex = index;
        model.base = index;
        model.baseTerm = term;
        model.terms = [];
        const snapshot = { index, term, peers: [1, 2, 3], data: new Uint8Array([step & 0xff]) };
        const run = prng.nextInt(2) === 0 ? entries(index + 1, 1 + prng.nextInt(5)) : { count: 0, slices: [], byteLength: 0, firstIndex: index + 1 };
        await save({ hardState: model.hardState, entries: run, snapshot, mustSync: true });
      } else if (choice < 18) {
        await wal.close();
        wal = await WalStorage.open(directory, options);
        const difference = await compare('reopen');
        if (difference !== null) return difference;
      } else {
        await wal.simulateCrash();
        wal = await WalStorage.open(directory, options);
        const difference = await compare('crash and reopen');
        if (difference !== null) return difference;
      }
      if (step % 10 === 9) {
        const difference = await compare('saves');
        if (difference !== null) return difference;
      }
    }
    await wal.close();
    wal = await WalStorage.open(directory, options);
    return await compare('final reopen');
  } finally {
    await wal.close();
    removeDirectory(directory);
  }
}

/** Seeds per run: RAFTLAB_SOAK=1 runs many more. */
const seedCount = process.env.RAFTLAB_SOAK === '1' ? 500 : 24;

describe('WalStorage against MemoryStorage', () => {
  it('loads the same state after random save, snapshot, reopen and crash sequences', async () => {
    for (let seed = 1; seed <= seedCount; seed++) {
      const difference = await runProperty(seed);
      expect(difference, difference ?? '').toBeNull();
    }
  });

  it('catches a planted replay bug (suffix replacement ignored)', async () => {
    const differences: string[] = [];
    for (let seed = 1; seed <= 24 && differences.length === 0; seed++) {
      const difference = await runProperty(seed, { ignoreSuffixReplacement: true });
      if (difference !== null) differences.push(difference);
    }
    expect(differences).toHaveLength(1);
  });
});
