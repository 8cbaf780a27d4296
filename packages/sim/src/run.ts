/**
 * One seed, one run: sample the node count and fault profile from the seed, run the fault phase
 * with the safety checker after every event, then the liveness phase: heal everything and require
 * a leader within a bound, then every acknowledged command committed and applied on every node
 * (and every outstanding command answered) within a bound. Same seed, same code: same run, event
 * for event (the trace hash proves it).
 */
import { Prng, assert } from '@raftlab/core';
import { type CommandSource, type PlantedBugName, SimCluster, type TraceSink, asViolation } from './cluster.js';
import type { ViolationKind } from './checker.js';
import { hashString } from './hash.js';
import { type FaultProfile, sampleProfile } from './profile.js';

/** An inclusive range of cluster sizes. */
export interface NodeRange {
  readonly min: number;
  readonly max: number;
}

/** Default cluster sizes for seeds. */
export const defaultNodeRange: NodeRange = { min: 3, max: 10 };

/** How to run one seed. */
export interface SeedOptions {
  readonly seed: number;
  /** Cluster sizes to draw from (default 3..10). */
  readonly nodes?: NodeRange;
  /** Bugs to plant (tests and demonstrations only). */
  readonly planted?: readonly PlantedBugName[];
  /** 'hash': keep a hash of the event trace; a function: receive every trace line. */
  readonly trace?: 'off' | 'hash' | TraceSink;
  /** Run the core's own invariant checks after every input (default true). */
  readonly verify?: boolean;
  /** Validate inbound frames as a transport does (default true; see ClusterOptions.validateInbound). */
  readonly validateInbound?: boolean;
  /** Adjusts the sampled profile (tests that steer faults toward one bug). */
  readonly adjustProfile?: (profile: FaultProfile) => FaultProfile;
}

/** A broken safety property, as data. */
export interface ViolationReport {
  readonly kind: ViolationKind;
  readonly message: string;
  readonly tick: number;
  readonly event: number;
}

/** A liveness failure: after healing, no leader, or acknowledged work not done, within the bound. */
export interface LivenessReport {
  readonly phase: 'leader' | 'commit';
  readonly message: string;
  readonly tick: number;
}

/** What one seed did. */
export interface SeedResult {
  readonly seed: number;
  readonly nodeCount: number;
  readonly ticks: number;
  readonly events: number;
  /** Raft messages sent. */
  readonly messages: number;
  /** Highest index committed anywhere. */
  readonly committed: number;
  readonly commandsIssued: number;
  readonly commandsAcknowledged: number;
  /** Commands refused for good (too large for any entry). */
  readonly commandsRejected: number;
  readonly crashes: number;
  readonly partitions: number;
  readonly snapshotsInstalled: number;
  /** InstallSnapshot chunks sent. */
  readonly snapshotChunksSent: number;
  /** Unsynced writes lost in crashes (storage faults), and how many of those were torn. */
  readonly writesLost: number;
  readonly writesTorn: number;
  /** Tick of the first leader (null: none ever). */
  readonly firstLeaderTick: number | null;
  /** Ticks from healing to a leader (null: none within the bound). */
  readonly leaderAfterHealTicks: number | null;
  /** Ticks from that leader until every acknowledged command was applied everywhere (null: not within the bound). */
  readonly convergeTicks: number | null;
  readonly violation: ViolationReport | null;
  readonly liveness: LivenessReport | null;
  /** Hash of the event trace when asked for, else null. */
  readonly traceHash: number | null;
}

/**
 * Commands for seeds: mostly numbers of every size, some invalid text. Long invalid ones stay within
 * a quarter of a small ring (the driver keeps the ring at most half full, the leader's uncommitted
 * bytes take at most another quarter), except now and then one too large for any entry, which
 * the cluster must refuse for good (too-large) rather than keep retrying.
 */
export function randomCommands(invalidRate: number, logBytesMax: number | undefined): CommandSource {
  const longMax = logBytesMax === undefined ? 3000 : Math.max(1, Math.min(3000, Math.floor(logBytesMax / 4) - 32));
  const invalid = ['', '+', '-', ' 5', '5 ', '1e3', '0x10', '1_000', '٣', '9223372036854775808', '-9223372036854775809'];
  return {
    exhausted: false,
    next(prng: Prng): string {
      if (prng.chance(invalidRate)) {
        // Now and then a long one: entries of hundreds of bytes exercise the byte bounds and ring growth.
        if (logBytesMax !== undefined && prng.chance(0.01)) return 'x'.repeat(logBytesMax + prng.nextRange(1, 100));
        return prng.chance(0.1) ? 'x'.repeat(prng.nextRange(Math.min(100, longMax), longMax)) : prng.pick(invalid);
      }
      const roll = prng.nextFloat();
      if (roll < 0.05) return prng.pick(['9223372036854775807', '-9223372036854775808', '-0', '+7', '007']);
      const magnitude = prng.nextUint32() * (roll < 0.5 ? 1 : 2 ** 20);
      return String(prng.chance(0.5) ? -magnitude : magnitude);
    },
  };
}

/** Ticks allowed after healing for a leader to emerge. */
export function leaderBoundTicks(profile: FaultProfile): number {
  // Stale messages still in flight when healing can keep disturbing for up to the longest delay.
  return 30 * profile.node.electionTimeoutTicks + profile.network.longDelayTicksMax + profile.network.reorderTicksMax;
}

/** Ticks allowed after the leader for every acknowledged and outstanding command to be applied everywhere. */
export function commitBoundTicks(profile: FaultProfile): number {
  return 30 * profile.node.electionTimeoutTicks + 4 * profile.workload.retryTimeoutTicks + profile.network.longDelayTicksMax;
}

/** Runs one seed to completion (or to its first violation). */
export function runSeed(options: SeedOptions): SeedResult {
  const { seed } = options;
  assert(Number.isSafeInteger(seed) && seed >= 0, () => `seed ${seed} must be a non-negative safe integer`);
  const range = options.nodes ?? defaultNodeRange;
  const root = new Prng(seed);
  const nodeCount = root.nextRange(range.min, range.max);
  const sampled = sampleProfile(root.fork(), nodeCount);
  const profile = options.adjustProfile === undefined ? sampled : options.adjustProfile(sampled);
  let traceHash = 0;
  const traceOption = options.trace ?? 'off';
  const trace: TraceSink | null =
    traceOption === 'off'
      ? null
      : traceOption === 'hash'
        ? (line: string): void => {
            traceHash = hashString(line, traceHash);
          }
        : traceOption;
  if (trace !== null) trace(`seed ${seed}: ${nodeCount} nodes, profile ${JSON.stringify(profile)}`);
  const cluster = new SimCluster({
    nodeCount,
    profile,
    prng: root,
    planted: new Set(options.planted ?? []),
    verify: options.verify ?? true,
    check: true,
    commands: randomCommands(profile.workload.invalidRate, profile.node.bounds.logBytesMax),
    trace,
    validateInbound: options.validateInbound ?? true,
  });
  let violation: ViolationReport | null = null;
  let liveness: LivenessReport | null = null;
  let leaderAfterHealTicks: number | null = null;
  let convergeTicks: number | null = null;
  try {
    for (let tick = 0; tick < profile.faultTicks; tick++) cluster.runTick();
    cluster.heal();
    cluster.issuing = false;
    const healedAt = cluster.now;
    const leaderDeadline = healedAt + leaderBoundTicks(profile);
    while (cluster.currentLeader() === 0 && cluster.now < leaderDeadline) cluster.runTick();
    if (cluster.currentLeader() === 0) {
      liveness = { phase: 'leader', message: `no leader within ${leaderBoundTicks(profile)} ticks of healing at tick ${healedAt}`, tick: cluster.now };
    } else {
      leaderAfterHealTicks = cluster.now - healedAt;
      const leaderAt = cluster.now;
      const commitDeadline = cluster.now + commitBoundTicks(profile);
      const done = (): boolean => cluster.clientsIdle() && cluster.nodes.every((node) => node.raft !== null && node.raft.appliedIndex >= cluster.acknowledgedIndexMax);
      while (!done() && cluster.now < commitDeadline) cluster.runTick();
      if (done()) convergeTicks = cluster.now - leaderAt;
      else {
        const lagging = cluster.nodes.filter((node) => node.raft === null || node.raft.appliedIndex < cluster.acknowledgedIndexMax).map((node) => `n${node.id}@${node.raft?.appliedIndex ?? 'down'}`);
        liveness = {
          phase: 'commit',
          message: `within ${commitBoundTicks(profile)} ticks of a leader: acknowledged through index ${cluster.acknowledgedIndexMax}, lagging [${lagging.join(' ')}], clients ${cluster.clientsIdle() ? 'idle' : 'still waiting'}`,
          tick: cluster.now,
        };
      }
    }
    cluster.audit();
  } catch (error) {
    const found = asViolation(error, cluster.now, cluster.events);
    violation = { kind: found.kind, message: found.message, tick: found.tick, event: found.event };
  }
  if (trace !== null) {
    if (violation !== null) trace(`VIOLATION ${violation.kind}: ${violation.message}`);
    if (liveness !== null) trace(`LIVENESS FAILURE (${liveness.phase}): ${liveness.message}`);
    trace(`end at t${cluster.now} after ${cluster.events} events`);
  }
  return {
    seed,
    nodeCount,
    ticks: cluster.now,
    events: cluster.events,
    messages: cluster.network.stats.raftSent,
    committed: cluster.checker?.highestCommit ?? 0,
    commandsIssued: cluster.stats.commandsIssued,
    commandsAcknowledged: cluster.stats.commandsAcknowledged,
    commandsRejected: cluster.stats.commandsRejected,
    crashes: cluster.stats.crashes,
    partitions: cluster.stats.partitions,
    snapshotsInstalled: cluster.stats.snapshotsInstalled,
    snapshotChunksSent: cluster.stats.snapshotChunksSent,
    writesLost: cluster.stats.writesLost,
    writesTorn: cluster.stats.writesTorn,
    firstLeaderTick: cluster.stats.firstLeaderTick,
    leaderAfterHealTicks,
    convergeTicks,
    violation,
    liveness,
    traceHash: traceOption === 'hash' ? traceHash : null,
  };
}
