/**
 * The process-cluster benchmark harness (benchmarks/src/cluster) in a tiny mode, over both socket
 * transports: three node processes elect a leader, commit entries under the leader's load in every
 * timed window, the followers catch up with the same applied count and checksum, single proposals
 * commit one at a time with four messages each (with the runtime's holdCommitNotices on, the
 * leader's commit notices ride on the next append instead of costing a round of their own), the records form a valid bench run, and every node process exits cleanly
 * on stop. Nothing here asserts a speed: wall-clock figures belong in the bench report.
 */
import { existsSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import { nodeMainPath, processClusterSuite, runProcessCluster } from '../src/cluster/process-cluster.js';
import { type BenchRun, validateRun } from '../src/results.js';

describe('process-cluster benchmark harness', () => {
  test('three processes per transport commit entries, agree, and all exit', async () => {
    expect(existsSync(nodeMainPath), `${nodeMainPath} is missing: build first (npx tsc -b tsconfig.build.json)`).toBe(true);
    const result = await runProcessCluster({
      transports: ['tcp', 'ws'],
      seconds: 0.5,
      windowMs: 250,
      warmupMs: 100,
      latencySamples: 50,
      latencyGapMs: 0,
      skipReferences: true,
      holdCommitNotices: true,
    });
    expect(result.measurements.map((measurement) => measurement.transport)).toEqual(['tcp', 'ws']);
    for (const measurement of result.measurements) {
      const { throughput, latency, nodes } = measurement;
      expect(throughput.windowRates).toHaveLength(2);
      // A loaded machine can stall a short window; the run as a whole must commit.
      expect(Math.max(...throughput.windowRates)).toBeGreaterThan(0);
      expect(throughput.entries).toBeGreaterThan(0);
      expect(throughput.failures).toBe(0);
      // Every node applied the same entries (the harness checks checksums too, and throws otherwise).
      expect(nodes).toHaveLength(3);
      const leaders = nodes.filter((status) => status.role === 'leader');
      expect(leaders).toHaveLength(1);
      const applied = (leaders[0] as (typeof nodes)[number]).applied;
      expect(applied).toBeGreaterThanOrEqual(throughput.entries + 50);
      for (const status of nodes) expect(status.applied).toBe(applied);
      expect(latency.samplesMicros).toHaveLength(50);
      expect(latency.failures).toBe(0);
      // One append and one response per follower: no extra round of commit notices.
      expect(latency.messages / latency.samplesMicros.length).toBeLessThan(4.5);
    }
    expect(result.processes).toHaveLength(6);
    for (const exit of result.processes) {
      expect(exit.killed, `node ${exit.transport}/${exit.id} had to be killed`).toBe(false);
      expect(exit.exitCode).toBe(0);
    }
    const metrics = result.records.map((record) => `${record.transport} ${record.metric}`);
    for (const transport of ['tcp', 'ws']) {
      for (const metric of ['throughput', 'commit-latency', 'bytes-per-entry', 'messages-per-entry']) expect(metrics).toContain(`${transport} ${metric}`);
    }
    for (const record of result.records) expect(record.suite).toBe(processClusterSuite);
    const now = new Date().toISOString();
    const run: BenchRun = {
      schema: 1,
      mode: 'quick',
      startedAt: now,
      finishedAt: now,
      durationMs: 0,
      machine: { cpuModel: 'test', cores: 1, memoryBytes: 1, platform: 'linux', arch: 'x64' },
      node: process.version,
      commit: 'test',
      dirty: false,
      seeds: [],
      notes: result.notes,
      records: JSON.parse(JSON.stringify(result.records)) as BenchRun['records'],
    };
    const validation = validateRun(run);
    expect(validation.ok ? [] : validation.errors).toEqual([]);
    expect(result.summary).toContain('entries/s');
  });
});
