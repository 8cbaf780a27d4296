/**
 * An in-process KV cluster for tests: N nodes over a MemoryNetwork, each with its HTTP server on
 * 127.0.0.1 (a free port), plus small HTTP helpers. Everything started here is stopped by stop().
 */
import http from 'node:http';
import type { NodeId } from '@raftlab/core';
import { MemoryNetwork, MemoryTransport } from '@raftlab/transport';
import { type KvNodeOptions, startKvNode } from '../src/node.js';
import type { KvServer, KvServerOptions } from '../src/server.js';

/** Options of startCluster. */
export interface ClusterOptions {
  readonly size?: number;
  readonly http?: Partial<Omit<KvServerOptions, 'service' | 'httpPeers'>>;
  readonly node?: Partial<Omit<KvNodeOptions, 'id' | 'peers' | 'transport' | 'http'>>;
}

/** A running in-process cluster. */
export interface Cluster {
  readonly network: MemoryNetwork;
  readonly servers: Map<NodeId, KvServer>;
  readonly urls: Map<NodeId, string>;
  /** The node that leads, once exactly one running node says so. */
  waitForLeader(timeoutMs?: number): Promise<KvServer>;
  /** Any running node that is not `leader`, once it knows the leader. */
  followerOf(leader: KvServer): Promise<KvServer>;
  /** Cuts `id` off from every peer at the Raft transport level (both directions, on every node). */
  isolate(id: NodeId): void;
  heal(): void;
  stop(): Promise<void>;
}

/** Starts an in-process cluster (default 3 nodes, 5 ms ticks: elections in 100-200 ms). */
export async function startCluster(options: ClusterOptions = {}): Promise<Cluster> {
  const size = options.size ?? 3;
  const ids = Array.from({ length: size }, (_, i) => i + 1);
  const network = new MemoryNetwork();
  const urls = new Map<NodeId, string>();
  const servers = new Map<NodeId, KvServer>();
  for (const id of ids) {
    const server = await startKvNode({
      tickIntervalMs: 5,
      ...options.node,
      id,
      peers: ids,
      transport: new MemoryTransport(network, id),
      http: { ...options.http, httpPeers: urls },
    });
    servers.set(id, server);
    urls.set(id, server.url);
  }
  const running = (): KvServer[] => [...servers.values()].filter((server) => !server.isShuttingDown);
  return {
    network,
    servers,
    urls,
    waitForLeader: (timeoutMs = 5000) =>
      waitFor('a single leader', () => {
        const leaders = running().filter((server) => server.service.runtime.node.role === 'leader');
        return leaders.length === 1 ? leaders[0] : undefined;
      }, timeoutMs),
    followerOf: (leader) =>
      waitFor('a follower that knows the leader', () => running().find((server) => server !== leader && server.service.runtime.node.leaderId === leader.service.id)),
    isolate(id) {
      for (const server of servers.values()) {
        if (server.service.id === id) server.service.runtime.partition(ids);
        else server.service.runtime.partition([id]);
      }
    },
    heal() {
      for (const server of servers.values()) server.service.runtime.heal();
    },
    async stop() {
      await Promise.all([...servers.values()].map((server) => server.shutdown({ transferLeadership: false })));
    },
  };
}

/** Polls `probe` every 5 ms until it returns a value. */
export async function waitFor<T>(what: string, probe: () => T | undefined, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** An HTTP answer, with the body parsed when it is JSON. */
export interface Answer {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly text: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  readonly json: any;
}

/** One HTTP request on a fresh connection. */
export function request(
  url: string,
  options: { readonly method?: string; readonly body?: string | Buffer; readonly headers?: http.OutgoingHttpHeaders; readonly timeoutMs?: number } = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const outbound = http.request(url, { method: options.method ?? 'GET', headers: options.headers ?? {}, agent: false, timeout: options.timeoutMs ?? 10_000 }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('error', reject);
      response.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json: unknown = null;
        try {
          json = JSON.parse(text);
        } catch {
          json = null;
        }
        resolve({ status: response.statusCode ?? 0, headers: response.headers, text, json });
      });
    });
    outbound.on('timeout', () => outbound.destroy(new Error(`no answer from ${url} in time`)));
    outbound.on('error', reject);
    outbound.end(options.body);
  });
}

/** A JSON request body with its content type. */
export function jsonBody(value: unknown): { body: string; headers: http.OutgoingHttpHeaders } {
  return { body: JSON.stringify(value), headers: { 'content-type': 'application/json' } };
}
