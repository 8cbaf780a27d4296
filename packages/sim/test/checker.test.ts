/**
 * Each safety check of SafetyChecker can fail: fed a small hand-made history that breaks exactly
 * one property (two leaders in a term, a changed vote, a leader rewriting or shrinking its log,
 * two logs that disagree under the same index and term, a new leader without a committed entry, a
 * committed entry an out-of-date node could still overwrite, different entries or states applied
 * at one index, commit moving backwards, applied skipping an index), it throws a SafetyViolation of
 * that kind; fed the same history without the defect, it stays silent. The planted-bug tests prove
 * the same checks fire inside real simulated runs.
 */
import { type EntryRange, type RaftNode, type Role, encodeEntry, framesOf } from '@raftlab/core';
import { describe, expect, test } from 'vitest';
import { SafetyChecker, SafetyViolation, type ViolationKind } from '../src/index.js';

/** The parts of a RaftNode the checker reads, settable by hand. */
class FakeNode {
  role: Role = 'follower';
  term = 0;
  commitIndex = 0;
  appliedIndex = 0;
  firstIndex = 1;
  frames: Uint8Array[] = [];
  constructor(readonly id: number) {}
  get lastIndex(): number {
    return this.firstIndex - 1 + this.frames.length;
  }
  get log(): { frameAt(index: number): Uint8Array } {
    return { frameAt: (index: number) => this.frames[index - this.firstIndex] as Uint8Array };
  }
  asNode(): RaftNode {
    return this as unknown as RaftNode;
  }
}

function entry(term: number, data: string): Uint8Array {
  return encodeEntry(term, 'normal', new TextEncoder().encode(data));
}

function range(firstIndex: number, frames: Uint8Array[]): EntryRange {
  return { ...framesOf(frames), firstIndex };
}

/** A three-node world with a clock, persisting through the checker as the simulator does. */
class World {
  readonly clock = { tick: 1, events: 0 };
  readonly checker = new SafetyChecker([1, 2, 3], this.clock);
  readonly nodes = [new FakeNode(1), new FakeNode(2), new FakeNode(3)];

  node(id: number): FakeNode {
    return this.nodes[id - 1] as FakeNode;
  }

  /** Appends frames to a node's log from `firstIndex` (truncating after it) and persists them. */
  persist(id: number, firstIndex: number, frames: Uint8Array[]): void {
    const node = this.node(id);
    node.frames.length = firstIndex - node.firstIndex;
    node.frames.push(...frames);
    this.checker.onEntriesPersisted(node.asNode(), range(firstIndex, frames));
  }

  /** Makes `id` leader of `term` with a vote for itself. */
  lead(id: number, term: number): void {
    const node = this.node(id);
    node.term = term;
    node.role = 'leader';
    this.checker.onHardStatePersisted(id, term, id);
    this.event(id);
  }

  follow(id: number, term: number, vote: number): void {
    const node = this.node(id);
    node.term = term;
    node.role = 'follower';
    this.checker.onHardStatePersisted(id, term, vote);
    this.event(id);
  }

  commit(id: number, index: number): void {
    this.node(id).commitIndex = index;
    this.event(id);
  }

  apply(id: number, index: number, value: bigint): void {
    const node = this.node(id);
    const frame = node.frames[index - node.firstIndex] as Uint8Array;
    this.checker.onApplying(id, index, frame, 0, frame.length);
    this.checker.onApplied(id, index, value);
    node.appliedIndex = index;
    this.event(id);
  }

  event(id: number): void {
    this.clock.events += 1;
    this.checker.afterEvent(this.node(id).asNode());
  }

  /** Node 1 leads term 1 and replicates entries 1..2 to everyone; all commit and apply them. */
  healthyStart(): void {
    const frames = [encodeEntry(1, 'empty', new Uint8Array(0)), entry(1, '5')];
    this.lead(1, 1);
    this.follow(2, 1, 1);
    this.follow(3, 1, 1);
    for (const id of [1, 2, 3]) this.persist(id, 1, frames);
    for (const id of [1, 2, 3]) this.commit(id, 2);
    for (const id of [1, 2, 3]) {
      this.apply(id, 1, 0n);
      this.apply(id, 2, 5n);
    }
  }
}

function expectViolation(kind: ViolationKind, run: () => void): void {
  let caught: unknown = null;
  try {
    run();
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(SafetyViolation);
  expect((caught as SafetyViolation).kind).toBe(kind);
}

describe('SafetyChecker', () => {
  test('a consistent history passes every check', () => {
    const world = new World();
    world.healthyStart();
    // Leadership moves to node 2 in term 2, which holds everything committed.
    world.node(1).role = 'follower';
    world.follow(1, 2, 2);
    world.lead(2, 2);
    world.persist(2, 3, [entry(2, '7')]);
    world.persist(1, 3, [entry(2, '7')]);
    world.commit(2, 3);
    world.apply(2, 3, 12n);
    world.apply(1, 3, 12n);
    for (const node of world.nodes) world.checker.audit(node.asNode());
  });

  test('election safety: two leaders in one term (§5.2)', () => {
    const world = new World();
    world.lead(1, 1);
    expectViolation('election-safety', () => world.lead(2, 1));
  });

  test('election safety at the source: a vote changed within a term (§5.2)', () => {
    const world = new World();
    world.follow(3, 4, 1);
    expectViolation('election-safety', () => world.follow(3, 4, 2));
  });

  test('election safety at the source: a persisted vote forgotten within a term', () => {
    const world = new World();
    world.follow(3, 4, 1);
    expectViolation('election-safety', () => world.follow(3, 4, 0));
  });

  test('leader append-only: a leader rewrites an entry of its own log (§5.3)', () => {
    const world = new World();
    world.healthyStart();
    world.persist(1, 3, [entry(1, '8')]);
    world.event(1);
    expectViolation('leader-append-only', () => world.persist(1, 3, [entry(1, '9')]));
  });

  test('leader append-only: a leader\u2019s log shrinks', () => {
    const world = new World();
    world.healthyStart();
    world.node(1).frames.length = 1; // lost entry 2 without going through Ready
    expectViolation('leader-append-only', () => world.event(1));
  });

  test('log matching: same index and term, different bytes (§5.3)', () => {
    const world = new World();
    world.persist(1, 1, [entry(1, 'a')]);
    expectViolation('log-matching', () => world.persist(2, 1, [entry(1, 'b')]));
  });

  test('log matching: same entry on top of different prefixes', () => {
    const world = new World();
    world.persist(1, 1, [entry(1, 'a'), entry(2, 'c')]);
    // Index 1 differs in term (no conflict there); index 2 agrees in term and bytes, not in prefix.
    expectViolation('log-matching', () => world.persist(2, 1, [entry(2, 'b'), entry(2, 'c')]));
  });

  test('leader completeness: a new leader lacks a committed entry (§5.4)', () => {
    const lagging = new World();
    lagging.lead(1, 1);
    lagging.follow(2, 1, 1);
    const frames = [encodeEntry(1, 'empty', new Uint8Array(0)), entry(1, '5')];
    lagging.persist(1, 1, frames);
    lagging.persist(2, 1, frames);
    lagging.persist(3, 1, frames.slice(0, 1));
    lagging.commit(1, 2);
    // Node 3 wins term 2 (which correct voting would forbid) without entry 2.
    lagging.node(1).role = 'follower';
    lagging.follow(1, 2, 3);
    expectViolation('leader-completeness', () => lagging.lead(3, 2));
  });

  test('leader completeness, the invariant: a node without the committed entry could still win (Figure 8)', () => {
    const world = new World();
    // Node 2 holds 1/t2 alone; nodes 1 and 3 hold 1/t1; node 1 (term 3) commits 1/t1 by counting.
    world.persist(2, 1, [entry(2, 'x')]);
    world.persist(1, 1, [entry(1, 'y')]);
    world.persist(3, 1, [entry(1, 'y')]);
    world.lead(1, 3);
    // Node 2's last term 2 beats node 3's last term 1: nodes 2 and 3 would elect node 2.
    expectViolation('leader-completeness', () => world.commit(1, 1));
  });

  test('the invariant stays silent once the leader\u2019s own entry protects the commit', () => {
    const world = new World();
    world.persist(2, 1, [entry(2, 'x')]);
    world.persist(1, 1, [entry(1, 'y'), entry(3, '')]);
    world.persist(3, 1, [entry(1, 'y'), entry(3, '')]);
    world.lead(1, 3);
    world.commit(1, 2); // node 2's log (2/t2... last 1/t2) is behind both holders now
  });

  test('state machine safety: two nodes apply different entries at one index (§5.4.3)', () => {
    const world = new World();
    const a = entry(1, 'a');
    const b = entry(2, 'b');
    world.persist(1, 1, [a]);
    world.persist(2, 1, [b]);
    // The nodes' Ready cycles hand their state machines different entries for index 1.
    world.checker.onApplying(1, 1, a, 0, a.length);
    expectViolation('state-machine-safety', () => world.checker.onApplying(2, 1, b, 0, b.length));
  });

  test('state machine safety: same entries, different states after them', () => {
    const world = new World();
    world.healthyStart();
    world.persist(1, 3, [entry(1, '1')]);
    world.persist(2, 3, [entry(1, '1')]);
    world.commit(1, 3);
    world.commit(2, 3);
    world.apply(1, 3, 6n);
    expectViolation('state-machine-safety', () => world.apply(2, 3, 7n));
  });

  test('commit never decreases', () => {
    const world = new World();
    world.healthyStart();
    world.node(2).commitIndex = 1;
    expectViolation('commit-monotonic', () => world.event(2));
  });

  test('applied moves one index at a time', () => {
    const world = new World();
    world.persist(1, 1, [entry(1, 'a'), entry(1, 'b')]);
    const frame = world.node(1).frames[1] as Uint8Array;
    // Index 2 handed out before index 1.
    expectViolation('applied-sequence', () => world.checker.onApplying(1, 2, frame, 0, frame.length));
  });

  test('the audit notices a log that changed without going through Ready', () => {
    const world = new World();
    world.healthyStart();
    world.node(2).frames[1] = entry(1, '6');
    expectViolation('log-matching', () => world.checker.audit(world.node(2).asNode()));
  });
});
