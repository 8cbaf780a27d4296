/**
 * In-process transport: MemoryTransports join a MemoryNetwork hub and hand message objects to each
 * other, for tests, the simulator-like harnesses and the memory benchmarks.
 *
 * Timing: send() enqueues; the hub delivers everything enqueued in one microtask (FIFO), so
 * messages a node sends during its Ready cycle arrive after that synchronous cycle has finished,
 * never re-entrantly inside send(), and before any later macrotask of the sender (its next turn,
 * its next tick). `network.flush()` delivers at once, for hand-driven tests.
 *
 * Handover, i.e. what the receiver gets (rule 2 of transport.ts):
 *
 *  - 'copy' (default): entries, snapshot data and proposal data are copied at send(); the receiver
 *    owns the message and may step it whenever it likes (the runtime queues inbound messages for
 *    its next turn). One memcpy per message, no per-entry work.
 *  - 'view': zero-copy. The receiver gets the sender's own message object and views of the sender's
 *    ring. Those bytes are only guaranteed until the sender's next mutation (its next step, propose,
 *    compaction), and delivery happening before the sender's next turn is not enough: a receiver that
 *    queues the message and steps it in its own later turn can observe bytes the sender has since
 *    overwritten (a compaction followed by a wrap, a truncation, a snapshot install all reuse ring
 *    space). So 'view' is for drivers that step each delivered message inside the handler, or that
 *    otherwise know the sender cannot mutate first (benchmarks measuring the zero-copy path, tests
 *    checking it). It is opt-in for that reason.
 *  - 'encode': every message is encoded with the wire codec and decoded (validated) on delivery, to
 *    measure codec cost or exercise it; the receiver owns the decoded views.
 *
 * Test hooks: `network.setFilter(m => 'deliver' | 'drop' | { delayMs })` drops (partitions) or
 * delays messages. A delayed message outlives the sender's turn, so its views are copied first
 * (copyFrames) whatever the handover.
 */
import { type NodeId, type RemoteMessage, assert, copyFrames } from '@raftlab/core';
import { decodeMessage, encodeMessage, joinFrame } from './codec.js';
import { type Logger, StatsCounter, type Transport, TransportError, type TransportEvent, type TransportStats, silentLogger } from './transport.js';

/** What a receiver gets: copies (default), the sender's views, or codec-decoded copies. */
export type MemoryHandover = 'copy' | 'view' | 'encode';

/** A filter's verdict on one message. */
export type MemoryVerdict = 'deliver' | 'drop' | { readonly delayMs: number };

/** Decides the fate of each message sent on a network (tests: partitions, delays). */
export type MemoryFilter = (message: RemoteMessage) => MemoryVerdict;

interface Pending {
  readonly message: RemoteMessage;
  readonly bytes: number;
  readonly sender: MemoryTransport;
}

/** The hub MemoryTransports join; owns the delivery queue and the filter. */
export class MemoryNetwork {
  private readonly members = new Map<NodeId, MemoryTransport>();
  private pending: Pending[] = [];
  private scheduled = false;
  private filter: MemoryFilter | null = null;

  /** Sets (or clears, with null) the filter applied to every message at send(). */
  setFilter(filter: MemoryFilter | null): void {
    this.filter = filter;
  }

  /** The filter's verdict on a message (deliver when none is set). */
  verdict(message: RemoteMessage): MemoryVerdict {
    return this.filter === null ? 'deliver' : this.filter(message);
  }

  /** Registers a transport under its id; throws if the id is taken. */
  join(transport: MemoryTransport): void {
    if (this.members.has(transport.id)) throw new TransportError('invalid-options', `node ${transport.id} already joined this network`);
    this.members.set(transport.id, transport);
  }

  /** Removes a transport (stop). */
  leave(transport: MemoryTransport): void {
    if (this.members.get(transport.id) === transport) this.members.delete(transport.id);
  }

  /** Queues a message for the next delivery round. */
  enqueue(entry: Pending): void {
    this.pending.push(entry);
    if (this.scheduled) return;
    this.scheduled = true;
    queueMicrotask(() => this.flush());
  }

  /** Delivers every queued message now, in order (including those its handlers send meanwhile). */
  flush(): void {
    this.scheduled = false;
    while (this.pending.length > 0) {
      const batch = this.pending;
      this.pending = [];
      for (const entry of batch) this.deliver(entry);
    }
  }

  /** Hands one message to its recipient, or counts it dropped when the recipient is not running. */
  deliver(entry: Pending): void {
    const target = this.members.get(entry.message.to);
    if (target === undefined || !target.accepts()) {
      entry.sender.countDropped();
      return;
    }
    target.receive(entry.message, entry.bytes);
  }
}

/** Options of a MemoryTransport. */
export interface MemoryTransportOptions {
  /** What the receiver gets (default 'copy'; see the module comment). */
  readonly handover?: MemoryHandover;
  /** A pino-compatible logger (default: silent). */
  readonly logger?: Logger;
}

function payloadBytes(message: RemoteMessage): number {
  switch (message.type) {
    case 'append':
      return message.entries.byteLength;
    case 'snapshot':
      return message.snapshot.data.length;
    case 'propose': {
      let total = 0;
      for (const data of message.data) total += data.length;
      return total;
    }
    default:
      return 0;
  }
}

/** A message whose views are replaced by copies: safe to hold past the sender's turn. */
export function copyMessage(message: RemoteMessage): RemoteMessage {
  switch (message.type) {
    case 'append':
      return message.entries.count === 0 ? message : { ...message, entries: copyFrames(message.entries) };
    case 'snapshot':
      return { ...message, snapshot: { ...message.snapshot, peers: [...message.snapshot.peers], data: message.snapshot.data.slice() } };
    case 'propose':
      return { ...message, data: message.data.map((data) => data.slice()) };
    default:
      return message;
  }
}

/** The in-process transport. */
export class MemoryTransport implements Transport {
  readonly handover: MemoryHandover;
  private readonly logger: Logger;
  private readonly counters = new StatsCounter();
  private readonly timers = new Set<NodeJS.Timeout>();
  private handler: (message: RemoteMessage) => void = () => undefined;
  private state: 'new' | 'started' | 'stopped' = 'new';

  constructor(
    private readonly network: MemoryNetwork,
    readonly id: NodeId,
    options: MemoryTransportOptions = {},
  ) {
    if (!Number.isSafeInteger(id) || id < 1) throw new TransportError('invalid-options', `id: expected a positive integer node id, got ${id}`);
    const handover = options.handover ?? 'copy';
    if (handover !== 'copy' && handover !== 'view' && handover !== 'encode') {
      throw new TransportError('invalid-options', `handover: expected 'copy', 'view' or 'encode', got ${String(handover)}`);
    }
    this.handover = handover;
    this.logger = options.logger ?? silentLogger;
    network.join(this);
  }

  start(): Promise<void> {
    if (this.state === 'stopped') return Promise.reject(new TransportError('stopped', `transport of node ${this.id} was stopped`));
    this.state = 'started';
    return Promise.resolve();
  }

  onMessage(handler: (message: RemoteMessage) => void): void {
    this.handler = handler;
  }

  /** Accepted for the interface; an in-process network has no connections to report. */
  onEvent(_handler: (event: TransportEvent) => void): void {}

  stats(): TransportStats {
    return this.counters.snapshot();
  }

  send(message: RemoteMessage): void {
    assert(message.from === this.id, () => `send: message from node ${message.from} handed to the transport of node ${this.id}`);
    assert(message.to !== this.id, () => `send: node ${this.id} sending ${message.type} to itself`);
    if (this.state === 'stopped') {
      this.counters.messagesDropped += 1;
      return;
    }
    const verdict = this.network.verdict(message);
    if (verdict === 'drop') {
      this.counters.messagesDropped += 1;
      return;
    }
    let outgoing: RemoteMessage;
    let bytes: number;
    switch (this.handover) {
      case 'view':
        outgoing = message;
        bytes = payloadBytes(message);
        break;
      case 'copy':
        outgoing = copyMessage(message);
        bytes = payloadBytes(message);
        break;
      case 'encode': {
        const frame = joinFrame(encodeMessage(message));
        const decoded = decodeMessage(frame, { from: this.id, to: message.to });
        assert(decoded.ok, () => `codec could not decode its own ${message.type}: ${decoded.ok ? '' : decoded.reason}`);
        outgoing = decoded.message;
        bytes = frame.length;
        break;
      }
    }
    this.counters.messagesSent += 1;
    this.counters.bytesSent += bytes;
    const entry: Pending = { message: outgoing, bytes, sender: this };
    if (verdict === 'deliver') {
      this.network.enqueue(entry);
      return;
    }
    // Held past this turn: the views must be copies (rule 1 of transport.ts).
    const held: Pending = this.handover === 'view' ? { ...entry, message: copyMessage(outgoing) } : entry;
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      this.network.deliver(held);
    }, Math.max(0, verdict.delayMs));
    this.timers.add(timer);
  }

  /** True while started (the network delivers only then). */
  accepts(): boolean {
    return this.state === 'started';
  }

  /** Called by the network. */
  receive(message: RemoteMessage, bytes: number): void {
    this.counters.messagesReceived += 1;
    this.counters.bytesReceived += bytes;
    this.handler(message);
  }

  /** Called by the network when a message from this transport found no running recipient. */
  countDropped(): void {
    this.counters.messagesDropped += 1;
  }

  stop(): Promise<void> {
    if (this.state !== 'stopped') {
      this.state = 'stopped';
      for (const timer of this.timers) clearTimeout(timer);
      this.counters.messagesDropped += this.timers.size;
      this.timers.clear();
      this.network.leave(this);
      this.logger.debug({ node: this.id, transport: 'memory' }, 'transport stopped');
    }
    return Promise.resolve();
  }
}
