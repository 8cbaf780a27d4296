// liferaft peer harness: raftlab's reference core workload on the npm package `liferaft`, so the
// bench lab can report raftlab's figures beside a JavaScript Raft library measured in the same
// session on the same machine.
//
// The workload, as close to raftlab's core benchmark as liferaft's API allows: three liferaft
// nodes in this one process, each with liferaft's own Log over an in-memory store (memdown, the
// store liferaft's own test suite uses), messages handed directly from one node's `write` to the
// destination node (an in-memory transport: no sockets, no serialization, no disk). The first
// leader is elected before the clock starts. Then, batch after batch: propose batchEntries
// commands of payloadBytes bytes at the leader (liferaft's `command()`, one call per command:
// its API has no batch proposal, and concurrent calls race on the next log index, so each call
// is awaited) and wait until the batch is committed and applied on all three nodes (a counter
// state machine listening to each node's 'commit' event). liferaft tells followers the commit
// index only in its next append or heartbeat, so after the leader commits a batch the harness
// sends one heartbeat at once instead of waiting for the timer (as etcd's leader broadcasts the
// new commit index right after it advances).
//
// Each run is capped by time: batches start until runSeconds have passed, and the figure is
// applied entries / elapsed seconds. Each run uses a fresh cluster, so its log starts empty.
//
// Output: one JSON line on stdout. Exit 3 with a message on stderr when liferaft or memdown cannot
// be loaded; exit 1 when the cluster fails (a node applies a wrong number of commands, the nodes'
// checksums differ, or a batch does not finish within batchSecondsMax).
//
// Options (flags or environment variables):
//   --runs N            RAFTLAB_LIFERAFT_RUNS            timed runs (default 5)
//   --run-seconds S     RAFTLAB_LIFERAFT_RUN_SECONDS     time cap of one timed run (default 2)
//   --warmup-seconds S  RAFTLAB_LIFERAFT_WARMUP_SECONDS  untimed run first (default 1; 0 = none)
//   --batch N           RAFTLAB_LIFERAFT_BATCH           commands per batch (default 1000)
import { createRequire } from 'node:module';
import { performance } from 'node:perf_hooks';

const require = createRequire(import.meta.url);

/** Loads liferaft and memdown, or exits 3 (the runner's "skipped") saying what is missing. */
function loadLibraries() {
  try {
    return {
      Raft: require('liferaft'),
      Log: require('liferaft/log.js'),
      memdown: require('memdown'),
      liferaftVersion: require('liferaft/package.json').version,
      memdownVersion: require('memdown/package.json').version,
    };
  } catch (error) {
    process.stderr.write(`liferaft: skipped: cannot load liferaft or memdown (${error && error.message ? error.message.split('\n')[0] : error}); run 'npx pnpm@10 install' at the repository root\n`);
    process.exit(3);
  }
}
const { Raft, Log, memdown, liferaftVersion, memdownVersion } = loadLibraries();

/** Size of one command, the same as raftlab's core benchmark. */
const payloadBytes = 16;
/** A batch that takes longer than this means the cluster stopped making progress. */
const batchSecondsMax = 60;
/** Bound on waiting for the first leader. */
const electionSecondsMax = 10;

function option(flag, variable, fallback) {
  const at = process.argv.indexOf(flag);
  const text = at >= 0 ? process.argv[at + 1] : process.env[variable];
  if (text === undefined || text === '') return fallback;
  const value = Number(text);
  if (!Number.isFinite(value) || value < 0) fail(`bad ${flag} / ${variable}: ${JSON.stringify(text)}`);
  return value;
}

function fail(message) {
  process.stderr.write(`liferaft-harness: ${message}\n`);
  process.exit(1);
}

const runCount = option('--runs', 'RAFTLAB_LIFERAFT_RUNS', 5);
const runSeconds = option('--run-seconds', 'RAFTLAB_LIFERAFT_RUN_SECONDS', 2);
const warmupSeconds = option('--warmup-seconds', 'RAFTLAB_LIFERAFT_WARMUP_SECONDS', 1);
const batchEntries = option('--batch', 'RAFTLAB_LIFERAFT_BATCH', 1000);
if (runCount < 1 || !Number.isInteger(runCount)) fail(`--runs must be a positive integer, got ${runCount}`);
if (batchEntries < 1 || !Number.isInteger(batchEntries)) fail(`--batch must be a positive integer, got ${batchEntries}`);
if (runSeconds <= 0) fail(`--run-seconds must be positive, got ${runSeconds}`);

/**
 * liferaft ships no transport: a subclass provides `write`. A node's peers are "child" rafts
 * whose address is the peer's; `write` on a child hands the packet to that peer's root node and
 * its reply back to the caller, all in memory.
 */
function makeClusterClass(registry) {
  return class MemoryRaft extends Raft {
    write(packet, reply) {
      const target = registry.get(this.address);
      if (target === undefined) return reply(new Error(`no node at ${this.address}`));
      target.emit('data', packet, (answer) => reply(undefined, answer));
    }
  };
}

/**
 * The counter state machine: counts applied commands and sums their sequence numbers. liferaft
 * can emit 'commit' more than once for the same entry (its commitEntries runs once per quorum of
 * acknowledgements, unserialized, and overlapping calls both see the entry uncommitted), so the
 * machine applies each sequence number once, as a client-session table would, and counts the
 * repeats it dropped.
 */
function attachStateMachine(node) {
  const machine = { appliedEntries: 0, repeatedCommits: 0, checksum: 0n, seen: new Uint8Array(1 << 16), onApply: null };
  node.on('commit', (command) => {
    const sequence = parseInt(command.data, 16);
    if (sequence >= machine.seen.length) {
      const grown = new Uint8Array(Math.max(machine.seen.length * 2, sequence + 1));
      grown.set(machine.seen);
      machine.seen = grown;
    }
    if (machine.seen[sequence] === 1) {
      machine.repeatedCommits += 1;
      return;
    }
    machine.seen[sequence] = 1;
    machine.appliedEntries += 1;
    machine.checksum += BigInt(sequence);
    if (machine.onApply !== null) machine.onApply();
  });
  return machine;
}

function sleep(milliseconds) {
  return new Promise((resolve) => setTimeout(resolve, milliseconds));
}

async function newCluster(runIndex) {
  const registry = new Map();
  const MemoryRaft = makeClusterClass(registry);
  const addresses = ['node-1', 'node-2', 'node-3'].map((name) => `${name}-run-${runIndex}`);
  // Election timeouts far above any pause the workload causes, so no election starts mid-run;
  // the first leader is made by promote() rather than by waiting for a timeout.
  const options = { Log, adapter: memdown, 'election min': '2 seconds', 'election max': '4 seconds', heartbeat: '200 ms' };
  const nodes = addresses.map((address) => new MemoryRaft(address, { ...options }));
  for (const node of nodes) registry.set(node.address, node);
  for (const node of nodes) for (const other of addresses) if (other !== node.address) node.join(other);
  const machines = nodes.map(attachStateMachine);
  const errors = [];
  for (const node of nodes) node.on('error', (error) => errors.push(String(error && error.message)));
  const leader = nodes[0];
  const elected = new Promise((resolve) => leader.once('leader', resolve));
  await leader.promote();
  const timeout = sleep(electionSecondsMax * 1000).then(() => 'timeout');
  if ((await Promise.race([elected, timeout])) === 'timeout') fail(`no leader within ${electionSecondsMax} s`);
  return { nodes, machines, leader, errors };
}

function waitApplied(cluster, target) {
  return new Promise((resolve, reject) => {
    const check = () => {
      if (cluster.machines.every((machine) => machine.appliedEntries >= target)) {
        for (const machine of cluster.machines) machine.onApply = null;
        clearTimeout(timer);
        resolve();
      }
    };
    const timer = setTimeout(() => {
      for (const machine of cluster.machines) machine.onApply = null;
      const applied = cluster.machines.map((machine) => machine.appliedEntries).join(', ');
      reject(new Error(`batch not applied on all nodes within ${batchSecondsMax} s (applied ${applied}, target ${target}; last errors: ${cluster.errors.slice(-3).join(' | ')})`));
    }, batchSecondsMax * 1000);
    for (const machine of cluster.machines) machine.onApply = check;
    check();
  });
}

function waitLeaderApplied(cluster, target) {
  const machine = cluster.machines[0];
  return new Promise((resolve) => {
    if (machine.appliedEntries >= target) return resolve();
    machine.onApply = () => {
      if (machine.appliedEntries >= target) {
        machine.onApply = null;
        resolve();
      }
    };
  });
}

/** Set once a cluster was ended: see the unhandledRejection handler below. */
let endedAny = false;

function stopCluster(cluster) {
  endedAny = true;
  for (const node of cluster.nodes) node.end();
}

// liferaft's heartbeat timer callback is async: when it awaits a packet while the node is ended,
// it resumes on `raft.timers === null` and rejects (TypeError: reading 'active'), which would
// crash the harness between runs. Only that rejection, from liferaft, after an end(), is ignored.
process.on('unhandledRejection', (error) => {
  const stack = error && error.stack ? String(error.stack) : String(error);
  if (endedAny && error instanceof TypeError && stack.includes('liferaft') && stack.includes('of null')) return;
  fail(stack);
});

/** Runs batches on a fresh cluster until `seconds` have passed; returns the run's figures. */
async function runOnce(runIndex, seconds) {
  const cluster = await newCluster(runIndex);
  const { leader } = cluster;
  let sequence = 0;
  // Rate of each batch: liferaft's log slows down as it grows (see README), and this shows it.
  const batchEntriesPerSecond = [];
  const start = performance.now();
  const deadline = start + seconds * 1000;
  while (performance.now() < deadline) {
    const target = sequence + batchEntries;
    const batchStart = performance.now();
    for (; sequence < target; sequence++) {
      await leader.command({ data: sequence.toString(16).padStart(payloadBytes, '0') });
    }
    // Followers learn the commit index from the next append: send it now that the leader has
    // committed the whole batch.
    await Promise.race([waitLeaderApplied(cluster, target), sleep(batchSecondsMax * 1000)]);
    leader.message(Raft.FOLLOWER, await leader.packet('append'));
    await waitApplied(cluster, target);
    for (const [position, machine] of cluster.machines.entries()) {
      if (machine.appliedEntries !== target) fail(`node ${position + 1} applied ${machine.appliedEntries} commands, expected ${target}`);
    }
    batchEntriesPerSecond.push(Math.round(batchEntries / ((performance.now() - batchStart) / 1000)));
  }
  const elapsedSeconds = (performance.now() - start) / 1000;
  const checksums = cluster.machines.map((machine) => machine.checksum);
  if (checksums.some((checksum) => checksum !== checksums[0])) fail(`checksums differ between nodes: ${checksums.join(', ')}`);
  stopCluster(cluster);
  const repeatedCommits = cluster.machines.map((machine) => machine.repeatedCommits);
  return { entriesPerSecond: sequence / elapsedSeconds, appliedEntries: sequence, checksum: checksums[0], elapsedSeconds, repeatedCommits, batchEntriesPerSecond };
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

async function main() {
  if (warmupSeconds > 0) await runOnce(0, warmupSeconds);
  const runs = [];
  for (let run = 1; run <= runCount; run++) runs.push(await runOnce(run, runSeconds));
  const entriesPerSecond = runs.map((run) => run.entriesPerSecond);
  const report = {
    peer: 'liferaft',
    liferaftVersion,
    memdownVersion,
    nodeVersion: process.version,
    nodes: 3,
    batch: batchEntries,
    runs: runCount,
    runSeconds,
    warmupSeconds,
    payloadBytes,
    variants: [
      {
        variant: 'command-each',
        entriesPerSecond,
        medianPerSecond: median(entriesPerSecond),
        appliedEntriesPerRun: runs.map((run) => run.appliedEntries),
        // Sum of the applied sequence numbers on every node: n(n-1)/2 for n applied commands.
        checksums: runs.map((run) => run.checksum.toString()),
        // 'commit' events dropped as repeats, per run and node (see attachStateMachine).
        repeatedCommits: runs.map((run) => run.repeatedCommits),
        batchEntriesPerSecond: runs.map((run) => run.batchEntriesPerSecond),
      },
    ],
  };
  process.stdout.write(`${JSON.stringify(report)}\n`);
  // liferaft's timers (heartbeat, election) are cleared by end(); exit anyway in case a library
  // timer outlives it.
  process.exit(0);
}

main().catch((error) => fail(error && error.stack ? error.stack : String(error)));
