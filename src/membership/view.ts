/**
 * The membership view of one grid: who is there, from their announcements (our nodes) and from
 * Marco replies (reference nodes, which never announce). Pure bookkeeping: no sockets and no
 * timers; the owner feeds it what it hears, calls `sweep()` periodically and listens to its
 * events. polod (src/membership/presence.ts) and watchers (src/membership/watch.ts) share it.
 */
import { jsonEqual, type JsonObject } from '../protocol/json.js';
import type { ServiceEntry } from '../protocol/messages.js';
import { expiryAfter, type PresenceTiming } from './timing.js';
import type { Announcement, RefEntry } from './wire.js';
import { isIPv6Link } from './links.js';

/** Why a member left the view. */
export type DownReason = 'goodbye' | 'expired';

/** One node of the grid. */
export interface Member {
  readonly address: string;
  /** `announcing`: one of ours; `reference`: found by Marco queries only. */
  readonly kind: 'announcing' | 'reference';
  readonly params: JsonObject;
  /** Services it offers in the group (announcing members whose list fitted the datagram). */
  readonly services: readonly ServiceEntry[] | undefined;
  /** Ids of its services held back by a failing health check. */
  readonly failing?: readonly string[];
  /**
   * Set by watchers of a keyed grid (docs/protocol.md §2.4): whether what made this member
   * (its last announcement, or its reply) carried a valid authenticator.
   */
  readonly verified?: boolean;
}

/** A change of the view. */
export type ViewEvent =
  | { readonly event: 'up'; readonly member: Member }
  | { readonly event: 'update'; readonly member: Member; readonly previous: Member }
  | { readonly event: 'down'; readonly member: Member; readonly reason: DownReason };

interface Ours {
  member: Member;
  instance: string | undefined;
  rev: number | undefined;
  expiresAt: number;
  refs: readonly RefEntry[];
  /** The Members count of its last announcement (0: none heard yet). */
  members: number;
}

interface DirectRef {
  params: JsonObject;
  lastSeen: number;
  misses: number;
}

/** Options of a view. */
export interface ViewOptions {
  readonly timing: PresenceTiming;
  /** Our own instance id (a polod's view leaves itself out and counts itself in `size`). */
  readonly selfInstance?: string;
  /** Addresses of this host: Polo replies and announcements from them are our own. */
  readonly selfAddresses?: () => readonly string[];
  /**
   * The link a member's address is on (src/membership/links.ts): counts and completeness are
   * then judged link by link. Without it the view is one link.
   */
  readonly linkOf?: (address: string) => string;
  readonly now?: () => number;
}

export class MembershipView {
  private readonly ours = new Map<string, Ours>();
  private readonly directRefs = new Map<string, DirectRef>();
  /** Reference members as last reported through events (the union of direct and gossiped). */
  private readonly refs = new Map<string, Member>();
  private readonly listeners = new Set<(e: ViewEvent) => void>();
  private readonly now: () => number;
  /** Members per link, recomputed after a change (the Members hint is read on every Polo reply). */
  private perLink: Map<string, number> | undefined;
  /**
   * Per link, how many members offer each service id, or null when a member there offers what
   * this view cannot know; built on first use after a change (read on every Request-For reply).
   */
  private readonly providerTables = new Map<string, Map<string, number> | null>();

  constructor(private readonly options: ViewOptions) {
    this.now = options.now ?? (() => performance.now());
  }

  /** Calls `listener` for every change; returns the unsubscribe function. */
  onEvent(listener: (e: ViewEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Nodes in the grid as this view counts them (itself included when it is a polod's). */
  get size(): number {
    return (this.options.selfInstance === undefined ? 0 : 1) + this.ours.size + this.refs.size;
  }

  /**
   * Nodes a query over `link` reaches as this view counts them: the members on that link, the
   * routed ones (link '') for an IPv4 link, and itself when it is a polod's. For link '' (a
   * routed asker, or the system's choice of link): every IPv4 member. Without `linkOf`, `size`.
   */
  sizeOn(link: string): number {
    if (this.options.linkOf === undefined) return this.size;
    let n = this.options.selfInstance === undefined ? 0 : 1;
    for (const [memberLink, count] of this.linkCounts()) if (reaches(link, memberLink)) n += count;
    return n;
  }

  /**
   * True when no announcing member says its link has more nodes than this view counts there: a
   * view missing nobody (marcod answers from it only then). Link by link with `linkOf`, since
   * each node counts the link it announces on.
   */
  get complete(): boolean {
    const linkOf = this.options.linkOf;
    if (linkOf === undefined) return this.reportedSize <= this.ours.size + this.refs.size;
    for (const [address, o] of this.ours) {
      const link = linkOf(address);
      if (o.members > (link === '' ? this.size : this.sizeOn(link))) return false;
    }
    return true;
  }

  /** The links of the members changed (the host's interfaces did): counts are read again. */
  relinked(): void {
    this.changed();
  }

  /** Forgets the counts derived from the members: they are computed again when next read. */
  private changed(): void {
    this.perLink = undefined;
    this.providerTables.clear();
  }

  /**
   * Providers of service `id` that a Request-For over `link` reaches, as this view counts them:
   * the members sizeOn() counts there that list `id` (a service withdrawn by its health check is
   * not listed), plus one for the owner (a polod asks this when it answers). Undefined when one of those
   * members may offer it unseen: a reference node, or one of ours whose service list this view
   * has not read (heard only by its Polo reply, or a list too long for its announcement).
   */
  providersOn(link: string, id: string): number | undefined {
    let table = this.providerTables.get(link);
    if (table === undefined) {
      table = this.providerTable(link);
      this.providerTables.set(link, table);
    }
    return table === null ? undefined : 1 + (table.get(id) ?? 0);
  }

  private providerTable(link: string): Map<string, number> | null {
    const linkOf = this.options.linkOf;
    const reached = (address: string): boolean => linkOf === undefined || reaches(link, linkOf(address));
    for (const address of this.refs.keys()) if (reached(address)) return null;
    const table = new Map<string, number>();
    for (const [address, o] of this.ours) {
      if (!reached(address)) continue;
      const services = o.member.services;
      if (services === undefined) return null;
      for (const s of services) table.set(s.id, (table.get(s.id) ?? 0) + 1);
    }
    return table;
  }

  private linkCounts(): Map<string, number> {
    if (this.perLink !== undefined) return this.perLink;
    const counts = new Map<string, number>();
    const linkOf = this.options.linkOf ?? (() => '');
    for (const address of [...this.ours.keys(), ...this.refs.keys()]) {
      const link = linkOf(address);
      counts.set(link, (counts.get(link) ?? 0) + 1);
    }
    this.perLink = counts;
    return counts;
  }

  /**
   * Distinct nodes: like `size`, but a node heard on several links (two LANs, or IPv4 and IPv6)
   * counts once, by its instance. What metrics report and the heartbeat adapts to.
   */
  get nodes(): number {
    const instances = new Set<string>();
    let anonymous = 0;
    for (const o of this.ours.values()) {
      if (o.instance === undefined) anonymous++;
      else instances.add(o.instance);
    }
    return (this.options.selfInstance === undefined ? 0 : 1) + instances.size + anonymous + this.refs.size;
  }

  /** Every member, ours first. */
  members(): Member[] {
    return [...[...this.ours.values()].map((o) => o.member), ...this.refs.values()];
  }

  member(address: string): Member | undefined {
    return this.ours.get(address)?.member ?? this.refs.get(address);
  }

  /**
   * The largest grid size our members report (their announcements' Members, themselves
   * included); 0 before any announcement. More than this view counts means it misses a node.
   */
  private get reportedSize(): number {
    let max = 0;
    for (const o of this.ours.values()) if (o.members > max) max = o.members;
    return max;
  }

  /** True once a reference node is known (membership queries are then more frequent). */
  get hasReferences(): boolean {
    return this.refs.size > 0;
  }

  /** The reference nodes this view saw answer its own queries (what an announcement reports). */
  directReferences(): RefEntry[] {
    return [...this.directRefs].map(([address, r]) => ({ address, params: r.params }));
  }

  /**
   * An announcement heard from `address` (`verified`: see {@link Member.verified}). False when
   * refused: what is not verified never changes or removes a member known from a signed message
   * (an unsigned datagram under policy `preferred`, or a registry record).
   */
  hearAnnouncement(address: string, a: Announcement, verified?: boolean): boolean {
    if (a.instance === this.options.selfInstance) return true;
    const expiresAt = this.now() + expiryAfter(a.every, this.options.timing);
    const known = this.ours.get(address);
    if (overridesSigned(known?.member, verified)) return false;
    if (known && known.instance === a.instance && known.rev === a.rev && known.member.verified === verified) {
      known.expiresAt = Math.max(known.expiresAt, expiresAt);
      known.members = a.members;
      return true;
    }
    const member: Member = {
      address,
      kind: 'announcing',
      params: a.params,
      services: a.services,
      ...(a.failing ? { failing: a.failing } : {}),
      ...(verified !== undefined && { verified }),
    };
    this.ours.set(address, { member, instance: a.instance, rev: a.rev, expiresAt, refs: a.refs, members: a.members });
    this.directRefs.delete(address);
    this.reconcileRefs();
    if (!known) this.emit({ event: 'up', member });
    else if (!sameMember(known.member, member)) this.emit({ event: 'update', member, previous: known.member });
    return true;
  }

  /** A goodbye heard from `address`: the node leaves at once. False when refused (see hearAnnouncement). */
  hearGoodbye(address: string, instance: string, verified?: boolean): boolean {
    const known = this.ours.get(address);
    if (overridesSigned(known?.member, verified)) return false;
    if (!known || (known.instance !== undefined && known.instance !== instance)) return true;
    this.ours.delete(address);
    this.departed();
    this.inherit(known.refs);
    this.reconcileRefs();
    this.emit({ event: 'down', member: known.member, reason: 'goodbye' });
    return true;
  }

  /**
   * A Polo reply to a query this view's owner sent. A reply with the Members hint comes from one
   * of ours (kept until its announcements take over, or expired); one without is a reference node.
   */
  hearPolo(address: string, params: JsonObject, hint: number | undefined, verified?: boolean): void {
    if (this.options.selfAddresses?.().includes(address) === true) return;
    const now = this.now();
    if (hint !== undefined) {
      const known = this.ours.get(address);
      if (overridesSigned(known?.member, verified)) return;
      const expiresAt = now + expiryAfter(this.options.timing.heartbeatMinMs, this.options.timing);
      if (known) {
        known.expiresAt = Math.max(known.expiresAt, expiresAt);
        return;
      }
      const member: Member = { address, kind: 'announcing', params, services: undefined, ...(verified !== undefined && { verified }) };
      this.ours.set(address, { member, instance: undefined, rev: undefined, expiresAt, refs: [], members: 0 });
      this.reconcileRefs();
      this.emit({ event: 'up', member });
      return;
    }
    if (this.ours.has(address)) return;
    this.directRefs.set(address, { params, lastSeen: now, misses: 0 });
    this.reconcileRefs();
  }

  /**
   * One of this owner's Marco queries ended; `answered` are the addresses that replied. `asked`:
   * whether the query reached an address's link (it went out of some links only).
   */
  queryDone(answered: ReadonlySet<string>, asked?: (address: string) => boolean): void {
    let changed = false;
    for (const [address, ref] of this.directRefs) {
      if (answered.has(address) || asked?.(address) === false) continue;
      if (++ref.misses >= this.options.timing.refMisses) {
        this.directRefs.delete(address);
        changed = true;
      }
    }
    if (changed) this.reconcileRefs();
  }

  /** Expires the members whose time is up. */
  sweep(): void {
    const now = this.now();
    const expired: Member[] = [];
    for (const [address, o] of this.ours) {
      if (o.expiresAt <= now) {
        this.ours.delete(address);
        this.departed();
        this.inherit(o.refs);
        expired.push(o.member);
      }
    }
    // A reference node seen by nobody's query for long enough is dropped even if queries were
    // suppressed by others (whose announcements then carry it).
    const refTtl = this.options.timing.refMisses * this.options.timing.queryActiveMs * 1.5 + this.options.timing.queryWindowMs;
    let refsChanged = false;
    for (const [address, r] of this.directRefs) {
      if (now - r.lastSeen > refTtl) {
        this.directRefs.delete(address);
        refsChanged = true;
      }
    }
    if (expired.length > 0 || refsChanged) this.reconcileRefs();
    for (const member of expired) this.emit({ event: 'down', member, reason: 'expired' });
  }

  /** Forgets everything (no events): the owner stopped. */
  clear(): void {
    this.ours.clear();
    this.directRefs.clear();
    this.refs.clear();
    this.changed();
  }

  /** The others counted the node that left: their counts drop with it until they announce again. */
  private departed(): void {
    for (const o of this.ours.values()) if (o.members > 0) o.members--;
  }

  /**
   * The reference nodes a departed announcer reported stay, as if seen now: they leave by this
   * view's own queries (misses) or their age, not because their reporter left.
   */
  private inherit(refs: readonly RefEntry[]): void {
    const now = this.now();
    for (const r of refs) {
      if (!this.directRefs.has(r.address)) this.directRefs.set(r.address, { params: r.params, lastSeen: now, misses: 0 });
    }
  }

  /** Recomputes the reference members from direct sightings and announcers' reports; emits the differences. */
  private reconcileRefs(): void {
    this.changed();
    const next = new Map<string, JsonObject>();
    for (const o of this.ours.values()) for (const r of o.refs) next.set(r.address, r.params);
    for (const [address, r] of this.directRefs) next.set(address, r.params);
    const self = this.options.selfAddresses?.() ?? [];
    for (const address of self) next.delete(address);
    for (const address of this.ours.keys()) next.delete(address);
    for (const [address, member] of [...this.refs]) {
      if (!next.has(address)) {
        this.refs.delete(address);
        // Left the refs because it now announces: not a departure.
        if (!this.ours.has(address)) this.emit({ event: 'down', member, reason: 'expired' });
      }
    }
    for (const [address, params] of next) {
      const known = this.refs.get(address);
      const member: Member = { address, kind: 'reference', params, services: undefined };
      if (!known) {
        this.refs.set(address, member);
        this.emit({ event: 'up', member });
      } else if (!jsonEqual(known.params, params) && Object.keys(params).length > 0) {
        this.refs.set(address, member);
        this.emit({ event: 'update', member, previous: known });
      }
    }
  }

  private emit(e: ViewEvent): void {
    this.changed();
    for (const listener of [...this.listeners]) listener(e);
  }
}

/**
 * Whether a query over `link` reaches a member on `memberLink` (links: src/membership/links.ts):
 * its own link, and routed members ('') from an IPv4 link; from no link of ours (''), every IPv4
 * member.
 */
function reaches(link: string, memberLink: string): boolean {
  if (link === '') return !isIPv6Link(memberLink);
  return memberLink === link || (memberLink === '' && !isIPv6Link(link));
}

function sameMember(a: Member, b: Member): boolean {
  if (a.verified !== b.verified || !jsonEqual(a.params, b.params)) return false;
  if (a.services === undefined || b.services === undefined) return a.services === b.services;
  if (a.services.length !== b.services.length) return false;
  return a.services.every((s, i) => {
    const t = b.services?.[i];
    return t !== undefined && s.id === t.id && jsonEqual(s.params, t.params);
  });
}

/** Whether a message of `verified` would change `known`, a member made by a signed message, without being signed. */
function overridesSigned(known: Member | undefined, verified: boolean | undefined): boolean {
  return known?.verified === true && verified !== true;
}
