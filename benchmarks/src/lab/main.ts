/**
 * The bench lab orchestrator: `pnpm bench` (the full sweep, 8-11 minutes on a shared 2-core
 * machine, mostly waiting on election timers) and `pnpm bench:quick` (a representative subset in
 * 1-1.5 minutes, what CI runs so the lab never rots). Runs the suites of options.ts in order with a progress bar on stderr, then writes
 * results/<timestamp>-<commit>.json, results/latest.json, results/latest.md and
 * results/charts/*.svg (results.ts writeRun, scripts/src/report.ts).
 *
 * Every wall-clock figure is measured beside in-run references (the speed-of-light probe for each
 * cluster size, and the peers), so a slow or busy machine shows up in the references too. A suite
 * that fails is recorded as a note and the run goes on; the exit code is then 1.
 */
import path from 'node:path';
import { pathToFileURL } from 'node:url';

import { Bench } from 'tinybench';

import { DirectCluster } from '../core/direct-cluster.js';
import { runMicro } from '../core/micro.js';
import { runProbe } from '../core/probe.js';
import { runPeers } from '../peers.js';
import { type BenchRecord, type BenchRun, finishRun, gitInfo, knownMetrics, machineInfo, repositoryRoot, summarize, writeRun } from '../results.js';
import { measureElectionTicks, runtimeElectionTimeoutTicks } from './election-ticks.js';
import { type LabOptions, type LabPlan, LabUsageError, labPlan, labUsage, parseLabArguments, suiteDescriptions } from './options.js';
import { runProcessClusterHook } from './process-cluster-hook.js';
import { Progress } from './progress.js';
import { distributionRecords, electionRecords, exactRecord, peerRecords, summaryRecord, trafficRecords } from './records.js';
import { RuntimeCluster } from './runtime-cluster.js';
import { measureElectionMs, measureHeapPerEntry, measureIdleLatency, measureLoad, measureRecovery } from './runtime-suites.js';
import { runWireMicro } from './wire-micro.js';

/** Steps the progress bar plans for `plan`. */
export function plannedSteps(plan: LabPlan): number {
  let steps = 0;
  for (const suite of plan.suites) {
    switch (suite) {
      case 'probe':
      case 'core':
        steps += probeSizes(plan).length;
        break;
      case 'micro':
        steps += 2;
        break;
      case 'elections':
        steps += plan.nodeCounts.length + plan.grid.length * 2 * plan.electionMsTrials;
        break;
      case 'cluster':
        steps += plan.grid.length * 2;
        break;
      case 'recovery':
        steps += plan.recoveryGrid.length * plan.recoveryTrials;
        break;
      case 'memory':
        steps += plan.nodeCounts.length;
        break;
      case 'process-cluster':
      case 'peers':
        steps += 1;
        break;
    }
  }
  return steps;
}

/** Cluster sizes that need a probe figure: every size any suite runs. */
function probeSizes(plan: LabPlan): number[] {
  return [...new Set([...plan.nodeCounts, ...plan.grid.map((cell) => cell.nodes)])].sort((a, b) => a - b);
}

/** The run being assembled. */
class Collector {
  readonly records: BenchRecord[] = [];
  readonly notes: string[] = [];
  readonly seeds = new Set<number>();
  failures = 0;
  /** raftlab core throughput at 3 nodes, for the peers' ratios. */
  core3: number | null = null;

  /**
   * The probe for `nodes`, measured now (a short run just before the figure it is compared with):
   * the machine's load drifts over a ten-minute sweep, so a reference taken minutes earlier would
   * not describe the machine the figure met.
   */
  probeReference(nodes: number, plan: LabPlan): { name: string; value: number; unit: string } {
    const probe = runProbe({ nodes, batch: plan.batch, payloadBytes: plan.entryBytes, durationMs: probeNowMs });
    const value = summarize(probe.samples).value;
    return { name: `speed-of-light probe, ${nodes} nodes, run just before`, value, unit: 'entries/s' };
  }
}

/** Length of the probe run taken just before each wall-clock figure it is the reference of. */
const probeNowMs = 300;

async function runCore(plan: LabPlan, nodes: number): Promise<{ samples: number[]; messagesPerEntry: number; checksum: number }> {
  const cluster = new DirectCluster({ nodes });
  cluster.electFirst();
  const payload = new Uint8Array(plan.entryBytes).fill(7);
  const timing = plan.coreSize === 'large' ? { time: 5000, warmupTime: 500 } : { time: 1000, warmupTime: 200 };
  const bench = new Bench({ ...timing, retainSamples: true });
  bench.add(`core ${nodes} nodes`, () => cluster.runBatch(plan.batch, payload));
  const messagesBefore = cluster.messages;
  const appliedBefore = cluster.applied;
  await bench.run();
  const result = bench.tasks[0]?.result;
  if (result === undefined || !('latency' in result)) throw new Error(`core ${nodes} nodes did not complete`);
  const samples = (result.latency.samples ?? []).map((ms) => (plan.batch * 1000) / ms);
  const entries = (cluster.applied - appliedBefore) / nodes;
  return { samples, messagesPerEntry: (cluster.messages - messagesBefore) / entries, checksum: cluster.checksum };
}

async function suite(name: string, collector: Collector, progress: Progress, body: () => Promise<void>): Promise<void> {
  try {
    await body();
  } catch (error) {
    collector.failures += 1;
    const message = error instanceof Error ? error.message : String(error);
    collector.notes.push(`suite ${name} FAILED: ${message}`);
    progress.log(`bench: suite ${name} failed: ${message}`);
  }
}

/** Runs the plan's suites into `collector`. */
async function runSuites(plan: LabPlan, collector: Collector, progress: Progress): Promise<void> {
  const seed = plan.seed;
  collector.seeds.add(seed);
  const has = (name: LabPlan['suites'][number]): boolean => plan.suites.includes(name);

  if (has('probe')) {
    await suite('probe', collector, progress, async () => {
      for (const nodes of probeSizes(plan)) {
        progress.show(`probe ${nodes} nodes`);
        const probe = runProbe({ nodes, batch: plan.batch, payloadBytes: plan.entryBytes, durationMs: plan.probeMs });
        const record = { ...summaryRecord({ suite: 'probe', transport: 'none', nodes, batch: plan.batch }, knownMetrics.throughput.metric, knownMetrics.throughput.unit, probe.samples), checksum: String(probe.checksum) };
        collector.records.push(record);
        progress.step(`probe ${nodes} nodes`);
      }
    });
  }

  if (has('micro')) {
    await suite('micro', collector, progress, async () => {
      progress.show('micro: core');
      collector.records.push(...(await runMicro(plan.microSize)));
      progress.step('micro: core');
      progress.show('micro: wire');
      collector.records.push(...(await runWireMicro(plan.microSize)));
      progress.step('micro: wire');
    });
  }

  if (has('core')) {
    await suite('core', collector, progress, async () => {
      for (const nodes of probeSizes(plan)) {
        progress.show(`core ${nodes} nodes`);
        const core = await runCore(plan, nodes);
        const place = { suite: 'core', scenario: 'direct delivery', transport: 'none' as const, nodes, batch: plan.batch };
        const record = { ...summaryRecord(place, knownMetrics.throughput.metric, knownMetrics.throughput.unit, core.samples, collector.probeReference(nodes, plan)), checksum: String(core.checksum) };
        collector.records.push(record, exactRecord(place, knownMetrics.messagesPerEntry.metric, knownMetrics.messagesPerEntry.unit, core.messagesPerEntry));
        if (nodes === 3) collector.core3 = record.value;
        progress.step(`core ${nodes} nodes`);
      }
    });
  }

  if (has('elections')) {
    await suite('elections', collector, progress, async () => {
      for (const nodes of plan.nodeCounts) {
        progress.show(`elections: ticks, ${nodes} nodes`);
        const figures = measureElectionTicks(nodes, plan.electionTickTrials, seed);
        for (const s of figures.seeds) collector.seeds.add(s);
        const place = { suite: 'elections', transport: 'none' as const, nodes, batch: 1, seeds: figures.seeds };
        collector.records.push(...electionRecords({ ...place, scenario: 'cold start' }, 'ticks', figures.coldStart));
        collector.records.push(...electionRecords({ ...place, scenario: 'leader loss' }, 'ticks', figures.leaderLoss));
        progress.step(`elections: ticks, ${nodes} nodes`);
      }
      for (const { transport, nodes } of plan.grid) {
        const label = `elections: ms, ${transport} ${nodes} nodes`;
        progress.show(label);
        const cellSeed = (seed + 31 * nodes + (transport === 'memory' ? 0 : transport === 'tcp' ? 1 : 2)) >>> 0;
        collector.seeds.add(cellSeed);
        const figures = await measureElectionMs(transport, nodes, plan.electionMsTrials, cellSeed, () => progress.step(label));
        const place = { suite: 'elections', transport, nodes, batch: 1, seeds: [cellSeed] };
        collector.records.push(...electionRecords({ ...place, scenario: 'cold start' }, 'ms', figures.coldStart));
        collector.records.push(...electionRecords({ ...place, scenario: 'leader loss' }, 'ms', figures.leaderLoss));
      }
    });
  }

  if (has('cluster')) {
    await suite('cluster', collector, progress, async () => {
      for (const { transport, nodes } of plan.grid) {
        const label = `cluster ${transport} ${nodes} nodes`;
        progress.show(`${label}: idle`);
        const cellSeed = (seed + 97 * nodes) >>> 0;
        const cluster = await RuntimeCluster.create({ transport, nodes, seed: cellSeed });
        try {
          await cluster.start();
          const reference = collector.probeReference(nodes, plan);
          const idle = await measureIdleLatency(cluster, plan);
          progress.step(`${label}: idle`);
          progress.show(`${label}: load`);
          const load = await measureLoad(cluster, plan);
          progress.step(`${label}: load`);
          const base = { suite: 'cluster', transport, nodes, batch: plan.batch };
          const tails = ['p90', 'p99', 'max'] as const;
          collector.records.push(
            ...distributionRecords({ ...base, scenario: 'idle' }, knownMetrics.commitLatency.metric, 'ms', idle.commitMs, tails),
            ...distributionRecords({ ...base, scenario: 'idle' }, knownMetrics.applyLatency.metric, 'ms', idle.applyMs, tails),
            ...trafficRecords({ ...base, scenario: 'idle' }, idle),
            ...distributionRecords({ ...base, scenario: 'load' }, knownMetrics.commitLatency.metric, 'ms', load.commitMs, tails),
            ...distributionRecords({ ...base, scenario: 'load' }, knownMetrics.applyLatency.metric, 'ms', load.applyMs, tails),
            summaryRecord({ ...base, scenario: 'load' }, knownMetrics.throughput.metric, knownMetrics.throughput.unit, load.throughput, reference),
            ...trafficRecords({ ...base, scenario: 'load' }, load),
          );
        } finally {
          await cluster.stop();
        }
      }
    });
  }

  if (has('recovery')) {
    await suite('recovery', collector, progress, async () => {
      for (const { transport, nodes } of plan.recoveryGrid) {
        const ms: number[] = [];
        const rates: number[] = [];
        for (let trial = 0; trial < plan.recoveryTrials; trial++) {
          const label = `recovery ${transport} ${nodes} nodes, trial ${trial + 1}/${plan.recoveryTrials}`;
          progress.show(label);
          const figures = await measureRecovery(transport, nodes, plan.recoveryLagEntries, plan, (seed + 13 * trial + nodes) >>> 0);
          ms.push(figures.ms);
          rates.push((figures.entries * 1000) / figures.ms);
          progress.step(label);
        }
        const place = { suite: 'recovery', scenario: `lag ${plan.recoveryLagEntries} entries`, transport, nodes, batch: plan.batch };
        collector.records.push(summaryRecord(place, knownMetrics.recoveryMs.metric, knownMetrics.recoveryMs.unit, ms), summaryRecord(place, 'recovery-rate', 'entries/s', rates));
      }
    });
  }

  if (has('memory')) {
    await suite('memory', collector, progress, async () => {
      for (const nodes of plan.nodeCounts) {
        progress.show(`memory ${nodes} nodes`);
        const perEntry = await measureHeapPerEntry(nodes, plan.heapEntries, plan, (seed + nodes) >>> 0);
        const place = {
          suite: 'memory',
          scenario: `${plan.heapEntries} entries of ${plan.entryBytes} B retained`,
          transport: 'memory' as const,
          nodes,
          batch: plan.batch,
        };
        collector.records.push(exactRecord(place, knownMetrics.heapBytesPerEntry.metric, knownMetrics.heapBytesPerEntry.unit, perEntry));
        progress.step(`memory ${nodes} nodes`);
      }
    });
  }

  if (has('process-cluster')) {
    await suite('process-cluster', collector, progress, async () => {
      progress.show('process-cluster');
      const outcome = await runProcessClusterHook(plan.mode === 'quick', (line) => progress.show(`process-cluster: ${line}`));
      if (outcome.ok) {
        collector.records.push(...outcome.records);
        collector.notes.push(...outcome.notes);
      } else collector.notes.push(`suite process-cluster skipped: ${outcome.reason}`);
      progress.step('process-cluster');
    });
  }

  if (has('peers')) {
    await suite('peers', collector, progress, async () => {
      progress.show('peers (etcd raft, liferaft)');
      const results = await runPeers({ quick: plan.peersQuick, log: (line) => progress.show(`peers: ${line}`) });
      const outcome = peerRecords(results, collector.core3);
      collector.records.push(...outcome.records);
      collector.notes.push(...outcome.notes);
      progress.step('peers');
    });
  }
}

function runNotes(plan: LabPlan): string[] {
  return [
    `${plan.mode === 'quick' ? 'quick subset (pnpm bench:quick)' : 'full sweep (pnpm bench)'}: batches of ${plan.batch} entries of ${plan.entryBytes} B; cluster suites over ${plan.grid.map((c) => `${c.transport}-${c.nodes}`).join(', ')}.`,
    'RaftRuntime clusters run in one process (memory transport hands views over; tcp and ws use real sockets on 127.0.0.1), in-memory storage, counter state machine, 10 ms ticks, election timeout 20 ticks, pre-vote and check-quorum on.',
    'Latency samples are per batch of 1000 (every entry of a batch shares its times): propose -> committed at the leader, and -> applied at the leader. Idle: one batch at a time. Load: 8 batches in flight.',
    `Election ticks come from the simulator (fixed seeds, ${plan.electionTickTrials} trials per size, messages delivered within the tick); election ms from real runtimes (${plan.electionMsTrials} trials per cell). Decided in one round: the winner's term is one above the term before.`,
    'Messages and bytes per committed entry count every message sent while measuring (heartbeats included); memory-transport bytes are entry payload bytes, tcp/ws bytes are frame bytes on the wire. Under load the runtime appends every proposal batch queued in one turn together, so an append carries several batches of 1000 and messages per entry can fall below 2(N-1)/B for B = 1000.',
    'Heap bytes per retained entry: JS heap + ArrayBuffer bytes per entry and replica after a full GC, memory transport, log never compacted; rings grow by doubling, so unused ring capacity is included.',
    'Recovery: a follower is cut off while the leader commits 100,000 entries, leadership moves to another follower, the partition heals; time until the lagging follower has applied everything (log replication, no snapshot).',
    'Wall-clock figures are noisy on a shared machine: compare them as ratios to the in-run probe and peers, never across runs alone. Each throughput figure is compared with a 0.3 s probe run just before it (the probe suite itself ran at the start).',
  ];
}

/** Runs the lab; returns the exit code. */
export async function runLab(options: LabOptions): Promise<number> {
  const plan = labPlan(options);
  const progress = new Progress(plannedSteps(plan), options.progress ? process.stderr : null);
  const collector = new Collector();
  const startedAt = new Date();
  const git = gitInfo();
  progress.log(`bench: ${plan.mode} run of ${plan.suites.join(', ')} on ${machineInfo().cpuModel}, Node ${process.version}, commit ${git.commit}${git.dirty ? ' (dirty)' : ''}, seed ${plan.seed}`);
  await runSuites(plan, collector, progress);
  progress.finish('done');
  const run = finishRun({ mode: plan.mode, startedAt, seeds: [...collector.seeds].sort((a, b) => a - b), notes: [...runNotes(plan), ...collector.notes], records: collector.records });
  const outDir = options.outDir === null ? path.join(repositoryRoot, 'results') : path.resolve(options.outDir);
  const written = writeRun(run, outDir);
  const out = (line: string): void => {
    process.stdout.write(`${line}\n`);
  };
  out(`bench: ${run.records.length} records in ${(run.durationMs / 1000).toFixed(1)} s`);
  out(`bench: ${path.relative(process.cwd(), written.runPath)}, ${path.relative(process.cwd(), written.latestPath)}`);
  if (written.report.ok) out(`bench: report ${path.relative(process.cwd(), written.report.markdownPath)} and ${path.relative(process.cwd(), path.join(outDir, 'charts'))}/*.svg`);
  else out(`bench: report NOT written: ${written.report.reason}`);
  for (const line of headline(run)) out(line);
  for (const note of collector.notes) out(`note: ${note}`);
  return collector.failures > 0 || !written.report.ok ? 1 : 0;
}

/** A few headline lines for the terminal (the report has everything). */
export function headline(run: BenchRun): string[] {
  const lines: string[] = [];
  const pick = (suite: string, metric: string, scenario?: string): BenchRecord[] =>
    run.records.filter((r) => r.suite === suite && r.metric === metric && (scenario === undefined || r.scenario === scenario));
  const format = (value: number, digits = 3): string => (value >= 1e6 ? `${(value / 1e6).toPrecision(digits)}M` : value >= 1e3 ? `${(value / 1e3).toPrecision(digits)}k` : value.toPrecision(digits));
  for (const record of pick('cluster', knownMetrics.throughput.metric)) {
    const p99 = pick('cluster', `${knownMetrics.commitLatency.metric}-p99`, 'idle').find((r) => r.transport === record.transport && r.nodes === record.nodes);
    lines.push(
      `  ${record.transport.padEnd(6)} ${String(record.nodes).padStart(2)} nodes: ${format(record.value)} entries/s` +
        `${record.reference === undefined ? '' : ` (${(record.reference.ratio * 100).toFixed(1)}% of probe)`}` +
        `${p99 === undefined ? '' : `, idle commit p99 ${p99.value.toFixed(2)} ms`}`,
    );
  }
  for (const record of pick('elections', knownMetrics.electionTicks.metric)) {
    lines.push(`  election ${record.scenario ?? ''}, ${record.nodes} nodes: median ${record.value} ticks (timeout ${runtimeElectionTimeoutTicks}-${2 * runtimeElectionTimeoutTicks})`);
  }
  return lines;
}

/** `--list`: the suites and the plans' sizes. */
function listSuites(): string {
  const full = labPlan(parseLabArguments([]));
  const quick = labPlan(parseLabArguments(['--quick']));
  const lines = Object.entries(suiteDescriptions).map(([name, description]) => `  ${name.padEnd(16)} ${description}`);
  const describe = (plan: LabPlan): string => `${plan.grid.length} grid cells (${plan.grid.map((c) => `${c.transport}-${c.nodes}`).join(' ')}), ${plannedSteps(plan)} steps`;
  return ['suites:', ...lines, '', `full:  ${describe(full)}`, `quick: ${describe(quick)}`].join('\n');
}

async function main(argv: readonly string[]): Promise<number> {
  const options = parseLabArguments(argv);
  if (options.help) {
    process.stdout.write(`${labUsage}\n\n${listSuites()}\n`);
    return 0;
  }
  if (options.list) {
    process.stdout.write(`${listSuites()}\n`);
    return 0;
  }
  return runLab(options);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main(process.argv.slice(2)).then(
    (code) => {
      // Sockets of a failed suite may linger: the results are written, so leave now.
      process.exit(code);
    },
    (error: unknown) => {
      const usage = error instanceof LabUsageError;
      process.stderr.write(`bench: ${usage ? '' : 'FAILED: '}${error instanceof Error ? (usage ? error.message : (error.stack ?? error.message)) : String(error)}\n`);
      process.exit(usage ? 2 : 1);
    },
  );
}
