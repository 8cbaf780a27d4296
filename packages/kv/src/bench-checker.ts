/**
 * Benchmark of the linearizability checker: times `checkLinearizability` on generated histories
 * (linearizable by construction, see history.ts) and on the same histories with one read mutated
 * into a stale read (a guaranteed violation, which makes the search exhaust every alternative before
 * the mutated read). Sizes: small (what CI runs so the script never rots) and large (the target:
 * 10,000 operations, 10 clients, 5 keys), plus hot (10,000 operations, 10 clients, one key). The
 * phantom-read case makes the last read return a value nobody wrote, so the search must refute every
 * configuration of the history before it: the slowest kind of violation.
 *
 *   node packages/kv/dist/bench-checker.js [small|large|hot] [repeats]
 *
 * Prints one line per case with the median and spread of the wall time, the search steps, and a
 * checksum of the results so the work cannot be optimized away.
 */
import { generateHistory, type HistoryShape } from './history.js';
import { type CheckResult, type HistoryOperation, checkLinearizability } from './linearizability.js';

interface Size {
  readonly name: string;
  readonly shape: Omit<HistoryShape, 'seed'>;
}

const sizes: Record<'small' | 'large' | 'hot', Size> = {
  small: { name: 'small', shape: { operationCount: 1_000, clientCount: 10, keyCount: 5 } },
  large: { name: 'large', shape: { operationCount: 10_000, clientCount: 10, keyCount: 5 } },
  // Every client on one key: ten-way concurrency per register, the hard case for the search.
  hot: { name: 'hot', shape: { operationCount: 10_000, clientCount: 10, keyCount: 1 } },
};

/** Makes the last completed read return a value nothing wrote: refuting it means exhausting the search. */
function plantPhantomRead(operations: readonly HistoryOperation[]): HistoryOperation[] | null {
  for (let r = operations.length - 1; r >= 0; r--) {
    const read = operations[r] as HistoryOperation;
    if (read.input.op !== 'read' || read.return === undefined) continue;
    const mutated = operations.slice();
    mutated[r] = { ...read, output: { value: 'phantom' } };
    return mutated;
  }
  return null;
}

/** Makes a late read of some key return the value of a write that a later completed write overwrote. */
function plantStaleRead(operations: readonly HistoryOperation[]): HistoryOperation[] | null {
  const definitelyWrote = (operation: HistoryOperation): string | null | undefined => {
    if (operation.return === undefined) return undefined;
    if (operation.input.op === 'write') return operation.input.value;
    if (operation.input.op === 'cas' && operation.output?.ok === true) return operation.input.value;
    return undefined;
  };
  // Search from the end so the violation sits deep in the history (the expensive case).
  for (let r = operations.length - 1; r >= 0; r--) {
    const read = operations[r] as HistoryOperation;
    if (read.input.op !== 'read' || read.return === undefined) continue;
    const key = read.input.key;
    let second: HistoryOperation | null = null;
    for (let w = r - 1; w >= 0; w--) {
      const write = operations[w] as HistoryOperation;
      if (write.input.key !== key || definitelyWrote(write) === undefined) continue;
      if (second === null) {
        if ((write.return as number) < read.call) second = write;
        continue;
      }
      const value = definitelyWrote(write);
      if (typeof value === 'string' && (write.return as number) < second.call && value !== read.output?.value) {
        const mutated = operations.slice();
        mutated[r] = { ...read, output: { value } };
        return mutated;
      }
    }
  }
  return null;
}

function median(values: number[]): number {
  const sorted = values.slice().sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] as number;
}

function checksumOf(result: CheckResult): number {
  return result.searchSteps * 31 + (result.ok ? 1 : result.outcome === 'violation' ? 2 : 3);
}

function run(): void {
  const sizeName = process.argv[2] ?? 'large';
  if (sizeName !== 'small' && sizeName !== 'large' && sizeName !== 'hot') throw new Error(`unknown size ${sizeName}: small, large or hot`);
  const repeats = Number(process.argv[3] ?? 5);
  const size = sizes[sizeName];
  let checksum = 0;
  console.log(`bench-checker size=${size.name} ops=${size.shape.operationCount} clients=${size.shape.clientCount} keys=${size.shape.keyCount} repeats=${repeats} node=${process.version}`);
  for (const seed of [1, 2, 3]) {
    const { operations } = generateHistory({ ...size.shape, seed });
    const pending = operations.filter((operation) => operation.return === undefined).length;
    const stale = plantStaleRead(operations);
    const phantom = plantPhantomRead(operations);
    const cases: [string, HistoryOperation[], CheckResult['outcome']][] = [['linearizable', operations, 'linearizable']];
    if (stale !== null) cases.push(['stale-read', stale, 'violation']);
    if (phantom !== null) cases.push(['phantom-read', phantom, 'violation']);
    for (const [name, history, expected] of cases) {
      const times: number[] = [];
      let last: CheckResult | null = null;
      for (let i = 0; i < repeats; i++) {
        const start = performance.now();
        last = checkLinearizability(history);
        times.push(performance.now() - start);
      }
      const result = last as CheckResult;
      if (result.outcome !== expected) throw new Error(`seed ${seed} ${name}: expected ${expected}, got ${result.outcome}`);
      checksum = (checksum * 33 + checksumOf(result)) >>> 0;
      console.log(
        `seed=${seed} case=${name.padEnd(13)} pending=${pending} median=${median(times).toFixed(1)}ms min=${Math.min(...times).toFixed(1)}ms max=${Math.max(...times).toFixed(1)}ms steps=${result.searchSteps}`,
      );
    }
  }
  console.log(`checksum=${checksum}`);
}

run();
