/**
 * What a multicast group address and a port are: the one home of those rules for config files,
 * flags, the publish API, marcod requests, the client libraries and the in-memory network.
 * A grid is an IPv4 group (224.0.0.0/4) or an IPv6 one (ff00::/8, link-local ff02:: in
 * practice). Every IPv4 grid has an IPv6 twin on link-local scope, its four decimal octets
 * written as the last four groups: 224.0.0.112 ↔ ff02::224:0:0:112 (docs/protocol.md §9).
 * polod treats a twin as the same grid; a non-twin IPv6 group is a grid of its own.
 */
// Not node:net's: loading node:net costs marco's start-up Node's whole stream stack.
import { isIPv4, isIPv6 } from '../util/ipv4.js';

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

/** The IPv6 range, for messages. */
export const MULTICAST_IPV6_RANGE = 'ff00::/8, e.g. ff02::224:0:0:112';
/** Both ranges, for messages. */
export const MULTICAST_RANGE = `${MULTICAST_IPV4_RANGE}, or IPv6 ${MULTICAST_IPV6_RANGE}`;

/** The eight 16-bit groups of an IPv6 literal (no zone), or undefined if it is not one. */
export function expandIPv6(address: string): number[] | undefined {
  if (!isIPv6(address) || address.includes('%')) return undefined;
  let text = address.toLowerCase();
  // A trailing dotted quad (::ffff:1.2.3.4) becomes two groups.
  const quad = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (quad) {
    const [a, b, c, d] = quad.slice(1).map(Number) as [number, number, number, number];
    text = `${text.slice(0, quad.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = '', tail] = text.split('::');
  const left = head === '' ? [] : head.split(':');
  const right = tail === undefined || tail === '' ? [] : tail.split(':');
  const zeros = tail === undefined ? 0 : 8 - left.length - right.length;
  const groups = [...left, ...Array<string>(zeros).fill('0'), ...right].map((g) => Number.parseInt(g, 16));
  return groups.length === 8 && groups.every((g) => Number.isInteger(g) && g >= 0 && g <= 0xffff) ? groups : undefined;
}

/** The RFC 5952 text of eight groups: lower case, the longest run of zero groups as `::`. */
export function formatIPv6(groups: readonly number[]): string {
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j === i ? i + 1 : j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}

/** True for an IPv6 literal (no zone) in ff00::/8. */
export function isMulticastIPv6(address: string): boolean {
  const groups = expandIPv6(address);
  return groups !== undefined && (groups[0] ?? 0) >> 8 === 0xff;
}

/** True for an IPv4 or IPv6 multicast group. */
export function isMulticastGroup(address: string): boolean {
  return isMulticastIPv4(address) || isMulticastIPv6(address);
}

/** True for an IPv6 group (the address has a colon). */
export function isIPv6Group(group: string): boolean {
  return group.includes(':');
}

/** The IPv6 twin of an IPv4 group: ff02:: then the four decimal octets as groups. */
export function ipv6Twin(ipv4Group: string): string {
  const octets = ipv4Group.split('.').map((o) => Number.parseInt(o, 16));
  return formatIPv6([0xff02, 0, 0, 0, ...octets]);
}

/** The IPv4 group an IPv6 group is the twin of, or undefined. */
export function ipv4OfTwin(ipv6Group: string): string | undefined {
  const groups = expandIPv6(ipv6Group);
  if (groups === undefined || groups[0] !== 0xff02 || groups[1] !== 0 || groups[2] !== 0 || groups[3] !== 0) return undefined;
  const octets: string[] = [];
  for (const g of groups.slice(4)) {
    const text = g.toString(16);
    // Only groups written with decimal digits, 0 to 255, are octets.
    if (!/^[0-9]{1,3}$/.test(text) || Number(text) > 255) return undefined;
    octets.push(text);
  }
  const ipv4 = octets.join('.');
  return isMulticastIPv4(ipv4) ? ipv4 : undefined;
}

/**
 * The grid a group names, in one spelling: an IPv4 group as it is, an IPv6 twin as its IPv4
 * group, any other IPv6 group in RFC 5952 form. Throws nothing; a non-group is returned as is.
 */
export function canonicalGroup(group: string): string {
  if (!isIPv6Group(group)) return group;
  const twin = ipv4OfTwin(group);
  if (twin !== undefined) return twin;
  const groups = expandIPv6(group);
  return groups === undefined ? group : formatIPv6(groups);
}

/**
 * The grid `value` names (canonicalGroup) when it is a multicast group, else undefined. Every
 * group a person or a peer gives is read through this, so none is checked and then used in the
 * spelling it came in (an IPv6 twin would miss its IPv4 grid).
 */
export function gridOf(value: unknown): string | undefined {
  return typeof value === 'string' && isMulticastGroup(value) ? canonicalGroup(value) : undefined;
}

/** An address family. */
export type Family = 4 | 6;

/** The address family of a literal address (or group): 6 when it has a colon, else 4. */
export function familyOf(address: string): Family {
  return address.includes(':') ? 6 : 4;
}
