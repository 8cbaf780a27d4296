/**
 * Workloads of the regression gate (`pnpm bench:check`, scripts/src/check.ts). The gate runs each
 * one under valgrind's cachegrind and compares its instruction count with results/baseline.json
 * (more than 3% over fails), and compares the JSON it prints on stdout field by field (any
 * difference fails, unless the baseline is re-recorded on purpose with `pnpm bench:baseline`).
 *
 * A workload is a built JS entry point that:
 *   - is deterministic: no clocks, no Math.random, no sockets or timers whose timing matters; all
 *     randomness from fixed seeds, so both its output and its instruction count repeat;
 *   - prints one JSON object on its last stdout line, holding only exact figures (messages per
 *     entry, ticks to elect, a checksum of the work so it cannot be optimized away), never times;
 *   - runs for well under a second natively: Node runs about 50 times slower under valgrind;
 *   - exits 0, or non-zero with the reason on stderr (the gate then fails and shows it).
 *
 * To add one: write it under benchmarks/src/ (see workloads/memory-cluster.ts), add an entry
 * below, build, and record its baseline with `pnpm bench:baseline -- --only <name>`.
 */
import { fileURLToPath } from 'node:url';

/** One deterministic workload of the gate. */
export interface CheckWorkload {
  /** Unique, stable: the key of its baseline entry. */
  readonly name: string;
  /** Absolute path of the built .js entry point. */
  readonly script: string;
  /** Command-line arguments (part of the baseline: changing them requires a new baseline). */
  readonly args: readonly string[];
  /** One line for the gate's table and docs. */
  readonly description: string;
}

function built(relative: string): string {
  // This module runs from benchmarks/dist, beside the workloads it names.
  return fileURLToPath(new URL(relative, import.meta.url));
}

/** Every workload the gate runs, in order. */
export const checkWorkloads: readonly CheckWorkload[] = [
  {
    name: 'core-memory-3',
    script: built('./workloads/memory-cluster.js'),
    args: ['--nodes', '3', '--batches', '100', '--batch', '1000', '--entry-bytes', '16', '--election-trials', '10'],
    description: '3 RaftNodes, messages handed over in memory: 100 batches of 1000 16-byte entries, 10 cold-start elections',
  },
  {
    name: 'core-memory-5',
    script: built('./workloads/memory-cluster.js'),
    args: ['--nodes', '5', '--batches', '50', '--batch', '1000', '--entry-bytes', '16', '--election-trials', '10'],
    description: '5 RaftNodes, messages handed over in memory: 50 batches of 1000 16-byte entries, 10 cold-start elections',
  },
  {
    name: 'elections-5',
    script: built('./lab/election-ticks.js'),
    args: ['--nodes', '5', '--trials', '30', '--seed', '20260101'],
    description: '5 simulated nodes (runtime timeouts, pre-vote, check-quorum): ticks to elect from cold start and after leader loss, 30 fixed seeds',
  },
];
