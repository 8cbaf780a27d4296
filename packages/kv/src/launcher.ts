/**
 * LocalCluster: N KV nodes as child processes on 127.0.0.1, for tests, the console and bench:http.
 * Each node is `node <serve-main.js> --id N --peers ... --http ... --admin ...` on ports picked free
 * at start and kept across restarts. The launcher waits for every node's /healthz and for a leader
 * (GET /v1/status), kills (SIGKILL, like a crash) and restarts nodes, and partitions or heals them at
 * the Raft transport level through the admin endpoints.
 *
 * Each node's stderr (its log) goes to `<directory>/node-N.log`; with `durable`, its WAL lives in
 * `<directory>/node-N/`. A temporary directory is made (and removed by stop()) unless one is given.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { NodeId } from '@raftlab/core';
import type { FsyncPolicy } from '@raftlab/storage';
import type { StatusResponse } from './api.js';
import { KvError } from './errors.js';

/** The node entry script built next to this module (dist/serve-main.js, also when running from src/). */
export const serveMainPath: string = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'dist', 'serve-main.js');

/** Options of LocalCluster.start. */
export interface LocalClusterOptions {
  /** Nodes (default 3). */
  readonly nodes?: number;
  readonly transport?: 'tcp' | 'ws';
  /** Keep each node's log in a WAL under the cluster directory (default true: restarts keep state). */
  readonly durable?: boolean;
  /** WAL fsync policy (default always). */
  readonly fsync?: FsyncPolicy;
  /** Where logs and WALs go (default: a new temporary directory, removed by stop()). */
  readonly directory?: string;
  /** Enable the admin routes (default true: the launcher partitions through them). */
  readonly admin?: boolean;
  /** More `kv serve` arguments for every node (e.g. ['--follower-mode', 'redirect']). */
  readonly serveArguments?: readonly string[];
  /** Arguments for the node binary before the script (e.g. ['--cpu-prof']), per node id. */
  readonly nodeArguments?: (id: NodeId) => readonly string[];
  /** The script to run (default serveMainPath). */
  readonly entry?: string;
  /** LOG_LEVEL of the nodes (default warn). */
  readonly logLevel?: string;
  /** Cluster secret (default: a random one per cluster). */
  readonly secret?: string;
  /** How long a node has to answer /healthz after spawning (default 15 s). */
  readonly startTimeoutMs?: number;
}

/** One node of a LocalCluster. */
export interface LocalNode {
  readonly id: NodeId;
  readonly raftPort: number;
  readonly httpPort: number;
  /** Base URL of its HTTP API. */
  readonly url: string;
  /** Its WAL directory (null when not durable). */
  readonly dataDirectory: string | null;
  readonly logPath: string;
  /** The running process, or null while killed. */
  process: ChildProcess | null;
}

/** Picks a free TCP port on 127.0.0.1 (released before use, so another binder could still take it, but not an outgoing connection). */
export async function freePort(): Promise<number> {
  // Ports are picked below Linux's ephemeral range (32768-60999): a port the kernel hands out for
  // listen(0) can be taken again as the source port of any outgoing connection before the node
  // binds it, which made cluster starts fail now and then under load.
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    if (await canListen(port)) return port;
  }
  throw new Error('no free port found in 20000-31999 after 200 attempts');
}

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** A small JSON request with a timeout; null on any failure (the node may be down). */
export function requestJson(url: string, options: { method?: string; body?: unknown; timeoutMs?: number } = {}): Promise<{ status: number; body: unknown } | null> {
  return new Promise((resolve) => {
    const payload = options.body === undefined ? undefined : JSON.stringify(options.body);
    const request = http.request(
      url,
      { method: options.method ?? 'GET', agent: false, timeout: options.timeoutMs ?? 2000, headers: payload === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('error', () => resolve(null));
        response.on('end', () => {
          try {
            resolve({ status: response.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) });
          } catch {
            resolve(null);
          }
        });
      },
    );
    request.on('timeout', () => request.destroy());
    request.on('error', () => resolve(null));
    request.end(payload);
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A cluster of KV node processes (see the file comment). */
export class LocalCluster {
  readonly nodes: readonly LocalNode[];
  readonly directory: string;
  private readonly options: LocalClusterOptions;
  private readonly ownsDirectory: boolean;
  private readonly secret: string;
  /** Peers each node drops Raft traffic with, as last set through the admin endpoint. */
  private readonly blocked = new Map<NodeId, Set<NodeId>>();
  private stopped = false;

  private constructor(options: LocalClusterOptions, nodes: LocalNode[], directory: string, ownsDirectory: boolean) {
    this.options = options;
    this.nodes = nodes;
    this.directory = directory;
    this.ownsDirectory = ownsDirectory;
    this.secret = options.secret ?? `local-${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2)}`;
  }

  /** Spawns every node and waits until all answer /healthz and one of them leads. */
  static async start(options: LocalClusterOptions = {}): Promise<LocalCluster> {
    const count = options.nodes ?? 3;
    if (!(Number.isSafeInteger(count) && count >= 1 && count <= 15)) throw new KvError('invalid-arguments', `a local cluster has 1 to 15 nodes, not ${count}`);
    const entry = options.entry ?? serveMainPath;
    if (!existsSync(entry)) throw new KvError('cluster-failed', `${entry} does not exist: build first (npx tsc -b tsconfig.build.json)`);
    const ownsDirectory = options.directory === undefined;
    const directory = options.directory ?? mkdtempSync(path.join(os.tmpdir(), 'raftlab-kv-'));
    const durable = options.durable ?? true;
    const nodes: LocalNode[] = [];
    for (let id = 1; id <= count; id++) {
      const raftPort = await freePort();
      const httpPort = await freePort();
      nodes.push({
        id,
        raftPort,
        httpPort,
        url: `http://127.0.0.1:${httpPort}`,
        dataDirectory: durable ? path.join(directory, `node-${id}`) : null,
        logPath: path.join(directory, `node-${id}.log`),
        process: null,
      });
    }
    const cluster = new LocalCluster(options, nodes, directory, ownsDirectory);
    try {
      await Promise.all(nodes.map((node) => cluster.spawnNode(node)));
      await cluster.waitForLeader();
    } catch (error) {
      await cluster.stop();
      throw error;
    }
    return cluster;
  }

  /** The nodes' HTTP base URLs, by id order. */
  get endpoints(): string[] {
    return this.nodes.map((node) => node.url);
  }

  /** The node with this id. */
  node(id: NodeId): LocalNode {
    const node = this.nodes.find((candidate) => candidate.id === id);
    if (node === undefined) throw new KvError('invalid-arguments', `no node ${id} (nodes are 1..${this.nodes.length})`);
    return node;
  }

  /** True while the node's process runs. */
  isRunning(id: NodeId): boolean {
    return this.node(id).process !== null;
  }

  /** GET /v1/status of a node; null when it does not answer. */
  async status(id: NodeId, timeoutMs = 1000): Promise<StatusResponse | null> {
    const answer = await requestJson(`${this.node(id).url}/v1/status`, { timeoutMs });
    return answer?.status === 200 ? (answer.body as StatusResponse) : null;
  }

  /** The leader's id as its running nodes report it (0: none agrees on one now). */
  async leader(): Promise<NodeId> {
    const statuses = await Promise.all(this.nodes.filter((node) => node.process !== null).map((node) => this.status(node.id)));
    const leaders = statuses.filter((status): status is StatusResponse => status !== null && status.role === 'leader');
    return leaders.length === 1 ? (leaders[0] as StatusResponse).id : 0;
  }

  /** Waits until exactly one running node says it leads; resolves with its id. */
  async waitForLeader(timeoutMs = 15_000): Promise<NodeId> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const leader = await this.leader();
      if (leader !== 0) return leader;
      if (Date.now() > deadline) throw new KvError('cluster-failed', `no leader within ${timeoutMs} ms (logs in ${this.directory})`);
      await sleep(50);
    }
  }

  /** Kills a node at once (SIGKILL: no shutdown, like a crash or power loss of the process); resolves once it exited. */
  async kill(id: NodeId, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const node = this.node(id);
    const child = node.process;
    if (child === null) return;
    const exited = new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) resolve();
      else child.once('exit', () => resolve());
    });
    child.kill(signal);
    await exited;
    node.process = null;
  }

  /** Stops a node gracefully (SIGTERM: drain, hand leadership over, stop); resolves once it exited. */
  stopNode(id: NodeId): Promise<void> {
    return this.kill(id, 'SIGTERM');
  }

  /** Starts a stopped or killed node again on its ports, with its WAL; resolves once it answers /healthz. */
  async restart(id: NodeId): Promise<void> {
    const node = this.node(id);
    if (node.process !== null) throw new KvError('invalid-arguments', `node ${id} is running`);
    await this.spawnNode(node);
    const blocked = this.blocked.get(id);
    if (blocked !== undefined && blocked.size > 0) await this.applyBlocked(id);
  }

  /**
   * Cuts a node off from `peers` (default: every other node) at the Raft transport level, both
   * directions (each side drops the other's messages). HTTP still reaches it.
   */
  async partition(id: NodeId, peers: readonly NodeId[] = this.nodes.map((node) => node.id).filter((other) => other !== id)): Promise<void> {
    for (const peer of peers) {
      if (peer === id) continue;
      this.blockedOf(id).add(peer);
      this.blockedOf(peer).add(id);
    }
    await Promise.all([id, ...peers].map((node) => this.applyBlocked(node)));
  }

  /** Ends every partition. */
  async heal(): Promise<void> {
    for (const set of this.blocked.values()) set.clear();
    await Promise.all(this.nodes.filter((node) => node.process !== null).map((node) => requestJson(`${node.url}/v1/admin/heal`, { method: 'POST' })));
  }

  /** Peers a node is cut off from, as the launcher set it. */
  partitionedFrom(id: NodeId): readonly NodeId[] {
    return [...this.blockedOf(id)];
  }

  /** Asks the leader to hand leadership to `target`. */
  /**
   * Hands leadership to `target` and resolves once it leads. A transfer aborts when the target does
   * not catch up within an election timeout (a node just restarted may still be replaying its log),
   * so it is retried until `timeoutMs` has passed; the last refusal is in the error.
   */
  async transferLeadership(target: NodeId, timeoutMs = 15_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last = 'no attempt';
    while (Date.now() < deadline) {
      const leader = await this.waitForLeader(Math.max(1, deadline - Date.now()));
      if (leader === target) return;
      const answer = await requestJson(`${this.node(leader).url}/v1/admin/transfer`, { method: 'POST', body: { to: target }, timeoutMs: 5000 });
      if (answer !== null && answer.status === 200 && (await this.leader()) === target) return;
      last = JSON.stringify(answer?.body ?? 'no answer');
      await sleep(100);
    }
    throw new KvError('cluster-failed', `transfer to ${target} failed within ${timeoutMs} ms: ${last}`);
  }

  /** The last lines of a node's log, for error reports. */
  logTail(id: NodeId, lines = 20): string {
    try {
      return readFileSync(this.node(id).logPath, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
    } catch {
      return '(no log)';
    }
  }

  /** Stops every node (SIGTERM, then SIGKILL after 5 s) and removes the temporary directory. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await Promise.all(
      this.nodes.map(async (node) => {
        const child = node.process;
        if (child === null) return;
        const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
        await this.kill(node.id, 'SIGTERM');
        clearTimeout(timer);
      }),
    );
    if (this.ownsDirectory) rmSync(this.directory, { recursive: true, force: true });
  }

  private blockedOf(id: NodeId): Set<NodeId> {
    let set = this.blocked.get(id);
    if (set === undefined) {
      set = new Set();
      this.blocked.set(id, set);
    }
    return set;
  }

  private async applyBlocked(id: NodeId): Promise<void> {
    if (this.node(id).process === null) return;
    const answer = await requestJson(`${this.node(id).url}/v1/admin/partition`, { method: 'POST', body: { peers: [...this.blockedOf(id)] } });
    if (answer === null || answer.status !== 200) throw new KvError('cluster-failed', `partition of node ${id} failed: ${JSON.stringify(answer?.body ?? 'no answer')}`);
  }

  private serveArguments(node: LocalNode): string[] {
    const options = this.options;
    const args = [
      '--id',
      String(node.id),
      '--peers',
      this.nodes.map((peer) => `${peer.id}=127.0.0.1:${peer.raftPort}`).join(','),
      '--http',
      `127.0.0.1:${node.httpPort}`,
      '--http-peers',
      this.nodes.map((peer) => `${peer.id}=${peer.url}`).join(','),
      '--transport',
      options.transport ?? 'tcp',
      '--secret',
      this.secret,
    ];
    if (node.dataDirectory !== null) args.push('--data-dir', node.dataDirectory, '--fsync', options.fsync ?? 'always');
    if (options.admin ?? true) args.push('--admin');
    args.push(...(options.serveArguments ?? []));
    return args;
  }

  private async spawnNode(node: LocalNode): Promise<void> {
    const entry = this.options.entry ?? serveMainPath;
    const log = openSync(node.logPath, 'a');
    let child: ChildProcess;
    try {
      child = spawn(process.execPath, [...(this.options.nodeArguments?.(node.id) ?? []), entry, ...this.serveArguments(node)], {
        // stdin is a pipe only so the node notices when this process dies (RAFTLAB_EXIT_WITH_PARENT).
        stdio: ['pipe', 'ignore', log],
        env: { ...process.env, LOG_LEVEL: this.options.logLevel ?? 'warn', RAFTLAB_EXIT_WITH_PARENT: '1' },
        cwd: this.directory,
      });
    } finally {
      closeSync(log);
    }
    node.process = child;
    let exited = false;
    child.once('exit', () => {
      exited = true;
      if (node.process === child) node.process = null;
    });
    const deadline = Date.now() + (this.options.startTimeoutMs ?? 15_000);
    for (;;) {
      if (exited) throw new KvError('cluster-failed', `node ${node.id} exited while starting:\n${this.logTail(node.id)}`);
      const health = await requestJson(`${node.url}/healthz`, { timeoutMs: 500 });
      if (health?.status === 200) return;
      if (Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new KvError('cluster-failed', `node ${node.id} did not answer /healthz in time:\n${this.logTail(node.id)}`);
      }
      await sleep(25);
    }
  }
}
