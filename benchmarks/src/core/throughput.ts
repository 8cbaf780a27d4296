/**
 * Core throughput benchmark (tinybench): three RaftNodes in one process, messages delivered
 * directly, batches of 1000 proposals of 16 bytes; one task iteration proposes a batch at the
 * leader and runs Ready cycles until it is committed and applied on every node. Reports committed-
 * and-applied entries per second: median with spread over the iterations.
 *
 *   node benchmarks/dist/core/throughput.js [--size small|large] [--nodes 3] [--batch 1000] [--json]
 */
import { Bench } from 'tinybench';
import { DirectCluster } from './direct-cluster.js';

/** Result of one throughput run. */
export interface ThroughputResult {
  readonly nodes: number;
  readonly batch: number;
  readonly payloadBytes: number;
  readonly iterations: number;
  /** Entries per second, from the median batch latency. */
  readonly entriesPerSecond: number;
  readonly spread: { readonly min: number; readonly p25: number; readonly p75: number; readonly max: number };
  readonly messagesPerEntry: number;
  readonly checksum: number;
}

/** Benchmark sizes: CI runs the small one so it never rots. */
export const throughputSizes = {
  small: { timeMs: 1500, warmupMs: 300 },
  large: { timeMs: 10_000, warmupMs: 1000 },
} as const;

function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const position = (sorted.length - 1) * q;
  const low = Math.floor(position);
  const high = Math.ceil(position);
  return (sorted[low] as number) + ((sorted[high] as number) - (sorted[low] as number)) * (position - low);
}

/** Runs the benchmark and returns entries/s with spread. */
export async function runCoreThroughput(options: {
  nodes?: number;
  batch?: number;
  payloadBytes?: number;
  size?: keyof typeof throughputSizes;
}): Promise<ThroughputResult> {
  const nodes = options.nodes ?? 3;
  const batch = options.batch ?? 1000;
  const payloadBytes = options.payloadBytes ?? 16;
  const { timeMs, warmupMs } = throughputSizes[options.size ?? 'small'];
  const cluster = new DirectCluster({ nodes });
  cluster.electFirst();
  const payload = new Uint8Array(payloadBytes).fill(7);
  const bench = new Bench({ time: timeMs, warmupTime: warmupMs, retainSamples: true });
  const messagesBefore = cluster.messages;
  const appliedBefore = cluster.applied;
  bench.add(`core-${nodes}-nodes-batch-${batch}`, () => cluster.runBatch(batch, payload));
  await bench.run();
  const task = bench.tasks[0];
  const result = task?.result;
  if (result === undefined || !('latency' in result)) throw new Error(`benchmark did not complete: ${JSON.stringify(result)}`);
  const samples = [...(result.latency.samples ?? [])].sort((a, b) => a - b);
  const perSecond = (ms: number): number => (batch * 1000) / ms;
  const entries = (cluster.applied - appliedBefore) / nodes;
  return {
    nodes,
    batch,
    payloadBytes,
    iterations: samples.length,
    entriesPerSecond: perSecond(quantile(samples, 0.5)),
    // Latency quantiles invert: the fastest batch gives the highest rate.
    spread: { min: perSecond(quantile(samples, 1)), p25: perSecond(quantile(samples, 0.75)), p75: perSecond(quantile(samples, 0.25)), max: perSecond(quantile(samples, 0)) },
    messagesPerEntry: (cluster.messages - messagesBefore) / entries,
    checksum: cluster.checksum,
  };
}

function formatRate(value: number): string {
  return `${(value / 1e6).toFixed(2)}M/s`;
}

async function main(argv: readonly string[]): Promise<void> {
  const flag = (name: string): string | undefined => {
    const at = argv.indexOf(name);
    return at >= 0 ? argv[at + 1] : undefined;
  };
  const size = (flag('--size') ?? 'small') as keyof typeof throughputSizes;
  if (!(size in throughputSizes)) throw new Error(`--size must be small or large, got ${size}`);
  const result = await runCoreThroughput({ size, nodes: Number(flag('--nodes') ?? 3), batch: Number(flag('--batch') ?? 1000) });
  if (argv.includes('--json')) {
    console.log(JSON.stringify(result));
    return;
  }
  const { spread } = result;
  console.log(
    `core throughput, ${result.nodes} nodes, batches of ${result.batch} x ${result.payloadBytes} B: ` +
      `${formatRate(result.entriesPerSecond)} committed and applied (median of ${result.iterations} batches; ` +
      `p25 ${formatRate(spread.p25)}, p75 ${formatRate(spread.p75)}, min ${formatRate(spread.min)}, max ${formatRate(spread.max)}); ` +
      `${result.messagesPerEntry.toFixed(4)} messages/entry (minimum ${((2 * (result.nodes - 1)) / result.batch).toFixed(4)}); checksum ${result.checksum}`,
  );
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main(process.argv.slice(2)).catch((error: unknown) => {
    console.error(error instanceof Error ? error.message : error);
    process.exit(1);
  });
}
