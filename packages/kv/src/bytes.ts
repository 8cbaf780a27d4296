/**
 * Byte-level helpers shared by the command and snapshot encodings: unsigned LEB128 varints limited
 * to JavaScript's safe integer range, strict UTF-8, CRC-32, and a reader that never throws.
 *
 * The reader records the first failure and returns zeros afterwards, so a decoder reads field after
 * field and checks `failure` once per logical step. Decoding is a pure function of the bytes: every
 * replica that decodes the same garbage reaches the same failure with the same message, which is
 * what lets the state machine turn a malformed entry into a deterministic result.
 */
import { assert } from '@raftlab/core';

/** Most bytes a varint of a safe integer takes (7 bits per byte, 53 bits). */
export const varintBytesMax = 8;

const utf8Encoder = new TextEncoder();
// fatal: invalid UTF-8 is an error, never silently replaced; ignoreBOM: a leading U+FEFF is data.
const utf8Decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Bytes the varint encoding of `value` takes. `value` is a safe non-negative integer. */
export function varintBytes(value: number): number {
  let bytes = 1;
  let rest = value;
  while (rest >= 0x80) {
    rest = Math.floor(rest / 0x80);
    bytes += 1;
  }
  return bytes;
}

/** Writes `value` as an unsigned LEB128 varint at `offset`; returns the offset after it. */
export function writeVarint(target: Uint8Array, offset: number, value: number): number {
  let at = offset;
  let rest = value;
  while (rest >= 0x80) {
    target[at++] = (rest % 0x80) | 0x80;
    rest = Math.floor(rest / 0x80);
  }
  target[at++] = rest;
  return at;
}

/** The UTF-8 encoding of a string (callers check well-formedness first: see isWellFormedText). */
export function utf8Encode(text: string): Uint8Array {
  return utf8Encoder.encode(text);
}

/** Encodes `text` into `target` at `offset`; `byteLength` is its known UTF-8 length. */
export function utf8EncodeInto(target: Uint8Array, offset: number, text: string, byteLength: number): number {
  const written = utf8Encoder.encodeInto(text, target.subarray(offset, offset + byteLength)).written;
  assert(written === byteLength, () => `utf8EncodeInto: wrote ${written} bytes, expected ${byteLength}`);
  return offset + byteLength;
}

/**
 * True when `text` has no lone surrogate. A lone surrogate has no UTF-8 encoding: TextEncoder would
 * replace it with U+FFFD and the stored value would silently differ from the one given.
 */
export function isWellFormedText(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    if (unit < 0xd800 || unit > 0xdfff) continue;
    if (unit >= 0xdc00) return false; // a low surrogate without a high one before it
    const next = i + 1 < text.length ? text.charCodeAt(i + 1) : 0;
    if (next < 0xdc00 || next > 0xdfff) return false; // a high surrogate without a low one after it
    i += 1;
  }
  return true;
}

/** Bytes of the UTF-8 encoding of a well-formed string, without encoding it. */
export function utf8ByteLength(text: string): number {
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    if (unit < 0x80) bytes += 1;
    else if (unit < 0x800) bytes += 2;
    else if (unit >= 0xd800 && unit <= 0xdbff) {
      bytes += 4; // a surrogate pair: one code point above U+FFFF
      i += 1;
    } else bytes += 3;
  }
  return bytes;
}

const crcTable = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/** CRC-32 (IEEE 802.3, the zlib one) of `bytes[start, end)`. */
export function crc32(bytes: Uint8Array, start = 0, end = bytes.length): number {
  let c = 0xffffffff;
  for (let i = start; i < end; i++) c = (crcTable[(c ^ (bytes[i] as number)) & 0xff] as number) ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/**
 * A cursor over untrusted bytes that never throws. Every read past the end, every malformed varint
 * and every invalid UTF-8 string sets `failure` (the first one wins) and yields a neutral value.
 */
export class ByteReader {
  /** Next byte to read. */
  offset: number;
  /** Why decoding failed, or null while every read has succeeded. */
  failure: string | null = null;

  constructor(
    private readonly bytes: Uint8Array,
    offset = 0,
    private readonly end = bytes.length,
  ) {
    this.offset = offset;
  }

  /** Bytes left before the end. */
  get remaining(): number {
    return this.end - this.offset;
  }

  /** Records a failure (only the first is kept). */
  fail(reason: string): void {
    if (this.failure === null) this.failure = reason;
  }

  /** One byte, or 0 on failure. */
  u8(what: string): number {
    if (this.failure !== null) return 0;
    if (this.offset >= this.end) {
      this.fail(`${what}: truncated at byte ${this.offset}`);
      return 0;
    }
    return this.bytes[this.offset++] as number;
  }

  /** Four bytes big-endian, or 0 on failure. */
  u32(what: string): number {
    if (this.failure !== null) return 0;
    if (this.offset + 4 > this.end) {
      this.fail(`${what}: truncated at byte ${this.offset}`);
      return 0;
    }
    const at = this.offset;
    this.offset += 4;
    const b = this.bytes;
    return (b[at] as number) * 0x1000000 + (((b[at + 1] as number) << 16) | ((b[at + 2] as number) << 8) | (b[at + 3] as number));
  }

  /**
   * An unsigned LEB128 varint in the safe integer range, in its shortest form (a longer form of the
   * same number is refused so that every value has exactly one encoding), or 0 on failure.
   */
  varint(what: string): number {
    if (this.failure !== null) return 0;
    const start = this.offset;
    let value = 0;
    let scale = 1;
    for (let count = 0; count < varintBytesMax; count++) {
      if (this.offset >= this.end) {
        this.fail(`${what}: truncated varint at byte ${start}`);
        return 0;
      }
      const byte = this.bytes[this.offset++] as number;
      value += (byte & 0x7f) * scale;
      if ((byte & 0x80) === 0) {
        if (byte === 0 && count > 0) {
          this.fail(`${what}: varint at byte ${start} is not in its shortest form`);
          return 0;
        }
        if (value > Number.MAX_SAFE_INTEGER) {
          this.fail(`${what}: varint at byte ${start} exceeds the safe integer range`);
          return 0;
        }
        return value;
      }
      scale *= 0x80;
    }
    this.fail(`${what}: varint at byte ${start} is longer than ${varintBytesMax} bytes`);
    return 0;
  }

  /** A view of the next `length` bytes, or null on failure. */
  raw(length: number, what: string): Uint8Array | null {
    if (this.failure !== null) return null;
    if (length > this.end - this.offset) {
      this.fail(`${what}: ${length} bytes declared at byte ${this.offset}, ${this.end - this.offset} left`);
      return null;
    }
    const view = this.bytes.subarray(this.offset, this.offset + length);
    this.offset += length;
    return view;
  }

  /** The next `length` bytes decoded as strict UTF-8, or null on failure. */
  utf8(length: number, what: string): string | null {
    const start = this.offset;
    const view = this.raw(length, what);
    if (view === null) return null;
    try {
      return utf8Decoder.decode(view);
    } catch {
      this.fail(`${what}: invalid UTF-8 in ${length} bytes at byte ${start}`);
      return null;
    }
  }
}

/** An append-only byte buffer that doubles as it fills (snapshots: written once, sized on the way). */
export class ByteWriter {
  private buffer: Uint8Array;
  /** Bytes written so far. */
  length = 0;

  constructor(initialBytes = 256) {
    this.buffer = new Uint8Array(Math.max(16, initialBytes));
  }

  private reserve(bytes: number): void {
    const needed = this.length + bytes;
    if (needed <= this.buffer.length) return;
    let capacity = this.buffer.length * 2;
    while (capacity < needed) capacity *= 2;
    const grown = new Uint8Array(capacity);
    grown.set(this.buffer.subarray(0, this.length));
    this.buffer = grown;
  }

  /** Appends one byte. */
  u8(value: number): void {
    this.reserve(1);
    this.buffer[this.length++] = value;
  }

  /** Appends four bytes big-endian. */
  u32(value: number): void {
    this.reserve(4);
    const b = this.buffer;
    b[this.length++] = value >>> 24;
    b[this.length++] = (value >>> 16) & 0xff;
    b[this.length++] = (value >>> 8) & 0xff;
    b[this.length++] = value & 0xff;
  }

  /** Appends a varint. */
  varint(value: number): void {
    assert(Number.isSafeInteger(value) && value >= 0, () => `ByteWriter.varint: ${value} is not a safe non-negative integer`);
    this.reserve(varintBytesMax);
    this.length = writeVarint(this.buffer, this.length, value);
  }

  /** Appends a length-prefixed UTF-8 string whose encoded length is known. */
  text(text: string, byteLength: number): void {
    this.varint(byteLength);
    this.reserve(byteLength);
    this.length = utf8EncodeInto(this.buffer, this.length, text, byteLength);
  }

  /** The bytes written so far, as a view of the internal buffer. */
  view(): Uint8Array {
    return this.buffer.subarray(0, this.length);
  }

  /** A standalone copy of the bytes written. */
  finish(): Uint8Array {
    return this.buffer.slice(0, this.length);
  }
}
