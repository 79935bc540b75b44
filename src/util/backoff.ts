/** Exponential back-off, the one rule for every retry loop (group joins, unicast listeners). */

/** First and longest delay of a back-off, in ms. */
export interface Backoff {
  /** First delay, in ms. */
  readonly initialMs: number;
  /** Longest delay, in ms (the delay doubles up to this). */
  readonly maxMs: number;
}

/** The delay before retry number `attempt` (1 = the first retry): doubling, capped. */
export function backoffDelay(attempt: number, { initialMs, maxMs }: Backoff): number {
  return Math.min(maxMs, initialMs * 2 ** Math.max(0, attempt - 1));
}
