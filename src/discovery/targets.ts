/**
 * Where a group query goes out: by default through every multicast interface of the host
 * (src/transport/interfaces.ts), one datagram each, so a host on several LANs asks all of them
 * and the collector merges the answers (one entry per node address).
 *
 * One family per link: an IPv4 grid is asked over IPv4 on a link where the host has an IPv4
 * address, and over its IPv6 twin (src/protocol/address.ts) on an IPv6-only link, so a
 * dual-stack node, which answers on both, is listed once, at its IPv4 address. An IPv6 grid
 * with no IPv4 twin is asked on every link with IPv6.
 */
import { ipv6Twin, isIPv6Group } from '../protocol/address.js';
import type { NetInterface } from '../transport/interfaces.js';
import type { SendTarget } from './collector.js';
import { ipv4ToNumber, sameNetwork } from '../util/ipv4.js';

/** The IPv6 destination of `group` on one interface: link-local groups need their scope. */
export function scopedGroup(group: string, iface: string): SendTarget {
  return { address: `${group}%${iface}`, via: `::%${iface}` };
}

/**
 * The datagrams of one send of a query to `group` (canonical: canonicalGroup). Undefined when
 * the host lists no interface (or the transport cannot list them): the query then goes the
 * system's way, as with one interface.
 */
export function groupTargets(group: string, interfaces: readonly NetInterface[] | undefined): SendTarget[] | undefined {
  if (interfaces === undefined) return undefined;
  const v6 = isIPv6Group(group);
  const twin = v6 ? group : ipv6Twin(group);
  const targets: SendTarget[] = [];
  for (const iface of interfaces) {
    const via = iface.ipv4[0]?.address;
    if (!v6 && via !== undefined) targets.push({ address: group, via });
    else if (iface.ipv6.length > 0) targets.push(scopedGroup(twin, iface.name));
  }
  return targets.length > 0 ? targets : undefined;
}

/** The IPv6 group `group` on the interface holding the IPv4 address `iface` (`--interface`). */
export function interfaceTargets(group: string, iface: string, interfaces: readonly NetInterface[] | undefined): SendTarget[] | undefined {
  const named = interfaces?.find((i) => i.ipv4.some((a) => a.address === iface));
  return named === undefined ? undefined : [scopedGroup(group, named.name)];
}

/**
 * The datagrams of one send of a query to `group` out of `iface` (an IPv4 address, `--interface`;
 * undefined: every interface, groupTargets): with an interface named, only an IPv6 grid needs
 * the list (the group scoped to that interface, interfaceTargets). Undefined: one datagram to
 * `group`, the socket's way.
 */
export function queryTargets(group: string, iface: string | undefined, interfaces: readonly NetInterface[] | undefined): SendTarget[] | undefined {
  if (iface === undefined) return groupTargets(group, interfaces);
  return isIPv6Group(group) ? interfaceTargets(group, iface, interfaces) : undefined;
}

/**
 * Which of `interfaces` a responder is on: a link-local IPv6 source by its zone, an IPv4 one
 * by the interface network holding it ('' when none does: a routed responder).
 */
export function linkResolver(interfaces: readonly NetInterface[]): (address: string) => string {
  const networks = interfaces.flatMap((i) =>
    i.ipv4.flatMap((a) => {
      const net = ipv4ToNumber(a.address);
      return net === undefined ? [] : [{ name: i.name, net, prefixLength: a.prefixLength }];
    }),
  );
  return (address) => {
    const percent = address.indexOf('%');
    if (percent >= 0) return address.slice(percent + 1);
    const n = ipv4ToNumber(address);
    if (n === undefined) return '';
    return networks.find((x) => sameNetwork(x.net, n, x.prefixLength))?.name ?? '';
  };
}
