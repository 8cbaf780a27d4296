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

/**
 * A built script run as its own process, by the gate (under valgrind) or by `pnpm profile`. For
 * the gate, `name` is the key of its baseline entry and `args` are part of the baseline (changing
 * them requires a new baseline); for profiles, `name` is the command-line and output file name.
 */
export interface ScriptWorkload {
  readonly name: string;
  /** Absolute path of the built .js entry point. */
  readonly script: string;
  readonly args: readonly string[];
  /** One line for the gate's table, `pnpm profile --list` and docs. */
  readonly description: string;
}

/** One deterministic workload of the gate. */
export type CheckWorkload = ScriptWorkload;

/** The absolute path of a built script beside this module (both run from benchmarks/dist). */
export function builtScript(relative: string): string {
  return fileURLToPath(new URL(relative, import.meta.url));
}

/** Every workload the gate runs, in order. */
export const checkWorkloads: readonly CheckWorkload[] = [
  {
    name: 'core-memory-3',
    script: builtScript('./workloads/memory-cluster.js'),
    args: ['--nodes', '3', '--batches', '100', '--batch', '1000', '--entry-bytes', '16', '--election-trials', '10'],
    description: '3 RaftNodes, messages handed over in memory: 100 batches of 1000 16-byte entries, 10 cold-start elections',
  },
  {
    name: 'core-memory-5',
    script: builtScript('./workloads/memory-cluster.js'),
    args: ['--nodes', '5', '--batches', '50', '--batch', '1000', '--entry-bytes', '16', '--election-trials', '10'],
    description: '5 RaftNodes, messages handed over in memory: 50 batches of 1000 16-byte entries, 10 cold-start elections',
  },
  {
    name: 'elections-5',
    script: builtScript('./lab/election-ticks.js'),
    args: ['--nodes', '5', '--trials', '30', '--seed', '20260101'],
    description: '5 simulated nodes (runtime timeouts, pre-vote, check-quorum): ticks to elect from cold start and after leader loss, 30 fixed seeds',
  },
];
