/** Counters of a responder: everything that happens to a datagram is counted, nothing silently. */
export interface PoloStats {
  /** Datagrams received. */
  received: number;
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
}

/** Fresh zeroed counters. */
export function newPoloStats(): PoloStats {
  return { received: 0, answered: 0, silent: 0, malformed: {}, oversize: 0, sendErrors: 0, joinFailures: 0 };
}
