import type { JsonObject } from './json.js';

/** Commands a polod answers, with the aliases the reference accepts (docs/protocol.md §2). */
export const QUERY_ALIASES: Readonly<Record<string, QueryCommand>> = {
  Marco: 'Marco',
  Discover: 'Marco',
  'Request-For': 'Request-For',
  'Request-for': 'Request-For',
  Services: 'Services',
};

/** The canonical name of a query. */
export type QueryCommand = 'Marco' | 'Request-For' | 'Services';

/** "Who is there?" — every polod in the group answers with its node params. */
export interface MarcoQuery {
  readonly command: 'Marco';
  /** The command name as it came on the wire (`Marco` or `Discover`). */
  readonly wireCommand?: string;
}

/** "Who offers this service?" — only nodes offering it in the queried group answer. */
export interface RequestForQuery {
  readonly command: 'Request-For';
  readonly service: string;
  readonly wireCommand?: string;
}

/** "What do you offer?" — sent unicast (or to the group); the node lists its services. */
export interface ServicesQuery {
  readonly command: 'Services';
  /** Extension: restrict a unicast Services query to one group (`"Group"` on the wire). */
  readonly group?: string;
  readonly wireCommand?: string;
}

/** A decoded query. */
export type Query = MarcoQuery | RequestForQuery | ServicesQuery;

/** One entry of a Services reply. */
export interface ServiceEntry {
  readonly id: string;
  readonly params: JsonObject;
}

/** polod's answer to Marco: `{"Command":"Polo","Params":{…node params…}}`. */
export interface PoloReply {
  readonly command: 'Polo';
  readonly params: JsonObject;
}

/** polod's answer to Request-For: `{"Command":"OK","Params":{…service params…}}`. */
export interface ServiceReply {
  readonly command: 'OK';
  readonly params: JsonObject;
  /** The service id asked for, when a responder made the reply (never on the wire). */
  readonly id?: string;
}

/**
 * polod's answer to Services: `{"Command":"OK","Services":[…],"Params":[…]}`. The list goes under
 * both keys because the reference client reads `Params` while the reference server wrote
 * `Services` (docs/protocol.md §6). A list that does not fit twice is sent once, under `Params` only
 * (encodeServicesReply). `truncated` marks a list that left entries out to fit one datagram.
 */
export interface ServicesReply {
  readonly command: 'Services';
  readonly services: readonly ServiceEntry[];
  readonly truncated?: boolean;
  readonly total?: number;
}

/** A decoded reply. */
export type Reply = PoloReply | ServiceReply | ServicesReply;
