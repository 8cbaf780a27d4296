/**
 * WAL recovery: reads a storage directory back into the state a RaftNode restores from.
 *
 *  1. Leftover `snapshot-*.snap.tmp` files (a snapshot write cut short) are removed.
 *  2. The newest valid snapshot file is chosen; older ones are removed (a crash after a new snapshot
 *     became durable can leave them behind).
 *  3. Segments are replayed in sequence order, record by record, batch by batch (see record.ts): hard
 *     states (the last wins), entries runs (a lower index supersedes: suffix replacement), installed
 *     snapshot markers (the log restarts after them). Entry bytes stay where they were read: the
 *     recovered runs are views of the segment buffers, never copied or re-encoded.
 *  4. The log is joined to the snapshot (§7: kept after the snapshot's last entry if the terms agree,
 *     otherwise discarded) and the hard state adjusted if needed (persisted.ts).
 *
 * Preallocated space. A segment may end in zeros that were never written (WalOptions.preallocateBytes
 * extends the active segment with zeros ahead of its records). Zeros are never a record (type 0 is no
 * kind), so an all-zero rest of a segment that starts at a batch boundary is simply where the records
 * end: it is cut without a warning (nothing was lost). A segment that is all zeros is treated like an
 * empty one. A save cut short inside the zeros is a torn tail as before.
 *
 * Damage. A record that fails to parse (cut short, impossible length, CRC mismatch, unknown type) or a
 * batch without its end record is a torn tail when it is in the last segment and no valid batch end
 * follows it: the unfinished last save of a crashed process, never acknowledged. The segment is
 * truncated to the end of the last complete batch and a warning logged. Anything else (damage with a
 * complete save after it, damage in an earlier segment, a missing segment, a valid record that makes
 * no sense, a damaged snapshot) throws StorageCorruptionError naming the file and byte offset, unless
 * the storage was opened with `repair: 'truncate'`: then the damaged segment is cut at the last
 * complete batch before the damage, every later segment is removed, and a warning says what was lost.
 * Repair first salvages the newest intact hard state record from the discarded bytes and keeps it, so
 * a repaired node never forgets a term or a vote it may have acted on (§5.2: one vote per term).
 */
import { type HardState, type PersistedState, type Snapshot } from '@raftlab/core';
import { EntryLog, scanFrames } from './entry-log.js';
import { StorageCorruptionError } from './errors.js';
import type { StorageFileSystem } from './file-system.js';
import { persistedStateOf } from './persisted.js';
import {
  type RecordKind,
  encodeHardState,
  encodeSegmentHeader,
  entriesPrefixBytes,
  findBatchEnd,
  hardStatePayloadBytes,
  parseRecord,
  readU32,
  readU64,
  recordHeaderBytes,
  recordKind,
  segmentHeaderPayloadBytes,
  segmentMagic,
  segmentVersion,
  snapshotPayloadBytes,
} from './record.js';
import { type SegmentInfo, parseSegmentFileName } from './segment.js';
import { decodeSnapshotFile, parseSnapshotFileName, temporarySuffix } from './snapshot-file.js';
import type { StorageLogger } from './storage.js';

/** What to do about damage that is not a torn tail. */
export type RepairMode = 'none' | 'truncate';

/** Test-only switches that plant known bugs in recovery, so tests can prove their checks catch them. */
export interface WalPlantedBugs {
  /** Replay ignores suffix replacement: an entries record that overlaps the log is dropped. */
  readonly ignoreSuffixReplacement: boolean;
}

/** Inputs of a recovery. */
export interface RecoveryOptions {
  readonly files: StorageFileSystem;
  readonly logger: StorageLogger;
  readonly recordBytesMax: number;
  readonly snapshotBytesMax: number;
  readonly repair: RepairMode;
  /** Whether repairs fsync what they write (false under policy none). */
  readonly sync: boolean;
  /** Only read: never truncate, remove or rename (a load() while the storage is open). */
  readonly readOnly: boolean;
  readonly plantedBugs: WalPlantedBugs;
}

/** What recovery found. */
export interface Recovery {
  /** What to restore from; null when nothing was ever persisted. */
  readonly state: PersistedState | null;
  /** The snapshot (also in state), with its file name. */
  readonly snapshot: Snapshot | null;
  readonly snapshotFile: string | null;
  /** The log after the snapshot (entries in state are its frames). */
  readonly log: EntryLog;
  /** Segments kept on disk, in sequence order. */
  readonly segments: SegmentInfo[];
  /** Sequence number for the next segment. */
  readonly nextSequence: number;
  /**
   * Set when recovery discarded entries that are still in the segments (an interrupted snapshot
   * install, a repair): the next segment must start with this snapshot marker so later recoveries
   * reach the same log.
   */
  readonly resetMarker: { readonly index: number; readonly term: number } | null;
}

/** A decoded record. */
type DecodedRecord =
  | { readonly kind: 'segmentHeader'; readonly offset: number; readonly sequence: number }
  | { readonly kind: 'hardState'; readonly offset: number; readonly hardState: HardState }
  | { readonly kind: 'entries'; readonly offset: number; readonly firstIndex: number; readonly count: number; readonly frames: Uint8Array; readonly firstTerm: number; readonly lastTerm: number }
  | { readonly kind: 'snapshot'; readonly offset: number; readonly index: number; readonly term: number };

/** Thrown inside a replay to restart recovery after a repair changed the files. */
class RepairedSignal {}

/** Largest number of repair passes (each one truncates the log further). */
const repairPassesMax = 8;

/** Reads `directory` back (see the file comment). */
export async function recover(directory: string, options: RecoveryOptions): Promise<Recovery> {
  for (let pass = 0; ; pass++) {
    try {
      return await recoverOnce(directory, options);
    } catch (error) {
      if (!(error instanceof RepairedSignal)) throw error;
      if (pass + 1 >= repairPassesMax) throw new Error(`recovery of ${directory} did not settle after ${repairPassesMax} repairs`);
    }
  }
}

async function recoverOnce(directory: string, options: RecoveryOptions): Promise<Recovery> {
  const { files, logger, readOnly } = options;
  const names = (await files.listDirectory(directory)).sort();
  const segmentNames: { name: string; sequence: number }[] = [];
  const snapshotNames: { name: string; index: number; term: number }[] = [];
  for (const name of names) {
    if (name.endsWith(temporarySuffix) && parseSnapshotFileName(name.slice(0, -temporarySuffix.length)) !== null) {
      if (!readOnly) {
        await files.remove(`${directory}/${name}`);
        logger.warn({ file: `${directory}/${name}` }, 'removed an unfinished snapshot write');
      }
      continue;
    }
    const segment = parseSegmentFileName(name);
    if (segment !== null) {
      segmentNames.push({ name, sequence: segment.sequence });
      continue;
    }
    const snapshot = parseSnapshotFileName(name);
    if (snapshot !== null) snapshotNames.push({ name, ...snapshot });
  }
  segmentNames.sort((a, b) => a.sequence - b.sequence);
  snapshotNames.sort((a, b) => b.index - a.index || b.term - a.term);

  const chosen = await chooseSnapshot(directory, snapshotNames, options);
  const replay = new Replay(directory, options, segmentNames[0]?.sequence === 1);
  for (let i = 0; i < segmentNames.length; i++) {
    const current = segmentNames[i] as { name: string; sequence: number };
    const previous = segmentNames[i - 1];
    if (previous !== undefined && current.sequence !== previous.sequence + 1) {
      await replay.damageBetweenSegments(segmentNames.slice(i), `segment ${previous.sequence + 1} is missing (the one before is ${previous.name})`);
      break;
    }
    await replay.segment(current.name, current.sequence, segmentNames.slice(i + 1).map((s) => s.name));
  }
  return replay.finish(chosen);
}

/** The newest valid snapshot; damaged newer ones are an error, or set aside under repair. */
async function chooseSnapshot(
  directory: string,
  candidates: readonly { name: string; index: number; term: number }[],
  options: RecoveryOptions,
): Promise<{ snapshot: Snapshot; name: string } | null> {
  let chosen: { snapshot: Snapshot; name: string } | null = null;
  for (const candidate of candidates) {
    const path = `${directory}/${candidate.name}`;
    if (chosen !== null) {
      if (!options.readOnly) {
        await options.files.remove(path);
        options.logger.warn({ file: path, kept: chosen.name }, 'removed a snapshot superseded by a newer one');
      }
      continue;
    }
    const bytes = await options.files.readFile(path);
    const decoded = decodeSnapshotFile(bytes, candidate);
    let problem: { offset: number; reason: string };
    if (!decoded.ok) {
      problem = decoded;
    } else if (decoded.snapshot.data.length > options.snapshotBytesMax) {
      problem = { offset: 0, reason: `data of ${decoded.snapshot.data.length} bytes above snapshotBytesMax ${options.snapshotBytesMax}` };
    } else {
      chosen = { snapshot: decoded.snapshot, name: candidate.name };
      continue;
    }
    if (options.repair !== 'truncate' || options.readOnly) throw new StorageCorruptionError(path, problem.offset, problem.reason);
    await options.files.rename(path, `${path}.corrupt`);
    options.logger.warn({ file: path, offset: problem.offset, reason: problem.reason, movedTo: `${path}.corrupt` }, 'repair: set a damaged snapshot aside');
  }
  return chosen;
}

/** Replays segments into a log and a hard state. */
class Replay {
  private hardState: HardState | null = null;
  private readonly log = new EntryLog();
  /** Whether the log's base is known: the first segment ever (the log starts at index 1) or a snapshot marker. */
  private baseKnown: boolean;
  private lastMarker: { index: number; term: number } | null = null;
  private readonly segments: SegmentInfo[] = [];
  private stopped = false;

  constructor(
    private readonly directory: string,
    private readonly options: RecoveryOptions,
    startsAtFirstSegment: boolean,
  ) {
    this.baseKnown = startsAtFirstSegment;
  }

  /** Replays one segment; `later` are the names of the segments after it. */
  async segment(name: string, sequence: number, later: readonly string[]): Promise<void> {
    if (this.stopped) return;
    const path = `${this.directory}/${name}`;
    const bytes = await this.options.files.readFile(path);
    const info: SegmentInfo = { sequence, name, bytes: bytes.length, maxIndex: 0 };
    const isLast = later.length === 0;
    if (bytes.length === 0 || zeroFrom(bytes, 0)) {
      if (isLast) {
        if (!this.options.readOnly) {
          await this.options.files.remove(path);
          this.options.logger.warn({ file: path }, 'removed an empty last segment (created just before a crash)');
        }
        return;
      }
      await this.damage({ path, bytes, offset: 0, batchStart: 0, reason: 'empty segment (no segment header)', tornPossible: false, isLast, later, sequence });
      return;
    }
    let at = 0;
    let batchStart = 0;
    let pending: DecodedRecord[] = [];
    const recordBytesMax = this.options.recordBytesMax;
    while (at < bytes.length) {
      if (pending.length === 0 && bytes[at] === 0 && zeroFrom(bytes, at)) {
        // Preallocated space after the last batch: cut it (the writer never appends to a recovered
        // segment), without a warning since nothing was lost.
        if (!this.options.readOnly) await this.options.files.truncate(path, at);
        info.bytes = at;
        break;
      }
      const parsed = parseRecord(bytes, at, bytes.length, recordBytesMax);
      if (parsed.status === 'invalid') {
        await this.damage({ path, bytes, offset: at, batchStart, reason: parsed.reason, tornPossible: true, isLast, later, sequence, info });
        return;
      }
      const decoded = decodeRecord(parsed.kind, bytes, at, parsed.payloadStart, parsed.end);
      const problem = typeof decoded === 'string' ? decoded : segmentPlacementProblem(decoded, at, sequence);
      if (problem !== null || typeof decoded === 'string') {
        await this.damage({ path, bytes, offset: at, batchStart, reason: problem ?? 'invalid record', tornPossible: false, isLast, later, sequence, info });
        return;
      }
      pending.push(decoded);
      at = parsed.end;
      if (!parsed.batchEnd) continue;
      const failure = this.apply(pending, info);
      if (failure !== null) {
        await this.damage({ path, bytes, offset: failure.offset, batchStart, reason: failure.reason, tornPossible: false, isLast, later, sequence, info });
        return;
      }
      pending = [];
      batchStart = at;
    }
    if (pending.length > 0) {
      await this.damage({ path, bytes, offset: at, batchStart, reason: `the batch from byte ${batchStart} has no end record`, tornPossible: true, isLast, later, sequence, info });
      return;
    }
    this.segments.push(info);
  }

  /** A sequence gap: the segments from `rest[0]` on cannot be trusted. */
  async damageBetweenSegments(rest: readonly { name: string }[], reason: string): Promise<void> {
    const first = rest[0] as { name: string };
    const path = `${this.directory}/${first.name}`;
    if (this.options.repair !== 'truncate' || this.options.readOnly) throw new StorageCorruptionError(path, 0, reason);
    for (const segment of rest) await this.options.files.remove(`${this.directory}/${segment.name}`);
    this.options.logger.warn({ file: path, reason, removed: rest.map((s) => s.name) }, 'repair: removed the segments after a missing one');
    this.stopped = true;
  }

  /** Applies a complete batch; returns what is wrong with it instead when it makes no sense. */
  private apply(batch: readonly DecodedRecord[], info: SegmentInfo): { offset: number; reason: string } | null {
    for (const record of batch) {
      switch (record.kind) {
        case 'segmentHeader':
          break;
        case 'hardState':
          this.hardState = record.hardState;
          break;
        case 'snapshot':
          this.log.resetTo(record.index, record.term);
          this.baseKnown = true;
          this.lastMarker = { index: record.index, term: record.term };
          info.maxIndex = Math.max(info.maxIndex, record.index);
          break;
        case 'entries': {
          const run = { firstIndex: record.firstIndex, count: record.count, bytes: record.frames, firstTerm: record.firstTerm, lastTerm: record.lastTerm };
          if (this.options.plantedBugs.ignoreSuffixReplacement && this.log.count > 0 && run.firstIndex <= this.log.lastIndex) break;
          // Before the first marker of a log whose first segments were released, the base is unknown:
          // the first run found (or one reaching below it) fixes where the retained log starts.
          if (!this.baseKnown && (this.log.count === 0 || run.firstIndex <= this.log.baseIndex)) this.log.resetTo(run.firstIndex - 1, -1);
          const problem = this.log.checkAppend(run);
          if (problem !== null) return { offset: record.offset, reason: problem };
          this.log.append(run);
          info.maxIndex = Math.max(info.maxIndex, run.firstIndex + run.count - 1);
          break;
        }
      }
    }
    return null;
  }

  /** Handles damage at `offset` (see the file comment): torn tail, repair, or an error. */
  private async damage(at: {
    path: string;
    bytes: Uint8Array;
    offset: number;
    batchStart: number;
    reason: string;
    tornPossible: boolean;
    isLast: boolean;
    later: readonly string[];
    sequence: number;
    info?: SegmentInfo;
  }): Promise<void> {
    const { files, logger, readOnly, recordBytesMax } = this.options;
    const torn = at.tornPossible && at.isLast && findBatchEnd(at.bytes, at.offset, at.bytes.length, recordBytesMax) < 0;
    if (torn) {
      this.stopped = true;
      if (readOnly) {
        if (at.info !== undefined && at.batchStart > 0) this.segments.push({ ...at.info, bytes: at.batchStart });
        return;
      }
      await this.cut(at.path, at.batchStart, at.sequence, null);
      logger.warn(
        { file: at.path, offset: at.offset, reason: at.reason, truncatedTo: at.batchStart, droppedBytes: at.bytes.length - at.batchStart },
        'torn write at the end of the log (a save cut short by a crash): truncated to the last complete save',
      );
      if (at.info !== undefined && at.batchStart > 0) this.segments.push({ ...at.info, bytes: at.batchStart });
      return;
    }
    if (this.options.repair !== 'truncate' || readOnly) throw new StorageCorruptionError(at.path, at.offset, at.reason);
    // Repair: keep the newest intact hard state of everything about to be discarded, then cut.
    let salvaged = findHardState(at.bytes, at.offset + 1, recordBytesMax);
    for (const name of at.later) {
      const found = findHardState(await files.readFile(`${this.directory}/${name}`), 0, recordBytesMax);
      if (found !== null && (salvaged === null || found.term >= salvaged.term)) salvaged = found;
    }
    await this.cut(at.path, at.batchStart, at.sequence, salvaged);
    for (const name of at.later) await files.remove(`${this.directory}/${name}`);
    logger.warn(
      {
        file: at.path,
        offset: at.offset,
        reason: at.reason,
        truncatedTo: at.batchStart,
        droppedBytes: at.bytes.length - at.batchStart,
        removedSegments: at.later,
        keptHardState: salvaged,
      },
      'repair: discarded the log from the damaged record on; the node catches up from the leader',
    );
    throw new RepairedSignal();
  }

  /**
   * Cuts a segment to `length` bytes (the end of its last complete batch) and, when a hard state was
   * salvaged, appends it as a batch of its own; an emptied segment without one is removed.
   */
  private async cut(path: string, length: number, sequence: number, salvaged: HardState | null): Promise<void> {
    const { files } = this.options;
    if (length === 0 && salvaged === null) {
      await files.remove(path);
      return;
    }
    await files.truncate(path, length);
    if (salvaged === null) return;
    const records = length === 0 ? [encodeSegmentHeader(sequence, 0, false), encodeHardState(salvaged, true)] : [encodeHardState(salvaged, true)];
    const fd = await files.open(path, 'append');
    try {
      await files.writev(fd, records);
      if (this.options.sync) await files.syncData(fd);
    } finally {
      await files.close(fd);
    }
  }

  /** Joins the replayed log to the snapshot and builds the state to restore from. */
  finish(chosen: { snapshot: Snapshot; name: string } | null): Recovery {
    const { logger, repair, readOnly } = this.options;
    const log = this.log;
    const snapshot = chosen?.snapshot ?? null;
    let resetMarker: { index: number; term: number } | null = null;
    const reset = (why: string, details: object): void => {
      const index = snapshot?.index ?? 0;
      const term = snapshot?.term ?? 0;
      log.resetTo(index, term);
      resetMarker = { index, term };
      logger.warn({ ...details, snapshotIndex: index }, why);
    };
    const corrupt = (reason: string): never => {
      throw new StorageCorruptionError(chosen === null ? this.directory : `${this.directory}/${chosen.name}`, 0, reason);
    };
    const marker = this.lastMarker;
    if (marker !== null && (snapshot === null || snapshot.index < marker.index)) {
      const reason = `the log installed a snapshot at index ${marker.index} but the newest snapshot file is ${chosen?.name ?? 'missing'}`;
      if (repair !== 'truncate' || readOnly) corrupt(reason);
      reset('repair: discarded a log whose installed snapshot is missing', { reason });
    } else if (snapshot !== null) {
      if (log.count === 0 && !this.baseKnown) {
        log.resetTo(snapshot.index, snapshot.term);
      } else if (snapshot.index < log.baseIndex) {
        const reason = `the log starts at index ${log.firstIndex} but the snapshot ends at ${snapshot.index}: entries are missing`;
        if (repair !== 'truncate' || readOnly) corrupt(reason);
        reset('repair: discarded a log that does not join the snapshot', { reason });
      } else if (snapshot.index > log.lastIndex) {
        log.resetTo(snapshot.index, snapshot.term);
      } else {
        const term = log.termAt(snapshot.index);
        if (term === snapshot.term || term === -1) {
          log.compactThrough(snapshot.index);
          if (term === -1) log.resetBaseTerm(snapshot.term);
        } else {
          // §7: the stored entry at the snapshot's index is from another term, so the snapshot was being
          // installed when the node stopped (before the marker that discards the log was durable).
          reset('discarded a log that conflicts with the snapshot (an install interrupted by a crash)', { entryTerm: term, snapshotTerm: snapshot.term });
        }
      }
    } else if (log.baseIndex !== 0) {
      const reason = `the log starts at index ${log.firstIndex} and there is no snapshot: entries are missing`;
      if (repair !== 'truncate' || readOnly) throw new StorageCorruptionError(this.directory, 0, reason);
      reset('repair: discarded a log that does not start at index 1', { reason });
    } else if (log.baseTerm === -1) {
      log.resetBaseTerm(0);
    }
    const hasData = this.hardState !== null || snapshot !== null || log.count > 0;
    const lastSegment = this.segments[this.segments.length - 1];
    return {
      state: hasData ? persistedStateOf(this.hardState, snapshot, log, logger) : null,
      snapshot,
      snapshotFile: chosen?.name ?? null,
      log,
      segments: this.segments,
      nextSequence: (lastSegment?.sequence ?? 0) + 1,
      resetMarker,
    };
  }
}

/** True when every byte of `bytes` from `at` on is zero (preallocated, never written). */
function zeroFrom(bytes: Uint8Array, at: number): boolean {
  for (let i = at; i < bytes.length; i++) if (bytes[i] !== 0) return false;
  return true;
}

/** Why `record` at `offset` is out of place in segment `sequence` (headers come first, once), or null. */
function segmentPlacementProblem(record: DecodedRecord, offset: number, sequence: number): string | null {
  if (offset === 0 && record.kind !== 'segmentHeader') return `segment starts with a ${record.kind} record, not a segment header`;
  if (offset !== 0 && record.kind === 'segmentHeader') return 'segment header in the middle of a segment';
  if (record.kind === 'segmentHeader' && record.sequence !== sequence) return `segment header says sequence ${record.sequence}, file name says ${sequence}`;
  return null;
}

/** Decodes a record's payload, or says why it is invalid although its CRC matched. */
function decodeRecord(kind: RecordKind, bytes: Uint8Array, offset: number, payloadStart: number, end: number): DecodedRecord | string {
  const length = end - payloadStart;
  switch (kind) {
    case 'segmentHeader': {
      if (length !== segmentHeaderPayloadBytes) return `segment header of ${length} bytes`;
      if (readU32(bytes, payloadStart) !== segmentMagic) return 'segment header with a bad magic number';
      const version = readU32(bytes, payloadStart + 4);
      if (version !== segmentVersion) return `unsupported segment version ${version}`;
      const sequence = readU64(bytes, payloadStart + 8);
      if (sequence < 1) return `invalid segment sequence ${sequence}`;
      return { kind, offset, sequence };
    }
    case 'hardState': {
      if (length !== hardStatePayloadBytes) return `hard state record of ${length} bytes`;
      const term = readU64(bytes, payloadStart);
      const vote = readU64(bytes, payloadStart + 8);
      const commit = readU64(bytes, payloadStart + 16);
      if (term < 0 || vote < 0 || commit < 0) return 'hard state value beyond the safe integer range';
      return { kind, offset, hardState: { term, vote, commit } };
    }
    case 'snapshot': {
      if (length !== snapshotPayloadBytes) return `snapshot record of ${length} bytes`;
      const index = readU64(bytes, payloadStart);
      const term = readU64(bytes, payloadStart + 8);
      if (index < 0 || term < 0) return 'snapshot index or term beyond the safe integer range';
      return { kind, offset, index, term };
    }
    case 'entries': {
      if (length <= entriesPrefixBytes) return `entries record of ${length} bytes holds no entry`;
      const firstIndex = readU64(bytes, payloadStart);
      const count = readU32(bytes, payloadStart + 8);
      if (firstIndex < 1) return `entries record with first index ${firstIndex}`;
      const frames = bytes.subarray(payloadStart + entriesPrefixBytes, end);
      const scan = scanFrames(frames);
      if (!scan.ok) return `entries record from index ${firstIndex}: ${scan.reason}`;
      if (scan.count !== count) return `entries record from index ${firstIndex} declares ${count} entries and holds ${scan.count}`;
      return { kind, offset, firstIndex, count, frames, firstTerm: scan.firstTerm, lastTerm: scan.lastTerm };
    }
  }
}

/** The intact hard state record with the highest term (the later one on ties) at or after `from`. */
function findHardState(bytes: Uint8Array, from: number, recordBytesMax: number): HardState | null {
  let best: HardState | null = null;
  for (let at = Math.max(0, from); at + recordHeaderBytes + hardStatePayloadBytes <= bytes.length; at++) {
    if (((bytes[at + 8] as number) & 0x7f) !== recordKind.hardState || readU32(bytes, at) !== hardStatePayloadBytes) continue;
    const parsed = parseRecord(bytes, at, bytes.length, recordBytesMax);
    if (parsed.status !== 'ok') continue;
    const decoded = decodeRecord('hardState', bytes, at, parsed.payloadStart, parsed.end);
    if (typeof decoded === 'string' || decoded.kind !== 'hardState') continue;
    if (best === null || decoded.hardState.term >= best.term) best = decoded.hardState;
  }
  return best;
}
