/**
 * Who a marcod request comes from, for sharing capacity fairly: the uid that owns the sending UDP
 * socket, as the kernel tells it (src/system/socketOwner.ts), or, when it does not (no /proc, the
 * socket already closed, an ambiguous match), the source address and port. One user's programs
 * together are one client, whatever ports they send from; an unidentified sender is one client
 * per socket.
 *
 * Answers are remembered for a second per source address and port (at most CACHE_ENTRIES), so a
 * burst of requests costs one read of the socket table rather than one each. A port reused by
 * another user within that second is counted for the first one: this only decides who waits for
 * a slot, never who gets which reply.
 */
import { udpPeerUid } from '../system/socketOwner.js';
import type { RemoteInfo } from '../transport/transport.js';

const CACHE_MS = 1000;
const CACHE_ENTRIES = 4096;

/** Looks up (and briefly remembers) the client key of a request's source. */
export class ClientIdentifier {
  private readonly cache = new Map<string, { key: string; at: number }>();

  constructor(private readonly lookup: (from: RemoteInfo) => Promise<number | undefined> = udpPeerUid) {}

  /** `uid:<n>`, or `addr:<address>:<port>` when the kernel does not tell. Never rejects. */
  async keyOf(from: RemoteInfo): Promise<string> {
    const source = `${from.address}:${from.port}`;
    const now = performance.now();
    const known = this.cache.get(source);
    if (known && now - known.at < CACHE_MS) return known.key;
    let uid: number | undefined;
    try {
      uid = await this.lookup(from);
    } catch {
      uid = undefined;
    }
    const key = uid === undefined ? `addr:${source}` : `uid:${uid}`;
    if (this.cache.size >= CACHE_ENTRIES) this.cache.clear();
    this.cache.set(source, { key, at: now });
    return key;
  }
}
