/**
 * The `List` reply, one page at a time. A node may hold tens of thousands of services; one reply
 * holding them all was tens of megabytes of JSON built in one go (and past a few hundred
 * megabytes, a string too long for V8, which crashed polod). So:
 * - a page holds at most `limit` entries (default and maximum LIST_PAGE_ENTRIES) and stops early
 *   once its JSON would pass LIST_PAGE_BYTES (it always holds at least one entry);
 * - the reply is `{"OK": [...], "Next": n}` while more entries follow: the next request asks for
 *   `"Args": {"offset": n}`. Without `Next`, the list is complete. A client that knows nothing of
 *   pages (the reference never had List) gets the first page, as before;
 * - walking the lists yields to the event loop every LIST_YIELD_EVERY services, so Marco and
 *   Request-For datagrams are answered while a List is built.
 * Offsets count entries in the order below; services published or removed between two pages may
 * shift it (an entry can then be missed or repeated), as with any paged listing of live data.
 *
 * Order: group by group in the order polod serves them, root services first (as the responder
 * holds them), then each user's; a service offered in several groups is one entry, placed where
 * it is first met.
 */
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import type { Polo } from '../responder/polo.js';
import type { Service } from '../responder/service.js';
import type { ListedService } from './store.js';

/** Most entries in one List page. */
export const LIST_PAGE_ENTRIES = 256;
/** A page stops before its JSON passes this many bytes (at least one entry is always sent). */
export const LIST_PAGE_BYTES = 512 * 1024;
/** Services walked between two yields to the event loop. */
const LIST_YIELD_EVERY = 512;

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
 * One page of what `polos` offer (the same entries as DaemonServiceStore.list, in the order of
 * the module comment), built without blocking the event loop for long.
 */
export async function listPolos(polos: readonly Polo[], request: ListRequest): Promise<ListPage> {
  // Published services are one object in every group; file services one object per group but
  // the same file: either identifies the entry, without serialising params for a key.
  const byObject = new Map<Service, ListedService>();
  const byFile = new Map<string, ListedService>();
  const order: ListedService[] = [];
  let walked = 0;
  const add = (s: Service, user: string | undefined, group: string): void => {
    if (s.disabled) return;
    const id = user === undefined ? s.id : `${user}:${s.id}`;
    const fileKey = s.file === undefined ? undefined : `${id}\0${s.file}`;
    const known = fileKey === undefined ? byObject.get(s) : byFile.get(fileKey);
    if (known) {
      if (!known.groups.includes(group)) known.groups.push(group);
      return;
    }
    const entry: ListedService = {
      id,
      owner: user ?? s.owner ?? 'root',
      groups: [group],
      permanent: s.permanent,
      params: s.params,
      root: user === undefined,
    };
    if (fileKey === undefined) byObject.set(s, entry);
    else byFile.set(fileKey, entry);
    order.push(entry);
  };
  const walk = async (list: readonly Service[], user: string | undefined, group: string): Promise<void> => {
    // A snapshot: the list may change while this yields.
    for (const s of [...list]) {
      add(s, user, group);
      if (++walked % LIST_YIELD_EVERY === 0) await yieldToLoop();
    }
  };
  for (const polo of polos) {
    await walk(polo.offeredServices, undefined, polo.multicastGroup);
    for (const [user, list] of [...polo.userServices]) await walk(list, user, polo.multicastGroup);
  }
  return pageOf(order, request);
}
