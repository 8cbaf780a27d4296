/**
 * Safety checkers, run after every event. Each is incremental: the work per event is proportional
 * to what the event changed (entries persisted, entries applied, commit advanced), never to the
 * length of a log, so thousands of seeds fit in CI time.
 *
 * The idea behind log matching: every node's persisted log is summarized by a chain of hashes,
 * chain[i] = hash(frame i, seeded with chain[i - 1]), so chain[i] stands for the whole prefix 1..i,
 * entry bytes included. A global table maps (index, term) to the chain the first node to persist
 * that entry computed; any other node persisting the same (index, term) must arrive at the same
 * chain (§5.3 Log Matching: same index and term imply identical prefixes). The chain of the
 * highest committed index then stands for every committed entry at once, which makes Leader
 * Completeness (§5.4) a single comparison per new leader.
 *
 * Checked properties (§5.2, §5.3, §5.4, Figure 3):
 *  - election safety: at most one leader per term, ever; and at the source, no node ever persists
 *    two different votes in one term (§5.2: each server votes for at most one candidate per term);
 *  - leader append-only: a leader never overwrites or deletes entries of its log while in office;
 *  - log matching: as above;
 *  - leader completeness: an entry a node in term t knows committed is in the log of every leader
 *    of a term above t; and, checked on every commit and every log change, the invariant that
 *    makes it true (§5.4.3's proof): no node lacking the highest committed entry could win an
 *    election, i.e. a majority of nodes hold logs more up-to-date than its own (§5.4.1). A broken
 *    commit rule (Figure 8) shows here the moment it commits, before any later leader exists;
 *  - state machine safety: no two nodes apply different entries at one index, and the machines
 *    agree on the state after every index (snapshots included);
 *  - commit never decreases while a node is up, and a restart resumes at least from the last
 *    commit that was durable (a commit-only hard state needs no sync, so a crash may lose it);
 *    applied never decreases and moves one index at a time, except that a restart rewinds it to
 *    the snapshot and the entries after it are applied again, and again must match.
 *
 * "Persisted" means durable: the driver calls the hooks when a write is synced (or survives a
 * crash), never when it is merely written, so storage faults cannot hide behind the checker.
 */
import { type EntryRange, EntryReader, type NodeId, type RaftNode, type Snapshot } from '@raftlab/core';
import { hashBytes } from './hash.js';

/** The property a violation breaks. */
export type ViolationKind =
  | 'election-safety'
  | 'leader-append-only'
  | 'log-matching'
  | 'leader-completeness'
  | 'state-machine-safety'
  | 'commit-monotonic'
  | 'applied-sequence'
  | 'exactly-once'
  | 'malformed-entry'
  | 'core-assertion';

/** A broken safety property, with where in the run it was found. */
export class SafetyViolation extends Error {
  /** Stable code for cross-package error handling. */
  readonly code = 'safety-violation' as const;
  constructor(
    readonly kind: ViolationKind,
    message: string,
    readonly tick: number,
    readonly event: number,
  ) {
    super(`${kind}: ${message} (tick ${tick}, event ${event})`);
    this.name = 'SafetyViolation';
  }
}

/** Where the run is, for violation messages. */
export interface RunClock {
  readonly tick: number;
  readonly events: number;
}

/** What the checker tracks per node. */
interface NodeRecord {
  /** chain[i] for base <= i <= last (unknown below base: replaced by a snapshot). */
  readonly chain: number[];
  base: number;
  /** Last persisted index. */
  last: number;
  /** Term of the entry at `last` (the snapshot's term when the log is empty). */
  lastTerm: number;
  /** The last persisted term and vote (they survive crashes, like the disk). */
  votedTerm: number;
  vote: NodeId;
  /** Highest commit index seen since the node last started. */
  commitFloor: number;
  /** Highest commit index in a durable hard state. */
  durableCommit: number;
  /** Last index handed to the state machine. */
  applied: number;
  /** Term in which this node was last seen leader (0: not leader at the last event). */
  leaderTerm: number;
  /** Its last index when last seen leader. */
  leaderLast: number;
}

/** One (term, chain) pair persisted at an index, and the node that persisted it first. */
interface EntryRecord {
  readonly term: number;
  readonly chain: number;
  readonly node: NodeId;
}

export class SafetyChecker {
  private readonly records = new Map<NodeId, NodeRecord>();
  private readonly leaderOfTerm = new Map<number, NodeId>();
  /** index -> the (term, chain) pairs persisted there. */
  private readonly entriesAt: (EntryRecord[] | undefined)[] = [];
  /** index -> chain of the committed entry. */
  private readonly committedChain: number[] = [0];
  /** index -> hash of the frame applied there, and the node that applied it first. */
  private readonly appliedFrame: number[] = [];
  private readonly appliedBy: NodeId[] = [];
  /** index -> state machine value after applying it. */
  private readonly stateAfter: (bigint | undefined)[] = [0n];
  /** term -> highest index a node in that term knew committed. */
  private readonly commitAtTerm = new Map<number, number>();
  private readonly reader = new EntryReader();
  /** Highest index any node knew committed. */
  highestCommit = 0;

  private readonly majority: number;

  constructor(
    nodeIds: readonly NodeId[],
    private readonly clock: RunClock,
  ) {
    this.majority = Math.floor(nodeIds.length / 2) + 1;
    for (const id of nodeIds) {
      this.records.set(id, { chain: [0], base: 0, last: 0, lastTerm: 0, votedTerm: 0, vote: 0, commitFloor: 0, durableCommit: 0, applied: 0, leaderTerm: 0, leaderLast: 0 });
    }
  }

  private fail(kind: ViolationKind, message: string): never {
    throw new SafetyViolation(kind, message, this.clock.tick, this.clock.events);
  }

  private record(id: NodeId): NodeRecord {
    const record = this.records.get(id);
    if (record === undefined) this.fail('core-assertion', `unknown node ${id}`);
    return record;
  }

  /** Terms in which a leader was seen, ascending (for summaries and tests). */
  leaderTerms(): number[] {
    return [...this.leaderOfTerm.keys()].sort((a, b) => a - b);
  }

  /** The chain committed at `index`, if known. */
  committedChainAt(index: number): number | undefined {
    return this.committedChain[index];
  }

  // -------------------------------------------------------------------------------------------
  // Ready hooks, in the Ready contract's order: snapshot, entries, then applied entries.

  /** Ready.snapshot persisted and the machine restored from it; `value` is the restored machine's. */
  onSnapshotInstalled(id: NodeId, snapshot: Snapshot, value: bigint): void {
    const record = this.record(id);
    const { index, term } = snapshot;
    if (index < record.applied) this.fail('applied-sequence', `node ${id} installed snapshot ${index}/${term} below applied ${record.applied}`);
    const chain = this.chainOf(index, term);
    const committed = this.committedChain[index];
    if (committed !== undefined && chain !== undefined && committed !== chain) {
      this.fail('state-machine-safety', `node ${id} installed snapshot ${index}/${term} whose log differs from the committed one`);
    }
    this.checkStateAfter(id, index, value, 'snapshot');
    record.chain.length = index + 1;
    record.chain[index] = chain ?? committed ?? Number.NaN;
    record.base = index;
    record.last = index;
    record.lastTerm = term;
    record.applied = index;
    this.checkProtected(id, record);
  }

  /** Ready.hardState persisted by `id`: a vote, once cast in a term, never changes in that term. */
  onHardStatePersisted(id: NodeId, term: number, vote: NodeId, commit = 0): void {
    const record = this.record(id);
    if (commit > record.durableCommit) record.durableCommit = commit;
    if (term < record.votedTerm) this.fail('election-safety', `node ${id} persisted term ${term} below its persisted term ${record.votedTerm}`);
    if (term === record.votedTerm && record.vote !== 0 && vote !== record.vote) {
      const what = vote === 0 ? `forgot its vote for ${record.vote}` : `voted for ${record.vote} and then for ${vote}`;
      this.fail('election-safety', `node ${id} ${what} in term ${term} (§5.2: one vote per term, persisted)`);
    }
    record.votedTerm = term;
    record.vote = vote;
  }

  /** Ready.entries persisted by `node` (still in the Ready cycle: the views are valid). */
  onEntriesPersisted(node: Pick<RaftNode, 'id' | 'term'>, entries: EntryRange): void {
    const id = node.id;
    const record = this.record(id);
    const first = entries.firstIndex;
    if (record.leaderTerm !== 0 && record.leaderTerm === node.term && first <= record.leaderLast) {
      this.fail('leader-append-only', `leader ${id} of term ${node.term} rewrote its log from index ${first} (its last index was ${record.leaderLast})`);
    }
    if (first - 1 < record.base || first - 1 > record.last) {
      this.fail('log-matching', `node ${id} persisted entries from ${first}, outside its persisted log ${record.base}..${record.last}`);
    }
    const chain = record.chain;
    chain.length = first;
    let hash = chain[first - 1] as number;
    let index = first;
    const reader = this.reader.reset(entries);
    while (reader.next()) {
      // After a snapshot whose chain is unknown, the prefix is unknown too: nothing to compare.
      if (!Number.isNaN(hash)) {
        hash = hashBytes(reader.bytes, reader.frameOffset, reader.frameOffset + reader.frameLength, hash);
        this.noteEntry(id, index, reader.term, hash);
      }
      chain.push(hash);
      record.lastTerm = reader.term;
      index += 1;
    }
    record.last = index - 1;
    this.checkProtected(id, record);
  }

  private noteEntry(id: NodeId, index: number, term: number, chain: number): void {
    let list = this.entriesAt[index];
    if (list === undefined) {
      list = [];
      this.entriesAt[index] = list;
    }
    for (const entry of list) {
      if (entry.term !== term) continue;
      if (entry.chain !== chain) {
        this.fail('log-matching', `node ${id} and node ${entry.node} both hold entry ${index}/${term} but their logs differ through it`);
      }
      return;
    }
    list.push({ term, chain, node: id });
  }

  private chainOf(index: number, term: number): number | undefined {
    if (index === 0) return 0;
    const list = this.entriesAt[index];
    if (list === undefined) return undefined;
    for (const entry of list) if (entry.term === term) return entry.chain;
    return undefined;
  }

  /** One committed entry handed to `id`'s state machine, before it is applied. */
  onApplying(id: NodeId, index: number, frame: Uint8Array, frameOffset: number, frameLength: number): void {
    const record = this.record(id);
    if (index !== record.applied + 1) {
      this.fail('applied-sequence', `node ${id} applies index ${index} after ${record.applied}`);
    }
    record.applied = index;
    const hash = hashBytes(frame, frameOffset, frameOffset + frameLength, 0);
    const known = this.appliedFrame[index];
    if (known === undefined) {
      this.appliedFrame[index] = hash;
      this.appliedBy[index] = id;
    } else if (known !== hash) {
      this.fail('state-machine-safety', `node ${id} applies a different entry at index ${index} than node ${this.appliedBy[index]} did`);
    }
  }

  /** The machine's value after `id` applied `index`. */
  onApplied(id: NodeId, index: number, value: bigint): void {
    this.checkStateAfter(id, index, value, 'apply');
  }

  private checkStateAfter(id: NodeId, index: number, value: bigint, how: 'apply' | 'snapshot' | 'restart'): void {
    const known = this.stateAfter[index];
    if (known === undefined) {
      this.stateAfter[index] = value;
    } else if (known !== value) {
      this.fail('state-machine-safety', `node ${id} has state ${value} after index ${index} (by ${how}); another node had ${known}`);
    }
  }

  // -------------------------------------------------------------------------------------------
  // Lifecycle.

  /** `id` crashed: it holds no office any more. */
  onCrash(id: NodeId): void {
    const record = this.record(id);
    record.leaderTerm = 0;
  }

  /**
   * `node` restarted from its persisted state with its machine restored to `value` at the
   * snapshot's index: its log must be exactly what it persisted, its commit no lower than the
   * last durable one.
   */
  onRestart(node: RaftNode, value: bigint): void {
    const id = node.id;
    const record = this.record(id);
    if (node.lastIndex !== record.last) {
      this.fail('log-matching', `node ${id} restarted with last index ${node.lastIndex}, but persisted through ${record.last}`);
    }
    if (node.commitIndex < record.durableCommit) {
      this.fail('commit-monotonic', `node ${id} restarted with commit ${node.commitIndex} below its durable ${record.durableCommit}`);
    }
    // The volatile commit may rewind to the durable one; from here on it must not decrease again.
    record.commitFloor = node.commitIndex;
    // Volatile: applied rewinds to the snapshot; the entries after it are applied again.
    record.applied = node.appliedIndex;
    record.leaderTerm = 0;
    this.checkStateAfter(id, node.appliedIndex, value, 'restart');
  }

  /** After every event that touched `node`: roles, terms, commit and applied. */
  afterEvent(node: RaftNode): void {
    const id = node.id;
    const record = this.record(id);
    const term = node.term;
    if (node.role === 'leader') {
      const owner = this.leaderOfTerm.get(term);
      if (owner === undefined) {
        this.leaderOfTerm.set(term, id);
      } else if (owner !== id) {
        this.fail('election-safety', `nodes ${owner} and ${id} are both leaders of term ${term}`);
      }
      if (record.leaderTerm === term) {
        if (node.lastIndex < record.leaderLast) {
          this.fail('leader-append-only', `leader ${id} of term ${term} shrank its log from ${record.leaderLast} to ${node.lastIndex}`);
        }
      } else {
        record.leaderTerm = term;
        this.checkLeaderCompleteness(id, record, term, this.highestCommitBefore(term));
      }
      record.leaderLast = node.lastIndex;
    } else {
      record.leaderTerm = 0;
    }
    const commit = node.commitIndex;
    if (commit < record.commitFloor) {
      this.fail('commit-monotonic', `node ${id} commit went from ${record.commitFloor} down to ${commit}`);
    }
    if (commit > record.commitFloor) {
      if (commit > record.last) this.fail('log-matching', `node ${id} commit ${commit} past its persisted log ${record.last}`);
      for (let index = Math.max(record.commitFloor + 1, record.base); index <= commit; index++) {
        const chain = record.chain[index] as number;
        if (Number.isNaN(chain)) continue;
        const committed = this.committedChain[index];
        if (committed === undefined) {
          this.committedChain[index] = chain;
        } else if (committed !== chain) {
          this.fail('state-machine-safety', `node ${id} committed a different entry (or prefix) at index ${index} than another node`);
        }
      }
      record.commitFloor = commit;
      if (commit > this.highestCommit) {
        this.highestCommit = commit;
        for (const [other, otherRecord] of this.records) this.checkProtected(other, otherRecord);
      }
      const known = this.commitAtTerm.get(term) ?? 0;
      if (commit > known) {
        this.commitAtTerm.set(term, commit);
        // Every leader of a later term must already hold it (§5.4.3).
        for (const [other, otherRecord] of this.records) {
          if (otherRecord.leaderTerm > term) this.checkLeaderCompleteness(other, otherRecord, otherRecord.leaderTerm, commit);
        }
      }
    }
    if (node.appliedIndex !== record.applied) {
      this.fail('applied-sequence', `node ${id} reports applied ${node.appliedIndex} but was handed entries through ${record.applied}`);
    }
  }

  /**
   * The invariant behind Leader Completeness: if `record`'s node lacks the highest committed entry,
   * a majority of nodes must hold logs more up-to-date than its own, so it can never collect a
   * majority of votes (§5.4.1). Crashed nodes count with their persisted logs: they may come back.
   */
  private checkProtected(id: NodeId, record: NodeRecord): void {
    const index = this.highestCommit;
    if (index === 0 || index <= record.base) return; // its snapshot covers the committed prefix
    const committed = this.committedChain[index];
    if (committed === undefined) return;
    if (index <= record.last) {
      const chain = record.chain[index] as number;
      if (Number.isNaN(chain) || chain === committed) return;
    }
    let grantors = 0;
    const granting: NodeId[] = [];
    for (const [voter, voterRecord] of this.records) {
      // §5.4.1: a voter grants only if the candidate's log is at least as up-to-date as its own.
      const upToDate = record.lastTerm > voterRecord.lastTerm || (record.lastTerm === voterRecord.lastTerm && record.last >= voterRecord.last);
      if (upToDate) {
        grantors += 1;
        granting.push(voter);
      }
    }
    if (grantors >= this.majority) {
      this.fail(
        'leader-completeness',
        `node ${id} lacks committed index ${index} yet could win an election: nodes [${granting.join(',')}] hold logs no more up-to-date than its ${record.last}/${record.lastTerm}`,
      );
    }
  }

  /** Highest index known committed by a node in a term below `term`. */
  private highestCommitBefore(term: number): number {
    let highest = 0;
    for (const [t, index] of this.commitAtTerm) if (t < term && index > highest) highest = index;
    return highest;
  }

  private checkLeaderCompleteness(id: NodeId, record: NodeRecord, term: number, index: number): void {
    if (index === 0) return;
    const committed = this.committedChain[index];
    if (committed === undefined) return;
    if (index > record.last) {
      this.fail('leader-completeness', `leader ${id} of term ${term} lacks committed index ${index} (its log ends at ${record.last})`);
    }
    if (index < record.base) return; // covered by the snapshot it installed
    const chain = record.chain[index] as number;
    if (!Number.isNaN(chain) && chain !== committed) {
      this.fail('leader-completeness', `leader ${id} of term ${term} holds a different entry (or prefix) at committed index ${index}`);
    }
  }

  /**
   * Full audit of one live node (end of run): recompute its chain from the log the node holds now
   * and compare with what it persisted. Catches a log that changed without going through Ready.
   */
  audit(node: RaftNode): void {
    const id = node.id;
    const record = this.record(id);
    if (node.lastIndex !== record.last) this.fail('log-matching', `audit: node ${id} holds ${node.lastIndex} entries, persisted ${record.last}`);
    const from = Math.max(node.firstIndex, record.base + 1);
    if (from > node.lastIndex) return;
    let hash = record.chain[from - 1] as number;
    if (Number.isNaN(hash)) return;
    for (let index = from; index <= node.lastIndex; index++) {
      const frame = node.log.frameAt(index);
      hash = hashBytes(frame, 0, frame.length, hash);
      if (hash !== record.chain[index]) {
        this.fail('log-matching', `audit: node ${id} holds different bytes at index ${index} than it persisted`);
      }
    }
  }
}
