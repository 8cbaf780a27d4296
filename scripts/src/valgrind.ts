/**
 * Running workloads for the gate: under valgrind's cachegrind for the instruction count, natively
 * for the advisory wall time, and an in-process probe for the machine's current speed. Also makes
 * sure valgrind is there (installing it with apt-get when this user may).
 */
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';

import { type GateError, deterministicNodeFlags, parseCachegrindInstructions, parseFigures } from './gate.js';
import { repositoryRoot } from './paths.js';

/** How long one workload may run under valgrind (Node runs about 50 times slower there). */
export const cachegrindTimeoutMs = 10 * 60_000;
/** How long one native run may take. */
export const nativeTimeoutMs = 2 * 60_000;
/** Lines of a failed run's stderr shown in its error. */
const stderrLinesShown = 30;

/** A workload as the runner needs it. */
export interface RunnableWorkload {
  readonly name: string;
  readonly script: string;
  readonly args: readonly string[];
}

/** Outcome of making sure valgrind is present. */
export type ValgrindStatus = { readonly ok: true; readonly version: string } | { readonly ok: false; readonly reason: string };

function commandExists(command: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' }).status === 0;
}

function valgrindVersion(): string | null {
  const result = spawnSync('valgrind', ['--version'], { encoding: 'utf8' });
  return result.status === 0 ? result.stdout.trim() : null;
}

/**
 * Returns valgrind's version, installing it first with apt-get when it is missing and this user is
 * root or has passwordless sudo. Otherwise says exactly what to do.
 */
export function ensureValgrind(log: (line: string) => void): ValgrindStatus {
  if (commandExists('valgrind')) {
    const version = valgrindVersion();
    return version === null ? { ok: false, reason: 'valgrind is on PATH but `valgrind --version` fails' } : { ok: true, version };
  }
  if (!commandExists('apt-get')) {
    return { ok: false, reason: 'valgrind is not installed and apt-get is not available: install valgrind with your package manager and rerun' };
  }
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  const hasSudo = !isRoot && commandExists('sudo') && spawnSync('sudo', ['-n', 'true'], { stdio: 'ignore' }).status === 0;
  if (!isRoot && !hasSudo) {
    return { ok: false, reason: 'valgrind is not installed, and this user is neither root nor has passwordless sudo to install it: run `sudo apt-get install -y valgrind` and rerun' };
  }
  const prefix = isRoot ? '' : 'sudo -n ';
  log(`valgrind not found: installing it (${prefix}apt-get update && ${prefix}apt-get install -y valgrind)`);
  const install = spawnSync('sh', ['-c', `${prefix}apt-get update && ${prefix}apt-get install -y valgrind`], {
    stdio: ['ignore', 'inherit', 'inherit'],
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
  if (install.status !== 0 || !commandExists('valgrind')) {
    return { ok: false, reason: `installing valgrind failed (exit ${String(install.status)}): install it by hand and rerun` };
  }
  const version = valgrindVersion();
  return version === null ? { ok: false, reason: 'valgrind was installed but `valgrind --version` fails' } : { ok: true, version };
}

/**
 * The environment workloads run in: PATH, HOME and every RAFTLAB_* variable (the planted slowdown
 * among them), nothing else, so a stray NODE_OPTIONS cannot change what is measured.
 */
export function workloadEnvironment(source: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const environment: NodeJS.ProcessEnv = { LANG: 'C' };
  for (const key of ['PATH', 'HOME']) {
    const value = source[key];
    if (value !== undefined) environment[key] = value;
  }
  for (const [key, value] of Object.entries(source)) {
    if (key.startsWith('RAFTLAB_') && value !== undefined) environment[key] = value;
  }
  return environment;
}

function tail(text: string): string {
  return text.trimEnd().split('\n').slice(-stderrLinesShown).join('\n');
}

/** A workload that crashed, timed out or printed no figures. */
export class WorkloadError extends Error {
  readonly code = 'workload-failed' as const;
  constructor(message: string) {
    super(message);
    this.name = 'WorkloadError';
  }
}

/** What one cachegrind run gave. */
export interface CachegrindRun {
  readonly instructions: number;
  readonly figures: Record<string, unknown>;
  readonly seconds: number;
}

/**
 * Runs `workload` under cachegrind (`--cache-sim=no`: only instructions are counted) with Node's
 * deterministic flags, and returns its instruction count and printed figures.
 */
export function runUnderCachegrind(workload: RunnableWorkload, outFile: string, environment: NodeJS.ProcessEnv = workloadEnvironment()): Promise<CachegrindRun> {
  const argv = [
    '--tool=cachegrind',
    '--cache-sim=no',
    `--cachegrind-out-file=${outFile}`,
    process.execPath,
    ...deterministicNodeFlags,
    workload.script,
    ...workload.args,
  ];
  const started = performance.now();
  // The program's stdout and stderr go to files, not pipes: a file write is synchronous in Node,
  // while a pipe's timing depends on how fast this process reads, which shifts the counts.
  const stdoutFile = `${outFile}.stdout`;
  const stderrFile = `${outFile}.stderr`;
  const stdoutFd = openSync(stdoutFile, 'w');
  const stderrFd = openSync(stderrFile, 'w');
  return new Promise<CachegrindRun>((resolve, reject) => {
    const child = spawn('valgrind', argv, { cwd: repositoryRoot, env: environment, stdio: ['ignore', stdoutFd, stderrFd] });
    const timer = setTimeout(() => child.kill('SIGKILL'), cachegrindTimeoutMs);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(new WorkloadError(`${workload.name}: could not start valgrind: ${error.message}`));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const stdout = readFileSync(stdoutFile, 'utf8');
      const stderr = readFileSync(stderrFile, 'utf8');
      const planted = environment['RAFTLAB_PLANT_SLOWDOWN'];
      const command = `${planted === undefined ? '' : `RAFTLAB_PLANT_SLOWDOWN=${planted} `}valgrind ${argv.join(' ')}`;
      if (code !== 0) {
        reject(new WorkloadError(`${workload.name} failed under valgrind (${signal === null ? `exit ${String(code)}` : `killed by ${signal}`}${signal === 'SIGKILL' ? `, over ${cachegrindTimeoutMs / 1000} s?` : ''}):\n  ${command}\n${tail(stderr)}`));
        return;
      }
      try {
        const instructions = parseCachegrindInstructions(readFileSync(outFile, 'utf8'));
        const figures = parseFigures(stdout, workload.name);
        resolve({ instructions, figures, seconds: (performance.now() - started) / 1000 });
      } catch (error) {
        reject(new WorkloadError(`${workload.name}: ${(error as GateError).message}\n  ${command}`));
      }
    });
  }).finally(() => {
    closeSync(stdoutFd);
    closeSync(stderrFd);
  });
}

function median(values: number[]): number {
  values.sort((a, b) => a - b);
  return values[Math.floor(values.length / 2)] as number;
}

/**
 * Advisory wall time of `workload`: `runs` native runs (node start included), each preceded by the
 * probe, so both see the same machine load. Returns the median of each.
 */
export function measureWall(workload: RunnableWorkload, runs: number, environment: NodeJS.ProcessEnv = workloadEnvironment()): { wallMs: number; probeMs: number } {
  const walls: number[] = [];
  const probes: number[] = [];
  for (let i = 0; i < runs; i++) {
    probes.push(probeMs());
    const started = performance.now();
    const result = spawnSync(process.execPath, [workload.script, ...workload.args], { cwd: repositoryRoot, env: environment, stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8', timeout: nativeTimeoutMs });
    const elapsed = performance.now() - started;
    if (result.status !== 0) throw new WorkloadError(`${workload.name} failed natively (exit ${String(result.status)}):\n${tail(result.stderr ?? '')}`);
    walls.push(elapsed);
  }
  return { wallMs: median(walls), probeMs: median(probes) };
}

let probeSink = 0;

/**
 * The in-run reference for wall times: the median of 3 runs of a fixed CPU-bound loop (FNV-1a over
 * 32 MiB of bytes, about 30 ms each). Wall times are compared as ratios to it, so a machine that is
 * slower today does not look like a regression. Advisory only: on a machine shared with other
 * load, both still move by tens of percent.
 */
export function probeMs(): number {
  const bytes = new Uint8Array(1 << 20);
  for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 31) & 0xff;
  const times: number[] = [];
  for (let run = 0; run < 3; run++) {
    const started = performance.now();
    let hash = 0x811c9dc5;
    for (let round = 0; round < 32; round++) {
      for (let i = 0; i < bytes.length; i++) hash = Math.imul(hash ^ (bytes[i] as number), 0x01000193);
    }
    times.push(performance.now() - started);
    probeSink ^= hash;
  }
  return median(times);
}

/** The probe's last hash, so the loop cannot be optimized away. */
export function probeChecksum(): number {
  return probeSink;
}
