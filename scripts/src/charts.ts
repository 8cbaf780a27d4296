/**
 * The report's charts: vega-lite specs built from a BenchRun's records, compiled to vega and
 * rendered to SVG offline (`renderer: 'none'`, a loader that refuses every load: no network, no
 * canvas). A chart is drawn only when its data exists; otherwise `planCharts` says what is missing.
 * Data is sorted before it enters a spec, so the same run gives the same SVG bytes.
 */
import { type BenchRecord, type BenchRun, knownMetrics, messagesPerEntryMin } from '@raftlab/benchmarks/dist/results.js';
import * as vega from 'vega';
import { type TopLevelSpec, compile } from 'vega-lite';

/** Points drawn per CDF line at most (the distribution itself may hold up to 2000). */
const cdfPointsMax = 200;
/** Bins of an election histogram at most. */
const histogramBinsMax = 30;

/** The order transports appear in, everywhere. */
export const transportOrder: readonly string[] = ['memory', 'tcp', 'ws', 'none'];

/** A chart the report can draw. */
export interface ChartPlan {
  /** File name under charts/, without .svg. */
  readonly name: string;
  readonly title: string;
  /** The vega-lite spec, or why the chart is not drawn. */
  readonly spec: TopLevelSpec | null;
  readonly missing: string | null;
}

/** Sort key of a record: suite, scenario, transport (in transportOrder), nodes, batch, metric. */
export function compareRecords(a: BenchRecord, b: BenchRecord): number {
  return (
    compareText(a.suite, b.suite) ||
    compareText(a.scenario ?? '', b.scenario ?? '') ||
    transportRank(a.transport) - transportRank(b.transport) ||
    a.nodes - b.nodes ||
    a.batch - b.batch ||
    compareText(a.fsync ?? '', b.fsync ?? '') ||
    compareText(a.metric, b.metric) ||
    compareText(a.unit, b.unit) ||
    a.value - b.value
  );
}

/** Plain code-point order (locale-independent, so the output never depends on the machine). */
export function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function transportRank(transport: string): number {
  const rank = transportOrder.indexOf(transport);
  return rank === -1 ? transportOrder.length : rank;
}

/**
 * A series label from the dimensions that vary among `records`: the transport (unless left out),
 * then the suite, scenario, batch and fsync policy when more than one value occurs.
 */
function labeler(records: readonly BenchRecord[], withTransport = true): (record: BenchRecord) => string {
  const varies = (pick: (record: BenchRecord) => string): boolean => new Set(records.map(pick)).size > 1;
  const suite = varies((r) => r.suite);
  const scenario = varies((r) => r.scenario ?? '');
  const batch = varies((r) => String(r.batch));
  const fsync = varies((r) => r.fsync ?? '');
  return (record) => {
    const parts: string[] = withTransport ? [record.transport] : [];
    if (suite) parts.push(record.suite);
    if (scenario && record.scenario !== undefined) parts.push(record.scenario);
    if (batch) parts.push(`B=${record.batch}`);
    if (fsync && record.fsync !== undefined) parts.push(`fsync ${record.fsync}`);
    return parts.join(' ');
  };
}

/** Records of `metric`, in report order, keeping only the most common unit (named in `dropped`). */
function recordsOf(run: BenchRun, metric: string, needDistribution: boolean, keep: (record: BenchRecord) => boolean = () => true): { records: BenchRecord[]; unit: string; dropped: string[] } {
  const all = run.records.filter((r) => r.metric === metric && keep(r) && (!needDistribution || (r.distribution?.length ?? 0) > 0));
  const units = new Map<string, number>();
  for (const record of all) units.set(record.unit, (units.get(record.unit) ?? 0) + 1);
  const ranked = [...units.entries()].sort((a, b) => b[1] - a[1] || compareText(a[0], b[0]));
  const unit = ranked[0]?.[0] ?? '';
  return {
    records: all.filter((r) => r.unit === unit).sort(compareRecords),
    unit,
    dropped: ranked.slice(1).map(([other, count]) => `${count} ${metric} record(s) in ${other} left out of the chart (charted unit: ${unit})`),
  };
}

function distinctSorted(values: readonly number[]): number[] {
  return [...new Set(values)].sort((a, b) => a - b);
}

/** Log scale when every value is positive and they span more than two decades. */
function scaleFor(values: readonly number[]): { type: 'log' | 'linear'; zero?: boolean } {
  if (values.length === 0) return { type: 'linear' };
  const min = Math.min(...values);
  const max = Math.max(...values);
  return min > 0 && max / min > 100 ? { type: 'log' } : { type: 'linear', zero: true };
}

function seriesOrder(records: readonly BenchRecord[], label: (record: BenchRecord) => string): string[] {
  const order: string[] = [];
  for (const record of records) {
    const name = label(record);
    if (!order.includes(name)) order.push(name);
  }
  return order;
}

const schema = 'https://vega.github.io/schema/vega-lite/v6.json';
const baseConfig = { font: 'sans-serif', view: { stroke: '#ddd' }, axis: { labelFontSize: 11, titleFontSize: 12 } };

/** (a) Throughput against cluster size, one line per transport, p25–p75 as a vertical rule. */
function throughputChart(run: BenchRun): ChartPlan {
  const name = 'throughput';
  const title = 'Throughput against cluster size';
  const { metric } = knownMetrics.throughput;
  // The speed-of-light probe is the yardstick of the tables (a ratio per record), not a series:
  // ten times faster than any cluster, it would flatten every other line.
  const { records, unit } = recordsOf(run, metric, false, (r) => r.suite !== 'probe');
  if (records.length === 0) return { name, title, spec: null, missing: `no \`${metric}\` records` };
  const label = labeler(records);
  const values = records.map((r) => ({ series: label(r), nodes: r.nodes, value: r.value, p25: r.spread?.p25 ?? r.value, p75: r.spread?.p75 ?? r.value }));
  const yScale = scaleFor(values.map((v) => v.value));
  const order = seriesOrder(records, label);
  const x = { field: 'nodes', type: 'quantitative', title: 'cluster size (nodes)', scale: { zero: false }, axis: { values: distinctSorted(records.map((r) => r.nodes)), format: 'd' } };
  const color = { field: 'series', type: 'nominal', title: 'transport', sort: order };
  const spec = {
    $schema: schema,
    title,
    width: 480,
    height: 300,
    config: baseConfig,
    data: { values },
    layer: [
      { mark: { type: 'line', point: true }, encoding: { x, y: { field: 'value', type: 'quantitative', title: `${metric} (${unit}), median`, axis: { format: '~s' }, scale: yScale }, color } },
      { mark: { type: 'rule' }, encoding: { x, y: { field: 'p25', type: 'quantitative' }, y2: { field: 'p75' }, color } },
    ],
  };
  return { name, title, spec: spec as unknown as TopLevelSpec, missing: null };
}

/** (b) Commit latency CDFs from each record's distribution, faceted by transport, a line per size. */
function latencyCdfChart(run: BenchRun): ChartPlan {
  const name = 'commit-latency-cdf';
  const title = 'Commit latency CDF';
  const { metric } = knownMetrics.commitLatency;
  const { records, unit } = recordsOf(run, metric, true);
  if (records.length === 0) return { name, title, spec: null, missing: `no \`${metric}\` records with a distribution` };
  const label = labeler(records, false);
  const values: { panel: string; series: string; value: number; fraction: number }[] = [];
  const series: string[] = [];
  const panels: string[] = [];
  for (const record of records) {
    const sorted = [...(record.distribution ?? [])].sort((a, b) => a - b);
    const rest = label(record);
    const line = `${record.nodes} nodes${rest === '' ? '' : ` ${rest}`}`;
    const panel = record.transport;
    if (!series.includes(line)) series.push(line);
    if (!panels.includes(panel)) panels.push(panel);
    const step = Math.max(1, Math.ceil(sorted.length / cdfPointsMax));
    for (let i = 0; i < sorted.length; i += step) values.push({ panel, series: line, value: sorted[i] as number, fraction: (i + 1) / sorted.length });
    const lastIndex = sorted.length - 1;
    if (lastIndex % step !== 0) values.push({ panel, series: line, value: sorted[lastIndex] as number, fraction: 1 });
  }
  const spec = {
    $schema: schema,
    title,
    config: baseConfig,
    data: { values },
    facet: { column: { field: 'panel', type: 'nominal', title: 'transport', sort: panels } },
    spec: {
      width: 260,
      height: 200,
      mark: { type: 'line', interpolate: 'step-after' },
      encoding: {
        x: { field: 'value', type: 'quantitative', title: `${metric} (${unit})`, scale: scaleFor(values.map((v) => v.value)) },
        y: { field: 'fraction', type: 'quantitative', title: 'fraction of entries', scale: { domain: [0, 1] } },
        color: { field: 'series', type: 'nominal', title: 'cluster', sort: series },
      },
    },
  };
  return { name, title, spec: spec as unknown as TopLevelSpec, missing: null };
}

/** (c) Election convergence histograms, one panel per transport (row) and cluster size (column). */
function electionHistogram(run: BenchRun, which: 'electionTicks' | 'electionMs'): ChartPlan {
  const { metric } = knownMetrics[which];
  const name = metric === knownMetrics.electionTicks.metric ? 'election-ticks' : 'election-ms';
  const title = which === 'electionTicks' ? 'Election convergence: ticks to first leader' : 'Election convergence: ms to first leader';
  const { records, unit } = recordsOf(run, metric, true);
  if (records.length === 0) return { name, title, spec: null, missing: `no \`${metric}\` records with a distribution` };
  const label = labeler(records);
  const rows = seriesOrder(records, label);
  const values: { row: string; nodes: number; value: number }[] = [];
  for (const record of records) {
    const row = label(record);
    for (const value of [...(record.distribution ?? [])].sort((a, b) => a - b)) values.push({ row, nodes: record.nodes, value });
  }
  const spec = {
    $schema: schema,
    title,
    config: baseConfig,
    data: { values },
    facet: {
      row: { field: 'row', type: 'nominal', title: null, sort: rows },
      column: { field: 'nodes', type: 'ordinal', title: 'cluster size (nodes)', sort: distinctSorted(records.map((r) => r.nodes)) },
    },
    spec: {
      width: 180,
      height: 110,
      mark: { type: 'bar', tooltip: false },
      encoding: {
        x: { field: 'value', type: 'quantitative', bin: { maxbins: histogramBinsMax }, title: `${metric} (${unit})` },
        y: { aggregate: 'count', type: 'quantitative', title: 'trials' },
      },
    },
  };
  return { name, title, spec: spec as unknown as TopLevelSpec, missing: null };
}

/** (d) Messages per committed entry against cluster size, beside the minimum 2(N-1)/B. */
function messagesChart(run: BenchRun): ChartPlan {
  const name = 'messages-per-entry';
  const title = 'Messages per committed entry against the minimum 2(N−1)/B';
  const { metric } = knownMetrics.messagesPerEntry;
  const { records, unit } = recordsOf(run, metric, false);
  if (records.length === 0) return { name, title, spec: null, missing: `no \`${metric}\` records` };
  const label = labeler(records);
  const values: { series: string; kind: string; nodes: number; value: number }[] = records.map((r) => ({ series: label(r), kind: 'measured', nodes: r.nodes, value: r.value }));
  const sizes = distinctSorted(records.map((r) => r.nodes));
  const batches = distinctSorted(records.map((r) => r.batch));
  for (const batch of batches) {
    for (const nodes of sizes) {
      values.push({ series: `minimum 2(N−1)/B, B=${batch}`, kind: 'minimum', nodes, value: messagesPerEntryMin(nodes, batch) });
    }
  }
  const order = [...seriesOrder(records, label), ...batches.map((b) => `minimum 2(N−1)/B, B=${b}`)];
  const spec = {
    $schema: schema,
    title,
    width: 480,
    height: 300,
    config: baseConfig,
    data: { values },
    mark: { type: 'line', point: true },
    encoding: {
      x: { field: 'nodes', type: 'quantitative', title: 'cluster size (nodes)', scale: { zero: false }, axis: { values: sizes, format: 'd' } },
      y: { field: 'value', type: 'quantitative', title: `${metric} (${unit})`, scale: scaleFor(values.map((v) => v.value)) },
      color: { field: 'series', type: 'nominal', title: null, sort: order, legend: { labelLimit: 320 } },
      strokeDash: { field: 'kind', type: 'nominal', title: null, sort: ['measured', 'minimum'], legend: null },
    },
  };
  return { name, title, spec: spec as unknown as TopLevelSpec, missing: null };
}

/** Every chart the report knows, with its spec or the reason it is not drawn, in a fixed order. */
export function planCharts(run: BenchRun): ChartPlan[] {
  return [throughputChart(run), latencyCdfChart(run), electionHistogram(run, 'electionTicks'), electionHistogram(run, 'electionMs'), messagesChart(run)];
}

/** Notes about records left out of charts (mixed units), for the report. */
export function chartNotes(run: BenchRun): string[] {
  const notes: string[] = [];
  notes.push(...recordsOf(run, knownMetrics.throughput.metric, false).dropped);
  notes.push(...recordsOf(run, knownMetrics.commitLatency.metric, true).dropped);
  notes.push(...recordsOf(run, knownMetrics.electionTicks.metric, true).dropped);
  notes.push(...recordsOf(run, knownMetrics.electionMs.metric, true).dropped);
  notes.push(...recordsOf(run, knownMetrics.messagesPerEntry.metric, false).dropped);
  return notes;
}

/** A vega loader that refuses every load: charts carry their data inline, and the report never touches the network. */
const offlineLoader: vega.Loader = {
  load: (uri) => Promise.reject(new Error(`chart tried to load ${uri}: the report renders offline`)),
  sanitize: (uri) => Promise.reject(new Error(`chart tried to load ${uri}: the report renders offline`)),
  http: (uri) => Promise.reject(new Error(`chart tried to fetch ${uri}: the report renders offline`)),
  file: (file) => Promise.reject(new Error(`chart tried to read ${file}: the report renders offline`)),
};

/** Renders a vega-lite spec to SVG text, offline. */
export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const compiled = compile(spec).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: 'none', loader: offlineLoader });
  try {
    const svg = await view.toSVG();
    return svg.endsWith('\n') ? svg : `${svg}\n`;
  } finally {
    view.finalize();
  }
}
