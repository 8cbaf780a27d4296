/**
 * The bench entry points (bench:cluster, bench:http, bench:wal) on bad command lines: each prints
 * `<program>: <message>` and the usage line, exits with status 2 and shows no stack trace, before any
 * measurement starts; `--help` exits 0 with the usage. Runs the built scripts as a user would.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';

const dist = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'dist');
const programs = [
  { name: 'bench:cluster', script: path.join(dist, 'cluster', 'main.js'), bad: [['--bogus'], ['--seconds', 'abc'], ['--transport', 'udp'], ['--latency-gap-ms=-1'], ['stray']] },
  { name: 'bench:http', script: path.join(dist, 'http.js'), bad: [['--bogus'], ['--duration'], ['--duration', '0'], ['--fsync', 'always,sometimes'], ['--connections', '1,,2']] },
  { name: 'bench:wal', script: path.join(dist, 'wal.js'), bad: [['--bogus'], ['--clients', '-1'], ['--size', 'medium']] },
] as const;

function run(script: string, args: readonly string[]): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [script, ...args], { encoding: 'utf8', timeout: 20_000 });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe.each(programs)('$name command line', ({ name, script, bad }) => {
  test.each(bad.map((args) => [args.join(' '), args] as const))('%s: a usage error, exit 2, no stack', (_label, args) => {
    expect(existsSync(script), `${script} is missing: build first`).toBe(true);
    const { status, stderr } = run(script, args);
    expect(status).toBe(2);
    expect(stderr.startsWith(`${name}: `)).toBe(true);
    expect(stderr).toContain(`usage: ${name} `);
    expect(stderr).not.toMatch(/\n\s+at /);
  });

  test('--help prints the usage and exits 0', () => {
    const { status, stdout } = run(script, ['--help']);
    expect(status).toBe(0);
    expect(stdout.startsWith(`usage: ${name} `)).toBe(true);
  });
});
