/**
 * The wire codec: bytes ⇄ typed messages. Pure: no sockets, timers or logging. `decode*` returns
 * a message or throws one ProtocolError whatever bytes arrive; `encode*` emits compact UTF-8 JSON
 * and refuses anything over the frame limit rather than letting it go out truncated.
 */
import { FrameTooLargeError, ProtocolError } from '../errors.js';
import { isJsonObject, type Json, type JsonObject } from './json.js';
import { MAX_DATAGRAM, MAX_JSON_DEPTH } from './limits.js';
import {
  QUERY_ALIASES,
  type Query,
  type Reply,
  type ServiceEntry,
  type ServicesReply,
} from './messages.js';

const utf8 = new TextDecoder('utf-8', { fatal: true });
const encoder = new TextEncoder();

/** Parses one datagram into a JSON object, or throws a ProtocolError saying why it can't. */
export function decodeObject(data: Uint8Array, limit = MAX_DATAGRAM): JsonObject {
  if (data.byteLength > limit) {
    throw new ProtocolError('too-large', `datagram of ${data.byteLength} bytes exceeds ${limit}`);
  }
  let text: string;
  try {
    text = utf8.decode(data);
  } catch {
    throw new ProtocolError('invalid-utf8', 'datagram is not valid UTF-8');
  }
  if (nestingDepth(text) > MAX_JSON_DEPTH) {
    throw new ProtocolError('too-deep', `JSON nested deeper than ${MAX_JSON_DEPTH}`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new ProtocolError('invalid-json', 'datagram is not valid JSON');
  }
  if (!isJsonObject(value)) throw new ProtocolError('not-object', 'datagram is not a JSON object');
  return value;
}

/** Datagrams up to this size are remembered by decodeQuery (queries are a few dozen bytes). */
const QUERY_CACHE_MAX_BYTES = 256;
/** How many distinct queries are remembered; the memo is emptied when full, so it stays bounded. */
const QUERY_CACHE_ENTRIES = 256;
const queryCache = new Map<string, Query>();

/**
 * Decodes a query sent to polod (docs/protocol.md §2). Extra keys are ignored. The same few queries
 * arrive over and over (`{"Command": "Marco"}`…), so valid ones are memoised by their bytes:
 * a repeat costs a map lookup instead of UTF-8 validation and JSON.parse. Only valid queries
 * are kept, frozen, and the memo is bounded whatever arrives.
 */
export function decodeQuery(data: Uint8Array): Query {
  if (data.byteLength > QUERY_CACHE_MAX_BYTES) return parseQuery(data);
  const key = Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('latin1');
  const known = queryCache.get(key);
  if (known) return known;
  const query = Object.freeze(parseQuery(data));
  if (queryCache.size >= QUERY_CACHE_ENTRIES) queryCache.clear();
  queryCache.set(key, query);
  return query;
}

function parseQuery(data: Uint8Array): Query {
  const msg = decodeObject(data);
  const wire = msg['Command'];
  if (typeof wire !== 'string') throw new ProtocolError('no-command', 'no "Command" string');
  const command = Object.hasOwn(QUERY_ALIASES, wire) ? QUERY_ALIASES[wire] : undefined;
  switch (command) {
    case 'Marco':
      return { command, wireCommand: wire };
    case 'Request-For': {
      const service = msg['Params'];
      if (typeof service !== 'string' || service.length === 0) {
        throw new ProtocolError('bad-field', '"Params" of Request-For must be a non-empty string');
      }
      return { command, service, wireCommand: wire };
    }
    case 'Services': {
      const group = msg['Group'];
      return typeof group === 'string' ? { command, group, wireCommand: wire } : { command, wireCommand: wire };
    }
    default:
      throw new ProtocolError('unknown-command', `unknown command ${JSON.stringify(wire).slice(0, 64)}`);
  }
}

/**
 * Decodes a reply received by a client. Both the reference's JSON styles are accepted (it is
 * parsed, never compared as bytes). A Services list is read from `Services` or, failing that,
 * from `Params` (docs/protocol.md §6).
 */
export function decodeReply(data: Uint8Array): Reply {
  const msg = decodeObject(data);
  const command = msg['Command'];
  if (command === 'Polo') {
    return { command, params: objectOrEmpty(msg['Params']) };
  }
  if (command === 'OK') {
    const list = Array.isArray(msg['Services']) ? msg['Services'] : msg['Params'];
    if (Array.isArray(list)) {
      const services = list.flatMap(serviceEntry);
      return msg['Truncated'] === true
        ? { command: 'Services', services, truncated: true, ...(typeof msg['Total'] === 'number' && { total: msg['Total'] }) }
        : { command: 'Services', services };
    }
    return { command, params: objectOrEmpty(msg['Params']) };
  }
  if (typeof command !== 'string') throw new ProtocolError('no-command', 'no "Command" string');
  throw new ProtocolError('unknown-command', `unexpected reply ${JSON.stringify(command).slice(0, 64)}`);
}

/** Encodes a query as compact JSON (`{"Command":"Marco"}` …). */
export function encodeQuery(query: Query): Uint8Array {
  const msg: JsonObject = { Command: query.command };
  if (query.command === 'Request-For') msg['Params'] = query.service;
  if (query.command === 'Services' && query.group !== undefined) msg['Group'] = query.group;
  return encodeFrame(msg);
}

/** Encodes a reply; throws FrameTooLargeError when it would not fit one datagram. */
export function encodeReply(reply: Reply): Uint8Array {
  if (reply.command === 'Services') return encodeFrame(servicesMessage(reply));
  return encodeFrame({ Command: reply.command, Params: reply.params });
}

/**
 * Encodes a Services reply. When the whole list fits one datagram under both keys (`Services`
 * and `Params`, see ServicesReply) that is what is sent. Otherwise each entry is sent once, under
 * `Params` only (the key the reference client reads; ours read either), and every entry that
 * still fits is listed, in the order given: an entry too large for the space left is skipped and
 * the smaller ones after it still go. Sending every entry twice, cut to a prefix, let one large
 * early entry empty the whole reply. When entries are left out the reply carries
 * `"Truncated": true` and `"Total": n` (extension keys a reference client ignores), so nothing is
 * ever sent cut in the middle of the JSON.
 */
export function encodeServicesReply(services: readonly ServiceEntry[], limit = MAX_DATAGRAM): Uint8Array {
  const whole = encodeJson(servicesMessage({ command: 'Services', services }));
  if (whole.byteLength <= limit) return whole;
  const entries = services.map((s) => ({ id: s.id, params: s.params }));
  const once = (list: Json[], total?: number): JsonObject =>
    total === undefined ? { Command: 'OK', Params: list } : { Command: 'OK', Params: list, Truncated: true, Total: total };
  const all = encodeJson(once(entries));
  if (all.byteLength <= limit) return all;
  // The frame of a cut reply without entries, then each entry (plus its comma) while it fits.
  let used = encodeJson(once([], services.length)).byteLength;
  const kept: Json[] = [];
  for (const entry of entries) {
    const size = Buffer.byteLength(JSON.stringify(entry), 'utf8') + (kept.length > 0 ? 1 : 0);
    if (used + size > limit) continue;
    used += size;
    kept.push(entry);
  }
  return encodeFrame(once(kept, services.length), limit);
}

/** Compact UTF-8 JSON of a message, refused past the frame limit. */
export function encodeFrame(msg: JsonObject, limit = MAX_DATAGRAM): Uint8Array {
  const bytes = encodeJson(msg);
  if (bytes.byteLength > limit) throw new FrameTooLargeError(bytes.byteLength, limit);
  return bytes;
}

function encodeJson(msg: JsonObject): Uint8Array {
  return encoder.encode(JSON.stringify(msg));
}

function servicesMessage(reply: ServicesReply): JsonObject {
  const list: Json[] = reply.services.map((s) => ({ id: s.id, params: s.params }));
  return { Command: 'OK', Services: list, Params: list };
}

function objectOrEmpty(value: Json | undefined): JsonObject {
  return isJsonObject(value) ? value : {};
}

/** One entry of a service list as `[entry]`, or `[]` when it is not one (for flatMap). */
export function serviceEntry(value: Json): ServiceEntry[] {
  if (!isJsonObject(value) || typeof value['id'] !== 'string') return [];
  return [{ id: value['id'], params: objectOrEmpty(value['params']) }];
}

/**
 * Maximum nesting of brackets outside strings. Scanned before JSON.parse so a hostile datagram
 * of nested arrays costs one linear pass and never reaches the parser's recursion.
 */
function nestingDepth(text: string): number {
  let depth = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      depth++;
      if (depth > max) max = depth;
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return max;
}
