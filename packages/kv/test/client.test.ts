/**
 * The KV client library against an in-process 3-node cluster: it finds the leader and talks to it
 * directly, follows the leader when leadership moves or the leader goes away, bounds each attempt and
 * each operation with timeouts, and its session stamps make a retried write apply exactly once, even
 * when the first attempt was applied and only its answer was lost.
 */
import http from 'node:http';
import net from 'node:net';
import { afterEach, describe, expect, test } from 'vitest';
import { KvClient, KvClientError } from '../src/client.js';
import { freePort } from '../src/launcher.js';
import { type Cluster, startCluster, waitFor } from './cluster.js';

const cleanups: (() => Promise<void> | void)[] = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function cluster(): Promise<Cluster> {
  const started = await startCluster();
  cleanups.push(() => started.stop());
  return started;
}

function client(endpoints: string[], options: Partial<ConstructorParameters<typeof KvClient>[0]> = {}): KvClient {
  const created = new KvClient({ endpoints, attemptTimeoutMs: 1000, operationTimeoutMs: 5000, ...options });
  cleanups.push(() => created.close());
  return created;
}

async function listen(server: http.Server | net.Server): Promise<string> {
  const sockets = new Set<net.Socket>();
  server.on('connection', (socket: net.Socket) => sockets.add(socket));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  );
  return `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
}

/** An HTTP proxy to `target` that, for the first request matching `lose`, forwards it but drops the answer. */
async function lossyProxy(target: string, lose: (request: http.IncomingMessage) => boolean): Promise<{ url: string; lost: () => number }> {
  let lost = 0;
  const server = http.createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const dropAnswer = lost === 0 && lose(request);
      const upstream = http.request(target + request.url, { method: request.method, headers: request.headers }, (answer) => {
        const body: Buffer[] = [];
        answer.on('data', (chunk: Buffer) => body.push(chunk));
        answer.on('end', () => {
          if (dropAnswer) {
            lost += 1;
            request.socket.destroy(); // the write was applied; the client never hears of it
            return;
          }
          response.writeHead(answer.statusCode ?? 502, answer.headers);
          response.end(Buffer.concat(body));
        });
      });
      upstream.end(Buffer.concat(chunks));
    });
  });
  return { url: await listen(server), lost: () => lost };
}

function forwardedCount(metrics: string): number {
  const match = /^raftlab_http_forwarded_total (\d+)/m.exec(metrics);
  return Number(match?.[1] ?? Number.NaN);
}

describe('KvClient', () => {
  test('finds the leader from a follower endpoint and sends to it directly: nothing is forwarded', async () => {
    const { waitForLeader, followerOf, servers } = await cluster();
    const leader = await waitForLeader();
    const follower = await followerOf(leader);
    const kv = client([follower.url, ...[...servers.values()].filter((server) => server !== follower).map((server) => server.url)]);
    expect(await kv.put('a', '1')).toMatchObject({ previous: null });
    expect(await kv.get('a')).toBe('1');
    expect(await kv.cas('a', '1', '2')).toMatchObject({ ok: true });
    expect(await kv.cas('a', '1', '3')).toEqual({ ok: false, actual: '2' });
    expect(await kv.delete('a')).toMatchObject({ existed: true });
    expect(await kv.get('a')).toBeNull();
    expect(forwardedCount(await follower.metrics.registry.metrics())).toBe(0);
  });

  test('follows leadership when it moves to another node', async () => {
    const { waitForLeader, servers } = await cluster();
    const leader = await waitForLeader();
    const kv = client([...servers.values()].map((server) => server.url));
    await kv.put('k', 'before');
    const target = [...servers.values()].find((server) => server !== leader);
    if (target === undefined) throw new Error('no follower');
    await leader.service.runtime.transferLeadership(target.service.id);
    await waitFor('the new leader', () => (target.service.runtime.node.role === 'leader' ? true : undefined));
    expect((await kv.put('k', 'after')).previous).toBe('before');
    expect(await kv.get('k')).toBe('after');
  });

  test('survives the loss of the leader: it retries on the others until a new leader answers', async () => {
    const { waitForLeader, servers } = await cluster();
    const leader = await waitForLeader();
    const kv = client([...servers.values()].map((server) => server.url));
    await kv.put('k', '1');
    await leader.shutdown({ transferLeadership: false });
    expect((await kv.put('k', '2')).previous).toBe('1');
    expect(await kv.get('k')).toBe('2');
  });

  test('a write whose answer was lost is retried with the same stamp and applies exactly once', async () => {
    const { waitForLeader } = await cluster();
    const leader = await waitForLeader();
    const proxy = await lossyProxy(leader.url, (request) => request.url?.endsWith('/cas') === true);
    const kv = client([proxy.url], { discoverLeader: false });
    // cas(absent -> mine) applied twice would fail the second time (the key is no longer absent).
    expect(await kv.cas('once', null, 'mine')).toMatchObject({ ok: true });
    expect(proxy.lost()).toBe(1);
    expect(await kv.get('once')).toBe('mine');
    expect((await kv.put('once', 'next')).previous).toBe('mine');
  });

  test('many concurrent writes of one client stay within the session window and all apply', async () => {
    const { waitForLeader } = await cluster();
    const leader = await waitForLeader();
    const kv = client([leader.url], { sessionWindowCount: 16 });
    const results = await Promise.all(Array.from({ length: 100 }, (_, i) => kv.put(`w${i % 5}`, String(i))));
    expect(new Set(results.map((result) => result.index)).size).toBe(100);
  });

  test('an endpoint that never answers costs one attempt timeout, then the next endpoint serves', async () => {
    const { waitForLeader } = await cluster();
    const leader = await waitForLeader();
    const silent = net.createServer(() => undefined); // accepts and never answers
    const silentUrl = await listen(silent);
    // Without leader discovery the first attempt goes to the silent endpoint and waits out its
    // timeout (discovery would probe it with half the attempt timeout instead).
    const kv = client([silentUrl, leader.url], { attemptTimeoutMs: 300, discoverLeader: false });
    const started = Date.now();
    await kv.put('k', 'v');
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
    expect(await kv.get('k')).toBe('v');
  });

  test('when no endpoint answers, a write fails with timeout at its deadline, definitely not applied (its session never registered)', async () => {
    const silent = net.createServer(() => undefined);
    const silentUrl = await listen(silent);
    const kv = client([silentUrl], { attemptTimeoutMs: 200, operationTimeoutMs: 700, discoverLeader: false });
    const started = Date.now();
    const error = await kv.put('k', 'v').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(KvClientError);
    expect((error as KvClientError).code).toBe('timeout');
    expect((error as KvClientError).indeterminate).toBe(false);
    expect(Date.now() - started).toBeLessThan(2000);
  });

  test('a write sent to a server that never answers is indeterminate at its deadline; a refused connection is not', async () => {
    // Registers sessions (client id 7) and swallows every write.
    const silent = http.createServer((request, response) => {
      if (request.url === '/v1/session') response.end(JSON.stringify({ clientId: 7 }));
    });
    const silentUrl = await listen(silent);
    const kv = client([silentUrl], { attemptTimeoutMs: 200, operationTimeoutMs: 600, discoverLeader: false });
    const lost = await kv.put('k', 'v').catch((e: unknown) => e);
    expect(lost).toBeInstanceOf(KvClientError);
    expect((lost as KvClientError).code).toBe('timeout');
    expect((lost as KvClientError).indeterminate).toBe(true);
    expect(kv.sessionId).toBe(7);
    const closedPort = await freePort();
    const unreachable = client([`http://127.0.0.1:${closedPort}`], { attemptTimeoutMs: 200, operationTimeoutMs: 500, discoverLeader: false });
    const refused = await unreachable.put('k', 'v').catch((e: unknown) => e);
    expect((refused as KvClientError).code).toBe('unreachable');
    expect((refused as KvClientError).indeterminate).toBe(false);
  });
});
