/**
 * The WAL record format. A segment file is a sequence of records; every record is
 *
 *    0           4           8      9
 *    +-----------+-----------+------+--------------------------------------+
 *    | length    | crc32c    | type | payload: `length` bytes               |
 *    | u32 LE    | u32 LE    | u8   |                                      |
 *    +-----------+-----------+------+--------------------------------------+
 *
 *    length  payload bytes; at most recordBytesMax (a larger value is damage, not a record)
 *    crc32c  CRC32C over the length field, then type and payload (bytes [0, 4) and [8, 9 + length)):
 *            a damaged length is caught like damaged data
 *    type    kind in the low 7 bits; 0x80 marks the last record of a batch
 *
 * Kinds and payloads (integers little-endian; u64 values are below 2^53, JavaScript's safe range):
 *
 *    1 segment header  magic u32 "RLWS" | version u32 | sequence u64 | firstIndex u64       24 bytes
 *      Always the first record of a segment; sequence matches the file name; firstIndex is the index
 *      the next entry was expected to have when the segment was created (a hint for humans).
 *    2 hard state      term u64 | vote u64 | commit u64                                      24 bytes
 *      The latest one wins. Each new segment repeats the current hard state in its first batch, so
 *      deleting older segments never loses it.
 *    3 entries         firstIndex u64 | count u32 | count entry frames, verbatim           12 + n bytes
 *      A run of consecutive entries exactly as the leader encoded them (msgpack [term, kind, data]),
 *      never re-encoded. It replaces every entry at or after firstIndex (suffix replacement, §5.3):
 *      a later record with a lower index supersedes.
 *    4 snapshot        index u64 | term u64                                                  16 bytes
 *      An installed snapshot (§7): the log restarts empty after (index, term). The snapshot itself
 *      is in its own file, made durable before this record is written.
 *
 * Batches: the records of one save() (snapshot, hard state, entries) form a batch and only the last
 * carries the 0x80 flag. Recovery applies a batch only once it has read its last record, so a save
 * is atomic: a crash in the middle of its write loses the whole save, never half of it (say, entries of
 * a new term without the hard state that raised the term).
 *
 * One record per Ready's entries (split only past recordBytesMax), not one per entry: the entries go to
 * disk in one writev of [record header, ring slice, ring slice] with no copy and no per-entry work
 * besides the CRC; per-entry records would cost 17 header bytes per entry (46% of a 16-byte entry's
 * frame), an interleaved gather list of two iovecs per entry, and a copy of every frame at recovery.
 * Entry boundaries inside a run come from the frames themselves (their headers carry their lengths).
 */
import type { HardState } from '@raftlab/core';
import { crc32cUpdate } from './crc32c.js';

/** Bytes of a record header (length, crc32c, type). */
export const recordHeaderBytes = 9;

/** Flag in the type byte: the last record of a batch. */
export const batchEndFlag = 0x80;

/** Record kinds (the type byte without the batch flag). */
export const recordKind = { segmentHeader: 1, hardState: 2, entries: 3, snapshot: 4 } as const;

/** A record kind's name. */
export type RecordKind = keyof typeof recordKind;

const kindNames: readonly (RecordKind | undefined)[] = [undefined, 'segmentHeader', 'hardState', 'entries', 'snapshot'];

/** "RLWS" as a little-endian u32. */
export const segmentMagic = 0x53574c52;

/** Version of the segment format. */
export const segmentVersion = 1;

/** Payload bytes of the fixed-size records. */
export const segmentHeaderPayloadBytes = 24;
export const hardStatePayloadBytes = 24;
export const snapshotPayloadBytes = 16;
/** Payload bytes of an entries record before its frames. */
export const entriesPrefixBytes = 12;

/** Header plus fixed fields of an entries record: what precedes its frames in the file. */
export const entriesRecordOverheadBytes = recordHeaderBytes + entriesPrefixBytes;

/** Writes `value` as a little-endian u32. */
export function writeU32(bytes: Uint8Array, at: number, value: number): void {
  bytes[at] = value & 0xff;
  bytes[at + 1] = (value >>> 8) & 0xff;
  bytes[at + 2] = (value >>> 16) & 0xff;
  bytes[at + 3] = (value >>> 24) & 0xff;
}

/** Reads a little-endian u32. */
export function readU32(bytes: Uint8Array, at: number): number {
  return (
    ((bytes[at] as number) | ((bytes[at + 1] as number) << 8) | ((bytes[at + 2] as number) << 16)) +
    (bytes[at + 3] as number) * 0x1000000
  );
}

/** Writes a safe integer as a little-endian u64. */
export function writeU64(bytes: Uint8Array, at: number, value: number): void {
  writeU32(bytes, at, value >>> 0);
  writeU32(bytes, at + 4, Math.floor(value / 0x100000000));
}

/** Reads a little-endian u64; -1 when it is beyond the safe integer range. */
export function readU64(bytes: Uint8Array, at: number): number {
  const high = readU32(bytes, at + 4);
  if (high > 0x1fffff) return -1;
  return high * 0x100000000 + readU32(bytes, at);
}

/**
 * Fills the header of a record whose payload begins in `record` at offset 9 and continues in `rest`
 * (entry slices), computing the CRC over the length, type and every payload byte.
 */
function sealRecord(record: Uint8Array, kind: number, batchEnd: boolean, payloadLength: number, rest: readonly Uint8Array[]): void {
  writeU32(record, 0, payloadLength);
  record[8] = kind | (batchEnd ? batchEndFlag : 0);
  let crc = crc32cUpdate(0, record, 0, 4);
  crc = crc32cUpdate(crc, record, 8, record.length);
  for (const slice of rest) crc = crc32cUpdate(crc, slice);
  writeU32(record, 4, crc);
}

/** A segment header record. */
export function encodeSegmentHeader(sequence: number, firstIndex: number, batchEnd: boolean): Uint8Array {
  const record = new Uint8Array(recordHeaderBytes + segmentHeaderPayloadBytes);
  writeU32(record, 9, segmentMagic);
  writeU32(record, 13, segmentVersion);
  writeU64(record, 17, sequence);
  writeU64(record, 25, firstIndex);
  sealRecord(record, recordKind.segmentHeader, batchEnd, segmentHeaderPayloadBytes, []);
  return record;
}

/** A hard state record. */
export function encodeHardState(hardState: HardState, batchEnd: boolean): Uint8Array {
  const record = new Uint8Array(recordHeaderBytes + hardStatePayloadBytes);
  writeU64(record, 9, hardState.term);
  writeU64(record, 17, hardState.vote);
  writeU64(record, 25, hardState.commit);
  sealRecord(record, recordKind.hardState, batchEnd, hardStatePayloadBytes, []);
  return record;
}

/** A snapshot (installed, log restarts after it) record. */
export function encodeSnapshotMarker(index: number, term: number, batchEnd: boolean): Uint8Array {
  const record = new Uint8Array(recordHeaderBytes + snapshotPayloadBytes);
  writeU64(record, 9, index);
  writeU64(record, 17, term);
  sealRecord(record, recordKind.snapshot, batchEnd, snapshotPayloadBytes, []);
  return record;
}

/**
 * The header and fixed fields of an entries record whose frames are `slices` (written right after it,
 * verbatim). The CRC covers the slices without copying them.
 */
export function encodeEntriesHeader(firstIndex: number, count: number, slices: readonly Uint8Array[], frameBytes: number, batchEnd: boolean): Uint8Array {
  const record = new Uint8Array(entriesRecordOverheadBytes);
  writeU64(record, 9, firstIndex);
  writeU32(record, 17, count);
  sealRecord(record, recordKind.entries, batchEnd, entriesPrefixBytes + frameBytes, slices);
  return record;
}

/** A record read from a segment, or why the bytes at that offset are not one. */
export type ParsedRecord =
  | {
      readonly status: 'ok';
      readonly kind: RecordKind;
      readonly batchEnd: boolean;
      /** Offset of the payload. */
      readonly payloadStart: number;
      /** Offset just past the payload: where the next record starts. */
      readonly end: number;
    }
  | { readonly status: 'invalid'; readonly reason: string };

/** Parses the record at `at` of `bytes[0, end)`. */
export function parseRecord(bytes: Uint8Array, at: number, end: number, recordBytesMax: number): ParsedRecord {
  if (at + recordHeaderBytes > end) return { status: 'invalid', reason: `record header cut short (${end - at} of ${recordHeaderBytes} bytes)` };
  const length = readU32(bytes, at);
  if (length > recordBytesMax) return { status: 'invalid', reason: `record length ${length} above recordBytesMax ${recordBytesMax}` };
  const recordEnd = at + recordHeaderBytes + length;
  if (recordEnd > end) return { status: 'invalid', reason: `record of ${length} payload bytes cut short (${end - at - recordHeaderBytes} present)` };
  let crc = crc32cUpdate(0, bytes, at, at + 4);
  crc = crc32cUpdate(crc, bytes, at + 8, recordEnd);
  const stored = readU32(bytes, at + 4);
  if (crc !== stored) return { status: 'invalid', reason: `crc32c mismatch (stored 0x${hex(stored)}, computed 0x${hex(crc)})` };
  const type = bytes[at + 8] as number;
  const kind = kindNames[type & ~batchEndFlag];
  if (kind === undefined) return { status: 'invalid', reason: `unknown record type 0x${type.toString(16)}` };
  return { status: 'ok', kind, batchEnd: (type & batchEndFlag) !== 0, payloadStart: at + recordHeaderBytes, end: recordEnd };
}

/**
 * Offset of the first valid record flagged as a batch end that starts in (from, end), or -1. Recovery
 * uses it to tell a torn tail (nothing complete follows the damage: the unfinished last save) from
 * damage in the middle of the log (a complete, possibly acknowledged save follows it). It tests every
 * byte offset; only offsets whose type byte and length are plausible pay for a CRC.
 */
export function findBatchEnd(bytes: Uint8Array, from: number, end: number, recordBytesMax: number): number {
  for (let at = from + 1; at + recordHeaderBytes <= end; at++) {
    const type = bytes[at + 8] as number;
    if ((type & batchEndFlag) === 0 || kindNames[type & ~batchEndFlag] === undefined) continue;
    const length = readU32(bytes, at);
    if (length > recordBytesMax || at + recordHeaderBytes + length > end) continue;
    if (parseRecord(bytes, at, end, recordBytesMax).status === 'ok') return at;
  }
  return -1;
}

function hex(value: number): string {
  return value.toString(16).padStart(8, '0');
}
