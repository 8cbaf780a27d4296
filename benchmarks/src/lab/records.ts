/**
 * Record builders of the bench lab: samples in, BenchRecords out (results.ts schema). Pure, so the
 * tests can check the shapes the report and the charts rely on: a distribution figure becomes one
 * record for its median (with spread and the downsampled distribution, which the CDF and histogram
 * charts draw) plus one exact-quantile record each for p90/p99/max (the tables' tail columns).
 */
import type { PeerResult } from '../peers.js';
import {
  type BenchRecord,
  type BenchTransport,
  downsample,
  knownMetrics,
  messagesPerEntryMin,
  quantileOfSorted,
  referenceFor,
  summarize,
} from '../results.js';

/** Where a record sits: everything but the metric and its numbers. */
export interface RecordPlace {
  readonly suite: string;
  readonly scenario?: string;
  readonly transport: BenchTransport;
  readonly nodes: number;
  readonly batch: number;
  readonly seeds?: readonly number[];
  readonly note?: string;
}

/** Tail quantiles recorded beside a distribution's median. */
export type TailQuantile = 'p90' | 'p99' | 'max';

const tailLevels: Readonly<Record<TailQuantile, number>> = { p90: 0.9, p99: 0.99, max: 1 };

function placed(place: RecordPlace): Omit<BenchRecord, 'metric' | 'unit' | 'value' | 'samples' | 'spread'> {
  return {
    suite: place.suite,
    ...(place.scenario === undefined ? {} : { scenario: place.scenario }),
    transport: place.transport,
    nodes: place.nodes,
    batch: place.batch,
    ...(place.seeds === undefined ? {} : { seeds: [...place.seeds] }),
    ...(place.note === undefined ? {} : { note: place.note }),
  };
}

/**
 * A distribution: the median record (spread, downsampled distribution) named `metric`, then
 * `<metric>-p90` etc. for each tail asked for, each an exact figure over all samples.
 */
export function distributionRecords(place: RecordPlace, metric: string, unit: string, samples: readonly number[], tails: readonly TailQuantile[]): BenchRecord[] {
  const summary = summarize(samples);
  const sorted = [...samples].sort((a, b) => a - b);
  const records: BenchRecord[] = [{ ...placed(place), metric, unit, ...summary, distribution: downsample(samples) }];
  for (const tail of tails) {
    const { seeds: _seeds, note: _note, ...bare } = placed(place);
    records.push({ ...bare, metric: `${metric}-${tail}`, unit, value: quantileOfSorted(sorted, tailLevels[tail]), samples: sorted.length, spread: null });
  }
  return records;
}

/** One exact figure (a count, a share, a deterministic protocol figure). */
export function exactRecord(place: RecordPlace, metric: string, unit: string, value: number, samples = 1): BenchRecord {
  return { ...placed(place), metric, unit, value, samples, spread: null };
}

/** A figure measured several times: median with spread, optionally compared with an in-run reference. */
export function summaryRecord(
  place: RecordPlace,
  metric: string,
  unit: string,
  samples: readonly number[],
  reference?: { readonly name: string; readonly value: number; readonly unit: string },
): BenchRecord {
  const summary = summarize(samples);
  return {
    ...placed(place),
    metric,
    unit,
    ...summary,
    ...(reference === undefined ? {} : { reference: referenceFor(summary.value, reference.name, reference.value, reference.unit) }),
  };
}

/** Election trials: how many ticks (or ms) each took, and whether it was decided in one round. */
export interface ElectionTrials {
  readonly values: readonly number[];
  /** Per trial: the winner's term was exactly one above the term before the election. */
  readonly oneRound: readonly boolean[];
}

/** Election records: median with distribution, p99 and max, and the share decided in one round. */
export function electionRecords(place: RecordPlace, unit: 'ticks' | 'ms', trials: ElectionTrials): BenchRecord[] {
  if (trials.values.length !== trials.oneRound.length) throw new RangeError(`${trials.values.length} election values but ${trials.oneRound.length} round flags`);
  const metric = unit === 'ticks' ? knownMetrics.electionTicks.metric : knownMetrics.electionMs.metric;
  const oneRound = trials.oneRound.filter(Boolean).length;
  const { seeds: _seeds, note: _note, ...bare } = place;
  return [
    ...distributionRecords(place, metric, unit, trials.values, ['p99', 'max']),
    exactRecord(bare, `${knownMetrics.electionOneRound.metric}-${unit}`, 'share', oneRound / trials.oneRound.length, trials.oneRound.length),
  ];
}

/** Traffic of a load phase, summed over the nodes. */
export interface TrafficFigures {
  readonly messages: number;
  readonly bytes: number;
  readonly entriesCommitted: number;
}

/** Messages and bytes per committed entry, with the minimum 2(N-1)/B beside the messages. */
export function trafficRecords(place: RecordPlace, traffic: TrafficFigures): BenchRecord[] {
  if (!(traffic.entriesCommitted > 0)) throw new RangeError(`traffic over ${traffic.entriesCommitted} committed entries`);
  return [
    exactRecord(place, knownMetrics.messagesPerEntry.metric, knownMetrics.messagesPerEntry.unit, traffic.messages / traffic.entriesCommitted),
    exactRecord(place, 'messages-per-entry-min', knownMetrics.messagesPerEntry.unit, messagesPerEntryMin(place.nodes, place.batch)),
    exactRecord(place, knownMetrics.bytesPerEntry.metric, knownMetrics.bytesPerEntry.unit, traffic.bytes / traffic.entriesCommitted),
  ];
}

/** What the peers step gives the report: figures of the peers that ran, and why others did not. */
export interface PeerOutcome {
  readonly records: BenchRecord[];
  readonly notes: string[];
}

/**
 * Peer throughput records (suite `peers`, scenario `<peer> <variant>`), each with raftlab's core
 * 3-node figure of the same run as reference (ratio = peer / raftlab), and a note per skipped peer
 * plus one line of raftlab-to-peer ratios for the run's notes.
 */
export function peerRecords(results: readonly PeerResult[], raftlabEntriesPerSecond: number | null): PeerOutcome {
  const records: BenchRecord[] = [];
  const notes: string[] = [];
  const ratios: string[] = [];
  for (const result of results) {
    const name = `${result.peer} ${result.variant}`;
    if (result.status !== 'ok' || result.entriesPerSecond.length === 0) {
      notes.push(`peer ${name} skipped: ${result.reason ?? 'no figures'}`);
      continue;
    }
    const place: RecordPlace = { suite: 'peers', scenario: name, transport: 'none', nodes: result.nodes, batch: result.batch };
    const reference = raftlabEntriesPerSecond === null ? undefined : { name: 'raftlab core, 3 nodes', value: raftlabEntriesPerSecond, unit: 'entries/s' };
    const record = summaryRecord(place, knownMetrics.throughput.metric, knownMetrics.throughput.unit, result.entriesPerSecond, reference);
    records.push(record);
    if (raftlabEntriesPerSecond !== null) {
      const ratio = raftlabEntriesPerSecond / record.value;
      ratios.push(`${ratio >= 100 ? String(Math.round(ratio)) : ratio.toPrecision(3)}× ${name}`);
    }
  }
  if (ratios.length > 0) notes.push(`raftlab core (3 nodes, batches of 1000) runs at ${ratios.join(', ')} (same machine, same run)`);
  return { records, notes };
}
