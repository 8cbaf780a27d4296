/**
 * Errors that cross package boundaries are classes with a stable `code`, so callers can switch on
 * the code instead of parsing messages.
 */

/** Every raftlab error code. */
export type RaftErrorCode = 'invalid-config' | 'invalid-state' | 'malformed-entry';

/** Base class of raftlab's core errors. */
export class RaftError extends Error {
  constructor(
    readonly code: RaftErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'RaftError';
  }
}

/** A configuration value is missing, of the wrong type, or out of range; the message names it. */
export class ConfigError extends RaftError {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super('invalid-config', `invalid raft config: ${field}: ${message}`);
    this.name = 'ConfigError';
  }
}
