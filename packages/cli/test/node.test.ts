/**
 * `raftlab node`, as a user runs it: every kind of bad argument exits 2 with a message naming the
 * option; a single-node cluster driven over `--control stdio` (JSON lines) elects itself, applies
 * proposals, answers a bad request with an error and keeps serving, and stops gracefully on SIGTERM
 * (exit 0, a stopped event); a node whose control stdin closes (its parent is gone) stops by itself,
 * after answering the requests it already read;
 * a port already taken makes it fail with exit code 1.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import net from 'node:net';
import { afterEach, describe, expect, test } from 'vitest';
import { cliMainPath, freePort } from '../src/cluster/local-cluster.js';
import { parseNodeOptions } from '../src/commands/node.js';
import { UsageError } from '../src/usage.js';

interface Run {
  readonly child: ChildProcess;
  stdout: string;
  stderr: string;
  readonly exited: Promise<number | null>;
}

const runs: Run[] = [];
afterEach(() => {
  for (const run of runs.splice(0)) if (run.child.exitCode === null && run.child.signalCode === null) run.child.kill('SIGKILL');
});

function raftlabNode(args: readonly string[], stdin: 'pipe' | 'ignore' = 'ignore'): Run {
  const child = spawn(process.execPath, [cliMainPath, 'node', ...args], { stdio: [stdin, 'pipe', 'pipe'], env: { ...process.env, LOG_LEVEL: 'info' } });
  const run: Run = { child, stdout: '', stderr: '', exited: new Promise((resolve) => child.once('exit', (code) => resolve(code))) };
  child.stdout?.on('data', (chunk: Buffer) => (run.stdout += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (run.stderr += chunk.toString()));
  runs.push(run);
  return run;
}

/** Runs the command to its end (usage errors: nothing to clean up, so these tests run concurrently). */
function raftlabToEnd(args: readonly string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [cliMainPath, ...args], { timeout: 20_000 }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : null, stdout, stderr });
    });
  });
}

async function waitFor(check: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

function jsonLines(text: string): Record<string, unknown>[] {
  return text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

describe('argument errors exit 2 with a message naming the option', () => {
  const peers = '1=127.0.0.1:7001,2=127.0.0.1:7002,3=127.0.0.1:7003';
  test.each([
    [['--peers', peers], '--id is required'],
    [['--id', '2'], '--peers is required'],
    [['--id', 'two', '--peers', peers], '--id expects an integer, got "two"'],
    [['--id', '4', '--peers', peers], '--peers must list this node (4)'],
    [['--id', '1', '--peers', '1=127.0.0.1'], '--peers expects id=host:port'],
    [['--id', '1', '--peers', '1=a:1,1=b:2'], '--peers lists node 1 twice'],
    [['--id', '1', '--peers', peers, '--transport', 'udp'], '--transport must be one of tcp, ws'],
    [['--id', '1', '--peers', peers, '--tick-ms', '0'], '--tick-ms must be between 1 and 60000'],
    [['--id', '1', '--peers', peers, '--heartbeat-ticks', '20'], '--heartbeat-ticks 20 must be below --election-ticks 20'],
    [['--id', '1', '--peers', peers, '--control', 'carrier-pigeon'], '--control must be one of none, ipc, stdio'],
    [['--id', '1', '--peers', peers, '--machine', 'abacus'], '--machine must be one of sum, counter'],
    [['--id', '1', '--peers', peers, '--fsync', 'sometimes'], '--fsync must be one of'],
  ])('parse %j', (args, message) => {
    const line: Record<string, string> = {};
    for (let i = 0; i < args.length; i += 2) line[(args[i] as string).slice(2).replace(/-(\w)/g, (_, letter: string) => letter.toUpperCase())] = args[i + 1] as string;
    expect(() => parseNodeOptions(line, {})).toThrow(UsageError);
    expect(() => parseNodeOptions(line, {})).toThrow(message);
  });

  test.concurrent.each([
    [['--id', '4', '--peers', peers], '--peers must list this node (4)'],
    [['--id', '1', '--peers', peers, '--transport', 'udp'], '--transport must be one of tcp, ws'],
    [['--id', '1', '--peers', peers, '--bogus'], "unknown option '--bogus'"],
    [['--peers', peers], '--id is required'],
    [['--id', '1', '--peers', '1=127.0.0.1:1', '--control', 'ipc'], '--control ipc needs a parent that spawned this process with an IPC channel'],
  ])('raftlab node %j', async (args, message) => {
    const run = await raftlabToEnd(['node', ...args]);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain(message);
    expect(run.stdout).toBe('');
  });

  test('good options parse into a node (own address from --peers, development secret by default)', () => {
    const options = parseNodeOptions({ id: '2', peers }, {});
    expect(options).toMatchObject({ id: 2, listen: { host: '127.0.0.1', port: 7002 }, transport: 'tcp', dataDirectory: null, machine: 'sum', control: 'none', tickIntervalMs: 10 });
    expect(options.secret).toContain('development');
    expect(parseNodeOptions({ id: '2', peers }, { RAFTLAB_SECRET: 's3cret' }).secret).toBe('s3cret');
  });
});

test('a single node over --control stdio: elects itself, applies proposals, refuses a bad request, stops gracefully on SIGTERM', async () => {
  const port = await freePort();
  const run = raftlabNode(['--id', '1', '--peers', `1=127.0.0.1:${port}`, '--control', 'stdio', '--transport', 'ws'], 'pipe');
  const send = (request: object): void => {
    run.child.stdin?.write(`${JSON.stringify(request)}\n`);
  };
  const reply = async (id: number): Promise<Record<string, unknown>> => {
    await waitFor(() => jsonLines(run.stdout).some((line) => line['id'] === id && 'ok' in line), `reply ${id}`);
    return jsonLines(run.stdout).find((line) => line['id'] === id && 'ok' in line) as Record<string, unknown>;
  };
  await waitFor(() => run.stdout.includes('"event":"ready"'), 'the ready event');
  expect(jsonLines(run.stdout)[0]).toMatchObject({ event: 'ready', node: 1, transport: 'ws', listen: `127.0.0.1:${port}` });
  await waitFor(() => jsonLines(run.stdout).some((line) => line['event'] === 'role' && line['role'] === 'leader'), 'the node to lead');

  send({ id: 1, op: 'propose', commands: ['40', '2', 'not a number'] });
  expect(await reply(1)).toMatchObject({ ok: true, result: { count: 3, machine: { kind: 'sum', value: '42', commands: 3 } } });
  send({ id: 2, op: 'status' });
  expect(await reply(2)).toMatchObject({ ok: true, result: { id: 1, role: 'leader', leader: 1, commit: 4, applied: 4, lastIndex: 4 } });
  send({ id: 3, op: 'propose', commands: [7] });
  expect(await reply(3)).toMatchObject({ ok: false, error: { code: 'bad-request' } });
  run.child.stdin?.write('this is not json\n');
  send({ id: 4, op: 'transfer', to: 9 });
  expect(await reply(4)).toMatchObject({ ok: false, error: { code: 'not-leader' } });
  send({ id: 5, op: 'status' });
  expect(await reply(5)).toMatchObject({ ok: true, result: { machine: { value: '42' } } });

  // Sessions: a resent request is recognised and not applied again; the next sequence goes on.
  send({ id: 6, op: 'propose', commands: ['5', '6'], client: 81724, seq: 1 });
  expect(await reply(6)).toMatchObject({ ok: true, result: { count: 2, duplicates: 0, machine: { value: '53' } } });
  send({ id: 7, op: 'propose', commands: ['5', '6'], client: 81724, seq: 1 });
  expect(await reply(7)).toMatchObject({ ok: true, result: { count: 2, duplicates: 2, machine: { value: '53' } } });
  send({ id: 8, op: 'propose', commands: ['1'], client: 81724, seq: 3 });
  expect(await reply(8)).toMatchObject({ ok: true, result: { count: 1, duplicates: 0, machine: { value: '54' } } });
  // Without a session the same commands are new ones each time.
  send({ id: 9, op: 'propose', commands: ['5'] });
  send({ id: 10, op: 'propose', commands: ['5'] });
  await reply(9);
  expect(await reply(10)).toMatchObject({ ok: true, result: { machine: { value: '64' } } });
  send({ id: 11, op: 'propose', commands: ['5'], client: 81724 });
  expect(await reply(11)).toMatchObject({ ok: false, error: { code: 'bad-request', message: expect.stringContaining('"client" and "seq" together') } });
  send({ id: 12, op: 'propose', commands: ['5'], client: 0, seq: 1 });
  expect(await reply(12)).toMatchObject({ ok: false, error: { code: 'bad-request' } });

  run.child.kill('SIGTERM');
  expect(await run.exited).toBe(0);
  expect(jsonLines(run.stdout).at(-1)).toEqual({ event: 'stopped', node: 1 });
  expect(run.stderr).toContain('"why":"SIGTERM"');
  expect(run.stderr).toContain('raft node stopped');
});

test('a node whose control stdin closes stops by itself (its parent is gone)', async () => {
  const port = await freePort();
  const run = raftlabNode(['--id', '1', '--peers', `1=127.0.0.1:${port}`, '--control', 'stdio'], 'pipe');
  await waitFor(() => run.stdout.includes('"event":"ready"'), 'the ready event');
  run.child.stdin?.end();
  expect(await run.exited).toBe(0);
  expect(run.stderr).toContain('the parent went away');
});

test('a request piped in before stdin ends is still answered, then the node stops (the README example)', async () => {
  const port = await freePort();
  const run = raftlabNode(['--id', '1', '--peers', `1=127.0.0.1:${port}`, '--control', 'stdio'], 'pipe');
  run.child.stdin?.end(`${JSON.stringify({ id: 1, op: 'propose', commands: ['40', '2'] })}\n`);
  expect(await run.exited).toBe(0);
  const lines = jsonLines(run.stdout);
  // The node had no leader yet when the proposal arrived: it waited for the election.
  expect(lines.find((line) => line['id'] === 1)).toEqual({ id: 1, ok: true, result: { count: 2, machine: { kind: 'sum', value: '42', commands: 2 } } });
  expect(lines.at(-1)).toEqual({ event: 'stopped', node: 1 });
});

test('a port already taken fails the node with exit code 1 and a message', async () => {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  try {
    const run = raftlabNode(['--id', '1', '--peers', `1=127.0.0.1:${port}`]);
    expect(await run.exited).toBe(1);
    expect(run.stderr).toMatch(/EADDRINUSE|in use|listen/i);
  } finally {
    server.close();
  }
});
