/**
 * LogRing: the Raft log as bytes in one growable ring plus a typed-array index. No per-entry
 * JavaScript object is retained.
 *
 * Byte ring, not wrapped (live bytes are [head, tail)):
 *
 *     0        head                      tail          capacity
 *     [ free   | e5 | e6 | e7 | e8 | e9   | free        ]
 *
 * Byte ring, wrapped (live bytes are [head, gapStart) then [0, tail)):
 *
 *     0               tail        head                 gapStart   capacity
 *     [ e8 | e9 | e10 | free      | e5 | e6 | e7        | gap       ]
 *
 * A frame never straddles the end of the buffer: when it does not fit between tail and capacity,
 * the writer leaves a gap and continues at 0. So any run of consecutive entries is one contiguous
 * slice, or two when it crosses the gap. When neither fits, the ring grows by doubling (unwrapping
 * into the new buffer) up to `bytesMax`. Growth is safe for lent views: the old buffer lives on
 * while referenced. Reuse of released space (after compaction or truncation) is not: a view must
 * not be kept past the owner's next mutation without copying it.
 *
 * Words, and the one place they convert (`slotOf`):
 *   - index: a Raft log index, 1-based and unbounded;
 *   - slot:  a position in the typed-array index, slot = (slotHead + index - firstIndex) & slotMask;
 *   - count: a number of entries;
 *   - bytes: a byte offset or length in the byte ring.
 */
import { assert } from './assert.js';
import { type EntryFrames, FrameHeader, frameBytes, noEntries, writeFrame } from './entry.js';

/** Sizes of a LogRing. */
export interface LogRingOptions {
  /** Initial byte capacity (rounded up to a power of two). */
  readonly initialBytes?: number;
  /** Initial index capacity in entries (rounded up to a power of two). */
  readonly initialSlots?: number;
  /** The byte capacity never grows past this bound. */
  readonly bytesMax?: number;
}

const headerLengthMask = 0x1f;
const kindShift = 5;

/** Default bound on the ring's byte capacity: 1 GiB. */
export const logBytesMaxDefault = 1 << 30;

export class LogRing {
  private bytes: Uint8Array;
  /** Offset of the first live frame (meaningless when count is 0). */
  private byteHead = 0;
  /** Offset just past the last live frame. */
  private byteTail = 0;
  /** Invariant: when wrapped, byteTail <= byteHead <= gapStart <= capacity. */
  private wrapped = false;
  private gapStart = 0;

  private offsets: Uint32Array;
  private lengths: Uint32Array;
  private terms: Float64Array;
  /** headerLength | kind << 5, per slot. */
  private info: Uint8Array;
  private slotHead = 0;
  private slotMask: number;

  /** Index of the first live entry; lastIndex + 1 when the ring is empty. */
  private first = 1;
  /** Live entries. Invariant: lastIndex = first + count - 1. */
  private liveCount = 0;
  /** Term of the entry at first - 1 (0 for the empty log; the snapshot's term after compaction). */
  private baseTerm = 0;

  private readonly bytesMax: number;
  private readonly header = new FrameHeader();

  /** Entries encoded by this ring (append): the zero-copy promise says once per entry, cluster-wide. */
  framesEncoded = 0;
  /** Entries copied in as raw frames (appendFrames): a follower's one copy. */
  framesCopied = 0;

  constructor(options: LogRingOptions = {}) {
    this.bytesMax = options.bytesMax ?? logBytesMaxDefault;
    const initialBytes = Math.min(ceilPowerOfTwo(options.initialBytes ?? 1 << 16), ceilPowerOfTwo(this.bytesMax));
    const initialSlots = ceilPowerOfTwo(options.initialSlots ?? 1 << 10);
    assert(initialBytes >= 64, `LogRing initial bytes ${initialBytes} below 64`);
    this.bytes = new Uint8Array(initialBytes);
    this.offsets = new Uint32Array(initialSlots);
    this.lengths = new Uint32Array(initialSlots);
    this.terms = new Float64Array(initialSlots);
    this.info = new Uint8Array(initialSlots);
    this.slotMask = initialSlots - 1;
  }

  /** Index of the first live entry (lastIndex + 1 when empty). */
  get firstIndex(): number {
    return this.first;
  }

  /** Index of the last entry, or of the compaction base when empty. */
  get lastIndex(): number {
    return this.first + this.liveCount - 1;
  }

  /** Number of live entries. */
  get count(): number {
    return this.liveCount;
  }

  /** Term of the last entry (or of the base). */
  get lastTerm(): number {
    return this.liveCount === 0 ? this.baseTerm : (this.terms[this.slotOf(this.lastIndex)] as number);
  }

  /** Bytes held by live frames. */
  get byteLength(): number {
    if (this.liveCount === 0) return 0;
    return this.wrapped ? this.gapStart - this.byteHead + this.byteTail : this.byteTail - this.byteHead;
  }

  /** Current byte capacity. */
  get byteCapacity(): number {
    return this.bytes.length;
  }

  /** The current byte buffer (tests check that replicated views point into it). */
  get buffer(): ArrayBufferLike {
    return this.bytes.buffer;
  }

  /** The one conversion from log index to slot. Precondition: firstIndex <= index <= lastIndex. */
  private slotOf(index: number): number {
    return (this.slotHead + index - this.first) & this.slotMask;
  }

  /** Term at `index`, the base term at firstIndex - 1, or -1 when compacted away or past the end. */
  termAt(index: number): number {
    if (index === this.first - 1) return this.baseTerm;
    if (index < this.first || index > this.lastIndex) return -1;
    return this.terms[this.slotOf(index)] as number;
  }

  /** Kind code of the entry at `index` (precondition: live). */
  kindAt(index: number): number {
    assert(index >= this.first && index <= this.lastIndex, () => `kindAt(${index}) outside [${this.first}, ${this.lastIndex}]`);
    return (this.info[this.slotOf(index)] as number) >>> kindShift;
  }

  /** Data length of the entry at `index` (precondition: live). */
  dataLengthAt(index: number): number {
    assert(index >= this.first && index <= this.lastIndex, () => `dataLengthAt(${index}) outside [${this.first}, ${this.lastIndex}]`);
    const slot = this.slotOf(index);
    return (this.lengths[slot] as number) - ((this.info[slot] as number) & headerLengthMask);
  }

  /** A view of the data of the entry at `index` (precondition: live). */
  dataAt(index: number): Uint8Array {
    assert(index >= this.first && index <= this.lastIndex, () => `dataAt(${index}) outside [${this.first}, ${this.lastIndex}]`);
    const slot = this.slotOf(index);
    const offset = this.offsets[slot] as number;
    return this.bytes.subarray(offset + ((this.info[slot] as number) & headerLengthMask), offset + (this.lengths[slot] as number));
  }

  /** A view of the frame of the entry at `index` (precondition: live). */
  frameAt(index: number): Uint8Array {
    assert(index >= this.first && index <= this.lastIndex, () => `frameAt(${index}) outside [${this.first}, ${this.lastIndex}]`);
    const slot = this.slotOf(index);
    const offset = this.offsets[slot] as number;
    return this.bytes.subarray(offset, offset + (this.lengths[slot] as number));
  }

  /**
   * Encodes and appends one entry at lastIndex + 1. Returns false, appending nothing, when the ring
   * would have to grow past bytesMax.
   */
  append(term: number, kind: number, data: Uint8Array): boolean {
    assert(term >= this.lastTerm, () => `append term ${term} below last term ${this.lastTerm}`);
    const length = frameBytes(term, data.length);
    const offset = this.reserve(length);
    if (offset < 0) return false;
    const written = writeFrame(this.bytes, offset, term, kind, data);
    assert(written === length, () => `frame wrote ${written} bytes, reserved ${length}`);
    this.pushSlot(offset, length, term, kind, written - data.length);
    this.framesEncoded += 1;
    return true;
  }

  /**
   * Copies `frames` (already validated) to the end of the log, skipping the first `skip` of them.
   * Returns how many entries were appended: fewer than offered only when bytesMax is reached.
   */
  appendFrames(frames: EntryFrames, skip = 0): number {
    const appended = this.appendFramesInner(frames, skip);
    this.framesCopied += appended;
    return appended;
  }

  private appendFramesInner(frames: EntryFrames, skip: number): number {
    let skipped = 0;
    let appended = 0;
    const header = this.header;
    for (const slice of frames.slices) {
      let at = 0;
      // Fast path: the rest of this slice fits contiguously, copy it in one go, then index it.
      while (at < slice.length && skipped < skip) {
        const length = header.parse(slice, at, slice.length);
        assert(length > 0, () => `appendFrames: malformed frame at byte ${at}`);
        at += length;
        skipped += 1;
      }
      if (at >= slice.length) continue;
      const rest = slice.length - at;
      const base = this.reserveBulk(rest);
      if (base >= 0) {
        this.bytes.set(at === 0 ? slice : slice.subarray(at), base);
        let cursor = 0;
        while (cursor < rest) {
          const length = header.parse(this.bytes, base + cursor, base + rest);
          assert(length > 0, () => `appendFrames: malformed frame at byte ${at + cursor}`);
          assert(header.term >= this.lastTerm, () => `appendFrames: term ${header.term} below last term ${this.lastTerm}`);
          this.pushSlot(base + cursor, length, header.term, header.kind, header.headerLength);
          cursor += length;
          appended += 1;
        }
        continue;
      }
      // Slow path: frame by frame, wrapping or growing as needed.
      while (at < slice.length) {
        const length = header.parse(slice, at, slice.length);
        assert(length > 0, () => `appendFrames: malformed frame at byte ${at}`);
        assert(header.term >= this.lastTerm, () => `appendFrames: term ${header.term} below last term ${this.lastTerm}`);
        const offset = this.reserve(length);
        if (offset < 0) return appended;
        this.bytes.set(slice.subarray(at, at + length), offset);
        this.pushSlot(offset, length, header.term, header.kind, header.headerLength);
        at += length;
        appended += 1;
      }
    }
    return appended;
  }

  /** Removes every entry after `index` (firstIndex - 1 <= index <= lastIndex). */
  truncateAfter(index: number): void {
    assert(index >= this.first - 1, () => `truncateAfter(${index}) below firstIndex - 1 = ${this.first - 1}`);
    assert(index <= this.lastIndex, () => `truncateAfter(${index}) past lastIndex ${this.lastIndex}`);
    const keep = index - this.first + 1;
    if (keep === this.liveCount) return;
    this.liveCount = keep;
    if (keep === 0) {
      this.byteTail = this.byteHead;
      this.wrapped = false;
      return;
    }
    const slot = this.slotOf(index);
    const offset = this.offsets[slot] as number;
    if (this.wrapped && offset >= this.byteHead) this.wrapped = false;
    this.byteTail = offset + (this.lengths[slot] as number);
  }

  /** Releases every entry up to and including `index` (firstIndex <= index <= lastIndex). */
  compactThrough(index: number): void {
    assert(index >= this.first, () => `compactThrough(${index}) below firstIndex ${this.first}`);
    assert(index <= this.lastIndex, () => `compactThrough(${index}) past lastIndex ${this.lastIndex}`);
    const released = index - this.first + 1;
    this.baseTerm = this.terms[this.slotOf(index)] as number;
    this.first = index + 1;
    this.liveCount -= released;
    this.slotHead = (this.slotHead + released) & this.slotMask;
    if (this.liveCount === 0) {
      this.byteHead = this.byteTail;
      this.wrapped = false;
      return;
    }
    const head = this.offsets[this.slotHead] as number;
    if (this.wrapped && head < this.byteHead) this.wrapped = false;
    this.byteHead = head;
  }

  /** Drops everything and makes the log empty after (index, term): installing a snapshot. */
  resetTo(index: number, term: number): void {
    assert(index >= 0 && term >= 0, () => `resetTo(${index}, ${term}) negative`);
    this.first = index + 1;
    this.baseTerm = term;
    this.liveCount = 0;
    this.slotHead = 0;
    this.byteHead = 0;
    this.byteTail = 0;
    this.wrapped = false;
  }

  /** Bytes held by the entries firstIndex <= from <= to <= lastIndex. */
  bytesBetween(from: number, to: number): number {
    const a = this.slotOf(from);
    const b = this.slotOf(to);
    const start = this.offsets[a] as number;
    const startOfLast = this.offsets[b] as number;
    const end = startOfLast + (this.lengths[b] as number);
    return startOfLast >= start ? end - start : this.gapStart - start + end;
  }

  /**
   * The last index `to` in [from, lastIndex] such that entries from..to take at most `bytesBudget`
   * bytes and number at most `countMax`; at least `from` itself, so a large entry still moves.
   * Precondition: firstIndex <= from <= lastIndex.
   */
  lastIndexWithin(from: number, countMax: number, bytesBudget: number): number {
    let high = Math.min(this.lastIndex, from + countMax - 1);
    if (this.bytesBetween(from, high) <= bytesBudget) return high;
    let low = from; // invariant: entries from..low fit, or low === from
    while (low < high) {
      const middle = low + Math.ceil((high - low) / 2);
      if (this.bytesBetween(from, middle) <= bytesBudget) low = middle;
      else high = middle - 1;
    }
    return low;
  }

  /** Views of the frames from..to (one or two slices). Valid until the ring's next mutation. */
  frames(from: number, to: number): EntryFrames {
    if (to < from) return noEntries;
    assert(from >= this.first && to <= this.lastIndex, () => `frames(${from}, ${to}) outside [${this.first}, ${this.lastIndex}]`);
    const a = this.slotOf(from);
    const b = this.slotOf(to);
    const start = this.offsets[a] as number;
    const startOfLast = this.offsets[b] as number;
    const end = startOfLast + (this.lengths[b] as number);
    const count = to - from + 1;
    if (startOfLast >= start) {
      return { count, slices: [this.bytes.subarray(start, end)], byteLength: end - start };
    }
    const head = this.bytes.subarray(start, this.gapStart);
    const tail = this.bytes.subarray(0, end);
    return { count, slices: [head, tail], byteLength: head.length + tail.length };
  }

  /**
   * The first index in [low, high] whose term is at least `term`, or high + 1 if none. Terms never
   * decrease along a log, so this is a binary search.
   */
  firstIndexWithTermAtLeast(term: number, low: number, high: number): number {
    assert(low >= this.first && high <= this.lastIndex, () => `search [${low}, ${high}] outside [${this.first}, ${this.lastIndex}]`);
    let lo = low;
    let hi = high + 1;
    while (lo < hi) {
      const middle = lo + ((hi - lo) >>> 1);
      if ((this.terms[this.slotOf(middle)] as number) >= term) hi = middle;
      else lo = middle + 1;
    }
    return lo;
  }

  /** The last index in [firstIndex - 1, high] whose term is at most `term`, or firstIndex - 2 if none. */
  lastIndexWithTermAtMost(term: number, high: number): number {
    const top = Math.min(high, this.lastIndex);
    if (top < this.first) return this.baseTerm <= term ? this.first - 1 : this.first - 2;
    const above = this.firstIndexWithTermAtLeast(term + 1, this.first, top);
    if (above > this.first) return above - 1;
    return this.baseTerm <= term ? this.first - 1 : this.first - 2;
  }

  /**
   * Checks the ring's internal invariants over at most `window` entries at each end (the whole log
   * when window is Infinity). Throws AssertionError with the offending values.
   */
  checkInvariants(window = 64): void {
    const capacity = this.bytes.length;
    assert(this.liveCount >= 0, () => `ring count ${this.liveCount} negative`);
    assert(this.liveCount <= this.slotMask + 1, () => `ring count ${this.liveCount} above slot capacity ${this.slotMask + 1}`);
    assert(this.first >= 1, () => `ring firstIndex ${this.first} below 1`);
    assert(this.byteTail <= capacity, () => `ring tail ${this.byteTail} past capacity ${capacity}`);
    if (this.wrapped) {
      assert(this.byteTail <= this.byteHead, () => `wrapped ring tail ${this.byteTail} past head ${this.byteHead}`);
      assert(this.byteHead <= this.gapStart, () => `wrapped ring head ${this.byteHead} past gap ${this.gapStart}`);
      assert(this.gapStart <= capacity, () => `ring gap ${this.gapStart} past capacity ${capacity}`);
    } else if (this.liveCount > 0) {
      assert(this.byteHead <= this.byteTail, () => `ring head ${this.byteHead} past tail ${this.byteTail}`);
    }
    if (this.liveCount === 0) return;
    assert(this.offsets[this.slotHead] === this.byteHead, () => `first frame at ${this.offsets[this.slotHead]}, head ${this.byteHead}`);
    const last = this.slotOf(this.lastIndex);
    assert((this.offsets[last] as number) + (this.lengths[last] as number) === this.byteTail, () => `last frame ends at ${(this.offsets[last] as number) + (this.lengths[last] as number)}, tail ${this.byteTail}`);
    const checkRange = (from: number, to: number): void => {
      let previousTerm = from === this.first ? this.baseTerm : (this.terms[this.slotOf(from - 1)] as number);
      for (let index = from; index <= to; index++) {
        const slot = this.slotOf(index);
        const offset = this.offsets[slot] as number;
        const length = this.lengths[slot] as number;
        const term = this.terms[slot] as number;
        assert(term >= previousTerm, () => `term ${term} at index ${index} below previous ${previousTerm}`);
        assert(offset + length <= capacity, () => `frame ${index} ends at ${offset + length} past capacity ${capacity}`);
        const parsed = this.header.parse(this.bytes, offset, offset + length);
        assert(parsed === length, () => `frame ${index} parses to ${parsed} bytes, indexed as ${length}`);
        assert(this.header.term === term, () => `frame ${index} holds term ${this.header.term}, indexed as ${term}`);
        if (index > from) {
          const previous = this.slotOf(index - 1);
          const previousEnd = (this.offsets[previous] as number) + (this.lengths[previous] as number);
          assert(offset === previousEnd || (offset === 0 && this.wrapped && previousEnd === this.gapStart), () => `frame ${index} at ${offset} does not follow frame ${index - 1} ending at ${previousEnd}`);
        }
        previousTerm = term;
      }
    };
    const lastIndex = this.lastIndex;
    if (this.liveCount <= 2 * window) {
      checkRange(this.first, lastIndex);
    } else {
      checkRange(this.first, this.first + window - 1);
      checkRange(lastIndex - window + 1, lastIndex);
    }
  }

  /** Reserves `length` contiguous bytes at the tail; returns the offset, or -1 past bytesMax. */
  private reserve(length: number): number {
    const offset = this.tryReserve(length);
    if (offset >= 0) return offset;
    if (!this.grow(length)) return -1;
    const grown = this.tryReserve(length);
    assert(grown >= 0, () => `reserve(${length}) failed after growth to ${this.bytes.length}`);
    return grown;
  }

  /** Like reserve, but for a bulk copy: never wraps, only grows (the slow path handles wrapping). */
  private reserveBulk(length: number): number {
    if (this.liveCount === 0) {
      this.byteHead = 0;
      this.byteTail = 0;
      this.wrapped = false;
    }
    const limit = this.wrapped ? this.byteHead : this.bytes.length;
    if (this.byteTail + length <= limit) {
      const offset = this.byteTail;
      this.byteTail += length;
      return offset;
    }
    return -1;
  }

  private tryReserve(length: number): number {
    if (this.liveCount === 0) {
      this.byteHead = 0;
      this.byteTail = 0;
      this.wrapped = false;
    }
    const capacity = this.bytes.length;
    if (!this.wrapped) {
      if (this.byteTail + length <= capacity) {
        const offset = this.byteTail;
        this.byteTail += length;
        return offset;
      }
      if (length <= this.byteHead) {
        this.gapStart = this.byteTail;
        this.wrapped = true;
        this.byteTail = length;
        return 0;
      }
      return -1;
    }
    if (this.byteTail + length <= this.byteHead) {
      const offset = this.byteTail;
      this.byteTail += length;
      return offset;
    }
    return -1;
  }

  /** Doubles capacity until `extra` more bytes fit, unwrapping into a new buffer. False past bytesMax. */
  private grow(extra: number): boolean {
    const live = this.byteLength;
    let capacity = this.bytes.length;
    while (capacity < live + extra) capacity *= 2;
    if (capacity === this.bytes.length) capacity *= 2;
    if (capacity > this.bytesMax) {
      if (live + extra > this.bytesMax) return false;
      capacity = this.bytesMax;
    }
    const next = new Uint8Array(capacity);
    const head = this.byteHead;
    if (this.liveCount > 0) {
      if (this.wrapped) {
        const firstPart = this.gapStart - head;
        next.set(this.bytes.subarray(head, this.gapStart), 0);
        next.set(this.bytes.subarray(0, this.byteTail), firstPart);
        for (let i = 0; i < this.liveCount; i++) {
          const slot = (this.slotHead + i) & this.slotMask;
          const offset = this.offsets[slot] as number;
          this.offsets[slot] = offset >= head ? offset - head : offset + firstPart;
        }
      } else {
        next.set(this.bytes.subarray(head, this.byteTail), 0);
        for (let i = 0; i < this.liveCount; i++) {
          const slot = (this.slotHead + i) & this.slotMask;
          this.offsets[slot] = (this.offsets[slot] as number) - head;
        }
      }
    }
    this.bytes = next;
    this.byteHead = 0;
    this.byteTail = live;
    this.wrapped = false;
    this.gapStart = 0;
    return true;
  }

  private pushSlot(offset: number, length: number, term: number, kind: number, headerLength: number): void {
    if (this.liveCount > this.slotMask) this.growSlots();
    const slot = (this.slotHead + this.liveCount) & this.slotMask;
    this.offsets[slot] = offset;
    this.lengths[slot] = length;
    this.terms[slot] = term;
    this.info[slot] = headerLength | (kind << kindShift);
    this.liveCount += 1;
  }

  private growSlots(): void {
    const capacity = (this.slotMask + 1) * 2;
    const offsets = new Uint32Array(capacity);
    const lengths = new Uint32Array(capacity);
    const terms = new Float64Array(capacity);
    const info = new Uint8Array(capacity);
    for (let i = 0; i < this.liveCount; i++) {
      const slot = (this.slotHead + i) & this.slotMask;
      offsets[i] = this.offsets[slot] as number;
      lengths[i] = this.lengths[slot] as number;
      terms[i] = this.terms[slot] as number;
      info[i] = this.info[slot] as number;
    }
    this.offsets = offsets;
    this.lengths = lengths;
    this.terms = terms;
    this.info = info;
    this.slotHead = 0;
    this.slotMask = capacity - 1;
  }
}

function ceilPowerOfTwo(value: number): number {
  let power = 1;
  while (power < value) power *= 2;
  return power;
}
