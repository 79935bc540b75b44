/**
 * Where a group query goes out: by default through every multicast interface of the host
 * (src/transport/interfaces.ts), one datagram each, so a host on several LANs asks all of them
 * and the collector merges the answers (one entry per node address).
 */
import type { NetInterface } from '../transport/interfaces.js';
import type { SendTarget } from './collector.js';

/**
 * The datagrams of one send of a query to `group`: one per interface with an IPv4 address.
 * Undefined when the host lists none (or the transport cannot list them): the query then goes
 * the system's way, as with one interface.
 */
export function groupTargets(group: string, interfaces: readonly NetInterface[] | undefined): SendTarget[] | undefined {
  if (interfaces === undefined) return undefined;
  const targets: SendTarget[] = [];
  for (const iface of interfaces) {
    const via = iface.ipv4[0]?.address;
    if (via !== undefined) targets.push({ address: group, via });
  }
  return targets.length > 0 ? targets : undefined;
}
