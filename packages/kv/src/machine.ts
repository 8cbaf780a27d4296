/**
 * The KV state machine: a map from string keys to string values, replicated by applying committed
 * log entries in order (§5.3: state machine safety makes every replica's map the same), with client
 * sessions for exactly-once writes (thesis §6.3).
 *
 * Determinism is the contract. Every decision depends only on the entries applied so far: no wall
 * clock (time arrives inside commands as `timeMs`, and the machine keeps the maximum it has seen),
 * no randomness, no iteration order that depends on anything but the applied sequence. Two machines
 * with the same configuration fed the same entries return the same results and produce byte-identical
 * snapshots; a malformed entry yields the same refusal on every replica. The configuration (limits,
 * session bounds, expiry) is part of the machine's definition: every replica must use the same one.
 *
 * Sessions. A client registers once (a `register` command; its client id is the log index of that
 * entry, unique forever) and stamps every write with (clientId, sequence, lowestPendingSequence). The
 * session caches the result of each applied write until the client acknowledges it by sending a
 * higher lowestPendingSequence, so a retried write, even one that reaches the log twice, applies once
 * and returns its original result. Several writes of one client may be in flight at once, up to
 * `sessionResponsesCountMax`. The table is bounded: at most `sessionCountMax` sessions, the least
 * recently active one evicted when a new client registers into a full table, and sessions idle for
 * more than `sessionExpiryIndexCount` log indexes or `sessionExpiryMs` of command time expire. A
 * write naming a session that is gone is refused (`unknown-session`) rather than applied, because
 * the machine can no longer tell a new write from a retry of an applied one (thesis §6.3).
 *
 * Reads. `get` through the log is allowed (it is linearizable by construction); the usual path is a
 * ReadIndex read (thesis §6.4) served by `read(key)` once the machine has applied through the read
 * index.
 */
import { assert, unreachable } from '@raftlab/core';
import { ByteReader, ByteWriter, crc32, utf8ByteLength } from './bytes.js';
import { type CommandRefusal, type KvWriteCommand, type KvLimits, decodeCommand, defaultKvLimits } from './command.js';
import { KvError } from './errors.js';

/** The state machine shape the runtime drives: apply committed entries, snapshot, restore. */
export interface ReplicatedStateMachine<Result> {
  /** Applies the data of the committed entry at `index` (indexes strictly increase). */
  apply(index: number, data: Uint8Array): Result;
  /** A deterministic encoding of the whole state. */
  snapshot(): Uint8Array;
  /** Replaces the whole state with a snapshot's; throws and keeps the current state if it is bad. */
  restore(data: Uint8Array): void;
}

/** Why the machine refused a command without applying it. */
export type KvRefusal =
  | CommandRefusal
  /** The client id names no session: never registered, evicted or expired. Register again. */
  | 'unknown-session'
  /** The client already acknowledged this sequence's response: a late duplicate, ignored. */
  | 'sequence-acknowledged'
  /** The session caches as many unacknowledged responses (or bytes) as allowed. */
  | 'session-window-full'
  /** Applying the write would take the stored bytes above dataBytesMax. */
  | 'store-full';

/** Result of an applied write; cached in the session and returned again for a retry. */
export type KvWriteResult =
  | { readonly op: 'put'; readonly ok: true; readonly previous: string | null }
  | { readonly op: 'delete'; readonly ok: true; readonly existed: boolean }
  | { readonly op: 'cas'; readonly ok: true }
  | { readonly op: 'cas'; readonly ok: false; readonly actual: string | null };

/** A refusal: nothing was applied. `detail` is the same on every replica. */
export interface KvRefused {
  readonly op: 'refused';
  readonly ok: false;
  readonly reason: KvRefusal;
  readonly detail: string;
}

/** Result of applying one entry. */
export type KvResult =
  | { readonly op: 'register'; readonly ok: true; readonly clientId: number }
  | { readonly op: 'get'; readonly ok: true; readonly value: string | null }
  | KvWriteResult
  | KvRefused;

/** Configuration of a KV state machine; every field has a default. */
export interface KvMachineConfig {
  /** Largest key in UTF-8 bytes (default 1 KiB). */
  readonly keyBytesMax?: number;
  /** Largest value in UTF-8 bytes (default 1 MiB). */
  readonly valueBytesMax?: number;
  /** Largest total of key and value bytes stored (default 256 MiB). */
  readonly dataBytesMax?: number;
  /** Most sessions kept (default 1024); a registration into a full table evicts the least recently active. */
  readonly sessionCountMax?: number;
  /** Most unacknowledged responses cached per session, i.e. writes in flight per client (default 16). */
  readonly sessionResponsesCountMax?: number;
  /** Most bytes of values cached in one session's responses (default 64 KiB); one response is always admitted. */
  readonly sessionResponseBytesMax?: number;
  /** A session idle for more than this many log indexes expires; null: never (default null). */
  readonly sessionExpiryIndexCount?: number | null;
  /** A session idle for more than this much command time expires; null: never (default 1 hour). */
  readonly sessionExpiryMs?: number | null;
}

/** A configuration with every default filled in and every value checked. */
export interface ResolvedKvMachineConfig extends KvLimits {
  readonly dataBytesMax: number;
  readonly sessionCountMax: number;
  readonly sessionResponsesCountMax: number;
  readonly sessionResponseBytesMax: number;
  readonly sessionExpiryIndexCount: number | null;
  readonly sessionExpiryMs: number | null;
}

/** The defaults of KvMachineConfig. */
export const defaultKvMachineConfig: ResolvedKvMachineConfig = Object.freeze({
  ...defaultKvLimits,
  dataBytesMax: 256 * 1024 * 1024,
  sessionCountMax: 1024,
  sessionResponsesCountMax: 16,
  sessionResponseBytesMax: 64 * 1024,
  sessionExpiryIndexCount: null,
  sessionExpiryMs: 60 * 60 * 1000,
});

/** Fills in defaults and checks every field; a bad value throws KvError('invalid-config') naming it. */
export function resolveKvMachineConfig(config: KvMachineConfig = {}): ResolvedKvMachineConfig {
  const resolved = { ...defaultKvMachineConfig };
  const positive = ['keyBytesMax', 'valueBytesMax', 'dataBytesMax', 'sessionCountMax', 'sessionResponsesCountMax', 'sessionResponseBytesMax'] as const;
  for (const field of positive) {
    const value: unknown = config[field];
    if (value === undefined) continue;
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) {
      throw new KvError('invalid-config', `invalid kv machine config: ${field}: ${String(value)} is not an integer >= 1`);
    }
    resolved[field] = value;
  }
  for (const field of ['sessionExpiryIndexCount', 'sessionExpiryMs'] as const) {
    const value: unknown = config[field];
    if (value === undefined) continue;
    if (value !== null && (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1)) {
      throw new KvError('invalid-config', `invalid kv machine config: ${field}: ${String(value)} is neither null nor an integer >= 1`);
    }
    resolved[field] = value;
  }
  return Object.freeze(resolved);
}

/** A stored value with the UTF-8 sizes it is accounted at. */
interface Stored {
  readonly value: string;
  readonly keyBytes: number;
  readonly valueBytes: number;
}

/** One client's session (thesis §6.3). */
interface Session {
  readonly clientId: number;
  /** Log index of the client's last command. Nondecreasing along the session table's order. */
  lastActiveIndex: number;
  /** Command time of the client's last command. Nondecreasing along the session table's order. */
  lastActiveTimeMs: number;
  /**
   * Sequences below this have been acknowledged by the client; their responses are dropped.
   * Invariant: every cached sequence >= acknowledgedBelow.
   */
  acknowledgedBelow: number;
  /** Results of applied, unacknowledged writes by sequence. Invariant: size <= sessionResponsesCountMax. */
  readonly responses: Map<number, KvWriteResult>;
  /** Value bytes held by `responses`. Invariant: responses.size <= 1 or <= sessionResponseBytesMax. */
  responseBytes: number;
}

/** Sizes of the machine's state, for metrics and tests. */
export interface KvMachineStats {
  readonly appliedIndex: number;
  readonly clockMs: number;
  readonly keyCount: number;
  readonly dataBytes: number;
  readonly sessionCount: number;
}

const snapshotMagic = [0x52, 0x4b, 0x56, 0x53] as const; // "RKVS"

/** Version byte of the snapshot encoding. */
export const snapshotVersion = 1;

/** Tags of cached write results in a snapshot. */
const resultTag = { putAbsent: 1, putPrevious: 2, deleteAbsent: 3, deleteExisted: 4, casOk: 5, casFailedAbsent: 6, casFailedActual: 7 } as const;

function refused(reason: KvRefusal, detail: string): KvRefused {
  return { op: 'refused', ok: false, reason, detail };
}

/** Value bytes a cached result holds (its strings came from valid UTF-8, so they are well formed). */
function resultBytes(result: KvWriteResult): number {
  switch (result.op) {
    case 'put':
      return result.previous === null ? 0 : utf8ByteLength(result.previous);
    case 'delete':
      return 0;
    case 'cas':
      return result.ok || result.actual === null ? 0 : utf8ByteLength(result.actual);
    default:
      return unreachable(result, 'write result');
  }
}

/**
 * The KV state machine. Snapshot layout (all varints as in command.ts):
 *
 *   "RKVS" | version:u8 | appliedIndex | clockMs
 *   | keyCount | (key | value)*                    keys in ascending UTF-16 code unit order
 *   | sessionCount | session*                      least recently active first
 *   | crc32:u32 over everything before it
 *   session = clientId | lastActiveIndex | lastActiveTimeMs | acknowledgedBelow | responseCount
 *             | (sequence | tag:u8 [value])*      ascending sequence
 *
 * Keys are sorted so the snapshot is a function of the state alone (not of the order keys were
 * written in); sessions keep their activity order because it is state: it decides eviction.
 */
export class KvMachine implements ReplicatedStateMachine<KvResult> {
  /** The resolved configuration. */
  readonly config: ResolvedKvMachineConfig;
  private data = new Map<string, Stored>();
  /** Sessions in order of last activity, least recent first (a Map keeps insertion order). */
  private sessions = new Map<number, Session>();
  private appliedIndexValue = 0;
  private clockMsValue = 0;
  private dataBytesValue = 0;

  constructor(config: KvMachineConfig = {}) {
    this.config = resolveKvMachineConfig(config);
  }

  /** Index of the last applied entry (0 before any). */
  get appliedIndex(): number {
    return this.appliedIndexValue;
  }

  /** The largest command time applied so far: the machine's only notion of time. */
  get clockMs(): number {
    return this.clockMsValue;
  }

  /** Sizes of the state. */
  stats(): KvMachineStats {
    return {
      appliedIndex: this.appliedIndexValue,
      clockMs: this.clockMsValue,
      keyCount: this.data.size,
      dataBytes: this.dataBytesValue,
      sessionCount: this.sessions.size,
    };
  }

  /**
   * The value of `key` in the applied state, or null. This is the ReadIndex read (thesis §6.4):
   * linearizable when called after the machine has applied through the read index.
   */
  read(key: string): string | null {
    return this.data.get(key)?.value ?? null;
  }

  /** True when `clientId` has a live session (for a server that wants to fail fast). */
  hasSession(clientId: number): boolean {
    return this.sessions.has(clientId);
  }

  /** Applies the committed entry at `index`. Never throws on bad data: it returns a refusal. */
  apply(index: number, data: Uint8Array): KvResult {
    assert(Number.isSafeInteger(index), () => `KvMachine.apply: index ${index} is not a safe integer`);
    assert(index > this.appliedIndexValue, () => `KvMachine.apply: index ${index} not above applied index ${this.appliedIndexValue}`);
    this.appliedIndexValue = index;
    const decoded = decodeCommand(data, this.config);
    if (decoded.ok && decoded.command.timeMs > this.clockMsValue) this.clockMsValue = decoded.command.timeMs;
    this.expireSessions();
    if (!decoded.ok) return refused(decoded.reason, decoded.detail);
    const command = decoded.command;
    switch (command.op) {
      case 'register':
        return this.register(index);
      case 'get':
        return { op: 'get', ok: true, value: this.read(command.key) };
      case 'put':
      case 'delete':
      case 'cas':
        return this.applyWrite(index, command, decoded.keyBytes, decoded.valueBytes);
      default:
        return unreachable(command, 'command');
    }
  }

  /** Drops sessions idle beyond either expiry bound; the oldest are first in the table. */
  private expireSessions(): void {
    const { sessionExpiryIndexCount, sessionExpiryMs } = this.config;
    if (sessionExpiryIndexCount === null && sessionExpiryMs === null) return;
    for (const session of this.sessions.values()) {
      const idleByIndex = sessionExpiryIndexCount !== null && this.appliedIndexValue - session.lastActiveIndex > sessionExpiryIndexCount;
      const idleByTime = sessionExpiryMs !== null && this.clockMsValue - session.lastActiveTimeMs > sessionExpiryMs;
      if (!idleByIndex && !idleByTime) break; // later sessions were active more recently
      this.sessions.delete(session.clientId);
    }
  }

  private register(index: number): KvResult {
    // The client id is the register entry's index: unique, and the same on every replica.
    assert(!this.sessions.has(index), () => `KvMachine.register: client id ${index} already has a session`);
    if (this.sessions.size >= this.config.sessionCountMax) {
      const leastRecent = this.sessions.keys().next();
      assert(leastRecent.done !== true, 'KvMachine.register: full session table is empty');
      this.sessions.delete(leastRecent.value);
    }
    this.sessions.set(index, {
      clientId: index,
      lastActiveIndex: index,
      lastActiveTimeMs: this.clockMsValue,
      acknowledgedBelow: 1,
      responses: new Map(),
      responseBytes: 0,
    });
    assert(this.sessions.size <= this.config.sessionCountMax, () => `KvMachine.register: ${this.sessions.size} sessions above sessionCountMax`);
    return { op: 'register', ok: true, clientId: index };
  }

  private applyWrite(index: number, command: KvWriteCommand, keyBytes: number, valueBytes: number): KvResult {
    const { clientId, sequence, lowestPendingSequence } = command.session;
    const session = this.sessions.get(clientId);
    if (session === undefined) {
      return refused('unknown-session', `client ${clientId} has no session (never registered, evicted or expired): register again`);
    }
    // Activity moves the session to the end of the table: the table stays in order of last activity.
    this.sessions.delete(clientId);
    this.sessions.set(clientId, session);
    session.lastActiveIndex = index;
    session.lastActiveTimeMs = this.clockMsValue;
    if (lowestPendingSequence > session.acknowledgedBelow) {
      session.acknowledgedBelow = lowestPendingSequence;
      for (const [cachedSequence, result] of session.responses) {
        if (cachedSequence >= lowestPendingSequence) continue;
        session.responses.delete(cachedSequence);
        session.responseBytes -= resultBytes(result);
      }
    }
    if (sequence < session.acknowledgedBelow) {
      return refused('sequence-acknowledged', `client ${clientId} sequence ${sequence} is below its acknowledged sequences (${session.acknowledgedBelow})`);
    }
    const cached = session.responses.get(sequence);
    if (cached !== undefined) return cached; // a retry: the original result, not a second application
    const current = this.data.get(command.key);
    let result: KvWriteResult;
    let next: Stored | null | undefined; // undefined: no change; null: delete
    switch (command.op) {
      case 'put':
        result = { op: 'put', ok: true, previous: current?.value ?? null };
        next = { value: command.value, keyBytes, valueBytes };
        break;
      case 'delete':
        result = { op: 'delete', ok: true, existed: current !== undefined };
        next = current === undefined ? undefined : null;
        break;
      case 'cas':
        if ((current?.value ?? null) === command.expected) {
          result = { op: 'cas', ok: true };
          next = { value: command.value, keyBytes, valueBytes };
        } else {
          result = { op: 'cas', ok: false, actual: current?.value ?? null };
          next = undefined;
        }
        break;
      default:
        return unreachable(command, 'write command');
    }
    const cachedBytes = result.op === 'put' || (result.op === 'cas' && !result.ok) ? (current?.valueBytes ?? 0) : 0;
    if (session.responses.size >= this.config.sessionResponsesCountMax) {
      return refused('session-window-full', `client ${clientId} has ${session.responses.size} unacknowledged responses (sessionResponsesCountMax ${this.config.sessionResponsesCountMax})`);
    }
    if (session.responses.size > 0 && session.responseBytes + cachedBytes > this.config.sessionResponseBytesMax) {
      return refused(
        'session-window-full',
        `client ${clientId} holds ${session.responseBytes} bytes of unacknowledged responses, ${cachedBytes} more exceed sessionResponseBytesMax ${this.config.sessionResponseBytesMax}`,
      );
    }
    if (next !== undefined && next !== null) {
      const growth = current === undefined ? keyBytes + valueBytes : valueBytes - current.valueBytes;
      if (this.dataBytesValue + growth > this.config.dataBytesMax) {
        return refused('store-full', `storing ${growth} more bytes exceeds dataBytesMax ${this.config.dataBytesMax} (${this.dataBytesValue} stored)`);
      }
      this.data.set(command.key, next);
      this.dataBytesValue += growth;
    } else if (next === null && current !== undefined) {
      this.data.delete(command.key);
      this.dataBytesValue -= current.keyBytes + current.valueBytes;
    }
    session.responses.set(sequence, result);
    session.responseBytes += cachedBytes;
    return result;
  }

  /** Encodes the whole state (see the class comment for the layout). */
  snapshot(): Uint8Array {
    const writer = new ByteWriter(64 + this.dataBytesValue + this.data.size * 6);
    for (const byte of snapshotMagic) writer.u8(byte);
    writer.u8(snapshotVersion);
    writer.varint(this.appliedIndexValue);
    writer.varint(this.clockMsValue);
    const keys = Array.from(this.data.keys()).sort();
    writer.varint(keys.length);
    for (const key of keys) {
      const stored = this.data.get(key) as Stored;
      writer.text(key, stored.keyBytes);
      writer.text(stored.value, stored.valueBytes);
    }
    writer.varint(this.sessions.size);
    for (const session of this.sessions.values()) {
      writer.varint(session.clientId);
      writer.varint(session.lastActiveIndex);
      writer.varint(session.lastActiveTimeMs);
      writer.varint(session.acknowledgedBelow);
      writer.varint(session.responses.size);
      const sequences = Array.from(session.responses.keys()).sort((a, b) => a - b);
      for (const sequence of sequences) {
        writer.varint(sequence);
        this.writeResult(writer, session.responses.get(sequence) as KvWriteResult);
      }
    }
    writer.u32(crc32(writer.view()));
    return writer.finish();
  }

  private writeResult(writer: ByteWriter, result: KvWriteResult): void {
    const textOf = (text: string): void => writer.text(text, utf8ByteLength(text));
    switch (result.op) {
      case 'put':
        writer.u8(result.previous === null ? resultTag.putAbsent : resultTag.putPrevious);
        if (result.previous !== null) textOf(result.previous);
        return;
      case 'delete':
        writer.u8(result.existed ? resultTag.deleteExisted : resultTag.deleteAbsent);
        return;
      case 'cas':
        if (result.ok) {
          writer.u8(resultTag.casOk);
        } else {
          writer.u8(result.actual === null ? resultTag.casFailedAbsent : resultTag.casFailedActual);
          if (result.actual !== null) textOf(result.actual);
        }
        return;
      default:
        unreachable(result, 'write result');
    }
  }

  /**
   * Replaces the state with a snapshot's. The snapshot is decoded and checked in full first (checksum,
   * layout, limits, ordering, session invariants); if anything is wrong this throws
   * KvError('malformed-snapshot') saying what, and the current state is untouched.
   */
  restore(data: Uint8Array): void {
    const fail = (detail: string): never => {
      throw new KvError('malformed-snapshot', `malformed kv snapshot: ${detail}`);
    };
    if (data.length < snapshotMagic.length + 1 + 4) fail(`${data.length} bytes is shorter than any snapshot`);
    const bodyEnd = data.length - 4;
    const reader = new ByteReader(data, 0, bodyEnd);
    const storedCrc = new ByteReader(data, bodyEnd).u32('checksum');
    const actualCrc = crc32(data, 0, bodyEnd);
    if (storedCrc !== actualCrc) fail(`checksum ${actualCrc.toString(16)} differs from the recorded ${storedCrc.toString(16)}`);
    for (const byte of snapshotMagic) if (reader.u8('magic') !== byte) fail('not a kv snapshot (bad magic)');
    const version = reader.u8('version');
    if (version !== snapshotVersion) fail(`unsupported snapshot version ${version} (this machine reads ${snapshotVersion})`);
    const appliedIndex = reader.varint('appliedIndex');
    const clockMs = reader.varint('clockMs');
    const { keyBytesMax, valueBytesMax } = this.config;
    const check = (): void => {
      if (reader.failure !== null) fail(reader.failure);
    };
    const readText = (what: string, bytesMax: number, minimum: number): { text: string; bytes: number } => {
      const bytes = reader.varint(`${what} length`);
      check();
      if (bytes < minimum || bytes > bytesMax) fail(`${what} of ${bytes} bytes at byte ${reader.offset} is outside [${minimum}, ${bytesMax}]`);
      const text = reader.utf8(bytes, what);
      check();
      return { text: text as string, bytes };
    };

    const keyCount = reader.varint('keyCount');
    check();
    const restoredData = new Map<string, Stored>();
    let dataBytes = 0;
    let previousKey: string | null = null;
    for (let i = 0; i < keyCount; i++) {
      const key = readText('key', keyBytesMax, 1);
      const value = readText('value', valueBytesMax, 0);
      if (previousKey !== null && !(previousKey < key.text)) fail(`key ${i} is not above the key before it (keys must be sorted and unique)`);
      previousKey = key.text;
      restoredData.set(key.text, { value: value.text, keyBytes: key.bytes, valueBytes: value.bytes });
      dataBytes += key.bytes + value.bytes;
    }
    if (dataBytes > this.config.dataBytesMax) fail(`${dataBytes} data bytes exceed dataBytesMax ${this.config.dataBytesMax}`);

    const sessionCount = reader.varint('sessionCount');
    check();
    if (sessionCount > this.config.sessionCountMax) fail(`${sessionCount} sessions exceed sessionCountMax ${this.config.sessionCountMax}`);
    const sessions = new Map<number, Session>();
    let previousIndex = 0;
    let previousTimeMs = 0;
    for (let i = 0; i < sessionCount; i++) {
      const clientId = reader.varint('clientId');
      const lastActiveIndex = reader.varint('lastActiveIndex');
      const lastActiveTimeMs = reader.varint('lastActiveTimeMs');
      const acknowledgedBelow = reader.varint('acknowledgedBelow');
      const responseCount = reader.varint('responseCount');
      check();
      if (clientId < 1 || clientId > lastActiveIndex) fail(`session ${i}: client id ${clientId} outside [1, lastActiveIndex ${lastActiveIndex}]`);
      if (sessions.has(clientId)) fail(`session ${i}: client id ${clientId} appears twice`);
      if (lastActiveIndex > appliedIndex || lastActiveIndex < previousIndex) fail(`session ${i}: lastActiveIndex ${lastActiveIndex} out of order`);
      if (lastActiveTimeMs > clockMs || lastActiveTimeMs < previousTimeMs) fail(`session ${i}: lastActiveTimeMs ${lastActiveTimeMs} out of order`);
      if (acknowledgedBelow < 1) fail(`session ${i}: acknowledgedBelow is 0`);
      if (responseCount > this.config.sessionResponsesCountMax) fail(`session ${i}: ${responseCount} responses exceed sessionResponsesCountMax`);
      previousIndex = lastActiveIndex;
      previousTimeMs = lastActiveTimeMs;
      const responses = new Map<number, KvWriteResult>();
      let responseBytes = 0;
      let previousSequence = acknowledgedBelow - 1;
      for (let r = 0; r < responseCount; r++) {
        const sequence = reader.varint('sequence');
        const tag = reader.u8('result tag');
        check();
        if (sequence <= previousSequence) fail(`session ${i}: sequence ${sequence} not above ${previousSequence}`);
        previousSequence = sequence;
        let result: KvWriteResult;
        switch (tag) {
          case resultTag.putAbsent:
            result = { op: 'put', ok: true, previous: null };
            break;
          case resultTag.putPrevious: {
            const previous = readText('cached previous value', valueBytesMax, 0);
            result = { op: 'put', ok: true, previous: previous.text };
            responseBytes += previous.bytes;
            break;
          }
          case resultTag.deleteAbsent:
          case resultTag.deleteExisted:
            result = { op: 'delete', ok: true, existed: tag === resultTag.deleteExisted };
            break;
          case resultTag.casOk:
            result = { op: 'cas', ok: true };
            break;
          case resultTag.casFailedAbsent:
            result = { op: 'cas', ok: false, actual: null };
            break;
          case resultTag.casFailedActual: {
            const actual = readText('cached actual value', valueBytesMax, 0);
            result = { op: 'cas', ok: false, actual: actual.text };
            responseBytes += actual.bytes;
            break;
          }
          default:
            return fail(`session ${i}: unknown result tag ${tag}`);
        }
        responses.set(sequence, result);
      }
      if (responses.size > 1 && responseBytes > this.config.sessionResponseBytesMax) {
        fail(`session ${i}: ${responseBytes} cached bytes exceed sessionResponseBytesMax ${this.config.sessionResponseBytesMax}`);
      }
      sessions.set(clientId, { clientId, lastActiveIndex, lastActiveTimeMs, acknowledgedBelow, responses, responseBytes });
    }
    if (reader.remaining !== 0) fail(`${reader.remaining} trailing bytes before the checksum`);

    // Everything checked: only now replace the state.
    this.data = restoredData;
    this.sessions = sessions;
    this.appliedIndexValue = appliedIndex;
    this.clockMsValue = clockMs;
    this.dataBytesValue = dataBytes;
  }
}
