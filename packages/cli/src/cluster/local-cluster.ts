/**
 * A local cluster behind one interface, whatever the transport:
 *
 *  - tcp, ws: one `raftlab node --control ipc` child process per node on 127.0.0.1, each node's log
 *    (stderr) in `<logDirectory>/node-N.log`; kill is SIGKILL (a crash), stop is SIGTERM (graceful)
 *    with SIGKILL after a deadline; children also stop by themselves when this process dies (their
 *    IPC channel disconnects), so none is left orphaned;
 *  - memory: every node in this process over one MemoryNetwork; kill stops a runtime without
 *    handing leadership over, and restart builds a new one on the same (kept) storage.
 *
 * `raftlab cluster up` shows it; the conformance, fuzz and CLI tests drive it. Partitions drop Raft
 * traffic at the runtime's transport edge, both ways, and survive a restart of the node.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, createWriteStream, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { NodeId } from '@raftlab/core';
import { freePort } from '@raftlab/kv';
import type { Logger } from '@raftlab/runtime';
import { MemoryStorage, type Storage, WalStorage } from '@raftlab/storage';
import { MemoryNetwork, MemoryTransport, type PeerAddress } from '@raftlab/transport';
import { type ControlEvent, type NodeReport, type ProposeResult, controlErrorOf } from './control.js';
import { ControlRequestError, NodeChannel } from './node-channel.js';
import { type MachineKind, RunningNode } from './running-node.js';

/** The CLI's entry script, built in dist/ (also when this module runs from src/ under the tests). */
export const cliMainPath: string = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'dist', 'main.js');

/** Transports a local cluster runs on. */
export const clusterTransports = ['memory', 'tcp', 'ws'] as const;
/** One of clusterTransports. */
export type ClusterTransport = (typeof clusterTransports)[number];

/** Options of startCluster. */
export interface ClusterOptions {
  /** Nodes, 1 to clusterNodesMax. */
  readonly nodes: number;
  readonly transport: ClusterTransport;
  /** tcp/ws: node N listens on basePort + N - 1 (default: a free port each). */
  readonly basePort?: number;
  /** tcp/ws: the cluster secret (default: a random one). */
  readonly secret?: string;
  readonly clusterId?: string;
  /** Keep each node's log in a WAL under `<dataDirectory>/node-N` (default: memory storage). */
  readonly dataDirectory?: string;
  /** WAL fsync policy (default always). */
  readonly fsync?: 'always' | 'batch' | 'none';
  /** Where node logs go (default: a temporary directory, removed by stop()). */
  readonly logDirectory?: string;
  readonly tickMs?: number;
  readonly electionTicks?: number;
  readonly proposalTimeoutMs?: number;
  readonly machine?: MachineKind;
  /** LOG_LEVEL of the nodes (default info). */
  readonly logLevel?: string;
  /** How long a node process has to report ready (default 15 s). */
  readonly startTimeoutMs?: number;
}

/** Largest local cluster. */
export const clusterNodesMax = 15;

/** A running local cluster (see the file comment). */
export interface LocalCluster {
  readonly transport: ClusterTransport;
  readonly ids: readonly NodeId[];
  /** Where the node logs are. */
  readonly logDirectory: string;
  /** True while the node runs (not killed or stopped). */
  isRunning(id: NodeId): boolean;
  /** The node's Raft address (null for memory). */
  address(id: NodeId): PeerAddress | null;
  /** Process ids of the running node processes (empty for memory). */
  pids(): number[];
  /** The node's status; null when it is down or does not answer in time. */
  status(id: NodeId, timeoutMs?: number): Promise<NodeReport | null>;
  /** Every node's status, in id order. */
  statuses(timeoutMs?: number): Promise<(NodeReport | null)[]>;
  /** Proposes commands at node `id`; rejects with a ControlRequestError (not-leader, timeout...). */
  propose(id: NodeId, commands: readonly string[], timeoutMs?: number): Promise<ProposeResult>;
  /** Cuts `id` off from `peers` (default: all others), both directions. */
  partition(id: NodeId, peers?: readonly NodeId[]): Promise<void>;
  /** Ends every partition. */
  heal(): Promise<void>;
  /** Crashes a node: SIGKILL for processes, a stop without leadership transfer in memory. */
  kill(id: NodeId): Promise<void>;
  /** Stops a node gracefully (SIGTERM; in memory, the same stop): a leader hands leadership over first. */
  stopNode(id: NodeId): Promise<void>;
  /** Starts a killed or stopped node again, on its storage (a process without --data-dir starts empty). */
  restart(id: NodeId): Promise<void>;
  /** The node's log lines (pino JSON; memory: its lines of the shared cluster.log). */
  logText(id: NodeId): string;
  /** Stops every node gracefully (forcefully after a deadline). Idempotent. */
  stop(): Promise<void>;
  /** Kills every node at once (a second Ctrl-C). */
  forceStop(): Promise<void>;
}

/** Picks a free TCP port on 127.0.0.1 (the KV launcher's; released before use, so a race is possible but rare). */
export { freePort };

/** Starts a local cluster and resolves once every node serves (not necessarily with a leader yet). */
export async function startCluster(options: ClusterOptions): Promise<LocalCluster> {
  if (!(Number.isSafeInteger(options.nodes) && options.nodes >= 1 && options.nodes <= clusterNodesMax)) {
    throw new RangeError(`a local cluster has 1 to ${clusterNodesMax} nodes, not ${options.nodes}`);
  }
  const cluster = options.transport === 'memory' ? new MemoryCluster(options) : new ProcessCluster(options);
  try {
    await cluster.startAll();
  } catch (error) {
    await cluster.forceStop();
    throw error;
  }
  return cluster;
}

/** Polls until exactly one running node leads and every running node follows it; resolves with its report. */
export async function waitForLeader(cluster: LocalCluster, timeoutMs = 15_000, among: readonly NodeId[] = cluster.ids): Promise<NodeReport> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const reports = (await Promise.all(among.filter((id) => cluster.isRunning(id)).map((id) => cluster.status(id)))).filter((report): report is NodeReport => report !== null);
    const leaders = reports.filter((report) => report.role === 'leader');
    const leader = leaders.length === 1 ? (leaders[0] as NodeReport) : null;
    if (leader !== null && reports.every((report) => report.leader === leader.id && report.term === leader.term)) return leader;
    if (Date.now() > deadline) throw new Error(`no single leader within ${timeoutMs} ms: ${JSON.stringify(reports.map(({ id, role, term, leader }) => ({ id, role, term, leader })))}`);
    await sleep(25);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

abstract class ClusterBase {
  readonly ids: readonly NodeId[];
  readonly logDirectory: string;
  protected readonly ownsLogDirectory: boolean;
  /** Peers each node drops traffic with. */
  protected readonly blocked = new Map<NodeId, Set<NodeId>>();
  protected stopped = false;

  constructor(protected readonly options: ClusterOptions) {
    this.ids = Array.from({ length: options.nodes }, (_, index) => index + 1);
    this.ownsLogDirectory = options.logDirectory === undefined;
    this.logDirectory = options.logDirectory ?? mkdtempSync(path.join(os.tmpdir(), 'raftlab-cluster-'));
    mkdirSync(this.logDirectory, { recursive: true });
    for (const id of this.ids) this.blocked.set(id, new Set());
  }

  abstract isRunning(id: NodeId): boolean;
  abstract status(id: NodeId, timeoutMs?: number): Promise<NodeReport | null>;
  protected abstract applyBlocked(id: NodeId): Promise<void>;

  statuses(timeoutMs = 1000): Promise<(NodeReport | null)[]> {
    return Promise.all(this.ids.map((id) => this.status(id, timeoutMs)));
  }

  async partition(id: NodeId, peers: readonly NodeId[] = this.ids.filter((other) => other !== id)): Promise<void> {
    this.checkId(id);
    for (const peer of peers) {
      if (peer === id) continue;
      this.checkId(peer);
      this.blocked.get(id)?.add(peer);
      this.blocked.get(peer)?.add(id);
    }
    await Promise.all([id, ...peers].map((node) => this.applyBlocked(node)));
  }

  async heal(): Promise<void> {
    for (const set of this.blocked.values()) set.clear();
    await Promise.all(this.ids.map((id) => this.applyBlocked(id)));
  }

  protected checkId(id: NodeId): void {
    if (!this.ids.includes(id)) throw new RangeError(`no node ${id} (nodes are 1..${this.ids.length})`);
  }

  protected removeLogDirectory(): void {
    if (this.ownsLogDirectory) rmSync(this.logDirectory, { recursive: true, force: true });
  }
}

/** A node process of a ProcessCluster. */
interface NodeProcess {
  readonly id: NodeId;
  readonly port: number;
  child: ChildProcess | null;
  channel: NodeChannel | null;
  exited: Promise<void>;
}

/** tcp and ws clusters: one `raftlab node` child per node. */
class ProcessCluster extends ClusterBase implements LocalCluster {
  readonly transport: 'tcp' | 'ws';
  private readonly nodes = new Map<NodeId, NodeProcess>();
  private readonly secret: string;

  constructor(options: ClusterOptions) {
    super(options);
    this.transport = options.transport === 'ws' ? 'ws' : 'tcp';
    this.secret = options.secret ?? `local-${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2)}`;
  }

  async startAll(): Promise<void> {
    for (const id of this.ids) {
      const port = this.options.basePort === undefined ? await freePort() : this.options.basePort + id - 1;
      if (port > 65535) throw new RangeError(`--base-port ${this.options.basePort} leaves node ${id} without a port`);
      this.nodes.set(id, { id, port, child: null, channel: null, exited: Promise.resolve() });
    }
    await Promise.all(this.ids.map((id) => this.spawnNode(this.node(id))));
  }

  isRunning(id: NodeId): boolean {
    return this.node(id).child !== null;
  }

  address(id: NodeId): PeerAddress {
    return { host: '127.0.0.1', port: this.node(id).port };
  }

  pids(): number[] {
    return [...this.nodes.values()].flatMap((node) => (node.child?.pid === undefined ? [] : [node.child.pid]));
  }

  async status(id: NodeId, timeoutMs = 1000): Promise<NodeReport | null> {
    const channel = this.node(id).channel;
    if (channel === null) return null;
    try {
      return (await channel.request({ op: 'status' }, timeoutMs)) as NodeReport;
    } catch {
      return null;
    }
  }

  async propose(id: NodeId, commands: readonly string[], timeoutMs = 30_000): Promise<ProposeResult> {
    const channel = this.node(id).channel;
    if (channel === null) throw new ControlRequestError('unreachable', `node ${id} is not running`);
    return (await channel.request({ op: 'propose', commands }, timeoutMs)) as ProposeResult;
  }

  async kill(id: NodeId): Promise<void> {
    await this.signal(this.node(id), 'SIGKILL');
  }

  async stopNode(id: NodeId): Promise<void> {
    await this.signal(this.node(id), 'SIGTERM');
  }

  async restart(id: NodeId): Promise<void> {
    const node = this.node(id);
    if (node.child !== null) throw new Error(`node ${id} is running`);
    await this.spawnNode(node);
    if ((this.blocked.get(id)?.size ?? 0) > 0) await this.applyBlocked(id);
  }

  logText(id: NodeId): string {
    try {
      return readFileSync(this.logPath(id), 'utf8');
    } catch {
      return '';
    }
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await Promise.all(
      [...this.nodes.values()].map(async (node) => {
        const child = node.child;
        if (child === null) return;
        // The node's own stop is bounded at 8 s; past 10 s it is hung: kill it.
        const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
        await this.signal(node, 'SIGTERM');
        clearTimeout(timer);
      }),
    );
    this.removeLogDirectory();
  }

  async forceStop(): Promise<void> {
    this.stopped = true;
    await Promise.all([...this.nodes.values()].map((node) => this.signal(node, 'SIGKILL')));
    this.removeLogDirectory();
  }

  protected async applyBlocked(id: NodeId): Promise<void> {
    const channel = this.node(id).channel;
    if (channel === null) return;
    const peers = [...(this.blocked.get(id) ?? [])];
    await channel.request(peers.length === 0 ? { op: 'heal' } : { op: 'partition', peers });
  }

  private node(id: NodeId): NodeProcess {
    const node = this.nodes.get(id);
    if (node === undefined) throw new RangeError(`no node ${id} (nodes are 1..${this.ids.length})`);
    return node;
  }

  private logPath(id: NodeId): string {
    return path.join(this.logDirectory, `node-${id}.log`);
  }

  private async signal(node: NodeProcess, signal: NodeJS.Signals): Promise<void> {
    const child = node.child;
    if (child === null) return;
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    await node.exited;
  }

  private nodeArguments(node: NodeProcess): string[] {
    const options = this.options;
    const args = [
      cliMainPath,
      'node',
      '--id',
      String(node.id),
      '--peers',
      this.ids.map((id) => `${id}=127.0.0.1:${this.node(id).port}`).join(','),
      '--transport',
      this.transport,
      '--secret',
      this.secret,
      '--control',
      'ipc',
    ];
    if (options.clusterId !== undefined) args.push('--cluster-id', options.clusterId);
    if (options.dataDirectory !== undefined) args.push('--data-dir', path.join(options.dataDirectory, `node-${node.id}`), '--fsync', options.fsync ?? 'always');
    if (options.tickMs !== undefined) args.push('--tick-ms', String(options.tickMs));
    if (options.electionTicks !== undefined) args.push('--election-ticks', String(options.electionTicks));
    if (options.proposalTimeoutMs !== undefined) args.push('--proposal-timeout-ms', String(options.proposalTimeoutMs));
    if (options.machine !== undefined) args.push('--machine', options.machine);
    return args;
  }

  /** Spawns the node and resolves once it reports ready; rejects (with its log's tail) if it exits first. */
  private async spawnNode(node: NodeProcess): Promise<void> {
    const log = openSync(this.logPath(node.id), 'a');
    let child: ChildProcess;
    try {
      child = spawn(process.execPath, this.nodeArguments(node), {
        stdio: ['ignore', 'ignore', log, 'ipc'],
        env: { ...process.env, LOG_LEVEL: this.options.logLevel ?? 'info' },
      });
    } finally {
      closeSync(log);
    }
    let onReady: () => void = () => undefined;
    const ready = new Promise<void>((resolve) => (onReady = resolve));
    const channel = new NodeChannel(child, (event: ControlEvent) => {
      if (event.event === 'ready') onReady();
    });
    node.child = child;
    node.channel = channel;
    node.exited = new Promise<void>((resolve) => {
      child.once('exit', () => {
        if (node.child === child) {
          node.child = null;
          node.channel = null;
        }
        resolve();
      });
    });
    const startTimeoutMs = this.options.startTimeoutMs ?? 15_000;
    let timer: NodeJS.Timeout | undefined;
    const outcome = await Promise.race([
      ready.then(() => 'ready' as const),
      node.exited.then(() => 'exited' as const),
      new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), startTimeoutMs))),
    ]);
    clearTimeout(timer);
    if (outcome === 'ready') return;
    if (outcome === 'timeout') await this.signal(node, 'SIGKILL');
    const tail = this.logText(node.id).trimEnd().split('\n').slice(-10).join('\n');
    throw new Error(`node ${node.id} ${outcome === 'timeout' ? `did not start within ${startTimeoutMs} ms` : 'exited while starting'} (log ${this.logPath(node.id)}):\n${tail}`);
  }
}

/** A Logger writing pino-like JSON lines to a file, at LOG_LEVEL (the memory cluster's nodes share it). */
function fileLogger(file: string, levelName: string): { logger: Logger; close(): void } {
  const levels = { debug: 20, info: 30, warn: 40, error: 50 } as const;
  const threshold = levelName === 'silent' ? Infinity : (levels[levelName as keyof typeof levels] ?? 30);
  const stream = createWriteStream(file, { flags: 'a' });
  const make = (bindings: object): Logger => {
    const at =
      (level: keyof typeof levels) =>
      (object: object, message?: string): void => {
        if (levels[level] < threshold || stream.destroyed) return;
        stream.write(`${JSON.stringify({ level: levels[level], time: Date.now(), ...bindings, ...object, msg: message ?? '' }, (_key, value: unknown) => (value instanceof Error ? value.message : value))}\n`);
      };
    return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error'), child: (more) => make({ ...bindings, ...more }) };
  };
  return { logger: make({ pid: process.pid }), close: () => stream.end() };
}

/** A storage that outlives its node: a restart in the same process finds what the crashed node saved. */
function keptAcrossRestarts(storage: Storage): Storage {
  return {
    load: () => storage.load(),
    save: (ready) => storage.save(ready),
    saveSnapshot: (snapshot) => storage.saveSnapshot(snapshot),
    stats: () => storage.stats(),
    close: async () => undefined,
  };
}

/** Every node in this process over one MemoryNetwork. */
class MemoryCluster extends ClusterBase implements LocalCluster {
  readonly transport = 'memory' as const;
  private readonly network = new MemoryNetwork();
  private readonly running = new Map<NodeId, RunningNode>();
  private readonly storages = new Map<NodeId, Storage>();
  private readonly log: { logger: Logger; close(): void };

  constructor(options: ClusterOptions) {
    super(options);
    this.log = fileLogger(path.join(this.logDirectory, 'cluster.log'), options.logLevel ?? process.env['LOG_LEVEL'] ?? 'info');
  }

  async startAll(): Promise<void> {
    for (const id of this.ids) {
      const storage = this.options.dataDirectory === undefined ? new MemoryStorage() : await WalStorage.open(path.join(this.options.dataDirectory, `node-${id}`), { fsyncPolicy: this.options.fsync ?? 'always' });
      this.storages.set(id, storage);
    }
    await Promise.all(this.ids.map((id) => this.startNode(id)));
  }

  isRunning(id: NodeId): boolean {
    return this.running.has(id);
  }

  address(): null {
    return null;
  }

  pids(): number[] {
    return [];
  }

  async status(id: NodeId): Promise<NodeReport | null> {
    this.checkId(id);
    return this.running.get(id)?.report() ?? null;
  }

  async propose(id: NodeId, commands: readonly string[]): Promise<ProposeResult> {
    const node = this.running.get(id);
    if (node === undefined) throw new ControlRequestError('unreachable', `node ${id} is not running`);
    try {
      return await node.propose(commands);
    } catch (error) {
      const failure = controlErrorOf(error);
      throw new ControlRequestError(failure.code, failure.message, failure.leader);
    }
  }

  async kill(id: NodeId): Promise<void> {
    const node = this.running.get(id);
    if (node === undefined) return;
    this.running.delete(id);
    await node.crash();
  }

  async stopNode(id: NodeId): Promise<void> {
    const node = this.running.get(id);
    if (node === undefined) return;
    await node.stop();
    this.running.delete(id);
  }

  async restart(id: NodeId): Promise<void> {
    if (this.running.has(id)) throw new Error(`node ${id} is running`);
    await this.startNode(id);
    await this.applyBlocked(id);
  }

  logText(id: NodeId): string {
    let text: string;
    try {
      text = readFileSync(path.join(this.logDirectory, 'cluster.log'), 'utf8');
    } catch {
      return '';
    }
    return text
      .split('\n')
      .filter((line) => line.includes(`"node":${id},`) || line.endsWith(`"node":${id}}`))
      .join('\n');
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    const nodes = [...this.running.values()];
    this.running.clear();
    await Promise.all(nodes.map((node) => node.stop()));
    await Promise.all([...this.storages.values()].map((storage) => storage.close()));
    this.log.close();
    this.removeLogDirectory();
  }

  async forceStop(): Promise<void> {
    this.stopped = true;
    const nodes = [...this.running.values()];
    this.running.clear();
    await Promise.all(nodes.map((node) => node.crash()));
    await Promise.all([...this.storages.values()].map((storage) => storage.close().catch(() => undefined)));
    this.log.close();
    this.removeLogDirectory();
  }

  protected async applyBlocked(id: NodeId): Promise<void> {
    const node = this.running.get(id);
    if (node === undefined) return;
    node.partition([...(this.blocked.get(id) ?? [])]);
  }

  private async startNode(id: NodeId): Promise<void> {
    const options = this.options;
    const logger = this.log.logger.child({ node: id });
    const node = await RunningNode.start({
      id,
      peers: this.ids,
      transport: new MemoryTransport(this.network, id, { logger }),
      storage: keptAcrossRestarts(this.storages.get(id) as Storage),
      logger,
      ...(options.machine === undefined ? {} : { machine: options.machine }),
      ...(options.tickMs === undefined ? {} : { tickIntervalMs: options.tickMs }),
      ...(options.electionTicks === undefined ? {} : { electionTimeoutTicks: options.electionTicks }),
      ...(options.proposalTimeoutMs === undefined ? {} : { proposalTimeoutMs: options.proposalTimeoutMs }),
    });
    this.running.set(id, node);
  }
}
