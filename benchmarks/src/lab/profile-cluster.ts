/**
 * A profiling scenario (`pnpm run profile tcp-3`, profile-scenarios.ts): a RaftRuntime cluster in
 * this process over the memory, TCP or WebSocket transport, proposing 1000-entry batches with 8 in
 * flight for a fixed time, then stopping every runtime and socket and exiting on its own (the
 * profilers wait for the process to end). Prints one line: entries committed and the rate.
 *
 *   node benchmarks/dist/lab/profile-cluster.js --transport tcp --nodes 3 --seconds 10
 */
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

import { labTransports, type LabTransport } from './options.js';
import { RuntimeCluster, commandBatch } from './runtime-cluster.js';

/** Batches kept in flight. */
const batchesInflight = 8;

async function main(argv: readonly string[]): Promise<void> {
  const { values } = parseArgs({ args: [...argv], options: { transport: { type: 'string' }, nodes: { type: 'string' }, seconds: { type: 'string' } }, strict: true });
  const transport = (values.transport ?? 'tcp') as LabTransport;
  if (!labTransports.includes(transport)) throw new Error(`--transport must be one of ${labTransports.join(', ')}, got ${transport}`);
  const nodes = Number(values.nodes ?? 3);
  const seconds = Number(values.seconds ?? 10);
  if (!(Number.isSafeInteger(nodes) && nodes >= 1)) throw new Error(`--nodes expects a positive integer, got ${values.nodes}`);
  if (!(seconds > 0)) throw new Error(`--seconds expects a positive number, got ${values.seconds}`);
  const cluster = await RuntimeCluster.create({ transport, nodes, seed: 1 });
  try {
    await cluster.start();
    const leader = await cluster.stableLeader();
    const batch = commandBatch(1000, 16, 0);
    const commitBefore = leader.node.commitIndex;
    const startedAt = performance.now();
    const endAt = startedAt + seconds * 1000;
    const proposer = async (): Promise<void> => {
      while (performance.now() < endAt) await leader.proposeBatch(batch);
    };
    await Promise.all(Array.from({ length: batchesInflight }, proposer));
    const committed = leader.node.commitIndex - commitBefore;
    const elapsed = (performance.now() - startedAt) / 1000;
    process.stdout.write(`${transport}-${nodes}: ${committed} entries committed in ${elapsed.toFixed(1)} s (${Math.round(committed / elapsed)} entries/s)\n`);
  } finally {
    await cluster.stop();
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main(process.argv.slice(2)).catch((error: unknown) => {
    process.stderr.write(`profile-cluster: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exitCode = 1;
  });
}
