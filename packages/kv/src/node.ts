/**
 * One KV node in a process: a KvMachine behind a RaftRuntime, and the HTTP server in front of it.
 * The transport and the storage come from the caller, so tests run nodes in process over an
 * in-memory network and `raftlab kv serve` runs them over TCP or WebSocket with the durable WAL.
 */
import type { NodeId } from '@raftlab/core';
import { type CompactionPolicy, type Logger, RaftRuntime, type RuntimeOptions, type RuntimeTransport, silentLogger } from '@raftlab/runtime';
import type { Storage } from '@raftlab/storage';
import { KvMachine, type KvMachineConfig } from './machine.js';
import type { TransportByteStats } from './metrics.js';
import { KvServer, type KvServerOptions } from './server.js';
import { IndexedKvMachine, KvService } from './service.js';

/** Options of startKvNode. */
export interface KvNodeOptions {
  readonly id: NodeId;
  readonly peers: readonly NodeId[];
  readonly transport: RuntimeTransport;
  /** Stable storage (default: in memory, not durable). */
  readonly storage?: Storage;
  /** The state machine's configuration; every node of a cluster must use the same. */
  readonly machine?: KvMachineConfig;
  /** RaftNode settings (election and heartbeat ticks, bounds...). */
  readonly raft?: RuntimeOptions<unknown>['raft'];
  /** Milliseconds per tick (default 10). */
  readonly tickIntervalMs?: number;
  /** Deadline of a write at the leader; past it the client gets 503 no-quorum (default 2000 ms). */
  readonly proposalTimeoutMs?: number;
  /** Deadline of a linearizable or lease read (default 2000 ms). */
  readonly readTimeoutMs?: number;
  /**
   * Share of the election timeout a lease read gives up to clock drift (default 0.2): a leader serves
   * lease reads for (1 - margin) x the election timeout after a quorum last confirmed it.
   */
  readonly leaseDriftMargin?: number;
  /** Log compaction policy (default: the runtime's). */
  readonly compaction?: CompactionPolicy | false;
  /** The HTTP server's options (listen address, peers' URLs, follower mode, admin...). */
  readonly http?: Omit<KvServerOptions, 'service' | 'logger'>;
  readonly logger?: Logger;
}

/** Starts the node (storage loaded, transport up, timers running) and its HTTP server; resolves once listening. */
export async function startKvNode(options: KvNodeOptions): Promise<KvServer> {
  const machine = new KvMachine(options.machine ?? {});
  const logger = options.logger ?? silentLogger;
  const runtimeOptions: RuntimeOptions<ReturnType<IndexedKvMachine['apply']>> = {
    id: options.id,
    peers: options.peers,
    transport: options.transport,
    stateMachine: new IndexedKvMachine(machine),
    proposalTimeoutMs: options.proposalTimeoutMs ?? 2000,
    readTimeoutMs: options.readTimeoutMs ?? 2000,
    logger,
    ...(options.storage === undefined ? {} : { storage: options.storage }),
    ...(options.raft === undefined ? {} : { raft: options.raft }),
    ...(options.tickIntervalMs === undefined ? {} : { tickIntervalMs: options.tickIntervalMs }),
    ...(options.leaseDriftMargin === undefined ? {} : { leaseDriftMargin: options.leaseDriftMargin }),
    ...(options.compaction === undefined ? {} : { compaction: options.compaction }),
    ...(options.http?.httpPeers === undefined ? {} : { addresses: options.http.httpPeers }),
  };
  const runtime = await RaftRuntime.start(runtimeOptions);
  const service = new KvService({ runtime, machine });
  // Transports that keep statistics (every @raftlab/transport one does) feed the byte metrics.
  const transport = options.transport as RuntimeTransport & { stats?: () => TransportByteStats };
  const transportStats = options.http?.transportStats ?? (typeof transport.stats === 'function' ? () => (transport.stats as () => TransportByteStats)() : undefined);
  const server = new KvServer({ ...options.http, service, logger, ...(transportStats === undefined ? {} : { transportStats }) });
  try {
    await server.listen();
  } catch (error) {
    await runtime.stop();
    throw error;
  }
  return server;
}
