/**
 * `raftlab cluster up`: a local cluster with a live status table.
 *
 *   raftlab cluster up --nodes 3 --transport tcp|ws|memory [--base-port 7001] [--secret S]
 *                      [--duration S] [--once] [--json] [--load N] [--interval-ms 500]
 *
 * tcp and ws run one `raftlab node` child process per node on 127.0.0.1; memory runs every node in
 * this process. The table (id, pid, role, term, leader, commit, applied, last, state) is redrawn in
 * place on a terminal about twice a second; otherwise a block is printed when something changed
 * (and every 10 s), or, with --json, one JSON object per refresh. --once waits for a leader, prints
 * one table and stops. Ctrl-C or SIGTERM (or the end of --duration) stops every node gracefully and
 * exits 0 once all are gone; a second signal kills them at once (exit 130).
 */
import type { Command } from 'commander';
import { type ClusterTransport, type LocalCluster, clusterNodesMax, clusterTransports, startCluster, waitForLeader } from '../cluster/local-cluster.js';
import { type MachineKind, machineKinds } from '../cluster/running-node.js';
import { type ClusterSnapshot, StatusRenderer, agreedLeader } from '../cluster/status-table.js';
import { UsageError, choiceOption, integerOption, numberOption } from '../usage.js';

/** `cluster up` options as commander hands them over (strings and flags). */
export interface UpCommandLine {
  readonly nodes: string;
  readonly transport: string;
  readonly basePort?: string;
  readonly secret?: string;
  readonly clusterId?: string;
  readonly dataDir?: string;
  readonly logDir?: string;
  readonly tickMs?: string;
  readonly machine: string;
  readonly duration?: string;
  readonly once?: boolean;
  readonly json?: boolean;
  readonly load?: string;
  readonly intervalMs: string;
}

/** Parsed options of `cluster up`. */
export interface UpOptions {
  readonly nodes: number;
  readonly transport: ClusterTransport;
  readonly basePort: number | undefined;
  readonly secret: string | undefined;
  readonly clusterId: string | undefined;
  readonly dataDirectory: string | undefined;
  readonly logDirectory: string | undefined;
  readonly tickMs: number | undefined;
  readonly machine: MachineKind;
  readonly durationMs: number | undefined;
  readonly once: boolean;
  readonly json: boolean;
  /** Commands proposed per second at the leader (0: none). */
  readonly loadPerSecond: number;
  readonly intervalMs: number;
}

/** Checks the command line (UsageError, exit code 2). */
export function parseUpOptions(line: UpCommandLine): UpOptions {
  const nodes = integerOption('--nodes', line.nodes, 1, clusterNodesMax);
  const transport = choiceOption('--transport', line.transport, clusterTransports);
  const basePort = line.basePort === undefined ? undefined : integerOption('--base-port', line.basePort, 1, 65535 - nodes + 1);
  if (transport === 'memory' && (basePort !== undefined || line.secret !== undefined)) throw new UsageError('--base-port and --secret apply to tcp and ws only');
  if (line.secret === '') throw new UsageError('--secret is empty');
  return {
    nodes,
    transport,
    basePort,
    secret: line.secret,
    clusterId: line.clusterId,
    dataDirectory: line.dataDir,
    logDirectory: line.logDir,
    tickMs: line.tickMs === undefined ? undefined : integerOption('--tick-ms', line.tickMs, 1, 60_000),
    machine: choiceOption('--machine', line.machine, machineKinds),
    durationMs: line.duration === undefined ? undefined : Math.round(numberOption('--duration', line.duration, 0.1, 7 * 24 * 3600) * 1000),
    once: line.once === true,
    json: line.json === true,
    loadPerSecond: line.load === undefined ? 0 : integerOption('--load', line.load, 0, 1_000_000),
    intervalMs: integerOption('--interval-ms', line.intervalMs, 50, 60_000),
  };
}

function snapshotOf(cluster: LocalCluster, reports: ClusterSnapshot['reports']): ClusterSnapshot {
  return { time: new Date().toISOString().slice(11, 19), transport: cluster.transport, ids: cluster.ids, reports };
}

/** Runs `cluster up` until a signal, --duration or --once ends it; resolves with the exit code. */
export async function runClusterUp(options: UpOptions): Promise<number> {
  const info = (text: string): void => {
    process.stderr.write(`${text}\n`);
  };
  let signalled: NodeJS.Signals | null = null;
  let wake: () => void = () => undefined;
  let forced = false;
  let cluster: LocalCluster | null = null;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (signalled !== null) {
      // A second signal: no more patience.
      forced = true;
      info(`cluster up: ${signal} again, killing every node`);
      void (cluster?.forceStop() ?? Promise.resolve()).then(() => process.exit(130));
      return;
    }
    signalled = signal;
    wake();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    info(`cluster up: starting ${options.nodes} nodes over ${options.transport}...`);
    cluster = await startCluster({
      nodes: options.nodes,
      transport: options.transport,
      machine: options.machine,
      ...(options.basePort === undefined ? {} : { basePort: options.basePort }),
      ...(options.secret === undefined ? {} : { secret: options.secret }),
      ...(options.clusterId === undefined ? {} : { clusterId: options.clusterId }),
      ...(options.dataDirectory === undefined ? {} : { dataDirectory: options.dataDirectory }),
      ...(options.logDirectory === undefined ? {} : { logDirectory: options.logDirectory }),
      ...(options.tickMs === undefined ? {} : { tickMs: options.tickMs }),
    });
    const addresses = cluster.ids.map((id) => cluster?.address(id)).filter((address) => address !== null && address !== undefined);
    info(
      `cluster up: ${options.nodes} nodes over ${options.transport}${addresses.length > 0 ? ` on ${addresses.map((address) => `${address.host}:${address.port}`).join(',')}` : ''}; logs in ${cluster.logDirectory}; Ctrl-C stops`,
    );
    const mode = options.json ? 'json' : options.once || process.stdout.isTTY !== true ? 'plain' : 'tty';
    const renderer = new StatusRenderer((text) => process.stdout.write(text), mode);
    if (options.once) {
      let code = 0;
      try {
        await waitForLeader(cluster, 15_000);
      } catch (error) {
        info(`cluster up: ${error instanceof Error ? error.message : String(error)}`);
        code = 1;
      }
      renderer.render(snapshotOf(cluster, await cluster.statuses()));
      await cluster.stop();
      return code;
    }
    const deadline = options.durationMs === undefined ? Infinity : Date.now() + options.durationMs;
    let load: Promise<unknown> = Promise.resolve();
    let loadCredit = 0;
    while (signalled === null && Date.now() < deadline) {
      const snapshot = snapshotOf(cluster, await cluster.statuses(Math.min(1000, options.intervalMs * 2)));
      if (signalled !== null) break;
      renderer.render(snapshot);
      const leader = agreedLeader(snapshot);
      if (options.loadPerSecond > 0 && leader !== 0) {
        loadCredit += (options.loadPerSecond * options.intervalMs) / 1000;
        const count = Math.floor(loadCredit);
        loadCredit -= count;
        const running = cluster;
        // One batch in flight at a time; a failed batch (leader change) is simply not retried.
        if (count > 0) load = load.then(() => running.propose(leader, Array.from({ length: count }, () => '1'), 5000).catch(() => undefined));
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(options.intervalMs, Math.max(0, deadline - Date.now())));
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    info(`cluster up: ${signalled === null ? 'duration reached' : signalled}; stopping ${options.nodes} nodes...`);
    await load;
    await cluster.stop();
    if (forced) return 130;
    info('cluster up: every node stopped');
    return 0;
  } catch (error) {
    await cluster?.forceStop();
    throw error;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

/** Registers `raftlab cluster` and `cluster up`. */
export function register(program: Command): void {
  const cluster = program.command('cluster').description('run a local cluster and watch it');
  cluster
    .command('up')
    .description('start a local cluster (child processes for tcp and ws, one process for memory) with a live status table')
    .option('--nodes <n>', `nodes, 1 to ${clusterNodesMax}`, '3')
    .option('--transport <kind>', clusterTransports.join(', '), 'tcp')
    .option('--base-port <port>', 'node N listens on base-port + N - 1 (default: free ports)')
    .option('--secret <s>', 'cluster secret (default: a random one)')
    .option('--cluster-id <id>', 'cluster id checked by the handshake')
    .option('--data-dir <dir>', 'durable WALs under DIR/node-N (default: in memory)')
    .option('--log-dir <dir>', 'keep node logs in DIR (default: a temporary directory, removed at the end)')
    .option('--tick-ms <ms>', 'milliseconds per Raft tick')
    .option('--machine <kind>', machineKinds.join(', '), 'sum')
    .option('--duration <seconds>', 'stop after this long')
    .option('--once', 'wait for a leader, print the table once and stop')
    .option('--json', 'print one JSON object per refresh instead of the table')
    .option('--load <n>', 'propose N commands per second at the leader')
    .option('--interval-ms <ms>', 'refresh period', '500')
    .action(async (line: UpCommandLine) => {
      const code = await runClusterUp(parseUpOptions(line));
      process.exitCode = code;
      setTimeout(() => process.exit(code), 100).unref();
    });
}
