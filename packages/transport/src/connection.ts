/**
 * What the TCP and WebSocket transports share: peer links with a bounded queue and reconnect
 * backoff, the handshake on both sides, inbound frame validation, events, logs and counters. The
 * byte-level part (framing a stream, writing a frame) is a FrameChannel, one per socket kind.
 *
 * Topology: each node dials every peer and uses that connection only for its own outbound
 * messages; it accepts the peers' connections and only receives on them. So there is exactly one
 * connection per ordered pair, no tie-break, and a restarted node simply dials again. Answers
 * travel on the other direction's connection (a follower's appendResponse goes out on the
 * follower's own link to the leader). The cost is 2(N-1) sockets per node instead of N-1.
 *
 * Per peer link:
 *
 *   idle --start/send--> dialing --challenge/hello/welcome--> open --close--> waiting --delay--> dialing
 *                           \--refused/timeout/error-----------------------> waiting
 *
 * While not open, send() copies the frame into the link's queue (bounded by sendQueueBytesMax);
 * the queue is written in order once the handshake completes. While open, send() writes at once.
 * Full queue (disconnected, or the socket not draining): the new message is dropped and counted;
 * Raft retries (AppendEntries are re-sent after a rejection or a heartbeat response, §5.3; votes on
 * the next election timeout). Reconnect delays double from reconnectDelayMsMin to
 * reconnectDelayMsMax, each drawn in [delay/2, delay] (jitter, so restarted peers do not all dial
 * in lockstep), and reset after a successful handshake.
 */
import { type NodeId, type RemoteMessage, assert } from '@raftlab/core';
import { type EncodedFrame, checkFraming, decodeMessage, encodeMessage, frameStatus, frameStatusOf, joinFrame } from './codec.js';
import { AcceptorHandshake, DialerHandshake, type HandshakeIdentity, handshakeBytesMax, protocolVersion, secretBytes } from './handshake.js';
import {
  type Direction,
  type Logger,
  type PeerAddress,
  StatsCounter,
  type Transport,
  type TransportBounds,
  TransportError,
  type TransportEvent,
  type TransportStats,
  resolveBounds,
  silentLogger,
} from './transport.js';

/** How a frame left: the views went to the OS as they are; or were copied first; or went out, got pinned, and were re-sent as a copy. */
export type WriteOutcome = 'direct' | 'copied' | 'resent';

/** Callbacks of a channel, set once by its owner. */
export interface ChannelHandlers {
  /** The dialed connection is up. */
  onOpen(): void;
  /** One whole frame, length prefix included, as a view that stays valid (nobody writes to it). */
  onFrame(frame: Uint8Array): void;
  /** The byte stream cannot be framed (oversized length, text message...): the owner closes the channel. */
  onFramingError(reason: string): void;
  /** The channel closed (called once), with the first reason known. */
  onClose(reason: string): void;
}

/** A framed connection: a TCP socket with a stream framer, or a WebSocket. */
export interface FrameChannel {
  /** The remote address, for logs. */
  readonly remote: string;
  /** Resolves once the underlying socket has closed. */
  readonly closed: Promise<void>;
  /** Sets the callbacks (before any event can fire: right after construction). */
  setHandlers(handlers: ChannelHandlers): void;
  /** Largest inbound frame accepted from now on (the handshake bound until authenticated). */
  setFrameBytesMax(bytes: number): void;
  /** Bytes written but not yet taken by the operating system. */
  pendingBytes(): number;
  /** Writes a buffer this side owns (handshake frames, queued copies). */
  writeOwned(frame: Uint8Array): void;
  /** Writes an encoded frame; borrowed views are not referenced once this returns. */
  writeFrame(frame: EncodedFrame): WriteOutcome;
  /** Closes at once, dropping unwritten bytes. */
  close(reason: string): void;
  /** Closes after the bytes already written are flushed (a refuse frame), with a short deadline. */
  closeAfterFlush(reason: string): void;
}

/** Options common to the socket transports. */
export interface SocketTransportOptions {
  /** This node's id (a positive integer). */
  readonly id: NodeId;
  /** Every node of the cluster carries the same id; connections across clusters are refused. */
  readonly clusterId: string;
  /** The shared cluster secret behind the handshake's HMAC (text or bytes; at least 16 bytes advised). */
  readonly secret: string | Uint8Array;
  /** Where to listen; port 0 picks a free port (read it back with address()). */
  readonly listen: PeerAddress;
  /** The peers' addresses by id (this node's own entry, if present, is ignored). Unknown ids are refused. */
  readonly peers?: ReadonlyMap<NodeId, PeerAddress>;
  /** Bounds; unset ones take defaultTransportBounds. */
  readonly bounds?: Partial<TransportBounds>;
  /** A pino-compatible logger (default: silent). */
  readonly logger?: Logger;
  /** The protocol version to speak (default: protocolVersion). Only tests and upgrade drills change it. */
  readonly protocolVersion?: number;
}

interface Link {
  readonly peer: NodeId;
  channel: FrameChannel | null;
  handshake: DialerHandshake | null;
  open: boolean;
  /** Why the current attempt failed, when the handshake (not the network) failed it. */
  refusal: string | null;
  queue: Uint8Array[];
  queuedBytes: number;
  attempt: number;
  retryTimer: NodeJS.Timeout | null;
  handshakeTimer: NodeJS.Timeout | null;
}

interface InboundSession {
  readonly channel: FrameChannel;
  readonly handshake: AcceptorHandshake;
  peer: NodeId | null;
  /** Set when this side already reported the failure (refusal, malformed frame). */
  reported: boolean;
  handshakeTimer: NodeJS.Timeout | null;
}

type State = 'new' | 'started' | 'stopped';

function validateAddress(field: string, address: unknown): PeerAddress {
  if (typeof address !== 'object' || address === null) throw new TransportError('invalid-options', `${field}: expected { host, port }`);
  const { host, port } = address as { host?: unknown; port?: unknown };
  if (typeof host !== 'string' || host.length === 0) throw new TransportError('invalid-options', `${field}.host: expected a non-empty string`);
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new TransportError('invalid-options', `${field}.port: expected an integer in [0, 65535], got ${String(port)}`);
  }
  return { host, port };
}

function validateNodeId(field: string, id: unknown): NodeId {
  if (typeof id !== 'number' || !Number.isSafeInteger(id) || id < 1) {
    throw new TransportError('invalid-options', `${field}: expected a positive integer node id, got ${String(id)}`);
  }
  return id;
}

/** The shared half of TcpTransport and WsTransport; subclasses provide listening and dialing. */
export abstract class SocketTransport implements Transport {
  /** This node's id. */
  readonly id: NodeId;
  /** The resolved bounds. */
  readonly bounds: TransportBounds;
  protected readonly logger: Logger;
  private readonly identity: HandshakeIdentity;
  private readonly addresses = new Map<NodeId, PeerAddress>();
  private readonly listenAddress: PeerAddress;
  private readonly links = new Map<NodeId, Link>();
  private readonly sessions = new Set<InboundSession>();
  private readonly sessionByPeer = new Map<NodeId, InboundSession>();
  private readonly channels = new Set<FrameChannel>();
  private readonly counters = new StatsCounter();
  private messageHandler: (message: RemoteMessage) => void = () => undefined;
  private eventHandler: (event: TransportEvent) => void = () => undefined;
  private state: State = 'new';
  private starting: Promise<void> | null = null;
  private stopping: Promise<void> | null = null;
  private bound: PeerAddress | null = null;

  /** Which transport this is, for logs. */
  abstract readonly kind: 'tcp' | 'ws';

  constructor(options: SocketTransportOptions) {
    if (typeof options !== 'object' || options === null) throw new TransportError('invalid-options', 'options: expected an object');
    this.id = validateNodeId('id', options.id);
    if (typeof options.clusterId !== 'string' || options.clusterId.length === 0) {
      throw new TransportError('invalid-options', 'clusterId: expected a non-empty string');
    }
    if (typeof options.secret !== 'string' && !(options.secret instanceof Uint8Array)) {
      throw new TransportError('invalid-options', 'secret: expected a string or a Uint8Array');
    }
    const secret = secretBytes(options.secret);
    if (secret.length === 0) throw new TransportError('invalid-options', 'secret: must not be empty');
    const version = options.protocolVersion ?? protocolVersion;
    if (!Number.isSafeInteger(version) || version < 0) throw new TransportError('invalid-options', `protocolVersion: expected a non-negative integer, got ${version}`);
    this.identity = { clusterId: options.clusterId, secret, id: this.id, protocolVersion: version };
    this.listenAddress = validateAddress('listen', options.listen);
    this.bounds = resolveBounds(options.bounds);
    this.logger = options.logger ?? silentLogger;
    for (const [peer, address] of options.peers ?? []) {
      validateNodeId('peers key', peer);
      if (peer !== this.id) this.addresses.set(peer, validateAddress(`peers[${peer}]`, address));
    }
  }

  /** Starts listening on `address`; calls `onAccept` for each inbound connection; resolves with the bound address. */
  protected abstract listenOn(address: PeerAddress, onAccept: (channel: FrameChannel) => void): Promise<PeerAddress>;
  /** Starts connecting to `address`; the channel calls onOpen once connected. */
  protected abstract dialTo(address: PeerAddress): FrameChannel;
  /** Stops listening (connections are already closed). */
  protected abstract closeListener(): Promise<void>;

  /** Listens, then dials every peer with a known address. */
  start(): Promise<void> {
    if (this.state === 'stopped') return Promise.reject(new TransportError('stopped', `transport of node ${this.id} was stopped`));
    this.starting ??= this.startOnce();
    return this.starting;
  }

  private async startOnce(): Promise<void> {
    try {
      this.bound = await this.listenOn(this.listenAddress, (channel) => this.onAccept(channel));
    } catch (error) {
      throw new TransportError(
        'listen-failed',
        `node ${this.id} cannot listen on ${this.listenAddress.host}:${this.listenAddress.port}: ${error instanceof Error ? error.message : String(error)}`,
        { cause: error },
      );
    }
    if (this.state === 'stopped') return;
    this.state = 'started';
    this.logger.info({ node: this.id, transport: this.kind, address: this.bound }, 'transport listening');
    for (const peer of this.addresses.keys()) this.connect(this.linkOf(peer));
  }

  /** The address this node listens on (after start). */
  address(): PeerAddress {
    if (this.bound === null) throw new TransportError('not-started', `transport of node ${this.id} is not listening yet`);
    return this.bound;
  }

  /** Adds or changes a peer's address (a node id given here is also admitted by the handshake). */
  setPeerAddress(peer: NodeId, address: PeerAddress): void {
    validateNodeId('peer', peer);
    if (peer === this.id) return;
    this.addresses.set(peer, validateAddress(`address of node ${peer}`, address));
    if (this.state !== 'started') return;
    const link = this.linkOf(peer);
    if (link.channel === null && link.retryTimer === null) this.connect(link);
  }

  onMessage(handler: (message: RemoteMessage) => void): void {
    this.messageHandler = handler;
  }

  onEvent(handler: (event: TransportEvent) => void): void {
    this.eventHandler = handler;
  }

  stats(): TransportStats {
    return this.counters.snapshot();
  }

  send(message: RemoteMessage): void {
    assert(message.from === this.id, () => `send: message from node ${message.from} handed to the transport of node ${this.id}`);
    assert(message.to !== this.id, () => `send: node ${this.id} sending ${message.type} to itself`);
    const counters = this.counters;
    if (this.state === 'stopped' || !this.addresses.has(message.to)) {
      counters.messagesDropped += 1;
      return;
    }
    const link = this.linkOf(message.to);
    const frame = encodeMessage(message);
    const bounds = this.bounds;
    if (frame.byteLength > bounds.frameBytesMax) {
      counters.messagesDropped += 1;
      this.logger.error(
        { node: this.id, peer: message.to, type: message.type, frameBytes: frame.byteLength, frameBytesMax: bounds.frameBytesMax },
        'message larger than frameBytesMax dropped',
      );
      return;
    }
    const channel = link.channel;
    if (link.open && channel !== null) {
      if (channel.pendingBytes() + frame.byteLength > bounds.sendQueueBytesMax) {
        counters.messagesDropped += 1;
        return;
      }
      const outcome = channel.writeFrame(frame);
      counters.messagesSent += 1;
      counters.bytesSent += frame.byteLength;
      if (outcome === 'resent') {
        counters.framesResent += 1;
        counters.bytesSent += frame.byteLength;
      }
      return;
    }
    if (link.queuedBytes + frame.byteLength > bounds.sendQueueBytesMax) {
      counters.messagesDropped += 1;
      return;
    }
    // Held past this call: copied (rule 1 in transport.ts).
    link.queue.push(joinFrame(frame));
    link.queuedBytes += frame.byteLength;
    counters.messagesSent += 1;
    if (this.state === 'started' && link.channel === null && link.retryTimer === null) this.connect(link);
  }

  stop(): Promise<void> {
    this.stopping ??= this.stopOnce();
    return this.stopping;
  }

  private async stopOnce(): Promise<void> {
    const wasStarted = this.state === 'started' || this.starting !== null;
    this.state = 'stopped';
    if (this.starting !== null) await this.starting.catch(() => undefined);
    for (const link of this.links.values()) {
      this.clearLinkTimers(link);
      this.counters.messagesDropped += link.queue.length;
      link.queue = [];
      link.queuedBytes = 0;
      link.channel?.close('transport stopped');
    }
    for (const session of this.sessions) session.channel.close('transport stopped');
    await Promise.all([...this.channels].map((channel) => channel.closed));
    if (wasStarted && this.bound !== null) await this.closeListener();
    this.logger.info({ node: this.id, transport: this.kind }, 'transport stopped');
  }

  // ---------------------------------------------------------------------------------------------
  // Events and logs.

  private emit(event: TransportEvent): void {
    const fields = { node: this.id, transport: this.kind, ...event };
    switch (event.type) {
      case 'connected':
        this.logger.info(fields, `${event.direction} connection with node ${event.peer} up`);
        break;
      case 'disconnected':
        this.logger.info(fields, `${event.direction} connection with node ${event.peer} closed: ${event.reason}`);
        break;
      case 'refused':
        this.logger.warn(fields, `handshake failed: ${event.reason}`);
        break;
      case 'malformed':
        this.logger.warn(fields, `connection closed on a bad frame: ${event.reason}`);
        break;
    }
    this.eventHandler(event);
  }

  private track(channel: FrameChannel): void {
    this.channels.add(channel);
    void channel.closed.then(() => this.channels.delete(channel));
  }

  // ---------------------------------------------------------------------------------------------
  // Outbound links.

  private linkOf(peer: NodeId): Link {
    let link = this.links.get(peer);
    if (link === undefined) {
      link = { peer, channel: null, handshake: null, open: false, refusal: null, queue: [], queuedBytes: 0, attempt: 0, retryTimer: null, handshakeTimer: null };
      this.links.set(peer, link);
    }
    return link;
  }

  private clearLinkTimers(link: Link): void {
    if (link.retryTimer !== null) clearTimeout(link.retryTimer);
    if (link.handshakeTimer !== null) clearTimeout(link.handshakeTimer);
    link.retryTimer = null;
    link.handshakeTimer = null;
  }

  private connect(link: Link): void {
    if (this.state !== 'started') return;
    const address = this.addresses.get(link.peer);
    if (address === undefined) return;
    assert(link.channel === null, () => `node ${this.id}: dialing node ${link.peer} twice`);
    link.retryTimer = null;
    link.refusal = null;
    link.handshake = new DialerHandshake(this.identity, link.peer);
    const channel = this.dialTo(address);
    link.channel = channel;
    this.track(channel);
    channel.setFrameBytesMax(handshakeBytesMax);
    channel.setHandlers({
      onOpen: () => undefined,
      onFrame: (frame) => this.onOutboundFrame(link, channel, frame),
      onFramingError: (reason) => this.onOutboundBadFrame(link, channel, reason),
      onClose: (reason) => this.onOutboundClose(link, channel, reason),
    });
    const timeoutMs = this.bounds.handshakeTimeoutMs;
    link.handshakeTimer = setTimeout(() => {
      link.handshakeTimer = null;
      if (link.channel !== channel || link.open) return;
      this.failHandshake(link, channel, `no handshake with node ${link.peer} at ${channel.remote} within ${timeoutMs} ms`);
    }, timeoutMs);
  }

  private failHandshake(link: Link, channel: FrameChannel, reason: string, reply: Uint8Array | null = null): void {
    link.refusal = reason;
    this.counters.handshakesRefused += 1;
    this.emit({ type: 'refused', peer: link.peer, direction: 'outbound', remote: channel.remote, reason });
    if (reply === null) {
      channel.close(reason);
      return;
    }
    // Tell the acceptor why, so both sides log the reason.
    channel.writeOwned(reply);
    channel.closeAfterFlush(reason);
  }

  private onOutboundFrame(link: Link, channel: FrameChannel, frame: Uint8Array): void {
    if (link.channel !== channel || link.refusal !== null) return;
    if (link.open) {
      this.onOutboundBadFrame(link, channel, `node ${link.peer} sent a frame on this node's outbound connection`);
      return;
    }
    const step = (link.handshake as DialerHandshake).onFrame(frame);
    switch (step.kind) {
      case 'continue':
        channel.writeOwned(step.reply);
        return;
      case 'refused':
        this.failHandshake(link, channel, step.reason, step.reply);
        return;
      case 'accepted':
        this.onLinkOpen(link, channel);
        return;
    }
  }

  private onLinkOpen(link: Link, channel: FrameChannel): void {
    if (link.handshakeTimer !== null) clearTimeout(link.handshakeTimer);
    link.handshakeTimer = null;
    link.open = true;
    link.attempt = 0;
    link.handshake = null;
    this.counters.connectionsOpen += 1;
    this.counters.connectionsOpened += 1;
    this.emit({ type: 'connected', peer: link.peer, direction: 'outbound', remote: channel.remote });
    const queue = link.queue;
    link.queue = [];
    link.queuedBytes = 0;
    for (const frame of queue) {
      channel.writeOwned(frame);
      this.counters.bytesSent += frame.length;
    }
  }

  private onOutboundBadFrame(link: Link, channel: FrameChannel, reason: string): void {
    if (link.channel !== channel) return;
    this.counters.framesMalformed += 1;
    if (!link.open) link.refusal = reason;
    this.emit({ type: 'malformed', peer: link.peer, direction: 'outbound', remote: channel.remote, reason });
    channel.close(reason);
  }

  private onOutboundClose(link: Link, channel: FrameChannel, reason: string): void {
    if (link.channel !== channel) return;
    if (link.handshakeTimer !== null) clearTimeout(link.handshakeTimer);
    link.handshakeTimer = null;
    link.channel = null;
    link.handshake = null;
    if (link.open) {
      link.open = false;
      this.counters.connectionsOpen -= 1;
      this.emit({ type: 'disconnected', peer: link.peer, direction: 'outbound', remote: channel.remote, reason });
    } else if (link.refusal === null) {
      this.logger.debug({ node: this.id, transport: this.kind, peer: link.peer, remote: channel.remote, reason }, 'dial failed');
    }
    if (this.state !== 'started') return;
    const bounds = this.bounds;
    const ceiling = Math.min(bounds.reconnectDelayMsMax, bounds.reconnectDelayMsMin * 2 ** Math.min(link.attempt, 30));
    const delayMs = Math.max(1, Math.round(ceiling / 2 + (Math.random() * ceiling) / 2));
    link.attempt += 1;
    link.retryTimer = setTimeout(() => this.connect(link), delayMs);
  }

  // ---------------------------------------------------------------------------------------------
  // Inbound sessions.

  private onAccept(channel: FrameChannel): void {
    this.track(channel);
    if (this.state !== 'started') {
      channel.close('transport not running');
      return;
    }
    const session: InboundSession = {
      channel,
      handshake: new AcceptorHandshake(this.identity, (peer) => this.addresses.has(peer)),
      peer: null,
      reported: false,
      handshakeTimer: null,
    };
    this.sessions.add(session);
    channel.setFrameBytesMax(handshakeBytesMax);
    channel.setHandlers({
      onOpen: () => undefined,
      onFrame: (frame) => this.onInboundFrame(session, frame),
      onFramingError: (reason) => this.onInboundBadFrame(session, reason),
      onClose: (reason) => this.onInboundClose(session, reason),
    });
    channel.writeOwned(session.handshake.challenge());
    const timeoutMs = this.bounds.handshakeTimeoutMs;
    session.handshakeTimer = setTimeout(() => {
      session.handshakeTimer = null;
      if (session.peer !== null || session.reported) return;
      this.refuseSession(session, `no hello from ${channel.remote} within ${timeoutMs} ms`, null);
    }, timeoutMs);
  }

  private refuseSession(session: InboundSession, reason: string, peer: NodeId | null, reply: Uint8Array | null = null): void {
    session.reported = true;
    this.counters.handshakesRefused += 1;
    this.emit({ type: 'refused', peer, direction: 'inbound', remote: session.channel.remote, reason });
    if (reply !== null) {
      session.channel.writeOwned(reply);
      session.channel.closeAfterFlush(reason);
    } else {
      session.channel.close(reason);
    }
  }

  private onInboundFrame(session: InboundSession, frame: Uint8Array): void {
    if (session.reported) return;
    const peer = session.peer;
    if (peer === null) {
      const step = session.handshake.onFrame(frame);
      if (step.kind === 'accepted') this.onSessionOpen(session, step.peer, step.reply);
      else if (step.kind === 'refused') this.refuseSession(session, step.reason, step.peer, step.reply);
      else this.refuseSession(session, 'unexpected handshake step', null);
      return;
    }
    if (frameStatusOf(frame) === frameStatus.discard && checkFraming(frame).ok) {
      // The sender could not vouch for this copy (its socket held a view past send); a copy follows.
      this.counters.framesDiscarded += 1;
      return;
    }
    const result = decodeMessage(frame, { from: peer, to: this.id });
    if (!result.ok) {
      this.onInboundBadFrame(session, result.reason);
      return;
    }
    this.counters.messagesReceived += 1;
    this.counters.bytesReceived += frame.length;
    this.messageHandler(result.message);
  }

  private onSessionOpen(session: InboundSession, peer: NodeId, reply: Uint8Array | null): void {
    if (session.handshakeTimer !== null) clearTimeout(session.handshakeTimer);
    session.handshakeTimer = null;
    session.peer = peer;
    session.channel.setFrameBytesMax(this.bounds.frameBytesMax);
    if (reply !== null) session.channel.writeOwned(reply);
    const previous = this.sessionByPeer.get(peer);
    this.sessionByPeer.set(peer, session);
    this.counters.connectionsOpen += 1;
    this.counters.connectionsOpened += 1;
    this.emit({ type: 'connected', peer, direction: 'inbound', remote: session.channel.remote });
    // A peer that dials again (it restarted, or its old connection is half-open) replaces the old one.
    previous?.channel.close(`replaced by a newer connection from node ${peer}`);
  }

  private onInboundBadFrame(session: InboundSession, reason: string): void {
    if (session.reported) return;
    session.reported = true;
    this.counters.framesMalformed += 1;
    this.emit({ type: 'malformed', peer: session.peer, direction: 'inbound', remote: session.channel.remote, reason });
    session.channel.close(reason);
  }

  private onInboundClose(session: InboundSession, reason: string): void {
    if (session.handshakeTimer !== null) clearTimeout(session.handshakeTimer);
    session.handshakeTimer = null;
    this.sessions.delete(session);
    const peer = session.peer;
    if (peer === null) {
      if (!session.reported && this.state === 'started') {
        session.reported = true;
        this.counters.handshakesRefused += 1;
        this.emit({ type: 'refused', peer: null, direction: 'inbound', remote: session.channel.remote, reason: `closed before the handshake: ${reason}` });
      }
      return;
    }
    if (this.sessionByPeer.get(peer) === session) this.sessionByPeer.delete(peer);
    this.counters.connectionsOpen -= 1;
    this.emit({ type: 'disconnected', peer, direction: 'inbound' satisfies Direction, remote: session.channel.remote, reason });
  }
}
