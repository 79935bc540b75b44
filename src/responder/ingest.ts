/**
 * The one gate every datagram a responder receives goes through: count it, decode it, and turn
 * anything that is not a valid query into a counter and a (bounded) debug line instead of an
 * exception.
 */
import type { GridKey } from '../auth/gridAuth.js';
import { ProtocolError } from '../errors.js';
import { decodeQuery } from '../protocol/codec.js';
import type { Query } from '../protocol/messages.js';
import type { RemoteInfo } from '../transport/transport.js';
import type { AuthGate } from './authGate.js';
import type { Guard } from './guard.js';
import type { RemoteLog } from './remoteLog.js';
import type { PoloStats } from './stats.js';

/** A query that passed the gates, with the authenticator it came with (keyed grids). */
export interface Admitted {
  readonly query: Query;
  /** The query's nonce, which the reply is bound to. */
  readonly nonce: string | undefined;
  /** The key it was signed with, which signs the reply. */
  readonly key: GridKey | undefined;
}

/**
 * The gates in front of {@link ingest}, the same for group and unicast datagrams: a source (or
 * the node) out of reply budget, then, in a keyed grid, a datagram whose authenticator fails, is
 * counted and dropped before any decoding.
 */
export function admit(data: Uint8Array, from: RemoteInfo, stats: PoloStats, guard: Guard, auth: AuthGate | undefined): Admitted | undefined {
  if (!guard.replies.admit(from.address)) {
    stats.received++;
    stats.limited++;
    return undefined;
  }
  if (!auth) {
    const query = ingest(data, from, stats, guard.log);
    return query && { query, nonce: undefined, key: undefined };
  }
  const checked = auth.check(data);
  if (!checked.ok) {
    stats.received++;
    stats.authRejected++;
    guard.log.debug(() => ({ from: from.address, reason: checked.reason }), 'query refused by grid authentication');
    return undefined;
  }
  const query = ingest(checked.body, from, stats, guard.log);
  return query && { query, nonce: checked.nonce, key: checked.key };
}

/** The query in `data`, or undefined (counted by reason, logged at debug) when there is none. */
export function ingest(data: Uint8Array, from: RemoteInfo, stats: PoloStats, log: RemoteLog): Query | undefined {
  stats.received++;
  // Port 0 cannot be replied to (it is forged, or a raw-socket probe): not worth decoding.
  const reason = from.port === 0 ? 'source-port-0' : undefined;
  try {
    if (reason === undefined) {
      const query = decodeQuery(data);
      stats.queries[query.command] = (stats.queries[query.command] ?? 0) + 1;
      return query;
    }
  } catch (err) {
    return ignored(err instanceof ProtocolError ? err.reason : 'internal', from, stats, log);
  }
  return ignored(reason ?? 'internal', from, stats, log);
}

function ignored(reason: string, from: RemoteInfo, stats: PoloStats, log: RemoteLog): undefined {
  stats.malformed[reason] = (stats.malformed[reason] ?? 0) + 1;
  log.debug(() => ({ from: from.address, port: from.port, reason }), 'ignored datagram');
  return undefined;
}
