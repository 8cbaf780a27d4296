/**
 * RaftNode: the Raft state machine of one node, pure and deterministic (etcd-raft style).
 *
 * Time enters only through tick(), input only through step() (and the propose/readIndex/
 * transferLeadership conveniences), effects leave only as data in Ready. No I/O, timers, clocks,
 * promises or Math.random: the same config, seed and inputs give the same outputs.
 *
 * step() works in three phases (etcd's Step):
 *   1. term handling, the same for every role (§5.1: a higher term makes us a follower; a lower
 *      term is stale and ignored, or answered so a stale leader learns the new term);
 *   2. messages that do not depend on the role: hup (start an election), vote requests;
 *   3. the role's own handler: a short switch whose cases each call one handleX.
 * Only becomeFollower / becomePreCandidate / becomeCandidate / becomeLeader change the role.
 */
import { assert, unreachable } from './assert.js';
import { type HardState, type PersistedState, type RaftConfig, type ResolvedConfig, resolveConfig } from './config.js';
import { ConfigError } from './errors.js';
import { type EntryFrames, type EntryRange, FrameHeader, entryKindCode, frameBytes } from './entry.js';
import {
  type AppendMessage,
  type AppendResponseMessage,
  type HeartbeatMessage,
  type HeartbeatResponseMessage,
  type Message,
  type NodeId,
  type ProposeMessage,
  type RemoteMessage,
  type Snapshot,
  type SnapshotMessage,
  type SnapshotResponseMessage,
  type VoteMessage,
  type VoteResponseMessage,
  noNode,
} from './message.js';
import { Prng } from './prng.js';
import { Progress } from './progress.js';
import { majority, quorumIndex, voteResult } from './quorum.js';
import type { ProposeResult, Ready, ReadState, RequestResult, Role, SoftState } from './ready.js';
import { LogRing } from './ring.js';

const emptyData = new Uint8Array(0);

/** A ReadIndex request waiting for a quorum to confirm leadership (thesis §6.4). */
interface PendingRead {
  /** Unique per requester and context; also the heartbeat context that confirms it. */
  readonly key: string;
  readonly from: NodeId;
  readonly context: string;
  /** Commit index when the request arrived: the read is served once applied through it. */
  readonly index: number;
  readonly acks: Set<NodeId>;
}

/** Read-only view of the log, for drivers, tests and tools. */
export interface LogView {
  readonly framesEncoded: number;
  readonly framesCopied: number;
  readonly firstIndex: number;
  readonly lastIndex: number;
  readonly lastTerm: number;
  readonly byteLength: number;
  readonly buffer: ArrayBufferLike;
  termAt(index: number): number;
  kindAt(index: number): number;
  dataAt(index: number): Uint8Array;
  frameAt(index: number): Uint8Array;
  frames(from: number, to: number): EntryFrames;
}

/** What the leader knows of a follower, for status pages. */
export interface ProgressStatus {
  readonly id: NodeId;
  readonly match: number;
  readonly next: number;
  readonly state: Progress['state'];
  readonly inflight: number;
  readonly recentActive: boolean;
}

/**
 * A snapshot being received in chunks (follower side of InstallSnapshot, §7). Identified by the
 * leader, its term and the snapshot's index and term: a chunk of any other transfer starts a new
 * one (at offset 0) or is refused.
 */
interface SnapshotAssembly {
  readonly from: NodeId;
  readonly term: number;
  readonly index: number;
  readonly snapshotTerm: number;
  readonly peers: readonly NodeId[];
  /** Bytes received, in order, in buffer[0, length). */
  buffer: Uint8Array;
  length: number;
}

/** Marks a follower whose next append should go out even when it carries no entries. */
const sendNone = 0;
const sendEntries = 1;
const sendEvenIfEmpty = 2;

export class RaftNode {
  /** The resolved, validated configuration. */
  readonly config: ResolvedConfig;
  private readonly prng: Prng;
  private readonly ring: LogRing;
  private readonly others: readonly NodeId[];
  private readonly voterCount: number;

  // Persistent state (§5, Figure 2), mirrored to stable storage through Ready.hardState.
  private currentTerm = 0;
  private votedFor: NodeId = noNode;

  // Volatile state.
  private currentRole: Role = 'follower';
  private leader: NodeId = noNode;
  /** Invariant: appliedIndex <= committed <= lastIndex. */
  private committed = 0;
  /** Highest index handed to the state machine in an advanced Ready. */
  private applied = 0;
  /** Highest index persisted (in an advanced Ready). Invariant: stableIndex <= lastIndex. */
  private stable = 0;

  private electionElapsed = 0;
  private heartbeatElapsed = 0;
  /** Ticks since this node was created: times snapshot chunk retries. */
  private tickCount = 0;
  private randomizedElectionTimeout = 0;

  // Candidate state.
  private readonly votes = new Map<NodeId, boolean>();

  // Leader state.
  private readonly progress = new Map<NodeId, Progress>();
  /** Per follower: whether an append is owed at the next flush (sendNone / sendEntries / sendEvenIfEmpty). */
  private readonly owed = new Map<NodeId, number>();
  private anyOwed = false;
  private leadTransferee: NodeId = noNode;
  private readonly pendingReads: PendingRead[] = [];
  private readonly pendingReadKeys = new Map<string, PendingRead>();
  /** Reads that arrived before the leader committed an entry of its term (thesis §6.4 step 1). */
  private readonly readsBeforeCommit: { from: NodeId; context: string }[] = [];
  private readonly matchScratch: Float64Array;
  private readonly sortScratch: Float64Array;

  // Follower state.
  private readonly forwardQueue: Uint8Array[] = [];

  // Snapshots.
  /** Latest snapshot (taken locally by compact() or installed from the leader). */
  private snapshot: Snapshot | null = null;
  /** A snapshot received from the leader and not yet handed out in a Ready. */
  private incomingSnapshot: Snapshot | null = null;
  /** The snapshot whose chunks are arriving (follower); dropped on a term or role change. */
  private snapshotAssembly: SnapshotAssembly | null = null;

  // Output.
  private outbox: RemoteMessage[] = [];
  private readStates: ReadState[] = [];
  private previousHardState: HardState;
  private previousSoftState: SoftState;
  private outstanding: Ready | null = null;
  private readonly header = new FrameHeader();

  constructor(config: RaftConfig) {
    this.config = resolveConfig(config);
    const { id, peers, seed, bounds } = this.config;
    this.prng = new Prng(seed);
    this.ring = new LogRing({ bytesMax: bounds.logBytesMax, initialBytes: Math.min(1 << 16, bounds.logBytesMax) });
    this.others = peers.filter((peer) => peer !== id);
    this.voterCount = peers.length;
    this.matchScratch = new Float64Array(this.voterCount);
    this.sortScratch = new Float64Array(this.voterCount);
    this.restoreFrom(this.config.restore);
    this.previousHardState = { term: this.currentTerm, vote: this.votedFor, commit: this.committed };
    this.previousSoftState = { role: this.currentRole, leaderId: this.leader };
    this.resetRandomizedElectionTimeout();
    this.verify();
  }

  // ---------------------------------------------------------------------------------------------
  // Read-only getters.

  /** This node's id. */
  get id(): NodeId {
    return this.config.id;
  }
  /** Current role. */
  get role(): Role {
    return this.currentRole;
  }
  /** Current term. */
  get term(): number {
    return this.currentTerm;
  }
  /** Who this node voted for in the current term (0: nobody). */
  get vote(): NodeId {
    return this.votedFor;
  }
  /** The known leader of the current term (0: unknown). */
  get leaderId(): NodeId {
    return this.leader;
  }
  /** Highest index known committed. */
  get commitIndex(): number {
    return this.committed;
  }
  /** Highest index applied (handed out and advanced). */
  get appliedIndex(): number {
    return this.applied;
  }
  /** Highest index persisted. */
  get stableIndex(): number {
    return this.stable;
  }
  /** Index of the last log entry. */
  get lastIndex(): number {
    return this.ring.lastIndex;
  }
  /** Index of the first entry still in the log (after compaction). */
  get firstIndex(): number {
    return this.ring.firstIndex;
  }
  /** The leader transfer under way (0: none). */
  get transferee(): NodeId {
    return this.leadTransferee;
  }
  /** The latest snapshot this node holds. */
  get latestSnapshot(): Snapshot | null {
    return this.snapshot;
  }
  /** Read-only access to the log. */
  get log(): LogView {
    return this.ring;
  }
  /** ReadIndex requests waiting for leadership confirmation (leader only). */
  get pendingReadCount(): number {
    return this.pendingReads.length + this.readsBeforeCommit.length;
  }
  /** The leader's view of each follower (empty unless leader). */
  progressStatus(): ProgressStatus[] {
    const result: ProgressStatus[] = [];
    for (const [id, pr] of this.progress) {
      result.push({ id, match: pr.match, next: pr.next, state: pr.state, inflight: pr.inflights.count, recentActive: pr.recentActive });
    }
    return result;
  }
  /** The current hard state. */
  hardState(): HardState {
    return { term: this.currentTerm, vote: this.votedFor, commit: this.committed };
  }

  // ---------------------------------------------------------------------------------------------
  // Inputs.

  /** Advances logical time by one tick: the only notion of time in the core. */
  tick(): void {
    this.assertAcceptingInput('tick');
    this.tickCount += 1;
    this.electionElapsed += 1;
    if (this.currentRole === 'leader') {
      this.heartbeatElapsed += 1;
      if (this.electionElapsed >= this.config.electionTimeoutTicks) {
        this.electionElapsed = 0;
        if (this.config.checkQuorum) this.stepLocal('checkQuorum');
        // A transfer that did not finish within an election timeout is abandoned (thesis §3.10).
        if (this.currentRole === 'leader' && this.leadTransferee !== noNode) this.leadTransferee = noNode;
      }
      if (this.currentRole === 'leader' && this.heartbeatElapsed >= this.config.heartbeatTicks) {
        this.heartbeatElapsed = 0;
        this.stepLocal('beat');
      }
    } else if (this.electionElapsed >= this.randomizedElectionTimeout) {
      this.electionElapsed = 0;
      this.step({ type: 'hup', from: this.id, to: this.id, term: 0, transfer: false });
    }
    this.verify();
  }

  /** Feeds one message (remote, or local such as hup) into the state machine. */
  step(message: Message): void {
    this.assertAcceptingInput('step');
    assert(message.to === this.id, () => `message for node ${message.to} stepped into node ${this.id}`);
    this.stepInner(message);
    this.verify();
  }

  /**
   * Proposes `data` as a new entry. The leader appends it (encoding it once, into the ring); a
   * follower forwards it to the leader unless forwarding is off. `data` is copied by the leader at
   * once; a follower keeps the reference until the forward message is sent (the next Ready).
   */
  propose(data: Uint8Array): ProposeResult {
    this.assertAcceptingInput('propose');
    const result = this.proposeInner(data);
    this.verify();
    return result;
  }

  /**
   * Asks for a linearizable read (ReadIndex, thesis §6.4). When the leader has confirmed its
   * leadership with a quorum, a ReadState with this `context` appears in a Ready; serve the read
   * once applied through its index. Followers forward the request to the leader.
   */
  readIndex(context: string): RequestResult {
    this.assertAcceptingInput('readIndex');
    const result = this.readIndexInner(context);
    this.verify();
    return result;
  }

  /**
   * Hands leadership to `target` (thesis §3.10): bring it up to date, then tell it to campaign at
   * once. Proposals are refused while the transfer is under way; it is abandoned after an
   * election timeout.
   */
  transferLeadership(target: NodeId): RequestResult {
    this.assertAcceptingInput('transferLeadership');
    const result = this.transferInner(target);
    this.verify();
    return result;
  }

  /**
   * Compacts the log: the state machine has a snapshot (`data`) of everything through `index`
   * (which must be applied), so the ring releases that prefix. The snapshot is kept to catch up
   * followers that need compacted entries (InstallSnapshot, §7).
   */
  compact(index: number, data: Uint8Array): void {
    this.assertAcceptingInput('compact');
    assert(index <= this.applied, () => `compact(${index}) past applied index ${this.applied}`);
    if (index < this.ring.firstIndex) return;
    const term = this.ring.termAt(index);
    assert(term >= 0, () => `compact(${index}): no term known`);
    this.snapshot = { index, term, peers: this.config.peers, data };
    this.ring.compactThrough(index);
    this.verify();
  }

  // ---------------------------------------------------------------------------------------------
  // Ready / advance.

  /** True when ready() would hand out work. Flushes owed appends into messages first. */
  hasReady(): boolean {
    if (this.outstanding !== null) return false;
    this.flush();
    return (
      this.outbox.length > 0 ||
      this.readStates.length > 0 ||
      this.incomingSnapshot !== null ||
      this.stable < this.ring.lastIndex ||
      this.committed > this.applied ||
      this.hardStateChanged() ||
      this.softStateChanged()
    );
  }

  /** Hands out the pending work. Call advance(ready) when it is done; no input is accepted until then. */
  ready(): Ready {
    assert(this.outstanding === null, 'ready() called twice without advance()');
    this.flush();
    const hardStateChanged = this.hardStateChanged();
    const termOrVoteChanged =
      this.currentTerm !== this.previousHardState.term || this.votedFor !== this.previousHardState.vote;
    const lastIndex = this.ring.lastIndex;
    const entries: EntryRange =
      this.stable < lastIndex
        ? { ...this.ring.frames(this.stable + 1, lastIndex), firstIndex: this.stable + 1 }
        : { count: 0, slices: [], byteLength: 0, firstIndex: lastIndex + 1 };
    const applyFrom = Math.max(this.applied, this.incomingSnapshot?.index ?? 0) + 1;
    let committedEntries: EntryRange = { count: 0, slices: [], byteLength: 0, firstIndex: applyFrom };
    if (this.committed >= applyFrom) {
      const applyTo = this.ring.lastIndexWithin(applyFrom, Number.MAX_SAFE_INTEGER, this.config.bounds.applyBytesMax);
      committedEntries = { ...this.ring.frames(applyFrom, Math.min(applyTo, this.committed)), firstIndex: applyFrom };
    }
    const softState = this.softStateChanged() ? { role: this.currentRole, leaderId: this.leader } : null;
    const ready: Ready = {
      hardState: hardStateChanged ? this.hardState() : null,
      entries,
      snapshot: this.incomingSnapshot,
      mustSync: termOrVoteChanged || entries.count > 0 || this.incomingSnapshot !== null,
      messages: this.outbox,
      committedEntries,
      readStates: this.readStates,
      softState,
    };
    this.outbox = [];
    this.readStates = [];
    this.outstanding = ready;
    return ready;
  }

  /** Marks `ready` done: its entries are persisted, its messages sent, its entries applied. */
  advance(ready: Ready): void {
    assert(this.outstanding === ready, 'advance() with a Ready that is not the outstanding one');
    this.outstanding = null;
    if (ready.hardState !== null) this.previousHardState = ready.hardState;
    if (ready.softState !== null) this.previousSoftState = ready.softState;
    if (ready.snapshot !== null) {
      assert(this.incomingSnapshot === ready.snapshot, 'advance: snapshot changed under an outstanding Ready');
      this.incomingSnapshot = null;
      this.applied = Math.max(this.applied, ready.snapshot.index);
      this.stable = Math.max(this.stable, ready.snapshot.index);
    }
    if (ready.entries.count > 0) this.stable = ready.entries.firstIndex + ready.entries.count - 1;
    if (ready.committedEntries.count > 0) {
      this.applied = ready.committedEntries.firstIndex + ready.committedEntries.count - 1;
    }
    // The leader's own persisted entries count toward the quorum (single-node clusters commit here).
    if (this.currentRole === 'leader') this.maybeCommit();
    this.verify();
  }

  // ---------------------------------------------------------------------------------------------
  // Step phases.

  private stepInner(m: Message): void {
    // Phase 1: term handling.
    if (m.term === 0) {
      // Local message: no term.
    } else if (m.term > this.currentTerm) {
      if (m.type === 'vote' || m.type === 'preVote') {
        // Leader lease (thesis §4.2.3): while we hear from a leader, ignore candidates that would
        // depose it, unless the candidate was told to campaign by a leadership transfer.
        const inLease =
          this.config.checkQuorum && this.leader !== noNode && this.electionElapsed < this.config.electionTimeoutTicks;
        if (inLease && !m.transfer) return;
      }
      if (m.type === 'preVote') {
        // A pre-vote never changes our term (thesis §9.6).
      } else if (m.type === 'preVoteResponse' && !m.reject) {
        // Our own pre-campaign's future term; the term moves when the real campaign starts.
      } else if (m.type === 'append' || m.type === 'heartbeat' || m.type === 'snapshot') {
        this.becomeFollower(m.term, m.from);
      } else {
        this.becomeFollower(m.term, noNode);
      }
    } else if (m.term < this.currentTerm) {
      this.handleStaleMessage(m);
      return;
    }

    // Phase 2: messages that do not depend on the role.
    switch (m.type) {
      case 'hup':
        this.handleHup(m.transfer);
        return;
      case 'vote':
      case 'preVote':
        this.handleVoteRequest(m);
        return;
      default:
        break;
    }

    // Phase 3: the role's own handler.
    switch (this.currentRole) {
      case 'leader':
        this.stepLeader(m);
        return;
      case 'candidate':
      case 'preCandidate':
        this.stepCandidate(m);
        return;
      case 'follower':
        this.stepFollower(m);
        return;
      default:
        unreachable(this.currentRole, 'role');
    }
  }

  private stepLeader(m: Message): void {
    switch (m.type) {
      case 'beat':
        this.broadcastHeartbeat(this.newestReadKey());
        return;
      case 'checkQuorum':
        this.handleCheckQuorum();
        return;
      case 'propose':
        this.handleForwardedProposals(m);
        return;
      case 'readIndex':
        this.handleReadRequest(m.from, m.context);
        return;
      case 'appendResponse':
        this.handleAppendResponse(m);
        return;
      case 'heartbeatResponse':
        this.handleHeartbeatResponse(m);
        return;
      case 'snapshotResponse':
        this.handleSnapshotResponse(m);
        return;
      case 'append':
      case 'heartbeat':
      case 'snapshot':
        // Another leader in our own term would violate Election Safety (§5.2); the simulator's
        // checker reports it. Nothing sensible to do with the message.
        return;
      case 'voteResponse':
      case 'preVoteResponse':
      case 'timeoutNow':
      case 'readIndexResponse':
      case 'hup':
      case 'vote':
      case 'preVote':
        return;
      default:
        unreachable(m, 'message');
    }
  }

  private stepCandidate(m: Message): void {
    switch (m.type) {
      case 'append':
        // A leader of our term exists (§5.2: a candidate steps down on AppendEntries of an equal term).
        this.becomeFollower(m.term, m.from);
        this.handleAppend(m);
        return;
      case 'heartbeat':
        this.becomeFollower(m.term, m.from);
        this.handleHeartbeat(m);
        return;
      case 'snapshot':
        this.becomeFollower(m.term, m.from);
        this.handleSnapshot(m);
        return;
      case 'voteResponse':
      case 'preVoteResponse':
        this.handleVoteResponse(m);
        return;
      case 'propose':
      case 'readIndex':
      case 'readIndexResponse':
      case 'timeoutNow':
      case 'appendResponse':
      case 'heartbeatResponse':
      case 'snapshotResponse':
      case 'beat':
      case 'checkQuorum':
      case 'hup':
      case 'vote':
      case 'preVote':
        return;
      default:
        unreachable(m, 'message');
    }
  }

  private stepFollower(m: Message): void {
    switch (m.type) {
      case 'append':
        this.electionElapsed = 0;
        this.leader = m.from;
        this.handleAppend(m);
        return;
      case 'heartbeat':
        this.electionElapsed = 0;
        this.leader = m.from;
        this.handleHeartbeat(m);
        return;
      case 'snapshot':
        this.electionElapsed = 0;
        this.leader = m.from;
        this.handleSnapshot(m);
        return;
      case 'timeoutNow':
        // The leader hands us leadership: campaign now, skipping pre-vote (thesis §3.10).
        this.campaign('transfer');
        return;
      case 'readIndexResponse':
        this.readStates.push({ index: m.index, context: m.context });
        return;
      case 'propose':
        // A proposal forwarded to us when we were leader; pass it on if we know the new leader.
        if (this.leader !== noNode && this.config.forwardToLeader) {
          for (const data of m.data) if (this.forwardQueue.length < this.config.bounds.forwardCountMax) this.forwardQueue.push(data);
        }
        return;
      case 'readIndex':
        if (this.leader !== noNode && this.config.forwardReads) {
          this.send({ type: 'readIndex', from: this.id, to: this.leader, term: this.currentTerm, context: m.context });
        }
        return;
      case 'appendResponse':
      case 'heartbeatResponse':
      case 'snapshotResponse':
      case 'voteResponse':
      case 'preVoteResponse':
      case 'beat':
      case 'checkQuorum':
      case 'hup':
      case 'vote':
      case 'preVote':
        return;
      default:
        unreachable(m, 'message');
    }
  }

  /** A message from an older term. */
  private handleStaleMessage(m: Message): void {
    if ((this.config.checkQuorum || this.config.preVote) && (m.type === 'append' || m.type === 'heartbeat')) {
      // A leader cut off from the cluster keeps sending at its old term. With pre-vote or
      // check-quorum our term may have moved without it hearing; answering tells it to step down.
      this.send({ type: 'appendResponse', from: this.id, to: m.from, term: this.currentTerm, reject: false, index: 0, hintIndex: 0, hintTerm: 0 });
    } else if (m.type === 'preVote') {
      this.send({ type: 'preVoteResponse', from: this.id, to: m.from, term: this.currentTerm, reject: true });
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Role changes. Only these four change currentRole.

  private becomeFollower(term: number, leader: NodeId): void {
    this.reset(term);
    this.currentRole = 'follower';
    this.leader = leader;
  }

  private becomePreCandidate(): void {
    assert(this.currentRole !== 'leader', 'invalid transition leader -> preCandidate');
    // Pre-vote changes neither term nor vote (thesis §9.6).
    this.votes.clear();
    // The leader is presumed gone: so is its transfer (a new one starts from offset 0).
    this.snapshotAssembly = null;
    this.currentRole = 'preCandidate';
    this.leader = noNode;
  }

  private becomeCandidate(): void {
    assert(this.currentRole !== 'leader', 'invalid transition leader -> candidate');
    this.reset(this.currentTerm + 1);
    this.votedFor = this.id;
    this.currentRole = 'candidate';
  }

  private becomeLeader(): void {
    assert(this.currentRole === 'candidate', () => `invalid transition ${this.currentRole} -> leader`);
    this.reset(this.currentTerm);
    this.currentRole = 'leader';
    this.leader = this.id;
    const next = this.ring.lastIndex + 1;
    for (const peer of this.others) {
      const pr = new Progress(next, this.config.bounds.inflightCountMax, this.config.bounds.inflightBytesMax);
      pr.recentActive = true;
      this.progress.set(peer, pr);
    }
    // A new leader appends an empty entry of its term: committing it commits every earlier entry
    // (§5.4.2, §8) and lets ReadIndex reads proceed (thesis §6.4).
    const appended = this.ring.append(this.currentTerm, entryKindCode.empty, emptyData);
    assert(appended, 'new leader could not append its empty entry: log at logBytesMax');
    this.oweAll(sendEntries);
  }

  /** Clears per-term state; moves to `term` (forgetting the vote) if it differs. */
  private reset(term: number): void {
    if (this.currentTerm !== term) {
      this.currentTerm = term;
      this.votedFor = noNode;
    }
    this.leader = noNode;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.resetRandomizedElectionTimeout();
    this.leadTransferee = noNode;
    this.votes.clear();
    this.progress.clear();
    this.owed.clear();
    this.anyOwed = false;
    this.pendingReads.length = 0;
    this.pendingReadKeys.clear();
    this.readsBeforeCommit.length = 0;
    // A transfer belongs to one leader's term; the next leader starts its own from offset 0.
    this.snapshotAssembly = null;
  }

  private resetRandomizedElectionTimeout(): void {
    const base = this.config.electionTimeoutTicks;
    // Uniform in [base, 2 * base) (§5.2: randomized timeouts make split votes rare).
    this.randomizedElectionTimeout = base + this.prng.nextInt(base);
  }

  // ---------------------------------------------------------------------------------------------
  // Elections (§5.2, §5.4.1, thesis §9.6).

  private handleHup(transfer: boolean): void {
    if (this.currentRole === 'leader') return;
    if (transfer) this.campaign('transfer');
    else this.campaign(this.config.preVote ? 'preElection' : 'election');
  }

  /**
   * Starts a pre-election (thesis §9.6: ask whether we could win, without moving the term), an
   * election (§5.2), or a transfer election (an election whose requests override leader leases).
   */
  private campaign(kind: 'preElection' | 'election' | 'transfer'): void {
    let type: 'vote' | 'preVote';
    let term: number;
    const transfer = kind === 'transfer';
    if (kind === 'preElection') {
      this.becomePreCandidate();
      type = 'preVote';
      // Pre-vote asks about the term we would campaign in, without moving to it.
      term = this.currentTerm + 1;
    } else {
      this.becomeCandidate();
      type = 'vote';
      term = this.currentTerm;
    }
    if (this.poll(this.id, true) === 'won') {
      // A single-node cluster wins at once.
      if (type === 'preVote') this.campaign('election');
      else this.becomeLeader();
      return;
    }
    const lastIndex = this.ring.lastIndex;
    const lastTerm = this.ring.lastTerm;
    for (const peer of this.others) {
      this.send({ type, from: this.id, to: peer, term, lastIndex, lastTerm, transfer });
    }
  }

  private poll(from: NodeId, granted: boolean): 'won' | 'lost' | 'pending' {
    if (!this.votes.has(from)) this.votes.set(from, granted);
    let yes = 0;
    let no = 0;
    for (const vote of this.votes.values()) {
      if (vote) yes += 1;
      else no += 1;
    }
    return voteResult(yes, no, this.voterCount);
  }

  private handleVoteRequest(m: VoteMessage): void {
    const responseType = m.type === 'vote' ? 'voteResponse' : 'preVoteResponse';
    // §5.2: at most one vote per term, first come first served. A pre-vote for a future term may be
    // granted whatever our vote in this term.
    const canVote =
      this.votedFor === m.from ||
      (this.votedFor === noNode && this.leader === noNode) ||
      (m.type === 'preVote' && m.term > this.currentTerm) ||
      this.config.plantedBugs.voteTwice;
    // §5.4.1: grant only to a candidate whose log is at least as up-to-date as ours.
    const lastTerm = this.ring.lastTerm;
    const upToDate =
      m.lastTerm > lastTerm || (m.lastTerm === lastTerm && m.lastIndex >= this.ring.lastIndex) || this.config.plantedBugs.voteWithoutLogCheck;
    if (canVote && upToDate && this.peerKnown(m.from)) {
      // Answer in the request's term: a pre-candidate has not moved to it yet.
      this.send({ type: responseType, from: this.id, to: m.from, term: m.term, reject: false });
      if (m.type === 'vote') {
        this.electionElapsed = 0;
        this.votedFor = m.from;
      }
    } else {
      this.send({ type: responseType, from: this.id, to: m.from, term: this.currentTerm, reject: true });
    }
  }

  private handleVoteResponse(m: VoteResponseMessage): void {
    const expected = this.currentRole === 'preCandidate' ? 'preVoteResponse' : 'voteResponse';
    if (m.type !== expected || !this.peerKnown(m.from)) return;
    switch (this.poll(m.from, !m.reject)) {
      case 'won':
        if (this.currentRole === 'preCandidate') this.campaign('election');
        else this.becomeLeader();
        return;
      case 'lost':
        // §5.2: the election is lost; wait for a leader or the next timeout as a follower.
        this.becomeFollower(this.currentTerm, noNode);
        return;
      case 'pending':
        return;
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Follower side of replication (§5.3).

  private handleAppend(m: AppendMessage): void {
    if (m.prevIndex < this.committed) {
      // Everything through commit is known to match; tell the leader where we are.
      this.respondAppend(m.from, false, this.committed, 0, 0);
      return;
    }
    const termAtPrevious = this.ring.termAt(m.prevIndex);
    if (termAtPrevious !== m.prevTerm) {
      // §5.3: reject when the log has no entry at prevIndex with prevTerm, with a conflict hint so
      // the leader can skip a whole term per round trip instead of one entry.
      const lastIndex = this.ring.lastIndex;
      if (m.prevIndex > lastIndex) {
        this.respondAppend(m.from, true, m.prevIndex, lastIndex, 0);
      } else {
        assert(termAtPrevious >= 0, () => `prevIndex ${m.prevIndex} compacted though above commit ${this.committed}`);
        const low = Math.max(this.committed + 1, this.ring.firstIndex);
        const hintIndex = this.ring.firstIndexWithTermAtLeast(termAtPrevious, low, m.prevIndex);
        this.respondAppend(m.from, true, m.prevIndex, hintIndex, termAtPrevious);
      }
      return;
    }
    // The logs match through prevIndex. Skip the entries we already hold; at the first conflict,
    // delete that entry and all after it (§5.3) — never a matching prefix, since a stale or
    // duplicated AppendEntries must not erase entries a newer one added.
    let skip = 0;
    const entries = m.entries;
    if (entries.count > 0 && m.prevIndex < this.ring.lastIndex) {
      let index = m.prevIndex + 1;
      const lastIndex = this.ring.lastIndex;
      outer: for (const slice of entries.slices) {
        let at = 0;
        while (at < slice.length) {
          if (index > lastIndex) break outer;
          const length = this.header.parse(slice, at, slice.length);
          assert(length > 0, () => `malformed frame in append from ${m.from} at byte ${at}`);
          if (this.ring.termAt(index) !== this.header.term) {
            assert(index > this.committed, () => `conflict at committed index ${index} (commit ${this.committed})`);
            this.ring.truncateAfter(index - 1);
            this.stable = Math.min(this.stable, index - 1);
            break outer;
          }
          skip += 1;
          index += 1;
          at += length;
        }
      }
    }
    const appended = skip < entries.count ? this.ring.appendFrames(entries, skip) : 0;
    const lastNew = m.prevIndex + skip + appended;
    this.commitTo(Math.min(m.commit, lastNew));
    this.respondAppend(m.from, false, lastNew, 0, 0);
  }

  private respondAppend(to: NodeId, reject: boolean, index: number, hintIndex: number, hintTerm: number): void {
    this.send({ type: 'appendResponse', from: this.id, to, term: this.currentTerm, reject, index, hintIndex, hintTerm });
  }

  private handleHeartbeat(m: HeartbeatMessage): void {
    this.commitTo(m.commit);
    this.send({ type: 'heartbeatResponse', from: this.id, to: m.from, term: this.currentTerm, context: m.context });
  }

  /**
   * One chunk of InstallSnapshot (§7, Figure 13). Chunks are taken strictly in order: one that
   * starts past the bytes held is refused with the offset to resume from, one that starts before
   * them (a duplicate, or a retry that crossed our answer) is answered with that offset too. The
   * snapshot is installed only when the last chunk completes it; until then the log is untouched,
   * so a transfer cut short (leader change, crash) costs nothing but the bytes.
   */
  private handleSnapshot(m: SnapshotMessage): void {
    const snapshot = m.snapshot;
    if (snapshot.index <= this.committed) {
      this.snapshotAssembly = null;
      this.respondAppend(m.from, false, this.committed, 0, 0);
      return;
    }
    if (this.ring.termAt(snapshot.index) === snapshot.term) {
      // We already hold the snapshot's last entry: just move commit (etcd's fast-forward).
      this.snapshotAssembly = null;
      this.commitTo(snapshot.index);
      this.respondAppend(m.from, false, snapshot.index, 0, 0);
      return;
    }
    let assembly = this.snapshotAssembly;
    const sameTransfer =
      assembly !== null && assembly.from === m.from && assembly.term === m.term && assembly.index === snapshot.index && assembly.snapshotTerm === snapshot.term;
    if (!sameTransfer) {
      if (m.offset !== 0) {
        this.send({ type: 'snapshotResponse', from: this.id, to: m.from, term: this.currentTerm, index: snapshot.index, offset: 0, reject: true });
        return;
      }
      assembly = { from: m.from, term: m.term, index: snapshot.index, snapshotTerm: snapshot.term, peers: snapshot.peers, buffer: new Uint8Array(snapshot.data.length), length: 0 };
      this.snapshotAssembly = assembly;
    }
    assert(assembly !== null, 'snapshot assembly missing after start');
    if (m.offset !== assembly.length) {
      const reject = m.offset > assembly.length;
      this.send({ type: 'snapshotResponse', from: this.id, to: m.from, term: this.currentTerm, index: snapshot.index, offset: assembly.length, reject });
      return;
    }
    appendChunk(assembly, snapshot.data);
    if (!m.done) {
      this.send({ type: 'snapshotResponse', from: this.id, to: m.from, term: this.currentTerm, index: snapshot.index, offset: assembly.length, reject: false });
      return;
    }
    this.snapshotAssembly = null;
    const complete: Snapshot = { index: assembly.index, term: assembly.snapshotTerm, peers: assembly.peers, data: assembly.buffer.subarray(0, assembly.length) };
    // §7: discard the whole log and install the snapshot.
    this.ring.resetTo(complete.index, complete.term);
    this.committed = complete.index;
    this.stable = complete.index;
    this.snapshot = complete;
    this.incomingSnapshot = complete;
    this.respondAppend(m.from, false, complete.index, 0, 0);
  }

  private commitTo(index: number): void {
    if (index <= this.committed) return;
    assert(index <= this.ring.lastIndex, () => `commit ${index} past last index ${this.ring.lastIndex}`);
    this.committed = index;
  }

  // ---------------------------------------------------------------------------------------------
  // Leader side of replication (§5.3, §5.4.2).

  private proposeInner(data: Uint8Array): ProposeResult {
    if (this.currentRole !== 'leader') {
      if (this.leader === noNode) return { ok: false, reason: 'no-leader' };
      if (!this.config.forwardToLeader) return { ok: false, reason: 'not-leader', leaderId: this.leader };
      if (this.forwardQueue.length >= this.config.bounds.forwardCountMax) return { ok: false, reason: 'busy', leaderId: this.leader };
      if (data.length > this.config.bounds.entryBytesMax) return { ok: false, reason: 'too-large', leaderId: this.leader };
      this.forwardQueue.push(data);
      return { ok: true, status: 'forwarded', leaderId: this.leader };
    }
    const refusal = this.appendProposal(data);
    if (refusal !== null) return { ok: false, reason: refusal, leaderId: this.id };
    return { ok: true, status: 'appended', index: this.ring.lastIndex, term: this.currentTerm };
  }

  /** Appends one proposal at the leader; returns the refusal reason or null. */
  private appendProposal(data: Uint8Array): 'transferring' | 'busy' | 'too-large' | null {
    if (this.leadTransferee !== noNode) return 'transferring';
    const { entryBytesMax, uncommittedBytesMax } = this.config.bounds;
    if (data.length > entryBytesMax) return 'too-large';
    // Backpressure: bound the bytes appended but not committed. One entry always fits when
    // nothing is uncommitted, so a large entry cannot wedge the leader.
    const uncommitted = this.uncommittedBytes();
    if (uncommitted > 0 && uncommitted + frameBytes(this.currentTerm, data.length) > uncommittedBytesMax) return 'busy';
    if (!this.ring.append(this.currentTerm, entryKindCode.normal, data)) return 'busy';
    if (!this.anyOwed) this.oweAll(sendEntries);
    return null;
  }

  private uncommittedBytes(): number {
    const lastIndex = this.ring.lastIndex;
    const from = Math.max(this.committed + 1, this.ring.firstIndex);
    return from > lastIndex ? 0 : this.ring.bytesBetween(from, lastIndex);
  }

  private handleForwardedProposals(m: ProposeMessage): void {
    // Refused forwarded proposals are dropped: the client that sent them retries (Raft's clients
    // must retry anyway, §8).
    for (const data of m.data) this.appendProposal(data);
  }

  private handleAppendResponse(m: AppendResponseMessage): void {
    const pr = this.progress.get(m.from);
    if (pr === undefined) return;
    pr.recentActive = true;
    if (m.reject) {
      if (pr.maybeDecreaseTo(m.index, this.nextFromHint(m.index, m.hintIndex, m.hintTerm))) {
        if (pr.state === 'replicate') pr.becomeProbe();
        this.owe(m.from, sendEvenIfEmpty);
      }
      return;
    }
    const wasPaused = pr.isPaused();
    if (!pr.maybeUpdate(m.index)) {
      if (wasPaused && !pr.isPaused()) this.owe(m.from, sendEntries);
      return;
    }
    switch (pr.state) {
      case 'probe':
        pr.becomeReplicate();
        break;
      case 'snapshot':
        if (pr.match + 1 >= this.ring.firstIndex) {
          pr.becomeProbe();
          pr.becomeReplicate();
        }
        break;
      case 'replicate':
        pr.inflights.freeTo(m.index);
        break;
    }
    this.maybeCommit();
    if (pr.match < this.ring.lastIndex) this.owe(m.from, sendEntries);
    if (m.from === this.leadTransferee && pr.match === this.ring.lastIndex) this.sendTimeoutNow(m.from);
  }

  /**
   * Where to continue after a rejection at `rejected` with the follower's hint: if we hold entries
   * of the follower's conflicting term, continue after our last one; otherwise at the first index
   * the follower holds of that term; a follower whose log is too short gave its last index.
   */
  private nextFromHint(rejected: number, hintIndex: number, hintTerm: number): number {
    if (hintTerm === 0) return hintIndex + 1;
    const last = this.ring.lastIndexWithTermAtMost(hintTerm, rejected);
    if (last >= this.ring.firstIndex - 1 && this.ring.termAt(last) === hintTerm) return last + 1;
    return hintIndex;
  }

  private handleHeartbeatResponse(m: HeartbeatResponseMessage): void {
    const pr = this.progress.get(m.from);
    if (pr === undefined) return;
    pr.recentActive = true;
    pr.probeSent = false;
    if (pr.state === 'snapshot' && pr.snapshotChunkInflight && this.tickCount - pr.snapshotChunkSentTick >= this.snapshotRetryTicks()) {
      // The follower is alive but has not answered the chunk in flight for a while: assume it or
      // its answer was lost and send it again (from the offset last confirmed). A duplicate is
      // harmless: the follower answers it with the offset it holds.
      pr.snapshotChunkInflight = false;
    }
    // An append may have been lost with the inflight window full: free one slot so the stream
    // restarts (etcd does the same).
    if (pr.state === 'replicate' && pr.inflights.full()) pr.inflights.freeFirst();
    if (pr.match < this.ring.lastIndex) this.owe(m.from, sendEvenIfEmpty);
    if (m.context !== null) this.handleReadAck(m.from, m.context);
  }

  private handleCheckQuorum(): void {
    // Thesis §6.2: a leader that did not hear from a majority within an election timeout steps
    // down, so a partitioned leader stops serving (and stops accepting writes that cannot commit).
    let active = 1; // ourselves
    for (const pr of this.progress.values()) {
      if (pr.recentActive) active += 1;
      pr.recentActive = false;
    }
    if (active < majority(this.voterCount)) this.becomeFollower(this.currentTerm, noNode);
  }

  /** Figure 8 / §5.4.2: commit the highest index stored on a majority, only if it is of our term. */
  private maybeCommit(): boolean {
    let i = 0;
    this.matchScratch[i++] = this.stable;
    for (const peer of this.others) this.matchScratch[i++] = (this.progress.get(peer) as Progress).match;
    const index = quorumIndex(this.matchScratch, this.sortScratch);
    if (index <= this.committed) return false;
    if (this.ring.termAt(index) !== this.currentTerm && !this.config.plantedBugs.commitOlderTerms) return false;
    const firstCommitOfTerm = this.ring.termAt(this.committed) !== this.currentTerm;
    this.committed = index;
    this.oweAll(sendEvenIfEmpty);
    if (firstCommitOfTerm && this.readsBeforeCommit.length > 0) {
      const waiting = this.readsBeforeCommit.splice(0);
      for (const read of waiting) this.handleReadRequest(read.from, read.context);
    }
    return true;
  }

  private owe(peer: NodeId, kind: number): void {
    const current = this.owed.get(peer) ?? sendNone;
    if (kind > current) this.owed.set(peer, kind);
    this.anyOwed = true;
  }

  private oweAll(kind: number): void {
    for (const peer of this.others) this.owe(peer, kind);
  }

  /** Turns owed appends and queued forwards into messages (once per Ready: batching). */
  private flush(): void {
    if (this.anyOwed) {
      this.anyOwed = false;
      for (const [peer, kind] of this.owed) {
        if (kind !== sendNone) this.sendAppend(peer, kind === sendEvenIfEmpty);
      }
      this.owed.clear();
    }
    if (this.forwardQueue.length > 0) {
      if (this.currentRole !== 'leader' && this.leader !== noNode) {
        this.send({ type: 'propose', from: this.id, to: this.leader, term: this.currentTerm, data: this.forwardQueue.splice(0) });
      } else {
        // Leadership moved under the queue: the clients retry.
        this.forwardQueue.length = 0;
      }
    }
  }

  /** Sends `to` the entries it needs next, a snapshot chunk, or (if asked) an empty append for commit. */
  private sendAppend(to: NodeId, evenIfEmpty: boolean): void {
    const pr = this.progress.get(to);
    if (pr === undefined) return;
    if (pr.state === 'snapshot') {
      this.maybeSendSnapshotChunk(to, pr);
      return;
    }
    if (pr.isPaused()) return;
    const prevIndex = pr.next - 1;
    const prevTerm = this.ring.termAt(prevIndex);
    if (prevTerm < 0) {
      const snapshot = this.snapshot;
      assert(snapshot !== null, () => `follower ${to} needs compacted entries before ${this.ring.firstIndex} but no snapshot exists`);
      pr.becomeSnapshot(snapshot.index);
      this.maybeSendSnapshotChunk(to, pr);
      return;
    }
    const lastIndex = this.ring.lastIndex;
    let entries: EntryFrames;
    if (pr.next <= lastIndex) {
      const { appendBytesMax, appendCountMax, inflightBytesMax } = this.config.bounds;
      const budget = Math.max(1, Math.min(appendBytesMax, inflightBytesMax - pr.inflights.byteCount));
      entries = this.ring.frames(pr.next, this.ring.lastIndexWithin(pr.next, appendCountMax, budget));
    } else {
      if (!evenIfEmpty) return;
      entries = { count: 0, slices: [], byteLength: 0 };
    }
    this.send({ type: 'append', from: this.id, to, term: this.currentTerm, prevIndex, prevTerm, commit: this.committed, entries });
    if (entries.count > 0) pr.sentEntries(prevIndex + entries.count, entries.byteLength);
    else if (pr.state === 'probe') pr.probeSent = true;
  }

  /**
   * Sends the next chunk of the snapshot `to` needs, unless one is in flight: at most
   * snapshotChunkBytesMax data bytes from the offset the follower confirmed, a view of the
   * snapshot's data. A compaction since the transfer began restarts it with the newer snapshot.
   */
  private maybeSendSnapshotChunk(to: NodeId, pr: Progress): void {
    const snapshot = this.snapshot;
    assert(snapshot !== null, () => `follower ${to} in snapshot state but no snapshot exists`);
    if (snapshot.index !== pr.pendingSnapshot) pr.becomeSnapshot(snapshot.index);
    if (pr.snapshotChunkInflight) return;
    const total = snapshot.data.length;
    const offset = pr.snapshotOffset;
    assert(offset <= total, () => `follower ${to}: snapshot offset ${offset} past its ${total} bytes`);
    const end = Math.min(total, offset + this.config.bounds.snapshotChunkBytesMax);
    const chunk: Snapshot = { index: snapshot.index, term: snapshot.term, peers: snapshot.peers, data: snapshot.data.subarray(offset, end) };
    this.send({ type: 'snapshot', from: this.id, to, term: this.currentTerm, snapshot: chunk, offset, done: end === total });
    pr.sentSnapshotChunk(this.tickCount);
  }

  /** A follower's answer to a snapshot chunk that was not the last: send the next (or resend). */
  private handleSnapshotResponse(m: SnapshotResponseMessage): void {
    const pr = this.progress.get(m.from);
    if (pr === undefined) return;
    pr.recentActive = true;
    if (pr.maybeUpdateSnapshotOffset(m.index, m.offset, m.reject)) this.owe(m.from, sendEntries);
  }

  /** Ticks a snapshot chunk may go unanswered before it is sent again (two heartbeat rounds). */
  private snapshotRetryTicks(): number {
    return Math.max(2, 2 * this.config.heartbeatTicks);
  }

  private broadcastHeartbeat(context: string | null): void {
    for (const peer of this.others) {
      const pr = this.progress.get(peer) as Progress;
      // Never past the follower's match: it may not hold our entries beyond it yet.
      const commit = Math.min(pr.match, this.committed);
      this.send({ type: 'heartbeat', from: this.id, to: peer, term: this.currentTerm, commit, context });
    }
  }

  private sendTimeoutNow(to: NodeId): void {
    this.send({ type: 'timeoutNow', from: this.id, to, term: this.currentTerm });
  }

  // ---------------------------------------------------------------------------------------------
  // ReadIndex (thesis §6.4).

  private readIndexInner(context: string): RequestResult {
    if (this.currentRole !== 'leader') {
      if (this.leader === noNode) return { ok: false, reason: 'no-leader' };
      if (!this.config.forwardReads) return { ok: false, reason: 'not-leader', leaderId: this.leader };
      this.send({ type: 'readIndex', from: this.id, to: this.leader, term: this.currentTerm, context });
      return { ok: true };
    }
    if (this.pendingReadCount >= this.config.bounds.readsPendingMax) return { ok: false, reason: 'busy', leaderId: this.id };
    this.handleReadRequest(this.id, context);
    return { ok: true };
  }

  private handleReadRequest(from: NodeId, context: string): void {
    if (this.voterCount === 1) {
      this.releaseRead(from, context, this.committed);
      return;
    }
    // Step 1: the leader must have committed an entry of its term, so its commit index is at
    // least as high as any previous leader's.
    if (this.ring.termAt(this.committed) !== this.currentTerm) {
      if (this.readsBeforeCommit.length < this.config.bounds.readsPendingMax) this.readsBeforeCommit.push({ from, context });
      return;
    }
    if (this.pendingReads.length >= this.config.bounds.readsPendingMax) return;
    const key = `${from}:${context}`;
    if (this.pendingReadKeys.has(key)) return;
    // Step 2: record the commit index; step 3: confirm leadership with a heartbeat round.
    const read: PendingRead = { key, from, context, index: this.committed, acks: new Set([this.id]) };
    this.pendingReads.push(read);
    this.pendingReadKeys.set(key, read);
    this.broadcastHeartbeat(key);
  }

  private handleReadAck(from: NodeId, key: string): void {
    const read = this.pendingReadKeys.get(key);
    if (read === undefined) return;
    read.acks.add(from);
    if (read.acks.size < majority(this.voterCount)) return;
    // A quorum confirmed us as leader after this read arrived, hence after every earlier one too.
    while (this.pendingReads.length > 0) {
      const next = this.pendingReads.shift() as PendingRead;
      this.pendingReadKeys.delete(next.key);
      this.releaseRead(next.from, next.context, next.index);
      if (next === read) break;
    }
  }

  private releaseRead(from: NodeId, context: string, index: number): void {
    if (from === this.id) this.readStates.push({ index, context });
    else this.send({ type: 'readIndexResponse', from: this.id, to: from, term: this.currentTerm, context, index });
  }

  private newestReadKey(): string | null {
    const newest = this.pendingReads[this.pendingReads.length - 1];
    return newest === undefined ? null : newest.key;
  }

  // ---------------------------------------------------------------------------------------------
  // Leadership transfer (thesis §3.10).

  private transferInner(target: NodeId): RequestResult {
    if (this.currentRole !== 'leader') {
      if (this.leader === noNode) return { ok: false, reason: 'no-leader' };
      return { ok: false, reason: 'not-leader', leaderId: this.leader };
    }
    if (target === this.id) return { ok: true };
    const pr = this.progress.get(target);
    if (pr === undefined) return { ok: false, reason: 'unknown-node', leaderId: this.id };
    if (this.leadTransferee === target) return { ok: true };
    this.leadTransferee = target;
    // The transfer must finish within an election timeout (checked in tick).
    this.electionElapsed = 0;
    if (pr.match === this.ring.lastIndex) this.sendTimeoutNow(target);
    else this.owe(target, sendEntries);
    return { ok: true };
  }

  // ---------------------------------------------------------------------------------------------
  // Helpers.

  private stepLocal(type: 'beat' | 'checkQuorum'): void {
    this.stepInner({ type, from: this.id, to: this.id, term: 0 });
  }

  private send(message: RemoteMessage): void {
    this.outbox.push(message);
  }

  private peerKnown(id: NodeId): boolean {
    return id !== this.id && this.config.peers.includes(id);
  }

  private hardStateChanged(): boolean {
    const previous = this.previousHardState;
    return previous.term !== this.currentTerm || previous.vote !== this.votedFor || previous.commit !== this.committed;
  }

  private softStateChanged(): boolean {
    return this.previousSoftState.role !== this.currentRole || this.previousSoftState.leaderId !== this.leader;
  }

  private assertAcceptingInput(what: string): void {
    assert(this.outstanding === null, () => `${what}() while a Ready is outstanding: call advance() first`);
  }

  private restoreFrom(restore: PersistedState | null): void {
    if (restore === null) return;
    const snapshot = restore.snapshot ?? null;
    if (snapshot !== null) {
      this.ring.resetTo(snapshot.index, snapshot.term);
      this.snapshot = snapshot;
    }
    if (restore.entries !== undefined && restore.entries.count > 0) {
      const appended = this.ring.appendFrames(restore.entries);
      if (appended !== restore.entries.count) {
        throw new ConfigError('restore.entries', `only ${appended} of ${restore.entries.count} entries fit in logBytesMax`);
      }
    }
    const hard = restore.hardState;
    if (hard.commit > this.ring.lastIndex) {
      throw new ConfigError('restore.hardState.commit', `${hard.commit} past the last restored entry ${this.ring.lastIndex}`);
    }
    if (this.ring.lastTerm > hard.term) {
      throw new ConfigError('restore.hardState.term', `${hard.term} below the last entry's term ${this.ring.lastTerm}`);
    }
    this.currentTerm = hard.term;
    this.votedFor = hard.vote;
    this.committed = Math.max(hard.commit, snapshot?.index ?? 0);
    this.stable = this.ring.lastIndex;
    this.applied = restore.applied ?? snapshot?.index ?? 0;
    if (this.applied > this.committed) {
      throw new ConfigError('restore.applied', `${this.applied} past commit ${this.committed}`);
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Invariants.

  private verify(): void {
    if (this.config.verify) this.checkInvariants();
  }

  /** Checks every invariant of this node's state; throws AssertionError naming the values. */
  checkInvariants(): void {
    const lastIndex = this.ring.lastIndex;
    const snapshotIndex = Math.max(this.snapshot?.index ?? 0, this.incomingSnapshot?.index ?? 0);
    // Invariant: applied <= committed <= lastIndex.
    assert(this.applied <= this.committed, () => `node ${this.id}: applied ${this.applied} > commit ${this.committed}`);
    assert(this.committed <= lastIndex, () => `node ${this.id}: commit ${this.committed} > last index ${lastIndex}`);
    assert(this.stable <= lastIndex, () => `node ${this.id}: stable ${this.stable} > last index ${lastIndex}`);
    assert(this.committed >= this.ring.firstIndex - 1, () => `node ${this.id}: commit ${this.committed} below compacted prefix ${this.ring.firstIndex - 1}`);
    assert(this.ring.firstIndex - 1 <= Math.max(this.applied, snapshotIndex), () => `node ${this.id}: compacted through ${this.ring.firstIndex - 1}, applied ${this.applied}`);
    assert(this.ring.lastTerm <= this.currentTerm, () => `node ${this.id}: last entry term ${this.ring.lastTerm} > term ${this.currentTerm}`);
    assert(this.currentTerm >= 0, () => `node ${this.id}: term ${this.currentTerm} negative`);
    assert(this.votedFor === noNode || this.config.peers.includes(this.votedFor), () => `node ${this.id}: voted for unknown ${this.votedFor}`);
    switch (this.currentRole) {
      case 'leader': {
        assert(this.leader === this.id, () => `leader ${this.id} thinks leader is ${this.leader}`);
        assert(this.votedFor === this.id, () => `leader ${this.id} voted for ${this.votedFor}`);
        assert(this.progress.size === this.others.length, () => `leader ${this.id} tracks ${this.progress.size} followers, expected ${this.others.length}`);
        for (const [peer, pr] of this.progress) {
          assert(pr.match < pr.next, () => `leader ${this.id}: follower ${peer} match ${pr.match} >= next ${pr.next}`);
          assert(pr.match <= lastIndex, () => `leader ${this.id}: follower ${peer} match ${pr.match} > last ${lastIndex}`);
          assert(pr.next <= lastIndex + 1, () => `leader ${this.id}: follower ${peer} next ${pr.next} > last + 1 = ${lastIndex + 1}`);
          assert(pr.inflights.count <= this.config.bounds.inflightCountMax, () => `leader ${this.id}: follower ${peer} inflight ${pr.inflights.count} above bound`);
          assert(pr.state === 'replicate' || pr.inflights.count === 0, () => `leader ${this.id}: follower ${peer} in ${pr.state} with ${pr.inflights.count} inflight`);
          if (pr.state === 'snapshot') {
            assert(this.snapshot !== null, () => `leader ${this.id}: follower ${peer} in snapshot state without a snapshot`);
            assert(pr.pendingSnapshot > 0, () => `leader ${this.id}: follower ${peer} in snapshot state for index ${pr.pendingSnapshot}`);
            assert(pr.pendingSnapshot !== this.snapshot.index || pr.snapshotOffset <= this.snapshot.data.length, () => `leader ${this.id}: follower ${peer} snapshot offset ${pr.snapshotOffset} past ${this.snapshot?.data.length} bytes`);
          } else {
            assert(!pr.snapshotChunkInflight, () => `leader ${this.id}: follower ${peer} in ${pr.state} with a snapshot chunk in flight`);
          }
        }
        break;
      }
      case 'candidate':
        assert(this.votedFor === this.id, () => `candidate ${this.id} voted for ${this.votedFor}`);
        assert(this.leader === noNode, () => `candidate ${this.id} knows leader ${this.leader}`);
        break;
      case 'preCandidate':
        assert(this.leader === noNode, () => `pre-candidate ${this.id} knows leader ${this.leader}`);
        break;
      case 'follower':
        assert(this.leader !== this.id, () => `follower ${this.id} thinks it is the leader`);
        break;
      default:
        unreachable(this.currentRole, 'role');
    }
    if (this.currentRole !== 'leader') {
      assert(this.progress.size === 0, () => `${this.currentRole} ${this.id} tracks progress`);
      assert(this.leadTransferee === noNode, () => `${this.currentRole} ${this.id} transferring to ${this.leadTransferee}`);
      assert(this.pendingReads.length === 0, () => `${this.currentRole} ${this.id} holds ${this.pendingReads.length} pending reads`);
    }
    const assembly = this.snapshotAssembly;
    if (assembly !== null) {
      assert(this.currentRole === 'follower', () => `${this.currentRole} ${this.id} assembling a snapshot`);
      assert(assembly.term === this.currentTerm, () => `node ${this.id}: snapshot assembly of term ${assembly.term} in term ${this.currentTerm}`);
      assert(assembly.length <= assembly.buffer.length, () => `node ${this.id}: snapshot assembly holds ${assembly.length} of ${assembly.buffer.length} bytes`);
    }
    this.ring.checkInvariants();
  }
}

/** Copies `chunk` after the bytes `assembly` holds, growing its buffer by doubling. */
function appendChunk(assembly: SnapshotAssembly, chunk: Uint8Array): void {
  const needed = assembly.length + chunk.length;
  if (needed > assembly.buffer.length) {
    const grown = new Uint8Array(Math.max(needed, 2 * assembly.buffer.length));
    grown.set(assembly.buffer.subarray(0, assembly.length));
    assembly.buffer = grown;
  }
  assembly.buffer.set(chunk, assembly.length);
  assembly.length = needed;
}
