/**
 * `raftlab simulate` and `raftlab sim`: thin wrappers over the simulator's own command line
 * (@raftlab/sim/cli), with the same flags, output and exit codes as `pnpm simulate` and `pnpm sim`:
 *
 *   raftlab sim --seeds 1..500 [--nodes 3..10] [--json] [--workers N]
 *   raftlab simulate --nodes 5 --commands-file cmds.txt [--loss 0.1] [--seed 7]
 *
 * Every argument after the command word goes to the simulator untouched (its --help included).
 */
import type { Command } from 'commander';
import { type Output, main as simulatorMain } from '@raftlab/sim/cli';

/** Runs the simulator's CLI on `args` (command word first) against this process's streams. */
export async function runSimulator(args: readonly string[]): Promise<number> {
  const output: Output = {
    stdout: (text) => process.stdout.write(text),
    stderr: (text) => process.stderr.write(text),
    stderrIsTTY: process.stderr.isTTY === true,
  };
  return simulatorMain(args, output);
}

/** Registers `raftlab simulate` and `raftlab sim`. */
export function register(program: Command): void {
  const commands = [
    ['simulate', 'apply i64 commands through a simulated faulty cluster and print each node\'s value (as pnpm simulate)'],
    ['sim', 'run simulator seeds with the safety and liveness checkers (as pnpm sim)'],
  ] as const;
  for (const [name, description] of commands) {
    program
      .command(name)
      .description(description)
      .helpOption(false)
      .allowUnknownOption()
      .allowExcessArguments()
      .argument('[arguments...]', `simulator options: see raftlab ${name} --help`)
      .action(async (args: string[]) => {
        process.exitCode = await runSimulator([name, ...args]);
      });
  }
}
