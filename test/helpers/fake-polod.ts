/**
 * Fakes shared by the discovery tests; it holds no tests itself (the file name only follows this
 * folder's naming rule). A FakePolo is a polod stand-in on one MemoryNetwork host: it records
 * every query it receives and answers whatever its behaviour returns, from port 1337, to the
 * query's source — or stays silent so a test can answer later, in an order of its choosing.
 *
 * A fake started with `last: true` answers after every other fake that heard the same query (see
 * {@link FakeOptions.last}): the control of tests that assert a node is absent without waiting
 * for a deadline.
 */
import { after, before } from 'node:test';
import type { JsonObject } from '../../src/protocol/json.js';
import { DEFAULT_GROUP, POLO_PORT } from '../../src/protocol/limits.js';
import type { MemoryHost, MemoryNetwork } from '../../src/transport/memory.js';
import type {
  DatagramHandler,
  DatagramSocket,
  GroupSocket,
  QuerySocketOptions,
  RemoteInfo,
  Transport,
} from '../../src/transport/transport.js';

/** One datagram a fake sends: a message (encoded as compact JSON), raw text, or raw bytes. */
export type Datagram = JsonObject | string | Uint8Array;
/** What a fake answers to one query: nothing, one datagram, or several in order. */
export type Answer = Datagram | readonly Datagram[] | undefined;
/** Decides the answer; `index` counts the queries this fake received, from 0. */
export type Behaviour = (query: JsonObject | undefined, from: RemoteInfo, index: number) => Answer;

/** A query as a fake received it. */
export interface ReceivedQuery {
  /** The parsed datagram, or undefined when it was not a JSON object. */
  readonly query: JsonObject | undefined;
  readonly from: RemoteInfo;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Where a fake listens, and when it answers. */
export interface FakeOptions {
  /** The group it joins (default 224.0.0.112); ignored with `unicast`. */
  group?: string;
  /** Its port (default 1337). */
  port?: number;
  /** Listen by unicast on the host's address instead of joining a group. */
  unicast?: boolean;
  /**
   * Answer last: hold each answer until every datagram already on the network has been delivered.
   * Every fake that hears a multicast query hears it in the same turn and sends its answer at once,
   * so this fake's answer reaches the querier after all of theirs — an ordering of the memory
   * network (one setImmediate per datagram), not of any clock. A query cut at max_nodes when this
   * answer arrives has therefore seen every other answer: a node that a filter should have dropped
   * would have been accepted first and taken this one's place. That makes "absent" assertions
   * condition-based, with no deadline to wait out.
   */
  last?: boolean;
}

/** A polod stand-in listening on a group (default) or by unicast on its host's address. */
export class FakePolo {
  /** Every query received, in order. */
  readonly queries: ReceivedQuery[] = [];
  private socket: DatagramSocket | undefined;
  private readonly waiters: Array<{ count: number; resolve: () => void }> = [];

  private constructor(
    private readonly behaviour: Behaviour,
    private readonly last: boolean,
  ) {}

  /** Starts a fake on a new host `address` of `net`. */
  static async start(net: MemoryNetwork, address: string, behaviour: Behaviour, options: FakeOptions = {}): Promise<FakePolo> {
    const fake = new FakePolo(behaviour, options.last === true);
    const host = net.host(address);
    const port = options.port ?? POLO_PORT;
    const onMessage = (data: Uint8Array, from: RemoteInfo): void => fake.receive(data, from);
    if (options.unicast === true) {
      fake.socket = await host.bindUnicast(address, port, onMessage);
    } else {
      const socket = await host.bindGroup(options.group ?? DEFAULT_GROUP, port, onMessage);
      socket.join();
      fake.socket = socket;
    }
    return fake;
  }

  /** Resolves once `count` queries have arrived in total. */
  waitForQueries(count: number): Promise<void> {
    if (this.queries.length >= count) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ count, resolve }));
  }

  /** Sends `answer` to `to` now (from the fake's port, as a polod replies). */
  async answer(to: RemoteInfo, answer: Answer): Promise<void> {
    const socket = this.socket;
    if (socket === undefined) throw new Error('fake polo is closed');
    const list: readonly Datagram[] = answer === undefined ? [] : isList(answer) ? answer : [answer];
    for (const datagram of list) await socket.send(bytes(datagram), to.port, to.address);
  }

  /** Answers the `index`-th query received. */
  answerQuery(index: number, answer: Answer): Promise<void> {
    const received = this.queries[index];
    if (received === undefined) throw new Error(`no query #${index} received`);
    return this.answer(received.from, answer);
  }

  /** Stops listening. */
  async close(): Promise<void> {
    await this.socket?.close();
    this.socket = undefined;
  }

  private receive(data: Uint8Array, from: RemoteInfo): void {
    const query = parseObject(data);
    const index = this.queries.length;
    this.queries.push({ query, from });
    for (const waiter of [...this.waiters]) {
      if (this.queries.length >= waiter.count) {
        this.waiters.splice(this.waiters.indexOf(waiter), 1);
        waiter.resolve();
      }
    }
    const answer = this.behaviour(query, from, index);
    if (!this.last) {
      void this.answer(from, answer);
      return;
    }
    // After the answers the other fakes are sending in this turn (settle: a few check phases).
    void settle().then(() => (this.socket === undefined ? undefined : this.answer(from, answer)));
  }
}

/** A memory host's transport that counts the query sockets opened and closed through it. */
export class TrackedTransport implements Transport {
  /** Query sockets opened so far. */
  opened = 0;
  /** Query sockets closed so far (each counted once). */
  closed = 0;
  /** Options each query socket was opened with. */
  readonly options: QuerySocketOptions[] = [];

  constructor(readonly host: MemoryHost) {}

  /** Query sockets currently open. */
  get open(): number {
    return this.opened - this.closed;
  }

  bindGroup(group: string, port: number, onMessage: DatagramHandler): Promise<GroupSocket> {
    return this.host.bindGroup(group, port, onMessage);
  }

  bindUnicast(address: string, port: number, onMessage: DatagramHandler): Promise<DatagramSocket> {
    return this.host.bindUnicast(address, port, onMessage);
  }

  localAddresses(): string[] {
    return this.host.localAddresses();
  }

  async openQuerySocket(options: QuerySocketOptions, onMessage: DatagramHandler): Promise<DatagramSocket> {
    const socket = await this.host.openQuerySocket(options, onMessage);
    this.opened++;
    this.options.push(options);
    let closed = false;
    return {
      port: socket.port,
      send: (data, port, address) => socket.send(data, port, address),
      close: async () => {
        if (!closed) this.closed++;
        closed = true;
        await socket.close();
      },
    };
  }
}

/** Behaviour of a polod with these node params: answers Marco, ignores the rest. */
export function poloNode(params: JsonObject): Behaviour {
  return (query) => (query?.['Command'] === 'Marco' ? { Command: 'Polo', Params: params } : undefined);
}

/** Behaviour of a polod offering these services (id → params): answers Request-For for them. */
export function offering(services: Record<string, JsonObject>): Behaviour {
  return (query) => {
    const id = query?.['Params'];
    if (query?.['Command'] !== 'Request-For' || typeof id !== 'string' || !Object.hasOwn(services, id)) return undefined;
    return { Command: 'OK', Params: services[id] ?? {} };
  };
}

/** A behaviour that records queries and never answers (the test answers later, if ever). */
export const silent: Behaviour = () => undefined;

/**
 * Lets every datagram already sent, and the replies they trigger, be delivered: the memory
 * network delivers each datagram in its own setImmediate, so a few turns of the check phase
 * drain it. No clock is involved.
 */
export async function settle(turns = 4): Promise<void> {
  for (let i = 0; i < turns; i++) await new Promise((resolve) => setImmediate(resolve));
}

/**
 * Keeps the event loop alive during the file's tests. The memory network holds no OS handle and
 * the library unrefs its timers (so a finished command exits at once); without this, a test
 * awaiting a deadline would see the loop drain and be cancelled.
 */
export function holdEventLoop(): void {
  let timer: ReturnType<typeof setInterval> | undefined;
  before(() => {
    timer = setInterval(() => undefined, 60_000);
  });
  after(() => clearInterval(timer));
}

/** The parsed query datagrams `net` carried to `to` (a group or a node), in order. */
export function queriesTo(net: MemoryNetwork, to: string): JsonObject[] {
  return net.sent.filter((d) => d.to.address === to).map((d) => parseObject(d.data) ?? {});
}

/** The address and port of the first query socket that sent to `to`. */
export function querySource(net: MemoryNetwork, to: string): RemoteInfo {
  const first = net.sent.find((d) => d.to.address === to);
  if (first === undefined) throw new Error(`nothing was sent to ${to}`);
  return first.from;
}

function parseObject(data: Uint8Array): JsonObject | undefined {
  try {
    const value: unknown = JSON.parse(decoder.decode(data));
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as JsonObject) : undefined;
  } catch {
    return undefined;
  }
}

function bytes(datagram: Datagram): Uint8Array {
  if (datagram instanceof Uint8Array) return datagram;
  return encoder.encode(typeof datagram === 'string' ? datagram : JSON.stringify(datagram));
}

function isList(answer: Datagram | readonly Datagram[]): answer is readonly Datagram[] {
  return Array.isArray(answer);
}
