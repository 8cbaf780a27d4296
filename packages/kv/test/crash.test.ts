/**
 * Crash test: a 3-node KV cluster of real `kv serve` processes over TCP with the durable WAL (fsync
 * always) under write load from four clients; a nemesis kills a random node with SIGKILL (every
 * third kill the leader) and restarts it, RAFTLAB_CRASH_KILLS times (default 10; the soak,
 * `pnpm test:crash`, runs 50). At the end, with the load stopped and the nodes converged: every
 * write a client saw acknowledged is in every node's latest snapshot or the committed log after it, the WALs hold
 * byte-identical entries over their common range, the nodes report the same commit, applied and
 * last index, and the state machines agree (same key and session counts, same values for a sample
 * of keys read locally from each node). RAFTLAB_CRASH_SEED replays the nemesis's choices.
 */
import { readFileSync } from 'node:fs';
import { EntryReader, Prng, entryKindCode } from '@raftlab/core';
import { WalStorage } from '@raftlab/storage';
import { afterEach, describe, expect, test } from 'vitest';
import type { StatusResponse } from '../src/api.js';
import { KvClient } from '../src/client.js';
import { decodeCommand } from '../src/command.js';
import { KvMachine } from '../src/machine.js';
import { LocalCluster, requestJson } from '../src/launcher.js';

const kills = Number(process.env['RAFTLAB_CRASH_KILLS'] ?? 10);
const seed = Number(process.env['RAFTLAB_CRASH_SEED'] ?? Date.now() % 100_000);
const writerCount = 4;
/** Keys read back from every node to compare the state machines (all of them when fewer). */
const sampleKeysMax = 600;
const clusters: LocalCluster[] = [];

afterEach(async () => {
  await Promise.all(clusters.splice(0).map((cluster) => cluster.stop()));
});

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

interface Acknowledged {
  readonly key: string;
  readonly value: string;
}

/** One writer: unique keys, one put at a time, until told to stop; records what was acknowledged. */
async function writer(client: KvClient, id: number, running: () => boolean, acknowledged: Acknowledged[], counts: { failed: number }): Promise<void> {
  for (let n = 0; running(); n++) {
    const key = `w${id}-${n}`;
    const value = `value-${id}-${n}`;
    try {
      await client.put(key, value);
      acknowledged.push({ key, value });
    } catch {
      // Refused or indeterminate: it may or may not have happened; only acknowledgements are promised.
      counts.failed += 1;
    }
  }
}

/**
 * The committed puts of a node (key -> value): the keys of its latest snapshot (each key is written
 * once, so the snapshot's value is the put's), then the committed puts of its WAL after it; and the
 * WAL's entries by index. Read after the node stopped.
 */
async function readWal(directory: string, acknowledgedKeys: readonly Acknowledged[]): Promise<{ puts: Map<string, string>; frames: Map<number, Buffer>; commit: number; firstIndex: number; lastIndex: number }> {
  const wal = await WalStorage.open(directory);
  try {
    const state = await wal.load();
    if (state === null) throw new Error(`${directory}: empty WAL`);
    const entries = state.entries;
    const commit = state.hardState.commit;
    const firstIndex = (state.snapshot?.index ?? 0) + 1;
    const puts = new Map<string, string>();
    if (state.snapshot !== null && state.snapshot !== undefined) {
      const machine = new KvMachine();
      machine.restore(state.snapshot.data);
      for (const { key } of acknowledgedKeys) {
        const value = machine.read(key);
        if (value !== null) puts.set(key, value);
      }
    }
    const frames = new Map<number, Buffer>();
    let index = firstIndex;
    if (entries !== undefined && entries.count > 0) {
      const reader = new EntryReader().reset(entries);
      while (reader.next()) {
        frames.set(index, Buffer.from(reader.bytes.subarray(reader.frameOffset, reader.frameOffset + reader.frameLength)));
        if (index <= commit && reader.kind === entryKindCode.normal) {
          const decoded = decodeCommand(reader.data());
          if (decoded.ok && decoded.command.op === 'put') puts.set(decoded.command.key, decoded.command.value);
        }
        index += 1;
      }
    }
    return { puts, frames, commit, firstIndex, lastIndex: index - 1 };
  } finally {
    await wal.close();
  }
}

async function statuses(cluster: LocalCluster): Promise<(StatusResponse | null)[]> {
  return Promise.all(cluster.nodes.map((node) => cluster.status(node.id)));
}

/** Waits until every node answers and all report one commit = applied = last index. */
async function converge(cluster: LocalCluster, timeoutMs: number): Promise<StatusResponse[]> {
  const deadline = performance.now() + timeoutMs;
  let last: (StatusResponse | null)[] = [];
  while (performance.now() < deadline) {
    last = await statuses(cluster);
    const all = last.filter((status): status is StatusResponse => status !== null);
    if (all.length === cluster.nodes.length) {
      const first = all[0] as StatusResponse;
      if (all.every((status) => status.applied === first.applied && status.commit === first.commit && status.lastIndex === first.lastIndex && status.applied === status.commit)) return all;
    }
    await sleep(200);
  }
  throw new Error(`nodes did not converge within ${timeoutMs} ms: ${JSON.stringify(last.map((s) => s && { id: s.id, role: s.role, term: s.term, commit: s.commit, applied: s.applied, lastIndex: s.lastIndex }))}`);
}

interface CrashRun {
  readonly acknowledged: number;
  readonly failed: number;
  readonly leaderKills: number;
  /** Per node: acknowledged writes missing from its committed WAL log. */
  readonly missing: number[];
  /** Sampled acknowledged keys that some node does not serve with the acknowledged value. */
  readonly sampleMismatches: number;
  readonly keyCounts: number[];
  readonly sessionCounts: number[];
  readonly firstIndexes: number[];
  /** Indexes in the common WAL range whose entry bytes differ between nodes. */
  readonly framesDiffer: number;
  readonly commonRange: { readonly from: number; readonly to: number };
  readonly commit: number;
  readonly log: readonly string[];
  /** Snapshots the nodes installed from a leader, counted in their logs. */
  readonly snapshotInstalls: number;
  /** The checker itself could fail: a write no client made, or another value, is reported missing. */
  readonly checkerCanFail: boolean;
}

/** One crash run: load, kill -9 and restart `kills` times (the leader every `leaderEvery`-th kill), converge, read every WAL. */
async function crashRun(options: { kills: number; leaderEvery: number; serveArguments?: readonly string[]; readEveryKey?: boolean }): Promise<CrashRun> {
  const cluster = await LocalCluster.start({ nodes: 3, transport: 'tcp', durable: true, fsync: 'always', logLevel: 'info', serveArguments: options.serveArguments ?? [] });
  clusters.push(cluster);
  const prng = new Prng(seed);
  const acknowledged: Acknowledged[] = [];
  const counts = { failed: 0 };
  let running = true;
  const clients = Array.from({ length: writerCount }, () => new KvClient({ endpoints: cluster.endpoints, attemptTimeoutMs: 2000, operationTimeoutMs: 8000 }));
  const writers = clients.map((client, i) => writer(client, i + 1, () => running, acknowledged, counts));
  const log: string[] = [];
  let leaderKills = 0;
  try {
    await cluster.waitForLeader();
    for (let k = 1; k <= options.kills; k++) {
      const takeLeader = k % options.leaderEvery === 0;
      const leader = takeLeader ? await cluster.waitForLeader(20_000) : await cluster.leader();
      const target = takeLeader && leader !== 0 ? leader : 1 + prng.nextInt(3);
      const wasLeader = target === leader;
      if (wasLeader) leaderKills += 1;
      const before = acknowledged.length;
      await cluster.kill(target);
      await sleep(100 + prng.nextInt(500));
      await cluster.restart(target);
      await cluster.waitForLeader(20_000);
      await sleep(200 + prng.nextInt(600));
      log.push(`kill ${k}: n${target}${wasLeader ? ' (leader)' : ''}, ${acknowledged.length - before} writes acknowledged meanwhile`);
    }
  } finally {
    running = false;
    await Promise.all(writers);
    for (const client of clients) client.close();
  }
  const final = await converge(cluster, 30_000);

  // State machines, read locally from each node for a sample of acknowledged keys.
  const sample = options.readEveryKey === true || acknowledged.length <= sampleKeysMax ? acknowledged : Array.from({ length: sampleKeysMax }, () => acknowledged[prng.nextInt(acknowledged.length)] as Acknowledged);
  let sampleMismatches = 0;
  for (const node of cluster.nodes) {
    for (const { key, value } of sample) {
      const answer = await requestJson(`${node.url}/v1/kv/${encodeURIComponent(key)}?consistency=stale`);
      if (answer?.status !== 200 || (answer.body as { value: string }).value !== value) sampleMismatches += 1;
    }
  }

  // Logs: stop the nodes cleanly, then read every WAL.
  for (const node of cluster.nodes) await cluster.stopNode(node.id);
  const snapshotInstalls = cluster.nodes.reduce((total, node) => total + readFileSync(node.logPath, 'utf8').split('snapshot installed from the leader').length - 1, 0);
  const wals = await Promise.all(cluster.nodes.map((node) => readWal(node.dataDirectory as string, acknowledged)));
  const missingFrom = (puts: Map<string, string>, writes: readonly Acknowledged[]): number => writes.filter(({ key, value }) => puts.get(key) !== value).length;
  const probe = acknowledged[0] as Acknowledged;
  const checkerCanFail = missingFrom(wals[0]?.puts ?? new Map(), [{ key: 'never-written', value: 'x' }, { key: probe.key, value: `${probe.value}!` }]) === 2;
  const from = Math.max(...wals.map((wal) => wal.firstIndex));
  const to = Math.min(...wals.map((wal) => wal.lastIndex));
  let framesDiffer = 0;
  for (let index = from; index <= to; index++) {
    const reference = wals[0]?.frames.get(index);
    for (const wal of wals.slice(1)) if (reference === undefined || wal.frames.get(index)?.equals(reference) !== true) framesDiffer += 1;
  }
  return {
    acknowledged: acknowledged.length,
    failed: counts.failed,
    leaderKills,
    missing: wals.map((wal) => missingFrom(wal.puts, acknowledged)),
    sampleMismatches,
    keyCounts: final.map((status) => status.keys),
    sessionCounts: final.map((status) => status.sessions),
    firstIndexes: wals.map((wal) => wal.firstIndex),
    framesDiffer,
    commonRange: { from, to },
    commit: final[0]?.commit ?? 0,
    log,
    snapshotInstalls,
    checkerCanFail,
  };
}

describe('crash test', () => {
  test(
    `3 tcp nodes, ${writerCount} writers, ${kills} x kill -9 (leader included) + restart: no acknowledged write lost, logs and machines equal`,
    async () => {
      const started = performance.now();
      const run = await crashRun({ kills, leaderEvery: 3 });
      const seconds = ((performance.now() - started) / 1000).toFixed(1);
      console.log(
        `crash test seed ${seed}: ${kills} kills (${run.leaderKills} of the leader), ${run.acknowledged} writes acknowledged, ${run.failed} refused or indeterminate, ` +
          `final index ${run.commit}, WAL entries compared ${run.commonRange.from}..${run.commonRange.to}, ${seconds} s\n  ${run.log.join('\n  ')}`,
      );
      expect(run.checkerCanFail).toBe(true);
      expect(new Set(run.keyCounts).size, `key counts ${run.keyCounts.join(', ')}`).toBe(1);
      expect(new Set(run.sessionCounts).size).toBe(1);
      expect(run.sampleMismatches).toBe(0);
      expect(run.missing, 'acknowledged writes missing from each committed log').toEqual([0, 0, 0]);
      expect(run.commonRange.to).toBeGreaterThanOrEqual(run.commit);
      expect(run.framesDiffer).toBe(0);
      expect(run.leaderKills).toBeGreaterThanOrEqual(Math.floor(kills / 3));
      expect(run.acknowledged).toBeGreaterThan(kills * 10);
    },
    60_000 + kills * 8_000,
  );

  test('with a small compaction threshold the nodes snapshot, restart from snapshots and install them after kill -9; every acknowledged write reads back', async () => {
    const run = await crashRun({ kills: 4, leaderEvery: 2, serveArguments: ['--compact-entries', '300'], readEveryKey: true });
    console.log(`compaction crash run seed ${seed}: ${run.leaderKills} leader kills, ${run.acknowledged} acknowledged, first WAL indexes ${run.firstIndexes.join(', ')}, ${run.snapshotInstalls} snapshots installed from a leader, WAL entries compared ${run.commonRange.from}..${run.commonRange.to}\n  ${run.log.join('\n  ')}`);
    expect(run.firstIndexes.every((index) => index > 1), 'every node compacted its log').toBe(true);
    expect(run.snapshotInstalls, 'a restarted node behind the compacted prefix installed a snapshot').toBeGreaterThan(0);
    expect(run.acknowledged).toBeGreaterThan(600);
    expect(run.sampleMismatches, 'acknowledged writes not served with their value by some node').toBe(0);
    expect(run.missing, 'acknowledged writes missing from each snapshot + committed log').toEqual([0, 0, 0]);
    expect(new Set(run.keyCounts).size, `key counts ${run.keyCounts.join(', ')}`).toBe(1);
    expect(new Set(run.sessionCounts).size).toBe(1);
    expect(run.framesDiffer).toBe(0);
  }, 90_000);

  test('the crash test catches a planted bug: a leader acknowledging puts before a quorum holds them loses acknowledged writes', async () => {
    const run = await crashRun({ kills: 3, leaderEvery: 1, serveArguments: ['--planted-bug', 'ack-before-commit'] });
    console.log(`planted ack-before-commit: ${run.leaderKills} leader kills, ${run.acknowledged} acknowledged, missing per node ${run.missing.join(', ')}, sample mismatches ${run.sampleMismatches}`);
    expect(run.leaderKills).toBeGreaterThanOrEqual(2);
    expect(Math.min(...run.missing)).toBeGreaterThan(0);
  }, 90_000);
});
