/**
 * A Jepsen-style test of the KV service: concurrent clients run reads (linearizable, and some lease
 * reads), writes and compare-and-sets on a few keys against a LocalCluster of node processes while a
 * nemesis cuts nodes off at the Raft transport level and kills (SIGKILL) and restarts them; every
 * operation is recorded with its invocation and response times, and the history is checked with
 * checkLinearizability.
 *
 * Recording follows Jepsen's rules. An operation that returned is recorded with its output. A read
 * that failed did nothing observable and is left out. A write or cas whose failure is definite (no
 * attempt can have reached a server) is left out too; one whose outcome is unknown (a timeout, a
 * 503 after the request may have been proposed) stays pending: no return, no output, so the checker
 * lets it take effect at any point after its call, or never. The client then continues under a new
 * process name, as a crashed Jepsen process would.
 *
 * Each write's value is unique (client, sequence), so a stale or lost write shows up as a value that
 * no linearization can explain.
 */
import { type NodeId, Prng } from '@raftlab/core';
import { KvClient, KvClientError } from './client.js';
import type { LocalCluster } from './launcher.js';
import { type CheckResult, type HistoryOperation, type RegisterInput, type RegisterOutput, checkLinearizability } from './linearizability.js';

/** The faults the nemesis injects. */
export type NemesisFault = 'partition' | 'partition-leader' | 'kill' | 'kill-leader';

/** Options of runJepsen. */
export interface JepsenOptions {
  readonly cluster: LocalCluster;
  /** Concurrent clients (default 12). */
  readonly clientCount?: number;
  /** Keys the clients share (default 3). */
  readonly keyCount?: number;
  /** How long clients invoke new operations. */
  readonly durationMs: number;
  /** Seed of every random choice (operations, nemesis targets). */
  readonly seed: number;
  /** Share of reads (default 0.5); writes and cas split the rest evenly. */
  readonly readShare?: number;
  /** Share of the reads that ask for lease consistency instead of linearizable (default 0.25). */
  readonly leaseReadShare?: number;
  /**
   * Share of clients pinned to one node without leader discovery (default 0.5): they read and write
   * through that node, so followers' forwarding and refusals are exercised.
   */
  readonly pinnedShare?: number;
  /** Faults the nemesis cycles through (default all); empty: no nemesis. */
  readonly faults?: readonly NemesisFault[];
  /** How long a fault lasts (default 3000 ms). */
  readonly faultMs?: number;
  /** Quiet time between faults (default 1500 ms). */
  readonly quietMs?: number;
  /** Deadline of one client operation, retries included (default 4000 ms). */
  readonly operationTimeoutMs?: number;
  /** Progress lines (nemesis events) go here. */
  readonly log?: (line: string) => void;
}

/** One nemesis action. */
export interface NemesisEvent {
  /** Milliseconds since the run started. */
  readonly atMs: number;
  readonly action: 'partition' | 'heal' | 'kill' | 'restart';
  readonly node: NodeId;
  /** Whether the node led when the fault began (for partition and kill). */
  readonly wasLeader: boolean;
}

/** Counts of a run. */
export interface JepsenCounts {
  readonly invoked: number;
  /** Operations that returned (reads, writes, cas with either outcome). */
  readonly completed: number;
  readonly reads: number;
  readonly writes: number;
  readonly casSucceeded: number;
  readonly casFailed: number;
  /** Writes and cas whose outcome is unknown: recorded as pending. */
  readonly indeterminate: number;
  /** Operations that definitely did nothing: left out of the history. */
  readonly failed: number;
}

/** What runJepsen returns. */
export interface JepsenResult {
  readonly history: readonly HistoryOperation[];
  readonly events: readonly NemesisEvent[];
  readonly counts: JepsenCounts;
  readonly check: CheckResult;
  readonly clientCount: number;
  readonly durationMs: number;
  /** Wall time of the check. */
  readonly checkMs: number;
}

interface MutableCounts {
  invoked: number;
  completed: number;
  reads: number;
  writes: number;
  casSucceeded: number;
  casFailed: number;
  indeterminate: number;
  failed: number;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
}

/** Runs the workload and the nemesis, then checks the history (see the file comment). */
export async function runJepsen(options: JepsenOptions): Promise<JepsenResult> {
  const cluster = options.cluster;
  const clientCount = options.clientCount ?? 12;
  const keys = Array.from({ length: options.keyCount ?? 3 }, (_, k) => `jepsen-${k}`);
  const readShare = options.readShare ?? 0.5;
  const leaseReadShare = options.leaseReadShare ?? 0.25;
  const pinnedCount = Math.round(clientCount * (options.pinnedShare ?? 0.5));
  const log = options.log ?? (() => undefined);
  const origin = performance.now();
  const deadline = origin + options.durationMs;
  const history: HistoryOperation[] = [];
  const counts: MutableCounts = { invoked: 0, completed: 0, reads: 0, writes: 0, casSucceeded: 0, casFailed: 0, indeterminate: 0, failed: 0 };
  const events: NemesisEvent[] = [];
  const endpoints = cluster.endpoints;

  const clients = Array.from({ length: clientCount }, (_, c) => {
    const pinned = c < pinnedCount;
    return new KvClient({
      endpoints: pinned ? [endpoints[c % endpoints.length] as string] : endpoints,
      discoverLeader: !pinned,
      attemptTimeoutMs: 1000,
      operationTimeoutMs: options.operationTimeoutMs ?? 4000,
      backoffMsMin: 10,
      backoffMsMax: 200,
    });
  });

  const runClient = async (c: number): Promise<void> => {
    const client = clients[c] as KvClient;
    const prng = new Prng(options.seed * 1000 + c + 1);
    let generation = 0;
    let sequence = 0;
    const lastSeen = new Map<string, string | null>();
    while (performance.now() < deadline) {
      const key = keys[prng.nextInt(keys.length)] as string;
      const roll = prng.nextFloat();
      let input: RegisterInput;
      if (roll < readShare) input = { op: 'read', key };
      else if (roll < readShare + (1 - readShare) / 2) input = { op: 'write', key, value: `c${c}-${++sequence}` };
      else input = { op: 'cas', key, expected: lastSeen.get(key) ?? null, value: `c${c}-${++sequence}` };
      const clientId = `${c}.${generation}`;
      counts.invoked += 1;
      const call = performance.now() - origin;
      try {
        let output: RegisterOutput;
        switch (input.op) {
          case 'read': {
            const value = await client.get(key, { consistency: prng.chance(leaseReadShare) ? 'lease' : 'linearizable' });
            lastSeen.set(key, value);
            output = { value };
            counts.reads += 1;
            break;
          }
          case 'write': {
            const result = await client.put(key, input.value as string);
            lastSeen.set(key, input.value);
            output = { previous: result.previous };
            counts.writes += 1;
            break;
          }
          case 'cas': {
            const result = await client.cas(key, input.expected, input.value);
            if (result.ok) {
              lastSeen.set(key, input.value);
              counts.casSucceeded += 1;
              output = { ok: true };
            } else {
              lastSeen.set(key, result.actual);
              counts.casFailed += 1;
              output = { ok: false, actual: result.actual };
            }
            break;
          }
        }
        counts.completed += 1;
        history.push({ clientId, input, call, output, return: performance.now() - origin });
      } catch (error) {
        if (!(error instanceof KvClientError)) throw error;
        if (input.op !== 'read' && error.indeterminate) {
          // May have taken effect, at any time after the call, or never.
          history.push({ clientId, input, call });
          counts.indeterminate += 1;
          generation += 1;
        } else {
          counts.failed += 1;
        }
        await sleep(20);
      }
    }
  };

  const runNemesis = async (): Promise<void> => {
    const faults = options.faults ?? (['partition', 'kill', 'partition-leader', 'kill-leader'] as const);
    if (faults.length === 0) return;
    const prng = new Prng(options.seed * 7919 + 17);
    const faultMs = options.faultMs ?? 3000;
    const quietMs = options.quietMs ?? 1500;
    const ids = cluster.nodes.map((node) => node.id);
    const record = (action: NemesisEvent['action'], node: NodeId, wasLeader: boolean): void => {
      const event = { atMs: Math.round(performance.now() - origin), action, node, wasLeader };
      events.push(event);
      log(`nemesis +${(event.atMs / 1000).toFixed(1)}s ${action} node ${node}${wasLeader ? ' (the leader)' : ''}`);
    };
    for (let round = 0; performance.now() + faultMs < deadline; round++) {
      await sleep(quietMs);
      if (performance.now() + faultMs >= deadline) break;
      const fault = faults[round % faults.length] as NemesisFault;
      const leader = await cluster.leader();
      const target = fault.endsWith('-leader') && leader !== 0 ? leader : (ids[prng.nextInt(ids.length)] as NodeId);
      const wasLeader = target === leader;
      if (fault.startsWith('partition')) {
        await cluster.partition(target);
        record('partition', target, wasLeader);
        await sleep(faultMs);
        await cluster.heal();
        record('heal', target, false);
      } else {
        await cluster.kill(target);
        record('kill', target, wasLeader);
        await sleep(faultMs);
        await cluster.restart(target);
        record('restart', target, false);
      }
    }
  };

  try {
    await Promise.all([runNemesis(), ...clients.map((_, c) => runClient(c))]);
  } finally {
    for (const client of clients) client.close();
  }
  const checkStarted = performance.now();
  const check = checkLinearizability(history);
  return { history, events, counts, check, clientCount, durationMs: options.durationMs, checkMs: performance.now() - checkStarted };
}

/** A one-paragraph summary of a run. */
export function describeJepsen(result: JepsenResult): string {
  const { counts, events, check } = result;
  const faults = events.filter((event) => event.action === 'partition' || event.action === 'kill');
  const verdict =
    check.outcome === 'linearizable'
      ? 'linearizable: 0 violations'
      : check.outcome === 'violation'
        ? `NOT linearizable on key ${check.key}:\n${check.explanation}`
        : `unknown (search bound reached on key ${check.key})`;
  return [
    `${result.clientCount} clients, ${(result.durationMs / 1000).toFixed(0)} s: ${counts.invoked} operations invoked, ${counts.completed} completed`,
    `(${counts.reads} reads, ${counts.writes} writes, ${counts.casSucceeded} cas ok, ${counts.casFailed} cas failed), ${counts.indeterminate} indeterminate, ${counts.failed} failed cleanly;`,
    `nemesis: ${faults.length} faults (${faults.filter((event) => event.action === 'partition').length} partitions, ${faults.filter((event) => event.action === 'kill').length} kill -9 + restart, ${faults.filter((event) => event.wasLeader).length} on the leader);`,
    `history of ${result.history.length} operations checked in ${result.checkMs.toFixed(0)} ms (${check.searchSteps} search steps): ${verdict}`,
  ].join('\n');
}
