import type { HealthCheck } from '../health/check.js';
import type { JsonObject } from '../protocol/json.js';

/**
 * One offered service as polod holds it. Root services and user services share the shape; a
 * user service's `id` is the bare name (`svc`), its wire id is `user:svc`.
 */
export interface Service {
  /** The id answered on the wire (root) or the name within its user (user services). */
  readonly id: string;
  /** Answered verbatim to Request-For and listed by Services. */
  readonly params: JsonObject;
  /** Groups the file or publisher asked for; empty or absent = every served group. */
  readonly groups?: readonly string[];
  /** Not offered while true (from the file's `disabled`). */
  readonly disabled: boolean;
  /** Backed by a service file (written by a permanent publish, or shipped by an admin). */
  readonly permanent: boolean;
  /**
   * Where it came from: `file` services are rebuilt from disk on every reload; `published`
   * ones were published at run time and survive reloads (docs/protocol.md §3).
   */
  readonly origin: 'file' | 'published';
  /** The file this service was read from or written to. */
  readonly file?: string;
  /** Who published it (user name), for listings and ownership checks. */
  readonly owner?: string;
  /**
   * A health check: the service is offered only while it passes. In the registry's lists a
   * checked service that is not passing is held with `disabled: true` (src/registry/registry.ts).
   */
  readonly check?: HealthCheck;
}

/** True when `service` is offered in `group` (no groups = all groups). */
export function servedIn(service: Pick<Service, 'groups' | 'disabled'>, group: string): boolean {
  if (service.disabled) return false;
  return !service.groups || service.groups.length === 0 || service.groups.includes(group);
}
