/**
 * Entry framing. An entry is encoded exactly once, by the leader that appends it, as the msgpack
 * value `[term, kind, data]`: a fixarray of three, the term as a msgpack uint (smallest form), the
 * kind as a positive fixint and the data as msgpack bin. The frame is written by hand because it is
 * the hot path, but it stays valid msgpack that any msgpack decoder (msgpackr included) can read.
 *
 *   0x93 | term (fixint | 0xcc u8 | 0xcd u16 | 0xce u32 | 0xcf u64) | kind (fixint)
 *        | 0xc4 u8 len | 0xc5 u16 len | 0xc6 u32 len | data bytes
 *
 * After that, entries move as raw bytes: into the log ring, onto the wire, into the WAL, to the
 * state machine. Nothing decodes and re-encodes them.
 */
import { assert } from './assert.js';

/** What an entry carries. `normal`: user data; `empty`: the no-op a new leader appends (§5.4.2). */
export type EntryKind = 'normal' | 'empty';

/** The kind's code inside the frame. */
export const entryKindCode = { normal: 0, empty: 1 } as const satisfies Record<EntryKind, number>;

/** Largest kind code this version understands; a frame with a larger code is malformed. */
export const entryKindCodeMax = 1;

/** The largest term a frame can carry (JavaScript's safe integer range). */
export const termMax = Number.MAX_SAFE_INTEGER;

/** Largest possible frame header: fixarray + u64 term + kind + bin32 length. */
export const frameHeaderBytesMax = 1 + 9 + 1 + 5;

/** A run of consecutive encoded entries, as one or two byte slices (two when it wraps a ring). */
export interface EntryFrames {
  /** Number of entries in the run. */
  readonly count: number;
  /** The frames back to back. Views: valid until the owner's next mutation (see RaftNode.ready). */
  readonly slices: readonly Uint8Array[];
  /** Total bytes over all slices. */
  readonly byteLength: number;
}

/** A run of entries with the log index of its first entry. */
export interface EntryRange extends EntryFrames {
  /** Log index of the first entry; meaningless when count is 0. */
  readonly firstIndex: number;
}

/** An empty run. */
export const noEntries: EntryFrames = Object.freeze({ count: 0, slices: Object.freeze([]), byteLength: 0 });

/** Bytes the term takes in a frame. */
function termBytes(term: number): number {
  if (term < 0x80) return 1;
  if (term < 0x100) return 2;
  if (term < 0x10000) return 3;
  if (term < 0x100000000) return 5;
  return 9;
}

/** Bytes of the bin header for a data length. */
function binHeaderBytes(dataLength: number): number {
  if (dataLength < 0x100) return 2;
  if (dataLength < 0x10000) return 3;
  return 5;
}

/** Total frame bytes for an entry of `term` carrying `dataLength` bytes. */
export function frameBytes(term: number, dataLength: number): number {
  return 1 + termBytes(term) + 1 + binHeaderBytes(dataLength) + dataLength;
}

/**
 * Writes the frame of one entry at `offset` of `target` and returns the bytes written. The caller
 * has reserved `frameBytes(term, data.length)` bytes.
 */
export function writeFrame(target: Uint8Array, offset: number, term: number, kind: number, data: Uint8Array): number {
  let at = offset;
  target[at++] = 0x93;
  if (term < 0x80) {
    target[at++] = term;
  } else if (term < 0x100) {
    target[at++] = 0xcc;
    target[at++] = term;
  } else if (term < 0x10000) {
    target[at++] = 0xcd;
    target[at++] = term >>> 8;
    target[at++] = term & 0xff;
  } else if (term < 0x100000000) {
    target[at++] = 0xce;
    target[at++] = term >>> 24;
    target[at++] = (term >>> 16) & 0xff;
    target[at++] = (term >>> 8) & 0xff;
    target[at++] = term & 0xff;
  } else {
    const high = Math.floor(term / 0x100000000);
    const low = term >>> 0;
    target[at++] = 0xcf;
    target[at++] = high >>> 24;
    target[at++] = (high >>> 16) & 0xff;
    target[at++] = (high >>> 8) & 0xff;
    target[at++] = high & 0xff;
    target[at++] = low >>> 24;
    target[at++] = (low >>> 16) & 0xff;
    target[at++] = (low >>> 8) & 0xff;
    target[at++] = low & 0xff;
  }
  target[at++] = kind;
  const length = data.length;
  if (length < 0x100) {
    target[at++] = 0xc4;
    target[at++] = length;
  } else if (length < 0x10000) {
    target[at++] = 0xc5;
    target[at++] = length >>> 8;
    target[at++] = length & 0xff;
  } else {
    target[at++] = 0xc6;
    target[at++] = length >>> 24;
    target[at++] = (length >>> 16) & 0xff;
    target[at++] = (length >>> 8) & 0xff;
    target[at++] = length & 0xff;
  }
  if (length > 0) target.set(data, at);
  return at + length - offset;
}

/** Encodes one entry into a new buffer (tests, tools; the log writes frames in place). */
export function encodeEntry(term: number, kind: EntryKind, data: Uint8Array): Uint8Array {
  const frame = new Uint8Array(frameBytes(term, data.length));
  writeFrame(frame, 0, term, entryKindCode[kind], data);
  return frame;
}

/**
 * A reusable frame header parser: `parse` fills the fields and returns the frame's total length, or
 * -1 when the bytes at `offset` are not a complete, well-formed frame before `end`. Reusing one
 * parser keeps the hot path free of per-entry allocations.
 */
export class FrameHeader {
  /** Term of the last parsed frame. */
  term = 0;
  /** Kind code of the last parsed frame. */
  kind = 0;
  /** Bytes before the data. */
  headerLength = 0;
  /** Bytes of data. */
  dataLength = 0;

  /** Parses the frame at `offset`; returns its total length or -1 if malformed or truncated. */
  parse(bytes: Uint8Array, offset: number, end: number): number {
    if (offset + 5 > end) return -1; // smallest frame: 0x93, fixint term, kind, 0xc4, 0
    let at = offset;
    if (bytes[at++] !== 0x93) return -1;
    const termTag = bytes[at++] as number;
    let term: number;
    if (termTag < 0x80) {
      term = termTag;
    } else if (termTag === 0xcc) {
      term = bytes[at++] as number;
    } else if (termTag === 0xcd) {
      if (at + 2 > end) return -1;
      term = ((bytes[at] as number) << 8) | (bytes[at + 1] as number);
      at += 2;
    } else if (termTag === 0xce) {
      if (at + 4 > end) return -1;
      term = readUint32(bytes, at);
      at += 4;
    } else if (termTag === 0xcf) {
      if (at + 8 > end) return -1;
      const high = readUint32(bytes, at);
      if (high > 0x1fffff) return -1; // beyond the safe integer range
      term = high * 0x100000000 + readUint32(bytes, at + 4);
      at += 8;
    } else {
      return -1;
    }
    if (at + 2 > end) return -1;
    const kind = bytes[at++] as number;
    if (kind > entryKindCodeMax) return -1;
    const binTag = bytes[at++] as number;
    let dataLength: number;
    if (binTag === 0xc4) {
      if (at + 1 > end) return -1;
      dataLength = bytes[at++] as number;
    } else if (binTag === 0xc5) {
      if (at + 2 > end) return -1;
      dataLength = ((bytes[at] as number) << 8) | (bytes[at + 1] as number);
      at += 2;
    } else if (binTag === 0xc6) {
      if (at + 4 > end) return -1;
      dataLength = readUint32(bytes, at);
      at += 4;
    } else {
      return -1;
    }
    if (at + dataLength > end) return -1;
    this.term = term;
    this.kind = kind;
    this.headerLength = at - offset;
    this.dataLength = dataLength;
    return this.headerLength + dataLength;
  }
}

function readUint32(bytes: Uint8Array, at: number): number {
  return (
    (bytes[at] as number) * 0x1000000 +
    (((bytes[at + 1] as number) << 16) | ((bytes[at + 2] as number) << 8) | (bytes[at + 3] as number))
  );
}

/**
 * Checks that `frames` holds exactly `count` well-formed frames and nothing else, with terms never
 * decreasing (a Raft log's terms never decrease) and at most `termCeiling`. Returns null when valid,
 * else a reason. Transports call this on every inbound AppendEntries so the core only sees
 * well-formed logs.
 */
export function validateFrames(frames: EntryFrames, termCeiling: number): string | null {
  const header = new FrameHeader();
  let seen = 0;
  let previousTerm = 0;
  let total = 0;
  for (const slice of frames.slices) {
    let at = 0;
    while (at < slice.length) {
      const length = header.parse(slice, at, slice.length);
      if (length < 0) return `malformed entry frame ${seen} at byte ${at}`;
      if (header.term < previousTerm) return `entry ${seen} term ${header.term} below previous ${previousTerm}`;
      if (header.term > termCeiling) return `entry ${seen} term ${header.term} above message term ${termCeiling}`;
      previousTerm = header.term;
      at += length;
      seen += 1;
    }
    total += slice.length;
  }
  if (seen !== frames.count) return `frame count ${seen} differs from declared count ${frames.count}`;
  if (total !== frames.byteLength) return `byte length ${total} differs from declared ${frames.byteLength}`;
  return null;
}

/**
 * A cursor over the entries of an EntryFrames run, without allocations:
 *
 *   const reader = new EntryReader();
 *   reader.reset(ready.committedEntries);
 *   while (reader.next()) use(reader.term, reader.kind, reader.bytes, reader.dataOffset, reader.dataLength);
 */
export class EntryReader {
  private readonly header = new FrameHeader();
  private slices: readonly Uint8Array[] = [];
  private sliceIndex = 0;
  private offset = 0;
  private remaining = 0;
  /** Term of the current entry. */
  term = 0;
  /** Kind code of the current entry (see entryKindCode). */
  kind = 0;
  /** Buffer holding the current entry. */
  bytes: Uint8Array = new Uint8Array(0);
  /** Start of the current entry's frame in `bytes`. */
  frameOffset = 0;
  /** Length of the current entry's frame. */
  frameLength = 0;
  /** Start of the current entry's data in `bytes`. */
  dataOffset = 0;
  /** Length of the current entry's data. */
  dataLength = 0;

  /** Points the cursor before the first entry of `frames`. */
  reset(frames: EntryFrames): this {
    this.slices = frames.slices;
    this.sliceIndex = 0;
    this.offset = 0;
    this.remaining = frames.count;
    return this;
  }

  /** Moves to the next entry; false when there is none. Malformed frames are a failed assertion. */
  next(): boolean {
    if (this.remaining === 0) return false;
    let slice = this.slices[this.sliceIndex];
    while (slice !== undefined && this.offset >= slice.length) {
      this.sliceIndex += 1;
      this.offset = 0;
      slice = this.slices[this.sliceIndex];
    }
    assert(slice !== undefined, () => `EntryReader: ${this.remaining} entries declared past the end of the slices`);
    const length = this.header.parse(slice, this.offset, slice.length);
    assert(length > 0, () => `EntryReader: malformed frame at byte ${this.offset} of slice ${this.sliceIndex}`);
    this.term = this.header.term;
    this.kind = this.header.kind;
    this.bytes = slice;
    this.frameOffset = this.offset;
    this.frameLength = length;
    this.dataOffset = this.offset + this.header.headerLength;
    this.dataLength = this.header.dataLength;
    this.offset += length;
    this.remaining -= 1;
    return true;
  }

  /** The current entry's data as a view (allocates a subarray; valid as long as the frames are). */
  data(): Uint8Array {
    return this.bytes.subarray(this.dataOffset, this.dataOffset + this.dataLength);
  }
}

/** Concatenates runs of frames into one standalone copy (for queues that outlive the owner's turn). */
export function copyFrames(frames: EntryFrames): EntryFrames {
  if (frames.count === 0) return noEntries;
  const copy = new Uint8Array(frames.byteLength);
  let at = 0;
  for (const slice of frames.slices) {
    copy.set(slice, at);
    at += slice.length;
  }
  return { count: frames.count, slices: [copy], byteLength: frames.byteLength };
}

/** Builds a run from separately encoded frames (tests and tools). */
export function framesOf(frames: readonly Uint8Array[]): EntryFrames {
  let byteLength = 0;
  for (const frame of frames) byteLength += frame.length;
  const joined = new Uint8Array(byteLength);
  let at = 0;
  for (const frame of frames) {
    joined.set(frame, at);
    at += frame.length;
  }
  return { count: frames.length, slices: frames.length === 0 ? [] : [joined], byteLength };
}
