/**
 * bench:http: the KV service under HTTP load. A 3-node raftlab cluster of `kv serve` processes over
 * TCP with the durable WAL (LocalCluster), driven by autocannon at its leader: puts and linearizable
 * gets, with 1, 64 and 256 connections. When etcd is installed (Debian's etcd-server, 3.4), a 3-member
 * etcd cluster on loopback gets the same load through its JSON gateway (/v3/kv/put, /v3/kv/range),
 * side by side. Latency comes from autocannon's per-response events in microseconds (its own
 * histogram is whole milliseconds). An fdatasync probe on the same file system records what one
 * durable write costs on this machine, the floor under every durable figure.
 *
 *   pnpm bench:http [--quick] [--duration S] [--connections 1,64,256] [--fsync always,batch,none]
 *                   [--repeat N] [--no-etcd] [--profile]
 *
 * --repeat N runs the whole comparison N times, alternating systems (etcd, then raftlab per policy,
 * each on a fresh cluster), so that a noisy neighbour on the shared machine hits both alike. Each
 * throughput record is the median of the N runs with their min/p25/p75/max as its spread; each
 * latency record pools the per-response samples of all N runs.
 *
 * Results go to results/http/ (a BenchRun of suite 'http'; latest.json, latest.md) and to stdout.
 * --profile runs every node with --cpu-prof (profiles in results/profiles/http-<time>/).
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { encodeEntry, framesOf } from '@raftlab/core';
import { type LoadResult, LocalCluster, quantile, runLoad } from '@raftlab/kv';
import { type StorageFileSystem, WalStorage, inlineFileSystem, nodeFileSystem } from '@raftlab/storage';
import { EtcdCluster, base64, findEtcd } from './etcd.js';
import { fsyncProbeMicros } from './fsync-probe.js';
import {
  type BenchRecord,
  type FsyncPolicy,
  downsample,
  finishRun,
  referenceFor,
  repositoryRoot,
  summarize,
  writeRun,
} from './results.js';

/** The operations measured. */
type Operation = 'put' | 'get';

/** One measured configuration. */
interface Measurement {
  readonly system: 'raftlab' | 'etcd';
  readonly fsync: FsyncPolicy;
  readonly op: Operation;
  readonly connections: number;
  readonly result: LoadResult;
}

const valueText = 'v'.repeat(16);
const benchKey = 'bench';

/** The measurements of one configuration across repeats. */
interface MeasurementGroup {
  readonly system: Measurement['system'];
  readonly fsync: FsyncPolicy;
  readonly op: Operation;
  readonly connections: number;
  readonly results: LoadResult[];
}

/** Groups measurements by configuration, keeping the order in which configurations first appear. */
function groupMeasurements(measurements: readonly Measurement[]): MeasurementGroup[] {
  const groups = new Map<string, MeasurementGroup>();
  for (const m of measurements) {
    const key = `${m.system} ${m.fsync} ${m.op} ${m.connections}`;
    let group = groups.get(key);
    if (group === undefined) {
      group = { system: m.system, fsync: m.fsync, op: m.op, connections: m.connections, results: [] };
      groups.set(key, group);
    }
    group.results.push(m.result);
  }
  return [...groups.values()];
}

/** Median throughput of a group. */
function medianThroughput(group: MeasurementGroup): number {
  return summarize(group.results.map((result) => result.throughputPerSecond)).value;
}

/** All latency samples of a group's runs, ascending. */
function pooledSamples(group: MeasurementGroup): Float64Array {
  let length = 0;
  for (const result of group.results) length += result.samplesMicros.length;
  const pooled = new Float64Array(length);
  let at = 0;
  for (const result of group.results) {
    pooled.set(result.samplesMicros, at);
    at += result.samplesMicros.length;
  }
  return pooled.sort();
}


/** The WAL configurations the save probe compares: I/O mode x preallocation. */
const walProbeConfigs: readonly { readonly name: string; readonly files: () => StorageFileSystem; readonly preallocateBytes: number }[] = [
  { name: 'threadpool I/O, appends', files: () => nodeFileSystem, preallocateBytes: 0 },
  { name: 'threadpool I/O, preallocated', files: () => nodeFileSystem, preallocateBytes: 4 << 20 },
  { name: 'inline writes, preallocated', files: () => inlineFileSystem({ writes: true, syncs: false }), preallocateBytes: 4 << 20 },
  { name: 'inline writes and fdatasync, appends', files: () => inlineFileSystem({ writes: true, syncs: true }), preallocateBytes: 0 },
  { name: 'inline writes and fdatasync, preallocated', files: () => inlineFileSystem({ writes: true, syncs: true }), preallocateBytes: 4 << 20 },
];

/**
 * Microseconds per WalStorage.save (fsync always, one 60-byte entry and a hard state: what a follower
 * persists per AppendEntries at low load) for each walProbeConfigs entry, the saves interleaved round
 * robin so that a noisy neighbour slows every configuration alike.
 */
async function walSaveProbe(count = 300): Promise<Map<string, number[]>> {
  const directory = mkdtempSync(path.join(os.tmpdir(), 'raftlab-walprobe-'));
  const samples = new Map<string, number[]>();
  const stores: { name: string; storage: WalStorage }[] = [];
  try {
    for (const [i, config] of walProbeConfigs.entries()) {
      stores.push({ name: config.name, storage: await WalStorage.open(path.join(directory, String(i)), { fsyncPolicy: 'always', fileSystem: config.files(), preallocateBytes: config.preallocateBytes }) });
      samples.set(config.name, []);
    }
    const data = new Uint8Array(60).fill(7);
    for (let index = 1; index <= count; index++) {
      const entries = { ...framesOf([encodeEntry(1, 'normal', data)]), firstIndex: index };
      for (const { name, storage } of stores) {
        const started = performance.now();
        await storage.save({ hardState: { term: 1, vote: 1, commit: index - 1 }, entries, snapshot: null, mustSync: true });
        (samples.get(name) as number[]).push((performance.now() - started) * 1000);
      }
    }
  } finally {
    for (const { storage } of stores) await storage.close();
    rmSync(directory, { recursive: true, force: true });
  }
  return samples;
}

async function measureRaftlab(fsync: FsyncPolicy, connections: readonly number[], durationSeconds: number, profileDirectory: string | null): Promise<Measurement[]> {
  const cluster = await LocalCluster.start({
    nodes: 3,
    transport: 'tcp',
    durable: true,
    fsync,
    logLevel: 'warn',
    ...(profileDirectory === null ? {} : { nodeArguments: () => ['--cpu-prof', '--cpu-prof-dir', path.join(profileDirectory, `fsync-${fsync}`)] }),
  });
  try {
    const leader = cluster.node(await cluster.waitForLeader()).url;
    const url = `${leader}/v1/kv/${benchKey}`;
    const put = (count: number, seconds: number): Promise<LoadResult> =>
      runLoad({ url, method: 'PUT', body: valueText, headers: { 'content-type': 'text/plain' }, connections: count, durationSeconds: seconds });
    await put(64, 2); // warm up (JIT, connections, WAL segment)
    const measurements: Measurement[] = [];
    for (const count of connections) {
      console.error(`raftlab fsync=${fsync} put c=${count}...`);
      measurements.push({ system: 'raftlab', fsync, op: 'put', connections: count, result: await put(count, durationSeconds) });
      console.error(`raftlab fsync=${fsync} get c=${count}...`);
      measurements.push({ system: 'raftlab', fsync, op: 'get', connections: count, result: await runLoad({ url, method: 'GET', connections: count, durationSeconds }) });
    }
    if (await cluster.leader() === 0) console.error('warning: the cluster had no single leader at the end of the run');
    return measurements;
  } finally {
    await cluster.stop();
  }
}

async function measureEtcd(binary: { path: string; version: string }, connections: readonly number[], durationSeconds: number): Promise<Measurement[]> {
  const cluster = await EtcdCluster.start(binary);
  try {
    const leader = await cluster.leader();
    const putBody = JSON.stringify({ key: base64(benchKey), value: base64(valueText) });
    const rangeBody = JSON.stringify({ key: base64(benchKey) });
    const headers = { 'content-type': 'application/json' };
    const put = (count: number, seconds: number): Promise<LoadResult> => runLoad({ url: `${leader}/v3/kv/put`, method: 'POST', body: putBody, headers, connections: count, durationSeconds: seconds });
    await put(64, 2);
    const measurements: Measurement[] = [];
    for (const count of connections) {
      console.error(`etcd ${binary.version} put c=${count}...`);
      measurements.push({ system: 'etcd', fsync: 'always', op: 'put', connections: count, result: await put(count, durationSeconds) });
      console.error(`etcd ${binary.version} get c=${count}...`);
      measurements.push({ system: 'etcd', fsync: 'always', op: 'get', connections: count, result: await runLoad({ url: `${leader}/v3/kv/range`, method: 'POST', body: rangeBody, headers, connections: count, durationSeconds }) });
    }
    return measurements;
  } finally {
    await cluster.stop();
  }
}

function recordsOf(group: MeasurementGroup, etcd: MeasurementGroup | undefined, etcdVersion: string | null, durationSeconds: number): BenchRecord[] {
  const { system, fsync, op, connections, results } = group;
  const name = system === 'raftlab' ? 'raftlab' : `etcd-${etcdVersion ?? '3.4'}`;
  const scenario = `${name} ${op} c=${connections}`;
  let ok = 0;
  let non2xx = 0;
  let errors = 0;
  for (const result of results) {
    ok += result.ok;
    non2xx += result.non2xx;
    errors += result.errors;
  }
  const runs = results.length === 1 ? '' : ` (median of ${results.length} runs: ${results.map((result) => result.throughputPerSecond.toFixed(0)).join(', ')} requests/s)`;
  const note = `${durationSeconds} s of autocannon at the leader, ${connections} connection(s), ${valueText.length}-byte values; ${non2xx} non-2xx, ${errors} errors${runs}`;
  const throughputPerSecond = medianThroughput(group);
  const etcdThroughput = etcd === undefined ? 0 : medianThroughput(etcd);
  const throughput: BenchRecord = {
    suite: 'http',
    scenario,
    transport: 'tcp',
    nodes: 3,
    batch: 1,
    metric: `${op}-throughput`,
    unit: 'requests/s',
    ...summarize(results.map((result) => result.throughputPerSecond)),
    fsync,
    checksum: String(ok),
    note,
    ...(etcdThroughput === 0 ? {} : { reference: referenceFor(throughputPerSecond, `etcd-${etcdVersion ?? '3.4'} ${op} c=${connections}`, etcdThroughput, 'requests/s') }),
  };
  const records = [throughput];
  const pooled = pooledSamples(group);
  if (pooled.length > 0) {
    const samples = Array.from(pooled);
    records.push({
      suite: 'http',
      scenario,
      transport: 'tcp',
      nodes: 3,
      batch: 1,
      metric: 'latency',
      unit: 'µs',
      ...summarize(samples),
      distribution: downsample(samples),
      fsync,
      checksum: String(ok),
      note: `per-response latency of the 2xx answers${results.length === 1 ? '' : ` pooled over ${results.length} runs`}; p99 ${quantile(pooled, 0.99).toFixed(0)} µs, p99.9 ${quantile(pooled, 0.999).toFixed(0)} µs`,
    });
  }
  return records;
}

function table(groups: readonly MeasurementGroup[], etcdVersion: string | null): string {
  const header = ['system', 'fsync', 'op', 'conns', 'runs', 'req/s (median)', 'min-max', 'p50 µs', 'p90 µs', 'p99 µs', 'non-2xx', 'errors', 'vs etcd'];
  const rows = groups.map((group) => {
    const etcd = groups.find((other) => other.system === 'etcd' && other.op === group.op && other.connections === group.connections);
    const pooled = pooledSamples(group);
    const throughputs = group.results.map((result) => result.throughputPerSecond);
    const median = medianThroughput(group);
    const etcdMedian = etcd === undefined ? 0 : medianThroughput(etcd);
    return [
      group.system === 'etcd' ? `etcd ${etcdVersion ?? ''}`.trim() : 'raftlab',
      group.fsync,
      group.op,
      String(group.connections),
      String(group.results.length),
      median.toFixed(0),
      `${Math.min(...throughputs).toFixed(0)}-${Math.max(...throughputs).toFixed(0)}`,
      quantile(pooled, 0.5).toFixed(0),
      quantile(pooled, 0.9).toFixed(0),
      quantile(pooled, 0.99).toFixed(0),
      String(group.results.reduce((sum, result) => sum + result.non2xx, 0)),
      String(group.results.reduce((sum, result) => sum + result.errors, 0)),
      group.system === 'raftlab' && etcdMedian > 0 ? `${(median / etcdMedian).toFixed(2)}x` : '',
    ];
  });
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => (row[column] as string).length)));
  return [header, ...rows].map((row) => row.map((cell, column) => cell.padEnd(widths[column] as number)).join('  ').trimEnd()).join('\n');
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean' },
      duration: { type: 'string' },
      connections: { type: 'string' },
      fsync: { type: 'string' },
      repeat: { type: 'string' },
      'no-etcd': { type: 'boolean' },
      profile: { type: 'boolean' },
    },
  });
  const repeat = Number(values.repeat ?? 1);
  if (!(Number.isInteger(repeat) && repeat >= 1)) throw new Error(`--repeat must be a positive whole number, got ${values.repeat}`);
  const quick = values.quick === true;
  const durationSeconds = Number(values.duration ?? (quick ? 2 : 10));
  if (!(Number.isInteger(durationSeconds) && durationSeconds >= 1)) throw new Error(`--duration must be a whole number of seconds, got ${values.duration}`);
  const connections = (values.connections ?? '1,64,256').split(',').map((part) => {
    const count = Number(part);
    if (!(Number.isInteger(count) && count >= 1)) throw new Error(`--connections: ${part} is not a positive integer`);
    return count;
  });
  const policies = (values.fsync ?? (quick ? 'always' : 'always,batch,none')).split(',') as FsyncPolicy[];
  for (const policy of policies) if (!['always', 'batch', 'none'].includes(policy)) throw new Error(`--fsync: ${policy} is not always, batch or none`);
  const startedAt = new Date();
  const notes: string[] = [];
  const profileDirectory = values.profile === true ? path.join(repositoryRoot, 'results', 'profiles', `http-${startedAt.toISOString().replace(/[:.]/g, '')}`) : null;
  if (profileDirectory !== null) {
    mkdirSync(profileDirectory, { recursive: true });
    notes.push(`CPU profiles of every node in ${path.relative(repositoryRoot, profileDirectory)}`);
  }

  const fsyncSamples = fsyncProbeMicros();
  const records: BenchRecord[] = [
    {
      suite: 'http',
      scenario: 'fdatasync probe (128-byte appends, temporary directory)',
      transport: 'none',
      nodes: 1,
      batch: 1,
      metric: 'fsync-latency',
      unit: 'µs',
      ...summarize(fsyncSamples),
      distribution: downsample(fsyncSamples),
      note: 'what one durable write costs here: a durable put waits for at least one (leader) plus one (follower) in sequence',
    },
  ];
  console.error(`fdatasync probe: median ${summarize(fsyncSamples).value.toFixed(0)} µs`);
  const walSamples = await walSaveProbe();
  for (const [name, samples] of walSamples) {
    records.push({
      suite: 'http',
      scenario: `WAL save probe (fsync always): ${name}`,
      transport: 'none',
      nodes: 1,
      batch: 1,
      metric: 'wal-save-latency',
      unit: 'µs',
      ...summarize(samples),
      distribution: downsample(samples),
      note: 'one WalStorage.save of a hard state and one 60-byte entry, configurations interleaved; kv serve uses inline writes and preallocation, fdatasync inline on followers (--wal-io adaptive)',
    });
    console.error(`WAL save probe, ${name}: median ${summarize(samples).value.toFixed(0)} µs`);
  }

  const measurements: Measurement[] = [];
  const etcdBinary = values['no-etcd'] === true ? null : findEtcd();
  if (values['no-etcd'] === true) notes.push('etcd skipped (--no-etcd)');
  else if (etcdBinary === null) notes.push('etcd not installed: no side-by-side figures (apt-get install -y etcd-server, then run again)');
  let etcdFailed = false;
  for (let run = 1; run <= repeat; run++) {
    if (repeat > 1) console.error(`run ${run} of ${repeat}`);
    if (etcdBinary !== null && !etcdFailed) {
      try {
        measurements.push(...(await measureEtcd(etcdBinary, connections, durationSeconds)));
      } catch (error) {
        etcdFailed = true;
        notes.push(`etcd skipped: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
    for (const policy of policies) measurements.push(...(await measureRaftlab(policy, connections, durationSeconds, run === 1 ? profileDirectory : null)));
  }
  if (repeat > 1) notes.push(`${repeat} runs, alternating etcd and raftlab; throughput is the median run (spread: min, p25, p75, max of the runs), latency pools every run's samples`);

  const groups = groupMeasurements(measurements);
  for (const group of groups) {
    const etcd = group.system === 'raftlab' ? groups.find((other) => other.system === 'etcd' && other.op === group.op && other.connections === group.connections) : undefined;
    records.push(...recordsOf(group, etcd, etcdBinary?.version ?? null, durationSeconds));
  }
  notes.push('targets (fsync always): >= 3,000 puts/s with 1 connection, >= 30,000 puts/s with 256 connections');
  const run = finishRun({ mode: quick ? 'quick' : 'full', startedAt, notes, records });
  const written = writeRun(run, path.join(repositoryRoot, 'results', 'http'));
  console.log(table(groups, etcdBinary?.version ?? null));
  console.log(`fdatasync probe: median ${summarize(fsyncSamples).value.toFixed(0)} µs per durable append on this file system`);
  for (const [name, samples] of walSamples) console.log(`WAL save probe, ${name}: median ${summarize(samples).value.toFixed(0)} µs`);
  for (const note of notes) console.log(`note: ${note}`);
  console.log(`results: ${path.relative(repositoryRoot, written.runPath)}${written.report.ok ? `, report ${path.relative(repositoryRoot, written.report.markdownPath)}` : ` (report: ${written.report.reason})`}`);
}

main().catch((error: unknown) => {
  console.error(`bench:http: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  process.exit(1);
});
