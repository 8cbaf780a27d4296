/** Worker thread for `pnpm sim`: runs one seed per request and posts its result back. */
import { parentPort } from 'node:worker_threads';
import type { WorkerRequest } from './pool.js';
import { runSeed } from './run.js';

if (parentPort === null) throw new Error('worker.js must run as a worker thread');
const port = parentPort;
port.on('message', (request: WorkerRequest) => {
  port.postMessage(runSeed({ seed: request.seed, nodes: request.nodes, planted: request.planted, verify: request.verify }));
});
