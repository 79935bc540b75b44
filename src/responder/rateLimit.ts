/**
 * Token buckets that bound what remote senders can make polod do: reply bytes per source and in
 * total (no amplification, docs/protocol.md §7), and user-folder loads (no process per query).
 * Time is passed in, so the arithmetic is tested without clocks.
 */

/**
 * A bucket of `capacity` tokens refilled at `ratePerSec`. `spend` lets the level go below zero
 * by at most one spend (a reply is never cut in two), and nothing more is spent until the debt
 * is repaid: what passes in `t` seconds is at most capacity + rate × t + one spend.
 */
export class TokenBucket {
  private level: number;
  private last: number;

  constructor(
    readonly capacity: number,
    readonly ratePerSec: number,
    now: number,
  ) {
    this.level = capacity;
    this.last = now;
  }

  /** The level at `now` (ms), after refilling. */
  tokens(now: number): number {
    if (now > this.last) {
      this.level = Math.min(this.capacity, this.level + ((now - this.last) * this.ratePerSec) / 1000);
      this.last = now;
    }
    return this.level;
  }

  /** True when something may be spent now (the level is above zero). */
  open(now: number): boolean {
    return this.tokens(now) > 0;
  }

  /** Spends `cost` if the bucket is open; false (nothing spent) if it is not. */
  spend(cost: number, now: number): boolean {
    if (!this.open(now)) return false;
    this.level -= cost;
    return true;
  }

  /** True when the bucket is full at `now`: it then holds no state worth keeping. */
  full(now: number): boolean {
    return this.tokens(now) >= this.capacity;
  }
}

/** Reply budgets, in bytes of UDP payload (docs/operations.md, "Abuse limits"). */
export interface ReplyLimits {
  /** Bytes one source may receive in a burst. */
  readonly perSourceBurst: number;
  /** Bytes per second one source may receive in the long run. */
  readonly perSourceRate: number;
  /** Bytes every source together may receive in a burst. */
  readonly totalBurst: number;
  /** Bytes per second every source together may receive in the long run. */
  readonly totalRate: number;
  /** Datagrams one source may send in a burst before the rest are dropped undecoded. */
  readonly perSourceQueryBurst: number;
  /** Datagrams per second one source may send in the long run. */
  readonly perSourceQueryRate: number;
  /** Sources remembered at once; beyond that the fullest are forgotten first. */
  readonly maxSources: number;
}

/**
 * Defaults: a source gets 32 KiB at once then 32 KiB/s (hundreds of Marco or Request-For
 * replies a second, or eight 4 KiB Services replies), and may send 1000 datagrams at once then
 * 500/s; the node sends at most 512 KiB at once then 256 KiB/s in all. A flood of n queries of
 * b bytes from one source in t seconds gets back at most 32 KiB + 32 KiB × t + 4 KiB (one reply
 * of debt): less than it sent once n × b exceeds that (3000 Services queries within a second).
 */
export const DEFAULT_REPLY_LIMITS: ReplyLimits = {
  perSourceBurst: 32 * 1024,
  perSourceRate: 32 * 1024,
  totalBurst: 512 * 1024,
  totalRate: 256 * 1024,
  perSourceQueryBurst: 1000,
  perSourceQueryRate: 500,
  maxSources: 4096,
};

/** What is remembered of one source. */
interface SourceBuckets {
  /** Reply bytes it may still receive. */
  readonly bytes: TokenBucket;
  /** Datagrams it may still send before the rest are dropped undecoded. */
  readonly queries: TokenBucket;
}

/** The per-source and total reply budgets of one polod (every group and the unicast port). */
export class ReplyBudget {
  private readonly sources = new Map<string, SourceBuckets>();
  private readonly total: TokenBucket;
  private readonly unlimited: boolean;

  /**
   * @param exempt sources never limited: this host's own addresses (local clients such as marcod,
   *   trusted as the publish API trusts them; a reply to oneself amplifies nothing).
   */
  constructor(
    readonly limits: ReplyLimits,
    private readonly clock: () => number = Date.now,
    private readonly exempt: (address: string) => boolean = () => false,
  ) {
    this.total = new TokenBucket(limits.totalBurst, limits.totalRate, clock());
    this.unlimited = limits.perSourceBurst === Number.POSITIVE_INFINITY && limits.totalBurst === Number.POSITIVE_INFINITY;
  }

  /**
   * Whether a datagram from `address` is worth decoding: false while the source or the node is
   * out of budget, since no reply could be sent anyway. Looked up before any parsing, so a
   * flooding source costs a map lookup per datagram.
   */
  admit(address: string): boolean {
    if (this.unlimited || this.exempt(address)) return true;
    const now = this.clock();
    const source = this.source(address, now);
    // Every datagram counts, valid or not: a flood of garbage is dropped like one of queries.
    if (!source.queries.spend(1, now)) return false;
    return this.total.open(now) && source.bytes.open(now);
  }

  /** Charges a reply of `bytes` to `address`; false (nothing charged) when it must not be sent. */
  spend(address: string, bytes: number): boolean {
    if (this.unlimited || this.exempt(address)) return true;
    const now = this.clock();
    const bucket = this.source(address, now).bytes;
    if (!bucket.open(now) || !this.total.open(now)) return false;
    bucket.spend(bytes, now);
    this.total.spend(bytes, now);
    return true;
  }

  private source(address: string, now: number): SourceBuckets {
    let source = this.sources.get(address);
    if (source === undefined) {
      const l = this.limits;
      source = {
        bytes: new TokenBucket(l.perSourceBurst, l.perSourceRate, now),
        queries: new TokenBucket(l.perSourceQueryBurst, l.perSourceQueryRate, now),
      };
      if (this.sources.size >= l.maxSources) this.evict(now);
      this.sources.set(address, source);
    }
    return source;
  }

  /** Sources currently remembered (bounded by maxSources). */
  get size(): number {
    return this.sources.size;
  }

  /**
   * Makes room: forgets every full bucket (a new one is the same), or, when none is full, the
   * oldest half. Forgetting a bucket in debt hands its source a fresh burst, so this only
   * happens when more than maxSources sources are in debt at once (then the total bucket binds).
   */
  private evict(now: number): void {
    for (const [address, s] of this.sources) if (s.bytes.full(now) && s.queries.full(now)) this.sources.delete(address);
    if (this.sources.size < this.limits.maxSources) return;
    let drop = Math.ceil(this.sources.size / 2);
    for (const address of this.sources.keys()) {
      if (drop-- <= 0) break;
      this.sources.delete(address);
    }
  }
}
