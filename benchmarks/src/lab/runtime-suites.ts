/**
 * The measurements the bench lab makes on RaftRuntime clusters (runtime-cluster.ts): commit and
 * apply latency idle and under load, sustained throughput and traffic per entry, elections in
 * milliseconds, recovery of a lagging follower, and heap bytes per retained entry. Each returns
 * raw samples; the orchestrator (main.ts) turns them into records.
 */
import { assert } from '@raftlab/core';
import type { RaftRuntime } from '@raftlab/runtime';

import type { LabPlan, LabTransport } from './options.js';
import type { ElectionTrials } from './records.js';
import { RuntimeCluster, commandBatch, sleep, waitUntil } from './runtime-cluster.js';

/**
 * Times propose -> committed at the leader: each proposed batch's last index is known in advance
 * (the runtime appends queued proposals in order, from one proposer, with no leader change), and
 * the leader's commit index is checked after every inbound message and commit event.
 */
class CommitClock {
  private readonly targets: { index: number; startedAt: number; keep: boolean }[] = [];
  private head = 0;
  readonly commitMs: number[] = [];
  private readonly unwatch: () => void;
  private readonly onCommit = (): void => this.observe();

  constructor(
    cluster: RuntimeCluster,
    private readonly leader: RaftRuntime<number>,
  ) {
    this.unwatch = cluster.watch(() => this.observe());
    leader.on('commit', this.onCommit);
  }

  expect(index: number, startedAt: number, keep: boolean): void {
    this.targets.push({ index, startedAt, keep });
  }

  observe(): void {
    const commit = this.leader.node.commitIndex;
    while (this.head < this.targets.length) {
      const target = this.targets[this.head] as (typeof this.targets)[number];
      if (target.index > commit) return;
      if (target.keep) this.commitMs.push(performance.now() - target.startedAt);
      this.head += 1;
    }
  }

  close(): void {
    this.unwatch();
    this.leader.off('commit', this.onCommit);
  }
}

/** Latency samples of one phase, per batch (every entry of a batch shares its batch's times). */
export interface LatencySamples {
  readonly commitMs: number[];
  readonly applyMs: number[];
}

/** Idle figures: latency, plus the traffic of the timed batches. */
export interface IdleFigures extends LatencySamples {
  readonly messages: number;
  readonly bytes: number;
  readonly entriesCommitted: number;
}

/** Idle: one batch at a time, the next proposed once the previous is applied. */
export async function measureIdleLatency(cluster: RuntimeCluster, plan: LabPlan): Promise<IdleFigures> {
  const leader = await cluster.stableLeader();
  const batch = commandBatch(plan.batch, plan.entryBytes, 0);
  const clock = new CommitClock(cluster, leader);
  const applyMs: number[] = [];
  const warmup = 3;
  let trafficBefore = cluster.traffic();
  let commitBefore = leader.node.commitIndex;
  try {
    let lastIndex = leader.node.lastIndex;
    for (let i = 0; i < warmup + plan.idleBatches; i++) {
      const keep = i >= warmup;
      if (i === warmup) {
        trafficBefore = cluster.traffic();
        commitBefore = leader.node.commitIndex;
      }
      const startedAt = performance.now();
      lastIndex += plan.batch;
      clock.expect(lastIndex, startedAt, keep);
      await leader.proposeBatch(batch);
      if (keep) applyMs.push(performance.now() - startedAt);
      clock.observe();
      // Let followers apply and heartbeats pass: idle means nothing else in flight.
      await sleep(1);
    }
    assert(leader.node.lastIndex === lastIndex, () => `idle phase: leader last index ${leader.node.lastIndex}, expected ${lastIndex} (a leader change?)`);
    const trafficAfter = cluster.traffic();
    return {
      commitMs: clock.commitMs,
      applyMs,
      messages: trafficAfter.messages - trafficBefore.messages,
      bytes: trafficAfter.bytes - trafficBefore.bytes,
      entriesCommitted: leader.node.commitIndex - commitBefore,
    };
  } finally {
    clock.close();
  }
}

/** Under load: the idle figures' latency and traffic, plus throughput windows. */
export interface LoadFigures extends IdleFigures {
  /** Committed entries per second, one sample per timed window. */
  readonly throughput: number[];
}

/** Closed loop with `plan.loadBatchesInflight` batches in flight: run-in, then timed windows. */
export async function measureLoad(cluster: RuntimeCluster, plan: LabPlan): Promise<LoadFigures> {
  const leader = await cluster.stableLeader();
  const batch = commandBatch(plan.batch, plan.entryBytes, 0);
  const clock = new CommitClock(cluster, leader);
  const applyMs: number[] = [];
  const throughput: number[] = [];
  let lastIndex = leader.node.lastIndex;
  let measuring = false;
  let stopping = false;
  let failure: unknown = null;
  const proposer = async (): Promise<void> => {
    while (!stopping) {
      const startedAt = performance.now();
      const keep = measuring;
      lastIndex += plan.batch;
      clock.expect(lastIndex, startedAt, keep);
      await leader.proposeBatch(batch);
      if (keep && measuring) applyMs.push(performance.now() - startedAt);
    }
  };
  const proposers = Array.from({ length: plan.loadBatchesInflight }, () =>
    proposer().catch((error: unknown) => {
      failure ??= error;
      stopping = true;
    }),
  );
  try {
    await sleep(plan.loadWarmupMs);
    measuring = true;
    const trafficBefore = cluster.traffic();
    const commitBefore = leader.node.commitIndex;
    let windowCommit = commitBefore;
    let windowStart = performance.now();
    for (let window = 0; window < plan.loadWindows && failure === null; window++) {
      await sleep(plan.loadWindowMs);
      const now = performance.now();
      const commit = leader.node.commitIndex;
      throughput.push(((commit - windowCommit) * 1000) / (now - windowStart));
      windowCommit = commit;
      windowStart = now;
    }
    const trafficAfter = cluster.traffic();
    measuring = false;
    stopping = true;
    await Promise.all(proposers);
    if (failure !== null) throw failure;
    assert(leader.node.lastIndex === lastIndex, () => `load phase: leader last index ${leader.node.lastIndex}, expected ${lastIndex} (a leader change?)`);
    return {
      commitMs: clock.commitMs,
      applyMs,
      throughput,
      messages: trafficAfter.messages - trafficBefore.messages,
      bytes: trafficAfter.bytes - trafficBefore.bytes,
      entriesCommitted: windowCommit - commitBefore,
    };
  } finally {
    stopping = true;
    await Promise.all(proposers);
    clock.close();
  }
}

/** Resolves when a node other than `excluding` becomes leader in a term above `termAbove`: its id and term. */
function nextLeader(cluster: RuntimeCluster, excluding: number, termAbove: number, timeoutMs: number): Promise<{ id: number; term: number }> {
  return new Promise((resolve, reject) => {
    const listeners: (() => void)[] = [];
    const done = (outcome: { id: number; term: number } | Error): void => {
      clearTimeout(timer);
      for (const remove of listeners) remove();
      if (outcome instanceof Error) reject(outcome);
      else resolve(outcome);
    };
    const timer = setTimeout(() => done(new Error(`no new leader within ${timeoutMs} ms (${cluster.describe()})`)), timeoutMs);
    for (const runtime of cluster.runtimes) {
      if (runtime.node.id === excluding) continue;
      const listener = ({ role, term }: { role: string; term: number }): void => {
        if (role === 'leader' && term > termAbove) done({ id: runtime.node.id, term });
      };
      runtime.on('role', listener);
      listeners.push(() => runtime.off('role', listener));
      if (runtime.node.role === 'leader' && runtime.node.term > termAbove) {
        done({ id: runtime.node.id, term: runtime.node.term });
        return;
      }
    }
  });
}

/** Election times with real runtimes (10 ms ticks), cold start and leader loss. */
export interface ElectionMsFigures {
  readonly coldStart: ElectionTrials;
  readonly leaderLoss: ElectionTrials;
}

const electionTimeoutMs = 10_000;

/**
 * Cold start: a fresh cluster per trial, timed from starting the runtimes to the first leader.
 * Leader loss: on one cluster, the leader is cut off from every peer (runtime.partition) and the
 * time to a new leader among the others is taken; then the partition heals and the cluster settles
 * before the next trial.
 */
export async function measureElectionMs(transport: LabTransport, nodes: number, trials: number, seed: number, onTrial: () => void): Promise<ElectionMsFigures> {
  const cold = { values: [] as number[], oneRound: [] as boolean[] };
  for (let trial = 0; trial < trials; trial++) {
    const cluster = await RuntimeCluster.create({ transport, nodes, seed: (seed + 7919 * trial) >>> 0 });
    try {
      const startedAt = performance.now();
      await cluster.start();
      // Listening only now is safe: no election completes within its first timeout (200 ms), and
      // nextLeader also takes a leader that is already there.
      const { term } = await nextLeader(cluster, 0, 0, electionTimeoutMs);
      cold.values.push(performance.now() - startedAt);
      cold.oneRound.push(term === 1);
    } finally {
      await cluster.stop();
    }
    onTrial();
  }
  const loss = { values: [] as number[], oneRound: [] as boolean[] };
  const cluster = await RuntimeCluster.create({ transport, nodes, seed: (seed + 104_729) >>> 0 });
  try {
    await cluster.start();
    for (let trial = 0; trial < trials; trial++) {
      const leader = await cluster.stableLeader();
      const old = leader.node.id;
      const termBefore = leader.node.term;
      const others = cluster.runtimes.map((r) => r.node.id).filter((id) => id !== old);
      const startedAt = performance.now();
      const elected = nextLeader(cluster, old, termBefore, electionTimeoutMs);
      leader.partition(others);
      const { term } = await elected;
      loss.values.push(performance.now() - startedAt);
      loss.oneRound.push(term === termBefore + 1);
      leader.heal();
      await cluster.stableLeader();
      onTrial();
    }
  } finally {
    await cluster.stop();
  }
  return { coldStart: cold, leaderLoss: loss };
}

/** One recovery trial. */
export interface RecoveryFigures {
  readonly ms: number;
  readonly entries: number;
}

/**
 * A follower cut off while the leader commits `lag` entries with the others; leadership then moves
 * to another up-to-date follower (a new leader knows nothing of the lagging follower's log), the
 * partition heals, and the time until the lagging follower has applied everything is taken. The
 * log is never compacted here, so catch-up is log replication (not InstallSnapshot).
 */
export async function measureRecovery(transport: LabTransport, nodes: number, lag: number, plan: LabPlan, seed: number): Promise<RecoveryFigures> {
  assert(nodes >= 3, () => `recovery needs at least 3 nodes, got ${nodes}`);
  const cluster = await RuntimeCluster.create({ transport, nodes, seed, compaction: false });
  try {
    await cluster.start();
    const leader = await cluster.stableLeader();
    const ids = cluster.runtimes.map((r) => r.node.id);
    const followers = ids.filter((id) => id !== leader.node.id);
    const laggingId = followers[0] as number;
    const nextLeaderId = followers[1] as number;
    const lagging = cluster.runtime(laggingId);
    lagging.partition(ids.filter((id) => id !== laggingId));
    const batch = commandBatch(plan.batch, plan.entryBytes, 0);
    const batches = Math.ceil(lag / plan.batch);
    let proposed = 0;
    const proposer = async (): Promise<void> => {
      while (proposed < batches) {
        proposed += 1;
        await leader.proposeBatch(batch);
      }
    };
    await Promise.all(Array.from({ length: plan.loadBatchesInflight }, proposer));
    await leader.transferLeadership(nextLeaderId);
    const newLeader = cluster.runtime(nextLeaderId);
    await waitUntil(() => newLeader.node.role === 'leader' && newLeader.node.commitIndex >= leader.node.commitIndex, 10_000, () => `node ${nextLeaderId} to lead (${cluster.describe()})`);
    const target = newLeader.node.commitIndex;
    const behind = target - lagging.node.appliedIndex;
    const startedAt = performance.now();
    lagging.heal();
    await waitUntil(() => lagging.node.appliedIndex >= target, 120_000, () => `node ${laggingId} to apply through ${target} (${cluster.describe()})`);
    return { ms: performance.now() - startedAt, entries: behind };
  } finally {
    await cluster.stop();
  }
}

/** The garbage collector, exposed (node --expose-gc, or switched on here). */
async function collector(): Promise<() => void> {
  const exposed = (globalThis as { gc?: () => void }).gc;
  if (typeof exposed === 'function') return exposed;
  const v8 = await import('node:v8');
  const vm = await import('node:vm');
  v8.setFlagsFromString('--expose-gc');
  return vm.runInNewContext('gc') as () => void;
}

function heapBytes(): number {
  const usage = process.memoryUsage();
  return usage.heapUsed + usage.arrayBuffers;
}

/**
 * Heap bytes per retained entry and replica: a memory-transport cluster that never compacts
 * commits `entries` entries; JS heap plus ArrayBuffer bytes (the rings live there) before and
 * after, each after a full GC, divided by entries x nodes. The rings grow by doubling, so this
 * includes up to one ring's unused half: it is what the process actually holds.
 */
export async function measureHeapPerEntry(nodes: number, entries: number, plan: LabPlan, seed: number): Promise<number> {
  const gc = await collector();
  const cluster = await RuntimeCluster.create({ transport: 'memory', nodes, seed, compaction: false });
  try {
    await cluster.start();
    const leader = await cluster.stableLeader();
    const batch = commandBatch(plan.batch, plan.entryBytes, 0);
    gc();
    gc();
    const before = heapBytes();
    const baseIndex = leader.node.lastIndex;
    const batches = Math.ceil(entries / plan.batch);
    let proposed = 0;
    const proposer = async (): Promise<void> => {
      while (proposed < batches) {
        proposed += 1;
        await leader.proposeBatch(batch);
      }
    };
    await Promise.all(Array.from({ length: plan.loadBatchesInflight }, proposer));
    const target = baseIndex + batches * plan.batch;
    await waitUntil(() => cluster.runtimes.every((r) => r.node.appliedIndex >= target), 60_000, () => `every node to apply through ${target}`);
    await sleep(50);
    gc();
    gc();
    const after = heapBytes();
    return (after - before) / (batches * plan.batch * nodes);
  } finally {
    await cluster.stop();
  }
}
