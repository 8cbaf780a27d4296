/**
 * The linearizability checker decides correctly (Herlihy & Wing's definition, per-key registers with
 * read, write and cas; pending operations may take effect after their call or never). Proved four
 * ways: the classic hand-written histories, each a claim (stale read, inconsistent orders of
 * concurrent writes, a cas against a value never current, a read from the future, pending
 * operations that must and must not be assumed to take effect); agreement with a brute-force
 * reference on thousands of small random histories, so every pruning rule of the fast search is
 * checked against the plain definition; generated histories of a real sequential execution with
 * overlapping intervals, which must pass, and constructed mutations of them that are guaranteed
 * violations, which must be caught; and a planted bug in a replicated KV built from KvMachine
 * (follower reads that skip ReadIndex) which must be caught while the correct service passes.
 */
import { Prng } from '@raftlab/core';
import { describe, expect, test } from 'vitest';
import { generateHistory } from '../src/history.js';
import {
  type CheckResult,
  type HistoryOperation,
  type RegisterInput,
  type RegisterOutput,
  KvError,
  KvMachine,
  checkLinearizability,
  encodeCommand,
} from '../src/index.js';

type Time = number | bigint;

const write = (clientId: number, value: string | null, call: Time, ret?: Time, key = 'x'): HistoryOperation =>
  ret === undefined ? { clientId, input: { op: 'write', key, value }, call } : { clientId, input: { op: 'write', key, value }, call, output: {}, return: ret };
const read = (clientId: number, value: string | null, call: Time, ret?: Time, key = 'x'): HistoryOperation =>
  ret === undefined ? { clientId, input: { op: 'read', key }, call } : { clientId, input: { op: 'read', key }, call, output: { value }, return: ret };
const cas = (clientId: number, expected: string | null, value: string, ok: boolean | null, call: Time, ret?: Time, key = 'x', actual?: string | null): HistoryOperation => {
  const input: RegisterInput = { op: 'cas', key, expected, value };
  if (ret === undefined || ok === null) return { clientId, input, call };
  const output: RegisterOutput = actual === undefined ? { ok } : { ok, actual };
  return { clientId, input, call, output, return: ret };
};

function expectLinearizable(history: HistoryOperation[]): void {
  const result = checkLinearizability(history);
  expect(result.outcome, result.ok ? '' : result.explanation).toBe('linearizable');
}

function expectViolation(history: HistoryOperation[], key = 'x'): Extract<CheckResult, { outcome: 'violation' }> {
  const result = checkLinearizability(history);
  expect(result.outcome).toBe('violation');
  if (result.outcome !== 'violation') throw new Error('unreachable');
  expect(result.key).toBe(key);
  return result;
}

describe('classic histories', () => {
  test('a read overlapping a write may see either value', () => {
    expectLinearizable([write(1, 'a', 0, 10), read(2, 'a', 5, 15)]);
    expectLinearizable([write(1, 'a', 0, 10), read(2, null, 5, 15)]);
  });

  test('a stale read after a completed write is not linearizable', () => {
    const result = expectViolation([write(1, 'a', 0, 10), read(2, null, 20, 30)]);
    expect(result.unplaced.index).toBe(1);
    expect(result.value).toBe('a');
    expect(result.explanation).toMatch(/read -> null \[20, 30\]: it read null but the register holds "a"/);
  });

  test('a stale read of an overwritten value is not linearizable', () => {
    expectViolation([write(1, 'a', 0, 10), write(1, 'b', 20, 30), read(2, 'a', 40, 50)]);
  });

  test('a read observing a value from a write not yet invoked is not linearizable', () => {
    expectViolation([read(1, 'a', 0, 10), write(2, 'a', 20, 30)]);
    // Touching intervals are concurrent: a write invoked as the read returns may precede it.
    expectLinearizable([read(1, 'a', 0, 20), write(2, 'a', 20, 30)]);
  });

  test('concurrent writes observed in the same order by every client are linearizable', () => {
    expectLinearizable([
      write(1, 'a', 0, 100),
      write(2, 'b', 0, 100),
      read(3, 'a', 10, 20),
      read(3, 'b', 30, 40),
      read(4, 'a', 10, 20),
      read(4, 'b', 30, 40),
    ]);
  });

  test('concurrent writes observed in opposite orders by two clients are not linearizable', () => {
    expectViolation([
      write(1, 'a', 0, 100),
      write(2, 'b', 0, 100),
      read(3, 'a', 10, 20),
      read(3, 'b', 30, 40),
      read(4, 'b', 10, 20),
      read(4, 'a', 30, 40),
    ]);
  });

  test('a cas succeeding against a value that was never current is not linearizable', () => {
    expectViolation([write(1, 'a', 0, 10), cas(2, 'z', 'b', true, 20, 30)]);
    expectViolation([write(1, 'a', 0, 10), cas(2, null, 'b', true, 20, 30)]); // the key was no longer absent
    expectLinearizable([write(1, 'a', 0, 10), cas(2, 'a', 'b', true, 20, 30), read(3, 'b', 40, 50)]);
  });

  test('a cas failing while the register held the expected value is not linearizable', () => {
    expectViolation([write(1, 'a', 0, 10), cas(2, 'a', 'b', false, 20, 30)]);
    expectViolation([write(1, 'a', 0, 10), cas(2, 'q', 'b', false, 20, 30, 'x', 'c')]); // wrong actual
    expectLinearizable([write(1, 'a', 0, 10), cas(2, 'q', 'b', false, 20, 30, 'x', 'a')]);
  });

  test('two cas that both succeed from the same expected value are not linearizable', () => {
    expectViolation([write(1, 'a', 0, 10), cas(2, 'a', 'b', true, 20, 40), cas(3, 'a', 'c', true, 20, 40)]);
  });

  test('a write reporting a previous value is checked against it', () => {
    const withPrevious = (previous: string | null): HistoryOperation => ({ ...write(2, 'b', 20, 30), output: { previous } });
    expectLinearizable([write(1, 'a', 0, 10), withPrevious('a')]);
    expectViolation([write(1, 'a', 0, 10), withPrevious(null)]);
    const existed = (flag: boolean): HistoryOperation => ({ ...write(2, null, 20, 30), output: { existed: flag } });
    expectLinearizable([write(1, 'a', 0, 10), existed(true)]);
    expectViolation([write(1, 'a', 0, 10), existed(false)]);
  });

  test('a write of null deletes', () => {
    expectLinearizable([write(1, 'a', 0, 10), write(1, null, 20, 30), read(2, null, 40, 50), cas(2, null, 'c', true, 60, 70)]);
    expectViolation([write(1, 'a', 0, 10), write(1, null, 20, 30), read(2, 'a', 40, 50)]);
  });

  test('the empty history and histories of reads of absent keys are linearizable', () => {
    expect(checkLinearizability([])).toEqual({ ok: true, outcome: 'linearizable', keyCount: 0, searchSteps: 0 });
    expectLinearizable([read(1, null, 0, 1), read(2, null, 0, 1, 'y')]);
  });
});

describe('pending operations', () => {
  test('a pending write must be assumed to have taken effect when a later read saw its value', () => {
    expectLinearizable([write(1, 'a', 0), read(2, 'a', 10, 20)]);
  });

  test('a pending write may never take effect', () => {
    expectLinearizable([write(1, 'a', 0), read(2, null, 10, 20), read(3, null, 100, 110)]);
  });

  test('a pending write that took effect cannot be undone', () => {
    expectViolation([write(1, 'a', 0), read(2, 'a', 10, 20), read(2, null, 30, 40)]);
  });

  test('a pending write cannot take effect before its call', () => {
    expectViolation([read(2, 'a', 0, 10), write(1, 'a', 20)]);
  });

  test('a pending write may take effect long after a later write, and be seen then', () => {
    expectLinearizable([write(1, 'a', 0), write(2, 'b', 10, 20), read(3, 'b', 30, 40), read(3, 'a', 50, 60)]);
  });

  test('a pending write seen before a completed write is overwritten by it', () => {
    expectViolation([write(1, 'a', 0), read(3, 'a', 5, 8), write(2, 'b', 10, 20), read(3, 'a', 30, 40)]);
  });

  test('a pending cas swaps only when the register holds its expected value', () => {
    expectLinearizable([cas(1, null, 'a', null, 0), read(2, 'a', 10, 20)]);
    expectViolation([write(3, 'z', 0, 5), cas(1, null, 'a', null, 6), read(2, 'a', 10, 20)]);
  });

  test('a pending write that only explains a failed cas without an actual value is kept', () => {
    // The cas failed, so the register did not hold "a": only the pending write can explain that.
    expectLinearizable([write(1, 'a', 0, 10), write(2, 'p', 5), cas(3, 'a', 'b', false, 20, 30)]);
    expectViolation([write(1, 'a', 0, 10), write(2, 'p', 25), cas(3, 'a', 'b', false, 12, 20)]);
  });

  test('pending writes of values nothing observes are used one at a time, each where it is needed', () => {
    // Each failed cas needs the register to hold something other than "a" right after a write of "a":
    // two failures, two pending writes of unobserved values, each used once.
    const needsTwo = [write(1, 'a', 0, 10), write(2, 'p', 1), write(3, 'q', 2), cas(4, 'a', 'z', false, 20, 30), write(1, 'a', 40, 50), cas(4, 'a', 'z', false, 60, 70)];
    expectLinearizable(needsTwo);
    expectViolation(needsTwo.filter((_, i) => i !== 2));
  });

  test('a pending write whose value only a pending cas observes is kept', () => {
    expectLinearizable([write(1, 'p', 0), cas(2, 'p', 'q', null, 1), read(3, 'q', 10, 20)]);
  });

  test('a pending read constrains nothing', () => {
    expectLinearizable([write(1, 'a', 0, 10), read(2, 'never-written', 5)]);
  });
});

describe('keys are checked independently', () => {
  test('a violation is reported on its key while other keys pass', () => {
    const history = [write(1, 'a', 0, 10, 'good'), read(2, 'a', 20, 30, 'good'), write(1, 'a', 0, 10, 'bad'), read(2, null, 20, 30, 'bad')];
    const result = expectViolation(history, 'bad');
    expect(result.unplaced.index).toBe(3);
  });

  test('histories on different keys never constrain each other', () => {
    // Per key each is fine; across keys real time would not matter either: registers are independent.
    expectLinearizable([write(1, 'a', 0, 10, 'k1'), read(2, null, 20, 30, 'k2'), read(2, 'a', 40, 50, 'k1')]);
  });
});

describe('input and bounds', () => {
  test('bigint times work like numbers', () => {
    expectViolation([write(1, 'a', 0n, 10n), read(2, null, 20n, 30n)]);
    expectLinearizable([write(1, 'a', 1_000_000_000_000_000_000n, 1_000_000_000_000_000_010n), read(2, 'a', 1_000_000_000_000_000_005n, 1_000_000_000_000_000_030n)]);
  });

  test('an ill-formed history is refused with the operation named', () => {
    const cases: [unknown, RegExp][] = [
      [{ clientId: 1, input: { op: 'read', key: 'x' }, call: 10, output: { value: 'a' }, return: 5 }, /operation 0: return 5 is before call 10/],
      [{ clientId: 1, input: { op: 'read', key: 'x' }, call: 0, return: 5 }, /operation 0: a completed read needs output.value/],
      [{ clientId: 1, input: { op: 'read', key: 'x' }, call: 0, output: { value: 'a' } }, /operation 0: an output without a return time/],
      [{ clientId: 1, input: { op: 'cas', key: 'x', expected: null, value: 'v' }, call: 0, output: {}, return: 1 }, /needs output.ok/],
      [{ clientId: 1, input: { op: 'incr', key: 'x' }, call: 0 }, /unknown op "incr"/],
      [{ clientId: 1, input: { op: 'read', key: 'x' }, call: Number.NaN }, /call NaN is not a finite number/],
      [{ clientId: 1, input: { op: 'write', key: 7, value: 'v' }, call: 0 }, /input.key is not a string/],
    ];
    for (const [operation, message] of cases) {
      const attempt = (): CheckResult => checkLinearizability([operation as HistoryOperation]);
      expect(attempt).toThrow(KvError);
      expect(attempt).toThrow(message);
    }
  });

  test('a search beyond searchStepsMax ends as unknown, never as linearizable', () => {
    const { operations } = generateHistory({ seed: 5, operationCount: 400, clientCount: 8, keyCount: 1 });
    const result = checkLinearizability(operations, { searchStepsMax: 50 });
    expect(result.outcome).toBe('unknown');
    if (result.outcome === 'unknown') expect(result.explanation).toMatch(/search stopped after 50 steps/);
    expect(checkLinearizability(operations).outcome).toBe('linearizable');
  });

  test('a memo bound of zero bytes keeps the verdicts, only slower', () => {
    const { operations } = generateHistory({ seed: 6, operationCount: 300, clientCount: 5, keyCount: 2 });
    expect(checkLinearizability(operations, { cacheBytesMax: 0 }).outcome).toBe('linearizable');
    const stale = plantStaleRead(operations);
    expect(stale).not.toBeNull();
    expect(checkLinearizability(stale as HistoryOperation[], { cacheBytesMax: 0 }).outcome).toBe('violation');
  });
});

// ---------------------------------------------------------------------------------------------
// A brute-force reference: the definition, with no pruning at all. An operation can go next when no
// other unlinearized completed operation returned before its call; success once every completed
// operation is placed (pending ones may be placed anywhere after their call, or never).

function referenceStep(state: Map<string, string>, operation: HistoryOperation): Map<string, string> | null {
  const input = operation.input;
  const current = state.get(input.key) ?? null;
  const output = operation.return === undefined ? undefined : operation.output;
  const set = (value: string | null): Map<string, string> => {
    const next = new Map(state);
    if (value === null) next.delete(input.key);
    else next.set(input.key, value);
    return next;
  };
  switch (input.op) {
    case 'read':
      return output === undefined || output.value === current ? state : null;
    case 'write':
      if (output?.previous !== undefined && output.previous !== current) return null;
      if (output?.existed !== undefined && output.existed !== (current !== null)) return null;
      return set(input.value);
    case 'cas':
      if (output === undefined) return current === input.expected ? set(input.value) : state;
      if (output.ok === true) return current === input.expected ? set(input.value) : null;
      if (current === input.expected) return null;
      return output.actual === undefined || output.actual === current ? state : null;
  }
}

function referenceLinearizable(history: readonly HistoryOperation[]): boolean {
  const placed = history.map(() => false);
  const completedCount = history.filter((operation) => operation.return !== undefined).length;
  const search = (state: Map<string, string>, placedCompleted: number): boolean => {
    if (placedCompleted === completedCount) return true;
    for (let i = 0; i < history.length; i++) {
      if (placed[i] === true) continue;
      const operation = history[i] as HistoryOperation;
      const blocked = history.some((other, j) => j !== i && placed[j] === false && other.return !== undefined && other.return < operation.call);
      if (blocked) continue;
      const next = referenceStep(state, operation);
      if (next === null) continue;
      placed[i] = true;
      if (search(next, placedCompleted + (operation.return === undefined ? 0 : 1))) return true;
      placed[i] = false;
    }
    return false;
  };
  return search(new Map(), 0);
}

function randomSmallHistory(prng: Prng, operationCountMax = 7): HistoryOperation[] {
  const values = prng.chance(0.5) ? ['a', 'b'] : ['a', 'b', 'c'];
  const maybeValue = (): string | null => (prng.chance(0.25) ? null : prng.pick(values));
  const keys = prng.chance(0.3) ? ['x', 'y'] : ['x'];
  const count = 1 + prng.nextInt(operationCountMax);
  const history: HistoryOperation[] = [];
  for (let i = 0; i < count; i++) {
    const key = prng.pick(keys);
    const call = prng.nextInt(12); // a small range: ties and touching intervals are common
    const ret = prng.chance(0.2) ? undefined : call + prng.nextInt(8);
    const roll = prng.nextInt(3);
    let input: RegisterInput;
    let output: RegisterOutput;
    if (roll === 0) {
      input = { op: 'read', key };
      output = { value: maybeValue() };
    } else if (roll === 1) {
      input = { op: 'write', key, value: maybeValue() };
      const constraint = prng.nextInt(4);
      output = constraint === 0 ? { previous: maybeValue() } : constraint === 1 ? { existed: prng.chance(0.5) } : {};
    } else {
      input = { op: 'cas', key, expected: maybeValue(), value: prng.pick(values) };
      const ok = prng.chance(0.5);
      output = ok || prng.chance(0.5) ? { ok } : { ok, actual: maybeValue() };
    }
    history.push(ret === undefined ? { clientId: i, input, call } : { clientId: i, input, call, output, return: ret });
  }
  return history;
}

/** Changes the output of one completed operation to another value written in the history, or not at all. */
function mutateRandomly(prng: Prng, history: readonly HistoryOperation[]): HistoryOperation[] {
  const completed = history.map((operation, i) => (operation.return === undefined ? -1 : i)).filter((i) => i >= 0);
  if (completed.length === 0 || prng.chance(0.3)) return history.slice();
  const values: (string | null)[] = [null];
  for (const operation of history) if (operation.input.op !== 'read' && operation.input.value !== null) values.push(operation.input.value);
  const index = prng.pick(completed);
  const operation = history[index] as HistoryOperation;
  let output: RegisterOutput;
  switch (operation.input.op) {
    case 'read':
      output = { value: prng.pick(values) };
      break;
    case 'write':
      output = prng.chance(0.5) ? { previous: prng.pick(values) } : { existed: prng.chance(0.5) };
      break;
    case 'cas':
      output = prng.chance(0.5) ? { ok: !(operation.output?.ok ?? false) } : { ok: false, actual: prng.pick(values) };
      break;
  }
  const mutated = history.slice();
  mutated[index] = { ...operation, output };
  return mutated;
}

describe('agreement with the brute-force reference', () => {
  test('on 20000 small random histories the checker and the definition agree', () => {
    const prng = new Prng(2024);
    const tally = { linearizable: 0, violation: 0 };
    for (let round = 0; round < 20_000; round++) {
      const history = randomSmallHistory(prng);
      const expected = referenceLinearizable(history);
      const result = checkLinearizability(history);
      if (result.outcome === 'unknown') throw new Error('unknown on a tiny history');
      if (result.ok !== expected) {
        throw new Error(`round ${round}: checker says ${result.outcome}, reference says ${expected}\n${JSON.stringify(history)}`);
      }
      tally[result.outcome] += 1;
    }
    // Both verdicts must be common, or the agreement proves little.
    expect(tally.linearizable).toBeGreaterThan(4000);
    expect(tally.violation).toBeGreaterThan(4000);
  });

  test('on 3000 generated histories with crashes, randomly mutated, the checker and the definition agree', () => {
    // Unique written values and many pending writes: the shape where pruning pending operations matters.
    const prng = new Prng(99);
    const tally = { linearizable: 0, violation: 0 };
    for (let round = 0; round < 3000; round++) {
      const history = mutateRandomly(prng, generateHistory({ seed: round, operationCount: 9, clientCount: 3, keyCount: 1, crashChance: 0.25 }).operations);
      const expected = referenceLinearizable(history);
      const result = checkLinearizability(history);
      if (result.outcome === 'unknown' || result.ok !== expected) {
        throw new Error(`round ${round}: checker says ${result.outcome}, reference says ${expected}\n${JSON.stringify(history)}`);
      }
      tally[result.outcome] += 1;
    }
    expect(tally.linearizable).toBeGreaterThan(500);
    expect(tally.violation).toBeGreaterThan(500);
  });

  // A longer run for when the search changes (about 1 ms per round):
  //   KV_CHECKER_SOAK=200000 npx vitest run packages/kv -t soak
  const soakRounds = Number(process.env['KV_CHECKER_SOAK'] ?? 0);
  test.runIf(soakRounds > 0)('soak: the checker and the definition agree on random and generated histories of up to 10 operations', () => {
    const prng = new Prng(soakRounds);
    for (let round = 0; round < soakRounds; round++) {
      const history =
        round % 2 === 0
          ? randomSmallHistory(prng, 9)
          : mutateRandomly(prng, generateHistory({ seed: round, operationCount: 10, clientCount: 4, keyCount: 1, crashChance: 0.3 }).operations);
      const expected = referenceLinearizable(history);
      const result = checkLinearizability(history);
      if (result.outcome === 'unknown' || result.ok !== expected) {
        throw new Error(`soak round ${round}: checker says ${result.outcome}, reference says ${expected}\n${JSON.stringify(history)}`);
      }
    }
  }, 3_600_000);

  test('the reported partial linearization is one the definition accepts', () => {
    const prng = new Prng(77);
    let checked = 0;
    for (let round = 0; round < 2000; round++) {
      const history = randomSmallHistory(prng);
      const result = checkLinearizability(history);
      if (result.outcome !== 'violation') continue;
      // Replaying the reported prefix in order must be valid in the sequential model.
      let state: Map<string, string> | null = new Map();
      for (const index of result.linearization) {
        const operation = history[index] as HistoryOperation;
        if (operation.input.key !== result.key) throw new Error('linearization crosses keys');
        state = referenceStep(state, operation);
        expect(state, `round ${round}`).not.toBeNull();
        if (state === null) break;
      }
      expect(state?.get(result.key) ?? null).toBe(result.value);
      checked += 1;
    }
    expect(checked).toBeGreaterThan(500);
  });
});

// ---------------------------------------------------------------------------------------------
// Generated histories and constructed mutations that are guaranteed violations. The generator writes
// every value once, so the only operation that can produce a value is the one that wrote it.

/** The value an operation certainly wrote: a completed write, or a completed successful cas. */
function definitelyWrote(operation: HistoryOperation): string | null | undefined {
  if (operation.return === undefined) return undefined;
  if (operation.input.op === 'write') return operation.input.value;
  if (operation.input.op === 'cas' && operation.output?.ok === true) return operation.input.value;
  return undefined;
}

function withReadValue(history: readonly HistoryOperation[], index: number, value: string): HistoryOperation[] {
  const mutated = history.slice();
  mutated[index] = { ...(history[index] as HistoryOperation), output: { value } };
  return mutated;
}

/**
 * A read made to return the value of a write invoked after the read returned. Guaranteed a
 * violation: that write is the only source of the value and cannot take effect before its call.
 */
function plantReadFromFuture(history: readonly HistoryOperation[]): HistoryOperation[] | null {
  for (let r = 0; r < history.length; r++) {
    const target = history[r] as HistoryOperation;
    if (target.input.op !== 'read' || target.return === undefined) continue;
    for (const later of history) {
      const value = definitelyWrote(later);
      if (later.input.key === target.input.key && typeof value === 'string' && later.call > target.return) return withReadValue(history, r, value);
    }
  }
  return null;
}

/**
 * A read made to return the value of write W1 although a completed write W2 was invoked after W1
 * returned and returned before the read was invoked. Guaranteed a violation: W1 must precede W2 and
 * W2 the read, and nothing else writes W1's value.
 */
function plantStaleRead(history: readonly HistoryOperation[]): HistoryOperation[] | null {
  for (let r = history.length - 1; r >= 0; r--) {
    const target = history[r] as HistoryOperation;
    if (target.input.op !== 'read' || target.return === undefined) continue;
    const key = target.input.key;
    for (const second of history) {
      if (second.input.key !== key || definitelyWrote(second) === undefined || !((second.return as number) < target.call)) continue;
      for (const first of history) {
        const value = definitelyWrote(first);
        if (first.input.key === key && typeof value === 'string' && (first.return as number) < second.call) return withReadValue(history, r, value);
      }
    }
  }
  return null;
}

/** A read made to return a value no operation ever wrote. */
function plantPhantomRead(history: readonly HistoryOperation[]): HistoryOperation[] | null {
  const index = history.findIndex((operation) => operation.input.op === 'read' && operation.return !== undefined);
  return index < 0 ? null : withReadValue(history, index, 'phantom');
}

describe('generated histories', () => {
  const shapes = [
    { operationCount: 400, clientCount: 5, keyCount: 3 },
    { operationCount: 400, clientCount: 10, keyCount: 1 },
    { operationCount: 200, clientCount: 3, keyCount: 2, crashChance: 0.1 },
  ];

  test('histories of a real sequential execution with overlapping intervals are linearizable', () => {
    for (const shape of shapes) {
      for (let seed = 1; seed <= 15; seed++) {
        const { operations } = generateHistory({ ...shape, seed });
        const result = checkLinearizability(operations);
        expect(result.outcome, `seed ${seed} ${JSON.stringify(shape)}: ${result.ok ? '' : result.explanation}`).toBe('linearizable');
      }
    }
  });

  test('the generator produces overlap, pending operations and every kind of operation', () => {
    const { operations, effectTimes } = generateHistory({ seed: 1, operationCount: 2000, clientCount: 10, keyCount: 2 });
    const overlapping = operations.filter((operation, i) => {
      const next = operations[i + 1];
      return next !== undefined && operation.return !== undefined && next.call < operation.return;
    }).length;
    expect(overlapping).toBeGreaterThan(500);
    expect(operations.filter((operation) => operation.return === undefined).length).toBeGreaterThan(5);
    expect(effectTimes.filter((time, i) => time !== null && operations[i]?.return === undefined).length).toBeGreaterThan(0);
    expect(effectTimes.filter((time) => time === null).length).toBeGreaterThan(0);
    expect(new Set(operations.map((operation) => operation.input.op))).toEqual(new Set(['read', 'write', 'cas']));
    expect(operations.filter((operation) => operation.input.op === 'cas' && operation.output?.ok === true).length).toBeGreaterThan(50);
  });

  const mutations = [
    ['a read from the future', plantReadFromFuture],
    ['a stale read', plantStaleRead],
    ['a read of a value never written', plantPhantomRead],
  ] as const;
  test.each(mutations)('%s planted in a generated history is caught, on the mutated key', (_, plant) => {
    let planted = 0;
    for (const shape of shapes) {
      for (let seed = 1; seed <= 10; seed++) {
        const { operations } = generateHistory({ ...shape, seed });
        const mutated = plant(operations);
        if (mutated === null) continue;
        planted += 1;
        const changed = mutated.findIndex((operation, i) => operation !== operations[i]);
        const result = checkLinearizability(mutated);
        expect(result.outcome, `seed ${seed} ${JSON.stringify(shape)}`).toBe('violation');
        if (result.outcome === 'violation') expect(result.key).toBe(mutated[changed]?.input.key);
      }
    }
    expect(planted).toBeGreaterThan(25);
  });
});

// ---------------------------------------------------------------------------------------------
// A planted bug in a replicated KV: a leader and a lagging follower, both KvMachines applying the
// same log. Correct reads follow ReadIndex (thesis §6.4): the follower serves a read once it has
// applied through the commit index seen when the read arrived. The bug serves reads from the
// follower at once.

function runReplicatedKv(seed: number, readIndex: boolean): HistoryOperation[] {
  const prng = new Prng(seed);
  const log: Uint8Array[] = [];
  const leader = new KvMachine();
  const follower = new KvMachine();
  const history: HistoryOperation[] = [];
  const keys = ['a', 'b'];
  type Client = { id: number; sequence: number; pending: null | { index: number; readIndex?: number; result?: unknown } };
  const clients: Client[] = [];
  const append = (bytes: Uint8Array): unknown => {
    log.push(bytes);
    return leader.apply(log.length, bytes); // committed and applied on the leader at once
  };
  for (let c = 0; c < 4; c++) {
    const registered = append((encodeCommand({ op: 'register', timeMs: 0 }) as { bytes: Uint8Array }).bytes) as { clientId: number };
    clients.push({ id: registered.clientId, sequence: 0, pending: null });
  }
  let time = 0n;
  let written = 0;
  for (let step = 0; step < 600; step++) {
    time += 1000n;
    // The follower catches up slowly, one entry at a time.
    if (follower.appliedIndex < log.length && prng.chance(0.3)) follower.apply(follower.appliedIndex + 1, log[follower.appliedIndex] as Uint8Array);
    const client = prng.pick(clients);
    const pending = client.pending;
    if (pending === null) {
      const key = prng.pick(keys);
      const index = history.length;
      if (prng.chance(0.5)) {
        history.push({ clientId: client.id, input: { op: 'read', key }, call: time });
        client.pending = readIndex ? { index, readIndex: log.length } : { index, result: { value: follower.read(key) } };
      } else {
        const value = `w${++written}`;
        client.sequence += 1;
        const session = { clientId: client.id, sequence: client.sequence, lowestPendingSequence: client.sequence };
        history.push({ clientId: client.id, input: { op: 'write', key, value }, call: time });
        const encoded = encodeCommand({ op: 'put', timeMs: 0, session, key, value }) as { bytes: Uint8Array };
        client.pending = { index, result: append(encoded.bytes) };
      }
      continue;
    }
    const operation = history[pending.index] as HistoryOperation;
    let output: RegisterOutput;
    if (pending.readIndex !== undefined) {
      if (follower.appliedIndex < pending.readIndex) continue; // ReadIndex: wait to apply through it
      output = { value: follower.read(operation.input.key) };
    } else if (operation.input.op === 'read') {
      output = pending.result as RegisterOutput;
    } else {
      output = { previous: (pending.result as { previous: string | null }).previous };
    }
    history[pending.index] = { ...operation, output, return: time };
    client.pending = null;
  }
  return history;
}

describe('a planted bug in a replicated KV built from KvMachine', () => {
  test('reads served through ReadIndex are linearizable', () => {
    for (const seed of [1, 2, 3, 4, 5]) expect(checkLinearizability(runReplicatedKv(seed, true)).outcome, `seed ${seed}`).toBe('linearizable');
  });

  test('reads served by a lagging follower without ReadIndex are caught as stale', () => {
    for (const seed of [1, 2, 3, 4, 5]) {
      const result = checkLinearizability(runReplicatedKv(seed, false));
      expect(result.outcome, `seed ${seed}`).toBe('violation');
      if (result.outcome === 'violation') expect(result.unplaced.operation.input.op).toBe('read');
    }
  });
});
