/**
 * Structured logging with pino. The level comes from LOG_LEVEL (default `info`); LOG_LEVEL=debug
 * shows every role change and election. Logs go to stderr so stdout stays free for data.
 */
import { pino } from 'pino';

/** The logger shape the runtime and transports use (pino-compatible). */
export interface Logger {
  debug(object: object, message?: string): void;
  info(object: object, message?: string): void;
  warn(object: object, message?: string): void;
  error(object: object, message?: string): void;
  child(bindings: object): Logger;
}

const levels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/** Creates a pino logger writing to stderr at LOG_LEVEL (or `level`). A bad level is an error. */
export function createLogger(bindings: object = {}, level: string | undefined = process.env.LOG_LEVEL): Logger {
  const resolved = level === undefined || level === '' ? 'info' : level.toLowerCase();
  if (!(levels as readonly string[]).includes(resolved)) {
    throw new Error(`LOG_LEVEL must be one of ${levels.join(', ')}, got ${JSON.stringify(level)}`);
  }
  return pino({ level: resolved, base: bindings }, pino.destination({ fd: 2, sync: false }));
}

/** A logger that drops everything (tests, embedded use). */
export const silentLogger: Logger = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
  child: () => silentLogger,
};
