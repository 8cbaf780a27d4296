/**
 * The Storage contract between a RaftNode's driver and stable storage (Raft §5, Figure 2: currentTerm,
 * votedFor and the log must be on stable storage before responding to RPCs).
 *
 * A driver's Ready cycle with a Storage:
 *
 *   const storage = await WalStorage.open(dir);              // or new MemoryStorage()
 *   const node = new RaftNode({ id, peers, restore: await storage.load() });
 *   ...
 *   const ready = node.ready();
 *   await storage.save(ready);                               // BEFORE: durable per the fsync policy
 *   send(ready.messages);                                    // AFTER: only now may they leave
 *   apply(ready.committedEntries);
 *   node.advance(ready);
 *   ...
 *   node.compact(appliedIndex, stateMachine.snapshot());     // when shouldCompact(...) says so
 *   await storage.saveSnapshot(node.latestSnapshot!);
 *
 * The entry views in a Ready are valid until advance(); save() finishes with them before it resolves
 * (WalStorage writes them verbatim, MemoryStorage copies them), so the driver must not call advance()
 * before save() resolves. That is also what the Ready contract demands.
 */
import type { PersistedState, Ready, Snapshot } from '@raftlab/core';

/** The part of a Ready that save() persists. */
export type ReadyToSave = Pick<Ready, 'hardState' | 'entries' | 'snapshot' | 'mustSync'>;

/** What a RaftNode's driver persists, per the Ready contract. */
export interface Storage {
  /**
   * Loads what was persisted: pass it as RaftConfig.restore (null for a fresh node). The entries are
   * views of storage-owned buffers: build the RaftNode (which copies them into its ring) before the
   * next save().
   */
  load(): Promise<PersistedState | null>;
  /**
   * Persists the BEFORE part of a Ready, in this order of effect: the snapshot (which discards the whole
   * stored log, §7), the hard state, then the entries, which replace anything stored at or after
   * entries.firstIndex. Resolves when durable per the fsync policy; only then may the caller send the
   * Ready's messages and call advance(). A save is atomic: after a crash either all of it or none of
   * it is loaded. The entries must be a RaftNode's (well-formed frames, as many as `count` says):
   * WalStorage writes them without walking them, to keep the CRC the only per-byte cost; recovery
   * validates every frame and refuses a log that does not parse.
   */
  save(ready: ReadyToSave): Promise<void>;
  /**
   * Stores a snapshot the local state machine took (RaftNode.compact) atomically, then releases what it
   * covers: entries through snapshot.index, older snapshots and log segments wholly covered by it.
   * Precondition: the snapshot's last entry is committed, so the stored entry at snapshot.index has
   * snapshot.term. A snapshot not newer than the stored one is ignored.
   */
  saveSnapshot(snapshot: Snapshot): Promise<void>;
  /** Counters and gauges: bytes written and synced, fsyncs, segments, latest fsync latency... */
  stats(): StorageStats;
  /** Makes everything written durable (unless the policy is `none`) and releases the files. */
  close(): Promise<void>;
}

/**
 * When a save() is durable:
 *  - `always`: every save() whose Ready has mustSync is followed by its own fdatasync before it
 *    resolves. Saves run strictly one after another (write, fsync, write, fsync...): one fsync per
 *    mustSync save, whatever the concurrency. The default, and the KV service's default.
 *  - `batch`: group commit. Writes still happen in call order and each mustSync save still resolves
 *    only after an fsync that began after its write completed, so the Ready contract holds exactly as
 *    with `always`. But fsyncs are shared: a save whose write completes while an fsync is in flight
 *    does not start its own; it waits for the next one, which starts when the in-flight one ends and
 *    covers every save written meanwhile. With one driver that awaits each save before the next (one
 *    RaftNode, one Ready at a time) this is the same fsync count as `always`; it pays off when several
 *    saves are outstanding at once (several Raft groups on one log, a pipelining driver), where it does
 *    fewer fsyncs than saves.
 *  - `none`: never fsyncs (segments, snapshots, directories). A save resolves once written to the
 *    kernel: a power loss may lose any of it. For benchmarks only; stats() reports `durable: false` so
 *    results can be marked.
 *
 * Under `always` and `batch`, a save without mustSync (only the commit index changed: volatile state
 * in Figure 2) is written but not synced; it becomes durable with the next fsync.
 */
export type FsyncPolicy = 'always' | 'batch' | 'none';

/** Every fsync policy, for validation and sweeps. */
export const fsyncPolicies: readonly FsyncPolicy[] = ['always', 'batch', 'none'];

/** Where the log bytes stand: a segment file and a byte offset in it. */
export interface LogPosition {
  /** Segment file name (no directory); empty when nothing has been written. */
  readonly segment: string;
  /** Byte offset in that segment. */
  readonly offset: number;
}

/** Storage counters (since open) and gauges (now). */
export interface StorageStats {
  /** Which implementation. */
  readonly kind: 'memory' | 'wal';
  /** The fsync policy (`none` for memory storage, which has no durability at all). */
  readonly fsyncPolicy: FsyncPolicy;
  /** False when a crash can lose acknowledged saves (memory storage, policy `none`): mark results. */
  readonly durable: boolean;
  /** save() calls that wrote something. */
  readonly saveCount: number;
  /** Entries written by save(). */
  readonly entriesWritten: number;
  /** Entry frame bytes written by save() (the payload, excluding record headers). */
  readonly entryBytesWritten: number;
  /** Log bytes written, record headers included (memory storage: entry bytes copied). */
  readonly bytesWritten: number;
  /** Of bytesWritten, the bytes known durable: a completed fsync covers them. */
  readonly bytesSynced: number;
  /** Last log index as of the latest save written (may be lower than before: suffix replacement). */
  readonly lastIndexWritten: number;
  /** Last log index as of the latest save known durable. */
  readonly lastIndexSynced: number;
  /** Where the written log ends. */
  readonly writtenPosition: LogPosition;
  /** Where the durable log ends: a crash that loses unsynced data leaves the log cut here. */
  readonly syncedPosition: LogPosition;
  /** fdatasync calls on log segments and snapshot files. */
  readonly syncCount: number;
  /** fsync calls on the directory (new segment, snapshot rename). */
  readonly directorySyncCount: number;
  /** Duration of the latest data fsync, in milliseconds (0 before the first). */
  readonly lastSyncMs: number;
  /** Sum of data fsync durations, in milliseconds. */
  readonly syncMsTotal: number;
  /** Log segment files on disk. */
  readonly segmentCount: number;
  /** Bytes of log segment files on disk. */
  readonly segmentBytes: number;
  /** Snapshots stored (saveSnapshot and installed ones). */
  readonly snapshotCount: number;
  /** Index of the stored snapshot (0 when none). */
  readonly snapshotIndex: number;
  /** Bytes of the stored snapshot's data. */
  readonly snapshotBytes: number;
  /** First stored entry index after the snapshot (lastIndex + 1 when there is none). */
  readonly firstIndex: number;
  /** Last stored entry index (the snapshot's index when no entry follows it). */
  readonly lastIndex: number;
  /** Stored entries after the snapshot: lastIndex - snapshotIndex. */
  readonly entriesSinceSnapshot: number;
  /**
   * Entry frame bytes stored after the snapshot. WalStorage estimates it after a suffix replacement
   * cut a save's run in the middle (proportionally to the entries kept): good for a compaction policy,
   * not an exact accounting.
   */
  readonly bytesSinceSnapshot: number;
}

/** A pino-compatible logger: storage only warns (torn tails truncated, leftovers removed, repairs). */
export interface StorageLogger {
  warn(details: object, message: string): void;
}

/** The default logger: warnings to stderr, so losing data is never silent. */
export const consoleLogger: StorageLogger = {
  warn(details, message) {
    console.warn(`[raftlab storage] ${message}`, details);
  },
};

/** How far the log has grown since the last snapshot (StorageStats has both fields). */
export interface CompactionProgress {
  readonly entriesSinceSnapshot: number;
  readonly bytesSinceSnapshot: number;
}

/** When to compact: either threshold reached triggers it. */
export interface CompactionPolicy {
  /** Compact once this many entries follow the snapshot. */
  readonly compactEntriesMin: number;
  /** Compact once this many entry bytes follow the snapshot. */
  readonly compactBytesMin: number;
}

/** A reasonable default: every 64 Ki entries or 64 MiB, whichever comes first. */
export const defaultCompactionPolicy: CompactionPolicy = Object.freeze({
  compactEntriesMin: 64 * 1024,
  compactBytesMin: 64 * 1024 * 1024,
});

/**
 * True when the log since the last snapshot has reached either bound of the policy (§7: each server
 * compacts independently once its log reaches a fixed size). The driver then takes a state machine
 * snapshot at its applied index, calls RaftNode.compact and Storage.saveSnapshot.
 */
export function shouldCompact(progress: CompactionProgress, policy: CompactionPolicy = defaultCompactionPolicy): boolean {
  return progress.entriesSinceSnapshot >= policy.compactEntriesMin || progress.bytesSinceSnapshot >= policy.compactBytesMin;
}
