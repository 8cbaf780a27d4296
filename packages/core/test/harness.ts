/**
 * A hand-driven cluster for the core's tests (like etcd's raft_test network): real RaftNodes,
 * messages held in a queue the test can inspect, drop, reorder or deliver; ticks by hand; crash and
 * restart from what the Ready contract says was persisted.
 */
import {
  type EntryFrames,
  EntryReader,
  type HardState,
  type Message,
  type NodeId,
  type RaftConfig,
  RaftNode,
  type ReadState,
  type RemoteMessage,
  type Snapshot,
  copyFrames,
  encodeEntry,
  entryKindCode,
  framesOf,
} from '../src/index.js';

export type Overrides = Partial<Omit<RaftConfig, 'id' | 'peers'>>;

/** What a node persisted, per the Ready contract. */
export interface Disk {
  hardState: HardState;
  entries: Uint8Array[]; // frames, index = base + position + 1
  base: number;
  snapshot: Snapshot | null;
}

export const encoder = new TextEncoder();
export const decoder = new TextDecoder();
export const bytes = (text: string): Uint8Array => encoder.encode(text);

export class Cluster {
  readonly nodes = new Map<NodeId, RaftNode>();
  readonly disks = new Map<NodeId, Disk>();
  /** Data of applied normal entries, per node, in order. */
  readonly applied = new Map<NodeId, string[]>();
  readonly readStates = new Map<NodeId, ReadState[]>();
  /** Messages sent and not yet delivered. */
  queue: RemoteMessage[] = [];
  /** Return false to drop a message on delivery. */
  filter: (m: RemoteMessage) => boolean = () => true;
  readonly crashed = new Set<NodeId>();
  private readonly reader = new EntryReader();

  constructor(
    readonly ids: readonly NodeId[],
    readonly overrides: Overrides = {},
    perNode: (id: NodeId) => Overrides = () => ({}),
  ) {
    for (const id of ids) {
      this.nodes.set(id, new RaftNode({ id, peers: ids, verify: true, seed: id, ...overrides, ...perNode(id) }));
      this.disks.set(id, { hardState: { term: 0, vote: 0, commit: 0 }, entries: [], base: 0, snapshot: null });
      this.applied.set(id, []);
      this.readStates.set(id, []);
    }
  }

  node(id: NodeId): RaftNode {
    const node = this.nodes.get(id);
    if (node === undefined) throw new Error(`no node ${id}`);
    return node;
  }

  /** Runs Ready cycles on every live node until none has work; outbound messages go to the queue. */
  settle(): void {
    for (let round = 0; round < 1000; round++) {
      let any = false;
      for (const id of this.ids) {
        if (this.crashed.has(id)) continue;
        const node = this.node(id);
        while (node.hasReady()) {
          any = true;
          this.handleReady(id, node);
        }
      }
      if (!any) return;
    }
    throw new Error('settle did not converge');
  }

  private handleReady(id: NodeId, node: RaftNode): void {
    const ready = node.ready();
    const disk = this.disks.get(id) as Disk;
    if (ready.snapshot !== null) {
      disk.snapshot = ready.snapshot;
      disk.base = ready.snapshot.index;
      disk.entries = [];
      this.applied.set(id, decodeSnapshot(ready.snapshot.data));
    }
    if (ready.hardState !== null) disk.hardState = ready.hardState;
    if (ready.entries.count > 0) {
      const keep = ready.entries.firstIndex - 1 - disk.base;
      disk.entries.length = Math.max(0, keep);
      this.reader.reset(ready.entries);
      while (this.reader.next()) disk.entries.push(this.reader.bytes.slice(this.reader.frameOffset, this.reader.frameOffset + this.reader.frameLength));
    }
    for (const m of ready.messages) this.queue.push(m.type === 'append' ? { ...m, entries: copyFrames(m.entries) } : m);
    this.reader.reset(ready.committedEntries);
    const log = this.applied.get(id) as string[];
    while (this.reader.next()) {
      if (this.reader.kind === entryKindCode.normal) log.push(decoder.decode(this.reader.data()));
    }
    for (const read of ready.readStates) (this.readStates.get(id) as ReadState[]).push(read);
    node.advance(ready);
  }

  /** Delivers queued messages (and everything they cause) until the network is quiet. */
  deliverAll(limit = 100_000): number {
    let delivered = 0;
    this.settle();
    while (this.queue.length > 0) {
      if (delivered++ > limit) throw new Error('deliverAll: too many messages');
      const m = this.queue.shift() as RemoteMessage;
      this.deliver(m);
      this.settle();
    }
    return delivered;
  }

  /** Delivers one message now (subject to the filter and crashes). */
  deliver(m: RemoteMessage): void {
    if (this.crashed.has(m.to) || this.crashed.has(m.from) || !this.filter(m)) return;
    this.node(m.to).step(m);
  }

  /** Takes the queued messages out (to inspect, reorder or drop them). */
  take(predicate: (m: RemoteMessage) => boolean = () => true): RemoteMessage[] {
    this.settle();
    const taken = this.queue.filter(predicate);
    this.queue = this.queue.filter((m) => !predicate(m));
    return taken;
  }

  /** Makes `id` campaign now and runs the election to completion. */
  elect(id: NodeId): void {
    this.step(id, { type: 'hup', from: id, to: id, term: 0, transfer: false });
    this.deliverAll();
  }

  step(id: NodeId, m: Message): void {
    this.node(id).step(m);
    this.settle();
  }

  tick(id: NodeId, times = 1): void {
    for (let i = 0; i < times; i++) {
      this.node(id).tick();
      this.settle();
    }
  }

  tickAll(times = 1): void {
    for (let i = 0; i < times; i++) {
      for (const id of this.ids) if (!this.crashed.has(id)) this.node(id).tick();
      this.settle();
    }
  }

  propose(id: NodeId, text: string): ReturnType<RaftNode['propose']> {
    const result = this.node(id).propose(bytes(text));
    this.settle();
    return result;
  }

  /** Partitions: messages between the two sides are dropped. */
  isolate(...ids: NodeId[]): void {
    const side = new Set(ids);
    this.filter = (m) => side.has(m.from) === side.has(m.to);
  }

  heal(): void {
    this.filter = () => true;
  }

  crash(id: NodeId): void {
    this.crashed.add(id);
    this.queue = this.queue.filter((m) => m.to !== id && m.from !== id);
  }

  /** Restarts a crashed node from its disk: volatile state is lost, persisted state survives. */
  restart(id: NodeId, overrides: Overrides = {}): RaftNode {
    const disk = this.disks.get(id) as Disk;
    const entries: EntryFrames = framesOf(disk.entries);
    const node = new RaftNode({
      id,
      peers: this.ids,
      verify: true,
      seed: id + 1000,
      ...this.overrides,
      ...overrides,
      restore: { hardState: disk.hardState, snapshot: disk.snapshot, entries },
    });
    this.nodes.set(id, node);
    this.crashed.delete(id);
    this.applied.set(id, disk.snapshot === null ? [] : decodeSnapshot(disk.snapshot.data));
    return node;
  }

  leaders(): NodeId[] {
    return this.ids.filter((id) => !this.crashed.has(id) && this.node(id).role === 'leader');
  }

  /** Terms of the entries of a node's log, from firstIndex. */
  logTerms(id: NodeId): number[] {
    const node = this.node(id);
    const terms: number[] = [];
    for (let i = node.firstIndex; i <= node.lastIndex; i++) terms.push(node.log.termAt(i));
    return terms;
  }
}

/** Test snapshots are the JSON list of applied strings. */
export function encodeSnapshot(applied: readonly string[]): Uint8Array {
  return encoder.encode(JSON.stringify(applied));
}

export function decodeSnapshot(data: Uint8Array): string[] {
  return data.length === 0 ? [] : (JSON.parse(decoder.decode(data)) as string[]);
}

/** A follower whose log has the given terms (index 1, 2, ...), restored from persisted state. */
export function nodeWithLog(id: number, terms: readonly number[], extra: object, peers: number[] = [1, 2, 3]): RaftNode {
  const frames = terms.map((term, i) => encodeFrame(term, `e${i + 1}`));
  let byteLength = 0;
  for (const frame of frames) byteLength += frame.length;
  const joined = new Uint8Array(byteLength);
  let at = 0;
  for (const frame of frames) {
    joined.set(frame, at);
    at += frame.length;
  }
  const lastTerm = terms.length === 0 ? 0 : (terms[terms.length - 1] as number);
  return new RaftNode({
    id,
    peers,
    verify: true,
    preVote: false,
    checkQuorum: false,
    ...extra,
    restore: {
      hardState: { term: lastTerm, vote: 0, commit: 0 },
      entries: { count: frames.length, slices: frames.length === 0 ? [] : [joined], byteLength },
    },
  });
}

function encodeFrame(term: number, text: string): Uint8Array {
  return encodeEntry(term, 'normal', new TextEncoder().encode(text));
}

