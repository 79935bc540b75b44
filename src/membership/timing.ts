/**
 * Every timing constant of the live discovery extension (docs/protocol.md §8) in one place. The
 * bounds the documentation promises are derived from these:
 * change them together with the docs.
 */

/** The timings of announcements, membership queries, expiry and early-complete answers. */
import { DEFAULT_INTERFACE_POLL_MS } from '../transport/interfaces.js';

export interface PresenceTiming {
  /** Shortest heartbeat interval of one node, in ms (grids of up to `gridBudgetPerSec` nodes). */
  readonly heartbeatMinMs: number;
  /**
   * Heartbeats per second the whole grid may send at rest. Each node's interval is
   * max(heartbeatMinMs, members × 1000 / gridBudgetPerSec); jitter (below) makes the mean a
   * little shorter, so the budget is set under the 20 datagrams/s the docs promise.
   */
  readonly gridBudgetPerSec: number;
  /** Each heartbeat is sent after interval × (1 − jitter × random()), never later. */
  readonly jitter: number;
  /** A node is expired when it missed this many of its own heartbeat intervals… */
  readonly expiryBeats: number;
  /** …plus this margin, in ms (scheduling and network delays). */
  readonly expiryMarginMs: number;
  /** The start announcement is repeated once after this delay (a lost datagram costs little). */
  readonly startRepeatMs: number;
  /** The first membership query (finds reference nodes) goes out within this many ms of start. */
  readonly firstQueryMaxMs: number;
  /** Deadline of one membership query, in ms (it usually ends early: see graceMs). */
  readonly queryWindowMs: number;
  /** Membership queries while reference nodes are known: every interval × (1 + random()/2). */
  readonly queryActiveMs: number;
  /** Membership queries while no reference node is known. */
  readonly queryIdleMs: number;
  /** A reference node missing from this many membership queries in a row leaves the view. */
  readonly refMisses: number;
  /** How often expiry is checked, in ms. */
  readonly sweepMs: number;
  /**
   * Grace after every expected member answered a Marco query, in ms: late joiners that answer
   * within it are still collected (docs/protocol.md §8.4).
   */
  readonly graceMs: number;
  /** A watcher with no announcement from anyone queries at most this often, in ms. */
  readonly watchQueryMs: number;
  /**
   * A watcher on every link reads the host's interface list this often, in ms: a link that comes
   * up is listened on and asked at once, not at the next periodic query.
   */
  readonly linkPollMs: number;
}

/** The timings polod, marco and the library use. */
export const DEFAULT_TIMING: PresenceTiming = Object.freeze({
  heartbeatMinMs: 1000,
  gridBudgetPerSec: 18,
  jitter: 0.2,
  expiryBeats: 3,
  expiryMarginMs: 500,
  startRepeatMs: 250,
  firstQueryMaxMs: 500,
  queryWindowMs: 1000,
  queryActiveMs: 5000,
  queryIdleMs: 10_000,
  refMisses: 2,
  sweepMs: 100,
  graceMs: 3,
  watchQueryMs: 30_000,
  linkPollMs: DEFAULT_INTERFACE_POLL_MS,
});

/** A fast preset for component tests over the in-memory transport (same shape, shorter times). */
export const FAST_TIMING: PresenceTiming = Object.freeze({
  heartbeatMinMs: 50,
  gridBudgetPerSec: 18,
  jitter: 0.2,
  expiryBeats: 3,
  expiryMarginMs: 30,
  startRepeatMs: 20,
  firstQueryMaxMs: 10,
  queryWindowMs: 100,
  queryActiveMs: 150,
  queryIdleMs: 600,
  refMisses: 2,
  sweepMs: 10,
  graceMs: 3,
  watchQueryMs: 600,
  linkPollMs: 50,
});

/** Heartbeat interval of a node that counts `members` nodes in its grid (itself included). */
export function heartbeatInterval(members: number, timing: PresenceTiming): number {
  return Math.max(timing.heartbeatMinMs, Math.ceil((Math.max(1, members) * 1000) / timing.gridBudgetPerSec));
}

/** How long after its last announcement a node announcing every `everyMs` is expired. */
export function expiryAfter(everyMs: number, timing: PresenceTiming): number {
  return timing.expiryBeats * everyMs + timing.expiryMarginMs;
}

/** `ms` shortened by up to `fraction` at random: jitter that never delays. */
export function jittered(ms: number, fraction: number, random: () => number = Math.random): number {
  return Math.max(1, Math.round(ms * (1 - fraction * random())));
}
