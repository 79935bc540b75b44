/**
 * Watching a grid: the events of its nodes (`up`, `down`, `update`), or of the providers of one
 * service. A watcher listens to the announcements on group:port (its own socket, address reuse,
 * so it runs next to a polod or on a host without one), starts with one Marco query (and one
 * Request-For for a service) for the current state, and afterwards queries only now and then,
 * for the reference nodes that never announce. docs/protocol.md, "Announcements and membership".
 *
 * Like a query (src/discovery/targets.ts), a watch with no interface named covers every link of
 * the host, in one family per link: IPv4 where the host has IPv4 there, the group's IPv6 twin
 * where it has only IPv6. So a dual-stack node is one member, at its IPv4 address, and the view
 * counts each link apart (src/membership/links.ts) for its completeness.
 */
import { decodeObject } from '../protocol/codec.js';
import { encodeFrame } from '../protocol/codec.js';
import { isJsonObject, jsonEqual, type JsonObject } from '../protocol/json.js';
import { InterfaceWatcher } from '../transport/interfaces.js';
import type { GroupSocket, Transport } from '../transport/transport.js';
import { queryTargets } from '../discovery/targets.js';
import type { SendTarget } from '../discovery/collector.js';
import { isIPv6Group } from '../protocol/address.js';
import { sendToTargets, viewQuery } from './query.js';
import { ipv6Link, isIPv6Link, sourceLinks, withZone } from './links.js';
import { DEFAULT_TIMING, type PresenceTiming } from './timing.js';
import { MembershipView, type Member, type ViewEvent } from './view.js';
import { WatchVerifier, type WatchAuth } from './watchAuth.js';
import { isAnnounceOrGoodbye, readPresence } from './wire.js';

/** Why a node or provider went down. `check failed` is set by polods with health checks. */
export type WatchDownReason = 'goodbye' | 'expired' | 'unpublished' | 'check failed';

/** One event of a watch. */
export interface WatchEvent {
  readonly event: 'up' | 'down' | 'update';
  /** The node's address: IPv4, or on an IPv6-only link its link-local address with the interface (`fe80::1%eth0`). */
  readonly address: string;
  /** Node params (node watch) or the service's params (service watch). */
  readonly params: JsonObject;
  /** Set on `down`. */
  readonly reason?: WatchDownReason;
  /**
   * In a keyed grid (a watch with keys, policy not `off`): whether the node's announcement or
   * reply carried a valid authenticator (always true under `required`).
   */
  readonly verified?: boolean;
  /** When the watcher saw it (ISO 8601). */
  readonly time: string;
}

/** What to watch, and where. */
export interface WatchPlan {
  readonly transport: Transport;
  readonly group: string;
  readonly port: number;
  /** Local interface address to join and send from; undefined = the system's choice. */
  readonly iface?: string | undefined;
  readonly ttl: number;
  /** Watch the providers of this service id instead of the nodes. */
  readonly service?: string | undefined;
  readonly timing?: PresenceTiming;
  readonly signal?: AbortSignal | undefined;
  /** False for a watch read only through its view (marcod's warm view): events are not kept. */
  readonly queueEvents?: boolean;
  /** Members registered in the grid registry, merged with the LAN's. */
  readonly registry?: RegistryFeed;
  /** A keyed grid: announcements checked, queries signed (src/membership/watchAuth.ts). */
  readonly auth?: WatchAuth | undefined;
}

/**
 * A second source of members (the grid registry, src/etcd/watchFeed.ts): it feeds `view` until
 * `signal` aborts, and calls `ready` once it delivered the grid (or found it unreachable).
 */
export type RegistryFeed = (view: MembershipView, signal: AbortSignal, ready: () => void) => Promise<void>;


/** Unread events a watch keeps; a reader that far behind loses the oldest. */
const QUEUE_LIMIT = 4096;

/**
 * A running watch: an async iterator of events. It ends (without an error) when the signal
 * aborts or `close()` is called; breaking out of a `for await` closes it.
 */
export class Watch implements AsyncIterableIterator<WatchEvent> {
  readonly view: MembershipView;
  /** Queries this watch sent (it follows announcements; queries are occasional). */
  queries = 0;
  /** True once the first query (the current state) has ended: the view is then complete. */
  warm = false;
  private readonly timing: PresenceTiming;
  private readonly queue: WatchEvent[] = [];
  private readonly waiters: Array<() => void> = [];
  private readonly providers = new Map<string, { params: JsonObject; verified: boolean | undefined }>();
  /** Set in a keyed grid: what it refused is counted in `verifier.refused`. */
  readonly verifier: WatchVerifier | undefined;
  /** The IPv6 socket of each link, by interface name (the IPv4 one is v4Socket, joined on each IPv4 link). */
  private readonly v6Sockets = new Map<string, GroupSocket>();
  /** Follows the host's links (a watch on every link): a new one is asked at once. */
  private links: InterfaceWatcher | undefined;
  /** A query is under way; `relinked` asks for the next one as soon as it ends. */
  private querying = false;
  private relinked = false;
  /** Interfaces (IPv4 address, or `%name` for IPv6) the watch listens on. */
  private readonly listening = new Set<string>();
  private v4Socket: GroupSocket | undefined;
  /** Where queries go out (every link), and the link of a source. */
  private targets: SendTarget[] | undefined;
  private linkOf: (address: string) => string = () => '';
  private closed = false;
  private failure: Error | undefined;
  private queryTimer: NodeJS.Timeout | undefined;
  private sweepTimer: NodeJS.Timeout | undefined;
  private readonly abort = (): void => void this.close();
  private readonly started: Promise<void>;
  /** Ends the registry feed with the watch. */
  private readonly feedController = new AbortController();
  /** Settles once the registry feed delivered the grid (at once without a registry). */
  private registryReady: Promise<void> = Promise.resolve();

  constructor(private readonly plan: WatchPlan) {
    this.timing = plan.timing ?? DEFAULT_TIMING;
    this.verifier = plan.auth === undefined ? undefined : new WatchVerifier(plan.auth);
    this.view = new MembershipView({ timing: this.timing, linkOf: (address) => this.linkOf(address) });
    this.view.onEvent((e) => this.viewChanged(e));
    if (plan.signal?.aborted === true) {
      this.closed = true;
      this.started = Promise.resolve();
      return;
    }
    plan.signal?.addEventListener('abort', this.abort, { once: true });
    this.started = this.start();
    this.started.catch((err: unknown) => {
      this.failure = err instanceof Error ? err : new Error(String(err));
      void this.close();
    });
  }

  /** True once the watch has ended (closed, aborted, or failed). */
  get ended(): boolean {
    return this.closed;
  }

  /** Resolves once the watch listens (its initial query is under way); rejects if it cannot. */
  ready(): Promise<void> {
    return this.started;
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  async next(): Promise<IteratorResult<WatchEvent, undefined>> {
    for (;;) {
      const event = this.queue.shift();
      if (event !== undefined) return { done: false, value: event };
      if (this.failure !== undefined) throw this.failure;
      if (this.closed) return { done: true, value: undefined };
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
  }

  async return(): Promise<IteratorResult<WatchEvent, undefined>> {
    await this.close();
    return { done: true, value: undefined };
  }

  /** Stops watching and closes the socket. Idempotent. */
  async close(): Promise<void> {
    if (this.closed && this.sockets.length === 0) return;
    this.closed = true;
    this.feedController.abort();
    this.plan.signal?.removeEventListener('abort', this.abort);
    clearTimeout(this.queryTimer);
    clearInterval(this.sweepTimer);
    this.links?.stop();
    const sockets = this.sockets;
    this.v6Sockets.clear();
    this.v4Socket = undefined;
    this.wake();
    await Promise.all(sockets.map((s) => s.close()));
  }

  /** Every socket the watch has open. */
  private get sockets(): GroupSocket[] {
    return [...(this.v4Socket === undefined ? [] : [this.v4Socket]), ...this.v6Sockets.values()];
  }

  private async start(): Promise<void> {
    this.followLinks();
    await this.listen();
    if (this.closed) return;
    this.sweepTimer = setInterval(() => this.view.sweep(), this.timing.sweepMs).unref();
    const feed = this.plan.registry;
    if (feed !== undefined) {
      this.registryReady = new Promise<void>((resolve) => {
        void feed(this.view, this.feedController.signal, resolve).finally(resolve);
      });
    }
    void this.query();
  }

  /** Reads an announcement or goodbye heard on the group from `address` (checked in a keyed grid). */
  private hear(data: Uint8Array, address: string): void {
    let body = data;
    let verified: boolean | undefined;
    const verifier = this.verifier;
    if (verifier !== undefined) {
      // Only announcements and goodbyes matter here; the queries on the group are not checked.
      if (!isAnnounceOrGoodbye(data)) return;
      const checked = verifier.heard(data);
      if (checked === undefined) return;
      body = checked.body;
      verified = checked.verified;
    }
    let msg: JsonObject;
    try {
      msg = decodeObject(body);
    } catch {
      return;
    }
    const m = readPresence(msg);
    // `preferred`: the view keeps an unsigned message from changing or removing a member known
    // from a signed one.
    const taken =
      m?.kind === 'announce' ? this.view.hearAnnouncement(address, m.announcement, verified) : m?.kind === 'goodbye' ? this.view.hearGoodbye(address, m.instance, verified) : true;
    if (!taken) verifier?.refuse('unsigned-over-signed');
  }

  /**
   * Listens on the links of the host as they are now (called at start and before each query, so
   * a link that came up since is covered): the IPv4 group on each link with IPv4, the IPv6
   * group (or twin) on each link it is asked over. The first socket that cannot be opened
   * fails the start; later ones are tried again at the next query.
   */
  private async listen(): Promise<void> {
    const { transport, group, iface } = this.plan;
    const v6 = isIPv6Group(group);
    // The list the link watcher read last (within linkPollMs), else read now.
    const interfaces = this.links?.interfaces ?? transport.interfaces?.();
    const targets = queryTargets(group, iface, interfaces);
    this.targets = targets;
    this.linkOf = sourceLinks(interfaces ?? []);
    this.view.relinked();
    // No list of links (or an interface named for an IPv4 grid): one socket, one link.
    if (targets === undefined) {
      await this.listenV4(v6 ? '' : (iface ?? ''));
      return;
    }
    let failure: unknown;
    for (const t of targets) {
      const percent = t.address.indexOf('%');
      try {
        if (percent >= 0) await this.listenV6(t.address.slice(0, percent), t.address.slice(percent + 1));
        else await this.listenV4(t.via ?? '');
      } catch (err) {
        // A link that vanished meanwhile: the others are still heard.
        failure = err;
      }
    }
    if (this.sockets.length === 0 && failure !== undefined && !this.closed) throw failure;
  }

  /** Joins the IPv4 group on the interface `via` ('' = the system's choice). */
  private async listenV4(via: string): Promise<void> {
    if (this.listening.has(via) || this.closed) return;
    let socket = this.v4Socket;
    if (socket === undefined) {
      socket = await this.plan.transport.bindGroup(this.plan.group, this.plan.port, (data, from) => this.hear(data, from.address));
      if (this.closed) {
        await socket.close();
        return;
      }
      this.v4Socket = socket;
    }
    this.listening.add(via);
    try {
      socket.join(via === '' ? undefined : via);
    } catch (err) {
      this.listening.delete(via);
      throw err;
    }
  }

  /** Joins the IPv6 group `group` on interface `name`, with a socket of its own there. */
  private async listenV6(group: string, name: string): Promise<void> {
    const key = ipv6Link(name);
    if (this.listening.has(key) || this.closed) return;
    this.listening.add(key);
    try {
      const socket = await this.plan.transport.bindGroup(group, this.plan.port, (data, from) => this.hear(data, withZone(from.address, name)), name);
      if (this.closed) {
        await socket.close();
        return;
      }
      this.v6Sockets.set(name, socket);
      socket.join();
    } catch (err) {
      this.listening.delete(key);
      throw err;
    }
  }

  /**
   * A watch on every link follows the host's interfaces as polod does (src/daemon/poloDaemon.ts):
   * when the list changes, the links that went away are forgotten (an IPv6 socket bound to a
   * vanished interface is closed, so the link is listened on afresh if it comes back) and the
   * next query goes out now, after listening on the new links; their nodes are seen within
   * `linkPollMs` and a query window instead of at the next periodic query.
   */
  private followLinks(): void {
    const list = this.plan.transport.interfaces?.bind(this.plan.transport);
    if (this.plan.iface !== undefined || list === undefined) return;
    let first = true;
    this.links = new InterfaceWatcher({
      intervalMs: this.timing.linkPollMs,
      list,
      onChange: (now) => {
        // The first reading is the one the watch starts listening from.
        if (first) {
          first = false;
          return;
        }
        this.forgetLinks(now.map((i) => i.name), now.flatMap((i) => i.ipv4.map((a) => a.address)));
        this.askNow();
      },
    });
    this.links.start();
  }

  /** Stops counting on links gone from the host: IPv4 joins by address, IPv6 sockets by name. */
  private forgetLinks(names: readonly string[], ipv4: readonly string[]): void {
    for (const via of [...this.listening]) {
      if (isIPv6Link(via) || via === '' || ipv4.includes(via)) continue;
      // An address gone from the host: joining there again (the link back) is tried anew.
      this.listening.delete(via);
    }
    for (const [name, socket] of [...this.v6Sockets]) {
      if (names.includes(name)) continue;
      this.v6Sockets.delete(name);
      this.listening.delete(ipv6Link(name));
      void socket.close();
    }
  }

  /** The next query now (or as soon as the one under way ends). */
  private askNow(): void {
    if (this.closed) return;
    if (this.querying || !this.warm) {
      this.relinked = true;
      return;
    }
    clearTimeout(this.queryTimer);
    void this.query();
  }

  /** The current state by query, then the next query later (more often with reference nodes). */
  private async query(): Promise<void> {
    if (this.closed) return;
    this.querying = true;
    this.relinked = false;
    try {
      await this.queryOnce();
    } catch {
      // A query that could not be sent (its link went away meanwhile): the next one tries again.
    } finally {
      this.querying = false;
    }
    if (this.closed) return;
    // The links changed while the query ran: ask again at once.
    const every = this.relinked ? 0 : this.view.hasReferences ? this.timing.queryActiveMs : this.timing.watchQueryMs;
    this.queryTimer = setTimeout(() => void this.query(), Math.round(every * (1 + Math.random() / 2))).unref();
  }

  private async queryOnce(): Promise<void> {
    // A link that came up since the last query is listened on and asked (a failure waits for the next).
    if (this.warm) await this.listen().catch(() => undefined);
    if (this.closed) return;
    this.queries++;
    const base = {
      transport: this.plan.transport,
      group: this.plan.group,
      port: this.plan.port,
      iface: this.plan.iface,
      targets: this.targets,
      linkOf: this.linkOf,
      ttl: this.plan.ttl,
      windowMs: this.timing.queryWindowMs,
      graceMs: this.timing.graceMs,
      knownMembers: 0,
      ...(this.plan.signal === undefined ? {} : { signal: this.plan.signal }),
    };
    const query = encodeFrame({ Command: 'Marco' });
    const signed = this.verifier?.query(query);
    const marco = viewQuery({
      ...base,
      payload: signed?.payload ?? query,
      ...(signed && { check: signed.check }),
      onReply: (s) => {
        if (this.closed) return;
        this.view.hearPolo(s.address, s.params, s.hint, s.verified);
      },
    });
    const service = this.plan.service;
    const offers = service === undefined ? undefined : await this.requestFor(service);
    const replies = await marco;
    await this.registryReady;
    if (this.closed) return;
    this.view.queryDone(new Set(replies.map((r) => r.address)));
    this.warm = true;
    if (offers !== undefined) this.referenceOffers(offers);
  }

  /** A Request-For of the watched service: the providers that answered, with their params. */
  private async requestFor(service: string): Promise<Map<string, JsonObject>> {
    const offers = new Map<string, JsonObject>();
    const query = encodeFrame({ Command: 'Request-For', Params: service });
    const signed = this.verifier?.query(query);
    const sockets = await sendToTargets(
      { ...this.plan, targets: this.targets },
      signed?.payload ?? query,
      (data, from) => {
        const checked = signed?.check(data);
        if (signed && checked === undefined) return;
        try {
          const msg = decodeObject(checked?.body ?? data);
          const params = msg['Params'];
          if (msg['Command'] !== 'OK' || !isJsonObject(params) || offers.has(from.address)) return;
          const member = this.view.member(from.address);
          if (checked?.verified === false && member?.verified === true) return;
          offers.set(from.address, params);
          // Announcing members are followed through their announcements once those list services.
          if (!this.closed && member?.services === undefined) this.provider(from.address, params, checked?.verified);
        } catch {
          // not a reply to us
        }
      },
    );
    try {
      // The window of the query, cut short by the watch's end.
      await new Promise<void>((resolve) => {
        const signal = this.plan.signal;
        const finish = (): void => {
          clearTimeout(timer);
          signal?.removeEventListener('abort', finish);
          resolve();
        };
        const timer = setTimeout(finish, this.timing.queryWindowMs).unref();
        signal?.addEventListener('abort', finish, { once: true });
      });
    } finally {
      await Promise.all(sockets.map((s) => s.close()));
    }
    return offers;
  }

  /** After a Request-For: reference providers that did not answer it withdrew the service. */
  private referenceOffers(offers: ReadonlyMap<string, JsonObject>): void {
    for (const [address] of [...this.providers]) {
      const member = this.view.member(address);
      if (member?.kind === 'reference' && !offers.has(address)) this.providerDown(address, 'unpublished');
    }
  }

  private viewChanged(e: ViewEvent): void {
    const service = this.plan.service;
    if (service === undefined) {
      if (e.event === 'update' && jsonEqual(e.member.params, e.previous.params) && e.member.verified === e.previous.verified) return;
      this.push(e.event, e.member.address, e.member.params, e.event === 'down' ? e.reason : undefined, this.verifiedOf(e.member));
      return;
    }
    if (e.event === 'down') {
      this.providerDown(e.member.address, e.reason);
      return;
    }
    this.servicesOf(e.member, service);
  }

  private servicesOf(member: Member, service: string): void {
    if (member.services === undefined) return;
    const offered = member.services.find((s) => s.id === service);
    if (offered) this.provider(member.address, offered.params, this.verifiedOf(member));
    else this.providerDown(member.address, member.failing?.includes(service) ? 'check failed' : 'unpublished');
  }

  private provider(address: string, params: JsonObject, verified: boolean | undefined): void {
    const known = this.providers.get(address);
    if (known !== undefined && jsonEqual(known.params, params) && known.verified === verified) return;
    this.providers.set(address, { params, verified });
    this.push(known === undefined ? 'up' : 'update', address, params, undefined, verified);
  }

  private providerDown(address: string, reason: WatchDownReason): void {
    const known = this.providers.get(address);
    if (known === undefined) return;
    this.providers.delete(address);
    this.push('down', address, known.params, reason, known.verified);
  }

  /** A member's `verified` for events and answers: set in a keyed grid only (reference nodes never sign). */
  verifiedOf(member: Member): boolean | undefined {
    return this.verifier === undefined ? undefined : member.verified === true;
  }

  private push(event: WatchEvent['event'], address: string, params: JsonObject, reason: WatchDownReason | undefined, verified: boolean | undefined): void {
    if (this.closed || this.plan.queueEvents === false) return;
    const time = new Date().toISOString();
    this.queue.push({ event, address, params, ...(reason !== undefined && { reason }), ...(verified !== undefined && { verified }), time });
    if (this.queue.length > QUEUE_LIMIT) this.queue.shift();
    this.wake();
  }

  private wake(): void {
    for (const waiter of this.waiters.splice(0)) waiter();
  }
}
