/**
 * bench:http: the KV service under HTTP load. A 3-node raftlab cluster of `kv serve` processes over
 * TCP with the durable WAL (LocalCluster), driven by autocannon at its leader: puts and linearizable
 * gets, with 1, 64 and 256 connections. When etcd is installed (Debian's etcd-server, 3.4), a 3-member
 * etcd cluster on loopback gets the same load through its JSON gateway (/v3/kv/put, /v3/kv/range),
 * side by side. Latency comes from autocannon's per-response events in microseconds (its own
 * histogram is whole milliseconds). An fdatasync probe on the same file system records what one
 * durable write costs on this machine, the floor under every durable figure.
 *
 * The ceiling comes from the same run: a null HTTP server (null-http-main.ts, a forked process with a
 * plain node:http server that reads the body and answers a put-sized JSON body, with no replication
 * and no disk I/O) gets the same puts at each connection count. With autocannon on the same machine
 * no Node HTTP service can answer faster, so every put-throughput record (raftlab's and etcd's) has
 * it as its reference, and the table gives raftlab's puts as a percentage of it. A share that falls as
 * connections grow points at the KV's own work per request, not at HTTP or the load generator.
 *
 * Every timed window also records the CPU time each process spent in it (process-cpu.ts: each node,
 * marked leader or follower, the null server, etcd's members, and the driver where autocannon runs),
 * divided by the requests answered. After the table, one line per configuration gives these µs per
 * request, their total, and the ceiling it implies on this machine (cores x 1e6 / total): a figure
 * near its ceiling is CPU-bound, one far below it with cores idle waits on something else (fsync,
 * round trips). The same text ends each throughput record's note. Not on Linux: no figures, a note.
 *
 *   pnpm bench:http [--quick] [--duration S] [--connections 1,64,256] [--fsync always,batch,none]
 *                   [--repeat N] [--no-etcd] [--profile] [--help]
 *
 * --repeat N runs the whole comparison N times, alternating systems (etcd, the null server, then
 * raftlab per policy, each on a fresh cluster or process), so that a noisy neighbour on the shared
 * machine hits all alike. Each throughput record is the median of the N runs with their
 * min/p25/p75/max as its spread; each latency record pools the per-response samples of all N runs.
 * A bad flag prints `bench:http: <problem>` and the usage line and exits 2 (cli-args.ts).
 *
 * Results go to results/http/ (a BenchRun of suite 'http'; latest.json, latest.md) and to stdout.
 * --profile runs every node with --cpu-prof (profiles in results/profiles/http-<time>/).
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { encodeEntry, framesOf } from '@raftlab/core';
import { type LoadResult, LocalCluster, quantile, runLoad } from '@raftlab/kv';
import { type StorageFileSystem, WalStorage, inlineFileSystem, nodeFileSystem } from '@raftlab/storage';
import { choiceListOption, parseCommandLine, usageFailure, wholeNumberOption } from './cli-args.js';
import { EtcdCluster, base64, findEtcd } from './etcd.js';
import { fsyncProbeMicros } from './fsync-probe.js';
import { type ListeningChild, withListeningChildren } from './listening-child.js';
import { type CpuMeasurement, type CpuSource, loadGeneratorRole, measureCpu } from './process-cpu.js';
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

/** The systems measured: raftlab, etcd and the null HTTP server (the ceiling). */
type System = 'raftlab' | 'etcd' | 'null-http';

/** One measured configuration. */
interface Measurement {
  readonly system: System;
  /** Null for the null server, which writes nothing. */
  readonly fsync: FsyncPolicy | null;
  readonly op: Operation;
  readonly connections: number;
  readonly result: LoadResult;
  /** CPU time of each process of the system, and of the driver, during the timed window. */
  readonly cpu: CpuMeasurement;
}

const valueText = 'v'.repeat(16);
const benchKey = 'bench';

/** The measurements of one configuration across repeats. */
interface MeasurementGroup {
  readonly system: Measurement['system'];
  readonly fsync: FsyncPolicy | null;
  readonly op: Operation;
  readonly connections: number;
  readonly results: LoadResult[];
  /** One per result, same order. */
  readonly cpu: CpuMeasurement[];
}

/** Groups measurements by configuration, keeping the order in which configurations first appear. */
function groupMeasurements(measurements: readonly Measurement[]): MeasurementGroup[] {
  const groups = new Map<string, MeasurementGroup>();
  for (const m of measurements) {
    const key = `${m.system} ${m.fsync} ${m.op} ${m.connections}`;
    let group = groups.get(key);
    if (group === undefined) {
      group = { system: m.system, fsync: m.fsync, op: m.op, connections: m.connections, results: [], cpu: [] };
      groups.set(key, group);
    }
    group.results.push(m.result);
    group.cpu.push(m.cpu);
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

/**
 * Runs one timed load window and reads the CPU time its system's processes and the driver spent in
 * it (process-cpu.ts). Warm-ups are not passed through here, so they count in no figure.
 */
async function timedLoad(processes: readonly { readonly role: string; readonly pid: number | undefined }[], load: () => Promise<LoadResult>): Promise<{ result: LoadResult; cpu: CpuMeasurement }> {
  const watched: { role: string; pid: number }[] = [];
  for (const { role, pid } of processes) {
    if (pid === undefined) return { result: await load(), cpu: { ok: false, reason: `no process id for a ${role}` } };
    watched.push({ role, pid });
  }
  return measureCpu(watched, load);
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
    const leaderId = await cluster.waitForLeader();
    const leader = cluster.node(leaderId).url;
    const url = `${leader}/v1/kv/${benchKey}`;
    const processes = cluster.nodes.map((node) => ({ role: node.id === leaderId ? 'leader' : 'follower', pid: node.process?.pid }));
    const put = (count: number, seconds: number): Promise<LoadResult> =>
      runLoad({ url, method: 'PUT', body: valueText, headers: { 'content-type': 'text/plain' }, connections: count, durationSeconds: seconds });
    await put(64, 2); // warm up (JIT, connections, WAL segment)
    const measurements: Measurement[] = [];
    for (const count of connections) {
      console.error(`raftlab fsync=${fsync} put c=${count}...`);
      measurements.push({ system: 'raftlab', fsync, op: 'put', connections: count, ...(await timedLoad(processes, () => put(count, durationSeconds))) });
      console.error(`raftlab fsync=${fsync} get c=${count}...`);
      measurements.push({ system: 'raftlab', fsync, op: 'get', connections: count, ...(await timedLoad(processes, () => runLoad({ url, method: 'GET', connections: count, durationSeconds }))) });
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
    const processes = cluster.pids.map((pid, member) => ({ role: cluster.endpoints[member] === leader ? 'leader' : 'follower', pid }));
    const putBody = JSON.stringify({ key: base64(benchKey), value: base64(valueText) });
    const rangeBody = JSON.stringify({ key: base64(benchKey) });
    const headers = { 'content-type': 'application/json' };
    const put = (count: number, seconds: number): Promise<LoadResult> => runLoad({ url: `${leader}/v3/kv/put`, method: 'POST', body: putBody, headers, connections: count, durationSeconds: seconds });
    await put(64, 2);
    const measurements: Measurement[] = [];
    for (const count of connections) {
      console.error(`etcd ${binary.version} put c=${count}...`);
      measurements.push({ system: 'etcd', fsync: 'always', op: 'put', connections: count, ...(await timedLoad(processes, () => put(count, durationSeconds))) });
      console.error(`etcd ${binary.version} get c=${count}...`);
      const range = (): Promise<LoadResult> => runLoad({ url: `${leader}/v3/kv/range`, method: 'POST', body: rangeBody, headers, connections: count, durationSeconds });
      measurements.push({ system: 'etcd', fsync: 'always', op: 'get', connections: count, ...(await timedLoad(processes, range)) });
    }
    return measurements;
  } finally {
    await cluster.stop();
  }
}

/** The null server's entry point, built next to this file. */
const nullHttpMainPath = fileURLToPath(new URL('./null-http-main.js', import.meta.url));
/** How long the null server may take to listen, and to exit once disconnected. */
const nullHttpDeadlines = { startMs: 10_000, stopMs: 2000 };

/**
 * The ceiling: the same puts (method, body, headers, durations, connection counts, warm-up) as
 * measureRaftlab, at a null HTTP server in its own process (null-http-main.ts).
 */
function measureNullHttp(connections: readonly number[], durationSeconds: number): Promise<Measurement[]> {
  return withListeningChildren(nullHttpMainPath, 1, 'null HTTP server', nullHttpDeadlines, async ([server]) => {
    const { child, port } = server as ListeningChild;
    const url = `http://127.0.0.1:${port}/v1/kv/${benchKey}`;
    const put = (count: number, seconds: number): Promise<LoadResult> =>
      runLoad({ url, method: 'PUT', body: valueText, headers: { 'content-type': 'text/plain' }, connections: count, durationSeconds: seconds });
    await put(64, 2); // the same warm-up as the KV's
    const measurements: Measurement[] = [];
    for (const count of connections) {
      console.error(`null-http put c=${count}...`);
      measurements.push({ system: 'null-http', fsync: null, op: 'put', connections: count, ...(await timedLoad([{ role: 'server', pid: child.pid }], () => put(count, durationSeconds))) });
    }
    return measurements;
  });
}

/** The name of a system in records and in the table. */
function systemName(system: System, etcdVersion: string | null): string {
  switch (system) {
    case 'raftlab':
      return 'raftlab';
    case 'etcd':
      return `etcd-${etcdVersion ?? '3.4'}`;
    case 'null-http':
      return 'null-http';
    default: {
      const unknown: never = system;
      throw new Error(`unknown system ${String(unknown)}`);
    }
  }
}

/** The group of `system` measured with the same operation and connection count as `group`. */
function peerGroup(groups: readonly MeasurementGroup[], group: MeasurementGroup, system: System, op: Operation = group.op): MeasurementGroup | undefined {
  return groups.find((other) => other.system === system && other.op === op && other.connections === group.connections);
}

/**
 * The records of one group: throughput (median of the runs) and pooled latency. Put throughput, of
 * raftlab and of etcd, takes the null server's puts at the same connection count as its reference
 * (the ceiling); raftlab's gets take etcd's gets, when etcd ran, and raftlab's puts name etcd's
 * figure in their note (a record has one reference, and the ceiling is the one present in every run).
 */
function recordsOf(group: MeasurementGroup, groups: readonly MeasurementGroup[], etcdVersion: string | null, durationSeconds: number): BenchRecord[] {
  const { system, fsync, op, connections, results } = group;
  const name = systemName(system, etcdVersion);
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
  const target = system === 'null-http' ? 'a null HTTP server (node:http, no replication, no disk I/O)' : 'the leader';
  const throughputPerSecond = medianThroughput(group);
  const etcd = system === 'raftlab' ? peerGroup(groups, group, 'etcd') : undefined;
  const etcdThroughput = etcd === undefined ? 0 : medianThroughput(etcd);
  const ceiling = op === 'put' && system !== 'null-http' ? peerGroup(groups, group, 'null-http', 'put') : undefined;
  const ceilingThroughput = ceiling === undefined ? 0 : medianThroughput(ceiling);
  const etcdName = `${systemName('etcd', etcdVersion)} ${op} c=${connections}`;
  const versusEtcd = op === 'put' && etcdThroughput > 0 ? `; ${etcdName}: ${etcdThroughput.toFixed(0)} requests/s, ratio ${(throughputPerSecond / etcdThroughput).toFixed(2)}` : '';
  const note = `${durationSeconds} s of autocannon at ${target}, ${connections} connection(s), ${valueText.length}-byte values; ${non2xx} non-2xx, ${errors} errors${runs}${versusEtcd}; ${cpuText(group)}`;
  let reference: BenchRecord['reference'];
  if (ceilingThroughput > 0) reference = referenceFor(throughputPerSecond, `null-http put c=${connections}, same run`, ceilingThroughput, 'requests/s');
  else if (op === 'get' && etcdThroughput > 0) reference = referenceFor(throughputPerSecond, etcdName, etcdThroughput, 'requests/s');
  const nodes = system === 'null-http' ? 1 : 3;
  const throughput: BenchRecord = {
    suite: 'http',
    scenario,
    transport: 'tcp',
    nodes,
    batch: 1,
    metric: `${op}-throughput`,
    unit: 'requests/s',
    ...summarize(results.map((result) => result.throughputPerSecond)),
    ...(fsync === null ? {} : { fsync }),
    checksum: String(ok),
    note,
    ...(reference === undefined ? {} : { reference }),
  };
  const records = [throughput];
  const pooled = pooledSamples(group);
  if (pooled.length > 0) {
    const samples = Array.from(pooled);
    records.push({
      suite: 'http',
      scenario,
      transport: 'tcp',
      nodes,
      batch: 1,
      metric: 'latency',
      unit: 'µs',
      ...summarize(samples),
      distribution: downsample(samples),
      ...(fsync === null ? {} : { fsync }),
      checksum: String(ok),
      note: `per-response latency of the 2xx answers${results.length === 1 ? '' : ` pooled over ${results.length} runs`}; p99 ${quantile(pooled, 0.99).toFixed(0)} µs, p99.9 ${quantile(pooled, 0.999).toFixed(0)} µs`,
    });
  }
  return records;
}

/**
 * With --repeat, the range of a group's per-run shares of the ceiling, each run paired with the null
 * server's run of the same repeat (the two met the same neighbours); empty for a single run.
 */
function pairedShares(group: MeasurementGroup, ceiling: MeasurementGroup): string {
  if (group.results.length < 2 || group.results.length !== ceiling.results.length) return '';
  const shares = group.results.map((result, run) => (100 * result.throughputPerSecond) / (ceiling.results[run] as LoadResult).throughputPerSecond);
  return ` [${Math.min(...shares).toFixed(1)}-${Math.max(...shares).toFixed(1)}]`;
}

/** CPU microseconds per request of one group: each process's and the total, medians over its runs. */
interface CpuPerRequest {
  readonly source: CpuSource;
  /** Leader (or server) first, then followers (largest first), then the load generator. */
  readonly parts: readonly { readonly role: string; readonly micros: number }[];
  /** Median of the runs' totals. */
  readonly totalMicros: number;
  readonly runTotals: readonly number[];
  /** Runs without figures (e.g. /proc unreadable), out of the group's. */
  readonly runsMissing: number;
}

/** Display order of roles: the process the load targets, then followers, then the load generator. */
function roleRank(role: string): number {
  if (role === 'follower') return 1;
  if (role === loadGeneratorRole) return 2;
  return 0;
}

/**
 * A group's CPU per request: each run's CPU time per process divided by the responses (2xx and
 * non-2xx) of its window, then per process the median over runs. Followers are sorted by their
 * figure within each run before the medians are taken, since which node follows changes between
 * runs. Only the reason when no run has figures.
 */
function cpuPerRequest(group: MeasurementGroup): CpuPerRequest | { readonly reason: string } {
  const runs: { role: string; micros: number }[][] = [];
  let reason = 'no run';
  group.results.forEach((result, run) => {
    const cpu = group.cpu[run] as CpuMeasurement;
    const requests = result.ok + result.non2xx;
    if (!cpu.ok) reason = cpu.reason;
    else if (requests === 0) reason = 'no request answered';
    else {
      const parts = cpu.window.processes.map(({ role, cpuMicros }) => ({ role, micros: cpuMicros / requests }));
      parts.sort((a, b) => roleRank(a.role) - roleRank(b.role) || (a.role === 'follower' && b.role === 'follower' ? b.micros - a.micros : 0));
      runs.push(parts);
    }
  });
  const first = runs[0];
  if (first === undefined) return { reason };
  const source = (group.cpu.find((cpu) => cpu.ok) as Extract<CpuMeasurement, { ok: true }>).window.source;
  const parts = first.map(({ role }, position) => ({ role, micros: summarize(runs.map((parts) => (parts[position] as { micros: number }).micros)).value }));
  const runTotals = runs.map((parts) => parts.reduce((sum, part) => sum + part.micros, 0));
  return { source, parts, totalMicros: summarize(runTotals).value, runTotals, runsMissing: group.results.length - runs.length };
}

/** The cores the ceiling is figured on: cores x 1e6 µs of CPU per second. */
const cores = os.cpus().length;

const wholeNumber = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });

/** The name of a configuration in the CPU lines. */
function configurationName(group: MeasurementGroup, etcdVersion: string | null): string {
  const fsync = group.system === 'raftlab' && group.fsync !== null ? ` ${group.fsync}` : '';
  return `${systemName(group.system, etcdVersion)}${fsync} ${group.op} c=${group.connections}`;
}

/**
 * One group's CPU per request in words: each process's µs per request, the total, the ceiling it
 * implies (cores x 1e6 / total: the throughput at which the machine's cores would be all busy with
 * these processes alone), the measured throughput and the cores it kept busy (total x throughput).
 * Measured throughput well below the ceiling with few cores busy points at waiting (disk, round
 * trips), near it at CPU.
 */
function cpuText(group: MeasurementGroup): string {
  const cpu = cpuPerRequest(group);
  if (!('parts' in cpu)) return `CPU per request not measured (${cpu.reason})`;
  const named: string[] = [];
  for (let i = 0; i < cpu.parts.length; ) {
    const { role } = cpu.parts[i] as { role: string };
    const same: number[] = [];
    for (; i < cpu.parts.length && (cpu.parts[i] as { role: string }).role === role; i++) same.push((cpu.parts[i] as { micros: number }).micros);
    named.push(`${role}${same.length > 1 ? 's' : ''} ${same.map((micros) => micros.toFixed(1)).join(' + ')}`);
  }
  const throughput = medianThroughput(group);
  const busy = (cpu.totalMicros * throughput) / 1e6;
  const runs = cpu.runTotals.length > 1 ? ` (medians of ${cpu.runTotals.length} runs, totals ${cpu.runTotals.map((total) => total.toFixed(1)).join(', ')})` : '';
  const missing = cpu.runsMissing > 0 ? ` (${cpu.runsMissing} run(s) without figures)` : '';
  return (
    `CPU µs/request ${named.join(', ')}; total ${cpu.totalMicros.toFixed(1)} = ceiling ${wholeNumber.format((cores * 1e6) / cpu.totalMicros)} req/s on ${cores} cores; ` +
    `measured ${wholeNumber.format(throughput)} req/s, ${busy.toFixed(2)} of ${cores} cores busy${runs}${missing}`
  );
}

/**
 * The terminal table, one row per group. `of null-http` is a put's median as a percentage of the null
 * server's median at the same connection count (the ceiling), with the range of the per-run paired
 * shares in brackets under --repeat; `vs etcd` is raftlab over etcd.
 */
function table(groups: readonly MeasurementGroup[], etcdVersion: string | null): string {
  const header = ['system', 'fsync', 'op', 'conns', 'runs', 'req/s (median)', 'min-max', 'p50 µs', 'p90 µs', 'p99 µs', 'non-2xx', 'errors', 'of null-http', 'vs etcd'];
  const rows = groups.map((group) => {
    const etcd = peerGroup(groups, group, 'etcd');
    const ceiling = group.op === 'put' && group.system !== 'null-http' ? peerGroup(groups, group, 'null-http', 'put') : undefined;
    const pooled = pooledSamples(group);
    const throughputs = group.results.map((result) => result.throughputPerSecond);
    const median = medianThroughput(group);
    const etcdMedian = etcd === undefined ? 0 : medianThroughput(etcd);
    const ceilingMedian = ceiling === undefined ? 0 : medianThroughput(ceiling);
    return [
      group.system === 'etcd' ? `etcd ${etcdVersion ?? ''}`.trim() : group.system,
      group.fsync ?? '-',
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
      ceiling === undefined || ceilingMedian <= 0 ? '' : `${((100 * median) / ceilingMedian).toFixed(1)}%${pairedShares(group, ceiling)}`,
      group.system === 'raftlab' && etcdMedian > 0 ? `${(median / etcdMedian).toFixed(2)}x` : '',
    ];
  });
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => (row[column] as string).length)));
  return [header, ...rows].map((row) => row.map((cell, column) => cell.padEnd(widths[column] as number)).join('  ').trimEnd()).join('\n');
}

/** bench:http's flags. */
const httpCommand = {
  program: 'bench:http',
  usage: '[--quick] [--duration S] [--connections 1,64,256] [--fsync always,batch,none] [--repeat N] [--no-etcd] [--profile] [--help]',
  help: [
    '  --quick          2 s per figure and fsync always only (default: 10 s, every policy)',
    '  --duration S     seconds of load per figure (whole number)',
    '  --connections L  comma-separated connection counts (default 1,64,256)',
    '  --fsync L        raftlab fsync policies, comma-separated: always, batch, none',
    '  --repeat N       run the whole comparison N times, alternating systems; report medians',
    '  --no-etcd        skip etcd even when it is installed',
    '  --profile        run every raftlab node with --cpu-prof (results/profiles/http-<time>/)',
    '',
    'Every run also measures a null HTTP server (the ceiling) with the same puts.',
  ].join('\n'),
  options: {
    quick: { type: 'boolean' },
    duration: { type: 'string' },
    connections: { type: 'string' },
    fsync: { type: 'string' },
    repeat: { type: 'string' },
    'no-etcd': { type: 'boolean' },
    profile: { type: 'boolean' },
  },
} as const;

async function main(): Promise<void> {
  const values = parseCommandLine(httpCommand);
  const quick = values.quick === true;
  const repeat = wholeNumberOption(httpCommand, 'repeat', values.repeat, 1);
  const durationSeconds = wholeNumberOption(httpCommand, 'duration', values.duration, quick ? 2 : 10);
  const connections = (values.connections ?? '1,64,256').split(',').map((part) => wholeNumberOption(httpCommand, 'connections', part, 1));
  if (new Set(connections).size !== connections.length) usageFailure(httpCommand, `--connections: ${JSON.stringify(values.connections)} names a count twice`);
  const policies = choiceListOption<FsyncPolicy>(httpCommand, 'fsync', values.fsync, ['always', 'batch', 'none'], quick ? ['always'] : ['always', 'batch', 'none']);
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
    measurements.push(...(await measureNullHttp(connections, durationSeconds)));
    for (const policy of policies) measurements.push(...(await measureRaftlab(policy, connections, durationSeconds, run === 1 ? profileDirectory : null)));
  }
  if (repeat > 1) notes.push(`${repeat} runs, alternating etcd, the null HTTP server and raftlab; throughput is the median run (spread: min, p25, p75, max of the runs), latency pools every run's samples`);
  notes.push('null-http: a plain node:http server in its own process (no replication, no disk I/O) given the same puts, the ceiling of any Node HTTP service under this load generator on this machine; put-throughput records take it as their reference');

  const groups = groupMeasurements(measurements);
  for (const group of groups) records.push(...recordsOf(group, groups, etcdBinary?.version ?? null, durationSeconds));
  const sources = new Set(measurements.flatMap((m) => (m.cpu.ok ? [m.cpu.window.source] : [])));
  const cpuSourceText = [...sources].map((source) => (source === 'schedstat' ? '/proc/<pid>/task/*/schedstat (ns, every thread)' : 'utime + stime of /proc/<pid>/stat (clock ticks)')).join(' and ');
  notes.push(
    sources.size === 0
      ? `CPU per request not measured: ${measurements.map((m) => (m.cpu.ok ? '' : m.cpu.reason)).find((reason) => reason !== '') ?? 'no measurement'}`
      : `CPU per request: CPU time of each process over the timed window (warm-up excluded) from ${cpuSourceText}, the driver (autocannon) from process.cpuUsage(), divided by the responses of the window; ` +
          `ceiling = ${cores} cores x 1e6 / total µs per request, the throughput at which these processes alone would keep every core busy (other load on the machine is not counted)`,
  );
  notes.push('targets (fsync always): >= 3,000 puts/s with 1 connection, >= 30,000 puts/s with 256 connections');
  const run = finishRun({ mode: quick ? 'quick' : 'full', startedAt, notes, records });
  const written = writeRun(run, path.join(repositoryRoot, 'results', 'http'));
  console.log(table(groups, etcdBinary?.version ?? null));
  for (const group of groups) console.log(`${configurationName(group, etcdBinary?.version ?? null)}: ${cpuText(group)}`);
  console.log(`fdatasync probe: median ${summarize(fsyncSamples).value.toFixed(0)} µs per durable append on this file system`);
  for (const [name, samples] of walSamples) console.log(`WAL save probe, ${name}: median ${summarize(samples).value.toFixed(0)} µs`);
  for (const note of notes) console.log(`note: ${note}`);
  console.log(`results: ${path.relative(repositoryRoot, written.runPath)}${written.report.ok ? `, report ${path.relative(repositoryRoot, written.report.markdownPath)}` : ` (report: ${written.report.reason})`}`);
}

main().catch((error: unknown) => {
  console.error(`bench:http: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  process.exit(1);
});
