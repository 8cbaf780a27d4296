/**
 * Election convergence in ticks, deterministically: the simulator (packages/sim) runs real
 * RaftNodes over a reliable simulated network, one seed per trial, and counts ticks
 *
 *   - cold start: from every node's first tick to the first leader;
 *   - leader loss: from the crash of an established leader to a new leader among the survivors.
 *
 * Nodes are configured as RaftRuntime configures them (election timeout 20 ticks, heartbeat 2,
 * pre-vote and check-quorum on) and messages arrive within the tick they are sent in, as on a LAN
 * where a round trip is far below the 10 ms tick. An election is "decided in one round" when the
 * winner's term is exactly one above the term before it (§5.2: a split vote costs another term;
 * failed pre-vote rounds do not raise the term and so are not counted as rounds).
 *
 * Same seeds, same ticks: the regression gate runs this file (check-workloads.ts) and compares
 * every trial's figure exactly.
 *
 *   node benchmarks/dist/lab/election-ticks.js [--nodes 5] [--trials 30] [--seed 20260101]
 */
import { pathToFileURL } from 'node:url';

import { AssertionError, Prng, assert } from '@raftlab/core';
import { type FaultProfile, SimCluster, noFaults, reliableNetwork } from '@raftlab/sim';

import type { ElectionTrials } from './records.js';

/** RaftRuntime's defaults (packages/runtime), so ticks here and ms there describe the same nodes. */
export const runtimeElectionTimeoutTicks = 20;
export const runtimeHeartbeatTicks = 2;

/** Ticks a trial may take before it is declared stuck (a liveness bug, not a slow election). */
const trialTicksMax = 5_000;

/** Figures of one cluster size. */
export interface ElectionTickFigures {
  readonly nodes: number;
  readonly seeds: readonly number[];
  readonly coldStart: ElectionTrials;
  readonly leaderLoss: ElectionTrials;
}

function profileFor(): FaultProfile {
  return {
    network: reliableNetwork(0, 0),
    faults: noFaults,
    node: {
      electionTimeoutTicks: runtimeElectionTimeoutTicks,
      heartbeatTicks: runtimeHeartbeatTicks,
      preVote: true,
      checkQuorum: true,
      forwardToLeader: false,
      bounds: {},
    },
    workload: { clientCount: 0, commandRate: 0, retryTimeoutTicks: 1, invalidRate: 0 },
    faultTicks: 0,
  };
}

const noCommands = { next: (): string | null => null, exhausted: true };

function clusterFor(nodes: number, seed: number): SimCluster {
  return new SimCluster({ nodeCount: nodes, profile: profileFor(), prng: new Prng(seed), planted: new Set(), verify: false, check: false, commands: noCommands, trace: null });
}

/** Ticks until `cluster` has a leader other than `excluded`; returns the ticks taken. */
function ticksToLeader(cluster: SimCluster, excluded: number, what: string): number {
  for (let tick = 1; tick <= trialTicksMax; tick++) {
    cluster.runTick();
    const leader = cluster.currentLeader();
    if (leader !== 0 && leader !== excluded) return tick;
  }
  assert(false, () => `${what}: no leader after ${trialTicksMax} ticks`);
}

function termOf(cluster: SimCluster, id: number): number {
  const raft = cluster.node(id).raft;
  assert(raft !== null, () => `node ${id} is down`);
  return raft.term;
}

/** Runs `trials` seeded trials of both kinds for one cluster size. Seed of trial t: seedBase + 1000 * nodes + t. */
export function measureElectionTicks(nodes: number, trials: number, seedBase: number): ElectionTickFigures {
  assert(nodes >= 3, () => `leader loss needs at least 3 nodes, got ${nodes}`);
  const seeds: number[] = [];
  const cold = { values: [] as number[], oneRound: [] as boolean[] };
  const loss = { values: [] as number[], oneRound: [] as boolean[] };
  for (let trial = 0; trial < trials; trial++) {
    const seed = (seedBase + 1000 * nodes + trial) >>> 0;
    seeds.push(seed);
    const cluster = clusterFor(nodes, seed);
    cold.values.push(ticksToLeader(cluster, 0, `seed ${seed} cold start`));
    const first = cluster.currentLeader();
    const firstTerm = termOf(cluster, first);
    cold.oneRound.push(firstTerm === 1);
    // Settle: every follower hears the leader (one election timeout of heartbeats).
    for (let tick = 0; tick < runtimeElectionTimeoutTicks; tick++) cluster.runTick();
    const leader = cluster.currentLeader();
    assert(leader !== 0, () => `seed ${seed}: the leader was lost while settling`);
    const termBefore = termOf(cluster, leader);
    cluster.crash(cluster.node(leader), 0, 'leader loss trial');
    loss.values.push(ticksToLeader(cluster, leader, `seed ${seed} leader loss`));
    loss.oneRound.push(termOf(cluster, cluster.currentLeader()) === termBefore + 1);
  }
  return { nodes, seeds, coldStart: cold, leaderLoss: loss };
}

function flag(argv: readonly string[], name: string, fallback: number): number {
  const at = argv.indexOf(name);
  if (at < 0) return fallback;
  const value = Number(argv[at + 1]);
  if (!Number.isSafeInteger(value) || value < 0) throw new Error(`${name} expects a non-negative integer, got ${argv[at + 1] ?? 'nothing'}`);
  return value;
}

function main(argv: readonly string[]): void {
  const figures = measureElectionTicks(flag(argv, '--nodes', 5), flag(argv, '--trials', 30), flag(argv, '--seed', 20_260_101));
  const count = (flags: readonly boolean[]): number => flags.filter(Boolean).length;
  // Exact figures only (the gate compares them field by field).
  process.stdout.write(
    `${JSON.stringify({
      nodes: figures.nodes,
      trials: figures.seeds.length,
      firstSeed: figures.seeds[0] ?? null,
      coldStartTicks: figures.coldStart.values,
      coldStartOneRound: count(figures.coldStart.oneRound),
      leaderLossTicks: figures.leaderLoss.values,
      leaderLossOneRound: count(figures.leaderLoss.oneRound),
    })}\n`,
  );
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  try {
    main(process.argv.slice(2));
  } catch (error) {
    const isBug = error instanceof AssertionError;
    process.stderr.write(`election-ticks: ${error instanceof Error ? (isBug ? (error.stack ?? error.message) : error.message) : String(error)}\n`);
    process.exitCode = 1;
  }
}
