// Runs the peers step on its own and prints a table (or the results as JSON):
//
//   npx tsc -b tsconfig.build.json            # once: builds benchmarks/dist
//   node benchmarks/peers/run.mjs [--quick] [--json] [--peer etcd-raft-3.4|liferaft]
//
// The bench lab calls the same runPeers() and puts the figures beside raftlab's own.
import { runPeers } from '../dist/peers.js';

const quick = process.argv.includes('--quick');
const json = process.argv.includes('--json');
const peerAt = process.argv.indexOf('--peer');
const peers = peerAt >= 0 ? [process.argv[peerAt + 1]] : undefined;
const started = performance.now();
const log = (line) => process.stderr.write(`${((performance.now() - started) / 1000).toFixed(1).padStart(6)} s  ${line}\n`);
const results = await runPeers({ quick, log, ...(peers === undefined ? {} : { peers }) });

if (json) {
  process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
} else {
  const format = (value) => (value >= 1e6 ? `${(value / 1e6).toFixed(2)}M` : value >= 1e4 ? `${(value / 1e3).toFixed(0)}k` : value.toFixed(0));
  for (const result of results) {
    const name = `${result.peer} ${result.variant}`.padEnd(28);
    if (result.status !== 'ok') {
      process.stdout.write(`${name} skipped: ${result.reason}\n`);
      continue;
    }
    const meta = result.meta;
    const runs = result.entriesPerSecond.map(format).join(' ');
    process.stdout.write(
      `${name} median ${format(meta.medianEntriesPerSecond)} entries/s  (min ${format(meta.minEntriesPerSecond)}, max ${format(meta.maxEntriesPerSecond)}, spread ${meta.spreadPercent.toFixed(0)}%; runs: ${runs})\n`,
    );
  }
}
