/**
 * `raftlab cluster up`, run as a user runs it (the built command, stdout a pipe): with --duration it
 * prints status tables that show a leader, exits 0 and leaves no node process behind and no port
 * taken; the memory cluster answers --once --json and commits its --load; the table is redrawn in
 * place on a terminal, printed only when changed otherwise; bad options exit 2. Signals and
 * failures are in cluster-signals.test.ts.
 */
import { afterEach, describe, expect, test } from 'vitest';
import { type ClusterSnapshot, StatusRenderer } from '../src/cluster/status-table.js';
import { type Run, canListen, freeBasePort, isAlive, killRuns, leaderTable, raftlab as start, raftlabToEnd, tablePids } from './cluster-helpers.js';

const runs: Run[] = [];
afterEach(() => killRuns(runs));
const raftlab = (args: readonly string[]): Run => start(runs, args);

test('cluster up --transport tcp --nodes 3 --duration 3 prints a table with a leader, exits 0, leaves no process or port behind', async () => {
  const base = await freeBasePort(3);
  const run = raftlab(['cluster', 'up', '--transport', 'tcp', '--nodes', '3', '--duration', '3', '--base-port', String(base)]);
  const { code } = await run.exited;
  expect(code, run.stderr).toBe(0);
  const table = leaderTable.exec(run.stdout);
  expect(table, run.stdout).not.toBeNull();
  expect((table as RegExpExecArray)[0]).toMatch(/ leader +\d+ +\d+ /);
  expect(run.stderr).toContain(`on 127.0.0.1:${base},127.0.0.1:${base + 1},127.0.0.1:${base + 2}`);
  expect(run.stderr).toContain('duration reached');
  expect(run.stderr).toContain('every node stopped');
  const pids = tablePids(run.stdout);
  expect(pids).toHaveLength(3);
  expect(pids.filter(isAlive)).toEqual([]);
  expect(await Promise.all([base, base + 1, base + 2].map(canListen))).toEqual([true, true, true]);
});

test('cluster up --transport memory --once --json prints one JSON status with a leader and exits 0', async () => {
  const run = raftlab(['cluster', 'up', '--transport', 'memory', '--once', '--json']);
  const { code } = await run.exited;
  expect(code, run.stderr).toBe(0);
  const lines = run.stdout.trim().split('\n');
  expect(lines).toHaveLength(1);
  const status = JSON.parse(lines[0] as string) as { leader: number; transport: string; reports: { role: string; leader: number }[] };
  expect(status.transport).toBe('memory');
  expect(status.leader).toBeGreaterThan(0);
  expect(status.reports.map((report) => report.leader)).toEqual([status.leader, status.leader, status.leader]);
  expect(status.reports.filter((report) => report.role === 'leader')).toHaveLength(1);
});

test.concurrent.each([
  [['--nodes', '0'], '--nodes must be between 1 and 15'],
  [['--transport', 'udp'], '--transport must be one of memory, tcp, ws'],
  [['--transport', 'memory', '--base-port', '7001'], '--base-port and --secret apply to tcp and ws only'],
  [['--duration', 'soon'], '--duration must be a number'],
  [['--frobnicate'], "unknown option '--frobnicate'"],
])('cluster up %j is a usage error (exit 2)', async (args, message) => {
  const run = await raftlabToEnd(['cluster', 'up', ...args]);
  expect(run.code).toBe(2);
  expect(run.stderr).toContain(message);
  expect(run.stdout).toBe('');
});

test('cluster up --transport memory --load commits the load through the leader', async () => {
  const run = raftlab(['cluster', 'up', '--transport', 'memory', '--load', '400', '--duration', '2', '--json', '--interval-ms', '100']);
  const { code } = await run.exited;
  expect(code, run.stderr).toBe(0);
  const last = JSON.parse(run.stdout.trim().split('\n').at(-1) as string) as { reports: { commit: number; machine: { value: string } }[] };
  const values = last.reports.map((report) => Number(report.machine.value));
  expect(Math.max(...values)).toBeGreaterThan(100);
  expect(last.reports.every((report) => report.commit > 100)).toBe(true);
});

describe('the status renderer', () => {
  const report = (id: number, role: 'leader' | 'follower', commit: number) => ({
    id,
    pid: 100 + id,
    role,
    term: 2,
    leader: 1,
    commit,
    applied: commit,
    lastIndex: commit,
    machine: { kind: 'sum' as const, value: String(commit), commands: commit },
    partitionedFrom: [],
    transport: { connectionsOpen: 4, framesMalformed: 0, handshakesRefused: 0 },
  });
  const snapshot = (commit: number, down = false): ClusterSnapshot => ({
    time: '12:00:00',
    transport: 'tcp',
    ids: [1, 2, 3],
    reports: [report(1, 'leader', commit), report(2, 'follower', commit), down ? null : report(3, 'follower', commit)],
  });

  test('on a terminal it redraws the table in place', () => {
    let out = '';
    const renderer = new StatusRenderer((text) => (out += text), 'tty');
    renderer.render(snapshot(5));
    expect(out).not.toContain('\x1b[');
    expect(out).toMatch(/leader 1 .*\n.*\n1 +101 +leader +2 +1 +5 +5 +5 +sum 5 +-\n/);
    out = '';
    renderer.render(snapshot(6, true));
    // Up over the five lines drawn (title, header, three rows), clear, draw again.
    expect(out.startsWith('\x1b[5F\x1b[0J')).toBe(true);
    expect(out).toContain('2 up, leader 1');
    expect(out).toMatch(/\n3 +- +down\n$/);
  });

  test('elsewhere it prints a block only when something changed (or every 10 s)', () => {
    let out = '';
    const renderer = new StatusRenderer((text) => (out += text), 'plain');
    renderer.render(snapshot(5), 0);
    renderer.render(snapshot(5), 500);
    expect(out.match(/^cluster:/gm)).toHaveLength(1);
    renderer.render(snapshot(6), 1000);
    renderer.render(snapshot(6), 11_500);
    expect(out.match(/^cluster:/gm)).toHaveLength(3);
    expect(out).not.toContain('\x1b[');
  });

  test('--json prints one object per refresh with the agreed leader', () => {
    let out = '';
    const renderer = new StatusRenderer((text) => (out += text), 'json');
    renderer.render(snapshot(5));
    renderer.render(snapshot(5));
    const lines = out.trim().split('\n').map((line) => JSON.parse(line) as { leader: number });
    expect(lines.map((line) => line.leader)).toEqual([1, 1]);
  });
});
