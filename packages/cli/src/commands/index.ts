/**
 * The subcommand modules of `raftlab`, in the order help lists them. A module exports
 * `register(program)`, adding its command(s) to the program.
 */
import type { Command } from 'commander';
import * as consoleCommand from './console.js';
import * as kv from './kv.js';

/** A subcommand module. */
export interface CommandModule {
  register(program: Command): void;
}

/** Every subcommand module. */
export const commandModules: readonly CommandModule[] = [kv, consoleCommand];
