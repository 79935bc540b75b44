/**
 * Read-only views of the registry that `answer()` decides from: one group's services (a query
 * that arrived on that group), or every served group's (a unicast query, which names no group).
 */
import type { ServiceEntry } from '../protocol/messages.js';
import type { IdIndex } from './idIndex.js';
import type { GroupLists } from './registry.js';
import type { Service } from './service.js';
import { splitUserId, wireId } from './userId.js';

/** What answer() may ask of the services. */
export interface ServiceView {
  /** The group answered for; undefined = every served group (unicast). */
  readonly group: string | undefined;
  /** The service Request-For of `wireId` answers with, or undefined (O(1)). */
  find(wireId: string): Service | undefined;
  /** The user whose folder must be loaded before `wireId` can be answered, if any. */
  unloadedUser(wireId: string): string | undefined;
  /**
   * The Services listing: enabled root services, first one of each id, in list order; then the
   * enabled services of every loaded user as `user:service`, users by name (docs/protocol.md §2).
   */
  listing(): readonly ServiceEntry[];
}

/** One group's view. */
export class GroupView implements ServiceView {
  readonly group: string;

  constructor(
    private readonly lists: GroupLists,
    private readonly index: IdIndex,
    private readonly verifyRegexp: RegExp,
  ) {
    this.group = lists.group;
  }

  find(wireId: string): Service | undefined {
    const userId = splitUserId(wireId, this.verifyRegexp);
    if (!userId) return this.index.find(this.lists.root, wireId);
    const list = this.lists.users.get(userId.user);
    return list && this.index.find(list, userId.service);
  }

  unloadedUser(wireId: string): string | undefined {
    const userId = splitUserId(wireId, this.verifyRegexp);
    return userId && !this.lists.users.has(userId.user) ? userId.user : undefined;
  }

  listing(): readonly ServiceEntry[] {
    const root = this.lists.root;
    // The length guard catches callers that changed the live list in place (see IdIndex).
    if (this.lists.listing?.length !== root.length) {
      this.lists.listing = { length: root.length, entries: [...entriesOf([root]), ...userEntries(this.lists.users)] };
    }
    return this.lists.listing.entries;
  }
}

/** Every served group at once: the first group with an answer speaks for the node. */
export class UnionView implements ServiceView {
  readonly group = undefined;
  /** The last listing and the group listings it was built from: rebuilt only when one changed. */
  private cached: { readonly parts: readonly (readonly ServiceEntry[])[]; readonly entries: readonly ServiceEntry[] } | undefined;

  constructor(private readonly views: readonly GroupView[]) {}

  find(wireId: string): Service | undefined {
    for (const view of this.views) {
      const found = view.find(wireId);
      if (found) return found;
    }
    return undefined;
  }

  unloadedUser(wireId: string): string | undefined {
    for (const view of this.views) {
      const user = view.unloadedUser(wireId);
      if (user !== undefined) return user;
    }
    return undefined;
  }

  listing(): readonly ServiceEntry[] {
    // The same array while nothing changed, so the responder's encoded reply is reused
    // (src/responder/polo.ts caches bytes per listing array): a Services query by unicast costs
    // no JSON encoding until the services change.
    const parts = this.views.map((v) => v.listing());
    const cached = this.cached;
    if (cached && cached.parts.length === parts.length && cached.parts.every((p, k) => p === parts[k])) return cached.entries;
    const entries = entriesOf(parts);
    this.cached = { parts, entries };
    return entries;
  }
}

/** Every loaded user's enabled services under their wire ids, users by name. */
function userEntries(users: ReadonlyMap<string, readonly Service[]>): ServiceEntry[] {
  const out: ServiceEntry[] = [];
  for (const user of [...users.keys()].sort()) {
    const seen = new Set<string>();
    for (const s of users.get(user) ?? []) {
      if (s.disabled || seen.has(s.id)) continue;
      seen.add(s.id);
      out.push({ id: wireId(s.id, user), params: s.params });
    }
  }
  return out;
}

/** Enabled entries, first one of each id. */
function entriesOf(lists: readonly (readonly (Service | ServiceEntry)[])[]): ServiceEntry[] {
  const seen = new Set<string>();
  const out: ServiceEntry[] = [];
  for (const list of lists) {
    for (const s of list) {
      if (('disabled' in s && s.disabled) || seen.has(s.id)) continue;
      seen.add(s.id);
      out.push({ id: s.id, params: s.params });
    }
  }
  return out;
}
