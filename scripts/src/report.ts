/**
 * The bench report: a BenchRun (results/latest.json) becomes results/latest.md and
 * results/charts/*.svg.
 *
 *   node scripts/dist/report.js [results/latest.json] [--out results]
 *
 * The markdown has a header (machine, Node, commit, date, mode, duration, seeds), the charts, and
 * one section per suite: a table per scenario (rows: transport x nodes; columns: metrics with
 * units; cells: median and spread), ratios to in-run references, and notes. Suites or charts
 * without data are named as missing, never an error. Everything is sorted, so the same run gives
 * the same bytes.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

import { type BenchRecord, type BenchRun, ResultsError, knownMetrics, parseRun } from '@raftlab/benchmarks/dist/results.js';

import { type ChartPlan, chartNotes, compareRecords, compareText, planCharts, renderSvg } from './charts.js';
import { escapeCell, formatBytes, formatCell, formatDuration, formatNumber, markdownTable, unitSuffix } from './format.js';
import { resultsDirectory } from './paths.js';

/** Seeds listed in the header before the rest are summarized. */
const headerSeedsMax = 12;

/** The report of one run, before it is written. */
export interface RenderedReport {
  readonly markdown: string;
  /** Drawn charts, by file name under charts/. */
  readonly charts: readonly { readonly name: string; readonly svg: string }[];
  /** Charts not drawn, and why. */
  readonly missing: readonly { readonly title: string; readonly reason: string }[];
}

const knownMetricOrder: readonly string[] = Object.values(knownMetrics).map((known) => known.metric);

/** Suffixes of a known metric's companions (`commit-latency-p99`), in column order after the metric itself. */
const companionOrder: readonly string[] = ['', 'p90', 'p99', 'max', 'min', 'ticks', 'ms'];

/** A metric's column rank: its known base metric, then its companion suffix. */
function metricRank(metric: string): { base: number; companion: number; suffix: string } {
  let base = -1;
  let suffix = metric;
  for (let i = 0; i < knownMetricOrder.length; i++) {
    const known = knownMetricOrder[i] as string;
    if ((metric === known || metric.startsWith(`${known}-`)) && (base === -1 || known.length > (knownMetricOrder[base] as string).length)) {
      base = i;
      suffix = metric.slice(known.length + 1);
    }
  }
  const companion = companionOrder.indexOf(suffix);
  return { base: base === -1 ? knownMetricOrder.length : base, companion: companion === -1 ? companionOrder.length : companion, suffix };
}

function compareMetrics(a: string, b: string): number {
  const rankA = metricRank(a);
  const rankB = metricRank(b);
  return rankA.base - rankB.base || rankA.companion - rankB.companion || compareText(a, b);
}

function formatDate(iso: string): string {
  return `${new Date(iso).toISOString().replace('T', ' ').replace(/\.\d+Z$/, '')} UTC`;
}

function formatSeeds(seeds: readonly number[]): string {
  if (seeds.length === 0) return 'none recorded';
  if (seeds.length <= headerSeedsMax) return seeds.join(', ');
  return `${seeds.slice(0, headerSeedsMax).join(', ')}, … (${seeds.length} seeds)`;
}

function header(run: BenchRun): string {
  const suites = [...new Set(run.records.map((r) => r.suite))].sort(compareText);
  const machine = run.machine;
  const rows: string[][] = [
    ['Date', `${formatDate(run.startedAt)} (finished ${formatDate(run.finishedAt)})`],
    ['Mode', run.mode],
    ['Duration', formatDuration(run.durationMs)],
    ['Machine', `${machine.cpuModel}, ${machine.cores} cores, ${formatBytes(machine.memoryBytes)}, ${machine.platform} ${machine.arch}${machine.hostname === undefined ? '' : `, ${machine.hostname}`}`],
    ['Node', run.node],
    ['Commit', `${run.commit}${run.dirty ? ' (uncommitted changes)' : ''}`],
    ['Seeds', formatSeeds(run.seeds)],
    ['Records', `${run.records.length} in ${suites.length} suite${suites.length === 1 ? '' : 's'}${suites.length === 0 ? '' : ` (${suites.join(', ')})`}`],
  ];
  return ['# raftlab bench report', '', markdownTable(['', ''], rows)].join('\n');
}

/** Key of a table row: the record's coordinates other than its metric. */
function rowKey(record: BenchRecord): string {
  return `${record.transport}\u0000${record.nodes}\u0000${record.batch}\u0000${record.fsync ?? ''}`;
}

function columnKey(record: BenchRecord): string {
  return `${record.metric}\u0000${record.unit}`;
}

/** One table: rows transport x nodes (x batch, x fsync when present), columns metric (unit). */
function scenarioTable(records: readonly BenchRecord[]): string {
  const sorted = [...records].sort(compareRecords);
  const showBatch = sorted.some((r) => r.batch !== 1);
  const showFsync = sorted.some((r) => r.fsync !== undefined);
  const columns = [...new Map(sorted.map((r) => [columnKey(r), r] as const)).values()]
    .sort((a, b) => compareMetrics(a.metric, b.metric) || compareText(a.unit, b.unit))
    .map((r) => ({ key: columnKey(r), title: `${r.metric} (${r.unit})` }));
  const rows = new Map<string, { first: BenchRecord; cells: Map<string, string[]> }>();
  for (const record of sorted) {
    const key = rowKey(record);
    let row = rows.get(key);
    if (row === undefined) {
      row = { first: record, cells: new Map() };
      rows.set(key, row);
    }
    const cell = row.cells.get(columnKey(record)) ?? [];
    cell.push(formatCell(record));
    row.cells.set(columnKey(record), cell);
  }
  const head = ['Transport', 'Nodes', ...(showBatch ? ['Batch'] : []), ...(showFsync ? ['Fsync'] : []), ...columns.map((c) => c.title)];
  const body = [...rows.values()].map(({ first, cells }) => [
    first.transport,
    first.nodes === 0 ? '–' : String(first.nodes),
    ...(showBatch ? [String(first.batch)] : []),
    ...(showFsync ? [first.fsync ?? ''] : []),
    ...columns.map((c) => (cells.get(c.key) ?? ['–']).join('; ')),
  ]);
  const align = head.map((_, i) => (i === 0 || (showFsync && i === (showBatch ? 3 : 2)) ? 'left' : 'right') as 'left' | 'right');
  return markdownTable(head, body, align);
}

function describeNodes(nodes: number): string {
  return nodes === 0 ? 'no cluster' : `${nodes} node${nodes === 1 ? '' : 's'}`;
}

function describeRow(record: BenchRecord): string {
  return `${record.transport}, ${describeNodes(record.nodes)}${record.batch === 1 ? '' : `, batch ${record.batch}`}${record.fsync === undefined ? '' : `, fsync ${record.fsync}`}`;
}

function referencesTable(records: readonly BenchRecord[]): string | null {
  const withReference = records.filter((r) => r.reference !== undefined).sort(compareRecords);
  if (withReference.length === 0) return null;
  const showScenario = withReference.some((r) => r.scenario !== undefined);
  const rows = withReference.map((r) => {
    const reference = r.reference as NonNullable<BenchRecord['reference']>;
    return [
      ...(showScenario ? [r.scenario ?? ''] : []),
      describeRow(r),
      r.metric,
      `${formatNumber(r.value)}${unitSuffix(r.unit)}`,
      `${reference.name}: ${formatNumber(reference.value)}${unitSuffix(reference.unit)}`,
      `${formatNumber(reference.ratio)}×`,
    ];
  });
  const head = [...(showScenario ? ['Scenario'] : []), 'Row', 'Metric', 'Value', 'Reference', 'Ratio'];
  const align: ('left' | 'right')[] = [...(showScenario ? ['left' as const] : []), 'left', 'left', 'right', 'right', 'right'];
  return markdownTable(head, rows, align);
}

function suiteNotes(records: readonly BenchRecord[]): string[] {
  const notes: string[] = [];
  const unsynced = records.filter((r) => r.fsync === 'none');
  if (unsynced.length > 0) {
    notes.push(`fsync none: benchmark only, not durable (${unsynced.length} record${unsynced.length === 1 ? '' : 's'}); never run a cluster this way.`);
  }
  for (const record of [...records].sort(compareRecords)) {
    if (record.note !== undefined) notes.push(`${record.scenario === undefined ? '' : `${record.scenario}, `}${describeRow(record)}, ${record.metric}: ${record.note}`);
  }
  const checksums = records.filter((r) => r.checksum !== undefined).sort(compareRecords);
  if (checksums.length > 0) {
    const distinct = [...new Set(checksums.map((r) => r.checksum as string))];
    notes.push(`checksums: ${distinct.length <= 6 ? distinct.map((c) => `\`${c}\``).join(', ') : `${distinct.length} distinct`} over ${checksums.length} record${checksums.length === 1 ? '' : 's'}`);
  }
  return notes;
}

function suiteSection(suite: string, records: readonly BenchRecord[]): string {
  const parts: string[] = [`## Suite: ${escapeCell(suite)}`];
  const scenarios = [...new Set(records.map((r) => r.scenario ?? ''))].sort(compareText);
  for (const scenario of scenarios) {
    const inScenario = records.filter((r) => (r.scenario ?? '') === scenario);
    if (scenarios.length > 1 || scenario !== '') parts.push(`### ${scenario === '' ? '(no scenario)' : escapeCell(scenario)}`);
    parts.push(scenarioTable(inScenario));
  }
  const references = referencesTable(records);
  if (references !== null) parts.push('Ratios to in-run references (value / reference):', references);
  const notes = suiteNotes(records);
  if (notes.length > 0) parts.push(['Notes:', ...notes.map((note) => `- ${note}`)].join('\n'));
  return parts.join('\n\n');
}

function chartsSection(plans: readonly ChartPlan[], notes: readonly string[]): string {
  const parts: string[] = ['## Charts'];
  const drawn = plans.filter((plan) => plan.spec !== null);
  for (const plan of drawn) parts.push(`![${plan.title}](charts/${plan.name}.svg)`);
  if (drawn.length === 0) parts.push('No chart: this run has none of the metrics the charts draw.');
  const missing = plans.filter((plan) => plan.spec === null);
  if (missing.length > 0) {
    parts.push(`Not drawn (no data in this run): ${missing.map((plan) => `${plan.title} (${plan.missing ?? 'no data'})`).join('; ')}.`);
  }
  if (notes.length > 0) parts.push(notes.map((note) => `- ${note}`).join('\n'));
  return parts.join('\n\n');
}

/** Renders the markdown and the charts of `run`, without touching the disk. */
export async function renderReport(run: BenchRun): Promise<RenderedReport> {
  const plans = planCharts(run);
  const charts: { name: string; svg: string }[] = [];
  for (const plan of plans) {
    if (plan.spec !== null) charts.push({ name: plan.name, svg: await renderSvg(plan.spec) });
  }
  const sections: string[] = [header(run)];
  if (run.notes.length > 0) sections.push(['## Notes', '', ...run.notes.map((note) => `- ${note}`)].join('\n'));
  sections.push(chartsSection(plans, chartNotes(run)));
  const suites = [...new Set(run.records.map((r) => r.suite))].sort(compareText);
  if (suites.length === 0) sections.push('## Suites\n\nThis run has no records.');
  for (const suite of suites) sections.push(suiteSection(suite, run.records.filter((r) => r.suite === suite)));
  return {
    markdown: `${sections.join('\n\n')}\n`,
    charts,
    missing: plans.filter((plan) => plan.spec === null).map((plan) => ({ title: plan.title, reason: plan.missing ?? 'no data' })),
  };
}

function writeAtomically(file: string, text: string): void {
  const temporary = `${file}.${process.pid}.tmp`;
  writeFileSync(temporary, text);
  renameSync(temporary, file);
}

/** Writes `<outDir>/latest.md` and `<outDir>/charts/*.svg`; removes charts this run cannot draw. */
export async function writeReport(run: BenchRun, outDir: string): Promise<{ markdownPath: string; chartPaths: string[]; report: RenderedReport }> {
  const report = await renderReport(run);
  const chartsDir = path.join(outDir, 'charts');
  mkdirSync(chartsDir, { recursive: true });
  const chartPaths: string[] = [];
  for (const chart of report.charts) {
    const file = path.join(chartsDir, `${chart.name}.svg`);
    writeAtomically(file, chart.svg);
    chartPaths.push(file);
  }
  // The report owns the files of every chart it knows: one it cannot draw this time is removed, so
  // charts/ never shows a previous run's figures beside this run's tables.
  const drawn = new Set(report.charts.map((chart) => chart.name));
  for (const plan of planCharts(run)) {
    if (!drawn.has(plan.name)) rmSync(path.join(chartsDir, `${plan.name}.svg`), { force: true });
  }
  const markdownPath = path.join(outDir, 'latest.md');
  writeAtomically(markdownPath, report.markdown);
  return { markdownPath, chartPaths, report };
}

/** Parsed command line of the report. */
interface ReportArguments {
  readonly input: string;
  readonly outDir: string;
}

const usage = 'usage: node scripts/dist/report.js [results/latest.json] [--out results]';

function parseArguments(argv: readonly string[]): ReportArguments {
  let input: string | null = null;
  let outDir: string | null = null;
  for (let i = 0; i < argv.length; i++) {
    const argument = argv[i] as string;
    if (argument === '--out') {
      const value = argv[++i];
      if (value === undefined) throw new ResultsError('invalid-run', `--out needs a directory\n${usage}`);
      outDir = path.resolve(value);
    } else if (argument === '--help' || argument === '-h') {
      process.stdout.write(`${usage}\n`);
      process.exit(0);
    } else if (argument.startsWith('--')) {
      throw new ResultsError('invalid-run', `unknown option ${argument}\n${usage}`);
    } else if (input === null) {
      input = path.resolve(argument);
    } else {
      throw new ResultsError('invalid-run', `one input file only, got ${input} and ${argument}\n${usage}`);
    }
  }
  return { input: input ?? path.join(resultsDirectory, 'latest.json'), outDir: outDir ?? resultsDirectory };
}

async function main(): Promise<void> {
  const { input, outDir } = parseArguments(process.argv.slice(2));
  if (!existsSync(input)) throw new ResultsError('invalid-run', `no results at ${input}: run the benchmarks first (pnpm bench), or name a results file`);
  const run = parseRun(readFileSync(input, 'utf8'), input);
  const { markdownPath, chartPaths, report } = await writeReport(run, outDir);
  process.stdout.write(`report: ${markdownPath}\n`);
  for (const chart of chartPaths) process.stdout.write(`chart: ${chart}\n`);
  for (const missing of report.missing) process.stdout.write(`not drawn: ${missing.title} (${missing.reason})\n`);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((error: unknown) => {
    process.stderr.write(`report: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  });
}
