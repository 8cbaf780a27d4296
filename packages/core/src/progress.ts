/**
 * Progress: what the leader knows of one follower's log, and the flow-control state that decides
 * what to send next. Knows nothing of roles or messages.
 *
 *  - probe:     the leader does not know where the logs diverge; it sends one AppendEntries at a
 *               time and waits for the answer (or a heartbeat response) before the next.
 *  - replicate: the follower accepted the last append; the leader streams entries optimistically,
 *               advancing next as it sends, bounded by the inflight count and bytes.
 *  - snapshot:  the follower needs entries the leader has compacted away; a snapshot is on its way
 *               in chunks, one in flight at a time (InstallSnapshot, §7), and no entries are sent
 *               until the follower confirms the last chunk.
 */
import { assert } from './assert.js';
import { Inflights } from './inflights.js';

/** Flow-control state of one follower. */
export type ProgressState = 'probe' | 'replicate' | 'snapshot';

export class Progress {
  /** Highest index known to match the leader's log. Invariant: match < next. */
  match = 0;
  /** Index of the next entry to send. */
  next: number;
  state: ProgressState = 'probe';
  /** In probe state: an append is in flight, wait for its answer. */
  probeSent = false;
  /** In snapshot state: the index of the snapshot sent. */
  pendingSnapshot = 0;
  /**
   * In snapshot state: bytes of the snapshot the follower confirmed holding, so the offset of the
   * next chunk. Invariant: snapshotOffset <= the snapshot's byte length.
   */
  snapshotOffset = 0;
  /** In snapshot state: a chunk is on its way (one at a time); cleared by its answer or a retry. */
  snapshotChunkInflight = false;
  /** In snapshot state: the leader's tick count when the chunk in flight was sent. */
  snapshotChunkSentTick = 0;
  /** Heard from since the last check-quorum round. */
  recentActive = false;
  readonly inflights: Inflights;

  constructor(next: number, inflightCountMax: number, inflightBytesMax: number) {
    this.next = next;
    this.inflights = new Inflights(inflightCountMax, inflightBytesMax);
  }

  /** Back to probing from next = match + 1 (or past a snapshot just acknowledged). */
  becomeProbe(): void {
    if (this.state === 'snapshot') {
      this.next = Math.max(this.match + 1, this.pendingSnapshot + 1);
      this.pendingSnapshot = 0;
      this.snapshotOffset = 0;
      this.snapshotChunkInflight = false;
    } else {
      this.next = this.match + 1;
    }
    this.state = 'probe';
    this.probeSent = false;
    this.inflights.reset();
  }

  /** Start streaming after an accepted append. */
  becomeReplicate(): void {
    this.state = 'replicate';
    this.next = this.match + 1;
    this.probeSent = false;
    this.inflights.reset();
  }

  /** A snapshot covering up to `index` is to be sent, from its first byte. */
  becomeSnapshot(index: number): void {
    this.state = 'snapshot';
    this.pendingSnapshot = index;
    this.snapshotOffset = 0;
    this.snapshotChunkInflight = false;
    this.snapshotChunkSentTick = 0;
    this.probeSent = false;
    this.inflights.reset();
  }

  /** A chunk of the pending snapshot went out at tick `now`. */
  sentSnapshotChunk(now: number): void {
    assert(this.state === 'snapshot', () => `sentSnapshotChunk in state ${this.state}`);
    assert(!this.snapshotChunkInflight, 'a snapshot chunk sent while another is in flight');
    this.snapshotChunkInflight = true;
    this.snapshotChunkSentTick = now;
  }

  /**
   * The follower holds `offset` bytes of snapshot `index` (`reject`: the chunk did not follow what
   * it holds, and `offset` is where to resume). Returns true when the answer moves the transfer.
   */
  maybeUpdateSnapshotOffset(index: number, offset: number, reject: boolean): boolean {
    if (this.state !== 'snapshot' || index !== this.pendingSnapshot) return false;
    if (reject ? offset === this.snapshotOffset : offset <= this.snapshotOffset) {
      // A duplicate or overtaken answer: the chunk in flight already starts there (or later).
      // Acting on it would send a second copy, whose answer would do the same, forever.
      return false;
    }
    this.snapshotOffset = offset;
    this.snapshotChunkInflight = false;
    return true;
  }

  /** The follower acknowledged `index`; returns true when match moved (not a stale answer). */
  maybeUpdate(index: number): boolean {
    let updated = false;
    if (this.match < index) {
      this.match = index;
      updated = true;
      this.probeSent = false;
    }
    this.next = Math.max(this.next, index + 1);
    return updated;
  }

  /**
   * The follower rejected an append whose previous index was `rejected`; `hintNext` is where the
   * conflict hint says to continue. Returns false for a stale rejection, which changes nothing.
   */
  maybeDecreaseTo(rejected: number, hintNext: number): boolean {
    if (this.state === 'replicate') {
      // In replicate state a rejection at or below match is an old message overtaken by acks.
      if (rejected <= this.match) return false;
      this.next = this.match + 1;
      return true;
    }
    // In probe (or snapshot) state only the answer to the one append in flight counts.
    if (this.next - 1 !== rejected) return false;
    this.next = Math.max(Math.min(rejected, hintNext), this.match + 1, 1);
    this.probeSent = false;
    return true;
  }

  /** An append carrying entries up to `lastIndex` (count >= 1) was sent. */
  sentEntries(lastIndex: number, bytes: number): void {
    if (this.state === 'replicate') {
      this.next = lastIndex + 1;
      this.inflights.add(lastIndex, bytes);
    } else {
      assert(this.state === 'probe', () => `sentEntries in state ${this.state}`);
      this.probeSent = true;
    }
  }

  /** True when the leader must not send this follower more entries now. */
  isPaused(): boolean {
    switch (this.state) {
      case 'probe':
        return this.probeSent;
      case 'replicate':
        return this.inflights.full();
      case 'snapshot':
        return true;
    }
  }
}
