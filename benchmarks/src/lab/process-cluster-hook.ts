/**
 * The hook for the multi-process suite: one node per OS process over loopback TCP/WebSocket,
 * driven by benchmarks/src/cluster/process-cluster.ts (a separate module, loaded only when built, so
 * the in-process sweeps here stay independent of it). The lab calls the driver's
 *
 *   runProcessCluster(options): Promise<{ records: BenchRecord[]; notes: string[] }>
 *
 * sized for the run (quick: short windows and fewer latency samples), and otherwise records a note
 * saying why the suite did not run.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';

import type { BenchRecord } from '../results.js';

/** Where the driver is expected, built. */
export const processClusterDriver: string = fileURLToPath(new URL('../cluster/process-cluster.js', import.meta.url));

/** What the hook gives back: records, or why there are none. */
export type ProcessClusterOutcome =
  | { readonly ok: true; readonly records: BenchRecord[]; readonly notes: string[] }
  | { readonly ok: false; readonly reason: string };

/** The part of the driver's options and result the lab uses. */
type Runner = (options: {
  readonly seconds?: number;
  readonly warmupMs?: number;
  readonly latencySamples?: number;
  readonly log?: (line: string) => void;
}) => Promise<{ readonly records: BenchRecord[]; readonly notes: readonly string[] }>;

/** Sizes of the multi-process suite in the lab's two modes (the driver's own defaults are the full size). */
export const processClusterSizes = {
  quick: { seconds: 2, warmupMs: 500, latencySamples: 300 },
  full: { seconds: 6, warmupMs: 1000, latencySamples: 2000 },
} as const;

/** Runs the multi-process suite when it is there. */
export async function runProcessClusterHook(quick: boolean, log: (line: string) => void): Promise<ProcessClusterOutcome> {
  if (!existsSync(processClusterDriver)) {
    return { ok: false, reason: `not present (${processClusterDriver} not built): the multi-process loopback suite lives in benchmarks/src/cluster/` };
  }
  const module = (await import(pathToFileURL(processClusterDriver).href)) as Record<string, unknown>;
  const runner = module['runProcessCluster'];
  if (typeof runner !== 'function') {
    return { ok: false, reason: `${processClusterDriver} exports no runProcessCluster(options)` };
  }
  const result = await (runner as Runner)({ ...processClusterSizes[quick ? 'quick' : 'full'], log });
  return { ok: true, records: result.records, notes: [...result.notes].map((note) => `cluster-process: ${note}`) };
}
