/**
 * The memory transport: delivery is asynchronous (never inside send) and in order; 'view' handover
 * is zero-copy (a delivered append's entries are the very slices of the sender's ring), 'copy' and
 * 'encode' hand over bytes the receiver owns (mutating the sender's bytes after send changes
 * nothing); the filter drops (partitions) and delays, and delayed messages are copies; stopped
 * nodes receive nothing. A three-node RaftNode cluster elects a leader and commits entries through
 * it in every handover mode, with view handover shown zero-copy on real ring buffers.
 */
import { EntryReader, type NodeId, RaftNode, type RemoteMessage, encodeEntry, entryKindCode, framesOf } from '@raftlab/core';
import { afterEach, describe, expect, test } from 'vitest';
import { type MemoryHandover, MemoryNetwork, MemoryTransport } from '../src/index.js';
import { normalize, waitFor } from './helpers.js';

const transports: MemoryTransport[] = [];
afterEach(async () => {
  await Promise.all(transports.splice(0).map((transport) => transport.stop()));
});

function pair(handover: MemoryHandover, network = new MemoryNetwork()): { network: MemoryNetwork; a: MemoryTransport; b: MemoryTransport; inbox: RemoteMessage[] } {
  const a = new MemoryTransport(network, 1, { handover });
  const b = new MemoryTransport(network, 2, { handover });
  transports.push(a, b);
  const inbox: RemoteMessage[] = [];
  b.onMessage((message) => inbox.push(message));
  return { network, a, b, inbox };
}

function appendOver(ring: Uint8Array, term = 2): RemoteMessage {
  const entries = framesOf([encodeEntry(term, 'normal', new Uint8Array([1, 2, 3])), encodeEntry(term, 'normal', new Uint8Array([4]))]);
  ring.set(entries.slices[0] as Uint8Array, 0);
  const view = ring.subarray(0, entries.byteLength);
  return { type: 'append', from: 1, to: 2, term, prevIndex: 0, prevTerm: 0, commit: 0, entries: { count: 2, byteLength: entries.byteLength, slices: [view] } };
}

describe('memory transport', () => {
  test('delivery is asynchronous, in order, after the sending turn', async () => {
    const { a, b, inbox } = pair('copy');
    await Promise.all([a.start(), b.start()]);
    for (let i = 1; i <= 3; i++) a.send({ type: 'heartbeat', from: 1, to: 2, term: i, commit: 0, context: null });
    expect(inbox).toHaveLength(0);
    await Promise.resolve();
    expect(inbox.map((message) => message.term)).toEqual([1, 2, 3]);
    expect(a.stats()).toMatchObject({ messagesSent: 3 });
    expect(b.stats()).toMatchObject({ messagesReceived: 3 });
  });

  test("'view' handover is zero-copy: the delivered slices are the sender's own views", async () => {
    const { a, b, inbox } = pair('view');
    await Promise.all([a.start(), b.start()]);
    const ring = new Uint8Array(1024);
    const message = appendOver(ring);
    a.send(message);
    await Promise.resolve();
    const delivered = inbox[0];
    expect(delivered).toBe(message);
    expect(delivered?.type === 'append' && delivered.entries.slices[0]?.buffer).toBe(ring.buffer);
  });

  test("'copy' and 'encode' handovers give the receiver bytes the sender can no longer change", async () => {
    for (const handover of ['copy', 'encode'] as const) {
      const { a, b, inbox } = pair(handover);
      await Promise.all([a.start(), b.start()]);
      const ring = new Uint8Array(1024);
      const message = appendOver(ring);
      const before = normalize(message);
      a.send(message);
      ring.fill(0xee); // the sender reuses its ring space right after send
      await Promise.resolve();
      const delivered = inbox[0] as RemoteMessage;
      expect(delivered.type === 'append' && delivered.entries.slices[0]?.buffer, handover).not.toBe(ring.buffer);
      expect(normalize(delivered), handover).toEqual(before);
      await Promise.all([a.stop(), b.stop()]);
    }
  });

  test("'encode' handover counts encoded frame bytes", async () => {
    const { a, b } = pair('encode');
    await Promise.all([a.start(), b.start()]);
    a.send({ type: 'timeoutNow', from: 1, to: 2, term: 1 });
    await Promise.resolve();
    expect(a.stats().bytesSent).toBeGreaterThan(9);
    expect(b.stats().bytesReceived).toBe(a.stats().bytesSent);
  });

  test('the filter drops messages (a partition) and counts them', async () => {
    const { network, a, b, inbox } = pair('copy');
    await Promise.all([a.start(), b.start()]);
    network.setFilter((message) => (message.term % 2 === 0 ? 'drop' : 'deliver'));
    for (let i = 1; i <= 4; i++) a.send({ type: 'timeoutNow', from: 1, to: 2, term: i });
    await Promise.resolve();
    expect(inbox.map((message) => message.term)).toEqual([1, 3]);
    expect(a.stats().messagesDropped).toBe(2);
  });

  test('a delayed message arrives later, as a copy even in view handover', async () => {
    const { network, a, b, inbox } = pair('view');
    await Promise.all([a.start(), b.start()]);
    network.setFilter(() => ({ delayMs: 20 }));
    const ring = new Uint8Array(256);
    const message = appendOver(ring);
    const before = normalize(message);
    a.send(message);
    ring.fill(0xaa);
    await new Promise((resolve) => setTimeout(resolve, 5));
    expect(inbox).toHaveLength(0);
    await waitFor(() => inbox.length === 1, 'the delayed message');
    expect(normalize(inbox[0] as RemoteMessage)).toEqual(before);
  });

  test('a stopped node receives nothing and the sender counts the drop', async () => {
    const { a, b, inbox } = pair('copy');
    await Promise.all([a.start(), b.start()]);
    await b.stop();
    a.send({ type: 'timeoutNow', from: 1, to: 2, term: 1 });
    await Promise.resolve();
    expect(inbox).toHaveLength(0);
    expect(a.stats().messagesDropped).toBe(1);
  });

  test('network.flush() delivers at once, for hand-driven tests', async () => {
    const { network, a, b, inbox } = pair('copy');
    await Promise.all([a.start(), b.start()]);
    a.send({ type: 'timeoutNow', from: 1, to: 2, term: 1 });
    network.flush();
    expect(inbox).toHaveLength(1);
  });

  test('a node id joins a network once', () => {
    const network = new MemoryNetwork();
    transports.push(new MemoryTransport(network, 1));
    expect(() => new MemoryTransport(network, 1)).toThrow(/already joined/);
  });
});

/**
 * A minimal driver: steps each delivered message at once (the node is never inside a Ready cycle
 * then, since cycles run synchronously), then runs Ready cycles: send, count applied, advance.
 */
async function runCluster(handover: MemoryHandover, proposals: number): Promise<{ applied: Map<NodeId, number>; viewsOfLeaderRing: number; appendsSeen: number }> {
  const ids = [1, 2, 3];
  const network = new MemoryNetwork();
  const nodes = new Map<NodeId, RaftNode>();
  const applied = new Map<NodeId, number>(ids.map((id) => [id, 0]));
  const reader = new EntryReader();
  let viewsOfLeaderRing = 0;
  let appendsSeen = 0;
  const cycle = (id: NodeId): void => {
    const node = nodes.get(id) as RaftNode;
    const transport = transports.find((t) => t.id === id) as MemoryTransport;
    while (node.hasReady()) {
      const ready = node.ready();
      for (const message of ready.messages) transport.send(message);
      reader.reset(ready.committedEntries);
      while (reader.next()) if (reader.kind === entryKindCode.normal) applied.set(id, (applied.get(id) as number) + 1);
      node.advance(ready);
    }
  };
  for (const id of ids) {
    const node = new RaftNode({ id, peers: ids, verify: true, electionTimeoutTicks: 10, heartbeatTicks: 1 });
    nodes.set(id, node);
    const transport = new MemoryTransport(network, id, { handover });
    transports.push(transport);
    transport.onMessage((message) => {
      if (message.type === 'append' && message.entries.count > 0) {
        appendsSeen += 1;
        const sender = nodes.get(message.from) as RaftNode;
        if (message.entries.slices.every((slice) => slice.buffer === sender.log.buffer)) viewsOfLeaderRing += 1;
      }
      node.step(message);
      cycle(id);
    });
    await transport.start();
  }
  const leader = nodes.get(1) as RaftNode;
  for (let tick = 0; tick < 100 && leader.role !== 'leader'; tick++) {
    leader.tick();
    cycle(1);
    await new Promise((resolve) => setImmediate(resolve));
  }
  expect(leader.role).toBe('leader');
  for (let i = 0; i < proposals; i++) {
    expect(leader.propose(new Uint8Array([i & 0xff, i >> 8])).ok).toBe(true);
    if (i % 50 === 49) {
      cycle(1);
      await new Promise((resolve) => setImmediate(resolve));
    }
  }
  cycle(1);
  await waitFor(() => ids.every((id) => applied.get(id) === proposals), `all ${proposals} proposals applied on every node`);
  return { applied, viewsOfLeaderRing, appendsSeen };
}

describe('a RaftNode cluster over the memory transport', () => {
  test.each(['view', 'copy', 'encode'] as const)("commits 1,000 proposals on every node with '%s' handover", async (handover) => {
    const { viewsOfLeaderRing, appendsSeen } = await runCluster(handover, 1000);
    expect(appendsSeen).toBeGreaterThan(0);
    if (handover === 'view') expect(viewsOfLeaderRing).toBe(appendsSeen);
    else expect(viewsOfLeaderRing).toBe(0);
  });
});
