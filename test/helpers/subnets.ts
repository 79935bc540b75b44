/**
 * Two namespace LANs (netns.ts createLan) joined by a router namespace, for grids that span
 * subnets: the router has one leg on each LAN's bridge (10.201.<subnet>.254), forwards unicast
 * (ip_forward=1 in its own namespace only) and, with no multicast routing daemon, never forwards
 * multicast, so a LAN's group ends at the router as on a real campus. Each host gets a route to
 * the other subnet through its router leg. Nothing is created in the machine's own namespace.
 */
import { addNamespace, ip, type Lan } from './netns.js';

/** The address of the router's leg on a LAN: `.254` of its subnet. */
function routerAddress(lan: Lan): string {
  return `10.201.${lan.subnet}.254`;
}

/** The routed pair, from {@link joinLans}. */
export interface Subnets {
  /** Deletes the router namespace (the LANs stay). Idempotent. */
  destroy(): void;
}

/**
 * Joins LANs `a` and `b` (different subnets, hosts with fewer than 254 addresses) through a
 * router namespace named after `name` (letters and digits, unique per test file).
 */
export async function joinLans(name: string, a: Lan, b: Lan): Promise<Subnets> {
  if (!/^[A-Za-z0-9]+$/.test(name)) throw new Error(`router name ${name} must be letters and digits`);
  if (a.subnet === b.subnet) throw new Error('the two LANs must be on different subnets');
  // Named and cleaned up as the LANs' namespaces are (netns.ts).
  const { ns: routerNs, destroy } = await addNamespace(name, 'rt');
  try {
    await ip(['-n', routerNs, 'link', 'set', 'lo', 'up']);
    for (const [leg, lan] of [['ra', a], ['rb', b]] as const) {
      // Created straight into the two namespaces; the bridge end is named `rt` on its bridge.
      await ip(['-n', routerNs, 'link', 'add', leg, 'type', 'veth', 'peer', 'name', 'rt', 'netns', lan.bridgeNs]);
      await ip(['-n', lan.bridgeNs, 'link', 'set', 'rt', 'master', 'br0']);
      await ip(['-n', lan.bridgeNs, 'link', 'set', 'rt', 'up']);
      await ip(['-n', routerNs, 'addr', 'add', `${routerAddress(lan)}/24`, 'dev', leg]);
      await ip(['-n', routerNs, 'link', 'set', leg, 'up']);
    }
    await ip(['netns', 'exec', routerNs, 'sysctl', '-qw', 'net.ipv4.ip_forward=1']);
    for (const [lan, other] of [
      [a, b],
      [b, a],
    ] as const) {
      for (const h of lan.hosts) {
        await ip(['-n', h.ns, 'route', 'add', `10.201.${other.subnet}.0/24`, 'via', routerAddress(lan), 'dev', h.iface]);
      }
    }
  } catch (err) {
    destroy();
    throw err;
  }
  return { destroy };
}
