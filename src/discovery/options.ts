/**
 * Query options: what a caller may ask of one discovery call, and their validation. Options are
 * checked once here, at the API boundary, and every error names the option; the
 * collection code downstream trusts the resolved values.
 */
import { isIPv4, isIPv6 } from '../util/ipv4.js';
import { InvalidArgumentError } from '../errors.js';
import { isJsonObject, type JsonObject } from '../protocol/json.js';
import { DEFAULT_GROUP, DEFAULT_TIMEOUT_MS, POLO_PORT, QUERY_TTL } from '../protocol/limits.js';
import { gridOf } from '../protocol/address.js';
import type { AuthPolicy, GridKey } from '../auth/gridAuth.js';

/** Options of one discovery call. Every field is optional; defaults are the reference's. */
export interface QueryOptions {
  /**
   * Multicast group the query goes to (a "grid"): IPv4, or IPv6 (an IPv6 twin such as
   * ff02::224:0:0:112 names its IPv4 grid, src/protocol/address.ts). Default 224.0.0.112.
   */
  group?: string;
  /** UDP port polods listen on. Default 1337. */
  port?: number;
  /**
   * Absolute deadline of the whole call, in ms (default 1000). Unlike the reference, whose window
   * restarts on every datagram (bug B14), this never stretches however busy the network is.
   */
  timeout?: number;
  /** Resolve as soon as this many nodes were accepted; 0 or undefined = no limit (bug B11). */
  maxNodes?: number;
  /** IPv4 addresses whose replies are ignored (compared as IP strings: bug B9). */
  exclude?: readonly string[];
  /** Keep a node only if its reply params contain every key of this object with an equal value. */
  params?: JsonObject;
  /**
   * Extra sends of the query while nobody has been accepted yet, spread evenly over the deadline
   * (at timeout·k/(retries+1), k = 1..retries). The reference only listened longer (bug B12).
   */
  retries?: number;
  /**
   * Local IPv4 address the multicast query leaves from. Default: every up, multicast-capable,
   * non-loopback interface, one datagram each (src/discovery/targets.ts).
   */
  interface?: string;
  /** Multicast TTL of the query. Default 2, as the reference sends it. */
  ttl?: number;
  /** Aborting rejects the call (or ends the stream) with AbortedError and closes its socket. */
  signal?: AbortSignal;
  /**
   * Grid keys (src/auth/gridAuth.ts readGridKeyFile): queries are signed with the first, replies
   * verified with any (docs/protocol.md §2.4). Results then carry `verified`.
   */
  keys?: readonly GridKey[];
  /** `required` (default with keys): unsigned replies dropped; `preferred`: kept, `verified: false`; `off`. */
  auth?: AuthPolicy;
}

/** The largest `timeout`: setTimeout silently turns anything longer into 1 ms. */
export const MAX_TIMEOUT_MS = 2_147_483_647;
/** The largest `retries`: more resends within one deadline would only flood the group. */
export const MAX_RETRIES = 100;

/** Options after defaults and validation: what the collection code works from. */
export interface ResolvedQuery {
  readonly group: string;
  readonly port: number;
  readonly timeout: number;
  readonly maxNodes: number;
  readonly exclude: ReadonlySet<string>;
  readonly params: JsonObject | undefined;
  readonly retries: number;
  readonly iface: string | undefined;
  readonly ttl: number;
  /** The instance's signal and the call's: either one aborts the call. */
  readonly signals: readonly AbortSignal[];
  /** Keys, when the grid is keyed and auth is not off. */
  readonly keys: readonly GridKey[];
  readonly auth: AuthPolicy;
}

/**
 * Merges call options over instance defaults (a key left undefined keeps the default) and
 * validates the result. Throws InvalidArgumentError naming the first bad option.
 */
export function resolveQuery(defaults: QueryOptions, options: QueryOptions = {}): ResolvedQuery {
  const merged = mergeOptions(defaults, options);
  const given = merged.group ?? DEFAULT_GROUP;
  // An IPv6 twin names its IPv4 grid: asked over IPv4 where a link has IPv4 (targets.ts).
  const group = gridOf(given);
  if (group === undefined) invalid('group', given, 'a multicast address (224.0.0.0/4 or ff00::/8)');
  const iface = merged.interface;
  if (iface !== undefined && !isIPv4(iface)) invalid('interface', iface, 'a local IPv4 address');
  const exclude = merged.exclude ?? [];
  if (!Array.isArray(exclude)) invalid('exclude', exclude, 'a list of IP addresses');
  for (const address of exclude) {
    if (typeof address !== 'string' || !(isIPv4(address) || isIPv6(address))) invalid('exclude', address, 'an IPv4 or IPv6 address');
  }
  const params = merged.params;
  if (params !== undefined && !isJsonObject(params)) invalid('params', params, 'a JSON object');
  const signals = [defaults.signal, options.signal].filter((s): s is AbortSignal => s !== undefined);
  const keys = merged.keys ?? [];
  if (!Array.isArray(keys) || keys.some((k: unknown) => typeof k !== 'object' || k === null || !Buffer.isBuffer((k as GridKey).key))) {
    invalid('keys', keys, 'a list of grid keys (readGridKeyFile)');
  }
  const auth = merged.auth ?? (keys.length > 0 ? 'required' : 'off');
  if (auth !== 'required' && auth !== 'preferred' && auth !== 'sealed' && auth !== 'off') invalid('auth', auth, 'required, preferred, sealed or off');
  if (auth !== 'off' && keys.length === 0) invalid('auth', auth, "'off' without keys");
  return {
    group,
    port: integer('port', merged.port ?? POLO_PORT, 1, 65535),
    timeout: integer('timeout', merged.timeout ?? DEFAULT_TIMEOUT_MS, 0, MAX_TIMEOUT_MS),
    maxNodes: integer('maxNodes', merged.maxNodes ?? 0, 0, Number.MAX_SAFE_INTEGER),
    exclude: new Set(exclude),
    params,
    retries: integer('retries', merged.retries ?? 0, 0, MAX_RETRIES),
    iface,
    ttl: integer('ttl', merged.ttl ?? QUERY_TTL, 0, 255),
    signals: [...new Set(signals)],
    keys: auth === 'off' ? [] : keys,
    auth,
  };
}

/** Checks a service id before it goes on the wire (polod drops an empty one silently). */
export function checkService(service: unknown): string {
  if (typeof service !== 'string' || service.length === 0) invalid('service', service, 'a non-empty string');
  return service;
}

/** `{...defaults, ...options}`, except that a key explicitly set to undefined keeps the default. */
export function mergeOptions<T extends object>(defaults: T, options: T): T {
  const merged: Record<string, unknown> = { ...(defaults as Record<string, unknown>) };
  for (const [key, value] of Object.entries(options)) if (value !== undefined) merged[key] = value;
  return merged as T;
}

function integer(name: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    invalid(name, value, `an integer from ${min} to ${max}`);
  }
  return value;
}

function invalid(name: string, value: unknown, expected: string): never {
  throw new InvalidArgumentError(`invalid ${name} ${describe(value)}: expected ${expected}`);
}

function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 64 ? `${value.slice(0, 64)}…` : value);
  if (typeof value === 'number' || typeof value === 'boolean' || value === null || value === undefined) {
    return String(value);
  }
  return Array.isArray(value) ? 'array' : typeof value;
}
