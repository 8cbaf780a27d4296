/**
 * bench:cluster: three raftlab node processes on loopback over TCP and/or WebSocket, batches of
 * 1000 commands (process-cluster.ts). Prints a human summary and writes a BenchRun of suite
 * `cluster-process` to results/cluster/ (latest.json, latest.md).
 *
 *   pnpm bench:cluster [--transport tcp|ws|both] [--seconds N] [--quick] [--inflight K]
 *                      [--latency-samples N] [--latency-gap-ms G] [--hold-commit-notices] [--profile] [--json] [--no-write]
 *
 * --quick: 3 timed seconds per transport and 1000 latency samples (the CI size).
 * --latency-gap-ms: pause between single proposals (default 1: each finds the cluster idle; 0: back to back).
 * --hold-commit-notices: the nodes run with the runtime option of that name (see runtime.ts `send`).
 * --profile: every node runs with --cpu-prof; profiles go to results/profiles/cluster-<time>/<transport>/.
 */
import path from 'node:path';
import { parseArgs } from 'node:util';
import { finishRun, repositoryRoot, writeRun } from '../results.js';
import { type ClusterTransport, runProcessCluster } from './process-cluster.js';

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      transport: { type: 'string' },
      seconds: { type: 'string' },
      quick: { type: 'boolean' },
      inflight: { type: 'string' },
      'latency-samples': { type: 'string' },
      'latency-gap-ms': { type: 'string' },
      'hold-commit-notices': { type: 'boolean' },
      profile: { type: 'boolean' },
      json: { type: 'boolean' },
      'no-write': { type: 'boolean' },
    },
  });
  const quick = values.quick === true;
  const choice = values.transport ?? 'both';
  if (!['tcp', 'ws', 'both'].includes(choice)) throw new Error(`--transport must be tcp, ws or both, got ${choice}`);
  const transports: ClusterTransport[] = choice === 'both' ? ['tcp', 'ws'] : [choice as ClusterTransport];
  const seconds = Number(values.seconds ?? (quick ? 3 : 10));
  if (!(Number.isFinite(seconds) && seconds > 0)) throw new Error(`--seconds must be a positive number, got ${values.seconds}`);
  const latencySamples = Number(values['latency-samples'] ?? (quick ? 1000 : 3000));
  if (!(Number.isSafeInteger(latencySamples) && latencySamples >= 1)) throw new Error(`--latency-samples must be a positive integer, got ${values['latency-samples']}`);
  const inflight = values.inflight === undefined ? undefined : Number(values.inflight);
  if (inflight !== undefined && !(Number.isSafeInteger(inflight) && inflight >= 1)) throw new Error(`--inflight must be a positive integer, got ${values.inflight}`);
  const startedAt = new Date();
  const profileDirectory = values.profile === true ? path.join(repositoryRoot, 'results', 'profiles', `cluster-${startedAt.toISOString().replace(/[:.]/g, '')}`) : null;
  const result = await runProcessCluster({
    transports,
    seconds,
    latencySamples,
    latencyGapMs: Number(values['latency-gap-ms'] ?? 1),
    holdCommitNotices: values['hold-commit-notices'] === true,
    ...(inflight === undefined ? {} : { batchesInflightMax: inflight }),
    profileDirectory,
    log: (line) => console.error(line),
  });
  const unclean = result.processes.filter((exit) => exit.killed || exit.exitCode !== 0);
  const notes = [...result.notes];
  if (unclean.length > 0) notes.push(`node processes that did not exit cleanly: ${unclean.map((exit) => `${exit.transport}/${exit.id} code ${exit.exitCode} signal ${exit.signal}`).join(', ')}`);
  const run = finishRun({ mode: quick ? 'quick' : 'full', startedAt, notes, records: result.records });
  if (values.json === true) console.log(JSON.stringify(run, null, 2));
  else console.log(result.summary);
  for (const note of notes) console.error(`note: ${note}`);
  if (values['no-write'] !== true) {
    const written = writeRun(run, path.join(repositoryRoot, 'results', 'cluster'));
    console.error(`results: ${path.relative(repositoryRoot, written.runPath)}${written.report.ok ? `, report ${path.relative(repositoryRoot, written.report.markdownPath)}` : ` (report: ${written.report.reason})`}`);
  }
  if (unclean.length > 0) process.exitCode = 1;
}

main().catch((error: unknown) => {
  console.error(`bench:cluster: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  process.exit(1);
});
