/** Counters of a responder: everything that happens to a datagram is counted, nothing silently. */
export interface PoloStats {
  /** Datagrams received. */
  received: number;
  /** Valid queries received, by command (Marco, Request-For, Services). */
  queries: Record<string, number>;
  /** Replies handed to the socket, by the command of the query they answer. */
  replies: Record<string, number>;
  /** Bytes of those replies. */
  replyBytes: number;
  /** Replies sent. */
  answered: number;
  /** Queries answered with silence (unknown service, unknown user). */
  silent: number;
  /** Datagrams that were not valid queries, by reason (invalid-json, not-object, …). */
  malformed: Record<string, number>;
  /** Replies not sent because they would not fit one datagram. */
  oversize: number;
  /** Replies the socket failed to send. */
  sendErrors: number;
  /** Failed multicast joins (each retry counts). */
  joinFailures: number;
  /** Datagrams dropped undecoded, or replies not sent, because a reply budget was spent. */
  limited: number;
  /** Unicast queries not answered because their source is not on-link (guard.ts). */
  offLink: number;
  /** Queries for an unknown user not answered because user lookups were rate-limited. */
  lookupsRefused: number;
  /** Queries refused by the grid's authentication: unsigned (policy required), forged, stale, replayed. */
  authRejected: number;
}

/** Fresh zeroed counters. */
export function newPoloStats(): PoloStats {
  return { received: 0, queries: {}, replies: {}, replyBytes: 0, answered: 0, silent: 0, malformed: {}, oversize: 0, sendErrors: 0, joinFailures: 0, limited: 0, offLink: 0, lookupsRefused: 0, authRejected: 0 };
}

/** The query command a reply answers: what the metrics label replies with (src/metrics/polod.ts). */
const QUERY_OF_REPLY: Readonly<Record<string, string>> = { Polo: 'Marco', OK: 'Request-For', Services: 'Services' };

/** Counts one reply of `bytes` bytes (a property increment: no allocation on the hot path). */
export function countReply(stats: PoloStats, replyCommand: string, bytes: number): void {
  const command = QUERY_OF_REPLY[replyCommand] ?? replyCommand;
  stats.replies[command] = (stats.replies[command] ?? 0) + 1;
  stats.replyBytes += bytes;
}
