/**
 * EntryLog: a Raft log held as runs of pre-encoded entry frames, the model both storages share.
 * MemoryStorage keeps its copies of each save's entries as runs; WAL recovery replays entries records
 * into runs that are views of the segment files it read (no copy, no re-encoding). Neither keeps a
 * per-entry object or offset: a run stores its frames back to back plus the terms of its first and last
 * entries, and the rare operations that need an entry boundary inside a run (suffix replacement,
 * compaction, a term lookup) walk its frame headers.
 *
 *   base                       firstIndex = base + 1                          lastIndex
 *    |  (snapshot or nothing)  | run 0: [f f f f] | run 1: [f f] | run 2: [f f f f f] |
 *
 * Words: an index is a Raft log index; a run's `count` is entries; its `bytes` are frame bytes.
 * Invariant: runs are consecutive (run k+1 starts at run k's last index + 1), firstIndex of run 0 is
 * base + 1, and terms never decrease along the log (a Raft log's terms are monotonic, §5.3).
 */
import { type EntryFrames, FrameHeader, assert, noEntries } from '@raftlab/core';

/** A run of consecutive entries: their frames back to back in `bytes`. */
export interface EntryRun {
  /** Log index of the first entry. */
  readonly firstIndex: number;
  /** Number of entries; at least 1. */
  readonly count: number;
  /** The frames, exactly as encoded by the leader. */
  readonly bytes: Uint8Array;
  /** Term of the first entry. */
  readonly firstTerm: number;
  /** Term of the last entry. */
  readonly lastTerm: number;
}

/** What scanning a run of frames found. */
export type FrameScan =
  | { readonly ok: true; readonly count: number; readonly firstTerm: number; readonly lastTerm: number }
  | { readonly ok: false; readonly reason: string };

const scanHeader = new FrameHeader();

/**
 * Walks the frames in `bytes[start, end)`: each must be well formed and no term may be below the one
 * before it. Returns the count and the first and last terms, or why the bytes are not a run.
 */
export function scanFrames(bytes: Uint8Array, start = 0, end = bytes.length): FrameScan {
  const header = scanHeader;
  let at = start;
  let count = 0;
  let firstTerm = 0;
  let lastTerm = 0;
  while (at < end) {
    const length = header.parse(bytes, at, end);
    if (length < 0) return { ok: false, reason: `malformed entry frame ${count} at byte ${at - start} of the run` };
    if (count === 0) firstTerm = header.term;
    else if (header.term < lastTerm) {
      return { ok: false, reason: `entry ${count} of the run has term ${header.term} below the previous term ${lastTerm}` };
    }
    lastTerm = header.term;
    at += length;
    count += 1;
  }
  if (count === 0) return { ok: false, reason: 'empty run' };
  return { ok: true, count, firstTerm, lastTerm };
}

/** Builds a run from frames already known to be well formed (scanned or produced by the core). */
export function runOf(firstIndex: number, bytes: Uint8Array): EntryRun {
  const scan = scanFrames(bytes);
  assert(scan.ok, () => `runOf(${firstIndex}): ${scan.ok ? '' : scan.reason}`);
  return { firstIndex, count: scan.count, bytes, firstTerm: scan.firstTerm, lastTerm: scan.lastTerm };
}

/** Byte offset and term of entry `position` (0-based) of `run`, found by walking its frame headers. */
function locate(run: EntryRun, position: number): { offset: number; term: number } {
  assert(position >= 0 && position < run.count, () => `locate: position ${position} outside run of ${run.count}`);
  const header = scanHeader;
  let at = 0;
  for (let i = 0; i < position; i++) {
    const length = header.parse(run.bytes, at, run.bytes.length);
    assert(length > 0, () => `locate: malformed frame ${i} in run at ${run.firstIndex}`);
    at += length;
  }
  assert(header.parse(run.bytes, at, run.bytes.length) > 0, () => `locate: malformed frame ${position} in run at ${run.firstIndex}`);
  return { offset: at, term: header.term };
}

/** The first `keep` entries of `run` (1 <= keep < count). */
function headOf(run: EntryRun, keep: number): EntryRun {
  const previous = locate(run, keep - 1);
  const next = locate(run, keep);
  return { firstIndex: run.firstIndex, count: keep, bytes: run.bytes.subarray(0, next.offset), firstTerm: run.firstTerm, lastTerm: previous.term };
}

/** `run` without its first `drop` entries (1 <= drop < count). */
function tailOf(run: EntryRun, drop: number): EntryRun {
  const first = locate(run, drop);
  return {
    firstIndex: run.firstIndex + drop,
    count: run.count - drop,
    bytes: run.bytes.subarray(first.offset),
    firstTerm: first.term,
    lastTerm: run.lastTerm,
  };
}

/** A log of entry runs after a base index (see the file comment). */
export class EntryLog {
  /** Index just before the first entry: the snapshot's index, or 0 for a log from the beginning. */
  private base = 0;
  /** Term of the entry at `base`: 0 for the empty log, the snapshot's term, or -1 when unknown. */
  private termOfBase = 0;
  private runs: EntryRun[] = [];
  /** Invariant: last = base + sum of run counts. */
  private last = 0;
  private bytesTotal = 0;

  /** Index just before the first entry. */
  get baseIndex(): number {
    return this.base;
  }

  /** Term at baseIndex; -1 when unknown. */
  get baseTerm(): number {
    return this.termOfBase;
  }

  /** Index of the first entry (lastIndex + 1 when empty). */
  get firstIndex(): number {
    return this.base + 1;
  }

  /** Index of the last entry (baseIndex when empty). */
  get lastIndex(): number {
    return this.last;
  }

  /** Entries held. */
  get count(): number {
    return this.last - this.base;
  }

  /** Frame bytes held. */
  get byteLength(): number {
    return this.bytesTotal;
  }

  /** Term of the last entry (baseTerm when empty). */
  get lastTerm(): number {
    const run = this.runs[this.runs.length - 1];
    return run === undefined ? this.termOfBase : run.lastTerm;
  }

  /** Term of the entry at `index`: baseTerm at baseIndex, -1 when outside [baseIndex, lastIndex]. */
  termAt(index: number): number {
    if (index === this.base) return this.termOfBase;
    if (index < this.base || index > this.last) return -1;
    const run = this.runs[this.runContaining(index)] as EntryRun;
    if (index === run.firstIndex) return run.firstTerm;
    if (index === run.firstIndex + run.count - 1) return run.lastTerm;
    return locate(run, index - run.firstIndex).term;
  }

  /**
   * Why `run` cannot be appended (null when it can): it must start after the base, leave no gap after
   * the last entry, and not carry a term below the entry it follows.
   */
  checkAppend(run: EntryRun): string | null {
    if (run.firstIndex <= this.base) return `entries from index ${run.firstIndex} at or below the base index ${this.base}`;
    if (run.firstIndex > this.last + 1) return `entries from index ${run.firstIndex} leave a gap after the last index ${this.last}`;
    const previous = this.termAt(run.firstIndex - 1);
    if (previous > run.firstTerm) {
      return `entry ${run.firstIndex} has term ${run.firstTerm} below term ${previous} of the entry before it`;
    }
    return null;
  }

  /** Appends `run`, replacing every entry at or after its first index (§5.3: a conflicting suffix goes). */
  append(run: EntryRun): void {
    const problem = this.checkAppend(run);
    assert(problem === null, () => `EntryLog.append: ${problem}`);
    this.truncateAfter(run.firstIndex - 1);
    this.runs.push(run);
    this.last += run.count;
    this.bytesTotal += run.bytes.length;
  }

  /** Keeps the entries through `index` (baseIndex <= index), dropping the rest. */
  truncateAfter(index: number): void {
    assert(index >= this.base, () => `truncateAfter(${index}) below the base index ${this.base}`);
    while (this.last > index) {
      const run = this.runs[this.runs.length - 1] as EntryRun;
      this.bytesTotal -= run.bytes.length;
      if (run.firstIndex > index) {
        this.runs.pop();
        this.last -= run.count;
        continue;
      }
      const kept = headOf(run, index - run.firstIndex + 1);
      this.runs[this.runs.length - 1] = kept;
      this.bytesTotal += kept.bytes.length;
      this.last = index;
    }
  }

  /** Drops everything: the log is empty after `index`, whose term is `term` (-1: unknown). */
  resetTo(index: number, term: number): void {
    assert(index >= 0, () => `resetTo(${index}) below 0`);
    this.base = index;
    this.termOfBase = term;
    this.runs = [];
    this.last = index;
    this.bytesTotal = 0;
  }

  /** Sets the base term when it was unknown (-1): recovery learns it from the snapshot. */
  resetBaseTerm(term: number): void {
    assert(this.termOfBase === -1, () => `resetBaseTerm(${term}): the base term is already known (${this.termOfBase})`);
    this.termOfBase = term;
  }

  /** Drops the entries through `index` (baseIndex <= index <= lastIndex): a snapshot covers them. */
  compactThrough(index: number): void {
    assert(index >= this.base && index <= this.last, () => `compactThrough(${index}) outside [${this.base}, ${this.last}]`);
    if (index === this.base) return;
    const term = this.termAt(index);
    let dropRuns = 0;
    let droppedBytes = 0;
    while (dropRuns < this.runs.length) {
      const run = this.runs[dropRuns] as EntryRun;
      if (run.firstIndex + run.count - 1 > index) break;
      droppedBytes += run.bytes.length;
      dropRuns += 1;
    }
    this.runs.splice(0, dropRuns);
    const partial = this.runs[0];
    if (partial !== undefined && partial.firstIndex <= index) {
      const rest = tailOf(partial, index - partial.firstIndex + 1);
      droppedBytes += partial.bytes.length - rest.bytes.length;
      this.runs[0] = rest;
    }
    this.bytesTotal -= droppedBytes;
    this.base = index;
    this.termOfBase = term;
  }

  /** The entries as one EntryFrames (a slice per run; views, no copy). */
  frames(): EntryFrames {
    if (this.runs.length === 0) return noEntries;
    return { count: this.last - this.base, slices: this.runs.map((run) => run.bytes), byteLength: this.bytesTotal };
  }

  /** Position in `runs` of the run holding `index` (base < index <= last). */
  private runContaining(index: number): number {
    let low = 0;
    let high = this.runs.length - 1;
    while (low < high) {
      const middle = (low + high + 1) >>> 1;
      if ((this.runs[middle] as EntryRun).firstIndex <= index) low = middle;
      else high = middle - 1;
    }
    return low;
  }
}
