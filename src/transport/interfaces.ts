/**
 * The host's multicast interfaces, and a watcher that follows them. Node has no netlink, so the
 * list is polled: os.networkInterfaces() lists only interfaces that are up and running with an
 * address (libuv's rule); loopback is left out, and so is an interface whose Linux flags lack
 * IFF_MULTICAST (tunnels, point-to-point links). One poll costs a few small syscalls, so a poll
 * every couple of seconds is cheap; a change is reported only when the list differs.
 */
import type { LocalNetwork } from './transport.js';

/** An up, multicast-capable, non-loopback interface and its addresses. */
export interface NetInterface {
  /** Kernel name (`eth0`): the scope of its IPv6 link-local addresses and groups. */
  readonly name: string;
  /** IPv4 addresses with prefix lengths, in the kernel's order (the first one joins groups). */
  readonly ipv4: readonly LocalNetwork[];
  /** IPv6 addresses (link-local ones without their `%scope`). */
  readonly ipv6: readonly string[];
}

/** IFF_MULTICAST in include/uapi/linux/if.h. */
const IFF_MULTICAST = 0x1000;

/**
 * Whether the interface carries multicast, from /sys/class/net/<name>/flags. When the flags
 * cannot be read (not Linux, no /sys), the interface is assumed to: a failed send on it is
 * logged, never fatal.
 */
function multicastCapable(name: string): boolean {
  try {
    const fs = process.getBuiltinModule('node:fs');
    const flags = Number.parseInt(fs.readFileSync(`/sys/class/net/${name}/flags`, 'utf8').trim(), 16);
    return Number.isNaN(flags) || (flags & IFF_MULTICAST) !== 0;
  } catch {
    return true;
  }
}

/** The host's multicast interfaces now, sorted by name. */
export function multicastInterfaces(): NetInterface[] {
  // node:os on first use: a query that never needs the list never loads it.
  const all = process.getBuiltinModule('node:os').networkInterfaces();
  const out: NetInterface[] = [];
  for (const name of Object.keys(all).sort()) {
    const list = all[name] ?? [];
    if (list.length === 0 || list.some((a) => a.internal) || !multicastCapable(name)) continue;
    const ipv4: LocalNetwork[] = [];
    const ipv6: string[] = [];
    for (const a of list) {
      if (a.family === 'IPv4') {
        const prefix = a.cidr === null ? 32 : Number(a.cidr.slice(a.cidr.indexOf('/') + 1));
        ipv4.push({ iface: name, address: a.address, prefixLength: Number.isInteger(prefix) ? prefix : 32 });
      } else {
        const percent = a.address.indexOf('%');
        ipv6.push(percent < 0 ? a.address : a.address.slice(0, percent));
      }
    }
    out.push({ name, ipv4, ipv6 });
  }
  return out;
}

/** The address an interface joins IPv4 groups by (its first IPv4 address), if any. */
export function joinAddress(iface: NetInterface): string | undefined {
  return iface.ipv4[0]?.address;
}

/** How often polod reads the interface list by default (changes are seen within this). */
export const DEFAULT_INTERFACE_POLL_MS = 2000;

/** Follows the interface list: calls `onChange` with the new list whenever it differs. */
export class InterfaceWatcher {
  private timer: NodeJS.Timeout | undefined;
  private last = '';
  private current: readonly NetInterface[] = [];

  constructor(
    private readonly options: {
      readonly intervalMs: number;
      readonly onChange: (now: readonly NetInterface[], before: readonly NetInterface[]) => void;
      readonly list?: () => NetInterface[];
    },
  ) {}

  /** The list as last read. */
  get interfaces(): readonly NetInterface[] {
    return this.current;
  }

  /** Reads the list now (reporting a change), then every `intervalMs` until stopped. */
  start(): void {
    if (this.timer !== undefined) return;
    this.poll();
    this.timer = setInterval(() => this.poll(), this.options.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Reads the list once; calls onChange when it differs from the last reading. */
  poll(): void {
    let now: NetInterface[];
    try {
      now = (this.options.list ?? multicastInterfaces)();
    } catch {
      return; // keep the last list; the next poll tries again
    }
    const key = JSON.stringify(now);
    if (key === this.last) return;
    this.last = key;
    const before = this.current;
    this.current = now;
    this.options.onChange(now, before);
  }
}
