/**
 * Logging: pino, injected everywhere (no console in library code). Daemons log structured JSON
 * lines to stderr; tests pass a destination and read the lines back.
 *
 * Library code depends only on the small `Logger` interface below, and pino is loaded when a
 * logger is created, not when this module is imported: the client library and the `marco`
 * command never load it (about 20 ms of start-up and several MB of memory).
 */
import { createRequire } from 'node:module';
import type * as Pino from 'pino';
import type { DestinationStream, LevelWithSilent } from 'pino';

/** One logging method: `log.info({ key: value }, 'message')` or `log.info('message')`. */
export interface LogFn {
  (obj: object, msg?: string): void;
  (msg: string): void;
}

/** What library code needs of a logger; a pino logger is one. */
export interface Logger {
  fatal: LogFn;
  error: LogFn;
  warn: LogFn;
  info: LogFn;
  debug: LogFn;
  trace: LogFn;
  /** A logger adding `bindings` to every record. */
  child(bindings: Record<string, unknown>): Logger;
  /** False when records of `level` are dropped, so hot paths skip building them (pino has it). */
  isLevelEnabled?(level: string): boolean;
}

/** Log levels accepted by `--log-level` and `logging_level` (reference names map onto these). */
export const LOG_LEVELS: readonly LevelWithSilent[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

/** Maps a level name, including the reference's Python names (WARNING, CRITICAL), to pino's. */
export function parseLogLevel(value: string): LevelWithSilent | undefined {
  const v = value.trim().toLowerCase();
  const mapped = v === 'warning' ? 'warn' : v === 'critical' ? 'fatal' : v;
  return (LOG_LEVELS as readonly string[]).includes(mapped) ? (mapped as LevelWithSilent) : undefined;
}

const require = createRequire(import.meta.url);

/** A logger writing JSON lines to `destination` (default: stderr). */
export function createLogger(
  options: { level?: LevelWithSilent; name?: string } = {},
  destination?: DestinationStream,
): Logger {
  const { pino } = require('pino') as typeof Pino;
  const base = options.name === undefined ? { pid: process.pid } : { pid: process.pid, name: options.name };
  return pino({ level: options.level ?? 'info', base }, destination ?? pino.destination({ dest: 2, sync: true }));
}

const ignore: LogFn = () => {};

/** A logger that discards everything (library default). */
export const silentLogger: Logger = {
  fatal: ignore,
  error: ignore,
  warn: ignore,
  info: ignore,
  debug: ignore,
  trace: ignore,
  child: () => silentLogger,
  isLevelEnabled: () => false,
};
