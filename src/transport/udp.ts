/**
 * The real transport: node:dgram UDP/IPv4. One socket per group, bound to the group address, so
 * the kernel tells us which group a query was sent to (dgram exposes no IP_PKTINFO); unicast
 * listeners bind to interface addresses, never the wildcard, so group traffic arrives once.
 */
import dgram from 'node:dgram';
import type dns from 'node:dns';
import { isIPv4 } from '../util/ipv4.js';
import { JoinError } from '../errors.js';
import type { DatagramHandler, DatagramSocket, GroupSocket, QuerySocketOptions, Transport } from './transport.js';
import { multicastInterfaces, type NetInterface } from './interfaces.js';
import { familyOf } from '../protocol/address.js';

class UdpSocket implements DatagramSocket {
  private closed = false;
  constructor(protected readonly socket: dgram.Socket) {}

  get port(): number {
    return this.socket.address().port;
  }

  send(data: Uint8Array, port: number, address: string, via?: string): Promise<void> {
    return new Promise((resolve, reject) => {
      // The interface is set just before the send: with literal addresses (lookupLiteral) dgram
      // hands the datagram to the kernel synchronously, so one socket can send a query out of
      // every interface in turn.
      if (via !== undefined) {
        try {
          this.socket.setMulticastInterface(via);
        } catch (err) {
          reject(err as Error);
          return;
        }
      }
      this.socket.send(data, port, address, (err) => (err ? reject(err) : resolve()));
    });
  }


  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.closed = true;
    return new Promise((resolve) => this.socket.close(() => resolve()));
  }
}

class UdpGroupSocket extends UdpSocket implements GroupSocket {
  constructor(
    socket: dgram.Socket,
    readonly group: string,
    /** The interface of an IPv6 group socket (which joins there, whatever it is asked). */
    private readonly scope?: string,
  ) {
    super(socket);
  }

  join(iface?: string): void {
    try {
      this.socket.addMembership(this.group, this.scope === undefined ? iface : `::%${this.scope}`);
    } catch (err) {
      // Already a member there: the interface kept the membership across an address change.
      if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE') return;
      throw new JoinError(this.group, iface, { cause: err });
    }
  }

  leave(iface: string): void {
    try {
      this.socket.dropMembership(this.group, this.scope === undefined ? iface : `::%${this.scope}`);
    } catch {
      // The interface or its address is gone, and the kernel dropped the membership with it.
    }
  }

  setTtl(ttl: number): void {
    this.socket.setMulticastTTL(ttl);
  }

  post(data: Uint8Array, port: number, address: string, done: (err: Error | null) => void): void {
    this.socket.send(data, port, address, done);
  }
}

/**
 * Address lookup for sends: replies go to IPv4 literals (a query's source), which need no
 * resolver. dgram's default still defers each send by a tick through dns.lookup.
 */
function lookupLiteral(
  hostname: string,
  options: dns.LookupOneOptions,
  callback: (err: NodeJS.ErrnoException | null, address: string, family: number) => void,
): void {
  if (isIPv4(hostname)) callback(null, hostname, 4);
  // An IPv6 literal, maybe with its zone (fe80::1%eth0): dgram parses it itself.
  else if (hostname.includes(':')) callback(null, hostname, 6);
  // node:dns only for a host name: queries name literal addresses, and marco starts faster.
  else process.getBuiltinModule('node:dns').lookup(hostname, options, callback);
}

function open(onMessage: DatagramHandler, reuseAddr: boolean, family: 4 | 6 = 4): dgram.Socket {
  // The kernel's default receive queue (net.core.rmem_default) is kept: a smaller one drops more under floods.
  const socket = dgram.createSocket({
    type: family === 6 ? 'udp6' : 'udp4',
    reuseAddr,
    lookup: lookupLiteral,
    // IPv6 sockets hear IPv6 only: IPv4 has sockets of its own.
    ...(family === 6 && { ipv6Only: true }),
  });
  socket.on('message', (msg, rinfo) => onMessage(msg, { address: rinfo.address, port: rinfo.port }));
  // A socket error after bind (e.g. ICMP-induced) must not crash the daemon: it is logged by owners.
  socket.on('error', () => {});
  return socket;
}

/**
 * Asks for a larger receive queue. Linux caps the request at net.core.rmem_max without an
 * error; a refusal (another system) leaves the default, which only costs replies in a storm.
 */
function setReceiveBuffer(socket: dgram.Socket, bytes: number): void {
  try {
    if (socket.getRecvBufferSize() < bytes) socket.setRecvBufferSize(bytes);
  } catch {
    // The default queue stays.
  }
}

function bind(socket: dgram.Socket, port: number, address?: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => reject(err);
    socket.once('error', onError);
    socket.bind({ port, address, exclusive: false }, () => {
      socket.off('error', onError);
      resolve();
    });
  });
}

/** The part of Node's UDP handle (src/udp_wrap.cc) used here: a bind that returns an errno. */
interface UdpHandle {
  recvStart(): unknown;
  bind(address: string, port: number, flags: number): number;
  close(): void;
}

/**
 * Binds a query socket to 0.0.0.0 on a port of the kernel's choice without `socket.bind()`'s
 * cluster check: Node 20's dgram loads node:cluster on every bind (to ask whether this process
 * is a cluster worker), and node:cluster loads child_process, net and the whole stream stack,
 * about 2 ms of `marco`'s start-up (npm run bench -- startup), though a query socket is never
 * shared with a cluster.
 * The socket takes a handle bound here instead, through the path by which a cluster worker takes
 * the handle its primary bound (dgram's bind() given a handle): the same socket, bound the same
 * way (no SO_REUSEADDR, as `bind(socket, 0)`). Returns false, having changed nothing, when this
 * Node's dgram does not look as expected or the bind fails; the caller then binds the usual way,
 * which reports any error as usual.
 */
function bindQuerySocketDirectly(socket: dgram.Socket): boolean {
  const handle = boundHandleLike(socket);
  if (handle === undefined) return false;
  // Taken synchronously: dgram swaps the handles, starts receiving and emits 'listening'.
  socket.bind(handle as unknown as dgram.BindOptions);
  return true;
}

/** A new UDP handle of `socket`'s class, bound to 0.0.0.0:0; undefined if that cannot be done. */
function boundHandleLike(socket: dgram.Socket): UdpHandle | undefined {
  let handle: UdpHandle;
  try {
    const stateKey = Object.getOwnPropertySymbols(socket).find((sym) => sym.description === 'state symbol');
    const state: unknown = stateKey === undefined ? undefined : (socket as unknown as Record<symbol, unknown>)[stateKey];
    if (typeof state !== 'object' || state === null || !('handle' in state)) return undefined;
    const current = state.handle as Partial<UdpHandle> | null;
    if (current === null || typeof current.recvStart !== 'function' || typeof current.bind !== 'function') return undefined;
    handle = new (current.constructor as new () => UdpHandle)();
  } catch {
    return undefined;
  }
  if (handle.bind('0.0.0.0', 0, 0) === 0) return handle;
  handle.close();
  return undefined;
}

/** UDP transport of this process. */
export class UdpTransport implements Transport {
  async bindGroup(group: string, port: number, onMessage: DatagramHandler, scope?: string): Promise<GroupSocket> {
    const family = familyOf(group);
    const v6 = family === 6;
    const socket = open(onMessage, true, family);
    // An IPv6 link-local group is bound with its interface (ff02::1%eth0): the socket then
    // hears that interface only and its replies leave through it.
    await bind(socket, port, v6 && scope !== undefined ? `${group}%${scope}` : group).catch((err: unknown) => {
      socket.close();
      throw err;
    });
    if (v6 && scope !== undefined) socket.setMulticastInterface(`::%${scope}`);
    return new UdpGroupSocket(socket, group, v6 ? scope : undefined);
  }

  async bindUnicast(address: string, port: number, onMessage: DatagramHandler): Promise<DatagramSocket> {
    const socket = open(onMessage, true, familyOf(address));
    await bind(socket, port, address).catch((err: unknown) => {
      socket.close();
      throw err;
    });
    return new UdpSocket(socket);
  }

  async openQuerySocket(options: QuerySocketOptions, onMessage: DatagramHandler): Promise<DatagramSocket> {
    const family = options.family ?? 4;
    const socket = open(onMessage, false, family);
    try {
      // The direct bind makes an IPv4 handle (0.0.0.0): IPv6 query sockets bind the usual way.
      if (family !== 4 || !bindQuerySocketDirectly(socket)) await bind(socket, 0);
      socket.setMulticastTTL(options.ttl);
      if (options.iface !== undefined && family === 4) socket.setMulticastInterface(options.iface);
      if (options.receiveBufferBytes !== undefined) setReceiveBuffer(socket, options.receiveBufferBytes);
    } catch (err) {
      // A bound socket keeps the process alive: close it, or a failed query would hang the CLI.
      socket.close();
      throw err;
    }
    return new UdpSocket(socket);
  }

  localAddresses(): string[] {
    // node:os on first use: a query that names no interface never needs it.
    return Object.values(process.getBuiltinModule('node:os').networkInterfaces())
      .flatMap((list) => list ?? [])
      .filter((a) => a.family === 'IPv4')
      .map((a) => a.address);
  }

  interfaces(): NetInterface[] {
    return multicastInterfaces();
  }
}
