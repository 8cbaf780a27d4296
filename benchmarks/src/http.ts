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
 *                   [--no-etcd] [--profile]
 *
 * Results go to results/http/ (a BenchRun of suite 'http'; latest.json, latest.md) and to stdout.
 * --profile runs every node with --cpu-prof (profiles in results/profiles/http-<time>/).
 */
import { closeSync, fdatasyncSync, mkdirSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { type LoadResult, LocalCluster, runLoad } from '@raftlab/kv';
import { EtcdCluster, base64, findEtcd } from './etcd.js';
import {
  type BenchRecord,
  type BenchRun,
  type FsyncPolicy,
  downsample,
  gitInfo,
  machineInfo,
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

/** Microseconds per fdatasync of a small append on the temporary directory's file system. */
function fsyncProbe(count = 200): number[] {
  const directory = mkdtempSync(path.join(os.tmpdir(), 'raftlab-fsync-'));
  const fd = openSync(path.join(directory, 'probe'), 'w');
  const bytes = Buffer.alloc(128, 1);
  const samples: number[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const started = performance.now();
      writeSync(fd, bytes);
      fdatasyncSync(fd);
      samples.push((performance.now() - started) * 1000);
    }
  } finally {
    closeSync(fd);
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

function recordsOf(measurement: Measurement, etcd: Measurement | undefined, etcdVersion: string | null, durationSeconds: number): BenchRecord[] {
  const { system, fsync, op, connections, result } = measurement;
  const name = system === 'raftlab' ? 'raftlab' : `etcd-${etcdVersion ?? '3.4'}`;
  const scenario = `${name} ${op} c=${connections}`;
  const note = `${durationSeconds} s of autocannon at the leader, ${connections} connection(s), ${valueText.length}-byte values; ${result.non2xx} non-2xx, ${result.errors} errors`;
  const throughput: BenchRecord = {
    suite: 'http',
    scenario,
    transport: 'tcp',
    nodes: 3,
    batch: 1,
    metric: `${op}-throughput`,
    unit: 'requests/s',
    value: result.throughputPerSecond,
    samples: 1,
    spread: null,
    fsync,
    checksum: String(result.ok),
    note,
    ...(etcd === undefined || etcd.result.throughputPerSecond === 0
      ? {}
      : { reference: referenceFor(result.throughputPerSecond, `etcd-${etcdVersion ?? '3.4'} ${op} c=${connections}`, etcd.result.throughputPerSecond, 'requests/s') }),
  };
  const records = [throughput];
  if (result.samplesMicros.length > 0) {
    const samples = Array.from(result.samplesMicros);
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
      checksum: String(result.ok),
      note: `per-response latency of the 2xx answers; p99 ${result.latencyMicros.p99.toFixed(0)} µs, p99.9 ${result.latencyMicros.p999.toFixed(0)} µs`,
    });
  }
  return records;
}

function table(measurements: readonly Measurement[], etcdVersion: string | null): string {
  const header = ['system', 'fsync', 'op', 'conns', 'req/s', 'p50 µs', 'p90 µs', 'p99 µs', 'non-2xx', 'errors', 'vs etcd'];
  const rows = measurements.map((m) => {
    const etcd = measurements.find((other) => other.system === 'etcd' && other.op === m.op && other.connections === m.connections);
    return [
      m.system === 'etcd' ? `etcd ${etcdVersion ?? ''}`.trim() : 'raftlab',
      m.fsync,
      m.op,
      String(m.connections),
      m.result.throughputPerSecond.toFixed(0),
      m.result.latencyMicros.p50.toFixed(0),
      m.result.latencyMicros.p90.toFixed(0),
      m.result.latencyMicros.p99.toFixed(0),
      String(m.result.non2xx),
      String(m.result.errors),
      m.system === 'raftlab' && etcd !== undefined && etcd.result.throughputPerSecond > 0 ? `${(m.result.throughputPerSecond / etcd.result.throughputPerSecond).toFixed(2)}x` : '',
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
      'no-etcd': { type: 'boolean' },
      profile: { type: 'boolean' },
    },
  });
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

  const fsyncSamples = fsyncProbe();
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

  const measurements: Measurement[] = [];
  const etcdBinary = values['no-etcd'] === true ? null : findEtcd();
  if (values['no-etcd'] === true) notes.push('etcd skipped (--no-etcd)');
  else if (etcdBinary === null) notes.push('etcd not installed: no side-by-side figures (apt-get install -y etcd-server, then run again)');
  if (etcdBinary !== null) {
    try {
      measurements.push(...(await measureEtcd(etcdBinary, connections, durationSeconds)));
    } catch (error) {
      notes.push(`etcd skipped: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
  for (const policy of policies) measurements.push(...(await measureRaftlab(policy, connections, durationSeconds, profileDirectory)));

  for (const measurement of measurements) {
    const etcd = measurement.system === 'raftlab' ? measurements.find((other) => other.system === 'etcd' && other.op === measurement.op && other.connections === measurement.connections) : undefined;
    records.push(...recordsOf(measurement, etcd, etcdBinary?.version ?? null, durationSeconds));
  }
  notes.push('targets (fsync always): >= 3,000 puts/s with 1 connection, >= 30,000 puts/s with 256 connections');
  const finishedAt = new Date();
  const git = gitInfo();
  const run: BenchRun = {
    schema: 1,
    mode: quick ? 'quick' : 'full',
    startedAt: startedAt.toISOString(),
    finishedAt: finishedAt.toISOString(),
    durationMs: finishedAt.getTime() - startedAt.getTime(),
    machine: machineInfo(),
    node: process.version,
    commit: git.commit,
    dirty: git.dirty,
    seeds: [],
    notes,
    records,
  };
  const written = writeRun(run, path.join(repositoryRoot, 'results', 'http'));
  console.log(table(measurements, etcdBinary?.version ?? null));
  console.log(`fdatasync probe: median ${summarize(fsyncSamples).value.toFixed(0)} µs per durable append on this file system`);
  for (const note of notes) console.log(`note: ${note}`);
  console.log(`results: ${path.relative(repositoryRoot, written.runPath)}${written.report.ok ? `, report ${path.relative(repositoryRoot, written.report.markdownPath)}` : ` (report: ${written.report.reason})`}`);
}

main().catch((error: unknown) => {
  console.error(`bench:http: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  process.exit(1);
});
