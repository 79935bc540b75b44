/**
 * The one gate every datagram a responder receives goes through: count it, decode it, and turn
 * anything that is not a valid query into a counter and a debug line instead of an exception.
 */
import { ProtocolError } from '../errors.js';
import { decodeQuery } from '../protocol/codec.js';
import type { Query } from '../protocol/messages.js';
import type { RemoteInfo } from '../transport/transport.js';
import type { Logger } from '../util/log.js';
import type { PoloStats } from './stats.js';

/** The query in `data`, or undefined (counted by reason, logged at debug) when there is none. */
export function ingest(data: Uint8Array, from: RemoteInfo, stats: PoloStats, log: Logger): Query | undefined {
  stats.received++;
  try {
    const query = decodeQuery(data);
    stats.queries[query.command] = (stats.queries[query.command] ?? 0) + 1;
    return query;
  } catch (err) {
    const reason = err instanceof ProtocolError ? err.reason : 'internal';
    stats.malformed[reason] = (stats.malformed[reason] ?? 0) + 1;
    log.debug({ from: from.address, reason }, 'ignored datagram');
    return undefined;
  }
}
