/**
 * The bench lab's results schema: one BenchRun per `pnpm bench` invocation, holding one
 * BenchRecord per measured figure. Suites build records with `summarize` (median and spread of
 * their samples), stamp the run with `machineInfo` and `gitInfo`, and hand it to `writeRun`, which
 * validates it, writes `results/<timestamp>-<commit>.json`, refreshes `results/latest.json` and
 * regenerates the report (`results/latest.md`, `results/charts/*.svg`) with scripts/dist/report.js.
 *
 * The report draws its charts from the metric names in `knownMetrics`; a suite that wants its
 * figures charted uses those names and units. Any other metric still appears in the suite's table.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The schema version written in every run; bumped on any incompatible change. */
export const resultsSchemaVersion = 1;

/** Raw samples kept per record for CDFs and histograms, at most (`downsample` to fit). */
export const distributionSamplesMax = 2000;

/** How a run was sized: the full sweep, the small CI sweep, or the gate's deterministic workloads. */
export type BenchMode = 'full' | 'quick' | 'check';

/** The transport a record was measured over; `none` for figures that involve no transport. */
export type BenchTransport = 'memory' | 'tcp' | 'ws' | 'none';

/** Storage fsync policy of a record (`none` is for benchmarks only: it is not durable). */
export type FsyncPolicy = 'always' | 'batch' | 'none';

/** The machine a run was measured on. */
export interface MachineInfo {
  readonly cpuModel: string;
  readonly cores: number;
  readonly memoryBytes: number;
  readonly platform: string;
  readonly arch: string;
  readonly hostname?: string;
}

/** Spread of a record's samples around its median. */
export interface Spread {
  readonly min: number;
  readonly p25: number;
  readonly p75: number;
  readonly max: number;
  /** Sample standard deviation (n - 1 in the denominator). */
  readonly stdev: number;
}

/** An in-run reference a figure is compared with (speed-of-light probe, a peer library). */
export interface BenchReference {
  readonly name: string;
  readonly value: number;
  readonly unit: string;
  /** value / reference.value, of the record's value. */
  readonly ratio: number;
}

/** One measured figure: a metric of one suite, scenario, transport, cluster size and batch. */
export interface BenchRecord {
  readonly suite: string;
  readonly scenario?: string;
  readonly transport: BenchTransport;
  /** Cluster size; 0 for figures that involve no cluster (micro benchmarks). */
  readonly nodes: number;
  /** Entries per proposal batch (B in 2(N-1)/B); 1 when not batched. */
  readonly batch: number;
  readonly metric: string;
  readonly unit: string;
  /** The median of the samples, or the exact figure of a deterministic metric. */
  readonly value: number;
  readonly samples: number;
  /** Null for a single sample or an exact figure. */
  readonly spread: Spread | null;
  readonly reference?: BenchReference;
  /** Raw or downsampled samples for CDFs and histograms, at most distributionSamplesMax. */
  readonly distribution?: readonly number[];
  readonly seeds?: readonly number[];
  readonly fsync?: FsyncPolicy;
  /** A checksum of the work done, so it cannot have been optimized away. */
  readonly checksum?: string;
  readonly note?: string;
}

/** One bench invocation. */
export interface BenchRun {
  readonly schema: 1;
  readonly mode: BenchMode;
  /** ISO 8601. */
  readonly startedAt: string;
  /** ISO 8601, not before startedAt. */
  readonly finishedAt: string;
  readonly durationMs: number;
  readonly machine: MachineInfo;
  /** process.version. */
  readonly node: string;
  /** Short commit hash, or 'unknown' outside a git checkout. */
  readonly commit: string;
  /** True when the work tree had uncommitted changes. */
  readonly dirty: boolean;
  readonly seeds: readonly number[];
  readonly notes: readonly string[];
  readonly records: readonly BenchRecord[];
}

/**
 * Metric names (and their units) the report charts. Suites may record any other metric; it shows
 * in tables but in no chart.
 */
export const knownMetrics = {
  /** Committed entries per second, sustained (chart: against cluster size, one line per transport). */
  throughput: { metric: 'throughput', unit: 'entries/s' },
  /** Propose to committed, per entry; `distribution` feeds the CDF chart. */
  commitLatency: { metric: 'commit-latency', unit: 'ms' },
  /** Propose to applied, per entry. */
  applyLatency: { metric: 'apply-latency', unit: 'ms' },
  /** Ticks from a cold start (or leader loss) to the first leader; `distribution` feeds a histogram. */
  electionTicks: { metric: 'election-ticks', unit: 'ticks' },
  /** Milliseconds to the first leader; `distribution` feeds a histogram. */
  electionMs: { metric: 'election-ms', unit: 'ms' },
  /** Share of elections decided in one round. */
  electionOneRound: { metric: 'election-one-round', unit: 'share' },
  /** Remote messages per committed entry (chart: against the minimum 2(N-1)/B). */
  messagesPerEntry: { metric: 'messages-per-entry', unit: 'messages/entry' },
  /** Bytes on the wire per committed entry. */
  bytesPerEntry: { metric: 'bytes-per-entry', unit: 'B/entry' },
  /** Time for a new leader to bring a lagging follower up to date. */
  recoveryMs: { metric: 'recovery-ms', unit: 'ms' },
  /** Heap bytes per retained entry. */
  heapBytesPerEntry: { metric: 'heap-bytes-per-entry', unit: 'B/entry' },
} as const;

/** The theoretical minimum of remote messages per committed entry: 2(N-1)/B. */
export function messagesPerEntryMin(nodes: number, batch: number): number {
  return (2 * (nodes - 1)) / batch;
}

/** Errors of this module, with a stable code. */
export class ResultsError extends Error {
  constructor(
    readonly code: 'invalid-run' | 'invalid-samples',
    message: string,
  ) {
    super(message);
    this.name = 'ResultsError';
  }
}

// ---------------------------------------------------------------------------------------------
// Summaries.

/** What `summarize` returns: ready to spread into a BenchRecord. */
export interface Summary {
  readonly value: number;
  readonly samples: number;
  readonly spread: Spread | null;
}

/** The q-quantile of sorted samples, interpolated linearly between closest ranks. */
export function quantileOfSorted(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) throw new ResultsError('invalid-samples', 'quantile of no samples');
  if (!(q >= 0 && q <= 1)) throw new ResultsError('invalid-samples', `quantile ${q} outside [0, 1]`);
  const position = (sorted.length - 1) * q;
  const below = Math.floor(position);
  const above = Math.ceil(position);
  const low = sorted[below] as number;
  const high = sorted[above] as number;
  return low + (high - low) * (position - below);
}

function checkSamples(samples: readonly number[]): number[] {
  if (samples.length === 0) throw new ResultsError('invalid-samples', 'summarize: no samples');
  for (let i = 0; i < samples.length; i++) {
    const sample = samples[i] as number;
    if (typeof sample !== 'number' || !Number.isFinite(sample)) {
      throw new ResultsError('invalid-samples', `summarize: sample ${i} is ${String(sample)}, not a finite number`);
    }
  }
  return [...samples].sort((a, b) => a - b);
}

/**
 * Median and spread of `samples` (any order). One sample gives a null spread: there is nothing to
 * spread. Throws ResultsError on no samples or a non-finite one.
 */
export function summarize(samples: readonly number[]): Summary {
  const sorted = checkSamples(samples);
  const value = quantileOfSorted(sorted, 0.5);
  if (sorted.length === 1) return { value, samples: 1, spread: null };
  let sum = 0;
  for (const sample of sorted) sum += sample;
  const mean = sum / sorted.length;
  let squares = 0;
  for (const sample of sorted) squares += (sample - mean) ** 2;
  return {
    value,
    samples: sorted.length,
    spread: {
      min: sorted[0] as number,
      p25: quantileOfSorted(sorted, 0.25),
      p75: quantileOfSorted(sorted, 0.75),
      max: sorted[sorted.length - 1] as number,
      stdev: Math.sqrt(squares / (sorted.length - 1)),
    },
  };
}

/**
 * At most `samplesMax` values that keep the shape of `samples`' distribution: all of them (sorted)
 * when they fit, else evenly spaced quantiles, always keeping the minimum and maximum.
 */
export function downsample(samples: readonly number[], samplesMax: number = distributionSamplesMax): number[] {
  if (!Number.isSafeInteger(samplesMax) || samplesMax < 2) throw new ResultsError('invalid-samples', `downsample to ${samplesMax}: need at least 2`);
  const sorted = checkSamples(samples);
  if (sorted.length <= samplesMax) return sorted;
  const result: number[] = [];
  for (let i = 0; i < samplesMax; i++) result.push(quantileOfSorted(sorted, i / (samplesMax - 1)));
  return result;
}

/** A reference for `value`, with its ratio computed. */
export function referenceFor(value: number, name: string, referenceValue: number, unit: string): BenchReference {
  if (!(Number.isFinite(referenceValue) && referenceValue !== 0)) {
    throw new ResultsError('invalid-samples', `reference ${name}: value ${referenceValue} must be finite and non-zero`);
  }
  return { name, value: referenceValue, unit, ratio: value / referenceValue };
}

// ---------------------------------------------------------------------------------------------
// Environment.

/** The repository root, from this module's place in benchmarks/dist (or benchmarks/src in tests). */
export const repositoryRoot: string = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** The machine this process runs on. The hostname is left out unless asked for (results are committed). */
export function machineInfo(options: { readonly includeHostname?: boolean } = {}): MachineInfo {
  const cpus = os.cpus();
  const info: MachineInfo = {
    cpuModel: cpus[0]?.model.trim() ?? 'unknown',
    cores: typeof os.availableParallelism === 'function' ? os.availableParallelism() : cpus.length,
    memoryBytes: os.totalmem(),
    platform: os.platform(),
    arch: os.arch(),
  };
  return options.includeHostname === true ? { ...info, hostname: os.hostname() } : info;
}

/** Commit and dirtiness of the checkout at `directory` (default: the repository root). */
export function gitInfo(directory: string = repositoryRoot): { readonly commit: string; readonly dirty: boolean } {
  const git = (args: string[]): string | null => {
    try {
      return execFileSync('git', args, { cwd: directory, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 10_000 }).trim();
    } catch {
      return null; // no git, or not a checkout
    }
  };
  const commit = git(['rev-parse', '--short', 'HEAD']);
  if (commit === null || commit === '') return { commit: 'unknown', dirty: false };
  const status = git(['status', '--porcelain']);
  return { commit, dirty: status === null || status !== '' };
}

// ---------------------------------------------------------------------------------------------
// Validation.

/** validateRun's answer: the typed run, or every problem found (with its JSON path). */
/**
 * A run finished now: machine, Node version and commit read here, so every suite's entry point
 * records them the same way.
 */
export function finishRun(parts: { readonly mode: BenchMode; readonly startedAt: Date; readonly seeds?: readonly number[]; readonly notes: readonly string[]; readonly records: readonly BenchRecord[] }): BenchRun {
  const finishedAt = new Date();
  const git = gitInfo();
  return {
    schema: 1,
    mode: parts.mode,
    startedAt: parts.startedAt.toISOString(),
    finishedAt: finishedAt.toISOString(),
    durationMs: finishedAt.getTime() - parts.startedAt.getTime(),
    machine: machineInfo(),
    node: process.version,
    commit: git.commit,
    dirty: git.dirty,
    seeds: parts.seeds ?? [],
    notes: parts.notes,
    records: parts.records,
  };
}

export type RunValidation = { readonly ok: true; readonly run: BenchRun } | { readonly ok: false; readonly errors: readonly string[] };

/** Problems reported at most, so a badly broken file gives a readable answer. */
const validationErrorsMax = 50;

const runKeys = ['schema', 'mode', 'startedAt', 'finishedAt', 'durationMs', 'machine', 'node', 'commit', 'dirty', 'seeds', 'notes', 'records'];
const machineKeys = ['cpuModel', 'cores', 'memoryBytes', 'platform', 'arch', 'hostname'];
const recordKeys = [
  'suite', 'scenario', 'transport', 'nodes', 'batch', 'metric', 'unit', 'value', 'samples', 'spread',
  'reference', 'distribution', 'seeds', 'fsync', 'checksum', 'note',
];
const spreadKeys = ['min', 'p25', 'p75', 'max', 'stdev'];
const referenceKeys = ['name', 'value', 'unit', 'ratio'];
const modes: readonly BenchMode[] = ['full', 'quick', 'check'];
const transports: readonly BenchTransport[] = ['memory', 'tcp', 'ws', 'none'];
const fsyncPolicies: readonly FsyncPolicy[] = ['always', 'batch', 'none'];

/** Relative slack for derived numbers (ratio, spread ordering) written through JSON. */
const relativeTolerance = 1e-9;

const ruleText = {
  finite: 'a finite number',
  nonNegative: 'a number >= 0',
  positiveInteger: 'an integer >= 1',
  nonNegativeInteger: 'an integer >= 0',
} as const;

class Checker {
  readonly errors: string[] = [];

  fail(where: string, problem: string): void {
    if (this.errors.length < validationErrorsMax) this.errors.push(`${where}: ${problem}`);
  }

  object(where: string, value: unknown, keys: readonly string[]): Record<string, unknown> | null {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      this.fail(where, `expected an object, got ${describe(value)}`);
      return null;
    }
    for (const key of Object.keys(value)) {
      if (!keys.includes(key)) this.fail(`${where}.${key}`, `unknown field (known: ${keys.join(', ')})`);
    }
    return value as Record<string, unknown>;
  }

  string(where: string, value: unknown, optional = false): value is string {
    if (value === undefined && optional) return false;
    if (typeof value !== 'string' || value === '') {
      this.fail(where, `expected a non-empty string, got ${describe(value)}`);
      return false;
    }
    return true;
  }

  number(where: string, value: unknown, rule: 'finite' | 'nonNegative' | 'positiveInteger' | 'nonNegativeInteger', optional = false): value is number {
    if (value === undefined && optional) return false;
    if (typeof value !== 'number' || !Number.isFinite(value)) {
      this.fail(where, `expected a finite number, got ${describe(value)}`);
      return false;
    }
    const ok =
      rule === 'finite' ||
      (rule === 'nonNegative' && value >= 0) ||
      (rule === 'positiveInteger' && Number.isSafeInteger(value) && value >= 1) ||
      (rule === 'nonNegativeInteger' && Number.isSafeInteger(value) && value >= 0);
    if (!ok) this.fail(where, `expected ${ruleText[rule]}, got ${value}`);
    return ok;
  }

  oneOf<T extends string>(where: string, value: unknown, allowed: readonly T[], optional = false): value is T {
    if (value === undefined && optional) return false;
    if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
      this.fail(where, `expected one of ${allowed.join(' | ')}, got ${describe(value)}`);
      return false;
    }
    return true;
  }

  numbers(where: string, value: unknown, rule: 'finite' | 'nonNegativeInteger', lengthMax: number, optional = false): value is number[] {
    if (value === undefined && optional) return false;
    if (!Array.isArray(value)) {
      this.fail(where, `expected an array of numbers, got ${describe(value)}`);
      return false;
    }
    if (value.length > lengthMax) this.fail(where, `${value.length} values, more than the bound ${lengthMax}`);
    const before = this.errors.length;
    value.forEach((item, i) => this.number(`${where}[${i}]`, item, rule));
    return this.errors.length === before;
  }

  date(where: string, value: unknown): number | null {
    if (!this.string(where, value)) return null;
    const time = Date.parse(value);
    if (Number.isNaN(time) || !/^\d{4}-\d{2}-\d{2}T/.test(value)) {
      this.fail(where, `expected an ISO 8601 date, got ${JSON.stringify(value)}`);
      return null;
    }
    return time;
  }
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}...` : value);
  if (typeof value === 'object') return 'an object';
  return String(value);
}

function close(a: number, b: number): boolean {
  return Math.abs(a - b) <= relativeTolerance * Math.max(1, Math.abs(a), Math.abs(b));
}

function checkRecord(check: Checker, where: string, value: unknown): void {
  const record = check.object(where, value, recordKeys);
  if (record === null) return;
  check.string(`${where}.suite`, record['suite']);
  check.string(`${where}.scenario`, record['scenario'], true);
  check.oneOf(`${where}.transport`, record['transport'], transports);
  check.number(`${where}.nodes`, record['nodes'], 'nonNegativeInteger');
  check.number(`${where}.batch`, record['batch'], 'positiveInteger');
  check.string(`${where}.metric`, record['metric']);
  check.string(`${where}.unit`, record['unit']);
  const hasValue = check.number(`${where}.value`, record['value'], 'finite');
  const hasSamples = check.number(`${where}.samples`, record['samples'], 'positiveInteger');
  const spreadValue = record['spread'];
  if (spreadValue === undefined) {
    check.fail(`${where}.spread`, 'missing (null for a single sample or an exact figure)');
  } else if (spreadValue !== null) {
    const spread = check.object(`${where}.spread`, spreadValue, spreadKeys);
    if (spread !== null) {
      const allNumbers = spreadKeys.map((key) => check.number(`${where}.spread.${key}`, spread[key], 'finite')).every(Boolean);
      if (allNumbers && hasValue) {
        const min = spread['min'] as number;
        const p25 = spread['p25'] as number;
        const p75 = spread['p75'] as number;
        const max = spread['max'] as number;
        const median = record['value'] as number;
        const ordered = [min, p25, median, p75, max];
        for (let i = 1; i < ordered.length; i++) {
          const lower = ordered[i - 1] as number;
          const upper = ordered[i] as number;
          if (lower > upper && !close(lower, upper)) {
            check.fail(`${where}.spread`, `must satisfy min <= p25 <= value <= p75 <= max, got ${min} ${p25} ${median} ${p75} ${max}`);
            break;
          }
        }
        if ((spread['stdev'] as number) < 0) check.fail(`${where}.spread.stdev`, `negative: ${spread['stdev'] as number}`);
      }
      if (hasSamples && (record['samples'] as number) < 2) check.fail(`${where}.spread`, 'a spread needs at least 2 samples (use null)');
    }
  }
  const referenceValue = record['reference'];
  if (referenceValue !== undefined) {
    const reference = check.object(`${where}.reference`, referenceValue, referenceKeys);
    if (reference !== null) {
      check.string(`${where}.reference.name`, reference['name']);
      check.string(`${where}.reference.unit`, reference['unit']);
      const hasReference = check.number(`${where}.reference.value`, reference['value'], 'finite');
      const hasRatio = check.number(`${where}.reference.ratio`, reference['ratio'], 'finite');
      if (hasReference && reference['value'] === 0) check.fail(`${where}.reference.value`, 'must not be 0');
      if (hasReference && hasRatio && hasValue && reference['value'] !== 0) {
        const expected = (record['value'] as number) / (reference['value'] as number);
        if (!close(expected, reference['ratio'] as number)) {
          check.fail(`${where}.reference.ratio`, `${reference['ratio'] as number} is not value / reference.value = ${expected}`);
        }
      }
    }
  }
  check.numbers(`${where}.distribution`, record['distribution'], 'finite', distributionSamplesMax, true);
  check.numbers(`${where}.seeds`, record['seeds'], 'nonNegativeInteger', Number.MAX_SAFE_INTEGER, true);
  check.oneOf(`${where}.fsync`, record['fsync'], fsyncPolicies, true);
  check.string(`${where}.checksum`, record['checksum'], true);
  check.string(`${where}.note`, record['note'], true);
}

/**
 * Checks that `json` (parsed) is a BenchRun: every field present with the right type and range,
 * no unknown fields, spreads ordered, ratios equal to value / reference. Returns every problem
 * (up to 50) with its path, e.g. `records[3].spread.p25: expected a finite number, got null`.
 */
export function validateRun(json: unknown): RunValidation {
  const check = new Checker();
  const run = check.object('run', json, runKeys);
  if (run === null) return { ok: false, errors: check.errors };
  if (run['schema'] !== resultsSchemaVersion) {
    check.fail('run.schema', `expected ${resultsSchemaVersion}, got ${describe(run['schema'])} (a file from another version of the bench lab?)`);
  }
  check.oneOf('run.mode', run['mode'], modes);
  const started = check.date('run.startedAt', run['startedAt']);
  const finished = check.date('run.finishedAt', run['finishedAt']);
  if (started !== null && finished !== null && finished < started) check.fail('run.finishedAt', 'before startedAt');
  check.number('run.durationMs', run['durationMs'], 'nonNegative');
  const machine = check.object('run.machine', run['machine'], machineKeys);
  if (machine !== null) {
    check.string('run.machine.cpuModel', machine['cpuModel']);
    check.number('run.machine.cores', machine['cores'], 'positiveInteger');
    check.number('run.machine.memoryBytes', machine['memoryBytes'], 'positiveInteger');
    check.string('run.machine.platform', machine['platform']);
    check.string('run.machine.arch', machine['arch']);
    check.string('run.machine.hostname', machine['hostname'], true);
  }
  check.string('run.node', run['node']);
  check.string('run.commit', run['commit']);
  if (typeof run['dirty'] !== 'boolean') check.fail('run.dirty', `expected true or false, got ${describe(run['dirty'])}`);
  check.numbers('run.seeds', run['seeds'], 'nonNegativeInteger', Number.MAX_SAFE_INTEGER);
  const notes = run['notes'];
  if (!Array.isArray(notes)) check.fail('run.notes', `expected an array of strings, got ${describe(notes)}`);
  else notes.forEach((note, i) => check.string(`run.notes[${i}]`, note));
  const records = run['records'];
  if (!Array.isArray(records)) check.fail('run.records', `expected an array of records, got ${describe(records)}`);
  else records.forEach((record, i) => checkRecord(check, `run.records[${i}]`, record));
  if (check.errors.length > 0) return { ok: false, errors: check.errors };
  return { ok: true, run: json as BenchRun };
}

/** Parses and validates run JSON text; throws ResultsError listing every problem. */
export function parseRun(text: string, source: string): BenchRun {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new ResultsError('invalid-run', `${source}: not JSON (${error instanceof Error ? error.message : String(error)})`);
  }
  const validation = validateRun(json);
  if (!validation.ok) {
    throw new ResultsError('invalid-run', `${source}: not a valid bench run:\n  ${validation.errors.join('\n  ')}`);
  }
  return validation.run;
}

// ---------------------------------------------------------------------------------------------
// Writing.

/** The file name of a run: `<startedAt, colons removed>-<commit>[-dirty].json`, sortable by time. */
export function runFileName(run: Pick<BenchRun, 'startedAt' | 'commit' | 'dirty'>): string {
  const stamp = new Date(run.startedAt).toISOString().replace(/:/g, '').replace(/\.\d+Z$/, 'Z');
  const commit = run.commit.replace(/[^0-9A-Za-z_-]/g, '_');
  return `${stamp}-${commit}${run.dirty ? '-dirty' : ''}.json`;
}

/** Where writeRun put things, and whether the report was regenerated. */
export interface WriteRunResult {
  readonly runPath: string;
  readonly latestPath: string;
  readonly report:
    | { readonly ok: true; readonly markdownPath: string }
    | { readonly ok: false; readonly reason: string };
}

/** Options of writeRun. */
export interface WriteRunOptions {
  /** The report generator to run; null to skip it. Default: scripts/dist/report.js in this repository. */
  readonly reportScript?: string | null;
  /** Bound on the report generator's run time. */
  readonly reportTimeoutMs?: number;
}

function writeAtomically(file: string, text: string): void {
  const temporary = `${file}.${process.pid}.tmp`;
  writeFileSync(temporary, text);
  renameSync(temporary, file);
}

/**
 * Validates `run`, writes `<resultsDir>/<timestamp>-<commit>.json` and `<resultsDir>/latest.json`,
 * then regenerates latest.md and charts/ with the report generator. An invalid run is still saved
 * (as `<name>.invalid.json`, so no measurement is lost) and then refused with a ResultsError that
 * lists its problems. A report failure does not lose the run either: it is returned, not thrown.
 */
export function writeRun(run: BenchRun, resultsDir: string, options: WriteRunOptions = {}): WriteRunResult {
  mkdirSync(resultsDir, { recursive: true });
  const text = `${JSON.stringify(run, null, 2)}\n`;
  const name = runFileName(run);
  const validation = validateRun(JSON.parse(text));
  if (!validation.ok) {
    const invalidPath = path.join(resultsDir, name.replace(/\.json$/, '.invalid.json'));
    writeAtomically(invalidPath, text);
    throw new ResultsError('invalid-run', `bench run not valid (saved as ${invalidPath}):\n  ${validation.errors.join('\n  ')}`);
  }
  const runPath = path.join(resultsDir, name);
  const latestPath = path.join(resultsDir, 'latest.json');
  writeAtomically(runPath, text);
  writeAtomically(latestPath, text);
  const reportScript = options.reportScript === undefined ? path.join(repositoryRoot, 'scripts', 'dist', 'report.js') : options.reportScript;
  if (reportScript === null) return { runPath, latestPath, report: { ok: false, reason: 'report skipped by the caller' } };
  if (!existsSync(reportScript)) {
    return { runPath, latestPath, report: { ok: false, reason: `report generator ${reportScript} not built (run npx tsc -b tsconfig.build.json, then pnpm report)` } };
  }
  try {
    execFileSync(process.execPath, [reportScript, latestPath, '--out', resultsDir], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: options.reportTimeoutMs ?? 120_000,
    });
  } catch (error) {
    const stderr = (error as { stderr?: string }).stderr ?? '';
    return { runPath, latestPath, report: { ok: false, reason: `report generator failed: ${stderr.trim() || String(error)}` } };
  }
  return { runPath, latestPath, report: { ok: true, markdownPath: path.join(resultsDir, 'latest.md') } };
}
