/**
 * The Polo responder of one multicast group: the reference's `Polo` class (seed document), with
 * every documented method under its camelCase name and the reference's bugs fixed. It wires
 * socket → decode → answer() → encode → send; what to answer is decided by answer.ts.
 */
import os from 'node:os';
import { ClosedError, JoinError } from '../errors.js';
import { encodeReply, encodeServicesReply } from '../protocol/codec.js';
import type { JsonObject } from '../protocol/json.js';
import { DEFAULT_GROUP, POLO_PORT, POLO_TTL } from '../protocol/limits.js';
import type { Query, Reply, ServiceEntry } from '../protocol/messages.js';
import type { ServiceLoader, UserLookup } from '../registry/ports.js';
import { ServiceRegistry } from '../registry/registry.js';
import type { Service } from '../registry/service.js';
import { DEFAULT_VERIFY_REGEXP, splitUserId } from '../registry/userId.js';
import type { GroupSocket, RemoteInfo, Transport } from '../transport/transport.js';
import { UdpTransport } from '../transport/udp.js';
import { silentLogger, type Logger } from '../util/log.js';
import { admit } from './ingest.js';
import { answer, type AnswerContext, type Decision } from './answer.js';
import { countReply, newPoloStats, type PoloStats } from './stats.js';
import { Guard } from './guard.js';
import type { AuthGate } from './authGate.js';
import type { GridKey } from '../auth/gridAuth.js';
import { MAX_DATAGRAM } from '../protocol/limits.js';
import { backoffDelay, type Backoff } from '../util/backoff.js';
import { ipv6Twin, isIPv6Group } from '../protocol/address.js';
import { listedInterfaces } from '../membership/links.js';
import { withProvidersHint } from '../membership/wire.js';

const MARCO_QUERY: Query = { command: 'Marco' };
const SERVICES_QUERY: Query = { command: 'Services' };

export { DEFAULT_VERIFY_REGEXP };

/** Back-off of multicast join retries. */
export interface JoinRetryPolicy extends Backoff {
  /** Retries before giving up on an interface; negative = forever (the reference's `retries`). */
  readonly retries: number;
}

/** The reference retried every 3 s forever; we start faster and back off. */
export const DEFAULT_JOIN_RETRY: JoinRetryPolicy = { initialMs: 500, maxMs: 15_000, retries: -1 };

/** Constructor options: the seed's four, then what the reference read from globals. */
export interface PoloOptions {
  /** Root services of this group, shared by reference: modified in place, never replaced. */
  readonly offeredServices?: Service[];
  /** User services of this group by user name, shared by reference like `offeredServices`. */
  readonly userServices?: Map<string, Service[]>;
  /** The group to serve (default 224.0.0.112, the reference's fallback group). */
  readonly multicastGroup?: string;
  /** What makes an id a user service; a string is compiled, groups 1 and 2 = user, service. */
  readonly verifyRegexp?: string | RegExp;
  /** Socket factory (default: real UDP). */
  readonly transport?: Transport;
  /** UDP port (default 1337). */
  readonly port?: number;
  /** Interface addresses to join on; empty = the system's choice. */
  readonly interfaces?: readonly string[];
  /**
   * True: join nothing at start; the owner lists the interfaces to serve with setInterfaces()
   * and keeps the list current (polod's every-interface mode, PoloDaemon in src/daemon/poloDaemon.ts).
   */
  readonly managedInterfaces?: boolean;
  /** Multicast TTL of the socket (the reference's `hops`, default 1). */
  readonly ttl?: number;
  /** Params of the Polo reply (default `{"hostname": <host name>}`). */
  readonly nodeParams?: JsonObject;
  /** Folder of root service files; undefined = none. */
  readonly servicesDir?: string;
  /** Name of the per-user folder under each home (default `.polo`). */
  readonly userDirName?: string;
  /** Reads service folders (required when servicesDir is set or user services are used). */
  readonly loadServices?: ServiceLoader;
  /** The system's user database (required for user services). */
  readonly users?: UserLookup;
  /** Join retry back-off. */
  readonly joinRetry?: JoinRetryPolicy;
  readonly logger?: Logger;
  /**
   * The registry that owns the services (polod shares one across its groups, and reloads it
   * itself). Without one, the Polo makes its own from the options above and reloads it on start.
   */
  readonly registry?: ServiceRegistry;
  /**
   * The abuse limits (reply budgets, user-lookup gate, bounded remote log; src/responder/guard.ts),
   * shared by every responder of a daemon. Without one, the Polo makes its own with the defaults.
   */
  readonly guard?: Guard;
  /** The group's authentication (a keyed grid): queries checked, replies signed. */
  readonly auth?: AuthGate;
  /** Largest reply before signing (default 4096; less in a keyed daemon, to leave room for `"Auth"`). */
  readonly replyLimit?: number;
  /**
   * The encoded Polo reply to send to `to` instead of the plain one: polod's reply carries the
   * Members hint of live discovery (src/membership/presence.ts), counted on the link the query
   * came over (`scope`: the interface of the IPv6 socket it arrived on; undefined for IPv4).
   */
  readonly poloReply?: (to: RemoteInfo, scope: string | undefined) => Uint8Array | undefined;
  /**
   * The Providers hint to add to an OK reply to a Request-For of `id` from `to` (live discovery,
   * src/membership/presence.ts), or undefined to send the plain reply.
   */
  readonly providersHint?: (id: string, to: RemoteInfo, scope: string | undefined) => number | undefined;
  /**
   * Sees every datagram first; returning true consumes it (not counted, not answered). polod's
   * presence reads the live-discovery messages here (src/membership/presence.ts): one function
   * call and a byte test on the hot path, instead of a second socket receiving every query.
   * `scope`: the interface of the IPv6 socket it arrived on.
   */
  readonly tap?: (datagram: Uint8Array, from: RemoteInfo, scope?: string) => boolean;
}

type State = 'new' | 'started' | 'stopped';

/** Answers Marco, Request-For and Services queries arriving on one multicast group. */
export class Polo {
  /** Root services of this group (the object passed in, if any). */
  readonly offeredServices: Service[];
  /** User services of this group by user name (the object passed in, if any). */
  readonly userServices: Map<string, Service[]>;
  readonly multicastGroup: string;
  readonly verifyRegexp: RegExp;
  readonly stats: PoloStats = newPoloStats();
  /** Join attempts that failed since the last success, per interface ('' = system's choice). */
  readonly joinAttempts = new Map<string, number>();

  /** The owner of the services this Polo answers about. */
  readonly registry: ServiceRegistry;

  private readonly transport: Transport;
  private readonly port: number;
  private readonly interfaces: readonly string[];
  private readonly ttl: number;
  private readonly nodeParams: JsonObject;
  private readonly log: Logger;
  private readonly context: AnswerContext;
  private readonly joinRetry: JoinRetryPolicy;
  private readonly ownsRegistry: boolean;
  /** The abuse limits this Polo answers under. */
  readonly guard: Guard;
  private readonly ownsGuard: boolean;
  private readonly auth: AuthGate | undefined;
  private readonly replyLimit: number;
  private readonly poloReply: PoloOptions['poloReply'];
  private readonly providersHint: PoloOptions['providersHint'];
  /** Hinted OK replies by their plain bytes, then by count (a few distinct counts per service). */
  private readonly hintedOk = new WeakMap<Uint8Array, Map<number, Uint8Array>>();
  private readonly tap: PoloOptions['tap'];
  private socket: GroupSocket | undefined;
  /**
   * The IPv6 group served next to (or instead of) `multicastGroup`: the group itself when it is
   * IPv6, its twin (src/protocol/address.ts) for an IPv4 group served on every interface.
   */
  readonly ipv6Group: string | undefined;
  /** One IPv6 socket per interface (bound to it: it knows where a query came from). */
  private readonly v6Sockets = new Map<string, GroupSocket>();
  /** Interfaces (by name) the IPv6 group should be served on. */
  private v6Wanted = new Set<string>();
  private readonly v6Opening = new Set<string>();
  /** Failed joins of the IPv6 group by interface name, for the back-off (as joinAttempts). */
  private readonly v6Attempts = new Map<string, number>();
  private v6RetryTimer: NodeJS.Timeout | undefined;
  private state: State = 'new';
  private readonly pendingJoins = new Set<string>();
  /** Interfaces the group is joined on ('' = the system's choice). */
  private readonly joinedIfaces = new Set<string>();
  private readonly managed: boolean;
  private retryTimer: NodeJS.Timeout | undefined;
  /** Encoded replies by object: params and listings are immutable, so bytes are reused. */
  private readonly encoded = new WeakMap<object, Uint8Array>();

  constructor(options: PoloOptions = {}) {
    this.multicastGroup = options.multicastGroup ?? DEFAULT_GROUP;
    const re = options.registry?.verifyRegexp ?? options.verifyRegexp ?? DEFAULT_VERIFY_REGEXP;
    this.verifyRegexp = typeof re === 'string' ? new RegExp(re) : re;
    this.log = (options.logger ?? silentLogger).child({ group: this.multicastGroup });
    this.ownsRegistry = options.registry === undefined;
    this.registry =
      options.registry ??
      new ServiceRegistry({
        groups: [this.multicastGroup],
        lists: new Map([[this.multicastGroup, { root: options.offeredServices ?? [], users: options.userServices ?? new Map() }]]),
        verifyRegexp: this.verifyRegexp,
        ...(options.servicesDir === undefined ? {} : { servicesDir: options.servicesDir }),
        ...(options.userDirName === undefined ? {} : { userDirName: options.userDirName }),
        ...(options.loadServices === undefined ? {} : { loadServices: options.loadServices }),
        ...(options.users === undefined ? {} : { users: options.users }),
        logger: this.log,
      });
    this.offeredServices = this.registry.rootServices(this.multicastGroup);
    this.userServices = this.registry.userServices(this.multicastGroup);
    this.transport = options.transport ?? new UdpTransport();
    this.port = options.port ?? POLO_PORT;
    this.interfaces = options.interfaces ?? [];
    this.managed = options.managedInterfaces === true;
    const v6 = isIPv6Group(this.multicastGroup);
    // The twin is served on every interface, or on the listed ones that have IPv6 (docs/protocol.md §9).
    this.ipv6Group = v6 ? this.multicastGroup : this.managed || this.interfaces.length > 0 ? ipv6Twin(this.multicastGroup) : undefined;
    this.ttl = options.ttl ?? POLO_TTL;
    this.nodeParams = options.nodeParams ?? { hostname: os.hostname() };
    this.joinRetry = options.joinRetry ?? DEFAULT_JOIN_RETRY;
    this.ownsGuard = options.guard === undefined;
    this.guard = options.guard ?? new Guard(this.log);
    this.auth = options.auth;
    this.replyLimit = options.replyLimit ?? MAX_DATAGRAM;
    this.poloReply = options.poloReply;
    this.providersHint = options.providersHint;
    this.tap = options.tap;
    const services = this.registry.view(this.multicastGroup);
    if (!services) throw new ClosedError(`registry without group ${this.multicastGroup}`);
    this.context = { nodeParams: this.nodeParams, services };
  }

  /** True once every interface has joined the group. */
  get joined(): boolean {
    return this.state === 'started' && this.pendingJoins.size === 0;
  }

  /**
   * Operations before listening: loads the root services, binds the group socket, sets the TTL
   * and joins the group on every interface. A failed join does not fail the start: it goes to
   * `handler`, which retries with back-off while the other groups and interfaces keep serving.
   */
  async startProtocol(): Promise<void> {
    if (this.state === 'stopped') throw new ClosedError('Polo');
    if (this.state === 'started') return;
    this.state = 'started';
    // A shared registry is loaded once by its owner (polod), not once per group.
    if (this.ownsRegistry) await this.reloadServices();
    if (isIPv6Group(this.multicastGroup)) {
      // An IPv6 grid named with listed interfaces: served on the interfaces holding them (or on
      // every one when none is listed), as read now.
      if (!this.managed) this.v6Wanted = new Set(this.listedIPv6Interfaces());
      this.openIPv6();
      return;
    }
    this.socket = await this.transport.bindGroup(this.multicastGroup, this.port, (data, from) => {
      void this.datagramReceived(data, from);
    });
    this.socket.setTtl(this.ttl);
    if (!this.managed) for (const iface of this.interfaces.length > 0 ? this.interfaces : ['']) this.pendingJoins.add(iface);
    this.joinPending();
    // Listed interfaces: the twin on those of them that have IPv6, as read now.
    if (!this.managed && this.interfaces.length > 0) this.v6Wanted = new Set(this.listedIPv6Interfaces());
    this.openIPv6();
  }

  /** The interfaces (by name) with IPv6 that hold one of `interfaces` (all when none is listed). */
  private listedIPv6Interfaces(): string[] {
    const all = this.transport.interfaces?.() ?? [];
    return (this.interfaces.length === 0 ? all : listedInterfaces(all, this.interfaces)).filter((i) => i.ipv6.length > 0).map((i) => i.name);
  }

  /** Opens the IPv6 sockets still missing and closes the ones no longer wanted. */
  private openIPv6(): void {
    const group = this.ipv6Group;
    if (group === undefined || this.state !== 'started') return;
    for (const [name, socket] of this.v6Sockets) {
      if (this.v6Wanted.has(name)) continue;
      this.v6Sockets.delete(name);
      void socket.close();
      this.log.info({ iface: name, ipv6: group }, 'left group');
    }
    for (const name of this.v6Wanted) if (!this.v6Sockets.has(name)) void this.openIPv6On(group, name);
  }

  private async openIPv6On(group: string, name: string): Promise<void> {
    if (this.v6Opening.has(name)) return;
    this.v6Opening.add(name);
    let socket: GroupSocket | undefined;
    try {
      // The socket is its own reply path: a query is answered through the interface it came in on.
      const bound = await this.transport.bindGroup(group, this.port, (data, from) => void this.datagramReceived(data, from, socket, name), name);
      socket = bound;
      bound.setTtl(this.ttl);
      bound.join();
      if (this.state !== 'started' || !this.v6Wanted.has(name) || this.v6Sockets.has(name)) {
        await bound.close();
        return;
      }
      this.v6Sockets.set(name, bound);
      this.v6Attempts.delete(name);
      this.log.info({ iface: name, ipv6: group, port: this.port }, 'joined group');
    } catch (err) {
      await socket?.close();
      const cause = err instanceof Error && err.cause instanceof Error ? err.cause.message : String(err);
      const attempts = (this.v6Attempts.get(name) ?? 0) + 1;
      this.v6Attempts.set(name, attempts);
      this.stats.joinFailures++;
      // The back-off of a failed IPv4 join (handler()), without its limit: a followed interface
      // is retried while it is wanted (one timer for every interface).
      const delay = backoffDelay(attempts, this.joinRetry);
      this.log.warn({ iface: name, ipv6: group, attempts, retryInMs: delay, cause }, 'could not join the IPv6 group; will retry');
      if (this.v6RetryTimer === undefined && this.state === 'started') {
        this.v6RetryTimer = setTimeout(() => {
          this.v6RetryTimer = undefined;
          this.openIPv6();
        }, delay).unref();
      }
    } finally {
      this.v6Opening.delete(name);
    }
  }

  /**
   * Serves exactly these interfaces (by address) from now on: joins the new ones (a failed join
   * retries with back-off, as at start) and leaves the ones no longer listed. For the owner of a
   * Polo made with `managedInterfaces`.
   */
  setInterfaces(addresses: readonly string[], ipv6Interfaces: readonly string[] = []): void {
    this.v6Wanted = new Set(ipv6Interfaces);
    this.openIPv6();
    const wanted = new Set(addresses);
    for (const iface of this.joinedIfaces) {
      if (wanted.has(iface)) continue;
      this.socket?.leave(iface);
      this.joinedIfaces.delete(iface);
      this.log.info({ iface: iface || undefined }, 'left group');
    }
    for (const iface of this.pendingJoins) {
      if (wanted.has(iface)) continue;
      this.pendingJoins.delete(iface);
      this.joinAttempts.delete(iface);
    }
    for (const iface of wanted) if (!this.joinedIfaces.has(iface)) this.pendingJoins.add(iface);
    if (this.state === 'started' && this.socket) this.joinPending();
  }

  /** Stops answering and closes the socket. Idempotent. */
  async stop(): Promise<void> {
    if (this.state === 'stopped') return;
    this.state = 'stopped';
    if (this.ownsRegistry) this.registry.close();
    if (this.ownsGuard) this.guard.close();
    clearTimeout(this.retryTimer);
    clearTimeout(this.v6RetryTimer);
    await Promise.all([this.socket?.close(), ...[...this.v6Sockets.values()].map((s) => s.close())]);
    this.v6Sockets.clear();
  }

  /**
   * Handles one datagram: decode, decide, reply. Never throws: hostile or broken input is
   * counted and logged at debug, and the daemon goes on (docs/protocol.md §2). Marco and
   * Request-For of a loaded service are answered synchronously (the hot path allocates no
   * promise); only a user service that must be loaded first returns a promise. `via` and
   * `scope`: the IPv6 socket it came in on and that socket's interface.
   */
  datagramReceived(datagram: Uint8Array, address: RemoteInfo, via?: GroupSocket, scope?: string): void | Promise<void> {
    // Live-discovery messages are consumed first (src/membership/presence.ts); then a source
    // (or the node) out of reply budget is dropped before any decoding.
    if (this.tap?.(datagram, address, scope) === true) return;
    const admitted = admit(datagram, address, this.stats, this.guard, this.auth);
    if (!admitted) return;
    const { query, nonce, key } = admitted;
    try {
      const decision = answer(query, this.context);
      if (decision.kind !== 'load-user') return this.act(decision, address, nonce, key, via, scope);
      return this.answerAfterLoad(query, decision.user, address, nonce, key, via, scope).catch((err: unknown) =>
        this.guard.log.warn({ from: address.address }, 'query failed', err),
      );
    } catch (err) {
      this.guard.log.warn({ from: address.address }, 'query failed', err);
    }
  }

  /** Replies to Marco (and its alias Discover) with the node params. */
  polo(_command: string, address: RemoteInfo): void {
    this.act(answer(MARCO_QUERY, this.context), address);
  }

  /**
   * Replies to Request-For with the params of `service` if this group offers it, and stays
   * silent otherwise. A `user:service` id of a user never loaded goes to responseRequestForUser.
   */
  responseRequestFor(command: string, service: string, address: RemoteInfo): void | Promise<void> {
    const decision = answer({ command: 'Request-For', service }, this.context);
    if (decision.kind !== 'load-user') return this.act(decision, address);
    const userId = splitUserId(service, this.verifyRegexp);
    return this.responseRequestForUser(command, decision.user, userId?.service ?? service, address);
  }

  /**
   * Replies to a Request-For of a user service. If the user's services were never loaded, they
   * are loaded first (once, however often they are asked for), then answered.
   */
  async responseRequestForUser(command: string, user: string, service: string, address: RemoteInfo): Promise<void> {
    this.log.debug({ command, user, service, from: address.address }, 'request-for user service');
    await this.answerAfterLoad({ command: 'Request-For', service: `${user}:${service}` }, user, address);
  }

  /**
   * Replies to Services with the root services of this group, under `Services` and `Params`.
   * `param` is the optional group the query named; a Polo answers only for its own group.
   */
  responseServices(_command: string, param: string | undefined, address: RemoteInfo): void {
    this.act(answer(param === undefined ? SERVICES_QUERY : { command: 'Services', group: param }, this.context), address);
  }

  /**
   * Decides the reply to a query on this group, loading a user's services when needed. Used by
   * tests and tools that want the decision without a socket.
   */
  async decide(query: Query): Promise<Decision> {
    const first = answer(query, this.context);
    return first.kind === 'load-user' ? answerLoading(query, this.context, first.user, this.registry, this.guard) : first;
  }

  /**
   * Reloads the root services from their folder, then every loaded user's (the registry's
   * reload: with a registry shared by several groups, all of them). File services are rebuilt;
   * services published at run time are kept. The new lists are built first and swapped in one
   * synchronous step, so no valid service is ever unanswered during a reload. Reloads are
   * serialised: a reload asked for during another runs after it.
   */
  reloadServices(): Promise<void> {
    if (this.state === 'stopped') return Promise.reject(new ClosedError('Polo'));
    return this.registry.reload();
  }

  /** Reloads the services of every user whose services are loaded. */
  reloadUserServices(): Promise<void> {
    return this.registry.reloadUsers();
  }

  /**
   * Reloads the services of one user from `~user/.polo/`, keeping the ones they published at
   * run time. A user that does not exist is forgotten; a missing folder means no file services.
   * Returns false when the user does not exist.
   */
  reloadUserServicesIter(user: string): Promise<boolean> {
    return this.registry.reloadUser(user);
  }

  /**
   * The errback of a failed join: counts the attempt, logs it and schedules `retry` with
   * exponential back-off, unless the configured retries are spent.
   */
  handler(arg: unknown): void {
    const iface = arg instanceof JoinError ? (arg.iface ?? '') : '';
    const attempts = (this.joinAttempts.get(iface) ?? 0) + 1;
    this.joinAttempts.set(iface, attempts);
    this.stats.joinFailures++;
    const { retries } = this.joinRetry;
    const cause = arg instanceof Error && arg.cause instanceof Error ? arg.cause.message : String(arg);
    if (retries >= 0 && attempts > retries) {
      this.pendingJoins.delete(iface);
      this.log.error({ iface: iface || undefined, attempts, cause }, 'giving up joining the group');
      return;
    }
    const delay = backoffDelay(attempts, this.joinRetry);
    this.log.warn({ iface: iface || undefined, attempts, retryInMs: delay, cause }, 'could not join the group; will retry');
    if (this.retryTimer === undefined && this.state === 'started') {
      this.retryTimer = setTimeout(() => {
        this.retryTimer = undefined;
        this.retry();
      }, delay);
      this.retryTimer.unref();
    }
  }

  /** Tries again to join this Polo's own group (not a fallback) on the interfaces still missing. */
  retry(): void {
    if (this.state !== 'started') return;
    this.joinPending();
  }

  private joinPending(): void {
    const socket = this.socket;
    if (!socket) return;
    for (const iface of [...this.pendingJoins]) {
      try {
        socket.join(iface === '' ? undefined : iface);
        this.pendingJoins.delete(iface);
        this.joinedIfaces.add(iface);
        this.joinAttempts.delete(iface);
        this.log.info({ iface: iface || undefined, port: this.port }, 'joined group');
      } catch (err) {
        this.handler(err);
      }
    }
  }

  private async answerAfterLoad(
    query: Query,
    user: string,
    address: RemoteInfo,
    nonce?: string,
    key?: GridKey,
    via?: GroupSocket,
    scope?: string,
  ): Promise<void> {
    const decision = await answerLoading(query, this.context, user, this.registry, this.guard, () => this.stats.lookupsRefused++);
    this.act(decision, address, nonce, key, via, scope);
  }

  /**
   * Replies through `via` (the IPv6 socket the query came in on, bound to interface `scope`),
   * else the IPv4 group socket.
   */
  private act(decision: Decision, to: RemoteInfo, nonce?: string, key?: GridKey, via?: GroupSocket, scope?: string): void {
    if (decision.kind !== 'reply') {
      this.stats.silent++;
      this.guard.log.debug(
        () => ({ from: to.address, reason: decision.kind === 'silent' ? decision.reason : 'load-user', id: decision.kind === 'silent' ? decision.id : decision.user }),
        'no reply',
      );
      return;
    }
    // polod's Polo reply carries the Members hint (live discovery) of the link the query came
    // over, and its OK reply to Request-For the Providers hint; else the plain reply.
    const reply = decision.reply;
    const hinted = reply.command === 'Polo' ? this.poloReply?.(to, scope) : undefined;
    let encoded = hinted ?? this.encode(reply);
    if (encoded && reply.command === 'OK' && reply.id !== undefined && this.providersHint) {
      const providers = this.providersHint(reply.id, to, scope);
      if (providers !== undefined) encoded = this.withProviders(encoded, providers);
    }
    const socket = via ?? this.socket;
    if (!encoded || !socket || this.state !== 'started') return;
    const bytes = this.auth ? this.auth.sign(encoded, nonce, key) : encoded;
    if (bytes.byteLength > MAX_DATAGRAM) {
      this.stats.oversize++;
      return;
    }
    if (!this.guard.replies.spend(to.address, bytes.byteLength)) {
      this.stats.limited++;
      return;
    }
    countReply(this.stats, decision.reply.command, bytes.byteLength);
    const spread = this.guard.spreadMs;
    if (spread === 0) {
      socket.post(bytes, to.port, to.address, this.afterSend);
      return;
    }
    // A large grid answers one query over a short random spread, not in one burst (guard.ts).
    setTimeout(() => {
      if (this.state === 'started') socket.post(bytes, to.port, to.address, this.afterSend);
    }, Math.random() * spread).unref();
  }

  /** Counts the outcome of a reply (one function for every send: no closure per reply). */
  private readonly afterSend = (err: Error | null): void => {
    if (!err) {
      this.stats.answered++;
      return;
    }
    this.stats.sendErrors++;
    this.guard.log.debug(() => ({ err: err.message }), 'send failed');
  };

  /**
   * Policy `sealed` (src/auth/sealed.ts): the params as this node sends them, encrypted once per
   * params object (the encoding is cached with it).
   */
  private sealedReply(reply: Exclude<Reply, { command: 'Services' }>): Reply {
    // sealParams hands back the params object itself when it does not seal.
    const params = this.auth?.sealParams(reply.params) ?? reply.params;
    return params === reply.params ? reply : { ...reply, params };
  }

  private sealedList(services: readonly ServiceEntry[]): readonly ServiceEntry[] {
    return this.auth?.sealServices(services) ?? services;
  }

  /** `plain` (an encoded OK reply) with the Providers hint, cached; `plain` itself when the hint would not fit. */
  private withProviders(plain: Uint8Array, providers: number): Uint8Array {
    let byCount = this.hintedOk.get(plain);
    if (byCount === undefined) {
      byCount = new Map();
      this.hintedOk.set(plain, byCount);
    }
    let bytes = byCount.get(providers);
    if (bytes === undefined) {
      bytes = withProvidersHint(plain, providers);
      if (bytes.byteLength > this.replyLimit) bytes = plain;
      if (byCount.size >= 64) byCount.clear();
      byCount.set(providers, bytes);
    }
    return bytes;
  }

  /** Encodes a reply, reusing the bytes of an unchanged params object. */
  encode(reply: Reply): Uint8Array | undefined {
    // The key is the params object, or the listing array: both are replaced, never changed.
    const key = reply.command === 'Services' ? reply.services : reply.params;
    const cached = this.encoded.get(key);
    if (cached) return cached;
    try {
      const bytes = reply.command === 'Services' ? encodeServicesReply(this.sealedList(reply.services), this.replyLimit) : encodeReply(this.sealedReply(reply));
      this.encoded.set(key, bytes);
      return bytes;
    } catch (err) {
      this.stats.oversize++;
      this.log.warn({ err }, 'reply does not fit one datagram; not sent');
      return undefined;
    }
  }
}

/**
 * The decision for `query` once `user`'s services are loaded (answer() asked for them): silent
 * when the guard refuses the lookup (`onRefused` hears it) or the service is still not offered.
 */
export async function answerLoading(
  query: Query,
  context: AnswerContext,
  user: string,
  registry: ServiceRegistry,
  guard: Guard,
  onRefused?: () => void,
): Promise<Decision> {
  const notOffered: Decision = { kind: 'silent', reason: 'not-offered', id: user };
  if (!(await loadUserGuarded(registry, guard, user))) {
    onRefused?.();
    return notOffered;
  }
  const decision = answer(query, context);
  return decision.kind === 'load-user' ? notOffered : decision;
}

/**
 * Loads `user`'s services for a remote query, if the guard allows a lookup now; remembers a user
 * found missing so that the next queries naming them cause no lookup. False when refused.
 */
export async function loadUserGuarded(registry: ServiceRegistry, guard: Guard, user: string): Promise<boolean> {
  if (!guard.users.admit(user)) return false;
  await registry.loadUser(user);
  if (!registry.isUserLoaded(user)) guard.users.notFound(user);
  return true;
}
