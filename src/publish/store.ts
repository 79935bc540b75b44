/**
 * Applies publish and unpublish to polod's services: the file half here, the in-memory half in
 * the service registry (src/registry/registry.ts), which the responders answer from, so a
 * published service is answered by the next Request-For or Services query in its groups.
 *
 * - Non-permanent services have origin 'published': a reload (SIGUSR1) keeps them (the reference
 *   dropped them, B7).
 * - Permanent ones are first written as a service file — root: the services folder; user:
 *   `~user/.polo/`, owned by the user — atomically and durably (temp file, fsync, rename, folder
 *   fsync), and only then put in the lists, as origin 'file' with `file` set: a reload rebuilds
 *   them from disk without a duplicate warning, and a restart loads them again.
 * - Every change runs alone (the registry's `exclusive`), queued with reloads: a duplicate check
 *   and the insert that follows it cannot interleave with another publish, and a reload cannot
 *   drop a service written after it read the folder.
 */
import { constants as fsc } from 'node:fs';
import { mkdir, open } from 'node:fs/promises';
import path from 'node:path';
import { InvalidArgumentError, MarcoPoloError } from '../errors.js';
import { isJsonObject, type JsonObject } from '../protocol/json.js';
import { checkToJson, type HealthCheck } from '../health/check.js';
import type { Session } from './session.js';
import type { ServiceRegistry } from '../registry/registry.js';
import type { Service } from '../registry/service.js';
import { listServices, type CheckStatusOf, type ListedService } from '../registry/listing.js';
import type { UserInfo } from '../system/userDb.js';
import { isErrno, removeFile, sweepTemporaryFiles, writeFileAtomic } from '../util/atomicFile.js';
import { silentLogger, type Logger } from '../util/log.js';
import { fileNameForId, resolveInside } from '../util/safePath.js';
import { MAX_SERVICE_FILE_BYTES } from '../config/serviceDir.js';
import {
  alreadyExists,
  couldNotWrite,
  invalidServiceName,
  permanentExists,
  PublishErrors,
  PublishRefusal,
} from './errors.js';
import { withUserDir } from '../system/userFolder.js';
import { RegistryListing, type ListPage, type ListRequest } from './listing.js';
import { checkQuota, type QuotaLimits } from './quota.js';
import { checkStorableId } from './storableId.js';

/** A publish, authorised and validated. */
export interface PublishPlan {
  /** The id as stored: bare for user services (`web`), as on the wire for root ones. */
  readonly id: string;
  /** `id` or `user:id`, for replies and messages. */
  readonly wireId: string;
  /** Who publishes. For a user service, also whose service it is. */
  readonly publisher: UserInfo;
  /** A root service (in the services folder and the root lists) rather than the publisher's. */
  readonly root: boolean;
  /** Answered verbatim to Request-For. */
  readonly params: JsonObject;
  /** Groups; empty = every served group. */
  readonly groups: readonly string[];
  /** Also write a service file, acknowledged only once it is on disk. */
  readonly permanent: boolean;
  /** A health check: offered only while it passes (written to the file of a permanent one). */
  readonly check?: HealthCheck;
  /** The session it lives in: withdrawn when its connection closes. */
  readonly session?: Session;
}

/** An unpublish, authorised and validated. */
export interface UnpublishPlan {
  /** The id as stored (bare for user services). */
  readonly id: string;
  /** `id` or `user:id`. */
  readonly wireId: string;
  /** Whose service it is; undefined for a root service. */
  readonly owner?: UserInfo;
  /** Groups; empty = every served group. */
  readonly groups: readonly string[];
  /** Delete the service file, or drop these groups from it when others remain. */
  readonly deleteFile: boolean;
}

export type { ListedService };

/** What the publish handler needs from polod's services. */
export interface ServiceStore {
  /** The groups this polod serves. */
  readonly servedGroups: readonly string[];
  /** @throws PublishRefusal (duplicate, file in the way, cannot write). */
  publish(plan: PublishPlan): Promise<void>;
  /** @throws PublishRefusal (not found, file problems). */
  unpublish(plan: UnpublishPlan): Promise<void>;
  /**
   * What this node offers, per service, with its groups. User services appear once their user
   * is loaded: by a publish, a Request-For, or a reload after either.
   */
  list(): ListedService[];
  /** One page of `list()` (listing.ts), built without blocking the event loop for long. */
  listPage?(request: ListRequest): Promise<ListPage>;
}

/** Options of {@link DaemonServiceStore}. */
export interface DaemonServiceStoreOptions {
  /** Root service files (config services_dir). */
  readonly servicesDir: string;
  /** The per-user folder under each home (config polo_user_dir, default `.polo`). */
  readonly userDirName: string;
  /** Where file failures are logged in full (replies carry a short reason). */
  readonly logger?: Logger;
  /** The state of each service's health check, for `List`. */
  readonly checkStatus?: CheckStatusOf;
  /** Per-user limits on services held (quota.ts); none when absent. */
  readonly quota?: QuotaLimits;
}

/** Mode of service files polod writes: configuration anyone may read, as the shipped ones. */
const SERVICE_FILE_MODE = 0o644;

/** The ServiceStore of a running polod. */
export class DaemonServiceStore implements ServiceStore {
  /** {@inheritDoc ServiceStore.servedGroups} */
  readonly servedGroups: readonly string[];
  private readonly log: Logger;
  private readonly listing: RegistryListing;

  constructor(
    private readonly registry: ServiceRegistry,
    private readonly options: DaemonServiceStoreOptions,
  ) {
    this.servedGroups = registry.groups;
    this.log = options.logger ?? silentLogger;
    this.listing = new RegistryListing(registry, options.checkStatus);
  }

  /** {@inheritDoc ServiceStore.publish} */
  publish(plan: PublishPlan): Promise<void> {
    const registry = this.registry;
    return registry.exclusive(async () => {
      const groups = registry.groupsFor(plan.groups);
      const user = plan.root ? undefined : plan.publisher;
      // The user's file services first, so a published id cannot shadow (and later duplicate) one.
      if (user) await registry.loadUser(user.name);
      // Checked in every group before anything changes: all groups or none (the reference
      // could succeed in one group and fail in the next, B27).
      for (const group of groups) {
        if (registry.get(group, user?.name, plan.id)) throw new PublishRefusal(alreadyExists(plan.wireId));
      }
      if (this.options.quota) checkQuota(this.options.quota, registry, plan.publisher, plan.id, plan.params);
      const file = plan.permanent ? await this.writeServiceFile(plan, user) : undefined;
      const service: Service = {
        id: plan.id,
        params: plan.params,
        ...(plan.groups.length > 0 ? { groups: [...plan.groups] } : {}),
        disabled: false,
        permanent: plan.permanent,
        origin: file === undefined ? 'published' : 'file',
        ...(file === undefined ? {} : { file }),
        owner: plan.publisher.name,
        ...(plan.check ? { check: plan.check } : {}),
      };
      // A user's service file is loaded at the next start only if polod knows the user has some.
      if (user && file !== undefined) await registry.rememberUser(user.name);
      registry.add(service, groups, user?.name, 'publish');
      plan.session?.hold(() => void this.endSession(service, groups, user?.name));
    });
  }

  /**
   * Withdraws a session's service when its connection closed: from the groups where this very
   * service still is (unpublished meanwhile, or published again by another call, it stays).
   */
  private endSession(service: Service, groups: readonly string[], user: string | undefined): Promise<void> {
    const registry = this.registry;
    return registry
      .exclusive(async () => {
        const still = groups.filter((g) => sameService(registry.get(g, user, service.id), service));
        if (still.length === 0) return;
        registry.remove(service.id, still, user, 'session');
        this.log.info({ service: user === undefined ? service.id : `${user}:${service.id}` }, 'session ended; service withdrawn');
      })
      .catch((err: unknown) => this.log.debug({ err: String(err) }, 'session end after stop'));
  }

  /** {@inheritDoc ServiceStore.unpublish} */
  unpublish(plan: UnpublishPlan): Promise<void> {
    const registry = this.registry;
    return registry.exclusive(async () => {
      const owner = plan.owner?.name;
      if (owner !== undefined) await registry.loadUser(owner);
      const found: { service: Service; group: string }[] = [];
      for (const group of registry.groupsFor(plan.groups)) {
        const service = registry.get(group, owner, plan.id);
        if (service) found.push({ service, group });
      }
      if (found.length === 0) throw new PublishRefusal(PublishErrors.notFound);
      if (plan.deleteFile) {
        // Files first: if one cannot be changed, the reply says so and nothing has changed.
        const groups = found.map((f) => f.group);
        const done = new Set<string>();
        for (const { service } of found) {
          if (service.file === undefined || !service.permanent || done.has(service.file)) continue;
          done.add(service.file);
          await this.dropFileGroups(service, groups, plan);
        }
      }
      registry.remove(
        plan.id,
        found.map((f) => f.group),
        owner,
        'unpublish',
      );
    });
  }

  /** {@inheritDoc ServiceStore.listPage} */
  listPage(request: ListRequest): Promise<ListPage> {
    return this.listing.page(request);
  }

  /** {@inheritDoc ServiceStore.list} */
  list(): ListedService[] {
    return listServices(this.registry, this.options.checkStatus);
  }

  /**
   * Removes stale temporary files of interrupted writes from the services folder (polod killed
   * between create and rename). They are never loaded (hidden, `.tmp`); this only tidies up.
   */
  async sweepTemporaryFiles(): Promise<number> {
    return sweepTemporaryFiles(this.options.servicesDir);
  }

  /** Writes the service file of a permanent publish; returns its path as the loader names it. */
  private async writeServiceFile(plan: PublishPlan, user: UserInfo | undefined): Promise<string> {
    let name: string;
    try {
      name = fileNameForId(plan.id);
    } catch (err) {
      if (err instanceof InvalidArgumentError) throw new PublishRefusal(invalidServiceName(plan.id, 'it is too long to store as a file'));
      throw err;
    }
    // Acknowledged means loaded again after a restart: a name the loader skips is refused.
    checkStorableId(plan.id, name);
    // The format of docs/protocol.md §3; `groups: []` means every served group, now and later.
    const doc = { id: plan.id, params: plan.params, groups: [...plan.groups], disabled: false };
    const content = `${JSON.stringify(plan.check ? { ...doc, check: checkToJson(plan.check) } : doc)}\n`;
    try {
      if (!user) {
        const dir = this.options.servicesDir;
        await mkdir(dir, { recursive: true, mode: 0o755 });
        const file = resolveInside(dir, name);
        // exclusive: a file of that name that is not loaded (disabled, invalid) is the
        // administrator's; it is never overwritten.
        await writeFileAtomic(file, content, { mode: SERVICE_FILE_MODE, exclusive: true });
        return path.join(dir, name);
      }
      await withUserDir(user, this.options.userDirName, true, (dir) =>
        writeFileAtomic(dir.child(name), content, { mode: SERVICE_FILE_MODE, uid: user.uid, gid: user.gid, exclusive: true }),
      );
      return path.join(user.home, this.options.userDirName, name);
    } catch (err) {
      if (isErrno(err, 'EEXIST')) throw new PublishRefusal(permanentExists(plan.wireId));
      this.log.error({ err, service: plan.wireId }, 'could not write a service file');
      throw new PublishRefusal(couldNotWrite(plan.wireId, briefly(err)));
    }
  }

  /**
   * delete_file: removes the service's file, or only `groups` from its list when other groups
   * remain (an empty list in the file means every served group). Paths come from this polod's
   * own folders, re-derived here (file name only), never from anything a caller sent (B15).
   */
  private async dropFileGroups(service: Service, groups: readonly string[], plan: UnpublishPlan): Promise<void> {
    const file = service.file as string;
    const name = path.basename(file);
    const declared = service.groups ?? [];
    const remaining = (declared.length > 0 ? declared : this.servedGroups).filter((g) => !groups.includes(g));
    const change = async (full: string): Promise<void> => {
      if (remaining.length === 0) await removeFile(full);
      else await this.rewriteGroups(full, remaining);
    };
    try {
      if (!plan.owner) {
        const dir = path.resolve(this.options.servicesDir);
        // A root service file loaded from another folder (none should be) is left alone.
        if (path.dirname(path.resolve(file)) !== dir) return;
        await change(resolveInside(dir, name));
        return;
      }
      const owner = plan.owner;
      if (path.dirname(file) !== path.join(owner.home, this.options.userDirName)) return;
      await withUserDir(owner, this.options.userDirName, false, (dir) => change(dir.child(name)));
    } catch (err) {
      if (err instanceof PublishRefusal) throw err;
      this.log.error({ err, service: plan.wireId, file }, 'could not change a service file');
      throw new PublishRefusal(couldNotWrite(plan.wireId, briefly(err)));
    }
  }

  /** Rewrites a service file with another `groups` list, keeping its other keys, owner and mode. */
  private async rewriteGroups(full: string, groups: readonly string[]): Promise<void> {
    let handle;
    try {
      handle = await open(full, fsc.O_RDONLY | fsc.O_NOFOLLOW | fsc.O_NONBLOCK | fsc.O_NOCTTY);
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return; // deleted meanwhile: nothing left to change
      throw err;
    }
    let doc: unknown;
    let st;
    try {
      st = await handle.stat();
      if (!st.isFile() || st.size > MAX_SERVICE_FILE_BYTES) throw new PublishRefusal(PublishErrors.fileUnreadable);
      doc = JSON.parse((await handle.readFile('utf8')).replace(/^\uFEFF/, ''));
    } catch (err) {
      if (err instanceof PublishRefusal) throw err;
      throw new PublishRefusal(PublishErrors.fileUnreadable);
    } finally {
      await handle.close();
    }
    if (!isJsonObject(doc)) throw new PublishRefusal(PublishErrors.fileUnreadable);
    const next = { ...doc, groups: [...groups] };
    await writeFileAtomic(full, `${JSON.stringify(next)}\n`, { mode: st.mode & 0o7777, uid: st.uid, gid: st.gid });
  }
}

/**
 * True when `current` is `published` or a copy of it the registry made (a health check holds a
 * service back as a copy with the same params object); a service published again has new params.
 */
function sameService(current: Service | undefined, published: Service): boolean {
  return current !== undefined && current.params === published.params && current.origin === published.origin;
}

/** A short reason for a reply; the full error goes to the log. */
function briefly(err: unknown): string {
  const message = err instanceof MarcoPoloError || err instanceof Error ? err.message : String(err);
  const line = message.replace(/\s+/g, ' ');
  return line.length > 200 ? `${line.slice(0, 199)}…` : line;
}
