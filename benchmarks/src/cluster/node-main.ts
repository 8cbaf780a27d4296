/**
 * One node process of the process-cluster benchmark: a RaftRuntime over the TCP or WebSocket
 * transport on 127.0.0.1, in-memory storage, the counter state machine. Started by the driver
 * (process-cluster.ts) with an IPC channel; it listens on a free port, reports it, waits for its
 * peers' ports, then runs Raft and answers the driver's requests (protocol.ts).
 *
 * The throughput load runs here, in the leader, rather than in a client process: a client would
 * have to ship every 16-byte command to the leader over some channel, and with one million
 * commands a second that channel (IPC JSON, or a client protocol) would cost more CPU than the
 * replication being measured, on a machine with two cores for three nodes. Generating the load in
 * the leader measures what the issue asks (committed entries/s of the replicated log); the cost of
 * a client front end is measured separately by bench:http.
 *
 *   node benchmarks/dist/cluster/node-main.js --id 1 --nodes 3 --transport tcp [--secret S] [--tick-ms 10]
 *        [--hold-commit-notices]
 */
import { parseArgs } from 'node:util';
import { CounterMachine, RaftRuntime, type RuntimeTransport, createLogger, silentLogger } from '@raftlab/runtime';
import { TcpTransport, WsTransport } from '@raftlab/transport';
import type { LatencyLoad, LatencyReport, NodeReply, NodeRequest, NodeStatus, ThroughputLoad, ThroughputReport } from './protocol.js';

const { values } = parseArgs({
  options: {
    id: { type: 'string' },
    nodes: { type: 'string' },
    transport: { type: 'string' },
    secret: { type: 'string' },
    'tick-ms': { type: 'string' },
    'hold-commit-notices': { type: 'boolean' },
  },
});
const id = Number(values.id);
const nodeCount = Number(values.nodes ?? 3);
const transportKind = values.transport ?? 'tcp';
if (!(Number.isSafeInteger(id) && id >= 1 && id <= nodeCount)) throw new Error(`--id must be in [1, ${nodeCount}], got ${values.id}`);
if (transportKind !== 'tcp' && transportKind !== 'ws') throw new Error(`--transport must be tcp or ws, got ${transportKind}`);
if (process.send === undefined) throw new Error('node-main runs under the process-cluster driver (an IPC channel is required)');
const tickIntervalMs = Number(values['tick-ms'] ?? 10);

const logger = process.env.LOG_LEVEL === undefined ? silentLogger : createLogger({ process: 'cluster-node', node: id });
const transportOptions = {
  id,
  clusterId: 'bench-cluster-process',
  secret: values.secret ?? 'bench-cluster-process-secret',
  listen: { host: '127.0.0.1', port: 0 },
  logger,
};
const transport = transportKind === 'tcp' ? new TcpTransport(transportOptions) : new WsTransport(transportOptions);
const machine = new CounterMachine();
let runtime: RaftRuntime<number> | null = null;

/**
 * Timestamps of one proposal's way through the leader, taken at the transport boundary by a thin
 * wrapper (nothing in the runtime is instrumented): when the first append carrying entries is
 * handed to the transport, when the last send of that Ready returned, and when the first
 * appendResponse arrived. Armed only during the latency run.
 */
const marks = { armed: false, sendStart: 0, sendEnd: 0, response: 0 };
const timedTransport: RuntimeTransport = {
  send(message) {
    if (!marks.armed || marks.response !== 0) {
      transport.send(message);
      return;
    }
    if (marks.sendStart === 0 && message.type === 'append' && message.entries.count > 0) marks.sendStart = performance.now();
    transport.send(message);
    if (marks.sendStart !== 0) marks.sendEnd = performance.now();
  },
  onMessage(handler) {
    transport.onMessage((message) => {
      if (marks.armed && marks.response === 0 && marks.sendStart !== 0 && message.type === 'appendResponse') marks.response = performance.now();
      handler(message);
    });
  },
  start: () => transport.start(),
  stop: () => transport.stop(),
};

function reply(message: NodeReply): void {
  process.send?.(message);
}

function cpuMicros(): number {
  const usage = process.cpuUsage();
  return usage.user + usage.system;
}

function statusOf(): NodeStatus {
  const node = runtime?.node;
  return {
    id,
    role: node?.role ?? 'follower',
    term: node?.term ?? 0,
    leaderId: node?.leaderId ?? 0,
    commitIndex: node?.commitIndex ?? 0,
    appliedIndex: node?.appliedIndex ?? 0,
    applied: machine.count,
    checksum: machine.checksum,
    transport: transport.stats(),
    cpuMicros: cpuMicros(),
    systemCpuMicros: process.cpuUsage().system,
    turns: runtime?.counters.turns ?? 0,
    readyCycles: runtime?.counters.readyCycles ?? 0,
  };
}

function requireLeader(): RaftRuntime<number> {
  if (runtime === null || runtime.node.role !== 'leader') throw new Error(`node ${id} is not the leader`);
  return runtime;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * A closed loop of `batchesInflightMax` proposeBatch calls: each completion starts the next, so the
 * leader always has that many batches between propose and apply. Rates are read from the counter
 * machine at each window's end, divided by the window's measured length (a late timer lengthens
 * the window instead of inflating the rate).
 */
async function runThroughput(load: ThroughputLoad): Promise<ThroughputReport> {
  const leader = requireLeader();
  const payload = new Uint8Array(load.payloadBytes).fill(7);
  const items: Uint8Array[] = new Array<Uint8Array>(load.batch).fill(payload);
  let running = true;
  let inflight = 0;
  let failures = 0;
  let firstFailure: string | null = null;
  let drained: () => void = () => undefined;
  const onDone = (): void => {
    inflight -= 1;
    pump();
  };
  const onFailure = (error: unknown): void => {
    failures += 1;
    firstFailure ??= error instanceof Error ? error.message : String(error);
    inflight -= 1;
    // A refusal (busy, leadership change) backs off for a tick rather than spinning.
    setTimeout(pump, 1);
  };
  const pump = (): void => {
    while (running && inflight < load.batchesInflightMax) {
      inflight += 1;
      leader.proposeBatch(items).then(onDone, onFailure);
    }
    if (!running && inflight === 0) drained();
  };
  pump();
  await sleep(load.warmupMs);
  const statsBefore = transport.stats();
  const cpuBefore = cpuMicros();
  const turnsBefore = leader.counters.turns;
  const cyclesBefore = leader.counters.readyCycles;
  const appliedBefore = machine.count;
  const started = performance.now();
  const windowRates: number[] = [];
  let windowStart = started;
  let windowApplied = appliedBefore;
  for (let w = 0; w < load.windows; w++) {
    await sleep(load.windowMs);
    const now = performance.now();
    const applied = machine.count;
    windowRates.push(((applied - windowApplied) * 1000) / (now - windowStart));
    windowStart = now;
    windowApplied = applied;
  }
  const elapsedMs = performance.now() - started;
  const report: ThroughputReport = {
    windowRates,
    entries: machine.count - appliedBefore,
    elapsedMs,
    statsBefore,
    statsAfter: transport.stats(),
    failures,
    firstFailure,
    cpuMicros: cpuMicros() - cpuBefore,
    turns: leader.counters.turns - turnsBefore,
    readyCycles: leader.counters.readyCycles - cyclesBefore,
  };
  running = false;
  await new Promise<void>((resolve) => {
    drained = resolve;
    if (inflight === 0) resolve();
  });
  return report;
}

/** Proposals one at a time, each `gapMs` after the previous one applied, so each finds the cluster idle. */
async function runLatency(load: LatencyLoad): Promise<LatencyReport> {
  const leader = requireLeader();
  const payload = new Uint8Array(load.payloadBytes).fill(7);
  const samplesMicros: number[] = [];
  const phases: number[][] = [[], [], [], []];
  let failures = 0;
  let cpuBefore = process.cpuUsage();
  let statsBefore = transport.stats();
  for (let i = 0; i < load.warmupSamples + load.samples; i++) {
    if (i === load.warmupSamples) {
      cpuBefore = process.cpuUsage();
      statsBefore = transport.stats();
    }
    marks.sendStart = 0;
    marks.sendEnd = 0;
    marks.response = 0;
    marks.armed = true;
    const started = performance.now();
    try {
      await leader.propose(payload);
    } catch {
      failures += 1;
      await sleep(5);
      continue;
    }
    const ended = performance.now();
    marks.armed = false;
    if (load.gapMs > 0) await sleep(load.gapMs);
    if (i < load.warmupSamples) continue;
    samplesMicros.push((ended - started) * 1000);
    if (marks.response !== 0) {
      (phases[0] as number[]).push((marks.sendStart - started) * 1000);
      (phases[1] as number[]).push((marks.sendEnd - marks.sendStart) * 1000);
      (phases[2] as number[]).push((marks.response - marks.sendEnd) * 1000);
      (phases[3] as number[]).push((ended - marks.response) * 1000);
    }
  }
  const cpu = process.cpuUsage(cpuBefore);
  const statsAfter = transport.stats();
  const messages = statsAfter.messagesSent - statsBefore.messagesSent + (statsAfter.messagesReceived - statsBefore.messagesReceived);
  const median = (values: number[]): number => (values.length === 0 ? 0 : (values.sort((a, b) => a - b)[values.length >> 1] as number));
  const phasesMicros = {
    toFirstSend: median(phases[0] as number[]),
    sending: median(phases[1] as number[]),
    toFirstResponse: median(phases[2] as number[]),
    responseToApplied: median(phases[3] as number[]),
  };
  return { samplesMicros, failures, cpuMicros: cpu.user + cpu.system, systemCpuMicros: cpu.system, messages, phasesMicros };
}

async function startRuntime(ports: readonly (readonly [number, number])[]): Promise<void> {
  for (const [peer, port] of ports) if (peer !== id) transport.setPeerAddress(peer, { host: '127.0.0.1', port });
  runtime = await RaftRuntime.start<number>({
    id,
    peers: ports.map(([peer]) => peer),
    transport: timedTransport,
    stateMachine: machine,
    tickIntervalMs,
    holdCommitNotices: values['hold-commit-notices'] === true,
    logger,
  });
}

async function handle(request: NodeRequest): Promise<NodeReply> {
  switch (request.type) {
    case 'peers':
      await startRuntime(request.ports);
      return { type: 'ok', seq: request.seq };
    case 'status':
      return { type: 'status', seq: request.seq, status: statusOf() };
    case 'throughput':
      return { type: 'throughput', seq: request.seq, report: await runThroughput(request.load) };
    case 'latency':
      return { type: 'latency', seq: request.seq, report: await runLatency(request.load) };
    case 'stop':
      await runtime?.stop();
      await transport.stop();
      return { type: 'ok', seq: request.seq };
  }
}

process.on('message', (request: NodeRequest) => {
  handle(request).then(
    (answer) => {
      reply(answer);
      if (request.type === 'stop') process.disconnect();
    },
    (error: unknown) => reply({ type: 'error', seq: request.seq, message: error instanceof Error ? (error.stack ?? error.message) : String(error) }),
  );
});
// The driver went away (or said stop): nothing keeps this process alive but the runtime's timers.
process.on('disconnect', () => {
  void (async () => {
    await runtime?.stop();
    await transport.stop();
    process.exit(0);
  })();
});

await transport.start();
reply({ type: 'listening', id, port: transport.address().port });

