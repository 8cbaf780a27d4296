/**
 * The features around the core algorithm: ReadIndex reads (thesis §6.4), leadership transfer
 * (thesis §3.10), proposal forwarding, backpressure on uncommitted bytes, log compaction with
 * InstallSnapshot (§7), restart from persisted state, the Ready contract, config validation and
 * the stable describe format. Each test drives real RaftNodes by hand.
 */
import { describe, expect, test } from 'vitest';
import {
  AssertionError,
  ConfigError,
  RaftNode,
  describeMessage,
  describeReady,
  encodeEntry,
  noEntries,
} from '../src/index.js';
import { Cluster, bytes, encodeSnapshot } from './harness.js';

describe('ReadIndex (thesis §6.4)', () => {
  test('a read is released only after a heartbeat round confirms leadership with a quorum', () => {
    const cluster = new Cluster([1, 2, 3]);
    cluster.elect(1);
    cluster.propose(1, 'a');
    cluster.deliverAll();
    expect(cluster.node(1).readIndex('r1').ok).toBe(true);
    cluster.settle();
    expect(cluster.readStates.get(1)).toEqual([]);
    const beats = cluster.take((m) => m.type === 'heartbeat');
    expect(beats).toHaveLength(2);
    expect(beats.every((m) => m.type === 'heartbeat' && m.context === '1:r1')).toBe(true);
    // One acknowledgement plus the leader itself is a quorum of 3.
    cluster.deliver(beats[0]!);
    cluster.settle();
    const acks = cluster.take((m) => m.type === 'heartbeatResponse');
    expect(acks).toHaveLength(1);
    cluster.deliver(acks[0]!);
    cluster.settle();
    expect(cluster.readStates.get(1)).toEqual([{ index: 2, context: 'r1' }]);
  });

  test('a cut-off leader never releases a read', () => {
    const cluster = new Cluster([1, 2, 3]);
    cluster.elect(1);
    cluster.isolate(1);
    cluster.node(1).readIndex('r');
    for (let i = 0; i < 5; i++) cluster.tick(1);
    cluster.deliverAll();
    expect(cluster.readStates.get(1)).toEqual([]);
  });

  test('reads wait until the new leader commits an entry of its term', () => {
    const cluster = new Cluster([1, 2, 3]);
    // Elect 1 but hold back its AppendEntries, so its empty entry is not committed yet.
    cluster.filter = (m) => m.type !== 'append';
    cluster.elect(1);
    expect(cluster.node(1).role).toBe('leader');
    cluster.node(1).readIndex('early');
    cluster.node(1).step({ type: 'beat', from: 1, to: 1, term: 0 });
    cluster.deliverAll();
    expect(cluster.readStates.get(1)).toEqual([]);
    cluster.heal();
    cluster.node(1).step({ type: 'beat', from: 1, to: 1, term: 0 });
    cluster.deliverAll();
    expect(cluster.readStates.get(1)).toEqual([{ index: 1, context: 'early' }]);
  });

  test('a follower forwards its read to the leader and receives the read index', () => {
    const cluster = new Cluster([1, 2, 3]);
    cluster.elect(1);
    cluster.propose(1, 'x');
    cluster.deliverAll();
    expect(cluster.node(3).readIndex('f').ok).toBe(true);
    cluster.deliverAll();
    expect(cluster.readStates.get(3)).toEqual([{ index: 2, context: 'f' }]);
  });

  test('a node with no known leader refuses reads', () => {
    const node = new RaftNode({ id: 1, peers: [1, 2, 3] });
    expect(node.readIndex('x')).toEqual({ ok: false, reason: 'no-leader' });
  });
});

describe('leadership transfer (thesis §3.10)', () => {
  test('an up-to-date target receives TimeoutNow and wins at once', () => {
    const cluster = new Cluster([1, 2, 3]);
    cluster.elect(1);
    const term = cluster.node(1).term;
    expect(cluster.node(1).transferLeadership(2)).toEqual({ ok: true });
    cluster.deliverAll();
    expect(cluster.node(2).role).toBe('leader');
    expect(cluster.node(2).term).toBe(term + 1);
    expect(cluster.node(1).leaderId).toBe(2);
  });

  test('a lagging target is brought up to date before TimeoutNow', () => {
    const cluster = new Cluster([1, 2, 3]);
    cluster.elect(1);
    cluster.crash(3);
    for (let i = 0; i < 10; i++) cluster.propose(1, `p${i}`);
    cluster.deliverAll();
    cluster.restart(3);
    cluster.node(1).transferLeadership(3);
    const sent = cluster.take();
    expect(sent.some((m) => m.type === 'timeoutNow')).toBe(false);
    for (const m of sent) cluster.deliver(m);
    // Heartbeats find the restarted follower and the leader probes it back to its log's end.
    for (let i = 0; i < 3 && cluster.node(3).role !== 'leader'; i++) {
      cluster.tick(1);
      cluster.deliverAll();
    }
    expect(cluster.node(3).role).toBe('leader');
    expect(cluster.node(3).lastIndex).toBeGreaterThanOrEqual(11);
  });

  test('proposals are refused while transferring, and the transfer is abandoned after an election timeout', () => {
    const cluster = new Cluster([1, 2, 3], { electionTimeoutTicks: 10 });
    cluster.elect(1);
    cluster.crash(3);
    cluster.node(1).transferLeadership(3);
    expect(cluster.node(1).transferee).toBe(3);
    expect(cluster.propose(1, 'refused')).toEqual({ ok: false, reason: 'transferring', leaderId: 1 });
    for (let i = 0; i < 10; i++) cluster.tick(1);
    expect(cluster.node(1).transferee).toBe(0);
    expect(cluster.node(1).role).toBe('leader');
    expect(cluster.propose(1, 'accepted').ok).toBe(true);
  });

  test('transfer requests are refused with a reason off the leader or to a stranger', () => {
    const cluster = new Cluster([1, 2, 3]);
    cluster.elect(1);
    expect(cluster.node(2).transferLeadership(3)).toEqual({ ok: false, reason: 'not-leader', leaderId: 1 });
    expect(cluster.node(1).transferLeadership(9)).toEqual({ ok: false, reason: 'unknown-node', leaderId: 1 });
  });
});

describe('proposal forwarding', () => {
  test('a follower forwards proposals to the leader by default, and they commit', () => {
    const cluster = new Cluster([1, 2, 3]);
    cluster.elect(1);
    expect(cluster.propose(3, 'via-3')).toEqual({ ok: true, status: 'forwarded', leaderId: 1 });
    cluster.deliverAll();
    for (const id of [1, 2, 3]) expect(cluster.applied.get(id)).toEqual(['via-3']);
  });

  test('with forwarding off a follower refuses with the leader id', () => {
    const cluster = new Cluster([1, 2, 3], { forwardToLeader: false });
    cluster.elect(1);
    expect(cluster.propose(3, 'x')).toEqual({ ok: false, reason: 'not-leader', leaderId: 1 });
  });

  test('with no leader known a proposal is refused', () => {
    const cluster = new Cluster([1, 2, 3]);
    expect(cluster.propose(2, 'x')).toEqual({ ok: false, reason: 'no-leader' });
  });
});

describe('4-node cluster', () => {
  test('commits need 3 of 4: with two followers down nothing commits, with one it does', () => {
    const cluster = new Cluster([1, 2, 3, 4]);
    cluster.elect(1);
    cluster.crash(4);
    cluster.propose(1, 'three-of-four');
    cluster.deliverAll();
    expect(cluster.applied.get(1)).toEqual(['three-of-four']);
    cluster.crash(3);
    cluster.propose(1, 'two-of-four');
    cluster.deliverAll();
    expect(cluster.applied.get(1)).toEqual(['three-of-four']);
  });
});

describe('backpressure', () => {
  test('over uncommittedBytesMax the leader answers busy, and accepts again once entries commit', () => {
    const cluster = new Cluster([1, 2, 3], { bounds: { uncommittedBytesMax: 1000 } });
    cluster.elect(1);
    cluster.isolate(1);
    const results = Array.from({ length: 50 }, () => cluster.node(1).propose(new Uint8Array(100)));
    const accepted = results.filter((r) => r.ok).length;
    expect(accepted).toBeGreaterThanOrEqual(8);
    expect(accepted).toBeLessThanOrEqual(10);
    expect(results[results.length - 1]).toEqual({ ok: false, reason: 'busy', leaderId: 1 });
    cluster.heal();
    cluster.node(1).step({ type: 'beat', from: 1, to: 1, term: 0 });
    cluster.deliverAll();
    expect(cluster.node(1).propose(new Uint8Array(100)).ok).toBe(true);
  });

  test('an entry over entryBytesMax is refused as too-large', () => {
    const cluster = new Cluster([1], { bounds: { entryBytesMax: 10 } });
    cluster.elect(1);
    expect(cluster.node(1).propose(new Uint8Array(11))).toEqual({ ok: false, reason: 'too-large', leaderId: 1 });
  });
});

describe('compaction and InstallSnapshot (§7)', () => {
  test('a follower behind the compacted prefix is caught up with a snapshot', () => {
    const cluster = new Cluster([1, 2, 3]);
    cluster.elect(1);
    cluster.crash(3);
    for (let i = 0; i < 30; i++) cluster.propose(1, `s${i}`);
    cluster.deliverAll();
    const leader = cluster.node(1);
    leader.compact(leader.appliedIndex, encodeSnapshot(cluster.applied.get(1) as string[]));
    expect(leader.firstIndex).toBe(leader.appliedIndex + 1);
    cluster.restart(3);
    cluster.propose(1, 'after-snapshot');
    for (let i = 0; i < 5; i++) {
      cluster.node(1).step({ type: 'beat', from: 1, to: 1, term: 0 });
      cluster.deliverAll();
    }
    const expected = [...Array.from({ length: 30 }, (_, i) => `s${i}`), 'after-snapshot'];
    expect(cluster.applied.get(3)).toEqual(expected);
    expect(cluster.node(3).firstIndex).toBe(leader.firstIndex);
    expect(cluster.disks.get(3)?.snapshot?.index).toBe(31);
  });

  test('compacting past the applied index is a programmer error', () => {
    const cluster = new Cluster([1]);
    cluster.elect(1);
    expect(() => cluster.node(1).compact(5, new Uint8Array(0))).toThrow(AssertionError);
  });
});

describe('restart from persisted state', () => {
  test('a restarted node keeps term, vote and log, and loses nothing committed', () => {
    const cluster = new Cluster([1, 2, 3]);
    cluster.elect(1);
    for (let i = 0; i < 5; i++) cluster.propose(1, `r${i}`);
    cluster.deliverAll();
    const before = cluster.node(2);
    const { term, vote, lastIndex } = before;
    cluster.crash(2);
    const after = cluster.restart(2);
    expect(after.term).toBe(term);
    expect(after.vote).toBe(vote);
    expect(after.lastIndex).toBe(lastIndex);
    expect(after.role).toBe('follower');
    cluster.deliverAll();
    cluster.node(1).step({ type: 'beat', from: 1, to: 1, term: 0 });
    cluster.deliverAll();
    expect(cluster.applied.get(2)).toEqual(['r0', 'r1', 'r2', 'r3', 'r4']);
  });

  test('restoring a commit index past the log is refused with a precise error', () => {
    expect(
      () => new RaftNode({ id: 1, peers: [1], restore: { hardState: { term: 1, vote: 1, commit: 5 }, entries: noEntries } }),
    ).toThrow(/restore\.hardState\.commit: 5 past the last restored entry 0/);
  });
});

describe('the Ready contract', () => {
  test('the node accepts no input between ready() and advance()', () => {
    const node = new RaftNode({ id: 1, peers: [1] });
    node.step({ type: 'hup', from: 1, to: 1, term: 0, transfer: false });
    const ready = node.ready();
    expect(() => node.propose(bytes('x'))).toThrow(/Ready is outstanding/);
    expect(() => node.tick()).toThrow(/Ready is outstanding/);
    expect(() => node.advance({ ...ready })).toThrow(/not the outstanding one/);
    node.advance(ready);
    expect(node.propose(bytes('x')).ok).toBe(true);
  });

  test('a single node persists, then commits in the next cycle, and says what to sync', () => {
    const node = new RaftNode({ id: 1, peers: [1], verify: true });
    node.step({ type: 'hup', from: 1, to: 1, term: 0, transfer: false });
    const first = node.ready();
    expect(describeReady(first)).toBe('soft=leader/1 hs=t1/v1/c0 persist=1..1 sync');
    node.advance(first);
    const second = node.ready();
    expect(describeReady(second)).toBe('hs=t1/v1/c1 apply=1..1');
    node.advance(second);
    expect(node.hasReady()).toBe(false);
  });
});

describe('configuration', () => {
  const bad: [string, object, RegExp][] = [
    ['id zero', { id: 0, peers: [1] }, /id: expected a positive integer, got 0/],
    ['id not in peers', { id: 4, peers: [1, 2, 3] }, /peers: must include this node's id 4/],
    ['duplicate peers', { id: 1, peers: [1, 1, 2] }, /peers: duplicate node id/],
    ['heartbeat not below election timeout', { id: 1, peers: [1], electionTimeoutTicks: 5, heartbeatTicks: 5 }, /heartbeatTicks: 5 must be below electionTimeoutTicks 5/],
    ['unknown bound', { id: 1, peers: [1], bounds: { inflightMax: 3 } }, /bounds\.inflightMax: unknown bound/],
    ['fractional bound', { id: 1, peers: [1], bounds: { inflightCountMax: 1.5 } }, /bounds\.inflightCountMax: expected a positive integer, got 1\.5/],
    ['non-boolean flag', { id: 1, peers: [1], preVote: 'yes' }, /preVote: expected true or false, got "yes"/],
  ];
  for (const [name, config, message] of bad) {
    test(`a bad config throws a precise ConfigError: ${name}`, () => {
      expect(() => new RaftNode(config as never)).toThrow(ConfigError);
      expect(() => new RaftNode(config as never)).toThrow(message);
    });
  }
});

describe('describe helpers', () => {
  test('messages have a stable one-line form', () => {
    const entry = encodeEntry(3, 'normal', bytes('abc'));
    expect(describeMessage({ type: 'append', from: 1, to: 2, term: 3, prevIndex: 5, prevTerm: 2, commit: 4, entries: { count: 1, slices: [entry], byteLength: entry.length } })).toBe(
      'append 1->2 t3 prev=5/2 commit=4 entries=1(8B)',
    );
    expect(describeMessage({ type: 'appendResponse', from: 2, to: 1, term: 3, reject: true, index: 5, hintIndex: 3, hintTerm: 2 })).toBe('appendResponse 2->1 t3 reject index=5 hint=3/2');
    expect(describeMessage({ type: 'preVote', from: 2, to: 1, term: 4, lastIndex: 9, lastTerm: 3, transfer: false })).toBe('preVote 2->1 t4 last=9/3');
    expect(describeMessage({ type: 'heartbeat', from: 1, to: 2, term: 3, commit: 7, context: '1:r' })).toBe('heartbeat 1->2 t3 commit=7 ctx="1:r"');
  });
});
