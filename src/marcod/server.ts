/**
 * marcod's local API server (docs/protocol.md §4): one request datagram in, exactly one reply
 * datagram out, errors included (bug B19: the reference went silent on any error, and the
 * binding saw only a timeout). It wires socket → parseRequest → answer → encode → send; what to
 * answer lives in answer.ts, the wire forms in request.ts and reply.ts.
 *
 * Bounded: at most `maxInFlight` requests run at once (each holds a query socket per interface
 * until its deadline); the next gets `{"Error": "busy"}` at once. Shared fairly: one client (one
 * uid, see clients.ts) runs at most `maxInFlightPerClient` of them, so a program parking long
 * requests cannot make everyone else busy. Replies waiting for the socket are bounded too; past
 * that they are dropped and counted.
 */
import { setMaxListeners } from 'node:events';
import { Marco } from '../discovery/marco.js';
import type { HostLookup } from '../discovery/nodeAddress.js';
import type { MarcoConfig } from '../config/marcoConfig.js';
import { ClosedError } from '../errors.js';
import type { DatagramSocket, RemoteInfo, Transport } from '../transport/transport.js';
import { UdpTransport } from '../transport/udp.js';
import { silentLogger, type Logger } from '../util/log.js';
import { answer, type AnswerContext } from './answer.js';
import { ClientIdentifier } from './clients.js';
import { BUSY, MAX_IN_FLIGHT, MAX_IN_FLIGHT_PER_CLIENT, MAX_PENDING_REPLIES } from './limits.js';
import { encodeMarcodReply, type MarcodReply } from './reply.js';
import { parseRequest, type MarcodRequest } from './request.js';
import { bindApiSocket, type ApiBinder } from './socket.js';
import { WarmViews } from './warmView.js';
import { WatchSocketServer } from './watchSocket.js';

/** The part of marcod's configuration the server uses (see src/config/marcoConfig.ts). */
export type MarcodSettings = Pick<
  MarcoConfig,
  'bindAddress' | 'marcoPort' | 'group' | 'poloPort' | 'timeoutMs' | 'frameSize' | 'interfaces'
> &
  Partial<Pick<MarcoConfig, 'registry' | 'registryUser' | 'registryTls' | 'keys' | 'auth'>>;

/** Collaborators, all optional: the defaults are the real ones. */
export interface MarcodDeps {
  readonly logger?: Logger;
  /** Sockets of the discovery queries. Default: real UDP. */
  readonly transport?: Transport;
  /** Opens the API socket. Default: a real, exclusively bound UDP socket. */
  readonly bindApi?: ApiBinder;
  /** Host-name resolution for Services. Default: the system resolver. */
  readonly lookup?: HostLookup;
  /** Requests served at once (default MAX_IN_FLIGHT). */
  readonly maxInFlight?: number;
  /** Requests of one client served at once (default MAX_IN_FLIGHT_PER_CLIENT, at most maxInFlight). */
  readonly maxInFlightPerClient?: number;
  /** Who sent a request (default: the kernel's owner of the sending socket). */
  readonly clients?: ClientIdentifier;
  /** Path of the watch stream's Unix socket (src/marcod/watchSocket.ts); none when undefined. */
  readonly watchSocket?: string;
  /** Keep warm views of the grids and answer from them (src/marcod/warmView.ts); the marcod command does. */
  readonly warmViews?: boolean;
  /**
   * Called once per request served (not refused busy) with its command (`invalid` when it did
   * not parse), the reply's kind and the seconds it took: marcod's latency histogram
   * (src/metrics/marcod.ts). None by default, so marcod without --metrics pays nothing.
   */
  readonly onServed?: (command: string, outcome: MarcodReply['kind'], seconds: number) => void;
}

/** Counters since start; every request is counted once in `requests`. */
export interface MarcodStats {
  /** Request datagrams received. */
  requests: number;
  /** Error replies sent or attempted (busy included). */
  errors: number;
  /** Requests refused with "busy" (both limits). */
  busy: number;
  /** Of those, refused because their client had maxInFlightPerClient in progress. */
  busyClient: number;
  /** Replies that had to leave nodes or services out to fit frame_size. */
  truncated: number;
  /** Replies not sent: the socket's queue was full, or the send failed. */
  unsent: number;
}

/** The marcod local API server. `start()` then `stop()`; both idempotent. */
export class MarcodServer {
  /** Live counters. */
  readonly stats: MarcodStats = { requests: 0, errors: 0, busy: 0, busyClient: 0, truncated: 0, unsent: 0 };
  private readonly logger: Logger;
  private readonly transport: Transport;
  private readonly bindApi: ApiBinder;
  private readonly maxInFlight: number;
  private readonly maxPerClient: number;
  private readonly clients: ClientIdentifier;
  /** Requests in progress per client key. */
  private readonly perClient = new Map<string, number>();
  private readonly context: AnswerContext;
  /** Live views of the grids: every link, or the one --interface names (none with several). */
  readonly warm: WarmViews | undefined;
  private readonly abort = new AbortController();
  private readonly watchServer: WatchSocketServer | undefined;
  private readonly tasks = new Set<Promise<void>>();
  private readonly onServed: MarcodDeps['onServed'];
  private socket: DatagramSocket | undefined;
  private pendingReplies = 0;
  private state: 'new' | 'running' | 'stopped' = 'new';
  private starting: Promise<void> | undefined;
  private stopping: Promise<void> | undefined;

  constructor(
    readonly settings: MarcodSettings,
    deps: MarcodDeps = {},
  ) {
    this.logger = deps.logger ?? silentLogger;
    this.transport = deps.transport ?? new UdpTransport();
    this.bindApi = deps.bindApi ?? bindApiSocket;
    this.maxInFlight = deps.maxInFlight ?? MAX_IN_FLIGHT;
    this.maxPerClient = Math.min(deps.maxInFlightPerClient ?? MAX_IN_FLIGHT_PER_CLIENT, this.maxInFlight);
    this.clients = deps.clients ?? new ClientIdentifier();
    this.onServed = deps.onServed;
    // Every query listens to the stop signal: at most maxInFlight × interfaces listeners, a
    // bound of its own, so Node's leak warning (at 10) would only be noise.
    setMaxListeners(0, this.abort.signal);
    // Keys and policy: the settings' (marco.cfg, or the flags that replace it).
    const { keys, auth } = settings;
    const marco = new Marco({
      transport: this.transport,
      logger: this.logger,
      port: settings.poloPort,
      ...(settings.registry !== undefined && { registry: settings.registry }),
      ...(settings.registryUser !== undefined && { registryUser: settings.registryUser }),
      ...(settings.registryTls !== undefined && { registryTls: settings.registryTls }),
      ...(deps.lookup !== undefined && { lookup: deps.lookup }),
      ...(keys !== undefined && keys.length > 0 && { keys }),
      ...(auth !== undefined && { auth }),
    });
    // In a keyed grid the views check announcements as queries check replies (the watches take
    // the Marco client's keys and policy: src/membership/watchAuth.ts), so marcod keeps them too.
    const warm =
      deps.warmViews === true && settings.interfaces.length <= 1
        ? new WarmViews(marco, {
            defaultGroup: settings.group,
            iface: settings.interfaces[0],
            logger: this.logger,
          })
        : undefined;
    this.warm = warm;
    this.watchServer =
      deps.watchSocket === undefined
        ? undefined
        : new WatchSocketServer({ path: deps.watchSocket, marco, defaultGroup: settings.group, iface: settings.interfaces[0], logger: this.logger });
    this.context = {
      marco,
      // marco.cfg allows a fractional timeout ("1000.0" in the reference's file); queries take whole ms.
      defaults: { group: settings.group, timeoutMs: Math.ceil(settings.timeoutMs), interfaces: settings.interfaces },
      signal: this.abort.signal,
      ...(warm === undefined ? {} : { warm: (request) => warm.answer(request) }),
    };
  }

  /** The bound API port (useful when started on port 0). Throws ClosedError until started. */
  get port(): number {
    if (this.socket === undefined) throw new ClosedError('marcod');
    return this.socket.port;
  }

  /** Requests in progress. */
  get inFlight(): number {
    return this.tasks.size;
  }

  /** Binds the API socket; rejects (IoError) when it cannot, and with ClosedError after stop. */
  start(): Promise<void> {
    if (this.state === 'stopped' || this.stopping !== undefined) return Promise.reject(new ClosedError('marcod'));
    this.starting ??= this.listen();
    return this.starting;
  }

  /**
   * Stops taking requests, ends the queries in progress (their requests get
   * `{"Error": "marcod is stopping"}` rather than silence), then closes the socket. Idempotent.
   */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      await this.starting?.catch(() => undefined);
      this.state = 'stopped';
      this.abort.abort();
      this.warm?.close();
      await this.watchServer?.stop();
      await Promise.all([...this.tasks]);
      if (this.socket === undefined) return;
      await this.socket.close();
      this.logger.info({ stats: this.stats }, 'marcod stopped');
    })();
    return this.stopping;
  }

  private async listen(): Promise<void> {
    const { bindAddress, marcoPort, interfaces } = this.settings;
    const local = this.transport.localAddresses();
    for (const iface of interfaces) {
      // Not fatal: the address may come up later; until then requests get an error naming it.
      if (!local.includes(iface)) this.logger.warn({ iface }, 'interface is not an address of this host (yet)');
    }
    const socket = await this.bindApi(bindAddress, marcoPort, (data, from) => this.ingest(data, from));
    if (this.stopping !== undefined) {
      await socket.close();
      throw new ClosedError('marcod');
    }
    try {
      await this.watchServer?.start();
    } catch (err) {
      await socket.close();
      throw err;
    }
    this.socket = socket;
    this.state = 'running';
    this.warm?.start();
    this.logger.info(
      {
        bind: bindAddress,
        port: socket.port,
        group: this.settings.group,
        timeout: this.settings.timeoutMs,
        interfaces,
        frameSize: this.settings.frameSize,
      },
      'marcod started',
    );
  }

  /** The receive path: one datagram, one task, one reply. Never throws. */
  private ingest(data: Uint8Array, from: RemoteInfo): void {
    if (this.state !== 'running') return;
    this.stats.requests++;
    if (this.tasks.size >= this.maxInFlight) {
      this.stats.busy++;
      void this.reply({ kind: 'error', error: BUSY }, from, 'any');
      return;
    }
    const task = this.admit(data, from);
    this.tasks.add(task);
    void task.finally(() => this.tasks.delete(task));
  }

  /** Serves the request unless its client has its share in progress already. Never rejects. */
  private async admit(data: Uint8Array, from: RemoteInfo): Promise<void> {
    const client = await this.clients.keyOf(from);
    const running = this.perClient.get(client) ?? 0;
    if (running >= this.maxPerClient) {
      this.stats.busy++;
      this.stats.busyClient++;
      this.logger.debug({ from, client }, 'client has its share of requests in progress: busy');
      await this.reply({ kind: 'error', error: BUSY }, from, 'any');
      return;
    }
    this.perClient.set(client, running + 1);
    try {
      await this.serve(data, from);
    } finally {
      const left = (this.perClient.get(client) ?? 1) - 1;
      if (left > 0) this.perClient.set(client, left);
      else this.perClient.delete(client);
    }
  }

  private async serve(data: Uint8Array, from: RemoteInfo): Promise<void> {
    const started = performance.now();
    let what = 'invalid';
    let command = 'invalid';
    let reply: MarcodReply;
    try {
      const parsed = parseRequest(data);
      if (parsed.ok) {
        what = describe(parsed.request);
        command = parsed.request.command;
        this.logger.debug({ from, request: what }, 'request received');
        reply = await answer(parsed.request, this.context);
      } else {
        reply = { kind: 'error', error: parsed.error };
      }
    } catch (err) {
      this.logger.error({ err, from, request: what }, 'request failed');
      reply = { kind: 'error', error: 'internal error' };
    }
    await this.reply(reply, from, what);
    this.onServed?.(command, reply.kind, (performance.now() - started) / 1000);
    this.logger.debug(
      {
        from,
        request: what,
        ms: Math.round(performance.now() - started),
        ...(reply.kind === 'nodes' && { nodes: reply.nodes.length, source: reply.fromView === true ? 'view' : 'query' }),
        ...(reply.kind === 'error' && { error: reply.error }),
      },
      'request answered',
    );
  }

  /** Encodes and sends one reply; never rejects. */
  private async reply(reply: MarcodReply, to: RemoteInfo, what: string): Promise<void> {
    if (reply.kind === 'error') this.stats.errors++;
    const socket = this.socket;
    if (socket === undefined || this.pendingReplies >= MAX_PENDING_REPLIES) {
      this.stats.unsent++;
      return;
    }
    const { bytes, dropped } = encodeMarcodReply(reply, this.settings.frameSize);
    if (dropped > 0) {
      this.stats.truncated++;
      this.logger.warn(
        { request: what, to, dropped, frameSize: this.settings.frameSize },
        'reply cut to fit frame_size: entries dropped from the end',
      );
    }
    this.pendingReplies++;
    try {
      await socket.send(bytes, to.port, to.address);
    } catch (err) {
      this.stats.unsent++;
      this.logger.debug({ err, to }, 'could not send a reply');
    } finally {
      this.pendingReplies--;
    }
  }
}

/** A request for log lines: `Marco 224.0.0.112`, `Request-For web`, `Services 192.0.2.1`. */
function describe(request: MarcodRequest): string {
  switch (request.command) {
    case 'Marco':
      return `Marco ${request.group ?? 'default group'}`;
    case 'Request-For':
      return `Request-For ${JSON.stringify(request.service).slice(0, 66)}`;
    case 'Services':
      return `Services ${JSON.stringify(request.node).slice(0, 66)}`;
  }
}
