/**
 * One conformance suite, run against the memory, TCP and WebSocket transports (the latter two as
 * real `raftlab node` processes with durable WALs): a cluster of three elects one leader that every
 * node follows (§5.2); 1000 commands replicate to every node, whose i64 sum states are then equal
 * (§5.3); a leader killed with SIGKILL (memory: its runtime stopped) is replaced and no committed
 * entry is lost (§5.4); the killed node restarts and catches up; a leader stopped gracefully hands
 * leadership over before it goes (its log says so, the next term's leader is already in place when
 * it has exited) and catches up once restarted; a leader cut off at the transport
 * (a minority of one) cannot commit, its proposals fail and its commit index stays put, while the
 * majority elects a leader and commits (§5.2, §6.2 check-quorum); once healed the old leader
 * catches up and every node holds the same state.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { NodeReport } from '../src/cluster/control.js';
import { type ClusterTransport, type LocalCluster, startCluster, waitForLeader } from '../src/cluster/local-cluster.js';
import { ControlRequestError } from '../src/cluster/node-channel.js';

async function waitUntil(check: () => Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** The reports of the running nodes. */
async function runningReports(cluster: LocalCluster): Promise<NodeReport[]> {
  const reports = await Promise.all(cluster.ids.filter((id) => cluster.isRunning(id)).map((id) => cluster.status(id)));
  return reports.filter((report): report is NodeReport => report !== null);
}

/** Every running node applied `commands` commands summing to `value`, through the same commit. */
async function converged(cluster: LocalCluster, value: bigint, commands: number): Promise<boolean> {
  const reports = await runningReports(cluster);
  const running = cluster.ids.filter((id) => cluster.isRunning(id)).length;
  return (
    reports.length === running &&
    reports.every(
      (report) => report.machine.kind === 'sum' && report.machine.value === value.toString() && report.machine.commands === commands && report.applied === report.commit && report.commit === (reports[0] as NodeReport).commit,
    )
  );
}

describe.each(['memory', 'tcp', 'ws'] as const)('%s transport', (transport: ClusterTransport) => {
  let cluster: LocalCluster;
  let dataDirectory: string;
  /** The sum and command count the cluster committed so far. */
  let value = 0n;
  let commands = 0;
  let killed = 0;

  beforeAll(async () => {
    dataDirectory = mkdtempSync(path.join(os.tmpdir(), 'raftlab-conformance-'));
    cluster = await startCluster({
      nodes: 3,
      transport,
      // Processes restart from their WAL; memory nodes keep their MemoryStorage across a kill.
      ...(transport === 'memory' ? {} : { dataDirectory }),
      fsync: 'batch',
      proposalTimeoutMs: 1500,
    });
  });

  afterAll(async () => {
    await cluster?.stop();
    rmSync(dataDirectory, { recursive: true, force: true });
  });

  test('elects one leader that every node follows (§5.2)', async () => {
    const leader = await waitForLeader(cluster);
    expect(leader.term).toBeGreaterThan(0);
    const reports = await runningReports(cluster);
    expect(reports.map((report) => report.leader)).toEqual([leader.id, leader.id, leader.id]);
    expect(reports.filter((report) => report.role === 'leader')).toHaveLength(1);
  });

  test('replicates 1000 commands to every node, whose states are then equal (§5.3)', async () => {
    const leader = await waitForLeader(cluster);
    // Ten concurrent batches of 100: several appends in flight at once.
    const batches = Array.from({ length: 10 }, (_, batch) => Array.from({ length: 100 }, (_, index) => String(batch * 100 + index + 1)));
    const results = await Promise.all(batches.map((batch) => cluster.propose(leader.id, batch)));
    expect(results.reduce((total, result) => total + result.count, 0)).toBe(1000);
    value += 500_500n;
    commands += 1000;
    await waitUntil(() => converged(cluster, value, commands), 'every node to apply the 1000 commands');
    const reports = await runningReports(cluster);
    expect(new Set(reports.map((report) => JSON.stringify(report.machine))).size).toBe(1);
    expect((reports[0] as NodeReport).commit).toBeGreaterThanOrEqual(1001);
  });

  test(`a killed leader (${transport === 'memory' ? 'runtime stopped' : 'SIGKILL'}) is replaced and no committed entry is lost (§5.4)`, async () => {
    const old = await waitForLeader(cluster);
    await cluster.kill(old.id);
    killed = old.id;
    const survivors = cluster.ids.filter((id) => id !== old.id);
    const leader = await waitForLeader(cluster, 10_000, survivors);
    expect(leader.id).not.toBe(old.id);
    expect(leader.term).toBeGreaterThan(old.term);
    // Everything the old leader had committed is still there: same state, commit not behind.
    expect(leader.commit).toBeGreaterThanOrEqual(old.commit);
    expect(leader.machine).toEqual(old.machine);
    // And the new leader commits on top of it.
    await cluster.propose(leader.id, Array.from({ length: 100 }, () => '7'));
    value += 700n;
    commands += 100;
    await waitUntil(() => converged(cluster, value, commands), 'the survivors to apply 100 more commands');
  });

  test('the killed node restarts and catches up', async () => {
    expect(killed).not.toBe(0);
    expect(cluster.isRunning(killed)).toBe(false);
    await cluster.restart(killed);
    await waitUntil(() => converged(cluster, value, commands), `node ${killed} to catch up after its restart`);
    const restarted = (await cluster.status(killed)) as NodeReport;
    expect(restarted.machine).toEqual({ kind: 'sum', value: value.toString(), commands });
    await waitForLeader(cluster);
  });

  test('a leader stopped gracefully hands leadership over before it stops (thesis §3.10), then restarts and catches up', async () => {
    const old = await waitForLeader(cluster);
    await cluster.stopNode(old.id);
    // The transfer finished before the stop did: the survivors already follow a leader of the next term.
    const survivors = cluster.ids.filter((id) => id !== old.id);
    const leader = await waitForLeader(cluster, 10_000, survivors);
    expect(leader.term).toBeGreaterThan(old.term);
    await waitUntil(async () => /leadership transfer(red)? before stopping/.test(cluster.logText(old.id)), `node ${old.id} to log the transfer`, 5000);
    const log = cluster.logText(old.id);
    expect(log, log.slice(-3000)).toContain('leadership transferred before stopping');
    await cluster.propose(leader.id, ['5']);
    value += 5n;
    commands += 1;
    await cluster.restart(old.id);
    await waitUntil(() => converged(cluster, value, commands), `node ${old.id} to catch up after its graceful stop`);
  });

  test('a leader cut off as a minority cannot commit while the majority continues; healed, it catches up', async () => {
    const old = await waitForLeader(cluster);
    await cluster.partition(old.id);
    const frozen = ((await cluster.status(old.id)) as NodeReport).commit;

    // The minority: its proposal fails (timeout, or not-leader once check-quorum deposed it).
    const failure = await cluster.propose(old.id, ['1000000']).then(
      () => null,
      (error: unknown) => error,
    );
    expect(failure).toBeInstanceOf(ControlRequestError);
    expect(['timeout', 'not-leader', 'dropped']).toContain((failure as ControlRequestError).code);

    // The majority elects a leader among itself and commits.
    const majority = cluster.ids.filter((id) => id !== old.id);
    const leader = await waitForLeader(cluster, 10_000, majority);
    expect(leader.id).not.toBe(old.id);
    await cluster.propose(leader.id, Array.from({ length: 50 }, () => '-3'));
    value -= 150n;
    commands += 50;
    const cutOff = (await cluster.status(old.id)) as NodeReport;
    expect(cutOff.commit).toBe(frozen);
    expect(cutOff.role).not.toBe('leader');
    expect(cutOff.partitionedFrom).toEqual(majority);

    // Healed: the old leader's uncommitted entry is replaced and it catches up.
    await cluster.heal();
    await waitUntil(() => converged(cluster, value, commands), `node ${old.id} to catch up after the heal`);
    await waitForLeader(cluster);
    const reports = await runningReports(cluster);
    expect(reports).toHaveLength(3);
    expect(new Set(reports.map((report) => `${report.commit}:${JSON.stringify(report.machine)}`)).size).toBe(1);
  });
});
