/**
 * Wire codec shared by the TCP and WebSocket transports (and the memory transport's encode mode).
 *
 * One frame per message:
 *
 *   offset 0      u32 BE   frameLength: bytes after this field (4 + headerLength + payload + 1)
 *   offset 4      u32 BE   headerLength
 *   offset 8      header   a msgpack array, positional (layouts below), encoded by a reused Packr
 *   offset 8 + h  payload  raw bytes: AppendEntries frames exactly as in the leader's ring, snapshot
 *                          data, or proposal data back to back; empty for every other type
 *   last byte     status   0 = deliver; 1 = discard (the sender could not vouch for the payload)
 *
 * Header layouts (the type code first, then from, to, term for every message):
 *
 *   append              [1,  from, to, term, prevIndex, prevTerm, commit, entryCount, entryBytes]
 *   appendResponse      [2,  from, to, term, reject, index, hintIndex, hintTerm]
 *   vote / preVote      [3 / 4, from, to, term, lastIndex, lastTerm, transfer]
 *   voteResponse / preVoteResponse   [5 / 6, from, to, term, reject]
 *   heartbeat           [7,  from, to, term, commit, context | nil]
 *   heartbeatResponse   [8,  from, to, term, context | nil]
 *   timeoutNow          [9,  from, to, term]
 *   propose             [10, from, to, term, [dataLength...]]
 *   readIndex           [11, from, to, term, context]
 *   readIndexResponse   [12, from, to, term, context, index]
 *   snapshot            [13, from, to, term, index, snapshotTerm, [peer...], dataLength, offset, done]
 *                       (one chunk of InstallSnapshot: dataLength bytes of the snapshot from offset)
 *   snapshotResponse    [14, from, to, term, index, offset, reject]
 *
 * Handshake frames use the same framing with an empty payload (see handshake.ts):
 *
 *   challenge [32, version, nonce(bin 16)]
 *   hello     [33, version, clusterId, from, to, nonce(bin 16), proof(bin 32)]
 *   welcome   [34, version, from, proof(bin 32)]
 *   refuse    [35, version, reason]
 *
 * Sending does one header encode per message and no per-entry work: the entry bytes go out as the
 * message's own slices (encodeMessage returns them by reference, for writev). Receiving parses the
 * header with a strict reader of the msgpack subset the encoder produces (no maps, no extensions,
 * so an untrusted peer never reaches msgpackr's record or extension machinery), validates every
 * field and the entry frames (`validateFrames`), and hands the payload on as views of the frame.
 * decodeMessage never throws: garbage yields `{ ok: false, reason }`.
 */
import {
  type EntryFrames,
  FrameHeader,
  type NodeId,
  type RemoteMessage,
  assert,
  noEntries,
  unreachable,
  validateFrames,
} from '@raftlab/core';
import { Packr } from 'msgpackr';

/** Bytes of the length prefix. */
export const framePrefixBytes = 4;
/** Bytes before the header: the length prefix and the header length. */
export const frameHeadBytes = 8;
/** Bytes a frame adds around its header and payload: length prefix, header length, status. */
export const frameOverheadBytes = frameHeadBytes + 1;

/** The status byte that ends every frame. */
export const frameStatus = { deliver: 0, discard: 1 } as const;

/** Type codes of the messages in a header. */
export const messageTypeCode = {
  append: 1,
  appendResponse: 2,
  vote: 3,
  preVote: 4,
  voteResponse: 5,
  preVoteResponse: 6,
  heartbeat: 7,
  heartbeatResponse: 8,
  timeoutNow: 9,
  propose: 10,
  readIndex: 11,
  readIndexResponse: 12,
  snapshot: 13,
  snapshotResponse: 14,
} as const satisfies Record<RemoteMessage['type'], number>;

/** Type codes of the handshake frames. */
export const handshakeTypeCode = { challenge: 32, hello: 33, welcome: 34, refuse: 35 } as const;

/** Largest number of voters a snapshot header may list. */
export const snapshotPeersCountMax = 4096;

/** An encoded frame, ready for writev. */
export interface EncodedFrame {
  /**
   * Chunks to write in order. When `borrowed` is false there is one owned chunk. When true: the
   * head (owned: length prefix, header length, header), the message's own views (entries or
   * snapshot data, by reference), and a one-byte status chunk.
   */
  readonly chunks: readonly Uint8Array[];
  /** Total bytes over the chunks. */
  readonly byteLength: number;
  /** True when some chunks are views of the message's bytes; they must be written or copied within the turn. */
  readonly borrowed: boolean;
  /** The status byte (a view of the last byte of the frame), owned by this frame: the writer may mark it discarded. */
  readonly status: Uint8Array;
}

/** Outcome of decoding: a message, or the reason the frame is refused. */
export type DecodeResult = { readonly ok: true; readonly message: RemoteMessage } | { readonly ok: false; readonly reason: string };

/** Who a frame must come from and go to (after the handshake both are known). */
export interface DecodeExpectation {
  /** The node the connection authenticated as. */
  readonly from?: NodeId;
  /** This node. */
  readonly to?: NodeId;
}

// The one Packr: useRecords false keeps headers plain msgpack arrays (no record extension).
const packr = new Packr({ useRecords: false });

function emptyHeadFrame(header: readonly unknown[], payload: readonly Uint8Array[], payloadBytes: number): EncodedFrame {
  const packed = packr.pack(header);
  const byteLength = frameOverheadBytes + packed.length + payloadBytes;
  const frame = Buffer.allocUnsafe(byteLength);
  frame.writeUInt32BE(byteLength - framePrefixBytes, 0);
  frame.writeUInt32BE(packed.length, 4);
  frame.set(packed, frameHeadBytes);
  let at = frameHeadBytes + packed.length;
  for (const item of payload) {
    frame.set(item, at);
    at += item.length;
  }
  frame[at] = frameStatus.deliver;
  return { chunks: [frame], byteLength, borrowed: false, status: frame.subarray(at, at + 1) };
}

function borrowingFrame(header: readonly unknown[], views: readonly Uint8Array[], viewBytes: number): EncodedFrame {
  const packed = packr.pack(header);
  const byteLength = frameOverheadBytes + packed.length + viewBytes;
  assert(byteLength - framePrefixBytes <= 0xffffffff, () => `frame of ${byteLength} bytes does not fit the u32 length prefix`);
  const head = Buffer.allocUnsafe(frameHeadBytes + packed.length);
  head.writeUInt32BE(byteLength - framePrefixBytes, 0);
  head.writeUInt32BE(packed.length, 4);
  head.set(packed, frameHeadBytes);
  const status = Buffer.allocUnsafe(1);
  status[0] = frameStatus.deliver;
  const chunks: Uint8Array[] = [head];
  for (const view of views) if (view.length > 0) chunks.push(view);
  chunks.push(status);
  return { chunks, byteLength, borrowed: true, status };
}

/**
 * Encodes a message: one header encode, payload views by reference (no per-entry work). The
 * message must be well-formed (it comes from a RaftNode); nothing is validated here but sizes.
 */
export function encodeMessage(message: RemoteMessage): EncodedFrame {
  const { from, to, term } = message;
  switch (message.type) {
    case 'append': {
      const entries = message.entries;
      const header = [messageTypeCode.append, from, to, term, message.prevIndex, message.prevTerm, message.commit, entries.count, entries.byteLength];
      return entries.byteLength === 0 ? emptyHeadFrame(header, [], 0) : borrowingFrame(header, entries.slices, entries.byteLength);
    }
    case 'appendResponse':
      return emptyHeadFrame(
        [messageTypeCode.appendResponse, from, to, term, message.reject, message.index, message.hintIndex, message.hintTerm],
        [],
        0,
      );
    case 'vote':
    case 'preVote':
      return emptyHeadFrame([messageTypeCode[message.type], from, to, term, message.lastIndex, message.lastTerm, message.transfer], [], 0);
    case 'voteResponse':
    case 'preVoteResponse':
      return emptyHeadFrame([messageTypeCode[message.type], from, to, term, message.reject], [], 0);
    case 'heartbeat':
      return emptyHeadFrame([messageTypeCode.heartbeat, from, to, term, message.commit, message.context], [], 0);
    case 'heartbeatResponse':
      return emptyHeadFrame([messageTypeCode.heartbeatResponse, from, to, term, message.context], [], 0);
    case 'timeoutNow':
      return emptyHeadFrame([messageTypeCode.timeoutNow, from, to, term], [], 0);
    case 'propose': {
      // Proposals are copied into the one owned buffer: they are small, many, and forwarding is rare.
      const lengths = new Array<number>(message.data.length);
      let total = 0;
      for (let i = 0; i < message.data.length; i++) {
        const length = (message.data[i] as Uint8Array).length;
        lengths[i] = length;
        total += length;
      }
      return emptyHeadFrame([messageTypeCode.propose, from, to, term, lengths], message.data, total);
    }
    case 'readIndex':
      return emptyHeadFrame([messageTypeCode.readIndex, from, to, term, message.context], [], 0);
    case 'readIndexResponse':
      return emptyHeadFrame([messageTypeCode.readIndexResponse, from, to, term, message.context, message.index], [], 0);
    case 'snapshot': {
      const snapshot = message.snapshot;
      const header = [messageTypeCode.snapshot, from, to, term, snapshot.index, snapshot.term, snapshot.peers, snapshot.data.length, message.offset, message.done];
      return snapshot.data.length === 0 ? emptyHeadFrame(header, [], 0) : borrowingFrame(header, [snapshot.data], snapshot.data.length);
    }
    case 'snapshotResponse':
      return emptyHeadFrame([messageTypeCode.snapshotResponse, from, to, term, message.index, message.offset, message.reject], [], 0);
    default:
      return unreachable(message, 'message type');
  }
}

/** Joins an encoded frame into one owned buffer (copying any borrowed views). */
export function joinFrame(frame: EncodedFrame): Buffer {
  if (!frame.borrowed && frame.chunks.length === 1) {
    const only = frame.chunks[0] as Uint8Array;
    return Buffer.isBuffer(only) ? only : Buffer.from(only.buffer, only.byteOffset, only.byteLength);
  }
  const joined = Buffer.allocUnsafe(frame.byteLength);
  let at = 0;
  for (const chunk of frame.chunks) {
    joined.set(chunk, at);
    at += chunk.length;
  }
  return joined;
}

/** Encodes a handshake header (see handshake.ts) as a frame with an empty payload, in one owned buffer. */
export function encodeHandshakeFrame(header: readonly unknown[]): Buffer {
  return joinFrame(emptyHeadFrame(header, [], 0));
}

/** Reads the u32 length prefix at `offset`: the bytes that follow it. */
export function readFrameLength(bytes: Uint8Array, offset: number): number {
  return (
    (bytes[offset] as number) * 0x1000000 +
    (((bytes[offset + 1] as number) << 16) | ((bytes[offset + 2] as number) << 8) | (bytes[offset + 3] as number))
  );
}

/**
 * Checks the framing of a whole frame (prefix included): length prefix, header length, status.
 * Returns the header length, or a reason.
 */
export function checkFraming(frame: Uint8Array): { ok: true; headerLength: number; status: number } | { ok: false; reason: string } {
  if (frame.length < frameOverheadBytes + 1) return { ok: false, reason: `frame of ${frame.length} bytes is shorter than the ${frameOverheadBytes + 1}-byte minimum` };
  const declared = readFrameLength(frame, 0);
  if (declared !== frame.length - framePrefixBytes) {
    return { ok: false, reason: `length prefix says ${declared} bytes, the frame holds ${frame.length - framePrefixBytes}` };
  }
  const headerLength = readFrameLength(frame, 4);
  if (headerLength < 1 || headerLength > frame.length - frameOverheadBytes) {
    return { ok: false, reason: `header length ${headerLength} outside [1, ${frame.length - frameOverheadBytes}]` };
  }
  const status = frame[frame.length - 1] as number;
  if (status !== frameStatus.deliver && status !== frameStatus.discard) return { ok: false, reason: `unknown frame status ${status}` };
  return { ok: true, headerLength, status };
}

/** The status byte of a frame whose framing was checked. */
export function frameStatusOf(frame: Uint8Array): number {
  return frame[frame.length - 1] as number;
}

/** Names of msgpack type bytes, for reasons. */
function describeToken(token: number): string {
  if (token <= 0x7f) return 'positive fixint';
  if (token <= 0x8f) return 'map';
  if (token <= 0x9f) return 'array';
  if (token <= 0xbf) return 'string';
  if (token >= 0xe0) return 'negative fixint';
  switch (token) {
    case 0xc0:
      return 'nil';
    case 0xc2:
    case 0xc3:
      return 'boolean';
    case 0xc4:
    case 0xc5:
    case 0xc6:
      return 'binary';
    case 0xca:
    case 0xcb:
      return 'float';
    case 0xcc:
    case 0xcd:
    case 0xce:
    case 0xcf:
      return 'unsigned integer';
    case 0xd0:
    case 0xd1:
    case 0xd2:
    case 0xd3:
      return 'signed integer';
    case 0xd9:
    case 0xda:
    case 0xdb:
      return 'string';
    case 0xdc:
    case 0xdd:
      return 'array';
    case 0xde:
    case 0xdf:
      return 'map';
    default:
      return `msgpack type 0x${token.toString(16)}`;
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * A strict, allocation-light reader of the msgpack subset headers use: arrays, integers (any
 * width; floats only when they hold a safe integer), booleans, nil, strings, binary. Every read
 * checks bounds; the first problem is kept in `problem` and later reads return placeholders, so
 * the caller checks once. Never throws.
 */
export class HeaderReader {
  private bytes: Uint8Array = new Uint8Array(0);
  private view: DataView = new DataView(new ArrayBuffer(0));
  private at = 0;
  private end = 0;
  /** The first problem met, or null. */
  problem: string | null = null;

  /** Reads `bytes[start, end)`. */
  reset(bytes: Uint8Array, start: number, end: number): this {
    this.bytes = bytes;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.at = start;
    this.end = end;
    this.problem = null;
    return this;
  }

  /** True when every byte was consumed. */
  get atEnd(): boolean {
    return this.at === this.end;
  }

  private fail(reason: string): void {
    if (this.problem === null) this.problem = reason;
  }

  private has(count: number, field: string): boolean {
    if (this.problem !== null) return false;
    if (this.at + count > this.end) {
      this.fail(`header truncated in ${field}`);
      return false;
    }
    return true;
  }

  /** Length of an array; -1 on a problem. The length is bounded by the bytes left (one per element at least). */
  arrayLength(field: string): number {
    if (!this.has(1, field)) return -1;
    const token = this.bytes[this.at] as number;
    let length: number;
    let size: number;
    if (token >= 0x90 && token <= 0x9f) {
      length = token - 0x90;
      size = 1;
    } else if (token === 0xdc) {
      if (!this.has(3, field)) return -1;
      length = this.view.getUint16(this.at + 1);
      size = 3;
    } else if (token === 0xdd) {
      if (!this.has(5, field)) return -1;
      length = this.view.getUint32(this.at + 1);
      size = 5;
    } else {
      this.fail(`${field}: expected an array, got ${describeToken(token)}`);
      return -1;
    }
    if (length > this.end - this.at - size) {
      this.fail(`${field}: array of ${length} elements in ${this.end - this.at - size} bytes`);
      return -1;
    }
    this.at += size;
    return length;
  }

  /** A non-negative safe integer; -1 on a problem. */
  integer(field: string): number {
    if (!this.has(1, field)) return -1;
    const token = this.bytes[this.at] as number;
    const view = this.view;
    const at = this.at + 1;
    let value: number;
    let size: number;
    if (token <= 0x7f) {
      value = token;
      size = 1;
    } else if (token >= 0xe0) {
      value = token - 0x100;
      size = 1;
    } else {
      switch (token) {
        case 0xcc:
          size = 2;
          if (!this.has(size, field)) return -1;
          value = view.getUint8(at);
          break;
        case 0xcd:
          size = 3;
          if (!this.has(size, field)) return -1;
          value = view.getUint16(at);
          break;
        case 0xce:
          size = 5;
          if (!this.has(size, field)) return -1;
          value = view.getUint32(at);
          break;
        case 0xcf:
          size = 9;
          if (!this.has(size, field)) return -1;
          value = view.getUint32(at) * 0x100000000 + view.getUint32(at + 4);
          if (view.getUint32(at) > 0x1fffff) value = Number.POSITIVE_INFINITY;
          break;
        case 0xd0:
          size = 2;
          if (!this.has(size, field)) return -1;
          value = view.getInt8(at);
          break;
        case 0xd1:
          size = 3;
          if (!this.has(size, field)) return -1;
          value = view.getInt16(at);
          break;
        case 0xd2:
          size = 5;
          if (!this.has(size, field)) return -1;
          value = view.getInt32(at);
          break;
        case 0xd3:
          size = 9;
          if (!this.has(size, field)) return -1;
          value = view.getInt32(at) * 0x100000000 + view.getUint32(at + 4);
          if (view.getInt32(at) > 0x1fffff || view.getInt32(at) < -0x200000) value = Number.NaN;
          break;
        case 0xca:
          size = 5;
          if (!this.has(size, field)) return -1;
          value = view.getFloat32(at);
          break;
        case 0xcb:
          size = 9;
          if (!this.has(size, field)) return -1;
          value = view.getFloat64(at);
          break;
        default:
          this.fail(`${field}: expected an integer, got ${describeToken(token)}`);
          return -1;
      }
    }
    if (!Number.isSafeInteger(value)) {
      this.fail(`${field}: expected an integer, got ${value}`);
      return -1;
    }
    if (value < 0) {
      this.fail(`${field}: expected a non-negative integer, got ${value}`);
      return -1;
    }
    this.at += size;
    return value;
  }

  /** A boolean; false on a problem. */
  boolean(field: string): boolean {
    if (!this.has(1, field)) return false;
    const token = this.bytes[this.at] as number;
    if (token !== 0xc2 && token !== 0xc3) {
      this.fail(`${field}: expected a boolean, got ${describeToken(token)}`);
      return false;
    }
    this.at += 1;
    return token === 0xc3;
  }

  /** True (and consumes it) when the next value is nil. */
  nil(): boolean {
    if (this.problem !== null || this.at >= this.end || this.bytes[this.at] !== 0xc0) return false;
    this.at += 1;
    return true;
  }

  /** A UTF-8 string; '' on a problem. */
  string(field: string): string {
    if (!this.has(1, field)) return '';
    const token = this.bytes[this.at] as number;
    let length: number;
    let size: number;
    if (token >= 0xa0 && token <= 0xbf) {
      length = token - 0xa0;
      size = 1;
    } else if (token === 0xd9) {
      if (!this.has(2, field)) return '';
      length = this.view.getUint8(this.at + 1);
      size = 2;
    } else if (token === 0xda) {
      if (!this.has(3, field)) return '';
      length = this.view.getUint16(this.at + 1);
      size = 3;
    } else if (token === 0xdb) {
      if (!this.has(5, field)) return '';
      length = this.view.getUint32(this.at + 1);
      size = 5;
    } else {
      this.fail(`${field}: expected a string, got ${describeToken(token)}`);
      return '';
    }
    if (!this.has(size + length, field)) return '';
    const start = this.at + size;
    let text: string;
    try {
      text = utf8.decode(this.bytes.subarray(start, start + length));
    } catch {
      this.fail(`${field}: invalid UTF-8`);
      return '';
    }
    this.at = start + length;
    return text;
  }

  /** Binary of exactly `length` bytes, as a view; an empty array on a problem. */
  binary(field: string, length: number): Uint8Array {
    if (!this.has(2, field)) return new Uint8Array(0);
    const token = this.bytes[this.at] as number;
    if (token !== 0xc4) {
      this.fail(`${field}: expected ${length} bytes of binary, got ${describeToken(token)}`);
      return new Uint8Array(0);
    }
    const actual = this.bytes[this.at + 1] as number;
    if (actual !== length) {
      this.fail(`${field}: expected ${length} bytes of binary, got ${actual}`);
      return new Uint8Array(0);
    }
    if (!this.has(2 + length, field)) return new Uint8Array(0);
    const start = this.at + 2;
    this.at = start + length;
    return this.bytes.subarray(start, start + length);
  }
}

const reader = new HeaderReader();
const frameHeader = new FrameHeader();

/** Field count of each message header, by type code. */
const headerFieldCount: Record<number, number> = {
  [messageTypeCode.append]: 9,
  [messageTypeCode.appendResponse]: 8,
  [messageTypeCode.vote]: 7,
  [messageTypeCode.preVote]: 7,
  [messageTypeCode.voteResponse]: 5,
  [messageTypeCode.preVoteResponse]: 5,
  [messageTypeCode.heartbeat]: 6,
  [messageTypeCode.heartbeatResponse]: 5,
  [messageTypeCode.timeoutNow]: 4,
  [messageTypeCode.propose]: 5,
  [messageTypeCode.readIndex]: 5,
  [messageTypeCode.readIndexResponse]: 6,
  [messageTypeCode.snapshot]: 10,
  [messageTypeCode.snapshotResponse]: 7,
};

function refuse(reason: string): DecodeResult {
  return { ok: false, reason };
}

/**
 * Decodes one whole frame (length prefix included) into a validated message; never throws.
 * The payload (entries, snapshot data, proposal data) comes back as views of `frame`.
 */
export function decodeMessage(frame: Uint8Array, expected: DecodeExpectation = {}): DecodeResult {
  const framing = checkFraming(frame);
  if (!framing.ok) return framing;
  if (framing.status === frameStatus.discard) return refuse('frame marked discarded by its sender');
  const headerEnd = frameHeadBytes + framing.headerLength;
  const payload = frame.subarray(headerEnd, frame.length - 1);
  const r = reader.reset(frame, frameHeadBytes, headerEnd);
  const fieldCount = r.arrayLength('header');
  const code = r.integer('type');
  if (r.problem !== null) return refuse(r.problem);
  const expectedCount = headerFieldCount[code];
  if (expectedCount === undefined) return refuse(`unknown message type code ${code}`);
  if (fieldCount !== expectedCount) return refuse(`header of type ${code} has ${fieldCount} fields, expected ${expectedCount}`);
  const from = r.integer('from');
  const to = r.integer('to');
  const term = r.integer('term');
  if (r.problem !== null) return refuse(r.problem);
  if (from < 1) return refuse(`from: node id ${from} is not positive`);
  if (to < 1) return refuse(`to: node id ${to} is not positive`);
  if (from === to) return refuse(`from and to are both node ${from}`);
  if (expected.to !== undefined && to !== expected.to) return refuse(`addressed to node ${to}, this is node ${expected.to}`);
  if (expected.from !== undefined && from !== expected.from) {
    return refuse(`claims to come from node ${from} on a connection authenticated as node ${expected.from}`);
  }
  const result = decodeBody(code, from, to, term, payload);
  if (result.ok && !r.atEnd && r.problem === null) return refuse('trailing bytes after the header');
  return result;
}

function noPayload(payload: Uint8Array, type: string): string | null {
  return payload.length === 0 ? null : `${type} carries ${payload.length} payload bytes, expected none`;
}

function decodeBody(code: number, from: NodeId, to: NodeId, term: number, payload: Uint8Array): DecodeResult {
  switch (code) {
    case messageTypeCode.append: {
      const prevIndex = reader.integer('prevIndex');
      const prevTerm = reader.integer('prevTerm');
      const commit = reader.integer('commit');
      const count = reader.integer('entryCount');
      const byteLength = reader.integer('entryBytes');
      if (reader.problem !== null) return refuse(reader.problem);
      if (prevTerm > term) return refuse(`prevTerm ${prevTerm} above message term ${term}`);
      if (byteLength !== payload.length) return refuse(`entryBytes ${byteLength} differs from the ${payload.length} payload bytes`);
      let entries: EntryFrames = noEntries;
      if (count > 0 || byteLength > 0) {
        entries = { count, slices: [payload], byteLength };
        const problem = validateFrames(entries, term);
        if (problem !== null) return refuse(`entries: ${problem}`);
        // A leader's entries after prevIndex have terms of at least prevTerm (§5.3, Log Matching).
        frameHeader.parse(payload, 0, payload.length);
        if (frameHeader.term < prevTerm) return refuse(`entries: first entry term ${frameHeader.term} below prevTerm ${prevTerm}`);
      }
      return { ok: true, message: { type: 'append', from, to, term, prevIndex, prevTerm, commit, entries } };
    }
    case messageTypeCode.appendResponse: {
      const reject = reader.boolean('reject');
      const index = reader.integer('index');
      const hintIndex = reader.integer('hintIndex');
      const hintTerm = reader.integer('hintTerm');
      const problem = reader.problem ?? noPayload(payload, 'appendResponse');
      if (problem !== null) return refuse(problem);
      return { ok: true, message: { type: 'appendResponse', from, to, term, reject, index, hintIndex, hintTerm } };
    }
    case messageTypeCode.vote:
    case messageTypeCode.preVote: {
      const type = code === messageTypeCode.vote ? 'vote' : 'preVote';
      const lastIndex = reader.integer('lastIndex');
      const lastTerm = reader.integer('lastTerm');
      const transfer = reader.boolean('transfer');
      const problem = reader.problem ?? noPayload(payload, type);
      if (problem !== null) return refuse(problem);
      return { ok: true, message: { type, from, to, term, lastIndex, lastTerm, transfer } };
    }
    case messageTypeCode.voteResponse:
    case messageTypeCode.preVoteResponse: {
      const type = code === messageTypeCode.voteResponse ? 'voteResponse' : 'preVoteResponse';
      const reject = reader.boolean('reject');
      const problem = reader.problem ?? noPayload(payload, type);
      if (problem !== null) return refuse(problem);
      return { ok: true, message: { type, from, to, term, reject } };
    }
    case messageTypeCode.heartbeat: {
      const commit = reader.integer('commit');
      const context = reader.nil() ? null : reader.string('context');
      const problem = reader.problem ?? noPayload(payload, 'heartbeat');
      if (problem !== null) return refuse(problem);
      return { ok: true, message: { type: 'heartbeat', from, to, term, commit, context } };
    }
    case messageTypeCode.heartbeatResponse: {
      const context = reader.nil() ? null : reader.string('context');
      const problem = reader.problem ?? noPayload(payload, 'heartbeatResponse');
      if (problem !== null) return refuse(problem);
      return { ok: true, message: { type: 'heartbeatResponse', from, to, term, context } };
    }
    case messageTypeCode.timeoutNow: {
      const problem = noPayload(payload, 'timeoutNow');
      if (problem !== null) return refuse(problem);
      return { ok: true, message: { type: 'timeoutNow', from, to, term } };
    }
    case messageTypeCode.propose: {
      const count = reader.arrayLength('dataLengths');
      const data: Uint8Array[] = [];
      let at = 0;
      for (let i = 0; i < count && reader.problem === null; i++) {
        const length = reader.integer('dataLength');
        if (reader.problem !== null) break;
        if (at + length > payload.length) return refuse(`proposal ${i} of ${length} bytes runs past the ${payload.length} payload bytes`);
        data.push(payload.subarray(at, at + length));
        at += length;
      }
      if (reader.problem !== null) return refuse(reader.problem);
      if (at !== payload.length) return refuse(`proposals take ${at} bytes, the payload holds ${payload.length}`);
      return { ok: true, message: { type: 'propose', from, to, term, data } };
    }
    case messageTypeCode.readIndex: {
      const context = reader.string('context');
      const problem = reader.problem ?? noPayload(payload, 'readIndex');
      if (problem !== null) return refuse(problem);
      return { ok: true, message: { type: 'readIndex', from, to, term, context } };
    }
    case messageTypeCode.readIndexResponse: {
      const context = reader.string('context');
      const index = reader.integer('index');
      const problem = reader.problem ?? noPayload(payload, 'readIndexResponse');
      if (problem !== null) return refuse(problem);
      return { ok: true, message: { type: 'readIndexResponse', from, to, term, context, index } };
    }
    case messageTypeCode.snapshot: {
      const index = reader.integer('snapshot.index');
      const snapshotTerm = reader.integer('snapshot.term');
      const peerCount = reader.arrayLength('snapshot.peers');
      if (reader.problem !== null) return refuse(reader.problem);
      if (peerCount > snapshotPeersCountMax) return refuse(`snapshot.peers: ${peerCount} voters above ${snapshotPeersCountMax}`);
      const peers: NodeId[] = [];
      for (let i = 0; i < peerCount && reader.problem === null; i++) {
        const peer = reader.integer('snapshot.peers');
        if (reader.problem !== null) break;
        if (peer < 1) return refuse(`snapshot.peers: node id ${peer} is not positive`);
        if (peers.includes(peer)) return refuse(`snapshot.peers: node ${peer} listed twice`);
        peers.push(peer);
      }
      const dataLength = reader.integer('snapshot.dataLength');
      const offset = reader.integer('snapshot.offset');
      const done = reader.boolean('snapshot.done');
      if (reader.problem !== null) return refuse(reader.problem);
      if (snapshotTerm > term) return refuse(`snapshot term ${snapshotTerm} above message term ${term}`);
      if (dataLength !== payload.length) return refuse(`snapshot.dataLength ${dataLength} differs from the ${payload.length} payload bytes`);
      return { ok: true, message: { type: 'snapshot', from, to, term, snapshot: { index, term: snapshotTerm, peers, data: payload }, offset, done } };
    }
    case messageTypeCode.snapshotResponse: {
      const index = reader.integer('index');
      const offset = reader.integer('offset');
      const reject = reader.boolean('reject');
      const problem = reader.problem ?? noPayload(payload, 'snapshotResponse');
      if (problem !== null) return refuse(problem);
      return { ok: true, message: { type: 'snapshotResponse', from, to, term, index, offset, reject } };
    }
    default:
      return refuse(`unknown message type code ${code}`);
  }
}

/** A handshake frame, decoded (see handshake.ts for the protocol). */
export type HandshakeFrame =
  | { readonly type: 'challenge'; readonly version: number; readonly nonce: Uint8Array }
  | {
      readonly type: 'hello';
      readonly version: number;
      readonly clusterId: string;
      readonly from: NodeId;
      readonly to: NodeId;
      readonly nonce: Uint8Array;
      readonly proof: Uint8Array;
    }
  | { readonly type: 'welcome'; readonly version: number; readonly from: NodeId; readonly proof: Uint8Array }
  | { readonly type: 'refuse'; readonly version: number; readonly reason: string };

/** Outcome of decoding a handshake frame. A version mismatch is reported before the layout is read. */
export type HandshakeDecodeResult =
  | { readonly ok: true; readonly frame: HandshakeFrame }
  | { readonly ok: false; readonly reason: string; readonly version?: number };

/** Bytes of a handshake nonce. */
export const nonceBytes = 16;
/** Bytes of an HMAC-SHA256 proof. */
export const proofBytes = 32;
/** Longest refusal reason carried in a refuse frame. */
export const refuseReasonLengthMax = 512;

/** Decodes a handshake frame; never throws. `protocolVersion` is the version this node speaks. */
export function decodeHandshake(frame: Uint8Array, protocolVersion: number): HandshakeDecodeResult {
  const framing = checkFraming(frame);
  if (!framing.ok) return framing;
  if (framing.status !== frameStatus.deliver) return { ok: false, reason: 'handshake frame marked discarded' };
  const headerEnd = frameHeadBytes + framing.headerLength;
  if (headerEnd !== frame.length - 1) return { ok: false, reason: 'handshake frame carries a payload' };
  const h = reader.reset(frame, frameHeadBytes, headerEnd);
  const fieldCount = h.arrayLength('handshake');
  const code = h.integer('handshake type');
  const version = h.integer('version');
  if (h.problem !== null) return { ok: false, reason: h.problem };
  if (version !== protocolVersion) {
    return { ok: false, reason: `protocol version ${version}, this node speaks ${protocolVersion}`, version };
  }
  let decoded: HandshakeFrame;
  switch (code) {
    case handshakeTypeCode.challenge: {
      if (fieldCount !== 3) return { ok: false, reason: `challenge has ${fieldCount} fields, expected 3` };
      decoded = { type: 'challenge', version, nonce: h.binary('nonce', nonceBytes) };
      break;
    }
    case handshakeTypeCode.hello: {
      if (fieldCount !== 7) return { ok: false, reason: `hello has ${fieldCount} fields, expected 7` };
      const clusterId = h.string('clusterId');
      const from = h.integer('from');
      const to = h.integer('to');
      const nonce = h.binary('nonce', nonceBytes);
      const proof = h.binary('proof', proofBytes);
      decoded = { type: 'hello', version, clusterId, from, to, nonce, proof };
      break;
    }
    case handshakeTypeCode.welcome: {
      if (fieldCount !== 4) return { ok: false, reason: `welcome has ${fieldCount} fields, expected 4` };
      const from = h.integer('from');
      decoded = { type: 'welcome', version, from, proof: h.binary('proof', proofBytes) };
      break;
    }
    case handshakeTypeCode.refuse: {
      if (fieldCount !== 3) return { ok: false, reason: `refuse has ${fieldCount} fields, expected 3` };
      const reason = h.string('reason');
      decoded = { type: 'refuse', version, reason: reason.slice(0, refuseReasonLengthMax) };
      break;
    }
    default:
      return { ok: false, reason: `expected a handshake frame, got type code ${code}` };
  }
  if (h.problem !== null) return { ok: false, reason: h.problem };
  if (!h.atEnd) return { ok: false, reason: 'trailing bytes after the handshake header' };
  return { ok: true, frame: decoded };
}
