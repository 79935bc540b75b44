/**
 * Validators for configuration values, shared by the config files and the command-line flags.
 * Each takes the raw text and a `where` naming its origin (`/etc/marcopolo/polo/polo.cfg: [polo]
 * port` or `--port`) and returns the typed value, or throws one ConfigError whose single line
 * names `where` and the offending value. Inside the program the typed values are trusted.
 */
import { isIPv4 } from 'node:net';
import type { LevelWithSilent } from 'pino';
import { ConfigError } from '../errors.js';
import { isJsonObject, jsonObjectOf, type JsonObject } from '../protocol/json.js';
import { LOG_LEVELS, parseLogLevel } from '../util/log.js';
import { gridOf, isMulticastIPv4, MULTICAST_RANGE } from '../protocol/address.js';
import { isPort } from '../protocol/address.js';

/**
 * Longest timeout accepted, in ms: Node's timers overflow past 2^31-1 ms and then fire at once,
 * so a larger value would silently become a zero-length collection window.
 */
export const MAX_TIMEOUT_MS = 2_147_483_647;

/** Quotes a value for an error line: one line, control characters escaped, long values cut. */
export function showValue(value: string): string {
  const cut = value.length > 160 ? `${value.slice(0, 160)}…` : value;
  let out = '';
  for (const ch of cut) {
    const code = ch.codePointAt(0) ?? 0;
    if (ch === '\n') out += '\\n';
    else if (code < 0x20 || code === 0x7f) out += `\\x${code.toString(16).padStart(2, '0')}`;
    else out += ch;
  }
  return `'${out}'`;
}

/** The ConfigError for a bad value: `<where>: '<value>' <problem>`, one line. */
export function valueError(where: string, value: string, problem: string): ConfigError {
  return new ConfigError(`${where}: ${showValue(value)} ${problem}`);
}

export { isMulticastIPv4 };

/** Parses an integer in `[min, max]` (decimal digits with an optional sign, nothing else). */
export function parseInteger(value: string, where: string, min: number, max: number): number {
  const text = value.trim();
  const n = /^[+-]?\d+$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    throw valueError(where, value, `is not an integer from ${min} to ${max}`);
  }
  return n;
}

/** Parses a UDP port: an integer from 1 to 65535. */
export function parsePort(value: string, where: string): number {
  const text = value.trim();
  const n = /^\d+$/.test(text) ? Number(text) : NaN;
  return checkPort(n, where, value);
}

/** Checks a port given as a number (a typed override); `shown` is what the message quotes. */
export function checkPort(port: number, where: string, shown = String(port)): number {
  if (!isPort(port)) {
    throw valueError(where, shown, 'is not a port (an integer from 1 to 65535)');
  }
  return port;
}

/**
 * Parses one multicast group: a dotted-quad IPv4 address in 224.0.0.0/4, or an IPv6 one in
 * ff00::/8. Returned in one spelling per grid (an IPv6 twin as its IPv4 group: canonicalGroup).
 */
export function parseGroup(value: string, where: string): string {
  const grid = gridOf(value.trim());
  if (grid === undefined) throw valueError(where, value, `is not a multicast group (IPv4 ${MULTICAST_RANGE})`);
  return grid;
}

/**
 * Parses a list of groups separated by whitespace (what the reference's `.split()` accepted) or
 * commas (what its documentation promised). Duplicates are dropped, order is kept.
 */
export function parseGroupList(value: string, where: string): string[] {
  const items = value.split(/[\s,]+/).filter((s) => s.length > 0);
  if (items.length === 0) throw valueError(where, value, 'names no multicast group');
  const groups: string[] = [];
  for (const item of items) {
    // Name the offending entry, not the whole list, so the message points at the typo.
    const group = parseGroup(item, where);
    if (!groups.includes(group)) groups.push(group);
  }
  return groups;
}

/**
 * Parses an IPv4 unicast address (a local interface or a bind address). Multicast, broadcast
 * and reserved (240.0.0.0/4) addresses are refused; 0.0.0.0 ("every interface") only with
 * `allowAny`, since as an interface to join groups on it means nothing.
 */
export function parseIPv4(value: string, where: string, options: { allowAny?: boolean } = {}): string {
  const text = value.trim();
  if (!isIPv4(text)) throw valueError(where, value, 'is not an IPv4 address (a dotted quad such as 192.0.2.10)');
  const first = Number(text.split('.')[0]);
  if (first >= 224) throw valueError(where, value, 'is not a unicast IPv4 address');
  if (text === '0.0.0.0' && options.allowAny !== true) {
    throw valueError(where, value, 'is not a usable address here (name one interface address)');
  }
  return text;
}

/**
 * Parses a JSON object (node params, service params). JSON.parse only, never eval: `__proto__`
 * keys become plain own properties. The reference shipped `polo_params = "{'hostname': 'martin'}"`,
 * a JSON *string* (bug B10), so strings and Python-style dicts get a message showing the object
 * form to write instead.
 */
export function parseJsonObject(value: string, where: string): JsonObject {
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    const fixed = asObjectText(value.replace(/'/g, '"'));
    const hint = fixed === undefined ? '' : `; write a JSON object, with double quotes: ${fixed}`;
    throw valueError(where, value, `is not valid JSON${hint}`);
  }
  if (typeof parsed === 'string') {
    const fixed = asObjectText(parsed) ?? asObjectText(parsed.replace(/'/g, '"'));
    const hint = fixed === undefined ? 'such as {"hostname": "node1"}' : `without the quotes: ${fixed}`;
    throw valueError(where, value, `is a JSON string, not an object; write the JSON object ${hint}`);
  }
  if (!isJsonObject(parsed)) {
    const kind = parsed === null ? 'null' : Array.isArray(parsed) ? 'an array' : `a ${typeof parsed}`;
    throw valueError(where, value, `is ${kind}, not a JSON object such as {"hostname": "node1"}`);
  }
  return parsed;
}

/** Parses a log level: pino's names or the reference's Python names (DEBUG, WARNING, CRITICAL…). */
export function parseLevel(value: string, where: string): LevelWithSilent {
  // Python's NOTSET means "log everything", which is pino's trace.
  const level = value.trim().toLowerCase() === 'notset' ? 'trace' : parseLogLevel(value);
  if (level === undefined) {
    throw valueError(where, value, `is not a log level (one of ${LOG_LEVELS.join(', ')}, or a Python level name)`);
  }
  return level;
}

/** Compiles a regular expression (no flags, as the reference used it with `re.match`). */
export function parseRegExp(value: string, where: string): RegExp {
  try {
    return new RegExp(value);
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw valueError(where, value, `is not a valid regular expression (${reason})`);
  }
}

/** Parses a timeout in milliseconds: a positive decimal number, fractions allowed (`1000.0`). */
export function parseTimeoutMs(value: string, where: string): number {
  const text = value.trim();
  const n = /^[+]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(text) ? Number(text) : NaN;
  return checkTimeoutMs(n, where, value);
}

/** Checks a timeout given as a number (a typed override); `shown` is what the message quotes. */
export function checkTimeoutMs(ms: number, where: string, shown = String(ms)): number {
  if (!Number.isFinite(ms) || ms <= 0 || ms > MAX_TIMEOUT_MS) {
    throw valueError(where, shown, `is not a timeout (milliseconds, more than 0 and at most ${MAX_TIMEOUT_MS})`);
  }
  return ms;
}

/** Checks a non-empty string (a host name, a path). */
export function parseNonEmpty(value: string, where: string): string {
  if (value.trim().length === 0) throw valueError(where, value, 'is empty');
  return value;
}

/** The compact JSON text of `text` when it parses as a JSON object, otherwise undefined. */
function asObjectText(text: string): string | undefined {
  const value = jsonObjectOf(text);
  return value === undefined ? undefined : JSON.stringify(value);
}
