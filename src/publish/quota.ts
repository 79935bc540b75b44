/**
 * Per-user quotas on what polod holds in memory for a user: every service is a few kilobytes of
 * params answered to the LAN, and without a bound one unprivileged user publishing in a loop grew
 * polod until it failed, taking every other user's services with it.
 *
 * A user's usage is counted from the services polod holds at the moment of the publish (so it can
 * never drift from them: unpublish, reload, a file removed by hand all count at once): their user
 * services (`user:id`, whether published or loaded from `~user/.polo`), plus the root services
 * they published (members of the `marcopolo` group). Bytes are those of the id and the params as
 * JSON. A service offered in several groups counts once. uid 0 has no quota: root can stop polod
 * anyway.
 *
 * The check runs inside the store's exclusive section (store.ts), so two publishes of one user
 * cannot both pass on the same remaining room.
 */
import type { ServiceRegistry } from '../registry/registry.js';
import type { Service } from '../registry/service.js';
import type { UserInfo } from '../system/userDb.js';
import { PublishRefusal } from './errors.js';

/** The limits of one user (config `max_services_per_user`, `max_service_bytes_per_user`). */
export interface QuotaLimits {
  /** Most services a user may have offered at once. */
  readonly maxServices: number;
  /** Most bytes (id + params as JSON) of those services together. */
  readonly maxBytes: number;
}

/** The defaults: 256 services and 1 MiB per user. */
export const DEFAULT_QUOTA: QuotaLimits = { maxServices: 256, maxBytes: 1024 * 1024 };

/** What a user holds now. */
export interface Usage {
  services: number;
  bytes: number;
}

/** Sizes are computed once per service object (params never change after a publish or load). */
const sizes = new WeakMap<Service, number>();

/** Bytes a service counts for: its id and its params as JSON. */
export function serviceBytes(id: string, params: unknown): number {
  return Buffer.byteLength(id, 'utf8') + Buffer.byteLength(JSON.stringify(params), 'utf8');
}

function sizeOf(s: Service): number {
  let size = sizes.get(s);
  if (size === undefined) {
    size = serviceBytes(s.id, s.params);
    sizes.set(s, size);
  }
  return size;
}

/** What `user` holds in the registry now (see the module comment). */
export function usageOf(registry: ServiceRegistry, user: string): Usage {
  const seen = new Set<string>();
  const usage: Usage = { services: 0, bytes: 0 };
  const count = (s: Service, key: string): void => {
    if (seen.has(key)) return;
    seen.add(key);
    usage.services++;
    usage.bytes += sizeOf(s);
  };
  for (const group of registry.groups) {
    for (const s of registry.userServices(group).get(user) ?? []) count(s, `u\0${s.id}`);
    for (const s of registry.rootServices(group)) if (s.owner === user) count(s, `r\0${s.id}`);
  }
  return usage;
}

/**
 * Refuses a publish that would take `user` past `limits`.
 * @throws PublishRefusal naming the limit, what the user holds, and what to do.
 */
export function checkQuota(limits: QuotaLimits, registry: ServiceRegistry, user: UserInfo, id: string, params: unknown): void {
  if (user.uid === 0) return;
  const usage = usageOf(registry, user.name);
  if (usage.services + 1 > limits.maxServices) {
    throw new PublishRefusal(
      `Quota exceeded: ${user.name} already has ${usage.services} services, the limit is ${limits.maxServices} (unpublish some first)`,
    );
  }
  const bytes = serviceBytes(id, params);
  if (usage.bytes + bytes > limits.maxBytes) {
    throw new PublishRefusal(
      `Quota exceeded: ${user.name}'s services would take ${usage.bytes + bytes} bytes, the limit is ${limits.maxBytes} (unpublish some first)`,
    );
  }
}
