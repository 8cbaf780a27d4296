/**
 * The simulated network: every message waits in a per-tick bucket until its delivery tick. It loses,
 * delays, duplicates and reorders messages per its NetworkProfile; partitions block directed links
 * (checked at delivery, so messages already in flight are cut too); a clogged link holds messages
 * until it clears. Client requests and replies travel the same way but ignore partitions: clients
 * are outside the cluster.
 *
 * The zero-copy rule (DESIGN.md): an AppendEntries message carries views of the sender's log ring,
 * valid only until the sender's next mutation. Whatever holds a message past the current turn must
 * copy its entries, so `send` copies them with copyFrames. The planted `keepEntryViews` switch
 * keeps the raw views instead, to prove the checkers notice when a ring reuses the bytes under them.
 */
import { type NodeId, type Prng, type ProposeRefusal, type RemoteMessage, assert, copyFrames } from '@raftlab/core';
import type { NetworkProfile } from './profile.js';

/** A client's command on its way to a node. */
export interface ClientRequest {
  readonly kind: 'request';
  readonly to: NodeId;
  readonly clientId: number;
  readonly sequence: number;
  readonly data: Uint8Array;
}

/** A node's answer to a client: done (applied) or refused (retry elsewhere). */
export interface ClientReply {
  readonly kind: 'reply';
  readonly from: NodeId;
  readonly clientId: number;
  readonly sequence: number;
  readonly done: boolean;
  /** On a refusal: why (too-large is final; anything else is worth a retry). */
  readonly refusal: ProposeRefusal | null;
  /** On a refusal: the leader the node knows of (0: none). */
  readonly leaderHint: NodeId;
}

/** A Raft message in flight. */
export interface RaftEnvelope {
  readonly kind: 'raft';
  readonly message: RemoteMessage;
}

/** Anything the network carries. */
export type Envelope = RaftEnvelope | ClientRequest | ClientReply;

/** Counters the summary reports. */
export interface NetworkStats {
  /** Raft messages handed to the network. */
  raftSent: number;
  /** Raft messages lost to the loss rate. */
  raftLost: number;
  /** Raft messages dropped at delivery by a partition or a crashed recipient. */
  raftBlocked: number;
  /** Raft messages delivered (duplicates count twice). */
  raftDelivered: number;
}

/** Bound on envelopes delivered in one tick: more means a message storm (a livelock bug). */
export const deliveriesPerTickMax = 1_000_000;

export class SimNetwork {
  /** Delivery tick -> envelopes, in send order. */
  private readonly buckets = new Map<number, Envelope[]>();
  /** Directed link from -> to is cut, at (from - 1) * nodeCount + (to - 1). */
  private readonly blocked: Uint8Array;
  /** Directed link is clogged until this tick. */
  private readonly clogUntil: Float64Array;
  private blockedCount = 0;
  /** Envelopes waiting. */
  private pending = 0;
  readonly stats: NetworkStats = { raftSent: 0, raftLost: 0, raftBlocked: 0, raftDelivered: 0 };

  constructor(
    readonly nodeCount: number,
    private readonly prng: Prng,
    public profile: NetworkProfile,
    private readonly keepEntryViews: boolean,
  ) {
    this.blocked = new Uint8Array(nodeCount * nodeCount);
    this.clogUntil = new Float64Array(nodeCount * nodeCount);
  }

  /** Envelopes in flight. */
  get inFlight(): number {
    return this.pending;
  }

  /** True when any link is cut. */
  get partitioned(): boolean {
    return this.blockedCount > 0;
  }

  private link(from: NodeId, to: NodeId): number {
    return (from - 1) * this.nodeCount + (to - 1);
  }

  /** Cuts (or restores) the directed link from -> to. */
  setBlocked(from: NodeId, to: NodeId, cut: boolean): void {
    if (from === to) return;
    const link = this.link(from, to);
    const was = this.blocked[link] === 1;
    if (was === cut) return;
    this.blocked[link] = cut ? 1 : 0;
    this.blockedCount += cut ? 1 : -1;
  }

  /** True when from -> to is cut. */
  isBlocked(from: NodeId, to: NodeId): boolean {
    return this.blocked[this.link(from, to)] === 1;
  }

  /** Holds every message on from -> to until `untilTick`. */
  clog(from: NodeId, to: NodeId, untilTick: number): void {
    if (from === to) return;
    const link = this.link(from, to);
    this.clogUntil[link] = Math.max(this.clogUntil[link] as number, untilTick);
  }

  /** Restores every link and clears every clog (messages already held keep their delivery tick). */
  healLinks(): void {
    this.blocked.fill(0);
    this.blockedCount = 0;
    this.clogUntil.fill(0);
  }

  private delay(): number {
    const profile = this.profile;
    const prng = this.prng;
    let ticks = profile.delayTicks;
    if (profile.delaySpreadTicks > 0) ticks += prng.nextInt(profile.delaySpreadTicks + 1);
    if (prng.chance(profile.reorderRate)) ticks += prng.nextRange(1, profile.reorderTicksMax);
    if (prng.chance(profile.longDelayRate)) ticks += prng.nextRange(1, profile.longDelayTicksMax);
    return ticks;
  }

  private enqueue(tick: number, envelope: Envelope): void {
    let bucket = this.buckets.get(tick);
    if (bucket === undefined) {
      bucket = [];
      this.buckets.set(tick, bucket);
    }
    bucket.push(envelope);
    this.pending += 1;
  }

  /**
   * Sends a Raft message at tick `now`: lost, or delivered once or twice after a delay. Entries are
   * copied first: the message outlives the sender's turn (unless the planted switch is on).
   */
  sendRaft(message: RemoteMessage, now: number): 'lost' | 'sent' {
    this.stats.raftSent += 1;
    if (this.prng.chance(this.profile.lossRate)) {
      this.stats.raftLost += 1;
      return 'lost';
    }
    const held: RemoteMessage =
      message.type === 'append' && message.entries.count > 0 && !this.keepEntryViews ? { ...message, entries: copyFrames(message.entries) } : message;
    const copies = this.prng.chance(this.profile.duplicateRate) ? 2 : 1;
    const clogged = this.clogUntil[this.link(message.from, message.to)] as number;
    for (let i = 0; i < copies; i++) {
      this.enqueue(Math.max(now + this.delay(), clogged), { kind: 'raft', message: held });
    }
    return 'sent';
  }

  /** Sends a client request or reply at tick `now`: lost at the loss rate, else delayed. */
  sendClient(envelope: ClientRequest | ClientReply, now: number): void {
    if (this.prng.chance(this.profile.lossRate)) return;
    this.enqueue(now + this.delay(), envelope);
  }

  /**
   * Takes the envelopes due at `now`, in order, calling `deliver` for each (it may send more, with
   * delay 0 landing in this same bucket). Raft messages on a cut link are dropped here.
   */
  deliverDue(now: number, deliver: (envelope: Envelope) => void): void {
    const bucket = this.buckets.get(now);
    if (bucket === undefined) return;
    for (let i = 0; i < bucket.length; i++) {
      assert(i < deliveriesPerTickMax, () => `tick ${now}: more than ${deliveriesPerTickMax} deliveries (message storm)`);
      const envelope = bucket[i] as Envelope;
      this.pending -= 1;
      if (envelope.kind === 'raft') {
        const m = envelope.message;
        if (this.blocked[this.link(m.from, m.to)] === 1) {
          this.stats.raftBlocked += 1;
          continue;
        }
      }
      deliver(envelope);
    }
    this.buckets.delete(now);
  }

  /** Counts a Raft message delivered, or dropped because its recipient is down. */
  countDelivery(delivered: boolean): void {
    if (delivered) this.stats.raftDelivered += 1;
    else this.stats.raftBlocked += 1;
  }
}
