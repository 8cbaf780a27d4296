/**
 * The bench lab's command line and plans: what `pnpm bench` (the full sweep) and `pnpm bench:quick`
 * (a representative subset that keeps the lab from rotting in CI) measure, and how much of it.
 * Pure: no I/O, so the tests can check every rule.
 *
 *   node benchmarks/dist/lab/main.js [--quick] [--suites a,b] [--nodes 3,5] [--transports memory,tcp]
 *        [--trials N] [--seed N] [--out DIR] [--no-peers] [--no-progress] [--list] [--help]
 */

/** Transports the cluster sweeps run over (all in one process; tcp and ws over real loopback sockets). */
export type LabTransport = 'memory' | 'tcp' | 'ws';

/** Every transport, in report order. */
export const labTransports: readonly LabTransport[] = ['memory', 'tcp', 'ws'];

/** Cluster sizes of the sweeps. */
export const labNodeCounts: readonly number[] = [3, 5, 7, 10];

/** The suites, in the order they run. */
export const labSuites = ['probe', 'micro', 'core', 'elections', 'cluster', 'recovery', 'memory', 'process-cluster', 'peers'] as const;

/** One suite of the lab. */
export type LabSuite = (typeof labSuites)[number];

/** What each suite measures, for `--list` and the docs. */
export const suiteDescriptions: Readonly<Record<LabSuite, string>> = {
  probe: 'speed-of-light probe: encode once, copy to N-1 followers, apply on N (per cluster size)',
  micro: 'tinybench micro benchmarks: ring append/slice, entry framing, wire header codec, quorum, step hot path',
  core: 'core throughput: RaftNodes with direct delivery, no runtime, no transport',
  elections: 'election convergence: ticks (simulator, fixed seeds) and ms (RaftRuntime clusters), cold start and leader loss',
  cluster: 'RaftRuntime clusters: commit/apply latency idle and under load, throughput, messages and bytes per entry',
  recovery: 'a new leader brings a follower lagging by 100,000 entries up to date',
  memory: 'heap bytes per retained entry (per replica)',
  'process-cluster': 'one node per process over loopback tcp/ws (benchmarks/src/cluster, when present)',
  peers: 'etcd raft 3.4 (Go) and liferaft on the same 3-node workload, when their toolchains are present',
};

/** How big each measurement is. */
export interface LabPlan {
  readonly mode: 'full' | 'quick';
  readonly suites: readonly LabSuite[];
  /** Transport x size grid of the RaftRuntime suites (cluster, elections in ms, recovery). */
  readonly grid: readonly { readonly transport: LabTransport; readonly nodes: number }[];
  /** Cluster sizes of the transport-free suites (probe, core, election ticks, memory). */
  readonly nodeCounts: readonly number[];
  /** Entries per proposal batch (B). */
  readonly batch: number;
  /** Data bytes per entry. */
  readonly entryBytes: number;
  /** Election trials per cluster size in the simulator (ticks). */
  readonly electionTickTrials: number;
  /** Election trials per grid cell with real runtimes (ms), for cold start and for leader loss each. */
  readonly electionMsTrials: number;
  /** Idle commit-latency samples per grid cell (one batch at a time). */
  readonly idleBatches: number;
  /** Under load: batches kept in flight, run-in and timed windows. */
  readonly loadBatchesInflight: number;
  readonly loadWarmupMs: number;
  readonly loadWindows: number;
  readonly loadWindowMs: number;
  /** Recovery: entries the follower lags by, and trials per grid cell. */
  readonly recoveryLagEntries: number;
  readonly recoveryTrials: number;
  /** Grid cells of the recovery suite (a subset in quick mode). */
  readonly recoveryGrid: readonly { readonly transport: LabTransport; readonly nodes: number }[];
  /** Entries retained for the heap measurement. */
  readonly heapEntries: number;
  /** Probe run time per cluster size. */
  readonly probeMs: number;
  readonly microSize: 'small' | 'large';
  readonly coreSize: 'small' | 'large';
  readonly peersQuick: boolean;
  /** Base of every seed the lab derives (simulator trials, runtime node seeds). */
  readonly seed: number;
}

/** Parsed command line. */
export interface LabOptions {
  readonly quick: boolean;
  readonly suites: readonly LabSuite[] | null;
  readonly nodes: readonly number[] | null;
  readonly transports: readonly LabTransport[] | null;
  readonly trials: number | null;
  readonly seed: number;
  readonly outDir: string | null;
  readonly peers: boolean;
  readonly progress: boolean;
  readonly list: boolean;
  readonly help: boolean;
}

/** A usage error: the message says what was wrong and the usage line. */
export class LabUsageError extends Error {
  readonly code = 'lab-usage' as const;
  constructor(message: string) {
    super(`${message}\n${labUsage}`);
    this.name = 'LabUsageError';
  }
}

/** The usage line. */
export const labUsage =
  'usage: node benchmarks/dist/lab/main.js [--quick] [--suites a,b] [--nodes 3,5,7,10] [--transports memory,tcp,ws] [--trials N] [--seed N] [--out DIR] [--no-peers] [--no-progress] [--list]';

/** The default seed base: printed in every run, so a run's simulated trials can be replayed. */
export const defaultSeed = 20_260_101;

function listOf<T extends string>(flag: string, text: string, allowed: readonly T[]): T[] {
  const items = text.split(',').map((item) => item.trim()).filter((item) => item !== '');
  if (items.length === 0) throw new LabUsageError(`${flag} needs at least one value`);
  for (const item of items) {
    if (!(allowed as readonly string[]).includes(item)) throw new LabUsageError(`${flag}: unknown value ${item}; known: ${allowed.join(', ')}`);
  }
  return [...new Set(items as T[])];
}

function integerOf(flag: string, text: string, min: number, max: number): number {
  const value = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(value) || value < min || value > max) {
    throw new LabUsageError(`${flag} expects an integer in [${min}, ${max}], got ${text}`);
  }
  return value;
}

/** Parses the command line; throws LabUsageError naming the problem. */
export function parseLabArguments(argv: readonly string[]): LabOptions {
  let quick = false;
  let suites: LabSuite[] | null = null;
  let nodes: number[] | null = null;
  let transports: LabTransport[] | null = null;
  let trials: number | null = null;
  let seed = defaultSeed;
  let outDir: string | null = null;
  let peers = true;
  let progress = true;
  let list = false;
  let help = false;
  const value = (i: number, flag: string): string => {
    const next = argv[i + 1];
    if (next === undefined || next.startsWith('--')) throw new LabUsageError(`${flag} needs a value`);
    return next;
  };
  for (let i = 0; i < argv.length; i++) {
    const argument = argv[i] as string;
    switch (argument) {
      case '--quick':
        quick = true;
        break;
      case '--suites':
        suites = listOf(argument, value(i++, argument), labSuites);
        break;
      case '--nodes': {
        const text = value(i++, argument);
        nodes = [...new Set(text.split(',').map((item) => integerOf(argument, item.trim(), 3, 15)))].sort((a, b) => a - b);
        break;
      }
      case '--transports':
        transports = listOf(argument, value(i++, argument), labTransports);
        break;
      case '--trials':
        trials = integerOf(argument, value(i++, argument), 1, 10_000);
        break;
      case '--seed':
        seed = integerOf(argument, value(i++, argument), 0, 0xffff_ffff);
        break;
      case '--out':
        outDir = value(i++, argument);
        break;
      case '--no-peers':
        peers = false;
        break;
      case '--no-progress':
        progress = false;
        break;
      case '--list':
        list = true;
        break;
      case '--help':
      case '-h':
        help = true;
        break;
      case '--':
        break; // pnpm passes it through from `pnpm bench -- --nodes 3`
      default:
        throw new LabUsageError(`unknown argument ${argument}`);
    }
  }
  return { quick, suites, nodes, transports, trials, seed, outDir, peers, progress, list, help };
}

/** The plan for the options: the full sweep, or the quick subset, narrowed by --suites/--nodes/--transports. */
export function labPlan(options: LabOptions): LabPlan {
  const quick = options.quick;
  const transports = options.transports ?? labTransports;
  const nodeCounts = options.nodes ?? (quick ? [3, 5] : labNodeCounts);
  const grid: { transport: LabTransport; nodes: number }[] = [];
  for (const transport of transports) {
    for (const nodes of nodeCounts) {
      // Quick: every transport at 3 nodes, and memory at every size asked for.
      if (quick && options.nodes === null && transport !== 'memory' && nodes !== 3) continue;
      grid.push({ transport, nodes });
    }
  }
  const recoveryGrid = quick ? grid.filter((cell) => cell.nodes === 3 && cell.transport !== 'ws') : grid;
  let suites: LabSuite[] = [...(options.suites ?? labSuites)];
  if (!options.peers) suites = suites.filter((suite) => suite !== 'peers');
  suites = labSuites.filter((suite) => suites.includes(suite));
  return {
    mode: quick ? 'quick' : 'full',
    suites,
    grid,
    nodeCounts,
    batch: 1000,
    entryBytes: 16,
    electionTickTrials: Math.max(30, options.trials ?? 100),
    electionMsTrials: options.trials ?? (quick ? 10 : 30),
    idleBatches: quick ? 20 : 150,
    loadBatchesInflight: 8,
    loadWarmupMs: quick ? 300 : 500,
    loadWindows: quick ? 6 : 15,
    loadWindowMs: quick ? 250 : 400,
    recoveryLagEntries: 100_000,
    recoveryTrials: quick ? 1 : 2,
    recoveryGrid,
    heapEntries: quick ? 100_000 : 300_000,
    probeMs: quick ? 500 : 1000,
    microSize: quick ? 'small' : 'large',
    coreSize: quick ? 'small' : 'large',
    peersQuick: quick,
    seed: options.seed,
  };
}
