/**
 * Logging: pino, injected everywhere (no console in library code). Daemons log to stderr: a
 * readable line per event on a terminal or under journald, one JSON object per line otherwise
 * or when asked (see chooseLogFormat); tests pass a destination and read JSON lines back.
 *
 * Library code depends only on the small `Logger` interface below, and pino is loaded when a
 * logger is created, not when this module is imported: the client library and the `marco`
 * command never load it (about 20 ms of start-up and several MB of memory).
 */
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


/** `--log-format`: `auto` is text on a terminal or under journald, JSON otherwise. */
export type LogFormat = 'auto' | 'json' | 'text';
export const LOG_FORMATS: readonly LogFormat[] = ['auto', 'json', 'text'];

/** How stderr is written: the format, whether lines carry a time, and colour. */
export interface LogStyle {
  readonly format: 'json' | 'text';
  /** False under journald, which stamps every line itself. */
  readonly timestamps: boolean;
  /** ANSI colours for the level: only on a terminal, never with NO_COLOR (no-color.org). */
  readonly colour: boolean;
}

/** What stderr is: a terminal, journald's stream (JOURNAL_STREAM names it), or anything else. */
export interface StderrKind {
  readonly isTTY: boolean;
  readonly journald: boolean;
  readonly noColor: boolean;
}

/** Looks at this process's stderr and environment. */
function detectStderr(env: NodeJS.ProcessEnv = process.env): StderrKind {
  let journald = false;
  // systemd sets JOURNAL_STREAM=<device>:<inode> of the stream it connected; a child that
  // inherited the variable but writes elsewhere (a pipe, a file) must not count as journald.
  const stream = env['JOURNAL_STREAM'];
  if (stream !== undefined && stream !== '') {
    try {
      const st = process.getBuiltinModule('node:fs').fstatSync(2);
      journald = stream === `${st.dev}:${st.ino}`;
    } catch {
      journald = false;
    }
  }
  const noColor = env['NO_COLOR'] !== undefined && env['NO_COLOR'] !== '';
  return { isTTY: process.stderr.isTTY === true, journald, noColor };
}

/** The log style for `format` on a stderr of `kind`. */
export function chooseLogStyle(format: LogFormat, kind: StderrKind): LogStyle {
  const text = format === 'text' || (format === 'auto' && (kind.isTTY || kind.journald));
  return { format: text ? 'text' : 'json', timestamps: !kind.journald, colour: text && kind.isTTY && !kind.noColor };
}

/**
 * A logger. With `destination`, JSON lines go there (tests); otherwise to stderr in the style
 * `format` gives on this process's stderr.
 */
export function createLogger(
  options: { level?: LevelWithSilent; name?: string; format?: LogFormat } = {},
  destination?: DestinationStream,
): Logger {
  const require = process.getBuiltinModule('node:module').createRequire(import.meta.url);
  const { pino } = require('pino') as typeof Pino;
  const base = options.name === undefined ? { pid: process.pid } : { pid: process.pid, name: options.name };
  const level = options.level ?? 'info';
  if (destination !== undefined) return pino({ level, base }, destination);
  const style = chooseLogStyle(options.format ?? 'auto', detectStderr());
  const settings = { level, base, ...(style.timestamps ? {} : { timestamp: false }) };
  if (style.format === 'json') return pino(settings, pino.destination({ dest: 2, sync: true }));
  const { writeSync } = process.getBuiltinModule('node:fs');
  return pino(settings, { write: (line: string) => void writeSync(2, formatLogLine(line, style.colour)) });
}

const LEVEL_NAMES: Readonly<Record<number, string>> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };
const LEVEL_COLOURS: Readonly<Record<number, string>> = { 10: '90', 20: '36', 30: '32', 40: '33', 50: '31', 60: '35' };
/** Fields every record carries, left out of the text line (the command's name, its pid). */
const QUIET_FIELDS = new Set(['level', 'msg', 'time', 'pid', 'hostname', 'name']);

/**
 * One pino JSON line as text: `LEVEL message key=value …`, then the time when there is one.
 * Values are JSON unless plain words; an error shows its message. Control characters are
 * escaped (JSON.stringify does it), so a logged value cannot drive the terminal.
 */
export function formatLogLine(line: string, colour: boolean): string {
  let record: Record<string, unknown>;
  try {
    record = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return line;
  }
  const levelNumber = typeof record['level'] === 'number' ? record['level'] : 30;
  const name = (LEVEL_NAMES[levelNumber] ?? String(levelNumber)).padEnd(5);
  const level = colour ? `\x1b[${LEVEL_COLOURS[levelNumber] ?? '0'}m${name}\x1b[0m` : name;
  const parts = [level, plain(typeof record['msg'] === 'string' ? record['msg'] : '')];
  for (const [key, value] of Object.entries(record)) {
    if (QUIET_FIELDS.has(key) || value === undefined) continue;
    parts.push(`${key}=${showField(value)}`);
  }
  if (typeof record['time'] === 'number') parts.push(`time=${new Date(record['time']).toISOString()}`);
  return `${parts.join(' ')}\n`;
}

function showField(value: unknown): string {
  if (typeof value === 'object' && value !== null && 'message' in value && typeof value.message === 'string') {
    const code = 'code' in value && typeof value.code === 'string' ? ` (${value.code})` : '';
    return JSON.stringify(value.message + code);
  }
  if (typeof value === 'string' && /^[\w./:@+-]+$/.test(value)) return value;
  return JSON.stringify(value) ?? String(value);
}

/** A message with control characters escaped, as JSON would, but without the quotes. */
function plain(text: string): string {
  return JSON.stringify(text).slice(1, -1);
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
