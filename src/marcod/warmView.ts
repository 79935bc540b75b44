/**
 * marcod's warm views: one watch per group it serves (src/membership/watch.ts), kept from the
 * nodes' announcements, so that Marco and Request-For are answered at once, without a network
 * query, when the view is sure to be complete (docs/protocol.md §4.1). When it is not — a
 * reference node in the grid (its services are unknown), a node whose services did not fit its
 * announcement, a member count that says a node is missing, a user service (loaded by polod on
 * demand), a view not yet warm — the request runs a query, as before.
 *
 * A view covers every link a query asks, in the same family per link (src/membership/watch.ts),
 * so a host on several LANs, or on an IPv6-only one, is answered from its view too; whether a
 * node is missing is judged link by link.
 */
import type { Marco } from '../discovery/marco.js';
import type { NodeResult } from '../discovery/results.js';
import type { Member } from '../membership/view.js';
import type { Watch } from '../membership/watch.js';
import { matchesFilter } from '../protocol/json.js';
import type { Logger } from '../util/log.js';
import { mayBeUserService } from '../registry/userId.js';
import type { MarcoRequest, RequestForRequest } from './request.js';

/** Groups marcod keeps a view of; requests for more groups are answered by query. */
export const MAX_WARM_GROUPS = 16;

export class WarmViews {
  private readonly watches = new Map<string, Watch>();
  private readonly controller = new AbortController();
  /** Groups whose view failed to start, logged once each. */
  private readonly warned = new Set<string>();
  /** Requests answered from a view, and by query because the view could not. */
  readonly stats = { fromView: 0, notSure: 0 };

  constructor(
    private readonly marco: Marco,
    private readonly options: {
      readonly defaultGroup: string;
      readonly iface: string | undefined;
      readonly logger: Logger;
    },
  ) {}

  /** Starts the view of the default group (others start on their first request). */
  start(): void {
    this.watch(this.options.defaultGroup);
  }

  /** The reply from the view, or undefined (the caller queries). */
  answer(request: MarcoRequest | RequestForRequest): NodeResult[] | undefined {
    const group = request.group ?? this.options.defaultGroup;
    const watch = this.watch(group);
    const found = watch === undefined ? undefined : fromView(watch, request);
    if (found === undefined) this.stats.notSure++;
    else this.stats.fromView++;
    return found;
  }

  /** Members of each group's view, for the groups whose view is warm (marcod's metrics). */
  members(): Map<string, number> {
    const sizes = new Map<string, number>();
    for (const [group, watch] of this.watches) if (watch.warm && !watch.ended) sizes.set(group, watch.view.nodes);
    return sizes;
  }

  close(): void {
    this.controller.abort();
    this.watches.clear();
  }

  private watch(group: string): Watch | undefined {
    let watch = this.watches.get(group);
    // A watch that failed (its interface address not there yet…) is made again on a later request.
    if (watch?.ended === true) {
      this.watches.delete(group);
      watch = undefined;
    }
    if (watch === undefined && this.watches.size < MAX_WARM_GROUPS && !this.controller.signal.aborted) {
      try {
        watch = this.marco.watch({
          group,
          signal: this.controller.signal,
          queueEvents: false,
          ...(this.options.iface === undefined ? {} : { interface: this.options.iface }),
        });
      } catch {
        // The query path reports the problem (an interface that is not an address of this host).
        return undefined;
      }
      this.watches.set(group, watch);
      const started = watch;
      // A group whose socket fails (port taken without address reuse…) is answered by query.
      started.ready().then(
        () => undefined,
        (err: unknown) => {
          if (this.warned.has(group)) return;
          this.warned.add(group);
          this.options.logger.warn({ group, err }, 'no warm view of this group (yet); answering by query');
        },
      );
    }
    return watch;
  }
}

/** The request's answer from `watch`'s view when that view is complete for it. */
export function fromView(watch: Watch, request: MarcoRequest | RequestForRequest): NodeResult[] | undefined {
  if (!watch.warm) return undefined;
  const view = watch.view;
  const members = view.members();
  // An empty view proves nothing (a network that is down looks the same).
  if (members.length === 0 || !view.complete) return undefined;
  if (members.some((m) => m.kind !== 'announcing')) return undefined;
  let nodes: NodeResult[];
  const verified = (m: Member): { verified?: boolean } => {
    const v = watch.verifiedOf(m);
    return v === undefined ? {} : { verified: v };
  };
  if (request.command === 'Marco') {
    nodes = members.map((m) => ({ address: m.address, params: m.params, ...verified(m) }));
  } else {
    // polod loads a user's services when first asked: only a query can say.
    if (mayBeUserService(request.service)) return undefined;
    if (members.some((m) => m.services === undefined)) return undefined;
    nodes = members.flatMap((m) => {
      const offered = m.services?.find((s) => s.id === request.service);
      return offered === undefined ? [] : [{ address: m.address, params: offered.params, ...verified(m) }];
    });
  }
  const exclude = new Set(request.exclude);
  const filter = request.params;
  nodes = nodes.filter((n) => !exclude.has(n.address) && (filter === undefined || matchesFilter(n.params, filter)));
  return request.maxNodes > 0 ? nodes.slice(0, request.maxNodes) : nodes;
}
