/**
 * InstallSnapshot in chunks (§7, Figure 13): a follower behind the leader's compacted prefix
 * receives the snapshot in chunks of at most bounds.snapshotChunkBytesMax, one in flight at a time;
 * it takes them strictly in order (refusing a gap with the offset to resume from), leaves its log
 * untouched until the last chunk completes the snapshot, and then installs it. A lost chunk or a
 * lost answer is sent again after the retry interval; a duplicate costs one answer and nothing
 * more; a leader change mid-transfer drops the partial snapshot and the new leader's transfer
 * completes. Each test drives real RaftNodes by hand.
 */
import { describe, expect, test } from 'vitest';
import { ConfigError, RaftNode, type RemoteMessage, type SnapshotMessage, describeMessage } from '../src/index.js';
import { Cluster, encodeSnapshot } from './harness.js';

const chunkBytes = 64;

/** Three nodes, n1 leader, n3 down while n1 commits `count` entries and compacts them away. */
function clusterBehindSnapshot(count: number, compactOn: readonly number[] = [1]): Cluster {
  const cluster = new Cluster([1, 2, 3], { bounds: { snapshotChunkBytesMax: chunkBytes }, heartbeatTicks: 1, electionTimeoutTicks: 10 });
  cluster.elect(1);
  cluster.crash(3);
  for (let i = 0; i < count; i++) cluster.propose(1, `value-${String(i).padStart(4, '0')}`);
  cluster.deliverAll();
  for (const id of compactOn) {
    const node = cluster.node(id);
    node.compact(node.appliedIndex, encodeSnapshot(cluster.applied.get(id) as string[]));
  }
  cluster.restart(3);
  return cluster;
}

const isChunkTo = (to: number) => (m: RemoteMessage): m is SnapshotMessage => m.type === 'snapshot' && m.to === to;

/** Beats the leader once, delivers everything but snapshot chunks to n3, and returns those. */
function beatAndTakeChunks(cluster: Cluster, leader: number): SnapshotMessage[] {
  cluster.step(leader, { type: 'beat', from: leader, to: leader, term: 0 });
  const held: SnapshotMessage[] = [];
  for (;;) {
    held.push(...(cluster.take(isChunkTo(3)) as SnapshotMessage[]));
    const next = cluster.queue.shift();
    if (next === undefined) return held;
    cluster.deliver(next);
  }
}

describe('InstallSnapshot in chunks (§7)', () => {
  test('a snapshot larger than several chunks arrives in order, one chunk in flight, installed only on the last', () => {
    const cluster = clusterBehindSnapshot(100);
    const leader = cluster.node(1);
    const snapshot = leader.latestSnapshot;
    expect(snapshot).not.toBeNull();
    const total = snapshot?.data.length ?? 0;
    expect(total).toBeGreaterThan(10 * chunkBytes);
    let chunks = beatAndTakeChunks(cluster, 1); // chunks are handed over by hand
    const follower = cluster.node(3);
    const offsets: number[] = [];
    while (chunks.length > 0) {
      // One chunk in flight per follower: the leader waits for the answer before the next.
      expect(chunks).toHaveLength(1);
      const chunk = chunks[0] as SnapshotMessage;
      expect(chunk.snapshot.data.length).toBeLessThanOrEqual(chunkBytes);
      expect(chunk.offset).toBe(offsets.length * chunkBytes);
      expect(chunk.done).toBe(chunk.offset + chunk.snapshot.data.length === total);
      offsets.push(chunk.offset);
      if (!chunk.done) {
        // Until the last chunk the follower's log and state are untouched.
        expect(follower.latestSnapshot).toBeNull();
        expect(cluster.disks.get(3)?.snapshot).toBeNull();
      }
      cluster.deliver(chunk);
      cluster.settle();
      // The follower's answer goes back; the leader's next chunk comes out.
      const answers = cluster.take((m) => m.from === 3 && (m.type === 'snapshotResponse' || m.type === 'appendResponse'));
      expect(answers).toHaveLength(1);
      for (const answer of answers) cluster.deliver(answer);
      chunks = cluster.take(isChunkTo(3)) as SnapshotMessage[];
    }
    expect(offsets.length).toBe(Math.ceil(total / chunkBytes));
    expect(cluster.disks.get(3)?.snapshot?.index).toBe(snapshot?.index);
    expect(cluster.disks.get(3)?.snapshot?.data).toEqual(snapshot?.data);
    cluster.propose(1, 'after');
    cluster.deliverAll();
    expect(cluster.applied.get(3)).toEqual(cluster.applied.get(1));
    expect(cluster.applied.get(3)?.at(-1)).toBe('after');
  });

  test('a lost chunk is sent again from the confirmed offset after the retry interval, not before', () => {
    const cluster = clusterBehindSnapshot(60);
    let dropped: SnapshotMessage | null = null;
    cluster.filter = (m) => {
      if (dropped === null && m.type === 'snapshot' && m.offset === 2 * chunkBytes) {
        dropped = m;
        return false;
      }
      return true;
    };
    cluster.step(1, { type: 'beat', from: 1, to: 1, term: 0 });
    cluster.deliverAll();
    expect(dropped).not.toBeNull();
    expect(cluster.disks.get(3)?.snapshot).toBeNull();
    // Heartbeat answers within the retry interval (two heartbeat rounds) do not resend it.
    const resent: SnapshotMessage[] = [];
    const watch = (m: RemoteMessage): boolean => {
      if (m.type === 'snapshot') resent.push(m);
      return true;
    };
    cluster.filter = watch;
    cluster.tick(1);
    cluster.deliverAll();
    expect(resent).toEqual([]);
    cluster.tick(1);
    cluster.deliverAll();
    expect(resent[0]?.offset).toBe(2 * chunkBytes);
    expect(cluster.disks.get(3)?.snapshot?.index).toBe(cluster.node(1).latestSnapshot?.index);
    expect(cluster.applied.get(3)).toEqual(cluster.applied.get(1));
  });

  test('a lost answer to the last chunk is recovered: the resent chunk is answered with the installed index', () => {
    const cluster = clusterBehindSnapshot(40);
    let droppedFinalAnswer = false;
    cluster.filter = (m) => {
      if (!droppedFinalAnswer && m.from === 3 && m.type === 'appendResponse' && !m.reject && m.index === cluster.node(1).latestSnapshot?.index) {
        droppedFinalAnswer = true;
        return false;
      }
      return true;
    };
    cluster.step(1, { type: 'beat', from: 1, to: 1, term: 0 });
    cluster.deliverAll();
    expect(droppedFinalAnswer).toBe(true);
    expect(cluster.node(1).progressStatus().find((p) => p.id === 3)?.state).toBe('snapshot');
    cluster.tick(1, 3);
    cluster.deliverAll();
    expect(cluster.node(1).progressStatus().find((p) => p.id === 3)?.state).toBe('replicate');
    cluster.propose(1, 'after');
    cluster.deliverAll();
    expect(cluster.applied.get(3)).toEqual(cluster.applied.get(1));
  });

  test('a chunk past the bytes held is refused with the offset to resume from; one before them is answered with it', () => {
    const cluster = clusterBehindSnapshot(40);
    cluster.filter = (m) => m.type !== 'snapshot';
    cluster.step(1, { type: 'beat', from: 1, to: 1, term: 0 });
    cluster.deliverAll();
    cluster.heal();
    const leader = cluster.node(1);
    const snapshot = leader.latestSnapshot;
    if (snapshot === null) throw new Error('no snapshot');
    const chunk = (offset: number): SnapshotMessage => ({
      type: 'snapshot',
      from: 1,
      to: 3,
      term: leader.term,
      snapshot: { ...snapshot, data: snapshot.data.subarray(offset, offset + chunkBytes) },
      offset,
      done: offset + chunkBytes >= snapshot.data.length,
    });
    const answer = (m: SnapshotMessage): string[] => {
      cluster.deliver(m);
      return cluster.take((x) => x.from === 3).map(describeMessage);
    };
    // No transfer under way: anything but offset 0 is refused, hint 0.
    expect(answer(chunk(chunkBytes))).toEqual([`snapshotResponse 3->1 t${leader.term} reject snapshot=${snapshot.index} offset=0`]);
    expect(answer(chunk(0))).toEqual([`snapshotResponse 3->1 t${leader.term} accept snapshot=${snapshot.index} offset=${chunkBytes}`]);
    // A gap: refused with where to resume.
    expect(answer(chunk(3 * chunkBytes))).toEqual([`snapshotResponse 3->1 t${leader.term} reject snapshot=${snapshot.index} offset=${chunkBytes}`]);
    // A duplicate: answered with the same offset, nothing appended twice.
    expect(answer(chunk(0))).toEqual([`snapshotResponse 3->1 t${leader.term} accept snapshot=${snapshot.index} offset=${chunkBytes}`]);
    expect(cluster.node(3).latestSnapshot).toBeNull();
  });

  test('duplicated chunks and answers cost one answer each and do not multiply', () => {
    const cluster = clusterBehindSnapshot(100);
    const total = cluster.node(1).latestSnapshot?.data.length ?? 0;
    let snapshotMessages = 0;
    cluster.filter = (m) => {
      if (m.type === 'snapshot') snapshotMessages += 1;
      return true;
    };
    // Every message to or from n3 is delivered twice (so each chunk sent is counted twice).
    const original = cluster.deliver.bind(cluster);
    cluster.deliver = (m) => {
      original(m);
      if ((m.to === 3 || m.from === 3) && !cluster.crashed.has(m.to)) original(m);
    };
    cluster.step(1, { type: 'beat', from: 1, to: 1, term: 0 });
    cluster.deliverAll();
    expect(cluster.disks.get(3)?.snapshot?.index).toBe(cluster.node(1).latestSnapshot?.index);
    expect(snapshotMessages).toBe(2 * Math.ceil(total / chunkBytes));
  });

  test('a leader change mid-transfer: the partial snapshot is dropped and the new leader sends its own', () => {
    const cluster = clusterBehindSnapshot(80, [1, 2]);
    let delivered = 0;
    const late: RemoteMessage[] = [];
    cluster.filter = (m) => {
      if (m.type !== 'snapshot' || m.from !== 1 || ++delivered <= 3) return true;
      late.push(m); // n1 dies after three chunks; its fourth is still on the wire
      return false;
    };
    cluster.step(1, { type: 'beat', from: 1, to: 1, term: 0 });
    cluster.deliverAll();
    expect(delivered).toBeGreaterThan(3);
    expect(cluster.node(3).latestSnapshot).toBeNull();
    expect(late).toHaveLength(1);
    cluster.crash(1);
    // The new leader's transfer starts from offset 0 and completes.
    const offsets: number[] = [];
    cluster.filter = (m) => {
      if (m.type === 'snapshot') offsets.push(m.offset);
      return true;
    };
    // A transfer campaign: n3 still counts n1's lease and would refuse a plain pre-vote.
    cluster.step(2, { type: 'hup', from: 2, to: 2, term: 0, transfer: true });
    cluster.deliverAll();
    expect(cluster.node(2).role).toBe('leader');
    cluster.step(2, { type: 'beat', from: 2, to: 2, term: 0 });
    cluster.deliverAll();
    expect(offsets[0]).toBe(0);
    expect(cluster.disks.get(3)?.snapshot?.index).toBe(cluster.node(2).latestSnapshot?.index);
    // A chunk of the old leader's transfer arriving now is from a stale term: ignored.
    const before = cluster.disks.get(3)?.snapshot;
    for (const m of late) cluster.deliver(m);
    expect(cluster.take((m) => m.from === 3).map(describeMessage)).toEqual([]);
    expect(cluster.disks.get(3)?.snapshot).toBe(before);
    cluster.propose(2, 'after');
    cluster.deliverAll();
    expect(cluster.applied.get(3)).toEqual(cluster.applied.get(2));
  });

  test('a compaction on the leader mid-transfer restarts the transfer with the newer snapshot', () => {
    const cluster = clusterBehindSnapshot(60);
    let chunks = 0;
    cluster.filter = (m) => !(m.type === 'snapshot' && ++chunks === 3);
    cluster.step(1, { type: 'beat', from: 1, to: 1, term: 0 });
    cluster.deliverAll(); // the third chunk is lost; the transfer waits for a retry
    cluster.heal();
    cluster.isolate(3);
    for (let i = 0; i < 10; i++) cluster.propose(1, `more-${i}`);
    cluster.deliverAll();
    const leader = cluster.node(1);
    leader.compact(leader.appliedIndex, encodeSnapshot(cluster.applied.get(1) as string[]));
    cluster.heal();
    cluster.tick(1, 3);
    cluster.deliverAll();
    expect(cluster.disks.get(3)?.snapshot?.index).toBe(leader.latestSnapshot?.index);
    expect(cluster.applied.get(3)).toEqual(cluster.applied.get(1));
  });

  test('an empty snapshot travels as one final chunk', () => {
    const cluster = new Cluster([1, 2, 3], { bounds: { snapshotChunkBytesMax: chunkBytes } });
    cluster.elect(1);
    cluster.crash(3);
    cluster.propose(1, 'x');
    cluster.deliverAll();
    const leader = cluster.node(1);
    leader.compact(leader.appliedIndex, new Uint8Array(0));
    cluster.restart(3);
    const seen: string[] = [];
    cluster.filter = (m) => {
      if (m.type === 'snapshot') seen.push(describeMessage(m));
      return true;
    };
    cluster.step(1, { type: 'beat', from: 1, to: 1, term: 0 });
    cluster.deliverAll();
    expect(seen).toEqual([`snapshot 1->3 t${leader.term} snapshot=${leader.appliedIndex}/${leader.term} chunk=0+0B done`]);
    expect(cluster.node(3).firstIndex).toBe(leader.firstIndex);
  });

  test('snapshotChunkBytesMax is validated', () => {
    expect(() => new RaftNode({ id: 1, peers: [1], bounds: { snapshotChunkBytesMax: 0 } })).toThrow(ConfigError);
    expect(() => new RaftNode({ id: 1, peers: [1], bounds: { snapshotChunkBytesMax: 1.5 } })).toThrow(ConfigError);
    expect(() => new RaftNode({ id: 1, peers: [1], bounds: { snapshotChunkBytesMax: 2 ** 31 } })).toThrow(/snapshotChunkBytesMax: .*above 2\^30/);
    expect(new RaftNode({ id: 1, peers: [1], bounds: { snapshotChunkBytesMax: 1 } }).config.bounds.snapshotChunkBytesMax).toBe(1);
  });
});
