/**
 * marcod's requests (docs/protocol.md §4): one datagram from a local binding in, one typed request or
 * one error out. Pure: no sockets, timers or logging. Every key is validated here, once, and an
 * error names the key as the binding sent it; the handler downstream trusts the values.
 *
 * Tolerance follows what the bindings in the wild send (docs/protocol.md §4): `max_nodes` (Python, C++)
 * and `max-nodes` (Java), null or 0 meaning no limit; `timeout` as an int, a float or a numeric
 * string, null or 0 meaning marcod's default; extra keys (`node` on Marco and Request-For,
 * anything unknown) ignored.
 */
import { InvalidArgumentError, ProtocolError } from '../errors.js';
import { MAX_RETRIES } from '../discovery/options.js';
import { decodeObject } from '../protocol/codec.js';
import { isJsonObject, type Json, type JsonObject } from '../protocol/json.js';
import { MAX_JSON_DEPTH } from '../protocol/limits.js';
import { MAX_REQUEST_BYTES, MAX_REQUEST_TIMEOUT_MS } from './limits.js';
import { gridOf, MULTICAST_RANGE } from '../protocol/address.js';
import { isIPv4, isIPv6 } from '../util/ipv4.js';

/** Options shared by the two group queries (Marco and Request-For). */
export interface GroupQueryRequest {
  /** Stop at this many accepted nodes; 0 = no limit. */
  readonly maxNodes: number;
  /** Addresses (IPv4, or IPv6 as replies show them) whose replies are ignored. */
  readonly exclude: readonly string[];
  /** Keep only nodes whose params contain every key with an equal value; undefined = all. */
  readonly params: JsonObject | undefined;
  /** Deadline in ms; undefined = marcod's configured default. */
  readonly timeout: number | undefined;
  /** Multicast group; undefined = marcod's configured group. */
  readonly group: string | undefined;
  /** Real resends while nobody answered (bug B12: the reference never resent). */
  readonly retries: number;
  /**
   * Extension (`"fresh": true`): run a network query even when marcod's warm view of the grid
   * could answer (docs/protocol.md, marcod). Reference bindings never send it.
   */
  readonly fresh?: boolean;
}

/** `{"Command": "Marco", …}`: every node of the group. */
export interface MarcoRequest extends GroupQueryRequest {
  readonly command: 'Marco';
}

/** `{"Command": "Request-For", "Params": "<id>", …}` (or `Request-for`): nodes offering a service. */
export interface RequestForRequest extends GroupQueryRequest {
  readonly command: 'Request-For';
  readonly service: string;
}

/** `{"Command": "Services", "node": …, "timeout": …}`: the services one node offers. */
export interface ServicesRequest {
  readonly command: 'Services';
  /** IPv4 address or host name. */
  readonly node: string;
  readonly timeout: number | undefined;
  /** Extension: list only this group's services (sent to polod as `"Group"`). */
  readonly group: string | undefined;
  /**
   * Extension (`"Envelope": true`, sent by our TypeScript client): reply with an object that
   * tells "no answer" from "no services" and names the responder, instead of the bare array.
   */
  readonly envelope: boolean;
}

/** A valid request. */
export type MarcodRequest = MarcoRequest | RequestForRequest | ServicesRequest;

/**
 * What the error reply carries: `true` for a missing or unknown `Command` (exactly the
 * reference's `{"Error": true}`), otherwise a one-line reason naming the problem.
 */
export type ErrorValue = true | string;

/** The outcome of parsing one datagram. */
export type ParsedRequest = { readonly ok: true; readonly request: MarcodRequest } | { readonly ok: false; readonly error: ErrorValue };

/** Parses one request datagram. Never throws: whatever arrives becomes a request or an error. */
export function parseRequest(data: Uint8Array): ParsedRequest {
  let msg: JsonObject;
  try {
    msg = decodeObject(data, MAX_REQUEST_BYTES);
  } catch (err) {
    return { ok: false, error: err instanceof ProtocolError ? decodeFailure(err, data.byteLength) : 'invalid request' };
  }
  try {
    const request = toRequest(msg);
    return request === undefined ? { ok: false, error: true } : { ok: true, request };
  } catch (err) {
    if (err instanceof InvalidArgumentError) return { ok: false, error: err.message };
    throw err;
  }
}

/** The request a JSON object holds; undefined for a missing or unknown command. */
function toRequest(msg: JsonObject): MarcodRequest | undefined {
  switch (msg['Command']) {
    case 'Marco':
      return { command: 'Marco', ...groupQuery(msg) };
    case 'Request-For':
    case 'Request-for': {
      const service = msg['Params'];
      if (typeof service !== 'string' || service.length === 0) {
        invalid('Params', service, 'the service id, a non-empty string');
      }
      // `node` is ignored, as the reference did (its unicast branch was dead code, bug B6).
      return { command: 'Request-For', service, ...groupQuery(msg) };
    }
    case 'Services': {
      const node = msg['node'];
      if (typeof node !== 'string' || node.length === 0) invalid('node', node, 'an IPv4 address or a host name');
      return {
        command: 'Services',
        node,
        timeout: timeout(msg['timeout']),
        group: group(msg['group']),
        envelope: msg['Envelope'] === true,
      };
    }
    default:
      return undefined;
  }
}

function groupQuery(msg: JsonObject): GroupQueryRequest {
  return {
    maxNodes: maxNodes(msg),
    exclude: exclude(msg['exclude']),
    params: params(msg['params']),
    timeout: timeout(msg['timeout']),
    // Read for Request-For too: the reference dropped it there (bug B16).
    group: group(msg['group']),
    retries: count('retries', msg['retries'], MAX_RETRIES),
    ...(fresh(msg['fresh']) && { fresh: true }),
  };
}

/** `fresh`: a boolean; absent or null = false. */
function fresh(value: Json | undefined): boolean {
  if (value === undefined || value === null) return false;
  if (typeof value !== 'boolean') invalid('fresh', value, 'true or false');
  return value;
}

/**
 * `max_nodes`, or Java's `max-nodes` (which the reference ignored) when `max_nodes` is absent or
 * null. Null and 0 mean no limit; an integer-valued number or a string of digits is accepted.
 */
function maxNodes(msg: JsonObject): number {
  const snake = msg['max_nodes'];
  if (snake !== undefined && snake !== null) return count('max_nodes', snake, Number.MAX_SAFE_INTEGER);
  return count('max-nodes', msg['max-nodes'], Number.MAX_SAFE_INTEGER);
}

/** A non-negative integer (a number or a string of digits), or 0 when absent or null. */
function count(key: string, value: Json | undefined, max: number): number {
  if (value === undefined || value === null) return 0;
  const n = typeof value === 'string' && /^\s*\d+\s*$/.test(value) ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > max) {
    invalid(key, value, `an integer from 0 to ${max}, or null`);
  }
  return n;
}

/**
 * Milliseconds: an int, a float (rounded up, so a positive value never becomes 0) or a numeric
 * string. Absent, null and 0 mean "marcod's default", as the reference's falsy test did.
 */
function timeout(value: Json | undefined): number | undefined {
  if (value === undefined || value === null) return undefined;
  const n = typeof value === 'string' && /^\s*\d+(\.\d+)?\s*$/.test(value) ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isFinite(n) || n < 0 || n > MAX_REQUEST_TIMEOUT_MS) {
    invalid('timeout', value, `milliseconds, a number from 0 to ${MAX_REQUEST_TIMEOUT_MS}, or null`);
  }
  const ms = Math.ceil(n);
  return ms === 0 ? undefined : ms;
}

/** A list of IP address strings, compared with each reply's source IP (bug B9). */
function exclude(value: Json | undefined): string[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) invalid('exclude', value, 'a list of IP addresses');
  for (const address of value) {
    if (typeof address !== 'string' || !(isIPv4(address) || isIPv6(address))) invalid('exclude entry', address, 'an IPv4 or IPv6 address');
  }
  return value as string[];
}

/** The params filter: an object, or none when absent, null or empty. */
function params(value: Json | undefined): JsonObject | undefined {
  if (value === undefined || value === null) return undefined;
  if (!isJsonObject(value)) invalid('params', value, 'a JSON object');
  return Object.keys(value).length === 0 ? undefined : value;
}

/** A multicast group, or undefined (marcod's group) when absent, null or empty. */
function group(value: Json | undefined): string | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  const grid = gridOf(value);
  if (grid === undefined) invalid('group', value, `a multicast address (IPv4 ${MULTICAST_RANGE})`);
  return grid;
}

function decodeFailure(err: ProtocolError, size: number): string {
  switch (err.reason) {
    case 'too-large':
      return `request of ${size} bytes exceeds the ${MAX_REQUEST_BYTES}-byte limit`;
    case 'invalid-utf8':
      return 'request is not valid UTF-8';
    case 'too-deep':
      return `request is nested deeper than ${MAX_JSON_DEPTH} levels`;
    case 'not-object':
      return 'request is not a JSON object';
    default:
      return 'request is not valid JSON';
  }
}

function invalid(key: string, value: unknown, expected: string): never {
  if (value === undefined) throw new InvalidArgumentError(`missing ${key}: expected ${expected}`);
  throw new InvalidArgumentError(`invalid ${key} ${describe(value)}: expected ${expected}`);
}

/** A short, one-line rendering of a request value for an error reason. */
function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  if (typeof value === 'number' || typeof value === 'boolean' || value === null) return String(value);
  return Array.isArray(value) ? '(a list)' : '(an object)';
}
