/**
 * A live node keeps serving its cluster while rogue connections throw random and mutated frames at
 * it: three TCP (and WebSocket) transports exchange valid traffic round after round while rogue
 * connections, some after a valid handshake as a known node and some as strangers, send garbage,
 * mutated valid frames and valid frames. Every valid message among the three arrives intact and in
 * order, no connection among them ever drops, and the rogue frames are counted as malformed or
 * refused. The seed is printed on failure; TRANSPORT_FUZZ_SEED and TRANSPORT_FUZZ_ROUNDS replay
 * or lengthen a run.
 */
import { type NodeId, Prng, type RemoteMessage } from '@raftlab/core';
import { afterEach, describe, expect, test } from 'vitest';
import { encodeMessage, joinFrame } from '../src/index.js';
import { type RogueConnection, garbageFrame, mutateFrame, openRogueConnection, randomMessage } from '../src/testing.js';
import { type MeshNode, closedPort, clusterId, normalize, secret, startMesh, waitFor } from './helpers.js';

const seed = Number(process.env.TRANSPORT_FUZZ_SEED ?? 20240607);
const rounds = Number(process.env.TRANSPORT_FUZZ_ROUNDS ?? 40);

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe.each(['tcp', 'ws'] as const)('%s: fuzzing a live node', (kind) => {
  test(`keeps serving its cluster under random and mutated frames (seed ${seed}, ${rounds} rounds)`, async () => {
    const ids: NodeId[] = [1, 2, 3];
    const rogueId = 4;
    const nodes = await startMesh(kind, ids, { bounds: { frameBytesMax: 1 << 20, sendQueueBytesMax: 1 << 24, handshakeTimeoutMs: 500 } }, new Map([[rogueId, { host: '127.0.0.1', port: await closedPort() }]]));
    cleanups.push(() => Promise.all([...nodes.values()].map((node) => node.transport.stop())).then(() => undefined));
    const node = (id: NodeId): MeshNode => nodes.get(id) as MeshNode;
    const prng = new Prng(seed);
    const expected = new Map<NodeId, unknown[]>(ids.map((id) => [id, []]));
    const rogues: RogueConnection[] = [];
    cleanups.push(() => rogues.forEach((rogue) => rogue.close()));
    let rogueFrames = 0;
    let authenticated = 0;

    for (let round = 0; round < rounds; round++) {
      // Valid traffic among the three.
      for (const from of ids) {
        for (const to of ids) {
          if (from === to) continue;
          const message = randomMessage(prng, { from, to, entryCountMax: 50, dataBytesMax: 200 });
          (expected.get(to) as unknown[]).push(normalize(message));
          node(from).transport.send(message);
        }
      }
      // Rogues.
      const victim = prng.pick(ids);
      const authenticate = prng.chance(0.6);
      let rogue: RogueConnection;
      try {
        rogue = await openRogueConnection(kind, node(victim).transport.address(), authenticate ? { clusterId, secret, id: rogueId, peer: victim } : null);
      } catch {
        continue; // the victim may refuse or close a rogue while it handshakes; that is its job
      }
      rogues.push(rogue);
      if (authenticate) authenticated += 1;
      const count = 1 + prng.nextInt(4);
      for (let i = 0; i < count; i++) {
        const valid = joinFrame(encodeMessage(randomMessage(prng, { from: rogueId, to: victim, entryCountMax: 20 })));
        const choice = prng.nextInt(10);
        const bytes = choice < 6 ? mutateFrame(valid, prng).bytes : choice < 9 ? garbageFrame(prng, 512) : valid;
        rogue.write(bytes);
        rogueFrames += 1;
      }
      await Promise.race([rogue.closed, sleep(5)]);
      rogue.close();
    }

    const total = (id: NodeId): number => (expected.get(id) as unknown[]).length;
    const fromPeers = (id: NodeId): RemoteMessage[] => node(id).received.filter((message) => message.from !== rogueId);
    await waitFor(() => ids.every((id) => fromPeers(id).length === total(id)), `all valid traffic (seed ${seed})`, 15_000);
    for (const id of ids) {
      for (const from of ids) {
        if (from === id) continue;
        const got = fromPeers(id).filter((message) => message.from === from).map(normalize);
        const want = (expected.get(id) as unknown[]).filter((message) => (message as RemoteMessage).from === from);
        expect(got, `seed ${seed}: ${from} -> ${id}`).toEqual(want);
      }
      const lost = node(id).events.filter((event) => event.type === 'disconnected' && event.peer !== rogueId);
      expect(lost, `seed ${seed}: node ${id} lost a peer connection`).toEqual([]);
      await waitFor(() => node(id).transport.stats().connectionsOpen === 4, `node ${id} back to its 4 peer connections once rogues closed`);
    }
    const rejected = ids.reduce((sum, id) => sum + node(id).transport.stats().framesMalformed + node(id).transport.stats().handshakesRefused, 0);
    expect(rogueFrames).toBeGreaterThan(rounds);
    expect(authenticated).toBeGreaterThan(0);
    expect(rejected).toBeGreaterThan(rounds / 4);
  });
});
