/**
 * What a multicast group address and a port are: the one home of those rules for config files,
 * flags, the publish API, marcod requests, the client libraries and the in-memory network. IPv4 only for
 * now (224.0.0.0/4); the grids of docs/protocol.md are IPv4 groups.
 */
// Not node:net's isIPv4: loading node:net costs marco's start-up Node's whole stream stack.
import { isIPv4 } from '../util/ipv4.js';

/** A UDP or TCP port: an integer from 1 to 65535. */
export function isPort(port: number): boolean {
  return Number.isInteger(port) && port >= 1 && port <= 65535;
}

/** The range, for messages: `224.0.0.0 to 239.255.255.255`. */
export const MULTICAST_IPV4_RANGE = '224.0.0.0 to 239.255.255.255';

/** True for a dotted-quad IPv4 address (no leading zeros, each part 0–255). */
export function isIPv4Address(address: string): boolean {
  return isIPv4(address);
}

/** True for an address in 224.0.0.0/4, whether or not it is a valid dotted quad. */
export function inMulticastRange(address: string): boolean {
  const first = Number(address.slice(0, address.indexOf('.')));
  return first >= 224 && first <= 239;
}

/** True for a dotted-quad IPv4 address in 224.0.0.0/4 (a multicast group). */
export function isMulticastIPv4(address: string): boolean {
  return isIPv4(address) && inMulticastRange(address);
}
