/**
 * What to answer: a pure function from a decoded query and a view of the node's services to a
 * decision. It is the only home of that rule: the Polo class wires socket → decode → answer →
 * encode → send, and the unicast listener asks the same function with a view of every group.
 */
import type { JsonObject } from '../protocol/json.js';
import type { Query, Reply } from '../protocol/messages.js';
import type { ServiceView } from '../registry/view.js';

/** What `answer` may look at. */
export interface AnswerContext {
  /** Params of the Polo reply (a JSON object). */
  readonly nodeParams: JsonObject;
  /** The services offered where the query arrived (a group, or every group for unicast). */
  readonly services: ServiceView;
}

/** Why a query gets no reply (there are no negative replies in the protocol). */
export type SilentReason =
  /** Request-For of an id not offered here. */
  | 'not-offered'
  /** Services naming another group than the one it arrived on. */
  | 'other-group';

/** The outcome of a query. */
export type Decision =
  | { readonly kind: 'reply'; readonly reply: Reply }
  /** Nothing to say; `reason` and `id` go to debug logs, formatted only when they are written. */
  | { readonly kind: 'silent'; readonly reason: SilentReason; readonly id?: string }
  /** The user's services must be loaded from `~user/.polo` before this can be answered. */
  | { readonly kind: 'load-user'; readonly user: string };

const OTHER_GROUP: Decision = { kind: 'silent', reason: 'other-group' };

/** Decides the reply to `query`. Pure: same inputs, same decision. */
export function answer(query: Query, ctx: AnswerContext): Decision {
  switch (query.command) {
    case 'Marco':
      return { kind: 'reply', reply: { command: 'Polo', params: ctx.nodeParams } };
    case 'Request-For': {
      const service = ctx.services.find(query.service);
      if (service) return { kind: 'reply', reply: { command: 'OK', params: service.params, id: query.service } };
      const user = ctx.services.unloadedUser(query.service);
      if (user !== undefined) return { kind: 'load-user', user };
      return { kind: 'silent', reason: 'not-offered', id: query.service };
    }
    case 'Services':
      // A Polo answers only for its own group; the `"Group"` key may name one.
      if (query.group !== undefined && ctx.services.group !== undefined && query.group !== ctx.services.group) return OTHER_GROUP;
      return { kind: 'reply', reply: { command: 'Services', services: ctx.services.listing() } };
  }
}
