/**
 * Log replication and safety (§5.3, §5.4.2 and Figures 7 and 8 of the Raft paper). Real RaftNodes
 * are driven by hand: the leader replicates and commits; followers reject AppendEntries whose
 * previous entry does not match; the six divergent follower logs of Figure 7 each converge to the
 * leader's log; a leader never overwrites or deletes its own entries; and an entry of an older term
 * stored on a majority is not committed by counting replicas until an entry of the current term
 * commits (Figure 8), with the planted bug proving the test can fail.
 */
import { describe, expect, test } from 'vitest';
import { type AppendMessage, type Message, RaftNode, encodeEntry, noEntries } from '../src/index.js';
import { Cluster, bytes, nodeWithLog } from './harness.js';

const classic = { preVote: false, checkQuorum: false } as const;

function hup(id: number): Message {
  return { type: 'hup', from: id, to: id, term: 0, transfer: false };
}

describe('§5.3 log replication', () => {
  test('the leader replicates entries and commits them once stored on a majority', () => {
    const cluster = new Cluster([1, 2, 3], classic);
    cluster.elect(1);
    for (let i = 0; i < 20; i++) expect(cluster.propose(1, `c${i}`).ok).toBe(true);
    cluster.deliverAll();
    const expected = Array.from({ length: 20 }, (_, i) => `c${i}`);
    for (const id of [1, 2, 3]) {
      expect(cluster.applied.get(id)).toEqual(expected);
      expect(cluster.node(id).commitIndex).toBe(21); // the leader's empty entry, then 20 commands
    }
  });

  test('an entry is committed with one follower down, and not with two', () => {
    const cluster = new Cluster([1, 2, 3], classic);
    cluster.elect(1);
    cluster.crash(3);
    cluster.propose(1, 'x');
    cluster.deliverAll();
    expect(cluster.node(1).commitIndex).toBe(2);
    cluster.crash(2);
    cluster.propose(1, 'y');
    cluster.deliverAll();
    expect(cluster.node(1).commitIndex).toBe(2);
    expect(cluster.node(1).lastIndex).toBe(3);
  });

  test('a follower rejects AppendEntries whose previous entry does not match, with a conflict hint', () => {
    const follower = nodeWithLog(2, [1, 1, 2, 2, 2], {});
    const entry = encodeEntry(3, 'normal', bytes('z'));
    follower.step({ type: 'append', from: 1, to: 2, term: 3, prevIndex: 4, prevTerm: 3, commit: 0, entries: { count: 1, slices: [entry], byteLength: entry.length } });
    follower.step({ type: 'append', from: 1, to: 2, term: 3, prevIndex: 9, prevTerm: 3, commit: 0, entries: noEntries });
    const answers = follower.ready().messages;
    // Conflict at index 4 (its term 2, first held at index 3); a log too short answers its last index.
    expect(answers).toMatchObject([
      { type: 'appendResponse', reject: true, index: 4, hintTerm: 2, hintIndex: 3 },
      { type: 'appendResponse', reject: true, index: 9, hintTerm: 0, hintIndex: 5 },
    ]);
    expect(follower.lastIndex).toBe(5);
  });

  test('a follower truncates a conflicting suffix but never a matching prefix (stale AppendEntries)', () => {
    const follower = nodeWithLog(2, [1, 1, 1], {});
    const newer = [encodeEntry(1, 'normal', bytes('e4')), encodeEntry(1, 'normal', bytes('e5'))];
    const joined = new Uint8Array(newer[0]!.length + newer[1]!.length);
    joined.set(newer[0]!, 0);
    joined.set(newer[1]!, newer[0]!.length);
    follower.step({ type: 'append', from: 1, to: 2, term: 1, prevIndex: 3, prevTerm: 1, commit: 0, entries: { count: 2, slices: [joined], byteLength: joined.length } });
    expect(follower.lastIndex).toBe(5);
    // A delayed copy of an older AppendEntries carrying only e2 must not erase e3..e5.
    const old = encodeEntry(1, 'normal', bytes('e2'));
    follower.advance(follower.ready());
    follower.step({ type: 'append', from: 1, to: 2, term: 1, prevIndex: 1, prevTerm: 1, commit: 0, entries: { count: 1, slices: [old], byteLength: old.length } });
    expect(follower.lastIndex).toBe(5);
    // A conflicting entry at index 4 (term 2) removes 4 and 5.
    follower.advance(follower.ready());
    const conflicting = encodeEntry(2, 'normal', bytes('x4'));
    follower.step({ type: 'append', from: 3, to: 2, term: 2, prevIndex: 3, prevTerm: 1, commit: 0, entries: { count: 1, slices: [conflicting], byteLength: conflicting.length } });
    expect(follower.lastIndex).toBe(4);
    expect(follower.log.termAt(4)).toBe(2);
    const ready = follower.ready();
    expect(ready.entries.firstIndex).toBe(4);
    expect(ready.entries.count).toBe(1);
  });

  test('heartbeats carry the commit index, never past the follower match', () => {
    const cluster = new Cluster([1, 2, 3], classic);
    cluster.elect(1);
    cluster.crash(3);
    cluster.propose(1, 'a');
    cluster.deliverAll();
    cluster.restart(3);
    // 3 restarted from its disk; the leader still believes its old match.
    cluster.node(1).step({ type: 'beat', from: 1, to: 1, term: 0 });
    const beats = cluster.take((m) => m.type === 'heartbeat');
    const toThree = beats.find((m) => m.to === 3);
    const toTwo = beats.find((m) => m.to === 2);
    expect(toTwo?.type === 'heartbeat' && toTwo.commit).toBe(2);
    expect(toThree?.type === 'heartbeat' && toThree.commit).toBe(1);
  });

  describe('Figure 7: each divergent follower log converges to the leader log', () => {
    const leaderTerms = [1, 1, 1, 4, 4, 5, 5, 6, 6, 6];
    const followers: Record<string, number[]> = {
      a: [1, 1, 1, 4, 4, 5, 5, 6, 6],
      b: [1, 1, 1, 4],
      c: [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6],
      d: [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7],
      e: [1, 1, 1, 4, 4, 4, 4],
      f: [1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3],
    };
    for (const [name, terms] of Object.entries(followers)) {
      test(`(${name}) ${terms.join(',')}`, () => {
        const nodes = new Map<number, RaftNode>([
          [1, nodeWithLog(1, leaderTerms, { restore: undefined }, [1, 2, 3])],
          [2, nodeWithLog(2, terms, {}, [1, 2, 3])],
          [3, nodeWithLog(3, [], {}, [1, 2, 3])],
        ]);
        // The leader's term is 7 before it campaigns, so it leads in term 8 as in the figure.
        const leader = nodeWithLogAtTerm(1, leaderTerms, 7);
        nodes.set(1, leader);
        const queue: Message[] = [];
        const pump = (): void => {
          for (let rounds = 0; rounds < 10_000; rounds++) {
            for (const node of nodes.values()) {
              while (node.hasReady()) {
                const ready = node.ready();
                queue.push(...ready.messages.map((m) => (m.type === 'append' ? copyAppend(m) : m)));
                node.advance(ready);
              }
            }
            const next = queue.shift();
            if (next === undefined) return;
            nodes.get(next.to)?.step(next);
          }
          throw new Error('did not converge');
        };
        leader.step(hup(1));
        pump();
        expect(leader.role).toBe('leader');
        expect(leader.term).toBe(8);
        leader.propose(bytes('after'));
        pump();
        const follower = nodes.get(2) as RaftNode;
        const termsOf = (node: RaftNode): number[] => Array.from({ length: node.lastIndex }, (_, i) => node.log.termAt(i + 1));
        expect(termsOf(follower)).toEqual(termsOf(leader));
        for (let index = 1; index <= leader.lastIndex; index++) {
          expect(follower.log.frameAt(index)).toEqual(leader.log.frameAt(index));
        }
        expect(follower.commitIndex).toBe(leader.lastIndex);
      });
    }
  });

  test('a leader never overwrites or deletes its own entries, whatever stale messages arrive', () => {
    const cluster = new Cluster([1, 2, 3], classic);
    cluster.elect(1);
    cluster.elect(2); // term 2, leader 2
    for (let i = 0; i < 5; i++) cluster.propose(2, `v${i}`);
    cluster.deliverAll();
    const leader = cluster.node(2);
    const before = Array.from({ length: leader.lastIndex }, (_, i) => leader.log.frameAt(i + 1).slice());
    // Stale AppendEntries from the old term-1 leader with a conflicting entry at index 2, a
    // snapshot of the past, and responses that claim odd indexes.
    const stale = encodeEntry(1, 'normal', bytes('stale'));
    leader.step({ type: 'append', from: 1, to: 2, term: 1, prevIndex: 1, prevTerm: 1, commit: 1, entries: { count: 1, slices: [stale], byteLength: stale.length } });
    leader.step({ type: 'appendResponse', from: 3, to: 2, term: 2, reject: true, index: 3, hintIndex: 1, hintTerm: 1 });
    leader.step({ type: 'appendResponse', from: 3, to: 2, term: 2, reject: false, index: 1, hintIndex: 0, hintTerm: 0 });
    expect(leader.role).toBe('leader');
    for (let index = 1; index <= before.length; index++) expect(leader.log.frameAt(index)).toEqual(before[index - 1]);
  });
});

function nodeWithLogAtTerm(id: number, terms: readonly number[], term: number): RaftNode {
  const frames = terms.map((t, i) => encodeEntry(t, 'normal', bytes(`e${i + 1}`)));
  const byteLength = frames.reduce((sum, frame) => sum + frame.length, 0);
  const joined = new Uint8Array(byteLength);
  let at = 0;
  for (const frame of frames) {
    joined.set(frame, at);
    at += frame.length;
  }
  return new RaftNode({
    id,
    peers: [1, 2, 3],
    verify: true,
    ...classic,
    restore: { hardState: { term, vote: 0, commit: 0 }, entries: { count: frames.length, slices: [joined], byteLength } },
  });
}

function copyAppend(m: AppendMessage): AppendMessage {
  const slices = m.entries.slices.map((slice) => slice.slice());
  return { ...m, entries: { count: m.entries.count, slices, byteLength: m.entries.byteLength } };
}

describe('§5.4.2 Figure 8: committing entries from previous terms', () => {
  /**
   * (a) S1 leads and stores an entry at index 2 on S1 and S2 only; (b) S1 crashes, S5 leads with
   * votes of S3 and S4 and stores a different entry at index 2 on itself only; (c) S5 crashes, S1
   * restarts and leads again, and replicates its old entry at index 2 to S3: it is now on a
   * majority but must not be committed by counting; (d) S1 crashes and S5, elected again, may
   * overwrite index 2 everywhere.
   */
  function figure8(plantBug: boolean): { cluster: Cluster; commitAtC: number; appliedOnS1: string[] } {
    const ids = [1, 2, 3, 4, 5];
    const cluster = new Cluster(ids, { ...classic, bounds: { appendCountMax: 1 } });
    cluster.elect(1);
    // (a)
    cluster.isolate(1, 2);
    cluster.propose(1, 'from-S1-term-1');
    cluster.deliverAll();
    expect(cluster.node(2).lastIndex).toBe(2);
    cluster.crash(1);
    // (b): S5 wins with S3 and S4; its AppendEntries are lost.
    cluster.isolate(3, 4, 5);
    const isolated = cluster.filter;
    cluster.filter = (m) => isolated(m) && !(m.from === 5 && m.type === 'append');
    cluster.elect(5);
    expect(cluster.node(5).role).toBe('leader');
    expect(cluster.node(5).log.termAt(2)).toBe(2);
    cluster.crash(5);
    // (c): S1 restarts and is elected by S2, S3, S4 (it may take two rounds to pass term 2).
    cluster.restart(1, { plantedBugs: { commitOlderTerms: plantBug } });
    cluster.heal();
    // S1's old entry at index 2 reaches the others; AppendEntries that would make a follower store
    // an entry of the new term (index 3) are lost.
    cluster.filter = (m) => {
      if (m.from === 5 || m.to === 5) return false;
      if (m.type !== 'append' || m.from !== 1 || m.entries.count === 0) return true;
      const wouldAccept = cluster.node(m.to).lastIndex >= m.prevIndex;
      return !(wouldAccept && m.prevIndex + m.entries.count >= 3);
    };
    for (let round = 0; round < 3 && cluster.node(1).role !== 'leader'; round++) cluster.elect(1);
    expect(cluster.node(1).role).toBe('leader');
    const s1 = cluster.node(1);
    cluster.tickAll();
    cluster.deliverAll();
    for (let i = 0; i < 3; i++) {
      cluster.node(1).step({ type: 'beat', from: 1, to: 1, term: 0 });
      cluster.deliverAll();
    }
    expect(cluster.node(3).log.termAt(2)).toBe(1);
    return { cluster, commitAtC: s1.commitIndex, appliedOnS1: [...(cluster.applied.get(1) as string[])] };
  }

  test('an older-term entry stored on a majority is not committed by counting replicas', () => {
    const { cluster, commitAtC } = figure8(false);
    expect(commitAtC).toBe(1);
    // Once an entry of the current term is stored on a majority, both commit together.
    cluster.filter = (m) => m.from !== 5 && m.to !== 5;
    cluster.deliverAll();
    cluster.node(1).step({ type: 'beat', from: 1, to: 1, term: 0 });
    cluster.deliverAll();
    expect(cluster.node(1).commitIndex).toBeGreaterThanOrEqual(3);
    expect(cluster.applied.get(1)).toEqual(['from-S1-term-1']);
  });

  test('with the planted commitOlderTerms bug the entry commits at (c) and (d) overwrites it: the test can fail', () => {
    const { cluster, commitAtC, appliedOnS1 } = figure8(true);
    expect(commitAtC).toBe(2);
    expect(appliedOnS1).toEqual(['from-S1-term-1']);
    // (d): S1 crashes; S5 returns and wins with S2, S3, S4 (its last term 2 beats their term 1):
    // Leader Completeness is broken, the new leader lacks an entry S1 committed and applied, and
    // it overwrites that entry on S2.
    cluster.crash(1);
    cluster.restart(5);
    cluster.heal();
    cluster.filter = (m) => m.from !== 1 && m.to !== 1;
    for (let round = 0; round < 4 && cluster.node(5).role !== 'leader'; round++) cluster.elect(5);
    expect(cluster.node(5).role).toBe('leader');
    cluster.deliverAll();
    expect(cluster.node(5).log.termAt(2)).toBe(2);
    expect(cluster.node(5).log.kindAt(2)).toBe(1); // S5's own empty entry, not S1's committed one
    expect(cluster.node(2).log.termAt(2)).toBe(2);
  });
});
