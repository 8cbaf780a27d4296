/**
 * The log ring against a plain-array reference: thousands of random operations (append, bulk
 * append of raw frames, truncate suffix, compact prefix, reset) with sizes chosen so the ring wraps
 * and grows often; after every operation every read (terms, data, frames, one-or-two-slice runs,
 * byte counts, term searches) must agree with the reference, and the ring's own invariants hold.
 */
import { describe, expect, test } from 'vitest';
import { EntryReader, LogRing, Prng, encodeEntry, entryKindCode, framesOf } from '../src/index.js';

interface RefEntry {
  term: number;
  kind: number;
  data: Uint8Array;
}

class Reference {
  base = 0; // index before the first entry
  baseTerm = 0;
  entries: RefEntry[] = [];
  get lastIndex(): number {
    return this.base + this.entries.length;
  }
  get lastTerm(): number {
    return this.entries.length === 0 ? this.baseTerm : (this.entries[this.entries.length - 1] as RefEntry).term;
  }
  at(index: number): RefEntry {
    return this.entries[index - this.base - 1] as RefEntry;
  }
}

function randomData(prng: Prng): Uint8Array {
  // Mostly small, sometimes large enough to force wrapping and growth, sometimes empty.
  const roll = prng.nextFloat();
  const length = roll < 0.1 ? 0 : roll < 0.85 ? prng.nextInt(40) : roll < 0.99 ? 200 + prng.nextInt(800) : 3000 + prng.nextInt(2000);
  const data = new Uint8Array(length);
  for (let i = 0; i < length; i++) data[i] = prng.nextInt(256);
  return data;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function compare(ring: LogRing, ref: Reference, prng: Prng, full: boolean): void {
  ring.checkInvariants(full ? Infinity : 8);
  expect(ring.firstIndex).toBe(ref.base + 1);
  expect(ring.lastIndex).toBe(ref.lastIndex);
  expect(ring.lastTerm).toBe(ref.lastTerm);
  expect(ring.termAt(ref.base)).toBe(ref.baseTerm);
  expect(ring.termAt(ref.base - 1)).toBe(ref.base >= 1 ? -1 : -1);
  expect(ring.termAt(ref.lastIndex + 1)).toBe(-1);
  let totalBytes = 0;
  for (let index = ref.base + 1; index <= ref.lastIndex; index++) {
    const entry = ref.at(index);
    totalBytes += ring.frameAt(index).length;
    if (!full && prng.nextInt(16) !== 0) continue;
    if (ring.termAt(index) !== entry.term) expect(ring.termAt(index), `term at ${index}`).toBe(entry.term);
    if (ring.kindAt(index) !== entry.kind) expect(ring.kindAt(index), `kind at ${index}`).toBe(entry.kind);
    if (!sameBytes(ring.dataAt(index), entry.data)) expect(ring.dataAt(index), `data at ${index}`).toEqual(entry.data);
  }
  expect(ring.byteLength).toBe(totalBytes);
  if (ref.entries.length === 0) return;
  // A random run: frames must decode to the reference, in one or two slices.
  const from = ref.base + 1 + prng.nextInt(ref.entries.length);
  const to = from + prng.nextInt(ref.lastIndex - from + 1);
  const run = ring.frames(from, to);
  expect(run.count).toBe(to - from + 1);
  expect(run.slices.length === 1 || run.slices.length === 2).toBe(true);
  expect(run.byteLength).toBe(ring.bytesBetween(from, to));
  const reader = new EntryReader().reset(run);
  for (let index = from; index <= to; index++) {
    expect(reader.next()).toBe(true);
    if (reader.term !== ref.at(index).term) expect(reader.term, `run term at ${index}`).toBe(ref.at(index).term);
    if (!sameBytes(reader.data(), ref.at(index).data)) expect(reader.data(), `run data at ${index}`).toEqual(ref.at(index).data);
  }
  expect(reader.next()).toBe(false);
  // Byte-budgeted runs never exceed the budget unless a single entry does.
  const budget = prng.nextInt(2000) + 1;
  const last = ring.lastIndexWithin(from, 1 + prng.nextInt(50), budget);
  expect(last).toBeGreaterThanOrEqual(from);
  if (last > from) expect(ring.bytesBetween(from, last)).toBeLessThanOrEqual(budget);
  // Term searches agree with a linear scan.
  const term = ref.at(from).term + prng.nextInt(3) - 1;
  let expectedFirst = to + 1;
  for (let index = from; index <= to; index++) {
    if (ref.at(index).term >= term) {
      expectedFirst = index;
      break;
    }
  }
  expect(ring.firstIndexWithTermAtLeast(term, from, to)).toBe(expectedFirst);
  let expectedLast = ref.base - 1;
  if (ref.baseTerm <= term) expectedLast = ref.base;
  for (let index = ref.base + 1; index <= ref.lastIndex; index++) if (ref.at(index).term <= term) expectedLast = index;
  expect(ring.lastIndexWithTermAtMost(term, ref.lastIndex)).toBe(expectedLast);
}

describe('LogRing against a plain-array reference', () => {
  for (const seed of [1, 2, 3, 4, 5, 6, 7, 8]) {
    test(`random operations agree with the reference (seed ${seed})`, () => {
      const prng = new Prng(seed);
      const ring = new LogRing({ initialBytes: 256, initialSlots: 4, bytesMax: 1 << 22 });
      const ref = new Reference();
      let term = 1;
      let wraps = 0;
      let grows = 0;
      for (let step = 0; step < 3000; step++) {
        const capacityBefore = ring.byteCapacity;
        const op = prng.nextFloat();
        if (op < 0.45) {
          if (prng.chance(0.1)) term += 1;
          const data = randomData(prng);
          const kind = prng.chance(0.1) ? entryKindCode.empty : entryKindCode.normal;
          expect(ring.append(term, kind, kind === entryKindCode.empty ? new Uint8Array(0) : data)).toBe(true);
          ref.entries.push({ term, kind, data: kind === entryKindCode.empty ? new Uint8Array(0) : data });
        } else if (op < 0.65) {
          // Bulk append of raw frames, as a follower receiving AppendEntries, skipping a prefix.
          const count = 1 + prng.nextInt(20);
          const frames: Uint8Array[] = [];
          const added: RefEntry[] = [];
          for (let i = 0; i < count; i++) {
            if (prng.chance(0.05)) term += 1;
            const data = randomData(prng);
            frames.push(encodeEntry(term, 'normal', data));
            added.push({ term, kind: entryKindCode.normal, data });
          }
          const skip = prng.nextInt(Math.min(3, count));
          // The skipped entries must already be in the log: append them first.
          for (const entry of added.slice(0, skip)) {
            ring.append(entry.term, entry.kind, entry.data);
            ref.entries.push(entry);
          }
          expect(ring.appendFrames(framesOf(frames), skip)).toBe(count - skip);
          ref.entries.push(...added.slice(skip));
        } else if (op < 0.72) {
          if (ref.entries.length > 0) {
            const keep = ref.base + prng.nextInt(ref.entries.length + 1);
            ring.truncateAfter(keep);
            ref.entries.length = keep - ref.base;
          }
        } else if (op < 0.985) {
          if (ref.entries.length > 0) {
            // Release up to the older half: keeps a live window that slides around the ring.
            const through = ref.base + 1 + prng.nextInt(Math.ceil(ref.entries.length / 2));
            const entry = ref.at(through);
            ring.compactThrough(through);
            ref.entries = ref.entries.slice(through - ref.base);
            ref.base = through;
            ref.baseTerm = entry.term;
          }
        } else {
          term += 1;
          const index = ref.lastIndex + prng.nextInt(5);
          ring.resetTo(index, term);
          ref.base = index;
          ref.baseTerm = term;
          ref.entries = [];
        }
        if (ring.byteCapacity > capacityBefore) grows += 1;
        const run = ref.entries.length > 1 ? ring.frames(ref.base + 1, ref.lastIndex) : null;
        if (run !== null && run.slices.length === 2) wraps += 1;
        compare(ring, ref, prng, step % 50 === 0);
      }
      // The operation mix must actually exercise wrapping and growth.
      expect(wraps, `wrapped runs ${wraps}`).toBeGreaterThan(50);
      expect(grows, `growths ${grows}`).toBeGreaterThanOrEqual(2);
    });
  }

  test('append refuses past bytesMax instead of growing without bound', () => {
    const ring = new LogRing({ initialBytes: 1024, bytesMax: 4096 });
    const data = new Uint8Array(1000);
    let appended = 0;
    while (ring.append(1, entryKindCode.normal, data)) appended += 1;
    expect(appended).toBe(4);
    expect(ring.byteCapacity).toBe(4096);
    ring.compactThrough(2);
    expect(ring.append(1, entryKindCode.normal, data)).toBe(true);
    expect(ring.frames(3, 5).slices.length).toBe(2);
  });
});
