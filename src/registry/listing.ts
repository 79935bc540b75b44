/**
 * The local `List` of the publish API: every service this node offers, once each, with the
 * groups it is offered in and who owns it.
 */
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

/**
 * What the registry offers, per service, with its groups. User services appear once their user
 * is loaded: by a publish, a Request-For, or a reload after either.
 */
export function listServices(registry: ServiceRegistry, checkStatus?: CheckStatusOf): ListedService[] {
  const byKey = new Map<string, ListedService>();
  const add = (s: Service, user: string | undefined, group: string): void => {
    // A service held back by its check is listed (with the check's state); nothing else disabled is.
    if (s.disabled && !s.check) return;
    const id = wireId(s.id, user);
    // One entry per service: published ones are one object in every group, file ones one
    // object per group but the same file.
    const key = `${id}\0${s.file ?? ''}\0${JSON.stringify(s.params)}`;
    const entry = byKey.get(key);
    if (entry) {
      if (!entry.groups.includes(group)) entry.groups.push(group);
      return;
    }
    const check = s.check && (checkStatus?.(s.id, user) ?? { target: s.check.target, state: 'pending', failures: 0 });
    byKey.set(key, {
      id,
      owner: user ?? s.owner ?? 'root',
      groups: [group],
      permanent: s.permanent,
      params: s.params,
      root: user === undefined,
      ...(check ? { check } : {}),
    });
  };
  for (const group of registry.groups) {
    for (const s of registry.rootServices(group)) add(s, undefined, group);
    for (const [user, list] of registry.userServices(group)) for (const s of list) add(s, user, group);
  }
  return [...byKey.values()];
}
