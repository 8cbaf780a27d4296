/**
 * Errors of @raftlab/kv that cross package boundaries. Expected outcomes of commands (a refused
 * write, a failed cas) are results, not errors; these are for bad configuration and bad input that
 * has no result to carry it (a corrupt snapshot, an ill-formed history).
 */

/**
 * Every @raftlab/kv error code: invalid-config (a bad machine configuration), malformed-snapshot,
 * invalid-history (an ill-formed history given to the checker), invalid-arguments (a bad `kv serve`
 * argument), cluster-failed (a local cluster's node would not start or answer).
 */
export type KvErrorCode = 'invalid-config' | 'malformed-snapshot' | 'invalid-history' | 'invalid-arguments' | 'cluster-failed';

/** Base class of @raftlab/kv's errors; switch on `code`, not on the message. */
export class KvError extends Error {
  constructor(
    readonly code: KvErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'KvError';
  }
}
