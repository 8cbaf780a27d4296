/**
 * simulate(): the seed API. A cluster of 1 to 10 real RaftNodes agrees on the sum of a list of
 * command strings (each parsed as Rust's `str::parse::<i64>`; invalid ones are ignored; sums wrap
 * in two's complement). Clients send the commands to randomly chosen nodes over an unreliable
 * network and retry on refusal or timeout; a retried command applies once (client id + sequence,
 * see core's i64.ts). simulate() returns once every command is committed and applied on every node
 * that is part of the consensus, with each such node's final value; or an error, promptly, when no
 * majority can form.
 *
 * It verifies its own answer: the safety checker runs after every event, every consensus node must
 * report the same value, and that value must equal the sum computed directly from the commands.
 */
import { type NodeId, Prng, defaultBounds, majority, parseI64, wrapI64 } from '@raftlab/core';
import { type CommandSource, SimCluster, asViolation } from './cluster.js';
import { type FaultProfile, type FaultSchedule, noFaults, partitionKinds } from './profile.js';

/** Faults simulate() injects. Every field is optional; the default is a reliable, quick network. */
export interface SimulateFaults {
  /** Probability that a message (Raft or client) is lost, in [0, 1). Default 0. */
  readonly loss?: number;
  /** Probability that a Raft message is delivered twice, in [0, 1]. Default 0. */
  readonly duplicate?: number;
  /** Smallest delay in ticks. Default 0 (later in the same tick). */
  readonly delayTicks?: number;
  /** Extra delay drawn from [0, delaySpreadTicks]. Default 2. */
  readonly delaySpreadTicks?: number;
  /** Probability that a message is held back a few extra ticks (reordering), in [0, 1]. Default 0. */
  readonly reorder?: number;
  /** Random crashes and restarts while commands are being delivered (at most a minority down at once). */
  readonly crashes?: boolean;
  /** Random transient partitions while commands are being delivered. */
  readonly partitions?: boolean;
  /** Nodes down for the whole run. */
  readonly down?: readonly NodeId[];
  /** A permanent partition: nodes in different groups cannot talk; unlisted nodes form one more group. */
  readonly partition?: readonly (readonly NodeId[])[];
}

/** simulate()'s input. */
export interface SimulateOptions {
  /** Cluster size, 1 to 10. */
  readonly nodes: number;
  /** The commands, in issue order (each is one i64 text; invalid ones are applied as no-ops). */
  readonly commands: readonly string[];
  /** Seed of the whole run (default 1): same seed, same run. */
  readonly seed?: number;
  readonly faults?: SimulateFaults;
  /** Concurrent clients (default 16), each with one command outstanding at a time. */
  readonly clients?: number;
  /**
   * 'light' (default): the safety checker after every event; 'full': also the core's own invariant
   * checks after every input (several times slower).
   */
  readonly check?: 'light' | 'full';
}

/** Why simulate() failed. */
export type SimulateErrorCode =
  /** An option is missing or out of range (the message names it). */
  | 'invalid-options'
  /** No majority could make progress within the bound (a permanent partition, too many nodes down). */
  | 'no-quorum'
  /** A majority exists but the run stopped making progress, or exceeded its tick budget. */
  | 'timeout'
  /** A safety checker fired: a bug in raftlab (the message says which property and where). */
  | 'safety-violation'
  /** Nodes disagree, or the agreed value is not the sum of the commands: a bug in raftlab. */
  | 'diverged';

/** simulate()'s failure, with a stable code. */
export class SimulateError extends Error {
  constructor(
    readonly code: SimulateErrorCode,
    message: string,
    /** The virtual tick at which the run stopped (0 when it never started). */
    readonly ticks = 0,
  ) {
    super(message);
    this.name = 'SimulateError';
  }
}

/** simulate()'s outcome. */
export type SimulateResult =
  | {
      readonly ok: true;
      /** Final state machine value of every node in the consensus, in the order of nodeIds. */
      readonly states: bigint[];
      /** The nodes in the consensus (all nodes unless some were down or cut off for good). */
      readonly nodeIds: NodeId[];
      /** Virtual ticks the run took. */
      readonly ticks: number;
      /** Events (inputs to nodes) processed. */
      readonly events: number;
      /** Raft messages sent. */
      readonly messages: number;
    }
  | { readonly ok: false; readonly error: SimulateError };

/** Largest cluster simulate() accepts. */
export const simulateNodesMax = 10;
/** Election timeout of simulate()'s nodes. */
const electionTimeoutTicks = 10;
/** Ticks without any progress after which simulate() gives up. */
export const stallTicksMax = 50 * electionTimeoutTicks;

function invalid(message: string): SimulateResult {
  return { ok: false, error: new SimulateError('invalid-options', message) };
}

function isProbability(value: unknown, allowOne: boolean): value is number {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0 && (allowOne ? value <= 1 : value < 1);
}

function isTicks(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0 && value <= 1000;
}

/** Checks the options; returns an error message or null. */
function validate(options: SimulateOptions): string | null {
  if (typeof options !== 'object' || options === null) return 'options must be an object';
  const { nodes, commands, seed, faults, clients, check } = options;
  if (typeof nodes !== 'number' || !Number.isInteger(nodes) || nodes < 1 || nodes > simulateNodesMax) {
    return `nodes must be an integer from 1 to ${simulateNodesMax}, got ${String(nodes)}`;
  }
  if (!Array.isArray(commands)) return 'commands must be an array of strings';
  for (let i = 0; i < commands.length; i++) {
    const command = commands[i];
    if (typeof command !== 'string') return `commands[${i}] must be a string, got ${typeof command}`;
    // Framing adds at most 23 bytes (array, two uint64, str32 header).
    if (command.length * 3 + 23 > defaultBounds.entryBytesMax && Buffer.byteLength(command) + 23 > defaultBounds.entryBytesMax) {
      return `commands[${i}] is ${Buffer.byteLength(command)} bytes; an entry holds at most ${defaultBounds.entryBytesMax - 23}`;
    }
  }
  if (seed !== undefined && (typeof seed !== 'number' || !Number.isSafeInteger(seed) || seed < 0 || seed > 0xffffffff)) {
    return `seed must be an integer from 0 to 2^32 - 1, got ${String(seed)}`;
  }
  if (clients !== undefined && (typeof clients !== 'number' || !Number.isInteger(clients) || clients < 1 || clients > 1024)) {
    return `clients must be an integer from 1 to 1024, got ${String(clients)}`;
  }
  if (check !== undefined && check !== 'light' && check !== 'full') return `check must be 'light' or 'full', got ${String(check)}`;
  if (faults === undefined) return null;
  if (typeof faults !== 'object' || faults === null) return 'faults must be an object';
  const known = ['loss', 'duplicate', 'delayTicks', 'delaySpreadTicks', 'reorder', 'crashes', 'partitions', 'down', 'partition'];
  for (const key of Object.keys(faults)) if (!known.includes(key)) return `faults.${key} is not a known fault; known: ${known.join(', ')}`;
  if (faults.loss !== undefined && !isProbability(faults.loss, false)) return `faults.loss must be a probability in [0, 1), got ${String(faults.loss)}`;
  if (faults.duplicate !== undefined && !isProbability(faults.duplicate, true)) return `faults.duplicate must be a probability in [0, 1], got ${String(faults.duplicate)}`;
  if (faults.reorder !== undefined && !isProbability(faults.reorder, true)) return `faults.reorder must be a probability in [0, 1], got ${String(faults.reorder)}`;
  if (faults.delayTicks !== undefined && !isTicks(faults.delayTicks)) return `faults.delayTicks must be an integer from 0 to 1000, got ${String(faults.delayTicks)}`;
  if (faults.delaySpreadTicks !== undefined && !isTicks(faults.delaySpreadTicks)) {
    return `faults.delaySpreadTicks must be an integer from 0 to 1000, got ${String(faults.delaySpreadTicks)}`;
  }
  if (faults.crashes !== undefined && typeof faults.crashes !== 'boolean') return 'faults.crashes must be true or false';
  if (faults.partitions !== undefined && typeof faults.partitions !== 'boolean') return 'faults.partitions must be true or false';
  const isNode = (id: unknown): boolean => typeof id === 'number' && Number.isInteger(id) && id >= 1 && id <= nodes;
  if (faults.down !== undefined) {
    if (!Array.isArray(faults.down)) return 'faults.down must be an array of node ids';
    for (const id of faults.down) if (!isNode(id)) return `faults.down: ${String(id)} is not a node id from 1 to ${nodes}`;
  }
  if (faults.partition !== undefined) {
    if (!Array.isArray(faults.partition)) return 'faults.partition must be an array of groups of node ids';
    const seen = new Set<number>();
    for (const group of faults.partition) {
      if (!Array.isArray(group)) return 'faults.partition must be an array of groups of node ids';
      for (const id of group) {
        if (!isNode(id)) return `faults.partition: ${String(id)} is not a node id from 1 to ${nodes}`;
        if (seen.has(id as number)) return `faults.partition: node ${String(id)} is in two groups`;
        seen.add(id as number);
      }
    }
  }
  return null;
}

/** The partition's groups, unlisted nodes gathered into one more group. */
function partitionGroups(nodes: number, partition: readonly (readonly NodeId[])[]): NodeId[][] {
  if (partition.length === 0) return [];
  const listed = new Set(partition.flat());
  const rest: NodeId[] = [];
  for (let id = 1; id <= nodes; id++) if (!listed.has(id)) rest.push(id);
  const groups = partition.filter((group) => group.length > 0).map((group) => [...group]);
  if (rest.length > 0) groups.push(rest);
  return groups;
}

/** The nodes that can form a majority on their own, or an explanation of why none can. */
function consensusNodes(nodes: number, down: ReadonlySet<NodeId>, groups: readonly NodeId[][]): { ids: NodeId[] } | { why: string } {
  const needed = majority(nodes);
  const all = Array.from({ length: nodes }, (_, i) => i + 1);
  const candidates = (groups.length === 0 ? [all] : groups).map((group) => group.filter((id) => !down.has(id)));
  for (const group of candidates) if (group.length >= needed) return { ids: group };
  const largest = candidates.reduce((best, group) => (group.length > best.length ? group : best), [] as NodeId[]);
  const downText = down.size === 0 ? '' : `${down.size} down ([${[...down].join(',')}]), `;
  return {
    why: `no majority can form: ${downText}the largest group that can talk holds ${largest.length} live node(s) [${largest.join(',')}], and ${nodes} nodes need ${needed}`,
  };
}

/** Runs the i64 sum over a simulated cluster; see the file header. */
export function simulate(options: SimulateOptions): SimulateResult {
  const problem = validate(options);
  if (problem !== null) return invalid(problem);
  const { nodes, commands } = options;
  const faults = options.faults ?? {};
  const seed = options.seed ?? 1;
  const down = new Set(faults.down ?? []);
  const groups = partitionGroups(nodes, faults.partition ?? []);
  const consensus = consensusNodes(nodes, down, groups);
  const minority = Math.max(0, nodes - majority(nodes) - down.size);
  const schedule: FaultSchedule = {
    ...noFaults,
    ...(faults.crashes === true && minority > 0 ? { crashRate: 0.01, downTicksMax: 5 * electionTimeoutTicks, downCountMax: minority } : {}),
    ...(faults.partitions === true ? { partitionRate: 0.01, partitionTicksMax: 10 * electionTimeoutTicks, partitionKinds: partitionKinds } : {}),
  };
  const clientCount = Math.min(options.clients ?? 16, Math.max(1, commands.length));
  const profile: FaultProfile = {
    network: {
      lossRate: faults.loss ?? 0,
      delayTicks: faults.delayTicks ?? 0,
      delaySpreadTicks: faults.delaySpreadTicks ?? 2,
      duplicateRate: faults.duplicate ?? 0,
      reorderRate: faults.reorder ?? 0,
      reorderTicksMax: 5,
      longDelayRate: 0,
      longDelayTicksMax: 1,
    },
    faults: schedule,
    node: { electionTimeoutTicks, heartbeatTicks: 2, preVote: true, checkQuorum: true, forwardToLeader: true, bounds: {} },
    workload: { clientCount, commandRate: 1, retryTimeoutTicks: 3 * electionTimeoutTicks, invalidRate: 0 },
    faultTicks: 0,
  };
  let nextCommand = 0;
  const source: CommandSource = {
    get exhausted(): boolean {
      return nextCommand >= commands.length;
    },
    next(): string | null {
      return nextCommand < commands.length ? (commands[nextCommand++] as string) : null;
    },
  };
  const cluster = new SimCluster({
    nodeCount: nodes,
    profile,
    prng: new Prng(seed),
    planted: new Set(),
    verify: options.check === 'full',
    check: true,
    commands: source,
    trace: null,
    downForever: [...down],
    partitionForever: groups,
  });
  const members = 'ids' in consensus ? consensus.ids.map((id) => cluster.node(id)) : [];
  const allApplied = (): boolean => members.every((node) => node.raft !== null && node.machine.commandCount >= commands.length);
  // Termination: progress (a command answered, an entry applied) must come within stallTicksMax,
  // and the whole run within a budget proportional to the work.
  const ticksMax = 100_000 + 200 * commands.length;
  let progressMark = -1;
  let lastProgressTick = 0;
  try {
    while (true) {
      const delivered = source.exhausted && cluster.clientsIdle();
      if (delivered && cluster.faultsActive) cluster.heal(); // transient faults end; permanent ones stay
      if (delivered && allApplied()) break;
      cluster.runTick();
      let mark = cluster.stats.commandsAcknowledged;
      for (const node of members) mark += node.raft?.appliedIndex ?? 0;
      if (mark !== progressMark) {
        progressMark = mark;
        lastProgressTick = cluster.now;
      } else if (cluster.now - lastProgressTick >= stallTicksMax) {
        if ('why' in consensus) return { ok: false, error: new SimulateError('no-quorum', `${consensus.why} (no progress for ${stallTicksMax} ticks)`, cluster.now) };
        const answered = `${cluster.stats.commandsAcknowledged} of ${commands.length} commands answered`;
        return { ok: false, error: new SimulateError('timeout', `no progress for ${stallTicksMax} ticks at tick ${cluster.now}: ${answered}`, cluster.now) };
      }
      if (cluster.now >= ticksMax) {
        const answered = `${cluster.stats.commandsAcknowledged} of ${commands.length} commands answered`;
        return { ok: false, error: new SimulateError('timeout', `gave up after ${ticksMax} ticks: ${answered}`, cluster.now) };
      }
    }
    cluster.audit();
  } catch (error) {
    const violation = asViolation(error, cluster.now, cluster.events);
    return { ok: false, error: new SimulateError('safety-violation', `${violation.message} (seed ${seed})`, cluster.now) };
  }
  if ('why' in consensus) {
    // Unreachable in practice (nothing can commit without a majority), but never claim success.
    return { ok: false, error: new SimulateError('no-quorum', consensus.why) };
  }
  const states = members.map((node) => node.machine.value);
  let expected = 0n;
  for (const command of commands) {
    const value = parseI64(command);
    if (value !== null) expected = wrapI64(expected + value);
  }
  for (let i = 0; i < members.length; i++) {
    const node = members[i] as (typeof members)[number];
    if (states[i] !== expected || node.machine.commandCount !== commands.length) {
      return {
        ok: false,
        error: new SimulateError(
          'diverged',
          `node ${node.id} holds ${String(states[i])} after ${node.machine.commandCount} commands; expected ${expected} after ${commands.length} (seed ${seed})`,
        ),
      };
    }
  }
  return {
    ok: true,
    states,
    nodeIds: members.map((node) => node.id),
    ticks: cluster.now,
    events: cluster.events,
    messages: cluster.network.stats.raftSent,
  };
}
