/**
 * Feeds a DashboardState from the live view: one watch per grid (Marco.watch, which follows the
 * nodes' announcements and queries now and then for reference nodes), and unicast Services
 * queries (as `marco services`) for the nodes whose announcements carry no service list, asked
 * when they come up and again every SERVICES_REFRESH_MS, since such nodes tell nobody when
 * their services change.
 */
import type { Marco } from '../discovery/marco.js';
import type { Watch } from '../membership/watch.js';
import { DashboardState } from './state.js';

/** How often the services of nodes without announced lists are asked again. */
export const SERVICES_REFRESH_MS = 5_000;
/** How long one Services query waits for its answer. */
const SERVICES_TIMEOUT_MS = 1_000;

export interface LiveOptions {
  readonly marco: Marco;
  readonly groups: readonly string[];
  readonly port?: number | undefined;
  readonly iface?: string | undefined;
  readonly refreshMs?: number;
}

/** The running feed: its state, and close(). */
export interface LiveDashboard {
  readonly state: DashboardState;
  /** Resolves once every grid's watch listens; rejects with the socket's error if one cannot. */
  ready(): Promise<void>;
  close(): Promise<void>;
}

export function startLive(options: LiveOptions): LiveDashboard {
  const state = new DashboardState(options.groups);
  const stop = new AbortController();
  const asking = new Set<string>();
  const where = {
    ...(options.port === undefined ? {} : { port: options.port }),
    ...(options.iface === undefined ? {} : { interface: options.iface }),
  };

  const askServices = (group: string, address: string): void => {
    const key = `${group} ${address}`;
    if (asking.has(key) || stop.signal.aborted) return;
    asking.add(key);
    options.marco
      .services(address, { ...where, group, timeout: SERVICES_TIMEOUT_MS, signal: stop.signal })
      .then((result) => {
        if (stop.signal.aborted) return;
        if (result === undefined) state.servicesUnanswered(group, address);
        else state.servicesFound(group, address, result.services, result.truncated === true);
      })
      // A socket error is a miss like silence: the next round asks again.
      .catch(() => undefined)
      .finally(() => asking.delete(key));
  };

  const watches: Watch[] = options.groups.map((group) => {
    const watch = options.marco.watch({ ...where, group, queueEvents: false, signal: stop.signal });
    watch.view.onEvent((e) => {
      if (e.event === 'down') {
        state.memberGone(group, e.member.address, e.reason);
        return;
      }
      state.memberSeen(group, e.member);
      if (e.member.services === undefined) askServices(group, e.member.address);
    });
    return watch;
  });

  const refresh = setInterval(() => {
    for (const group of options.groups) for (const address of state.queried(group)) askServices(group, address);
  }, options.refreshMs ?? SERVICES_REFRESH_MS);
  refresh.unref();

  return {
    state,
    ready: async () => {
      await Promise.all(watches.map((w) => w.ready()));
    },
    close: async () => {
      clearInterval(refresh);
      stop.abort();
      await Promise.all(watches.map((w) => w.close()));
    },
  };
}
