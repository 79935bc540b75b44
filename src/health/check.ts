/**
 * Health checks of services: what a check is, and how it is written. A checked service is
 * offered only while its check passes (docs/operations.md, "Health checks").
 *
 * Only local targets: polod runs as root and any user may publish a checked service, so a check
 * never connects beyond this host (no probing of other hosts on a user's behalf).
 */
import type { Json } from '../protocol/json.js';
import { isPort } from '../protocol/address.js';

/** How often a check runs by default, in ms. */
export const DEFAULT_CHECK_INTERVAL_MS = 5000;
/** Consecutive failures that withdraw a service by default: within 15 s at the default interval. */
export const DEFAULT_CHECK_FAILURES = 3;
/** Shortest interval accepted, so no check can keep polod busy. */
export const MIN_CHECK_INTERVAL_MS = 100;
/** Longest interval accepted (one day). */
export const MAX_CHECK_INTERVAL_MS = 86_400_000;

/** One health check. */
export interface HealthCheck {
  /** `tcp:PORT` (connect to 127.0.0.1:PORT) or `http://127.0.0.1:PORT/PATH` (GET, 2xx or 3xx passes). */
  readonly target: string;
  readonly kind: 'tcp' | 'http';
  /** Between two runs, in ms. */
  readonly intervalMs: number;
  /** Consecutive failures before the service is withdrawn. */
  readonly failures: number;
}

/** Loopback host names an HTTP check may use. */
const LOCAL_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]']);

/**
 * Parses a check target: `tcp:PORT` or an `http://` URL on this host. Returns the problem as a
 * phrase for the caller's message when it is not one.
 */
export function parseCheckTarget(text: string): { kind: 'tcp' | 'http'; target: string } | { problem: string } {
  const tcp = /^tcp:(\d{1,5})$/.exec(text);
  if (tcp) {
    const port = Number(tcp[1]);
    if (!isPort(port)) return { problem: 'has a port outside 1-65535' };
    return { kind: 'tcp', target: `tcp:${port}` };
  }
  if (text.startsWith('http://')) {
    let url: URL;
    try {
      url = new URL(text);
    } catch {
      return { problem: 'is not a valid URL' };
    }
    if (!LOCAL_HOSTS.has(url.hostname)) return { problem: 'must be on this host (127.0.0.1, localhost or [::1])' };
    return { kind: 'http', target: url.href };
  }
  return { problem: 'is neither tcp:PORT nor http://127.0.0.1:PORT/PATH' };
}

/**
 * Reads a check from JSON: a target string, or `{"target": …, "interval_ms": …, "failures": …}`
 * (service files and the publish API). Throws a one-line message naming the problem.
 */
export function checkFromJson(value: Json, where: string): HealthCheck {
  const spec = typeof value === 'string' ? { target: value } : value;
  if (spec === null || typeof spec !== 'object' || Array.isArray(spec)) {
    throw new Error(`${where} must be a target string or an object with "target"`);
  }
  const target = spec['target'];
  if (typeof target !== 'string') throw new Error(`${where}: "target" must be a string such as "tcp:8080"`);
  const parsed = parseCheckTarget(target);
  if ('problem' in parsed) throw new Error(`${where}: ${JSON.stringify(target)} ${parsed.problem}`);
  const intervalMs = integer(spec['interval_ms'], DEFAULT_CHECK_INTERVAL_MS, MIN_CHECK_INTERVAL_MS, MAX_CHECK_INTERVAL_MS, `${where}: "interval_ms"`);
  const failures = integer(spec['failures'], DEFAULT_CHECK_FAILURES, 1, 1000, `${where}: "failures"`);
  return { ...parsed, intervalMs, failures };
}

/** The JSON form of a check, as service files and the publish API write it. */
export function checkToJson(check: HealthCheck): { target: string; interval_ms: number; failures: number } {
  return { target: check.target, interval_ms: check.intervalMs, failures: check.failures };
}

function integer(value: Json | undefined, fallback: number, min: number, max: number, where: string): number {
  if (value === undefined || value === null) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new Error(`${where} must be an integer from ${min} to ${max}`);
  }
  return value;
}
