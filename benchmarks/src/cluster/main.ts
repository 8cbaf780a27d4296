/**
 * bench:cluster: three raftlab node processes on loopback over TCP and/or WebSocket, batches of
 * 1000 commands (process-cluster.ts). Prints a human summary and writes a BenchRun of suite
 * `cluster-process` to results/cluster/ (latest.json, latest.md).
 *
 *   pnpm bench:cluster [--transport tcp|ws|both] [--seconds N] [--quick] [--inflight K]
 *                      [--latency-samples N] [--latency-gap-ms G] [--hold-commit-notices] [--profile] [--json] [--no-write] [--help]
 *
 * --quick: 3 timed seconds per transport and 1000 latency samples (the CI size).
 * --latency-gap-ms: pause between single proposals (default 1: each finds the cluster idle; 0: back to back).
 * --hold-commit-notices: the nodes run with the runtime option of that name (see runtime.ts `send`).
 * --profile: every node runs with --cpu-prof; profiles go to results/profiles/cluster-<time>/<transport>/.
 *
 * A bad command line prints `bench:cluster: <problem>` and the usage line and exits with code 2;
 * a failure of the run itself prints its stack and exits with code 1.
 */
import path from 'node:path';
import { choiceOption, numberOption, parseCommandLine, wholeNumberOption } from '../cli-args.js';
import { finishRun, repositoryRoot, writeRun } from '../results.js';
import { type ClusterTransport, runProcessCluster } from './process-cluster.js';

const clusterCommand = {
  program: 'bench:cluster',
  usage: '[--transport tcp|ws|both] [--seconds N] [--quick] [--inflight K] [--latency-samples N] [--latency-gap-ms G] [--hold-commit-notices] [--profile] [--json] [--no-write] [--help]',
  help: [
    ['--transport', 'cluster(s) to measure, one after the other (default both)'],
    ['--seconds', 'timed seconds of throughput per transport (default 10; --quick 3)'],
    ['--quick', '3 timed seconds per transport and 1000 latency samples (the CI size)'],
    ['--inflight', 'batches of 1000 commands in flight in the leader (default 8)'],
    ['--latency-samples', 'single proposals timed on the idle cluster (default 3000; --quick 1000)'],
    ['--latency-gap-ms', 'pause between single proposals and between probe samples (default 1; 0: back to back)'],
    ['--hold-commit-notices', 'the nodes run with the runtime option of that name'],
    ['--profile', 'every node runs with --cpu-prof; profiles go to results/profiles/cluster-<time>/<transport>/'],
    ['--json', 'print the BenchRun as JSON instead of the summary'],
    ['--no-write', 'do not write results/cluster/'],
  ]
    .map(([flag, text]) => `  ${(flag as string).padEnd(23)}${text as string}`)
    .join('\n'),
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
} as const;

async function main(): Promise<void> {
  const values = parseCommandLine(clusterCommand);
  const quick = values.quick === true;
  const choice = choiceOption(clusterCommand, 'transport', values.transport, ['tcp', 'ws', 'both'], 'both');
  const transports: ClusterTransport[] = choice === 'both' ? ['tcp', 'ws'] : [choice];
  const seconds = numberOption(clusterCommand, 'seconds', values.seconds, quick ? 3 : 10, (value) => Number.isFinite(value) && value > 0, 'a positive number');
  const latencySamples = wholeNumberOption(clusterCommand, 'latency-samples', values['latency-samples'], quick ? 1000 : 3000);
  const latencyGapMs = numberOption(clusterCommand, 'latency-gap-ms', values['latency-gap-ms'], 1, (value) => Number.isFinite(value) && value >= 0, 'a number >= 0');
  const inflight = values.inflight === undefined ? undefined : wholeNumberOption(clusterCommand, 'inflight', values.inflight, 0);
  const startedAt = new Date();
  const profileDirectory = values.profile === true ? path.join(repositoryRoot, 'results', 'profiles', `cluster-${startedAt.toISOString().replace(/[:.]/g, '')}`) : null;
  const result = await runProcessCluster({
    transports,
    seconds,
    latencySamples,
    latencyGapMs,
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
