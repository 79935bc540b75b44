/**
 * Who a marcod request comes from, for sharing capacity fairly: the uid that owns the sending UDP
 * socket, as the kernel tells it (src/system/socketOwner.ts), or, when it does not (no /proc, the
 * socket already closed, an ambiguous match), the source address and port. One user's programs
 * together are one client, whatever ports they send from; an unidentified sender is one client
 * per socket.
 *
 * The socket table is read at most once at a time: requests that arrive while it is being read
 * wait for the next reading, which answers all of them, so a flood of requests costs a bounded
 * number of readings rather than one each. Answers are also remembered for a second per source
 * address and port (at most CACHE_ENTRIES). A port reused by another user within that second is
 * counted for the first one: this only decides who waits for a slot, never who gets which reply.
 */
import { readUdpOwners, type UdpOwners } from '../system/socketOwner.js';
import type { RemoteInfo } from '../transport/transport.js';

const CACHE_MS = 1000;
const CACHE_ENTRIES = 4096;

/** Looks up (and briefly remembers) the client key of a request's source. */
export class ClientIdentifier {
  private readonly cache = new Map<string, { key: string; at: number }>();
  /** The reading in progress, if any. */
  private reading: Promise<UdpOwners> | undefined;
  /** The next reading, shared by everyone who arrived while `reading` ran. */
  private next: Promise<UdpOwners> | undefined;

  constructor(private readonly readOwners: () => Promise<UdpOwners> = readUdpOwners) {}

  /** A reading of the table that starts after this call (a sender that exists now is in it). */
  private freshOwners(): Promise<UdpOwners> {
    if (this.reading === undefined) {
      const mine = this.readOwners().finally(() => {
        if (this.reading === mine) this.reading = undefined;
      });
      this.reading = mine;
      return mine;
    }
    this.next ??= this.reading
      .catch(() => undefined)
      .then(() => {
        this.next = undefined;
        return this.freshOwners();
      });
    return this.next;
  }

  /** `uid:<n>`, or `addr:<address>:<port>` when the kernel does not tell. Never rejects. */
  async keyOf(from: RemoteInfo): Promise<string> {
    const source = `${from.address}:${from.port}`;
    const now = performance.now();
    const known = this.cache.get(source);
    if (known && now - known.at < CACHE_MS) return known.key;
    let uid: number | undefined;
    try {
      uid = (await this.freshOwners())(from);
    } catch {
      uid = undefined;
    }
    const key = uid === undefined ? `addr:${source}` : `uid:${uid}`;
    if (this.cache.size >= CACHE_ENTRIES) this.cache.clear();
    this.cache.set(source, { key, at: now });
    return key;
  }
}
