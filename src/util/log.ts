/**
 * Logging: pino, injected everywhere (no console in library code). Daemons log structured JSON
 * lines to stderr; tests pass a destination and read the lines back.
 */
import { pino, type Logger, type DestinationStream, type LevelWithSilent } from 'pino';

export type { Logger };

/** Log levels accepted by `--log-level` and `logging_level` (reference names map onto these). */
export const LOG_LEVELS: readonly LevelWithSilent[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

/** Maps a level name, including the reference's Python names (WARNING, CRITICAL), to pino's. */
export function parseLogLevel(value: string): LevelWithSilent | undefined {
  const v = value.trim().toLowerCase();
  const mapped = v === 'warning' ? 'warn' : v === 'critical' ? 'fatal' : v;
  return (LOG_LEVELS as readonly string[]).includes(mapped) ? (mapped as LevelWithSilent) : undefined;
}

/** A logger writing JSON lines to `destination` (default: stderr). */
export function createLogger(
  options: { level?: LevelWithSilent; name?: string } = {},
  destination: DestinationStream = pino.destination({ dest: 2, sync: true }),
): Logger {
  const base = options.name === undefined ? { pid: process.pid } : { pid: process.pid, name: options.name };
  return pino({ level: options.level ?? 'info', base }, destination);
}

/** A logger that discards everything (library default). */
export const silentLogger: Logger = pino({ level: 'silent' });
