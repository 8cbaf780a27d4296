/**
 * Argument parsing helpers shared by the subcommands: every bad value becomes a UsageError naming
 * the option and what was expected (exit code 2).
 */

/** A bad command-line argument. */
export class UsageError extends Error {
  readonly code = 'usage' as const;
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** Parses an integer option within [min, max]. */
export function integerOption(name: string, value: string, min: number, max: number): number {
  if (!/^-?\d+$/.test(value)) throw new UsageError(`${name} expects an integer, got ${JSON.stringify(value)}`);
  const parsed = Number(value);
  if (!Number.isSafeInteger(parsed) || parsed < min || parsed > max) throw new UsageError(`${name} must be between ${min} and ${max}, got ${value}`);
  return parsed;
}

/** Parses a number option within [min, max]. */
export function numberOption(name: string, value: string, min: number, max: number): number {
  const parsed = Number(value);
  if (value.trim() === '' || !Number.isFinite(parsed) || parsed < min || parsed > max) {
    throw new UsageError(`${name} must be a number between ${min} and ${max}, got ${JSON.stringify(value)}`);
  }
  return parsed;
}

/** Parses one of a set of choices. */
export function choiceOption<T extends string>(name: string, value: string, choices: readonly T[]): T {
  if (!(choices as readonly string[]).includes(value)) throw new UsageError(`${name} must be one of ${choices.join(', ')}, got ${JSON.stringify(value)}`);
  return value as T;
}

/** Parses `1=127.0.0.1:7001,2=127.0.0.1:7002` into a map of node id to host and port. */
export function peersOption(value: string): Map<number, { host: string; port: number }> {
  const peers = new Map<number, { host: string; port: number }>();
  for (const part of value.split(',')) {
    const match = /^(\d+)=([^:]+):(\d+)$/.exec(part.trim());
    if (match === null) throw new UsageError(`--peers expects id=host:port[,id=host:port...], got ${JSON.stringify(part)}`);
    const id = integerOption('--peers id', match[1] as string, 1, 2 ** 31);
    const port = integerOption('--peers port', match[3] as string, 1, 65535);
    if (peers.has(id)) throw new UsageError(`--peers lists node ${id} twice`);
    peers.set(id, { host: match[2] as string, port });
  }
  return peers;
}
