/**
 * The i64 sum: the state machine behind `simulate()` and the runtime's demo workload, shared so
 * every driver parses, frames and applies commands the same way.
 *
 * Parsing follows Rust's `str::parse::<i64>` exactly: an optional single leading `+` or `-`, then
 * one or more ASCII digits `0-9`, nothing else (no whitespace, no `_`, no exponent, no hex, no
 * non-ASCII digits), and the value must lie in [-2^63, 2^63 - 1]. Anything else is invalid and the
 * machine ignores it. Sums wrap in two's complement, like Rust's `wrapping_add`.
 *
 * A command travels as a msgpack value written by hand (valid msgpack, decodable by msgpackr):
 *
 *   0x93 | clientId (uint) | sequence (uint) | text (str)
 *
 *   uint: positive fixint 0x00-0x7f | 0xcc u8 | 0xcd u16 | 0xce u32 | 0xcf u64 (safe integers only)
 *   str:  fixstr 0xa0-0xbf | 0xd9 u8 len | 0xda u16 len | 0xdb u32 len, then UTF-8 bytes
 *
 * Exactly-once (thesis §6.3): each client numbers its commands 1, 2, 3, ... and has at most one
 * outstanding; the machine remembers the last sequence applied per client and treats a command
 * whose sequence is not above it as a duplicate (a retry of something already applied). The table
 * holds at most `clientsMax` clients; when full, the client applied least recently is forgotten.
 * Every node applies the same entries in the same order, so every node forgets the same client.
 * The bound must exceed the number of clients active at once, or an evicted client's late retry
 * could apply twice.
 *
 * Snapshot (also valid msgpack):
 *
 *   0x94 | format 1 | value (0xd3 int64) | commandCount (uint) | 0xdd u32 n | n x [clientId, sequence] as uints
 *
 * with the clients from least to most recently applied, so a restored machine evicts in the same order.
 */
import { RaftError } from './errors.js';

/** Smallest i64: -2^63. */
export const i64Min = -(2n ** 63n);
/** Largest i64: 2^63 - 1. */
export const i64Max = 2n ** 63n - 1n;

const codeZero = 0x30;
const codeNine = 0x39;
const codePlus = 0x2b;
const codeMinus = 0x2d;
/** Digits that always fit a JavaScript number exactly (10^15 < 2^53). */
const safeChunkDigits = 15;
/** Digits of 2^63 (nineteen): more significant digits than this always overflow. */
const i64DigitsMax = 19;

/**
 * Parses `text` exactly as Rust's `str::parse::<i64>`; null when Rust would return an error
 * (empty, a lone sign, any character other than one leading sign and ASCII digits, or overflow).
 */
export function parseI64(text: string): bigint | null {
  const length = text.length;
  if (length === 0) return null;
  let at = 0;
  let negative = false;
  const first = text.charCodeAt(0);
  if (first === codePlus || first === codeMinus) {
    if (length === 1) return null;
    negative = first === codeMinus;
    at = 1;
  }
  // Skip leading zeros: they never change the value or overflow ("007" is 7, "-0" is 0).
  while (at < length && text.charCodeAt(at) === codeZero) at += 1;
  const significant = length - at;
  for (let i = at; i < length; i++) {
    const code = text.charCodeAt(i);
    if (code < codeZero || code > codeNine) return null;
  }
  // At least one digit followed the sign (checked above: a lone sign or empty returned null, and
  // a run of zeros counts as digits), so the text is well formed from here on.
  if (significant > i64DigitsMax) return null;
  return digitsToI64(significant, negative, (i) => text.charCodeAt(at + i) - codeZero);
}

/**
 * parseI64 over UTF-8 bytes `bytes[offset, offset + length)`, without decoding to a string. Every
 * byte of a multi-byte UTF-8 sequence is >= 0x80, so non-ASCII text is rejected exactly as the
 * string form rejects it.
 */
export function parseI64Bytes(bytes: Uint8Array, offset: number, length: number): bigint | null {
  if (length === 0) return null;
  const end = offset + length;
  let at = offset;
  let negative = false;
  const first = bytes[at] as number;
  if (first === codePlus || first === codeMinus) {
    if (length === 1) return null;
    negative = first === codeMinus;
    at += 1;
  }
  while (at < end && bytes[at] === codeZero) at += 1;
  const significant = end - at;
  for (let i = at; i < end; i++) {
    const code = bytes[i] as number;
    if (code < codeZero || code > codeNine) return null;
  }
  if (significant > i64DigitsMax) return null;
  return digitsToI64(significant, negative, (i) => (bytes[at + i] as number) - codeZero);
}

/** Value of `count` validated decimal digits (digit(i) gives the i-th), or null outside the i64 range. */
function digitsToI64(count: number, negative: boolean, digit: (i: number) => number): bigint | null {
  if (count === 0) return 0n;
  if (count <= safeChunkDigits) {
    // Fast path: exact in a double, and far inside the i64 range.
    let small = 0;
    for (let i = 0; i < count; i++) small = small * 10 + digit(i);
    return BigInt(negative ? -small : small);
  }
  let magnitude = 0n;
  let i = 0;
  while (i < count) {
    const chunk = Math.min(safeChunkDigits, count - i);
    let part = 0;
    for (let j = 0; j < chunk; j++) part = part * 10 + digit(i + j);
    magnitude = magnitude * 10n ** BigInt(chunk) + BigInt(part);
    i += chunk;
  }
  const value = negative ? -magnitude : magnitude;
  return value < i64Min || value > i64Max ? null : value;
}

/** `value` reduced to a signed 64-bit integer, wrapping in two's complement. */
export function wrapI64(value: bigint): bigint {
  return BigInt.asIntN(64, value);
}

/** One client command of the i64 sum. */
export interface SumCommand {
  /** The issuing client; a positive safe integer. */
  readonly clientId: number;
  /** The client's command number, 1, 2, 3, ...; a retry repeats it. */
  readonly sequence: number;
  /** The number to add, parsed by the machine (an invalid text is applied as a no-op). */
  readonly text: string;
}

/** UTF-8 bytes of `text`; a lone surrogate becomes U+FFFD, as TextEncoder does (core has no TextEncoder). */
function encodeUtf8(text: string): Uint8Array {
  const out = new Uint8Array(text.length * 3);
  let at = 0;
  for (let i = 0; i < text.length; i++) {
    let code = text.charCodeAt(i);
    if (code >= 0xd800 && code <= 0xdfff) {
      const next = i + 1 < text.length ? text.charCodeAt(i + 1) : 0;
      if (code <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) {
        code = 0x10000 + ((code - 0xd800) << 10) + (next - 0xdc00);
        i += 1;
      } else {
        code = 0xfffd;
      }
    }
    if (code < 0x80) {
      out[at++] = code;
    } else if (code < 0x800) {
      out[at++] = 0xc0 | (code >>> 6);
      out[at++] = 0x80 | (code & 0x3f);
    } else if (code < 0x10000) {
      out[at++] = 0xe0 | (code >>> 12);
      out[at++] = 0x80 | ((code >>> 6) & 0x3f);
      out[at++] = 0x80 | (code & 0x3f);
    } else {
      out[at++] = 0xf0 | (code >>> 18);
      out[at++] = 0x80 | ((code >>> 12) & 0x3f);
      out[at++] = 0x80 | ((code >>> 6) & 0x3f);
      out[at++] = 0x80 | (code & 0x3f);
    }
  }
  return out.subarray(0, at);
}

/** The text of strict UTF-8 bytes (no overlong forms, surrogates or code points past U+10FFFF), or null. */
function decodeUtf8(bytes: Uint8Array, offset: number, end: number): string | null {
  let text = '';
  let at = offset;
  while (at < end) {
    const first = bytes[at] as number;
    let code: number;
    let extra: number;
    let lowest: number;
    if (first < 0x80) {
      text += String.fromCharCode(first);
      at += 1;
      continue;
    } else if ((first & 0xe0) === 0xc0) {
      code = first & 0x1f;
      extra = 1;
      lowest = 0x80;
    } else if ((first & 0xf0) === 0xe0) {
      code = first & 0x0f;
      extra = 2;
      lowest = 0x800;
    } else if ((first & 0xf8) === 0xf0) {
      code = first & 0x07;
      extra = 3;
      lowest = 0x10000;
    } else {
      return null;
    }
    if (at + extra >= end) return null; // truncated sequence
    for (let i = 1; i <= extra; i++) {
      const next = bytes[at + i] as number;
      if ((next & 0xc0) !== 0x80) return null;
      code = (code << 6) | (next & 0x3f);
    }
    if (code < lowest || code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff)) return null;
    text += String.fromCodePoint(code);
    at += extra + 1;
  }
  return text;
}

function uintBytes(value: number): number {
  if (value < 0x80) return 1;
  if (value < 0x100) return 2;
  if (value < 0x10000) return 3;
  if (value < 0x100000000) return 5;
  return 9;
}

function writeUint(target: Uint8Array, at: number, value: number): number {
  if (value < 0x80) {
    target[at] = value;
    return at + 1;
  }
  if (value < 0x100) {
    target[at] = 0xcc;
    target[at + 1] = value;
    return at + 2;
  }
  if (value < 0x10000) {
    target[at] = 0xcd;
    target[at + 1] = value >>> 8;
    target[at + 2] = value & 0xff;
    return at + 3;
  }
  if (value < 0x100000000) {
    target[at] = 0xce;
    writeUint32(target, at + 1, value);
    return at + 5;
  }
  target[at] = 0xcf;
  writeUint32(target, at + 1, Math.floor(value / 0x100000000));
  writeUint32(target, at + 5, value >>> 0);
  return at + 9;
}

function writeUint32(target: Uint8Array, at: number, value: number): void {
  target[at] = value >>> 24;
  target[at + 1] = (value >>> 16) & 0xff;
  target[at + 2] = (value >>> 8) & 0xff;
  target[at + 3] = value & 0xff;
}

function readUint32(bytes: Uint8Array, at: number): number {
  return (bytes[at] as number) * 0x1000000 + (((bytes[at + 1] as number) << 16) | ((bytes[at + 2] as number) << 8) | (bytes[at + 3] as number));
}

/** A msgpack reader over a byte range: each read returns -1 (or null) when the bytes are not what it expects. */
class Cursor {
  at: number;
  constructor(
    readonly bytes: Uint8Array,
    offset: number,
    readonly end: number,
  ) {
    this.at = offset;
  }

  /** A msgpack uint in the safe integer range, or -1. */
  uint(): number {
    const { bytes, end } = this;
    if (this.at >= end) return -1;
    const tag = bytes[this.at++] as number;
    if (tag < 0x80) return tag;
    const need = tag === 0xcc ? 1 : tag === 0xcd ? 2 : tag === 0xce ? 4 : tag === 0xcf ? 8 : -1;
    if (need < 0 || this.at + need > end) return -1;
    const at = this.at;
    this.at += need;
    if (need === 1) return bytes[at] as number;
    if (need === 2) return ((bytes[at] as number) << 8) | (bytes[at + 1] as number);
    if (need === 4) return readUint32(bytes, at);
    const high = readUint32(bytes, at);
    if (high > 0x1fffff) return -1; // beyond Number.MAX_SAFE_INTEGER
    return high * 0x100000000 + readUint32(bytes, at + 4);
  }

  /** The byte length of a msgpack str header's payload (the cursor then points at it), or -1. */
  strLength(): number {
    const { bytes, end } = this;
    if (this.at >= end) return -1;
    const tag = bytes[this.at++] as number;
    let length: number;
    if ((tag & 0xe0) === 0xa0) {
      length = tag & 0x1f;
    } else if (tag === 0xd9) {
      if (this.at + 1 > end) return -1;
      length = bytes[this.at++] as number;
    } else if (tag === 0xda) {
      if (this.at + 2 > end) return -1;
      length = ((bytes[this.at] as number) << 8) | (bytes[this.at + 1] as number);
      this.at += 2;
    } else if (tag === 0xdb) {
      if (this.at + 4 > end) return -1;
      length = readUint32(bytes, this.at);
      this.at += 4;
    } else {
      return -1;
    }
    return this.at + length > end ? -1 : length;
  }
}

function checkPositiveSafeInteger(what: string, value: number): void {
  if (!Number.isSafeInteger(value) || value < 1) throw new RangeError(`encodeSumCommand: ${what} must be a positive safe integer, got ${String(value)}`);
}

/** Encodes a command as the msgpack array `[clientId, sequence, text]` (see the file header). */
export function encodeSumCommand(command: SumCommand): Uint8Array {
  checkPositiveSafeInteger('clientId', command.clientId);
  checkPositiveSafeInteger('sequence', command.sequence);
  if (typeof command.text !== 'string') throw new TypeError(`encodeSumCommand: text must be a string, got ${typeof command.text}`);
  const text = encodeUtf8(command.text);
  const length = text.length;
  const strHeader = length < 32 ? 1 : length < 0x100 ? 2 : length < 0x10000 ? 3 : 5;
  const out = new Uint8Array(1 + uintBytes(command.clientId) + uintBytes(command.sequence) + strHeader + length);
  out[0] = 0x93;
  let at = writeUint(out, 1, command.clientId);
  at = writeUint(out, at, command.sequence);
  if (length < 32) {
    out[at++] = 0xa0 | length;
  } else if (length < 0x100) {
    out[at++] = 0xd9;
    out[at++] = length;
  } else if (length < 0x10000) {
    out[at++] = 0xda;
    out[at++] = length >>> 8;
    out[at++] = length & 0xff;
  } else {
    out[at++] = 0xdb;
    writeUint32(out, at, length);
    at += 4;
  }
  out.set(text, at);
  return out;
}

/** A decoded command whose text is still bytes: `bytes[textOffset, textOffset + textLength)`. */
interface RawSumCommand {
  clientId: number;
  sequence: number;
  textOffset: number;
  textLength: number;
}

/** Reads the framing of a command into `into`; false when `data` is not exactly one well-formed command. */
function readSumCommand(data: Uint8Array, into: RawSumCommand): boolean {
  if (data.length < 4 || data[0] !== 0x93) return false;
  const cursor = new Cursor(data, 1, data.length);
  const clientId = cursor.uint();
  if (clientId < 1) return false;
  const sequence = cursor.uint();
  if (sequence < 1) return false;
  const textLength = cursor.strLength();
  if (textLength < 0 || cursor.at + textLength !== data.length) return false;
  into.clientId = clientId;
  into.sequence = sequence;
  into.textOffset = cursor.at;
  into.textLength = textLength;
  return true;
}

/** Decodes a command encoded by encodeSumCommand; null when the bytes are not exactly one well-formed command. */
export function decodeSumCommand(data: Uint8Array): SumCommand | null {
  const raw: RawSumCommand = { clientId: 0, sequence: 0, textOffset: 0, textLength: 0 };
  if (!readSumCommand(data, raw)) return null;
  const text = decodeUtf8(data, raw.textOffset, raw.textOffset + raw.textLength);
  if (text === null) return null; // msgpack str must be UTF-8
  return { clientId: raw.clientId, sequence: raw.sequence, text };
}

/**
 * What applying one entry did:
 *  - applied:   a new command with a valid number, added to the sum;
 *  - invalid:   a new command whose text is not an i64 (Rust rules): recorded as done, sum unchanged;
 *  - duplicate: the client's sequence was already applied (a retry): nothing changes;
 *  - malformed: the bytes are not a command at all: nothing changes.
 */
export type SumApplyStatus = 'applied' | 'invalid' | 'duplicate' | 'malformed';

/** The outcome of I64SumMachine.apply. */
export interface SumApplyResult {
  readonly status: SumApplyStatus;
  /** The command's client (0 when malformed). */
  readonly clientId: number;
  /** The command's sequence (0 when malformed). */
  readonly sequence: number;
}

/** Default bound on the clients the duplicate table remembers. */
export const sumClientsMaxDefault = 4096;

/** Sizes of an I64SumMachine. */
export interface I64SumMachineOptions {
  /** Clients remembered for duplicate detection (least recently applied forgotten first). */
  readonly clientsMax?: number;
}

/** The i64 sum state machine with per-client duplicate detection (see the file header). */
export class I64SumMachine {
  /** The bound on remembered clients. */
  readonly clientsMax: number;
  private sum = 0n;
  private commands = 0;
  /** clientId -> last applied sequence, least recently applied first (Map keeps insertion order). */
  private readonly lastSequences = new Map<number, number>();
  private readonly raw: RawSumCommand = { clientId: 0, sequence: 0, textOffset: 0, textLength: 0 };

  constructor(options: I64SumMachineOptions = {}) {
    const clientsMax = options.clientsMax ?? sumClientsMaxDefault;
    if (!Number.isSafeInteger(clientsMax) || clientsMax < 1) throw new RangeError(`I64SumMachine: clientsMax must be a positive integer, got ${String(clientsMax)}`);
    this.clientsMax = clientsMax;
  }

  /** The current sum. */
  get value(): bigint {
    return this.sum;
  }

  /** Commands applied once each (applied or invalid; duplicates and malformed entries excluded). */
  get commandCount(): number {
    return this.commands;
  }

  /** Clients currently remembered. */
  get clientCount(): number {
    return this.lastSequences.size;
  }

  /** The last sequence applied for `clientId`, 0 when none is remembered. */
  lastSequence(clientId: number): number {
    return this.lastSequences.get(clientId) ?? 0;
  }

  /** Applies one committed entry's data. The bytes are only read during the call (views are fine). */
  apply(data: Uint8Array): SumApplyResult {
    const raw = this.raw;
    if (!readSumCommand(data, raw)) return { status: 'malformed', clientId: 0, sequence: 0 };
    const { clientId, sequence } = raw;
    const last = this.lastSequences.get(clientId);
    if (last !== undefined && sequence <= last) return { status: 'duplicate', clientId, sequence };
    if (last !== undefined) {
      this.lastSequences.delete(clientId); // re-inserted below as most recently applied
    } else if (this.lastSequences.size >= this.clientsMax) {
      const oldest = this.lastSequences.keys().next().value as number;
      this.lastSequences.delete(oldest);
    }
    this.lastSequences.set(clientId, sequence);
    this.commands += 1;
    const number = parseI64Bytes(data, raw.textOffset, raw.textLength);
    if (number === null) return { status: 'invalid', clientId, sequence };
    this.sum = BigInt.asIntN(64, this.sum + number);
    return { status: 'applied', clientId, sequence };
  }

  /** The machine's state as bytes (see the file header); restore() on a fresh machine reproduces it. */
  snapshot(): Uint8Array {
    let clientBytes = 0;
    for (const [clientId, sequence] of this.lastSequences) clientBytes += uintBytes(clientId) + uintBytes(sequence);
    const out = new Uint8Array(1 + 1 + 9 + uintBytes(this.commands) + 5 + clientBytes);
    out[0] = 0x94;
    out[1] = 1;
    out[2] = 0xd3;
    new DataView(out.buffer).setBigInt64(3, this.sum);
    let at = writeUint(out, 11, this.commands);
    out[at] = 0xdd;
    writeUint32(out, at + 1, this.lastSequences.size * 2);
    at += 5;
    for (const [clientId, sequence] of this.lastSequences) {
      at = writeUint(out, at, clientId);
      at = writeUint(out, at, sequence);
    }
    return out;
  }

  /** Replaces the state with a snapshot's; throws RaftError('invalid-state') naming the defect if malformed. */
  restore(data: Uint8Array): void {
    const fail = (why: string): never => {
      throw new RaftError('invalid-state', `I64SumMachine.restore: ${why} (${data.length} bytes)`);
    };
    if (data.length < 17 || data[0] !== 0x94) fail('not a sum snapshot');
    if (data[1] !== 1) fail(`unknown format ${String(data[1])}`);
    if (data[2] !== 0xd3) fail('value is not an int64');
    const sum = new DataView(data.buffer, data.byteOffset, data.byteLength).getBigInt64(3);
    const cursor = new Cursor(data, 11, data.length);
    const commands = cursor.uint();
    if (commands < 0) fail('bad command count');
    if (cursor.at + 5 > data.length || data[cursor.at] !== 0xdd) fail('client table is not an array32');
    const items = readUint32(data, cursor.at + 1);
    cursor.at += 5;
    if (items % 2 !== 0) fail(`client table holds ${items} items, not pairs`);
    if (items / 2 > this.clientsMax) fail(`${items / 2} clients above clientsMax ${this.clientsMax}`);
    const table = new Map<number, number>();
    for (let i = 0; i < items; i += 2) {
      const clientId = cursor.uint();
      const sequence = cursor.uint();
      if (clientId < 1 || sequence < 1) fail(`bad client entry ${i / 2}`);
      if (table.has(clientId)) fail(`client ${clientId} listed twice`);
      table.set(clientId, sequence);
    }
    if (cursor.at !== data.length) fail(`${data.length - cursor.at} trailing bytes`);
    this.sum = sum;
    this.commands = commands;
    this.lastSequences.clear();
    for (const [clientId, sequence] of table) this.lastSequences.set(clientId, sequence);
  }
}
