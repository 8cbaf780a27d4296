#!/usr/bin/env node
/**
 * Benchmark of simulate(): wall time of whole runs (1000 random commands) for 3 nodes without loss,
 * 3 nodes at 10% loss and 10 nodes at 10% loss, with the default checks (the safety checker after
 * every event; the answer verified against the directly computed sum). Each case warms up, then
 * times several runs with different seeds and reports the median with the spread (min, p90, max),
 * plus the virtual ticks and events per run and a checksum of the results so the work cannot be
 * optimized away. Targets: 10 nodes under 1 s, 3 nodes under 100 ms.
 *
 *   node packages/sim/dist/bench.js [--runs 15] [--json] [--small]
 *
 * --small runs one timed run per case (CI keeps the benchmark from rotting without the wait).
 */
import { Prng } from '@raftlab/core';
import { simulate } from './simulate.js';
import { percentile } from './summary.js';

/** One benchmark case. */
interface BenchCase {
  readonly name: string;
  readonly nodes: number;
  readonly loss: number;
  readonly targetMs: number;
}

const cases: readonly BenchCase[] = [
  { name: '3 nodes, 1000 commands, no loss', nodes: 3, loss: 0, targetMs: 100 },
  { name: '3 nodes, 1000 commands, 10% loss', nodes: 3, loss: 0.1, targetMs: 100 },
  { name: '10 nodes, 1000 commands, 10% loss', nodes: 10, loss: 0.1, targetMs: 1000 },
];

/** The figures of one case. */
export interface BenchFigures {
  readonly name: string;
  readonly runs: number;
  readonly medianMs: number;
  readonly minMs: number;
  readonly p90Ms: number;
  readonly maxMs: number;
  readonly targetMs: number;
  readonly medianTicks: number;
  readonly medianEvents: number;
  readonly checksum: string;
}

function commandsFor(seed: number): string[] {
  const prng = new Prng(seed);
  return Array.from({ length: 1000 }, () => String(prng.nextInt(2_000_001) - 1_000_000));
}

/** Times `runs` runs of one case after `warmups` untimed ones. */
export function benchCase(benchCase: BenchCase, runs: number, warmups: number): BenchFigures {
  const times: number[] = [];
  const ticks: number[] = [];
  const events: number[] = [];
  let checksum = 0n;
  for (let i = 0; i < warmups + runs; i++) {
    const seed = 1000 + i;
    const commands = commandsFor(seed);
    const started = performance.now();
    const result = simulate({ nodes: benchCase.nodes, commands, seed, faults: { loss: benchCase.loss } });
    const elapsed = performance.now() - started;
    if (!result.ok) throw new Error(`${benchCase.name}, seed ${seed}: ${result.error.code}: ${result.error.message}`);
    if (i < warmups) continue;
    times.push(elapsed);
    ticks.push(result.ticks);
    events.push(result.events);
    for (const state of result.states) checksum = BigInt.asIntN(64, checksum * 31n + state);
  }
  const round = (value: number | null): number => Math.round((value ?? 0) * 10) / 10;
  return {
    name: benchCase.name,
    runs,
    medianMs: round(percentile(times, 50)),
    minMs: round(percentile(times, 0)),
    p90Ms: round(percentile(times, 90)),
    maxMs: round(percentile(times, 100)),
    targetMs: benchCase.targetMs,
    medianTicks: percentile(ticks, 50) ?? 0,
    medianEvents: percentile(events, 50) ?? 0,
    checksum: checksum.toString(16),
  };
}

function main(args: readonly string[]): void {
  const small = args.includes('--small');
  const runsAt = args.indexOf('--runs');
  const runs = small ? 1 : runsAt >= 0 ? Number(args[runsAt + 1]) : 15;
  if (!Number.isInteger(runs) || runs < 1) {
    process.stderr.write('usage: bench.js [--runs N] [--json] [--small]\n');
    process.exitCode = 2;
    return;
  }
  const figures = cases.map((each) => benchCase(each, runs, small ? 1 : 5));
  if (args.includes('--json')) {
    process.stdout.write(`${JSON.stringify({ node: process.version, figures })}\n`);
    return;
  }
  process.stdout.write(`simulate() benchmark, Node ${process.version}, ${runs} timed runs per case (different seeds), after warm-up\n`);
  for (const each of figures) {
    const verdict = each.medianMs < each.targetMs ? 'meets' : 'MISSES';
    process.stdout.write(
      `  ${each.name.padEnd(36)} median ${each.medianMs} ms (min ${each.minMs}, p90 ${each.p90Ms}, max ${each.maxMs}), ` +
        `${each.medianTicks} ticks, ${each.medianEvents} events; ${verdict} the ${each.targetMs} ms target; checksum ${each.checksum}\n`,
    );
  }
}

main(process.argv.slice(2));
