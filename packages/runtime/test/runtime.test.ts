/**
 * The runtime drives RaftNodes in real time: a cluster elects a leader on its own timers,
 * replicates and applies commands with their results, batches proposals of one turn into one
 * append, answers followers' proposals with not-leader and the leader's address, serves
 * linearizable, lease and stale reads, transfers leadership, survives the loss of its leader, times
 * out what cannot commit, and rejects everything pending when stopped.
 */
import { afterEach, describe, expect, test } from 'vitest';
import type { NodeId } from '@raftlab/core';
import { CounterMachine, RaftRuntime, RuntimeError } from '../src/index.js';
import { LoopbackHub, waitFor } from './loopback.js';

const running: RaftRuntime<number>[] = [];

afterEach(async () => {
  await Promise.all(running.splice(0).map((runtime) => runtime.stop()));
});

async function cluster(size: number, hub = new LoopbackHub()): Promise<{ hub: LoopbackHub; nodes: Map<NodeId, RaftRuntime<number>> }> {
  const ids = Array.from({ length: size }, (_, i) => i + 1);
  const addresses = new Map(ids.map((id) => [id, `http://127.0.0.1:${8000 + id}`]));
  const nodes = new Map<NodeId, RaftRuntime<number>>();
  for (const id of ids) {
    const runtime = await RaftRuntime.start({
      id,
      peers: ids,
      transport: hub.transport(id),
      stateMachine: new CounterMachine(),
      tickIntervalMs: 5,
      addresses,
      proposalTimeoutMs: 2000,
      readTimeoutMs: 2000,
    });
    nodes.set(id, runtime);
    running.push(runtime);
  }
  return { hub, nodes };
}


function leaderOf(nodes: Map<NodeId, RaftRuntime<number>>): RaftRuntime<number> | undefined {
  const leaders = [...nodes.values()].filter((node) => !node.isStopped && node.node.role === 'leader');
  return leaders.length === 1 ? leaders[0] : undefined;
}

describe('RaftRuntime', () => {
  test('a 3-node cluster elects a leader and applies 1000 commands everywhere, in order, with results', async () => {
    const { nodes } = await cluster(3);
    const leader = await waitFor('a leader', () => leaderOf(nodes));
    const results = await leader.proposeBatch(Array.from({ length: 1000 }, () => new Uint8Array([1])));
    expect(results[0]).toBe(1);
    expect(results[999]).toBe(1000);
    for (const node of nodes.values()) {
      await waitFor(`node ${node.node.id} to apply`, () => ((node.stateMachine as CounterMachine).count === 1000 ? true : undefined));
      expect((node.stateMachine as CounterMachine).checksum).toBe(1000);
    }
  });

  test('proposals of one turn go out as one append per follower', async () => {
    const { hub, nodes } = await cluster(3);
    const leader = await waitFor('a leader', () => leaderOf(nodes));
    await leader.propose(new Uint8Array([0]));
    let appends = 0;
    hub.filter = (m) => {
      if (m.type === 'append' && m.entries.count > 0) appends += 1;
      return true;
    };
    await Promise.all(Array.from({ length: 500 }, (_, i) => leader.propose(new Uint8Array([i & 0xff]))));
    expect(appends).toBe(2);
  });

  test('a follower refuses proposals with not-leader, the leader id and its address', async () => {
    const { nodes } = await cluster(3);
    const leader = await waitFor('a leader', () => leaderOf(nodes));
    const follower = [...nodes.values()].find((node) => node !== leader) as RaftRuntime<number>;
    await waitFor('the follower to know the leader', () => (follower.node.leaderId === leader.node.id ? true : undefined));
    const error = await follower.propose(new Uint8Array([1])).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RuntimeError);
    expect((error as RuntimeError).code).toBe('not-leader');
    expect((error as RuntimeError).leaderId).toBe(leader.node.id);
    expect((error as RuntimeError).leaderAddress).toBe(`http://127.0.0.1:${8000 + leader.node.id}`);
  });

  test('linearizable reads on the leader and on followers see every acknowledged write', async () => {
    const { nodes } = await cluster(3);
    const leader = await waitFor('a leader', () => leaderOf(nodes));
    await leader.proposeBatch(Array.from({ length: 10 }, () => new Uint8Array([2])));
    for (const node of nodes.values()) {
      const count = await node.read(() => (node.stateMachine as CounterMachine).count);
      expect(count).toBe(10);
    }
    expect(await leader.read(() => (leader.stateMachine as CounterMachine).count, 'lease')).toBe(10);
    expect(typeof (await leader.read(() => 1, 'stale'))).toBe('number');
  });

  test('leadership transfer moves the leader to the target', async () => {
    const { nodes } = await cluster(3);
    const leader = await waitFor('a leader', () => leaderOf(nodes));
    const target = [...nodes.keys()].find((id) => id !== leader.node.id) as NodeId;
    await leader.transferLeadership(target);
    await waitFor('the target to lead', () => (nodes.get(target)?.node.role === 'leader' ? true : undefined));
  });

  test('after the leader stops, a new leader keeps every committed entry and accepts new ones', async () => {
    const { nodes } = await cluster(3);
    const leader = await waitFor('a leader', () => leaderOf(nodes));
    await leader.proposeBatch(Array.from({ length: 100 }, () => new Uint8Array([3])));
    await leader.stop();
    const next = await waitFor('a new leader', () => leaderOf(nodes), 8000);
    expect(next).not.toBe(leader);
    await next.propose(new Uint8Array([3]));
    expect((next.stateMachine as CounterMachine).count).toBe(101);
  });

  test('a cut-off leader does not apply new commands: they time out or fail not-leader', async () => {
    const { hub, nodes } = await cluster(3);
    const leader = await waitFor('a leader', () => leaderOf(nodes));
    hub.isolate(leader.node.id);
    const error = await leader.propose(new Uint8Array([1])).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RuntimeError);
    expect(['timeout', 'dropped', 'not-leader']).toContain((error as RuntimeError).code);
    expect((leader.stateMachine as CounterMachine).count).toBe(0);
  });

  test('stop rejects pending proposals and reads with stopped', async () => {
    const { hub, nodes } = await cluster(3);
    const leader = await waitFor('a leader', () => leaderOf(nodes));
    hub.isolate(leader.node.id);
    const pending = leader.propose(new Uint8Array([1])).catch((e: unknown) => e);
    const read = leader.read(() => 0).catch((e: unknown) => e);
    await new Promise((resolve) => setTimeout(resolve, 20));
    await leader.stop();
    expect(((await pending) as RuntimeError).code).toBe('stopped');
    expect(((await read) as RuntimeError).code).toBe('stopped');
    expect(((await leader.propose(new Uint8Array([1])).catch((e: unknown) => e)) as RuntimeError).code).toBe('stopped');
  });
});
