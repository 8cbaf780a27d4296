/**
 * Micro benchmarks (tinybench 6) of the core's hot paths: ring append and slice, entry framing
 * encode and decode, quorum commit index, and the step hot path on both sides of replication (a
 * follower stepping an AppendEntries of 1000 entries, a leader stepping the response). Each task
 * reports operations per second: median with spread.
 */
import {
  type AppendMessage,
  type AppendResponseMessage,
  EntryReader,
  FrameHeader,
  LogRing,
  RaftNode,
  entryKindCode,
  frameBytes,
  quorumIndex,
  writeFrame,
} from '@raftlab/core';
import { Bench } from 'tinybench';
import { type BenchRecord, summarize } from '../results.js';

/** Sizes: CI runs the small one so the benchmarks never rot. */
export const microSizes = { small: { timeMs: 150, warmupMs: 30 }, large: { timeMs: 1000, warmupMs: 200 } } as const;

/** Runs the micro benchmarks and returns one throughput record per task (operations per second). */
export async function runMicro(size: keyof typeof microSizes = 'small'): Promise<BenchRecord[]> {
  const { timeMs, warmupMs } = microSizes[size];
  const bench = new Bench({ time: timeMs, warmupTime: warmupMs, retainSamples: true });
  const payload = new Uint8Array(16).fill(3);
  let sink = 0;

  // Ring append: one 16-byte entry; compacted as it goes so the ring stays warm and bounded.
  const ring = new LogRing({ initialBytes: 1 << 20 });
  bench.add('ring append (16 B entry)', () => {
    ring.append(1, entryKindCode.normal, payload);
    if (ring.count >= 4096) ring.compactThrough(ring.lastIndex - 1024);
  });

  // Ring slice: the views of a 1000-entry run.
  const sliceRing = new LogRing({ initialBytes: 1 << 20 });
  for (let i = 0; i < 5000; i++) sliceRing.append(1, entryKindCode.normal, payload);
  bench.add('ring frames (1000-entry run)', () => {
    sink += sliceRing.frames(2000, 2999).byteLength;
  });

  // Framing: encode and decode one entry.
  const frame = new Uint8Array(frameBytes(12345, payload.length));
  bench.add('entry encode (writeFrame, 16 B)', () => {
    sink += writeFrame(frame, 0, 12345, 0, payload);
  });
  const header = new FrameHeader();
  bench.add('entry decode (FrameHeader.parse)', () => {
    sink += header.parse(frame, 0, frame.length);
  });

  // A 1000-entry run read with EntryReader (apply-side iteration).
  const run = sliceRing.frames(1, 1000);
  const reader = new EntryReader();
  bench.add('EntryReader over 1000 entries', () => {
    reader.reset(run);
    while (reader.next()) sink += reader.dataLength;
  });

  // Quorum commit index for 3, 5 and 10 voters.
  for (const voters of [3, 5, 10]) {
    const matches = Float64Array.from({ length: voters }, (_, i) => 1000 + ((i * 7919) % 97));
    const scratch = new Float64Array(voters);
    bench.add(`quorum commit index (${voters} voters)`, () => {
      sink += quorumIndex(matches, scratch);
    });
  }

  // Step hot path: a follower stepping an AppendEntries of 1000 entries at its log's end, and the
  // leader stepping the acceptance. A leader log is prepared once; the follower is reset when full.
  const source = new RaftNode({ id: 1, peers: [1] });
  source.step({ type: 'hup', from: 1, to: 1, term: 0, transfer: false });
  source.advance(source.ready());
  for (let i = 0; i < 20_000; i++) source.propose(payload);
  const appends: AppendMessage[] = [];
  for (let first = 2; first + 999 <= source.lastIndex; first += 1000) {
    appends.push({ type: 'append', from: 1, to: 2, term: source.term, prevIndex: first - 1, prevTerm: source.log.termAt(first - 1), commit: 0, entries: source.log.frames(first, first + 999) });
  }
  const emptyEntry = source.log.frames(1, 1);
  let follower = freshFollower(emptyEntry);
  let next = 0;
  bench.add('follower step(append of 1000 entries)', () => {
    if (next === appends.length) {
      follower = freshFollower(emptyEntry);
      next = 0;
    }
    follower.step(appends[next++] as AppendMessage);
    follower.advance(follower.ready());
  });

  const leader = new RaftNode({ id: 1, peers: [1, 2, 3], preVote: false });
  leader.step({ type: 'hup', from: 1, to: 1, term: 0, transfer: false });
  leader.step({ type: 'voteResponse', from: 2, to: 1, term: 1, reject: false });
  leader.advance(leader.ready());
  let acknowledged = leader.lastIndex;
  bench.add('leader step(appendResponse) + ready for 1000 new entries', () => {
    for (let i = 0; i < 1000; i++) leader.propose(payload);
    const ready = leader.ready();
    leader.advance(ready);
    acknowledged = leader.lastIndex;
    const response: AppendResponseMessage = { type: 'appendResponse', from: 2, to: 1, term: 1, reject: false, index: acknowledged, hintIndex: 0, hintTerm: 0 };
    leader.step(response);
    leader.step({ ...response, from: 3 });
    leader.advance(leader.ready());
    if (leader.appliedIndex > 100_000) leader.compact(leader.appliedIndex, payload);
  });

  await bench.run();
  const records: BenchRecord[] = [];
  for (const task of bench.tasks) {
    const result = task.result;
    if (!('latency' in result)) {
      const cause = 'error' in result ? `: ${String(result.error)}` : '';
      throw new Error(`micro benchmark ${task.name} did not complete (${result.state})${cause}`);
    }
    const latencies = result.latency.samples ?? [];
    const summary = summarize(latencies.map((ms) => 1000 / ms));
    records.push({ suite: 'micro', scenario: task.name, transport: 'none', nodes: 0, batch: 1, metric: 'ops', unit: 'ops/s', ...summary, checksum: String(sink) });
  }
  return records;
}

function freshFollower(emptyEntry: AppendMessage['entries']): RaftNode {
  const node = new RaftNode({ id: 2, peers: [1, 2, 3] });
  node.step({ type: 'append', from: 1, to: 2, term: 1, prevIndex: 0, prevTerm: 0, commit: 0, entries: emptyEntry });
  node.advance(node.ready());
  return node;
}
