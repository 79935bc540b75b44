/**
 * Polling helper for tests: wait for a condition instead of sleeping a fixed time, so tests are
 * as fast as the system allows and fail with a message saying what never happened.
 */
import { setTimeout as delay } from 'node:timers/promises';

/** Options of {@link waitFor}. `what` names the awaited condition in the timeout error. */
export interface WaitOptions {
  /** Give up after this long (default 5000 ms). */
  timeoutMs?: number;
  /** Pause between probes (default 20 ms). */
  intervalMs?: number;
  /** Human description of the condition, e.g. "polod on h1 to join 224.0.0.112". */
  what: string;
}

/**
 * Calls `probe` until it returns something other than `undefined` or `false`, and resolves with
 * that value. A probe that throws fails the wait at once (a bug, not "not yet"). Rejects with an
 * Error naming `what` when `timeoutMs` elapses; the probe always runs at least once.
 */
export async function waitFor<T>(
  probe: () => T | undefined | false | Promise<T | undefined | false>,
  opts: WaitOptions,
): Promise<T> {
  const timeoutMs = opts.timeoutMs ?? 5000;
  const intervalMs = opts.intervalMs ?? 20;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    const left = deadline - Date.now();
    if (left <= 0) throw new Error(`timed out after ${timeoutMs} ms waiting for ${opts.what}`);
    // The pause between probes, not a fixed sleep standing in for a condition.
    await delay(Math.min(intervalMs, left));
  }
}
