/**
 * The report (scripts/src/report.ts) turns a bench run into markdown and offline SVG charts: every
 * suite gets a table with medians and spreads, references and notes; every chart whose data exists
 * is drawn (and only those, with a line naming what is missing); the same run gives the same bytes;
 * and the command line refuses a bad results file with a clear error.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { afterEach, describe, expect, test } from 'vitest';

import { formatCell, formatNumber } from '../src/format.js';
import { repositoryRoot } from '../src/paths.js';
import { renderReport, writeReport } from '../src/report.js';
import { syntheticRun } from './fixtures.js';

const reportScript = path.join(repositoryRoot, 'scripts', 'dist', 'report.js');
const temporaryDirectories: string[] = [];
function temporaryDirectory(): string {
  const directory = mkdtempSync(path.join(os.tmpdir(), 'raftlab-report-test-'));
  temporaryDirectories.push(directory);
  return directory;
}
afterEach(() => {
  for (const directory of temporaryDirectories.splice(0)) rmSync(directory, { recursive: true, force: true });
});

describe('formatting', () => {
  test('numbers take three significant digits and an SI suffix from ten thousand up', () => {
    expect([0, 14, 1234, 1234.5, 12_345, 1_234_567, 999_950, 0.008, 0.0123456, 2.5e-7].map(formatNumber)).toEqual([
      '0', '14', '1234', '1235', '12.3k', '1.23M', '1M', '0.008', '0.0123', '2.50e-7',
    ]);
  });

  test('a cell shows the median, p25 and p75, and the sample count', () => {
    expect(formatCell({ value: 1_234_567, unit: 'entries/s', samples: 10, spread: { min: 1, p25: 1_200_000, p75: 1_250_000, max: 2, stdev: 1 } })).toBe(
      '1.23M/s (p25 1.2M – p75 1.25M, n=10)',
    );
    expect(formatCell({ value: 0.008, unit: 'messages/entry', samples: 1, spread: null })).toBe('0.008');
  });
});

describe('renderReport', () => {
  test('has the header, a table per suite, the references, the notes and every chart', async () => {
    const report = await renderReport(syntheticRun());
    const markdown = report.markdown;
    expect(markdown).toMatch(/\| Machine +\| Test CPU @ 3\.0GHz, 2 cores, 24 GiB, linux x64/);
    expect(markdown).toMatch(/\| Node +\| v20\.20\.2/);
    expect(markdown).toMatch(/\| Commit +\| abc1234/);
    expect(markdown).toMatch(/\| Seeds +\| 1, 2, 3/);
    expect(markdown).toMatch(/\| Duration +\| 5 min 09 s/);
    for (const suite of ['election', 'latency', 'memory', 'messages', 'throughput']) expect(markdown).toContain(`## Suite: ${suite}`);
    expect(markdown).toMatch(/\| memory +\| +3 \| +1000 \| 1\.96M\/s \(p25 1\.93M – p75 2\.01M, n=10\) \|/);
    expect(markdown).toContain('Ratios to in-run references (value / reference):');
    expect(markdown).toMatch(/speed-of-light probe: 5M\/s \| +0\.393× \|/);
    expect(markdown).toContain('fsync none: benchmark only, not durable');
    expect(markdown).toContain('none, 1 node, heap-bytes-per-entry: measured after a forced GC');
    expect(report.charts.map((c) => c.name)).toEqual(['throughput', 'commit-latency-cdf', 'election-ticks', 'election-ms', 'messages-per-entry']);
    for (const chart of report.charts) {
      expect(markdown).toContain(`(charts/${chart.name}.svg)`);
      expect(chart.svg.startsWith('<svg')).toBe(true);
    }
    expect(report.missing).toEqual([]);
  }, 60_000);

  test('tables are ordered by transport then cluster size, whatever the input order', async () => {
    const run = syntheticRun(['throughput']);
    const shuffled = { ...run, records: [...run.records].reverse() };
    const markdown = (await renderReport(shuffled)).markdown;
    const rows = markdown.split('\n').filter((line) => /^\| (memory|tcp|ws) /.test(line)).map((line) => line.split('|').slice(1, 3).map((c) => c.trim()).join(' '));
    expect(rows.slice(0, 12)).toEqual(['memory 3', 'memory 5', 'memory 7', 'memory 10', 'tcp 3', 'tcp 5', 'tcp 7', 'tcp 10', 'ws 3', 'ws 5', 'ws 7', 'ws 10']);
  });

  test('the same run gives byte-identical markdown and charts', async () => {
    const first = await renderReport(syntheticRun());
    const second = await renderReport(syntheticRun());
    expect(second.markdown).toBe(first.markdown);
    expect(second.charts).toEqual(first.charts);
  }, 60_000);

  test('a run with only some suites draws only their charts and names what is missing', async () => {
    const report = await renderReport(syntheticRun(['throughput']));
    expect(report.charts.map((c) => c.name)).toEqual(['throughput']);
    expect(report.missing.map((m) => m.reason)).toEqual([
      'no `commit-latency` records with a distribution',
      'no `election-ticks` records with a distribution',
      'no `election-ms` records with a distribution',
      'no `messages-per-entry` records',
    ]);
    expect(report.markdown).toContain('Not drawn (no data in this run): Commit latency CDF (no `commit-latency` records with a distribution)');
    expect(report.markdown).not.toContain('charts/election-ticks.svg');
  });

  test('a figure with no cluster (nodes 0, a micro benchmark) shows a dash for the size', async () => {
    const run = syntheticRun([]);
    const micro = { ...run, records: [{ suite: 'micro', scenario: 'encode entry', transport: 'none' as const, nodes: 0, batch: 1, metric: 'ops', unit: 'ops/s', value: 12_345_678, samples: 1, spread: null, note: 'one run' }] };
    const markdown = (await renderReport(micro)).markdown;
    expect(markdown).toMatch(/\| none +\| +– \| +12\.3M\/s \|/);
    expect(markdown).toContain('- encode entry, none, no cluster, ops: one run');
  });

  test('a run with no records still renders, saying so', async () => {
    const report = await renderReport({ ...syntheticRun([]), records: [] });
    expect(report.charts).toEqual([]);
    expect(report.markdown).toContain('This run has no records.');
    expect(report.markdown).toContain('No chart: this run has none of the metrics the charts draw.');
  });
});

describe('writeReport and the command line', () => {
  test('a later run without a family removes that family\'s stale chart', async () => {
    const directory = temporaryDirectory();
    await writeReport(syntheticRun(['throughput', 'messages']), directory);
    expect(existsSync(path.join(directory, 'charts', 'messages-per-entry.svg'))).toBe(true);
    await writeReport(syntheticRun(['throughput']), directory);
    expect(existsSync(path.join(directory, 'charts', 'messages-per-entry.svg'))).toBe(false);
    expect(existsSync(path.join(directory, 'charts', 'throughput.svg'))).toBe(true);
  });

  test('the CLI writes latest.md and the charts into --out', () => {
    const directory = temporaryDirectory();
    const input = path.join(directory, 'run.json');
    writeFileSync(input, JSON.stringify(syntheticRun(['election'])));
    const output = execFileSync(process.execPath, [reportScript, input, '--out', path.join(directory, 'out')], { encoding: 'utf8' });
    expect(output).toContain(`report: ${path.join(directory, 'out', 'latest.md')}`);
    expect(readFileSync(path.join(directory, 'out', 'charts', 'election-ticks.svg'), 'utf8')).toMatch(/^<svg/);
  });

  test('the CLI refuses an invalid results file with every problem and exit 1', () => {
    const directory = temporaryDirectory();
    const input = path.join(directory, 'bad.json');
    writeFileSync(input, JSON.stringify({ ...syntheticRun(['other']), mode: 'fast', node: 20 }));
    const result = spawnSync(process.execPath, [reportScript, input, '--out', directory], { encoding: 'utf8' });
    expect(result.status).toBe(1);
    expect(result.stderr).toContain('not a valid bench run');
    expect(result.stderr).toContain('run.mode: expected one of full | quick | check, got "fast"');
    expect(result.stderr).toContain('run.node: expected a non-empty string, got 20');
    expect(existsSync(path.join(directory, 'latest.md'))).toBe(false);
  });

  test('the CLI says where the results are missing', () => {
    const directory = temporaryDirectory();
    const result = spawnSync(process.execPath, [reportScript, path.join(directory, 'none.json')], { encoding: 'utf8' });
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(/no results at .*none\.json: run the benchmarks first/);
  });
});

describe('column order', () => {
  test('a metric is followed by its tails (p90, p99, max) and the known metrics come first', async () => {
    const base = { suite: 'cluster', scenario: 'load', transport: 'tcp' as const, nodes: 3, batch: 1000, samples: 1, spread: null };
    const metrics = ['bytes-per-entry', 'commit-latency-max', 'zeta', 'commit-latency-p99', 'throughput', 'commit-latency', 'commit-latency-p90', 'messages-per-entry-min', 'messages-per-entry'];
    const run = { ...syntheticRun(['other']), records: metrics.map((metric) => ({ ...base, metric, unit: 'x', value: 1 })) };
    const { markdown } = await renderReport(run);
    const head = markdown.split('\n').find((line) => line.startsWith('| Transport')) ?? '';
    const columns = head.split('|').map((cell) => cell.trim().replace(/ \(x\)$/, '')).filter((cell) => cell !== '');
    expect(columns).toEqual(['Transport', 'Nodes', 'Batch', 'throughput', 'commit-latency', 'commit-latency-p90', 'commit-latency-p99', 'commit-latency-max', 'messages-per-entry', 'messages-per-entry-min', 'bytes-per-entry', 'zeta']);
  });
});
