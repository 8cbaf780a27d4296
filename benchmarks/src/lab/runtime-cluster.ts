/**
 * RaftRuntime clusters in one process for the bench lab: N runtimes with in-memory storage and the
 * counter state machine, over the memory transport (messages handed over as views, stepped at once
 * or copied by the runtime when it must queue them) or over real TCP / WebSocket sockets on
 * 127.0.0.1 (ports picked by the OS).
 *
 * One process means the nodes share one event loop and the machine's cores with each other: the
 * figures show protocol and transport cost, not a deployment (benchmarks/src/cluster runs one node
 * per process for that).
 *
 * Commit timing: the leader's commit index moves when it steps an appendResponse, inside the
 * transport's message handler, before the Ready cycle that applies the entries. Each transport is
 * wrapped so that after every inbound message the leader's commit index is compared with the
 * pending targets: that is the propose -> committed time. propose -> applied is when the
 * runtime resolves proposeBatch (the leader applied the whole batch).
 */
import { type NodeId, type RemoteMessage, assert } from '@raftlab/core';
import { CounterMachine, RaftRuntime, type RuntimeTransport } from '@raftlab/runtime';
import { MemoryNetwork, MemoryTransport, type SocketTransport, TcpTransport, type TransportStats, WsTransport } from '@raftlab/transport';

import type { LabTransport } from './options.js';

/** Options of a lab cluster. */
export interface RuntimeClusterOptions {
  readonly transport: LabTransport;
  readonly nodes: number;
  /** Seed base of the nodes' election PRNGs (node i gets seed + i). */
  readonly seed: number;
  /** false: never compact (recovery and heap measurements keep the whole log). */
  readonly compaction?: false;
  readonly tickIntervalMs?: number;
}

/** Called after every inbound message any node stepped. */
type AfterMessage = () => void;

/** A transport that reports each delivered message after the runtime has handled it. */
class ObservedTransport implements RuntimeTransport {
  constructor(
    readonly inner: MemoryTransport | SocketTransport,
    private readonly after: AfterMessage,
  ) {}

  send(message: RemoteMessage): void {
    this.inner.send(message);
  }

  onMessage(handler: (message: RemoteMessage) => void): void {
    this.inner.onMessage((message) => {
      handler(message);
      this.after();
    });
  }

  start(): Promise<void> {
    return this.inner.start();
  }

  stop(): Promise<void> {
    return this.inner.stop();
  }

  stats(): TransportStats {
    return this.inner.stats();
  }
}

/** Resolves after `ms`. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `condition` every `intervalMs` until true; throws after `timeoutMs` with `what`. */
export async function waitUntil(condition: () => boolean, timeoutMs: number, what: () => string, intervalMs = 1): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what()}`);
    await sleep(intervalMs);
  }
}

const clusterSecret = 'raftlab-bench-lab-loopback-secret';

/** A cluster of RaftRuntimes in this process. */
export class RuntimeCluster {
  readonly runtimes: RaftRuntime<number>[] = [];
  readonly machines: CounterMachine[] = [];
  private readonly transports: ObservedTransport[] = [];
  private readonly watchers = new Set<AfterMessage>();
  private stopped = false;

  private constructor(readonly options: RuntimeClusterOptions) {}

  /**
   * Builds the transports (socket ones listening, every address known to every peer) but starts no
   * runtime: `start()` does, so a cold-start election can be timed from the first tick timer.
   */
  static async create(options: RuntimeClusterOptions): Promise<RuntimeCluster> {
    assert(options.nodes >= 1, () => `nodes ${options.nodes}`);
    const cluster = new RuntimeCluster(options);
    const ids = Array.from({ length: options.nodes }, (_, i) => i + 1);
    const after = (): void => {
      for (const watcher of cluster.watchers) watcher();
    };
    if (options.transport === 'memory') {
      const network = new MemoryNetwork();
      for (const id of ids) cluster.transports.push(new ObservedTransport(new MemoryTransport(network, id, { handover: 'view' }), after));
    } else {
      const sockets: SocketTransport[] = [];
      for (const id of ids) {
        const socketOptions = { id, clusterId: 'raftlab-bench-lab', secret: clusterSecret, listen: { host: '127.0.0.1', port: 0 } };
        const socket = options.transport === 'tcp' ? new TcpTransport(socketOptions) : new WsTransport(socketOptions);
        // Listen now (start is idempotent: the runtime's own start() finds it started).
        await socket.start();
        sockets.push(socket);
      }
      for (const socket of sockets) {
        for (const other of sockets) if (other !== socket) socket.setPeerAddress(other.id, other.address());
      }
      for (const socket of sockets) cluster.transports.push(new ObservedTransport(socket, after));
    }
    return cluster;
  }

  /** Starts every runtime (their tick timers start now). */
  async start(): Promise<void> {
    const ids = Array.from({ length: this.options.nodes }, (_, i) => i + 1);
    const started = await Promise.all(
      ids.map((id, i) => {
        const machine = new CounterMachine();
        this.machines.push(machine);
        return RaftRuntime.start<number>({
          id,
          peers: ids,
          transport: this.transports[i] as ObservedTransport,
          stateMachine: machine,
          raft: { seed: (this.options.seed + id) >>> 0 },
          ...(this.options.tickIntervalMs === undefined ? {} : { tickIntervalMs: this.options.tickIntervalMs }),
          ...(this.options.compaction === false ? { compaction: false as const } : {}),
          // Load phases keep thousands of batches in flight on a shared core: generous deadlines.
          proposalTimeoutMs: 60_000,
        });
      }),
    );
    this.runtimes.push(...started);
  }

  /** Calls `watcher` after every inbound message any node handled; returns the unsubscribe. */
  watch(watcher: AfterMessage): () => void {
    this.watchers.add(watcher);
    return () => this.watchers.delete(watcher);
  }

  /** The runtime that is leader in the highest term, or null. */
  leader(excluding: NodeId = 0): RaftRuntime<number> | null {
    let best: RaftRuntime<number> | null = null;
    for (const runtime of this.runtimes) {
      if (runtime.isStopped || runtime.node.id === excluding) continue;
      if (runtime.node.role === 'leader' && (best === null || runtime.node.term > best.node.term)) best = runtime;
    }
    return best;
  }

  /** The runtime of node `id`. */
  runtime(id: NodeId): RaftRuntime<number> {
    const runtime = this.runtimes[id - 1];
    assert(runtime !== undefined, () => `no node ${id}`);
    return runtime;
  }

  /** Waits for a leader every live node follows (same term, same leader id). */
  async stableLeader(timeoutMs = 10_000): Promise<RaftRuntime<number>> {
    let leader: RaftRuntime<number> | null = null;
    await waitUntil(
      () => {
        leader = this.leader();
        if (leader === null) return false;
        const { id, term } = leader.node;
        return this.runtimes.every((r) => r.isStopped || r.partitionedFrom.length > 0 || (r.node.term === term && r.node.leaderId === id));
      },
      timeoutMs,
      () => `a stable leader (${this.describe()})`,
      2,
    );
    return leader as unknown as RaftRuntime<number>;
  }

  /** Messages and bytes sent, summed over the nodes' transports. */
  traffic(): { messages: number; bytes: number } {
    let messages = 0;
    let bytes = 0;
    for (const transport of this.transports) {
      const stats = transport.stats();
      messages += stats.messagesSent;
      bytes += stats.bytesSent;
    }
    return { messages, bytes };
  }

  /** Roles, terms and indexes, for error messages. */
  describe(): string {
    return this.runtimes.map((r) => `n${r.node.id} ${r.node.role} t${r.node.term} leader ${r.node.leaderId} commit ${r.node.commitIndex} applied ${r.node.appliedIndex}`).join('; ');
  }

  /** Stops every runtime and closes every socket. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.watchers.clear();
    await Promise.all(this.runtimes.map((runtime) => runtime.stop()));
    // Transports of runtimes that never started.
    await Promise.all(this.transports.map((transport) => transport.stop()));
  }
}

/** A batch of `count` distinct commands of `entryBytes` bytes (sequence number in the first bytes). */
export function commandBatch(count: number, entryBytes: number, firstSequence: number): Uint8Array[] {
  const items: Uint8Array[] = [];
  for (let i = 0; i < count; i++) {
    const data = new Uint8Array(entryBytes);
    const view = new DataView(data.buffer);
    if (entryBytes >= 4) view.setUint32(0, (firstSequence + i) >>> 0);
    items.push(data);
  }
  return items;
}
