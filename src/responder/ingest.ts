/**
 * The one gate every datagram a responder receives goes through: count it, decode it, and turn
 * anything that is not a valid query into a counter and a (bounded) debug line instead of an
 * exception.
 */
import { ProtocolError } from '../errors.js';
import { decodeQuery } from '../protocol/codec.js';
import type { Query } from '../protocol/messages.js';
import type { RemoteInfo } from '../transport/transport.js';
import type { RemoteLog } from './remoteLog.js';
import type { PoloStats } from './stats.js';

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
