/**
 * The WAL suite: `pnpm bench:wal [--quick] [--size small|large] [--duration S] [--clients N] [--fsync always,batch,none] [--help]`.
 *
 *  1. The storage micro benchmark (packages/storage/dist/bench.js, run as a child process): WAL
 *     append MB/s and entries/s per fsync policy beside a raw sequential write of the same bytes with
 *     the same fsync cadence (each record's reference), group commit, and recovery time per GiB of log
 *     (measured on a smaller log and scaled linearly; the note says how large).
 *  2. KV puts through the whole path (HTTP, runtime, Raft over TCP, WalStorage) on a 3-node cluster
 *     of `kv serve` processes, per fsync policy: closed-loop clients, one put at a time each, for a
 *     fixed time after a warm-up; throughput (per-second samples) and per-put latency (distribution),
 *     with the disk's own fdatasync latency, measured in the same run, as the latency's reference.
 *
 * The run goes to results/wal/ (a BenchRun of suite 'wal': <timestamp>-<commit>.json, latest.json,
 * latest.md). Policy `none` is not durable and is marked so on its records. The machine is shared
 * and noisy: read medians with their spread, against the in-run references. A bad flag prints
 * `bench:wal: <problem>` and the usage line and exits 2 (cli-args.ts), before anything is measured.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { KvClient, LocalCluster } from '@raftlab/kv';
import { choiceListOption, choiceOption, parseCommandLine, wholeNumberOption } from './cli-args.js';
import { fsyncProbeMicros } from './fsync-probe.js';
import { type BenchRecord, type FsyncPolicy, downsample, finishRun, referenceFor, repositoryRoot, summarize, writeRun } from './results.js';

/** bench:wal's flags. */
const walCommand = {
  program: 'bench:wal',
  usage: '[--quick] [--size small|large] [--duration S] [--clients N] [--fsync always,batch,none] [--help]',
  help: [
    '  --quick       small storage benchmark, 4 s of KV puts per policy after 1 s of warm-up',
    '  --size        storage micro benchmark size (default: large, or small with --quick)',
    '  --duration S  seconds of KV puts measured per fsync policy (whole number; default 10, 4 with --quick)',
    '  --clients N   closed-loop KV clients (default 8)',
    '  --fsync L     fsync policies, comma-separated: always, batch, none (default all three)',
  ].join('\n'),
  options: {
    quick: { type: 'boolean' },
    size: { type: 'string' },
    duration: { type: 'string' },
    clients: { type: 'string' },
    fsync: { type: 'string' },
  },
} as const;

// Parsed before anything runs, so a mistyped flag costs nothing.
const values = parseCommandLine(walCommand);
const quick = values.quick === true;
const size = choiceOption(walCommand, 'size', values.size, ['small', 'large'], quick ? 'small' : 'large');
const durationSeconds = wholeNumberOption(walCommand, 'duration', values.duration, quick ? 4 : 10);
const warmupSeconds = quick ? 1 : 2;
const clientCount = wholeNumberOption(walCommand, 'clients', values.clients, 8);
const policies = choiceListOption<FsyncPolicy>(walCommand, 'fsync', values.fsync, ['always', 'batch', 'none'], ['always', 'batch', 'none']);
const valueText = 'v'.repeat(64);


/** Runs the storage micro benchmark in a child process and returns its records. */
function storageRecords(): BenchRecord[] {
  const directory = mkdtempSync(path.join(os.tmpdir(), 'raftlab-wal-suite-'));
  const json = path.join(directory, 'storage.json');
  try {
    const script = path.join(repositoryRoot, 'packages', 'storage', 'dist', 'bench.js');
    const output = execFileSync(process.execPath, [script, '--size', size, '--json', json], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
    process.stdout.write(output);
    const parsed = JSON.parse(readFileSync(json, 'utf8')) as { records: BenchRecord[] };
    return parsed.records;
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
}

interface PutMeasurement {
  readonly latenciesMs: number[];
  readonly perSecond: number[];
  readonly completed: number;
  readonly failed: number;
}

/** Closed-loop puts against a fresh 3-node tcp cluster with `fsync`. */
async function measurePuts(fsync: FsyncPolicy): Promise<PutMeasurement> {
  const cluster = await LocalCluster.start({ nodes: 3, transport: 'tcp', durable: true, fsync });
  const clients = Array.from({ length: clientCount }, () => new KvClient({ endpoints: cluster.endpoints, attemptTimeoutMs: 3000, operationTimeoutMs: 10_000 }));
  try {
    await cluster.waitForLeader();
    const latenciesMs: number[] = [];
    const buckets = new Array<number>(durationSeconds).fill(0);
    let failed = 0;
    const started = performance.now();
    const measureFrom = started + warmupSeconds * 1000;
    const end = measureFrom + durationSeconds * 1000;
    await Promise.all(
      clients.map(async (client, c) => {
        for (let n = 0; performance.now() < end; n++) {
          const begin = performance.now();
          try {
            await client.put(`bench-${c}-${n % 1000}`, valueText);
          } catch {
            failed += 1;
            continue;
          }
          const done = performance.now();
          if (begin >= measureFrom && done <= end) {
            latenciesMs.push(done - begin);
            const bucket = Math.floor((done - measureFrom) / 1000);
            buckets[bucket] = (buckets[bucket] ?? 0) + 1;
          }
        }
      }),
    );
    return { latenciesMs, perSecond: buckets, completed: latenciesMs.length, failed };
  } finally {
    for (const client of clients) client.close();
    await cluster.stop();
  }
}

async function main(): Promise<void> {
  const startedAt = new Date();
  const notes: string[] = [
    `storage micro benchmark size ${size}; KV puts: 3 nodes over tcp, ${clientCount} closed-loop clients, ${durationSeconds} s measured after ${warmupSeconds} s warm-up per fsync policy`,
    'fsync none is not durable (benchmarks only)',
    'recovery s/GiB is measured on a smaller log and scaled linearly (see each record note)',
  ];
  const records: BenchRecord[] = [];
  console.error('wal: storage micro benchmark...');
  records.push(...storageRecords());
  const probe = fsyncProbeMicros().map((micros) => micros / 1000);
  const probeMedian = summarize(probe).value;
  console.log(`fdatasync of a 128-byte append: median ${probeMedian.toFixed(3)} ms over ${probe.length}`);
  records.push({ suite: 'wal', scenario: 'disk: write + fdatasync of 128 B', transport: 'none', nodes: 0, batch: 1, metric: 'fsync-latency', unit: 'ms', ...summarize(probe), distribution: downsample(probe) });
  for (const fsync of policies) {
    console.error(`wal: kv puts, fsync ${fsync}...`);
    const result = await measurePuts(fsync);
    if (result.completed < 2) throw new Error(`fsync ${fsync}: only ${result.completed} puts completed`);
    const scenario = `kv put, 3 nodes tcp, ${clientCount} clients`;
    const throughput = summarize(result.perSecond);
    const latency = summarize(result.latenciesMs);
    const sorted = [...result.latenciesMs].sort((a, b) => a - b);
    const p99 = sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.99))] as number;
    const note = `${result.completed} puts measured, ${result.failed} failed; p99 ${p99.toFixed(2)} ms`;
    records.push({ suite: 'wal', scenario, transport: 'tcp', nodes: 3, batch: 1, metric: 'put-throughput', unit: 'puts/s', ...throughput, fsync, note });
    records.push({
      suite: 'wal',
      scenario,
      transport: 'tcp',
      nodes: 3,
      batch: 1,
      metric: 'put-latency',
      unit: 'ms',
      ...latency,
      distribution: downsample(result.latenciesMs),
      reference: referenceFor(latency.value, 'fdatasync of a 128-byte append, same run', probeMedian, 'ms'),
      fsync,
      note,
    });
    console.log(`kv put fsync=${fsync}: ${throughput.value.toFixed(0)} puts/s${throughput.spread === null ? '' : ` [${throughput.spread.min.toFixed(0)}..${throughput.spread.max.toFixed(0)}]`}, latency p50 ${latency.value.toFixed(2)} ms p99 ${p99.toFixed(2)} ms (${note})`);
  }
  const run = finishRun({ mode: quick ? 'quick' : 'full', startedAt, notes, records });
  const written = writeRun(run, path.join(repositoryRoot, 'results', 'wal'));
  console.log(`wrote ${written.runPath}${written.report.ok ? ` and ${written.report.markdownPath}` : ` (report: ${written.report.reason})`}`);
}

await main();
