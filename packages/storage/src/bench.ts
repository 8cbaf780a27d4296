/**
 * WAL benchmark: `node packages/storage/dist/bench.js [--size small|large] [--dir PATH] [--json FILE]`.
 *
 *  - crc32c: MB/s of the slicing-by-8 CRC over 1 MiB buffers and over 256-byte pieces.
 *  - append: WalStorage.save of Readys of 1000 entries (16-byte and 256-byte data), per fsync policy,
 *    beside a raw sequential write of the same entry bytes with the same fsync cadence (one writev, and
 *    one fdatasync unless the policy is none, per Ready): the WAL's overhead over the disk itself.
 *  - layout: the same appends under policy none with one record per entry (a header before each entry,
 *    all in one gather write), the alternative to one record per Ready's run.
 *  - group commit: 8 saves in flight at once, batch against always (fsyncs per save, entries/s).
 *  - recovery: open() + load() of a log written with policy none; seconds per GiB, scaled from the
 *    measured size (the page cache is warm unless --cold succeeds in dropping it, which needs root).
 *
 * Each figure is the median of several runs with the min and max beside it. `small` runs in seconds (CI
 * keeps it from rotting); `large` is for reports. Results state the policy: `none` figures are not
 * durable. A checksum of the work done is printed so it cannot be optimized away.
 *
 * `--json FILE` writes the figures as bench lab records (the BenchRecord shape of
 * benchmarks/src/results.ts, suite 'wal'; this package cannot import the lab, so the shape is
 * repeated here): `pnpm bench:wal` (benchmarks/src/wal.ts) runs this script, adds the KV put
 * figures per fsync policy and writes the run to results/wal/.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { type EntryRange, FrameHeader, encodeEntry, framesOf } from '@raftlab/core';
import { crc32c, crc32cUpdate } from './crc32c.js';
import { nodeFileSystem } from './file-system.js';
import { writeU32, writeU64 } from './record.js';
import { type FsyncPolicy, fsyncPolicies } from './storage.js';
import { WalStorage } from './wal.js';

interface Spread {
  readonly median: number;
  readonly min: number;
  readonly p25: number;
  readonly p75: number;
  readonly max: number;
  readonly stdev: number;
  readonly runs: number;
}

interface Row {
  readonly name: string;
  readonly policy: FsyncPolicy | '-';
  readonly entryDataBytes: number;
  readonly entriesPerSecond?: Spread;
  readonly megabytesPerSecond?: Spread;
  readonly secondsPerGibibyte?: Spread;
  readonly extra?: Record<string, number | string>;
}

/** Linear interpolation between closest ranks (as the lab's quantileOfSorted). */
function quantile(sorted: readonly number[], q: number): number {
  const position = (sorted.length - 1) * q;
  const low = sorted[Math.floor(position)] as number;
  const high = sorted[Math.ceil(position)] as number;
  return low + (high - low) * (position - Math.floor(position));
}

function spread(values: readonly number[]): Spread {
  const sorted = [...values].sort((a, b) => a - b);
  const mean = sorted.reduce((sum, value) => sum + value, 0) / sorted.length;
  const variance = sorted.length < 2 ? 0 : sorted.reduce((sum, value) => sum + (value - mean) ** 2, 0) / (sorted.length - 1);
  return {
    median: quantile(sorted, 0.5),
    min: sorted[0] as number,
    p25: quantile(sorted, 0.25),
    p75: quantile(sorted, 0.75),
    max: sorted[sorted.length - 1] as number,
    stdev: Math.sqrt(variance),
    runs: sorted.length,
  };
}

const sizes = {
  small: { runs: 3, readys: { none: 50, batch: 20, always: 20 }, recoveryBytes: 16 * 1024 * 1024, crcMegabytes: 64 },
  large: { runs: 5, readys: { none: 1000, batch: 300, always: 300 }, recoveryBytes: 256 * 1024 * 1024, crcMegabytes: 512 },
} as const;

type Size = keyof typeof sizes;

const entriesPerReady = 1000;
let checksum = 0;

function argument(name: string): string | undefined {
  const at = process.argv.indexOf(`--${name}`);
  return at >= 0 ? process.argv[at + 1] : undefined;
}

/** One Ready's worth of entries: 1000 frames of `dataBytes` bytes, reused for every Ready (indexes are not in frames). */
function readyFrames(dataBytes: number): EntryRange {
  const frames: Uint8Array[] = [];
  for (let i = 0; i < entriesPerReady; i++) {
    const data = new Uint8Array(dataBytes);
    for (let b = 0; b < dataBytes; b++) data[b] = (i * 31 + b) & 0xff;
    frames.push(encodeEntry(1, 'normal', data));
  }
  return { ...framesOf(frames), firstIndex: 1 };
}

function freshDirectory(root: string, name: string): string {
  const directory = path.join(root, name);
  fs.rmSync(directory, { recursive: true, force: true });
  return directory;
}

async function benchCrc(megabytes: number, runs: number): Promise<Row[]> {
  const buffer = new Uint8Array(1024 * 1024);
  for (let i = 0; i < buffer.length; i++) buffer[i] = (i * 7) & 0xff;
  const large: number[] = [];
  const small: number[] = [];
  for (let run = 0; run < runs; run++) {
    let start = performance.now();
    for (let i = 0; i < megabytes; i++) checksum ^= crc32c(buffer);
    large.push(megabytes / ((performance.now() - start) / 1000));
    start = performance.now();
    for (let i = 0; i < megabytes; i++) for (let at = 0; at < buffer.length; at += 256) checksum ^= crc32c(buffer, at, at + 256);
    small.push(megabytes / ((performance.now() - start) / 1000));
  }
  return [
    { name: 'crc32c 1 MiB buffers', policy: '-', entryDataBytes: 0, megabytesPerSecond: spread(large) },
    { name: 'crc32c 256-byte pieces', policy: '-', entryDataBytes: 0, megabytesPerSecond: spread(small) },
  ];
}

/** WalStorage.save of `readys` Readys; returns [entries/s, MB/s of entry bytes]. */
async function walAppend(directory: string, policy: FsyncPolicy, frames: EntryRange, readys: number, inFlight: number): Promise<{ entriesPerSecond: number; megabytesPerSecond: number; syncsPerSave: number }> {
  const storage = await WalStorage.open(directory, { fsyncPolicy: policy });
  const start = performance.now();
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < readys) {
      const ready = next++;
      const firstIndex = ready * entriesPerReady + 1;
      await storage.save({ hardState: { term: 1, vote: 1, commit: firstIndex - 1 }, entries: { ...frames, firstIndex }, snapshot: null, mustSync: true });
    }
  };
  await Promise.all(Array.from({ length: inFlight }, worker));
  const seconds = (performance.now() - start) / 1000;
  const stats = storage.stats();
  checksum ^= stats.lastIndexWritten;
  await storage.close();
  fs.rmSync(directory, { recursive: true, force: true });
  return {
    entriesPerSecond: (readys * entriesPerReady) / seconds,
    megabytesPerSecond: (readys * frames.byteLength) / 1e6 / seconds,
    syncsPerSave: stats.syncCount / stats.saveCount,
  };
}

/** The same entry bytes, written raw: one writev per Ready, one fdatasync per Ready unless `none`. */
async function rawAppend(directory: string, policy: FsyncPolicy, frames: EntryRange, readys: number): Promise<{ entriesPerSecond: number; megabytesPerSecond: number }> {
  fs.mkdirSync(directory, { recursive: true });
  const fd = await nodeFileSystem.open(path.join(directory, 'raw.bin'), 'append');
  const start = performance.now();
  for (let ready = 0; ready < readys; ready++) {
    await nodeFileSystem.writev(fd, frames.slices);
    if (policy !== 'none') await nodeFileSystem.syncData(fd);
  }
  const seconds = (performance.now() - start) / 1000;
  await nodeFileSystem.close(fd);
  fs.rmSync(directory, { recursive: true, force: true });
  return { entriesPerSecond: (readys * entriesPerReady) / seconds, megabytesPerSecond: (readys * frames.byteLength) / 1e6 / seconds };
}

/**
 * One record per entry, as the alternative layout would write it: a 17-byte header (length, crc32c,
 * type, u64 index) before each entry, all in one gather write of 2 buffers per entry.
 */
async function perEntryAppend(directory: string, frames: EntryRange, readys: number): Promise<{ entriesPerSecond: number; megabytesPerSecond: number; bytesOnDisk: number }> {
  fs.mkdirSync(directory, { recursive: true });
  const fd = await nodeFileSystem.open(path.join(directory, 'per-entry.bin'), 'append');
  const slice = frames.slices[0] as Uint8Array;
  // Frame boundaries, found once (the ring knows them; this is not part of the timed loop).
  const boundaries: number[] = [0];
  const header = new FrameHeader();
  for (let at = 0; at < slice.length; ) {
    at += header.parse(slice, at, slice.length);
    boundaries.push(at);
  }
  let bytesOnDisk = 0;
  const start = performance.now();
  for (let ready = 0; ready < readys; ready++) {
    const headers = new Uint8Array(17 * entriesPerReady);
    const buffers: Uint8Array[] = [];
    for (let i = 0; i < entriesPerReady; i++) {
      const from = boundaries[i] as number;
      const to = boundaries[i + 1] as number;
      const header = headers.subarray(i * 17, i * 17 + 17);
      writeU32(header, 0, to - from + 8);
      header[8] = 3;
      writeU64(header, 9, ready * entriesPerReady + i + 1);
      let crc = crc32cUpdate(0, header, 0, 4);
      crc = crc32cUpdate(crc, header, 8, 17);
      writeU32(header, 4, crc32cUpdate(crc, slice, from, to));
      buffers.push(header, slice.subarray(from, to));
      bytesOnDisk += 17 + to - from;
    }
    await nodeFileSystem.writev(fd, buffers);
  }
  const seconds = (performance.now() - start) / 1000;
  await nodeFileSystem.close(fd);
  fs.rmSync(directory, { recursive: true, force: true });
  return { entriesPerSecond: (readys * entriesPerReady) / seconds, megabytesPerSecond: (readys * frames.byteLength) / 1e6 / seconds, bytesOnDisk };
}

async function benchAppend(root: string, size: Size): Promise<Row[]> {
  const config = sizes[size];
  const rows: Row[] = [];
  for (const dataBytes of [16, 256]) {
    const frames = readyFrames(dataBytes);
    for (const policy of fsyncPolicies) {
      const readys = config.readys[policy];
      const wal: number[][] = [];
      const raw: number[][] = [];
      for (let run = 0; run < config.runs; run++) {
        const w = await walAppend(freshDirectory(root, 'wal'), policy, frames, readys, 1);
        const r = await rawAppend(freshDirectory(root, 'raw'), policy, frames, readys);
        wal.push([w.entriesPerSecond, w.megabytesPerSecond]);
        raw.push([r.entriesPerSecond, r.megabytesPerSecond]);
      }
      const walRate = spread(wal.map((v) => v[1] as number));
      const rawRate = spread(raw.map((v) => v[1] as number));
      rows.push({
        name: 'wal append',
        policy,
        entryDataBytes: dataBytes,
        entriesPerSecond: spread(wal.map((v) => v[0] as number)),
        megabytesPerSecond: walRate,
        extra: { readys, readyEntryBytes: frames.byteLength, ofRawMedian: Number((walRate.median / rawRate.median).toFixed(2)) },
      });
      rows.push({ name: 'raw write, same cadence', policy, entryDataBytes: dataBytes, entriesPerSecond: spread(raw.map((v) => v[0] as number)), megabytesPerSecond: rawRate, extra: { readys } });
    }
    const perEntry: number[][] = [];
    let bytesOnDisk = 0;
    for (let run = 0; run < config.runs; run++) {
      const p = await perEntryAppend(freshDirectory(root, 'per-entry'), frames, config.readys.none);
      perEntry.push([p.entriesPerSecond, p.megabytesPerSecond]);
      bytesOnDisk = p.bytesOnDisk;
    }
    rows.push({
      name: 'layout: one record per entry',
      policy: 'none',
      entryDataBytes: dataBytes,
      entriesPerSecond: spread(perEntry.map((v) => v[0] as number)),
      megabytesPerSecond: spread(perEntry.map((v) => v[1] as number)),
      extra: { diskBytesPerEntryBytes: Number((bytesOnDisk / (config.readys.none * frames.byteLength)).toFixed(3)) },
    });
  }
  return rows;
}

async function benchGroupCommit(root: string, size: Size): Promise<Row[]> {
  const config = sizes[size];
  const frames = readyFrames(16);
  const rows: Row[] = [];
  for (const policy of ['always', 'batch'] as const) {
    const rates: number[] = [];
    const syncs: number[] = [];
    for (let run = 0; run < config.runs; run++) {
      const result = await walAppend(freshDirectory(root, 'group'), policy, frames, config.readys.batch * 2, 8);
      rates.push(result.entriesPerSecond);
      syncs.push(result.syncsPerSave);
    }
    rows.push({ name: 'group commit, 8 saves in flight', policy, entryDataBytes: 16, entriesPerSecond: spread(rates), extra: { fsyncsPerSaveMedian: Number(spread(syncs).median.toFixed(3)) } });
  }
  return rows;
}

function tryDropCaches(): boolean {
  try {
    fs.writeFileSync('/proc/sys/vm/drop_caches', '3\n');
    return true;
  } catch {
    return false;
  }
}

async function benchRecovery(root: string, size: Size, cold: boolean): Promise<Row[]> {
  const config = sizes[size];
  const rows: Row[] = [];
  for (const dataBytes of [16, 256]) {
    const frames = readyFrames(dataBytes);
    const directory = freshDirectory(root, 'recovery');
    const readys = Math.ceil(config.recoveryBytes / frames.byteLength);
    const writer = await WalStorage.open(directory, { fsyncPolicy: 'none' });
    for (let ready = 0; ready < readys; ready++) {
      const firstIndex = ready * entriesPerReady + 1;
      await writer.save({ hardState: { term: 1, vote: 1, commit: firstIndex - 1 }, entries: { ...frames, firstIndex }, snapshot: null, mustSync: true });
    }
    const logBytes = writer.stats().segmentBytes;
    await writer.close();
    const secondsPerGibibyte: number[] = [];
    const entriesPerSecond: number[] = [];
    let dropped = false;
    for (let run = 0; run < config.runs; run++) {
      if (cold) dropped = tryDropCaches();
      const start = performance.now();
      const storage = await WalStorage.open(directory);
      const state = await storage.load();
      const seconds = (performance.now() - start) / 1000;
      checksum ^= state?.entries?.count ?? 0;
      await storage.close();
      secondsPerGibibyte.push(seconds / (logBytes / 2 ** 30));
      entriesPerSecond.push((readys * entriesPerReady) / seconds);
    }
    fs.rmSync(directory, { recursive: true, force: true });
    rows.push({
      name: `recovery (open + load), ${dropped ? 'cold' : 'warm'} page cache`,
      policy: '-',
      entryDataBytes: dataBytes,
      entriesPerSecond: spread(entriesPerSecond),
      secondsPerGibibyte: spread(secondsPerGibibyte),
      extra: { measuredLogMegabytes: Number((logBytes / 1e6).toFixed(1)), secondsPerGibibyteMedian: Number(spread(secondsPerGibibyte).median.toFixed(3)), secondsPerGibibyteMax: Number(spread(secondsPerGibibyte).max.toFixed(3)) },
    });
  }
  return rows;
}

/** A bench lab record (benchmarks/src/results.ts BenchRecord, suite 'wal'). */
interface WalRecord {
  readonly suite: 'wal';
  readonly scenario: string;
  readonly transport: 'none';
  readonly nodes: 0;
  readonly batch: number;
  readonly metric: string;
  readonly unit: string;
  readonly value: number;
  readonly samples: number;
  readonly spread: { readonly min: number; readonly p25: number; readonly p75: number; readonly max: number; readonly stdev: number } | null;
  readonly reference?: { readonly name: string; readonly value: number; readonly unit: string; readonly ratio: number };
  readonly fsync?: FsyncPolicy;
  readonly checksum?: string;
  readonly note?: string;
}

function record(row: Row, metric: string, unit: string, value: Spread, extra: Partial<WalRecord> = {}): WalRecord {
  const note = row.extra === undefined ? undefined : Object.entries(row.extra).map(([key, item]) => `${key}=${item}`).join(' ');
  return {
    suite: 'wal',
    scenario: `${row.name}${row.entryDataBytes > 0 ? `, ${row.entryDataBytes} B entries` : ''}`,
    transport: 'none',
    nodes: 0,
    batch: row.name.startsWith('crc32c') ? 1 : entriesPerReady,
    metric,
    unit,
    value: value.median,
    samples: value.runs,
    spread: value.runs < 2 ? null : { min: value.min, p25: value.p25, p75: value.p75, max: value.max, stdev: value.stdev },
    ...(row.policy === '-' ? {} : { fsync: row.policy }),
    ...(note === undefined ? {} : { note }),
    ...extra,
  };
}

/** The rows as lab records; WAL append figures carry the raw write of the same bytes as their reference. */
export function walRecords(rows: readonly Row[]): WalRecord[] {
  const records: WalRecord[] = [];
  for (const row of rows) {
    const raw = row.name === 'wal append' ? rows.find((other) => other.name === 'raw write, same cadence' && other.policy === row.policy && other.entryDataBytes === row.entryDataBytes) : undefined;
    if (row.megabytesPerSecond !== undefined) {
      const rawRate = raw?.megabytesPerSecond?.median;
      const reference = rawRate === undefined || rawRate === 0 ? {} : { reference: { name: 'raw sequential write, same bytes and fsync cadence', value: rawRate, unit: 'MB/s', ratio: row.megabytesPerSecond.median / rawRate } };
      records.push(record(row, row.name.startsWith('crc32c') ? 'crc-rate' : 'append-rate', 'MB/s', row.megabytesPerSecond, reference));
    }
    if (row.entriesPerSecond !== undefined) {
      const rawRate = raw?.entriesPerSecond?.median;
      const reference = rawRate === undefined || rawRate === 0 ? {} : { reference: { name: 'raw sequential write, same bytes and fsync cadence', value: rawRate, unit: 'entries/s', ratio: row.entriesPerSecond.median / rawRate } };
      records.push(record(row, row.name.startsWith('recovery') ? 'recovery-rate' : 'append-entries', 'entries/s', row.entriesPerSecond, reference));
    }
    if (row.secondsPerGibibyte !== undefined) {
      records.push(record(row, 'recovery-seconds-per-gib', 's/GiB', row.secondsPerGibibyte, { note: `${row.extra?.['measuredLogMegabytes']} MB log measured, scaled linearly to 1 GiB; ${row.name.includes('cold') ? 'page cache dropped' : 'page cache warm'}` }));
    }
  }
  return records;
}

function format(value: Spread | undefined, digits: number): string {
  if (value === undefined) return '';
  return `${value.median.toFixed(digits)} [${value.min.toFixed(digits)}..${value.max.toFixed(digits)}]`;
}

async function main(): Promise<void> {
  const size = (argument('size') ?? 'small') as Size;
  if (!(size in sizes)) throw new Error(`--size must be small or large, got ${size}`);
  const root = argument('dir') ?? fs.mkdtempSync(path.join(os.tmpdir(), 'raftlab-wal-bench-'));
  fs.mkdirSync(root, { recursive: true });
  const cold = process.argv.includes('--cold');
  const rows: Row[] = [];
  try {
    rows.push(...(await benchCrc(sizes[size].crcMegabytes, sizes[size].runs)));
    rows.push(...(await benchAppend(root, size)));
    rows.push(...(await benchGroupCommit(root, size)));
    rows.push(...(await benchRecovery(root, size, cold)));
  } finally {
    if (argument('dir') === undefined) fs.rmSync(root, { recursive: true, force: true });
  }
  const machine = { cpu: os.cpus()[0]?.model ?? 'unknown', cores: os.cpus().length, node: process.version, platform: `${os.platform()} ${os.release()}`, directory: root };
  console.log(`WAL benchmark, size ${size}: ${machine.cpu} x${machine.cores}, Node ${machine.node}, ${machine.platform}, files in ${root}`);
  console.log('median [min..max] over runs; MB/s counts entry frame bytes; policy none is NOT durable');
  for (const row of rows) {
    const extra = row.extra === undefined ? '' : Object.entries(row.extra).map(([key, value]) => `${key}=${value}`).join(' ');
    console.log(
      [row.name.padEnd(44), String(row.policy).padEnd(6), `${row.entryDataBytes}B`.padEnd(5), format(row.entriesPerSecond, 0).padEnd(32), (row.megabytesPerSecond === undefined ? '' : `${format(row.megabytesPerSecond, 1)} MB/s`).padEnd(30), extra].join(' '),
    );
  }
  console.log(`checksum ${checksum >>> 0}`);
  const json = argument('json');
  if (json !== undefined) {
    const records = walRecords(rows).map((item) => ({ ...item, checksum: String(checksum >>> 0) }));
    fs.writeFileSync(json, `${JSON.stringify({ size, machine, cold, records, checksum: checksum >>> 0 }, null, 2)}\n`);
  }
}

await main();
