/**
 * Command-line handling shared by the bench entry points (bench:http, bench:wal): node:util's
 * parseArgs in strict mode, with its errors turned into what a user should see. A mistyped flag must
 * stop the run before minutes of measurement start, and it is the user's mistake, not a crash, so it
 * prints `<program>: <message>` and a one-line usage to stderr and exits 2 (the usual status of a
 * usage error), without a stack. `--help` prints the usage to stdout and exits 0.
 *
 * Usage errors found after parsing (a bad number, an unknown policy) go through `usageFailure` so they
 * look and exit the same.
 */
import { type ParseArgsConfig, parseArgs } from 'node:util';

/** The options a command accepts, as parseArgs describes them. */
export type CommandOptions = NonNullable<ParseArgsConfig['options']>;

/** A command's name (the message prefix) and its usage text. */
export interface CommandLine<Options extends CommandOptions> {
  /** The prefix of every message, e.g. `bench:http`. */
  readonly program: string;
  /** One line: the flags and their values, without the program name. */
  readonly usage: string;
  /** More lines that --help prints after the usage line (what the flags mean). */
  readonly help?: string;
  readonly options: Options;
}

/** The parsed values of `Options` (a `--help` flag is handled and never returned). */
export type CommandValues<Options extends CommandOptions> = ReturnType<typeof parseArgs<{ options: Options; strict: true; allowPositionals: false }>>['values'];

/** Exit status of a usage error. */
export const usageExitCode = 2;

/** Prints `<program>: <message>` and the usage line to stderr and exits with status 2. */
export function usageFailure(command: Pick<CommandLine<CommandOptions>, 'program' | 'usage'>, message: string): never {
  process.stderr.write(`${command.program}: ${message}\nusage: ${command.program} ${command.usage}\n`);
  process.exit(usageExitCode);
}

/**
 * Parses `args` (default: this process's arguments) against `command.options`. On `--help`, prints
 * the usage and exits 0; on an unknown option, a missing or unexpected value, or a positional
 * argument, fails with usageFailure. A single leading `--` (left by some script runners) is skipped.
 */
export function parseCommandLine<Options extends CommandOptions>(command: CommandLine<Options>, args: readonly string[] = process.argv.slice(2)): CommandValues<Options> {
  const rest = args[0] === '--' ? args.slice(1) : [...args];
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(`usage: ${command.program} ${command.usage}\n${command.help === undefined ? '' : `\n${command.help.trimEnd()}\n`}`);
    process.exit(0);
  }
  try {
    return parseArgs({ args: rest, options: command.options, strict: true, allowPositionals: false }).values as CommandValues<Options>;
  } catch (error) {
    // parseArgs reports misuse as a TypeError with an ERR_PARSE_ARGS_* code; anything else is a bug.
    const code = (error as { code?: unknown }).code;
    if (!(typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS_'))) throw error;
    // Some messages span lines (advice on values that start with a dash): keep them on one.
    const message = (error as Error).message.replace(/\s*\n\s*/g, ' ');
    return usageFailure(command, message.charAt(0).toLowerCase() + message.slice(1));
  }
}

/**
 * The whole number in `text`, at least `min`; `fallback` when the flag was not given. A usage failure
 * names the flag and the text.
 */
export function wholeNumberOption(command: Pick<CommandLine<CommandOptions>, 'program' | 'usage'>, flag: string, text: string | undefined, fallback: number, min = 1): number {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (text.trim() === '' || !Number.isSafeInteger(value) || value < min) usageFailure(command, `--${flag} must be a whole number >= ${min}, got ${JSON.stringify(text)}`);
  return value;
}

/**
 * The number in `text` when `accept` takes it (`expected` says what it takes, for the message);
 * `fallback` when the flag was not given. Empty text is never a number (Number('') is 0).
 */
export function numberOption(
  command: Pick<CommandLine<CommandOptions>, 'program' | 'usage'>,
  flag: string,
  text: string | undefined,
  fallback: number,
  accept: (value: number) => boolean,
  expected: string,
): number {
  if (text === undefined) return fallback;
  const value = text.trim() === '' ? Number.NaN : Number(text);
  if (!accept(value)) usageFailure(command, `--${flag} must be ${expected}, got ${JSON.stringify(text)}`);
  return value;
}

/** `text` when it is one of `allowed`; `fallback` when the flag was not given. */
export function choiceOption<Choice extends string>(command: Pick<CommandLine<CommandOptions>, 'program' | 'usage'>, flag: string, text: string | undefined, allowed: readonly Choice[], fallback: Choice): Choice {
  if (text === undefined) return fallback;
  if (!(allowed as readonly string[]).includes(text)) usageFailure(command, `--${flag}: ${JSON.stringify(text)} is not one of ${allowed.join(', ')}`);
  return text as Choice;
}

/**
 * The comma-separated items of `text`, each one of `allowed`, without duplicates; `fallback` when
 * the flag was not given.
 */
export function choiceListOption<Choice extends string>(command: Pick<CommandLine<CommandOptions>, 'program' | 'usage'>, flag: string, text: string | undefined, allowed: readonly Choice[], fallback: readonly Choice[]): Choice[] {
  if (text === undefined) return [...fallback];
  const items = text.split(',');
  for (const item of items) {
    if (!(allowed as readonly string[]).includes(item)) usageFailure(command, `--${flag}: ${JSON.stringify(item)} is not one of ${allowed.join(', ')}`);
  }
  if (new Set(items).size !== items.length) usageFailure(command, `--${flag}: ${JSON.stringify(text)} names an item twice`);
  return items as Choice[];
}
