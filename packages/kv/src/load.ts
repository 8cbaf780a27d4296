/**
 * HTTP load generation with autocannon, for `raftlab kv bench` and bench:http. Autocannon's own
 * latency histogram records whole milliseconds, too coarse for sub-millisecond requests, so each
 * response's time (fractional milliseconds from process.hrtime) is taken from its `response` event
 * and kept in microseconds; the percentiles are computed from every sample.
 */
import autocannon from 'autocannon';

/** Options of one load run. */
export interface LoadOptions {
  /** Full URL of the request. */
  readonly url: string;
  readonly method: 'GET' | 'PUT' | 'POST' | 'DELETE';
  readonly body?: string;
  readonly headers?: Readonly<Record<string, string>>;
  /** Concurrent connections, each with one request in flight. */
  readonly connections: number;
  readonly durationSeconds: number;
  /** Per-request timeout in seconds (default 10). */
  readonly timeoutSeconds?: number;
}

/** Latency percentiles in microseconds. */
export interface LatencyMicros {
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly p999: number;
  readonly max: number;
  readonly mean: number;
}

/** What a load run measured. */
export interface LoadResult {
  /** 2xx responses. */
  readonly ok: number;
  /** Responses with another status. */
  readonly non2xx: number;
  /** Connection errors and timeouts. */
  readonly errors: number;
  readonly timeouts: number;
  /** Measured duration in seconds. */
  readonly durationSeconds: number;
  /** 2xx responses per second. */
  readonly throughputPerSecond: number;
  /** Latency of the 2xx responses. */
  readonly latencyMicros: LatencyMicros;
  /** Every 2xx latency sample in microseconds, ascending. */
  readonly samplesMicros: Float64Array;
}

/** The q-quantile of ascending samples (nearest rank). */
export function quantile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[rank] as number;
}

/** Runs autocannon once; resolves when it finishes. */
export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  let samples = new Float64Array(1 << 16);
  let count = 0;
  let finish: (error: Error | null, result: autocannon.Result) => void = () => undefined;
  const finished = new Promise<autocannon.Result>((resolve, reject) => {
    finish = (error, result) => (error === null || error === undefined ? resolve(result) : reject(error));
  });
  const instance = autocannon({
    url: options.url,
    method: options.method,
    connections: options.connections,
    duration: options.durationSeconds,
    timeout: options.timeoutSeconds ?? 10,
    ...(options.body === undefined ? {} : { body: options.body }),
    headers: { ...(options.headers ?? {}) },
  }, (error, result) => finish(error as Error | null, result));
  // The event carries (client, statusCode, bytes, responseTime in fractional ms); the typings omit the client.
  (instance as unknown as NodeJS.EventEmitter).on('response', (_client: unknown, statusCode: number, _bytes: number, responseTimeMs: number) => {
    if (statusCode < 200 || statusCode >= 300) return;
    if (count === samples.length) {
      const grown = new Float64Array(samples.length * 2);
      grown.set(samples);
      samples = grown;
    }
    samples[count++] = responseTimeMs * 1000;
  });
  const result = await finished;
  const sorted = samples.slice(0, count).sort();
  let sum = 0;
  for (let i = 0; i < sorted.length; i++) sum += sorted[i] as number;
  return {
    ok: result['2xx'],
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    durationSeconds: result.duration,
    throughputPerSecond: result['2xx'] / result.duration,
    latencyMicros: {
      p50: quantile(sorted, 0.5),
      p90: quantile(sorted, 0.9),
      p99: quantile(sorted, 0.99),
      p999: quantile(sorted, 0.999),
      max: sorted.length === 0 ? Number.NaN : (sorted[sorted.length - 1] as number),
      mean: sorted.length === 0 ? Number.NaN : sum / sorted.length,
    },
    samplesMicros: sorted,
  };
}
