/**
 * KV commands and their binary encoding: the bytes a KV server proposes to Raft and every replica's
 * state machine decodes when the entry commits.
 *
 *   command  = version:u8 (= 1) | opcode:u8 | timeMs:varint | body
 *   register = (empty)                                        opcode 1
 *   get      = key                                            opcode 2
 *   put      = session | key | value                          opcode 3
 *   delete   = session | key                                  opcode 4
 *   cas      = session | key | expected | value               opcode 5
 *   session  = clientId:varint | sequence:varint | lowestPendingSequence:varint
 *   key      = length:varint (1..keyBytesMax) | UTF-8 bytes
 *   value    = length:varint (0..valueBytesMax) | UTF-8 bytes
 *   expected = 0x00 (the key must be absent) | 0x01 value
 *
 * Varints are unsigned LEB128 in their shortest form, at most 2^53 - 1. Nothing may follow the last
 * field. Each rule is checked on decode, so a command has exactly one encoding and garbage is
 * recognised as garbage: `decodeCommand` never throws, it returns a refusal whose detail is a pure
 * function of the bytes (every replica produces the same one).
 *
 * `timeMs` is the proposer's clock, carried in the command because the state machine may not read
 * a clock of its own: session expiry must be decided identically on every replica (thesis §6.3).
 */
import { ByteReader, isWellFormedText, utf8Encode, varintBytes, writeVarint } from './bytes.js';

/** Version byte of the command encoding; a command with another version is refused. */
export const commandVersion = 1;

/** The opcode of each command in its encoding. */
export const commandOpcode = { register: 1, get: 2, put: 3, delete: 4, cas: 5 } as const satisfies Record<KvCommand['op'], number>;

/**
 * The client-session stamp every write carries (thesis §6.3). `sequence` numbers the client's
 * writes from 1; `lowestPendingSequence` is the lowest sequence for which the client has not yet
 * received a response, which lets the state machine drop the responses it cached for lower ones.
 */
export interface SessionStamp {
  /** The id the state machine assigned when the client registered (the register entry's index). */
  readonly clientId: number;
  /** This write's sequence number, from 1. */
  readonly sequence: number;
  /** Lowest sequence still awaiting a response; 1 <= lowestPendingSequence <= sequence. */
  readonly lowestPendingSequence: number;
}

/** A command of the KV state machine. */
export type KvCommand =
  | { readonly op: 'register'; readonly timeMs: number }
  | { readonly op: 'get'; readonly timeMs: number; readonly key: string }
  | { readonly op: 'put'; readonly timeMs: number; readonly session: SessionStamp; readonly key: string; readonly value: string }
  | { readonly op: 'delete'; readonly timeMs: number; readonly session: SessionStamp; readonly key: string }
  | {
      readonly op: 'cas';
      readonly timeMs: number;
      readonly session: SessionStamp;
      readonly key: string;
      /** The value the key must hold for the swap to happen; null: the key must be absent. */
      readonly expected: string | null;
      readonly value: string;
    };

/** The commands that write and carry a session stamp. */
export type KvWriteCommand = Extract<KvCommand, { readonly session: SessionStamp }>;

/** Size bounds on keys and values, in UTF-8 bytes. Every replica must use the same ones. */
export interface KvLimits {
  /** Largest key; keys are never empty. */
  readonly keyBytesMax: number;
  /** Largest value (and largest cas expected value). */
  readonly valueBytesMax: number;
}

/** The default limits: 1 KiB keys, 1 MiB values. */
export const defaultKvLimits: KvLimits = Object.freeze({ keyBytesMax: 1024, valueBytesMax: 1024 * 1024 });

/** Why a command could not be encoded or decoded. */
export type CommandRefusal = 'malformed-command' | 'key-too-large' | 'value-too-large';

/** Result of `encodeCommand`. */
export type EncodeResult =
  | { readonly ok: true; readonly bytes: Uint8Array }
  | { readonly ok: false; readonly reason: CommandRefusal; readonly detail: string };

/** Result of `decodeCommand`; on success also the UTF-8 sizes the state machine accounts for. */
export type DecodeResult =
  | { readonly ok: true; readonly command: KvCommand; readonly keyBytes: number; readonly valueBytes: number }
  | { readonly ok: false; readonly reason: CommandRefusal; readonly detail: string };

function refuse(reason: CommandRefusal, detail: string): { ok: false; reason: CommandRefusal; detail: string } {
  return { ok: false, reason, detail };
}

function isCount(value: unknown, minimum: number): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= minimum;
}

/** Checks a session stamp's numbers; returns null when valid, else why not. */
function checkSession(session: SessionStamp): string | null {
  if (!isCount(session.clientId, 1)) return `clientId ${String(session.clientId)} is not an integer >= 1`;
  if (!isCount(session.sequence, 1)) return `sequence ${String(session.sequence)} is not an integer >= 1`;
  if (!isCount(session.lowestPendingSequence, 1)) {
    return `lowestPendingSequence ${String(session.lowestPendingSequence)} is not an integer >= 1`;
  }
  if (session.lowestPendingSequence > session.sequence) {
    return `lowestPendingSequence ${session.lowestPendingSequence} is above sequence ${session.sequence}`;
  }
  return null;
}

/** Encodes a text field after checking it; returns the bytes or a refusal. */
function encodeText(
  text: unknown,
  what: 'key' | 'value' | 'expected',
  limits: KvLimits,
): Uint8Array | { ok: false; reason: CommandRefusal; detail: string } {
  if (typeof text !== 'string') return refuse('malformed-command', `${what} is not a string`);
  if (!isWellFormedText(text)) return refuse('malformed-command', `${what} has a lone surrogate (not encodable as UTF-8)`);
  const bytes = utf8Encode(text);
  if (what === 'key') {
    if (bytes.length === 0) return refuse('malformed-command', 'key is empty');
    if (bytes.length > limits.keyBytesMax) return refuse('key-too-large', `key of ${bytes.length} bytes exceeds keyBytesMax ${limits.keyBytesMax}`);
  } else if (bytes.length > limits.valueBytesMax) {
    return refuse('value-too-large', `${what} of ${bytes.length} bytes exceeds valueBytesMax ${limits.valueBytesMax}`);
  }
  return bytes;
}

/**
 * Encodes a command, checking every field first: bad input (an oversized key, a lone surrogate, a
 * sequence of 0) is returned as a refusal with a precise detail, never thrown and never mangled.
 */
export function encodeCommand(command: KvCommand, limits: KvLimits = defaultKvLimits): EncodeResult {
  if (!isCount(command.timeMs, 0)) return refuse('malformed-command', `timeMs ${String(command.timeMs)} is not an integer >= 0`);
  const opcode = commandOpcode[command.op] as number | undefined;
  if (opcode === undefined) return refuse('malformed-command', `unknown op ${JSON.stringify(command.op)}`);
  const fields: (number | Uint8Array)[] = [];
  if (command.op !== 'register') {
    if (command.op !== 'get') {
      if (typeof command.session !== 'object' || command.session === null) return refuse('malformed-command', `${command.op} has no session stamp`);
      const invalid = checkSession(command.session);
      if (invalid !== null) return refuse('malformed-command', invalid);
      fields.push(command.session.clientId, command.session.sequence, command.session.lowestPendingSequence);
    }
    const key = encodeText(command.key, 'key', limits);
    if (!(key instanceof Uint8Array)) return key;
    fields.push(key);
    if (command.op === 'cas') {
      if (command.expected === null) {
        fields.push(0);
      } else {
        const expected = encodeText(command.expected, 'expected', limits);
        if (!(expected instanceof Uint8Array)) return expected;
        fields.push(1, expected);
      }
    }
    if (command.op === 'put' || command.op === 'cas') {
      const value = encodeText(command.value, 'value', limits);
      if (!(value instanceof Uint8Array)) return value;
      fields.push(value);
    }
  }
  let byteLength = 2 + varintBytes(command.timeMs);
  for (const field of fields) byteLength += typeof field === 'number' ? varintBytes(field) : varintBytes(field.length) + field.length;
  const bytes = new Uint8Array(byteLength);
  bytes[0] = commandVersion;
  bytes[1] = opcode;
  let at = writeVarint(bytes, 2, command.timeMs);
  for (const field of fields) {
    if (typeof field === 'number') {
      at = writeVarint(bytes, at, field);
    } else {
      at = writeVarint(bytes, at, field.length);
      bytes.set(field, at);
      at += field.length;
    }
  }
  return { ok: true, bytes };
}

/** Reads a length-prefixed text field, refusing it by size before decoding it. */
function readText(
  reader: ByteReader,
  what: 'key' | 'value' | 'expected',
  limits: KvLimits,
): { text: string; bytes: number } | { ok: false; reason: CommandRefusal; detail: string } {
  const start = reader.offset;
  const length = reader.varint(`${what} length`);
  if (reader.failure !== null) return refuse('malformed-command', reader.failure);
  if (what === 'key') {
    if (length === 0) return refuse('malformed-command', `empty key at byte ${start}`);
    if (length > limits.keyBytesMax) return refuse('key-too-large', `key of ${length} bytes exceeds keyBytesMax ${limits.keyBytesMax}`);
  } else if (length > limits.valueBytesMax) {
    return refuse('value-too-large', `${what} of ${length} bytes exceeds valueBytesMax ${limits.valueBytesMax}`);
  }
  const text = reader.utf8(length, what);
  if (text === null) return refuse('malformed-command', reader.failure ?? `${what}: unreadable`);
  return { text, bytes: length };
}

/**
 * Decodes untrusted bytes (a view, e.g. an entry's data inside the log ring: nothing of it is kept).
 * Never throws: any deviation from the encoding is a refusal whose detail depends only on the bytes.
 */
export function decodeCommand(bytes: Uint8Array, limits: KvLimits = defaultKvLimits): DecodeResult {
  const reader = new ByteReader(bytes);
  const version = reader.u8('version');
  if (reader.failure !== null) return refuse('malformed-command', 'empty command');
  if (version !== commandVersion) return refuse('malformed-command', `unsupported command version ${version} (this machine reads ${commandVersion})`);
  const opcode = reader.u8('opcode');
  if (reader.failure !== null) return refuse('malformed-command', reader.failure);
  if (opcode < commandOpcode.register || opcode > commandOpcode.cas) return refuse('malformed-command', `unknown opcode ${opcode}`);
  const timeMs = reader.varint('timeMs');
  if (reader.failure !== null) return refuse('malformed-command', reader.failure);
  let command: KvCommand;
  let keyBytes = 0;
  let valueBytes = 0;
  if (opcode === commandOpcode.register) {
    command = { op: 'register', timeMs };
  } else {
    let session: SessionStamp | null = null;
    if (opcode !== commandOpcode.get) {
      session = {
        clientId: reader.varint('clientId'),
        sequence: reader.varint('sequence'),
        lowestPendingSequence: reader.varint('lowestPendingSequence'),
      };
      if (reader.failure !== null) return refuse('malformed-command', reader.failure);
      const invalid = checkSession(session);
      if (invalid !== null) return refuse('malformed-command', invalid);
    }
    const key = readText(reader, 'key', limits);
    if ('ok' in key) return key;
    keyBytes = key.bytes;
    if (session === null) {
      command = { op: 'get', timeMs, key: key.text };
    } else if (opcode === commandOpcode.delete) {
      command = { op: 'delete', timeMs, session, key: key.text };
    } else {
      let expected: string | null = null;
      if (opcode === commandOpcode.cas) {
        const presence = reader.u8('expected presence');
        if (reader.failure !== null) return refuse('malformed-command', reader.failure);
        if (presence > 1) return refuse('malformed-command', `expected presence byte ${presence} is neither 0 nor 1`);
        if (presence === 1) {
          const read = readText(reader, 'expected', limits);
          if ('ok' in read) return read;
          expected = read.text;
        }
      }
      const value = readText(reader, 'value', limits);
      if ('ok' in value) return value;
      valueBytes = value.bytes;
      command =
        opcode === commandOpcode.put
          ? { op: 'put', timeMs, session, key: key.text, value: value.text }
          : { op: 'cas', timeMs, session, key: key.text, expected, value: value.text };
    }
  }
  if (reader.remaining !== 0) return refuse('malformed-command', `${reader.remaining} trailing bytes after the command`);
  return { ok: true, command, keyBytes, valueBytes };
}
