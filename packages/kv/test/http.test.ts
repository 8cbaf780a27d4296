/**
 * The KV HTTP API against an in-process 3-node cluster (MemoryNetwork, real HTTP servers on
 * 127.0.0.1): every route answers as documented; every kind of bad input gets its own JSON error
 * code and status and costs nothing to the requests around it; reads are linearizable by default,
 * lease and stale only when asked; followers forward to the leader or redirect with 307; a node cut
 * off from the majority answers 503 no-quorum to reads and writes and never applies them; session
 * stamps make retried writes exactly-once; concurrent writes are totally ordered the same way for
 * every client; graceful shutdown drains in-flight requests and hands leadership over.
 */
import net from 'node:net';
import { afterEach, describe, expect, test } from 'vitest';
import { type Cluster, type ClusterOptions, jsonBody, request, startCluster, waitFor } from './cluster.js';

const clusters: Cluster[] = [];

afterEach(async () => {
  await Promise.all(clusters.splice(0).map((cluster) => cluster.stop()));
});

async function cluster(options: ClusterOptions = {}): Promise<Cluster> {
  const started = await startCluster(options);
  clusters.push(started);
  return started;
}

/** Sends raw bytes on a fresh connection and returns everything the server answers until it closes. */
function rawExchange(url: string, chunks: readonly string[], pauseMs = 0, closeAfterMs = 5000): Promise<string> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(port), hostname);
    let answer = '';
    socket.on('data', (data) => (answer += data.toString('latin1')));
    socket.on('error', (error) => (answer === '' ? reject(error) : resolve(answer)));
    socket.on('close', () => resolve(answer));
    socket.on('connect', async () => {
      for (const chunk of chunks) {
        if (socket.destroyed) return;
        socket.write(chunk);
        if (pauseMs > 0) await new Promise((r) => setTimeout(r, pauseMs));
      }
    });
    setTimeout(() => socket.destroy(), closeAfterMs);
  });
}

describe('routes', () => {
  test('PUT stores a value that GET returns; PUT reports the previous value and the log index', async () => {
    const { waitForLeader } = await cluster();
    const leader = await waitForLeader();
    const first = await request(`${leader.url}/v1/kv/color`, { method: 'PUT', body: 'blue', headers: { 'content-type': 'text/plain' } });
    expect(first.status).toBe(200);
    expect(first.json).toMatchObject({ key: 'color', previous: null });
    const second = await request(`${leader.url}/v1/kv/color`, { method: 'PUT', body: 'green' });
    expect(second.json).toMatchObject({ key: 'color', previous: 'blue' });
    expect(second.json.index).toBeGreaterThan(first.json.index);
    const read = await request(`${leader.url}/v1/kv/color`);
    expect(read.status).toBe(200);
    expect(read.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(read.json).toEqual({ key: 'color', value: 'green' });
  });

  test('PUT takes a JSON body {"value"} and keys are one percent-decoded path segment', async () => {
    const { waitForLeader } = await cluster();
    const leader = await waitForLeader();
    const key = encodeURIComponent('dir/naïve key');
    const put = await request(`${leader.url}/v1/kv/${key}`, { method: 'PUT', ...jsonBody({ value: 'é ✓' }) });
    expect(put.status).toBe(200);
    expect(put.json.key).toBe('dir/naïve key');
    expect((await request(`${leader.url}/v1/kv/${key}`)).json).toEqual({ key: 'dir/naïve key', value: 'é ✓' });
  });

  test('DELETE removes a key; a later GET is 404 key-not-found; DELETE says whether it existed', async () => {
    const { waitForLeader } = await cluster();
    const leader = await waitForLeader();
    await request(`${leader.url}/v1/kv/k`, { method: 'PUT', body: 'v' });
    const removed = await request(`${leader.url}/v1/kv/k`, { method: 'DELETE' });
    expect(removed.status).toBe(200);
    expect(removed.json).toMatchObject({ key: 'k', existed: true });
    const again = await request(`${leader.url}/v1/kv/k`, { method: 'DELETE' });
    expect(again.json).toMatchObject({ key: 'k', existed: false });
    const read = await request(`${leader.url}/v1/kv/k`);
    expect(read.status).toBe(404);
    expect(read.json.error.code).toBe('key-not-found');
  });

  test('cas swaps when the key holds expected, else 409 cas-failed with the actual value; expected null means absent', async () => {
    const { waitForLeader } = await cluster();
    const leader = await waitForLeader();
    const url = `${leader.url}/v1/kv/lock/cas`;
    const create = await request(url, { method: 'POST', ...jsonBody({ expected: null, value: 'a' }) });
    expect(create.status).toBe(200);
    expect(create.json).toMatchObject({ key: 'lock', value: 'a' });
    const lost = await request(url, { method: 'POST', ...jsonBody({ expected: null, value: 'b' }) });
    expect(lost.status).toBe(409);
    expect(lost.json.error).toMatchObject({ code: 'cas-failed', actual: 'a' });
    const swapped = await request(url, { method: 'POST', ...jsonBody({ expected: 'a', value: 'c' }) });
    expect(swapped.status).toBe(200);
    expect((await request(`${leader.url}/v1/kv/lock`)).json.value).toBe('c');
    await request(`${leader.url}/v1/kv/lock`, { method: 'DELETE' });
    const absent = await request(url, { method: 'POST', ...jsonBody({ expected: 'c', value: 'd' }) });
    expect(absent.status).toBe(409);
    expect(absent.json.error).toMatchObject({ code: 'cas-failed', actual: null });
  });

  test('POST /v1/command runs SET, GET, DELETE and CAS', async () => {
    const { waitForLeader } = await cluster();
    const leader = await waitForLeader();
    const url = `${leader.url}/v1/command`;
    const set = await request(url, { method: 'POST', ...jsonBody({ type: 'SET', key: 'x', value: '1' }) });
    expect(set.json).toMatchObject({ type: 'SET', key: 'x', previous: null });
    const get = await request(url, { method: 'POST', ...jsonBody({ type: 'GET', key: 'x' }) });
    expect(get.json).toEqual({ type: 'GET', key: 'x', value: '1' });
    const cas = await request(url, { method: 'POST', ...jsonBody({ type: 'CAS', key: 'x', expected: '1', value: '2' }) });
    expect(cas.json).toMatchObject({ type: 'CAS', key: 'x', value: '2' });
    const removed = await request(url, { method: 'POST', ...jsonBody({ type: 'DELETE', key: 'x' }) });
    expect(removed.json).toMatchObject({ type: 'DELETE', key: 'x', existed: true });
    const missing = await request(url, { method: 'POST', ...jsonBody({ type: 'GET', key: 'x' }) });
    expect(missing.status).toBe(404);
    expect(missing.json.error.code).toBe('key-not-found');
    const bad = await request(url, { method: 'POST', ...jsonBody({ type: 'INCR', key: 'x' }) });
    expect(bad.status).toBe(400);
    expect(bad.json.error.code).toBe('invalid-request');
  });

  test('status reports role, term, leader, commit, applied and peers; healthz answers ok', async () => {
    const { waitForLeader, followerOf } = await cluster();
    const leader = await waitForLeader();
    await request(`${leader.url}/v1/kv/a`, { method: 'PUT', body: '1' });
    const follower = await followerOf(leader);
    const status = await request(`${follower.url}/v1/status`);
    expect(status.status).toBe(200);
    expect(status.json).toMatchObject({ id: follower.service.id, role: 'follower', leader: leader.service.id, leaderHttp: leader.url, keys: 1 });
    expect(status.json.term).toBeGreaterThanOrEqual(1);
    expect(status.json.commit).toBeGreaterThanOrEqual(status.json.applied);
    expect(status.json.peers.map((peer: { id: number }) => peer.id)).toEqual([1, 2, 3]);
    const leaderStatus = await request(`${leader.url}/v1/status`);
    expect(leaderStatus.json.role).toBe('leader');
    expect(leaderStatus.json.peers.find((peer: { id: number }) => peer.id !== leader.service.id).match).toBeGreaterThan(0);
    const health = await request(`${follower.url}/healthz`);
    expect(health.status).toBe(200);
    expect(health.json.status).toBe('ok');
  });

  test('metrics expose term, commit, applied, proposals, elections, request latency histograms and transport bytes', async () => {
    const { waitForLeader } = await cluster();
    const leader = await waitForLeader();
    await request(`${leader.url}/v1/kv/a`, { method: 'PUT', body: '1' });
    await request(`${leader.url}/v1/kv/a`);
    const metrics = await request(`${leader.url}/metrics`);
    expect(metrics.status).toBe(200);
    expect(metrics.headers['content-type']).toContain('text/plain');
    for (const name of ['raftlab_term', 'raftlab_commit_index', 'raftlab_applied_index', 'raftlab_proposals_total', 'raftlab_elections_total 1']) {
      expect(metrics.text).toContain(name);
    }
    expect(metrics.text).toMatch(/raftlab_http_request_duration_seconds_bucket\{le="0.005",route="kv",method="PUT"\} 1/);
    expect(metrics.text).toMatch(/raftlab_transport_bytes_sent_total [1-9]/);
  });
});

describe('bad requests get a JSON error with a stable code and cost nothing else', () => {
  test('unknown routes are 404 route-not-found; wrong methods are 405 with Allow', async () => {
    const { waitForLeader } = await cluster();
    const leader = await waitForLeader();
    for (const path of ['/', '/v2/kv/a', '/v1/kv/a/b', '/v1/kv/a/cas/x', '/v1/statuses']) {
      const answer = await request(leader.url + path);
      expect(answer.status, path).toBe(404);
      expect(answer.json.error.code, path).toBe('route-not-found');
    }
    const post = await request(`${leader.url}/v1/kv/a`, { method: 'POST', body: 'x' });
    expect(post.status).toBe(405);
    expect(post.headers['allow']).toBe('GET, PUT, DELETE');
    expect(post.json.error.code).toBe('method-not-allowed');
    const getCas = await request(`${leader.url}/v1/kv/a/cas`);
    expect(getCas.status).toBe(405);
    expect(getCas.headers['allow']).toBe('POST');
  });

  test('malformed JSON is 400 malformed-json; a JSON non-object or a missing field is 400 invalid-request', async () => {
    const { waitForLeader } = await cluster();
    const leader = await waitForLeader();
    const headers = { 'content-type': 'application/json' };
    const broken = await request(`${leader.url}/v1/kv/a/cas`, { method: 'POST', body: '{"expected": ', headers });
    expect(broken.status).toBe(400);
    expect(broken.json.error.code).toBe('malformed-json');
    const array = await request(`${leader.url}/v1/command`, { method: 'POST', body: '[1]', headers });
    expect(array.json.error.code).toBe('invalid-request');
    const missing = await request(`${leader.url}/v1/kv/a/cas`, { method: 'POST', body: '{"expected": "x"}', headers });
    expect(missing.status).toBe(400);
    expect(missing.json.error).toMatchObject({ code: 'invalid-request' });
    expect(missing.json.error.message).toContain('value');
    const number = await request(`${leader.url}/v1/command`, { method: 'POST', ...jsonBody({ type: 'SET', key: 'a', value: 5 }) });
    expect(number.json.error.code).toBe('invalid-request');
  });

  test('wrong content types are 415; a body that is not UTF-8 is 400 invalid-utf8', async () => {
    const { waitForLeader } = await cluster();
    const leader = await waitForLeader();
    const image = await request(`${leader.url}/v1/kv/a`, { method: 'PUT', body: 'x', headers: { 'content-type': 'image/png' } });
    expect(image.status).toBe(415);
    expect(image.json.error.code).toBe('unsupported-media-type');
    const latin1 = await request(`${leader.url}/v1/kv/a`, { method: 'PUT', body: 'x', headers: { 'content-type': 'text/plain; charset=iso-8859-1' } });
    expect(latin1.status).toBe(415);
    const textCas = await request(`${leader.url}/v1/kv/a/cas`, { method: 'POST', body: '{}', headers: { 'content-type': 'text/plain' } });
    expect(textCas.status).toBe(415);
    const notUtf8 = await request(`${leader.url}/v1/kv/a`, { method: 'PUT', body: Buffer.from([0x61, 0xff, 0xfe]) });
    expect(notUtf8.status).toBe(400);
    expect(notUtf8.json.error.code).toBe('invalid-utf8');
    expect((await request(`${leader.url}/v1/kv/a`)).json.error.code).toBe('key-not-found');
  });

  test('keys: bad percent-encoding is 400 invalid-key; an oversized key is 413 key-too-large; an oversized value is 413 value-too-large', async () => {
    const { waitForLeader } = await cluster({ node: { machine: { keyBytesMax: 16, valueBytesMax: 32 } } });
    const leader = await waitForLeader();
    const badEncoding = await request(`${leader.url}/v1/kv/%E0%A4%A`);
    expect(badEncoding.status).toBe(400);
    expect(badEncoding.json.error.code).toBe('invalid-key');
    const longKey = await request(`${leader.url}/v1/kv/${'k'.repeat(17)}`, { method: 'PUT', body: 'v' });
    expect(longKey.status).toBe(413);
    expect(longKey.json.error.code).toBe('key-too-large');
    const longValue = await request(`${leader.url}/v1/kv/k`, { method: 'PUT', body: 'v'.repeat(33) });
    expect(longValue.status).toBe(413);
    expect(longValue.json.error.code).toBe('value-too-large');
    const longCommandValue = await request(`${leader.url}/v1/command`, { method: 'POST', ...jsonBody({ type: 'SET', key: 'k', value: 'v'.repeat(33) }) });
    expect(longCommandValue.json.error.code).toBe('value-too-large');
    const fits = await request(`${leader.url}/v1/kv/${'k'.repeat(16)}`, { method: 'PUT', body: 'v'.repeat(32) });
    expect(fits.status).toBe(200);
  });

  test('a declared body above the bound is refused with 413 before the body is sent', async () => {
    const { waitForLeader } = await cluster({ http: { bodyBytesMax: 1024 } });
    const leader = await waitForLeader();
    // Headers only: the server must answer without waiting for the 10 MB it was promised.
    const answer = await rawExchange(leader.url, ['PUT /v1/kv/a HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n\r\n']);
    expect(answer).toMatch(/^HTTP\/1\.1 413 /);
    expect(answer).toContain('"code":"body-too-large"');
    expect(answer.toLowerCase()).toContain('connection: close');
  });

  test('a streamed (chunked) body crossing the bound is refused with 413 as soon as it crosses', async () => {
    const { waitForLeader } = await cluster({ http: { bodyBytesMax: 1024 } });
    const leader = await waitForLeader();
    const chunk = `400\r\n${'x'.repeat(1024)}\r\n`;
    const answer = await rawExchange(leader.url, ['PUT /v1/kv/a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n', chunk, chunk, chunk], 20);
    expect(answer).toMatch(/^HTTP\/1\.1 413 /);
    expect(answer).toContain('"code":"body-too-large"');
    expect((await request(`${leader.url}/v1/kv/a`)).json.error.code).toBe('key-not-found');
  });

  test('bad consistency levels and bad session headers are 400 with their own codes', async () => {
    const { waitForLeader } = await cluster();
    const leader = await waitForLeader();
    const consistency = await request(`${leader.url}/v1/kv/a?consistency=eventual`);
    expect(consistency.status).toBe(400);
    expect(consistency.json.error.code).toBe('invalid-consistency');
    const partial = await request(`${leader.url}/v1/kv/a`, { method: 'PUT', body: 'v', headers: { 'raftlab-client-id': '5' } });
    expect(partial.status).toBe(400);
    expect(partial.json.error.code).toBe('invalid-session');
    const inverted = await request(`${leader.url}/v1/kv/a`, {
      method: 'PUT',
      body: 'v',
      headers: { 'raftlab-client-id': '5', 'raftlab-sequence': '2', 'raftlab-lowest-pending': '3' },
    });
    expect(inverted.json.error.code).toBe('invalid-session');
    const unknown = await request(`${leader.url}/v1/kv/a`, {
      method: 'PUT',
      body: 'v',
      headers: { 'raftlab-client-id': '999', 'raftlab-sequence': '1', 'raftlab-lowest-pending': '1' },
    });
    expect(unknown.status).toBe(412);
    expect(unknown.json.error.code).toBe('unknown-session');
  });

  test('bytes that are not HTTP and oversized headers get JSON errors too', async () => {
    const { waitForLeader } = await cluster();
    const leader = await waitForLeader();
    const garbage = await rawExchange(leader.url, ['GARBAGE\r\n\r\n']);
    expect(garbage).toMatch(/^HTTP\/1\.1 400 /);
    expect(garbage).toContain('"code":"invalid-request"');
    const huge = await rawExchange(leader.url, [`GET /v1/status HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`]);
    expect(huge).toMatch(/^HTTP\/1\.1 431 /);
    expect(huge).toContain('"code":"headers-too-large"');
    expect((await request(`${leader.url}/v1/status`)).status).toBe(200);
  });

  test('after a burst of every kind of bad request, concurrent good requests are all served', async () => {
    const { waitForLeader } = await cluster({ http: { bodyBytesMax: 1024 } });
    const leader = await waitForLeader();
    const bad = [
      request(`${leader.url}/v1/kv/a/cas`, { method: 'POST', body: '{', headers: { 'content-type': 'application/json' } }),
      request(`${leader.url}/v1/kv/%ZZ`),
      request(`${leader.url}/v1/kv/a`, { method: 'PUT', body: 'x'.repeat(5000) }).catch(() => null),
      rawExchange(leader.url, ['GARBAGE\r\n\r\n']),
      // A body that never completes: the client gives up; nothing else waits for it.
      rawExchange(leader.url, ['PUT /v1/kv/a HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc'], 0, 300),
      request(`${leader.url}/nope`, { method: 'PATCH' }),
    ];
    const good = Array.from({ length: 20 }, (_, i) => request(`${leader.url}/v1/kv/k${i}`, { method: 'PUT', body: `v${i}` }));
    await Promise.all(bad);
    const answers = await Promise.all(good);
    expect(answers.map((answer) => answer.status)).toEqual(answers.map(() => 200));
    expect((await request(`${leader.url}/v1/kv/k19`)).json.value).toBe('v19');
  });

  test('admin routes are 403 admin-disabled unless the server was started with admin', async () => {
    const { waitForLeader } = await cluster();
    const leader = await waitForLeader();
    const answer = await request(`${leader.url}/v1/admin/heal`, { method: 'POST' });
    expect(answer.status).toBe(403);
    expect(answer.json.error.code).toBe('admin-disabled');
  });
});

describe('consistency', () => {
  test('every node serves linearizable reads of acknowledged writes: followers forward them to the leader', async () => {
    const { waitForLeader, servers } = await cluster();
    const leader = await waitForLeader();
    for (let i = 0; i < 5; i++) {
      await request(`${leader.url}/v1/kv/n`, { method: 'PUT', body: String(i) });
      for (const server of servers.values()) {
        const read = await request(`${server.url}/v1/kv/n`);
        expect(read.json.value, `node ${server.service.id}`).toBe(String(i));
      }
    }
  });

  test('lease reads are served by the leader and forwarded by followers; stale reads are local', async () => {
    const { waitForLeader, followerOf } = await cluster();
    const leader = await waitForLeader();
    await request(`${leader.url}/v1/kv/a`, { method: 'PUT', body: '1' });
    const follower = await followerOf(leader);
    const lease = await request(`${follower.url}/v1/kv/a?consistency=lease`);
    expect(lease.json.value).toBe('1');
    expect(lease.headers['raftlab-node']).toBe(String(leader.service.id));
    const stale = await request(`${follower.url}/v1/kv/a?consistency=stale`);
    expect(stale.headers['raftlab-node']).toBe(String(follower.service.id));
  });

  test('with follower reads on, a follower serves linearizable reads itself through ReadIndex', async () => {
    const { waitForLeader, followerOf } = await cluster({ http: { followerReads: true } });
    const leader = await waitForLeader();
    await request(`${leader.url}/v1/kv/a`, { method: 'PUT', body: '1' });
    const follower = await followerOf(leader);
    const read = await request(`${follower.url}/v1/kv/a`);
    expect(read.json.value).toBe('1');
    expect(read.headers['raftlab-node']).toBe(String(follower.service.id));
  });

  test('a follower forwards writes to the leader by default', async () => {
    const { waitForLeader, followerOf } = await cluster();
    const leader = await waitForLeader();
    const follower = await followerOf(leader);
    const put = await request(`${follower.url}/v1/kv/f`, { method: 'PUT', body: 'w' });
    expect(put.status).toBe(200);
    expect(put.headers['raftlab-node']).toBe(String(leader.service.id));
    const cas = await request(`${follower.url}/v1/kv/f/cas`, { method: 'POST', ...jsonBody({ expected: 'nope', value: 'z' }) });
    expect(cas.status).toBe(409);
    expect(cas.json.error.actual).toBe('w');
  });

  test('in redirect mode a follower answers 307 with the leader URL in Location', async () => {
    const { waitForLeader, followerOf } = await cluster({ http: { followerMode: 'redirect' } });
    const leader = await waitForLeader();
    const follower = await followerOf(leader);
    const put = await request(`${follower.url}/v1/kv/r?x=1`, { method: 'PUT', body: 'v' });
    expect(put.status).toBe(307);
    expect(put.headers['location']).toBe(`${leader.url}/v1/kv/r?x=1`);
    expect(put.json.error).toMatchObject({ code: 'not-leader', leader: leader.service.id });
    const followed = await request(put.headers['location'] as string, { method: 'PUT', body: 'v' });
    expect(followed.status).toBe(200);
    const read = await request(`${follower.url}/v1/kv/r`);
    expect(read.status).toBe(307);
    expect((await request(`${follower.url}/v1/kv/r?consistency=stale`)).status).toBe(200);
  });

  test('a follower whose leader does not answer HTTP answers 503 no-quorum at once', async () => {
    const { waitForLeader, followerOf, urls } = await cluster();
    const leader = await waitForLeader();
    const follower = await followerOf(leader);
    urls.set(leader.service.id, 'http://127.0.0.1:1'); // nothing listens there
    const put = await request(`${follower.url}/v1/kv/a`, { method: 'PUT', body: 'x' });
    expect(put.status).toBe(503);
    expect(put.json.error.code).toBe('no-quorum');
    expect(put.json.error.message).toContain('unreachable');
    const read = await request(`${follower.url}/v1/kv/a`);
    expect(read.json.error.code).toBe('no-quorum');
    expect((await request(`${leader.url}/v1/kv/a`)).status).toBe(404);
  });

  test('a node cut off from the majority answers 503 no-quorum to reads and writes in bounded time and applies nothing', async () => {
    const { waitForLeader, followerOf, isolate } = await cluster();
    const leader = await waitForLeader();
    await request(`${leader.url}/v1/kv/a`, { method: 'PUT', body: 'before' });
    const follower = await followerOf(leader);
    isolate(follower.service.id);
    await request(`${leader.url}/v1/kv/a`, { method: 'PUT', body: 'after' });
    // Once its election timeout passes it knows no leader; every request is refused at once.
    await waitFor('the cut-off node to lose its leader', () => (follower.service.runtime.node.leaderId === 0 ? true : undefined));
    const started = Date.now();
    for (const consistency of ['linearizable', 'lease']) {
      const read = await request(`${follower.url}/v1/kv/a?consistency=${consistency}`);
      expect(read.status, consistency).toBe(503);
      expect(read.json.error.code).toBe('no-quorum');
    }
    const write = await request(`${follower.url}/v1/kv/b`, { method: 'PUT', body: 'x' });
    expect(write.status).toBe(503);
    expect(write.json.error.code).toBe('no-quorum');
    expect(write.headers['retry-after']).toBe('1');
    expect(Date.now() - started).toBeLessThan(1000);
    // Stale reads, asked for explicitly, show that its state is behind.
    expect((await request(`${follower.url}/v1/kv/a?consistency=stale`)).json.value).toBe('before');
    expect((await request(`${leader.url}/v1/kv/b`)).status).toBe(404);
  });

  test('a cut-off leader never applies a write or serves a read: 503 no-quorum once its deadline or step-down comes', async () => {
    const { waitForLeader, isolate, servers } = await cluster({ node: { proposalTimeoutMs: 1000, readTimeoutMs: 1000 } });
    const leader = await waitForLeader();
    await request(`${leader.url}/v1/kv/a`, { method: 'PUT', body: 'old' });
    isolate(leader.service.id);
    const started = Date.now();
    const [write, read] = await Promise.all([request(`${leader.url}/v1/kv/a`, { method: 'PUT', body: 'lost' }), request(`${leader.url}/v1/kv/a`)]);
    expect(write.status).toBe(503);
    expect(write.json.error.code).toBe('no-quorum');
    expect(read.status).toBe(503);
    expect(read.json.error.code).toBe('no-quorum');
    expect(Date.now() - started).toBeLessThan(2500);
    const others = [...servers.values()].filter((server) => server !== leader);
    const next = await waitFor('a new leader', () => others.find((server) => server.service.runtime.node.role === 'leader'));
    expect((await request(`${next.url}/v1/kv/a`)).json.value).toBe('old');
    const lease = await request(`${leader.url}/v1/kv/a?consistency=lease`);
    expect(lease.status).toBe(503);
  });

  test('concurrent puts to one key through every node: the last committed wins and every client sees the same order', async () => {
    const { waitForLeader, servers } = await cluster();
    await waitForLeader();
    const nodes = [...servers.values()];
    const puts = await Promise.all(
      Array.from({ length: 30 }, (_, i) => request(`${(nodes[i % nodes.length] as (typeof nodes)[number]).url}/v1/kv/hot`, { method: 'PUT', body: `w${i}` }).then((answer) => ({ value: `w${i}`, ...answer.json }))),
    );
    const ordered = puts.sort((a, b) => a.index - b.index);
    // Each put replaced exactly the one before it in log order: one total order.
    ordered.forEach((put, i) => expect(put.previous).toBe(i === 0 ? null : (ordered[i - 1] as { value: string }).value));
    const last = (ordered[ordered.length - 1] as { value: string }).value;
    for (const server of nodes) expect((await request(`${server.url}/v1/kv/hot`)).json.value).toBe(last);
  });
});

describe('sessions', () => {
  test('a session-stamped write retried after it was applied returns its original result and applies once', async () => {
    const { waitForLeader } = await cluster();
    const leader = await waitForLeader();
    const { clientId } = (await request(`${leader.url}/v1/session`, { method: 'POST' })).json;
    expect(clientId).toBeGreaterThan(0);
    const stamp = { 'raftlab-client-id': String(clientId), 'raftlab-sequence': '1', 'raftlab-lowest-pending': '1' };
    const cas = () => request(`${leader.url}/v1/kv/once/cas`, { method: 'POST', body: JSON.stringify({ expected: null, value: 'mine' }), headers: { ...stamp, 'content-type': 'application/json' } });
    const first = await cas();
    const retry = await cas();
    expect(first.status).toBe(200);
    // Without the session the retry would fail: the key is no longer absent.
    expect(retry.status).toBe(200);
    expect(retry.json).toMatchObject({ key: 'once', value: 'mine' });
    const acknowledged = await request(`${leader.url}/v1/kv/once`, {
      method: 'PUT',
      body: 'x',
      headers: { 'raftlab-client-id': String(clientId), 'raftlab-sequence': '2', 'raftlab-lowest-pending': '2' },
    });
    expect(acknowledged.json.previous).toBe('mine');
    const late = await cas();
    expect(late.status).toBe(409);
    expect(late.json.error.code).toBe('sequence-acknowledged');
  });

  test('unstamped writes survive the eviction of the server session: it is registered again', async () => {
    const { waitForLeader } = await cluster({ node: { machine: { sessionCountMax: 2 } } });
    const leader = await waitForLeader();
    expect((await request(`${leader.url}/v1/kv/a`, { method: 'PUT', body: '1' })).status).toBe(200);
    // Two client registrations evict the server's session (least recently active).
    await request(`${leader.url}/v1/session`, { method: 'POST' });
    await request(`${leader.url}/v1/session`, { method: 'POST' });
    const put = await request(`${leader.url}/v1/kv/a`, { method: 'PUT', body: '2' });
    expect(put.status).toBe(200);
    expect(put.json.previous).toBe('1');
  });

  test('256 concurrent unstamped writes all apply through the server session', async () => {
    const { waitForLeader } = await cluster();
    const leader = await waitForLeader();
    const answers = await Promise.all(Array.from({ length: 256 }, (_, i) => request(`${leader.url}/v1/kv/c${i % 8}`, { method: 'PUT', body: String(i) })));
    expect(answers.filter((answer) => answer.status !== 200).map((answer) => answer.text)).toEqual([]);
    expect(new Set(answers.map((answer) => answer.json.index)).size).toBe(256);
  });
});

describe('graceful shutdown', () => {
  test('shutdown drains the request in flight, refuses new ones, and hands leadership over before stopping', async () => {
    const { waitForLeader, servers, network } = await cluster();
    const leader = await waitForLeader();
    const leaderId = leader.service.id;
    // Hold the leader's appends so that a write stays in flight while shutdown starts.
    network.setFilter((message) => (message.from === leaderId && message.type === 'append' && message.entries.count > 0 ? 'drop' : 'deliver'));
    const inFlight = request(`${leader.url}/v1/kv/drain`, { method: 'PUT', body: 'kept' });
    await waitFor('the write to be pending', () => (leader.service.runtime.status().pendingProposals > 0 ? true : undefined));
    const shutdown = leader.shutdown();
    const refused = await request(`${leader.url}/v1/kv/drain`).catch((error: NodeJS.ErrnoException) => error.code);
    expect(refused).toBe('ECONNREFUSED');
    network.setFilter(null);
    const answer = await inFlight;
    expect(answer.status).toBe(200);
    await shutdown;
    // The transfer completed before the node stopped: a new leader is already there, no election timeout needed.
    const others = [...servers.values()].filter((server) => server !== leader);
    const next = others.find((server) => server.service.runtime.node.role === 'leader');
    expect(next).toBeDefined();
    expect(leader.service.runtime.isStopped).toBe(true);
    expect((await request(`${(next as (typeof others)[number]).url}/v1/kv/drain`)).json.value).toBe('kept');
  });
});
