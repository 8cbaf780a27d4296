/**
 * `raftlab console` driven through stdin (a non-TTY run of the built command) with a script: it
 * starts a local cluster, runs set/get/submit, status, partition and heal, kill and restart, transfer,
 * refuses bad commands with a message and keeps going, lists its history, and stops the cluster on quit.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, test } from 'vitest';

const main = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'dist', 'main.js');

function runConsole(script: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [main, 'console', '--nodes', '3', '--fsync', 'none'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (data: Buffer) => (stdout += data.toString()));
    child.stderr.on('data', (data: Buffer) => (stderr += data.toString()));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(script);
  });
}

test('a scripted console session drives the cluster through every command and stops it on quit', async () => {
  const { code, stdout } = await runConsole(
    [
      'set color blue',
      'get color',
      'submit SET shape round',
      'submit {"type":"CAS","key":"shape","expected":"round","value":"square"}',
      'get shape stale',
      'partition 1',
      'status',
      'heal',
      'kill 2',
      'set color red',
      'restart 2',
      'transfer 2',
      'get color',
      'kill 7',
      'frobnicate',
      'history',
      'quit',
      'set never reached',
    ].join('\n') + '\n',
  );
  expect(code).toBe(0);
  expect(stdout).toContain('cluster up');
  expect(stdout).toContain('OK color = "blue" (index');
  expect(stdout).toContain('color = "blue"');
  expect(stdout).toMatch(/200 \{"type":"SET","key":"shape","previous":null,"index":\d+\}/);
  expect(stdout).toMatch(/200 \{"type":"CAS","key":"shape","value":"square","index":\d+\}/);
  expect(stdout).toContain('node 1 cut off from 2, 3');
  expect(stdout).toMatch(/node 1 http:\S+ +1 +\S+ .* 2,3/);
  expect(stdout).toContain('killed node 2 (SIGKILL)');
  expect(stdout).toContain('OK color = "red" (index');
  expect(stdout).toContain('restarted node 2');
  expect(stdout).toContain('node 2 leads');
  expect(stdout).toContain('color = "red"');
  expect(stdout).toContain('error: kill node id must be between 1 and 3, got 7');
  expect(stdout).toContain('unknown command "frobnicate": type help');
  expect(stdout).toMatch(/ +1 {2}set color blue/);
  expect(stdout).toContain('stopping the cluster');
  expect(stdout).not.toContain('never reached =');
}, 60_000);
