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
import { groupTargets, interfaceTargets, linkResolver } from './targets.js';
import { isIPv6Group } from '../protocol/address.js';
import { resolveNode, systemLookup, type HostLookup } from './nodeAddress.js';
import { checkService, resolveQuery, type QueryOptions, type ResolvedQuery } from './options.js';
import { nodeReplies, servicesReplies } from './replies.js';
import { authenticated } from './authReplies.js';
import type { NodeResult, QueryStream, ServicesResult } from './results.js';

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
}

/** Options of `watch()`: where, and optionally one service. */
export interface WatchOptions extends Pick<QueryOptions, 'group' | 'port' | 'interface' | 'ttl' | 'signal'> {
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

  /** Throws InvalidArgumentError when a default option is invalid. */
  constructor(options: MarcoOptions = {}) {
    const { transport, logger, lookup, timing, ...defaults } = options;
    this.timing = timing;
    resolveQuery(defaults); // fail at construction, not at the first query
    this.defaults = defaults;
    this.transport = transport ?? new UdpTransport();
    this.logger = logger ?? silentLogger;
    this.lookup = lookup ?? systemLookup;
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
    const group = options.group ?? this.defaults.group;
    const remaining = Math.max(0, Math.round(query.timeout - (performance.now() - started)));
    const collector = this.collector(
      { ...query, timeout: remaining, maxNodes: 1, exclude: new Set() },
      group === undefined ? { command: 'Services' } : { command: 'Services', group },
      { address, port: query.port },
      servicesReplies(),
      1,
      `Services ${address}`,
    );
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
    return new Watch({
      transport: this.transport,
      group: query.group,
      port: query.port,
      iface: query.iface,
      ttl: query.ttl,
      service,
      signal,
      ...(options.queueEvents === undefined ? {} : { queueEvents: options.queueEvents }),
      ...(this.timing === undefined ? {} : { timing: this.timing }),
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
    // Without maxNodes, a Marco query ends once every member the grid reports has answered.
    const grace = message.command === 'Marco' && query.maxNodes === 0 ? DEFAULT_TIMING.graceMs : undefined;
    // No interface named: out of every multicast interface of the host (src/discovery/targets.ts).
    const interfaces = this.transport.interfaces?.();
    const targets =
      query.iface === undefined
        ? groupTargets(query.group, interfaces)
        : isIPv6Group(query.group)
          ? interfaceTargets(query.group, query.iface, interfaces)
          : undefined;
    // Out of several links, each link's Members hints are judged apart (collector.ts).
    const linkOf = targets !== undefined && targets.length > 1 && interfaces !== undefined ? linkResolver(interfaces) : undefined;
    return this.collector(query, message, destination, nodeReplies(kind, query.params), queueLimit, what, grace, targets, linkOf);
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
