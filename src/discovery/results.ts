/** What discovery calls return: nodes, service lists, and the live stream of a query. */
import type { JsonObject } from '../protocol/json.js';

/** One node that answered: its IP address (the reply's source) and the params it sent. */
export interface NodeResult {
  /** The responder's IPv4 address; replies never name their sender, the source address does. */
  address: string;
  /** Node params (Marco query) or the service's params (Request-For query). */
  params: JsonObject;
  /** In a keyed grid: whether the reply carried a valid authenticator (docs/protocol.md §2.4). */
  verified?: boolean;
}

/** One service of a Services reply. */
export interface ServiceResult {
  id: string;
  params: JsonObject;
}

/** A node's answer to Services. */
export interface ServicesResult {
  address: string;
  services: ServiceResult[];
  /** The node cut the list to fit one datagram (our polod's `"Truncated"` extension key). */
  truncated?: boolean;
  /** In a keyed grid: whether the reply carried a valid authenticator. */
  verified?: boolean;
}

/**
 * Counters of one query, readable while it runs and after. Every datagram the query socket
 * receives is counted exactly once in `received` and at most once in one of the other counters;
 * nothing is dropped without a count.
 */
export interface QueryStats {
  /** Datagrams received on the query socket. */
  received: number;
  /** Nodes accepted (yielded, or collected). `maxNodes` counts these and nothing else (bug B11). */
  accepted: number;
  /** Datagrams skipped as malformed: not JSON, not an object, or not the expected reply (bug B18). */
  malformed: number;
  /** Replies from an `exclude`d address. */
  excluded: number;
  /** Replies whose params did not match the `params` filter. */
  filtered: number;
  /** Second and later replies from an already accepted address (a retry makes nodes answer twice). */
  duplicates: number;
  /** Valid replies not kept because a bound was reached (unread stream queue, or node count). */
  dropped: number;
}

/**
 * The live result of a query: an async iterable yielding each accepted node as its reply
 * arrives. The query runs from the call that created it until its deadline, `maxNodes`, an
 * abort or `close()`; breaking out of a `for await` closes it. Replies that arrive while
 * nobody reads wait in a bounded queue (overflow counted in `stats.dropped`).
 */
export interface QueryStream extends AsyncIterable<NodeResult> {
  /** Live counters of this query. */
  readonly stats: Readonly<QueryStats>;
  /** Ends the query now and closes its socket; resolves once closed. Idempotent. */
  close(): Promise<void>;
}
