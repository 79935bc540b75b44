/**
 * Where a grid lives in etcd (docs/operations.md, "Grids across subnets"). One prefix per grid,
 * so a watcher follows a whole grid with one prefix watch:
 *
 *   /marcopolo/v1/grids/<group>:<port>/nodes/<ipv4>              the node: instance, params, services
 *   /marcopolo/v1/grids/<group>:<port>/services/<id>/<ipv4>      one per offered service: its params
 *
 * Every key of a node hangs on that node's lease. The per-service keys let a Request-For read
 * only the providers of one service (a range over `services/<id>/`) however large the grid.
 */
import { isJsonObject, jsonObjectOf, type JsonObject } from '../protocol/json.js';
import { isIPv4 } from '../util/ipv4.js';

/** Root of every MarcoPolo key; the version changes if the layout ever does. */
export const ROOT = '/marcopolo/v1/grids/';

/** The prefix of one grid (a group and its port). */
export function gridPrefix(group: string, port: number): string {
  return `${ROOT}${group}:${port}/`;
}

/** Key of a node in a grid. */
export function nodeKey(group: string, port: number, address: string): string {
  return `${gridPrefix(group, port)}nodes/${address}`;
}

/** Prefix of the providers of one service in a grid. */
export function servicePrefix(group: string, port: number, id: string): string {
  return `${gridPrefix(group, port)}services/${encodeURIComponent(id)}/`;
}

/** Key of one node's offer of one service. */
export function serviceKey(group: string, port: number, id: string, address: string): string {
  return `${servicePrefix(group, port, id)}${address}`;
}

/** What a node key holds (JSON). */
export interface NodeRecord {
  /** Random per polod start: a restart is a new instance. */
  readonly instance: string;
  /** Revision of the content, as in the node's announcements. */
  readonly rev: number;
  readonly params: JsonObject;
  readonly services: ReadonlyArray<{ readonly id: string; readonly params: JsonObject }>;
  /** Ids of services held back by a failing health check. */
  readonly failing?: readonly string[];
}

/** The address of a node key under `prefix`, or undefined for any other key. */
export function nodeAddressOf(prefix: string, key: string): string | undefined {
  const head = `${prefix}nodes/`;
  if (!key.startsWith(head)) return undefined;
  const address = key.slice(head.length);
  return isIPv4(address) ? address : undefined;
}

/** Parses a node key's value (JSON text); undefined when it is not a node record (written by something else). */
export function readNodeRecord(text: string): NodeRecord | undefined {
  const parsed = jsonObjectOf(text);
  if (parsed === undefined) return undefined;
  const { instance, rev, params, services, failing } = parsed;
  if (typeof instance !== 'string' || typeof rev !== 'number' || !isJsonObject(params) || !Array.isArray(services)) return undefined;
  const list: Array<{ id: string; params: JsonObject }> = [];
  for (const s of services) {
    if (!isJsonObject(s) || typeof s['id'] !== 'string' || !isJsonObject(s['params'])) return undefined;
    list.push({ id: s['id'], params: s['params'] });
  }
  const failingIds = Array.isArray(failing) ? failing.filter((f): f is string => typeof f === 'string') : undefined;
  return { instance, rev, params, services: list, ...(failingIds && failingIds.length > 0 && { failing: failingIds }) };
}

/** Parses a service key's value (JSON text: the service's params). */
export function readServiceParams(text: string): JsonObject | undefined {
  return jsonObjectOf(text);
}
