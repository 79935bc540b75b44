/**
 * The cost of paging through a large `List` (src/publish/listing.ts), in process: a registry of
 * `services` root services, paged through from offset 0 to the end, with the listing of the
 * first page reused by the later ones (RegistryListing, as polod does) against a fresh walk of
 * the registry for every page: `pageOf(await listServicesYielding(registry), request)`, what
 * `listRegistry` did for every page before RegistryListing (git log src/publish/listing.ts).
 * The baseline builds no RegistryListing: each one registers a list-change listener and keeps its
 * walk for LISTING_REUSE_MS, which would pile up and weigh on the rounds after it.
 */
import { performance } from 'node:perf_hooks';
import { median } from './stats.js';
import { LIST_PAGE_ENTRIES, pageOf, RegistryListing, type ListPage, type ListRequest } from '../../src/publish/listing.js';
import { listServicesYielding } from '../../src/registry/listing.js';
import { ServiceRegistry } from '../../src/registry/registry.js';
import type { Service } from '../../src/registry/service.js';

export interface ListPagingFigures {
  readonly services: number;
  readonly pages: number;
  /** One full paging, ms (median of the rounds): reusing the first walk. */
  readonly reusedMs: number;
  /** The same, one walk per page. */
  readonly perPageMs: number;
}

function registryOf(count: number): ServiceRegistry {
  const root: Service[] = Array.from({ length: count }, (_, i) => ({
    id: `svc${i}`,
    params: { port: 10_000 + (i % 50_000), path: `/s/${i}` },
    disabled: false,
    permanent: false,
    origin: 'published',
  }));
  return new ServiceRegistry({ groups: ['224.0.0.112'], lists: new Map([['224.0.0.112', { root, users: new Map() }]]) });
}

async function pageThrough(page: (request: ListRequest) => Promise<ListPage>): Promise<{ ms: number; pages: number }> {
  const started = performance.now();
  let pages = 0;
  for (let offset: number | undefined = 0; offset !== undefined; pages++) {
    offset = (await page({ offset, limit: LIST_PAGE_ENTRIES })).next;
  }
  return { ms: performance.now() - started, pages };
}

export async function measureListPaging(services = 20_000, rounds = 3): Promise<ListPagingFigures> {
  const registry = registryOf(services);
  const reused: number[] = [];
  const perPage: number[] = [];
  let pages = 0;
  for (let r = 0; r < rounds; r++) {
    const listing = new RegistryListing(registry);
    const a = await pageThrough((request) => listing.page(request));
    const b = await pageThrough(async (request) => pageOf(await listServicesYielding(registry), request));
    reused.push(a.ms);
    perPage.push(b.ms);
    pages = a.pages;
  }
  return { services, pages, reusedMs: median(reused), perPageMs: median(perPage) };
}
