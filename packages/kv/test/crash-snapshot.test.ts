/**
 * InstallSnapshot end to end: three KV nodes in this process over TCP (so through the wire codec),
 * each with its WAL in a temporary directory, compacting every 100 entries and sending snapshots in
 * chunks of at most 512 bytes. A node cut off while the others take 600 writes and compact them
 * away is caught up by a snapshot of many chunks: afterwards it holds every acknowledged value, and
 * after a restart it resumes from the snapshot in its WAL with the same values. (Restarts by kill -9
 * are crash.test.ts's subject; this one stops the node cleanly.)
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { NodeId } from '@raftlab/core';
import { WalStorage } from '@raftlab/storage';
import { type PeerAddress, TcpTransport } from '@raftlab/transport';
import { afterEach, describe, expect, test } from 'vitest';
import { KvClient } from '../src/client.js';
import { freePort, requestJson } from '../src/launcher.js';
import { startKvNode } from '../src/node.js';
import type { KvServer } from '../src/server.js';
import { waitFor } from './cluster.js';

const chunkBytes = 512;
const ids: readonly NodeId[] = [1, 2, 3];
const cleanups: (() => Promise<void>)[] = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

interface TestNode {
  server: KvServer;
  storage: WalStorage;
}

describe('chunked InstallSnapshot over TCP with the WAL', () => {
  test('a node cut off past the compacted prefix catches up by a chunked snapshot and restarts from it', async () => {
    const root = mkdtempSync(path.join(os.tmpdir(), 'raftlab-snapshot-'));
    cleanups.push(async () => rmSync(root, { recursive: true, force: true }));
    const peers = new Map<NodeId, PeerAddress>();
    for (const id of ids) peers.set(id, { host: '127.0.0.1', port: await freePort() });
    const httpPeers = new Map<NodeId, string>();
    const nodes = new Map<NodeId, TestNode>();
    let directory = path.join(root, 'attempt-1');
    const start = async (id: NodeId): Promise<TestNode> => {
      const storage = await WalStorage.open(path.join(directory, `node-${id}`), { fsyncPolicy: 'batch' });
      const transport = new TcpTransport({ id, clusterId: 'snapshot-test', secret: 'snapshot-test-secret', listen: peers.get(id) as PeerAddress, peers });
      const server = await startKvNode({
        id,
        peers: ids,
        transport,
        storage,
        tickIntervalMs: 5,
        raft: { bounds: { snapshotChunkBytesMax: chunkBytes } },
        compaction: { entriesMin: 100, bytesMin: 1 << 30 },
        http: { httpPeers },
      });
      httpPeers.set(id, server.url);
      const node = { server, storage };
      nodes.set(id, node);
      return node;
    };
    const stopAll = async (): Promise<void> => {
      await Promise.all([...nodes.values()].map((node) => (node.server.isShuttingDown ? Promise.resolve() : node.server.shutdown({ transferLeadership: false }))));
    };
    cleanups.push(stopAll);
    // freePort releases the port before the node takes it; another process may win that race.
    for (let attempt = 1; ; attempt++) {
      try {
        for (const id of ids) await start(id);
        break;
      } catch (error) {
        if (attempt === 3 || !String(error).includes('EADDRINUSE')) throw error;
        await stopAll();
        nodes.clear();
        // A fresh directory: a WAL left open by the failed start keeps its directory in this process.
        directory = path.join(root, `attempt-${attempt + 1}`);
        for (const id of ids) peers.set(id, { host: '127.0.0.1', port: await freePort() });
      }
    }
    const runtime = (id: NodeId) => (nodes.get(id) as TestNode).server.service.runtime;
    // Any leader will do: if it is node 3, nodes 1 and 2 elect another once it is cut off.
    await waitFor('a leader', () => (ids.some((id) => runtime(id).node.role === 'leader') ? true : undefined), 10_000);

    // Cut node 3 off and write past several compactions.
    runtime(3).partition([1, 2]);
    runtime(1).partition([3]);
    runtime(2).partition([3]);
    const lastBefore = runtime(3).node.lastIndex;
    const client = new KvClient({ endpoints: [(nodes.get(1) as TestNode).server.url, (nodes.get(2) as TestNode).server.url] });
    const written = new Map<string, string>();
    try {
      await Promise.all(
        Array.from({ length: 4 }, async (_, w) => {
          for (let n = 0; n < 150; n++) {
            const key = `k${w}-${n}`;
            const value = `${'v'.repeat(40)}-${w}-${n}`;
            await client.put(key, value);
            written.set(key, value);
          }
        }),
      );
    } finally {
      client.close();
    }
    const leaderId = await waitFor('a leader among 1 and 2', () => ([1, 2] as const).find((id) => runtime(id).node.role === 'leader'), 10_000);
    const leaderSnapshot = runtime(leaderId).node.latestSnapshot;
    expect(leaderSnapshot).not.toBeNull();
    expect(runtime(leaderId).node.firstIndex).toBeGreaterThan(lastBefore + 1); // node 3 needs a snapshot
    expect(leaderSnapshot?.data.length).toBeGreaterThan(4 * chunkBytes); // of several chunks

    // Heal: node 3 is caught up by the chunked snapshot, then by appends.
    runtime(1).heal();
    runtime(2).heal();
    runtime(3).heal();
    const target = runtime(leaderId).node.commitIndex;
    await waitFor('node 3 caught up', () => (runtime(3).node.appliedIndex >= target ? true : undefined), 20_000);
    const installed = runtime(3).node.latestSnapshot;
    expect(installed?.index).toBeGreaterThanOrEqual(leaderSnapshot?.index ?? Number.POSITIVE_INFINITY);
    const readAll = async (url: string): Promise<string[]> => {
      const wrong: string[] = [];
      for (const [key, value] of written) {
        const answer = await requestJson(`${url}/v1/kv/${encodeURIComponent(key)}?consistency=stale`);
        if (answer?.status !== 200 || (answer.body as { value: string }).value !== value) wrong.push(key);
      }
      return wrong;
    };
    expect(await readAll((nodes.get(3) as TestNode).server.url)).toEqual([]);

    // Restart node 3 from its WAL.
    await (nodes.get(3) as TestNode).server.shutdown({ transferLeadership: false });
    const restarted = await start(3);
    expect(restarted.server.service.runtime.node.firstIndex).toBeGreaterThan(1); // resumed from a snapshot
    await waitFor('node 3 applied again', () => (runtime(3).node.appliedIndex >= target ? true : undefined), 20_000);
    expect(await readAll(restarted.server.url)).toEqual([]);
  }, 60_000);
});
