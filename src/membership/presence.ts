/**
 * polod's presence in one group: announces this node (at start, on every service change, as a
 * heartbeat whose rate adapts to the grid's size, and a goodbye at stop), keeps the group's
 * membership view from what it hears and from its own occasional Marco queries, and supplies the
 * Members hint polod adds to its Polo replies. docs/protocol.md, "Announcements and membership",
 * documents the messages and the timing bounds.
 *
 * It hears the group through the responder's sockets (the Polo `tap` option: a byte test per
 * datagram, so Request-For floods cost nothing more) and sends from sockets of its own (one per
 * address family) out of every link it serves: IPv4 where the interface has IPv4, the group's
 * IPv6 twin where it has IPv6 (docs/protocol.md §9). The view counts each link apart
 * (src/membership/links.ts), so a Members hint or an announcement's count is that of the link
 * it goes out on; the responder sends the hinted Polo reply (src/daemon/poloDaemon.ts).
 */
import { randomBytes } from 'node:crypto';
import { ClosedError } from '../errors.js';
import { familyOf, ipv6Twin, isIPv6Group, type Family } from '../protocol/address.js';
import { scopedGroup } from '../discovery/targets.js';
import { allFailed, familySocketOptions, sendToEach, targetFamilies } from '../discovery/sendTargets.js';
import type { NetInterface } from '../transport/interfaces.js';
import { ipv6Link, listedInterfaces, ownAddresses, sourceLinks, withZone } from './links.js';
import { decodeObject } from '../protocol/codec.js';
import type { JsonObject } from '../protocol/json.js';
import type { ServiceEntry } from '../protocol/messages.js';
import type { ServiceChangeSource } from '../registry/events.js';
import type { DatagramSocket, RemoteInfo, Transport } from '../transport/transport.js';
import type { Logger } from '../util/log.js';
import { viewQuery, type Checked } from './query.js';
import { DEFAULT_TIMING, heartbeatInterval, jittered, type PresenceTiming } from './timing.js';
import { MembershipView } from './view.js';
import { mayBeUserService } from '../registry/userId.js';
import {
  encodeAnnouncement,
  encodeGoodbye,
  encodeHintedPolo,
  encodeMembershipQuery,
  COMMAND_INITIAL,
  isAnnounceOrGoodbye,
  readPresence,
  type Announcement,
} from './wire.js';

const OPEN_BRACE = 0x7b;
const A = 0x41; // Announce
const G = 0x47; // Goodbye
const M = 0x4d; // Marco (a membership query carries "Membership")

export interface PresenceOptions {
  readonly transport: Transport;
  readonly group: string;
  readonly port: number;
  /**
   * Interfaces (IPv4 addresses) to send out of, and the IPv6 twin on those of them with IPv6
   * (read at start); empty = the system's choice, over IPv4.
   */
  readonly interfaces: readonly string[];
  /**
   * True: send out of the interfaces given to setInterfaces() (every one, kept current by polod's
   * interface follower) instead of `interfaces`; nothing is sent while there is none.
   */
  readonly managedInterfaces?: boolean;
  /** Multicast TTL of announcements and queries (polod's `hops`). */
  readonly ttl: number;
  readonly nodeParams: JsonObject;
  /** The services this node offers in the group right now. */
  readonly services: () => readonly ServiceEntry[];
  /** Ids of its services held back by a failing health check (announced as `Failing`). */
  readonly failing?: () => readonly string[];
  /** Reports service changes, announced at once. */
  readonly changes?: ServiceChangeSource;
  readonly timing?: PresenceTiming;
  readonly logger: Logger;
  readonly random?: () => number;
  /**
   * The group's authentication in a keyed grid (polod's AuthGate, src/responder/authGate.ts):
   * announcements, goodbyes and membership queries are signed, and an announcement, goodbye or
   * membership reply that fails the check (unsigned under `required`, forged, stale, replayed)
   * is ignored, so nobody without the key can add, change or remove a member.
   */
  readonly auth?: PresenceAuth;
}

/** What a presence needs of the grid's authentication. */
export interface PresenceAuth {
  /** Whether a datagram passes; a signed one has a nonce. */
  check(data: Uint8Array): { readonly ok: true; readonly body: Uint8Array; readonly nonce?: string } | { readonly ok: false };
  sign(message: Uint8Array, replyTo: undefined, key: undefined): Uint8Array;
  /** Params as sent: sealed under policy `sealed` (src/auth/sealed.ts). */
  sealParams?(params: JsonObject): JsonObject;
  /** A service list as sent: each one's params sealed under policy `sealed`. */
  sealServices?(services: readonly ServiceEntry[]): readonly ServiceEntry[];
  /** A checked message with its sealed params opened. */
  open?(body: Uint8Array): Uint8Array;
}

type State = 'new' | 'started' | 'stopped';

/** One datagram of a send: to `address` (the group, or its IPv6 twin scoped to an interface) through `via`, over `link`. */
interface LinkTarget {
  readonly link: string;
  readonly address: string;
  readonly via?: string | undefined;
}

export class GroupPresence {
  readonly instance = randomBytes(8).toString('hex');
  readonly view: MembershipView;
  /** Datagrams sent, by kind (tests and bench read them). */
  readonly sent = { announce: 0, goodbye: 0, query: 0 };
  private readonly timing: PresenceTiming;
  private readonly random: () => number;
  private readonly log: Logger;
  /** The sending sockets by address family. */
  private readonly sockets = new Map<Family, DatagramSocket>();
  private state: State = 'new';
  private rev = 0;
  private lastContent = '';
  /** The params and services of `lastContent` as sent (sealed under policy `sealed`). */
  private sealedParts: { readonly params: JsonObject; readonly services: readonly ServiceEntry[] } | undefined;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private queryTimer: NodeJS.Timeout | undefined;
  private sweepTimer: NodeJS.Timeout | undefined;
  private announcePending = false;
  private opening = false;
  private querying = false;
  private unsubscribe: (() => void) | undefined;
  /** Encoded hinted Polo replies by count (a few distinct counts: one per link at most). */
  private readonly hinted = new Map<number, Uint8Array>();
  /** Where announcements, goodbyes and membership queries go: one entry per link and family. */
  private targets: readonly LinkTarget[];
  /** The link of a source address (src/membership/links.ts), for the interfaces as last known. */
  private linkOf: (address: string) => string = () => '';
  /** The last interface list (relink). */
  private interfaces: readonly NetInterface[] = [];
  /**
   * This host's addresses as sources appear (its own replies and queries come from them): read
   * at each interface change and before each membership query, not per datagram.
   */
  private self: readonly string[] = [];
  /** The link of each recent asker (cleared when the interfaces change). */
  private readonly askers = new Map<string, string>();
  /** Links where another node's membership query was heard since this one's last query. */
  private readonly askedByOthers = new Set<string>();

  constructor(private readonly options: PresenceOptions) {
    this.timing = options.timing ?? DEFAULT_TIMING;
    this.random = options.random ?? Math.random;
    this.targets = [];
    this.log = options.logger.child({ group: options.group, component: 'presence' });
    this.view = new MembershipView({
      timing: this.timing,
      selfInstance: this.instance,
      selfAddresses: () => this.self,
      linkOf: (address) => this.linkOf(address),
    });
    this.view.onEvent((e) => {
      this.log.debug({ event: e.event, address: e.member.address, kind: e.member.kind }, 'membership');
      // The references this node reports changed: tell the others now, not at the next heartbeat.
      if (e.member.kind === 'reference') this.scheduleAnnounce();
    });
  }

  /**
   * The Polo reply to `to` with the Members hint of the link the query came over (`scope`: the
   * interface of the IPv6 socket it arrived on), cached by count; undefined when it would not
   * fit one datagram (the responder then handles the plain reply as before).
   */
  poloReply(to: RemoteInfo, scope?: string): Uint8Array | undefined {
    const size = this.view.sizeOn(this.replyLink(to, scope));
    let bytes = this.hinted.get(size);
    if (bytes === undefined) {
      try {
        bytes = encodeHintedPolo(this.sealed(this.options.nodeParams), size);
      } catch {
        return undefined;
      }
      if (this.hinted.size >= 64) this.hinted.clear();
      this.hinted.set(size, bytes);
    }
    return bytes;
  }

  /**
   * The Providers hint of this node's OK reply to a Request-For of `id` from `to`: how many nodes
   * of the link the query came over offer `id`, this one included (docs/protocol.md §8.4), or
   * undefined when the view cannot know. Never for a user's service (`user:service`): a node
   * loads a user's services when first asked, so the others' announcements may not list them yet.
   */
  providersHint(id: string, to: RemoteInfo, scope?: string): number | undefined {
    if (mayBeUserService(id)) return undefined;
    return this.view.providersOn(this.replyLink(to, scope), id);
  }

  /** The link a query from `to` came over (`scope`: the interface of the IPv6 socket it arrived on). */
  private replyLink(to: RemoteInfo, scope: string | undefined): string {
    return scope !== undefined ? ipv6Link(scope) : this.askerLink(to.address);
  }

  /** The link of an IPv4 asker, remembered (a reply's hot path; askers are few and return). */
  private askerLink(address: string): string {
    let link = this.askers.get(address);
    if (link === undefined) {
      link = this.linkOf(address);
      if (this.askers.size >= 1024) this.askers.clear();
      this.askers.set(address, link);
    }
    return link;
  }

  /**
   * The interfaces to serve, for a presence made with `managedInterfaces`: IPv4 out of those
   * with IPv4, the IPv6 twin out of those with IPv6. A new link hears an announcement at once.
   */
  setInterfaces(interfaces: readonly NetInterface[]): void {
    if (this.options.managedInterfaces !== true) return;
    const before = new Set(this.targets.map((t) => t.link));
    this.relink(interfaces, this.linkTargets(interfaces));
    const added = this.targets.some((t) => !before.has(t.link));
    if (added && this.state === 'started') void this.openSockets().then(() => this.announce());
  }

  /** Takes a new interface list: the targets, and how sources map to links. */
  private relink(interfaces: readonly NetInterface[], targets: readonly LinkTarget[]): void {
    this.targets = targets;
    this.linkOf = sourceLinks(interfaces);
    this.interfaces = interfaces;
    this.refreshSelf();
    this.askers.clear();
    this.view.relinked();
  }

  private refreshSelf(): void {
    this.self = ownAddresses(this.options.transport.localAddresses(), this.interfaces);
  }

  /** One target per link and family of `interfaces` (every one, or those holding `listed` addresses). */
  private linkTargets(interfaces: readonly NetInterface[], listed?: readonly string[]): LinkTarget[] {
    const { group } = this.options;
    const v6 = isIPv6Group(group);
    const twin = v6 ? group : ipv6Twin(group);
    const targets: LinkTarget[] = [];
    for (const iface of listed === undefined ? interfaces : listedInterfaces(interfaces, listed)) {
      // IPv4 out of its first address (its first listed one, with `listed`).
      const via = (listed === undefined ? iface.ipv4[0] : iface.ipv4.find((a) => listed.includes(a.address)))?.address;
      if (!v6 && via !== undefined) targets.push({ link: iface.name, address: group, via });
      if (iface.ipv6.length > 0) targets.push({ link: ipv6Link(iface.name), ...scopedGroup(twin, iface.name) });
    }
    // A listed address not on any interface (yet): IPv4 out of it, as the socket can.
    for (const address of listed ?? []) {
      if (!v6 && !targets.some((t) => t.via === address)) targets.push({ link: '', address: group, via: address });
    }
    return targets;
  }

  /**
   * Sends to every target (`bytes` of its link); resolves once all sends are done, rejecting
   * when none could be sent.
   */
  private async sendAll(bytes: (link: string) => Uint8Array, targets: readonly LinkTarget[] = this.targets): Promise<void> {
    const failed = allFailed(await sendToEach(this.sockets, targets, this.options.port, (t) => bytes(t.link)));
    if (failed !== undefined) throw failed.reason;
  }

  /** Opens the sending socket, announces and starts the heartbeat and the first membership query. */
  async start(): Promise<void> {
    if (this.state === 'stopped') throw new ClosedError('presence');
    if (this.state !== 'new') return;
    this.state = 'started';
    const { group, transport } = this.options;
    if (this.options.managedInterfaces !== true) {
      const interfaces = transport.interfaces?.() ?? [];
      const listed = this.options.interfaces;
      // The system's choice (no interface listed): one datagram, over IPv4, any link.
      const targets = listed.length > 0 ? this.linkTargets(interfaces, listed) : isIPv6Group(group) ? this.linkTargets(interfaces) : [{ link: '', address: group }];
      this.relink(interfaces, targets);
    }
    await this.openSockets();
    this.unsubscribe = this.options.changes?.onChange((c) => {
      if (c.group === group) this.scheduleAnnounce();
    });
    this.announce();
    // One repeat soon after: a start announcement lost on a busy LAN would otherwise wait a heartbeat.
    this.heartbeatTimer = setTimeout(() => this.heartbeat(), this.timing.startRepeatMs).unref();
    this.queryTimer = setTimeout(() => void this.query(), Math.round(this.random() * this.timing.firstQueryMaxMs)).unref();
    this.sweepTimer = setInterval(() => this.view.sweep(), this.timing.sweepMs).unref();
  }

  /** Sends the goodbye and closes. Idempotent. */
  async stop(): Promise<void> {
    if (this.state !== 'started') {
      this.state = 'stopped';
      return;
    }
    this.state = 'stopped';
    clearTimeout(this.heartbeatTimer);
    clearTimeout(this.queryTimer);
    clearInterval(this.sweepTimer);
    this.unsubscribe?.();
    if (this.sockets.size > 0) {
      const goodbye = encodeGoodbye(this.instance);
      try {
        // Signed once per link, as announcements are (see announce()).
        await this.sendAll(() => this.signed(goodbye));
        this.sent.goodbye++;
      } catch (err) {
        this.log.debug({ err }, 'goodbye not sent');
      }
      await Promise.all([...this.sockets.values()].map((s) => s.close()));
      this.sockets.clear();
    }
    this.view.clear();
  }

  /** Announces soon (coalescing several changes of one turn into one datagram). */
  scheduleAnnounce(): void {
    if (this.announcePending || this.state !== 'started') return;
    this.announcePending = true;
    setImmediate(() => {
      this.announcePending = false;
      this.announce(true);
    });
  }

  /**
   * Opens the sending sockets the targets need (IPv4, IPv6) that are not open yet. An interface
   * address may not exist yet (as a group join may fail): then it is tried again at each
   * heartbeat, and nothing is sent that way meanwhile.
   */
  private async openSockets(): Promise<void> {
    if (this.opening) return;
    this.opening = true;
    const { transport, ttl } = this.options;
    const iface = this.options.managedInterfaces === true ? undefined : this.options.interfaces[0];
    try {
      for (const family of targetFamilies(this.targets)) {
        if (this.sockets.has(family)) continue;
        try {
          // Replies never come to these sockets: they only send (announcements, goodbye).
          const socket = await transport.openQuerySocket(familySocketOptions(ttl, iface, family), () => undefined);
          if (this.state === 'started' && !this.sockets.has(family)) this.sockets.set(family, socket);
          else await socket.close();
        } catch (err) {
          this.log.debug({ iface, family, err }, 'cannot announce from this interface yet; will retry');
        }
      }
    } finally {
      this.opening = false;
    }
  }

  private heartbeat(): void {
    if (this.state !== 'started') return;
    if (this.targets.some((t) => !this.sockets.has(familyOf(t.address)))) void this.openSockets().then(() => this.announce());
    else this.announce();
    const interval = heartbeatInterval(this.view.nodes, this.timing);
    this.heartbeatTimer = setTimeout(() => this.heartbeat(), jittered(interval, this.timing.jitter, this.random)).unref();
  }

  /**
   * Sends the announcement. `onlyIfChanged`: a change report that changed nothing (a reload of
   * the same files, a refused publish) sends nothing, so local API calls cannot make a node chatty.
   */
  private announce(onlyIfChanged = false): void {
    if (this.sockets.size === 0 || this.state !== 'started') return;
    const services = this.options.services().map((s) => ({ id: s.id, params: s.params }));
    const refs = this.view.directReferences();
    const failing = this.options.failing?.() ?? [];
    const content = JSON.stringify([this.options.nodeParams, services, refs, failing]);
    if (content !== this.lastContent) {
      this.lastContent = content;
      this.rev++;
      this.sealedParts = undefined;
    } else if (onlyIfChanged) {
      return;
    }
    // Sealed once per content (by value: `content` above), not at every heartbeat, as Polo
    // seals a reply once per params object (src/responder/polo.ts).
    const parts = (this.sealedParts ??= {
      params: this.sealed(this.options.nodeParams),
      services: this.options.auth?.sealServices?.(services) ?? services,
    });
    // `members` is each link's own (below).
    const a: Omit<Announcement, 'members'> = {
      instance: this.instance,
      rev: this.rev,
      every: heartbeatInterval(this.view.nodes, this.timing),
      params: parts.params,
      services: parts.services,
      refs,
      failing,
    };
    // Each link hears the count of that link (one encoding per distinct count). Signed, each
    // link gets its own nonce: a dual-stack receiver hears both families, and the second copy
    // of one signed datagram would be refused there as a replay.
    const encoded = new Map<number | string, Uint8Array>();
    const bytes = (link: string): Uint8Array => {
      const members = this.view.sizeOn(link);
      const key = this.options.auth ? link : members;
      let b = encoded.get(key);
      if (b === undefined) {
        b = this.signed(encodeAnnouncement({ ...a, members }));
        encoded.set(key, b);
      }
      return b;
    };
    this.sendAll(bytes).then(
      () => this.sent.announce++,
      (err: unknown) => this.log.debug({ err }, 'announcement not sent'),
    );
  }

  /**
   * The responder's tap (PoloOptions.tap): consumes Announce and Goodbye, notes membership
   * queries (and lets the responder answer them), and leaves everything else alone. Only our
   * own compact encoding is recognised (`{"Command":"` then the name at byte 12), so the test
   * costs two byte reads for the queries that make up the hot path.
   */
  readonly tap = (data: Uint8Array, from: RemoteInfo, scope?: string): boolean => {
    if (this.state !== 'started' || data.byteLength < 20 || data[0] !== OPEN_BRACE) return false;
    const initial = data[COMMAND_INITIAL];
    if (initial !== A && initial !== G && initial !== M) return false;
    let body = data;
    // Announce and Goodbye are checked here; a Marco query is left to the responder's own check
    // (checking it twice would count its nonce as replayed).
    if (this.options.auth && initial !== M) {
      const checked = this.options.auth.check(data);
      // A refused Announce or Goodbye is consumed, never answered.
      if (!checked.ok) return isAnnounceOrGoodbye(data);
      body = this.options.auth.open?.(checked.body) ?? checked.body;
    }
    let msg: JsonObject;
    try {
      msg = decodeObject(body);
    } catch {
      return false; // the responder counts and logs bad datagrams
    }
    const m = readPresence(msg);
    // An IPv6 source names its interface (the socket's, when the address came without it).
    const address = withZone(from.address, scope);
    switch (m?.kind) {
      case 'announce':
        this.view.hearAnnouncement(address, m.announcement);
        return true;
      case 'goodbye':
        this.view.hearGoodbye(address, m.instance);
        return true;
      case 'marco':
        // Another polod is refreshing its view of that link (and will report the references it
        // finds): this one skips its own next query there.
        if (m.membership && !this.querying && !this.self.includes(address)) this.askedByOther(this.linkOf(address));
        return false;
      default:
        return false;
    }
  };

  /** Params as sent: sealed under policy `sealed`. */
  private sealed(params: JsonObject): JsonObject {
    return this.options.auth?.sealParams?.(params) ?? params;
  }

  /** `message` as sent to the group: signed in a keyed grid. */
  private signed(message: Uint8Array): Uint8Array {
    return this.options.auth ? this.options.auth.sign(message, undefined, undefined) : message;
  }

  /** A reply to a membership query in a keyed grid: its message and whether it was signed, or undefined when it fails the check. */
  private checkReply(auth: PresenceAuth, data: Uint8Array): Checked | undefined {
    const checked = auth.check(data);
    if (!checked.ok) return undefined;
    return { body: auth.open?.(checked.body) ?? checked.body, verified: checked.nonce !== undefined };
  }

  private scheduleQuery(): void {
    if (this.state !== 'started') return;
    clearTimeout(this.queryTimer);
    const base = this.view.hasReferences ? this.timing.queryActiveMs : this.timing.queryIdleMs;
    this.queryTimer = setTimeout(() => void this.query(), Math.round(base * (1 + this.random() / 2))).unref();
  }

  /** Another node's membership query on `link`: skips this one's next query there. */
  private askedByOther(link: string): void {
    this.askedByOthers.add(link);
    // Every link asked by someone: the whole query waits its next turn.
    if (this.targets.every((t) => this.skipped(t))) {
      this.askedByOthers.clear();
      this.scheduleQuery();
    }
  }

  /** True when another node's query covered `t`'s link (any link, for the system's choice). */
  private skipped(t: LinkTarget): boolean {
    return this.askedByOthers.has(t.link) || (t.link === '' && this.askedByOthers.size > 0);
  }

  private async query(): Promise<void> {
    if (this.state !== 'started') return;
    const targets = this.targets.filter((t) => !this.skipped(t));
    this.askedByOthers.clear();
    if (targets.length === 0) {
      this.scheduleQuery();
      return;
    }
    this.querying = true;
    this.sent.query++;
    // An address may have changed since the last interface reading (listed interfaces are read once).
    this.refreshSelf();
    const iface = this.options.managedInterfaces === true ? undefined : this.options.interfaces[0];
    const asked = new Set(targets.map((t) => t.link));
    const auth = this.options.auth;
    const replies = await viewQuery({
      transport: this.options.transport,
      group: this.options.group,
      port: this.options.port,
      iface,
      targets: targets.map((t) => ({ address: t.address, via: t.via })),
      linkOf: this.linkOf,
      ttl: this.options.ttl,
      payload: this.options.auth ? () => this.signed(encodeMembershipQuery()) : encodeMembershipQuery(),
      ...(auth && { check: (data: Uint8Array) => this.checkReply(auth, data) }),
      windowMs: this.timing.queryWindowMs,
      graceMs: this.timing.graceMs,
      knownMembers: this.view.size,
      onReply: (s) => {
        if (this.state === 'started') this.view.hearPolo(s.address, s.params, s.hint);
      },
    });
    this.querying = false;
    if (this.state !== 'started') return;
    // A reference node on a link this query skipped has not missed it.
    const linkOf = this.linkOf;
    this.view.queryDone(new Set(replies.map((r) => r.address)), asked.has('') ? undefined : (address) => asked.has(linkOf(address)));
    this.scheduleQuery();
  }
}
