/**
 * A KV node as an operating-system process: `raftlab kv serve` (and the launcher's child processes)
 * parse their arguments here, open the storage (the durable WAL when --data-dir is given), start the
 * TCP or WebSocket transport and the node, and shut down gracefully on SIGTERM or SIGINT.
 *
 *   raftlab kv serve --id 1 --peers 1=127.0.0.1:7001,2=127.0.0.1:7002,3=127.0.0.1:7003 \
 *     --http 127.0.0.1:8081 --http-peers 1=http://127.0.0.1:8081,2=http://127.0.0.1:8082,3=http://127.0.0.1:8083 \
 *     --data-dir /var/lib/raftlab/1 --fsync always --secret "$RAFTLAB_SECRET"
 *
 * Once serving, the process prints one JSON line on stdout: {"event":"ready","id","http","raft","pid"}.
 */
import { parseArgs } from 'node:util';
import type { NodeId } from '@raftlab/core';
import { type Logger, createLogger } from '@raftlab/runtime';
import { type FsyncPolicy, type Storage, type StorageFileSystem, WalStorage, fsyncPolicies, inlineFileSystem, nodeFileSystem } from '@raftlab/storage';
import { type PeerAddress, TcpTransport, WsTransport } from '@raftlab/transport';
import { KvError } from './errors.js';
import { startKvNode } from './node.js';
import { type FollowerMode, type KvPlantedBug, type KvServer, kvPlantedBugs } from './server.js';

/** Options of one KV node process, as parsed from its arguments. */
export interface KvServeOptions {
  readonly id: NodeId;
  /** Raft transport addresses of every node, this one included (it listens on its own). */
  readonly peers: ReadonlyMap<NodeId, PeerAddress>;
  /** Where the HTTP server listens. */
  readonly http: PeerAddress;
  /** Every node's HTTP base URL (this one's included or derived from --http). */
  readonly httpPeers: ReadonlyMap<NodeId, string>;
  readonly transport: 'tcp' | 'ws';
  /** Shared secret of the transport handshake. */
  readonly secret: string;
  readonly clusterId: string;
  /** WAL directory; null: memory storage (not durable). */
  readonly dataDirectory: string | null;
  readonly fsync: FsyncPolicy;
  /** Where WAL writes and fdatasyncs run (see walIoModes). */
  readonly walIo: WalIoMode;
  /** WAL preallocation step in bytes (0: plain appends). */
  readonly walPreallocateBytes: number;
  readonly admin: boolean;
  readonly followerMode: FollowerMode;
  readonly followerReads: boolean;
  readonly tickIntervalMs: number;
  readonly electionTimeoutTicks: number;
  readonly heartbeatTicks: number;
  readonly proposalTimeoutMs: number;
  readonly readTimeoutMs: number;
  readonly leaseDriftMargin: number;
  /** Compact the log once this many applied entries are held (null: the runtime's default, 50,000). */
  readonly compactEntries: number | null;
  readonly plantedBug: KvPlantedBug | null;
}

/**
 * Where the WAL's I/O runs (see @raftlab/storage inlineFileSystem):
 *  - `threadpool`: node:fs callbacks, every write and fdatasync a round trip through libuv's pool;
 *  - `inline-writes`: writes on the event loop (a page-cache copy), fdatasync on the threadpool;
 *  - `inline`: both on the event loop, the shortest path to a durable acknowledgement, but the loop
 *    waits out every device flush;
 *  - `adaptive` (default): inline writes; fdatasync inline while following (a follower's flush is the
 *    critical path of every write and its loop has nothing else to do meanwhile) and while leading a
 *    light load; on the threadpool while leading more than adaptiveInlineRequestsMax requests, so
 *    that the leader parses and answers requests during its own flush (which runs in parallel with
 *    the followers' anyway) instead of sleeping through it.
 */
export const walIoModes = ['threadpool', 'inline-writes', 'inline', 'adaptive'] as const;

/** The default WAL I/O mode (see the measurements in docs/kv.md). */
export const defaultWalIo: WalIoMode = 'adaptive';

/** One of walIoModes. */
export type WalIoMode = (typeof walIoModes)[number];

/**
 * Requests in flight up to which an adaptive leader still flushes inline: with a few clients nothing
 * waits on the loop during the flush, and the threadpool round trip it saves (four context switches)
 * is CPU the followers and clients on a small machine can use.
 */
export const adaptiveInlineRequestsMax = 4;

/** The StorageFileSystem of a WAL I/O mode; `busyLeader` says whether the node leads a heavy load now (adaptive). */
export function walFileSystem(mode: WalIoMode, busyLeader: () => boolean = () => false): StorageFileSystem {
  switch (mode) {
    case 'threadpool':
      return nodeFileSystem;
    case 'inline-writes':
      return inlineFileSystem({ writes: true, syncs: false });
    case 'inline':
      return inlineFileSystem({ writes: true, syncs: true });
    case 'adaptive':
      return inlineFileSystem({ writes: true, syncs: () => !busyLeader() });
  }
}

/** The secret used when neither --secret nor RAFTLAB_SECRET is given: fine on loopback, never in production. */
export const developmentSecret = 'raftlab-development-secret-do-not-use-in-production';

/** Help text of `kv serve`. */
export const serveUsage = `Usage: raftlab kv serve --id N --peers ID=HOST:PORT,... --http HOST:PORT [options]

Runs one node of the KV service.

Options:
  --id N                       this node's id (must be a key of --peers)
  --peers LIST                 Raft addresses of every node: 1=127.0.0.1:7001,2=127.0.0.1:7002,...
  --http HOST:PORT             where the HTTP API listens
  --http-peers LIST            HTTP URLs of every node: 1=http://127.0.0.1:8081,... (for forwarding)
  --transport tcp|ws           Raft transport (default tcp)
  --secret S                   cluster secret for the transport handshake (default: $RAFTLAB_SECRET)
  --cluster-id ID              cluster id checked by the handshake (default raftlab)
  --data-dir DIR               keep the log in a durable WAL in DIR (default: memory, not durable)
  --fsync always|batch|none    WAL fsync policy (default always)
  --wal-io MODE                where WAL writes and fdatasyncs run: threadpool, inline-writes,
                               inline or adaptive (default ${defaultWalIo}: fdatasync inline on followers)
  --wal-preallocate-mb N       zero-fill the WAL segment N MiB ahead of its writes, so an fdatasync
                               commits no file size (default 4; 0: plain appends)
  --admin                      enable /v1/admin (partition, heal, transfer): for tests and drills
  --follower-mode forward|redirect  followers forward to the leader (default) or answer 307
  --follower-reads             followers serve linearizable reads themselves with ReadIndex
  --tick-ms N                  milliseconds per Raft tick (default 10)
  --election-ticks N           election timeout in ticks (default 20)
  --heartbeat-ticks N          heartbeat interval in ticks (default 2)
  --proposal-timeout-ms N      write deadline before 503 no-quorum (default 2000)
  --read-timeout-ms N          read deadline before 503 no-quorum (default 2000)
  --lease-drift-margin F       share of the election timeout lease reads give up to clock drift (default 0.2)
  --compact-entries N          snapshot and compact the log once N applied entries are held
                               (default 50000; also at 64 MiB of log)
  --planted-bug NAME           test only: ${kvPlantedBugs.join(', ')}
  -h, --help                   show this help
`;

function invalid(message: string): never {
  throw new KvError('invalid-arguments', message);
}

function integerArgument(name: string, value: string | undefined, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback;
  if (!/^\d+$/.test(value)) invalid(`${name} expects an integer, got ${JSON.stringify(value)}`);
  const parsed = Number(value);
  if (!Number.isSafeInteger(parsed) || parsed < min || parsed > max) invalid(`${name} must be between ${min} and ${max}, got ${value}`);
  return parsed;
}

function addressArgument(name: string, value: string): PeerAddress {
  const match = /^(\[[^\]]+\]|[^:]+):(\d+)$/.exec(value.trim());
  if (match === null) invalid(`${name} expects HOST:PORT, got ${JSON.stringify(value)}`);
  return { host: (match[1] as string).replace(/^\[|\]$/g, ''), port: integerArgument(`${name} port`, match[2], 0, 0, 65535) };
}

function listArgument<T>(name: string, value: string, parse: (part: string) => T): Map<NodeId, T> {
  const result = new Map<NodeId, T>();
  for (const part of value.split(',')) {
    const at = part.indexOf('=');
    if (at === -1) invalid(`${name} expects ID=VALUE[,ID=VALUE...], got ${JSON.stringify(part)}`);
    const id = integerArgument(`${name} id`, part.slice(0, at).trim(), 0, 1, 2 ** 31);
    if (result.has(id)) invalid(`${name} lists node ${id} twice`);
    result.set(id, parse(part.slice(at + 1)));
  }
  return result;
}

function urlArgument(name: string, value: string): string {
  let url: URL;
  try {
    url = new URL(value.trim());
  } catch {
    return invalid(`${name}: ${JSON.stringify(value)} is not a URL`);
  }
  if (url.protocol !== 'http:') invalid(`${name}: ${value} is not an http:// URL`);
  return `${url.protocol}//${url.host}`;
}

function choiceArgument<T extends string>(name: string, value: string | undefined, choices: readonly T[], fallback: T): T {
  if (value === undefined) return fallback;
  if (!(choices as readonly string[]).includes(value)) invalid(`${name} must be one of ${choices.join(', ')}, got ${JSON.stringify(value)}`);
  return value as T;
}

/**
 * Parses `kv serve` arguments (without the command words). Returns null for --help. Throws
 * KvError('invalid-arguments') naming the bad argument.
 */
export function parseServeArguments(commandLine: readonly string[], environment: NodeJS.ProcessEnv = process.env): KvServeOptions | null {
  let parsed: ReturnType<typeof parseServeCommandLine>;
  try {
    parsed = parseServeCommandLine(commandLine);
  } catch (error) {
    return invalid(error instanceof Error ? error.message : String(error));
  }
  const values = parsed.values;
  if (values.help === true) return null;
  if (parsed.positionals.length > 0) invalid(`unexpected argument ${JSON.stringify(parsed.positionals[0])}`);
  if (values.id === undefined) invalid('--id is required');
  if (values.peers === undefined) invalid('--peers is required');
  if (values.http === undefined) invalid('--http is required');
  const id = integerArgument('--id', values.id, 0, 1, 2 ** 31);
  const peers = listArgument('--peers', values.peers, (part) => addressArgument('--peers', part));
  if (!peers.has(id)) invalid(`--peers must list this node (${id})`);
  const http = addressArgument('--http', values.http);
  const httpPeers = values['http-peers'] === undefined ? new Map<NodeId, string>() : listArgument('--http-peers', values['http-peers'], (part) => urlArgument('--http-peers', part));
  for (const peer of httpPeers.keys()) if (!peers.has(peer)) invalid(`--http-peers names node ${peer}, which --peers does not list`);
  if (!httpPeers.has(id)) httpPeers.set(id, `http://${http.host.includes(':') ? `[${http.host}]` : http.host}:${http.port}`);
  const margin = values['lease-drift-margin'] === undefined ? 0.2 : Number(values['lease-drift-margin']);
  if (!(margin >= 0 && margin < 1)) invalid(`--lease-drift-margin must be a number in [0, 1), got ${JSON.stringify(values['lease-drift-margin'])}`);
  const electionTimeoutTicks = integerArgument('--election-ticks', values['election-ticks'], 20, 2, 100_000);
  const heartbeatTicks = integerArgument('--heartbeat-ticks', values['heartbeat-ticks'], 2, 1, 100_000);
  if (heartbeatTicks >= electionTimeoutTicks) invalid(`--heartbeat-ticks ${heartbeatTicks} must be below --election-ticks ${electionTimeoutTicks}`);
  const secret = values.secret ?? environment['RAFTLAB_SECRET'] ?? developmentSecret;
  if (secret.length === 0) invalid('--secret is empty');
  return {
    id,
    peers,
    http,
    httpPeers,
    transport: choiceArgument('--transport', values.transport, ['tcp', 'ws'] as const, 'tcp'),
    secret,
    clusterId: values['cluster-id'] ?? 'raftlab',
    dataDirectory: values['data-dir'] ?? null,
    fsync: choiceArgument('--fsync', values.fsync, fsyncPolicies, 'always'),
    walIo: choiceArgument('--wal-io', values['wal-io'], walIoModes, defaultWalIo),
    walPreallocateBytes: integerArgument('--wal-preallocate-mb', values['wal-preallocate-mb'], 4, 0, 1024) * 1024 * 1024,
    admin: values.admin === true,
    followerMode: choiceArgument('--follower-mode', values['follower-mode'], ['forward', 'redirect'] as const, 'forward'),
    followerReads: values['follower-reads'] === true,
    tickIntervalMs: integerArgument('--tick-ms', values['tick-ms'], 10, 1, 60_000),
    electionTimeoutTicks,
    heartbeatTicks,
    proposalTimeoutMs: integerArgument('--proposal-timeout-ms', values['proposal-timeout-ms'], 2000, 1, 3_600_000),
    readTimeoutMs: integerArgument('--read-timeout-ms', values['read-timeout-ms'], 2000, 1, 3_600_000),
    leaseDriftMargin: margin,
    compactEntries: values['compact-entries'] === undefined ? null : integerArgument('--compact-entries', values['compact-entries'], 50_000, 1, 1_000_000_000),
    plantedBug: values['planted-bug'] === undefined ? null : choiceArgument('--planted-bug', values['planted-bug'], kvPlantedBugs, kvPlantedBugs[0] as KvPlantedBug),
  };
}

function parseServeCommandLine(commandLine: readonly string[]) {
  return parseArgs({
    args: [...commandLine],
    strict: true,
    allowPositionals: true,
    options: {
      id: { type: 'string' },
      peers: { type: 'string' },
      http: { type: 'string' },
      'http-peers': { type: 'string' },
      transport: { type: 'string' },
      secret: { type: 'string' },
      'cluster-id': { type: 'string' },
      'data-dir': { type: 'string' },
      fsync: { type: 'string' },
      'wal-io': { type: 'string' },
      'wal-preallocate-mb': { type: 'string' },
      admin: { type: 'boolean' },
      'follower-mode': { type: 'string' },
      'follower-reads': { type: 'boolean' },
      'tick-ms': { type: 'string' },
      'election-ticks': { type: 'string' },
      'heartbeat-ticks': { type: 'string' },
      'proposal-timeout-ms': { type: 'string' },
      'read-timeout-ms': { type: 'string' },
      'lease-drift-margin': { type: 'string' },
      'compact-entries': { type: 'string' },
      'planted-bug': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
}

/** A node running in this process. */
export interface ServingNode {
  readonly server: KvServer;
  /** Graceful shutdown (drain, transfer leadership, stop): see KvServer.shutdown. */
  shutdown(): Promise<void>;
}

/** Starts a node with parsed options: storage, transport, runtime, HTTP. */
export async function serve(options: KvServeOptions, logger: Logger = createLogger({ node: options.id })): Promise<ServingNode> {
  let storage: Storage | undefined;
  // The WAL is opened before the node exists; the adaptive I/O mode asks the node's role and load at each fsync.
  let serving: KvServer | null = null;
  const busyLeader = (): boolean => serving !== null && serving.service.runtime.node.role === 'leader' && serving.requestsInFlight > adaptiveInlineRequestsMax;
  if (options.dataDirectory !== null) {
    storage = await WalStorage.open(options.dataDirectory, {
      fsyncPolicy: options.fsync,
      fileSystem: walFileSystem(options.walIo, busyLeader),
      preallocateBytes: options.walPreallocateBytes,
      logger,
    });
  }
  const transportOptions = { id: options.id, clusterId: options.clusterId, secret: options.secret, listen: options.peers.get(options.id) as PeerAddress, peers: options.peers, logger };
  const transport = options.transport === 'ws' ? new WsTransport(transportOptions) : new TcpTransport(transportOptions);
  if (options.secret === developmentSecret) logger.warn({}, 'no --secret or RAFTLAB_SECRET given: using the development secret (loopback and tests only)');
  if (options.plantedBug !== null) logger.warn({ plantedBug: options.plantedBug }, 'a bug is planted on purpose: this node is for checker tests only');
  const server = await startKvNode({
    id: options.id,
    peers: [...options.peers.keys()],
    transport,
    ...(storage === undefined ? {} : { storage }),
    raft: { electionTimeoutTicks: options.electionTimeoutTicks, heartbeatTicks: options.heartbeatTicks },
    tickIntervalMs: options.tickIntervalMs,
    ...(options.compactEntries === null ? {} : { compaction: { entriesMin: options.compactEntries, bytesMin: 64 * 1024 * 1024 } }),
    proposalTimeoutMs: options.proposalTimeoutMs,
    readTimeoutMs: options.readTimeoutMs,
    leaseDriftMargin: options.leaseDriftMargin,
    logger,
    http: {
      host: options.http.host,
      port: options.http.port,
      httpPeers: options.httpPeers,
      followerMode: options.followerMode,
      followerReads: options.followerReads,
      admin: options.admin,
      plantedBug: options.plantedBug,
    },
  });
  serving = server;
  return { server, shutdown: () => server.shutdown() };
}

/**
 * The whole life of a node process: parse, serve, print the ready line, shut down gracefully on
 * SIGTERM/SIGINT (a second signal exits at once). Resolves with the exit code once stopped.
 */
export async function runServeProcess(commandLine: readonly string[], output: { log(line: string): void; error(line: string): void } = console): Promise<number> {
  let options: KvServeOptions | null;
  try {
    options = parseServeArguments(commandLine);
  } catch (error) {
    output.error(`raftlab kv serve: ${error instanceof Error ? error.message : String(error)}\n(run with --help for usage)`);
    return 2;
  }
  if (options === null) {
    output.log(serveUsage);
    return 0;
  }
  const logger = createLogger({ node: options.id });
  const node = await serve(options, logger);
  output.log(JSON.stringify({ event: 'ready', id: options.id, http: node.server.url, raft: `${options.peers.get(options.id)?.host}:${options.peers.get(options.id)?.port}`, pid: process.pid }));
  return new Promise<number>((resolve) => {
    let stopping = false;
    const onSignal = (signal: NodeJS.Signals): void => {
      if (stopping) {
        process.exit(130);
      }
      stopping = true;
      logger.info({ signal }, 'shutting down: draining requests, transferring leadership');
      node.shutdown().then(
        () => resolve(0),
        (error: unknown) => {
          logger.error({ err: error }, 'shutdown failed');
          resolve(1);
        },
      );
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
    if (process.env['RAFTLAB_EXIT_WITH_PARENT'] === '1') {
      // A launcher's child: stdin is a pipe from the launcher, so it closes when the launcher dies,
      // however it dies; shut down then instead of running on as an orphan.
      process.stdin.once('close', () => onSignal('SIGTERM'));
      process.stdin.once('end', () => onSignal('SIGTERM'));
      process.stdin.resume();
    }
    node.server.service.runtime.once('error', () => resolve(1));
  });
}
