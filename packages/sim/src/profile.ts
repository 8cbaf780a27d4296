/**
 * Fault profiles. Every seed samples its own: how lossy, slow, duplicating and reordering the
 * network is, which partitions it suffers (one node isolated, majority/minority split, bridge,
 * one-way links), how often links clog, how often nodes crash and for how long, how often logs are
 * compacted (and in what chunks snapshots travel), how the disks lose unsynced writes on a crash,
 * how the Raft nodes are configured, and how busy the clients are. A feature is absent from some
 * seeds on purpose, so quiet runs are covered too.
 */
import type { Prng, RaftBounds } from '@raftlab/core';

/** The kinds of partition the fault scheduler creates. */
export type PartitionKind = 'isolate' | 'split' | 'bridge' | 'oneWay' | 'random';

/** Every partition kind, in a fixed order (sampling depends on it). */
export const partitionKinds: readonly PartitionKind[] = ['isolate', 'split', 'bridge', 'oneWay', 'random'];

/** How the simulated network misbehaves. All rates are probabilities per message unless noted. */
export interface NetworkProfile {
  /** Message loss, 0 to 0.3 in sampled profiles. */
  readonly lossRate: number;
  /** Smallest delivery delay in ticks (0: later in the same tick). */
  readonly delayTicks: number;
  /** Extra delay drawn uniformly from [0, delaySpreadTicks]. */
  readonly delaySpreadTicks: number;
  /** A message is delivered twice. */
  readonly duplicateRate: number;
  /** A message is held back 1 to reorderTicksMax extra ticks, overtaking nothing else on purpose. */
  readonly reorderRate: number;
  /** Bound on the extra delay of a reordered message. */
  readonly reorderTicksMax: number;
  /** A message is held back very long (between leader changes): stale messages, and the zero-copy hazard. */
  readonly longDelayRate: number;
  /** Bound on a long delay in ticks. */
  readonly longDelayTicksMax: number;
}

/** How often faults strike and how long they last. Rates are probabilities per tick. */
export interface FaultSchedule {
  /** A partition starts (when none is active). */
  readonly partitionRate: number;
  /** Bound on a partition's length in ticks. */
  readonly partitionTicksMax: number;
  /** The partition kinds this seed uses. */
  readonly partitionKinds: readonly PartitionKind[];
  /** A link (or all of one node's links) clogs: messages wait until it clears. */
  readonly clogRate: number;
  /** Bound on a clog's length in ticks. */
  readonly clogTicksMax: number;
  /** A live node crashes. */
  readonly crashRate: number;
  /**
   * A node crashes inside a Ready cycle that had to sync (a new term, vote or entries): before
   * persisting it, after writing but before the sync completed, before sending its messages, or
   * just after: the crash points where persistence bugs (a forgotten vote, an acknowledgement of an
   * unsynced write) and divergent logs (Figure 8) come from.
   */
  readonly crashAfterSyncRate: number;
  /** Bound on a crashed node's downtime in ticks. */
  readonly downTicksMax: number;
  /** Bound on nodes down at once (may exceed a minority: liveness is only required after healing). */
  readonly downCountMax: number;
  /** A live node compacts its log through its applied index (InstallSnapshot paths). */
  readonly compactRate: number;
  /** The leader is asked to hand leadership to a random peer (thesis §3.10). */
  readonly transferRate: number;
  /**
   * Storage faults: a crash loses the writes not yet synced, except a random prefix of them (the
   * ones the kernel happened to flush), and the first lost one may be torn. Off: everything
   * written survives a crash, synced or not.
   */
  readonly storageFaults: boolean;
  /** On a crash with storage faults: the write after the surviving prefix was torn mid-record. */
  readonly tornWriteRate: number;
  /**
   * The leader sends its Ready's messages before its own entries are synced, syncing in parallel
   * (thesis §10.2.1, as the runtime does); a crash in between loses the leader's unsynced tail.
   */
  readonly leaderParallelWrite: boolean;
}

/** How the Raft nodes are configured in this seed. */
export interface NodeProfile {
  readonly electionTimeoutTicks: number;
  readonly heartbeatTicks: number;
  readonly preVote: boolean;
  readonly checkQuorum: boolean;
  readonly forwardToLeader: boolean;
  readonly bounds: Partial<RaftBounds>;
}

/** The client workload. */
export interface WorkloadProfile {
  /** Concurrent clients, each with at most one outstanding command. */
  readonly clientCount: number;
  /** Chance per tick that an idle client issues its next command. */
  readonly commandRate: number;
  /** A client retries after this many ticks without an answer. */
  readonly retryTimeoutTicks: number;
  /** Share of commands that are not valid i64 text (the machine ignores them). */
  readonly invalidRate: number;
}

/** Everything one seed samples. */
export interface FaultProfile {
  readonly network: NetworkProfile;
  readonly faults: FaultSchedule;
  readonly node: NodeProfile;
  readonly workload: WorkloadProfile;
  /** Ticks of the fault phase, before the liveness phase heals everything. */
  readonly faultTicks: number;
}

/** A network that delivers everything, once, within the given delay. */
export function reliableNetwork(delayTicks: number, delaySpreadTicks: number): NetworkProfile {
  return {
    lossRate: 0,
    delayTicks,
    delaySpreadTicks,
    duplicateRate: 0,
    reorderRate: 0,
    reorderTicksMax: 1,
    longDelayRate: 0,
    longDelayTicksMax: 1,
  };
}

/** No faults at all. */
export const noFaults: FaultSchedule = Object.freeze({
  partitionRate: 0,
  partitionTicksMax: 1,
  partitionKinds: partitionKinds,
  clogRate: 0,
  clogTicksMax: 1,
  crashRate: 0,
  crashAfterSyncRate: 0,
  downTicksMax: 1,
  downCountMax: 0,
  compactRate: 0,
  transferRate: 0,
  storageFaults: false,
  tornWriteRate: 0,
  leaderParallelWrite: false,
});

/** Returns `value` with probability `p`, else 0. */
function sometimes(prng: Prng, p: number, value: () => number): number {
  return prng.chance(p) ? value() : 0;
}

/** Uniform in [low, high). */
function uniform(prng: Prng, low: number, high: number): number {
  return low + prng.nextFloat() * (high - low);
}

/**
 * The flavor of a seed's profile:
 *  - standard: every fault at moderate rates;
 *  - churn: leaders come and go all the time (frequent short crashes, short election timeouts,
 *    one-entry appends, wide delay spreads), the ground where Figure 8 and vote bugs show;
 *  - calm: few faults and busy clients, for throughput and long logs (ring wrap, compaction).
 */
export type ProfileMode = 'standard' | 'churn' | 'calm';

/** Samples a profile for a cluster of `nodeCount` nodes. */
export function sampleProfile(prng: Prng, nodeCount: number): FaultProfile {
  const roll = prng.nextFloat();
  const mode: ProfileMode = roll < 0.6 ? 'standard' : roll < 0.85 ? 'churn' : 'calm';
  const profile = mode === 'churn' ? sampleChurn(prng, nodeCount) : sampleStandard(prng, nodeCount);
  return withStorageAndSnapshots(prng, mode === 'calm' ? calmDown(prng, profile) : profile);
}

/**
 * Storage faults and snapshot chunk bounds, drawn after everything else so adding them left every
 * earlier draw (and so each seed's network, faults, bounds and workload) as it was.
 */
function withStorageAndSnapshots(prng: Prng, profile: FaultProfile): FaultProfile {
  const storageFaults = prng.chance(0.7);
  const tornWriteRate = uniform(prng, 0, 0.5);
  const leaderParallelWrite = prng.chance(0.5);
  // Snapshots of the sum machine are tens to hundreds of bytes: small chunks make a transfer of
  // many chunks, each of which can be lost, duplicated, reordered or cut short by a leader change.
  const chunked = prng.chance(0.6);
  const snapshotChunkBytesMax = prng.nextRange(1, 48);
  return {
    ...profile,
    faults: { ...profile.faults, storageFaults, tornWriteRate, leaderParallelWrite },
    node: { ...profile.node, bounds: { ...profile.node.bounds, ...(chunked ? { snapshotChunkBytesMax } : {}) } },
  };
}

function sampleChurn(prng: Prng, nodeCount: number): FaultProfile {
  const profile = sampleStandard(prng, nodeCount);
  const electionTimeoutTicks = prng.nextRange(6, 10);
  return {
    ...profile,
    // Fast enough that elections succeed (and leaders are deposed) all the time, with enough
    // spread that two candidates' requests reach a voter at different times.
    network: { ...profile.network, delayTicks: prng.nextRange(0, 1), delaySpreadTicks: prng.nextRange(1, 3) },
    faults: {
      ...profile.faults,
      crashRate: uniform(prng, 0.01, 0.05),
      // Crashing right after syncing leaves divergent uncommitted tails behind (a leader's new
      // entries persisted but never sent), the raw material of Figure 8.
      crashAfterSyncRate: uniform(prng, 0.02, 0.3),
      downTicksMax: prng.nextRange(1, electionTimeoutTicks),
      downCountMax: prng.nextRange(1, Math.min(2, Math.ceil(nodeCount / 2))),
      partitionRate: uniform(prng, 0.01, 0.05),
      partitionTicksMax: prng.nextRange(5, 40),
    },
    node: {
      ...profile.node,
      electionTimeoutTicks,
      heartbeatTicks: 1,
      // One entry per append: a new leader brings followers up to date one old entry at a time,
      // so a majority holds its predecessors' entries before its own (Figure 8's window).
      bounds: { ...profile.node.bounds, appendCountMax: 1, ...(prng.chance(0.5) ? { inflightCountMax: 1 } : {}) },
    },
    workload: { ...profile.workload, commandRate: uniform(prng, 0.3, 1), retryTimeoutTicks: prng.nextRange(2, 4) * electionTimeoutTicks },
  };
}

function calmDown(prng: Prng, profile: FaultProfile): FaultProfile {
  return {
    ...profile,
    network: { ...profile.network, lossRate: profile.network.lossRate / 4, longDelayRate: profile.network.longDelayRate / 4 },
    faults: {
      ...profile.faults,
      crashRate: profile.faults.crashRate / 4,
      crashAfterSyncRate: profile.faults.crashAfterSyncRate / 4,
      partitionRate: profile.faults.partitionRate / 4,
    },
    workload: { ...profile.workload, clientCount: prng.nextRange(4, 16), commandRate: uniform(prng, 0.5, 1) },
    faultTicks: prng.nextRange(600, 2000),
  };
}

function sampleStandard(prng: Prng, nodeCount: number): FaultProfile {
  const electionTimeoutTicks = prng.nextRange(5, 20);
  const slowNetwork = prng.chance(0.15);
  const heartbeatTicks = prng.nextRange(1, Math.max(1, Math.floor(electionTimeoutTicks / 4)));
  const network: NetworkProfile = {
    lossRate: sometimes(prng, 0.8, () => uniform(prng, 0, 0.3)),
    // Raft needs broadcast time well below the election timeout (§5.6); most seeds honor it, some
    // (slow networks) do not, where elections stall until healing.
    delayTicks: slowNetwork ? prng.nextRange(0, 3) : prng.nextRange(0, Math.floor(electionTimeoutTicks / 8)),
    delaySpreadTicks: slowNetwork ? prng.nextRange(0, 8) : prng.nextRange(0, Math.floor(electionTimeoutTicks / 4)),
    duplicateRate: sometimes(prng, 0.5, () => uniform(prng, 0, 0.1)),
    reorderRate: sometimes(prng, 0.5, () => uniform(prng, 0, 0.2)),
    reorderTicksMax: prng.nextRange(1, 10),
    longDelayRate: sometimes(prng, 0.5, () => uniform(prng, 0, 0.02)),
    longDelayTicksMax: prng.nextRange(20, 200),
  };
  const kinds = partitionKinds.filter(() => prng.chance(0.7));
  const faults: FaultSchedule = {
    partitionRate: kinds.length === 0 ? 0 : sometimes(prng, 0.8, () => uniform(prng, 0.002, 0.03)),
    partitionTicksMax: prng.nextRange(10, 150),
    partitionKinds: kinds.length === 0 ? ['isolate'] : kinds,
    clogRate: sometimes(prng, 0.5, () => uniform(prng, 0.002, 0.03)),
    clogTicksMax: prng.nextRange(5, 60),
    crashRate: sometimes(prng, 0.75, () => uniform(prng, 0.002, 0.03)),
    crashAfterSyncRate: sometimes(prng, 0.5, () => uniform(prng, 0, 0.01)),
    downTicksMax: prng.nextRange(1, 120),
    downCountMax: prng.nextRange(1, Math.ceil(nodeCount / 2)),
    compactRate: sometimes(prng, 0.6, () => uniform(prng, 0.005, 0.1)),
    transferRate: sometimes(prng, 0.3, () => uniform(prng, 0.001, 0.01)),
    // Storage faults are drawn last, in sampleProfile, so every earlier draw stays as it was.
    storageFaults: false,
    tornWriteRate: 0,
    leaderParallelWrite: false,
  };
  // Small rings make the log wrap and reuse released space; tiny windows make many small appends.
  const smallRing = prng.chance(0.25);
  const logBytesMax = smallRing ? 1024 * 2 ** prng.nextRange(0, 5) : undefined;
  const bounds: Partial<RaftBounds> = {
    ...(prng.chance(0.4) ? { appendCountMax: prng.nextRange(1, 8) } : {}),
    ...(prng.chance(0.3) ? { inflightCountMax: prng.nextRange(1, 4) } : {}),
    ...(prng.chance(0.2) ? { appendBytesMax: prng.nextRange(64, 4096) } : {}),
    ...(prng.chance(0.2) ? { inflightBytesMax: prng.nextRange(256, 16384) } : {}),
    ...(logBytesMax === undefined ? {} : { logBytesMax, uncommittedBytesMax: Math.floor(logBytesMax / 4) }),
  };
  const node: NodeProfile = {
    electionTimeoutTicks,
    heartbeatTicks,
    preVote: prng.chance(0.8),
    checkQuorum: prng.chance(0.8),
    forwardToLeader: prng.chance(0.85),
    bounds,
  };
  const workload: WorkloadProfile = {
    clientCount: prng.nextRange(1, 8),
    commandRate: uniform(prng, 0.05, 0.6),
    retryTimeoutTicks: prng.nextRange(2, 6) * electionTimeoutTicks,
    invalidRate: uniform(prng, 0, 0.2),
  };
  return { network, faults, node, workload, faultTicks: prng.nextRange(300, 1200) };
}
