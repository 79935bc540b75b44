/**
 * What `marco dashboard` shows: the grids, their nodes and each node's services, and the recent
 * events. Pure bookkeeping (no sockets, no timers): src/dashboard/dashboard.ts feeds it the
 * membership views' events and the answers of Services queries, and the page server sends its
 * snapshots to the browsers.
 */
import { jsonEqual, type JsonObject } from '../protocol/json.js';
import type { ServiceEntry } from '../protocol/messages.js';
import type { Member } from '../membership/view.js';
import { ipv4ToNumber } from '../util/ipv4.js';

/** Where a node's service list came from. */
export type ServicesSource = 'announcement' | 'query';

/** One node of a grid, as the page shows it: the member (its address, kind and params), and its services. */
export interface DashboardNode extends Pick<Member, 'address' | 'kind' | 'params'> {
  /** Its services in the grid; null while unknown (asked by a Services query). */
  readonly services: readonly ServiceEntry[] | null;
  readonly servicesFrom: ServicesSource | null;
  /**
   * True when the last Services query got no answer: the reference's polod never answers one
   * (docs/protocol.md), so its nodes' services stay unknown.
   */
  readonly unanswered: boolean;
  /** The node cut its Services reply to fit one datagram: some services are not listed. */
  readonly cut: boolean;
  /** Service ids held back by a failing health check. */
  readonly failing: readonly string[];
  /** When the dashboard first saw it (ISO 8601). */
  readonly since: string;
}

/** One line of the recent events. */
export interface DashboardEvent {
  readonly time: string;
  readonly group: string;
  readonly event: 'up' | 'down' | 'update' | 'services';
  readonly address: string;
  /** Plain words: the reason of a `down`, the services added and removed, the params changed. */
  readonly detail: string;
}

/** What the page receives (GET /state, and each Server-Sent Event). */
export interface DashboardSnapshot {
  readonly groups: ReadonlyArray<{ readonly group: string; readonly nodes: readonly DashboardNode[] }>;
  /** Newest first. */
  readonly events: readonly DashboardEvent[];
}

/** Events the dashboard keeps (the page shows them all; older ones are dropped). */
export const EVENT_LIMIT = 100;

export class DashboardState {
  private readonly groups = new Map<string, Map<string, DashboardNode>>();
  private readonly events: DashboardEvent[] = [];
  private readonly listeners = new Set<() => void>();

  constructor(
    groups: readonly string[],
    private readonly now: () => Date = () => new Date(),
  ) {
    for (const g of groups) this.groups.set(g, new Map());
  }

  /** Calls `listener` after every change; returns the unsubscribe function. */
  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** The node at `address` in `group`, if shown. */
  node(group: string, address: string): DashboardNode | undefined {
    return this.groups.get(group)?.get(address);
  }

  /** A member came up or changed (a membership view's `up` or `update`). */
  memberSeen(group: string, member: Member): void {
    const nodes = this.nodesOf(group);
    const known = nodes.get(member.address);
    const time = this.now().toISOString();
    // A member whose announcement carried no list (a reference node, or a list too long for one
    // datagram) keeps what a Services query found.
    const announced = member.services !== undefined;
    const next: DashboardNode = {
      address: member.address,
      kind: member.kind,
      params: member.params,
      services: announced ? [...(member.services ?? [])] : (known?.services ?? null),
      servicesFrom: announced ? 'announcement' : (known?.servicesFrom ?? null),
      unanswered: announced ? false : (known?.unanswered ?? false),
      cut: announced ? false : (known?.cut ?? false),
      failing: [...(member.failing ?? [])],
      since: known?.since ?? time,
    };
    nodes.set(member.address, next);
    if (known === undefined) {
      this.record(group, 'up', member.address, describeUp(next));
    } else {
      if (!jsonEqual(known.params, next.params)) this.record(group, 'update', member.address, paramsChange(known.params, next.params));
      const change = servicesChange(known.services, next.services);
      if (change !== '') this.record(group, 'services', member.address, change);
    }
    this.changed();
  }

  /** A member left (a membership view's `down`). */
  memberGone(group: string, address: string, reason: string): void {
    if (this.groups.get(group)?.delete(address) !== true) return;
    this.record(group, 'down', address, reason);
    this.changed();
  }

  /** The answer of a Services query to a node whose announcements carry no list. */
  servicesFound(group: string, address: string, services: readonly ServiceEntry[], cut = false): void {
    const known = this.groups.get(group)?.get(address);
    if (known === undefined || known.servicesFrom === 'announcement') return;
    const change = servicesChange(known.services, services);
    if (known.servicesFrom === 'query' && change === '' && known.cut === cut) return;
    this.nodesOf(group).set(address, { ...known, services: [...services], servicesFrom: 'query', unanswered: false, cut });
    if (change !== '') this.record(group, 'services', address, change);
    this.changed();
  }

  /** A Services query to a node whose list is not known got no answer. */
  servicesUnanswered(group: string, address: string): void {
    const known = this.groups.get(group)?.get(address);
    if (known === undefined || known.services !== null || known.unanswered) return;
    this.nodesOf(group).set(address, { ...known, unanswered: true });
    this.changed();
  }

  /** Nodes in `group` whose service list comes from Services queries (or is not known yet). */
  queried(group: string): string[] {
    return [...(this.groups.get(group)?.values() ?? [])].filter((n) => n.servicesFrom !== 'announcement').map((n) => n.address);
  }

  snapshot(): DashboardSnapshot {
    return {
      groups: [...this.groups].map(([group, nodes]) => ({
        group,
        nodes: [...nodes.values()].sort((a, b) => addressOrder(a.address, b.address)),
      })),
      events: [...this.events],
    };
  }

  private nodesOf(group: string): Map<string, DashboardNode> {
    let nodes = this.groups.get(group);
    if (nodes === undefined) {
      nodes = new Map();
      this.groups.set(group, nodes);
    }
    return nodes;
  }

  private record(group: string, event: DashboardEvent['event'], address: string, detail: string): void {
    this.events.unshift({ time: this.now().toISOString(), group, event, address, detail });
    if (this.events.length > EVENT_LIMIT) this.events.length = EVENT_LIMIT;
  }

  private changed(): void {
    for (const listener of this.listeners) listener();
  }
}

function describeUp(node: DashboardNode): string {
  const name = node.params['hostname'];
  const who = typeof name === 'string' ? `${name}, ` : '';
  const services = node.services === null ? 'services not known yet' : `${node.services.length} service${node.services.length === 1 ? '' : 's'}`;
  return `${who}${node.kind}, ${services}`;
}

/** `+web -ssh ~db`: services added, removed and whose params changed; '' when none. */
export function servicesChange(before: readonly ServiceEntry[] | null, after: readonly ServiceEntry[] | null): string {
  if (after === null) return '';
  const old = new Map((before ?? []).map((s) => [s.id, s.params]));
  const now = new Map(after.map((s) => [s.id, s.params]));
  const parts: string[] = [];
  for (const [id, params] of now) {
    const was = old.get(id);
    if (was === undefined) parts.push(`+${id}`);
    else if (!jsonEqual(was, params)) parts.push(`~${id}`);
  }
  for (const id of old.keys()) if (!now.has(id)) parts.push(`-${id}`);
  return parts.join(' ');
}

function paramsChange(before: JsonObject, after: JsonObject): string {
  const keys = new Set([...Object.keys(before), ...Object.keys(after)]);
  const changed = [...keys].filter((k) => !jsonEqual(before[k] ?? null, after[k] ?? null) || (k in before) !== (k in after));
  return `params changed: ${changed.join(', ')}`;
}

/** IPv4 addresses in numeric order, then the others (IPv6 members) as text. */
function addressOrder(a: string, b: string): number {
  const na = ipv4ToNumber(a);
  const nb = ipv4ToNumber(b);
  if (na !== undefined && nb !== undefined) return na - nb;
  if (na !== undefined || nb !== undefined) return na !== undefined ? -1 : 1;
  return a < b ? -1 : a > b ? 1 : 0;
}
