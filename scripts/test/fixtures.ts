/**
 * Synthetic bench runs for the report's tests: every chart family, deterministic (a small LCG, no
 * Math.random), with the shapes real suites produce (throughput falling with cluster size, latency
 * distributions, election tick histograms, messages per entry above 2(N-1)/B).
 */
import { type BenchRecord, type BenchRun, downsample, messagesPerEntryMin, referenceFor, summarize } from '@raftlab/benchmarks/dist/results.js';

/** A deterministic generator of numbers in [0, 1). */
export function lcg(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

const sizes = [3, 5, 7, 10];
const transports = ['memory', 'tcp', 'ws'] as const;

/** Families a synthetic run can hold. */
export type Family = 'throughput' | 'latency' | 'election' | 'messages' | 'other';

/** A valid run holding the given families. */
export function syntheticRun(families: readonly Family[] = ['throughput', 'latency', 'election', 'messages', 'other']): BenchRun {
  const random = lcg(42);
  const records: BenchRecord[] = [];
  const probe = 5_000_000;
  for (const transport of transports) {
    const speed = transport === 'memory' ? 1 : transport === 'tcp' ? 0.4 : 0.3;
    for (const nodes of sizes) {
      if (families.includes('throughput')) {
        const samples = Array.from({ length: 10 }, () => (2_000_000 * speed * 3) / nodes * (0.95 + 0.1 * random()));
        const summary = summarize(samples);
        records.push({ suite: 'throughput', transport, nodes, batch: 1000, metric: 'throughput', unit: 'entries/s', ...summary, reference: referenceFor(summary.value, 'speed-of-light probe', probe, 'entries/s'), checksum: 'c0ffee01' });
      }
      if (families.includes('latency')) {
        const samples = Array.from({ length: 5000 }, () => (0.05 + nodes * 0.01) / speed * (1 + 3 * random() ** 4));
        records.push({ suite: 'latency', scenario: 'unloaded', transport, nodes, batch: 1, metric: 'commit-latency', unit: 'ms', ...summarize(samples), distribution: downsample(samples) });
      }
      if (families.includes('election')) {
        const ticks = Array.from({ length: 200 }, () => 10 + Math.floor(10 * random()) + (random() < 0.1 ? 15 : 0));
        records.push({ suite: 'election', scenario: 'cold start', transport, nodes, batch: 1, metric: 'election-ticks', unit: 'ticks', ...summarize(ticks), distribution: ticks, seeds: [1, 2, 3] });
        const ms = ticks.map((t) => t * 10 + random() * 3);
        records.push({ suite: 'election', scenario: 'cold start', transport, nodes, batch: 1, metric: 'election-ms', unit: 'ms', ...summarize(ms), distribution: downsample(ms) });
      }
      if (families.includes('messages')) {
        const exact = messagesPerEntryMin(nodes, 1000) * 2;
        records.push({ suite: 'messages', transport, nodes, batch: 1000, metric: 'messages-per-entry', unit: 'messages/entry', value: exact, samples: 1, spread: null, fsync: 'none' });
        records.push({ suite: 'messages', transport, nodes, batch: 1000, metric: 'bytes-per-entry', unit: 'B/entry', value: 42 + nodes, samples: 1, spread: null, fsync: 'none' });
      }
    }
  }
  if (families.includes('other')) {
    records.push({ suite: 'memory', transport: 'none', nodes: 1, batch: 1, metric: 'heap-bytes-per-entry', unit: 'B/entry', value: 23.5, samples: 3, spread: { min: 23.1, p25: 23.3, p75: 23.6, max: 23.7, stdev: 0.3 }, note: 'measured after a forced GC' });
  }
  return {
    schema: 1,
    mode: 'quick',
    startedAt: '2026-01-02T03:04:05.678Z',
    finishedAt: '2026-01-02T03:09:15.000Z',
    durationMs: 309_322,
    machine: { cpuModel: 'Test CPU @ 3.0GHz', cores: 2, memoryBytes: 24 * 2 ** 30, platform: 'linux', arch: 'x64' },
    node: 'v20.20.2',
    commit: 'abc1234',
    dirty: false,
    seeds: [1, 2, 3],
    notes: ['synthetic run for the report tests'],
    records,
  };
}
