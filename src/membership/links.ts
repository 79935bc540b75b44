/**
 * Which link a live-discovery datagram came over. A host on several LANs, or on one LAN over
 * both IPv4 and IPv6, keeps one count of the grid per link and family: a Polo reply's Members
 * hint, an announcement's `Members` and a watcher's completeness are all about the nodes a
 * query over that link and family reaches (docs/protocol.md §9).
 *
 * Keys: an interface name for IPv4 (`eth0`, from the interface network holding the source),
 * `%` and the zone for IPv6 (`%eth0`: link-local sources carry their interface), `''` for an
 * IPv4 source on no interface's network (a routed node, in a grid with `hops` above 1) and `%`
 * for an IPv6 source without a zone.
 */
import { linkResolver } from '../discovery/targets.js';
import type { NetInterface } from '../transport/interfaces.js';
import { isLinkLocalIPv6 } from '../util/ipv4.js';

/** The key of the IPv6 link of interface `name`. */
export function ipv6Link(name: string): string {
  return `%${name}`;
}

/** True for the key of an IPv6 link. */
export function isIPv6Link(link: string): boolean {
  return link.startsWith('%');
}

/** The link of a source address, by `interfaces` (see the keys above). */
export function sourceLinks(interfaces: readonly NetInterface[]): (address: string) => string {
  const v4 = linkResolver(interfaces);
  return (address) => {
    if (!address.includes(':')) return v4(address);
    const percent = address.indexOf('%');
    return percent < 0 ? '%' : address.slice(percent);
  };
}

/** The interfaces of `interfaces` holding one of the IPv4 addresses `listed` (`--interface`), in order. */
export function listedInterfaces(interfaces: readonly NetInterface[], listed: readonly string[]): NetInterface[] {
  return interfaces.filter((i) => i.ipv4.some((a) => listed.includes(a.address)));
}

/** `address` with the zone `scope` when it is a link-local IPv6 address without one. */
export function withZone(address: string, scope: string | undefined): string {
  if (scope === undefined || address.includes('%') || !isLinkLocalIPv6(address)) return address;
  return `${address}%${scope}`;
}

/** This host's own addresses as sources appear: IPv4, and IPv6 with and without their zone. */
export function ownAddresses(ipv4: readonly string[], interfaces: readonly NetInterface[]): string[] {
  return [...ipv4, ...interfaces.flatMap((i) => i.ipv6.flatMap((a) => [a, `${a}%${i.name}`]))];
}
