/**
 * Scenarios for flamegraph sessions (`pnpm profile <name> [--tool clinic|0x]`,
 * scripts/src/profile.ts). Each is a built JS entry point that runs one hot loop for about ten
 * seconds, long enough for the sampling profiler to see the steady state rather than start-up and
 * JIT warm-up. The profiler writes results/profiles/<name>.html.
 *
 * To add one (for example `tcp-3`: a 3-node cluster over the TCP transport on 127.0.0.1): write an
 * entry point under benchmarks/src/ that starts the cluster, drives proposals for about 10 s, stops
 * every server and exits on its own (the profiler waits for the process to end; a scenario that
 * never exits produces no profile); then add `{ name: 'tcp-3', script: builtScript('./<file>.js'), args }`
 * below and build.
 */
import { type ScriptWorkload, builtScript } from './check-workloads.js';

/** One profiling scenario. */
export type ProfileScenario = ScriptWorkload;

/** Every profiling scenario. */
export const profileScenarios: readonly ProfileScenario[] = [
  {
    name: 'memory-3',
    script: builtScript('./workloads/memory-cluster.js'),
    // About 10 s natively on a 2-core Xeon: 55 million 16-byte entries through a 3-node in-memory cluster.
    args: ['--nodes', '3', '--batches', '55000', '--batch', '1000', '--entry-bytes', '16', '--election-trials', '0'],
    description: '3 RaftNodes in memory, proposing 1000-entry batches of 16-byte entries for about 10 s',
  },
  ...(['memory', 'tcp', 'ws'] as const).flatMap((transport) =>
    [3, 5].map((nodes) => ({
      name: `runtime-${transport}-${nodes}`,
      script: builtScript('./lab/profile-cluster.js'),
      args: ['--transport', transport, '--nodes', String(nodes), '--seconds', '10'],
      description: `${nodes} RaftRuntimes in one process over the ${transport} transport${transport === 'memory' ? '' : ' (127.0.0.1)'}, 8 batches of 1000 in flight, 10 s`,
    })),
  ),
  // Short names for the common ones.
  { name: 'tcp-3', script: builtScript('./lab/profile-cluster.js'), args: ['--transport', 'tcp', '--nodes', '3', '--seconds', '10'], description: 'alias of runtime-tcp-3' },
  { name: 'ws-3', script: builtScript('./lab/profile-cluster.js'), args: ['--transport', 'ws', '--nodes', '3', '--seconds', '10'], description: 'alias of runtime-ws-3' },
];
