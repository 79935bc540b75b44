/**
 * Whether a unicast query's source is on a network directly connected to the interface it
 * arrived on. A query's source address is not proven (UDP), so answering any source lets
 * anyone aim polod's replies at a third host; a spoofer on the same link is bounded by the reply
 * budgets (rateLimit.ts), one behind a router is refused here (docs/protocol.md §7).
 */
import os from 'node:os';
import type { LocalNetwork } from '../transport/transport.js';
import { ipv4ToNumber, isLinkLocalIPv6, sameNetwork } from '../util/ipv4.js';

export type { LocalNetwork };

/** The host's IPv4 networks, from the operating system. */
export function systemNetworks(): LocalNetwork[] {
  const out: LocalNetwork[] = [];
  for (const [iface, list] of Object.entries(os.networkInterfaces())) {
    for (const a of list ?? []) {
      if (a.family !== 'IPv4') continue;
      const prefix = a.cidr === null ? NaN : Number(a.cidr.slice(a.cidr.indexOf('/') + 1));
      if (Number.isInteger(prefix)) out.push({ iface, address: a.address, prefixLength: prefix });
    }
  }
  return out;
}


/**
 * The IPv6 rule: a link-local source (fe80::/10) is on the link named by its zone, so it is
 * on-link for a listener on that same interface (a link-local listener carries the zone; one
 * on another address has none to compare, and is answered only from link-local sources of
 * any interface). Other IPv6 sources are taken as off-link.
 */
function ipv6OnLink(local: string, source: string): boolean {
  const percent = source.indexOf('%');
  if (percent < 0 || !isLinkLocalIPv6(source)) return false;
  const localZone = local.indexOf('%');
  return localZone < 0 || local.slice(localZone) === source.slice(percent);
}

/** How long the interface list is reused before it is read again (addresses change rarely). */
const REFRESH_MS = 5000;

/** Answers "is this source on-link for that local address?", caching the interface list. */
export class OnLinkCheck {
  private networks: readonly LocalNetwork[] = [];
  private readAt = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly list: () => readonly LocalNetwork[] = systemNetworks,
    private readonly clock: () => number = Date.now,
  ) {}

  /**
   * True when `source` is on a network of the interface that holds `local` (the address the
   * unicast socket is bound to). An unknown local address (it just went away) answers false.
   */
  onLink(local: string, source: string): boolean {
    if (source.includes(':')) return ipv6OnLink(local, source);
    this.refresh();
    const src = ipv4ToNumber(source);
    if (src === undefined) return false;
    const ifaces = new Set(this.networks.filter((n) => n.address === local).map((n) => n.iface));
    for (const n of this.networks) {
      if (!ifaces.has(n.iface)) continue;
      const net = ipv4ToNumber(n.address);
      if (net !== undefined && sameNetwork(net, src, n.prefixLength)) return true;
    }
    return false;
  }

  /** True for a loopback address or one of this host's own addresses. */
  isLocal(address: string): boolean {
    if (address.startsWith('127.')) return true;
    this.refresh();
    return this.networks.some((n) => n.address === address);
  }

  private refresh(): void {
    const now = this.clock();
    if (now - this.readAt >= REFRESH_MS) {
      this.networks = this.list();
      this.readAt = now;
    }
  }
}
