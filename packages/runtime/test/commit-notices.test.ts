/**
 * With `holdCommitNotices`, a leader's commit notices (AppendEntries without entries, sent only to
 * carry a new commit index) are held back by the runtime for one turn of the event loop: a notice is dropped when an append
 * with entries, which carries the commit index too, goes to the same follower, and otherwise leaves
 * one turn later. So proposals made one after another cost one append and one response per
 * follower (4 messages in a 3-node cluster, not 8), and an idle follower still learns every commit
 * at once (well within a tick) and applies it. With the option off, the same run sends a notice per
 * follower per commit, which shows the count is not an accident of the workload.
 */
import { afterEach, describe, expect, test } from 'vitest';
import type { NodeId } from '@raftlab/core';
import { CounterMachine, RaftRuntime } from '../src/index.js';
import { LoopbackHub, waitFor } from './loopback.js';

const running: RaftRuntime<number>[] = [];

afterEach(async () => {
  await Promise.all(running.splice(0).map((runtime) => runtime.stop()));
});

async function cluster(
  holdCommitNotices: boolean,
  tickIntervalMs: number,
  raft: { heartbeatTicks?: number; electionTimeoutTicks?: number } = {},
): Promise<{ hub: LoopbackHub; nodes: RaftRuntime<number>[] }> {
  const hub = new LoopbackHub();
  const ids: NodeId[] = [1, 2, 3];
  const nodes: RaftRuntime<number>[] = [];
  for (const id of ids) {
    const runtime = await RaftRuntime.start({ id, peers: ids, transport: hub.transport(id), stateMachine: new CounterMachine(), tickIntervalMs, holdCommitNotices, raft });
    nodes.push(runtime);
    running.push(runtime);
  }
  return { hub, nodes };
}


/** Runs `count` proposals one after another at the leader; returns the empty appends the leader sent meanwhile. */
async function emptyAppendsDuringProposals(holdCommitNotices: boolean, count: number): Promise<{ emptyAppends: number; nodes: RaftRuntime<number>[] }> {
  // Ticks of 50 ms: 20 proposals one after another finish well within a few ticks.
  const { hub, nodes } = await cluster(holdCommitNotices, 50);
  const leader = await waitFor('a leader', () => nodes.find((node) => node.node.role === 'leader'), 10_000);
  await leader.propose(new Uint8Array([1]));
  let emptyAppends = 0;
  hub.filter = (message) => {
    if (message.type === 'append' && message.from === leader.node.id && message.entries.count === 0) emptyAppends += 1;
    return true;
  };
  for (let i = 0; i < count; i++) await leader.propose(new Uint8Array([1]));
  return { emptyAppends, nodes };
}

describe('commit notices', () => {
  test('proposals one after another send no commit notice while appends keep carrying the commit index', async () => {
    const held = await emptyAppendsDuringProposals(true, 20);
    // A heartbeat response can make the leader owe an empty append once in a while; never one per proposal.
    expect(held.emptyAppends).toBeLessThanOrEqual(4);
    await Promise.all(running.splice(0).map((runtime) => runtime.stop()));
    const sent = await emptyAppendsDuringProposals(false, 20);
    expect(sent.emptyAppends).toBeGreaterThanOrEqual(2 * 20);
  });

  test('an idle follower learns the last commit from the held notice, without waiting for a heartbeat, and applies it', async () => {
    // Heartbeats every 10 ticks of 50 ms: the followers must apply long before the next one.
    const { hub, nodes } = await cluster(true, 50, { heartbeatTicks: 10, electionTimeoutTicks: 20 });
    const leader = await waitFor('a leader', () => nodes.find((node) => node.node.role === 'leader'), 10_000);
    await leader.propose(new Uint8Array([1]));
    let heartbeats = 0;
    hub.filter = (message) => {
      if (message.type === 'heartbeat') heartbeats += 1;
      return true;
    };
    await leader.proposeBatch([new Uint8Array([3]), new Uint8Array([4])]);
    const total = (leader.stateMachine as CounterMachine).count;
    for (const node of nodes) {
      await waitFor(`node ${node.node.id} to apply the last entry`, () => ((node.stateMachine as CounterMachine).count === total ? true : undefined), 2000);
      expect(node.node.commitIndex).toBe(leader.node.commitIndex);
      expect((node.stateMachine as CounterMachine).checksum).toBe((leader.stateMachine as CounterMachine).checksum);
    }
    expect(heartbeats).toBe(0);
  });
});
