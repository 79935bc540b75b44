/**
 * The publish API's listeners: TLS on 127.0.0.1:1390, as the reference bindings expect (they
 * do not check the certificate), and a Unix socket for local clients that need no TLS. Both
 * speak the same protocol to the same handler. Authentication is by token on both, so the
 * socket is open to everyone (0666), as the TLS port is.
 *
 * Bounded by design: a connection limit shared by both endpoints, a limit per user, a deadline
 * for TLS handshakes and half-sent requests, an idle timeout, a request size limit, and
 * per-connection back-pressure (connection.ts). When a limit is reached, the connection idle the
 * longest (of everyone for the global limit, of that user for theirs) is closed to make room;
 * only when none is idle is the new connection refused. So one user holding idle connections
 * cannot lock the others out. The user is the one the kernel names as the owner of the peer's
 * TCP socket (src/system/socketOwner.ts); Unix-socket peers cannot be identified (Node has no
 * SO_PEERCRED) and are bounded by the global limit and the idle rules only.
 */
import { chmod, lstat, unlink } from 'node:fs/promises';
import net, { type AddressInfo, type Server, type Socket } from 'node:net';
import tls, { type SecureContext } from 'node:tls';
import { ClosedError, IoError } from '../errors.js';
import { silentLogger, type Logger } from '../util/log.js';
import { prepareSocketPath } from '../util/unixSocket.js';
import { Connection, type ConnectionStats } from './connection.js';
import { DEFAULT_MAX_REQUEST_BYTES } from '../protocol/jsonStream.js';
import type { PeerInfo, PublishReply } from './handler.js';
import { Session } from './session.js';
import { tcpPeerUid } from '../system/socketOwner.js';

/** The limits that keep polod's memory and sockets bounded. */
export interface ServerLimits {
  /** Largest request; a larger one gets "Request too large" and the connection closes. */
  readonly maxRequestBytes: number;
  /**
   * How long a TLS handshake, or a request whose first byte has arrived, may take to complete;
   * then "Request timed out" and the connection closes. Idle connections between requests are
   * kept up to idleTimeoutMs: reference bindings open one connection per Polo object and reuse it.
   */
  readonly requestTimeoutMs: number;
  /**
   * Most connections open at once, both endpoints together. A new one closes the connection
   * idle the longest, or is closed at once if none is idle.
   */
  readonly maxConnections: number;
  /** Most connections of one identified user (uid) at once; same rule within the user's own. */
  readonly maxConnectionsPerUser: number;
  /**
   * How long a connection may stay idle between requests before polod closes it (reference
   * bindings keep one connection per Polo object: long enough not to bother them, bounded).
   */
  readonly idleTimeoutMs: number;
  /** Requests read ahead per connection before reading pauses. */
  readonly maxQueuedRequests: number;
}

/** The defaults: 64 KiB, 10 s, 256 connections, 32 per user, 5 min idle, 16 queued requests. */
export const DEFAULT_SERVER_LIMITS: ServerLimits = {
  maxRequestBytes: DEFAULT_MAX_REQUEST_BYTES,
  requestTimeoutMs: 10_000,
  maxConnections: 256,
  maxConnectionsPerUser: 32,
  idleTimeoutMs: 300_000,
  maxQueuedRequests: 16,
};

/** Options of {@link PublishServer}; at least one endpoint. */
export interface PublishServerOptions {
  /** Answers one frame from a peer (PublishHandler.handle). */
  readonly handle: (frame: Uint8Array, peer: PeerInfo) => Promise<PublishReply>;
  /** The TLS endpoint: address, port (0 = any free one, for tests), PEM key and certificate. */
  readonly tls?: { readonly host: string; readonly port: number; readonly key: string; readonly cert: string };
  /** The Unix socket's path. A stale socket file there is removed at start. */
  readonly socketPath?: string;
  /** Mode of the socket file (default 0666: anyone may connect; requests carry tokens). */
  readonly socketMode?: number;
  /** Overrides of DEFAULT_SERVER_LIMITS. */
  readonly limits?: Partial<ServerLimits>;
  readonly logger?: Logger;
}

/** Counters of a {@link PublishServer}. */
export interface PublishServerStats extends ConnectionStats {
  /** Connections served. */
  accepted: number;
  /** Connections closed at once because a limit was reached and no connection was idle. */
  refused: number;
  /** Idle connections closed to make room for a new one. */
  evicted: number;
}

/** A connection counted against the limits, from accept to close. */
interface Slot {
  /** The peer's uid once the kernel told it (TCP only); undefined = unknown. */
  uid: number | undefined;
  /** Settles once `uid` is known (or known to be unknown). */
  identified: Promise<void>;
  /** Set once the connection is served (after the TLS handshake). */
  connection: Connection | undefined;
  /** Gives the slot back (idempotent). */
  release(): void;
}

type State = 'new' | 'starting' | 'started' | 'stopped';

/** The publish API's TLS and Unix-socket listeners. */
export class PublishServer {
  /** The limits in force (defaults completed with the options'). */
  readonly limits: ServerLimits;
  /** Counters since start, for logs and tests. */
  readonly stats: PublishServerStats = {
    accepted: 0,
    refused: 0,
    evicted: 0,
    requests: 0,
    tooLarge: 0,
    timedOut: 0,
    idleClosed: 0,
    replyFailed: 0,
  };
  private readonly log: Logger;
  private readonly servers: Server[] = [];
  private readonly connections = new Set<Connection>();
  /** Raw sockets counted against the limits (TLS ones from before their handshake). */
  private readonly slots = new Set<Slot>();
  private secureContext: SecureContext | undefined;
  private socketIno: number | undefined;
  private state: State = 'new';

  constructor(private readonly options: PublishServerOptions) {
    this.limits = { ...DEFAULT_SERVER_LIMITS, ...options.limits };
    this.log = options.logger ?? silentLogger;
    if (!options.tls && options.socketPath === undefined) {
      throw new IoError('the publish API needs a TLS address or a socket path');
    }
  }

  /** The TLS endpoint's address once started (its port, when 0 was asked for). */
  get tlsAddress(): AddressInfo | undefined {
    const server = this.options.tls ? this.servers[0] : undefined;
    const address = server?.address();
    return typeof address === 'object' && address !== null ? address : undefined;
  }

  /** Connections open now. */
  get connectionCount(): number {
    return this.slots.size;
  }

  /**
   * Listens on both endpoints. If one cannot (port in use, socket path taken by a live polod),
   * the other is closed again and this rejects with an IoError naming the endpoint.
   */
  async start(): Promise<void> {
    if (this.state === 'stopped') throw new ClosedError('publish server');
    if (this.state !== 'new') return;
    this.state = 'starting';
    try {
      if (this.options.tls) {
        const { host, port, key, cert } = this.options.tls;
        this.secureContext = tls.createSecureContext({ key, cert });
        const server = net.createServer((raw) => this.accept(raw, true));
        this.servers.push(server);
        await listen(server, { host, port, exclusive: true }, `${host}:${port}`);
      }
      if (this.options.socketPath !== undefined) {
        const file = this.options.socketPath;
        await prepareSocketPath(file, 'publish API', 'is another polod running?');
        const server = net.createServer({ allowHalfOpen: true }, (raw) => this.accept(raw, false));
        this.servers.push(server);
        await listen(server, { path: file }, file);
        // Authentication is by token, not by who may connect (see the module comment).
        await chmod(file, this.options.socketMode ?? 0o666);
        this.socketIno = (await lstat(file)).ino;
      }
      this.state = 'started';
      this.log.info(
        { tls: this.tlsAddress ? `${this.tlsAddress.address}:${this.tlsAddress.port}` : undefined, socket: this.options.socketPath },
        'publish API listening',
      );
    } catch (err) {
      await this.stop();
      throw err;
    }
  }

  /**
   * Stops listening, lets each request in progress finish and get its reply, closes every
   * connection and removes the socket file. Idempotent.
   */
  async stop(): Promise<void> {
    if (this.state === 'stopped') return;
    this.state = 'stopped';
    const closing = this.servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve())));
    for (const c of this.connections) c.shutdown();
    await Promise.all([...this.connections].map((c) => c.closed));
    await Promise.all(closing);
    await this.removeSocketFile();
  }

  /**
   * A new stream on either endpoint: counted (making room by closing the connection idle the
   * longest when the global limit is reached), identified, checked against its user's limit,
   * then served.
   */
  private accept(raw: Socket, secure: boolean): void {
    if (this.state !== 'started' || (this.slots.size >= this.limits.maxConnections && !this.evictIdle(() => true))) {
      this.stats.refused++;
      if (this.state === 'started') this.log.warn({ open: this.slots.size }, 'publish API connection limit reached; connection closed');
      raw.destroy();
      return;
    }
    this.stats.accepted++;
    const slot: Slot = {
      uid: undefined,
      identified: Promise.resolve(),
      connection: undefined,
      release: () => this.slots.delete(slot),
    };
    this.slots.add(slot);
    raw.once('close', slot.release);
    raw.on('error', (err) => this.log.debug({ err: err.message }, 'publish API socket error'));
    if (secure) slot.identified = this.identify(slot, raw).catch((err: unknown) => this.log.debug({ err }, 'publish API: peer not identified'));
    if (!secure) {
      this.serve(raw, slot);
      return;
    }
    const socket = new tls.TLSSocket(raw, { isServer: true, secureContext: this.secureContext as SecureContext });
    // A handshake is part of the first request: the same deadline applies.
    const deadline = setTimeout(() => {
      this.stats.timedOut++;
      socket.destroy();
      raw.destroy();
    }, this.limits.requestTimeoutMs);
    socket.once('close', () => {
      clearTimeout(deadline);
      slot.release(); // a wrapped socket's own 'close' is not guaranteed to fire
    });
    socket.on('error', (err) => {
      // Handshake failures (a plain-TCP client, an old protocol) end here.
      this.log.debug({ err: err.message }, 'publish API TLS error');
      raw.destroy();
    });
    socket.once('secure', () => {
      clearTimeout(deadline);
      if (this.state !== 'started') socket.destroy();
      else this.serve(socket, slot);
    });
  }

  /**
   * Asks the kernel who owns the peer's end of a TCP connection, then applies that user's limit:
   * over it, their own connection idle the longest is closed, or else this one.
   */
  private async identify(slot: Slot, raw: Socket): Promise<void> {
    const { localAddress, localPort, remoteAddress, remotePort } = raw;
    if (localAddress === undefined || localPort === undefined || remoteAddress === undefined || remotePort === undefined) return;
    slot.uid = await tcpPeerUid({ address: localAddress, port: localPort }, { address: remoteAddress, port: remotePort });
    const uid = slot.uid;
    if (uid === undefined || !this.slots.has(slot)) return;
    let mine = 0;
    for (const s of this.slots) if (s.uid === uid) mine++;
    if (mine <= this.limits.maxConnectionsPerUser) return;
    if (this.evictIdle((s) => s.uid === uid && s !== slot)) return;
    this.stats.refused++;
    this.log.warn({ uid, open: mine - 1 }, 'publish API connection limit of this user reached; connection closed');
    slot.release();
    raw.destroy();
  }

  /** Closes the connection idle the longest among the slots `which` selects; false if none is idle. */
  private evictIdle(which: (slot: Slot) => boolean): boolean {
    let oldest: Slot | undefined;
    for (const s of this.slots) {
      const c = s.connection;
      if (c === undefined || !c.idle || !which(s)) continue;
      if (oldest === undefined || c.idleSince < (oldest.connection as Connection).idleSince) oldest = s;
    }
    if (oldest === undefined || !(oldest.connection as Connection).evict()) return false;
    // Its slot is free now, not when the peer has acknowledged the close.
    oldest.release();
    this.stats.evicted++;
    this.log.info({ uid: oldest.uid }, 'publish API: closed the connection idle the longest to make room');
    return true;
  }

  private serve(socket: Socket, slot: Slot): void {
    const peer: PeerInfo = {};
    // The first request waits for the kernel's answer (a few file reads, usually done by then).
    const handle = async (frame: Uint8Array, _: PeerInfo): Promise<PublishReply> => {
      await slot.identified;
      if (slot.uid !== undefined) peer.uid = slot.uid;
      return this.options.handle(frame, peer);
    };
    const connection = new Connection(socket, handle, this.limits, this.stats, this.log, peer);
    peer.session = new Session(connection.closed);
    slot.connection = connection;
    this.connections.add(connection);
    void connection.closed.then(() => this.connections.delete(connection));
  }

  /** Removes the socket file, if it is still the one this server created. */
  private async removeSocketFile(): Promise<void> {
    const file = this.options.socketPath;
    if (file === undefined || this.socketIno === undefined) return;
    try {
      if ((await lstat(file)).ino === this.socketIno) await unlink(file);
    } catch {
      // Already gone.
    }
  }
}

/** listen() as a promise, with an error naming the endpoint. */
function listen(server: Server, options: net.ListenOptions, where: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => {
      const why = err.code === 'EADDRINUSE' ? 'address already in use (is another polod running?)' : err.message;
      reject(new IoError(`publish API: cannot listen on ${where}: ${why}`, { cause: err }));
    };
    server.once('error', onError);
    server.listen(options, () => {
      server.off('error', onError);
      // Errors after listening (EMFILE on accept…) are logged by no one else; never fatal.
      server.on('error', () => undefined);
      resolve();
    });
  });
}
