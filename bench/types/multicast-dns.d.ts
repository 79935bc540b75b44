/**
 * The part of multicast-dns (npm, the mDNS socket under bonjour-service; it ships no types) that
 * the peers benchmark's raw mDNS client uses: one socket on 5353, queries out, decoded packets in.
 */
declare module 'multicast-dns' {
  import type { EventEmitter } from 'node:events';

  /** A decoded resource record; `data` by type: PTR a name, A an address, SRV target and port. */
  export interface MdnsRecord {
    readonly name: string;
    readonly type: string;
    readonly ttl?: number;
    readonly data: unknown;
  }

  export interface MdnsPacket {
    readonly answers: readonly MdnsRecord[];
    readonly additionals: readonly MdnsRecord[];
  }

  export interface MulticastDns extends EventEmitter {
    on(event: 'response', listener: (packet: MdnsPacket) => void): this;
    on(event: 'error' | 'warning', listener: (err: Error) => void): this;
    query(name: string, type: string, callback?: (err: Error | null) => void): void;
    destroy(callback?: () => void): void;
  }

  export interface MulticastDnsOptions {
    /** Local address the queries leave from (multicast interface). */
    interface?: string;
    /** Address to bind: 0.0.0.0 to receive multicast (a unicast address would filter it out). */
    bind?: string;
  }

  export default function multicastDns(options?: MulticastDnsOptions): MulticastDns;
}
