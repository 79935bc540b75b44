/**
 * An in-memory network for fast component tests: hosts with addresses, group membership and
 * asynchronous delivery, with no sockets. Joins can be made to fail to test the retry path.
 */
import { JoinError } from '../errors.js';
import type {
  DatagramHandler,
  DatagramSocket,
  GroupSocket,
  LocalNetwork,
  NetInterface,
  QuerySocketOptions,
  RemoteInfo,
  Transport,
} from './transport.js';
import { inMulticastRange } from '../protocol/address.js';

interface Endpoint {
  host: MemoryHost;
  port: number;
  onMessage: DatagramHandler;
  /** Bound address: a group (group sockets) or a unicast address; undefined = any address of the host. */
  address: string | undefined;
  joined: boolean;
  closed: boolean;
}

const isMulticast = inMulticastRange;

/** A simulated LAN segment. */
export class MemoryNetwork {
  private readonly endpoints = new Set<Endpoint>();
  private readonly failingJoins = new Map<string, number>();
  /** Every datagram sent, for assertions: [from, to, bytes]. */
  readonly sent: Array<{ from: RemoteInfo; to: RemoteInfo; data: Uint8Array }> = [];

  /** A host on this network with the given address. */
  host(address: string): MemoryHost {
    return new MemoryHost(this, address);
  }

  /** Makes the next `count` joins of `group` fail (simulates a missing interface). */
  failJoins(group: string, count: number): void {
    this.failingJoins.set(group, count);
  }

  /** Consumes one planned join failure of `group`; true when this join must fail. */
  takeJoinFailure(group: string): boolean {
    const left = this.failingJoins.get(group) ?? 0;
    if (left <= 0) return false;
    this.failingJoins.set(group, left - 1);
    return true;
  }

  add(endpoint: Endpoint): void {
    this.endpoints.add(endpoint);
  }

  remove(endpoint: Endpoint): void {
    this.endpoints.delete(endpoint);
  }

  portInUse(host: MemoryHost, port: number, address: string | undefined): boolean {
    for (const e of this.endpoints) {
      if (e.host === host && e.port === port && e.address === address) return true;
    }
    return false;
  }

  deliver(from: RemoteInfo, to: RemoteInfo, data: Uint8Array): void {
    this.sent.push({ from, to, data });
    const copy = Uint8Array.from(data);
    const targets = [...this.endpoints].filter((e) =>
      isMulticast(to.address)
        ? e.joined && e.address === to.address && e.port === to.port
        : e.host.address === to.address && e.port === to.port && (e.address === undefined || e.address === to.address),
    );
    // Delivery is asynchronous, as on a real network.
    setImmediate(() => {
      for (const e of targets) if (!e.closed) e.onMessage(copy, from);
    });
  }
}

class MemorySocket implements DatagramSocket {
  constructor(protected readonly endpoint: Endpoint) {}

  get port(): number {
    return this.endpoint.port;
  }

  async send(data: Uint8Array, port: number, address: string, _via?: string): Promise<void> {
    if (this.endpoint.closed) throw new Error('socket is closed');
    const host = this.endpoint.host;
    host.network.deliver({ address: host.address, port: this.endpoint.port }, { address, port }, data);
  }

  async close(): Promise<void> {
    this.endpoint.closed = true;
    this.endpoint.host.network.remove(this.endpoint);
  }
}

class MemoryGroupSocket extends MemorySocket implements GroupSocket {
  constructor(
    endpoint: Endpoint,
    readonly group: string,
  ) {
    super(endpoint);
  }

  join(iface?: string): void {
    if (this.endpoint.host.network.takeJoinFailure(this.group)) {
      throw new JoinError(this.group, iface, { cause: new Error('ENODEV (simulated)') });
    }
    this.endpoint.joined = true;
  }

  leave(): void {
    this.endpoint.joined = false;
  }

  setTtl(): void {}

  post(data: Uint8Array, port: number, address: string, done: (err: Error | null) => void): void {
    this.send(data, port, address).then(
      () => done(null),
      (err: unknown) => done(err as Error),
    );
  }
}

/** One host of a MemoryNetwork; implements Transport. */
export class MemoryHost implements Transport {
  private nextPort = 40000;
  constructor(
    readonly network: MemoryNetwork,
    readonly address: string,
  ) {}

  async bindGroup(group: string, port: number, onMessage: DatagramHandler, _scope?: string): Promise<GroupSocket> {
    // Group sockets share their address and port, as UDP group sockets do with address reuse
    // (polod's responder and its presence, or a watcher next to a polod).
    return new MemoryGroupSocket(this.register(port, group, onMessage, true), group);
  }

  async bindUnicast(address: string, port: number, onMessage: DatagramHandler): Promise<DatagramSocket> {
    if (address !== this.address) throw new Error(`EADDRNOTAVAIL ${address}`);
    return new MemorySocket(this.register(port, address, onMessage));
  }

  async openQuerySocket(_options: QuerySocketOptions, onMessage: DatagramHandler): Promise<DatagramSocket> {
    return new MemorySocket(this.register(this.nextPort++, undefined, onMessage));
  }

  localAddresses(): string[] {
    return [this.address];
  }

  /** One interface, `mem0`, with the host's address. */
  interfaces(): NetInterface[] {
    return [{ name: 'mem0', ipv4: this.localNetworks(), ipv6: [] }];
  }

  /** An in-memory network is one link: every address is on it. */
  localNetworks(): LocalNetwork[] {
    return [{ iface: 'mem0', address: this.address, prefixLength: 0 }];
  }

  private register(port: number, address: string | undefined, onMessage: DatagramHandler, shared = false): Endpoint {
    if (!shared && this.network.portInUse(this, port, address)) throw new Error(`EADDRINUSE ${address ?? '*'}:${port}`);
    const endpoint: Endpoint = { host: this, port, onMessage, address, joined: false, closed: false };
    this.network.add(endpoint);
    return endpoint;
  }
}
