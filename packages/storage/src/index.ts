/**
 * @raftlab/storage: where a RaftNode's persisted state lives. `MemoryStorage` (in process, for tests
 * and the simulator) and `WalStorage` (segmented write-ahead log with CRC32C records, fsync policies,
 * atomic snapshot files, torn-tail recovery and repair) implement one `Storage` contract.
 */
export { crc32c, crc32cUpdate } from './crc32c.js';
export { EntryLog, type EntryRun, type FrameScan, runOf, scanFrames } from './entry-log.js';
export {
  StorageCorruptionError,
  StorageError,
  type StorageErrorCode,
  StorageFailedError,
  StorageOptionsError,
  repairHint,
} from './errors.js';
export { type InlineIo, type StorageFileSystem, inlineFileSystem, nodeFileSystem } from './file-system.js';
export { MemoryStorage } from './memory.js';
export { applySnapshotToLog, initialHardState, persistedStateOf } from './persisted.js';
export { recordHeaderBytes, recordKind, type RecordKind } from './record.js';
export type { RepairMode, WalPlantedBugs } from './recovery.js';
export { parseSegmentFileName, segmentFileName } from './segment.js';
export { parseSnapshotFileName, snapshotFileName } from './snapshot-file.js';
export {
  type CompactionPolicy,
  type CompactionProgress,
  type FsyncPolicy,
  type LogPosition,
  type ReadyToSave,
  type Storage,
  type StorageLogger,
  type StorageStats,
  consoleLogger,
  defaultCompactionPolicy,
  fsyncPolicies,
  shouldCompact,
} from './storage.js';
export { type CrashOptions, WalStorage, type WalOptions, walDefaults } from './wal.js';
