/**
 * RaftRuntime drives one RaftNode in real time: a timer feeds tick(), the transport feeds step(),
 * callers feed propose() and read(); every turn of the event loop ends in one Ready cycle, in the
 * order DESIGN.md fixes:
 *
 *   1. step every input that arrived since the last turn (messages, ticks, proposals, reads):
 *      proposals arriving in the same turn become one append, so one AppendEntries per follower;
 *   2. ready(); persist snapshot, hard state and entries (storage.save, fsync per policy) BEFORE
 *      anything that depends on them leaves;
 *   3. send the messages (a leader whose term and vote are already stable sends them before its
 *      own write completes, thesis §10.2.1: the core counts only its persisted index toward commit);
 *   4. apply committed entries to the state machine, resolve the callers' promises;
 *   5. serve reads released by ReadIndex once applied through their index;
 *   6. advance(); compact the log when the policy says so.
 *
 * While a cycle waits for storage, inputs queue up and are stepped in the next turn (the node
 * accepts no input between ready() and advance()): slow fsyncs turn into larger batches, which is
 * group commit for free.
 */
import { EventEmitter } from 'node:events';
import {
  EntryReader,
  type NodeId,
  RaftNode,
  type RaftConfig,
  copyFrames,
  type Ready,
  type RemoteMessage,
  type Role,
  entryKindCode,
} from '@raftlab/core';
import { MemoryStorage, type Storage } from '@raftlab/storage';
import { RuntimeError } from './errors.js';
import { type Logger, silentLogger } from './logger.js';
import type { StateMachine } from './state-machine.js';

/** What the runtime needs of a transport (the @raftlab/transport implementations provide it). */
export interface RuntimeTransport {
  /** Sends without blocking; the message's views may be used only during the call. */
  send(message: RemoteMessage): void;
  /** Registers the handler for inbound, already validated messages. */
  onMessage(handler: (message: RemoteMessage) => void): void;
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** How a read is served. */
export type ReadConsistency = 'linearizable' | 'lease' | 'stale';

/** When the runtime compacts its log (snapshot of the state machine, prefix released). */
export interface CompactionPolicy {
  /** Compact once this many applied entries are held in the log. */
  readonly entriesMin: number;
  /** ... or once they take this many bytes. */
  readonly bytesMin: number;
}

/** Options of a RaftRuntime. */
export interface RuntimeOptions<Result> {
  readonly id: NodeId;
  readonly peers: readonly NodeId[];
  readonly transport: RuntimeTransport;
  readonly stateMachine: StateMachine<Result>;
  /** Stable storage (default: in memory, not durable). */
  readonly storage?: Storage;
  /** RaftNode settings (election and heartbeat ticks, pre-vote, bounds...). */
  readonly raft?: Partial<Omit<RaftConfig, 'id' | 'peers' | 'restore'>>;
  /** Milliseconds per tick (default 10: with 20 election ticks, elections time out in 200-400 ms). */
  readonly tickIntervalMs?: number;
  /** Deadline of a proposal, from the call (default 5000). */
  readonly proposalTimeoutMs?: number;
  /** Deadline of a read (default 5000). */
  readonly readTimeoutMs?: number;
  /** Proposals waiting to be applied; beyond it propose() fails busy (default 1,000,000). */
  readonly pendingProposalsMax?: number;
  /** Log compaction (default: 50,000 entries or 64 MiB); false to never compact. */
  readonly compaction?: CompactionPolicy | false;
  /** Client-facing addresses of the nodes, reported in not-leader errors. */
  readonly addresses?: ReadonlyMap<NodeId, string>;
  /** Fraction of the election timeout kept as a margin for clock drift in lease reads (default 0.2). */
  readonly leaseDriftMargin?: number;
  /**
   * Hold a leader's empty AppendEntries (commit notices) back for one turn of the event loop, so
   * the next turn's appends can carry the commit index instead (default false; see `send`).
   */
  readonly holdCommitNotices?: boolean;
  readonly logger?: Logger;
}

/** Events a RaftRuntime emits. */
export interface RuntimeEvents {
  /** Role or leader changed. */
  role: [{ role: Role; term: number; leaderId: NodeId }];
  /** The commit index moved (only computed when someone listens). */
  commit: [{ commitIndex: number }];
  /** A fatal error (storage failure): the runtime stopped. */
  error: [Error];
}

/** A snapshot of the runtime's state, for status pages. */
export interface RuntimeStatus {
  readonly id: NodeId;
  readonly role: Role;
  readonly term: number;
  readonly leaderId: NodeId;
  readonly commitIndex: number;
  readonly appliedIndex: number;
  readonly lastIndex: number;
  readonly firstIndex: number;
  readonly peers: readonly NodeId[];
  readonly progress: ReturnType<RaftNode['progressStatus']>;
  readonly pendingProposals: number;
  readonly counters: RuntimeCounters;
}

/** Counters since start. */
export interface RuntimeCounters {
  proposals: number;
  proposalsApplied: number;
  proposalsFailed: number;
  reads: number;
  elections: number;
  turns: number;
  readyCycles: number;
  messagesSent: number;
  messagesReceived: number;
  entriesApplied: number;
  compactions: number;
  /** Snapshots received from a leader and installed (the state machine restored from them). */
  snapshotsInstalled: number;
}

interface Batch<Result> {
  readonly results: Result[];
  remaining: number;
  readonly deadline: number;
  settled: boolean;
  readonly resolve: (results: Result[]) => void;
  readonly reject: (error: RuntimeError) => void;
}

/** Entries first..last (one term) of one batch, at results[offset + index - first]. */
interface PendingRange<Result> {
  readonly first: number;
  readonly last: number;
  readonly term: number;
  readonly batch: Batch<Result>;
  readonly offset: number;
}

interface QueuedProposal<Result> {
  readonly items: readonly Uint8Array[];
  readonly batch: Batch<Result>;
}

interface PendingRead {
  readonly run: () => void;
  readonly fail: (error: RuntimeError) => void;
  readonly deadline: number;
}

interface ReadRound {
  readonly reads: PendingRead[];
  readonly startedAt: number;
  readonly wasLeader: boolean;
}

interface PendingTransfer {
  readonly target: NodeId;
  readonly deadline: number;
  readonly resolve: () => void;
  readonly reject: (error: RuntimeError) => void;
}

const defaultCompaction: CompactionPolicy = { entriesMin: 50_000, bytesMin: 64 * 1024 * 1024 };

/** One RaftNode driven in real time. */
export class RaftRuntime<Result = unknown> extends EventEmitter<RuntimeEvents> {
  /** The node (read-only use: its getters; every input goes through the runtime). */
  readonly node: RaftNode;
  readonly stateMachine: StateMachine<Result>;
  readonly storage: Storage;
  readonly transport: RuntimeTransport;
  readonly tickIntervalMs: number;
  private readonly logger: Logger;
  private readonly options: RuntimeOptions<Result>;
  private readonly reader = new EntryReader();

  private inbound: RemoteMessage[] = [];
  private ticksDue = 0;
  private proposals: QueuedProposal<Result>[] = [];
  private readsQueued: PendingRead[] = [];
  private transfersQueued: PendingTransfer[] = [];
  private readonly pendingRanges: PendingRange<Result>[] = [];
  private pendingHead = 0;
  private pendingEntryCount = 0;
  private readonly readRounds = new Map<string, ReadRound>();
  /** Reads released by ReadIndex, waiting for apply to reach their index (ascending). */
  private readonly readsAwaitingApply: { index: number; reads: PendingRead[] }[] = [];
  private readonly transfers: PendingTransfer[] = [];
  private readCounter = 0;
  private leaseUntil = 0;

  private turnScheduled = false;
  private cycling = false;
  private cycleDone: Promise<void> = Promise.resolve();
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;
  private lastRole: Role;
  private lastLeader: NodeId;
  private lastCommit = 0;
  /** Term and vote as last written to storage (a leader sends before persisting only while they hold). */
  private persistedTerm: number;
  private persistedVote: NodeId;
  /** Peers whose messages are dropped both ways (fault injection: a partition at the transport level). */
  private readonly blocked = new Set<NodeId>();
  /** Commit notices held back per peer (see `send`): the newest one, and the turn that held it. */
  private readonly heldNotices = new Map<NodeId, { readonly message: RemoteMessage; readonly turn: number }>();
  private readonly holdCommitNotices: boolean;
  private noticeFlushScheduled = false;
  /** Commit notices of the current Ready, sent once its callers have heard their results (see `send`). */
  private deferredNotices: RemoteMessage[] = [];
  /** Counters since start. */
  readonly counters: RuntimeCounters = {
    proposals: 0,
    proposalsApplied: 0,
    proposalsFailed: 0,
    reads: 0,
    elections: 0,
    turns: 0,
    readyCycles: 0,
    messagesSent: 0,
    messagesReceived: 0,
    entriesApplied: 0,
    compactions: 0,
    snapshotsInstalled: 0,
  };

  private constructor(options: RuntimeOptions<Result>, node: RaftNode, storage: Storage) {
    super();
    this.options = options;
    this.node = node;
    this.storage = storage;
    this.stateMachine = options.stateMachine;
    this.transport = options.transport;
    this.tickIntervalMs = options.tickIntervalMs ?? 10;
    this.holdCommitNotices = options.holdCommitNotices ?? false;
    this.logger = (options.logger ?? silentLogger).child({ node: options.id });
    this.lastRole = node.role;
    this.lastLeader = node.leaderId;
    const persisted = node.hardState();
    this.persistedTerm = persisted.term;
    this.persistedVote = persisted.vote;
  }

  /**
   * Loads persisted state, restores the state machine from the latest snapshot, starts the
   * transport and the tick timer. Committed entries after the snapshot are re-applied by the first
   * Ready cycles.
   */
  static async start<Result>(options: RuntimeOptions<Result>): Promise<RaftRuntime<Result>> {
    const tickIntervalMs = options.tickIntervalMs ?? 10;
    if (!(Number.isFinite(tickIntervalMs) && tickIntervalMs >= 1)) throw new RangeError(`tickIntervalMs must be at least 1, got ${tickIntervalMs}`);
    const storage = options.storage ?? new MemoryStorage();
    const restore = await storage.load();
    const node = new RaftNode({
      electionTimeoutTicks: 20,
      heartbeatTicks: 2,
      // The runtime answers not-leader itself (with the leader's address) instead of forwarding.
      forwardToLeader: false,
      ...options.raft,
      id: options.id,
      peers: options.peers,
      restore,
    });
    const snapshot = restore?.snapshot ?? null;
    if (snapshot !== null) options.stateMachine.restore(snapshot.data);
    const runtime = new RaftRuntime(options, node, storage);
    options.transport.onMessage((message) => runtime.onMessage(message));
    await options.transport.start();
    runtime.timer = setInterval(() => runtime.onTick(), tickIntervalMs);
    runtime.logger.info({ term: node.term, lastIndex: node.lastIndex, commit: node.commitIndex, snapshot: snapshot?.index ?? 0 }, 'raft node started');
    runtime.schedule();
    return runtime;
  }

  // ---------------------------------------------------------------------------------------------
  // Public API.

  /** Proposes one command; resolves with the state machine's result once applied here. */
  async propose(data: Uint8Array): Promise<Result> {
    const [result] = await this.proposeBatch([data]);
    return result as Result;
  }

  /** Proposes several commands in one append; resolves with their results once all are applied. */
  proposeBatch(items: readonly Uint8Array[]): Promise<Result[]> {
    return new Promise<Result[]>((resolve, reject) => {
      if (this.stopped) {
        reject(new RuntimeError('stopped', 'the node is stopped'));
        return;
      }
      if (this.pendingEntryCount + items.length > (this.options.pendingProposalsMax ?? 1_000_000)) {
        reject(new RuntimeError('busy', `${this.pendingEntryCount} proposals already pending`));
        return;
      }
      const batch: Batch<Result> = {
        results: new Array<Result>(items.length),
        remaining: items.length,
        deadline: performance.now() + (this.options.proposalTimeoutMs ?? 5000),
        settled: false,
        resolve,
        reject,
      };
      this.counters.proposals += items.length;
      if (items.length === 0) {
        resolve([]);
        return;
      }
      this.proposals.push({ items, batch });
      this.schedule();
    });
  }

  /**
   * Runs `query` against the state machine once it is safe for the consistency level:
   *  - linearizable (default): after a ReadIndex round confirms leadership and apply reaches the
   *    read index (thesis §6.4); works on followers too (the leader answers the read index);
   *  - lease: on the leader, without a round while its lease holds (thesis §6.4.1; needs
   *    check-quorum, and loses `leaseDriftMargin` of the election timeout to clock drift);
   *  - stale: at once, from local state, possibly behind.
   */
  read<T>(query: () => T, consistency: ReadConsistency = 'linearizable'): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      if (this.stopped) {
        reject(new RuntimeError('stopped', 'the node is stopped'));
        return;
      }
      this.counters.reads += 1;
      const pending: PendingRead = {
        run: () => {
          try {
            resolve(query());
          } catch (error) {
            reject(error);
          }
        },
        fail: reject,
        deadline: performance.now() + (this.options.readTimeoutMs ?? 5000),
      };
      if (consistency === 'stale') {
        pending.run();
        return;
      }
      if (consistency === 'lease' && this.node.role === 'leader' && this.node.transferee === 0 && performance.now() < this.leaseUntil) {
        this.whenApplied(this.node.commitIndex, pending);
        return;
      }
      this.readsQueued.push(pending);
      this.schedule();
    });
  }

  /** Hands leadership to `target`; resolves when this node sees `target` lead. */
  transferLeadership(target: NodeId, timeoutMs = this.electionTimeoutMs() * 2): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (this.stopped) {
        reject(new RuntimeError('stopped', 'the node is stopped'));
        return;
      }
      this.transfersQueued.push({ target, deadline: performance.now() + timeoutMs, resolve, reject });
      this.schedule();
    });
  }

  /** The node's state now. */
  status(): RuntimeStatus {
    const node = this.node;
    return {
      id: node.id,
      role: node.role,
      term: node.term,
      leaderId: node.leaderId,
      commitIndex: node.commitIndex,
      appliedIndex: node.appliedIndex,
      lastIndex: node.lastIndex,
      firstIndex: node.firstIndex,
      peers: node.config.peers,
      progress: node.progressStatus(),
      pendingProposals: this.pendingEntryCount,
      counters: { ...this.counters },
    };
  }

  /** The known leader's address (when addresses were given). */
  leaderAddress(): string | undefined {
    return this.options.addresses?.get(this.node.leaderId);
  }

  /** Election timeout in milliseconds (the base; randomized up to twice that). */
  electionTimeoutMs(): number {
    return this.node.config.electionTimeoutTicks * this.tickIntervalMs;
  }

  /**
   * Fault injection for tests, the console and the nemesis: drop every message to and from these
   * peers, as a network partition would (Raft's retries recover once healed).
   */
  partition(peers: Iterable<NodeId>): void {
    this.blocked.clear();
    for (const peer of peers) if (peer !== this.node.id) this.blocked.add(peer);
    this.logger.info({ blocked: [...this.blocked] }, this.blocked.size === 0 ? 'partition healed' : 'partitioned from peers');
  }

  /** Ends a partition made by partition(). */
  heal(): void {
    this.partition([]);
  }

  /** Peers currently cut off by partition(). */
  get partitionedFrom(): readonly NodeId[] {
    return [...this.blocked];
  }

  /** True once stop() was called. */
  get isStopped(): boolean {
    return this.stopped;
  }

  /**
   * Stops: no new input, pending callers rejected with `stopped`, the running Ready cycle
   * finished, then the transport and storage closed (storage.close makes written data durable).
   */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.heldNotices.clear();
    this.deferredNotices = [];
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    await this.cycleDone;
    this.failEverything(new RuntimeError('stopped', 'the node stopped'));
    await this.transport.stop();
    await this.storage.close();
    this.logger.info({ term: this.node.term, commit: this.node.commitIndex }, 'raft node stopped');
  }

  // ---------------------------------------------------------------------------------------------
  // Inputs.

  private onMessage(message: RemoteMessage): void {
    if (this.stopped) return;
    if (message.to !== this.node.id) {
      this.logger.warn({ to: message.to, from: message.from, type: message.type }, 'dropping a message addressed to another node');
      return;
    }
    if (this.blocked.has(message.from)) return;
    this.counters.messagesReceived += 1;
    if (!this.cycling && this.inbound.length === 0) {
      // Step at once: the views the message carries (a sender's ring, a transport's receive
      // buffer) are only valid during this call. The Ready cycle still runs once per turn.
      this.node.step(message);
      this.schedule();
      return;
    }
    // The node is between ready() and advance() (or a turn is about to run): keep a copy.
    this.inbound.push(message.type === 'append' && message.entries.count > 0 ? { ...message, entries: copyFrames(message.entries) } : message);
    this.schedule();
  }

  private onTick(): void {
    this.ticksDue += 1;
    this.expireDeadlines(performance.now());
    this.schedule();
  }

  private schedule(): void {
    if (this.turnScheduled || this.cycling || this.stopped) return;
    this.turnScheduled = true;
    setImmediate(() => this.turn());
  }

  // ---------------------------------------------------------------------------------------------
  // The turn.

  private turn(): void {
    this.turnScheduled = false;
    if (this.stopped || this.cycling) return;
    this.counters.turns += 1;
    const node = this.node;
    for (; this.ticksDue > 0; this.ticksDue -= 1) node.tick();
    if (this.inbound.length > 0) {
      const inbound = this.inbound;
      this.inbound = [];
      for (const message of inbound) node.step(message);
    }
    if (this.proposals.length > 0) this.proposeQueued();
    if (this.readsQueued.length > 0) this.startReadRound();
    if (this.transfersQueued.length > 0) this.startTransfers();
    if (node.hasReady()) {
      this.cycling = true;
      this.cycleDone = this.cycle().then(
        () => {
          this.cycling = false;
          if (this.hasQueuedInput() || this.node.hasReady()) this.schedule();
        },
        (error: unknown) => {
          this.cycling = false;
          this.fail(error instanceof Error ? error : new Error(String(error)));
        },
      );
    }
    // Notices held in an earlier turn that no append of this turn replaced (see `send`).
    if (this.heldNotices.size > 0) this.sendHeldNotices(this.counters.turns);
  }

  private hasQueuedInput(): boolean {
    return this.inbound.length > 0 || this.ticksDue > 0 || this.proposals.length > 0 || this.readsQueued.length > 0 || this.transfersQueued.length > 0;
  }

  private proposeQueued(): void {
    const node = this.node;
    const queued = this.proposals;
    this.proposals = [];
    for (const { items, batch } of queued) {
      if (batch.settled) continue;
      const first = 0;
      let firstIndex = 0;
      let term = 0;
      for (let i = 0; i < items.length; i++) {
        const result = node.propose(items[i] as Uint8Array);
        if (!result.ok) {
          if (i > first) this.addRange(firstIndex, firstIndex + (i - first) - 1, term, batch, first);
          this.settle(batch, this.refusal(result.reason));
          break;
        }
        if (result.status !== 'appended') throw new Error('runtime nodes do not forward proposals');
        if (i === first) {
          firstIndex = result.index;
          term = result.term;
        }
        if (i === items.length - 1) this.addRange(firstIndex, result.index, term, batch, first);
      }
    }
  }

  private refusal(reason: 'no-leader' | 'not-leader' | 'transferring' | 'busy' | 'too-large'): RuntimeError {
    switch (reason) {
      case 'no-leader':
        return new RuntimeError('not-leader', 'no leader is known (an election is under way)', 0);
      case 'not-leader':
        return new RuntimeError('not-leader', `node ${this.node.id} is not the leader; node ${this.node.leaderId} is`, this.node.leaderId, this.leaderAddress());
      case 'transferring':
        return new RuntimeError('busy', 'leadership transfer in progress');
      case 'busy':
        return new RuntimeError('busy', 'too many uncommitted bytes at the leader');
      case 'too-large':
        return new RuntimeError('too-large', `command larger than entryBytesMax ${this.node.config.bounds.entryBytesMax}`);
    }
  }

  private addRange(first: number, last: number, term: number, batch: Batch<Result>, offset: number): void {
    this.pendingRanges.push({ first, last, term, batch, offset });
    this.pendingEntryCount += last - first + 1;
  }

  private startReadRound(): void {
    const reads = this.readsQueued;
    this.readsQueued = [];
    const context = `r${++this.readCounter}`;
    const result = this.node.readIndex(context);
    if (!result.ok) {
      const error =
        result.reason === 'busy'
          ? new RuntimeError('busy', 'too many reads pending at the leader')
          : new RuntimeError('not-leader', 'no leader is known to serve the read', result.leaderId ?? 0, this.leaderAddress());
      for (const read of reads) read.fail(error);
      return;
    }
    this.readRounds.set(context, { reads, startedAt: performance.now(), wasLeader: this.node.role === 'leader' });
  }

  private startTransfers(): void {
    const transfers = this.transfersQueued;
    this.transfersQueued = [];
    for (const transfer of transfers) {
      if (this.node.leaderId === transfer.target) {
        transfer.resolve();
        continue;
      }
      const result = this.node.transferLeadership(transfer.target);
      if (!result.ok) {
        transfer.reject(
          result.reason === 'unknown-node'
            ? new RuntimeError('not-leader', `node ${transfer.target} is not a peer`)
            : new RuntimeError('not-leader', 'only the leader can transfer leadership', result.leaderId ?? 0, this.leaderAddress()),
        );
        continue;
      }
      this.transfers.push(transfer);
    }
  }

  // ---------------------------------------------------------------------------------------------
  // The Ready cycle.

  private async cycle(): Promise<void> {
    const node = this.node;
    const ready = node.ready();
    this.counters.readyCycles += 1;
    // 2-3. Persist BEFORE sending anything that depends on it, then send. A leader whose term and
    // vote are already on stable storage sends first and writes its log in parallel (thesis
    // §10.2.1): its messages do not depend on its own log being durable, because the core counts
    // only the leader's persisted index (stableIndex) toward a commit quorum.
    const hardState = ready.hardState;
    const sendFirst =
      node.role === 'leader' && ready.snapshot === null && (hardState === null || (hardState.term === this.persistedTerm && hardState.vote === this.persistedVote));
    if (sendFirst) this.send(ready.messages);
    if (hardState !== null || ready.entries.count > 0 || ready.snapshot !== null) {
      await this.storage.save(ready);
      if (hardState !== null) {
        this.persistedTerm = hardState.term;
        this.persistedVote = hardState.vote;
      }
    }
    if (ready.snapshot !== null) {
      this.stateMachine.restore(ready.snapshot.data);
      this.counters.snapshotsInstalled += 1;
      this.logger.info({ index: ready.snapshot.index, term: ready.snapshot.term }, 'snapshot installed from the leader');
      this.failPendingThrough(ready.snapshot.index);
    }
    if (!sendFirst) this.send(ready.messages);
    // 4. Apply and resolve; then the commit notices (see `send`).
    if (ready.committedEntries.count > 0) this.applyCommitted(ready);
    if (this.deferredNotices.length > 0) process.nextTick(() => this.sendDeferredNotices());
    // 5. Reads.
    for (const state of ready.readStates) {
      const round = this.readRounds.get(state.context);
      if (round === undefined) continue;
      this.readRounds.delete(state.context);
      if (round.wasLeader && node.role === 'leader') {
        // A quorum heard from us after startedAt: no other leader before startedAt + election timeout.
        this.leaseUntil = Math.max(this.leaseUntil, round.startedAt + this.electionTimeoutMs() * (1 - (this.options.leaseDriftMargin ?? 0.2)));
      }
      for (const read of round.reads) this.whenApplied(state.index, read);
    }
    if (ready.softState !== null) this.onSoftState();
    node.advance(ready);
    this.releaseAppliedReads();
    if (this.listenerCount('commit') > 0 && node.commitIndex !== this.lastCommit) {
      this.lastCommit = node.commitIndex;
      this.emit('commit', { commitIndex: node.commitIndex });
    }
    await this.maybeCompact();
  }

  /**
   * Sends a Ready's messages, except a leader's commit notices, which wait a little.
   *
   * When a leader's commit index moves, the core sends every follower an AppendEntries without
   * entries, only to carry the new commit index; each follower answers it. On loopback each message
   * is a write system call of some 20-40 µs that wakes another process, and in the Ready that
   * commits a proposal these sends came before the apply that settles it: two of them sat between
   * the quorum's answer and the caller's result. Two policies:
   *
   * By default the notices are deferred to a process.nextTick queued after the apply, which runs
   * once the microtask queue is empty: the proposers' promise reactions (an HTTP answer, a client's
   * next step) run first, and the notices still leave in the same turn of the event loop, before any
   * further input is read: whoever reacts to a result through I/O sees the followers informed as
   * before; only code reacting inside that microtask run sees the notices not yet sent.
   *
   * With `holdCommitNotices`, a leader's empty append is held, one per peer (the newest: the commit
   * index only grows), and:
   *  - dropped when an append with entries goes to that peer (every append carries the leader's
   *    commit index, so it says the same and more: under load no notice is ever sent);
   *  - sent just before any other message to that peer;
   *  - otherwise sent one turn of the event loop later: at the end of the next turn when one runs
   *    (a proposal that arrived meanwhile has had its append sent by then), or by an immediate
   *    callback when no turn is due. So a follower learns a commit a few microseconds later than
   *    before, never a tick later, also while the leader waits for a slow fsync.
   * Holding or dropping a message is what a slow or lossy network does, which Raft tolerates (§5.3);
   * the leader's own commit does not depend on the notices, only followers' apply does. It is off by
   * default because the one-turn delay is visible in one process: a client of the leader can hear
   * its write acknowledged (and act, e.g. cut a follower off) before that turn passes, where without
   * holding the follower already knew the commit. Across processes the two always race.
   */
  private send(messages: readonly RemoteMessage[]): void {
    const blocked = this.blocked;
    const held = this.heldNotices;
    const leader = this.node.role === 'leader';
    const hold = this.holdCommitNotices && leader;
    let sent = 0;
    for (let i = 0; i < messages.length; i++) {
      const message = messages[i] as RemoteMessage;
      if (blocked.size > 0 && blocked.has(message.to)) continue;
      if (message.type === 'append' && leader) {
        if (message.entries.count === 0) {
          if (!hold) {
            this.deferredNotices.push(message);
            continue;
          }
          held.set(message.to, { message, turn: this.counters.turns });
          if (!this.noticeFlushScheduled) {
            this.noticeFlushScheduled = true;
            setImmediate(() => this.onNoticeFlush());
          }
          continue;
        }
        if (held.size > 0) held.delete(message.to);
      } else if (held.size > 0) {
        const notice = held.get(message.to);
        if (notice !== undefined) {
          held.delete(message.to);
          this.transport.send(notice.message);
          sent += 1;
        }
      }
      this.transport.send(message);
      sent += 1;
    }
    this.counters.messagesSent += sent;
  }

  /** Sends the notices `send` deferred (they carry no views: sending them after advance() is safe). */
  private sendDeferredNotices(): void {
    const notices = this.deferredNotices;
    this.deferredNotices = [];
    if (this.stopped) return;
    for (const notice of notices) {
      if (this.blocked.has(notice.to)) continue;
      this.transport.send(notice);
      this.counters.messagesSent += 1;
    }
  }

  /** The immediate after a notice was held: a turn about to run sends it (or its append does); else send now. */
  private onNoticeFlush(): void {
    this.noticeFlushScheduled = false;
    if (this.stopped || this.turnScheduled) return;
    this.sendHeldNotices(Number.POSITIVE_INFINITY);
  }

  /** Sends the commit notices held back by `send` in turns before `turn`. */
  private sendHeldNotices(turn: number): void {
    const blocked = this.blocked;
    for (const [peer, notice] of this.heldNotices) {
      if (notice.turn >= turn) continue;
      this.heldNotices.delete(peer);
      if (blocked.has(peer)) continue;
      this.transport.send(notice.message);
      this.counters.messagesSent += 1;
    }
  }

  private applyCommitted(ready: Ready): void {
    const reader = this.reader.reset(ready.committedEntries);
    const machine = this.stateMachine;
    let index = ready.committedEntries.firstIndex;
    const ranges = this.pendingRanges;
    while (reader.next()) {
      const current = index++;
      let range = this.pendingHead < ranges.length ? ranges[this.pendingHead] : undefined;
      // Ranges wholly below this index were settled (or skipped by a snapshot).
      while (range !== undefined && range.last < current) range = this.popRange();
      if (reader.kind !== entryKindCode.normal) {
        if (range !== undefined && range.first <= current) this.dropRange(range, current);
        continue;
      }
      const result = machine.apply(current, reader.data());
      this.counters.entriesApplied += 1;
      if (range === undefined || range.first > current) continue;
      if (reader.term !== range.term) {
        this.dropRange(range, current);
        continue;
      }
      const batch = range.batch;
      if (!batch.settled) {
        batch.results[range.offset + current - range.first] = result;
        batch.remaining -= 1;
        if (batch.remaining === 0) {
          batch.settled = true;
          this.counters.proposalsApplied += batch.results.length;
          batch.resolve(batch.results);
        }
      }
      if (current === range.last) this.popRange();
    }
  }

  /** The entry at `index` is not the one proposed: the proposals in this range will never apply. */
  private dropRange(range: PendingRange<Result>, index: number): void {
    this.settle(range.batch, new RuntimeError('dropped', `leadership changed: entry ${index} holds another leader's command`));
    this.popRange();
  }

  private popRange(): PendingRange<Result> | undefined {
    const ranges = this.pendingRanges;
    const range = ranges[this.pendingHead];
    if (range !== undefined) this.pendingEntryCount -= range.last - range.first + 1;
    this.pendingHead += 1;
    if (this.pendingHead > 1024 && this.pendingHead * 2 > ranges.length) {
      ranges.splice(0, this.pendingHead);
      this.pendingHead = 0;
    }
    return this.pendingHead < ranges.length ? ranges[this.pendingHead] : undefined;
  }

  private failPendingThrough(index: number): void {
    // A snapshot replaced entries we proposed: their outcome is unknown here.
    let range = this.pendingHead < this.pendingRanges.length ? this.pendingRanges[this.pendingHead] : undefined;
    while (range !== undefined && range.first <= index) {
      this.settle(range.batch, new RuntimeError('timeout', `a snapshot through ${index} replaced the log: outcome unknown, retry with the same session`));
      range = this.popRange();
    }
  }

  private settle(batch: Batch<Result>, error: RuntimeError): void {
    if (batch.settled) return;
    batch.settled = true;
    this.counters.proposalsFailed += batch.results.length;
    batch.reject(error);
  }

  private whenApplied(index: number, read: PendingRead): void {
    if (this.node.appliedIndex >= index) {
      read.run();
      return;
    }
    const waiting = this.readsAwaitingApply;
    const last = waiting[waiting.length - 1];
    if (last !== undefined && last.index === index) last.reads.push(read);
    else if (last === undefined || last.index < index) waiting.push({ index, reads: [read] });
    else {
      const at = waiting.findIndex((entry) => entry.index >= index);
      if ((waiting[at] as { index: number }).index === index) (waiting[at] as { reads: PendingRead[] }).reads.push(read);
      else waiting.splice(at, 0, { index, reads: [read] });
    }
  }

  private releaseAppliedReads(): void {
    const applied = this.node.appliedIndex;
    const waiting = this.readsAwaitingApply;
    let released = 0;
    while (released < waiting.length && (waiting[released] as { index: number }).index <= applied) released += 1;
    if (released === 0) return;
    for (const entry of waiting.splice(0, released)) for (const read of entry.reads) read.run();
  }

  private onSoftState(): void {
    const node = this.node;
    const role = node.role;
    const leaderId = node.leaderId;
    if (role !== this.lastRole || leaderId !== this.lastLeader) {
      if (role === 'leader' && this.lastRole !== 'leader') this.counters.elections += 1;
      this.logger.debug({ role, term: node.term, leaderId, previousRole: this.lastRole, previousLeader: this.lastLeader }, role === this.lastRole ? 'leader changed' : `became ${role}`);
      if (role === 'leader' && this.lastRole !== 'leader') this.logger.info({ term: node.term }, 'elected leader');
      if (this.lastRole === 'leader' && role !== 'leader') {
        this.leaseUntil = 0;
        this.logger.info({ term: node.term, leaderId }, 'lost leadership');
      }
      if (leaderId !== this.lastLeader) {
        // Read rounds in flight were tied to the old leadership: they fail fast and may be retried.
        const error = new RuntimeError('not-leader', `leader changed from ${this.lastLeader} to ${leaderId}`, leaderId, this.options.addresses?.get(leaderId));
        for (const round of this.readRounds.values()) for (const read of round.reads) read.fail(error);
        this.readRounds.clear();
        for (let i = this.transfers.length - 1; i >= 0; i--) {
          const transfer = this.transfers[i] as PendingTransfer;
          if (transfer.target === leaderId) {
            transfer.resolve();
            this.transfers.splice(i, 1);
          }
        }
      }
      this.lastRole = role;
      this.lastLeader = leaderId;
      this.emit('role', { role, term: node.term, leaderId });
    }
  }

  private async maybeCompact(): Promise<void> {
    const policy = this.options.compaction === undefined ? defaultCompaction : this.options.compaction;
    if (policy === false) return;
    const node = this.node;
    const applied = node.appliedIndex;
    const held = applied - node.firstIndex + 1;
    if (held <= 0) return;
    if (held < policy.entriesMin && node.log.byteLength < policy.bytesMin) return;
    node.compact(applied, this.stateMachine.snapshot());
    this.counters.compactions += 1;
    const snapshot = node.latestSnapshot;
    if (snapshot !== null) await this.storage.saveSnapshot(snapshot);
  }

  private expireDeadlines(now: number): void {
    const ranges = this.pendingRanges;
    for (let i = this.pendingHead; i < ranges.length; i++) {
      const batch = (ranges[i] as PendingRange<Result>).batch;
      if (batch.deadline > now) break;
      this.settle(batch, new RuntimeError('timeout', 'the command was not applied in time (it may still commit: retry with the same session)'));
    }
    for (const [context, round] of this.readRounds) {
      const expired = round.reads.filter((read) => read.deadline <= now);
      if (expired.length === 0) continue;
      for (const read of expired) read.fail(new RuntimeError('timeout', 'the read index was not confirmed in time', this.node.leaderId, this.leaderAddress()));
      if (expired.length === round.reads.length) this.readRounds.delete(context);
      else round.reads.splice(0, round.reads.length, ...round.reads.filter((read) => read.deadline > now));
    }
    for (let i = this.transfers.length - 1; i >= 0; i--) {
      const transfer = this.transfers[i] as PendingTransfer;
      if (transfer.deadline > now) continue;
      transfer.reject(new RuntimeError('timeout', `leadership did not move to ${transfer.target} in time`, this.node.leaderId, this.leaderAddress()));
      this.transfers.splice(i, 1);
    }
  }

  private failEverything(error: RuntimeError): void {
    for (const { batch } of this.proposals) this.settle(batch, error);
    this.proposals = [];
    for (let i = this.pendingHead; i < this.pendingRanges.length; i++) this.settle((this.pendingRanges[i] as PendingRange<Result>).batch, error);
    this.pendingRanges.length = 0;
    this.pendingHead = 0;
    this.pendingEntryCount = 0;
    for (const read of this.readsQueued) read.fail(error);
    this.readsQueued = [];
    for (const round of this.readRounds.values()) for (const read of round.reads) read.fail(error);
    this.readRounds.clear();
    for (const entry of this.readsAwaitingApply) for (const read of entry.reads) read.fail(error);
    this.readsAwaitingApply.length = 0;
    for (const transfer of [...this.transfersQueued, ...this.transfers]) transfer.reject(error);
    this.transfersQueued = [];
    this.transfers.length = 0;
  }

  private fail(error: Error): void {
    this.logger.error({ err: error }, 'fatal error in the Ready cycle: stopping the node');
    void this.stop();
    this.emit('error', error);
  }
}
