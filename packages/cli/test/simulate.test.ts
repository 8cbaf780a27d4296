/**
 * `raftlab simulate` and `raftlab sim` are the simulator's own command line: the built command
 * prints what @raftlab/sim's main prints for the same arguments (per-node values, the seed summary),
 * exits with the same codes (0, 1 for a caught planted bug, 2 for bad arguments), and passes
 * --help through.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { main } from '@raftlab/sim/cli';
import { afterAll, expect, test } from 'vitest';
import { cliMainPath } from '../src/cluster/local-cluster.js';

const directory = mkdtempSync(path.join(os.tmpdir(), 'raftlab-simulate-'));
afterAll(() => rmSync(directory, { recursive: true, force: true }));

function raftlab(args: readonly string[]): { code: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [cliMainPath, ...args], { encoding: 'utf8', timeout: 30_000 });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

async function direct(args: readonly string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await main(args, { stdout: (text) => (stdout += text), stderr: (text) => (stderr += text), stderrIsTTY: false });
  return { code, stdout, stderr };
}

test('raftlab simulate prints the same per-node values as the simulator', async () => {
  const commands = path.join(directory, 'commands.txt');
  writeFileSync(commands, ['5', '-3', '+12', 'nope', '9223372036854775807', '1'].join('\n'));
  const args = ['--nodes', '5', '--commands-file', commands, '--seed', '7', '--loss', '0.1', '--json'];
  const viaCli = raftlab(['simulate', ...args]);
  const viaSim = await direct(['simulate', ...args]);
  expect(viaCli.code, viaCli.stderr).toBe(0);
  expect(viaSim.code).toBe(0);
  expect(JSON.parse(viaCli.stdout)).toEqual(JSON.parse(viaSim.stdout));
  expect(viaCli.stdout).toContain('-9223372036854775794'); // 5 - 3 + 12 + i64 max + 1 wraps to i64 min + 14
});

test('raftlab sim runs seeds like the simulator, and a planted bug exits 1 with the replay command', async () => {
  const withoutTime = (text: string): unknown => ({ ...(JSON.parse(text) as Record<string, unknown>), durationMs: 0 });
  const args = ['--seeds', '1..3', '--nodes', '3..5', '--json', '--workers', '1'];
  const viaCli = raftlab(['sim', ...args]);
  const viaSim = await direct(['sim', ...args]);
  expect(viaCli.code, viaCli.stderr).toBe(viaSim.code);
  expect(withoutTime(viaCli.stdout)).toEqual(withoutTime(viaSim.stdout));
  expect(viaCli.stderr).toMatch(/sim: 3\/3 seeds/);
  const planted = raftlab(['sim', '--seeds', '1..2', '--plant', 'voteTwice', '--no-verify', '--workers', '1']);
  expect(planted.code).toBe(1);
  expect(planted.stdout).toContain('reproduce: pnpm sim --seed 1');
});

test('bad simulator arguments exit 2 with the usage; --help exits 0', () => {
  const bad = raftlab(['simulate', '--nodes', 'many']);
  expect(bad.code).toBe(2);
  expect(bad.stderr).toContain('--nodes');
  expect(bad.stderr).toContain('usage:');
  const unknown = raftlab(['sim', '--frobnicate']);
  expect(unknown.code).toBe(2);
  expect(unknown.stderr).toContain('unknown option --frobnicate');
  const help = raftlab(['sim', '--help']);
  expect(help.code).toBe(0);
  expect(help.stdout).toContain('sim --seeds A..B');
});
