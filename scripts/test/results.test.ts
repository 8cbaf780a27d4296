/**
 * The results schema (benchmarks/src/results.ts) holds what a bench run claims: summarize gives the
 * median and an ordered spread, downsample keeps a distribution's shape within its bound,
 * validateRun accepts a well-formed run and names every problem of a broken one by its path, and
 * writeRun saves the run under a sortable name, refreshes latest.json, regenerates the report, and
 * loses nothing when the run is invalid or the report generator is missing.
 */
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import {
  type BenchRun,
  ResultsError,
  distributionSamplesMax,
  downsample,
  gitInfo,
  machineInfo,
  messagesPerEntryMin,
  parseRun,
  referenceFor,
  runFileName,
  summarize,
  validateRun,
  writeRun,
} from '@raftlab/benchmarks/dist/results.js';
import { afterEach, describe, expect, test } from 'vitest';

import { syntheticRun } from './fixtures.js';

const temporaryDirectories: string[] = [];
function temporaryDirectory(): string {
  const directory = mkdtempSync(path.join(os.tmpdir(), 'raftlab-results-test-'));
  temporaryDirectories.push(directory);
  return directory;
}
afterEach(() => {
  for (const directory of temporaryDirectories.splice(0)) rmSync(directory, { recursive: true, force: true });
});

/** A deep copy that tests may break. */
function mutable(run: BenchRun): Record<string, unknown> & { records: Record<string, unknown>[] } {
  return JSON.parse(JSON.stringify(run)) as Record<string, unknown> & { records: Record<string, unknown>[] };
}

describe('summarize', () => {
  test('the value is the median and the spread brackets it', () => {
    const summary = summarize([5, 1, 4, 2, 3]);
    expect(summary.value).toBe(3);
    expect(summary.samples).toBe(5);
    expect(summary.spread).toEqual({ min: 1, p25: 2, p75: 4, max: 5, stdev: Math.sqrt(2.5) });
  });

  test('an even count interpolates the median between the middle samples', () => {
    expect(summarize([1, 2, 3, 10]).value).toBe(2.5);
  });

  test('a single sample has no spread', () => {
    expect(summarize([7])).toEqual({ value: 7, samples: 1, spread: null });
  });

  test('no samples, or a non-finite one, is refused with the position', () => {
    expect(() => summarize([])).toThrow(ResultsError);
    expect(() => summarize([1, Number.NaN])).toThrow(/sample 1 is NaN/);
    expect(() => summarize([Number.POSITIVE_INFINITY])).toThrow(/sample 0 is Infinity/);
  });
});

describe('downsample', () => {
  test('keeps every sample, sorted, when they fit the bound', () => {
    expect(downsample([3, 1, 2])).toEqual([1, 2, 3]);
  });

  test('keeps at most distributionSamplesMax values, the minimum and maximum among them', () => {
    const samples = Array.from({ length: 10_001 }, (_, i) => (i * 7919) % 10_001);
    const kept = downsample(samples);
    expect(kept).toHaveLength(distributionSamplesMax);
    expect(kept[0]).toBe(0);
    expect(kept[kept.length - 1]).toBe(10_000);
    expect(summarize(kept).value).toBeCloseTo(5000, 0);
  });
});

describe('helpers', () => {
  test('referenceFor computes ratio = value / reference', () => {
    expect(referenceFor(2_000_000, 'probe', 8_000_000, 'entries/s')).toEqual({ name: 'probe', value: 8_000_000, unit: 'entries/s', ratio: 0.25 });
    expect(() => referenceFor(1, 'probe', 0, 'x')).toThrow(/non-zero/);
  });

  test('the message minimum is 2(N-1)/B', () => {
    expect(messagesPerEntryMin(3, 1000)).toBe(0.004);
    expect(messagesPerEntryMin(10, 1)).toBe(18);
  });

  test('machineInfo describes this machine and leaves the hostname out unless asked', () => {
    const info = machineInfo();
    expect(info.cores).toBeGreaterThanOrEqual(1);
    expect(info.memoryBytes).toBe(os.totalmem());
    expect(info.cpuModel.length).toBeGreaterThan(0);
    expect('hostname' in info).toBe(false);
    expect(machineInfo({ includeHostname: true }).hostname).toBe(os.hostname());
  });

  test('gitInfo gives a short hash in a checkout and "unknown" outside one', () => {
    const inside = gitInfo();
    expect(inside.commit).toMatch(/^[0-9a-f]{4,40}$/);
    expect(gitInfo(temporaryDirectory())).toEqual({ commit: 'unknown', dirty: false });
  });

  test('run file names sort by start time and carry the commit', () => {
    expect(runFileName({ startedAt: '2026-01-02T03:04:05.678Z', commit: 'abc1234', dirty: false })).toBe('2026-01-02T030405Z-abc1234.json');
    expect(runFileName({ startedAt: '2026-01-02T03:04:05.678Z', commit: 'abc1234', dirty: true })).toBe('2026-01-02T030405Z-abc1234-dirty.json');
  });
});

describe('validateRun', () => {
  test('accepts a complete synthetic run', () => {
    const validation = validateRun(JSON.parse(JSON.stringify(syntheticRun())));
    expect(validation.ok ? [] : validation.errors).toEqual([]);
  });

  test('names each problem by its path', () => {
    const run = mutable(syntheticRun(['messages', 'other']));
    run['mode'] = 'fast';
    delete run['node'];
    const first = run.records[0] as Record<string, unknown>;
    first['transport'] = 'udp';
    first['nodes'] = -1;
    first['value'] = 'many';
    first['fsynch'] = 'none';
    const validation = validateRun(run);
    expect(validation.ok).toBe(false);
    const errors = validation.ok ? [] : validation.errors;
    expect(errors).toContain('run.mode: expected one of full | quick | check, got "fast"');
    expect(errors).toContain('run.node: expected a non-empty string, got undefined');
    expect(errors).toContain('run.records[0].transport: expected one of memory | tcp | ws | none, got "udp"');
    expect(errors).toContain('run.records[0].nodes: expected an integer >= 0, got -1');
    expect(errors).toContain('run.records[0].value: expected a finite number, got "many"');
    expect(errors.some((e) => e.startsWith('run.records[0].fsynch: unknown field'))).toBe(true);
  });

  test('refuses a spread out of order, a wrong ratio and an oversized distribution', () => {
    const run = mutable(syntheticRun(['throughput', 'latency']));
    const throughput = run.records.find((r) => r['metric'] === 'throughput') as Record<string, unknown>;
    (throughput['spread'] as Record<string, number>)['p25'] = (throughput['value'] as number) * 2;
    (throughput['reference'] as Record<string, number>)['ratio'] = 99;
    const latency = run.records.find((r) => r['metric'] === 'commit-latency') as Record<string, unknown>;
    latency['distribution'] = Array.from({ length: distributionSamplesMax + 1 }, () => 1);
    const errors = (() => {
      const validation = validateRun(run);
      return validation.ok ? [] : validation.errors;
    })();
    expect(errors.some((e) => /spread: must satisfy min <= p25 <= value <= p75 <= max/.test(e))).toBe(true);
    expect(errors.some((e) => /reference\.ratio: 99 is not value \/ reference\.value/.test(e))).toBe(true);
    expect(errors.some((e) => /distribution: 2001 values, more than the bound 2000/.test(e))).toBe(true);
  });

  test('refuses another schema version and a finish before the start', () => {
    const run = mutable(syntheticRun(['other']));
    run['schema'] = 2;
    run['finishedAt'] = '2020-01-01T00:00:00.000Z';
    const validation = validateRun(run);
    const errors = validation.ok ? [] : validation.errors;
    expect(errors.some((e) => e.startsWith('run.schema: expected 1, got 2'))).toBe(true);
    expect(errors).toContain('run.finishedAt: before startedAt');
  });

  test('parseRun explains non-JSON input', () => {
    expect(() => parseRun('{not json', 'x.json')).toThrow(/x\.json: not JSON/);
    expect(() => parseRun('[]', 'x.json')).toThrow(/run: expected an object, got an array/);
  });
});

describe('writeRun', () => {
  test('writes the run and latest.json, then regenerates latest.md and the charts', () => {
    const directory = temporaryDirectory();
    const run = syntheticRun();
    const result = writeRun(run, directory);
    expect(path.basename(result.runPath)).toBe('2026-01-02T030405Z-abc1234.json');
    expect(JSON.parse(readFileSync(result.runPath, 'utf8'))).toEqual(run);
    expect(readFileSync(result.latestPath, 'utf8')).toBe(readFileSync(result.runPath, 'utf8'));
    expect(result.report).toEqual({ ok: true, markdownPath: path.join(directory, 'latest.md') });
    expect(readFileSync(path.join(directory, 'latest.md'), 'utf8')).toContain('# raftlab bench report');
    expect(readdirSync(path.join(directory, 'charts')).sort()).toEqual(['commit-latency-cdf.svg', 'election-ms.svg', 'election-ticks.svg', 'messages-per-entry.svg', 'throughput.svg']);
  }, 60_000);

  test('saves an invalid run as .invalid.json and refuses it, leaving latest.json alone', () => {
    const directory = temporaryDirectory();
    const run = { ...syntheticRun(['other']), mode: 'fast' } as unknown as BenchRun;
    expect(() => writeRun(run, directory, { reportScript: null })).toThrow(/not valid \(saved as .*\.invalid\.json\):\n {2}run\.mode/);
    expect(readdirSync(directory)).toEqual(['2026-01-02T030405Z-abc1234.invalid.json']);
    expect(existsSync(path.join(directory, 'latest.json'))).toBe(false);
  });

  test('keeps the run when the report generator is missing, and says so', () => {
    const directory = temporaryDirectory();
    const result = writeRun(syntheticRun(['other']), directory, { reportScript: path.join(directory, 'no-such-report.js') });
    expect(existsSync(result.runPath)).toBe(true);
    expect(result.report.ok).toBe(false);
    expect(result.report.ok ? '' : result.report.reason).toMatch(/not built/);
  });
});
