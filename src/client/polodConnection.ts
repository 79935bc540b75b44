/**
 * One stream to polod's publish API carrying one request at a time: write a JSON object, read
 * the one reply it gets (docs/protocol.md §5). Never two requests in flight: a reference polod parses
 * each TCP read as one JSON document (B27), so pipelined requests would merge there.
 *
 * Replies are cut with the server's own splitter (framing.ts), so both our polod's
 * newline-terminated replies and the reference's bare `json.dumps` ones are read, on any
 * chunking. A reply that comes when none is awaited, or one that is not JSON, means the stream
 * can no longer be trusted to pair replies with requests: the connection is destroyed.
 */
import type { Socket } from 'node:net';
import { IoError, MarcoPoloError } from '../errors.js';
import { decodeObject } from '../protocol/codec.js';
import type { JsonObject } from '../protocol/json.js';
import { JsonObjectSplitter } from '../protocol/jsonStream.js';
import { connectPolod, describeEndpoint, type PolodEndpoint } from './polodEndpoint.js';

/**
 * Largest reply read. A `List` reply grows with the services published (each one's params up
 * to a datagram, 4 KiB), so this is far above the server's 64 KiB request limit.
 */
export const MAX_REPLY_BYTES = 16 * 1024 * 1024;

/** polod's reply was not `{"OK": …}` / `{"Error": "…"}` of the expected shape. */
export class UnexpectedReplyError extends MarcoPoloError {
  override name = 'UnexpectedReplyError';
  constructor(message: string, options?: ErrorOptions) {
    super('MP_ERR_PROTOCOL', message, options);
  }
}

/**
 * The stream closed or failed after the request was written and before its reply came. polod
 * may or may not have carried the request out.
 */
export class ConnectionLostError extends IoError {
  override name = 'ConnectionLostError';
  /**
   * True when the write itself was refused (EPIPE: polod had already closed its side), so the
   * request never reached polod and may be resent whatever it was.
   */
  readonly notSent: boolean;
  constructor(message: string, options?: ErrorOptions & { notSent?: boolean }) {
    super(message, options);
    this.notSent = options?.notSent ?? false;
  }
}

interface Pending {
  readonly resolve: (reply: JsonObject) => void;
  readonly reject: (err: Error) => void;
  readonly command: string;
}

/** A connected stream to polod; see the module comment. */
export class PolodConnection {
  /** Requests answered on this connection so far. */
  answered = 0;
  readonly #socket: Socket;
  readonly #where: string;
  readonly #splitter = new JsonObjectSplitter(MAX_REPLY_BYTES);
  #pending: Pending | undefined;
  /** Set once the stream is unusable: ended, failed, or out of step. */
  #broken: Error | undefined;
  readonly #closed: Promise<void>;

  private constructor(socket: Socket, endpoint: PolodEndpoint) {
    this.#socket = socket;
    this.#where = describeEndpoint(endpoint);
    this.#closed = new Promise((resolve) => socket.once('close', () => resolve()));
    // An idle connection must not keep a finished program alive; a request refs it again.
    socket.unref();
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('error', (err: NodeJS.ErrnoException) => {
      const notSent = err.code === 'EPIPE';
      this.#fail(new ConnectionLostError(`connection to polod at ${this.#where} failed: ${err.message}`, { cause: err, notSent }));
    });
    socket.on('end', () => this.#fail(new ConnectionLostError(`polod closed the connection at ${this.#where}`)));
    socket.on('close', () => this.#fail(new ConnectionLostError(`connection to polod at ${this.#where} closed`)));
  }

  /**
   * Connects to `endpoint`.
   * @throws as connectPolod: PolodUnavailableError, IoError, or `signal.reason`.
   */
  static async open(endpoint: PolodEndpoint, signal: AbortSignal): Promise<PolodConnection> {
    return new PolodConnection(await connectPolod(endpoint, signal), endpoint);
  }

  /** Resolves once the stream is closed, by either side. */
  get closed(): Promise<void> {
    return this.#closed;
  }

  /** True while the stream can take a request (not ended, failed or out of step). */
  get usable(): boolean {
    return this.#broken === undefined && !this.#socket.destroyed && this.#socket.writable;
  }

  /**
   * Sends one request (compact JSON and a newline, in one write) and resolves with its reply
   * object. If `signal` fires first, the connection is destroyed (a late reply would otherwise
   * be taken for the next request's) and this rejects with `signal.reason`.
   * @throws ConnectionLostError when the stream ends or fails first; UnexpectedReplyError
   * when the reply is not a JSON object; Error if a request is already in flight (a bug).
   */
  request(request: JsonObject & { Command: string }, signal: AbortSignal): Promise<JsonObject> {
    if (this.#pending) return Promise.reject(new Error('PolodConnection: one request at a time'));
    if (signal.aborted) return Promise.reject(signal.reason as Error);
    if (!this.usable) {
      return Promise.reject(this.#broken ?? new ConnectionLostError(`connection to polod at ${this.#where} closed`));
    }
    return new Promise<JsonObject>((resolve, reject) => {
      const onAbort = (): void => {
        this.#pending = undefined;
        this.destroy();
        reject(signal.reason as Error);
      };
      const done = (): void => {
        signal.removeEventListener('abort', onAbort);
        if (!this.#socket.destroyed) this.#socket.unref();
      };
      this.#pending = {
        command: request.Command,
        resolve: (reply) => {
          done();
          this.answered++;
          resolve(reply);
        },
        reject: (err) => {
          done();
          reject(err);
        },
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.#socket.ref();
      this.#socket.write(`${JSON.stringify(request)}\n`);
    });
  }

  /** Ends the stream and resolves once it is closed (destroyed if polod does not close soon). */
  async close(): Promise<void> {
    if (!this.#socket.destroyed) {
      this.#socket.end();
      const force = setTimeout(() => this.#socket.destroy(), 1000);
      await this.#closed;
      clearTimeout(force);
    }
  }

  /** Closes the stream now; a request in flight rejects with `reason` (or a ConnectionLostError). */
  destroy(reason?: Error): void {
    if (reason) this.#fail(reason);
    this.#socket.destroy();
  }

  #onData(chunk: Buffer): void {
    for (const frame of this.#splitter.push(chunk)) {
      const pending = this.#pending;
      this.#pending = undefined;
      if (!pending) {
        this.#fail(new UnexpectedReplyError(`polod at ${this.#where} sent a reply nobody asked for`));
        this.#socket.destroy();
        return;
      }
      if (frame.kind !== 'object') {
        const what = frame.kind === 'too-large' ? `over ${MAX_REPLY_BYTES} bytes` : 'not a JSON object';
        const err = new UnexpectedReplyError(`polod's reply to ${pending.command} is ${what}`);
        pending.reject(err);
        this.#fail(err);
        this.#socket.destroy();
        return;
      }
      let reply: JsonObject;
      try {
        reply = decodeObject(frame.bytes, Number.POSITIVE_INFINITY);
      } catch (err) {
        const bad = new UnexpectedReplyError(`polod's reply to ${pending.command} is not a JSON object`, { cause: err });
        pending.reject(bad);
        this.#fail(bad);
        this.#socket.destroy();
        return;
      }
      pending.resolve(reply);
    }
  }

  /** Marks the stream unusable (first reason wins) and fails the request in flight, if any. */
  #fail(err: Error): void {
    this.#broken ??= err;
    const pending = this.#pending;
    this.#pending = undefined;
    if (pending) {
      pending.reject(err instanceof ConnectionLostError ? new ConnectionLostError(`${err.message} before replying to ${pending.command}`, { cause: err.cause, notSent: err.notSent }) : err);
    }
  }
}
