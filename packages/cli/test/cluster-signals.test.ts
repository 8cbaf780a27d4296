/**
 * `raftlab cluster up` stops cleanly however it is stopped: SIGTERM stops it and its children;
 * Ctrl-C at a terminal (SIGINT to the whole process group, children included) stops everything and
 * exits 0; a parent killed with SIGKILL still leaves no orphan (the children notice their IPC
 * channel closing); a port already taken fails it with exit code 1, the failing node's log, and no
 * process or port left behind.
 */
import { rmSync } from 'node:fs';
import net from 'node:net';
import { afterEach, expect, test } from 'vitest';
import { type Run, canListen, freeBasePort, isAlive, killRuns, leaderTable, raftlab as start, tablePids, waitFor } from './cluster-helpers.js';

const runs: Run[] = [];
afterEach(() => killRuns(runs));
const raftlab = (args: readonly string[], options: { detached?: boolean } = {}): Run => start(runs, args, options);

test('SIGTERM stops cluster up and every node process (ws)', async () => {
  const run = raftlab(['cluster', 'up', '--transport', 'ws', '--nodes', '3', '--interval-ms', '200']);
  await waitFor(() => leaderTable.test(run.stdout), 'a table with a leader');
  const pids = tablePids(run.stdout);
  expect(pids).toHaveLength(3);
  expect(pids.every(isAlive)).toBe(true);
  run.child.kill('SIGTERM');
  const { code } = await run.exited;
  expect(code, run.stderr).toBe(0);
  expect(run.stderr).toContain('SIGTERM; stopping 3 nodes');
  expect(pids.filter(isAlive)).toEqual([]);
});

test('a cluster up killed with SIGKILL leaves no orphan: its nodes stop when their IPC channel closes', async () => {
  const run = raftlab(['cluster', 'up', '--transport', 'tcp', '--nodes', '3', '--interval-ms', '200']);
  await waitFor(() => leaderTable.test(run.stdout), 'a table with a leader');
  const pids = tablePids(run.stdout);
  expect(pids).toHaveLength(3);
  run.child.kill('SIGKILL');
  await run.exited;
  await waitFor(() => pids.every((pid) => !isAlive(pid)), `nodes ${pids.join(', ')} to exit by themselves`, 15_000);
  // The killed parent could not remove its log directory: the test does.
  const logs = /logs in (\S+);/.exec(run.stderr)?.[1];
  expect(logs).toMatch(/raftlab-cluster-/);
  rmSync(logs as string, { recursive: true, force: true });
});

test('Ctrl-C at a terminal (SIGINT to the process group, nodes included) stops everything and exits 0 (tcp)', async () => {
  // detached: its own process group, as a shell gives a foreground job; -pid signals the whole group.
  const run = raftlab(['cluster', 'up', '--transport', 'tcp', '--nodes', '3', '--interval-ms', '200'], { detached: true });
  await waitFor(() => leaderTable.test(run.stdout), 'a table with a leader');
  const pids = tablePids(run.stdout);
  expect(pids).toHaveLength(3);
  process.kill(-(run.child.pid as number), 'SIGINT');
  const { code } = await run.exited;
  expect(code, run.stderr).toBe(0);
  expect(run.stderr).toContain('SIGINT; stopping 3 nodes');
  expect(run.stderr).toContain('every node stopped');
  expect(pids.filter(isAlive)).toEqual([]);
});

test('a port already taken fails cluster up with exit code 1, the node log tail, and no process left', async () => {
  const base = await freeBasePort(3);
  const blocker = net.createServer();
  await new Promise<void>((resolve) => blocker.listen(base + 1, '127.0.0.1', resolve));
  try {
    const run = raftlab(['cluster', 'up', '--transport', 'tcp', '--nodes', '3', '--base-port', String(base), '--duration', '5']);
    const { code } = await run.exited;
    expect(code).toBe(1);
    expect(run.stderr).toMatch(/node 2 exited while starting/);
    expect(run.stderr).toMatch(/EADDRINUSE/);
    expect(await Promise.all([canListen(base), canListen(base + 2)])).toEqual([true, true]);
  } finally {
    blocker.close();
  }
});
