/**
 * Prometheus metrics of one KV server, in a Registry of its own (never prom-client's global one), so
 * several servers in one process (tests, the console) do not clash. Raft and storage figures are read
 * from the runtime when scraped; HTTP figures are recorded per request.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { KvMachine } from './machine.js';
import type { KvRuntime } from './service.js';

/** What the metrics read from a transport, when it reports statistics. */
export interface TransportByteStats {
  readonly bytesSent: number;
  readonly bytesReceived: number;
  readonly messagesSent: number;
  readonly messagesReceived: number;
  readonly messagesDropped: number;
  readonly connectionsOpen: number;
}

/** Upper bounds of the request latency histogram, in seconds (100 µs to 5 s). */
export const requestDurationBucketsSeconds: readonly number[] = [
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
];

/** A counter whose value is read from a source at scrape time (prom-client counters only increase). */
function sourcedCounter(registry: Registry, name: string, help: string, read: () => number | undefined): Counter {
  return new Counter({
    name,
    help,
    registers: [registry],
    collect(this: Counter) {
      const value = read();
      this.reset();
      if (value !== undefined) this.inc(value);
    },
  });
}

function sourcedGauge(registry: Registry, name: string, help: string, read: () => number | undefined): Gauge {
  return new Gauge({
    name,
    help,
    registers: [registry],
    collect(this: Gauge) {
      const value = read();
      if (value !== undefined) this.set(value);
    },
  });
}

/** Label combinations whose metric children are kept (routes x methods x codes seen in practice). */
const observersMax = 1024;

/** The metrics of one KV server. */
export class KvMetrics {
  /** This server's registry; `GET /metrics` serializes it. */
  readonly registry = new Registry();
  private readonly requestDuration: Histogram<'route' | 'method'>;
  private readonly requests: Counter<'route' | 'method' | 'code'>;
  /** Requests this server forwarded to the leader. */
  readonly forwarded: Counter;
  /** Requests being served now: the server counts, the gauge reads it when scraped (no per-request call). */
  inFlightCount = 0;
  /**
   * Labelled children by "route method code": prom-client hashes a label object on every call, a cost
   * paid per request; the handful of label combinations are looked up once.
   */
  private readonly observers = new Map<string, { readonly duration: { observe(seconds: number): void }; readonly count: { inc(): void } }>();

  constructor(runtime: KvRuntime, machine: KvMachine, transportStats: (() => TransportByteStats) | null) {
    const registry = this.registry;
    const node = runtime.node;
    const counters = runtime.counters;
    sourcedGauge(registry, 'raftlab_term', 'Current Raft term', () => node.term);
    sourcedGauge(registry, 'raftlab_commit_index', 'Highest log index known committed', () => node.commitIndex);
    sourcedGauge(registry, 'raftlab_applied_index', 'Highest log index applied to the state machine', () => node.appliedIndex);
    sourcedGauge(registry, 'raftlab_last_index', 'Last log index', () => node.lastIndex);
    sourcedGauge(registry, 'raftlab_is_leader', '1 when this node is the leader', () => (node.role === 'leader' ? 1 : 0));
    sourcedGauge(registry, 'raftlab_leader_id', 'The leader this node knows of (0: none)', () => node.leaderId);
    sourcedCounter(registry, 'raftlab_proposals_total', 'Commands proposed through this node', () => counters.proposals);
    sourcedCounter(registry, 'raftlab_proposals_failed_total', 'Proposals that failed (not leader, timeout, dropped...)', () => counters.proposalsFailed);
    sourcedCounter(registry, 'raftlab_reads_total', 'Reads served through the runtime', () => counters.reads);
    sourcedCounter(registry, 'raftlab_elections_total', 'Times this node became leader', () => counters.elections);
    sourcedCounter(registry, 'raftlab_entries_applied_total', 'Log entries applied', () => counters.entriesApplied);
    sourcedCounter(registry, 'raftlab_raft_messages_sent_total', 'Raft messages sent', () => counters.messagesSent);
    sourcedCounter(registry, 'raftlab_ready_cycles_total', 'Ready cycles run', () => counters.readyCycles);
    sourcedCounter(registry, 'raftlab_storage_fsyncs_total', 'Data fsyncs by storage', () => runtime.storage.stats().syncCount);
    sourcedCounter(registry, 'raftlab_storage_fsync_seconds_total', 'Time spent in data fsyncs by storage', () => runtime.storage.stats().syncMsTotal / 1000);
    sourcedCounter(registry, 'raftlab_storage_bytes_written_total', 'Log bytes written by storage', () => runtime.storage.stats().bytesWritten);
    if (transportStats !== null) {
      sourcedCounter(registry, 'raftlab_transport_bytes_sent_total', 'Frame bytes handed to the transport sockets', () => transportStats().bytesSent);
      sourcedCounter(registry, 'raftlab_transport_bytes_received_total', 'Frame bytes received by the transport', () => transportStats().bytesReceived);
      sourcedCounter(registry, 'raftlab_transport_messages_dropped_total', 'Messages the transport dropped', () => transportStats().messagesDropped);
      sourcedGauge(registry, 'raftlab_transport_connections_open', 'Authenticated transport connections open', () => transportStats().connectionsOpen);
    }
    sourcedGauge(registry, 'raftlab_kv_keys', 'Keys stored', () => machine.stats().keyCount);
    sourcedGauge(registry, 'raftlab_kv_data_bytes', 'Key and value bytes stored', () => machine.stats().dataBytes);
    sourcedGauge(registry, 'raftlab_kv_sessions', 'Client sessions held by the state machine', () => machine.stats().sessionCount);
    this.requestDuration = new Histogram({
      name: 'raftlab_http_request_duration_seconds',
      help: 'HTTP request latency, from the request to the end of the response',
      labelNames: ['route', 'method'],
      buckets: [...requestDurationBucketsSeconds],
      registers: [registry],
    });
    this.requests = new Counter({ name: 'raftlab_http_requests_total', help: 'HTTP requests by route, method and error code (ok: none)', labelNames: ['route', 'method', 'code'], registers: [registry] });
    this.forwarded = new Counter({ name: 'raftlab_http_forwarded_total', help: 'Requests forwarded to the leader', registers: [registry] });
    sourcedGauge(registry, 'raftlab_http_requests_in_flight', 'HTTP requests being served', () => this.inFlightCount);
  }

  /** Records one finished request. */
  observe(route: string, method: string, code: string, seconds: number): void {
    const key = `${route} ${method} ${code}`;
    let observer = this.observers.get(key);
    if (observer === undefined) {
      observer = { duration: this.requestDuration.labels(route, method), count: this.requests.labels(route, method, code) };
      // Methods and codes come from requests: bound the table so odd methods cannot grow it.
      if (this.observers.size < observersMax) this.observers.set(key, observer);
    }
    observer.duration.observe(seconds);
    observer.count.inc();
  }
}
