/**
 * marcod's watch stream for programs in any language (docs/protocol.md §4.2): a Unix stream
 * socket; a client connects, sends one JSON line saying what to watch (`{}`,
 * `{"group": "224.0.0.113"}`, `{"service": "web"}`), and reads one JSON event per line
 * (`{"event","address","params","reason","time"}`, as `marco watch --json` prints them) until it
 * closes the connection. A bad request gets one `{"Error": "<reason>"}` line and the end.
 */
import { chmod } from 'node:fs/promises';
import net, { type Server, type Socket } from 'node:net';
import type { Marco, WatchOptions } from '../discovery/marco.js';
import { gridOf } from '../protocol/address.js';
import { IoError } from '../errors.js';
import { isJsonObject, type JsonObject } from '../protocol/json.js';
import type { Logger } from '../util/log.js';
import { prepareSocketPath } from '../util/unixSocket.js';

/** Connections served at once; more are refused with an error line. */
export const MAX_WATCH_CONNECTIONS = 64;
/** Longest request line. */
const MAX_REQUEST_LINE = 4096;
/** A client that reads nothing while this much output waits is disconnected. */
const MAX_BACKLOG_BYTES = 1 << 20;

export interface WatchSocketOptions {
  readonly path: string;
  readonly marco: Marco;
  readonly defaultGroup: string;
  readonly iface: string | undefined;
  readonly logger: Logger;
}

export class WatchSocketServer {
  private server: Server | undefined;
  private readonly connections = new Map<Socket, AbortController>();

  constructor(private readonly options: WatchSocketOptions) {}

  async start(): Promise<void> {
    const file = this.options.path;
    await prepareSocketPath(file, 'marcod watch socket', 'is another marcod running?');
    const server = net.createServer((socket) => this.accept(socket));
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err) => reject(new IoError(`marcod watch socket: cannot listen on ${file}: ${err.message}`, { cause: err })));
      server.listen({ path: file }, () => {
        server.removeAllListeners('error');
        server.on('error', () => undefined);
        resolve();
      });
    });
    this.server = server;
    // Any local program may watch: what it reads is what the LAN already broadcasts.
    await chmod(file, 0o666);
    this.options.logger.info({ socket: file }, 'watch socket listening');
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const [socket, controller] of this.connections) {
      controller.abort();
      socket.destroy();
    }
    this.connections.clear();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private accept(socket: Socket): void {
    socket.on('error', () => undefined);
    if (this.connections.size >= MAX_WATCH_CONNECTIONS) {
      socket.end(`${JSON.stringify({ Error: 'busy' })}\n`);
      return;
    }
    const controller = new AbortController();
    this.connections.set(socket, controller);
    socket.on('close', () => {
      controller.abort();
      this.connections.delete(socket);
    });
    let buffered = '';
    const onData = (chunk: Buffer): void => {
      buffered += chunk.toString('utf8');
      const newline = buffered.indexOf('\n');
      if (newline < 0) {
        if (buffered.length > MAX_REQUEST_LINE) this.refuse(socket, `request line longer than ${MAX_REQUEST_LINE} bytes`);
        return;
      }
      socket.off('data', onData);
      void this.serve(socket, buffered.slice(0, newline), controller.signal);
    };
    socket.on('data', onData);
  }

  private async serve(socket: Socket, line: string, signal: AbortSignal): Promise<void> {
    let options: WatchOptions;
    let watch;
    try {
      options = this.parse(line);
      watch = this.options.marco.watch({ ...options, signal });
    } catch (err) {
      this.refuse(socket, (err as Error).message);
      return;
    }
    try {
      for await (const e of watch) {
        const text = JSON.stringify({ event: e.event, address: e.address, params: e.params, reason: e.reason ?? null, time: e.time, ...(e.verified !== undefined && { verified: e.verified }) });
        socket.write(`${text}\n`);
        if (socket.writableLength > MAX_BACKLOG_BYTES) {
          socket.destroy();
          return;
        }
      }
    } catch (err) {
      this.refuse(socket, (err as Error).message);
    }
  }

  /** The watch a request line asks for; throws with a reason naming the key. */
  private parse(line: string): WatchOptions {
    let request: JsonObject = {};
    if (line.trim() !== '') {
      let value: unknown;
      try {
        value = JSON.parse(line);
      } catch {
        throw new Error('request is not valid JSON');
      }
      if (!isJsonObject(value)) throw new Error('request is not a JSON object');
      request = value;
    }
    const raw = request['group'] ?? this.options.defaultGroup;
    const group = gridOf(raw);
    if (group === undefined) throw new Error(`invalid group ${JSON.stringify(raw)}: expected a multicast address`);
    const service = request['service'];
    if (service !== undefined && service !== null && (typeof service !== 'string' || service.length === 0)) {
      throw new Error(`invalid service ${JSON.stringify(service)}: expected a non-empty string`);
    }
    return {
      group,
      ...(typeof service === 'string' && { service }),
      ...(this.options.iface !== undefined && { interface: this.options.iface }),
    };
  }

  private refuse(socket: Socket, reason: string): void {
    socket.end(`${JSON.stringify({ Error: reason })}\n`);
  }
}
