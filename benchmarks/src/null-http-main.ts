/**
 * The null HTTP server of bench:http: a plain node:http server on 127.0.0.1 that reads each request's
 * body and answers 200 with a JSON body shaped and sized like the KV's answer to `PUT /v1/kv/:key`
 * (`{"key","previous","index"}`, same content type), keep-alive with the KV server's timeouts. It
 * does no replication, no disk I/O and no parsing beyond the path, so under the same autocannon load
 * on the same machine it is the most any Node HTTP service can answer here: the ceiling the KV's
 * figures are read against. It runs in its own process, as the KV leader does, reports its port over
 * IPC and exits when the driver disconnects.
 */
import http from 'node:http';

/** Request bodies are read up to this size; a longer one is refused (413), as the KV refuses them. */
const requestBodyBytesMax = 1 << 20;

if (process.send === undefined) throw new Error('null-http-main runs under bench:http (an IPC channel is required)');

const keyPrefix = '/v1/kv/';
const jsonContentType = 'application/json; charset=utf-8';
/** The last value seen, returned as `previous` the way the KV returns the value a put replaced. */
let previous: string | null = null;
/** Counts answered puts, in the place of the KV's log index (so the body grows as the KV's does). */
let index = 0;

/** The KV names the answering node in this header (api.ts nodeHeader); sent too, for the same bytes. */
const nodeHeader = 'raftlab-node';

function answer(response: http.ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  response.writeHead(status, { 'content-type': jsonContentType, 'content-length': Buffer.byteLength(text), [nodeHeader]: '0' });
  response.end(text);
}

// The KV server's timeouts (packages/kv/src/server.ts), so connections are kept alive alike.
const server = http.createServer({ requestTimeout: 60_000, headersTimeout: 20_000, keepAliveTimeout: 5000 }, (request, response) => {
  const chunks: Buffer[] = [];
  let bytes = 0;
  let refused = false;
  request.on('data', (chunk: Buffer) => {
    bytes += chunk.length;
    if (bytes > requestBodyBytesMax) refused = true;
    else chunks.push(chunk);
  });
  request.on('error', () => request.destroy());
  request.on('end', () => {
    if (refused) return answer(response, 413, { code: 'payload-too-large' });
    const url = request.url ?? '';
    if (!url.startsWith(keyPrefix)) return answer(response, 404, { code: 'not-found' });
    let key: string;
    try {
      key = decodeURIComponent(url.slice(keyPrefix.length).split('?')[0] as string);
    } catch {
      return answer(response, 400, { code: 'invalid-key' });
    }
    const value = Buffer.concat(chunks).toString('utf8');
    index += 1;
    answer(response, 200, { key, previous, index });
    previous = value;
  });
});
server.on('clientError', (_error, socket) => socket.destroy());
server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  process.send?.({ port: typeof address === 'object' && address !== null ? address.port : 0 });
});
process.on('disconnect', () => process.exit(0));
