/**
 * simulate(): every node in the consensus ends with the i64 sum of the commands, parsed by Rust's
 * `str::parse::<i64>` rules and wrapping in two's complement, for every cluster size from 1 to 10,
 * over lossy, duplicating, reordering networks with crashes and partitions; retried commands apply
 * once; when no majority can form it fails promptly with no-quorum; bad options get a precise
 * invalid-options error.
 */
import { Prng } from '@raftlab/core';
import { describe, expect, test } from 'vitest';
import { type SimulateResult, simulate, stallTicksMax } from '../src/index.js';

function randomCommands(count: number, seed: number): string[] {
  const prng = new Prng(seed);
  return Array.from({ length: count }, () => String(prng.nextInt(2_000_001) - 1_000_000));
}

function sum(commands: readonly string[]): bigint {
  return commands.reduce((total, command) => BigInt.asIntN(64, total + BigInt(command)), 0n);
}

function states(result: SimulateResult): bigint[] {
  if (!result.ok) throw new Error(`simulate failed: ${result.error.code}: ${result.error.message}`);
  return result.states;
}

describe('simulate() agrees on the sum', () => {
  test('every cluster size from 1 to 10 with 1000 commands at 10% loss', () => {
    const commands = randomCommands(1000, 3);
    const expected = sum(commands);
    for (let nodes = 1; nodes <= 10; nodes++) {
      const values = states(simulate({ nodes, commands, seed: nodes, faults: { loss: 0.1 } }));
      expect(values).toEqual(Array.from({ length: nodes }, () => expected));
    }
  });

  test('commands follow str::parse::<i64>: invalid text is ignored, the rest added', () => {
    const commands = ['', '+', '-', '-0', '+5', ' 5', '5 ', '007', '9223372036854775807', '9223372036854775808', '-9223372036854775808', '-9223372036854775809', '1e3', '0x10', '1_000', '٣'];
    // Valid: -0, +5, 007, i64 max, i64 min: 0 + 5 + 7 + (2^63 - 1) + (-2^63) = 11.
    expect(states(simulate({ nodes: 3, commands }))).toEqual([11n, 11n, 11n]);
  });

  test('sums wrap in two\u2019s complement', () => {
    expect(states(simulate({ nodes: 3, commands: ['9223372036854775807', '1'] }))).toEqual([-9223372036854775808n, -9223372036854775808n, -9223372036854775808n]);
    expect(states(simulate({ nodes: 2, commands: ['-9223372036854775808', '-1', '-1'] }))).toEqual([9223372036854775806n, 9223372036854775806n]);
  });

  test('no command is lost or applied twice despite loss, duplication, reordering, crashes and partitions', () => {
    const commands = Array.from({ length: 1500 }, () => '1');
    const result = simulate({ nodes: 5, commands, seed: 9, faults: { loss: 0.2, duplicate: 0.2, reorder: 0.2, delayTicks: 1, delaySpreadTicks: 3, crashes: true, partitions: true } });
    expect(states(result)).toEqual([1500n, 1500n, 1500n, 1500n, 1500n]);
  });

  test('thousands of commands on an even-sized cluster', () => {
    const commands = randomCommands(4000, 11);
    expect(states(simulate({ nodes: 4, commands, seed: 4, faults: { loss: 0.05 } }))).toEqual([sum(commands), sum(commands), sum(commands), sum(commands)]);
  });

  test('with the core’s own invariant checks on as well (check: full) the answer is the same', () => {
    const commands = randomCommands(300, 8);
    expect(states(simulate({ nodes: 4, commands, seed: 3, check: 'full', faults: { loss: 0.1, crashes: true } }))).toEqual(Array.from({ length: 4 }, () => sum(commands)));
  });

  test('an empty command list gives zero everywhere', () => {
    expect(states(simulate({ nodes: 3, commands: [] }))).toEqual([0n, 0n, 0n]);
  });

  test('with a minority down or cut off for good, the majority agrees and reports itself', () => {
    const commands = randomCommands(200, 5);
    const down = simulate({ nodes: 5, commands, faults: { down: [1, 2] } });
    expect(down.ok && down.nodeIds).toEqual([3, 4, 5]);
    expect(states(down)).toEqual([sum(commands), sum(commands), sum(commands)]);
    const cut = simulate({ nodes: 5, commands, faults: { partition: [[4, 5]] } });
    expect(cut.ok && cut.nodeIds).toEqual([1, 2, 3]);
    expect(states(cut)).toEqual([sum(commands), sum(commands), sum(commands)]);
  });
});

describe('simulate() without a majority fails promptly', () => {
  const commands = randomCommands(100, 1);
  const cases: [string, Parameters<typeof simulate>[0]][] = [
    ['a permanent split 2/3 of 5 with one down on the bigger side', { nodes: 5, commands, faults: { partition: [[1, 2]], down: [3] } }],
    ['three of five down', { nodes: 5, commands, faults: { down: [1, 2, 3] } }],
    ['half of four down (4 nodes need 3)', { nodes: 4, commands, faults: { down: [1, 2] } }],
    ['one of two down', { nodes: 2, commands, faults: { down: [2] } }],
    ['ten nodes split five and five', { nodes: 10, commands, faults: { partition: [[1, 2, 3, 4, 5]] } }],
  ];
  for (const [name, options] of cases) {
    test(name, () => {
      const result = simulate(options);
      expect(result.ok).toBe(false);
      if (result.ok) return;
      expect(result.error.code).toBe('no-quorum');
      expect(result.error.message).toMatch(/no majority can form/);
      // Promptly: it stops at the stall bound, measured in virtual ticks.
      expect(result.error.ticks).toBeLessThanOrEqual(stallTicksMax + 1);
    });
  }
});

describe('simulate() refuses bad options with a precise error', () => {
  const cases: [unknown, RegExp][] = [
    [{ nodes: 0, commands: [] }, /nodes must be an integer from 1 to 10/],
    [{ nodes: 11, commands: [] }, /nodes must be an integer from 1 to 10/],
    [{ nodes: 2.5, commands: [] }, /nodes must be an integer/],
    [{ nodes: 3, commands: 'x' }, /commands must be an array/],
    [{ nodes: 3, commands: ['1', 2] }, /commands\[1\] must be a string/],
    [{ nodes: 3, commands: [], seed: -1 }, /seed/],
    [{ nodes: 3, commands: [], faults: { loss: 1 } }, /faults.loss/],
    [{ nodes: 3, commands: [], faults: { loss: Number.NaN } }, /faults.loss/],
    [{ nodes: 3, commands: [], faults: { down: [4] } }, /faults.down: 4 is not a node id/],
    [{ nodes: 3, commands: [], faults: { partition: [[1], [1, 2]] } }, /node 1 is in two groups/],
    [{ nodes: 3, commands: [], faults: { lossy: 0.1 } }, /faults.lossy is not a known fault/],
    [{ nodes: 3, commands: [], faults: { delayTicks: 1.5 } }, /faults.delayTicks/],
    [{ nodes: 3, commands: [], clients: 0 }, /clients/],
  ];
  for (const [options, message] of cases) {
    test(JSON.stringify(options), () => {
      const result = simulate(options as Parameters<typeof simulate>[0]);
      expect(result.ok).toBe(false);
      if (result.ok) return;
      expect(result.error.code).toBe('invalid-options');
      expect(result.error.message).toMatch(message);
    });
  }
});
