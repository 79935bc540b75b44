/**
 * Cancellation plumbing shared by every client: a call takes the caller's AbortSignals plus a
 * deadline, and must stop listening to them when it ends (a long-lived signal collects one
 * listener per call otherwise). One home for it, so each call site keeps only its own policy.
 */
import { AbortedError } from '../errors.js';

/** Throws AbortedError (the signal's reason as cause) if any signal has already fired. */
export function throwIfAborted(signals: readonly AbortSignal[]): void {
  const aborted = signals.find((s) => s.aborted);
  if (aborted !== undefined) throw new AbortedError({ cause: aborted.reason });
}

/**
 * Calls `listener` once, with the first signal that fires. Returns the function that removes the
 * listeners; call it when the work ends.
 */
export function onAnyAbort(signals: readonly AbortSignal[], listener: (signal: AbortSignal) => void): () => void {
  const removers: (() => void)[] = [];
  const remove = (): void => {
    for (const r of removers.splice(0)) r();
  };
  for (const signal of signals) {
    const fire = (): void => {
      remove();
      listener(signal);
    };
    signal.addEventListener('abort', fire, { once: true });
    removers.push(() => signal.removeEventListener('abort', fire));
  }
  return remove;
}

/** `promise`, or a rejection with `signal.reason` as soon as the signal fires. */
export function untilAborted(promise: Promise<void>, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.reject(signal.reason as Error);
  return new Promise((resolve, reject) => {
    const remove = onAnyAbort([signal], () => reject(signal.reason as Error));
    void promise.then(() => {
      remove();
      resolve();
    });
  });
}
