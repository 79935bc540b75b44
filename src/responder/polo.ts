/**
 * The Polo responder of one multicast group: the reference's `Polo` class (seed document), with
 * every documented method under its camelCase name and the reference's bugs fixed. It wires
 * socket → decode → answer() → encode → send; what to answer is decided by answer.ts.
 */
import os from 'node:os';
import path from 'node:path';
import { ClosedError, JoinError, MarcoPoloError } from '../errors.js';
import { encodeReply, encodeServicesReply } from '../protocol/codec.js';
import type { JsonObject } from '../protocol/json.js';
import { DEFAULT_GROUP, POLO_PORT, POLO_TTL } from '../protocol/limits.js';
import type { Query, Reply } from '../protocol/messages.js';
import type { GroupSocket, RemoteInfo, Transport } from '../transport/transport.js';
import { UdpTransport } from '../transport/udp.js';
import { silentLogger, type Logger } from '../util/log.js';
import { ingest } from './ingest.js';
import { answer, splitUserId, type AnswerContext, type Decision } from './answer.js';
import type { ServiceLoader, UserLookup } from './ports.js';
import { servedIn, type Service } from './service.js';
import { newPoloStats, type PoloStats } from './stats.js';

const MARCO_QUERY: Query = { command: 'Marco' };

/** The reference's user-service pattern `user:service`. */
export const DEFAULT_VERIFY_REGEXP = /^([\d\w]+):([\d\w]+)$/;

/** Back-off of multicast join retries. */
export interface JoinRetryPolicy {
  /** First delay, in ms. */
  readonly initialMs: number;
  /** Longest delay, in ms (the delay doubles up to this). */
  readonly maxMs: number;
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
   * The encoded Polo reply to send instead of the plain one: polod's reply carries the Members
   * hint of live discovery (src/membership/presence.ts).
   */
  readonly poloReply?: () => Uint8Array | undefined;
  /**
   * Sees every datagram first; returning true consumes it (not counted, not answered). polod's
   * presence reads the live-discovery messages here (src/membership/presence.ts): one function
   * call and a byte test on the hot path, instead of a second socket receiving every query.
   */
  readonly tap?: (datagram: Uint8Array, from: RemoteInfo) => boolean;
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

  private readonly transport: Transport;
  private readonly port: number;
  private readonly interfaces: readonly string[];
  private readonly ttl: number;
  private readonly nodeParams: JsonObject;
  private readonly log: Logger;
  private readonly context: AnswerContext;
  private readonly joinRetry: JoinRetryPolicy;
  private socket: GroupSocket | undefined;
  private state: State = 'new';
  private readonly pendingJoins = new Set<string>();
  private retryTimer: NodeJS.Timeout | undefined;
  private reloading: Promise<void> = Promise.resolve();
  private readonly userLoads = new Map<string, Promise<void>>();
  /** Encoded replies by object: services and node params are immutable, so bytes are reused. */
  private readonly encoded = new WeakMap<object, Uint8Array>();

  constructor(private readonly options: PoloOptions = {}) {
    this.offeredServices = options.offeredServices ?? [];
    this.userServices = options.userServices ?? new Map();
    this.multicastGroup = options.multicastGroup ?? DEFAULT_GROUP;
    const re = options.verifyRegexp ?? DEFAULT_VERIFY_REGEXP;
    this.verifyRegexp = typeof re === 'string' ? new RegExp(re) : re;
    this.transport = options.transport ?? new UdpTransport();
    this.port = options.port ?? POLO_PORT;
    this.interfaces = options.interfaces ?? [];
    this.ttl = options.ttl ?? POLO_TTL;
    this.nodeParams = options.nodeParams ?? { hostname: os.hostname() };
    this.joinRetry = options.joinRetry ?? DEFAULT_JOIN_RETRY;
    this.log = (options.logger ?? silentLogger).child({ group: this.multicastGroup });
    // The lists are shared by reference and never replaced, so one context serves every query.
    this.context = {
      nodeParams: this.nodeParams,
      offeredServices: this.offeredServices,
      userServices: this.userServices,
      verifyRegexp: this.verifyRegexp,
    };
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
    await this.reloadServices();
    this.socket = await this.transport.bindGroup(this.multicastGroup, this.port, (data, from) => {
      void this.datagramReceived(data, from);
    });
    this.socket.setTtl(this.ttl);
    for (const iface of this.interfaces.length > 0 ? this.interfaces : ['']) this.pendingJoins.add(iface);
    this.joinPending();
  }

  /** Stops answering and closes the socket. Idempotent. */
  async stop(): Promise<void> {
    if (this.state === 'stopped') return;
    this.state = 'stopped';
    clearTimeout(this.retryTimer);
    await this.socket?.close();
  }

  /**
   * Handles one datagram: decode, decide, reply. Never throws: hostile or broken input is
   * counted and logged at debug, and the daemon goes on (PROTOCOL.md §6). Marco and root
   * Request-For are answered synchronously (the hot path allocates no promise); only a user
   * service that must be loaded first returns a promise.
   */
  datagramReceived(datagram: Uint8Array, address: RemoteInfo): void | Promise<void> {
    if (this.options.tap?.(datagram, address) === true) return;
    const query = ingest(datagram, address, this.stats, this.log);
    if (!query) return;
    try {
      switch (query.command) {
        case 'Marco':
          return this.polo(query.wireCommand ?? query.command, address);
        case 'Request-For': {
          const pending = this.responseRequestFor(query.wireCommand ?? query.command, query.service, address);
          return pending?.catch((err: unknown) => this.log.warn({ err, from: address.address }, 'query failed'));
        }
        case 'Services':
          return this.responseServices(query.wireCommand ?? query.command, query.group, address);
      }
    } catch (err) {
      this.log.warn({ err, from: address.address }, 'query failed');
    }
  }

  /** Replies to Marco (and its alias Discover) with the node params. */
  polo(_command: string, address: RemoteInfo): void {
    const hinted = this.options.poloReply?.();
    if (hinted !== undefined) {
      if (this.socket && this.state === 'started') this.socket.post(hinted, address.port, address.address, this.afterSend);
      return;
    }
    this.act(answer(MARCO_QUERY, this.context), address);
  }

  /**
   * Replies to Request-For with the params of `service` if this group offers it, and stays
   * silent otherwise. A `user:service` id goes to responseRequestForUser (a promise).
   */
  responseRequestFor(command: string, service: string, address: RemoteInfo): void | Promise<void> {
    const userId = splitUserId(service, this.verifyRegexp);
    if (userId) return this.responseRequestForUser(command, userId.user, userId.service, address);
    this.act(answer({ command: 'Request-For', service }, this.context), address);
  }

  /**
   * Replies to a Request-For of a user service. If the user's services were never loaded, they
   * are loaded first (reloadUserServicesIter) — once, however often they are asked for.
   */
  async responseRequestForUser(command: string, user: string, service: string, address: RemoteInfo): Promise<void> {
    this.log.debug({ command, user, service, from: address.address }, 'request-for user service');
    await this.loadUserOnce(user);
    this.act(answer({ command: 'Request-For', service: `${user}:${service}` }, this.context), address);
  }

  /**
   * Replies to Services with the root services of this group, under `Services` and `Params`.
   * `param` is the optional group the query named; a Polo answers only for its own group.
   */
  responseServices(_command: string, param: string | undefined, address: RemoteInfo): void {
    if (param !== undefined && param !== this.multicastGroup) {
      this.stats.silent++;
      return;
    }
    this.act(answer({ command: 'Services' }, this.context), address);
  }

  /**
   * Decides the reply to a query on this group, loading a user's services when needed. Used by
   * the group socket and by polod's unicast listener.
   */
  async decide(query: Query): Promise<Decision> {
    const first = answer(query, this.context);
    if (first.kind !== 'load-user') return first;
    await this.loadUserOnce(first.user);
    const second = answer(query, this.context);
    return second.kind === 'load-user' ? { kind: 'silent', reason: `unknown user ${first.user}` } : second;
  }

  /**
   * Reloads the root services from their folder, then every loaded user's. File services are
   * rebuilt; services published at run time are kept. The new list is built first and swapped
   * in one synchronous step, so no valid service is ever unanswered during a reload. Reloads
   * are serialised: a reload asked for during another runs after it.
   */
  reloadServices(): Promise<void> {
    const run = this.reloading.then(async () => {
      if (this.options.servicesDir !== undefined) await this.reloadRootServices(this.options.servicesDir);
      await this.reloadUserServices();
    });
    this.reloading = run.catch(() => {});
    return run;
  }

  /** Reloads the services of every user whose services are loaded. */
  async reloadUserServices(): Promise<void> {
    await Promise.all([...this.userServices.keys()].map((user) => this.reloadUserServicesIter(user)));
  }

  /**
   * Reloads the services of one user from `~user/.polo/`, keeping the ones they published at
   * run time. A user that does not exist is forgotten; a missing folder means no file services.
   * Returns false when the user does not exist.
   */
  async reloadUserServicesIter(user: string): Promise<boolean> {
    const account = await this.options.users?.lookupName(user);
    if (!account) {
      this.userServices.delete(user);
      return false;
    }
    const dir = path.join(account.home, this.options.userDirName ?? '.polo');
    const files = await this.load(dir, true, account.uid);
    const list = this.userServices.get(user);
    const next = merge(list ?? [], files.filter((s) => servedIn(s, this.multicastGroup)), (w) => this.log.warn(w));
    if (list) list.splice(0, list.length, ...next);
    else this.userServices.set(user, next);
    return true;
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
    const { initialMs, maxMs, retries } = this.joinRetry;
    const cause = arg instanceof Error && arg.cause instanceof Error ? arg.cause.message : String(arg);
    if (retries >= 0 && attempts > retries) {
      this.pendingJoins.delete(iface);
      this.log.error({ iface: iface || undefined, attempts, cause }, 'giving up joining the group');
      return;
    }
    const delay = Math.min(maxMs, initialMs * 2 ** (attempts - 1));
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
        this.joinAttempts.delete(iface);
        this.log.info({ iface: iface || undefined, port: this.port }, 'joined group');
      } catch (err) {
        this.handler(err);
      }
    }
  }

  private loadUserOnce(user: string): Promise<void> {
    if (this.userServices.has(user)) return Promise.resolve();
    let load = this.userLoads.get(user);
    if (!load) {
      load = this.reloadUserServicesIter(user)
        .then(() => {})
        .finally(() => this.userLoads.delete(user));
      this.userLoads.set(user, load);
    }
    return load;
  }

  private async reloadRootServices(dir: string): Promise<void> {
    const files = await this.load(dir, false);
    const next = merge(this.offeredServices, files.filter((s) => servedIn(s, this.multicastGroup)), (w) =>
      this.log.warn(w),
    );
    this.offeredServices.splice(0, this.offeredServices.length, ...next);
    this.log.info({ services: this.offeredServices.length }, 'services loaded');
  }

  private async load(dir: string, userService: boolean, owner?: number): Promise<Service[]> {
    const loader = this.options.loadServices;
    if (!loader) throw new MarcoPoloError('MP_ERR_INVALID_ARG', 'Polo: a loadServices function is required');
    // A user without a ~/.polo folder simply has no file services: no warning for that.
    const options = { userService, verifyRegexp: this.verifyRegexp, skip: (name: string) => name === 'token', missingOk: userService };
    const { services, warnings } = await loader(dir, owner === undefined ? options : { ...options, owner });
    for (const warning of warnings) this.log.warn(warning);
    return services;
  }

  private act(decision: Decision, to: RemoteInfo): void {
    if (decision.kind !== 'reply') {
      this.stats.silent++;
      this.log.debug({ from: to.address, reason: decision.kind === 'silent' ? decision.reason : 'user' }, 'no reply');
      return;
    }
    const bytes = this.encode(decision.reply);
    const socket = this.socket;
    if (!bytes || !socket || this.state !== 'started') return;
    socket.post(bytes, to.port, to.address, this.afterSend);
  }

  /** Counts the outcome of a reply (one function for every send: no closure per reply). */
  private readonly afterSend = (err: Error | null): void => {
    if (!err) {
      this.stats.answered++;
      return;
    }
    this.stats.sendErrors++;
    this.log.debug({ err }, 'send failed');
  };

  /** Encodes a reply, reusing the bytes of an unchanged params object. */
  encode(reply: Reply): Uint8Array | undefined {
    if (reply.command === 'Services') return encodeServicesReply(reply.services);
    const cached = this.encoded.get(reply.params);
    if (cached) return cached;
    try {
      const bytes = encodeReply(reply);
      this.encoded.set(reply.params, bytes);
      return bytes;
    } catch (err) {
      this.stats.oversize++;
      this.log.warn({ err }, 'reply does not fit one datagram; not sent');
      return undefined;
    }
  }
}

/**
 * The new service list: the published services kept as they are, then the file services whose
 * id is not taken (a duplicate id in one group is skipped with a warning, PROTOCOL.md §3).
 */
function merge(current: readonly Service[], files: readonly Service[], warn: (msg: string) => void): Service[] {
  const next = current.filter((s) => s.origin === 'published');
  const ids = new Set(next.map((s) => s.id));
  for (const s of files) {
    if (ids.has(s.id)) {
      warn(`${s.file ?? 'service file'}: service id '${s.id}' is already offered in this group; skipped`);
      continue;
    }
    ids.add(s.id);
    next.push(s);
  }
  return next;
}
