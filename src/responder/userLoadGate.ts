/**
 * The gate between a remote `user:service` query and a user lookup. A query for a user whose
 * services are not loaded makes polod look the user up (src/system/userDb.ts runs `getent`) and
 * read their folder; any sender can name a fresh user in every datagram. So users found not to
 * exist are remembered (a bounded, expiring set), and new lookups are rate-limited: beyond the
 * budget a query for an unknown user is simply not answered, without a lookup or a log line.
 */
import { TokenBucket } from './rateLimit.js';

/** Limits of {@link UserLoadGate} (docs/operations.md, "Abuse limits"). */
export interface UserLoadLimits {
  /** New user lookups per second caused by queries, in the long run. */
  readonly perSecond: number;
  /** New user lookups allowed at once. */
  readonly burst: number;
  /** How long a user found not to exist is remembered, in ms. */
  readonly missingTtlMs: number;
  /** Most users remembered as missing; the oldest are forgotten first. */
  readonly maxMissing: number;
}

/** Defaults: 10 lookups/s, 20 at once; a missing user is remembered 60 s, up to 4096 of them. */
export const DEFAULT_USER_LOAD_LIMITS: UserLoadLimits = { perSecond: 10, burst: 20, missingTtlMs: 60_000, maxMissing: 4096 };

/** Decides whether a query may cause a user lookup. One per polod, shared by every responder. */
export class UserLoadGate {
  private readonly bucket: TokenBucket;
  /** Users found missing, with the time they expire; Map order is insertion order. */
  private readonly missing = new Map<string, number>();
  /** Lookups refused by the rate limit (a counter for tests and metrics). */
  refused = 0;

  constructor(
    readonly limits: UserLoadLimits = DEFAULT_USER_LOAD_LIMITS,
    private readonly clock: () => number = Date.now,
  ) {
    this.bucket = new TokenBucket(limits.burst, limits.perSecond, clock());
  }

  /** True when a query may look `user` up now (and takes one lookup from the budget). */
  admit(user: string): boolean {
    const now = this.clock();
    const expires = this.missing.get(user);
    if (expires !== undefined) {
      if (expires > now) return false;
      this.missing.delete(user);
    }
    if (this.bucket.tokens(now) < 1) {
      this.refused++;
      return false;
    }
    this.bucket.spend(1, now);
    return true;
  }

  /** Records that `user` does not exist, so queries naming them cause no lookup for a while. */
  notFound(user: string): void {
    this.missing.delete(user);
    this.missing.set(user, this.clock() + this.limits.missingTtlMs);
    while (this.missing.size > this.limits.maxMissing) {
      const oldest = this.missing.keys().next();
      if (oldest.done === true) break;
      this.missing.delete(oldest.value);
    }
  }

  /** Users remembered as missing (bounded by maxMissing). */
  get missingCount(): number {
    return this.missing.size;
  }
}
