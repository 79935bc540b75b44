/**
 * The one lifecycle contract of every long-lived component (Polo, PoloDaemon, PublishServer,
 * MarcodServer; PoloClient's close): `start()` twice, `stop()` twice and `stop()` before
 * `start()` are harmless; `start()` (or any use) after `stop()` rejects with ClosedError.
 * test/component/lifecycle.test.ts runs one shared suite against each of them.
 */

/** A component that starts and stops. */
export interface Startable {
  /** Starts; a second call while started (or starting) is the same start. */
  start(): Promise<void>;
  /** Stops for good; idempotent, harmless before start. */
  stop(): Promise<void>;
}
