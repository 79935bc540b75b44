/**
 * Everything that keeps remote senders from abusing polod, in one object shared by every
 * responder of a daemon: the reply budgets (no amplification), the on-link rule for unicast
 * queries (no reflection off-link), the user-lookup gate (no process per datagram), the bounded
 * log of remote input, and the spread of replies to multicast queries on large grids.
 * Defaults and settings: docs/operations.md, "Abuse limits".
 */
import type { Logger } from '../util/log.js';
import { OnLinkCheck, type LocalNetwork } from './onLink.js';
import { DEFAULT_REPLY_LIMITS, ReplyBudget, type ReplyLimits } from './rateLimit.js';
import { DEFAULT_REMOTE_LOG_LINES_PER_SECOND, RemoteLog } from './remoteLog.js';
import { DEFAULT_USER_LOAD_LIMITS, UserLoadGate, type UserLoadLimits } from './userLoadGate.js';

/** Which sources of unicast queries polod answers. */
export type UnicastScope = 'on-link' | 'any';

/** Settings of a {@link Guard}; every field has a default. */
export interface GuardSettings {
  /**
   * `on-link` (default): a unicast query is answered only when its source is on a network of
   * the interface it arrived on. `any`: every source, but an off-link one gets no reply larger
   * than its query (it has not proven it receives at that address).
   */
  readonly unicastScope: UnicastScope;
  readonly replies: ReplyLimits;
  readonly userLoads: UserLoadLimits;
  /** Log lines about remote input per second. */
  readonly logLinesPerSecond: number;
  /**
   * Nodes expected in the largest served group (0 = unknown, a small grid). Replies to multicast
   * queries are spread over a random delay sized to it (replySpreadMs) so a large grid does not
   * answer in one burst that overflows the asker's receive queue.
   */
  readonly gridSize: number;
}

export const DEFAULT_GUARD_SETTINGS: GuardSettings = {
  unicastScope: 'on-link',
  replies: DEFAULT_REPLY_LIMITS,
  userLoads: DEFAULT_USER_LOAD_LIMITS,
  logLinesPerSecond: DEFAULT_REMOTE_LOG_LINES_PER_SECOND,
  gridSize: 0,
};

/** Grids up to this size answer at once: 20 nodes' replies fit any receive queue. */
export const SPREAD_FROM_NODES = 100;
/** Spread per expected node, and its ceiling (the asker's default window is 1000 ms). */
const SPREAD_MS_PER_NODE = 0.5;
const MAX_SPREAD_MS = 300;

/** Largest random delay of a reply to a multicast query, in ms, for a grid of `nodes`. */
export function replySpreadMs(nodes: number): number {
  if (nodes < SPREAD_FROM_NODES) return 0;
  return Math.min(MAX_SPREAD_MS, Math.round(nodes * SPREAD_MS_PER_NODE));
}

/** The protections of one polod. */
export class Guard {
  readonly settings: GuardSettings;
  readonly replies: ReplyBudget;
  readonly users: UserLoadGate;
  readonly log: RemoteLog;
  readonly onLink: OnLinkCheck;
  /** Largest delay of a reply to a multicast query (0 = answer at once). */
  readonly spreadMs: number;

  constructor(
    logger: Logger,
    settings: Partial<GuardSettings> = {},
    deps: { networks?: () => readonly LocalNetwork[]; clock?: () => number } = {},
  ) {
    this.settings = { ...DEFAULT_GUARD_SETTINGS, ...settings };
    const clock = deps.clock ?? Date.now;
    this.onLink = new OnLinkCheck(deps.networks, clock);
    this.replies = new ReplyBudget(this.settings.replies, clock, (address) => this.onLink.isLocal(address));
    this.users = new UserLoadGate(this.settings.userLoads, clock);
    this.log = new RemoteLog(logger, this.settings.logLinesPerSecond, clock);
    this.spreadMs = replySpreadMs(this.settings.gridSize);
  }

  /** Stops the timers of the guard (the log summary). */
  close(): void {
    this.log.close();
  }
}
