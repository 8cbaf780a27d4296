/**
 * `raftlab node`: runs one Raft node in this process, the way nodes run on separate machines:
 *
 *   raftlab node --id 2 --peers 1=10.0.0.1:7001,2=10.0.0.2:7001,3=10.0.0.3:7001 --transport tcp \
 *     --secret "$RAFTLAB_SECRET" --data-dir /var/lib/raftlab/2
 *
 * The node runs the i64 sum machine (or the counter), logs with pino on stderr (LOG_LEVEL), prints
 * one JSON line {"event":"ready",...} on stdout once serving, and stops gracefully on SIGINT or
 * SIGTERM: a leader hands leadership over, then the runtime stops and the transport and storage
 * close. Repeated signals during the stop are ignored; the stop is bounded (stopTimeoutMs), after
 * which the process exits 1. `--control ipc|stdio` lets a parent read status and propose commands
 * (see cluster/control.ts). Exit codes: 0 clean stop, 1 failure, 2 bad usage.
 */
import type { Command } from 'commander';
import type { NodeId } from '@raftlab/core';
import { developmentSecret } from '@raftlab/kv';
import { type Logger, createLogger } from '@raftlab/runtime';
import { type FsyncPolicy, type Storage, WalStorage, fsyncPolicies } from '@raftlab/storage';
import { type PeerAddress, TcpTransport, WsTransport } from '@raftlab/transport';
import { type ControlServer, serveControl } from '../cluster/control-server.js';
import { type MachineKind, RunningNode, machineKinds } from '../cluster/running-node.js';
import { UsageError, choiceOption, integerOption, peersOption } from '../usage.js';

/** The secret used when neither --secret nor RAFTLAB_SECRET is given (the KV node's): fine on loopback, never in production. */
export { developmentSecret };

/** How long a graceful stop may take before the process exits anyway. */
export const stopTimeoutMs = 8000;

/** `raftlab node` options as commander hands them over (strings). */
export interface NodeCommandLine {
  readonly id?: string;
  readonly peers?: string;
  readonly transport?: string;
  readonly listen?: string;
  readonly secret?: string;
  readonly clusterId?: string;
  readonly dataDir?: string;
  readonly fsync?: string;
  readonly tickMs?: string;
  readonly electionTicks?: string;
  readonly heartbeatTicks?: string;
  readonly proposalTimeoutMs?: string;
  readonly machine?: string;
  readonly control?: string;
}

/** Parsed, checked options of one node. */
export interface NodeOptions {
  readonly id: NodeId;
  readonly peers: ReadonlyMap<NodeId, PeerAddress>;
  readonly listen: PeerAddress;
  readonly transport: 'tcp' | 'ws';
  readonly secret: string;
  readonly clusterId: string;
  /** WAL directory; null: memory storage (not durable). */
  readonly dataDirectory: string | null;
  readonly fsync: FsyncPolicy;
  readonly tickIntervalMs: number;
  readonly electionTimeoutTicks: number;
  readonly heartbeatTicks: number;
  readonly proposalTimeoutMs: number;
  readonly machine: MachineKind;
  readonly control: 'none' | 'ipc' | 'stdio';
}

function addressOption(name: string, value: string): PeerAddress {
  const match = /^(\[[^\]]+\]|[^:]+):(\d+)$/.exec(value.trim());
  if (match === null) throw new UsageError(`${name} expects HOST:PORT, got ${JSON.stringify(value)}`);
  return { host: (match[1] as string).replace(/^\[|\]$/g, ''), port: integerOption(`${name} port`, match[2] as string, 0, 65535) };
}

/** Checks the command line; every problem is a UsageError naming the option (exit code 2). */
export function parseNodeOptions(line: NodeCommandLine, environment: NodeJS.ProcessEnv = process.env): NodeOptions {
  if (line.id === undefined) throw new UsageError('--id is required');
  if (line.peers === undefined) throw new UsageError('--peers is required (every node, this one included: 1=HOST:PORT,2=HOST:PORT,...)');
  const id = integerOption('--id', line.id, 1, 2 ** 31);
  const peers = peersOption(line.peers);
  const own = peers.get(id);
  if (own === undefined) throw new UsageError(`--peers must list this node (${id}), got ${[...peers.keys()].join(',')}`);
  const electionTimeoutTicks = integerOption('--election-ticks', line.electionTicks ?? '20', 2, 100_000);
  const heartbeatTicks = integerOption('--heartbeat-ticks', line.heartbeatTicks ?? '2', 1, 100_000);
  if (heartbeatTicks >= electionTimeoutTicks) throw new UsageError(`--heartbeat-ticks ${heartbeatTicks} must be below --election-ticks ${electionTimeoutTicks}`);
  const secret = line.secret ?? environment['RAFTLAB_SECRET'] ?? developmentSecret;
  if (secret.length === 0) throw new UsageError('--secret is empty');
  const clusterId = line.clusterId ?? 'raftlab';
  if (clusterId.length === 0) throw new UsageError('--cluster-id is empty');
  if (line.dataDir !== undefined && line.dataDir.trim() === '') throw new UsageError('--data-dir is empty');
  return {
    id,
    peers,
    listen: line.listen === undefined ? own : addressOption('--listen', line.listen),
    transport: choiceOption('--transport', line.transport ?? 'tcp', ['tcp', 'ws'] as const),
    secret,
    clusterId,
    dataDirectory: line.dataDir ?? null,
    fsync: choiceOption('--fsync', line.fsync ?? 'always', fsyncPolicies),
    tickIntervalMs: integerOption('--tick-ms', line.tickMs ?? '10', 1, 60_000),
    electionTimeoutTicks,
    heartbeatTicks,
    proposalTimeoutMs: integerOption('--proposal-timeout-ms', line.proposalTimeoutMs ?? '5000', 1, 3_600_000),
    machine: choiceOption('--machine', line.machine ?? 'sum', machineKinds),
    control: choiceOption('--control', line.control ?? 'none', ['none', 'ipc', 'stdio'] as const),
  };
}

/** Opens the storage and transport and starts the node. */
export async function startNode(options: NodeOptions, logger: Logger): Promise<RunningNode> {
  let storage: Storage | undefined;
  if (options.dataDirectory !== null) storage = await WalStorage.open(options.dataDirectory, { fsyncPolicy: options.fsync, logger });
  const transportOptions = { id: options.id, clusterId: options.clusterId, secret: options.secret, listen: options.listen, peers: options.peers, logger };
  const transport = options.transport === 'ws' ? new WsTransport(transportOptions) : new TcpTransport(transportOptions);
  if (options.secret === developmentSecret) logger.warn({}, 'no --secret or RAFTLAB_SECRET given: using the development secret (loopback and tests only)');
  try {
    return await RunningNode.start({
      id: options.id,
      peers: [...options.peers.keys()],
      transport,
      ...(storage === undefined ? {} : { storage }),
      machine: options.machine,
      tickIntervalMs: options.tickIntervalMs,
      electionTimeoutTicks: options.electionTimeoutTicks,
      heartbeatTicks: options.heartbeatTicks,
      proposalTimeoutMs: options.proposalTimeoutMs,
      logger,
    });
  } catch (error) {
    await transport.stop();
    await storage?.close();
    throw error;
  }
}

/**
 * The life of a node process: start, serve the control channel, stop gracefully on a signal, a
 * stop request or the parent going away. Resolves with the exit code.
 */
export async function runNode(options: NodeOptions): Promise<number> {
  if (options.control === 'ipc' && typeof process.send !== 'function') {
    throw new UsageError('--control ipc needs a parent that spawned this process with an IPC channel (use --control stdio from a shell)');
  }
  const logger = createLogger({ node: options.id });
  const node = await startNode(options, logger);
  const listen = `${options.listen.host}:${options.listen.port}`;
  let control: ControlServer | null = null;
  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (why: string): void => {
      if (stopping) return;
      stopping = true;
      logger.info({ why }, 'stopping: handing leadership over if leader, then stopping the runtime');
      const deadline = setTimeout(() => {
        logger.error({ stopTimeoutMs }, 'graceful stop took too long: exiting');
        resolve(1);
      }, stopTimeoutMs);
      deadline.unref();
      node.stop().then(
        () => {
          clearTimeout(deadline);
          control?.send({ event: 'stopped', node: options.id });
          control?.close();
          resolve(0);
        },
        (error: unknown) => {
          clearTimeout(deadline);
          logger.error({ err: error }, 'stop failed');
          control?.close();
          resolve(1);
        },
      );
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
    node.runtime.once('error', (error) => {
      logger.error({ err: error }, 'the node failed');
      control?.close();
      resolve(1);
    });
    if (options.control !== 'none') {
      control = serveControl(
        node,
        options.control,
        () => setImmediate(() => stop('stop request')),
        () => stop('the parent went away'),
      );
    }
    const ready = { event: 'ready', node: options.id, pid: process.pid, transport: options.transport, listen } as const;
    if (options.control !== 'stdio') console.log(JSON.stringify(ready));
    control?.send(ready);
    node.runtime.on('role', ({ role, term, leaderId }) => control?.send({ event: 'role', node: options.id, role, term, leader: leaderId }));
  });
}

/** Registers `raftlab node`. */
export function register(program: Command): void {
  program
    .command('node')
    .description('run one Raft node (TCP or WebSocket), as on its own machine')
    .option('--id <n>', "this node's id (a key of --peers)")
    .option('--peers <list>', 'every node, this one included: 1=HOST:PORT,2=HOST:PORT,...')
    .option('--transport <kind>', 'tcp or ws', 'tcp')
    .option('--listen <host:port>', "where to listen (default: this node's --peers address)")
    .option('--secret <s>', 'cluster secret for the transport handshake (default $RAFTLAB_SECRET)')
    .option('--cluster-id <id>', 'cluster id checked by the handshake', 'raftlab')
    .option('--data-dir <dir>', 'keep the log in a durable WAL in this directory (default: in memory)')
    .option('--fsync <policy>', `WAL fsync policy: ${fsyncPolicies.join(', ')}`, 'always')
    .option('--tick-ms <ms>', 'milliseconds per Raft tick', '10')
    .option('--election-ticks <n>', 'election timeout in ticks', '20')
    .option('--heartbeat-ticks <n>', 'heartbeat interval in ticks', '2')
    .option('--proposal-timeout-ms <ms>', 'deadline of a proposal', '5000')
    .option('--machine <kind>', `state machine: ${machineKinds.join(', ')}`, 'sum')
    .option('--control <carrier>', 'control channel for a parent: none, ipc (Node IPC) or stdio (JSON lines)', 'none')
    .addHelpText(
      'after',
      `
Logs (pino JSON, LOG_LEVEL=debug for every role change) go to stderr; stdout gets one line
{"event":"ready",...} once the node serves (with --control stdio, stdout carries the control
replies instead). SIGINT or SIGTERM stops gracefully. Control requests (JSON):
  {"id":1,"op":"status"}  {"id":2,"op":"propose","commands":["5","-2"]}  {"id":3,"op":"partition","peers":[1]}
  {"id":4,"op":"heal"}    {"id":5,"op":"transfer","to":2}                {"id":6,"op":"stop"}
A propose with "client" (a random positive integer the caller keeps) and "seq" (the number of its
first command) is exactly-once: resending it after a timeout does not apply it twice.
  {"id":7,"op":"propose","commands":["5"],"client":81724,"seq":1}`,
    )
    .action(async (line: NodeCommandLine) => {
      const options = parseNodeOptions(line);
      const code = await runNode(options);
      process.exitCode = code;
      // Leave once the logger has flushed, even if a socket lingers.
      setTimeout(() => process.exit(code), 100).unref();
    });
}
