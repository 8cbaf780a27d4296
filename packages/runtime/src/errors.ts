/**
 * Typed errors of the runtime's promises. Callers switch on `code`, which is stable.
 */
import type { NodeId } from '@raftlab/core';

/**
 * Why a proposal, read or transfer failed:
 *  - not-leader: this node is not the leader; `leaderId`/`leaderAddress` say where to go (0/undefined: unknown);
 *  - timeout: no outcome within the deadline (the command may still commit later: retry with the same session);
 *  - busy: the leader's uncommitted bytes or pending queue are at their bound; retry later;
 *  - too-large: the command exceeds the entry size bound;
 *  - dropped: leadership changed and another leader's entry took the command's place: it will never commit;
 *  - stopped: the node is stopping or stopped.
 */
export type RuntimeErrorCode = 'not-leader' | 'timeout' | 'busy' | 'too-large' | 'dropped' | 'stopped';

/** A failed runtime request. */
export class RuntimeError extends Error {
  constructor(
    readonly code: RuntimeErrorCode,
    message: string,
    /** The leader this node knows of (0: none), for not-leader. */
    readonly leaderId: NodeId = 0,
    /** The leader's address, when the runtime was given addresses. */
    readonly leaderAddress: string | undefined = undefined,
  ) {
    super(message);
    this.name = 'RuntimeError';
  }
}
