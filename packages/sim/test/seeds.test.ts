/**
 * The CI subset: 300 seeds under CI=true (150 locally) across 3 to 10 nodes, each sampling its own
 * fault profile, run with every checker (the core's invariants included), must show zero safety
 * violations and zero liveness failures, and must really have exercised the faults (crashes,
 * partitions, snapshots sent in chunks, unsynced writes lost and torn in crashes, acknowledged
 * commands, commands refused as too large), so a pass is not vacuous. RAFTLAB_SOAK=1 runs seeds 1..10000 instead (or RAFTLAB_SOAK_SEEDS=A..B); the CLI does
 * the same faster on worker threads: `pnpm sim --seeds 1..10000`.
 */
import { describe, expect, test } from 'vitest';
import { type SeedResult, runSeed, summarize } from '../src/index.js';

function seedRange(): { min: number; max: number } {
  const explicit = process.env.RAFTLAB_SOAK_SEEDS;
  if (explicit !== undefined) {
    const match = /^(\d+)\.\.(\d+)$/.exec(explicit);
    if (match === null) throw new Error(`RAFTLAB_SOAK_SEEDS must look like 1..10000, got ${explicit}`);
    return { min: Number(match[1]), max: Number(match[2]) };
  }
  if (process.env.RAFTLAB_SOAK === '1') return { min: 1, max: 10_000 };
  // CI (.ci/run sets CI=true) runs a few hundred; a local default run stays quick.
  return process.env.CI === 'true' ? { min: 1, max: 300 } : { min: 1, max: 150 };
}

describe('seeds', () => {
  const range = seedRange();
  test(`seeds ${range.min}..${range.max} across 3..10 nodes: no violation, no liveness failure`, { timeout: 24 * 3600_000 }, () => {
    const started = performance.now();
    const results: SeedResult[] = [];
    for (let seed = range.min; seed <= range.max; seed++) results.push(runSeed({ seed }));
    const summary = summarize(results, { seeds: `${range.min}..${range.max}`, nodes: { min: 3, max: 10 }, planted: [], durationMs: performance.now() - started });
    expect(summary.failures).toEqual([]);
    expect(summary.violations).toBe(0);
    expect(summary.livenessFailures).toBe(0);
    expect(new Set(results.map((result) => result.nodeCount))).toEqual(new Set([3, 4, 5, 6, 7, 8, 9, 10]));
    expect(summary.crashes).toBeGreaterThan(range.max - range.min);
    expect(summary.partitions).toBeGreaterThan(0);
    expect(summary.snapshotsInstalled).toBeGreaterThan(0);
    // Snapshots travel in several chunks on the seeds with small chunk bounds.
    expect(summary.snapshotChunksSent).toBeGreaterThan(2 * summary.snapshotsInstalled);
    // Crashes lost unsynced writes, some of them torn, and every checker still held.
    expect(summary.writesLost).toBeGreaterThan(0);
    expect(summary.writesTorn).toBeGreaterThan(0);
    expect(summary.commandsAcknowledged).toBeGreaterThan(range.max - range.min);
    expect(summary.commandsRejected).toBeGreaterThan(0); // the too-large path, with small rings
  });
});
