/**
 * The latency floor probes of the process-cluster benchmark (benchmarks/src/cluster): the round
 * trip to one echo process and the fan-out to two return the samples asked for after the warm-up,
 * the fan-out's first answer never comes after both answers and, in some sample, strictly before
 * (so it really waits for two echoes), and every echo process has exited when a probe returns,
 * also when the timed work throws. Nothing here asserts a speed: wall-clock figures belong in the
 * bench report.
 */
import { existsSync } from 'node:fs';
import type { ChildProcess } from 'node:child_process';
import { describe, expect, test } from 'vitest';
import { echoMainPath, runFanOutProbe, runRoundTripProbe, withEchoProcesses } from '../src/cluster/process-cluster.js';

function exited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

describe('latency floor probes', () => {
  test('the round trip returns one positive sample per requested round trip', async () => {
    expect(existsSync(echoMainPath), `${echoMainPath} is missing: build first (npx tsc -b tsconfig.build.json)`).toBe(true);
    const micros = await runRoundTripProbe(40, 10, 0);
    expect(micros).toHaveLength(40);
    for (const sample of micros) expect(Number.isFinite(sample) && sample > 0).toBe(true);
  });

  test('the fan-out returns first and both answers per sample, first <= both, and waits for the second echo', async () => {
    const { firstMicros, bothMicros } = await runFanOutProbe(60, 10, 0);
    expect(firstMicros).toHaveLength(60);
    expect(bothMicros).toHaveLength(60);
    for (let i = 0; i < firstMicros.length; i++) {
      const first = firstMicros[i] as number;
      const both = bothMicros[i] as number;
      expect(Number.isFinite(first) && first > 0).toBe(true);
      expect(first).toBeLessThanOrEqual(both);
    }
    // Two processes answer in two separate socket events, timed apart: equal in every sample would
    // mean "both" was taken at the first answer.
    expect(firstMicros.some((first, i) => first < (bothMicros[i] as number))).toBe(true);
  });

  test('echo processes have exited when the probe returns, also after the timed work throws', async () => {
    let children: ChildProcess[] = [];
    const answer = await withEchoProcesses(2, async (connections) => {
      children = connections.map((connection) => connection.child);
      expect(connections.map((connection) => connection.socket.remoteAddress)).toEqual(['127.0.0.1', '127.0.0.1']);
      return 'done';
    });
    expect(answer).toBe('done');
    expect(children).toHaveLength(2);
    for (const child of children) expect(exited(child), `echo process ${child.pid} still running`).toBe(true);

    children = [];
    await expect(
      withEchoProcesses(2, (connections) => {
        children = connections.map((connection) => connection.child);
        throw new Error('planted failure');
      }),
    ).rejects.toThrow('planted failure');
    expect(children).toHaveLength(2);
    for (const child of children) expect(exited(child), `echo process ${child.pid} still running`).toBe(true);
  });
});
