/**
 * Which replies a query accepts. Pure functions from one datagram to a verdict: they parse
 * (never compare bytes, docs/protocol.md §2), so the reference's `", "`-spaced, `\uXXXX`-escaped
 * replies are accepted like our compact ones.
 */
import { decodeObject, decodeReply } from '../protocol/codec.js';
import { isJsonObject, matchesFilter, type JsonObject } from '../protocol/json.js';
import { membersHint, providersHint } from '../membership/wire.js';
import type { Classifier } from './collector.js';
import type { NodeResult, ServicesResult } from './results.js';

/** The reply kinds a group query waits for. */
export type NodeReplyKind = 'Polo' | 'OK';

/**
 * Classifier of replies to a group query: `Polo` replies for Marco, `OK` replies for Request-For.
 * The responder is the reply's source address, which is also the dedupe key.
 */
export function nodeReplies(kind: NodeReplyKind, filter: JsonObject | undefined): Classifier<NodeResult> {
  return (data, from) => {
    let msg: JsonObject;
    try {
      msg = decodeObject(data);
    } catch (err) {
      return { kind: 'malformed', reason: (err as Error).message };
    }
    const params = kind === 'Polo' ? poloParams(msg) : serviceParams(msg);
    if (params === undefined) return { kind: 'malformed', reason: `not a ${kind} reply` };
    // Our polods' Polo replies say how many nodes the grid has, and their OK replies how many
    // offer the service (docs/protocol.md §8.4).
    const hint = kind === 'Polo' ? membersHint(msg) : providersHint(msg);
    if (filter !== undefined && !matchesFilter(params, filter)) return { kind: 'filtered', hint };
    return { kind: 'accept', key: from.address, value: { address: from.address, params }, hint };
  };
}

/**
 * Node params of a `Polo` reply. A non-object `Params` still proves the node is alive: the
 * reference's shipped config sends a string there (bug B10), so it becomes `{}` as in the codec.
 */
function poloParams(msg: JsonObject): JsonObject | undefined {
  if (msg['Command'] !== 'Polo') return undefined;
  const params = msg['Params'];
  return isJsonObject(params) ? params : {};
}

/** Service params of an `OK` reply to Request-For: they must be an object (a list is a Services reply). */
function serviceParams(msg: JsonObject): JsonObject | undefined {
  if (msg['Command'] !== 'OK') return undefined;
  const params = msg['Params'];
  return isJsonObject(params) ? params : undefined;
}

/** Classifier of replies to Services: the list is read from `Services` or `Params` (bug B2). */
export function servicesReplies(): Classifier<ServicesResult> {
  return (data, from) => {
    let result: ServicesResult;
    try {
      const reply = decodeReply(data);
      if (reply.command !== 'Services') return { kind: 'malformed', reason: 'not a Services reply' };
      result = { address: from.address, services: reply.services.map((s) => ({ id: s.id, params: s.params })) };
      if (reply.truncated === true) result.truncated = true;
    } catch (err) {
      return { kind: 'malformed', reason: (err as Error).message };
    }
    return { kind: 'accept', key: from.address, value: result };
  };
}
