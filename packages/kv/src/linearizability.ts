/**
 * A linearizability checker for histories of a key-value store whose keys are registers with read,
 * write and compare-and-set (Herlihy & Wing's linearizability; the search is Wing & Gong's, with
 * Lowe's memoization and P-compositionality, as in Porcupine).
 *
 * A history is the list of operations clients performed: each with its invocation time (`call`) and,
 * when the client saw one, its response time (`return`) and output. The history is linearizable if
 * every operation can be given a point between its call and its return such that the outputs are
 * those of a single register per key applying the operations in that order.
 *
 * How the search works, per key (a register's history is linearizable on its own iff the whole
 * history is, because keys are independent objects: Herlihy & Wing's locality, Lowe's
 * P-compositionality):
 *
 *  - Calls and returns are sorted by time into one doubly linked list (calls before returns at equal
 *    times, so operations that touch are concurrent: the permissive reading).
 *  - Depth-first: walk the list from its head; at a call, try to linearize that operation next (the
 *    model accepts its output in the current state); if so, remove its call and return from the list
 *    (Knuth's dancing links, so undoing is O(1)) and start again from the head. Reaching a return
 *    means an operation that has already returned was not linearized before everything still in
 *    the list: backtrack, undoing the last choice and trying the next candidate.
 *  - Memoization (Lowe): the pair (set of linearized operations, register value) determines every
 *    future of the search, so a pair seen before is not explored twice. The set is a bitset with an
 *    incrementally maintained Zobrist hash; values are interned to small integers.
 *
 * Operations without a response (the client timed out or crashed) may have taken effect at any
 * point after their call, or never: their return is +infinity and their output unconstrained. They
 * have no return in the list, and the search succeeds once every completed operation is
 * linearized, since the rest can always be placed after everything else, which for a register is the
 * same as never. A pending read constrains nothing and is dropped.
 *
 * Three reductions beyond Porcupine keep histories with many concurrent reads and many pending
 * writes tractable; each is argued where it is implemented and checked against a brute-force
 * reference in the tests:
 *  - a read-only operation (read, failed cas) valid in the current value is linearized at once, as
 *    the only choice there (reads that commute no longer multiply the configurations);
 *  - the memo compares pending operations by inclusion: a configuration that has linearized a
 *    superset of the pending operations of a seen one, with the same completed ones and value, is
 *    skipped (dominance; with equal sets this is Lowe's rule);
 *  - pending writes of a value that nothing observes are assumed never to take effect.
 *
 * The search is bounded by `searchStepsMax` per key; a key that needs more is reported as `unknown`,
 * never as linearizable, and the check never hangs. The memo is bounded by `cacheBytesMax` per key:
 * past it, new pairs are not remembered (the search stays correct, only slower).
 */
import { assert } from '@raftlab/core';
import { KvError } from './errors.js';

/** A time: any monotonic clock, as a number or a bigint (e.g. process.hrtime.bigint()). */
export type HistoryTime = number | bigint;

/** What an operation asked for. A write of null deletes the key. */
export type RegisterInput =
  | { readonly op: 'read'; readonly key: string }
  | { readonly op: 'write'; readonly key: string; readonly value: string | null }
  | { readonly op: 'cas'; readonly key: string; readonly expected: string | null; readonly value: string };

/**
 * What the client saw. read: `value` (null: absent). write: nothing required; `previous` (the value
 * replaced, null: absent) or `existed` constrain it further when given. cas: `ok`, and on failure
 * optionally `actual`, the value the register held.
 */
export interface RegisterOutput {
  readonly value?: string | null;
  readonly previous?: string | null;
  readonly existed?: boolean;
  readonly ok?: boolean;
  readonly actual?: string | null;
}

/** One operation of a history. Without `return` it is pending: it may take effect later or never. */
export interface HistoryOperation {
  readonly clientId: number | string;
  readonly input: RegisterInput;
  readonly call: HistoryTime;
  readonly output?: RegisterOutput;
  readonly return?: HistoryTime;
}

/** Bounds of a check. */
export interface CheckOptions {
  /** Most search steps per key before the key is reported unknown (default 20 million). */
  readonly searchStepsMax?: number;
  /** Most bytes of memo per key; past it new states are not remembered (default 256 MiB). */
  readonly cacheBytesMax?: number;
  /** How many operations of the partial linearization the explanation prints (default 8). */
  readonly explanationTailCount?: number;
}

/** An operation in a report: its position in the input history and a one-line description. */
export interface OperationReport {
  readonly index: number;
  readonly operation: HistoryOperation;
  readonly text: string;
}

/** Result of `checkLinearizability`. */
export type CheckResult =
  | { readonly ok: true; readonly outcome: 'linearizable'; readonly keyCount: number; readonly searchSteps: number }
  | LinearizabilityViolation
  | {
      readonly ok: false;
      readonly outcome: 'unknown';
      readonly key: string;
      readonly explanation: string;
      readonly searchSteps: number;
    };

/** A proof that a key's history is not linearizable, described at the deepest point the search reached. */
export interface LinearizabilityViolation {
  readonly ok: false;
  readonly outcome: 'violation';
  readonly key: string;
  /** A readable account of the failure (the fields below, in words). */
  readonly explanation: string;
  /** History indexes of the longest partial linearization the search found, in linearization order. */
  readonly linearization: readonly number[];
  /** The register's value after that partial linearization. */
  readonly value: string | null;
  /** The operation that returned before any remaining operation could be linearized. */
  readonly unplaced: OperationReport;
  /** The operations that could have gone next there (the unplaced one among them), and why each did not. */
  readonly candidates: readonly { readonly operation: OperationReport; readonly reason: string }[];
  readonly searchSteps: number;
}

const defaultSearchStepsMax = 20_000_000;
const defaultCacheBytesMax = 256 * 1024 * 1024;
const defaultExplanationTailCount = 8;
/** Approximate bytes of one memo record beyond its bitsets (object and array overhead). */
const memoEntryOverheadBytes = 64;

const operationKind = { read: 0, write: 1, cas: 2 } as const;
/** Output constraint absent. */
const unconstrained = -1;
/** `step` result when the model refuses the operation. */
const refusedStep = -1;

/**
 * Checks a history. Throws KvError('invalid-history') on an ill-formed one (a return before its
 * call, a read without a value, ...), naming the operation.
 */
export function checkLinearizability(history: readonly HistoryOperation[], options: CheckOptions = {}): CheckResult {
  const searchStepsMax = options.searchStepsMax ?? defaultSearchStepsMax;
  const cacheBytesMax = options.cacheBytesMax ?? defaultCacheBytesMax;
  const tailCount = options.explanationTailCount ?? defaultExplanationTailCount;
  if (!Number.isSafeInteger(searchStepsMax) || searchStepsMax < 1) invalid(`searchStepsMax ${searchStepsMax} is not an integer >= 1`);
  if (!(cacheBytesMax >= 0)) invalid(`cacheBytesMax ${cacheBytesMax} is not >= 0`);
  const byKey = new Map<string, number[]>();
  history.forEach((operation, index) => {
    validate(operation, index);
    const list = byKey.get(operation.input.key);
    if (list === undefined) byKey.set(operation.input.key, [index]);
    else list.push(index);
  });
  let searchSteps = 0;
  let unknown: { key: string; explanation: string } | null = null;
  for (const key of Array.from(byKey.keys()).sort()) {
    const result = new KeySearch(history, key, byKey.get(key) as number[], searchStepsMax, cacheBytesMax, tailCount).run();
    searchSteps += result.searchSteps;
    if (result.outcome === 'violation') return { ...result, searchSteps };
    if (result.outcome === 'unknown' && unknown === null) unknown = { key, explanation: result.explanation };
  }
  if (unknown !== null) return { ok: false, outcome: 'unknown', key: unknown.key, explanation: unknown.explanation, searchSteps };
  return { ok: true, outcome: 'linearizable', keyCount: byKey.size, searchSteps };
}

function invalid(message: string): never {
  throw new KvError('invalid-history', `invalid history: ${message}`);
}

function invalidAt(index: number, message: string): never {
  throw new KvError('invalid-history', `invalid history: operation ${index}: ${message}`);
}

function isTime(time: unknown): time is HistoryTime {
  return typeof time === 'bigint' || (typeof time === 'number' && Number.isFinite(time));
}

function isValue(value: unknown): value is string | null {
  return value === null || typeof value === 'string';
}

function validate(operation: HistoryOperation, index: number): void {
  if (typeof operation !== 'object' || operation === null) invalidAt(index, 'not an object');
  const input = operation.input as Partial<Record<string, unknown>> | undefined;
  if (typeof input !== 'object' || input === null) invalidAt(index, 'no input');
  if (typeof input.key !== 'string') invalidAt(index, 'input.key is not a string');
  if (!isTime(operation.call)) invalidAt(index, `call ${String(operation.call)} is not a finite number or a bigint`);
  const completed = operation.return !== undefined;
  if (completed) {
    if (!isTime(operation.return)) invalidAt(index, `return ${String(operation.return)} is not a finite number or a bigint`);
    if (operation.return < operation.call) invalidAt(index, `return ${String(operation.return)} is before call ${String(operation.call)}`);
  } else if (operation.output !== undefined) {
    invalidAt(index, 'an output without a return time');
  }
  const output = operation.output;
  if (output !== undefined && (typeof output !== 'object' || output === null)) invalidAt(index, 'output is not an object');
  switch (input.op) {
    case 'read':
      if (completed && (output === undefined || !isValue(output.value))) invalidAt(index, 'a completed read needs output.value (a string or null)');
      break;
    case 'write':
      if (!isValue(input.value)) invalidAt(index, 'write input.value is not a string or null');
      if (output?.previous !== undefined && !isValue(output.previous)) invalidAt(index, 'output.previous is not a string or null');
      if (output?.existed !== undefined && typeof output.existed !== 'boolean') invalidAt(index, 'output.existed is not a boolean');
      break;
    case 'cas':
      if (!isValue(input.expected)) invalidAt(index, 'cas input.expected is not a string or null');
      if (typeof input.value !== 'string') invalidAt(index, 'cas input.value is not a string');
      if (completed && (output === undefined || typeof output.ok !== 'boolean')) invalidAt(index, 'a completed cas needs output.ok (a boolean)');
      if (output?.actual !== undefined && (!isValue(output.actual) || output.ok !== false)) invalidAt(index, 'output.actual needs output.ok false and a string or null');
      break;
    default:
      invalidAt(index, `unknown op ${JSON.stringify(input.op)}`);
  }
}

function quote(value: string | null): string {
  if (value === null) return 'null';
  const text = JSON.stringify(value);
  return text.length > 40 ? `${text.slice(0, 36)}..."` : text;
}

/**
 * Pending writes (and pending cas) that the search may assume never took effect: those writing a
 * non-null value that no operation observes. "Observes v": a completed read of v, a completed
 * successful cas expecting v, a failed cas reporting actual v, a write reporting previous v, or a
 * pending cas expecting v. If some completed operation's output only says what the value is not (a
 * failed cas without `actual`, a write with `existed`), every pending write is kept, since an
 * unobserved value could be what satisfies it.
 *
 * Why this loses nothing: take a valid linearization in which such a write p sets v. Until the next
 * operation that changes the value, the operations placed there are valid in v, so they are
 * unconstrained writes (valid in any value) or pending operations; remove p, and remove too each
 * pending cas in that span that would now succeed (pending operations may never take effect). The
 * result is a valid linearization without p. Removing them matters: each pending write can be placed
 * anywhere after its call, and kept it multiplies the configurations the search visits.
 */
function unobservedPendingWrites(history: readonly HistoryOperation[], indexes: readonly number[]): Set<number> {
  const observed = new Set<string>();
  const candidates: number[] = [];
  for (const index of indexes) {
    const operation = history[index] as HistoryOperation;
    const input = operation.input;
    const output = operation.output;
    const completed = operation.return !== undefined;
    if (!completed) {
      if (input.op === 'cas' && input.expected !== null) observed.add(input.expected);
      if (input.op !== 'read' && input.value !== null) candidates.push(index);
      continue;
    }
    switch (input.op) {
      case 'read':
        if (typeof output?.value === 'string') observed.add(output.value);
        break;
      case 'write':
        if (output?.existed !== undefined) return new Set();
        if (typeof output?.previous === 'string') observed.add(output.previous);
        break;
      case 'cas':
        if (output?.ok === true && input.expected !== null) observed.add(input.expected);
        if (output?.ok === false && output.actual === undefined) return new Set();
        if (typeof output?.actual === 'string') observed.add(output.actual);
        break;
    }
  }
  const unobserved = new Set<number>();
  for (const index of candidates) {
    const input = (history[index] as HistoryOperation).input as { readonly value: string };
    if (!observed.has(input.value)) unobserved.add(index);
  }
  return unobserved;
}

/** One line describing an operation: client, input, output, interval. */
export function describeOperation(operation: HistoryOperation): string {
  const input = operation.input;
  let text: string;
  switch (input.op) {
    case 'read':
      text = 'read';
      break;
    case 'write':
      text = input.value === null ? 'delete' : `write(${quote(input.value)})`;
      break;
    case 'cas':
      text = `cas(${quote(input.expected)} -> ${quote(input.value)})`;
      break;
  }
  const output = operation.output;
  if (operation.return === undefined) {
    text += ' -> pending';
  } else if (input.op === 'read') {
    text += ` -> ${quote(output?.value ?? null)}`;
  } else if (input.op === 'cas') {
    text += output?.ok === true ? ' -> ok' : output?.actual !== undefined ? ` -> failed, actual ${quote(output.actual)}` : ' -> failed';
  } else if (output?.previous !== undefined) {
    text += ` -> previous ${quote(output.previous)}`;
  } else if (output?.existed !== undefined) {
    text += ` -> existed ${output.existed}`;
  }
  const end = operation.return === undefined ? 'pending' : String(operation.return);
  return `client ${String(operation.clientId)} ${text} [${String(operation.call)}, ${end}]`;
}

/** A seeded 32-bit generator for Zobrist hashes (a fixed seed: results never depend on chance). */
function zobrist(count: number): Int32Array {
  const hashes = new Int32Array(count);
  let x = 0x9e3779b9;
  for (let i = 0; i < count; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    hashes[i] = x;
  }
  return hashes;
}

/** Memo: the configurations reached with one completed set and value, by their pending sets. */
interface MemoEntry {
  readonly completed: Uint32Array;
  readonly state: number;
  /** Minimal sets of linearized pending operations reached (none contains another). */
  pending: Uint32Array[];
}

type KeyResult =
  | { readonly outcome: 'linearizable'; readonly searchSteps: number }
  | (LinearizabilityViolation & { readonly outcome: 'violation' })
  | { readonly outcome: 'unknown'; readonly explanation: string; readonly searchSteps: number };

/** The search over one key's operations (see the file comment). */
class KeySearch {
  /** History index of each operation of this key (pending reads dropped). */
  private readonly historyIndex: number[] = [];
  private readonly kind: Int8Array;
  /** Whether the operation has a return (a completed operation). */
  private readonly completed: Uint8Array;
  /** Whether the operation is completed and leaves the value unchanged in every value it is valid in. */
  private readonly readOnly: Uint8Array;
  /** read: the value read; write and cas: the value written. */
  private readonly argument: Int32Array;
  /** cas: the expected value. */
  private readonly expected: Int32Array;
  /** write: previous value (or unconstrained); cas: 1 ok, 0 failed, unconstrained when pending. */
  private readonly outcome: Int32Array;
  /** write: existed 1/0 (or unconstrained); failed cas: the actual value (or unconstrained). */
  private readonly witness: Int32Array;
  /** Interned values: index 0 is null (absent). */
  private readonly values: (string | null)[] = [null];
  private readonly valueIds = new Map<string, number>();
  /**
   * Values that no operation mentions (no read returned them, no cas expected or reported them, no
   * write reported them as previous) are indistinguishable to every operation, so they share one id:
   * the abstraction is exact, and it makes the pending writes of such values interchangeable.
   */
  private readonly mentioned = new Set<string>();
  private unmentionedId = -1;
  /** Pending writes of an unmentioned value: only the first available one is tried (see run). */
  private readonly interchangeable: Uint8Array;

  constructor(
    private readonly history: readonly HistoryOperation[],
    private readonly key: string,
    indexes: readonly number[],
    private readonly searchStepsMax: number,
    private readonly cacheBytesMax: number,
    private readonly tailCount: number,
  ) {
    const unobserved = unobservedPendingWrites(history, indexes);
    for (const index of indexes) {
      const operation = history[index] as HistoryOperation;
      if (operation.input.op === 'read' && operation.return === undefined) continue; // constrains nothing
      if (unobserved.has(index)) continue;
      this.historyIndex.push(index);
    }
    const count = this.historyIndex.length;
    for (const index of this.historyIndex) {
      const operation = history[index] as HistoryOperation;
      const input = operation.input;
      const output = operation.output;
      const mention = (value: string | null | undefined): void => {
        if (typeof value === 'string') this.mentioned.add(value);
      };
      if (input.op === 'cas') mention(input.expected);
      if (operation.return === undefined) continue;
      if (input.op === 'read') mention(output?.value);
      if (input.op === 'write') mention(output?.previous);
      if (input.op === 'cas') mention(output?.actual);
    }
    this.interchangeable = new Uint8Array(count);
    this.kind = new Int8Array(count);
    this.completed = new Uint8Array(count);
    this.readOnly = new Uint8Array(count);
    this.argument = new Int32Array(count);
    this.expected = new Int32Array(count);
    this.outcome = new Int32Array(count).fill(unconstrained);
    this.witness = new Int32Array(count).fill(unconstrained);
    for (let op = 0; op < count; op++) {
      const operation = history[this.historyIndex[op] as number] as HistoryOperation;
      const input = operation.input;
      const output = operation.output;
      this.kind[op] = operationKind[input.op];
      this.completed[op] = operation.return === undefined ? 0 : 1;
      switch (input.op) {
        case 'read':
          this.argument[op] = this.intern(output?.value ?? null);
          break;
        case 'write':
          this.argument[op] = this.internWritten(input.value);
          this.interchangeable[op] = operation.return === undefined && this.argument[op] === this.unmentionedId ? 1 : 0;
          if (output?.previous !== undefined) this.outcome[op] = this.intern(output.previous);
          if (output?.existed !== undefined) this.witness[op] = output.existed ? 1 : 0;
          break;
        case 'cas':
          this.argument[op] = this.internWritten(input.value);
          this.expected[op] = this.intern(input.expected);
          if (output?.ok !== undefined) this.outcome[op] = output.ok ? 1 : 0;
          if (output?.actual !== undefined) this.witness[op] = this.intern(output.actual);
          break;
      }
      const unchanging = input.op === 'read' || (input.op === 'cas' && (output?.ok === false || input.expected === input.value));
      this.readOnly[op] = this.completed[op] === 1 && unchanging ? 1 : 0;
    }
  }

  /** Interns a written value: an unmentioned one gets the shared id. */
  private internWritten(value: string | null): number {
    if (value === null || this.mentioned.has(value)) return this.intern(value);
    if (this.unmentionedId < 0) {
      this.unmentionedId = this.values.length;
      this.values.push('(a value no operation observed)'); // never quoted: violation() replays real values
    }
    return this.unmentionedId;
  }

  private intern(value: string | null): number {
    if (value === null) return 0;
    let id = this.valueIds.get(value);
    if (id === undefined) {
      id = this.values.length;
      this.values.push(value);
      this.valueIds.set(value, id);
    }
    return id;
  }

  /** The register's value after `op` in `state`, or refusedStep if the outputs say otherwise. */
  private step(state: number, op: number): number {
    switch (this.kind[op]) {
      case operationKind.read:
        return this.argument[op] === state ? state : refusedStep;
      case operationKind.write: {
        const previous = this.outcome[op] as number;
        if (previous !== unconstrained && previous !== state) return refusedStep;
        const existed = this.witness[op] as number;
        if (existed !== unconstrained && existed !== (state === 0 ? 0 : 1)) return refusedStep;
        return this.argument[op] as number;
      }
      default: {
        const matches = this.expected[op] === state;
        const ok = this.outcome[op] as number;
        // A pending cas has no output to contradict: it swaps exactly when the value matches.
        if (ok === unconstrained) return matches ? (this.argument[op] as number) : state;
        if (ok === 1) return matches ? (this.argument[op] as number) : refusedStep;
        if (matches) return refusedStep;
        const actual = this.witness[op] as number;
        return actual === unconstrained || actual === state ? state : refusedStep;
      }
    }
  }

  /** Why `op` cannot be linearized in `state` (for explanations). */
  private whyRefused(state: number, value: string | null, op: number): string {
    const holds = quote(value);
    switch (this.kind[op]) {
      case operationKind.read:
        return `it read ${quote(this.values[this.argument[op] as number] ?? null)} but the register holds ${holds}`;
      case operationKind.write:
        return `its output says the register held ${this.witness[op] === unconstrained ? quote(this.values[this.outcome[op] as number] ?? null) : this.witness[op] === 1 ? 'a value' : 'nothing'} but it holds ${holds}`;
      default:
        if (this.outcome[op] === 1) return `it succeeded expecting ${quote(this.values[this.expected[op] as number] ?? null)} but the register holds ${holds}`;
        if (this.expected[op] === state) return `it failed though the register holds the expected ${holds}`;
        return `it failed reporting ${quote(this.values[this.witness[op] as number] ?? null)} but the register holds ${holds}`;
    }
  }

  private report(op: number): OperationReport {
    const index = this.historyIndex[op] as number;
    const operation = this.history[index] as HistoryOperation;
    return { index, operation, text: `#${index} ${describeOperation(operation)}` };
  }

  run(): KeyResult {
    const count = this.historyIndex.length;
    // Events: a call per operation, a return per completed one; nodes 1..eventCount in time order.
    const eventOp: number[] = [];
    const eventIsCall: boolean[] = [];
    for (let op = 0; op < count; op++) {
      eventOp.push(op);
      eventIsCall.push(true);
      if (this.completed[op] === 1) {
        eventOp.push(op);
        eventIsCall.push(false);
      }
    }
    const eventTime = (event: number): HistoryTime => {
      const operation = this.history[this.historyIndex[eventOp[event] as number] as number] as HistoryOperation;
      return eventIsCall[event] === true ? operation.call : (operation.return as HistoryTime);
    };
    const order = eventOp.map((_, event) => event);
    order.sort((a, b) => {
      const timeA = eventTime(a);
      const timeB = eventTime(b);
      if (timeA < timeB) return -1;
      if (timeA > timeB) return 1;
      const callA = eventIsCall[a] === true;
      if (callA !== (eventIsCall[b] === true)) return callA ? -1 : 1; // calls first: touching is concurrent
      return (eventOp[a] as number) - (eventOp[b] as number);
    });
    const eventCount = order.length;
    const head = 0;
    const tail = eventCount + 1;
    const next = new Int32Array(eventCount + 2);
    const previous = new Int32Array(eventCount + 2);
    const nodeOp = new Int32Array(eventCount + 2);
    const nodeIsCall = new Uint8Array(eventCount + 2);
    const callNode = new Int32Array(count);
    const returnNode = new Int32Array(count).fill(-1);
    for (let position = 0; position < eventCount; position++) {
      const node = position + 1;
      const event = order[position] as number;
      const op = eventOp[event] as number;
      nodeOp[node] = op;
      nodeIsCall[node] = eventIsCall[event] === true ? 1 : 0;
      if (eventIsCall[event] === true) callNode[op] = node;
      else returnNode[op] = node;
      next[node] = node + 1;
      previous[node] = node - 1;
    }
    next[head] = 1;
    previous[tail] = eventCount;

    // Completed and pending operations are numbered apart: the memo keys on the completed set and
    // keeps, per key, the minimal sets of linearized pending operations (dominance, below).
    const slot = new Int32Array(count);
    let completedCount = 0;
    let pendingCount = 0;
    for (let op = 0; op < count; op++) slot[op] = this.completed[op] === 1 ? completedCount++ : pendingCount++;
    const completedWords = Math.max(1, Math.ceil(completedCount / 32));
    const pendingWords = Math.max(1, Math.ceil(pendingCount / 32));
    const completedBits = new Uint32Array(completedWords);
    const pendingBits = new Uint32Array(pendingWords);
    const hashes = zobrist(completedCount);
    let bitsHash = 0;
    const memo = new Map<number, MemoEntry[]>();
    let memoBytes = 0;
    const stackOp = new Int32Array(count);
    const stackState = new Int32Array(count);
    let depth = 0;
    let completedLinearized = 0;
    let state = 0;
    let steps = 0;
    // The deepest point where the search got stuck, for the explanation.
    let bestDepth = -1;
    let bestLinearization = new Int32Array(0);
    let bestState = 0;
    let bestUnplaced = -1;
    let bestCandidates: number[] = [];

    const isSubset = (small: Uint32Array, large: Uint32Array): boolean => {
      for (let w = 0; w < pendingWords; w++) if (((small[w] as number) & ~(large[w] as number)) !== 0) return false;
      return true;
    };
    /**
     * Returns false when the search may skip the configuration (linearized set, newState): one with
     * the same completed operations and value and a subset of its pending operations was already
     * reached. That one can do everything this one can (it may place its extra pending operations
     * later, or never), so this one holds no success the other's exploration misses. With equal
     * sets this is Lowe's memoization; the subset rule is what keeps pending operations from
     * multiplying the search by 2^pending.
     */
    const remember = (newState: number): boolean => {
      const hash = (bitsHash ^ Math.imul(newState + 1, 0x9e3779b1)) | 0;
      let bucket = memo.get(hash);
      let entry: MemoEntry | undefined;
      if (bucket !== undefined) {
        for (const candidate of bucket) {
          if (candidate.state !== newState) continue;
          let equal = true;
          for (let w = 0; w < completedWords; w++) {
            if (candidate.completed[w] !== completedBits[w]) {
              equal = false;
              break;
            }
          }
          if (equal) {
            entry = candidate;
            break;
          }
        }
      }
      if (entry !== undefined) {
        for (const seen of entry.pending) if (isSubset(seen, pendingBits)) return false;
        if (memoBytes + pendingWords * 4 + memoEntryOverheadBytes > this.cacheBytesMax) return true;
        // Keep the list minimal: sets that contain the new one are now dominated by it.
        entry.pending = entry.pending.filter((seen) => !isSubset(pendingBits, seen));
        entry.pending.push(pendingBits.slice());
        memoBytes += pendingWords * 4 + memoEntryOverheadBytes;
        return true;
      }
      const entryBytes = (completedWords + pendingWords) * 4 + 2 * memoEntryOverheadBytes;
      if (memoBytes + entryBytes > this.cacheBytesMax) return true;
      if (bucket === undefined) {
        bucket = [];
        memo.set(hash, bucket);
      }
      bucket.push({ completed: completedBits.slice(), state: newState, pending: [pendingBits.slice()] });
      memoBytes += entryBytes;
      return true;
    };
    const flip = (op: number): void => {
      const index = slot[op] as number;
      const mask = 1 << (index & 31);
      if (this.completed[op] === 1) {
        completedBits[index >>> 5] = (completedBits[index >>> 5] as number) ^ mask;
        bitsHash ^= hashes[index] as number;
      } else {
        pendingBits[index >>> 5] = (pendingBits[index >>> 5] as number) ^ mask;
      }
    };

    const stackForced = new Uint8Array(count);
    /** Linearizes `op` next: pushes the choice and unlinks its call and return. */
    const lift = (op: number, newState: number, forced: boolean): void => {
      stackOp[depth] = op;
      stackState[depth] = state;
      stackForced[depth] = forced ? 1 : 0;
      depth += 1;
      state = newState;
      completedLinearized += this.completed[op] as number;
      const call = callNode[op] as number;
      next[previous[call] as number] = next[call] as number;
      previous[next[call] as number] = previous[call] as number;
      const back = returnNode[op] as number;
      if (back >= 0) {
        next[previous[back] as number] = next[back] as number;
        previous[next[back] as number] = previous[back] as number;
      }
    };
    /** Undoes the last choice (relinking in the reverse order of unlinking) and returns its op. */
    const unlift = (): number => {
      depth -= 1;
      const op = stackOp[depth] as number;
      state = stackState[depth] as number;
      completedLinearized -= this.completed[op] as number;
      flip(op);
      const back = returnNode[op] as number;
      if (back >= 0) {
        next[previous[back] as number] = back;
        previous[next[back] as number] = back;
      }
      const call = callNode[op] as number;
      next[previous[call] as number] = call;
      previous[next[call] as number] = call;
      return op;
    };

    /**
     * Whether no other interchangeable pending write comes before `node` in the list. Of several
     * pending writes of unmentioned values, all available, only the first is tried: a completion
     * that uses a later one p2 here, and the first p1 later or never, works as well with p1 here and
     * p2 where p1 was (p2 is available there too, and both have the same effect and no output).
     */
    const isFirstInterchangeable = (node: number): boolean => {
      for (let before = previous[node] as number; before !== head; before = previous[before] as number) {
        if (nodeIsCall[before] === 1 && this.interchangeable[nodeOp[before] as number] === 1) return false;
      }
      return true;
    };

    // The candidates at each configuration are the calls before the first return in the list.
    // On reaching a configuration, the search first looks for a read-only candidate (a completed
    // read, failed cas, or cas whose new value is its expected one: operations that never change the
    // value, wherever they are placed) that is valid in the current value. If any completion
    // succeeds, one that places it right now does too: moving a read-only operation earlier changes
    // no value anywhere, and no unlinearized operation returned before its call. So it is the only
    // choice tried there. Without this, reads that commute with each other would multiply the
    // configurations by 2^(concurrent reads). (A write of the value already held is not read-only:
    // placed elsewhere it changes the value, and forcing it here could lose the only completion.)
    // Otherwise candidates are tried in list order, completed operations first, then pending ones
    // (a pending operation is rarely needed).
    let node = next[head] as number;
    let pendingPhase = false;
    let freshConfiguration = true;
    search: while (completedLinearized < completedCount) {
      steps += 1;
      if (steps > this.searchStepsMax) {
        return {
          outcome: 'unknown',
          explanation: `key ${quote(this.key)}: search stopped after ${this.searchStepsMax} steps (searchStepsMax) with ${Math.max(0, bestDepth)} of ${count} operations linearized at best: neither proven linearizable nor refuted`,
          searchSteps: steps - 1,
        };
      }
      let stuck = false;
      if (freshConfiguration) {
        freshConfiguration = false;
        node = next[head] as number;
        pendingPhase = false;
        let forced = -1;
        for (let candidate = node; nodeIsCall[candidate] === 1; candidate = next[candidate] as number) {
          const op = nodeOp[candidate] as number;
          if (this.readOnly[op] === 1 && this.step(state, op) === state) {
            forced = op;
            break;
          }
        }
        if (forced < 0) continue;
        flip(forced);
        if (remember(state)) {
          lift(forced, state, true);
          freshConfiguration = true;
          continue;
        }
        // The only continuation worth trying was reached before: this configuration fails.
        flip(forced);
        stuck = true;
      } else if (nodeIsCall[node] === 1) {
        const op = nodeOp[node] as number;
        if ((this.completed[op] === 0) === pendingPhase && (this.interchangeable[op] === 0 || isFirstInterchangeable(node))) {
          const newState = this.step(state, op);
          if (newState !== refusedStep) {
            flip(op);
            if (remember(newState)) {
              lift(op, newState, false);
              freshConfiguration = true;
              continue;
            }
            flip(op);
          }
        }
        node = next[node] as number;
        continue;
      } else {
        // A return: a completed operation that must be linearized before everything still in the
        // list. (Never the tail while completed operations remain: each call precedes its return.)
        assert(node !== tail, () => `KeySearch: reached the end of the list with ${completedCount - completedLinearized} completed operations left`);
        if (!pendingPhase) {
          pendingPhase = true;
          node = next[head] as number;
          continue;
        }
        stuck = true;
        if (depth > bestDepth) {
          bestDepth = depth;
          bestLinearization = stackOp.slice(0, depth);
          bestState = state;
          bestUnplaced = nodeOp[node] as number;
          bestCandidates = [];
          for (let candidate = next[head] as number; candidate !== node; candidate = next[candidate] as number) {
            if (nodeIsCall[candidate] === 1) bestCandidates.push(nodeOp[candidate] as number);
          }
        }
      }
      assert(stuck, 'KeySearch: fell through without being stuck');
      // Backtrack: undo choices until one that had alternatives, and move on to the candidate after
      // it. A forced choice had none: the configuration it was made in fails with it.
      while (depth > 0) {
        const forced = stackForced[depth - 1] === 1;
        const op = unlift();
        if (!forced) {
          node = next[callNode[op] as number] as number;
          pendingPhase = this.completed[op] === 0;
          continue search;
        }
      }
      return this.violation(bestLinearization, bestState, bestUnplaced, bestCandidates, steps);
    }
    return { outcome: 'linearizable', searchSteps: steps };
  }

  /** The register's real value after a valid sequence of operations (ids may merge values; this does not). */
  private replay(linearization: Int32Array): string | null {
    let value: string | null = null;
    for (const op of linearization) {
      const operation = this.history[this.historyIndex[op] as number] as HistoryOperation;
      const input = operation.input;
      if (input.op === 'write') value = input.value;
      else if (input.op === 'cas' && value === input.expected) value = input.value;
    }
    return value;
  }

  private violation(linearization: Int32Array, state: number, unplaced: number, candidates: number[], steps: number): KeyResult {
    assert(unplaced >= 0, () => `KeySearch.violation: key ${this.key} failed without ever getting stuck on a return`);
    const value = this.replay(linearization);
    const tail = Array.from(linearization.subarray(Math.max(0, linearization.length - this.tailCount)));
    const candidateReports = candidates.map((op) => {
      const newState = this.step(state, op);
      const reason = newState === refusedStep ? this.whyRefused(state, value, op) : 'linearizing it here leads only to states already shown to fail';
      return { operation: this.report(op), reason };
    });
    const unplacedReport = this.report(unplaced);
    const lines = [
      `key ${quote(this.key)} is not linearizable.`,
      `The longest partial linearization found has ${linearization.length} operation(s)${linearization.length > tail.length ? `; the last ${tail.length}` : ''}${tail.length > 0 ? ':' : '.'}`,
      ...tail.map((op) => `  ${this.report(op).text}`),
      `after which the register holds ${quote(value)}.`,
      `Operation ${unplacedReport.text} has returned, but no remaining operation can be linearized next:`,
      ...candidateReports.map((candidate) => `  ${candidate.operation.text}: ${candidate.reason}`),
    ];
    return {
      ok: false,
      outcome: 'violation',
      key: this.key,
      explanation: lines.join('\n'),
      linearization: Array.from(linearization, (op) => this.historyIndex[op] as number),
      value,
      unplaced: unplacedReport,
      candidates: candidateReports,
      searchSteps: steps,
    };
  }
}
