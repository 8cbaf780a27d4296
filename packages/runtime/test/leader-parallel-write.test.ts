/**
 * A leader writes its log in parallel with replicating it (thesis §10.2.1): its AppendEntries leave
 * before its own storage write completes, which takes one fsync off every write's critical path, and
 * stays safe because the core counts only the leader's persisted index toward a commit quorum. Nothing
 * else is sent early: a candidate's vote requests leave only once its new term and vote are on stable
 * storage (§5.2, Figure 2), and followers answer only what they have persisted.
 */
import { afterEach, expect, test } from 'vitest';
import type { NodeId, RemoteMessage } from '@raftlab/core';
import { MemoryStorage, type ReadyToSave } from '@raftlab/storage';
import { CounterMachine, RaftRuntime } from '../src/index.js';
import { LoopbackHub, waitFor } from './loopback.js';

const running: RaftRuntime<number>[] = [];

afterEach(async () => {
  await Promise.all(running.splice(0).map((runtime) => runtime.stop()));
});

/** Memory storage whose saves wait while `hold(ready)` says so, until release(). */
class GatedStorage extends MemoryStorage {
  hold: (ready: ReadyToSave) => boolean = () => false;
  held = 0;
  private gate: Promise<void> | null = null;
  private open: () => void = () => undefined;

  override async save(ready: ReadyToSave): Promise<void> {
    if (this.hold(ready)) {
      this.held += 1;
      if (this.gate === null) this.gate = new Promise((resolve) => (this.open = resolve));
      await this.gate;
    }
    return super.save(ready);
  }

  release(): void {
    this.hold = () => false;
    this.gate = null;
    this.open();
  }
}


async function start(hub: LoopbackHub, id: NodeId, storage: GatedStorage, electionTimeoutTicks: number): Promise<RaftRuntime<number>> {
  const runtime = await RaftRuntime.start({
    id,
    peers: [1, 2, 3],
    transport: hub.transport(id),
    stateMachine: new CounterMachine(),
    storage,
    tickIntervalMs: 5,
    raft: { electionTimeoutTicks, heartbeatTicks: 2 },
  });
  running.push(runtime);
  return runtime;
}

test("a leader's appends reach the followers while its own log write is still pending (thesis §10.2.1)", async () => {
  const hub = new LoopbackHub();
  const storages = [new GatedStorage(), new GatedStorage(), new GatedStorage()];
  const nodes = await Promise.all(storages.map((storage, i) => start(hub, i + 1, storage, i === 0 ? 10 : 100)));
  const leader = await waitFor('node 1 to lead', () => (nodes[0]?.node.role === 'leader' ? nodes[0] : undefined), 5000, 2);
  await leader.propose(new Uint8Array([1]));
  const leaderStorage = storages[0] as GatedStorage;
  leaderStorage.hold = (ready) => ready.entries.count > 0;
  const pending = leader.propose(new Uint8Array([2]));
  const target = leader.node.lastIndex + 1;
  // The followers persist the entry although the leader's own write has not completed.
  await waitFor('the followers to store the entry', () => (nodes.slice(1).every((node) => node.node.stableIndex >= target) ? true : undefined), 5000, 2);
  expect(leaderStorage.held).toBe(1);
  expect(leader.node.stableIndex).toBeLessThan(target);
  leaderStorage.release();
  expect(await pending).toBe(2);
});

test("a candidate's vote requests leave only after its new term and vote are persisted (§5.2)", async () => {
  const hub = new LoopbackHub();
  const votesSent: RemoteMessage[] = [];
  hub.filter = (message) => {
    if (message.from === 1 && message.type === 'vote') votesSent.push(message);
    return true;
  };
  const storages = [new GatedStorage(), new GatedStorage(), new GatedStorage()];
  (storages[0] as GatedStorage).hold = (ready) => ready.hardState !== null && ready.hardState.term > 0;
  const nodes = await Promise.all(storages.map((storage, i) => start(hub, i + 1, storage, i === 0 ? 10 : 1000)));
  await waitFor('node 1 to campaign', () => ((storages[0] as GatedStorage).held > 0 ? true : undefined), 5000, 2);
  await new Promise((resolve) => setTimeout(resolve, 50));
  expect(nodes[0]?.node.role).toBe('candidate');
  expect(votesSent).toEqual([]);
  (storages[0] as GatedStorage).release();
  await waitFor('node 1 to lead', () => (nodes[0]?.node.role === 'leader' ? true : undefined), 5000, 2);
  expect(votesSent.length).toBeGreaterThan(0);
});
