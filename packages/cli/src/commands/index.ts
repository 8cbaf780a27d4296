/**
 * The subcommand modules of `raftlab`, in the order help lists them. A module exports
 * `register(program)`, adding its command(s) to the program.
 */
import type { Command } from 'commander';
import * as cluster from './cluster.js';
import * as consoleCommand from './console.js';
import * as kv from './kv.js';
import * as node from './node.js';
import * as simulate from './simulate.js';

/** A subcommand module. */
export interface CommandModule {
  register(program: Command): void;
}

/** Every subcommand module. */
export const commandModules: readonly CommandModule[] = [cluster, node, kv, consoleCommand, simulate];
