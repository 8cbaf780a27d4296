/**
 * Inflights: the AppendEntries messages sent to one follower and not yet acknowledged, as a
 * bounded ring of (last index, bytes). Bounded both by count (`inflightCountMax`) and by bytes
 * (`inflightBytesMax`), so a slow follower cannot make the leader buffer without limit.
 *
 *     start                 start + count
 *     [ (i1,b1) (i2,b2) ... ]              indexes increase along the ring
 */
import { assert } from './assert.js';

export class Inflights {
  private readonly indexes: Float64Array;
  private readonly sizes: Float64Array;
  private start = 0;
  private used = 0;
  private bytes = 0;

  constructor(
    /** Bound on messages in flight. */
    readonly countMax: number,
    /** Bound on bytes in flight. */
    readonly bytesMax: number,
  ) {
    assert(countMax >= 1, `inflightCountMax ${countMax} below 1`);
    assert(bytesMax >= 1, `inflightBytesMax ${bytesMax} below 1`);
    this.indexes = new Float64Array(countMax);
    this.sizes = new Float64Array(countMax);
  }

  /** Messages in flight. */
  get count(): number {
    return this.used;
  }

  /** Bytes in flight. */
  get byteCount(): number {
    return this.bytes;
  }

  /** True when no further message may be sent. */
  full(): boolean {
    return this.used === this.countMax || this.bytes >= this.bytesMax;
  }

  /** Records a sent message whose last entry is `lastIndex`. */
  add(lastIndex: number, bytes: number): void {
    assert(!this.full(), () => `inflights add with ${this.used}/${this.countMax} messages, ${this.bytes}/${this.bytesMax} bytes`);
    if (this.used > 0) {
      const previous = this.indexes[(this.start + this.used - 1) % this.countMax] as number;
      assert(lastIndex > previous, () => `inflight index ${lastIndex} not above previous ${previous}`);
    }
    const slot = (this.start + this.used) % this.countMax;
    this.indexes[slot] = lastIndex;
    this.sizes[slot] = bytes;
    this.used += 1;
    this.bytes += bytes;
  }

  /** Frees every message whose last index is at most `index` (acknowledged). */
  freeTo(index: number): void {
    while (this.used > 0 && (this.indexes[this.start] as number) <= index) {
      this.bytes -= this.sizes[this.start] as number;
      this.start = (this.start + 1) % this.countMax;
      this.used -= 1;
    }
    if (this.used === 0) {
      this.start = 0;
      this.bytes = 0;
    }
  }

  /** Frees the oldest message (it was probably lost: a heartbeat answer shows the follower alive). */
  freeFirst(): void {
    if (this.used === 0) return;
    this.freeTo(this.indexes[this.start] as number);
  }

  /** Forgets everything (the follower went back to probing). */
  reset(): void {
    this.start = 0;
    this.used = 0;
    this.bytes = 0;
  }
}
