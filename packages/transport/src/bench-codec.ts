/**
 * Codec micro benchmark and loopback throughput probe.
 *
 *   node packages/transport/dist/bench-codec.js            # large: 2 s per probe
 *   node packages/transport/dist/bench-codec.js --quick    # small: CI-sized, keeps it from rotting
 *
 * 1. tinybench: encodeMessage and decodeMessage (which validates every entry frame) of an append
 *    carrying 1000 entries of 16 bytes, and of a heartbeat.
 * 2. Loopback probe: two transports (TCP, then WebSocket) on 127.0.0.1, in one process and then
 *    in two; node 1 pushes that append to node 2 with a window of 32 unanswered appends, node 2
 *    answers each with an appendResponse (as a follower would); reports appends/s, entries/s and
 *    MB/s of frames sent, and how many frames had to be re-sent as copies (tcp.ts).
 *
 * Each section prints a checksum of what it computed, so the work cannot be optimized away.
 */
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { type EntryFrames, type RemoteMessage, encodeEntry, framesOf } from '@raftlab/core';
import { Bench } from 'tinybench';
import { decodeMessage, encodeMessage, joinFrame } from './codec.js';
import type { SocketTransport } from './connection.js';
import { TcpTransport } from './tcp.js';
import { WsTransport } from './ws.js';

const quick = process.argv.includes('--quick');
const probeMs = quick ? 300 : 2000;
const entryCount = 1000;
const entryDataBytes = 16;

function entriesOf(count: number, dataBytes: number, term: number): EntryFrames {
  const frames: Uint8Array[] = [];
  for (let i = 0; i < count; i++) {
    const data = new Uint8Array(dataBytes);
    data.fill(i & 0xff);
    frames.push(encodeEntry(term, 'normal', data));
  }
  return framesOf(frames);
}

const term = 7;
const entries = entriesOf(entryCount, entryDataBytes, term);
const append: RemoteMessage = { type: 'append', from: 1, to: 2, term, prevIndex: 123_456, prevTerm: term, commit: 123_000, entries };
const heartbeat: RemoteMessage = { type: 'heartbeat', from: 1, to: 2, term, commit: 123_000, context: null };
const appendFrame = joinFrame(encodeMessage(append));
const heartbeatFrame = joinFrame(encodeMessage(heartbeat));

async function micro(): Promise<void> {
  let checksum = 0;
  const bench = new Bench({ time: quick ? 100 : 1000, warmupTime: quick ? 20 : 200 });
  bench
    .add('encode append (1000 x 16 B entries)', () => {
      checksum += encodeMessage(append).byteLength;
    })
    .add('decode append (1000 x 16 B entries, validated)', () => {
      const result = decodeMessage(appendFrame);
      if (result.ok && result.message.type === 'append') checksum += result.message.entries.count;
    })
    .add('encode heartbeat', () => {
      checksum += encodeMessage(heartbeat).byteLength;
    })
    .add('decode heartbeat', () => {
      const result = decodeMessage(heartbeatFrame);
      if (result.ok) checksum += result.message.term;
    });
  await bench.run();
  console.log(`codec micro benchmark (${quick ? 'small' : 'large'}); append frame ${appendFrame.length} B, heartbeat frame ${heartbeatFrame.length} B`);
  for (const task of bench.tasks) {
    const result = task.result;
    if (result.state !== 'completed') {
      console.log(`  ${task.name}: ${result.state}`);
      continue;
    }
    const meanNs = result.latency.mean * 1e6;
    console.log(`  ${task.name.padEnd(48)} ${meanNs.toFixed(0).padStart(8)} ns/op  p99 ${(result.latency.p99 * 1e6).toFixed(0).padStart(8)} ns  (${result.latency.samplesCount} samples, rme ${result.latency.rme.toFixed(1)}%)`);
  }
  console.log(`  checksum ${checksum}`);
}

type Kind = 'tcp' | 'ws';
const common = { clusterId: 'bench', secret: 'bench-secret-bench-secret', listen: { host: '127.0.0.1', port: 0 } };
const createTransport = (kind: Kind, id: number): SocketTransport => (kind === 'tcp' ? new TcpTransport({ ...common, id }) : new WsTransport({ ...common, id }));

/** The receiving end: answers every append with an appendResponse, as a follower would. */
function answerAppends(receiver: SocketTransport): void {
  receiver.onMessage((message) => {
    if (message.type !== 'append') return;
    receiver.send({ type: 'appendResponse', from: 2, to: 1, term: message.term, reject: false, index: message.prevIndex + message.entries.count, hintIndex: 0, hintTerm: 0 });
  });
}

/** Child process mode: run the receiving end and report its port to the parent. */
async function runReceiver(kind: Kind): Promise<void> {
  const receiver = createTransport(kind, 2);
  answerAppends(receiver);
  await receiver.start();
  process.on('message', (message: { senderPort?: number; stop?: boolean }) => {
    if (message.senderPort !== undefined) receiver.setPeerAddress(1, { host: '127.0.0.1', port: message.senderPort });
    if (message.stop === true) void receiver.stop().then(() => process.exit(0));
  });
  process.send?.({ port: receiver.address().port });
}

/**
 * Node 1 pushes appends to node 2 with a window of 32 unanswered appends; node 2 answers each one.
 * `processes`: 1 runs both ends on this thread, 2 runs node 2 in a child process.
 */
async function probe(kind: Kind, processes: 1 | 2): Promise<void> {
  const sender = createTransport(kind, 1);
  let stopReceiver: () => Promise<void>;
  await sender.start();
  if (processes === 1) {
    const receiver = createTransport(kind, 2);
    answerAppends(receiver);
    await receiver.start();
    receiver.setPeerAddress(1, sender.address());
    sender.setPeerAddress(2, receiver.address());
    stopReceiver = () => receiver.stop();
  } else {
    const child = fork(fileURLToPath(import.meta.url), ['--receiver', kind], { stdio: 'inherit' });
    const port = await new Promise<number>((resolve) => child.once('message', (message: { port: number }) => resolve(message.port)));
    child.send({ senderPort: sender.address().port });
    sender.setPeerAddress(2, { host: '127.0.0.1', port });
    stopReceiver = async () => {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.send({ stop: true });
      await exited;
    };
  }
  while (sender.stats().connectionsOpen < 2) await new Promise((resolve) => setTimeout(resolve, 5));

  await roundTrips(kind, processes, sender);
  const window = 32;
  let sent = 0;
  let answered = 0;
  let running = true;
  let scheduled = false;
  let checksum = 0;
  const pump = (): void => {
    scheduled = false;
    while (running && sent - answered < window) {
      sender.send(append);
      sent += 1;
    }
  };
  sender.onMessage((message) => {
    if (message.type !== 'appendResponse') return;
    answered += 1;
    checksum += message.index;
    if (!scheduled) {
      scheduled = true;
      setImmediate(pump);
    }
  });
  const startedAt = performance.now();
  const bytesBefore = sender.stats().bytesSent;
  pump();
  await new Promise((resolve) => setTimeout(resolve, probeMs));
  running = false;
  const elapsedS = (performance.now() - startedAt) / 1000;
  const stats = sender.stats();
  const bytes = stats.bytesSent - bytesBefore;
  await stopReceiver();
  await sender.stop();
  const label = `${kind} loopback, ${processes === 1 ? 'one process  ' : 'two processes'}`;
  console.log(
    `${label}: ${(answered / elapsedS).toFixed(0).padStart(6)} appends/s  ${((answered * entryCount) / elapsedS / 1e6).toFixed(2)} M entries/s  ` +
      `${(bytes / elapsedS / 1e6).toFixed(1).padStart(6)} MB/s sent  (${answered} answered appends in ${elapsedS.toFixed(2)} s; ` +
      `resent ${stats.framesResent}, dropped ${stats.messagesDropped}; checksum ${checksum})`,
  );
}

/** One append of one 16-byte entry at a time, waiting for its answer: the round trip a lone proposal pays. */
async function roundTrips(kind: Kind, processes: 1 | 2, sender: SocketTransport): Promise<void> {
  const single: RemoteMessage = { ...append, entries: entriesOf(1, entryDataBytes, term) } as RemoteMessage;
  const count = quick ? 500 : 5000;
  const samples = new Float64Array(count);
  for (let i = 0; i < count; i++) {
    const startedAt = performance.now();
    await new Promise<void>((resolve) => {
      sender.onMessage(() => resolve());
      sender.send(single);
    });
    samples[i] = (performance.now() - startedAt) * 1000;
  }
  samples.sort();
  const at = (q: number): string => (samples[Math.min(count - 1, Math.floor(q * count))] as number).toFixed(0);
  console.log(`${kind} ${processes === 1 ? 'one process  ' : 'two processes'} round trip, 1-entry append + answer: p50 ${at(0.5)} us  p90 ${at(0.9)} us  p99 ${at(0.99)} us  (${count} samples)`);
}

const receiverAt = process.argv.indexOf('--receiver');
if (receiverAt >= 0) {
  await runReceiver(process.argv[receiverAt + 1] === 'ws' ? 'ws' : 'tcp');
} else {
  await micro();
  for (const kind of ['tcp', 'ws'] as const) {
    await probe(kind, 1);
    await probe(kind, 2);
  }
}
