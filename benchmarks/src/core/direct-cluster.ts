/**
 * A cluster of RaftNodes in one process with messages delivered directly (no transport): the
 * workload of the core throughput benchmark. Messages are stepped into their recipient in the
 * sender's turn, so AppendEntries hand over views of the leader's ring, as the memory transport
 * does. The state machine is a counter that reads one byte of every entry (so applying cannot be
 * optimized away) and the log is compacted every `compactEveryBatches` batches, as a long-running
 * service would, keeping the ring bounded.
 */
import { EntryReader, type NodeId, RaftNode, type RaftConfig } from '@raftlab/core';

/** Options of a direct cluster. */
export interface DirectClusterOptions {
  readonly nodes: number;
  /** Extra RaftNode config (bounds, verify...). */
  readonly config?: Partial<Omit<RaftConfig, 'id' | 'peers'>>;
  /** Compact every node's log after this many batches (0: never). */
  readonly compactEveryBatches?: number;
}

const snapshotBytes = new Uint8Array(8);

/** An in-process cluster driven by direct message delivery. */
export class DirectCluster {
  readonly nodes: RaftNode[];
  private readonly byId = new Map<NodeId, RaftNode>();
  private readonly reader = new EntryReader();
  private batches = 0;
  private readonly compactEveryBatches: number;
  /** Entries applied, summed over nodes. */
  applied = 0;
  /** Messages delivered. */
  messages = 0;
  /** Bytes of entries carried by AppendEntries. */
  entryBytesSent = 0;
  /** Sum of one data byte per applied entry: printed so the work cannot be optimized away. */
  checksum = 0;

  constructor(options: DirectClusterOptions) {
    const ids = Array.from({ length: options.nodes }, (_, i) => i + 1);
    this.nodes = ids.map((id) => new RaftNode({ id, peers: ids, ...options.config }));
    for (const node of this.nodes) this.byId.set(node.id, node);
    this.compactEveryBatches = options.compactEveryBatches ?? 64;
  }

  /** The first node, once elected. */
  get leader(): RaftNode {
    return this.nodes[0] as RaftNode;
  }

  /** Elects node 1 and replicates its empty entry everywhere. */
  electFirst(): void {
    this.leader.step({ type: 'hup', from: 1, to: 1, term: 0, transfer: false });
    this.pump();
    if (this.leader.role !== 'leader') throw new Error(`node 1 is ${this.leader.role} after its election`);
  }

  /** Runs Ready cycles and delivers messages until no node has work. */
  pump(): void {
    const reader = this.reader;
    let any = true;
    while (any) {
      any = false;
      for (const node of this.nodes) {
        if (!node.hasReady()) continue;
        any = true;
        const ready = node.ready();
        // Persistence is a no-op (memory); apply, then deliver in the sender's turn.
        reader.reset(ready.committedEntries);
        let checksum = this.checksum;
        let applied = 0;
        while (reader.next()) {
          applied += 1;
          if (reader.dataLength > 0) checksum = (checksum + (reader.bytes[reader.dataOffset] as number)) | 0;
        }
        this.checksum = checksum;
        this.applied += applied;
        const messages = ready.messages;
        for (let i = 0; i < messages.length; i++) {
          const message = messages[i]!;
          if (message.type === 'append') this.entryBytesSent += message.entries.byteLength;
          (this.byId.get(message.to) as RaftNode).step(message);
        }
        this.messages += messages.length;
        node.advance(ready);
      }
    }
  }

  /** Proposes `count` entries of `payload` at the leader, then runs until all are applied everywhere. */
  runBatch(count: number, payload: Uint8Array): void {
    const leader = this.leader;
    for (let i = 0; i < count; i++) {
      const result = leader.propose(payload);
      if (!result.ok) throw new Error(`proposal refused: ${result.reason}`);
    }
    this.pump();
    this.batches += 1;
    if (this.compactEveryBatches > 0 && this.batches % this.compactEveryBatches === 0) {
      for (const node of this.nodes) node.compact(node.appliedIndex, snapshotBytes);
    }
  }
}
