/**
 * A watcher's side of authenticated grids (docs/protocol.md §2.4, §8.5): the announcements and
 * goodbyes it hears are checked as polod checks queries, and its own queries are signed, their
 * replies checked against their nonce. Under `required` an unsigned, forged, stale or replayed
 * message is dropped; under `preferred` an unsigned one is kept and marked unverified, except that
 * it never changes (or removes) a member known from a signed one.
 */
import { ReplayCache, verifyDatagram, type AuthPolicy, type GridKey, type VerifyOptions } from '../auth/gridAuth.js';
import { judge, signedQuery, type Judged } from '../auth/keyedExchange.js';
import type { Checked } from './query.js';

/** The keys and policy of a watch in a keyed grid. */
export interface WatchAuth {
  /** Every key verifies; the first signs the watcher's queries. */
  readonly keys: readonly GridKey[];
  readonly policy: Exclude<AuthPolicy, 'off'>;
}

export class WatchVerifier {
  private readonly replay = new ReplayCache();
  /** The same options for every announcement heard: no object per datagram (as AuthGate). */
  private readonly verify: VerifyOptions;
  /** What the watch refused, by reason (for tests and diagnostics). */
  readonly refused: Record<string, number> = {};

  constructor(private readonly auth: WatchAuth) {
    if (auth.keys.length === 0) throw new Error('WatchVerifier without keys');
    this.verify = { keys: auth.keys, replay: this.replay };
  }

  /** An announcement or goodbye heard on the group. */
  heard(data: Uint8Array): Checked | undefined {
    return this.counted(judge(verifyDatagram(data, this.verify), data, this.auth.keys, this.auth.policy));
  }

  /**
   * One of the watcher's queries: each copy to send (signed apart, with a nonce of its own: a
   * node on two of the watcher's links would refuse a second copy of one signed datagram as a
   * replay), and the check of the replies, which may answer any of them.
   */
  query(payload: Uint8Array): { readonly payload: () => Uint8Array; readonly check: (data: Uint8Array) => Checked | undefined } {
    const query = signedQuery(payload, this.auth.keys, this.auth.policy, this.replay);
    return { payload: query.payload, check: (data) => this.counted(query.check(data)) };
  }

  /** Counts a message the watch refused for another reason than its authenticator. */
  refuse(reason: string): undefined {
    this.refused[reason] = (this.refused[reason] ?? 0) + 1;
    return undefined;
  }

  private counted(judged: Judged): Checked | undefined {
    return judged.ok ? judged : this.refuse(judged.reason);
  }
}
