/**
 * The bench lab orchestrator's pure parts (benchmarks/src/lab): the command line refuses what it
 * cannot run and the plans size the full sweep and the quick subset as documented; the record
 * builders produce records the results schema accepts, with the medians, tails, shares and
 * minimums the report relies on; the peers step turns skips into notes and ratios into references;
 * the progress line renders as documented; and the simulator's election ticks repeat exactly for
 * fixed seeds (the gate depends on it) while differing across seeds. A small real run over the memory
 * and TCP transports checks the latency clock's order (committed before applied) and the counts.
 */
import { describe, expect, test } from 'vitest';

import { measureElectionTicks } from '../src/lab/election-ticks.js';
import { headline, plannedSteps } from '../src/lab/main.js';
import { LabUsageError, labPlan, parseLabArguments } from '../src/lab/options.js';
import { Progress, renderProgress } from '../src/lab/progress.js';
import { distributionRecords, electionRecords, exactRecord, peerRecords, trafficRecords } from '../src/lab/records.js';
import { RuntimeCluster } from '../src/lab/runtime-cluster.js';
import { measureIdleLatency, measureLoad } from '../src/lab/runtime-suites.js';
import type { PeerResult } from '../src/peers.js';
import { type BenchRun, validateRun } from '../src/results.js';

function runOf(records: BenchRun['records']): BenchRun {
  return {
    schema: 1,
    mode: 'quick',
    startedAt: '2026-12-01T00:00:00.000Z',
    finishedAt: '2026-12-01T00:01:00.000Z',
    durationMs: 60_000,
    machine: { cpuModel: 'Test CPU', cores: 2, memoryBytes: 1 << 30, platform: 'linux', arch: 'x64' },
    node: 'v20.20.2',
    commit: 'abc1234',
    dirty: false,
    seeds: [1],
    notes: [],
    records,
  };
}

describe('command line', () => {
  test('defaults: the full sweep over every suite, transport and size, peers on, progress on', () => {
    const options = parseLabArguments([]);
    expect(options).toMatchObject({ quick: false, suites: null, nodes: null, transports: null, peers: true, progress: true, list: false });
    const plan = labPlan(options);
    expect(plan.mode).toBe('full');
    expect(plan.grid).toHaveLength(12);
    expect(plan.nodeCounts).toEqual([3, 5, 7, 10]);
    expect(plan.suites).toEqual(['probe', 'micro', 'core', 'elections', 'cluster', 'recovery', 'memory', 'process-cluster', 'peers']);
    expect(plan.electionMsTrials).toBeGreaterThanOrEqual(30);
    expect(plan.electionTickTrials).toBeGreaterThanOrEqual(30);
    expect(plan.recoveryLagEntries).toBe(100_000);
    expect(plan.batch).toBe(1000);
  });

  test('--quick keeps every transport at 3 nodes and memory at 5, and fewer trials', () => {
    const plan = labPlan(parseLabArguments(['--quick']));
    expect(plan.mode).toBe('quick');
    expect(plan.grid.map((cell) => `${cell.transport}-${cell.nodes}`)).toEqual(['memory-3', 'memory-5', 'tcp-3', 'ws-3']);
    expect(plan.recoveryGrid.map((cell) => `${cell.transport}-${cell.nodes}`)).toEqual(['memory-3', 'tcp-3']);
    expect(plan.electionMsTrials).toBeLessThan(labPlan(parseLabArguments([])).electionMsTrials);
    expect(plannedSteps(plan)).toBeLessThan(plannedSteps(labPlan(parseLabArguments([]))));
  });

  test('narrowing by suites, sizes and transports; -- from pnpm is ignored; suites keep run order', () => {
    const options = parseLabArguments(['--', '--suites', 'peers,cluster', '--nodes', '5,3,5', '--transports', 'tcp', '--no-peers', '--trials', '7', '--seed', '42']);
    expect(options.nodes).toEqual([3, 5]);
    const plan = labPlan(options);
    expect(plan.suites).toEqual(['cluster']);
    expect(plan.grid.map((cell) => `${cell.transport}-${cell.nodes}`)).toEqual(['tcp-3', 'tcp-5']);
    expect(plan.electionMsTrials).toBe(7);
    // The simulator's trials are cheap: never below 30, whatever --trials says.
    expect(plan.electionTickTrials).toBe(30);
    expect(plan.seed).toBe(42);
  });

  test.each([
    [['--suites', 'nope'], /--suites: unknown value nope/],
    [['--nodes', '2'], /--nodes expects an integer in \[3, 15\], got 2/],
    [['--nodes', '3,x'], /--nodes expects an integer/],
    [['--transports', 'udp'], /--transports: unknown value udp; known: memory, tcp, ws/],
    [['--trials'], /--trials needs a value/],
    [['--seed', '-1'], /--seed expects an integer in \[0, 4294967295\], got -1/],
    [['--frobnicate'], /unknown argument --frobnicate/],
  ])('refuses %j', (argv, message) => {
    expect(() => parseLabArguments(argv)).toThrow(LabUsageError);
    expect(() => parseLabArguments(argv)).toThrow(message);
  });
});

describe('records', () => {
  const place = { suite: 'cluster', scenario: 'idle', transport: 'tcp' as const, nodes: 3, batch: 1000 };

  test('a distribution is a median record with spread and samples, plus exact tail records', () => {
    const samples = Array.from({ length: 101 }, (_, i) => 100 - i); // 0..100, any order
    const records = distributionRecords(place, 'commit-latency', 'ms', samples, ['p90', 'p99', 'max']);
    expect(records.map((r) => r.metric)).toEqual(['commit-latency', 'commit-latency-p90', 'commit-latency-p99', 'commit-latency-max']);
    expect(records[0]).toMatchObject({ value: 50, samples: 101, spread: { min: 0, p25: 25, p75: 75, max: 100 } });
    expect(records[0]?.distribution).toHaveLength(101);
    expect(records.slice(1).map((r) => r.value)).toEqual([90, 99, 100]);
    expect(records.slice(1).every((r) => r.spread === null && r.samples === 101)).toBe(true);
    expect(validateRun(runOf(records)).ok).toBe(true);
  });

  test('elections: ticks or ms with p99 and max, and the share decided in one round', () => {
    const records = electionRecords({ ...place, suite: 'elections', scenario: 'cold start', seeds: [5, 6, 7, 8] }, 'ticks', { values: [20, 22, 41, 25], oneRound: [true, true, false, true] });
    expect(records.map((r) => r.metric)).toEqual(['election-ticks', 'election-ticks-p99', 'election-ticks-max', 'election-one-round-ticks']);
    expect(records[0]).toMatchObject({ value: 23.5, seeds: [5, 6, 7, 8] });
    expect(records[2]?.value).toBe(41);
    expect(records[3]).toMatchObject({ value: 0.75, unit: 'share', samples: 4, spread: null, scenario: 'cold start' });
    expect(validateRun(runOf(records)).ok).toBe(true);
    expect(() => electionRecords(place, 'ms', { values: [1, 2], oneRound: [true] })).toThrow(/2 election values but 1 round flags/);
  });

  test('traffic per committed entry stands beside the minimum 2(N-1)/B', () => {
    const records = trafficRecords({ ...place, nodes: 5 }, { messages: 900, bytes: 4_200_000, entriesCommitted: 100_000 });
    expect(Object.fromEntries(records.map((r) => [r.metric, r.value]))).toEqual({ 'messages-per-entry': 0.009, 'messages-per-entry-min': 0.008, 'bytes-per-entry': 42 });
    expect(() => trafficRecords(place, { messages: 1, bytes: 1, entriesCommitted: 0 })).toThrow(/0 committed entries/);
  });

  test('peers: figures carry raftlab core as reference, skips become notes with their reason', () => {
    const base = { batch: 1000 as const, nodes: 3 as const, meta: {} };
    const results: PeerResult[] = [
      { ...base, peer: 'etcd-raft-3.4', variant: 'propose-each', status: 'skipped', reason: "no 'go' on PATH", entriesPerSecond: [] },
      { ...base, peer: 'liferaft', variant: 'command-each', status: 'ok', entriesPerSecond: [900, 1000, 1100] },
    ];
    const outcome = peerRecords(results, 5_000_000);
    expect(outcome.records).toHaveLength(1);
    expect(outcome.records[0]).toMatchObject({ suite: 'peers', scenario: 'liferaft command-each', value: 1000, reference: { name: 'raftlab core, 3 nodes', value: 5_000_000, ratio: 0.0002 } });
    expect(outcome.notes).toEqual(["peer etcd-raft-3.4 propose-each skipped: no 'go' on PATH", 'raftlab core (3 nodes, batches of 1000) runs at 5000× liferaft command-each (same machine, same run)']);
    expect(peerRecords(results, null).records[0]?.reference).toBeUndefined();
  });

  test('the headline names throughput as a share of the probe and the idle p99', () => {
    const throughput = { ...exactRecord({ ...place, scenario: 'load' }, 'throughput', 'entries/s', 2_000_000), reference: { name: 'probe', value: 20_000_000, unit: 'entries/s', ratio: 0.1 } };
    const p99 = exactRecord(place, 'commit-latency-p99', 'ms', 1.234);
    expect(headline(runOf([throughput, p99]))).toEqual(['  tcp     3 nodes: 2.00M entries/s (10.0% of probe), idle commit p99 1.23 ms']);
  });
});

describe('progress', () => {
  test('renders a bar, the count, the elapsed time and the label', () => {
    expect(renderProgress(7, 28, 83_000, 'cluster tcp 3 nodes: load')).toBe(`[${'#'.repeat(7)}${'.'.repeat(21)}] 7/28 1:23 cluster tcp 3 nodes: load`);
    expect(renderProgress(40, 28, 0, 'done')).toBe(`[${'#'.repeat(28)}] 28/28 0:00 done`);
  });

  test('a terminal gets the bar redrawn in place; a pipe gets one line per counted step', () => {
    const terminal: string[] = [];
    const bar = new Progress(2, { isTTY: true, columns: 200, write: (text: string) => terminal.push(text) });
    bar.show('a');
    bar.step('a');
    bar.finish('done');
    expect(terminal.every((text) => text.startsWith('\r') || text === '\n')).toBe(true);
    // A pseudo-terminal reporting 0 columns must not cut the label.
    const narrow: string[] = [];
    new Progress(1, { isTTY: true, columns: 0, write: (text: string) => narrow.push(text) }).step('probe 3 nodes');
    expect(narrow[0]).toMatch(/probe 3 nodes$/);
    const pipe: string[] = [];
    const lines = new Progress(2, { isTTY: false, write: (text: string) => pipe.push(text) });
    lines.show('not counted');
    lines.step('one');
    lines.log('a warning');
    expect(pipe).toHaveLength(2);
    expect(pipe[0]).toMatch(/1\/2 0:00 one\n$/);
    expect(pipe[1]).toBe('a warning\n');
  });
});

describe('election ticks in the simulator', () => {
  test('the same seeds give the same ticks; other seeds give other ticks; all within the timeout bounds', () => {
    const first = measureElectionTicks(3, 12, 1000);
    const again = measureElectionTicks(3, 12, 1000);
    const other = measureElectionTicks(3, 12, 2000);
    expect(again).toEqual(first);
    expect(other.coldStart.values).not.toEqual(first.coldStart.values);
    // A cold start takes at least one election timeout (20 ticks) and, decided in one round, less than two.
    first.coldStart.values.forEach((ticks, i) => {
      expect(ticks).toBeGreaterThanOrEqual(20);
      if (first.coldStart.oneRound[i] === true) expect(ticks).toBeLessThan(41);
    });
    expect(first.leaderLoss.values.every((ticks) => ticks >= 20)).toBe(true);
    expect(first.seeds).toEqual(Array.from({ length: 12 }, (_, i) => 1000 + 3000 + i));
  });
});

describe('runtime measurements (small, on 127.0.0.1)', () => {
  const plan = {
    ...labPlan(parseLabArguments(['--quick'])),
    idleBatches: 3,
    loadWarmupMs: 100,
    loadWindows: 2,
    loadWindowMs: 100,
  };

  test.each(['memory', 'tcp'] as const)('%s: every idle batch commits before it applies, load commits entries and sends messages', async (transport) => {
    const cluster = await RuntimeCluster.create({ transport, nodes: 3, seed: 7 });
    try {
      await cluster.start();
      const idle = await measureIdleLatency(cluster, plan);
      expect(idle.commitMs).toHaveLength(3);
      expect(idle.applyMs).toHaveLength(3);
      idle.commitMs.forEach((commit, i) => expect(commit).toBeLessThanOrEqual(idle.applyMs[i] as number));
      // Each batch needs at least one append and one answer per follower: 2(N-1) messages per batch.
      expect(idle.messages).toBeGreaterThanOrEqual(3 * 4);
      expect(idle.entriesCommitted).toBe(3000);
      const load = await measureLoad(cluster, plan);
      expect(load.throughput).toHaveLength(2);
      expect(load.entriesCommitted).toBeGreaterThan(0);
      expect(load.messages).toBeGreaterThan(0);
      expect(load.commitMs.length).toBeGreaterThan(0);
    } finally {
      await cluster.stop();
    }
  }, 30_000);
});
