/**
 * Crash test: a 3-node KV cluster of real `kv serve` processes over TCP with the durable WAL (fsync
 * always) under write load from four clients; a nemesis kills a random node with SIGKILL (every
 * third kill the leader) and restarts it, RAFTLAB_CRASH_KILLS times (default 10; the soak,
 * `pnpm test:crash`, runs 50). At the end, with the load stopped and the nodes converged: every
 * write a client saw acknowledged is in the committed log of every node's WAL, the WALs hold
 * byte-identical entries over their common range, the nodes report the same commit, applied and
 * last index, and the state machines agree (same key and session counts, same values for a sample
 * of keys read locally from each node). RAFTLAB_CRASH_SEED replays the nemesis's choices.
 */
import { EntryReader, Prng, entryKindCode } from '@raftlab/core';
import { WalStorage } from '@raftlab/storage';
import { afterEach, describe, expect, test } from 'vitest';
import type { StatusResponse } from '../src/api.js';
import { KvClient } from '../src/client.js';
import { decodeCommand } from '../src/command.js';
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

/** The committed puts in a node's WAL (key -> value) and its entries by index, read after the node stopped. */
async function readWal(directory: string): Promise<{ puts: Map<string, string>; frames: Map<number, Buffer>; commit: number; firstIndex: number; lastIndex: number }> {
  const wal = await WalStorage.open(directory);
  try {
    const state = await wal.load();
    if (state === null) throw new Error(`${directory}: empty WAL`);
    const entries = state.entries;
    const commit = state.hardState.commit;
    const firstIndex = (state.snapshot?.index ?? 0) + 1;
    const puts = new Map<string, string>();
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

describe('crash test', () => {
  test(
    `3 tcp nodes, ${writerCount} writers, ${kills} x kill -9 (leader included) + restart: no acknowledged write lost, logs and machines equal`,
    async () => {
      const started = performance.now();
      const cluster = await LocalCluster.start({ nodes: 3, transport: 'tcp', durable: true, fsync: 'always' });
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
        for (let k = 1; k <= kills; k++) {
          // Every third kill takes the leader: wait until one is known.
          const leader = k % 3 === 0 ? await cluster.waitForLeader(20_000) : await cluster.leader();
          const target = k % 3 === 0 && leader !== 0 ? leader : 1 + prng.nextInt(3);
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

      // State machines: same counts, same values for a sample of keys, read locally from each node.
      const keys = final.map((status) => status.keys);
      expect(new Set(keys).size, `key counts ${keys.join(', ')}`).toBe(1);
      expect(new Set(final.map((status) => status.sessions)).size).toBe(1);
      const sample = acknowledged.length <= sampleKeysMax ? acknowledged : Array.from({ length: sampleKeysMax }, () => acknowledged[prng.nextInt(acknowledged.length)] as Acknowledged);
      for (const node of cluster.nodes) {
        for (const { key, value } of sample) {
          const answer = await requestJson(`${node.url}/v1/kv/${encodeURIComponent(key)}?consistency=stale`);
          expect(answer?.status, `n${node.id} ${key}`).toBe(200);
          expect((answer?.body as { value: string }).value, `n${node.id} ${key}`).toBe(value);
        }
      }

      // Logs: stop the nodes cleanly, then read every WAL.
      for (const node of cluster.nodes) await cluster.stopNode(node.id);
      const wals = await Promise.all(cluster.nodes.map((node) => readWal(node.dataDirectory as string)));
      const missingFrom = (puts: Map<string, string>, writes: readonly Acknowledged[]): Acknowledged[] => writes.filter(({ key, value }) => puts.get(key) !== value);
      // The comparison can fail: a write no client made, or one with another value, is reported.
      const probe = acknowledged[0] as Acknowledged;
      expect(missingFrom(wals[0]?.puts ?? new Map(), [{ key: 'never-written', value: 'x' }, { key: probe.key, value: `${probe.value}!` }])).toHaveLength(2);
      for (const [i, wal] of wals.entries()) {
        const node = cluster.nodes[i];
        const missing = missingFrom(wal.puts, acknowledged);
        // Writes below a snapshot are checked by the reads above; none is expected at this size.
        expect(wal.firstIndex, `n${node?.id} compacted`).toBe(1);
        expect(missing.slice(0, 5), `n${node?.id}: ${missing.length} acknowledged writes missing from the committed log`).toEqual([]);
      }
      const from = Math.max(...wals.map((wal) => wal.firstIndex));
      const to = Math.min(...wals.map((wal) => wal.lastIndex));
      expect(to).toBeGreaterThanOrEqual(final[0]?.commit ?? 0);
      for (let index = from; index <= to; index++) {
        const reference = wals[0]?.frames.get(index);
        for (const wal of wals.slice(1)) expect(wal.frames.get(index)?.equals(reference as Buffer), `entry ${index} differs`).toBe(true);
      }

      const seconds = ((performance.now() - started) / 1000).toFixed(1);
      console.log(
        `crash test seed ${seed}: ${kills} kills (${leaderKills} of the leader), ${acknowledged.length} writes acknowledged, ${counts.failed} refused or indeterminate, ` +
          `final index ${final[0]?.commit}, WAL entries compared ${from}..${to}, ${seconds} s\n  ${log.join('\n  ')}`,
      );
      expect(leaderKills).toBeGreaterThanOrEqual(Math.floor(kills / 3));
      expect(acknowledged.length).toBeGreaterThan(kills * 10);
    },
    60_000 + kills * 8_000,
  );
});
