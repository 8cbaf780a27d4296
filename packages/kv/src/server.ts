/**
 * The KV service's HTTP server (node:http): one per node.
 *
 *   PUT    /v1/kv/:key            body = the value (text/plain, octet-stream, form or absent content
 *                                  type: the raw body; application/json: {"value": "..."})
 *   GET    /v1/kv/:key            ?consistency=linearizable (default) | lease | stale
 *   DELETE /v1/kv/:key
 *   POST   /v1/kv/:key/cas        {"expected": "old" | null, "value": "new"}
 *   POST   /v1/command            {"type": "SET" | "GET" | "DELETE" | "CAS", "key", "value", "expected", "consistency"}
 *   POST   /v1/session            registers a client session: {"clientId": n}
 *   GET    /v1/status             role, term, leader, commit, applied, peers...
 *   GET    /healthz               200 while serving, 503 while shutting down
 *   GET    /metrics               Prometheus text format
 *   POST   /v1/admin/partition    {"peers": [ids]}: drop Raft traffic with them (only with `admin`)
 *   POST   /v1/admin/heal         end the partition (only with `admin`)
 *   POST   /v1/admin/transfer     {"to": id}: hand leadership over (only with `admin`)
 *
 * Keys are one path segment, percent-decoded (a `/` inside a key is `%2F`).
 *
 * Where a request is served. Writes and linearizable or lease reads need the leader: the leader
 * serves them; a follower forwards them to the leader over HTTP (default) or answers 307 with the
 * leader's URL in Location (`followerMode: 'redirect'`). A forwarded request is never forwarded again.
 * A node that knows no leader, or whose leader does not answer, answers 503 `no-quorum` at once, and
 * the runtime's deadlines bound how long anything else can wait, so a node cut off from the majority
 * never serves stale data and never applies a write: its reads need a ReadIndex round (thesis §6.4)
 * or a lease (§6.4.1) that a quorum backs, and its writes need a quorum to commit. Stale reads
 * (`?consistency=stale`) are served locally by any node, only when asked for.
 *
 * Bad input never costs more than its own request: bodies are bounded while streaming (413 before
 * reading the rest), JSON is parsed defensively (400), and every error is a JSON body with a stable code.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import type { NodeId } from '@raftlab/core';
import { type Logger, type ReadConsistency, RuntimeError, silentLogger } from '@raftlab/runtime';
import {
  type CasResponse,
  type DeleteResponse,
  type GetResponse,
  KvApiError,
  type PutResponse,
  type StatusResponse,
  clientIdHeader,
  forwardedHeader,
  lowestPendingHeader,
  nodeHeader,
  readConsistencies,
  sequenceHeader,
} from './api.js';
import { isWellFormedText } from './bytes.js';
import type { SessionStamp } from './command.js';
import { KvMetrics, type TransportByteStats } from './metrics.js';
import { type KvService, type KvWriteOutcome, type KvWriteRequest, apiErrorOf } from './service.js';

/** What a follower does with a request only the leader can serve. */
export type FollowerMode = 'forward' | 'redirect';

/**
 * Bugs a test can plant to prove the linearizability check catches them. Never set outside tests.
 *  - stale-follower-reads: followers answer linearizable and lease reads from their local state.
 *  - ack-before-commit: the leader acknowledges a put at once and proposes it 50 ms later (a
 *    write-behind buffer): a put lost with a killed leader was acknowledged; the crash test must see it.
 */
export type KvPlantedBug = 'stale-follower-reads' | 'ack-before-commit';

/** Every planted bug, for argument validation. */
export const kvPlantedBugs: readonly KvPlantedBug[] = ['stale-follower-reads', 'ack-before-commit'];

/** Options of a KvServer. */
export interface KvServerOptions {
  readonly service: KvService;
  /** Listen address (default 127.0.0.1, port 0: any free port). */
  readonly host?: string;
  readonly port?: number;
  /** Base URLs (`http://host:port`) of every node's HTTP server, for forwarding and redirects. */
  readonly httpPeers?: ReadonlyMap<NodeId, string>;
  /** Default `forward`. */
  readonly followerMode?: FollowerMode;
  /**
   * Followers serve linearizable reads themselves with a ReadIndex round through the leader (thesis
   * §6.4), instead of forwarding the request. Default false.
   */
  readonly followerReads?: boolean;
  /** Enables the /v1/admin routes (fault injection, leadership transfer). Default false. */
  readonly admin?: boolean;
  /** Largest request body (default: the machine's valueBytesMax plus 64 KiB of JSON and key). */
  readonly bodyBytesMax?: number;
  /** Deadline of a request forwarded to the leader (default 5000 ms). */
  readonly forwardTimeoutMs?: number;
  /** How long shutdown waits for in-flight requests (default 5000 ms). */
  readonly drainTimeoutMs?: number;
  /** Concurrent connections to the leader when forwarding (default 256). */
  readonly forwardSocketsMax?: number;
  /** Statistics of the Raft transport, for the metrics. */
  readonly transportStats?: () => TransportByteStats;
  readonly logger?: Logger;
  /** Test only: plants a bug (see KvPlantedBug). */
  readonly plantedBug?: KvPlantedBug | null;
}

/** A bad request body's bytes read at most while draining it after an early 413. */
const drainBytesMax = 64 * 1024 * 1024;
/** How long a connection may keep sending a refused body before it is closed. */
const drainTimeoutMs = 5000;

const jsonContentType = 'application/json; charset=utf-8';
const emptyBody = Buffer.alloc(0);
const utf8Decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** The route a request matched, as named in metrics. */
type RouteName = 'kv' | 'cas' | 'command' | 'session' | 'status' | 'healthz' | 'metrics' | 'admin' | 'unknown';

/** Handler-local facts about one request. */
interface Exchange {
  readonly request: http.IncomingMessage;
  readonly response: http.ServerResponse;
  readonly path: string;
  readonly query: string;
  route: RouteName;
  /** Set when the body was refused before it was read: the connection closes after the response. */
  closeConnection: boolean;
  /** The error code answered (`ok`: none), for the metrics. */
  code: string;
}

/** The HTTP server of one KV node. */
export class KvServer {
  readonly service: KvService;
  readonly metrics: KvMetrics;
  readonly server: http.Server;
  private readonly options: KvServerOptions;
  private readonly logger: Logger;
  private readonly agent: http.Agent;
  private readonly bodyBytesMax: number;
  private readonly httpPeers: ReadonlyMap<NodeId, string>;
  private inFlight = 0;
  private drained: (() => void) | null = null;
  private shuttingDown = false;
  private shutdownPromise: Promise<void> | null = null;
  private listening: AddressInfo | null = null;

  constructor(options: KvServerOptions) {
    this.options = options;
    this.service = options.service;
    this.logger = (options.logger ?? silentLogger).child({ component: 'kv-http' });
    this.httpPeers = options.httpPeers ?? new Map();
    const config = this.service.machine.config;
    this.bodyBytesMax = options.bodyBytesMax ?? config.valueBytesMax + 64 * 1024;
    this.metrics = new KvMetrics(this.service.runtime, this.service.machine, options.transportStats ?? null);
    this.agent = new http.Agent({ keepAlive: true, maxSockets: options.forwardSocketsMax ?? 256 });
    this.server = http.createServer({ requestTimeout: 60_000, headersTimeout: 20_000, keepAliveTimeout: 5000 }, (request, response) => this.onRequest(request, response));
    this.server.on('clientError', (error: NodeJS.ErrnoException, socket) => this.onClientError(error, socket));
  }

  /** Bytes that are not HTTP (or headers past the parser's bound) still get a JSON error, then the connection closes. */
  private onClientError(error: NodeJS.ErrnoException, socket: Duplex): void {
    if (error.code === 'ECONNRESET' || !socket.writable) {
      socket.destroy();
      return;
    }
    const apiError =
      error.code === 'HPE_HEADER_OVERFLOW'
        ? new KvApiError('headers-too-large', 'the request headers exceed the server bound')
        : new KvApiError('invalid-request', `not a valid HTTP request (${error.code ?? error.message})`);
    const text = JSON.stringify(apiError.body());
    socket.end(`HTTP/1.1 ${apiError.status} ${http.STATUS_CODES[apiError.status] ?? 'Error'}\r\ncontent-type: ${jsonContentType}\r\ncontent-length: ${Buffer.byteLength(text)}\r\nconnection: close\r\n\r\n${text}`);
  }

  /** Starts listening; resolves with the base URL (`http://host:port`). */
  async listen(): Promise<string> {
    const host = this.options.host ?? '127.0.0.1';
    await new Promise<void>((resolve, reject) => {
      const onError = (error: Error): void => reject(error);
      this.server.once('error', onError);
      this.server.listen(this.options.port ?? 0, host, () => {
        this.server.off('error', onError);
        resolve();
      });
    });
    this.listening = this.server.address() as AddressInfo;
    this.logger.info({ url: this.url }, 'kv http server listening');
    return this.url;
  }

  /** The base URL this server listens on. */
  get url(): string {
    if (this.listening === null) throw new Error('KvServer.url: not listening yet');
    const host = this.listening.family === 'IPv6' ? `[${this.listening.address}]` : this.listening.address;
    return `http://${host}:${this.listening.port}`;
  }

  /** HTTP requests being served now. */
  get requestsInFlight(): number {
    return this.inFlight;
  }

  /** True once shutdown() was called. */
  get isShuttingDown(): boolean {
    return this.shuttingDown;
  }

  /**
   * Graceful shutdown: stop accepting connections and requests (new ones get 503 shutting-down),
   * drain the requests in flight (up to drainTimeoutMs), hand leadership to the most up-to-date peer
   * if this node leads (so the cluster does not wait out an election timeout), then stop the node.
   */
  shutdown(options: { readonly transferLeadership?: boolean } = {}): Promise<void> {
    if (this.shutdownPromise === null) this.shutdownPromise = this.runShutdown(options.transferLeadership ?? true);
    return this.shutdownPromise;
  }

  private async runShutdown(transferLeadership: boolean): Promise<void> {
    this.shuttingDown = true;
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeIdleConnections();
    if (this.inFlight > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, this.options.drainTimeoutMs ?? 5000);
        this.drained = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.drained = null;
    }
    const runtime = this.service.runtime;
    if (transferLeadership && runtime.node.role === 'leader' && !runtime.isStopped) {
      const target = this.transferTarget();
      if (target !== 0) {
        try {
          await runtime.transferLeadership(target);
          this.logger.info({ target }, 'leadership transferred before shutdown');
        } catch (error) {
          this.logger.warn({ target, err: error }, 'leadership transfer before shutdown failed');
        }
      }
    }
    await runtime.stop();
    this.server.closeAllConnections();
    this.agent.destroy();
    await closed;
  }

  /** The peer with the highest match index (0: none known). */
  private transferTarget(): NodeId {
    let best: NodeId = 0;
    let bestMatch = -1;
    for (const progress of this.service.runtime.node.progressStatus()) {
      if (progress.id === this.service.id || !progress.recentActive) continue;
      if (progress.match > bestMatch) {
        best = progress.id;
        bestMatch = progress.match;
      }
    }
    return best;
  }

  // ---------------------------------------------------------------------------------------------
  // Dispatch.

  private onRequest(request: http.IncomingMessage, response: http.ServerResponse): void {
    const started = performance.now();
    const url = request.url ?? '/';
    const queryAt = url.indexOf('?');
    const exchange: Exchange = {
      request,
      response,
      path: queryAt === -1 ? url : url.slice(0, queryAt),
      query: queryAt === -1 ? '' : url.slice(queryAt + 1),
      route: 'unknown',
      closeConnection: false,
      code: 'ok',
    };
    this.inFlight += 1;
    this.metrics.inFlightCount += 1;
    let finished = false;
    const finish = (): void => {
      if (finished) return;
      finished = true;
      this.inFlight -= 1;
      this.metrics.inFlightCount -= 1;
      this.metrics.observe(exchange.route, request.method ?? 'UNKNOWN', exchange.code, (performance.now() - started) / 1000);
      if (this.inFlight === 0 && this.drained !== null) this.drained();
    };
    // 'close' follows 'finish' on every response, and also ends one whose connection broke off.
    response.once('close', finish);
    this.dispatch(exchange).catch((error: unknown) => this.fail(exchange, error));
  }

  private async dispatch(exchange: Exchange): Promise<void> {
    const { path, request } = exchange;
    const method = request.method ?? 'GET';
    if (this.shuttingDown) {
      exchange.closeConnection = true;
      throw new KvApiError('shutting-down', 'the node is shutting down; use another node');
    }
    if (path.startsWith('/v1/kv/')) {
      const rest = path.slice('/v1/kv/'.length);
      const slash = rest.indexOf('/');
      if (slash === -1) {
        exchange.route = 'kv';
        const key = this.decodeKey(rest);
        if (method === 'GET') return this.handleGet(exchange, key, this.consistencyOf(exchange.query, null));
        if (method === 'PUT') return this.handlePut(exchange, key);
        if (method === 'DELETE') return this.handleWrite(exchange, { op: 'delete', key }, await this.readBody(exchange));
        throw this.methodNotAllowed('GET, PUT, DELETE', method, path);
      }
      if (rest.slice(slash) === '/cas') {
        exchange.route = 'cas';
        if (method !== 'POST') throw this.methodNotAllowed('POST', method, path);
        const key = this.decodeKey(rest.slice(0, slash));
        return this.handleCas(exchange, key);
      }
      throw new KvApiError('route-not-found', `no route ${path} (encode a / inside a key as %2F)`);
    }
    switch (path) {
      case '/v1/command':
        exchange.route = 'command';
        if (method !== 'POST') throw this.methodNotAllowed('POST', method, path);
        return this.handleCommand(exchange);
      case '/v1/session':
        exchange.route = 'session';
        if (method !== 'POST') throw this.methodNotAllowed('POST', method, path);
        return this.handleSession(exchange);
      case '/v1/status':
        exchange.route = 'status';
        if (method !== 'GET') throw this.methodNotAllowed('GET', method, path);
        return this.sendJson(exchange, 200, this.status());
      case '/healthz':
        exchange.route = 'healthz';
        if (method !== 'GET') throw this.methodNotAllowed('GET', method, path);
        return this.sendJson(exchange, 200, { status: 'ok', id: this.service.id, role: this.service.runtime.node.role, leader: this.service.runtime.node.leaderId });
      case '/metrics':
        exchange.route = 'metrics';
        if (method !== 'GET') throw this.methodNotAllowed('GET', method, path);
        return this.handleMetrics(exchange);
      case '/v1/admin/partition':
      case '/v1/admin/heal':
      case '/v1/admin/transfer':
        exchange.route = 'admin';
        if (method !== 'POST') throw this.methodNotAllowed('POST', method, path);
        if (this.options.admin !== true) throw new KvApiError('admin-disabled', 'admin routes are disabled: start the server with --admin to enable fault injection and transfers');
        return this.handleAdmin(exchange, path);
      default:
        throw new KvApiError('route-not-found', `no route ${path}`);
    }
  }

  private methodNotAllowed(allow: string, method: string, path: string): KvApiError {
    return new KvApiError('method-not-allowed', `${method} is not allowed on ${path} (allowed: ${allow})`, { allow });
  }

  // ---------------------------------------------------------------------------------------------
  // Handlers.

  private async handleGet(exchange: Exchange, key: string, consistency: ReadConsistency): Promise<void> {
    await this.readBody(exchange);
    const value = await this.readAtConsistency(exchange, key, consistency, null);
    if (value === undefined) return; // forwarded or redirected
    if (value === null) throw new KvApiError('key-not-found', `key ${JSON.stringify(key)} not found`);
    this.sendJson(exchange, 200, { key, value } satisfies GetResponse);
  }

  /** Serves a read where the consistency allows; undefined when the leader answered instead. */
  private async readAtConsistency(exchange: Exchange, key: string, consistency: ReadConsistency, body: Buffer | null): Promise<string | null | undefined> {
    const service = this.service;
    if (consistency === 'stale' || service.runtime.node.role === 'leader') return service.read(key, consistency);
    if (this.options.plantedBug === 'stale-follower-reads') return service.machine.read(key);
    if (consistency === 'linearizable' && this.options.followerReads === true) return service.read(key, consistency);
    await this.toLeader(exchange, body);
    return undefined;
  }

  private async handlePut(exchange: Exchange, key: string): Promise<void> {
    const type = this.contentType(exchange);
    const body = await this.readBody(exchange);
    let value: string;
    if (type === 'application/json') {
      const parsed = this.parseJson(body);
      value = this.stringField(parsed, 'value', false) as string;
    } else if (type === '' || type === 'text/plain' || type === 'application/octet-stream' || type === 'application/x-www-form-urlencoded') {
      value = this.decodeUtf8(body, 'the value');
    } else {
      throw new KvApiError('unsupported-media-type', `PUT takes the value as text/plain, application/octet-stream or application/json ({"value": ...}), not ${type}`);
    }
    this.checkValue(value);
    return this.handleWrite(exchange, { op: 'put', key, value }, body);
  }

  private async handleCas(exchange: Exchange, key: string): Promise<void> {
    this.requireJson(exchange);
    const body = await this.readBody(exchange);
    const parsed = this.parseJson(body);
    const expected = this.stringField(parsed, 'expected', true);
    const value = this.stringField(parsed, 'value', false) as string;
    this.checkValue(value);
    if (expected !== null) this.checkValue(expected);
    return this.handleWrite(exchange, { op: 'cas', key, expected, value }, body);
  }

  private async handleCommand(exchange: Exchange): Promise<void> {
    this.requireJson(exchange);
    const body = await this.readBody(exchange);
    const parsed = this.parseJson(body);
    const type = parsed['type'];
    const key = this.stringField(parsed, 'key', false) as string;
    this.checkKey(key);
    switch (type) {
      case 'SET': {
        const value = this.stringField(parsed, 'value', false) as string;
        this.checkValue(value);
        return this.handleWrite(exchange, { op: 'put', key, value }, body);
      }
      case 'DELETE':
        return this.handleWrite(exchange, { op: 'delete', key }, body);
      case 'CAS': {
        const expected = this.stringField(parsed, 'expected', true);
        const value = this.stringField(parsed, 'value', false) as string;
        this.checkValue(value);
        return this.handleWrite(exchange, { op: 'cas', key, expected, value }, body);
      }
      case 'GET': {
        const field = parsed['consistency'];
        if (field !== undefined && typeof field !== 'string') throw new KvApiError('invalid-request', 'consistency must be a string');
        const consistency = this.consistencyOf(exchange.query, field ?? null);
        const value = await this.readAtConsistency(exchange, key, consistency, body);
        if (value === undefined) return;
        if (value === null) throw new KvApiError('key-not-found', `key ${JSON.stringify(key)} not found`);
        return this.sendJson(exchange, 200, { type: 'GET', key, value });
      }
      default:
        throw new KvApiError('invalid-request', `type must be one of SET, GET, DELETE, CAS, got ${JSON.stringify(type)}`);
    }
  }

  private async handleWrite(exchange: Exchange, write: KvWriteRequest, body: Buffer): Promise<void> {
    const stamp = this.sessionStamp(exchange.request);
    if (this.service.runtime.node.role !== 'leader') return this.toLeader(exchange, body);
    if (this.options.plantedBug === 'ack-before-commit' && write.op === 'put') {
      setTimeout(() => this.service.write(write, stamp).catch(() => undefined), 50);
      const response: PutResponse = { key: write.key, previous: null, index: this.service.runtime.node.lastIndex };
      return this.sendJson(exchange, 200, exchange.route === 'command' ? { type: 'SET', ...response } : response);
    }
    let outcome: KvWriteOutcome;
    try {
      outcome = await this.service.write(write, stamp);
    } catch (error) {
      if (error instanceof KvApiError && error.code === 'cas-failed') throw error;
      throw apiErrorOf(error, 'write');
    }
    const command = exchange.route === 'command';
    switch (outcome.op) {
      case 'put': {
        const response: PutResponse = { key: write.key, previous: outcome.previous, index: outcome.index };
        return this.sendJson(exchange, 200, command ? { type: 'SET', ...response } : response);
      }
      case 'delete': {
        const response: DeleteResponse = { key: write.key, existed: outcome.existed, index: outcome.index };
        return this.sendJson(exchange, 200, command ? { type: 'DELETE', ...response } : response);
      }
      case 'cas': {
        const response: CasResponse = { key: write.key, value: (write as { value: string }).value, index: outcome.index };
        return this.sendJson(exchange, 200, command ? { type: 'CAS', ...response } : response);
      }
    }
  }

  private async handleSession(exchange: Exchange): Promise<void> {
    const body = await this.readBody(exchange);
    if (this.service.runtime.node.role !== 'leader') return this.toLeader(exchange, body);
    const clientId = await this.service.register();
    this.sendJson(exchange, 200, { clientId });
  }

  private async handleMetrics(exchange: Exchange): Promise<void> {
    const text = await this.metrics.registry.metrics();
    exchange.response.writeHead(200, { 'content-type': this.metrics.registry.contentType, 'content-length': Buffer.byteLength(text), [nodeHeader]: String(this.service.id) });
    exchange.response.end(text);
  }

  private async handleAdmin(exchange: Exchange, path: string): Promise<void> {
    const runtime = this.service.runtime;
    const body = await this.readBody(exchange);
    if (path === '/v1/admin/heal') {
      runtime.heal();
      return this.sendJson(exchange, 200, { partitionedFrom: runtime.partitionedFrom });
    }
    this.requireJson(exchange);
    const parsed = this.parseJson(body);
    const peers = runtime.node.config.peers;
    if (path === '/v1/admin/partition') {
      const list = parsed['peers'];
      if (!Array.isArray(list) || !list.every((peer) => typeof peer === 'number' && peers.includes(peer))) {
        throw new KvApiError('invalid-request', `peers must be an array of node ids among ${peers.join(', ')}`);
      }
      runtime.partition(list as number[]);
      return this.sendJson(exchange, 200, { partitionedFrom: runtime.partitionedFrom });
    }
    const to = parsed['to'];
    if (typeof to !== 'number' || !peers.includes(to)) throw new KvApiError('invalid-request', `to must be a node id among ${peers.join(', ')}`);
    if (runtime.node.role !== 'leader') return this.toLeader(exchange, body);
    try {
      await runtime.transferLeadership(to);
    } catch (error) {
      throw apiErrorOf(error, 'write');
    }
    this.sendJson(exchange, 200, { leader: to });
  }

  /** The node's state for GET /v1/status. */
  status(): StatusResponse {
    const runtime = this.service.runtime;
    const node = runtime.node;
    const progress = new Map(node.role === 'leader' ? node.progressStatus().map((entry) => [entry.id, entry]) : []);
    const stats = this.service.machine.stats();
    const storage = runtime.storage.stats();
    return {
      id: node.id,
      role: node.role,
      term: node.term,
      leader: node.leaderId,
      leaderHttp: node.leaderId === 0 ? null : (this.httpPeers.get(node.leaderId) ?? null),
      commit: node.commitIndex,
      applied: node.appliedIndex,
      lastIndex: node.lastIndex,
      peers: node.config.peers.map((id) => {
        const entry = progress.get(id);
        const http = this.httpPeers.get(id) ?? null;
        return entry === undefined ? { id, http } : { id, http, match: entry.match, next: entry.next, state: entry.state };
      }),
      partitionedFrom: runtime.partitionedFrom,
      keys: stats.keyCount,
      sessions: stats.sessionCount,
      storage: { kind: storage.kind, fsync: storage.fsyncPolicy, durable: storage.durable },
      shuttingDown: this.shuttingDown,
    };
  }

  // ---------------------------------------------------------------------------------------------
  // Forwarding.

  /** Sends a request only the leader can serve to the leader (forward or redirect). */
  private async toLeader(exchange: Exchange, body: Buffer | null): Promise<void> {
    const { request } = exchange;
    const node = this.service.runtime.node;
    const leader = node.leaderId;
    if (leader === 0) throw new KvApiError('no-quorum', `node ${node.id} knows no leader backed by a quorum (cut off from the majority, or an election is under way)`, { leader: 0 });
    if (request.headers[forwardedHeader] !== undefined) {
      throw new KvApiError('no-quorum', `node ${node.id} received a forwarded request but is not the leader (node ${leader} is): leadership is moving; retry`, { leader });
    }
    const base = this.httpPeers.get(leader);
    if (base === undefined) throw new KvApiError('no-quorum', `the leader is node ${leader}, whose HTTP address this node does not know (pass --http-peers)`, { leader });
    const location = base + (request.url ?? '/');
    if (this.options.followerMode === 'redirect') {
      throw new KvApiError('not-leader', `node ${node.id} is not the leader; node ${leader} is, at ${base}`, { leader, location });
    }
    this.metrics.forwarded.inc();
    await this.forward(exchange, location, leader, body);
  }

  private forward(exchange: Exchange, location: string, leader: NodeId, body: Buffer | null): Promise<void> {
    const { request, response } = exchange;
    const headers: http.OutgoingHttpHeaders = { [forwardedHeader]: String(this.service.id) };
    for (const name of ['content-type', clientIdHeader, sequenceHeader, lowestPendingHeader]) {
      const value = request.headers[name];
      if (value !== undefined) headers[name] = value;
    }
    const payload = body ?? Buffer.alloc(0);
    headers['content-length'] = payload.length;
    return new Promise<void>((resolve, reject) => {
      const outbound = http.request(location, { method: request.method ?? 'GET', headers, agent: this.agent, timeout: this.options.forwardTimeoutMs ?? 5000 }, (answer) => {
        const chunks: Buffer[] = [];
        answer.on('data', (chunk: Buffer) => chunks.push(chunk));
        answer.on('error', (error) => reject(new KvApiError('no-quorum', `the leader (node ${leader}) answer broke off: ${error.message}; the outcome is unknown`, { leader })));
        answer.on('end', () => {
          const forwardedHeaders: http.OutgoingHttpHeaders = {};
          for (const name of ['content-type', 'location', 'allow', 'retry-after', nodeHeader]) {
            const value = answer.headers[name];
            if (value !== undefined) forwardedHeaders[name] = value;
          }
          const text = Buffer.concat(chunks);
          forwardedHeaders['content-length'] = text.length;
          if ((answer.statusCode ?? 502) >= 300) exchange.code = `forwarded-${answer.statusCode ?? 502}`;
          response.writeHead(answer.statusCode ?? 502, forwardedHeaders);
          response.end(text);
          resolve();
        });
      });
      outbound.on('timeout', () => outbound.destroy(new Error(`no answer within ${this.options.forwardTimeoutMs ?? 5000} ms`)));
      outbound.on('error', (error) => {
        reject(new KvApiError('no-quorum', `the leader (node ${leader} at ${location}) is unreachable: ${error.message}; for a write the outcome is unknown`, { leader }));
      });
      outbound.end(payload);
    });
  }

  // ---------------------------------------------------------------------------------------------
  // Request parsing.

  private decodeKey(encoded: string): string {
    let key: string;
    try {
      key = decodeURIComponent(encoded);
    } catch {
      throw new KvApiError('invalid-key', `the key ${JSON.stringify(encoded)} is not valid percent-encoded UTF-8`);
    }
    this.checkKey(key);
    return key;
  }

  private checkKey(key: string): void {
    if (key.length === 0) throw new KvApiError('invalid-key', 'the key is empty');
    const bytes = Buffer.byteLength(key);
    const keyBytesMax = this.service.machine.config.keyBytesMax;
    if (bytes > keyBytesMax) throw new KvApiError('key-too-large', `key of ${bytes} bytes exceeds keyBytesMax ${keyBytesMax}`);
    if (!isWellFormedText(key)) throw new KvApiError('invalid-key', 'the key has a lone surrogate (not encodable as UTF-8)');
  }

  private checkValue(value: string): void {
    const bytes = Buffer.byteLength(value);
    const valueBytesMax = this.service.machine.config.valueBytesMax;
    if (bytes > valueBytesMax) throw new KvApiError('value-too-large', `value of ${bytes} bytes exceeds valueBytesMax ${valueBytesMax}`);
    if (!isWellFormedText(value)) throw new KvApiError('invalid-request', 'the value has a lone surrogate (not encodable as UTF-8)');
  }

  private consistencyOf(query: string, field: string | null): ReadConsistency {
    let value = field;
    if (value === null && query !== '') value = new URLSearchParams(query).get('consistency');
    if (value === null || value === '') return 'linearizable';
    if (!(readConsistencies as readonly string[]).includes(value)) {
      throw new KvApiError('invalid-consistency', `consistency must be one of ${readConsistencies.join(', ')}, got ${JSON.stringify(value)}`);
    }
    return value as ReadConsistency;
  }

  /** The media type of the request (lower case, no parameters); a charset other than UTF-8 is refused. */
  private contentType(exchange: Exchange): string {
    const header = exchange.request.headers['content-type'];
    if (header === undefined) return '';
    const [type, ...parameters] = header.split(';');
    for (const parameter of parameters) {
      const [name, value] = parameter.split('=');
      if (name?.trim().toLowerCase() === 'charset' && !['utf-8', 'utf8', '"utf-8"'].includes((value ?? '').trim().toLowerCase())) {
        throw new KvApiError('unsupported-media-type', `only UTF-8 bodies are accepted, not charset ${(value ?? '').trim()}`);
      }
    }
    return (type ?? '').trim().toLowerCase();
  }

  private requireJson(exchange: Exchange): void {
    const type = this.contentType(exchange);
    if (type !== '' && type !== 'application/json') throw new KvApiError('unsupported-media-type', `this route takes application/json, not ${type}`);
  }

  /**
   * Reads the body up to bodyBytesMax. A declared length above the bound is refused before anything
   * is read; a streamed body is refused as soon as it crosses it. Either way the response closes the
   * connection (the rest of the body is discarded, within bounds, so the client sees the answer).
   */
  private readBody(exchange: Exchange): Promise<Buffer> {
    const { request } = exchange;
    const limit = this.bodyBytesMax;
    const declared = request.headers['content-length'];
    if (declared !== undefined && Number(declared) > limit) {
      exchange.closeConnection = true;
      return Promise.reject(new KvApiError('body-too-large', `a body of ${declared} bytes exceeds bodyBytesMax ${limit}`));
    }
    // No length and no chunked encoding: HTTP/1.1 says there is no body.
    const bodyless = declared === undefined && request.headers['transfer-encoding'] === undefined;
    if (request.readableEnded || bodyless || declared === '0') return Promise.resolve(emptyBody);
    return new Promise<Buffer>((resolve, reject) => {
      const chunks: Buffer[] = [];
      let bytes = 0;
      let refused = false;
      const onData = (chunk: Buffer): void => {
        if (refused) return;
        bytes += chunk.length;
        if (bytes > limit) {
          refused = true;
          exchange.closeConnection = true;
          request.off('data', onData);
          reject(new KvApiError('body-too-large', `the body exceeds bodyBytesMax ${limit} bytes`));
          return;
        }
        chunks.push(chunk);
      };
      request.on('data', onData);
      request.once('end', () => {
        if (!refused) resolve(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, bytes));
      });
      request.once('error', (error) => {
        if (!refused) reject(new KvApiError('invalid-request', `the request body broke off: ${error.message}`));
      });
    });
  }

  private parseJson(body: Buffer): Record<string, unknown> {
    let parsed: unknown;
    try {
      parsed = JSON.parse(this.decodeUtf8(body, 'the JSON body'));
    } catch (error) {
      if (error instanceof KvApiError) throw error;
      throw new KvApiError('malformed-json', `the body is not valid JSON: ${error instanceof Error ? error.message : String(error)}`);
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new KvApiError('invalid-request', 'the body must be a JSON object');
    return parsed as Record<string, unknown>;
  }

  private stringField(object: Record<string, unknown>, name: string, nullable: boolean): string | null {
    const value = object[name];
    if (typeof value === 'string') return value;
    if (nullable && (value === null || value === undefined)) return null;
    throw new KvApiError('invalid-request', `${name} must be a string${nullable ? ' or null' : ''}, got ${value === undefined ? 'nothing' : JSON.stringify(value)}`);
  }

  private decodeUtf8(body: Buffer, what: string): string {
    try {
      return utf8Decoder.decode(body);
    } catch {
      throw new KvApiError('invalid-utf8', `${what} is not valid UTF-8`);
    }
  }

  /** The session stamp in the headers; null when there is none. Partial or bad stamps are refused. */
  private sessionStamp(request: http.IncomingMessage): SessionStamp | null {
    const clientId = request.headers[clientIdHeader];
    const sequence = request.headers[sequenceHeader];
    const lowest = request.headers[lowestPendingHeader];
    if (clientId === undefined && sequence === undefined && lowest === undefined) return null;
    const parse = (name: string, value: string | string[] | undefined): number => {
      if (typeof value !== 'string' || !/^[1-9][0-9]{0,15}$/.test(value) || !Number.isSafeInteger(Number(value))) {
        throw new KvApiError('invalid-session', `header ${name} must be an integer >= 1, got ${JSON.stringify(value ?? null)} (send all three session headers or none)`);
      }
      return Number(value);
    };
    const stamp = { clientId: parse(clientIdHeader, clientId), sequence: parse(sequenceHeader, sequence), lowestPendingSequence: parse(lowestPendingHeader, lowest) };
    if (stamp.lowestPendingSequence > stamp.sequence) throw new KvApiError('invalid-session', `${lowestPendingHeader} ${stamp.lowestPendingSequence} is above ${sequenceHeader} ${stamp.sequence}`);
    return stamp;
  }

  // ---------------------------------------------------------------------------------------------
  // Responses.

  private sendJson(exchange: Exchange, status: number, body: unknown, extra: http.OutgoingHttpHeaders = {}): void {
    const text = JSON.stringify(body);
    const headers: http.OutgoingHttpHeaders = { 'content-type': jsonContentType, 'content-length': Buffer.byteLength(text), [nodeHeader]: String(this.service.id), ...extra };
    if (exchange.closeConnection) headers['connection'] = 'close';
    exchange.response.writeHead(status, headers);
    exchange.response.end(text);
  }

  private fail(exchange: Exchange, error: unknown): void {
    const apiError = error instanceof KvApiError ? error : error instanceof RuntimeError ? apiErrorOf(error, 'read') : new KvApiError('internal', error instanceof Error ? error.message : String(error));
    if (apiError.code === 'internal') this.logger.error({ err: error, url: exchange.request.url }, 'internal error serving a request');
    const { response, request } = exchange;
    if (response.headersSent) {
      response.destroy();
      return;
    }
    exchange.code = apiError.code;
    const extra: http.OutgoingHttpHeaders = {};
    if (apiError.details.allow !== undefined) extra['allow'] = apiError.details.allow;
    if (apiError.details.location !== undefined) extra['location'] = apiError.details.location;
    if (apiError.status === 503) extra['retry-after'] = '1';
    this.sendJson(exchange, apiError.status, apiError.body(), extra);
    if (exchange.closeConnection && !request.readableEnded) {
      // Discard the rest of a refused body (bounded), so the client reads the answer before the close.
      let drained = 0;
      const timer = setTimeout(() => request.destroy(), drainTimeoutMs);
      request.on('data', (chunk: Buffer) => {
        drained += chunk.length;
        if (drained > drainBytesMax) request.destroy();
      });
      request.once('close', () => clearTimeout(timer));
      request.resume();
    }
  }
}
