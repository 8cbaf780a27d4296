/**
 * Proves EntryLog, the run-based log model both storages share, against the simplest reference: a
 * plain array of frames. Random sequences of appends with suffix replacement (§5.3), truncations,
 * compactions and resets leave both with the same entries, bytes and terms; and bad appends (a gap, a
 * term going down) are refused with a reason.
 */
import { describe, expect, it } from 'vitest';
import { EntryReader, Prng, encodeEntry, framesOf } from '@raftlab/core';
import { EntryLog, runOf, scanFrames } from '../src/index.js';

interface ReferenceEntry {
  readonly term: number;
  readonly frame: Uint8Array;
}

function framesToList(log: EntryLog): ReferenceEntry[] {
  const reader = new EntryReader().reset(log.frames());
  const list: ReferenceEntry[] = [];
  while (reader.next()) list.push({ term: reader.term, frame: reader.bytes.slice(reader.frameOffset, reader.frameOffset + reader.frameLength) });
  return list;
}

describe('EntryLog', () => {
  it('matches a plain array under random appends, truncations, compactions and resets', () => {
    for (let seed = 1; seed <= 30; seed++) {
      const prng = new Prng(seed);
      const log = new EntryLog();
      let base = 0;
      let baseTerm = 0;
      let reference: ReferenceEntry[] = [];
      for (let step = 0; step < 200; step++) {
        const last = base + reference.length;
        const choice = prng.nextInt(10);
        if (choice < 6) {
          const firstIndex = base + 1 + prng.nextInt(last - base + 1);
          const previousTerm = firstIndex - 1 === base ? baseTerm : (reference[firstIndex - 2 - base] as ReferenceEntry).term;
          let term = previousTerm + prng.nextInt(2);
          const frames: Uint8Array[] = [];
          const count = 1 + prng.nextInt(6);
          for (let i = 0; i < count; i++) {
            term += prng.nextInt(4) === 0 ? 1 : 0;
            frames.push(encodeEntry(term, 'normal', new Uint8Array(prng.nextInt(300)).fill(step & 0xff)));
          }
          const joined = framesOf(frames).slices[0] as Uint8Array;
          log.append(runOf(firstIndex, joined));
          reference = reference.slice(0, firstIndex - 1 - base);
          for (const frame of frames) reference.push({ term: scanTerm(frame), frame });
        } else if (choice < 7 && last > base) {
          const keep = base + prng.nextInt(last - base + 1);
          log.truncateAfter(keep);
          reference = reference.slice(0, keep - base);
        } else if (choice < 9 && last > base) {
          const through = base + prng.nextInt(last - base + 1);
          const term = through === base ? baseTerm : (reference[through - 1 - base] as ReferenceEntry).term;
          log.compactThrough(through);
          reference = reference.slice(through - base);
          base = through;
          baseTerm = term;
        } else if (choice === 9) {
          const index = last + prng.nextInt(5);
          const term = (reference[reference.length - 1]?.term ?? baseTerm) + prng.nextInt(2);
          log.resetTo(index, term);
          reference = [];
          base = index;
          baseTerm = term;
        }
        expect(log.baseIndex, `seed ${seed} step ${step}`).toBe(base);
        expect(log.lastIndex).toBe(base + reference.length);
        expect(log.count).toBe(reference.length);
        expect(log.byteLength).toBe(reference.reduce((sum, entry) => sum + entry.frame.length, 0));
        expect(log.termAt(base)).toBe(baseTerm);
        expect(log.lastTerm).toBe(reference[reference.length - 1]?.term ?? baseTerm);
        const probe = base + 1 + prng.nextInt(reference.length + 1);
        expect(log.termAt(probe)).toBe(reference[probe - base - 1]?.term ?? -1);
        const list = framesToList(log);
        expect(list.map((entry) => entry.term)).toEqual(reference.map((entry) => entry.term));
        expect(list.map((entry) => Buffer.from(entry.frame).toString('hex'))).toEqual(reference.map((entry) => Buffer.from(entry.frame).toString('hex')));
      }
    }
  });

  it('refuses an append that leaves a gap, starts at or below the base, or lowers the term', () => {
    const log = new EntryLog();
    log.append(runOf(1, framesOf([encodeEntry(2, 'normal', new Uint8Array(1)), encodeEntry(3, 'normal', new Uint8Array(1))]).slices[0] as Uint8Array));
    expect(log.checkAppend(runOf(4, encodeEntry(3, 'normal', new Uint8Array(0))))).toMatch(/gap after the last index 2/);
    expect(log.checkAppend(runOf(3, encodeEntry(2, 'normal', new Uint8Array(0))))).toMatch(/term 2 below term 3/);
    log.compactThrough(1);
    expect(log.checkAppend(runOf(1, encodeEntry(3, 'normal', new Uint8Array(0))))).toMatch(/at or below the base index 1/);
    expect(log.checkAppend(runOf(2, encodeEntry(2, 'normal', new Uint8Array(0))))).toBeNull();
  });

  it('scanFrames rejects malformed frames and decreasing terms', () => {
    const good = framesOf([encodeEntry(1, 'normal', new Uint8Array(3)), encodeEntry(2, 'empty', new Uint8Array(0))]).slices[0] as Uint8Array;
    expect(scanFrames(good)).toEqual({ ok: true, count: 2, firstTerm: 1, lastTerm: 2 });
    expect(scanFrames(good.subarray(0, good.length - 1)).ok).toBe(false);
    const decreasing = framesOf([encodeEntry(5, 'normal', new Uint8Array(0)), encodeEntry(4, 'normal', new Uint8Array(0))]).slices[0] as Uint8Array;
    expect(scanFrames(decreasing)).toEqual({ ok: false, reason: 'entry 1 of the run has term 4 below the previous term 5' });
  });
});

function scanTerm(frame: Uint8Array): number {
  const scan = scanFrames(frame);
  if (!scan.ok) throw new Error(scan.reason);
  return scan.firstTerm;
}
