/**
 * The regression gate (`pnpm bench:check`; `pnpm bench:baseline` records the baseline).
 *
 *   node scripts/dist/check.js [--update] [--only a,b] [--baseline results/baseline.json]
 *                              [--tolerance 3] [--jobs 2] [--no-wall] [--keep DIR] [--list]
 *
 * Runs every workload of benchmarks/src/check-workloads.ts under valgrind's cachegrind with Node's
 * deterministic flags, and compares the instruction count (more than 3% over the baseline fails)
 * and the exact figures each workload prints (any difference fails) with results/baseline.json.
 * Wall-clock times, as ratios to an in-run probe, are printed for information and never fail.
 *
 * Exit codes: 0 passed (or baseline recorded); 1 a regression, changed figures, a missing baseline
 * entry or a workload that failed; 2 the gate could not run (no valgrind, bad baseline file, Node
 * version differs from the baseline's, bad arguments).
 *
 * To prove it fails on a real slowdown: `RAFTLAB_PLANT_SLOWDOWN=copy pnpm bench:check` (the
 * core-memory-3 workload then copies every applied entry once more: +20.6% instructions, exit 1).
 */
import { existsSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

import { type CheckWorkload, checkWorkloads } from '@raftlab/benchmarks/dist/check-workloads.js';
import { gitInfo, machineInfo } from '@raftlab/benchmarks/dist/results.js';

import { formatCount } from './format.js';
import {
  type Baseline,
  type GateError,
  type Measurement,
  buildBaseline,
  compareWithBaseline,
  deterministicNodeFlags,
  formatVerdict,
  instructionsTolerancePercent,
  validateBaseline,
} from './gate.js';
import { baselinePath, repositoryRoot } from './paths.js';
import { ensureValgrind, measureWall, runUnderCachegrind, workloadEnvironment } from './valgrind.js';

/** Native runs per workload for the advisory wall time (each beside a probe run). */
const wallRuns = 5;

/** Parsed command line. */
interface CheckArguments {
  readonly update: boolean;
  readonly only: readonly string[] | null;
  readonly baseline: string;
  readonly tolerancePercent: number;
  readonly jobs: number;
  readonly wall: boolean;
  readonly keep: string | null;
  readonly list: boolean;
}

/** A usage problem or an environment the gate cannot compare in: exit 2. */
class CannotCheckError extends Error {
  readonly code = 'cannot-check' as const;
}

const usage = `usage: node scripts/dist/check.js [--update] [--only a,b] [--baseline FILE] [--tolerance PERCENT] [--jobs N] [--no-wall] [--keep DIR] [--list]`;

function parseArguments(argv: readonly string[]): CheckArguments {
  let update = false;
  let only: string[] | null = null;
  let baseline = baselinePath;
  let tolerancePercent = instructionsTolerancePercent;
  let jobs = Math.max(1, Math.min(2, os.availableParallelism()));
  let wall = true;
  let keep: string | null = null;
  let list = false;
  const value = (i: number, flag: string): string => {
    const next = argv[i + 1];
    if (next === undefined || next.startsWith('--')) throw new CannotCheckError(`${flag} needs a value\n${usage}`);
    return next;
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i] as string;
    switch (flag) {
      case '--update':
        update = true;
        break;
      case '--only':
        only = value(i++, flag).split(',').map((name) => name.trim()).filter((name) => name !== '');
        break;
      case '--baseline':
        baseline = path.resolve(value(i++, flag));
        break;
      case '--tolerance': {
        tolerancePercent = Number(value(i++, flag));
        if (!(tolerancePercent > 0 && tolerancePercent < 100)) throw new CannotCheckError(`--tolerance expects a percentage in (0, 100), got ${argv[i] ?? ''}`);
        break;
      }
      case '--jobs': {
        jobs = Number(value(i++, flag));
        if (!Number.isSafeInteger(jobs) || jobs < 1) throw new CannotCheckError(`--jobs expects a positive integer, got ${argv[i] ?? ''}`);
        break;
      }
      case '--no-wall':
        wall = false;
        break;
      case '--keep':
        keep = path.resolve(value(i++, flag));
        break;
      case '--list':
        list = true;
        break;
      case '--':
        break; // pnpm passes it through from `pnpm bench:check -- --only x`
      case '--help':
      case '-h':
        process.stdout.write(`${usage}\n`);
        process.exit(0);
        break;
      default:
        throw new CannotCheckError(`unknown argument ${flag}\n${usage}`);
    }
  }
  return { update, only, baseline, tolerancePercent, jobs, wall, keep, list };
}

function selectWorkloads(only: readonly string[] | null): CheckWorkload[] {
  const names = new Set<string>();
  for (const workload of checkWorkloads) {
    if (names.has(workload.name)) throw new CannotCheckError(`check-workloads.ts names ${workload.name} twice`);
    names.add(workload.name);
  }
  if (only !== null) {
    const unknown = only.filter((name) => !names.has(name));
    if (unknown.length > 0) throw new CannotCheckError(`no workload named ${unknown.join(', ')}; known: ${[...names].join(', ')}`);
  }
  const selected = checkWorkloads.filter((w) => only === null || only.includes(w.name));
  for (const workload of selected) {
    if (!existsSync(workload.script)) {
      throw new CannotCheckError(`${workload.name}: ${workload.script} does not exist; build first (npx tsc -b tsconfig.build.json)`);
    }
  }
  return selected;
}

function loadBaseline(file: string): Baseline | null {
  if (!existsSync(file)) return null;
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    throw new CannotCheckError(`${file} is not JSON (${error instanceof Error ? error.message : String(error)}); re-record it with pnpm bench:baseline`);
  }
  try {
    return validateBaseline(json, file);
  } catch (error) {
    throw new CannotCheckError((error as GateError).message);
  }
}

/** Runs `tasks` with at most `jobs` at once, keeping their order in the result. */
async function inParallel<T>(tasks: readonly (() => Promise<T>)[], jobs: number): Promise<T[]> {
  const results: T[] = new Array<T>(tasks.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < tasks.length) {
      const index = next++;
      results[index] = await (tasks[index] as () => Promise<T>)();
    }
  };
  await Promise.all(Array.from({ length: Math.min(jobs, tasks.length) }, worker));
  return results;
}

async function main(): Promise<number> {
  const options = parseArguments(process.argv.slice(2));
  const log = (line: string): void => {
    process.stdout.write(`${line}\n`);
  };
  const workloads = selectWorkloads(options.only);
  if (options.list) {
    for (const w of checkWorkloads) log(`${w.name}\t${w.description}\n\t${path.relative(repositoryRoot, w.script)} ${w.args.join(' ')}`);
    return 0;
  }
  const planted = process.env['RAFTLAB_PLANT_SLOWDOWN'];
  if (options.update && planted !== undefined && planted !== '') {
    throw new CannotCheckError(`refusing to record a baseline with RAFTLAB_PLANT_SLOWDOWN=${planted} set: that would bake the planted slowdown in`);
  }
  const baseline = loadBaseline(options.baseline);
  if (!options.update) {
    if (baseline === null) throw new CannotCheckError(`no baseline at ${options.baseline}: record one with pnpm bench:baseline`);
    if (baseline.node !== process.version) {
      throw new CannotCheckError(`the baseline was recorded with Node ${baseline.node}, this is Node ${process.version}: instruction counts are not comparable across Node versions; re-record with pnpm bench:baseline`);
    }
  }
  const valgrind = ensureValgrind(log);
  if (!valgrind.ok) throw new CannotCheckError(valgrind.reason);

  log(`bench:check: ${workloads.length} workload(s) under ${valgrind.version}, Node ${process.version} ${deterministicNodeFlags.join(' ')}, ${options.jobs} at a time`);
  if (planted !== undefined && planted !== '') log(`bench:check: RAFTLAB_PLANT_SLOWDOWN=${planted} is set: a planted slowdown is active`);
  if (baseline !== null) log(`bench:check: baseline ${options.baseline} (commit ${baseline.commit}${baseline.dirty ? ', dirty' : ''}, ${baseline.recordedAt}, ${baseline.valgrind})`);
  if (baseline !== null && baseline.valgrind !== valgrind.version) log(`bench:check: note: baseline used ${baseline.valgrind}, this is ${valgrind.version}`);

  const outDir = options.keep ?? mkdtempSync(path.join(os.tmpdir(), 'raftlab-check-'));
  const environment = workloadEnvironment();
  try {
    const runs = await inParallel(
      workloads.map((workload) => async () => {
        const run = await runUnderCachegrind(workload, path.join(outDir, `cachegrind.out.${workload.name}`), environment);
        log(`  ${workload.name}: ${formatCount(run.instructions)} instructions (${run.seconds.toFixed(1)} s under valgrind)`);
        return run;
      }),
      options.jobs,
    );
    // Wall times after the valgrind runs, one process at a time, so the gate itself competes least.
    const measurements: Measurement[] = workloads.map((workload, i) => {
      const run = runs[i] as (typeof runs)[number];
      const wall = options.wall ? measureWall(workload, wallRuns, environment) : null;
      return { name: workload.name, args: workload.args, instructions: run.instructions, figures: run.figures, wallMs: wall?.wallMs ?? null, probeMs: wall?.probeMs ?? null };
    });
    const compared = compareWithBaseline(baseline, measurements, options.tolerancePercent);
    // With --only, workloads left out on purpose are not "gone": name only those no longer listed.
    const listed = new Set(checkWorkloads.map((w) => w.name));
    const verdict = { ...compared, unmeasured: compared.unmeasured.filter((name) => !listed.has(name)) };
    if (options.update) {
      if (baseline !== null) log(`\nchange against the previous baseline:\n${formatVerdict(verdict)}`);
      const git = gitInfo(repositoryRoot);
      const next = buildBaseline(baseline, measurements, new Map(checkWorkloads.map((w) => [w.name, w.description])), {
        recordedAt: new Date().toISOString(),
        machine: machineInfo(),
        node: process.version,
        valgrind: valgrind.version,
        commit: git.commit,
        dirty: git.dirty,
        nodeFlags: [...deterministicNodeFlags],
      });
      const temporary = `${options.baseline}.${process.pid}.tmp`;
      writeFileSync(temporary, `${JSON.stringify(next, null, 2)}\n`);
      renameSync(temporary, options.baseline);
      log(`\nbench:baseline: recorded ${measurements.map((m) => `${m.name} = ${formatCount(m.instructions)} Ir`).join(', ')} in ${options.baseline}`);
      return 0;
    }
    log(`\n${formatVerdict(verdict)}`);
    return verdict.ok ? 0 : 1;
  } finally {
    if (options.keep === null) rmSync(outDir, { recursive: true, force: true });
    else log(`cachegrind output kept in ${outDir} (cg_annotate <file> shows where the instructions go)`);
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().then(
    (code) => {
      process.exitCode = code;
    },
    (error: unknown) => {
      const cannot = error instanceof CannotCheckError;
      process.stderr.write(`bench:check: ${cannot ? '' : 'FAILED: '}${error instanceof Error ? error.message : String(error)}\n`);
      process.exitCode = cannot ? 2 : 1;
    },
  );
}
