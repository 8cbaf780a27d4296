/**
 * Storage errors. They cross package boundaries (the runtime and the CLI switch on them), so each is
 * a class with a stable `code`. Programmer errors (a save whose entries leave a gap) are failed
 * assertions from @raftlab/core instead.
 */

/** Every storage error code. */
export type StorageErrorCode =
  | 'storage-corrupt'
  | 'storage-failed'
  | 'storage-closed'
  | 'storage-locked'
  | 'record-too-large'
  | 'invalid-storage-options';

/** Base class of the storage errors. */
export class StorageError extends Error {
  constructor(
    readonly code: StorageErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'StorageError';
  }
}

/** How to get past a StorageCorruptionError; quoted in its message. */
export const repairHint =
  "to repair, open with { repair: 'truncate' }: everything from the damaged record on is discarded and " +
  'the node catches up from the leader (safe only while a majority of the cluster still holds the ' +
  'committed entries; see the storage README, "Repair")';

/**
 * Persisted data failed validation somewhere other than a torn tail: a CRC mismatch or malformed
 * record before the end of the log, a missing segment, a damaged snapshot. The node refuses to start
 * rather than run on a log it cannot trust. `file` and `offset` say where.
 */
export class StorageCorruptionError extends StorageError {
  constructor(
    /** Path of the damaged file. */
    readonly file: string,
    /** Byte offset of the damaged record in `file`. */
    readonly offset: number,
    /** What is wrong there. */
    readonly reason: string,
  ) {
    super('storage-corrupt', `storage corrupt: ${file} at byte ${offset}: ${reason}; ${repairHint}`);
    this.name = 'StorageCorruptionError';
  }
}

/**
 * A write, fsync or file operation failed. The storage stops accepting work: after a failed fsync the
 * kernel may have dropped the dirty pages, so retrying could report success for data that is gone.
 * Restart the node; recovery reads what actually reached the disk.
 */
export class StorageFailedError extends StorageError {
  constructor(message: string, cause: unknown) {
    super('storage-failed', `storage failed: ${message}`, { cause });
    this.name = 'StorageFailedError';
  }
}

/** An option is missing, of the wrong type or out of range; the message names it. */
export class StorageOptionsError extends StorageError {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super('invalid-storage-options', `invalid storage options: ${field}: ${message}`);
    this.name = 'StorageOptionsError';
  }
}
