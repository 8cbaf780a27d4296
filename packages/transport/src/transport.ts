/**
 * The Transport contract shared by the memory, TCP and WebSocket transports, with the logger shape,
 * statistics, connection events, bounds and errors they have in common.
 *
 * The runtime drives a transport like this (DESIGN.md, "Transports and runtime"):
 *
 *   transport.onMessage((message) => inbox.push(message));   // inbound, already validated
 *   transport.onEvent((event) => ...);                        // optional: connections, refusals
 *   await transport.start();                                  // listen, dial the peers
 *   ... each Ready cycle, after persistence:
 *   for (const message of ready.messages) transport.send(message);
 *   node.advance(ready);
 *   ...
 *   await transport.stop();
 *
 * Two rules make the zero-copy log safe (DESIGN.md, "The log"):
 *
 *  1. send() reads the views in a message (AppendEntries entry slices, snapshot data, proposal
 *     data) only during the call. Whatever it keeps past the call (a send queue, a pending socket
 *     write, a delayed link) it has copied first. The caller may mutate the underlying bytes as
 *     soon as send() returns. The TCP transport hands the views themselves to the operating system
 *     when the socket takes the whole frame at once, and otherwise copies (see tcp.ts).
 *  2. A message delivered to the onMessage handler is owned by the receiver: its bytes never change
 *     afterwards, so the handler may queue it and step it in a later turn. TCP and WebSocket deliver
 *     views of the received buffer (nobody else writes to it); the memory transport copies, or
 *     encodes, unless it is told to hand views over (`handover: 'view'`, see memory.ts).
 *
 * Delivery is never re-entrant: no transport calls the onMessage handler from inside send(), so a
 * node between ready() and advance() never sees input.
 */
import type { NodeId, RemoteMessage } from '@raftlab/core';

/** A pino-compatible logger: the runtime passes a pino logger; the default drops everything. */
export interface Logger {
  debug(object: object, message?: string): void;
  info(object: object, message?: string): void;
  warn(object: object, message?: string): void;
  error(object: object, message?: string): void;
}

/** A logger that drops everything. */
export const silentLogger: Logger = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
};

/** Where a node listens. */
export interface PeerAddress {
  readonly host: string;
  readonly port: number;
}

/** Which side opened a connection: this node dialed it (outbound) or accepted it (inbound). */
export type Direction = 'outbound' | 'inbound';

/**
 * What happened to a connection, with the reason that was also logged. High-rate facts (each
 * message, each drop) are counted in stats instead.
 */
export type TransportEvent =
  /** A connection passed the handshake. */
  | { readonly type: 'connected'; readonly peer: NodeId; readonly direction: Direction; readonly remote: string }
  /** An authenticated connection closed. */
  | { readonly type: 'disconnected'; readonly peer: NodeId; readonly direction: Direction; readonly remote: string; readonly reason: string }
  /** A handshake failed: refused by this node, refused by the peer, or timed out. `peer` is null when unknown. */
  | { readonly type: 'refused'; readonly peer: NodeId | null; readonly direction: Direction; readonly remote: string; readonly reason: string }
  /** A malformed, oversized or unexpected frame closed its connection; nothing else was affected. */
  | { readonly type: 'malformed'; readonly peer: NodeId | null; readonly direction: Direction; readonly remote: string; readonly reason: string };

/** Counters since construction (monotonic except connectionsOpen). */
export interface TransportStats {
  /** Messages accepted by send(): written, or queued to be written. */
  readonly messagesSent: number;
  /** Frame bytes handed to sockets (memory transport: encoded bytes in encode mode, else payload bytes). */
  readonly bytesSent: number;
  /** Messages delivered to the onMessage handler. */
  readonly messagesReceived: number;
  /** Frame bytes of the delivered messages (memory transport: as for bytesSent). */
  readonly bytesReceived: number;
  /** Messages send() refused or a queue gave up on: queue full, no address, too large, stopped, filtered. */
  readonly messagesDropped: number;
  /** Authenticated connections open now, both directions. */
  readonly connectionsOpen: number;
  /** Authenticated connections opened since start, both directions. */
  readonly connectionsOpened: number;
  /** Handshakes that failed, refused by either side or timed out. */
  readonly handshakesRefused: number;
  /** Inbound frames rejected as malformed, oversized or unexpected (each closed its connection). */
  readonly framesMalformed: number;
  /** Frames whose sender marked them discarded after a partial write (see tcp.ts); not delivered. */
  readonly framesDiscarded: number;
  /** Frames this node re-sent as a copy because the socket kept a view past send() (see tcp.ts). */
  readonly framesResent: number;
}

/** One interface, three implementations: memory, TCP (node:net) and WebSocket (ws). */
export interface Transport {
  /** This node's id. */
  readonly id: NodeId;
  /** Listens and dials the peers (connections come up in the background and are retried forever). */
  start(): Promise<void>;
  /**
   * Sends to `message.to`. Never blocks and never throws for network conditions: the message is
   * written, queued, or dropped and counted per the transport's policy (Raft's own retries cover
   * drops, §5.3). Reads the message's views only during the call (rule 1 above). A message not
   * from this node, or to this node, is a programmer error (AssertionError).
   */
  send(message: RemoteMessage): void;
  /**
   * Sets the handler for inbound messages: validated, addressed to this node, owned by the
   * receiver (rule 2). Called from I/O callbacks (memory: a microtask), never from inside send().
   * An exception thrown by the handler is a bug and propagates.
   */
  onMessage(handler: (message: RemoteMessage) => void): void;
  /** Sets the handler for connection events (each is also logged). */
  onEvent(handler: (event: TransportEvent) => void): void;
  /** Closes every connection and the listener; pending messages are dropped. Idempotent. */
  stop(): Promise<void>;
  /** A copy of the counters. */
  stats(): TransportStats;
}

/** Mutable counters behind TransportStats. */
export class StatsCounter implements TransportStats {
  messagesSent = 0;
  bytesSent = 0;
  messagesReceived = 0;
  bytesReceived = 0;
  messagesDropped = 0;
  connectionsOpen = 0;
  connectionsOpened = 0;
  handshakesRefused = 0;
  framesMalformed = 0;
  framesDiscarded = 0;
  framesResent = 0;

  /** A frozen copy. */
  snapshot(): TransportStats {
    return Object.freeze({ ...this });
  }
}

/** Stable codes of TransportError. */
export type TransportErrorCode = 'invalid-options' | 'listen-failed' | 'not-started' | 'stopped';

/** An error a transport throws or rejects with; `code` is stable. */
export class TransportError extends Error {
  constructor(
    readonly code: TransportErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'TransportError';
  }
}

/** Named bounds of the socket transports (every queue and frame has one). */
export interface TransportBounds {
  /** Largest frame accepted or sent, header included. Must exceed the core's appendBytesMax plus headers. */
  readonly frameBytesMax: number;
  /** Bytes queued per peer (while disconnected, or written but not yet taken by the OS); full: drop the new message. */
  readonly sendQueueBytesMax: number;
  /** Time a connection has to complete its handshake (connect included, for the dialer). */
  readonly handshakeTimeoutMs: number;
  /** First reconnect delay; it doubles per failed attempt, with jitter. */
  readonly reconnectDelayMsMin: number;
  /** Largest reconnect delay. */
  readonly reconnectDelayMsMax: number;
}

/** Default bounds: 64 MiB frames (the core's appendBytesMax is 1 MiB), 64 MiB queued per peer. */
export const defaultTransportBounds: TransportBounds = Object.freeze({
  frameBytesMax: 64 * 1024 * 1024,
  sendQueueBytesMax: 64 * 1024 * 1024,
  handshakeTimeoutMs: 5000,
  reconnectDelayMsMin: 50,
  reconnectDelayMsMax: 2000,
});

/** Smallest frameBytesMax allowed: a handshake frame and a small AppendEntries must fit. */
export const frameBytesMaxMin = 4096;

/** Validates bounds and fills in defaults; throws TransportError('invalid-options') naming the field. */
export function resolveBounds(bounds: Partial<TransportBounds> | undefined): TransportBounds {
  const resolved: Record<string, number> = { ...defaultTransportBounds };
  if (bounds !== undefined) {
    for (const [key, value] of Object.entries(bounds)) {
      if (!(key in defaultTransportBounds)) {
        throw new TransportError('invalid-options', `bounds.${key}: unknown bound; known: ${Object.keys(defaultTransportBounds).join(', ')}`);
      }
      if (value === undefined) continue;
      if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) {
        throw new TransportError('invalid-options', `bounds.${key}: expected a positive integer, got ${String(value)}`);
      }
      resolved[key] = value;
    }
  }
  const result = resolved as unknown as TransportBounds;
  if (result.frameBytesMax < frameBytesMaxMin) {
    throw new TransportError('invalid-options', `bounds.frameBytesMax: ${result.frameBytesMax} below ${frameBytesMaxMin}`);
  }
  if (result.frameBytesMax > 0xffffffff) {
    throw new TransportError('invalid-options', `bounds.frameBytesMax: ${result.frameBytesMax} does not fit the u32 length prefix`);
  }
  if (result.sendQueueBytesMax < result.frameBytesMax) {
    throw new TransportError(
      'invalid-options',
      `bounds.sendQueueBytesMax: ${result.sendQueueBytesMax} below frameBytesMax ${result.frameBytesMax} (a largest frame could never be queued)`,
    );
  }
  if (result.reconnectDelayMsMax < result.reconnectDelayMsMin) {
    throw new TransportError(
      'invalid-options',
      `bounds.reconnectDelayMsMax: ${result.reconnectDelayMsMax} below reconnectDelayMsMin ${result.reconnectDelayMsMin}`,
    );
  }
  return result;
}
