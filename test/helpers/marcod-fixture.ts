/**
 * Fakes shared by the marcod component tests; it holds no tests itself (the file name follows
 * this folder's naming rule). A marcod runs on a memory network: its API socket on host
 * 127.0.1.1, its queries from host 10.0.0.100, fake polods (discovery-fixture) on 10.0.0.x, and
 * raw local clients that send request bytes and read the one reply.
 */
import { Writable } from 'node:stream';
import { MarcodServer, type MarcodDeps, type MarcodSettings } from '../../src/marcod/server.js';
import { DEFAULT_GROUP, POLO_PORT } from '../../src/protocol/limits.js';
import { MemoryNetwork, type MemoryHost } from '../../src/transport/memory.js';
import type { DatagramSocket, RemoteInfo } from '../../src/transport/transport.js';
import { createLogger, type Logger } from '../../src/util/log.js';
import { settle, TrackedTransport } from './fake-polod.js';

/** Where the fake marcod listens. */
export const API = { address: '127.0.1.1', port: 1338 } as const;
/** The address marcod's queries leave from. */
export const MARCOD_HOST = '10.0.0.100';

/** Settings of a test marcod; `timeoutMs` defaults to 1000 as in marco.cfg. */
export function settings(overrides: Partial<MarcodSettings> = {}): MarcodSettings {
  return {
    bindAddress: API.address,
    marcoPort: API.port,
    group: DEFAULT_GROUP,
    poloPort: POLO_PORT,
    timeoutMs: 1000,
    frameSize: 4096,
    interfaces: [],
    ...overrides,
  };
}

/** A pino logger whose records a test can read. */
export function recordingLogger(): { logger: Logger; records: Array<Record<string, unknown>> } {
  const records: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line !== '') records.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { logger: createLogger({ level: 'debug', name: 'marcod' }, sink), records };
}

/** A memory network with a started marcod on it. */
export interface MarcodSetup {
  readonly net: MemoryNetwork;
  readonly server: MarcodServer;
  /** marcod's query transport (counts the sockets it opens). */
  readonly transport: TrackedTransport;
  readonly records: Array<Record<string, unknown>>;
  /** A local client host (one per setup: memory hosts number their ports themselves). */
  readonly clientHost: MemoryHost;
  /** Sends one request (an object as JSON, a string as is, or bytes) from a fresh socket. */
  ask(payload: unknown): Promise<RawExchange>;
}

/** Starts a marcod on a fresh memory network. */
export async function startMarcod(
  overrides: Partial<MarcodSettings> = {},
  deps: Omit<MarcodDeps, 'transport' | 'bindApi' | 'logger'> & { makeTransport?: (host: MemoryHost) => TrackedTransport } = {},
): Promise<MarcodSetup> {
  const { makeTransport = (host: MemoryHost) => new TrackedTransport(host), ...rest } = deps;
  const net = new MemoryNetwork();
  const apiHost = net.host(API.address);
  const transport = makeTransport(net.host(MARCOD_HOST));
  const { logger, records } = recordingLogger();
  const server = new MarcodServer(settings(overrides), {
    ...rest,
    transport,
    logger,
    bindApi: (address, port, onMessage) => apiHost.bindUnicast(address, port, onMessage),
  });
  await server.start();
  const clientHost = net.host('127.0.0.9');
  return {
    net,
    server,
    transport,
    records,
    clientHost,
    ask: (payload) => RawExchange.send(clientHost, payload),
  };
}

/** One request sent from its own socket, and every datagram that came back to that socket. */
export class RawExchange {
  /** Parsed replies, in arrival order (a reply that is not JSON is kept as its text). */
  readonly replies: unknown[] = [];
  private readonly waiters: Array<() => void> = [];

  private constructor(private socket: DatagramSocket | undefined) {}

  /** Sends `payload` to marcod from a new socket of `host`. */
  static async send(host: MemoryHost, payload: unknown, to: RemoteInfo = API): Promise<RawExchange> {
    const exchange = new RawExchange(undefined);
    const socket = await host.openQuerySocket({ ttl: 1 }, (data) => exchange.receive(data));
    exchange.socket = socket;
    await socket.send(bytesOf(payload), to.port, to.address);
    return exchange;
  }

  /** The first reply (waits for it). */
  async reply(): Promise<unknown> {
    if (this.replies.length === 0) await new Promise<void>((resolve) => this.waiters.push(resolve));
    return this.replies[0];
  }

  /**
   * The one reply, after checking that no second one follows: marcod sends one datagram per
   * request, so anything else would already be on the (memory) network once it has settled.
   */
  async only(): Promise<unknown> {
    const first = await this.reply();
    await settle();
    if (this.replies.length !== 1) throw new Error(`expected exactly one reply, got ${this.replies.length}`);
    await this.socket?.close();
    this.socket = undefined;
    return first;
  }

  private receive(data: Uint8Array): void {
    const text = new TextDecoder().decode(data);
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      value = text;
    }
    this.replies.push(value);
    for (const waiter of this.waiters.splice(0)) waiter();
  }
}

/** A reply's nodes sorted by address (marcod keeps arrival order, which tests do not fix). */
export function sortNodes(reply: unknown): unknown {
  if (!Array.isArray(reply)) return reply;
  return [...(reply as Array<{ Address: string }>)].sort((a, b) => a.Address.localeCompare(b.Address));
}

function bytesOf(payload: unknown): Uint8Array {
  if (payload instanceof Uint8Array) return payload;
  return new TextEncoder().encode(typeof payload === 'string' ? payload : JSON.stringify(payload));
}
