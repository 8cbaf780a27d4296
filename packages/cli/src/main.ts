#!/usr/bin/env node
/**
 * The `raftlab` command. Each subcommand lives in its own module under commands/ and registers
 * itself on the program; this file only wires them together and turns errors into exit codes:
 * 0 success, 1 failure, 2 bad usage (commander's own errors included).
 */
import { Command, CommanderError } from 'commander';
import { commandModules } from './commands/index.js';
import { UsageError } from './usage.js';

async function main(argv: readonly string[]): Promise<void> {
  const program = new Command('raftlab')
    .description('raftlab: a zero-copy Raft library and performance lab')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
  for (const module of commandModules) module.register(program);
  try {
    await program.parseAsync(argv as string[], { from: 'node' });
  } catch (error) {
    if (error instanceof CommanderError) {
      // Help and version exit 0; everything else commander rejects is a usage error.
      process.exitCode = error.exitCode === 0 ? 0 : 2;
      return;
    }
    if (error instanceof UsageError) {
      console.error(`raftlab: ${error.message}`);
      process.exitCode = 2;
      return;
    }
    console.error(`raftlab: ${error instanceof Error ? error.message : String(error)}`);
    process.exitCode = 1;
  }
}

void main(process.argv);
