/**
 * The TCP and WebSocket transports, on real sockets on 127.0.0.1 (ephemeral ports), each claim
 * checked for both: three nodes exchange every message type intact; the handshake refuses a wrong
 * secret, another cluster, another protocol version and an unknown node id, with the reason
 * logged on both sides; a silent stranger is cut off at the handshake timeout; an oversized frame
 * and a garbage frame each close only their own connection while the node keeps exchanging with
 * its peers; a restarted peer is reconnected to; a bounded send queue drops what does not fit,
 * counts it, and delivers the rest once connected.
 */
import { type NodeId, Prng, type RemoteMessage } from '@raftlab/core';
import { afterEach, describe, expect, test } from 'vitest';
import { WebSocket } from 'ws';
import { type SocketTransport, type TransportEvent, encodeMessage, joinFrame, webSocketPath } from '../src/index.js';
import { type RogueConnection, garbageFrame, openRogueConnection, randomMessage } from '../src/testing.js';
import { type MeshNode, type SocketKind, closedPort, clusterId, createTransport, normalize, recordingLogger, secret, startMesh, waitFor } from './helpers.js';

const running: SocketTransport[] = [];
const rogues: RogueConnection[] = [];

afterEach(async () => {
  for (const rogue of rogues.splice(0)) rogue.close();
  await Promise.all(running.splice(0).map((transport) => transport.stop()));
});

async function mesh(kind: SocketKind, ids: readonly NodeId[], options = {}, extraPeers = new Map<NodeId, { host: string; port: number }>()): Promise<Map<NodeId, MeshNode>> {
  const nodes = await startMesh(kind, ids, options, extraPeers);
  for (const node of nodes.values()) running.push(node.transport);
  return nodes;
}

function get(nodes: Map<NodeId, MeshNode>, id: NodeId): MeshNode {
  const node = nodes.get(id);
  if (node === undefined) throw new Error(`no node ${id}`);
  return node;
}

/** Sends one heartbeat each way between 1, 2 and 3 and waits until all arrive. */
async function expectMeshServing(nodes: Map<NodeId, MeshNode>, ids: readonly NodeId[], term: number): Promise<void> {
  const before = new Map(ids.map((id) => [id, get(nodes, id).received.length]));
  for (const from of ids) for (const to of ids) if (from !== to) get(nodes, from).transport.send({ type: 'heartbeat', from, to, term, commit: 0, context: `t${term}` });
  await waitFor(
    () => ids.every((id) => get(nodes, id).received.length - (before.get(id) as number) === ids.length - 1),
    `heartbeats of term ${term} among ${ids.join(',')}`,
  );
}

/** Checks that `reason` was logged at warn level by `node` (the transports log every refusal). */
function expectLogged(node: MeshNode, reason: string): void {
  expect(node.logger.lines.some((line) => line.level === 'warn' && line.fields.reason === reason && line.message.includes(reason)), node.logger.text()).toBe(true);
}

function refusalsOf(events: readonly TransportEvent[]): string[] {
  return events.filter((event) => event.type === 'refused').map((event) => (event.type === 'refused' ? event.reason : ''));
}

describe.each(['tcp', 'ws'] as const)('%s transport', (kind) => {
  test('three nodes exchange every message type, each arriving exactly as sent', async () => {
    const ids = [1, 2, 3];
    const nodes = await mesh(kind, ids);
    const prng = new Prng(kind === 'tcp' ? 11 : 12);
    const sent = new Map<NodeId, unknown[]>(ids.map((id) => [id, []]));
    for (let round = 0; round < 40; round++) {
      for (const from of ids) {
        for (const to of ids) {
          if (from === to) continue;
          const message = randomMessage(prng, { from, to, entryCountMax: 200, dataBytesMax: 300 });
          (sent.get(to) as unknown[]).push(normalize(message)); // before send: the bytes as they were
          get(nodes, from).transport.send(message);
        }
      }
    }
    await waitFor(() => ids.every((id) => get(nodes, id).received.length === 80), 'every message delivered');
    for (const id of ids) {
      const received = get(nodes, id).received.map(normalize);
      const bySender = (messages: unknown[], from: NodeId): unknown[] => messages.filter((message) => (message as RemoteMessage).from === from);
      for (const from of ids) if (from !== id) expect(bySender(received, from)).toEqual(bySender(sent.get(id) as unknown[], from));
      expect(get(nodes, id).transport.stats()).toMatchObject({ messagesReceived: 80, messagesSent: 80, messagesDropped: 0, framesMalformed: 0, connectionsOpen: 4 });
    }
  });

  describe('the handshake refuses, with a logged reason on both sides', () => {
    async function victim(): Promise<{ node: MeshNode; port: number }> {
      const logger = recordingLogger();
      const transport = createTransport(kind, { id: 1, logger, peers: new Map([[2, { host: '127.0.0.1', port: await closedPort() }]]) });
      running.push(transport);
      const node: MeshNode = { transport, received: [], events: [], logger };
      transport.onEvent((event) => node.events.push(event));
      await transport.start();
      return { node, port: transport.address().port };
    }

    async function dialer(id: NodeId, port: number, options: object): Promise<MeshNode> {
      const logger = recordingLogger();
      const transport = createTransport(kind, { id, logger, peers: new Map([[1, { host: '127.0.0.1', port }]]), ...options });
      running.push(transport);
      const node: MeshNode = { transport, received: [], events: [], logger };
      transport.onEvent((event) => node.events.push(event));
      await transport.start();
      return node;
    }

    test('a wrong cluster secret', async () => {
      const { node, port } = await victim();
      const impostor = await dialer(2, port, { secret: 'not-the-cluster-secret' });
      await waitFor(() => refusalsOf(node.events).length > 0 && refusalsOf(impostor.events).length > 0, 'refusals');
      expect(refusalsOf(node.events)[0]).toBe('node 2 failed the proof (wrong cluster secret?)');
      expect(refusalsOf(impostor.events)[0]).toBe('refused by the peer: node 2 failed the proof (wrong cluster secret?)');
      expectLogged(node, 'node 2 failed the proof (wrong cluster secret?)');
      expectLogged(impostor, 'refused by the peer: node 2 failed the proof (wrong cluster secret?)');
      expect(node.transport.stats()).toMatchObject({ handshakesRefused: expect.any(Number), connectionsOpened: 0 });
      expect(node.transport.stats().handshakesRefused).toBeGreaterThan(0);
    });

    test('another cluster id', async () => {
      const { node, port } = await victim();
      const stranger = await dialer(2, port, { clusterId: 'other-cluster' });
      await waitFor(() => refusalsOf(node.events).length > 0 && refusalsOf(stranger.events).length > 0, 'refusals');
      expect(refusalsOf(node.events)[0]).toBe(`cluster id "other-cluster", this node is in "${clusterId}"`);
      expect(refusalsOf(stranger.events)[0]).toMatch(/^refused by the peer: cluster id "other-cluster"/);
      expectLogged(node, `cluster id "other-cluster", this node is in "${clusterId}"`);
      expect(node.transport.stats().connectionsOpened).toBe(0);
    });

    test('another protocol version', async () => {
      const { node, port } = await victim();
      const newer = await dialer(2, port, { protocolVersion: 2 });
      await waitFor(() => refusalsOf(node.events).length > 0 && refusalsOf(newer.events).length > 0, 'refusals');
      expect(refusalsOf(newer.events)[0]).toBe('peer sent protocol version 1, this node speaks 2');
      expect(refusalsOf(node.events)[0]).toBe('protocol version 2, this node speaks 1');
      expectLogged(node, 'protocol version 2, this node speaks 1');
      expectLogged(newer, 'peer sent protocol version 1, this node speaks 2');
      expect(node.transport.stats().connectionsOpened).toBe(0);
    });

    test('an unknown node id', async () => {
      const { node, port } = await victim();
      const unknown = await dialer(9, port, {});
      await waitFor(() => refusalsOf(node.events).length > 0 && refusalsOf(unknown.events).length > 0, 'refusals');
      expect(refusalsOf(node.events)[0]).toBe('unknown node id 9');
      expect(refusalsOf(unknown.events)[0]).toBe('refused by the peer: unknown node id 9');
      expectLogged(node, 'unknown node id 9');
    });

    test('a stranger that never says hello, at the handshake timeout', async () => {
      const logger = recordingLogger();
      const transport = createTransport(kind, { id: 1, logger, bounds: { handshakeTimeoutMs: 100 } });
      running.push(transport);
      const events: TransportEvent[] = [];
      transport.onEvent((event) => events.push(event));
      await transport.start();
      const silent = await openRogueConnection(kind, transport.address(), null);
      rogues.push(silent);
      await silent.closed;
      expect(refusalsOf(events)[0]).toMatch(/^no hello from 127\.0\.0\.1:\d+ within 100 ms$/);
    });
  });

  test('an oversized frame closes only that connection; the node keeps serving its peers', async () => {
    const rogueAddress = { host: '127.0.0.1', port: await closedPort() };
    const nodes = await mesh(kind, [1, 2, 3], { bounds: { frameBytesMax: 65536, sendQueueBytesMax: 1 << 20 } }, new Map([[4, rogueAddress]]));
    const victim = get(nodes, 1);
    const opened = victim.transport.stats().connectionsOpened;
    const rogue = await openRogueConnection(kind, victim.transport.address(), { clusterId, secret, id: 4, peer: 1 });
    rogues.push(rogue);
    await waitFor(() => victim.transport.stats().connectionsOpen === 5, 'the rogue authenticated');
    if (kind === 'tcp') {
      rogue.write(new Uint8Array([0x00, 0x10, 0x00, 0x00])); // a 1 MiB length prefix
    } else {
      rogue.write(new Uint8Array(100_000)); // above maxPayload
    }
    await rogue.closed;
    await waitFor(() => victim.transport.stats().framesMalformed === 1, 'the malformed count');
    const malformed = victim.events.filter((event) => event.type === 'malformed');
    expect(malformed).toHaveLength(1);
    expect(malformed[0]).toMatchObject({ peer: 4, direction: 'inbound' });
    expect(malformed[0]?.type === 'malformed' && malformed[0].reason).toMatch(/exceeds the 65536-byte bound/);
    expect(victim.logger.lines.some((line) => line.level === 'warn' && /exceeds the 65536-byte bound/.test(line.message))).toBe(true);
    await expectMeshServing(nodes, [1, 2, 3], 7);
    expect(victim.transport.stats()).toMatchObject({ connectionsOpen: 4, connectionsOpened: opened + 1 });
  });

  test('a garbage frame closes only that connection; the node keeps serving its peers', async () => {
    const rogueAddress = { host: '127.0.0.1', port: await closedPort() };
    const nodes = await mesh(kind, [1, 2, 3], {}, new Map([[4, rogueAddress]]));
    const victim = get(nodes, 1);
    const rogue = await openRogueConnection(kind, victim.transport.address(), { clusterId, secret, id: 4, peer: 1 });
    rogues.push(rogue);
    // A frame whose length prefix is right and whose header is junk.
    const junk = garbageFrame(new Prng(9), 200);
    const frame = new Uint8Array(Math.max(junk.length, 20));
    frame.set(junk);
    new DataView(frame.buffer).setUint32(0, frame.length - 4);
    new DataView(frame.buffer).setUint32(4, 3);
    frame[8] = 0xc1; // a byte msgpack never uses
    frame[frame.length - 1] = 0; // status: deliver
    rogue.write(frame);
    await rogue.closed;
    await waitFor(() => victim.transport.stats().framesMalformed === 1, 'the malformed count');
    expect(victim.events.find((event) => event.type === 'malformed')).toMatchObject({ peer: 4, reason: 'header: expected an array, got msgpack type 0xc1' });
    await expectMeshServing(nodes, [1, 2, 3], 8);
    expect(victim.transport.stats().connectionsOpen).toBe(4);
  });

  test('a valid message claiming another sender closes that connection', async () => {
    const nodes = await mesh(kind, [1, 2, 3], {}, new Map([[4, { host: '127.0.0.1', port: await closedPort() }]]));
    const victim = get(nodes, 1);
    const rogue = await openRogueConnection(kind, victim.transport.address(), { clusterId, secret, id: 4, peer: 1 });
    rogues.push(rogue);
    rogue.write(joinFrame(encodeMessage({ type: 'timeoutNow', from: 2, to: 1, term: 99 })));
    await rogue.closed;
    expect(victim.events.find((event) => event.type === 'malformed')).toMatchObject({ reason: 'claims to come from node 2 on a connection authenticated as node 4' });
    expect(victim.received.some((message) => message.type === 'timeoutNow')).toBe(false);
  });

  test('a peer that restarts on the same address is reconnected to', async () => {
    const nodes = await mesh(kind, [1, 2], { bounds: { reconnectDelayMsMin: 10, reconnectDelayMsMax: 50 } });
    const one = get(nodes, 1);
    const port = get(nodes, 2).transport.address().port;
    await get(nodes, 2).transport.stop();
    await waitFor(() => one.transport.stats().connectionsOpen === 0, 'node 1 to notice');
    const restarted = createTransport(kind, { id: 2, listen: { host: '127.0.0.1', port }, peers: new Map([[1, one.transport.address()]]), bounds: { reconnectDelayMsMin: 10, reconnectDelayMsMax: 50 } });
    running.push(restarted);
    const received: RemoteMessage[] = [];
    restarted.onMessage((message) => received.push(message));
    await restarted.start();
    one.transport.send({ type: 'timeoutNow', from: 1, to: 2, term: 3 });
    await waitFor(() => received.length === 1, 'the message after the restart');
    expect(one.events.filter((event) => event.type === 'connected' && event.direction === 'outbound')).toHaveLength(2);
    expect(one.events.some((event) => event.type === 'disconnected' && event.peer === 2)).toBe(true);
  });

  test('a full send queue drops the new message and counts it; the rest is delivered once connected', async () => {
    const bounds = { frameBytesMax: 4096, sendQueueBytesMax: 4096, reconnectDelayMsMin: 10, reconnectDelayMsMax: 20 };
    const sender = createTransport(kind, { id: 1, bounds, peers: new Map([[2, { host: '127.0.0.1', port: await closedPort() }]]) });
    running.push(sender);
    await sender.start();
    const message = (i: number): RemoteMessage => ({ type: 'readIndex', from: 1, to: 2, term: i, context: 'x'.repeat(1000) });
    const frameBytes = joinFrame(encodeMessage(message(1))).length;
    const fit = Math.floor(4096 / frameBytes);
    for (let i = 1; i <= 10; i++) sender.send(message(i));
    expect(sender.stats()).toMatchObject({ messagesSent: fit, messagesDropped: 10 - fit });
    const receiver = createTransport(kind, { id: 2, bounds, peers: new Map([[1, sender.address()]]) });
    running.push(receiver);
    const received: RemoteMessage[] = [];
    receiver.onMessage((m) => received.push(m));
    await receiver.start();
    sender.setPeerAddress(2, receiver.address());
    await waitFor(() => received.length === fit, `the ${fit} queued messages`);
    expect(received.map((m) => m.term)).toEqual(Array.from({ length: fit }, (_, i) => i + 1));
  });

  test('a message larger than frameBytesMax is dropped with an error logged, never sent', async () => {
    const logger = recordingLogger();
    const nodes = await mesh(kind, [1, 2], { bounds: { frameBytesMax: 4096, sendQueueBytesMax: 8192 } });
    const sender = get(nodes, 1).transport;
    Object.assign(sender, { logger });
    sender.send({ type: 'snapshot', from: 1, to: 2, term: 1, snapshot: { index: 1, term: 1, peers: [1, 2], data: new Uint8Array(5000) }, offset: 0, done: true });
    expect(sender.stats().messagesDropped).toBe(1);
    expect(logger.lines.find((line) => line.level === 'error')?.message).toBe('message larger than frameBytesMax dropped');
    await expectMeshServing(nodes, [1, 2], 2);
  });

  test('bad options are refused with a TransportError naming the field', () => {
    expect(() => createTransport(kind, { id: 0 })).toThrow(/id: expected a positive integer node id, got 0/);
    expect(() => createTransport(kind, { id: 1, secret: '' })).toThrow(/secret: must not be empty/);
    expect(() => createTransport(kind, { id: 1, bounds: { frameBytesMax: 100 } })).toThrow(/frameBytesMax: 100 below 4096/);
    expect(() => createTransport(kind, { id: 1, bounds: { sendQueueBytesMax: 5000, frameBytesMax: 8192 } })).toThrow(/sendQueueBytesMax: 5000 below frameBytesMax 8192/);
    expect(() => createTransport(kind, { id: 1, bounds: { reconnectDelayMsMin: 10, reconnectDelayMsMax: 5 } })).toThrow(/reconnectDelayMsMax/);
    expect(() => createTransport(kind, { id: 1, listen: { host: '127.0.0.1', port: 70000 } })).toThrow(/listen.port/);
  });

  test('listening on a taken port rejects with listen-failed', async () => {
    const first = createTransport(kind, { id: 1 });
    running.push(first);
    await first.start();
    const second = createTransport(kind, { id: 2, listen: first.address() });
    running.push(second);
    await expect(second.start()).rejects.toMatchObject({ code: 'listen-failed' });
  });
});

describe('ws transport only', () => {
  test('permessage-deflate is never negotiated, even when a client offers it', async () => {
    const server = createTransport('ws', { id: 1 });
    running.push(server);
    await server.start();
    const { port } = server.address();
    const client = new WebSocket(`ws://127.0.0.1:${port}${webSocketPath}`, { perMessageDeflate: true });
    await new Promise((resolve, reject) => {
      client.once('open', resolve);
      client.once('error', reject);
    });
    expect(client.extensions).toBe('');
    client.terminate();
  });
});
