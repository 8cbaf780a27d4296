/**
 * Micro benchmarks (tinybench 6) of the wire codec's headers (@raftlab/transport): encoding the
 * msgpack header of an AppendEntries carrying 1000 entries (the entries themselves are written
 * verbatim after it, never re-encoded) and of a heartbeat and an appendResponse, and decoding them
 * (which validates every entry frame of the append). Complements core/micro.ts.
 */
import { type EntryFrames, type RemoteMessage, encodeEntry, framesOf } from '@raftlab/core';
import { decodeMessage, encodeMessage, joinFrame } from '@raftlab/transport';
import { Bench } from 'tinybench';

import { type BenchRecord, summarize } from '../results.js';
import { microSizes } from '../core/micro.js';

function entriesOf(count: number, dataBytes: number, term: number): EntryFrames {
  const frames: Uint8Array[] = [];
  for (let i = 0; i < count; i++) frames.push(encodeEntry(term, 'normal', new Uint8Array(dataBytes).fill(i & 0xff)));
  return framesOf(frames);
}

/** Runs the wire micro benchmarks; one ops/s record per task. */
export async function runWireMicro(size: keyof typeof microSizes): Promise<BenchRecord[]> {
  const { timeMs, warmupMs } = microSizes[size];
  const bench = new Bench({ time: timeMs, warmupTime: warmupMs, retainSamples: true });
  const term = 7;
  const append: RemoteMessage = { type: 'append', from: 1, to: 2, term, prevIndex: 41_999, prevTerm: term, commit: 41_000, entries: entriesOf(1000, 16, term) };
  const heartbeat: RemoteMessage = { type: 'heartbeat', from: 1, to: 2, term, commit: 42_000, context: null };
  const response: RemoteMessage = { type: 'appendResponse', from: 2, to: 1, term, reject: false, index: 42_999, hintIndex: 0, hintTerm: 0 };
  let sink = 0;
  const cases: [string, RemoteMessage][] = [
    ['append (1000 entries)', append],
    ['appendResponse', response],
    ['heartbeat', heartbeat],
  ];
  for (const [name, message] of cases) {
    bench.add(`wire header encode: ${name}`, () => {
      sink += encodeMessage(message).chunks.length;
    });
    const frame = joinFrame(encodeMessage(message));
    bench.add(`wire decode: ${name}`, () => {
      const decoded = decodeMessage(frame, { from: message.from, to: message.to });
      if (!decoded.ok) throw new Error(`decode of ${name} failed: ${decoded.reason}`);
      sink += decoded.message.term;
    });
  }
  await bench.run();
  const records: BenchRecord[] = [];
  for (const task of bench.tasks) {
    const result = task.result;
    if (!('latency' in result)) throw new Error(`wire micro benchmark ${task.name} did not complete (${result.state})`);
    const summary = summarize((result.latency.samples ?? []).map((ms) => 1000 / ms));
    records.push({ suite: 'micro', scenario: task.name, transport: 'none', nodes: 0, batch: 1, metric: 'ops', unit: 'ops/s', ...summary, checksum: String(sink) });
  }
  return records;
}
