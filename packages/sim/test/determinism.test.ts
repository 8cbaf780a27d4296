/**
 * One seed determines everything: the same seed and the same code give the same run, event for
 * event. Proven by hashing the full event trace (every input, every Ready, every fault, every
 * client answer) of two runs of each seed and comparing, for plain seeds, a seed with a planted bug
 * (same violation at the same event), and simulate(); and different seeds give different runs.
 */
import { describe, expect, test } from 'vitest';
import { runSeed, simulate } from '../src/index.js';

describe('determinism', () => {
  // Small clusters keep the traced runs quick; the claim does not depend on the size.
  const nodes = { min: 3, max: 5 };
  // The core's own invariant checks do not change a run; leaving them out keeps the test quick.
  const verify = false;
  test('two runs of a seed have identical event traces (hashed) and results', () => {
    for (const seed of [1, 2, 3, 17]) {
      const first = runSeed({ seed, nodes, verify, trace: 'hash' });
      const second = runSeed({ seed, nodes, verify, trace: 'hash' });
      expect(first.traceHash).not.toBeNull();
      expect(second).toEqual(first);
    }
  });

  test('different seeds give different traces', () => {
    const hashes = new Set([1, 2, 3, 4, 5, 6].map((seed) => runSeed({ seed, nodes, verify, trace: 'hash' }).traceHash));
    expect(hashes.size).toBe(6);
  });

  test('a run with a planted bug fails identically every time', () => {
    const first = runSeed({ seed: 1, nodes, verify, planted: ['voteTwice'], trace: 'hash' });
    const second = runSeed({ seed: 1, nodes, verify, planted: ['voteTwice'], trace: 'hash' });
    expect(first.violation).not.toBeNull();
    expect(second).toEqual(first);
  });

  test('tracing does not change the run', () => {
    const traced = runSeed({ seed: 5, nodes, verify, trace: 'hash' });
    const plain = runSeed({ seed: 5, nodes, verify });
    expect({ ...plain, traceHash: traced.traceHash }).toEqual(traced);
  });

  test('simulate() with the same seed repeats the run exactly', () => {
    const commands = Array.from({ length: 300 }, (_, i) => String(i * 7919 - 1000));
    const options = { nodes: 5, commands, seed: 42, faults: { loss: 0.1, duplicate: 0.05, crashes: true, partitions: true } };
    const first = simulate(options);
    const second = simulate(options);
    expect(first.ok).toBe(true);
    expect(second).toEqual(first);
  });
});
