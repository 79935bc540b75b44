/**
 * A host on more than one LAN: wires a host namespace of one namespace LAN (netns.ts createLan)
 * onto the bridge of another by a second veth pair, and changes that link's addresses, for the
 * every-interface tests. Addresses stay inside the namespaces: 10.201.x.y (as createLan's) and,
 * for IPv6, fd00:201::/32 (unique local, never routed) or link-local.
 */
import { execFile } from 'node:child_process';
import type { Lan, LanHost } from './netns.js';
import { waitFor } from './wait.js';

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

function ip(args: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('ip', args, { encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err) reject(new Error(`ip ${args.join(' ')}: ${stderr.trim() || err.message}`));
      else resolve(stdout);
    });
  });
}

const IPV4 = /^10\.201\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/;
const IPV6 = /^fd00:201:[0-9a-f:]*\/(\d{1,3})$/i;

/** Keeps every address inside the test's private ranges. */
function checkCidr(cidr: string): void {
  const v4 = IPV4.exec(cidr);
  if (v4 && Number(v4[1]) <= 255 && Number(v4[2]) <= 255 && Number(v4[3]) >= 16 && Number(v4[3]) <= 32) return;
  const v6 = IPV6.exec(cidr);
  if (v6 && Number(v6[1]) >= 48 && Number(v6[1]) <= 128) return;
  throw new Error(`address ${cidr} must be 10.201.x.y/<16..32> or fd00:201:…/<48..128>`);
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
  await waitFor(
    async () => {
      const [hostLink] = JSON.parse(await ip(['-j', '-n', host.ns, 'link', 'show', iface])) as Array<Record<string, unknown>>;
      const [port] = JSON.parse(await ip(['-d', '-j', '-n', lan.bridgeNs, 'link', 'show', peer])) as Array<Record<string, unknown>>;
      const state = (port?.['linkinfo'] as { info_slave_data?: { state?: string } } | undefined)?.info_slave_data?.state;
      return hostLink?.['operstate'] === 'UP' && state === 'forwarding' ? true : undefined;
    },
    { what: `${host.ns} ${iface} up on ${lan.name}`, timeoutMs: 10_000, intervalMs: 10 },
  );
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
