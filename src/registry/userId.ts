/**
 * The `user:service` rules, in one place: what makes an id a user service, how it splits and
 * joins, and where a user's services live. A user service is stored under its bare name
 * (`web`) in its user's list and answered on the wire as `user:web` (docs/protocol.md §2).
 */

/** The reference's pattern, as polo.cfg's `verify_regexp` writes it: groups 1 and 2 are user and service. */
export const DEFAULT_USER_PATTERN = '^([\\d\\w]+):([\\d\\w]+)$';

/** {@link DEFAULT_USER_PATTERN} compiled. */
export const DEFAULT_VERIFY_REGEXP = new RegExp(DEFAULT_USER_PATTERN);

/** The per-user folder under each home (polo.cfg `polo_user_dir`): service files and the token. */
export const DEFAULT_USER_DIR = '.polo';

/** A user service id split into its parts. */
export interface UserServiceId {
  readonly user: string;
  readonly service: string;
}

/** Splits `user:service` per the configured pattern, or undefined for a root id. */
export function splitUserId(id: string, verifyRegexp: RegExp): UserServiceId | undefined {
  const m = verifyRegexp.exec(id);
  if (!m || m[1] === undefined || m[2] === undefined) return undefined;
  return { user: m[1], service: m[2] };
}

/**
 * Whether a wire id may name a user's service, which a polod loads only when first asked for
 * it: no view of the grid can tell who offers one before a query does. Any id with a ':', whatever
 * a node's `verify_regexp`: a root id holding one is taken for a user's too, which costs its
 * queries nothing but an early end.
 */
export function mayBeUserService(id: string): boolean {
  return id.includes(':');
}

/** The wire id of a service: `user:service` for a user's, the bare id for a root one. */
export function wireId(id: string, user: string | undefined): string {
  return user === undefined ? id : `${user}:${id}`;
}
