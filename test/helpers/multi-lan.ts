/**
 * A host on more than one LAN: wires a host namespace of one namespace LAN (netns.ts createLan)
 * onto the bridge of another by a second veth pair, and changes that link's addresses, for the
 * every-interface tests. Addresses stay inside the namespaces: 10.201.x.y (as createLan's) and,
 * for IPv6, fd00:201::/32 (unique local, never routed) or link-local.
 */
import { checkCidr, ip, isForwarding, isUp, waitLink, type Lan, type LanHost } from './netns.js';

/** A second (third…) interface of a host, on another LAN's bridge. */
export interface ExtraLink {
  readonly host: LanHost;
  readonly lan: Lan;
  /** Its name in the host namespace (`eth1`, …). */
  readonly iface: string;
  /** Adds an address (10.201.x.y/len or fd00:201:…/len) to the link. */
  addAddress(cidr: string): Promise<void>;
  /** Removes an address from the link. */
  delAddress(cidr: string): Promise<void>;
  /** Deletes the veth pair (the host loses the interface). Idempotent. */
  remove(): Promise<void>;
}

/** Bridge-side names must be unique in the bridge namespace: one counter per process. */
let next = 0;

/**
 * Wires `host` onto `lan`'s bridge as interface `iface`, with `addresses` (added without IPv6
 * duplicate address detection, so they are usable at once), and waits until the link is up
 * and its bridge port forwards. The pair goes with the namespaces when the LANs are destroyed.
 */
export async function attachHost(host: LanHost, lan: Lan, iface: string, addresses: readonly string[]): Promise<ExtraLink> {
  if (!/^eth[1-9]$/.test(iface)) throw new Error(`interface name ${iface} must be eth1..eth9`);
  for (const a of addresses) checkCidr(a);
  const peer = `x${process.pid.toString(36).slice(-4)}${next++}`;
  await ip(['-n', host.ns, 'link', 'add', iface, 'type', 'veth', 'peer', 'name', peer, 'netns', lan.bridgeNs]);
  await ip(['-n', lan.bridgeNs, 'link', 'set', peer, 'master', 'br0']);
  await ip(['-n', lan.bridgeNs, 'link', 'set', peer, 'up']);
  const addAddress = async (cidr: string): Promise<void> => {
    checkCidr(cidr);
    await ip(['-n', host.ns, 'addr', 'add', cidr, 'dev', iface, ...(cidr.includes(':') ? ['nodad'] : [])]);
  };
  for (const a of addresses) await addAddress(a);
  await ip(['-n', host.ns, 'link', 'set', iface, 'up']);
  await waitLink(host.ns, iface, isUp, `${host.ns} ${iface} up on ${lan.name}`);
  await waitLink(lan.bridgeNs, peer, isForwarding, `${peer} forwarding on ${lan.name}'s bridge`);
  let removed = false;
  return {
    host,
    lan,
    iface,
    addAddress,
    async delAddress(cidr) {
      checkCidr(cidr);
      await ip(['-n', host.ns, 'addr', 'del', cidr, 'dev', iface]);
    },
    async remove() {
      if (removed) return;
      removed = true;
      await ip(['-n', host.ns, 'link', 'del', iface]);
    },
  };
}
