/**
 * One Raft node in this process: a RaftRuntime with its transport, storage and state machine (the
 * i64 sum of the simulator, or the benchmarks' counter), and what `raftlab node` and the in-process
 * memory cluster both need on top: proposing text commands, a status report, partition and heal,
 * and a graceful stop that hands leadership over first so the cluster does not wait out an election
 * timeout.
 */
import { randomInt } from 'node:crypto';
import { type NodeId, encodeSumCommand } from '@raftlab/core';
import { CounterMachine, type Logger, RaftRuntime, RuntimeError, type RuntimeTransport, type StateMachine, type SumResult, SumStateMachine, silentLogger } from '@raftlab/runtime';
import type { Storage } from '@raftlab/storage';
import type { TransportStats } from '@raftlab/transport';
import type { MachineState, NodeReport, ProposeResult, ProposeSession } from './control.js';

/** The state machines a node can run. */
export const machineKinds = ['sum', 'counter'] as const;
/** One of machineKinds. */
export type MachineKind = (typeof machineKinds)[number];

/** Options of RunningNode.start. */
export interface RunningNodeOptions {
  readonly id: NodeId;
  readonly peers: readonly NodeId[];
  readonly transport: RuntimeTransport & { stats(): TransportStats };
  /** Default: in memory. */
  readonly storage?: Storage;
  readonly machine?: MachineKind;
  readonly tickIntervalMs?: number;
  readonly electionTimeoutTicks?: number;
  readonly heartbeatTicks?: number;
  readonly proposalTimeoutMs?: number;
  readonly logger?: Logger;
}

/**
 * How long a graceful stop waits for a leadership transfer before stopping anyway: two election
 * timeouts, but at least a second (a loaded machine needs it) and at most two.
 */
const transferOnStopTimeoutMsMin = 1000;
const transferOnStopTimeoutMsMax = 2000;

const encoder = new TextEncoder();

/** A node running in this process (see the file comment). */
export class RunningNode {
  /**
   * The client id of this node's proposals in the sum machine's duplicate table. Random, so a
   * restarted node (whose sequence starts again at 1) is a new client, not a retry of the old one.
   */
  private readonly clientId = randomInt(1, 2 ** 47);
  private sequence = 0;
  private stopping: Promise<void> | null = null;

  private constructor(
    readonly runtime: RaftRuntime<unknown>,
    private readonly machine: SumStateMachine | CounterMachine,
    private readonly transport: RuntimeTransport & { stats(): TransportStats },
    private readonly logger: Logger,
    private readonly proposalTimeoutMs: number,
  ) {}

  /** Loads the storage, starts the transport and the runtime. */
  static async start(options: RunningNodeOptions): Promise<RunningNode> {
    const machine = (options.machine ?? 'sum') === 'sum' ? new SumStateMachine() : new CounterMachine();
    const logger = options.logger ?? silentLogger;
    const runtime = await RaftRuntime.start<unknown>({
      id: options.id,
      peers: options.peers,
      transport: options.transport,
      stateMachine: machine as StateMachine<unknown>,
      logger,
      raft: { electionTimeoutTicks: options.electionTimeoutTicks ?? 20, heartbeatTicks: options.heartbeatTicks ?? 2 },
      ...(options.storage === undefined ? {} : { storage: options.storage }),
      ...(options.tickIntervalMs === undefined ? {} : { tickIntervalMs: options.tickIntervalMs }),
      ...(options.proposalTimeoutMs === undefined ? {} : { proposalTimeoutMs: options.proposalTimeoutMs }),
    });
    return new RunningNode(runtime, machine, options.transport, logger, options.proposalTimeoutMs ?? 5000);
  }

  /** This node's id. */
  get id(): NodeId {
    return this.runtime.node.id;
  }

  /** The state machine's state, comparable across replicas. */
  machineState(): MachineState {
    const machine = this.machine;
    if (machine instanceof SumStateMachine) return { kind: 'sum', value: machine.machine.value.toString(), commands: machine.machine.commandCount };
    return { kind: 'counter', count: machine.count, checksum: machine.checksum };
  }

  /** The node's status now. */
  report(): NodeReport {
    const node = this.runtime.node;
    const stats = this.transport.stats();
    return {
      id: node.id,
      pid: process.pid,
      role: node.role,
      term: node.term,
      leader: node.leaderId,
      commit: node.commitIndex,
      applied: node.appliedIndex,
      lastIndex: node.lastIndex,
      machine: this.machineState(),
      partitionedFrom: this.runtime.partitionedFrom,
      transport: { connectionsOpen: stats.connectionsOpen, framesMalformed: stats.framesMalformed, handshakesRefused: stats.handshakesRefused },
    };
  }

  /**
   * Proposes text commands in one append (sum machine: each an i64 in Rust syntax; counter: any
   * text). Resolves once all applied here; rejects with the runtime's typed error (not-leader,
   * timeout, busy, dropped, stopped). Without a session each call is new commands, numbered under
   * this node's client id: a caller that retries after a timeout (the commands may still commit)
   * can apply them twice. With a session (sum machine only) the caller's client id and sequence
   * numbers go into the commands, so a retry of the same request is recognised and not applied
   * again; the result then counts those duplicates.
   */
  async propose(commands: readonly string[], session?: ProposeSession): Promise<ProposeResult> {
    if (session !== undefined && !(this.machine instanceof SumStateMachine)) {
      throw new Error('client and seq need the sum machine (--machine sum): the counter keeps no table of applied commands');
    }
    const deadline = performance.now() + this.proposalTimeoutMs;
    for (;;) {
      // Without a session, sequence numbers are drawn at each attempt, in the order proposals reach
      // the runtime (which appends them in that order), so they rise along the log: the sum machine
      // takes a lower sequence after a higher one for a retry and ignores it. With one, the caller's
      // numbers are used as given, at every attempt.
      const items = commands.map((text, i) =>
        this.machine instanceof SumStateMachine
          ? encodeSumCommand(session === undefined ? { clientId: this.clientId, sequence: ++this.sequence, text } : { clientId: session.client, sequence: session.seq + i, text })
          : encoder.encode(text),
      );
      try {
        const results = await this.runtime.proposeBatch(items);
        if (session === undefined) return { count: items.length, machine: this.machineState() };
        const duplicates = results.filter((result) => (result as SumResult).status === 'duplicate').length;
        return { count: items.length, machine: this.machineState(), duplicates };
      } catch (error) {
        // While an election is under way (no leader known) the proposal waits for one, within its
        // deadline, instead of failing at once: a node just started is usually leaderless. A known
        // other leader is reported at once, so the caller can go there.
        const leaderless = error instanceof RuntimeError && error.code === 'not-leader' && error.leaderId === 0;
        if (!leaderless || performance.now() + this.runtime.tickIntervalMs * 2 >= deadline || this.stopping !== null) throw error;
        await new Promise((resolve) => setTimeout(resolve, this.runtime.tickIntervalMs * 2));
      }
    }
  }

  /** Drops Raft traffic with these peers, both ways (a partition at the transport level). */
  partition(peers: readonly NodeId[]): void {
    this.runtime.partition(peers);
  }

  /** Ends the partition. */
  heal(): void {
    this.runtime.heal();
  }

  /** Hands leadership to `to`; resolves once this node sees it lead. */
  transfer(to: NodeId): Promise<void> {
    return this.runtime.transferLeadership(to);
  }

  /** True once stop or crash began. */
  get isStopping(): boolean {
    return this.stopping !== null;
  }

  /**
   * Graceful stop: a leader first hands leadership to its most up-to-date active follower (bounded
   * wait), then the runtime stops (pending callers rejected, transport and storage closed).
   */
  stop(): Promise<void> {
    this.stopping ??= this.runStop(true);
    return this.stopping;
  }

  /** Stops at once, without handing leadership over (what a crash looks like to the cluster). */
  crash(): Promise<void> {
    this.stopping ??= this.runStop(false);
    return this.stopping;
  }

  private async runStop(transfer: boolean): Promise<void> {
    const runtime = this.runtime;
    if (transfer && runtime.node.role === 'leader' && !runtime.isStopped) {
      const target = this.transferTarget();
      if (target !== 0) {
        try {
          await runtime.transferLeadership(target, Math.min(transferOnStopTimeoutMsMax, Math.max(transferOnStopTimeoutMsMin, runtime.electionTimeoutMs() * 2)));
          this.logger.info({ target }, 'leadership transferred before stopping');
        } catch (error) {
          this.logger.warn({ target, err: error }, 'leadership transfer before stopping failed');
        }
      }
    }
    await runtime.stop();
  }

  /** The active peer with the highest match index (0: none). */
  private transferTarget(): NodeId {
    let best: NodeId = 0;
    let bestMatch = -1;
    for (const progress of this.runtime.node.progressStatus()) {
      if (progress.id === this.id || !progress.recentActive) continue;
      if (progress.match > bestMatch) {
        best = progress.id;
        bestMatch = progress.match;
      }
    }
    return best;
  }
}
