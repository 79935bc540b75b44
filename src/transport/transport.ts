/**
 * The transport seam: the responder and the discovery client talk to these interfaces. The real
 * implementation is UDP (udp.ts); component tests use the in-memory network (memory.ts).
 */
import type { NetInterface } from './interfaces.js';

export type { NetInterface };

/** Where a datagram came from. */
export interface RemoteInfo {
  readonly address: string;
  readonly port: number;
}

/** Called for every datagram a socket receives. Must not throw (ingest functions catch). */
export type DatagramHandler = (data: Uint8Array, from: RemoteInfo) => void;

/** A bound datagram socket. */
export interface DatagramSocket {
  /** The local port (useful for ephemeral client sockets). */
  readonly port: number;
  /**
   * Sends one datagram; resolves once handed to the network. `via`: the local IPv4 address of
   * the interface a datagram to an IPv4 group leaves through (default: the socket's; an IPv6
   * link-local group names its interface in the address, `ff02::1%eth0`).
   */
  send(data: Uint8Array, port: number, address: string, via?: string): Promise<void>;
  /** Closes the socket. Idempotent. */
  close(): Promise<void>;
}

/**
 * A socket that receives only the datagrams sent to one multicast group and port. It is bound
 * before it joins, so a failed join (no such interface yet) can be retried on the same socket.
 */
export interface GroupSocket extends DatagramSocket {
  readonly group: string;
  /** Joins the group on one interface (by address), or on the system's choice. Throws JoinError. */
  join(iface?: string): void;
  /** Leaves the group on one interface (by address). Never throws: a vanished interface has left. */
  leave(iface: string): void;
  /** Multicast TTL of datagrams sent to groups from this socket. */
  setTtl(ttl: number): void;
  /**
   * Sends one datagram without a promise: the responder's hot path, where a promise per reply
   * costs more than the rest of the answer. `done` is called once with the outcome.
   */
  post(data: Uint8Array, port: number, address: string, done: (err: Error | null) => void): void;
}

/** Options of a query (client) socket. */
export interface QuerySocketOptions {
  /** Local interface address multicast queries leave from; default: the system's choice. */
  readonly iface?: string;
  /** Multicast TTL of queries. */
  readonly ttl: number;
  /** Receive queue to ask the kernel for, in bytes (capped by it); default: the kernel's. */
  readonly receiveBufferBytes?: number;
  /** 6: an IPv6 socket (for IPv6 groups and nodes; `iface` does not apply); default 4. */
  readonly family?: 4 | 6;
}

/** Opens sockets. One instance per host (a real process, or one host of a memory network). */
export interface Transport {
  /**
   * A socket receiving datagrams addressed to `group:port` (not yet joined). An IPv6 group
   * takes `scope`, the name of the one interface the socket serves (it is bound to it: replies
   * leave through it, and join() joins there).
   */
  bindGroup(group: string, port: number, onMessage: DatagramHandler, scope?: string): Promise<GroupSocket>;
  /**
   * A socket receiving unicast datagrams to `address:port` (for Services by unicast). Bound to
   * a unicast address, never the wildcard, so group traffic is not received twice.
   */
  bindUnicast(address: string, port: number, onMessage: DatagramHandler): Promise<DatagramSocket>;
  /** An ephemeral socket for one query: sends to a group or a node, receives the replies. */
  openQuerySocket(options: QuerySocketOptions, onMessage: DatagramHandler): Promise<DatagramSocket>;
  /** The IPv4 addresses of this host's interfaces (where unicast listeners bind). */
  localAddresses(): string[];
  /**
   * The IPv4 networks of this host's interfaces, for the on-link rule of unicast queries
   * (src/responder/onLink.ts). Optional: without it, the operating system's list is used.
   */
  localNetworks?(): readonly LocalNetwork[];
  /**
   * The host's up, multicast-capable, non-loopback interfaces (src/transport/interfaces.ts).
   * Optional: without it, the operating system's list is used.
   */
  interfaces?(): NetInterface[];
}


/** An IPv4 address of this host, its interface and its network's prefix length. */
export interface LocalNetwork {
  readonly iface: string;
  readonly address: string;
  readonly prefixLength: number;
}
