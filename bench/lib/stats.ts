/**
 * Summary statistics for benchmark samples. Percentiles use the nearest-rank method: the value
 * reported is always one that was actually measured, never an interpolation between two runs.
 */

/** The `p`-th percentile (0 < p ≤ 100) of `samples` by nearest rank; NaN for no samples. */
export function percentile(samples: readonly number[], p: number): number {
  if (samples.length === 0) return Number.NaN;
  if (!(p > 0 && p <= 100)) throw new RangeError(`percentile must be in (0, 100], got ${p}`);
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1] as number;
}

/**
 * The median. With an even count it is the mean of the two middle values (the usual median),
 * unlike {@link percentile}: a median of 2 runs should not simply be the faster one.
 */
export function median(samples: readonly number[]): number {
  if (samples.length === 0) return Number.NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  if (sorted.length % 2 === 1) return sorted[mid] as number;
  return ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

/** The 95th percentile (nearest rank). */
export function p95(samples: readonly number[]): number {
  return percentile(samples, 95);
}

/** Median, p95, min, max and count of a sample set. */
export interface Summary {
  readonly n: number;
  readonly median: number;
  readonly p95: number;
  readonly min: number;
  readonly max: number;
}

/** Summarises `samples` (NaN fields when empty). */
export function summarize(samples: readonly number[]): Summary {
  return {
    n: samples.length,
    median: median(samples),
    p95: p95(samples),
    min: samples.length === 0 ? Number.NaN : Math.min(...samples),
    max: samples.length === 0 ? Number.NaN : Math.max(...samples),
  };
}
