/**
 * Jepsen-style test: 12 concurrent clients (half pinned to one node, half finding the leader) run
 * reads, writes and compare-and-sets on 3 keys against a 3-node cluster of real `kv serve` processes
 * over TCP with the durable WAL (fsync always), while a nemesis cuts nodes off at the transport level
 * (the leader among them) and kills them with SIGKILL and restarts them. The recorded history is
 * linearizable: zero violations. The same workload against nodes with a planted bug (followers answer
 * reads from their own, possibly stale, state) is caught by the checker, which proves the check can
 * fail. RAFTLAB_JEPSEN_MS sets the workload's length (default 40 s); RAFTLAB_JEPSEN_NODES=5 runs five nodes.
 */
import { afterEach, describe, expect, test } from 'vitest';
import { describeJepsen, runJepsen } from '../src/jepsen.js';
import { LocalCluster } from '../src/launcher.js';

const durationMs = Number(process.env['RAFTLAB_JEPSEN_MS'] ?? 40_000);
const nodeCount = Number(process.env['RAFTLAB_JEPSEN_NODES'] ?? 3);
const clusters: LocalCluster[] = [];

afterEach(async () => {
  await Promise.all(clusters.splice(0).map((cluster) => cluster.stop()));
});

describe('Jepsen-style test', () => {
  test(
    `${nodeCount} tcp nodes, 12 clients, partitions and kill -9 + restart: the history is linearizable`,
    async () => {
      const cluster = await LocalCluster.start({ nodes: nodeCount, transport: 'tcp', durable: true, fsync: 'always' });
      clusters.push(cluster);
      const seed = Number(process.env['RAFTLAB_JEPSEN_SEED'] ?? Date.now() % 100_000);
      const result = await runJepsen({ cluster, durationMs, seed, clientCount: 12, keyCount: 3 });
      console.log(`jepsen seed ${seed}\n${describeJepsen(result)}`);
      const faults = result.events.filter((event) => event.action === 'partition' || event.action === 'kill');
      expect(faults.some((event) => event.action === 'partition')).toBe(true);
      expect(faults.some((event) => event.action === 'kill')).toBe(true);
      expect(faults.some((event) => event.wasLeader)).toBe(true);
      // The run did real work under the faults, not just refusals.
      expect(result.counts.completed).toBeGreaterThan(1000);
      expect(result.counts.casSucceeded).toBeGreaterThan(0);
      expect(result.check.outcome, result.check.ok ? '' : 'explanation' in result.check ? result.check.explanation : '').toBe('linearizable');
    },
    durationMs + 60_000,
  );

  test(
    'the checker catches a planted bug: followers answering reads from local state',
    async () => {
      const cluster = await LocalCluster.start({ nodes: 3, transport: 'tcp', durable: true, fsync: 'always', serveArguments: ['--planted-bug', 'stale-follower-reads'] });
      clusters.push(cluster);
      const result = await runJepsen({ cluster, durationMs: 8000, seed: 1, clientCount: 12, keyCount: 3, faults: ['partition'], faultMs: 2500, quietMs: 500 });
      console.log(`planted bug run\n${describeJepsen(result)}`);
      expect(result.check.outcome).toBe('violation');
      if (result.check.outcome !== 'violation') return;
      // The culprit is a read that returned a value some completed write had already replaced.
      expect(result.check.unplaced.operation.input.op).toBe('read');
    },
    60_000,
  );
});
