/**
 * The `[polo]` keys of polod's abuse limits (src/responder/guard.ts; documented in
 * docs/operations.md, "Abuse limits"). Each key overrides one default; an error names the file,
 * the key and the value.
 */
import type { GuardSettings, UnicastScope } from '../responder/guard.js';
import { DEFAULT_GUARD_SETTINGS } from '../responder/guard.js';
import { parseInteger, valueError } from './values.js';

/** Largest byte figure accepted (1 GiB). */
const MAX_BYTES = 1 << 30;

/** Parses `on-link` or `any`. */
export function parseUnicastScope(value: string, where: string): UnicastScope {
  const v = value.trim().toLowerCase();
  if (v === 'on-link' || v === 'any') return v;
  throw valueError(where, value, "is not 'on-link' or 'any'");
}

/**
 * Applies one key to `settings` (a copy is returned); undefined when the key is not a guard key.
 */
export function applyGuardKey(settings: GuardSettings, key: string, value: string, where: string): GuardSettings | undefined {
  const bytes = (min: number): number => parseInteger(value, where, min, MAX_BYTES);
  const { replies, userLoads } = settings;
  switch (key) {
    case 'unicast_scope':
      return { ...settings, unicastScope: parseUnicastScope(value, where) };
    case 'reply_burst_per_source':
      return { ...settings, replies: { ...replies, perSourceBurst: bytes(1) } };
    case 'reply_rate_per_source':
      return { ...settings, replies: { ...replies, perSourceRate: bytes(1) } };
    case 'reply_burst_total':
      return { ...settings, replies: { ...replies, totalBurst: bytes(1) } };
    case 'reply_rate_total':
      return { ...settings, replies: { ...replies, totalRate: bytes(1) } };
    case 'query_burst_per_source':
      return { ...settings, replies: { ...replies, perSourceQueryBurst: parseInteger(value, where, 1, MAX_BYTES) } };
    case 'query_rate_per_source':
      return { ...settings, replies: { ...replies, perSourceQueryRate: parseInteger(value, where, 1, MAX_BYTES) } };
    case 'user_lookups_per_second': {
      const perSecond = parseInteger(value, where, 1, 10_000);
      return { ...settings, userLoads: { ...userLoads, perSecond, burst: Math.max(perSecond, Math.min(2 * perSecond, 10_000)) } };
    }
    case 'remote_log_lines_per_second':
      return { ...settings, logLinesPerSecond: parseInteger(value, where, 1, 10_000) };
    case 'grid_size':
      return { ...settings, gridSize: parseInteger(value, where, 0, 1_000_000) };
    default:
      return undefined;
  }
}

export { DEFAULT_GUARD_SETTINGS };
