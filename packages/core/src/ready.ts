/**
 * Ready: everything a RaftNode asks its driver to do, as data. Each field says whether it is
 * handled BEFORE persistence (it is what gets persisted) or AFTER it (it depends on what was
 * persisted). The driver's order per cycle:
 *
 *   1. persist snapshot, hardState and entries (fsync per policy)     BEFORE
 *   2. send messages                                                   AFTER 1
 *   3. apply committedEntries to the state machine                     AFTER 1
 *   4. serve readStates once applied through their index               AFTER 3
 *   5. call advance(ready)
 *
 * Every view in a Ready (entries, committedEntries, message entries) stays valid until advance();
 * the node accepts no input in between. Whoever keeps a view longer copies it.
 */
import type { HardState } from './config.js';
import type { EntryRange } from './entry.js';
import type { NodeId, RemoteMessage, Snapshot } from './message.js';

/** A node's role (§5.1, plus the pre-candidate of thesis §9.6). */
export type Role = 'follower' | 'preCandidate' | 'candidate' | 'leader';

/** Volatile facts worth reporting when they change. */
export interface SoftState {
  readonly role: Role;
  readonly leaderId: NodeId;
}

/** A ReadIndex read released by the leader: serve it once applied through `index` (thesis §6.4). */
export interface ReadState {
  readonly index: number;
  readonly context: string;
}

/** The work a RaftNode hands its driver in one cycle. */
export interface Ready {
  /** BEFORE sending: persist when not null (term, vote and commit changed). */
  readonly hardState: HardState | null;
  /** BEFORE sending: append to stable storage, replacing anything stored at or after entries.firstIndex. */
  readonly entries: EntryRange;
  /** BEFORE sending: persist, and restore the state machine from it, when not null. */
  readonly snapshot: Snapshot | null;
  /** True when hardState's term or vote changed or entries is not empty: persistence must fsync. */
  readonly mustSync: boolean;
  /** AFTER persistence: send. */
  readonly messages: readonly RemoteMessage[];
  /** AFTER persistence: apply in order (after the snapshot, if any). */
  readonly committedEntries: EntryRange;
  /** AFTER applying committedEntries: serve these reads. */
  readonly readStates: readonly ReadState[];
  /** Any time: role and leader, when they changed. */
  readonly softState: SoftState | null;
}

/** Result of `propose`: appended at the leader, forwarded to it, or refused with a reason. */
export type ProposeResult =
  | { readonly ok: true; readonly status: 'appended'; readonly index: number; readonly term: number }
  | { readonly ok: true; readonly status: 'forwarded'; readonly leaderId: NodeId }
  | { readonly ok: false; readonly reason: ProposeRefusal; readonly leaderId?: NodeId };

/**
 * Why a proposal was refused:
 *  - no-leader: no leader is known (an election is under way);
 *  - not-leader: this node is a follower and forwarding is off (leaderId says where to go);
 *  - transferring: the leader is handing leadership over;
 *  - busy: uncommitted bytes, the log or the forward queue are at their bound;
 *  - too-large: the entry exceeds entryBytesMax.
 */
export type ProposeRefusal = 'no-leader' | 'not-leader' | 'transferring' | 'busy' | 'too-large';

/** Result of `readIndex` and `transferLeadership`. */
export type RequestResult =
  | { readonly ok: true }
  | { readonly ok: false; readonly reason: RequestRefusal; readonly leaderId?: NodeId };

/** Why a read or transfer request was refused. */
export type RequestRefusal = 'no-leader' | 'not-leader' | 'busy' | 'unknown-node';
