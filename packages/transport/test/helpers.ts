/**
 * Shared test helpers: message normalization for equality, a recording logger, polling, free
 * ports, and a mesh of socket transports on 127.0.0.1 that the tests stop afterwards.
 */
import { createServer } from 'node:net';
import type { EntryFrames, NodeId, RemoteMessage } from '@raftlab/core';
import {
  type Logger,
  type SocketTransport,
  type SocketTransportOptions,
  TcpTransport,
  type TransportEvent,
  WsTransport,
} from '../src/index.js';

export type SocketKind = 'tcp' | 'ws';

const hex = (bytes: Uint8Array): string => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');

function entriesHex(entries: EntryFrames): { count: number; byteLength: number; bytes: string } {
  return { count: entries.count, byteLength: entries.byteLength, bytes: entries.slices.map(hex).join('') };
}

/** A plain, comparable form of a message (byte views as hex, slices joined). */
export function normalize(message: RemoteMessage): unknown {
  switch (message.type) {
    case 'append':
      return { ...message, entries: entriesHex(message.entries) };
    case 'snapshot':
      return { ...message, snapshot: { ...message.snapshot, peers: [...message.snapshot.peers], data: hex(message.snapshot.data) } };
    case 'propose':
      return { ...message, data: message.data.map(hex) };
    default:
      return { ...message };
  }
}

/** One logged line. */
export interface LogLine {
  readonly level: 'debug' | 'info' | 'warn' | 'error';
  readonly fields: Record<string, unknown>;
  readonly message: string;
}

/** A logger that keeps every line. */
export function recordingLogger(): Logger & { lines: LogLine[]; text(): string } {
  const lines: LogLine[] = [];
  const at =
    (level: LogLine['level']) =>
    (fields: object, message?: string): void => {
      lines.push({ level, fields: fields as Record<string, unknown>, message: message ?? '' });
    };
  return {
    lines,
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
    text: () => lines.map((line) => `${line.level} ${line.message} ${JSON.stringify(line.fields)}`).join('\n'),
  };
}

/** Polls `predicate` every few milliseconds until it holds; fails with `what` after `timeoutMs`. */
export async function waitFor(predicate: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** A port nothing listens on (a listener is opened and closed to find one). */
export async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

export const clusterId = 'test-cluster';
export const secret = 'a-shared-cluster-secret-of-some-length';

/** Creates a socket transport of `kind` listening on 127.0.0.1 (port 0 unless given). */
export function createTransport(kind: SocketKind, options: Partial<SocketTransportOptions> & { id: NodeId }): SocketTransport {
  const full: SocketTransportOptions = { clusterId, secret, listen: { host: '127.0.0.1', port: 0 }, ...options };
  return kind === 'tcp' ? new TcpTransport(full) : new WsTransport(full);
}

/** A running node of a mesh: its transport, what it received, its events and logs. */
export interface MeshNode {
  readonly transport: SocketTransport;
  readonly received: RemoteMessage[];
  readonly events: TransportEvent[];
  readonly logger: ReturnType<typeof recordingLogger>;
}

/**
 * Starts transports for `ids`, tells each the others' addresses (plus `extraPeers`, ids that are
 * admitted but have no live transport), and waits until every pair is connected both ways.
 */
export async function startMesh(
  kind: SocketKind,
  ids: readonly NodeId[],
  options: Partial<SocketTransportOptions> = {},
  extraPeers: ReadonlyMap<NodeId, { host: string; port: number }> = new Map(),
): Promise<Map<NodeId, MeshNode>> {
  const nodes = new Map<NodeId, MeshNode>();
  for (const id of ids) {
    const logger = recordingLogger();
    const transport = createTransport(kind, { ...options, id, logger, peers: extraPeers });
    const node: MeshNode = { transport, received: [], events: [], logger };
    transport.onMessage((message) => node.received.push(message));
    transport.onEvent((event) => node.events.push(event));
    nodes.set(id, node);
  }
  await Promise.all([...nodes.values()].map((node) => node.transport.start()));
  for (const [id, node] of nodes) {
    for (const [other, peer] of nodes) if (other !== id) node.transport.setPeerAddress(other, peer.transport.address());
  }
  const links = 2 * (ids.length - 1);
  await waitFor(() => [...nodes.values()].every((node) => node.transport.stats().connectionsOpen === links), `a connected ${kind} mesh of ${ids.join(',')}`);
  return nodes;
}
