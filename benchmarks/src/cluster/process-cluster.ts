/**
 * The process-cluster benchmark (suite `cluster-process`): three node processes on 127.0.0.1, each
 * a RaftRuntime over the TCP or WebSocket transport with in-memory storage and the counter machine
 * (node-main.ts), and this driver, which talks to them over IPC only for control (protocol.ts).
 *
 * Per transport it measures, in this order:
 *  1. the in-run references, before the nodes start (so nothing competes with them): two latency
 *     floors, a 64-byte loopback round trip to one echo process and the same message written to
 *     two echo processes (a leader's fan-out to two followers; its first answer is the floor of a
 *     3-node commit and the commit latency's reference), then, in this process, the core's
 *     in-process direct-delivery throughput (benchmarks/src/core, the same 3 RaftNodes and
 *     batches with no runtime, sockets or processes) and the speed-of-light probe;
 *  2. throughput: the leader runs a closed loop of `batchesInflightMax` batches of `batch`
 *     commands; entries committed and applied at the leader per second over `windows` timed
 *     windows after a warm-up (median with p25/p75 over windows);
 *  3. wire cost over those windows, from the leader's transport counters: every message of a
 *     stable cluster has the leader at one end, so its bytes and messages sent plus received are
 *     the whole cluster's traffic;
 *  4. after the followers caught up (their applied counts and checksums must equal the leader's):
 *     commit latency, single proposals one at a time on the now idle cluster, propose -> committed
 *     and applied at the leader (the promise settles in the Ready cycle that commits the entry).
 *
 * Wall-clock figures on a shared two-core machine are noisy: read each beside its reference ratio.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { type Socket, connect } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { frameBytes } from '@raftlab/core';
import { runProbe } from '../core/probe.js';
import { runCoreThroughput } from '../core/throughput.js';
import { withListeningChildren } from '../listening-child.js';
import { type BenchRecord, type Summary, downsample, knownMetrics, messagesPerEntryMin, quantileOfSorted, referenceFor, summarize } from '../results.js';
import type { ClusterTransport, LatencyReport, NodeReply, NodeRequest, NodeStatus, ThroughputReport } from './protocol.js';

export type { ClusterTransport } from './protocol.js';

/** The suite name of every record this benchmark writes. */
export const processClusterSuite = 'cluster-process';

/** The node entry script built next to this module (dist/cluster/node-main.js, also when running from src/). */
export const nodeMainPath: string = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'dist', 'cluster', 'node-main.js');

/** The echo server of the round-trip probe, built next to this module. */
export const echoMainPath: string = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'dist', 'cluster', 'echo-main.js');

/** The issue's targets, printed beside the figures (never asserted in tests). */
export const processClusterTargets = {
  tcpEntriesPerSecond: 1_000_000,
  wsEntriesPerSecond: 700_000,
  tcpCommitLatencyP50Micros: 100,
} as const;

/** Options of runProcessCluster; every field has a default. */
export interface ProcessClusterOptions {
  /** Transports to measure, one cluster each (default tcp then ws). */
  readonly transports?: readonly ClusterTransport[];
  /** Voters (default 3). */
  readonly nodes?: number;
  /** Entries per proposal batch (default 1000). */
  readonly batch?: number;
  /** Data bytes per entry (default 16). */
  readonly payloadBytes?: number;
  /** Batches in flight in the leader's closed loop (default 8). */
  readonly batchesInflightMax?: number;
  /** Timed seconds of throughput per transport (default 10). */
  readonly seconds?: number;
  /** Length of one throughput window (default 1000 ms; shorter when seconds is small). */
  readonly windowMs?: number;
  /** Unmeasured load before the windows (default 1000 ms). */
  readonly warmupMs?: number;
  /** Single-proposal latency samples (default 2000). */
  readonly latencySamples?: number;
  /** Pause between single proposals, so each finds the cluster idle (default 1 ms; 0: back to back). */
  readonly latencyGapMs?: number;
  /** Skip the in-run references (tests only: they take about two seconds). */
  readonly skipReferences?: boolean;
  /** When set, each node runs with --cpu-prof and writes its profile here (one subdirectory per transport). */
  readonly profileDirectory?: string | null;
  /** Milliseconds per runtime tick (default 10). */
  readonly tickIntervalMs?: number;
  /** Runs the nodes with the runtime's holdCommitNotices option (default false, the runtime's default). */
  readonly holdCommitNotices?: boolean;
  /** Progress lines (default: none). */
  readonly log?: (line: string) => void;
}

/** How one node process ended. */
export interface ProcessExit {
  readonly transport: ClusterTransport;
  readonly id: number;
  readonly pid: number;
  readonly exitCode: number | null;
  readonly signal: string | null;
  /** True when the driver had to kill it (it did not exit on `stop`). */
  readonly killed: boolean;
}

/** The measurements of one transport. */
export interface TransportMeasurement {
  readonly transport: ClusterTransport;
  readonly throughput: ThroughputReport;
  readonly latency: LatencyReport;
  /** Final status of every node (after the followers caught up). */
  readonly nodes: readonly NodeStatus[];
  /** CPU time of each follower over the latency run, microseconds: total and system part. */
  readonly followerCpuMicros: readonly number[];
  readonly followerSystemCpuMicros: readonly number[];
  /** Core in-process direct-delivery entries/s and speed-of-light probe entries/s, measured just before. */
  readonly coreReference: number | null;
  readonly probeReference: number | null;
  /** Median loopback TCP round trip between two Node processes, µs, measured just before. */
  readonly roundTripReference: number | null;
  /**
   * Medians of the two-follower fan-out probe, µs, measured just before: until the first answer
   * (the floor of a 3-node commit from the leader's point of view) and until both answers.
   */
  readonly fanOutFirstReference: number | null;
  readonly fanOutBothReference: number | null;
}

/** Everything runProcessCluster measured. */
export interface ProcessClusterResult {
  readonly records: BenchRecord[];
  readonly measurements: TransportMeasurement[];
  readonly processes: ProcessExit[];
  readonly notes: string[];
  /** A human summary, several lines. */
  readonly summary: string;
}

const startDeadlineMs = 20_000;
const leaderDeadlineMs = 20_000;
const catchUpDeadlineMs = 30_000;
const stopDeadlineMs = 10_000;

interface NodeProcess {
  readonly id: number;
  readonly child: ChildProcess;
  readonly exited: Promise<{ exitCode: number | null; signal: string | null }>;
  port: number;
  killed: boolean;
}

/** A request without its sequence number (Omit distributed over the union). */
type RequestBody = NodeRequest extends infer R ? (R extends NodeRequest ? Omit<R, 'seq'> : never) : never;

/** Request/reply over one child's IPC channel. */
class NodeChannel {
  private seq = 0;
  private readonly waiting = new Map<number, { resolve: (reply: NodeReply) => void; reject: (error: Error) => void }>();
  private listening: ((port: number) => void) | null = null;
  private failure: Error | null = null;

  constructor(readonly node: NodeProcess) {
    node.child.on('message', (reply: NodeReply) => {
      if (reply.type === 'listening') {
        this.listening?.(reply.port);
        return;
      }
      const waiter = this.waiting.get(reply.seq);
      if (waiter === undefined) return;
      this.waiting.delete(reply.seq);
      if (reply.type === 'error') waiter.reject(new Error(`node ${node.id}: ${reply.message}`));
      else waiter.resolve(reply);
    });
    void node.exited.then(({ exitCode, signal }) => {
      this.failure = new Error(`node ${node.id} exited (code ${exitCode}, signal ${signal})`);
      for (const waiter of this.waiting.values()) waiter.reject(this.failure);
      this.waiting.clear();
    });
  }

  whenListening(): Promise<number> {
    return withDeadline(new Promise((resolve) => (this.listening = resolve)), startDeadlineMs, `node ${this.node.id} did not start listening`);
  }

  request<T extends NodeReply['type']>(request: RequestBody, expect: T, deadlineMs: number): Promise<Extract<NodeReply, { type: T }>> {
    if (this.failure !== null) return Promise.reject(this.failure);
    const seq = ++this.seq;
    const answer = new Promise<NodeReply>((resolve, reject) => this.waiting.set(seq, { resolve, reject }));
    this.node.child.send({ ...request, seq } as NodeRequest);
    return withDeadline(answer, deadlineMs, `node ${this.node.id} did not answer ${request.type} within ${deadlineMs} ms`).then((reply) => {
      if (reply.type !== expect) throw new Error(`node ${this.node.id} answered ${request.type} with ${reply.type}`);
      return reply as Extract<NodeReply, { type: T }>;
    });
  }
}

function withDeadline<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), ms);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function spawnNode(id: number, nodes: number, transport: ClusterTransport, options: ResolvedOptions, profileDirectory: string | null): NodeProcess {
  const execArgv = profileDirectory === null ? [] : ['--cpu-prof', '--cpu-prof-dir', profileDirectory, '--cpu-prof-name', `node-${id}.cpuprofile`];
  const args = ['--id', String(id), '--nodes', String(nodes), '--transport', transport, '--tick-ms', String(options.tickIntervalMs)];
  if (options.holdCommitNotices) args.push('--hold-commit-notices');
  const child = fork(nodeMainPath, args, {
    execArgv,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    serialization: 'advanced',
  });
  const exited = new Promise<{ exitCode: number | null; signal: string | null }>((resolve) => {
    child.once('exit', (exitCode, signal) => resolve({ exitCode, signal }));
  });
  return { id, child, exited, port: 0, killed: false };
}

/** Stops every node (`stop`, then disconnect), and kills, by pid, any that does not exit in time. */
async function stopNodes(channels: readonly NodeChannel[], transport: ClusterTransport): Promise<ProcessExit[]> {
  await Promise.all(
    channels.map(async (channel) => {
      const child = channel.node.child;
      if (child.exitCode !== null || child.signalCode !== null) return;
      try {
        await channel.request({ type: 'stop' }, 'ok', stopDeadlineMs);
      } catch {
        // It is killed below if it does not exit.
      }
      if (child.connected) child.disconnect();
    }),
  );
  return Promise.all(
    channels.map(async ({ node }) => {
      let outcome = await Promise.race([node.exited, sleep(stopDeadlineMs).then(() => null)]);
      if (outcome === null) {
        node.killed = true;
        node.child.kill('SIGKILL');
        outcome = await node.exited;
      }
      return { transport, id: node.id, pid: node.child.pid ?? 0, exitCode: outcome.exitCode, signal: outcome.signal, killed: node.killed };
    }),
  );
}

async function statuses(channels: readonly NodeChannel[]): Promise<NodeStatus[]> {
  return Promise.all(channels.map(async (channel) => (await channel.request({ type: 'status' }, 'status', 5000)).status));
}

async function waitForLeader(channels: readonly NodeChannel[]): Promise<number> {
  const deadline = performance.now() + leaderDeadlineMs;
  while (performance.now() < deadline) {
    const all = await statuses(channels);
    const leaders = all.filter((status) => status.role === 'leader');
    const leader = leaders[0];
    // One leader, known to everyone, with its first entry of the term committed everywhere.
    if (leaders.length === 1 && leader !== undefined && all.every((status) => status.leaderId === leader.id && status.appliedIndex === leader.commitIndex && leader.commitIndex > 0)) {
      return leader.id;
    }
    await sleep(50);
  }
  throw new Error(`no stable leader within ${leaderDeadlineMs} ms`);
}

async function waitForCatchUp(channels: readonly NodeChannel[], leaderId: number): Promise<NodeStatus[]> {
  const deadline = performance.now() + catchUpDeadlineMs;
  for (;;) {
    const all = await statuses(channels);
    const leader = all.find((status) => status.id === leaderId) as NodeStatus;
    if (all.every((status) => status.applied === leader.applied)) {
      for (const status of all) {
        if (status.checksum !== leader.checksum) throw new Error(`node ${status.id} checksum ${status.checksum} differs from the leader's ${leader.checksum} at ${leader.applied} entries`);
      }
      return all;
    }
    if (performance.now() > deadline) {
      throw new Error(`followers did not catch up within ${catchUpDeadlineMs} ms: applied ${all.map((status) => `${status.id}=${status.applied}`).join(', ')}`);
    }
    await sleep(20);
  }
}

/** Bytes of the probes' message: about one small append or response frame. */
export const probeMessageBytes = 64;

/** Echo processes one probe may fork (the fan-out probe needs two, one per follower of a 3-node cluster). */
const echoProcessesMax = 4;

/** Per-answer deadline of a probe sample: an echo that takes this long has stopped. */
const echoAnswerDeadlineMs = 5000;

/** One forked echo process (echo-main.ts) and this process's TCP connection to it. */
export interface EchoConnection {
  readonly child: ChildProcess;
  readonly socket: Socket;
}

/**
 * Forks `count` echo processes (listening-child.ts), connects to each over loopback TCP with
 * TCP_NODELAY, and runs `use` with the connections; then, whatever happened, destroys the sockets
 * and takes the children down. Both probes go through here, so they differ only in how many echoes
 * they wait for.
 */
export async function withEchoProcesses<T>(count: number, use: (connections: readonly EchoConnection[]) => Promise<T>): Promise<T> {
  if (!(Number.isSafeInteger(count) && count >= 1 && count <= echoProcessesMax)) {
    throw new RangeError(`echo processes: count must be an integer in [1, ${echoProcessesMax}], got ${count}`);
  }
  return withListeningChildren(echoMainPath, count, 'echo process', { startMs: startDeadlineMs, stopMs: stopDeadlineMs }, async (children) => {
    const sockets: Socket[] = [];
    try {
      for (const [i, { port }] of children.entries()) {
        const socket = connect({ host: '127.0.0.1', port, noDelay: true });
        sockets.push(socket);
        await withDeadline(
          new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject)),
          startDeadlineMs,
          `no connection to echo process ${i + 1} of ${count}`,
        );
      }
      return await use(children.map(({ child }, i) => ({ child, socket: sockets[i] as Socket })));
    } finally {
      for (const socket of sockets) socket.destroy();
    }
  });
}

/** What the fan-out probe measured, per sample, in microseconds from the first write. */
export interface FanOutSamples {
  /** Until the first echo was complete (one follower's answer: a 3-node quorum with the leader). */
  readonly firstMicros: number[];
  /** Until every echo was complete. Invariant: firstMicros[i] <= bothMicros[i]. */
  readonly bothMicros: number[];
}

/**
 * The probes' sampling loop: per sample, writes the message to every connection one after the
 * other, as a leader sends an append to each follower in one Ready cycle, and times the first and
 * the last complete echo from just before the first write. Samples are `gapMs` apart, as the commit
 * latency samples, so both wake sleeping processes alike; the first `warmupSamples` are dropped.
 */
async function timeEchoes(connections: readonly EchoConnection[], samples: number, warmupSamples: number, gapMs: number): Promise<FanOutSamples> {
  if (!(Number.isSafeInteger(samples) && samples >= 1)) throw new RangeError(`probe samples must be a positive integer, got ${samples}`);
  if (!(Number.isSafeInteger(warmupSamples) && warmupSamples >= 0)) throw new RangeError(`probe warm-up samples must be an integer >= 0, got ${warmupSamples}`);
  if (!(Number.isFinite(gapMs) && gapMs >= 0)) throw new RangeError(`probe gap must be a number >= 0, got ${gapMs}`);
  const message = Buffer.alloc(probeMessageBytes, 7);
  const firstMicros: number[] = [];
  const bothMicros: number[] = [];
  // Bytes each connection still owes of the current sample's echo.
  const owed = connections.map(() => 0);
  let unanswered = 0;
  let started = 0;
  let first = 0;
  let settle: { resolve: () => void; reject: (error: Error) => void } | null = null;
  const fail = (error: Error): void => {
    settle?.reject(error);
    settle = null;
  };
  for (const [i, { socket }] of connections.entries()) {
    socket.on('data', (chunk: Buffer) => {
      const left = (owed[i] as number) - chunk.length;
      owed[i] = left;
      if (left > 0) return;
      const micros = (performance.now() - started) * 1000;
      if (left < 0) {
        fail(new Error(`echo process ${i + 1} sent back ${-left} bytes more than it was sent`));
        return;
      }
      if (unanswered === connections.length) first = micros;
      unanswered--;
      if (unanswered > 0) return;
      firstMicros.push(first);
      bothMicros.push(micros);
      settle?.resolve();
      settle = null;
    });
    socket.on('error', (error) => fail(new Error(`echo connection ${i + 1}: ${error.message}`)));
    socket.on('close', () => fail(new Error(`echo connection ${i + 1} closed during the probe`)));
  }
  for (let sample = 0; sample < warmupSamples + samples; sample++) {
    const answered = new Promise<void>((resolve, reject) => (settle = { resolve, reject }));
    owed.fill(message.length);
    unanswered = connections.length;
    started = performance.now();
    for (const { socket } of connections) socket.write(message);
    await withDeadline(answered, echoAnswerDeadlineMs, `an echo process stopped answering (sample ${sample + 1}, ${unanswered} of ${connections.length} answers missing)`);
    if (gapMs > 0) await sleep(gapMs);
  }
  return { firstMicros: firstMicros.slice(warmupSamples), bothMicros: bothMicros.slice(warmupSamples) };
}

/**
 * The latency reference: round trips of a 64-byte message between this process and one echo
 * process over loopback TCP (TCP_NODELAY), one at a time, `gapMs` apart, in microseconds. A commit
 * needs at least one such round trip (leader -> follower -> leader) plus the work at both ends.
 */
export async function runRoundTripProbe(samples = 2000, warmupSamples = 200, gapMs = 0): Promise<number[]> {
  const timed = await withEchoProcesses(1, (connections) => timeEchoes(connections, samples, warmupSamples, gapMs));
  return timed.bothMicros;
}

/**
 * The floor of a 3-node commit as the leader sees it: the same 64-byte message written to two echo
 * processes (two followers) one after the other, timed to the first complete answer (the quorum's
 * second vote) and to both. Three processes take part, as in the cluster, so on a machine with
 * fewer free cores than that the first answer also pays for the scheduling a commit pays for.
 */
export async function runFanOutProbe(samples = 2000, warmupSamples = 200, gapMs = 0): Promise<FanOutSamples> {
  return withEchoProcesses(2, (connections) => timeEchoes(connections, samples, warmupSamples, gapMs));
}

interface ResolvedOptions {
  readonly nodes: number;
  readonly batch: number;
  readonly payloadBytes: number;
  readonly batchesInflightMax: number;
  readonly windows: number;
  readonly windowMs: number;
  readonly warmupMs: number;
  readonly latencySamples: number;
  readonly latencyGapMs: number;
  readonly tickIntervalMs: number;
  readonly holdCommitNotices: boolean;
}

function resolveOptions(options: ProcessClusterOptions): ResolvedOptions {
  const seconds = options.seconds ?? 10;
  if (!(seconds > 0)) throw new RangeError(`seconds must be positive, got ${seconds}`);
  const windowMs = options.windowMs ?? (seconds >= 4 ? 1000 : Math.max(100, (seconds * 1000) / 4));
  const resolved = {
    nodes: options.nodes ?? 3,
    batch: options.batch ?? 1000,
    payloadBytes: options.payloadBytes ?? 16,
    batchesInflightMax: options.batchesInflightMax ?? 8,
    windows: Math.max(1, Math.round((seconds * 1000) / windowMs)),
    windowMs,
    warmupMs: options.warmupMs ?? 1000,
    latencySamples: options.latencySamples ?? 2000,
    tickIntervalMs: options.tickIntervalMs ?? 10,
  };
  for (const [key, value] of Object.entries(resolved)) {
    if (!(Number.isFinite(value) && value >= (key === 'warmupMs' ? 0 : 1))) throw new RangeError(`${key} must be a positive number, got ${value}`);
  }
  if (resolved.payloadBytes < 1) throw new RangeError('payloadBytes must be at least 1');
  const latencyGapMs = options.latencyGapMs ?? 1;
  if (!(Number.isFinite(latencyGapMs) && latencyGapMs >= 0)) throw new RangeError(`latencyGapMs must be a number >= 0, got ${latencyGapMs}`);
  return { ...resolved, latencyGapMs, holdCommitNotices: options.holdCommitNotices ?? false };
}

async function measureTransport(
  transport: ClusterTransport,
  options: ResolvedOptions,
  profileDirectory: string | null,
  processes: ProcessExit[],
  log: (line: string) => void,
): Promise<Omit<TransportMeasurement, 'coreReference' | 'probeReference' | 'roundTripReference' | 'fanOutFirstReference' | 'fanOutBothReference'>> {
  if (profileDirectory !== null) mkdirSync(profileDirectory, { recursive: true });
  const nodes = Array.from({ length: options.nodes }, (_, i) => spawnNode(i + 1, options.nodes, transport, options, profileDirectory));
  const channels = nodes.map((node) => new NodeChannel(node));
  try {
    const ports = await Promise.all(channels.map((channel) => channel.whenListening()));
    nodes.forEach((node, i) => (node.port = ports[i] as number));
    const portList = nodes.map((node) => [node.id, node.port] as const);
    await Promise.all(channels.map((channel) => channel.request({ type: 'peers', ports: portList }, 'ok', startDeadlineMs)));
    const leaderId = await waitForLeader(channels);
    const leader = channels[leaderId - 1] as NodeChannel;
    log(`${transport}: leader is node ${leaderId}; ${options.warmupMs} ms warm-up, ${options.windows} x ${options.windowMs} ms of ${options.batchesInflightMax} x ${options.batch} commands in flight`);
    const loadMs = options.warmupMs + options.windows * options.windowMs;
    const { report: throughput } = await leader.request(
      {
        type: 'throughput',
        load: {
          batch: options.batch,
          payloadBytes: options.payloadBytes,
          batchesInflightMax: options.batchesInflightMax,
          warmupMs: options.warmupMs,
          windows: options.windows,
          windowMs: options.windowMs,
        },
      },
      'throughput',
      loadMs + 60_000,
    );
    // On a starved machine leadership can move under load: measure latency at whoever leads now.
    const latencyLeaderId = await waitForLeader(channels);
    const beforeLatency = await waitForCatchUp(channels, latencyLeaderId);
    if (latencyLeaderId !== leaderId) log(`${transport}: leadership moved to node ${latencyLeaderId} during the throughput run`);
    log(`${transport}: ${options.latencySamples} single proposals on the idle cluster`);
    const { report: latency } = await (channels[latencyLeaderId - 1] as NodeChannel).request(
      {
        type: 'latency',
        load: { samples: options.latencySamples, payloadBytes: options.payloadBytes, warmupSamples: Math.min(200, options.latencySamples), gapMs: options.latencyGapMs },
      },
      'latency',
      60_000 + options.latencySamples * (50 + options.latencyGapMs * 2),
    );
    const final = await waitForCatchUp(channels, latencyLeaderId);
    // Follower CPU over the latency run (the status polls around it add a little).
    const followers = final.filter((status) => status.id !== latencyLeaderId);
    const before = (status: NodeStatus): NodeStatus => beforeLatency.find((other) => other.id === status.id) as NodeStatus;
    const followerCpuMicros = followers.map((status) => status.cpuMicros - before(status).cpuMicros);
    const followerSystemCpuMicros = followers.map((status) => status.systemCpuMicros - before(status).systemCpuMicros);
    return { transport, throughput, latency, nodes: final, followerCpuMicros, followerSystemCpuMicros };
  } finally {
    processes.push(...(await stopNodes(channels, transport)));
  }
}

/** The reference of the commit latency record: the honest floor of a 3-node commit at the leader. */
const fanOutReferenceName = 'two-follower fan-out over loopback TCP, first answer, p50 (same run)';

function recordsOf(measurement: TransportMeasurement, options: ResolvedOptions): { records: BenchRecord[]; line: string } {
  const { transport, throughput, latency } = measurement;
  const { nodes, batch, payloadBytes } = options;
  const leader = measurement.nodes.find((status) => status.role === 'leader');
  const checksum = `${leader?.applied ?? 0}:${leader?.checksum ?? 0}`;
  const hold = options.holdCommitNotices ? ', commit notices held' : '';
  const scenario = `${nodes} processes, loopback, load in the leader (${options.batchesInflightMax} x ${batch} in flight)${hold}`;
  const base = { suite: processClusterSuite, scenario, transport, nodes, batch } as const;
  const records: BenchRecord[] = [];
  const rate = summarize(throughput.windowRates);
  const target = transport === 'tcp' ? processClusterTargets.tcpEntriesPerSecond : processClusterTargets.wsEntriesPerSecond;
  records.push({
    ...base,
    ...knownMetrics.throughput,
    ...rate,
    ...(measurement.coreReference === null ? {} : { reference: referenceFor(rate.value, 'core direct delivery, 3 nodes in one process (same run)', measurement.coreReference, 'entries/s') }),
    checksum,
    note: `committed and applied at the leader, one sample per ${options.windowMs} ms window; target >= ${target}; ${throughput.failures} failed proposals`,
  });
  const entries = throughput.entries;
  const before = throughput.statsBefore;
  const after = throughput.statsAfter;
  const wireBytes = after.bytesSent - before.bytesSent + (after.bytesReceived - before.bytesReceived);
  const messages = after.messagesSent - before.messagesSent + (after.messagesReceived - before.messagesReceived);
  const entryFrameBytes = frameBytes(1, payloadBytes);
  const wirePerEntry = entries > 0 ? wireBytes / entries : 0;
  records.push({
    ...base,
    ...knownMetrics.bytesPerEntry,
    value: wirePerEntry,
    samples: 1,
    spread: null,
    reference: referenceFor(wirePerEntry, 'payload bytes per entry', payloadBytes, 'B/entry'),
    checksum,
    note:
      `all frames both ways (appends, responses, heartbeats) over the timed windows, per committed entry; payload ${payloadBytes} B, ` +
      `entry frame in the log ${entryFrameBytes} B, least possible ${(nodes - 1) * entryFrameBytes} B ((N-1) x entry frame)`,
  });
  const messagesPerEntry = entries > 0 ? messages / entries : 0;
  records.push({
    ...base,
    ...knownMetrics.messagesPerEntry,
    value: messagesPerEntry,
    samples: 1,
    spread: null,
    checksum,
    note: `minimum 2(N-1)/B = ${messagesPerEntryMin(nodes, batch)}`,
  });
  const cpuPerEntry = entries > 0 ? throughput.cpuMicros / entries : 0;
  records.push({
    ...base,
    metric: 'leader-cpu-per-entry',
    unit: 'µs/entry',
    value: cpuPerEntry,
    samples: 1,
    spread: null,
    note: `leader process CPU (user + system) over the timed windows; ${throughput.turns} turns, ${throughput.readyCycles} Ready cycles`,
  });
  let latencyLine = 'no latency samples';
  if (latency.samplesMicros.length > 0) {
    const sortedMicros = [...latency.samplesMicros].sort((a, b) => a - b);
    const samplesMs = sortedMicros.map((micros) => micros / 1000);
    const p90 = quantileOfSorted(sortedMicros, 0.9);
    const p99 = quantileOfSorted(sortedMicros, 0.99);
    const summary = summarize(samplesMs);
    records.push({
      ...base,
      scenario: `${nodes} processes, loopback, idle cluster, one proposal at a time (${options.latencyGapMs} ms apart)${hold}`,
      batch: 1,
      ...knownMetrics.commitLatency,
      ...summary,
      distribution: downsample(samplesMs),
      ...(measurement.fanOutFirstReference === null
        ? {}
        : { reference: referenceFor(summary.value, fanOutReferenceName, measurement.fanOutFirstReference / 1000, 'ms') }),
      checksum,
      note:
        `propose -> committed and applied at the leader; p90 ${p90.toFixed(0)} µs, p99 ${p99.toFixed(0)} µs; ` +
        (measurement.roundTripReference === null
          ? ''
          : `${((summary.value * 1000) / measurement.roundTripReference).toFixed(2)}x the loopback round trip to one echo process (p50 ${measurement.roundTripReference.toFixed(0)} µs, same run); `) +
        `phase medians: to first send ${latency.phasesMicros.toFirstSend.toFixed(0)} µs, sends ${latency.phasesMicros.sending.toFixed(0)} µs, ` +
        `to first response ${latency.phasesMicros.toFirstResponse.toFixed(0)} µs, to applied ${latency.phasesMicros.responseToApplied.toFixed(0)} µs` +
        `${transport === 'tcp' ? `; target p50 <= ${processClusterTargets.tcpCommitLatencyP50Micros} µs` : ''}; ${latency.failures} failed`,
    });
    const count = sortedMicros.length;
    const phases = latency.phasesMicros;
    const followerCpu = measurement.followerCpuMicros
      .map((micros, i) => `${(micros / count).toFixed(0)} (system ${((measurement.followerSystemCpuMicros[i] as number) / count).toFixed(0)})`)
      .join(' and ');
    const floors = [
      measurement.roundTripReference === null ? null : `${((summary.value * 1000) / measurement.roundTripReference).toFixed(2)}x the loopback round trip ${measurement.roundTripReference.toFixed(0)} µs`,
      measurement.fanOutFirstReference === null
        ? null
        : `${((summary.value * 1000) / measurement.fanOutFirstReference).toFixed(2)}x the two-follower fan-out floor ${measurement.fanOutFirstReference.toFixed(0)} µs (first answer)`,
    ].filter((floor) => floor !== null);
    const roundTrip = floors.length === 0 ? '' : ` = ${floors.join(', ')}`;
    latencyLine =
      `commit latency p50 ${(summary.value * 1000).toFixed(0)} µs (p25 ${quantileOfSorted(sortedMicros, 0.25).toFixed(0)}, p75 ${quantileOfSorted(sortedMicros, 0.75).toFixed(0)})${roundTrip}, p90 ${p90.toFixed(0)} µs, p99 ${p99.toFixed(0)} µs (${count} samples${transport === 'tcp' ? `; target p50 <= ${processClusterTargets.tcpCommitLatencyP50Micros} µs` : ''}); ` +
      `${(latency.messages / count).toFixed(2)} messages per proposal\n     ` +
      `phases (medians): propose -> first send ${phases.toFirstSend.toFixed(0)} µs, sends ${phases.sending.toFixed(0)} µs, ` +
      `-> first response ${phases.toFirstResponse.toFixed(0)} µs, -> applied ${phases.responseToApplied.toFixed(0)} µs; CPU per proposal: leader ${(latency.cpuMicros / count).toFixed(0)} µs (system ${(latency.systemCpuMicros / count).toFixed(0)}), followers ${followerCpu} µs`;
  }
  const spread = rate.spread;
  const reference = measurement.coreReference === null ? '' : ` = ${((rate.value / measurement.coreReference) * 100).toFixed(1)}% of core direct ${formatRate(measurement.coreReference)}`;
  const line =
    `${transport.padEnd(3)}  ${formatRate(rate.value)} entries/s (p25 ${formatRate(spread?.p25 ?? rate.value)}, p75 ${formatRate(spread?.p75 ?? rate.value)}, ${rate.samples} windows; target ${formatRate(target)})${reference}\n` +
    `     ${latencyLine}\n` +
    `     wire ${wirePerEntry.toFixed(1)} B/entry for ${payloadBytes} B of payload (${(wirePerEntry / payloadBytes).toFixed(2)}x; entry frame ${entryFrameBytes} B, least ${(nodes - 1) * entryFrameBytes} B); ` +
    `${messagesPerEntry.toFixed(4)} messages/entry (min ${messagesPerEntryMin(nodes, batch).toFixed(4)}); leader CPU ${cpuPerEntry.toFixed(3)} µs/entry`;
  return { records, line };
}

function formatRate(value: number): string {
  return value >= 1e6 ? `${(value / 1e6).toFixed(2)}M` : `${(value / 1e3).toFixed(0)}k`;
}

/**
 * Runs the benchmark for each transport in turn and returns records for results.ts (suite
 * `cluster-process`), the raw measurements, how every node process ended, and a human summary.
 * Nodes are stopped (and killed if they do not exit) whatever happens.
 */
export async function runProcessCluster(options: ProcessClusterOptions = {}): Promise<ProcessClusterResult> {
  const resolved = resolveOptions(options);
  const transports = options.transports ?? ['tcp', 'ws'];
  const log = options.log ?? (() => undefined);
  const processes: ProcessExit[] = [];
  const measurements: TransportMeasurement[] = [];
  const records: BenchRecord[] = [];
  const lines: string[] = [];
  const notes: string[] = [
    `load generated inside the leader process (closed loop of ${resolved.batchesInflightMax} batches of ${resolved.batch} x ${resolved.payloadBytes}-byte commands); in-memory storage; counter state machine`,
    `runtime holdCommitNotices ${resolved.holdCommitNotices ? 'on' : 'off (the default)'}; tick ${resolved.tickIntervalMs} ms`,
  ];
  for (const transport of transports) {
    let coreReference: number | null = null;
    let probeReference: number | null = null;
    let roundTripReference: number | null = null;
    let fanOutFirstReference: number | null = null;
    let fanOutBothReference: number | null = null;
    let floorsLine: string | null = null;
    if (options.skipReferences !== true) {
      const probeSamples = Math.min(2000, Math.max(200, resolved.latencySamples));
      log(`${transport}: in-run references (loopback round trip, two-follower fan-out)`);
      const roundTrips = summarize(await runRoundTripProbe(probeSamples, 200, resolved.latencyGapMs));
      roundTripReference = roundTrips.value;
      records.push({
        suite: processClusterSuite,
        scenario: `reference before ${transport}: ${probeMessageBytes}-byte round trip to an echo process over loopback TCP (${resolved.latencyGapMs} ms apart)`,
        transport: 'tcp',
        nodes: 2,
        batch: 1,
        metric: 'round-trip-latency',
        unit: 'µs',
        ...roundTrips,
      });
      const fanOut = await runFanOutProbe(probeSamples, 200, resolved.latencyGapMs);
      const fanOutFirst = summarize(fanOut.firstMicros);
      const fanOutBoth = summarize(fanOut.bothMicros);
      fanOutFirstReference = fanOutFirst.value;
      fanOutBothReference = fanOutBoth.value;
      const fanOutBase = {
        suite: processClusterSuite,
        scenario: `reference before ${transport}: ${probeMessageBytes}-byte message to two echo processes, written one after the other, over loopback TCP (${resolved.latencyGapMs} ms apart)`,
        transport: 'tcp',
        nodes: 3,
        batch: 1,
        unit: 'µs',
      } as const;
      records.push({
        ...fanOutBase,
        metric: 'fan-out-first-answer-latency',
        ...fanOutFirst,
        reference: referenceFor(fanOutFirst.value, 'loopback round trip to one echo process, p50 (same run)', roundTrips.value, 'µs'),
        note: 'from the first write until the first echo is complete: the floor of a 3-node commit at the leader (one follower answer completes the quorum)',
      });
      records.push({
        ...fanOutBase,
        // "last" rather than "both": the report orders columns by name, and first should come first.
        metric: 'fan-out-last-answer-latency',
        ...fanOutBoth,
        reference: referenceFor(fanOutBoth.value, 'loopback round trip to one echo process, p50 (same run)', roundTrips.value, 'µs'),
        note: 'from the first write until both echoes are complete (the last of the two answers)',
      });
      const quartiles = (summary: Summary): string => `p50 ${summary.value.toFixed(0)} µs (p25 ${(summary.spread?.p25 ?? summary.value).toFixed(0)}, p75 ${(summary.spread?.p75 ?? summary.value).toFixed(0)})`;
      floorsLine =
        `     floors (same run, ${probeSamples} samples ${resolved.latencyGapMs} ms apart): loopback round trip ${quartiles(roundTrips)}; ` +
        `two-follower fan-out, first answer ${quartiles(fanOutFirst)}, both answers ${quartiles(fanOutBoth)}`;
      log(`${transport}: in-run references (core direct delivery, speed-of-light probe)`);
      const core = await runCoreThroughput({ nodes: resolved.nodes, batch: resolved.batch, payloadBytes: resolved.payloadBytes, size: 'small' });
      coreReference = core.entriesPerSecond;
      const probe = summarize(runProbe({ batch: resolved.batch, payloadBytes: resolved.payloadBytes, nodes: resolved.nodes, durationMs: 500 }).samples);
      probeReference = probe.value;
      records.push({
        suite: processClusterSuite,
        scenario: `reference before ${transport}: core direct delivery, ${resolved.nodes} RaftNodes in one process`,
        transport: 'none',
        nodes: resolved.nodes,
        batch: resolved.batch,
        ...knownMetrics.throughput,
        value: core.entriesPerSecond,
        samples: core.iterations,
        // runCoreThroughput reports quantiles but no standard deviation: the spread goes in the note.
        spread: null,
        checksum: String(core.checksum),
        note: `median of ${core.iterations} batches; p25 ${core.spread.p25.toFixed(0)}, p75 ${core.spread.p75.toFixed(0)}, min ${core.spread.min.toFixed(0)}, max ${core.spread.max.toFixed(0)}`,
      });
      records.push({
        suite: processClusterSuite,
        scenario: `reference before ${transport}: speed-of-light probe (encode once, 2 copies, 3 applies)`,
        transport: 'none',
        nodes: resolved.nodes,
        batch: resolved.batch,
        ...knownMetrics.throughput,
        ...probe,
      });
    }
    const profileDirectory = options.profileDirectory === undefined || options.profileDirectory === null ? null : path.join(options.profileDirectory, transport);
    const measured = await measureTransport(transport, resolved, profileDirectory, processes, log);
    const measurement: TransportMeasurement = { ...measured, coreReference, probeReference, roundTripReference, fanOutFirstReference, fanOutBothReference };
    measurements.push(measurement);
    const { records: transportRecords, line } = recordsOf(measurement, resolved);
    records.push(...transportRecords);
    lines.push(line);
    if (floorsLine !== null) lines.push(floorsLine);
    if (probeReference !== null) lines.push(`     speed-of-light probe ${formatRate(probeReference)} entries/s (same run)`);
    if (profileDirectory !== null) notes.push(`CPU profiles of the ${transport} nodes in ${profileDirectory}`);
  }
  return { records, measurements, processes, notes, summary: lines.join('\n') };
}
