/**
 * MemoryStorage: the Storage contract in process memory, for tests, the simulator and benchmarks that
 * leave the disk out. It survives a RaftNode "crash" (keep the object, build a new node from load())
 * but not a process exit, and it has no fsync: stats() says `durable: false`.
 *
 * Ready views are only valid until advance(), so save() copies each Ready's entries into one buffer
 * (one copy per save, not per entry) and keeps it as an immutable run; suffix replacement and
 * compaction only take views of those buffers, never write into them. load() therefore hands out views
 * that stay valid across later saves.
 */
import { type HardState, type PersistedState, type Snapshot, assert, copyFrames } from '@raftlab/core';
import { EntryLog, runOf } from './entry-log.js';
import { StorageError } from './errors.js';
import { applySnapshotToLog, persistedStateOf } from './persisted.js';
import type { ReadyToSave, Storage, StorageStats } from './storage.js';

/** Storage in process memory (not durable). */
export class MemoryStorage implements Storage {
  private hardState: HardState | null = null;
  private snapshot: Snapshot | null = null;
  private readonly log = new EntryLog();
  private closed = false;
  private saveCount = 0;
  private entriesWritten = 0;
  private entryBytesWritten = 0;
  private snapshotCount = 0;
  private lastIndexWritten = 0;

  /** Loads what was saved; null when nothing ever was. */
  async load(): Promise<PersistedState | null> {
    this.assertOpen('load');
    if (this.hardState === null && this.snapshot === null && this.log.count === 0) return null;
    return persistedStateOf(this.hardState, this.snapshot, this.log, null);
  }

  /** Stores the snapshot, hard state and entries of a Ready (copies; resolves at once). */
  async save(ready: ReadyToSave): Promise<void> {
    this.assertOpen('save');
    const { snapshot, hardState, entries } = ready;
    if (snapshot === null && hardState === null && entries.count === 0) return;
    if (snapshot !== null) {
      assert(
        snapshot.index > (this.snapshot?.index ?? 0),
        () => `save: installed snapshot index ${snapshot.index} not above the stored snapshot's ${this.snapshot?.index ?? 0}`,
      );
      this.snapshot = copySnapshot(snapshot);
      this.snapshotCount += 1;
      this.log.resetTo(snapshot.index, snapshot.term);
    }
    if (hardState !== null) this.hardState = { term: hardState.term, vote: hardState.vote, commit: hardState.commit };
    if (entries.count > 0) {
      const copy = copyFrames(entries);
      const run = runOf(entries.firstIndex, copy.slices[0] as Uint8Array);
      assert(run.count === entries.count, () => `save: ${entries.count} entries declared, ${run.count} framed`);
      const problem = this.log.checkAppend(run);
      assert(problem === null, () => `save: ${problem}`);
      this.log.append(run);
      this.entriesWritten += entries.count;
      this.entryBytesWritten += entries.byteLength;
    }
    this.lastIndexWritten = this.log.lastIndex;
    this.saveCount += 1;
  }

  /** Stores a local snapshot and releases the entries it covers. */
  async saveSnapshot(snapshot: Snapshot): Promise<void> {
    this.assertOpen('saveSnapshot');
    if (snapshot.index <= (this.snapshot?.index ?? 0)) return;
    this.snapshot = copySnapshot(snapshot);
    this.snapshotCount += 1;
    applySnapshotToLog(this.log, this.snapshot);
  }

  /** Counters; memory storage is never durable. */
  stats(): StorageStats {
    const position = { segment: '', offset: this.entryBytesWritten };
    const snapshotIndex = this.snapshot?.index ?? 0;
    return {
      kind: 'memory',
      fsyncPolicy: 'none',
      durable: false,
      saveCount: this.saveCount,
      entriesWritten: this.entriesWritten,
      entryBytesWritten: this.entryBytesWritten,
      bytesWritten: this.entryBytesWritten,
      bytesSynced: this.entryBytesWritten,
      lastIndexWritten: this.lastIndexWritten,
      lastIndexSynced: this.lastIndexWritten,
      writtenPosition: position,
      syncedPosition: position,
      syncCount: 0,
      directorySyncCount: 0,
      lastSyncMs: 0,
      syncMsTotal: 0,
      segmentCount: 0,
      segmentBytes: 0,
      snapshotCount: this.snapshotCount,
      snapshotIndex,
      snapshotBytes: this.snapshot?.data.length ?? 0,
      firstIndex: this.log.firstIndex,
      lastIndex: this.log.lastIndex,
      entriesSinceSnapshot: this.log.lastIndex - snapshotIndex,
      bytesSinceSnapshot: this.log.byteLength,
    };
  }

  /** Refuses further work. (A simulated crash keeps the object and builds a new node from load() instead.) */
  async close(): Promise<void> {
    this.closed = true;
  }

  private assertOpen(what: string): void {
    if (this.closed) throw new StorageError('storage-closed', `${what}() on a closed MemoryStorage`);
  }
}

function copySnapshot(snapshot: Snapshot): Snapshot {
  return { index: snapshot.index, term: snapshot.term, peers: [...snapshot.peers], data: snapshot.data.slice() };
}
