/**
 * The address of a daemon's metrics endpoint (`--metrics 127.0.0.1:9464`, config key `metrics`):
 * an IPv4 address of this host and a port. Parsed with the configuration, so a bad value is one
 * line naming the flag or key and exit 2 before anything starts.
 */
import { parseIPv4, parsePort, valueError } from '../config/values.js';

export interface MetricsAddress {
  readonly host: string;
  readonly port: number;
}

/** Parses `HOST:PORT`; `where` names the flag or the file and key in the error. */
export function parseMetricsAddress(value: string, where: string): MetricsAddress {
  const text = value.trim();
  const colon = text.lastIndexOf(':');
  if (colon <= 0 || colon === text.length - 1) {
    throw valueError(where, value, 'is not an address and port (e.g. 127.0.0.1:9464)');
  }
  // The message quotes the whole value, as given, whichever half is wrong.
  let host: string;
  try {
    // 0.0.0.0 is allowed, as for marcod --bind: exposing the metrics is the admin's choice.
    host = parseIPv4(text.slice(0, colon), where, { allowAny: true });
  } catch {
    throw valueError(where, value, 'does not start with an IPv4 address (e.g. 127.0.0.1:9464)');
  }
  try {
    return { host, port: parsePort(text.slice(colon + 1), where) };
  } catch {
    throw valueError(where, value, 'does not end with a port from 1 to 65535 (e.g. 127.0.0.1:9464)');
  }
}

/** `HOST:PORT` for log lines and messages. */
export function formatMetricsAddress(address: MetricsAddress): string {
  return `${address.host}:${address.port}`;
}
