/**
 * The simulator's command line: `sim` runs seeds and prints a summary (JSON with --json) whose
 * counts match the runs, a failing seed prints the exact command that replays it, `--trace` prints
 * the events of one seed; `simulate` prints every node's final value; every kind of bad argument
 * exits 2 with a message naming the problem and the usage. The built entry point runs seeds on
 * worker threads with the same results as in-process.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';
import { main, parseCommandLines } from '../src/cli.js';
import { type SimSummary, runSeed } from '../src/index.js';

interface Captured {
  code: number;
  stdout: string;
  stderr: string;
}

async function run(args: string[], files: Record<string, string> = {}): Promise<Captured> {
  let stdout = '';
  let stderr = '';
  const code = await main(
    args,
    { stdout: (text) => (stdout += text), stderr: (text) => (stderr += text), stderrIsTTY: false },
    (path) => {
      const content = files[path];
      if (content === undefined) throw new Error(`ENOENT: no such file '${path}'`);
      return content;
    },
  );
  return { code, stdout, stderr };
}

describe('sim', () => {
  test('--json prints a summary object with runs, violations and liveness failures', async () => {
    const result = await run(['sim', '--seeds', '1..4', '--nodes', '3..5', '--json', '--workers', '1']);
    expect(result.code).toBe(0);
    const summary = JSON.parse(result.stdout) as SimSummary;
    expect(summary).toMatchObject({ runs: 4, violations: 0, livenessFailures: 0, seeds: '1..4', nodes: '3..5' });
    const events = [1, 2, 3, 4].reduce((total, seed) => total + runSeed({ seed, nodes: { min: 3, max: 5 } }).events, 0);
    expect(summary.events).toBe(events);
    expect(summary.ticksToFirstLeader.p50).toBeGreaterThan(0);
    expect(summary.messagesPerCommittedEntry).toBeGreaterThan(0);
    expect(result.stderr).toMatch(/sim: 4\/4 seeds, 0 failing/);
  });

  test('the text summary names every figure', async () => {
    const result = await run(['sim', '--seeds', '7..8', '--workers', '1']);
    expect(result.code).toBe(0);
    for (const label of ['2 runs', 'violations', 'liveness failures', 'ticks to first leader', 'messages per committed']) expect(result.stdout).toContain(label);
  });

  test('a failing seed prints the exact command that replays it, and exits 1', async () => {
    const result = await run(['sim', '--seeds', '1..2', '--plant', 'voteTwice', '--no-verify', '--workers', '1']);
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/FAIL seed 1 \(\d+ nodes\) violation election-safety/);
    expect(result.stdout).toContain('reproduce: pnpm sim --seed 1 --nodes 3..10 --plant voteTwice --trace');
    const single = await run(['sim', '--seed', '1', '--plant', 'voteTwice', '--no-verify']);
    expect(single.code).toBe(1);
    expect(single.stdout).toContain('VIOLATION election-safety');
  });

  test('--seed N --trace prints the events, described by the core', async () => {
    const result = await run(['sim', '--seed', '3', '--nodes', '3', '--trace']);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^seed 3: 3 nodes, profile /);
    expect(result.stdout).toMatch(/t\d+ #\d+ n\d deliver (append|heartbeat|preVote|vote)/);
    expect(result.stdout).toMatch(/ {4}ready .*(persist|send)=/);
    expect(result.stdout).toMatch(/heal: links restored/);
    expect(result.stdout.trimEnd().split('\n').at(-1)).toBe('ok');
  });

  const bad: [string[], RegExp][] = [
    [['sim'], /give --seeds A..B, --seed N, or --soak/],
    [['sim', '--seeds', '5..1'], /empty range/],
    [['sim', '--seeds', 'x'], /expected A..B or A/],
    [['sim', '--seeds', '1..2', '--nodes', '0..3'], /--nodes: 0 is outside 1..10/],
    [['sim', '--seeds', '1..2', '--nodes', '3..11'], /--nodes: 11 is outside 1..10/],
    [['sim', '--seeds', '1..2', '--bogus'], /unknown option --bogus/],
    [['sim', '--seeds'], /--seeds needs a value/],
    [['sim', '--seeds', '1..2', '--trace'], /--trace needs a single --seed N/],
    [['sim', '--seed', '1', '--seeds', '1..2'], /not both/],
    [['sim', '--seed', '1', '--plant', 'nope'], /unknown bug "nope"/],
    [['sim', '--seeds', '1..2', '--workers', '0'], /--workers: 0 is outside/],
    [['simulate', '--commands-file', 'c.txt'], /needs --nodes N/],
    [['simulate', '--nodes', '3'], /needs --commands-file/],
    [['simulate', '--nodes', '11', '--commands-file', 'c.txt'], /--nodes: 11 is outside 1..10/],
    [['simulate', '--nodes', '3', '--commands-file', 'missing.txt'], /cannot read "missing.txt"/],
    [['simulate', '--nodes', '3', '--commands-file', 'c.txt', '--loss', '1'], /--loss: 1 is outside \[0, 1\)/],
    [['simulate', '--nodes', '3', '--commands-file', 'c.txt', '--loss', 'lots'], /expected a probability/],
    [['simulate', '--nodes', '3', '--commands-file', 'c.txt', '--down', '4'], /--down: 4 is outside 1..3/],
    [['simulate', '--nodes', '3', '--commands-file', 'c.txt', '--check', 'some'], /--check: expected light or full/],
    [['frobnicate'], /unknown command "frobnicate"/],
  ];
  for (const [args, message] of bad) {
    test(`bad arguments: ${args.join(' ')}`, async () => {
      const result = await run(args, { 'c.txt': '1\n2\n' });
      expect(result.code).toBe(2);
      expect(result.stderr).toMatch(message);
      expect(result.stderr).toContain('usage:');
      expect(result.stdout).toBe('');
    });
  }
});

describe('simulate', () => {
  const file = { 'cmds.txt': '5\n-3\n 7\n9223372036854775807\n1\r\n\n+2\n' };

  test('prints each node\u2019s final value', async () => {
    const result = await run(['simulate', '--nodes', '5', '--commands-file', 'cmds.txt', '--loss', '0.1', '--seed', '7'], file);
    expect(result.code).toBe(0);
    // 5 - 3 + i64 max + 1 + 2 wraps to i64 min + 4; " 7" and "" are invalid.
    const value = String(-(2n ** 63n) + 4n);
    expect(result.stdout).toBe([1, 2, 3, 4, 5].map((id) => `node ${id}: ${value}\n`).join(''));
    expect(result.stderr).toMatch(/5 of 5 nodes applied all 7 commands/);
  });

  test('--json prints the states as decimal strings', async () => {
    const result = await run(['simulate', '--nodes', '3', '--commands-file', 'cmds.txt', '--down', '3', '--json'], file);
    expect(result.code).toBe(0);
    const parsed = JSON.parse(result.stdout) as { ok: boolean; states: Record<string, string> };
    expect(parsed.ok).toBe(true);
    expect(Object.keys(parsed.states)).toEqual(['1', '2']);
  });

  test('no majority: exits 1 with the no-quorum reason', async () => {
    const result = await run(['simulate', '--nodes', '3', '--commands-file', 'cmds.txt', '--down', '1,2'], file);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/simulate failed \(no-quorum\): no majority can form/);
  });

  test('command files: one command per line, exactly as written, CRLF and the final newline dropped', () => {
    expect(parseCommandLines('')).toEqual([]);
    expect(parseCommandLines('1\n2\n')).toEqual(['1', '2']);
    expect(parseCommandLines('1\r\n2')).toEqual(['1', '2']);
    expect(parseCommandLines('1\n\n 3 \n')).toEqual(['1', '', ' 3 ']);
    expect(parseCommandLines('\n')).toEqual(['']);
  });
});

describe('the built entry point', () => {
  const cli = fileURLToPath(new URL('../dist/cli.js', import.meta.url));
  test.skipIf(!existsSync(cli))('runs seeds on worker threads with the same results as in-process', () => {
    const stdout = execFileSync(process.execPath, [cli, 'sim', '--seeds', '1..4', '--nodes', '3..5', '--json', '--workers', '2'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    const summary = JSON.parse(stdout) as SimSummary;
    const events = [1, 2, 3, 4].reduce((total, seed) => total + runSeed({ seed, nodes: { min: 3, max: 5 } }).events, 0);
    expect(summary).toMatchObject({ runs: 4, violations: 0, livenessFailures: 0, events });
  });
});
