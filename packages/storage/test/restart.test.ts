/**
 * Proves that WalStorage under a real RaftNode keeps the Ready contract end to end: a 3-node cluster
 * (hand-driven, like the core's test harness) persists every Ready through its own WalStorage before
 * sending, and after every node crashes losing whatever was not fsynced, nodes rebuilt from load() hold
 * the same logs, terms and votes and re-apply the same state; they elect a new leader and keep
 * committing. With compaction (§7) a restarted node resumes from its snapshot plus the entries after
 * it, and a follower brought up to date by InstallSnapshot persists the installed snapshot too.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { EntryReader, type NodeId, RaftNode, type RemoteMessage, copyFrames, entryKindCode } from '@raftlab/core';
import { WalStorage } from '../src/index.js';
import { decoder, encoder, recordingLogger, removeDirectory, temporaryDirectory } from './helpers.js';

let root = '';
beforeEach(() => {
  root = temporaryDirectory();
});
afterEach(() => {
  removeDirectory(root);
});

/** A hand-driven cluster whose nodes persist through WalStorage. */
class DiskCluster {
  readonly nodes = new Map<NodeId, RaftNode>();
  readonly storages = new Map<NodeId, WalStorage>();
  readonly applied = new Map<NodeId, string[]>();
  readonly crashed = new Set<NodeId>();
  queue: RemoteMessage[] = [];
  private readonly reader = new EntryReader();

  constructor(readonly ids: readonly NodeId[]) {}

  async start(id: NodeId): Promise<void> {
    const storage = await WalStorage.open(`${root}/node-${id}`, { segmentBytesMax: 16 * 1024, logger: recordingLogger() });
    const restore = await storage.load();
    const snapshot = restore?.snapshot ?? null;
    this.storages.set(id, storage);
    this.nodes.set(id, new RaftNode({ id, peers: this.ids, verify: true, seed: id + 100 * this.crashed.size, restore }));
    this.applied.set(id, snapshot === null ? [] : (JSON.parse(decoder.decode(snapshot.data)) as string[]));
    this.crashed.delete(id);
  }

  node(id: NodeId): RaftNode {
    return this.nodes.get(id) as RaftNode;
  }

  /** Ready cycles on every live node until none has work: persist, then send, then apply, then advance. */
  async settle(): Promise<void> {
    for (let round = 0; round < 1000; round++) {
      let any = false;
      for (const id of this.ids) {
        if (this.crashed.has(id)) continue;
        const node = this.node(id);
        while (node.hasReady()) {
          any = true;
          const ready = node.ready();
          await (this.storages.get(id) as WalStorage).save(ready);
          for (const message of ready.messages) this.queue.push(message.type === 'append' ? { ...message, entries: copyFrames(message.entries) } : message);
          const log = this.applied.get(id) as string[];
          if (ready.snapshot !== null) log.splice(0, log.length, ...(JSON.parse(decoder.decode(ready.snapshot.data)) as string[]));
          this.reader.reset(ready.committedEntries);
          while (this.reader.next()) if (this.reader.kind === entryKindCode.normal) log.push(decoder.decode(this.reader.data()));
          node.advance(ready);
        }
      }
      if (!any) return;
    }
    throw new Error('settle did not converge');
  }

  async deliverAll(): Promise<void> {
    await this.settle();
    for (let delivered = 0; this.queue.length > 0; delivered++) {
      if (delivered > 100_000) throw new Error('too many messages');
      const message = this.queue.shift() as RemoteMessage;
      if (!this.crashed.has(message.to) && !this.crashed.has(message.from)) this.node(message.to).step(message);
      await this.settle();
    }
  }

  async elect(id: NodeId): Promise<void> {
    this.node(id).step({ type: 'hup', from: id, to: id, term: 0, transfer: false });
    await this.deliverAll();
    expect(this.node(id).role).toBe('leader');
  }

  async propose(id: NodeId, count: number, tag: string): Promise<void> {
    for (let i = 0; i < count; i++) {
      const result = this.node(id).propose(encoder.encode(`${tag}-${i}`));
      expect(result.ok).toBe(true);
      if (i % 7 === 6) await this.deliverAll();
    }
    await this.deliverAll();
  }

  /** Takes a state machine snapshot at the applied index and stores it (what a runtime does). */
  async compact(id: NodeId): Promise<void> {
    const node = this.node(id);
    node.compact(node.appliedIndex, encoder.encode(JSON.stringify(this.applied.get(id))));
    const snapshot = node.latestSnapshot;
    if (snapshot !== null) await (this.storages.get(id) as WalStorage).saveSnapshot(snapshot);
  }

  /** Stops a node like a killed process, or like a power loss (what was not fsynced is gone). */
  async crash(id: NodeId, kind: 'process' | 'power' = 'power'): Promise<void> {
    this.crashed.add(id);
    this.queue = this.queue.filter((message) => message.to !== id && message.from !== id);
    await (this.storages.get(id) as WalStorage).simulateCrash({ loseUnsyncedBytes: kind === 'power' });
  }

  /** Index, term and data of every entry a node holds, plus its term and vote. */
  describe(id: NodeId): { term: number; vote: number; firstIndex: number; entries: string[] } {
    const node = this.node(id);
    const entries: string[] = [];
    for (let index = node.firstIndex; index <= node.lastIndex; index++) {
      entries.push(`${index}:${node.log.termAt(index)}:${decoder.decode(node.log.dataAt(index))}`);
    }
    return { term: node.term, vote: node.vote, firstIndex: node.firstIndex, entries };
  }

  async closeAll(): Promise<void> {
    for (const [id, storage] of this.storages) if (!this.crashed.has(id)) await storage.close();
  }
}

describe('RaftNode over WalStorage', () => {
  it('restarts every node of a killed cluster with the same log, term, vote and applied state', async () => {
    const cluster = new DiskCluster([1, 2, 3]);
    for (const id of cluster.ids) await cluster.start(id);
    await cluster.elect(1);
    await cluster.propose(1, 120, 'a');
    const before = new Map(cluster.ids.map((id) => [id, cluster.describe(id)]));
    const appliedBefore = new Map(cluster.ids.map((id) => [id, [...(cluster.applied.get(id) as string[])]]));
    expect(appliedBefore.get(1)).toHaveLength(120);
    for (const id of cluster.ids) await cluster.crash(id, 'process');
    for (const id of cluster.ids) await cluster.start(id);
    for (const id of cluster.ids) expect(cluster.describe(id), `node ${id}`).toEqual(before.get(id));
    await cluster.settle();
    for (const id of cluster.ids) expect(cluster.applied.get(id), `node ${id}`).toEqual(appliedBefore.get(id));
    await cluster.elect(2);
    await cluster.propose(2, 30, 'b');
    for (const id of cluster.ids) {
      expect(cluster.applied.get(id)).toHaveLength(150);
      expect(cluster.applied.get(id)?.slice(-1)).toEqual(['b-29']);
    }
    await cluster.closeAll();
  });

  it('after a power loss keeps every log and vote; the commit index, volatile (Figure 2), may lag until the new leader commits', async () => {
    const cluster = new DiskCluster([1, 2, 3]);
    for (const id of cluster.ids) await cluster.start(id);
    await cluster.elect(1);
    await cluster.propose(1, 120, 'a');
    const before = new Map(cluster.ids.map((id) => [id, cluster.describe(id)]));
    const appliedBefore = new Map(cluster.ids.map((id) => [id, [...(cluster.applied.get(id) as string[])]]));
    for (const id of cluster.ids) await cluster.crash(id, 'power');
    for (const id of cluster.ids) await cluster.start(id);
    // Entries, terms and votes were fsynced before any message depending on them left: all kept.
    for (const id of cluster.ids) expect(cluster.describe(id), `node ${id}`).toEqual(before.get(id));
    await cluster.settle();
    for (const id of cluster.ids) {
      const applied = cluster.applied.get(id) as string[];
      expect(applied, `node ${id}`).toEqual(appliedBefore.get(id)?.slice(0, applied.length));
    }
    await cluster.elect(2);
    await cluster.propose(2, 30, 'b');
    for (const id of cluster.ids) expect(cluster.applied.get(id), `node ${id}`).toEqual([...(appliedBefore.get(1) as string[]), ...Array.from({ length: 30 }, (_, i) => `b-${i}`)]);
    await cluster.closeAll();
  });

  it('resumes from a snapshot plus the entries after it, and persists a snapshot installed from the leader', async () => {
    const cluster = new DiskCluster([1, 2, 3]);
    for (const id of cluster.ids) await cluster.start(id);
    await cluster.elect(1);
    await cluster.propose(1, 40, 'a');
    await cluster.crash(3);
    await cluster.propose(1, 200, 'b');
    for (const id of [1, 2]) await cluster.compact(id);
    await cluster.propose(1, 10, 'c');
    expect(cluster.node(1).firstIndex).toBeGreaterThan(200);
    // Node 3 is far behind a compacted leader: it gets InstallSnapshot (§7) and persists it.
    await cluster.start(3);
    cluster.node(1).step({ type: 'beat', from: 1, to: 1, term: 0 });
    await cluster.deliverAll();
    await cluster.propose(1, 5, 'd');
    expect(cluster.applied.get(3)).toEqual(cluster.applied.get(1));
    expect((cluster.storages.get(3) as WalStorage).stats().snapshotIndex).toBeGreaterThan(200);
    const before = new Map(cluster.ids.map((id) => [id, cluster.describe(id)]));
    const appliedBefore = new Map(cluster.ids.map((id) => [id, [...(cluster.applied.get(id) as string[])]]));
    for (const id of cluster.ids) await cluster.crash(id, 'process');
    for (const id of cluster.ids) await cluster.start(id);
    for (const id of cluster.ids) expect(cluster.describe(id), `node ${id}`).toEqual(before.get(id));
    await cluster.settle();
    for (const id of cluster.ids) expect(cluster.applied.get(id), `node ${id}`).toEqual(appliedBefore.get(id));
    expect(cluster.applied.get(3)).toHaveLength(255);
    await cluster.closeAll();
  });
});
