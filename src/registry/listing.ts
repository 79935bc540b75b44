/**
 * The local `List` of the publish API: every service this node offers, once each, with the
 * groups it is offered in, who owns it and how its health check stands.
 *
 * Order: group by group in the order polod serves them, root services first (as the registry
 * holds them), then each user's; a service offered in several groups is one entry, placed where
 * it is first met.
 */
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import type { CheckStatus } from '../health/monitor.js';
import type { JsonObject } from '../protocol/json.js';
import type { ServiceRegistry } from './registry.js';
import type { Service } from './service.js';
import { wireId } from './userId.js';

/** One service of the `List` reply. */
export interface ListedService {
  /** The id on the wire (`id` or `user:id`). */
  readonly id: string;
  /** The user who published it; `root` for root services of unknown origin (files). */
  readonly owner: string;
  /** The served groups it is offered in. */
  readonly groups: string[];
  /** Backed by a service file. */
  readonly permanent: boolean;
  /** What Request-For answers. */
  readonly params: JsonObject;
  /** A root service (as opposed to a user service `user:id`). */
  readonly root: boolean;
  /** Its health check and how it stands; a service whose check is not passing is not offered. */
  readonly check?: CheckStatus;
}

/** The state of a service's check (HealthMonitor.status). */
export type CheckStatusOf = (id: string, user: string | undefined) => CheckStatus | undefined;

/** Services walked between two yields to the event loop in {@link listServicesYielding}. */
const YIELD_EVERY = 512;

/** Builds the entries, one per service, in the order of the module comment. */
class Listing {
  readonly entries: ListedService[] = [];
  // Published services are one object in every group; file services one object per group but
  // the same file: either identifies the entry, without serialising params for a key.
  private readonly byObject = new Map<Service, ListedService>();
  private readonly byFile = new Map<string, ListedService>();

  constructor(private readonly checkStatus: CheckStatusOf | undefined) {}

  add(s: Service, user: string | undefined, group: string): void {
    // A service held back by its check is listed (with the check's state); nothing else disabled is.
    if (s.disabled && !s.check) return;
    const id = wireId(s.id, user);
    const fileKey = s.file === undefined ? undefined : `${id}\0${s.file}`;
    const known = fileKey === undefined ? this.byObject.get(s) : this.byFile.get(fileKey);
    if (known) {
      if (!known.groups.includes(group)) known.groups.push(group);
      return;
    }
    const check = s.check && (this.checkStatus?.(s.id, user) ?? { target: s.check.target, state: 'pending' as const, failures: 0 });
    const entry: ListedService = {
      id,
      owner: user ?? s.owner ?? 'root',
      groups: [group],
      permanent: s.permanent,
      params: s.params,
      root: user === undefined,
      ...(check ? { check } : {}),
    };
    if (fileKey === undefined) this.byObject.set(s, entry);
    else this.byFile.set(fileKey, entry);
    this.entries.push(entry);
  }
}

/** Every list of the registry with its user and group, in listing order. */
function* listsOf(registry: ServiceRegistry): Generator<[readonly Service[], string | undefined, string]> {
  for (const group of registry.groups) {
    yield [registry.rootServices(group), undefined, group];
    for (const [user, list] of [...registry.userServices(group)]) yield [list, user, group];
  }
}

/** What the registry offers, per service, with its groups. */
export function listServices(registry: ServiceRegistry, checkStatus?: CheckStatusOf): ListedService[] {
  const listing = new Listing(checkStatus);
  for (const [list, user, group] of listsOf(registry)) for (const s of list) listing.add(s, user, group);
  return listing.entries;
}

/**
 * The same as {@link listServices}, yielding to the event loop every few hundred services, so
 * Marco and Request-For datagrams are answered while a List of tens of thousands is built.
 */
export async function listServicesYielding(registry: ServiceRegistry, checkStatus?: CheckStatusOf): Promise<ListedService[]> {
  const listing = new Listing(checkStatus);
  let walked = 0;
  for (const [list, user, group] of listsOf(registry)) {
    // A snapshot: the list may change while this yields.
    for (const s of [...list]) {
      listing.add(s, user, group);
      if (++walked % YIELD_EVERY === 0) await yieldToLoop();
    }
  }
  return listing.entries;
}
