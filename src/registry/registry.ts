/**
 * The service registry: the one owner of what polod offers. It holds, per served group, the
 * root service list and the per-user lists (the arrays the `Polo` class exposes, shared by
 * reference and changed in place, as the seed document requires); it reads each service folder
 * once per start or reload and a user's `~/.polo` once; it merges files with services published
 * at run time; it indexes ids for O(1) Request-For; and it reports every change as an event.
 *
 * Writers are serialised: reloads and the publish API's changes run one at a time through
 * `exclusive`, so a reload that read the folders cannot drop a service published after the read.
 * Readers (the responders) never wait: every swap is one synchronous step.
 */
import { ClosedError, MarcoPoloError } from '../errors.js';
import type { ServiceEntry } from '../protocol/messages.js';
import { silentLogger, type Logger } from '../util/log.js';
import type { ServiceChange, ServiceChangeCause, ServiceChangeSource } from './events.js';
import { IdIndex } from './idIndex.js';
import type { ServiceLoader, UserLookup } from './ports.js';
import { servedIn, type Service } from './service.js';
import { DEFAULT_USER_DIR, DEFAULT_VERIFY_REGEXP, wireId } from './userId.js';
import { GroupView, UnionView, type ServiceView } from './view.js';
import path from 'node:path';

/** Lists handed in by a caller (the seed's constructor arguments), adopted rather than copied. */
export interface AdoptedLists {
  readonly root?: Service[];
  readonly users?: Map<string, Service[]>;
}

/** Options of {@link ServiceRegistry}. */
export interface RegistryOptions {
  /** The served groups, in configuration order. */
  readonly groups: readonly string[];
  /** Folder of root service files; undefined = none (published services only). */
  readonly servicesDir?: string;
  /** Name of the per-user folder under each home (default `.polo`). */
  readonly userDirName?: string;
  /** What makes an id a user service. */
  readonly verifyRegexp?: RegExp;
  /** Reads service folders (required when servicesDir is set or user services are used). */
  readonly loadServices?: ServiceLoader;
  /** The system's user database (required for user services). */
  readonly users?: UserLookup;
  /** Lists to adopt for some groups. */
  readonly lists?: ReadonlyMap<string, AdoptedLists>;
  /** Told about users with service files (loaded at the next start) and users who are gone. */
  readonly userRecord?: { remember(user: string): Promise<void>; forget(user: string): void };
  readonly logger?: Logger;
}

/** One group's lists and what the registry remembers about them. */
export class GroupLists {
  /** Ids of this group's disabled root files, to tell `disabled` from `removed`. */
  disabledRoot = new Set<string>();
  /** The same for each user's files (bare ids). */
  readonly disabledUsers = new Map<string, Set<string>>();
  /** The Services listing and the root list's length it was built at, rebuilt after a change. */
  listing: { readonly length: number; readonly entries: readonly ServiceEntry[] } | undefined;

  constructor(
    readonly group: string,
    readonly root: Service[],
    readonly users: Map<string, Service[]>,
  ) {}
}

/** What one read of a user's folder found. */
interface UserRead {
  readonly user: string;
  /** Undefined when the user does not exist (they are forgotten). */
  readonly files: Service[] | undefined;
}

/** The one owner of polod's services. */
export class ServiceRegistry implements ServiceChangeSource {
  readonly groups: readonly string[];
  readonly verifyRegexp: RegExp;
  readonly userDirName: string;
  private readonly lists = new Map<string, GroupLists>();
  private readonly views = new Map<string, GroupView>();
  private readonly union: UnionView;
  private readonly index = new IdIndex();
  private readonly listeners = new Set<(change: ServiceChange) => void>();
  private readonly listWatchers = new Set<() => void>();
  private readonly userLoads = new Map<string, Promise<void>>();
  private readonly log: Logger;
  private tail: Promise<void> = Promise.resolve();
  private closed = false;
  /** Checked services whose check passes, by wire id; the others are held disabled. */
  private readonly passing = new Set<string>();
  /** Checked services whose check has failed (not merely not passed yet), by wire id. */
  private readonly failed = new Set<string>();

  constructor(private readonly options: RegistryOptions) {
    this.groups = [...options.groups];
    this.verifyRegexp = options.verifyRegexp ?? DEFAULT_VERIFY_REGEXP;
    this.userDirName = options.userDirName ?? DEFAULT_USER_DIR;
    this.log = options.logger ?? silentLogger;
    for (const group of this.groups) {
      const adopted = options.lists?.get(group);
      const lists = new GroupLists(group, adopted?.root ?? [], adopted?.users ?? new Map());
      this.lists.set(group, lists);
      this.views.set(group, new GroupView(lists, this.index, this.verifyRegexp));
    }
    this.union = new UnionView([...this.views.values()]);
  }

  /** The root services of `group`: the live array, changed in place, never replaced. */
  rootServices(group: string): Service[] {
    return this.group(group).root;
  }

  /** The user services of `group` by user name: the live map, changed in place. */
  userServices(group: string): Map<string, Service[]> {
    return this.group(group).users;
  }

  /**
   * What `answer()` decides from: one group's services, or (no group) every served group's, as
   * a unicast query sees this node. Undefined for a group this registry does not serve.
   */
  view(group?: string): ServiceView | undefined {
    return group === undefined ? this.union : this.views.get(group);
  }

  /** {@inheritDoc ServiceChangeSource.onChange} */
  onChange(listener: (change: ServiceChange) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Calls `watcher` after any change of any list, offered or not (a service held back by its
   * health check changes no answer, so it has no ServiceChange, but its check must start).
   */
  onListChange(watcher: () => void): () => void {
    this.listWatchers.add(watcher);
    return () => this.listWatchers.delete(watcher);
  }

  /** Users whose services are loaded (in any group). */
  loadedUsers(): string[] {
    const users = new Set<string>();
    for (const lists of this.lists.values()) for (const user of lists.users.keys()) users.add(user);
    return [...users];
  }

  /**
   * Runs `task` alone among the registry's writers (reloads and publish API changes), in call
   * order. A task that fails does not stop the ones queued after it.
   */
  exclusive<T>(task: () => Promise<T>): Promise<T> {
    if (this.closed) return Promise.reject(new ClosedError('ServiceRegistry'));
    const run = this.tail.then(task);
    this.tail = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  /**
   * Re-reads the root folder once and every loaded user's folder once, and swaps each group's
   * lists: file services are rebuilt, services published at run time are kept.
   */
  reload(): Promise<void> {
    return this.exclusive(async () => {
      const root = this.options.servicesDir === undefined ? undefined : await this.read(this.options.servicesDir);
      const users = await Promise.all(this.loadedUsers().map((user) => this.readUser(user)));
      const warned = new Set<string>();
      for (const lists of this.lists.values()) {
        this.changeGroup(lists, 'file', () => {
          if (root) this.applyRoot(lists, root, warned);
          for (const read of users) this.applyUser(lists, read, warned);
        });
      }
      this.log.info({ services: Object.fromEntries([...this.lists].map(([g, l]) => [g, l.root.length])) }, 'services loaded');
    });
  }

  /** Re-reads the folders of every loaded user (not the root folder). */
  reloadUsers(): Promise<void> {
    return this.exclusive(async () => {
      const users = await Promise.all(this.loadedUsers().map((user) => this.readUser(user)));
      this.applyUsers(users);
    });
  }

  /**
   * Re-reads one user's folder, keeping what they published at run time. A user who does not
   * exist is forgotten. Returns false in that case.
   */
  reloadUser(user: string): Promise<boolean> {
    return this.exclusive(async () => {
      const read = await this.readUser(user);
      this.applyUsers([read]);
      return read.files !== undefined;
    });
  }

  /**
   * Loads `user`'s folder if it was never loaded: once, however many queries ask at once. Not
   * queued behind writers, so a query never waits for a reload; a writer that needs the user
   * loaded awaits this first.
   */
  loadUser(user: string): Promise<void> {
    if (this.isUserLoaded(user)) return Promise.resolve();
    let load = this.userLoads.get(user);
    if (!load) {
      load = this.readUser(user)
        .then((read) => {
          // A publish for this user may have created the list meanwhile: merge, keep it.
          this.applyUsers([read]);
        })
        .finally(() => this.userLoads.delete(user));
      this.userLoads.set(user, load);
    }
    return load;
  }

  /** True when `user`'s services are loaded in every group. */
  isUserLoaded(user: string): boolean {
    for (const lists of this.lists.values()) if (!lists.users.has(user)) return false;
    return true;
  }

  /** The served groups among `groups`; none named = every served group. */
  groupsFor(groups: readonly string[]): string[] {
    return groups.length === 0 ? [...this.groups] : this.groups.filter((g) => groups.includes(g));
  }

  /** The service stored as `id` (bare for a user's) in `group`, enabled or not. */
  get(group: string, user: string | undefined, id: string): Service | undefined {
    const lists = this.group(group);
    const list = user === undefined ? lists.root : lists.users.get(user);
    return list?.find((s) => s.id === id);
  }

  /**
   * Adds a published service to `groups` (the caller checked for duplicates inside `exclusive`).
   * The same object goes in every group, so listings show it once.
   */
  add(published: Service, groups: readonly string[], user: string | undefined, cause: ServiceChangeCause): void {
    const service = this.held(published, user);

    for (const group of groups) {
      const lists = this.group(group);
      let list = user === undefined ? lists.root : lists.users.get(user);
      if (!list) {
        list = [];
        lists.users.set(user as string, list);
      }
      list.push(service);
      this.touched(lists, list);
      if (!service.disabled) this.emit({ kind: 'added', group, id: wireId(service.id, user), params: service.params, cause });
    }
  }

  /** Removes the service stored as `id` from `groups`; returns the groups it was removed from. */
  remove(id: string, groups: readonly string[], user: string | undefined, cause: ServiceChangeCause): string[] {
    const removed: string[] = [];
    for (const group of groups) {
      const lists = this.group(group);
      const list = user === undefined ? lists.root : lists.users.get(user);
      const i = list?.findIndex((s) => s.id === id) ?? -1;
      if (!list || i === -1) continue;
      const [service] = list.splice(i, 1);
      this.touched(lists, list);
      removed.push(group);
      if (service && !service.disabled) this.emit({ kind: 'removed', group, id: wireId(id, user), cause });
    }
    return removed;
  }

  /**
   * Replaces the service stored as `id` in `groups` by `next` (same id), reporting the change:
   * `disabled`/`enabled` when only availability moved, `changed` when params did.
   */
  replace(id: string, next: Service, groups: readonly string[], user: string | undefined, cause: ServiceChangeCause): void {
    for (const group of groups) {
      const lists = this.group(group);
      const list = user === undefined ? lists.root : lists.users.get(user);
      const i = list?.findIndex((s) => s.id === id) ?? -1;
      const before = list?.[i];
      if (!list || !before) continue;
      list[i] = next;
      this.touched(lists, list);
      const kind = before.disabled !== next.disabled ? (next.disabled ? 'disabled' : 'enabled') : 'changed';
      if (kind === 'changed' && (next.disabled || sameParams(before, next))) continue;
      this.emit({ kind, group, id: wireId(id, user), ...(next.disabled ? {} : { params: next.params }), cause });
    }
  }

  /**
   * Records the outcome of a service's health check (src/health/monitor.ts) and offers or
   * withdraws it in every group accordingly: a checked service is offered only while passing.
   */
  setHealth(id: string, user: string | undefined, passing: boolean): void {
    const key = wireId(id, user);
    if (passing) {
      this.passing.add(key);
      this.failed.delete(key);
    } else {
      this.passing.delete(key);
      this.failed.add(key);
    }
    for (const group of this.groups) {
      const current = this.get(group, user, id);
      if (!current?.check || current.disabled === !passing) continue;
      this.replace(id, { ...current, disabled: !passing }, [group], user, 'check');
    }
  }

  /** Wire ids of `group`'s services held back by a health check that has failed. */
  failingChecks(group: string): string[] {
    const lists = this.group(group);
    const out: string[] = [];
    const visit = (list: readonly Service[], user: string | undefined): void => {
      for (const s of list) {
        const id = wireId(s.id, user);
        if (s.check && s.disabled && this.failed.has(id)) out.push(id);
      }
    };
    visit(lists.root, undefined);
    for (const [user, list] of lists.users) visit(list, user);
    return out;
  }

  /** Every checked service, once per wire id (the first group's copy), with its user. */
  checkedServices(): { service: Service; user: string | undefined }[] {
    const seen = new Set<string>();
    const out: { service: Service; user: string | undefined }[] = [];
    const visit = (list: readonly Service[], user: string | undefined): void => {
      for (const service of list) {
        const key = wireId(service.id, user);
        if (!service.check || seen.has(key)) continue;
        seen.add(key);
        out.push({ service, user });
      }
    };
    for (const lists of this.lists.values()) {
      visit(lists.root, undefined);
      for (const [user, list] of lists.users) visit(list, user);
    }
    return out;
  }

  /** Forgets the health of a check that no longer runs (its service is gone). */
  forgetHealth(id: string, user: string | undefined): void {
    this.passing.delete(wireId(id, user));
    this.failed.delete(wireId(id, user));
  }

  /**
   * Records that `user` has service files, so their folder is loaded at the next start; resolves
   * once that is on disk (a permanent publish is acknowledged only then).
   */
  rememberUser(user: string): Promise<void> {
    return this.options.userRecord?.remember(user) ?? Promise.resolve();
  }

  /** Refuses every later writer; readers keep working on the last lists. Idempotent. */
  close(): void {
    this.closed = true;
    this.listeners.clear();
    this.listWatchers.clear();
  }

  /** `service` as the lists hold it: a checked service not (yet) passing is held disabled. */
  private held(service: Service, user: string | undefined): Service {
    if (!service.check || service.disabled || this.passing.has(wireId(service.id, user))) return service;
    return { ...service, disabled: true };
  }

  private group(group: string): GroupLists {
    const lists = this.lists.get(group);
    if (!lists) throw new MarcoPoloError('MP_ERR_INVALID_ARG', `group ${group} is not served by this registry`);
    return lists;
  }

  private applyUsers(reads: readonly UserRead[]): void {
    const warned = new Set<string>();
    for (const lists of this.lists.values()) {
      // A user with no files and nothing offered here changes nothing (a remote query naming an
      // unknown user lands here): no before/after comparison of the group's lists for it.
      const changing = reads.filter((r) => r.files !== undefined || lists.users.has(r.user) || lists.disabledUsers.has(r.user));
      if (changing.length === 0) continue;
      this.changeGroup(lists, 'file', () => {
        for (const read of changing) this.applyUser(lists, read, warned);
      });
    }
  }

  /** Swaps in the root list of `lists` from a folder read. */
  private applyRoot(lists: GroupLists, files: readonly Service[], warned: Set<string>): void {
    const next = merge(lists.root, files, lists.group, (w) => this.warnOnce(warned, w)).map((s) => this.held(s, undefined));
    lists.root.splice(0, lists.root.length, ...next);
    lists.disabledRoot = disabledIds(files, lists.group);
    this.touched(lists, lists.root);
  }

  /** Swaps in one user's list of `lists` from a folder read (or forgets the user). */
  private applyUser(lists: GroupLists, read: UserRead, warned: Set<string>): void {
    const current = lists.users.get(read.user);
    if (read.files === undefined) {
      lists.users.delete(read.user);
      lists.disabledUsers.delete(read.user);
      if (current) this.touched(lists, current);
      return;
    }
    const next = merge(current ?? [], read.files, lists.group, (w) => this.warnOnce(warned, w)).map((s) => this.held(s, read.user));
    if (current) current.splice(0, current.length, ...next);
    else lists.users.set(read.user, next);
    lists.disabledUsers.set(read.user, disabledIds(read.files, lists.group));
    this.touched(lists, current ?? next);
  }

  /**
   * Runs a synchronous change of one group's lists and reports what it did to each offered
   * service, by comparing what was offered before and after.
   */
  private changeGroup(lists: GroupLists, cause: ServiceChangeCause, change: () => void): void {
    const listening = this.listeners.size > 0;
    const before = listening ? offered(lists) : undefined;
    const disabledBefore = listening ? disabledOf(lists) : undefined;
    change();
    if (!before || !disabledBefore) return;
    const after = offered(lists);
    const disabledAfter = disabledOf(lists);
    const group = lists.group;
    for (const [id, service] of after) {
      const old = before.get(id);
      if (!old) this.emit({ kind: disabledBefore.has(id) ? 'enabled' : 'added', group, id, params: service.params, cause });
      else if (!sameParams(old, service)) this.emit({ kind: 'changed', group, id, params: service.params, cause });
    }
    for (const id of before.keys()) {
      if (!after.has(id)) this.emit({ kind: disabledAfter.has(id) ? 'disabled' : 'removed', group, id, cause });
    }
  }

  private touched(lists: GroupLists, list: readonly Service[]): void {
    this.index.invalidate(list);
    lists.listing = undefined;
    for (const watcher of this.listWatchers) watcher();
  }

  private emit(change: ServiceChange): void {
    for (const listener of this.listeners) {
      try {
        listener(change);
      } catch (err) {
        this.log.error({ err }, 'a service change listener failed');
      }
    }
  }

  private warnOnce(warned: Set<string>, warning: string): void {
    if (warned.has(warning)) return;
    warned.add(warning);
    this.log.warn(warning);
  }

  private async read(dir: string, owner?: { uid: number; name: string }): Promise<Service[]> {
    const loader = this.options.loadServices;
    if (!loader) throw new MarcoPoloError('MP_ERR_INVALID_ARG', 'ServiceRegistry: a loadServices function is required');
    const userService = owner !== undefined;
    // A user without a ~/.polo folder simply has no file services: no warning for that.
    const options = { userService, verifyRegexp: this.verifyRegexp, skip: (name: string) => name === 'token', missingOk: userService };
    const { services, warnings } = await loader(dir, owner === undefined ? options : { ...options, owner: owner.uid, ownerName: owner.name });
    for (const warning of warnings) this.log.warn(warning);
    return services;
  }

  private async readUser(user: string): Promise<UserRead> {
    const account = await this.options.users?.lookupName(user);
    if (!account) {
      this.options.userRecord?.forget(user);
      return { user, files: undefined };
    }
    const files = await this.read(path.join(account.home, this.userDirName), { uid: account.uid, name: account.name });
    if (files.length > 0) void this.options.userRecord?.remember(user);
    return { user, files };
  }
}

/**
 * The new list of one group: the published services kept as they are, then the file services
 * offered in the group whose id is not taken (a second service with an id already offered in a
 * group is skipped with a warning: docs/protocol.md §3).
 */
function merge(current: readonly Service[], files: readonly Service[], group: string, warn: (msg: string) => void): Service[] {
  const next = current.filter((s) => s.origin === 'published');
  const ids = new Set(next.map((s) => s.id));
  for (const s of files) {
    if (!servedIn(s, group)) continue;
    if (ids.has(s.id)) {
      warn(`${s.file ?? 'service file'}: service id '${s.id}' is already offered in group ${group}; skipped`);
      continue;
    }
    ids.add(s.id);
    next.push(s);
  }
  return next;
}

/** Ids of the files that would be offered in `group` but for `disabled`. */
function disabledIds(files: readonly Service[], group: string): Set<string> {
  return new Set(files.filter((s) => s.disabled && servedIn({ ...s, disabled: false }, group)).map((s) => s.id));
}

/** What a group offers, by wire id: the first enabled service of each id, as answers pick. */
function offered(lists: GroupLists): Map<string, Service> {
  const out = new Map<string, Service>();
  const add = (list: readonly Service[], user: string | undefined): void => {
    for (const s of list) {
      const id = wireId(s.id, user);
      if (!s.disabled && !out.has(id)) out.set(id, s);
    }
  };
  add(lists.root, undefined);
  for (const [user, list] of lists.users) add(list, user);
  return out;
}

/** Wire ids of a group's disabled files and disabled (withdrawn) list entries. */
function disabledOf(lists: GroupLists): Set<string> {
  const out = new Set<string>(lists.disabledRoot);
  for (const [user, ids] of lists.disabledUsers) for (const id of ids) out.add(wireId(id, user));
  for (const s of lists.root) if (s.disabled) out.add(s.id);
  for (const [user, list] of lists.users) for (const s of list) if (s.disabled) out.add(wireId(s.id, user));
  return out;
}

function sameParams(a: Service, b: Service): boolean {
  return a.params === b.params || JSON.stringify(a.params) === JSON.stringify(b.params);
}
