/**
 * Assertions for programmer errors. A failed assertion is a bug in raftlab or in the embedding code:
 * it throws an AssertionError carrying the values involved, and must never be swallowed.
 * Expected outcomes (a proposal refused, a read with no leader) are returned values instead.
 */

/** Thrown when an invariant or precondition does not hold. */
export class AssertionError extends Error {
  /** Stable code for cross-package error handling. */
  readonly code = 'assertion-failed' as const;
  constructor(message: string) {
    super(message);
    this.name = 'AssertionError';
  }
}

/** Throws an AssertionError with `message` unless `condition` holds. */
export function assert(condition: boolean, message: string | (() => string)): asserts condition {
  if (!condition) throw new AssertionError(typeof message === 'string' ? message : message());
}

/** Marks a switch as exhaustive over a union: reaching it is a bug. */
export function unreachable(value: never, what: string): never {
  throw new AssertionError(`unreachable: unexpected ${what} ${JSON.stringify(value)}`);
}
