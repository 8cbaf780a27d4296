/**
 * SimCluster: real RaftNodes driven in virtual ticks through the simulated network, with crash and
 * restart, log compaction, leadership transfers, and clients issuing i64 sum commands. One Prng
 * (forked into independent streams) decides everything, so a seed replays event for event.
 *
 * An event is one input to one node (a tick, a delivered message, a client's proposal, a
 * compaction, a transfer request, a restart) followed by the node's Ready cycles until it has no
 * more work, handled exactly as the Ready contract says (ready.ts): persist snapshot, hard state and
 * entries; send messages; apply committed entries; advance. The safety checker runs after every
 * event.
 *
 * Crash and restart: a node keeps on its simulated disk what the Ready contract says was persisted
 * (hard state, entries replacing from entries.firstIndex, snapshots, plus the snapshots it takes
 * itself when compacting). Each Ready's hard state and entries are one write (a save batch, as in
 * the WAL); a write is durable once synced. The driver syncs a Ready that must sync before sending
 * its messages, except a leader with leaderParallelWrite, which sends first and syncs after (thesis
 * §10.2.1; the core counts the leader's own entries only once advance() says they are stable). A
 * write that needs no sync (a commit-only hard state) waits for the next sync. With storage faults,
 * a crash keeps a random prefix of the unsynced writes and loses the rest, the first lost one
 * perhaps torn (recovery drops a torn batch, as WalStorage does). The checker hears of a write when
 * it becomes durable. A crash loses everything else (role, leader, progress, queued forwards, the
 * state machine); a restart builds a new RaftNode from the disk with `restore` and rebuilds the
 * machine from the snapshot plus the committed entries the node hands out again.
 *
 * Order within a tick: faults, restarts and compactions; every live node ticks; clients act;
 * messages due this tick are delivered (a message sent with delay 0 lands later in the same tick).
 */
import {
  AssertionError,
  EntryReader,
  type EntryRange,
  type HardState,
  I64SumMachine,
  type NodeId,
  type Prng,
  type RaftConfig,
  RaftNode,
  type Ready,
  type RemoteMessage,
  type Snapshot,
  assert,
  describeMessage,
  decodeSumCommand,
  describeReady,
  encodeSumCommand,
  entryKindCode,
  framesOf,
  validateFrames,
} from '@raftlab/core';
import { SafetyChecker, SafetyViolation, type ViolationKind } from './checker.js';
import { type ClientReply, type ClientRequest, type Envelope, SimNetwork } from './network.js';
import { type FaultProfile, type PartitionKind, reliableNetwork } from './profile.js';

/** Bugs a run can plant: three in the core (config.plantedBugs) and two in the simulator's driver. */
export const plantedBugNames = ['commitOlderTerms', 'voteWithoutLogCheck', 'voteTwice', 'forgetVoteOnRestart', 'keepEntryViews', 'ackBeforeSync'] as const;

/**
 * A planted bug:
 *  - commitOlderTerms, voteWithoutLogCheck, voteTwice: the core's test-only switches (config.ts);
 *  - forgetVoteOnRestart: the driver restarts a node with vote 0, as if votedFor were not persisted;
 *  - keepEntryViews: the network keeps AppendEntries' raw ring views instead of copying them;
 *  - ackBeforeSync: every node sends a Ready's messages (votes, acknowledgements) before syncing its
 *    writes, so a crash in between loses what it acknowledged (the Ready contract broken).
 */
export type PlantedBugName = (typeof plantedBugNames)[number];

/** Where commands come from. */
export interface CommandSource {
  /** The next command's text, or null when there is none (for now or for good). */
  next(prng: Prng): string | null;
  /** True when no command will ever come again. */
  readonly exhausted: boolean;
}

/** A line of the event trace. */
export type TraceSink = (line: string) => void;

/** What a SimCluster is built from. */
export interface ClusterOptions {
  readonly nodeCount: number;
  readonly profile: FaultProfile;
  /** The run's generator; the cluster forks its own streams from it. */
  readonly prng: Prng;
  readonly planted: ReadonlySet<PlantedBugName>;
  /** Run the core's checkInvariants after every input (RaftConfig.verify). */
  readonly verify: boolean;
  /** Run the safety checker after every event. */
  readonly check: boolean;
  readonly commands: CommandSource;
  readonly trace: TraceSink | null;
  /**
   * Validate inbound AppendEntries frames as a transport does (default true). Off only to prove
   * that the safety checkers catch corrupted entries on their own.
   */
  readonly validateInbound?: boolean;
  /** Nodes down for the whole run (simulate's permanent faults). */
  readonly downForever?: readonly NodeId[];
  /** Links cut for the whole run, as groups: nodes in different groups cannot talk. */
  readonly partitionForever?: readonly (readonly NodeId[])[];
}

/** One Ready's write (a save batch): its hard state and entries, copied. */
interface PendingWrite {
  readonly hardState: HardState | null;
  readonly firstIndex: number;
  readonly frames: readonly Uint8Array[];
}

/** What a node persisted, per the Ready contract. */
interface Disk {
  /** Durable (synced) state: what a crash cannot take. */
  hardState: HardState;
  snapshot: Snapshot | null;
  /** Frames of the entries after `base`, one copy each. */
  entries: Uint8Array[];
  /** Index the entries follow (the snapshot's index, or 0). */
  base: number;
  /** Writes not yet synced, oldest first. */
  pending: PendingWrite[];
}

/** One simulated server: a RaftNode (null while crashed), its disk and its state machine. */
export class SimNode {
  raft: RaftNode | null = null;
  machine = new I64SumMachine();
  readonly disk: Disk = { hardState: { term: 0, vote: 0, commit: 0 }, snapshot: null, entries: [], base: 0, pending: [] };
  /** clientId -> the sequence this node owes an answer for, once applied. */
  readonly waiting = new Map<number, number>();
  /** Tick at which a crashed node comes back (0: not scheduled). */
  restartAt = 0;
  /** Down for the whole run. */
  downForever = false;
  constructor(readonly id: NodeId) {}
}

/** One client: at most one outstanding command, retried until answered. */
interface Client {
  readonly id: number;
  /** The outstanding (or last) command's sequence; 0 before the first. */
  sequence: number;
  data: Uint8Array;
  state: 'idle' | 'waiting' | 'backoff';
  /** Waiting: when to give up and retry. Backoff: when to retry. */
  deadline: number;
  /** Last node a refusal named as leader (0: none). */
  leaderHint: NodeId;
}

/** Counters a run reports. */
export interface ClusterStats {
  /** Tick at which some node first became leader (null: never). */
  firstLeaderTick: number | null;
  commandsIssued: number;
  commandsAcknowledged: number;
  clientRetries: number;
  clientRefusals: number;
  /** Commands refused for good (too large for any entry). */
  commandsRejected: number;
  crashes: number;
  restarts: number;
  partitions: number;
  compactions: number;
  snapshotsInstalled: number;
  transfers: number;
  /** InstallSnapshot chunks sent. */
  snapshotChunksSent: number;
  /** Unsynced writes lost in crashes (storage faults). */
  writesLost: number;
  /** Of those, torn ones. */
  writesTorn: number;
}

/** Bound on Ready cycles one event may cause (more means a node that never settles). */
const readyCyclesPerEventMax = 10_000;

export class SimCluster {
  /** The current tick. */
  now = 0;
  /** Events so far. */
  events = 0;
  readonly nodes: SimNode[] = [];
  readonly network: SimNetwork;
  readonly checker: SafetyChecker | null;
  readonly stats: ClusterStats = {
    firstLeaderTick: null,
    commandsIssued: 0,
    commandsAcknowledged: 0,
    clientRetries: 0,
    clientRefusals: 0,
    commandsRejected: 0,
    crashes: 0,
    restarts: 0,
    partitions: 0,
    compactions: 0,
    snapshotsInstalled: 0,
    transfers: 0,
    snapshotChunksSent: 0,
    writesLost: 0,
    writesTorn: 0,
  };
  /** Highest log index at which an acknowledged command was applied. */
  acknowledgedIndexMax = 0;
  /** Faults are injected while true; heal() ends them for good. */
  faultsActive = true;
  /** New commands are issued while true. */
  issuing = true;

  private readonly peers: readonly NodeId[];
  private readonly networkPrng: Prng;
  private readonly faultPrng: Prng;
  private readonly clientPrng: Prng;
  private readonly seedPrng: Prng;
  private readonly clients: Client[] = [];
  /** clientId -> sequence -> index at which the command was first applied. */
  private readonly firstApplied = new Map<number, number[]>();
  private readonly reader = new EntryReader();
  private partitionHealAt = 0;
  private downCount = 0;
  private readonly profile: FaultProfile;
  private readonly trace: TraceSink | null;

  constructor(private readonly options: ClusterOptions) {
    const { nodeCount, profile, prng } = options;
    assert(Number.isInteger(nodeCount) && nodeCount >= 1, () => `nodeCount ${nodeCount}`);
    this.profile = profile;
    this.trace = options.trace;
    this.peers = Array.from({ length: nodeCount }, (_, i) => i + 1);
    this.networkPrng = prng.fork();
    this.faultPrng = prng.fork();
    this.clientPrng = prng.fork();
    this.seedPrng = prng.fork();
    this.network = new SimNetwork(nodeCount, this.networkPrng, profile.network, options.planted.has('keepEntryViews'));
    this.checker = options.check ? new SafetyChecker(this.peers, this) : null;
    this.reapplyPermanentPartition();
    const downForever = new Set(options.downForever ?? []);
    for (const id of this.peers) {
      const node = new SimNode(id);
      this.nodes.push(node);
      if (downForever.has(id)) {
        node.downForever = true;
        continue;
      }
      node.raft = new RaftNode(this.nodeConfig(id, null));
    }
    for (let i = 0; i < profile.workload.clientCount; i++) {
      this.clients.push({ id: i + 1, sequence: 0, data: new Uint8Array(0), state: 'idle', deadline: 0, leaderHint: 0 });
    }
  }

  /** The current tick (RunClock). */
  get tick(): number {
    return this.now;
  }

  private nodeConfig(id: NodeId, restore: RaftConfig['restore']): RaftConfig {
    const node = this.profile.node;
    const planted = this.options.planted;
    return {
      id,
      peers: this.peers,
      electionTimeoutTicks: node.electionTimeoutTicks,
      heartbeatTicks: node.heartbeatTicks,
      preVote: node.preVote,
      checkQuorum: node.checkQuorum,
      forwardToLeader: node.forwardToLeader,
      seed: this.seedPrng.nextUint32(),
      verify: this.options.verify,
      bounds: node.bounds,
      restore: restore ?? null,
      plantedBugs: {
        commitOlderTerms: planted.has('commitOlderTerms'),
        voteWithoutLogCheck: planted.has('voteWithoutLogCheck'),
        voteTwice: planted.has('voteTwice'),
      },
    };
  }

  /** The node with `id`. */
  node(id: NodeId): SimNode {
    const node = this.nodes[id - 1];
    assert(node !== undefined, () => `no node ${id}`);
    return node;
  }

  /** Live nodes. */
  liveNodes(): SimNode[] {
    return this.nodes.filter((node) => node.raft !== null);
  }

  /** A live leader whose term is the highest among live nodes, or 0. */
  currentLeader(): NodeId {
    let highest = 0;
    for (const node of this.nodes) if (node.raft !== null && node.raft.term > highest) highest = node.raft.term;
    for (const node of this.nodes) {
      if (node.raft !== null && node.raft.role === 'leader' && node.raft.term === highest) return node.id;
    }
    return 0;
  }

  /** True when no client has a command outstanding. */
  clientsIdle(): boolean {
    return this.clients.every((client) => client.state === 'idle');
  }

  // ---------------------------------------------------------------------------------------------
  // The tick loop.

  /** Advances one tick: faults, node ticks, clients, deliveries. */
  runTick(): void {
    this.now += 1;
    if (this.faultsActive) this.injectFaults();
    for (const node of this.nodes) {
      if (node.raft === null && node.restartAt !== 0 && node.restartAt <= this.now) this.restart(node);
    }
    this.compactUnderPressure();
    // Rotate who ticks first so no node always wins ties.
    const count = this.nodes.length;
    const start = this.now % count;
    for (let i = 0; i < count; i++) {
      const node = this.nodes[(start + i) % count] as SimNode;
      if (node.raft !== null) this.tickNode(node, node.raft);
    }
    this.clientsAct();
    this.network.deliverDue(this.now, (envelope) => this.deliver(envelope));
    if (this.stats.firstLeaderTick === null && this.nodes.some((node) => node.raft?.role === 'leader')) {
      this.stats.firstLeaderTick = this.now;
    }
  }

  /** Ends the fault phase: every link restored, every crashed node restarted, a reliable network. */
  heal(): void {
    this.faultsActive = false;
    this.partitionHealAt = 0;
    this.network.healLinks();
    this.reapplyPermanentPartition();
    // Healed means Raft's timing requirement holds (§5.6): a round trip well within an election timeout.
    const network = this.profile.network;
    const spreadMax = Math.floor(this.profile.node.electionTimeoutTicks / 4);
    this.network.profile = reliableNetwork(0, Math.min(network.delayTicks + network.delaySpreadTicks, spreadMax));
    this.traceLine(`t${this.now} heal: links restored, network reliable, crashed nodes restart`);
    for (const node of this.nodes) if (node.raft === null && !node.downForever) this.restart(node);
  }

  private reapplyPermanentPartition(): void {
    const groups = this.options.partitionForever ?? [];
    for (const groupA of groups) {
      for (const groupB of groups) {
        if (groupA === groupB) continue;
        for (const a of groupA) for (const b of groupB) this.network.setBlocked(a, b, true);
      }
    }
  }

  private traceLine(line: string): void {
    if (this.trace !== null) this.trace(line);
  }

  // ---------------------------------------------------------------------------------------------
  // Events. Each: count it, trace it, apply the input, drain Ready, check.

  private beginEvent(node: SimNode, what: () => string): void {
    this.events += 1;
    if (this.trace !== null) this.trace(`t${this.now} #${this.events} n${node.id} ${what()}`);
  }

  private endEvent(raft: RaftNode): void {
    const node = this.node(raft.id);
    this.drain(node, raft);
    // A crash point inside the Ready cycle may have taken the node down.
    if (this.checker !== null && node.raft === raft) this.checker.afterEvent(raft);
  }

  private tickNode(node: SimNode, raft: RaftNode): void {
    this.beginEvent(node, () => 'tick');
    raft.tick();
    this.endEvent(raft);
  }

  private deliver(envelope: Envelope): void {
    switch (envelope.kind) {
      case 'raft':
        this.deliverRaft(envelope.message);
        return;
      case 'request':
        this.handleRequest(envelope);
        return;
      case 'reply':
        this.handleReply(envelope);
        return;
    }
  }

  private deliverRaft(message: RemoteMessage): void {
    const node = this.node(message.to);
    const raft = node.raft;
    this.network.countDelivery(raft !== null);
    if (raft === null) return;
    this.beginEvent(node, () => `deliver ${describeMessage(message)}`);
    if (message.type === 'append' && message.entries.count > 0 && this.options.validateInbound !== false) {
      // What a transport checks on every inbound AppendEntries. In memory, frames can only be
      // malformed if the bytes under a lent view changed in flight.
      const problem = validateFrames(message.entries, message.term);
      if (problem !== null) this.fail('malformed-entry', `append ${message.from}->${message.to} t${message.term} carries malformed frames: ${problem}`);
    }
    raft.step(message);
    this.endEvent(raft);
  }

  private drain(node: SimNode, raft: RaftNode): void {
    let cycles = 0;
    while (raft.hasReady()) {
      assert(++cycles <= readyCyclesPerEventMax, () => `node ${raft.id}: more than ${readyCyclesPerEventMax} Ready cycles in one event`);
      const ready = raft.ready();
      if (this.trace !== null) this.trace(`    ready ${describeReady(ready)}`);
      if (this.handleReady(node, raft, ready) === 'crashed') return; // the RaftNode is gone, Ready and all
      raft.advance(ready);
    }
  }

  /**
   * A crash point in a Ready cycle that must sync: before persisting (the cycle is lost whole:
   * nothing persisted, nothing sent), after writing but before the sync completes (the writes are
   * in flight: with storage faults only a prefix may survive), after syncing but before sending,
   * or after sending but before applying. A leader writing in parallel sends before it syncs, so
   * its beforeSync point comes after sending.
   */
  private maybeCrashPoint(ready: Ready): 'beforePersist' | 'beforeSync' | 'beforeSend' | 'afterSend' | null {
    if (!this.faultsActive || !ready.mustSync || this.downCount >= this.profile.faults.downCountMax) return null;
    const prng = this.faultPrng;
    if (!prng.chance(this.profile.faults.crashAfterSyncRate)) return null;
    const roll = prng.nextInt(4);
    return roll === 0 ? 'beforePersist' : roll === 1 ? 'beforeSync' : roll === 2 ? 'beforeSend' : 'afterSend';
  }

  private crashInReady(node: SimNode, when: string): 'crashed' {
    this.crash(node, this.now + this.faultPrng.nextRange(1, this.profile.faults.downTicksMax), when);
    return 'crashed';
  }

  private handleReady(node: SimNode, raft: RaftNode, ready: Ready): 'crashed' | 'done' {
    const disk = node.disk;
    const crashPoint = this.maybeCrashPoint(ready);
    if (crashPoint === 'beforePersist') return this.crashInReady(node, 'before persisting');
    // BEFORE sending: persist snapshot, hard state and entries.
    if (ready.snapshot !== null) {
      // Written atomically and synced (temp file, fsync, rename): earlier writes are synced first.
      this.sync(node);
      const snapshot = ready.snapshot;
      disk.snapshot = snapshot;
      disk.base = snapshot.index;
      disk.entries = [];
      node.machine = new I64SumMachine();
      node.machine.restore(snapshot.data);
      this.stats.snapshotsInstalled += 1;
      if (this.checker !== null) this.checker.onSnapshotInstalled(node.id, snapshot, node.machine.value);
      for (const clientId of [...node.waiting.keys()]) this.maybeAnswer(node, clientId);
    }
    if (ready.hardState !== null || ready.entries.count > 0) {
      disk.pending.push({ hardState: ready.hardState, firstIndex: ready.entries.firstIndex, frames: this.copyFrames(ready.entries) });
    }
    // A leader may send before its own write is synced (thesis §10.2.1), as long as the Ready
    // changes no term or vote: those must be durable before any message that depends on them.
    const termOrVoteChanged = ready.hardState !== null && (ready.hardState.term !== disk.hardState.term || ready.hardState.vote !== disk.hardState.vote);
    const parallel =
      this.options.planted.has('ackBeforeSync') ||
      (this.profile.faults.leaderParallelWrite && raft.role === 'leader' && ready.snapshot === null && !termOrVoteChanged);
    if (!parallel) {
      if (crashPoint === 'beforeSync') return this.crashInReady(node, 'after writing, before the sync completed');
      if (ready.mustSync) this.sync(node);
      if (crashPoint === 'beforeSend') return this.crashInReady(node, 'after persisting, before sending');
    }
    // AFTER persisting: send.
    for (const message of ready.messages) {
      if (message.type === 'snapshot') this.stats.snapshotChunksSent += 1;
      const outcome = this.network.sendRaft(message, this.now);
      if (this.trace !== null && outcome === 'lost') this.trace(`    lost ${describeMessage(message)}`);
    }
    if (parallel) {
      if (crashPoint === 'beforeSync') return this.crashInReady(node, 'after writing and sending, before the sync completed');
      if (ready.mustSync) this.sync(node);
    }
    if (crashPoint === 'afterSend') return this.crashInReady(node, 'after sending, before applying');
    // AFTER persisting: apply.
    const committed = ready.committedEntries;
    if (committed.count > 0) this.apply(node, committed);
    return 'done';
  }

  /** One copy of each frame of `entries` (the write's bytes; the Ready's views die at advance). */
  private copyFrames(entries: EntryRange): Uint8Array[] {
    const frames: Uint8Array[] = [];
    const reader = this.reader.reset(entries);
    while (reader.next()) frames.push(reader.bytes.slice(reader.frameOffset, reader.frameOffset + reader.frameLength));
    return frames;
  }

  /** Makes `node`'s pending writes durable, in order, and tells the checker. */
  private sync(node: SimNode): void {
    this.makeDurable(node, node.disk.pending.length);
  }

  /** Makes the first `count` pending writes durable and forgets the rest. */
  private makeDurable(node: SimNode, count: number): void {
    const disk = node.disk;
    const writes = disk.pending.splice(0);
    for (let i = 0; i < count; i++) {
      const write = writes[i] as PendingWrite;
      if (write.hardState !== null) {
        disk.hardState = write.hardState;
        if (this.checker !== null) this.checker.onHardStatePersisted(node.id, write.hardState.term, write.hardState.vote, write.hardState.commit);
      }
      if (write.frames.length > 0) {
        const keep = write.firstIndex - 1 - disk.base;
        assert(keep >= 0 && keep <= disk.entries.length, () => `persist from ${write.firstIndex}: disk holds ${disk.base + 1}..${disk.base + disk.entries.length}`);
        disk.entries.length = keep;
        for (const frame of write.frames) disk.entries.push(frame);
        if (this.checker !== null) this.checker.onEntriesPersisted({ id: node.id, term: node.raft?.term ?? 0 }, { ...framesOf(write.frames), firstIndex: write.firstIndex });
      }
    }
  }

  private apply(node: SimNode, committed: EntryRange): void {
    const reader = this.reader.reset(committed);
    const checker = this.checker;
    let index = committed.firstIndex;
    while (reader.next()) {
      if (checker !== null) checker.onApplying(node.id, index, reader.bytes, reader.frameOffset, reader.frameLength);
      if (reader.kind === entryKindCode.normal) {
        const result = node.machine.apply(reader.data());
        if (result.status === 'applied' || result.status === 'invalid') {
          this.noteFirstApplied(node.id, result.clientId, result.sequence, index);
        } else if (result.status === 'duplicate' && this.firstAppliedIndex(result.clientId, result.sequence) === undefined) {
          this.fail('exactly-once', `node ${node.id} treats ${result.clientId}/${result.sequence} at index ${index} as a duplicate of a command never applied`);
        }
        if (result.clientId !== 0) this.maybeAnswer(node, result.clientId);
      }
      if (checker !== null) checker.onApplied(node.id, index, node.machine.value);
      index += 1;
    }
  }

  private firstAppliedIndex(clientId: number, sequence: number): number | undefined {
    return this.firstApplied.get(clientId)?.[sequence];
  }

  private noteFirstApplied(id: NodeId, clientId: number, sequence: number, index: number): void {
    let list = this.firstApplied.get(clientId);
    if (list === undefined) {
      list = [];
      this.firstApplied.set(clientId, list);
    }
    const known = list[sequence];
    if (known === undefined) list[sequence] = index;
    else if (known !== index) this.fail('exactly-once', `node ${id} applied command ${clientId}/${sequence} at index ${index}; it was first applied at ${known}`);
  }

  /** Answers the client waiting at `node`, once the node's machine has applied its command. */
  private maybeAnswer(node: SimNode, clientId: number): void {
    const sequence = node.waiting.get(clientId);
    if (sequence === undefined || node.machine.lastSequence(clientId) < sequence) return;
    node.waiting.delete(clientId);
    this.network.sendClient({ kind: 'reply', from: node.id, clientId, sequence, done: true, refusal: null, leaderHint: 0 }, this.now);
  }

  private fail(kind: ViolationKind, message: string): never {
    throw new SafetyViolation(kind, message, this.now, this.events);
  }

  // ---------------------------------------------------------------------------------------------
  // Clients.

  private clientsAct(): void {
    const prng = this.clientPrng;
    const workload = this.profile.workload;
    for (const client of this.clients) {
      switch (client.state) {
        case 'idle': {
          if (!this.issuing || !prng.chance(workload.commandRate)) break;
          const text = this.options.commands.next(prng);
          if (text === null) break;
          client.sequence += 1;
          client.data = encodeSumCommand({ clientId: client.id, sequence: client.sequence, text });
          this.stats.commandsIssued += 1;
          this.sendRequest(client, prng.nextRange(1, this.peers.length));
          break;
        }
        case 'waiting':
          if (this.now >= client.deadline) {
            this.stats.clientRetries += 1;
            this.sendRequest(client, prng.nextRange(1, this.peers.length));
          }
          break;
        case 'backoff':
          if (this.now >= client.deadline) {
            const hinted = client.leaderHint !== 0 && prng.chance(0.5);
            this.sendRequest(client, hinted ? client.leaderHint : prng.nextRange(1, this.peers.length));
          }
          break;
      }
    }
  }

  private sendRequest(client: Client, to: NodeId): void {
    client.state = 'waiting';
    client.deadline = this.now + this.profile.workload.retryTimeoutTicks;
    this.network.sendClient({ kind: 'request', to, clientId: client.id, sequence: client.sequence, data: client.data }, this.now);
  }

  private handleRequest(request: ClientRequest): void {
    const node = this.node(request.to);
    const raft = node.raft;
    if (raft === null) return;
    const { clientId, sequence } = request;
    if (node.machine.lastSequence(clientId) >= sequence) {
      // Already applied here: answer at once (the retry of an applied command).
      this.network.sendClient({ kind: 'reply', from: node.id, clientId, sequence, done: true, refusal: null, leaderHint: 0 }, this.now);
      return;
    }
    this.beginEvent(node, () => {
      const text = decodeSumCommand(request.data)?.text ?? '';
      return `propose client ${clientId}/${sequence} ${JSON.stringify(text.length > 40 ? `${text.slice(0, 40)}...(${text.length})` : text)}`;
    });
    const result = raft.propose(request.data);
    // Wait before draining: a single-node cluster commits and applies within this very event.
    if (result.ok) node.waiting.set(clientId, sequence);
    this.endEvent(raft);
    if (node.raft !== raft) return; // crashed in the Ready cycle: the client times out and retries
    if (!result.ok) {
      this.traceLine(`    refused ${result.reason}${result.leaderId === undefined ? '' : ` leader=${result.leaderId}`}`);
      this.network.sendClient({ kind: 'reply', from: node.id, clientId, sequence, done: false, refusal: result.reason, leaderHint: result.leaderId ?? 0 }, this.now);
    }
  }

  private handleReply(reply: ClientReply): void {
    const client = this.clients[reply.clientId - 1];
    assert(client !== undefined, () => `reply for unknown client ${reply.clientId}`);
    if (client.state === 'idle' || reply.sequence !== client.sequence) return; // stale or duplicate answer
    if (!reply.done && reply.refusal === 'too-large') {
      // Final: this command can never be appended. The client moves on to its next one.
      this.stats.commandsRejected += 1;
      client.state = 'idle';
      return;
    }
    if (!reply.done) {
      this.stats.clientRefusals += 1;
      client.state = 'backoff';
      client.deadline = this.now + this.clientPrng.nextRange(1, 3);
      client.leaderHint = reply.leaderHint;
      return;
    }
    const index = this.firstAppliedIndex(reply.clientId, reply.sequence);
    if (index === undefined) this.fail('exactly-once', `client ${reply.clientId} was told ${reply.sequence} is done, but no node applied it`);
    this.traceLine(`t${this.now} client ${reply.clientId}/${reply.sequence} acknowledged by n${reply.from} (index ${index})`);
    client.state = 'idle';
    this.stats.commandsAcknowledged += 1;
    if (index > this.acknowledgedIndexMax) this.acknowledgedIndexMax = index;
  }

  // ---------------------------------------------------------------------------------------------
  // Faults.

  private injectFaults(): void {
    const prng = this.faultPrng;
    const faults = this.profile.faults;
    if (this.partitionHealAt !== 0 && this.now >= this.partitionHealAt) {
      this.network.healLinks();
      this.reapplyPermanentPartition();
      this.partitionHealAt = 0;
      this.traceLine(`t${this.now} partition healed`);
    } else if (this.partitionHealAt === 0 && prng.chance(faults.partitionRate)) {
      this.startPartition(prng.pick(faults.partitionKinds));
      this.partitionHealAt = this.now + prng.nextRange(1, faults.partitionTicksMax);
    }
    if (prng.chance(faults.clogRate)) {
      const a = prng.nextRange(1, this.peers.length);
      const until = this.now + prng.nextRange(1, faults.clogTicksMax);
      if (prng.chance(0.5)) {
        for (const b of this.peers) {
          this.network.clog(a, b, until);
          this.network.clog(b, a, until);
        }
        this.traceLine(`t${this.now} clog all links of n${a} until t${until}`);
      } else {
        const b = prng.nextRange(1, this.peers.length);
        this.network.clog(a, b, until);
        this.traceLine(`t${this.now} clog n${a}->n${b} until t${until}`);
      }
    }
    if (this.downCount < faults.downCountMax && prng.chance(faults.crashRate)) {
      const live = this.liveNodes();
      if (live.length > 0) this.crash(prng.pick(live), this.now + prng.nextRange(1, faults.downTicksMax));
    }
    if (prng.chance(faults.transferRate)) {
      const leader = this.currentLeader();
      if (leader !== 0 && this.peers.length > 1) {
        let target = prng.nextRange(1, this.peers.length - 1);
        if (target >= leader) target += 1;
        const node = this.node(leader);
        const raft = node.raft as RaftNode;
        this.stats.transfers += 1;
        this.beginEvent(node, () => `transfer leadership to n${target}`);
        raft.transferLeadership(target);
        this.endEvent(raft);
      }
    }
    if (faults.compactRate > 0) {
      for (const node of this.nodes) {
        if (node.raft !== null && prng.chance(faults.compactRate)) this.compact(node, node.raft);
      }
    }
  }

  private startPartition(kind: PartitionKind): void {
    const prng = this.faultPrng;
    const ids = [...this.peers];
    // Fisher-Yates with the fault stream: a random arrangement of the nodes.
    for (let i = ids.length - 1; i > 0; i--) {
      const j = prng.nextInt(i + 1);
      [ids[i], ids[j]] = [ids[j] as NodeId, ids[i] as NodeId];
    }
    const cutBetween = (a: readonly NodeId[], b: readonly NodeId[]): void => {
      for (const x of a) {
        for (const y of b) {
          this.network.setBlocked(x, y, true);
          this.network.setBlocked(y, x, true);
        }
      }
    };
    let description: string;
    switch (kind) {
      case 'isolate': {
        const [alone, ...rest] = ids as [NodeId, ...NodeId[]];
        cutBetween([alone], rest);
        description = `isolate n${alone}`;
        break;
      }
      case 'split': {
        const size = prng.nextRange(1, Math.max(1, Math.floor((ids.length - 1) / 2)));
        const minority = ids.slice(0, size);
        cutBetween(minority, ids.slice(size));
        description = `split minority [${minority.join(',')}] from the rest`;
        break;
      }
      case 'bridge': {
        // Two sides that cannot talk, and one node that talks to both (can cause leader flapping).
        const bridge = ids[0] as NodeId;
        const rest = ids.slice(1);
        const half = Math.max(1, Math.floor(rest.length / 2));
        cutBetween(rest.slice(0, half), rest.slice(half));
        description = `bridge n${bridge} between [${rest.slice(0, half).join(',')}] and [${rest.slice(half).join(',')}]`;
        break;
      }
      case 'oneWay': {
        // One node hears everyone but nobody hears it, or the other way round.
        const node = ids[0] as NodeId;
        const outbound = prng.chance(0.5);
        for (const other of ids.slice(1)) {
          if (outbound) this.network.setBlocked(node, other, true);
          else this.network.setBlocked(other, node, true);
        }
        description = outbound ? `n${node} cannot send` : `n${node} cannot receive`;
        break;
      }
      case 'random': {
        for (const a of ids) for (const b of ids) if (a !== b && prng.chance(0.3)) this.network.setBlocked(a, b, true);
        description = 'random one-way links cut';
        break;
      }
    }
    this.stats.partitions += 1;
    this.traceLine(`t${this.now} partition: ${description}`);
  }

  /**
   * Crashes `node`: only its disk survives. Unsynced writes survive too, unless the profile has
   * storage faults: then a random prefix of them reached the disk, the rest is lost, and the first
   * lost one may have been torn (recovery drops a torn save batch whole).
   */
  crash(node: SimNode, restartAt: number, when = 'between events'): void {
    assert(node.raft !== null, () => `crash of n${node.id}, already down`);
    if (this.checker !== null) this.checker.onCrash(node.id);
    const pending = node.disk.pending.length;
    let survive = pending;
    if (pending > 0 && this.profile.faults.storageFaults) {
      survive = this.faultPrng.nextInt(pending + 1);
      if (survive < pending) {
        const torn = this.faultPrng.chance(this.profile.faults.tornWriteRate);
        this.stats.writesLost += pending - survive;
        if (torn) this.stats.writesTorn += 1;
        this.traceLine(`t${this.now} n${node.id} crash loses ${pending - survive} of ${pending} unsynced writes${torn ? ' (the first torn, dropped by recovery)' : ''}`);
      }
    }
    this.makeDurable(node, survive);
    node.raft = null;
    node.waiting.clear();
    node.restartAt = restartAt;
    this.downCount += 1;
    this.stats.crashes += 1;
    this.events += 1;
    this.traceLine(`t${this.now} #${this.events} n${node.id} crash ${when} (restart at t${restartAt})`);
  }

  /** Restarts a crashed node from its disk. */
  restart(node: SimNode): void {
    assert(node.raft === null, () => `restart of n${node.id}, already up`);
    const disk = node.disk;
    const hardState = this.options.planted.has('forgetVoteOnRestart') ? { ...disk.hardState, vote: 0 } : disk.hardState;
    const raft = new RaftNode(this.nodeConfig(node.id, { hardState, snapshot: disk.snapshot, entries: framesOf(disk.entries) }));
    const machine = new I64SumMachine();
    if (disk.snapshot !== null) machine.restore(disk.snapshot.data);
    node.raft = raft;
    node.machine = machine;
    node.restartAt = 0;
    this.downCount -= 1;
    this.stats.restarts += 1;
    this.beginEvent(node, () => `restart from disk: ${hardState.term}/${hardState.vote}/${hardState.commit}, snapshot ${disk.snapshot?.index ?? 0}, entries ${disk.base + 1}..${disk.base + disk.entries.length}`);
    if (this.checker !== null) this.checker.onRestart(raft, machine.value);
    this.endEvent(raft);
  }

  /** Compacts `node`'s log through its applied index with the machine's snapshot (§7). */
  private compact(node: SimNode, raft: RaftNode): void {
    const index = raft.appliedIndex;
    if (index < raft.firstIndex) return;
    this.stats.compactions += 1;
    this.beginEvent(node, () => `compact through ${index}`);
    raft.compact(index, node.machine.snapshot());
    const snapshot = raft.latestSnapshot;
    assert(snapshot !== null && snapshot.index === index, () => `compact(${index}) left snapshot ${snapshot?.index}`);
    // The snapshot is persisted (and earlier writes synced) before the entries it covers are
    // released from disk.
    this.sync(node);
    const disk = node.disk;
    disk.entries.splice(0, index - disk.base);
    disk.snapshot = snapshot;
    disk.base = index;
    this.endEvent(raft);
  }

  /** The driver's duty with a bounded ring: compact before the log fills it. */
  private compactUnderPressure(): void {
    const logBytesMax = this.profile.node.bounds.logBytesMax;
    if (logBytesMax === undefined) return;
    for (const node of this.nodes) {
      const raft = node.raft;
      if (raft !== null && raft.log.byteLength > logBytesMax / 2) this.compact(node, raft);
    }
  }

  /** Runs the end-of-run audit on every live node. */
  audit(): void {
    if (this.checker === null) return;
    for (const node of this.nodes) if (node.raft !== null) this.checker.audit(node.raft);
  }
}

/** Converts anything a run threw into a violation (a core assertion is one too). */
export function asViolation(error: unknown, tick: number, events: number): SafetyViolation {
  if (error instanceof SafetyViolation) return error;
  if (error instanceof AssertionError) return new SafetyViolation('core-assertion', error.message, tick, events);
  const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  return new SafetyViolation('core-assertion', message, tick, events);
}
