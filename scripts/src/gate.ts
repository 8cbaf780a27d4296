/**
 * The regression gate's pure logic: parse cachegrind's output, compare measured instruction counts
 * and exact figures with the baseline, and print the verdict as a table. No processes, no files:
 * scripts/src/check.ts runs the workloads and feeds this module, and the tests feed it synthetic
 * numbers.
 *
 * Rules:
 *   - instructions (Ir) more than `tolerancePercent` (3) over the baseline fail;
 *   - figures (the JSON a workload prints) must equal the baseline's exactly;
 *   - a workload without a baseline entry, or run with other arguments than the baseline's, fails
 *     (its numbers are not comparable): record one on purpose with `pnpm bench:baseline`;
 *   - wall-clock times are shown beside an in-run probe and never fail the gate.
 */
import type { MachineInfo } from '@raftlab/benchmarks/dist/results.js';

import { formatCount, formatPercent, markdownTable } from './format.js';

/** Default bound on the instruction count's growth, in percent of the baseline. */
export const instructionsTolerancePercent = 3;

/**
 * Node flags that make V8 single-threaded and seeded, so instruction counts repeat: --predictable
 * (no background threads), fixed hash and random seeds, and --predictable-gc-schedule, which fixes
 * the heap growing policy (otherwise sized from measured GC speed, a wall-clock figure). Measured
 * on core-memory-3, 10 runs: spread 0.029% without the GC flag, 0.006% with it.
 */
export const deterministicNodeFlags: readonly string[] = ['--predictable', '--predictable-gc-schedule', '--hash-seed=1', '--random-seed=1'];

/** What the gate measured for one workload. */
export interface Measurement {
  readonly name: string;
  readonly args: readonly string[];
  /** Total instructions executed (cachegrind's Ir summary). */
  readonly instructions: number;
  /** The exact figures the workload printed. */
  readonly figures: Readonly<Record<string, unknown>>;
  /** Median native wall time in ms, or null when not measured. */
  readonly wallMs: number | null;
  /** The in-run probe's time in ms on this machine now, or null. */
  readonly probeMs: number | null;
}

/** One workload's entry in results/baseline.json. */
export interface BaselineEntry {
  readonly description: string;
  readonly args: readonly string[];
  readonly instructions: number;
  readonly figures: Readonly<Record<string, unknown>>;
  readonly wallMs: number | null;
  readonly probeMs: number | null;
}

/** results/baseline.json. */
export interface Baseline {
  readonly schema: 1;
  readonly recordedAt: string;
  readonly machine: MachineInfo;
  readonly node: string;
  readonly valgrind: string;
  readonly commit: string;
  readonly dirty: boolean;
  readonly nodeFlags: readonly string[];
  readonly workloads: Readonly<Record<string, BaselineEntry>>;
}

/** Errors of the gate with a stable code. */
export class GateError extends Error {
  constructor(
    readonly code: 'no-summary' | 'bad-baseline' | 'bad-output',
    message: string,
  ) {
    super(message);
    this.name = 'GateError';
  }
}

/**
 * The total instruction count from a cachegrind output file: the `summary:` line's value in the
 * column that the `events:` line names `Ir`.
 */
export function parseCachegrindInstructions(text: string): number {
  let events: string[] | null = null;
  let summary: string[] | null = null;
  for (const line of text.split('\n')) {
    if (line.startsWith('events:')) events = line.slice('events:'.length).trim().split(/\s+/);
    else if (line.startsWith('summary:')) summary = line.slice('summary:'.length).trim().split(/\s+/);
  }
  if (events === null) throw new GateError('no-summary', 'cachegrind output has no "events:" line (is this a cachegrind.out file?)');
  if (summary === null) throw new GateError('no-summary', 'cachegrind output has no "summary:" line (did the program finish?)');
  const column = events.indexOf('Ir');
  if (column === -1) throw new GateError('no-summary', `cachegrind counted ${events.join(', ')}, not Ir`);
  const field = summary[column];
  const instructions = Number(field);
  if (field === undefined || !Number.isSafeInteger(instructions) || instructions <= 0) {
    throw new GateError('no-summary', `cachegrind summary has no instruction count in column ${column}: "${summary.join(' ')}"`);
  }
  return instructions;
}

/** The figures a workload printed: a JSON object on its last non-empty stdout line. */
export function parseFigures(stdout: string, workload: string): Record<string, unknown> {
  const lines = stdout.split('\n').map((line) => line.trim()).filter((line) => line !== '');
  const last = lines[lines.length - 1];
  if (last === undefined) throw new GateError('bad-output', `${workload} printed nothing; a workload prints its figures as one JSON object on its last stdout line`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(last);
  } catch {
    throw new GateError('bad-output', `${workload}'s last stdout line is not JSON: ${last.slice(0, 200)}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new GateError('bad-output', `${workload}'s last stdout line is JSON but not an object: ${last.slice(0, 200)}`);
  }
  return parsed as Record<string, unknown>;
}

/** JSON with object keys sorted, so equal figures compare equal whatever their key order. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (typeof value === 'object' && value !== null) {
    const entries = Object.entries(value as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([key, item]) => `${JSON.stringify(key)}:${canonicalJson(item)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'undefined';
}

/** Every figure that differs, as "name: baseline X, now Y". */
export function diffFigures(baseline: Readonly<Record<string, unknown>>, current: Readonly<Record<string, unknown>>): string[] {
  const keys = [...new Set([...Object.keys(baseline), ...Object.keys(current)])].sort();
  const differences: string[] = [];
  for (const key of keys) {
    const before = key in baseline ? canonicalJson(baseline[key]) : '(absent)';
    const now = key in current ? canonicalJson(current[key]) : '(absent)';
    if (before !== now) differences.push(`${key}: baseline ${before}, now ${now}`);
  }
  return differences;
}

/** The verdict on one workload. */
export interface WorkloadVerdict {
  readonly name: string;
  readonly ok: boolean;
  readonly baselineInstructions: number | null;
  readonly currentInstructions: number;
  /** (current - baseline) / baseline in percent; null without a baseline. */
  readonly deltaPercent: number | null;
  readonly figureDifferences: readonly string[];
  /** Why it failed (empty when ok). */
  readonly problems: readonly string[];
  /** Things worth knowing that do not fail the gate (faster than baseline, wall-clock drift). */
  readonly remarks: readonly string[];
  /** Advisory: change of wall time relative to the probe, in percent; null when not measured. */
  readonly wallDeltaPercent: number | null;
}

/** The gate's verdict on a whole run. */
export interface GateVerdict {
  readonly ok: boolean;
  readonly tolerancePercent: number;
  readonly workloads: readonly WorkloadVerdict[];
  /** Baseline entries with no workload of that name any more (stale, not a failure). */
  readonly unmeasured: readonly string[];
}

function sameArgs(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((item, i) => item === b[i]);
}

/** Compares measurements with the baseline (null: none recorded yet). */
export function compareWithBaseline(baseline: Baseline | null, measurements: readonly Measurement[], tolerancePercent: number = instructionsTolerancePercent): GateVerdict {
  const workloads = measurements.map((measurement): WorkloadVerdict => {
    const entry = baseline?.workloads[measurement.name];
    if (entry === undefined) {
      return {
        name: measurement.name,
        ok: false,
        baselineInstructions: null,
        currentInstructions: measurement.instructions,
        deltaPercent: null,
        figureDifferences: [],
        problems: [`no baseline for ${measurement.name}: record one on purpose with pnpm bench:baseline`],
        remarks: [],
        wallDeltaPercent: null,
      };
    }
    const problems: string[] = [];
    const remarks: string[] = [];
    if (!sameArgs(entry.args, measurement.args)) {
      problems.push(`arguments changed (baseline ${JSON.stringify(entry.args)}, now ${JSON.stringify(measurement.args)}): counts are not comparable; re-record with pnpm bench:baseline`);
    }
    const deltaPercent = ((measurement.instructions - entry.instructions) / entry.instructions) * 100;
    if (deltaPercent > tolerancePercent) {
      problems.push(`${formatPercent(deltaPercent)} instructions, over the ${tolerancePercent}% bound`);
    } else if (deltaPercent < -tolerancePercent) {
      remarks.push(`${formatPercent(deltaPercent)} instructions: faster than the baseline; lock the gain in with pnpm bench:baseline`);
    }
    const figureDifferences = diffFigures(entry.figures, measurement.figures);
    if (figureDifferences.length > 0) {
      problems.push(`figures changed (${figureDifferences.length}); if on purpose, re-record with pnpm bench:baseline`);
    }
    let wallDeltaPercent: number | null = null;
    if (entry.wallMs !== null && entry.probeMs !== null && measurement.wallMs !== null && measurement.probeMs !== null && entry.probeMs > 0 && measurement.probeMs > 0) {
      const before = entry.wallMs / entry.probeMs;
      const now = measurement.wallMs / measurement.probeMs;
      wallDeltaPercent = ((now - before) / before) * 100;
    }
    return {
      name: measurement.name,
      ok: problems.length === 0,
      baselineInstructions: entry.instructions,
      currentInstructions: measurement.instructions,
      deltaPercent,
      figureDifferences,
      problems,
      remarks,
      wallDeltaPercent,
    };
  });
  const measured = new Set(measurements.map((m) => m.name));
  const unmeasured = Object.keys(baseline?.workloads ?? {}).filter((name) => !measured.has(name)).sort();
  return { ok: workloads.every((w) => w.ok), tolerancePercent, workloads, unmeasured };
}

/** The verdict as text: a table (workload, baseline Ir, current Ir, delta %, figures, advisory wall, verdict), then details. */
export function formatVerdict(verdict: GateVerdict): string {
  const rows = verdict.workloads.map((w) => [
    w.name,
    w.baselineInstructions === null ? '–' : formatCount(w.baselineInstructions),
    formatCount(w.currentInstructions),
    w.deltaPercent === null ? '–' : formatPercent(w.deltaPercent),
    w.baselineInstructions === null ? '–' : w.figureDifferences.length === 0 ? 'same' : `${w.figureDifferences.length} changed`,
    w.wallDeltaPercent === null ? '–' : `${formatPercent(w.wallDeltaPercent)} vs probe`,
    w.ok ? 'pass' : 'FAIL',
  ]);
  const lines = [
    markdownTable(['workload', 'baseline Ir', 'current Ir', 'delta', 'figures', 'wall (advisory)', 'verdict'], rows, ['left', 'right', 'right', 'right', 'left', 'right', 'left']),
    '',
  ];
  for (const w of verdict.workloads) {
    for (const problem of w.problems) lines.push(`FAIL ${w.name}: ${problem}`);
    for (const difference of w.figureDifferences) lines.push(`  ${w.name} ${difference}`);
    for (const remark of w.remarks) lines.push(`note ${w.name}: ${remark}`);
  }
  for (const name of verdict.unmeasured) lines.push(`note: baseline has ${name}, which is not a workload any more (re-record to drop it)`);
  lines.push(
    verdict.ok
      ? `bench:check passed: every workload within ${verdict.tolerancePercent}% of its baseline instructions, figures identical.`
      : `bench:check FAILED: ${verdict.workloads.filter((w) => !w.ok).length} of ${verdict.workloads.length} workload(s). Wall-clock columns are advisory and never fail the gate.`,
  );
  return lines.join('\n');
}

/** Baseline entries from measurements, merged over `previous` (kept for workloads not measured). */
export function buildBaseline(
  previous: Baseline | null,
  measurements: readonly Measurement[],
  descriptions: ReadonlyMap<string, string>,
  environment: Omit<Baseline, 'schema' | 'workloads'>,
): Baseline {
  const workloads: Record<string, BaselineEntry> = { ...(previous?.workloads ?? {}) };
  for (const m of measurements) {
    workloads[m.name] = { description: descriptions.get(m.name) ?? '', args: [...m.args], instructions: m.instructions, figures: m.figures, wallMs: m.wallMs, probeMs: m.probeMs };
  }
  const sorted: Record<string, BaselineEntry> = {};
  for (const name of Object.keys(workloads).sort()) sorted[name] = workloads[name] as BaselineEntry;
  return { schema: 1, ...environment, workloads: sorted };
}

/** Checks parsed baseline JSON; throws GateError naming the first problem. */
export function validateBaseline(json: unknown, source: string): Baseline {
  const fail = (problem: string): never => {
    throw new GateError('bad-baseline', `${source}: ${problem} (re-record with pnpm bench:baseline)`);
  };
  if (typeof json !== 'object' || json === null || Array.isArray(json)) return fail('not a JSON object');
  const baseline = json as Record<string, unknown>;
  if (baseline['schema'] !== 1) fail(`schema ${String(baseline['schema'])}, expected 1`);
  for (const key of ['recordedAt', 'node', 'valgrind', 'commit']) {
    if (typeof baseline[key] !== 'string') fail(`${key} missing or not a string`);
  }
  if (typeof baseline['workloads'] !== 'object' || baseline['workloads'] === null) fail('workloads missing');
  for (const [name, value] of Object.entries(baseline['workloads'] as Record<string, unknown>)) {
    if (typeof value !== 'object' || value === null) fail(`workloads.${name} is not an object`);
    const entry = value as Record<string, unknown>;
    if (typeof entry['instructions'] !== 'number' || !Number.isSafeInteger(entry['instructions']) || entry['instructions'] <= 0) {
      fail(`workloads.${name}.instructions must be a positive integer`);
    }
    if (!Array.isArray(entry['args']) || !entry['args'].every((a) => typeof a === 'string')) fail(`workloads.${name}.args must be an array of strings`);
    if (typeof entry['figures'] !== 'object' || entry['figures'] === null || Array.isArray(entry['figures'])) fail(`workloads.${name}.figures must be an object`);
    for (const key of ['wallMs', 'probeMs']) {
      if (entry[key] !== null && typeof entry[key] !== 'number') fail(`workloads.${name}.${key} must be a number or null`);
    }
  }
  return json as Baseline;
}
