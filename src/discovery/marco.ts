/**
 * The Marco client: in-process discovery of polods (the reference's `marcopolo.marco.Marco`,
 * without going through marcod). Each call validates its options, runs one query on its own
 * socket and closes it; see collector.ts for the collection rules and the bugs they fix.
 */
import { InvalidArgumentError } from '../errors.js';
import { encodeQuery } from '../protocol/codec.js';
import type { Query } from '../protocol/messages.js';
import type { Transport } from '../transport/transport.js';
import { UdpTransport } from '../transport/udp.js';
import { silentLogger, type Logger } from '../util/log.js';
import { DEFAULT_TIMING, type PresenceTiming } from '../membership/timing.js';
import { Watch } from '../membership/watch.js';
import { Collector, MAX_TRACKED_NODES, STREAM_QUEUE_LIMIT, type Classifier, type SendTarget } from './collector.js';
import { linkResolver, queryTargets } from './targets.js';
import { isIPv6Group } from '../protocol/address.js';
import { resolveNode, systemLookup, type HostLookup } from './nodeAddress.js';
import { checkService, resolveQuery, type QueryOptions, type ResolvedQuery } from './options.js';
import { nodeReplies, servicesReplies } from './replies.js';
import { authenticated } from './authReplies.js';
import type { NodeResult, QueryStream, ServicesResult } from './results.js';
import { matchesFilter } from '../protocol/json.js';
import { EtcdClient, type EtcdTls, type EtcdUser } from '../etcd/client.js';
import { RegistryReader, verifiedOf } from '../etcd/gridReader.js';
import type { EntryTrust } from '../etcd/signedEntry.js';
import { registryFollower } from '../etcd/watchFeed.js';

/** Construction options of a Marco: default query options plus the injected collaborators. */
export interface MarcoOptions extends QueryOptions {
  /** Where sockets come from. Default: real UDP (UdpTransport). */
  transport?: Transport;
  /** Structured logger (debug lines for skipped replies and query ends). Default: silent. */
  logger?: Logger;
  /** Host-name resolution for `services()`. Default: the system resolver, IPv4 only. */
  lookup?: HostLookup;
  /** Timings of watches (src/membership/timing.ts); tests pass FAST_TIMING. */
  timing?: PresenceTiming;
  /**
   * etcd client URLs of the grid registry (`http://192.0.2.5:2379`): answers and watches then
   * merge the nodes registered there (other subnets) with the LAN's, one entry per node
   * address. Entries of keyed grids are signed (docs/protocol.md §10.1) and judged as replies
   * are: with keys, `required` and `sealed` use only entries signed by one of them, `preferred`
   * also unsigned ones (with `verified: false`).
   */
  registry?: readonly string[];
  /** etcd user and password for the registry (etcd's authentication). */
  registryUser?: EtcdUser;
  /** PEM texts for https endpoints: the CA of etcd's certificate, a client certificate and its key. */
  registryTls?: EtcdTls;
  /**
   * Called when a query could not read the registry (it then answers from the LAN alone), not
   * when the query ended first. Default: a debug line on `logger`. The `marco` command says it.
   */
  onRegistryError?: (err: Error) => void;
}

/** Options of `watch()`: where, and optionally one service. */
export interface WatchOptions extends Pick<QueryOptions, 'group' | 'port' | 'interface' | 'ttl' | 'signal' | 'keys' | 'auth'> {
  /** Watch the providers of this service id instead of the nodes. */
  service?: string;
  /** False: keep no events, only the view (`watch.view`); marcod's warm view does this. */
  queueEvents?: boolean;
}

/**
 * A discovery client. Options given to the constructor are defaults for every call; options
 * given to a call override them key by key (both signals apply). Instances hold no socket
 * between calls, so one instance can run any number of concurrent queries.
 */
export class Marco {
  private readonly defaults: QueryOptions;
  private readonly transport: Transport;
  private readonly logger: Logger;
  private readonly lookup: HostLookup;
  private readonly timing: PresenceTiming | undefined;
  /** The grid registry, when configured. */
  private readonly registry: RegistryReader | undefined;
  private readonly onRegistryError: ((err: Error) => void) | undefined;

  /** Throws InvalidArgumentError when a default option is invalid. */
  constructor(options: MarcoOptions = {}) {
    const { transport, logger, lookup, timing, registry, registryUser, registryTls, onRegistryError, ...defaults } = options;
    this.timing = timing;
    resolveQuery(defaults); // fail at construction, not at the first query
    this.defaults = defaults;
    this.transport = transport ?? new UdpTransport();
    this.logger = logger ?? silentLogger;
    this.lookup = lookup ?? systemLookup;
    this.onRegistryError = onRegistryError;
    if (registry !== undefined && registry.length > 0) {
      this.registry = new RegistryReader(new EtcdClient({ endpoints: registry, ...(registryUser && { user: registryUser }), ...(registryTls && { tls: registryTls }) }), this.logger);
    }
  }

  /** Every node in the group (Marco query): resolves at the deadline, or at `maxNodes`. */
  async marco(options?: QueryOptions): Promise<NodeResult[]> {
    return this.groupQuery({ command: 'Marco' }, 'Polo', 'Marco', options, MAX_TRACKED_NODES).collect();
  }

  /** The nodes offering `service` in the group, each with that service's params. */
  async requestFor(service: string, options?: QueryOptions): Promise<NodeResult[]> {
    return this.requestForQuery(service, options, MAX_TRACKED_NODES).collect();
  }

  /** The first node found offering `service` (requestFor with maxNodes 1), or undefined. */
  async requestOne(service: string, options?: QueryOptions): Promise<NodeResult | undefined> {
    const nodes = await this.requestFor(service, { ...options, maxNodes: 1 });
    return nodes[0];
  }

  /**
   * The services `node` (an IPv4 address or a host name) offers, asked by unicast to its polod
   * port. The first valid Services reply wins; undefined when nobody answered by the deadline.
   * The list is read from `Services` or `Params` (bug B2). Only `group`, `port`, `timeout`,
   * `retries`, `interface`, `ttl` and `signal` apply. An explicit `group` is sent as the
   * `"Group"` extension key (which list to return); reference polods ignore it.
   */
  async services(node: string, options: QueryOptions = {}): Promise<ServicesResult | undefined> {
    const query = resolveQuery(this.defaults, options);
    const started = performance.now();
    const address = await resolveNode(node, this.lookup, query.timeout, query.signals);
    if (address === undefined) return undefined;
    // A group named here or in the defaults goes out as the "Group" key; none leaves polod's
    // choice. Either way the canonical spelling (an IPv6 twin is its IPv4 group), which is also
    // how the registry keys its grids.
    const group = (options.group ?? this.defaults.group) === undefined ? undefined : query.group;
    const remaining = Math.max(0, Math.round(query.timeout - (performance.now() - started)));
    const collector = this.collector(
      { ...query, timeout: remaining, maxNodes: 1, exclude: new Set() },
      group === undefined ? { command: 'Services' } : { command: 'Services', group },
      { address, port: query.port },
      servicesReplies(),
      1,
      `Services ${address}`,
    );
    const reader = this.registry;
    if (reader !== undefined) {
      // `ended` aborts at the query's deadline, on its signals and once it has its answer.
      collector.include((ended) =>
        reader.node(query.group, query.port, address, trustOf(query), ended).then(
          (node) =>
            node === undefined ? [] : [{ address, value: { address, services: node.record.services.map((s) => ({ id: s.id, params: s.params })), ...verifiedOf(node) } }],
          (err: unknown) => this.registryUnread(err, ended),
        ),
      );
    }
    const [result] = await collector.collect();
    return result;
  }

  /**
   * A live Marco query: yields each node as its reply arrives. Throws InvalidArgumentError at
   * once for invalid options; the query starts now and its deadline counts from this call.
   */
  discover(options?: QueryOptions): QueryStream {
    return this.groupQuery({ command: 'Marco' }, 'Polo', 'Marco', options, STREAM_QUEUE_LIMIT);
  }

  /**
   * Watches the grid: `up` events for the current nodes (or providers of `service`) within about
   * a second, then `up`, `down` (with a reason) and `update` as they happen, from the nodes'
   * announcements, on every link of the host unless `interface` names one (src/membership/watch.ts).
   * Ends when `signal` aborts or the loop breaks. Throws InvalidArgumentError
   * at once for invalid options; an error of the socket ends the iteration with that error.
   */
  watch(options: WatchOptions = {}): Watch {
    const query = resolveQuery(this.defaults, options);
    const service = options.service === undefined ? undefined : checkService(options.service);
    if (query.iface !== undefined && !this.transport.localAddresses().includes(query.iface)) {
      throw new InvalidArgumentError(`invalid interface ${JSON.stringify(query.iface)}: not an address of this host`);
    }
    const signal = query.signals.length === 0 ? undefined : AbortSignal.any([...query.signals]);
    const reader = this.registry;
    return new Watch({
      ...(reader !== undefined && { registry: registryFollower(reader, query.group, query.port, trustOf(query), this.onRegistryError) }),
      transport: this.transport,
      group: query.group,
      port: query.port,
      iface: query.iface,
      ttl: query.ttl,
      service,
      signal,
      ...(options.queueEvents === undefined ? {} : { queueEvents: options.queueEvents }),
      ...(this.timing === undefined ? {} : { timing: this.timing }),
      // A keyed grid: announcements checked and queries signed as the queries are (docs/protocol.md §8.5).
      ...(query.auth !== 'off' && { auth: { keys: query.keys, policy: query.auth } }),
    });
  }

  /** A live Request-For query for `service` (see discover). */
  requestForStream(service: string, options?: QueryOptions): QueryStream {
    return this.requestForQuery(service, options, STREAM_QUEUE_LIMIT);
  }

  private requestForQuery(service: string, options: QueryOptions | undefined, queueLimit: number): Collector<NodeResult> {
    const id = checkService(service);
    return this.groupQuery({ command: 'Request-For', service: id }, 'OK', `Request-For ${id}`, options, queueLimit);
  }

  private groupQuery(
    message: Query,
    kind: 'Polo' | 'OK',
    what: string,
    options: QueryOptions | undefined,
    queueLimit: number,
  ): Collector<NodeResult> {
    const query = resolveQuery(this.defaults, options);
    const destination = { address: query.group, port: query.port };
    // Without maxNodes, a query ends once every member the grid reports has answered (Marco),
    // or every provider of the service (Request-For): docs/protocol.md §8.4.
    const grace = query.maxNodes === 0 ? DEFAULT_TIMING.graceMs : undefined;
    // No interface named: out of every multicast interface of the host (src/discovery/targets.ts).
    // An interface named for an IPv4 grid needs no list.
    const interfaces = query.iface === undefined || isIPv6Group(query.group) ? this.transport.interfaces?.() : undefined;
    const targets = queryTargets(query.group, query.iface, interfaces);
    // Out of several links, each link's Members hints are judged apart (collector.ts).
    const linkOf = targets !== undefined && targets.length > 1 && interfaces !== undefined ? linkResolver(interfaces) : undefined;
    const collector = this.collector(query, message, destination, nodeReplies(kind, query.params), queueLimit, what, grace, targets, linkOf);
    const reader = this.registry;
    if (reader !== undefined) {
      collector.include((ended) => this.fromRegistry(reader, message, query, ended));
    }
    return collector;
  }

  /** The registry's answer to a group query: its nodes (Marco) or the service's providers (Request-For). */
  private async fromRegistry(
    reader: RegistryReader,
    message: Query,
    query: ResolvedQuery,
    signal: AbortSignal,
  ): Promise<Array<{ address: string; value: NodeResult }>> {
    const trust = trustOf(query);
    try {
      const found =
        message.command === 'Request-For'
          ? await reader.providers(query.group, query.port, message.service, trust, signal)
          : (await reader.nodes(query.group, query.port, trust, signal)).map((n) => ({ address: n.address, params: n.record.params, verified: n.verified }));
      return found
        .filter((n) => query.params === undefined || matchesFilter(n.params, query.params))
        .map((n) => ({ address: n.address, value: { address: n.address, params: n.params, ...verifiedOf(n) } }));
    } catch (err) {
      return this.registryUnread(err, signal);
    }
  }

  /** A registry read that failed: reported unless the query ended first; no answers from it. */
  private registryUnread(err: unknown, signal: AbortSignal): [] {
    if (signal.aborted) return [];
    const error = err instanceof Error ? err : new Error(String(err));
    if (this.onRegistryError !== undefined) this.onRegistryError(error);
    else this.logger.debug({ err: error.message }, 'registry not read: LAN answers only');
    return [];
  }

  private collector<T extends object>(
    query: ResolvedQuery,
    message: Query,
    destination: { address: string; port: number },
    classify: Classifier<T>,
    queueLimit: number,
    what: string,
    completeGraceMs?: number,
    targets?: readonly SendTarget[],
    linkOf?: (address: string) => string,
  ): Collector<T> {
    // Checked here rather than left to the socket: a bad multicast interface fails late and
    // obscurely (EADDRNOTAVAIL), and the caller deserves the option's name.
    if (query.iface !== undefined && !this.transport.localAddresses().includes(query.iface)) {
      throw new InvalidArgumentError(`invalid interface ${JSON.stringify(query.iface)}: not an address of this host`);
    }
    const payload = encodeQuery(message);
    const auth = query.auth === 'off' ? undefined : authenticated(payload, query.keys, query.auth, classify);
    return new Collector({
      transport: this.transport,
      socket: {
        ttl: query.ttl,
        receiveBufferBytes: receiveBufferFor(query.maxNodes),
        ...(query.iface !== undefined && { iface: query.iface }),
      },
      destination,
      payload: auth?.payload ?? payload,
      timeout: query.timeout,
      retries: query.retries,
      maxResults: query.maxNodes,
      exclude: query.exclude,
      signals: query.signals,
      queueLimit,
      classify: auth?.classify ?? classify,
      logger: this.logger,
      what,
      completeGraceMs,
      targets,
      linkOf,
    });
  }
}

/**
 * How registry entries are judged for `query`: its keys and policy. Entries of keyed grids are
 * signed (docs/protocol.md §10.1); `required` and `sealed` use only those, `preferred` also
 * unsigned ones, as unverified.
 */
function trustOf(query: ResolvedQuery): EntryTrust {
  return { keys: query.keys, policy: query.auth };
}

let shared: Marco | undefined;

/** The process-wide client of the top-level functions: real UDP, silent logger. */
function sharedMarco(): Marco {
  shared ??= new Marco();
  return shared;
}

/** Every node in the group, over real UDP (see Marco.marco). */
export function marco(options?: QueryOptions): Promise<NodeResult[]> {
  return sharedMarco().marco(options);
}

/** The nodes offering `service`, over real UDP (see Marco.requestFor). */
export function requestFor(service: string, options?: QueryOptions): Promise<NodeResult[]> {
  return sharedMarco().requestFor(service, options);
}

/** The first node offering `service`, over real UDP (see Marco.requestOne). */
export function requestOne(service: string, options?: QueryOptions): Promise<NodeResult | undefined> {
  return sharedMarco().requestOne(service, options);
}

/** The services a node offers, over real UDP (see Marco.services). */
export function services(node: string, options?: QueryOptions): Promise<ServicesResult | undefined> {
  return sharedMarco().services(node, options);
}

/** Receive queue per node expected: a small reply costs the kernel about 1-2 KiB of queue. */
const RECEIVE_BYTES_PER_NODE = 8 * 1024;
const MIN_RECEIVE_BYTES = 1024 * 1024;
const MAX_RECEIVE_BYTES = 16 * 1024 * 1024;

/**
 * The receive queue a query socket asks for: sized for the grid (`maxNodes`, or 4 MiB when
 * unbounded), so a large grid's replies, which arrive in one burst, are queued rather than
 * dropped while the process reads them. The kernel caps it at net.core.rmem_max
 * (docs/operations.md, "Large grids").
 */
export function receiveBufferFor(maxNodes: number): number {
  if (maxNodes <= 0) return 4 * 1024 * 1024;
  return Math.min(MAX_RECEIVE_BYTES, Math.max(MIN_RECEIVE_BYTES, maxNodes * RECEIVE_BYTES_PER_NODE));
}
