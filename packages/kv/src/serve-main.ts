#!/usr/bin/env node
/**
 * Entry point of a KV node process (the local launcher spawns it; `raftlab kv serve` runs the same
 * code): see serve.ts for the arguments.
 */
import { runServeProcess } from './serve.js';

runServeProcess(process.argv.slice(2)).then(
  (code) => {
    // Flush the logger's pending writes, then leave even if a socket lingers.
    setTimeout(() => process.exit(code), 50).unref();
    process.exitCode = code;
  },
  (error: unknown) => {
    console.error(`raftlab kv serve: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    process.exit(1);
  },
);
