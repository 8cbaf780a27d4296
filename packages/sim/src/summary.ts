/**
 * Summaries of many seeds: counts, percentiles, failing seeds with the command that replays each.
 */
import type { PlantedBugName } from './cluster.js';
import type { NodeRange, SeedResult } from './run.js';

/** A seed that failed, and how to replay it. */
export interface FailureReport {
  readonly seed: number;
  readonly nodeCount: number;
  /** 'violation' (a safety checker fired) or 'liveness'. */
  readonly type: 'violation' | 'liveness';
  /** The violated property, or the liveness phase. */
  readonly kind: string;
  readonly message: string;
  /** The exact command that replays this seed with its event trace. */
  readonly reproduce: string;
}

/** What `pnpm sim` reports. */
export interface SimSummary {
  readonly runs: number;
  /** The seeds as given, e.g. "1..500". */
  readonly seeds: string;
  /** The cluster sizes as given, e.g. "3..10". */
  readonly nodes: string;
  readonly planted: readonly PlantedBugName[];
  readonly events: number;
  readonly ticks: number;
  readonly messages: number;
  readonly committedEntries: number;
  readonly commandsAcknowledged: number;
  readonly commandsRejected: number;
  readonly crashes: number;
  readonly partitions: number;
  readonly snapshotsInstalled: number;
  readonly snapshotChunksSent: number;
  /** Unsynced writes lost in crashes (storage faults), and how many of those were torn. */
  readonly writesLost: number;
  readonly writesTorn: number;
  readonly violations: number;
  readonly livenessFailures: number;
  /** Ticks from start to the first leader: median and 99th percentile over runs that had one. */
  readonly ticksToFirstLeader: { readonly p50: number | null; readonly p99: number | null };
  /** After healing: ticks to a leader, and from it to every acknowledged command applied everywhere (max over runs). */
  readonly recovery: { readonly leaderTicksMax: number | null; readonly convergeTicksMax: number | null };
  /** Raft messages sent per committed entry, over all runs. */
  readonly messagesPerCommittedEntry: number | null;
  /** Failing seeds (at most failuresListedMax listed). */
  readonly failures: readonly FailureReport[];
  readonly durationMs: number;
}

/** Bound on the failures a summary lists one by one. */
export const failuresListedMax = 50;

/** The nearest-rank percentile `p` (0..100) of `values`, or null when empty. */
export function percentile(values: readonly number[], p: number): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[rank - 1] as number;
}

/** Formats a node range the way the CLI accepts it. */
export function formatRange(range: NodeRange): string {
  return range.min === range.max ? String(range.min) : `${range.min}..${range.max}`;
}

/** The command that replays one seed with its trace. */
export function reproduceCommand(seed: number, nodes: NodeRange, planted: readonly PlantedBugName[]): string {
  const plant = planted.length === 0 ? '' : ` --plant ${planted.join(',')}`;
  return `pnpm sim --seed ${seed} --nodes ${formatRange(nodes)}${plant} --trace`;
}

/** Folds per-seed results (in seed order) into a summary. */
export function summarize(
  results: readonly SeedResult[],
  context: { readonly seeds: string; readonly nodes: NodeRange; readonly planted: readonly PlantedBugName[]; readonly durationMs: number },
): SimSummary {
  let events = 0;
  let ticks = 0;
  let messages = 0;
  let committedEntries = 0;
  let commandsAcknowledged = 0;
  let commandsRejected = 0;
  let crashes = 0;
  let partitions = 0;
  let snapshotsInstalled = 0;
  let snapshotChunksSent = 0;
  let writesLost = 0;
  let writesTorn = 0;
  let violations = 0;
  let livenessFailures = 0;
  const firstLeader: number[] = [];
  let leaderTicksMax: number | null = null;
  let convergeTicksMax: number | null = null;
  const failures: FailureReport[] = [];
  for (const result of results) {
    events += result.events;
    ticks += result.ticks;
    messages += result.messages;
    committedEntries += result.committed;
    commandsAcknowledged += result.commandsAcknowledged;
    commandsRejected += result.commandsRejected;
    crashes += result.crashes;
    partitions += result.partitions;
    snapshotsInstalled += result.snapshotsInstalled;
    snapshotChunksSent += result.snapshotChunksSent;
    writesLost += result.writesLost;
    writesTorn += result.writesTorn;
    if (result.firstLeaderTick !== null) firstLeader.push(result.firstLeaderTick);
    if (result.leaderAfterHealTicks !== null) leaderTicksMax = Math.max(leaderTicksMax ?? 0, result.leaderAfterHealTicks);
    if (result.convergeTicks !== null) convergeTicksMax = Math.max(convergeTicksMax ?? 0, result.convergeTicks);
    const reproduce = reproduceCommand(result.seed, context.nodes, context.planted);
    if (result.violation !== null) {
      violations += 1;
      if (failures.length < failuresListedMax) {
        failures.push({ seed: result.seed, nodeCount: result.nodeCount, type: 'violation', kind: result.violation.kind, message: result.violation.message, reproduce });
      }
    } else if (result.liveness !== null) {
      livenessFailures += 1;
      if (failures.length < failuresListedMax) {
        failures.push({ seed: result.seed, nodeCount: result.nodeCount, type: 'liveness', kind: result.liveness.phase, message: result.liveness.message, reproduce });
      }
    }
  }
  return {
    runs: results.length,
    seeds: context.seeds,
    nodes: formatRange(context.nodes),
    planted: context.planted,
    events,
    ticks,
    messages,
    committedEntries,
    commandsAcknowledged,
    commandsRejected,
    crashes,
    partitions,
    snapshotsInstalled,
    snapshotChunksSent,
    writesLost,
    writesTorn,
    violations,
    livenessFailures,
    ticksToFirstLeader: { p50: percentile(firstLeader, 50), p99: percentile(firstLeader, 99) },
    recovery: { leaderTicksMax, convergeTicksMax },
    messagesPerCommittedEntry: committedEntries === 0 ? null : Math.round((messages / committedEntries) * 100) / 100,
    failures,
    durationMs: Math.round(context.durationMs),
  };
}

/** The summary as text for a terminal. */
export function formatSummary(summary: SimSummary): string {
  const number = (value: number): string => value.toLocaleString('en-US');
  const lines = [
    `raftlab sim: ${number(summary.runs)} runs, seeds ${summary.seeds}, ${summary.nodes} nodes${summary.planted.length > 0 ? `, planted ${summary.planted.join(',')}` : ''}, ${(summary.durationMs / 1000).toFixed(1)} s`,
    `  events                    ${number(summary.events)} (${number(summary.ticks)} ticks)`,
    `  violations                ${number(summary.violations)}`,
    `  liveness failures         ${number(summary.livenessFailures)}`,
    `  ticks to first leader     p50 ${summary.ticksToFirstLeader.p50 ?? '-'}, p99 ${summary.ticksToFirstLeader.p99 ?? '-'}`,
    `  after healing (max)       leader in ${summary.recovery.leaderTicksMax ?? '-'} ticks, all acknowledged applied ${summary.recovery.convergeTicksMax ?? '-'} ticks later`,
    `  messages per committed    ${summary.messagesPerCommittedEntry ?? '-'} (${number(summary.messages)} messages, ${number(summary.committedEntries)} entries)`,
    `  faults                    ${number(summary.crashes)} crashes, ${number(summary.partitions)} partitions, ${number(summary.snapshotsInstalled)} snapshots installed (${number(summary.snapshotChunksSent)} chunks sent)`,
    `  storage faults            ${number(summary.writesLost)} unsynced writes lost in crashes, ${number(summary.writesTorn)} torn`,
    `  commands                  ${number(summary.commandsAcknowledged)} acknowledged, ${number(summary.commandsRejected)} refused as too large`,
  ];
  for (const failure of summary.failures) {
    lines.push(`FAIL seed ${failure.seed} (${failure.nodeCount} nodes) ${failure.type} ${failure.kind}: ${failure.message}`);
    lines.push(`  reproduce: ${failure.reproduce}`);
  }
  const unlisted = summary.violations + summary.livenessFailures - summary.failures.length;
  if (unlisted > 0) lines.push(`  (${unlisted} more failing seeds not listed)`);
  return lines.join('\n');
}
