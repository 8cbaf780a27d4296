/**
 * KvClient: the client library of the KV service. It finds the leader (GET /v1/status on the
 * endpoints it was given, following 307 redirects and leader hints), retries with exponential
 * backoff and jitter across endpoints until a per-operation deadline, bounds every attempt with a
 * timeout, and stamps every write with its session (thesis §6.3) so that retries apply once.
 *
 * Sessions. The client registers once (POST /v1/session) and numbers its writes from 1. Each attempt
 * carries (clientId, sequence, lowestPendingSequence), where the last is the lowest sequence still
 * awaiting a response: the server caches each write's result until the client acknowledges it that
 * way, so a retry of a write that was applied gets the original result instead of applying again.
 * A write is admitted only while its sequence stays within `sessionWindowCount` of the lowest one in
 * flight, which keeps the server's per-session cache from ever being full (the window must not exceed
 * the machine's sessionResponsesCountMax, 16 by default).
 *
 * Outcomes. Reads return the value (null: absent). A failed cas is a result (`{ ok: false, actual }`),
 * not an error. An operation that cannot complete by its deadline throws KvClientError; for a write,
 * `indeterminate` says whether it may have been applied (some attempt reached a server and got no
 * definite answer).
 */
import http from 'node:http';
import {
  type CasResponse,
  type DeleteResponse,
  type ErrorBody,
  type GetResponse,
  type KvApiErrorCode,
  type PutResponse,
  type SessionResponse,
  type StatusResponse,
  clientIdHeader,
  lowestPendingHeader,
  sequenceHeader,
} from './api.js';

/** Read consistency a client may ask for. */
export type ClientReadConsistency = 'linearizable' | 'lease' | 'stale';

/** Options of a KvClient. */
export interface KvClientOptions {
  /** Base URLs of the nodes' HTTP servers (`http://127.0.0.1:8081`); at least one. */
  readonly endpoints: readonly string[];
  /** Deadline of one attempt (default 3000 ms). */
  readonly attemptTimeoutMs?: number;
  /** Deadline of a whole operation, retries included (default 10,000 ms). */
  readonly operationTimeoutMs?: number;
  /** First retry delay (default 25 ms); it doubles per retry, with jitter. */
  readonly backoffMsMin?: number;
  /** Largest retry delay (default 1000 ms). */
  readonly backoffMsMax?: number;
  /** Most writes in flight within one sequence span (default 16; at most the machine's sessionResponsesCountMax). */
  readonly sessionWindowCount?: number;
  /**
   * Find and use the leader (default true). False: send everything to the endpoints in the given
   * order and let followers forward (tests use it to read from a chosen node).
   */
  readonly discoverLeader?: boolean;
  /** Default read consistency (default linearizable). */
  readonly consistency?: ClientReadConsistency;
  /** Sockets per endpoint (default 64). */
  readonly socketsMax?: number;
}

/** Codes of KvClientError: the server's error codes, plus the client's own. */
export type KvClientErrorCode = KvApiErrorCode | 'timeout' | 'unreachable' | 'bad-response' | 'closed';

/** An operation that failed. */
export class KvClientError extends Error {
  constructor(
    readonly code: KvClientErrorCode,
    message: string,
    /** For a write: true when it may have been applied (retries ran out after an unclear attempt). */
    readonly indeterminate: boolean,
    /** The HTTP status of the last answer, 0 when none came. */
    readonly status: number = 0,
  ) {
    super(message);
    this.name = 'KvClientError';
  }
}

/** Result of KvClient.cas. */
export type CasResult = { readonly ok: true; readonly index: number } | { readonly ok: false; readonly actual: string | null };

/** One HTTP answer. */
interface Answer {
  readonly status: number;
  readonly body: unknown;
  readonly location: string | undefined;
}

/** Codes after which the same request may succeed elsewhere or later. */
const retryableCodes: ReadonlySet<string> = new Set<KvClientErrorCode>(['no-quorum', 'busy', 'shutting-down', 'session-window-full', 'not-leader']);

/** Redirects followed within one attempt. */
const redirectsMax = 4;

interface Request {
  readonly method: 'GET' | 'PUT' | 'POST' | 'DELETE';
  readonly path: string;
  readonly body: string | null;
  readonly contentType: string | null;
  /** True for writes: an unclear attempt makes the outcome indeterminate. */
  readonly write: boolean;
  /** Called before each attempt for the session headers (fresh lowestPendingSequence each time). */
  readonly headers?: () => http.OutgoingHttpHeaders;
}

/** The client (see the file comment). */
export class KvClient {
  private readonly endpoints: readonly string[];
  private readonly agent: http.Agent;
  private readonly attemptTimeoutMs: number;
  private readonly operationTimeoutMs: number;
  private readonly backoffMsMin: number;
  private readonly backoffMsMax: number;
  private readonly windowCount: number;
  private readonly discoverLeader: boolean;
  private readonly consistency: ClientReadConsistency;
  /** The endpoint requests go to now: the leader when known. */
  private target: string;
  private rotation = 0;
  private leaderKnown = false;
  private clientId = 0;
  private registration: Promise<number> | null = null;
  private nextSequence = 1;
  /** Sequences of writes awaiting a response. */
  private readonly inFlight = new Set<number>();
  private readonly windowWaiters: (() => void)[] = [];
  private closed = false;

  constructor(options: KvClientOptions) {
    if (options.endpoints.length === 0) throw new RangeError('KvClient: at least one endpoint is needed');
    this.endpoints = options.endpoints.map((endpoint) => originOf(endpoint));
    this.attemptTimeoutMs = options.attemptTimeoutMs ?? 3000;
    this.operationTimeoutMs = options.operationTimeoutMs ?? 10_000;
    this.backoffMsMin = options.backoffMsMin ?? 25;
    this.backoffMsMax = options.backoffMsMax ?? 1000;
    this.windowCount = options.sessionWindowCount ?? 16;
    if (!(Number.isSafeInteger(this.windowCount) && this.windowCount >= 1)) throw new RangeError(`KvClient: sessionWindowCount ${this.windowCount} is not an integer >= 1`);
    this.discoverLeader = options.discoverLeader ?? true;
    this.consistency = options.consistency ?? 'linearizable';
    this.agent = new http.Agent({ keepAlive: true, maxSockets: options.socketsMax ?? 64 });
    this.target = this.endpoints[0] as string;
  }

  /** The session's client id (0 before the first write). */
  get sessionId(): number {
    return this.clientId;
  }

  /** The value of `key`, or null when absent. */
  async get(key: string, options: { readonly consistency?: ClientReadConsistency } = {}): Promise<string | null> {
    const consistency = options.consistency ?? this.consistency;
    const query = consistency === 'linearizable' ? '' : `?consistency=${consistency}`;
    const answer = await this.run({ method: 'GET', path: `/v1/kv/${encodeURIComponent(key)}${query}`, body: null, contentType: null, write: false }, ['key-not-found']);
    if (answer.status === 404) return null;
    return (answer.body as GetResponse).value;
  }

  /** Sets `key` to `value`; resolves with the value replaced (null: none) and the entry's log index. */
  async put(key: string, value: string): Promise<{ readonly previous: string | null; readonly index: number }> {
    const body = (await this.write('PUT', `/v1/kv/${encodeURIComponent(key)}`, value, 'text/plain; charset=utf-8', [])).body as PutResponse;
    return { previous: body.previous, index: body.index };
  }

  /** Deletes `key`; resolves with whether it existed. */
  async delete(key: string): Promise<{ readonly existed: boolean; readonly index: number }> {
    const body = (await this.write('DELETE', `/v1/kv/${encodeURIComponent(key)}`, null, null, [])).body as DeleteResponse;
    return { existed: body.existed, index: body.index };
  }

  /** Sets `key` to `value` if it holds `expected` (null: if it is absent). */
  async cas(key: string, expected: string | null, value: string): Promise<CasResult> {
    const answer = await this.write('POST', `/v1/kv/${encodeURIComponent(key)}/cas`, JSON.stringify({ expected, value }), 'application/json', ['cas-failed']);
    if (answer.status === 409) return { ok: false, actual: (answer.body as ErrorBody).error.actual ?? null };
    return { ok: true, index: (answer.body as CasResponse).index };
  }

  /** The status of one endpoint (default: the current target). */
  async status(endpoint: string = this.target): Promise<StatusResponse> {
    const answer = await this.attempt(originOf(endpoint), { method: 'GET', path: '/v1/status', body: null, contentType: null, write: false }, this.attemptTimeoutMs);
    if (answer.kind !== 'answer' || answer.answer.status !== 200) throw new KvClientError(answer.kind === 'answer' ? 'bad-response' : 'unreachable', `status of ${endpoint}: ${describeFailure(answer)}`, false);
    return answer.answer.body as StatusResponse;
  }

  /** Closes the client's connections; later calls fail with `closed`. */
  close(): void {
    this.closed = true;
    this.agent.destroy();
    for (const waiter of this.windowWaiters.splice(0)) waiter();
  }

  // ---------------------------------------------------------------------------------------------
  // Writes and sessions.

  private async write(method: 'PUT' | 'POST' | 'DELETE', path: string, body: string | null, contentType: string | null, accepted: readonly KvApiErrorCode[]): Promise<Answer> {
    const deadline = performance.now() + this.operationTimeoutMs;
    let clientId = await this.session(deadline);
    const sequence = await this.admit(deadline);
    try {
      for (;;) {
        const stamp = clientId;
        try {
          return await this.run(
            {
              method,
              path,
              body,
              contentType,
              write: true,
              headers: () => ({ [clientIdHeader]: String(stamp), [sequenceHeader]: String(sequence), [lowestPendingHeader]: String(this.lowestPending(sequence)) }),
            },
            accepted,
            deadline,
          );
        } catch (error) {
          // The session is gone (evicted or expired): a write refused this way was not applied, but an
          // earlier attempt may have been, and the new session cannot tell. Only a clean refusal retries.
          if (!(error instanceof KvClientError) || error.code !== 'unknown-session' || error.indeterminate) throw error;
          if (this.clientId === stamp) this.clientId = 0;
          clientId = await this.session(deadline);
        }
      }
    } finally {
      this.release(sequence);
    }
  }

  private lowestPending(sequence: number): number {
    let lowest = sequence;
    for (const pending of this.inFlight) if (pending < lowest) lowest = pending;
    return lowest;
  }

  /** Waits until `nextSequence` fits the window, then takes it. */
  private async admit(deadline: number): Promise<number> {
    for (;;) {
      if (this.closed) throw new KvClientError('closed', 'the client is closed', false);
      const sequence = this.nextSequence;
      if (sequence - this.lowestPending(sequence) + 1 <= this.windowCount) {
        this.nextSequence += 1;
        this.inFlight.add(sequence);
        return sequence;
      }
      const remaining = deadline - performance.now();
      if (remaining <= 0) throw new KvClientError('timeout', `no room in the session window (${this.windowCount} writes) before the deadline`, false);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, remaining);
        this.windowWaiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  private release(sequence: number): void {
    this.inFlight.delete(sequence);
    for (const waiter of this.windowWaiters.splice(0)) waiter();
  }

  private async session(deadline: number): Promise<number> {
    if (this.clientId !== 0) return this.clientId;
    if (this.registration === null) {
      this.registration = this.run({ method: 'POST', path: '/v1/session', body: null, contentType: null, write: false }, [], deadline).then(
        (answer) => {
          this.registration = null;
          this.clientId = (answer.body as SessionResponse).clientId;
          return this.clientId;
        },
        (error: unknown) => {
          this.registration = null;
          throw error;
        },
      );
    }
    return this.registration;
  }

  // ---------------------------------------------------------------------------------------------
  // Attempts, retries, leader discovery.

  /**
   * Runs a request until a definite answer or the deadline. A 2xx answer, or an error whose code is
   * in `accepted`, is returned; other definite errors throw at once; unclear ones are retried.
   */
  private async run(request: Request, accepted: readonly KvApiErrorCode[], deadline = performance.now() + this.operationTimeoutMs): Promise<Answer> {
    let retries = 0;
    let maybeApplied = false;
    let lastFailure = 'no attempt made';
    let lastCode: KvClientErrorCode = 'timeout';
    let lastStatus = 0;
    for (;;) {
      if (this.closed) throw new KvClientError('closed', 'the client is closed', maybeApplied);
      const remaining = deadline - performance.now();
      if (remaining <= 0) {
        throw new KvClientError(lastCode, `${request.method} ${request.path} did not complete in ${this.operationTimeoutMs} ms (last: ${lastFailure})`, maybeApplied, lastStatus);
      }
      if (this.discoverLeader && !this.leaderKnown && (request.write || !request.path.includes('consistency=stale'))) {
        const failure = await this.findLeader(Math.min(remaining, this.attemptTimeoutMs));
        if (failure !== null) {
          lastFailure = failure;
          lastCode = 'unreachable';
        }
        if (deadline - performance.now() <= 0) continue;
      }
      let target = this.target;
      let outcome = await this.attempt(target, request, Math.min(remaining, this.attemptTimeoutMs));
      for (let hops = 0; outcome.kind === 'answer' && outcome.answer.status === 307 && outcome.answer.location !== undefined && hops < redirectsMax; hops++) {
        target = originOf(outcome.answer.location);
        this.useLeader(target);
        outcome = await this.attempt(target, request, Math.min(Math.max(1, deadline - performance.now()), this.attemptTimeoutMs));
      }
      if (outcome.kind === 'answer') {
        const { status, body } = outcome.answer;
        if (status >= 200 && status < 300) return outcome.answer;
        const code = errorCodeOf(body);
        if (code !== null && accepted.includes(code)) return outcome.answer;
        lastStatus = status;
        lastFailure = `${status} ${code ?? 'without an error code'}: ${errorMessageOf(body)}`;
        if (code === null || !retryableCodes.has(code)) {
          throw new KvClientError(code ?? 'bad-response', `${request.method} ${request.path}: ${lastFailure}`, maybeApplied, status);
        }
        lastCode = code;
        // no-quorum on a write: it may have been proposed and may still commit.
        if (request.write && code === 'no-quorum') maybeApplied = true;
        this.onUnavailable(target, body);
      } else {
        lastFailure = `${target}: ${outcome.reason}`;
        lastCode = outcome.kind === 'timeout' ? 'timeout' : 'unreachable';
        lastStatus = 0;
        // A request that may have reached the server: its effect is unknown.
        if (request.write && outcome.sent) maybeApplied = true;
        this.onUnavailable(target, null);
      }
      retries += 1;
      const backoff = Math.min(this.backoffMsMax, this.backoffMsMin * 2 ** Math.min(retries - 1, 16));
      const delay = backoff / 2 + Math.random() * (backoff / 2);
      await sleep(Math.min(delay, Math.max(0, deadline - performance.now())));
    }
  }

  private useLeader(url: string): void {
    this.target = url;
    this.leaderKnown = true;
  }

  /** The target failed or knows no leader: use its hint, or move on to the next endpoint. */
  private onUnavailable(target: string, body: unknown): void {
    if (target !== this.target) return;
    this.leaderKnown = false;
    const leader = body !== null && typeof body === 'object' ? (body as ErrorBody).error?.leader : undefined;
    if (this.discoverLeader && typeof leader === 'number' && leader > 0) return; // findLeader will ask
    this.rotation = (this.rotation + 1) % this.endpoints.length;
    this.target = this.endpoints[this.rotation] as string;
  }

  /**
   * Asks the endpoints (starting from the current one) who leads; uses the first answer naming one.
   * Returns null when one was found, else what went wrong (for the error report). Spends at most half
   * of `timeoutMs`, so an attempt can follow.
   */
  private async findLeader(timeoutMs: number): Promise<string | null> {
    const deadline = performance.now() + timeoutMs / 2;
    const count = this.endpoints.length;
    const first = this.endpoints.indexOf(this.target);
    let failure = 'no endpoint named a leader';
    for (let i = 0; i < count; i++) {
      const endpoint = this.endpoints[((first === -1 ? this.rotation : first) + i) % count] as string;
      const remaining = deadline - performance.now();
      if (remaining <= 0) break;
      const outcome = await this.attempt(endpoint, { method: 'GET', path: '/v1/status', body: null, contentType: null, write: false }, Math.min(remaining, 1000));
      if (outcome.kind !== 'answer' || outcome.answer.status !== 200) {
        failure = `${endpoint}: ${describeFailure(outcome)}`;
        continue;
      }
      const status = outcome.answer.body as StatusResponse;
      if (status.role === 'leader') {
        this.useLeader(endpoint);
        return null;
      }
      if (status.leaderHttp !== null) {
        this.useLeader(originOf(status.leaderHttp));
        return null;
      }
    }
    return failure;
  }

  /** One HTTP exchange. `sent` tells whether the request may have reached the server. */
  private attempt(
    endpoint: string,
    request: Request,
    timeoutMs: number,
  ): Promise<{ readonly kind: 'answer'; readonly answer: Answer } | { readonly kind: 'failed' | 'timeout'; readonly reason: string; readonly sent: boolean }> {
    return new Promise((resolve) => {
      const headers: http.OutgoingHttpHeaders = { ...(request.headers?.() ?? {}) };
      const payload = request.body === null ? null : Buffer.from(request.body, 'utf8');
      if (payload !== null) {
        headers['content-length'] = payload.length;
        if (request.contentType !== null) headers['content-type'] = request.contentType;
      }
      let settled = false;
      let sent = false;
      const settle = (value: Parameters<typeof resolve>[0]): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(value);
      };
      const outbound = http.request(endpoint + request.path, { method: request.method, headers, agent: this.agent }, (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('error', (error) => settle({ kind: 'failed', reason: `answer broke off: ${error.message}`, sent: true }));
        response.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let body: unknown = null;
          try {
            body = text === '' ? null : JSON.parse(text);
          } catch {
            settle({ kind: 'failed', reason: `answer is not JSON: ${text.slice(0, 80)}`, sent: true });
            return;
          }
          const location = response.headers['location'];
          settle({ kind: 'answer', answer: { status: response.statusCode ?? 0, body, location } });
        });
      });
      const timer = setTimeout(() => {
        settle({ kind: 'timeout', reason: `no answer within ${Math.round(timeoutMs)} ms`, sent });
        outbound.destroy();
      }, timeoutMs);
      outbound.on('socket', (socket) => {
        // A reused keep-alive socket is connected already; a new one is once 'connect' fires.
        if (!socket.connecting) sent = true;
        else socket.once('connect', () => (sent = true));
      });
      outbound.on('error', (error) => settle({ kind: 'failed', reason: error.message, sent }));
      outbound.end(payload ?? undefined);
    });
  }
}

function originOf(url: string): string {
  const parsed = new URL(url);
  return `${parsed.protocol}//${parsed.host}`;
}

function errorCodeOf(body: unknown): KvApiErrorCode | null {
  if (body === null || typeof body !== 'object') return null;
  const error = (body as { error?: { code?: unknown } }).error;
  return typeof error?.code === 'string' ? (error.code as KvApiErrorCode) : null;
}

function errorMessageOf(body: unknown): string {
  if (body === null || typeof body !== 'object') return String(body);
  const error = (body as { error?: { message?: unknown } }).error;
  return typeof error?.message === 'string' ? error.message : JSON.stringify(body).slice(0, 200);
}

function describeFailure(outcome: { kind: 'answer'; answer: Answer } | { kind: 'failed' | 'timeout'; reason: string }): string {
  return outcome.kind === 'answer' ? `${outcome.answer.status} ${errorCodeOf(outcome.answer.body) ?? ''} ${errorMessageOf(outcome.answer.body)}` : outcome.reason;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
