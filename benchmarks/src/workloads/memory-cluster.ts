/**
 * A deterministic in-memory cluster workload on the bare core: real RaftNodes, messages handed
 * directly from node to node within the same turn (the zero-copy path: a follower copies the
 * leader's ring bytes once, into its own ring), Ready cycles run by hand, committed entries applied
 * with an EntryReader into a checksum.
 *
 * It has no clock and no randomness beyond the seeds, so the figures it prints are exact and the
 * instructions it executes repeat closely under valgrind: the regression gate (scripts/src/check.ts)
 * runs it small, and the profiler (scripts/src/profile.ts) runs it large.
 *
 *   node benchmarks/dist/workloads/memory-cluster.js [--nodes 3] [--batches 100] [--batch 1000]
 *        [--entry-bytes 16] [--election-trials 10] [--compact-every 1]
 *
 * stdout: one JSON line of deterministic figures (messagesPerEntry, ticksToElect, checksum, ...).
 * Every field is compared exactly by the gate, so nothing timing-dependent is printed here.
 *
 * Planted regressions (to prove the gate catches them), chosen by RAFTLAB_PLANT_SLOWDOWN:
 *   - copy: the apply path copies every committed entry's data once more (a fresh Uint8Array per
 *     entry, the classic "state machine keeps a private copy" regression). The figures stay
 *     identical; only the instruction count grows.
 *   - duplicate: every message is delivered twice (legal in Raft, so the run still converges), so
 *     messagesPerEntry doubles: the exact figures change, which the gate must catch.
 */
import { pathToFileURL } from 'node:url';

import { AssertionError, EntryReader, type NodeId, RaftNode, type RemoteMessage, assert, entryKindCode } from '@raftlab/core';

/** Regressions the workload can plant: none, an extra copy per entry, or duplicated messages. */
export type PlantedSlowdown = 'none' | 'copy' | 'duplicate';

const plantedSlowdowns: readonly PlantedSlowdown[] = ['none', 'copy', 'duplicate'];

/** Sizes of one run. */
export interface MemoryClusterOptions {
  /** Voters in the cluster. */
  readonly nodes: number;
  /** Proposal batches: each is proposed in one turn, then replicated and applied. */
  readonly batches: number;
  /** Entries proposed per batch (B in the 2(N-1)/B message minimum). */
  readonly batch: number;
  /** Data bytes per entry. */
  readonly entryBytes: number;
  /** Cold-start elections, each from its own seeds, to measure ticks to the first leader. */
  readonly electionTrials: number;
  /** Compact every node's log after this many batches (0: never), so long runs stay bounded. */
  readonly compactEvery: number;
  /** A regression planted to prove the gate catches it (see the file comment). */
  readonly plantSlowdown: PlantedSlowdown;
}

/** The exact, deterministic figures of one run. */
export interface MemoryClusterFigures {
  readonly nodes: number;
  readonly entriesCommitted: number;
  /** Remote messages delivered during replication, per committed entry. */
  readonly messagesPerEntry: number;
  /** The theoretical minimum 2(N-1)/B: one append and one response per follower per batch. */
  readonly messagesPerEntryMin: number;
  /** Entry bytes carried by append messages, per committed entry. */
  readonly entryBytesPerEntry: number;
  /** Ticks from a cold start to the first leader, one per election trial. */
  readonly ticksToElect: readonly number[];
  /** FNV-1a (32-bit, hex) over every applied entry's length and first and last 4 data bytes, identical on every node. */
  readonly checksum: string;
}

/**
 * Defaults: the gate's size. 100 batches of 1000 take about 0.2 s natively and 10 s under
 * valgrind, of which Node's own start is a third; the replicated entries dominate the rest.
 */
export const memoryClusterDefaults: MemoryClusterOptions = Object.freeze({
  nodes: 3,
  batches: 100,
  batch: 1000,
  entryBytes: 16,
  electionTrials: 10,
  compactEvery: 1,
  plantSlowdown: 'none',
});

/** Rounds of Ready cycles and deliveries before a pump is declared stuck (a bug, not load). */
const pumpRoundsMax = 10_000;
/** Ticks a cold-start election may take before the trial is declared stuck. */
const electionTicksMax = 1_000;

/** Bytes of each end of an entry's data that enter the checksum. */
const checksumSampleBytes = 4;
const fnvOffsetBasis = 0x811c9dc5;
const fnvPrime = 0x01000193;

/** One node plus what its driver tracks: the checksum of what it applied. */
interface Member {
  readonly node: RaftNode;
  checksum: number;
  applied: number;
}

/** Counters of one pump phase. */
interface Traffic {
  messages: number;
  entryBytes: number;
}

class MemoryCluster {
  readonly members: Member[] = [];
  private readonly byId = new Map<NodeId, Member>();
  private readonly reader = new EntryReader();
  private readonly outbound: RemoteMessage[] = [];

  constructor(
    ids: readonly NodeId[],
    seedBase: number,
    private readonly plantSlowdown: MemoryClusterOptions['plantSlowdown'],
  ) {
    for (const id of ids) {
      const member: Member = { node: new RaftNode({ id, peers: ids, seed: seedBase + id }), checksum: fnvOffsetBasis, applied: 0 };
      this.members.push(member);
      this.byId.set(id, member);
    }
  }

  member(id: NodeId): Member {
    const member = this.byId.get(id);
    assert(member !== undefined, () => `no member ${id}`);
    return member;
  }

  /**
   * Runs Ready cycles on every node and delivers the messages they produce, until quiet. Messages
   * are delivered after every node has advanced and before any new proposal, so the views they
   * carry (the leader's ring bytes) still hold the same bytes when stepped (the Ready contract).
   */
  pump(traffic: Traffic): void {
    for (let round = 0; round < pumpRoundsMax; round++) {
      for (const member of this.members) {
        if (member.node.hasReady()) this.handleReady(member);
      }
      if (this.outbound.length === 0) return;
      const deliveries = this.plantSlowdown === 'duplicate' ? 2 : 1;
      for (const message of this.outbound) {
        for (let delivery = 0; delivery < deliveries; delivery++) {
          traffic.messages += 1;
          if (message.type === 'append') traffic.entryBytes += message.entries.byteLength;
          this.member(message.to).node.step(message);
        }
      }
      this.outbound.length = 0;
    }
    assert(false, () => `pump did not go quiet within ${pumpRoundsMax} rounds`);
  }

  private handleReady(member: Member): void {
    const ready = member.node.ready();
    // Memory "storage": the entries already live in the node's ring; nothing to persist.
    for (const message of ready.messages) this.outbound.push(message);
    const reader = this.reader.reset(ready.committedEntries);
    let checksum = member.checksum;
    while (reader.next()) {
      member.applied += 1;
      if (reader.kind !== entryKindCode.normal) continue;
      let bytes = reader.bytes;
      let from = reader.dataOffset;
      const length = reader.dataLength;
      if (this.plantSlowdown === 'copy') {
        bytes = bytes.slice(from, from + length);
        from = 0;
      }
      // A sample of every entry (its length, first and last four bytes): enough to tell any two
      // entries of this workload apart, and cheap, so a profile shows Raft rather than the checksum.
      checksum = Math.imul(checksum ^ length, fnvPrime);
      const sampleEnd = from + Math.min(length, checksumSampleBytes);
      for (let at = from; at < sampleEnd; at++) checksum = Math.imul(checksum ^ (bytes[at] as number), fnvPrime);
      for (let at = Math.max(sampleEnd, from + length - checksumSampleBytes); at < from + length; at++) {
        checksum = Math.imul(checksum ^ (bytes[at] as number), fnvPrime);
      }
    }
    member.checksum = checksum;
    member.node.advance(ready);
  }

  /** Ticks every node once and pumps; returns the leader's id or 0. */
  tickAll(traffic: Traffic): NodeId {
    for (const member of this.members) member.node.tick();
    this.pump(traffic);
    return this.leaderId();
  }

  leaderId(): NodeId {
    for (const member of this.members) if (member.node.role === 'leader') return member.node.id;
    return 0;
  }
}

function idsOf(nodes: number): NodeId[] {
  return Array.from({ length: nodes }, (_, i) => i + 1);
}

/** Cold start with seeds derived from `trial`: ticks until some node is leader. */
function ticksToElect(nodes: number, trial: number): number {
  const cluster = new MemoryCluster(idsOf(nodes), 1000 * (trial + 1), 'none');
  const traffic: Traffic = { messages: 0, entryBytes: 0 };
  for (let tick = 1; tick <= electionTicksMax; tick++) {
    if (cluster.tickAll(traffic) !== 0) return tick;
  }
  assert(false, () => `trial ${trial}: no leader after ${electionTicksMax} ticks`);
}

/** Runs the workload and returns its figures. */
export function runMemoryCluster(options: MemoryClusterOptions): MemoryClusterFigures {
  assert(options.nodes >= 1, () => `nodes ${options.nodes} below 1`);
  assert(options.batch >= 1, () => `batch ${options.batch} below 1`);
  const elections: number[] = [];
  for (let trial = 0; trial < options.electionTrials; trial++) elections.push(ticksToElect(options.nodes, trial));

  const cluster = new MemoryCluster(idsOf(options.nodes), 0, options.plantSlowdown);
  const warmup: Traffic = { messages: 0, entryBytes: 0 };
  const leader = cluster.member(1);
  leader.node.step({ type: 'hup', from: 1, to: 1, term: 0, transfer: false });
  cluster.pump(warmup);
  assert(leader.node.role === 'leader', () => `node 1 is ${leader.node.role} after campaigning`);

  const traffic: Traffic = { messages: 0, entryBytes: 0 };
  const data = new Uint8Array(options.entryBytes);
  const view = new DataView(data.buffer);
  const committedBefore = leader.node.commitIndex;
  let sequence = 0;
  for (let batch = 0; batch < options.batches; batch++) {
    for (let i = 0; i < options.batch; i++) {
      sequence += 1;
      // Distinct data per entry, so the checksum depends on every entry and its order.
      for (let at = 0; at + 4 <= data.length; at += 4) view.setUint32(at, Math.imul(sequence, 0x9e3779b1) ^ at);
      const result = leader.node.propose(data);
      assert(result.ok && result.status === 'appended', () => `proposal ${sequence} refused: ${JSON.stringify(result)}`);
    }
    cluster.pump(traffic);
    if (options.compactEvery > 0 && (batch + 1) % options.compactEvery === 0) {
      for (const member of cluster.members) member.node.compact(member.node.appliedIndex, new Uint8Array(0));
    }
  }

  const entriesCommitted = leader.node.commitIndex - committedBefore;
  assert(entriesCommitted === options.batches * options.batch, () => `committed ${entriesCommitted} of ${options.batches * options.batch}`);
  for (const member of cluster.members) {
    assert(member.node.appliedIndex === leader.node.commitIndex, () => `node ${member.node.id} applied ${member.node.appliedIndex} of ${leader.node.commitIndex}`);
    assert(member.checksum === leader.checksum, () => `node ${member.node.id} checksum ${member.checksum} differs from leader ${leader.checksum}`);
  }
  return {
    nodes: options.nodes,
    entriesCommitted,
    messagesPerEntry: entriesCommitted === 0 ? 0 : traffic.messages / entriesCommitted,
    messagesPerEntryMin: (2 * (options.nodes - 1)) / options.batch,
    entryBytesPerEntry: entriesCommitted === 0 ? 0 : traffic.entryBytes / entriesCommitted,
    ticksToElect: elections,
    checksum: (leader.checksum >>> 0).toString(16).padStart(8, '0'),
  };
}

const optionNames: Record<string, keyof MemoryClusterOptions> = {
  '--nodes': 'nodes',
  '--batches': 'batches',
  '--batch': 'batch',
  '--entry-bytes': 'entryBytes',
  '--election-trials': 'electionTrials',
  '--compact-every': 'compactEvery',
};

/** Parses the command line and the planted-slowdown variable; throws a clear error on bad input. */
export function parseMemoryClusterArgs(argv: readonly string[], env: NodeJS.ProcessEnv): MemoryClusterOptions {
  const options: Record<string, unknown> = { ...memoryClusterDefaults };
  for (let i = 0; i < argv.length; i += 2) {
    const flag = argv[i] as string;
    const key = optionNames[flag];
    if (key === undefined) throw new Error(`unknown option ${flag}; known: ${Object.keys(optionNames).join(', ')}`);
    const text = argv[i + 1];
    const value = Number(text);
    if (text === undefined || !Number.isSafeInteger(value) || value < 0) throw new Error(`${flag} expects a non-negative integer, got ${text ?? 'nothing'}`);
    options[key] = value;
  }
  const plant = env['RAFTLAB_PLANT_SLOWDOWN'] ?? '';
  if (plant !== '' && !(plantedSlowdowns as readonly string[]).includes(plant)) {
    throw new Error(`RAFTLAB_PLANT_SLOWDOWN=${plant} is not known; known: ${plantedSlowdowns.join(', ')}`);
  }
  options['plantSlowdown'] = plant === '' ? 'none' : plant;
  return options as unknown as MemoryClusterOptions;
}

function main(): void {
  const options = parseMemoryClusterArgs(process.argv.slice(2), process.env);
  const figures = runMemoryCluster(options);
  process.stdout.write(`${JSON.stringify(figures)}\n`);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  try {
    main();
  } catch (error) {
    // A failed assertion is a bug: show where. A bad argument is the caller's: the message is enough.
    const isBug = error instanceof AssertionError;
    process.stderr.write(`memory-cluster: ${error instanceof Error ? (isBug ? (error.stack ?? error.message) : error.message) : String(error)}\n`);
    process.exitCode = 1;
  }
}
