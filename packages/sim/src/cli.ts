#!/usr/bin/env node
/**
 * The simulator's command line (root scripts `pnpm sim` and `pnpm simulate`; `raftlab simulate`
 * in the CLI package reuses `main`).
 *
 *   sim --seeds 1..500 [--nodes 3..10] [--json] [--workers N] [--plant BUG[,BUG]] [--no-verify]
 *   sim --seed N [--nodes 3..10] [--trace]
 *   sim --soak                      (seeds 1..10000)
 *   simulate --nodes 5 --commands-file cmds.txt [--loss 0.1] [--seed 7] [...]
 *
 * Progress goes to stderr (a bar on a terminal, a periodic line otherwise), results to stdout.
 * Exit status: 0 all good, 1 a violation, liveness failure or simulate error, 2 bad arguments.
 */
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { pathToFileURL } from 'node:url';
import { type PlantedBugName, plantedBugNames } from './cluster.js';
import { runSeeds } from './pool.js';
import { type NodeRange, type SeedResult, defaultNodeRange, runSeed } from './run.js';
import { type SimulateFaults, type SimulateOptions, simulate, simulateNodesMax } from './simulate.js';
import { type SimSummary, formatRange, formatSummary, reproduceCommand, summarize } from './summary.js';

/** Bad command-line arguments: the message says what and how to fix it. */
export class UsageError extends Error {
  /** Stable code for callers. */
  readonly code = 'usage' as const;
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** Usage text of both commands. */
export const usage = `usage:
  sim --seeds A..B [--nodes 3..10] [--json] [--workers N] [--plant BUG[,BUG]] [--no-verify]
  sim --seed N [--nodes 3..10] [--trace] [--plant BUG[,BUG]]
  sim --soak [--nodes 3..10] [--json]            (seeds 1..10000)
  simulate --nodes N --commands-file PATH|- [--seed N] [--loss P] [--duplicate P] [--reorder P]
           [--delay TICKS] [--spread TICKS] [--crashes] [--partitions] [--down 1,2]
           [--partition 1,2/3,4] [--clients N] [--check light|full] [--json]

  --seeds     seeds to run, inclusive (a single number runs one)
  --nodes     cluster sizes to draw from per seed, 1..${simulateNodesMax} (simulate: the exact size)
  --trace     print every event of one seed, described with the core's describe helpers
  --plant     plant bugs to watch the checkers catch them: ${plantedBugNames.join(', ')}
  --no-verify skip the core's own invariant checks (faster; the simulator's checkers still run)
  --commands-file  one command per line, taken exactly as written (a trailing CR is dropped)`;

/** Where output goes (tests pass their own). */
export interface Output {
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
  /** True when stderr is a terminal (progress bar) rather than a file or pipe (progress lines). */
  readonly stderrIsTTY: boolean;
}

type Flags = Map<string, string | true>;

const booleanFlags = new Set(['json', 'trace', 'soak', 'no-verify', 'crashes', 'partitions', 'help']);

function parseFlags(args: readonly string[], known: readonly string[]): Flags {
  const flags: Flags = new Map();
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as string;
    if (!arg.startsWith('--')) throw new UsageError(`unexpected argument ${JSON.stringify(arg)}`);
    const equals = arg.indexOf('=');
    const name = equals < 0 ? arg.slice(2) : arg.slice(2, equals);
    if (!known.includes(name)) throw new UsageError(`unknown option --${name}`);
    if (flags.has(name)) throw new UsageError(`--${name} given twice`);
    if (booleanFlags.has(name)) {
      if (equals >= 0) throw new UsageError(`--${name} takes no value`);
      flags.set(name, true);
      continue;
    }
    let value: string | undefined;
    if (equals >= 0) value = arg.slice(equals + 1);
    else value = args[++i];
    if (value === undefined || (equals < 0 && value.startsWith('--'))) throw new UsageError(`--${name} needs a value`);
    flags.set(name, value);
  }
  return flags;
}

function text(flags: Flags, name: string): string | undefined {
  const value = flags.get(name);
  return value === true ? undefined : value;
}

function integer(name: string, value: string, min: number, max: number): number {
  if (!/^\d+$/.test(value)) throw new UsageError(`--${name}: expected an integer, got ${JSON.stringify(value)}`);
  const number = Number(value);
  if (!Number.isSafeInteger(number) || number < min || number > max) throw new UsageError(`--${name}: ${value} is outside ${min}..${max}`);
  return number;
}

function probability(name: string, value: string, allowOne: boolean): number {
  if (!/^(0|1)(\.\d+)?$|^\.\d+$/.test(value)) throw new UsageError(`--${name}: expected a probability like 0.1, got ${JSON.stringify(value)}`);
  const number = Number(value);
  if (number < 0 || number > 1 || (!allowOne && number === 1)) throw new UsageError(`--${name}: ${value} is outside [0, ${allowOne ? '1]' : '1)'}`);
  return number;
}

/** Parses "A..B" or "A" into an inclusive range within [min, max]. */
export function parseRange(name: string, value: string, min: number, max: number): { min: number; max: number } {
  const match = /^(\d+)(?:\.\.(\d+))?$/.exec(value);
  if (match === null) throw new UsageError(`--${name}: expected A..B or A, got ${JSON.stringify(value)}`);
  const low = integer(name, match[1] as string, min, max);
  const high = match[2] === undefined ? low : integer(name, match[2], min, max);
  if (high < low) throw new UsageError(`--${name}: ${value} is an empty range`);
  return { min: low, max: high };
}

function parsePlanted(value: string | undefined): PlantedBugName[] {
  if (value === undefined) return [];
  const names = value.split(',').filter((name) => name.length > 0);
  for (const name of names) {
    if (!(plantedBugNames as readonly string[]).includes(name)) throw new UsageError(`--plant: unknown bug ${JSON.stringify(name)}; known: ${plantedBugNames.join(', ')}`);
  }
  return names as PlantedBugName[];
}

function nodeIds(name: string, value: string, nodes: number): number[] {
  return value
    .split(',')
    .filter((part) => part.length > 0)
    .map((part) => integer(name, part, 1, nodes));
}

/** Seeds per progress line when stderr is not a terminal (also one at least every few seconds). */
const progressLineSeconds = 5;

function progressReporter(total: number, output: Output): { update: (result: SeedResult) => void; finish: () => void } {
  let done = 0;
  let failed = 0;
  const started = performance.now();
  let lastDraw = 0;
  const draw = (force: boolean): void => {
    const now = performance.now();
    const seconds = (now - started) / 1000;
    if (output.stderrIsTTY) {
      if (!force && now - lastDraw < 100) return;
      const width = 30;
      const filled = Math.round((done / total) * width);
      output.stderr(`\r[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${done}/${total} seeds, ${failed} failing, ${seconds.toFixed(1)} s `);
    } else {
      if (!force && now - lastDraw < progressLineSeconds * 1000) return;
      output.stderr(`sim: ${done}/${total} seeds, ${failed} failing, ${seconds.toFixed(1)} s\n`);
    }
    lastDraw = now;
  };
  return {
    update(result) {
      done += 1;
      if (result.violation !== null || result.liveness !== null) failed += 1;
      draw(false);
    },
    finish() {
      draw(true);
      if (output.stderrIsTTY) output.stderr('\n');
    },
  };
}

async function commandSim(args: readonly string[], output: Output): Promise<number> {
  const flags = parseFlags(args, ['seeds', 'seed', 'nodes', 'json', 'trace', 'workers', 'soak', 'plant', 'no-verify', 'help']);
  const nodes: NodeRange = flags.has('nodes') ? parseRange('nodes', text(flags, 'nodes') as string, 1, simulateNodesMax) : defaultNodeRange;
  const planted = parsePlanted(text(flags, 'plant'));
  const verify = !flags.has('no-verify');
  const seedText = text(flags, 'seed');
  const seedsText = text(flags, 'seeds');
  if (seedText !== undefined && (seedsText !== undefined || flags.has('soak'))) throw new UsageError('give --seed N or --seeds A..B (or --soak), not both');
  if (flags.has('trace')) {
    if (seedText === undefined) throw new UsageError('--trace needs a single --seed N');
    if (flags.has('json')) throw new UsageError('--trace prints text; leave out --json');
    const seed = integer('seed', seedText, 0, 0xffffffff);
    const result = runSeed({ seed, nodes, planted, verify, trace: (line) => output.stdout(`${line}\n`) });
    return reportOne(result, nodes, planted, output, false);
  }
  if (seedText !== undefined) {
    const seed = integer('seed', seedText, 0, 0xffffffff);
    return reportOne(runSeed({ seed, nodes, planted, verify }), nodes, planted, output, flags.has('json'));
  }
  const seeds = seedsText !== undefined ? parseRange('seeds', seedsText, 0, 0xffffffff) : flags.has('soak') ? { min: 1, max: 10_000 } : null;
  if (seeds === null) throw new UsageError('give --seeds A..B, --seed N, or --soak');
  const workers = flags.has('workers') ? integer('workers', text(flags, 'workers') as string, 1, 64) : Math.max(1, Math.min(availableParallelism(), 4));
  const list = Array.from({ length: seeds.max - seeds.min + 1 }, (_, i) => seeds.min + i);
  const progress = progressReporter(list.length, output);
  const started = performance.now();
  const results = await runSeeds({ seeds: list, nodes, planted, verify }, workers, (result) => progress.update(result));
  progress.finish();
  const summary: SimSummary = summarize(results, { seeds: formatRange(seeds), nodes, planted, durationMs: performance.now() - started });
  output.stdout(flags.has('json') ? `${JSON.stringify(summary)}\n` : `${formatSummary(summary)}\n`);
  return summary.violations + summary.livenessFailures === 0 ? 0 : 1;
}

function reportOne(result: SeedResult, nodes: NodeRange, planted: readonly PlantedBugName[], output: Output, json: boolean): number {
  const failed = result.violation !== null || result.liveness !== null;
  if (json) {
    output.stdout(`${JSON.stringify({ ...result, reproduce: reproduceCommand(result.seed, nodes, planted) })}\n`);
    return failed ? 1 : 0;
  }
  const lines = [
    `seed ${result.seed}: ${result.nodeCount} nodes, ${result.ticks} ticks, ${result.events} events, ${result.messages} messages, committed ${result.committed}, ` +
      `acknowledged ${result.commandsAcknowledged}/${result.commandsIssued}, first leader at ${result.firstLeaderTick ?? '-'}`,
  ];
  if (result.violation !== null) lines.push(`VIOLATION ${result.violation.kind}: ${result.violation.message}`);
  if (result.liveness !== null) lines.push(`LIVENESS FAILURE (${result.liveness.phase}): ${result.liveness.message}`);
  lines.push(failed ? `reproduce: ${reproduceCommand(result.seed, nodes, planted)}` : 'ok');
  output.stdout(`${lines.join('\n')}\n`);
  return failed ? 1 : 0;
}

/** Reads commands: one per line, exactly as written; a trailing CR (CRLF files) and the final newline are not part of any command. */
export function parseCommandLines(content: string): string[] {
  if (content.length === 0) return [];
  const lines = content.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  return lines.map((line) => (line.endsWith('\r') ? line.slice(0, -1) : line));
}

async function commandSimulate(args: readonly string[], output: Output, readInput: (path: string) => string): Promise<number> {
  const flags = parseFlags(args, ['nodes', 'commands-file', 'seed', 'loss', 'duplicate', 'reorder', 'delay', 'spread', 'crashes', 'partitions', 'down', 'partition', 'clients', 'check', 'json', 'help']);
  const nodesText = text(flags, 'nodes');
  if (nodesText === undefined) throw new UsageError('simulate needs --nodes N');
  const nodes = integer('nodes', nodesText, 1, simulateNodesMax);
  const file = text(flags, 'commands-file');
  if (file === undefined) throw new UsageError('simulate needs --commands-file PATH (or - for stdin)');
  let content: string;
  try {
    content = readInput(file);
  } catch (error) {
    throw new UsageError(`--commands-file: cannot read ${JSON.stringify(file)}: ${error instanceof Error ? error.message : String(error)}`);
  }
  const commands = parseCommandLines(content);
  const faults: { -readonly [K in keyof SimulateFaults]: SimulateFaults[K] } = {};
  const loss = text(flags, 'loss');
  if (loss !== undefined) faults.loss = probability('loss', loss, false);
  const duplicate = text(flags, 'duplicate');
  if (duplicate !== undefined) faults.duplicate = probability('duplicate', duplicate, true);
  const reorder = text(flags, 'reorder');
  if (reorder !== undefined) faults.reorder = probability('reorder', reorder, true);
  const delay = text(flags, 'delay');
  if (delay !== undefined) faults.delayTicks = integer('delay', delay, 0, 1000);
  const spread = text(flags, 'spread');
  if (spread !== undefined) faults.delaySpreadTicks = integer('spread', spread, 0, 1000);
  if (flags.has('crashes')) faults.crashes = true;
  if (flags.has('partitions')) faults.partitions = true;
  const down = text(flags, 'down');
  if (down !== undefined) faults.down = nodeIds('down', down, nodes);
  const partition = text(flags, 'partition');
  if (partition !== undefined) faults.partition = partition.split('/').map((group) => nodeIds('partition', group, nodes));
  const seedText = text(flags, 'seed');
  const clientsText = text(flags, 'clients');
  const check = text(flags, 'check');
  if (check !== undefined && check !== 'light' && check !== 'full') throw new UsageError(`--check: expected light or full, got ${JSON.stringify(check)}`);
  const options: SimulateOptions = {
    nodes,
    commands,
    faults,
    ...(seedText === undefined ? {} : { seed: integer('seed', seedText, 0, 0xffffffff) }),
    ...(clientsText === undefined ? {} : { clients: integer('clients', clientsText, 1, 1024) }),
    ...(check === undefined ? {} : { check }),
  };
  const started = performance.now();
  const result = simulate(options);
  const milliseconds = performance.now() - started;
  if (!result.ok) {
    if (flags.has('json')) output.stdout(`${JSON.stringify({ ok: false, code: result.error.code, error: result.error.message })}\n`);
    else output.stderr(`simulate failed (${result.error.code}): ${result.error.message}\n`);
    return result.error.code === 'invalid-options' ? 2 : 1;
  }
  if (flags.has('json')) {
    const states: Record<string, string> = {};
    result.nodeIds.forEach((id, i) => (states[String(id)] = String(result.states[i])));
    output.stdout(`${JSON.stringify({ ok: true, states, ticks: result.ticks, events: result.events, messages: result.messages })}\n`);
    return 0;
  }
  output.stdout(result.nodeIds.map((id, i) => `node ${id}: ${String(result.states[i])}`).join('\n') + '\n');
  output.stderr(
    `${result.nodeIds.length} of ${nodes} nodes applied all ${commands.length} commands: ${result.ticks} ticks, ${result.events} events, ${result.messages} messages, ${milliseconds.toFixed(0)} ms\n`,
  );
  return 0;
}

/** Runs the CLI with `args` (without node and script); returns the exit status. */
export async function main(args: readonly string[], output: Output, readInput: (path: string) => string = readCommandsFile): Promise<number> {
  const [command, ...rest] = args;
  try {
    if (command === undefined || command === 'help' || command === '--help' || rest.includes('--help')) {
      output.stdout(`${usage}\n`);
      return command === undefined ? 2 : 0;
    }
    if (command === 'sim') return await commandSim(rest, output);
    if (command === 'simulate') return await commandSimulate(rest, output, readInput);
    throw new UsageError(`unknown command ${JSON.stringify(command)}; expected sim or simulate`);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    output.stderr(`error: ${error.message}\n${usage}\n`);
    return 2;
  }
}

function readCommandsFile(path: string): string {
  return readFileSync(path === '-' ? 0 : path, 'utf8');
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  // A reader that stops early (`| head`) is not an error.
  process.stdout.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw error;
  });
  const output: Output = {
    stdout: (chunk) => process.stdout.write(chunk),
    stderr: (chunk) => process.stderr.write(chunk),
    stderrIsTTY: process.stderr.isTTY === true,
  };
  main(process.argv.slice(2), output).then(
    (code) => {
      process.exitCode = code;
    },
    (error: unknown) => {
      process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
      process.exitCode = 1;
    },
  );
}
