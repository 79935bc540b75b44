/**
 * One client connection of the publish API, after TLS (if any): bytes → frames → handler →
 * one reply line per request, in order. Bounded: a request over the size limit is answered
 * "Request too large" and the connection closed; half a request left hanging is answered
 * "Request timed out" and closed; reading pauses while too many requests wait, so a client
 * that floods without reading its replies cannot grow polod's memory. A connection with nothing
 * in progress is idle: it is closed after `idleTimeoutMs`, and the server may close the one idle
 * longest to make room for a new connection (server.ts). A reply that cannot be encoded or written
 * closes its own connection, and nothing else.
 */
import type { Socket } from 'node:net';
import type { Logger } from '../util/log.js';
import { PublishErrors } from './errors.js';
import { JsonObjectSplitter, type Frame } from '../protocol/jsonStream.js';
import type { PeerInfo, PublishReply } from './handler.js';

/** Limits of one connection (see ServerLimits). */
export interface ConnectionLimits {
  /** Largest request (see JsonObjectSplitter). */
  readonly maxRequestBytes: number;
  /** Deadline of a request from its first byte. */
  readonly requestTimeoutMs: number;
  /** Requests read ahead before reading pauses. */
  readonly maxQueuedRequests: number;
  /** How long a connection may stay idle (no request in progress) before it is closed. */
  readonly idleTimeoutMs: number;
}

/** Counters shared by every connection of a server. */
export interface ConnectionStats {
  /** Requests answered (errors included). */
  requests: number;
  /** Connections closed for a request over the size limit. */
  tooLarge: number;
  /** Connections closed for a half-sent request or an unfinished TLS handshake. */
  timedOut: number;
  /** Connections closed after staying idle for idleTimeoutMs. */
  idleClosed: number;
  /** Connections closed because a reply could not be encoded or written. */
  replyFailed: number;
}

/** How long a closing connection may take to flush its last reply before it is destroyed. */
const CLOSE_GRACE_MS = 2000;

/** Serves one connected stream (a plain Unix socket or a TLS socket). */
export class Connection {
  /** Resolves once the stream is closed (never rejects). */
  readonly closed: Promise<void>;
  private readonly splitter: JsonObjectSplitter;
  private readonly queue: Frame[] = [];
  private busy = false;
  private paused = false;
  /** No more requests are read (peer ended, too large, timed out, server stopping). */
  private finishing = false;
  private timer: NodeJS.Timeout | undefined;
  private idleTimer: NodeJS.Timeout | undefined;
  /** When the last request arrived or the last reply went out (performance.now()). */
  private lastActive = performance.now();

  constructor(
    private readonly socket: Socket,
    private readonly handle: (frame: Uint8Array, peer: PeerInfo) => Promise<PublishReply>,
    private readonly limits: ConnectionLimits,
    private readonly stats: ConnectionStats,
    private readonly log: Logger,
    /** Who is connected, as far as the kernel told (server.ts). */
    readonly peer: PeerInfo = {},
  ) {
    this.splitter = new JsonObjectSplitter(limits.maxRequestBytes);
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
    socket.once('close', () => {
      this.clearTimer();
      clearTimeout(this.idleTimer);
    });
    // ECONNRESET, EPIPE…: the peer went away; 'close' follows and cleans up.
    socket.on('error', (err) => this.log.debug({ err: err.message }, 'publish API connection error'));
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('end', () => {
      this.finishing = true;
      this.clearTimer();
      this.drain();
    });
    this.armIdle();
  }

  /**
   * Nothing in progress: no request being read, queued or answered, not closing, and no session
   * services held (a session's connection is its service's life: never closed as idle).
   */
  get idle(): boolean {
    if (this.peer.session?.holding) return false;
    return !this.busy && this.queue.length === 0 && !this.splitter.partial && !this.finishing && !this.socket.destroyed;
  }

  /** Since when the connection has had nothing to do (meaningful while `idle`). */
  get idleSince(): number {
    return this.lastActive;
  }

  /** Closes an idle connection to make room (server.ts); false if it is not idle. */
  evict(): boolean {
    if (!this.idle) return false;
    this.finishing = true;
    this.close();
    return true;
  }

  /** (Re)starts the idle deadline; it only fires if the connection is still idle then. */
  private armIdle(): void {
    clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    if (!this.idle || !(this.limits.idleTimeoutMs > 0) || !Number.isFinite(this.limits.idleTimeoutMs)) return;
    this.idleTimer = setTimeout(() => {
      this.idleTimer = undefined;
      if (!this.idle) return;
      this.stats.idleClosed++;
      this.log.debug({ uid: this.peer.uid }, 'publish API connection idle too long; closed');
      this.finishing = true;
      this.close();
    }, this.limits.idleTimeoutMs);
    this.idleTimer.unref();
  }

  /** Stops reading; the request in progress (if any) is answered, then the stream is closed. */
  shutdown(): void {
    this.finishing = true;
    this.queue.length = 0;
    this.clearTimer();
    if (!this.busy) this.close();
  }

  private onData(chunk: Buffer): void {
    if (this.finishing) return;
    this.lastActive = performance.now();
    clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    const wasPartial = this.splitter.partial;
    const frames = this.splitter.push(chunk);
    for (const frame of frames) {
      this.queue.push(frame);
      if (frame.kind === 'too-large') {
        // Nothing after it can be framed reliably; the replies before it still go out.
        this.finishing = true;
        this.socket.pause();
        break;
      }
    }
    if (this.queue.length >= this.limits.maxQueuedRequests && !this.paused && !this.finishing) {
      this.paused = true;
      this.socket.pause();
    }
    this.updateTimer(!wasPartial || frames.length > 0);
    this.drain();
    this.armIdle();
  }

  /**
   * The half-sent-request deadline runs from the first byte of a request, however slowly the
   * rest trickles in (a byte every few seconds must not keep a slot forever). It does not run
   * while reading is paused by us, nor between requests: reference bindings keep one
   * connection open for the life of their Polo object.
   */
  private updateTimer(newRequest: boolean): void {
    if (!this.splitter.partial || this.paused || this.finishing) {
      this.clearTimer();
      return;
    }
    if (this.timer !== undefined && !newRequest) return;
    this.clearTimer();
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.stats.timedOut++;
      this.log.debug('publish API request timed out');
      this.finishing = true;
      this.queue.length = 0;
      if (!this.busy) this.replyAndClose(PublishErrors.timedOut);
      clearTimeout(this.idleTimer);
    }, this.limits.requestTimeoutMs);
  }

  private clearTimer(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  /**
   * Answers the queued requests in order. Never rejects: anything that goes wrong while encoding
   * or writing one reply (a reply too large for a string, a socket torn down mid-write) is
   * logged and closes this connection only.
   */
  private drain(): void {
    if (this.busy) return;
    this.busy = true;
    this.answerQueued()
      .catch((err: unknown) => {
        this.stats.replyFailed++;
        this.log.error({ err, uid: this.peer.uid }, 'publish API reply could not be written; connection closed');
        this.queue.length = 0;
        this.finishing = true;
        this.socket.destroy();
      })
      .finally(() => {
        this.busy = false;
        this.lastActive = performance.now();
        if (this.queue.length > 0 && !this.socket.destroyed) this.drain();
        else if (this.finishing && !this.socket.writableEnded) this.close();
        else this.armIdle();
      });
  }

  private async answerQueued(): Promise<void> {
    for (let frame = this.queue.shift(); frame !== undefined; frame = this.queue.shift()) {
      if (this.socket.destroyed) return;
      if (frame.kind === 'too-large') {
        this.stats.tooLarge++;
        this.log.debug({ size: frame.size }, 'publish API request too large');
        this.replyAndClose(PublishErrors.tooLarge);
        return;
      }
      this.stats.requests++;
      let reply: PublishReply;
      try {
        reply = await this.handle(frame.bytes, this.peer);
      } catch (err) {
        // The handler never throws by contract; if it does, this request still gets its reply.
        this.log.error({ err }, 'publish API handler failed');
        reply = { Error: PublishErrors.internal };
      }
      if (this.socket.destroyed) return;
      // One write per reply: reference clients read a reply with a single recv().
      if (!this.socket.write(`${JSON.stringify(reply)}\n`)) await this.writable();
      this.lastActive = performance.now();
      if (this.paused && this.queue.length < this.limits.maxQueuedRequests / 2) {
        this.paused = false;
        this.socket.resume();
        this.updateTimer(true);
      }
    }
    if (this.finishing) this.close();
  }

  /**
   * Resolves when the socket can take more, or is gone. A peer that does not take a reply within
   * requestTimeoutMs (asks for a large List page and never reads it) is cut off: its connection
   * is not idle, so without this deadline it would hold its slot for ever.
   */
  private writable(): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.stats.timedOut++;
        this.log.debug({ uid: this.peer.uid }, 'publish API peer did not read its reply; connection closed');
        this.socket.destroy();
      }, this.limits.requestTimeoutMs);
      const done = (): void => {
        clearTimeout(timer);
        this.socket.off('drain', done);
        this.socket.off('close', done);
        resolve();
      };
      this.socket.on('drain', done);
      this.socket.on('close', done);
    });
  }

  private replyAndClose(reason: string): void {
    if (this.socket.destroyed) return;
    this.socket.write(`${JSON.stringify({ Error: reason })}\n`);
    this.close();
  }

  /** Ends the stream after what is written; destroys it if the peer does not take it soon. */
  private close(): void {
    if (this.socket.destroyed) return;
    this.socket.end();
    const force = setTimeout(() => this.socket.destroy(), CLOSE_GRACE_MS);
    force.unref();
    this.socket.once('close', () => clearTimeout(force));
  }
}
