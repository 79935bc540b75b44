/**
 * The `List` reply, one page at a time. A node may hold tens of thousands of services; one reply
 * holding them all was tens of megabytes of JSON built in one go (and past a few hundred
 * megabytes, a string too long for V8, which crashed polod). So:
 * - a page holds at most `limit` entries (default and maximum LIST_PAGE_ENTRIES) and stops early
 *   once its JSON would pass LIST_PAGE_BYTES (it always holds at least one entry);
 * - the reply is `{"OK": [...], "Next": n}` while more entries follow: the next request asks for
 *   `"Args": {"offset": n}`. Without `Next`, the list is complete. A client that knows nothing of
 *   pages (the reference never had List) gets the first page, as before;
 * - walking the lists yields to the event loop every few hundred services, so Marco and
 *   Request-For datagrams are answered while a List is built (src/registry/listing.ts).
 * - the first page (offset 0) walks the registry; later pages reuse that walk while no list has
 *   changed and it is under LISTING_REUSE_MS old, so paging through N services costs one walk,
 *   not one per page (which was O(N²) over a full paging);
 * Offsets count entries in the order below; services published or removed between two pages may
 * shift it (an entry can then be missed or repeated), as with any paged listing of live data.
 * The order is src/registry/listing.ts's.
 */
import { listServicesYielding, type CheckStatusOf, type ListedService } from '../registry/listing.js';
import type { ServiceRegistry } from '../registry/registry.js';

/** Most entries in one List page. */
export const LIST_PAGE_ENTRIES = 256;
/** A page stops before its JSON passes this many bytes (at least one entry is always sent). */
export const LIST_PAGE_BYTES = 512 * 1024;

/** Which page to list. */
export interface ListRequest {
  /** Entries to skip. */
  readonly offset: number;
  /** Most entries to return (1..LIST_PAGE_ENTRIES). */
  readonly limit: number;
}

/** One page of the List reply. */
export interface ListPage {
  readonly entries: ListedService[];
  /** The offset of the next page; undefined when this page ends the list. */
  readonly next?: number;
}

/** Cuts a page out of a complete list (for stores that only have `list()`). */
export function pageOf(all: readonly ListedService[], request: ListRequest): ListPage {
  const entries: ListedService[] = [];
  let bytes = 0;
  let i = request.offset;
  for (; i < all.length && entries.length < request.limit; i++) {
    const entry = all[i] as ListedService;
    bytes += Buffer.byteLength(JSON.stringify(entry), 'utf8') + 1;
    if (entries.length > 0 && bytes > LIST_PAGE_BYTES) break;
    entries.push(entry);
  }
  return i < all.length ? { entries, next: i } : { entries };
}

/**
 * How long later pages reuse the first page's walk of an unchanged registry: health-check
 * states (which change no list) are at most this old on them.
 */
export const LISTING_REUSE_MS = 10_000;

/** The pages of what a registry offers (src/registry/listing.ts), one walk per paging. */
export class RegistryListing {
  private snapshot: { readonly entries: Promise<ListedService[]>; readonly at: number } | undefined;
  /** Walks of the registry so far (what paging costs). */
  walks = 0;

  constructor(
    private readonly registry: ServiceRegistry,
    private readonly checkStatus?: CheckStatusOf,
    private readonly now: () => number = () => performance.now(),
  ) {
    registry.onListChange(() => {
      this.snapshot = undefined;
    });
  }

  /** One page, built without blocking the event loop for long. */
  async page(request: ListRequest): Promise<ListPage> {
    const now = this.now();
    let snapshot = this.snapshot;
    if (request.offset === 0 || snapshot === undefined || now - snapshot.at > LISTING_REUSE_MS) {
      this.walks++;
      const fresh = { entries: listServicesYielding(this.registry, this.checkStatus), at: now };
      this.snapshot = snapshot = fresh;
      const drop = (): void => {
        if (this.snapshot === fresh) this.snapshot = undefined;
      };
      fresh.entries.catch(drop);
      // Not kept past its use: a listing of tens of thousands of entries is megabytes.
      setTimeout(drop, LISTING_REUSE_MS).unref();
    }
    return pageOf(await snapshot.entries, request);
  }
}
