/**
 * Peers: other Raft implementations run side by side with raftlab in the same bench session, on
 * the same workload (three nodes in one process, messages handed over in memory, batches of 1000
 * commands of 16 bytes, committed and applied on all three nodes), so the report can give ratios
 * that a noisy machine cannot fake. See benchmarks/peers/README.md.
 *
 * - etcd-raft-3.4: etcd's raft (Go), built offline from Debian's golang-etcd-server-dev by
 *   benchmarks/peers/etcd-raft/build.sh; two ways of proposing (one Propose per command, or one
 *   MsgProp carrying the whole batch).
 * - liferaft: the npm package, run by benchmarks/peers/liferaft/harness.mjs in a child Node process.
 *
 * A peer whose toolchain or package is missing, or whose harness fails or prints figures that do
 * not check out (wrong count, wrong checksum), comes back with status 'skipped' and the reason:
 * runPeers never throws for those.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** Which peer implementation a result is for. */
export type PeerName = 'etcd-raft-3.4' | 'liferaft';

/**
 * How the commands of a batch are proposed at the leader:
 * `propose-each` one RawNode.Propose per command (etcd);
 * `one-message` one Step with a MsgProp carrying the whole batch (etcd);
 * `command-each` one awaited `command()` per command, liferaft's only way.
 */
export type PeerVariant = 'propose-each' | 'one-message' | 'command-each';

/** 'ok' when the figures were measured and checked; 'skipped' with a reason otherwise. */
export type PeerStatus = 'ok' | 'skipped';

/** A value of PeerResult.meta: plain JSON, so the report can print it as it is. */
export type PeerMetaValue = string | number | boolean | null | readonly number[];

/** Commands per batch, the same in every peer and in raftlab's core benchmark. */
export const peerBatchEntries = 1000;
/** Cluster size of the peer workload. */
export const peerNodeCount = 3;

/** One peer and variant: committed-and-applied entries per second, one figure per timed run. */
export interface PeerResult {
  peer: PeerName;
  variant: PeerVariant;
  status: PeerStatus;
  /** Why the peer was skipped (absent when status is 'ok'). */
  reason?: string;
  /** One figure per timed run; empty when skipped. */
  entriesPerSecond: number[];
  batch: typeof peerBatchEntries;
  nodes: typeof peerNodeCount;
  /** Versions, run plan, checksum, median/min/max and peer-specific counters. */
  meta: Record<string, PeerMetaValue>;
}

/** Options of runPeers. */
export interface PeersOptions {
  /** Fewer and shorter runs: the whole step stays under about 30 s (about 2 min otherwise). */
  quick: boolean;
  /** Overrides the etcd batches per timed run (tests use a handful). */
  etcdBatches?: number;
  /** Overrides the timed runs per peer and variant. */
  runs?: number;
  /** Overrides the time cap of one liferaft run, in seconds. */
  liferaftRunSeconds?: number;
  /** Which peers to run (default: all). */
  peers?: readonly PeerName[];
  /** Overrides where build.sh looks for Debian's Go sources (default /usr/share/gocode). */
  gocodeDirectory?: string;
  /** Progress lines (building, running); silent by default. */
  log?: (line: string) => void;
}

interface PeerPlan {
  etcdBatches: number;
  etcdRuns: number;
  etcdWarmupRuns: number;
  liferaftRuns: number;
  liferaftRunSeconds: number;
  liferaftWarmupSeconds: number;
  buildTimeoutMs: number;
  runTimeoutMs: number;
}

/** Run plans: quick keeps the whole peers step under about 30 s, full under about 2 min. */
const quickPlan: PeerPlan = {
  etcdBatches: 200,
  etcdRuns: 3,
  etcdWarmupRuns: 1,
  liferaftRuns: 3,
  liferaftRunSeconds: 1,
  liferaftWarmupSeconds: 0.5,
  buildTimeoutMs: 120_000,
  runTimeoutMs: 60_000,
};
const fullPlan: PeerPlan = {
  etcdBatches: 2000,
  etcdRuns: 5,
  etcdWarmupRuns: 1,
  liferaftRuns: 5,
  liferaftRunSeconds: 3,
  liferaftWarmupSeconds: 1,
  buildTimeoutMs: 180_000,
  runTimeoutMs: 150_000,
};

/** Exit code the harness scripts use for "toolchain or package missing". */
const exitCodeMissing = 3;
/** Bound on the stderr text quoted in a reason. */
const reasonStderrCharactersMax = 600;

/** benchmarks/peers/, found from this module in src/ (tests) or dist/ (built). */
const peersDirectory = fileURLToPath(new URL('../peers/', import.meta.url));

/** Runs every peer in turn (never concurrently: they would disturb each other's figures). */
export async function runPeers(options: PeersOptions): Promise<PeerResult[]> {
  const base = options.quick ? quickPlan : fullPlan;
  const plan: PeerPlan = {
    ...base,
    etcdBatches: options.etcdBatches ?? base.etcdBatches,
    etcdRuns: options.runs ?? base.etcdRuns,
    liferaftRuns: options.runs ?? base.liferaftRuns,
    liferaftRunSeconds: options.liferaftRunSeconds ?? base.liferaftRunSeconds,
  };
  assertPositiveInteger('etcdBatches', plan.etcdBatches);
  assertPositiveInteger('runs', plan.etcdRuns);
  if (!(plan.liferaftRunSeconds > 0)) throw new RangeError(`liferaftRunSeconds must be positive, got ${plan.liferaftRunSeconds}`);
  const log = options.log ?? ((): void => {});
  const selected = new Set<PeerName>(options.peers ?? ['etcd-raft-3.4', 'liferaft']);
  const results: PeerResult[] = [];
  if (selected.has('etcd-raft-3.4')) results.push(...(await runEtcd(plan, options.gocodeDirectory, log)));
  if (selected.has('liferaft')) results.push(await runLiferaft(plan, log));
  return results;
}

function assertPositiveInteger(name: string, value: number): void {
  if (!Number.isInteger(value) || value < 1) throw new RangeError(`${name} must be a positive integer, got ${value}`);
}

// ---------------------------------------------------------------------------------------------
// etcd raft

const etcdVariants: readonly PeerVariant[] = ['propose-each', 'one-message'];

async function runEtcd(plan: PeerPlan, gocodeDirectory: string | undefined, log: (line: string) => void): Promise<PeerResult[]> {
  const skipAll = (reason: string): PeerResult[] => etcdVariants.map((variant) => skipped('etcd-raft-3.4', variant, reason));
  const environment: NodeJS.ProcessEnv = { ...process.env };
  if (gocodeDirectory !== undefined) environment['RAFTLAB_GOCODE'] = gocodeDirectory;
  log('peers: building the etcd raft harness (benchmarks/peers/etcd-raft/build.sh)');
  const build = await runProcess('bash', [`${peersDirectory}etcd-raft/build.sh`], environment, plan.buildTimeoutMs);
  if (build.outcome !== 'exited' || build.code !== 0) {
    const missing = build.outcome === 'exited' && build.code === exitCodeMissing;
    return skipAll(missing ? tail(build.stderr) : `failed: building the harness ${describeOutcome(build)}: ${tail(build.stderr)}`);
  }
  const binary = build.stdout.trim().split('\n').pop() ?? '';
  if (!existsSync(binary)) return skipAll(`failed: build.sh printed no binary path (got ${JSON.stringify(binary)})`);
  const args = ['-batches', String(plan.etcdBatches), '-batch', String(peerBatchEntries), '-runs', String(plan.etcdRuns), '-warmup', String(plan.etcdWarmupRuns), '-nodes', String(peerNodeCount)];
  log(`peers: running etcd raft (${plan.etcdRuns} runs of ${plan.etcdBatches} batches per variant)`);
  const run = await runProcess(binary, args, environment, plan.runTimeoutMs);
  if (run.outcome !== 'exited' || run.code !== 0) return skipAll(`failed: harness ${describeOutcome(run)}: ${tail(run.stderr)}`);
  return parseEtcdReport(run.stdout, { batches: plan.etcdBatches, runs: plan.etcdRuns });
}

/** What the runner asked the etcd harness for, to check its report against. */
export interface EtcdExpectation {
  batches: number;
  runs: number;
}

/**
 * Turns the etcd harness's JSON line into results, checking it: the version is 3.4, each variant
 * has one positive figure per run, every run applied batches x 1000 commands, and the checksum is
 * the one those commands must produce. Anything else gives skipped results that say what is wrong.
 */
export function parseEtcdReport(stdout: string, expected: EtcdExpectation): PeerResult[] {
  const skipAll = (reason: string): PeerResult[] => etcdVariants.map((variant) => skipped('etcd-raft-3.4', variant, `failed: etcd harness output: ${reason}`));
  const report = parseLastJsonLine(stdout);
  if (report === null) return skipAll(`no JSON line in ${JSON.stringify(stdout.slice(0, 200))}`);
  const raftVersion = report['raftVersion'];
  if (typeof raftVersion !== 'string' || !raftVersion.startsWith('3.4.')) return skipAll(`expected etcd raft 3.4.x, found ${JSON.stringify(raftVersion)}`);
  const variants = report['variants'];
  if (!Array.isArray(variants)) return skipAll('no variants array');
  const expectedApplied = expected.batches * peerBatchEntries;
  const expectedChecksum = etcdChecksum(expectedApplied);
  return etcdVariants.map((variant): PeerResult => {
    const entry: unknown = variants.find((candidate: unknown) => isRecord(candidate) && candidate['variant'] === variant);
    const fail = (reason: string): PeerResult => skipped('etcd-raft-3.4', variant, `failed: etcd harness output: ${reason}`);
    if (!isRecord(entry)) return fail(`variant ${variant} missing`);
    const figures = entry['entriesPerSecond'];
    if (!isPositiveNumberArray(figures) || figures.length !== expected.runs) return fail(`variant ${variant}: expected ${expected.runs} positive figures, got ${JSON.stringify(figures)}`);
    if (entry['appliedEntriesPerRun'] !== expectedApplied) return fail(`variant ${variant}: applied ${JSON.stringify(entry['appliedEntriesPerRun'])} commands per run, expected ${expectedApplied}`);
    if (entry['checksum'] !== expectedChecksum) return fail(`variant ${variant}: checksum ${JSON.stringify(entry['checksum'])}, expected ${expectedChecksum}`);
    return {
      peer: 'etcd-raft-3.4',
      variant,
      status: 'ok',
      entriesPerSecond: figures,
      batch: peerBatchEntries,
      nodes: peerNodeCount,
      meta: {
        ...summarize(figures),
        raftVersion,
        goVersion: stringOrNull(report['goVersion']),
        gomaxprocs: numberOrNull(report['gomaxprocs']),
        batches: expected.batches,
        runs: expected.runs,
        warmupRuns: numberOrNull(report['warmupRuns']),
        payloadBytes: numberOrNull(report['payloadBytes']),
        compact: report['compact'] === true,
        messagesPerBatch: numberOrNull(entry['messagesPerBatch']),
        appliedEntriesPerRun: expectedApplied,
        checksum: expectedChecksum,
      },
    };
  });
}

const uint64Mask = (1n << 64n) - 1n;
const goldenMultiplier = 0x9e3779b97f4a7c15n;

/**
 * The checksum the etcd harness's counter must reach after applying commands 0..count-1: each
 * command k carries k and k * 0x9E3779B97F4A7C15 (mod 2^64); the counter adds their XOR (mod 2^64).
 * Returned as 16 hex digits, as the harness prints it.
 */
export function etcdChecksum(count: number): string {
  let sum = 0n;
  for (let sequence = 0n; sequence < BigInt(count); sequence++) {
    sum = (sum + (sequence ^ ((sequence * goldenMultiplier) & uint64Mask))) & uint64Mask;
  }
  return sum.toString(16).padStart(16, '0');
}

// ---------------------------------------------------------------------------------------------
// liferaft

async function runLiferaft(plan: PeerPlan, log: (line: string) => void): Promise<PeerResult> {
  const args = [
    `${peersDirectory}liferaft/harness.mjs`,
    '--runs',
    String(plan.liferaftRuns),
    '--run-seconds',
    String(plan.liferaftRunSeconds),
    '--warmup-seconds',
    String(plan.liferaftWarmupSeconds),
    '--batch',
    String(peerBatchEntries),
  ];
  log(`peers: running liferaft (${plan.liferaftRuns} runs of ${plan.liferaftRunSeconds} s)`);
  const run = await runProcess(process.execPath, args, { ...process.env }, plan.runTimeoutMs);
  if (run.outcome === 'exited' && run.code === exitCodeMissing) return skipped('liferaft', 'command-each', tail(run.stderr));
  if (run.outcome !== 'exited' || run.code !== 0) return skipped('liferaft', 'command-each', `failed: harness ${describeOutcome(run)}: ${tail(run.stderr)}`);
  return parseLiferaftReport(run.stdout, { runs: plan.liferaftRuns });
}

/** What the runner asked the liferaft harness for. */
export interface LiferaftExpectation {
  runs: number;
}

/**
 * Turns the liferaft harness's JSON line into a result, checking it: one positive figure per run,
 * whole batches applied, and each run's checksum equal to n(n-1)/2 for its n applied commands
 * (the sum of their sequence numbers). Anything else gives a skipped result that says what is wrong.
 */
export function parseLiferaftReport(stdout: string, expected: LiferaftExpectation): PeerResult {
  const fail = (reason: string): PeerResult => skipped('liferaft', 'command-each', `failed: liferaft harness output: ${reason}`);
  const report = parseLastJsonLine(stdout);
  if (report === null) return fail(`no JSON line in ${JSON.stringify(stdout.slice(0, 200))}`);
  const variants = report['variants'];
  const entry: unknown = Array.isArray(variants) ? variants.find((candidate: unknown) => isRecord(candidate) && candidate['variant'] === 'command-each') : undefined;
  if (!isRecord(entry)) return fail('variant command-each missing');
  const figures = entry['entriesPerSecond'];
  if (!isPositiveNumberArray(figures) || figures.length !== expected.runs) return fail(`expected ${expected.runs} positive figures, got ${JSON.stringify(figures)}`);
  const applied = entry['appliedEntriesPerRun'];
  const checksums = entry['checksums'];
  if (!isPositiveNumberArray(applied) || applied.length !== expected.runs) return fail(`appliedEntriesPerRun ${JSON.stringify(applied)}`);
  if (!Array.isArray(checksums) || checksums.length !== expected.runs) return fail(`checksums ${JSON.stringify(checksums)}`);
  for (const [run, count] of applied.entries()) {
    if (!Number.isInteger(count) || count % peerBatchEntries !== 0) return fail(`run ${run} applied ${count} commands, not whole batches of ${peerBatchEntries}`);
    const expectedChecksum = ((BigInt(count) * BigInt(count - 1)) / 2n).toString();
    if (checksums[run] !== expectedChecksum) return fail(`run ${run}: checksum ${JSON.stringify(checksums[run])}, expected ${expectedChecksum}`);
  }
  const repeated = entry['repeatedCommits'];
  return {
    peer: 'liferaft',
    variant: 'command-each',
    status: 'ok',
    entriesPerSecond: figures,
    batch: peerBatchEntries,
    nodes: peerNodeCount,
    meta: {
      ...summarize(figures),
      liferaftVersion: stringOrNull(report['liferaftVersion']),
      memdownVersion: stringOrNull(report['memdownVersion']),
      nodeVersion: stringOrNull(report['nodeVersion']),
      runs: expected.runs,
      runSeconds: numberOrNull(report['runSeconds']),
      warmupSeconds: numberOrNull(report['warmupSeconds']),
      payloadBytes: numberOrNull(report['payloadBytes']),
      appliedEntriesPerRun: applied,
      // liferaft emits 'commit' again for entries it already committed; the harness applies once.
      repeatedCommitsPerRun: Array.isArray(repeated) ? repeated.map((perNode: unknown) => (isPositiveOrZeroNumberArray(perNode) ? perNode.reduce((a, b) => a + b, 0) : -1)) : [],
    },
  };
}

// ---------------------------------------------------------------------------------------------
// helpers

/** median, min, max and spread ((max - min) / median, in percent) of per-run figures. */
export function summarize(values: readonly number[]): { medianEntriesPerSecond: number; minEntriesPerSecond: number; maxEntriesPerSecond: number; spreadPercent: number } {
  if (values.length === 0) throw new RangeError('summarize needs at least one value');
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  const median = sorted.length % 2 === 1 ? (sorted[middle] as number) : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
  const min = sorted[0] as number;
  const max = sorted[sorted.length - 1] as number;
  return { medianEntriesPerSecond: median, minEntriesPerSecond: min, maxEntriesPerSecond: max, spreadPercent: median > 0 ? ((max - min) / median) * 100 : 0 };
}

function skipped(peer: PeerName, variant: PeerVariant, reason: string): PeerResult {
  return { peer, variant, status: 'skipped', reason, entriesPerSecond: [], batch: peerBatchEntries, nodes: peerNodeCount, meta: {} };
}

type ProcessOutcome =
  | { outcome: 'exited'; code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }
  | { outcome: 'timed-out'; timeoutMs: number; stdout: string; stderr: string }
  | { outcome: 'not-started'; error: string; stdout: string; stderr: string };

/** Runs a command to completion; never rejects: a missing command or a timeout is an outcome. */
function runProcess(command: string, args: readonly string[], environment: NodeJS.ProcessEnv, timeoutMs: number): Promise<ProcessOutcome> {
  return new Promise((resolve) => {
    let stdout = '';
    let stderr = '';
    let settled = false;
    const child = spawn(command, args, { env: environment, stdio: ['ignore', 'pipe', 'pipe'] });
    const finish = (outcome: ProcessOutcome): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(outcome);
    };
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      finish({ outcome: 'timed-out', timeoutMs, stdout, stderr });
    }, timeoutMs);
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('error', (error) => finish({ outcome: 'not-started', error: error.message, stdout, stderr }));
    child.on('close', (code, signal) => finish({ outcome: 'exited', code, signal, stdout, stderr }));
  });
}

function describeOutcome(outcome: ProcessOutcome): string {
  switch (outcome.outcome) {
    case 'exited':
      return outcome.signal !== null ? `killed by ${outcome.signal}` : `exited with code ${outcome.code}`;
    case 'timed-out':
      return `timed out after ${outcome.timeoutMs} ms`;
    case 'not-started':
      return `could not start (${outcome.error})`;
    default: {
      const exhaustive: never = outcome;
      return String(exhaustive);
    }
  }
}

function tail(text: string): string {
  const trimmed = text.trim();
  if (trimmed === '') return '(no message on stderr)';
  return trimmed.length <= reasonStderrCharactersMax ? trimmed : `...${trimmed.slice(-reasonStderrCharactersMax)}`;
}

function parseLastJsonLine(stdout: string): Record<string, unknown> | null {
  const lines = stdout.trim().split('\n').reverse();
  for (const line of lines) {
    if (!line.startsWith('{')) continue;
    try {
      const value: unknown = JSON.parse(line);
      if (isRecord(value)) return value;
    } catch {
      return null;
    }
  }
  return null;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isPositiveNumberArray(value: unknown): value is number[] {
  return Array.isArray(value) && value.every((item) => typeof item === 'number' && Number.isFinite(item) && item > 0);
}

function isPositiveOrZeroNumberArray(value: unknown): value is number[] {
  return Array.isArray(value) && value.every((item) => typeof item === 'number' && Number.isFinite(item) && item >= 0);
}

function stringOrNull(value: unknown): string | null {
  return typeof value === 'string' ? value : null;
}

function numberOrNull(value: unknown): number | null {
  return typeof value === 'number' && Number.isFinite(value) ? value : null;
}
