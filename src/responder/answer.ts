/**
 * What to answer: a pure function from a decoded query and a view of the node's services to a
 * decision. The Polo class only wires socket → decode → answer → encode → send.
 */
import type { JsonObject } from '../protocol/json.js';
import type { Query, Reply, ServiceEntry } from '../protocol/messages.js';
import type { Service } from './service.js';

/** What `answer` may look at. */
export interface AnswerContext {
  /** Params of the Polo reply (a JSON object). */
  readonly nodeParams: JsonObject;
  /** Root services offered in the group the query arrived on (or every group, for unicast). */
  readonly offeredServices: readonly Service[];
  /** User services of that group by user name; a user absent from the map was never loaded. */
  readonly userServices: ReadonlyMap<string, readonly Service[]>;
  /** What makes an id a user service `user:service` (groups 1 and 2 are user and service). */
  readonly verifyRegexp: RegExp;
}

/** The outcome of a query. */
export type Decision =
  | { readonly kind: 'reply'; readonly reply: Reply }
  /** Nothing to say (no negative replies exist in the protocol); `reason` goes to debug logs. */
  | { readonly kind: 'silent'; readonly reason: string }
  /** The user's services must be loaded from `~user/.polo` before this can be answered. */
  | { readonly kind: 'load-user'; readonly user: string; readonly service: string };

/** Decides the reply to `query`. Pure: same inputs, same decision. */
export function answer(query: Query, ctx: AnswerContext): Decision {
  switch (query.command) {
    case 'Marco':
      return { kind: 'reply', reply: { command: 'Polo', params: ctx.nodeParams } };
    case 'Request-For':
      return requestFor(query.service, ctx);
    case 'Services':
      return { kind: 'reply', reply: { command: 'Services', services: listServices(ctx.offeredServices) } };
  }
}

/** Splits `user:service` per the configured pattern, or undefined for a root id. */
export function splitUserId(id: string, verifyRegexp: RegExp): { user: string; service: string } | undefined {
  const m = verifyRegexp.exec(id);
  if (!m || m[1] === undefined || m[2] === undefined) return undefined;
  return { user: m[1], service: m[2] };
}

function requestFor(id: string, ctx: AnswerContext): Decision {
  const userId = splitUserId(id, ctx.verifyRegexp);
  if (userId) {
    const services = ctx.userServices.get(userId.user);
    if (!services) return { kind: 'load-user', user: userId.user, service: userId.service };
    return found(services, userId.service, id);
  }
  return found(ctx.offeredServices, id, id);
}

function found(services: readonly Service[], id: string, wireId: string): Decision {
  const service = services.find((s) => s.id === id && !s.disabled);
  if (!service) return { kind: 'silent', reason: `service ${JSON.stringify(wireId)} not offered here` };
  return { kind: 'reply', reply: { command: 'OK', params: service.params } };
}

/** The Services listing: enabled services, first one of each id. */
export function listServices(services: readonly Service[]): ServiceEntry[] {
  const seen = new Set<string>();
  const list: ServiceEntry[] = [];
  for (const s of services) {
    if (s.disabled || seen.has(s.id)) continue;
    seen.add(s.id);
    list.push({ id: s.id, params: s.params });
  }
  return list;
}
